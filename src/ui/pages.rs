//! The GET handlers: each reads the cache (falling back to one API read for an object the watch
//! has not delivered yet, e.g. a run created a moment ago) and renders its view.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::cli::error::CliError;

use super::cache::Scope;
use super::server::UiState;
use super::views::dags::{DagRow, DagsPage};
use super::views::run::{RunInput, RunPage};
use super::views::runs::{RunsInput, RunsPage};
use super::views::triggers::{self, TriggerLink, TriggerRow, TriggersPage, dag_triggers_url};
use super::views::{Alert, Chrome, dag_url, encode, render};

/// Query-string pairs, in order (keys may repeat).
pub type Pairs = Vec<(String, String)>;

impl UiState {
    fn chrome(&self, title: String, crumbs: Vec<(String, String)>, live: String, nav: &'static str) -> Chrome {
        Chrome {
            title,
            scope: self.scope.label(),
            crumbs,
            live,
            nav,
        }
    }

    fn in_scope(&self, namespace: &str) -> bool {
        match &self.scope {
            Scope::Namespace(ns) => ns == namespace,
            Scope::All => true,
        }
    }
}

/// `GET /`: every Dag in scope.
pub async fn dags(State(ui): State<Arc<UiState>>) -> Html<String> {
    let mut dags = ui.cache.dags.state();
    dags.sort_by_key(|d| (d.namespace(), d.name_any()));
    let rows = {
        let index = ui.cache.index.read().unwrap_or_else(|e| e.into_inner());
        dags.iter()
            .map(|d| DagRow::of(d, index.runs_of(&d.namespace().unwrap_or_default(), &d.name_any())))
            .collect()
    };
    let page = DagsPage {
        chrome: ui.chrome("Dags".into(), Vec::new(), "/live".into(), "dags"),
        alert: None,
        rows,
        all_namespaces: ui.scope == Scope::All,
        synced: ui.cache.dags.wait_until_ready().now_or_never_ready(),
    };
    Html(render(&page))
}

/// `GET /ns/{ns}/dags/{dag}`: the Dag's runs grouped by parameter set.
pub async fn runs(
    State(ui): State<Arc<UiState>>,
    Path((ns, dag)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> Response {
    runs_response(&ui, &ns, &dag, &pairs, None, &[]).await
}

/// The runs page, with an alert and the submit form's values after a submit.
pub async fn runs_response(
    ui: &UiState,
    ns: &str,
    dag_name: &str,
    pairs: &[(String, String)],
    alert: Option<(StatusCode, Alert)>,
    submitted: &[(String, String)],
) -> Response {
    let dag = match find(ui, ns, dag_name, |n, d| ui.cache.dag(n, d)).await {
        Ok(dag) => dag,
        Err(response) => return response,
    };
    let (status, alert) = alert.map_or((StatusCode::OK, None), |(s, a)| (s, Some(a)));
    let chrome = ui.chrome(
        format!("Runs of {dag_name}"),
        vec![(format!("{ns}/{dag_name}"), dag_url(ns, dag_name))],
        format!("/live?ns={}&dag={}", encode(ns), encode(dag_name)),
        "dags",
    );
    let triggers = ui
        .cache
        .triggers_in(Some(ns))
        .iter()
        .filter(|t| t.spec.dag_ref.name == dag_name)
        .map(|t| TriggerLink::of(t))
        .collect();
    let input = RunsInput {
        chrome,
        token: ui.token.clone(),
        pairs,
        now: jiff::Timestamp::now(),
        alert,
        submitted,
        triggers,
        triggers_url: dag_triggers_url(ns, dag_name),
    };
    let page = {
        let index = ui.cache.index.read().unwrap_or_else(|e| e.into_inner());
        RunsPage::build(&dag, index.runs_of(ns, dag_name), input)
    };
    (status, Html(render(&page))).into_response()
}

/// `GET /ns/{ns}/runs/{run}[?step=S]`: one run.
pub async fn run(
    State(ui): State<Arc<UiState>>,
    Path((ns, run)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let alert = value("done").and_then(|done| done_notice(&done));
    let log = LogChoice {
        step: value("step"),
        attempt: value("attempt").and_then(|a| a.parse().ok()),
    };
    run_response(&ui, &ns, &run, log, alert.map(|a| (StatusCode::OK, a))).await
}

/// The confirmation shown after an action redirected here (`?done=`).
fn done_notice(done: &str) -> Option<Alert> {
    let message = match done {
        "submit" => "Run submitted.",
        "cancel" => "Cancel requested: running steps are stopped and the run ends Cancelled.",
        "retry" => "Retry requested: the failed and skipped steps run again.",
        _ => return None,
    };
    Some(Alert {
        kind: "ok",
        message: message.into(),
        link: None,
    })
}

/// Which step's log the run page shows, and which attempt (default: the latest).
#[derive(Debug, Clone, Default)]
pub struct LogChoice {
    pub step: Option<String>,
    pub attempt: Option<u32>,
}

/// The run page, with an alert after an action.
pub async fn run_response(
    ui: &UiState,
    ns: &str,
    name: &str,
    log: LogChoice,
    alert: Option<(StatusCode, Alert)>,
) -> Response {
    let run = match find(ui, ns, name, |n, r| ui.cache.run(n, r)).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    let events = events_of(ui, ns, name).await;
    let (status, alert) = alert.map_or((StatusCode::OK, None), |(s, a)| (s, Some(a)));
    let dag = run.spec.dag_ref.name.clone();
    let chrome = ui.chrome(
        format!("Run {name}"),
        vec![
            (format!("{ns}/{dag}"), dag_url(ns, &dag)),
            (name.to_string(), super::views::run_url(ns, name)),
        ],
        format!("/live?ns={}&dag={}", encode(ns), encode(&dag)),
        "dags",
    );
    let hash = run.status.as_ref().and_then(|s| s.param_hash.clone());
    let page = {
        let index = ui.cache.index.read().unwrap_or_else(|e| e.into_inner());
        let siblings = index
            .runs_of(ns, &dag)
            .filter(|r| Some(&r.param_hash) == hash.as_ref() || r.name == name)
            .collect();
        let input = RunInput {
            chrome,
            token: ui.token.clone(),
            now: jiff::Timestamp::now(),
            alert,
            siblings,
            events,
            log_step: log.step,
            log_attempt: log.attempt,
        };
        RunPage::build(&run, input)
    };
    (status, Html(render(&page))).into_response()
}

/// `GET /triggers`: every DagTrigger in scope.
pub async fn triggers(State(ui): State<Arc<UiState>>) -> Html<String> {
    let chrome = ui.chrome("Triggers".into(), Vec::new(), triggers::live_url(None), "triggers");
    Html(render(&triggers_page(&ui, chrome, None)))
}

/// `GET /ns/{ns}/dags/{dag}/triggers`: the DagTriggers of one Dag.
pub async fn dag_triggers(State(ui): State<Arc<UiState>>, Path((ns, dag)): Path<(String, String)>) -> Response {
    if !ui.in_scope(&ns) {
        return out_of_scope(&ui, &ns);
    }
    let chrome = ui.chrome(
        format!("Triggers of {dag}"),
        vec![
            (format!("{ns}/{dag}"), dag_url(&ns, &dag)),
            ("triggers".into(), dag_triggers_url(&ns, &dag)),
        ],
        triggers::live_url(Some((&ns, &dag))),
        "triggers",
    );
    Html(render(&triggers_page(&ui, chrome, Some((&ns, &dag))))).into_response()
}

/// The Triggers page of everything in scope, or of one Dag (namespace, name).
fn triggers_page(ui: &UiState, chrome: Chrome, dag: Option<(&str, &str)>) -> TriggersPage {
    let now = jiff::Timestamp::now();
    let phase_of = |ns: &str, run: &str| {
        ui.cache
            .run(ns, run)
            .map(|r| r.status.clone().unwrap_or_default().phase.as_str().to_string())
    };
    let rows: Vec<TriggerRow> = ui
        .cache
        .triggers_in(dag.map(|(ns, _)| ns))
        .iter()
        .filter(|t| dag.is_none_or(|(_, name)| t.spec.dag_ref.name == name))
        .map(|t| TriggerRow::of(t, now, phase_of))
        .collect();
    let empty_note = match ui.cache.watch_error("DagTrigger") {
        Some(error) => error,
        None if !ui.cache.triggers.wait_until_ready().now_or_never_ready() => {
            "No DagTriggers yet (still reading the cluster).".into()
        }
        None => "No DagTriggers here.".into(),
    };
    TriggersPage {
        chrome,
        alert: None,
        rows,
        all_namespaces: ui.scope == Scope::All,
        dag: dag.map(|(ns, name)| (name.to_string(), dag_url(ns, name))),
        empty_note,
    }
}

fn out_of_scope(ui: &UiState, ns: &str) -> Response {
    let message = format!("namespace {ns:?} is outside this UI's scope ({})", ui.scope.label());
    (StatusCode::NOT_FOUND, message).into_response()
}

/// The object from the cache, else from the API server (the watch may lag a fresh object).
/// Errors are ready responses: out of scope (404), missing (404), the read refused (its status).
async fn find<K>(
    ui: &UiState,
    ns: &str,
    name: &str,
    cached: impl Fn(&str, &str) -> Option<Arc<K>>,
) -> Result<Arc<K>, Response>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let kind = K::kind(&()).to_string();
    if !ui.in_scope(ns) {
        return Err(out_of_scope(ui, ns));
    }
    if let Some(found) = cached(ns, name) {
        return Ok(found);
    }
    let api: Api<K> = Api::namespaced(ui.client.clone(), ns);
    match api.get_opt(name).await {
        Ok(Some(found)) => Ok(Arc::new(found)),
        Ok(None) => {
            let message = format!("{kind} {name:?} not found in namespace {ns:?}");
            Err((StatusCode::NOT_FOUND, message).into_response())
        }
        Err(e) => {
            let status = api_status_code(&e);
            let message = CliError::kube(format!("cannot read {kind} {name:?}"))(e).to_string();
            Err((status, message).into_response())
        }
    }
}

/// The HTTP status of an API error (500 when it is not an API answer).
pub fn api_status_code(error: &kube::Error) -> StatusCode {
    match error {
        kube::Error::Api(status) => StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The run's Events (one field-selected list: a run has a few dozen at most).
async fn events_of(ui: &UiState, ns: &str, run: &str) -> Result<Vec<Event>, String> {
    let api: Api<Event> = Api::namespaced(ui.client.clone(), ns);
    let fields = format!("involvedObject.kind=DagRun,involvedObject.name={run}");
    api.list(&ListParams::default().fields(&fields))
        .await
        .map(|list| list.items)
        .map_err(|e| CliError::kube("cannot read the run's Events")(e).to_string())
}

/// Whether a future is ready without waiting (the stores' "first list arrived" signal).
trait NowOrNever {
    fn now_or_never_ready(self) -> bool;
}

impl<F: std::future::Future> NowOrNever for F {
    fn now_or_never_ready(self) -> bool {
        futures::FutureExt::now_or_never(self).is_some()
    }
}
