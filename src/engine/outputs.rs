//! Step outputs: the `NAME=value` lines a step's container writes to the file `$KUBEDAG_OUTPUTS`.
//!
//! The file is the container's Kubernetes termination-message file: the Job builder sets
//! `terminationMessagePath` to [`OUTPUTS_PATH`] (policy `File`) and the env var [`OUTPUTS_ENV`] to
//! the same path; the kubelet copies the file into the pod status
//! (`state.terminated.message`) when the container ends. The kubelet keeps at most
//! [`TERMINATION_MESSAGE_LIMIT`] bytes of it and says nothing when it cuts, so a message of that
//! length or more is refused as "outputs exceed 4 KiB" instead of being parsed truncated. In effect
//! all of a step's outputs (names, `=`, newlines included) must fit in 4095 bytes.
//!
//! Rules of [`parse`], applied when an attempt succeeds:
//! - lines are separated by `\n`; one trailing `\r` per line is stripped; empty lines are ignored;
//! - a line is `NAME=value`, split at the first `=`; a value is the rest of the line, byte for
//!   byte (quotes, `$`, `$(..)`, `;`, backslashes, non-ASCII are kept as written);
//! - a NAME must be declared in `steps[].outputs`; a value is at most [`MAX_VALUE_BYTES`] bytes
//!   and has no control character but tab (it becomes an environment variable or an argument of
//!   a dependant, and is stored in the run's status);
//! - the last write of a name wins; a declared output never written is `""`.
//!
//! The messages of [`OutputError`] do not name the step: the caller prefixes `step "S": `.

use std::collections::BTreeMap;

/// Env var naming the file a step writes its outputs to.
pub const OUTPUTS_ENV: &str = "KUBEDAG_OUTPUTS";
/// The file itself: Kubernetes' default `terminationMessagePath`.
pub const OUTPUTS_PATH: &str = "/dev/termination-log";
/// Bytes of a termination message the kubelet keeps; a message this long may have been cut.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;
/// Largest value of one output, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Largest size of all of a step's outputs as stored in the run's status (JSON-encoded names
/// and values, so `"` and `\` count twice). With it, 200 steps at the limit take about 0.85 MiB
/// of status, leaving 0.65 MiB of etcd's 1.5 MiB object limit for the rest.
pub const MAX_STORED_BYTES: usize = 4096;
/// Longest line quoted back in an error message, in characters.
const QUOTED_LINE_CHARS: usize = 80;

/// Why a step's outputs file was refused. The step fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// The message reached the kubelet's cut-off, so it may be truncated.
    #[error(
        "outputs exceed 4 KiB: ${OUTPUTS_ENV} holds {bytes} bytes or more; all outputs together must stay under {TERMINATION_MESSAGE_LIMIT} bytes"
    )]
    TooLarge { bytes: usize },
    /// The outputs take more than [`MAX_STORED_BYTES`] once JSON-encoded in the status.
    #[error(
        "outputs exceed 4 KiB as stored in the run's status: {bytes} bytes JSON-encoded (quotes and backslashes count twice); the limit is {MAX_STORED_BYTES}"
    )]
    StoredTooLarge { bytes: usize },
    /// A non-empty line without `=`; `line` counts from 1.
    #[error("${OUTPUTS_ENV} line {line}: {text:?} is not NAME=value")]
    NotAssignment { line: usize, text: String },
    /// A name the step did not declare.
    #[error("output {name:?} is not declared in the step's outputs (declared: {declared})")]
    Undeclared { name: String, declared: String },
    /// A value longer than [`MAX_VALUE_BYTES`].
    #[error("output {name:?} is {bytes} bytes; the limit is {MAX_VALUE_BYTES} bytes")]
    ValueTooLong { name: String, bytes: usize },
    /// A value containing a control character other than tab (NUL cannot be carried by an env
    /// var or argument; the others break "one line of text" and inflate the status 6-fold as
    /// JSON `\u00XX` escapes).
    #[error("output {name:?} contains the control character {character:?}; a value is one line of text")]
    ControlCharacter { name: String, character: char },
}

/// Parses the termination message `text` of a successful attempt against the step's `declared`
/// output names. Returns every declared name mapped to its last written value (`""` if never
/// written). Errors name the offending output or line; see the module doc for the rules.
pub fn parse(text: &str, declared: &[String]) -> Result<BTreeMap<String, String>, OutputError> {
    if text.len() >= TERMINATION_MESSAGE_LIMIT {
        return Err(OutputError::TooLarge { bytes: text.len() });
    }
    let mut values = empty(declared);
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(OutputError::NotAssignment {
                line: index + 1,
                text: quote_prefix(line),
            });
        };
        let Some(slot) = values.get_mut(name) else {
            return Err(OutputError::Undeclared {
                name: name.to_string(),
                declared: declared_list(declared),
            });
        };
        if value.len() > MAX_VALUE_BYTES {
            return Err(OutputError::ValueTooLong {
                name: name.to_string(),
                bytes: value.len(),
            });
        }
        if let Some(character) = value
            .chars()
            .find(|&c| c.is_ascii_control() && c != '\t' && c != '\x7f')
        {
            return Err(OutputError::ControlCharacter {
                name: name.to_string(),
                character,
            });
        }
        *slot = value.to_string();
    }
    let stored = stored_bytes(&values);
    if stored > MAX_STORED_BYTES {
        return Err(OutputError::StoredTooLarge { bytes: stored });
    }
    Ok(values)
}

/// Bytes of `values` as `NAME=value` lines whose text is JSON-escaped: the file's size for plain
/// text, more where the status must escape (`"`, `\`).
fn stored_bytes(values: &BTreeMap<String, String>) -> usize {
    let escaped = |s: &str| serde_json::to_string(s).map_or(s.len(), |j| j.len() - 2);
    values.iter().map(|(k, v)| escaped(k) + escaped(v) + 2).sum()
}

/// The outputs a step that did not write (or did not run) exposes: every declared name -> `""`.
pub fn empty(declared: &[String]) -> BTreeMap<String, String> {
    declared.iter().map(|name| (name.clone(), String::new())).collect()
}

fn declared_list(declared: &[String]) -> String {
    if declared.is_empty() {
        "none".to_string()
    } else {
        declared.join(", ")
    }
}

fn quote_prefix(line: &str) -> String {
    let mut chars = line.chars();
    let head: String = chars.by_ref().take(QUOTED_LINE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

#[cfg(test)]
#[path = "outputs_tests.rs"]
mod tests;
