//! The kit shared by the end-to-end tests (`tests/common`) and the benchmark driver
//! (`src/bin/kubedag-bench/`): launching an operator process against one namespace, reading its
//! HTTP endpoints and Prometheus metrics, creating and deleting namespaces, polling, and building
//! `Dag`/`DagRun` manifests.
//!
//! A plain public module, not behind a cargo feature: integration tests and binaries of this
//! package can only see the library's default build, and nothing here runs inside the operator
//! (the `kubedag` binary never calls it). It uses only the library's own dependencies.

pub mod cluster;
pub mod http;
pub mod manifests;
pub mod metrics;
pub mod operator;

use std::future::Future;
use std::time::Duration;

/// The step image the local cluster imports (Debian's busybox-static): `e2e/` builds it.
pub const STEP_IMAGE: &str = "kubedag.local/busybox:1";

/// Errors of the kit, each naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// A manifest did not deserialize into the Kubernetes type.
    #[error("manifest: {0}")]
    Manifest(#[from] serde_json::Error),
    /// The operator binary could not be started (or its log file opened).
    #[error("starting {binary}: {source}")]
    Spawn {
        /// The binary's path.
        binary: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The operator process exited while it was waited for.
    #[error("the operator exited ({status}); see {log}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log file.
        log: String,
    },
    /// Something did not happen within its deadline; the message says what.
    #[error("{0}")]
    Timeout(String),
}

/// Calls `check` every `interval` until it returns `Some`, for at most `timeout` (checked at least
/// once). `None` when the time ran out.
pub async fn poll<T, F, Fut>(timeout: Duration, interval: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn poll_returns_the_first_some_and_gives_up_after_the_timeout() {
        let mut calls = 0;
        let found = poll(Duration::from_secs(5), Duration::from_millis(1), || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(found, Some(3));
        let mut calls = 0;
        let never: Option<()> = poll(Duration::from_millis(20), Duration::from_millis(5), || {
            calls += 1;
            async { None }
        })
        .await;
        assert_eq!(never, None);
        assert!(calls >= 2, "checked more than once: {calls}");
    }
}
