//! The operator process of one workload: the release `kubedag` binary watching only the
//! workload's namespace, with the benchmark's `--concurrency` and `BENCH_OPERATOR_ARGS`, logging
//! to `operator-<label>.log` (every API request too with `BENCH_PROFILE=1`).

use std::time::Duration;

use kubedag::testkit::metrics::Metrics;
use kubedag::testkit::operator::{Launch, Operator};

use crate::Res;
use crate::clock::log;
use crate::config::Config;
use crate::process::{ProcStats, proc_stats};

/// How long a started operator may take to answer `/readyz`.
const READY_WAIT: Duration = Duration::from_secs(120);
/// How long a stopped operator gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Starts the operator for namespace `ns` (log label `label`, `extra` flags last). Errors: the
/// log or the binary cannot be opened.
pub fn start(cfg: &Config, ns: &str, label: &str, extra: &[String]) -> Res<Operator> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let mut launch = Launch::new(&cfg.operator_bin, ns, cfg.operator_log(label));
    if cfg.profile {
        launch.rust_log = "info,kube=warn,kube_client=debug".into();
    }
    launch.args = ["--concurrency".to_string(), cfg.concurrency.to_string()]
        .into_iter()
        .chain(cfg.operator_args.iter().cloned())
        .chain(extra.iter().cloned())
        .collect();
    let operator = Operator::spawn(&launch)?;
    log(format!(
        "operator pid {} for {ns} (metrics 127.0.0.1:{}, log {})",
        operator.pid(),
        operator.metrics_port(),
        launch.log_path.display()
    ));
    Ok(operator)
}

/// Waits until it answers `/readyz`. Errors: it exited, or is not ready within 120 s.
pub async fn wait_ready(operator: &mut Operator) -> Res<()> {
    Ok(operator.wait_ready(READY_WAIT).await?)
}

/// One scrape of its metrics (empty when it does not answer).
pub async fn metrics(operator: &Operator) -> Metrics {
    operator.metrics().await.unwrap_or_default()
}

/// Reads its process figures, then stops it (SIGTERM, SIGKILL after 10 s).
pub async fn stop(operator: Operator) -> ProcStats {
    let stats = proc_stats(operator.pid());
    operator.stop(STOP_GRACE).await;
    stats
}

/// Waits (at most 60 s) until it has gone through its initial reconciles: the reconcile counter
/// stops moving between two scrapes 2 s apart.
pub async fn wait_idle(operator: &Operator) {
    let mut last = -1.0;
    let deadline = crate::clock::now() + 60.0;
    while crate::clock::now() < deadline {
        let reconciles = metrics(operator).await.sum("kubedag_reconciles_total");
        if reconciles == last {
            return;
        }
        last = reconciles;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
