//! End to end on the local cluster: steps whose pod can never start, and Jobs the API server
//! refuses. No input leaves a run without a phase and a message naming the cause.

mod common;

use std::time::Duration;

use common::{STEP_IMAGE, TestEnv, run_yaml};
use k8s_openapi::api::core::v1::{LimitRange, ResourceQuota};
use kube::api::{Patch, PatchParams};
use kubedag::api::{Dag, DagRun, DagRunStatus, RunPhase, StepPhase, StepStatus};

/// The start bound the tests run the operator with (the default is 90 s).
const POD_START_TIMEOUT: &str = "20";

fn dag(name: &str, steps: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: [{{name: n}}]\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n  steps:\n{steps}"
    )
}

fn step<'a>(status: &'a DagRunStatus, name: &str) -> &'a StepStatus {
    status.steps.iter().find(|s| s.name == name).expect("step status")
}

async fn env_with_bound(prefix: &str, bound: &str) -> TestEnv {
    let mut env = TestEnv::without_operator(prefix).await;
    env.start_operator(&["--pod-start-timeout", bound]);
    env
}

/// The kubelet retries a failed pull after 10, 20, 40 s...: the image that appears must have
/// time to be picked up, also on a busy node.
const CLEARING_BOUND_SECONDS: u64 = 60;

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn steps_whose_pods_cannot_start_fail_within_the_bound_naming_the_cause() {
    let env = env_with_bound("nostart", POD_START_TIMEOUT).await;
    // A LimitRange refuses pods of one step at creation (the Job itself is accepted).
    env.create::<LimitRange>(
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: small}\nspec:\n  limits: [{type: Container, max: {memory: 32Mi}}]\n",
    )
    .await;
    let steps = r#"    - {name: fetch, image: "kubedag.local/no-such-image:9", retry: {limit: 1}}
    - {name: after-fetch, depends: [fetch], command: [echo, unreachable]}
    - name: config
      command: [echo, x]
      env: [{name: X, valueFrom: {configMapKeyRef: {name: missing-config, key: x}}}]
    - {name: refused-pod, command: [echo, x], resources: {limits: {memory: 64Mi}}}
    - {name: bad-name, image: "kubedag.local/UPPER:case", command: [echo, x]}
    - {name: fine, command: [echo, fine]}
"#;
    env.create::<Dag>(&dag("nostart", steps)).await;
    env.create::<DagRun>(&run_yaml("r", "nostart", &[("n", "1")])).await;
    let run = env.wait_finished("r").await;
    let status = run.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed, "{status:?}");
    let fetch = step(&status, "fetch");
    let message = fetch.message.as_deref().unwrap_or_default();
    assert_eq!(fetch.phase, StepPhase::Failed, "{fetch:?}");
    assert_eq!(fetch.attempts, 2, "retried once: {fetch:?}");
    assert!(
        (message.contains("ErrImagePull") || message.contains("ImagePullBackOff"))
            && message.contains("no-such-image:9"),
        "{message}"
    );
    assert_eq!(step(&status, "after-fetch").phase, StepPhase::Skipped);
    let config = step(&status, "config");
    assert_eq!(config.phase, StepPhase::Failed);
    assert!(
        config
            .message
            .as_deref()
            .unwrap()
            .contains("CreateContainerConfigError"),
        "{config:?}"
    );
    let refused = step(&status, "refused-pod");
    assert_eq!(refused.phase, StepPhase::Failed);
    assert!(
        refused.message.as_deref().unwrap().contains("maximum memory"),
        "{refused:?}"
    );
    let bad = step(&status, "bad-name");
    assert_eq!(bad.phase, StepPhase::Failed);
    assert!(bad.message.as_deref().unwrap().contains("InvalidImageName"), "{bad:?}");
    assert_eq!(step(&status, "fine").phase, StepPhase::Succeeded);
    // Their Jobs were deleted, so the kubelet stops pulling.
    let jobs = env.jobs_of("r").await;
    assert!(
        jobs.iter()
            .all(|j| !j.metadata.name.as_deref().unwrap().contains("fetch-1")),
        "first fetch attempt's Job is deleted"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn a_pull_error_that_clears_within_the_bound_and_a_capacity_wait_do_not_fail() {
    let env = env_with_bound("clears", &CLEARING_BOUND_SECONDS.to_string()).await;
    let created = std::time::Instant::now();
    let late_image = format!("kubedag.local/late-{}:1", env.ns);
    let steps = format!(
        "    - {{name: late, image: \"{late_image}\", command: [echo, arrived]}}\n    - {{name: no-capacity, command: [echo, x], nodeSelector: {{kubedag.io/no-such-node: \"yes\"}}}}\n"
    );
    env.create::<Dag>(&dag("clears", &steps)).await;
    env.create::<DagRun>(&run_yaml("r", "clears", &[("n", "1")])).await;
    // The image appears after the first pull failures, well inside the bound.
    env.eventually("the late step to report a pull error", || async {
        let run = env.api::<DagRun>().get("r").await.ok()?;
        let message = step(run.status.as_ref()?, "late").message.clone()?;
        message.contains("Pull").then_some(())
    })
    .await;
    // e2e/lib.sh knows where the cluster's containerd listens.
    let tag = format!(
        ". e2e/lib.sh; ctr --address \"$CONTAINERD_SOCK\" -n k8s.io images tag --force {STEP_IMAGE} {late_image}"
    );
    let tagged = std::process::Command::new("bash").args(["-c", &tag]).status().unwrap();
    assert!(tagged.success(), "could not tag the late image");
    env.eventually("the late step to succeed", || async {
        let run = env.api::<DagRun>().get("r").await.ok()?;
        (step(run.status.as_ref()?, "late").phase == StepPhase::Succeeded).then_some(())
    })
    .await;
    // From here on the run only waits for capacity: nothing may look at it again on a timer.
    // The window is longer than the capacity message's old refresh (60 s) and ends past the
    // bound (a wait without a cause was looked at every second past it).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reconciles = "kubedag_reconciles_total{controller=\"dagrun\"}";
    let before = env.metric(reconciles).await;
    tokio::time::sleep(Duration::from_secs(65)).await;
    let waited = env.metric(reconciles).await - before;
    assert_eq!(waited, 0.0, "reconciles while the run only waited for capacity");
    // Well past the bound, the unschedulable step still waits, saying for what.
    assert!(created.elapsed() > Duration::from_secs(CLEARING_BOUND_SECONDS + 5));
    let run = env.api::<DagRun>().get("r").await.unwrap();
    let status = run.status.unwrap();
    assert_eq!(status.phase, RunPhase::Running);
    let waiting = step(&status, "no-capacity");
    assert_eq!(waiting.phase, StepPhase::Running);
    assert!(
        waiting.message.as_deref().unwrap_or_default().contains("for capacity"),
        "{waiting:?}"
    );
    let cancel = serde_json::json!({"spec": {"cancel": true}});
    env.api::<DagRun>()
        .patch("r", &PatchParams::default(), &Patch::Merge(&cancel))
        .await
        .unwrap();
    assert_eq!(env.wait_finished("r").await.status.unwrap().phase, RunPhase::Cancelled);
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn refused_job_creates_fail_their_step_or_wait_while_the_rest_of_the_run_goes_on() {
    let env = TestEnv::new("refused").await;
    let steps = r#"    - {name: ok, command: [echo, ok]}
    - {name: oversized, command: [echo, x], resources: {requests: {memory: 128Mi}, limits: {memory: 64Mi}}}
    - {name: after, depends: [oversized], command: [echo, unreachable]}
    - {name: bad-selector, command: [echo, x], nodeSelector: {"bad key!": "x"}}
"#;
    env.create::<Dag>(&dag("refused", steps)).await;
    env.create::<DagRun>(&run_yaml("r", "refused", &[("n", "1")])).await;
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    assert_eq!(step(&status, "ok").phase, StepPhase::Succeeded);
    let oversized = step(&status, "oversized");
    assert_eq!(oversized.phase, StepPhase::Failed);
    assert!(
        oversized
            .message
            .as_deref()
            .unwrap()
            .contains("must be less than or equal to memory limit"),
        "{oversized:?}"
    );
    assert_eq!(step(&status, "after").phase, StepPhase::Skipped);
    let selector = step(&status, "bad-selector");
    assert_eq!(selector.phase, StepPhase::Failed);
    assert!(
        selector.message.as_deref().unwrap().contains("nodeSelector"),
        "{selector:?}"
    );

    // A quota may clear: the step waits with a message naming it and a Warning, then proceeds.
    let existing = env
        .api::<k8s_openapi::api::batch::v1::Job>()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .len();
    let quota = format!(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: jobs}}\nspec: {{hard: {{count/jobs.batch: \"{}\"}}}}\n",
        existing + 1
    );
    env.create::<ResourceQuota>(&quota).await;
    env.eventually("the quota's usage to be counted", || async {
        let quota = env.api::<ResourceQuota>().get("jobs").await.ok()?;
        quota.status?.used.is_some().then_some(())
    })
    .await;
    let two =
        "    - {name: first, command: [echo, one]}\n    - {name: second, depends: [first], command: [echo, two]}\n";
    env.create::<Dag>(&dag("quota", two)).await;
    env.create::<DagRun>(&run_yaml("q", "quota", &[("n", "1")])).await;
    let waiting = env
        .eventually("the second step to wait on the quota", || async {
            let run = env.api::<DagRun>().get("q").await.ok()?;
            let second = step(run.status.as_ref()?, "second").clone();
            second.message.as_deref()?.contains("exceeded quota").then_some(second)
        })
        .await;
    assert_eq!(waiting.phase, StepPhase::Pending, "{waiting:?}");
    assert!(waiting.next_attempt_at.is_some());
    let events = env.events_of("q").await;
    assert!(
        events
            .iter()
            .any(|(t, reason, note)| t == "Warning" && reason == "StepWaiting" && note.contains("second")),
        "{events:?}"
    );
    let raise = serde_json::json!({"spec": {"hard": {"count/jobs.batch": "50"}}});
    env.api::<ResourceQuota>()
        .patch("jobs", &PatchParams::default(), &Patch::Merge(&raise))
        .await
        .unwrap();
    assert_eq!(env.wait_finished("q").await.status.unwrap().phase, RunPhase::Succeeded);
}
