//! The runs page's data, pure: a Dag's runs grouped by resolved parameter set (one group per
//! distinct paramHash), filtered by parameter value, phase and time, sorted, and cut into pages.
//!
//! Input is the compact [`RunRow`] the cache keeps per run; nothing here does I/O or reads a
//! clock (callers pass `now`), so the same query over the same rows always gives the same page.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};

use crate::api::{DagRun, RunPhase};
use crate::engine::params;

/// What the UI keeps of one DagRun: enough for the Dags and runs pages, a few hundred bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub namespace: String,
    pub name: String,
    pub dag: String,
    pub phase: RunPhase,
    /// Resolved params (`status.params`), or the spec's params before the operator resolved them.
    pub params: BTreeMap<String, String>,
    /// `status.paramHash`, or the hash of the spec's params before the operator resolved them.
    pub param_hash: String,
    pub created: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    /// `status.retries`: how often the whole run was retried.
    pub retries: u32,
}

impl RunRow {
    /// The summary of `run`.
    pub fn of(run: &DagRun) -> RunRow {
        let status = run.status.as_ref();
        let params = status
            .and_then(|s| s.params.clone())
            .unwrap_or_else(|| run.spec.params.clone());
        let param_hash = status
            .and_then(|s| s.param_hash.clone())
            .unwrap_or_else(|| params::param_hash(&params));
        RunRow {
            namespace: run.metadata.namespace.clone().unwrap_or_default(),
            name: run.metadata.name.clone().unwrap_or_default(),
            dag: run.spec.dag_ref.name.clone(),
            phase: status.map(|s| s.phase).unwrap_or_default(),
            params,
            param_hash,
            created: run.metadata.creation_timestamp.as_ref().map(|t| t.0),
            started: status.and_then(|s| s.started_at.as_ref()).map(|t| t.0),
            finished: status.and_then(|s| s.finished_at.as_ref()).map(|t| t.0),
            retries: status.map_or(0, |s| s.retries),
        }
    }

    /// How long the run ran (until `now` while it runs); `None` before it started.
    pub fn duration(&self, now: Timestamp) -> Option<SignedDuration> {
        let started = self.started?;
        Some(self.finished.unwrap_or(now).duration_since(started))
    }
}

/// One distinct parameter set of a Dag and its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Group<'a> {
    pub param_hash: &'a str,
    pub params: &'a BTreeMap<String, String>,
    /// The newest run (by creation, then name).
    pub latest: &'a RunRow,
    pub runs: usize,
    /// Run retries summed over the group's runs.
    pub retries: u32,
}

/// Which groups to show. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Keep groups with some parameter value containing this (case-insensitive); `name=text`
    /// looks only at parameter `name`.
    pub text: String,
    /// Keep groups whose latest run is in one of these phases.
    pub phases: Vec<RunPhase>,
    /// Keep groups whose latest run was created at most this long before `now`.
    pub within: Option<SignedDuration>,
    pub sort: Sort,
    /// Descending instead of ascending.
    pub descending: bool,
    /// 1-based page number; 0 is read as 1.
    pub page: usize,
    /// Groups per page; 0 is read as [`DEFAULT_PAGE_SIZE`].
    pub page_size: usize,
}

/// Groups per page unless the query says otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page a query may ask for.
pub const MAX_PAGE_SIZE: usize = 500;

/// Sort keys of the runs page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Creation of the latest run (the default, newest first when descending).
    #[default]
    Latest,
    /// The latest run's phase, by name.
    Phase,
    /// Number of runs.
    Runs,
    /// The latest run's duration.
    Duration,
    /// The value of this parameter.
    Param(usize),
}

impl Sort {
    /// `latest`, `phase`, `runs`, `duration` or `param:NAME` (NAME among `columns`).
    /// Errors name the value and the allowed keys.
    pub fn parse(text: &str, columns: &[String]) -> Result<Sort, String> {
        match text {
            "" | "latest" => Ok(Sort::Latest),
            "phase" => Ok(Sort::Phase),
            "runs" => Ok(Sort::Runs),
            "duration" => Ok(Sort::Duration),
            other => other
                .strip_prefix("param:")
                .and_then(|name| columns.iter().position(|c| c == name))
                .map(Sort::Param)
                .ok_or_else(|| {
                    let params: Vec<String> = columns.iter().map(|c| format!("param:{c}")).collect();
                    format!(
                        "sort {other:?} is not one of latest, phase, runs, duration{}{}",
                        if params.is_empty() { "" } else { ", " },
                        params.join(", ")
                    )
                }),
        }
    }

    /// The query-string form [`Sort::parse`] reads back.
    pub fn key(self, columns: &[String]) -> String {
        match self {
            Sort::Latest => "latest".into(),
            Sort::Phase => "phase".into(),
            Sort::Runs => "runs".into(),
            Sort::Duration => "duration".into(),
            Sort::Param(i) => format!("param:{}", columns.get(i).map_or("", String::as_str)),
        }
    }
}

/// One page of groups and what the page controls need.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<'a> {
    /// Parameter names over all the Dag's runs, sorted: the table's columns.
    pub columns: Vec<String>,
    pub groups: Vec<Group<'a>>,
    /// Groups that passed the filters (over all pages).
    pub matched: usize,
    /// Groups before filtering.
    pub total: usize,
    /// 1-based, clamped to the last page.
    pub page: usize,
    pub pages: usize,
}

/// Groups `runs` (all of one Dag) by paramHash.
pub fn group<'a>(runs: impl IntoIterator<Item = &'a RunRow>) -> Vec<Group<'a>> {
    let mut by_hash: HashMap<&'a str, Group<'a>> = HashMap::new();
    for run in runs {
        let group = by_hash.entry(&run.param_hash).or_insert(Group {
            param_hash: &run.param_hash,
            params: &run.params,
            latest: run,
            runs: 0,
            retries: 0,
        });
        group.runs += 1;
        group.retries += run.retries;
        if newer(run, group.latest) {
            group.latest = run;
            group.params = &run.params;
        }
    }
    let mut groups: Vec<Group<'a>> = by_hash.into_values().collect();
    groups.sort_by(|a, b| a.param_hash.cmp(b.param_hash));
    groups
}

fn newer(a: &RunRow, b: &RunRow) -> bool {
    (a.created, &a.name) > (b.created, &b.name)
}

/// Whether `group` passes the query's filters.
pub fn matches(group: &Group<'_>, query: &Query, now: Timestamp) -> bool {
    if !query.phases.is_empty() && !query.phases.contains(&group.latest.phase) {
        return false;
    }
    if let Some(within) = query.within {
        let recent = group.latest.created.is_some_and(|c| now.duration_since(c) <= within);
        if !recent {
            return false;
        }
    }
    text_matches(group.params, &query.text)
}

/// Case-insensitive substring match over the values (all, or those of `name=` when given).
fn text_matches(params: &BTreeMap<String, String>, text: &str) -> bool {
    let text = text.trim();
    if text.is_empty() {
        return true;
    }
    let (only, needle) = match text.split_once('=') {
        Some((name, value)) if params.contains_key(name.trim()) => (Some(name.trim()), value),
        _ => (None, text),
    };
    let needle = needle.to_lowercase();
    params
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
        .any(|(_, value)| value.to_lowercase().contains(&needle))
}

/// The page `query` asks for from a Dag's `runs`.
pub fn page<'a>(runs: impl IntoIterator<Item = &'a RunRow>, query: &Query, now: Timestamp) -> Page<'a> {
    let all = group(runs);
    let columns: Vec<String> = all
        .iter()
        .flat_map(|g| g.params.keys().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let total = all.len();
    let mut kept: Vec<Group<'a>> = all.into_iter().filter(|g| matches(g, query, now)).collect();
    sort(&mut kept, query, &columns, now);
    let size = match query.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let matched = kept.len();
    let pages = matched.div_ceil(size).max(1);
    let page = query.page.clamp(1, pages);
    let groups = kept.into_iter().skip((page - 1) * size).take(size).collect();
    Page {
        columns,
        groups,
        matched,
        total,
        page,
        pages,
    }
}

/// Sorts by the query's key; ties by paramHash, so the order is total and stable across views.
fn sort(groups: &mut [Group<'_>], query: &Query, columns: &[String], now: Timestamp) {
    groups.sort_by(|a, b| {
        let by_key = match query.sort {
            Sort::Latest => (a.latest.created, &a.latest.name).cmp(&(b.latest.created, &b.latest.name)),
            Sort::Phase => a.latest.phase.as_str().cmp(b.latest.phase.as_str()),
            Sort::Runs => a.runs.cmp(&b.runs),
            Sort::Duration => a.latest.duration(now).cmp(&b.latest.duration(now)),
            Sort::Param(i) => {
                let value = |g: &Group<'_>| columns.get(i).and_then(|c| g.params.get(c)).cloned();
                value(a).cmp(&value(b))
            }
        };
        let by_key = if query.descending { by_key.reverse() } else { by_key };
        by_key.then_with(|| a.param_hash.cmp(b.param_hash))
    });
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
