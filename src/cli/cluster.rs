//! The connection to the cluster: kubeconfig (honouring `KUBECONFIG` and `--context`), the namespace
//! (`-n`, else the context's), and reads that name the missing object.

use k8s_openapi::NamespaceResourceScope;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::api::DagRun;
use serde::de::DeserializeOwned;

use super::error::CliError;

pub struct Cluster {
    pub client: Client,
    pub namespace: String,
}

impl Cluster {
    /// `context`: a kubeconfig context to use instead of the current one.
    /// `namespace`: the namespace to use instead of the context's (or `default`).
    pub async fn connect(context: Option<&str>, namespace: Option<&str>) -> Result<Cluster, CliError> {
        let config = match context {
            Some(context) => {
                let options = KubeConfigOptions {
                    context: Some(context.to_string()),
                    ..Default::default()
                };
                Config::from_kubeconfig(&options)
                    .await
                    .map_err(|e| CliError::Config(format!("kubeconfig context {context:?}: {e}{}", known_contexts())))?
            }
            None => Config::infer().await.map_err(|e| CliError::Config(e.to_string()))?,
        };
        let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
        let client = Client::try_from(config).map_err(|e| CliError::Config(e.to_string()))?;
        Ok(Cluster { client, namespace })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Every DagRun in the namespace.
    pub async fn list_runs(&self) -> Result<Vec<DagRun>, CliError> {
        let list = self
            .api::<DagRun>()
            .list(&ListParams::default())
            .await
            .map_err(CliError::kube(format!(
                "cannot list DagRuns in namespace {:?}",
                self.namespace
            )))?;
        Ok(list.items)
    }

    /// Reads one object; a missing one is reported as `<kind> "<name>" not found in namespace "<ns>"`.
    pub async fn get<K>(&self, kind: &'static str, name: &str) -> Result<K, CliError>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let found = self
            .api::<K>()
            .get_opt(name)
            .await
            .map_err(CliError::kube(format!("cannot read {kind} {name:?}")))?;
        found.ok_or_else(|| CliError::NotFound {
            kind,
            name: name.to_string(),
            namespace: self.namespace.clone(),
        })
    }
}

/// ` (contexts: a, b)` from the kubeconfig, to help with a mistyped `--context`.
fn known_contexts() -> String {
    let Ok(config) = Kubeconfig::read() else {
        return String::new();
    };
    let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
    format!(" (contexts in the kubeconfig: {})", names.join(", "))
}
