//! DagTrigger on the local cluster: cron ticks (one run per tick across an operator restart,
//! Forbid skipping a tick) and `kubectl dag watch` (each local file exactly once).

mod common;

use std::time::Duration;

use common::{STEP_IMAGE, TestEnv};
use kube::ResourceExt;
use kube::api::ListParams;
use kubedag::api::{DagRun, DagTrigger};

fn dag(name: &str, script: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: {name}}}\nspec:\n  params: [{{name: when}}]\n  duplicatePolicy: Allow\n  steps:\n    - {{name: work, image: {STEP_IMAGE}, command: [sh, -c, {script:?}]}}\n"
    )
}

fn cron_trigger(name: &str, dag: &str, extra: &str) -> String {
    format!(
        "apiVersion: kubedag.io/v1alpha1\nkind: DagTrigger\nmetadata: {{name: {name}}}\nspec:\n  dagRef: {{name: {dag}}}\n  params: {{when: '$(schedule.time)'}}\n  schedule: {{cron: '* * * * *'{extra}}}\n"
    )
}

async fn trigger_runs(env: &TestEnv, trigger: &str) -> Vec<DagRun> {
    let lp = ListParams::default().labels(&format!("kubedag.io/trigger={trigger}"));
    let mut runs = env.api::<DagRun>().list(&lp).await.unwrap().items;
    runs.sort_by_key(|r| r.spec.params.get("when").cloned());
    runs
}

fn ticks(runs: &[DagRun]) -> Vec<jiff::Timestamp> {
    runs.iter()
        .map(|r| r.spec.params["when"].parse().expect("schedule.time is RFC 3339"))
        .collect()
}

/// Seconds until just after the next minute boundary.
fn until_next_minute(after: u64) -> Duration {
    let now = jiff::Timestamp::now().as_second();
    Duration::from_secs((60 - now.rem_euclid(60)) as u64 + after)
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up)"]
async fn cron_makes_one_run_per_tick_across_an_operator_restart() {
    let mut env = TestEnv::new("trig-cron").await;
    env.create::<kubedag::api::Dag>(&dag("tick", "echo $(when)")).await;
    env.create::<DagTrigger>(&cron_trigger("every-minute", "tick", ""))
        .await;
    env.eventually("the first tick's run", || async {
        (trigger_runs(&env, "every-minute").await.len() == 1).then_some(())
    })
    .await;
    // Down across the next tick: it is caught up once when the operator is back.
    env.kill_operator();
    tokio::time::sleep(until_next_minute(5)).await;
    env.start_operator(&[]);
    env.eventually("three ticks' runs", || async {
        (trigger_runs(&env, "every-minute").await.len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = trigger_runs(&env, "every-minute").await;
    let ticks = ticks(&runs);
    assert_eq!(runs.len(), 3, "one run per tick: {:?}", ticks);
    for (i, t) in ticks.iter().enumerate() {
        assert_eq!(t.as_second() % 60, 0, "schedule.time is the tick: {t}");
        assert_eq!(runs[i].name_any(), format!("every-minute-{}", t.as_second() / 60));
        if i > 0 {
            assert_eq!(
                t.as_second() - ticks[i - 1].as_second(),
                60,
                "consecutive ticks: {ticks:?}"
            );
        }
    }
    let trigger = env.api::<DagTrigger>().get("every-minute").await.unwrap();
    let status = trigger.status.unwrap();
    assert_eq!(status.submitted, 3);
    assert_eq!(status.source.as_deref(), Some("schedule"));
    assert_eq!(status.conditions[0].status, "True", "{:?}", status.conditions);
    // The operator resolved the tick's params into the run (its outcome depends on the node).
    let first = runs[0].name_any();
    let resolved = env
        .eventually("the first run's resolved params", || async {
            let run = env.api::<DagRun>().get(&first).await.ok()?;
            run.status?.params
        })
        .await;
    assert_eq!(resolved["when"], format!("{}", ticks[0]));
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up)"]
async fn forbid_skips_a_tick_while_the_previous_run_runs() {
    let env = TestEnv::new("trig-forbid").await;
    env.create::<kubedag::api::Dag>(&dag("slow", "sleep 75")).await;
    let extra = ", concurrencyPolicy: Forbid, startingDeadlineSeconds: 10";
    env.create::<DagTrigger>(&cron_trigger("forbid", "slow", extra)).await;
    let runs = env
        .eventually("two runs", || async {
            let runs = trigger_runs(&env, "forbid").await;
            (runs.len() >= 2).then_some(runs)
        })
        .await;
    let ticks = ticks(&runs);
    // The first run sleeps 75 s: at least the next tick falls inside it and is skipped (more
    // when a busy node starts the pod late), and the second run starts only after it ended.
    assert!(
        ticks[1].as_second() - ticks[0].as_second() >= 120,
        "the tick during the first run was skipped: {ticks:?}"
    );
    let first = env.wait_finished(&runs[0].name_any()).await;
    let second_created = runs[1].creation_timestamp().unwrap().0;
    assert!(
        first.status.unwrap().finished_at.unwrap().0 <= second_created,
        "no overlap under Forbid"
    );
    let status = env.api::<DagTrigger>().get("forbid").await.unwrap().status.unwrap();
    assert!(status.skipped >= 1, "skipped counted: {status:?}");
}

/// `kubectl dag watch DIR` as a child process of this test.
struct Watch {
    _child: tokio::process::Child,
}

impl Watch {
    fn start(env: &TestEnv, dir: &std::path::Path) -> Watch {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-dag"))
            .args(["-n", &env.ns, "watch"])
            .arg(dir)
            .args([
                "--dag",
                "local",
                "-p",
                "when=$(file.path)",
                "--settle",
                "2s",
                "--name",
                "local",
            ])
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start kubectl-dag watch");
        Watch { _child: child }
    }
}

#[tokio::test]
#[ignore = "needs the local cluster (make cluster-up)"]
async fn kubectl_dag_watch_submits_each_local_file_once() {
    let env = TestEnv::without_operator("trig-local").await;
    env.create::<kubedag::api::Dag>(&dag("local", "echo $(when)")).await;
    let dir = std::env::temp_dir().join(format!("kubedag-watch-{}", env.ns));
    std::fs::create_dir_all(&dir).unwrap();
    let watch = Watch::start(&env, &dir);
    // 30 files: every third written slowly in three chunks, 1.5 s apart (inside --settle 2s).
    for i in 0..30 {
        let path = dir.join(format!("f{i:02}.fits"));
        if i % 3 == 0 {
            use std::io::Write;
            let mut f = std::fs::File::create(&path).unwrap();
            for chunk in 0..3 {
                f.write_all(format!("chunk{chunk}\n").as_bytes()).unwrap();
                f.flush().unwrap();
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        } else {
            std::fs::write(&path, format!("file {i}\nchunk0\nchunk1\nchunk2\n")).unwrap();
        }
    }
    env.eventually("30 runs", || async {
        (trigger_runs(&env, "local").await.len() >= 30).then_some(())
    })
    .await;
    drop(watch);
    // Restart, and a full pass after the settle time: nothing new.
    let watch = Watch::start(&env, &dir);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let runs = trigger_runs(&env, "local").await;
    assert_eq!(runs.len(), 30, "exactly one run per file");
    // Runs deleted (as by TTL): still nothing new; a rewritten file is new input.
    for run in &runs {
        env.api::<DagRun>()
            .delete(&run.name_any(), &Default::default())
            .await
            .unwrap();
    }
    std::fs::write(dir.join("f07.fits"), "rewritten\n").unwrap();
    env.eventually("the rewritten file's run", || async {
        (trigger_runs(&env, "local").await.len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runs = trigger_runs(&env, "local").await;
    assert_eq!(runs.len(), 1, "only the rewritten file");
    assert_eq!(runs[0].spec.params["when"], "f07.fits");
    drop(watch);
    std::fs::remove_dir_all(dir).unwrap();
}
