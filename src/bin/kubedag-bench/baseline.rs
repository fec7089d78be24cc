//! The plain-client baseline, the physical limit of this control plane measured in the same run:
//! Jobs shaped like the operator's (same labels, env, pod spec, on the simulated node) created by
//! `BENCH_CONCURRENCY` parallel workers of the same Rust client, first alone, then each followed
//! by one status write (a merge patch of a DagRun's status). No operator watches its namespace.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubedag::testkit::STEP_IMAGE;
use serde::Serialize;
use serde_json::{Value, json};

use crate::clock::{log, now};
use crate::config::Config;
use crate::pod_baseline::{self, PodBaselineResult};
use crate::recorder::{Recorder, Recording};
use crate::shapes::{dagruns, run_object};
use crate::sim_node::SIM_LABEL;
use crate::stats::{Dist, ms_dist, rates, round2};
use crate::{BoxError, Res, namespaces};

/// The baseline's figures (`baseline` in latest.json).
#[derive(Serialize, Default, Clone, Debug)]
pub struct BaselineResult {
    pub jobs_per_phase: usize,
    pub concurrency: usize,
    /// Jobs/s of `create` alone (watch-observed: first to last Job seen).
    pub create_only_jobs_per_s: f64,
    /// Jobs/s when each Job create is followed by one status write (merge patch of a DagRun's status).
    pub create_and_status_jobs_per_s: f64,
    /// Same, timed by the client (first request sent to last response).
    pub create_and_status_client_jobs_per_s: f64,
    pub create_latency_ms: Dist,
    pub status_latency_ms: Dist,
    /// Jobs/s through the whole pipeline (created -> pod -> Complete) in the create+status phase.
    pub completion_jobs_per_s: f64,
    /// The Pod baseline, run after the Job phases.
    pub pods: PodBaselineResult,
}

/// A Job of the operator's shape: step `s<i>` of run `holder`, `true` on the simulated node.
pub fn baseline_job(ns: &str, name: &str, holder: &str, i: usize) -> Res<Job> {
    let labels = json!({
        "kubedag.io/dag": "baseline", "kubedag.io/run": holder, "kubedag.io/step": format!("s{i}"),
        "kubedag.io/attempt": "1", "kubedag.io/request-id": format!("req-{i}"),
        "kubedag.io/param-hash": "0123456789abcdef0123456789abcdef",
    });
    let env: Vec<Value> = [
        ("file", format!("f{i}.fits")),
        ("KUBEDAG_DAG", "baseline".into()),
        ("KUBEDAG_RUN", holder.into()),
        ("KUBEDAG_STEP", format!("s{i}")),
        ("KUBEDAG_REQUEST_ID", format!("req-{i}")),
        ("KUBEDAG_PARAM_HASH", "0".repeat(64)),
    ]
    .iter()
    .map(|(k, v)| json!({"name": k, "value": v}))
    .collect();
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "backoffLimit": 0, "completions": 1, "parallelism": 1,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never", "enableServiceLinks": false, "terminationGracePeriodSeconds": 5,
                    "nodeSelector": {SIM_LABEL: "true"}, "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "work", "image": STEP_IMAGE, "imagePullPolicy": "IfNotPresent",
                                    "command": ["sh", "-c", "true"], "env": env}],
                },
            },
        },
    }))?)
}

/// Waits until `n` Jobs (or Pods) named `prefix*` are done (false, logged, after `timeout` s).
pub async fn wait_jobs_complete(rec: &Recorder, prefix: &str, n: usize, timeout: f64) -> bool {
    let waited = rec
        .wait_for(
            n,
            now() + timeout,
            Duration::from_millis(250),
            |r| r.jobs_done(prefix),
            |_| {},
        )
        .await;
    if let Err(done) = waited {
        log(format!(
            "baseline: only {done}/{n} Jobs {prefix}* complete after {timeout} s"
        ));
    }
    waited.is_ok()
}

/// Runs the two Job phases, then the Pod baseline, in namespace `…-baseline`.
pub async fn baseline(client: &Client, cfg: &Config) -> Res<BaselineResult> {
    let ns = cfg.namespace("baseline");
    namespaces::create(client, cfg, &ns).await?;
    let n = cfg.baseline_jobs;
    let workers = cfg.concurrency as usize;
    // Status targets: DagRuns nobody reconciles here (no operator watches this namespace).
    let holders: Vec<String> = (0..workers.max(1)).map(|i| format!("holder-{i}")).collect();
    let runs = dagruns(client, &ns);
    for holder in &holders {
        runs.create(&PostParams::default(), &run_object(holder, "baseline", holder)?)
            .await?;
    }
    let recording = Recording::start(client, &ns).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);

    // Phase 1: Job creates only.
    log(format!("baseline: {n} Job creates, {workers} in parallel"));
    let create_only = futures::stream::iter(0..n)
        .map(|i| {
            let (jobs, ns) = (jobs.clone(), ns.clone());
            async move {
                let job = baseline_job(&ns, &format!("c-{i:05}"), "holder-0", i)?;
                jobs.create(&PostParams::default(), &job).await?;
                Ok::<(), BoxError>(())
            }
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await;
    let errors = create_only.iter().filter(|r| r.is_err()).count();
    if errors > 0 {
        log(format!("baseline: {errors} creates failed"));
    }
    wait_jobs_complete(&recording.rec, "c-", n - errors, 600.0).await;
    let mut create_only_times: Vec<f64> = recording.rec.jobs_named("c-").iter().map(|j| j.added).collect();
    let (create_only_rate, _) = rates(&mut create_only_times);

    // Phase 2: each Job create followed by a status write.
    log(format!("baseline: {n} Job creates each followed by a status write"));
    let t0 = now();
    let samples = futures::stream::iter(0..n)
        .map(|i| {
            let (jobs, runs, ns) = (jobs.clone(), runs.clone(), ns.clone());
            let holder = holders[i % holders.len()].clone();
            async move {
                let job = baseline_job(&ns, &format!("s-{i:05}"), &holder, i)?;
                let start = now();
                jobs.create(&PostParams::default(), &job).await?;
                let created = now();
                let patch = json!({"status": {"phase": "Running", "message": format!("job {i} created")}});
                runs.patch_status(&holder, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                Ok::<(f64, f64), BoxError>((created - start, now() - created))
            }
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await;
    let client_span = now() - t0;
    let ok: Vec<(f64, f64)> = samples.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    if ok.len() < n {
        log(format!("baseline: {} create+status pairs failed", n - ok.len()));
    }
    wait_jobs_complete(&recording.rec, "s-", ok.len(), 600.0).await;
    let rec = recording.stop();
    let phase2 = rec.jobs_named("s-");
    let mut added: Vec<f64> = phase2.iter().map(|j| j.added).collect();
    let (with_status_rate, _) = rates(&mut added);
    let first = added.first().copied().unwrap_or(0.0);
    let last_complete = phase2.iter().filter_map(|j| j.complete).fold(0.0, f64::max);
    let result = BaselineResult {
        jobs_per_phase: n,
        concurrency: workers,
        create_only_jobs_per_s: round2(create_only_rate.unwrap_or(0.0)),
        create_and_status_jobs_per_s: round2(with_status_rate.unwrap_or(0.0)),
        create_and_status_client_jobs_per_s: round2(ok.len() as f64 / client_span),
        create_latency_ms: ms_dist(ok.iter().map(|s| s.0).collect()),
        status_latency_ms: ms_dist(ok.iter().map(|s| s.1).collect()),
        completion_jobs_per_s: round2(phase2.len() as f64 / (last_complete - first).max(1e-9)),
        pods: pod_baseline::pods(client, cfg, &ns).await?,
    };
    log(format!(
        "baseline: create only {:.1} Jobs/s, create + status {:.1} Jobs/s, pipeline {:.1} Jobs/s",
        result.create_only_jobs_per_s, result.create_and_status_jobs_per_s, result.completion_jobs_per_s
    ));
    Ok(result)
}
