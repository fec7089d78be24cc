//! Argo Workflows' `workflow-controller`, the peer kubedag is compared with: built from its Go
//! module by `bench/argo.sh` (cached beside the cluster binaries), run out of cluster on the same
//! control plane and simulated node, one process per workload, watching only the workload's
//! namespace, either at its defaults or tuned to match kubedag ([`Mode`]).
//!
//! It runs with `LEADER_ELECTION_DISABLE=true` and `--namespace NS --namespaced
//! --managed-namespace NS --configmap workflow-controller-configmap --executor-image IMAGE`; its
//! configuration map in NS moves its metrics server to a free local port over plain HTTP. It
//! also binds :6060 (fixed), so only one runs at a time. It ignores SIGTERM: it is stopped with
//! SIGKILL. On the simulated node no executor runs: a pod marked `Succeeded` completes its node.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, PostParams};
use kubedag::testkit::metrics::Metrics;
use kubedag::testkit::{STEP_IMAGE, http, poll};
use serde_json::json;

use crate::Res;
use crate::clock::log;
use crate::process::{ProcStats, proc_stats};

/// The name of the controller's configuration map (`--configmap`).
pub const CONFIG_MAP: &str = "workflow-controller-configmap";
/// How long a started controller may take to serve its metrics.
const READY_WAIT: Duration = Duration::from_secs(120);
/// Workers of the tuned controller: kubedag's `--concurrency`.
const TUNED_WORKERS: u16 = 64;
/// Client QPS and burst of the tuned controller. kubedag's client (kube-rs) has no client-side
/// rate limit, so the tuned controller gets one it never reaches.
const TUNED_QPS: u32 = 100_000;

/// How the controller is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Argo's defaults: 32 workflow workers, client QPS 20 / burst 30, 10 s requeue, events on.
    Default,
    /// Tuned to match kubedag: 64 workers, no effective client rate limit, 1 s requeue
    /// (`DEFAULT_REQUEUE_TIME=1s`), node and workflow events off.
    Tuned,
}

impl Mode {
    /// `argo-default` or `argo-tuned`: the system's label in logs, namespaces and latest.json.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Default => "argo-default",
            Mode::Tuned => "argo-tuned",
        }
    }

    /// The controller's flags after the namespace ones.
    fn args(self) -> Vec<String> {
        match self {
            Mode::Default => Vec::new(),
            Mode::Tuned => {
                let (workers, qps) = (TUNED_WORKERS.to_string(), TUNED_QPS.to_string());
                ["--workflow-workers", &workers, "--qps", &qps, "--burst", &qps]
                    .map(String::from)
                    .to_vec()
            }
        }
    }

    /// The environment the controller adds to the driver's (KUBECONFIG included).
    fn env(self) -> Vec<(&'static str, &'static str)> {
        let mut env = vec![("LEADER_ELECTION_DISABLE", "true")];
        if self == Mode::Tuned {
            env.push(("DEFAULT_REQUEUE_TIME", "1s"));
        }
        env
    }

    /// The configuration map's data: every key one top-level field of Argo's configuration, as
    /// YAML. Metrics on `metrics_port` over plain HTTP; events off when tuned.
    pub fn config_data(self, metrics_port: u16) -> serde_json::Value {
        let mut data = json!({
            "metricsConfig": format!("enabled: true\nport: {metrics_port}\nsecure: false\n"),
        });
        if self == Mode::Tuned {
            data["nodeEvents"] = json!("enabled: false\n");
            data["workflowEvents"] = json!("enabled: false\n");
        }
        data
    }
}

/// A running workflow-controller.
pub struct Controller {
    child: Child,
    metrics_port: u16,
    started: Instant,
    log_path: PathBuf,
}

impl Controller {
    /// Writes the configuration map into `ns`, then starts `binary` for `ns` in `mode`, logging
    /// to `log_path`, and waits until it serves its metrics. Errors: the map cannot be written,
    /// the binary cannot be started, it exits, or it is not serving within 120 s.
    pub async fn start(client: &Client, binary: &Path, ns: &str, mode: Mode, log_path: PathBuf) -> Res<Controller> {
        let metrics_port = http::free_port();
        let map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": CONFIG_MAP, "namespace": ns},
            "data": mode.config_data(metrics_port),
        }))?;
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &map)
            .await?;
        let log_file = std::fs::File::create(&log_path)?;
        let child = Command::new(binary)
            .args(["--namespace", ns, "--namespaced", "--managed-namespace", ns])
            .args(["--configmap", CONFIG_MAP, "--executor-image", STEP_IMAGE])
            .args(mode.args())
            .envs(mode.env())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone()?))
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(|err| format!("starting {}: {err}", binary.display()))?;
        let mut controller = Controller {
            child,
            metrics_port,
            started: Instant::now(),
            log_path,
        };
        log(format!(
            "{} workflow-controller pid {} for {ns} (metrics 127.0.0.1:{metrics_port}, log {})",
            mode.label(),
            controller.pid(),
            controller.log_path.display()
        ));
        controller.wait_ready().await?;
        Ok(controller)
    }

    /// Waits until it serves `/metrics` (it starts serving once its informers are synced).
    async fn wait_ready(&mut self) -> Res<()> {
        let (port, child) = (self.metrics_port, &mut self.child);
        let ready = poll(READY_WAIT, Duration::from_millis(250), || {
            let exited = child.try_wait().ok().flatten();
            async move {
                if let Some(status) = exited {
                    return Some(Err(format!("the workflow-controller exited: {status}")));
                }
                matches!(http::get(port, "/metrics").await, Some((200, _))).then_some(Ok(()))
            }
        })
        .await;
        match ready {
            Some(Ok(())) => Ok(()),
            Some(Err(err)) => Err(format!("{err} (log {})", self.log_path.display()).into()),
            None => Err(format!(
                "the workflow-controller served no metrics in {} s (log {})",
                READY_WAIT.as_secs(),
                self.log_path.display()
            )
            .into()),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since it was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// One scrape of its metrics (empty when it does not answer).
    pub async fn metrics(&self) -> Metrics {
        match http::get(self.metrics_port, "/metrics").await {
            Some((200, body)) => Metrics::parse(&body),
            _ => Metrics::default(),
        }
    }

    /// Reads its process figures, then SIGKILLs it (it ignores SIGTERM) and reaps it.
    pub fn stop(mut self) -> ProcStats {
        let stats = proc_stats(self.pid());
        self.kill();
        stats
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Its API writes by kind, from its own `argo_workflows_k8s_request_total{kind,verb}` counter
/// (verbs that write: Create, Update, Patch, Delete, DeleteCollection).
pub fn writes_by_kind(metrics: &Metrics) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for (name, labels, value) in &metrics.0 {
        let verb = labels.get("verb").map(String::as_str).unwrap_or("");
        let writes = matches!(
            verb.to_ascii_lowercase().as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        );
        if name == "argo_workflows_k8s_request_total" && writes {
            let kind = labels.get("kind").cloned().unwrap_or_default();
            *out.entry(format!("{kind} {}", verb.to_ascii_lowercase()))
                .or_insert(0.0) += value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuned_differs_from_default_in_workers_rate_limit_requeue_and_events() {
        assert!(Mode::Default.args().is_empty());
        assert_eq!(
            Mode::Tuned.args(),
            ["--workflow-workers", "64", "--qps", "100000", "--burst", "100000"]
        );
        assert!(Mode::Tuned.env().contains(&("DEFAULT_REQUEUE_TIME", "1s")));
        assert!(!Mode::Default.env().iter().any(|(k, _)| *k == "DEFAULT_REQUEUE_TIME"));
        let (default, tuned) = (Mode::Default.config_data(1234), Mode::Tuned.config_data(1234));
        assert_eq!(default["metricsConfig"], "enabled: true\nport: 1234\nsecure: false\n");
        assert!(default.get("nodeEvents").is_none());
        assert_eq!(tuned["nodeEvents"], "enabled: false\n");
        assert_eq!(tuned["workflowEvents"], "enabled: false\n");
    }

    #[test]
    fn writes_are_counted_by_kind_and_verb_from_its_request_counter() {
        let m = Metrics::parse(
            "argo_workflows_k8s_request_total{kind=\"pods\",status_code=\"201\",verb=\"Create\"} 5\n\
             argo_workflows_k8s_request_total{kind=\"pods\",status_code=\"200\",verb=\"List\"} 9\n\
             argo_workflows_k8s_request_total{kind=\"workflows\",status_code=\"200\",verb=\"Update\"} 7\n\
             argo_workflows_k8s_request_total{kind=\"workflows\",status_code=\"409\",verb=\"Update\"} 1\n",
        );
        let w = writes_by_kind(&m);
        assert_eq!(w.len(), 2);
        assert_eq!(w["pods create"], 5.0);
        assert_eq!(w["workflows update"], 8.0);
    }
}
