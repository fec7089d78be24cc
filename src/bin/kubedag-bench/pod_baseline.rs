//! The plain-client Pod baseline, beside the Job one (Argo creates Pods, kubedag Jobs): Pods of
//! the operator's step pod spec (the baseline Job's template, on the simulated node) created by
//! `BENCH_CONCURRENCY` parallel workers of the same Rust client, in the baseline's namespace.
//! Reported: Pods/s created (watch-observed), the latency of one create, and the Pod pipeline
//! rate (created -> scheduled -> simulated -> seen `Succeeded`), which bounds Argo's steps.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Serialize;

use crate::baseline::{baseline_job, wait_jobs_complete};
use crate::clock::{log, now};
use crate::config::Config;
use crate::recorder::{Recording, Unit};
use crate::stats::{Dist, ms_dist, rates, round2};
use crate::{BoxError, Res};

/// The Pod baseline's figures (`baseline.pods` in latest.json).
#[derive(Serialize, Default, Clone, Debug)]
pub struct PodBaselineResult {
    pub pods: usize,
    pub concurrency: usize,
    /// Pods/s of `create` (watch-observed: first to last Pod seen).
    pub create_pods_per_s: f64,
    /// Client-timed latency of one create.
    pub create_latency_ms: Dist,
    /// Pods/s through the whole pipeline (first seen -> last seen Succeeded).
    pub completion_pods_per_s: f64,
}

/// Pod `name` of namespace `ns`: the pod template of the baseline's Job `i`.
fn baseline_pod(ns: &str, name: &str, i: usize) -> Res<Pod> {
    let job = baseline_job(ns, name, "holder-0", i)?;
    let template = job.spec.map(|s| s.template).ok_or("the baseline Job has no template")?;
    let mut pod = Pod {
        metadata: template.metadata.unwrap_or_default(),
        spec: template.spec,
        ..Pod::default()
    };
    pod.metadata.name = Some(name.into());
    pod.metadata.namespace = Some(ns.into());
    Ok(pod)
}

/// Creates `BENCH_BASELINE_JOBS` Pods `p-NNNNN` in `ns` and waits until they are done (600 s).
pub async fn pods(client: &Client, cfg: &Config, ns: &str) -> Res<PodBaselineResult> {
    let (n, workers) = (cfg.baseline_jobs, cfg.concurrency as usize);
    let recording = Recording::watching(client, ns, Unit::Pod, None).await;
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    log(format!("baseline: {n} Pod creates, {workers} in parallel"));
    let samples = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let pod = baseline_pod(ns, &format!("p-{i:05}"), i)?;
                let start = now();
                api.create(&PostParams::default(), &pod).await?;
                Ok::<f64, BoxError>(now() - start)
            }
        })
        .buffer_unordered(workers)
        .collect::<Vec<_>>()
        .await;
    let ok: Vec<f64> = samples.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    if ok.len() < n {
        log(format!("baseline: {} Pod creates failed", n - ok.len()));
    }
    wait_jobs_complete(&recording.rec, "p-", ok.len(), 600.0).await;
    let rec = recording.stop();
    let pods = rec.jobs_named("p-");
    let mut added: Vec<f64> = pods.iter().map(|p| p.added).collect();
    let (rate, _) = rates(&mut added);
    let first = added.first().copied().unwrap_or(0.0);
    let last_done = pods.iter().filter_map(|p| p.complete).fold(0.0, f64::max);
    let result = PodBaselineResult {
        pods: n,
        concurrency: workers,
        create_pods_per_s: round2(rate.unwrap_or(0.0)),
        create_latency_ms: ms_dist(ok),
        completion_pods_per_s: round2(pods.len() as f64 / (last_done - first).max(1e-9)),
    };
    log(format!(
        "baseline: Pods {:.1}/s created (p99 create {:.0} ms), pipeline {:.1} Pods/s",
        result.create_pods_per_s, result.create_latency_ms.p99, result.completion_pods_per_s
    ));
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_pod_is_the_baseline_jobs_pod_on_the_simulated_node() {
        let pod = baseline_pod("ns", "p-00001", 1).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("p-00001"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.node_selector.unwrap()[crate::sim_node::SIM_LABEL], "true");
        assert_eq!(pod.metadata.labels.unwrap()["kubedag.io/step"], "s1");
    }
}
