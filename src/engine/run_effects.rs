//! What a decision of the run state machine publishes and sets off besides its status: events
//! and reactions.

use crate::api::{RunPhase, StepPhase};

/// An event to publish on the run once its status is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    Started {
        note: String,
    },
    StepStarted {
        step: String,
        attempt: u32,
        job: String,
    },
    StepEnded {
        step: String,
        job: Option<String>,
        phase: StepPhase,
        message: Option<String>,
    },
    /// A Job create was refused (Warning); `permanent` failed the step, else it will be retried.
    StepRefused {
        step: String,
        message: String,
        permanent: bool,
    },
    Ended {
        phase: RunPhase,
        reason: String,
        message: String,
    },
}

/// Idempotent consequences of the run's state, redone on every pass while they apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reactions {
    /// Release the run's claim (Dag name, paramHash): it ended in a phase its policy no longer blocks.
    pub release_claim: Option<(String, String)>,
    /// The run is finished: wake this many waiting runs of its Dag (its freed slots).
    pub wake_waiting: usize,
    /// The phase changed: the Dag's counts are stale.
    pub recount_dag: bool,
    /// `ttlSecondsAfterFinished` has passed: delete the run.
    pub delete_run: bool,
}
