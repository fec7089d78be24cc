//! Builders of `Dag` and `DagRun` manifests as JSON values (`serde_json::Value`), turned into
//! manifest text for `kubectl` ([`manifest_text`]) or typed objects by the caller. Shapes follow
//! the API contract: `Dag.spec.{params, defaults, duplicatePolicy, steps}`,
//! `DagRun.spec.{dagRef.name, params}`.

use serde_json::{Map, Value, json};

use super::STEP_IMAGE;

/// A `DagRun` named `name` of Dag `dag`, with string `params` (`spec.params: {}` when empty).
pub fn dag_run(name: &str, dag: &str, params: &[(&str, &str)]) -> Value {
    let params: Map<String, Value> = params.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    json!({
        "apiVersion": "kubedag.io/v1alpha1", "kind": "DagRun",
        "metadata": {"name": name},
        "spec": {"dagRef": {"name": dag}, "params": params},
    })
}

/// A step named `name` running shell `script`, after the steps in `depends` (no `depends` field
/// when empty).
pub fn script_step(name: &str, script: &str, depends: &[String]) -> Value {
    if depends.is_empty() {
        json!({"name": name, "script": script})
    } else {
        json!({"name": name, "script": script, "depends": depends})
    }
}

/// A `Dag` manifest under construction: [`DagManifest::new`] then the builder methods, each
/// adding one field.
#[derive(Debug, Clone, PartialEq)]
pub struct DagManifest(Value);

impl DagManifest {
    /// Dag `name` whose steps default to [`STEP_IMAGE`] with `imagePullPolicy: IfNotPresent`
    /// (the image is local, never pulled); no params and no steps yet.
    pub fn new(name: &str) -> DagManifest {
        DagManifest(json!({
            "apiVersion": "kubedag.io/v1alpha1", "kind": "Dag",
            "metadata": {"name": name},
            "spec": {
                "params": [],
                "defaults": {"image": STEP_IMAGE, "imagePullPolicy": "IfNotPresent"},
                "steps": [],
            },
        }))
    }

    fn spec(&mut self) -> &mut Map<String, Value> {
        self.0["spec"]
            .as_object_mut()
            .expect("a Dag manifest has a spec object")
    }

    fn push(&mut self, field: &str, item: Value) {
        if let Some(items) = self.spec()[field].as_array_mut() {
            items.push(item);
        }
    }

    /// Declares a required param `name`.
    pub fn param(mut self, name: &str) -> DagManifest {
        self.push("params", json!({"name": name}));
        self
    }

    /// Sets `spec.defaults.<key>` (e.g. `nodeSelector`, `tolerations`).
    pub fn default_field(mut self, key: &str, value: Value) -> DagManifest {
        self.spec()["defaults"][key] = value;
        self
    }

    /// Sets `spec.<key>` (e.g. `duplicatePolicy`).
    pub fn spec_field(mut self, key: &str, value: Value) -> DagManifest {
        self.spec().insert(key.to_string(), value);
        self
    }

    /// Appends a step (see [`script_step`]).
    pub fn step(mut self, step: Value) -> DagManifest {
        self.push("steps", step);
        self
    }

    /// The manifest as JSON.
    pub fn into_value(self) -> Value {
        self.0
    }
}

/// `value` as the text of a manifest for `kubectl apply -f -` or `serde_yaml::from_str`: JSON,
/// which every YAML parser reads, with every string quoted. (Plain YAML would leave `y` or `on`
/// unquoted, and kubectl's YAML 1.1 parser reads those as booleans.)
pub fn manifest_text(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Dag, DagRun};

    #[test]
    fn builds_manifests_that_parse_as_the_crd_types() {
        let dag = DagManifest::new("d")
            .param("file")
            .spec_field("duplicatePolicy", json!("Forbid"))
            .default_field("tolerations", json!([{"operator": "Exists"}]))
            .step(script_step("a", "true", &[]))
            .step(script_step("b", "echo hi", &["a".to_string()]))
            .into_value();
        assert_eq!(dag["spec"]["defaults"]["image"], STEP_IMAGE);
        assert_eq!(dag["spec"]["steps"][1]["depends"], json!(["a"]));
        assert!(dag["spec"]["steps"][0].get("depends").is_none());
        let typed: Dag = serde_yaml::from_str(&manifest_text(&dag)).expect("a valid Dag");
        assert_eq!(typed.spec.steps.len(), 2);

        let run = dag_run("r", "d", &[("file", "y"), ("n", "1"), ("on", "off")]);
        let text = manifest_text(&run);
        assert!(text.contains(r#""file": "y""#), "strings stay quoted: {text}");
        let typed: DagRun = serde_yaml::from_str(&text).expect("a valid DagRun");
        assert_eq!(typed.spec.dag_ref.name, "d");
        assert_eq!(typed.spec.params.get("file").map(String::as_str), Some("y"));
        assert_eq!(typed.spec.params.len(), 3);
        assert_eq!(dag_run("r", "d", &[])["spec"]["params"], json!({}));
    }
}
