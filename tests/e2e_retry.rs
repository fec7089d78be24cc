//! End-to-end: `retry.backoff` timing and `retry.onExitCodes`, on the real cluster.
//! Run with `cargo test --test e2e_retry -- --ignored` against `make cluster-up`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{STEP_IMAGE, TestEnv};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{EvictParams, ListParams};

use kubedag::api::{Dag, DagRun, RunPhase, StepPhase};

fn dag(name: &str, steps: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n  steps:\n{steps}"
    )
}

/// Creates the Dag and checks the API server kept its retry settings: the CRDs are cluster-wide,
/// and a branch without `retry.backoff`/`onExitCodes` applying its own would prune them.
async fn create_dag(env: &TestEnv, name: &str, steps: &str) {
    let created: Dag = env.create(&dag(name, steps)).await;
    let retry = created.spec.steps[0].retry.clone().unwrap();
    assert!(
        retry.backoff.is_some() || !retry.on_exit_codes.is_empty(),
        "the cluster's Dag CRD pruned retry.backoff/onExitCodes (another branch's CRDs applied?): {retry:?}"
    );
}

fn seconds(t: &Time) -> i64 {
    t.0.as_second()
}

/// The step's Jobs by attempt: (created, failed) in whole seconds, as the API server records them.
async fn attempts(env: &TestEnv, run: &str) -> BTreeMap<u32, (i64, Option<i64>)> {
    let jobs: Vec<Job> = env.jobs_of(run).await;
    jobs.iter()
        .map(|j| {
            let attempt: u32 = j.labels()["kubedag.io/attempt"].parse().unwrap();
            let failed = j
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
                .and_then(|c| c.last_transition_time.as_ref().map(seconds));
            (attempt, (seconds(j.creation_timestamp().as_ref().unwrap()), failed))
        })
        .collect()
}

#[tokio::test]
#[ignore]
async fn backoff_spaces_attempts_by_delay_times_factor_and_shows_the_next_attempt() {
    let env = TestEnv::new("backoff").await;
    let steps = "    - name: fail\n      script: 'echo failing; exit 3'\n      retry: {limit: 2, backoff: {delaySeconds: 3, factor: 2, maxDelaySeconds: 60}}\n";
    create_dag(&env, "backoff", steps).await;
    env.create::<DagRun>(&common::run_yaml("backoff", "backoff", &[])).await;

    // While it waits, the status says when the next attempt is due.
    let runs = env.api::<DagRun>();
    let mut shown: BTreeMap<u32, i64> = BTreeMap::new();
    let run = loop {
        let run = runs.get("backoff").await.unwrap();
        let status = run.status.clone().unwrap_or_default();
        if let Some(step) = status.steps.first()
            && step.phase == StepPhase::Pending
            && let Some(due) = &step.next_attempt_at
        {
            shown.insert(step.attempts + 1, seconds(due));
        }
        if status.phase.is_terminal() {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let status = run.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    assert_eq!(status.steps[0].attempts, 3);
    let jobs = attempts(&env, "backoff").await;
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    for (n, delay) in [(1u32, 3i64), (2, 6)] {
        let ended = jobs[&n].1.expect("a failed attempt");
        let next_created = jobs[&(n + 1)].0;
        let gap = next_created - ended;
        // 1 s resolution: the next Job cannot exist before ended + delay, and comes within 1 s.
        assert!(
            (delay..=delay + 1).contains(&gap),
            "attempt {}: {gap}s after attempt {n} ended, want {delay}s",
            n + 1
        );
        assert_eq!(
            shown.get(&(n + 1)),
            Some(&(ended + delay)),
            "nextAttemptAt of attempt {}: {shown:?}",
            n + 1
        );
    }
}

#[tokio::test]
#[ignore]
async fn on_exit_codes_retry_only_listed_codes_but_always_pod_failures() {
    let env = TestEnv::new("exitcodes").await;
    let steps = r#"    - name: codes
      script: 'case "$HOSTNAME" in *-codes-1-*) exit 3;; *-codes-2-*) exit 4;; esac; exit 0'
      retry: {limit: 3, onExitCodes: [3]}
    - name: evicted
      script: 'case "$HOSTNAME" in *-evicted-1-*) sleep 300;; esac; sleep 3; echo second'
      retry: {limit: 1, onExitCodes: [3]}
"#;
    create_dag(&env, "codes", steps).await;
    env.create::<DagRun>(&common::run_yaml("codes", "codes", &[])).await;

    // Evict the first attempt of `evicted` once it runs: not the program's failure.
    let pods = env.api::<Pod>();
    let selector = ListParams::default().labels("kubedag.io/run=codes,kubedag.io/step=evicted,kubedag.io/attempt=1");
    let pod = env
        .eventually("attempt 1 of evicted to run", || async {
            let list = pods.list(&selector).await.ok()?.items;
            let pod = list.into_iter().next()?;
            (pod.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(pod)
        })
        .await;
    pods.evict(&pod.name_any(), &EvictParams::default()).await.unwrap();
    let runs = env.api::<DagRun>();
    let retried = env
        .eventually("the evicted step's second attempt", || async {
            let run = runs.get("codes").await.ok()?;
            let step = run.status?.steps.into_iter().find(|s| s.name == "evicted")?;
            (step.attempts == 2).then_some(step)
        })
        .await;
    let message = retried.message.unwrap_or_default();
    // The pod shows its DisruptionTarget condition, or is already gone when the operator looks.
    assert!(
        message.starts_with("attempt 1 failed, not by the program")
            && (message.contains("EvictionByEvictionAPI") || message.contains("its pod is gone")),
        "{message}"
    );

    let status = env.wait_finished("codes").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    let step = |name: &str| status.steps.iter().find(|s| s.name == name).unwrap().clone();
    let codes = step("codes");
    assert_eq!(
        (codes.phase, codes.attempts, codes.exit_code),
        (StepPhase::Failed, 2, Some(4))
    );
    assert_eq!(
        codes.message.as_deref(),
        Some("attempt 2 failed: exit code 4 (Error); not retried: exit code 4 is not in retry.onExitCodes [3]")
    );
    let evicted = step("evicted");
    assert_eq!((evicted.phase, evicted.attempts), (StepPhase::Succeeded, 2));
}
