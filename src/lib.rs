//! kubedag: a Kubernetes operator that runs DAG workflows, one Job per step per run.
//!
//! - [`api`] holds the `Dag` and `DagRun` custom resources.
//! - [`engine`] holds the pure core (params and hash, validation, planner).
//! - [`controller`] holds reconcilers, Jobs, status, events, metrics.
//! - [`admission`] holds the validating webhook.
//! - [`runtime`] holds the operator process: wiring, servers, leader election.
//! - [`cli`] holds `kubectl dag`.
//! - [`watch`] holds the trigger inputs (directory scans, settling, bucket listing, the exactly-once
//!   ledger).
//! - [`ui`] holds the web UI that `kubectl dag ui` serves.
//! - [`testkit`] holds what the e2e tests and the benchmark driver share (never used by the operator).

pub mod admission;
pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod runtime;
pub mod testkit;
pub mod ui;
pub mod watch;
