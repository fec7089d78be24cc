//! End to end on the local cluster: `kubectl dag ui` in a real headless browser (Debian's
//! Chromium driven over WebDriver by fantoccini; `e2e/ui-deps.sh` installs both). Each page
//! is also saved as a PNG screenshot into `docs/ui/` (the README shows them).

mod common;

#[path = "e2e_ui_support/mod.rs"]
mod support;

use common::{STEP_IMAGE, TestEnv};
use fantoccini::Locator;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::PostParams;
use kube::config::{AuthInfo, Kubeconfig, NamedAuthInfo};
use kubedag::api::{DagRun, DagTrigger, RunPhase};
use serde_json::json;
use support::{Session, Ui, dag_yaml};

/// Grouping, filtering, the graph's colours (updated live), step logs followed while the step
/// runs, a duplicate submit refused with a link to the existing run, and a submit that works.
#[tokio::test]
#[ignore = "needs the local cluster and chromium: make test"]
async fn runs_are_grouped_filtered_drawn_and_followed_in_a_browser() {
    let env = TestEnv::with_webhook("ui").await;
    // 30 runs of 10 parameter sets: odd sets fail.
    let survey = dag_yaml(
        "survey",
        "Allow",
        &[("file", None), ("mode", Some("fast"))],
        &[(
            "work",
            &[],
            "case $file in *[13579]) echo bad $file; exit 3;; esac; echo ok $file",
        )],
    );
    env.create::<kubedag::api::Dag>(&survey).await;
    let mut names = Vec::new();
    for round in 0..3 {
        for set in 0..10 {
            let name = format!("survey-r{round}-s{set}");
            let file = format!("set-{set}");
            env.create::<DagRun>(&common::run_yaml(&name, "survey", &[("file", &file)]))
                .await;
            names.push(name);
        }
    }
    let pipeline = dag_yaml(
        "pipeline",
        "Forbid",
        &[("file", None)],
        &[
            ("fetch", &[], "echo fetching $file"),
            ("calibrate", &["fetch"], "echo calibration failed; exit 2"),
            (
                "measure",
                &["fetch"],
                "echo measuring $file; sleep 6; echo measured $file",
            ),
            ("report", &["calibrate", "measure"], "echo report"),
        ],
    );
    env.create::<kubedag::api::Dag>(&pipeline).await;
    let archive = dag_yaml(
        "archive",
        "Forbid",
        &[("file", None)],
        &[("store", &[], "echo archived $file")],
    );
    env.create::<kubedag::api::Dag>(&archive).await;
    env.create::<DagRun>(&common::run_yaml("archive-1", "archive", &[("file", "dup.fits")]))
        .await;
    for name in &names {
        env.wait_finished(name).await;
    }

    let ui = Ui::start(&env.ns, None).await;
    let session = Session::start().await;
    let ns = &env.ns;

    // The Dags page lists both with their steps and last outcome.
    session.goto(&format!("{}/", ui.base)).await;
    session
        .eventually("the Dags page to list both Dags", || async {
            let text = session.text("#live-region").await;
            (text.contains("survey") && text.contains("pipeline")).then_some(())
        })
        .await;
    session.screenshot("dags").await;

    // Ten rows, one per parameter set, with the latest run's phase.
    session.goto(&format!("{}/ns/{ns}/dags/survey", ui.base)).await;
    let rows = session
        .eventually("10 parameter-set rows of 30 runs", || async {
            let caption = session.text("#sets caption").await;
            let rows = session.texts("#sets tbody tr").await;
            (rows.len() == 10 && caption.contains("(30 runs)")).then_some(rows)
        })
        .await;
    // Columns: file, mode, latest phase, latest run, runs, ...
    let counts = session.texts("#sets tbody tr td:nth-child(5)").await;
    assert_eq!(counts, vec!["3"; 10], "three runs per set");
    for row in &rows {
        let set: u32 = row
            .split_whitespace()
            .find_map(|w| w.strip_prefix("set-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no file value in row {row:?}"));
        let want = if set % 2 == 1 { "Failed" } else { "Succeeded" };
        assert!(row.contains(want) && row.contains("fast"), "set {set}: {row:?}");
    }
    session.screenshot("runs").await;

    // Filtering by a parameter value (server side, through the form).
    session.fill("#q", "set-7").await;
    session.click("form.filters button[type=submit]").await;
    let filtered = session
        .eventually("the filter to leave one row", || async {
            let rows = session.texts("#sets tbody tr").await;
            (rows.len() == 1).then_some(rows)
        })
        .await;
    assert!(
        filtered[0].contains("set-7") && filtered[0].contains("Failed"),
        "{filtered:?}"
    );
    assert!(session.text("#sets caption").await.starts_with("1 of 10"));
    session.screenshot("runs-filtered").await;

    // A run page opened while a step runs: its log is followed and the graph turns to the final
    // colours without a reload.
    env.create::<DagRun>(&common::run_yaml("pipeline-1", "pipeline", &[("file", "m31.fits")]))
        .await;
    env.eventually("step measure to run", || async {
        let run = env.api::<DagRun>().get("pipeline-1").await.ok()?;
        let steps = run.status?.steps;
        steps
            .iter()
            .any(|s| s.name == "measure" && s.phase == kubedag::api::StepPhase::Running)
            .then_some(())
    })
    .await;
    session
        .goto(&format!("{}/ns/{ns}/runs/pipeline-1?step=measure", ui.base))
        .await;
    session
        .browser
        .execute("window.kubedagMarker = 1;", vec![])
        .await
        .unwrap();
    session
        .eventually("the first log line of measure", || async {
            session.text("#log").await.contains("measuring m31.fits").then_some(())
        })
        .await;
    session
        .eventually("the followed log's last line", || async {
            session.text("#log").await.contains("measured m31.fits").then_some(())
        })
        .await;
    let expected = [
        ("calibrate", "Failed", "#cf222e"),
        ("fetch", "Succeeded", "#1a7f37"),
        ("measure", "Succeeded", "#1a7f37"),
        ("report", "Skipped", "#57606a"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    session
        .eventually("the graph to show the final step phases", || async {
            (session.graph_nodes().await == expected).then_some(())
        })
        .await;
    let marker = session
        .browser
        .execute("return window.kubedagMarker || 0;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(1), "the page updated itself without a reload");
    assert_eq!(session.text("#run-phase").await, "Failed");
    let steps = session.text("#steps tbody").await;
    assert!(
        steps.contains("calibrate") && steps.contains("2"),
        "exit code 2 shown: {steps}"
    );
    session.screenshot("run").await;
    session
        .goto(&format!("{}/ns/{ns}/runs/pipeline-1?step=fetch#logs", ui.base))
        .await;
    session
        .eventually("the log of fetch", || async {
            session.text("#log").await.contains("fetching m31.fits").then_some(())
        })
        .await;
    session.screenshot("run-logs").await;

    // Submitting the parameters of a Succeeded run again (duplicatePolicy Forbid): the webhook's
    // refusal is shown with a link to the existing run.
    env.wait_phase("archive-1", RunPhase::Succeeded).await;
    let archive_page = format!("{}/ns/{ns}/dags/archive", ui.base);
    let (alert, _) = session
        .submit(
            "the duplicate refusal",
            |_| async {
                session.goto(&archive_page).await;
                session.fill("#param-file", "dup.fits").await;
            },
            "#submit-run",
            || async {
                let alert = session.text("#alert").await;
                (!alert.is_empty()).then_some(alert)
            },
        )
        .await;
    assert!(
        alert.contains("duplicate parameters") && alert.contains("archive-1"),
        "{alert}"
    );
    let link = session
        .browser
        .find(Locator::Css("#alert a"))
        .await
        .expect("a link to the run");
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    assert_eq!(href, format!("/ns/{ns}/runs/archive-1"));
    assert_eq!(
        session
            .browser
            .find(Locator::Css("#param-file"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("dup.fits")
    );
    session.screenshot("submit-refused").await;

    // A new parameter set is accepted: the browser lands on the new run's page. Should a submit
    // be made again (see Session::submit), it takes a new file: the abandoned one may have
    // created its run.
    let new_file = |attempt: usize| format!("new-{attempt}.fits");
    let (url, attempt) = session
        .submit(
            "the new run's page",
            |attempt| {
                let (session, page, file) = (&session, &archive_page, new_file(attempt));
                async move {
                    if attempt > 0 {
                        session.goto(page).await;
                    }
                    session.fill("#param-file", &file).await;
                }
            },
            "#submit-run",
            || async {
                let url = session.browser.current_url().await.ok()?;
                url.path().contains("/runs/archive-").then_some(url)
            },
        )
        .await;
    assert!(session.text("#alert").await.contains("Run submitted"));
    let new_run = url.path().rsplit('/').next().unwrap().to_string();
    let created = env
        .api::<DagRun>()
        .get(&new_run)
        .await
        .expect("the submitted run exists");
    assert_eq!(created.spec.params.get("file"), Some(&new_file(attempt)));
    let _ = session.browser.clone().close().await;
}

/// The Triggers page (a cron trigger's counts and last run, a broken trigger's error), a call
/// step drawn as a call and linked to its child run, a forEach step drawn as a fan-out with its
/// progress.
#[tokio::test]
#[ignore = "needs the local cluster and chromium: make test"]
async fn triggers_calls_and_fan_outs_in_a_browser() {
    let env = TestEnv::new("ui-compose").await;
    let ns = &env.ns;
    let defaults = format!("defaults: {{image: \"{STEP_IMAGE}\", imagePullPolicy: IfNotPresent}}");
    let manifests = [
        dag_yaml("tick", "Allow", &[("when", None)], &[("work", &[], "echo tick $when")]),
        format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: bias}}\nspec:\n  params: [{{name: night}}]\n  {defaults}\n  steps:\n    - {{name: combine, script: 'sleep 1; echo combined $night'}}\n"
        ),
        format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: nightly}}\nspec:\n  params: [{{name: night}}]\n  {defaults}\n  steps:\n    - {{name: bias, call: {{dag: bias, params: {{night: '$(night)'}}}}}}\n    - {{name: use, depends: [bias], script: 'echo using the bias'}}\n"
        ),
        format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata: {{name: fan}}\nspec:\n  {defaults}\n  steps:\n    - {{name: double, forEach: {{items: ['1', '2', '3', 'bad']}}, script: '[ \"$item\" = bad ] && exit 7; echo $((item * 2))'}}\n"
        ),
    ];
    for dag in &manifests {
        env.create::<kubedag::api::Dag>(dag).await;
    }
    let trigger = |name: &str, dag: &str| {
        format!(
            "apiVersion: kubedag.io/v1alpha1\nkind: DagTrigger\nmetadata: {{name: {name}}}\nspec:\n  dagRef: {{name: {dag}}}\n  params: {{when: '$(schedule.time)'}}\n  schedule: {{cron: '* * * * *'}}\n"
        )
    };
    env.create::<DagTrigger>(&trigger("every-minute", "tick")).await;
    env.create::<DagTrigger>(&trigger("orphan", "missing")).await;
    env.create::<DagRun>(&common::run_yaml("nightly-1", "nightly", &[("night", "n1")]))
        .await;
    env.create::<DagRun>(&common::run_yaml("fan-1", "fan", &[])).await;

    let ui = Ui::start(ns, None).await;
    let session = Session::start().await;

    // The Triggers page, from the nav: the broken trigger's error at once, the cron trigger's
    // counts and last run after its first tick (at most a minute).
    session.goto(&format!("{}/", ui.base)).await;
    session.click("nav.nav a[href='/triggers']").await;
    let orphan = session
        .eventually("the broken trigger's error", || async {
            let row = session.text("tr[data-trigger=orphan]").await;
            row.contains("DagMissing").then_some(row)
        })
        .await;
    assert!(orphan.contains("Not ready"), "{orphan}");
    // Cells: Dag, source, submitted, skipped, failed, last scan, last submit, last run, Ready,
    // last error (read again when a live update replaced the row meanwhile).
    let cells = session
        .eventually("the cron trigger's first run", || async {
            let cells = session.texts("tr[data-trigger=every-minute] td").await;
            let ran = cells.get(2).is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n >= 1));
            (cells.len() == 10 && ran && cells.iter().all(|c| !c.is_empty())).then_some(cells)
        })
        .await;
    let status = env
        .api::<DagTrigger>()
        .get("every-minute")
        .await
        .unwrap()
        .status
        .unwrap();
    let last_run = status.last_run.expect("the trigger's last run");
    assert!(cells[7].starts_with(&last_run), "{cells:?}");
    assert!(
        cells[1].contains("* * * * *") && cells[8].starts_with("Ready"),
        "{cells:?}"
    );
    assert_eq!((cells[4].as_str(), cells[9].as_str()), ("0", "none"));
    session.screenshot("triggers").await;
    // The Dag page links its triggers.
    session.goto(&format!("{}/ns/{ns}/dags/tick", ui.base)).await;
    assert!(session.text("#dag-triggers").await.contains("every-minute"));

    // The call step: drawn as a call, linked to its child run (the same link in the table).
    let parent = env.wait_finished("nightly-1").await.status.unwrap();
    let child = parent
        .steps
        .iter()
        .find(|s| s.name == "bias")
        .and_then(|s| s.child_run.clone());
    let child = child.expect("the call step names its child run");
    session.goto(&format!("{}/ns/{ns}/runs/nightly-1", ui.base)).await;
    let node = session.find("#graph g.node[data-step=bias]").await;
    assert_eq!(node.attr("data-kind").await.unwrap().as_deref(), Some("call"));
    assert!(session.text("#steps tr[data-step=bias]").await.contains("call bias"));
    let link = session.find("#steps a.child-run").await;
    assert_eq!(link.text().await.unwrap(), child);
    let graph_link = session.find("#graph a[aria-label^='step bias']").await;
    let child_url = format!("/ns/{ns}/runs/{child}");
    assert_eq!(graph_link.attr("href").await.unwrap(), Some(child_url.clone()));
    session.screenshot("run-call").await;
    link.click().await.unwrap();
    session
        .eventually("the child run's page", || async {
            let url = session.browser.current_url().await.ok()?;
            (url.path() == child_url).then_some(())
        })
        .await;
    assert_eq!(session.text("#parent-run").await, "nightly-1");

    // The fan-out: stacked, with its progress (4 items, one failed) in the graph and the table.
    env.wait_phase("fan-1", RunPhase::Failed).await;
    session.goto(&format!("{}/ns/{ns}/runs/fan-1", ui.base)).await;
    let node = session.find("#graph g.node[data-step=double]").await;
    assert_eq!(node.attr("data-kind").await.unwrap().as_deref(), Some("fan-out"));
    assert_eq!(node.find_all(Locator::Css("rect.stacked")).await.unwrap().len(), 2);
    assert_eq!(
        session.text("#graph g.node[data-step=double] text.composition").await,
        "4/4 done, 1 failed"
    );
    let cell = session.text("#steps tr[data-step=double] td.composition").await;
    assert!(
        cell.contains("forEach 4/4 done, 1 failed") && cell.contains("#3 bad"),
        "{cell}"
    );
    session.screenshot("run-fan-out").await;
    let _ = session.browser.clone().close().await;
}

/// A user whose Role lets them read runs but not update them sees the API server refuse cancel.
#[tokio::test]
#[ignore = "needs the local cluster and chromium: make test"]
async fn a_user_without_update_on_dagruns_sees_cancel_refused() {
    let env = TestEnv::new("ui-rbac").await;
    let dag = dag_yaml("slow", "Forbid", &[("file", None)], &[("wait", &[], "sleep 120")]);
    env.create::<kubedag::api::Dag>(&dag).await;
    env.create::<DagRun>(&common::run_yaml("slow-1", "slow", &[("file", "a")]))
        .await;
    env.wait_phase("slow-1", RunPhase::Running).await;
    let kubeconfig = reader_kubeconfig(&env).await;

    let ui = Ui::start(&env.ns, Some(&kubeconfig)).await;
    let session = Session::start().await;
    let run_page = format!("{}/ns/{}/runs/slow-1", ui.base, env.ns);
    let (alert, _) = session
        .submit(
            "the refusal",
            |_| async {
                session.goto(&run_page).await;
                session
                    .eventually("the run page", || async {
                        (session.text("#run-phase").await == "Running").then_some(())
                    })
                    .await;
            },
            "#cancel",
            || async {
                let alert = session.text("#alert").await;
                (!alert.is_empty()).then_some(alert)
            },
        )
        .await;
    assert!(alert.contains("forbidden") && alert.contains("patch"), "{alert}");
    session.screenshot("cancel-refused").await;
    let run = env.api::<DagRun>().get("slow-1").await.unwrap();
    assert!(!run.spec.cancel, "the run was not cancelled");
    let _ = session.browser.clone().close().await;
}

/// A kubeconfig file for ServiceAccount `reader`, bound to a Role that may read Dags, DagRuns,
/// pods, their logs and Events, but not update DagRuns.
async fn reader_kubeconfig(env: &TestEnv) -> String {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "reader"}})).unwrap();
    env.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let read = |groups: &[&str], resources: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: ["get", "list", "watch"].iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    };
    let role = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("runs-reader".into()),
            ..Default::default()
        },
        rules: Some(vec![
            read(&["kubedag.io"], &["dags", "dagruns"]),
            read(&[""], &["pods", "pods/log", "events"]),
        ]),
    };
    env.api::<Role>().create(&PostParams::default(), &role).await.unwrap();
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("reader".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "runs-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(env.ns.clone()),
            ..Default::default()
        }]),
    };
    env.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = env
        .api::<ServiceAccount>()
        .create_token_request("reader", &PostParams::default(), &request)
        .await
        .expect("a token for the reader")
        .status
        .expect("the token")
        .token;
    // The test's kubeconfig with its user swapped for the reader's token.
    let mut config = Kubeconfig::read().expect("the test's kubeconfig");
    let user = "kubedag-ui-reader".to_string();
    config.auth_infos = vec![NamedAuthInfo {
        name: user.clone(),
        auth_info: Some(AuthInfo {
            token: Some(token.into()),
            ..Default::default()
        }),
        other: Default::default(),
    }];
    for context in &mut config.contexts {
        if let Some(c) = context.context.as_mut() {
            c.user = Some(user.clone());
        }
    }
    let path = format!("{}/{}-reader.kubeconfig", common::log_dir(), env.ns);
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}
