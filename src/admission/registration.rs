//! Keeps the ValidatingWebhookConfiguration current (rules, client config, caBundle) by
//! server-side apply, so repeated applies by any replica are idempotent.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::api::GROUP;

/// Path of the validating endpoint.
pub const PATH: &str = "/validate";
const FIELD_MANAGER: &str = "kubedag-operator";

/// Where the API server reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `https://host:port` (the operator runs outside the cluster, e.g. in tests and `make demo`).
    Url(String),
    /// A Service in front of the operator pods.
    Service { namespace: String, name: String, port: i32 },
}

/// What to register.
#[derive(Clone, Debug)]
pub struct Registration {
    pub name: String,
    pub endpoint: Endpoint,
    /// `Ignore` (default) or `Fail`; see the README for why `Ignore`.
    pub failure_policy: String,
    /// Restrict the webhook to one namespace (a namespaced operator); None = all namespaces.
    pub namespace: Option<String>,
}

/// The configuration object for `registration` trusting `ca_bundle` (None: leave it to an injector).
pub fn configuration(registration: &Registration, ca_bundle: Option<&str>) -> ValidatingWebhookConfiguration {
    let client_config = match &registration.endpoint {
        Endpoint::Url(base) => WebhookClientConfig {
            url: Some(format!("{base}{PATH}")),
            ..Default::default()
        },
        Endpoint::Service { namespace, name, port } => WebhookClientConfig {
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(PATH.into()),
                port: Some(*port),
            }),
            ..Default::default()
        },
    };
    let client_config = WebhookClientConfig {
        ca_bundle: ca_bundle.map(|pem| ByteString(pem.as_bytes().to_vec())),
        ..client_config
    };
    let rule = |resource: &str, operations: &[&str]| RuleWithOperations {
        api_groups: Some(vec![GROUP.into()]),
        api_versions: Some(vec!["v1alpha1".into()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        resources: Some(vec![resource.into()]),
        scope: Some("Namespaced".into()),
    };
    let namespace_selector = registration.namespace.as_ref().map(|ns| LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            ns.clone(),
        )])),
        ..Default::default()
    });
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(registration.name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "validate.kubedag.io".into(),
            admission_review_versions: vec!["v1".into()],
            client_config,
            failure_policy: Some(registration.failure_policy.clone()),
            match_policy: Some("Equivalent".into()),
            namespace_selector,
            rules: Some(vec![
                rule("dags", &["CREATE", "UPDATE"]),
                rule("dagruns", &["CREATE", "UPDATE"]),
            ]),
            side_effects: "None".into(),
            timeout_seconds: Some(5),
            ..Default::default()
        }]),
    }
}

/// Applies the configuration (server-side apply, forced: the operator owns these fields).
pub async fn apply(client: Client, registration: &Registration, ca_bundle: Option<&str>) -> Result<(), kube::Error> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let mut object = configuration(registration, ca_bundle);
    object.metadata.managed_fields = None;
    let value = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": object.metadata,
        "webhooks": object.webhooks,
    });
    api.patch(
        &registration.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await?;
    Ok(())
}
