//! Prometheus metrics of the operator (served on `/metrics`).

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{DagRun, RunPhase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    controller: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabel {
    kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    transitions: Family<PhaseLabel, Counter>,
    runs: Family<PhaseLabel, Gauge>,
    writes: Family<WriteLabel, Counter>,
    launch_latency: Histogram,
    steps_launched: Counter,
    stale_skips: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kubedag");
        let reconciles = Family::<ControllerLabel, Counter>::default();
        let errors = Family::<ErrorLabel, Counter>::default();
        let transitions = Family::<PhaseLabel, Counter>::default();
        let runs = Family::<PhaseLabel, Gauge>::default();
        let writes = Family::<WriteLabel, Counter>::default();
        let buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let launch_latency = Histogram::new(buckets);
        let steps_launched = Counter::default();
        let stale_skips = Counter::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed", errors.clone());
        registry.register("run_transitions", "Runs entering each phase", transitions.clone());
        registry.register("runs", "DagRuns by phase in the watched namespaces", runs.clone());
        registry.register("api_writes", "Write requests sent to the API server", writes.clone());
        registry.register(
            "step_launch_latency_seconds",
            "Time from a step's last dependency finishing to its Job being created",
            launch_latency.clone(),
        );
        registry.register("steps_launched", "Step Jobs created", steps_launched.clone());
        registry.register(
            "stale_reconciles_skipped",
            "Reconciles skipped because the cache had not yet seen the operator's own status write",
            stale_skips.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            transitions,
            runs,
            writes,
            launch_latency,
            steps_launched,
            stale_skips,
        }
    }
}

impl Metrics {
    pub fn reconcile(&self, controller: &'static str) {
        self.reconciles.get_or_create(&ControllerLabel { controller }).inc();
    }

    pub fn reconcile_error(&self, controller: &'static str, kind: &'static str) {
        self.errors.get_or_create(&ErrorLabel { controller, kind }).inc();
    }

    pub fn run_transition(&self, phase: RunPhase) {
        self.transitions
            .get_or_create(&PhaseLabel { phase: phase.as_str() })
            .inc();
    }

    pub fn api_write(&self, kind: &'static str) {
        self.writes.get_or_create(&WriteLabel { kind }).inc();
    }

    /// A step Job was created; `latency` is None for root steps (nothing to wait for).
    pub fn step_launched(&self, latency: Option<f64>) {
        self.steps_launched.inc();
        if let Some(seconds) = latency {
            self.launch_latency.observe(seconds);
        }
    }

    pub fn stale_skip(&self) {
        self.stale_skips.inc();
    }

    /// Text exposition, with the runs-by-phase gauge computed from the current cache.
    pub fn render(&self, runs: &[std::sync::Arc<DagRun>]) -> String {
        for phase in RunPhase::ALL {
            let count = runs.iter().filter(|r| r.phase() == phase).count();
            self.runs
                .get_or_create(&PhaseLabel { phase: phase.as_str() })
                .set(count as i64);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
