//! Live updates: `GET /live?ns=&dag=&run=` is a server-sent event stream that says `changed`
//! whenever the cache saw a change the page shows (debounced), so the page re-fetches itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::cache::Change;
use super::server::UiState;

/// Changes closer together than this make one refresh.
const DEBOUNCE: Duration = Duration::from_millis(700);

/// What a page shows: empty fields match anything.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Interest {
    #[serde(default)]
    pub ns: String,
    #[serde(default)]
    pub dag: String,
    #[serde(default)]
    pub run: String,
}

impl Interest {
    /// Whether `change` may alter the page. A change that names nothing (a re-list) matches all.
    pub fn wants(&self, change: &Change) -> bool {
        if change.namespace.is_empty() {
            return true;
        }
        if !self.ns.is_empty() && self.ns != change.namespace {
            return false;
        }
        let same = |want: &str, got: &Option<String>| want.is_empty() || got.as_deref() == Some(want);
        // A run page also shows its siblings (same Dag): follow the Dag when known.
        same(&self.dag, &change.dag) && same(&self.run, &change.run)
    }
}

/// The event stream of one page.
pub async fn stream(
    State(ui): State<Arc<UiState>>,
    Query(interest): Query<Interest>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = ui.cache.changes.subscribe();
    let events = futures::stream::unfold((receiver, interest), |(mut receiver, interest)| async move {
        loop {
            match receiver.recv().await {
                Ok(change) if interest.wants(&change) => break,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return None,
            }
        }
        tokio::time::sleep(DEBOUNCE).await;
        loop {
            match receiver.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return None,
            }
        }
        Some((
            Ok(Event::default().event("changed").data("changed")),
            (receiver, interest),
        ))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(ns: &str, dag: Option<&str>, run: Option<&str>) -> Change {
        Change {
            namespace: ns.into(),
            dag: dag.map(Into::into),
            run: run.map(Into::into),
        }
    }

    #[test]
    fn pages_hear_only_their_namespace_dag_and_run() {
        let dags_page = Interest::default();
        let runs_page = Interest {
            ns: "a".into(),
            dag: "img".into(),
            run: String::new(),
        };
        let run_page = Interest {
            run: "img-1".into(),
            ..runs_page.clone()
        };
        let run_change = change("a", Some("img"), Some("img-1"));
        assert!(dags_page.wants(&run_change) && runs_page.wants(&run_change) && run_page.wants(&run_change));
        let other_run = change("a", Some("img"), Some("img-2"));
        assert!(runs_page.wants(&other_run) && !run_page.wants(&other_run));
        assert!(!runs_page.wants(&change("b", Some("img"), None)));
        assert!(!runs_page.wants(&change("a", Some("other"), None)));
        assert!(run_page.wants(&Change::anywhere()));
    }
}
