use super::*;
use proptest::prelude::*;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn view(phase: &str, outputs: &[(&str, &str)], exit_code: i64) -> StepView {
    StepView {
        phase: phase.into(),
        outputs: params(outputs),
        exit_code,
    }
}

/// `detect` succeeded with `count` = `count`; `prep-data` failed with exit code 2.
fn steps(count: &str) -> BTreeMap<String, StepView> {
    BTreeMap::from([
        ("detect".to_string(), view("Succeeded", &[("count", count)], 0)),
        ("prep-data".to_string(), view("Failed", &[], 2)),
    ])
}

fn eval(expr: &str) -> Result<bool, String> {
    evaluate_expr(expr, &params(&[("mode", "full"), ("file", "m31.fits")]), &steps("3"))
}

#[test]
fn the_issue_example_is_true_then_false() {
    let when = compile("params.mode == 'full' && int(steps.detect.outputs.count) > 0").unwrap();
    let p = params(&[("mode", "full")]);
    assert_eq!(evaluate(&when, &p, &steps("3")), Ok(true));
    assert_eq!(evaluate(&when, &p, &steps("0")), Ok(false));
    assert_eq!(evaluate(&when, &params(&[("mode", "quick")]), &steps("3")), Ok(false));
}

#[test]
fn standard_and_string_functions_work() {
    for expr in [
        "params.mode == 'quick' || steps.detect.phase == 'Succeeded'",
        "'full' in ['full', 'deep']",
        "'mode' in params",
        "size(params.file) == 8",
        "params.file.matches('^m[0-9]+\\\\.fits$')",
        "params.file.startsWith('m31') && params.file.endsWith('.fits') && params.file.contains('.')",
        "params.file.split('.')[1] == 'fits'",
        "params.mode.upperAscii() == 'FULL'",
        "steps['prep-data'].exitCode == 2 && steps['prep-data'].phase == 'Failed'",
        "steps.detect.exitCode == 0",
        "has(steps.detect.outputs.count)",
        "steps.detect.outputs.all(k, k == 'count')",
        "[1, 2, 3].exists(x, x == int(steps.detect.outputs.count))",
        "type(params.mode) == string",
    ] {
        assert_eq!(eval(expr), Ok(true), "{expr}");
    }
    assert_eq!(eval("params.mode != 'full'"), Ok(false));
}

#[test]
fn runtime_errors_carry_the_cel_message() {
    let err = evaluate_expr("int(params.mode) > 0", &params(&[("mode", "abc")]), &BTreeMap::new()).unwrap_err();
    assert!(err.contains("int"), "{err}");
    let err = eval("steps.detect.outputs.nope == ''").unwrap_err();
    assert!(err.contains("nope"), "{err}");
    let err = eval("steps.absent.phase == 'Succeeded'").unwrap_err();
    assert!(err.contains("absent"), "{err}");
    assert!(eval("1 / 0 == 1").is_err());
}

#[test]
fn a_non_bool_result_is_an_error() {
    assert_eq!(eval("1 + 2"), Err("must evaluate to a bool, got int Int(3)".into()));
    assert!(
        eval("params.mode")
            .unwrap_err()
            .starts_with("must evaluate to a bool, got string")
    );
    assert!(eval("[true]").unwrap_err().contains("list"));
}

#[test]
fn syntax_errors_are_refused_at_compile() {
    for expr in ["params.mode ==", "&& true", "params.mode == 'unterminated", ""] {
        let err = compile(expr).unwrap_err();
        assert!(err.starts_with("syntax error: "), "{expr}: {err}");
    }
}

#[test]
fn overlong_expressions_are_refused() {
    let expr = format!("params.a == '{}'", "x".repeat(MAX_WHEN_BYTES));
    assert!(compile(&expr).unwrap_err().contains("the limit is 1024"));
}

#[test]
fn unknown_variables_and_dynamic_steps_are_refused() {
    assert_eq!(
        compile("mode == 'full'").unwrap_err(),
        "unknown variable \"mode\": a when expression reads only params and steps"
    );
    for expr in [
        "size(steps) > 0",
        "steps[params.which].phase == 'Succeeded'",
        "'a' in steps",
    ] {
        let err = compile(expr).unwrap_err();
        assert!(err.starts_with("steps may only be read as steps.NAME"), "{expr}: {err}");
    }
    // A macro's own variable is not a free variable, but does not leak out of the macro.
    assert!(compile("[1].all(x, x > 0)").is_ok());
    assert!(compile("[1].all(x, x > 0) && x == 1").is_err());
}

#[test]
fn compile_lists_the_steps_outputs_and_params_read() {
    let when = compile(
        "params.mode == 'full' && params['file'] != '' && int(steps.detect.outputs.count) > 0 \
         && steps['prep-data'].phase == 'Succeeded' && steps.detect.outputs['label'].size() > 0 \
         && steps.other.outputs[params.key] == ''",
    )
    .unwrap();
    assert_eq!(
        when.params,
        BTreeSet::from(["mode".into(), "file".into(), "key".into()])
    );
    let expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::from([
        ("detect".into(), BTreeSet::from(["count".into(), "label".into()])),
        ("prep-data".into(), BTreeSet::new()),
        ("other".into(), BTreeSet::new()),
    ]);
    assert_eq!(when.steps, expected);
}

#[test]
fn a_dashed_step_name_written_with_a_dot_reads_another_step() {
    // `steps.prep-data.phase` is `steps.prep - data.phase`: it reads step "prep", which the
    // reference check then refuses, and an unknown variable "data".
    let err = compile("steps.prep-data.phase == 'Failed'").unwrap_err();
    assert!(err.contains("\"data\""), "{err}");
}

#[test]
fn step_view_fills_declared_outputs_and_the_exit_code() {
    let step = Step {
        name: "detect".into(),
        outputs: vec!["count".into(), "label".into()],
        ..Default::default()
    };
    let status = StepStatus {
        name: "detect".into(),
        phase: StepPhase::Succeeded,
        exit_code: Some(0),
        outputs: params(&[("count", "7"), ("stale", "x")]),
        ..Default::default()
    };
    assert_eq!(
        StepView::of(&step, Some(&status)),
        view("Succeeded", &[("count", "7"), ("label", "")], 0)
    );
    assert_eq!(
        StepView::of(&step, None),
        view("Pending", &[("count", ""), ("label", "")], -1)
    );
    let skipped = StepStatus {
        phase: StepPhase::Skipped,
        ..Default::default()
    };
    let v = StepView::of(&step, Some(&skipped));
    assert_eq!((v.phase.as_str(), v.exit_code), ("Skipped", NO_EXIT_CODE));
}

#[test]
fn steps_view_holds_exactly_the_readable_steps() {
    let step = |name: &str, deps: &[&str]| Step {
        name: name.into(),
        depends: deps.iter().map(|d| d.to_string()).collect(),
        outputs: vec!["n".into()],
        ..Default::default()
    };
    let spec = DagSpec {
        steps: vec![step("a", &[]), step("b", &["a"]), step("c", &["b"]), step("other", &[])],
        ..Default::default()
    };
    let statuses = [StepStatus {
        name: "a".into(),
        phase: StepPhase::Succeeded,
        exit_code: Some(0),
        outputs: params(&[("n", "5")]),
        ..Default::default()
    }];
    let status_of = |name: &str| statuses.iter().find(|s| s.name == name);
    let got = steps_view(&spec, &spec.steps[2], status_of);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(got["a"], view("Succeeded", &[("n", "5")], 0));
    assert_eq!(got["b"], view("Pending", &[("n", "")], NO_EXIT_CODE));
    let when = compile("int(steps.a.outputs.n) == 5 && steps.b.phase == 'Pending'").unwrap();
    assert_eq!(evaluate(&when, &BTreeMap::new(), &got), Ok(true));
    let when = compile("steps.other.phase == 'Pending'").unwrap();
    assert!(evaluate(&when, &BTreeMap::new(), &got).unwrap_err().contains("other"));
}

proptest! {
    /// A param compared with itself is true for any value, quotes and `$` included: values reach
    /// CEL as data, never as code.
    #[test]
    fn param_values_are_data(value in "(?s).{0,40}") {
        let p = params(&[("v", &value)]);
        prop_assert_eq!(evaluate_expr("params.v == params['v']", &p, &BTreeMap::new()), Ok(true));
        prop_assert_eq!(evaluate_expr("size(params.v) >= 0", &p, &BTreeMap::new()), Ok(true));
    }

    /// `int(output) > n` agrees with Rust's own comparison for any integer output.
    #[test]
    fn int_of_an_output_compares_like_rust(count in any::<i64>(), n in any::<i64>()) {
        // `-9223372036854775808` is unary minus on a literal that overflows; skip that one.
        prop_assume!(n != i64::MIN);
        let expr = format!("int(steps.detect.outputs.count) > {n}");
        let got = evaluate_expr(&expr, &BTreeMap::new(), &steps(&count.to_string()));
        prop_assert_eq!(got, Ok(count > n));
    }

    /// compile never panics, whatever the text.
    #[test]
    fn compile_never_panics(expr in "(?s).{0,60}") {
        let _ = compile(&expr);
    }
}
