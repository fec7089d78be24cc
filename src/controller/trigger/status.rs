//! A trigger's status: what one reconcile found and did ([`TriggerOutcome`]), folded into the
//! previous status and written through the status subresource with the trigger's
//! resourceVersion as precondition (a stale cache gets a 409 and retries; nothing counts twice).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

use crate::api::{DagRun, DagTrigger, DagTriggerStatus, RunPhase};
use crate::watch::stats::WatcherStats;

use crate::controller::Error;

/// Failed runs remembered so each is counted once (a run deleted later was counted already).
const FAILED_RUNS_KEPT: usize = 100;

/// What one reconcile found and did.
#[derive(Clone, Debug)]
pub struct TriggerOutcome {
    pub source: &'static str,
    /// When to look again.
    pub requeue: Duration,
    /// When the source was looked at.
    pub scanned: Option<Timestamp>,
    /// The tick acted on (run or skipped).
    pub tick: Option<Timestamp>,
    /// Ticks skipped by this decision.
    pub skipped: u64,
    /// The run created (or found existing) for the tick.
    pub submitted_run: Option<String>,
    /// Runs of earlier ticks found existing but not counted (their status write was lost),
    /// oldest first.
    pub recovered_runs: Vec<String>,
    /// The error's cause and message; None when the pass was clean.
    pub error: Option<(&'static str, String)>,
    /// Reason of a clean `Ready` condition (`Active`, `Suspended`).
    pub ready_reason: &'static str,
    /// A directory or bucket trigger: its watcher's last report, whose counts and times
    /// `status` shows as they are (the watcher counts, the operator copies: nothing twice).
    pub watched: Option<WatcherStats>,
}

impl TriggerOutcome {
    /// An outcome with nothing done yet.
    pub fn new(trigger: &DagTrigger, source: &'static str) -> TriggerOutcome {
        TriggerOutcome {
            source,
            requeue: Duration::from_secs(60),
            scanned: None,
            tick: None,
            skipped: 0,
            submitted_run: None,
            recovered_runs: Vec::new(),
            error: None,
            ready_reason: if trigger.spec.suspend { "Suspended" } else { "Active" },
            watched: None,
        }
    }

    /// The pass failed for `reason` (a condition reason, e.g. `DagMissing`).
    pub fn failing(mut self, reason: &'static str, message: String, requeue: Duration) -> TriggerOutcome {
        self.error = Some((reason, message));
        self.requeue = requeue;
        self
    }

    /// The pass was clean; a missing Dag is still reported.
    pub fn ok(self, dag_exists: bool) -> TriggerOutcome {
        if self.error.is_none() && !dag_exists {
            let requeue = self.requeue;
            self.failing("DagMissing", "the trigger's Dag does not exist".into(), requeue)
        } else {
            self
        }
    }
}

/// Folds `outcome` and the trigger's runs into its status and writes it when it changed.
pub async fn write(
    client: &Client,
    trigger: &DagTrigger,
    runs: &[Arc<DagRun>],
    outcome: TriggerOutcome,
) -> Result<(), Error> {
    let old = trigger.status.clone().unwrap_or_default();
    let next = fold(&old, trigger, runs, &outcome);
    if next == old {
        return Ok(());
    }
    let mut object = trigger.clone();
    object.status = Some(next);
    object.metadata.managed_fields = None;
    let api: Api<DagTrigger> = Api::namespaced(client.clone(), &trigger.namespace().unwrap_or_default());
    api.replace_status(&trigger.name_any(), &PostParams::default(), &object)
        .await?;
    Ok(())
}

/// The next status (pure).
fn fold(old: &DagTriggerStatus, trigger: &DagTrigger, runs: &[Arc<DagRun>], o: &TriggerOutcome) -> DagTriggerStatus {
    let mut s = old.clone();
    s.source = Some(o.source.to_string());
    s.observed_generation = trigger.metadata.generation;
    if let Some(t) = o.scanned {
        // Whole seconds: a status write per reconcile only when something moved.
        s.last_scan_time = Some(Time(Timestamp::from_second(t.as_second()).unwrap_or(t)));
    }
    if let Some(tick) = o.tick {
        s.last_schedule_time = Some(Time(tick));
        s.skipped += o.skipped;
    }
    if let Some(run) = o.recovered_runs.last() {
        s.submitted += o.recovered_runs.len() as u64;
        s.last_run = Some(run.clone());
        s.last_submit_time = runs
            .iter()
            .find(|r| r.name_any() == *run)
            .and_then(|r| r.creation_timestamp());
    }
    if let Some(run) = &o.submitted_run {
        s.submitted += 1;
        s.last_run = Some(run.clone());
        s.last_submit_time = o.scanned.map(Time);
    }
    if let Some(w) = &o.watched {
        let time = |t: Option<i64>| t.and_then(|t| Timestamp::from_second(t).ok()).map(Time);
        s.submitted = w.submitted;
        s.skipped = w.skipped;
        s.last_scan_time = time(w.last_scan).or(s.last_scan_time);
        s.last_submit_time = time(w.last_submit).or(s.last_submit_time);
        s.last_run = w.last_run.clone().or(s.last_run);
    }
    for run in runs.iter().filter(|r| r.phase() == RunPhase::Failed) {
        let name = run.name_any();
        if !s.failed_runs.contains(&name) {
            s.failed += 1;
            s.failed_runs.push(name);
        }
    }
    let excess = s.failed_runs.len().saturating_sub(FAILED_RUNS_KEPT);
    s.failed_runs.drain(..excess);
    s.last_error = o.error.as_ref().map(|(reason, message)| format!("{reason}: {message}"));
    let (status, reason, message) = match &o.error {
        Some((reason, message)) => ("False", *reason, message.clone()),
        None => (
            "True",
            o.ready_reason,
            format!("{} trigger is {}", o.source, o.ready_reason.to_lowercase()),
        ),
    };
    let previous = old.conditions.iter().find(|c| c.type_ == "Ready");
    let unchanged = previous.filter(|c| c.status == status && c.reason == reason && c.message == message);
    s.conditions = vec![Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: trigger.metadata.generation,
        last_transition_time: unchanged
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(o.scanned.unwrap_or_else(Timestamp::now))),
    }];
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DagRunStatus;

    fn run(name: &str, phase: RunPhase) -> Arc<DagRun> {
        let mut r = DagRun::new(name, Default::default());
        r.status = Some(DagRunStatus {
            phase,
            ..Default::default()
        });
        Arc::new(r)
    }

    #[test]
    fn counts_ticks_and_each_failed_run_once() {
        let trigger = DagTrigger::new("t", Default::default());
        let mut o = TriggerOutcome::new(&trigger, "schedule");
        o.scanned = Some(Timestamp::UNIX_EPOCH);
        o.tick = Some(Timestamp::UNIX_EPOCH);
        o.skipped = 2;
        o.submitted_run = Some("t-1".into());
        let runs = [run("t-0", RunPhase::Failed), run("t-1", RunPhase::Running)];
        let once = fold(&DagTriggerStatus::default(), &trigger, &runs, &o);
        assert_eq!((once.submitted, once.skipped, once.failed), (1, 2, 1));
        assert_eq!(once.conditions[0].reason, "Active");
        let quiet = TriggerOutcome::new(&trigger, "schedule");
        let twice = fold(&once, &trigger, &runs, &quiet);
        assert_eq!((twice.submitted, twice.skipped, twice.failed), (1, 2, 1));
        let broken = quiet.failing("DagMissing", "Dag \"d\" not found".into(), Duration::ZERO);
        let failing = fold(&twice, &trigger, &runs, &broken);
        assert_eq!(failing.last_error.as_deref(), Some("DagMissing: Dag \"d\" not found"));
        assert_eq!(failing.conditions[0].status, "False");
        let mut lost_write = TriggerOutcome::new(&trigger, "schedule");
        lost_write.tick = Some(Timestamp::UNIX_EPOCH);
        lost_write.recovered_runs = vec!["t-0".into()];
        lost_write.submitted_run = Some("t-1".into());
        let recovered = fold(&DagTriggerStatus::default(), &trigger, &runs, &lost_write);
        assert_eq!((recovered.submitted, recovered.skipped), (2, 0));
        assert_eq!(recovered.last_run.as_deref(), Some("t-1"));
    }
}
