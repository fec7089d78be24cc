//! End to end: `helm upgrade` carries CRD schema changes. The previous chart version is this
//! chart with `timeoutSeconds` missing from its CRDs (as if the field were new in this version);
//! while it is installed the API server prunes the field from a Dag. After `helm upgrade` to the
//! current chart the field is stored, and a run of that Dag succeeds with its step Job's
//! `activeDeadlineSeconds` set from it. `helm uninstall` keeps the CRDs and the Dag.
//!
//! This test changes the cluster-wide CRDs for a minute (the field is missing meanwhile); a
//! guard puts the current schema back whatever happens. `make test` runs test binaries one
//! after another, so no other test sees the old schema.

mod common;

#[path = "e2e_chart_support/mod.rs"]
mod support;

use std::path::Path;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use kubedag::api::{Dag, RunPhase};
use support::{CHART, ROOT, must};

/// The field the previous chart version lacks (on Dag steps and in the DagRun's captured spec).
const FIELD: &str = "timeoutSeconds";

/// The CRDs of `yaml` (multi-document), as JSON.
fn parse_crds(yaml: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .collect()
}

fn typed(crds: Vec<serde_json::Value>) -> Vec<CustomResourceDefinition> {
    crds.into_iter().map(|c| serde_json::from_value(c).unwrap()).collect()
}

/// `yaml` (multi-document CRDs) without any schema property named `field`.
fn without_property(yaml: &str, field: &str) -> Vec<CustomResourceDefinition> {
    fn strip(value: &mut serde_json::Value, field: &str) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(properties)) = map.get_mut("properties") {
                    properties.remove(field);
                }
                map.values_mut().for_each(|v| strip(v, field));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip(v, field)),
            _ => {}
        }
    }
    let mut crds = parse_crds(yaml);
    crds.iter_mut().for_each(|c| strip(c, field));
    typed(crds)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the chart as version 0.1.99 whose CRDs lack [`FIELD`]; returns its directory and
/// those CRDs.
fn previous_chart(dir: &Path) -> (String, Vec<CustomResourceDefinition>) {
    let chart = dir.join("kubedag");
    let _ = std::fs::remove_dir_all(&chart);
    copy_dir(&Path::new(ROOT).join(CHART), &chart);
    let meta = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
    let version = meta.lines().find(|l| l.starts_with("version:")).unwrap().to_string();
    std::fs::write(chart.join("Chart.yaml"), meta.replace(&version, "version: 0.1.99")).unwrap();
    let crd_file = chart.join("files/crds/kubedag.io.yaml");
    let crds = without_property(&std::fs::read_to_string(&crd_file).unwrap(), FIELD);
    let docs: Vec<String> = crds.iter().map(|c| serde_yaml::to_string(c).unwrap()).collect();
    std::fs::write(&crd_file, format!("---\n{}", docs.join("---\n"))).unwrap();
    (chart.to_string_lossy().into_owned(), crds)
}

/// Replaces the live CRDs' spec with `crds`' (a PUT: fields are removed whoever manages them).
async fn set_crd_specs(client: &Client, crds: &[CustomResourceDefinition]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        for attempt in 0.. {
            let mut live = api.get(&crd.name_any()).await.unwrap();
            live.spec = crd.spec.clone();
            match api.replace(&crd.name_any(), &PostParams::default(), &live).await {
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < 10 => continue,
                Err(e) => panic!("replace CRD {}: {e}", crd.name_any()),
            }
        }
    }
}

/// Whether the live CRDs' schemas mention `field`.
async fn live_schema_has(client: &Client, field: &str) -> bool {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = api.get("dags.kubedag.io").await.unwrap();
    serde_json::to_string(&crd.spec)
        .unwrap()
        .contains(&format!("\"{field}\""))
}

/// Puts the current CRDs back when dropped, also when the test fails midway.
struct RestoreCrds;

impl Drop for RestoreCrds {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let client = Client::try_default().await.unwrap();
                let current = typed(parse_crds(&kubedag::api::crds_yaml().unwrap()));
                set_crd_specs(&client, &current).await;
            })
        })
        .join();
    }
}

fn timed_dag() -> String {
    format!(
        r#"apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: timed}}
spec:
  params: [{{name: file}}]
  defaults: {{image: "{}", imagePullPolicy: IfNotPresent}}
  steps: [{{name: work, script: "echo timed $file", {FIELD}: 120}}]
"#,
        common::STEP_IMAGE
    )
}

async fn stored_timeout(dags: &Api<Dag>) -> Option<serde_json::Value> {
    let dag = serde_json::to_value(dags.get("timed").await.unwrap()).unwrap();
    dag["spec"]["steps"][0].get(FIELD).cloned()
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn helm_upgrade_applies_a_new_crd_field_and_a_run_uses_it() {
    let (env, ns, release) = support::chart_test_env("chart-upgrade").await;
    let values = support::test_values(&ns, true);
    let work = Path::new(ROOT).join("target/e2e-chart").join(&ns);
    let (old_chart, old_crds) = previous_chart(&work);

    // The cluster as the previous version left it: its CRDs (Helm creates them on a fresh
    // cluster; here they exist, so the release adopts them).
    let _restore = RestoreCrds;
    set_crd_specs(&env.client, &old_crds).await;
    assert!(!live_schema_has(&env.client, FIELD).await);
    support::helm_install(&release, &old_chart, &ns, &values, &["--take-ownership"]).await;
    let dag = timed_dag();
    let dags: Api<Dag> = env.api();
    // Strict field validation (kubectl's default) refuses the unknown field...
    let apply = |validate: &'static str| {
        let dag = dag.clone();
        let ns = ns.clone();
        async move {
            let flag = format!("--validate={validate}");
            support::sh("kubectl", &["apply", "-n", &ns, &flag, "-f", "-"], Some(&dag)).await
        }
    };
    let (ok, _, err) = apply("strict").await;
    assert!(!ok && err.contains(FIELD), "the previous schema has no {FIELD}: {err}");
    // ...and a client that does not ask for it (most controllers, older kubectl) loses it
    // silently. The webhook may take a moment to be reachable through the new Service.
    env.eventually("the Dag to be accepted", || async {
        apply("false").await.0.then_some(())
    })
    .await;
    assert_eq!(stored_timeout(&dags).await, None, "the previous schema prunes {FIELD}");

    // The upgrade, explicit about its values; the CRDs are templates, so Helm patches them.
    let (ok, out, err) = support::helm_upgrade(&release, CHART, &ns, &values, &[]).await;
    assert!(ok, "helm upgrade:\n{out}\n{err}");
    support::wait_rollout(&release, &ns).await;
    assert!(
        live_schema_has(&env.client, FIELD).await,
        "helm upgrade applied the new CRD field"
    );
    env.eventually("the new schema to be served", || async {
        apply("strict").await;
        (stored_timeout(&dags).await == Some(serde_json::json!(120))).then_some(())
    })
    .await;

    env.create::<kubedag::api::DagRun>(&common::run_yaml("timed-run", "timed", &[("file", "t.fits")]))
        .await;
    let status = env.wait_finished("timed-run").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Succeeded, "{:?}", status.message);
    let jobs: Vec<Job> = env.jobs_of("timed-run").await;
    let deadline = jobs[0].spec.as_ref().unwrap().active_deadline_seconds;
    assert_eq!(deadline, Some(120), "the step's {FIELD} reached its Job");

    // Uninstall keeps the CRDs (helm.sh/resource-policy: keep) and so every Dag and DagRun.
    must("helm", &["uninstall", &release, "-n", &ns, "--wait"]).await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let kept = crds.get("dagruns.kubedag.io").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_none(), "CRD kept");
    assert!(
        dags.get_opt("timed").await.unwrap().is_some(),
        "the Dag survives uninstall"
    );
    assert!(
        !env.api::<kubedag::api::DagRun>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
