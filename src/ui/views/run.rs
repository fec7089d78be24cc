//! A run's page: identity (requestId, paramHash, params, the parent run when a `call` made it),
//! the step graph ([`super::graph`]), the step table with each step's composition, the runs with the same parameters, Events, and the
//! logs panel of one step.

use askama::Template;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;

use crate::api::{DagRun, RunPhase, labels};
use crate::cli::human;
use crate::cli::steps::{self, StepView};
use crate::ui::groups::RunRow;

use super::composition::Composition;
use super::graph::{self, Graph, step_phase};
use super::{Alert, Chrome, dag_url, encode, run_url};

#[derive(Template)]
#[template(path = "run.html")]
pub struct RunPage {
    pub chrome: Chrome,
    pub alert: Option<Alert>,
    pub token: String,
    pub name: String,
    pub dag: String,
    pub dag_url: String,
    pub phase: String,
    pub message: String,
    pub request_id: String,
    pub param_hash: String,
    pub params: Vec<(String, String)>,
    pub started: String,
    pub duration: String,
    pub retries: u32,
    /// The run and step that called this run, when a `call` step made it: (run, URL, step).
    pub called_by: Option<(String, String, String)>,
    pub can_cancel: bool,
    pub can_retry: bool,
    pub cancel_url: String,
    pub retry_url: String,
    pub graph: Graph,
    pub legend: Vec<&'static str>,
    pub steps: Vec<StepRow>,
    pub siblings: Vec<SiblingRow>,
    pub events: Vec<EventRow>,
    pub events_note: String,
    pub log_step: Option<String>,
    pub log_src: Option<String>,
    /// (label, href, current) per attempt of the logged step, when it has more than one.
    pub log_attempts: Vec<(String, String, bool)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub name: String,
    pub handler: bool,
    pub phase: String,
    pub attempts: u32,
    pub exit_code: String,
    pub started: String,
    pub duration: String,
    pub message: String,
    pub outputs: Vec<(String, String)>,
    /// A call's child run or a fan-out's progress.
    pub composition: Option<Composition>,
    pub logs_url: String,
    pub log_current: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiblingRow {
    pub name: String,
    pub url: String,
    pub phase: String,
    pub age: String,
    pub duration: String,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub kind: String,
    pub reason: String,
    pub age: String,
    pub message: String,
}

/// What the page is built from besides the run.
pub struct RunInput<'a> {
    pub chrome: Chrome,
    pub token: String,
    pub now: Timestamp,
    pub alert: Option<Alert>,
    /// Runs of the same Dag with the same paramHash (this one included).
    pub siblings: Vec<&'a RunRow>,
    /// The run's Events, or why they could not be read.
    pub events: Result<Vec<Event>, String>,
    /// The step whose logs the page shows, and which attempt (default: its latest).
    pub log_step: Option<String>,
    pub log_attempt: Option<u32>,
}

impl RunPage {
    pub fn build(run: &DagRun, input: RunInput<'_>) -> RunPage {
        let namespace = run.namespace().unwrap_or_default();
        let name = run.name_any();
        let url = run_url(&namespace, &name);
        let status = run.status.clone().unwrap_or_default();
        let views = steps::ordered(status.dag_spec.as_deref(), &status.steps);
        let logs_url = |step: &str| format!("{url}?step={}#logs", encode(step));
        let now = input.now;
        let spec = status.dag_spec.as_deref();
        let compositions: Vec<Option<Composition>> = views
            .iter()
            .map(|v| {
                let step = spec.and_then(|s| s.steps.iter().chain(&s.on_exit).find(|s| s.name == v.name));
                Composition::of(&namespace, step, v.status)
            })
            .collect();
        let steps: Vec<StepRow> = views
            .iter()
            .zip(&compositions)
            .map(|(v, c)| StepRow {
                composition: c.clone(),
                ..step_row(v, logs_url(v.name), input.log_step.as_deref() == Some(v.name), now)
            })
            .collect();
        let mut newest_first = input.siblings.clone();
        newest_first.sort_by_key(|r| std::cmp::Reverse((r.created, r.name.clone())));
        let siblings: Vec<SiblingRow> = newest_first
            .iter()
            .map(|r| SiblingRow {
                name: r.name.clone(),
                url: run_url(&r.namespace, &r.name),
                phase: r.phase.as_str().into(),
                age: r.created.map_or("-".into(), |c| {
                    format!("{} ago", human::duration(now.duration_since(c)))
                }),
                duration: r.duration(now).map_or("-".into(), human::duration),
                current: r.name == name,
            })
            .collect();
        let (events, events_note) = match input.events {
            Ok(events) => (
                event_rows(events, now),
                "no Events recorded (they expire after an hour)".to_string(),
            ),
            Err(why) => (Vec::new(), why),
        };
        let phase = status.phase;
        RunPage {
            chrome: input.chrome,
            alert: input.alert,
            token: input.token,
            dag_url: dag_url(&namespace, &run.spec.dag_ref.name),
            dag: run.spec.dag_ref.name.clone(),
            phase: phase.as_str().into(),
            message: status.message.clone().unwrap_or_default(),
            request_id: status.request_id.clone().unwrap_or_else(|| run.spec.request_id.clone()),
            param_hash: status.param_hash.clone().unwrap_or_default(),
            params: status
                .params
                .clone()
                .unwrap_or_else(|| run.spec.params.clone())
                .into_iter()
                .collect(),
            started: human::age(status.started_at.as_ref(), now) + " ago",
            duration: human::elapsed(status.started_at.as_ref(), status.finished_at.as_ref(), now),
            retries: status.retries,
            called_by: called_by(run, &namespace),
            can_cancel: !phase.is_terminal() && !run.spec.cancel,
            can_retry: phase == RunPhase::Failed,
            cancel_url: format!("{url}/cancel"),
            retry_url: format!("{url}/retry"),
            graph: graph::graph(&views, &compositions, &logs_url, input.log_step.as_deref()),
            legend: vec!["Pending", "Running", "Succeeded", "Failed", "Skipped", "Cancelled"],
            steps,
            siblings,
            events,
            events_note,
            log_src: input.log_step.as_ref().map(|s| {
                let attempt = input.log_attempt.map(|a| format!("?attempt={a}")).unwrap_or_default();
                format!("{url}/logs/{}{attempt}", encode(s))
            }),
            log_attempts: log_attempts(&url, &views, input.log_step.as_deref(), input.log_attempt),
            log_step: input.log_step,
            name,
        }
    }
}

/// Links to each attempt's log of `step` when it ran more than once.
fn log_attempts(
    url: &str,
    views: &[StepView<'_>],
    step: Option<&str>,
    chosen: Option<u32>,
) -> Vec<(String, String, bool)> {
    let Some(view) = views.iter().find(|v| Some(v.name) == step) else {
        return Vec::new();
    };
    let attempts = view.status.map_or(0, |s| s.attempts);
    if attempts < 2 {
        return Vec::new();
    }
    (1..=attempts)
        .map(|a| {
            let href = format!("{url}?step={}&attempt={a}#logs", encode(view.name));
            (format!("attempt {a}"), href, chosen.unwrap_or(attempts) == a)
        })
        .collect()
}

fn step_row(view: &StepView<'_>, logs_url: String, log_current: bool, now: Timestamp) -> StepRow {
    let status = view.status;
    StepRow {
        name: view.name.to_string(),
        handler: view.handler,
        phase: step_phase(view).into(),
        attempts: status.map_or(0, |s| s.attempts),
        exit_code: status.and_then(|s| s.exit_code).map_or("-".into(), |c| c.to_string()),
        started: status
            .and_then(|s| s.started_at.as_ref())
            .map_or("-".into(), |t| human::age(Some(t), now) + " ago"),
        duration: status.map_or("-".into(), |s| {
            human::elapsed(s.started_at.as_ref(), s.finished_at.as_ref(), now)
        }),
        message: status.and_then(|s| s.message.clone()).unwrap_or_default(),
        outputs: status
            .map(|s| s.outputs.clone().into_iter().collect())
            .unwrap_or_default(),
        composition: None,
        logs_url,
        log_current,
    }
}

/// The parent run and step of a child run made by a `call` (from its labels).
fn called_by(run: &DagRun, namespace: &str) -> Option<(String, String, String)> {
    let own = run.labels();
    let parent = own.get(labels::PARENT_RUN)?;
    let step = own.get(labels::PARENT_STEP).cloned().unwrap_or_default();
    Some((parent.clone(), run_url(namespace, parent), step))
}

/// Newest first.
fn event_rows(mut events: Vec<Event>, now: Timestamp) -> Vec<EventRow> {
    let when = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    events.sort_by_key(|e| std::cmp::Reverse(when(e)));
    events
        .iter()
        .map(|e| EventRow {
            kind: e.type_.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            age: when(e).map_or("-".into(), |t| {
                format!("{} ago", human::duration(now.duration_since(t)))
            }),
            message: e.message.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec, DagRunStatus, StepPhase, StepStatus};
    use crate::engine::graph;

    #[test]
    fn the_graph_colours_nodes_by_step_phase_and_links_their_logs() {
        let spec = graph::tests::spec(vec![
            graph::tests::step("fetch", &[]),
            graph::tests::step("calibrate", &["fetch"]),
        ]);
        let mut run = DagRun::new(
            "img-1",
            DagRunSpec {
                dag_ref: DagRef { name: "img".into() },
                ..Default::default()
            },
        );
        run.metadata.namespace = Some("ns".into());
        run.status = Some(DagRunStatus {
            phase: RunPhase::Failed,
            dag_spec: Some(spec.into()),
            steps: vec![
                StepStatus {
                    name: "fetch".into(),
                    phase: StepPhase::Succeeded,
                    attempts: 1,
                    ..Default::default()
                },
                StepStatus {
                    name: "calibrate".into(),
                    phase: StepPhase::Failed,
                    attempts: 2,
                    exit_code: Some(3),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        let input = RunInput {
            chrome: Chrome::default(),
            token: "t".into(),
            now: Timestamp::UNIX_EPOCH,
            alert: None,
            siblings: Vec::new(),
            events: Err("cannot read".into()),
            log_step: Some("calibrate".into()),
            log_attempt: Some(1),
        };
        let page = RunPage::build(&run, input);
        let fills: Vec<(&str, &str)> = page.graph.nodes.iter().map(|n| (n.name.as_str(), n.fill)).collect();
        assert_eq!(fills, [("fetch", "#1a7f37"), ("calibrate", "#cf222e")]);
        assert_eq!(page.graph.nodes[1].detail, " ×2");
        assert_eq!(page.graph.edges.len(), 1);
        assert!(page.can_retry && !page.can_cancel);
        assert_eq!(
            page.log_src.as_deref(),
            Some("/ns/ns/runs/img-1/logs/calibrate?attempt=1")
        );
        let attempts: Vec<(&str, bool)> = page.log_attempts.iter().map(|a| (a.0.as_str(), a.2)).collect();
        assert_eq!(attempts, [("attempt 1", true), ("attempt 2", false)]);
        assert_eq!(page.steps[1].exit_code, "3");
        let html = super::super::render(&page);
        assert!(html.contains(r##"data-phase="Failed""##) && html.contains("cannot read"));
    }
}
