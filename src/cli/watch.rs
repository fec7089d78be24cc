//! Following one DagRun through a watch until it reaches the state the caller waits for.

use std::pin::pin;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

use crate::api::DagRun;

use super::cluster::Cluster;
use super::error::CliError;

/// Watch failures in a row tolerated (the watcher backs off in between) before giving up.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 5;

pub fn is_finished(run: &DagRun) -> bool {
    run.phase().is_terminal()
}

/// Calls `on_change` with each version of run `name` until `done` holds for one, and returns it.
pub async fn until(
    cluster: &Cluster,
    name: &str,
    done: impl Fn(&DagRun) -> bool,
    mut on_change: impl FnMut(&DagRun),
) -> Result<DagRun, CliError> {
    let mut versions = pin!(watcher::watch_object(cluster.api::<DagRun>(), name).default_backoff());
    let mut errors = 0;
    while let Some(version) = versions.next().await {
        match version {
            Ok(Some(run)) => {
                errors = 0;
                on_change(&run);
                if done(&run) {
                    return Ok(run);
                }
            }
            Ok(None) => {
                return Err(CliError::NotFound {
                    kind: "DagRun",
                    name: name.to_string(),
                    namespace: cluster.namespace.clone(),
                });
            }
            Err(source) => {
                errors += 1;
                if errors >= MAX_CONSECUTIVE_ERRORS {
                    return Err(CliError::Watch {
                        doing: format!("cannot watch DagRun {name:?}"),
                        source,
                    });
                }
            }
        }
    }
    Err(CliError::Invalid(format!(
        "the watch of DagRun {name:?} ended unexpectedly"
    )))
}

/// Waits until the run finishes, calling `on_change` with each version.
pub async fn until_finished(cluster: &Cluster, name: &str, on_change: impl FnMut(&DagRun)) -> Result<DagRun, CliError> {
    until(cluster, name, is_finished, on_change).await
}
