//! The web UI that `kubectl dag ui` serves on localhost with the user's own kubeconfig: it sees
//! and does exactly what the user's RBAC allows. Server-rendered HTML (axum + askama), a little
//! JavaScript for live updates over server-sent events.
//!
//! - [`cache`]: reflectors of Dags, DagRuns and step pods; [`index`]: the runs by Dag.
//! - [`groups`]: runs grouped by parameter set, filtered, sorted, paged (pure).
//! - [`layout`]: the step graph's layered layout (pure).
//! - [`views`]: the pages' templates and view models; [`pages`]: the GET handlers.
//! - [`actions`]: submit, cancel, retry; [`logs`]: step logs as events; [`live`]: page updates.
//! - [`guard`]: Host and form-token checks; [`server`]: state, routes, listener.
//! - [`bench`]: the runs page timed over 10,000 runs.

pub mod actions;
pub mod bench;
pub mod cache;
pub mod groups;
pub mod guard;
pub mod index;
pub mod layout;
pub mod live;
pub mod logs;
pub mod pages;
pub mod server;
pub mod views;

pub use server::serve;
