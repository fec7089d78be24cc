//! The errors `kubectl dag` reports: each names what was being done and what went wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or file content, found before talking to the cluster.
    #[error("{0}")]
    Invalid(String),
    /// A named object that does not exist.
    #[error("{kind} {name:?} not found in namespace {namespace:?}")]
    NotFound {
        kind: &'static str,
        name: String,
        namespace: String,
    },
    /// The API server (or its admission webhook) answered with an error.
    #[error("{doing}: {}", api_message(.source))]
    Kube {
        doing: String,
        #[source]
        source: kube::Error,
    },
    /// The kubeconfig or in-cluster configuration could not be loaded.
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    /// A watch of the cluster failed.
    #[error("{doing}: {source}")]
    Watch {
        doing: String,
        #[source]
        source: kube::runtime::watcher::Error,
    },
    #[error("cannot read {}: {source}", .path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing to stdout failed; a closed pipe (`| head`) ends the command quietly.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

impl CliError {
    /// Wraps a client error with what was being done, e.g. "cannot create a DagRun of Dag \"img\"".
    pub fn kube(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> CliError {
        let doing = doing.into();
        move |source| CliError::Kube { doing, source }
    }

    /// Whether stdout was closed by the reader, which is not worth an error message.
    pub fn is_closed_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The server's message when the request was refused (admission webhooks speak through it).
    pub fn api_status(&self) -> Option<&kube::core::Status> {
        match self {
            CliError::Kube {
                source: kube::Error::Api(status),
                ..
            } => Some(status),
            _ => None,
        }
    }
}

/// The useful part of a client error: the API server's message rather than the full debug dump.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_show_the_server_message_only() {
        let status = kube::core::Status::failure("denied the request: duplicate parameters", "Forbidden");
        let error = CliError::kube("cannot create a DagRun")(kube::Error::Api(Box::new(status)));
        assert_eq!(
            error.to_string(),
            "cannot create a DagRun: denied the request: duplicate parameters"
        );
        assert!(error.api_status().is_some());
    }

    #[test]
    fn only_a_broken_pipe_is_quiet() {
        assert!(CliError::Output(std::io::ErrorKind::BrokenPipe.into()).is_closed_pipe());
        assert!(!CliError::Output(std::io::ErrorKind::PermissionDenied.into()).is_closed_pipe());
    }
}
