//! Shared by the Helm chart's end-to-end tests (`tests/e2e_helm.rs`, `tests/e2e_chart_*.rs`):
//! running helm/kubectl from the repository root, the operator image of this build, and the
//! values every in-cluster test install needs. Included with `#[path]` (not a test target).

#![allow(dead_code)]

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The chart in this repository.
pub const CHART: &str = "charts/kubedag";

/// Kubernetes version `helm template` renders for: the local cluster's. A helm built without
/// Helm's release ldflags (e2e/build-binaries.sh) would otherwise assume v1.20 and refuse the
/// chart's `kubeVersion`.
pub const KUBE_VERSION: &str = "1.35.0";

/// The image tag of this build's operator in the local cluster (see [`operator_image`]).
pub const IMAGE_TAG: &str = "e2e";

/// Runs `program args` from the repository root, feeding `stdin`; returns (success, stdout, stderr).
pub async fn sh(program: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
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

/// [`sh`] without stdin that must succeed; returns stdout.
pub async fn must(program: &str, args: &[&str]) -> String {
    let (ok, out, err) = sh(program, args, None).await;
    assert!(ok, "{program} {args:?} failed:\n{out}\n{err}");
    out
}

/// `kubectl apply --server-side --dry-run=server` (strict field validation) of `manifest`;
/// returns (success, stderr).
pub async fn server_dry_run(manifest: &str) -> (bool, String) {
    let args = [
        "apply",
        "--server-side",
        "--dry-run=server",
        "--force-conflicts",
        "--field-manager=kubedag-chart-test",
        "--validate=strict",
        "-f",
        "-",
    ];
    let (ok, _, err) = sh("kubectl", &args, Some(manifest)).await;
    (ok, err)
}

/// `helm template RELEASE CHART -n NS --kube-version ..` plus `extra` flags; returns the manifest.
pub async fn helm_template(release: &str, chart: &str, ns: &str, extra: &[&str]) -> String {
    let mut args = vec!["template", release, chart, "-n", ns, "--kube-version", KUBE_VERSION];
    args.extend_from_slice(extra);
    must("helm", &args).await
}

static IMAGE: OnceCell<()> = OnceCell::const_new();

/// Builds `kubedag.local/kubedag:e2e` from this build's operator binary (debug: no release build)
/// and imports it into the local cluster's containerd, once per test binary.
/// The host's CA bundle, copied into the operator image at the same path.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt";

pub async fn operator_image() {
    IMAGE
        .get_or_init(|| async {
            let archive = format!("{ROOT}/target/image/kubedag-{IMAGE_TAG}.tar");
            let binary = format!("{}:/kubedag", env!("CARGO_BIN_EXE_kubedag"));
            let name = format!("kubedag.local/kubedag:{IMAGE_TAG}");
            must(
                "e2e/oci-image.sh",
                &[
                    "--add-binary",
                    &binary,
                    // The watcher's S3 client verifies TLS against the system's roots.
                    "--add",
                    CA_BUNDLE,
                    "--name",
                    &name,
                    "--out",
                    &archive,
                    "--entrypoint",
                    "/kubedag",
                    "--user",
                    "65532:65532",
                    "--no-gzip",
                ],
            )
            .await;
            must("e2e/import-image.sh", &[&archive]).await;
        })
        .await;
}

/// A fresh test namespace (no host operator), this build's operator image in the cluster, and
/// the name of the test's Helm release. Needs `mod common;` beside this module.
pub async fn chart_test_env(prefix: &str) -> (crate::common::TestEnv, String, String) {
    let env = crate::common::TestEnv::without_operator(prefix).await;
    operator_image().await;
    let ns = env.ns.clone();
    let release = format!("kd-{ns}");
    (env, ns, release)
}

/// `--set` values of an in-cluster test install in namespace `ns`: this build's image, watching
/// only `ns` (so the webhook and RBAC stay in it), webhook failurePolicy Fail (deterministic
/// refusals), and the CRDs left to the test harness unless `own_crds`.
pub fn test_values(ns: &str, own_crds: bool) -> String {
    format!(
        "watchNamespace={ns},image.tag={IMAGE_TAG},webhook.failurePolicy=Fail,crds.install={own_crds},log.level=info\\,kubedag=debug"
    )
}

/// `helm ACTION RELEASE CHART -n NS [flags] --set VALUES --wait --timeout 3m EXTRA...`;
/// returns (success, stdout, stderr).
async fn helm_release(
    action: &[&str],
    release: &str,
    chart: &str,
    ns: &str,
    values: &str,
    extra: &[&str],
) -> (bool, String, String) {
    let mut args = vec![action[0], release, chart, "-n", ns];
    args.extend_from_slice(&action[1..]);
    args.extend(["--set", values, "--wait", "--timeout", "3m"]);
    args.extend_from_slice(extra);
    sh("helm", &args, None).await
}

/// `helm install RELEASE CHART -n NS --set VALUES --wait` with `extra` flags, then waits for
/// the operator's rollout (helm --wait accepts 0 available pods with maxUnavailable 1).
pub async fn helm_install(release: &str, chart: &str, ns: &str, values: &str, extra: &[&str]) {
    let (ok, out, err) = helm_release(&["install"], release, chart, ns, values, extra).await;
    assert!(ok, "helm install {release} {chart}:\n{out}\n{err}");
    wait_rollout(release, ns).await;
}

/// `helm upgrade RELEASE CHART -n NS --reset-values --set VALUES --wait` (explicit about values:
/// nothing of the last release's is reused) with `extra` flags; returns (success, stdout, stderr).
pub async fn helm_upgrade(
    release: &str,
    chart: &str,
    ns: &str,
    values: &str,
    extra: &[&str],
) -> (bool, String, String) {
    helm_release(&["upgrade", "--reset-values"], release, chart, ns, values, extra).await
}

/// Waits until the release's operator Deployment has rolled out.
pub async fn wait_rollout(release: &str, ns: &str) {
    let deployment = format!("deployment/{release}-kubedag");
    must(
        "kubectl",
        &["rollout", "status", &deployment, "-n", ns, "--timeout=180s"],
    )
    .await;
}
