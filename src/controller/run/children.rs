//! The `call` steps' side of a reconcile: the caches' view of the namespace's runs and Dags
//! ([`CacheView`], what [`engine::call::resolve`] reads), and applying a decision's child runs:
//! creating them (deterministic names, owned by the parent, labelled `kubedag.io/parent-run`)
//! and cancelling the parent's own ones.
//!
//! [`engine::call::resolve`]: crate::engine::call::resolve

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use crate::api::{Dag, DagRef, DagRun, DagRunSpec, annotations, labels};
use crate::engine::call::{RunView, Spawn};
use crate::engine::run::Next;

use super::super::error::{is_conflict, is_not_found};
use super::super::{Context, Error, events};

/// Child run creates of one round in flight at once.
const PARALLEL_CREATES: usize = 16;

/// The run cache and the Dag cache of one namespace, plus the Dags a run calls that the cache
/// had not seen yet, read from the API server.
pub struct CacheView<'a> {
    ctx: &'a Context,
    namespace: String,
    fetched: BTreeMap<String, Arc<Dag>>,
}

impl<'a> CacheView<'a> {
    /// The view for reconciling `run`. A Dag one of its call steps names that the cache lacks is
    /// read from the API server, so that a Dag applied just before its callers (or while the
    /// operator's Dag watch is still listing) is found, as the run's own Dag is. Errors: that read
    /// failed.
    pub async fn of(ctx: &'a Context, run: &DagRun) -> Result<CacheView<'a>, Error> {
        let namespace = run.namespace().unwrap_or_default();
        let spec = run.status.as_ref().and_then(|s| s.dag_spec.as_deref());
        let called = spec
            .into_iter()
            .flat_map(|spec| spec.all_steps())
            .filter_map(|s| s.call.as_ref());
        let api: Api<Dag> = Api::namespaced(ctx.client.clone(), &namespace);
        let mut fetched = BTreeMap::new();
        for call in called {
            let cached = ctx.dags.get(&ObjectRef::new(&call.dag).within(&namespace)).is_some();
            if cached || fetched.contains_key(&call.dag) {
                continue;
            }
            if let Some(dag) = api.get_opt(&call.dag).await? {
                fetched.insert(call.dag.clone(), Arc::new(dag));
            }
        }
        Ok(CacheView {
            ctx,
            namespace,
            fetched,
        })
    }
}

impl RunView for CacheView<'_> {
    fn dag(&self, name: &str) -> Option<Arc<Dag>> {
        let cached = self.ctx.dags.get(&ObjectRef::new(name).within(&self.namespace));
        cached.or_else(|| self.fetched.get(name).cloned())
    }

    fn run(&self, name: &str) -> Option<Arc<DagRun>> {
        self.ctx.runs.get(&ObjectRef::new(name).within(&self.namespace))
    }

    fn runs_of(&self, dag: &str) -> Vec<Arc<DagRun>> {
        let namespace = Some(self.namespace.as_str());
        self.ctx
            .runs
            .state()
            .into_iter()
            .filter(|r| r.spec.dag_ref.name == dag && r.metadata.namespace.as_deref() == namespace)
            .collect()
    }
}

/// Creates the child runs `next` spawns and cancels the own children it stops. Returns whether a
/// create was refused (the caller looks again soon: the refusal is usually the webhook seeing an
/// identical run our cache has not shown yet, which the next pass follows instead).
pub async fn apply(ctx: &Context, parent: &DagRun, next: &Next) -> Result<bool, Error> {
    let namespace = parent.namespace().unwrap_or_default();
    let api: Api<DagRun> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in &next.cancel_runs {
        cancel_own(ctx, &api, parent, name).await?;
    }
    let spec = next.status.dag_spec.as_deref();
    let step_name = |i: usize| spec.map(|s| s.step_at(i).name.clone()).unwrap_or_default();
    let creates: Vec<_> = next
        .spawn
        .iter()
        .map(|spawn| create(ctx, &api, parent, spawn, step_name(spawn.step)))
        .collect();
    let results: Vec<Result<bool, Error>> = futures::stream::iter(creates)
        .buffer_unordered(PARALLEL_CREATES)
        .collect()
        .await;
    let mut refused = false;
    for result in results {
        refused |= !result?;
    }
    Ok(refused)
}

/// The child run of `spawn`: Ok(false) when the API server refused it (an event says why).
async fn create(ctx: &Context, api: &Api<DagRun>, parent: &DagRun, spawn: &Spawn, step: String) -> Result<bool, Error> {
    let mut child_labels = BTreeMap::from([
        (labels::DAG.to_string(), spawn.dag.clone()),
        (labels::PARENT_RUN.to_string(), parent.name_any()),
        (labels::PARENT_STEP.to_string(), step.clone()),
    ]);
    if let Some(index) = spawn.index {
        child_labels.insert(labels::ITEM_INDEX.to_string(), index.to_string());
    }
    let child = DagRun {
        metadata: ObjectMeta {
            name: Some(spawn.name.clone()),
            namespace: parent.metadata.namespace.clone(),
            labels: Some(child_labels),
            annotations: Some(BTreeMap::from([(
                annotations::CALL_CHAIN.to_string(),
                spawn.chain.clone(),
            )])),
            owner_references: parent.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: DagRunSpec {
            dag_ref: DagRef {
                name: spawn.dag.clone(),
            },
            params: spawn.params.clone(),
            ..Default::default()
        },
        status: None,
    };
    match api.create(&PostParams::default(), &child).await {
        Ok(_) => {
            ctx.metrics.api_write("run_create");
            Ok(true)
        }
        Err(err) if is_conflict(&err) => Ok(true),
        Err(kube::Error::Api(status)) => {
            ctx.metrics.api_write("run_create_refused");
            let message = format!("child run {}: {}", spawn.name, status.message);
            events::step_refused(ctx, parent, &step, &message, false);
            Ok(false)
        }
        Err(err) => Err(err.into()),
    }
}

/// Sets `spec.cancel` on child `name` if it is this parent's own and still running.
async fn cancel_own(ctx: &Context, api: &Api<DagRun>, parent: &DagRun, name: &str) -> Result<(), Error> {
    let namespace = parent.namespace().unwrap_or_default();
    let Some(child) = ctx.runs.get(&ObjectRef::new(name).within(&namespace)) else {
        return Ok(());
    };
    let own = child.labels().get(labels::PARENT_RUN) == Some(&parent.name_any())
        && child
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == parent.metadata.uid.as_ref());
    let finished = child.status.as_ref().is_some_and(|s| s.phase.is_terminal());
    if !own || finished || child.spec.cancel {
        return Ok(());
    }
    let patch = serde_json::json!({"spec": {"cancel": true}});
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            ctx.metrics.api_write("run_cancel");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
