//! The hand-off between the in-cluster watcher and the operator: the watcher owns the `data` of
//! its stats ConfigMap (`watch::stats_name`), written by server-side apply under field manager
//! [`FIELD_MANAGER`]; the operator creates that ConfigMap (owner, labels) and only reads `data`,
//! folding it into the trigger's `status`. So no field has two writers.
//!
//! Counts are cumulative across watcher restarts: `submitted` is the ledger's size plus every
//! entry ever trimmed from it, so it is exact however a watcher stops (each input is recorded
//! once, including one whose run a killed watcher created but had not recorded); a new watcher
//! starts from the last report's `trimmed` and `skipped`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::watcher::{Report, Stats};

/// Field manager of the watcher's writes.
pub const FIELD_MANAGER: &str = "kubedag-watcher";

/// What one watcher reported last (every field optional in the ConfigMap: a missing or
/// malformed value reads as its default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatcherStats {
    /// Inputs submitted, ever: ledger entries now plus `trimmed`.
    pub submitted: u64,
    /// Ledger entries trimmed, ever (inputs gone from the source).
    pub trimmed: u64,
    /// Inputs already submitted seen again and not resubmitted.
    pub skipped: u64,
    /// Unix seconds of the last complete scan.
    pub last_scan: Option<i64>,
    /// Unix seconds of the last run created, and its name.
    pub last_submit: Option<i64>,
    pub last_run: Option<String>,
    /// `Reason: message` of the last failed scan or submission; None after a clean one.
    pub last_error: Option<String>,
    /// Files still settling and ledger entries, at the last report.
    pub settling: u64,
    pub ledger: u64,
    /// The trigger's `metadata.generation` the watcher runs with.
    pub generation: Option<i64>,
}

impl WatcherStats {
    /// Reads ConfigMap data.
    pub fn from_data(data: &BTreeMap<String, String>) -> WatcherStats {
        let num = |k: &str| data.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let int = |k: &str| data.get(k).and_then(|v| v.parse::<i64>().ok());
        let text = |k: &str| data.get(k).filter(|v| !v.is_empty()).cloned();
        WatcherStats {
            submitted: num("submitted"),
            trimmed: num("trimmed"),
            skipped: num("skipped"),
            last_scan: int("lastScan"),
            last_submit: int("lastSubmit"),
            last_run: text("lastRun"),
            last_error: text("lastError"),
            settling: num("settling"),
            ledger: num("ledger"),
            generation: int("generation"),
        }
    }

    /// ConfigMap data (absent values are written empty, so an apply clears them).
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let opt = |v: &Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        [
            ("submitted", self.submitted.to_string()),
            ("trimmed", self.trimmed.to_string()),
            ("skipped", self.skipped.to_string()),
            ("lastScan", opt(&self.last_scan)),
            ("lastSubmit", opt(&self.last_submit)),
            ("lastRun", self.last_run.clone().unwrap_or_default()),
            ("lastError", self.last_error.clone().unwrap_or_default()),
            ("settling", self.settling.to_string()),
            ("ledger", self.ledger.to_string()),
            ("generation", opt(&self.generation)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// This report after a process that started from `self` reached `process`. `submitted`
    /// never goes down (a process that has not loaded the ledger yet reports 0 entries).
    pub fn continued(&self, process: &Stats, generation: Option<i64>) -> WatcherStats {
        let trimmed = self.trimmed + process.trimmed;
        WatcherStats {
            submitted: self.submitted.max(process.ledger as u64 + trimmed),
            trimmed,
            skipped: self.skipped + process.skipped,
            last_scan: process.last_scan.or(self.last_scan),
            last_submit: process.last_submit.or(self.last_submit),
            last_run: process.last_run.clone().or_else(|| self.last_run.clone()),
            last_error: process.last_error.clone(),
            settling: process.settling as u64,
            ledger: process.ledger as u64,
            generation,
        }
    }
}

/// Reports to the stats ConfigMap `name`, continuing from `baseline` (the report found there
/// when the watcher started).
pub struct ConfigMapReport {
    pub api: Api<ConfigMap>,
    pub name: String,
    pub baseline: WatcherStats,
    pub generation: Option<i64>,
}

impl ConfigMapReport {
    /// Reads the last report of ConfigMap `name` (default when absent or empty).
    pub async fn load(api: &Api<ConfigMap>, name: &str) -> Result<WatcherStats, kube::Error> {
        let cm = api.get_opt(name).await?;
        Ok(WatcherStats::from_data(&cm.and_then(|c| c.data).unwrap_or_default()))
    }
}

impl Report for ConfigMapReport {
    async fn report(&mut self, stats: &Stats) {
        let report = self.baseline.continued(stats, self.generation);
        let patch = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name},
            "data": report.to_data(),
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = self.api.patch(&self.name, &params, &Patch::Apply(&patch)).await {
            // The next report carries the same counts: nothing is lost by missing one.
            tracing::warn!(%e, configmap = %self.name, "watcher report not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_and_continues_from_the_last_one() {
        let before = WatcherStats {
            submitted: 120,
            skipped: 3,
            last_run: Some("t-abc".into()),
            last_submit: Some(50),
            last_error: Some("BucketUnreachable: x".into()),
            generation: Some(1),
            ..Default::default()
        };
        assert_eq!(WatcherStats::from_data(&before.to_data()), before);
        let process = Stats {
            submitted: 80,
            skipped: 1,
            last_scan: Some(90),
            ledger: 190,
            trimmed: 5,
            ..Default::default()
        };
        // 190 in the ledger + 5 trimmed now + 5 trimmed before (whatever this process created).
        let before = WatcherStats { trimmed: 5, ..before };
        let after = before.continued(&process, Some(2));
        assert_eq!((after.submitted, after.trimmed, after.skipped), (200, 10, 4));
        let unloaded = after.continued(&Stats::default(), Some(2));
        assert_eq!(unloaded.submitted, 200, "never down");
        assert_eq!(after.last_run.as_deref(), Some("t-abc"));
        assert_eq!(after.last_error, None);
        assert_eq!((after.last_scan, after.generation), (Some(90), Some(2)));
        assert_eq!(WatcherStats::from_data(&BTreeMap::new()), WatcherStats::default());
    }
}
