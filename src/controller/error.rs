use thiserror::Error;

/// Errors of one reconcile: API calls that failed (not refusals of a step's Job, which the run's
/// state machine handles). Each one retries the reconcile after 200 ms (a 409 conflict: the
/// cache was stale) or 5 s (see `run::error_policy`); none of them is fatal to the operator or
/// to other runs.
#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Transient(String),
}

impl Error {
    /// Label for the errors metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(_) => "api",
            Error::Transient(_) => "transient",
        }
    }
}

/// True when the API answered 409 AlreadyExists / Conflict.
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

/// True when the API answered 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}
