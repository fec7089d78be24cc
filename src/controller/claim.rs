//! The controller-side duplicate guard: an atomic claim per (namespace, Dag, paramHash).
//!
//! The claim is a `coordination.k8s.io/v1` Lease with a deterministic name, created with
//! create-if-absent semantics and owned by the claiming DagRun (so deleting the run frees it).
//! The API server's create is atomic: of runs that race, exactly one creates the Lease; the others
//! see AlreadyExists, read the holder, and end Rejected unless the holder no longer counts under the
//! Dag's `duplicatePolicy` (then the stale claim is deleted with a UID precondition and retried).
//! Nothing here depends on process memory, so an operator crash at any point is recovered by the
//! next reconcile.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Resource, ResourceExt};

use crate::api::{DagRun, DuplicatePolicy, labels};
use crate::engine::duplicates::blocks;
use crate::engine::naming;
use crate::engine::run::Claim;

use super::error::{is_conflict, is_not_found};
use super::{Context, Error};

/// Attempts at replacing stale claims before giving up for this reconcile.
const MAX_ATTEMPTS: usize = 3;

pub async fn acquire(
    ctx: &Context,
    run: &DagRun,
    dag: &str,
    policy: DuplicatePolicy,
    param_hash: &str,
) -> Result<Claim, Error> {
    if policy == DuplicatePolicy::Allow {
        return Ok(Claim::Held);
    }
    let namespace = run.namespace().unwrap_or_default();
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), &namespace);
    let runs: Api<DagRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = naming::claim_name(dag, param_hash);
    let my_uid = run.uid().unwrap_or_default();
    for _ in 0..MAX_ATTEMPTS {
        match leases
            .create(&PostParams::default(), &claim_object(run, &name, dag, param_hash))
            .await
        {
            Ok(_) => {
                ctx.metrics.api_write("claim");
                return Ok(Claim::Held);
            }
            Err(err) if is_conflict(&err) => {}
            Err(err) => return Err(err.into()),
        }
        let Some(existing) = leases.get_opt(&name).await? else {
            continue;
        };
        let holder_uid = holder_uid(&existing);
        if holder_uid.as_deref() == Some(my_uid.as_str()) {
            return Ok(Claim::Held);
        }
        let holder_name = existing
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        let holder = runs.get_opt(&holder_name).await?;
        let still_blocks = holder.as_ref().is_some_and(|h| {
            h.uid() == holder_uid && blocks(policy, h.status.as_ref().map(|s| s.phase).unwrap_or_default())
        });
        if still_blocks {
            return Ok(Claim::Duplicate { holder: holder_name });
        }
        delete_exact(&leases, &existing).await?;
        ctx.metrics.api_write("claim");
    }
    Err(Error::Transient(format!("claim {name} kept changing; retrying")))
}

/// Frees the run's claim if it holds one (called when the run ends in a phase that no longer blocks).
pub async fn release(ctx: &Context, run: &DagRun, dag: &str, param_hash: &str) -> Result<(), Error> {
    let namespace = run.namespace().unwrap_or_default();
    let leases: Api<Lease> = Api::namespaced(ctx.client.clone(), &namespace);
    let name = naming::claim_name(dag, param_hash);
    let Some(existing) = leases.get_opt(&name).await? else {
        return Ok(());
    };
    if holder_uid(&existing) == run.uid() {
        delete_exact(&leases, &existing).await?;
        ctx.metrics.api_write("claim");
    }
    Ok(())
}

/// Deletes exactly this Lease object (UID precondition), tolerating that it is already gone.
async fn delete_exact(leases: &Api<Lease>, lease: &Lease) -> Result<(), Error> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: lease.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match leases.delete(&lease.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

fn holder_uid(lease: &Lease) -> Option<String> {
    lease.owner_references().first().map(|o| o.uid.clone())
}

fn claim_object(run: &DagRun, name: &str, dag: &str, param_hash: &str) -> Lease {
    let owner = OwnerReference {
        api_version: DagRun::api_version(&()).into_owned(),
        kind: DagRun::kind(&()).into_owned(),
        name: run.name_any(),
        uid: run.uid().unwrap_or_default(),
        controller: Some(false),
        block_owner_deletion: Some(false),
    };
    let short_hash: String = param_hash.chars().take(labels::PARAM_HASH_LABEL_LEN).collect();
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                [
                    (labels::DAG.to_string(), dag.to_string()),
                    (labels::PARAM_HASH.to_string(), short_hash),
                ]
                .into_iter()
                .collect(),
            ),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(run.name_any()),
            ..Default::default()
        }),
    }
}
