use super::*;

const HEAD: &str = "apiVersion: kubedag.io/v1alpha1\nkind: Dag\nmetadata:\n  name: img\nspec:\n";

fn dag(body: &str) -> String {
    format!("{HEAD}{body}")
}

fn lint_one(text: &str) -> Vec<Finding> {
    lint_sources(&[("f.yaml".to_string(), text.to_string())]).0
}

/// Lints `text` and expects exactly one finding, on `line`, whose message contains `needle`.
fn expect_one(text: &str, line: usize, needle: &str) {
    let findings = lint_one(text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].line, line, "{}", findings[0]);
    assert!(findings[0].message.contains(needle), "{}", findings[0]);
}

const STEPS: &str = "  defaults: {image: busybox}\n  steps:\n    - name: a\n      command: [echo]\n";

#[test]
fn an_unknown_dependency_points_at_the_depends_line() {
    let text = dag(&format!(
        "{STEPS}    - name: b\n      depends: [zz]\n      command: [echo]\n"
    ));
    expect_one(&text, 11, "unknown step \"zz\"");
}

#[test]
fn a_cycle_points_at_its_first_step() {
    let text =
        dag("  defaults: {image: busybox}\n  steps:\n    - {name: a, depends: [b]}\n    - {name: b, depends: [a]}\n");
    expect_one(&text, 9, "dependency cycle");
}

#[test]
fn a_misspelt_field_is_named_as_dropped() {
    let text = dag(&format!(
        "{STEPS}    - name: b\n      dependss: [a]\n      command: [echo]\n"
    ));
    expect_one(&text, 11, "spec.steps[1].dependss: unknown field");
}

#[test]
fn unknown_fields_do_not_hide_the_other_checks() {
    let text = dag("  steps:\n    - {name: a, dependss: [b]}\n");
    let findings = lint_one(&text);
    let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(messages[0].contains("dependss: unknown field"), "{messages:?}");
    assert!(messages[1].contains("no image"), "{messages:?}");
}

#[test]
fn a_wrong_type_is_reported_where_the_parser_found_it() {
    let text = dag(&format!("{STEPS}      retry: {{limit: lots}}\n"));
    expect_one(&text, 10, "expected u32");
}

#[test]
fn yaml_syntax_errors_give_their_line() {
    let text = dag("  steps: [\n    - name: a\n");
    let findings = lint_one(&text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0].line >= 6, "{}", findings[0]);
}

#[test]
fn bad_params_point_at_the_params_field() {
    let text = dag(&format!("  params:\n    - name: 9lives\n{STEPS}"));
    expect_one(&text, 6, "invalid parameter name \"9lives\"");
}

#[test]
fn command_and_script_together_point_at_the_script() {
    let text =
        dag("  defaults: {image: busybox}\n  steps:\n    - name: a\n      command: [echo]\n      script: echo\n");
    expect_one(&text, 10, "exclusive");
}

#[test]
fn a_when_that_does_not_compile_points_at_when() {
    let text = dag(&format!(
        "{STEPS}    - name: b\n      depends: [a]\n      when: \"steps.a.phase ==\"\n"
    ));
    expect_one(&text, 12, "when");
}

#[test]
fn a_handler_depending_on_a_main_step_is_refused() {
    let text = dag(&format!(
        "{STEPS}  onExit:\n    - name: h\n      depends: [a]\n      command: [echo]\n"
    ));
    expect_one(&text, 12, "exit handlers run after every main step");
}

#[test]
fn runs_are_checked_against_the_dags_of_all_files() {
    let dag_text = dag(&format!("  params:\n    - name: file\n{STEPS}"));
    let runs = "apiVersion: kubedag.io/v1alpha1\nkind: DagRun\nmetadata: {name: r1}\nspec:\n  dagRef: {name: img}\n  params: {file: a, bogus: x}\n---\napiVersion: kubedag.io/v1alpha1\nkind: DagRun\nmetadata: {name: r2}\nspec:\n  dagRef: {name: img}\n  params: {file: a}\n---\napiVersion: kubedag.io/v1alpha1\nkind: DagRun\nmetadata: {name: r3}\nspec:\n  dagRef: {name: img}\n  params: {file: a}\n";
    let sources = [
        ("dag.yaml".to_string(), dag_text),
        ("runs.yaml".to_string(), runs.to_string()),
    ];
    let (findings, checked) = lint_sources(&sources);
    assert_eq!(checked, 4);
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert_eq!((findings[0].file.as_str(), findings[0].line), ("runs.yaml", 6));
    assert!(findings[0].message.contains("bogus"), "{}", findings[0]);
    assert_eq!((findings[1].file.as_str(), findings[1].line), ("runs.yaml", 20));
    assert!(findings[1].message.contains("\"r2\" (runs.yaml:10)"), "{}", findings[1]);
}

#[test]
fn a_run_whose_dag_is_elsewhere_is_checked_only_for_its_own_fields() {
    let run = "apiVersion: kubedag.io/v1alpha1\nkind: DagRun\nmetadata: {generateName: r-}\nspec:\n  dagRef: {name: in-cluster}\n  params: {anything: x}\n";
    assert_eq!(lint_one(run), []);
    let bad_id = format!("{run}  requestId: \"not a label!\"\n");
    expect_one(&bad_id, 7, "spec.requestId");
}

#[test]
fn other_kinds_are_skipped_and_unknown_kubedag_kinds_named() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, whatever: 1}\n---\napiVersion: kubedag.io/v1alpha1\nkind: Dagg\n";
    expect_one(text, 6, "\"Dagg\" is not a kubedag kind");
}

#[test]
fn the_shipped_examples_have_no_problems() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/examples");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        sources.push((label(&path), std::fs::read_to_string(&path).unwrap()));
    }
    let (findings, checked) = lint_sources(&sources);
    assert!(findings.is_empty(), "{findings:#?}");
    assert!(checked >= 5, "only {checked} kubedag objects found in the examples");
}
