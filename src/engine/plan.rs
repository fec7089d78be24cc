//! The planner: from a run's captured Dag spec, its recorded step states and what the step Jobs
//! say, decide the next actions. Pure and deterministic; the controller applies the result.
//!
//! Rules (the contract's):
//! - A step starts only when all its dependencies are terminal and none of them blocks it. A
//!   dependency blocks when it Failed without `continueOnFailure`, or was Skipped or Cancelled;
//!   a blocked step is Skipped (transitively), while steps not depending on the failure run on.
//! - A failed attempt is retried (a new attempt, a new Job name) as [`retry`] decides (`limit`,
//!   `onExitCodes`); with a `backoff` the step waits Pending until `nextAttemptAt`.
//! - An attempt whose pod can never start ([`JobState::CannotStart`]) fails like one whose program
//!   failed (and is retried the same way); its still-active Job is deleted.
//! - A Job create the API server refused ([`JobState::Refused`]) fails the step when the refusal
//!   is permanent (an invalid object); otherwise the step waits Pending and is tried again after a
//!   backoff ([`refusal_backoff_seconds`]), without blocking any other step.
//! - The run ends when no step is Pending or Running: Succeeded when every step Succeeded or
//!   failed with `continueOnFailure`, Failed otherwise. `cancel` ends it Cancelled at once.
//! - The plan reports each step it could launch but held back, and why ([`HoldReason`]), so the
//!   caller knows whether a re-check is useful (a dependency wait needs none: the Job watch wakes it).

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{DagSpec, RunPhase, Step, StepPhase, StepStatus};

use super::call::{RunView, Spawn};
use super::params::Params;
use super::retry::{self, Verdict};
use super::{graph, naming, when};

#[path = "plan_job_state.rs"]
mod job_state;
pub use job_state::{JobState, WAITING_PREFIX, refusal_backoff_seconds};
#[path = "plan_call.rs"]
mod call_step;
#[path = "plan_foreach.rs"]
mod foreach_step;
#[path = "plan_rules.rs"]
mod rules;
pub use rules::{main_phase, reset_for_retry};

/// Everything the planner looks at.
pub struct PlanInput<'a> {
    pub run_name: &'a str,
    pub spec: &'a DagSpec,
    /// The run's resolved params (for `when`).
    pub params: &'a Params,
    /// Recorded step states (from the run's status); steps without an entry are Pending.
    pub recorded: &'a [StepStatus],
    /// The current state of a Job, by name.
    pub job: &'a (dyn Fn(&str) -> JobState + Sync),
    pub cancel: bool,
    pub now: Time,
    /// How many more Jobs may be started now across the operator (None = no global cap).
    pub launch_budget: Option<usize>,
    /// A Running step whose Job is Missing for longer than this since its launch is relaunched
    /// (same attempt, same name): the Job was deleted by hand. Shorter: the cache has not caught up.
    pub missing_job_grace_seconds: i64,
    /// What `call` steps need: the calling run and the caches' view of other runs and Dags
    /// (None: a call step fails saying so).
    pub calls: Option<CallContext<'a>>,
}

/// The calling run and the view of its namespace, for `call` steps.
#[derive(Clone, Copy)]
pub struct CallContext<'a> {
    pub run: &'a crate::api::DagRun,
    pub view: &'a dyn RunView,
}

/// One Job to create: the step's attempt (1-based) and its deterministic name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub step: usize,
    pub attempt: u32,
    pub job_name: String,
    /// The `forEach` instance this Job runs, if any.
    pub item: Option<Item>,
}

/// One `forEach` item: its 0-based index and its text (env `item`, `$(item)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub index: u32,
    pub value: String,
}

/// A step's phase change, for events and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub step: usize,
    pub from: StepPhase,
    pub to: StepPhase,
}

/// Why a step that could run now was not launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldReason {
    /// The Dag's `maxActiveSteps` is reached; a finishing step (a Job event) frees a slot.
    MaxActiveSteps,
    /// The operator-wide running-Job cap is reached; no event of this run frees it.
    JobCap,
    /// The step's next attempt is not due before this time (a retry backoff, or a refused
    /// create's backoff).
    NotBefore(Time),
}

/// A step held back by this plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub step: usize,
    pub reason: HoldReason,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub phase: RunPhase,
    pub message: String,
}

/// The planner's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// New step states, one per spec step, in spec order.
    pub steps: Vec<StepStatus>,
    pub launch: Vec<Launch>,
    /// Jobs to delete (running Jobs of a cancelled run).
    pub delete: Vec<String>,
    /// Child DagRuns to create (`call` steps).
    pub spawn: Vec<Spawn>,
    /// Own child DagRuns to cancel (a cancelled run's running calls).
    pub cancel_runs: Vec<String>,
    pub transitions: Vec<Transition>,
    /// Steps ready to run that this plan did not launch.
    pub held_back: Vec<Held>,
    /// Refused Job creates: (step, message, permanent), for Warning events.
    pub refused: Vec<(usize, String, bool)>,
    pub outcome: Option<Outcome>,
    /// Plan again after this many seconds even if nothing changes (a grace period, a backoff, a
    /// waiting pod).
    pub recheck_after_seconds: Option<i64>,
}

impl Plan {
    /// Whether a step is held back only by the operator-wide Job cap, which no event of this run
    /// lifts (the caller must re-check on a timer).
    pub fn held_by_job_cap(&self) -> bool {
        self.held_back.iter().any(|h| h.reason == HoldReason::JobCap)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the run's captured Dag spec has a dependency cycle")]
pub struct CyclicSpec;

/// Decides the next actions for one run. Steps are indexed over `spec.steps` followed by
/// `spec.onExit` ([`DagSpec::all_steps`]); handlers start once every main step is terminal,
/// whatever the outcome, also after a cancel.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, CyclicSpec> {
    let all: Vec<Step> = input.spec.all_steps().cloned().collect();
    let order = graph::topological_order(&all).map_err(|_| CyclicSpec)?;
    let mut planner = Planner::new(input, &all);
    if input.cancel {
        planner.cancel_main_steps();
    }
    planner.observe_running();
    planner.start_or_skip_pending(&order);
    Ok(planner.finish())
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    all: &'a [Step],
    steps: Vec<StepStatus>,
    index: HashMap<&'a str, usize>,
    plan: Plan,
    /// Jobs this plan may still start under the operator-wide cap.
    budget: usize,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>, all: &'a [Step]) -> Self {
        let recorded: HashMap<&str, &StepStatus> = input.recorded.iter().map(|s| (s.name.as_str(), s)).collect();
        let steps = all
            .iter()
            .map(|step| {
                recorded
                    .get(step.name.as_str())
                    .map(|s| (*s).clone())
                    .unwrap_or_else(|| StepStatus {
                        name: step.name.clone(),
                        ..Default::default()
                    })
            })
            .collect();
        Planner {
            input,
            all,
            steps,
            index: graph::index_by_name(all),
            plan: Plan {
                steps: Vec::new(),
                launch: Vec::new(),
                delete: Vec::new(),
                spawn: Vec::new(),
                cancel_runs: Vec::new(),
                transitions: Vec::new(),
                held_back: Vec::new(),
                refused: Vec::new(),
                outcome: None,
                recheck_after_seconds: None,
            },
            budget: input.launch_budget.unwrap_or(usize::MAX),
        }
    }

    fn spec_step(&self, i: usize) -> &'a Step {
        &self.all[i]
    }

    fn is_handler(&self, i: usize) -> bool {
        i >= self.input.spec.steps.len()
    }

    fn main_steps_done(&self) -> bool {
        self.steps[..self.input.spec.steps.len()]
            .iter()
            .all(|s| s.phase.is_terminal())
    }

    fn job_state(&self, i: usize) -> JobState {
        match &self.steps[i].job_name {
            Some(name) => (self.input.job)(name),
            None => JobState::Missing,
        }
    }

    fn set_phase(&mut self, i: usize, to: StepPhase) {
        let from = self.steps[i].phase;
        if from != to {
            self.steps[i].phase = to;
            self.plan.transitions.push(Transition { step: i, from, to });
        }
    }

    fn finish_step(&mut self, i: usize, to: StepPhase, finished_at: Option<Time>, message: Option<String>) {
        self.set_phase(i, to);
        self.steps[i].finished_at = Some(finished_at.unwrap_or_else(|| self.input.now.clone()));
        self.steps[i].message = message;
    }

    fn launch(&mut self, i: usize, attempt: u32) {
        let status = &mut self.steps[i];
        status.attempts = attempt;
        status.started_at = Some(self.input.now.clone());
        status.finished_at = None;
        status.exit_code = None;
        status.next_attempt_at = None;
        self.set_phase(i, StepPhase::Running);
        if self.spec_step(i).call.is_some() {
            return self.observe_call(i);
        }
        let job_name = naming::job_name(self.input.run_name, &self.spec_step(i).name, attempt);
        self.steps[i].job_name = Some(job_name.clone());
        self.plan.launch.push(Launch {
            step: i,
            attempt,
            job_name,
            item: None,
        });
    }

    /// `spec.cancel`: main steps stop (running Jobs deleted); handlers still run afterwards.
    fn cancel_main_steps(&mut self) {
        for i in 0..self.input.spec.steps.len() {
            match self.steps[i].phase {
                StepPhase::Pending => self.finish_step(i, StepPhase::Cancelled, None, None),
                StepPhase::Running => {
                    self.stop_instances(i);
                    if let Some(job) = self.steps[i].job_name.clone() {
                        self.plan.delete.push(job);
                    }
                    if let (Some(child), false) = (self.steps[i].child_run.clone(), self.steps[i].reused) {
                        self.plan.cancel_runs.push(child);
                    }
                    self.finish_step(i, StepPhase::Cancelled, None, Some("cancelled while running".into()));
                }
                _ => {}
            }
        }
    }

    fn recheck_after(&mut self, seconds: i64) {
        let soonest = self.plan.recheck_after_seconds.map_or(seconds, |r| r.min(seconds));
        self.plan.recheck_after_seconds = Some(soonest.max(1));
    }

    fn observe_running(&mut self) {
        for i in 0..self.steps.len() {
            if self.steps[i].phase != StepPhase::Running {
                continue;
            }
            if self.spec_step(i).for_each.is_some() {
                self.observe_for_each(i);
            } else if self.spec_step(i).call.is_some() {
                self.observe_call(i);
            } else {
                let state = self.job_state(i);
                self.apply_state(i, state);
            }
        }
    }

    /// Takes in what the step's current attempt (a Job, or a child run) says.
    fn apply_state(&mut self, i: usize, state: JobState) {
        match state {
            JobState::Active => self.pod_runs(i),
            JobState::Missing => self.relaunch_if_lost(i),
            JobState::Succeeded {
                finished_at,
                exit_code,
                outputs,
            } => {
                self.steps[i].exit_code = exit_code.or(Some(0));
                self.steps[i].create_refusals = 0;
                match rules::record_outputs(self.spec_step(i), outputs.as_deref()) {
                    Ok(values) => {
                        self.steps[i].outputs = values;
                        self.finish_step(i, StepPhase::Succeeded, finished_at, None);
                    }
                    Err(message) => self.finish_step(i, StepPhase::Failed, finished_at, Some(message)),
                }
            }
            JobState::Failed {
                finished_at,
                exit_code,
                message,
            } => {
                self.steps[i].exit_code = exit_code;
                self.attempt_failed(i, finished_at, message);
            }
            JobState::Waiting {
                message,
                recheck_after_seconds,
            } => {
                if let Some(message) = message {
                    debug_assert!(message.starts_with(WAITING_PREFIX));
                    self.steps[i].message = Some(message);
                }
                if let Some(seconds) = recheck_after_seconds {
                    self.recheck_after(seconds);
                }
            }
            JobState::CannotStart { message } => {
                if let Some(job) = self.steps[i].job_name.clone() {
                    self.plan.delete.push(job);
                }
                self.steps[i].exit_code = None;
                self.attempt_failed(i, None, message);
            }
            JobState::Refused { message, permanent } => self.create_refused(i, message, permanent),
            JobState::RunSucceeded {
                finished_at,
                run,
                outputs,
            } => self.call_succeeded(i, finished_at, &run, &outputs),
        }
    }

    /// The step's pod runs: a message about waiting for it no longer applies.
    fn pod_runs(&mut self, i: usize) {
        let status = &mut self.steps[i];
        status.create_refusals = 0;
        if status.message.as_deref().is_some_and(|m| m.starts_with(WAITING_PREFIX)) {
            status.message = None;
        }
    }

    /// Retries the step as a new attempt when its `retry` allows ([`retry::decide`]): at once, or
    /// Pending until `nextAttemptAt` with a backoff; else fails it.
    fn attempt_failed(&mut self, i: usize, finished_at: Option<Time>, message: String) {
        let attempt = self.steps[i].attempts.max(1);
        let n = attempt - self.steps[i].attempts_before.min(attempt);
        let failure = retry::Failure::of(self.steps[i].exit_code, &message);
        match retry::decide(self.spec_step(i).retry.as_deref(), n, failure) {
            Verdict::Retry { delay_seconds: 0 } => {
                self.steps[i].message = Some(retry::failure_message(attempt, failure, &message, true));
                self.launch(i, attempt + 1);
            }
            Verdict::Retry { delay_seconds } => {
                let failed = retry::failure_message(attempt, failure, &message, true);
                self.retry_later(i, finished_at, delay_seconds, failed);
            }
            Verdict::GiveUp { why } => {
                let mut message = retry::failure_message(attempt, failure, &message, false);
                if let Some(why) = why {
                    message = format!("{message}; not retried: {why}");
                }
                self.finish_step(i, StepPhase::Failed, finished_at, Some(message));
            }
        }
    }

    /// The step waits Pending for its next attempt, due `delay` seconds after the failed one
    /// ended; the hold on `nextAttemptAt` ([`HoldReason::NotBefore`]) launches it.
    fn retry_later(&mut self, i: usize, finished_at: Option<Time>, delay: i64, failed: String) {
        let ended = finished_at.unwrap_or_else(|| self.input.now.clone());
        let due = Time(ended.0 + jiff::SignedDuration::from_secs(delay));
        let status = &mut self.steps[i];
        status.message = Some(format!(
            "{failed}; attempt {} due at {} (backoff {delay}s)",
            status.attempts + 1,
            due.0
        ));
        status.finished_at = Some(ended);
        status.next_attempt_at = Some(due);
        self.set_phase(i, StepPhase::Pending);
    }

    /// A create of the step's Job was refused: the attempt never existed.
    fn create_refused(&mut self, i: usize, message: String, permanent: bool) {
        self.plan.refused.push((i, message.clone(), permanent));
        let job = self.steps[i].job_name.take().unwrap_or_default();
        if permanent {
            let message = format!("the API server refused Job {job}: {message}");
            self.finish_step(i, StepPhase::Failed, None, Some(message));
            return;
        }
        let status = &mut self.steps[i];
        status.attempts = status.attempts.saturating_sub(1);
        status.started_at = None;
        status.create_refusals += 1;
        let delay = refusal_backoff_seconds(status.create_refusals);
        let due = Time(self.input.now.0 + jiff::SignedDuration::from_secs(delay));
        status.message = Some(format!(
            "{WAITING_PREFIX}to create Job {job}: refused (try {}, next in {delay}s): {message}",
            status.create_refusals
        ));
        status.next_attempt_at = Some(due);
        self.set_phase(i, StepPhase::Pending);
        self.recheck_after(delay);
    }

    fn relaunch_if_lost(&mut self, i: usize) {
        let status = &self.steps[i];
        let launched_at = status.started_at.as_ref().map(|t| t.0);
        let waited = launched_at.map_or(i64::MAX, |t| self.input.now.0.duration_since(t).as_secs());
        let remaining = self.input.missing_job_grace_seconds - waited;
        if remaining > 0 {
            self.recheck_after(remaining);
            return;
        }
        let (attempt, job_name) = (status.attempts.max(1), status.job_name.clone());
        let job_name =
            job_name.unwrap_or_else(|| naming::job_name(self.input.run_name, &self.spec_step(i).name, attempt));
        self.plan.launch.push(Launch {
            step: i,
            attempt,
            job_name,
            item: None,
        });
    }

    /// Whether step `i`'s outcome stops its dependants from running.
    fn blocks_dependants(&self, i: usize) -> bool {
        rules::blocks_dependants(self.spec_step(i), &self.steps[i])
    }

    fn start_or_skip_pending(&mut self, order: &[usize]) {
        let running = self.steps.iter().filter(|s| s.phase == StepPhase::Running).count();
        let max_steps = match self.input.spec.max_active_steps {
            0 => usize::MAX,
            n => n as usize,
        };
        let mut slots = max_steps.saturating_sub(running);
        for &i in order {
            if self.steps[i].phase != StepPhase::Pending || (self.is_handler(i) && !self.main_steps_done()) {
                continue;
            }
            let deps: Vec<usize> = self
                .spec_step(i)
                .depends
                .iter()
                .filter_map(|d| self.index.get(d.as_str()).copied())
                .collect();
            if let Some(&blocker) = deps.iter().find(|&&d| self.blocks_dependants(d)) {
                let reason = format!(
                    "dependency {:?} {:?}",
                    self.steps[blocker].name, self.steps[blocker].phase
                );
                self.finish_step(i, StepPhase::Skipped, None, Some(reason));
                continue;
            }
            if !deps.iter().all(|&d| self.steps[d].phase.is_terminal()) {
                continue;
            }
            if let Some(when) = &self.spec_step(i).when {
                let steps = |name: &str| self.index.get(name).map(|&d| &self.steps[d]);
                match rules::evaluate_when(self.input.spec, self.spec_step(i), when, self.input.params, steps) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.steps[i].reason = Some(when::WHEN_FALSE.into());
                        let message = format!("when is false: {when}");
                        self.finish_step(i, StepPhase::Skipped, None, Some(message));
                        continue;
                    }
                    Err(message) => {
                        self.steps[i].reason = Some(rules::WHEN_ERROR.into());
                        self.finish_step(i, StepPhase::Failed, None, Some(format!("when: {message}")));
                        continue;
                    }
                }
            }
            let hold = if let Some(due) = self.steps[i]
                .next_attempt_at
                .clone()
                .filter(|due| due.0 > self.input.now.0)
            {
                let wait = due.0.duration_since(self.input.now.0).as_secs().max(1);
                self.recheck_after(wait);
                Some(HoldReason::NotBefore(due))
            } else if slots == 0 {
                Some(HoldReason::MaxActiveSteps)
            } else if self.budget == 0 && self.spec_step(i).call.is_none() {
                Some(HoldReason::JobCap)
            } else {
                None
            };
            match hold {
                Some(reason) => self.plan.held_back.push(Held { step: i, reason }),
                None if self.spec_step(i).for_each.is_some() => {
                    slots -= 1;
                    self.start_for_each(i);
                }
                None => {
                    slots -= 1;
                    if self.spec_step(i).call.is_none() {
                        self.budget -= 1;
                    }
                    let next_attempt = self.steps[i].attempts + 1;
                    self.launch(i, next_attempt);
                }
            }
        }
    }

    fn finish(mut self) -> Plan {
        if self.plan.outcome.is_none() && self.steps.iter().all(|s| s.phase.is_terminal()) {
            self.plan.outcome = Some(rules::outcome(self.input.spec, &self.steps, self.input.cancel));
        }
        self.plan.steps = self.steps;
        self.plan
    }
}

/// `done/total` for the run's progress column.
pub fn progress(steps: &[StepStatus], total: usize) -> String {
    let done = steps.iter().filter(|s| s.phase.is_terminal()).count();
    format!("{done}/{total}")
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "plan_compose_tests.rs"]
mod compose_tests;
