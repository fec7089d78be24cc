//! `kubedag-bench`: the benchmark driver behind `make bench` (see bench/README.md).
//!
//! Against the cluster in KUBECONFIG it runs, in this order:
//! 1. a simulated node: a `Node` object kept Ready through its Lease and status heartbeat, never
//!    backed by a kubelet, tainted so no other pod lands on it, and a watcher that marks every pod
//!    bound to it `Succeeded` (container terminated, exit code 0) through the API;
//! 2. the plain-client baseline: Jobs of the operator's shape created as fast as a plain client
//!    can, alone and with one status write each (the physical limit of this control plane);
//! 3. the workloads, each in its own namespace with its own operator process (release build,
//!    `--namespace NS`): (a) concurrent runs of a 5-step diamond, (b) one run of a wide Dag,
//!    (c) many 1-step runs created at once, (d) webhook admission latency with the runs of (a);
//!
//! and writes `latest.json` and `latest.md` into the output directory. Every figure is measured in
//! this process: the Job and DagRun watch streams give millisecond times for "Job created",
//! "Job Complete" and "run finished" (the API's own timestamps have 1-second resolution).
//! Sizes come from environment variables (`BENCH_*`, see `Config::from_env`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const STEP_IMAGE: &str = "kubedag.local/busybox:1";
const SIM_LABEL: &str = "kubedag.io/simulated";
const BENCH_LABEL: &str = "kubedag.io/bench";
const WEBHOOK_CONFIG: &str = "kubedag-bench";
const FIELD_MANAGER: &str = "kubedag-bench";

// ---------------------------------------------------------------------------------------------
// Configuration

struct Config {
    /// Multiplies every workload size (1.0 = the issue's sizes).
    scale: f64,
    workloads: Vec<String>,
    /// The operator's `--concurrency`, and the plain client's parallel requests.
    concurrency: u16,
    /// Parallel DagRun creates of the driver.
    create_concurrency: usize,
    /// Seconds a simulated pod "runs" before it is marked Succeeded.
    pod_seconds: f64,
    operator_bin: PathBuf,
    out_dir: PathBuf,
    /// Log every API request of the operator (kube_client=debug) and count them per step.
    profile: bool,
    node: String,
    workload_timeout: Duration,
    run_id: String,
    runs_a: usize,
    width_b: usize,
    runs_c: usize,
    baseline_jobs: usize,
    webhook_samples: usize,
    operator_args: Vec<String>,
    /// Delete each workload's namespace (and wait) before the next one starts.
    isolate: bool,
    /// How long the final cleanup waits for the namespaces to disappear.
    cleanup_wait: Duration,
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: cannot parse")),
        _ => default,
    }
}

impl Config {
    fn from_env() -> Config {
        let args: Vec<String> = std::env::args().collect();
        let flag = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let scale: f64 = env_or("BENCH_SCALE", 1.0);
        let scaled = |n: f64, min: usize| ((n * scale).round() as usize).max(min);
        let workloads: String = env_or("BENCH_WORKLOADS", "baseline,a,d,b,c".to_string());
        let run_id = format!("{:x}", std::process::id() as u64 * 7919 % 0xfffff);
        let node = format!("kubedag-bench-{run_id}");
        Config {
            scale,
            workloads: workloads
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            concurrency: env_or("BENCH_CONCURRENCY", kubedag::controller::DEFAULT_CONCURRENCY),
            create_concurrency: env_or("BENCH_CREATE_CONCURRENCY", 32),
            pod_seconds: env_or("BENCH_POD_SECONDS", 0.0),
            operator_bin: flag("--operator-bin")
                .or_else(|| std::env::var("BENCH_OPERATOR_BIN").ok())
                .unwrap_or_else(|| "target/release/kubedag".into())
                .into(),
            out_dir: flag("--out-dir").unwrap_or_else(|| "bench/results".into()).into(),
            profile: env_or("BENCH_PROFILE", 0u8) == 1,
            node: env_or("BENCH_NODE", node),
            workload_timeout: Duration::from_secs(env_or("BENCH_WORKLOAD_TIMEOUT", 900)),
            run_id,
            runs_a: env_or("BENCH_RUNS_A", scaled(1000.0, 1)),
            width_b: env_or("BENCH_STEPS_B", scaled(500.0, 3)),
            runs_c: env_or("BENCH_RUNS_C", scaled(10000.0, 1)),
            baseline_jobs: env_or("BENCH_BASELINE_JOBS", scaled(1000.0, 50)),
            webhook_samples: env_or("BENCH_WEBHOOK_SAMPLES", 200),
            isolate: env_or("BENCH_ISOLATE", 0u8) == 1,
            cleanup_wait: Duration::from_secs(env_or("BENCH_CLEANUP_WAIT", 180)),
            operator_args: std::env::var("BENCH_OPERATOR_ARGS")
                .map(|s| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
        }
    }

    fn wants(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }

    fn namespace(&self, workload: &str) -> String {
        format!("kubedag-bench-{}-{workload}", self.run_id)
    }
}

// ---------------------------------------------------------------------------------------------
// Time and statistics

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Seconds since the driver started (monotonic).
fn now() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[bench {:7.1}s] {}", now(), msg.as_ref());
}

#[derive(Serialize, Default, Clone, Debug)]
struct Dist {
    count: usize,
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

/// Nearest-rank percentiles.
fn dist(mut values: Vec<f64>) -> Dist {
    if values.is_empty() {
        return Dist::default();
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Dist {
        count: n,
        mean: values.iter().sum::<f64>() / n as f64,
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: values[n - 1],
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Jobs per second between the first and the last event, and over the central 90% of events.
fn rates(times: &mut [f64]) -> (Option<f64>, Option<f64>) {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = times.len();
    if n < 2 {
        return (None, None);
    }
    let span = times[n - 1] - times[0];
    let overall = (span > 0.0).then(|| (n - 1) as f64 / span);
    let (lo, hi) = ((n as f64 * 0.05) as usize, ((n as f64 * 0.95) as usize).min(n - 1));
    let window = (hi > lo && times[hi] > times[lo]).then(|| (hi - lo) as f64 / (times[hi] - times[lo]));
    (overall, window)
}

// ---------------------------------------------------------------------------------------------
// Kubernetes helpers

fn ar(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubedag.io", "v1alpha1", kind), plural)
}

fn dags(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ar("Dag", "dags"))
}

fn dagruns(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ar("DagRun", "dagruns"))
}

fn rfc3339(micros: bool) -> String {
    let ts = jiff::Timestamp::now();
    let fmt = if micros {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    jiff::fmt::strtime::format(fmt, ts).expect("formatting a timestamp")
}

async fn create_namespace(client: &Client, cfg: &Config, name: &str) -> Res<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {BENCH_LABEL: cfg.run_id}}
    }))?;
    api.create(&PostParams::default(), &ns).await?;
    // Pods need the namespace's default ServiceAccount; it appears a moment after the namespace.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let deadline = now() + 60.0;
    while sas.get_opt("default").await?.is_none() {
        if now() > deadline {
            return Err(format!("namespace {name}: no default ServiceAccount after 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Deletes the namespaces and waits (bounded) until they are gone.
async fn delete_namespaces(client: &Client, names: &[String], wait: Duration) {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let _ = api.delete(name, &DeleteParams::background()).await;
    }
    let deadline = now() + wait.as_secs_f64();
    loop {
        let mut left = Vec::new();
        for name in names {
            if let Ok(Some(_)) = api.get_opt(name).await {
                left.push(name.clone());
            }
        }
        if left.is_empty() {
            log(format!("deleted namespaces {names:?}"));
            return;
        }
        if now() > deadline {
            log(format!(
                "namespaces still terminating after {wait:?}: {left:?} (left to the namespace controller)"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated node

#[derive(Default)]
struct SimStats {
    completed: AtomicU64,
    force_deleted: AtomicU64,
    errors: AtomicU64,
}

struct Sim {
    stats: Arc<SimStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn node_status() -> Value {
    let now = rfc3339(false);
    let cond = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "simulated by kubedag-bench",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let resources = json!({"cpu": "1000", "memory": "4Ti", "pods": "1000000", "ephemeral-storage": "10Ti"});
    json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [
            cond("Ready", "True", "KubeletReady"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
        ],
        "nodeInfo": {"kubeletVersion": "v1.35.4", "kubeProxyVersion": "", "operatingSystem": "linux",
                     "architecture": "amd64", "containerRuntimeVersion": "simulated://kubedag-bench",
                     "osImage": "simulated", "kernelVersion": "simulated", "machineID": "", "systemUUID": "",
                     "bootID": ""},
    }})
}

/// Creates (or re-applies) the simulated Node object.
async fn apply_node(client: &Client, node: &str) -> Res<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let object = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "labels": {
            "kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            SIM_LABEL: "true"}},
        "spec": {"taints": [{"key": SIM_LABEL, "value": "true", "effect": "NoSchedule"}]},
    });
    nodes
        .patch(node, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(object))
        .await?;
    Ok(())
}

async fn heartbeat(client: &Client, node: &str) -> Res<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let status = Patch::Merge(node_status());
    match nodes.patch_status(node, &PatchParams::default(), &status).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {
            // Someone deleted it: bring it back, or its pods would never complete.
            log(format!("simulated node {node} was deleted; re-creating it"));
            apply_node(client, node).await?;
            nodes.patch_status(node, &PatchParams::default(), &status).await?;
        }
        other => {
            other?;
        }
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": rfc3339(true)},
    });
    leases
        .patch(node, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(lease))
        .await?;
    Ok(())
}

impl Sim {
    async fn start(client: &Client, cfg: &Config) -> Res<Sim> {
        let node = cfg.node.clone();
        apply_node(client, &node).await?;
        heartbeat(client, &node).await?;
        log(format!(
            "simulated node {node} is Ready (taint {SIM_LABEL}=true:NoSchedule)"
        ));
        let stats = Arc::new(SimStats::default());
        let beat = {
            let (client, node) = (client.clone(), node.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    if let Err(err) = heartbeat(&client, &node).await {
                        log(format!("simulated node heartbeat failed: {err}"));
                    }
                }
            })
        };
        let completer = tokio::spawn(complete_pods(
            client.clone(),
            node,
            stats.clone(),
            Duration::from_secs_f64(cfg.pod_seconds),
        ));
        Ok(Sim {
            stats,
            tasks: vec![beat, completer],
        })
    }

    /// Stops the heartbeat and the completer, and deletes the node and its Lease.
    async fn stop(self, client: &Client, node: &str) {
        for task in self.tasks {
            task.abort();
        }
        let _ = Api::<Node>::all(client.clone())
            .delete(node, &DeleteParams::default())
            .await;
        let _ = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
            .delete(node, &DeleteParams::default())
            .await;
        log(format!("deleted the simulated node {node}"));
    }
}

/// Watches the pods bound to the simulated node and does the kubelet's part: marks each one
/// Succeeded with a terminated container (exit code 0), and finishes their deletion (grace 0).
async fn complete_pods(client: Client, node: String, stats: Arc<SimStats>, delay: Duration) {
    let api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut completed: HashSet<String> = HashSet::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => pod,
            Ok(_) => continue,
            Err(err) => {
                log(format!("simulated node: pod watch error: {err}"));
                continue;
            }
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let terminal = phase == "Succeeded" || phase == "Failed";
        let uid = pod.uid().unwrap_or_default();
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let (stats, permits) = (stats.clone(), permits.clone());
        if pod.metadata.deletion_timestamp.is_some() {
            if !terminal && deleted.insert(uid) {
                tokio::spawn(async move {
                    let _permit = permits.acquire().await;
                    let params = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    };
                    if pods.delete(&name, &params).await.is_ok() {
                        stats.force_deleted.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            continue;
        }
        if terminal || !completed.insert(uid) {
            continue;
        }
        let containers: Vec<(String, String)> = pod
            .spec
            .as_ref()
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        tokio::spawn(async move {
            let _permit = permits.acquire().await;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let at = rfc3339(false);
            let statuses: Vec<Value> = containers
                .iter()
                .map(|(c, image)| {
                    json!({"name": c, "image": image, "imageID": "", "ready": false, "restartCount": 0,
                           "started": false,
                           "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                    "startedAt": at, "finishedAt": at}}})
                })
                .collect();
            let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": at});
            let patch = json!({"status": {
                "phase": "Succeeded", "startTime": at,
                "conditions": [cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False")],
                "containerStatuses": statuses,
            }});
            for attempt in 0..5 {
                match pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch.clone()))
                    .await
                {
                    Ok(_) => {
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => return,
                    Err(_) if attempt < 4 => tokio::time::sleep(Duration::from_millis(200 << attempt)).await,
                    Err(err) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        log(format!("simulated node: could not complete pod {ns}/{name}: {err}"));
                    }
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Watch-based recorder: when each Job appeared and completed, when each run finished.

#[derive(Clone, Debug, Default)]
struct JobRec {
    run: String,
    step: String,
    added: f64,
    complete: Option<f64>,
    failed: bool,
}

#[derive(Clone, Debug, Default)]
struct RunRec {
    created: Option<f64>,
    finished: Option<f64>,
    phase: String,
}

#[derive(Default)]
struct Recorder {
    jobs: Mutex<HashMap<String, JobRec>>,
    runs: Mutex<HashMap<String, RunRec>>,
}

struct Recording {
    rec: Arc<Recorder>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Recording {
    /// Starts watching Jobs and DagRuns of `ns`; returns once both initial lists are in.
    async fn start(client: &Client, ns: &str) -> Recording {
        let rec = Arc::new(Recorder::default());
        let (jobs_ready_tx, jobs_ready) = tokio::sync::oneshot::channel::<()>();
        let (runs_ready_tx, runs_ready) = tokio::sync::oneshot::channel::<()>();
        let jobs_task = {
            let (rec, api) = (rec.clone(), Api::<Job>::namespaced(client.clone(), ns));
            tokio::spawn(async move {
                let stream = watcher(api, watcher::Config::default()).default_backoff();
                futures::pin_mut!(stream);
                let mut ready = Some(jobs_ready_tx);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(Event::Apply(job)) | Ok(Event::InitApply(job)) => record_job(&rec, &job, now()),
                        Ok(Event::InitDone) => {
                            if let Some(tx) = ready.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(_) => {}
                        Err(err) => log(format!("job watch error: {err}")),
                    }
                }
            })
        };
        let runs_task = {
            let (rec, api) = (rec.clone(), dagruns(client, ns));
            tokio::spawn(async move {
                let stream = watcher(api, watcher::Config::default()).default_backoff();
                futures::pin_mut!(stream);
                let mut ready = Some(runs_ready_tx);
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(Event::Apply(run)) | Ok(Event::InitApply(run)) => record_run(&rec, &run, now()),
                        Ok(Event::InitDone) => {
                            if let Some(tx) = ready.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(_) => {}
                        Err(err) => log(format!("dagrun watch error: {err}")),
                    }
                }
            })
        };
        let _ = jobs_ready.await;
        let _ = runs_ready.await;
        Recording {
            rec,
            tasks: vec![jobs_task, runs_task],
        }
    }

    fn stop(self) -> Arc<Recorder> {
        for task in self.tasks {
            task.abort();
        }
        self.rec
    }
}

fn record_job(rec: &Recorder, job: &Job, at: f64) {
    let name = job.name_any();
    let labels = job.labels();
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is_true = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
    let mut jobs = rec.jobs.lock().unwrap();
    let entry = jobs.entry(name).or_insert_with(|| JobRec {
        run: labels.get("kubedag.io/run").cloned().unwrap_or_default(),
        step: labels.get("kubedag.io/step").cloned().unwrap_or_default(),
        added: at,
        complete: None,
        failed: false,
    });
    if entry.complete.is_none() && (is_true("Complete") || is_true("Failed")) {
        entry.complete = Some(at);
        entry.failed = is_true("Failed");
    }
}

fn record_run(rec: &Recorder, run: &DynamicObject, at: f64) {
    let phase = run
        .data
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed" | "Cancelled" | "Rejected");
    let mut runs = rec.runs.lock().unwrap();
    let entry = runs.entry(run.name_any()).or_default();
    if terminal && entry.finished.is_none() {
        entry.finished = Some(at);
    }
    entry.phase = phase;
}

// ---------------------------------------------------------------------------------------------
// The operator process

#[derive(Serialize, Default, Clone, Debug)]
struct ProcStats {
    peak_rss_mib: f64,
    rss_mib: f64,
    cpu_seconds: f64,
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may contain spaces) start at field 3; utime/stime are 14/15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ProcStats {
        peak_rss_mib: round2(kib("VmHWM:") / 1024.0),
        rss_mib: round2(kib("VmRSS:") / 1024.0),
        cpu_seconds: round2((ticks(11) + ticks(12)) / clock_ticks()),
    }
}

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

struct Operator {
    child: Child,
    pid: u32,
    port: u16,
    log_path: PathBuf,
    started: f64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// A plain HTTP GET to the operator's local endpoint; (status code, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((code, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl Operator {
    fn start(cfg: &Config, ns: &str, label: &str, extra: &[String]) -> Res<Operator> {
        let port = free_port();
        std::fs::create_dir_all(&cfg.out_dir)?;
        let log_path = cfg.out_dir.join(format!("operator-{label}.log"));
        let logfile = std::fs::File::create(&log_path)?;
        let rust_log = if cfg.profile {
            "info,kube=warn,kube_client=debug"
        } else {
            "info,kube=warn"
        };
        let mut command = Command::new(&cfg.operator_bin);
        command
            .args(["operator", "--namespace", ns])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--concurrency", &cfg.concurrency.to_string()])
            .args(&cfg.operator_args)
            .args(extra)
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(logfile.try_clone()?))
            .stderr(Stdio::from(logfile));
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", cfg.operator_bin.display()))?;
        let pid = child.id();
        CHILDREN.lock().unwrap().push(pid);
        log(format!(
            "operator pid {pid} for {ns} (metrics 127.0.0.1:{port}, log {})",
            log_path.display()
        ));
        Ok(Operator {
            child,
            pid,
            port,
            log_path,
            started: now(),
        })
    }

    async fn wait_ready(&mut self) -> Res<()> {
        let deadline = now() + 120.0;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the operator exited ({status}); see {}", self.log_path.display()).into());
            }
            let port = self.port;
            let ready = tokio::task::spawn_blocking(move || http_get(port, "/readyz")).await?;
            if matches!(ready, Some((200, _))) {
                return Ok(());
            }
            if now() > deadline {
                return Err("the operator did not become ready in 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn metrics(&self) -> Prom {
        let port = self.port;
        let body = tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
            .await
            .ok()
            .flatten()
            .map(|(_, body)| body)
            .unwrap_or_default();
        Prom::parse(&body)
    }

    /// Reads the process figures, then stops it (SIGTERM, then SIGKILL after 10 s).
    async fn stop(mut self) -> ProcStats {
        let stats = proc_stats(self.pid);
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = now() + 10.0;
        while now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        CHILDREN.lock().unwrap().retain(|p| *p != self.pid);
        stats
    }
}

fn kill_children() {
    for pid in CHILDREN.lock().unwrap().drain(..) {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus text

struct Prom(Vec<(String, BTreeMap<String, String>, f64)>);

impl Prom {
    fn parse(text: &str) -> Prom {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let mut labels = BTreeMap::new();
                    for pair in rest.trim_end_matches('}').split(',').filter(|p| !p.is_empty()) {
                        if let Some((k, v)) = pair.split_once('=') {
                            labels.insert(k.to_string(), v.trim_matches('"').to_string());
                        }
                    }
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Prom(samples)
    }

    fn sum(&self, name: &str) -> f64 {
        self.0.iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| v).sum()
    }

    fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (n, labels, v) in &self.0 {
            if n == name {
                *out.entry(labels.get(label).cloned().unwrap_or_default()).or_insert(0.0) += v;
            }
        }
        out
    }

    /// Quantile of a histogram by linear interpolation inside the bucket, in the metric's unit.
    fn histogram_quantile(&self, base: &str, q: f64) -> Option<f64> {
        let mut buckets: Vec<(f64, f64)> = self
            .0
            .iter()
            .filter(|(n, _, _)| n == &format!("{base}_bucket"))
            .filter_map(|(_, labels, v)| {
                let le = labels.get("le")?;
                let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                Some((bound, *v))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let total = buckets.last()?.1;
        if total == 0.0 {
            return None;
        }
        let target = q * total;
        let (mut prev_bound, mut prev_count) = (0.0, 0.0);
        for (bound, count) in buckets {
            if count >= target {
                if bound.is_infinite() {
                    // Beyond the largest finite bucket: reported as that bound, marked "≥" in the table.
                    return Some(prev_bound);
                }
                let width = count - prev_count;
                let frac = if width > 0.0 {
                    (target - prev_count) / width
                } else {
                    1.0
                };
                return Some(prev_bound + (bound - prev_bound) * frac);
            }
            (prev_bound, prev_count) = (bound, count);
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Request profile (BENCH_PROFILE=1): every request the operator's kube client sent, from its log.

fn request_profile(log_path: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for raw in text.lines().filter(|l| l.contains("requesting")) {
        let line = strip_ansi(raw);
        let field = |key: &str| {
            line.split(key)
                .nth(1)
                .map(|rest| rest.split([' ', '}']).next().unwrap_or("").to_string())
        };
        let (Some(method), Some(url)) = (field("http.method="), field("http.url=")) else {
            continue;
        };
        counts
            .entry(format!("{method} {}", normalize_url(&url)))
            .and_modify(|c| *c += 1)
            .or_insert(1u64);
    }
    counts
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `https://host/apis/batch/v1/namespaces/NS/jobs/NAME/status?x` -> `/apis/batch/v1/jobs/{name}/status`.
fn normalize_url(url: &str) -> String {
    let path_and_query = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        if segments[i] == "namespaces" && i + 2 < segments.len() {
            out.push(segments[i + 2].to_string());
            if i + 3 < segments.len() {
                out.push("{name}".into());
            }
            out.extend(segments.iter().skip(i + 4).map(|s| s.to_string()));
            break;
        }
        out.push(segments[i].to_string());
        i += 1;
    }
    let mut label = format!("/{}", out.join("/"));
    if query.contains("watch=true") {
        label.push_str(" (watch)");
    } else if query.contains("dryRun") {
        label.push_str(" (dry-run)");
    } else if out.last().map(String::as_str) != Some("{name}") && query.contains("labelSelector") {
        label.push_str(" (list, selector)");
    }
    label
}

// ---------------------------------------------------------------------------------------------
// Workload definitions

fn dag_object(name: &str, steps: Vec<Value>) -> Res<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "Dag",
        "metadata": {"name": name},
        "spec": {
            "params": [{"name": "file"}],
            "defaults": {
                "image": STEP_IMAGE, "imagePullPolicy": "IfNotPresent",
                "nodeSelector": {SIM_LABEL: "true"},
                "tolerations": [{"operator": "Exists"}],
            },
            "steps": steps,
        },
    }))?)
}

fn step(name: &str, depends: &[String]) -> Value {
    if depends.is_empty() {
        json!({"name": name, "script": "true"})
    } else {
        json!({"name": name, "script": "true", "depends": depends})
    }
}

struct Shape {
    dag: String,
    steps: Vec<(String, Vec<String>)>,
}

impl Shape {
    fn diamond() -> Shape {
        let root = vec!["fetch".to_string()];
        let middle: Vec<String> = (1..=3).map(|i| format!("calibrate-{i}")).collect();
        let mut steps = vec![("fetch".to_string(), vec![])];
        steps.extend(middle.iter().map(|m| (m.clone(), root.clone())));
        steps.push(("merge".to_string(), middle));
        Shape {
            dag: "diamond".into(),
            steps,
        }
    }

    /// `start` -> `width - 2` parallel steps -> `end`.
    fn wide(width: usize) -> Shape {
        let root = vec!["start".to_string()];
        let middle: Vec<String> = (1..=width.saturating_sub(2)).map(|i| format!("w-{i:04}")).collect();
        let mut steps = vec![("start".to_string(), vec![])];
        steps.extend(middle.iter().map(|m| (m.clone(), root.clone())));
        steps.push(("end".to_string(), middle));
        Shape {
            dag: "wide".into(),
            steps,
        }
    }

    fn single() -> Shape {
        Shape {
            dag: "single".into(),
            steps: vec![("work".to_string(), vec![])],
        }
    }

    fn object(&self) -> Res<DynamicObject> {
        dag_object(&self.dag, self.steps.iter().map(|(n, d)| step(n, d)).collect())
    }
}

fn run_object(name: &str, dag: &str, file: &str) -> Res<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DagRun",
        "metadata": {"name": name},
        "spec": {"dagRef": {"name": dag}, "params": {"file": file}},
    }))?)
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Serialize, Default, Clone, Debug)]
struct BaselineResult {
    jobs_per_phase: usize,
    concurrency: usize,
    /// Jobs/s of `create` alone (watch-observed: first to last Job seen).
    create_only_jobs_per_s: f64,
    /// Jobs/s when each Job create is followed by one status write (merge patch of a DagRun's status).
    create_and_status_jobs_per_s: f64,
    /// Same, timed by the client (first request sent to last response).
    create_and_status_client_jobs_per_s: f64,
    create_latency_ms: Dist,
    status_latency_ms: Dist,
    /// Jobs/s through the whole pipeline (created -> pod -> Complete) in the create+status phase.
    completion_jobs_per_s: f64,
}

#[derive(Serialize, Default, Clone, Debug)]
struct WorkloadResult {
    key: String,
    description: String,
    namespace: String,
    runs: usize,
    steps_per_run: usize,
    timed_out: bool,
    runs_finished: usize,
    runs_succeeded: usize,
    jobs_seen: usize,
    jobs_failed: usize,
    /// Seconds to create all the DagRuns (the driver's creates).
    create_phase_s: f64,
    /// Step Jobs created per second, first to last (watch-observed).
    launch_jobs_per_s: f64,
    /// Same over the central 90% of launches.
    launch_jobs_per_s_p5_p95: f64,
    launch_ratio: f64,
    /// Launch throughput over the plain client's Job pipeline rate (create -> pod -> Complete):
    /// the bound for steps that wait for other steps.
    launch_ratio_pipeline: f64,
    /// Jobs that reached Complete per second (from the first Job created to the last Complete).
    completion_jobs_per_s: f64,
    /// Dependency satisfied (last dependency's Job seen Complete) -> next Job seen created.
    transition_ms: Dist,
    /// The operator's own histogram `kubedag_step_launch_latency_seconds` (bucket-interpolated).
    operator_histogram_p50_ms: Option<f64>,
    operator_histogram_p99_ms: Option<f64>,
    /// DagRun create returned -> terminal phase seen.
    run_duration_s: Dist,
    /// First create sent -> last run finished.
    makespan_s: f64,
    operator: ProcStats,
    operator_cpu_utilisation: f64,
    status_bytes_mean: f64,
    status_bytes_max: f64,
    object_bytes_mean: f64,
    object_bytes_max: f64,
    steps_launched: f64,
    api_writes: BTreeMap<String, f64>,
    api_writes_total: f64,
    writes_per_step: f64,
    reconciles: f64,
    reconcile_errors: BTreeMap<String, f64>,
    sim_pods_completed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests_per_step: Option<f64>,
}

#[derive(Serialize, Default, Clone, Debug)]
struct WebhookResult {
    namespace: String,
    existing_runs: usize,
    samples: usize,
    /// `create` with dryRun=All of a new DagRun in a namespace the webhook does not cover.
    without_webhook_ms: Dist,
    /// The same with the operator's validating webhook registered (failurePolicy Fail).
    with_webhook_ms: Dist,
    overhead_p50_ms: f64,
    overhead_p99_ms: f64,
    operator: ProcStats,
}

// ---------------------------------------------------------------------------------------------
// The plain-client baseline

fn baseline_job(ns: &str, name: &str, holder: &str, i: usize) -> Res<Job> {
    let labels = json!({
        "kubedag.io/dag": "baseline", "kubedag.io/run": holder, "kubedag.io/step": format!("s{i}"),
        "kubedag.io/attempt": "1", "kubedag.io/request-id": format!("req-{i}"),
        "kubedag.io/param-hash": "0123456789abcdef0123456789abcdef",
    });
    let env: Vec<Value> = [
        ("file", format!("f{i}.fits")),
        ("KUBEDAG_DAG", "baseline".into()),
        ("KUBEDAG_RUN", holder.into()),
        ("KUBEDAG_STEP", format!("s{i}")),
        ("KUBEDAG_REQUEST_ID", format!("req-{i}")),
        ("KUBEDAG_PARAM_HASH", "0".repeat(64)),
    ]
    .iter()
    .map(|(k, v)| json!({"name": k, "value": v}))
    .collect();
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "backoffLimit": 0, "completions": 1, "parallelism": 1,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never", "enableServiceLinks": false, "terminationGracePeriodSeconds": 5,
                    "nodeSelector": {SIM_LABEL: "true"}, "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "work", "image": STEP_IMAGE, "imagePullPolicy": "IfNotPresent",
                                    "command": ["sh", "-c", "true"], "env": env}],
                },
            },
        },
    }))?)
}

async fn wait_jobs_complete(rec: &Recorder, prefix: &str, n: usize, timeout: f64) -> bool {
    let deadline = now() + timeout;
    loop {
        let done = rec
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, j)| name.starts_with(prefix) && j.complete.is_some())
            .count();
        if done >= n {
            return true;
        }
        if now() > deadline {
            log(format!(
                "baseline: only {done}/{n} Jobs {prefix}* complete after {timeout} s"
            ));
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn baseline(client: &Client, cfg: &Config) -> Res<BaselineResult> {
    let ns = cfg.namespace("baseline");
    create_namespace(client, cfg, &ns).await?;
    let n = cfg.baseline_jobs;
    let workers = cfg.concurrency as usize;
    // Status targets: DagRuns nobody reconciles here (no operator watches this namespace).
    let holders: Vec<String> = (0..workers.max(1)).map(|i| format!("holder-{i}")).collect();
    let runs = dagruns(client, &ns);
    for holder in &holders {
        runs.create(&PostParams::default(), &run_object(holder, "baseline", holder)?)
            .await?;
    }
    let recording = Recording::start(client, &ns).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);

    // Phase 1: Job creates only.
    log(format!("baseline: {n} Job creates, {workers} in parallel"));
    let create_only = futures::stream::iter(0..n)
        .map(|i| {
            let (jobs, ns) = (jobs.clone(), ns.clone());
            async move {
                let job = baseline_job(&ns, &format!("c-{i:05}"), "holder-0", i)?;
                jobs.create(&PostParams::default(), &job).await?;
                Ok::<(), BoxError>(())
            }
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await;
    let errors = create_only.iter().filter(|r| r.is_err()).count();
    if errors > 0 {
        log(format!("baseline: {errors} creates failed"));
    }
    wait_jobs_complete(&recording.rec, "c-", n - errors, 600.0).await;
    let mut create_only_times: Vec<f64> = recording
        .rec
        .jobs
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("c-"))
        .map(|(_, j)| j.added)
        .collect();
    let (create_only_rate, _) = rates(&mut create_only_times);

    // Phase 2: each Job create followed by a status write.
    log(format!("baseline: {n} Job creates each followed by a status write"));
    let t0 = now();
    let samples = futures::stream::iter(0..n)
        .map(|i| {
            let (jobs, runs, ns) = (jobs.clone(), runs.clone(), ns.clone());
            let holder = holders[i % holders.len()].clone();
            async move {
                let job = baseline_job(&ns, &format!("s-{i:05}"), &holder, i)?;
                let start = now();
                jobs.create(&PostParams::default(), &job).await?;
                let created = now();
                let patch = json!({"status": {"phase": "Running", "message": format!("job {i} created")}});
                runs.patch_status(&holder, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                Ok::<(f64, f64), BoxError>((created - start, now() - created))
            }
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await;
    let client_span = now() - t0;
    let ok: Vec<(f64, f64)> = samples.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    if ok.len() < n {
        log(format!("baseline: {} create+status pairs failed", n - ok.len()));
    }
    wait_jobs_complete(&recording.rec, "s-", ok.len(), 600.0).await;
    let rec = recording.stop();
    let phase2: Vec<JobRec> = rec
        .jobs
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("s-"))
        .map(|(_, j)| j.clone())
        .collect();
    let mut added: Vec<f64> = phase2.iter().map(|j| j.added).collect();
    let (with_status_rate, _) = rates(&mut added);
    let first = added.first().copied().unwrap_or(0.0);
    let last_complete = phase2.iter().filter_map(|j| j.complete).fold(0.0, f64::max);
    let result = BaselineResult {
        jobs_per_phase: n,
        concurrency: workers,
        create_only_jobs_per_s: round2(create_only_rate.unwrap_or(0.0)),
        create_and_status_jobs_per_s: round2(with_status_rate.unwrap_or(0.0)),
        create_and_status_client_jobs_per_s: round2(ok.len() as f64 / client_span),
        create_latency_ms: ms_dist(ok.iter().map(|s| s.0).collect()),
        status_latency_ms: ms_dist(ok.iter().map(|s| s.1).collect()),
        completion_jobs_per_s: round2(phase2.len() as f64 / (last_complete - first).max(1e-9)),
    };
    log(format!(
        "baseline: create only {:.1} Jobs/s, create + status {:.1} Jobs/s, pipeline {:.1} Jobs/s",
        result.create_only_jobs_per_s, result.create_and_status_jobs_per_s, result.completion_jobs_per_s
    ));
    Ok(result)
}

fn ms_dist(seconds: Vec<f64>) -> Dist {
    let d = dist(seconds.into_iter().map(|s| s * 1000.0).collect());
    Dist {
        mean: round2(d.mean),
        p50: round2(d.p50),
        p90: round2(d.p90),
        p99: round2(d.p99),
        max: round2(d.max),
        ..d
    }
}

fn s_dist(seconds: Vec<f64>) -> Dist {
    let d = dist(seconds);
    Dist {
        mean: round2(d.mean),
        p50: round2(d.p50),
        p90: round2(d.p90),
        p99: round2(d.p99),
        max: round2(d.max),
        ..d
    }
}

// ---------------------------------------------------------------------------------------------
// Operator workloads

async fn wait_dag_seen(client: &Client, ns: &str, dag: &str) {
    // The operator's Dag reconciler sets Valid=True once it has the Dag in its cache.
    let api = dags(client, ns);
    let deadline = now() + 30.0;
    while now() < deadline {
        if let Ok(Some(d)) = api.get_opt(dag).await {
            let valid = d
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Valid" && c["status"] == "True"));
            if valid {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    log(format!("Dag {ns}/{dag} not marked Valid after 30 s; going on"));
}

/// Creates `n` runs of `dag` in parallel; returns (name, create-returned time) per run.
async fn create_runs(client: &Client, cfg: &Config, ns: &str, dag: &str, prefix: &str, n: usize) -> Vec<(String, f64)> {
    let api = dagruns(client, ns);
    let results = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i:05}");
            let file = format!("{ns}-{i:05}.fits");
            async move {
                let object = run_object(&name, dag, &file)?;
                for attempt in 0..5 {
                    match api.create(&PostParams::default(), &object).await {
                        Ok(_) => return Ok((name, now())),
                        Err(kube::Error::Api(e)) if e.code == 409 => return Ok((name, now())),
                        Err(_) if attempt < 4 => tokio::time::sleep(Duration::from_millis(500)).await,
                        Err(err) => return Err(BoxError::from(format!("creating {name}: {err}"))),
                    }
                }
                unreachable!()
            }
        })
        .buffer_unordered(cfg.create_concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut ok = Vec::new();
    for r in results {
        match r {
            Ok(x) => ok.push(x),
            Err(err) => log(format!("{err}")),
        }
    }
    ok
}

struct Baseline {
    rate: f64,
    pipeline: f64,
}

#[allow(clippy::too_many_arguments)]
async fn workload(
    client: &Client,
    cfg: &Config,
    sim: &Sim,
    baseline: &Option<Baseline>,
    key: &str,
    description: String,
    shape: &Shape,
    runs: usize,
    keep_namespace: bool,
) -> Res<WorkloadResult> {
    let ns = cfg.namespace(key);
    log(format!("workload {key}: {description} in {ns}"));
    create_namespace(client, cfg, &ns).await?;
    let mut operator = Operator::start(cfg, &ns, key, &[])?;
    operator.wait_ready().await?;
    let recording = Recording::start(client, &ns).await;
    dags(client, &ns)
        .create(&PostParams::default(), &shape.object()?)
        .await?;
    wait_dag_seen(client, &ns, &shape.dag).await;
    let sim_before = sim.stats.completed.load(Ordering::Relaxed);

    let t0 = now();
    let created = create_runs(client, cfg, &ns, &shape.dag, "r", runs).await;
    let create_phase = now() - t0;
    log(format!(
        "workload {key}: {} DagRuns created in {create_phase:.1} s",
        created.len()
    ));
    {
        let mut recs = recording.rec.runs.lock().unwrap();
        for (name, at) in &created {
            recs.entry(name.clone()).or_default().created = Some(*at);
        }
    }
    let deadline = t0 + cfg.workload_timeout.as_secs_f64();
    let total_steps = runs * shape.steps.len();
    let mut last_report = now();
    let mut timed_out = false;
    loop {
        let finished = recording
            .rec
            .runs
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.finished.is_some())
            .count();
        if finished >= created.len() {
            break;
        }
        if now() > deadline {
            timed_out = true;
            log(format!(
                "workload {key}: timed out with {finished}/{} runs finished",
                created.len()
            ));
            break;
        }
        if now() - last_report > 10.0 {
            let (jobs, complete) = {
                let jobs = recording.rec.jobs.lock().unwrap();
                (jobs.len(), jobs.values().filter(|j| j.complete.is_some()).count())
            };
            log(format!(
                "workload {key}: runs finished {finished}/{}, Jobs created {jobs}/{total_steps}, Jobs complete {complete}, operator RSS {:.0} MiB",
                created.len(),
                proc_stats(operator.pid).rss_mib
            ));
            last_report = now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t_end = now();
    // Let the operator's last status writes and events settle into the counters.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let prom = operator.metrics().await;
    let wall = now() - operator.started;
    let proc = operator.stop().await;
    let rec = recording.stop();

    let jobs: Vec<JobRec> = rec.jobs.lock().unwrap().values().cloned().collect();
    let runs_recs: Vec<RunRec> = rec.runs.lock().unwrap().values().cloned().collect();
    let by_step: HashMap<(String, String), &JobRec> =
        jobs.iter().map(|j| ((j.run.clone(), j.step.clone()), j)).collect();
    let deps: HashMap<&str, &Vec<String>> = shape.steps.iter().map(|(n, d)| (n.as_str(), d)).collect();
    let mut transitions = Vec::new();
    let mut csv = String::from("run,step,created_s,complete_s,ready_s,transition_ms\n");
    let mut sorted_jobs: Vec<&JobRec> = jobs.iter().collect();
    sorted_jobs.sort_by(|a, b| a.added.partial_cmp(&b.added).unwrap());
    for job in sorted_jobs {
        let depends = deps.get(job.step.as_str()).filter(|d| !d.is_empty());
        let ready = depends.and_then(|depends| {
            depends
                .iter()
                .map(|d| by_step.get(&(job.run.clone(), d.clone())).and_then(|j| j.complete))
                .collect::<Option<Vec<f64>>>()
        });
        let ready_at = ready.map(|r| r.into_iter().fold(f64::MIN, f64::max));
        if let Some(ready_at) = ready_at {
            transitions.push((job.added - ready_at).max(0.0));
        }
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{:.3}", v - t0));
        csv.push_str(&format!(
            "{},{},{:.3},{},{},{}\n",
            job.run,
            job.step,
            job.added - t0,
            opt(job.complete),
            opt(ready_at),
            ready_at.map_or(String::new(), |r| format!("{:.1}", (job.added - r) * 1000.0))
        ));
    }
    let _ = std::fs::write(cfg.out_dir.join(format!("jobs-{key}.csv")), csv);
    let mut added: Vec<f64> = jobs.iter().map(|j| j.added).collect();
    let (launch_rate, launch_rate_window) = rates(&mut added);
    let first_added = added.first().copied().unwrap_or(t0);
    let last_complete = jobs.iter().filter_map(|j| j.complete).fold(first_added, f64::max);
    let durations: Vec<f64> = runs_recs
        .iter()
        .filter_map(|r| Some(r.finished? - r.created?))
        .collect();
    let last_finish = runs_recs.iter().filter_map(|r| r.finished).fold(t0, f64::max);

    let (status_bytes, object_bytes) = object_sizes(client, &ns).await;
    let writes = prom.by_label("kubedag_api_writes_total", "kind");
    let writes_total: f64 = writes.values().sum();
    let steps_launched = prom.sum("kubedag_steps_launched_total");
    let launch_rate = launch_rate.unwrap_or(0.0);
    let mut result = WorkloadResult {
        key: key.into(),
        description,
        namespace: ns.clone(),
        runs,
        steps_per_run: shape.steps.len(),
        timed_out,
        runs_finished: runs_recs.iter().filter(|r| r.finished.is_some()).count(),
        runs_succeeded: runs_recs.iter().filter(|r| r.phase == "Succeeded").count(),
        jobs_seen: jobs.len(),
        jobs_failed: jobs.iter().filter(|j| j.failed).count(),
        create_phase_s: round2(create_phase),
        launch_jobs_per_s: round2(launch_rate),
        launch_jobs_per_s_p5_p95: round2(launch_rate_window.unwrap_or(0.0)),
        launch_ratio: baseline
            .as_ref()
            .filter(|b| b.rate > 0.0)
            .map_or(0.0, |b| (launch_rate / b.rate * 1000.0).round() / 1000.0),
        launch_ratio_pipeline: baseline
            .as_ref()
            .filter(|b| b.pipeline > 0.0)
            .map_or(0.0, |b| (launch_rate / b.pipeline * 1000.0).round() / 1000.0),
        completion_jobs_per_s: round2(jobs.len() as f64 / (last_complete - first_added).max(1e-9)),
        transition_ms: ms_dist(transitions),
        operator_histogram_p50_ms: prom
            .histogram_quantile("kubedag_step_launch_latency_seconds", 0.5)
            .map(|s| round2(s * 1000.0)),
        operator_histogram_p99_ms: prom
            .histogram_quantile("kubedag_step_launch_latency_seconds", 0.99)
            .map(|s| round2(s * 1000.0)),
        run_duration_s: s_dist(durations),
        makespan_s: round2(last_finish - t0),
        operator_cpu_utilisation: round2(proc.cpu_seconds / wall),
        operator: proc,
        status_bytes_mean: status_bytes.mean.round(),
        status_bytes_max: status_bytes.max,
        object_bytes_mean: object_bytes.mean.round(),
        object_bytes_max: object_bytes.max,
        steps_launched,
        writes_per_step: if steps_launched > 0.0 {
            round2(writes_total / steps_launched)
        } else {
            0.0
        },
        api_writes: writes,
        api_writes_total: writes_total,
        reconciles: prom.sum("kubedag_reconciles_total"),
        reconcile_errors: prom.by_label("kubedag_reconcile_errors_total", "kind"),
        sim_pods_completed: sim.stats.completed.load(Ordering::Relaxed) - sim_before,
        requests: None,
        requests_per_step: None,
    };
    if cfg.profile {
        let requests = request_profile(&operator_log(cfg, key));
        let total: u64 = requests.values().sum();
        result.requests_per_step = (steps_launched > 0.0).then(|| round2(total as f64 / steps_launched));
        result.requests = Some(requests);
    }
    log(format!(
        "workload {key}: {} Jobs at {:.1}/s (ratio {:.2}), transition p50 {:.0} ms p99 {:.0} ms, peak RSS {:.0} MiB, CPU {:.1} s, {:.2} writes/step, in {:.1} s",
        result.jobs_seen,
        result.launch_jobs_per_s,
        result.launch_ratio,
        result.transition_ms.p50,
        result.transition_ms.p99,
        result.operator.peak_rss_mib,
        result.operator.cpu_seconds,
        result.writes_per_step,
        t_end - t0
    ));
    if cfg.isolate && !keep_namespace {
        delete_namespaces(client, &[ns], Duration::from_secs(300)).await;
    }
    Ok(result)
}

fn operator_log(cfg: &Config, label: &str) -> PathBuf {
    cfg.out_dir.join(format!("operator-{label}.log"))
}

/// (status-only JSON bytes, whole-object JSON bytes as served) over the namespace's DagRuns.
async fn object_sizes(client: &Client, ns: &str) -> (Dist, Dist) {
    let api = dagruns(client, ns);
    let (mut status, mut whole) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(500);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let Ok(page) = api.list(&params).await else { break };
        for run in &page.items {
            let mut value = serde_json::to_value(run).unwrap_or_default();
            whole.push(serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(0) as f64);
            let s = value.get_mut("status").map(|s| s.take()).unwrap_or(Value::Null);
            status.push(serde_json::to_vec(&s).map(|v| v.len()).unwrap_or(0) as f64);
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    (dist(status), dist(whole))
}

// ---------------------------------------------------------------------------------------------
// Webhook admission latency

/// One timed `create` with dryRun=All of a new DagRun (it passes admission, webhooks included,
/// and is not stored). None if it failed.
async fn dry_run_create(api: &Api<DynamicObject>, name: &str, dag: &str) -> Option<f64> {
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let object = run_object(name, dag, &format!("{name}.fits")).ok()?;
    let start = Instant::now();
    let result = api.create(&params, &object).await;
    let elapsed = start.elapsed().as_secs_f64();
    match result {
        Ok(_) => Some(elapsed),
        Err(err) => {
            log(format!("webhook: dry-run create {name} failed: {err}"));
            None
        }
    }
}

/// Whether the webhook answers: a dry-run create naming a missing Dag is refused by it (the CRD
/// schema alone accepts it).
async fn webhook_live(client: &Client, ns: &str) -> bool {
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let Ok(object) = run_object("probe", "no-such-dag", "probe.fits") else {
        return false;
    };
    matches!(dagruns(client, ns).create(&params, &object).await, Err(kube::Error::Api(e)) if e.message.contains("not found"))
}

/// Waits until the operator has gone through its initial reconciles (the counter stops moving).
async fn wait_operator_idle(operator: &Operator) {
    let mut last = -1.0;
    let deadline = now() + 60.0;
    while now() < deadline {
        let reconciles = operator.metrics().await.sum("kubedag_reconciles_total");
        if reconciles == last {
            return;
        }
        last = reconciles;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Webhook admission latency: dry-run creates of new DagRuns in `ns` (the operator's namespace,
/// where the webhook is registered, with `existing` runs in its cache), each paired with the same
/// request in a control namespace that the webhook's namespaceSelector leaves out. The pairs are
/// interleaved, so both see the same control plane at the same moment.
async fn webhook_workload(client: &Client, cfg: &Config, ns: &str, dag: &str, existing: usize) -> Res<WebhookResult> {
    let n = cfg.webhook_samples;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = configs.delete(WEBHOOK_CONFIG, &DeleteParams::default()).await;
    let control = cfg.namespace("d-control");
    create_namespace(client, cfg, &control).await?;
    let port = free_port();
    let extra: Vec<String> = [
        "--webhook-addr",
        &format!("127.0.0.1:{port}"),
        "--webhook-url",
        &format!("https://127.0.0.1:{port}"),
        "--webhook-config-name",
        WEBHOOK_CONFIG,
        "--webhook-failure-policy",
        "Fail",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut operator = Operator::start(cfg, ns, "d", &extra)?;
    let result = async {
        operator.wait_ready().await?;
        let deadline = now() + 60.0;
        while !webhook_live(client, ns).await {
            if now() > deadline {
                return Err(BoxError::from("the webhook did not start refusing invalid runs within 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if webhook_live(client, &control).await {
            return Err(BoxError::from("the webhook also answers in the control namespace"));
        }
        wait_operator_idle(&operator).await;
        log(format!(
            "webhook: {n} dry-run creates through the webhook ({existing} runs in {ns}), interleaved with {n} in {control} (no webhook)"
        ));
        let (with_api, without_api) = (dagruns(client, ns), dagruns(client, &control));
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for i in 0..(n + 10) {
            let name = format!("dry-{i:05}");
            let (a, b) = if i % 2 == 0 {
                let a = dry_run_create(&with_api, &name, dag).await;
                (a, dry_run_create(&without_api, &name, dag).await)
            } else {
                let b = dry_run_create(&without_api, &name, dag).await;
                (dry_run_create(&with_api, &name, dag).await, b)
            };
            if i >= 10 {
                // The first 10 pairs warm up connections.
                with.extend(a);
                without.extend(b);
            }
        }
        Ok((with, without))
    }
    .await;
    let proc = operator.stop().await;
    let _ = configs.delete(WEBHOOK_CONFIG, &DeleteParams::default()).await;
    delete_namespaces(client, &[control], Duration::from_secs(60)).await;
    let (with, without) = result?;
    let (without, with) = (ms_dist(without), ms_dist(with));
    let result = WebhookResult {
        namespace: ns.into(),
        existing_runs: existing,
        samples: n,
        overhead_p50_ms: round2(with.p50 - without.p50),
        overhead_p99_ms: round2(with.p99 - without.p99),
        without_webhook_ms: without,
        with_webhook_ms: with,
        operator: proc,
    };
    log(format!(
        "webhook: p50 {:.1} ms / p99 {:.1} ms with, {:.1} / {:.1} ms without",
        result.with_webhook_ms.p50,
        result.with_webhook_ms.p99,
        result.without_webhook_ms.p50,
        result.without_webhook_ms.p99
    ));
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// Report

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn markdown(
    summary: &Value,
    base: &Option<BaselineResult>,
    ws: &[WorkloadResult],
    hook: &Option<WebhookResult>,
) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "Mode: `{}`; scale {}; operator `--concurrency {}{}`; {}.\n\n",
        summary["mode"].as_str().unwrap_or(""),
        summary["scale"],
        summary["operator_concurrency"],
        summary["operator_args"]
            .as_str()
            .map_or(String::new(), |a| if a.is_empty() {
                String::new()
            } else {
                format!(" {a}")
            }),
        summary["finished_at"].as_str().unwrap_or("")
    ));
    if let Some(b) = base {
        md.push_str(&format!(
            "Plain client ({} in parallel, {} Jobs per phase): **{:.1} Jobs/s** create + status write, {:.1} Jobs/s create only; \
             Job pipeline (create → pod → Complete) {:.1} Jobs/s.\n\n",
            b.concurrency,
            b.jobs_per_phase,
            b.create_and_status_jobs_per_s,
            b.create_only_jobs_per_s,
            b.completion_jobs_per_s
        ));
    }
    if !ws.is_empty() {
        md.push_str("| figure |");
        for w in ws {
            md.push_str(&format!(" ({}) {} |", w.key, w.description));
        }
        md.push_str("\n|---|");
        for _ in ws {
            md.push_str("---:|");
        }
        md.push('\n');
        let mut row = |label: &str, f: &dyn Fn(&WorkloadResult) -> String| {
            md.push_str(&format!("| {label} |"));
            for w in ws {
                md.push_str(&format!(" {} |", f(w)));
            }
            md.push('\n');
        };
        row("runs finished / succeeded", &|w| {
            format!(
                "{} / {}{}",
                w.runs_finished,
                w.runs_succeeded,
                if w.timed_out { " (timed out)" } else { "" }
            )
        });
        row("step Jobs launched", &|w| format!("{}", w.jobs_seen));
        row("launch throughput (Jobs/s)", &|w| format!("{:.1}", w.launch_jobs_per_s));
        row("÷ plain-client rate", &|w| format!("**{:.2}**", w.launch_ratio));
        row("Jobs completed/s (whole pipeline)", &|w| {
            format!("{:.1}", w.completion_jobs_per_s)
        });
        row("dependency done → next Job created, p50 / p99 (ms)", &|w| {
            if w.transition_ms.count == 0 {
                "–".into()
            } else {
                format!("{:.0} / **{:.0}**", w.transition_ms.p50, w.transition_ms.p99)
            }
        });
        row("same, operator histogram p50 / p99 (ms)", &|w| {
            let show = |x: Option<f64>| match x {
                Some(v) if v >= 10_000.0 => "≥ 10000".to_string(),
                other => fmt_opt(other, 0),
            };
            format!(
                "{} / {}",
                show(w.operator_histogram_p50_ms),
                show(w.operator_histogram_p99_ms)
            )
        });
        row("run created → finished, p50 / p99 (s)", &|w| {
            format!("{:.1} / {:.1}", w.run_duration_s.p50, w.run_duration_s.p99)
        });
        row("all runs created in / makespan (s)", &|w| {
            format!("{:.1} / {:.1}", w.create_phase_s, w.makespan_s)
        });
        row("operator peak RSS (MiB)", &|w| {
            format!("**{:.0}**", w.operator.peak_rss_mib)
        });
        row("operator CPU (s) / utilisation", &|w| {
            format!(
                "{:.1} / {:.0}%",
                w.operator.cpu_seconds,
                w.operator_cpu_utilisation * 100.0
            )
        });
        row("DagRun JSON bytes: status / whole object (mean)", &|w| {
            format!("{:.0} / {:.0}", w.status_bytes_mean, w.object_bytes_mean)
        });
        row("API writes per step", &|w| format!("**{:.2}**", w.writes_per_step));
        row("writes by kind (per step)", &|w| {
            w.api_writes
                .iter()
                .map(|(k, v)| format!("{k} {:.2}", v / w.steps_launched.max(1.0)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        row("reconciles / errors", &|w| {
            // Summed from 0.0: an empty f64 sum is -0.0, which prints as "-0".
            let errors = w.reconcile_errors.values().fold(0.0, |a, b| a + b);
            format!("{:.0} / {:.0}", w.reconciles, errors)
        });
        if ws.iter().any(|w| w.requests_per_step.is_some()) {
            row("all API requests per step (profile)", &|w| {
                fmt_opt(w.requests_per_step, 2)
            });
        }
        md.push('\n');
    }
    if let Some(h) = hook {
        md.push_str(&format!(
            "(d) Webhook admission, {} dry-run DagRun creates with {} existing runs: p50 / p99 **{:.1} / {:.1} ms** with the webhook, \
             {:.1} / {:.1} ms without; webhook share p50 {:.1} ms, p99 {:.1} ms.\n\n",
            h.samples,
            h.existing_runs,
            h.with_webhook_ms.p50,
            h.with_webhook_ms.p99,
            h.without_webhook_ms.p50,
            h.without_webhook_ms.p99,
            h.overhead_p50_ms,
            h.overhead_p99_ms
        ));
    }
    md.push_str("| target | measured | met |\n|---|---:|:---:|\n");
    for t in summary["targets"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            t["target"].as_str().unwrap_or(""),
            t["measured"].as_str().unwrap_or(""),
            match t["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            }
        ));
    }
    md
}

// ---------------------------------------------------------------------------------------------
// Main

async fn bench(client: Client, cfg: &Config, namespaces: Arc<Mutex<Vec<String>>>) -> Res<()> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let started_at = rfc3339(false);
    let load_at_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let sim = Sim::start(&client, cfg).await?;
    let remember = |ns: String| namespaces.lock().unwrap().push(ns);

    let mut base = None;
    if cfg.wants("baseline") {
        remember(cfg.namespace("baseline"));
        base = Some(baseline(&client, cfg).await?);
        if cfg.isolate {
            delete_namespaces(&client, &[cfg.namespace("baseline")], Duration::from_secs(300)).await;
        }
    }
    let rate = base.as_ref().map(|b| Baseline {
        rate: b.create_and_status_jobs_per_s,
        pipeline: b.completion_jobs_per_s,
    });
    let mut results = Vec::new();
    let mut hook = None;
    if cfg.wants("a") {
        remember(cfg.namespace("a"));
        let r = workload(
            &client,
            cfg,
            &sim,
            &rate,
            "a",
            format!("{} concurrent runs × 5-step diamond", cfg.runs_a),
            &Shape::diamond(),
            cfg.runs_a,
            cfg.wants("d"),
        )
        .await?;
        results.push(r);
    }
    if cfg.wants("d") {
        // With 1,000 existing runs: those of (a), or runs made here when (a) was not selected.
        let (ns, dag) = if cfg.wants("a") {
            (cfg.namespace("a"), "diamond")
        } else {
            remember(cfg.namespace("d"));
            let r = workload(
                &client,
                cfg,
                &sim,
                &rate,
                "d",
                format!("{} existing runs for the webhook", cfg.runs_a),
                &Shape::single(),
                cfg.runs_a,
                true,
            )
            .await?;
            let _ = r;
            (cfg.namespace("d"), "single")
        };
        remember(cfg.namespace("d-control"));
        hook = Some(webhook_workload(&client, cfg, &ns, dag, cfg.runs_a).await?);
        if cfg.isolate {
            delete_namespaces(&client, &[ns], Duration::from_secs(300)).await;
        }
    }
    if cfg.wants("b") {
        remember(cfg.namespace("b"));
        let r = workload(
            &client,
            cfg,
            &sim,
            &rate,
            "b",
            format!("1 run × {}-step wide", cfg.width_b),
            &Shape::wide(cfg.width_b),
            1,
            false,
        )
        .await?;
        results.push(r);
    }
    if cfg.wants("c") {
        remember(cfg.namespace("c"));
        let r = workload(
            &client,
            cfg,
            &sim,
            &rate,
            "c",
            format!("{} runs × 1 step at once", cfg.runs_c),
            &Shape::single(),
            cfg.runs_c,
            false,
        )
        .await?;
        results.push(r);
    }

    let find = |k: &str| results.iter().find(|w| w.key == k);
    let (steps, writes) = results
        .iter()
        .fold((0.0, 0.0), |(s, w), r| (s + r.steps_launched, w + r.api_writes_total));
    let writes_per_step = (steps > 0.0).then(|| round2(writes / steps));
    let launch_ratio = find("a").map(|a| a.launch_ratio);
    let p99 = find("a")
        .filter(|a| a.transition_ms.count > 0)
        .map(|a| a.transition_ms.p99);
    let rss = find("c").map(|c| c.operator.peak_rss_mib);
    let c_ok = find("c").map(|c| c.runs_succeeded == c.runs && !c.timed_out);
    let target =
        |name: String, measured: String, met: Option<bool>| json!({"target": name, "measured": measured, "met": met});
    let targets = vec![
        target(
            "launch throughput ≥ 0.8 × plain-client rate (a; b and c for reference)".into(),
            ["a", "b", "c"]
                .iter()
                .filter_map(|k| find(k).map(|w| format!("{k} {:.2}", w.launch_ratio)))
                .collect::<Vec<_>>()
                .join(", "),
            launch_ratio.map(|r| r >= 0.8),
        ),
        target(
            format!("p99 dependency → launch < 250 ms at {} active runs (a)", cfg.runs_a),
            match (p99, &base) {
                (Some(p), Some(b)) => format!(
                    "{p:.0} ms (one plain-client Job create, p99 in the same run: {:.0} ms)",
                    b.create_latency_ms.p99
                ),
                (Some(p), None) => format!("{p:.0} ms"),
                _ => "–".into(),
            },
            p99.map(|p| p < 250.0),
        ),
        target(
            format!("{} runs complete with operator RSS < 256 MiB (c)", cfg.runs_c),
            match (rss, c_ok) {
                (Some(r), Some(ok)) => {
                    format!("{r:.0} MiB, {}", if ok { "all succeeded" } else { "NOT all succeeded" })
                }
                _ => "–".into(),
            },
            rss.zip(c_ok).map(|(r, ok)| r < 256.0 && ok),
        ),
        target(
            "≤ 4 API writes per step (a–c)".into(),
            fmt_opt(writes_per_step, 2),
            writes_per_step.map(|w| w <= 4.0),
        ),
    ];
    let summary = json!({
        "mode": "simulated-node",
        "scale": cfg.scale,
        "operator_concurrency": cfg.concurrency,
        "operator_args": cfg.operator_args.join(" "),
        "started_at": started_at,
        "finished_at": rfc3339(false),
        "sizes": {"runs_a": cfg.runs_a, "steps_b": cfg.width_b, "runs_c": cfg.runs_c,
                  "baseline_jobs": cfg.baseline_jobs, "webhook_samples": cfg.webhook_samples},
        "pod_seconds": cfg.pod_seconds,
        "targets": targets,
    });
    let md = markdown(&summary, &base, &results, &hook);
    let mut out = summary.clone();
    let obj = out.as_object_mut().unwrap();
    obj.insert("launch_ratio".into(), json!(launch_ratio));
    obj.insert("p99_transition_ms".into(), json!(p99));
    obj.insert("rss_mib_10k".into(), json!(rss));
    obj.insert("writes_per_step".into(), json!(writes_per_step));
    obj.insert(
        "command".into(),
        json!(std::env::var("BENCH_COMMAND").unwrap_or_else(|_| "make bench".into())),
    );
    obj.insert(
        "host".into(),
        json!({"nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
               "load_average_at_start": load_at_start.trim(),
               "load_average_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()}),
    );
    obj.insert(
        "sim".into(),
        json!({"node": cfg.node,
        "pods_completed": sim.stats.completed.load(Ordering::Relaxed),
        "pods_force_deleted": sim.stats.force_deleted.load(Ordering::Relaxed),
        "errors": sim.stats.errors.load(Ordering::Relaxed)}),
    );
    obj.insert("baseline".into(), serde_json::to_value(&base)?);
    obj.insert(
        "workloads".into(),
        serde_json::to_value(
            results
                .iter()
                .map(|w| (w.key.clone(), w.clone()))
                .collect::<BTreeMap<_, _>>(),
        )?,
    );
    obj.insert("webhook".into(), serde_json::to_value(&hook)?);
    std::fs::write(
        cfg.out_dir.join("latest.json"),
        serde_json::to_string_pretty(&out)? + "\n",
    )?;
    std::fs::write(cfg.out_dir.join("latest.md"), &md)?;

    // The namespaces go before the node, so the completer can still finish deleting pods bound to
    // it; what is still terminating after the wait is left to the namespace controller (the pod
    // garbage collector force-deletes pods whose node is gone).
    let left: Vec<String> = namespaces.lock().unwrap().clone();
    delete_namespaces(&client, &left, cfg.cleanup_wait).await;
    sim.stop(&client, &cfg.node).await;
    println!("{md}");
    Ok(())
}

#[tokio::main]
async fn main() {
    let _ = now();
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "kubedag-bench [--operator-bin PATH] [--out-dir DIR]\n\
             kubedag-bench profile-log OPERATOR.LOG...   (count the requests of a kube_client=debug log)\n\
             Benchmarks the kubedag operator against the cluster in KUBECONFIG (see bench/README.md).\n\
             Environment: BENCH_SCALE, BENCH_WORKLOADS (baseline,a,d,b,c), BENCH_CONCURRENCY, BENCH_CREATE_CONCURRENCY,\n\
             BENCH_POD_SECONDS, BENCH_PROFILE=1, BENCH_RUNS_A, BENCH_STEPS_B, BENCH_RUNS_C, BENCH_BASELINE_JOBS,\n\
             BENCH_WEBHOOK_SAMPLES, BENCH_WORKLOAD_TIMEOUT, BENCH_OPERATOR_ARGS, BENCH_NODE"
        );
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("profile-log") {
        // Counts the requests in an operator log written with RUST_LOG=kube_client=debug.
        let mut out = std::io::stdout().lock();
        for path in &args[2..] {
            let counts = request_profile(Path::new(path));
            let _ = writeln!(out, "{path}: {} requests", counts.values().sum::<u64>());
            let mut sorted: Vec<_> = counts.into_iter().collect();
            sorted.sort_by_key(|entry| std::cmp::Reverse(entry.1));
            for (request, n) in sorted {
                let _ = writeln!(out, "{n:>8}  {request}");
            }
        }
        return;
    }
    let _ = rustls_provider();
    let cfg = Config::from_env();
    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(err) => {
            eprintln!("kubedag-bench: no cluster: {err}");
            std::process::exit(2);
        }
    };
    let namespaces = Arc::new(Mutex::new(Vec::new()));
    let outcome = tokio::select! {
        r = bench(client.clone(), &cfg, namespaces.clone()) => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    };
    if let Err(err) = outcome {
        eprintln!("kubedag-bench: {err}");
        kill_children();
        let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(WEBHOOK_CONFIG, &DeleteParams::default())
            .await;
        let left: Vec<String> = namespaces.lock().unwrap().clone();
        delete_namespaces(&client, &left, Duration::from_secs(120)).await;
        let _ = Api::<Node>::all(client.clone())
            .delete(&cfg.node, &DeleteParams::default())
            .await;
        let _ = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
            .delete(&cfg.node, &DeleteParams::default())
            .await;
        std::process::exit(1);
    }
}

/// kube's rustls client needs a process-wide crypto provider (ring), as in the operator.
fn rustls_provider() -> Result<(), std::sync::Arc<rustls::crypto::CryptoProvider>> {
    rustls::crypto::ring::default_provider().install_default()
}
