//! Status writes through the status subresource, guarded by resourceVersion (invariant 5). A write
//! is only a write: what follows from a new status (claims, queue, counts) is the state machine's
//! `Reactions`, carried out by `run::react`.

use kube::api::PostParams;
use kube::{Api, ResourceExt};

use crate::api::{DagRun, DagRunStatus};

use super::{Context, Error};

/// Replaces the run's status, failing with a 409 conflict if the run changed since `run` was
/// read; the reconcile is then retried from fresh state, so no transition is lost or overwritten.
/// Writes nothing (and returns false) when the status is unchanged.
pub async fn write(ctx: &Context, run: &DagRun, status: &DagRunStatus) -> Result<bool, Error> {
    if run.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let mut updated = run.clone();
    updated.status = Some(status.clone());
    updated.metadata.managed_fields = None;
    let api: Api<DagRun> = Api::namespaced(ctx.client.clone(), &run.namespace().unwrap_or_default());
    let stored = api
        .replace_status(&run.name_any(), &PostParams::default(), &updated)
        .await?;
    ctx.metrics.api_write("status");
    let uid = run.uid().unwrap_or_default();
    let remembered = (!status.phase.is_terminal())
        .then(|| stored.resource_version())
        .flatten();
    ctx.own_writes.record(&uid, remembered.as_deref());
    Ok(true)
}
