//! End to end: the documented upgrade from chart 0.1.0 (CRDs in `crds/`, which Helm installs
//! once and does not track) to this chart (CRDs as templates owned by the release). A plain
//! `helm upgrade` is refused because the CRDs exist outside the release; the README's two steps
//! (apply the CRDs, upgrade with `--take-ownership`) work, the operator keeps running runs, and
//! the CRDs now belong to the release and survive `helm uninstall`.

mod common;

#[path = "e2e_chart_support/mod.rs"]
mod support;

use std::path::Path;

use kubedag::api::{Dag, DagRun, RunPhase};
use support::{CHART, ROOT, must, sh};

/// The commit of chart 0.1.0, the last version with `crds/`.
const CHART_0_1_0: &str = "391861d1eb0138a0295ba0306ddf6c5366f9961c";

/// Extracts charts/kubedag as of [`CHART_0_1_0`] under `dir`; returns the chart's path.
async fn chart_0_1_0(dir: &Path) -> String {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let archive = dir.join("chart.tar");
    let archive = archive.to_string_lossy();
    let output = format!("--output={archive}");
    must("git", &["archive", &output, CHART_0_1_0, CHART]).await;
    must("tar", &["-xf", &archive, "-C", &dir.to_string_lossy()]).await;
    let chart = dir.join(CHART);
    assert!(chart.join("crds").is_dir(), "chart 0.1.0 ships crds/");
    chart.to_string_lossy().into_owned()
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn upgrade_from_chart_0_1_0_takes_over_the_crds() {
    let (env, ns, release) = support::chart_test_env("chart-migrate").await;
    let old = chart_0_1_0(&Path::new(ROOT).join("target/e2e-chart").join(&ns)).await;
    let values = support::test_values(&ns, true);
    support::helm_install(&release, &old, &ns, &values, &[]).await;
    env.create::<Dag>(&common::one_step_dag("migrating", "Forbid", "sleep 8"))
        .await;
    env.create::<DagRun>(&common::run_yaml("before", "migrating", &[("file", "b")]))
        .await;
    env.wait_phase("before", RunPhase::Running).await;

    let upgrade = |extra: &'static str| {
        let (release, ns, values) = (release.clone(), ns.clone(), values.clone());
        async move { support::helm_upgrade(&release, CHART, &ns, &values, &[extra]).await }
    };
    let (ok, _, err) = upgrade("--description=plain").await;
    assert!(
        !ok && err.contains("CustomResourceDefinition") && err.contains("invalid ownership metadata"),
        "a plain upgrade cannot take CRDs it does not own: {err}"
    );

    // The README's steps: the new CRDs first (an upgrade adopts but does not patch), then adopt.
    let crds = support::helm_template(&release, CHART, &ns, &["--show-only", "templates/crds.yaml"]).await;
    let apply = ["apply", "--server-side", "--force-conflicts", "-f", "-"];
    let (ok, _, err) = sh("kubectl", &apply, Some(&crds)).await;
    assert!(ok, "{err}");
    let (ok, out, err) = upgrade("--take-ownership").await;
    assert!(ok, "upgrade with --take-ownership:\n{out}\n{err}");
    support::wait_rollout(&release, &ns).await;
    let manifest = must("helm", &["get", "manifest", &release, "-n", &ns]).await;
    assert!(
        manifest.contains("name: dagruns.kubedag.io"),
        "the release owns the CRDs now"
    );

    assert_eq!(
        env.wait_finished("before").await.status.unwrap().phase,
        RunPhase::Succeeded
    );
    env.create::<DagRun>(&common::run_yaml("after", "migrating", &[("file", "a")]))
        .await;
    assert_eq!(
        env.wait_finished("after").await.status.unwrap().phase,
        RunPhase::Succeeded
    );

    must("helm", &["uninstall", &release, "-n", &ns, "--wait"]).await;
    must("kubectl", &["get", "crd", "dags.kubedag.io", "dagruns.kubedag.io"]).await;
    assert!(
        env.api::<DagRun>().get_opt("after").await.unwrap().is_some(),
        "runs survive uninstall"
    );
}
