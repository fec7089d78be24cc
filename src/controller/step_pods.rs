//! The step pods, from a pod watch, indexed by their Job: what a waiting step's start check and a
//! finished step's details read, so that neither costs an API read per reconcile.
//!
//! Reading them with a LIST each time cost one pod LIST (and often an Event LIST) per waiting Job
//! per reconcile: at 10,000 one-step runs that was 11,000 pod LISTs, and the run controller fell
//! minutes behind the Jobs (bench (c), 2026-12-02). Of each pod only what `run::observe` and
//! `job_state` read is kept (phase, reason, the scheduling and disruption conditions, container
//! states, node name, claim volumes), so 10,000 of them stay small.
//!
//! The watch also wakes runs: a pending pod whose start cause changes (a container waiting with
//! `ErrImagePull`, a `PodScheduled=False` condition) is news its run's start check
//! (`engine::pod_start`) would otherwise have to poll for. A healthy pod's progress (scheduled,
//! creating, running, done) wakes nobody here: the Job's own status says that. A pending pod
//! first seen mounting a claim wakes its run too: whether the claim binds takes a read, and a
//! claim waiting on an absent provisioner shows only Normal events.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodSpec, PodStatus, Volume,
};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::listed::ListedIndex;
use super::watched::WatchedPod;
use crate::api::{DagRun, labels};

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
    index: ListedIndex<Index>,
}

impl StepPods {
    /// Feeds one event of the pod watch. Returns the run to look at again when the event changed
    /// a pending pod's start cause.
    pub fn observe(&self, event: &watcher::Event<WatchedPod>) -> Option<ObjectRef<DagRun>> {
        self.index.observe(event, insert, remove)
    }

    /// The runs of the step pods in `namespace` named `pod` (at most one), or mounting claim
    /// `claim`. A scan: it answers Warning Events about pods and claims, which are rare next to
    /// the pods themselves.
    pub fn runs_of(&self, namespace: &str, pod: Option<&str>, claim: Option<&str>) -> Vec<ObjectRef<DagRun>> {
        let mounts = |p: &StepPod, claim: &str| {
            p.claim_volumes.iter().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == claim)
            })
        };
        let mut runs: Vec<_> = self.index.read_now(|live| {
            live.iter()
                .filter(|((ns, _), _)| ns == namespace)
                .flat_map(|(_, pods)| pods)
                .filter(|p| pod == Some(p.name.as_str()) || claim.is_some_and(|c| mounts(p, c)))
                .map(StepPod::run_ref)
                .collect()
        });
        runs.sort_by(|a, b| a.name.cmp(&b.name));
        runs.dedup();
        runs
    }

    /// What the cache knows that could explain why Job `job`'s pod has not started: whether one
    /// of its pods shows a start cause or mounts a claim, and the names of its pods (Warnings
    /// about them are the rest). None while the watch has not listed.
    pub fn start_leads(&self, namespace: &str, job: &str) -> Option<StartLeads> {
        let key = (namespace.to_string(), job.to_string());
        self.index.read(|live| {
            let pods = live.get(&key).map(Vec::as_slice).unwrap_or_default();
            StartLeads {
                cause: pods.iter().any(|p| p.start_cause().is_some()),
                mounts_claims: pods.iter().any(StepPod::mounts_claims),
                pods: pods.iter().map(|p| p.name.clone()).collect(),
            }
        })
    }

    /// The pods of Job `job` in `namespace` (none yet: empty), or None while the watch has not
    /// listed them.
    pub fn of_job(&self, namespace: &str, job: &str) -> Option<Vec<Pod>> {
        let key = (namespace.to_string(), job.to_string());
        self.index
            .read(|live| live.get(&key).into_iter().flatten().map(StepPod::to_pod).collect())
    }
}

/// See [`StepPods::start_leads`].
#[derive(Debug, PartialEq)]
pub struct StartLeads {
    /// A pod of the Job is pending with a cause ([`StepPod::start_cause`]).
    pub cause: bool,
    /// A pod of the Job mounts a PersistentVolumeClaim.
    pub mounts_claims: bool,
    pub pods: Vec<String>,
}

/// Adds or replaces the pod; returns its run when its start cause is new, or when it is pending,
/// first seen and mounts a claim.
fn insert(index: &mut Index, pod: &WatchedPod) -> Option<ObjectRef<DagRun>> {
    let kept = StepPod::from_pod(pod)?;
    // Most Jobs have one pod; a default `Vec` would reserve four.
    let pods = index.entry(kept.key()).or_insert_with(|| Vec::with_capacity(1));
    let old = pods.iter().find(|p| p.name == kept.name);
    let new_cause = kept.start_cause();
    let cause_is_new = new_cause.is_some() && new_cause != old.and_then(StepPod::start_cause);
    let claim_is_new = old.is_none() && kept.phase.as_deref() == Some("Pending") && kept.mounts_claims();
    let wake = (cause_is_new || claim_is_new).then(|| kept.run_ref());
    pods.retain(|p| p.name != kept.name);
    pods.push(kept);
    wake
}

fn remove(index: &mut Index, pod: &WatchedPod) {
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
    /// Its run (label `kubedag.io/run`).
    run: String,
    node_name: Option<String>,
    /// Volumes backed by a PersistentVolumeClaim. Boxed slices here are exact: a `Vec` collected
    /// from a filter starts at four elements, which made each kept pod about 1.8 KB.
    claim_volumes: Box<[Volume]>,
    phase: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    /// Only the conditions anything here reads ([`KEPT_CONDITIONS`]).
    conditions: Box<[PodCondition]>,
    /// Each container's state, in order.
    container_states: Box<[Option<ContainerState>]>,
}

impl StepPod {
    fn from_pod(pod: &WatchedPod) -> Option<StepPod> {
        let job = pod.labels().get(JOB_NAME_LABEL)?.clone();
        let run = pod.labels().get(labels::RUN)?.clone();
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        Some(StepPod {
            name: pod.name_any(),
            namespace: pod.namespace(),
            job,
            run,
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
                .map(|c| PodCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    ..Default::default()
                })
                .collect(),
            container_states: status
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .map(|c| c.state.as_ref().map(kept_state))
                .collect(),
        })
    }

    /// Why a pending pod is not starting, as its status says: its first container's waiting
    /// reason and message (other than the normal `ContainerCreating`/`PodInitializing`), or the
    /// scheduler's `PodScheduled=False` reason and message. None when it is not pending or shows
    /// no cause.
    fn start_cause(&self) -> Option<(String, String)> {
        if self.phase.as_deref() != Some("Pending") {
            return None;
        }
        let waiting = self
            .container_states
            .first()
            .and_then(|s| s.as_ref()?.waiting.as_ref())
            .filter(|w| {
                !matches!(
                    w.reason.as_deref(),
                    None | Some("ContainerCreating" | "PodInitializing")
                )
            });
        if let Some(w) = waiting {
            return Some((
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default(),
            ));
        }
        self.conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    }

    fn mounts_claims(&self) -> bool {
        self.claim_volumes.iter().any(|v| v.persistent_volume_claim.is_some())
    }

    fn run_ref(&self) -> ObjectRef<DagRun> {
        let run = ObjectRef::new(&self.run);
        match &self.namespace {
            Some(ns) => run.within(ns),
            None => run,
        }
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
                volumes: Some(self.claim_volumes.to_vec()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: self.phase.clone(),
                reason: self.reason.clone(),
                message: self.message.clone(),
                conditions: Some(self.conditions.to_vec()),
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

/// What the readers take of a container state: the waiting reason and message, that it runs,
/// and how it ended (exit code, reason, termination message); not the container ID or times.
fn kept_state(state: &ContainerState) -> ContainerState {
    ContainerState {
        waiting: state.waiting.as_ref().map(|w| ContainerStateWaiting {
            reason: w.reason.clone(),
            message: w.message.clone(),
        }),
        running: state.running.as_ref().map(|_| ContainerStateRunning::default()),
        terminated: state.terminated.as_ref().map(|t| ContainerStateTerminated {
            exit_code: t.exit_code,
            reason: t.reason.clone(),
            message: t.message.clone(),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource;

    fn pod(name: &str, job: &str, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some(
                    [
                        (JOB_NAME_LABEL.to_string(), job.to_string()),
                        (labels::RUN.to_string(), format!("run-of-{job}")),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn waiting(mut pod: Pod, reason: &str) -> Pod {
        pod.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: Some(format!("{reason} message")),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        pod
    }

    fn unschedulable(mut pod: Pod, message: &str) -> Pod {
        pod.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some("Unschedulable".into()),
            message: Some(message.into()),
            ..Default::default()
        }]);
        pod
    }

    /// `pod` with a volume of claim `claim`.
    fn mounting(mut pod: Pod, claim: &str) -> Pod {
        pod.spec = Some(PodSpec {
            volumes: Some(vec![Volume {
                name: "ws".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
        pod
    }

    /// The pod as the watch decodes it from the API server's JSON.
    fn w(pod: Pod) -> WatchedPod {
        serde_json::from_value(serde_json::to_value(pod).unwrap()).unwrap()
    }

    fn woken(pods: &StepPods, pod: Pod) -> Option<String> {
        pods.observe(&watcher::Event::Apply(w(pod)))
            .map(|r| format!("{}/{}", r.namespace.unwrap(), r.name))
    }

    #[test]
    fn a_new_start_cause_wakes_the_run_and_healthy_progress_does_not() {
        let pods = StepPods::default();
        pods.observe(&watcher::Event::Init);
        pods.observe(&watcher::Event::InitDone);
        let p = || pod("j-1", "j", "Pending");
        assert_eq!(woken(&pods, p()), None, "a new pod");
        assert_eq!(woken(&pods, waiting(p(), "ContainerCreating")), None);
        assert_eq!(woken(&pods, waiting(p(), "ErrImagePull")), Some("ns/run-of-j".into()));
        assert_eq!(woken(&pods, waiting(p(), "ErrImagePull")), None, "the same cause again");
        assert_eq!(
            woken(&pods, waiting(p(), "ImagePullBackOff")),
            Some("ns/run-of-j".into())
        );
        assert_eq!(
            woken(&pods, pod("j-1", "j", "Running")),
            None,
            "the Job's status says so"
        );
        assert_eq!(
            woken(&pods, unschedulable(pod("k-1", "k", "Pending"), "0/1 nodes")),
            Some("ns/run-of-k".into())
        );
        assert_eq!(
            woken(&pods, unschedulable(pod("k-1", "k", "Pending"), "0/1 nodes")),
            None
        );
        assert_eq!(
            woken(&pods, unschedulable(pod("k-1", "k", "Pending"), "0/2 nodes")),
            Some("ns/run-of-k".into()),
            "the scheduler's message changed"
        );
        let failed = waiting(pod("m-1", "m", "Failed"), "ErrImagePull");
        assert_eq!(woken(&pods, failed), None, "only pending pods wait to start");
        let claimed = || mounting(pod("c-1", "c", "Pending"), "data");
        assert_eq!(
            woken(&pods, claimed()),
            Some("ns/run-of-c".into()),
            "first seen mounting a claim"
        );
        assert_eq!(woken(&pods, claimed()), None, "seen before");
        assert_eq!(
            woken(&pods, mounting(pod("d-1", "d", "Running"), "data")),
            None,
            "not pending"
        );
    }

    #[test]
    fn a_pods_run_is_found_by_the_pods_name_or_a_claim_it_mounts() {
        let pods = StepPods::default();
        let mounting = mounting(pod("k-1", "k", "Pending"), "claim");
        pods.observe(&watcher::Event::Init);
        pods.observe(&watcher::Event::InitApply(w(pod("j-1", "j", "Pending"))));
        pods.observe(&watcher::Event::InitApply(w(mounting)));
        pods.observe(&watcher::Event::InitDone);
        let names = |runs: Vec<ObjectRef<DagRun>>| runs.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(pods.runs_of("ns", Some("j-1"), None)), ["run-of-j"]);
        assert!(pods.runs_of("other", Some("j-1"), None).is_empty());
        assert!(pods.runs_of("ns", Some("j-2"), None).is_empty());
        assert_eq!(names(pods.runs_of("ns", None, Some("claim"))), ["run-of-k"]);
        assert!(pods.runs_of("ns", None, Some("other-claim")).is_empty());
    }

    #[test]
    fn start_leads_show_the_cause_the_claims_and_the_pods_once_listed() {
        let pods = StepPods::default();
        assert_eq!(pods.start_leads("ns", "j"), None, "not listed");
        pods.observe(&watcher::Event::Init);
        pods.observe(&watcher::Event::InitDone);
        let none = StartLeads {
            cause: false,
            mounts_claims: false,
            pods: vec![],
        };
        assert_eq!(pods.start_leads("ns", "j"), Some(none));
        let mounting = mounting(pod("j-1", "j", "Pending"), "claim");
        pods.observe(&watcher::Event::Apply(w(mounting.clone())));
        let leads = pods.start_leads("ns", "j").unwrap();
        assert_eq!(
            (leads.cause, leads.mounts_claims, leads.pods),
            (false, true, vec!["j-1".into()])
        );
        pods.observe(&watcher::Event::Apply(w(waiting(mounting, "ErrImagePull"))));
        assert!(pods.start_leads("ns", "j").unwrap().cause);
        assert!(
            !pods.start_leads("other", "j").unwrap().cause,
            "another namespace's Job"
        );
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
        pods.observe(&watcher::Event::InitApply(w(pod("j-1", "j", "Pending"))));
        assert_eq!(phases(&pods, "j"), None);
        pods.observe(&watcher::Event::InitDone);
        assert_eq!(phases(&pods, "j"), Some(vec!["Pending".to_string()]));
        assert_eq!(phases(&pods, "other"), Some(vec![]));
    }

    #[test]
    fn updates_replace_deletes_remove_and_a_relist_forgets_what_it_did_not_see() {
        let pods = StepPods::default();
        pods.observe(&watcher::Event::Init);
        pods.observe(&watcher::Event::InitApply(w(pod("a-1", "a", "Pending"))));
        pods.observe(&watcher::Event::InitApply(w(pod("b-1", "b", "Running"))));
        pods.observe(&watcher::Event::InitDone);
        pods.observe(&watcher::Event::Apply(w(pod("a-1", "a", "Running"))));
        pods.observe(&watcher::Event::Apply(w(pod("a-2", "a", "Pending"))));
        assert_eq!(phases(&pods, "a"), Some(vec!["Running".into(), "Pending".into()]));
        pods.observe(&watcher::Event::Delete(w(pod("a-1", "a", "Running"))));
        assert_eq!(phases(&pods, "a"), Some(vec!["Pending".into()]));

        pods.observe(&watcher::Event::Init);
        assert_eq!(phases(&pods, "a"), None, "a relist in progress is not an answer");
        pods.observe(&watcher::Event::InitApply(w(pod("a-2", "a", "Succeeded"))));
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
        full.labels_mut().insert("other".into(), "label".into());
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
                reason: Some("Error".into()),
                message: Some("out=1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut as_served = terminated.clone();
        let t = as_served.terminated.as_mut().unwrap();
        t.container_id = Some("containerd://0123456789abcdef".into());
        t.started_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        status.container_statuses = Some(vec![ContainerStatus {
            name: "step".into(),
            image: "a/very/long/image:tag".into(),
            state: Some(as_served),
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
        let full = StepPod::from_pod(&w(full)).unwrap().to_pod();
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
