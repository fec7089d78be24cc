//! What `kubectl dag lint` checks in one document, and where (the field path) each problem is.
//!
//! The checks are the cluster's own: the CRD schema (types, and fields the API server would drop),
//! [`validate::validate_dag`] (the webhook's Dag check) and [`admit::check`] (the webhook's run
//! check) against the Dags found in the same files.

use std::collections::BTreeMap;

use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{Dag, DagRun, DagSpec, DagTrigger, RunPhase};
use crate::engine::validate::{self, DagError, Who};
use crate::engine::{admit, duplicates};

/// One problem: the field path it is about (see [`super::documents::Document::line_of`]) and the
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    /// Set when the parser knows the exact line (1-based, within the document).
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub(super) fn at(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }
}

/// A document as far as lint understands it.
pub enum Parsed {
    Dag(Box<Dag>),
    Run(Box<DagRun>),
    Trigger(Box<DagTrigger>),
    /// Not a kubedag object (a Namespace, a PVC, ...): not checked.
    Other,
    /// A kubedag object that does not parse; the problems say why.
    Broken(Vec<Problem>),
}

/// Parses a document by its `apiVersion`/`kind`, and checks it against its CRD's schema: the
/// object (when it parses), and the fields the schema does not know.
pub fn parse(text: &str) -> (Parsed, Vec<Problem>) {
    let value: Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(err) => return (Parsed::Broken(vec![yaml_problem(&err)]), Vec::new()),
    };
    let is_kubedag = value["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with(&format!("{}/", crate::api::GROUP)));
    let (crd, kind) = match (is_kubedag, value["kind"].as_str()) {
        (true, Some("Dag")) => (Dag::crd(), "Dag"),
        (true, Some("DagRun")) => (DagRun::crd(), "DagRun"),
        (true, Some("DagTrigger")) => (DagTrigger::crd(), "DagTrigger"),
        (true, other) => {
            let kind = other.unwrap_or("(none)");
            let problem = Problem::at(
                "kind",
                format!("kind {kind:?} is not a kubedag kind (Dag, DagRun, DagTrigger)"),
            );
            return (Parsed::Broken(vec![problem]), Vec::new());
        }
        _ => return (Parsed::Other, Vec::new()),
    };
    let mut problems = Vec::new();
    if let Some(schema) = crd.spec.versions.first().and_then(|v| v.schema.as_ref()) {
        let schema = serde_json::to_value(&schema.open_api_v3_schema).unwrap_or_default();
        // The schema leaves out apiVersion, kind and metadata (the API server owns them).
        unknown_fields(&value["spec"], &schema["properties"]["spec"], "spec", &mut problems);
    }
    let parsed = match kind {
        "Dag" => typed::<Dag>(text).map(|d| Parsed::Dag(Box::new(d))),
        "DagTrigger" => typed::<DagTrigger>(text).map(|t| Parsed::Trigger(Box::new(t))),
        _ => typed::<DagRun>(text).map(|r| Parsed::Run(Box::new(r))),
    };
    match parsed {
        Ok(parsed) => (parsed, problems),
        Err(problem) => (Parsed::Broken(vec![problem]), problems),
    }
}

fn typed<T: DeserializeOwned>(text: &str) -> Result<T, Problem> {
    serde_yaml::from_str(text).map_err(|err| yaml_problem(&err))
}

fn yaml_problem(err: &serde_yaml::Error) -> Problem {
    let text = err.to_string();
    // The location goes in front as file:line; drop serde_yaml's " at line L column C".
    let message = match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    };
    Problem {
        path: String::new(),
        line: err.location().map(|l| l.line()),
        message,
    }
}

/// Fields the CRD's structural schema does not declare: the API server silently drops them, so a
/// typo (`dependss:`) would otherwise go unnoticed.
fn unknown_fields(value: &Value, schema: &Value, path: &str, problems: &mut Vec<Problem>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return;
    }
    match value {
        Value::Object(fields) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            for (key, child) in fields {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match properties.and_then(|p| p.get(key)) {
                    Some(child_schema) => unknown_fields(child, child_schema, &child_path, problems),
                    None if additional.is_object() => unknown_fields(child, additional, &child_path, problems),
                    None if properties.is_some() => problems.push(Problem::at(
                        child_path.clone(),
                        format!("{child_path}: unknown field (the API server would drop it)"),
                    )),
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unknown_fields(item, &schema["items"], &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

/// The webhook's Dag check, each problem at the field it is about.
pub fn check_dag(spec: &DagSpec) -> Vec<Problem> {
    match validate::validate_dag(spec) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .0
            .iter()
            .map(|error| Problem::at(dag_error_path(spec, error), error.to_string()))
            .collect(),
    }
}

/// The path of the step (or exit handler) named `name`.
fn step_path(spec: &DagSpec, name: &str, handler: bool) -> String {
    let (list, field) = if handler {
        (&spec.on_exit, "onExit")
    } else {
        (&spec.steps, "steps")
    };
    match list.iter().position(|s| s.name == name) {
        Some(i) => format!("spec.{field}[{i}]"),
        None => format!("spec.{field}"),
    }
}

fn dag_error_path(spec: &DagSpec, error: &DagError) -> String {
    let step = |who: &Who, field: &str| {
        let path = step_path(spec, &who.name, who.handler);
        if field.is_empty() {
            path
        } else {
            format!("{path}.{field}")
        }
    };
    match error {
        DagError::NoSteps => "spec.steps".into(),
        DagError::BadParamName { .. } | DagError::DuplicateParam { .. } | DagError::ReservedParam { .. } => {
            "spec.params".into()
        }
        DagError::BadWorkspacePath { .. } => "spec.workspace.mountPath".into(),
        DagError::DagOutput { name, .. } => match spec.outputs.iter().position(|o| &o.name == name) {
            Some(i) => format!("spec.outputs[{i}]"),
            None => "spec.outputs".into(),
        },
        DagError::Cycle { steps, handlers } => match steps.first() {
            Some(first) => step_path(spec, first, *handlers),
            None => "spec.steps".into(),
        },
        DagError::HandlerDependsOnStep { handler, .. } => format!("{}.depends", step_path(spec, handler, true)),
        DagError::StepDependsOnHandler { step, .. } => format!("{}.depends", step_path(spec, step, false)),
        DagError::OutputEnvCollision { second, .. } => step_path(spec, &second.step, false),
        DagError::BadStepName { step: who, .. } => step(who, "name"),
        DagError::UnknownDependency { step: who, .. } => step(who, "depends"),
        DagError::CommandAndScript { step: who } => step(who, "script"),
        DagError::NoImage { step: who } => step(who, ""),
        DagError::ReservedEnv { step: who, .. } => step(who, "env"),
        DagError::BadOutputName { step: who, .. } | DagError::DuplicateOutput { step: who, .. } => step(who, "outputs"),
        DagError::When { step: who, .. } => step(who, "when"),
        DagError::BadRetry { step: who, field, .. } => step(who, &format!("retry.{field}")),
        DagError::ReservedVolume { step: who, .. } => step(who, "volumes"),
        DagError::WorkspaceMountTaken { step: who, .. } | DagError::UnknownVolume { step: who, .. } => {
            step(who, "volumeMounts")
        }
        DagError::DuplicateStep { step: who }
        | DagError::Reference { step: who, .. }
        | DagError::Compose { step: who, .. } => step(who, ""),
    }
}

/// Where a run was seen, to name it in a duplicate's message.
#[derive(Debug, Clone)]
pub struct Seen {
    pub name: String,
    pub place: String,
}

/// Runs already checked, by (namespace, Dag, paramHash).
pub type SeenRuns = BTreeMap<(String, String, String), Seen>;

/// The webhook's run check against `dag` (the run's Dag if the linted files have it), and a
/// duplicate check against the runs linted before it (`seen`; the run is added there).
/// Without its Dag, only the run's own fields are checked: the Dag may be in the cluster.
pub fn check_run(run: &DagRun, dag: Option<&Dag>, place: &str, seen: &mut SeenRuns) -> Vec<Problem> {
    let mut run = run.clone();
    let generated = run.metadata.name.is_none() && run.metadata.generate_name.is_some();
    if generated {
        run.metadata.name = Some("generated".into());
    }
    let namespace = run.metadata.namespace.clone().unwrap_or_default();
    let admissible = match admit::check(&run, &namespace, dag) {
        Ok(admissible) => admissible,
        Err(admit::Refusal::DagNotFound { .. } | admit::Refusal::InvalidDag { .. }) => return Vec::new(),
        Err(refusal) => {
            let path = match refusal {
                admit::Refusal::InvalidName { .. } => "metadata.name",
                admit::Refusal::InvalidRequestId { .. } => "spec.requestId",
                _ => "spec.params",
            };
            return vec![Problem::at(path, refusal.to_string())];
        }
    };
    let Some(dag) = dag else {
        return Vec::new();
    };
    let policy = dag.spec.duplicate_policy;
    if !duplicates::blocks(policy, RunPhase::Pending) {
        return Vec::new();
    }
    let name = run.metadata.name.clone().unwrap_or_default();
    let key = (namespace, run.spec.dag_ref.name.clone(), admissible.param_hash.clone());
    match seen.get(&key) {
        Some(first) => vec![Problem::at(
            "spec.params",
            format!(
                "same parameters as run {:?} ({}): under duplicatePolicy {policy:?} the webhook refuses the later one",
                first.name, first.place
            ),
        )],
        None => {
            seen.insert(
                key,
                Seen {
                    name,
                    place: place.to_string(),
                },
            );
            Vec::new()
        }
    }
}
