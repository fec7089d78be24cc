//! A directory or bucket trigger's outcome (pure): from what the operator observed of its
//! watcher (the Deployment's pod, the kubelet's mount failures, the watcher's own report) to the
//! `Ready` condition's reason and the counts of `status`.
//!
//! Order of causes: suspended, the Dag missing, no watcher image, the volume not mountable, the
//! pod not ready (with the kubelet's reason), then the watcher's last error
//! (`BucketUnreachable`, `InvalidParams`, `DagMissing`, ...), else `Active`.

use std::time::Duration;

use crate::api::DagTrigger;
use crate::watch::stats::WatcherStats;

use super::status::TriggerOutcome;

/// What the operator saw of one trigger's watcher.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatcherFacts {
    /// The Deployment has its current pod ready.
    pub ready: bool,
    /// The newest watcher pod, if any.
    pub pod: Option<PodFacts>,
    /// The kubelet's latest `FailedMount` message for that pod.
    pub mount_failure: Option<String>,
    /// The watcher's last report.
    pub stats: WatcherStats,
}

/// Why a watcher pod is not ready, as Kubernetes says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodFacts {
    pub name: String,
    pub phase: String,
    /// The scheduler's message while the pod is unschedulable (e.g. a missing PVC).
    pub unschedulable: Option<String>,
    /// The container's waiting reason and message (e.g. `CrashLoopBackOff`, `ContainerCreating`).
    pub waiting: Option<(String, String)>,
    /// The container's last termination message (its last log lines when it crashed).
    pub last_termination: Option<String>,
}

/// Reasons the watcher reports that the condition keeps as they are; any other becomes
/// `WatcherError`.
const WATCHER_REASONS: [&str; 13] = [
    "VolumeNotMountable",
    "BucketUnreachable",
    "NoSuchBucket",
    "BadCredentials",
    "AccessDenied",
    "ListFailed",
    "TooManyObjects",
    "InvalidSpec",
    "CredentialsSecretMissing",
    "CredentialsSecretUnreadable",
    "DagMissing",
    "InvalidParams",
    "Refused",
];

/// How soon to look again while the watcher is not working.
const NOT_READY_REQUEUE: Duration = Duration::from_secs(5);

/// The outcome of a watched trigger. `image` is the watcher image (None: not configured);
/// `facts` what was observed (None while suspended or before anything was applied).
pub fn outcome(
    trigger: &DagTrigger,
    dag_exists: bool,
    image: Option<&str>,
    facts: Option<&WatcherFacts>,
) -> TriggerOutcome {
    let source = trigger.spec.source_name().unwrap_or("none");
    let mut outcome = TriggerOutcome::new(trigger, source);
    outcome.requeue = Duration::from_secs(60);
    if let Some(facts) = facts {
        outcome.watched = Some(facts.stats.clone());
    }
    if trigger.spec.suspend {
        return outcome;
    }
    if !dag_exists {
        let message = format!("Dag {:?} not found", trigger.spec.dag_ref.name);
        return outcome.failing("DagMissing", message, Duration::from_secs(10));
    }
    if image.is_none() {
        let message = "the operator runs no watchers: it was started without --watcher-image".to_string();
        return outcome.failing("WatcherNotReady", message, Duration::from_secs(300));
    }
    let Some(facts) = facts else {
        return outcome.failing(
            "WatcherNotReady",
            "the watcher Deployment is being created".into(),
            NOT_READY_REQUEUE,
        );
    };
    if let Some(message) = not_mountable(trigger, facts) {
        return outcome.failing("VolumeNotMountable", message, NOT_READY_REQUEUE);
    }
    if !facts.ready {
        return outcome.failing("WatcherNotReady", not_ready(facts), NOT_READY_REQUEUE);
    }
    if let Some(error) = &facts.stats.last_error {
        let (reason, message) = error.split_once(": ").unwrap_or(("WatcherError", error));
        let reason = WATCHER_REASONS
            .into_iter()
            .find(|r| *r == reason)
            .unwrap_or("WatcherError");
        return outcome.failing(reason, message.to_string(), Duration::from_secs(30));
    }
    outcome
}

/// The volume the pod cannot mount and the kubelet's (or scheduler's) words.
fn not_mountable(trigger: &DagTrigger, facts: &WatcherFacts) -> Option<String> {
    let volume = &trigger.spec.directory.as_ref()?.volume.name;
    let pod = facts.pod.as_ref()?;
    if facts.ready {
        return None;
    }
    let cause = facts.mount_failure.clone().or_else(|| {
        pod.unschedulable
            .clone()
            .filter(|m| m.contains("persistentvolumeclaim"))
    })?;
    Some(format!(
        "watcher pod {} cannot mount volume {volume:?}: {cause}",
        pod.name
    ))
}

fn not_ready(facts: &WatcherFacts) -> String {
    let Some(pod) = &facts.pod else {
        return "no watcher pod yet".into();
    };
    let mut message = format!("watcher pod {} is {}", pod.name, pod.phase);
    if let Some(m) = &pod.unschedulable {
        message.push_str(&format!(", unschedulable: {m}"));
    }
    if let Some((reason, m)) = &pod.waiting {
        message.push_str(&format!(", {reason}"));
        if !m.is_empty() {
            message.push_str(&format!(": {m}"));
        }
    }
    if let Some(last) = &pod.last_termination {
        message.push_str(&format!("; last exit: {}", last.trim()));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DagTriggerSpec;

    fn trigger(extra: &str) -> DagTrigger {
        let yaml = format!("dagRef: {{name: d}}\ndirectory: {{volume: {{name: in, hostPath: {{path: /x}}}}}}\n{extra}");
        DagTrigger::new("t", serde_yaml::from_str::<DagTriggerSpec>(&yaml).unwrap())
    }

    fn pod() -> PodFacts {
        PodFacts {
            name: "t-watcher-1".into(),
            phase: "Pending".into(),
            ..Default::default()
        }
    }

    fn reason(o: &TriggerOutcome) -> Option<&str> {
        o.error.as_ref().map(|(r, _)| *r)
    }

    #[test]
    fn causes_are_named_in_order() {
        let t = trigger("");
        let mounting = WatcherFacts {
            pod: Some(pod()),
            mount_failure: Some("MountVolume.SetUp failed for volume \"in\": not a directory".into()),
            ..Default::default()
        };
        let o = outcome(&t, true, Some("img"), Some(&mounting));
        assert_eq!(reason(&o), Some("VolumeNotMountable"));
        assert!(
            o.error
                .as_ref()
                .unwrap()
                .1
                .contains("volume \"in\": MountVolume.SetUp failed")
        );
        assert_eq!(
            reason(&outcome(&t, false, Some("img"), Some(&mounting))),
            Some("DagMissing")
        );
        assert_eq!(reason(&outcome(&t, true, None, None)), Some("WatcherNotReady"));
        assert_eq!(reason(&outcome(&trigger("suspend: true\n"), false, None, None)), None);

        let mut crashing = pod();
        crashing.waiting = Some(("CrashLoopBackOff".into(), "back-off 10s".into()));
        crashing.last_termination = Some("Error: forbidden\n".into());
        let facts = WatcherFacts {
            pod: Some(crashing),
            ..Default::default()
        };
        let o = outcome(&t, true, Some("img"), Some(&facts));
        assert_eq!(reason(&o), Some("WatcherNotReady"));
        assert!(
            o.error
                .unwrap()
                .1
                .ends_with("CrashLoopBackOff: back-off 10s; last exit: Error: forbidden")
        );
    }

    #[test]
    fn a_ready_watcher_passes_its_reported_error_and_counts_through() {
        let t = trigger("");
        let mut facts = WatcherFacts {
            ready: true,
            pod: Some(pod()),
            ..Default::default()
        };
        facts.stats.submitted = 7;
        facts.stats.last_error = Some("BucketUnreachable: http://s3:9000: connection refused".into());
        let o = outcome(&t, true, Some("img"), Some(&facts));
        assert_eq!(
            o.error,
            Some(("BucketUnreachable", "http://s3:9000: connection refused".into()))
        );
        assert_eq!(o.watched.as_ref().map(|s| s.submitted), Some(7));
        facts.stats.last_error = Some("something odd".into());
        assert_eq!(
            reason(&outcome(&t, true, Some("img"), Some(&facts))),
            Some("WatcherError")
        );
        facts.stats.last_error = None;
        assert_eq!(reason(&outcome(&t, true, Some("img"), Some(&facts))), None);
    }
}
