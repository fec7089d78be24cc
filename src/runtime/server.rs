//! The operator's plain HTTP endpoints: `/metrics`, `/healthz`, `/readyz`. They start before
//! leadership is won, so a standby replica is live but not ready.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::controller::Context;

/// Set once this replica leads and its caches are synced.
#[derive(Default)]
pub struct Health {
    ready: OnceLock<Arc<Context>>,
}

impl Health {
    pub fn mark_ready(&self, ctx: Arc<Context>) {
        let _ = self.ready.set(ctx);
    }
}

/// Serves until the process ends.
pub async fn serve(addr: SocketAddr, health: Arc<Health>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving metrics and health");
    axum::serve(listener, app).await
}

async fn metrics(State(health): State<Arc<Health>>) -> String {
    match health.ready.get() {
        Some(ctx) => ctx.metrics.render(&ctx.runs.state()),
        None => String::new(),
    }
}

async fn readyz(State(health): State<Arc<Health>>) -> (StatusCode, &'static str) {
    match health.ready.get() {
        Some(_) => (StatusCode::OK, "ok"),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not leading or caches not synced"),
    }
}
