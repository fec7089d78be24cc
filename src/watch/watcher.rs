//! The directory watcher loop, shared by the in-cluster watcher (`kubedag watch-trigger`) and
//! `kubectl dag watch`: inotify events (where the filesystem delivers them) wake a scan early,
//! a periodic full re-scan catches everything else; settled files not in the ledger are submitted
//! and recorded, one at a time.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use kube::Api;
use notify::{RecursiveMode, Watcher as _};

use super::ledger::{Entry, Ledger, keys};
use super::settle::Settler;
use super::source::Source;
use super::store::{LedgerStore, StoreError};
use super::submit::{RunTemplate, Submitted};
use crate::api::DagRun;
use crate::engine::trigger::{input_request_id, input_run_name};

/// Longest time between reports while a batch of inputs is being submitted.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// 0 for sources whose inputs appear complete (objects).
    pub settle_seconds: u32,
    /// Time between full re-scans (which also trim the ledger and report).
    pub rescan: Duration,
    pub template: RunTemplate,
}

/// What the watcher reports after each full scan (and after errors).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Runs created by this process.
    pub submitted: u64,
    /// Settled inputs not submitted because they already were: by an earlier process whose
    /// ledger entry was recorded after this one loaded the ledger, or whose run existed (the
    /// inputs already in the ledger at start were counted by the process that submitted them).
    pub skipped: u64,
    /// Submissions that failed (the input is tried again at the next scan).
    pub failed: u64,
    /// Unix seconds of the last successful scan.
    pub last_scan: Option<i64>,
    /// The last error, naming its cause; None after a clean scan.
    pub last_error: Option<String>,
    /// Files seen but still settling.
    pub settling: usize,
    /// Entries in the ledger.
    pub ledger: usize,
    /// Ledger entries this process trimmed (inputs gone from the source).
    pub trimmed: u64,
    /// The last run this process created, and when (unix seconds).
    pub last_run: Option<String>,
    pub last_submit: Option<i64>,
}

/// Where the stats go: the trigger's state ConfigMap, or the terminal.
pub trait Report: Send {
    fn report(&mut self, stats: &Stats) -> impl Future<Output = ()> + Send;
    /// One run was created (or found existing) for `path`.
    fn submitted(&mut self, _path: &str, _outcome: &Submitted) {}
}

/// Runs the loop until `stop` resolves. Errors: the ledger cannot be loaded at start.
pub async fn run<S: LedgerStore, R: Report>(
    api: Api<DagRun>,
    source: &impl Source,
    config: WatchConfig,
    mut store: S,
    mut reporter: R,
    stop: impl Future<Output = ()>,
) -> Result<Stats, StoreError> {
    let mut ledger = store.load().await?;
    let (wake, mut woken) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _inotify = source
        .events_dir()
        .and_then(|(dir, recursive)| watch_events(&dir, recursive, wake));
    let mut settler = Settler::new(config.settle_seconds);
    let mut stats = Stats::default();
    let mut counted_skips: HashSet<String> = ledger.recorded_keys().cloned().collect();
    let mut next_full = tokio::time::Instant::now();
    let mut last_report = tokio::time::Instant::now();
    tokio::pin!(stop);
    loop {
        let full = tokio::time::Instant::now() >= next_full;
        let now = jiff::Timestamp::now();
        let mut submitted_now = false;
        match source.list().await {
            Ok(found) => {
                let ready = settler.observe(&found, now.as_millisecond());
                let mut error = None;
                let before = stats.submitted;
                for f in &ready {
                    let (hash, key) = keys(f);
                    if ledger.contains(&key) {
                        if counted_skips.insert(key) {
                            stats.skipped += 1;
                        }
                        continue;
                    }
                    let name = input_run_name(&config.template.trigger, &hash);
                    match submit_one(&api, &config.template, &mut store, &mut ledger, f, &name, &hash).await {
                        Ok(outcome) => {
                            match &outcome {
                                Submitted::Created(run) => {
                                    stats.submitted += 1;
                                    stats.last_run = Some(run.clone());
                                    stats.last_submit = Some(jiff::Timestamp::now().as_second());
                                }
                                Submitted::Existed(_) => stats.skipped += 1,
                            }
                            counted_skips.insert(keys(f).1);
                            if last_report.elapsed() >= REPORT_EVERY {
                                // A long batch reports as it goes.
                                stats.ledger = ledger.len();
                                reporter.report(&stats).await;
                                last_report = tokio::time::Instant::now();
                            }
                            reporter.submitted(&f.path, &outcome);
                        }
                        Err(e) => {
                            stats.failed += 1;
                            error = Some(e);
                        }
                    }
                }
                if full && error.is_none() {
                    let present: HashSet<&str> = found.iter().map(|f| f.path.as_str()).collect();
                    let dropped = ledger.trim(&present, now.as_second());
                    match store.forget(&ledger, &dropped).await {
                        Ok(()) => stats.trimmed += dropped.len() as u64,
                        Err(e) => error = Some(e.to_string()),
                    }
                }
                stats.last_scan = Some(now.as_second());
                stats.settling = settler.waiting(now.as_millisecond());
                stats.last_error = error;
                submitted_now = stats.submitted > before;
            }
            Err(e) => stats.last_error = Some(e),
        }
        stats.ledger = ledger.len();
        if submitted_now && !full {
            // Counts reach the trigger's status soon after the runs do.
            reporter.report(&stats).await;
            last_report = tokio::time::Instant::now();
        }
        if full || stats.last_error.is_some() {
            reporter.report(&stats).await;
            last_report = tokio::time::Instant::now();
            next_full = tokio::time::Instant::now() + config.rescan;
        }
        let pause = if stats.settling > 0 {
            Duration::from_secs(1)
        } else {
            next_full.saturating_duration_since(tokio::time::Instant::now())
        };
        tokio::select! {
            () = &mut stop => return Ok(stats),
            _ = woken.recv() => {
                // A burst of events (a file written in chunks) makes one scan.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while woken.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Submits one settled input and records it. Errors are returned as their text (naming the
/// cause); the input stays unrecorded and is tried again at the next scan.
async fn submit_one<S: LedgerStore>(
    api: &Api<DagRun>,
    template: &RunTemplate,
    store: &mut S,
    ledger: &mut Ledger,
    f: &super::Found,
    name: &str,
    hash: &str,
) -> Result<Submitted, String> {
    let outcome = template
        .submit(api, name, &input_request_id(hash), &f.variables())
        .await
        .map_err(|e| e.to_string())?;
    let (_, key) = keys(f);
    let entry = Entry {
        at: jiff::Timestamp::now().as_second(),
        run: name.to_string(),
        path: f.path.clone(),
    };
    store.record(&key, &entry).await.map_err(|e| e.to_string())?;
    ledger.record(&key, entry);
    Ok(outcome)
}

/// An inotify watch on the scanned directory that wakes the loop; None where the filesystem or
/// the platform does not support it (the periodic re-scan still finds everything).
fn watch_events(
    dir: &std::path::Path,
    recursive: bool,
    wake: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = wake.send(());
        }
    })
    .map_err(|e| tracing::warn!(%e, "no inotify: relying on periodic re-scans"))
    .ok()?;
    let mode = if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    match watcher.watch(dir, mode) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(%e, dir = %dir.display(), "no inotify watch: relying on periodic re-scans");
            None
        }
    }
}
