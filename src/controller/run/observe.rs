//! Observing a run's step Jobs: the state of each Running step's Job, from the Job cache, and
//! for Jobs whose pod is not running after a while, from the pod, its Events and its unbound
//! claims (classified by [`engine::pod_start`]).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use crate::api::{DagRun, StepPhase};
use crate::engine::foreach;
use crate::engine::plan::JobState;
use crate::engine::pod_start::{self, ClaimView, PodView, StartView};

use super::super::watched::WatchedJob;
use super::super::{Context, events, job_state};

/// A Job without a ready pod is left alone this long (seconds) before its pod is inspected:
/// most pods start well within it, so healthy runs cost no extra reads. The inspection is timed
/// only when the caches already show something to report ([`trouble_in_sight`]); otherwise the
/// pod watch and the Warning watch wake the run when a cause appears.
const INSPECT_AFTER_SECONDS: i64 = 10;

/// The state of every Job the run's Running steps point at.
pub async fn step_jobs(ctx: &Context, run: &DagRun) -> HashMap<String, JobState> {
    let mut observed = HashMap::new();
    let Some(status) = &run.status else {
        return observed;
    };
    let namespace = run.namespace().unwrap_or_default();
    let uid = run.uid().unwrap_or_default();
    let declares_outputs = |step: &str| {
        let spec = status.dag_spec.as_deref();
        spec.is_some_and(|spec| spec.all_steps().any(|s| s.name == step && !s.outputs.is_empty()))
    };
    let run_name = run.name_any();
    for step in status.steps.iter().filter(|s| s.phase == StepPhase::Running) {
        let outputs = declares_outputs(&step.name);
        if let Some(fe) = &step.for_each {
            let exists = |job: &str| job_state::cached_state(ctx, &namespace, job, &uid) != JobState::Missing;
            for (earlier, latest) in foreach::instance_jobs(&run_name, &step.name, fe, &exists) {
                for job in earlier {
                    observed.insert(job.clone(), job_state::cached_state(ctx, &namespace, &job, &uid));
                }
                let state = current_state(ctx, &namespace, &uid, &latest, outputs).await;
                observed.insert(latest, state);
            }
            continue;
        }
        let Some(job) = &step.job_name else { continue };
        observed.insert(job.clone(), current_state(ctx, &namespace, &uid, job, outputs).await);
    }
    observed
}

/// The state of the current attempt's Job `job`: from the cache, with the pod's details when it
/// finished or does not run yet.
async fn current_state(ctx: &Context, namespace: &str, uid: &str, job: &str, outputs: bool) -> JobState {
    match job_state::cached_state(ctx, namespace, job, uid) {
        JobState::Active => not_running_yet(ctx, namespace, job).await.unwrap_or(JobState::Active),
        state => job_state::with_pod_details(ctx, namespace, job, state, outputs).await,
    }
}

/// For an active Job with no ready pod: how long it has waited and, past
/// [`INSPECT_AFTER_SECONDS`], why its pod is not running. None: the pod runs.
async fn not_running_yet(ctx: &Context, namespace: &str, name: &str) -> Option<JobState> {
    let job = ctx.jobs.get(&ObjectRef::new(name).within(namespace))?;
    let ready = job.status.as_ref().and_then(|s| s.ready).unwrap_or(0);
    if ready > 0 {
        return None;
    }
    let now = events::now();
    let created = job.creation_timestamp();
    let age = created.as_ref().map_or(0, |t| now.0.duration_since(t.0).as_secs());
    if age < INSPECT_AFTER_SECONDS {
        let recheck = match trouble_in_sight(ctx, namespace, name) {
            Some(false) => None,
            _ => Some(INSPECT_AFTER_SECONDS - age),
        };
        return Some(JobState::Waiting {
            message: None,
            recheck_after_seconds: recheck,
        });
    }
    let poll = || JobState::Waiting {
        message: None,
        recheck_after_seconds: Some(pod_start::RECHECK_SECONDS),
    };
    match start_view(ctx, namespace, &job).await {
        Ok(Some(view)) => Some(pod_start::classify(&view, &now, ctx.config.pod_start_timeout_seconds)),
        // The Warning Events are not listed yet: nothing would wake the run for one.
        Ok(None) => Some(poll()),
        Err(err) => {
            tracing::warn!(job = %name, %err, "could not read the step's pod");
            Some(poll())
        }
    }
}

/// Whether the caches show something the inspection would report for Job `name`: a pod's start
/// cause, a pod that mounts a claim (whether it is bound takes a read the caches cannot answer,
/// and a claim waiting on an absent provisioner has only Normal events), or a Warning about the
/// Job or one of its pods. Without any, a pod that has not started yet is only slow, and the
/// inspection would find no cause (a Waiting with no message and no timer). The pod watch wakes
/// the run when a cause appears or a pod mounting a claim is first seen, the Warning watch when
/// a Warning does (`step_pods`, `warnings`). None while the pod or Warning cache is not listed.
fn trouble_in_sight(ctx: &Context, namespace: &str, name: &str) -> Option<bool> {
    let leads = ctx.pods.start_leads(namespace, name)?;
    if leads.cause || leads.mounts_claims {
        return Some(true);
    }
    let objects = std::iter::once(("Job", name)).chain(leads.pods.iter().map(|p| ("Pod", p.as_str())));
    for (kind, object) in objects {
        if !ctx.warnings.about(namespace, kind, object, None)?.is_empty() {
            return Some(true);
        }
    }
    Some(false)
}

/// What the Job's pods, their Warnings and claims show; None while the Warning Events are not
/// listed yet. Errors: a pod LIST or claim GET failed.
async fn start_view(ctx: &Context, namespace: &str, job: &WatchedJob) -> Result<Option<StartView>, kube::Error> {
    let name = job.name_any();
    let pods = job_state::step_pods(ctx, namespace, &name).await?;
    let mut views = Vec::new();
    for pod in &pods {
        let mut view = pod_view(pod);
        if view.phase == "Pending" && view.unschedulable.is_none() {
            let Some(warnings) = ctx.warnings.about(namespace, "Pod", &pod.name_any(), None) else {
                return Ok(None);
            };
            view.warnings = warnings;
        }
        let scheduled = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        if view.phase == "Pending" && !scheduled {
            view.unbound_claims = unbound_claims(ctx, namespace, pod).await?;
        }
        views.push(view);
    }
    // No pod in the cache while the Job reports one active: the pod watch is behind, not the
    // Job controller refused it.
    let active = job.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    let create_failures = if views.is_empty() && active == 0 {
        let Some(failures) = ctx.warnings.about(namespace, "Job", &name, Some("FailedCreate")) else {
            return Ok(None);
        };
        failures.into_iter().map(|(_, message)| message).collect()
    } else {
        Vec::new()
    };
    Ok(Some(StartView {
        job_created_at: job.creation_timestamp(),
        pods: views,
        create_failures,
    }))
}

fn pod_view(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter().find(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
            })
        })
        .map(|c| c.message.clone().unwrap_or_default());
    let waiting = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .map(|w| {
            (
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default(),
            )
        });
    PodView {
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        unschedulable,
        waiting,
        warnings: Vec::new(),
        unbound_claims: Vec::new(),
    }
}

/// The pod's PersistentVolumeClaims that are not Bound, with their warnings.
async fn unbound_claims(ctx: &Context, namespace: &str, pod: &Pod) -> Result<Vec<ClaimView>, kube::Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    let names = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()));
    let mut unbound = Vec::new();
    for name in names {
        let phase = match api.get_opt(&name).await? {
            None => "not found".to_string(),
            Some(claim) => claim.status.and_then(|s| s.phase).unwrap_or_else(|| "Pending".into()),
        };
        if phase != "Bound" {
            let warnings = ctx.warnings.about(namespace, "PersistentVolumeClaim", &name, None);
            unbound.push(ClaimView {
                name,
                phase,
                warnings: warnings.unwrap_or_default(),
            });
        }
    }
    Ok(unbound)
}
