//! Warning Events of a namespace, read with one LIST at most every [`MAX_AGE`] and shared by
//! every reconcile that asks: why a Job could not create its pod (`FailedCreate`), why a pod
//! cannot mount its volumes, why a claim is not bound.
//!
//! One LIST per object asked about cost one Event LIST per waiting Job per reconcile, which under
//! load (thousands of Jobs waiting on a busy Job controller) became thousands of LISTs a minute.
//! Read this way the cost is bounded by namespaces, not Jobs; the answer is at most
//! [`MAX_AGE`] old, well within the start checks' own re-check interval
//! ([`crate::engine::pod_start::RECHECK_SECONDS`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};

/// How old a namespace's snapshot may be before it is read again.
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// (reason, message) of each Warning about one object, newest first.
pub type Warnings = Vec<(String, String)>;

/// (involvedObject.kind, involvedObject.name).
type ObjectKey = (String, String);

/// The snapshots, one per namespace. The lock is held across a refresh so that reconciles asking
/// at once share one LIST instead of each starting their own.
#[derive(Default)]
pub struct WarningEvents {
    snapshots: tokio::sync::Mutex<HashMap<String, Snapshot>>,
}

struct Snapshot {
    read_at: Instant,
    by_object: Arc<HashMap<ObjectKey, Warnings>>,
}

impl WarningEvents {
    /// The Warnings about `kind`/`name` in `namespace` (of one `reason` if given), newest first.
    /// Errors: the Event LIST failed.
    pub async fn about(
        &self,
        client: &Client,
        namespace: &str,
        kind: &str,
        name: &str,
        reason: Option<&str>,
    ) -> Result<Warnings, kube::Error> {
        let by_object = self.snapshot(client, namespace).await?;
        let all = by_object.get(&(kind.to_string(), name.to_string()));
        Ok(all
            .into_iter()
            .flatten()
            .filter(|(r, _)| reason.is_none_or(|want| r == want))
            .cloned()
            .collect())
    }

    async fn snapshot(
        &self,
        client: &Client,
        namespace: &str,
    ) -> Result<Arc<HashMap<ObjectKey, Warnings>>, kube::Error> {
        let mut snapshots = self.snapshots.lock().await;
        if let Some(s) = snapshots.get(namespace).filter(|s| s.read_at.elapsed() < MAX_AGE) {
            return Ok(s.by_object.clone());
        }
        let api: Api<Event> = Api::namespaced(client.clone(), namespace);
        let listed = api.list(&ListParams::default().fields("type=Warning")).await?.items;
        let by_object = Arc::new(index(listed));
        snapshots.insert(
            namespace.to_string(),
            Snapshot {
                read_at: Instant::now(),
                by_object: by_object.clone(),
            },
        );
        Ok(by_object)
    }
}

/// Groups events by the object they are about, newest first.
fn index(mut events: Vec<Event>) -> HashMap<ObjectKey, Warnings> {
    events.sort_by_key(|e| std::cmp::Reverse(e.last_timestamp.clone().map(|t| t.0)));
    let mut by_object: HashMap<ObjectKey, Warnings> = HashMap::new();
    for event in events {
        let object = event.involved_object;
        let key = (object.kind.unwrap_or_default(), object.name.unwrap_or_default());
        by_object
            .entry(key)
            .or_default()
            .push((event.reason.unwrap_or_default(), event.message.unwrap_or_default()));
    }
    by_object
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn event(kind: &str, name: &str, reason: &str, second: i64) -> Event {
        Event {
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(format!("{reason} at {second}")),
            last_timestamp: Some(Time(Timestamp::from_second(second).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn events_are_grouped_by_object_newest_first() {
        let by_object = index(vec![
            event("Job", "j", "FailedCreate", 1),
            event("Pod", "j", "FailedMount", 2),
            event("Job", "j", "FailedCreate", 3),
        ]);
        let job = &by_object[&("Job".to_string(), "j".to_string())];
        assert_eq!(
            job.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
            ["FailedCreate at 3", "FailedCreate at 1"]
        );
        assert_eq!(by_object[&("Pod".to_string(), "j".to_string())].len(), 1);
    }
}
