//! What a `DagTrigger` submits for one event: the run's params (the trigger's `spec.params` with
//! the event's variables filled in) and its deterministic name and request id.
//!
//! Variables: `$(schedule.time)` for a tick; `$(file.path)`, `$(file.name)`, `$(file.dir)`,
//! `$(file.size)` and `$(file.etag)` for a file or object. A `$(schedule.…)` or `$(file.…)`
//! reference the event does not provide is an error naming the param and the variable; every
//! other `$(...)` is left as written (the Dag's own references).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The variables of one event, by full name (`file.path`, `schedule.time`, ...).
pub type Variables = BTreeMap<&'static str, String>;

/// Longest trigger-name prefix in a run name, leaving room for `-` and a 12-character suffix
/// (run names stay DNS-1123 labels of at most 63 characters).
const NAME_PREFIX_MAX: usize = 50;

/// A bad `spec.params` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// The value refers to a variable this trigger's events do not have.
    #[error("spec.params.{param}: unknown variable $({variable}); {source_kind} events provide {known}")]
    UnknownVariable {
        param: String,
        variable: String,
        source_kind: &'static str,
        known: String,
    },
}

/// The variables of a schedule tick at `time` (RFC 3339, e.g. `2026-12-01T23:00:00Z`).
pub fn schedule_variables(time: &str) -> Variables {
    [("schedule.time", time.to_string())].into()
}

/// `spec.params` with the event's variables substituted. Errors: a `$(schedule.X)` or `$(file.X)`
/// not in `vars` ([`ParamsError::UnknownVariable`], naming the param).
pub fn render_params(
    params: &BTreeMap<String, String>,
    vars: &Variables,
    source_kind: &'static str,
) -> Result<BTreeMap<String, String>, ParamsError> {
    params
        .iter()
        .map(|(name, value)| Ok((name.clone(), render(name, value, vars, source_kind)?)))
        .collect()
}

fn render(param: &str, value: &str, vars: &Variables, source_kind: &'static str) -> Result<String, ParamsError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None if name.starts_with("file.") || name.starts_with("schedule.") => {
                return Err(ParamsError::UnknownVariable {
                    param: param.to_string(),
                    variable: name.to_string(),
                    source_kind,
                    known: vars.keys().map(|k| format!("$({k})")).collect::<Vec<_>>().join(", "),
                });
            }
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Lowercase hex SHA-256 of an input identity (see `watch::ledger::identity`).
pub fn identity_hash(identity: &str) -> String {
    hex::encode(Sha256::digest(identity.as_bytes()))
}

/// The run of trigger `trigger` for the input with hash `hash` (hex): `TRIGGER-<12 hex>`, at most
/// 63 characters. The same input always gets the same name, so a second create is AlreadyExists.
pub fn input_run_name(trigger: &str, hash: &str) -> String {
    format!("{}-{}", prefix(trigger), &hash[..12])
}

/// The run of trigger `trigger` for the tick at `unix_seconds`: `TRIGGER-<unix minutes>` as a
/// CronJob names its Jobs, so each tick has exactly one possible run.
pub fn tick_run_name(trigger: &str, unix_seconds: i64) -> String {
    format!("{}-{}", prefix(trigger), unix_seconds.div_euclid(60))
}

/// A request id (label value) for an input: its hash's first 32 characters.
pub fn input_request_id(hash: &str) -> String {
    hash[..32].to_string()
}

fn prefix(trigger: &str) -> &str {
    let mut end = trigger.len().min(NAME_PREFIX_MAX);
    while !trigger.is_char_boundary(end) {
        end -= 1;
    }
    trigger[..end].trim_end_matches(['-', '.'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file_vars() -> Variables {
        [
            ("file.path", "in/m31.fits".to_string()),
            ("file.name", "m31.fits".to_string()),
            ("file.dir", "in".to_string()),
            ("file.size", "42".to_string()),
        ]
        .into()
    }

    #[test]
    fn fills_in_the_event_variables_and_keeps_other_references() {
        let params = [
            ("file".to_string(), "/data/$(file.path)".to_string()),
            (
                "label".to_string(),
                "$(file.name)@$(file.size) $(threshold) $( x".to_string(),
            ),
        ]
        .into();
        let out = render_params(&params, &file_vars(), "directory").unwrap();
        assert_eq!(out["file"], "/data/in/m31.fits");
        assert_eq!(out["label"], "m31.fits@42 $(threshold) $( x");
    }

    #[test]
    fn a_variable_of_another_source_is_an_error_naming_the_param() {
        let params = [("when".to_string(), "$(schedule.time)".to_string())].into();
        let err = render_params(&params, &file_vars(), "directory").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("spec.params.when"), "{text}");
        assert!(text.contains("$(schedule.time)"), "{text}");
        assert!(text.contains("$(file.path)"), "{text}");
        let etag = [("e".to_string(), "$(file.etag)".to_string())].into();
        assert!(render_params(&etag, &file_vars(), "directory").is_err());
    }

    #[test]
    fn tick_names_are_per_minute_like_a_cronjob() {
        assert_eq!(tick_run_name("nightly", 1_800_000_000), "nightly-30000000");
        assert_eq!(tick_run_name("nightly", 1_800_000_059), "nightly-30000000");
    }

    proptest! {
        #[test]
        fn run_names_are_short_labels_and_deterministic(trigger in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", id in ".*") {
            let hash = identity_hash(&id);
            let name = input_run_name(&trigger, &hash);
            prop_assert!(name.len() <= 63);
            prop_assert_eq!(&name, &input_run_name(&trigger, &identity_hash(&id)));
            prop_assert!(!name.contains("--") || trigger.contains("--"));
            let tick = tick_run_name(&trigger, 1_800_000_000);
            prop_assert!(tick.len() <= 63);
            prop_assert_eq!(input_request_id(&hash).len(), 32);
        }

        #[test]
        fn values_without_references_pass_unchanged(value in "[^$]*") {
            let params = [("p".to_string(), value.clone())].into();
            prop_assert_eq!(&render_params(&params, &file_vars(), "directory").unwrap()["p"], &value);
        }
    }
}
