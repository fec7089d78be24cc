//! End to end on the local cluster: the queue starts runs in creation order (also within one
//! second and across operator restarts), a queued run starts promptly when a slot frees (a run
//! ends, a running run is deleted, `maxActiveRuns` is raised), and a run that only waits costs no
//! periodic reconciles.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{STEP_IMAGE, TestEnv, run_yaml};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kubedag::api::{Dag, DagRun, RunPhase};

fn dag(name: &str, max_active_runs: u32, steps: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: [{{name: n}}]\n  maxActiveRuns: {max_active_runs}\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n  steps: {steps}\n"
    )
}

/// Creates `count` runs 150 ms apart, named so that name order is the reverse of creation order.
async fn create_batch(env: &TestEnv, dag: &str, count: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..count {
        let name = format!("r{}", count - i);
        env.create::<DagRun>(&run_yaml(&name, dag, &[("n", &i.to_string())]))
            .await;
        names.push(name);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    names
}

/// Polls the runs every 100 ms until all finished; returns when each was first seen Running and
/// first seen finished.
async fn observe_until_done(env: &TestEnv) -> (HashMap<String, Instant>, HashMap<String, Instant>) {
    let (mut started, mut finished) = (HashMap::new(), HashMap::new());
    let deadline = Instant::now() + common::WAIT;
    loop {
        let runs = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
        for run in &runs {
            let phase = run.status.as_ref().map(|s| s.phase).unwrap_or_default();
            if phase == RunPhase::Running || phase.is_terminal() {
                started.entry(run.name_any()).or_insert_with(Instant::now);
            }
            if phase.is_terminal() {
                finished.entry(run.name_any()).or_insert_with(Instant::now);
            }
        }
        if !runs.is_empty() && finished.len() == runs.len() {
            return (started, finished);
        }
        assert!(Instant::now() < deadline, "runs did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_order(runs: &[DagRun]) -> Vec<String> {
    let mut runs: Vec<&DagRun> = runs.iter().collect();
    runs.sort_by_key(|r| r.status.as_ref().and_then(|s| s.started_at.clone()).map(|t| t.0));
    runs.iter().map(|r| r.name_any()).collect()
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn runs_created_within_one_second_start_in_creation_order() {
    let env = TestEnv::new("fifo").await;
    env.create::<Dag>(&dag("fifo", 1, "[{name: s, command: [sleep, '2']}]"))
        .await;
    let created = create_batch(&env, "fifo", 8).await;
    observe_until_done(&env).await;
    let runs = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
    assert!(
        runs.iter()
            .all(|r| r.status.as_ref().unwrap().phase == RunPhase::Succeeded)
    );
    assert_eq!(start_order(&runs), created, "start order must be creation order");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn creation_order_holds_for_runs_created_while_the_operator_is_down_and_across_a_restart() {
    let mut env = TestEnv::without_operator("fifodown").await;
    env.create::<Dag>(&dag("fifo", 1, "[{name: s, command: [sleep, '2']}]"))
        .await;
    let created = create_batch(&env, "fifo", 6).await;
    env.start_operator(&[]);
    env.wait_phase(&created[1], RunPhase::Running).await;
    env.kill_operator();
    env.start_operator(&[]);
    observe_until_done(&env).await;
    let runs = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
    assert_eq!(start_order(&runs), created, "start order must be creation order");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn a_queued_run_starts_within_two_seconds_of_the_previous_one_finishing() {
    let env = TestEnv::new("wake").await;
    env.create::<Dag>(&dag("wake", 1, "[{name: s, command: [sleep, '1']}]"))
        .await;
    let created = create_batch(&env, "wake", 11).await;
    let (started, finished) = observe_until_done(&env).await;
    let runs = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
    let order = start_order(&runs);
    assert_eq!(order, created);
    let gaps: Vec<Duration> = order
        .windows(2)
        .map(|w| started[&w[1]].saturating_duration_since(finished[&w[0]]))
        .collect();
    assert_eq!(gaps.len(), 10, "10 queued runs");
    let worst = gaps.iter().max().unwrap();
    assert!(
        *worst < Duration::from_secs(2),
        "a queued run waited {worst:?} after a slot freed: {gaps:?}"
    );
}

/// Polls (as `TestEnv::eventually` does) until every run of `names` is Running; returns how long
/// that took.
async fn time_until_running(env: &TestEnv, names: &[String]) -> Duration {
    let since = Instant::now();
    env.eventually("the woken runs to be Running", || async {
        let runs = env.api::<DagRun>().list(&ListParams::default()).await.ok()?.items;
        let running = |name: &String| {
            runs.iter()
                .any(|r| &r.name_any() == name && r.phase() == RunPhase::Running)
        };
        names.iter().all(running).then_some(())
    })
    .await;
    since.elapsed()
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn a_deleted_running_run_or_a_raised_limit_starts_queued_runs_within_two_seconds() {
    let env = TestEnv::new("slots").await;
    env.create::<Dag>(&dag("slots", 1, "[{name: s, command: [sleep, '300']}]"))
        .await;
    let created = create_batch(&env, "slots", 4).await;
    env.wait_phase(&created[0], RunPhase::Running).await;
    env.wait_phase(&created[3], RunPhase::Queued).await;

    // Neither frees the slot by ending a run, so no run's end wakes the queue.
    env.api::<DagRun>()
        .delete(&created[0], &DeleteParams::default())
        .await
        .unwrap();
    let after_delete = time_until_running(&env, &created[1..2]).await;
    let patch = serde_json::json!({"spec": {"maxActiveRuns": 3}});
    env.api::<Dag>()
        .patch("slots", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let after_raise = time_until_running(&env, &created[2..]).await;
    eprintln!("woken {after_delete:?} after the delete, {after_raise:?} after the raise");
    assert!(
        after_delete < Duration::from_secs(2) && after_raise < Duration::from_secs(2),
        "queued runs waited {after_delete:?} after the running run was deleted and {after_raise:?} after maxActiveRuns was raised"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn runs_waiting_on_dependencies_under_a_job_cap_cause_no_periodic_reconciles() {
    let mut env = TestEnv::without_operator("flat").await;
    env.start_operator(&["--max-running-jobs", "5"]);
    let steps = "[{name: long, command: [sleep, '60']}, {name: next, depends: [long], command: [echo, done]}]";
    env.create::<Dag>(&dag("flat", 0, steps)).await;
    for i in 0..3 {
        env.create::<DagRun>(&run_yaml(&format!("r{i}"), "flat", &[("n", &i.to_string())]))
            .await;
    }
    // Wait until every long step's pod runs and the Jobs have said so. A healthy young Job's pod
    // is not looked at on a timer either (`run::observe`), so the window covers most of the step.
    env.eventually("the long steps' pods to run", || async {
        let pods = env
            .api::<k8s_openapi::api::core::v1::Pod>()
            .list(&ListParams::default())
            .await
            .ok()?;
        let running = pods
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let before = env.metric("kubedag_reconciles_total{controller=\"dagrun\"}").await;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let after = env.metric("kubedag_reconciles_total{controller=\"dagrun\"}").await;
    assert_eq!(after, before, "reconciles while the runs only waited");
    for i in 0..3 {
        assert_eq!(
            env.wait_finished(&format!("r{i}")).await.status.unwrap().phase,
            RunPhase::Succeeded
        );
    }
}
