//! One workload ((a), (b), (c), (f), and the existing runs of (d)) on one system ([`System`]: kubedag,
//! or Argo Workflows at its defaults or tuned): its own namespace and controller process, one
//! shape, many runs (DagRuns or Workflows) created at once; waits until every run finished (or
//! `BENCH_WORKLOAD_TIMEOUT`) and turns what the recorder saw, the controller's metrics, the API
//! server's write counts and the process figures into a [`WorkloadResult`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kubedag::testkit::poll;
use serde::Serialize;
use serde_json::Value;

use crate::apiserver::{self, Counts};
use crate::clock::{log, now};
use crate::config::Config;
use crate::process::{ProcStats, proc_stats};
use crate::recorder::{JobRec, Recorder, Recording, RunRec};
use crate::shapes::{Shape, dags};
use crate::sim_node::Sim;
use crate::stats::{Dist, dist, ms_dist, rates, round2, s_dist};
use crate::system::{Controller, System};
use crate::timeline::transitions;
use crate::{BoxError, Res, namespaces};

/// What to run.
pub struct Workload {
    /// `a`, `b`, `c`, `d` or `f`: namespace suffix, log label, key in latest.json.
    pub key: &'static str,
    /// Which system runs it.
    pub system: System,
    pub description: String,
    pub shape: Shape,
    pub runs: usize,
    /// Keep the namespace even with `BENCH_ISOLATE=1` (the webhook workload reuses it).
    pub keep_namespace: bool,
    /// Operator flags of this workload, after `BENCH_OPERATOR_ARGS`.
    pub operator_args: Vec<String>,
}

impl Workload {
    /// Workload `key` (`a`, `b`, `c`, or `d`: the existing runs of the webhook workload when
    /// (a) is not selected) on `system`, at the configured sizes (Argo's own for (a) and (c)).
    pub fn of(cfg: &Config, key: &'static str, system: System) -> Workload {
        let argo = system != System::Kubedag;
        let runs_a = if argo { cfg.argo_runs_a } else { cfg.runs_a };
        let runs_c = if argo { cfg.argo_runs_c } else { cfg.runs_c };
        let (description, shape, runs) = match key {
            "a" => (
                format!("{runs_a} concurrent runs × 5-step diamond"),
                Shape::diamond(),
                runs_a,
            ),
            "b" => (
                format!("1 run × {}-step wide", cfg.width_b),
                Shape::wide(cfg.width_b),
                1,
            ),
            "c" => (format!("{runs_c} runs × 1 step at once"), Shape::single(), runs_c),
            "f" => (
                format!(
                    "1 run × forEach over {} items (max {} running Jobs)",
                    cfg.items_f, cfg.max_running_jobs_f
                ),
                Shape::fan_out(cfg.items_f),
                1,
            ),
            _ => (
                format!("{} existing runs for the webhook", cfg.runs_a),
                Shape::single(),
                cfg.runs_a,
            ),
        };
        // (d) runs in (a)'s namespace, or in its own: either must survive BENCH_ISOLATE until then.
        let keep_namespace = match key {
            "a" => cfg.wants("d") && !argo,
            "b" | "c" | "f" => false,
            _ => true,
        };
        let operator_args = match key {
            "f" => vec![format!("--max-running-jobs={}", cfg.max_running_jobs_f)],
            _ => Vec::new(),
        };
        Workload {
            key,
            system,
            description,
            shape,
            runs,
            keep_namespace,
            operator_args,
        }
    }
}

/// The plain client's figures a system's are compared to, for the objects it creates (Jobs for
/// kubedag, Pods for Argo), measured in the same run.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Create + status write (units/s; Jobs only, 0 for Pods).
    pub rate: f64,
    /// Create alone (units/s).
    pub create: f64,
    /// The pipeline, created -> done (units/s): the bound for steps that wait for other steps.
    pub pipeline: f64,
    /// p99 of one create under the same load (ms).
    pub create_p99_ms: f64,
}

/// The workload's figures (`workloads.<key>` in latest.json).
#[derive(Serialize, Default, Clone, Debug)]
pub struct WorkloadResult {
    pub key: String,
    /// `kubedag`, `argo-default` or `argo-tuned`.
    pub system: String,
    pub description: String,
    pub namespace: String,
    pub runs: usize,
    pub steps_per_run: usize,
    pub timed_out: bool,
    pub runs_finished: usize,
    pub runs_succeeded: usize,
    pub jobs_seen: usize,
    pub jobs_failed: usize,
    /// Seconds to create all the runs (the driver's creates).
    pub create_phase_s: f64,
    /// Runs finished per second: runs finished / makespan. The figure neutral to both designs.
    pub runs_finished_per_s: f64,
    /// Steps finished per second within that (runs/s × steps per run) over the plain client's
    /// pipeline rate for the same objects: how close the system gets to the control plane's limit.
    pub completion_ratio: f64,
    /// Step Jobs created per second, first to last (watch-observed).
    pub launch_jobs_per_s: f64,
    /// Same over the central 90% of launches.
    pub launch_jobs_per_s_p5_p95: f64,
    /// Launch throughput over the plain client's create + status write rate.
    pub launch_ratio: f64,
    /// Launch throughput over the plain client's create-only rate (Jobs or Pods).
    pub launch_ratio_create: f64,
    /// Launch throughput over the plain client's Job pipeline rate (create -> pod -> Complete):
    /// the bound for steps that wait for other steps.
    pub launch_ratio_pipeline: f64,
    /// Jobs that reached Complete per second (from the first Job created to the last Complete).
    pub completion_jobs_per_s: f64,
    /// Dependency satisfied (last dependency's Job seen Complete, or Pod seen Succeeded) -> next
    /// Job (Pod) seen created.
    pub transition_ms: Dist,
    /// p99 of that over the p99 of one plain-client create in the same run.
    pub p99_ratio_to_client: f64,
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
    /// The largest version of any run the watch delivered during the workload (JSON bytes of
    /// the whole object as served): the run's size at every point, not only at the end.
    pub object_bytes_max_seen: f64,
    /// Most step Jobs seen created and not yet seen done at one instant.
    pub max_active_jobs: usize,
    /// Steps launched: kubedag's `kubedag_steps_launched_total`, or Argo's pods seen.
    pub steps_launched: f64,
    /// The controller's own writes by kind (its own counter).
    pub api_writes: BTreeMap<String, f64>,
    pub api_writes_total: f64,
    pub writes_per_step: f64,
    /// The API server's writes across the workload, less the driver's, the simulated kubelet's
    /// and the background ([`apiserver`]): the system's and the control plane's on its behalf.
    pub apiserver_writes: Counts,
    pub apiserver_writes_per_step: f64,
    pub reconciles: f64,
    pub reconcile_errors: BTreeMap<String, f64>,
    pub sim_pods_completed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_step: Option<f64>,
}

/// What a workload is measured against: the plain client's figures for the system's objects
/// (when the baseline ran) and the API server's background write rate.
pub struct Against<'a> {
    pub limits: Option<&'a Limits>,
    pub background: &'a Counts,
}

/// Runs `w` against the simulated node `sim`.
pub async fn run(client: &Client, cfg: &Config, sim: &Sim, against: &Against<'_>, w: &Workload) -> Res<WorkloadResult> {
    let (key, shape, system) = (w.key, &w.shape, w.system);
    let label = system.workload_label(key);
    let ns = cfg.namespace(&label);
    log(format!("workload {label}: {} in {ns}", w.description));
    namespaces::create(client, cfg, &ns).await?;
    let controller = Controller::start(client, cfg, system, &ns, &label, &w.operator_args).await?;
    let runs_api = system.runs(client, &ns);
    let recording = Recording::watching(client, &ns, system.unit(), Some(runs_api.clone())).await;
    if system == System::Kubedag {
        dags(client, &ns)
            .create(&PostParams::default(), &shape.object()?)
            .await?;
        wait_dag_seen(client, &ns, &shape.dag).await;
    }
    let sim_before = sim.writes();
    let api_before = apiserver::scrape(client).await;

    let t0 = now();
    let object = |name: &str, file: &str| system.run_object(shape, name, file);
    let created = create_runs(cfg, &runs_api, &ns, object, "r", w.runs).await;
    let create_phase = now() - t0;
    log(format!(
        "workload {label}: {} runs created in {create_phase:.1} s",
        created.len()
    ));
    {
        let mut recs = recording.rec.runs.lock().unwrap();
        for (name, at) in &created {
            recs.entry(name.clone()).or_default().created = Some(*at);
        }
    }
    let deadline = t0 + cfg.workload_timeout.as_secs_f64();
    let total_steps = w.runs * shape.jobs_per_run();
    let timed_out = wait_finished(
        &recording.rec,
        &label,
        created.len(),
        total_steps,
        deadline,
        controller.pid(),
    )
    .await;
    let t_end = now();
    // Let the controller's last status writes and events settle into the counters.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let prom = controller.metrics().await;
    let own_writes = controller.own_writes(&prom);
    let api_after = apiserver::scrape(client).await;
    let wall = controller.uptime_s();
    let seconds = now() - t0;
    let proc = controller.stop().await;
    let rec = recording.stop();

    let mut known = sim.writes_since(&sim_before);
    let (run_post, setup_post) = system.driver_writes();
    *known.entry(run_post.into()).or_insert(0.0) += created.len() as f64;
    *known.entry(setup_post.into()).or_insert(0.0) += 1.0;
    let apiserver_writes = match (api_before, api_after) {
        (Some(before), Some(after)) => {
            let before: Counts = before
                .into_iter()
                .map(|(k, v)| (k.clone(), v + known.get(&k).copied().unwrap_or(0.0)))
                .collect();
            apiserver::net(&after, &before, against.background, seconds)
        }
        _ => Counts::new(),
    };

    let jobs: Vec<JobRec> = rec.jobs.lock().unwrap().values().cloned().collect();
    let runs_recs: Vec<RunRec> = rec.runs.lock().unwrap().values().cloned().collect();
    let (transitions, csv) = transitions(&jobs, &shape.steps, t0);
    let _ = std::fs::write(cfg.out_dir.join(format!("jobs-{label}.csv")), csv);
    let mut added: Vec<f64> = jobs.iter().map(|j| j.added).collect();
    let (launch_rate, launch_rate_window) = rates(&mut added);
    let first_added = added.first().copied().unwrap_or(t0);
    let last_complete = jobs.iter().filter_map(|j| j.complete).fold(first_added, f64::max);
    let durations: Vec<f64> = runs_recs
        .iter()
        .filter_map(|r| Some(r.finished? - r.created?))
        .collect();
    let last_finish = runs_recs.iter().filter_map(|r| r.finished).fold(t0, f64::max);
    let runs_finished = runs_recs.iter().filter(|r| r.finished.is_some()).count();
    let makespan = last_finish - t0;
    let runs_per_s = if makespan > 0.0 {
        runs_finished as f64 / makespan
    } else {
        0.0
    };

    let (status_bytes, object_bytes) = object_sizes(&runs_api).await;
    let writes_total: f64 = own_writes.values().sum();
    let steps_launched = match system {
        System::Kubedag => prom.sum("kubedag_steps_launched_total"),
        System::Argo(_) => jobs.len() as f64,
    };
    let per_step = |n: f64| {
        if steps_launched > 0.0 {
            round2(n / steps_launched)
        } else {
            0.0
        }
    };
    let launch_rate = launch_rate.unwrap_or(0.0);
    let ratio = |x: f64, limit: f64| {
        if limit > 0.0 {
            (x / limit * 1000.0).round() / 1000.0
        } else {
            0.0
        }
    };
    let limits = against.limits.cloned().unwrap_or_default();
    let transition_ms = ms_dist(transitions);
    let histogram_ms = |q: f64| {
        prom.histogram_quantile("kubedag_step_launch_latency_seconds", q)
            .map(|s| round2(s * 1000.0))
    };
    let mut result = WorkloadResult {
        key: key.into(),
        system: system.label().into(),
        description: w.description.clone(),
        namespace: ns.clone(),
        runs: w.runs,
        steps_per_run: shape.jobs_per_run(),
        timed_out,
        runs_finished,
        runs_succeeded: runs_recs.iter().filter(|r| r.phase == "Succeeded").count(),
        jobs_seen: jobs.len(),
        jobs_failed: jobs.iter().filter(|j| j.failed).count(),
        create_phase_s: round2(create_phase),
        runs_finished_per_s: round2(runs_per_s),
        completion_ratio: ratio(runs_per_s * shape.jobs_per_run() as f64, limits.pipeline),
        launch_jobs_per_s: round2(launch_rate),
        launch_jobs_per_s_p5_p95: round2(launch_rate_window.unwrap_or(0.0)),
        launch_ratio: ratio(launch_rate, limits.rate),
        launch_ratio_create: ratio(launch_rate, limits.create),
        launch_ratio_pipeline: ratio(launch_rate, limits.pipeline),
        completion_jobs_per_s: round2(jobs.len() as f64 / (last_complete - first_added).max(1e-9)),
        p99_ratio_to_client: if transition_ms.count > 0 {
            ratio(transition_ms.p99, limits.create_p99_ms)
        } else {
            0.0
        },
        transition_ms,
        operator_histogram_p50_ms: histogram_ms(0.5),
        operator_histogram_p99_ms: histogram_ms(0.99),
        run_duration_s: s_dist(durations),
        makespan_s: round2(makespan),
        operator_cpu_utilisation: round2(proc.cpu_seconds / wall),
        operator: proc,
        status_bytes_mean: status_bytes.mean.round(),
        status_bytes_max: status_bytes.max,
        object_bytes_mean: object_bytes.mean.round(),
        object_bytes_max: object_bytes.max,
        object_bytes_max_seen: runs_recs.iter().map(|r| r.max_bytes).max().unwrap_or(0) as f64,
        max_active_jobs: max_active(&jobs),
        steps_launched,
        writes_per_step: per_step(writes_total),
        api_writes: own_writes,
        api_writes_total: writes_total,
        apiserver_writes_per_step: per_step(apiserver_writes.values().sum()),
        apiserver_writes,
        reconciles: prom.sum("kubedag_reconciles_total"),
        reconcile_errors: prom.by_label("kubedag_reconcile_errors_total", "kind"),
        sim_pods_completed: sim.completed() - sim_before.completed,
        requests: None,
        requests_per_step: None,
    };
    if cfg.profile && system == System::Kubedag {
        let requests = crate::profile::request_profile(&cfg.operator_log(&label));
        let total: u64 = requests.values().sum();
        result.requests_per_step = (steps_launched > 0.0).then(|| round2(total as f64 / steps_launched));
        result.requests = Some(requests);
    }
    log(format!(
        "workload {label}: {} runs at {:.2}/s, {} steps at {:.1}/s (ratio {:.2}), transition p50 {:.0} ms p99 {:.0} ms, peak RSS {:.0} MiB, CPU {:.1} s, {:.2} own writes/step, {:.2} API server writes/step, in {:.1} s",
        result.runs_finished,
        result.runs_finished_per_s,
        result.jobs_seen,
        result.launch_jobs_per_s,
        result.launch_ratio_create,
        result.transition_ms.p50,
        result.transition_ms.p99,
        result.operator.peak_rss_mib,
        result.operator.cpu_seconds,
        result.writes_per_step,
        result.apiserver_writes_per_step,
        t_end - t0
    ));
    if cfg.isolate && !w.keep_namespace {
        namespaces::delete(client, &[ns], Duration::from_secs(300)).await;
    }
    Ok(result)
}

/// The most `jobs` seen created and not yet done at one instant (a Job never seen done counts
/// as active to the end).
fn max_active(jobs: &[JobRec]) -> usize {
    // (time, +1 created / -1 done); at equal times the done sorts first.
    let mut edges: Vec<(f64, i64)> = jobs
        .iter()
        .flat_map(|j| std::iter::once((j.added, 1)).chain(j.complete.map(|c| (c, -1))))
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut active, mut most) = (0i64, 0i64);
    for (_, delta) in edges {
        active += delta;
        most = most.max(active);
    }
    most as usize
}

/// Waits until `runs` runs are seen finished, or `deadline` (driver clock) passed (then true),
/// logging progress every 10 s (Jobs of `total_steps`, the operator `pid`'s RSS).
async fn wait_finished(rec: &Recorder, key: &str, runs: usize, total_steps: usize, deadline: f64, pid: u32) -> bool {
    let mut last_report = now();
    let progress = |finished: usize| {
        if now() - last_report > 10.0 {
            // Two statements: a guard taken inside a tuple lives to the end of the statement, and
            // `jobs_done` takes the same lock (a deadlock that stopped every watch task).
            let jobs = rec.jobs.lock().unwrap().len();
            let complete = rec.jobs_done("");
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

/// Creates `n` runs `<prefix>-NNNNN` made by `object(name, file)` through `api`, the parameter
/// `file` being `<ns>-NNNNN.fits` (`BENCH_CREATE_CONCURRENCY` in parallel, each
/// retried up to 5 times, 409 counting as created); returns (name, create-returned time) per
/// run created. Failures are logged.
pub async fn create_runs(
    cfg: &Config,
    api: &Api<DynamicObject>,
    ns: &str,
    object: impl Fn(&str, &str) -> Result<DynamicObject, serde_json::Error>,
    prefix: &str,
    n: usize,
) -> Vec<(String, f64)> {
    let object = &object;
    let results = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i:05}");
            let file = format!("{ns}-{i:05}.fits");
            async move {
                let object = object(&name, &file)?;
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

/// (status-only JSON bytes, whole-object JSON bytes as served) over the runs of `api`.
async fn object_sizes(api: &Api<DynamicObject>) -> (Dist, Dist) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(added: f64, complete: Option<f64>) -> JobRec {
        JobRec {
            added,
            complete,
            ..JobRec::default()
        }
    }

    #[test]
    fn max_active_counts_the_jobs_created_and_not_yet_done_at_one_instant() {
        assert_eq!(max_active(&[]), 0);
        let jobs = [
            job(0.0, Some(2.0)),
            job(1.0, Some(3.0)),
            job(2.0, Some(4.0)), // starts as the first ends: still two at once
            job(5.0, None),
        ];
        assert_eq!(max_active(&jobs), 2);
        let overlapping = [job(0.0, Some(10.0)), job(1.0, Some(9.0)), job(2.0, None)];
        assert_eq!(max_active(&overlapping), 3);
    }
}
