//! `steps[].forEach`: the item list, the compact record of finished instances, and the step's
//! outputs as JSON arrays in item order.
//!
//! The parent's status keeps, per fan-out step, counts, one bit per item and the first failed
//! instances ([`ForEachStatus`]); which attempt an instance is at is read back from its Jobs or
//! child runs (deterministic names per index and attempt), so the status stays small with 10,000
//! items.

use crate::api::{ForEach, ForEachStatus};

use super::naming;
use super::params::Params;
use super::references;

/// The items of a fan-out, in order. `output(step, name)` reads a dependency's recorded output.
/// Err: the message the step fails with, naming the field and what is wrong with its value.
pub fn items(
    for_each: &ForEach,
    params: &Params,
    output: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Vec<String>, String> {
    if let Some(items) = &for_each.items {
        return Ok(items.clone());
    }
    if let Some(param) = &for_each.param {
        let value = params
            .get(param)
            .ok_or_else(|| format!("forEach.param: parameter {param:?} has no value"))?;
        return parse_list(value).map_err(|e| format!("forEach.param {param:?}: {e}"));
    }
    if let Some(key) = &for_each.output {
        let r = references::parse_key(key)
            .ok_or_else(|| format!("forEach.output: {key:?} is not steps.STEP.outputs.NAME"))?;
        let value = output(&r.step, &r.output).unwrap_or_default();
        return parse_list(&value).map_err(|e| format!("forEach.output {key:?}: {e}"));
    }
    Err("forEach: set one of items, param or output".into())
}

/// A JSON array of strings, numbers or booleans, each item as its text (`"a"` -> `a`, `2` -> `2`).
pub fn parse_list(text: &str) -> Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array ({e}): {}", cut(text, 64)))?;
    let serde_json::Value::Array(list) = value else {
        return Err(format!("not a JSON array: {}", cut(text, 64)));
    };
    list.into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("item {i} is not a string, number or boolean: {other}")),
        })
        .collect()
}

/// `text` cut to at most `max` characters (an ellipsis marks a cut).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// One bit per item: which instances finished (succeeded or failed for good).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits(Vec<u8>);

impl Bits {
    /// From `ForEachStatus::done` (hex) for `total` items; a missing or bad record is all clear.
    pub fn decode(text: &str, total: usize) -> Bits {
        let mut bytes = hex::decode(text).unwrap_or_default();
        bytes.resize(total.div_ceil(8), 0);
        Bits(bytes)
    }

    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    pub fn set(&mut self, i: usize) {
        if let Some(b) = self.0.get_mut(i / 8) {
            *b |= 1 << (i % 8);
        }
    }

    /// The hex text for `ForEachStatus::done`.
    pub fn encode(&self) -> String {
        hex::encode(&self.0)
    }
}

/// Records a failed instance: counted always, named while fewer than
/// [`ForEachStatus::FAILED_KEPT`] are.
pub fn record_failure(status: &mut ForEachStatus, index: u32, item: &str, message: &str) {
    status.failed += 1;
    if status.failed_items.len() < ForEachStatus::FAILED_KEPT {
        status.failed_items.push(crate::api::FailedItem {
            index,
            item: cut(item, 64),
            message: cut(message, 256),
        });
    }
}

/// The message of a fan-out whose instances did not all succeed, naming the first failed ones.
pub fn failure_message(status: &ForEachStatus) -> String {
    let named: Vec<String> = status
        .failed_items
        .iter()
        .take(3)
        .map(|f| format!("item {} ({:?}): {}", f.index, f.item, f.message))
        .collect();
    let more = if status.failed as usize > named.len() {
        format!("; and {} more", status.failed as usize - named.len())
    } else {
        String::new()
    };
    format!(
        "{} of {} instances failed: {}{more}",
        status.failed,
        status.total,
        named.join("; ")
    )
}

/// The Jobs of a Running fan-out's unfinished instances (not for `call` steps): per instance, the
/// names of its earlier attempts' Jobs and of its current attempt's (the highest that `exists`,
/// or attempt 1). The planner finds the same current attempts from the same cache.
pub fn instance_jobs(
    run: &str,
    step: &str,
    status: &ForEachStatus,
    exists: &dyn Fn(&str) -> bool,
) -> Vec<(Vec<String>, String)> {
    let done = Bits::decode(&status.done, status.total as usize);
    (0..status.launched.min(status.total))
        .filter(|&i| !done.get(i as usize))
        .map(|index| {
            let name = |attempt| naming::instance_job_name(run, step, index, status.round, attempt);
            let mut earlier = Vec::new();
            let mut current = name(1);
            let mut attempt = 1;
            while attempt < MAX_ATTEMPTS && exists(&name(attempt + 1)) {
                earlier.push(std::mem::replace(&mut current, name(attempt + 1)));
                attempt += 1;
            }
            (earlier, current)
        })
        .collect()
}

/// Attempts looked for per instance (a safety bound; `retry.limit` is at most 100).
pub const MAX_ATTEMPTS: u32 = 128;

/// One output of a fan-out step while it runs: item i's value or None (not finished, or failed).
pub fn decode_array(text: Option<&str>, total: usize) -> Vec<Option<String>> {
    let mut values: Vec<Option<String>> = text.and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    values.resize(total, None);
    values
}

/// The JSON array text of an output (null for an item without a value).
pub fn encode_array(values: &[Option<String>]) -> String {
    serde_json::to_string(values).expect("strings serialize")
}

#[cfg(test)]
#[path = "foreach_tests.rs"]
mod tests;
