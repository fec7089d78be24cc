//! Whether a failed attempt is retried, and when: `steps[].retry` (`limit`, `backoff`,
//! `onExitCodes`). Pure; the planner applies the verdict.
//!
//! Rules:
//! - An attempt is retried while the attempts made since the run's last retry (`n`) are at most
//!   `limit` (so `limit` extra attempts after the first).
//! - A failure is the program's when its container ended with an exit code. Failures that are not
//!   the program's (the pod was evicted or preempted, its node went away, it could not be created
//!   or could not start: a Failed Job without an exit code, or [`JobState::CannotStart`]) are
//!   always retried within `limit`, whatever `onExitCodes` says, and their message says so.
//! - With `onExitCodes` set, a program failure is retried only if its exit code is listed; a
//!   timeout (`timeoutSeconds`) has no exit code of the program's choosing and is not retried.
//! - With `backoff`, attempt n+1 is due [`delay_seconds`]`(backoff, n)` after attempt n ended;
//!   without it (or with a zero delay) it starts as soon as the failure is seen.
//!
//! [`JobState::CannotStart`]: super::plan::JobState::CannotStart

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Backoff, RetryPolicy};

use super::plan::{HoldReason, Plan};
use super::run::Requeue;

/// The message of a Job that failed for its step's `timeoutSeconds` (set by the Job reader).
pub const TIMED_OUT: &str = "timed out (timeoutSeconds exceeded)";

/// The longest delay between two attempts when `maxDelaySeconds` is not set (one day, seconds).
pub const MAX_DELAY_SECONDS: i64 = 86_400;

/// Who failed an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The program exited with this code.
    Program { exit_code: i32 },
    /// The attempt exceeded the step's `timeoutSeconds`.
    TimedOut,
    /// Not the program: the pod was evicted, lost with its node, or never started.
    NotTheProgram,
}

impl Failure {
    /// Classifies a failed attempt from its exit code (None: the container never reported one)
    /// and its message.
    pub fn of(exit_code: Option<i32>, message: &str) -> Failure {
        if message.starts_with(TIMED_OUT) {
            return Failure::TimedOut;
        }
        match exit_code {
            Some(exit_code) => Failure::Program { exit_code },
            None => Failure::NotTheProgram,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Launch the next attempt `delay_seconds` (>= 0) after this one ended.
    Retry { delay_seconds: i64 },
    /// The step fails; `why` says why a retry was not made, when `limit` was not the reason.
    GiveUp { why: Option<String> },
}

/// The verdict for a failure after `n` (>= 1) attempts since the run's last retry.
pub fn decide(policy: Option<&RetryPolicy>, n: u32, failure: Failure) -> Verdict {
    let Some(policy) = policy.filter(|p| n <= p.limit) else {
        return Verdict::GiveUp { why: None };
    };
    if !policy.on_exit_codes.is_empty() {
        let why = match failure {
            Failure::Program { exit_code } if !policy.on_exit_codes.contains(&exit_code) => Some(format!(
                "exit code {exit_code} is not in retry.onExitCodes {:?}",
                policy.on_exit_codes
            )),
            Failure::TimedOut => Some("a timeout is not retried when retry.onExitCodes is set".to_string()),
            _ => None,
        };
        if why.is_some() {
            return Verdict::GiveUp { why };
        }
    }
    let delay_seconds = policy.backoff.as_ref().map_or(0, |b| delay_seconds(b, n));
    Verdict::Retry { delay_seconds }
}

/// Seconds between the end of attempt `n` (>= 1) and the start of attempt n+1:
/// `delaySeconds * factor^(n-1)` rounded up, at most `maxDelaySeconds` (or
/// [`MAX_DELAY_SECONDS`]), never negative.
pub fn delay_seconds(backoff: &Backoff, n: u32) -> i64 {
    let cap = backoff
        .max_delay_seconds
        .unwrap_or(MAX_DELAY_SECONDS)
        .clamp(0, MAX_DELAY_SECONDS);
    let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    let delay = backoff.delay_seconds.max(0) as f64 * backoff.factor.max(1.0).powi(exponent);
    if delay.is_finite() && delay < cap as f64 {
        (delay.ceil() as i64).min(cap)
    } else {
        cap
    }
}

/// The step's message after failed attempt `attempt`: the failure, and for one that was not the
/// program's, that it was retried as such.
pub fn failure_message(attempt: u32, failure: Failure, message: &str, retried: bool) -> String {
    match (failure, retried) {
        (Failure::NotTheProgram, true) => {
            format!("attempt {attempt} failed, not by the program (retried regardless of retry.onExitCodes): {message}")
        }
        _ if retried || attempt > 1 => format!("attempt {attempt} failed: {message}"),
        _ => message.to_string(),
    }
}

/// `requeue`, or sooner: exactly when the earliest step `plan` holds back for its next attempt
/// ([`HoldReason::NotBefore`]) is due, when that falls before it. The planner counts whole
/// seconds, which would wake the run early, then up to a second late.
pub fn sooner(requeue: Requeue, plan: &Plan, now: &Time) -> Requeue {
    match (millis_until_due(plan, now), requeue) {
        (Some(ms), Requeue::After(secs)) if ms < secs * 1000 => Requeue::AfterMillis(ms),
        (Some(ms), Requeue::AfterMillis(old)) if ms < old => Requeue::AfterMillis(ms),
        _ => requeue,
    }
}

/// Milliseconds (>= 1) from `now` until the earliest next attempt `plan` holds back; None when
/// it holds none.
fn millis_until_due(plan: &Plan, now: &Time) -> Option<u64> {
    let due = plan
        .held_back
        .iter()
        .filter_map(|h| match &h.reason {
            HoldReason::NotBefore(due) => Some(due.0),
            _ => None,
        })
        .min()?;
    Some(due.duration_since(now.0).as_millis().max(1) as u64)
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
