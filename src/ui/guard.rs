//! Request checks that keep other web pages from using the UI with the user's credentials:
//! only `Host: 127.0.0.1:PORT` / `localhost:PORT` is served (no DNS rebinding), and every form
//! that changes something carries the process's random token (no cross-site form posts).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::server::UiState;

/// Whether `host` (the Host header) names this server on the loopback interface.
pub fn host_allowed(host: &str, port: u16) -> bool {
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name))
}

/// Whether a submitted form carries the token.
pub fn token_ok(pairs: &[(String, String)], token: &str) -> bool {
    pairs.iter().any(|(k, v)| k == "token" && v == token)
}

/// Refuses a request whose Host header is not this loopback server.
pub async fn check_host(State(ui): State<Arc<UiState>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !host_allowed(host, ui.port) {
        let message = format!(
            "kubedag UI: Host {host:?} is not served; open http://127.0.0.1:{}/ instead",
            ui.port
        );
        return (StatusCode::MISDIRECTED_REQUEST, message).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_on_our_port_are_served() {
        assert!(host_allowed("127.0.0.1:8080", 8080));
        assert!(host_allowed("localhost:8080", 8080));
        assert!(!host_allowed("127.0.0.1:9090", 8080));
        assert!(!host_allowed("evil.example:8080", 8080));
        assert!(!host_allowed("", 8080));
    }

    #[test]
    fn forms_need_the_exact_token() {
        let pairs = |v: &str| vec![("token".to_string(), v.to_string())];
        assert!(token_ok(&pairs("abc"), "abc"));
        assert!(!token_ok(&pairs("abd"), "abc"));
        assert!(!token_ok(&[], "abc"));
    }
}
