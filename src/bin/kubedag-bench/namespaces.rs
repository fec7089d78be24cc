//! The run's namespaces: created labelled `kubedag.io/bench=<run id>`, deleted with a bounded,
//! logged wait (what is still terminating is left to the namespace controller).

use std::time::Duration;

use kube::Client;
use kubedag::testkit::cluster;

use crate::Res;
use crate::clock::log;
use crate::config::Config;

/// The label every namespace of the benchmark carries, valued with the run id.
const BENCH_LABEL: &str = "kubedag.io/bench";

/// Creates namespace `name` of this run, ready for pods.
pub async fn create(client: &Client, cfg: &Config, name: &str) -> Res<()> {
    cluster::create_namespace(client, name, &[(BENCH_LABEL, &cfg.run_id)]).await?;
    Ok(())
}

/// Deletes the namespaces and waits (at most `wait`) until they are gone.
pub async fn delete(client: &Client, names: &[String], wait: Duration) {
    let left = cluster::delete_namespaces(client, names, wait).await;
    if left.is_empty() {
        log(format!("deleted namespaces {names:?}"));
    } else {
        log(format!(
            "namespaces still terminating after {wait:?}: {left:?} (left to the namespace controller)"
        ));
    }
}
