//! The Dag reconciler: the `Valid` condition (with the validation message naming the step), the
//! step count, and how many runs of the Dag are active or queued. It also wakes queued runs into
//! the slots `maxActiveRuns` leaves free: a run's end wakes its successor itself, but a raised
//! limit or a deleted running run (the run watch asks for this reconcile) ends no run.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};

use crate::api::{Dag, DagRun, DagStatus, RunPhase};
use crate::engine::validate;

use super::error::is_conflict;
use super::{Context, Error, events, gate, run};

const RECOUNT: Duration = Duration::from_secs(30);

pub async fn reconcile(dag: Arc<Dag>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.metrics.reconcile("dag");
    if dag.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = dag.namespace().unwrap_or_default();
    let name = dag.name_any();
    let runs: Vec<_> = ctx
        .runs
        .state()
        .into_iter()
        .filter(|r| r.spec.dag_ref.name == name && r.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let count = |phase: RunPhase| {
        runs.iter()
            .filter(|r| r.status.as_ref().map(|s| s.phase) == Some(phase))
            .count() as u32
    };
    let (active, queued) = (count(RunPhase::Running), count(RunPhase::Queued));
    if queued > 0 {
        for waiting in gate::free_slots_of_dag(&runs, dag.spec.max_active_runs, active as usize) {
            // The receiver lives as long as the operator; a closed channel only happens at shutdown.
            let _ = ctx.wake_runs.unbounded_send(waiting);
        }
    }
    enforce_history_limit(&ctx, &runs).await?;
    let old = dag.status.clone().unwrap_or_default();
    let valid = validity(&dag, old.conditions.iter().find(|c| c.type_ == "Valid"));
    let status = DagStatus {
        observed_generation: dag.metadata.generation,
        step_count: dag.spec.steps.len() as u32,
        active_runs: active,
        queued_runs: queued,
        conditions: vec![valid],
    };
    if status != old {
        let mut updated = (*dag).clone();
        updated.status = Some(status);
        updated.metadata.managed_fields = None;
        let api: Api<Dag> = Api::namespaced(ctx.client.clone(), &namespace);
        api.replace_status(&name, &PostParams::default(), &updated).await?;
        ctx.metrics.api_write("dag_status");
    }
    // Triggers arrive right after a run's status write, possibly before the cache shows it; the
    // periodic pass makes counts and the history limit converge regardless.
    Ok(Action::requeue(RECOUNT))
}

/// Deletes the oldest finished runs beyond the operator's `--history-limit`.
async fn enforce_history_limit(ctx: &Context, runs: &[Arc<DagRun>]) -> Result<(), Error> {
    let limit = ctx.config.history_limit;
    if limit == 0 {
        return Ok(());
    }
    let mut done: Vec<&Arc<DagRun>> = runs
        .iter()
        .filter(|r| r.status.as_ref().is_some_and(|s| s.phase.is_terminal()) && r.metadata.deletion_timestamp.is_none())
        .collect();
    if done.len() <= limit {
        return Ok(());
    }
    done.sort_by_key(|r| r.status.as_ref().and_then(|s| s.finished_at.as_ref()).map(|t| t.0));
    for run in &done[..done.len() - limit] {
        run::delete_run(ctx, run).await?;
    }
    Ok(())
}

pub fn error_policy(dag: Arc<Dag>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("dag", err.kind());
    if matches!(err, Error::Kube(e) if is_conflict(e)) {
        return Action::requeue(Duration::from_millis(500));
    }
    tracing::warn!(dag = %dag.name_any(), %err, "dag reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The `Valid` condition; keeps the previous transition time when nothing changed.
fn validity(dag: &Dag, previous: Option<&Condition>) -> Condition {
    let (status, reason, message) = match validate::validate_dag(&dag.spec) {
        Ok(()) => ("True", "Valid", "the Dag passed validation".to_string()),
        Err(errors) => ("False", "Invalid", errors.to_string()),
    };
    let unchanged = previous.filter(|c| c.status == status && c.message == message);
    Condition {
        type_: "Valid".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: dag.metadata.generation,
        last_transition_time: unchanged
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(events::now),
    }
}
