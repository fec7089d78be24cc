//! A schedule trigger's tick: decide with `engine::schedule`, then create (or replace) the run.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::api::{DagRun, DagTrigger, labels};
use crate::engine::schedule::{Schedule, TickAction, TickFacts, decide, ticks_with_runs};
use crate::engine::trigger::{schedule_variables, tick_run_name};
use crate::watch::submit::{RunTemplate, SubmitError};

use super::status::TriggerOutcome;
use crate::controller::Error;

/// Acts on the trigger's due tick, if any. Errors: only API failures (a bad schedule, a missing
/// Dag or bad params are reported in the outcome).
pub async fn act(
    client: &Client,
    trigger: &DagTrigger,
    runs: &[Arc<DagRun>],
    dag_exists: bool,
) -> Result<TriggerOutcome, Error> {
    let spec = trigger.spec.schedule.as_ref().expect("a schedule trigger");
    let mut outcome = TriggerOutcome::new(trigger, "schedule");
    let schedule = match Schedule::parse(&spec.cron, spec.time_zone.as_deref()) {
        Ok(s) => s,
        Err(e) => return Ok(outcome.failing("InvalidSchedule", e.to_string(), Duration::from_secs(300))),
    };
    let now = Timestamp::now();
    let active: Vec<&Arc<DagRun>> = runs.iter().filter(|r| !r.phase().is_terminal()).collect();
    let mut facts = TickFacts {
        created: trigger.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now),
        last_schedule: trigger
            .status
            .as_ref()
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0),
        now,
        starting_deadline_seconds: spec.starting_deadline_seconds,
        policy: spec.concurrency_policy,
        active_runs: active.len(),
        suspended: trigger.spec.suspend,
    };
    let run_of = |tick: Timestamp| tick_run_name(&trigger.name_any(), tick.as_second());
    let existing: HashSet<String> = runs.iter().map(|r| r.name_any()).collect();
    let unrecorded = ticks_with_runs(&schedule, &facts, |tick| existing.contains(&run_of(tick)));
    if let Some(&latest) = unrecorded.ticks.last() {
        facts.last_schedule = Some(latest);
        outcome.tick = Some(latest);
        outcome.skipped = unrecorded.skipped;
        outcome.recovered_runs = unrecorded.ticks.into_iter().map(run_of).collect();
    }
    let decision = decide(&schedule, &facts);
    outcome.requeue = decision
        .next_tick
        .map(|t| Duration::from_secs((t.as_second() - now.as_second()).max(0) as u64 + 1))
        .unwrap_or(Duration::from_secs(300));
    outcome.scanned = Some(now);
    match decision.action {
        TickAction::Idle | TickAction::Hold { .. } => Ok(outcome.ok(dag_exists)),
        TickAction::Skip { tick, skipped } => {
            outcome.tick = Some(tick);
            outcome.skipped += skipped;
            Ok(outcome.ok(dag_exists))
        }
        TickAction::Run { .. } if !dag_exists => {
            let message = format!(
                "Dag {:?} not found in namespace {:?}",
                trigger.spec.dag_ref.name,
                trigger.namespace().unwrap_or_default()
            );
            Ok(outcome.failing("DagMissing", message, Duration::from_secs(10)))
        }
        TickAction::Run { tick, replace, skipped } => {
            let api: Api<DagRun> = Api::namespaced(client.clone(), &trigger.namespace().unwrap_or_default());
            if replace {
                cancel(&api, &active).await?;
            }
            let template = RunTemplate {
                trigger: trigger.name_any(),
                dag: trigger.spec.dag_ref.name.clone(),
                params: trigger.spec.params.clone(),
                source_kind: "schedule",
            };
            let name = run_of(tick);
            let time = format!("{tick:.0}");
            match template.submit(&api, &name, "", &schedule_variables(&time)).await {
                Ok(_) => {
                    outcome.tick = Some(tick);
                    outcome.skipped += skipped;
                    outcome.submitted_run = Some(name);
                    Ok(outcome.ok(dag_exists))
                }
                Err(SubmitError::Api { source, .. }) => Err(Error::Kube(source)),
                Err(e @ SubmitError::Params(_)) => {
                    Ok(outcome.failing("InvalidParams", e.to_string(), Duration::from_secs(300)))
                }
                Err(e @ SubmitError::Refused { reason, .. }) => {
                    Ok(outcome.failing(reason, e.to_string(), Duration::from_secs(30)))
                }
            }
        }
    }
}

/// `Replace`: cancels the trigger's active runs (they end Cancelled).
async fn cancel(api: &Api<DagRun>, active: &[&Arc<DagRun>]) -> Result<(), Error> {
    for run in active {
        let patch = json!({"spec": {"cancel": true}});
        match api
            .patch(&run.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(Error::Kube(e)),
        }
        tracing::info!(run = %run.name_any(), label = labels::TRIGGER, "cancelled by the next tick (Replace)");
    }
    Ok(())
}
