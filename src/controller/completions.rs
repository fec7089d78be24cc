//! When the operator first saw each step Job finish, for the launch-latency metric.
//!
//! A Job's `completionTime` has one-second resolution, far too coarse for a latency measured in
//! milliseconds, so the Job watch stream records the instant it first delivers a finished Job.
//! Entries go when the Job is deleted; Jobs that finished before the operator started have none
//! (the metric then falls back to the recorded timestamps).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::engine::plan::JobState;

use super::watched::WatchedJob;

#[derive(Default)]
pub struct Completions {
    /// First time each Job was seen Complete or Failed, keyed like the Job cache.
    seen: Mutex<HashMap<ObjectRef<WatchedJob>, Instant>>,
}

impl Completions {
    /// Feeds one event of the Job watch stream.
    pub fn observe(&self, event: &watcher::Event<WatchedJob>) {
        match event {
            watcher::Event::Apply(job) if !matches!(job.state(), JobState::Active) => {
                let mut seen = self.seen.lock().expect("completions lock");
                seen.entry(ObjectRef::from_obj(job)).or_insert_with(Instant::now);
            }
            watcher::Event::Delete(job) => {
                self.seen
                    .lock()
                    .expect("completions lock")
                    .remove(&ObjectRef::from_obj(job));
            }
            _ => {}
        }
    }

    /// The latest first-seen finish among `jobs`, or None if any of them is unknown (or there are none).
    pub fn last_finished(&self, namespace: &str, jobs: &[&str]) -> Option<Instant> {
        let seen = self.seen.lock().expect("completions lock");
        jobs.iter()
            .map(|name| seen.get(&ObjectRef::new(name).within(namespace)).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }
}
