//! Harness of the end-to-end tests: each test gets its own namespace and its own operator
//! process watching only that namespace, on the real local cluster (`make cluster-up`).
//! The tests are `#[ignore]`d so `cargo test` alone needs no cluster; `make test` runs them with
//! `--include-ignored` against the cluster it brings up.

#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use kubedag::api::{Dag, DagRun, RunPhase};
use kubedag::testkit::manifests::{self, DagManifest};
use kubedag::testkit::operator::{self, Launch, Operator};
use kubedag::testkit::{cluster, http, poll};

/// The step image the local cluster imports.
pub const STEP_IMAGE: &str = kubedag::testkit::STEP_IMAGE;

/// Upper bound for any single wait; a safety net against hangs, not a speed assertion.
pub const WAIT: Duration = Duration::from_secs(300);
/// How often a wait checks again.
pub const POLL_EVERY: Duration = Duration::from_millis(300);

/// `target/e2e-logs` (created if missing): the operator logs and what a failing test leaves.
pub fn log_dir() -> String {
    let dir = format!("{}/target/e2e-logs", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).expect("the e2e log directory");
    dir
}

/// A DagRun manifest (text for kubectl or [`TestEnv::create`]) named `name` of Dag `dag` with
/// string params.
pub fn run_yaml(name: &str, dag: &str, params: &[(&str, &str)]) -> String {
    manifests::manifest_text(&manifests::dag_run(name, dag, params))
}

/// A one-step Dag manifest (text) with a required `file` param whose step `work` runs `script`
/// (a shell script), under duplicate policy `policy`.
pub fn one_step_dag(name: &str, policy: &str, script: &str) -> String {
    let dag = DagManifest::new(name)
        .param("file")
        .spec_field("duplicatePolicy", json!(policy))
        .step(manifests::script_step("work", script, &[]));
    manifests::manifest_text(&dag.into_value())
}

/// A namespaced Kubernetes object the tests create from YAML.
pub trait TestObject:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
}

impl<K> TestObject for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
{
}

/// An operator process of this test (the freshly built `kubedag` binary, logging at
/// `kubedag=debug` and appending to the test's log); SIGKILLed when dropped.
pub struct OperatorProcess(Operator);

impl OperatorProcess {
    fn spawn(ns: &str, log_path: &str, extra_args: &[&str]) -> OperatorProcess {
        let mut launch = Launch::new(env!("CARGO_BIN_EXE_kubedag"), ns, log_path);
        launch.append_log = true;
        launch.rust_log = "info,kubedag=debug,kube=warn".into();
        launch.args = extra_args.iter().map(|a| a.to_string()).collect();
        OperatorProcess(Operator::spawn(&launch).expect("start the operator binary"))
    }

    /// The port of its metrics server on 127.0.0.1.
    pub fn metrics_port(&self) -> u16 {
        self.0.metrics_port()
    }

    /// SIGKILL: no graceful shutdown.
    pub fn kill_operator(&mut self) {
        self.0.kill();
    }

    /// Sum over label sets of the samples named `name` (0 when not served yet).
    ///
    /// # Panics
    /// When `/metrics` does not answer (the operator is not running).
    pub async fn metric(&self, name: &str) -> f64 {
        self.0
            .metrics()
            .await
            .expect("the operator's /metrics answers")
            .sum(name)
    }
}

pub struct TestEnv {
    pub client: Client,
    pub ns: String,
    operator: Option<OperatorProcess>,
    log_path: String,
    webhook: bool,
}

static CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

impl TestEnv {
    /// A fresh namespace with an operator watching it.
    pub async fn new(prefix: &str) -> TestEnv {
        let mut env = TestEnv::without_operator(prefix).await;
        env.start_operator(&[]);
        env
    }

    /// A fresh namespace with an operator that also serves and registers the admission webhook
    /// (by URL, restricted to this namespace, failurePolicy Fail so refusals are deterministic).
    pub async fn with_webhook(prefix: &str) -> TestEnv {
        let mut env = TestEnv::without_operator(prefix).await;
        env.start_operator_with_webhook();
        env.wait_for_webhook().await;
        env
    }

    pub fn start_operator_with_webhook(&mut self) {
        let args = operator::webhook_args(http::free_port(), &self.webhook_config_name());
        self.start_operator(&args.iter().map(String::as_str).collect::<Vec<_>>());
        self.webhook = true;
    }

    pub fn webhook_config_name(&self) -> String {
        format!("kubedag-{}", self.ns)
    }

    /// Waits until the webhook answers: an invalid Dag is refused by it.
    pub async fn wait_for_webhook(&self) {
        let probe = "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {name: webhook-probe}\nspec:\n  steps: [{name: a, depends: [missing]}]\n";
        self.eventually("the admission webhook to answer", || async {
            match self.try_create::<Dag>(probe).await {
                Err(kube::Error::Api(e)) if e.message.contains("unknown step") => Some(()),
                Ok(_) => {
                    let _ = self
                        .api::<Dag>()
                        .delete("webhook-probe", &DeleteParams::default())
                        .await;
                    None
                }
                Err(_) => None,
            }
        })
        .await;
    }

    /// A fresh namespace and the CRDs, but no operator yet.
    pub async fn without_operator(prefix: &str) -> TestEnv {
        let client = Client::try_default()
            .await
            .expect("KUBECONFIG points at the local cluster (make cluster-up)");
        CRDS.get_or_init(|| install_crds(client.clone())).await;
        let ns = format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        cluster::create_namespace(&client, &ns, &[("kubedag.io/e2e", "true")])
            .await
            .expect("create namespace");
        let log_dir = log_dir();
        TestEnv {
            client,
            log_path: format!("{log_dir}/{ns}.log"),
            ns,
            operator: None,
            webhook: false,
        }
    }

    /// Starts (or restarts) the operator process for this namespace.
    pub fn start_operator(&mut self, extra_args: &[&str]) {
        self.operator = None;
        self.operator = Some(OperatorProcess::spawn(&self.ns, &self.log_path, extra_args));
    }

    /// Another operator process for the same namespace (e.g. a second replica).
    pub fn second_operator(&self, extra_args: &[&str]) -> OperatorProcess {
        OperatorProcess::spawn(&self.ns, &format!("{}.second", self.log_path), extra_args)
    }

    /// SIGKILLs the operator (no graceful shutdown).
    pub fn kill_operator(&mut self) {
        self.operator = None;
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates the object described by `yaml` in the test namespace.
    pub async fn create<K: TestObject>(&self, yaml: &str) -> K {
        self.try_create(yaml).await.expect("create test object")
    }

    /// Creates the object described by `yaml`, returning the API's answer.
    pub async fn try_create<K: TestObject>(&self, yaml: &str) -> Result<K, kube::Error> {
        let object: K = serde_yaml::from_str(yaml).expect("valid test YAML");
        self.api::<K>().create(&PostParams::default(), &object).await
    }

    /// Polls until `check` returns Some, failing the test after [`WAIT`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        match poll(WAIT, POLL_EVERY, check).await {
            Some(value) => value,
            None => panic!("timed out waiting for {what} (operator log: {})", self.log_path),
        }
    }

    /// Waits until the run reaches a terminal phase and returns it.
    pub async fn wait_finished(&self, name: &str) -> DagRun {
        let runs = self.api::<DagRun>();
        self.eventually(&format!("DagRun {name} to finish"), || async {
            let run = runs.get(name).await.ok()?;
            run.status.as_ref().filter(|s| s.phase.is_terminal())?;
            Some(run)
        })
        .await
    }

    pub async fn wait_phase(&self, name: &str, phase: RunPhase) -> DagRun {
        let runs = self.api::<DagRun>();
        self.eventually(&format!("DagRun {name} to be {phase:?}"), || async {
            let run = runs.get(name).await.ok()?;
            (run.status.as_ref()?.phase == phase).then_some(run)
        })
        .await
    }

    pub async fn jobs_of(&self, run: &str) -> Vec<Job> {
        let lp = ListParams::default().labels(&format!("kubedag.io/run={run}"));
        self.api::<Job>().list(&lp).await.unwrap().items
    }

    pub async fn pods_of(&self, run: &str) -> Vec<Pod> {
        let lp = ListParams::default().labels(&format!("kubedag.io/run={run}"));
        self.api::<Pod>().list(&lp).await.unwrap().items
    }

    /// Logs of the pod of the given step's latest Job.
    pub async fn step_log(&self, run: &str, step: &str) -> String {
        let lp = ListParams::default().labels(&format!("kubedag.io/run={run},kubedag.io/step={step}"));
        let pods = self.api::<Pod>().list(&lp).await.unwrap().items;
        let pod = pods
            .iter()
            .max_by_key(|p| p.creation_timestamp())
            .expect("a pod for the step");
        self.api::<Pod>()
            .logs(&pod.name_any(), &LogParams::default())
            .await
            .unwrap()
    }

    /// Kubernetes Events about DagRun `run`, as (type, reason, note).
    pub async fn events_of(&self, run: &str) -> Vec<(String, String, String)> {
        let events = self.api::<Event>().list(&ListParams::default()).await.unwrap().items;
        events
            .into_iter()
            .filter(|e| {
                e.regarding
                    .as_ref()
                    .is_some_and(|r| r.kind.as_deref() == Some("DagRun") && r.name.as_deref() == Some(run))
            })
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    pub async fn dag(&self) -> Api<Dag> {
        self.api::<Dag>()
    }

    /// Operator metric value (sum over label sets) whose line starts with `name`.
    pub async fn metric(&self, name: &str) -> f64 {
        self.operator.as_ref().expect("an operator runs").metric(name).await
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.operator = None;
        if std::thread::panicking() {
            eprintln!(
                "test failed; operator log: {} (namespace {} kept)",
                self.log_path, self.ns
            );
            return;
        }
        // A new client on a new runtime: the test's client belongs to the test's runtime, which is
        // blocked in this very drop.
        let (ns, webhook) = (self.ns.clone(), self.webhook.then(|| self.webhook_config_name()));
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let Ok(client) = Client::try_default().await else {
                    return;
                };
                if let Some(name) = webhook {
                    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
                    let _ = configs.delete(&name, &DeleteParams::default()).await;
                }
                cluster::delete_namespaces(&client, &[ns], Duration::ZERO).await;
            });
        })
        .join();
    }
}

async fn install_crds(client: Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let yaml = kubedag::api::crds_yaml().unwrap();
    for doc in serde_yaml::Deserializer::from_str(&yaml) {
        let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc).unwrap();
        let name = crd.name_any();
        crds.patch(&name, &PatchParams::apply("kubedag-e2e").force(), &Patch::Apply(&crd))
            .await
            .expect("apply CRD");
        for _ in 0..100 {
            let current = crds.get(&name).await.unwrap();
            let established = current
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
