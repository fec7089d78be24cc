//! The DagRun reconciler, read top to bottom:
//!
//! 1. observe: the run (from the cache), its step Jobs ([`observe`]), and whatever fact the state
//!    machine asks for (the Dag, the duplicate claim, queue admission, the workspace claim's
//!    create: [`super::workspace`]);
//! 2. decide: [`engine::run::next`], pure, makes every phase change;
//! 3. apply: delete and create the Jobs it names ([`apply`]); refused creates go back into the
//!    state machine ([`engine::run::after_refusals`]);
//! 4. write: the status, once, through the status subresource ([`super::status`]);
//! 5. react: events, then the idempotent reactions the new status implies ([`react`]); a run
//!    applied without its `kubedag.io/dag` label gets it ([`label`]).
//!
//! Two controllers share this reconcile ([`Lane`]): one for runs that wait to start, one for
//! started and finished runs, so a burst of new runs never delays the next step of a running one.

mod apply;
mod children;
mod observe;
mod react;

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::api::{Dag, DagRun, RunPhase};
use crate::engine::plan::JobState;
use crate::engine::run::{self as machine, Decision, Need, Next, Requeue, RunFacts};

use super::error::is_conflict;
use super::{Context, Error, claim, events, status, workspace};

pub use react::delete_run;

/// Retry interval while the Job cache is still loading its first list.
const JOBS_NOT_SYNCED_RETRY: Duration = Duration::from_millis(500);
/// Safety net for a run skipped because the cache had not yet seen our own last write.
const STALE_RECHECK: Duration = Duration::from_secs(5);
/// Look again this soon after a child run create was refused.
const CHILD_REFUSED_RETRY: Duration = Duration::from_secs(2);
/// Retry interval after a failed reconcile (an API error, not a refusal: those are decided by
/// the state machine, with their own backoff).
const ERROR_RETRY: Duration = Duration::from_secs(5);

/// Which of the two run controllers owns a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Pending and Queued runs.
    Start,
    /// Running and finished runs.
    Advance,
}

pub fn lane(run: &DagRun) -> Lane {
    match run.phase() {
        RunPhase::Pending | RunPhase::Queued => Lane::Start,
        _ => Lane::Advance,
    }
}

/// The start controller's reconcile. Each lane skips runs of the other (they reach it through
/// requeues and Job events). A run changes lane only by its owner's phase write, the last API call
/// of that reconcile, so the two controllers never work on one run at the same time (and if they
/// briefly did, invariants 1, 2 and 5 would keep it safe).
pub async fn reconcile_start_lane(run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_in(Lane::Start, run, ctx).await
}

/// The advance controller's reconcile.
pub async fn reconcile_advance_lane(run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_in(Lane::Advance, run, ctx).await
}

async fn reconcile_in(owner: Lane, run: Arc<DagRun>, ctx: Arc<Context>) -> Result<Action, Error> {
    if lane(&run) != owner {
        return Ok(Action::await_change());
    }
    reconcile(&run, &ctx).await
}

pub fn error_policy(run: Arc<DagRun>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error("dagrun", err.kind());
    if matches!(err, Error::Kube(e) if is_conflict(e)) {
        // Our cached copy was stale; retry promptly once the watch delivers the newer object.
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(run = %run.name_any(), namespace = ?run.namespace(), %err, "reconcile failed");
    Action::requeue(ERROR_RETRY)
}

async fn reconcile(run: &DagRun, ctx: &Context) -> Result<Action, Error> {
    ctx.metrics.reconcile("dagrun");
    if run.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !ctx.jobs_synced() {
        return Ok(Action::requeue(JOBS_NOT_SYNCED_RETRY));
    }
    if ctx
        .own_writes
        .is_stale(&run.uid().unwrap_or_default(), run.metadata.resource_version.as_deref())
    {
        // Our own newer write is on its way through the watch and will trigger the next round;
        // the requeue is only a safety net should that event never come.
        ctx.metrics.stale_skip();
        return Ok(Action::requeue(STALE_RECHECK));
    }

    // 1-2. observe and decide
    let observed = observe::step_jobs(ctx, run).await;
    let lookup = |name: &str| observed.get(name).cloned().unwrap_or(JobState::Missing);
    let dag_found = OnceLock::new();
    let view = children::CacheView::of(ctx, run).await?;
    let mut facts = RunFacts {
        run,
        now: events::now(),
        dag: None,
        claim: None,
        admission: None,
        workspace: None,
        jobs: &lookup,
        launch_budget: None,
        missing_job_grace_seconds: ctx.config.missing_job_grace_seconds,
        runs: &view,
    };
    let mut next = loop {
        match decide(ctx, &mut facts) {
            Decision::Done(next) => break *next,
            Decision::Need(Need::Dag) => {
                let _ = dag_found.set(find_dag(ctx, run).await?);
                facts.dag = Some(dag_found.get().and_then(Option::as_ref));
            }
            Decision::Need(Need::Claim {
                dag,
                policy,
                param_hash,
            }) => {
                facts.claim = Some(claim::acquire(ctx, run, &dag, policy, &param_hash).await?);
            }
            Decision::Need(Need::Admission { max_active_runs }) => {
                facts.admission = Some(ctx.gate.admit_run(&ctx.runs, run, max_active_runs));
            }
            Decision::Need(Need::Workspace { claim, template }) => {
                facts.workspace = Some(workspace::ensure(ctx, run, &claim, &template).await?);
            }
        }
    };

    // 3. apply
    apply::jobs(ctx, &facts, &mut next).await?;
    let child_refused = children::apply(ctx, run, &next).await?;
    // 4. write
    let old_phase = run.status.as_ref().map(|s| s.phase);
    if status::write(ctx, run, &next.status).await? {
        if old_phase != Some(next.status.phase) {
            ctx.metrics.run_transition(next.status.phase);
        }
        react::publish_events(ctx, run, &next.events);
    }
    // 5. react
    react::apply(ctx, run, &next).await?;
    if child_refused {
        return Ok(Action::requeue(CHILD_REFUSED_RETRY));
    }
    Ok(action(&next))
}

/// One call of the state machine, under the gate's lock when it may launch Jobs, so concurrent
/// reconciles share the operator-wide Job cap.
fn decide(ctx: &Context, facts: &mut RunFacts<'_>) -> Decision {
    let namespace = facts.run.namespace().unwrap_or_default();
    ctx.gate.with_job_budget(&ctx.jobs, |budget| {
        facts.launch_budget = budget;
        let decision = machine::next(facts);
        let launched = match &decision {
            Decision::Done(next) => next
                .launch
                .iter()
                .map(|l| (namespace.clone(), l.job_name.clone()))
                .collect(),
            Decision::Need(_) => Vec::new(),
        };
        (decision, launched)
    })
}

fn action(next: &Next) -> Action {
    match next.requeue {
        Requeue::After(secs) => Action::requeue(Duration::from_secs(secs)),
        Requeue::AfterMillis(ms) => Action::requeue(Duration::from_millis(ms)),
        Requeue::OnChange => Action::await_change(),
    }
}

/// The Dag from the cache, or from the API server when the cache has not seen it yet (a Dag and
/// its runs applied together must not fail the runs).
async fn find_dag(ctx: &Context, run: &DagRun) -> Result<Option<Dag>, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let name = &run.spec.dag_ref.name;
    if let Some(dag) = ctx.dags.get(&ObjectRef::new(name).within(&namespace)) {
        return Ok(Some((*dag).clone()));
    }
    let api: Api<Dag> = Api::namespaced(ctx.client.clone(), &namespace);
    Ok(api.get_opt(name).await?)
}
