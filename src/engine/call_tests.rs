use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::api::{DagOutput, DagRef, DagRunSpec, DagRunStatus, DuplicatePolicy, ParamDecl, RunPhase, Step};

/// Runs and Dags of one namespace, as the caches would show them.
#[derive(Default)]
pub(crate) struct FakeView {
    pub dags: HashMap<String, Arc<Dag>>,
    pub runs: Vec<Arc<DagRun>>,
}

impl RunView for FakeView {
    fn dag(&self, name: &str) -> Option<Arc<Dag>> {
        self.dags.get(name).cloned()
    }
    fn run(&self, name: &str) -> Option<Arc<DagRun>> {
        self.runs
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .cloned()
    }
    fn runs_of(&self, dag: &str) -> Vec<Arc<DagRun>> {
        self.runs
            .iter()
            .filter(|r| r.spec.dag_ref.name == dag)
            .cloned()
            .collect()
    }
}

/// Dag `name` with required param `night` and the given policy.
pub(crate) fn child_dag(name: &str, policy: DuplicatePolicy) -> Arc<Dag> {
    Arc::new(Dag::new(
        name,
        DagSpec {
            params: vec![ParamDecl {
                name: "night".into(),
                default: None,
            }],
            duplicate_policy: policy,
            steps: vec![Step {
                name: "work".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    ))
}

/// Run `name` of Dag `dag` with `night`, in `phase` (None: not seen by the operator yet).
pub(crate) fn child_run(name: &str, dag: &str, night: &str, phase: Option<RunPhase>) -> Arc<DagRun> {
    let mut run = DagRun::new(
        name,
        DagRunSpec {
            dag_ref: DagRef { name: dag.into() },
            params: [("night".to_string(), night.to_string())].into(),
            ..Default::default()
        },
    );
    run.status = phase.map(|phase| DagRunStatus {
        phase,
        reason: (phase == RunPhase::Rejected).then(|| "DuplicateParams".to_string()),
        outputs: [("bias".to_string(), format!("bias-{night}"))].into(),
        ..Default::default()
    });
    Arc::new(run)
}

fn parent(chain: &str) -> DagRun {
    let mut run = DagRun::new(
        "img-1",
        DagRunSpec {
            dag_ref: DagRef { name: "image".into() },
            ..Default::default()
        },
    );
    if !chain.is_empty() {
        run.metadata.annotations = Some([(annotations::CALL_CHAIN.to_string(), chain.to_string())].into());
    }
    run
}

fn call(night: &str) -> Call {
    Call {
        dag: "bias".into(),
        params: [("night".to_string(), night.to_string())].into(),
    }
}

fn resolve_in(view: &FakeView, run: &DagRun, night: &str, own: &str) -> Resolved {
    let call = call(night);
    resolve(&Caller {
        view,
        run,
        call: &call,
        params: call.params.clone(),
        own: own.into(),
    })
}

fn view_with(policy: DuplicatePolicy, runs: Vec<Arc<DagRun>>) -> FakeView {
    FakeView {
        dags: [("bias".to_string(), child_dag("bias", policy))].into(),
        runs,
    }
}

#[test]
fn no_identical_run_spawns_the_own_child_with_the_chain() {
    let view = view_with(DuplicatePolicy::Forbid, vec![]);
    let resolved = resolve_in(&view, &parent("outer"), "n1", "own");
    assert_eq!(
        resolved,
        Resolved::Spawn {
            params: [("night".to_string(), "n1".to_string())].into(),
            chain: "outer/image".into(),
        }
    );
}

#[test]
fn a_succeeded_identical_run_is_reused_with_its_outputs() {
    let view = view_with(
        DuplicatePolicy::Forbid,
        vec![child_run("other", "bias", "n1", Some(RunPhase::Succeeded))],
    );
    match resolve_in(&view, &parent(""), "n1", "own") {
        Resolved::Follow { name, reused, state } => {
            assert_eq!((name.as_str(), reused), ("other", true));
            assert!(matches!(state, JobState::RunSucceeded { ref outputs, .. } if outputs["bias"] == "bias-n1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_running_identical_run_is_waited_for_and_rechecked() {
    let view = view_with(
        DuplicatePolicy::Forbid,
        vec![child_run("other", "bias", "n1", Some(RunPhase::Running))],
    );
    match resolve_in(&view, &parent(""), "n1", "own") {
        Resolved::Follow {
            reused: true, state, ..
        } => assert_eq!(
            state,
            JobState::Waiting {
                message: Some("waiting for identical run other (Running)".into()),
                recheck_after_seconds: Some(REUSED_RECHECK_SECONDS),
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_identical_runs_and_other_params_are_not_reused() {
    let runs = vec![
        child_run("failed", "bias", "n1", Some(RunPhase::Failed)),
        child_run("other-night", "bias", "n2", Some(RunPhase::Succeeded)),
    ];
    let view = view_with(DuplicatePolicy::Forbid, runs);
    assert!(matches!(
        resolve_in(&view, &parent(""), "n1", "own"),
        Resolved::Spawn { .. }
    ));
}

#[test]
fn under_allow_nothing_is_reused() {
    let view = view_with(
        DuplicatePolicy::Allow,
        vec![child_run("other", "bias", "n1", Some(RunPhase::Succeeded))],
    );
    assert!(matches!(
        resolve_in(&view, &parent(""), "n1", "own"),
        Resolved::Spawn { .. }
    ));
}

#[test]
fn the_own_child_comes_first_and_a_rejected_one_follows_the_holder() {
    let own = child_run("own", "bias", "n1", Some(RunPhase::Running));
    let view = view_with(DuplicatePolicy::Forbid, vec![own]);
    assert!(matches!(
        resolve_in(&view, &parent(""), "n1", "own"),
        Resolved::Follow {
            reused: false,
            state: JobState::Active,
            ..
        }
    ));
    let rejected = child_run("own", "bias", "n1", Some(RunPhase::Rejected));
    let holder = child_run("holder", "bias", "n1", Some(RunPhase::Running));
    let view = view_with(DuplicatePolicy::Forbid, vec![rejected.clone(), holder]);
    assert!(matches!(
        resolve_in(&view, &parent(""), "n1", "own"),
        Resolved::Follow { ref name, reused: true, .. } if name == "holder"
    ));
    let view = view_with(DuplicatePolicy::Forbid, vec![rejected]);
    assert!(matches!(
        resolve_in(&view, &parent(""), "n1", "own"),
        Resolved::Follow {
            reused: false,
            state: JobState::Failed { .. },
            ..
        }
    ));
}

#[test]
fn refusals_name_the_dag_the_param_and_the_chain() {
    let view = FakeView::default();
    let Resolved::Refused(m) = resolve_in(&view, &parent(""), "n1", "own") else {
        panic!()
    };
    assert!(m.contains("Dag \"bias\" not found"), "{m}");
    let view = view_with(DuplicatePolicy::Forbid, vec![]);
    let no_params = Call {
        dag: "bias".into(),
        params: Default::default(),
    };
    let Resolved::Refused(m) = resolve(&Caller {
        view: &view,
        run: &parent(""),
        call: &no_params,
        params: Default::default(),
        own: "own".into(),
    }) else {
        panic!()
    };
    assert!(m.starts_with("call.params: ") && m.contains("night"), "{m}");
    let deep = ["a"; MAX_CALL_DEPTH - 1].join("/");
    let Resolved::Refused(m) = resolve_in(&view, &parent(&deep), "n1", "own") else {
        panic!()
    };
    assert!(
        m.contains("call depth limit") && m.contains("a -> a") && m.ends_with("image -> bias (a cycle of calls?)"),
        "{m}"
    );
}

#[test]
fn params_expand_params_outputs_and_the_item_once() {
    let call = Call {
        dag: "x".into(),
        params: [
            ("a".to_string(), "$(night)-$(item)".to_string()),
            ("b".to_string(), "$(steps.s.outputs.n)/$(other)".to_string()),
        ]
        .into(),
    };
    let params = [("night".to_string(), "$(item)".to_string())].into();
    let output = |s: &str, n: &str| (s == "s" && n == "n").then(|| "42".to_string());
    let expanded = expand_params(&call, &params, &output, Some("i7"));
    assert_eq!(expanded["a"], "$(item)-i7");
    assert_eq!(expanded["b"], "42/$(other)");
}

#[test]
fn run_outputs_expand_the_steps_outputs() {
    let spec = DagSpec {
        outputs: vec![DagOutput {
            name: "total".into(),
            value: "sum=$(steps.sum.outputs.total)".into(),
        }],
        ..Default::default()
    };
    let output = |s: &str, n: &str| (s == "sum" && n == "total").then(|| "55".to_string());
    assert_eq!(run_outputs(&spec, &Default::default(), &output)["total"], "sum=55");
}

fn calling(dags: &[&str]) -> DagSpec {
    DagSpec {
        steps: dags
            .iter()
            .enumerate()
            .map(|(i, d)| Step {
                name: format!("s{i}"),
                call: Some(Box::new(Call {
                    dag: d.to_string(),
                    params: Default::default(),
                })),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn call_cycles_are_found_through_other_dags() {
    let graph: HashMap<&str, DagSpec> =
        [("b", calling(&["c"])), ("c", calling(&["a", "d"])), ("d", calling(&[]))].into();
    let lookup = |name: &str| graph.get(name).cloned();
    assert_eq!(
        find_cycle("a", &calling(&["b"]), &lookup),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_cycle("a", &calling(&["a"]), &lookup),
        Some(vec!["a".into(), "a".into()])
    );
    assert_eq!(find_cycle("x", &calling(&["d", "b"]), &lookup), None);
}

fn phase_strategy() -> impl Strategy<Value = RunPhase> {
    prop::sample::select(RunPhase::ALL.to_vec())
}

proptest! {
    /// Whatever runs exist, a call spawns only when no run blocks its params, and follows a
    /// blocking one when it exists (its own child first).
    #[test]
    fn spawns_exactly_when_nothing_blocks(
        phases in prop::collection::vec(phase_strategy(), 0..5),
        policy in prop::sample::select(vec![DuplicatePolicy::Forbid, DuplicatePolicy::ForbidConcurrent, DuplicatePolicy::Allow]),
    ) {
        let runs: Vec<_> = phases.iter().enumerate()
            .map(|(i, p)| child_run(&format!("r{i}"), "bias", "n1", Some(*p)))
            .collect();
        let blocking = phases.iter().any(|p| crate::engine::duplicates::blocks(policy, *p));
        let view = view_with(policy, runs);
        match resolve_in(&view, &parent(""), "n1", "own") {
            Resolved::Spawn { .. } => prop_assert!(!blocking),
            Resolved::Follow { reused, .. } => prop_assert!(blocking && reused),
            Resolved::Refused(m) => prop_assert!(false, "{}", m),
        }
    }

    /// N parents racing: each round every parent resolves against what exists; children created
    /// in the same round all start Pending, then the claim lets the first proceed and rejects the
    /// rest. However the rounds interleave, they converge on one child everybody follows.
    #[test]
    fn racing_parents_converge_on_one_child(n in 2usize..30, per_round in 1usize..30) {
        let mut view = view_with(DuplicatePolicy::Forbid, vec![]);
        let mut following: Vec<Option<String>> = vec![None; n];
        for _round in 0..6 {
            let mut created = Vec::new();
            for (p, slot) in following.iter_mut().enumerate().take(per_round.max(1) * (_round + 1)) {
                let own = format!("child-{p}");
                match resolve_in(&view, &parent(""), "n1", &own) {
                    Resolved::Spawn { .. } => { created.push(own.clone()); *slot = Some(own); }
                    Resolved::Follow { name, .. } => *slot = Some(name),
                    Resolved::Refused(m) => prop_assert!(false, "{}", m),
                }
            }
            let has_holder = view.runs.iter().any(|r| r.status.as_ref().is_some_and(|s| s.phase == RunPhase::Running));
            for (k, name) in created.into_iter().enumerate() {
                let phase = if !has_holder && k == 0 { RunPhase::Running } else { RunPhase::Rejected };
                view.runs.push(child_run(&name, "bias", "n1", Some(phase)));
            }
        }
        let live: Vec<_> = view.runs.iter().filter(|r| r.status.as_ref().unwrap().phase != RunPhase::Rejected).collect();
        prop_assert_eq!(live.len(), 1);
        let holder = live[0].metadata.name.clone();
        for slot in following.iter().flatten() {
            let again = resolve_in(&view, &parent(""), "n1", slot);
            let followed = match again { Resolved::Follow { name, .. } => Some(name), _ => None };
            prop_assert_eq!(followed, holder.clone());
        }
    }
}
