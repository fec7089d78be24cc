//! What the watcher loop lists: a directory ([`ScanSpec`]) or a bucket ([`Bucket`]), behind one
//! trait so the loop, the ledger and the settle rule are the same for both.

use std::future::Future;
use std::path::PathBuf;

use super::Found;
use super::bucket::Bucket;
use super::scan::ScanSpec;

/// A source of inputs.
pub trait Source: Send + Sync {
    /// Every input present now. Errors are `Reason: message`, the reason a condition reason
    /// (`VolumeNotMountable`, `BucketUnreachable`, `NoSuchBucket`, ...).
    fn list(&self) -> impl Future<Output = Result<Vec<Found>, String>> + Send;
    /// The directory to watch with inotify and whether recursively; None: no events (re-scans
    /// only).
    fn events_dir(&self) -> Option<(PathBuf, bool)> {
        None
    }
}

impl Source for ScanSpec {
    async fn list(&self) -> Result<Vec<Found>, String> {
        self.scan().map_err(|e| format!("VolumeNotMountable: {e}"))
    }

    fn events_dir(&self) -> Option<(PathBuf, bool)> {
        Some((self.dir(), self.recursive))
    }
}

impl Source for Bucket {
    async fn list(&self) -> Result<Vec<Found>, String> {
        Bucket::list(self).await.map_err(|e| format!("{}: {e}", e.reason()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_directory_names_its_cause() {
        let spec = ScanSpec {
            root: std::env::temp_dir().join(format!("kubedag-absent-{}", uuid::Uuid::new_v4())),
            path: "in".into(),
            pattern: None,
            recursive: true,
        };
        let err = spec.list().await.unwrap_err();
        assert!(err.starts_with("VolumeNotMountable: cannot read directory"), "{err}");
        assert_eq!(spec.events_dir().map(|(_, r)| r), Some(true));
    }
}
