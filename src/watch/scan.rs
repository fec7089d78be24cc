//! Listing a watched directory: the regular files under `root/path` whose name matches the
//! pattern, as [`Found`] with paths relative to `root`.

use std::path::{Path, PathBuf};

use super::Found;

/// What to list.
#[derive(Clone, Debug)]
pub struct ScanSpec {
    /// The volume's mount point (paths are relative to it).
    pub root: PathBuf,
    /// Directory inside `root` ("" = root).
    pub path: String,
    /// Glob on the file name; None = every file.
    pub pattern: Option<glob::Pattern>,
    /// Also list subdirectories.
    pub recursive: bool,
}

/// A listing that failed: the directory is missing or unreadable.
#[derive(Debug, thiserror::Error)]
#[error("cannot read directory {dir}: {source}")]
pub struct ScanError {
    pub dir: String,
    pub source: std::io::Error,
}

impl ScanSpec {
    /// The directory watched.
    pub fn dir(&self) -> PathBuf {
        self.root.join(self.path.trim_matches('/'))
    }

    /// Parses `pattern` (a glob like `*.fits`). Errors name the field.
    pub fn parse_pattern(pattern: Option<&str>) -> Result<Option<glob::Pattern>, String> {
        pattern
            .filter(|p| !p.is_empty())
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("pattern {p:?}: {e}")))
            .transpose()
    }

    /// Every matching regular file, sorted by path. Files that vanish while listed are skipped;
    /// names starting with `.` (editors' and copy tools' temporary files) are ignored.
    pub fn scan(&self) -> Result<Vec<Found>, ScanError> {
        let mut out = Vec::new();
        self.scan_dir(&self.dir(), &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn scan_dir(&self, dir: &Path, out: &mut Vec<Found>) -> Result<(), ScanError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ScanError {
            dir: dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if self.recursive {
                    self.scan_dir(&entry.path(), out)?;
                }
                continue;
            }
            if !meta.is_file() || self.pattern.as_ref().is_some_and(|p| !p.matches(&name)) {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(&self.root).map(Path::to_path_buf) else {
                continue;
            };
            let version = meta
                .modified()
                .ok()
                .and_then(|t| jiff::Timestamp::try_from(t).ok())
                .map(|t| format!("{t:.9}"))
                .unwrap_or_default();
            out.push(Found::new(&relative.to_string_lossy(), meta.len(), version, None));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_matching_files_relative_to_the_root() {
        let root = std::env::temp_dir().join(format!("kubedag-scan-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("in/sub")).unwrap();
        for p in ["in/a.fits", "in/b.txt", "in/.c.fits", "in/sub/d.fits"] {
            std::fs::write(root.join(p), b"xyz").unwrap();
        }
        let mut spec = ScanSpec {
            root: root.clone(),
            path: "in".into(),
            pattern: ScanSpec::parse_pattern(Some("*.fits")).unwrap(),
            recursive: false,
        };
        let found = spec.scan().unwrap();
        assert_eq!(found.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["in/a.fits"]);
        assert_eq!((found[0].size, found[0].dir.as_str()), (3, "in"));
        assert!(found[0].version.ends_with('Z'));
        spec.recursive = true;
        assert_eq!(spec.scan().unwrap().len(), 2);
        spec.path = "missing".into();
        assert!(spec.scan().unwrap_err().to_string().contains("missing"));
        assert!(
            ScanSpec::parse_pattern(Some("["))
                .unwrap_err()
                .contains("pattern \"[\"")
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
