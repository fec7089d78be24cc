//! Creating the run of one trigger event (a tick, a file, an object) under its deterministic
//! name: AlreadyExists means it was created before and is not an error.

use std::collections::BTreeMap;

use kube::Api;
use kube::api::PostParams;

use crate::api::{DagRef, DagRun, DagRunSpec, labels};
use crate::engine::trigger::{ParamsError, Variables, render_params};

/// What every run of one trigger shares.
#[derive(Clone, Debug)]
pub struct RunTemplate {
    /// The trigger's name (label `kubedag.io/trigger`, run-name prefix); for `kubectl dag watch`,
    /// the name given to the watch.
    pub trigger: String,
    pub dag: String,
    /// `spec.params` as written, with variables.
    pub params: BTreeMap<String, String>,
    /// `schedule`, `directory`, `bucket` or `local` (in error messages).
    pub source_kind: &'static str,
}

/// The outcome of one submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// The run was created now.
    Created(String),
    /// A run of that name already existed: submitted before.
    Existed(String),
}

/// A submission that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// `spec.params` refers to a variable the event lacks.
    #[error("InvalidParams: {0}")]
    Params(#[from] ParamsError),
    /// The API server or the admission webhook refused the run (e.g. the Dag is missing, a param
    /// is undeclared, a duplicate run exists).
    #[error("{reason}: DagRun {run} refused: {message}")]
    Refused {
        reason: &'static str,
        run: String,
        message: String,
    },
    #[error("DagRun {run}: {source}")]
    Api { run: String, source: kube::Error },
}

impl RunTemplate {
    /// Creates run `name` of this template for an event with `vars`, labelled with the trigger.
    pub async fn submit(
        &self,
        api: &Api<DagRun>,
        name: &str,
        request_id: &str,
        vars: &Variables,
    ) -> Result<Submitted, SubmitError> {
        let params = render_params(&self.params, vars, self.source_kind)?;
        let mut run = DagRun::new(
            name,
            DagRunSpec {
                dag_ref: DagRef { name: self.dag.clone() },
                params,
                request_id: request_id.to_string(),
                ..Default::default()
            },
        );
        run.metadata.labels = Some(
            [
                (labels::TRIGGER.to_string(), self.trigger.clone()),
                (labels::DAG.to_string(), self.dag.clone()),
            ]
            .into(),
        );
        match api.create(&PostParams::default(), &run).await {
            Ok(_) => Ok(Submitted::Created(name.to_string())),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Submitted::Existed(name.to_string())),
            Err(kube::Error::Api(e)) if (400..500).contains(&e.code) && e.code != 429 => Err(SubmitError::Refused {
                reason: refusal_reason(&e.message),
                run: name.to_string(),
                message: e.message,
            }),
            Err(source) => Err(SubmitError::Api {
                run: name.to_string(),
                source,
            }),
        }
    }
}

/// The cause of a refusal, from the webhook's message.
fn refusal_reason(message: &str) -> &'static str {
    if message.contains("not found") && message.contains("Dag") {
        "DagMissing"
    } else if message.contains("param") {
        "InvalidParams"
    } else {
        "Refused"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_cause() {
        assert_eq!(refusal_reason("Dag \"x\" not found in namespace y"), "DagMissing");
        assert_eq!(refusal_reason("undeclared param \"q\""), "InvalidParams");
        assert_eq!(refusal_reason("duplicate of run r"), "Refused");
    }
}
