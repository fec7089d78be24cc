//! Admission decisions. `Err` carries the message the user sees from `kubectl apply`.

use crate::api::{Dag, DagRun, DagSpec, DuplicatePolicy};
use crate::engine::{duplicates, params, validate};

/// A Dag create or update: the full validation, naming the step.
pub fn check_dag(spec: &DagSpec) -> Result<(), String> {
    validate::validate_dag(spec).map_err(|errors| errors.to_string())
}

/// A DagRun update: the spec is immutable except `cancel`.
pub fn check_run_update(old: &DagRun, new: &DagRun) -> Result<(), String> {
    let (o, n) = (&old.spec, &new.spec);
    let changed = [
        ("spec.dagRef", o.dag_ref != n.dag_ref),
        ("spec.params", o.params != n.params),
        ("spec.requestId", o.request_id != n.request_id),
    ];
    match changed.iter().find(|(_, differs)| *differs) {
        Some((field, _)) => Err(format!(
            "{field} is immutable: only spec.cancel may change after a DagRun is created"
        )),
        None => Ok(()),
    }
}

/// A DagRun create: the Dag exists and is valid, the params resolve, the identity is usable as
/// labels, and no existing run blocks this parameter set under the Dag's policy.
/// `existing` are the runs of the same namespace (the cache); the new run itself is skipped.
pub fn check_run_create<'a>(
    run: &DagRun,
    namespace: &str,
    dag: Option<&Dag>,
    existing: impl Iterator<Item = &'a DagRun>,
) -> Result<(), String> {
    let name = run.metadata.name.clone().unwrap_or_default();
    validate::check_label_value(&name)
        .map_err(|why| format!("metadata.name {name:?}: must be usable as a label value: {why}"))?;
    validate::check_label_value(&run.spec.request_id).map_err(|why| {
        format!(
            "spec.requestId {:?}: must be usable as a label value: {why}",
            run.spec.request_id
        )
    })?;
    let dag_name = &run.spec.dag_ref.name;
    let dag = dag.ok_or_else(|| format!("spec.dagRef.name: Dag {dag_name:?} not found in namespace {namespace:?}"))?;
    validate::validate_dag(&dag.spec).map_err(|e| format!("Dag {dag_name:?} is invalid: {e}"))?;
    let resolved = params::resolve(dag_name, &dag.spec.params, &run.spec.params).map_err(|e| e.to_string())?;
    let policy = dag.spec.duplicate_policy;
    if policy == DuplicatePolicy::Allow {
        return Ok(());
    }
    let hash = params::param_hash(&resolved);
    let blocking = existing
        .filter(|other| other.metadata.name != run.metadata.name && &other.spec.dag_ref.name == dag_name)
        .find(|other| {
            let phase = other.status.as_ref().map(|s| s.phase).unwrap_or_default();
            duplicates::blocks(policy, phase)
                && duplicates::run_param_hash(other, &dag.spec.params).as_deref() == Some(hash.as_str())
        });
    match blocking {
        Some(other) => Err(duplicates::refusal_message(
            dag_name,
            other.metadata.name.as_deref().unwrap_or_default(),
            &hash,
            policy,
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerSettings, DagRef, DagRunSpec, DagRunStatus, ParamDecl, RunPhase, Step};

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
    fn only_cancel_may_change() {
        let old = run("r", "x", None);
        let mut cancelled = old.clone();
        cancelled.spec.cancel = true;
        assert!(check_run_update(&old, &cancelled).is_ok());
        let edited = run("r", "y", None);
        assert_eq!(
            check_run_update(&old, &edited).unwrap_err(),
            "spec.params is immutable: only spec.cancel may change after a DagRun is created"
        );
    }
}
