//! Remembers the resourceVersion of each status write until the DagRun cache has caught up with it.
//!
//! A Job event can trigger a reconcile of its run before the watch delivered the run's own last
//! status write. Planning from that stale copy repeats work the API server already refuses (a
//! Job create answered AlreadyExists, a status write answered Conflict) and delays the run. The
//! reconciler skips such a copy instead: the write's own watch event reconciles the run again.
//!
//! This is an optimisation only (invariant 1 still holds without it). resourceVersions are compared
//! as numbers, which holds for etcd-backed API servers; a version that is not a number disables
//! the skip for that run.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct OwnWrites {
    /// Run UID -> resourceVersion our last status write produced.
    written: Mutex<HashMap<String, u64>>,
}

impl OwnWrites {
    /// Records the version our write produced (`None` forgets the run, e.g. once it finished).
    pub fn record(&self, uid: &str, resource_version: Option<&str>) {
        let mut written = self.written.lock().expect("own-writes lock");
        match resource_version.and_then(|rv| rv.parse().ok()) {
            Some(rv) => written.insert(uid.to_string(), rv),
            None => written.remove(uid),
        };
    }

    /// True when the cached copy (at `cached_version`) predates our last write to the run.
    /// Forgets the run once the cache has caught up.
    pub fn is_stale(&self, uid: &str, cached_version: Option<&str>) -> bool {
        let mut written = self.written.lock().expect("own-writes lock");
        let Some(&ours) = written.get(uid) else {
            return false;
        };
        match cached_version.and_then(|rv| rv.parse::<u64>().ok()) {
            Some(cached) if cached < ours => true,
            _ => {
                written.remove(uid);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_older_than_our_write_is_stale_until_the_cache_catches_up() {
        let writes = OwnWrites::default();
        assert!(!writes.is_stale("u", Some("5")), "nothing written yet");
        writes.record("u", Some("10"));
        assert!(writes.is_stale("u", Some("9")));
        assert!(!writes.is_stale("u", Some("10")));
        assert!(!writes.is_stale("u", Some("9")), "forgotten once caught up");
    }

    #[test]
    fn newer_copies_and_unparsable_versions_are_never_stale() {
        let writes = OwnWrites::default();
        writes.record("u", Some("10"));
        assert!(!writes.is_stale("u", Some("11")));
        writes.record("v", Some("10"));
        assert!(!writes.is_stale("v", Some("not-a-number")));
        writes.record("w", Some("opaque"));
        assert!(!writes.is_stale("w", Some("1")));
        writes.record("x", Some("10"));
        writes.record("x", None);
        assert!(!writes.is_stale("x", Some("1")));
    }
}
