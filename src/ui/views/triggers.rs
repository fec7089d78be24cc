//! The Triggers page: every `DagTrigger` in scope (or of one Dag) with its source and settings,
//! the counts it keeps (submitted, skipped, failed), when it last scanned and submitted, its last
//! run, its last error and its `Ready` condition. Also the short links the Dag page shows.

use askama::Template;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Volume;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::{ConcurrencyPolicy, DagTrigger};
use crate::cli::human;

use super::{Alert, Chrome, dag_url, encode, run_url};

#[derive(Template)]
#[template(path = "triggers.html")]
pub struct TriggersPage {
    pub chrome: Chrome,
    pub alert: Option<Alert>,
    pub rows: Vec<TriggerRow>,
    pub all_namespaces: bool,
    /// The Dag the page is limited to: (name, runs page URL).
    pub dag: Option<(String, String)>,
    /// What an empty page means: none yet, still reading, or why the watch fails.
    pub empty_note: String,
}

/// One trigger's line.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRow {
    pub namespace: String,
    pub name: String,
    /// The row's element id (unique across namespaces).
    pub anchor: String,
    pub dag: String,
    pub dag_url: String,
    pub suspended: bool,
    /// `schedule`, `directory`, `bucket`, or `none`.
    pub source: String,
    /// The source's settings as (field, value), unset optional fields left out.
    pub settings: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    pub submitted: u64,
    pub skipped: u64,
    pub failed: u64,
    /// `12s ago`, or `-` when never.
    pub last_scan: String,
    pub last_submit: String,
    /// (name, URL, latest phase when the run is in the cache).
    pub last_run: Option<(String, String, Option<String>)>,
    /// The `Ready` condition: badge text (`Ready`, `Not ready`, `Suspended`, `Unknown`), the
    /// badge's phase class, its reason and message.
    pub ready: &'static str,
    pub ready_class: &'static str,
    pub ready_reason: String,
    pub ready_message: String,
    pub last_error: String,
}

/// A trigger as the Dag page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerLink {
    pub name: String,
    /// The id of its row on the Triggers page.
    pub anchor: String,
    pub source: String,
    pub ready: &'static str,
    pub ready_class: &'static str,
}

/// URL of the Triggers page of one Dag.
pub fn dag_triggers_url(namespace: &str, dag: &str) -> String {
    format!("{}/triggers", dag_url(namespace, dag))
}

impl TriggerRow {
    /// The row of `trigger` at `now`; `phase_of` gives a run's phase from the cache.
    pub fn of(trigger: &DagTrigger, now: Timestamp, phase_of: impl Fn(&str, &str) -> Option<String>) -> TriggerRow {
        let namespace = trigger.namespace().unwrap_or_default();
        let status = trigger.status.clone().unwrap_or_default();
        let spec = &trigger.spec;
        let (ready, ready_class) = ready_badge(trigger);
        let condition = status.conditions.iter().find(|c| c.type_ == "Ready");
        let ago = |t: Option<&Time>| t.map_or("-".to_string(), |t| human::age(Some(t), now) + " ago");
        TriggerRow {
            dag: spec.dag_ref.name.clone(),
            dag_url: dag_url(&namespace, &spec.dag_ref.name),
            suspended: spec.suspend,
            source: spec.source_name().unwrap_or("none").to_string(),
            settings: settings(trigger),
            params: spec.params.clone().into_iter().collect(),
            submitted: status.submitted,
            skipped: status.skipped,
            failed: status.failed,
            last_scan: ago(status.last_scan_time.as_ref()),
            last_submit: ago(status.last_submit_time.as_ref()),
            last_run: status.last_run.as_ref().map(|run| {
                let phase = phase_of(&namespace, run);
                (run.clone(), run_url(&namespace, run), phase)
            }),
            ready,
            ready_class,
            ready_reason: condition.map(|c| c.reason.clone()).unwrap_or_default(),
            ready_message: condition.map(|c| c.message.clone()).unwrap_or_default(),
            last_error: status.last_error.clone().unwrap_or_default(),
            anchor: anchor(trigger),
            name: trigger.name_any(),
            namespace,
        }
    }
}

impl TriggerLink {
    pub fn of(trigger: &DagTrigger) -> TriggerLink {
        let (ready, ready_class) = ready_badge(trigger);
        TriggerLink {
            anchor: anchor(trigger),
            name: trigger.name_any(),
            source: trigger.spec.source_name().unwrap_or("none").to_string(),
            ready,
            ready_class,
        }
    }
}

/// `trigger-NS-NAME`: namespaces and names are DNS labels, so it is unique and a valid id.
fn anchor(trigger: &DagTrigger) -> String {
    format!(
        "trigger-{}-{}",
        trigger.namespace().unwrap_or_default(),
        trigger.name_any()
    )
}

/// The `Ready` condition as a badge: (text, `.phase-*` class).
fn ready_badge(trigger: &DagTrigger) -> (&'static str, &'static str) {
    let condition = trigger
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    match condition {
        Some(c) if c.status == "True" => ("Ready", "succeeded"),
        Some(c) if c.reason == "Suspended" => ("Suspended", "cancelled"),
        Some(c) if c.status == "False" => ("Not ready", "failed"),
        _ => ("Unknown", "pending"),
    }
}

/// The source's settings, in the order of the spec's fields.
fn settings(trigger: &DagTrigger) -> Vec<(String, String)> {
    let spec = &trigger.spec;
    let mut out: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &spec.schedule {
        out.push(("cron", s.cron.clone()));
        out.push(("timeZone", s.time_zone.clone().unwrap_or_else(|| "UTC".into())));
        let policy = match s.concurrency_policy {
            ConcurrencyPolicy::Allow => "Allow",
            ConcurrencyPolicy::Forbid => "Forbid",
            ConcurrencyPolicy::Replace => "Replace",
        };
        out.push(("concurrencyPolicy", policy.into()));
        if let Some(deadline) = s.starting_deadline_seconds {
            out.push(("startingDeadlineSeconds", deadline.to_string()));
        }
    } else if let Some(d) = &spec.directory {
        out.push(("volume", volume_label(&d.volume)));
        out.extend(d.path.clone().map(|p| ("path", p)));
        out.extend(d.pattern.clone().map(|p| ("pattern", p)));
        out.push(("settleSeconds", d.settle_seconds.to_string()));
        if d.recursive {
            out.push(("recursive", "true".into()));
        }
    } else if let Some(b) = &spec.bucket {
        out.push(("endpoint", b.endpoint.clone()));
        out.push(("bucket", b.bucket.clone()));
        out.extend(b.prefix.clone().map(|p| ("prefix", p)));
        out.extend(b.pattern.clone().map(|p| ("pattern", p)));
        out.extend(b.credentials_secret.clone().map(|s| ("credentialsSecret", s)));
    }
    out.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// What a watched volume is: its claim, host path or NFS export, else its name.
fn volume_label(volume: &Volume) -> String {
    if let Some(pvc) = &volume.persistent_volume_claim {
        format!("PVC {}", pvc.claim_name)
    } else if let Some(host) = &volume.host_path {
        format!("hostPath {}", host.path)
    } else if let Some(nfs) = &volume.nfs {
        format!("NFS {}:{}", nfs.server, nfs.path)
    } else {
        format!("volume {}", volume.name)
    }
}

/// The live-update stream of the Triggers page (all, or one Dag's).
pub fn live_url(namespace_and_dag: Option<(&str, &str)>) -> String {
    match namespace_and_dag {
        Some((ns, dag)) => format!("/live?ns={}&dag={}", encode(ns), encode(dag)),
        None => "/live".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BucketSource, DagRef, DagTriggerSpec, DagTriggerStatus, DirectorySource, ScheduleSource};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn trigger(spec: DagTriggerSpec, status: Option<DagTriggerStatus>) -> DagTrigger {
        let mut t = DagTrigger::new("nightly", spec);
        t.metadata.namespace = Some("ns".into());
        t.status = status;
        t
    }

    fn ready(status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn a_schedule_shows_its_settings_counts_times_and_last_run() {
        let spec = DagTriggerSpec {
            dag_ref: DagRef { name: "img".into() },
            params: [("when".to_string(), "$(schedule.time)".to_string())].into(),
            schedule: Some(ScheduleSource {
                cron: "*/5 * * * *".into(),
                concurrency_policy: ConcurrencyPolicy::Forbid,
                starting_deadline_seconds: Some(120),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = DagTriggerStatus {
            submitted: 7,
            skipped: 2,
            failed: 1,
            last_scan_time: Some(at(90)),
            last_submit_time: Some(at(40)),
            last_run: Some("nightly-123".into()),
            conditions: vec![ready("True", "Active", "")],
            ..Default::default()
        };
        let now = Timestamp::from_second(100).unwrap();
        let row = TriggerRow::of(&trigger(spec, Some(status)), now, |ns, run| {
            (ns == "ns" && run == "nightly-123").then(|| "Running".to_string())
        });
        assert_eq!((row.submitted, row.skipped, row.failed), (7, 2, 1));
        assert_eq!(row.source, "schedule");
        let settings: Vec<String> = row.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            settings,
            [
                "cron=*/5 * * * *",
                "timeZone=UTC",
                "concurrencyPolicy=Forbid",
                "startingDeadlineSeconds=120"
            ]
        );
        assert_eq!(
            (row.last_scan.as_str(), row.last_submit.as_str()),
            ("10s ago", "1m0s ago")
        );
        assert_eq!(
            row.last_run,
            Some((
                "nightly-123".into(),
                "/ns/ns/runs/nightly-123".into(),
                Some("Running".into())
            ))
        );
        assert_eq!((row.ready, row.ready_class), ("Ready", "succeeded"));
        assert_eq!(row.dag_url, "/ns/ns/dags/img");
        assert_eq!(row.anchor, "trigger-ns-nightly");
    }

    #[test]
    fn a_broken_trigger_shows_its_error_and_never_ran() {
        let spec = DagTriggerSpec {
            dag_ref: DagRef { name: "gone".into() },
            bucket: Some(BucketSource {
                endpoint: "http://s3:9000".into(),
                bucket: "in".into(),
                prefix: Some("raw/".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = DagTriggerStatus {
            last_error: Some("DagMissing: Dag \"gone\" not found".into()),
            conditions: vec![ready("False", "DagMissing", "Dag \"gone\" not found")],
            ..Default::default()
        };
        let row = TriggerRow::of(&trigger(spec, Some(status)), Timestamp::UNIX_EPOCH, |_, _| None);
        assert_eq!((row.ready, row.ready_class), ("Not ready", "failed"));
        assert_eq!(row.ready_reason, "DagMissing");
        assert!(row.last_error.starts_with("DagMissing"));
        assert_eq!((row.last_scan.as_str(), row.last_run.clone()), ("-", None));
        let keys: Vec<&str> = row.settings.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["endpoint", "bucket", "prefix"]);
        let page = TriggersPage {
            chrome: Chrome::default(),
            alert: None,
            rows: vec![row],
            all_namespaces: false,
            dag: None,
            empty_note: String::new(),
        };
        let html = super::super::render(&page);
        assert!(
            html.contains(r#"<tr data-trigger="nightly" id="trigger-ns-nightly">"#),
            "{html}"
        );
        assert!(html.contains("DagMissing: Dag &#34;gone&#34; not found"), "{html}");
    }

    #[test]
    fn no_status_yet_is_unknown_and_suspension_is_its_own_badge() {
        let volume: Volume =
            serde_json::from_value(serde_json::json!({"name": "in", "persistentVolumeClaim": {"claimName": "raw"}}))
                .unwrap();
        let spec = DagTriggerSpec {
            dag_ref: DagRef { name: "img".into() },
            suspend: true,
            directory: Some(DirectorySource {
                volume,
                pattern: Some("*.fits".into()),
                settle_seconds: 10,
                recursive: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let fresh = trigger(spec.clone(), None);
        assert_eq!(TriggerLink::of(&fresh).ready, "Unknown");
        let row = TriggerRow::of(&fresh, Timestamp::UNIX_EPOCH, |_, _| None);
        assert_eq!(row.settings[0], ("volume".to_string(), "PVC raw".to_string()));
        assert!(row.settings.contains(&("recursive".to_string(), "true".to_string())));
        let suspended = trigger(
            spec,
            Some(DagTriggerStatus {
                conditions: vec![ready("False", "Suspended", "spec.suspend is true")],
                ..Default::default()
            }),
        );
        let link = TriggerLink::of(&suspended);
        assert_eq!((link.ready, link.source.as_str()), ("Suspended", "directory"));
    }
}
