//! The runs page's server time with a large cache: [`runs_page_timings`] fills the cache with
//! synthetic runs of one Dag (no cluster) and times the real GET handler (cache read, grouping,
//! filtering, paging, rendering) for a few typical queries.
//!
//! `make bench` reports it as figure (e) (`src/bin/kubedag-bench/ui_page.rs`); alone:
//! `cargo run --release --bin kubedag-bench -- ui`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use kube::runtime::reflector;
use kube::runtime::watcher::Event;

use crate::api::{Dag, DagRef, DagRun, DagRunSpec, DagRunStatus, DagSpec, ParamDecl, RunPhase, Step};
use crate::engine::params;

use super::cache::{Cache, Scope};
use super::index::RunIndex;
use super::pages;
use super::server::UiState;

/// p50 and p99 of one query's server time.
#[derive(Debug, Clone)]
pub struct Timing {
    pub query: &'static str,
    pub p50: Duration,
    pub p99: Duration,
}

/// The queries timed: the default page, a parameter filter, a phase filter, a parameter sort.
const QUERIES: [&str; 4] = ["", "q=f0042", "phase=Failed", "sort=param:file&page=3"];

/// Runs per parameter set of the synthetic runs.
pub const RUNS_PER_SET: usize = 10;

/// Namespace and Dag of the synthetic runs.
const NS: &str = "bench";
const DAG: &str = "img";

/// Times each of [`QUERIES`] `iterations` times against `runs` runs spread over parameter sets
/// of [`RUNS_PER_SET`] runs each. Must run inside a Tokio runtime.
pub async fn runs_page_timings(runs: usize, iterations: usize) -> Vec<Timing> {
    let ui = Arc::new(state_with_runs(runs));
    let mut timings = Vec::new();
    for query in QUERIES {
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query);
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            let response = pages::runs(
                State(ui.clone()),
                Path((NS.to_string(), DAG.to_string())),
                Query(pairs.clone()),
            )
            .await;
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            samples.push(start.elapsed());
            assert!(body.is_ok_and(|b| b.len() > 1000), "the runs page rendered");
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        timings.push(Timing {
            query,
            p50: at(0.50),
            p99: at(0.99),
        });
    }
    timings
}

fn serde_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A UI state whose cache holds one Dag and `runs` runs of it; its client points nowhere (the
/// runs page never calls the API server when the Dag is cached).
fn state_with_runs(runs: usize) -> UiState {
    let (dags, mut dag_writer) = reflector::store::<Dag>();
    let mut dag = Dag::new(
        DAG,
        DagSpec {
            params: ["file", "threshold"]
                .iter()
                .map(|n| ParamDecl {
                    name: n.to_string(),
                    default: None,
                })
                .collect(),
            steps: vec![Step {
                name: "work".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    dag.metadata.namespace = Some(NS.into());
    dag_writer.apply_watcher_event(&Event::Apply(dag));
    let mut index = RunIndex::default();
    for i in 0..runs {
        index.apply(&Event::Apply(synthetic_run(i)));
    }
    let (runs_store, _) = reflector::store::<DagRun>();
    let (pods, _) = reflector::store();
    let (triggers, _) = reflector::store();
    let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
    UiState {
        client: kube::Client::try_from(config).expect("a client"),
        scope: Scope::Namespace(NS.into()),
        cache: Cache {
            dags,
            runs: runs_store,
            triggers,
            pods,
            index: Arc::new(RwLock::new(index)),
            changes: tokio::sync::broadcast::channel(16).0,
            errors: Default::default(),
        },
        token: "bench".into(),
        port: 0,
    }
}

/// Run `i`: parameter set `i / RUNS_PER_SET`, one phase of the seven in turn, created `i` seconds apart.
fn synthetic_run(i: usize) -> DagRun {
    let set = i / RUNS_PER_SET;
    let resolved: BTreeMap<String, String> = [
        ("file".to_string(), format!("f{set:04}.fits")),
        ("threshold".to_string(), format!("0.{}", set % 10)),
    ]
    .into();
    let mut run = DagRun::new(
        &format!("{DAG}-{i:05}"),
        DagRunSpec {
            dag_ref: DagRef { name: DAG.into() },
            params: resolved.clone(),
            ..Default::default()
        },
    );
    run.metadata.namespace = Some(NS.into());
    let created = jiff::Timestamp::from_second(1_800_000_000 + i as i64).expect("a time");
    run.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created));
    run.status = Some(DagRunStatus {
        phase: RunPhase::ALL[i % RunPhase::ALL.len()],
        param_hash: Some(params::param_hash(&resolved)),
        params: Some(resolved),
        ..Default::default()
    });
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same path on a small cache, so `cargo test` keeps the benchmark's code working.
    #[tokio::test]
    async fn the_benchmark_renders_the_runs_page() {
        let timings = runs_page_timings(50, 2).await;
        assert_eq!(timings.len(), QUERIES.len());
    }
}
