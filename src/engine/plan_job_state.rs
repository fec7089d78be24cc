//! What the planner is told about a step attempt's Job (or child run), and the waiting rules
//! that go with it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What the step's Job for its current attempt says.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// No such Job is known (not created yet, not yet seen by the cache, or deleted by hand).
    Missing,
    /// Created and not finished.
    Active,
    Succeeded {
        finished_at: Option<Time>,
        exit_code: Option<i32>,
        /// The container's termination message (its `$KUBEDAG_OUTPUTS` file), when the step
        /// declares outputs and its pod could be read; None otherwise.
        outputs: Option<String>,
    },
    Failed {
        finished_at: Option<Time>,
        exit_code: Option<i32>,
        message: String,
    },
    /// Created and not finished, but its pod is not running yet: it waits for capacity, or for a
    /// cause that may still clear (an image pull error within the start bound). `message` says
    /// what it waits for (None: nothing worth showing yet); plan again after `recheck_after_seconds`,
    /// or (None) only when a watch event says something changed.
    Waiting {
        message: Option<String>,
        recheck_after_seconds: Option<i64>,
    },
    /// The attempt's pod can never start, or did not start within the bound (image pull errors,
    /// invalid image names, pods the API server refuses to create, missing config): the attempt
    /// failed before the program ran. The Job is still active and must be deleted.
    CannotStart { message: String },
    /// The API server (or an admission plugin) refused to create the Job. `permanent`: the object
    /// is invalid and will never be accepted; otherwise the cause may clear (a quota, a policy).
    Refused { message: String, permanent: bool },
    /// A `call` step's child DagRun `run` (its own or a reused one) succeeded with `outputs`.
    RunSucceeded {
        finished_at: Option<Time>,
        run: String,
        outputs: BTreeMap<String, String>,
    },
}

/// Prefix of a step's message while it waits ([`JobState::Waiting`], a refused create); such a
/// message is cleared once the pod runs.
pub const WAITING_PREFIX: &str = "waiting ";

/// Seconds before the next create after the `n`th consecutive refusal that may clear
/// (n >= 1): 5, 10, 20, 40, then 60 at most, so a cleared quota is noticed within a minute.
pub fn refusal_backoff_seconds(n: u32) -> i64 {
    (5_i64 << n.saturating_sub(1).min(4)).min(60)
}
