//! End to end on the local cluster: `call` (child runs isolated per params, 50 identical calls made
//! at once run exactly once across an operator kill and all get the output, cancel of the parent
//! cancels its child) and
//! `forEach` (the window is never exceeded, a failing item is retried then named, map-reduce).

mod common;

use std::time::Duration;

use common::{STEP_IMAGE, TestEnv, run_yaml};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{ListParams, Patch, PatchParams};
use kubedag::api::{Dag, DagRun, DagRunStatus, RunPhase, StepPhase, StepStatus, labels};

fn dag(name: &str, params: &str, steps: &str, extra: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: {params}\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n{extra}  steps:\n{steps}"
    )
}

fn step<'a>(status: &'a DagRunStatus, name: &str) -> &'a StepStatus {
    status.steps.iter().find(|s| s.name == name).expect("step status")
}

/// Child Dag `bias`: takes a second, publishes `bias=bias-<night>` as its `spec.outputs`.
const BIAS_STEPS: &str = r#"    - name: combine
      outputs: [bias]
      script: sleep 2; echo "bias=bias-$night" > "$KUBEDAG_OUTPUTS"
"#;

/// A parent Dag `name` that calls `bias` with its own `night`, then reads the call's output.
fn parent_dag(name: &str) -> String {
    let steps = r#"    - name: bias
      call: {dag: bias, params: {night: "$(night)"}}
      outputs: [bias]
    - name: use
      depends: [bias]
      command: [echo, "$(steps.bias.outputs.bias)"]
"#;
    dag(name, "[{name: night}, {name: file, default: x}]", steps, "")
}

async fn runs_of(env: &TestEnv, dag: &str) -> Vec<DagRun> {
    let runs = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
    runs.into_iter().filter(|r| r.spec.dag_ref.name == dag).collect()
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn calls_stay_isolated_per_params_and_identical_calls_run_once() {
    let mut env = TestEnv::new("compose-call").await;
    env.create::<Dag>(&dag(
        "bias",
        "[{name: night}]",
        BIAS_STEPS,
        "  outputs: [{name: bias, value: \"$(steps.combine.outputs.bias)\"}]\n",
    ))
    .await;
    env.create::<Dag>(&parent_dag("img-a")).await;
    env.create::<Dag>(&parent_dag("img-b")).await;

    // Two different parent Dags, different params, concurrently: two children, each its own.
    env.create::<DagRun>(&run_yaml("a", "img-a", &[("night", "n1")])).await;
    env.create::<DagRun>(&run_yaml("b", "img-b", &[("night", "n2")])).await;
    for (run, night) in [("a", "n1"), ("b", "n2")] {
        let status = env.wait_finished(run).await.status.unwrap();
        assert_eq!(status.phase, RunPhase::Succeeded, "{run}: {status:?}");
        let call = step(&status, "bias");
        assert_eq!(call.outputs["bias"], format!("bias-{night}"), "{run}");
        assert!(!call.reused, "{run} made its own child");
        let child = env
            .api::<DagRun>()
            .get(call.child_run.as_deref().unwrap())
            .await
            .unwrap();
        assert_eq!(child.metadata.labels.unwrap()[labels::PARENT_RUN], run);
        assert_eq!(child.spec.params["night"], night);
    }

    // 50 parents with the same night, created at the same instant, the operator SIGKILLed once
    // while their child exists: exactly one child runs and every parent gets its output.
    const PARENTS: usize = 50;
    let env_ref = &env;
    let creates = (0..PARENTS).map(|i| {
        let yaml = run_yaml(
            &format!("p{i:02}"),
            "img-a",
            &[("night", "n3"), ("file", &format!("f{i}"))],
        );
        async move { env_ref.create::<DagRun>(&yaml).await }
    });
    futures::future::join_all(creates).await;
    env.eventually("a child run of night n3", || async {
        let runs = runs_of(&env, "bias").await;
        runs.iter().any(|r| r.spec.params["night"] == "n3").then_some(())
    })
    .await;
    env.kill_operator();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.start_operator(&[]);
    let mut children = std::collections::BTreeSet::new();
    for i in 0..PARENTS {
        let status = env.wait_finished(&format!("p{i:02}")).await.status.unwrap();
        assert_eq!(status.phase, RunPhase::Succeeded, "p{i:02}: {status:?}");
        let call = step(&status, "bias");
        assert_eq!(call.outputs["bias"], "bias-n3", "p{i:02}");
        children.insert(call.child_run.clone().unwrap());
    }
    assert_eq!(
        children.len(),
        1,
        "every parent took the one child's outcome: {children:?}"
    );
    let ran: Vec<_> = runs_of(&env, "bias")
        .await
        .into_iter()
        .filter(|r| r.spec.params["night"] == "n3")
        .filter(|r| r.status.as_ref().is_some_and(|s| s.phase != RunPhase::Rejected))
        .collect();
    assert_eq!(ran.len(), 1, "exactly one child run of night n3 ran");
    let jobs = env
        .api::<Job>()
        .list(&ListParams::default().labels(&format!("{}=bias", labels::DAG)))
        .await
        .unwrap()
        .items;
    let n3_jobs = jobs
        .iter()
        .filter(|j| j.metadata.labels.as_ref().unwrap()[labels::RUN] == ran[0].metadata.name.clone().unwrap())
        .count();
    assert_eq!(n3_jobs, 1, "the shared work ran once");
    assert_eq!(jobs.len(), 3, "one Job per distinct night: {jobs:?}");
}

/// How many items the fan-out has (issue #16: 200 with `maxParallel: 10`).
const ITEMS: u32 = 200;

/// A fan-out over the numbers 1..=ITEMS (made by a step), 10 at a time, doubling each; item `bad`
/// always fails. Then a reduce sums the doubled values.
fn fan_dag() -> String {
    let steps = r#"    - name: list
      outputs: [numbers]
      script: echo "numbers=[$(seq -s, 1 ITEMS)]" > "$KUBEDAG_OUTPUTS"
    - name: double
      depends: [list]
      forEach: {output: steps.list.outputs.numbers, maxParallel: 10}
      retry: {limit: 1}
      outputs: [twice]
      script: |
        sleep 1
        [ "$item" = "$bad" ] && exit 7
        echo "twice=$((item * 2))" > "$KUBEDAG_OUTPUTS"
    - name: sum
      depends: [double]
      outputs: [total]
      script: |
        echo "$KUBEDAG_OUTPUT_DOUBLE_TWICE" | tr -d '[]"' | tr ',' '\n' | awk '{s += $1} END {print "total=" s}' > "$KUBEDAG_OUTPUTS"
"#;
    dag("fan", "[{name: bad}]", &steps.replace("ITEMS", &ITEMS.to_string()), "")
}

/// The most instance Jobs of `run` seen running at once, sampling until it finishes.
async fn max_running(env: &TestEnv, run: &str) -> usize {
    let jobs = env.api::<Job>();
    let selector = format!("{}={run},{}=double", labels::RUN, labels::STEP);
    let mut most = 0;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while tokio::time::Instant::now() < deadline {
        let listed = jobs.list(&ListParams::default().labels(&selector)).await.unwrap().items;
        let running = listed
            .iter()
            .filter(|j| {
                let s = j.status.as_ref();
                s.and_then(|s| s.succeeded).unwrap_or(0) == 0 && s.and_then(|s| s.failed).unwrap_or(0) == 0
            })
            .count();
        most = most.max(running);
        let done = env
            .api::<DagRun>()
            .get(run)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.phase.is_terminal());
        if done {
            return most;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("run {run} did not finish");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn for_each_keeps_its_window_retries_and_names_a_failing_item_and_reduces() {
    let env = TestEnv::new("compose-fan").await;
    env.create::<Dag>(&fan_dag()).await;

    // Both runs at once: each keeps its own window.
    env.create::<DagRun>(&run_yaml("good", "fan", &[("bad", "none")])).await;
    env.create::<DagRun>(&run_yaml("bad", "fan", &[("bad", "13")])).await;
    let most = max_running(&env, "good").await;
    assert!(most <= 10, "{most} instances ran at once, maxParallel is 10");
    assert!(most >= 5, "the window was used ({most} at most)");
    let status = env.wait_finished("good").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Succeeded, "{status:?}");
    let double = step(&status, "double");
    let fe = double.for_each.clone().unwrap();
    assert_eq!((fe.total, fe.succeeded, fe.failed), (ITEMS, ITEMS, 0));
    let expected: Vec<String> = (1..=ITEMS).map(|i| (i * 2).to_string()).collect();
    assert_eq!(double.outputs["twice"], serde_json::to_string(&expected).unwrap());
    let total = (ITEMS * (ITEMS + 1)).to_string();
    assert_eq!(step(&status, "sum").outputs["total"], total, "2 * (1 + .. + ITEMS)");

    let status = env.wait_finished("bad").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    let double = step(&status, "double");
    assert_eq!(double.phase, StepPhase::Failed);
    let fe = double.for_each.clone().unwrap();
    assert_eq!((fe.succeeded, fe.failed), (ITEMS - 1, 1));
    assert_eq!((fe.failed_items[0].index, fe.failed_items[0].item.as_str()), (12, "13"));
    let message = double.message.clone().unwrap();
    assert!(
        message.starts_with(&format!(
            "1 of {ITEMS} instances failed: item 12 (\"13\"): attempt 2 failed"
        )),
        "{message}"
    );
    let attempts = env
        .api::<Job>()
        .list(&ListParams::default().labels(&format!("{}=bad,{}=12", labels::RUN, labels::ITEM_INDEX)))
        .await
        .unwrap()
        .items;
    assert_eq!(attempts.len(), 2, "the failing item was retried once");
    assert_eq!(step(&status, "sum").phase, StepPhase::Skipped);
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn cancelling_a_parent_cancels_its_child() {
    let env = TestEnv::new("compose-cancel").await;
    let slow = "    - {name: wait, command: [sleep, \"300\"]}\n";
    env.create::<Dag>(&dag("slow", "[]", slow, "")).await;
    let steps = "    - name: call\n      call: {dag: slow}\n";
    env.create::<Dag>(&dag("caller", "[]", steps, "")).await;
    env.create::<DagRun>(&run_yaml("parent", "caller", &[])).await;
    let child = env
        .eventually("the child to run its Job", || async {
            let parent = env.api::<DagRun>().get("parent").await.ok()?;
            let name = step(parent.status.as_ref()?, "call").child_run.clone()?;
            let child = env.api::<DagRun>().get(&name).await.ok()?;
            let running = child.status.as_ref()?.phase == RunPhase::Running;
            (running && !env.jobs_of(&name).await.is_empty()).then_some(name)
        })
        .await;
    let patch = serde_json::json!({"spec": {"cancel": true}});
    env.api::<DagRun>()
        .patch("parent", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(
        env.wait_finished("parent").await.status.unwrap().phase,
        RunPhase::Cancelled
    );
    let child_status = env.wait_finished(&child).await.status.unwrap();
    assert_eq!(child_status.phase, RunPhase::Cancelled, "{child_status:?}");
    env.eventually("the child's Job to be deleted", || async {
        env.jobs_of(&child).await.is_empty().then_some(())
    })
    .await;
}
