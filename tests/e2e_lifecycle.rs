//! End to end on the local cluster: queueing under maxActiveRuns, cancel, run retry, TTL,
//! history limit, crash safety under SIGKILL, and leader election.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{STEP_IMAGE, TestEnv, run_yaml};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use kubedag::api::{Dag, DagRun, RunPhase, StepPhase};

fn dag(name: &str, extra_spec: &str, steps: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: [{{name: n}}]\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n{extra_spec}  steps: {steps}\n"
    )
}

async fn merge_spec(env: &TestEnv, run: &str, spec: serde_json::Value) {
    let patch = serde_json::json!({ "spec": spec });
    env.api::<DagRun>()
        .patch(run, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn max_active_runs_queues_the_rest_and_starts_them_fifo() {
    let env = TestEnv::new("queue").await;
    env.create::<Dag>(&dag("q", "  maxActiveRuns: 3\n", "[{name: s, command: [sleep, '2']}]"))
        .await;
    for i in 0..12 {
        env.create::<DagRun>(&run_yaml(&format!("r{i:02}"), "q", &[("n", &i.to_string())]))
            .await;
        // distinct creation timestamps (1 s resolution) make the FIFO order observable
        if i % 3 == 2 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
    }
    let runs = env.api::<DagRun>();
    let mut max_running = 0;
    let mut saw_queue_message = false;
    loop {
        let list = runs.list(&ListParams::default()).await.unwrap().items;
        let phase = |r: &DagRun| r.status.as_ref().map(|s| s.phase).unwrap_or_default();
        let running = list.iter().filter(|r| phase(r) == RunPhase::Running).count();
        max_running = max_running.max(running);
        saw_queue_message |= list.iter().any(|r| {
            phase(r) == RunPhase::Queued
                && r.status
                    .as_ref()
                    .unwrap()
                    .message
                    .as_deref()
                    .unwrap_or("")
                    .contains("position")
        });
        if list.iter().all(|r| phase(r).is_terminal()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(max_running <= 3, "at most 3 Running at once, saw {max_running}");
    assert!(saw_queue_message, "queued runs show their position");
    let mut finished = runs.list(&ListParams::default()).await.unwrap().items;
    assert!(
        finished
            .iter()
            .all(|r| r.status.as_ref().unwrap().phase == RunPhase::Succeeded)
    );
    finished.sort_by_key(|r| r.status.as_ref().unwrap().started_at.clone().unwrap().0);
    let start_order: Vec<String> = finished.iter().map(|r| r.name_any()).collect();
    // FIFO by creation: a run never starts before one created in an earlier second.
    let created = |name: &str| {
        finished
            .iter()
            .find(|r| r.name_any() == name)
            .unwrap()
            .creation_timestamp()
            .unwrap()
            .0
    };
    for pair in start_order.windows(2) {
        assert!(
            created(&pair[0]) <= created(&pair[1]),
            "start order {start_order:?} is not FIFO"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn cancel_stops_a_running_run_within_seconds_and_leaves_others_alone() {
    let env = TestEnv::new("cancel").await;
    env.create::<Dag>(&dag(
        "c",
        "",
        "[{name: s, command: [sleep, '300']}, {name: t, depends: [s], command: ['true']}]",
    ))
    .await;
    env.create::<DagRun>(&run_yaml("stop-me", "c", &[("n", "1")])).await;
    env.create::<DagRun>(&run_yaml("keep-me", "c", &[("n", "2")])).await;
    env.eventually("both pods running", || async {
        let running = |pods: Vec<k8s_openapi::api::core::v1::Pod>| {
            pods.iter()
                .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        };
        (running(env.pods_of("stop-me").await) && running(env.pods_of("keep-me").await)).then_some(())
    })
    .await;
    let asked = std::time::Instant::now();
    merge_spec(&env, "stop-me", serde_json::json!({"cancel": true})).await;
    let status = env.wait_phase("stop-me", RunPhase::Cancelled).await.status.unwrap();
    assert_eq!(
        status.steps.iter().map(|s| s.phase).collect::<Vec<_>>(),
        [StepPhase::Cancelled, StepPhase::Cancelled]
    );
    env.eventually("the cancelled run's pods to be gone", || async {
        env.pods_of("stop-me").await.is_empty().then_some(())
    })
    .await;
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "pods stopped within seconds, took {took:?}"
    );
    let other = env.api::<DagRun>().get("keep-me").await.unwrap().status.unwrap();
    assert_eq!(other.phase, RunPhase::Running);
    assert_eq!(env.pods_of("keep-me").await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn retry_of_a_failed_run_reruns_only_failed_and_skipped_steps() {
    let env = TestEnv::new("rerun").await;
    // `flaky` fails until a marker file written by its first attempt... cannot persist across pods,
    // so it fails on attempt 1 and succeeds on later attempts using the attempt label in its Job name.
    env.create::<Dag>(&dag(
        "r",
        "",
        r#"[{name: ok, script: "echo ok"}, {name: flaky, depends: [ok], script: "case $HOSTNAME in *-flaky-1-*) exit 4;; esac; echo fine"}, {name: after, depends: [flaky], script: "echo after"}]"#,
    ))
    .await;
    env.create::<DagRun>(&run_yaml("run", "r", &[("n", "1")])).await;
    let failed = env.wait_finished("run").await.status.unwrap();
    assert_eq!(failed.phase, RunPhase::Failed);
    let request_id = failed.request_id.clone();
    merge_spec(&env, "run", serde_json::json!({"retry": 1})).await;
    let retried = env
        .eventually("the retried run to succeed", || async {
            let s = env.api::<DagRun>().get("run").await.ok()?.status?;
            (s.phase == RunPhase::Succeeded && s.retries == 1).then_some(s)
        })
        .await;
    assert_eq!(retried.request_id, request_id, "requestId is kept");
    let attempts: BTreeMap<String, u32> = retried.steps.iter().map(|s| (s.name.clone(), s.attempts)).collect();
    assert_eq!(
        attempts,
        BTreeMap::from([("after".into(), 1), ("flaky".into(), 2), ("ok".into(), 1)])
    );
    let jobs = env.jobs_of("run").await;
    let ok_jobs = jobs.iter().filter(|j| j.labels()["kubedag.io/step"] == "ok").count();
    assert_eq!((ok_jobs, jobs.len()), (1, 4), "the succeeded step was not re-run");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn ttl_deletes_finished_runs_and_their_jobs() {
    let env = TestEnv::new("ttl").await;
    env.create::<Dag>(&dag(
        "t",
        "  ttlSecondsAfterFinished: 3\n",
        "[{name: s, command: ['true']}]",
    ))
    .await;
    env.create::<DagRun>(&run_yaml("short-lived", "t", &[("n", "1")])).await;
    env.wait_phase("short-lived", RunPhase::Succeeded).await;
    env.eventually("the run and its Jobs to be deleted", || async {
        let gone = env.api::<DagRun>().get_opt("short-lived").await.ok()?.is_none();
        (gone && env.jobs_of("short-lived").await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn history_limit_keeps_the_newest_finished_runs() {
    let mut env = TestEnv::without_operator("history").await;
    env.start_operator(&["--history-limit", "2"]);
    env.create::<Dag>(&dag("h", "", "[{name: s, command: ['true']}]")).await;
    for i in 0..5 {
        env.create::<DagRun>(&run_yaml(&format!("h{i}"), "h", &[("n", &i.to_string())]))
            .await;
        env.wait_finished(&format!("h{i}")).await;
    }
    let names = env
        .eventually("only two finished runs to remain", || async {
            let runs = env.api::<DagRun>().list(&ListParams::default()).await.ok()?.items;
            let names: HashSet<String> = runs
                .iter()
                .filter(|r| r.metadata.deletion_timestamp.is_none())
                .map(|r| r.name_any())
                .collect();
            (names.len() == 2).then_some(names)
        })
        .await;
    assert_eq!(names, HashSet::from(["h3".to_string(), "h4".to_string()]));
}

/// Many concurrent runs while the operator is SIGKILLed repeatedly: every run succeeds and no step
/// attempt ever has more than one Job.
#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn runs_survive_repeated_operator_kills_without_duplicate_jobs() {
    let runs: usize = std::env::var("KUBEDAG_E2E_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut env = TestEnv::new("crash").await;
    env.create::<Dag>(&dag(
        "five",
        "",
        "[{name: a, command: ['true']}, {name: b, depends: [a], command: ['true']}, {name: c, depends: [a], command: ['true']}, {name: d, depends: [b, c], command: ['true']}, {name: e, depends: [d], command: ['true']}]",
    ))
    .await;
    let manifests: Vec<String> = (0..runs)
        .map(|i| run_yaml(&format!("c{i:03}"), "five", &[("n", &i.to_string())]))
        .collect();
    for chunk in manifests.chunks(50) {
        futures::future::join_all(chunk.iter().map(|m| env.try_create::<DagRun>(m)))
            .await
            .into_iter()
            .for_each(|r| {
                r.expect("create run");
            });
    }
    let api = env.api::<DagRun>();
    let mut kills = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(1500);
    loop {
        let list = api.list(&ListParams::default()).await.unwrap().items;
        let done = list
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
            .count();
        if done == runs {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runs did not finish: {done}/{runs}"
        );
        if kills < 3 && done >= (kills + 1) * runs / 5 {
            env.kill_operator();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
            env.start_operator(&[]);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(kills, 3, "the operator was killed three times during the runs");
    let list = api.list(&ListParams::default()).await.unwrap().items;
    let not_ok: Vec<_> = list
        .iter()
        .filter(|r| r.status.as_ref().unwrap().phase != RunPhase::Succeeded)
        .map(|r| r.name_any())
        .collect();
    assert!(not_ok.is_empty(), "runs that did not succeed: {not_ok:?}");
    let jobs = env
        .api::<Job>()
        .list(&ListParams::default().labels("kubedag.io/run"))
        .await
        .unwrap()
        .items;
    let mut per_attempt: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for job in &jobs {
        let l = job.labels();
        *per_attempt
            .entry((
                l["kubedag.io/run"].clone(),
                l["kubedag.io/step"].clone(),
                l["kubedag.io/attempt"].clone(),
            ))
            .or_default() += 1;
    }
    assert_eq!(jobs.len(), runs * 5, "exactly one Job per step of every run");
    assert!(per_attempt.values().all(|&n| n == 1));
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn only_the_leader_reconciles_and_a_standby_takes_over() {
    let mut leader = TestEnv::without_operator("leader").await;
    leader.start_operator(&["--leader-elect", "--instance", "replica-a"]);
    let leases = leader.api::<Lease>();
    leader
        .eventually("replica-a to hold the lease", || async {
            let lease = leases.get_opt("kubedag-leader").await.ok()??;
            (lease.spec?.holder_identity.as_deref() == Some("replica-a")).then_some(())
        })
        .await;
    let mut standby = leader.second_operator(&["--leader-elect", "--instance", "replica-b"]);
    leader
        .create::<Dag>(&dag("l", "", "[{name: s, command: ['true']}]"))
        .await;
    leader.create::<DagRun>(&run_yaml("first", "l", &[("n", "1")])).await;
    leader.wait_phase("first", RunPhase::Succeeded).await;
    assert_eq!(
        standby.metric("kubedag_reconciles_total").await,
        0.0,
        "the standby did not reconcile"
    );
    let killed_at = std::time::Instant::now();
    leader.kill_operator();
    leader
        .eventually("replica-b to take the lease", || async {
            let lease = leases.get_opt("kubedag-leader").await.ok()??;
            (lease.spec?.holder_identity.as_deref() == Some("replica-b")).then_some(())
        })
        .await;
    let handover = killed_at.elapsed();
    assert!(
        handover < Duration::from_secs(40),
        "handover took {handover:?} (lease 15 s + grace 5 s)"
    );
    leader.create::<DagRun>(&run_yaml("second", "l", &[("n", "2")])).await;
    leader.wait_phase("second", RunPhase::Succeeded).await;
    assert!(
        standby.metric("kubedag_reconciles_total").await > 0.0,
        "the standby took over"
    );
    standby.kill_operator();
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn operator_wide_caps_limit_running_jobs_and_runs() {
    let mut env = TestEnv::without_operator("caps").await;
    env.start_operator(&["--max-running-jobs", "2", "--max-running-runs", "2"]);
    env.create::<Dag>(&dag(
        "wide",
        "",
        "[{name: a, command: [sleep, '2']}, {name: b, command: [sleep, '2']}, {name: c, command: [sleep, '2']}, {name: d, command: [sleep, '2']}]",
    ))
    .await;
    for i in 0..3 {
        env.create::<DagRun>(&run_yaml(&format!("w{i}"), "wide", &[("n", &i.to_string())]))
            .await;
    }
    let (mut max_jobs, mut max_runs) = (0, 0);
    loop {
        let jobs = env.api::<Job>().list(&ListParams::default()).await.unwrap().items;
        let active = jobs
            .iter()
            .filter(|j| j.status.as_ref().and_then(|s| s.active).unwrap_or(0) > 0)
            .count();
        max_jobs = max_jobs.max(active);
        let runs = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
        let phase = |r: &DagRun| r.status.as_ref().map(|s| s.phase).unwrap_or_default();
        max_runs = max_runs.max(runs.iter().filter(|r| phase(r) == RunPhase::Running).count());
        if runs.iter().all(|r| phase(r).is_terminal()) {
            assert!(runs.iter().all(|r| phase(r) == RunPhase::Succeeded));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(max_jobs <= 2, "at most 2 step Jobs ran at once, saw {max_jobs}");
    assert!(max_runs <= 2, "at most 2 runs were Running at once, saw {max_runs}");
}
