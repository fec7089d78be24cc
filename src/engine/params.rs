//! Parameter resolution and identity.
//!
//! Resolved params = the Dag's declared defaults, overridden by the run's `spec.params`.
//! Canonical form = the resolved params as a JSON object, keys sorted by byte order, no whitespace,
//! standard JSON string escaping, UTF-8. `paramHash` = lowercase hex SHA-256 of the canonical form.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::api::ParamDecl;

/// Resolved parameters; `BTreeMap<String, _>` iterates keys in byte order, which the canonical form needs.
pub type Params = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("spec.params.{name}: parameter {name:?} is not declared by Dag {dag:?} (declared: {declared})")]
    Undeclared {
        dag: String,
        name: String,
        declared: String,
    },
    #[error("spec.params: required parameter {name:?} of Dag {dag:?} is missing")]
    Missing { dag: String, name: String },
}

/// Applies the declared defaults and checks that `given` sets only declared parameters
/// and every required one. Errors are reported for the first offending name in byte order.
pub fn resolve(dag: &str, decls: &[ParamDecl], given: &Params) -> Result<Params, ParamError> {
    if let Some(name) = given.keys().find(|name| !decls.iter().any(|d| &d.name == *name)) {
        let declared = if decls.is_empty() {
            "none".to_string()
        } else {
            decls.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
        };
        return Err(ParamError::Undeclared {
            dag: dag.into(),
            name: name.clone(),
            declared,
        });
    }
    let mut resolved = Params::new();
    for decl in decls {
        let value = given.get(&decl.name).or(decl.default.as_ref());
        match value {
            Some(v) => {
                resolved.insert(decl.name.clone(), v.clone());
            }
            None => {
                return Err(ParamError::Missing {
                    dag: dag.into(),
                    name: decl.name.clone(),
                });
            }
        }
    }
    Ok(resolved)
}

/// The canonical JSON form of resolved parameters.
pub fn canonical_json(params: &Params) -> String {
    // serde_json writes maps in iteration order (byte order for BTreeMap<String, _>), with no
    // whitespace and the minimal standard escaping (quote, backslash, control characters).
    serde_json::to_string(params).expect("a map of strings always serializes")
}

/// Lowercase hex SHA-256 of the canonical form: the run's `status.paramHash`.
pub fn param_hash(params: &Params) -> String {
    hex::encode(Sha256::digest(canonical_json(params).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decl(name: &str, default: Option<&str>) -> ParamDecl {
        ParamDecl {
            name: name.into(),
            default: default.map(Into::into),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn contract_example_canonical_form_and_hash() {
        let p = params(&[("threshold", "0.5"), ("file", "m31-0001.fits")]);
        assert_eq!(canonical_json(&p), r#"{"file":"m31-0001.fits","threshold":"0.5"}"#);
        // Computed independently: printf '%s' '{"file":"m31-0001.fits","threshold":"0.5"}' | sha256sum
        assert_eq!(
            param_hash(&p),
            "05e848ee580b1a53ff159d22b40fb601504cc26a0ffb8773481c81c566e39512"
        );
    }

    #[test]
    fn tricky_values_are_escaped_minimally() {
        let p = params(&[
            ("b", "quote \" back \\ nl \n tab \t"),
            ("a", "ünïcødé ✓ /slash"),
            ("c", ""),
        ]);
        assert_eq!(
            canonical_json(&p),
            "{\"a\":\"ünïcødé ✓ /slash\",\"b\":\"quote \\\" back \\\\ nl \\n tab \\t\",\"c\":\"\"}"
        );
    }

    #[test]
    fn keys_sort_by_bytes_not_case_insensitively() {
        let p = params(&[("b", "1"), ("B", "2"), ("_", "3"), ("a", "4")]);
        assert_eq!(canonical_json(&p), r#"{"B":"2","_":"3","a":"4","b":"1"}"#);
    }

    #[test]
    fn control_characters_use_unicode_escapes() {
        let p = params(&[("x", "\u{1}\u{1f}")]);
        assert_eq!(canonical_json(&p), r#"{"x":"\u0001\u001f"}"#);
    }

    #[test]
    fn defaults_apply_and_overrides_win() {
        let decls = [decl("file", None), decl("threshold", Some("0.5"))];
        let r = resolve("d", &decls, &params(&[("file", "f")])).unwrap();
        assert_eq!(r, params(&[("file", "f"), ("threshold", "0.5")]));
        let r = resolve("d", &decls, &params(&[("file", "f"), ("threshold", "0.9")])).unwrap();
        assert_eq!(r["threshold"], "0.9");
    }

    #[test]
    fn undeclared_and_missing_are_named() {
        let decls = [decl("file", None)];
        let err = resolve("img", &decls, &params(&[("file", "f"), ("bogus", "x")])).unwrap_err();
        assert!(err.to_string().contains("\"bogus\""), "{err}");
        assert!(err.to_string().contains("spec.params.bogus"), "{err}");
        let err = resolve("img", &decls, &Params::new()).unwrap_err();
        assert_eq!(
            err,
            ParamError::Missing {
                dag: "img".into(),
                name: "file".into()
            }
        );
        assert!(err.to_string().contains("required parameter \"file\""), "{err}");
    }

    /// An independent encoder written from RFC 8259's minimal escaping rules.
    fn reference_canonical(params: &Params) -> String {
        fn quote(s: &str) -> String {
            let mut out = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        let mut keys: Vec<&String> = params.keys().collect();
        keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let body: Vec<String> = keys
            .iter()
            .map(|k| format!("{}:{}", quote(k), quote(&params[*k])))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    proptest! {
        #[test]
        fn canonical_form_matches_reference_and_ignores_insertion_order(
            map in proptest::collection::btree_map("\\PC{0,6}|[\"\\\\\u{0}-\u{1f}a-zA-Z]{0,6}", ".{0,12}", 0..8)
        ) {
            let json = canonical_json(&map);
            prop_assert_eq!(&json, &reference_canonical(&map));
            let reversed: Params = map.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(param_hash(&reversed), param_hash(&map));
            let parsed: Params = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&parsed, &map);
            let h = param_hash(&map);
            prop_assert_eq!(h.len(), 64);
            prop_assert!(h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
}
