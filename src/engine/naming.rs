//! Deterministic names of the objects the operator creates. The same inputs always give the same
//! name, so a restarted operator finds (AlreadyExists) what it created before instead of creating twice.

use sha2::{Digest, Sha256};

/// Longest name usable as a label value (Jobs are referenced by the `job-name` pod label).
pub const MAX_NAME: usize = 63;
const HASH_LEN: usize = 6;

/// Name of the Job of one attempt (1-based) of one step of one run:
/// `<run>-<step>-<attempt>-<hash>` cut to 63 characters. The hash of the full (run, step, attempt)
/// keeps names unique when cutting shortens them and when `run-step` splits ambiguously
/// (run `a-b` step `c` vs run `a` step `b-c`).
pub fn job_name(run: &str, step: &str, attempt: u32) -> String {
    let digest = short_hash(&[run, step, &attempt.to_string()]);
    let readable = format!("{run}-{step}-{attempt}");
    join_within_limit(&readable, &digest)
}

/// Name of the Job of one attempt of one `forEach` instance (item `index`, 0-based) in fan-out
/// `round` (the run retry it belongs to): `<run>-<step>-<index>-<attempt>-<hash>` cut to 63
/// characters. The hash's inputs differ in number from [`job_name`]'s, so an instance never
/// takes the name of a plain step (`a` item 1 vs a step named `a-1`).
pub fn instance_job_name(run: &str, step: &str, index: u32, round: u32, attempt: u32) -> String {
    let digest = short_hash(&[run, step, &index.to_string(), &round.to_string(), &attempt.to_string()]);
    join_within_limit(&format!("{run}-{step}-{index}-{attempt}"), &digest)
}

/// Name of the child DagRun of one attempt of a `call` step (of one `forEach` instance, when
/// `index` is set): `<run>-<step>[-<index>]-<attempt>-<hash>` cut to 63 characters, hashed with a
/// marker so it never equals a Job name of the same inputs.
pub fn child_run_name(run: &str, step: &str, index: Option<u32>, round: u32, attempt: u32) -> String {
    let index_text = index.map(|i| i.to_string()).unwrap_or_default();
    let digest = short_hash(&[run, step, &index_text, &round.to_string(), &attempt.to_string(), "call"]);
    let readable = match index {
        Some(i) => format!("{run}-{step}-{i}-{attempt}"),
        None => format!("{run}-{step}-{attempt}"),
    };
    join_within_limit(&readable, &digest)
}

/// Name of the workspace PersistentVolumeClaim of one run: `<run>-ws-<hash>` cut to 63
/// characters, the hash covering the run's name and UID, so a run re-created under the same name
/// never meets the claim of its predecessor (still awaiting garbage collection).
pub fn workspace_claim(run: &str, run_uid: &str) -> String {
    let digest = short_hash(&[run, run_uid, "workspace"]);
    join_within_limit(&format!("{run}-ws"), &digest)
}

/// Name of the duplicate-parameter claim for (Dag, paramHash) in a namespace.
pub fn claim_name(dag: &str, param_hash: &str) -> String {
    let digest = short_hash(&[dag, param_hash]);
    let short: String = param_hash.chars().take(16).collect();
    join_within_limit(&format!("kubedag-dup-{dag}-{short}"), &digest)
}

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())[..HASH_LEN].to_string()
}

/// `<prefix>-<suffix>`, with `prefix` cut so the whole fits in [`MAX_NAME`] and stays a valid
/// DNS-1123 label (no trailing `-` or `.` before the suffix).
fn join_within_limit(prefix: &str, suffix: &str) -> String {
    let room = MAX_NAME - suffix.len() - 1;
    let mut cut: String = prefix.chars().take(room).collect();
    while cut.ends_with(['-', '.']) {
        cut.pop();
    }
    format!("{cut}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_names_stay_readable() {
        let name = job_name("process-image-x7k2q", "fetch", 1);
        assert!(name.starts_with("process-image-x7k2q-fetch-1-"), "{name}");
        assert_eq!(name, job_name("process-image-x7k2q", "fetch", 1));
    }

    #[test]
    fn ambiguous_splits_get_different_names() {
        assert_ne!(job_name("a-b", "c", 1), job_name("a", "b-c", 1));
    }

    #[test]
    fn workspace_claims_differ_per_run_and_per_uid() {
        let name = workspace_claim("astro-pipeline-x7k2q", "uid-1");
        assert!(name.starts_with("astro-pipeline-x7k2q-ws-"), "{name}");
        assert_eq!(name, workspace_claim("astro-pipeline-x7k2q", "uid-1"));
        assert_ne!(name, workspace_claim("astro-pipeline-x7k2q", "uid-2"));
        assert_ne!(name, workspace_claim("astro-pipeline-x7k2r", "uid-1"));
        assert!(workspace_claim(&"r".repeat(63), "u").len() <= MAX_NAME);
    }

    #[test]
    fn instances_and_children_never_take_a_plain_steps_name() {
        assert_ne!(instance_job_name("r", "a", 1, 0, 1), job_name("r", "a-1", 1));
        assert_ne!(
            instance_job_name("r", "a", 1, 0, 1),
            instance_job_name("r", "a", 1, 1, 1)
        );
        assert_ne!(child_run_name("r", "a", None, 0, 1), job_name("r", "a", 1));
        assert_ne!(
            child_run_name("r", "a", Some(0), 0, 1),
            child_run_name("r", "a", None, 0, 1)
        );
        assert!(child_run_name(&"r".repeat(63), &"s".repeat(63), Some(9999), 0, 3).len() <= MAX_NAME);
    }

    proptest! {
        #[test]
        fn instance_names_are_distinct_per_index_and_attempt(
            run in "[a-z0-9]{1,40}",
            step in "[a-z0-9]{1,40}",
            index in 0u32..10_000,
            attempt in 1u32..100,
        ) {
            let name = instance_job_name(&run, &step, index, 0, attempt);
            prop_assert!(name.len() <= MAX_NAME);
            prop_assert_ne!(&name, &instance_job_name(&run, &step, index + 1, 0, attempt));
            prop_assert_ne!(&name, &instance_job_name(&run, &step, index, 0, attempt + 1));
        }

        #[test]
        fn job_names_are_valid_labels_and_distinct_per_attempt(
            run in "[a-z0-9]([-a-z0-9.]{0,60}[a-z0-9])?",
            step in "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
            attempt in 1u32..1000,
        ) {
            let name = job_name(&run, &step, attempt);
            prop_assert!(name.len() <= MAX_NAME);
            let re_ok = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && name.chars().next().unwrap().is_ascii_alphanumeric()
                && name.chars().last().unwrap().is_ascii_alphanumeric();
            prop_assert!(re_ok, "{}", name);
            prop_assert_ne!(name, job_name(&run, &step, attempt + 1));
        }
    }
}
