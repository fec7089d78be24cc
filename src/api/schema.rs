//! Schema helpers for the CRDs: keeping them small enough to apply.
//!
//! The core/v1 types a step may set (volumes, affinity, security contexts, ...) carry Kubernetes'
//! full field documentation, which made each CRD about 310 kB of JSON: over the 256 kB that
//! client-side `kubectl apply` may store in its last-applied annotation. Their schemas are kept
//! whole (every field, type and format) but without the nested descriptions; `kubectl explain pod`
//! documents those types. Our own fields keep their descriptions.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

/// For `#[schemars(schema_with = "lean::<T>")]`: `T`'s schema as the CRD generator makes it
/// (inlined), without the descriptions of its fields.
pub(crate) fn lean<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<T>();
    if let Some(object) = schema.as_object_mut() {
        strip_descriptions(object);
    }
    schema
}

/// Removes `description` from a schema object and every subschema in it. Under `properties`
/// the keys are field names (a field may be called "description"), so only their values recurse.
fn strip_descriptions(schema: &mut Map<String, Value>) {
    schema.remove("description");
    for (key, child) in schema.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(fields)) => fields
                .values_mut()
                .filter_map(Value::as_object_mut)
                .for_each(strip_descriptions),
            ("enum" | "default" | "example", _) => {}
            (_, Value::Object(sub)) => strip_descriptions(sub),
            (_, Value::Array(subs)) => subs
                .iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(strip_descriptions),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_nested_descriptions_but_keeps_fields_named_description() {
        let mut schema = json!({
            "description": "top",
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "a field named description"},
                "items": {"type": "array", "items": {"type": "object", "description": "x",
                    "properties": {"a": {"type": "integer", "description": "y"}}}},
                "either": {"anyOf": [{"type": "string", "description": "z"}]},
                "map": {"type": "object", "additionalProperties": {"type": "string", "description": "w"}},
                "choice": {"type": "string", "enum": ["a"], "default": {"description": "data"}}
            }
        });
        strip_descriptions(schema.as_object_mut().unwrap());
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "items": {"type": "array", "items": {"type": "object",
                        "properties": {"a": {"type": "integer"}}}},
                    "either": {"anyOf": [{"type": "string"}]},
                    "map": {"type": "object", "additionalProperties": {"type": "string"}},
                    "choice": {"type": "string", "enum": ["a"], "default": {"description": "data"}}
                }
            })
        );
    }
}
