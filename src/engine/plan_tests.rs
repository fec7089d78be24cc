use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::api::RetryPolicy;
use crate::engine::graph::tests::{spec, step};

pub(crate) fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

pub(crate) fn plan_with(spec: &DagSpec, recorded: &[StepStatus], jobs: &HashMap<String, JobState>, now: i64) -> Plan {
    let lookup = |name: &str| jobs.get(name).cloned().unwrap_or(JobState::Missing);
    plan(&PlanInput {
        run_name: "run",
        spec,
        params: &Default::default(),
        recorded,
        job: &lookup,
        cancel: false,
        now: t(now),
        launch_budget: None,
        missing_job_grace_seconds: 10,
        calls: None,
    })
    .unwrap()
}

fn phases(p: &Plan) -> Vec<StepPhase> {
    p.steps.iter().map(|s| s.phase).collect()
}

#[test]
fn first_plan_launches_only_roots() {
    let s = spec(vec![step("a", &[]), step("b", &["a"]), step("c", &[])]);
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    let launched: Vec<usize> = p.launch.iter().map(|l| l.step).collect();
    assert_eq!(launched, vec![0, 2]);
    assert_eq!(
        phases(&p),
        vec![StepPhase::Running, StepPhase::Pending, StepPhase::Running]
    );
    assert_eq!(p.launch[0].job_name, naming::job_name("run", "a", 1));
    assert!(p.outcome.is_none());
}

#[test]
fn failure_skips_dependants_but_independent_steps_continue() {
    let s = spec(vec![
        step("a", &[]),
        step("b", &["a"]),
        step("c", &["b"]),
        step("x", &[]),
    ]);
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    let mut jobs = HashMap::new();
    jobs.insert(
        p.steps[0].job_name.clone().unwrap(),
        JobState::Failed {
            finished_at: None,
            exit_code: Some(3),
            message: "exit code 3".into(),
        },
    );
    jobs.insert(p.steps[3].job_name.clone().unwrap(), JobState::Active);
    let p = plan_with(&s, &p.steps, &jobs, 1);
    assert_eq!(
        phases(&p),
        vec![
            StepPhase::Failed,
            StepPhase::Skipped,
            StepPhase::Skipped,
            StepPhase::Running
        ]
    );
    assert_eq!(p.steps[0].exit_code, Some(3));
    assert!(p.outcome.is_none(), "x is still running");
    jobs.insert(
        p.steps[3].job_name.clone().unwrap(),
        JobState::Succeeded {
            finished_at: None,
            exit_code: Some(0),
            outputs: None,
        },
    );
    let p = plan_with(&s, &p.steps, &jobs, 2);
    let outcome = p.outcome.unwrap();
    assert_eq!(outcome.phase, RunPhase::Failed);
    assert!(
        outcome.message.contains("step \"a\" failed: exit code 3"),
        "{}",
        outcome.message
    );
}

#[test]
fn continue_on_failure_lets_dependants_run_and_the_run_succeed() {
    let mut a = step("a", &[]);
    a.continue_on_failure = true;
    let s = spec(vec![a, step("b", &["a"])]);
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    let mut jobs = HashMap::new();
    jobs.insert(
        p.launch[0].job_name.clone(),
        JobState::Failed {
            finished_at: None,
            exit_code: Some(1),
            message: "x".into(),
        },
    );
    let p = plan_with(&s, &p.steps, &jobs, 1);
    assert_eq!(p.launch.len(), 1);
    assert_eq!(p.launch[0].step, 1);
    jobs.insert(
        p.launch[0].job_name.clone(),
        JobState::Succeeded {
            finished_at: None,
            exit_code: Some(0),
            outputs: None,
        },
    );
    let p = plan_with(&s, &p.steps, &jobs, 2);
    assert_eq!(p.outcome.unwrap().phase, RunPhase::Succeeded);
}

#[test]
fn retry_launches_a_new_attempt_with_a_new_name() {
    let mut a = step("a", &[]);
    a.retry = Some(Box::new(RetryPolicy {
        limit: 1,
        ..Default::default()
    }));
    let s = spec(vec![a]);
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    let first = p.launch[0].job_name.clone();
    let mut jobs = HashMap::new();
    jobs.insert(
        first.clone(),
        JobState::Failed {
            finished_at: None,
            exit_code: Some(1),
            message: "boom".into(),
        },
    );
    let p = plan_with(&s, &p.steps, &jobs, 1);
    assert_eq!(
        p.launch,
        vec![Launch {
            step: 0,
            attempt: 2,
            job_name: naming::job_name("run", "a", 2),
            item: None,
        }]
    );
    assert_ne!(p.launch[0].job_name, first);
    assert_eq!(p.steps[0].attempts, 2);
    jobs.insert(
        p.launch[0].job_name.clone(),
        JobState::Failed {
            finished_at: None,
            exit_code: Some(1),
            message: "boom".into(),
        },
    );
    let p = plan_with(&s, &p.steps, &jobs, 2);
    assert!(p.launch.is_empty());
    assert_eq!(p.steps[0].phase, StepPhase::Failed);
    assert_eq!(p.steps[0].message.as_deref(), Some("attempt 2 failed: boom"));
}

#[test]
fn run_retry_reruns_failed_and_skipped_steps_as_new_attempts() {
    let mut a = step("a", &[]);
    a.retry = Some(Box::new(RetryPolicy {
        limit: 1,
        ..Default::default()
    }));
    let s = spec(vec![step("ok", &[]), a, step("b", &["a"])]);
    let mut jobs = HashMap::new();
    let fail = || JobState::Failed {
        finished_at: None,
        exit_code: Some(1),
        message: "boom".into(),
    };
    let mut p = plan_with(&s, &[], &jobs, 0);
    jobs.insert(
        naming::job_name("run", "ok", 1),
        JobState::Succeeded {
            finished_at: None,
            exit_code: Some(0),
            outputs: None,
        },
    );
    jobs.insert(naming::job_name("run", "a", 1), fail());
    p = plan_with(&s, &p.steps, &jobs, 1);
    jobs.insert(naming::job_name("run", "a", 2), fail());
    p = plan_with(&s, &p.steps, &jobs, 2);
    assert_eq!(p.outcome.as_ref().unwrap().phase, RunPhase::Failed);
    let mut steps = p.steps.clone();
    reset_for_retry(&s, &mut steps);
    assert_eq!(
        steps.iter().map(|s| s.phase).collect::<Vec<_>>(),
        [StepPhase::Succeeded, StepPhase::Pending, StepPhase::Pending]
    );
    let p = plan_with(&s, &steps, &jobs, 3);
    assert_eq!(
        p.launch,
        vec![Launch {
            step: 1,
            attempt: 3,
            job_name: naming::job_name("run", "a", 3),
            item: None,
        }]
    );
    // the step's own retry.limit applies afresh after a run retry
    jobs.insert(naming::job_name("run", "a", 3), fail());
    let p = plan_with(&s, &p.steps, &jobs, 4);
    assert_eq!(p.launch.iter().map(|l| l.attempt).collect::<Vec<_>>(), [4]);
}

#[test]
fn missing_job_is_relaunched_only_after_the_grace_period() {
    let s = spec(vec![step("a", &[])]);
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    let early = plan_with(&s, &p.steps, &HashMap::new(), 3);
    assert!(early.launch.is_empty());
    assert_eq!(early.recheck_after_seconds, Some(7));
    let late = plan_with(&s, &p.steps, &HashMap::new(), 11);
    assert_eq!(late.launch, p.launch, "same attempt, same name");
    assert!(late.transitions.is_empty());
}

#[test]
fn cancel_deletes_running_jobs_and_cancels_pending_steps() {
    let s = spec(vec![step("a", &[]), step("b", &["a"])]);
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    let lookup = |_: &str| JobState::Active;
    let c = plan(&PlanInput {
        run_name: "run",
        spec: &s,
        params: &Default::default(),
        recorded: &p.steps,
        job: &lookup,
        cancel: true,
        now: t(1),
        launch_budget: None,
        missing_job_grace_seconds: 10,
        calls: None,
    })
    .unwrap();
    assert_eq!(c.delete, vec![p.launch[0].job_name.clone()]);
    assert_eq!(phases(&c), vec![StepPhase::Cancelled, StepPhase::Cancelled]);
    assert_eq!(c.outcome.unwrap().phase, RunPhase::Cancelled);
    assert!(c.launch.is_empty());
}

#[test]
fn max_active_steps_limits_parallel_launches() {
    let mut s = spec(vec![step("a", &[]), step("b", &[]), step("c", &[])]);
    s.max_active_steps = 2;
    let p = plan_with(&s, &[], &HashMap::new(), 0);
    assert_eq!(p.launch.len(), 2);
    let jobs: HashMap<String, JobState> = p
        .launch
        .iter()
        .map(|l| (l.job_name.clone(), JobState::Active))
        .collect();
    assert!(plan_with(&s, &p.steps, &jobs, 1).launch.is_empty());
}

/// A random acyclic Dag: step i may depend only on steps with a smaller index; the spec lists the
/// steps in reverse so the planner cannot rely on spec order. Each step gets the outcomes of its
/// attempts in advance (true = succeeds).
#[derive(Debug, Clone)]
struct World {
    spec: DagSpec,
    outcomes: Vec<Vec<bool>>,
}

fn world() -> impl Strategy<Value = World> {
    (1usize..10).prop_flat_map(|n| {
        let deps = proptest::collection::vec(proptest::collection::vec(any::<bool>(), n), n);
        let flags = proptest::collection::vec(
            (
                any::<bool>(),
                0u32..3,
                proptest::collection::vec(any::<bool>(), 3),
                0u32..3,
            ),
            n,
        );
        (deps, flags).prop_map(move |(deps, flags)| {
            let mut steps = Vec::new();
            let mut outcomes = Vec::new();
            for i in (0..n).rev() {
                let names: Vec<String> = (0..i).filter(|&j| deps[i][j]).map(|j| format!("s{j}")).collect();
                let mut s = step(&format!("s{i}"), &[]);
                s.depends = names;
                let (cof, limit, outs, _) = &flags[i];
                s.continue_on_failure = *cof;
                s.retry = Some(Box::new(RetryPolicy {
                    limit: *limit,
                    ..Default::default()
                }));
                steps.push(s);
                outcomes.push(outs.clone());
            }
            let mut spec = spec(steps);
            spec.max_active_steps = flags[0].3;
            World { spec, outcomes }
        })
    })
}

/// The phases the contract predicts, computed independently of the planner.
fn expected_phases(w: &World) -> HashMap<String, StepPhase> {
    let by_name: HashMap<&str, usize> = w
        .spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut result: HashMap<String, StepPhase> = HashMap::new();
    // names are s0..s{n-1}; dependencies only point to lower numbers, so numeric order is topological.
    for k in 0..w.spec.steps.len() {
        let i = by_name[format!("s{k}").as_str()];
        let s = &w.spec.steps[i];
        let blocked = s.depends.iter().any(|d| {
            let di = by_name[d.as_str()];
            match result[d] {
                StepPhase::Failed => !w.spec.steps[di].continue_on_failure,
                StepPhase::Skipped => true,
                _ => false,
            }
        });
        let attempts = s.retry.as_ref().unwrap().limit as usize + 1;
        let phase = if blocked {
            StepPhase::Skipped
        } else if w.outcomes[i].iter().take(attempts).any(|&ok| ok) {
            StepPhase::Succeeded
        } else {
            StepPhase::Failed
        };
        result.insert(s.name.clone(), phase);
    }
    result
}

proptest! {
    #[test]
    fn simulated_runs_respect_dependencies_launch_once_and_terminate(w in world(), completion_order in any::<u64>()) {
        let spec = &w.spec;
        let mut jobs: HashMap<String, JobState> = HashMap::new();
        let mut job_outcome: HashMap<String, bool> = HashMap::new();
        let mut launched: HashSet<String> = HashSet::new();
        let mut recorded: Vec<StepStatus> = Vec::new();
        let mut rng = completion_order;
        let max_rounds = 4 * spec.steps.len() * 4 + 4;
        let mut outcome = None;
        for round in 0..max_rounds {
            let p = plan_with(spec, &recorded, &jobs, round as i64);
            let running = p.steps.iter().filter(|s| s.phase == StepPhase::Running).count();
            if spec.max_active_steps > 0 {
                prop_assert!(running <= spec.max_active_steps as usize);
            }
            for l in &p.launch {
                prop_assert!(launched.insert(l.job_name.clone()), "launched twice: {}", l.job_name);
                for d in &spec.steps[l.step].depends {
                    let dep = p.steps.iter().find(|s| &s.name == d).unwrap();
                    prop_assert!(dep.phase.is_terminal(), "{} launched before {} finished", spec.steps[l.step].name, d);
                }
                let ok = w.outcomes[l.step][(l.attempt - 1) as usize];
                jobs.insert(l.job_name.clone(), JobState::Active);
                job_outcome.insert(l.job_name.clone(), ok);
            }
            recorded = p.steps.clone();
            if let Some(o) = p.outcome {
                prop_assert!(recorded.iter().all(|s| s.phase.is_terminal()));
                outcome = Some(o);
                break;
            }
            // finish a pseudo-random non-empty subset of the active jobs
            let mut active: Vec<String> = jobs.iter().filter(|(_, s)| **s == JobState::Active).map(|(k, _)| k.clone()).collect();
            active.sort();
            for (k, name) in active.iter().enumerate() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if k == 0 || rng >> 63 == 1 {
                    let state = if job_outcome[name] {
                        JobState::Succeeded { finished_at: None, exit_code: Some(0), outputs: None }
                    } else {
                        JobState::Failed { finished_at: None, exit_code: Some(1), message: "exit code 1".into() }
                    };
                    jobs.insert(name.clone(), state);
                }
            }
        }
        let outcome = outcome.expect("the run terminates");
        let expected = expected_phases(&w);
        for s in &recorded {
            prop_assert_eq!(s.phase, expected[&s.name], "step {}", s.name);
        }
        let should_succeed = spec.steps.iter().all(|s| match expected[&s.name] {
            StepPhase::Succeeded => true,
            StepPhase::Failed => s.continue_on_failure,
            _ => false,
        });
        prop_assert_eq!(outcome.phase == RunPhase::Succeeded, should_succeed);
    }
}

fn succeeded_with(outputs: Option<&str>) -> JobState {
    JobState::Succeeded {
        finished_at: None,
        exit_code: Some(0),
        outputs: outputs.map(str::to_string),
    }
}

fn failed_job() -> JobState {
    JobState::Failed {
        finished_at: None,
        exit_code: Some(1),
        message: "exit code 1".into(),
    }
}

/// Plans until nothing changes, finishing every launched Job with `result(step name)`.
fn run_to_end(s: &DagSpec, cancel_after_first: bool, result: impl Fn(&str) -> JobState) -> Plan {
    let mut jobs = HashMap::new();
    let mut recorded: Vec<StepStatus> = Vec::new();
    for round in 0..20 {
        let lookup = |name: &str| jobs.get(name).cloned().unwrap_or(JobState::Missing);
        let p = plan(&PlanInput {
            run_name: "run",
            spec: s,
            params: &[("mode".to_string(), "full".to_string())].into(),
            recorded: &recorded,
            job: &lookup,
            cancel: cancel_after_first && round > 0,
            now: t(round),
            launch_budget: None,
            missing_job_grace_seconds: 10,
            calls: None,
        })
        .unwrap();
        for l in &p.launch {
            jobs.insert(l.job_name.clone(), result(&p.steps[l.step].name));
        }
        if p.outcome.is_some() {
            return p;
        }
        recorded = p.steps;
    }
    panic!("the run did not end");
}

fn with_when(name: &str, deps: &[&str], when: &str) -> Step {
    Step {
        when: Some(when.into()),
        ..step(name, deps)
    }
}

#[test]
fn when_false_skips_the_step_but_not_its_dependants_and_an_error_fails_it() {
    let s = spec(vec![
        step("a", &[]),
        with_when("maybe", &["a"], "params.mode == 'quick'"),
        step("after-maybe", &["maybe"]),
        with_when("broken", &["a"], "int('abc') > 0"),
        step("after-broken", &["broken"]),
    ]);
    let p = run_to_end(&s, false, |_| succeeded_with(None));
    assert_eq!(
        phases(&p),
        vec![
            StepPhase::Succeeded,
            StepPhase::Skipped,
            StepPhase::Succeeded,
            StepPhase::Failed,
            StepPhase::Skipped
        ]
    );
    assert_eq!(p.steps[1].reason.as_deref(), Some(when::WHEN_FALSE));
    assert!(
        p.steps[3].message.as_deref().unwrap().starts_with("when: "),
        "{:?}",
        p.steps[3]
    );
    assert_eq!(p.outcome.unwrap().phase, RunPhase::Failed);
}

#[test]
fn when_reads_outputs_and_a_when_false_step_alone_lets_the_run_succeed() {
    let mut detect = step("detect", &[]);
    detect.outputs = vec!["count".into()];
    let s = spec(vec![
        detect,
        with_when("report", &["detect"], "int(steps.detect.outputs.count) > 3"),
    ]);
    let p = run_to_end(&s, false, |name| {
        succeeded_with((name == "detect").then_some("count=2\n"))
    });
    assert_eq!(p.steps[0].outputs["count"], "2");
    assert_eq!(p.steps[1].reason.as_deref(), Some(when::WHEN_FALSE));
    assert_eq!(p.outcome.unwrap().phase, RunPhase::Succeeded);
}

#[test]
fn undeclared_or_oversized_outputs_fail_the_step_naming_the_output() {
    let mut a = step("a", &[]);
    a.outputs = vec!["count".into()];
    let s = spec(vec![a]);
    let p = run_to_end(&s, false, |_| succeeded_with(Some("other=1")));
    assert_eq!(p.steps[0].phase, StepPhase::Failed);
    assert!(p.steps[0].message.as_deref().unwrap().contains("\"other\""));
    let big = format!("count={}", "x".repeat(2000));
    let p = run_to_end(&s, false, |_| succeeded_with(Some(&big)));
    assert!(p.steps[0].message.as_deref().unwrap().contains("\"count\""));
}

/// (main steps' result, handler's result, cancel) -> the run's final phase.
#[test]
fn exit_handlers_run_after_the_main_steps_and_decide_the_final_phase_as_the_table_says() {
    let mut s = spec(vec![step("main", &[]), step("second", &["main"])]);
    s.on_exit = vec![step("notify", &[]), step("cleanup", &["notify"])];
    for (main_ok, handler_ok, cancel, expected) in [
        (true, true, false, RunPhase::Succeeded),
        (true, false, false, RunPhase::Failed),
        (false, true, false, RunPhase::Failed),
        (false, false, false, RunPhase::Failed),
        (true, true, true, RunPhase::Cancelled),
        (true, false, true, RunPhase::Cancelled),
    ] {
        let p = run_to_end(&s, cancel, |name| {
            let ok = if name == "notify" || name == "cleanup" {
                handler_ok
            } else {
                main_ok
            };
            if ok { succeeded_with(None) } else { failed_job() }
        });
        let outcome = p.outcome.clone().unwrap();
        assert_eq!(
            outcome.phase, expected,
            "main ok {main_ok}, handler ok {handler_ok}, cancel {cancel}"
        );
        // Handlers ran (or were skipped by their own failed dependency), never cancelled.
        assert_ne!(p.steps[2].phase, StepPhase::Cancelled);
        assert!(p.steps[2].phase == StepPhase::Succeeded || !handler_ok);
    }
}

#[test]
fn handlers_wait_for_every_main_step() {
    let mut s = spec(vec![step("a", &[]), step("b", &[])]);
    s.on_exit = vec![step("h", &[])];
    let mut jobs = HashMap::new();
    let p = plan_with(&s, &[], &jobs, 0);
    assert_eq!(p.launch.len(), 2, "main steps only");
    jobs.insert(p.steps[0].job_name.clone().unwrap(), succeeded_with(None));
    jobs.insert(p.steps[1].job_name.clone().unwrap(), JobState::Active);
    let p = plan_with(&s, &p.steps, &jobs, 1);
    assert!(p.launch.is_empty(), "b still runs");
    jobs.insert(p.steps[1].job_name.clone().unwrap(), failed_job());
    let p = plan_with(&s, &p.steps, &jobs, 2);
    assert_eq!(p.launch.len(), 1);
    assert_eq!(p.steps[p.launch[0].step].name, "h");
    assert_eq!(main_phase(&s, &p.steps, false), RunPhase::Failed);
}
