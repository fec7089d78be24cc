//! The run's workspace claim (`spec.workspace`): created once, before the run's first Job, owned
//! by the run (controller reference) so it is deleted with it. Jobs are created without waiting
//! for the claim to be Bound: with a `WaitForFirstConsumer` class it binds only once a step pod
//! is scheduled. A claim that does not bind is caught by `engine::pod_start` (the pod waits on it).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Resource, ResourceExt};

use crate::api::{DagRun, labels};
use crate::engine::plan::JobState;
use crate::engine::refusal;
use crate::engine::run::WorkspaceClaim;

use super::error::is_conflict;
use super::{Context, Error};

/// Creates claim `name` for `run` from `template`. AlreadyExists is success when the existing
/// claim belongs to the run (a create whose status write was lost), a wait otherwise. Refusals are
/// classified like Job refusals ([`refusal::classify`]); an unreachable API server is an error of
/// the reconcile (retried).
pub async fn ensure(
    ctx: &Context,
    run: &DagRun,
    name: &str,
    template: &PersistentVolumeClaimSpec,
) -> Result<WorkspaceClaim, Error> {
    let namespace = run.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.create(&PostParams::default(), &claim(run, name, template)).await {
        Ok(_) => {
            ctx.metrics.api_write("workspace_create");
            Ok(WorkspaceClaim::Created)
        }
        Err(err) if is_conflict(&err) => {
            let existing = api.get_opt(name).await?;
            let uid = run.uid().unwrap_or_default();
            let ours = existing
                .iter()
                .flat_map(|c| c.owner_references())
                .any(|o| o.uid == uid && o.controller == Some(true));
            Ok(if ours {
                WorkspaceClaim::Created
            } else {
                WorkspaceClaim::Waiting {
                    message: format!("a claim named {name} exists and belongs to another object"),
                }
            })
        }
        Err(kube::Error::Api(status)) => {
            ctx.metrics.api_write("workspace_create_refused");
            Ok(match refusal::classify(status.code, &status.reason, &status.message) {
                JobState::Refused {
                    message,
                    permanent: true,
                } => WorkspaceClaim::Refused { message },
                JobState::Refused { message, .. } => WorkspaceClaim::Waiting { message },
                other => WorkspaceClaim::Waiting {
                    message: format!("{other:?}"),
                },
            })
        }
        Err(err) => Err(err.into()),
    }
}

/// The claim object: the template's spec, the run's `kubedag.io/dag` and `kubedag.io/run`
/// labels, and the run as controlling owner.
fn claim(run: &DagRun, name: &str, template: &PersistentVolumeClaimSpec) -> PersistentVolumeClaim {
    let run_name = run.name_any();
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: run.namespace(),
            labels: Some(BTreeMap::from([
                (labels::DAG.to_string(), run.spec.dag_ref.name.clone()),
                (labels::RUN.to_string(), run_name),
            ])),
            owner_references: run.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(template.clone()),
        status: None,
    }
}
