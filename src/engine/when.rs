//! `steps[].when`: a CEL condition deciding whether a step runs. Pure: no clock, no I/O.
//!
//! The expression sees two variables:
//! - `params`: the run's resolved parameters, a map of strings (`params.mode == 'full'`);
//! - `steps`: step name -> `{phase: string, outputs: map of strings, exitCode: int}` for the steps
//!   the reader may read (its transitive dependencies; for an exit handler also every main step).
//!   `exitCode` is `-1` when the step has none (skipped, never started, killed before reporting).
//!   Step names with `-` are written `steps['my-step']`, since `steps.my-step` is a subtraction.
//!
//! The standard CEL library (`int('3')`, `size`, `in`, `matches`, `startsWith`, `contains`, macros
//! `all`/`exists`/`map`/`filter`, ...) and the strings extension (`lowerAscii`, `split`, `trim`,
//! `replace`, ...) are available. [`compile`] refuses syntax errors and what could never be
//! checked or resolved: a variable other than `params` and `steps`, and a dynamic use of `steps`
//! (only `steps.NAME` / `steps['NAME']` may follow it). The step and param names it reads are in
//! [`Compiled::steps`] / [`Compiled::params`] for [`crate::engine::references`] to check against
//! the Dag. [`evaluate`] errors (with the CEL message) on a run-time failure such as `int('abc')` or
//! a missing key, and on a result that is not a bool.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::{Context, Env, Program, Value};
use serde::Serialize;

use crate::api::{DagSpec, Step, StepPhase, StepStatus};

/// Longest `when` expression accepted, in bytes (keeps evaluation cheap; also in the CRD schema).
pub const MAX_WHEN_BYTES: usize = 1024;
/// `status.steps[].reason` of a step skipped because its `when` was false (its dependants still run).
pub const WHEN_FALSE: &str = "WhenFalse";
/// `exitCode` of a step that has none.
pub const NO_EXIT_CODE: i64 = -1;

/// Identifiers that name CEL types (`type(x) == int`) rather than variables.
const TYPE_NAMES: [&str; 11] = [
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "type",
    "null_type",
    "dyn",
];

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .expect("the CEL strings extension registers on the standard library");
    Arc::new(env)
});

/// A parsed, statically checked `when` expression.
#[derive(Debug)]
pub struct Compiled {
    program: Program,
    /// `steps.S...` reads: step name -> output names read (`steps.S.outputs.N`); an empty set when
    /// only the step itself (phase, exitCode, or outputs dynamically) is read.
    pub steps: BTreeMap<String, BTreeSet<String>>,
    /// `params.P` / `params['P']` reads.
    pub params: BTreeSet<String>,
}

/// What `steps.NAME` evaluates to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// The step phase as in `status.steps[].phase`, e.g. `Succeeded`.
    pub phase: String,
    /// Every declared output; `""` for one not written (or a step that did not succeed).
    pub outputs: BTreeMap<String, String>,
    /// Exit code of the latest attempt, [`NO_EXIT_CODE`] if none.
    pub exit_code: i64,
}

impl StepView {
    /// The view of `step` given its recorded status (`None`: not started yet).
    pub fn of(step: &Step, status: Option<&StepStatus>) -> Self {
        let mut outputs = crate::engine::outputs::empty(&step.outputs);
        if let Some(recorded) = status.map(|s| &s.outputs) {
            for (name, slot) in outputs.iter_mut() {
                if let Some(value) = recorded.get(name) {
                    slot.clone_from(value);
                }
            }
        }
        StepView {
            phase: phase_name(status.map(|s| s.phase).unwrap_or_default()),
            outputs,
            exit_code: status.and_then(|s| s.exit_code).map_or(NO_EXIT_CODE, i64::from),
        }
    }
}

/// The `steps` variable of `reader`'s `when`: a [`StepView`] of every step it may read
/// ([`crate::engine::references::readable`]), given each step's recorded status by name.
pub fn steps_view<'a>(
    spec: &DagSpec,
    reader: &Step,
    status_of: impl Fn(&str) -> Option<&'a StepStatus>,
) -> BTreeMap<String, StepView> {
    crate::engine::references::readable(spec, reader)
        .into_iter()
        .map(|(name, step)| (name.to_string(), StepView::of(step, status_of(name))))
        .collect()
}

fn phase_name(phase: StepPhase) -> String {
    // The API's spelling of the phase is its serde form (the variant name).
    match serde_json::to_value(phase) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{phase:?}"),
    }
}

/// Parses `expr` and checks its use of variables. `Err` is a message for the user (CEL's syntax
/// error with its position, or what variable use is refused and why).
pub fn compile(expr: &str) -> Result<Compiled, String> {
    if expr.len() > MAX_WHEN_BYTES {
        return Err(format!("is {} bytes; the limit is {MAX_WHEN_BYTES}", expr.len()));
    }
    let program = ENV.compile(expr).map_err(|errors| {
        // Each error is "ERROR: <input>:LINE:COL: message" followed by lines drawing a caret;
        // keep the first line so the message fits one line of a status or an admission refusal.
        let parts: Vec<String> = errors
            .errors
            .iter()
            .map(|e| e.to_string().lines().next().unwrap_or_default().to_string())
            .collect();
        format!("syntax error: {}", parts.join("; "))
    })?;
    let mut walk = Walk::default();
    walk.expr(program.expression());
    if let Some(problem) = walk.problems.into_iter().next() {
        return Err(problem);
    }
    Ok(Compiled {
        program,
        steps: walk.steps,
        params: walk.params,
    })
}

/// Evaluates `when` with the run's resolved `params` and the `steps` the reader may read.
/// `Ok(false)` means: skip the step (`WhenFalse`). `Err` holds CEL's message, or says the result
/// was not a bool.
pub fn evaluate(
    when: &Compiled,
    params: &BTreeMap<String, String>,
    steps: &BTreeMap<String, StepView>,
) -> Result<bool, String> {
    let mut context = Context::with_env(ENV.clone());
    let bind = |e: cel::SerializationError| format!("cannot pass the run's state to CEL: {e}");
    context.add_variable("params", params).map_err(bind)?;
    context.add_variable("steps", steps).map_err(bind)?;
    match when.program.execute(&context) {
        Ok(Value::Bool(result)) => Ok(result),
        Ok(other) => Err(format!("must evaluate to a bool, got {}", describe(&other))),
        Err(e) => Err(e.to_string()),
    }
}

/// Compiles and evaluates `expr` in one go; see [`compile`] and [`evaluate`].
pub fn evaluate_expr(
    expr: &str,
    params: &BTreeMap<String, String>,
    steps: &BTreeMap<String, StepView>,
) -> Result<bool, String> {
    evaluate(&compile(expr)?, params, steps)
}

fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Null => "null",
        _ => "value",
    };
    format!("{kind} {value:?}")
}

/// Collects variable reads from the AST, refusing those that cannot be checked statically.
#[derive(Default)]
struct Walk {
    /// Variables bound by enclosing comprehensions (macros such as `all`, `map`).
    locals: Vec<String>,
    steps: BTreeMap<String, BTreeSet<String>>,
    params: BTreeSet<String>,
    problems: Vec<String>,
}

impl Walk {
    fn expr(&mut self, node: &IdedExpr) {
        if let Some((root, path)) = static_path(&node.expr)
            && !path.is_empty()
        {
            self.path(root, &path);
            return;
        }
        match &node.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => self.expr(&select.operand),
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.expr(target);
                }
                call.args.iter().for_each(|arg| self.expr(arg));
            }
            Expr::Comprehension(c) => {
                self.expr(&c.iter_range);
                self.expr(&c.accu_init);
                let bound = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)];
                let before = self.locals.len();
                self.locals.extend(bound.into_iter().flatten().cloned());
                for part in [&c.loop_cond, &c.loop_step, &c.result] {
                    self.expr(part);
                }
                self.locals.truncate(before);
            }
            Expr::List(list) => list.elements.iter().for_each(|e| self.expr(e)),
            Expr::Map(map) => map.entries.iter().for_each(|e| self.entry(&e.expr)),
            Expr::Struct(s) => s.entries.iter().for_each(|e| self.entry(&e.expr)),
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::MapEntry(e) => {
                self.expr(&e.key);
                self.expr(&e.value);
            }
            EntryExpr::StructField(f) => self.expr(&f.value),
        }
    }

    fn is_local(&self, name: &str) -> bool {
        self.locals.iter().any(|l| l == name)
    }

    fn ident(&mut self, name: &str) {
        if self.is_local(name) || name == "params" || TYPE_NAMES.contains(&name) {
            return;
        }
        self.problems.push(if name == "steps" {
            "steps may only be read as steps.NAME or steps['NAME'] (NAME a literal step name)".to_string()
        } else {
            format!("unknown variable {name:?}: a when expression reads only params and steps")
        });
    }

    /// A fully static chain `root.seg1['seg2']...`.
    fn path(&mut self, root: &str, path: &[&str]) {
        if self.is_local(root) {
            return;
        }
        match root {
            "steps" => {
                let outputs = self.steps.entry(path[0].to_string()).or_default();
                if path.len() >= 3 && path[1] == "outputs" {
                    outputs.insert(path[2].to_string());
                }
            }
            "params" => {
                self.params.insert(path[0].to_string());
            }
            other => self.ident(other),
        }
    }
}

/// `a.b['c'].d` -> `("a", ["b", "c", "d"])` when every step is a field selection or an index by a
/// string literal; `None` otherwise.
fn static_path(expr: &Expr) -> Option<(&str, Vec<&str>)> {
    let mut path = Vec::new();
    let mut current = expr;
    loop {
        match current {
            Expr::Ident(root) => {
                path.reverse();
                return Some((root, path));
            }
            Expr::Select(select) => {
                path.push(select.field.as_str());
                current = &select.operand.expr;
            }
            Expr::Call(call) if call.func_name == operators::INDEX && call.target.is_none() && call.args.len() == 2 => {
                let Expr::Literal(LiteralValue::String(key)) = &call.args[1].expr else {
                    return None;
                };
                path.push(key.inner());
                current = &call.args[0].expr;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
#[path = "when_tests.rs"]
mod tests;
