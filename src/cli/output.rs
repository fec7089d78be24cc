//! Writing to stdout, and the machine-readable `-o json|yaml` forms.

use std::io::Write;

use serde::Serialize;

use crate::api::DagRun;

use super::error::CliError;
use super::style::{Color, Style};

/// `-o`: a machine-readable form instead of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

/// Writes `text` to stdout as is and flushes, so lines appear as soon as they are known.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}

/// Writes one line to stdout.
pub fn emit_line(line: &str) -> Result<(), CliError> {
    emit(&format!("{line}\n"))
}

/// A note on stderr that does not change the command's outcome (best effort, like all of stderr).
pub fn warn(message: &str) {
    to_stderr(&format!(
        "{} {message}\n",
        Style::stderr().paint(Some(Color::Yellow), "warning:")
    ));
}

/// A plain remark on stderr, such as "nothing found", kept off stdout so pipes see only data.
pub fn note(message: &str) {
    to_stderr(&format!("{message}\n"));
}

/// The error that ends the command, on stderr.
pub fn error(message: &str) {
    to_stderr(&format!(
        "{} {message}\n",
        Style::stderr().paint(Some(Color::Red), "error:")
    ));
}

fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// One run in the chosen format, without `managedFields` (as kubectl shows objects).
pub fn run_document(format: Format, run: &DagRun) -> Result<String, CliError> {
    serialize(format, &without_managed_fields(run))
}

/// Runs as a `v1 List`, the shape `kubectl get -o json|yaml` prints for several objects.
pub fn runs_document(format: Format, runs: &[&DagRun]) -> Result<String, CliError> {
    let items: Vec<DagRun> = runs.iter().map(|r| without_managed_fields(r)).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    serialize(format, &list)
}

fn without_managed_fields(run: &DagRun) -> DagRun {
    let mut run = run.clone();
    run.metadata.managed_fields = None;
    run
}

fn serialize(format: Format, value: &impl Serialize) -> Result<String, CliError> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(value)
            .map(|json| json + "\n")
            .map_err(|e| e.to_string()),
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| e.to_string()),
    };
    text.map_err(|why| CliError::Invalid(format!("cannot format the output: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec};

    fn run() -> DagRun {
        let mut run = DagRun::new(
            "r",
            DagRunSpec {
                dag_ref: DagRef { name: "img".into() },
                ..Default::default()
            },
        );
        run.metadata.managed_fields = Some(vec![Default::default()]);
        run
    }

    #[test]
    fn documents_carry_kind_and_drop_managed_fields() {
        let json = run_document(Format::Json, &run()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["kind"], "DagRun");
        assert_eq!(value["spec"]["dagRef"]["name"], "img");
        assert!(value["metadata"].get("managedFields").is_none(), "{json}");
        let yaml = runs_document(Format::Yaml, &[&run(), &run()]).unwrap();
        let list: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(list["kind"], "List");
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
    }
}
