//! The step pods, from a pod watch, indexed by their Job: what a waiting step's start check and a
//! finished step's details read, so that neither costs an API read per reconcile.
//!
//! Reading them with a LIST each time cost one pod LIST (and often an Event LIST) per waiting Job
//! per reconcile: at 10,000 one-step runs that was 11,000 pod LISTs, and the run controller fell
//! minutes behind the Jobs (bench (c), 2026-12-02). Of each pod only what `run::observe` and
//! `job_state` read is kept (phase, reason, the scheduling and disruption conditions, container
//! states, node name, claim volumes), so 10,000 of them stay small.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus, Pod, PodCondition, PodSpec, PodStatus, Volume};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::watcher;

/// The label the Job controller puts on its pods (Kubernetes 1.27+).
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The conditions anything here reads.
const KEPT_CONDITIONS: &[&str] = &["PodScheduled", "DisruptionTarget"];

/// (namespace, Job name).
type JobKey = (String, String);
type Index = HashMap<JobKey, Vec<StepPod>>;

/// The step pods by Job. Filled by [`StepPods::observe`] from the pod watch; until its first list
/// is complete (and while it relists) [`StepPods::of_job`] answers None and callers read the API.
#[derive(Default)]
pub struct StepPods {
    state: Mutex<State>,
    synced: AtomicBool,
}

#[derive(Default)]
struct State {
    live: Index,
    /// The pods of a (re)list in progress; replaces `live` when it is complete.
    relist: Option<Index>,
}

impl StepPods {
    /// Feeds one event of the pod watch.
    pub fn observe(&self, event: &watcher::Event<Pod>) {
        let mut state = self.state.lock().expect("step pods lock");
        match event {
            watcher::Event::Init => {
                self.synced.store(false, Ordering::Relaxed);
                state.relist = Some(Index::new());
            }
            watcher::Event::InitApply(pod) => {
                if let Some(relist) = state.relist.as_mut() {
                    insert(relist, pod);
                }
            }
            watcher::Event::InitDone => {
                state.live = state.relist.take().unwrap_or_default();
                self.synced.store(true, Ordering::Relaxed);
            }
            watcher::Event::Apply(pod) => insert(&mut state.live, pod),
            watcher::Event::Delete(pod) => remove(&mut state.live, pod),
        }
    }

    /// The pods of Job `job` in `namespace` (none yet: empty), or None while the watch has not
    /// listed them.
    pub fn of_job(&self, namespace: &str, job: &str) -> Option<Vec<Pod>> {
        if !self.synced.load(Ordering::Relaxed) {
            return None;
        }
        let state = self.state.lock().expect("step pods lock");
        let key = (namespace.to_string(), job.to_string());
        let pods = state.live.get(&key).into_iter().flatten();
        Some(pods.map(StepPod::to_pod).collect())
    }
}

fn insert(index: &mut Index, pod: &Pod) {
    let Some(kept) = StepPod::from_pod(pod) else { return };
    let pods = index.entry(kept.key()).or_default();
    pods.retain(|p| p.name != kept.name);
    pods.push(kept);
}

fn remove(index: &mut Index, pod: &Pod) {
    let Some(gone) = StepPod::from_pod(pod) else { return };
    let key = gone.key();
    if let Some(pods) = index.get_mut(&key) {
        pods.retain(|p| p.name != gone.name);
        if pods.is_empty() {
            index.remove(&key);
        }
    }
}

/// What is kept of one step pod: the parts `run::observe` and `job_state` read. A whole
/// `Pod` value is several KiB even when stripped (its spec and status are inline structs of
/// dozens of fields); this is a few hundred bytes.
#[derive(Debug, Clone, PartialEq)]
struct StepPod {
    name: String,
    namespace: Option<String>,
    job: String,
    node_name: Option<String>,
    /// Volumes backed by a PersistentVolumeClaim.
    claim_volumes: Vec<Volume>,
    phase: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    /// Only the conditions anything here reads ([`KEPT_CONDITIONS`]).
    conditions: Vec<PodCondition>,
    /// Each container's state, in order.
    container_states: Vec<Option<ContainerState>>,
}

impl StepPod {
    fn from_pod(pod: &Pod) -> Option<StepPod> {
        let job = pod.labels().get(JOB_NAME_LABEL)?.clone();
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        Some(StepPod {
            name: pod.name_any(),
            namespace: pod.namespace(),
            job,
            node_name: spec.and_then(|s| s.node_name.clone()),
            claim_volumes: spec
                .and_then(|s| s.volumes.as_ref())
                .into_iter()
                .flatten()
                .filter(|v| v.persistent_volume_claim.is_some())
                .map(|v| Volume {
                    name: v.name.clone(),
                    persistent_volume_claim: v.persistent_volume_claim.clone(),
                    ..Default::default()
                })
                .collect(),
            phase: status.and_then(|s| s.phase.clone()),
            reason: status.and_then(|s| s.reason.clone()),
            message: status.and_then(|s| s.message.clone()),
            conditions: status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .filter(|c| KEPT_CONDITIONS.contains(&c.type_.as_str()))
                .cloned()
                .collect(),
            container_states: status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.state.clone())
                .collect(),
        })
    }

    fn key(&self) -> JobKey {
        (self.namespace.clone().unwrap_or_default(), self.job.clone())
    }

    /// The pod as the readers take it, holding only the kept parts.
    fn to_pod(&self) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: self.namespace.clone(),
                labels: Some([(JOB_NAME_LABEL.to_string(), self.job.clone())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: self.node_name.clone(),
                volumes: Some(self.claim_volumes.clone()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: self.phase.clone(),
                reason: self.reason.clone(),
                message: self.message.clone(),
                conditions: Some(self.conditions.clone()),
                container_statuses: Some(
                    self.container_states
                        .iter()
                        .map(|state| ContainerStatus {
                            state: state.clone(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStateTerminated, PersistentVolumeClaimVolumeSource};

    fn pod(name: &str, job: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some([(JOB_NAME_LABEL.to_string(), job.to_string())].into()),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn phases(pods: &StepPods, job: &str) -> Option<Vec<String>> {
        pods.of_job("ns", job).map(|pods| {
            pods.iter()
                .map(|p| p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default())
                .collect()
        })
    }

    #[test]
    fn nothing_is_answered_until_the_first_list_is_complete() {
        let pods = StepPods::default();
        pods.observe(&watcher::Event::Init);
        pods.observe(&watcher::Event::InitApply(pod("j-1", "j", "Pending")));
        assert_eq!(phases(&pods, "j"), None);
        pods.observe(&watcher::Event::InitDone);
        assert_eq!(phases(&pods, "j"), Some(vec!["Pending".to_string()]));
        assert_eq!(phases(&pods, "other"), Some(vec![]));
    }

    #[test]
    fn updates_replace_deletes_remove_and_a_relist_forgets_what_it_did_not_see() {
        let pods = StepPods::default();
        pods.observe(&watcher::Event::Init);
        pods.observe(&watcher::Event::InitApply(pod("a-1", "a", "Pending")));
        pods.observe(&watcher::Event::InitApply(pod("b-1", "b", "Running")));
        pods.observe(&watcher::Event::InitDone);
        pods.observe(&watcher::Event::Apply(pod("a-1", "a", "Running")));
        pods.observe(&watcher::Event::Apply(pod("a-2", "a", "Pending")));
        assert_eq!(phases(&pods, "a"), Some(vec!["Running".into(), "Pending".into()]));
        pods.observe(&watcher::Event::Delete(pod("a-1", "a", "Running")));
        assert_eq!(phases(&pods, "a"), Some(vec!["Pending".into()]));

        pods.observe(&watcher::Event::Init);
        assert_eq!(phases(&pods, "a"), None, "a relist in progress is not an answer");
        pods.observe(&watcher::Event::InitApply(pod("a-2", "a", "Succeeded")));
        pods.observe(&watcher::Event::InitDone);
        assert_eq!(phases(&pods, "a"), Some(vec!["Succeeded".into()]));
        assert_eq!(
            phases(&pods, "b"),
            Some(vec![]),
            "b-1 was deleted while the watch was away"
        );
    }

    #[test]
    fn what_is_kept_is_what_the_checks_read() {
        let mut full = pod("a-1", "a", "Failed");
        full.labels_mut().insert("kubedag.io/run".into(), "r".into());
        full.annotations_mut().insert("big".into(), "x".repeat(1000));
        let status = full.status.as_mut().unwrap();
        status.reason = Some("Evicted".into());
        status.conditions = Some(vec![
            PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                ..Default::default()
            },
            PodCondition {
                type_: "Ready".into(),
                status: "False".into(),
                ..Default::default()
            },
        ]);
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 3,
                message: Some("out=1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        status.container_statuses = Some(vec![ContainerStatus {
            name: "step".into(),
            image: "a/very/long/image:tag".into(),
            state: Some(terminated.clone()),
            ..Default::default()
        }]);
        full.spec = Some(PodSpec {
            node_name: Some("n1".into()),
            volumes: Some(vec![
                Volume {
                    name: "data".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: "ws".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "scratch".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        });
        let full = StepPod::from_pod(&full).unwrap().to_pod();
        let spec = full.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        let volumes: Vec<_> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["data"]);
        assert_eq!(full.labels().len(), 1);
        assert!(full.annotations().is_empty());
        let status = full.status.unwrap();
        assert_eq!(status.reason.as_deref(), Some("Evicted"));
        let kept: Vec<_> = status.conditions.unwrap().into_iter().map(|c| c.type_).collect();
        assert_eq!(kept, ["DisruptionTarget"]);
        let container = &status.container_statuses.unwrap()[0];
        assert_eq!(container.state, Some(terminated));
        assert_eq!(container.image, "");
    }
}
