//! What the UI knows of the cluster: kube-runtime reflectors of Dags, DagRuns, DagTriggers and
//! step pods (in one namespace or all), the [`RunIndex`] by Dag built from the same DagRun events,
//! the last error of each watch, and a broadcast of [`Change`]s that the live-update streams
//! listen to.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::broadcast;

use crate::api::{Dag, DagRun, DagTrigger, labels};

use super::index::RunIndex;

/// Something the UI shows may have changed in `namespace` (empty: anywhere, after a re-list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub namespace: String,
    /// The Dag concerned, when known.
    pub dag: Option<String>,
    /// The DagRun concerned, when known.
    pub run: Option<String>,
}

impl Change {
    /// A change that may concern any page (a watch re-listed).
    pub fn anywhere() -> Change {
        Change {
            namespace: String::new(),
            dag: None,
            run: None,
        }
    }
}

/// Namespaces the UI watches: one, or all (`-A`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    /// `namespace NS` or `all namespaces`.
    pub fn label(&self) -> String {
        match self {
            Scope::Namespace(ns) => format!("namespace {ns}"),
            Scope::All => "all namespaces".into(),
        }
    }

    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match self {
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
            Scope::All => Api::all(client.clone()),
        }
    }
}

/// The last error of each watch, by kind (`DagTrigger`), while it lasts: set when the watch
/// fails (e.g. RBAC forbids the list, or the CRD is not installed), cleared by its next event.
pub type WatchErrors = Arc<RwLock<BTreeMap<String, String>>>;

/// The reflector stores and the run index, shared by every request.
#[derive(Clone)]
pub struct Cache {
    pub dags: Store<Dag>,
    pub runs: Store<DagRun>,
    pub triggers: Store<DagTrigger>,
    pub pods: Store<Pod>,
    pub index: Arc<RwLock<RunIndex>>,
    pub changes: broadcast::Sender<Change>,
    pub errors: WatchErrors,
}

impl Cache {
    /// Starts the watches on the runtime and returns at once; pages fill in as the first lists
    /// arrive. A watch that fails (e.g. RBAC forbids it) retries with backoff, logging the error.
    pub fn start(client: &Client, scope: &Scope) -> Cache {
        let (changes, _) = broadcast::channel(1024);
        let errors = WatchErrors::default();
        let index = Arc::new(RwLock::new(RunIndex::default()));
        let watches = Watches {
            changes: changes.clone(),
            errors: errors.clone(),
        };
        let dags = watches.spawn(scope.api::<Dag>(client), watcher::Config::default(), |_, dag| Change {
            namespace: dag.and_then(|d| d.namespace()).unwrap_or_default(),
            dag: dag.map(|d| d.name_any()),
            run: None,
        });
        let run_index = index.clone();
        let runs = watches.spawn(
            scope.api::<DagRun>(client),
            watcher::Config::default(),
            move |event, run| {
                if let Ok(mut index) = run_index.write() {
                    index.apply(event);
                }
                run.map(change_of_run).unwrap_or_else(Change::anywhere)
            },
        );
        let triggers = watches.spawn(
            scope.api::<DagTrigger>(client),
            watcher::Config::default(),
            |_, trigger| match trigger {
                Some(trigger) => Change {
                    namespace: trigger.namespace().unwrap_or_default(),
                    dag: Some(trigger.spec.dag_ref.name.clone()),
                    run: None,
                },
                None => Change::anywhere(),
            },
        );
        let pods = watches.spawn(
            scope.api::<Pod>(client),
            watcher::Config::default().labels(labels::RUN),
            |_, pod| match pod {
                Some(pod) => Change {
                    namespace: pod.namespace().unwrap_or_default(),
                    dag: pod.labels().get(labels::DAG).cloned(),
                    run: pod.labels().get(labels::RUN).cloned(),
                },
                None => Change::anywhere(),
            },
        );
        Cache {
            dags,
            runs,
            triggers,
            pods,
            index,
            changes,
            errors,
        }
    }

    /// The DagTriggers in `namespace` (all in scope when None), by namespace and name.
    pub fn triggers_in(&self, namespace: Option<&str>) -> Vec<Arc<DagTrigger>> {
        let mut triggers = self
            .triggers
            .state_filter(|t| namespace.is_none_or(|ns| t.namespace().as_deref() == Some(ns)));
        triggers.sort_by_key(|t| (t.namespace(), t.name_any()));
        triggers
    }

    /// The last error of the watch of `kind` (e.g. `DagTrigger`), if it is failing.
    pub fn watch_error(&self, kind: &str) -> Option<String> {
        let errors = self.errors.read().unwrap_or_else(|e| e.into_inner());
        errors.get(kind).cloned()
    }

    pub fn dag(&self, namespace: &str, name: &str) -> Option<Arc<Dag>> {
        self.dags.get(&ObjectRef::new(name).within(namespace))
    }

    pub fn run(&self, namespace: &str, name: &str) -> Option<Arc<DagRun>> {
        self.runs.get(&ObjectRef::new(name).within(namespace))
    }

    /// The step pods of a run (all steps and attempts).
    pub fn pods_of(&self, namespace: &str, run: &str) -> Vec<Arc<Pod>> {
        self.pods.state_filter(|pod| {
            pod.namespace().as_deref() == Some(namespace)
                && pod.labels().get(labels::RUN).map(String::as_str) == Some(run)
        })
    }
}

fn change_of_run(run: &DagRun) -> Change {
    Change {
        namespace: run.namespace().unwrap_or_default(),
        dag: Some(run.spec.dag_ref.name.clone()),
        run: Some(run.name_any()),
    }
}

/// Where the watches report: the change broadcast and the error map.
struct Watches {
    changes: broadcast::Sender<Change>,
    errors: WatchErrors,
}

impl Watches {
    /// Runs a reflector of `api` on the runtime; `on_event` sees every event and its object
    /// (Init and InitDone have none; they still reach `on_event`, for the run index) and names
    /// the change to broadcast.
    fn spawn<K, F>(&self, api: Api<K>, config: watcher::Config, on_event: F) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
        F: Fn(&Event<K>, Option<&K>) -> Change + Send + 'static,
    {
        let (reader, writer) = reflector::store();
        let kind = K::kind(&()).to_string();
        let stream = reflector::reflector(writer, watcher::watcher(api, config)).default_backoff();
        tokio::spawn(consume(
            stream,
            kind,
            self.changes.clone(),
            self.errors.clone(),
            on_event,
        ));
        reader
    }
}

async fn consume<K, F>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    kind: String,
    changes: broadcast::Sender<Change>,
    errors: WatchErrors,
    on_event: F,
) where
    F: Fn(&Event<K>, Option<&K>) -> Change,
{
    let mut stream = std::pin::pin!(stream);
    let mut failing = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                if std::mem::take(&mut failing) {
                    errors.write().unwrap_or_else(|e| e.into_inner()).remove(&kind);
                }
                let object = match &event {
                    Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o),
                    Event::Init | Event::InitDone => None,
                };
                let change = on_event(&event, object);
                if !matches!(event, Event::InitApply(_) | Event::Init) {
                    let _ = changes.send(change);
                }
            }
            Err(error) => {
                tracing::warn!(%kind, %error, "watch failed; retrying");
                failing = true;
                let message = format!("cannot watch {kind}s: {error}");
                errors
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(kind.clone(), message);
            }
        }
    }
}
