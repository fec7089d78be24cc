//! Calls of other Dags (`steps[].call`): which child run an attempt follows, what its state means
//! for the calling step, the call chain's depth limit, call cycles between Dags, and a run's own
//! `spec.outputs`.
//!
//! One attempt of a call step (or of one `forEach` instance of it) resolves, on every pass, as:
//! 1. the calling chain is at most [`MAX_CALL_DEPTH`] Dags deep, else the attempt fails naming it;
//! 2. the child Dag exists and the call's params resolve against its declarations;
//! 3. the attempt's own child (its deterministic name) exists and was not refused as a duplicate:
//!    follow it;
//! 4. else a run that blocks the params under the child Dag's `duplicatePolicy` exists
//!    ([`admit::find_blocking`]): follow it (reuse: a Succeeded one gives its outputs at once, a
//!    Pending/Queued/Running one is waited for);
//! 5. else create the own child (idempotent: its name is fixed), unless it exists already and was
//!    refused as a duplicate of a run that since stopped blocking: then the attempt failed.
//!
//! Everything is derived from the caches, never remembered, so a restarted operator (or 50
//! parents racing to create the same child) converges: of identical children created at once,
//! the child Dag's claim lets one proceed, and the others' parents follow it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{Call, Dag, DagRun, DagSpec, RunPhase, annotations};

use super::admit;
use super::expand;
use super::params::{self, Params};
use super::plan::{JobState, WAITING_PREFIX};
use super::references;

/// Longest chain of calling runs (the outermost run counts as 1); a deeper call fails.
pub const MAX_CALL_DEPTH: usize = 10;
/// A step following someone else's run looks at it again this often (seconds): that run's
/// changes do not wake the caller.
pub const REUSED_RECHECK_SECONDS: i64 = 2;
/// A step whose own child waits (Pending, Queued) looks at it again this often (seconds).
pub const QUEUED_RECHECK_SECONDS: i64 = 30;

/// What the operator's caches know about the runs and Dags of the calling run's namespace.
pub trait RunView: Sync {
    /// The Dag `name`.
    fn dag(&self, name: &str) -> Option<Arc<Dag>>;
    /// The run `name`.
    fn run(&self, name: &str) -> Option<Arc<DagRun>>;
    /// Every run of Dag `dag`.
    fn runs_of(&self, dag: &str) -> Vec<Arc<DagRun>>;
}

/// A view that knows no runs and no Dags (a run without call steps needs none).
pub struct NoRuns;

impl RunView for NoRuns {
    fn dag(&self, _: &str) -> Option<Arc<Dag>> {
        None
    }
    fn run(&self, _: &str) -> Option<Arc<DagRun>> {
        None
    }
    fn runs_of(&self, _: &str) -> Vec<Arc<DagRun>> {
        Vec::new()
    }
}

/// A child DagRun to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    /// Index of the calling step in `DagSpec::all_steps`.
    pub step: usize,
    /// The child's deterministic name.
    pub name: String,
    pub dag: String,
    /// The child's `spec.params` (the call's, expanded).
    pub params: Params,
    /// The child's call chain annotation ([`annotations::CALL_CHAIN`]).
    pub chain: String,
    /// The `forEach` item index, for a call made per item.
    pub index: Option<u32>,
}

/// The caller's side of one call attempt.
pub struct Caller<'a> {
    pub view: &'a dyn RunView,
    /// The calling run.
    pub run: &'a DagRun,
    /// The call, and its params with the references expanded.
    pub call: &'a Call,
    pub params: Params,
    /// The attempt's own child name.
    pub own: String,
}

/// How one call attempt stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// The attempt follows run `name`; `state` is what it means for the step.
    Follow {
        name: String,
        reused: bool,
        state: JobState,
    },
    /// Create the own child (with these params and chain).
    Spawn { params: Params, chain: String },
    /// The call cannot be made; the attempt fails with this message.
    Refused(String),
}

/// The calling chain of `run` including its own Dag, outermost first.
pub fn chain_of(run: &DagRun) -> Vec<String> {
    let recorded = run
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::CALL_CHAIN))
        .map(String::as_str)
        .unwrap_or_default();
    let mut chain: Vec<String> = recorded
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    chain.push(run.spec.dag_ref.name.clone());
    chain
}

/// Resolves one attempt as the module docs say.
pub fn resolve(caller: &Caller<'_>) -> Resolved {
    let chain = chain_of(caller.run);
    let target = &caller.call.dag;
    if chain.len() >= MAX_CALL_DEPTH {
        return Resolved::Refused(format!(
            "call depth limit {MAX_CALL_DEPTH} reached: {} -> {target} (a cycle of calls?)",
            chain.join(" -> ")
        ));
    }
    let Some(dag) = caller.view.dag(target) else {
        return Resolved::Refused(format!("call.dag: Dag {target:?} not found in the run's namespace"));
    };
    let resolved = match params::resolve(target, &dag.spec.params, &caller.params) {
        Ok(resolved) => resolved,
        Err(err) => return Resolved::Refused(format!("call.params: {err}")),
    };
    let own = caller.view.run(&caller.own);
    if let Some(own) = own.as_deref().filter(|r| !refused_as_duplicate(r)) {
        return follow(own, false);
    }
    let hash = params::param_hash(&resolved);
    let runs = caller.view.runs_of(target);
    let holder = admit::find_blocking(&caller.own, target, &dag.spec, &hash, runs.iter().map(|r| r.as_ref()));
    match (holder, own) {
        (Some(holder), _) => follow(holder, true),
        (None, Some(_)) => Resolved::Follow {
            name: caller.own.clone(),
            reused: false,
            state: JobState::Failed {
                finished_at: None,
                exit_code: None,
                message: format!(
                    "child run {} was refused as a duplicate, and the identical run it duplicated ended without success",
                    caller.own
                ),
            },
        },
        (None, None) => Resolved::Spawn {
            params: caller.params.clone(),
            chain: chain.join("/"),
        },
    }
}

/// A child the claim refused because another identical run holds the parameter set.
fn refused_as_duplicate(run: &DagRun) -> bool {
    run.status
        .as_ref()
        .is_some_and(|s| s.phase == RunPhase::Rejected && s.reason.as_deref() == Some("DuplicateParams"))
}

fn follow(run: &DagRun, reused: bool) -> Resolved {
    let name = run.metadata.name.clone().unwrap_or_default();
    let state = child_state(run, reused);
    Resolved::Follow { name, reused, state }
}

/// What a followed run's state means for the calling step's attempt.
pub fn child_state(run: &DagRun, reused: bool) -> JobState {
    let name = run.metadata.name.as_deref().unwrap_or_default();
    let status = run.status.clone().unwrap_or_default();
    let kind = if reused { "identical run" } else { "child run" };
    match status.phase {
        RunPhase::Running if !reused => JobState::Active,
        RunPhase::Pending | RunPhase::Queued | RunPhase::Running => JobState::Waiting {
            message: Some(format!("{WAITING_PREFIX}for {kind} {name} ({})", status.phase.as_str())),
            recheck_after_seconds: Some(if reused {
                REUSED_RECHECK_SECONDS
            } else {
                QUEUED_RECHECK_SECONDS
            }),
        },
        RunPhase::Succeeded => JobState::RunSucceeded {
            finished_at: status.finished_at,
            run: name.to_string(),
            outputs: status.outputs,
        },
        phase => JobState::Failed {
            finished_at: status.finished_at,
            exit_code: None,
            message: format!(
                "{kind} {name} ended {}: {}",
                phase.as_str(),
                status.message.unwrap_or_default()
            ),
        },
    }
}

/// The call's params with `$(param)`, `$(steps.S.outputs.N)` and `$(item)` expanded (one pass).
pub fn expand_params(
    call: &Call,
    params: &Params,
    output: &dyn Fn(&str, &str) -> Option<String>,
    item: Option<&str>,
) -> Params {
    call.params
        .iter()
        .map(|(k, v)| {
            let outputs: BTreeMap<String, String> = references::find_in_text(v)
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.key(), output(&r.step, &r.output).unwrap_or_default()))
                .collect();
            let lookup = |name: &str| {
                if name == ITEM {
                    return item;
                }
                params.get(name).or_else(|| outputs.get(name)).map(String::as_str)
            };
            (k.clone(), expand::expand(v, lookup))
        })
        .collect()
}

/// The name `$(item)` and the env var of a `forEach` instance's item.
pub const ITEM: &str = "item";

/// The outputs a succeeded run records: `spec.outputs` with their references expanded over the
/// run's params and its steps' outputs.
pub fn run_outputs(
    spec: &DagSpec,
    params: &Params,
    output: &dyn Fn(&str, &str) -> Option<String>,
) -> BTreeMap<String, String> {
    let call = Call {
        dag: String::new(),
        params: spec.outputs.iter().map(|o| (o.name.clone(), o.value.clone())).collect(),
    };
    expand_params(&call, params, output, None)
}

/// A cycle of calls through `root` (the Dag being admitted, with spec `spec`), following the
/// calls of the Dags `lookup` finds: the chain `root -> .. -> root`, or None.
pub fn find_cycle(root: &str, spec: &DagSpec, lookup: &dyn Fn(&str) -> Option<DagSpec>) -> Option<Vec<String>> {
    let mut path = vec![root.to_string()];
    let mut seen = std::collections::HashSet::new();
    walk(root, spec, lookup, &mut path, &mut seen)
}

fn walk(
    root: &str,
    spec: &DagSpec,
    lookup: &dyn Fn(&str) -> Option<DagSpec>,
    path: &mut Vec<String>,
    seen: &mut std::collections::HashSet<String>,
) -> Option<Vec<String>> {
    for called in called_dags(spec) {
        if called == root {
            let mut cycle = path.clone();
            cycle.push(called);
            return Some(cycle);
        }
        if !seen.insert(called.clone()) {
            continue;
        }
        if let Some(next) = lookup(&called) {
            path.push(called);
            if let Some(cycle) = walk(root, &next, lookup, path, seen) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

/// The Dags `spec`'s steps call, in step order, each once.
pub fn called_dags(spec: &DagSpec) -> Vec<String> {
    let mut called: Vec<String> = Vec::new();
    for call in spec.all_steps().filter_map(|s| s.call.as_ref()) {
        if !called.contains(&call.dag) {
            called.push(call.dag.clone());
        }
    }
    called
}

#[cfg(test)]
#[path = "call_tests.rs"]
pub(crate) mod tests;
