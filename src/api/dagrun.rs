//! `DagRun`: one execution of a `Dag` with its own parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DagSpec;

/// Spec of a `DagRun`. Immutable except `cancel` and `retry` (enforced by CEL and by the webhook);
/// the webhook also refuses unsetting `cancel` and lowering `retry` or raising it on a run that is
/// not Failed.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "kubedag.io",
    version = "v1alpha1",
    kind = "DagRun",
    plural = "dagruns",
    shortname = "dr",
    namespaced,
    status = "DagRunStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "One execution of a Dag with its own parameters.",
    printcolumn = r#"{"name": "Dag", "type": "string", "jsonPath": ".spec.dagRef.name"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "Steps", "type": "string", "jsonPath": ".status.progress"}"#,
    printcolumn = r#"{"name": "Params", "type": "string", "jsonPath": ".status.shortHash"}"#,
    printcolumn = r#"{"name": "Request", "type": "string", "jsonPath": ".status.requestId", "priority": 1}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    selectable = ".spec.dagRef.name"
)]
#[serde(rename_all = "camelCase")]
pub struct DagRunSpec {
    /// The Dag to run, in the same namespace.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.dagRef is immutable"))]
    pub dag_ref: DagRef,
    /// Parameter values. Undeclared names and missing required ones are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.params is immutable"))]
    pub params: BTreeMap<String, String>,
    /// Caller-chosen id (e.g. one per input file); empty: the operator assigns a UUIDv4.
    /// Must be a valid label value since it labels every Job and pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.requestId is immutable"))]
    #[schemars(length(max = 63), regex(pattern = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"))]
    pub request_id: String,
    /// Raise above `status.retries` to re-run the failed and skipped steps of a Failed run as new
    /// attempts (new Job names), keeping its requestId and params. `kubectl dag retry` does this.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry: u32,
    /// Set true to stop the run: running Jobs are deleted and the run ends Cancelled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
}

/// Reference to a `Dag` in the run's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DagRef {
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
}

/// Phase of a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum RunPhase {
    #[default]
    Pending,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Rejected,
}

impl RunPhase {
    pub const ALL: [RunPhase; 7] = [
        RunPhase::Pending,
        RunPhase::Queued,
        RunPhase::Running,
        RunPhase::Succeeded,
        RunPhase::Failed,
        RunPhase::Cancelled,
        RunPhase::Rejected,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled | Self::Rejected)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Rejected => "Rejected",
        }
    }
}

/// Phase of one step of a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum StepPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StepPhase {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

impl DagRun {
    /// The run's phase: Pending until the operator has written one.
    pub fn phase(&self) -> RunPhase {
        self.status.as_ref().map(|s| s.phase).unwrap_or_default()
    }
}

/// Status of a `DagRun`, written only by the operator through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DagRunStatus {
    #[serde(default)]
    pub phase: RunPhase,
    /// Machine-readable reason of the last phase change (e.g. `DuplicateParams`, `InvalidParams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Never changes once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Resolved parameters: the Dag's defaults overridden by `spec.params`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, String>>,
    /// Lowercase hex SHA-256 of the canonical JSON of the resolved parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_hash: Option<String>,
    /// First characters of `paramHash`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_hash: Option<String>,
    /// Finished steps / all steps, e.g. `3/5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `spec.retry` value last acted on.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// The run's `resourceVersion` when the operator first saw it: its creation revision, which
    /// orders runs created within the same second (see the queue's FIFO rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_revision: Option<String>,
    /// The run's workspace PersistentVolumeClaim (`spec.workspace` of its Dag), once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_claim: Option<String>,
    /// The Dag spec captured when the run started; the run executes this, whatever happens to the Dag.
    // An `Arc`: the operator's run cache keeps one copy of each distinct captured spec, not one per
    // run (`controller::shared_specs`), and a reconcile's copy of the status is cheap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag_spec: Option<Arc<DagSpec>>,
    /// The Dag's `spec.outputs`, recorded when the run succeeds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// Compact per-step status entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    pub name: String,
    #[serde(default)]
    pub phase: StepPhase,
    /// The Job of the latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Attempts launched so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Attempts made before the latest run retry; `retry.limit` counts from here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_before: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the step's next attempt is due: `retry.backoff` after a failed attempt, or the backoff
    /// after a refused Job create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// Consecutive refusals of this step's Job create that may clear (quota, policy).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_refusals: u32,
    /// Machine-readable reason of the phase, e.g. `WhenFalse` for a step skipped by its `when`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The step's declared outputs (undeclared ones are refused), recorded when an attempt
    /// succeeds; a declared output the step did not write is "".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
    /// A `call` step: the child DagRun whose outcome the step takes (its own, or a reused one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_run: Option<String>,
    /// A `call` step: true when `childRun` is an identical run made by someone else (reuse under
    /// the child Dag's `duplicatePolicy`), not this run's own child.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
    /// A `forEach` step: counts and the failed instances (per-instance detail lives in the Jobs
    /// or child runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<Box<ForEachStatus>>,
}

/// Progress of a `forEach` step. Bounded whatever the number of items: counts, one bit per item
/// and at most [`ForEachStatus::FAILED_KEPT`] failed instances.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForEachStatus {
    /// Items in the list.
    #[serde(default)]
    pub total: u32,
    /// Instances launched so far: items `0..launched` have started (in item order).
    #[serde(default)]
    pub launched: u32,
    #[serde(default)]
    pub succeeded: u32,
    #[serde(default)]
    pub failed: u32,
    /// Finished instances, one bit per item (item i is bit `i % 8` of byte `i / 8`), as hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub done: String,
    /// The first failed instances, by item index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_items: Vec<FailedItem>,
    /// Which run retry this fan-out belongs to (part of its instances' names).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
}

impl ForEachStatus {
    /// Failed instances named in `failedItems`; `failed` counts them all.
    pub const FAILED_KEPT: usize = 20;
}

/// A failed `forEach` instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FailedItem {
    /// 0-based item index.
    pub index: u32,
    /// The item (cut to 64 characters).
    pub item: String,
    pub message: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerSettings, Step};
    use jiff::Timestamp;

    /// Invariant 7: a 200-step run's status, spec snapshot included, stays far below etcd's limit.
    #[test]
    fn a_200_step_status_is_well_under_100_kib() {
        let now = Time(Timestamp::now());
        let steps: Vec<Step> = (0..200)
            .map(|i| Step {
                name: format!("step-{i:03}"),
                depends: if i == 0 {
                    vec![]
                } else {
                    vec![format!("step-{:03}", i - 1)]
                },
                script: Some("echo \"processing $file at $threshold\"".into()),
                ..Default::default()
            })
            .collect();
        let status = DagRunStatus {
            phase: RunPhase::Running,
            request_id: Some(uuid::Uuid::new_v4().to_string()),
            param_hash: Some("a".repeat(64)),
            params: Some([("file".to_string(), "m31-0001.fits".to_string())].into()),
            steps: (0..200)
                .map(|i| StepStatus {
                    name: format!("step-{i:03}"),
                    phase: StepPhase::Failed,
                    job_name: Some(format!("process-image-x7k2q-step-{i:03}-3-abcdef")),
                    attempts: 3,
                    started_at: Some(now.clone()),
                    finished_at: Some(now.clone()),
                    exit_code: Some(137),
                    message: Some("attempt 3 failed: exit code 137 (OOMKilled)".into()),
                    ..Default::default()
                })
                .collect(),
            dag_spec: Some(Arc::new(DagSpec {
                defaults: ContainerSettings {
                    image: Some("busybox".into()),
                    ..Default::default()
                },
                steps,
                ..Default::default()
            })),
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&status).unwrap().len();
        assert!(bytes < 100 * 1024, "status is {bytes} bytes");
    }
}
