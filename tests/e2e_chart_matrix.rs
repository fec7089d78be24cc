//! The Helm chart's values matrix (chart-testing style, `charts/kubedag/ci/*.yaml`): each file
//! lints with `helm lint --strict`, renders, and passes a server-side dry run against the local
//! API server; wrong values are refused by `helm install` with a message naming the value.

mod common;

#[path = "e2e_chart_support/mod.rs"]
mod support;

use std::collections::BTreeSet;

use common::TestEnv;
use support::{CHART, ROOT, must, sh};

/// Kinds whose API groups the local cluster does not serve (Prometheus Operator, cert-manager):
/// their documents are checked for shape only.
const OPTIONAL_KINDS: [&str; 4] = ["ServiceMonitor", "PrometheusRule", "Issuer", "Certificate"];

/// `charts/kubedag/ci/*.yaml`, sorted.
fn ci_values_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(format!("{ROOT}/{CHART}/ci"))
        .expect("charts/kubedag/ci exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| format!("{CHART}/ci/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "a values matrix: {files:?}");
    files
}

/// The rendered documents (null documents dropped).
fn documents(manifest: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(manifest)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .filter(|d: &serde_yaml::Value| !d.is_null())
        .collect()
}

fn field<'a>(doc: &'a serde_yaml::Value, path: &[&str]) -> Option<&'a serde_yaml::Value> {
    path.iter().try_fold(doc, |v, key| v.get(key))
}

fn kind(doc: &serde_yaml::Value) -> &str {
    field(doc, &["kind"]).and_then(|k| k.as_str()).unwrap_or("")
}

#[tokio::test]
#[ignore = "needs helm from the local cluster's tools: make test"]
async fn chart_lints_strict_with_every_ci_values_file() {
    must("helm", &["lint", "--strict", CHART]).await;
    for file in ci_values_files() {
        let (ok, out, err) = sh("helm", &["lint", "--strict", CHART, "-f", &file], None).await;
        assert!(ok, "helm lint --strict -f {file}:\n{out}\n{err}");
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn every_ci_values_file_renders_and_passes_a_server_dry_run() {
    let env = TestEnv::without_operator("chart-ci").await;
    let ns = env.ns.clone();
    let served: BTreeSet<String> = must("kubectl", &["api-versions"])
        .await
        .lines()
        .map(str::to_string)
        .collect();
    for file in ci_values_files() {
        let values = std::fs::read_to_string(format!("{ROOT}/{file}")).unwrap();
        // A watched namespace must exist for the Role in it: the test's own.
        let watch = format!("watchNamespace={ns}");
        let mut extra = vec!["-f", file.as_str()];
        if values.lines().any(|l| l.starts_with("watchNamespace:")) {
            extra.extend(["--set", &watch]);
        }
        let manifest = support::helm_template("ci", CHART, &ns, &extra).await;
        let docs = documents(&manifest);
        let (checkable, optional): (Vec<_>, Vec<_>) = docs.iter().partition(|d| {
            let version = field(d, &["apiVersion"]).and_then(|v| v.as_str()).unwrap_or("");
            served.contains(version) || !version.contains('/')
        });
        for doc in &optional {
            assert!(
                OPTIONAL_KINDS.contains(&kind(doc)) && field(doc, &["metadata", "name"]).is_some(),
                "{file}: {} of an unserved API group",
                kind(doc)
            );
        }
        let body: Vec<String> = checkable.iter().map(|d| serde_yaml::to_string(d).unwrap()).collect();
        let (ok, err) = support::server_dry_run(&body.join("---\n")).await;
        assert!(ok, "{file}: server dry run refused the rendered chart:\n{err}");
        expect_per_file(&file, &docs);
    }
}

/// What each matrix entry is there to show, so a value that stops rendering fails here.
fn expect_per_file(file: &str, docs: &[serde_yaml::Value]) {
    let kinds: BTreeSet<&str> = docs.iter().map(kind).collect();
    let has = |k: &str| kinds.contains(k);
    let name = file.rsplit('/').next().unwrap();
    let pod = |path: &[&str]| {
        let deployment = docs.iter().find(|d| kind(d) == "Deployment").expect("a Deployment");
        let mut full = vec!["spec", "template"];
        full.extend_from_slice(path);
        field(deployment, &full).cloned().unwrap_or_default()
    };
    let operator = |key: &str| pod(&["spec", "containers"])[0][key].clone();
    match name {
        "default-values.yaml" => {
            assert!(
                has("CustomResourceDefinition") && has("ClusterRole") && !has("PodDisruptionBudget"),
                "{file}: {kinds:?}"
            );
            let chart = std::fs::read_to_string(format!("{ROOT}/{CHART}/Chart.yaml")).unwrap();
            let chart: serde_yaml::Value = serde_yaml::from_str(&chart).unwrap();
            let app_version = chart["appVersion"].as_str().unwrap();
            let image = format!("kubedag.local/kubedag:{app_version}");
            assert_eq!(
                operator("image").as_str(),
                Some(image.as_str()),
                "{file}: tag = appVersion"
            );
        }
        "ha-values.yaml" => {
            assert!(has("PodDisruptionBudget"), "{file}: {kinds:?}");
            let priority = pod(&["spec", "priorityClassName"]);
            assert_eq!(priority.as_str(), Some("system-cluster-critical"), "{file}");
            let spread = pod(&["spec", "topologySpreadConstraints"]);
            let selector = &spread[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/name"];
            assert_eq!(
                selector.as_str(),
                Some("kubedag"),
                "{file}: spread over this release's pods"
            );
        }
        "extras-values.yaml" => {
            let args = operator("args");
            let args: Vec<&str> = args.as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
            assert!(
                args.contains(&"--missing-job-grace-seconds=30"),
                "{file}: extraArgs in {args:?}"
            );
            let env = operator("env");
            let env = env.as_sequence().unwrap();
            assert!(
                env.iter().any(|e| e["name"] == "TZ" && e["value"] == "UTC"),
                "{file}: extraEnv"
            );
            assert_eq!(
                pod(&["metadata", "labels", "team"]).as_str(),
                Some("astro"),
                "{file}: podLabels"
            );
            assert_eq!(
                operator("image").as_str(),
                Some("registry.example.com/kubedag:0.1.0"),
                "{file}"
            );
            let account = docs
                .iter()
                .find(|d| kind(d) == "ServiceAccount")
                .expect("a ServiceAccount");
            let automount = field(account, &["automountServiceAccountToken"]).and_then(|v| v.as_bool());
            assert_eq!(
                automount,
                Some(false),
                "{file}: serviceAccount.automountServiceAccountToken"
            );
        }
        "minimal-values.yaml" => assert!(
            !has("CustomResourceDefinition") && !has("ValidatingWebhookConfiguration") && !has("ServiceAccount"),
            "{file}: {kinds:?}"
        ),
        "monitoring-values.yaml" => {
            for k in ["ServiceMonitor", "PrometheusRule", "NetworkPolicy", "ConfigMap"] {
                assert!(has(k), "{file}: {k} in {kinds:?}");
            }
            let monitor = docs.iter().find(|d| kind(d) == "ServiceMonitor").unwrap();
            let release = field(monitor, &["metadata", "labels", "release"]).and_then(|v| v.as_str());
            assert_eq!(release, Some("prometheus"), "{file}: additionalLabels");
        }
        "certmanager-values.yaml" => assert!(has("Certificate") && !has("Secret"), "{file}: {kinds:?}"),
        _ => {}
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn wrong_values_are_refused_by_helm_install_naming_them() {
    let env = TestEnv::without_operator("chart-schema").await;
    let ns = env.ns.clone();
    let cases = [
        ("events=everything", "/events"),
        ("replicas=-1", "/replicas"),
        ("watchNamespace=Not_A_Namespace", "/watchNamespace"),
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
        ("image.pullPolicy=Maybe", "/image/pullPolicy"),
        (
            "metrics.prometheusRule.failedRunRatio=2",
            "/metrics/prometheusRule/failedRunRatio",
        ),
        ("replica=2", "'replica' not allowed"),
    ];
    let base = support::test_values(&ns, false);
    let install = |last: &'static str, extra: &'static str| {
        let (ns, base) = (ns.clone(), base.clone());
        async move {
            let args = ["install", "bad", CHART, "-n", &ns, "--set", &base, last, extra];
            sh("helm", &args, None).await
        }
    };
    for (value, named) in cases {
        let (ok, out, err) = install("--set", value).await;
        assert!(!ok, "--set {value} was accepted:\n{out}");
        assert!(
            err.contains("values don't meet the specifications of the schema") && err.contains(named),
            "--set {value}: the refusal names {named}:\n{err}"
        );
    }
    let (ok, _, _) = sh("helm", &["status", "bad", "-n", &ns], None).await;
    assert!(!ok, "no release was created");
    // The same install with valid values is accepted (up to the dry run): the schema refuses
    // only what is wrong.
    let (ok, out, err) = install("--dry-run=server", "--description=valid").await;
    assert!(ok, "valid values are accepted:\n{out}\n{err}");
}

#[tokio::test]
#[ignore = "needs helm from the local cluster's tools: make test"]
async fn manifests_install_yaml_is_the_chart_rendered_with_defaults() {
    let rendered = support::helm_template("kubedag", CHART, "kubedag-system", &[]).await;
    let committed = std::fs::read_to_string(format!("{ROOT}/manifests/install.yaml")).unwrap();
    assert!(
        committed.ends_with(&rendered) && committed.contains("kind: CustomResourceDefinition"),
        "manifests/install.yaml is stale: run `make manifests` and commit the result"
    );
}
