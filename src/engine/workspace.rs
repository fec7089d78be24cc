//! The per-run workspace (`spec.workspace`): when its claim must exist ([`gate`]: before the
//! run's first Job, created by `controller::workspace`) and how it appears in a step's pod
//! ([`mount`]).

use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume, VolumeMount};

use crate::api::{ContainerSettings, DagRun, DagRunStatus, Workspace};

use super::naming;
use super::run::Need;

/// Re-try interval (seconds) of a workspace claim create that was refused for a cause that may
/// clear (a quota, a policy, an earlier claim of the same name awaiting deletion).
pub const RETRY_SECONDS: u64 = 10;
/// Prefix of the run's message while its workspace claim cannot be created yet.
const WAITING: &str = "waiting to create workspace claim";

/// The outcome of creating the run's workspace claim ([`Need::Workspace`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceClaim {
    /// Created now, or it exists and belongs to the run.
    Created,
    /// Refused for a cause that may clear; `message` names it. Nothing launches; tried again.
    Waiting { message: String },
    /// Refused for good (an invalid claim spec): the run fails with `message`.
    Refused { message: String },
}

/// What the workspace means for a round of a Running run.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// No workspace, it exists already, or the run is cancelled: plan.
    Proceed,
    /// Create the claim first.
    Ask(Need),
    /// Launch nothing yet; the status message says why; try again in [`RETRY_SECONDS`].
    Wait,
    /// The run fails with this message.
    Fail(String),
}

/// The gate of `run` (its status `status`, updated: `workspaceClaim` once created, the waiting
/// message) given the outcome of this pass's create, if tried.
pub fn gate(run: &DagRun, status: &mut DagRunStatus, outcome: Option<&WorkspaceClaim>) -> Gate {
    let workspace = status.dag_spec.as_deref().and_then(|s| s.workspace.as_ref());
    let Some(workspace) = workspace.filter(|_| status.workspace_claim.is_none() && !run.spec.cancel) else {
        return Gate::Proceed;
    };
    let meta = &run.metadata;
    let claim = naming::workspace_claim(
        meta.name.as_deref().unwrap_or_default(),
        meta.uid.as_deref().unwrap_or_default(),
    );
    match outcome {
        None => Gate::Ask(Need::Workspace {
            claim,
            template: Box::new(workspace.volume_claim_template.spec.clone()),
        }),
        Some(WorkspaceClaim::Created) => {
            if status.message.as_deref().is_some_and(|m| m.starts_with(WAITING)) {
                status.message = None;
            }
            status.workspace_claim = Some(claim);
            Gate::Proceed
        }
        Some(WorkspaceClaim::Waiting { message }) => {
            status.message = Some(format!("{WAITING} {claim}: {message}"));
            Gate::Wait
        }
        Some(WorkspaceClaim::Refused { message }) => {
            Gate::Fail(format!("the API server refused workspace claim {claim}: {message}"))
        }
    }
}

/// The pod volume name of the workspace; reserved (a Dag's own volumes may not use it).
pub const VOLUME_NAME: &str = "kubedag-workspace";

/// `settings` with the workspace claim `claim` as volume [`VOLUME_NAME`] mounted at the
/// workspace's `mountPath`; unchanged without a workspace. Validation keeps user volumes and
/// mounts from colliding with it.
pub fn mount(mut settings: ContainerSettings, workspace: Option<&Workspace>, claim: &str) -> ContainerSettings {
    let Some(workspace) = workspace else {
        return settings;
    };
    settings.volumes.push(Volume {
        name: VOLUME_NAME.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: None,
        }),
        ..Default::default()
    });
    settings.volume_mounts.push(VolumeMount {
        name: VOLUME_NAME.into(),
        mount_path: workspace.mount_path.clone(),
        ..Default::default()
    });
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_is_mounted_at_the_mount_path_and_nothing_without_a_workspace() {
        let ws = Workspace {
            mount_path: "/workspace".into(),
            ..Default::default()
        };
        let got = mount(ContainerSettings::default(), Some(&ws), "r-ws-abc123");
        assert_eq!(got.volumes.len(), 1);
        let claim = got.volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(claim.claim_name, "r-ws-abc123");
        assert_eq!(got.volume_mounts[0].mount_path, "/workspace");
        assert_eq!(got.volume_mounts[0].name, VOLUME_NAME);
        assert_eq!(
            mount(ContainerSettings::default(), None, "x"),
            ContainerSettings::default()
        );
    }
}
