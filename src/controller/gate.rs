//! Admission of runs into Running and of step Jobs into the cluster, under the Dag's
//! `maxActiveRuns` (FIFO by creation) and the operator-wide caps.
//!
//! Creation order: `metadata.creationTimestamp` has a resolution of one second, so runs created
//! within the same second are ordered by their creation revision: the `resourceVersion` a run
//! had when the operator first saw it (recorded as `status.creationRevision`; before that, the
//! run's own `resourceVersion`). The API server assigns resource versions from etcd's revision,
//! which grows with every write, so for runs not modified before they started this is the order
//! of their creates. Ties left after that (never seen in practice) go by name.
//!
//! Decisions read the caches. A cache lags the operator's own writes by a few milliseconds, so
//! the gate also remembers, for a short while, the runs it let start and the Jobs it let launch
//! that the cache does not show yet; decisions are taken under one lock. This memory only
//! prevents over-admission during that lag: after a restart the caches, filled from the API
//! server, hold the whole truth again (invariant 1).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{DagRun, DagSpec, RunPhase};
use crate::engine::plan::JobState;
pub use crate::engine::run::Admission;

use super::watched::WatchedJob;

/// How long a decision is remembered while waiting for the cache to show it.
const REMEMBER: Duration = Duration::from_secs(60);

/// Operator-wide caps; 0 = unlimited.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    pub max_running_runs: usize,
    pub max_running_jobs: usize,
}

#[derive(Default)]
struct Ledger {
    started: HashMap<ObjectRef<DagRun>, Instant>,
    /// Runs that ended whose end the cache may not show yet.
    finished: HashMap<ObjectRef<DagRun>, Instant>,
    launched: HashMap<(String, String), Instant>,
}

#[derive(Default)]
pub struct Gate {
    pub caps: Caps,
    ledger: Mutex<Ledger>,
}

fn same_dag(a: &DagRun, b: &DagRun) -> bool {
    a.spec.dag_ref.name == b.spec.dag_ref.name && a.namespace() == b.namespace()
}

/// The FIFO key of the module docs: creation time, creation revision, name.
fn creation_order(run: &DagRun) -> (Option<jiff::Timestamp>, u64, String) {
    let recorded = run.status.as_ref().and_then(|s| s.creation_revision.as_deref());
    let revision = match (&run.status, recorded) {
        (_, Some(rev)) => Some(rev),
        (None, None) => run.metadata.resource_version.as_deref(),
        (Some(_), None) => None,
    };
    let revision = revision.and_then(|r| r.parse().ok()).unwrap_or(u64::MAX);
    (run.creation_timestamp().map(|t| t.0), revision, run.name_any())
}

fn waits_to_start(run: &DagRun) -> bool {
    matches!(run.phase(), RunPhase::Pending | RunPhase::Queued)
}

/// `runs` sorted by the FIFO key.
fn in_creation_order(mut runs: Vec<Arc<DagRun>>) -> Vec<Arc<DagRun>> {
    runs.sort_by_cached_key(|r| creation_order(r));
    runs
}

fn created_before(a: &DagRun, b: &DagRun) -> bool {
    creation_order(a) < creation_order(b)
}

impl Gate {
    pub fn new(caps: Caps) -> Gate {
        Gate {
            caps,
            ledger: Mutex::default(),
        }
    }

    /// Whether `run` may start now, given its Dag's `max_active_runs` (0 = unlimited).
    pub fn admit_run(&self, runs: &Store<DagRun>, run: &DagRun, max_active_runs: u32) -> Admission {
        if max_active_runs == 0 && self.caps.max_running_runs == 0 {
            return Admission::Start;
        }
        let me = ObjectRef::from_obj(run);
        let all = runs.state();
        let mut ledger = self.ledger.lock().expect("gate lock");
        let now = Instant::now();
        // Forget decisions the cache now shows (or that are too old to matter).
        ledger.started.retain(|key, at| {
            let cache_caught_up = runs
                .get(key)
                .is_none_or(|r| r.phase() == RunPhase::Running || r.phase().is_terminal());
            now.duration_since(*at) < REMEMBER && !cache_caught_up
        });
        ledger.finished.retain(|key, at| {
            let cache_caught_up = runs.get(key).is_none_or(|r| r.phase().is_terminal());
            now.duration_since(*at) < REMEMBER && !cache_caught_up
        });
        if ledger.started.contains_key(&me) {
            return Admission::Start;
        }
        let not_yet_seen = |r: &DagRun| ledger.started.contains_key(&ObjectRef::from_obj(r));
        let ended = |r: &DagRun| ledger.finished.contains_key(&ObjectRef::from_obj(r));
        let is_running = |r: &DagRun| (r.phase() == RunPhase::Running && !ended(r)) || not_yet_seen(r);
        let is_waiting = |r: &DagRun| matches!(r.phase(), RunPhase::Pending | RunPhase::Queued) && !not_yet_seen(r);
        if max_active_runs > 0 {
            let running = all.iter().filter(|r| same_dag(r, run) && is_running(r)).count();
            let ahead = all
                .iter()
                .filter(|r| same_dag(r, run) && is_waiting(r) && created_before(r, run))
                .count();
            if running + ahead >= max_active_runs as usize {
                let reason = format!(
                    "maxActiveRuns {max_active_runs} of Dag {:?} reached",
                    run.spec.dag_ref.name
                );
                return Admission::Queue {
                    position: ahead + 1,
                    reason,
                };
            }
        }
        if self.caps.max_running_runs > 0 {
            let running = all.iter().filter(|r| is_running(r)).count();
            if running >= self.caps.max_running_runs {
                let ahead = all
                    .iter()
                    .filter(|r| same_dag(r, run) && is_waiting(r) && created_before(r, run))
                    .count();
                let reason = format!(
                    "the operator-wide cap of {} running DagRuns is reached",
                    self.caps.max_running_runs
                );
                return Admission::Queue {
                    position: ahead + 1,
                    reason,
                };
            }
        }
        ledger.started.insert(me, now);
        Admission::Start
    }

    /// Runs `plan_with_budget` with how many more Jobs may launch (None = no cap) and records the
    /// Jobs it decides to launch, all under the gate's lock so concurrent reconciles share the cap.
    pub fn with_job_budget<T>(
        &self,
        jobs: &Store<WatchedJob>,
        plan_with_budget: impl FnOnce(Option<usize>) -> (T, Vec<(String, String)>),
    ) -> T {
        if self.caps.max_running_jobs == 0 {
            return plan_with_budget(None).0;
        }
        let mut ledger = self.ledger.lock().expect("gate lock");
        let now = Instant::now();
        ledger.launched.retain(|(ns, name), at| {
            now.duration_since(*at) < REMEMBER && jobs.get(&ObjectRef::new(name).within(ns)).is_none()
        });
        let active = jobs.state().iter().filter(|j| j.state() == JobState::Active).count();
        let budget = self
            .caps
            .max_running_jobs
            .saturating_sub(active + ledger.launched.len());
        let (result, launched) = plan_with_budget(Some(budget));
        for key in launched {
            ledger.launched.insert(key, now);
        }
        result
    }

    /// Whether any run can wait for a slot: a Dag limit (captured in `spec`) or an operator cap.
    pub fn may_queue(&self, spec: Option<&DagSpec>) -> bool {
        self.caps.max_running_runs > 0 || spec.is_some_and(|s| s.max_active_runs > 0)
    }

    /// Remembers that `run` ended, until the cache shows it.
    pub fn note_finished(&self, run: &DagRun) {
        let mut ledger = self.ledger.lock().expect("gate lock");
        ledger.finished.insert(ObjectRef::from_obj(run), Instant::now());
    }

    /// The runs to wake when a slot frees after `finished` ends: the oldest waiting runs of the same
    /// Dag (and, with an operator-wide cap, the oldest waiting runs overall).
    pub fn next_in_line(&self, runs: &Store<DagRun>, finished: &DagRun, how_many: usize) -> Vec<ObjectRef<DagRun>> {
        let waiting = in_creation_order(runs.state().into_iter().filter(|r| waits_to_start(r)).collect());
        let mut wake: Vec<ObjectRef<DagRun>> = waiting
            .iter()
            .filter(|r| same_dag(r, finished))
            .take(how_many)
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect();
        if self.caps.max_running_runs > 0 {
            wake.extend(waiting.iter().take(how_many).map(|r| ObjectRef::from_obj(r.as_ref())));
        }
        wake
    }
}

/// Of one Dag's runs (`dag_runs`), the ones to wake for the slots its `max_active_runs` leaves free
/// besides its `running` runs: the oldest waiting ones. None with no Dag limit (0): then only an
/// operator cap can hold them, and a run's end wakes for that. A slot also frees when a running
/// run is deleted or the limit is raised, and neither ends a run.
pub fn free_slots_of_dag(dag_runs: &[Arc<DagRun>], max_active_runs: u32, running: usize) -> Vec<ObjectRef<DagRun>> {
    let free = (max_active_runs as usize).saturating_sub(running);
    if free == 0 {
        return Vec::new();
    }
    in_creation_order(dag_runs.iter().filter(|r| waits_to_start(r)).cloned().collect())
        .iter()
        .take(free)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec, DagRunStatus};
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher;
    use proptest::prelude::*;

    fn run(name: &str, created_second: i64, revision: u64, phase: Option<RunPhase>) -> DagRun {
        let mut run = DagRun::new(
            name,
            DagRunSpec {
                dag_ref: DagRef { name: "d".into() },
                ..Default::default()
            },
        );
        run.metadata.namespace = Some("ns".into());
        run.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::from_second(1_700_000_000 + created_second).unwrap(),
        ));
        run.metadata.resource_version = Some(revision.to_string());
        run.status = phase.map(|phase| DagRunStatus {
            phase,
            creation_revision: Some(revision.to_string()),
            ..Default::default()
        });
        run
    }

    fn put(writer: &mut Writer<DagRun>, run: &DagRun) {
        writer.apply_watcher_event(&watcher::Event::Apply(run.clone()));
    }

    #[test]
    fn within_one_second_the_creation_revision_decides_not_the_name() {
        let (store, mut writer) = reflector::store();
        // Same second; "b" was created first (lower revision), "a" after it.
        let a = run("a", 0, 20, None);
        let b = run("b", 0, 10, Some(RunPhase::Queued));
        put(&mut writer, &a);
        put(&mut writer, &b);
        let gate = Gate::new(Caps::default());
        assert!(matches!(
            gate.admit_run(&store, &a, 1),
            Admission::Queue { position: 2, .. }
        ));
        assert_eq!(gate.admit_run(&store, &b, 1), Admission::Start);
        let finished = run("done", -5, 1, Some(RunPhase::Succeeded));
        assert_eq!(
            gate.next_in_line(&store, &finished, 2),
            vec![ObjectRef::from_obj(&b), ObjectRef::from_obj(&a)]
        );
    }

    #[test]
    fn free_slots_of_a_dag_wake_its_oldest_waiting_runs_and_no_more() {
        let queued: Vec<DagRun> = (0..4)
            .map(|i| run(&format!("q{i}"), i, 10 + i as u64, Some(RunPhase::Queued)))
            .collect();
        // In no particular order, with the running run among them.
        let dag_runs: Vec<Arc<DagRun>> = queued
            .iter()
            .rev()
            .chain([&run("running", -5, 2, Some(RunPhase::Running))])
            .map(|r| Arc::new(r.clone()))
            .collect();
        let oldest = |n: usize| queued[..n].iter().map(ObjectRef::from_obj).collect::<Vec<_>>();
        // The limit raised from 1 to 3 beside one running run: two slots.
        assert_eq!(free_slots_of_dag(&dag_runs, 3, 1), oldest(2));
        // The running run deleted under a limit of 1: one slot.
        assert_eq!(free_slots_of_dag(&dag_runs, 1, 0), oldest(1));
        assert!(free_slots_of_dag(&dag_runs, 1, 1).is_empty());
        assert!(free_slots_of_dag(&dag_runs, 0, 0).is_empty(), "no Dag limit");
    }

    proptest! {
        /// Whatever order runs ask in and finish in, never more than `maxActiveRuns` run at once,
        /// a run starts only while the runs created before it that still wait fit in the free
        /// slots beside it, and with one slot they start exactly in creation order.
        #[test]
        fn queued_runs_start_in_fifo_order_within_max_active_runs(
            count in 2usize..12,
            max in 1u32..4,
            asks in proptest::collection::vec(any::<u16>(), 1..200),
        ) {
            let (store, mut writer) = reflector::store();
            let mut runs: Vec<DagRun> = (0..count)
                .map(|i| run(&format!("r{}", count - i), (i / 3) as i64, 100 + i as u64, Some(RunPhase::Queued)))
                .collect();
            for r in &runs {
                put(&mut writer, r);
            }
            let gate = Gate::new(Caps::default());
            let mut started = Vec::new();
            for ask in asks {
                let i = ask as usize % count;
                let phase = runs[i].status.as_ref().unwrap().phase;
                if phase == RunPhase::Running && ask % 3 == 0 {
                    runs[i].status.as_mut().unwrap().phase = RunPhase::Succeeded;
                } else if phase == RunPhase::Queued && gate.admit_run(&store, &runs[i], max) == Admission::Start {
                    let phase_of = |r: &DagRun| r.status.as_ref().unwrap().phase;
                    let running = runs.iter().filter(|r| phase_of(r) == RunPhase::Running).count();
                    let waiting_ahead = runs[..i].iter().filter(|r| phase_of(r) == RunPhase::Queued).count();
                    prop_assert!(running + waiting_ahead < max as usize, "run {} jumped the queue", i);
                    runs[i].status.as_mut().unwrap().phase = RunPhase::Running;
                    started.push(i);
                }
                put(&mut writer, &runs[i]);
                let running = runs.iter().filter(|r| r.status.as_ref().unwrap().phase == RunPhase::Running).count();
                prop_assert!(running <= max as usize);
            }
            if max == 1 {
                let in_order: Vec<usize> = (0..started.len()).collect();
                prop_assert_eq!(started, in_order);
            }
        }
    }
}
