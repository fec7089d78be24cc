//! The operator's side of a directory or bucket trigger's watcher: apply its objects
//! ([`super::objects`]) by server-side apply when they changed, and observe its pod, the
//! kubelet's mount failures and the watcher's report ([`super::watched::WatcherFacts`]).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::DagTrigger;
use crate::controller::{Error, WatcherSettings};
use crate::watch::stats::WatcherStats;
use crate::watch::{stats_name, watcher_name};

use super::objects::{self, APPLIED_HASH, WatcherObjects};
use super::watched::{PodFacts, WatcherFacts};

/// Field manager of the operator's applies.
const FIELD_MANAGER: &str = "kubedag";

/// Applies the watcher objects of `trigger` unless its Deployment already carries their hash.
pub async fn ensure(
    client: &Client,
    trigger: &DagTrigger,
    settings: &WatcherSettings,
    image: &str,
) -> Result<(), Error> {
    let namespace = trigger.namespace().unwrap_or_default();
    let desired = objects::desired(trigger, settings, image);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let current = deployments.get_opt(&watcher_name(&trigger.name_any())).await?;
    let applied = current
        .as_ref()
        .and_then(|d| d.annotations().get(APPLIED_HASH).cloned());
    if applied.as_deref() == desired.deployment["metadata"]["annotations"][APPLIED_HASH].as_str() {
        return Ok(());
    }
    let WatcherObjects {
        config_maps,
        service_account,
        role,
        role_binding,
        deployment,
    } = desired;
    for map in &config_maps {
        apply::<ConfigMap>(client, &namespace, map).await?;
    }
    apply::<ServiceAccount>(client, &namespace, &service_account).await?;
    apply::<Role>(client, &namespace, &role).await?;
    apply::<RoleBinding>(client, &namespace, &role_binding).await?;
    apply::<Deployment>(client, &namespace, &deployment).await?;
    tracing::info!(trigger = %trigger.name_any(), "watcher objects applied");
    Ok(())
}

async fn apply<K>(client: &Client, namespace: &str, object: &Value) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(name, &params, &Patch::Apply(object))
        .await?;
    Ok(())
}

/// What the watcher of `trigger` looks like now.
pub async fn observe(client: &Client, trigger: &DagTrigger) -> Result<WatcherFacts, Error> {
    let namespace = trigger.namespace().unwrap_or_default();
    let name = trigger.name_any();
    let stats = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .get_opt(&stats_name(&name))
        .await?
        .and_then(|c| c.data)
        .map(|d| WatcherStats::from_data(&d))
        .unwrap_or_default();
    let deployment = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get_opt(&watcher_name(&name))
        .await?;
    let ready = deployment.as_ref().is_some_and(current_pod_ready);
    let pods = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(&objects::pod_selector(&name)))
        .await?;
    let newest = pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let mut facts = WatcherFacts {
        ready,
        pod: newest.as_ref().map(pod_facts),
        mount_failure: None,
        stats,
    };
    if let (false, Some(pod)) = (ready, &newest) {
        facts.mount_failure = mount_failure(client, &namespace, &pod.name_any()).await?;
    }
    Ok(facts)
}

/// The Deployment has seen its latest spec and has its one pod of it ready.
fn current_pod_ready(d: &Deployment) -> bool {
    let Some(status) = &d.status else { return false };
    status.observed_generation >= d.metadata.generation
        && status.updated_replicas.unwrap_or(0) >= 1
        && status.ready_replicas.unwrap_or(0) >= 1
}

fn pod_facts(pod: &Pod) -> PodFacts {
    let status = pod.status.clone().unwrap_or_default();
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.message.clone());
    let container = status.container_statuses.iter().flatten().next();
    let waiting = container
        .and_then(|c| c.state.as_ref()?.waiting.clone())
        .map(|w| (w.reason.unwrap_or_default(), w.message.unwrap_or_default()));
    let last_termination = container
        .and_then(|c| c.last_state.as_ref()?.terminated.clone())
        .map(|t| t.message.unwrap_or_else(|| format!("exit code {}", t.exit_code)));
    PodFacts {
        name: pod.name_any(),
        phase: status.phase.unwrap_or_else(|| "Pending".into()),
        unschedulable,
        waiting,
        last_termination,
    }
}

/// The kubelet's newest `FailedMount` message for pod `pod`.
async fn mount_failure(client: &Client, namespace: &str, pod: &str) -> Result<Option<String>, Error> {
    let events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().fields(&format!("involvedObject.name={pod},reason=FailedMount")))
        .await?;
    Ok(events
        .items
        .into_iter()
        .max_by_key(|e| e.last_timestamp.clone().or(e.first_timestamp.clone()).map(|t| t.0))
        .and_then(|e| e.message))
}
