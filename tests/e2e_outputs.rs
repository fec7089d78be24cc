//! End to end on the local cluster: step outputs passed through two hops byte for byte, output
//! limits, `when` conditions, and exit handlers after success, failure and cancel.

mod common;

use common::{STEP_IMAGE, TestEnv, run_yaml};
use kube::api::{Patch, PatchParams};
use kubedag::api::{Dag, DagRun, DagRunStatus, RunPhase, StepPhase, StepStatus};

/// Quotes, `$(x)`, `$$`, backslashes, `;`, non-ASCII: everything but a newline.
const HOSTILE: &str = r#"it's "quoted" $(a) $$ back\slash \n; ünïcødé 日本 `tick` $HOME"#;

fn dag(name: &str, params: &str, steps: &str, extra: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: {params}\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n{extra}  steps:\n{steps}"
    )
}

fn step<'a>(status: &'a DagRunStatus, name: &str) -> &'a StepStatus {
    status.steps.iter().find(|s| s.name == name).expect("step status")
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn a_hostile_value_passes_through_two_hops_unchanged() {
    let env = TestEnv::new("outputs").await;
    let steps = r#"    - name: produce
      outputs: [v]
      script: printf 'v=%s\n' "$value" > "$KUBEDAG_OUTPUTS"
    - name: relay
      depends: [produce]
      outputs: [v]
      command: [sh, -c, 'printf "v=%s\n" "$1" > "$KUBEDAG_OUTPUTS"', sh, "$(steps.produce.outputs.v)"]
    - name: consume
      depends: [relay]
      env: [{name: FROM_ENV, value: "$(steps.relay.outputs.v)"}]
      script: |
        printf '%s\n' "$KUBEDAG_OUTPUT_RELAY_V"
        printf '%s\n' "$FROM_ENV"
"#;
    env.create::<Dag>(&dag("chain", "[{name: value}]", steps, "")).await;
    let run = serde_json::json!({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DagRun",
        "metadata": {"name": "r"},
        "spec": {"dagRef": {"name": "chain"}, "params": {"value": HOSTILE}}
    });
    env.create::<DagRun>(&serde_json::to_string(&run).unwrap()).await;
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Succeeded, "{status:?}");
    assert_eq!(step(&status, "produce").outputs["v"], HOSTILE);
    assert_eq!(step(&status, "relay").outputs["v"], HOSTILE);
    let log = env.step_log("r", "consume").await;
    assert_eq!(log, format!("{HOSTILE}\n{HOSTILE}\n"));
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn oversized_and_undeclared_outputs_fail_their_step_naming_the_output() {
    let env = TestEnv::new("outlimit").await;
    let steps = r#"    - name: big
      outputs: [blob]
      script: printf 'blob=%02000d\n' 0 > "$KUBEDAG_OUTPUTS"
    - name: stray
      outputs: [count]
      script: echo 'other=1' > "$KUBEDAG_OUTPUTS"
    - {name: after-big, depends: [big], command: [echo, unreachable]}
"#;
    env.create::<Dag>(&dag("limits", "[{name: n}]", steps, "")).await;
    env.create::<DagRun>(&run_yaml("r", "limits", &[("n", "1")])).await;
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    let big = step(&status, "big");
    assert_eq!(big.phase, StepPhase::Failed);
    assert!(big.message.as_deref().unwrap().contains("\"blob\""), "{big:?}");
    let stray = step(&status, "stray");
    assert_eq!(stray.phase, StepPhase::Failed);
    assert!(stray.message.as_deref().unwrap().contains("\"other\""), "{stray:?}");
    assert_eq!(step(&status, "after-big").phase, StepPhase::Skipped);
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn when_true_false_and_error() {
    let env = TestEnv::new("when").await;
    let steps = r#"    - name: detect
      outputs: [count]
      script: echo 'count=7' > "$KUBEDAG_OUTPUTS"
    - {name: many, depends: [detect], when: "int(steps.detect.outputs.count) > 3", command: [echo, many]}
    - {name: quick-only, depends: [detect], when: "params.mode == 'quick'", command: [echo, quick]}
    - {name: after-quick, depends: [quick-only], command: [echo, still-runs]}
    - {name: broken, depends: [detect], when: "int(params.mode) > 1", command: [echo, never]}
"#;
    env.create::<Dag>(&dag("when", "[{name: mode}]", steps, "")).await;
    env.create::<DagRun>(&run_yaml("r", "when", &[("mode", "full")])).await;
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(step(&status, "many").phase, StepPhase::Succeeded);
    let skipped = step(&status, "quick-only");
    assert_eq!(
        (skipped.phase, skipped.reason.as_deref()),
        (StepPhase::Skipped, Some("WhenFalse"))
    );
    assert_eq!(
        step(&status, "after-quick").phase,
        StepPhase::Succeeded,
        "dependants of a when-false step run"
    );
    let broken = step(&status, "broken");
    assert_eq!(broken.phase, StepPhase::Failed);
    assert!(broken.message.as_deref().unwrap().starts_with("when: "), "{broken:?}");
    assert_eq!(status.phase, RunPhase::Failed, "the when error fails the run");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn exit_handlers_run_after_success_failure_and_cancel_and_see_the_phase() {
    let env = TestEnv::new("onexit").await;
    let steps = "    - {name: work, command: [sh, -c, 'sleep \"$n\"; test \"$n\" != 1']}\n";
    let handlers = "  onExit:\n    - {name: notify, script: 'echo \"phase=$KUBEDAG_RUN_PHASE\"'}\n    - {name: cleanup, depends: [notify], command: [echo, cleaned]}\n";
    env.create::<Dag>(&dag("handled", "[{name: n}]", steps, handlers)).await;
    // n=0 succeeds, n=1 fails, n=30 is cancelled while it sleeps.
    for (run, n) in [("ok", "0"), ("bad", "1"), ("stop", "30")] {
        env.create::<DagRun>(&run_yaml(run, "handled", &[("n", n)])).await;
    }
    env.eventually("the long run to be running", || async {
        let run = env.api::<DagRun>().get("stop").await.ok()?;
        (step(run.status.as_ref()?, "work").phase == StepPhase::Running).then_some(())
    })
    .await;
    let cancel = serde_json::json!({"spec": {"cancel": true}});
    env.api::<DagRun>()
        .patch("stop", &PatchParams::default(), &Patch::Merge(&cancel))
        .await
        .unwrap();
    for (run, phase) in [
        ("ok", RunPhase::Succeeded),
        ("bad", RunPhase::Failed),
        ("stop", RunPhase::Cancelled),
    ] {
        let status = env.wait_finished(run).await.status.unwrap();
        assert_eq!(status.phase, phase, "{run}: {status:?}");
        assert_eq!(step(&status, "notify").phase, StepPhase::Succeeded, "{run}");
        assert_eq!(step(&status, "cleanup").phase, StepPhase::Succeeded, "{run}");
        let log = env.step_log(run, "notify").await;
        assert_eq!(log.trim(), format!("phase={}", phase.as_str()), "{run}");
    }
}
