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
        Ok(self.list_runs_in(&RunScope::default()).await?.0)
    }

    /// The DagRun API of `scope`: this namespace, or all with `all_namespaces`.
    pub fn runs_api(&self, scope: &RunScope) -> Api<DagRun> {
        if scope.all_namespaces {
            Api::all(self.client.clone())
        } else {
            self.api()
        }
    }

    /// One page of the DagRuns in `scope`, and the token of the next page if there is one.
    pub async fn list_runs_in(&self, scope: &RunScope) -> Result<(Vec<DagRun>, Option<String>), CliError> {
        let where_ = if scope.all_namespaces {
            "all namespaces".to_string()
        } else {
            format!("namespace {:?}", self.namespace)
        };
        let list = self
            .runs_api(scope)
            .list(&scope.list_params())
            .await
            .map_err(CliError::kube(format!("cannot list DagRuns in {where_}")))?;
        let next = list.metadata.continue_.filter(|t| !t.is_empty());
        Ok((list.items, next))
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

/// Which DagRuns a list reads from the API server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunScope {
    pub all_namespaces: bool,
    /// A label selector, as `kubectl get -l` takes it.
    pub selector: Option<String>,
    /// A field selector, as `kubectl get --field-selector` takes it.
    pub fields: Option<String>,
    /// Page size (0: everything at once).
    pub limit: u32,
    /// The token of the page to read, from a previous page.
    pub continue_token: Option<String>,
}

impl RunScope {
    pub fn list_params(&self) -> ListParams {
        let mut params = ListParams::default();
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        if let Some(fields) = &self.fields {
            params = params.fields(fields);
        }
        if self.limit > 0 {
            params = params.limit(self.limit);
        }
        if let Some(token) = &self.continue_token {
            params = params.continue_token(token);
        }
        params
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
