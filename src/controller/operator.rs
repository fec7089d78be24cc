//! Wiring of the operator process: caches, the two controllers and the HTTP endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource};

use crate::admission::{self, server::WebhookOptions, server::WebhookState};
use crate::api::{Dag, DagRun, labels};

use super::gate::Gate;
use super::metrics::Metrics;
use super::server::Health;
use super::{Context, OperatorConfig, dag_reconciler, run_reconciler};

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Only what the planner reads of a Job is kept in the cache (name, labels, owners, status),
/// which keeps memory flat with tens of thousands of Jobs.
fn strip_job(job: &mut Job) {
    job.spec = None;
    job.metadata.managed_fields = None;
    job.metadata.annotations = None;
}

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    health: Arc<Health>,
    instance: String,
    webhook: Option<WebhookOptions>,
) {
    let jobs_synced = Arc::new(AtomicBool::new(false));
    let (jobs, jobs_writer) = reflector::store::<Job>();
    let job_events = watcher(
        api::<Job>(&client, &config.namespace),
        watcher::Config::default().labels(labels::RUN),
    )
    .default_backoff()
    .inspect(flag_initial_list(jobs_synced.clone()))
    .modify(strip_job)
    .reflect(jobs_writer)
    .touched_objects();
    let runs_synced = Arc::new(AtomicBool::new(false));
    let (runs, runs_writer) = reflector::store::<DagRun>();
    let run_events = watcher(api::<DagRun>(&client, &config.namespace), watcher::Config::default())
        .default_backoff()
        .inspect(flag_initial_list(runs_synced.clone()))
        .reflect(runs_writer)
        .applied_objects();
    let controller_config = ControllerConfig::default().concurrency(config.concurrency);
    let (wake_runs, wake_requests) = futures::channel::mpsc::unbounded();
    let run_controller = Controller::for_stream(run_events, runs)
        .owns_stream(job_events)
        .reconcile_on(wake_requests)
        .with_config(controller_config.clone())
        .shutdown_on_signal();
    let (dag_changed, dag_changes) = futures::channel::mpsc::unbounded();
    let dag_controller = Controller::new(api::<Dag>(&client, &config.namespace), watcher::Config::default())
        .reconcile_on(dag_changes)
        .with_config(controller_config.debounce(Duration::from_millis(500)))
        .shutdown_on_signal();
    let reporter = Reporter {
        controller: "kubedag".into(),
        instance: Some(instance),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        dags: dag_controller.store(),
        jobs: jobs.clone(),
        runs: run_controller.store(),
        recorder: Recorder::new(client, reporter),
        metrics: Arc::new(Metrics::default()),
        dag_changed,
        wake_runs,
        gate: Gate::new(config.caps),
        config,
    });

    tokio::spawn(mark_ready_when_synced(ctx.clone(), health, [runs_synced, jobs_synced]));

    if let Some(options) = webhook {
        let state = WebhookState {
            client: ctx.client.clone(),
            dags: ctx.dags.clone(),
            runs: ctx.runs.clone(),
        };
        tokio::spawn(async move {
            if let Err(err) = admission::server::run(options, state).await {
                tracing::error!(%err, "admission webhook stopped");
            }
        });
    }

    let runs = run_controller
        .run(run_reconciler::reconcile, run_reconciler::error_policy, ctx.clone())
        .for_each(log_outcome);
    let dags = dag_controller
        .run(dag_reconciler::reconcile, dag_reconciler::error_policy, ctx)
        .for_each(log_outcome);
    tracing::info!("kubedag operator started");
    futures::join!(runs, dags);
    tracing::info!("kubedag operator stopped");
}

/// Reconcile errors are logged by the error policies; this reports watch and queue failures.
fn log_outcome<T: std::fmt::Debug, E: std::fmt::Display>(outcome: Result<T, E>) -> futures::future::Ready<()> {
    match outcome {
        Ok(object) => tracing::trace!(?object, "reconciled"),
        Err(err) => tracing::warn!(%err, "controller"),
    }
    futures::future::ready(())
}

/// Sets `flag` once the watcher delivered its first complete list.
fn flag_initial_list<K>(flag: Arc<AtomicBool>) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    move |event| {
        if let Ok(watcher::Event::InitDone) = event {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Ready once the DagRun and Job caches hold their initial lists. Polls flags set by the watch
/// streams: awaiting `Store::wait_until_ready` here would compete with the controller's own wait
/// (its one-shot signal wakes only the last waiter) and could stall the controller.
async fn mark_ready_when_synced(ctx: Arc<Context>, health: Arc<Health>, synced: [Arc<AtomicBool>; 2]) {
    while !synced.iter().all(|f| f.load(Ordering::Relaxed)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    health.mark_ready(ctx);
    tracing::info!("caches synced");
}
