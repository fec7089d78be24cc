//! When the operator first saw each step Job finish, for the launch-latency metric.
//!
//! A Job's `completionTime` has one-second resolution, far too coarse for a latency measured in
//! milliseconds, so the Job watch stream records the instant it first delivers a finished Job.
//! Entries go when the Job is deleted; Jobs that finished before the operator started have none
//! (the metric then falls back to the recorded timestamps).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::runtime::watcher;

use crate::engine::plan::JobState;

use super::job_state;

#[derive(Default)]
pub struct Completions {
    /// "namespace/name" -> first time the Job was seen Complete or Failed.
    seen: Mutex<HashMap<String, Instant>>,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Completions {
    /// Feeds one event of the Job watch stream.
    pub fn observe(&self, event: &watcher::Event<Job>) {
        let mut seen = self.seen.lock().expect("completions lock");
        match event {
            watcher::Event::Apply(job) if !matches!(job_state::state_of(job), JobState::Active) => {
                seen.entry(key(&job.namespace().unwrap_or_default(), &job.name_any()))
                    .or_insert_with(Instant::now);
            }
            watcher::Event::Delete(job) => {
                seen.remove(&key(&job.namespace().unwrap_or_default(), &job.name_any()));
            }
            _ => {}
        }
    }

    /// The latest first-seen finish among `jobs`, or None if any of them is unknown.
    pub fn last_finished(&self, namespace: &str, jobs: &[&str]) -> Option<Instant> {
        let seen = self.seen.lock().expect("completions lock");
        jobs.iter()
            .map(|name| seen.get(&key(namespace, name)).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }
}
