//! The watch-based recorder: from the watch streams of one namespace, the instant (driver clock,
//! [`crate::clock::now`]) each step's unit was first seen and first seen done, and each run first
//! seen in a terminal phase. kubedag's unit is a Job (done: `Complete` or `Failed`) and its run a
//! DagRun; Argo's unit is a Pod (done: phase `Succeeded` or `Failed`) and its run a Workflow. The
//! API's own timestamps have 1-second resolution; these are milliseconds.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::clock::{log, now};
use crate::shapes::dagruns;

/// One step's Job (kubedag) or Pod (Argo, the plain-client Pod baseline) as seen on the watch.
#[derive(Clone, Debug, Default)]
pub struct JobRec {
    /// Its run: the `kubedag.io/run` label, or Argo's `workflows.argoproj.io/workflow`.
    pub run: String,
    /// Its step: the `kubedag.io/step` label, or Argo's node name without the `<workflow>.` prefix.
    pub step: String,
    /// First seen (s).
    pub added: f64,
    /// First seen Complete or Failed (s).
    pub complete: Option<f64>,
    /// It ended Failed.
    pub failed: bool,
}

/// One DagRun: when the driver's create returned, when a terminal phase was first seen.
#[derive(Clone, Debug, Default)]
pub struct RunRec {
    pub created: Option<f64>,
    pub finished: Option<f64>,
    /// The last phase seen.
    pub phase: String,
    /// JSON bytes of the largest version seen (the whole object as served).
    pub max_bytes: usize,
}

/// The records, by object name.
#[derive(Default)]
pub struct Recorder {
    pub jobs: Mutex<HashMap<String, JobRec>>,
    pub runs: Mutex<HashMap<String, RunRec>>,
}

impl Recorder {
    /// Jobs named `prefix*` seen Complete or Failed.
    pub fn jobs_done(&self, prefix: &str) -> usize {
        self.jobs_named(prefix).iter().filter(|j| j.complete.is_some()).count()
    }

    /// A copy of the records of the Jobs (or Pods) named `prefix*`, in no particular order.
    pub fn jobs_named(&self, prefix: &str) -> Vec<JobRec> {
        let jobs = self.jobs.lock().unwrap();
        jobs.iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, j)| j.clone())
            .collect()
    }

    /// Runs seen in a terminal phase.
    pub fn runs_finished(&self) -> usize {
        let runs = self.runs.lock().unwrap();
        runs.values().filter(|r| r.finished.is_some()).count()
    }

    /// Checks `count` every `interval` until it reaches `n` (Ok) or the driver clock passes
    /// `deadline` (Err with the last count); `tick` sees every count below `n`.
    pub async fn wait_for(
        &self,
        n: usize,
        deadline: f64,
        interval: Duration,
        count: impl Fn(&Recorder) -> usize,
        mut tick: impl FnMut(usize),
    ) -> Result<(), usize> {
        loop {
            let done = count(self);
            if done >= n {
                return Ok(());
            }
            if now() > deadline {
                return Err(done);
            }
            tick(done);
            tokio::time::sleep(interval).await;
        }
    }
}

/// What a step runs as, and so which objects the recorder watches for steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// kubedag: one Job per step.
    Job,
    /// Argo, and the plain-client Pod baseline: one Pod per step.
    Pod,
}

/// The label of an Argo pod naming its Workflow.
const ARGO_WORKFLOW_LABEL: &str = "workflows.argoproj.io/workflow";
/// The annotation of an Argo pod naming its node (`<workflow>.<task>` in a DAG).
const ARGO_NODE_ANNOTATION: &str = "workflows.argoproj.io/node-name";

/// A recorder being filled by its watch tasks.
pub struct Recording {
    pub rec: Arc<Recorder>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Recording {
    /// Starts watching Jobs and DagRuns of `ns`; returns once both initial lists are in.
    pub async fn start(client: &Client, ns: &str) -> Recording {
        Recording::watching(client, ns, Unit::Job, Some(dagruns(client, ns))).await
    }

    /// Starts watching the `unit` objects of `ns` and, when given, the runs of `runs` (DagRuns
    /// or Workflows: their `.status.phase`); returns once every initial list is in.
    pub async fn watching(client: &Client, ns: &str, unit: Unit, runs: Option<Api<DynamicObject>>) -> Recording {
        let rec = Arc::new(Recorder::default());
        let (units_task, units_ready) = {
            let rec = rec.clone();
            match unit {
                Unit::Job => watch(Api::<Job>::namespaced(client.clone(), ns), "job", move |job| {
                    record_job(&rec, job, now())
                }),
                Unit::Pod => watch(Api::<Pod>::namespaced(client.clone(), ns), "pod", move |pod| {
                    record_pod(&rec, pod, now())
                }),
            }
        };
        let mut tasks = vec![units_task];
        let _ = units_ready.await;
        if let Some(runs) = runs {
            let rec = rec.clone();
            let (runs_task, runs_ready) = watch(runs, "run", move |run| record_run(&rec, run, now()));
            let _ = runs_ready.await;
            tasks.push(runs_task);
        }
        Recording { rec, tasks }
    }

    /// Stops the watches; the records stay.
    pub fn stop(self) -> Arc<Recorder> {
        for task in self.tasks {
            task.abort();
        }
        self.rec
    }
}

/// A task calling `on_apply` for every object of `api` the watch delivers (initial list
/// included); the receiver fires once the initial list is in. Errors are logged as `what` watch
/// errors and the watch goes on (with backoff).
fn watch<K>(
    api: Api<K>,
    what: &'static str,
    on_apply: impl Fn(&K) + Send + 'static,
) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<()>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let (ready_tx, ready) = oneshot::channel();
    let task = tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default()).default_backoff();
        futures::pin_mut!(stream);
        let mut ready_tx = Some(ready_tx);
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Apply(object)) | Ok(Event::InitApply(object)) => on_apply(&object),
                Ok(Event::InitDone) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(err) => log(format!("{what} watch error: {err}")),
            }
        }
    });
    (task, ready)
}

fn record_job(rec: &Recorder, job: &Job, at: f64) {
    let labels = job.labels();
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is_true = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
    let done = (is_true("Complete") || is_true("Failed")).then(|| is_true("Failed"));
    let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
    record_unit(
        rec,
        job.name_any(),
        || (label("kubedag.io/run"), label("kubedag.io/step")),
        done,
        at,
    );
}

/// A Pod: its run and step from Argo's workflow label and node-name annotation (empty for other
/// pods); done when its phase is `Succeeded` or `Failed`.
fn record_pod(rec: &Recorder, pod: &Pod, at: f64) {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    let done = matches!(phase, "Succeeded" | "Failed").then_some(phase == "Failed");
    let names = || {
        let run = pod.labels().get(ARGO_WORKFLOW_LABEL).cloned().unwrap_or_default();
        let node = pod.annotations().get(ARGO_NODE_ANNOTATION).cloned().unwrap_or_default();
        let step = node.strip_prefix(&format!("{run}.")).unwrap_or(&node).to_string();
        (run, step)
    };
    record_unit(rec, pod.name_any(), names, done, at);
}

/// Records unit `name` first seen at `at` (run and step from `names`), and done at `at` when
/// `done` is `Some(failed)` and it was not done before.
fn record_unit(rec: &Recorder, name: String, names: impl FnOnce() -> (String, String), done: Option<bool>, at: f64) {
    let mut jobs = rec.jobs.lock().unwrap();
    let entry = jobs.entry(name).or_insert_with(|| {
        let (run, step) = names();
        JobRec {
            run,
            step,
            added: at,
            complete: None,
            failed: false,
        }
    });
    if let (None, Some(failed)) = (entry.complete, done) {
        entry.complete = Some(at);
        entry.failed = failed;
    }
}

fn record_run(rec: &Recorder, run: &DynamicObject, at: f64) {
    let phase = run
        .data
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    // DagRun phases, and Argo's `Error`.
    let terminal = matches!(
        phase.as_str(),
        "Succeeded" | "Failed" | "Cancelled" | "Rejected" | "Error"
    );
    let bytes = serde_json::to_vec(run).map_or(0, |v| v.len());
    let mut runs = rec.runs.lock().unwrap();
    let entry = runs.entry(run.name_any()).or_default();
    entry.max_bytes = entry.max_bytes.max(bytes);
    if terminal && entry.finished.is_none() {
        entry.finished = Some(at);
    }
    entry.phase = phase;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_first_instants_seen() {
        let rec = Recorder::default();
        let job = |conditions: Value| -> Job {
            serde_json::from_value(json!({
                "metadata": {"name": "j", "labels": {"kubedag.io/run": "r", "kubedag.io/step": "s"}},
                "status": {"conditions": conditions},
            }))
            .unwrap()
        };
        record_job(&rec, &job(json!([])), 1.0);
        record_job(&rec, &job(json!([{"type": "Complete", "status": "True"}])), 2.0);
        record_job(&rec, &job(json!([{"type": "Complete", "status": "True"}])), 3.0);
        let j = rec.jobs.lock().unwrap()["j"].clone();
        assert_eq!(
            (j.run.as_str(), j.step.as_str(), j.added, j.complete, j.failed),
            ("r", "s", 1.0, Some(2.0), false)
        );

        let run = |phase: &str| -> DynamicObject {
            serde_json::from_value(json!({"apiVersion": "kubedag.io/v1alpha1", "kind": "DagRun",
                "metadata": {"name": "r"}, "status": {"phase": phase}}))
            .unwrap()
        };
        record_run(&rec, &run("Running"), 1.0);
        assert_eq!(rec.runs.lock().unwrap()["r"].finished, None);
        record_run(&rec, &run("Failed"), 4.0);
        record_run(&rec, &run("Failed"), 5.0);
        let r = rec.runs.lock().unwrap()["r"].clone();
        assert_eq!((r.finished, r.phase.as_str()), (Some(4.0), "Failed"));
        let big = serde_json::to_vec(&run("Running")).unwrap().len();
        assert!(
            r.max_bytes >= big,
            "the largest version is kept: {} < {big}",
            r.max_bytes
        );
    }

    #[test]
    fn an_argo_pod_is_a_step_of_its_workflow_done_when_its_phase_is_terminal() {
        let rec = Recorder::default();
        let pod = |phase: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "r-1-work-123", "labels": {ARGO_WORKFLOW_LABEL: "r-1"},
                             "annotations": {ARGO_NODE_ANNOTATION: "r-1.calibrate-2"}},
                "status": {"phase": phase},
            }))
            .unwrap()
        };
        record_pod(&rec, &pod("Pending"), 1.0);
        assert_eq!(rec.jobs_done(""), 0);
        record_pod(&rec, &pod("Failed"), 2.0);
        record_pod(&rec, &pod("Failed"), 3.0);
        let j = rec.jobs.lock().unwrap()["r-1-work-123"].clone();
        assert_eq!(
            (j.run.as_str(), j.step.as_str(), j.added, j.complete, j.failed),
            ("r-1", "calibrate-2", 1.0, Some(2.0), true)
        );
        let plain: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p-1"}, "status": {"phase": "Succeeded"}})).unwrap();
        record_pod(&rec, &plain, 4.0);
        assert_eq!(rec.jobs.lock().unwrap()["p-1"].complete, Some(4.0));
    }
}
