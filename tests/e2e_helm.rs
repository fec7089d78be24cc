//! End to end on the local cluster: the Helm chart installs an in-cluster operator (webhook served
//! through its Service), the examples run against it (applied twice: idempotent), a `helm upgrade`
//! with a changed value keeps a running DagRun going, and `helm uninstall` removes everything.

mod common;

use std::process::Stdio;

use common::TestEnv;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use kubedag::api::{Dag, DagRun, RunPhase};
use tokio::io::AsyncWriteExt;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a command from the repository root, feeding `stdin`; returns (success, stdout, stderr).
async fn sh(program: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} on PATH (make test puts the cluster's tools there): {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn must(program: &str, args: &[&str]) -> String {
    let (ok, out, err) = sh(program, args, None).await;
    assert!(ok, "{program} {args:?} failed:\n{out}\n{err}");
    out
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn chart_installs_runs_the_examples_upgrades_without_losing_a_run_and_uninstalls() {
    let env = TestEnv::without_operator("helm").await;
    let ns = env.ns.clone();

    // The operator image, from this build's binary, imported into the cluster's containerd.
    let archive = format!("{ROOT}/target/image/kubedag-e2e.tar");
    let binary = format!("{}:/kubedag", env!("CARGO_BIN_EXE_kubedag"));
    let image_args = [
        "--add-binary",
        &binary,
        "--name",
        "kubedag.local/kubedag:e2e",
        "--out",
        &archive,
        "--entrypoint",
        "/kubedag",
    ];
    must(
        "e2e/oci-image.sh",
        &[&image_args[..], &["--user", "65532:65532", "--no-gzip"]].concat(),
    )
    .await;
    must("e2e/import-image.sh", &[&archive]).await;

    let release = format!("kd-{ns}");
    let values = format!("watchNamespace={ns},image.tag=e2e,webhook.failurePolicy=Fail,log.level=info\\,kubedag=debug");
    let rendered = must(
        "helm",
        &["template", &release, "charts/kubedag", "-n", &ns, "--set", &values],
    )
    .await;
    let (ok, _, err) = sh("kubectl", &["apply", "--dry-run=server", "-f", "-"], Some(&rendered)).await;
    assert!(ok, "rendered chart validates against the cluster's OpenAPI: {err}");
    must(
        "helm",
        &[
            "install",
            &release,
            "charts/kubedag",
            "-n",
            &ns,
            "--set",
            &values,
            "--wait",
            "--timeout",
            "3m",
        ],
    )
    .await;
    // helm --wait accepts 0 available pods with maxUnavailable 1; wait for the operator itself.
    let deployment = format!("deployment/{release}-kubedag");
    must(
        "kubectl",
        &["rollout", "status", &deployment, "-n", &ns, "--timeout=180s"],
    )
    .await;

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
            "charts/kubedag",
            "-n",
            &ns,
            "--reuse-values",
            "--set",
            "concurrency=8",
            "--wait",
            "--timeout",
            "3m",
        ],
    )
    .await;
    must(
        "kubectl",
        &["rollout", "status", &deployment, "-n", &ns, "--timeout=180s"],
    )
    .await;
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
