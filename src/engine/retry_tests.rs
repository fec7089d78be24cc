use super::*;
use proptest::prelude::*;

fn backoff(delay: i64, factor: f64, max: Option<i64>) -> Backoff {
    Backoff {
        delay_seconds: delay,
        factor,
        max_delay_seconds: max,
    }
}

fn policy(limit: u32, codes: &[i32], backoff: Option<Backoff>) -> RetryPolicy {
    RetryPolicy {
        limit,
        backoff,
        on_exit_codes: codes.to_vec(),
    }
}

#[test]
fn delays_grow_by_the_factor_and_stop_at_the_cap() {
    let b = backoff(3, 2.0, Some(20));
    let delays: Vec<i64> = (1..=5).map(|n| delay_seconds(&b, n)).collect();
    assert_eq!(delays, [3, 6, 12, 20, 20]);
    assert_eq!(delay_seconds(&backoff(5, 1.0, None), 7), 5, "factor 1: constant");
    assert_eq!(delay_seconds(&backoff(1, 1.5, None), 2), 2, "1.5 s rounds up");
    assert_eq!(delay_seconds(&backoff(0, 3.0, None), 4), 0);
    assert_eq!(delay_seconds(&backoff(10, 10.0, None), 90), MAX_DELAY_SECONDS);
}

#[test]
fn listed_codes_are_retried_and_others_not() {
    let p = policy(3, &[3, 75], Some(backoff(2, 2.0, None)));
    assert_eq!(
        decide(Some(&p), 2, Failure::Program { exit_code: 3 }),
        Verdict::Retry { delay_seconds: 4 }
    );
    match decide(Some(&p), 1, Failure::Program { exit_code: 4 }) {
        Verdict::GiveUp { why: Some(why) } => {
            assert_eq!(why, "exit code 4 is not in retry.onExitCodes [3, 75]")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decide(Some(&p), 1, Failure::TimedOut),
        Verdict::GiveUp { why: Some(_) }
    ));
    assert_eq!(
        decide(Some(&p), 1, Failure::NotTheProgram),
        Verdict::Retry { delay_seconds: 2 }
    );
}

#[test]
fn without_codes_everything_is_retried_within_the_limit() {
    let p = policy(1, &[], None);
    assert_eq!(
        decide(Some(&p), 1, Failure::Program { exit_code: 9 }),
        Verdict::Retry { delay_seconds: 0 }
    );
    assert_eq!(
        decide(Some(&p), 1, Failure::TimedOut),
        Verdict::Retry { delay_seconds: 0 }
    );
    assert_eq!(
        decide(Some(&p), 2, Failure::NotTheProgram),
        Verdict::GiveUp { why: None }
    );
    assert_eq!(decide(None, 1, Failure::NotTheProgram), Verdict::GiveUp { why: None });
}

#[test]
fn failures_are_classified_by_exit_code_and_timeout() {
    assert_eq!(
        Failure::of(Some(3), "exit code 3 (Error)"),
        Failure::Program { exit_code: 3 }
    );
    assert_eq!(Failure::of(None, "the pod was evicted"), Failure::NotTheProgram);
    assert_eq!(Failure::of(Some(137), TIMED_OUT), Failure::TimedOut);
    let m = failure_message(1, Failure::NotTheProgram, "evicted", true);
    assert!(m.starts_with("attempt 1 failed, not by the program"), "{m}");
    assert_eq!(
        failure_message(1, Failure::Program { exit_code: 2 }, "exit code 2", false),
        "exit code 2"
    );
    assert_eq!(failure_message(2, Failure::TimedOut, "t", false), "attempt 2 failed: t");
}

proptest! {
    /// The formula, its cap and its monotonicity, for any valid policy.
    #[test]
    fn delay_follows_the_formula_within_its_cap(
        delay in 0i64..10_000, factor in 1.0f64..10.0, max in proptest::option::of(0i64..200_000), n in 1u32..200,
    ) {
        let b = backoff(delay, factor, max);
        let cap = max.unwrap_or(MAX_DELAY_SECONDS).min(MAX_DELAY_SECONDS);
        let got = delay_seconds(&b, n);
        prop_assert!((0..=cap).contains(&got), "{} not in 0..={}", got, cap);
        prop_assert!(got <= delay_seconds(&b, n + 1), "not monotonic at {}", n);
        let exact = delay as f64 * factor.powi(n as i32 - 1);
        if exact < cap as f64 {
            prop_assert!((got as f64) >= exact && (got as f64) < exact + 1.0, "{} vs {}", got, exact);
        } else {
            prop_assert_eq!(got, cap);
        }
    }

    /// A retry is made only within the limit, and a listed code is always retried within it.
    #[test]
    fn retries_stay_within_the_limit(
        limit in 0u32..5, n in 1u32..8, code in 1i32..256, codes in proptest::collection::vec(1i32..256, 0..4),
        program in any::<bool>(),
    ) {
        let p = policy(limit, &codes, None);
        let failure = if program { Failure::Program { exit_code: code } } else { Failure::NotTheProgram };
        let verdict = decide(Some(&p), n, failure);
        let listed = codes.is_empty() || codes.contains(&code) || !program;
        prop_assert_eq!(matches!(verdict, Verdict::Retry { .. }), n <= limit && listed);
    }
}

// --- the planner applying the verdicts -------------------------------------------------------

mod planner {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use crate::api::{Backoff, DagSpec, RetryPolicy, StepPhase};
    use crate::engine::graph::tests::{spec, step};
    use crate::engine::plan::tests::{plan_with, t};
    use crate::engine::plan::{HoldReason, JobState, Plan};

    fn retrying(limit: u32, codes: &[i32], backoff: Option<Backoff>) -> DagSpec {
        let mut s = step("fit", &[]);
        s.retry = Some(Box::new(RetryPolicy {
            limit,
            backoff,
            on_exit_codes: codes.to_vec(),
        }));
        spec(vec![s, step("after", &["fit"])])
    }

    fn failed(at: i64, exit_code: Option<i32>) -> JobState {
        JobState::Failed {
            finished_at: Some(t(at)),
            exit_code,
            message: match exit_code {
                Some(c) => format!("exit code {c} (Error)"),
                None => "the pod was taken away: EvictionByEvictionAPI".into(),
            },
        }
    }

    /// Fails the current attempt of step 0 at `at` and plans at `now`.
    fn fail_attempt(spec: &DagSpec, p: &Plan, at: i64, now: i64, exit_code: Option<i32>) -> Plan {
        let job = p.steps[0].job_name.clone().unwrap();
        plan_with(spec, &p.steps, &HashMap::from([(job, failed(at, exit_code))]), now)
    }

    #[test]
    fn a_backoff_holds_the_step_pending_until_next_attempt_at_then_launches_a_new_attempt() {
        let s = retrying(
            2,
            &[],
            Some(Backoff {
                delay_seconds: 3,
                factor: 2.0,
                max_delay_seconds: None,
            }),
        );
        let first = plan_with(&s, &[], &HashMap::new(), 0);
        let waiting = fail_attempt(&s, &first, 10, 11, Some(1));
        let fit = &waiting.steps[0];
        assert_eq!(fit.phase, StepPhase::Pending);
        assert_eq!(fit.next_attempt_at, Some(t(13)), "3 s after the attempt ended");
        assert_eq!(fit.finished_at, Some(t(10)));
        assert_eq!(fit.exit_code, Some(1));
        let m = fit.message.as_deref().unwrap();
        assert!(
            m.starts_with("attempt 1 failed: exit code 1 (Error); attempt 2 due at"),
            "{m}"
        );
        assert!(waiting.launch.is_empty());
        assert_eq!(waiting.held_back[0].reason, HoldReason::NotBefore(t(13)));
        assert_eq!(waiting.recheck_after_seconds, Some(2));
        assert!(waiting.outcome.is_none(), "the run goes on");

        let early = plan_with(&s, &waiting.steps, &HashMap::new(), 12);
        assert!(early.launch.is_empty());
        let due = plan_with(&s, &waiting.steps, &HashMap::new(), 13);
        assert_eq!(due.launch.len(), 1);
        assert_eq!(due.launch[0].attempt, 2);
        assert_eq!(due.steps[0].phase, StepPhase::Running);
        assert_eq!(due.steps[0].next_attempt_at, None);

        // Attempt 2 fails: the delay doubles; attempt 3 fails: the limit is reached.
        let second = fail_attempt(&s, &due, 20, 20, Some(1));
        assert_eq!(second.steps[0].next_attempt_at, Some(t(26)));
        let third = plan_with(&s, &second.steps, &HashMap::new(), 26);
        assert_eq!(third.launch[0].attempt, 3);
        let last = fail_attempt(&s, &third, 30, 30, Some(1));
        assert_eq!(last.steps[0].phase, StepPhase::Failed);
        assert_eq!(last.steps[1].phase, StepPhase::Skipped);
        assert_eq!(last.outcome.unwrap().phase, crate::api::RunPhase::Failed);
    }

    #[test]
    fn unlisted_exit_codes_fail_and_pod_failures_retry_regardless() {
        let s = retrying(3, &[3], None);
        let first = plan_with(&s, &[], &HashMap::new(), 0);
        let evicted = fail_attempt(&s, &first, 5, 5, None);
        assert_eq!(evicted.launch[0].attempt, 2, "not the program's: retried");
        let m = evicted.steps[0].message.as_deref().unwrap();
        assert!(
            m.contains("not by the program") && m.contains("EvictionByEvictionAPI"),
            "{m}"
        );
        let listed = fail_attempt(&s, &evicted, 6, 6, Some(3));
        assert_eq!(listed.launch[0].attempt, 3, "a listed code: retried");
        let other = fail_attempt(&s, &listed, 7, 7, Some(4));
        assert!(other.launch.is_empty());
        assert_eq!(other.steps[0].phase, StepPhase::Failed);
        assert_eq!(
            other.steps[0].message.as_deref(),
            Some("attempt 3 failed: exit code 4 (Error); not retried: exit code 4 is not in retry.onExitCodes [3]")
        );
    }

    proptest! {
        /// Whatever the failures and the planning times, attempt n+1 is never launched before
        /// attempt n ended plus the formula's delay, never twice, and never beyond the limit.
        #[test]
        fn attempts_never_start_before_their_backoff(
            delay in 0i64..5, factor in 1.0f64..3.0, limit in 0u32..4,
            gaps in proptest::collection::vec(0i64..4, 30),
        ) {
            let b = Backoff { delay_seconds: delay, factor, max_delay_seconds: Some(20) };
            let s = retrying(limit, &[], Some(b.clone()));
            let mut now = 0;
            let mut p = plan_with(&s, &[], &HashMap::new(), now);
            let mut ended: Option<i64> = None;
            let mut launches = p.launch.len();
            for gap in gaps {
                now += gap;
                let running = p.steps[0].phase == StepPhase::Running;
                p = if running {
                    // The attempt fails the moment we look.
                    ended = Some(now);
                    fail_attempt(&s, &p, now, now, Some(1))
                } else {
                    plan_with(&s, &p.steps, &HashMap::new(), now)
                };
                for l in p.launch.iter().filter(|l| l.step == 0) {
                    launches += 1;
                    prop_assert_eq!(l.attempt as usize, launches, "attempts are consecutive");
                    let want = super::delay_seconds(&b, l.attempt - 1);
                    prop_assert!(now >= ended.unwrap() + want, "attempt {} at {} < {} + {}", l.attempt, now, ended.unwrap(), want);
                }
                prop_assert!(launches <= limit as usize + 1);
                if p.steps[0].phase == StepPhase::Failed {
                    prop_assert_eq!(launches, limit as usize + 1);
                }
            }
        }
    }
}
