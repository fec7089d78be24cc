//! The planner's side of `forEach` steps. Items `0..launched` have started, in item order, and
//! at most `maxParallel` unfinished ones run at once (and no more Jobs than the operator's cap
//! allows). An instance's current attempt is the highest attempt whose Job (or child run)
//! exists, so nothing per instance is kept in the status but its finished bit; each instance
//! retries on its own under the step's `retry`. The step ends once every instance finished:
//! Succeeded when all succeeded, else Failed naming the failed ones. With no items it succeeds
//! at once.

use std::collections::BTreeMap;

use crate::api::{ForEachStatus, StepPhase};

use super::super::call::{Resolved, Spawn};
use super::super::foreach::{self, Bits, MAX_ATTEMPTS};
use super::super::naming;
use super::super::retry::{self, Verdict};
use super::call_step::take_outputs;
use super::{Held, HoldReason, Item, JobState, Launch, Planner, refusal_backoff_seconds, rules};

/// Where one instance stands after this pass.
enum Instance {
    Running,
    Succeeded(BTreeMap<String, String>),
    Failed(String),
}

impl Planner<'_> {
    /// The step's dependencies are done: the fan-out starts with its first window.
    pub(super) fn start_for_each(&mut self, i: usize) {
        let round = self.steps[i].for_each.as_ref().map_or(0, |f| f.round);
        let status = &mut self.steps[i];
        status.attempts = 1;
        status.started_at = Some(self.input.now.clone());
        status.finished_at = None;
        status.exit_code = None;
        status.next_attempt_at = None;
        status.for_each = Some(Box::new(ForEachStatus {
            round,
            ..Default::default()
        }));
        self.set_phase(i, StepPhase::Running);
        self.observe_for_each(i);
    }

    fn items_of(&self, i: usize) -> Result<Vec<String>, String> {
        let for_each = self.spec_step(i).for_each.as_ref().expect("a forEach step");
        let output = |s: &str, n: &str| self.recorded_output(s, n);
        foreach::items(for_each, self.input.params, &output)
    }

    /// One pass over a Running fan-out: finished instances recorded, failed ones retried or
    /// named, the window refilled, the step ended when every instance finished.
    pub(super) fn observe_for_each(&mut self, i: usize) {
        let items = match self.items_of(i) {
            Ok(items) => items,
            Err(message) => return self.finish_step(i, StepPhase::Failed, None, Some(message)),
        };
        let total = items.len();
        let mut fe = self.steps[i].for_each.take().unwrap_or_default();
        fe.total = total as u32;
        let mut done = Bits::decode(&fe.done, total);
        let declared = self.spec_step(i).outputs.clone();
        let mut values: Vec<Vec<Option<String>>> = declared
            .iter()
            .map(|n| foreach::decode_array(self.steps[i].outputs.get(n).map(String::as_str), total))
            .collect();
        let max = match self.spec_step(i).for_each.as_ref().map_or(0, |f| f.max_parallel) {
            0 => usize::MAX,
            n => n as usize,
        };
        let mut running = 0;
        let mut index = 0;
        while index < total {
            let launched = (fe.launched as usize).min(total);
            let is_new = index >= launched;
            if is_new && running >= max {
                break;
            }
            if is_new && self.budget == 0 && self.spec_step(i).call.is_none() {
                self.plan.held_back.push(Held {
                    step: i,
                    reason: HoldReason::JobCap,
                });
                break;
            }
            if !is_new && done.get(index) {
                index += 1;
                continue;
            }
            let item = Item {
                index: index as u32,
                value: items[index].clone(),
            };
            let outcome = if is_new {
                fe.launched += 1;
                let state = self.instance_attempt(i, &item, fe.round, 1);
                self.settle_instance(i, &item, fe.round, 1, state)
            } else {
                self.advance_instance(i, &item, fe.round)
            };
            match outcome {
                Instance::Running => running += 1,
                Instance::Succeeded(outputs) => {
                    done.set(index);
                    fe.succeeded += 1;
                    for (k, name) in declared.iter().enumerate() {
                        values[k][index] = outputs.get(name).cloned();
                    }
                }
                Instance::Failed(message) => {
                    done.set(index);
                    foreach::record_failure(&mut fe, item.index, &item.value, &message);
                }
            }
            index += 1;
        }
        fe.done = done.encode();
        for (k, name) in declared.iter().enumerate() {
            self.steps[i]
                .outputs
                .insert(name.clone(), foreach::encode_array(&values[k]));
        }
        let finished = fe.launched as usize >= total && (fe.succeeded + fe.failed) as usize >= total;
        let message = (fe.failed > 0).then(|| foreach::failure_message(&fe));
        let phase = if fe.failed == 0 {
            StepPhase::Succeeded
        } else {
            StepPhase::Failed
        };
        self.steps[i].for_each = Some(fe);
        if finished {
            self.finish_step(i, phase, None, message);
        }
    }

    /// The Job or child run name of an instance's attempt.
    fn instance_name(&self, i: usize, item: &Item, round: u32, attempt: u32) -> String {
        let (run, step) = (self.input.run_name, &self.spec_step(i).name);
        if self.spec_step(i).call.is_some() {
            naming::child_run_name(run, step, Some(item.index), round, attempt)
        } else {
            naming::instance_job_name(run, step, item.index, round, attempt)
        }
    }

    fn attempt_exists(&self, i: usize, item: &Item, round: u32, attempt: u32) -> bool {
        let name = self.instance_name(i, item, round, attempt);
        match (self.spec_step(i).call.is_some(), self.input.calls) {
            (true, Some(ctx)) => ctx.view.run(&name).is_some(),
            (true, None) => false,
            (false, _) => (self.input.job)(&name) != JobState::Missing,
        }
    }

    /// The instance's current attempt: the highest that exists (1 when none does).
    fn current_attempt(&self, i: usize, item: &Item, round: u32) -> u32 {
        let mut attempt = 1;
        while attempt < MAX_ATTEMPTS && self.attempt_exists(i, item, round, attempt + 1) {
            attempt += 1;
        }
        attempt
    }

    fn advance_instance(&mut self, i: usize, item: &Item, round: u32) -> Instance {
        let attempt = self.current_attempt(i, item, round);
        let state = self.instance_attempt(i, item, round, attempt);
        self.settle_instance(i, item, round, attempt, state)
    }

    /// The state of attempt `attempt` of an instance, creating its Job or child run when it does
    /// not exist (idempotent: the name is fixed). None: it is being created.
    fn instance_attempt(&mut self, i: usize, item: &Item, round: u32, attempt: u32) -> Option<JobState> {
        let name = self.instance_name(i, item, round, attempt);
        if self.spec_step(i).call.is_some() {
            return match self.resolve_call(i, &name, Some(&item.value)) {
                Resolved::Follow { state, .. } => Some(state),
                Resolved::Spawn { params, chain } => {
                    let dag = self.call_dag(i);
                    self.plan.spawn.push(Spawn {
                        step: i,
                        name,
                        dag,
                        params,
                        chain,
                        index: Some(item.index),
                    });
                    None
                }
                Resolved::Refused(message) => Some(JobState::Refused {
                    message,
                    permanent: true,
                }),
            };
        }
        match (self.input.job)(&name) {
            JobState::Missing if self.budget == 0 => {
                self.plan.held_back.push(Held {
                    step: i,
                    reason: HoldReason::JobCap,
                });
                None
            }
            JobState::Missing => {
                self.budget -= 1;
                self.plan.launch.push(Launch {
                    step: i,
                    attempt,
                    job_name: name,
                    item: Some(item.clone()),
                });
                None
            }
            state => Some(state),
        }
    }

    /// What an attempt's state means for the instance: running, done, or (after a failure the
    /// step's `retry` allows) the next attempt, started here.
    fn settle_instance(
        &mut self,
        i: usize,
        item: &Item,
        round: u32,
        mut attempt: u32,
        mut state: Option<JobState>,
    ) -> Instance {
        loop {
            let (finished_at, exit_code, message, cannot_start) = match state {
                None | Some(JobState::Active) | Some(JobState::Missing) => return Instance::Running,
                Some(JobState::Waiting {
                    recheck_after_seconds, ..
                }) => {
                    if let Some(seconds) = recheck_after_seconds {
                        self.recheck_after(seconds);
                    }
                    return Instance::Running;
                }
                Some(JobState::Succeeded { outputs, .. }) => {
                    return match rules::record_outputs(self.spec_step(i), outputs.as_deref()) {
                        Ok(values) => Instance::Succeeded(values),
                        Err(message) => Instance::Failed(message),
                    };
                }
                Some(JobState::RunSucceeded { run, outputs, .. }) => {
                    return match take_outputs(&self.spec_step(i).outputs, &run, &outputs) {
                        Ok(values) => Instance::Succeeded(values),
                        Err(message) => Instance::Failed(message),
                    };
                }
                Some(JobState::Refused { message, permanent }) => {
                    if permanent {
                        return Instance::Failed(message);
                    }
                    self.recheck_after(refusal_backoff_seconds(1));
                    return Instance::Running;
                }
                Some(JobState::Failed {
                    finished_at,
                    exit_code,
                    message,
                }) => (finished_at, exit_code, message, false),
                Some(JobState::CannotStart { message }) => {
                    self.plan.delete.push(self.instance_name(i, item, round, attempt));
                    (None, None, message, true)
                }
            };
            let failure = retry::Failure::of(exit_code, &message);
            match retry::decide(self.spec_step(i).retry.as_deref(), attempt, failure) {
                Verdict::Retry { delay_seconds } => {
                    let ended = finished_at.map_or(self.input.now.0, |t| t.0);
                    let due = ended + jiff::SignedDuration::from_secs(delay_seconds);
                    if !cannot_start && due > self.input.now.0 {
                        self.recheck_after(due.duration_since(self.input.now.0).as_secs().max(1));
                        return Instance::Running;
                    }
                    attempt += 1;
                    state = self.instance_attempt(i, item, round, attempt);
                }
                Verdict::GiveUp { why } => {
                    let mut message = retry::failure_message(attempt, failure, &message, false);
                    if let Some(why) = why {
                        message = format!("{message}; not retried: {why}");
                    }
                    return Instance::Failed(message);
                }
            }
        }
    }

    /// A cancelled fan-out: the running instances' Jobs are deleted, their own child runs cancelled.
    pub(super) fn stop_instances(&mut self, i: usize) {
        let Some(fe) = self.steps[i].for_each.clone() else {
            return;
        };
        let Ok(items) = self.items_of(i) else { return };
        let done = Bits::decode(&fe.done, items.len());
        for index in (0..fe.launched as usize).take(items.len()).filter(|&x| !done.get(x)) {
            let item = Item {
                index: index as u32,
                value: items[index].clone(),
            };
            let attempt = self.current_attempt(i, &item, fe.round);
            let name = self.instance_name(i, &item, fe.round, attempt);
            if self.spec_step(i).call.is_some() {
                self.plan.cancel_runs.push(name);
            } else {
                self.plan.delete.push(name);
            }
        }
    }
}
