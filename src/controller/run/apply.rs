//! Applying a decision's Job changes: deletes, then creates in parallel. AlreadyExists is
//! success (invariant 2) unless the existing Job belongs to another object. A refused create is
//! not an error of the reconcile: it goes back into the state machine, which fails the step or
//! makes it wait ([`engine::refusal`]), so one bad step never holds back the rest of the run.

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::{Api, ResourceExt};

use crate::api::{DagRun, DagRunStatus, DagSpec, StepStatus};
use crate::engine::plan::{JobState, Launch};
use crate::engine::refusal;
use crate::engine::run::{self as machine, Next, RunFacts};

use super::super::error::{is_conflict, is_not_found};
use super::super::job_builder::{RunIdentity, build_job};
use super::super::job_state::{self, JobOwner};
use super::super::{Context, Error};

/// Job creates of one planning round in flight at once (a wide Dag's fan-out).
const PARALLEL_CREATES: usize = 16;

/// Deletes and creates the Jobs `next` names; re-plans while creates are refused.
pub async fn jobs(ctx: &Context, facts: &RunFacts<'_>, next: &mut Next) -> Result<(), Error> {
    let namespace = facts.run.namespace().unwrap_or_default();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in &next.delete {
        delete_job(ctx, &api, name).await?;
    }
    let mut created = Vec::new();
    while !next.launch.is_empty() {
        let Some(spec) = next.status.dag_spec.clone() else {
            break;
        };
        let target = Target {
            ctx,
            api: &api,
            run: facts.run,
            status: &next.status,
            spec: &spec,
        };
        // Collected first: the futures then have one concrete type, which the stream needs.
        let creates: Vec<_> = next.launch.iter().map(|l| target.create(l)).collect();
        let results: Vec<(String, Result<(), JobState>)> = futures::stream::iter(creates)
            .buffer_unordered(PARALLEL_CREATES)
            .collect()
            .await;
        let mut refused = Vec::new();
        for (job, result) in results {
            match result {
                Ok(()) => created.push(job),
                Err(state) => refused.push((job, state)),
            }
        }
        if refused.is_empty() {
            break;
        }
        *next = machine::after_refusals(facts, std::mem::take(next), &refused, &created);
    }
    Ok(())
}

/// What every Job create of one round shares.
struct Target<'a> {
    ctx: &'a Context,
    api: &'a Api<Job>,
    run: &'a DagRun,
    status: &'a DagRunStatus,
    spec: &'a DagSpec,
}

impl Target<'_> {
    /// Creates the Job of `launch`: its name, and Err with the refusal as the state machine sees it.
    async fn create(&self, launch: &Launch) -> (String, Result<(), JobState>) {
        (launch.job_name.clone(), self.try_create(launch).await)
    }

    async fn try_create(&self, launch: &Launch) -> Result<(), JobState> {
        let ctx = self.ctx;
        let namespace = self.run.namespace().unwrap_or_default();
        let uid = self.run.uid().unwrap_or_default();
        match job_state::cached_owner(ctx, &namespace, &launch.job_name, &uid) {
            JobOwner::Run => return Ok(()),
            JobOwner::Other => {
                return Err(JobState::Refused {
                    message: format!(
                        "Job {} still belongs to an earlier object with this run's name; waiting for its garbage collection",
                        launch.job_name
                    ),
                    permanent: false,
                });
            }
            JobOwner::Unknown => {}
        }
        let empty = Default::default();
        let identity = RunIdentity {
            run: self.run,
            dag_name: &self.run.spec.dag_ref.name,
            request_id: self.status.request_id.as_deref().unwrap_or_default(),
            param_hash: self.status.param_hash.as_deref().unwrap_or_default(),
            params: self.status.params.as_ref().unwrap_or(&empty),
            steps: &self.status.steps,
        };
        let job = build_job(
            &identity,
            self.spec,
            self.spec.step_at(launch.step),
            launch.attempt,
            &launch.job_name,
            launch.item.as_ref(),
        );
        match self.api.create(&PostParams::default(), &job).await {
            Ok(_) => {
                ctx.metrics.api_write("job_create");
                let latency = latency_since_ready(ctx, &namespace, self.spec, &self.status.steps, launch.step);
                ctx.metrics.step_launched(latency);
                Ok(())
            }
            Err(err) if is_conflict(&err) => Ok(()),
            Err(kube::Error::Api(status)) => {
                ctx.metrics.api_write("job_create_refused");
                Err(refusal::classify(status.code, &status.reason, &status.message))
            }
            Err(err) => Err(JobState::Refused {
                message: format!("the API server could not be reached: {err}"),
                permanent: false,
            }),
        }
    }
}

async fn delete_job(ctx: &Context, jobs: &Api<Job>, name: &str) -> Result<(), Error> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match jobs.delete(name, &params).await {
        Ok(_) => ctx.metrics.api_write("job_delete"),
        Err(err) if is_not_found(&err) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// Seconds between the moment the step became ready (its last dependency finished, as first
/// seen by the Job watch) and now; None for root steps.
fn latency_since_ready(
    ctx: &Context,
    namespace: &str,
    spec: &DagSpec,
    steps: &[StepStatus],
    step: usize,
) -> Option<f64> {
    let dependencies: Vec<_> = spec
        .step_at(step)
        .depends
        .iter()
        .filter_map(|d| steps.iter().find(|s| &s.name == d))
        .collect();
    let jobs: Vec<&str> = dependencies.iter().filter_map(|s| s.job_name.as_deref()).collect();
    if let Some(seen) = ctx.completions.last_finished(namespace, &jobs) {
        return Some(seen.elapsed().as_secs_f64());
    }
    let ready_at = dependencies
        .iter()
        .filter_map(|s| s.finished_at.as_ref())
        .map(|t| t.0)
        .max()?;
    Some(jiff::Timestamp::now().duration_since(ready_at).as_secs_f64().max(0.0))
}
