//! Reads a step Job (and, for failures, its pod) back into the planner's [`JobState`].

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::engine::plan::JobState;
use crate::engine::retry;

use super::Context;
use super::step_pods::JOB_NAME_LABEL;
use super::watched::WatchedJob;

/// The state of Job `name` as far as run `run_uid` is concerned. A Job owned by another object is
/// `Missing` for this run (e.g. a same-named earlier run's Job awaiting garbage collection).
pub fn cached_state(ctx: &Context, namespace: &str, name: &str, run_uid: &str) -> JobState {
    let Some(job) = ctx.jobs.get(&ObjectRef::new(name).within(namespace)) else {
        return JobState::Missing;
    };
    if !is_owned_by(&job, run_uid) {
        return JobState::Missing;
    }
    job.state()
}

/// Who owns Job `name`, as far as the cache knows.
pub enum JobOwner {
    /// The run: it exists, nothing to create.
    Run,
    /// Another object (an earlier run of the same name awaiting garbage collection).
    Other,
    /// Not in the cache (yet): create it, AlreadyExists settles the rest.
    Unknown,
}

pub fn cached_owner(ctx: &Context, namespace: &str, name: &str, run_uid: &str) -> JobOwner {
    match ctx.jobs.get(&ObjectRef::new(name).within(namespace)) {
        Some(job) if is_owned_by(&job, run_uid) => JobOwner::Run,
        Some(_) => JobOwner::Other,
        None => JobOwner::Unknown,
    }
}

fn is_owned_by(job: &WatchedJob, uid: &str) -> bool {
    job.owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// Fills in what only the pod knows: for a failed Job its exit code and a short reason, for a
/// succeeded one whose step declares outputs (`wants_outputs`) its termination message.
/// A pod that Kubernetes took away (evicted, preempted, its node gone: condition
/// `DisruptionTarget`, or a pod `reason` such as `Evicted`) reports no exit code, so the failure
/// counts as not the program's ([`retry::Failure`]).
pub async fn with_pod_details(
    ctx: &Context,
    namespace: &str,
    job_name: &str,
    state: JobState,
    wants_outputs: bool,
) -> JobState {
    match state {
        JobState::Failed {
            finished_at,
            exit_code: None,
            message,
        } => {
            let pod = step_pod(ctx, namespace, job_name).await;
            failed_with_pod(finished_at, message, pod.as_ref())
        }
        JobState::Succeeded {
            finished_at,
            exit_code,
            outputs: None,
        } if wants_outputs => {
            let pod = step_pod(ctx, namespace, job_name).await;
            JobState::Succeeded {
                finished_at,
                exit_code,
                outputs: pod.as_ref().and_then(terminated).map(|t| t.message.unwrap_or_default()),
            }
        }
        state => state,
    }
}

/// The Job's pod, if it can be read: from the pod cache when it has the pod stopped, else from the
/// API (the pod watch may trail the Job watch by a moment).
async fn step_pod(ctx: &Context, namespace: &str, job_name: &str) -> Option<Pod> {
    let cached = ctx.pods.of_job(namespace, job_name).unwrap_or_default();
    if let Some(pod) = cached.into_iter().find(has_stopped) {
        return Some(pod);
    }
    match list_pods(ctx, namespace, job_name).await {
        Ok(pods) => pods.into_iter().next(),
        Err(err) => {
            tracing::warn!(%job_name, %err, "could not read the step's pod");
            None
        }
    }
}

/// The pods of Job `job_name`: from the pod cache once it is synced, else listed.
pub async fn step_pods(ctx: &Context, namespace: &str, job_name: &str) -> Result<Vec<Pod>, kube::Error> {
    match ctx.pods.of_job(namespace, job_name) {
        Some(cached) => Ok(cached),
        None => list_pods(ctx, namespace, job_name).await,
    }
}

async fn list_pods(ctx: &Context, namespace: &str, job_name: &str) -> Result<Vec<Pod>, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("{JOB_NAME_LABEL}={job_name}");
    Ok(pods.list(&ListParams::default().labels(&selector)).await?.items)
}

/// Whether the pod has stopped (its phase is final), so the cached copy says how.
fn has_stopped(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// The terminated state of the pod's step container.
fn terminated(pod: &Pod) -> Option<ContainerStateTerminated> {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .find_map(|cs| cs.state.as_ref().and_then(|s| s.terminated.clone()))
}

fn failed_with_pod(finished_at: Option<Time>, message: String, pod: Option<&Pod>) -> JobState {
    let timed_out = message.starts_with(retry::TIMED_OUT);
    let (exit_code, message) = match pod.map(pod_failure) {
        Some(PodFailure::Exited { code, .. }) if timed_out => (Some(code), message),
        _ if timed_out => (None, message),
        Some(PodFailure::Disrupted(why)) => (None, format!("the pod was taken away: {why}")),
        Some(PodFailure::Exited { code, reason }) => (Some(code), format!("exit code {code} ({reason})")),
        Some(PodFailure::Unknown) => (None, message),
        None => (
            None,
            format!("{message}; its pod is gone (deleted, evicted or lost with its node)"),
        ),
    };
    JobState::Failed {
        finished_at,
        exit_code,
        message,
    }
}

/// Why a failed step pod stopped.
enum PodFailure {
    /// Kubernetes stopped it (eviction, preemption, node loss), not the program.
    Disrupted(String),
    Exited {
        code: i32,
        reason: String,
    },
    Unknown,
}

fn pod_failure(pod: &Pod) -> PodFailure {
    let status = pod.status.as_ref();
    let disruption = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "DisruptionTarget" && c.status == "True"))
        .map(|c| join(c.reason.as_deref(), c.message.as_deref()));
    let evicted = status
        .filter(|s| s.reason.is_some())
        .map(|s| join(s.reason.as_deref(), s.message.as_deref()));
    if let Some(why) = disruption.or(evicted) {
        return PodFailure::Disrupted(why);
    }
    match terminated(pod) {
        Some(t) => PodFailure::Exited {
            code: t.exit_code,
            reason: t.reason.unwrap_or_else(|| "Error".into()),
        },
        None => PodFailure::Unknown,
    }
}

/// `reason: message`, either part optional.
fn join(reason: Option<&str>, message: Option<&str>) -> String {
    match (reason, message.filter(|m| !m.is_empty())) {
        (Some(r), Some(m)) => format!("{r}: {m}"),
        (Some(r), None) => r.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "no reason given".to_string(),
    }
}
