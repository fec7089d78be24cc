//! Validation of composition: `steps[].call`, `steps[].forEach` and `spec.outputs`. Every
//! message names the step (or output) and the field.

use std::collections::HashSet;

use crate::api::{DagSpec, Step};

use super::references;
use super::validate::{DagError, Who, check_dns_label, is_param_name};

/// Problems of a step's `call` and `forEach`.
pub fn check_step(spec: &DagSpec, step: &Step, who: &Who, errors: &mut Vec<DagError>) {
    let mut bad = |message: String| {
        errors.push(DagError::Compose {
            step: who.clone(),
            message,
        })
    };
    if let Some(call) = &step.call {
        if !step.command.is_empty() || !step.args.is_empty() || step.script.is_some() {
            bad("call is exclusive with command, args and script; set one".into());
        }
        if let Err(reason) = check_dns_label(&call.dag) {
            bad(format!("call.dag {:?}: {reason}", call.dag));
        }
    }
    let Some(for_each) = &step.for_each else { return };
    let sources = [
        for_each.items.is_some(),
        for_each.param.is_some(),
        for_each.output.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        bad("forEach: set exactly one of items, param or output".into());
    }
    if let Some(param) = &for_each.param
        && !spec.params.iter().any(|p| &p.name == param)
    {
        bad(format!("forEach.param: {param:?} is not a declared parameter"));
    }
    if let Some(key) = &for_each.output {
        match references::parse_key(key) {
            None => bad(format!("forEach.output: {key:?} is not steps.STEP.outputs.NAME")),
            Some(r) => match references::readable(spec, step).get(r.step.as_str()) {
                None => bad(format!(
                    "forEach.output: {key:?}: step {:?} is not among the steps it depends on",
                    r.step
                )),
                Some(target) if !target.outputs.contains(&r.output) => bad(format!(
                    "forEach.output: {key:?}: step {:?} declares no output {:?}",
                    r.step, r.output
                )),
                Some(_) => {}
            },
        }
    }
    if spec.params.iter().any(|p| p.name == super::call::ITEM) {
        bad("forEach: the Dag declares a parameter named \"item\", which is the forEach item's name".into());
    }
}

/// Problems of `spec.outputs`: names, and references to main steps' declared outputs.
pub fn check_outputs(spec: &DagSpec, errors: &mut Vec<DagError>) {
    let mut seen = HashSet::new();
    for output in &spec.outputs {
        let mut bad = |message: String| {
            errors.push(DagError::DagOutput {
                name: output.name.clone(),
                message,
            })
        };
        if !is_param_name(&output.name) {
            bad("invalid name: must match [A-Za-z_][A-Za-z0-9_]*".into());
        }
        if !seen.insert(output.name.as_str()) {
            bad("declared twice".into());
        }
        match references::find_in_text(&output.value) {
            Err(text) => bad(format!("value: {text:?} is not an output reference")),
            Ok(refs) => {
                for r in refs {
                    let declared = spec.steps.iter().find(|s| s.name == r.step).map(|s| &s.outputs);
                    match declared {
                        None => bad(format!("value: $({}): there is no step {:?}", r.key(), r.step)),
                        Some(outputs) if !outputs.contains(&r.output) => bad(format!(
                            "value: $({}): step {:?} declares no output {:?}",
                            r.key(),
                            r.step,
                            r.output
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate::validate_dag;
    use crate::api::{Call, ContainerSettings, DagOutput, DagSpec, ForEach, ParamDecl, Step};

    fn spec(steps: Vec<Step>) -> DagSpec {
        DagSpec {
            defaults: ContainerSettings {
                image: Some("busybox".into()),
                ..Default::default()
            },
            steps,
            ..Default::default()
        }
    }

    fn errors(spec: &DagSpec) -> String {
        validate_dag(spec)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn a_call_needs_no_image_but_excludes_commands() {
        let call = Step {
            name: "c".into(),
            call: Some(Box::new(Call {
                dag: "child".into(),
                params: Default::default(),
            })),
            ..Default::default()
        };
        let mut no_image = spec(vec![call.clone()]);
        no_image.defaults.image = None;
        assert_eq!(errors(&no_image), "");
        let mut both = call;
        both.script = Some("echo".into());
        assert!(errors(&spec(vec![both])).contains("step \"c\": call is exclusive"));
    }

    #[test]
    fn for_each_sources_are_checked() {
        let fan = |fe: ForEach, depends: &[&str]| Step {
            name: "f".into(),
            for_each: Some(Box::new(fe)),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        let none = spec(vec![fan(ForEach::default(), &[])]);
        assert!(errors(&none).contains("step \"f\": forEach: set exactly one"));
        let param = spec(vec![fan(
            ForEach {
                param: Some("files".into()),
                ..Default::default()
            },
            &[],
        )]);
        assert!(errors(&param).contains("forEach.param: \"files\" is not a declared parameter"));
        let list = Step {
            name: "list".into(),
            outputs: vec!["files".into()],
            ..Default::default()
        };
        let output = |key: &str| {
            spec(vec![
                list.clone(),
                fan(
                    ForEach {
                        output: Some(key.into()),
                        ..Default::default()
                    },
                    &["list"],
                ),
            ])
        };
        assert_eq!(errors(&output("steps.list.outputs.files")), "");
        assert!(errors(&output("steps.list.outputs.nope")).contains("declares no output \"nope\""));
        let mut item_param = spec(vec![fan(
            ForEach {
                items: Some(vec![]),
                ..Default::default()
            },
            &[],
        )]);
        item_param.params.push(ParamDecl {
            name: "item".into(),
            default: None,
        });
        assert!(errors(&item_param).contains("parameter named \"item\""));
    }

    #[test]
    fn dag_outputs_must_name_declared_outputs() {
        let mut s = spec(vec![Step {
            name: "sum".into(),
            outputs: vec!["total".into()],
            ..Default::default()
        }]);
        s.outputs = vec![DagOutput {
            name: "total".into(),
            value: "$(steps.sum.outputs.total)".into(),
        }];
        assert_eq!(errors(&s), "");
        s.outputs.push(DagOutput {
            name: "bad".into(),
            value: "$(steps.sum.outputs.count)".into(),
        });
        assert!(errors(&s).contains(
            "spec.outputs \"bad\": value: $(steps.sum.outputs.count): step \"sum\" declares no output \"count\""
        ));
    }
}
