//! The DagRun reconciler: dispatches on the run's phase and, for Running runs, plans and applies
//! the next step actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use k8s_openapi::api::batch::v1::Job;

use crate::api::{DagRun, DagRunStatus, RunPhase, StepPhase};
use crate::engine::plan::{self, JobState, Plan, PlanInput};

use super::error::{is_conflict, is_not_found};
use super::job_builder::{RunIdentity, build_job};
use super::job_state::JobOwner;
use super::{Context, Error, events, finished, job_state, start, status};

/// Re-check running runs this often even without watch events (a safety net, not the driver).
const RESYNC: Duration = Duration::from_secs(300);
/// Job creates of one planning round in flight at once (a wide Dag's fan-out).
const PARALLEL_CREATES: usize = 16;
/// Retry interval while the Job cache is still loading its first list.
const JOBS_NOT_SYNCED_RETRY: Duration = Duration::from_millis(500);
/// Safety net for a run skipped because the cache had not yet seen our own last write.
const STALE_RECHECK: Duration = Duration::from_secs(5);
/// Retry interval while the operator-wide Job cap holds steps back.
const JOB_CAP_RETRY: Duration = Duration::from_secs(2);

/// Which of the two run controllers owns a run: the one that starts new runs (Pending, Queued)
/// or the one that advances started runs (Running) and handles finished ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Start,
    Advance,
}

pub fn lane(run: &DagRun) -> Lane {
    match run.status.as_ref().map(|s| s.phase).unwrap_or_default() {
        RunPhase::Pending | RunPhase::Queued => Lane::Start,
        _ => Lane::Advance,
    }
}

/// The start controller's reconcile. Each lane skips runs of the other (they reach it through
/// requeues and Job events). A run changes lane only by its owner's phase write, the last API call
/// of that reconcile, so the two controllers never work on one run at the same time (and if they
/// briefly did, invariants 1, 2 and 5 would keep it safe).
pub async fn reconcile_start_lane(run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_in(Lane::Start, run, ctx).await
}

/// The advance controller's reconcile.
pub async fn reconcile_advance_lane(run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_in(Lane::Advance, run, ctx).await
}

async fn reconcile_in(owner: Lane, run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    if lane(&run) != owner {
        return Ok(Action::await_change());
    }
    reconcile(run, ctx).await
}

async fn reconcile(run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconcile("dagrun");
    if run.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !ctx.jobs_synced() {
        return Ok(Action::requeue(JOBS_NOT_SYNCED_RETRY));
    }
    if ctx
        .own_writes
        .is_stale(&run.uid().unwrap_or_default(), run.metadata.resource_version.as_deref())
    {
        // Our own newer write is on its way through the watch and will trigger the next round;
        // the requeue is only a safety net should that event never come.
        ctx.metrics.stale_skip();
        return Ok(Action::requeue(STALE_RECHECK));
    }
    let phase = run.status.as_ref().map(|s| s.phase).unwrap_or_default();
    match phase {
        RunPhase::Pending => start::start(&ctx, &run).await,
        RunPhase::Running => advance(&ctx, &run, run.status.clone().unwrap_or_default()).await,
        RunPhase::Queued => start::dequeue(&ctx, &run).await,
        _ => finished::reconcile(&ctx, &run).await,
    }
}

pub fn error_policy(run: Arc<DagRun>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("dagrun", err.kind());
    if matches!(err, Error::Kube(e) if is_conflict(e)) {
        // Our cached copy was stale; retry promptly once the watch delivers the newer object.
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(run = %run.name_any(), namespace = ?run.namespace(), %err, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// One planning round of a Running run, starting from `status`: the stored one, or the one a
/// starting run is about to store (so its start and first launch are one status write).
pub async fn advance(ctx: &Context, run: &DagRun, status: DagRunStatus) -> Result<Action, Error> {
    let Some(spec) = status.dag_spec.clone() else {
        return fail_running(
            ctx,
            run,
            status,
            "the run's captured Dag spec is missing from its status",
        )
        .await;
    };
    let namespace = run.namespace().unwrap_or_default();
    let uid = run.uid().unwrap_or_default();
    let observed = observe_jobs(ctx, &namespace, &uid, &status).await;
    let run_name = run.name_any();
    let planned = ctx.gate.with_job_budget(&ctx.jobs, |launch_budget| {
        let lookup = |name: &str| observed.get(name).cloned().unwrap_or(JobState::Missing);
        let planned = plan::plan(&PlanInput {
            run_name: &run_name,
            spec: &spec,
            recorded: &status.steps,
            job: &lookup,
            cancel: run.spec.cancel,
            now: events::now(),
            launch_budget,
            missing_job_grace_seconds: ctx.config.missing_job_grace_seconds,
        });
        let launched = planned
            .iter()
            .flat_map(|p| &p.launch)
            .map(|l| (namespace.clone(), l.job_name.clone()))
            .collect();
        (planned, launched)
    });
    let plan = match planned {
        Ok(plan) => plan,
        Err(err) => return fail_running(ctx, run, status, &err.to_string()).await,
    };
    apply_jobs(ctx, run, &spec, &status, &plan).await?;
    let new_status = next_status(run, status.clone(), &plan);
    let wrote = status::write(ctx, run, new_status.clone()).await?;
    if wrote {
        publish_events(ctx, run, &spec, &plan);
    }
    let held_back_by_job_cap = ctx.config.caps.max_running_jobs > 0
        && plan.outcome.is_none()
        && plan.steps.iter().any(|s| s.phase == StepPhase::Pending);
    Ok(match plan.recheck_after_seconds {
        Some(secs) => Action::requeue(Duration::from_secs(secs.max(1) as u64)),
        None if held_back_by_job_cap => Action::requeue(JOB_CAP_RETRY),
        None => Action::requeue(RESYNC),
    })
}

/// The current state of every Job the run's steps point at; failed ones with their pod's exit code.
async fn observe_jobs(ctx: &Context, namespace: &str, uid: &str, status: &DagRunStatus) -> HashMap<String, JobState> {
    let mut observed = HashMap::new();
    for step in status.steps.iter().filter(|s| s.phase == StepPhase::Running) {
        let Some(job) = &step.job_name else { continue };
        let state = job_state::cached_state(ctx, namespace, job, uid);
        let state = job_state::with_pod_details(ctx, namespace, job, state).await;
        observed.insert(job.clone(), state);
    }
    observed
}

/// Deletes the Jobs of cancelled steps and creates the planned ones, in parallel. AlreadyExists is
/// success (invariant 2) unless the existing Job belongs to another object.
async fn apply_jobs(
    ctx: &Context,
    run: &DagRun,
    spec: &crate::api::DagSpec,
    status: &DagRunStatus,
    plan: &Plan,
) -> Result<(), Error> {
    let namespace = run.namespace().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in &plan.delete {
        delete_job(ctx, &jobs, name).await?;
    }
    let empty = Default::default();
    let identity = RunIdentity {
        run,
        dag_name: &run.spec.dag_ref.name,
        request_id: status.request_id.as_deref().unwrap_or_default(),
        param_hash: status.param_hash.as_deref().unwrap_or_default(),
        params: status.params.as_ref().unwrap_or(&empty),
    };
    let uid = run.uid().unwrap_or_default();
    let target = LaunchTarget {
        ctx,
        jobs: &jobs,
        namespace: &namespace,
        uid: &uid,
        identity: &identity,
        spec,
        plan,
    };
    // Collected first: the futures then have one concrete type, which the stream needs.
    let creates: Vec<_> = plan.launch.iter().map(|l| create_job(&target, l)).collect();
    futures::stream::iter(creates)
        .buffer_unordered(PARALLEL_CREATES)
        .try_collect::<()>()
        .await
}

/// What every Job create of one planning round shares.
struct LaunchTarget<'a> {
    ctx: &'a Context,
    jobs: &'a Api<Job>,
    namespace: &'a str,
    uid: &'a str,
    identity: &'a RunIdentity<'a>,
    spec: &'a crate::api::DagSpec,
    plan: &'a Plan,
}

async fn create_job(target: &LaunchTarget<'_>, launch: &plan::Launch) -> Result<(), Error> {
    let ctx = target.ctx;
    match job_state::cached_owner(ctx, target.namespace, &launch.job_name, target.uid) {
        JobOwner::Run => return Ok(()),
        JobOwner::Other => {
            return Err(Error::Transient(format!(
                "Job {} still belongs to an earlier object with this run's name; waiting for its garbage collection",
                launch.job_name
            )));
        }
        JobOwner::Unknown => {}
    }
    let spec = target.spec;
    let job = build_job(
        target.identity,
        spec,
        &spec.steps[launch.step],
        launch.attempt,
        &launch.job_name,
    );
    match target.jobs.create(&PostParams::default(), &job).await {
        Ok(_) => {
            ctx.metrics.api_write("job_create");
            let latency = latency_since_ready(ctx, target.namespace, spec, &target.plan.steps, launch.step);
            ctx.metrics.step_launched(latency);
            Ok(())
        }
        Err(err) if is_conflict(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn delete_job(ctx: &Context, jobs: &Api<Job>, name: &str) -> Result<(), Error> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match jobs.delete(name, &params).await {
        Ok(_) => ctx.metrics.api_write("job_delete"),
        Err(err) if is_not_found(&err) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// Seconds between the moment the step became ready (its last dependency finished, as first
/// seen by the Job watch) and now; None for root steps.
fn latency_since_ready(
    ctx: &Context,
    namespace: &str,
    spec: &crate::api::DagSpec,
    steps: &[crate::api::StepStatus],
    step: usize,
) -> Option<f64> {
    let dependencies: Vec<_> = spec.steps[step]
        .depends
        .iter()
        .filter_map(|d| steps.iter().find(|s| &s.name == d))
        .collect();
    let jobs: Vec<&str> = dependencies.iter().filter_map(|s| s.job_name.as_deref()).collect();
    if let Some(seen) = ctx.completions.last_finished(namespace, &jobs) {
        return Some(seen.elapsed().as_secs_f64());
    }
    let ready_at = dependencies
        .iter()
        .filter_map(|s| s.finished_at.as_ref())
        .map(|t| t.0)
        .max()?;
    Some(jiff::Timestamp::now().duration_since(ready_at).as_secs_f64().max(0.0))
}

fn next_status(run: &DagRun, mut status: DagRunStatus, plan: &Plan) -> DagRunStatus {
    status.progress = Some(plan::progress(&plan.steps, plan.steps.len()));
    status.steps = plan.steps.clone();
    status.observed_generation = run.metadata.generation;
    if let Some(outcome) = &plan.outcome {
        status.phase = outcome.phase;
        status.reason = Some(outcome.phase.as_str().to_string());
        status.message = Some(outcome.message.clone());
        status.finished_at = Some(events::now());
    }
    status
}

fn publish_events(ctx: &Context, run: &DagRun, spec: &crate::api::DagSpec, plan: &Plan) {
    for t in &plan.transitions {
        let step = &plan.steps[t.step];
        match t.to {
            StepPhase::Running => {}
            phase => events::step_ended(
                ctx,
                run,
                &step.name,
                step.job_name.as_deref(),
                phase,
                step.message.as_deref(),
            ),
        }
    }
    for launch in &plan.launch {
        events::step_started(
            ctx,
            run,
            &spec.steps[launch.step].name,
            launch.attempt,
            &launch.job_name,
        );
    }
    if let Some(outcome) = &plan.outcome {
        events::run_ended(ctx, run, outcome.phase, "", &outcome.message);
    }
}

async fn fail_running(ctx: &Context, run: &DagRun, mut status: DagRunStatus, message: &str) -> Result<Action, Error> {
    status.phase = RunPhase::Failed;
    status.reason = Some("InternalError".into());
    status.message = Some(message.to_string());
    status.finished_at = Some(events::now());
    status::write(ctx, run, status).await?;
    events::run_ended(ctx, run, RunPhase::Failed, "InternalError", message);
    Ok(Action::await_change())
}
