//! End to end on the local cluster: Dags, runs, Jobs, labels, env, failure, retry, timeout,
//! garbage collection, spec capture, and bad input.

mod common;

use common::{STEP_IMAGE, TestEnv, run_yaml};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};
use kubedag::api::{Dag, DagRun, RunPhase, StepPhase};

fn diamond_dag(name: &str) -> String {
    format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: {name}}}
spec:
  params:
    - name: file
    - name: threshold
      default: "0.5"
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  duplicatePolicy: Allow
  steps:
    - name: a
      command: ["sh", "-c", "echo a file=$(file)"]
    - name: b
      depends: [a]
      script: 'echo "b file=$file threshold=$threshold run=$KUBEDAG_RUN hash=$KUBEDAG_PARAM_HASH req=$KUBEDAG_REQUEST_ID"'
    - name: c
      depends: [a]
      script: 'echo "c file=$file step=$KUBEDAG_STEP"'
    - name: d
      depends: [b, c]
      script: 'echo "d file=$file"'
"#
    )
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn diamond_runs_in_parallel_with_their_own_params_and_labels() {
    let env = TestEnv::new("diamond").await;
    env.create::<Dag>(&diamond_dag("diamond")).await;
    let files = ["m31-0001.fits", "m31-0002.fits", "m42-0003.fits"];
    for (i, file) in files.iter().enumerate() {
        env.create::<DagRun>(&run_yaml(&format!("run-{i}"), "diamond", &[("file", file)]))
            .await;
    }
    for (i, file) in files.iter().enumerate() {
        let name = format!("run-{i}");
        let run = env.wait_finished(&name).await;
        let status = run.status.clone().unwrap();
        assert_eq!(status.phase, RunPhase::Succeeded, "{name}: {:?}", status.message);
        assert_eq!(status.progress.as_deref(), Some("4/4"));
        let expected_params = format!(r#"{{"file":"{file}","threshold":"0.5"}}"#);
        let expected_hash = hex_sha256(&expected_params);
        assert_eq!(status.param_hash.as_deref(), Some(expected_hash.as_str()));
        let request_id = status.request_id.clone().unwrap();
        assert_eq!(uuid::Uuid::parse_str(&request_id).unwrap().get_version_num(), 4);
        for step in &status.steps {
            assert_eq!(step.phase, StepPhase::Succeeded, "{name}/{}", step.name);
            assert_eq!((step.attempts, step.exit_code), (1, Some(0)));
            assert!(step.started_at.is_some() && step.finished_at.is_some());
        }
        let jobs = env.jobs_of(&name).await;
        assert_eq!(jobs.len(), 4, "one Job per step");
        let pods = env.pods_of(&name).await;
        assert_eq!(pods.len(), 4, "one pod per Job");
        let labelled: Vec<_> = jobs
            .iter()
            .map(|j| j.labels().clone())
            .chain(pods.iter().map(|p| p.labels().clone()))
            .collect();
        for labels in labelled {
            assert_eq!(labels["kubedag.io/dag"], "diamond");
            assert_eq!(labels["kubedag.io/run"], name);
            assert_eq!(labels["kubedag.io/request-id"], request_id);
            assert_eq!(labels["kubedag.io/param-hash"], expected_hash[..32]);
        }
        assert_eq!(env.step_log(&name, "a").await.trim(), format!("a file={file}"));
        assert_eq!(
            env.step_log(&name, "b").await.trim(),
            format!("b file={file} threshold=0.5 run={name} hash={expected_hash} req={request_id}")
        );
        assert_eq!(env.step_log(&name, "c").await.trim(), format!("c file={file} step=c"));
        let b = status.steps.iter().find(|s| s.name == "b").unwrap();
        let d = status.steps.iter().find(|s| s.name == "d").unwrap();
        let a = status.steps.iter().find(|s| s.name == "a").unwrap();
        assert!(
            a.finished_at.as_ref().unwrap().0 <= b.started_at.as_ref().unwrap().0,
            "b started before a finished"
        );
        assert!(
            b.finished_at.as_ref().unwrap().0 <= d.started_at.as_ref().unwrap().0,
            "d started before b finished"
        );
    }
    let dag = env
        .eventually("Dag status to count no active runs", || async {
            let dag = env.dag().await.get("diamond").await.ok()?;
            let s = dag.status.clone()?;
            (s.active_runs == 0 && s.step_count == 4).then_some(dag)
        })
        .await;
    let valid = &dag.status.unwrap().conditions[0];
    assert_eq!((valid.type_.as_str(), valid.status.as_str()), ("Valid", "True"));
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn failing_step_fails_its_run_skips_dependants_and_leaves_other_runs_alone() {
    let env = TestEnv::new("fail").await;
    env.create::<Dag>(&format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: pipeline}}
spec:
  params: [{{name: mode}}]
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  steps:
    - {{name: first, script: "echo first"}}
    - {{name: middle, depends: [first], script: 'if [ "$mode" = bad ]; then echo broken >&2; exit 3; fi; echo fine'}}
    - {{name: last, depends: [middle], script: "echo last"}}
    - {{name: side, depends: [first], script: "sleep 2; echo side"}}
"#
    ))
    .await;
    env.create::<DagRun>(&run_yaml("bad", "pipeline", &[("mode", "bad")]))
        .await;
    env.create::<DagRun>(&run_yaml("good", "pipeline", &[("mode", "good")]))
        .await;
    let bad = env.wait_finished("bad").await.status.unwrap();
    assert_eq!(bad.phase, RunPhase::Failed);
    let phase = |name: &str| bad.steps.iter().find(|s| s.name == name).unwrap().clone();
    assert_eq!(phase("middle").phase, StepPhase::Failed);
    assert_eq!(phase("middle").exit_code, Some(3));
    assert_eq!(phase("last").phase, StepPhase::Skipped);
    assert_eq!(
        phase("side").phase,
        StepPhase::Succeeded,
        "independent steps run to the end"
    );
    assert!(
        bad.message.as_deref().unwrap().contains("\"middle\""),
        "{:?}",
        bad.message
    );
    assert!(
        env.jobs_of("bad")
            .await
            .iter()
            .all(|j| j.labels()["kubedag.io/step"] != "last"),
        "skipped steps launch nothing"
    );
    let good = env.wait_finished("good").await.status.unwrap();
    assert_eq!(good.phase, RunPhase::Succeeded);
    assert_eq!(env.jobs_of("good").await.len(), 4);

    // Events at the default level (--events=failures): warnings naming the step, nothing else.
    let warnings = env
        .eventually("the bad run's warning events", || async {
            let events = env.events_of("bad").await;
            let has = |reason: &str| events.iter().any(|(_, r, _)| r == reason);
            (has("StepFailed") && has("Failed")).then_some(events)
        })
        .await;
    let step_failed = warnings.iter().find(|(_, r, _)| r == "StepFailed").unwrap();
    assert_eq!(step_failed.0, "Warning");
    assert!(
        step_failed.2.contains("\"middle\"") && step_failed.2.contains("exit code 3"),
        "{step_failed:?}"
    );
    assert!(
        warnings.iter().all(|(t, _, _)| t == "Warning"),
        "no Normal events by default: {warnings:?}"
    );
    assert_eq!(
        env.events_of("good").await,
        Vec::new(),
        "a succeeded run writes no events"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn retry_reruns_a_failing_step_as_new_attempts() {
    let env = TestEnv::new("retry").await;
    env.create::<Dag>(&format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: flaky}}
spec:
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  steps:
    - name: always-fails
      script: "echo attempt; exit 7"
      retry: {{limit: 2}}
"#
    ))
    .await;
    env.create::<DagRun>(&run_yaml("r", "flaky", &[])).await;
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    let step = &status.steps[0];
    assert_eq!((step.attempts, step.exit_code), (3, Some(7)));
    assert!(
        step.message
            .as_deref()
            .unwrap()
            .starts_with("attempt 3 failed: exit code 7"),
        "{:?}",
        step.message
    );
    let mut attempts: Vec<String> = env
        .jobs_of("r")
        .await
        .iter()
        .map(|j| j.labels()["kubedag.io/attempt"].clone())
        .collect();
    attempts.sort();
    assert_eq!(attempts, ["1", "2", "3"], "one Job per attempt");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn timeout_kills_a_sleeping_step() {
    let env = TestEnv::new("timeout").await;
    env.create::<Dag>(&format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: sleepy}}
spec:
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  steps:
    - {{name: nap, command: ["sleep", "300"], timeoutSeconds: 3}}
    - {{name: after, depends: [nap], script: "echo never"}}
"#
    ))
    .await;
    env.create::<DagRun>(&run_yaml("t", "sleepy", &[])).await;
    let status = env.wait_finished("t").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    assert_eq!(status.steps[0].phase, StepPhase::Failed);
    assert!(
        status.steps[0].message.as_deref().unwrap().contains("timed out"),
        "{:?}",
        status.steps[0].message
    );
    assert_eq!(status.steps[1].phase, StepPhase::Skipped);
    let took = status.steps[0]
        .finished_at
        .as_ref()
        .unwrap()
        .0
        .duration_since(status.steps[0].started_at.as_ref().unwrap().0);
    assert!(
        took.as_secs() < 120,
        "the deadline stopped the 300 s sleep (took {took:?})"
    );
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn deleting_a_run_deletes_its_jobs_and_pods() {
    let env = TestEnv::new("gc").await;
    env.create::<Dag>(&format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: long}}
spec:
  duplicatePolicy: Allow
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  steps: [{{name: wait, command: ["sleep", "300"]}}]
"#
    ))
    .await;
    env.create::<DagRun>(&run_yaml("doomed", "long", &[])).await;
    env.create::<DagRun>(&run_yaml("survivor", "long", &[])).await;
    env.eventually("both runs' pods to exist", || async {
        (env.pods_of("doomed").await.len() == 1 && env.pods_of("survivor").await.len() == 1).then_some(())
    })
    .await;
    env.api::<DagRun>()
        .delete("doomed", &DeleteParams::foreground())
        .await
        .unwrap();
    env.eventually("the deleted run's Jobs and pods to be gone", || async {
        (env.jobs_of("doomed").await.is_empty() && env.pods_of("doomed").await.is_empty()).then_some(())
    })
    .await;
    assert_eq!(env.jobs_of("survivor").await.len(), 1, "the other run keeps its Job");
    let survivor = env.api::<DagRun>().get("survivor").await.unwrap();
    assert_eq!(survivor.status.unwrap().phase, RunPhase::Running);
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn editing_the_dag_mid_run_does_not_change_the_running_run() {
    let env = TestEnv::new("edit").await;
    let dag = |second: &str| {
        format!(
            r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: evolving}}
spec:
  duplicatePolicy: Allow
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  steps:
    - {{name: one, command: ["sleep", "4"]}}
    - {{name: two, depends: [one], script: "echo {second}"}}
"#
        )
    };
    env.create::<Dag>(&dag("original")).await;
    env.create::<DagRun>(&run_yaml("before", "evolving", &[])).await;
    env.wait_phase("before", RunPhase::Running).await;
    let edited: Dag = serde_yaml::from_str(&dag("edited")).unwrap();
    let patch = serde_json::json!({"spec": edited.spec});
    env.dag()
        .await
        .patch("evolving", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.create::<DagRun>(&run_yaml("after", "evolving", &[])).await;
    assert_eq!(
        env.wait_finished("before").await.status.unwrap().phase,
        RunPhase::Succeeded
    );
    assert_eq!(env.step_log("before", "two").await.trim(), "original");
    assert_eq!(
        env.wait_finished("after").await.status.unwrap().phase,
        RunPhase::Succeeded
    );
    assert_eq!(env.step_log("after", "two").await.trim(), "edited");
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn bad_runs_fail_with_a_message_naming_the_problem_and_launch_nothing() {
    let env = TestEnv::new("badinput").await;
    env.create::<Dag>(&diamond_dag("img")).await;
    env.create::<DagRun>(&run_yaml("no-dag", "missing", &[])).await;
    env.create::<DagRun>(&run_yaml("undeclared", "img", &[("file", "x"), ("bogus", "1")]))
        .await;
    env.create::<DagRun>(&run_yaml("missing-param", "img", &[("threshold", "1")]))
        .await;
    let cases = [
        ("no-dag", "DagNotFound", "Dag \"missing\" not found"),
        ("undeclared", "InvalidParams", "spec.params.bogus"),
        ("missing-param", "InvalidParams", "required parameter \"file\""),
    ];
    for (run, reason, fragment) in cases {
        let status = env.wait_finished(run).await.status.unwrap();
        assert_eq!(status.phase, RunPhase::Failed, "{run}");
        assert_eq!(status.reason.as_deref(), Some(reason), "{run}");
        assert!(
            status.message.as_deref().unwrap().contains(fragment),
            "{run}: {:?}",
            status.message
        );
        assert!(env.jobs_of(run).await.is_empty(), "{run} launched nothing");
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn cyclic_dag_is_marked_invalid_naming_the_cycle_and_its_runs_fail() {
    let env = TestEnv::new("cycle").await;
    env.create::<Dag>(&format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: loop}}
spec:
  defaults: {{image: "{STEP_IMAGE}"}}
  steps:
    - {{name: x, depends: [z], script: "true"}}
    - {{name: y, depends: [x], script: "true"}}
    - {{name: z, depends: [y], script: "true"}}
"#
    ))
    .await;
    let condition = env
        .eventually("the Valid condition", || async {
            let dag = env.dag().await.get("loop").await.ok()?;
            dag.status?.conditions.into_iter().find(|c| c.type_ == "Valid")
        })
        .await;
    assert_eq!(condition.status, "False");
    for step in ["\"x\"", "\"y\"", "\"z\""] {
        assert!(condition.message.contains(step), "{}", condition.message);
    }
    assert!(condition.message.contains("cycle"), "{}", condition.message);
    env.create::<DagRun>(&run_yaml("r", "loop", &[])).await;
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Failed);
    assert!(status.message.unwrap().contains("dependency cycle"));
    assert!(env.jobs_of("r").await.is_empty());
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn a_job_deleted_by_hand_is_recreated_and_the_run_finishes() {
    let env = TestEnv::new("repair").await;
    env.create::<Dag>(&format!(
        r#"
apiVersion: kubedag.io/v1alpha1
kind: Dag
metadata: {{name: repairable}}
spec:
  defaults: {{image: "{STEP_IMAGE}", imagePullPolicy: IfNotPresent}}
  steps: [{{name: work, command: ["sleep", "5"]}}]
"#
    ))
    .await;
    env.create::<DagRun>(&run_yaml("r", "repairable", &[])).await;
    let job = env
        .eventually("the step Job", || async { env.jobs_of("r").await.into_iter().next() })
        .await;
    env.api::<Job>()
        .delete(&job.name_any(), &DeleteParams::background())
        .await
        .unwrap();
    let status = env.wait_finished("r").await.status.unwrap();
    assert_eq!(status.phase, RunPhase::Succeeded, "{:?}", status.message);
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}
