//! The planner's side of `call` steps: each pass resolves the step's current attempt
//! ([`call::resolve`]) to the child run it follows, its own (created here when missing) or a
//! reused identical one, and takes in that run's state like a Job's.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::StepPhase;

use super::super::call::{self, Caller, Resolved, Spawn};
use super::super::naming;
use super::Planner;

impl Planner<'_> {
    /// The value of output `name` of step `step` as recorded so far in this plan.
    pub(super) fn recorded_output(&self, step: &str, name: &str) -> Option<String> {
        let &i = self.index.get(step)?;
        self.steps[i].outputs.get(name).cloned()
    }

    /// Resolves attempt `attempt` of call step `i` (instance `item`, if a fan-out) to the run it
    /// follows. `own` is the attempt's own child name.
    pub(super) fn resolve_call(&self, i: usize, own: &str, item: Option<&str>) -> Resolved {
        let step = self.spec_step(i);
        let call = step.call.as_ref().expect("resolve_call is called for call steps");
        let Some(ctx) = self.input.calls else {
            return Resolved::Refused("calls are not available to this planner".into());
        };
        let output = |s: &str, n: &str| self.recorded_output(s, n);
        let params = call::expand_params(call, self.input.params, &output, item);
        call::resolve(&Caller {
            view: ctx.view,
            run: ctx.run,
            call,
            params,
            own: own.to_string(),
        })
    }

    /// A Running (or just launched) call step: follow its attempt's child, or create it.
    pub(super) fn observe_call(&mut self, i: usize) {
        let attempt = self.steps[i].attempts.max(1);
        let own = naming::child_run_name(self.input.run_name, &self.spec_step(i).name, None, 0, attempt);
        match self.resolve_call(i, &own, None) {
            Resolved::Follow { name, reused, state } => {
                self.steps[i].child_run = Some(name);
                self.steps[i].reused = reused;
                self.apply_state(i, state);
            }
            Resolved::Spawn { params, chain } => {
                self.steps[i].child_run = Some(own.clone());
                self.steps[i].reused = false;
                self.plan.spawn.push(Spawn {
                    step: i,
                    name: own,
                    dag: self.call_dag(i),
                    params,
                    chain,
                    index: None,
                });
            }
            Resolved::Refused(message) => self.finish_step(i, StepPhase::Failed, None, Some(message)),
        }
    }

    pub(super) fn call_dag(&self, i: usize) -> String {
        self.spec_step(i)
            .call
            .as_ref()
            .map(|c| c.dag.clone())
            .unwrap_or_default()
    }

    /// The followed run succeeded: the step takes the outputs it declares from the run's.
    pub(super) fn call_succeeded(
        &mut self,
        i: usize,
        finished_at: Option<Time>,
        run: &str,
        outputs: &BTreeMap<String, String>,
    ) {
        match take_outputs(&self.spec_step(i).outputs, run, outputs) {
            Ok(values) => {
                self.steps[i].outputs = values;
                self.finish_step(i, StepPhase::Succeeded, finished_at, None);
            }
            Err(message) => self.finish_step(i, StepPhase::Failed, finished_at, Some(message)),
        }
    }
}

/// The `declared` outputs of a call step from its child run's `outputs`; Err names a missing one.
pub(super) fn take_outputs(
    declared: &[String],
    run: &str,
    outputs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    declared
        .iter()
        .map(|name| match outputs.get(name) {
            Some(value) => Ok((name.clone(), value.clone())),
            None => {
                let has: Vec<&str> = outputs.keys().map(String::as_str).collect();
                Err(format!(
                    "child run {run} has no output {name:?} (it recorded: {})",
                    if has.is_empty() {
                        "none".to_string()
                    } else {
                        has.join(", ")
                    }
                ))
            }
        })
        .collect()
}
