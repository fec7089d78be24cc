//! Directory and bucket DagTriggers on the local cluster: the operator (out of cluster) runs a
//! watcher Deployment per trigger from this build's image, which submits each settled file
//! exactly once across watcher and operator kills, run deletion and re-scans; a volume that
//! cannot be mounted is named; a bucket on the real S3 server (`e2e/s3-up.sh`) gives one run per
//! object; the webhook keeps a watcher to its own Dag.

mod common;
mod e2e_chart_support;
mod s3_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{STEP_IMAGE, TestEnv};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams};
use kubedag::api::{Dag, DagRun, DagTrigger};

const IMAGE: &str = "kubedag.local/kubedag:e2e";

/// The operator, running watchers from this build's image, re-scanning every 3 s.
fn operator_args() -> Vec<&'static str> {
    vec!["--watcher-image", IMAGE, "--watcher-rescan-seconds", "3"]
}

fn dag(name: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: [{{name: file}}, {{name: size}}]\n  duplicatePolicy: Allow\n  maxActiveRuns: 2\n  steps:\n    - {{name: work, image: {STEP_IMAGE}, command: [sh, -c, 'echo $(file) $(size)']}}\n"
    )
}

fn directory_trigger(name: &str, dag: &str, host_dir: &Path) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: DagTrigger\nmetadata: {{name: {name}}}\nspec:\n  dagRef: {{name: {dag}}}\n  params: {{file: '$(file.path)', size: '$(file.size)'}}\n  directory:\n    volume: {{name: input, hostPath: {{path: {}, type: Directory}}}}\n    path: incoming\n    pattern: '*.fits'\n    settleSeconds: 3\n",
        host_dir.display()
    )
}

/// A directory on this host (the cluster's one node) for the test's hostPath volume.
fn host_dir(env: &TestEnv) -> PathBuf {
    let dir = PathBuf::from(format!("/var/lib/kubedag-e2e/watch-tests/{}", env.ns));
    std::fs::create_dir_all(dir.join("incoming")).unwrap();
    dir
}

/// The trigger's runs as (file path, size param).
async fn trigger_runs(env: &TestEnv, trigger: &str) -> Vec<(String, String)> {
    let lp = ListParams::default().labels(&format!("kubedag.io/trigger={trigger}"));
    let runs = env.api::<DagRun>().list(&lp).await.unwrap().items;
    runs.into_iter()
        .map(|r| (r.spec.params["file"].clone(), r.spec.params["size"].clone()))
        .collect()
}

/// The trigger's runs: file path -> size param, failing on two runs of one file.
async fn runs_by_file(env: &TestEnv, trigger: &str) -> BTreeMap<String, String> {
    let mut by_file = BTreeMap::new();
    for (file, size) in trigger_runs(env, trigger).await {
        assert!(by_file.insert(file.clone(), size).is_none(), "two runs of {file}");
    }
    by_file
}

async fn status(env: &TestEnv, trigger: &str) -> kubedag::api::DagTriggerStatus {
    env.api::<DagTrigger>()
        .get(trigger)
        .await
        .unwrap()
        .status
        .unwrap_or_default()
}

/// The `Ready` condition's reason and message.
async fn ready(env: &TestEnv, trigger: &str) -> Option<(String, String)> {
    let s = status(env, trigger).await;
    let c = s.conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.reason.clone(), c.message.clone()))
}

async fn wait_active(env: &TestEnv, trigger: &str) {
    env.eventually("the watcher to be Active", || async {
        (ready(env, trigger).await?.0 == "Active").then_some(())
    })
    .await;
}

async fn delete_watcher_pod(env: &TestEnv, trigger: &str) {
    let lp = ListParams::default().labels(&format!(
        "kubedag.io/trigger={trigger},app.kubernetes.io/component=trigger-watcher"
    ));
    let pods = env.api::<Pod>().list(&lp).await.unwrap().items;
    assert!(!pods.is_empty(), "a watcher pod runs");
    for pod in pods {
        env.api::<Pod>()
            .delete(&pod.name_any(), &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
    }
}

/// Writes file `i` of the drop: every fifth in three chunks 1 s apart (inside settleSeconds 3),
/// the others at once. Returns its path (relative to the volume) and final size.
async fn drop_file(incoming: &Path, i: usize) -> (String, u64) {
    let name = format!("img-{i:03}.fits");
    let body = format!("image {i} {}\n", "x".repeat(i));
    let path = incoming.join(&name);
    if i.is_multiple_of(5) {
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in 0..3 {
            f.write_all(format!("chunk {chunk} {body}").as_bytes()).unwrap();
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    } else {
        std::fs::write(&path, &body).unwrap();
    }
    (format!("incoming/{name}"), std::fs::metadata(&path).unwrap().len())
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up)"]
async fn each_settled_file_becomes_exactly_one_run_across_kills_deletions_and_rescans() {
    e2e_chart_support::operator_image().await;
    let mut env = TestEnv::without_operator("tw-dir").await;
    env.start_operator(&operator_args());
    let dir = host_dir(&env);
    let incoming = dir.join("incoming");
    env.create::<Dag>(&dag("ingest")).await;
    env.create::<DagTrigger>(&directory_trigger("drop", "ingest", &dir))
        .await;
    wait_active(&env, "drop").await;

    // 200 files over 20 s (slow writers run beside the quick ones); the watcher pod is killed
    // at about 7 s and the operator at about 13 s.
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..200 {
        let incoming = incoming.clone();
        writers.spawn(async move { drop_file(&incoming, i).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        if i == 70 {
            delete_watcher_pod(&env, "drop").await;
        }
        if i == 130 {
            env.kill_operator();
            env.start_operator(&operator_args());
        }
    }
    let expected: BTreeMap<String, String> = writers
        .join_all()
        .await
        .into_iter()
        .map(|(path, size)| (path, size.to_string()))
        .collect();
    assert_eq!(expected.len(), 200);
    env.eventually("200 runs", || async {
        (runs_by_file(&env, "drop").await.len() >= 200).then_some(())
    })
    .await;
    // Some re-scans later: still exactly one run per file, each of the complete file.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        runs_by_file(&env, "drop").await,
        expected,
        "one run per file, of its final size"
    );
    let s = env
        .eventually("status to count 200 submitted", || async {
            let s = status(&env, "drop").await;
            (s.submitted >= 200).then_some(s)
        })
        .await;
    assert_eq!(s.submitted, 200, "each file counted once: {s:?}");
    assert!(s.last_run.is_some() && s.last_submit_time.is_some(), "{s:?}");

    // Every run deleted (as TTL or the history limit would): full re-scans submit nothing.
    let all = ListParams::default().labels("kubedag.io/trigger=drop");
    env.api::<DagRun>()
        .delete_collection(&DeleteParams::default(), &all)
        .await
        .unwrap();
    env.eventually("the runs to be gone", || async {
        runs_by_file(&env, "drop").await.is_empty().then_some(())
    })
    .await;
    let deleted_at = jiff::Timestamp::now();
    env.eventually("two full re-scans after the deletion", || async {
        let scanned = status(&env, "drop").await.last_scan_time?.0;
        (scanned.as_second() > deleted_at.as_second() + 6).then_some(())
    })
    .await;
    assert!(runs_by_file(&env, "drop").await.is_empty(), "no file submitted again");

    // A rewritten file is new input: exactly one new run, of its new size.
    std::fs::write(incoming.join("img-042.fits"), "rewritten\n").unwrap();
    env.eventually("the rewritten file's run", || async {
        (!runs_by_file(&env, "drop").await.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = runs_by_file(&env, "drop").await;
    assert_eq!(
        after,
        BTreeMap::from([("incoming/img-042.fits".to_string(), "10".to_string())])
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up)"]
async fn a_volume_that_cannot_be_mounted_is_named_with_the_kubelets_message() {
    e2e_chart_support::operator_image().await;
    let mut env = TestEnv::without_operator("tw-mount").await;
    env.start_operator(&operator_args());
    env.create::<Dag>(&dag("ingest")).await;
    let missing = PathBuf::from(format!("/var/lib/kubedag-e2e/watch-tests/absent-{}", env.ns));
    env.create::<DagTrigger>(&directory_trigger("nowhere", "ingest", &missing))
        .await;
    let (reason, message) = env
        .eventually("VolumeNotMountable", || async {
            ready(&env, "nowhere").await.filter(|(r, _)| r == "VolumeNotMountable")
        })
        .await;
    assert_eq!(reason, "VolumeNotMountable");
    assert!(message.contains("volume \"input\""), "{message}");
    assert!(
        message.contains(&missing.display().to_string()),
        "the kubelet's message: {message}"
    );
    let s = status(&env, "nowhere").await;
    assert!(s.last_error.unwrap().starts_with("VolumeNotMountable: watcher pod"));
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up)"]
async fn the_webhook_keeps_a_watcher_to_its_own_dag_and_label() {
    e2e_chart_support::operator_image().await;
    let mut env = TestEnv::without_operator("tw-hook").await;
    let mut args = operator_args();
    let hook =
        kubedag::testkit::operator::webhook_args(kubedag::testkit::http::free_port(), &env.webhook_config_name());
    args.extend(hook.iter().map(String::as_str));
    env.start_operator(&args);
    env.wait_for_webhook().await;
    env.create::<Dag>(&dag("ingest")).await;
    env.create::<Dag>(&dag("other")).await;
    let dir = host_dir(&env);
    env.create::<DagTrigger>(&directory_trigger("guarded", "ingest", &dir))
        .await;
    env.eventually("the watcher's ServiceAccount", || async {
        env.api::<ServiceAccount>()
            .get_opt("guarded-watcher")
            .await
            .ok()
            .flatten()
    })
    .await;
    env.eventually("the watcher's Deployment", || async {
        env.api::<Deployment>().get_opt("guarded-watcher").await.ok().flatten()
    })
    .await;
    let create_as_watcher = |dag: &str, label: &str| {
        let run = format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: DagRun\nmetadata: {{generateName: w-, labels: {{kubedag.io/trigger: {label}}}}}\nspec:\n  dagRef: {{name: {dag}}}\n  params: {{file: f, size: '1'}}\n"
        );
        let user = format!("system:serviceaccount:{}:guarded-watcher", env.ns);
        let out = std::process::Command::new("kubectl")
            .args(["-n", &env.ns, "create", "--as", &user, "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(run.as_bytes())?;
                child.wait_with_output()
            })
            .expect("run kubectl");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = create_as_watcher("other", "guarded");
    assert!(!ok, "a run of another Dag is refused");
    assert!(
        err.contains("\"guarded\"") && err.contains("\"ingest\"") && err.contains("\"other\""),
        "{err}"
    );
    let (ok, err) = create_as_watcher("ingest", "someone-else");
    assert!(
        !ok && err.contains("someone-else"),
        "a run without its trigger's label is refused: {err}"
    );
    let (ok, err) = create_as_watcher("ingest", "guarded");
    assert!(ok, "its own Dag with its label is admitted: {err}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn bucket_trigger(name: &str, dag: &str, endpoint: &str, bucket: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: DagTrigger\nmetadata: {{name: {name}}}\nspec:\n  dagRef: {{name: {dag}}}\n  params: {{file: '$(file.path)', size: '$(file.size)'}}\n  bucket: {{endpoint: '{endpoint}', bucket: {bucket}, prefix: incoming, pattern: '*.fits', credentialsSecret: s3}}\n"
    )
}

/// Waits for a complete scan that started after now.
async fn wait_next_scan(env: &TestEnv, trigger: &str) {
    let after = jiff::Timestamp::now().as_second();
    env.eventually("a scan after now", || async {
        let scanned = status(env, trigger).await.last_scan_time?.0;
        (scanned.as_second() > after + 3).then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up) and e2e/s3-up.sh"]
async fn each_object_becomes_exactly_one_run_across_a_watcher_restart() {
    e2e_chart_support::operator_image().await;
    let (server, mut env, bucket) = s3_support::setup("tw-s3").await;
    assert!(
        !server.endpoint.contains("127.0.0.1"),
        "pods must reach the server: {}",
        server.endpoint
    );
    env.start_operator(&operator_args());
    let root = &server.root;
    let keys = [
        ("accessKeyId", root.access_key_id.as_str()),
        ("secretAccessKey", root.secret_access_key.as_str()),
        ("region", server.region.as_str()),
    ];
    s3_support::secret(&env, "s3", &keys).await;
    env.create::<Dag>(&dag("ingest")).await;
    let store = server.writer(&bucket);
    let objects = (0..50)
        .map(|i| (format!("incoming/obj-{i:02}.fits"), format!("object {i}").into_bytes()))
        .chain([("elsewhere/x.fits".to_string(), b"not watched".to_vec())])
        .collect();
    s3_support::upload(&store, objects).await;
    let trigger = bucket_trigger("objects", "ingest", &server.endpoint, &bucket);
    env.create::<DagTrigger>(&trigger).await;
    let expected: BTreeMap<String, String> = (0..50)
        .map(|i| {
            (
                format!("incoming/obj-{i:02}.fits"),
                format!("object {i}").len().to_string(),
            )
        })
        .collect();
    env.eventually("50 runs", || async {
        (runs_by_file(&env, "objects").await.len() >= 50).then_some(())
    })
    .await;
    wait_next_scan(&env, "objects").await;
    assert_eq!(runs_by_file(&env, "objects").await, expected, "one run per object");

    delete_watcher_pod(&env, "objects").await;
    wait_next_scan(&env, "objects").await;
    assert_eq!(
        runs_by_file(&env, "objects").await.len(),
        50,
        "a restarted watcher submits nothing again"
    );
    let s = status(&env, "objects").await;
    assert_eq!((s.submitted, s.source.as_deref()), (50, Some("bucket")), "{s:?}");

    s3_support::upload(
        &store,
        vec![("incoming/obj-07.fits".into(), b"rewritten object".to_vec())],
    )
    .await;
    env.eventually("the rewritten object's run", || async {
        (trigger_runs(&env, "objects").await.len() == 51).then_some(())
    })
    .await;
    wait_next_scan(&env, "objects").await;
    let runs = trigger_runs(&env, "objects").await;
    assert_eq!(runs.len(), 51, "only the rewritten object is new");
    assert!(runs.contains(&("incoming/obj-07.fits".into(), "16".into())), "{runs:?}");
}
