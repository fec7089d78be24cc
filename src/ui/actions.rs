//! The POST handlers: submit a run, cancel, retry. Each runs the same code as `kubectl dag`
//! (`cli::create`, `cli::control`) with the user's own client, so the API server (RBAC, the
//! admission webhook) decides; a refusal is shown on the page with the server's message.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::cli::cluster::Cluster;
use crate::cli::control::{self, Requested};
use crate::cli::create;
use crate::cli::error::CliError;

use super::guard;
use super::pages::{self, Pairs};
use super::server::UiState;
use super::views::{Alert, run_url};

const STALE_FORM: &str = "this form is stale or came from another site: reload the page and try again";

fn cluster(ui: &UiState, ns: &str) -> Cluster {
    Cluster {
        client: ui.client.clone(),
        namespace: ns.to_string(),
    }
}

/// The HTTP status for a failed request: the API server's own code when it answered.
fn status_of(error: &CliError) -> StatusCode {
    error
        .api_status()
        .and_then(|s| StatusCode::from_u16(s.code).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// `POST /ns/{ns}/dags/{dag}/runs` with `p.NAME=value` per param (empty: unset, the default
/// applies), optional `requestId`, and the token.
pub async fn submit(
    State(ui): State<Arc<UiState>>,
    Path((ns, dag)): Path<(String, String)>,
    Form(form): Form<Pairs>,
) -> Response {
    if !guard::token_ok(&form, &ui.token) {
        let alert = (StatusCode::FORBIDDEN, Alert::error(STALE_FORM));
        return pages::runs_response(&ui, &ns, &dag, &[], Some(alert), &form).await;
    }
    let params: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("p.")?.to_string(), v.clone())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let request_id = form
        .iter()
        .find(|(k, v)| k == "requestId" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string());
    let run = create::new_run(&dag, params, request_id);
    let alert = match create::create(&cluster(&ui, &ns), &run, false).await {
        Ok(created) => {
            let name = created.metadata.name.unwrap_or_default();
            return Redirect::to(&format!("{}?done=submit", run_url(&ns, &name))).into_response();
        }
        Err(error) => {
            let mut alert = Alert::error(error.to_string());
            if create::is_duplicate_refusal(&error) {
                alert.link = existing_run(&alert.message)
                    .map(|run| (format!("Open the existing run {run}"), run_url(&ns, &run)));
            }
            (status_of(&error), alert)
        }
    };
    pages::runs_response(&ui, &ns, &dag, &[], Some(alert), &form).await
}

/// The run a duplicate refusal names (`... DagRun "NAME" of Dag ...`).
pub fn existing_run(message: &str) -> Option<String> {
    let rest = &message[message.find("DagRun \"")? + "DagRun \"".len()..];
    let name = &rest[..rest.find('"')?];
    (!name.is_empty()).then(|| name.to_string())
}

/// `POST /ns/{ns}/runs/{run}/cancel`.
pub async fn cancel(ui: State<Arc<UiState>>, path: Path<(String, String)>, form: Form<Pairs>) -> Response {
    control_action(ui, path, form, RunAction::Cancel).await
}

/// `POST /ns/{ns}/runs/{run}/retry`.
pub async fn retry(ui: State<Arc<UiState>>, path: Path<(String, String)>, form: Form<Pairs>) -> Response {
    control_action(ui, path, form, RunAction::Retry).await
}

/// The actions on one run, each the `kubectl dag` command of the same name.
#[derive(Debug, Clone, Copy)]
enum RunAction {
    Cancel,
    Retry,
}

async fn control_action(
    State(ui): State<Arc<UiState>>,
    Path((ns, run)): Path<(String, String)>,
    Form(form): Form<Pairs>,
    action: RunAction,
) -> Response {
    if !guard::token_ok(&form, &ui.token) {
        return stale(&ui, &ns, &run).await;
    }
    let cluster = cluster(&ui, &ns);
    let (requested, what) = match action {
        RunAction::Cancel => (control::request_cancel(&cluster, &run).await, "cancel"),
        RunAction::Retry => (control::request_retry(&cluster, &run).await, "retry"),
    };
    settle(&ui, &ns, &run, what, requested).await
}

async fn stale(ui: &UiState, ns: &str, run: &str) -> Response {
    let alert = (StatusCode::FORBIDDEN, Alert::error(STALE_FORM));
    pages::run_response(ui, ns, run, Default::default(), Some(alert)).await
}

/// Done: back to the run page with a confirmation. Otherwise the run page with the reason.
async fn settle(ui: &UiState, ns: &str, run: &str, what: &str, requested: Result<Requested, CliError>) -> Response {
    let alert = match requested {
        Ok(Requested::Done(_)) => {
            return Redirect::to(&format!("{}?done={what}", run_url(ns, run))).into_response();
        }
        Ok(Requested::Nothing(message)) => (
            StatusCode::OK,
            Alert {
                kind: "ok",
                message,
                link: None,
            },
        ),
        Ok(Requested::Refused(message)) => (StatusCode::CONFLICT, Alert::error(message)),
        Err(error) => (status_of(&error), Alert::error(error.to_string())),
    };
    pages::run_response(ui, ns, run, Default::default(), Some(alert)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_existing_run_is_read_from_the_webhook_refusal() {
        let message =
            crate::engine::duplicates::refusal_message("img", "img-x7k2p", "ab", crate::api::DuplicatePolicy::Forbid);
        let refusal = format!(
            "cannot create a DagRun of Dag \"img\": admission webhook \"dagruns.kubedag.io\" denied the request: {message}"
        );
        assert_eq!(existing_run(&refusal).as_deref(), Some("img-x7k2p"));
        assert_eq!(existing_run("forbidden"), None);
    }
}
