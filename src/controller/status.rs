//! Status writes through the status subresource, guarded by resourceVersion (invariant 5).

use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::api::{DagRun, DagRunStatus, DuplicatePolicy, RunPhase};
use crate::engine::duplicates;

use super::{Context, Error, claim};

/// Replaces the run's status, failing with a 409 conflict if the run changed since `run` was
/// read; the reconcile is then retried from fresh state, so no transition is lost or overwritten.
/// Writes nothing when the status is unchanged.
pub async fn write(ctx: &Context, run: &DagRun, status: DagRunStatus) -> Result<bool, Error> {
    if run.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let old_phase = run.status.as_ref().map(|s| s.phase);
    let new_phase = status.phase;
    let mut updated = run.clone();
    updated.status = Some(status);
    updated.metadata.managed_fields = None;
    let api: Api<DagRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let stored = api
        .replace_status(&run.name_any(), &PostParams::default(), &updated)
        .await?;
    ctx.metrics.api_write("status");
    let uid = run.uid().unwrap_or_default();
    let remembered = (!new_phase.is_terminal()).then(|| stored.resource_version()).flatten();
    ctx.own_writes.record(&uid, remembered.as_deref());
    if old_phase != Some(new_phase) {
        ctx.metrics.run_transition(new_phase);
        notify_dag(ctx, run);
        if new_phase.is_terminal() {
            on_finished(ctx, &updated).await?;
        }
    }
    Ok(true)
}

/// After a run ends: free its duplicate claim if its phase no longer blocks under the policy, and
/// wake the runs waiting for the slot it held.
async fn on_finished(ctx: &Context, run: &DagRun) -> Result<(), Error> {
    let status = run.status.as_ref().expect("just written");
    if let (Some(spec), Some(hash)) = (&status.dag_spec, &status.param_hash) {
        let policy = spec.duplicate_policy;
        if policy != DuplicatePolicy::Allow && !duplicates::blocks(policy, status.phase) {
            claim::release(ctx, run, &run.spec.dag_ref.name, hash).await?;
        }
    }
    let how_many = status
        .dag_spec
        .as_ref()
        .map_or(1, |s| s.max_active_runs.max(1) as usize);
    for waiting in ctx.gate.next_in_line(&ctx.runs, run, how_many) {
        let _ = ctx.wake_runs.unbounded_send(waiting);
    }
    Ok(())
}

/// Ends a run that never started with a terminal phase, a machine-readable reason and a message.
pub async fn end_before_start(
    ctx: &Context,
    run: &DagRun,
    phase: RunPhase,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    debug_assert!(phase.is_terminal());
    let mut status = run.status.clone().unwrap_or_default();
    status.phase = phase;
    status.reason = Some(reason.to_string());
    status.message = Some(message.clone());
    status.finished_at = Some(super::events::now());
    status.observed_generation = run.metadata.generation;
    write(ctx, run, status).await?;
    super::events::run_ended(ctx, run, phase, reason, &message);
    Ok(())
}

fn notify_dag(ctx: &Context, run: &DagRun) {
    let dag =
        kube::runtime::reflector::ObjectRef::new(&run.spec.dag_ref.name).within(&run.namespace().unwrap_or_default());
    // The receiver lives as long as the operator; a closed channel only happens at shutdown.
    let _ = ctx.dag_changed.unbounded_send(dag);
}
