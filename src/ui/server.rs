//! The process side of `kubectl dag ui`: the shared state, the router and the listener.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use kube::Client;

use crate::cli::cluster::Cluster;
use crate::cli::error::CliError;

use super::cache::{Cache, Scope};
use super::{actions, guard, live, logs, pages};

/// What every request handler shares.
pub struct UiState {
    /// The user's own client (their kubeconfig): every read and action runs under their RBAC.
    pub client: Client,
    pub scope: Scope,
    pub cache: Cache,
    /// The token forms must carry (random per process).
    pub token: String,
    /// The port the server listens on (for the Host check).
    pub port: u16,
}

/// The UI's routes. Paths name the namespace, so `-A` and `-n` serve the same URLs.
pub fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/", get(pages::dags))
        .route("/ns/{ns}/dags/{dag}", get(pages::runs))
        .route("/ns/{ns}/dags/{dag}/runs", post(actions::submit))
        .route("/ns/{ns}/dags/{dag}/triggers", get(pages::dag_triggers))
        .route("/triggers", get(pages::triggers))
        .route("/ns/{ns}/runs/{run}", get(pages::run))
        .route("/ns/{ns}/runs/{run}/cancel", post(actions::cancel))
        .route("/ns/{ns}/runs/{run}/retry", post(actions::retry))
        .route("/ns/{ns}/runs/{run}/logs/{step}", get(logs::stream))
        .route("/live", get(live::stream))
        .route(
            "/static/ui.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    include_str!("static/ui.js"),
                )
            }),
        )
        .route(
            "/static/ui.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    include_str!("static/ui.css"),
                )
            }),
        )
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::check_host))
        .with_state(state)
}

/// Serves the UI on 127.0.0.1:`port` (0: any free port) until Ctrl-C, watching the cluster of
/// `cluster` in its namespace, or in all namespaces with `all_namespaces`. Prints the URL first.
/// Errors: the port cannot be bound.
pub async fn serve(cluster: Cluster, all_namespaces: bool, port: u16) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| CliError::Invalid(format!("--port {port}: cannot listen on 127.0.0.1:{port}: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::Invalid(format!("cannot read the listening address: {e}")))?
        .port();
    let scope = if all_namespaces {
        Scope::All
    } else {
        Scope::Namespace(cluster.namespace.clone())
    };
    let cache = Cache::start(&cluster.client, &scope);
    let state = Arc::new(UiState {
        client: cluster.client,
        scope,
        cache,
        token: uuid::Uuid::new_v4().simple().to_string(),
        port,
    });
    crate::cli::output::emit_line(&format!(
        "kubedag UI: http://127.0.0.1:{port}/ ({}); Ctrl-C stops it",
        state.scope.label()
    ))?;
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::Invalid(format!("the UI server stopped: {e}")))
}
