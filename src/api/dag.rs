//! `Dag`: a workflow template. It never runs by itself; each `DagRun` executes it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a `Dag`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubedag.io",
    version = "v1alpha1",
    kind = "Dag",
    plural = "dags",
    namespaced,
    status = "DagStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A DAG workflow template: steps, their dependencies and the parameters a run may set.",
    printcolumn = r#"{"name": "Steps", "type": "integer", "jsonPath": ".status.stepCount"}"#,
    printcolumn = r#"{"name": "Active", "type": "integer", "jsonPath": ".status.activeRuns"}"#,
    printcolumn = r#"{"name": "Valid", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Valid\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DagSpec {
    /// Declared parameters. A DagRun may set only these; one without a default is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamDecl>,
    /// Container settings applied to every step unless the step overrides them.
    #[serde(default, skip_serializing_if = "ContainerSettings::is_empty")]
    pub defaults: ContainerSettings,
    /// Runs of this Dag executing at once; 0 = unlimited. Extra runs wait as Queued (FIFO by creation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_active_runs: u32,
    /// Steps of one run executing at once; 0 = unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_active_steps: u32,
    /// What happens to a new run whose resolved parameters equal another run's.
    #[serde(default)]
    pub duplicate_policy: DuplicatePolicy,
    /// 0 = keep finished runs; >0 = delete them (and their Jobs) that many seconds after they finish.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub ttl_seconds_after_finished: u64,
    /// The steps. Order does not matter; `depends` defines the graph.
    #[schemars(length(min = 1))]
    pub steps: Vec<Step>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A declared parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ParamDecl {
    /// Parameter name, also the name of the step containers' environment variable.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Value used when a run does not set the parameter. No default makes the parameter required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// Duplicate-parameter policy; the scope is (namespace, Dag, paramHash).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DuplicatePolicy {
    /// Refuse a new run while another with the same params is not Failed, Cancelled or Rejected.
    #[default]
    Forbid,
    /// Refuse a new run only while another with the same params is Pending, Queued or Running.
    ForbidConcurrent,
    /// Never refuse.
    Allow,
}

/// Container and pod settings shared by `defaults` and each step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Extra env vars. In a `value`, `$(name)` references a param or `KUBEDAG_*` value as in a
    /// step's `command`; nothing else is rewritten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

impl ContainerSettings {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// One step: one Kubernetes Job per attempt per run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// DNS-1123 label, unique in the Dag.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Steps that must finish before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    /// Container command. `$(name)` naming a param or a `KUBEDAG_*` value is replaced by its value
    /// (once: values are not re-scanned); nothing else is rewritten (`$$`, `$x`, `$(UNDECLARED)`
    /// reach the container as written). Exclusive with `script`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Container args, with the same `$(name)` references as `command`; exclusive with `script`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Shell script run with `sh -c`, delivered exactly as written (kubedag substitutes nothing:
    /// `$(...)` is shell command substitution, `$$` the shell's PID); parameters are environment
    /// variables (`$file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Overrides of the Dag's `defaults`.
    #[serde(flatten)]
    pub container: ContainerSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Deadline of one attempt, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i64>,
    /// When true, dependants run even if this step failed, and the run can still succeed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_failure: bool,
}

/// How often a failed step is re-run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RetryPolicy {
    /// Extra attempts after the first one fails.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub limit: u32,
}

/// Status of a `Dag`, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DagStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of steps in the spec.
    #[serde(default)]
    pub step_count: u32,
    /// Runs of this Dag currently Running.
    #[serde(default)]
    pub active_runs: u32,
    /// Runs of this Dag waiting for a slot.
    #[serde(default)]
    pub queued_runs: u32,
    /// `Valid`: whether the spec passes validation; the message names the offending step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
