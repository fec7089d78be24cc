//! Creating DagRuns, shared by `run` and `submit`.

use kube::api::{ObjectMeta, PostParams};

use crate::api::{DagRef, DagRun, DagRunSpec, labels};
use crate::engine::params::Params;

use super::cluster::Cluster;
use super::error::CliError;

/// The text the admission webhook's refusal of a duplicate parameter set starts with
/// (`engine::duplicates::refusal_message`).
const DUPLICATE_REFUSAL: &str = "duplicate parameters:";

/// A new run of `dag`; the API server names it `<dag>-<random suffix>`.
pub fn new_run(dag: &str, params: Params, request_id: Option<String>) -> DagRun {
    DagRun {
        metadata: ObjectMeta {
            generate_name: Some(format!("{dag}-")),
            labels: Some([(labels::DAG.to_string(), dag.to_string())].into()),
            ..Default::default()
        },
        spec: DagRunSpec {
            dag_ref: DagRef { name: dag.to_string() },
            params,
            request_id: request_id.unwrap_or_default(),
            ..Default::default()
        },
        status: None,
    }
}

/// Creates the run (only validates it, webhook included, with `dry_run`) and returns it as stored.
pub async fn create(cluster: &Cluster, run: &DagRun, dry_run: bool) -> Result<DagRun, CliError> {
    let params = PostParams {
        dry_run,
        ..Default::default()
    };
    cluster
        .api::<DagRun>()
        .create(&params, run)
        .await
        .map_err(CliError::kube(format!(
            "cannot create a DagRun of Dag {:?}",
            run.spec.dag_ref.name
        )))
}

/// Whether the API server refused the run as a duplicate parameter set.
pub fn is_duplicate_refusal(error: &CliError) -> bool {
    error
        .api_status()
        .is_some_and(|status| status.message.contains(DUPLICATE_REFUSAL))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_runs_get_a_generated_name_from_the_dag() {
        let run = new_run("img", [("file".to_string(), "a".to_string())].into(), None);
        assert_eq!(run.metadata.generate_name.as_deref(), Some("img-"));
        assert_eq!(run.metadata.name, None);
        assert_eq!(run.spec.dag_ref.name, "img");
        assert_eq!(run.spec.request_id, "");
        let run = new_run("img", Params::new(), Some("req-7".into()));
        assert_eq!(run.spec.request_id, "req-7");
    }

    #[test]
    fn duplicate_refusals_are_recognised_by_the_webhook_message() {
        let message =
            crate::engine::duplicates::refusal_message("img", "img-abc", "00", crate::api::DuplicatePolicy::Forbid);
        let refused = |message: &str| {
            let status = kube::core::Status::failure(message, "Forbidden");
            CliError::kube("create")(kube::Error::Api(Box::new(status)))
        };
        let webhook = format!("admission webhook \"dagruns.kubedag.io\" denied the request: {message}");
        assert!(is_duplicate_refusal(&refused(&webhook)));
        assert!(!is_duplicate_refusal(&refused("spec.params.bogus: not declared")));
    }
}
