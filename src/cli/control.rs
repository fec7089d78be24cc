//! `kubectl dag cancel RUN` and `kubectl dag retry RUN`: merge patches of the run's spec.

use std::process::ExitCode;

use kube::api::{Patch, PatchParams};

use crate::api::DagRun;
use crate::engine::admit::retry_refusal;

use super::cluster::Cluster;
use super::error::CliError;
use super::output::{emit_line, error};

/// What a cancel or retry request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// The patch was accepted; the message says what happens next.
    Done(String),
    /// Nothing to do (e.g. the run already ended); the message says why.
    Nothing(String),
    /// The run's phase does not allow it; the message says why.
    Refused(String),
}

/// Sets `spec.cancel: true`; a finished run is left alone.
pub async fn cancel(cluster: &Cluster, name: &str) -> Result<ExitCode, CliError> {
    report(request_cancel(cluster, name).await?)
}

/// Raises `spec.retry` to `status.retries + 1`, which re-runs the failed and skipped steps of a
/// Failed run. Other phases have nothing to retry.
pub async fn retry(cluster: &Cluster, name: &str) -> Result<ExitCode, CliError> {
    report(request_retry(cluster, name).await?)
}

fn report(requested: Requested) -> Result<ExitCode, CliError> {
    match requested {
        Requested::Done(message) | Requested::Nothing(message) => {
            emit_line(&message)?;
            Ok(ExitCode::SUCCESS)
        }
        Requested::Refused(message) => {
            error(&message);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The cancel of `kubectl dag cancel` (and the web UI): patches `spec.cancel` unless the run ended.
/// Errors: the run is missing, or the API server refused the read or the patch (RBAC, webhook).
pub async fn request_cancel(cluster: &Cluster, name: &str) -> Result<Requested, CliError> {
    let run: DagRun = cluster.get("DagRun", name).await?;
    let phase = run.phase();
    if phase.is_terminal() {
        return Ok(Requested::Nothing(format!(
            "DagRun {name} already ended {}: nothing to cancel",
            phase.as_str()
        )));
    }
    patch_spec(cluster, name, serde_json::json!({"cancel": true}), "cancel").await?;
    Ok(Requested::Done(format!(
        "DagRun {name}: cancel requested (running steps are stopped, the run ends Cancelled)"
    )))
}

/// The retry of `kubectl dag retry` (and the web UI): raises `spec.retry` for a Failed run.
/// Errors as [`request_cancel`].
pub async fn request_retry(cluster: &Cluster, name: &str) -> Result<Requested, CliError> {
    let run: DagRun = cluster.get("DagRun", name).await?;
    let phase = run.phase();
    if let Some(why) = retry_refusal(phase) {
        return Ok(Requested::Refused(format!(
            "DagRun {name} is {}: {why}",
            phase.as_str()
        )));
    }
    let next = run.status.as_ref().map_or(0, |s| s.retries) + 1;
    patch_spec(cluster, name, serde_json::json!({"retry": next}), "retry").await?;
    Ok(Requested::Done(format!(
        "DagRun {name}: retry {next} requested (its failed and skipped steps run again)"
    )))
}

async fn patch_spec(cluster: &Cluster, name: &str, spec: serde_json::Value, what: &str) -> Result<(), CliError> {
    let patch = serde_json::json!({ "spec": spec });
    cluster
        .api::<DagRun>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(CliError::kube(format!("cannot request {what} of DagRun {name:?}")))?;
    Ok(())
}
