//! The cron source of a `DagTrigger`, with Kubernetes CronJob semantics, as a pure function of
//! (schedule, last tick acted on, active runs, now).
//!
//! - The due tick is the most recent tick after `lastScheduleTime` (or the trigger's creation)
//!   and at or before now: ticks missed while the operator was down give at most one catch-up run,
//!   for the latest of them.
//! - With `startingDeadlineSeconds`, a tick more than that late is missed, not run; the ticks
//!   passed over without a run are counted as skipped when the next tick is acted on.
//! - `Forbid` holds a due tick while a run of the trigger is active: it runs when the run ends if
//!   still inside the deadline (as the CronJob documentation says), else it is skipped.
//!   `Replace` cancels the active runs and runs the tick; `Allow` just runs it.
//!
//! One run per tick across restarts comes from the tick's deterministic run name
//! (`engine::trigger::tick_run_name`): a second create of the same tick is AlreadyExists. A tick
//! whose run exists but was not recorded (the operator stopped between the create and the status
//! write) is found by [`ticks_with_runs`] and counted as submitted, not skipped.

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::api::ConcurrencyPolicy;

/// Ticks counted as skipped at most, per decision (a trigger suspended for years stays cheap).
const MAX_COUNTED: u64 = 1000;

/// A parsed `spec.schedule`.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

/// A `spec.schedule` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("spec.schedule.cron {cron:?}: {reason}")]
    Cron { cron: String, reason: String },
    #[error("spec.schedule.timeZone {zone:?}: not an IANA time zone ({reason})")]
    TimeZone { zone: String, reason: String },
}

impl Schedule {
    /// Parses a five-field cron expression (or `@hourly`-style nickname) in time zone `zone`
    /// (IANA name; None = UTC). Errors name the field and the value.
    pub fn parse(cron: &str, zone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let parsed = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .build()
            .parse(cron)
            .map_err(|e| ScheduleError::Cron {
                cron: cron.to_string(),
                reason: e.to_string(),
            })?;
        let tz = match zone {
            None | Some("") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| ScheduleError::TimeZone {
                zone: name.to_string(),
                reason: e.to_string(),
            })?,
        };
        Ok(Schedule { cron: parsed, tz })
    }

    /// The first tick strictly after `t`, if any.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(self.tz.clone());
        self.cron
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The latest tick in `(after, upto]`, and how many ticks that interval holds before it
    /// (counted up to [`MAX_COUNTED`]).
    fn latest_in(&self, after: Timestamp, upto: Timestamp) -> Option<(Timestamp, u64)> {
        let zoned = upto.to_zoned(self.tz.clone());
        let latest = self.cron.find_previous_occurrence(&zoned, true).ok()?.timestamp();
        if latest <= after {
            return None;
        }
        let mut earlier = 0;
        let mut t = after;
        while let Some(next) = self.next_after(t) {
            if next >= latest || earlier >= MAX_COUNTED {
                break;
            }
            earlier += 1;
            t = next;
        }
        Some((latest, earlier))
    }
}

/// What the schedule knows at one reconcile.
#[derive(Clone, Debug)]
pub struct TickFacts {
    /// The trigger's creation time: ticks before it never count.
    pub created: Timestamp,
    /// `status.lastScheduleTime`: the last tick acted on.
    pub last_schedule: Option<Timestamp>,
    pub now: Timestamp,
    pub starting_deadline_seconds: Option<i64>,
    pub policy: ConcurrencyPolicy,
    /// Runs of this trigger not yet in a terminal phase.
    pub active_runs: usize,
    pub suspended: bool,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TickAction {
    /// Nothing is due.
    Idle,
    /// Create the run of tick `tick`; first cancel the active runs if `replace`. `skipped` ticks
    /// before it were passed over.
    Run {
        tick: Timestamp,
        replace: bool,
        skipped: u64,
    },
    /// Tick `tick` is due but a run is active under `Forbid`: look again when it ends.
    Hold { tick: Timestamp },
    /// Ticks up to `tick` were missed (suspended, or past the deadline): record `tick` as acted on
    /// and count `skipped`.
    Skip { tick: Timestamp, skipped: u64 },
}

/// The decision, and the next time to look (the next tick after now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickDecision {
    pub action: TickAction,
    pub next_tick: Option<Timestamp>,
}

/// Decides what the schedule does at `facts.now` (see the module docs for the rules).
pub fn decide(schedule: &Schedule, facts: &TickFacts) -> TickDecision {
    let next_tick = schedule.next_after(facts.now);
    let action = match schedule.latest_in(last_acted(facts), facts.now) {
        None => TickAction::Idle,
        Some((tick, earlier)) => {
            let too_late = facts
                .starting_deadline_seconds
                .is_some_and(|d| tick + SignedDuration::from_secs(d) < facts.now);
            if facts.suspended || too_late {
                TickAction::Skip {
                    tick,
                    skipped: earlier + 1,
                }
            } else if facts.active_runs > 0 && facts.policy == ConcurrencyPolicy::Forbid {
                TickAction::Hold { tick }
            } else {
                TickAction::Run {
                    tick,
                    replace: facts.active_runs > 0 && facts.policy == ConcurrencyPolicy::Replace,
                    skipped: earlier,
                }
            }
        }
    };
    TickDecision { action, next_tick }
}

/// Ticks after the last one acted on that were acted on without a record: see
/// [`ticks_with_runs`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unrecorded {
    /// Ticks whose run exists, oldest first.
    pub ticks: Vec<Timestamp>,
    /// Ticks before the latest of them that have no run: passed over by the same lost decisions.
    pub skipped: u64,
}

/// The ticks after the last one acted on and at or before now whose run exists already
/// (`has_run(tick)`); at most [`MAX_COUNTED`] ticks are looked at. Such a run was created for
/// its tick, but the status write recording it was lost (the operator stopped in between): the
/// caller counts it as submitted, the ticks without a run before it as skipped, and takes the
/// latest as `last_schedule` before [`decide`], so no tick is run again or counted twice.
pub fn ticks_with_runs(schedule: &Schedule, facts: &TickFacts, has_run: impl Fn(Timestamp) -> bool) -> Unrecorded {
    let mut found = Unrecorded::default();
    let mut without_run = 0;
    let mut t = last_acted(facts);
    for _ in 0..MAX_COUNTED {
        match schedule.next_after(t) {
            Some(next) if next <= facts.now => {
                if has_run(next) {
                    found.ticks.push(next);
                    found.skipped += without_run;
                    without_run = 0;
                } else {
                    without_run += 1;
                }
                t = next;
            }
            _ => break,
        }
    }
    found
}

/// The last tick acted on: `lastScheduleTime`, never before the trigger's creation.
fn last_acted(facts: &TickFacts) -> Timestamp {
    facts.last_schedule.unwrap_or(facts.created).max(facts.created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn facts(now: &str, last: Option<&str>) -> TickFacts {
        TickFacts {
            created: ts("2026-01-01T00:00:30Z"),
            last_schedule: last.map(ts),
            now: ts(now),
            starting_deadline_seconds: None,
            policy: ConcurrencyPolicy::Allow,
            active_runs: 0,
            suspended: false,
        }
    }

    fn every_minute() -> Schedule {
        Schedule::parse("* * * * *", None).unwrap()
    }

    #[test]
    fn bad_expressions_and_zones_name_the_field() {
        let err = Schedule::parse("61 * * * *", None).unwrap_err().to_string();
        assert!(err.contains("spec.schedule.cron \"61 * * * *\""), "{err}");
        let err = Schedule::parse("* * * * *", Some("Mars/Olympus"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("spec.schedule.timeZone \"Mars/Olympus\""), "{err}");
        assert!(Schedule::parse("0 0 * * * *", None).is_err(), "six fields are refused");
        assert!(Schedule::parse("@hourly", Some("Europe/Madrid")).is_ok());
    }

    #[test]
    fn the_time_zone_moves_the_ticks() {
        let madrid = Schedule::parse("0 9 * * *", Some("Europe/Madrid")).unwrap();
        assert_eq!(
            madrid.next_after(ts("2026-07-01T00:00:00Z")),
            Some(ts("2026-07-01T07:00:00Z"))
        );
        assert_eq!(
            madrid.next_after(ts("2026-01-01T00:00:00Z")),
            Some(ts("2026-01-01T08:00:00Z"))
        );
    }

    #[test]
    fn a_due_tick_runs_once_and_then_nothing_until_the_next() {
        let d = decide(&every_minute(), &facts("2026-01-01T00:01:10Z", None));
        assert_eq!(
            d.action,
            TickAction::Run {
                tick: ts("2026-01-01T00:01:00Z"),
                replace: false,
                skipped: 0
            }
        );
        assert_eq!(d.next_tick, Some(ts("2026-01-01T00:02:00Z")));
        let again = decide(
            &every_minute(),
            &facts("2026-01-01T00:01:50Z", Some("2026-01-01T00:01:00Z")),
        );
        assert_eq!(again.action, TickAction::Idle);
    }

    #[test]
    fn missed_ticks_give_one_catch_up_or_none_past_the_deadline() {
        let mut f = facts("2026-01-01T00:10:05Z", Some("2026-01-01T00:01:00Z"));
        assert_eq!(
            decide(&every_minute(), &f).action,
            TickAction::Run {
                tick: ts("2026-01-01T00:10:00Z"),
                replace: false,
                skipped: 8
            }
        );
        f.starting_deadline_seconds = Some(3);
        assert_eq!(
            decide(&every_minute(), &f).action,
            TickAction::Skip {
                tick: ts("2026-01-01T00:10:00Z"),
                skipped: 9
            }
        );
    }

    #[test]
    fn forbid_holds_replace_replaces() {
        let mut f = facts("2026-01-01T00:02:01Z", Some("2026-01-01T00:01:00Z"));
        f.active_runs = 1;
        f.policy = ConcurrencyPolicy::Forbid;
        assert_eq!(
            decide(&every_minute(), &f).action,
            TickAction::Hold {
                tick: ts("2026-01-01T00:02:00Z")
            }
        );
        f.policy = ConcurrencyPolicy::Replace;
        assert!(matches!(
            decide(&every_minute(), &f).action,
            TickAction::Run { replace: true, .. }
        ));
    }

    #[test]
    fn a_tick_whose_run_exists_unrecorded_counts_as_submitted_not_skipped() {
        let schedule = every_minute();
        let mut f = facts("2026-01-01T00:05:10Z", None);
        let existing = [ts("2026-01-01T00:02:00Z"), ts("2026-01-01T00:03:00Z")];
        let found = ticks_with_runs(&schedule, &f, |t| existing.contains(&t));
        assert_eq!(found.ticks, existing);
        assert_eq!(found.skipped, 1, "00:01 was passed over before 00:02 ran");
        f.last_schedule = found.ticks.last().copied();
        assert_eq!(
            decide(&schedule, &f).action,
            TickAction::Run {
                tick: ts("2026-01-01T00:05:00Z"),
                replace: false,
                skipped: 1
            },
            "00:04 is the decision's to skip, not the recovery's"
        );
        f.last_schedule = Some(ts("2026-01-01T00:04:00Z"));
        assert_eq!(
            ticks_with_runs(&schedule, &f, |_| true).ticks,
            [ts("2026-01-01T00:05:00Z")],
            "ticks already recorded are not looked at"
        );
        assert_eq!(ticks_with_runs(&schedule, &f, |_| false), Unrecorded::default());
    }

    proptest! {
        /// Replaying decisions minute by minute (as a restarted operator would, from status alone)
        /// acts on every tick exactly once, whatever the reconcile times.
        #[test]
        fn each_tick_is_acted_on_once(offsets in proptest::collection::vec(1i64..200, 1..40)) {
            let schedule = every_minute();
            let mut f = facts("2026-01-01T00:00:31Z", None);
            let (mut runs, mut skipped_total) = (0u64, 0u64);
            for offset in offsets {
                f.now += SignedDuration::from_secs(offset);
                let (tick, skipped, ran) = match decide(&schedule, &f).action {
                    TickAction::Run { tick, skipped, .. } => (tick, skipped, 1),
                    TickAction::Skip { tick, skipped } => (tick, skipped, 0),
                    TickAction::Idle | TickAction::Hold { .. } => continue,
                };
                prop_assert!(f.last_schedule.is_none_or(|l| tick > l));
                prop_assert!(tick <= f.now);
                runs += ran;
                skipped_total += skipped;
                f.last_schedule = Some(tick);
            }
            if let Some(last) = f.last_schedule {
                let minutes = (last.as_second() - ts("2026-01-01T00:00:00Z").as_second()) / 60;
                prop_assert_eq!(runs + skipped_total, minutes as u64);
            }
        }
    }
}
