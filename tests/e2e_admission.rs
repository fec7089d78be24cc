//! End to end on the local cluster: the admission webhook's refusals and the controller's
//! race-free duplicate guard.

mod common;

use common::{TestEnv, one_step_dag, run_yaml};
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kubedag::api::{Dag, DagRun, RunPhase};

fn refusal(result: Result<DagRun, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected the webhook to refuse, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn forbid_refuses_same_params_while_running_and_accepts_them_after_failure_or_cancel() {
    let env = TestEnv::with_webhook("forbid").await;
    env.create::<Dag>(&one_step_dag(
        "img",
        "Forbid",
        r#"[ "$file" != bad.fits ] || exit 1; sleep 3"#,
    ))
    .await;
    env.create::<DagRun>(&run_yaml("first", "img", &[("file", "m31.fits")]))
        .await;
    env.wait_phase("first", RunPhase::Running).await;
    let hash = env
        .api::<DagRun>()
        .get("first")
        .await
        .unwrap()
        .status
        .unwrap()
        .param_hash
        .unwrap();
    let message = refusal(
        env.try_create::<DagRun>(&run_yaml("second", "img", &[("file", "m31.fits")]))
            .await,
    );
    assert!(message.contains("\"first\"") && message.contains(&hash), "{message}");
    env.create::<DagRun>(&run_yaml("other", "img", &[("file", "m42.fits")]))
        .await;

    // Succeeded still blocks under Forbid.
    assert_eq!(
        env.wait_finished("first").await.status.unwrap().phase,
        RunPhase::Succeeded
    );
    refusal(
        env.try_create::<DagRun>(&run_yaml("again", "img", &[("file", "m31.fits")]))
            .await,
    );

    // A failed run releases its parameter set.
    env.create::<DagRun>(&run_yaml("bad-1", "img", &[("file", "bad.fits")]))
        .await;
    assert_eq!(env.wait_finished("bad-1").await.status.unwrap().phase, RunPhase::Failed);
    env.create::<DagRun>(&run_yaml("bad-2", "img", &[("file", "bad.fits")]))
        .await;

    // So does a cancelled one.
    env.create::<DagRun>(&run_yaml("cancel-1", "img", &[("file", "c.fits")]))
        .await;
    env.wait_phase("cancel-1", RunPhase::Running).await;
    let cancel = serde_json::json!({"spec": {"cancel": true}});
    env.api::<DagRun>()
        .patch("cancel-1", &PatchParams::default(), &Patch::Merge(&cancel))
        .await
        .unwrap();
    env.wait_phase("cancel-1", RunPhase::Cancelled).await;
    let accepted = env
        .create::<DagRun>(&run_yaml("cancel-2", "img", &[("file", "c.fits")]))
        .await;
    assert_eq!(
        env.wait_finished(&accepted.name_any()).await.status.unwrap().phase,
        RunPhase::Succeeded
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn forbid_concurrent_accepts_same_params_after_success() {
    let env = TestEnv::with_webhook("concurrent").await;
    env.create::<Dag>(&one_step_dag("img", "ForbidConcurrent", "sleep 2"))
        .await;
    env.create::<DagRun>(&run_yaml("first", "img", &[("file", "x")])).await;
    env.wait_phase("first", RunPhase::Running).await;
    refusal(
        env.try_create::<DagRun>(&run_yaml("second", "img", &[("file", "x")]))
            .await,
    );
    assert_eq!(
        env.wait_finished("first").await.status.unwrap().phase,
        RunPhase::Succeeded
    );
    env.create::<DagRun>(&run_yaml("third", "img", &[("file", "x")])).await;
    assert_eq!(
        env.wait_finished("third").await.status.unwrap().phase,
        RunPhase::Succeeded
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn kubectl_apply_shows_the_refusal_naming_the_field_or_step() {
    let env = TestEnv::with_webhook("refuse").await;
    let kubectl = |yaml: String| {
        let ns = env.ns.clone();
        async move {
            let mut child = tokio::process::Command::new("kubectl")
                .args(["apply", "-n", &ns, "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("kubectl on PATH (make test puts the cluster's kubectl there)");
            use tokio::io::AsyncWriteExt;
            child.stdin.take().unwrap().write_all(yaml.as_bytes()).await.unwrap();
            let out = child.wait_with_output().await.unwrap();
            (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
        }
    };
    let dag = |steps: &str| {
        format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: d}}\nspec:\n  params: [{{name: file}}]\n  defaults: {{image: x}}\n  steps: {steps}\n"
        )
    };
    let (ok, err) = kubectl(dag(
        "[{name: a, depends: [c]}, {name: b, depends: [a]}, {name: c, depends: [b]}]",
    ))
    .await;
    assert!(
        !ok && err.contains("dependency cycle") && err.contains("\"a\""),
        "{err}"
    );
    let (ok, err) = kubectl(dag("[{name: a, depends: [ghost]}]")).await;
    assert!(
        !ok && err.contains("step \"a\": depends on unknown step \"ghost\""),
        "{err}"
    );
    let (ok, err) = kubectl(dag("[{name: a, command: [echo], script: echo}]")).await;
    assert!(
        !ok && err.contains("step \"a\": command/args and script are exclusive"),
        "{err}"
    );
    let (ok, err) = kubectl(dag("[{name: a}]")).await;
    assert!(ok, "a valid Dag is accepted: {err}");

    let (ok, err) = kubectl(run_yaml("r1", "d", &[("file", "x"), ("colour", "red")])).await;
    assert!(!ok && err.contains("spec.params.colour"), "{err}");
    let (ok, err) = kubectl(run_yaml("r2", "d", &[])).await;
    assert!(!ok && err.contains("required parameter \"file\""), "{err}");
    let (ok, err) = kubectl(run_yaml("r3", "nope", &[("file", "x")])).await;
    assert!(!ok && err.contains("Dag \"nope\" not found"), "{err}");
    let (ok, err) = kubectl(run_yaml("r4", "d", &[("file", "x")])).await;
    assert!(ok, "{err}");
    let (ok, err) = kubectl(run_yaml("r4", "d", &[("file", "y")])).await;
    assert!(!ok && err.contains("spec.params is immutable"), "{err}");

    // cancel and retry only move forward: no retry of a run that is not Failed, no un-cancel.
    let patch = |spec: serde_json::Value| {
        let runs = env.api::<DagRun>();
        async move {
            let patch = serde_json::json!({ "spec": spec });
            match runs.patch("r4", &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => Ok(()),
                Err(err) => Err(err.to_string()),
            }
        }
    };
    let err = patch(serde_json::json!({"retry": 1})).await.unwrap_err();
    assert!(
        err.contains("spec.retry: DagRun \"r4\" is") && err.contains("only a Failed run can be retried"),
        "{err}"
    );
    patch(serde_json::json!({"cancel": true}))
        .await
        .expect("a cancel is accepted");
    let err = patch(serde_json::json!({"cancel": false})).await.unwrap_err();
    assert!(err.contains("spec.cancel: a cancel cannot be taken back"), "{err}");
}

/// Without the webhook (as when it is down or bypassed), 50 identical runs created at once:
/// exactly one runs, the other 49 end Rejected with DuplicateParams and launch nothing.
#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn fifty_racing_duplicates_without_webhook_yield_exactly_one_run() {
    let env = TestEnv::new("race").await;
    race_fifty(&env).await;
}

/// With the webhook racing too: each of the 50 is refused at admission or ends Rejected.
#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn fifty_racing_duplicates_with_webhook_yield_exactly_one_run() {
    let env = TestEnv::with_webhook("race-wh").await;
    race_fifty(&env).await;
}

async fn race_fifty(env: &TestEnv) {
    env.create::<Dag>(&one_step_dag("img", "Forbid", "sleep 1")).await;
    let manifests: Vec<String> = (0..50)
        .map(|i| run_yaml(&format!("dup-{i}"), "img", &[("file", "same.fits")]))
        .collect();
    let creates = manifests.iter().map(|yaml| env.try_create::<DagRun>(yaml));
    let results = futures::future::join_all(creates).await;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(run) => created.push(run.name_any()),
            Err(kube::Error::Api(status)) => {
                assert!(status.message.contains("duplicate parameters"), "{}", status.message)
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(!created.is_empty());
    let mut outcomes = Vec::new();
    for name in &created {
        let run = env.wait_finished(name).await;
        let status = run.status.unwrap();
        outcomes.push((name.clone(), status.phase, status.reason));
    }
    let succeeded: Vec<_> = outcomes.iter().filter(|o| o.1 == RunPhase::Succeeded).collect();
    assert_eq!(succeeded.len(), 1, "exactly one run proceeds: {outcomes:?}");
    for (name, phase, reason) in &outcomes {
        if *phase != RunPhase::Succeeded {
            assert_eq!(
                (*phase, reason.as_deref()),
                (RunPhase::Rejected, Some("DuplicateParams")),
                "{name}"
            );
            assert!(env.jobs_of(name).await.is_empty(), "rejected run {name} launched a Job");
        }
    }
    assert_eq!(env.jobs_of(&succeeded[0].0).await.len(), 1);
}
