//! Namespaces on the cluster under test: created with labels and ready for pods (their default
//! ServiceAccount exists), deleted with a bounded wait.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

use super::{Error, poll};

/// How long a new namespace may take to get its default ServiceAccount.
const SERVICE_ACCOUNT_WAIT: Duration = Duration::from_secs(60);

/// Creates namespace `name` with `labels` and waits until its default ServiceAccount exists
/// (pods cannot be created before; it appears a moment after the namespace). Errors: the create
/// fails (409 included), or no ServiceAccount after 60 s ([`Error::Timeout`]).
pub async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) -> Result<(), Error> {
    let mut object = Namespace::default();
    object.metadata.name = Some(name.to_string());
    object.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    );
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &object)
        .await?;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    poll(SERVICE_ACCOUNT_WAIT, Duration::from_millis(200), || async {
        sas.get_opt("default").await.ok().flatten()
    })
    .await
    .map(drop)
    .ok_or_else(|| Error::Timeout(format!("namespace {name}: no default ServiceAccount after 60 s")))
}

/// Deletes the namespaces (background propagation, errors ignored: a missing one is fine) and
/// waits up to `wait`, checking every 2 s, until they are gone. Returns those still there
/// (terminating) when the wait ended; with a zero `wait` that is every one the API still lists.
pub async fn delete_namespaces(client: &Client, names: &[String], wait: Duration) -> Vec<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let _ = api.delete(name, &DeleteParams::background()).await;
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut left = Vec::new();
        for name in names {
            if let Ok(Some(_)) = api.get_opt(name).await {
                left.push(name.clone());
            }
        }
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
