//! What a step composes, as the run page shows it: a `call` step's Dag and child run (its own or
//! a reused one), a `forEach` step's progress (n/m done, failed count, the first failed items).
//! Read from the step's spec (the run's captured Dag) and its status; pure.

use crate::api::{Step, StepStatus};

use super::run_url;

/// A step's composition; None for a plain step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Composition {
    /// The Dag a `call` step runs.
    pub call_dag: Option<String>,
    /// The child run a `call` step takes its outcome from: (name, URL).
    pub child: Option<(String, String)>,
    /// The child is an identical run made by someone else, not this run's own.
    pub reused: bool,
    pub fan_out: Option<FanOut>,
}

/// Progress of a `forEach` step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FanOut {
    /// Items in the list (0 until the list is known).
    pub total: u32,
    /// Instances finished (succeeded or failed).
    pub done: u32,
    pub failed: u32,
    /// Instances launched and not finished.
    pub running: u32,
    /// The first failed instances: `#index item: message`.
    pub failed_items: Vec<String>,
}

impl Composition {
    /// The composition of `step` (from the run's spec) in `namespace`, given its status; None
    /// when the step neither calls a Dag nor fans out.
    pub fn of(namespace: &str, step: Option<&Step>, status: Option<&StepStatus>) -> Option<Composition> {
        let call_dag = step.and_then(|s| s.call.as_ref()).map(|c| c.dag.clone());
        let child = status
            .and_then(|s| s.child_run.as_ref())
            .map(|c| (c.clone(), run_url(namespace, c)));
        let fans_out = step.is_some_and(|s| s.for_each.is_some()) || status.is_some_and(|s| s.for_each.is_some());
        if call_dag.is_none() && child.is_none() && !fans_out {
            return None;
        }
        let fan_out = fans_out.then(|| {
            let progress = status.and_then(|s| s.for_each.clone()).unwrap_or_default();
            let done = progress.succeeded + progress.failed;
            FanOut {
                total: progress.total,
                done,
                failed: progress.failed,
                running: progress.launched.saturating_sub(done),
                failed_items: progress
                    .failed_items
                    .iter()
                    .map(|f| format!("#{} {}: {}", f.index, f.item, f.message))
                    .collect(),
            }
        });
        Some(Composition {
            call_dag,
            child,
            reused: status.is_some_and(|s| s.reused),
            fan_out,
        })
    }

    /// A short line for the graph node: a fan-out's progress, else the called Dag.
    pub fn summary(&self) -> String {
        if let Some(f) = &self.fan_out {
            return f.progress();
        }
        match (&self.call_dag, self.reused) {
            (Some(dag), true) => format!("call {dag}, reused"),
            (Some(dag), false) => format!("call {dag}"),
            (None, _) => "call".into(),
        }
    }

    /// The sentence for screen readers and tooltips, e.g. `calls Dag bias, child run bias-1
    /// (reused)` or `fan-out, 3/5 done, 1 failed`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.fan_out {
            parts.push(format!("fan-out, {}", f.progress()));
        }
        if let Some(dag) = &self.call_dag {
            parts.push(format!("calls Dag {dag}"));
        }
        if let Some((child, _)) = &self.child {
            let reused = if self.reused { " (reused)" } else { "" };
            parts.push(format!("child run {child}{reused}"));
        }
        parts.join(", ")
    }
}

impl FanOut {
    /// `3/5 done, 1 failed` (`3/5 done` without failures; `?` for an unknown total).
    pub fn progress(&self) -> String {
        let total = if self.total == 0 && self.done == 0 {
            "?".to_string()
        } else {
            self.total.to_string()
        };
        let mut text = format!("{}/{total} done", self.done);
        if self.failed > 0 {
            text.push_str(&format!(", {} failed", self.failed));
        }
        text
    }

    /// The finished share, 0.0 to 1.0.
    pub fn share_done(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (f64::from(self.done) / f64::from(self.total)).min(1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Call, FailedItem, ForEachStatus};

    fn step(call: Option<&str>, for_each: bool) -> Step {
        Step {
            name: "s".into(),
            call: call.map(|dag| {
                Box::new(Call {
                    dag: dag.into(),
                    ..Default::default()
                })
            }),
            for_each: for_each.then(Box::default),
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_step_composes_nothing() {
        assert_eq!(Composition::of("ns", Some(&step(None, false)), None), None);
        assert_eq!(Composition::of("ns", None, Some(&StepStatus::default())), None);
    }

    #[test]
    fn a_call_names_its_dag_and_links_its_child_reused_or_not() {
        let status = StepStatus {
            child_run: Some("bias-n1-abc".into()),
            reused: true,
            ..Default::default()
        };
        let c = Composition::of("ns", Some(&step(Some("bias"), false)), Some(&status)).unwrap();
        assert_eq!(c.child, Some(("bias-n1-abc".into(), "/ns/ns/runs/bias-n1-abc".into())));
        assert_eq!(c.summary(), "call bias, reused");
        assert_eq!(c.describe(), "calls Dag bias, child run bias-n1-abc (reused)");
        let waiting = Composition::of("ns", Some(&step(Some("bias"), false)), None).unwrap();
        assert_eq!((waiting.summary().as_str(), waiting.child), ("call bias", None));
    }

    #[test]
    fn a_fan_out_counts_done_failed_and_running_instances() {
        let status = StepStatus {
            for_each: Some(Box::new(ForEachStatus {
                total: 5,
                launched: 4,
                succeeded: 2,
                failed: 1,
                failed_items: vec![FailedItem {
                    index: 3,
                    item: "bad".into(),
                    message: "exit code 7".into(),
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        let c = Composition::of("ns", Some(&step(None, true)), Some(&status)).unwrap();
        let f = c.fan_out.clone().unwrap();
        assert_eq!((f.done, f.failed, f.running), (3, 1, 1));
        assert_eq!(c.summary(), "3/5 done, 1 failed");
        assert_eq!(f.failed_items, ["#3 bad: exit code 7"]);
        assert!((f.share_done() - 0.6).abs() < 1e-9);
        // Before the list is known (an output of a step still running).
        let unknown = Composition::of("ns", Some(&step(None, true)), None).unwrap();
        assert_eq!(unknown.summary(), "0/? done");
        assert_eq!(unknown.fan_out.unwrap().share_done(), 0.0);
    }
}
