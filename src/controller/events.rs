//! Kubernetes Events on the DagRun, filtered by the operator's `--events` level. Published in the
//! background so they never delay a reconcile or fail it.
//!
//! Events are writes: at the default level (`failures`) a run that succeeds writes none (its
//! status holds the full history), so thousands of runs a day do not flood etcd. Warnings are
//! always published.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::api::{DagRun, RunPhase, StepPhase};

use super::{Context, EventLevel};

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// `level` is the least `--events` level that publishes this event; warnings ignore it.
fn publish(ctx: &Context, run: &DagRun, level: EventLevel, event: Event) {
    if event.type_ == EventType::Normal && ctx.config.events < level {
        return;
    }
    let recorder = ctx.recorder.clone();
    let reference = run.object_ref(&());
    ctx.metrics.api_write("event");
    tokio::spawn(async move {
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::debug!(%err, "could not publish event");
        }
    });
}

fn event(type_: EventType, reason: &str, note: String, job: Option<ObjectReference>) -> Event {
    Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: reason.to_string(),
        // The step's Job as related object: the recorder folds events with the same key into one
        // series, so without it a second step's event of the same reason would lose its note.
        secondary: job,
    }
}

fn job_ref(run: &DagRun, job: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: Some(job.to_string()),
        namespace: run.metadata.namespace.clone(),
        ..Default::default()
    }
}

pub fn step_started(ctx: &Context, run: &DagRun, step: &str, attempt: u32, job: &str) {
    let note = format!("step {step:?} attempt {attempt}: Job {job}");
    let event = event(EventType::Normal, "StepStarted", note, Some(job_ref(run, job)));
    publish(ctx, run, EventLevel::All, event);
}

pub fn step_ended(ctx: &Context, run: &DagRun, step: &str, job: Option<&str>, phase: StepPhase, message: Option<&str>) {
    let (type_, reason) = match phase {
        StepPhase::Succeeded => (EventType::Normal, "StepSucceeded"),
        StepPhase::Failed => (EventType::Warning, "StepFailed"),
        StepPhase::Skipped => (EventType::Normal, "StepSkipped"),
        _ => (EventType::Normal, "StepCancelled"),
    };
    let note = match message {
        Some(m) => format!("step {step:?} {phase:?}: {m}"),
        None => format!("step {step:?} {phase:?}"),
    };
    let related = job.map(|j| job_ref(run, j));
    publish(ctx, run, EventLevel::All, event(type_, reason, note, related));
}

/// A refused Job create (always a Warning): `permanent` failed the step, else it is retried.
pub fn step_refused(ctx: &Context, run: &DagRun, step: &str, message: &str, permanent: bool) {
    let (reason, what) = if permanent {
        ("StepRefused", "failed")
    } else {
        ("StepWaiting", "will be retried")
    };
    let note = format!("step {step:?}: the API server refused its Job ({what}): {message}");
    publish(ctx, run, EventLevel::All, event(EventType::Warning, reason, note, None));
}

pub fn run_started(ctx: &Context, run: &DagRun, note: String) {
    publish(
        ctx,
        run,
        EventLevel::Runs,
        event(EventType::Normal, "Started", note, None),
    );
}

pub fn run_ended(ctx: &Context, run: &DagRun, phase: RunPhase, reason: &str, message: &str) {
    let type_ = if phase == RunPhase::Succeeded {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let reason = if reason.is_empty() { phase.as_str() } else { reason };
    publish(
        ctx,
        run,
        EventLevel::Runs,
        event(type_, reason, message.to_string(), None),
    );
}
