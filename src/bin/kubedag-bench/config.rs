//! The benchmark's configuration: sizes and knobs from the `BENCH_*` environment variables and
//! the `--operator-bin` / `--out-dir` flags (see bench/README.md).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::argo::Mode;

/// Everything the run is parametrised by, read once at start.
pub struct Config {
    /// Multiplies every workload size (1.0 = the sizes).
    pub scale: f64,
    /// The workloads to run (`ui`, `baseline`, `a`, `b`, `c`, `d`, `f`).
    pub workloads: Vec<String>,
    /// The operator's `--concurrency`, and the plain client's parallel requests.
    pub concurrency: u16,
    /// Parallel DagRun creates of the driver.
    pub create_concurrency: usize,
    /// Seconds a simulated pod "runs" before it is marked Succeeded.
    pub pod_seconds: f64,
    /// The `kubedag` binary the workloads start.
    pub operator_bin: PathBuf,
    /// Where latest.{json,md}, the operator logs and the per-Job CSVs go.
    pub out_dir: PathBuf,
    /// Log every API request of the operator (kube_client=debug) and count them per step.
    pub profile: bool,
    /// The simulated node's name.
    pub node: String,
    /// How long one workload may run before it is reported as timed out.
    pub workload_timeout: Duration,
    /// A short id of this run, in every namespace name and label.
    pub run_id: String,
    /// Runs of workload (a).
    pub runs_a: usize,
    /// Steps of workload (b)'s one run.
    pub width_b: usize,
    /// Runs of workload (c).
    pub runs_c: usize,
    /// Items of workload (f)'s one fan-out (`BENCH_ITEMS_F`).
    pub items_f: usize,
    /// The operator's `--max-running-jobs` in workload (f) (`BENCH_MAX_RUNNING_JOBS_F`; 0 = no cap).
    pub max_running_jobs_f: usize,
    /// Jobs per phase of the plain-client baseline.
    pub baseline_jobs: usize,
    /// Dry-run creates of workload (d), each side.
    pub webhook_samples: usize,
    /// Runs in the UI's cache for (e) (`BENCH_UI_RUNS`, not scaled: the figure is defined at 10,000).
    pub ui_runs: usize,
    /// Requests per query of (e) (`BENCH_UI_REQUESTS`).
    pub ui_requests: usize,
    /// Extra operator flags (`BENCH_OPERATOR_ARGS`, split on whitespace).
    pub operator_args: Vec<String>,
    /// Delete each workload's namespace (and wait) before the next one starts.
    pub isolate: bool,
    /// How long the final cleanup waits for the namespaces to disappear.
    pub cleanup_wait: Duration,
    /// Argo's `workflow-controller` binary (`--argo-bin`, `BENCH_ARGO_BIN`).
    pub argo_bin: PathBuf,
    /// The Argo configurations to run (`BENCH_ARGO`: `default`, `tuned`; empty: none).
    pub argo: Vec<Mode>,
    /// The workloads Argo runs (`BENCH_ARGO_WORKLOADS`: of `a`, `b`, `c`).
    pub argo_workloads: Vec<String>,
    /// Runs of (a) and (c) on Argo (`BENCH_ARGO_RUNS_A`, `BENCH_ARGO_RUNS_C`).
    pub argo_runs_a: usize,
    pub argo_runs_c: usize,
}

/// Where `bench/argo.sh` caches the controller it builds.
pub const DEFAULT_ARGO_BIN: &str = "/var/cache/kubedag-e2e/argo/workflow-controller-v4.0.5";

/// The comma-separated items of `s`, trimmed, blanks dropped.
fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The workloads Argo can run: the shapes it has an equivalent of.
const ARGO_WORKLOADS: [&str; 3] = ["a", "b", "c"];

/// The Argo workloads named in `s`.
///
/// # Panics
/// On a workload Argo does not run (the fan-out (f) and the webhook (d) are kubedag's only).
fn argo_workloads(s: &str) -> Vec<String> {
    let keys = list(s);
    if let Some(other) = keys.iter().find(|k| !ARGO_WORKLOADS.contains(&k.as_str())) {
        panic!("BENCH_ARGO_WORKLOADS: {other:?} is not a workload Argo runs (a, b, c)");
    }
    keys
}

/// The Argo modes named in `s` (`default`, `tuned`).
///
/// # Panics
/// On any other name, naming it.
fn argo_modes(s: &str) -> Vec<Mode> {
    list(s)
        .iter()
        .map(|m| match m.as_str() {
            "default" => Mode::Default,
            "tuned" => Mode::Tuned,
            other => panic!("BENCH_ARGO: {other:?} is not an Argo mode (default, tuned)"),
        })
        .collect()
}

/// `name` parsed from the environment, or `default` when unset or blank.
///
/// # Panics
/// When the value does not parse, naming the variable and the value.
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
    /// Reads the environment and the command line (see the module docs).
    pub fn from_env() -> Config {
        let args: Vec<String> = std::env::args().collect();
        let flag = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1).cloned())
        };
        let scale: f64 = env_or("BENCH_SCALE", 1.0);
        let scaled = |n: f64, min: usize| ((n * scale).round() as usize).max(min);
        let workloads: String = env_or("BENCH_WORKLOADS", "ui,baseline,a,d,b,c,f".to_string());
        let run_id = format!("{:x}", std::process::id() as u64 * 7919 % 0xfffff);
        let node = format!("kubedag-bench-{run_id}");
        let argo_bin: PathBuf = flag("--argo-bin")
            .or_else(|| std::env::var("BENCH_ARGO_BIN").ok())
            .unwrap_or_else(|| DEFAULT_ARGO_BIN.into())
            .into();
        // Argo runs by default when its controller was built.
        let argo_default = if argo_bin.exists() { "default,tuned" } else { "" };
        Config {
            argo: argo_modes(&env_or("BENCH_ARGO", argo_default.to_string())),
            argo_workloads: argo_workloads(&env_or("BENCH_ARGO_WORKLOADS", "a,c".to_string())),
            // A fifth and a tenth of kubedag's: at its defaults Argo's client is held to 20
            // requests/s, and the full sizes would take it over 25 min each.
            argo_runs_a: env_or("BENCH_ARGO_RUNS_A", scaled(200.0, 1)),
            argo_runs_c: env_or("BENCH_ARGO_RUNS_C", scaled(1000.0, 1)),
            argo_bin,
            scale,
            workloads: list(&workloads),
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
            items_f: env_or("BENCH_ITEMS_F", scaled(10000.0, 1)),
            max_running_jobs_f: env_or("BENCH_MAX_RUNNING_JOBS_F", 500),
            baseline_jobs: env_or("BENCH_BASELINE_JOBS", scaled(1000.0, 50)),
            webhook_samples: env_or("BENCH_WEBHOOK_SAMPLES", 200),
            ui_runs: env_or("BENCH_UI_RUNS", 10_000).max(1),
            ui_requests: env_or("BENCH_UI_REQUESTS", 200).max(1),
            isolate: env_or("BENCH_ISOLATE", 0u8) == 1,
            cleanup_wait: Duration::from_secs(env_or("BENCH_CLEANUP_WAIT", 180)),
            operator_args: std::env::var("BENCH_OPERATOR_ARGS")
                .map(|s| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether Argo runs `workload` (`BENCH_ARGO_WORKLOADS`, and some Argo mode selected).
    pub fn argo_wants(&self, workload: &str) -> bool {
        !self.argo.is_empty() && self.argo_workloads.iter().any(|w| w == workload)
    }

    /// Whether `workload` was selected in `BENCH_WORKLOADS`.
    pub fn wants(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }

    /// The namespace of `workload` in this run.
    pub fn namespace(&self, workload: &str) -> String {
        format!("kubedag-bench-{}-{workload}", self.run_id)
    }

    /// The log file of the operator started for `label`.
    pub fn operator_log(&self, label: &str) -> PathBuf {
        self.out_dir.join(format!("operator-{label}.log"))
    }
}
