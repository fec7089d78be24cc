//! Step pods and Jobs as their watches decode them: only what kubedag reads. The metadata keeps
//! name, namespace, uid, resourceVersion, labels, owners and creation time; a pod keeps the node
//! and claim volumes of its spec and its status; a Job keeps its status. Everything else (managed
//! fields, pod templates, containers, env, other volumes) is skipped while parsing instead of
//! being built and dropped.
//!
//! Measured on a bench step pod as served: 5.4 KB of JSON, of which 2.1 KB managed fields and
//! 1.5 KB spec. Both watches decode every update of every step (about five per pod, three per
//! Job), so this is most of the operator's decoding work on a busy node.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::JobStatus;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::ObjectMeta;
use kube::core::Resource;
use serde::{Deserialize, Deserializer};

use crate::engine::plan::JobState;
use crate::engine::retry;

/// A `v1` Pod with only the parts kubedag reads; see the module docs.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WatchedPod {
    #[serde(deserialize_with = "slim_metadata")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<WatchedPodSpec>,
    #[serde(default)]
    pub status: Option<PodStatus>,
}

/// `spec.nodeName` and the volumes backed by a claim.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedPodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub volumes: Option<Vec<WatchedVolume>>,
}

/// A volume's name and, if it is one, its claim.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedVolume {
    pub name: String,
    #[serde(default)]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
}

/// A `batch/v1` Job with only its metadata (see the module docs) and status: what the Job cache
/// holds. About 600 bytes inline against `k8s_openapi`'s `Job` at 2,688 (its spec is inline even
/// when absent), so the cache of 10,000 Jobs is about 20 MB smaller.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct WatchedJob {
    #[serde(deserialize_with = "slim_metadata")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: Option<JobStatus>,
}

impl WatchedJob {
    /// Maps the Job's terminal conditions. Only the final `Complete`/`Failed` conditions count, so a
    /// step is terminal only once its pod has stopped.
    pub fn state(&self) -> JobState {
        let status = self.status.as_ref();
        let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
        let is_true = |kind: &str| conditions.iter().find(|c| c.type_ == kind && c.status == "True");
        if let Some(done) = is_true("Complete") {
            let finished = status
                .and_then(|s| s.completion_time.clone())
                .or_else(|| done.last_transition_time.clone());
            return JobState::Succeeded {
                finished_at: finished,
                exit_code: Some(0),
                outputs: None,
            };
        }
        if let Some(failed) = is_true("Failed") {
            let message = match failed.reason.as_deref() {
                Some("DeadlineExceeded") => retry::TIMED_OUT.to_string(),
                _ => failed.message.clone().unwrap_or_else(|| "the step's Job failed".into()),
            };
            return JobState::Failed {
                finished_at: failed.last_transition_time.clone(),
                exit_code: None,
                message,
            };
        }
        JobState::Active
    }
}

fn slim_metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Slim {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        owner_references: Option<Vec<OwnerReference>>,
        creation_timestamp: Option<Time>,
    }
    let slim = Slim::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: slim.name,
        namespace: slim.namespace,
        uid: slim.uid,
        resource_version: slim.resource_version,
        labels: slim.labels,
        owner_references: slim.owner_references,
        creation_timestamp: slim.creation_timestamp,
        ..Default::default()
    })
}

/// `Resource` for a slim type of a core kind: its group, version, kind and plural.
macro_rules! slim_resource {
    ($type:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        impl Resource for $type {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }

            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }

            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

slim_resource!(WatchedPod, "", "v1", "Pod", "pods");
slim_resource!(WatchedJob, "batch", "v1", "Job", "jobs");

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::{Pod, PodSpec, Volume};

    #[test]
    fn a_served_pod_decodes_to_what_is_read_and_nothing_else() {
        let served = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "r-step-1-abcde",
                "namespace": "ns",
                "uid": "u1",
                "resourceVersion": "42",
                "labels": {"kubedag.io/run": "r", "batch.kubernetes.io/job-name": "r-step-1"},
                "annotations": {"big": "x"},
                "managedFields": [{"manager": "kubelet", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}],
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "r-step-1", "uid": "j1"}]
            },
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "step", "image": "busybox", "env": [{"name": "X", "value": "1"}]}],
                "volumes": [
                    {"name": "ws", "persistentVolumeClaim": {"claimName": "claim"}},
                    {"name": "token", "projected": {"sources": []}}
                ]
            },
            "status": {"phase": "Pending", "containerStatuses": [{"name": "step", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}]}
        });
        let pod: WatchedPod = serde_json::from_value(served.clone()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("r-step-1-abcde"));
        assert_eq!(pod.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap().len(), 2);
        assert!(pod.metadata.managed_fields.is_none() && pod.metadata.annotations.is_none());
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[0].persistent_volume_claim.as_ref().unwrap().claim_name, "claim");
        assert!(volumes[1].persistent_volume_claim.is_none());
        let full: Pod = serde_json::from_value(served).unwrap();
        assert_eq!(pod.status, full.status, "the status is decoded whole");
    }

    #[test]
    fn a_served_job_keeps_its_owners_labels_creation_and_status() {
        let served = serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "r-step-1",
                "namespace": "ns",
                "uid": "j1",
                "resourceVersion": "7",
                "creationTimestamp": "2026-12-04T10:00:00Z",
                "labels": {"kubedag.io/run": "r"},
                "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}],
                "ownerReferences": [{"apiVersion": "kubedag.io/v1alpha1", "kind": "DagRun", "name": "r", "uid": "u1", "controller": true}]
            },
            "spec": {"template": {"spec": {"containers": [{"name": "step", "image": "busybox"}]}}},
            "status": {"active": 1, "ready": 0, "conditions": [{"type": "Complete", "status": "True"}]}
        });
        let job: WatchedJob = serde_json::from_value(served.clone()).unwrap();
        let full: Job = serde_json::from_value(served).unwrap();
        assert_eq!(job.status, full.status);
        assert!(job.metadata.managed_fields.is_none());
        assert_eq!(job.metadata.owner_references, full.metadata.owner_references);
        assert_eq!(job.metadata.creation_timestamp, full.metadata.creation_timestamp);
        assert_eq!(job.metadata.labels, full.metadata.labels);
        assert_eq!(job.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn the_cached_job_is_a_fraction_of_a_typed_one() {
        let (watched, typed) = (std::mem::size_of::<WatchedJob>(), std::mem::size_of::<Job>());
        assert!(watched * 3 < typed, "WatchedJob {watched} bytes against Job {typed}");
    }

    #[test]
    fn a_typed_pod_round_trips_into_it() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                volumes: Some(vec![Volume {
                    name: "v".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        };
        let watched: WatchedPod = serde_json::from_value(serde_json::to_value(&pod).unwrap()).unwrap();
        assert_eq!(watched.metadata.name.as_deref(), Some("p"));
        assert_eq!(watched.spec.unwrap().volumes.unwrap()[0].name, "v");
    }
}
