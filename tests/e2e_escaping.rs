//! End to end on the local cluster: what a step container receives is byte for byte what the run
//! declared. Kubernetes' own `$(VAR)` expansion and `$$` escaping must not touch params, scripts,
//! args or user env values; only kubedag's `$(name)` references in command/args are substituted.

mod common;

use common::{STEP_IMAGE, TestEnv};
use kubedag::api::{Dag, DagRun, RunPhase};
use serde_json::json;

/// The issue's parameter value: `$$` and a reference to another param, both to arrive unchanged.
const B: &str = "price $$5 total $(a) end";

/// A value hostile in every way that matters here: backslashes, quotes, `;`, backquotes, tabs,
/// newlines, non-ASCII, lone `$`, unclosed `$(`, a literal `$(UNDECLARED)` and references to a
/// param and to a KUBEDAG_* value (which must arrive literally: values are never re-scanned).
const HOSTILE: &str =
    "lit $(KUBEDAG_RUN) $(a) \\ \\\\ \"dq\" 'sq' ; `id` \t tab\nline2 ünï ☃ $(UNDECLARED) $ $$ $( end";

/// Dag and run as JSON (which is YAML), so no value needs YAML quoting.
async fn run_steps(env: &TestEnv, steps: serde_json::Value, user_env: serde_json::Value) -> DagRun {
    let dag = json!({
        "apiVersion": "kubedag.io/v1alpha1",
        "kind": "Dag",
        "metadata": {"name": "esc"},
        "spec": {
            "params": [{"name": "a", "default": "alpha"}, {"name": "b"}, {"name": "c", "default": ""}],
            "defaults": {"image": STEP_IMAGE, "imagePullPolicy": "IfNotPresent", "env": user_env},
            "steps": steps,
        }
    });
    env.create::<Dag>(&dag.to_string()).await;
    let run = json!({
        "apiVersion": "kubedag.io/v1alpha1",
        "kind": "DagRun",
        "metadata": {"name": "r"},
        "spec": {"dagRef": {"name": "esc"}, "params": {"b": B, "c": HOSTILE}},
    });
    env.create::<DagRun>(&run.to_string()).await;
    let done = env.wait_finished("r").await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.phase, RunPhase::Succeeded, "{:?}", status.message);
    done
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn the_issue_example_reaches_scripts_and_args_unchanged() {
    let env = TestEnv::new("escape").await;
    let steps = json!([
        // `$$` is the shell's PID; `$b` the param as declared.
        {"name": "script", "script": "printf 'pid=%s\\n' \"$$\"; printf 'b=%s' \"$b\""},
        // `$(b)` is kubedag's reference; `$(a)` inside b's value is not re-expanded.
        {"name": "args", "command": ["printf"], "args": ["[%s][%s][%s]", "$(b)", "$(a)", "$$ $(KUBEDAG_STEP)"]},
    ]);
    run_steps(&env, steps, json!([])).await;

    let log = env.step_log("r", "script").await;
    let (pid_line, b_line) = log.split_once('\n').unwrap_or_else(|| panic!("script log: {log:?}"));
    let pid = pid_line
        .strip_prefix("pid=")
        .unwrap_or_else(|| panic!("script log: {log:?}"));
    assert!(
        !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()),
        "$$ did not reach the shell as its PID: {log:?}"
    );
    assert_eq!(b_line, format!("b={B}"));
    assert_eq!(env.step_log("r", "args").await, format!("[{B}][alpha][$$ args]"));
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn hostile_values_reach_env_args_and_scripts_unchanged() {
    let env = TestEnv::new("escape-hostile").await;
    let user_env = json!([
        // A user env value: kubedag expands $(a); `$$`, `$(UNDECLARED)` and the rest stay.
        {"name": "MIXED", "value": "a=$(a) pid=$$ \\ \"q\" ; ünï $(UNDECLARED) $(c)"},
    ]);
    let steps = json!([
        {"name": "env", "script": "printf '%s' \"$MIXED\""},
        {"name": "param", "script": "printf '%s' \"$c\""},
        {"name": "args", "command": ["printf", "%s"], "args": ["$(c)"]},
        // A script is never expanded by kubedag: $(c) here is shell command substitution.
        {"name": "subst", "script": "c='echo substituted'; printf '%s|%s' \"$(echo shell)\" \"$($c)\""},
    ]);
    run_steps(&env, steps, user_env).await;
    assert_eq!(
        env.step_log("r", "env").await,
        format!("a=alpha pid=$$ \\ \"q\" ; ünï $(UNDECLARED) {HOSTILE}")
    );
    assert_eq!(env.step_log("r", "param").await, HOSTILE);
    assert_eq!(env.step_log("r", "args").await, HOSTILE);
    assert_eq!(env.step_log("r", "subst").await, "shell|substituted");
}
