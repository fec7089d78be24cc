//! Leader election over a `coordination.k8s.io/v1` Lease (kube-lease-manager), so that of several
//! replicas exactly one reconciles. A replica that loses the lease exits at once; its restart
//! waits for the lease again. Standby replicas stay live (healthz) but not ready (readyz), so
//! Services route webhook calls only to the leader.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

/// Lease name shared by all replicas.
pub const LEASE_NAME: &str = "kubedag-leader";
const LEASE_SECONDS: u64 = 15;
const GRACE_SECONDS: u64 = 5;

/// Blocks until this replica holds the lease; returns a receiver that turns false if it is lost.
pub async fn acquire(
    client: Client,
    namespace: &str,
    identity: &str,
) -> Result<watch::Receiver<bool>, kube_lease_manager::LeaseManagerError> {
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .build()
        .await?;
    let (mut leading, _task) = manager.watch().await;
    tracing::info!(%identity, %namespace, "waiting for leadership");
    while !*leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            break;
        }
    }
    tracing::info!(%identity, "became the leader");
    Ok(leading)
}

/// Ends the process when leadership is lost, so two replicas never act at once.
pub async fn exit_on_loss(mut leading: watch::Receiver<bool>) {
    loop {
        if leading.changed().await.is_err() || !*leading.borrow() {
            tracing::error!("lost leadership; exiting so a restart can wait for the lease again");
            std::process::exit(1);
        }
    }
}
