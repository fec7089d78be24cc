//! The Kubernetes side of kubedag: it observes runs, their Jobs and claims, hands the facts to
//! the pure state machine (`engine::run`), and applies what it decides.
//!
//! File map (imports only go down this list, never up or around in a circle):
//! - `run/`: the DagRun reconcile, top to bottom: `observe` (step Jobs, pods), `apply` (Job
//!   creates/deletes), `react` (events and reactions), and `mod.rs` tying them together;
//! - `dag_reconciler`: a Dag's `Valid` condition, counts and the history limit;
//! - `claim`: the atomic duplicate claim (a Lease per Dag + paramHash);
//! - `gate`: queue admission (maxActiveRuns FIFO, operator caps) and the Job budget;
//! - `job_builder`: the Job of one step attempt; `job_state`: a Job read back;
//! - `trigger/`: the DagTrigger reconcile (schedule ticks, status of every source);
//! - `workspace`: the run's workspace claim (`spec.workspace`), created before its first Job;
//! - `status`: the status write; `events`: Kubernetes Events; `metrics`: Prometheus metrics;
//! - `context`: shared state and settings; `own_writes`, `completions`: small caches;
//! - `step_pods`: the step pods by Job (a pod watch); `warnings`: Warning Events by object (a
//!   watch); both wake a run whose step's pod does not start when its cause changes;
//!   `watched`: pods and Jobs as their watches decode them (only what is read); `listed`: an
//!   index fed by a watch, answered once listed; `shared_specs`: one copy of each captured Dag
//!   spec in the run cache;
//! - `error`: the reconcile error.
//!
//! The process around them (caches, controllers, servers, leader election) is `crate::runtime`.
//!
//! Invariants (see also `engine`):
//! 1. Reconcile is level-triggered and idempotent: everything is derived from the DagRun (spec,
//!    status) and the Jobs it owns, never from process memory. Killing the operator at any instant
//!    loses nothing. (Process memory only caches: `gate`, `own_writes`, `released_claims`.)
//! 2. Every object the operator creates has a deterministic name; AlreadyExists means "already done".
//! 3. A step is launched only after all its dependencies reached a terminal phase; at most once per attempt.
//! 4. A run executes the Dag spec captured in its status when it started.
//! 5. Status is written only by the controller, through the status subresource, with the object's
//!    resourceVersion as precondition, so no update is lost (a conflict retries from fresh state).
//! 6. One run never reads or writes another run's Jobs: Jobs are found by deterministic name and
//!    must carry the run's UID as controller owner.
//! 7. Status stays small: compact per-step entries, nothing grows without bound.

mod claim;
mod completions;
mod context;
pub(crate) mod dag_reconciler;
mod error;
mod events;
mod gate;
mod job_builder;
mod job_state;
mod listed;
pub mod metrics;
mod own_writes;
pub(crate) mod run;
pub(crate) mod shared_specs;
mod status;
pub(crate) mod step_pods;
pub mod trigger;
pub(crate) mod warnings;
pub(crate) mod watched;
mod workspace;

pub(crate) use completions::Completions;
pub use context::{
    Context, DEFAULT_CONCURRENCY, DEFAULT_POD_START_TIMEOUT_SECONDS, EventLevel, OperatorConfig, WatcherSettings,
};
pub use error::Error;
pub use gate::Caps;
pub(crate) use gate::Gate;
pub(crate) use metrics::Metrics;
