//! End-to-end: the per-run workspace (`spec.workspace`) and the astronomy example on real data.
//! Run with `cargo test --test e2e_workspace -- --ignored` against `make cluster-up`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{STEP_IMAGE, TestEnv};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use kubedag::api::{Dag, DagRun, RunPhase};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A two-step Dag handing a file from `write` to `read` through the workspace.
fn handoff_dag(storage_class: Option<&str>) -> String {
    let class = storage_class.map_or(String::new(), |c| format!(", storageClassName: {c}"));
    format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: handoff}}
spec:
  duplicatePolicy: Allow
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  workspace:
    mountPath: /work
    volumeClaimTemplate:
      spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Mi}}}}{class}}}
  steps:
    - {{name: write, script: 'echo "from $KUBEDAG_RUN" > /work/note'}}
    - {{name: read, depends: [write], script: 'cat /work/note; ls /work'}}
"#
    )
}

async fn claim_of(env: &TestEnv, run: &DagRun) -> PersistentVolumeClaim {
    let name = run
        .status
        .as_ref()
        .unwrap()
        .workspace_claim
        .clone()
        .expect("workspace claim in the status");
    env.api::<PersistentVolumeClaim>().get(&name).await.unwrap()
}

#[tokio::test]
#[ignore]
async fn steps_hand_files_through_their_runs_own_workspace_which_goes_with_the_run() {
    let env = TestEnv::new("workspace").await;
    env.create::<Dag>(&handoff_dag(None)).await;
    for name in ["ws-one", "ws-two"] {
        env.create::<DagRun>(&common::run_yaml(name, "handoff", &[])).await;
    }
    let mut claims = Vec::new();
    for name in ["ws-one", "ws-two"] {
        let run = env.wait_finished(name).await;
        let status = run.status.clone().unwrap();
        assert_eq!(status.phase, RunPhase::Succeeded, "{name}: {:?}", status.message);
        let log = env.step_log(name, "read").await;
        assert_eq!(
            log.lines().next(),
            Some(format!("from {name}").as_str()),
            "{name} reads its own file"
        );
        assert_eq!(
            log.lines().filter(|l| !l.is_empty()).count(),
            2,
            "only its own file: {log}"
        );
        let claim = claim_of(&env, &run).await;
        let owner = &claim.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("DagRun", name, Some(true))
        );
        assert_eq!(claim.status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
        for pod in env.pods_of(name).await {
            let mounted = pod.spec.unwrap().volumes.unwrap_or_default().iter().any(|v| {
                v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()) == Some(claim.name_any().as_str())
            });
            assert!(
                mounted,
                "pod {} mounts {}",
                pod.metadata.name.unwrap(),
                claim.name_any()
            );
        }
        claims.push(claim.name_any());
    }
    assert_ne!(claims[0], claims[1], "runs never share a workspace");

    for name in ["ws-one", "ws-two"] {
        env.api::<DagRun>()
            .delete(name, &DeleteParams::background())
            .await
            .unwrap();
    }
    let api = env.api::<PersistentVolumeClaim>();
    env.eventually("the workspace claims to be deleted with their runs", || async {
        let left = api.list(&Default::default()).await.ok()?.items;
        left.iter().all(|c| !claims.contains(&c.name_any())).then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore]
async fn a_workspace_that_cannot_bind_fails_the_run_naming_the_claim() {
    let mut env = TestEnv::without_operator("ws-unbound").await;
    env.start_operator(&["--pod-start-timeout", "15"]);
    env.create::<Dag>(&handoff_dag(Some("no-such-class"))).await;
    env.create::<DagRun>(&common::run_yaml("unbound", "handoff", &[])).await;
    let run = env.wait_finished("unbound").await;
    let status = run.status.clone().unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    let claim = status.workspace_claim.clone().unwrap();
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains(&format!("claim \"{claim}\" is not bound")) && message.contains("15s"),
        "{message}"
    );
    assert_eq!(status.steps[1].phase, kubedag::api::StepPhase::Skipped);
}

/// The YAML documents of an example manifest.
fn example(file: &str) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(format!("{REPO}/manifests/examples/{file}")).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn of_kind<T: serde::de::DeserializeOwned>(docs: &[serde_yaml::Value], kind: &str) -> Vec<T> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .map(|d| serde_yaml::from_value(d.clone()).unwrap())
        .collect()
}

/// Runs `program` with `args`, returning (success, stdout + stderr).
fn run_program(program: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .expect("run program");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The node directory of a local-path (hostPath) claim.
async fn node_dir(env: &TestEnv, claim: &str) -> String {
    let claim = env.api::<PersistentVolumeClaim>().get(claim).await.unwrap();
    let pv = claim.spec.unwrap().volume_name.unwrap();
    let pv = Api::<PersistentVolume>::all(env.client.clone())
        .get(&pv)
        .await
        .unwrap()
        .spec
        .unwrap();
    pv.host_path.map(|h| h.path).or(pv.local.map(|l| l.path)).unwrap()
}

/// The number of sources the catalogue step reported: its output when recorded, else its log.
async fn sources_reported(env: &TestEnv, run: &DagRun) -> usize {
    let step = run
        .status
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .find(|s| s.name == "catalogue")
        .unwrap();
    if let Some(n) = step.outputs.get("sources") {
        return n.parse().unwrap();
    }
    let log = env.step_log(&run.name_any(), "catalogue").await;
    let line = log
        .lines()
        .find(|l| l.starts_with("catalogue: "))
        .expect("the count in the log");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
#[ignore]
async fn the_astronomy_example_runs_in_a_restricted_namespace_and_matches_the_oracle() {
    let mut env = TestEnv::without_operator("astro").await;
    let ns = env.ns.clone();
    let restricted: Namespace = of_kind(&example("00-namespace.yaml"), "Namespace").remove(0);
    let labels = serde_json::json!({"metadata": {"labels": restricted.metadata.labels}});
    Api::<Namespace>::all(env.client.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    // The namespace really enforces the standard: a pod without the security settings is refused.
    let plain: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "kubedag.local/astro:1"}]}
    }))
    .unwrap();
    let refused = env
        .api::<Pod>()
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &plain,
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.message.contains("violates PodSecurity \"restricted")),
        "{refused:?}"
    );
    env.start_operator(&[]);

    let (ok, staged) = run_program(&format!("{REPO}/e2e/astro/stage-inputs.sh"), &[]);
    assert!(ok, "stage-inputs.sh: {staged}");
    let truth = staged
        .lines()
        .find_map(|l| l.strip_prefix("truth "))
        .unwrap()
        .to_string();

    // The example's volumes, in this namespace (the input PV is cluster-wide: named after it).
    let volumes = example("20-astronomy-volumes.yaml");
    let mut pv: PersistentVolume = of_kind(&volumes, "PersistentVolume").remove(0);
    let pv_name = format!("{ns}-astro-input");
    pv.metadata.name = Some(pv_name.clone());
    pv.spec.as_mut().unwrap().claim_ref.as_mut().unwrap().namespace = Some(ns.clone());
    let pvs = Api::<PersistentVolume>::all(env.client.clone());
    pvs.create(&PostParams::default(), &pv).await.unwrap();
    for mut claim in of_kind::<PersistentVolumeClaim>(&volumes, "PersistentVolumeClaim") {
        claim.metadata.namespace = None;
        if claim.name_any() == "astro-input" {
            claim.spec.as_mut().unwrap().volume_name = Some(pv_name.clone());
        }
        env.api::<PersistentVolumeClaim>()
            .create(&PostParams::default(), &claim)
            .await
            .unwrap();
    }
    let mut dag: Dag = of_kind(&example("21-astronomy-dag.yaml"), "Dag").remove(0);
    dag.metadata.namespace = None;
    assert!(dag.spec.workspace.is_some(), "the example uses a workspace");
    env.api::<Dag>().create(&PostParams::default(), &dag).await.unwrap();

    // Three of the example's runs at once.
    let runs: Vec<DagRun> = of_kind(&example("22-astronomy-runs.yaml"), "DagRun");
    assert_eq!(runs.len(), 20);
    for mut run in runs.into_iter().take(3) {
        run.metadata.namespace = None;
        env.api::<DagRun>().create(&PostParams::default(), &run).await.unwrap();
    }
    let mut workspaces = BTreeMap::new();
    for i in 1..=3 {
        let image = format!("kdg-field-{i:04}");
        let run = env.wait_finished(&image).await;
        // Bound once the first step pod using it was scheduled (WaitForFirstConsumer).
        let catalogues = node_dir(&env, "astro-catalogues").await;
        let status = run.status.clone().unwrap();
        assert_eq!(status.phase, RunPhase::Succeeded, "{image}: {:?}", status.message);
        workspaces.insert(status.workspace_claim.clone().unwrap(), image.clone());
        let catalogue = format!("{catalogues}/{image}.cat");
        let rows = std::fs::read_to_string(&catalogue)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(
            sources_reported(&env, &run).await,
            rows,
            "{image}: the reported count is the catalogue's"
        );
        let truth = format!("{truth}/{image}.truth.csv");
        assert!(Path::new(&truth).exists(), "{truth}");
        let oracle = format!("{REPO}/e2e/astro/oracle.py");
        let (ok, verdict) = run_program("python3", &[&oracle, &catalogue, &truth]);
        assert!(ok && verdict.starts_with("oracle: PASS"), "{image}: {verdict}");
    }
    assert_eq!(workspaces.len(), 3, "one workspace per run: {workspaces:?}");
    pvs.delete(&pv_name, &DeleteParams::default()).await.unwrap();
}
