//! End to end: the chart's aggregated ClusterRoles give namespace users kubedag through the
//! built-in roles. A ServiceAccount bound to `edit` in one namespace creates a Dag and a DagRun
//! (impersonated with `kubectl --as`), which the chart's in-cluster operator runs to success; one
//! bound to `view` reads them but may not create; neither may write a run's status.

mod common;

#[path = "e2e_chart_support/mod.rs"]
mod support;

use kubedag::api::RunPhase;
use support::{CHART, must, sh};

/// `kubectl --as system:serviceaccount:NS:USER ARGS -n NS`, with `stdin`.
async fn as_user(ns: &str, user: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let who = format!("--as=system:serviceaccount:{ns}:{user}");
    let args = [&[who.as_str(), "-n", ns], args].concat();
    sh("kubectl", &args, stdin).await
}

/// A ServiceAccount `user` bound to the built-in ClusterRole `role` in `ns` only.
async fn namespace_user(ns: &str, user: &str, role: &str) {
    must("kubectl", &["create", "serviceaccount", user, "-n", ns]).await;
    let clusterrole = format!("--clusterrole={role}");
    let subject = format!("--serviceaccount={ns}:{user}");
    must(
        "kubectl",
        &["create", "rolebinding", user, "-n", ns, &clusterrole, &subject],
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn namespace_edit_user_creates_a_dagrun_through_the_aggregated_roles() {
    let (env, ns, release) = support::chart_test_env("chart-rbac").await;
    support::helm_install(&release, CHART, &ns, &support::test_values(&ns, false), &[]).await;
    for suffix in ["view", "edit"] {
        let name = format!("clusterrole/{release}-kubedag-aggregate-{suffix}");
        let labels = must("kubectl", &["get", &name, "-o", "jsonpath={.metadata.labels}"]).await;
        assert!(
            labels.contains("rbac.authorization.k8s.io/aggregate-to-edit"),
            "{name}: {labels}"
        );
    }

    namespace_user(&ns, "alice", "edit").await;
    namespace_user(&ns, "bob", "view").await;
    // The cluster's aggregation controller folds the rules into edit/view shortly after install.
    env.eventually("edit to include creating DagRuns", || async {
        let (_, out, _) = as_user(&ns, "alice", &["auth", "can-i", "create", "dagruns.kubedag.io"], None).await;
        (out.trim() == "yes").then_some(())
    })
    .await;

    let dag = common::one_step_dag("by-alice", "Forbid", "echo made by alice $file");
    let run = common::run_yaml("alice-run", "by-alice", &[("file", "a.fits")]);
    let (ok, _, err) = as_user(&ns, "bob", &["create", "-f", "-"], Some(&dag)).await;
    assert!(!ok && err.contains("forbidden"), "view may not create a Dag: {err}");
    for manifest in [&dag, &run] {
        let (ok, out, err) = as_user(&ns, "alice", &["create", "-f", "-"], Some(manifest)).await;
        assert!(ok, "edit creates it:\n{out}\n{err}");
    }
    let (ok, out, err) = as_user(&ns, "bob", &["get", "dagruns", "alice-run", "-o", "name"], None).await;
    assert!(ok && out.contains("alice-run"), "view reads DagRuns: {out} {err}");
    let (ok, _, err) = as_user(
        &ns,
        "bob",
        &["create", "-f", "-"],
        Some(&run.replace("alice-run", "bob-run")),
    )
    .await;
    assert!(!ok && err.contains("forbidden"), "view may not create a DagRun: {err}");
    let status = r#"{"status":{"phase":"Succeeded"}}"#;
    let (ok, _, err) = as_user(
        &ns,
        "alice",
        &[
            "patch",
            "dagrun",
            "alice-run",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
        None,
    )
    .await;
    assert!(!ok && err.contains("forbidden"), "status stays the operator's: {err}");

    let finished = env.wait_finished("alice-run").await.status.unwrap();
    assert_eq!(finished.phase, RunPhase::Succeeded, "{:?}", finished.message);
    assert!(env.step_log("alice-run", "work").await.contains("made by alice a.fits"));

    must("helm", &["uninstall", &release, "-n", &ns, "--wait"]).await;
}
