//! Input sources of `DagTrigger`: what the watchers find to turn into runs.
//!
//! - [`bucket`] lists an S3-compatible bucket (`spec.bucket`).
//!
//! Every source reports its inputs as [`Found`] values; the trigger's ledger keys them by
//! `(path, version)` so a changed input (new etag, new size/mtime) is new input.

pub mod bucket;

/// One input a watcher found: a file in a watched directory or an object in a bucket.
///
/// - `path`: the full path (a file's path inside the volume, an object's key), e.g. `incoming/a/m31.fits`.
/// - `name`: its last segment, e.g. `m31.fits`.
/// - `dir`: everything before the last `/`, e.g. `incoming/a` (empty at the top level).
/// - `size`: bytes.
/// - `version`: what changes when the content changes: the etag for objects (or the last-modified
///   time, RFC 3339, where the store gives no etag); size and mtime for files.
/// - `etag`: the object's etag without quotes (`None` for files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub name: String,
    pub dir: String,
    pub size: u64,
    pub version: String,
    pub etag: Option<String>,
}
