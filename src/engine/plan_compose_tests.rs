//! The planner with `forEach` and `call` steps, driven like a real run: each pass's launches
//! become Jobs, some of which then finish.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::tests::t;
use super::*;
use crate::api::{Call, ContainerSettings, DagRun, ForEach, RetryPolicy, RunPhase};
use crate::engine::call::tests::{FakeView, child_dag, child_run};
use crate::engine::graph::tests::step;

fn fan_out(items: Vec<String>, max_parallel: u32) -> DagSpec {
    let mut work = step("work", &[]);
    work.for_each = Some(Box::new(ForEach {
        items: Some(items),
        max_parallel,
        ..Default::default()
    }));
    work.outputs = vec!["n".into()];
    work.retry = Some(Box::new(RetryPolicy {
        limit: 1,
        ..Default::default()
    }));
    let mut sum = step("sum", &["work"]);
    sum.command = vec!["echo".into(), "$(steps.work.outputs.n)".into()];
    DagSpec {
        defaults: ContainerSettings {
            image: Some("busybox".into()),
            ..Default::default()
        },
        steps: vec![work, sum],
        ..Default::default()
    }
}

struct Sim {
    spec: DagSpec,
    steps: Vec<StepStatus>,
    jobs: HashMap<String, JobState>,
    /// Item value per Job name, for the simulated program.
    items: HashMap<String, String>,
    cancel: bool,
}

impl Sim {
    fn new(spec: DagSpec) -> Sim {
        Sim {
            spec,
            steps: Vec::new(),
            jobs: HashMap::new(),
            items: HashMap::new(),
            cancel: false,
        }
    }

    fn pass(&mut self, now: i64, view: Option<&FakeView>, run: &DagRun) -> Plan {
        let jobs = self.jobs.clone();
        let lookup = move |name: &str| jobs.get(name).cloned().unwrap_or(JobState::Missing);
        let p = plan(&PlanInput {
            run_name: "run",
            spec: &self.spec,
            params: &Default::default(),
            recorded: &self.steps,
            job: &lookup,
            cancel: self.cancel,
            now: t(now),
            launch_budget: None,
            missing_job_grace_seconds: 10,
            calls: view.map(|view| CallContext { run, view }),
        })
        .unwrap();
        for launch in &p.launch {
            self.jobs.insert(launch.job_name.clone(), JobState::Active);
            if let Some(item) = &launch.item {
                self.items.insert(launch.job_name.clone(), item.value.clone());
            }
        }
        for job in &p.delete {
            self.jobs.remove(job);
        }
        self.steps = p.steps.clone();
        p
    }

    fn active(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, s)| **s == JobState::Active)
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// The program: prints `n=<item>`; fails (exit 3) for items starting with `bad`.
    fn finish(&mut self, job: &str) {
        let item = self.items.get(job).cloned().unwrap_or_default();
        let state = if item.starts_with("bad") {
            JobState::Failed {
                finished_at: None,
                exit_code: Some(3),
                message: "exit code 3".into(),
            }
        } else {
            JobState::Succeeded {
                finished_at: None,
                exit_code: Some(0),
                outputs: Some(format!("n={item}\n")),
            }
        };
        self.jobs.insert(job.to_string(), state);
    }
}

fn parent() -> DagRun {
    DagRun::new("run", Default::default())
}

proptest! {
    /// However Jobs finish, at most maxParallel instances run at once, every item runs, and the
    /// outputs are in item order.
    #[test]
    fn the_window_is_never_exceeded(n in 0usize..120, max in 1u32..12, seed in any::<u64>()) {
        let items: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
        let mut sim = Sim::new(fan_out(items.clone(), max));
        let mut rng = seed;
        let run = parent();
        for pass in 0..10_000 {
            let p = sim.pass(pass, None, &run);
            prop_assert!(sim.active().len() <= max as usize, "{} running", sim.active().len());
            if sim.steps[0].phase.is_terminal() {
                break;
            }
            for job in sim.active() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if rng >> 62 == 0 {
                    sim.finish(&job);
                }
            }
            prop_assert!(p.outcome.is_none());
        }
        prop_assert_eq!(sim.steps[0].phase, StepPhase::Succeeded);
        let expected = serde_json::to_string(&items).unwrap();
        prop_assert_eq!(&sim.steps[0].outputs["n"], &expected);
        let fe = sim.steps[0].for_each.clone().unwrap();
        prop_assert_eq!((fe.total, fe.succeeded, fe.failed), (n as u32, n as u32, 0));
        prop_assert_eq!(sim.items.len(), n);
    }
}

#[test]
fn a_failing_item_is_retried_then_named() {
    let items = vec!["a".to_string(), "bad-one".to_string(), "c".to_string()];
    let mut sim = Sim::new(fan_out(items, 0));
    let run = parent();
    for pass in 0..10 {
        sim.pass(pass, None, &run);
        for job in sim.active() {
            sim.finish(&job);
        }
    }
    let work = &sim.steps[0];
    assert_eq!(work.phase, StepPhase::Failed);
    let message = work.message.clone().unwrap();
    assert!(
        message.starts_with("1 of 3 instances failed: item 1 (\"bad-one\"): attempt 2 failed"),
        "{message}"
    );
    let fe = work.for_each.clone().unwrap();
    assert_eq!((fe.succeeded, fe.failed, fe.failed_items[0].index), (2, 1, 1));
    let bad_jobs = sim.items.values().filter(|v| v.starts_with("bad")).count();
    assert_eq!(bad_jobs, 2, "the failing item ran twice (retry.limit 1)");
    assert_eq!(work.outputs["n"], r#"["a",null,"c"]"#);
    assert_eq!(sim.steps[1].phase, StepPhase::Skipped);
}

#[test]
fn an_empty_list_succeeds_at_once() {
    let mut sim = Sim::new(fan_out(vec![], 4));
    let p = sim.pass(0, None, &parent());
    assert_eq!(sim.steps[0].phase, StepPhase::Succeeded);
    assert_eq!(sim.steps[0].outputs["n"], "[]");
    assert!(p.launch.iter().all(|l| l.step == 1), "only the dependant launches");
}

#[test]
fn cancel_stops_the_running_instances() {
    let items: Vec<String> = (0..20).map(|i| format!("i{i}")).collect();
    let mut sim = Sim::new(fan_out(items, 5));
    sim.pass(0, None, &parent());
    let running = sim.active();
    assert_eq!(running.len(), 5);
    sim.cancel = true;
    let p = sim.pass(1, None, &parent());
    let mut deleted = p.delete.clone();
    deleted.sort();
    assert_eq!(deleted, running);
    assert_eq!(p.outcome.unwrap().phase, RunPhase::Cancelled);
}

/// Invariant 7: a run fanning out over 10,000 items stays under 256 KiB at every pass, with its
/// captured spec (the items written out) and an output array of every item.
#[test]
fn a_10000_item_run_stays_under_256_kib() {
    let items: Vec<String> = (0..10_000).map(|i| format!("f{i:05}")).collect();
    let mut sim = Sim::new(fan_out(items, 2_500));
    let run = parent();
    let mut largest = 0;
    for pass in 0..40 {
        let p = sim.pass(pass, None, &run);
        let mut stored = run.clone();
        stored.status = Some(crate::api::DagRunStatus {
            steps: p.steps.clone(),
            dag_spec: Some(sim.spec.clone().into()),
            ..Default::default()
        });
        largest = largest.max(serde_json::to_vec(&stored).unwrap().len());
        if p.outcome.is_some() {
            break;
        }
        let active = sim.active();
        let few = active.len() < 3;
        for (k, job) in active.into_iter().enumerate() {
            if few || k % 3 != 0 {
                sim.finish(&job);
            }
        }
    }
    assert_eq!(sim.steps[1].phase, StepPhase::Succeeded);
    assert!(largest < 256 * 1024, "the run reached {largest} bytes");
}

fn call_spec(for_each: Option<ForEach>) -> DagSpec {
    let mut bias = step("bias", &[]);
    bias.call = Some(Box::new(Call {
        dag: "bias".into(),
        params: [("night".to_string(), "$(item)".to_string())].into(),
    }));
    if for_each.is_none() {
        bias.call.as_mut().unwrap().params = [("night".to_string(), "n1".to_string())].into();
    }
    bias.for_each = for_each.map(Box::new);
    bias.outputs = vec!["bias".into()];
    DagSpec {
        steps: vec![bias],
        ..Default::default()
    }
}

#[test]
fn a_call_spawns_its_child_then_takes_its_outputs() {
    let mut view = FakeView {
        dags: [(
            "bias".to_string(),
            child_dag("bias", crate::api::DuplicatePolicy::Forbid),
        )]
        .into(),
        runs: vec![],
    };
    let mut sim = Sim::new(call_spec(None));
    let run = parent();
    let p = sim.pass(0, Some(&view), &run);
    assert_eq!(p.spawn.len(), 1);
    let child = p.spawn[0].name.clone();
    assert_eq!(child, naming::child_run_name("run", "bias", None, 0, 1));
    assert_eq!(sim.steps[0].child_run.as_deref(), Some(child.as_str()));
    assert!(p.launch.is_empty(), "a call step launches no Job");
    view.runs
        .push(child_run(&child, "bias", "n1", Some(RunPhase::Succeeded)));
    let p = sim.pass(1, Some(&view), &run);
    assert_eq!(sim.steps[0].phase, StepPhase::Succeeded);
    assert_eq!(sim.steps[0].outputs["bias"], "bias-n1");
    assert!(!sim.steps[0].reused);
    assert_eq!(p.outcome.unwrap().phase, RunPhase::Succeeded);
}

#[test]
fn a_call_reuses_a_succeeded_identical_run_at_once() {
    let view = FakeView {
        dags: [(
            "bias".to_string(),
            child_dag("bias", crate::api::DuplicatePolicy::Forbid),
        )]
        .into(),
        runs: vec![child_run("earlier", "bias", "n1", Some(RunPhase::Succeeded))],
    };
    let mut sim = Sim::new(call_spec(None));
    let p = sim.pass(0, Some(&view), &parent());
    assert!(p.spawn.is_empty());
    assert_eq!(sim.steps[0].phase, StepPhase::Succeeded);
    assert_eq!(
        (sim.steps[0].child_run.as_deref(), sim.steps[0].reused),
        (Some("earlier"), true)
    );
}

#[test]
fn a_fan_out_of_calls_makes_one_child_per_item_and_collects_outputs() {
    let mut view = FakeView {
        dags: [(
            "bias".to_string(),
            child_dag("bias", crate::api::DuplicatePolicy::Allow),
        )]
        .into(),
        runs: vec![],
    };
    let items: Vec<String> = vec!["n1".into(), "n2".into(), "n3".into()];
    let mut sim = Sim::new(call_spec(Some(ForEach {
        items: Some(items),
        max_parallel: 2,
        ..Default::default()
    })));
    let run = parent();
    let mut spawned = Vec::new();
    for pass in 0..6 {
        let p = sim.pass(pass, Some(&view), &run);
        assert!(p.spawn.len() <= 2);
        for s in &p.spawn {
            spawned.push(s.params["night"].clone());
            view.runs.push(child_run(
                &s.name,
                "bias",
                &s.params["night"],
                Some(RunPhase::Succeeded),
            ));
        }
        view.runs = view.runs.iter().map(Arc::clone).collect();
    }
    assert_eq!(spawned, vec!["n1", "n2", "n3"]);
    assert_eq!(sim.steps[0].phase, StepPhase::Succeeded);
    assert_eq!(sim.steps[0].outputs["bias"], r#"["bias-n1","bias-n2","bias-n3"]"#);
}
