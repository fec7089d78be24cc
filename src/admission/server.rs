//! HTTPS server of the webhook (axum + rustls) and the request handler.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use axum_server::tls_rustls::RustlsConfig;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use crate::api::{Dag, DagRun, DagTrigger};

use super::certs::{self, Ca, CertError};
use super::registration::{self, PATH, Registration};
use super::{checks, watcher_runs};

/// How the webhook gets its certificate.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// A CA in Secret `namespace/name` (created if absent); serving certs issued for `dns_names`.
    SelfManaged {
        namespace: String,
        secret: String,
        dns_names: Vec<String>,
    },
    /// `tls.crt`/`tls.key` mounted in this directory; the caBundle is injected by their issuer.
    Mounted(std::path::PathBuf),
}

#[derive(Clone, Debug)]
pub struct WebhookOptions {
    pub addr: SocketAddr,
    pub certs: CertSource,
    /// None: serve only; the configuration is managed elsewhere (e.g. by Helm + cert-manager).
    pub registration: Option<Registration>,
}

/// What the handler reads: the controller's caches, and the client for cache misses.
#[derive(Clone)]
pub struct WebhookState {
    pub client: Client,
    pub dags: Store<Dag>,
    pub runs: Store<DagRun>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Cert(#[from] CertError),
    #[error("registering the webhook: {0}")]
    Register(#[from] kube::Error),
    #[error("TLS setup: {0}")]
    Io(#[from] std::io::Error),
}

/// Prepares certificates and registration, then serves until the process ends. Re-issues the
/// serving certificate before expiry (hot-swapped, no dropped connections) and re-applies the
/// registration periodically so a changed or deleted configuration heals.
pub async fn run(options: WebhookOptions, state: WebhookState) -> Result<(), WebhookError> {
    let (tls, ca) = initial_tls(&options, state.client.clone()).await?;
    if let Some(registration) = &options.registration {
        registration::apply(
            state.client.clone(),
            registration,
            ca.as_ref().map(|c| c.cert_pem.as_str()),
        )
        .await?;
    }
    tokio::spawn(maintain(options.clone(), state.client.clone(), tls.clone(), ca));
    let app = Router::new().route(PATH, post(handle)).with_state(state);
    tracing::info!(addr = %options.addr, "serving the admission webhook");
    axum_server::bind_rustls(options.addr, tls)
        .serve(app.into_make_service())
        .await?;
    Ok(())
}

async fn initial_tls(options: &WebhookOptions, client: Client) -> Result<(RustlsConfig, Option<Ca>), WebhookError> {
    match &options.certs {
        CertSource::SelfManaged {
            namespace,
            secret,
            dns_names,
        } => {
            let ca = certs::shared_ca(client, namespace, secret).await?;
            let cert = ca.issue(dns_names).map_err(CertError::from)?;
            let tls = RustlsConfig::from_pem(cert.cert_pem.into_bytes(), cert.key_pem.into_bytes()).await?;
            Ok((tls, Some(ca)))
        }
        CertSource::Mounted(dir) => {
            let (cert, key) = certs::read_mounted(dir)?;
            Ok((RustlsConfig::from_pem(cert.into_bytes(), key.into_bytes()).await?, None))
        }
    }
}

/// Background upkeep: certificate renewal or reload, and registration repair.
async fn maintain(options: WebhookOptions, client: Client, tls: RustlsConfig, ca: Option<Ca>) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    let mut not_after = 0i64;
    let mut mounted = None;
    let mut ticks = 0u64;
    loop {
        interval.tick().await;
        ticks += 1;
        let now = jiff::Timestamp::now().as_second();
        match (&options.certs, &ca) {
            (CertSource::SelfManaged { dns_names, .. }, Some(ca)) => {
                if not_after == 0 {
                    not_after = now + certs::SERVING_CERT_DAYS * 86_400;
                }
                let current = certs::ServingCert {
                    cert_pem: String::new(),
                    key_pem: String::new(),
                    not_after,
                };
                if certs::needs_renewal(&current, now) {
                    match ca.issue(dns_names) {
                        Ok(cert) => {
                            not_after = cert.not_after;
                            if let Err(err) = tls
                                .reload_from_pem(cert.cert_pem.into_bytes(), cert.key_pem.into_bytes())
                                .await
                            {
                                tracing::error!(%err, "could not load the renewed webhook certificate");
                            } else {
                                tracing::info!("renewed the webhook serving certificate");
                            }
                        }
                        Err(err) => {
                            tracing::error!(%err, "could not renew the webhook certificate")
                        }
                    }
                }
            }
            (CertSource::Mounted(dir), _) => match certs::read_mounted(dir) {
                Ok(pair) if mounted.as_ref() != Some(&pair) => {
                    if mounted.is_some() {
                        tracing::info!("reloading the mounted webhook certificate");
                    }
                    if tls
                        .reload_from_pem(pair.0.clone().into_bytes(), pair.1.clone().into_bytes())
                        .await
                        .is_ok()
                    {
                        mounted = Some(pair);
                    }
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "could not read the mounted webhook certificate"),
            },
            _ => {}
        }
        if let Some(registration) = options.registration.as_ref().filter(|_| ticks.is_multiple_of(5)) {
            let bundle = ca.as_ref().map(|c| c.cert_pem.as_str());
            if let Err(err) = registration::apply(client.clone(), registration, bundle).await {
                tracing::warn!(%err, "could not re-apply the webhook configuration");
            }
        }
    }
}

async fn handle(
    State(state): State<WebhookState>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(err) => return Json(AdmissionResponse::invalid(err.to_string()).into_review()),
    };
    let response = AdmissionResponse::from(&request);
    let verdict = decide(&state, &request).await;
    let response = match verdict {
        Ok(()) => response,
        Err(message) => {
            tracing::debug!(kind = %request.kind.kind, name = %request.name, %message, "admission denied");
            response.deny(message)
        }
    };
    Json(response.into_review())
}

async fn decide(state: &WebhookState, request: &AdmissionRequest<DynamicObject>) -> Result<(), String> {
    let namespace = request.namespace.clone().unwrap_or_default();
    match (request.kind.kind.as_str(), &request.operation) {
        ("Dag", Operation::Create | Operation::Update) => {
            let dag: Dag = typed(request.object.as_ref())?;
            checks::check_dag(&dag.spec)?;
            let lookup = |name: &str| {
                let found = state.dags.get(&ObjectRef::new(name).within(&namespace));
                found.map(|d| d.spec.clone())
            };
            checks::check_call_cycle(&request.name, &dag.spec, &lookup)
        }
        ("DagRun", Operation::Create) => {
            let run: DagRun = typed(request.object.as_ref())?;
            check_watcher(state, request, &namespace, &run).await?;
            let dag = find_dag(state, &namespace, &run.spec.dag_ref.name).await;
            let existing = state.runs.state();
            let same_namespace = existing
                .iter()
                .filter(|r| r.metadata.namespace.as_deref() == Some(&namespace));
            checks::check_run_create(&run, &namespace, dag.as_ref(), same_namespace.map(|r| r.as_ref()))
        }
        ("DagRun", Operation::Update) => {
            let old: DagRun = typed(request.old_object.as_ref())?;
            let new: DagRun = typed(request.object.as_ref())?;
            checks::check_run_update(&old, &new)
        }
        _ => Ok(()),
    }
}

fn typed<K: DeserializeOwned>(object: Option<&DynamicObject>) -> Result<K, String> {
    let object = object.ok_or("the admission request carries no object")?;
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| format!("invalid object: {e}"))
}

/// A run created by a trigger's watcher must be of that trigger's Dag, labelled with it.
async fn check_watcher(
    state: &WebhookState,
    request: &AdmissionRequest<DynamicObject>,
    namespace: &str,
    run: &DagRun,
) -> Result<(), String> {
    let username = request.user_info.username.as_deref().unwrap_or_default();
    let Some(trigger) = watcher_runs::watcher_trigger(username, namespace) else {
        return Ok(());
    };
    let api: Api<DagTrigger> = Api::namespaced(state.client.clone(), namespace);
    match api.get_opt(trigger).await {
        Ok(Some(t)) => watcher_runs::check_watcher_run(run, trigger, &t.spec.dag_ref.name),
        Ok(None) => Ok(()),
        Err(e) => Err(format!(
            "cannot read DagTrigger {trigger:?} to check its watcher's run: {e}"
        )),
    }
}

/// The Dag from the cache, else from the API server (a Dag applied together with its runs).
async fn find_dag(state: &WebhookState, namespace: &str, name: &str) -> Option<Dag> {
    if let Some(dag) = state.dags.get(&ObjectRef::new(name).within(namespace)) {
        return Some((*dag).clone());
    }
    let api: Api<Dag> = Api::namespaced(state.client.clone(), namespace);
    api.get_opt(name).await.ok().flatten()
}

/// Installs the process-wide rustls crypto provider (ring) once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
