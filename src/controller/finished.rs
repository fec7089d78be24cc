//! Runs that ended: retry on request (`spec.retry`), and deletion after `ttlSecondsAfterFinished`.

use std::time::Duration;

use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::api::{DagRun, RunPhase};
use crate::engine::{duplicates, plan};

use super::claim::{self, ClaimOutcome};
use super::error::is_not_found;
use super::{Context, Error, events, status};

pub async fn reconcile(ctx: &Context, run: &DagRun) -> Result<Action, Error> {
    let status = run.status.clone().unwrap_or_default();
    if status.phase == RunPhase::Failed && run.spec.retry > status.retries {
        retry(ctx, run).await?;
        return Ok(Action::await_change());
    }
    expire(ctx, run).await
}

/// Re-runs the failed and skipped steps of a Failed run, after taking its duplicate claim again
/// (a Failed run released it under both Forbid policies; another run may hold it by now).
async fn retry(ctx: &Context, run: &DagRun) -> Result<(), Error> {
    let mut status = run.status.clone().unwrap_or_default();
    status.retries = run.spec.retry;
    let (Some(spec), Some(hash)) = (status.dag_spec.clone(), status.param_hash.clone()) else {
        status.message = Some("retry refused: the run never started, so there is nothing to re-run".into());
        return status::write(ctx, run, status).await.map(|_| ());
    };
    let dag = &run.spec.dag_ref.name;
    if let ClaimOutcome::Duplicate { holder } = claim::acquire(ctx, run, dag, spec.duplicate_policy, &hash).await? {
        let refusal = duplicates::refusal_message(dag, &holder, &hash, spec.duplicate_policy);
        status.message = Some(format!("retry refused: {refusal}"));
        return status::write(ctx, run, status).await.map(|_| ());
    }
    plan::reset_for_retry(&mut status.steps);
    status.phase = RunPhase::Running;
    status.reason = Some("Retried".into());
    status.message = Some(format!(
        "retry {}: re-running the failed and skipped steps",
        run.spec.retry
    ));
    status.finished_at = None;
    status.progress = Some(plan::progress(&status.steps, status.steps.len()));
    status::write(ctx, run, status).await?;
    events::run_started(ctx, run, format!("retry {} of a failed run", run.spec.retry));
    Ok(())
}

/// Deletes the run (and, through ownership, its Jobs and pods) once `ttlSecondsAfterFinished`
/// has passed since it finished.
async fn expire(ctx: &Context, run: &DagRun) -> Result<Action, Error> {
    let Some(ttl) = ttl_seconds(ctx, run).filter(|ttl| *ttl > 0) else {
        return Ok(Action::await_change());
    };
    let finished = run.status.as_ref().and_then(|s| s.finished_at.as_ref()).map(|t| t.0);
    let age = finished.map_or(0, |t| jiff::Timestamp::now().duration_since(t).as_secs().max(0) as u64);
    if age < ttl {
        return Ok(Action::requeue(Duration::from_secs(ttl - age)));
    }
    delete_run(ctx, run).await?;
    Ok(Action::await_change())
}

fn ttl_seconds(ctx: &Context, run: &DagRun) -> Option<u64> {
    let captured = run
        .status
        .as_ref()
        .and_then(|s| s.dag_spec.as_ref())
        .map(|s| s.ttl_seconds_after_finished);
    captured.or_else(|| {
        let namespace = run.namespace().unwrap_or_default();
        ctx.dags
            .get(&ObjectRef::new(&run.spec.dag_ref.name).within(&namespace))
            .map(|d| d.spec.ttl_seconds_after_finished)
    })
}

/// Deletes a finished run; its Jobs and pods follow by garbage collection.
pub async fn delete_run(ctx: &Context, run: &DagRun) -> Result<(), Error> {
    let api: Api<DagRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    match api.delete(&run.name_any(), &DeleteParams::background()).await {
        Ok(_) => {
            ctx.metrics.api_write("run_delete");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
