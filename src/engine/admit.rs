//! Whether a DagRun may run: the one admissibility rule, used by the webhook (before the run is
//! stored), the controller (when the run starts, where the webhook may be absent or have raced)
//! and the CLI (`kubectl dag lint` checks a manifest before it is applied; `kubectl dag dedupe`
//! uses [`blocking_hash`]). `kubectl dag run` resolves the params itself and leaves the rest to
//! the webhook and the controller.
//!
//! The checks, in this order, each refusal naming the field and value:
//! 1. `metadata.name` is usable as a label value (it labels every Job and pod);
//! 2. `spec.requestId` is usable as a label value;
//! 3. the Dag exists in the run's namespace;
//! 4. the Dag is valid ([`validate::validate_dag`]);
//! 5. the params resolve against the Dag's declarations ([`params::resolve`]);
//! 6. no other run of the same Dag with the same paramHash blocks it under the Dag's
//!    `duplicatePolicy` ([`duplicates::blocks`]). The controller checks this one atomically with a
//!    claim instead of from a cache; [`find_blocking`] is the cache-based form.
//!
//! Whether a stored run may be retried is [`retry_refusal`], for the webhook and the CLI alike.

use crate::api::{Dag, DagRun, DagSpec, DuplicatePolicy, RunPhase};

use super::duplicates;
use super::params::{self, Params};
use super::validate;

/// A run that passed checks 1-5: its resolved params and their hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Admissible {
    pub params: Params,
    /// 64 lowercase hex characters.
    pub param_hash: String,
}

/// Why a run may not run. `reason()` is the machine-readable `status.reason`; `Display` is the
/// message a user sees from `kubectl apply` or in `status.message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("metadata.name {name:?}: must be usable as a label value: {why}")]
    InvalidName { name: String, why: String },
    #[error("spec.requestId {id:?}: must be usable as a label value: {why}")]
    InvalidRequestId { id: String, why: String },
    #[error("spec.dagRef.name: Dag {dag:?} not found in namespace {namespace:?}")]
    DagNotFound { dag: String, namespace: String },
    #[error("Dag {dag:?} is invalid: {errors}")]
    InvalidDag { dag: String, errors: String },
    #[error("{0}")]
    InvalidParams(String),
    #[error("{0}")]
    Duplicate(String),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::InvalidName { .. } => "InvalidName",
            Refusal::InvalidRequestId { .. } => "InvalidRequestId",
            Refusal::DagNotFound { .. } => "DagNotFound",
            Refusal::InvalidDag { .. } => "InvalidDag",
            Refusal::InvalidParams(_) => "InvalidParams",
            Refusal::Duplicate(_) => "DuplicateParams",
        }
    }

    /// The refusal of a run whose parameter set `holder` already holds.
    pub fn duplicate_of(dag: &str, holder: &str, param_hash: &str, policy: DuplicatePolicy) -> Refusal {
        Refusal::Duplicate(duplicates::refusal_message(dag, holder, param_hash, policy))
    }
}

/// Checks 1-5 of the module docs. `dag` is the run's Dag as found in `namespace` (None: missing).
pub fn check(run: &DagRun, namespace: &str, dag: Option<&Dag>) -> Result<Admissible, Refusal> {
    let name = run.metadata.name.clone().unwrap_or_default();
    validate::check_label_value(&name).map_err(|why| Refusal::InvalidName { name, why })?;
    let id = &run.spec.request_id;
    validate::check_label_value(id).map_err(|why| Refusal::InvalidRequestId { id: id.clone(), why })?;
    let dag_name = &run.spec.dag_ref.name;
    let dag = dag.ok_or_else(|| Refusal::DagNotFound {
        dag: dag_name.clone(),
        namespace: namespace.to_string(),
    })?;
    validate::validate_dag(&dag.spec).map_err(|errors| Refusal::InvalidDag {
        dag: dag_name.clone(),
        errors: errors.to_string(),
    })?;
    let params = params::resolve(dag_name, &dag.spec.params, &run.spec.params)
        .map_err(|err| Refusal::InvalidParams(err.to_string()))?;
    let param_hash = params::param_hash(&params);
    Ok(Admissible { params, param_hash })
}

/// The paramHash for which `other`, a run of Dag `dag`, blocks new runs under the Dag's
/// `duplicatePolicy` (None: it blocks nothing in its phase).
pub fn blocking_hash(dag: &DagSpec, other: &DagRun) -> Option<String> {
    let phase = other.phase();
    if !duplicates::blocks(dag.duplicate_policy, phase) {
        return None;
    }
    duplicates::run_param_hash(other, &dag.params)
}

/// The first run among `existing` (other than `run_name`) of Dag `dag_name` that blocks a new run
/// with `param_hash` (check 6, from a cache).
pub fn find_blocking<'a>(
    run_name: &str,
    dag_name: &str,
    dag: &DagSpec,
    param_hash: &str,
    existing: impl IntoIterator<Item = &'a DagRun>,
) -> Option<&'a DagRun> {
    if dag.duplicate_policy == DuplicatePolicy::Allow {
        return None;
    }
    existing.into_iter().find(|other| {
        other.metadata.name.as_deref() != Some(run_name)
            && other.spec.dag_ref.name == dag_name
            && blocking_hash(dag, other).as_deref() == Some(param_hash)
    })
}

/// Checks 1-6 against a cache of `existing` runs of the namespace: the webhook's rule.
pub fn check_with_cache<'a>(
    run: &DagRun,
    namespace: &str,
    dag: Option<&Dag>,
    existing: impl IntoIterator<Item = &'a DagRun>,
) -> Result<Admissible, Refusal> {
    let admissible = check(run, namespace, dag)?;
    let dag = dag.expect("check() refuses a missing Dag");
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let dag_name = &run.spec.dag_ref.name;
    match find_blocking(run_name, dag_name, &dag.spec, &admissible.param_hash, existing) {
        Some(holder) => Err(Refusal::duplicate_of(
            dag_name,
            holder.metadata.name.as_deref().unwrap_or_default(),
            &admissible.param_hash,
            dag.spec.duplicate_policy,
        )),
        None => Ok(admissible),
    }
}

/// Why a run in `phase` cannot be retried (`spec.retry` raised): `None` for a Failed run. The
/// webhook refuses the raise with it; `kubectl dag retry` and the web UI ask it first.
pub fn retry_refusal(phase: RunPhase) -> Option<&'static str> {
    match phase {
        RunPhase::Failed => None,
        RunPhase::Succeeded => Some("only a Failed run can be retried; this one has nothing left to re-run"),
        RunPhase::Cancelled | RunPhase::Rejected => {
            Some("only a Failed run can be retried; start a new run with `kubectl dag run` instead")
        }
        RunPhase::Pending | RunPhase::Queued | RunPhase::Running => {
            Some("only a Failed run can be retried; wait for it to finish")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_runs_can_be_retried() {
        for phase in RunPhase::ALL {
            assert_eq!(retry_refusal(phase).is_none(), phase == RunPhase::Failed, "{phase:?}");
        }
    }
}
