//! The Kubernetes side of kubedag: reconcilers for `DagRun` and `Dag`, the Jobs they launch,
//! status writes, events and metrics.
//!
//! Data flows one way: watch event -> load run + its Jobs from the caches -> `engine::plan` ->
//! apply the actions (create/delete Jobs) -> write status.
//!
//! Invariants (see also `engine`):
//! 1. Reconcile is level-triggered and idempotent: everything is derived from the DagRun (spec,
//!    status) and the Jobs it owns, never from process memory. Killing the operator at any instant
//!    loses nothing.
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
mod dag_reconciler;
mod error;
mod events;
mod gate;
mod job_builder;
mod job_state;
pub mod leader;
pub mod metrics;
mod operator;
mod own_writes;
mod run;
pub mod server;
mod status;

pub use context::{Context, DEFAULT_CONCURRENCY, DEFAULT_POD_START_TIMEOUT_SECONDS, OperatorConfig};
pub use error::Error;
pub use events::EventLevel;
pub use gate::Caps;
pub use operator::run;
