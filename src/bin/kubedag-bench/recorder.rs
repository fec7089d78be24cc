//! The watch-based recorder: from the Job and DagRun watch streams of one namespace, the instant
//! (driver clock, [`crate::clock::now`]) each Job was first seen, first seen Complete or Failed,
//! and each run first seen in a terminal phase. The API's own timestamps have 1-second
//! resolution; these are milliseconds.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::clock::{log, now};
use crate::shapes::dagruns;

/// One step Job as seen on the watch.
#[derive(Clone, Debug, Default)]
pub struct JobRec {
    /// Its `kubedag.io/run` label.
    pub run: String,
    /// Its `kubedag.io/step` label.
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
        let jobs = self.jobs.lock().unwrap();
        jobs.iter()
            .filter(|(name, j)| name.starts_with(prefix) && j.complete.is_some())
            .count()
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

/// A recorder being filled by its two watch tasks.
pub struct Recording {
    pub rec: Arc<Recorder>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Recording {
    /// Starts watching Jobs and DagRuns of `ns`; returns once both initial lists are in.
    pub async fn start(client: &Client, ns: &str) -> Recording {
        let rec = Arc::new(Recorder::default());
        let (jobs_task, jobs_ready) = {
            let rec = rec.clone();
            watch(Api::<Job>::namespaced(client.clone(), ns), "job", move |job| {
                record_job(&rec, job, now())
            })
        };
        let (runs_task, runs_ready) = {
            let rec = rec.clone();
            watch(dagruns(client, ns), "dagrun", move |run| record_run(&rec, run, now()))
        };
        let _ = jobs_ready.await;
        let _ = runs_ready.await;
        Recording {
            rec,
            tasks: vec![jobs_task, runs_task],
        }
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
    let name = job.name_any();
    let labels = job.labels();
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let is_true = |t: &str| conditions.iter().any(|c| c.type_ == t && c.status == "True");
    let mut jobs = rec.jobs.lock().unwrap();
    let entry = jobs.entry(name).or_insert_with(|| JobRec {
        run: labels.get("kubedag.io/run").cloned().unwrap_or_default(),
        step: labels.get("kubedag.io/step").cloned().unwrap_or_default(),
        added: at,
        complete: None,
        failed: false,
    });
    if entry.complete.is_none() && (is_true("Complete") || is_true("Failed")) {
        entry.complete = Some(at);
        entry.failed = is_true("Failed");
    }
}

fn record_run(rec: &Recorder, run: &DynamicObject, at: f64) {
    let phase = run
        .data
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let terminal = matches!(phase.as_str(), "Succeeded" | "Failed" | "Cancelled" | "Rejected");
    let mut runs = rec.runs.lock().unwrap();
    let entry = runs.entry(run.name_any()).or_default();
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
    }
}
