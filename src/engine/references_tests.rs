use super::*;
use crate::api::ParamDecl;
use crate::engine::graph::tests::{spec as dag, step};
use crate::engine::when;
use k8s_openapi::api::core::v1::EnvVar;
use proptest::prelude::*;

fn r(step: &str, output: &str) -> OutputRef {
    OutputRef {
        step: step.into(),
        output: output.into(),
    }
}

/// `name` depending on `deps`, declaring `outputs`.
fn producer(name: &str, deps: &[&str], outputs: &[&str]) -> Step {
    Step {
        outputs: outputs.iter().map(|o| o.to_string()).collect(),
        ..step(name, deps)
    }
}

/// fetch(count) -> detect(stars) -> report; side(n) alone; onExit: notify -> cleanup.
fn pipeline() -> DagSpec {
    let mut spec = dag(vec![
        producer("fetch", &[], &["count"]),
        producer("detect", &["fetch"], &["stars"]),
        step("report", &["detect"]),
        producer("side", &[], &["n"]),
    ]);
    spec.on_exit = vec![producer("notify", &[], &["sent"]), step("cleanup", &["notify"])];
    spec
}

fn find<'a>(spec: &'a DagSpec, name: &str) -> &'a Step {
    spec.steps.iter().chain(&spec.on_exit).find(|s| s.name == name).unwrap()
}

fn check_args(spec: &DagSpec, reader: &str, args: &[&str]) -> Vec<RefError> {
    let mut spec = spec.clone();
    let target = spec
        .steps
        .iter_mut()
        .chain(spec.on_exit.iter_mut())
        .find(|s| s.name == reader)
        .unwrap();
    target.args = args.iter().map(|a| a.to_string()).collect();
    let reader = find(&spec, reader).clone();
    check_step(&spec, &reader, None)
}

fn messages(errors: &[RefError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn text_references_are_found_in_order_amid_other_dollars() {
    let text = "a $(file) $$ $(steps.fetch.outputs.count)-$$(steps.a-b.outputs.X_1)$(steps.x.outputs.y";
    assert_eq!(find_in_text(text), Err("$(steps.x.outputs.y".to_string()));
    let text = "a $(file) $$ $(steps.fetch.outputs.count)-$$(steps.a-b.outputs.X_1) $(steps";
    assert_eq!(find_in_text(text), Ok(vec![r("fetch", "count"), r("a-b", "X_1")]));
    assert_eq!(find_in_text("no references; $(STEPS.x.outputs.y) $(steps)"), Ok(vec![]));
}

#[test]
fn malformed_text_references_are_returned_verbatim() {
    for bad in [
        "$(steps.fetch.count)",
        "$(steps.fetch.outputs.)",
        "$(steps..outputs.n)",
        "$(steps.fetch.outputs.a.b)",
        "$(steps.fetch.output.count)",
    ] {
        assert_eq!(find_in_text(&format!("x {bad} y")), Err(bad.to_string()), "{bad}");
    }
}

#[test]
fn keys_and_env_names() {
    assert_eq!(r("detect-stars", "count").key(), "steps.detect-stars.outputs.count");
    assert_eq!(
        parse_key("steps.detect-stars.outputs.count"),
        Some(r("detect-stars", "count"))
    );
    assert_eq!(parse_key("file"), None);
    assert_eq!(parse_key("KUBEDAG_RUN"), None);
    assert_eq!(
        output_env_name("detect-stars", "count"),
        "KUBEDAG_OUTPUT_DETECT_STARS_COUNT"
    );
    assert_eq!(output_env_name("a", "mixedCase_1"), "KUBEDAG_OUTPUT_A_MIXEDCASE_1");
}

#[test]
fn script_variables_are_found_as_the_shell_would_read_them() {
    let script = "echo $KUBEDAG_OUTPUT_FETCH_COUNT ${KUBEDAG_OUTPUT_A_B}x \"$KUBEDAG_OUTPUTS\" \
                  XKUBEDAG_OUTPUT_NOT_ME $KUBEDAG_OUTPUT_C_D-e";
    assert_eq!(
        find_in_script(script),
        ["KUBEDAG_OUTPUT_FETCH_COUNT", "KUBEDAG_OUTPUT_A_B", "KUBEDAG_OUTPUT_C_D"]
    );
}

#[test]
fn readable_steps_are_transitive_dependencies() {
    let spec = pipeline();
    let names = |reader: &str| readable(&spec, find(&spec, reader)).into_keys().collect::<Vec<_>>();
    assert_eq!(names("report"), ["detect", "fetch"]);
    assert_eq!(names("detect"), ["fetch"]);
    assert!(names("fetch").is_empty());
    // A handler reads every main step and the handlers it depends on, not itself.
    assert_eq!(names("cleanup"), ["detect", "fetch", "notify", "report", "side"]);
    assert_eq!(names("notify"), ["detect", "fetch", "report", "side"]);
}

#[test]
fn readable_terminates_on_cycles() {
    let spec = dag(vec![step("a", &["b"]), step("b", &["a"])]);
    assert_eq!(
        readable(&spec, &spec.steps[0]).into_keys().collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn transitive_references_pass_and_others_are_refused_by_name() {
    let spec = pipeline();
    assert_eq!(check_args(&spec, "report", &["$(steps.fetch.outputs.count)"]), []);
    assert_eq!(
        messages(&check_args(&spec, "report", &["ok", "$(steps.side.outputs.n)"])),
        [
            "args[1]: $(steps.side.outputs.n): step \"side\" is not among the steps it depends on (directly or transitively)"
        ]
    );
    assert_eq!(
        messages(&check_args(&spec, "report", &["$(steps.detect.outputs.count)"])),
        ["args[0]: $(steps.detect.outputs.count): step \"detect\" declares no output \"count\""]
    );
    assert_eq!(
        messages(&check_args(&spec, "report", &["$(steps.nope.outputs.x)"])),
        ["args[0]: $(steps.nope.outputs.x): there is no step \"nope\""]
    );
    assert_eq!(
        messages(&check_args(&spec, "report", &["--n=$(steps.fetch.outputs.count"])),
        ["args[0]: \"$(steps.fetch.outputs.count\" is not an output reference; write $(steps.STEP.outputs.NAME)"]
    );
    // A step may not read its own outputs, nor a dependant's.
    assert_eq!(check_args(&spec, "fetch", &["$(steps.fetch.outputs.count)"]).len(), 1);
    assert_eq!(check_args(&spec, "fetch", &["$(steps.detect.outputs.stars)"]).len(), 1);
}

#[test]
fn handler_references() {
    let spec = pipeline();
    // Handlers read any main step's outputs, and those of the handlers they depend on.
    assert_eq!(
        check_args(
            &spec,
            "notify",
            &["$(steps.side.outputs.n) $(steps.fetch.outputs.count)"]
        ),
        []
    );
    assert_eq!(check_args(&spec, "cleanup", &["$(steps.notify.outputs.sent)"]), []);
    assert!(matches!(
        check_args(&spec, "notify", &["$(steps.cleanup.outputs.x)"])[..],
        [RefError::NotADependency { .. }]
    ));
    // Main steps never read handlers.
    assert!(matches!(
        check_args(&spec, "report", &["$(steps.notify.outputs.sent)"])[..],
        [RefError::NotADependency { .. }]
    ));
}

#[test]
fn command_env_and_default_env_values_are_checked() {
    let mut spec = pipeline();
    spec.defaults.env = vec![EnvVar {
        name: "COUNT".into(),
        value: Some("$(steps.fetch.outputs.count)".into()),
        value_from: None,
    }];
    let report = find(&spec, "report").clone();
    assert_eq!(check_step(&spec, &report, None), []);
    // `fetch` gets the same default env but cannot read its own output.
    let fetch = Step {
        command: vec!["sh".into(), "$(steps.side.outputs.n)".into()],
        container: crate::api::ContainerSettings {
            env: vec![EnvVar {
                name: "X".into(),
                value: Some("$(steps.bad)".into()),
                value_from: None,
            }],
            ..Default::default()
        },
        ..find(&spec, "fetch").clone()
    };
    let got = messages(&check_step(&spec, &fetch, None));
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].starts_with("command[1]: $(steps.side.outputs.n)"), "{got:?}");
    assert!(
        got[1].starts_with("defaults.env \"COUNT\": $(steps.fetch.outputs.count)"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("env \"X\": \"$(steps.bad)\" is not an output reference"),
        "{got:?}"
    );
}

#[test]
fn scripts_use_variables_not_text_references() {
    let mut spec = pipeline();
    let report = Step {
        script: Some(
            "n=$KUBEDAG_OUTPUT_FETCH_COUNT; echo \"${KUBEDAG_OUTPUT_DETECT_STARS}\" $KUBEDAG_OUTPUT_FETCH_COUNT".into(),
        ),
        ..find(&spec, "report").clone()
    };
    assert_eq!(check_step(&spec, &report, None), []);
    assert_eq!(script_refs(&spec, &report), [r("detect", "stars"), r("fetch", "count")]);
    let bad = Step {
        script: Some("echo $(steps.fetch.outputs.count) $KUBEDAG_OUTPUT_SIDE_N $(steps.sh)".into()),
        ..report
    };
    assert_eq!(
        messages(&check_step(&spec, &bad, None)),
        [
            "script: $(steps.fetch.outputs.count) is not expanded in a script (the shell would run it as a command); use $KUBEDAG_OUTPUT_FETCH_COUNT",
            "script: $KUBEDAG_OUTPUT_SIDE_N is not the output variable of a step it depends on",
        ]
    );
    // Only readable outputs become env vars, even if validation was skipped.
    assert_eq!(script_refs(&spec, &bad), []);
    spec.steps[2].script = None;
    assert_eq!(script_refs(&spec, &spec.steps[2]), []);
}

#[test]
fn when_references_are_checked() {
    let mut spec = pipeline();
    spec.params = vec![ParamDecl {
        name: "mode".into(),
        default: None,
    }];
    let check = |reader: &str, expr: &str| {
        let compiled = when::compile(expr).unwrap();
        messages(&check_step(&spec, find(&spec, reader), Some(&compiled)))
    };
    assert!(
        check(
            "report",
            "params.mode == 'full' && int(steps.fetch.outputs.count) > 0 && steps.detect.phase == 'Succeeded'"
        )
        .is_empty()
    );
    assert_eq!(
        check(
            "report",
            "steps.side.exitCode == 0 && steps.fetch.outputs.nope == '' && params.other == ''"
        ),
        [
            "when: steps.fetch.outputs.nope: step \"fetch\" declares no output \"nope\"",
            "when: steps.side: step \"side\" is not among the steps it depends on (directly or transitively)",
            "when: params.other is not a declared parameter",
        ]
    );
    assert!(
        check(
            "cleanup",
            "steps.report.phase == 'Failed' || steps.notify.outputs.sent == 'yes'"
        )
        .is_empty()
    );
    assert_eq!(check("notify", "steps.cleanup.phase == ''").len(), 1);
}

#[test]
fn env_name_collisions_are_found_across_steps_and_handlers() {
    let mut spec = dag(vec![
        producer("a-b", &[], &["c"]),
        producer("a", &[], &["b_c", "count", "COUNT"]),
    ]);
    spec.on_exit = vec![producer("a-B", &[], &["c"])];
    let found: Vec<(String, OutputRef, OutputRef)> = env_name_collisions(&spec);
    assert_eq!(
        found,
        [
            ("KUBEDAG_OUTPUT_A_B_C".into(), r("a-b", "c"), r("a", "b_c")),
            ("KUBEDAG_OUTPUT_A_COUNT".into(), r("a", "count"), r("a", "COUNT")),
            ("KUBEDAG_OUTPUT_A_B_C".into(), r("a-b", "c"), r("a-B", "c")),
        ]
    );
    assert!(env_name_collisions(&pipeline()).is_empty());
}

proptest! {
    /// Any reference built from a step and an output name is found back exactly, wherever it
    /// sits in text made of characters that cannot start another reference.
    #[test]
    fn built_references_are_found_back(
        step in "[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?",
        output in "[A-Za-z_][A-Za-z0-9_]{0,10}",
        before in "[^$]{0,20}",
        after in "[^$]{0,20}",
    ) {
        let reference = r(&step, &output);
        let text = format!("{before}$({}){after}", reference.key());
        prop_assert_eq!(find_in_text(&text), Ok(vec![reference.clone()]));
        prop_assert_eq!(parse_key(&reference.key()), Some(reference));
    }

    /// find_in_text never panics and finds nothing in text without `$(steps.`.
    #[test]
    fn text_without_the_marker_has_no_references(text in "(?s).{0,80}") {
        let found = find_in_text(&text);
        if !text.contains("$(steps.") {
            prop_assert_eq!(found, Ok(vec![]));
        }
    }
}
