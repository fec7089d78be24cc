//! The in-memory index the runs page reads: every DagRun's [`RunRow`], bucketed by its Dag, kept
//! current from the DagRun watcher's events. Pure (no I/O): [`RunIndex::apply`] takes one
//! watcher event at a time, so a page view touches only its own Dag's rows and lists nothing.

use std::collections::HashMap;

use kube::runtime::watcher::Event;

use crate::api::DagRun;

use super::groups::RunRow;

/// A Dag by namespace and name.
pub type DagKey = (String, String);

/// DagRun rows by Dag, then by run name.
#[derive(Debug, Default)]
pub struct RunIndex {
    by_dag: HashMap<DagKey, HashMap<String, RunRow>>,
    /// Rows of a re-list in progress (between `Init` and `InitDone`); the old rows stay visible
    /// until it completes, then are replaced whole (runs deleted while unwatched disappear).
    relist: Option<HashMap<DagKey, HashMap<String, RunRow>>>,
}

impl RunIndex {
    /// Folds one watcher event in. Returns the row's Dag key when visible rows changed.
    pub fn apply(&mut self, event: &Event<DagRun>) -> Option<DagKey> {
        match event {
            Event::Apply(run) => {
                let row = RunRow::of(run);
                let key = (row.namespace.clone(), row.dag.clone());
                self.by_dag
                    .entry(key.clone())
                    .or_default()
                    .insert(row.name.clone(), row);
                Some(key)
            }
            Event::Delete(run) => {
                let row = RunRow::of(run);
                let key = (row.namespace.clone(), row.dag.clone());
                let rows = self.by_dag.get_mut(&key)?;
                rows.remove(&row.name);
                if rows.is_empty() {
                    self.by_dag.remove(&key);
                }
                Some(key)
            }
            Event::Init => {
                self.relist = Some(HashMap::new());
                None
            }
            Event::InitApply(run) => {
                let row = RunRow::of(run);
                let buffer = self.relist.get_or_insert_with(HashMap::new);
                let key = (row.namespace.clone(), row.dag.clone());
                buffer.entry(key).or_default().insert(row.name.clone(), row);
                None
            }
            Event::InitDone => {
                self.by_dag = self.relist.take().unwrap_or_default();
                Some((String::new(), String::new()))
            }
        }
    }

    /// The rows of one Dag's runs, in no particular order.
    pub fn runs_of<'a>(&'a self, namespace: &str, dag: &str) -> impl Iterator<Item = &'a RunRow> + 'a {
        self.by_dag
            .get(&(namespace.to_string(), dag.to_string()))
            .into_iter()
            .flat_map(HashMap::values)
    }

    /// How many runs the index holds.
    pub fn len(&self) -> usize {
        self.by_dag.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_dag.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DagRef, DagRunSpec};

    fn run(name: &str, dag: &str) -> DagRun {
        let mut run = DagRun::new(
            name,
            DagRunSpec {
                dag_ref: DagRef { name: dag.into() },
                ..Default::default()
            },
        );
        run.metadata.namespace = Some("ns".into());
        run
    }

    fn names(index: &RunIndex, dag: &str) -> Vec<String> {
        let mut names: Vec<String> = index.runs_of("ns", dag).map(|r| r.name.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn applies_and_deletes_land_in_their_dag_bucket() {
        let mut index = RunIndex::default();
        assert_eq!(
            index.apply(&Event::Apply(run("a-1", "a"))),
            Some(("ns".into(), "a".into()))
        );
        index.apply(&Event::Apply(run("a-2", "a")));
        index.apply(&Event::Apply(run("b-1", "b")));
        index.apply(&Event::Apply(run("a-1", "a")));
        assert_eq!(names(&index, "a"), ["a-1", "a-2"]);
        assert_eq!(index.len(), 3);
        index.apply(&Event::Delete(run("b-1", "b")));
        assert!(names(&index, "b").is_empty());
        assert_eq!(index.apply(&Event::Delete(run("zz", "nope"))), None);
    }

    #[test]
    fn a_relist_replaces_the_rows_only_when_done() {
        let mut index = RunIndex::default();
        index.apply(&Event::Apply(run("gone", "a")));
        index.apply(&Event::Init);
        index.apply(&Event::InitApply(run("kept", "a")));
        assert_eq!(names(&index, "a"), ["gone"]);
        assert!(index.apply(&Event::InitDone).is_some());
        assert_eq!(names(&index, "a"), ["kept"]);
    }
}
