//! Wiring of the operator process: caches, the two controllers and the HTTP endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::runtime::controller::Config as ControllerConfig;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};

use crate::admission::{self, server::WebhookOptions, server::WebhookState};
use crate::api::{Dag, DagRun, DagTrigger, RunPhase, labels};

use crate::controller::run::{self, Lane};
use crate::controller::shared_specs::SharedSpecs;
use crate::controller::step_pods::StepPods;
use crate::controller::trigger::{self, TriggerContext};
use crate::controller::warnings::{self, WarningEvents};
use crate::controller::watched::{WatchedJob, WatchedPod};
use crate::controller::{Completions, Context, Gate, Metrics, OperatorConfig, dag_reconciler};

use super::server::Health;

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Run events buffered per subscriber of the shared DagRun cache (the watch waits when it is full).
const SHARED_RUN_EVENTS: usize = 1024;

/// The DagRun cache drops what no reconcile reads and what can dwarf the run itself: managed
/// fields and kubectl's copy of the applied manifest. Status writes go through the status
/// subresource, which ignores metadata, so nothing is lost by writing back a stripped copy.
fn strip_run(run: &mut DagRun) {
    run.metadata.managed_fields = None;
    if let Some(annotations) = run.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    health: Arc<Health>,
    instance: String,
    webhook: Option<WebhookOptions>,
) {
    let jobs_synced = Arc::new(AtomicBool::new(false));
    let completions = Arc::new(Completions::default());
    let (jobs, jobs_writer) = reflector::store::<WatchedJob>();
    // Only what the planner reads of a Job is decoded and cached (name, labels, owners, creation,
    // status), which keeps memory flat with tens of thousands of Jobs.
    let job_events = watcher(
        api::<WatchedJob>(&client, &config.namespace),
        watcher::Config::default().labels(labels::RUN),
    )
    .default_backoff()
    .inspect(flag_list_complete(jobs_synced.clone()))
    .inspect({
        let completions = completions.clone();
        move |event| {
            if let Ok(event) = event {
                completions.observe(event);
            }
        }
    })
    .reflect(jobs_writer)
    .touched_objects();
    // A step whose pod does not start is looked at again when its pod or a Warning about it
    // changes (`engine::pod_start` asks for no periodic re-check): these wake the advance lane.
    let (wake_started, wake_started_requests) = futures::channel::mpsc::unbounded();
    let pods = Arc::new(StepPods::default());
    let pod_watch = watcher(
        api::<WatchedPod>(&client, &config.namespace),
        watcher::Config::default().labels(labels::RUN),
    )
    .default_backoff()
    .for_each({
        let (pods, wake) = (pods.clone(), wake_started.clone());
        move |event| {
            match event {
                Ok(event) => {
                    if let Some(run) = pods.observe(&event) {
                        let _ = wake.unbounded_send(run);
                    }
                }
                Err(err) => tracing::warn!(%err, "step pod watch"),
            }
            futures::future::ready(())
        }
    });
    tokio::spawn(pod_watch);
    let warnings = Arc::new(WarningEvents::default());
    let warning_watch = watcher(
        api::<Event>(&client, &config.namespace),
        watcher::Config::default().fields("type=Warning"),
    )
    .default_backoff()
    .for_each({
        let (warnings, jobs, pods) = (warnings.clone(), jobs.clone(), pods.clone());
        move |event| {
            match event {
                Ok(event) => {
                    let object = warnings.observe(&event);
                    for run in object.iter().flat_map(|o| warnings::runs_concerned(o, &jobs, &pods)) {
                        let _ = wake_started.unbounded_send(run);
                    }
                }
                Err(err) => tracing::warn!(%err, "Warning Event watch"),
            }
            futures::future::ready(())
        }
    });
    tokio::spawn(warning_watch);
    let (dag_changed, dag_changes) = futures::channel::mpsc::unbounded();
    let runs_synced = Arc::new(AtomicBool::new(false));
    let (runs, runs_writer) = reflector::store_shared::<DagRun>(SHARED_RUN_EVENTS);
    let subscribe = || runs_writer.subscribe().expect("a shared store has subscribers");
    let (starting_events, started_events, child_events, trigger_run_events) =
        (subscribe(), subscribe(), subscribe(), subscribe());
    let run_watch = watcher(api::<DagRun>(&client, &config.namespace), watcher::Config::default())
        .default_backoff()
        .inspect(flag_list_complete(runs_synced.clone()))
        .modify({
            let specs = SharedSpecs::default();
            move |run| {
                strip_run(run);
                specs.share(run);
            }
        })
        .reflect_shared(runs_writer)
        .for_each({
            let dag_changed = dag_changed.clone();
            move |event| {
                match event {
                    // A deleted running run frees a slot without ending: its Dag's reconcile wakes
                    // the queue (a run that ends wakes its successor itself).
                    Ok(watcher::Event::Delete(run)) if run.phase() == RunPhase::Running => {
                        let dag = ObjectRef::new(&run.spec.dag_ref.name).within(&run.namespace().unwrap_or_default());
                        let _ = dag_changed.unbounded_send(dag);
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, "DagRun watch"),
                }
                futures::future::ready(())
            }
        });
    let (wake_runs, wake_requests) = futures::channel::mpsc::unbounded();
    // Two controllers share the DagRun cache: one starts new runs, one advances started ones, each
    // with its own concurrency, so a burst of new runs cannot delay the next step of running ones.
    let in_lane = |lane: Lane| move |run: &Arc<DagRun>| futures::future::ready(run::lane(run) == lane);
    let start_controller = Controller::for_shared_stream(starting_events.filter(in_lane(Lane::Start)), runs.clone())
        .reconcile_on(wake_requests)
        .with_config(ControllerConfig::default().concurrency(config.start_concurrency()))
        .shutdown_on_signal();
    let controller_config = ControllerConfig::default().concurrency(config.concurrency);
    let run_controller = Controller::for_shared_stream(started_events.filter(in_lane(Lane::Advance)), runs.clone())
        .owns_stream(job_events)
        .reconcile_on(wake_started_requests)
        // A call step's own child runs (controller-owned by it) wake the parent.
        .owns_shared_stream(child_events)
        .with_config(controller_config.clone())
        .shutdown_on_signal();
    let dag_controller = Controller::new(api::<Dag>(&client, &config.namespace), watcher::Config::default())
        .reconcile_on(dag_changes)
        .with_config(controller_config.debounce(Duration::from_millis(500)))
        .shutdown_on_signal();
    // Triggers are looked at again when one of their runs changes (Forbid waits for it to end).
    let trigger_controller = Controller::new(
        api::<DagTrigger>(&client, &config.namespace),
        watcher::Config::default(),
    )
    .watches_shared_stream(trigger_run_events, |run: Arc<DagRun>| {
        let namespace = run.namespace().unwrap_or_default();
        run.labels()
            .get(labels::TRIGGER)
            .map(|name| ObjectRef::<DagTrigger>::new(name).within(&namespace))
    })
    // ... and when their watcher's Deployment or report changes.
    .owns(
        api::<Deployment>(&client, &config.namespace),
        watcher::Config::default().labels(&format!("app.kubernetes.io/component={}", trigger::objects::COMPONENT)),
    )
    .owns(
        api::<ConfigMap>(&client, &config.namespace),
        watcher::Config::default().labels(trigger::objects::REPORT_LABEL),
    )
    .with_config(ControllerConfig::default().concurrency(4))
    .shutdown_on_signal();
    let reporter = Reporter {
        controller: "kubedag".into(),
        instance: Some(instance),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        dags: dag_controller.store(),
        jobs: jobs.clone(),
        runs,
        recorder: Recorder::new(client, reporter),
        metrics: Arc::new(Metrics::default()),
        dag_changed,
        wake_runs,
        gate: Gate::new(config.caps),
        own_writes: Default::default(),
        released_claims: Default::default(),
        completions,
        jobs_synced: jobs_synced.clone(),
        pods,
        warnings,
        config,
    });

    let trigger_ctx = Arc::new(TriggerContext {
        client: ctx.client.clone(),
        runs: ctx.runs.clone(),
        dags: ctx.dags.clone(),
        runs_synced: runs_synced.clone(),
        watcher: ctx.config.watcher.clone(),
    });
    tokio::spawn(mark_ready_when_synced(
        ctx.clone(),
        health,
        [runs_synced, jobs_synced.clone()],
    ));

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

    let starting = start_controller
        .run(run::reconcile_start_lane, run::error_policy, ctx.clone())
        .for_each(log_outcome);
    let started = run_controller
        .run(run::reconcile_advance_lane, run::error_policy, ctx.clone())
        .for_each(log_outcome);
    // Both run controllers wait for the shared DagRun cache before their first reconcile, and
    // kube-runtime's readiness signal wakes only its last waiter: a controller left waiting would
    // stop draining its share of the cache's events, and the full buffer would stall the DagRun
    // watch for everyone. So this task is the one waiter, and the controllers start once it is
    // ready.
    let runs_cache = ctx.runs.clone();
    let run_lanes = async move {
        if runs_cache.wait_until_ready().await.is_ok() {
            futures::future::join(starting, started).await;
        }
    };
    let dags = dag_controller
        .run(dag_reconciler::reconcile, dag_reconciler::error_policy, ctx)
        .for_each(log_outcome);
    // Polled from the start (not after the run cache is ready): it drains its share of the
    // shared DagRun cache's events; its reconciles wait for the cache themselves.
    let triggers = trigger_controller
        .run(trigger::reconcile, trigger::error_policy, trigger_ctx)
        .for_each(log_outcome);
    tracing::info!("kubedag operator started");
    tokio::select! {
        _ = futures::future::join3(run_lanes, dags, triggers) => {}
        () = run_watch => tracing::error!("the DagRun watch ended"),
    }
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

/// Keeps `flag` set while the cache is current: cleared when the watcher starts a (re)list,
/// set when the list is complete. kube-runtime fills the cache only at the end of a list, while
/// the list's objects already trigger reconciles one by one.
fn flag_list_complete<K>(flag: Arc<AtomicBool>) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) {
    move |event| match event {
        Ok(watcher::Event::Init) => flag.store(false, Ordering::Relaxed),
        Ok(watcher::Event::InitDone) => flag.store(true, Ordering::Relaxed),
        _ => {}
    }
}

/// Ready once the DagRun and Job caches hold their initial lists. Polls flags set by the watch
/// streams: awaiting `Store::wait_until_ready` here would compete with the controller's own wait
/// (its one-shot signal wakes only the last waiter) and could stall the controller.
async fn mark_ready_when_synced(ctx: Arc<Context>, health: Arc<Health>, synced: [Arc<AtomicBool>; 2]) {
    wait_for(&synced).await;
    health.mark_ready(ctx);
    tracing::info!("caches synced");
}

/// Returns once every flag is set.
async fn wait_for(flags: &[Arc<AtomicBool>]) {
    while !flags.iter().all(|f| f.load(Ordering::Relaxed)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
