//! The pure core of kubedag: no Kubernetes client, no async, no clock.
//!
//! - [`params`] does parameter resolution, the canonical JSON form and its SHA-256 hash.
//! - [`validate`] does checks of a Dag spec and of names (messages name the step or field).
//! - [`duplicates`] does the duplicate-parameter rule of each `duplicatePolicy`.
//! - [`expand`] does kubedag's `$(name)` references and the `$` escaping for Kubernetes.
//! - [`graph`] does dependency order of the steps.
//! - [`naming`] does deterministic names of the objects the operator creates.
//! - [`outputs`] does parsing of the `NAME=value` lines a step writes to `$KUBEDAG_OUTPUTS`.
//! - [`references`] does finding and checking of `$(steps.S.outputs.N)` and the other ways a step
//!   reads another's outputs or state, and which steps a step may read.
//! - [`when`] does compiling and evaluating of `steps[].when` CEL conditions.
//! - [`settings`] does the merge of a step's container and pod settings over the defaults.
//! - [`retry`] does whether and when a failed attempt is retried (`retry.backoff`, `onExitCodes`).
//! - [`workspace`] does how a run's workspace claim appears in its step pods.
//! - [`call`] does which child run a `call` step follows (its own or a reused identical one),
//!   the call depth limit, call cycles between Dags and a run's `spec.outputs`.
//! - [`foreach`] does a `forEach` step's items, its finished-instance bits and its output arrays.
//! - [`schedule`] does a trigger's cron ticks (CronJob semantics); [`trigger`] does the params
//!   and deterministic names of the runs a trigger submits.
//! - [`plan`] does turns "a run's captured spec + its steps' recorded states + what the Jobs say"
//!   into the next actions (launch these attempts, skip those, the run is done).
//!
//! Invariants upheld here and relied on by the controller:
//! - A step is launched only after all its dependencies reached a terminal phase,
//!   at most once per attempt (the attempt number is part of the Job's deterministic name).
//! - Planning is a function of its inputs: replaying the same inputs gives the same actions,
//!   so a restarted operator decides exactly what the crashed one would have.

pub mod admit;
pub mod call;
pub mod duplicates;
pub mod expand;
pub mod foreach;
pub mod graph;
pub mod naming;
pub mod outputs;
pub mod params;
pub mod plan;
pub mod pod_start;
pub mod references;
pub mod refusal;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod settings;
pub mod trigger;
pub mod validate;
mod validate_compose;
pub mod when;
pub mod workspace;
