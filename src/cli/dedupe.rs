//! Client-side duplicate detection for `kubectl dag submit`, so a re-run of the same file reports
//! its duplicates instead of creating runs that the webhook refuses or the controller rejects.
//!
//! Scope and rule are the contract's: same Dag, same paramHash, and an existing run blocks a new one
//! when `engine::admit::blocking_hash` says so (the webhook's and the controller's rule). Lines of the file are also checked against
//! earlier lines of the same file.

use std::collections::HashMap;

use crate::api::{Dag, DagRun, DagSpec, DuplicatePolicy, RunPhase};
use crate::engine::{admit, params};

use super::param_file::ParamLine;

/// What to do with one line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create a run with these (given, not resolved) params; `hash` is its paramHash.
    Create { hash: String },
    /// An existing run already has these parameters and blocks a new one.
    DuplicateOfRun { run: String, phase: RunPhase, hash: String },
    /// An earlier line of the file has the same parameters.
    DuplicateOfLine { line: u64, hash: String },
    /// The parameters do not resolve against the Dag's declarations.
    Invalid(String),
}

/// One line and its decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub line: ParamLine,
    pub decision: Decision,
}

/// Decides each line: existing blocking runs first, then earlier lines of the file.
/// `existing` may hold runs of any Dag; only runs of `dag` count.
pub fn plan(dag: &Dag, existing: &[DagRun], lines: Vec<ParamLine>) -> Vec<Planned> {
    let dag_name = dag.metadata.name.as_deref().unwrap_or_default();
    let policy = dag.spec.duplicate_policy;
    let blocking = blocking_runs(dag_name, &dag.spec, existing);
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    lines
        .into_iter()
        .map(|line| {
            let decision = match params::resolve(dag_name, &dag.spec.params, &line.params) {
                Err(error) => Decision::Invalid(error.to_string()),
                Ok(resolved) => {
                    let hash = params::param_hash(&resolved);
                    if policy == DuplicatePolicy::Allow {
                        Decision::Create { hash }
                    } else if let Some((run, phase)) = blocking.get(&hash) {
                        Decision::DuplicateOfRun {
                            run: run.clone(),
                            phase: *phase,
                            hash,
                        }
                    } else if let Some(first) = first_line_of.get(&hash) {
                        Decision::DuplicateOfLine { line: *first, hash }
                    } else {
                        first_line_of.insert(hash.clone(), line.line);
                        Decision::Create { hash }
                    }
                }
            };
            Planned { line, decision }
        })
        .collect()
}

/// paramHash -> (name, phase) of the oldest run of the Dag that blocks that parameter set.
fn blocking_runs(dag_name: &str, dag: &DagSpec, existing: &[DagRun]) -> HashMap<String, (String, RunPhase)> {
    let mut runs: Vec<&DagRun> = existing.iter().filter(|r| r.spec.dag_ref.name == dag_name).collect();
    runs.sort_by(|a, b| {
        let key = |r: &DagRun| (r.metadata.creation_timestamp.clone(), r.metadata.name.clone());
        key(a).cmp(&key(b))
    });
    let mut blocking = HashMap::new();
    for run in runs {
        if let Some(hash) = admit::blocking_hash(dag, run) {
            let phase = run.phase();
            let name = run.metadata.name.clone().unwrap_or_default();
            blocking.entry(hash).or_insert((name, phase));
        }
    }
    blocking
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec, DagRunStatus, ParamDecl};
    use crate::engine::duplicates::run_param_hash;

    fn dag(policy: DuplicatePolicy) -> Dag {
        Dag::new(
            "img",
            DagSpec {
                params: vec![
                    ParamDecl {
                        name: "file".into(),
                        default: None,
                    },
                    ParamDecl {
                        name: "threshold".into(),
                        default: Some("0.5".into()),
                    },
                ],
                duplicate_policy: policy,
                ..Default::default()
            },
        )
    }

    fn params(pairs: &[(&str, &str)]) -> crate::engine::params::Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn line(line: u64, pairs: &[(&str, &str)]) -> ParamLine {
        ParamLine {
            line,
            params: params(pairs),
        }
    }

    fn run(name: &str, dag: &str, file: &str, phase: Option<RunPhase>) -> DagRun {
        let mut run = DagRun::new(
            name,
            DagRunSpec {
                dag_ref: DagRef { name: dag.into() },
                params: params(&[("file", file)]),
                ..Default::default()
            },
        );
        run.status = phase.map(|phase| DagRunStatus {
            phase,
            ..Default::default()
        });
        run
    }

    fn hash_of(pairs: &[(&str, &str)]) -> String {
        params::param_hash(&params(pairs))
    }

    #[test]
    fn existing_runs_and_earlier_lines_are_duplicates_defaults_included() {
        let existing = [
            run("old", "img", "a.fits", Some(RunPhase::Succeeded)),
            run("other-dag", "other", "b.fits", Some(RunPhase::Running)),
        ];
        let lines = vec![
            line(2, &[("file", "a.fits"), ("threshold", "0.5")]),
            line(3, &[("file", "b.fits")]),
            line(4, &[("file", "b.fits"), ("threshold", "0.5")]),
            line(5, &[("threshold", "1")]),
        ];
        let decisions: Vec<Decision> = plan(&dag(DuplicatePolicy::Forbid), &existing, lines)
            .into_iter()
            .map(|p| p.decision)
            .collect();
        let b = hash_of(&[("file", "b.fits"), ("threshold", "0.5")]);
        assert_eq!(
            decisions[0],
            Decision::DuplicateOfRun {
                run: "old".into(),
                phase: RunPhase::Succeeded,
                hash: hash_of(&[("file", "a.fits"), ("threshold", "0.5")])
            }
        );
        assert_eq!(decisions[1], Decision::Create { hash: b.clone() });
        assert_eq!(decisions[2], Decision::DuplicateOfLine { line: 3, hash: b });
        assert!(
            matches!(&decisions[3], Decision::Invalid(m) if m.contains("\"file\"")),
            "{decisions:?}"
        );
    }

    #[test]
    fn the_policy_decides_which_existing_runs_block() {
        let existing = [
            run("failed", "img", "a.fits", Some(RunPhase::Failed)),
            run("done", "img", "b.fits", Some(RunPhase::Succeeded)),
            run("new", "img", "c.fits", None),
        ];
        let lines = || {
            vec![
                line(1, &[("file", "a.fits")]),
                line(2, &[("file", "b.fits")]),
                line(3, &[("file", "c.fits")]),
            ]
        };
        let created = |policy| {
            plan(&dag(policy), &existing, lines())
                .iter()
                .filter(|p| matches!(p.decision, Decision::Create { .. }))
                .map(|p| p.line.line)
                .collect::<Vec<_>>()
        };
        assert_eq!(created(DuplicatePolicy::Forbid), [1]);
        assert_eq!(created(DuplicatePolicy::ForbidConcurrent), [1, 2]);
        assert_eq!(created(DuplicatePolicy::Allow), [1, 2, 3]);
    }

    #[test]
    fn allow_keeps_repeated_lines() {
        let lines = vec![line(1, &[("file", "a")]), line(2, &[("file", "a")])];
        let planned = plan(&dag(DuplicatePolicy::Allow), &[], lines);
        assert!(planned.iter().all(|p| matches!(p.decision, Decision::Create { .. })));
    }

    #[test]
    fn status_hash_wins_over_the_spec() {
        let mut started = run("r", "img", "a.fits", Some(RunPhase::Running));
        started.status.as_mut().unwrap().param_hash = Some("f".repeat(64));
        assert_eq!(
            run_param_hash(&started, &dag(DuplicatePolicy::Forbid).spec.params),
            Some("f".repeat(64))
        );
        let pending = run("r", "img", "a.fits", None);
        assert_eq!(
            run_param_hash(&pending, &dag(DuplicatePolicy::Forbid).spec.params),
            Some(hash_of(&[("file", "a.fits"), ("threshold", "0.5")]))
        );
    }
}
