//! `kubectl dag watch DIR --dag NAME -p file='$(file.path)'`: the directory watcher of
//! `DagTrigger` run from the user's machine, with its ledger in a local file. Runs until Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use crate::api::Dag;
use crate::watch::scan::ScanSpec;
use crate::watch::store::FileLedger;
use crate::watch::submit::{RunTemplate, Submitted};
use crate::watch::watcher::{self, Report, Stats, WatchConfig};

use super::args::WatchArgs;
use super::cluster::Cluster;
use super::error::CliError;
use super::{output, params};

/// Default ledger file name, inside the watched directory (ignored by the scan: it starts with `.`).
pub const DEFAULT_LEDGER: &str = ".kubedag-watch-ledger";

/// Runs the watch until SIGINT/SIGTERM. Errors: a bad pattern, a missing Dag or directory,
/// an unreadable ledger file.
pub async fn watch(cluster: &Cluster, args: WatchArgs) -> Result<ExitCode, CliError> {
    let pattern = ScanSpec::parse_pattern(args.pattern.as_deref()).map_err(|e| CliError::Invalid(format!("--{e}")))?;
    if !args.dir.is_dir() {
        return Err(CliError::Invalid(format!("{}: not a directory", args.dir.display())));
    }
    cluster.get::<Dag>("Dag", &args.dag).await?;
    let name = args.name.clone().unwrap_or_else(|| format!("{}-watch", args.dag));
    let ledger = args.ledger.clone().unwrap_or_else(|| args.dir.join(DEFAULT_LEDGER));
    let source = ScanSpec {
        root: args.dir.clone(),
        path: String::new(),
        pattern,
        recursive: args.recursive,
    };
    let config = WatchConfig {
        settle_seconds: args.settle,
        rescan: Duration::from_secs(u64::from(args.rescan.max(1))),
        template: RunTemplate {
            trigger: name,
            dag: args.dag.clone(),
            params: params::collect(&args.params)?,
            source_kind: "local directory",
        },
    };
    output::note(&format!(
        "watching {} for Dag {} (settle {}s, ledger {}); Ctrl-C stops",
        args.dir.display(),
        args.dag,
        args.settle,
        ledger.display()
    ));
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    watcher::run(
        cluster.api(),
        &source,
        config,
        FileLedger { path: ledger },
        Terminal::default(),
        stop,
    )
    .await
    .map_err(|e| CliError::Invalid(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints each submission, and errors when they change.
#[derive(Default)]
struct Terminal {
    last_error: Option<String>,
}

impl Report for Terminal {
    async fn report(&mut self, stats: &Stats) {
        if stats.last_error != self.last_error {
            if let Some(e) = &stats.last_error {
                output::warn(e);
            }
            self.last_error = stats.last_error.clone();
        }
    }

    fn submitted(&mut self, path: &str, outcome: &Submitted) {
        match outcome {
            Submitted::Created(run) => drop(output::emit_line(&format!("{path} -> {run}"))),
            Submitted::Existed(run) => drop(output::emit_line(&format!("{path} -> {run} (existed)"))),
        }
    }
}
