//! The ledger: which inputs a trigger has submitted. Pure data; [`super::store`] persists it.
//!
//! Keyed by the first 32 hex characters (128 bits) of the SHA-256 of an input's identity, each
//! entry says when the input was submitted, its run and its path (for trimming and for people).
//!
//! Growth and trimming: one entry (about 100 bytes) per input ever submitted. At a complete
//! scan, entries whose path the source no longer holds and that are older than
//! [`TRIM_GRACE_SECONDS`] are dropped: a deleted file cannot be submitted again, and one that
//! reappears later is new input. So the ledger is bounded by the inputs present plus an hour's
//! deletions. Stored in the cluster it is split into [`SHARDS`] ConfigMaps by the key's first hex
//! digit (about 150,000 entries before any reaches the 1 MiB object limit).

use std::collections::{BTreeMap, HashSet};

use super::Found;
use crate::engine::trigger::identity_hash;

/// ConfigMaps a cluster ledger is split into.
pub const SHARDS: usize = 16;

/// An entry absent from a complete scan is dropped once this old (seconds).
pub const TRIM_GRACE_SECONDS: i64 = 3600;

/// The identity of an input: object key + etag for objects, path + size + mtime for files.
pub fn identity(found: &Found) -> String {
    match &found.etag {
        Some(etag) => format!("object\0{}\0{}", found.path, etag),
        None => format!("file\0{}\0{}\0{}", found.path, found.size, found.version),
    }
}

/// The full hex hash of the identity (run names use it) and its 32-character ledger key.
pub fn keys(found: &Found) -> (String, String) {
    let hash = identity_hash(&identity(found));
    let key = hash[..32].to_string();
    (hash, key)
}

/// One submitted input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Unix seconds of the submission.
    pub at: i64,
    /// The run created for it.
    pub run: String,
    /// The input's path (or object key).
    pub path: String,
}

impl Entry {
    /// `AT RUN PATH` (the path last: it may hold spaces).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.at, self.run, self.path)
    }

    /// The inverse of [`Entry::encode`]; None for a malformed value.
    pub fn decode(value: &str) -> Option<Entry> {
        let mut parts = value.splitn(3, ' ');
        let at = parts.next()?.parse().ok()?;
        let run = parts.next()?.to_string();
        let path = parts.next()?.to_string();
        Some(Entry { at, run, path })
    }
}

/// The set of submitted inputs, by ledger key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    entries: BTreeMap<String, Entry>,
}

impl Ledger {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every recorded key.
    pub fn recorded_keys(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Records `entry` under `key`; false when the key was already there (the entry is kept).
    pub fn record(&mut self, key: &str, entry: Entry) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        self.entries.insert(key.to_string(), entry);
        true
    }

    /// The inputs of `found` not yet submitted, in order, each once.
    pub fn unsubmitted<'a>(&self, found: &'a [Found]) -> Vec<&'a Found> {
        let mut seen = HashSet::new();
        found
            .iter()
            .filter(|f| {
                let (_, key) = keys(f);
                !self.contains(&key) && seen.insert(key)
            })
            .collect()
    }

    /// After a complete scan that saw `present` paths: drops entries of paths not present that
    /// are older than [`TRIM_GRACE_SECONDS`] at `now` (unix seconds). Returns the dropped keys.
    pub fn trim(&mut self, present: &HashSet<&str>, now: i64) -> Vec<String> {
        let dropped: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| !present.contains(e.path.as_str()) && e.at + TRIM_GRACE_SECONDS < now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &dropped {
            self.entries.remove(key);
        }
        dropped
    }

    /// The shard of a ledger key: its first hex digit, modulo [`SHARDS`].
    pub fn shard_of(key: &str) -> usize {
        key.chars().next().and_then(|c| c.to_digit(16)).unwrap_or(0) as usize % SHARDS
    }

    /// The entries of shard `shard` as ConfigMap data (key -> encoded entry).
    pub fn shard_data(&self, shard: usize) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .filter(|(k, _)| Self::shard_of(k) == shard)
            .map(|(k, e)| (k.clone(), e.encode()))
            .collect()
    }

    /// Adds the entries of ConfigMap data (or file lines split into key and value); malformed
    /// values are skipped. Returns how many were added.
    pub fn merge_data<'a>(&mut self, data: impl IntoIterator<Item = (&'a str, &'a str)>) -> usize {
        data.into_iter()
            .filter_map(|(k, v)| Some((k, Entry::decode(v)?)))
            .filter(|(k, e)| self.record(k, e.clone()))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(path: &str, size: u64, mtime: &str) -> Found {
        Found::new(path, size, mtime.to_string(), None)
    }

    fn entry(path: &str, at: i64) -> Entry {
        Entry {
            at,
            run: "t-abc".into(),
            path: path.into(),
        }
    }

    #[test]
    fn a_changed_file_is_new_input_and_an_object_is_keyed_by_etag() {
        let a = file("in/a.fits", 10, "2026-01-01T00:00:00Z");
        let grown = file("in/a.fits", 11, "2026-01-01T00:00:00Z");
        let touched = file("in/a.fits", 10, "2026-01-01T00:00:01Z");
        assert_ne!(keys(&a), keys(&grown));
        assert_ne!(keys(&a), keys(&touched));
        let o1 = Found::new("in/a.fits", 10, "e1".into(), Some("e1".into()));
        let o2 = Found::new("in/a.fits", 99, "e1".into(), Some("e1".into()));
        assert_eq!(keys(&o1), keys(&o2), "an object is its key and etag");
        assert_ne!(keys(&o1), keys(&a));
    }

    #[test]
    fn entries_round_trip_with_spaces_in_paths() {
        let e = entry("night 1/m 31.fits", 1_800_000_000);
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::decode("x y"), None);
    }

    #[test]
    fn trim_drops_only_old_entries_of_files_gone() {
        let mut ledger = Ledger::default();
        ledger.record("a", entry("gone-old", 0));
        ledger.record("b", entry("gone-new", 10_000));
        ledger.record("c", entry("here", 0));
        let dropped = ledger.trim(&["here"].into(), 10_000 + 60);
        assert_eq!(dropped, vec!["a".to_string()]);
        assert!(ledger.contains("b") && ledger.contains("c"));
    }

    proptest! {
        /// Submitting in any interleaving of scans, restarts (ledger reloaded from its shards)
        /// and re-scans records each distinct input exactly once.
        #[test]
        fn each_input_is_submitted_once(
            files in proptest::collection::vec(("[a-c]{1,2}", 0u64..3, 0u8..2), 1..30),
            restarts in proptest::collection::vec(any::<bool>(), 1..10),
        ) {
            let found: Vec<Found> = files
                .iter()
                .map(|(p, size, m)| file(p, *size, &format!("2026-01-01T00:00:0{m}Z")))
                .collect();
            let mut ledger = Ledger::default();
            let mut submitted = Vec::new();
            for (i, restart) in restarts.iter().enumerate() {
                if *restart {
                    let mut reloaded = Ledger::default();
                    for shard in 0..SHARDS {
                        let data = ledger.shard_data(shard);
                        reloaded.merge_data(data.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    }
                    prop_assert_eq!(&reloaded, &ledger);
                    ledger = reloaded;
                }
                let scan = &found[..found.len().min(i * 4 + 4)];
                for f in ledger.unsubmitted(scan) {
                    let (_, key) = keys(f);
                    prop_assert!(ledger.record(&key, entry(&f.path, 0)));
                    submitted.push(key);
                }
            }
            let distinct: HashSet<_> = submitted.iter().collect();
            prop_assert_eq!(distinct.len(), submitted.len());
        }
    }
}
