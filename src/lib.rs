//! kubedag: a Kubernetes operator that runs DAG workflows, one Job per step per run.
//!
//! - [`api`]: the `Dag` and `DagRun` custom resources.
//! - [`engine`]: the pure core (params and hash, validation, planner).
//! - [`controller`]: reconcilers, Jobs, status, events, metrics.

pub mod api;
pub mod engine;
