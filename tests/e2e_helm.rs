//! End to end on the local cluster: the Helm chart installs an in-cluster operator (webhook served
//! through its Service), the examples run against it (applied twice: idempotent), a `helm upgrade`
//! with a changed value keeps a running DagRun going, and `helm uninstall` removes everything.

mod common;

#[path = "e2e_chart_support/mod.rs"]
mod support;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use kubedag::api::{Dag, DagRun, RunPhase};
use support::{CHART, must, sh};

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn chart_installs_runs_the_examples_upgrades_without_losing_a_run_and_uninstalls() {
    let (env, ns, release) = support::chart_test_env("helm").await;
    // The test harness owns the CRDs (shared by every test): this release leaves them alone.
    let values = support::test_values(&ns, false);
    let rendered = support::helm_template(&release, CHART, &ns, &["--set", &values]).await;
    let (ok, err) = support::server_dry_run(&rendered).await;
    assert!(ok, "rendered chart validates against the cluster's OpenAPI: {err}");
    support::helm_install(&release, CHART, &ns, &values, &[]).await;

    // Examples, applied twice: the second apply changes nothing and fails nothing.
    for _ in 0..2 {
        must(
            "kubectl",
            &["apply", "-n", &ns, "-f", "manifests/examples/10-dags.yaml"],
        )
        .await;
        must(
            "kubectl",
            &["apply", "-n", &ns, "-f", "manifests/examples/11-runs.yaml"],
        )
        .await;
    }
    let duplicate = "apiVersion: kubedag.io/v1alpha1\nkind: DagRun\nmetadata: {name: again}\nspec:\n  dagRef: {name: flaky}\n  params: {mode: ok}\n";
    let (ok, _, err) = sh("kubectl", &["apply", "-n", &ns, "-f", "-"], Some(duplicate)).await;
    assert!(
        !ok && err.contains("duplicate parameters") && err.contains("\"flaky-ok\""),
        "refused through the Service: {err}"
    );

    let runs = env.api::<DagRun>();
    let names: Vec<String> = runs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "the 3 example runs (the astronomy ones need their volumes: make demo)"
    );
    for name in &names {
        let status = env.wait_finished(name).await.status.unwrap();
        let expected = if name == "flaky-break" {
            RunPhase::Failed
        } else {
            RunPhase::Succeeded
        };
        assert_eq!(status.phase, expected, "{name}: {:?}", status.message);
    }
    let flaky = runs.get("flaky-ok").await.unwrap().status.unwrap();
    assert_eq!(
        flaky.steps.iter().find(|s| s.name == "flaky").unwrap().attempts,
        2,
        "retried once"
    );

    // Upgrade with a changed value while a run is running.
    env.create::<Dag>(&common::one_step_dag("slow", "Forbid", "sleep 15"))
        .await;
    env.create::<DagRun>(&common::run_yaml("during-upgrade", "slow", &[("file", "x")]))
        .await;
    env.wait_phase("during-upgrade", RunPhase::Running).await;
    must(
        "helm",
        &[
            "upgrade",
            &release,
            CHART,
            "-n",
            &ns,
            // Explicit about values: the last release's, plus the one change.
            "--reset-then-reuse-values",
            "--set",
            "concurrency=8",
            "--wait",
            "--timeout",
            "3m",
        ],
    )
    .await;
    support::wait_rollout(&release, &ns).await;
    let deployments: Api<Deployment> = env.api();
    let args = deployments.list(&ListParams::default()).await.unwrap().items[0]
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"--concurrency=8".to_string()), "{args:?}");
    assert_eq!(
        env.wait_finished("during-upgrade").await.status.unwrap().phase,
        RunPhase::Succeeded
    );

    // Uninstall removes the operator, its webhook configuration and its CA Secret.
    must("helm", &["uninstall", &release, "-n", &ns, "--wait"]).await;
    assert!(deployments.list(&ListParams::default()).await.unwrap().items.is_empty());
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(env.client.clone());
    let leftover = configs.list(&ListParams::default()).await.unwrap().items;
    assert!(
        leftover
            .iter()
            .all(|c| !c.metadata.name.as_deref().unwrap_or("").contains(&ns)),
        "webhook configuration removed"
    );
    let secrets: Api<Secret> = env.api();
    assert!(
        secrets
            .get_opt(&format!("{release}-kubedag-webhook-ca"))
            .await
            .unwrap()
            .is_none()
    );
}
