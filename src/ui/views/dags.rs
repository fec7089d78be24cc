//! The Dags page: each Dag's steps, its active and queued runs, its last outcome and validity.

use askama::Template;
use kube::ResourceExt;

use crate::api::{Dag, RunPhase};
use crate::ui::groups::RunRow;

use super::{Alert, Chrome, dag_url, run_url};

#[derive(Template)]
#[template(path = "dags.html")]
pub struct DagsPage {
    pub chrome: Chrome,
    pub alert: Option<Alert>,
    pub rows: Vec<DagRow>,
    pub all_namespaces: bool,
    /// Whether the first list of Dags arrived (an empty page then means there are none).
    pub synced: bool,
}

/// One Dag's line.
#[derive(Debug, Clone, PartialEq)]
pub struct DagRow {
    pub namespace: String,
    pub name: String,
    pub url: String,
    pub step_count: usize,
    /// Step names, comma-separated.
    pub steps: String,
    pub runs: usize,
    pub active: usize,
    pub queued: usize,
    /// (run name, phase, url) of the run that finished last.
    pub last: Option<(String, String, String)>,
    pub valid: bool,
    pub invalid_message: String,
}

impl DagRow {
    /// The row of `dag` given its runs' rows.
    pub fn of<'a>(dag: &Dag, runs: impl IntoIterator<Item = &'a RunRow>) -> DagRow {
        let namespace = dag.namespace().unwrap_or_default();
        let name = dag.name_any();
        let (mut count, mut active, mut queued) = (0, 0, 0);
        let mut last: Option<&RunRow> = None;
        for run in runs {
            count += 1;
            match run.phase {
                RunPhase::Running => active += 1,
                RunPhase::Queued => queued += 1,
                _ => {}
            }
            if run.phase.is_terminal() && last.is_none_or(|l| (run.finished, &run.name) > (l.finished, &l.name)) {
                last = Some(run);
            }
        }
        let invalid = dag
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Valid"))
            .filter(|c| c.status == "False");
        DagRow {
            url: dag_url(&namespace, &name),
            step_count: dag.spec.steps.len(),
            steps: dag
                .spec
                .steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            runs: count,
            active,
            queued,
            last: last.map(|l| {
                (
                    l.name.clone(),
                    l.phase.as_str().to_string(),
                    run_url(&l.namespace, &l.name),
                )
            }),
            valid: invalid.is_none(),
            invalid_message: invalid.map(|c| c.message.clone()).unwrap_or_default(),
            namespace,
            name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagSpec, DagStatus, Step};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn row(name: &str, phase: RunPhase, finished: i64) -> RunRow {
        RunRow {
            namespace: "ns".into(),
            name: name.into(),
            dag: "img".into(),
            phase,
            params: Default::default(),
            param_hash: name.into(),
            created: None,
            started: None,
            finished: phase
                .is_terminal()
                .then(|| jiff::Timestamp::from_second(finished).unwrap()),
            retries: 0,
        }
    }

    #[test]
    fn counts_phases_and_names_the_run_that_finished_last() {
        let mut dag = Dag::new(
            "img",
            DagSpec {
                steps: vec![Step {
                    name: "fetch".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        dag.metadata.namespace = Some("ns".into());
        let runs = [
            row("a", RunPhase::Running, 0),
            row("b", RunPhase::Queued, 0),
            row("c", RunPhase::Failed, 20),
            row("d", RunPhase::Succeeded, 10),
        ];
        let r = DagRow::of(&dag, &runs);
        assert_eq!((r.runs, r.active, r.queued, r.step_count), (4, 1, 1, 1));
        assert_eq!(r.last.unwrap().0, "c");
        assert!(r.valid);
        dag.status = Some(DagStatus {
            conditions: vec![Condition {
                type_: "Valid".into(),
                status: "False".into(),
                message: "step \"b\" depends on unknown step \"x\"".into(),
                reason: "Invalid".into(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
                observed_generation: None,
            }],
            ..Default::default()
        });
        let r = DagRow::of(&dag, []);
        assert!(!r.valid && r.invalid_message.contains("unknown step"));
        assert_eq!(r.last, None);
    }
}
