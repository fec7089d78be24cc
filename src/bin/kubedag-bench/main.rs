//! `kubedag-bench`: the benchmark driver behind `make bench` (see bench/README.md).
//!
//! Against the cluster in KUBECONFIG it runs, in this order:
//! 1. a simulated node ([`sim_node`]): a `Node` object kept Ready, never backed by a kubelet,
//!    whose pods the driver marks `Succeeded` through the API;
//! 2. the plain-client baseline ([`baseline`]): Jobs of the operator's shape created as fast as a
//!    plain client can, alone and with one status write each (the physical limit of this
//!    control plane);
//!    and the same for Pods ([`pod_baseline`]);
//! 3. the workloads ([`workload`], [`webhook`]), each in its own namespace with its own operator
//!    process (release build, `--namespace NS`): (a) concurrent runs of a 5-step diamond,
//!    (b) one run of a wide Dag, (c) many 1-step runs created at once, (d) webhook admission
//!    latency with the runs of (a), (f) one run fanning out over many items; after kubedag's, the same shapes as Argo Workflows
//!    ([`argo`], [`system`]) at Argo's defaults and tuned, one controller at a time;
//!
//! and before all of them, while nothing else runs, (e) the web UI's runs page with 10,000 runs
//! ([`ui_page`], no cluster needed; `kubedag-bench ui` measures it alone),
//!
//! and writes `latest.json` and `latest.md` into the output directory ([`report`]). Every figure
//! is measured in this process: the Job (Pod) and DagRun (Workflow) watch streams ([`recorder`])
//! give millisecond times for "Job created", "Job Complete" and "run finished" (the API's own
//! timestamps have 1-second resolution); the API server's own request counter ([`apiserver`])
//! gives the writes of either system. Sizes come from environment variables (`BENCH_*`, see [`config`]).
//! Launching the operator, scraping its metrics and building manifests come from
//! `kubedag::testkit`, shared with the e2e tests.

mod apiserver;
mod argo;
mod baseline;
mod clock;
mod compare;
mod config;
mod namespaces;
mod operator;
mod pod_baseline;
mod process;
mod profile;
mod recorder;
mod report;
mod shapes;
mod sim_node;
mod stats;
mod system;
mod targets;
mod timeline;
mod ui_page;
mod webhook;
mod workload;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Client;
use kube::api::{Api, DeleteParams};

use crate::clock::{now, rfc3339};
use crate::config::Config;
use crate::sim_node::Sim;
use crate::system::System;
use crate::workload::{Against, Limits, Workload};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// Runs the selected workloads in order and writes the report. Every namespace it creates is
/// pushed onto `namespaces` first, so the caller can delete them after a failure.
async fn bench(client: Client, cfg: &Config, namespaces: Arc<Mutex<Vec<String>>>) -> Res<()> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let started_at = rfc3339(false);
    let load_at_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let ui = if cfg.wants("ui") {
        Some(ui_page::run(cfg).await)
    } else {
        None
    };
    let sim = Sim::start(&client, &cfg.node, Duration::from_secs_f64(cfg.pod_seconds)).await?;
    let remember = |ns: String| namespaces.lock().unwrap().push(ns);

    let mut base = None;
    if cfg.wants("baseline") {
        remember(cfg.namespace("baseline"));
        base = Some(baseline::baseline(&client, cfg).await?);
        if cfg.isolate {
            namespaces::delete(&client, &[cfg.namespace("baseline")], Duration::from_secs(300)).await;
        }
    }
    let job_limits = base.as_ref().map(|b| Limits {
        rate: b.create_and_status_jobs_per_s,
        create: b.create_only_jobs_per_s,
        pipeline: b.completion_jobs_per_s,
        create_p99_ms: b.create_latency_ms.p99,
    });
    let pod_limits = base.as_ref().map(|b| Limits {
        rate: 0.0,
        create: b.pods.create_pods_per_s,
        pipeline: b.pods.completion_pods_per_s,
        create_p99_ms: b.pods.create_latency_ms.p99,
    });
    let background = apiserver::background(&client, Duration::from_secs(10)).await;
    let run = |key: &'static str, system: System| {
        remember(cfg.namespace(&system.workload_label(key)));
        let limits = if system == System::Kubedag {
            &job_limits
        } else {
            &pod_limits
        };
        let against = Against {
            limits: limits.as_ref(),
            background: &background,
        };
        let (client, sim) = (&client, &sim);
        async move { workload::run(client, cfg, sim, &against, &Workload::of(cfg, key, system)).await }
    };
    let mut results = Vec::new();
    let mut peers = Vec::new();
    let mut hook = None;
    for key in ["a", "d", "b", "c", "f"] {
        if key != "d" {
            if cfg.wants(key) {
                results.push(run(key, System::Kubedag).await?);
            }
            if cfg.argo_wants(key) {
                for mode in &cfg.argo {
                    peers.push(run(key, System::Argo(*mode)).await?);
                }
            }
            continue;
        }
        if !cfg.wants(key) {
            continue;
        }
        // With 1,000 existing runs: those of (a), or runs made here when (a) was not selected.
        let (ns, dag) = if cfg.wants("a") {
            (cfg.namespace("a"), "diamond")
        } else {
            run("d", System::Kubedag).await?;
            (cfg.namespace("d"), "single")
        };
        remember(cfg.namespace("d-control"));
        hook = Some(webhook::run(&client, cfg, &ns, dag, cfg.runs_a).await?);
        if cfg.isolate {
            namespaces::delete(&client, &[ns], Duration::from_secs(300)).await;
        }
    }

    let measured = report::Measured {
        started_at,
        load_at_start,
        base,
        results,
        peers,
        hook,
        ui,
    };
    let md = report::write(cfg, &sim, &measured)?;

    // The namespaces go before the node, so the completer can still finish deleting pods bound to
    // it; what is still terminating after the wait is left to the namespace controller (the pod
    // garbage collector force-deletes pods whose node is gone).
    let left: Vec<String> = namespaces.lock().unwrap().clone();
    namespaces::delete(&client, &left, cfg.cleanup_wait).await;
    sim.stop(&client).await;
    println!("{md}");
    Ok(())
}

/// `kubedag-bench profile-log FILE...`: the request counts of each operator log.
fn profile_logs(paths: &[String]) {
    let mut out = std::io::stdout().lock();
    for path in paths {
        let counts = profile::request_profile(Path::new(path));
        let _ = writeln!(out, "{path}: {} requests", counts.values().sum::<u64>());
        let mut sorted: Vec<_> = counts.into_iter().collect();
        sorted.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        for (request, n) in sorted {
            let _ = writeln!(out, "{n:>8}  {request}");
        }
    }
}

/// After a failure or Ctrl-C: deletes what the driver created (webhook configuration,
/// namespaces, the simulated node). The operator processes were killed when the benchmark's
/// future was dropped.
async fn clean_up(client: &Client, cfg: &Config, namespaces: &[String]) {
    let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(webhook::WEBHOOK_CONFIG, &DeleteParams::default())
        .await;
    namespaces::delete(client, namespaces, Duration::from_secs(120)).await;
    sim_node::delete_node(client, &cfg.node).await;
}

#[tokio::main]
async fn main() {
    let _ = now();
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!(
            "kubedag-bench [--operator-bin PATH] [--argo-bin PATH] [--out-dir DIR]\n\
             kubedag-bench profile-log OPERATOR.LOG...   (count the requests of a kube_client=debug log)\n\
             kubedag-bench ui   (only (e), the web UI's runs page; no cluster needed)\n\
             Benchmarks the kubedag operator against the cluster in KUBECONFIG (see bench/README.md).\n\
             Environment: BENCH_SCALE, BENCH_WORKLOADS (ui,baseline,a,d,b,c,f), BENCH_UI_RUNS, BENCH_UI_REQUESTS, BENCH_CONCURRENCY,\n\
             BENCH_CREATE_CONCURRENCY, BENCH_POD_SECONDS, BENCH_PROFILE=1, BENCH_RUNS_A, BENCH_STEPS_B, BENCH_RUNS_C, BENCH_ITEMS_F,\n\
             BENCH_MAX_RUNNING_JOBS_F, BENCH_BASELINE_JOBS,\n\
             BENCH_WEBHOOK_SAMPLES, BENCH_WORKLOAD_TIMEOUT, BENCH_OPERATOR_ARGS, BENCH_NODE,\n\
             BENCH_ARGO (default,tuned), BENCH_ARGO_WORKLOADS (a,c), BENCH_ARGO_RUNS_A, BENCH_ARGO_RUNS_C, BENCH_ARGO_BIN"
        );
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("profile-log") {
        profile_logs(&args[2..]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("ui") {
        let ui = ui_page::run(&Config::from_env()).await;
        print!("{}", ui_page::markdown(&ui));
        println!("{}", serde_json::to_string_pretty(&ui).unwrap_or_default());
        return;
    }
    // kube's rustls client needs a process-wide crypto provider (ring), as in the operator.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
        let left: Vec<String> = namespaces.lock().unwrap().clone();
        clean_up(&client, &cfg, &left).await;
        std::process::exit(1);
    }
}
