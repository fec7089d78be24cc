//! `kubectl dag list [DAG]`: runs grouped by Dag with phase, progress, short hash and params;
//! `-A` all namespaces, `-l` a label selector, `--limit/--continue` pages, `-w` changes after.

use std::collections::BTreeMap;
use std::pin::pin;
use std::process::ExitCode;

use futures::StreamExt;
use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};

use crate::api::{DAG_REF_FIELD, DagRun, RunPhase};
use crate::engine::params::Params;

use super::cluster::{Cluster, RunScope};
use super::error::CliError;
use super::human;
use super::output::{self, Format};
use super::params::matches;
use super::style::{Color, Style, phase_color};
use super::table::{Cell, Table};
use super::watch::MAX_CONSECUTIVE_ERRORS;

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

/// What `kubectl dag list` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub filter: Filter,
    pub scope: RunScope,
    pub format: Option<Format>,
    /// Params in full.
    pub wide: bool,
    /// After the list, print each change until interrupted.
    pub watch: bool,
}

pub async fn list(cluster: &Cluster, request: ListRequest) -> Result<ExitCode, CliError> {
    let scope = server_scope(&request);
    let (runs, next_page) = cluster.list_runs_in(&scope).await?;
    let selected = select(&runs, &request.filter);
    let max_params = (!request.wide).then_some(MAX_PARAMS_LEN);
    if let Some(format) = request.format {
        output::emit(&output::runs_document(format, &selected)?)?;
    } else if selected.is_empty() {
        let place = if scope.all_namespaces {
            "any namespace".to_string()
        } else {
            format!("namespace {:?}", cluster.namespace)
        };
        output::note(&format!("No DagRuns found in {place}."));
    } else {
        let text = render(
            &selected,
            Timestamp::now(),
            Style::stdout(),
            max_params,
            scope.all_namespaces,
        );
        output::emit(&text)?;
    }
    if let Some(token) = next_page {
        output::note(&format!("More runs: add --continue {token}"));
    }
    if request.watch {
        follow(cluster, &scope, &request.filter, max_params).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The scope as sent to the API server: one Dag's runs are selected there on
/// `spec.dagRef.name` (a selectable field), so pages are full and a watch sends only them.
fn server_scope(request: &ListRequest) -> RunScope {
    let mut scope = request.scope.clone();
    scope.fields = request.filter.dag.as_ref().map(|dag| format!("{DAG_REF_FIELD}={dag}"));
    scope
}

/// Prints one line per change of a run passing `filter` (`kubectl get -w` style) until the
/// watch fails for good or the user interrupts.
async fn follow(
    cluster: &Cluster,
    scope: &RunScope,
    filter: &Filter,
    max_params: Option<usize>,
) -> Result<(), CliError> {
    let mut config = watcher::Config::default();
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
    }
    if let Some(fields) = &scope.fields {
        config = config.fields(fields);
    }
    let mut events = pin!(watcher::watcher(cluster.runs_api(scope), config).default_backoff());
    let mut errors = 0;
    while let Some(event) = events.next().await {
        let (run, deleted) = match event {
            Ok(watcher::Event::Apply(run)) => (run, false),
            Ok(watcher::Event::Delete(run)) => (run, true),
            Ok(_) => continue,
            Err(source) => {
                errors += 1;
                if errors >= MAX_CONSECUTIVE_ERRORS {
                    return Err(CliError::Watch {
                        doing: "cannot watch DagRuns".into(),
                        source,
                    });
                }
                continue;
            }
        };
        errors = 0;
        if !select(std::slice::from_ref(&run), filter).is_empty() {
            output::emit_line(&change_line(&run, deleted, scope.all_namespaces, max_params))?;
        }
    }
    Ok(())
}

/// One watched change: `NAME PHASE STEPS PARAMS` (the namespace in front with `-A`).
pub fn change_line(run: &DagRun, deleted: bool, with_namespace: bool, max_params: Option<usize>) -> String {
    let name = match (with_namespace, run.namespace()) {
        (true, Some(namespace)) => format!("{namespace}/{}", run.name_any()),
        _ => run.name_any(),
    };
    let phase = if deleted { "(deleted)" } else { run.phase().as_str() };
    let progress = run
        .status
        .as_ref()
        .and_then(|s| s.progress.clone())
        .unwrap_or("-".into());
    let params = human::params_summary(shown_params(run), max_params);
    format!("{name}  {phase}  {progress}  {params}")
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
        .filter(|r| filter.phases.is_empty() || filter.phases.contains(&r.phase()))
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

/// One section per Dag (per namespace and Dag with `with_namespace`): a heading, then a table of
/// its runs.
pub fn render(
    runs: &[&DagRun],
    now: Timestamp,
    style: Style,
    max_params: Option<usize>,
    with_namespace: bool,
) -> String {
    let mut groups: BTreeMap<String, Vec<&DagRun>> = BTreeMap::new();
    for run in runs {
        let dag = &run.spec.dag_ref.name;
        let key = match (with_namespace, run.namespace()) {
            (true, Some(namespace)) => format!("{namespace}/{dag}"),
            _ => dag.clone(),
        };
        groups.entry(key).or_default().push(run);
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
        let phase = run.phase().as_str();
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
    fn one_dags_runs_are_selected_on_the_server_by_their_dag_ref() {
        let mut request = ListRequest::default();
        assert_eq!(server_scope(&request).fields, None, "every Dag: no field selector");
        request.filter.dag = Some("img".into());
        request.scope.selector = Some("team=astro".into());
        let scope = server_scope(&request);
        assert_eq!(scope.fields.as_deref(), Some("spec.dagRef.name=img"));
        assert_eq!(
            scope.selector.as_deref(),
            Some("team=astro"),
            "the label selector is kept"
        );
    }

    #[test]
    fn all_namespaces_group_by_namespace_and_dag() {
        let mut runs = runs();
        runs[0].metadata.namespace = Some("b".into());
        runs[1].metadata.namespace = Some("a".into());
        runs[2].metadata.namespace = Some("a".into());
        let text = render(
            &select(&runs, &Filter::default()),
            at(70).0,
            Style::PLAIN,
            Some(60),
            true,
        );
        let headings: Vec<&str> = text.lines().filter(|l| l.starts_with("Dag ")).collect();
        assert_eq!(
            headings,
            ["Dag a/img (1 run)", "Dag a/other (1 run)", "Dag b/img (1 run)"]
        );
    }

    #[test]
    fn watched_changes_are_one_line_each() {
        let mut run = run("img-a", "img", 10, "a.fits", Some(RunPhase::Running));
        run.metadata.namespace = Some("ns".into());
        assert_eq!(
            change_line(&run, false, true, Some(60)),
            "ns/img-a  Running  1/1  file=a.fits threshold=0.5"
        );
        assert_eq!(
            change_line(&run, true, false, Some(60)),
            "img-a  (deleted)  1/1  file=a.fits threshold=0.5"
        );
    }

    #[test]
    fn runs_are_grouped_by_dag() {
        let runs = runs();
        let text = render(
            &select(&runs, &Filter::default()),
            at(70).0,
            Style::PLAIN,
            Some(60),
            false,
        );
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
