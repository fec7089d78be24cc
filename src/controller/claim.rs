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
        let holder = match holder_uid(&existing) {
            Some(uid) if uid == my_uid => None,
            _ => runs.get_opt(&holder_name(&existing)).await?,
        };
        match verdict(&existing, holder.as_ref(), &my_uid, policy) {
            Verdict::Outcome(claim) => return Ok(claim),
            Verdict::Stale => {
                delete_exact(&leases, &existing).await?;
                ctx.metrics.api_write("claim");
            }
        }
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

/// What an existing claim means for the run `my_uid`.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Held by this run, or by a run that still counts under the policy (a duplicate).
    Outcome(Claim),
    /// Its holder is gone, was replaced by a same-named run, or has ended in a phase the policy
    /// lets pass: the claim may be deleted and taken.
    Stale,
}

/// Pure: the verdict on `claim` given its holder as read now (`None`: no run of that name).
fn verdict(claim: &Lease, holder: Option<&DagRun>, my_uid: &str, policy: DuplicatePolicy) -> Verdict {
    let holder_uid = holder_uid(claim);
    if holder_uid.as_deref() == Some(my_uid) {
        return Verdict::Outcome(Claim::Held);
    }
    let still_blocks = holder.is_some_and(|h| h.uid() == holder_uid && blocks(policy, h.phase()));
    if still_blocks {
        Verdict::Outcome(Claim::Duplicate {
            holder: holder_name(claim),
        })
    } else {
        Verdict::Stale
    }
}

fn holder_name(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRunStatus, RunPhase};

    fn run(name: &str, uid: &str, phase: Option<RunPhase>) -> DagRun {
        let mut run: DagRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "kubedag.io/v1alpha1", "kind": "DagRun",
            "metadata": {"name": name, "namespace": "ns", "uid": uid},
            "spec": {"dagRef": {"name": "img"}},
        }))
        .unwrap();
        run.status = phase.map(|phase| DagRunStatus {
            phase,
            ..Default::default()
        });
        run
    }

    fn claim_of(holder: &DagRun) -> Lease {
        claim_object(holder, "img-abc", "img", &"ab".repeat(32))
    }

    #[test]
    fn the_claim_is_owned_by_its_run_and_names_it() {
        let holder = run("img-1", "u1", None);
        let claim = claim_of(&holder);
        assert_eq!(claim.metadata.name.as_deref(), Some("img-abc"));
        assert_eq!(holder_uid(&claim).as_deref(), Some("u1"));
        assert_eq!(holder_name(&claim), "img-1");
        let owner = &claim.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("DagRun", Some(false)));
        let labels = claim.labels();
        assert_eq!(labels[labels::DAG], "img");
        assert_eq!(labels[labels::PARAM_HASH].len(), labels::PARAM_HASH_LABEL_LEN);
    }

    #[test]
    fn a_claim_held_by_this_run_is_held_whatever_its_phase() {
        let me = run("img-1", "u1", Some(RunPhase::Succeeded));
        for policy in [DuplicatePolicy::Forbid, DuplicatePolicy::ForbidConcurrent] {
            assert_eq!(
                verdict(&claim_of(&me), Some(&me), "u1", policy),
                Verdict::Outcome(Claim::Held)
            );
        }
    }

    #[test]
    fn a_live_holder_refuses_and_a_gone_or_replaced_holder_is_stale() {
        let holder = run("img-1", "u1", Some(RunPhase::Running));
        let claim = claim_of(&holder);
        let policy = DuplicatePolicy::ForbidConcurrent;
        let duplicate = Verdict::Outcome(Claim::Duplicate { holder: "img-1".into() });
        assert_eq!(verdict(&claim, Some(&holder), "u2", policy), duplicate);
        assert_eq!(verdict(&claim, None, "u2", policy), Verdict::Stale);
        let same_name_new_run = run("img-1", "u9", Some(RunPhase::Running));
        assert_eq!(verdict(&claim, Some(&same_name_new_run), "u2", policy), Verdict::Stale);
    }

    #[test]
    fn an_ended_holder_blocks_exactly_as_the_policy_says() {
        for phase in RunPhase::ALL {
            let holder = run("img-1", "u1", Some(phase));
            for policy in [DuplicatePolicy::Forbid, DuplicatePolicy::ForbidConcurrent] {
                let got = verdict(&claim_of(&holder), Some(&holder), "u2", policy);
                let want = if blocks(policy, phase) {
                    Verdict::Outcome(Claim::Duplicate { holder: "img-1".into() })
                } else {
                    Verdict::Stale
                };
                assert_eq!(got, want, "{policy:?} holder {phase:?}");
            }
        }
    }
}
