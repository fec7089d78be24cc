//! Inputs of `DagTrigger` directory and bucket sources, and the exactly-once rule that turns each
//! new input into one run.
//!
//! - [`Found`] is what every source yields per input (a file, an object); [`bucket`] lists an
//!   S3-compatible bucket (`spec.bucket`).
//! - [`scan`] lists a directory; [`settle`] holds a file back until its size and mtime are stable;
//!   [`ledger`] is the pure record of inputs already submitted; [`store`] keeps that ledger in
//!   ConfigMaps (in the cluster) or in a local file (`kubectl dag watch`); [`submit`] creates the
//!   run of one input; [`watcher`] ties them into the loop (inotify plus periodic full re-scans)
//!   over a [`source::Source`]; [`stats`] is what the in-cluster watcher reports to the operator.
//!
//! Exactly once: an input's identity (path + size + mtime, or key + etag) hashes to its run's
//! name. A run is created only for an identity the ledger does not hold, and the identity is
//! recorded right after the create (AlreadyExists counts as created). So a restart, a re-scan or
//! the deletion of the run (TTL, history limit) never submits it again; a changed file has a new
//! identity and is new input; a failed run is not re-submitted (`kubectl dag retry` re-runs it).

pub mod bucket;
pub mod ledger;
pub mod scan;
pub mod settle;
pub mod source;
pub mod stats;
pub mod store;
pub mod submit;
pub mod watcher;

/// Name of the watcher's ServiceAccount, Role, RoleBinding and Deployment for trigger `trigger`.
pub fn watcher_name(trigger: &str) -> String {
    format!("{trigger}-watcher")
}

/// Name of the ConfigMap the watcher of `trigger` writes its [`stats::WatcherStats`] to.
pub fn stats_name(trigger: &str) -> String {
    format!("{trigger}-watcher-stats")
}

/// Name prefix of the ledger shards of `trigger` (see [`store::ConfigMapLedger`]).
pub fn ledger_prefix(trigger: &str) -> String {
    format!("{trigger}-ledger")
}

/// One input seen by a source: a file in a watched directory or an object in a bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Found {
    /// Path relative to the volume's root (a directory), or the object key (a bucket).
    pub path: String,
    /// Last path segment, e.g. `m31-0001.fits`.
    pub name: String,
    /// `path` without its last segment; "" at the root.
    pub dir: String,
    /// Bytes.
    pub size: u64,
    /// What changes when the content does: the mtime as RFC 3339 with nanoseconds (a file), or
    /// the etag (an object).
    pub version: String,
    /// The object's etag (bucket sources only).
    pub etag: Option<String>,
}

impl Found {
    /// A found input at `path` (segments separated by `/`), with its name and dir split off.
    pub fn new(path: &str, size: u64, version: String, etag: Option<String>) -> Found {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        Found {
            path: path.to_string(),
            name: name.to_string(),
            dir: dir.to_string(),
            size,
            version,
            etag,
        }
    }

    /// The variables of this input for `spec.params`: `file.path`, `file.name`, `file.dir`,
    /// `file.size`, and `file.etag` when it has one.
    pub fn variables(&self) -> crate::engine::trigger::Variables {
        let mut vars: crate::engine::trigger::Variables = [
            ("file.path", self.path.clone()),
            ("file.name", self.name.clone()),
            ("file.dir", self.dir.clone()),
            ("file.size", self.size.to_string()),
        ]
        .into();
        if let Some(etag) = &self.etag {
            vars.insert("file.etag", etag.clone());
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_splits_name_and_dir_and_gives_its_variables() {
        let f = Found::new("night/1/m31.fits", 7, "v".into(), None);
        assert_eq!((f.name.as_str(), f.dir.as_str()), ("m31.fits", "night/1"));
        let top = Found::new("m31.fits", 7, "v".into(), Some("\"e1\"".into()));
        assert_eq!(top.dir, "");
        let vars = top.variables();
        assert_eq!(vars["file.size"], "7");
        assert_eq!(vars["file.etag"], "\"e1\"");
        assert!(!f.variables().contains_key("file.etag"));
    }
}
