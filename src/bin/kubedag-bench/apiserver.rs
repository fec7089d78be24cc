//! The API server's own count of writes, neutral to both systems: `apiserver_request_total`
//! (scraped from the API server's `/metrics` through the driver's client) for the verbs that
//! write, by `"<VERB> <resource>[/<subresource>]"`. A workload's figure is the delta across it,
//! less what the driver and the simulated kubelet wrote themselves, less the background rate
//! measured before the workloads (the control plane is shared: other tests write too). What is
//! left is the system's own writes plus what the control plane wrote on its behalf (the Job
//! controller's pods and Job status, the scheduler's bindings, ...).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::Request;
use kube::Client;
use kubedag::testkit::metrics::Metrics;

use crate::clock::{log, now};

/// Writes by `"<VERB> <resource>[/<subresource>]"`.
pub type Counts = BTreeMap<String, f64>;

/// The verbs of `apiserver_request_total` that write.
const WRITE_VERBS: [&str; 6] = ["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"];

/// The write counts of one `/metrics` body (dry runs left out).
pub fn write_counts(metrics: &Metrics) -> Counts {
    let mut out = Counts::new();
    for (name, labels, value) in &metrics.0 {
        let label = |k: &str| labels.get(k).map(String::as_str).unwrap_or("");
        if name != "apiserver_request_total" || !WRITE_VERBS.contains(&label("verb")) || !label("dry_run").is_empty() {
            continue;
        }
        let resource = match label("subresource") {
            "" => label("resource").to_string(),
            sub => format!("{}/{sub}", label("resource")),
        };
        *out.entry(format!("{} {resource}", label("verb"))).or_insert(0.0) += value;
    }
    out
}

/// One scrape of the API server's write counts; `None` (logged) when `/metrics` cannot be read.
pub async fn scrape(client: &Client) -> Option<Counts> {
    let request = Request::get("/metrics").body(Vec::new()).ok()?;
    match client.request_text(request).await {
        Ok(text) => Some(write_counts(&Metrics::parse(&text))),
        Err(err) => {
            log(format!("API server /metrics: {err}"));
            None
        }
    }
}

/// `a − b − background × seconds` per key, keeping what stays above zero.
pub fn net(a: &Counts, b: &Counts, background: &Counts, seconds: f64) -> Counts {
    a.iter()
        .map(|(k, v)| {
            let less = b.get(k).copied().unwrap_or(0.0) + background.get(k).copied().unwrap_or(0.0) * seconds;
            (k.clone(), (v - less).round())
        })
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// The background write rate (per second, by key) over `window` with nothing of the benchmark
/// running but the simulated node's heartbeat. Empty when the API server's metrics cannot be read.
pub async fn background(client: &Client, window: Duration) -> Counts {
    let (Some(before), t0) = (scrape(client).await, now()) else {
        return Counts::new();
    };
    tokio::time::sleep(window).await;
    let Some(after) = scrape(client).await else {
        return Counts::new();
    };
    let seconds = now() - t0;
    let rate: Counts = net(&after, &before, &Counts::new(), 0.0)
        .into_iter()
        .map(|(k, v)| (k, v / seconds))
        .collect();
    log(format!(
        "API server background: {:.1} writes/s over {seconds:.0} s",
        rate.values().sum::<f64>()
    ));
    rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_writes_by_verb_and_resource_leaving_out_reads_and_dry_runs() {
        let m = Metrics::parse(
            "apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"batch\",resource=\"jobs\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 10\n\
             apiserver_request_total{code=\"409\",dry_run=\"\",resource=\"jobs\",subresource=\"\",verb=\"POST\"} 2\n\
             apiserver_request_total{code=\"200\",dry_run=\"\",resource=\"pods\",subresource=\"status\",verb=\"PATCH\"} 4\n\
             apiserver_request_total{code=\"200\",dry_run=\"\",resource=\"pods\",subresource=\"\",verb=\"LIST\"} 99\n\
             apiserver_request_total{code=\"201\",dry_run=\"All\",resource=\"dagruns\",subresource=\"\",verb=\"POST\"} 7\n",
        );
        let c = write_counts(&m);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c["POST jobs"], 12.0);
        assert_eq!(c["PATCH pods/status"], 4.0);
    }

    #[test]
    fn net_takes_off_the_known_writers_and_the_background() {
        let after = Counts::from([("POST jobs".into(), 110.0), ("PATCH pods/status".into(), 60.0)]);
        let before = Counts::from([("POST jobs".into(), 10.0), ("PATCH pods/status".into(), 10.0)]);
        let background = Counts::from([("POST jobs".into(), 0.5)]);
        let n = net(&after, &before, &background, 10.0);
        assert_eq!(n["POST jobs"], 95.0);
        assert_eq!(n["PATCH pods/status"], 50.0);
        let all = net(&before, &after, &Counts::new(), 0.0);
        assert!(all.is_empty(), "nothing below zero is kept");
    }
}
