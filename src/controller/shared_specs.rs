//! One copy of each captured Dag spec in the run cache.
//!
//! A run captures its Dag's spec in `status.dagSpec` when it starts (invariant 4), so a thousand
//! runs of one Dag carry a thousand equal copies. Decoded, each is about 1.2 KB of heap for a
//! one-step Dag (heaptrack of benchmark (c), 2026-12-04), about 12 MB at 10,000 runs. The DagRun
//! watch passes every run through [`SharedSpecs::share`] before it is cached: when a cached run of
//! the same Dag already holds an equal spec, the run takes that one and its decoded copy is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use kube::ResourceExt;

use crate::api::{DagRun, DagSpec};

/// Distinct specs remembered per Dag: the spec changes between runs only when the Dag is edited,
/// so the last few cover the runs in flight.
const KEPT_PER_DAG: usize = 8;

/// (namespace, Dag name).
type DagKey = (String, String);

/// Per Dag, the specs its cached runs hold, newest last.
#[derive(Default)]
pub struct SharedSpecs {
    by_dag: Mutex<HashMap<DagKey, Vec<Weak<DagSpec>>>>,
}

impl SharedSpecs {
    /// Points `run`'s captured spec at an equal one already cached, or remembers it as the one to
    /// share. Runs without a captured spec (not started) are left alone.
    pub fn share(&self, run: &mut DagRun) {
        let dag = (run.namespace().unwrap_or_default(), run.spec.dag_ref.name.clone());
        let Some(spec) = run.status.as_mut().and_then(|s| s.dag_spec.as_mut()) else {
            return;
        };
        let mut by_dag = self.by_dag.lock().expect("shared specs lock");
        let known = by_dag.entry(dag).or_default();
        known.retain(|w| w.strong_count() > 0);
        match known.iter().filter_map(Weak::upgrade).find(|k| k == spec) {
            Some(same) => *spec = same,
            None => {
                if known.len() == KEPT_PER_DAG {
                    known.remove(0);
                }
                known.push(Arc::downgrade(spec));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec, DagRunStatus, Step};

    fn run(dag: &str, step: &str) -> DagRun {
        let mut run = DagRun::new(
            "r",
            DagRunSpec {
                dag_ref: DagRef { name: dag.into() },
                ..Default::default()
            },
        );
        run.metadata.namespace = Some("ns".into());
        run.status = Some(DagRunStatus {
            dag_spec: Some(Arc::new(DagSpec {
                steps: vec![Step {
                    name: step.into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        });
        run
    }

    fn spec(run: &DagRun) -> &Arc<DagSpec> {
        run.status.as_ref().unwrap().dag_spec.as_ref().unwrap()
    }

    #[test]
    fn equal_specs_of_one_dag_are_one_copy_and_different_ones_are_not() {
        let shared = SharedSpecs::default();
        let (mut a, mut b, mut c, mut d) = (run("d", "s"), run("d", "s"), run("d", "t"), run("e", "s"));
        for r in [&mut a, &mut b, &mut c, &mut d] {
            shared.share(r);
        }
        assert!(Arc::ptr_eq(spec(&a), spec(&b)));
        assert!(
            !Arc::ptr_eq(spec(&a), spec(&c)),
            "a different spec of the same Dag stays its own"
        );
        assert!(
            !Arc::ptr_eq(spec(&a), spec(&d)),
            "another Dag's equal spec is not shared"
        );
        assert_eq!(spec(&b).steps[0].name, "s");
    }

    #[test]
    fn a_spec_no_cached_run_holds_is_forgotten() {
        let shared = SharedSpecs::default();
        let mut first = run("d", "s");
        shared.share(&mut first);
        drop(first);
        let mut next = run("d", "s");
        shared.share(&mut next);
        let mut again = run("d", "s");
        shared.share(&mut again);
        assert!(Arc::ptr_eq(spec(&next), spec(&again)));
        let known = shared.by_dag.lock().unwrap();
        assert_eq!(known[&("ns".into(), "d".into())].len(), 1, "the dropped spec is gone");
    }

    #[test]
    fn a_run_without_a_captured_spec_is_left_alone() {
        let shared = SharedSpecs::default();
        let mut pending = run("d", "s");
        pending.status = None;
        shared.share(&mut pending);
        assert!(pending.status.is_none());
        assert!(shared.by_dag.lock().unwrap().is_empty());
    }
}
