//! `GET /ns/{ns}/runs/{run}/logs/{step}[?attempt=N]`: a step's log as server-sent events, one
//! `line` event per line, followed while the pod runs. `note` events say what it waits for; an
//! `end` event says why the stream stopped (the page then stops listening).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{AsyncBufReadExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;

use crate::cli::error::CliError;
use crate::cli::logs::{attempt_of, has_started, step_of};

use super::pages::Pairs;
use super::server::UiState;

/// How often the stream looks for the step's pod while it has not started.
const POLL: Duration = Duration::from_secs(1);

/// The event stream of one step's log.
pub async fn stream(
    State(ui): State<Arc<UiState>>,
    Path((ns, run, step)): Path<(String, String, String)>,
    Query(pairs): Query<Pairs>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let attempt = pairs
        .iter()
        .find(|(k, _)| k == "attempt")
        .and_then(|(_, v)| v.parse::<u32>().ok());
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let end = follow(&ui, &ns, &run, &step, attempt, &tx).await;
        let _ = tx.send(Event::default().event("end").data(end)).await;
    });
    let events = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// The step's pod of `attempt` (default: its latest), once its container has started.
fn pod_of(ui: &UiState, ns: &str, run: &str, step: &str, attempt: Option<u32>) -> Option<Arc<Pod>> {
    ui.cache
        .pods_of(ns, run)
        .into_iter()
        .filter(|p| step_of(p) == step && attempt.is_none_or(|a| attempt_of(p) == a))
        .max_by_key(|p| (attempt_of(p), p.creation_timestamp()))
}

/// Streams the log into `tx`; returns why it ended.
async fn follow(
    ui: &UiState,
    ns: &str,
    run: &str,
    step: &str,
    attempt: Option<u32>,
    tx: &mpsc::Sender<Event>,
) -> String {
    let note = |text: String| Event::default().event("note").data(text);
    let mut said_waiting = false;
    let pod = loop {
        match pod_of(ui, ns, run, step, attempt) {
            Some(pod) if has_started(&pod) => break pod,
            found => {
                let finished = ui
                    .cache
                    .run(ns, run)
                    .and_then(|r| r.status.clone())
                    .is_some_and(|s| s.phase.is_terminal());
                if finished {
                    return match found {
                        Some(_) => format!("step {step} never started its container"),
                        None => format!("step {step} has no pod (it did not run, or its Job was deleted)"),
                    };
                }
                if !said_waiting {
                    said_waiting = true;
                    if tx
                        .send(note(format!("waiting for step {step} to start…")))
                        .await
                        .is_err()
                    {
                        return String::new();
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        }
    };
    let name = pod.name_any();
    let label = format!("attempt {}", attempt_of(&pod));
    if tx.send(note(format!("following {label} (pod {name})"))).await.is_err() {
        return String::new();
    }
    let api: Api<Pod> = Api::namespaced(ui.client.clone(), ns);
    let params = LogParams {
        follow: true,
        ..Default::default()
    };
    let reader = match api.log_stream(&name, &params).await {
        Ok(reader) => reader,
        Err(e) => return CliError::kube(format!("cannot read the logs of pod {name}"))(e).to_string(),
    };
    let mut lines = std::pin::pin!(reader.lines());
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                if tx.send(Event::default().event("line").data(line)).await.is_err() {
                    return String::new();
                }
            }
            Err(e) => return format!("the log stream of pod {name} broke: {e}"),
        }
    }
    format!("end of the log of step {step}, {label}")
}
