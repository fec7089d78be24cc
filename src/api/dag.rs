//! `Dag`: a workflow template. It never runs by itself; each `DagRun` executes it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, LocalObjectReference, PersistentVolumeClaimSpec, PodSecurityContext,
    ResourceRequirements, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::lean;

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
    /// Exit handlers: steps run once every main step is terminal, whatever the outcome (also after
    /// a cancel). Same fields as steps; they may depend on each other, never on main steps, and
    /// their names are unique across `steps` and `onExit`. They get env `KUBEDAG_RUN_PHASE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_exit: Vec<Step>,
    /// One PersistentVolumeClaim per run, made from `volumeClaimTemplate` before the run's first
    /// Job, owned by the run (deleted with it) and mounted at `mountPath` in every step and exit
    /// handler, so steps hand files to each other. Runs never share a workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Box<Workspace>>,
    /// Values a run publishes when it succeeds, recorded in `status.outputs`; a step that calls
    /// this Dag (`steps[].call`) reads them as its own outputs. `value` may use
    /// `$(steps.S.outputs.N)` of any main step and `$(param)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<DagOutput>,
}

/// One entry of `spec.outputs`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct DagOutput {
    /// `[A-Za-z_][A-Za-z0-9_]*`, unique in the Dag.
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub name: String,
    /// Text with `$(steps.S.outputs.N)` and `$(param)` references, e.g. `$(steps.sum.outputs.total)`.
    pub value: String,
}

/// `steps[].call`: the step runs a child DagRun of another Dag instead of a Job.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Call {
    /// The Dag to run, in the same namespace.
    #[schemars(length(min = 1, max = 63))]
    pub dag: String,
    /// The child run's `spec.params`; values may use `$(param)`, `$(steps.S.outputs.N)` and, in a
    /// `forEach` step, `$(item)`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// `steps[].forEach`: the step runs once per item. Exactly one of `items`, `param`, `output`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForEach {
    /// The items, written out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// A declared parameter whose value is a JSON array of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// `steps.S.outputs.N` of a step it depends on, whose value is a JSON array (strings, numbers
    /// or booleans; each item is passed as its text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Instances running at once; 0 = unlimited (the operator's Job cap still applies).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_parallel: u32,
}

/// `spec.workspace`: the per-run volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    /// Absolute path of the workspace in every step container, e.g. `/workspace`.
    #[schemars(length(min = 2), regex(pattern = r"^/"))]
    pub mount_path: String,
    pub volume_claim_template: WorkspaceClaimTemplate,
}

/// The claim each run gets: the PersistentVolumeClaim spec (core/v1), e.g. `accessModes` and
/// `resources.requests.storage`; no `storageClassName` means the cluster's default class.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct WorkspaceClaimTemplate {
    #[schemars(schema_with = "lean::<PersistentVolumeClaimSpec>")]
    pub spec: PersistentVolumeClaimSpec,
}

impl DagSpec {
    /// The main steps, then the `onExit` handlers: the order in which a run's `status.steps`
    /// lists them and by which the planner indexes them.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().chain(&self.on_exit)
    }

    /// Step `i` of [`DagSpec::all_steps`].
    pub fn step_at(&self, i: usize) -> &Step {
        match self.steps.get(i) {
            Some(step) => step,
            None => &self.on_exit[i - self.steps.len()],
        }
    }
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

/// Container and pod settings shared by `defaults` and each step, with the names and core/v1 types
/// of a PodSpec/Container.
///
/// Merge (a step over `defaults`): a step's value replaces the default's, except that `env` and
/// `volumes` (keyed by `name`), `volumeMounts` (keyed by `mountPath`) and `imagePullSecrets` (keyed by
/// `name`) merge entry by entry (a step's entry with a default's key replaces it, others are added),
/// and `podLabels`/`podAnnotations` merge as maps (the step wins). The contract's labels
/// (`kubedag.io/*`) and env vars (params, `KUBEDAG_*`) always win over user ones of the same name.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
///
/// The large core/v1 objects are boxed: every run in the operator's cache holds these settings
/// once per step of its Dag and once for its defaults (`status.dagSpec`), and inline they made
/// each 1,400 bytes even when empty (boxed: 368, `size_of` on x86-64).
pub struct ContainerSettings {
    /// The container image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Extra env vars. In a `value`, `$(name)` references a param or `KUBEDAG_*` value as in a
    /// step's `command`; nothing else is rewritten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "lean::<Vec<EnvVar>>")]
    pub env: Vec<EnvVar>,
    /// Env vars from ConfigMaps/Secrets; `env` and the contract's env vars win over them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "lean::<Vec<EnvFromSource>>")]
    pub env_from: Vec<EnvFromSource>,
    /// The container's resource requests and limits (core/v1 ResourceRequirements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lean::<Option<ResourceRequirements>>")]
    pub resources: Option<Box<ResourceRequirements>>,
    /// The pod's service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The pod's node selector; a step's replaces the defaults' whole.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// The pod's tolerations; a step's replace the defaults' whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "lean::<Vec<Toleration>>")]
    pub tolerations: Vec<Toleration>,
    /// Pod volumes, merged with the defaults' by `name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "lean::<Vec<Volume>>")]
    pub volumes: Vec<Volume>,
    /// Container mounts, merged with the defaults' by `mountPath` (unique in a container).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "lean::<Vec<VolumeMount>>")]
    pub volume_mounts: Vec<VolumeMount>,
    /// The container's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// The container's security context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lean::<Option<SecurityContext>>")]
    pub security_context: Option<Box<SecurityContext>>,
    /// The pod's security context (PodSpec `securityContext`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lean::<Option<PodSecurityContext>>")]
    pub pod_security_context: Option<Box<PodSecurityContext>>,
    /// The pod's affinity (core/v1 Affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lean::<Option<Affinity>>")]
    pub affinity: Option<Box<Affinity>>,
    /// The pod's PriorityClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// The pod's image pull secrets, merged with the defaults' by `name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "lean::<Vec<LocalObjectReference>>")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Extra pod labels; the contract's `kubedag.io/*` labels override these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,
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
    pub retry: Option<Box<RetryPolicy>>,
    /// Deadline of one attempt, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i64>,
    /// When true, dependants run even if this step failed, and the run can still succeed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_failure: bool,
    /// Names (`[A-Za-z_][A-Za-z0-9_]*`) of the values this step publishes: its container writes
    /// `NAME=value` lines to the file `$KUBEDAG_OUTPUTS`; a value is at most 1 KiB, the file less
    /// than 4 KiB. Dependants read them as `$(steps.STEP.outputs.NAME)` in command, args and env
    /// values, and as `$KUBEDAG_OUTPUT_<STEP>_<NAME>` (upper-cased, `-` -> `_`) in scripts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")))]
    pub outputs: Vec<String>,
    /// CEL condition over `params` (map of strings) and `steps` (step name -> {phase, outputs,
    /// exitCode}) of the steps this one depends on, evaluated once its dependencies are done;
    /// false skips the step (reason `WhenFalse`) and its dependants still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub when: Option<String>,
    /// Run a child DagRun of another Dag instead of a Job; exclusive with command/args/script.
    /// The step's `outputs` name the child Dag's `spec.outputs` it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<Box<Call>>,
    /// Run the step once per item (a Job, or a child run with `call`, per item), with env `item`
    /// and `KUBEDAG_ITEM_INDEX` and `$(item)` in command, args, env values and call params. Each
    /// instance retries on its own; the step's outputs become JSON arrays in item order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<Box<ForEach>>,
}

/// How often a failed step is re-run, how long to wait between attempts, and which failures count.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Extra attempts after the first one fails.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub limit: u32,
    /// Wait between attempts; none = the next attempt starts as soon as the failure is seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Retry only failures of the program with one of these exit codes (1-255). Failures that are
    /// not the program's (the pod was evicted, its node went away, it could not start) are retried
    /// whatever this says. Empty: every failure is retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 1, max = 255)))]
    pub on_exit_codes: Vec<i32>,
}

/// Delay before attempt n+1 (n >= 1): `delaySeconds * factor^(n-1)`, at most `maxDelaySeconds`,
/// counted from the end of attempt n (whole seconds, rounded up).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// Delay before the second attempt, in seconds (>= 0).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub delay_seconds: i64,
    /// Growth per attempt (>= 1; 1 = a constant delay). Default 2.
    #[serde(default = "default_factor")]
    #[schemars(range(min = 1.0))]
    pub factor: f64,
    /// Upper bound of any one delay, in seconds (>= 0); none = no bound but the operator's
    /// (one day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_delay_seconds: Option<i64>,
}

fn default_factor() -> f64 {
    2.0
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            delay_seconds: 0,
            factor: default_factor(),
            max_delay_seconds: None,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cached run holds these once per step of its Dag, so an empty one must stay small.
    #[test]
    fn empty_step_settings_stay_small() {
        assert!(
            std::mem::size_of::<ContainerSettings>() <= 512,
            "ContainerSettings is {} bytes",
            std::mem::size_of::<ContainerSettings>()
        );
        assert!(
            std::mem::size_of::<Step>() <= 1024,
            "Step is {} bytes",
            std::mem::size_of::<Step>()
        );
    }
}
