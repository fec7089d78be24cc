//! `DagTrigger`: submits runs of a Dag on a cron schedule, or once per new file in a directory or
//! object in a bucket. Each input is submitted exactly once (see `crate::watch::ledger`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Volume;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DagRef;
use super::schema::lean;

/// The message of the CRD's rule that exactly one source is set (`kubectl dag lint` reports the
/// same).
pub const ONE_SOURCE: &str = "exactly one of spec.schedule, spec.directory, spec.bucket must be set";

/// Spec of a `DagTrigger`: the Dag, the params of each run, and exactly one source.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "kubedag.io",
    version = "v1alpha1",
    kind = "DagTrigger",
    plural = "dagtriggers",
    shortname = "dt",
    namespaced,
    status = "DagTriggerStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "Submits DagRuns of a Dag on a cron schedule or once per new file or object.",
    printcolumn = r#"{"name": "Dag", "type": "string", "jsonPath": ".spec.dagRef.name"}"#,
    printcolumn = r#"{"name": "Source", "type": "string", "jsonPath": ".status.source"}"#,
    printcolumn = r#"{"name": "Submitted", "type": "integer", "jsonPath": ".status.submitted"}"#,
    printcolumn = r#"{"name": "Last", "type": "date", "jsonPath": ".status.lastSubmitTime"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "[has(self.schedule), has(self.directory), has(self.bucket)].filter(x, x).size() == 1"
).message(ONE_SOURCE))]
#[serde(rename_all = "camelCase")]
pub struct DagTriggerSpec {
    /// The Dag to run, in the trigger's namespace.
    pub dag_ref: DagRef,
    /// Params of each run. Values may use the event's variables: `$(schedule.time)` (RFC 3339) for
    /// a schedule; `$(file.path)`, `$(file.name)`, `$(file.dir)`, `$(file.size)` for a directory
    /// or bucket, and `$(file.etag)` for a bucket. Any other `$(...)` is passed through unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// True: submit nothing (ticks and files seen meanwhile are not caught up, except a schedule's
    /// last tick inside `startingDeadlineSeconds`, and files still present when resumed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// A cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSource>,
    /// Files in a volume, watched by a small Deployment the operator runs per trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
    /// Objects in an S3-compatible bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<BucketSource>,
}

/// `spec.schedule`: Kubernetes CronJob semantics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSource {
    /// Five-field cron expression (minute hour day-of-month month day-of-week), e.g. `*/5 * * * *`;
    /// also `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    #[schemars(length(min = 1))]
    pub cron: String,
    /// IANA time zone of the expression, e.g. `Europe/Madrid`; default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// What a tick does while an earlier run of this trigger is still active.
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// A tick later than this many seconds is missed, not run (as for a CronJob). Unset: a missed
    /// tick is always caught up (at most one run, for the latest missed tick).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub starting_deadline_seconds: Option<i64>,
}

/// `spec.schedule.concurrencyPolicy`, as for a CronJob.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Runs of successive ticks may overlap.
    #[default]
    Allow,
    /// A tick is skipped while the previous run is active.
    Forbid,
    /// The active run is cancelled and the tick's run replaces it.
    Replace,
}

/// `spec.directory`: files in a volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    /// The volume (core/v1 Volume, e.g. a `persistentVolumeClaim`) the watcher mounts read-only.
    #[schemars(schema_with = "lean::<Volume>")]
    pub volume: Volume,
    /// Directory inside the volume to watch; default its root. `$(file.path)` is relative to the
    /// volume's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Glob on the file name, e.g. `*.fits`; default every file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A file is submitted once its size and mtime have not changed for this many seconds.
    #[serde(default = "default_settle_seconds")]
    pub settle_seconds: u32,
    /// Also watch subdirectories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

/// Default of `settleSeconds`.
pub fn default_settle_seconds() -> u32 {
    10
}

/// `spec.bucket`: objects in an S3-compatible bucket.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketSource {
    /// The S3 endpoint URL, e.g. `http://minio.storage:9000`.
    #[schemars(length(min = 1))]
    pub endpoint: String,
    #[schemars(length(min = 1))]
    pub bucket: String,
    /// Only keys under this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Glob on the object's name (the key's last segment), e.g. `*.fits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Secret in the trigger's namespace with keys `accessKeyId` and `secretAccessKey`
    /// (optionally `region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

/// Status of a `DagTrigger`, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DagTriggerStatus {
    /// `schedule`, `directory` or `bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Inputs submitted as runs, ever (ticks or files).
    #[serde(default)]
    pub submitted: u64,
    /// Ticks skipped (Forbid, missed deadline) or inputs seen again and not resubmitted.
    #[serde(default)]
    pub skipped: u64,
    /// Runs of this trigger that ended Failed (counted once each).
    #[serde(default)]
    pub failed: u64,
    /// When the source was last looked at: the last full scan or the last tick evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_time: Option<Time>,
    /// The last tick acted on (run, or skipped by Forbid past its deadline); a schedule's ticks
    /// after this one are due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// When the last run was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_submit_time: Option<Time>,
    /// The last run submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// The last error, e.g. `DagMissing: Dag "x" not found`; cleared by a good pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Failed runs already counted in `failed` (names, bounded to the last 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_runs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the source works and runs are submitted) with reason `Active`, `Suspended`, or the
    /// error's cause: `DagMissing`, `InvalidParams`, `InvalidSchedule`, `VolumeNotMountable`,
    /// `BucketUnreachable`, `WatcherNotReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl DagTriggerSpec {
    /// The name of the configured source: `schedule`, `directory`, `bucket` (the first set), or
    /// None when none is.
    pub fn source_name(&self) -> Option<&'static str> {
        if self.schedule.is_some() {
            Some("schedule")
        } else if self.directory.is_some() {
            Some("directory")
        } else if self.bucket.is_some() {
            Some("bucket")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn the_crd_requires_exactly_one_source_and_shows_the_columns() {
        let crd = serde_json::to_string(&DagTrigger::crd()).unwrap();
        assert!(crd.contains("exactly one of spec.schedule, spec.directory, spec.bucket"));
        for column in ["\"Dag\"", "\"Source\"", "\"Submitted\"", "\"Last\"", "\"Age\""] {
            assert!(crd.contains(column), "{column}");
        }
        assert!(crd.contains("\"dt\""));
    }

    #[test]
    fn a_directory_spec_reads_with_its_defaults() {
        let spec: DagTriggerSpec = serde_yaml::from_str(
            "dagRef: {name: d}\ndirectory: {volume: {name: in, persistentVolumeClaim: {claimName: c}}}\n",
        )
        .unwrap();
        let dir = spec.directory.as_ref().unwrap();
        assert_eq!(dir.settle_seconds, 10);
        assert!(!dir.recursive);
        assert_eq!(spec.source_name(), Some("directory"));
    }
}
