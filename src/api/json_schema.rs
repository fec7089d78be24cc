//! JSON Schema (draft-07) of kubedag manifests for editors, e.g. the YAML language server:
//! `# yaml-language-server: $schema=kubedag.schema.json`. Built from the CRDs' own structural
//! schemas, so editors check exactly what the API server checks.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use super::{Dag, DagRun, GROUP};

/// The schema of one manifest that is a Dag or a DagRun (chosen by its `kind`).
pub fn manifest_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "kubedag manifest (Dag or DagRun)",
        "oneOf": [kind_schema(&Dag::crd()), kind_schema(&DagRun::crd())],
    })
}

/// The object schema of the CRD's first version, with `apiVersion` and `kind` fixed.
fn kind_schema(crd: &CustomResourceDefinition) -> Value {
    let version = &crd.spec.versions[0];
    let mut schema = version
        .schema
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.open_api_v3_schema).ok())
        .unwrap_or_else(|| json!({"type": "object"}));
    to_json_schema(&mut schema);
    let kind = &crd.spec.names.kind;
    let properties = schema["properties"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut all = Map::new();
    all.insert(
        "apiVersion".into(),
        json!({"const": format!("{GROUP}/{}", version.name)}),
    );
    all.insert("kind".into(), json!({"const": kind}));
    all.insert("metadata".into(), json!({"type": "object"}));
    all.extend(properties);
    schema["properties"] = Value::Object(all);
    schema["title"] = json!(kind);
    schema["required"] = json!(["apiVersion", "kind", "spec"]);
    schema
}

/// OpenAPI's `nullable: true` becomes a `"null"` type; the `x-kubernetes-*` extensions, which
/// JSON Schema does not know, go.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true))
                && let Some(Value::String(kind)) = map.get("type").cloned()
            {
                map.insert("type".into(), json!([kind, "null"]));
            }
            map.retain(|key, _| !key.starts_with("x-kubernetes-"));
            map.values_mut().for_each(to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_chosen_by_its_kind_and_api_version() {
        let schema = manifest_schema();
        let kinds: Vec<&Value> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["properties"]["kind"]["const"])
            .collect();
        assert_eq!(kinds, [&json!("Dag"), &json!("DagRun")]);
        assert_eq!(
            schema["oneOf"][0]["properties"]["apiVersion"]["const"],
            "kubedag.io/v1alpha1"
        );
        let steps = &schema["oneOf"][0]["properties"]["spec"]["properties"]["steps"];
        assert_eq!(steps["type"], "array", "{steps}");
    }

    #[test]
    fn nothing_openapi_only_is_left() {
        let text = manifest_schema().to_string();
        assert!(!text.contains("x-kubernetes-"));
        assert!(!text.contains("\"nullable\""));
    }
}
