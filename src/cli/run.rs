//! `kubectl dag run DAG -p key=value ...`: create one run, show its identity, optionally wait for
//! its outcome (and stream its step logs meanwhile).

use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;
use kube::ResourceExt;

use crate::api::{Dag, DagRun, RunPhase};
use crate::engine::params::{self as engine_params, Params};

use super::cluster::Cluster;
use super::create;
use super::error::CliError;
use super::get;
use super::logs;
use super::output::emit;
use super::progress::{Mode, Progress};
use super::style::{Style, phase_color};
use super::table::key_values;
use super::watch::{self, is_finished};

/// How long to wait for the operator to assign the run's requestId before printing without it.
const IDENTITY_WAIT: Duration = Duration::from_secs(10);

pub struct RunRequest {
    pub dag: String,
    pub params: Params,
    pub request_id: Option<String>,
    pub wait: bool,
    pub follow: bool,
}

pub async fn run(cluster: &Cluster, request: RunRequest) -> Result<ExitCode, CliError> {
    let dag: Dag = cluster.get("Dag", &request.dag).await?;
    // Resolve here too: a bad parameter is reported before anything is created, and the
    // paramHash is known even if the operator is slow to start the run.
    let resolved = engine_params::resolve(&request.dag, &dag.spec.params, &request.params)
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let hash = engine_params::param_hash(&resolved);
    let created = create::create(
        cluster,
        &create::new_run(&request.dag, request.params, request.request_id),
        false,
    )
    .await?;
    let name = created.name_any();
    let started = tokio::time::timeout(
        IDENTITY_WAIT,
        watch::until(cluster, &name, |r| has_identity(r) || is_finished(r), |_| {}),
    )
    .await
    .ok()
    .transpose()?;
    let current = started.unwrap_or(created);
    emit(&identity(&current, &hash))?;
    if current.phase() == RunPhase::Rejected {
        return Ok(outcome(&current));
    }
    if !(request.wait || request.follow) {
        return Ok(ExitCode::SUCCESS);
    }
    let finished = wait(cluster, &current, request.follow).await?;
    emit("\n")?;
    emit(&get::render(&finished, None, Timestamp::now(), Style::stdout()))?;
    Ok(outcome(&finished))
}

/// Whether the operator has started the run (it then has its requestId).
fn has_identity(run: &DagRun) -> bool {
    run.status.as_ref().is_some_and(|s| s.request_id.is_some())
}

/// Name, requestId and paramHash; the status's values once known, else the client-side hash.
fn identity(run: &DagRun, computed_hash: &str) -> String {
    let status = run.status.clone().unwrap_or_default();
    let request_id = status
        .request_id
        .or_else(|| Some(run.spec.request_id.clone()).filter(|id| !id.is_empty()))
        .unwrap_or_else(|| "(not assigned yet: the operator has not started the run)".into());
    let mut pairs = vec![
        ("Name", run.name_any()),
        ("Namespace", run.namespace().unwrap_or_default()),
        ("Dag", run.spec.dag_ref.name.clone()),
        ("RequestId", request_id),
        (
            "ParamHash",
            status.param_hash.unwrap_or_else(|| computed_hash.to_string()),
        ),
    ];
    if status.phase == RunPhase::Rejected {
        pairs.push(("Phase", status.phase.as_str().to_string()));
        pairs.push(("Message", status.message.unwrap_or_default()));
    }
    key_values(&pairs)
}

/// Waits for the run to finish, showing its progress on stderr and, with `follow`, its step logs.
async fn wait(cluster: &Cluster, run: &DagRun, follow: bool) -> Result<DagRun, CliError> {
    let progress = Progress::new(Mode::for_stderr(Mode::Lines));
    let style = Style::stderr();
    let show = |r: &DagRun| show_progress(&progress, r, style);
    let finished = if follow {
        logs::follow_while_waiting(cluster, run, None, &progress, show).await
    } else {
        watch::until_finished(cluster, &run.name_any(), show).await
    };
    progress.finish();
    finished
}

/// A bar of the steps done once the operator counts them, a spinner before.
fn show_progress(progress: &Progress, run: &DagRun, style: Style) {
    let (status, steps) = progress_status(run, style);
    match steps {
        Some((done, total)) => {
            progress.set_total(total, "steps done");
            progress.update(done, &status);
        }
        None => progress.set_status(&status),
    }
}

/// `img-x7k2p: Running` and, from the run's `done/total` progress, the steps done of all.
fn progress_status(run: &DagRun, style: Style) -> (String, Option<(u64, u64)>) {
    let status = run.status.clone().unwrap_or_default();
    let phase = status.phase.as_str();
    let line = format!("{}: {}", run.name_any(), style.paint(phase_color(phase), phase));
    let steps = status.progress.as_deref().and_then(|progress| {
        let (done, total) = progress.split_once('/')?;
        Some((done.parse().ok()?, total.parse().ok()?))
    });
    (line, steps)
}

/// 0 for a Succeeded run, 1 for any other end.
fn outcome(run: &DagRun) -> ExitCode {
    match run.phase() {
        RunPhase::Succeeded => ExitCode::SUCCESS,
        phase => {
            let message = run.status.as_ref().and_then(|s| s.message.clone()).unwrap_or_default();
            super::output::error(&format!(
                "DagRun {} ended {}{}",
                run.name_any(),
                phase.as_str(),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRunStatus, RunPhase};

    fn run_with(status: Option<DagRunStatus>) -> DagRun {
        let mut run = create::new_run("img", Params::new(), None);
        run.metadata.name = Some("img-x7k2p".into());
        run.metadata.namespace = Some("ns".into());
        run.status = status;
        run
    }

    #[test]
    fn identity_prefers_the_status_and_says_what_is_missing() {
        let text = identity(&run_with(None), "computed");
        assert!(text.contains("Name:       img-x7k2p\n"), "{text}");
        assert!(text.contains("RequestId:  (not assigned yet"), "{text}");
        assert!(text.contains("ParamHash:  computed\n"), "{text}");
        let started = run_with(Some(DagRunStatus {
            phase: RunPhase::Running,
            request_id: Some("req".into()),
            param_hash: Some("fromstatus".into()),
            ..Default::default()
        }));
        let text = identity(&started, "computed");
        assert!(
            text.contains("RequestId:  req\n") && text.contains("ParamHash:  fromstatus\n"),
            "{text}"
        );
    }

    #[test]
    fn a_rejected_run_shows_why() {
        let rejected = run_with(Some(DagRunStatus {
            phase: RunPhase::Rejected,
            message: Some("duplicate parameters: DagRun \"first\" ...".into()),
            ..Default::default()
        }));
        let text = identity(&rejected, "h");
        assert!(
            text.contains("Phase:      Rejected\nMessage:    duplicate parameters"),
            "{text}"
        );
        assert_eq!(outcome(&rejected), ExitCode::FAILURE);
    }

    #[test]
    fn progress_shows_phase_and_steps_done() {
        let running = run_with(Some(DagRunStatus {
            phase: RunPhase::Running,
            progress: Some("1/3".into()),
            ..Default::default()
        }));
        assert_eq!(
            progress_status(&running, Style::PLAIN),
            ("img-x7k2p: Running".to_string(), Some((1, 3)))
        );
        let odd = run_with(Some(DagRunStatus {
            progress: Some("?".into()),
            ..Default::default()
        }));
        assert_eq!(progress_status(&odd, Style::PLAIN).1, None);
        assert_eq!(
            progress_status(&run_with(None), Style::PLAIN),
            ("img-x7k2p: Pending".to_string(), None)
        );
    }
}
