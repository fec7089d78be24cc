//! `kubectl dag lint FILE...`: checks Dag, DagRun and DagTrigger manifests offline with the cluster's own
//! rules (see [`checks`]) and prints one `file:line: message` per problem. Other kinds in the
//! files (Namespaces, claims, ...) are skipped. Exit status 1 if any problem was found.

mod checks;
mod documents;
mod trigger;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use checks::{Parsed, Problem, SeenRuns};
use documents::Document;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::Dag;

use super::error::CliError;
use super::output;

/// A problem, placed: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Lints `paths` (`-` is stdin) and prints the findings.
pub fn lint(paths: &[PathBuf]) -> Result<ExitCode, CliError> {
    let mut sources = Vec::new();
    for path in paths {
        sources.push((label(path), read(path)?));
    }
    let (findings, checked) = lint_sources(&sources);
    for finding in &findings {
        output::emit_line(&finding.to_string())?;
    }
    if findings.is_empty() {
        output::note(&format!(
            "{checked} kubedag object(s) in {} file(s): no problems",
            paths.len()
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        output::note(&format!("{} problem(s)", findings.len()));
        Ok(ExitCode::FAILURE)
    }
}

fn label(path: &Path) -> String {
    path.display().to_string()
}

fn read(path: &Path) -> Result<String, CliError> {
    let result = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|e| CliError::Invalid(format!("{}: {e}", path.display())))
}

/// Lints `(file label, text)` pairs: the findings in file and line order, and how many kubedag
/// objects were checked. Runs are checked against the Dags of all the sources.
pub fn lint_sources(sources: &[(String, String)]) -> (Vec<Finding>, usize) {
    let parsed: Vec<(&str, Document, Parsed, Vec<Problem>)> = sources
        .iter()
        .flat_map(|(file, text)| {
            documents::split(text).into_iter().map(move |doc| {
                let (parsed, schema_problems) = checks::parse(&doc.text);
                (file.as_str(), doc, parsed, schema_problems)
            })
        })
        .collect();
    let dags: Vec<&Dag> = parsed
        .iter()
        .filter_map(|(_, _, p, _)| match p {
            Parsed::Dag(dag) => Some(dag.as_ref()),
            _ => None,
        })
        .collect();
    let mut findings = Vec::new();
    let mut seen = SeenRuns::new();
    let mut checked = 0;
    for (file, doc, parsed, schema_problems) in &parsed {
        let mut problems = schema_problems.clone();
        problems.extend(match parsed {
            Parsed::Other => continue,
            Parsed::Broken(problems) => problems.clone(),
            Parsed::Dag(dag) => checks::check_dag(&dag.spec),
            Parsed::Run(run) => {
                let place = format!("{file}:{}", doc.line_of("metadata.name"));
                checks::check_run(
                    run,
                    dag_of(&dags, &run.metadata, &run.spec.dag_ref.name),
                    &place,
                    &mut seen,
                )
            }
            Parsed::Trigger(t) => trigger::check_trigger(t, dag_of(&dags, &t.metadata, &t.spec.dag_ref.name)),
        });
        checked += 1;
        findings.extend(problems.into_iter().map(|p| place(file, doc, p)));
    }
    let file_order = |file: &str| sources.iter().position(|(f, _)| f == file);
    findings.sort_by_key(|f| (file_order(&f.file), f.line));
    (findings, checked)
}

/// The Dag named `name` among `dags` for an object with `meta` (a run or a trigger): same name,
/// and the same namespace where both name one.
fn dag_of<'a>(dags: &[&'a Dag], meta: &ObjectMeta, name: &str) -> Option<&'a Dag> {
    let namespace = meta.namespace.as_deref();
    dags.iter().copied().find(|dag| {
        dag.metadata.name.as_deref() == Some(name)
            && match (namespace, dag.metadata.namespace.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    })
}

fn place(file: &str, doc: &Document, problem: Problem) -> Finding {
    let line = match problem.line {
        Some(line) => doc.first_line + line - 1,
        None => doc.line_of(&problem.path),
    };
    Finding {
        file: file.to_string(),
        line,
        message: problem.message,
    }
}

#[cfg(test)]
mod tests;
