//! `kubectl dag cancel RUN` and `kubectl dag retry RUN`: merge patches of the run's spec.

use std::process::ExitCode;

use kube::api::{Patch, PatchParams};

use crate::api::{DagRun, RunPhase};

use super::cluster::Cluster;
use super::error::CliError;
use super::output::{emit_line, error};
use super::watch::phase_of;

/// Sets `spec.cancel: true`; a finished run is left alone.
pub async fn cancel(cluster: &Cluster, name: &str) -> Result<ExitCode, CliError> {
    let run: DagRun = cluster.get("DagRun", name).await?;
    let phase = phase_of(&run);
    if phase.is_terminal() {
        emit_line(&format!(
            "DagRun {name} already ended {}: nothing to cancel",
            phase.as_str()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    patch_spec(cluster, name, serde_json::json!({"cancel": true}), "cancel").await?;
    emit_line(&format!(
        "DagRun {name}: cancel requested (running steps are stopped, the run ends Cancelled)"
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Raises `spec.retry` to `status.retries + 1`, which re-runs the failed and skipped steps of a
/// Failed run. Other phases have nothing to retry.
pub async fn retry(cluster: &Cluster, name: &str) -> Result<ExitCode, CliError> {
    let run: DagRun = cluster.get("DagRun", name).await?;
    let phase = phase_of(&run);
    if let Some(why) = retry_refusal(phase) {
        error(&format!("DagRun {name} is {}: {why}", phase.as_str()));
        return Ok(ExitCode::FAILURE);
    }
    let next = run.status.as_ref().map_or(0, |s| s.retries) + 1;
    patch_spec(cluster, name, serde_json::json!({"retry": next}), "retry").await?;
    emit_line(&format!(
        "DagRun {name}: retry {next} requested (its failed and skipped steps run again)"
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Why a run in `phase` cannot be retried; `None` for a Failed run.
pub fn retry_refusal(phase: RunPhase) -> Option<&'static str> {
    match phase {
        RunPhase::Failed => None,
        RunPhase::Succeeded => Some("only a Failed run can be retried; this one has nothing left to re-run"),
        RunPhase::Cancelled | RunPhase::Rejected => {
            Some("only a Failed run can be retried; start a new run with `kubectl dag run` instead")
        }
        RunPhase::Pending | RunPhase::Queued | RunPhase::Running => {
            Some("only a Failed run can be retried; wait for it to finish")
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_runs_can_be_retried() {
        for phase in RunPhase::ALL {
            assert_eq!(retry_refusal(phase).is_none(), phase == RunPhase::Failed, "{phase:?}");
        }
    }
}
