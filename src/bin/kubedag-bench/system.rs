//! The systems compared on one workload: kubedag (its operator process) and Argo Workflows at its
//! defaults or tuned (a workflow-controller process). A [`Controller`] is either process, with
//! what the workload driver needs of it: its pid and uptime, its own metrics, and a stop that
//! reads its /proc figures first.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DynamicObject};
use kubedag::testkit::metrics::Metrics;
use kubedag::testkit::operator::Operator;

use crate::Res;
use crate::argo::{self, Mode};
use crate::config::Config;
use crate::operator;
use crate::process::ProcStats;
use crate::recorder::Unit;
use crate::shapes::{Shape, dagruns, run_object, workflows};

/// One system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Kubedag,
    Argo(Mode),
}

impl System {
    /// `kubedag`, `argo-default` or `argo-tuned`.
    pub fn label(self) -> &'static str {
        match self {
            System::Kubedag => "kubedag",
            System::Argo(mode) => mode.label(),
        }
    }

    /// The namespace / log suffix of workload `key` on this system: `key` for kubedag (the
    /// names of earlier runs), `<label>-<key>` for Argo.
    pub fn workload_label(self, key: &str) -> String {
        match self {
            System::Kubedag => key.to_string(),
            System::Argo(_) => format!("{}-{key}", self.label()),
        }
    }

    /// What one step runs as.
    pub fn unit(self) -> Unit {
        match self {
            System::Kubedag => Unit::Job,
            System::Argo(_) => Unit::Pod,
        }
    }

    /// The API of this system's runs (DagRuns or Workflows) in `ns`.
    pub fn runs(self, client: &Client, ns: &str) -> Api<DynamicObject> {
        match self {
            System::Kubedag => dagruns(client, ns),
            System::Argo(_) => workflows(client, ns),
        }
    }

    /// Run `name` of `shape` with parameter `file`, as this system's run object.
    pub fn run_object(self, shape: &Shape, name: &str, file: &str) -> Result<DynamicObject, serde_json::Error> {
        match self {
            System::Kubedag => run_object(name, &shape.dag, file),
            System::Argo(_) => shape.workflow(name, file),
        }
    }

    /// The run kind the driver creates (`"POST <resource>"` in the API server's counts), and
    /// the other objects it writes before the runs (the Dag, or Argo's configuration map).
    pub fn driver_writes(self) -> (&'static str, &'static str) {
        match self {
            System::Kubedag => ("POST dagruns", "POST dags"),
            System::Argo(_) => ("POST workflows", "POST configmaps"),
        }
    }
}

/// The running controller of one workload.
pub enum Controller {
    Kubedag(Operator),
    Argo(argo::Controller),
}

impl Controller {
    /// Starts `system`'s controller for namespace `ns`, logging as `label` (kubedag with the
    /// `extra` flags), and waits until it is ready. Errors: it cannot be started or does not
    /// become ready (see the two kinds).
    pub async fn start(
        client: &Client,
        cfg: &Config,
        system: System,
        ns: &str,
        label: &str,
        extra: &[String],
    ) -> Res<Controller> {
        match system {
            System::Kubedag => {
                let mut op = operator::start(cfg, ns, label, extra)?;
                operator::wait_ready(&mut op).await?;
                Ok(Controller::Kubedag(op))
            }
            System::Argo(mode) => {
                let log = cfg.operator_log(label);
                let c = argo::Controller::start(client, &cfg.argo_bin, ns, mode, log).await?;
                Ok(Controller::Argo(c))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Controller::Kubedag(op) => op.pid(),
            Controller::Argo(c) => c.pid(),
        }
    }

    /// Seconds since it was started.
    pub fn uptime_s(&self) -> f64 {
        match self {
            Controller::Kubedag(op) => op.uptime().as_secs_f64(),
            Controller::Argo(c) => c.uptime().as_secs_f64(),
        }
    }

    /// One scrape of its own metrics (empty when it does not answer).
    pub async fn metrics(&self) -> Metrics {
        match self {
            Controller::Kubedag(op) => operator::metrics(op).await,
            Controller::Argo(c) => c.metrics().await,
        }
    }

    /// Its API writes by kind from its own counters: `kubedag_api_writes_total{kind}`, or Argo's
    /// `argo_workflows_k8s_request_total{kind,verb}`.
    pub fn own_writes(&self, metrics: &Metrics) -> BTreeMap<String, f64> {
        match self {
            Controller::Kubedag(_) => metrics.by_label("kubedag_api_writes_total", "kind"),
            Controller::Argo(_) => argo::writes_by_kind(metrics),
        }
    }

    /// Reads its process figures, then stops it.
    pub async fn stop(self) -> ProcStats {
        match self {
            Controller::Kubedag(op) => operator::stop(op).await,
            Controller::Argo(c) => c.stop(),
        }
    }
}
