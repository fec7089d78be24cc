//! Admission decisions. `Err` carries the message the user sees from `kubectl apply`.

use kube::ResourceExt;

use crate::api::{Dag, DagRun, DagSpec};
use crate::engine::admit::retry_refusal;
use crate::engine::{admit, call, validate};

/// A Dag create or update: the full validation, naming the step.
pub fn check_dag(spec: &DagSpec) -> Result<(), String> {
    validate::validate_dag(spec).map_err(|errors| errors.to_string())
}

/// A Dag create or update: no cycle of calls through it among the Dags the webhook's cache knows
/// (`a -> b -> a`); the message names the chain. Cycles made later, by Dags out of its sight, are
/// caught at run time by the call depth limit (`engine::call::MAX_CALL_DEPTH`).
pub fn check_call_cycle(name: &str, spec: &DagSpec, lookup: &dyn Fn(&str) -> Option<DagSpec>) -> Result<(), String> {
    match call::find_cycle(name, spec, lookup) {
        Some(chain) => Err(format!(
            "call cycle: {} (a Dag may not call itself through steps[].call)",
            chain.join(" -> ")
        )),
        None => Ok(()),
    }
}

/// A DagRun update: the spec is immutable except `cancel` and `retry`, and those only move one
/// way: a cancel cannot be taken back, and `retry` is only raised, while the run is Failed
/// ([`admit::retry_refusal`]). Each refusal names the field and the values.
pub fn check_run_update(old: &DagRun, new: &DagRun) -> Result<(), String> {
    let (o, n) = (&old.spec, &new.spec);
    let changed = [
        ("spec.dagRef", o.dag_ref != n.dag_ref),
        ("spec.params", o.params != n.params),
        ("spec.requestId", o.request_id != n.request_id),
    ];
    if let Some((field, _)) = changed.iter().find(|(_, differs)| *differs) {
        return Err(format!(
            "{field} is immutable: only spec.cancel and spec.retry may change after a DagRun is created"
        ));
    }
    if o.cancel && !n.cancel {
        return Err("spec.cancel: a cancel cannot be taken back (true -> false)".into());
    }
    if n.retry < o.retry {
        return Err(format!("spec.retry can only be raised ({} -> {})", o.retry, n.retry));
    }
    let phase = old.phase();
    match retry_refusal(phase) {
        Some(why) if n.retry > o.retry => Err(format!(
            "spec.retry: DagRun {:?} is {}: {why}",
            old.name_any(),
            phase.as_str()
        )),
        _ => Ok(()),
    }
}

/// A DagRun create: the one admissibility rule ([`admit::check_with_cache`]) against the cache of
/// the namespace's runs; the new run itself is skipped.
pub fn check_run_create<'a>(
    run: &DagRun,
    namespace: &str,
    dag: Option<&Dag>,
    existing: impl Iterator<Item = &'a DagRun>,
) -> Result<(), String> {
    admit::check_with_cache(run, namespace, dag, existing)
        .map(|_| ())
        .map_err(|refusal| refusal.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerSettings, DagRef, DagRunSpec, DagRunStatus, DuplicatePolicy, ParamDecl, RunPhase, Step};
    use crate::engine::params;

    fn dag(policy: DuplicatePolicy) -> Dag {
        let mut dag = Dag::new(
            "img",
            DagSpec {
                params: vec![ParamDecl {
                    name: "file".into(),
                    default: None,
                }],
                defaults: ContainerSettings {
                    image: Some("busybox".into()),
                    ..Default::default()
                },
                duplicate_policy: policy,
                steps: vec![Step {
                    name: "a".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        dag.metadata.namespace = Some("ns".into());
        dag
    }

    fn run(name: &str, file: &str, phase: Option<RunPhase>) -> DagRun {
        let mut run = DagRun::new(
            name,
            DagRunSpec {
                dag_ref: DagRef { name: "img".into() },
                params: [("file".to_string(), file.to_string())].into(),
                ..Default::default()
            },
        );
        run.status = phase.map(|phase| DagRunStatus {
            phase,
            ..Default::default()
        });
        run
    }

    #[test]
    fn duplicate_of_a_running_run_is_refused_naming_it_and_the_hash() {
        let dag = dag(DuplicatePolicy::Forbid);
        let existing = [run("first", "m31.fits", Some(RunPhase::Running))];
        let err = check_run_create(&run("second", "m31.fits", None), "ns", Some(&dag), existing.iter()).unwrap_err();
        let hash = params::param_hash(&[("file".to_string(), "m31.fits".to_string())].into());
        assert!(err.contains("\"first\"") && err.contains(&hash), "{err}");
        assert!(check_run_create(&run("second", "m42.fits", None), "ns", Some(&dag), existing.iter()).is_ok());
    }

    #[test]
    fn pending_runs_without_status_count_as_duplicates() {
        let dag = dag(DuplicatePolicy::Forbid);
        let existing = [run("first", "x", None)];
        assert!(check_run_create(&run("second", "x", None), "ns", Some(&dag), existing.iter()).is_err());
    }

    #[test]
    fn policy_decides_which_finished_runs_still_block() {
        for (policy, phase, refused) in [
            (DuplicatePolicy::Forbid, RunPhase::Succeeded, true),
            (DuplicatePolicy::Forbid, RunPhase::Failed, false),
            (DuplicatePolicy::Forbid, RunPhase::Cancelled, false),
            (DuplicatePolicy::ForbidConcurrent, RunPhase::Succeeded, false),
            (DuplicatePolicy::ForbidConcurrent, RunPhase::Queued, true),
            (DuplicatePolicy::Allow, RunPhase::Running, false),
        ] {
            let existing = [run("first", "x", Some(phase))];
            let result = check_run_create(&run("second", "x", None), "ns", Some(&dag(policy)), existing.iter());
            assert_eq!(result.is_err(), refused, "{policy:?} with an existing {phase:?} run");
        }
    }

    #[test]
    fn missing_dag_and_bad_params_are_named() {
        let err = check_run_create(&run("r", "x", None), "ns", None, std::iter::empty()).unwrap_err();
        assert_eq!(err, "spec.dagRef.name: Dag \"img\" not found in namespace \"ns\"");
        let mut bad = run("r", "x", None);
        bad.spec.params.insert("bogus".into(), "1".into());
        let err = check_run_create(&bad, "ns", Some(&dag(DuplicatePolicy::Allow)), std::iter::empty()).unwrap_err();
        assert!(err.contains("spec.params.bogus"), "{err}");
    }

    #[test]
    fn only_cancel_and_retry_may_change() {
        let old = run("r", "x", None);
        let mut cancelled = old.clone();
        cancelled.spec.cancel = true;
        assert!(check_run_update(&old, &cancelled).is_ok());
        assert_eq!(
            check_run_update(&cancelled, &old).unwrap_err(),
            "spec.cancel: a cancel cannot be taken back (true -> false)"
        );
        let failed = run("r", "x", Some(RunPhase::Failed));
        let mut retried = failed.clone();
        retried.spec.retry = 1;
        assert!(check_run_update(&failed, &retried).is_ok());
        assert_eq!(
            check_run_update(&retried, &failed).unwrap_err(),
            "spec.retry can only be raised (1 -> 0)"
        );
        for phase in [RunPhase::Succeeded, RunPhase::Running, RunPhase::Queued] {
            let mut old = run("r", "x", Some(phase));
            old.spec.retry = 1;
            let mut raised = old.clone();
            raised.spec.retry = 2;
            let err = check_run_update(&old, &raised).unwrap_err();
            assert!(
                err.starts_with(&format!(
                    "spec.retry: DagRun \"r\" is {}: only a Failed run",
                    phase.as_str()
                )),
                "{err}"
            );
            // Unchanged (a re-apply of the same manifest) passes in any phase.
            assert!(check_run_update(&old, &old).is_ok());
        }
        let edited = run("r", "y", None);
        assert_eq!(
            check_run_update(&old, &edited).unwrap_err(),
            "spec.params is immutable: only spec.cancel and spec.retry may change after a DagRun is created"
        );
    }
}
