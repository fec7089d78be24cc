//! End to end on the local cluster: the `kubectl-dag` plugin binary against a real operator.

mod common;

use std::collections::BTreeMap;

use common::{STEP_IMAGE, TestEnv};
use kube::ResourceExt;
use kube::api::ListParams;
use kubedag::api::{Dag, DagRun, RunPhase};
use kubedag::engine::params;

/// What one invocation of the plugin did.
struct Invocation {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Invocation {
    /// The value of a `Key:  value` line of `run` or `get`.
    fn field(&self, key: &str) -> String {
        let prefix = format!("{key}:");
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {key:?} line in:\n{}", self.stdout))
            .trim()
            .to_string()
    }

    fn lines_containing(&self, text: &str) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.contains(text)).collect()
    }
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `kubectl-dag -n <test namespace> ARGS...` (KUBECONFIG is inherited).
async fn kubectl_dag(env: &TestEnv, args: &[&str]) -> Invocation {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dag"))
        .args(["-n", &env.ns])
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(common::WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("kubectl-dag {args:?} did not finish"))
        .expect("start kubectl-dag");
    Invocation {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A Dag with params `file` (required) and `threshold` (default 0.5) and the given steps (YAML flow).
fn dag(name: &str, extra_spec: &str, steps: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: [{{name: file}}, {{name: threshold, default: \"0.5\"}}]\n  defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}\n{extra_spec}  steps: {steps}\n"
    )
}

fn expected_hash(file: &str) -> String {
    let resolved = BTreeMap::from([
        ("file".to_string(), file.to_string()),
        ("threshold".to_string(), "0.5".to_string()),
    ]);
    params::param_hash(&resolved)
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn run_wait_exits_with_the_outcome_and_retry_reruns_a_failed_run() {
    let env = TestEnv::new("cli-run").await;
    env.create::<Dag>(&dag("ok", "", r#"[{name: work, script: "echo hello $file"}]"#))
        .await;
    env.create::<Dag>(&dag("bad", "", r#"[{name: work, script: "echo broken; exit 3"}]"#))
        .await;

    let ok = kubectl_dag(
        &env,
        &["run", "ok", "-p", "file=a.fits", "--request-id", "req-a", "--wait"],
    )
    .await;
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.field("Name").starts_with("ok-"), "{ok:?}");
    assert_eq!(ok.field("RequestId"), "req-a");
    assert_eq!(ok.field("ParamHash"), expected_hash("a.fits"));
    assert!(ok.field("Phase").starts_with("Succeeded"), "{ok:?}");

    let followed = kubectl_dag(&env, &["run", "ok", "-p", "file=b.fits", "--follow"]).await;
    assert_eq!(followed.code, 0, "{followed:?}");
    assert_eq!(
        followed.lines_containing("[work] hello b.fits").len(),
        1,
        "{followed:?}"
    );

    let failed = kubectl_dag(&env, &["run", "bad", "-p", "file=a.fits", "--wait"]).await;
    assert_ne!(failed.code, 0, "{failed:?}");
    assert!(failed.field("Phase").starts_with("Failed"), "{failed:?}");
    assert!(failed.stderr.contains("ended Failed"), "{failed:?}");

    // Without the webhook the controller rejects the duplicate; the plugin says so and fails.
    let duplicate = kubectl_dag(&env, &["run", "ok", "-p", "file=a.fits", "--wait"]).await;
    assert_ne!(duplicate.code, 0, "{duplicate:?}");
    assert!(duplicate.field("Phase").starts_with("Rejected"), "{duplicate:?}");
    assert!(
        duplicate
            .field("Message")
            .contains(&format!("DagRun {:?}", ok.field("Name"))),
        "{duplicate:?}"
    );

    let bad_param = kubectl_dag(&env, &["run", "ok", "-p", "foo"]).await;
    assert_eq!(bad_param.code, 2, "{bad_param:?}");
    assert!(
        bad_param.stderr.contains("\"foo\"") && bad_param.stderr.contains("KEY=VALUE"),
        "{bad_param:?}"
    );
    let undeclared = kubectl_dag(&env, &["run", "ok", "-p", "file=x", "-p", "bogus=1"]).await;
    assert_ne!(undeclared.code, 0, "{undeclared:?}");
    assert!(undeclared.stderr.contains("\"bogus\""), "{undeclared:?}");

    let not_failed = kubectl_dag(&env, &["retry", &ok.field("Name")]).await;
    assert_ne!(not_failed.code, 0, "{not_failed:?}");
    assert!(
        not_failed.stderr.contains("only a Failed run can be retried"),
        "{not_failed:?}"
    );
    let failed_name = failed.field("Name");
    let retry = kubectl_dag(&env, &["retry", &failed_name]).await;
    assert_eq!(retry.code, 0, "{retry:?}");
    let retried = env
        .eventually("the retried run to fail again", || async {
            let status = env.api::<DagRun>().get(&failed_name).await.ok()?.status?;
            (status.retries == 1 && status.phase == RunPhase::Failed).then_some(status)
        })
        .await;
    assert_eq!(retried.steps[0].attempts, 2, "{retried:?}");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn submit_creates_one_run_per_line_and_reports_duplicates_naming_the_existing_run() {
    let env = TestEnv::with_webhook("cli-submit").await;
    // At most a few runs execute at once: the rest wait as Queued, which still blocks duplicates.
    env.create::<Dag>(&dag(
        "quick",
        "  maxActiveRuns: 4\n",
        r#"[{name: work, command: ["true"]}]"#,
    ))
    .await;
    let mut existing = BTreeMap::new();
    for file in ["f007.fits", "f042.fits", "f093.fits"] {
        let run = kubectl_dag(&env, &["run", "quick", "-p", &format!("file={file}")]).await;
        assert_eq!(run.code, 0, "{run:?}");
        existing.insert(file, run.field("Name"));
    }

    let dir = std::env::temp_dir().join(format!("kubedag-{}", env.ns));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("files.csv");
    let rows: Vec<String> = (0..100).map(|i| format!("f{i:03}.fits,0.5")).collect();
    std::fs::write(&csv, format!("file,threshold\n{}\n", rows.join("\n"))).unwrap();
    let csv = csv.to_str().unwrap();

    let submitted = kubectl_dag(&env, &["submit", "quick", "--param-file", csv, "--parallel", "8"]).await;
    assert_eq!(submitted.code, 0, "{submitted:?}");
    assert_eq!(
        submitted.lines_containing(": accepted: DagRun quick-").len(),
        97,
        "{submitted:?}"
    );
    let duplicates = submitted.lines_containing(": duplicate: ");
    assert_eq!(duplicates.len(), 3, "{submitted:?}");
    for (file, run) in &existing {
        let line = duplicates
            .iter()
            .find(|l| l.contains(&format!("file={file}")))
            .unwrap_or_else(|| panic!("{file} not reported as a duplicate: {submitted:?}"));
        assert!(line.contains(&format!("DagRun {run} (")), "{line}");
    }
    assert!(
        submitted.stdout.ends_with("97 accepted, 3 duplicate, 0 failed\n"),
        "{submitted:?}"
    );
    let runs = || async {
        let all = env.api::<DagRun>().list(&ListParams::default()).await.unwrap().items;
        all.iter().filter(|r| r.spec.dag_ref.name == "quick").count()
    };
    assert_eq!(runs().await, 100);

    // Safe to re-run: every line now has its run.
    let again = kubectl_dag(&env, &["submit", "quick", "--param-file", csv]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.ends_with("0 accepted, 100 duplicate, 0 failed\n"),
        "{again:?}"
    );
    assert_eq!(runs().await, 100);

    // Lines repeating an earlier line of the same file are duplicates too; bad lines fail.
    let jsonl = dir.join("more.jsonl");
    std::fs::write(
        &jsonl,
        "{\"file\": \"g1.fits\"}\n{\"file\": \"g1.fits\", \"threshold\": 0.5}\n{\"bogus\": 1}\n",
    )
    .unwrap();
    let more = kubectl_dag(&env, &["submit", "quick", "--param-file", jsonl.to_str().unwrap()]).await;
    assert_eq!(more.code, 1, "{more:?}");
    let first = more.lines_containing("line 1: accepted: DagRun ");
    assert_eq!(first.len(), 1, "{more:?}");
    let run = first[0].split_whitespace().nth(4).unwrap();
    assert_eq!(
        more.lines_containing(&format!(
            "line 2: duplicate: line 1 has the same parameters (DagRun {run})"
        ))
        .len(),
        1,
        "{more:?}"
    );
    assert_eq!(more.lines_containing("line 3: failed: ").len(), 1, "{more:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn list_get_graph_and_logs_show_finished_runs() {
    let env = TestEnv::new("cli-show").await;
    env.create::<Dag>(&dag(
        "pipeline",
        "",
        r#"[{name: fetch, script: "echo fetching $file"}, {name: calibrate, depends: [fetch], script: "echo calibrating $file at $threshold"}]"#,
    ))
    .await;
    let mut names = BTreeMap::new();
    for file in ["m31.fits", "m42.fits"] {
        let run = kubectl_dag(&env, &["run", "pipeline", "-p", &format!("file={file}"), "--wait"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        names.insert(file, run.field("Name"));
    }
    let (m31, m42) = (&names["m31.fits"], &names["m42.fits"]);

    let listed = kubectl_dag(&env, &["list", "pipeline", "-p", "file=m42.fits"]).await;
    assert_eq!(listed.code, 0, "{listed:?}");
    assert!(listed.stdout.starts_with("Dag pipeline (1 run)\n"), "{listed:?}");
    let row = listed.lines_containing(m42);
    assert_eq!(row.len(), 1, "{listed:?}");
    for column in [
        "Succeeded",
        "2/2",
        &expected_hash("m42.fits")[..12],
        "file=m42.fits threshold=0.5",
    ] {
        assert!(row[0].contains(column), "{column} missing from {row:?}");
    }
    assert!(!listed.stdout.contains(m31.as_str()), "{listed:?}");

    let as_json = kubectl_dag(
        &env,
        &["list", "--phase", "succeeded", "-p", "threshold=0.5", "-o", "json"],
    )
    .await;
    assert_eq!(as_json.code, 0, "{as_json:?}");
    let list: serde_json::Value = serde_json::from_str(&as_json.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{as_json:?}");
    let none = kubectl_dag(&env, &["list", "--phase", "Failed"]).await;
    assert_eq!((none.code, none.stdout.as_str()), (0, ""), "{none:?}");

    let got = kubectl_dag(&env, &["get", m31]).await;
    assert_eq!(got.code, 0, "{got:?}");
    assert_eq!(got.field("Phase"), "Succeeded (2/2 steps done)");
    assert_eq!(got.field("ParamHash"), expected_hash("m31.fits"));
    assert_eq!(got.field("Params"), "file=m31.fits threshold=0.5");
    let step_rows: Vec<Vec<&str>> = got
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("STEP"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // STEP PHASE ATTEMPTS DURATION EXIT DEPENDS; calibrate is drawn under fetch.
    assert_eq!(step_rows.len(), 2, "{got:?}");
    assert_eq!(
        (step_rows[0][0], step_rows[0][1], step_rows[0][2], step_rows[0][4]),
        ("fetch", "Succeeded", "1", "0")
    );
    assert_eq!(
        (
            step_rows[1][0],
            step_rows[1][1],
            step_rows[1][2],
            step_rows[1][3],
            step_rows[1][5],
            step_rows[1][6]
        ),
        ("└─", "calibrate", "Succeeded", "1", "0", "fetch")
    );
    let as_yaml = kubectl_dag(&env, &["get", m31, "-o", "yaml"]).await;
    let parsed: DagRun = serde_yaml::from_str(&as_yaml.stdout).unwrap();
    assert_eq!(parsed.name_any(), *m31);
    assert_eq!(parsed.status.unwrap().phase, RunPhase::Succeeded);

    let logs = kubectl_dag(&env, &["logs", m31]).await;
    assert_eq!(logs.code, 0, "{logs:?}");
    assert_eq!(
        logs.stdout,
        "[fetch] fetching m31.fits\n[calibrate] calibrating m31.fits at 0.5\n"
    );
    let one_step = kubectl_dag(&env, &["logs", m31, "calibrate"]).await;
    assert_eq!(
        one_step.stdout, "[calibrate] calibrating m31.fits at 0.5\n",
        "{one_step:?}"
    );
    let followed = kubectl_dag(&env, &["logs", m42, "-f"]).await;
    assert_eq!(followed.code, 0, "{followed:?}");
    assert_eq!(
        followed.lines_containing("[fetch] fetching m42.fits").len(),
        1,
        "{followed:?}"
    );
    assert_eq!(
        followed
            .lines_containing("[calibrate] calibrating m42.fits at 0.5")
            .len(),
        1,
        "{followed:?}"
    );
    // graph: a run's steps by phase (Mermaid), a Dag's plain (Graphviz), an unknown name refused.
    let drawn = kubectl_dag(&env, &["graph", m31]).await;
    assert_eq!(drawn.code, 0, "{drawn:?}");
    for part in [
        "flowchart TD\n",
        "s0[\"fetch · Succeeded\"]",
        "s1[\"calibrate · Succeeded\"]",
        "s0 --> s1\n",
    ] {
        assert!(drawn.stdout.contains(part), "{part} missing: {drawn:?}");
    }
    let dot = kubectl_dag(&env, &["graph", "pipeline", "-o", "dot"]).await;
    assert_eq!(dot.code, 0, "{dot:?}");
    assert!(
        dot.stdout.starts_with("digraph dag {") && dot.stdout.contains("s0 -> s1"),
        "{dot:?}"
    );
    assert!(!dot.stdout.contains("Succeeded"), "a Dag has no phases: {dot:?}");
    let nothing = kubectl_dag(&env, &["graph", "no-such"]).await;
    assert_ne!(nothing.code, 0, "{nothing:?}");
    assert!(nothing.stderr.contains("no DagRun or Dag \"no-such\""), "{nothing:?}");

    let unknown = kubectl_dag(&env, &["logs", m31, "nosuch"]).await;
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(
        unknown.stderr.contains("\"nosuch\" is not a step") && unknown.stderr.contains("fetch, calibrate"),
        "{unknown:?}"
    );
    let missing = kubectl_dag(&env, &["get", "no-such-run"]).await;
    assert_ne!(missing.code, 0, "{missing:?}");
    assert!(
        missing.stderr.contains("DagRun \"no-such-run\" not found"),
        "{missing:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn cancel_stops_a_running_run() {
    let env = TestEnv::new("cli-cancel").await;
    env.create::<Dag>(&dag("slow", "", r#"[{name: wait, script: "sleep 300"}]"#))
        .await;
    let run = kubectl_dag(&env, &["run", "slow", "-p", "file=x"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let name = run.field("Name");
    env.wait_phase(&name, RunPhase::Running).await;

    let cancel = kubectl_dag(&env, &["cancel", &name]).await;
    assert_eq!(cancel.code, 0, "{cancel:?}");
    assert!(cancel.stdout.contains("cancel requested"), "{cancel:?}");
    env.wait_phase(&name, RunPhase::Cancelled).await;

    let again = kubectl_dag(&env, &["cancel", &name]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("already ended Cancelled"), "{again:?}");
    let got = kubectl_dag(&env, &["get", &name]).await;
    assert!(got.field("Phase").starts_with("Cancelled"), "{got:?}");
}

/// Runs `kubectl_complete-dag WORDS...` as kubectl would for `kubectl dag WORDS<TAB>`.
async fn kubectl_complete(words: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl_complete-dag"))
        .args(words)
        .kill_on_drop(true)
        .output()
        .await
        .expect("start kubectl_complete-dag");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn applied_runs_are_selected_by_dag_paged_listed_everywhere_watched_and_complete_by_name() {
    let env = TestEnv::new("cli-pages").await;
    env.create::<Dag>(&dag("paged", "", r#"[{name: a, script: "true"}]"#))
        .await;
    for file in ["a", "b", "c"] {
        env.create::<DagRun>(&common::run_yaml(&format!("paged-{file}"), "paged", &[("file", file)]))
            .await;
    }
    // Another Dag's run, which no selection of `paged` may show.
    env.create::<Dag>(&dag("other", "", r#"[{name: a, script: "true"}]"#))
        .await;
    env.create::<DagRun>(&common::run_yaml("other-a", "other", &[("file", "a")]))
        .await;
    let by_field = ListParams::default().fields("spec.dagRef.name=paged");
    let listed = env
        .api::<DagRun>()
        .list(&by_field)
        .await
        .expect("list by spec.dagRef.name");
    let mut names: Vec<String> = listed.items.iter().map(|r| r.name_any()).collect();
    names.sort();
    assert_eq!(
        names,
        ["paged-a", "paged-b", "paged-c"],
        "the API server selects on the field"
    );

    let first = kubectl_dag(&env, &["list", "paged", "--limit", "2"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.lines_containing("paged-").len(), 2, "{first:?}");
    let token = first
        .stderr
        .split("--continue ")
        .nth(1)
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| panic!("no continue token: {first:?}"));
    let rest = kubectl_dag(&env, &["list", "paged", "--limit", "2", "--continue", &token]).await;
    assert_eq!(rest.code, 0, "{rest:?}");
    let mut seen: Vec<&str> = first.lines_containing("paged-");
    seen.extend(rest.lines_containing("paged-"));
    assert_eq!(seen.len(), 3, "two pages hold the 3 runs once each: {first:?} {rest:?}");

    // -A, one Dag: the runs appear under their namespace's heading, the other Dag's do not.
    let everywhere = kubectl_dag(&env, &["list", "-A", "paged"]).await;
    assert_eq!(everywhere.code, 0, "{everywhere:?}");
    let heading = format!("Dag {}/paged (3 runs)", env.ns);
    assert!(everywhere.stdout.lines().any(|l| l == heading), "{everywhere:?}");
    assert!(everywhere.lines_containing("other-a").is_empty(), "{everywhere:?}");

    // -w: after the list, one line per change; a run created meanwhile shows up.
    let mut watching = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dag"))
        .args(["-n", &env.ns, "list", "paged", "-w"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kubectl-dag list -w");
    let mut watched = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(watching.stdout.take().unwrap()));
    env.create::<DagRun>(&common::run_yaml("paged-d", "paged", &[("file", "d")]))
        .await;
    let seen = tokio::time::timeout(common::WAIT, async {
        while let Some(line) = watched.next_line().await.unwrap() {
            if line.starts_with("paged-d ") {
                return line;
            }
        }
        panic!("list -w ended without showing paged-d");
    })
    .await
    .expect("list -w shows the new run");
    assert!(seen.contains("file=d"), "{seen}");
    watching.kill().await.unwrap();

    let completions = kubectl_complete(&["get", "-n", &env.ns, "paged-"]).await;
    let names: Vec<&str> = completions
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["paged-a", "paged-b", "paged-c", "paged-d", ":4"],
        "{completions}"
    );
    let dags = kubectl_complete(&["run", "-n", &env.ns, "pa"]).await;
    assert!(dags.starts_with("paged\tDag\n"), "{dags}");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn logs_follow_streams_a_running_run_step_by_step_and_exits_when_it_ends() {
    use tokio::io::AsyncBufReadExt;

    let env = TestEnv::new("cli-follow").await;
    // Three sequential steps; the second fails its first attempt, so its retry is labelled.
    let steps = concat!(
        r#"[{name: a, script: "for i in 1 2 3; do echo a line $i; sleep 1; done"}, "#,
        r#"{name: b, depends: [a], retry: {limit: 1}, script: "case $HOSTNAME in *-b-1-*) echo b fails; exit 1;; esac; for i in 1 2 3; do echo b line $i; sleep 1; done"}, "#,
        r#"{name: c, depends: [b], script: "echo c line 1; sleep 1; echo c line 2"}]"#
    );
    env.create::<Dag>(&dag("seq", "", steps)).await;
    let started = kubectl_dag(&env, &["run", "seq", "-p", "file=x"]).await;
    assert_eq!(started.code, 0, "{started:?}");
    let name = started.field("Name");

    let mut follower = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dag"))
        .args(["-n", &env.ns, "logs", &name, "-f"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kubectl-dag logs -f");
    let mut stdout = tokio::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let followed = async {
        let mut lines = Vec::new();
        while let Some(line) = stdout.next_line().await.expect("read the followed logs") {
            if lines.is_empty() {
                // The first line arrives while the run still runs: it is streamed, not read at the end.
                let run = env.api::<DagRun>().get(&name).await.unwrap();
                let phase = run.status.map(|s| s.phase).unwrap_or_default();
                assert!(
                    !phase.is_terminal(),
                    "the first line came only after the run ended {phase:?}"
                );
            }
            lines.push(line);
        }
        let status = follower.wait().await.expect("wait for kubectl-dag logs -f");
        (lines, status)
    };
    let (lines, status) = tokio::time::timeout(common::WAIT, followed)
        .await
        .expect("logs -f exits when the run ends");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut follower.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "{status:?}, stderr: {stderr}");
    let run = env.api::<DagRun>().get(&name).await.unwrap();
    assert_eq!(
        run.status.map(|s| s.phase),
        Some(RunPhase::Succeeded),
        "logs -f exited before the run ended"
    );
    assert_eq!(
        lines,
        [
            "[a] a line 1",
            "[a] a line 2",
            "[a] a line 3",
            "[b] b fails",
            "[b#2] b line 1",
            "[b#2] b line 2",
            "[b#2] b line 3",
            "[c] c line 1",
            "[c] c line 2",
        ],
        "stderr: {stderr}"
    );
}
