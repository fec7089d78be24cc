//! Validation of a Dag spec and of the names kubedag relies on. Every message names the offending
//! step, parameter or field so a user can fix it without reading the operator's code.

use std::collections::HashSet;
use std::fmt;

use crate::api::{ContainerSettings, DagSpec, Step};

use super::{graph, settings};

/// Prefix of the environment variables the operator sets on every step container.
pub const RESERVED_ENV_PREFIX: &str = "KUBEDAG_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("spec.steps: the Dag has no steps")]
    NoSteps,
    #[error("step {step:?}: invalid name: {reason}")]
    BadStepName { step: String, reason: String },
    #[error("step {step:?}: duplicate step name")]
    DuplicateStep { step: String },
    #[error("step {step:?}: depends on unknown step {dependency:?}")]
    UnknownDependency { step: String, dependency: String },
    #[error("steps {}: dependency cycle", .steps.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" -> "))]
    Cycle { steps: Vec<String> },
    #[error("step {step:?}: command/args and script are exclusive; set one")]
    CommandAndScript { step: String },
    #[error("step {step:?}: no image: set spec.steps[].image or spec.defaults.image")]
    NoImage { step: String },
    #[error("spec.params: invalid parameter name {name:?}: must match [A-Za-z_][A-Za-z0-9_]*")]
    BadParamName { name: String },
    #[error("spec.params: parameter {name:?} declared twice")]
    DuplicateParam { name: String },
    #[error("step {step:?}: env var {name:?} collides with a parameter or the reserved KUBEDAG_ prefix")]
    ReservedEnv { step: String, name: String },
    #[error(
        "step {step:?}: volumeMounts entry {mount_path:?} names volume {volume:?}, which neither the step nor spec.defaults declares in volumes"
    )]
    UnknownVolume {
        step: String,
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

/// Checks a Dag spec: step names, uniqueness, dependencies, cycles, command vs script, images,
/// parameter names and env var collisions.
pub fn validate_dag(spec: &DagSpec) -> Result<(), DagErrors> {
    let mut errors = Vec::new();
    if spec.steps.is_empty() {
        errors.push(DagError::NoSteps);
    }
    check_params(spec, &mut errors);
    let mut seen = HashSet::new();
    for step in &spec.steps {
        if let Err(reason) = check_dns_label(&step.name) {
            errors.push(DagError::BadStepName {
                step: step.name.clone(),
                reason,
            });
        }
        if !seen.insert(step.name.as_str()) {
            errors.push(DagError::DuplicateStep {
                step: step.name.clone(),
            });
        }
        check_step_body(spec, step, &mut errors);
        check_volume_mounts(spec, step, &mut errors);
    }
    for step in &spec.steps {
        for dependency in &step.depends {
            if !seen.contains(dependency.as_str()) {
                errors.push(DagError::UnknownDependency {
                    step: step.name.clone(),
                    dependency: dependency.clone(),
                });
            }
        }
    }
    if let Err(stuck) = graph::topological_order(&spec.steps) {
        errors.push(DagError::Cycle {
            steps: graph::find_cycle(&spec.steps, &stuck),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DagErrors(errors))
    }
}

fn check_params(spec: &DagSpec, errors: &mut Vec<DagError>) {
    let mut seen = HashSet::new();
    for decl in &spec.params {
        if !is_param_name(&decl.name) {
            errors.push(DagError::BadParamName {
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

fn check_step_body(spec: &DagSpec, step: &Step, errors: &mut Vec<DagError>) {
    if step.script.is_some() && (!step.command.is_empty() || !step.args.is_empty()) {
        errors.push(DagError::CommandAndScript {
            step: step.name.clone(),
        });
    }
    if step.container.image.is_none() && spec.defaults.image.is_none() {
        errors.push(DagError::NoImage {
            step: step.name.clone(),
        });
    }
    let env_names = env_names(&spec.defaults).chain(env_names(&step.container));
    for name in env_names {
        if name.starts_with(RESERVED_ENV_PREFIX) || spec.params.iter().any(|p| p.name == name) {
            errors.push(DagError::ReservedEnv {
                step: step.name.clone(),
                name: name.to_string(),
            });
        }
    }
}

/// Every mount of the step's merged settings names a volume of its merged settings.
fn check_volume_mounts(spec: &DagSpec, step: &Step, errors: &mut Vec<DagError>) {
    let merged = settings::merge(&spec.defaults, &step.container);
    for mount in &merged.volume_mounts {
        if !merged.volumes.iter().any(|v| v.name == mount.name) {
            errors.push(DagError::UnknownVolume {
                step: step.name.clone(),
                mount_path: mount.mount_path.clone(),
                volume: mount.name.clone(),
            });
        }
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
mod tests {
    use super::*;
    use crate::api::ParamDecl;
    use crate::engine::graph::tests::step;
    use k8s_openapi::api::core::v1::EnvVar;

    use crate::engine::graph::tests::spec as dag;

    fn messages(spec: &DagSpec) -> String {
        validate_dag(spec).unwrap_err().to_string()
    }

    #[test]
    fn valid_diamond_passes() {
        let spec = dag(vec![
            step("a", &[]),
            step("b", &["a"]),
            step("c", &["a"]),
            step("d", &["b", "c"]),
        ]);
        assert_eq!(validate_dag(&spec), Ok(()));
    }

    #[test]
    fn cycle_names_its_steps() {
        let spec = dag(vec![
            step("a", &["c"]),
            step("b", &["a"]),
            step("c", &["b"]),
            step("ok", &[]),
        ]);
        let msg = messages(&spec);
        assert!(msg.contains("dependency cycle"), "{msg}");
        for s in ["\"a\"", "\"b\"", "\"c\""] {
            assert!(msg.contains(s), "{msg}");
        }
        assert!(!msg.contains("\"ok\""), "{msg}");
    }

    #[test]
    fn unknown_dependency_names_step_and_dependency() {
        let msg = messages(&dag(vec![step("a", &["nope"])]));
        assert_eq!(msg, "step \"a\": depends on unknown step \"nope\"");
    }

    #[test]
    fn duplicate_step_is_named() {
        let msg = messages(&dag(vec![step("a", &[]), step("a", &[])]));
        assert_eq!(msg, "step \"a\": duplicate step name");
    }

    #[test]
    fn command_and_script_are_exclusive() {
        let mut s = step("run", &[]);
        s.command = vec!["echo".into()];
        s.script = Some("echo hi".into());
        assert_eq!(
            messages(&dag(vec![s])),
            "step \"run\": command/args and script are exclusive; set one"
        );
    }

    #[test]
    fn missing_image_is_named_unless_a_default_exists() {
        let mut spec = dag(vec![step("a", &[])]);
        spec.defaults.image = None;
        assert!(messages(&spec).contains("step \"a\": no image"));
        spec.steps[0].container.image = Some("busybox".into());
        assert_eq!(validate_dag(&spec), Ok(()));
    }

    #[test]
    fn bad_names_are_refused() {
        let mut spec = dag(vec![step("Bad_Name", &[])]);
        spec.params = vec![ParamDecl {
            name: "9lives".into(),
            default: None,
        }];
        let msg = messages(&spec);
        assert!(msg.contains("step \"Bad_Name\": invalid name"), "{msg}");
        assert!(msg.contains("invalid parameter name \"9lives\""), "{msg}");
    }

    #[test]
    fn env_may_not_shadow_params_or_reserved_names() {
        let mut spec = dag(vec![step("a", &[])]);
        spec.params = vec![ParamDecl {
            name: "file".into(),
            default: None,
        }];
        spec.steps[0].container.env = vec![EnvVar {
            name: "file".into(),
            ..Default::default()
        }];
        spec.defaults.env = vec![EnvVar {
            name: "KUBEDAG_RUN".into(),
            ..Default::default()
        }];
        let msg = messages(&spec);
        assert!(msg.contains("\"file\"") && msg.contains("\"KUBEDAG_RUN\""), "{msg}");
    }

    #[test]
    fn mounts_must_name_a_declared_volume() {
        use k8s_openapi::api::core::v1::{Volume, VolumeMount};
        let mount = |name: &str, path: &str| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..Default::default()
        };
        let mut spec = dag(vec![step("a", &[]), step("b", &[])]);
        spec.defaults.volumes = vec![Volume {
            name: "data".into(),
            ..Default::default()
        }];
        spec.defaults.volume_mounts = vec![mount("data", "/data")];
        spec.steps[1].container.volume_mounts = vec![mount("scratch", "/scratch")];
        assert_eq!(
            messages(&spec),
            "step \"b\": volumeMounts entry \"/scratch\" names volume \"scratch\", which neither the step nor spec.defaults declares in volumes"
        );
        spec.steps[1].container.volumes = vec![Volume {
            name: "scratch".into(),
            ..Default::default()
        }];
        assert_eq!(validate_dag(&spec), Ok(()));
    }

    #[test]
    fn label_values() {
        assert!(check_label_value("m31-0001.fits").is_ok());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("has space").is_err());
        assert!(check_label_value("-lead").is_err());
        assert!(check_label_value(&"x".repeat(64)).is_err());
    }
}
