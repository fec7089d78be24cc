use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::UnboundedSender;
use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{Dag, DagRun};

use super::completions::Completions;
use super::gate::{Caps, Gate};
use super::metrics::Metrics;
use super::own_writes::OwnWrites;
use super::step_pods::StepPods;
use super::warnings::WarningEvents;
use super::watched::WatchedJob;

/// Parallel reconciles by default: enough that a burst of Job completions across hundreds of runs
/// does not queue behind a few slow API calls (see bench/README.md).
pub const DEFAULT_CONCURRENCY: u16 = 64;

/// Default of `--pod-start-timeout` (seconds): long enough for a slow image pull on a busy node
/// (the kubelet's pull back-off reaches 80 s after five tries), short enough that a typo in an
/// image name fails the run within two minutes.
pub const DEFAULT_POD_START_TIMEOUT_SECONDS: i64 = 90;

/// Operator-wide settings (command-line flags).
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch only this namespace; None = all namespaces.
    pub namespace: Option<String>,
    /// A Running step whose Job has been missing this long was deleted by hand and is relaunched.
    pub missing_job_grace_seconds: i64,
    /// A step whose pod has not started this long after its Job was created fails its attempt
    /// when Kubernetes reports a cause (image pull errors, refused pods; see `engine::pod_start`).
    pub pod_start_timeout_seconds: i64,
    /// Parallel reconciles of started runs.
    pub concurrency: u16,
    /// Parallel reconciles of starting runs (None: half of `concurrency`).
    pub start_concurrency: Option<u16>,
    /// Operator-wide caps on running DagRuns and running step Jobs.
    pub caps: Caps,
    /// Keep at most this many finished runs per Dag (0 = no limit); older ones are deleted.
    pub history_limit: usize,
    /// Which Kubernetes Events to publish on DagRuns.
    pub events: EventLevel,
    /// The watcher Deployments of directory and bucket triggers.
    pub watcher: WatcherSettings,
}

/// Which Events the operator publishes (`--events`). Each level includes the ones before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum EventLevel {
    /// Warnings only: failed steps and runs, rejected and cancelled runs.
    #[default]
    Failures,
    /// Also run start and success.
    Runs,
    /// Also every step start, success and skip.
    All,
}

/// How the operator runs the watcher of a directory or bucket trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherSettings {
    /// The kubedag image the watcher runs; None: watchers are not run (the triggers say so).
    pub image: Option<String>,
    /// Seconds between a watcher's full re-scans.
    pub rescan_seconds: u32,
}

impl Default for WatcherSettings {
    fn default() -> Self {
        WatcherSettings {
            image: None,
            rescan_seconds: 30,
        }
    }
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            namespace: None,
            missing_job_grace_seconds: 10,
            pod_start_timeout_seconds: DEFAULT_POD_START_TIMEOUT_SECONDS,
            concurrency: DEFAULT_CONCURRENCY,
            start_concurrency: None,
            caps: Caps::default(),
            history_limit: 0,
            events: EventLevel::default(),
            watcher: WatcherSettings::default(),
        }
    }
}

/// Shared state of the reconcilers: the API client and read-only caches. Holds nothing that a
/// restart would lose: every decision is derived from the API server's objects.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub dags: Store<Dag>,
    pub jobs: Store<WatchedJob>,
    pub runs: Store<DagRun>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Asks the Dag reconciler to recount a Dag's runs after a run changed phase.
    pub dag_changed: UnboundedSender<ObjectRef<Dag>>,
    /// Asks the run reconciler to look at waiting runs again (a slot freed).
    pub wake_runs: UnboundedSender<ObjectRef<DagRun>>,
    pub gate: Gate,
    /// Versions of our own status writes the run cache has not delivered yet.
    pub own_writes: OwnWrites,
    /// UIDs of finished runs whose claim this process already released (saves a read per pass;
    /// after a restart each is released, idempotently, once more).
    pub released_claims: UidSet,
    /// When each step Job was first seen finished (launch-latency metric).
    pub completions: Arc<Completions>,
    /// Set while the Job cache is current (not in the middle of a list).
    pub jobs_synced: Arc<AtomicBool>,
    /// The step pods by Job, from the pod watch.
    pub pods: Arc<StepPods>,
    /// Warning Events by the object they are about, from a watch.
    pub warnings: Arc<WarningEvents>,
}

impl OperatorConfig {
    /// Parallel reconciles of starting runs: for runs of one step, starting is launching, so the
    /// start lane must not be much narrower than the other.
    pub fn start_concurrency(&self) -> u16 {
        self.start_concurrency.unwrap_or(self.concurrency / 2).max(1)
    }
}

impl Context {
    /// Whether the Job cache can be trusted. During a (re)list it lacks or has old versions of
    /// Jobs whose events already trigger reconciles; planning from it would relaunch a step whose
    /// Job looks missing, or miss a finished one until the next resync.
    pub fn jobs_synced(&self) -> bool {
        self.jobs_synced.load(Ordering::Relaxed)
    }
}

/// A bounded set of UIDs, remembered only as an optimisation (forgetting one costs a read).
#[derive(Default)]
pub struct UidSet(Mutex<HashSet<String>>);

/// Entries kept before the set is cleared.
const UID_SET_LIMIT: usize = 100_000;

impl UidSet {
    pub fn contains(&self, uid: &str) -> bool {
        self.0.lock().expect("uid set lock").contains(uid)
    }

    pub fn insert(&self, uid: String) {
        let mut set = self.0.lock().expect("uid set lock");
        if set.len() >= UID_SET_LIMIT {
            set.clear();
        }
        set.insert(uid);
    }
}
