//! Why a step's pod is not running, as Kubernetes reports it, and whether the attempt should be
//! given up: the classification behind [`JobState::Waiting`] and [`JobState::CannotStart`].
//!
//! Rules (bound = the operator's `--pod-start-timeout`, measured from the Job's creation):
//! - A container waiting with a reason that can never clear (`InvalidImageName`) fails the
//!   attempt at once.
//! - A container waiting with an error that may clear (`ErrImagePull`, `ImagePullBackOff`,
//!   `ErrImageNeverPull`, `CreateContainerConfigError`, `CreateContainerError`,
//!   `RunContainerError`, ...) waits, showing the reason, and fails the attempt once the bound has
//!   passed: a pull error that clears within the bound does not fail the step.
//! - A pod the API server refuses to create (the Job's `FailedCreate` events: quota, Pod Security,
//!   admission webhooks, a missing ServiceAccount) and a pod stuck creating its container with
//!   warnings (`FailedMount`, `FailedCreatePodSandBox`, ...) are the same: wait, then fail.
//! - A pod that waits for a PersistentVolumeClaim (the run's workspace or a volume of its own)
//!   that is not bound, or that the scheduler reports unschedulable because of a claim, waits,
//!   naming the claim and the reason (e.g. the claim's `ProvisioningFailed` event), and fails the
//!   attempt once the bound has passed.
//! - A pod that is only unschedulable for now waits for capacity with no bound (a step's own
//!   `timeoutSeconds` still applies); its message says what it waits for.
//! - Causes that are the node's or the control plane's, not the step's, never fail it however
//!   long they last (a busy node is slow, not wrong): sandbox creation errors, runtime timeouts
//!   (`context deadline exceeded`), and pod creates that failed with a timeout. Their message is
//!   shown while the step waits.
//!
//! Re-checks: everything a cause is read from (the pod's status, Warning Events) is watched, and
//! the operator looks at the run again when it changes. The clock only matters for a step-caused
//! cause, which fails the attempt at the bound: that is the one re-check time this module asks
//! for. So a step that only waits (a busy Job controller, a slow node, no capacity) costs no
//! periodic reconciles, however long it waits, and a message changes only when its cause does
//! (no ticking age, which would be one status write per waiting step per re-check).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::plan::{JobState, WAITING_PREFIX};

/// Waiting reasons of a container that can never clear.
const NEVER_CLEARS: &[&str] = &["InvalidImageName"];
/// Waiting reasons of a container whose step is misconfigured (image, config), failed at the bound.
const STEP_ERRORS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];
/// Pod warnings while its container is being created that mean the step's volumes are wrong.
const MOUNT_ERRORS: &[&str] = &["FailedMount", "FailedAttachVolume"];
/// Parts of a message that say the cause is a timeout of the node or control plane.
const TRANSIENT: &[&str] = &[
    "deadline exceeded",
    "timeout",
    "timed out",
    "unable to return a response",
    // The node authorizer has not yet linked a new pod to its node (a saturated control plane):
    // the projected service-account token cannot be fetched yet. It clears by itself.
    "no relationship found between node",
];
/// Parts of a `FailedCreate` message that say the API server refused the pod itself.
const POD_REFUSED: &[&str] = &["forbidden", "is invalid", "denied the request", "not found"];
/// How often a waiting step is looked at again (seconds) while what it would be checked against
/// cannot be watched (the Warning Events are not listed yet, or its pod could not be read).
pub const RECHECK_SECONDS: i64 = 10;

/// What the pods of one step Job show, read from the pod status and Events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// `status.phase`: Pending, Running, Succeeded, Failed.
    pub phase: String,
    /// The message of condition `PodScheduled=False` with reason `Unschedulable`.
    pub unschedulable: Option<String>,
    /// The first container's `state.waiting` (reason, message).
    pub waiting: Option<(String, String)>,
    /// Warning Events of the pod, newest first: (reason, message).
    pub warnings: Vec<(String, String)>,
    /// The pod's PersistentVolumeClaims that are not bound (read only for unscheduled pods).
    pub unbound_claims: Vec<ClaimView>,
}

/// A PersistentVolumeClaim a pod waits for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimView {
    pub name: String,
    /// `status.phase` (`Pending`, `Lost`), or `not found`.
    pub phase: String,
    /// Warning Events of the claim, newest first: (reason, message), e.g. `ProvisioningFailed`.
    pub warnings: Vec<(String, String)>,
}

/// Everything known about a created step Job whose pod is not running. Messages of
/// [`JobState::Waiting`] start with [`WAITING_PREFIX`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartView {
    pub job_created_at: Option<Time>,
    pub pods: Vec<PodView>,
    /// Messages of the Job's `FailedCreate` Events, newest first.
    pub create_failures: Vec<String>,
}

/// The attempt's state: `Active` when a pod runs (or ran), else `Waiting` or `CannotStart` per
/// the module rules. `bound_seconds` is the start bound.
pub fn classify(view: &StartView, now: &Time, bound_seconds: i64) -> JobState {
    if view
        .pods
        .iter()
        .any(|p| matches!(p.phase.as_str(), "Running" | "Succeeded" | "Failed"))
    {
        return JobState::Active;
    }
    let age = view
        .job_created_at
        .as_ref()
        .map_or(0, |t| now.0.duration_since(t.0).as_secs().max(0));
    let Some(pod) = view.pods.first() else {
        let cause = view
            .create_failures
            .first()
            .map(|m| format!("the pod could not be created: {m}"));
        let refused = view
            .create_failures
            .first()
            .is_some_and(|m| step_caused(m, POD_REFUSED));
        return within_bound(cause, refused, age, bound_seconds);
    };
    if let Some(cause) = claim_cause(pod) {
        return within_bound(Some(cause), true, age, bound_seconds);
    }
    if let Some(message) = &pod.unschedulable {
        return JobState::Waiting {
            message: Some(format!("{WAITING_PREFIX}for capacity: {message}")),
            recheck_after_seconds: None,
        };
    }
    match &pod.waiting {
        Some((reason, message)) if NEVER_CLEARS.contains(&reason.as_str()) => JobState::CannotStart {
            message: cause(reason, message),
        },
        Some((reason, message)) if STEP_ERRORS.contains(&reason.as_str()) => {
            // A registry that times out is still the step's image; a runtime timeout is the node's.
            let step_caused = reason != "CreateContainerError" || !TRANSIENT.iter().any(|t| message.contains(t));
            within_bound(Some(cause(reason, message)), step_caused, age, bound_seconds)
        }
        Some((reason, message)) if !matches!(reason.as_str(), "ContainerCreating" | "PodInitializing") => {
            within_bound(Some(cause(reason, message)), false, age, bound_seconds)
        }
        _ => {
            let warning = pod.warnings.first();
            let mount =
                warning.is_some_and(|(reason, m)| MOUNT_ERRORS.contains(&reason.as_str()) && step_caused(m, &[""]));
            within_bound(
                warning.map(|(reason, message)| cause(reason, message)),
                mount,
                age,
                bound_seconds,
            )
        }
    }
}

/// What the pod waits for when it is a claim: its unbound claims (with their newest warning), or
/// the scheduler's message when it is about a claim.
fn claim_cause(pod: &PodView) -> Option<String> {
    let unschedulable = pod.unschedulable.as_deref();
    if let Some(claim) = pod.unbound_claims.first() {
        let mut cause = format!("claim {:?} is not bound ({})", claim.name, claim.phase);
        if let Some((reason, message)) = claim.warnings.first() {
            cause = format!("{cause}: {}", self::cause(reason, message));
        } else if let Some(message) = unschedulable {
            cause = format!("{cause}: {message}");
        }
        return Some(cause);
    }
    unschedulable
        .filter(|m| m.to_ascii_lowercase().contains("persistentvolumeclaim"))
        .map(|m| format!("unschedulable because of a claim: {m}"))
}

fn cause(reason: &str, message: &str) -> String {
    if message.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}: {message}")
    }
}

/// Whether `message` names one of `markers` and no timeout.
fn step_caused(message: &str, markers: &[&str]) -> bool {
    let lower = message.to_ascii_lowercase();
    markers.iter().any(|m| lower.contains(m)) && !TRANSIENT.iter().any(|t| lower.contains(t))
}

/// Waits while `age` is below the bound; past it, a cause that is the step's (`step_caused`)
/// fails the attempt, and until then the step is looked at again exactly at the bound. Without
/// such a cause (the node, the Job controller or the kubelet is only slow or briefly failing) it
/// keeps waiting, showing the cause, with no re-check time: only a change of the pod or a new
/// Warning can change the answer.
fn within_bound(cause: Option<String>, step_caused: bool, age: i64, bound: i64) -> JobState {
    match cause {
        Some(message) if step_caused && age >= bound => JobState::CannotStart {
            message: format!("{message} (the pod did not start within {bound}s)"),
        },
        Some(message) if step_caused => JobState::Waiting {
            recheck_after_seconds: Some(bound - age),
            message: Some(format!(
                "{WAITING_PREFIX}for the pod to start (up to {bound}s): {message}"
            )),
        },
        message => JobState::Waiting {
            recheck_after_seconds: None,
            message: message.map(|m| format!("{WAITING_PREFIX}for the pod to start: {m}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(1_700_000_000 + secs).unwrap())
    }

    fn pending(waiting: Option<(&str, &str)>) -> PodView {
        PodView {
            phase: "Pending".into(),
            waiting: waiting.map(|(r, m)| (r.into(), m.into())),
            ..Default::default()
        }
    }

    fn view(pods: Vec<PodView>, create_failures: &[&str]) -> StartView {
        StartView {
            job_created_at: Some(t(0)),
            pods,
            create_failures: create_failures.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn message_of(state: &JobState) -> String {
        match state {
            JobState::CannotStart { message } => message.clone(),
            JobState::Waiting { message, .. } => message.clone().unwrap_or_default(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn pull_errors_wait_within_the_bound_then_fail_naming_reason_and_image() {
        let msg = r#"Back-off pulling image "kubedag.local/no-such-image:9""#;
        let v = view(vec![pending(Some(("ImagePullBackOff", msg)))], &[]);
        let early = classify(&v, &t(30), 90);
        assert!(matches!(early, JobState::Waiting { .. }), "{early:?}");
        assert!(message_of(&early).contains("ImagePullBackOff"));
        let late = classify(&v, &t(90), 90);
        assert!(matches!(late, JobState::CannotStart { .. }), "{late:?}");
        let m = message_of(&late);
        assert!(
            m.contains("ImagePullBackOff") && m.contains("no-such-image:9") && m.contains("90s"),
            "{m}"
        );
    }

    #[test]
    fn invalid_image_names_fail_at_once() {
        let v = view(vec![pending(Some(("InvalidImageName", "bad ref")))], &[]);
        assert!(matches!(classify(&v, &t(1), 90), JobState::CannotStart { .. }));
    }

    #[test]
    fn config_errors_and_refused_pods_fail_after_the_bound() {
        let config = view(
            vec![pending(Some((
                "CreateContainerConfigError",
                "configmap \"x\" not found",
            )))],
            &[],
        );
        assert!(message_of(&classify(&config, &t(100), 90)).contains("configmap \"x\" not found"));
        let refused = view(
            vec![],
            &["pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\""],
        );
        let waiting = classify(&refused, &t(10), 90);
        assert!(matches!(waiting, JobState::Waiting { .. }));
        let failed = classify(&refused, &t(95), 90);
        assert!(matches!(failed, JobState::CannotStart { .. }));
        assert!(message_of(&failed).contains("violates PodSecurity"));
    }

    #[test]
    fn mount_failures_while_creating_fail_after_the_bound() {
        let mut pod = pending(Some(("ContainerCreating", "")));
        pod.warnings = vec![(
            "FailedMount".into(),
            "MountVolume.SetUp failed: configmap \"cfg\" not found".into(),
        )];
        let v = view(vec![pod], &[]);
        assert!(matches!(classify(&v, &t(5), 90), JobState::Waiting { .. }));
        assert!(message_of(&classify(&v, &t(91), 90)).starts_with("FailedMount"));
    }

    #[test]
    fn a_busy_node_or_control_plane_never_fails_a_step() {
        let mut sandbox = pending(Some(("ContainerCreating", "")));
        sandbox.warnings = vec![(
            "FailedCreatePodSandBox".into(),
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded".into(),
        )];
        let timeout = pending(Some(("CreateContainerError", "context deadline exceeded")));
        let slow_create = view(
            vec![],
            &["Error creating: Timeout: request did not complete within requested timeout"],
        );
        for v in [view(vec![sandbox], &[]), view(vec![timeout], &[]), slow_create] {
            let state = classify(&v, &t(10_000), 90);
            assert!(matches!(state, JobState::Waiting { message: Some(_), .. }), "{state:?}");
        }
    }

    #[test]
    fn unschedulable_pods_wait_for_capacity_without_a_bound() {
        let mut pod = pending(None);
        pod.unschedulable = Some("0/1 nodes are available: 1 Insufficient cpu.".into());
        let state = classify(&view(vec![pod], &[]), &t(100_000), 90);
        assert!(matches!(state, JobState::Waiting { .. }));
        assert!(message_of(&state).starts_with("waiting for capacity: 0/1 nodes"));
    }

    #[test]
    fn unbound_claims_wait_then_fail_naming_the_claim_and_reason() {
        let mut pod = pending(None);
        pod.unbound_claims = vec![ClaimView {
            name: "r-ws-abc123".into(),
            phase: "Pending".into(),
            warnings: vec![(
                "ProvisioningFailed".into(),
                "storageclass.storage.k8s.io \"nope\" not found".into(),
            )],
        }];
        let v = view(vec![pod], &[]);
        let early = classify(&v, &t(20), 90);
        assert!(matches!(early, JobState::Waiting { .. }), "{early:?}");
        let late = classify(&v, &t(90), 90);
        assert!(matches!(late, JobState::CannotStart { .. }), "{late:?}");
        let m = message_of(&late);
        assert!(
            m.contains("claim \"r-ws-abc123\" is not bound (Pending)")
                && m.contains("ProvisioningFailed")
                && m.contains("90s"),
            "{m}"
        );
    }

    #[test]
    fn unschedulable_because_of_a_claim_is_not_a_capacity_wait() {
        let mut pod = pending(None);
        pod.unschedulable = Some("0/1 nodes are available: persistentvolumeclaim \"data\" not found.".into());
        let state = classify(&view(vec![pod.clone()], &[]), &t(100), 90);
        assert!(matches!(state, JobState::CannotStart { .. }), "{state:?}");
        assert!(message_of(&state).contains("persistentvolumeclaim \"data\" not found"));
        pod.unschedulable = Some("0/1 nodes are available: 1 Insufficient memory.".into());
        let capacity = classify(&view(vec![pod], &[]), &t(100), 90);
        assert!(
            message_of(&capacity).starts_with("waiting for capacity"),
            "{capacity:?}"
        );
    }

    #[test]
    fn slow_but_healthy_starts_never_fail() {
        let none = view(vec![], &[]);
        assert!(matches!(
            classify(&none, &t(1000), 90),
            JobState::Waiting { message: None, .. }
        ));
        let creating = view(vec![pending(Some(("ContainerCreating", "")))], &[]);
        assert!(matches!(
            classify(&creating, &t(1000), 90),
            JobState::Waiting { message: None, .. }
        ));
        let running = view(
            vec![PodView {
                phase: "Running".into(),
                ..Default::default()
            }],
            &[],
        );
        assert_eq!(classify(&running, &t(1000), 90), JobState::Active);
    }

    fn recheck_of(state: &JobState) -> Option<i64> {
        match state {
            JobState::Waiting {
                recheck_after_seconds, ..
            } => *recheck_after_seconds,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_step_caused_wait_is_looked_at_again_exactly_at_the_bound() {
        let v = view(vec![pending(Some(("ErrImagePull", "x")))], &[]);
        assert_eq!(recheck_of(&classify(&v, &t(85), 90)), Some(5));
        assert_eq!(recheck_of(&classify(&v, &t(0), 90)), Some(90));
        let refused = view(vec![], &["pods \"p\" is forbidden: exceeded quota"]);
        assert_eq!(recheck_of(&classify(&refused, &t(30), 90)), Some(60));
    }

    /// Waits that no clock can end are left to the watches: no re-check time at any age, before
    /// or long after the bound (bench (c) measured a re-check every second past the bound).
    #[test]
    fn waits_the_bound_does_not_end_ask_for_no_recheck_at_any_age() {
        let mut capacity = pending(None);
        capacity.unschedulable = Some("0/1 nodes are available".into());
        let mut sandbox = pending(Some(("ContainerCreating", "")));
        sandbox.warnings = vec![("FailedCreatePodSandBox".into(), "context deadline exceeded".into())];
        let views = [
            view(vec![], &[]),
            view(vec![pending(Some(("ContainerCreating", "")))], &[]),
            view(vec![capacity], &[]),
            view(vec![sandbox], &[]),
            view(
                vec![pending(Some(("CreateContainerError", "context deadline exceeded")))],
                &[],
            ),
            view(vec![], &["Error creating: Timeout: request did not complete"]),
        ];
        for v in &views {
            for age in [0, 11, 89, 90, 91, 600, 100_000] {
                assert_eq!(recheck_of(&classify(v, &t(age), 90)), None, "{v:?} at {age}s");
            }
        }
    }

    #[test]
    fn a_waiting_message_changes_only_with_its_cause() {
        let v = view(vec![pending(Some(("ErrImagePull", "x")))], &[]);
        assert_eq!(
            message_of(&classify(&v, &t(20), 90)),
            message_of(&classify(&v, &t(60), 90))
        );
        let timeout = view(
            vec![pending(Some(("CreateContainerError", "context deadline exceeded")))],
            &[],
        );
        assert_eq!(
            message_of(&classify(&timeout, &t(20), 90)),
            message_of(&classify(&timeout, &t(900), 90))
        );
    }
}
