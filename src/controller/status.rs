//! Status writes through the status subresource, guarded by resourceVersion (invariant 5).

use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::api::{DagRun, DagRunStatus, RunPhase};

use super::{Context, Error};

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
    let api: Api<DagRun> =
        Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    api.replace_status(&run.name_any(), &PostParams::default(), &updated)
        .await?;
    ctx.metrics.api_write("status");
    if old_phase != Some(new_phase) {
        ctx.metrics.run_transition(new_phase);
        notify_dag(ctx, run);
    }
    Ok(true)
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
    let dag = kube::runtime::reflector::ObjectRef::new(&run.spec.dag_ref.name)
        .within(&run.namespace().unwrap_or_default());
    // The receiver lives as long as the operator; a closed channel only happens at shutdown.
    let _ = ctx.dag_changed.unbounded_send(dag);
}
