//! `kubectl dag get RUN`: the run's identity and outcome, then its step graph as a table.

use std::process::ExitCode;

use jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{Dag, DagRun, DagSpec, StepStatus};

use super::cluster::Cluster;
use super::error::CliError;
use super::human;
use super::output::{self, Format};
use super::steps::{self, StepView};
use super::style::{Style, phase_color};
use super::table::{Cell, Table, key_values, truncate};

/// Longest step message shown in the table.
const MAX_MESSAGE_LEN: usize = 60;

pub async fn get(cluster: &Cluster, name: &str, format: Option<Format>) -> Result<ExitCode, CliError> {
    let run: DagRun = cluster.get("DagRun", name).await?;
    if let Some(format) = format {
        output::emit(&output::run_document(format, &run)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    // A run that has not started has no captured spec yet; draw the Dag as it is now.
    let current_spec = match run.status.as_ref().and_then(|s| s.dag_spec.as_deref()) {
        Some(_) => None,
        None => cluster
            .get::<Dag>("Dag", &run.spec.dag_ref.name)
            .await
            .ok()
            .map(|d| d.spec),
    };
    output::emit(&render(&run, current_spec.as_ref(), Timestamp::now(), Style::stdout()))?;
    Ok(ExitCode::SUCCESS)
}

/// The whole view: identity and outcome, a blank line, the step table.
/// `fallback_spec` is used when the run has no captured spec yet.
pub fn render(run: &DagRun, fallback_spec: Option<&DagSpec>, now: Timestamp, style: Style) -> String {
    let status = run.status.clone().unwrap_or_default();
    let spec = status.dag_spec.as_deref().or(fallback_spec);
    let mut text = summary(run, now, style);
    let views = steps::ordered(spec, &status.steps);
    if !views.is_empty() {
        text.push('\n');
        text.push_str(&step_table(&views, now).render(style, ""));
    }
    text
}

/// The `Key: value` block of a run.
pub fn summary(run: &DagRun, now: Timestamp, style: Style) -> String {
    let status = run.status.clone().unwrap_or_default();
    let phase = status.phase.as_str();
    let mut phase_text = style.paint(phase_color(phase), phase);
    if let Some(progress) = &status.progress {
        phase_text.push_str(&format!(" ({progress} steps done)"));
    }
    let params = status.params.as_ref().unwrap_or(&run.spec.params);
    let not_yet = || "(assigned when the operator starts the run)".to_string();
    let mut pairs = vec![
        ("Name", run.name_any()),
        ("Namespace", run.namespace().unwrap_or_default()),
        ("Dag", run.spec.dag_ref.name.clone()),
        ("Phase", phase_text),
        ("RequestId", status.request_id.clone().unwrap_or_else(not_yet)),
        ("ParamHash", status.param_hash.clone().unwrap_or_else(not_yet)),
        ("Params", human::params_summary(params, None)),
        (
            "Created",
            format!("{} ago", human::age(run.metadata.creation_timestamp.as_ref(), now)),
        ),
        (
            "Duration",
            human::elapsed(status.started_at.as_ref(), status.finished_at.as_ref(), now),
        ),
    ];
    if run.spec.cancel && !status.phase.is_terminal() {
        pairs.push(("Cancel", "requested".into()));
    }
    if let Some(reason) = &status.reason {
        pairs.push(("Reason", reason.clone()));
    }
    if let Some(message) = &status.message {
        pairs.push(("Message", message.clone()));
    }
    key_values(&pairs)
}

fn step_table(views: &[StepView<'_>], now: Timestamp) -> Table {
    let mut table = Table::new(&[
        "STEP", "PHASE", "ATTEMPTS", "DURATION", "EXIT", "DEPENDS", "OUTPUTS", "MESSAGE",
    ]);
    let unknown = StepStatus::default();
    for view in views {
        let status = view.status.unwrap_or(&unknown);
        let phase = format!("{:?}", status.phase);
        table.push(vec![
            steps::tree_label(view).into(),
            Cell::colored(phase.clone(), phase_color(&phase)),
            status.attempts.to_string().into(),
            human::elapsed(status.started_at.as_ref(), status.finished_at.as_ref(), now).into(),
            status.exit_code.map_or("-".into(), |c| c.to_string()).into(),
            if view.depends.is_empty() {
                "-".into()
            } else {
                view.depends.join(",").into()
            },
            truncate(&outputs_summary(status), MAX_MESSAGE_LEN).into(),
            truncate(&why(status), MAX_MESSAGE_LEN).into(),
        ]);
    }
    table
}

/// `name=value` pairs of the step's outputs, or `-`.
fn outputs_summary(status: &StepStatus) -> String {
    if status.outputs.is_empty() {
        return "-".into();
    }
    let pairs: Vec<String> = status.outputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(" ")
}

/// The step's message, led by its reason when it has one (e.g. `WhenFalse: when is false: ...`),
/// and by what it composes: its child run (`call child-x (reused)`) or its fan-out's progress
/// (`forEach 12/200 done, 1 failed [7]`).
fn why(status: &StepStatus) -> String {
    let message = status.message.as_deref().unwrap_or("");
    let message = match &status.reason {
        Some(reason) => format!("{reason}: {message}"),
        None => message.to_string(),
    };
    match composition(status) {
        Some(what) if message.is_empty() => what,
        Some(what) => format!("{what}; {message}"),
        None => message,
    }
}

/// A call step's child run, or a fan-out's progress (n/m done, the failed items' indexes).
fn composition(status: &StepStatus) -> Option<String> {
    if let Some(fe) = &status.for_each {
        let mut text = format!("forEach {}/{} done", fe.succeeded + fe.failed, fe.total);
        if fe.failed > 0 {
            let failed: Vec<String> = fe.failed_items.iter().map(|f| f.index.to_string()).collect();
            text.push_str(&format!(", {} failed [{}]", fe.failed, failed.join(",")));
        }
        return Some(text);
    }
    let child = status.child_run.as_ref()?;
    Some(format!("call {child}{}", if status.reused { " (reused)" } else { "" }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec, DagRunStatus, RunPhase, Step, StepPhase};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
    }

    fn finished_run() -> DagRun {
        let spec = DagSpec {
            steps: vec![
                Step {
                    name: "fetch".into(),
                    ..Default::default()
                },
                Step {
                    name: "calibrate".into(),
                    depends: vec!["fetch".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut run = DagRun::new(
            "img-abc",
            DagRunSpec {
                dag_ref: DagRef { name: "img".into() },
                params: [("file".to_string(), "m31.fits".to_string())].into(),
                ..Default::default()
            },
        );
        run.metadata.creation_timestamp = Some(at(0));
        run.status = Some(DagRunStatus {
            phase: RunPhase::Failed,
            request_id: Some("req-1".into()),
            param_hash: Some("ab".repeat(32)),
            progress: Some("2/2".into()),
            started_at: Some(at(1)),
            finished_at: Some(at(31)),
            message: Some("step calibrate failed".into()),
            dag_spec: Some(spec.into()),
            steps: vec![
                StepStatus {
                    name: "calibrate".into(),
                    phase: StepPhase::Failed,
                    attempts: 3,
                    started_at: Some(at(5)),
                    finished_at: Some(at(30)),
                    exit_code: Some(2),
                    message: Some("exit code 2".into()),
                    ..Default::default()
                },
                StepStatus {
                    name: "fetch".into(),
                    phase: StepPhase::Succeeded,
                    attempts: 1,
                    started_at: Some(at(1)),
                    finished_at: Some(at(4)),
                    exit_code: Some(0),
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        run
    }

    #[test]
    fn a_finished_run_shows_identity_and_its_step_tree() {
        let text = render(&finished_run(), None, at(60).0, Style::PLAIN);
        let expected = format!(
            "Name:       img-abc\nNamespace:\nDag:        img\nPhase:      Failed (2/2 steps done)\n\
             RequestId:  req-1\nParamHash:  {}\nParams:     file=m31.fits\nCreated:    1m0s ago\n\
             Duration:   30s\nMessage:    step calibrate failed\n\n\
             STEP           PHASE       ATTEMPTS   DURATION   EXIT   DEPENDS   OUTPUTS   MESSAGE\n\
             fetch          Succeeded   1          3s         0      -         -\n\
             └─ calibrate   Failed      3          25s        2      fetch     -         exit code 2\n",
            "ab".repeat(32)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn outputs_skip_reasons_and_exit_handlers_are_shown() {
        let mut run = finished_run();
        let status = run.status.as_mut().unwrap();
        let spec = std::sync::Arc::make_mut(status.dag_spec.as_mut().unwrap());
        spec.on_exit = vec![Step {
            name: "notify".into(),
            ..Default::default()
        }];
        status.steps[1].outputs = [("count".to_string(), "42".to_string())].into();
        status.steps[0].phase = StepPhase::Skipped;
        status.steps[0].reason = Some("WhenFalse".into());
        status.steps[0].message = Some("when is false: params.mode == 'full'".into());
        status.steps.push(StepStatus {
            name: "notify".into(),
            phase: StepPhase::Succeeded,
            ..Default::default()
        });
        let text = render(&run, None, at(60).0, Style::PLAIN);
        assert!(text.contains("count=42"), "{text}");
        assert!(text.contains("WhenFalse: when is false"), "{text}");
        assert!(text.contains("notify (onExit)"), "{text}");
    }

    #[test]
    fn calls_and_fan_outs_are_shown() {
        let mut run = finished_run();
        let status = run.status.as_mut().unwrap();
        status.steps[1].child_run = Some("bias-n3-1-abc".into());
        status.steps[1].reused = true;
        status.steps[0].message = None;
        status.steps[0].for_each = Some(Box::new(crate::api::ForEachStatus {
            total: 200,
            succeeded: 150,
            failed: 2,
            failed_items: vec![
                crate::api::FailedItem {
                    index: 7,
                    ..Default::default()
                },
                crate::api::FailedItem {
                    index: 9,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }));
        let text = render(&run, None, at(60).0, Style::PLAIN);
        assert!(text.contains("call bias-n3-1-abc (reused)"), "{text}");
        assert!(text.contains("forEach 152/200 done, 2 failed [7,9]"), "{text}");
    }

    #[test]
    fn an_unstarted_run_draws_the_current_dag_and_says_what_is_missing() {
        let mut run = finished_run();
        let spec = run.status.take().unwrap().dag_spec;
        let text = render(&run, spec.as_deref(), at(60).0, Style::PLAIN);
        assert!(text.contains("Phase:      Pending\n"), "{text}");
        assert!(
            text.contains("RequestId:  (assigned when the operator starts the run)"),
            "{text}"
        );
        assert!(text.contains("└─ calibrate   Pending   0          -"), "{text}");
    }
}
