//! An operator process (`kubedag operator --namespace NS --metrics-addr 127.0.0.1:PORT ...`)
//! started from a built binary, with its output in a log file; stopped gracefully by
//! [`Operator::stop`], SIGKILLed by [`Operator::kill`] or when dropped, so an aborted test or
//! benchmark leaves no operator behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::metrics::Metrics;
use super::{Error, http, poll};

/// How to start one operator process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `kubedag` binary.
    pub binary: PathBuf,
    /// The one namespace it watches (`--namespace`).
    pub namespace: String,
    /// Where its stdout and stderr go.
    pub log_path: PathBuf,
    /// Append to the log (a restarted operator keeps its predecessor's lines) instead of
    /// truncating it.
    pub append_log: bool,
    /// Its `RUST_LOG`.
    pub rust_log: String,
    /// Flags after `--namespace NS --metrics-addr ADDR`.
    pub args: Vec<String>,
}

impl Launch {
    /// `binary operator --namespace namespace`, logging to `log_path` (truncated) at
    /// `RUST_LOG=info,kube=warn`, no further flags.
    pub fn new(binary: impl Into<PathBuf>, namespace: &str, log_path: impl Into<PathBuf>) -> Launch {
        Launch {
            binary: binary.into(),
            namespace: namespace.into(),
            log_path: log_path.into(),
            append_log: false,
            rust_log: "info,kube=warn".into(),
            args: Vec::new(),
        }
    }
}

/// The flags that make the operator serve its validating webhook on 127.0.0.1:`port` and register
/// it by URL as configuration `config_name` with `failurePolicy: Fail` (refusals are
/// deterministic).
pub fn webhook_args(port: u16, config_name: &str) -> Vec<String> {
    let (addr, url) = (format!("127.0.0.1:{port}"), format!("https://127.0.0.1:{port}"));
    [
        "--webhook-addr",
        &addr,
        "--webhook-url",
        &url,
        "--webhook-config-name",
        config_name,
        "--webhook-failure-policy",
        "Fail",
    ]
    .map(String::from)
    .to_vec()
}

/// A running operator process.
#[derive(Debug)]
pub struct Operator {
    child: Child,
    metrics_port: u16,
    log_path: PathBuf,
    started: Instant,
}

impl Operator {
    /// Starts the process on a free metrics port. Errors: the log file cannot be opened or the
    /// binary cannot be started ([`Error::Spawn`]).
    pub fn spawn(launch: &Launch) -> Result<Operator, Error> {
        let spawn_error = |source| Error::Spawn {
            binary: launch.binary.display().to_string(),
            source,
        };
        let metrics_port = http::free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(launch.append_log)
            .truncate(!launch.append_log)
            .open(&launch.log_path)
            .map_err(spawn_error)?;
        let child = Command::new(&launch.binary)
            .args(["operator", "--namespace", &launch.namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(&launch.args)
            .env("RUST_LOG", &launch.rust_log)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(spawn_error)?))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(spawn_error)?;
        Ok(Operator {
            child,
            metrics_port,
            log_path: launch.log_path.clone(),
            started: Instant::now(),
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port of its metrics server (`/metrics`, `/readyz`, `/healthz`) on 127.0.0.1.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Time since it was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until `/readyz` answers 200. Errors: the process exited ([`Error::Exited`]) or
    /// `timeout` passed ([`Error::Timeout`]).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let (port, log) = (self.metrics_port, self.log_path.display().to_string());
        let child = &mut self.child;
        let ready = poll(timeout, Duration::from_millis(200), || {
            let exited = child.try_wait().ok().flatten();
            let log = log.clone();
            async move {
                if let Some(status) = exited {
                    return Some(Err(Error::Exited { status, log }));
                }
                matches!(http::get(port, "/readyz").await, Some((200, _))).then_some(Ok(()))
            }
        })
        .await;
        ready.unwrap_or_else(|| {
            Err(Error::Timeout(format!(
                "the operator did not become ready in {} s",
                timeout.as_secs()
            )))
        })
    }

    /// One scrape of `/metrics`; `None` when it does not answer.
    pub async fn metrics(&self) -> Option<Metrics> {
        let (_, body) = http::get(self.metrics_port, "/metrics").await?;
        Some(Metrics::parse(&body))
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let child = &mut self.child;
        let _ = poll(grace, Duration::from_millis(100), || {
            std::future::ready(child.try_wait().ok().flatten())
        })
        .await;
        self.kill();
    }

    /// SIGKILL (no graceful shutdown), and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
