//! `kubectl dag list [DAG]`: runs grouped by Dag with phase, progress, short hash and params.

use std::collections::BTreeMap;
use std::process::ExitCode;

use jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{DagRun, RunPhase};
use crate::engine::params::Params;

use super::cluster::Cluster;
use super::error::CliError;
use super::human;
use super::output::{self, Format};
use super::params::matches;
use super::style::{Color, Style, phase_color};
use super::table::{Cell, Table};
use super::watch::phase_of;

/// Width of the PARAMS column unless `--wide`.
const MAX_PARAMS_LEN: usize = 60;

/// Which runs to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub dag: Option<String>,
    /// Any of these phases; empty: all.
    pub phases: Vec<RunPhase>,
    /// Every one of these params (resolved params once the run started, else the given ones).
    pub params: Params,
}

pub async fn list(
    cluster: &Cluster,
    filter: &Filter,
    format: Option<Format>,
    wide: bool,
) -> Result<ExitCode, CliError> {
    let runs = cluster.list_runs().await?;
    let selected = select(&runs, filter);
    if let Some(format) = format {
        output::emit(&output::runs_document(format, &selected)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if selected.is_empty() {
        output::note(&format!("No DagRuns found in namespace {:?}.", cluster.namespace));
        return Ok(ExitCode::SUCCESS);
    }
    let max_params = (!wide).then_some(MAX_PARAMS_LEN);
    output::emit(&render(&selected, Timestamp::now(), Style::stdout(), max_params))?;
    Ok(ExitCode::SUCCESS)
}

/// The params a run is shown and filtered with.
fn shown_params(run: &DagRun) -> &Params {
    run.status
        .as_ref()
        .and_then(|s| s.params.as_ref())
        .unwrap_or(&run.spec.params)
}

/// The runs passing `filter`, ordered by Dag, then creation time, then name.
pub fn select<'a>(runs: &'a [DagRun], filter: &Filter) -> Vec<&'a DagRun> {
    let mut selected: Vec<&DagRun> = runs
        .iter()
        .filter(|r| filter.dag.as_ref().is_none_or(|dag| &r.spec.dag_ref.name == dag))
        .filter(|r| filter.phases.is_empty() || filter.phases.contains(&phase_of(r)))
        .filter(|r| matches(&filter.params, shown_params(r)))
        .collect();
    selected.sort_by_key(|r| {
        (
            r.spec.dag_ref.name.clone(),
            r.metadata.creation_timestamp.clone(),
            r.name_any(),
        )
    });
    selected
}

/// One section per Dag: a heading, then a table of its runs.
pub fn render(runs: &[&DagRun], now: Timestamp, style: Style, max_params: Option<usize>) -> String {
    let mut groups: BTreeMap<&str, Vec<&DagRun>> = BTreeMap::new();
    for run in runs {
        groups.entry(run.spec.dag_ref.name.as_str()).or_default().push(run);
    }
    let sections: Vec<String> = groups
        .iter()
        .map(|(dag, runs)| {
            let count = if runs.len() == 1 {
                "1 run".into()
            } else {
                format!("{} runs", runs.len())
            };
            let heading = style.paint(Some(Color::Bold), &format!("Dag {dag}"));
            format!(
                "{heading} ({count})\n{}",
                run_table(runs, now, max_params).render(style, "  ")
            )
        })
        .collect();
    sections.join("\n")
}

fn run_table(runs: &[&DagRun], now: Timestamp, max_params: Option<usize>) -> Table {
    let mut table = Table::new(&["NAME", "PHASE", "STEPS", "HASH", "AGE", "PARAMS"]);
    for run in runs {
        let status = run.status.as_ref();
        let phase = phase_of(run).as_str();
        table.push(vec![
            run.name_any().into(),
            Cell::colored(phase, phase_color(phase)),
            status.and_then(|s| s.progress.clone()).unwrap_or("-".into()).into(),
            status
                .and_then(|s| s.param_hash.as_deref())
                .map_or("-".into(), human::short_hash)
                .into(),
            human::age(run.metadata.creation_timestamp.as_ref(), now).into(),
            human::params_summary(shown_params(run), max_params).into(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec, DagRunStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
    }

    fn run(name: &str, dag: &str, created: i64, file: &str, phase: Option<RunPhase>) -> DagRun {
        let mut run = DagRun::new(
            name,
            DagRunSpec {
                dag_ref: DagRef { name: dag.into() },
                params: [("file".to_string(), file.to_string())].into(),
                ..Default::default()
            },
        );
        run.metadata.creation_timestamp = Some(at(created));
        run.status = phase.map(|phase| DagRunStatus {
            phase,
            params: Some(
                [
                    ("file".to_string(), file.to_string()),
                    ("threshold".to_string(), "0.5".to_string()),
                ]
                .into(),
            ),
            param_hash: Some("0123456789abcdef".repeat(4)),
            progress: Some("1/1".into()),
            ..Default::default()
        });
        run
    }

    fn runs() -> Vec<DagRun> {
        vec![
            run("img-b", "img", 20, "b.fits", Some(RunPhase::Failed)),
            run("img-a", "img", 10, "a.fits", Some(RunPhase::Succeeded)),
            run("other-x", "other", 5, "a.fits", None),
        ]
    }

    fn names(runs: &[&DagRun]) -> Vec<String> {
        runs.iter().map(|r| r.name_any()).collect()
    }

    #[test]
    fn filters_combine_dag_phase_and_params() {
        let runs = runs();
        assert_eq!(names(&select(&runs, &Filter::default())), ["img-a", "img-b", "other-x"]);
        let by_dag = Filter {
            dag: Some("img".into()),
            ..Default::default()
        };
        assert_eq!(names(&select(&runs, &by_dag)), ["img-a", "img-b"]);
        let by_phase = Filter {
            phases: vec![RunPhase::Failed, RunPhase::Pending],
            ..Default::default()
        };
        assert_eq!(names(&select(&runs, &by_phase)), ["img-b", "other-x"]);
        let by_param = Filter {
            params: [("file".to_string(), "a.fits".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(names(&select(&runs, &by_param)), ["img-a", "other-x"]);
        let by_default = Filter {
            params: [("threshold".to_string(), "0.5".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            names(&select(&runs, &by_default)),
            ["img-a", "img-b"],
            "resolved params count"
        );
    }

    #[test]
    fn runs_are_grouped_by_dag() {
        let runs = runs();
        let text = render(&select(&runs, &Filter::default()), at(70).0, Style::PLAIN, Some(60));
        let expected = "Dag img (2 runs)\n\
            \x20 NAME    PHASE       STEPS   HASH           AGE    PARAMS\n\
            \x20 img-a   Succeeded   1/1     0123456789ab   1m0s   file=a.fits threshold=0.5\n\
            \x20 img-b   Failed      1/1     0123456789ab   50s    file=b.fits threshold=0.5\n\
            \n\
            Dag other (1 run)\n\
            \x20 NAME      PHASE     STEPS   HASH   AGE    PARAMS\n\
            \x20 other-x   Pending   -       -      1m5s   file=a.fits\n";
        assert_eq!(text, expected);
    }
}
