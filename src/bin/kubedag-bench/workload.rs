//! One operator workload ((a), (b), (c), and the existing runs of (d)): its own namespace and
//! operator process, one Dag, many DagRuns created at once; waits until every run finished (or
//! `BENCH_WORKLOAD_TIMEOUT`) and turns what the recorder saw, the operator's metrics and its
//! process figures into a [`WorkloadResult`].

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{ListParams, PostParams};
use kubedag::testkit::poll;
use serde::Serialize;
use serde_json::Value;

use crate::clock::{log, now};
use crate::config::Config;
use crate::process::{ProcStats, proc_stats};
use crate::recorder::{JobRec, Recorder, Recording, RunRec};
use crate::shapes::{Shape, dagruns, dags, run_object};
use crate::sim_node::Sim;
use crate::stats::{Dist, dist, ms_dist, rates, round2, s_dist};
use crate::timeline::transitions;
use crate::{BoxError, Res, namespaces, operator};

/// What to run.
pub struct Workload {
    /// `a`, `b`, `c` or `d`: namespace suffix, log label, key in latest.json.
    pub key: &'static str,
    pub description: String,
    pub shape: Shape,
    pub runs: usize,
    /// Keep the namespace even with `BENCH_ISOLATE=1` (the webhook workload reuses it).
    pub keep_namespace: bool,
}

impl Workload {
    /// Workload `key` (`a`, `b`, `c`, or `d`: the existing runs of the webhook workload when
    /// (a) is not selected) at the configured sizes.
    pub fn of(cfg: &Config, key: &'static str) -> Workload {
        let (description, shape, runs) = match key {
            "a" => (
                format!("{} concurrent runs × 5-step diamond", cfg.runs_a),
                Shape::diamond(),
                cfg.runs_a,
            ),
            "b" => (
                format!("1 run × {}-step wide", cfg.width_b),
                Shape::wide(cfg.width_b),
                1,
            ),
            "c" => (
                format!("{} runs × 1 step at once", cfg.runs_c),
                Shape::single(),
                cfg.runs_c,
            ),
            _ => (
                format!("{} existing runs for the webhook", cfg.runs_a),
                Shape::single(),
                cfg.runs_a,
            ),
        };
        // (d) runs in (a)'s namespace, or in its own: either must survive BENCH_ISOLATE until then.
        let keep_namespace = match key {
            "a" => cfg.wants("d"),
            "b" | "c" => false,
            _ => true,
        };
        Workload {
            key,
            description,
            shape,
            runs,
            keep_namespace,
        }
    }
}

/// The plain client's rates the launch rate is compared to (Jobs/s).
pub struct Limits {
    /// Create + status write.
    pub rate: f64,
    /// The Job pipeline, created -> Complete.
    pub pipeline: f64,
}

/// The workload's figures (`workloads.<key>` in latest.json).
#[derive(Serialize, Default, Clone, Debug)]
pub struct WorkloadResult {
    pub key: String,
    pub description: String,
    pub namespace: String,
    pub runs: usize,
    pub steps_per_run: usize,
    pub timed_out: bool,
    pub runs_finished: usize,
    pub runs_succeeded: usize,
    pub jobs_seen: usize,
    pub jobs_failed: usize,
    /// Seconds to create all the DagRuns (the driver's creates).
    pub create_phase_s: f64,
    /// Step Jobs created per second, first to last (watch-observed).
    pub launch_jobs_per_s: f64,
    /// Same over the central 90% of launches.
    pub launch_jobs_per_s_p5_p95: f64,
    pub launch_ratio: f64,
    /// Launch throughput over the plain client's Job pipeline rate (create -> pod -> Complete):
    /// the bound for steps that wait for other steps.
    pub launch_ratio_pipeline: f64,
    /// Jobs that reached Complete per second (from the first Job created to the last Complete).
    pub completion_jobs_per_s: f64,
    /// Dependency satisfied (last dependency's Job seen Complete) -> next Job seen created.
    pub transition_ms: Dist,
    /// The operator's own histogram `kubedag_step_launch_latency_seconds` (bucket-interpolated).
    pub operator_histogram_p50_ms: Option<f64>,
    pub operator_histogram_p99_ms: Option<f64>,
    /// DagRun create returned -> terminal phase seen.
    pub run_duration_s: Dist,
    /// First create sent -> last run finished.
    pub makespan_s: f64,
    pub operator: ProcStats,
    pub operator_cpu_utilisation: f64,
    pub status_bytes_mean: f64,
    pub status_bytes_max: f64,
    pub object_bytes_mean: f64,
    pub object_bytes_max: f64,
    pub steps_launched: f64,
    pub api_writes: BTreeMap<String, f64>,
    pub api_writes_total: f64,
    pub writes_per_step: f64,
    pub reconciles: f64,
    pub reconcile_errors: BTreeMap<String, f64>,
    pub sim_pods_completed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_step: Option<f64>,
}

/// Runs `w` against the simulated node `sim`; `limits` from the baseline when it ran.
pub async fn run(
    client: &Client,
    cfg: &Config,
    sim: &Sim,
    limits: Option<&Limits>,
    w: &Workload,
) -> Res<WorkloadResult> {
    let (key, shape) = (w.key, &w.shape);
    let ns = cfg.namespace(key);
    log(format!("workload {key}: {} in {ns}", w.description));
    namespaces::create(client, cfg, &ns).await?;
    let mut operator = operator::start(cfg, &ns, key, &[])?;
    operator::wait_ready(&mut operator).await?;
    let recording = Recording::start(client, &ns).await;
    dags(client, &ns)
        .create(&PostParams::default(), &shape.object()?)
        .await?;
    wait_dag_seen(client, &ns, &shape.dag).await;
    let sim_before = sim.completed();

    let t0 = now();
    let created = create_runs(client, cfg, &ns, &shape.dag, "r", w.runs).await;
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
    let timed_out = wait_finished(
        &recording.rec,
        key,
        created.len(),
        w.runs * shape.steps.len(),
        deadline,
        operator.pid(),
    )
    .await;
    let t_end = now();
    // Let the operator's last status writes and events settle into the counters.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let prom = operator::metrics(&operator).await;
    let wall = operator.uptime().as_secs_f64();
    let proc = operator::stop(operator).await;
    let rec = recording.stop();

    let jobs: Vec<JobRec> = rec.jobs.lock().unwrap().values().cloned().collect();
    let runs_recs: Vec<RunRec> = rec.runs.lock().unwrap().values().cloned().collect();
    let (transitions, csv) = transitions(&jobs, &shape.steps, t0);
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
    let ratio = |limit: f64| {
        if limit > 0.0 {
            (launch_rate / limit * 1000.0).round() / 1000.0
        } else {
            0.0
        }
    };
    let histogram_ms = |q: f64| {
        prom.histogram_quantile("kubedag_step_launch_latency_seconds", q)
            .map(|s| round2(s * 1000.0))
    };
    let mut result = WorkloadResult {
        key: key.into(),
        description: w.description.clone(),
        namespace: ns.clone(),
        runs: w.runs,
        steps_per_run: shape.steps.len(),
        timed_out,
        runs_finished: runs_recs.iter().filter(|r| r.finished.is_some()).count(),
        runs_succeeded: runs_recs.iter().filter(|r| r.phase == "Succeeded").count(),
        jobs_seen: jobs.len(),
        jobs_failed: jobs.iter().filter(|j| j.failed).count(),
        create_phase_s: round2(create_phase),
        launch_jobs_per_s: round2(launch_rate),
        launch_jobs_per_s_p5_p95: round2(launch_rate_window.unwrap_or(0.0)),
        launch_ratio: limits.map_or(0.0, |l| ratio(l.rate)),
        launch_ratio_pipeline: limits.map_or(0.0, |l| ratio(l.pipeline)),
        completion_jobs_per_s: round2(jobs.len() as f64 / (last_complete - first_added).max(1e-9)),
        transition_ms: ms_dist(transitions),
        operator_histogram_p50_ms: histogram_ms(0.5),
        operator_histogram_p99_ms: histogram_ms(0.99),
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
        let requests = crate::profile::request_profile(&cfg.operator_log(key));
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
    if cfg.isolate && !w.keep_namespace {
        namespaces::delete(client, &[ns], Duration::from_secs(300)).await;
    }
    Ok(result)
}

/// Waits until `runs` runs are seen finished, or `deadline` (driver clock) passed (then true),
/// logging progress every 10 s (Jobs of `total_steps`, the operator `pid`'s RSS).
async fn wait_finished(rec: &Recorder, key: &str, runs: usize, total_steps: usize, deadline: f64, pid: u32) -> bool {
    let mut last_report = now();
    let progress = |finished: usize| {
        if now() - last_report > 10.0 {
            let (jobs, complete) = (rec.jobs.lock().unwrap().len(), rec.jobs_done(""));
            log(format!(
                "workload {key}: runs finished {finished}/{runs}, Jobs created {jobs}/{total_steps}, Jobs complete {complete}, operator RSS {:.0} MiB",
                proc_stats(pid).rss_mib
            ));
            last_report = now();
        }
    };
    let waited = rec
        .wait_for(
            runs,
            deadline,
            Duration::from_millis(100),
            Recorder::runs_finished,
            progress,
        )
        .await;
    if let Err(finished) = waited {
        log(format!(
            "workload {key}: timed out with {finished}/{runs} runs finished"
        ));
    }
    waited.is_err()
}

/// Waits (at most 30 s) until the operator's Dag reconciler marked `dag` Valid, i.e. has it in
/// its cache; logs and goes on otherwise.
async fn wait_dag_seen(client: &Client, ns: &str, dag: &str) {
    let api = dags(client, ns);
    let valid = poll(Duration::from_secs(30), Duration::from_millis(200), || async {
        let d = api.get_opt(dag).await.ok().flatten()?;
        d.data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Valid" && c["status"] == "True"))
            .then_some(())
    })
    .await;
    if valid.is_none() {
        log(format!("Dag {ns}/{dag} not marked Valid after 30 s; going on"));
    }
}

/// Creates `n` runs `<prefix>-NNNNN` of `dag` (`BENCH_CREATE_CONCURRENCY` in parallel, each
/// retried up to 5 times, 409 counting as created); returns (name, create-returned time) per
/// run created. Failures are logged.
pub async fn create_runs(
    client: &Client,
    cfg: &Config,
    ns: &str,
    dag: &str,
    prefix: &str,
    n: usize,
) -> Vec<(String, f64)> {
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
