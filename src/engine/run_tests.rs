use std::collections::HashMap;

use jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::api::StepPhase;
use crate::api::{ContainerSettings, DagRef, DagRunSpec, ParamDecl, Step};

fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

fn dag(policy: DuplicatePolicy, max_active_runs: u32, ttl: u64) -> Dag {
    let mut dag = Dag::new(
        "img",
        DagSpec {
            params: vec![ParamDecl {
                name: "file".into(),
                default: None,
            }],
            defaults: ContainerSettings {
                image: Some("busybox".into()),
                ..Default::default()
            },
            duplicate_policy: policy,
            max_active_runs,
            ttl_seconds_after_finished: ttl,
            steps: vec![
                Step {
                    name: "a".into(),
                    ..Default::default()
                },
                Step {
                    name: "b".into(),
                    depends: vec!["a".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    );
    dag.metadata.namespace = Some("ns".into());
    dag
}

fn run(file: &str) -> DagRun {
    let mut run = DagRun::new(
        "r1",
        DagRunSpec {
            dag_ref: DagRef { name: "img".into() },
            params: [("file".to_string(), file.to_string())].into(),
            ..Default::default()
        },
    );
    run.metadata.namespace = Some("ns".into());
    run.metadata.uid = Some("0b6c6a3e-uid".into());
    run.metadata.resource_version = Some("4711".into());
    run
}

/// Answers every need of the state machine from a fixed world and returns the decision.
struct World {
    dag: Option<Dag>,
    claim: Claim,
    admission: Admission,
    jobs: HashMap<String, JobState>,
    workspace: WorkspaceClaim,
    now: i64,
}

impl World {
    fn new() -> World {
        World {
            dag: Some(dag(DuplicatePolicy::Forbid, 0, 0)),
            claim: Claim::Held,
            admission: Admission::Start,
            jobs: HashMap::new(),
            workspace: WorkspaceClaim::Created,
            now: 0,
        }
    }

    /// The decision for `run` and the needs asked on the way.
    fn decide(&self, run: &DagRun) -> (Next, Vec<Need>) {
        let lookup = |name: &str| self.jobs.get(name).cloned().unwrap_or(JobState::Missing);
        let mut facts = RunFacts {
            run,
            now: t(self.now),
            dag: None,
            claim: None,
            admission: None,
            workspace: None,
            jobs: &lookup,
            launch_budget: None,
            missing_job_grace_seconds: 10,
            runs: &crate::engine::call::NoRuns,
        };
        let mut needs = Vec::new();
        loop {
            match next(&facts) {
                Decision::Done(next) => return (*next, needs),
                Decision::Need(need) => {
                    assert!(!needs.contains(&need), "asked twice for {need:?}");
                    match &need {
                        Need::Dag => facts.dag = Some(self.dag.as_ref()),
                        Need::Claim { .. } => facts.claim = Some(self.claim.clone()),
                        Need::Admission { .. } => facts.admission = Some(self.admission.clone()),
                        Need::Workspace { .. } => facts.workspace = Some(self.workspace.clone()),
                    }
                    needs.push(need);
                }
            }
        }
    }
}

impl World {
    /// Every fact of `run` known at once (a started run needs no more), with Jobs from `jobs`.
    fn facts<'a>(&'a self, run: &'a DagRun, jobs: &'a (dyn Fn(&str) -> JobState + Sync), now: Time) -> RunFacts<'a> {
        RunFacts {
            run,
            now,
            dag: Some(self.dag.as_ref()),
            claim: Some(Claim::Held),
            admission: Some(Admission::Start),
            workspace: None,
            jobs,
            launch_budget: None,
            missing_job_grace_seconds: 10,
            runs: &crate::engine::call::NoRuns,
        }
    }
}

fn apply(run: &DagRun, next: &Next) -> DagRun {
    let mut run = run.clone();
    run.status = Some(next.status.clone());
    run
}

/// Starts `r` and fails its first step: the run ends Failed.
fn fail_first_step(world: &mut World, r: &DagRun) -> Next {
    let (started, _) = world.decide(r);
    world.jobs.insert(
        started.launch[0].job_name.clone(),
        JobState::Failed {
            finished_at: None,
            exit_code: Some(1),
            message: "exit code 1".into(),
        },
    );
    world.decide(&apply(r, &started)).0
}

fn succeed_all(world: &mut World, next: &Next) {
    for step in &next.status.steps {
        if let Some(job) = &step.job_name {
            world.jobs.insert(
                job.clone(),
                JobState::Succeeded {
                    finished_at: None,
                    exit_code: Some(0),
                    outputs: None,
                },
            );
        }
    }
}

#[test]
fn a_new_run_asks_for_dag_claim_and_admission_then_starts_and_launches_its_roots() {
    let world = World::new();
    let (next, needs) = world.decide(&run("m31.fits"));
    assert_eq!(needs.len(), 3, "{needs:?}");
    assert!(matches!(needs[1], Need::Claim { .. }));
    assert_eq!(next.status.phase, RunPhase::Running);
    assert_eq!(next.status.request_id.as_deref(), Some("0b6c6a3e-uid"));
    assert_eq!(next.status.creation_revision.as_deref(), Some("4711"));
    assert_eq!(next.launch.len(), 1, "only the root step");
    assert!(next.status.finished_at.is_none());
    assert!(matches!(next.events[0], RunEvent::Started { .. }));
}

#[test]
fn allow_policy_takes_no_claim() {
    let mut world = World::new();
    world.dag = Some(dag(DuplicatePolicy::Allow, 0, 0));
    let (_, needs) = world.decide(&run("x"));
    assert!(!needs.iter().any(|n| matches!(n, Need::Claim { .. })));
}

#[test]
fn invalid_runs_end_failed_naming_the_cause_and_duplicates_end_rejected() {
    let mut world = World::new();
    world.dag = None;
    let (next, _) = world.decide(&run("x"));
    assert_eq!(next.status.phase, RunPhase::Failed);
    assert_eq!(next.status.reason.as_deref(), Some("DagNotFound"));
    assert!(next.status.finished_at.is_some());

    let mut world = World::new();
    world.claim = Claim::Duplicate { holder: "first".into() };
    let (next, _) = world.decide(&run("x"));
    assert_eq!(next.status.phase, RunPhase::Rejected);
    assert_eq!(next.status.reason.as_deref(), Some("DuplicateParams"));
    assert!(next.status.message.as_deref().unwrap().contains("\"first\""));
    assert!(next.launch.is_empty());
    assert_eq!(
        next.reactions.release_claim, None,
        "a rejected run never held the claim"
    );
}

#[test]
fn a_queued_run_starts_when_admitted_and_refreshes_its_position_otherwise() {
    let mut world = World::new();
    world.dag = Some(dag(DuplicatePolicy::Forbid, 1, 0));
    world.admission = Admission::Queue {
        position: 2,
        reason: "maxActiveRuns 1".into(),
    };
    let (queued, _) = world.decide(&run("x"));
    assert_eq!(queued.status.phase, RunPhase::Queued);
    assert!(queued.status.message.as_deref().unwrap().contains("position 2"));
    let queued_run = apply(&run("x"), &queued);
    let (again, needs) = world.decide(&queued_run);
    assert!(
        !needs.iter().any(|n| matches!(n, Need::Claim { .. })),
        "the claim is taken once"
    );
    assert_eq!(again.requeue, Requeue::After(QUEUE_REFRESH_SECONDS));
    world.admission = Admission::Start;
    let (started, _) = world.decide(&queued_run);
    assert_eq!(started.status.phase, RunPhase::Running);
    assert_eq!(started.launch.len(), 1);
}

#[test]
fn a_finished_run_releases_its_claim_when_the_policy_stops_blocking_on_every_pass() {
    let mut world = World::new();
    let r = run("x");
    let failed = fail_first_step(&mut world, &r);
    assert_eq!(failed.status.phase, RunPhase::Failed);
    assert!(failed.reactions.release_claim.is_some());
    // Redone on a later pass: a release that failed heals.
    let (again, _) = world.decide(&apply(&r, &failed));
    assert_eq!(again.status, failed.status);
    assert!(again.reactions.release_claim.is_some() && !again.reactions.recount_dag);

    // Under Forbid, a Succeeded run keeps blocking: no release.
    let mut world = World::new();
    let (started, _) = world.decide(&r);
    succeed_all(&mut world, &started);
    let (mid, _) = world.decide(&apply(&r, &started));
    succeed_all(&mut world, &mid);
    let (done, _) = world.decide(&apply(&r, &mid));
    assert_eq!(done.status.phase, RunPhase::Succeeded);
    assert_eq!(done.reactions.release_claim, None);
    assert!(done.reactions.wake_waiting >= 1);
}

#[test]
fn ttl_requeues_until_due_then_deletes() {
    let mut world = World::new();
    world.dag = Some(dag(DuplicatePolicy::Allow, 0, 60));
    let mut r = run("x");
    r.status = Some(DagRunStatus {
        phase: RunPhase::Cancelled,
        finished_at: Some(t(0)),
        dag_spec: world.dag.as_ref().map(|d| d.spec.clone().into()),
        ..Default::default()
    });
    world.now = 20;
    let (next, _) = world.decide(&r);
    assert_eq!(next.requeue, Requeue::After(40));
    assert!(!next.reactions.delete_run);
    world.now = 61;
    assert!(world.decide(&r).0.reactions.delete_run);
}

#[test]
fn a_refused_create_fails_the_step_when_permanent_and_waits_otherwise() {
    let world = World::new();
    let r = run("x");
    let (started, _) = world.decide(&r);
    let job = started.launch[0].job_name.clone();
    let lookup = |_: &str| JobState::Missing;
    let facts = world.facts(&r, &lookup, t(0));
    let refused = |permanent| {
        vec![(
            job.clone(),
            JobState::Refused {
                message: "Invalid: memory request above limit".into(),
                permanent,
            },
        )]
    };
    let failed = after_refusals(&facts, started.clone(), &refused(true), &[]);
    assert_eq!(failed.status.phase, RunPhase::Failed, "a then b skipped, the run ends");
    assert_eq!(failed.status.steps[1].phase, StepPhase::Skipped);
    assert!(
        failed
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("memory request above limit")
    );
    assert!(failed.events.iter().all(|e| !matches!(e, RunEvent::StepStarted { .. })));

    let waiting = after_refusals(&facts, started, &refused(false), &[]);
    assert_eq!(waiting.status.phase, RunPhase::Running);
    let step = &waiting.status.steps[0];
    assert_eq!(
        (step.phase, step.attempts, step.create_refusals),
        (StepPhase::Pending, 0, 1)
    );
    assert!(step.next_attempt_at.is_some());
    assert_eq!(waiting.requeue, Requeue::After(plan::refusal_backoff_seconds(1) as u64));
    assert!(
        waiting
            .events
            .iter()
            .any(|e| matches!(e, RunEvent::StepRefused { permanent: false, .. }))
    );
}

#[test]
fn a_failed_run_with_a_raised_retry_takes_the_claim_again_and_reruns() {
    let mut world = World::new();
    let mut r = run("x");
    let failed = fail_first_step(&mut world, &r);
    r.spec.retry = 1;
    let failed_run = apply(&r, &failed);
    world.claim = Claim::Duplicate { holder: "other".into() };
    let (refused, _) = world.decide(&failed_run);
    assert_eq!(refused.status.phase, RunPhase::Failed);
    assert!(refused.status.message.as_deref().unwrap().starts_with("retry refused"));
    world.claim = Claim::Held;
    let (retried, needs) = world.decide(&failed_run);
    assert!(needs.iter().any(|n| matches!(n, Need::Claim { .. })));
    assert_eq!(retried.status.phase, RunPhase::Running);
    assert!(retried.status.finished_at.is_none());
    assert_eq!(retried.launch[0].attempt, 2);
}

/// A world whose Dag has a workspace.
fn with_workspace(mut world: World) -> World {
    world.dag.as_mut().unwrap().spec.workspace = Some(Box::new(crate::api::Workspace {
        mount_path: "/workspace".into(),
        ..Default::default()
    }));
    world
}

#[test]
fn a_workspace_claim_is_created_once_before_the_first_job() {
    let world = with_workspace(World::new());
    let r = run("m31.fits");
    let (started, needs) = world.decide(&r);
    let claim = crate::engine::naming::workspace_claim("r1", "0b6c6a3e-uid");
    assert!(
        matches!(needs.last(), Some(Need::Workspace { claim: c, .. }) if *c == claim),
        "{needs:?}"
    );
    assert_eq!(started.launch.len(), 1, "launched in the same pass as the create");
    assert_eq!(started.status.workspace_claim.as_deref(), Some(claim.as_str()));
    let (_, again) = world.decide(&apply(&r, &started));
    assert!(
        !again.iter().any(|n| matches!(n, Need::Workspace { .. })),
        "recorded: not created again"
    );
}

#[test]
fn a_refused_workspace_claim_fails_the_run_or_waits_naming_the_claim() {
    let mut world = with_workspace(World::new());
    world.workspace = WorkspaceClaim::Refused {
        message: "Invalid: spec.resources[storage]: Required value".into(),
    };
    let r = run("m31.fits");
    let (failed, _) = world.decide(&r);
    assert_eq!(failed.status.phase, RunPhase::Failed);
    assert!(failed.launch.is_empty());
    let m = failed.status.message.unwrap();
    assert!(
        m.contains("workspace claim r1-ws-") && m.contains("Required value"),
        "{m}"
    );

    world.workspace = WorkspaceClaim::Waiting {
        message: "Forbidden: exceeded quota".into(),
    };
    let (waiting, _) = world.decide(&r);
    assert_eq!(
        waiting.status.phase,
        RunPhase::Running,
        "it keeps its phase and says why"
    );
    assert!(waiting.launch.is_empty());
    assert_eq!(waiting.requeue, Requeue::After(WORKSPACE_RETRY_SECONDS));
    assert!(
        waiting
            .status
            .message
            .as_deref()
            .unwrap()
            .starts_with("waiting to create workspace claim r1-ws-")
    );
    world.workspace = WorkspaceClaim::Created;
    let (started, _) = world.decide(&apply(&r, &waiting));
    assert_eq!(started.launch.len(), 1);
    assert_eq!(started.status.message, None, "the waiting message is gone");
}

#[test]
fn a_backoff_wakes_the_run_exactly_when_the_next_attempt_is_due() {
    let mut world = World::new();
    let dag = world.dag.as_mut().unwrap();
    dag.spec.steps[0].retry = Some(Box::new(crate::api::RetryPolicy {
        limit: 1,
        backoff: Some(crate::api::Backoff {
            delay_seconds: 4,
            factor: 2.0,
            max_delay_seconds: None,
        }),
        on_exit_codes: vec![],
    }));
    let r = run("m31.fits");
    let (started, _) = world.decide(&r);
    world.jobs.insert(
        started.launch[0].job_name.clone(),
        JobState::Failed {
            finished_at: Some(t(10)),
            exit_code: Some(1),
            message: "exit code 1".into(),
        },
    );
    world.now = 11;
    let mut r = apply(&r, &started);
    let (waiting, _) = world.decide(&r);
    assert_eq!(waiting.requeue, Requeue::After(3));
    r = apply(&r, &waiting);
    // Mid-second: a whole-second requeue would come up to a second late.
    let lookup = |name: &str| world.jobs.get(name).cloned().unwrap_or(JobState::Missing);
    let facts = world.facts(&r, &lookup, Time(t(13).0 + jiff::SignedDuration::from_millis(700)));
    let Decision::Done(late) = next(&facts) else {
        panic!("a need")
    };
    assert_eq!(late.requeue, Requeue::AfterMillis(300));
    assert!(late.launch.is_empty());
}

/// Random facts for the property tests.
fn any_world() -> impl Strategy<Value = (Vec<u8>, bool, u8)> {
    (proptest::collection::vec(any::<u8>(), 1..40), any::<bool>(), 0u8..3)
}

proptest! {
    /// From any sequence of facts: a terminal phase is final (except an explicit retry),
    /// `finishedAt` is set exactly when terminal, cancel ends every non-terminal phase, and a run
    /// is Rejected only when another run holds the claim.
    #[test]
    fn phases_obey_the_state_machine((choices, retry_later, policy) in any_world()) {
        let policy = [DuplicatePolicy::Forbid, DuplicatePolicy::ForbidConcurrent, DuplicatePolicy::Allow][policy as usize];
        let mut world = World::new();
        world.dag = Some(dag(policy, 1, 0));
        let mut r = run("x");
        for (i, c) in choices.iter().enumerate() {
            world.now = i as i64;
            world.claim = if c % 7 == 0 { Claim::Duplicate { holder: "h".into() } } else { Claim::Held };
            world.admission = if c % 5 == 0 {
                Admission::Queue { position: 1, reason: "full".into() }
            } else {
                Admission::Start
            };
            if c % 11 == 0 { r.spec.cancel = true; }
            if retry_later && c % 13 == 0 { r.spec.retry += 1; }
            for step in r.status.iter().flat_map(|s| &s.steps) {
                if let Some(job) = &step.job_name {
                    let state = match c % 3 {
                        0 => JobState::Active,
                        1 => JobState::Succeeded { finished_at: None, exit_code: Some(0), outputs: None },
                        _ => JobState::Failed { finished_at: None, exit_code: Some(2), message: "exit code 2".into() },
                    };
                    world.jobs.entry(job.clone()).or_insert(state);
                }
            }
            let before = r.status.clone().unwrap_or_default();
            let (next, _) = world.decide(&r);
            let after = &next.status;
            prop_assert_eq!(after.phase.is_terminal(), after.finished_at.is_some(), "{:?}", after);
            if before.phase.is_terminal() && after.phase != before.phase {
                prop_assert!(before.phase == RunPhase::Failed && r.spec.retry > before.retries && after.phase == RunPhase::Running);
            }
            if r.spec.cancel && !before.phase.is_terminal() {
                prop_assert_eq!(after.phase, RunPhase::Cancelled);
                prop_assert!(next.launch.is_empty());
            }
            if after.phase == RunPhase::Rejected && before.phase != RunPhase::Rejected {
                let duplicate = matches!(world.claim, Claim::Duplicate { .. });
                prop_assert!(duplicate && policy != DuplicatePolicy::Allow);
            }
            if after.phase.is_terminal() {
                let blocks = duplicates::blocks(policy, after.phase);
                let started = after.dag_spec.is_some();
                prop_assert_eq!(next.reactions.release_claim.is_some(), started && policy != DuplicatePolicy::Allow && !blocks);
            }
            r.status = Some(next.status);
        }
    }
}
