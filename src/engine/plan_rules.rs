//! The planner's rules about one step's result and about the run's outcome: outputs, `when`,
//! which results block dependants, the phase the main steps produce and the final phase with
//! exit handlers, and the reset for a run retry.

use std::collections::BTreeMap;

use crate::api::{DagSpec, RunPhase, Step, StepPhase, StepStatus};

use super::super::params::Params;
use super::super::{outputs, when};
use super::Outcome;

/// `status.steps[].reason` of a step whose `when` could not be evaluated (it failed).
pub const WHEN_ERROR: &str = "WhenError";

/// The outputs to record for a succeeded attempt of `step`, from its termination message.
/// Err: the message the step fails with, naming the output (or saying the pod could not be read).
pub fn record_outputs(step: &Step, message: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    if step.outputs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let text = message.ok_or("its outputs could not be read: the step's pod is gone")?;
    outputs::parse(text, &step.outputs).map_err(|e| e.to_string())
}

/// Whether a step's result stops its dependants: a failure (without `continueOnFailure`), a
/// cancel, or a skip because of its own dependencies. A step skipped by its `when` does not.
pub fn blocks_dependants(step: &Step, status: &StepStatus) -> bool {
    match status.phase {
        StepPhase::Failed => !step.continue_on_failure,
        StepPhase::Skipped => status.reason.as_deref() != Some(when::WHEN_FALSE),
        StepPhase::Cancelled => true,
        _ => false,
    }
}

/// Evaluates `step`'s `when` over the run's params and the steps it may read.
pub fn evaluate_when<'a>(
    spec: &DagSpec,
    step: &Step,
    expr: &str,
    params: &Params,
    status_of: impl Fn(&str) -> Option<&'a StepStatus>,
) -> Result<bool, String> {
    let steps = when::steps_view(spec, step, status_of);
    when::evaluate_expr(expr, params, &steps)
}

fn is_fine(step: &Step, status: &StepStatus) -> bool {
    match status.phase {
        StepPhase::Succeeded => true,
        StepPhase::Failed => step.continue_on_failure,
        StepPhase::Skipped => status.reason.as_deref() == Some(when::WHEN_FALSE),
        _ => false,
    }
}

/// The phase the main steps produced (what handlers see as `KUBEDAG_RUN_PHASE`): Cancelled after
/// `spec.cancel`, else Succeeded when every main step succeeded, failed with
/// `continueOnFailure` or was skipped by its `when`, else Failed. `steps` are all statuses,
/// main steps first.
pub fn main_phase(spec: &DagSpec, steps: &[StepStatus], cancel: bool) -> RunPhase {
    if cancel {
        return RunPhase::Cancelled;
    }
    let fine = spec.steps.iter().zip(steps).all(|(step, status)| is_fine(step, status));
    if fine { RunPhase::Succeeded } else { RunPhase::Failed }
}

/// The run's outcome once every step and handler is terminal: the main phase, except that a
/// failing handler turns a Succeeded run Failed.
pub fn outcome(spec: &DagSpec, steps: &[StepStatus], cancel: bool) -> Outcome {
    let main = spec.steps.len();
    let failed = |range: std::ops::Range<usize>| {
        let all: Vec<&Step> = spec.all_steps().collect();
        range
            .filter(|&i| steps[i].phase == StepPhase::Failed && !all[i].continue_on_failure)
            .map(|i| {
                let detail = steps[i].message.clone().unwrap_or_default();
                format!("{:?} failed: {detail}", steps[i].name)
            })
            .next()
    };
    let handlers_failed = failed(main..steps.len()).map(|f| format!("onExit handler {f}"));
    match main_phase(spec, steps, cancel) {
        RunPhase::Succeeded => match handlers_failed {
            Some(message) => Outcome {
                phase: RunPhase::Failed,
                message,
            },
            None => Outcome {
                phase: RunPhase::Succeeded,
                message: format!("{} steps finished", steps.len()),
            },
        },
        RunPhase::Cancelled => Outcome {
            phase: RunPhase::Cancelled,
            message: "cancelled by spec.cancel".into(),
        },
        phase => Outcome {
            phase,
            message: failed(0..main)
                .map(|f| format!("step {f}"))
                .unwrap_or_else(|| "steps did not succeed".into()),
        },
    }
}

/// Resets a Failed run for a retry: its failed, skipped and cancelled main steps become Pending
/// again and will launch as new attempts (new Job names), succeeded steps keep their results;
/// exit handlers run again, after the main steps.
pub fn reset_for_retry(spec: &DagSpec, steps: &mut [StepStatus]) {
    let main = spec.steps.len();
    for (i, step) in steps.iter_mut().enumerate() {
        let redo = i >= main
            || matches!(
                step.phase,
                StepPhase::Failed | StepPhase::Skipped | StepPhase::Cancelled
            );
        if !redo || !step.phase.is_terminal() {
            continue;
        }
        step.phase = StepPhase::Pending;
        step.attempts_before = step.attempts;
        step.finished_at = None;
        step.exit_code = None;
        step.message = None;
        step.reason = None;
        step.outputs.clear();
        step.child_run = None;
        step.reused = false;
        if let Some(fe) = &mut step.for_each {
            // A new fan-out round: new instance names, all items again.
            **fe = crate::api::ForEachStatus {
                round: fe.round + 1,
                ..Default::default()
            };
        }
    }
}
