//! Where a ledger lives: [`FileLedger`] (a local file, for `kubectl dag watch`) or
//! [`ConfigMapLedger`] (the trigger's [`SHARDS`](super::ledger::SHARDS) ConfigMaps, for the
//! in-cluster watcher). Both record one entry per submission before the next one is made.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;

use super::ledger::{Entry, Ledger, SHARDS};

/// A ledger that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("ledger ConfigMap {name}: {source}")]
    ConfigMap { name: String, source: kube::Error },
    #[error("ledger ConfigMap {0}: still conflicting after retries")]
    Conflicts(String),
}

/// Persistence of a [`Ledger`].
pub trait LedgerStore: Send {
    /// Everything recorded so far.
    fn load(&mut self) -> impl Future<Output = Result<Ledger, StoreError>> + Send;
    /// Records one submission (durably, before returning).
    fn record(&mut self, key: &str, entry: &Entry) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Forgets `dropped` keys (see `Ledger::trim`); `ledger` is the state after trimming.
    fn forget(&mut self, ledger: &Ledger, dropped: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A ledger in a local file: one line `KEY AT RUN PATH` per submission, appended and synced.
pub struct FileLedger {
    pub path: PathBuf,
}

impl FileLedger {
    fn error(&self, source: std::io::Error) -> StoreError {
        StoreError::File {
            path: self.path.display().to_string(),
            source,
        }
    }
}

impl LedgerStore for FileLedger {
    async fn load(&mut self) -> Result<Ledger, StoreError> {
        let mut ledger = Ledger::default();
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                ledger.merge_data(text.lines().filter_map(|line| line.split_once(' ')));
                Ok(ledger)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ledger),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn record(&mut self, key: &str, entry: &Entry) -> Result<(), StoreError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        writeln!(file, "{key} {}", entry.encode()).map_err(|e| self.error(e))?;
        file.sync_data().map_err(|e| self.error(e))
    }

    async fn forget(&mut self, ledger: &Ledger, dropped: &[String]) -> Result<(), StoreError> {
        if dropped.is_empty() {
            return Ok(());
        }
        let text: String = (0..SHARDS)
            .flat_map(|shard| ledger.shard_data(shard))
            .map(|(k, v)| format!("{k} {v}\n"))
            .collect();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }
}

/// A ledger in ConfigMaps `NAME-0` .. `NAME-15` (made by the operator with the trigger), each
/// updated with its resourceVersion as precondition, so concurrent writers lose nothing.
pub struct ConfigMapLedger {
    pub api: Api<ConfigMap>,
    /// Name prefix of the shards (see `controller::trigger` for the naming).
    pub prefix: String,
}

/// Attempts of one read-modify-write against conflicting writers.
const CONFLICT_RETRIES: usize = 10;

impl ConfigMapLedger {
    /// The name of shard `i`.
    pub fn shard_name(prefix: &str, i: usize) -> String {
        format!("{prefix}-{i}")
    }

    /// Applies `change` to shard `shard`'s data and writes it back, retrying on conflicts.
    async fn update(
        &self,
        shard: usize,
        change: impl Fn(&mut std::collections::BTreeMap<String, String>),
    ) -> Result<(), StoreError> {
        let name = Self::shard_name(&self.prefix, shard);
        let error = |source| StoreError::ConfigMap {
            name: name.clone(),
            source,
        };
        for _ in 0..CONFLICT_RETRIES {
            let mut cm = self.api.get(&name).await.map_err(error)?;
            change(cm.data.get_or_insert_with(Default::default));
            match self.api.replace(&name, &PostParams::default(), &cm).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(error(e)),
            }
        }
        Err(StoreError::Conflicts(name))
    }
}

impl LedgerStore for ConfigMapLedger {
    async fn load(&mut self) -> Result<Ledger, StoreError> {
        let mut ledger = Ledger::default();
        for shard in 0..SHARDS {
            let name = Self::shard_name(&self.prefix, shard);
            let cm = self
                .api
                .get(&name)
                .await
                .map_err(|source| StoreError::ConfigMap { name, source })?;
            let data = cm.data.unwrap_or_default();
            ledger.merge_data(data.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Ok(ledger)
    }

    async fn record(&mut self, key: &str, entry: &Entry) -> Result<(), StoreError> {
        let value = entry.encode();
        self.update(Ledger::shard_of(key), |data| {
            data.entry(key.to_string()).or_insert_with(|| value.clone());
        })
        .await
    }

    async fn forget(&mut self, _ledger: &Ledger, dropped: &[String]) -> Result<(), StoreError> {
        for shard in 0..SHARDS {
            let keys: Vec<&String> = dropped.iter().filter(|k| Ledger::shard_of(k) == shard).collect();
            if !keys.is_empty() {
                self.update(shard, |data| keys.iter().for_each(|k| drop(data.remove(*k))))
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_ledger_survives_reopening_and_trimming() {
        let path = std::env::temp_dir().join(format!("kubedag-ledger-{}", uuid::Uuid::new_v4()));
        let mut store = FileLedger { path: path.clone() };
        assert!(store.load().await.unwrap().is_empty());
        let entry = |p: &str| Entry {
            at: 5,
            run: "t-1".into(),
            path: p.into(),
        };
        store.record("aa", &entry("x y.fits")).await.unwrap();
        store.record("bb", &entry("z.fits")).await.unwrap();
        let mut reopened = FileLedger { path: path.clone() };
        let mut ledger = reopened.load().await.unwrap();
        assert_eq!(ledger.len(), 2);
        let dropped = ledger.trim(&["z.fits"].into(), 1_000_000);
        reopened.forget(&ledger, &dropped).await.unwrap();
        let after = FileLedger { path: path.clone() }.load().await.unwrap();
        assert!(after.contains("bb") && !after.contains("aa"));
        std::fs::remove_file(path).unwrap();
    }
}
