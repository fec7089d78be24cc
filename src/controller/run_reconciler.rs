//! The DagRun reconciler: dispatches on the run's phase and, for Running runs, plans and applies
//! the next step actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use k8s_openapi::api::batch::v1::Job;

use crate::api::{DagRun, DagRunStatus, RunPhase, StepPhase};
use crate::engine::plan::{self, JobState, Plan, PlanInput};

use super::error::{is_conflict, is_not_found};
use super::job_builder::{RunIdentity, build_job};
use super::{Context, Error, events, finished, job_state, start, status};

/// Re-check running runs this often even without watch events (a safety net, not the driver).
const RESYNC: Duration = Duration::from_secs(300);
/// Queued runs are woken when a slot frees; this refresh also keeps their position current.
const QUEUE_REFRESH: Duration = Duration::from_secs(30);
/// Retry interval while the operator-wide Job cap holds steps back.
const JOB_CAP_RETRY: Duration = Duration::from_secs(2);

pub async fn reconcile(run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconcile("dagrun");
    if run.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let phase = run.status.as_ref().map(|s| s.phase).unwrap_or_default();
    match phase {
        RunPhase::Pending => {
            start::start(&ctx, &run).await?;
            Ok(Action::await_change())
        }
        RunPhase::Running => advance(&ctx, &run).await,
        RunPhase::Queued => {
            start::dequeue(&ctx, &run).await?;
            Ok(Action::requeue(QUEUE_REFRESH))
        }
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

/// One planning round of a Running run.
async fn advance(ctx: &Context, run: &DagRun) -> Result<Action, Error> {
    let status = run.status.clone().unwrap_or_default();
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

/// Deletes the Jobs of cancelled steps and creates the planned ones. AlreadyExists is success
/// (invariant 2) unless the existing Job belongs to another object.
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
        match jobs
            .delete(
                name,
                &DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Background),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(_) => ctx.metrics.api_write("job_delete"),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if plan.launch.is_empty() {
        return Ok(());
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
    for launch in &plan.launch {
        if job_state::owned_by_other(ctx, &namespace, &launch.job_name, &uid) {
            return Err(Error::Transient(format!(
                "Job {} still belongs to an earlier object with this run's name; waiting for its garbage collection",
                launch.job_name
            )));
        }
        let job = build_job(
            &identity,
            spec,
            &spec.steps[launch.step],
            launch.attempt,
            &launch.job_name,
        );
        match jobs.create(&PostParams::default(), &job).await {
            Ok(_) => {
                ctx.metrics.api_write("job_create");
                ctx.metrics
                    .step_launched(latency_since_ready(spec, &plan.steps, launch.step));
            }
            Err(err) if is_conflict(&err) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Seconds between the moment the step became ready (its last dependency finished) and now.
fn latency_since_ready(spec: &crate::api::DagSpec, steps: &[crate::api::StepStatus], step: usize) -> Option<f64> {
    let ready_at = spec.steps[step]
        .depends
        .iter()
        .filter_map(|d| steps.iter().find(|s| &s.name == d))
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
            phase => events::step_ended(ctx, run, &step.name, phase, step.message.as_deref()),
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
