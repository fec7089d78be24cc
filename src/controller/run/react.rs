//! After the status is written: the decision's events, then its reactions. Reactions are
//! idempotent and re-derived by the state machine on every pass of a finished run, so one that
//! fails here is redone on the next reconcile instead of being lost.

use kube::api::DeleteParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::api::DagRun;
use crate::engine::run::{Next, RunEvent};

use super::super::error::is_not_found;
use super::super::{Context, Error, claim, events};

pub fn publish_events(ctx: &Context, run: &DagRun, published: &[RunEvent]) {
    for event in published {
        match event {
            RunEvent::Started { note } => events::run_started(ctx, run, note.clone()),
            RunEvent::StepStarted { step, attempt, job } => events::step_started(ctx, run, step, *attempt, job),
            RunEvent::StepEnded {
                step,
                job,
                phase,
                message,
            } => events::step_ended(ctx, run, step, job.as_deref(), *phase, message.as_deref()),
            RunEvent::StepRefused {
                step,
                message,
                permanent,
            } => events::step_refused(ctx, run, step, message, *permanent),
            RunEvent::Ended { phase, reason, message } => events::run_ended(ctx, run, *phase, reason, message),
        }
    }
}

/// Carries out `next.reactions`.
pub async fn apply(ctx: &Context, run: &DagRun, next: &Next) -> Result<(), Error> {
    let reactions = &next.reactions;
    if reactions.recount_dag {
        let dag = ObjectRef::new(&run.spec.dag_ref.name).within(&run.namespace().unwrap_or_default());
        // The receiver lives as long as the operator; a closed channel only happens at shutdown.
        let _ = ctx.dag_changed.unbounded_send(dag);
    }
    if next.status.phase.is_terminal() {
        ctx.gate.note_finished(run);
    }
    if reactions.wake_waiting > 0 && ctx.gate.may_queue(next.status.dag_spec.as_deref()) {
        for waiting in ctx.gate.next_in_line(&ctx.runs, run, reactions.wake_waiting) {
            let _ = ctx.wake_runs.unbounded_send(waiting);
        }
    }
    if let Some((dag, hash)) = &reactions.release_claim {
        let uid = run.uid().unwrap_or_default();
        if !ctx.released_claims.contains(&uid) {
            claim::release(ctx, run, dag, hash).await?;
            ctx.released_claims.insert(uid);
        }
    }
    if reactions.delete_run {
        delete_run(ctx, run).await?;
    }
    Ok(())
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
