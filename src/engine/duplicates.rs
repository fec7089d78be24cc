//! The duplicate-parameter rule. Scope: same namespace, same Dag, same paramHash.

use crate::api::{DagRun, DuplicatePolicy, ParamDecl, RunPhase};

use super::params::{self, Params};

/// Whether an existing run in `phase` blocks a new run with the same parameters under `policy`:
/// - `Forbid`: while the existing run is not Failed, Cancelled or Rejected;
/// - `ForbidConcurrent`: while it is Pending, Queued or Running;
/// - `Allow`: never.
pub fn blocks(policy: DuplicatePolicy, phase: RunPhase) -> bool {
    match policy {
        DuplicatePolicy::Allow => false,
        DuplicatePolicy::Forbid => !matches!(phase, RunPhase::Failed | RunPhase::Cancelled | RunPhase::Rejected),
        DuplicatePolicy::ForbidConcurrent => matches!(phase, RunPhase::Pending | RunPhase::Queued | RunPhase::Running),
    }
}

/// The message a refused run gets, naming the existing run and the hash.
pub fn refusal_message(dag: &str, existing_run: &str, param_hash: &str, policy: DuplicatePolicy) -> String {
    format!(
        "duplicate parameters: DagRun {existing_run:?} of Dag {dag:?} already has paramHash {param_hash} \
         (duplicatePolicy {policy:?} refuses a second run with the same parameters)"
    )
}

/// A run's paramHash: from its status once the operator started it, else computed from its spec.
pub fn run_param_hash(run: &DagRun, decls: &[ParamDecl]) -> Option<String> {
    if let Some(hash) = run.status.as_ref().and_then(|s| s.param_hash.clone()) {
        return Some(hash);
    }
    resolved_params(run, decls).map(|resolved| params::param_hash(&resolved))
}

/// A run's resolved params: from its status once started, else its spec resolved against `decls`.
pub fn resolved_params(run: &DagRun, decls: &[ParamDecl]) -> Option<Params> {
    if let Some(resolved) = run.status.as_ref().and_then(|s| s.params.clone()) {
        return Some(resolved);
    }
    params::resolve(&run.spec.dag_ref.name, decls, &run.spec.params).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_match_the_contract() {
        use RunPhase::*;
        for phase in RunPhase::ALL {
            assert!(!blocks(DuplicatePolicy::Allow, phase));
            assert_eq!(
                blocks(DuplicatePolicy::Forbid, phase),
                matches!(phase, Pending | Queued | Running | Succeeded)
            );
            assert_eq!(
                blocks(DuplicatePolicy::ForbidConcurrent, phase),
                matches!(phase, Pending | Queued | Running)
            );
        }
    }
}
