//! The `DagTrigger` reconciler: observe (the trigger, its runs from the shared DagRun cache, its
//! Dag) -> decide (`engine::schedule` for ticks) -> apply (create the tick's run under its
//! deterministic name, cancel runs under `Replace`) -> write status.
//!
//! Invariants: level-triggered and idempotent; the tick acted on is recorded in
//! `status.lastScheduleTime`, written with the trigger's resourceVersion as precondition, so a
//! stale cache or a restart can at worst re-create a run that exists (AlreadyExists) and never
//! counts it twice; a tick whose run was created but whose status write was lost (the operator
//! stopped in between) is counted as submitted on the next pass
//! (`engine::schedule::ticks_with_runs`). Directory and bucket sources submit from their watcher (`kubedag
//! watch-trigger`, see `crate::watch`), a Deployment per trigger this reconciler applies
//! ([`objects`]) and observes; it copies the watcher's report into `status` ([`watched`]).

mod deploy;
pub mod objects;
mod schedule;
mod status;
pub mod watched;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use crate::api::{Dag, DagRun, DagTrigger, labels};

use super::{Error, WatcherSettings};

pub use status::TriggerOutcome;

/// What the trigger reconciler shares.
pub struct TriggerContext {
    pub client: Client,
    /// The shared DagRun cache (the runs of a trigger carry label `kubedag.io/trigger`).
    pub runs: Store<DagRun>,
    pub dags: Store<Dag>,
    /// Set while the DagRun cache holds its complete list (until then a trigger's runs are unknown).
    pub runs_synced: Arc<AtomicBool>,
    /// How directory and bucket triggers' watchers run.
    pub watcher: WatcherSettings,
}

/// Longest wait before a trigger is looked at again (status freshness, clock jumps).
const MAX_REQUEUE: Duration = Duration::from_secs(300);

/// Reconciles one trigger: acts on a due tick and writes status.
pub async fn reconcile(trigger: Arc<DagTrigger>, ctx: Arc<TriggerContext>) -> Result<Action, Error> {
    if !ctx.runs_synced.load(Ordering::Relaxed) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let namespace = trigger.namespace().unwrap_or_default();
    let runs = runs_of(&ctx.runs, &namespace, &trigger.name_any());
    let dag_exists = ctx
        .dags
        .state()
        .iter()
        .any(|d| d.namespace().as_deref() == Some(namespace.as_str()) && d.name_any() == trigger.spec.dag_ref.name);
    let outcome = if trigger.spec.schedule.is_some() {
        schedule::act(&ctx.client, &trigger, &runs, dag_exists).await?
    } else {
        watch(&ctx, &trigger, dag_exists).await?
    };
    let requeue = outcome.requeue.min(MAX_REQUEUE);
    status::write(&ctx.client, &trigger, &runs, outcome).await?;
    Ok(Action::requeue(requeue))
}

/// A directory or bucket trigger: keep its watcher in step with the spec, then report it.
async fn watch(ctx: &TriggerContext, trigger: &DagTrigger, dag_exists: bool) -> Result<TriggerOutcome, Error> {
    let image = ctx.watcher.image.as_deref();
    if let Some(image) = image {
        deploy::ensure(&ctx.client, trigger, &ctx.watcher, image).await?;
    }
    let facts = match image {
        Some(_) => Some(deploy::observe(&ctx.client, trigger).await?),
        None => None,
    };
    Ok(watched::outcome(trigger, dag_exists, image, facts.as_ref()))
}

/// Conflicts (a stale cache) retry at once; other errors after a pause.
pub fn error_policy(trigger: Arc<DagTrigger>, err: &Error, _ctx: Arc<TriggerContext>) -> Action {
    if matches!(err, Error::Kube(kube::Error::Api(e)) if e.code == 409) {
        return Action::requeue(Duration::from_millis(500));
    }
    tracing::warn!(trigger = %trigger.name_any(), %err, "trigger reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// The runs of trigger `name` in `namespace`, from the cache.
fn runs_of(store: &Store<DagRun>, namespace: &str, name: &str) -> Vec<Arc<DagRun>> {
    store
        .state()
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == Some(namespace)
                && r.labels().get(labels::TRIGGER).map(String::as_str) == Some(name)
        })
        .collect()
}
