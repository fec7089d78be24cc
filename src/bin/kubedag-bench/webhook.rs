//! Workload (d), webhook admission latency: the operator restarted with its validating webhook
//! (served on 127.0.0.1, registered by URL, `failurePolicy: Fail`) in a namespace that already
//! holds many runs; timed `create` calls of new DagRuns with `dryRun=All` (admission runs, nothing
//! is stored), each paired with the same call in a control namespace the webhook leaves out.

use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kubedag::testkit::http::free_port;
use kubedag::testkit::operator::webhook_args;
use serde::Serialize;

use crate::clock::{log, now};
use crate::config::Config;
use crate::process::ProcStats;
use crate::shapes::{dagruns, run_object};
use crate::stats::{Dist, ms_dist, round2};
use crate::{BoxError, Res, namespaces, operator};

/// The name of the webhook configuration the benchmark's operator registers.
pub const WEBHOOK_CONFIG: &str = "kubedag-bench";

/// The webhook's figures (`webhook` in latest.json).
#[derive(Serialize, Default, Clone, Debug)]
pub struct WebhookResult {
    pub namespace: String,
    pub existing_runs: usize,
    pub samples: usize,
    /// `create` with dryRun=All of a new DagRun in a namespace the webhook does not cover.
    pub without_webhook_ms: Dist,
    /// The same with the operator's validating webhook registered (failurePolicy Fail).
    pub with_webhook_ms: Dist,
    pub overhead_p50_ms: f64,
    pub overhead_p99_ms: f64,
    pub operator: ProcStats,
}

/// One timed `create` with dryRun=All of a new DagRun (it passes admission, webhooks included,
/// and is not stored). None if it failed.
async fn dry_run_create(api: &Api<DynamicObject>, name: &str, dag: &str) -> Option<f64> {
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let object = run_object(name, dag, &format!("{name}.fits")).ok()?;
    let start = Instant::now();
    let result = api.create(&params, &object).await;
    let elapsed = start.elapsed().as_secs_f64();
    match result {
        Ok(_) => Some(elapsed),
        Err(err) => {
            log(format!("webhook: dry-run create {name} failed: {err}"));
            None
        }
    }
}

/// Whether the webhook answers: a dry-run create naming a missing Dag is refused by it (the CRD
/// schema alone accepts it).
async fn webhook_live(client: &Client, ns: &str) -> bool {
    let params = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let Ok(object) = run_object("probe", "no-such-dag", "probe.fits") else {
        return false;
    };
    matches!(dagruns(client, ns).create(&params, &object).await, Err(kube::Error::Api(e)) if e.message.contains("not found"))
}

/// Webhook admission latency: dry-run creates of new DagRuns in `ns` (the operator's namespace,
/// where the webhook is registered, with `existing` runs in its cache), each paired with the same
/// request in a control namespace that the webhook's namespaceSelector leaves out. The pairs are
/// interleaved, so both see the same control plane at the same moment.
pub async fn run(client: &Client, cfg: &Config, ns: &str, dag: &str, existing: usize) -> Res<WebhookResult> {
    let n = cfg.webhook_samples;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = configs.delete(WEBHOOK_CONFIG, &DeleteParams::default()).await;
    let control = cfg.namespace("d-control");
    namespaces::create(client, cfg, &control).await?;
    let extra = webhook_args(free_port(), WEBHOOK_CONFIG);
    let mut operator = operator::start(cfg, ns, "d", &extra)?;
    let result = async {
        operator::wait_ready(&mut operator).await?;
        let deadline = now() + 60.0;
        while !webhook_live(client, ns).await {
            if now() > deadline {
                return Err(BoxError::from("the webhook did not start refusing invalid runs within 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if webhook_live(client, &control).await {
            return Err(BoxError::from("the webhook also answers in the control namespace"));
        }
        operator::wait_idle(&operator).await;
        log(format!(
            "webhook: {n} dry-run creates through the webhook ({existing} runs in {ns}), interleaved with {n} in {control} (no webhook)"
        ));
        let (with_api, without_api) = (dagruns(client, ns), dagruns(client, &control));
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for i in 0..(n + 10) {
            let name = format!("dry-{i:05}");
            let (a, b) = if i % 2 == 0 {
                let a = dry_run_create(&with_api, &name, dag).await;
                (a, dry_run_create(&without_api, &name, dag).await)
            } else {
                let b = dry_run_create(&without_api, &name, dag).await;
                (dry_run_create(&with_api, &name, dag).await, b)
            };
            if i >= 10 {
                // The first 10 pairs warm up connections.
                with.extend(a);
                without.extend(b);
            }
        }
        Ok((with, without))
    }
    .await;
    let proc = operator::stop(operator).await;
    let _ = configs.delete(WEBHOOK_CONFIG, &DeleteParams::default()).await;
    namespaces::delete(client, &[control], Duration::from_secs(60)).await;
    let (with, without) = result?;
    let (without, with) = (ms_dist(without), ms_dist(with));
    let result = WebhookResult {
        namespace: ns.into(),
        existing_runs: existing,
        samples: n,
        overhead_p50_ms: round2(with.p50 - without.p50),
        overhead_p99_ms: round2(with.p99 - without.p99),
        without_webhook_ms: without,
        with_webhook_ms: with,
        operator: proc,
    };
    log(format!(
        "webhook: p50 {:.1} ms / p99 {:.1} ms with, {:.1} / {:.1} ms without",
        result.with_webhook_ms.p50,
        result.with_webhook_ms.p99,
        result.without_webhook_ms.p50,
        result.without_webhook_ms.p99
    ));
    Ok(result)
}
