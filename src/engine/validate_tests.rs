use super::*;
use crate::api::ParamDecl;
use crate::engine::graph::tests::step;
use k8s_openapi::api::core::v1::EnvVar;

use crate::engine::graph::tests::spec as dag;

fn messages(spec: &DagSpec) -> String {
    validate_dag(spec).unwrap_err().to_string()
}

#[test]
fn valid_diamond_passes() {
    let spec = dag(vec![
        step("a", &[]),
        step("b", &["a"]),
        step("c", &["a"]),
        step("d", &["b", "c"]),
    ]);
    assert_eq!(validate_dag(&spec), Ok(()));
}

#[test]
fn cycle_names_its_steps() {
    let spec = dag(vec![
        step("a", &["c"]),
        step("b", &["a"]),
        step("c", &["b"]),
        step("ok", &[]),
    ]);
    let msg = messages(&spec);
    assert!(msg.contains("dependency cycle"), "{msg}");
    for s in ["\"a\"", "\"b\"", "\"c\""] {
        assert!(msg.contains(s), "{msg}");
    }
    assert!(!msg.contains("\"ok\""), "{msg}");
}

#[test]
fn unknown_dependency_names_step_and_dependency() {
    let msg = messages(&dag(vec![step("a", &["nope"])]));
    assert_eq!(msg, "step \"a\": depends on unknown step \"nope\"");
}

#[test]
fn duplicate_step_is_named() {
    let msg = messages(&dag(vec![step("a", &[]), step("a", &[])]));
    assert_eq!(msg, "step \"a\": duplicate step name");
}

#[test]
fn command_and_script_are_exclusive() {
    let mut s = step("run", &[]);
    s.command = vec!["echo".into()];
    s.script = Some("echo hi".into());
    assert_eq!(
        messages(&dag(vec![s])),
        "step \"run\": command/args and script are exclusive; set one"
    );
}

#[test]
fn missing_image_is_named_unless_a_default_exists() {
    let mut spec = dag(vec![step("a", &[])]);
    spec.defaults.image = None;
    assert!(messages(&spec).contains("step \"a\": no image"));
    spec.steps[0].container.image = Some("busybox".into());
    assert_eq!(validate_dag(&spec), Ok(()));
}

#[test]
fn bad_names_are_refused() {
    let mut spec = dag(vec![step("Bad_Name", &[])]);
    spec.params = vec![ParamDecl {
        name: "9lives".into(),
        default: None,
    }];
    let msg = messages(&spec);
    assert!(msg.contains("step \"Bad_Name\": invalid name"), "{msg}");
    assert!(msg.contains("invalid parameter name \"9lives\""), "{msg}");
}

#[test]
fn env_may_not_shadow_params_or_reserved_names() {
    let mut spec = dag(vec![step("a", &[])]);
    spec.params = vec![ParamDecl {
        name: "file".into(),
        default: None,
    }];
    spec.steps[0].container.env = vec![EnvVar {
        name: "file".into(),
        ..Default::default()
    }];
    spec.defaults.env = vec![EnvVar {
        name: "KUBEDAG_RUN".into(),
        ..Default::default()
    }];
    let msg = messages(&spec);
    assert!(msg.contains("\"file\"") && msg.contains("\"KUBEDAG_RUN\""), "{msg}");
}

#[test]
fn label_values() {
    assert!(check_label_value("m31-0001.fits").is_ok());
    assert!(check_label_value("").is_ok());
    assert!(check_label_value("has space").is_err());
    assert!(check_label_value("-lead").is_err());
    assert!(check_label_value(&"x".repeat(64)).is_err());
}

fn with_outputs(name: &str, deps: &[&str], outputs: &[&str]) -> Step {
    Step {
        outputs: outputs.iter().map(|o| o.to_string()).collect(),
        ..step(name, deps)
    }
}

#[test]
fn reserved_param_prefix_is_refused() {
    let mut spec = dag(vec![step("a", &[])]);
    spec.params = vec![ParamDecl {
        name: "KUBEDAG_OUTPUT_A_X".into(),
        default: None,
    }];
    assert_eq!(
        messages(&spec),
        "spec.params: parameter \"KUBEDAG_OUTPUT_A_X\" uses the reserved KUBEDAG_ prefix"
    );
}

#[test]
fn output_names_must_be_identifiers_and_unique() {
    let spec = dag(vec![with_outputs("a", &[], &["count", "bad-name", "count", "9x"])]);
    assert_eq!(
        messages(&spec),
        "step \"a\": invalid output name \"bad-name\": must match [A-Za-z_][A-Za-z0-9_]*; \
         step \"a\": output \"count\" declared twice; \
         step \"a\": invalid output name \"9x\": must match [A-Za-z_][A-Za-z0-9_]*"
    );
}

#[test]
fn output_variable_collisions_are_refused() {
    let spec = dag(vec![with_outputs("a-b", &[], &["c"]), with_outputs("a", &[], &["b_c"])]);
    assert_eq!(
        messages(&spec),
        "step \"a-b\" output \"c\" and step \"a\" output \"b_c\" both map to the script variable \
         KUBEDAG_OUTPUT_A_B_C; rename one"
    );
}

#[test]
fn when_syntax_and_references_are_refused_naming_the_step() {
    let mut spec = dag(vec![
        with_outputs("detect", &[], &["count"]),
        step("b", &[]),
        step("c", &["detect"]),
    ]);
    spec.steps[1].when = Some("params.mode ==".into());
    spec.steps[2].when = Some("int(steps.detect.outputs.count) > 0".into());
    let msg = messages(&spec);
    assert!(
        msg.starts_with("step \"b\": when: syntax error: ERROR: <input>:1:15"),
        "{msg}"
    );
    assert!(!msg.contains("step \"c\""), "{msg}");
    spec.steps[1].when = Some("steps.detect.phase == 'Succeeded'".into());
    assert_eq!(
        messages(&spec),
        "step \"b\": when: steps.detect: step \"detect\" is not among the steps it depends on (directly or transitively)"
    );
    spec.steps[1].depends = vec!["c".into()];
    assert_eq!(validate_dag(&spec), Ok(()));
}

#[test]
fn output_references_are_refused_naming_the_step_and_reference() {
    let mut spec = dag(vec![with_outputs("a", &[], &["n"]), step("b", &[])]);
    spec.steps[1].args = vec!["$(steps.a.outputs.n)".into()];
    assert_eq!(
        messages(&spec),
        "step \"b\": args[0]: $(steps.a.outputs.n): step \"a\" is not among the steps it depends on (directly or transitively)"
    );
    spec.steps[1].depends = vec!["a".into()];
    assert_eq!(validate_dag(&spec), Ok(()));
}

/// Main a -> b; handlers notify -> cleanup.
fn with_handlers() -> DagSpec {
    let mut spec = dag(vec![with_outputs("a", &[], &["n"]), step("b", &["a"])]);
    spec.on_exit = vec![with_outputs("notify", &[], &["sent"]), step("cleanup", &["notify"])];
    spec
}

#[test]
fn valid_handlers_pass_and_may_read_main_steps() {
    let mut spec = with_handlers();
    spec.on_exit[0].args = vec!["$(steps.a.outputs.n)".into()];
    spec.on_exit[1].when = Some("steps.b.phase == 'Failed' && steps.notify.outputs.sent != ''".into());
    assert_eq!(validate_dag(&spec), Ok(()));
}

#[test]
fn handler_names_are_unique_across_steps_and_handlers() {
    let mut spec = with_handlers();
    spec.on_exit.push(step("a", &[]));
    spec.on_exit.push(step("Bad", &[]));
    let msg = messages(&spec);
    assert!(msg.contains("onExit handler \"a\": duplicate step name"), "{msg}");
    assert!(msg.contains("onExit handler \"Bad\": invalid name"), "{msg}");
}

#[test]
fn handlers_depend_only_on_handlers_and_steps_never_on_handlers() {
    let mut spec = with_handlers();
    spec.on_exit[0].depends = vec!["b".into(), "ghost".into()];
    spec.steps[1].depends.push("cleanup".into());
    assert_eq!(
        messages(&spec),
        "step \"b\": depends on onExit handler \"cleanup\"; main steps may not depend on exit handlers; \
         onExit handler \"notify\": depends on main step \"b\"; exit handlers run after every main step and may depend only on other exit handlers; \
         onExit handler \"notify\": depends on unknown step \"ghost\""
    );
}

#[test]
fn handler_cycles_and_bodies_are_checked_and_named() {
    let mut spec = with_handlers();
    spec.on_exit[0].depends = vec!["cleanup".into()];
    spec.on_exit[1].script = Some("echo".into());
    spec.on_exit[1].command = vec!["echo".into()];
    spec.on_exit[1].args = vec!["$(steps.nobody.outputs.x)".into()];
    let msg = messages(&spec);
    assert!(
        msg.contains("onExit handler \"cleanup\": command/args and script are exclusive"),
        "{msg}"
    );
    assert!(
        msg.contains("onExit handler \"cleanup\": args[0]: $(steps.nobody.outputs.x): there is no step \"nobody\""),
        "{msg}"
    );
    assert!(
        msg.contains("onExit handlers \"notify\" -> \"cleanup\": dependency cycle")
            || msg.contains("onExit handlers \"cleanup\" -> \"notify\": dependency cycle"),
        "{msg}"
    );
    // A cycle among handlers is not one among main steps.
    assert!(!msg.contains("steps \""), "{msg}");
}

#[test]
fn a_dag_of_only_handlers_has_no_steps() {
    let mut spec = with_handlers();
    spec.steps.clear();
    assert!(messages(&spec).starts_with("spec.steps: the Dag has no steps"));
}

#[test]
fn mounts_must_name_a_declared_volume() {
    use k8s_openapi::api::core::v1::{Volume, VolumeMount};
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    };
    let mut spec = dag(vec![step("a", &[]), step("b", &[])]);
    spec.defaults.volumes = vec![Volume {
        name: "data".into(),
        ..Default::default()
    }];
    spec.defaults.volume_mounts = vec![mount("data", "/data")];
    spec.steps[1].container.volume_mounts = vec![mount("scratch", "/scratch")];
    assert_eq!(
        messages(&spec),
        "step \"b\": volumeMounts entry \"/scratch\" names volume \"scratch\", which neither the step nor spec.defaults declares in volumes"
    );
    spec.steps[1].container.volumes = vec![Volume {
        name: "scratch".into(),
        ..Default::default()
    }];
    assert_eq!(validate_dag(&spec), Ok(()));
}

#[test]
fn bad_retry_settings_name_the_step_and_field() {
    use crate::api::{Backoff, RetryPolicy};
    let mut s = step("fit", &[]);
    s.retry = Some(Box::new(RetryPolicy {
        limit: 2,
        backoff: Some(Backoff {
            delay_seconds: -1,
            factor: 0.5,
            max_delay_seconds: Some(-3),
        }),
        on_exit_codes: vec![3, 0, 256],
    }));
    let msg = messages(&dag(vec![s.clone()]));
    for want in [
        "step \"fit\": retry.backoff.delaySeconds: must be >= 0, is -1",
        "step \"fit\": retry.backoff.factor: must be a number >= 1, is 0.5",
        "step \"fit\": retry.backoff.maxDelaySeconds: must be >= 0, is -3",
        "step \"fit\": retry.onExitCodes: 0 is not a failing exit code (1-255)",
        "step \"fit\": retry.onExitCodes: 256 is not a failing exit code (1-255)",
    ] {
        assert!(msg.contains(want), "{want} missing in {msg}");
    }
    s.retry = Some(Box::new(RetryPolicy {
        limit: 2,
        backoff: Some(Backoff {
            delay_seconds: 3,
            factor: 1.0,
            max_delay_seconds: Some(0),
        }),
        on_exit_codes: vec![1, 255],
    }));
    assert_eq!(validate_dag(&dag(vec![s])), Ok(()));
}

#[test]
fn the_workspace_path_and_volume_name_are_kept_free() {
    use crate::api::Workspace;
    use k8s_openapi::api::core::v1::{Volume, VolumeMount};
    let mut s = step("a", &[]);
    s.container.volumes = vec![Volume {
        name: "kubedag-workspace".into(),
        ..Default::default()
    }];
    s.container.volume_mounts = vec![VolumeMount {
        name: "kubedag-workspace".into(),
        mount_path: "/workspace/".into(),
        ..Default::default()
    }];
    let mut spec = dag(vec![s]);
    spec.workspace = Some(Box::new(Workspace {
        mount_path: "/workspace".into(),
        ..Default::default()
    }));
    let msg = messages(&spec);
    assert!(
        msg.contains("step \"a\": volume name \"kubedag-workspace\" is reserved"),
        "{msg}"
    );
    assert!(
        msg.contains("step \"a\": volumeMounts entry \"/workspace/\" is the workspace's mountPath"),
        "{msg}"
    );
    let mut spec = dag(vec![step("a", &[])]);
    spec.workspace = Some(Box::new(Workspace {
        mount_path: "work".into(),
        ..Default::default()
    }));
    assert_eq!(
        messages(&spec),
        "spec.workspace.mountPath: must be an absolute path other than /, is \"work\""
    );
}
