//! The run state machine: every phase change of a DagRun is decided here and nowhere else.
//!
//! ```text
//! Pending -> Queued -> Running -> Succeeded | Failed | Cancelled
//!    |          |                     Failed --(spec.retry raised)--> Running
//!    +----------+--> Failed (invalid) | Rejected (duplicate) | Cancelled
//! ```
//!
//! [`next`] is pure: no I/O, no clock (the time is a fact). Given what is known about a run it
//! either asks for one more fact ([`Need`]: the Dag, the duplicate claim, queue admission) or
//! returns the whole decision ([`Next`]): the next status, the Jobs to create and delete, the
//! events, the reactions and when to look again. The controller fetches what is asked and calls
//! again, so which facts are needed, in which order, is also decided here.
//!
//! Invariants kept here (tested in `run_tests.rs`):
//! - a terminal phase is final, except a Failed run whose `spec.retry` was raised;
//! - `finishedAt` is set exactly when the phase is terminal;
//! - a run ends Rejected only when the claim is held by another run;
//! - `cancel` ends every non-terminal phase Cancelled;
//! - the reactions of a finished run are derived from its status alone, on every pass, so a lost
//!   reaction (a failed claim release, a wake-up that never arrived) heals on the next pass.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Dag, DagRun, DagRunStatus, DagSpec, DuplicatePolicy, RunPhase, StepStatus};

use super::admit::{self, Refusal};
use super::call::{self, RunView, Spawn};
use super::plan::{self, JobState, Launch, Plan, PlanInput};
pub use super::workspace::WorkspaceClaim;
#[path = "run_effects.rs"]
mod effects;
use super::workspace::{self, Gate, RETRY_SECONDS as WORKSPACE_RETRY_SECONDS};
use super::{duplicates, retry};
pub use effects::{Reactions, RunEvent};

/// Characters of the hash shown in `kubectl get dagruns`.
pub const SHORT_HASH_LEN: usize = 12;
/// A queued run re-checks its place this often (seconds), besides being woken when a slot frees.
pub const QUEUE_REFRESH_SECONDS: u64 = 30;
/// A running run is planned again this often (seconds) without any event: a safety net only.
pub const RESYNC_SECONDS: u64 = 300;
/// Re-check interval (seconds) while the operator-wide Job cap holds steps back.
pub const JOB_CAP_RECHECK_SECONDS: u64 = 2;
/// The outcome of taking the duplicate claim of (namespace, Dag, paramHash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The run holds it (or holds it already).
    Held,
    /// Run `holder` holds it and still blocks under the policy.
    Duplicate { holder: String },
}

/// The queue's answer for a run that wants to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Start,
    /// Wait; `position` is 1-based among the runs of the same Dag waiting before it.
    Queue {
        position: usize,
        reason: String,
    },
}

/// What is known about one run.
pub struct RunFacts<'a> {
    pub run: &'a DagRun,
    pub now: Time,
    /// The run's Dag as currently stored: None = not looked up yet; Some(None) = not found.
    pub dag: Option<Option<&'a Dag>>,
    pub claim: Option<Claim>,
    pub admission: Option<Admission>,
    /// The outcome of creating the workspace claim; None = not tried in this pass.
    pub workspace: Option<WorkspaceClaim>,
    /// The state of a step Job, by name.
    pub jobs: &'a (dyn Fn(&str) -> JobState + Sync),
    /// How many more Jobs may start now across the operator (None = no cap).
    pub launch_budget: Option<usize>,
    pub missing_job_grace_seconds: i64,
    /// Other runs and Dags of the namespace, for `call` steps.
    pub runs: &'a dyn RunView,
}

/// A fact [`next`] needs before it can decide.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// Look up the run's Dag (cache, then API server).
    Dag,
    /// Take the claim of the Dag `dag` and `param_hash` (atomic; see `controller::claim`).
    Claim {
        dag: String,
        policy: DuplicatePolicy,
        param_hash: String,
    },
    /// Ask the queue whether the run may start under `max_active_runs` (0 = unlimited).
    Admission { max_active_runs: u32 },
    /// Create the run's workspace claim `claim` from `template` (`controller::workspace`).
    Workspace {
        claim: String,
        template: Box<k8s_openapi::api::core::v1::PersistentVolumeClaimSpec>,
    },
}

/// When to reconcile the run again without an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Requeue {
    /// After this many seconds.
    After(u64),
    /// After this many milliseconds (a step's `nextAttemptAt`, see [`retry::sooner`]).
    AfterMillis(u64),
    /// Only on a change of the run or its Jobs.
    #[default]
    OnChange,
}

/// The decision of one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Next {
    pub status: DagRunStatus,
    /// Jobs to create: `step` indexes `status.dag_spec.steps`.
    pub launch: Vec<Launch>,
    pub delete: Vec<String>,
    /// Child DagRuns to create (`call` steps) and own ones to cancel.
    pub spawn: Vec<Spawn>,
    pub cancel_runs: Vec<String>,
    pub events: Vec<RunEvent>,
    pub reactions: Reactions,
    pub requeue: Requeue,
}

pub enum Decision {
    Need(Need),
    Done(Box<Next>),
}

/// Decides the run's next state from `facts`, or names the fact still missing.
pub fn next(facts: &RunFacts<'_>) -> Decision {
    let status = facts.run.status.clone().unwrap_or_default();
    match status.phase {
        RunPhase::Pending => pending(facts, status),
        RunPhase::Queued => queued(facts, status),
        RunPhase::Running => round(facts, status, Vec::new()),
        _ => finished(facts, status),
    }
}

/// Re-plans after some Job creates of `next` were refused (`refused`: job name -> state, a
/// [`JobState::Refused`]); `created` are the Jobs whose create succeeded. The result may launch
/// further steps (e.g. dependants of a permanently refused step with `continueOnFailure`).
pub fn after_refusals(facts: &RunFacts<'_>, next: Next, refused: &[(String, JobState)], created: &[String]) -> Next {
    let lookup = |name: &str| {
        if let Some((_, state)) = refused.iter().find(|(n, _)| n == name) {
            state.clone()
        } else if created.iter().any(|n| n == name) {
            JobState::Active
        } else {
            (facts.jobs)(name)
        }
    };
    let replan = RunFacts {
        run: facts.run,
        now: facts.now.clone(),
        dag: facts.dag,
        claim: facts.claim.clone(),
        admission: facts.admission.clone(),
        workspace: facts.workspace.clone(),
        jobs: &lookup,
        launch_budget: facts.launch_budget,
        missing_job_grace_seconds: facts.missing_job_grace_seconds,
        runs: facts.runs,
    };
    let is_refused = |job: &str| refused.iter().any(|(n, _)| n == job);
    let events = next
        .events
        .into_iter()
        .filter(|e| !matches!(e, RunEvent::StepStarted { job, .. } if is_refused(job)))
        .collect();
    running(&replan, next.status, events)
}

fn done(next: Next) -> Decision {
    Decision::Done(Box::new(next))
}

/// Ends a waiting run that was cancelled (`when`: "before it started", "while queued"), or
/// asks for its Dag; else its Dag as found (None: missing).
fn cancelled_or_dag<'a>(facts: &RunFacts<'a>, status: &DagRunStatus, when: &str) -> Result<Option<&'a Dag>, Decision> {
    if facts.run.spec.cancel {
        let message = format!("cancelled {when}");
        return Err(done(end(
            facts,
            status.clone(),
            RunPhase::Cancelled,
            "Cancelled",
            &message,
        )));
    }
    facts.dag.ok_or(Decision::Need(Need::Dag))
}

fn pending(facts: &RunFacts<'_>, status: DagRunStatus) -> Decision {
    let dag = match cancelled_or_dag(facts, &status, "before it started") {
        Ok(dag) => dag,
        Err(decision) => return decision,
    };
    let namespace = facts.run.metadata.namespace.as_deref().unwrap_or_default();
    let admissible = match admit::check(facts.run, namespace, dag) {
        Ok(admissible) => admissible,
        Err(refusal) => {
            return done(end(
                facts,
                status,
                RunPhase::Failed,
                refusal.reason(),
                &refusal.to_string(),
            ));
        }
    };
    let dag = dag.expect("admit::check refuses a missing Dag");
    let dag_name = &facts.run.spec.dag_ref.name;
    if let Some(refusal) = claim_refusal(facts, dag_name, &dag.spec, &admissible.param_hash) {
        return match refusal {
            Ok(need) => Decision::Need(need),
            Err(refusal) => done(end(
                facts,
                status,
                RunPhase::Rejected,
                refusal.reason(),
                &refusal.to_string(),
            )),
        };
    }
    let Some(admission) = &facts.admission else {
        return Decision::Need(Need::Admission {
            max_active_runs: dag.spec.max_active_runs,
        });
    };
    let started = started_status(facts, status, &dag.spec, admissible);
    let note = format!(
        "requestId {}, paramHash {}",
        started.request_id.as_deref().unwrap_or_default(),
        started.param_hash.as_deref().unwrap_or_default()
    );
    let events = vec![RunEvent::Started { note }];
    match admission {
        Admission::Start => round(facts, started, events),
        Admission::Queue { position, reason } => {
            let mut queued = started;
            queued.phase = RunPhase::Queued;
            queued.reason = Some("Queued".into());
            queued.message = Some(queue_message(*position, reason));
            queued.started_at = None;
            done(settle(facts, queued, events, Requeue::OnChange))
        }
    }
}

/// None when the claim is held (or the policy needs none); else the fact to fetch, or the
/// refusal when another run holds the claim.
fn claim_refusal(facts: &RunFacts<'_>, dag: &str, spec: &DagSpec, hash: &str) -> Option<Result<Need, Refusal>> {
    let policy = spec.duplicate_policy;
    if policy == DuplicatePolicy::Allow {
        return None;
    }
    match &facts.claim {
        None => Some(Ok(Need::Claim {
            dag: dag.to_string(),
            policy,
            param_hash: hash.to_string(),
        })),
        Some(Claim::Held) => None,
        Some(Claim::Duplicate { holder }) => Some(Err(Refusal::duplicate_of(dag, holder, hash, policy))),
    }
}

/// The status a run starts with: its identity, resolved params and the captured Dag spec
/// (invariant 4).
fn started_status(
    facts: &RunFacts<'_>,
    status: DagRunStatus,
    spec: &DagSpec,
    admissible: admit::Admissible,
) -> DagRunStatus {
    let steps: Vec<StepStatus> = spec
        .all_steps()
        .map(|s| StepStatus {
            name: s.name.clone(),
            ..Default::default()
        })
        .collect();
    DagRunStatus {
        phase: RunPhase::Running,
        reason: Some("Started".into()),
        message: None,
        request_id: Some(request_id(facts.run, &status)),
        short_hash: Some(admissible.param_hash[..SHORT_HASH_LEN].to_string()),
        params: Some(admissible.params),
        param_hash: Some(admissible.param_hash),
        progress: Some(plan::progress(&steps, steps.len())),
        started_at: Some(facts.now.clone()),
        finished_at: None,
        observed_generation: facts.run.metadata.generation,
        conditions: Vec::new(),
        retries: facts.run.spec.retry,
        workspace_claim: status.workspace_claim.clone(),
        steps,
        outputs: Default::default(),
        dag_spec: Some(Arc::new(spec.clone())),
        creation_revision: status.creation_revision.clone().or_else(|| {
            // Never written before: the run's version is still the one of its create.
            facts
                .run
                .status
                .is_none()
                .then(|| facts.run.metadata.resource_version.clone())
                .flatten()
        }),
    }
}

/// `spec.requestId` if set (checked by [`admit::check`]), else the one already assigned, else the
/// run's UID (a UUIDv4 assigned by the API server). Deterministic, so Jobs created just before a
/// crash carry the same ID the restarted operator writes to the status.
fn request_id(run: &DagRun, status: &DagRunStatus) -> String {
    if !run.spec.request_id.is_empty() {
        return run.spec.request_id.clone();
    }
    status
        .request_id
        .clone()
        .or_else(|| run.metadata.uid.clone())
        .unwrap_or_default()
}

fn queue_message(position: usize, reason: &str) -> String {
    format!("queued at position {position}: {reason}")
}

fn queued(facts: &RunFacts<'_>, mut status: DagRunStatus) -> Decision {
    let dag = match cancelled_or_dag(facts, &status, "while queued") {
        Ok(dag) => dag,
        Err(decision) => return decision,
    };
    // The Dag's current limit, so raising it drains the queue; else the captured one.
    let max_active_runs = dag
        .map(|d| d.spec.max_active_runs)
        .or_else(|| status.dag_spec.as_deref().map(|s| s.max_active_runs))
        .unwrap_or(0);
    match &facts.admission {
        None => Decision::Need(Need::Admission { max_active_runs }),
        Some(Admission::Start) => {
            status.phase = RunPhase::Running;
            status.reason = Some("Started".into());
            status.message = None;
            status.started_at = Some(facts.now.clone());
            round(facts, status, Vec::new())
        }
        Some(Admission::Queue { position, reason }) => {
            status.message = Some(queue_message(*position, reason));
            done(settle(facts, status, Vec::new(), Requeue::After(QUEUE_REFRESH_SECONDS)))
        }
    }
}

/// One round of a Running run: its workspace claim first ([`workspace::gate`]), then planning.
fn round(facts: &RunFacts<'_>, mut status: DagRunStatus, events: Vec<RunEvent>) -> Decision {
    match workspace::gate(facts.run, &mut status, facts.workspace.as_ref()) {
        Gate::Proceed => done(running(facts, status, events)),
        Gate::Ask(need) => Decision::Need(need),
        Gate::Wait => done(settle(facts, status, events, Requeue::After(WORKSPACE_RETRY_SECONDS))),
        Gate::Fail(message) => done(end_with(facts, status, events, "WorkspaceRefused", &message)),
    }
}

/// One planning round of a Running run.
fn running(facts: &RunFacts<'_>, mut status: DagRunStatus, mut events: Vec<RunEvent>) -> Next {
    let Some(spec) = status.dag_spec.as_deref() else {
        return end_with(
            facts,
            status,
            events,
            "InternalError",
            "the run's captured Dag spec is missing from its status",
        );
    };
    let run_name = facts.run.metadata.name.as_deref().unwrap_or_default();
    let no_params = Default::default();
    let params = status.params.as_ref().unwrap_or(&no_params);
    let planned = plan::plan(&PlanInput {
        run_name,
        spec,
        params,
        recorded: &status.steps,
        job: facts.jobs,
        cancel: facts.run.spec.cancel,
        now: facts.now.clone(),
        launch_budget: facts.launch_budget,
        missing_job_grace_seconds: facts.missing_job_grace_seconds,
        calls: Some(plan::CallContext {
            run: facts.run,
            view: facts.runs,
        }),
    });
    let plan = match planned {
        Ok(plan) => plan,
        Err(err) => return end_with(facts, status, events, "InternalError", &err.to_string()),
    };
    step_events(&plan, spec, &mut events);
    // The spec is borrowed from the status, not cloned (this runs on every reconcile), so what
    // needs it is read before the status changes.
    let outputs = match &plan.outcome {
        Some(outcome) if outcome.phase == RunPhase::Succeeded && !spec.outputs.is_empty() => {
            let output = |s: &str, n: &str| {
                let step = plan.steps.iter().find(|x| x.name == s)?;
                step.outputs.get(n).cloned()
            };
            Some(call::run_outputs(spec, params, &output))
        }
        _ => None,
    };
    let requeue = match plan.recheck_after_seconds {
        Some(secs) => Requeue::After(secs.max(1) as u64),
        None if plan.held_by_job_cap() => Requeue::After(JOB_CAP_RECHECK_SECONDS),
        None => Requeue::After(RESYNC_SECONDS),
    };
    let requeue = retry::sooner(requeue, &plan, &facts.now);
    status.progress = Some(plan::progress(&plan.steps, plan.steps.len()));
    status.steps = plan.steps;
    status.observed_generation = facts.run.metadata.generation;
    if let Some(outputs) = outputs {
        status.outputs = outputs;
    }
    let mut next = match &plan.outcome {
        Some(outcome) => {
            let reason = outcome.phase.as_str();
            end_with_phase(facts, status, events, outcome.phase, reason, &outcome.message)
        }
        None => settle(facts, status, events, requeue),
    };
    next.launch = plan.launch;
    next.delete = plan.delete;
    next.spawn = plan.spawn;
    next.cancel_runs = plan.cancel_runs;
    next
}

fn step_events(plan: &Plan, spec: &DagSpec, events: &mut Vec<RunEvent>) {
    for t in &plan.transitions {
        let step = &plan.steps[t.step];
        if t.to.is_terminal() {
            events.push(RunEvent::StepEnded {
                step: step.name.clone(),
                job: step.job_name.clone(),
                phase: t.to,
                message: step.message.clone(),
            });
        }
    }
    for (i, message, permanent) in &plan.refused {
        events.push(RunEvent::StepRefused {
            step: spec.step_at(*i).name.clone(),
            message: message.clone(),
            permanent: *permanent,
        });
    }
    for launch in plan.launch.iter().filter(|l| l.item.is_none()) {
        events.push(RunEvent::StepStarted {
            step: spec.step_at(launch.step).name.clone(),
            attempt: launch.attempt,
            job: launch.job_name.clone(),
        });
    }
}

fn finished(facts: &RunFacts<'_>, mut status: DagRunStatus) -> Decision {
    let retry_requested = status.phase == RunPhase::Failed && facts.run.spec.retry > status.retries;
    if !retry_requested {
        if status.dag_spec.is_none() && facts.dag.is_none() {
            return Decision::Need(Need::Dag); // its TTL comes from the Dag
        }
        return done(settle(facts, status, Vec::new(), Requeue::OnChange));
    }
    status.retries = facts.run.spec.retry;
    if facts.run.spec.cancel {
        status.message = Some("retry refused: spec.cancel is set".into());
        return done(settle(facts, status, Vec::new(), Requeue::OnChange));
    }
    let (Some(spec), Some(hash)) = (status.dag_spec.clone(), status.param_hash.clone()) else {
        status.message = Some("retry refused: the run never started, so there is nothing to re-run".into());
        return done(settle(facts, status, Vec::new(), Requeue::OnChange));
    };
    let dag = facts.run.spec.dag_ref.name.clone();
    match claim_refusal(facts, &dag, &spec, &hash) {
        Some(Ok(need)) => Decision::Need(need),
        Some(Err(refusal)) => {
            status.message = Some(format!("retry refused: {refusal}"));
            done(settle(facts, status, Vec::new(), Requeue::OnChange))
        }
        None => {
            plan::reset_for_retry(&spec, &mut status.steps);
            status.phase = RunPhase::Running;
            status.reason = Some("Retried".into());
            status.message = Some(format!(
                "retry {}: re-running the failed and skipped steps",
                facts.run.spec.retry
            ));
            status.finished_at = None;
            let note = format!("retry {} of a failed run", facts.run.spec.retry);
            round(facts, status, vec![RunEvent::Started { note }])
        }
    }
}

fn end(facts: &RunFacts<'_>, status: DagRunStatus, phase: RunPhase, reason: &str, message: &str) -> Next {
    end_with_phase(facts, status, Vec::new(), phase, reason, message)
}

fn end_with(facts: &RunFacts<'_>, status: DagRunStatus, events: Vec<RunEvent>, reason: &str, message: &str) -> Next {
    end_with_phase(facts, status, events, RunPhase::Failed, reason, message)
}

/// Ends the run: terminal phase, reason, message and `finishedAt`, and the Ended event.
fn end_with_phase(
    facts: &RunFacts<'_>,
    mut status: DagRunStatus,
    mut events: Vec<RunEvent>,
    phase: RunPhase,
    reason: &str,
    message: &str,
) -> Next {
    debug_assert!(phase.is_terminal());
    status.phase = phase;
    status.reason = Some(reason.to_string());
    status.message = Some(message.to_string());
    status.finished_at = Some(facts.now.clone());
    status.observed_generation = facts.run.metadata.generation;
    events.push(RunEvent::Ended {
        phase,
        reason: reason.to_string(),
        message: message.to_string(),
    });
    settle(facts, status, events, Requeue::OnChange)
}

/// Completes a decision with the reactions its status implies and, for a finished run, the
/// TTL's requeue or deletion.
fn settle(facts: &RunFacts<'_>, status: DagRunStatus, events: Vec<RunEvent>, requeue: Requeue) -> Next {
    let old_phase = facts.run.status.as_ref().map(|s| s.phase);
    let mut reactions = Reactions {
        recount_dag: old_phase != Some(status.phase),
        ..Default::default()
    };
    let mut requeue = requeue;
    if status.phase.is_terminal() {
        let spec = status.dag_spec.as_deref();
        let policy = spec.map(|s| s.duplicate_policy);
        if let (Some(policy), Some(hash)) = (policy, &status.param_hash)
            && policy != DuplicatePolicy::Allow
            && !duplicates::blocks(policy, status.phase)
        {
            reactions.release_claim = Some((facts.run.spec.dag_ref.name.clone(), hash.clone()));
        }
        reactions.wake_waiting = spec.map_or(1, |s| s.max_active_runs.max(1) as usize);
        let ttl = spec
            .map(|s| s.ttl_seconds_after_finished)
            .or_else(|| facts.dag.flatten().map(|d| d.spec.ttl_seconds_after_finished))
            .unwrap_or(0);
        if ttl > 0 {
            let finished = status.finished_at.as_ref().map_or(facts.now.0, |t| t.0);
            let age = facts.now.0.duration_since(finished).as_secs().max(0) as u64;
            if age >= ttl {
                reactions.delete_run = true;
            } else {
                requeue = Requeue::After(ttl - age);
            }
        }
    }
    Next {
        status,
        events,
        reactions,
        requeue,
        ..Default::default()
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
