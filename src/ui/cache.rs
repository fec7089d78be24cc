//! What the UI knows of the cluster: kube-runtime reflectors of Dags, DagRuns and step pods (in
//! one namespace or all), the [`RunIndex`] by Dag built from the same DagRun events, and a
//! broadcast of [`Change`]s that the live-update streams listen to.

use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::broadcast;

use crate::api::{Dag, DagRun, labels};

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

/// The reflector stores and the run index, shared by every request.
#[derive(Clone)]
pub struct Cache {
    pub dags: Store<Dag>,
    pub runs: Store<DagRun>,
    pub pods: Store<Pod>,
    pub index: Arc<RwLock<RunIndex>>,
    pub changes: broadcast::Sender<Change>,
}

impl Cache {
    /// Starts the watches on the runtime and returns at once; pages fill in as the first lists
    /// arrive. A watch that fails (e.g. RBAC forbids it) retries with backoff, logging the error.
    pub fn start(client: &Client, scope: &Scope) -> Cache {
        let (changes, _) = broadcast::channel(1024);
        let index = Arc::new(RwLock::new(RunIndex::default()));
        let dags = spawn_reflector(
            scope.api::<Dag>(client),
            watcher::Config::default(),
            changes.clone(),
            |_, dag| Change {
                namespace: dag.and_then(|d| d.namespace()).unwrap_or_default(),
                dag: dag.map(|d| d.name_any()),
                run: None,
            },
        );
        let run_index = index.clone();
        let runs = spawn_reflector(
            scope.api::<DagRun>(client),
            watcher::Config::default(),
            changes.clone(),
            move |event, run| {
                if let Ok(mut index) = run_index.write() {
                    index.apply(event);
                }
                run.map(change_of_run).unwrap_or_else(Change::anywhere)
            },
        );
        let pods = spawn_reflector(
            scope.api::<Pod>(client),
            watcher::Config::default().labels(labels::RUN),
            changes.clone(),
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
            pods,
            index,
            changes,
        }
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

/// Runs a reflector of `api` on the runtime; `on_event` sees every event and its object (Init
/// and InitDone have none; they still reach `on_event`, for the run index, through `on_any`)
/// and names the change to broadcast.
fn spawn_reflector<K, F>(
    api: Api<K>,
    config: watcher::Config,
    changes: broadcast::Sender<Change>,
    on_event: F,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    F: Fn(&Event<K>, Option<&K>) -> Change + Send + 'static,
{
    let (reader, writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    let stream = reflector::reflector(writer, watcher::watcher(api, config)).default_backoff();
    tokio::spawn(consume(stream, kind, changes, on_event));
    reader
}

async fn consume<K, F>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>>,
    kind: String,
    changes: broadcast::Sender<Change>,
    on_event: F,
) where
    F: Fn(&Event<K>, Option<&K>) -> Change,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                let object = match &event {
                    Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => Some(o),
                    Event::Init | Event::InitDone => None,
                };
                let change = on_event(&event, object);
                if !matches!(event, Event::InitApply(_) | Event::Init) {
                    let _ = changes.send(change);
                }
            }
            Err(error) => tracing::warn!(%kind, %error, "watch failed; retrying"),
        }
    }
}
