//! Starting a run: resolve its Dag and parameters, assign its identity, take the duplicate
//! claim, and capture the Dag spec it will execute (invariant 4).

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::api::{Dag, DagRun, DagRunStatus, RunPhase, StepStatus};
use crate::engine::{duplicates, params, plan, validate};

use super::claim::{self, ClaimOutcome};
use super::gate::Admission;
use super::{Context, Error, events, run_reconciler, status};

/// Queued runs are woken when a slot frees; this refresh also keeps their position current.
const QUEUE_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// Characters of the hash shown in `kubectl get dagruns`.
const SHORT_HASH_LEN: usize = 12;

/// What starting a run decided.
enum Verdict {
    /// The run ends before launching anything.
    End(RunPhase, &'static str, String),
    Start(Box<DagRunStatus>),
}

/// Takes a Pending run to Running (launching its first steps in the same status write) or
/// Queued, or ends it with a message naming what is wrong.
pub async fn start(ctx: &Context, run: &DagRun) -> Result<Action, Error> {
    let mut status = match decide(ctx, run).await? {
        Verdict::End(phase, reason, message) => {
            status::end_before_start(ctx, run, phase, reason, message).await?;
            return Ok(Action::await_change());
        }
        Verdict::Start(status) => *status,
    };
    let note = format!(
        "requestId {}, paramHash {}",
        status.request_id.as_deref().unwrap_or_default(),
        status.param_hash.as_deref().unwrap_or_default()
    );
    let max_active_runs = status.dag_spec.as_ref().map_or(0, |s| s.max_active_runs);
    let action = match ctx.gate.admit_run(&ctx.runs, run, max_active_runs) {
        Admission::Start => run_reconciler::advance(ctx, run, status).await?,
        Admission::Queue { position, reason } => {
            status.phase = RunPhase::Queued;
            status.reason = Some("Queued".into());
            status.message = Some(queue_message(position, &reason));
            status.started_at = None;
            status::write(ctx, run, status).await?;
            Action::await_change()
        }
    };
    events::run_started(ctx, run, note);
    Ok(action)
}

/// Starts a Queued run (with its first launches) when the gate lets it, else refreshes its
/// queue position.
pub async fn dequeue(ctx: &Context, run: &DagRun) -> Result<Action, Error> {
    let mut status = run.status.clone().unwrap_or_default();
    if run.spec.cancel {
        status::end_before_start(
            ctx,
            run,
            RunPhase::Cancelled,
            "Cancelled",
            "cancelled while queued".into(),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let max_active_runs = current_max_active_runs(ctx, run, &status);
    match ctx.gate.admit_run(&ctx.runs, run, max_active_runs) {
        Admission::Start => {
            status.phase = RunPhase::Running;
            status.reason = Some("Started".into());
            status.message = None;
            status.started_at = Some(events::now());
            run_reconciler::advance(ctx, run, status).await
        }
        Admission::Queue { position, reason } => {
            status.message = Some(queue_message(position, &reason));
            status::write(ctx, run, status).await?;
            Ok(Action::requeue(QUEUE_REFRESH))
        }
    }
}

fn queue_message(position: usize, reason: &str) -> String {
    format!("queued at position {position}: {reason}")
}

/// The Dag's current `maxActiveRuns` (so raising it drains the queue), else the captured one.
fn current_max_active_runs(ctx: &Context, run: &DagRun, status: &DagRunStatus) -> u32 {
    let namespace = run.namespace().unwrap_or_default();
    match ctx.dags.get(&ObjectRef::new(&run.spec.dag_ref.name).within(&namespace)) {
        Some(dag) => dag.spec.max_active_runs,
        None => status.dag_spec.as_ref().map_or(0, |s| s.max_active_runs),
    }
}

async fn decide(ctx: &Context, run: &DagRun) -> Result<Verdict, Error> {
    let fail = |reason: &'static str, message: String| Ok(Verdict::End(RunPhase::Failed, reason, message));
    if run.spec.cancel {
        return Ok(Verdict::End(
            RunPhase::Cancelled,
            "Cancelled",
            "cancelled before it started".into(),
        ));
    }
    let name = run.name_any();
    if let Err(why) = validate::check_label_value(&name) {
        return fail(
            "InvalidName",
            format!("metadata.name {name:?}: must be usable as a label value: {why}"),
        );
    }
    let namespace = run.namespace().unwrap_or_default();
    let dag_name = &run.spec.dag_ref.name;
    let Some(dag) = find_dag(ctx, &namespace, dag_name).await? else {
        return fail(
            "DagNotFound",
            format!("spec.dagRef.name: Dag {dag_name:?} not found in namespace {namespace:?}"),
        );
    };
    if let Err(errors) = validate::validate_dag(&dag.spec) {
        return fail("InvalidDag", format!("Dag {dag_name:?} is invalid: {errors}"));
    }
    let resolved = match params::resolve(dag_name, &dag.spec.params, &run.spec.params) {
        Ok(p) => p,
        Err(err) => return fail("InvalidParams", err.to_string()),
    };
    let request_id = match request_id(run) {
        Ok(id) => id,
        Err(message) => return fail("InvalidRequestId", message),
    };
    let param_hash = params::param_hash(&resolved);
    let policy = dag.spec.duplicate_policy;
    if let ClaimOutcome::Duplicate { holder } = claim::acquire(ctx, run, dag_name, policy, &param_hash).await? {
        let message = duplicates::refusal_message(dag_name, &holder, &param_hash, policy);
        return Ok(Verdict::End(RunPhase::Rejected, "DuplicateParams", message));
    }
    let steps: Vec<StepStatus> = dag
        .spec
        .steps
        .iter()
        .map(|s| StepStatus {
            name: s.name.clone(),
            ..Default::default()
        })
        .collect();
    Ok(Verdict::Start(Box::new(DagRunStatus {
        phase: RunPhase::Running,
        reason: Some("Started".into()),
        message: None,
        request_id: Some(request_id),
        short_hash: Some(param_hash[..SHORT_HASH_LEN].to_string()),
        params: Some(resolved),
        param_hash: Some(param_hash),
        progress: Some(plan::progress(&steps, steps.len())),
        started_at: Some(events::now()),
        finished_at: None,
        observed_generation: run.metadata.generation,
        conditions: Vec::new(),
        retries: run.spec.retry,
        steps,
        dag_spec: Some(dag.spec.clone()),
    })))
}

/// `spec.requestId` if set (it must be a label value), else the one already assigned, else the
/// run's UID (a UUIDv4 assigned by the API server). Deterministic, so Jobs created just before a
/// crash carry the same ID the restarted operator writes to the status.
fn request_id(run: &DagRun) -> Result<String, String> {
    if !run.spec.request_id.is_empty() {
        return validate::check_label_value(&run.spec.request_id)
            .map(|_| run.spec.request_id.clone())
            .map_err(|why| {
                format!(
                    "spec.requestId {:?}: must be usable as a label value: {why}",
                    run.spec.request_id
                )
            });
    }
    let assigned = run.status.as_ref().and_then(|s| s.request_id.clone());
    Ok(assigned
        .or_else(|| run.uid())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()))
}

/// The Dag from the cache, or from the API server when the cache has not seen it yet (a Dag and
/// its runs applied together must not fail the runs).
async fn find_dag(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Dag>, Error> {
    if let Some(dag) = ctx.dags.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(Some((*dag).clone()));
    }
    let api: Api<Dag> = Api::namespaced(ctx.client.clone(), namespace);
    Ok(api.get_opt(name).await?)
}
