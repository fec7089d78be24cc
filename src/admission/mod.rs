//! The validating admission webhook: refuses invalid Dags, DagRuns naming a missing Dag or bad
//! params, duplicate parameter sets (per the Dag's `duplicatePolicy`) and DagRun spec edits
//! other than `cancel`, with messages that name the field, step or existing run.
//!
//! - [`checks`] holds the decisions, pure functions of the object and what the caches hold.
//! - [`certs`] keeps the serving certificate: a CA shared by all replicas through a Secret, or
//!   certificates mounted from a Secret (cert-manager / Helm).
//! - [`registration`] keeps the ValidatingWebhookConfiguration (rules, caBundle) current.
//! - [`server`] serves HTTPS with axum + rustls and hot-swaps rotated certificates.
//!
//! Admission is a convenience, not the guard: with the webhook down (failurePolicy `Ignore`) the
//! controller applies the same checks when a run starts and the duplicate claim stays atomic.
//! Decisions read the controller's caches, never a LIST per request.

pub mod certs;
pub mod checks;
pub mod registration;
pub mod server;
pub mod watcher_runs;
