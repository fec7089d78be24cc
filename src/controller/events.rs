//! Kubernetes Events on the DagRun: step start, step end, rejection and completion.
//! Published in the background so they never delay a reconcile or fail it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::api::{DagRun, RunPhase, StepPhase};

use super::Context;

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn publish(ctx: &Context, run: &DagRun, type_: EventType, reason: &str, note: String) {
    let recorder = ctx.recorder.clone();
    let reference = run.object_ref(&());
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: reason.to_string(),
        secondary: None,
    };
    ctx.metrics.api_write("event");
    tokio::spawn(async move {
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::debug!(%err, "could not publish event");
        }
    });
}

pub fn step_started(ctx: &Context, run: &DagRun, step: &str, attempt: u32, job: &str) {
    publish(
        ctx,
        run,
        EventType::Normal,
        "StepStarted",
        format!("step {step:?} attempt {attempt}: Job {job}"),
    );
}

pub fn step_ended(ctx: &Context, run: &DagRun, step: &str, phase: StepPhase, message: Option<&str>) {
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
    publish(ctx, run, type_, reason, note);
}

pub fn run_started(ctx: &Context, run: &DagRun, note: String) {
    publish(ctx, run, EventType::Normal, "Started", note);
}

pub fn run_ended(ctx: &Context, run: &DagRun, phase: RunPhase, reason: &str, message: &str) {
    let type_ = if phase == RunPhase::Succeeded {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let reason = if reason.is_empty() { phase.as_str() } else { reason };
    publish(ctx, run, type_, reason, message.to_string());
}
