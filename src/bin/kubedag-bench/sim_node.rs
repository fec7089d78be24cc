//! The simulated node: a `Node` object kept Ready through its Lease and status heartbeat (every
//! 10 s), never backed by a kubelet, tainted `kubedag.io/simulated=true:NoSchedule` so no other
//! pod lands on it, and a watcher that does the kubelet's part for the pods bound to it: marks each
//! one `Succeeded` (container terminated, exit code 0) and finishes their deletion.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::Res;
use crate::clock::{log, rfc3339};

/// The label (and taint key) that marks the simulated node; benchmark steps select it.
pub const SIM_LABEL: &str = "kubedag.io/simulated";
/// The field manager of the driver's server-side applies.
const FIELD_MANAGER: &str = "kubedag-bench";

/// What the simulated kubelet did, counted since it started.
#[derive(Default)]
pub struct SimStats {
    /// Pods marked Succeeded.
    pub completed: AtomicU64,
    /// Pods whose deletion it finished (grace 0).
    pub force_deleted: AtomicU64,
    /// Pods it failed to complete after retries.
    pub errors: AtomicU64,
}

/// The running simulated node: its heartbeat and pod completer tasks.
pub struct Sim {
    pub stats: Arc<SimStats>,
    node: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The node status a kubelet would report: Ready, no pressure, room for a million pods.
fn node_status() -> Value {
    let now = rfc3339(false);
    let cond = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "simulated by kubedag-bench",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let resources = json!({"cpu": "1000", "memory": "4Ti", "pods": "1000000", "ephemeral-storage": "10Ti"});
    json!({"status": {
        "capacity": resources, "allocatable": resources,
        "conditions": [
            cond("Ready", "True", "KubeletReady"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
        ],
        "nodeInfo": {"kubeletVersion": "v1.35.4", "kubeProxyVersion": "", "operatingSystem": "linux",
                     "architecture": "amd64", "containerRuntimeVersion": "simulated://kubedag-bench",
                     "osImage": "simulated", "kernelVersion": "simulated", "machineID": "", "systemUUID": "",
                     "bootID": ""},
    }})
}

/// Creates (or re-applies) the simulated Node object.
async fn apply_node(client: &Client, node: &str) -> Res<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let object = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node, "labels": {
            "kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            SIM_LABEL: "true"}},
        "spec": {"taints": [{"key": SIM_LABEL, "value": "true", "effect": "NoSchedule"}]},
    });
    nodes
        .patch(node, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(object))
        .await?;
    Ok(())
}

/// Renews the node's Ready condition and its Lease (re-creating the node if it was deleted).
async fn heartbeat(client: &Client, node: &str) -> Res<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let status = Patch::Merge(node_status());
    match nodes.patch_status(node, &PatchParams::default(), &status).await {
        Err(kube::Error::Api(e)) if e.code == 404 => {
            // Someone deleted it: bring it back, or its pods would never complete.
            log(format!("simulated node {node} was deleted; re-creating it"));
            apply_node(client, node).await?;
            nodes.patch_status(node, &PatchParams::default(), &status).await?;
        }
        other => {
            other?;
        }
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": rfc3339(true)},
    });
    leases
        .patch(node, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(lease))
        .await?;
    Ok(())
}

impl Sim {
    /// Creates node `node` (Ready, tainted), then keeps it alive and completes its pods, each
    /// after `pod_delay`. Errors: the node or its first heartbeat cannot be written.
    pub async fn start(client: &Client, node: &str, pod_delay: Duration) -> Res<Sim> {
        let node = node.to_string();
        apply_node(client, &node).await?;
        heartbeat(client, &node).await?;
        log(format!(
            "simulated node {node} is Ready (taint {SIM_LABEL}=true:NoSchedule)"
        ));
        let stats = Arc::new(SimStats::default());
        let beat = {
            let (client, node) = (client.clone(), node.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    if let Err(err) = heartbeat(&client, &node).await {
                        log(format!("simulated node heartbeat failed: {err}"));
                    }
                }
            })
        };
        let completer = tokio::spawn(complete_pods(client.clone(), node.clone(), stats.clone(), pod_delay));
        Ok(Sim {
            stats,
            node,
            tasks: vec![beat, completer],
        })
    }

    /// Stops the heartbeat and the completer, and deletes the node and its Lease.
    pub async fn stop(self, client: &Client) {
        for task in self.tasks {
            task.abort();
        }
        delete_node(client, &self.node).await;
        log(format!("deleted the simulated node {}", self.node));
    }

    /// Pods completed so far.
    pub fn completed(&self) -> u64 {
        self.stats.completed.load(Ordering::Relaxed)
    }

    /// Its pod writes so far.
    pub fn writes(&self) -> SimWrites {
        SimWrites {
            completed: self.completed(),
            force_deleted: self.stats.force_deleted.load(Ordering::Relaxed),
        }
    }

    /// Its pod writes since `before`, in the API server's terms (`"PATCH pods/status"`,
    /// `"DELETE pods"`); its heartbeat is part of the background rate.
    pub fn writes_since(&self, before: &SimWrites) -> crate::apiserver::Counts {
        let now = self.writes();
        crate::apiserver::Counts::from([
            ("PATCH pods/status".into(), (now.completed - before.completed) as f64),
            ("DELETE pods".into(), (now.force_deleted - before.force_deleted) as f64),
        ])
    }
}

/// The simulated kubelet's pod writes at one instant: a status patch per pod completed, a delete
/// per deletion finished.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimWrites {
    pub completed: u64,
    pub force_deleted: u64,
}

/// Deletes node `node` and its Lease (errors ignored: either may be gone already).
pub async fn delete_node(client: &Client, node: &str) {
    let _ = Api::<Node>::all(client.clone())
        .delete(node, &DeleteParams::default())
        .await;
    let _ = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .delete(node, &DeleteParams::default())
        .await;
}

/// Watches the pods bound to the simulated node and does the kubelet's part: marks each one
/// Succeeded with a terminated container (exit code 0), and finishes their deletion (grace 0).
async fn complete_pods(client: Client, node: String, stats: Arc<SimStats>, delay: Duration) {
    let api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    let mut completed: HashSet<String> = HashSet::new();
    let mut deleted: HashSet<String> = HashSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(Event::Apply(pod)) | Ok(Event::InitApply(pod)) => pod,
            Ok(_) => continue,
            Err(err) => {
                log(format!("simulated node: pod watch error: {err}"));
                continue;
            }
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let terminal = phase == "Succeeded" || phase == "Failed";
        let uid = pod.uid().unwrap_or_default();
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let (stats, permits) = (stats.clone(), permits.clone());
        if pod.metadata.deletion_timestamp.is_some() {
            if !terminal && deleted.insert(uid) {
                tokio::spawn(async move {
                    let _permit = permits.acquire().await;
                    let params = DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    };
                    if pods.delete(&name, &params).await.is_ok() {
                        stats.force_deleted.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            continue;
        }
        if terminal || !completed.insert(uid) {
            continue;
        }
        let containers: Vec<(String, String)> = pod
            .spec
            .as_ref()
            .map(|s| {
                s.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        tokio::spawn(async move {
            let _permit = permits.acquire().await;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let at = rfc3339(false);
            let statuses: Vec<Value> = containers
                .iter()
                .map(|(c, image)| {
                    json!({"name": c, "image": image, "imageID": "", "ready": false, "restartCount": 0,
                           "started": false,
                           "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                    "startedAt": at, "finishedAt": at}}})
                })
                .collect();
            let cond = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": at});
            let patch = json!({"status": {
                "phase": "Succeeded", "startTime": at,
                "conditions": [cond("Initialized", "True"), cond("Ready", "False"), cond("ContainersReady", "False")],
                "containerStatuses": statuses,
            }});
            for attempt in 0..5 {
                match pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch.clone()))
                    .await
                {
                    Ok(_) => {
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => return,
                    Err(_) if attempt < 4 => tokio::time::sleep(Duration::from_millis(200 << attempt)).await,
                    Err(err) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        log(format!("simulated node: could not complete pod {ns}/{name}: {err}"));
                    }
                }
            }
        });
    }
}
