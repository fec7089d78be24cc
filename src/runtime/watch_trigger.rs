//! `kubedag watch-trigger`: the in-cluster watcher of one directory or bucket `DagTrigger`, run
//! by the Deployment the operator makes for it (`controller::trigger::objects`). It loads its
//! trigger, lists the mounted volume (or the bucket, with credentials from its environment),
//! submits each settled new input once (ledger in the trigger's ConfigMaps) and reports to its
//! stats ConfigMap ([`crate::watch::stats`]). Stops on SIGTERM or SIGINT.
//!
//! A trigger it cannot run (a bad pattern, missing credentials) is reported as its last error
//! and the process waits for SIGTERM: the operator shows the cause, and a spec change rolls the
//! pod.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client, ResourceExt};

use crate::api::{DagTrigger, DirectorySource};
use crate::watch::bucket::{self, Bucket, Credentials, SecretRef};
use crate::watch::scan::ScanSpec;
use crate::watch::stats::ConfigMapReport;
use crate::watch::store::ConfigMapLedger;
use crate::watch::submit::RunTemplate;
use crate::watch::watcher::{self, Report, Stats, WatchConfig};
use crate::watch::{ledger_prefix, stats_name};

/// Environment variables of the bucket credentials (fed from the Secret by `secretKeyRef`).
pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";
pub const REGION_ENV: &str = "AWS_REGION";

/// Where the watcher Deployment mounts a directory trigger's volume.
pub const MOUNT_PATH: &str = "/watch";

/// What `kubedag watch-trigger` is told.
#[derive(Clone, Debug)]
pub struct WatchTriggerOptions {
    pub namespace: String,
    pub trigger: String,
    /// The volume's mount point.
    pub root: PathBuf,
    /// Seconds between full re-scans.
    pub rescan_seconds: u32,
}

/// A trigger that cannot run or a cluster that cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum WatchTriggerError {
    #[error("DagTrigger {namespace}/{name}: {source}")]
    Trigger {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error("stats ConfigMap {name}: {source}")]
    Stats { name: String, source: kube::Error },
    #[error(transparent)]
    Ledger(#[from] crate::watch::store::StoreError),
}

/// Runs the watcher until SIGTERM/SIGINT.
pub async fn run(client: Client, options: WatchTriggerOptions) -> Result<(), WatchTriggerError> {
    let trigger = Api::<DagTrigger>::namespaced(client.clone(), &options.namespace)
        .get(&options.trigger)
        .await
        .map_err(|source| WatchTriggerError::Trigger {
            namespace: options.namespace.clone(),
            name: options.trigger.clone(),
            source,
        })?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &options.namespace);
    let name = stats_name(&options.trigger);
    let baseline = ConfigMapReport::load(&maps, &name)
        .await
        .map_err(|source| WatchTriggerError::Stats {
            name: name.clone(),
            source,
        })?;
    let mut reporter = ConfigMapReport {
        api: maps.clone(),
        name,
        baseline,
        generation: trigger.metadata.generation,
    };
    let template = RunTemplate {
        trigger: trigger.name_any(),
        dag: trigger.spec.dag_ref.name.clone(),
        params: trigger.spec.params.clone(),
        source_kind: trigger.spec.source_name().unwrap_or("none"),
    };
    let config = |settle_seconds| WatchConfig {
        settle_seconds,
        rescan: Duration::from_secs(u64::from(options.rescan_seconds.max(1))),
        template: template.clone(),
    };
    let ledger = ConfigMapLedger {
        api: maps,
        prefix: ledger_prefix(&options.trigger),
    };
    let runs = Api::namespaced(client, &options.namespace);
    tracing::info!(trigger = %options.trigger, namespace = %options.namespace, "watcher started");
    let outcome = match source_of(&trigger, &options) {
        Ok(Watched::Directory(scan, settle)) => {
            watcher::run(runs, &scan, config(settle), ledger, reporter, stopped()).await
        }
        Ok(Watched::Bucket(bucket)) => watcher::run(runs, &bucket, config(0), ledger, reporter, stopped()).await,
        Err(message) => {
            tracing::error!(%message, "the trigger cannot be watched");
            let stats = Stats {
                last_error: Some(message),
                ..Stats::default()
            };
            reporter.report(&stats).await;
            stopped().await;
            return Ok(());
        }
    };
    outcome?;
    tracing::info!("watcher stopped");
    Ok(())
}

/// The source a trigger names, ready to list.
enum Watched {
    Directory(ScanSpec, u32),
    Bucket(Bucket),
}

/// Errors: `Reason: message` naming the field.
fn source_of(trigger: &DagTrigger, options: &WatchTriggerOptions) -> Result<Watched, String> {
    if let Some(dir) = &trigger.spec.directory {
        return directory_source(dir, options).map(|scan| Watched::Directory(scan, dir.settle_seconds));
    }
    let Some(spec) = &trigger.spec.bucket else {
        return Err("InvalidSpec: the trigger has neither spec.directory nor spec.bucket".into());
    };
    let Some(secret) = &spec.credentials_secret else {
        return Err("CredentialsSecretMissing: spec.bucket.credentialsSecret is not set".into());
    };
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let credentials = match (env(ACCESS_KEY_ENV), env(SECRET_KEY_ENV)) {
        (Some(access_key_id), Some(secret_access_key)) => Credentials {
            access_key_id,
            secret_access_key,
        },
        _ => {
            return Err(format!(
                "CredentialsSecretMissing: Secret {secret:?} gave no {} and {} (keys {} and {})",
                ACCESS_KEY_ENV,
                SECRET_KEY_ENV,
                bucket::ACCESS_KEY_ID,
                bucket::SECRET_ACCESS_KEY
            ));
        }
    };
    let source = bucket::BucketSource {
        endpoint: spec.endpoint.clone(),
        bucket: spec.bucket.clone(),
        prefix: spec.prefix.clone(),
        pattern: spec.pattern.clone(),
        credentials_secret: SecretRef { name: secret.clone() },
        region: env(REGION_ENV),
    };
    Bucket::connect(&source, &credentials)
        .map(Watched::Bucket)
        .map_err(|e| format!("{}: {e}", e.reason()))
}

fn directory_source(dir: &DirectorySource, options: &WatchTriggerOptions) -> Result<ScanSpec, String> {
    let pattern =
        ScanSpec::parse_pattern(dir.pattern.as_deref()).map_err(|e| format!("InvalidSpec: spec.directory.{e}"))?;
    Ok(ScanSpec {
        root: options.root.clone(),
        path: dir.path.clone().unwrap_or_default(),
        pattern,
        recursive: dir.recursive,
    })
}

/// Resolves on SIGTERM (the kubelet stopping the pod) or SIGINT.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => drop(signal.recv().await),
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BucketSource, DagTriggerSpec};

    fn options() -> WatchTriggerOptions {
        WatchTriggerOptions {
            namespace: "ns".into(),
            trigger: "t".into(),
            root: MOUNT_PATH.into(),
            rescan_seconds: 30,
        }
    }

    #[test]
    fn a_trigger_that_cannot_be_watched_names_the_field() {
        let mut spec: DagTriggerSpec =
            serde_yaml::from_str("dagRef: {name: d}\ndirectory: {volume: {name: in, emptyDir: {}}, pattern: '['}\n")
                .unwrap();
        let err = source_of(&DagTrigger::new("t", spec.clone()), &options())
            .err()
            .unwrap();
        assert!(err.starts_with("InvalidSpec: spec.directory.pattern"), "{err}");
        spec.directory = None;
        spec.bucket = Some(BucketSource {
            endpoint: "http://s3:9000".into(),
            bucket: "b".into(),
            ..Default::default()
        });
        let err = source_of(&DagTrigger::new("t", spec), &options()).err().unwrap();
        assert!(err.contains("spec.bucket.credentialsSecret"), "{err}");
    }

    #[test]
    fn a_directory_trigger_scans_its_path_under_the_mount() {
        let spec: DagTriggerSpec = serde_yaml::from_str(
            "dagRef: {name: d}\ndirectory: {volume: {name: in, emptyDir: {}}, path: incoming, pattern: '*.fits'}\n",
        )
        .unwrap();
        let Ok(Watched::Directory(scan, settle)) = source_of(&DagTrigger::new("t", spec), &options()) else {
            panic!("a directory source");
        };
        assert_eq!((scan.dir(), settle), (PathBuf::from("/watch/incoming"), 10));
    }
}
