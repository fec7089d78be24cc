//! Warning Events, from a watch (field selector `type=Warning`), indexed by the object they are
//! about: why a Job could not create its pod (`FailedCreate`), why a pod cannot mount its volumes
//! or get its sandbox, why a claim is not bound.
//!
//! A watch instead of a LIST per waiting step (or per namespace every few seconds) because the
//! start checks of `engine::pod_start` ask for no periodic re-check: a new Warning about a step's
//! Job or pod is what wakes its run ([`WarningEvents::observe`] says which object it was about).
//! Until the watch's first list is complete [`WarningEvents::about`] answers None, and callers
//! fall back to a timed re-check.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::listed::ListedIndex;
use super::step_pods::StepPods;
use super::watched::WatchedJob;
use crate::api::{DagRun, labels};

/// (reason, message) of each Warning about one object, newest first.
pub type Warnings = Vec<(String, String)>;

/// The object a Warning is about: (namespace, involvedObject.kind, involvedObject.name).
pub type ObjectKey = (String, String, String);

/// Reasons whose Warnings wake no run: the scheduler's `FailedScheduling` repeats on every
/// scheduling attempt, and what it says is also the pod's `PodScheduled` condition, which the pod
/// watch wakes the run for when it changes.
const WAKE_NOBODY: &[&str] = &["FailedScheduling"];

/// One Warning Event, as much of it as the start checks read.
#[derive(Debug, Clone, PartialEq)]
struct Warning {
    /// The Event's own name: an Event repeated by its source is the same object, updated.
    event: String,
    reason: String,
    message: String,
    last_seen: Option<Timestamp>,
}

type Index = HashMap<ObjectKey, Vec<Warning>>;

/// The Warning Events the watch has seen, by object. Fed by [`WarningEvents::observe`].
#[derive(Default)]
pub struct WarningEvents {
    index: ListedIndex<Index>,
}

impl WarningEvents {
    /// Feeds one event of the Warning Event watch. Returns the object a new or updated Warning is
    /// about (the caller wakes whatever waits on it), None for anything else and for reasons in
    /// [`WAKE_NOBODY`].
    pub fn observe(&self, event: &watcher::Event<Event>) -> Option<ObjectKey> {
        self.index.observe(event, insert, remove)
    }

    /// The Warnings about `kind`/`name` in `namespace` (of one `reason` if given), newest first;
    /// None until the watch has listed them.
    pub fn about(&self, namespace: &str, kind: &str, name: &str, reason: Option<&str>) -> Option<Warnings> {
        let key = (namespace.to_string(), kind.to_string(), name.to_string());
        self.index.read(|live| {
            let mut found: Vec<&Warning> = live
                .get(&key)
                .into_iter()
                .flatten()
                .filter(|w| reason.is_none_or(|want| w.reason == want))
                .collect();
            found.sort_by_key(|w| std::cmp::Reverse(w.last_seen));
            found
                .into_iter()
                .map(|w| (w.reason.clone(), w.message.clone()))
                .collect()
        })
    }
}

/// The runs a new Warning about `object` may concern: a step Job's run (from the Job cache), a
/// step pod's run, the runs whose pods mount a claim. Other objects concern no run.
pub fn runs_concerned(object: &ObjectKey, jobs: &Store<WatchedJob>, pods: &StepPods) -> Vec<ObjectRef<DagRun>> {
    let (namespace, kind, name) = object;
    match kind.as_str() {
        "Job" => jobs
            .get(&ObjectRef::new(name).within(namespace))
            .and_then(|job| job.labels().get(labels::RUN).cloned())
            .map(|run| ObjectRef::new(&run).within(namespace))
            .into_iter()
            .collect(),
        "Pod" => pods.runs_of(namespace, Some(name), None),
        "PersistentVolumeClaim" => pods.runs_of(namespace, None, Some(name)),
        _ => Vec::new(),
    }
}

fn key_of(event: &Event) -> ObjectKey {
    let object = &event.involved_object;
    (
        object
            .namespace
            .clone()
            .or_else(|| event.metadata.namespace.clone())
            .unwrap_or_default(),
        object.kind.clone().unwrap_or_default(),
        object.name.clone().unwrap_or_default(),
    )
}

/// Adds or replaces the Warning; returns its object.
fn insert(index: &mut Index, event: &Event) -> Option<ObjectKey> {
    if event.type_.as_deref() != Some("Warning") {
        return None;
    }
    let key = key_of(event);
    let warning = Warning {
        event: event.metadata.name.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        // Events written through events.k8s.io carry eventTime (and a series) instead.
        last_seen: event
            .last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| event.event_time.as_ref().map(|t| t.0)),
    };
    let news = !WAKE_NOBODY.contains(&warning.reason.as_str());
    let warnings = index.entry(key.clone()).or_default();
    warnings.retain(|w| w.event != warning.event);
    warnings.push(warning);
    news.then_some(key)
}

fn remove(index: &mut Index, event: &Event) {
    let key = key_of(event);
    let name = event.metadata.name.as_deref().unwrap_or_default();
    if let Some(warnings) = index.get_mut(&key) {
        warnings.retain(|w| w.event != name);
        if warnings.is_empty() {
            index.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    fn event(name: &str, kind: &str, object: &str, reason: &str, second: i64) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                name: Some(object.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            type_: Some("Warning".into()),
            reason: Some(reason.into()),
            message: Some(format!("{reason} at {second}")),
            last_timestamp: Some(Time(Timestamp::from_second(second).unwrap())),
            ..Default::default()
        }
    }

    fn listed(events: Vec<Event>) -> WarningEvents {
        let warnings = WarningEvents::default();
        warnings.observe(&watcher::Event::Init);
        for e in events {
            warnings.observe(&watcher::Event::InitApply(e));
        }
        warnings.observe(&watcher::Event::InitDone);
        warnings
    }

    fn messages(warnings: &WarningEvents, kind: &str, name: &str) -> Option<Vec<String>> {
        let found = warnings.about("ns", kind, name, None)?;
        Some(found.into_iter().map(|(_, m)| m).collect())
    }

    #[test]
    fn nothing_is_answered_until_the_first_list_is_complete() {
        let warnings = WarningEvents::default();
        assert_eq!(messages(&warnings, "Job", "j"), None);
        warnings.observe(&watcher::Event::Init);
        warnings.observe(&watcher::Event::InitApply(event("e1", "Job", "j", "FailedCreate", 1)));
        assert_eq!(messages(&warnings, "Job", "j"), None);
        warnings.observe(&watcher::Event::InitDone);
        assert_eq!(messages(&warnings, "Job", "j"), Some(vec!["FailedCreate at 1".into()]));
        assert_eq!(messages(&warnings, "Pod", "j"), Some(vec![]));
    }

    #[test]
    fn warnings_are_grouped_by_object_newest_first_and_filtered_by_reason() {
        let warnings = listed(vec![
            event("e1", "Job", "j", "FailedCreate", 1),
            event("e2", "Pod", "j", "FailedMount", 2),
            event("e3", "Job", "j", "FailedCreate", 3),
            event("e4", "Job", "j", "Other", 4),
        ]);
        let job = warnings.about("ns", "Job", "j", Some("FailedCreate")).unwrap();
        assert_eq!(
            job.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
            ["FailedCreate at 3", "FailedCreate at 1"]
        );
        assert_eq!(messages(&warnings, "Pod", "j").unwrap().len(), 1);
        assert_eq!(warnings.about("other", "Job", "j", None), Some(vec![]));
    }

    #[test]
    fn a_repeated_event_replaces_itself_deletes_remove_and_every_new_warning_names_its_object() {
        let warnings = listed(vec![]);
        let woken = warnings.observe(&watcher::Event::Apply(event("e1", "Pod", "p", "FailedMount", 1)));
        assert_eq!(woken, Some(("ns".into(), "Pod".into(), "p".into())));
        let again = warnings.observe(&watcher::Event::Apply(event("e1", "Pod", "p", "FailedMount", 9)));
        assert_eq!(again, woken, "a repeat (count + 1) is news too");
        assert_eq!(messages(&warnings, "Pod", "p"), Some(vec!["FailedMount at 9".into()]));
        assert_eq!(
            warnings.observe(&watcher::Event::Delete(event("e1", "Pod", "p", "FailedMount", 9))),
            None
        );
        assert_eq!(messages(&warnings, "Pod", "p"), Some(vec![]));
        let scheduling = event("e3", "Pod", "p", "FailedScheduling", 10);
        assert_eq!(
            warnings.observe(&watcher::Event::Apply(scheduling)),
            None,
            "kept, but wakes nobody"
        );
        assert_eq!(
            warnings
                .about("ns", "Pod", "p", Some("FailedScheduling"))
                .unwrap()
                .len(),
            1
        );
        let mut normal = event("e2", "Pod", "p", "Pulled", 10);
        normal.type_ = Some("Normal".into());
        assert_eq!(warnings.observe(&watcher::Event::Apply(normal)), None);
        assert_eq!(messages(&warnings, "Pod", "p").unwrap().len(), 1, "only the Warning");
    }

    #[test]
    fn a_relist_forgets_what_it_did_not_see() {
        let warnings = listed(vec![event("e1", "Job", "a", "FailedCreate", 1)]);
        warnings.observe(&watcher::Event::Init);
        assert_eq!(
            messages(&warnings, "Job", "a"),
            None,
            "a relist in progress is not an answer"
        );
        warnings.observe(&watcher::Event::InitApply(event("e2", "Job", "b", "FailedCreate", 2)));
        warnings.observe(&watcher::Event::InitDone);
        assert_eq!(messages(&warnings, "Job", "a"), Some(vec![]));
        assert_eq!(messages(&warnings, "Job", "b").unwrap().len(), 1);
    }
}
