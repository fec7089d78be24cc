//! How one step reads another's outputs or state, and which steps it may read.
//!
//! A step reads an output three ways:
//! - `$(steps.STEP.outputs.NAME)` in its `command`, `args` and `env` values (its own and the
//!   Dag's `defaults.env`), substituted by kubedag when the Job is built ([`OutputRef::key`] is the
//!   name inside `$(..)` that the expansion's lookup receives). A `$(steps.` that does not continue
//!   as `STEP.outputs.NAME)` is refused, so a typo cannot reach the container silently.
//! - `$KUBEDAG_OUTPUT_<STEP>_<NAME>` in its `script`: an environment variable named by
//!   [`output_env_name`] (step and output upper-cased, `-` -> `_`). The Job builder sets it only
//!   for the outputs the script's text names ([`script_refs`]), so a script with dynamic lookups
//!   (`eval`, `env | grep`) sees none. Two outputs of a Dag whose variable names would be equal
//!   (`a-b`.`c` and `a`.`b_c`, or `count` and `COUNT`) are refused ([`env_name_collisions`]).
//!   `$(steps.S.outputs.N)` in a script is refused: a script is not expanded (it would run as a
//!   shell command substitution).
//! - `steps.STEP...` in its `when` (see [`crate::engine::when`]).
//!
//! A step may read only the steps of [`readable`]: its transitive dependencies; for an exit
//! handler, every main step and the handlers it transitively depends on. An output read must be
//! declared in that step's `outputs`.

use std::collections::{BTreeMap, HashSet};

use crate::api::{DagSpec, Step};

use super::graph;
use super::when::Compiled;

/// Prefix of the script environment variables carrying dependencies' outputs.
pub const OUTPUT_ENV_PREFIX: &str = "KUBEDAG_OUTPUT_";
const TEXT_REF_START: &str = "$(steps.";

/// One output of one step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OutputRef {
    pub step: String,
    pub output: String,
}

impl OutputRef {
    /// `steps.STEP.outputs.NAME`: the name inside `$(..)`.
    pub fn key(&self) -> String {
        format!("steps.{}.outputs.{}", self.step, self.output)
    }

    /// The script environment variable of this output, see [`output_env_name`].
    pub fn env_name(&self) -> String {
        output_env_name(&self.step, &self.output)
    }
}

/// `KUBEDAG_OUTPUT_<STEP>_<NAME>`, both upper-cased and `-` replaced by `_`:
/// (`detect-stars`, `count`) -> `KUBEDAG_OUTPUT_DETECT_STARS_COUNT`.
pub fn output_env_name(step: &str, output: &str) -> String {
    let upper = |s: &str| s.to_ascii_uppercase().replace('-', "_");
    format!("{OUTPUT_ENV_PREFIX}{}_{}", upper(step), upper(output))
}

/// `steps.STEP.outputs.NAME` -> the reference; `None` for any other name (a parameter, `item`, ...).
pub fn parse_key(name: &str) -> Option<OutputRef> {
    let rest = name.strip_prefix("steps.")?;
    let (step, output) = rest.split_once(".outputs.")?;
    let valid = |s: &str| !s.is_empty() && !s.contains(['.', '(', ')', '$']);
    (valid(step) && valid(output)).then(|| OutputRef {
        step: step.to_string(),
        output: output.to_string(),
    })
}

/// Every `$(steps.STEP.outputs.NAME)` in `text`, in order. `Err` holds the first `$(steps.`
/// sequence that is not such a reference (up to its `)`, or to the end of the text).
pub fn find_in_text(text: &str) -> Result<Vec<OutputRef>, String> {
    scan(text).into_iter().collect()
}

/// Each `$(steps.` sequence of `text`: the reference it spells, or its text up to `)`.
fn scan(text: &str) -> Vec<Result<OutputRef, String>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(TEXT_REF_START) {
        let candidate = &rest[start..];
        let Some(close) = candidate.find(')') else {
            found.push(Err(candidate.to_string()));
            break;
        };
        found.push(parse_key(&candidate[2..close]).ok_or_else(|| candidate[..=close].to_string()));
        rest = &candidate[close + 1..];
    }
    found
}

/// The `KUBEDAG_OUTPUT_...` variable names a script's text mentions (maximal runs of
/// `[A-Za-z0-9_]` starting with the prefix, not preceded by such a character), in order.
pub fn find_in_script(script: &str) -> Vec<&str> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (start, _) in script.match_indices(OUTPUT_ENV_PREFIX) {
        if script[..start].chars().next_back().is_some_and(is_name_char) {
            continue;
        }
        let tail = &script[start..];
        let end = tail.find(|c: char| !is_name_char(c)).unwrap_or(tail.len());
        found.push(&tail[..end]);
    }
    found
}

/// Whether `name` is one of the Dag's exit handlers (`spec.onExit`).
pub fn is_handler(spec: &DagSpec, name: &str) -> bool {
    spec.on_exit.iter().any(|h| h.name == name)
}

/// The steps `reader` may read, by name: its transitive dependencies among its own kind (main
/// steps or handlers), plus every main step when `reader` is an exit handler.
pub fn readable<'a>(spec: &'a DagSpec, reader: &Step) -> BTreeMap<&'a str, &'a Step> {
    let handler = is_handler(spec, &reader.name);
    let pool: &[Step] = if handler { &spec.on_exit } else { &spec.steps };
    let mut found: BTreeMap<&str, &Step> = BTreeMap::new();
    if handler {
        found.extend(spec.steps.iter().map(|s| (s.name.as_str(), s)));
    }
    let index = graph::index_by_name(pool);
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = reader.depends.iter().map(String::as_str).collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        if let Some(&i) = index.get(name) {
            found.insert(pool[i].name.as_str(), &pool[i]);
            todo.extend(pool[i].depends.iter().map(String::as_str));
        }
    }
    found
}

/// The outputs whose variables `reader`'s script names and that it may read: what the Job builder
/// sets as `KUBEDAG_OUTPUT_*` env vars. Empty for a step without a script.
pub fn script_refs(spec: &DagSpec, reader: &Step) -> Vec<OutputRef> {
    let Some(script) = &reader.script else {
        return Vec::new();
    };
    let by_env = env_names(readable(spec, reader).into_values());
    let mut refs: Vec<OutputRef> = find_in_script(script)
        .into_iter()
        .filter_map(|name| by_env.get(name).cloned())
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

/// Pairs of distinct outputs of the Dag (main steps and handlers) whose script variables are
/// equal: `(variable, first, second)`, `first` in spec order.
pub fn env_name_collisions(spec: &DagSpec) -> Vec<(String, OutputRef, OutputRef)> {
    let mut owners: BTreeMap<String, OutputRef> = BTreeMap::new();
    let mut collisions = Vec::new();
    for reference in all_outputs(spec.steps.iter().chain(&spec.on_exit)) {
        let env = reference.env_name();
        match owners.get(&env) {
            Some(first) if first != &reference => collisions.push((env, first.clone(), reference)),
            Some(_) => {}
            None => {
                owners.insert(env, reference);
            }
        }
    }
    collisions
}

fn all_outputs<'a>(steps: impl Iterator<Item = &'a Step>) -> impl Iterator<Item = OutputRef> {
    steps.flat_map(|step| {
        step.outputs.iter().map(|output| OutputRef {
            step: step.name.clone(),
            output: output.clone(),
        })
    })
}

fn env_names<'a>(steps: impl Iterator<Item = &'a Step>) -> BTreeMap<String, OutputRef> {
    all_outputs(steps).map(|r| (r.env_name(), r)).collect()
}

/// A reference a step may not make. Messages name the field and the reference, not the reader
/// (the caller prefixes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("{field}: {text:?} is not an output reference; write $(steps.STEP.outputs.NAME)")]
    Malformed { field: String, text: String },
    #[error("{field}: {reference}: there is no step {step:?}")]
    UnknownStep {
        field: String,
        reference: String,
        step: String,
    },
    #[error("{field}: {reference}: step {step:?} is not among the steps it depends on (directly or transitively)")]
    NotADependency {
        field: String,
        reference: String,
        step: String,
    },
    #[error("{field}: {reference}: step {step:?} declares no output {output:?}")]
    UndeclaredOutput {
        field: String,
        reference: String,
        step: String,
        output: String,
    },
    #[error("script: {reference} is not expanded in a script (the shell would run it as a command); use ${env}")]
    TextFormInScript { reference: String, env: String },
    #[error("script: ${name} is not the output variable of a step it depends on")]
    UnknownScriptVariable { name: String },
    #[error("when: params.{name} is not a declared parameter")]
    UndeclaredParam { name: String },
}

/// Checks every reference `reader` (a main step or an exit handler of `spec`) makes in command,
/// args, env values (its own and `defaults.env`), script and its compiled `when`.
pub fn check_step(spec: &DagSpec, reader: &Step, when: Option<&Compiled>) -> Vec<RefError> {
    let checker = Checker {
        spec,
        readable: readable(spec, reader),
    };
    let mut errors = Vec::new();
    for (field, text) in text_fields(spec, reader) {
        match find_in_text(text) {
            Ok(refs) => errors.extend(
                refs.iter()
                    .filter_map(|r| checker.output(&field, &format!("$({})", r.key()), r)),
            ),
            Err(text) => errors.push(RefError::Malformed { field, text }),
        }
    }
    if let Some(script) = &reader.script {
        checker.script(script, &mut errors);
    }
    if let Some(when) = when {
        checker.when(when, &mut errors);
    }
    errors
}

/// `(field label, text)` of every string of `reader` that kubedag expands.
fn text_fields<'a>(spec: &'a DagSpec, reader: &'a Step) -> Vec<(String, &'a str)> {
    let indexed = |label: &str, list: &'a [String]| {
        let label = label.to_string();
        list.iter()
            .enumerate()
            .map(move |(i, text)| (format!("{label}[{i}]"), text.as_str()))
    };
    let env = |label: &'static str, vars: &'a [k8s_openapi::api::core::v1::EnvVar]| {
        vars.iter()
            .filter_map(move |v| v.value.as_deref().map(|text| (format!("{label} {:?}", v.name), text)))
    };
    let call_params = reader.call.iter().flat_map(|c| &c.params);
    let call_params = call_params.map(|(k, v)| (format!("call.params {k:?}"), v.as_str()));
    indexed("command", &reader.command)
        .chain(indexed("args", &reader.args))
        .chain(call_params)
        .chain(env("defaults.env", &spec.defaults.env))
        .chain(env("env", &reader.container.env))
        .collect()
}

struct Checker<'a> {
    spec: &'a DagSpec,
    readable: BTreeMap<&'a str, &'a Step>,
}

impl Checker<'_> {
    /// The error of reading `step` (and `output` of it, if given) as `reference` in `field`.
    fn read(&self, field: &str, reference: &str, step: &str, output: Option<&str>) -> Option<RefError> {
        let (field, reference) = (field.to_string(), reference.to_string());
        let Some(target) = self.readable.get(step) else {
            let exists = self.spec.steps.iter().chain(&self.spec.on_exit).any(|s| s.name == step);
            let step = step.to_string();
            return Some(if exists {
                RefError::NotADependency { field, reference, step }
            } else {
                RefError::UnknownStep { field, reference, step }
            });
        };
        let output = output.filter(|o| !target.outputs.iter().any(|declared| declared == o))?;
        Some(RefError::UndeclaredOutput {
            field,
            reference,
            step: step.to_string(),
            output: output.to_string(),
        })
    }

    fn output(&self, field: &str, reference: &str, r: &OutputRef) -> Option<RefError> {
        self.read(field, reference, &r.step, Some(&r.output))
    }

    fn script(&self, script: &str, errors: &mut Vec<RefError>) {
        for r in scan(script).into_iter().flatten() {
            errors.push(RefError::TextFormInScript {
                reference: format!("$({})", r.key()),
                env: r.env_name(),
            });
        }
        let by_env = env_names(self.readable.values().copied());
        for name in find_in_script(script) {
            if !by_env.contains_key(name) {
                errors.push(RefError::UnknownScriptVariable { name: name.to_string() });
            }
        }
    }

    fn when(&self, when: &Compiled, errors: &mut Vec<RefError>) {
        for (step, outputs) in &when.steps {
            errors.extend(self.read("when", &format!("steps.{step}"), step, None));
            if self.readable.contains_key(step.as_str()) {
                for output in outputs {
                    let reference = format!("steps.{step}.outputs.{output}");
                    errors.extend(self.read("when", &reference, step, Some(output)));
                }
            }
        }
        for name in &when.params {
            if !self.spec.params.iter().any(|p| &p.name == name) {
                errors.push(RefError::UndeclaredParam { name: name.clone() });
            }
        }
    }
}

#[cfg(test)]
#[path = "references_tests.rs"]
mod tests;
