//! Validation of a Dag spec and of the names kubedag relies on. Every message names the offending
//! step, parameter or field so a user can fix it without reading the operator's code.

use std::collections::HashSet;
use std::fmt;

use crate::api::{ContainerSettings, DagSpec, Step};

use super::references::{self, OutputRef, RefError};
use super::{graph, settings, when, workspace};

/// Prefix of the environment variables the operator sets on every step container.
pub const RESERVED_ENV_PREFIX: &str = "KUBEDAG_";

/// The subject of a step-level error, shown as `step "a"` or `onExit handler "a"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub name: String,
    /// True for an exit handler (`spec.onExit`), false for a main step (`spec.steps`).
    pub handler: bool,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.handler { "onExit handler" } else { "step" };
        write!(f, "{kind} {:?}", self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("spec.steps: the Dag has no steps")]
    NoSteps,
    #[error("{step}: invalid name: {reason}")]
    BadStepName { step: Who, reason: String },
    /// Names are unique across `steps` and `onExit`.
    #[error("{step}: duplicate step name")]
    DuplicateStep { step: Who },
    #[error("{step}: depends on unknown step {dependency:?}")]
    UnknownDependency { step: Who, dependency: String },
    #[error("{} {}: dependency cycle", if *.handlers { "onExit handlers" } else { "steps" }, .steps.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" -> "))]
    Cycle { steps: Vec<String>, handlers: bool },
    #[error("{step}: command/args and script are exclusive; set one")]
    CommandAndScript { step: Who },
    #[error("{step}: no image: set its image or spec.defaults.image")]
    NoImage { step: Who },
    /// A problem of the step's `call` or `forEach`.
    #[error("{step}: {message}")]
    Compose { step: Who, message: String },
    #[error("spec.outputs {name:?}: {message}")]
    DagOutput { name: String, message: String },
    #[error("spec.params: invalid parameter name {name:?}: must match [A-Za-z_][A-Za-z0-9_]*")]
    BadParamName { name: String },
    #[error("spec.params: parameter {name:?} declared twice")]
    DuplicateParam { name: String },
    #[error("spec.params: parameter {name:?} uses the reserved KUBEDAG_ prefix")]
    ReservedParam { name: String },
    #[error("{step}: env var {name:?} collides with a parameter or the reserved KUBEDAG_ prefix")]
    ReservedEnv { step: Who, name: String },
    #[error("{step}: invalid output name {name:?}: must match [A-Za-z_][A-Za-z0-9_]*")]
    BadOutputName { step: Who, name: String },
    #[error("{step}: output {name:?} declared twice")]
    DuplicateOutput { step: Who, name: String },
    #[error("{step}: when: {message}")]
    When { step: Who, message: String },
    #[error("{step}: {error}")]
    Reference { step: Who, error: RefError },
    #[error(
        "onExit handler {handler:?}: depends on main step {dependency:?}; exit handlers run after every main step and may depend only on other exit handlers"
    )]
    HandlerDependsOnStep { handler: String, dependency: String },
    #[error("step {step:?}: depends on onExit handler {handler:?}; main steps may not depend on exit handlers")]
    StepDependsOnHandler { step: String, handler: String },
    #[error("step {:?} output {:?} and step {:?} output {:?} both map to the script variable {env}; rename one", .first.step, .first.output, .second.step, .second.output)]
    OutputEnvCollision {
        env: String,
        first: OutputRef,
        second: OutputRef,
    },
    #[error("{step}: retry.{field}: {message}")]
    BadRetry {
        step: Who,
        field: &'static str,
        message: String,
    },
    #[error("spec.workspace.mountPath: must be an absolute path other than /, is {path:?}")]
    BadWorkspacePath { path: String },
    #[error("{step}: volume name {name:?} is reserved for the run's workspace (spec.workspace)")]
    ReservedVolume { step: Who, name: String },
    #[error(
        "{step}: volumeMounts entry {mount_path:?} is the workspace's mountPath (spec.workspace); mount it elsewhere"
    )]
    WorkspaceMountTaken { step: Who, mount_path: String },
    #[error(
        "{step}: volumeMounts entry {mount_path:?} names volume {volume:?}, which neither the step nor spec.defaults declares in volumes"
    )]
    UnknownVolume {
        step: Who,
        mount_path: String,
        volume: String,
    },
}

/// All problems of a Dag spec, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagErrors(pub Vec<DagError>);

impl fmt::Display for DagErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for DagErrors {}

/// Checks a Dag spec: step and handler names (unique across both), dependencies (handlers only
/// on handlers, main steps never on handlers), cycles, command vs script, images, parameter
/// names, env var collisions, outputs, `when` expressions, every reference to another step's
/// outputs or state (see [`references`]), `retry` (delays, factor, exit codes) and the workspace
/// (its path, and steps' volumes leaving its name and path free).
pub fn validate_dag(spec: &DagSpec) -> Result<(), DagErrors> {
    let mut errors = Vec::new();
    if spec.steps.is_empty() {
        errors.push(DagError::NoSteps);
    }
    check_params(spec, &mut errors);
    let mut seen = HashSet::new();
    for (step, who) in subjects(spec) {
        if let Err(reason) = check_dns_label(&step.name) {
            errors.push(DagError::BadStepName {
                step: who.clone(),
                reason,
            });
        }
        if !seen.insert(step.name.as_str()) {
            errors.push(DagError::DuplicateStep { step: who.clone() });
        }
        check_step_body(spec, step, &who, &mut errors);
        check_volume_mounts(spec, step, &who, &mut errors);
        check_retry(step, &who, &mut errors);
        check_workspace_use(spec, step, &who, &mut errors);
    }
    if let Some(ws) = &spec.workspace
        && (!ws.mount_path.starts_with('/') || ws.mount_path.trim_end_matches('/').is_empty())
    {
        errors.push(DagError::BadWorkspacePath {
            path: ws.mount_path.clone(),
        });
    }
    check_dependencies(spec, &mut errors);
    super::validate_compose::check_outputs(spec, &mut errors);
    for (steps, handlers) in [(&spec.steps, false), (&spec.on_exit, true)] {
        if let Err(stuck) = graph::topological_order(steps) {
            errors.push(DagError::Cycle {
                steps: graph::find_cycle(steps, &stuck),
                handlers,
            });
        }
    }
    for (env, first, second) in references::env_name_collisions(spec) {
        errors.push(DagError::OutputEnvCollision { env, first, second });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DagErrors(errors))
    }
}

/// Main steps then exit handlers, each with the subject its errors name.
fn subjects(spec: &DagSpec) -> impl Iterator<Item = (&Step, Who)> {
    let main = spec.steps.iter().map(|s| (s, false));
    let handlers = spec.on_exit.iter().map(|s| (s, true));
    main.chain(handlers).map(|(step, handler)| {
        let name = step.name.clone();
        (step, Who { name, handler })
    })
}

fn check_dependencies(spec: &DagSpec, errors: &mut Vec<DagError>) {
    let has = |steps: &[Step], name: &str| steps.iter().any(|s| s.name == name);
    for (step, who) in subjects(spec) {
        let (own, other) = if who.handler {
            (&spec.on_exit, &spec.steps)
        } else {
            (&spec.steps, &spec.on_exit)
        };
        for dependency in step.depends.iter().filter(|d| !has(own, d)) {
            let (name, dependency) = (step.name.clone(), dependency.clone());
            errors.push(match (has(other, &dependency), who.handler) {
                (true, true) => DagError::HandlerDependsOnStep {
                    handler: name,
                    dependency,
                },
                (true, false) => DagError::StepDependsOnHandler {
                    step: name,
                    handler: dependency,
                },
                (false, _) => DagError::UnknownDependency {
                    step: who.clone(),
                    dependency,
                },
            });
        }
    }
}

fn check_params(spec: &DagSpec, errors: &mut Vec<DagError>) {
    let mut seen = HashSet::new();
    for decl in &spec.params {
        if !is_param_name(&decl.name) {
            errors.push(DagError::BadParamName {
                name: decl.name.clone(),
            });
        } else if decl.name.starts_with(RESERVED_ENV_PREFIX) {
            errors.push(DagError::ReservedParam {
                name: decl.name.clone(),
            });
        }
        if !seen.insert(decl.name.as_str()) {
            errors.push(DagError::DuplicateParam {
                name: decl.name.clone(),
            });
        }
    }
}

fn check_step_body(spec: &DagSpec, step: &Step, who: &Who, errors: &mut Vec<DagError>) {
    let err = |make: fn(Who) -> DagError| make(who.clone());
    if step.script.is_some() && (!step.command.is_empty() || !step.args.is_empty()) {
        errors.push(err(|step| DagError::CommandAndScript { step }));
    }
    super::validate_compose::check_step(spec, step, who, errors);
    if step.container.image.is_none() && spec.defaults.image.is_none() && step.call.is_none() {
        errors.push(err(|step| DagError::NoImage { step }));
    }
    let env_names = env_names(&spec.defaults).chain(env_names(&step.container));
    for name in env_names {
        if name.starts_with(RESERVED_ENV_PREFIX) || spec.params.iter().any(|p| p.name == name) {
            errors.push(DagError::ReservedEnv {
                step: who.clone(),
                name: name.to_string(),
            });
        }
    }
    check_outputs(step, who, errors);
    let compiled = match step.when.as_deref().map(when::compile) {
        Some(Err(message)) => {
            errors.push(DagError::When {
                step: who.clone(),
                message,
            });
            None
        }
        Some(Ok(compiled)) => Some(compiled),
        None => None,
    };
    for error in references::check_step(spec, step, compiled.as_ref()) {
        errors.push(DagError::Reference {
            step: who.clone(),
            error,
        });
    }
}

fn check_outputs(step: &Step, who: &Who, errors: &mut Vec<DagError>) {
    let mut seen = HashSet::new();
    for name in &step.outputs {
        let name_err = |make: fn(Who, String) -> DagError| make(who.clone(), name.clone());
        if !is_param_name(name) {
            errors.push(name_err(|step, name| DagError::BadOutputName { step, name }));
        }
        if !seen.insert(name.as_str()) {
            errors.push(name_err(|step, name| DagError::DuplicateOutput { step, name }));
        }
    }
}

/// Every mount of the step's merged settings names a volume of its merged settings.
fn check_volume_mounts(spec: &DagSpec, step: &Step, who: &Who, errors: &mut Vec<DagError>) {
    let merged = settings::merge(&spec.defaults, &step.container);
    for mount in &merged.volume_mounts {
        if !merged.volumes.iter().any(|v| v.name == mount.name) {
            errors.push(DagError::UnknownVolume {
                step: who.clone(),
                mount_path: mount.mount_path.clone(),
                volume: mount.name.clone(),
            });
        }
    }
}

/// `retry`: delays >= 0, factor >= 1 (and finite), exit codes 1-255.
fn check_retry(step: &Step, who: &Who, errors: &mut Vec<DagError>) {
    let Some(retry) = &step.retry else { return };
    let mut bad = |field: &'static str, message: String| {
        errors.push(DagError::BadRetry {
            step: who.clone(),
            field,
            message,
        })
    };
    if let Some(b) = &retry.backoff {
        if b.delay_seconds < 0 {
            bad("backoff.delaySeconds", format!("must be >= 0, is {}", b.delay_seconds));
        }
        if !(b.factor >= 1.0 && b.factor.is_finite()) {
            bad("backoff.factor", format!("must be a number >= 1, is {}", b.factor));
        }
        if let Some(max) = b.max_delay_seconds.filter(|m| *m < 0) {
            bad("backoff.maxDelaySeconds", format!("must be >= 0, is {max}"));
        }
    }
    for code in retry.on_exit_codes.iter().filter(|c| !(1..=255).contains(*c)) {
        bad("onExitCodes", format!("{code} is not a failing exit code (1-255)"));
    }
}

/// With a workspace, a step's own volumes and mounts leave its volume name and path free.
fn check_workspace_use(spec: &DagSpec, step: &Step, who: &Who, errors: &mut Vec<DagError>) {
    let merged = settings::merge(&spec.defaults, &step.container);
    if let Some(v) = merged.volumes.iter().find(|v| v.name == workspace::VOLUME_NAME) {
        errors.push(DagError::ReservedVolume {
            step: who.clone(),
            name: v.name.clone(),
        });
    }
    let Some(ws) = &spec.workspace else { return };
    let normal = |p: &str| p.trim_end_matches('/').to_string();
    if let Some(m) = merged
        .volume_mounts
        .iter()
        .find(|m| normal(&m.mount_path) == normal(&ws.mount_path))
    {
        errors.push(DagError::WorkspaceMountTaken {
            step: who.clone(),
            mount_path: m.mount_path.clone(),
        });
    }
}

fn env_names(settings: &ContainerSettings) -> impl Iterator<Item = &str> {
    settings.env.iter().map(|e| e.name.as_str())
}

/// `[A-Za-z_][A-Za-z0-9_]*`: usable as an environment variable name in `$(name)` and `$name`.
pub fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 1123 label: 1-63 lowercase alphanumerics or `-`, starting and ending alphanumeric.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("must be 1-63 characters, is {}", name.len()));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !name.chars().all(ok_char) {
        return Err("may contain only lowercase letters, digits and '-'".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A Kubernetes label value: at most 63 characters of `[A-Za-z0-9-_.]`, starting and ending
/// alphanumeric (or empty).
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!("must be at most 63 characters, is {}", value.len()));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !value.chars().all(ok_char) {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    let edge_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !edge_ok(value.chars().next()) || !edge_ok(value.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
