//! `kubectl dag submit DAG --param-file FILE`: one run per line of a CSV or JSON Lines file.
//!
//! Duplicates are found before anything is created (see [`super::dedupe`]), so re-running the same
//! file reports every line as a duplicate of the run it created the first time instead of creating
//! runs that the webhook would refuse or the controller would reject. A duplicate refused by the
//! webhook anyway (another client raced us) is reported the same way.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use futures::StreamExt;
use kube::ResourceExt;

use crate::api::Dag;

use super::cluster::Cluster;
use super::create;
use super::dedupe::{self, Decision, Planned};
use super::error::CliError;
use super::human;
use super::output::emit_line;
use super::param_file;
use super::progress::{Mode, Progress};
use super::style::{Color, Style};

pub struct SubmitRequest<'a> {
    pub dag: &'a str,
    pub param_file: &'a Path,
    pub parallel: usize,
    pub dry_run: bool,
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A run was created (or, in a dry run, would be).
    Accepted { run: String },
    /// Not created: these parameters already have a run. `of` names it.
    Duplicate { of: String },
    /// Not created, for this reason.
    Failed { reason: String },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub accepted: usize,
    pub duplicate: usize,
    pub failed: usize,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Accepted { .. } => self.accepted += 1,
            Outcome::Duplicate { .. } => self.duplicate += 1,
            Outcome::Failed { .. } => self.failed += 1,
        }
    }

    fn total(self) -> usize {
        self.accepted + self.duplicate + self.failed
    }

    /// `97 accepted, 3 duplicate, 0 failed`.
    pub fn summary(self) -> String {
        format!(
            "{} accepted, {} duplicate, {} failed",
            self.accepted, self.duplicate, self.failed
        )
    }
}

pub async fn submit(cluster: &Cluster, request: SubmitRequest<'_>) -> Result<ExitCode, CliError> {
    let lines = param_file::read(request.param_file)?;
    if lines.is_empty() {
        return Err(CliError::Invalid(format!(
            "{}: no parameter sets in the file",
            request.param_file.display()
        )));
    }
    let dag: Dag = cluster.get("Dag", request.dag).await?;
    let existing = cluster.list_runs().await?;
    let planned = dedupe::plan(&dag, &existing, lines);
    let total = planned.len();
    let style = Style::stdout();
    let progress = Progress::counting(Mode::for_stderr(Mode::Quiet), total as u64, "lines");
    let mut tally = Tally::default();
    // Run names by the line that created them, to name the run an in-file duplicate repeats.
    let mut created_by_line: HashMap<u64, String> = HashMap::new();
    // `buffered` creates up to `parallel` runs at once but yields results in file order.
    let mut settled = futures::stream::iter(planned)
        .map(|planned| async {
            let outcome = settle(cluster, request.dag, &planned, request.dry_run).await;
            (planned, outcome)
        })
        .buffered(request.parallel.max(1));
    while let Some((planned, outcome)) = settled.next().await {
        let outcome = name_earlier_line_run(outcome, &planned.decision, &created_by_line);
        if let (Outcome::Accepted { run }, false) = (&outcome, request.dry_run) {
            created_by_line.insert(planned.line.line, run.clone());
        }
        tally.count(&outcome);
        progress.print_line(&report_line(&planned, &outcome, request.dry_run, style))?;
        progress.update(tally.total() as u64, &tally.summary());
    }
    progress.finish();
    let dry = if request.dry_run {
        " (dry run: nothing was created)"
    } else {
        ""
    };
    emit_line(&format!("{}{dry}", tally.summary()))?;
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Carries out one line's decision.
async fn settle(cluster: &Cluster, dag: &str, planned: &Planned, dry_run: bool) -> Outcome {
    match &planned.decision {
        Decision::Invalid(reason) => Outcome::Failed { reason: reason.clone() },
        Decision::DuplicateOfRun { run, phase, .. } => Outcome::Duplicate {
            of: format!("DagRun {run} ({}) has the same parameters", phase.as_str()),
        },
        Decision::DuplicateOfLine { line, .. } => Outcome::Duplicate {
            of: format!("line {line} has the same parameters"),
        },
        Decision::Create { .. } => {
            let run = create::new_run(dag, planned.line.params.clone(), None);
            match create::create(cluster, &run, dry_run).await {
                Ok(created) => Outcome::Accepted {
                    run: created.name_any(),
                },
                Err(error) if create::is_duplicate_refusal(&error) => Outcome::Duplicate {
                    of: error.api_status().map(|s| s.message.clone()).unwrap_or_default(),
                },
                Err(error) => Outcome::Failed {
                    reason: error.to_string(),
                },
            }
        }
    }
}

/// An in-file duplicate names the run its earlier line created, once that is known.
fn name_earlier_line_run(outcome: Outcome, decision: &Decision, created_by_line: &HashMap<u64, String>) -> Outcome {
    match (decision, &outcome) {
        (Decision::DuplicateOfLine { line, .. }, Outcome::Duplicate { of }) => match created_by_line.get(line) {
            Some(run) => Outcome::Duplicate {
                of: format!("{of} (DagRun {run})"),
            },
            None => outcome,
        },
        _ => outcome,
    }
}

/// `line 7: accepted: DagRun img-x7k2p [file=m31.fits]`.
pub fn report_line(planned: &Planned, outcome: &Outcome, dry_run: bool, style: Style) -> String {
    let (word, color, detail) = match outcome {
        Outcome::Accepted { run } if dry_run => ("accepted", Color::Green, format!("would create DagRun {run}")),
        Outcome::Accepted { run } => ("accepted", Color::Green, format!("DagRun {run}")),
        Outcome::Duplicate { of } => ("duplicate", Color::Yellow, of.clone()),
        Outcome::Failed { reason } => ("failed", Color::Red, reason.clone()),
    };
    let hash = match &planned.decision {
        Decision::Create { hash } | Decision::DuplicateOfRun { hash, .. } | Decision::DuplicateOfLine { hash, .. } => {
            format!(" paramHash {}", human::short_hash(hash))
        }
        Decision::Invalid(_) => String::new(),
    };
    format!(
        "line {}: {}: {detail} [{}]{hash}",
        planned.line.line,
        style.paint(Some(color), word),
        human::params_summary(&planned.line.params, None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::param_file::ParamLine;

    fn planned(line: u64, decision: Decision) -> Planned {
        Planned {
            line: ParamLine {
                line,
                params: [("file".to_string(), "m31.fits".to_string())].into(),
            },
            decision,
        }
    }

    #[test]
    fn report_lines_name_line_outcome_run_and_params() {
        let create = planned(2, Decision::Create { hash: "a".repeat(64) });
        let accepted = Outcome::Accepted {
            run: "img-x7k2p".into(),
        };
        assert_eq!(
            report_line(&create, &accepted, false, Style::PLAIN),
            "line 2: accepted: DagRun img-x7k2p [file=m31.fits] paramHash aaaaaaaaaaaa"
        );
        assert_eq!(
            report_line(&create, &accepted, true, Style::PLAIN),
            "line 2: accepted: would create DagRun img-x7k2p [file=m31.fits] paramHash aaaaaaaaaaaa"
        );
        let invalid = planned(3, Decision::Invalid("missing".into()));
        let failed = Outcome::Failed {
            reason: "missing".into(),
        };
        assert_eq!(
            report_line(&invalid, &failed, false, Style::PLAIN),
            "line 3: failed: missing [file=m31.fits]"
        );
    }

    #[test]
    fn in_file_duplicates_name_the_run_of_their_first_line() {
        let decision = Decision::DuplicateOfLine {
            line: 2,
            hash: "h".into(),
        };
        let outcome = Outcome::Duplicate {
            of: "line 2 has the same parameters".into(),
        };
        let created = HashMap::from([(2, "img-x7k2p".to_string())]);
        assert_eq!(
            name_earlier_line_run(outcome.clone(), &decision, &created),
            Outcome::Duplicate {
                of: "line 2 has the same parameters (DagRun img-x7k2p)".into()
            }
        );
        assert_eq!(
            name_earlier_line_run(outcome.clone(), &decision, &HashMap::new()),
            outcome
        );
    }

    #[test]
    fn tally_counts_each_outcome() {
        let mut tally = Tally::default();
        for outcome in [
            Outcome::Accepted { run: "a".into() },
            Outcome::Accepted { run: "b".into() },
            Outcome::Duplicate { of: "x".into() },
            Outcome::Failed { reason: "y".into() },
        ] {
            tally.count(&outcome);
        }
        assert_eq!(tally.summary(), "2 accepted, 1 duplicate, 1 failed");
        assert_eq!(tally.total(), 4);
    }
}
