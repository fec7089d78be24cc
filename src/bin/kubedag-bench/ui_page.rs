//! (e) The web UI's runs page with many runs: the server time (cache read, grouping, filtering,
//! paging, rendering) of the real GET handler, p50 and p99 per query, with `BENCH_UI_RUNS`
//! (10,000) runs of one Dag in a tenth as many parameter sets in the UI's cache
//! ([`kubedag::ui::bench`]). Needs no cluster: `kubedag-bench ui` measures it alone.

use serde::Serialize;

use crate::config::Config;

/// The figure of (e).
#[derive(Debug, Clone, Serialize)]
pub struct UiResult {
    pub runs: usize,
    pub parameter_sets: usize,
    pub requests_per_query: usize,
    pub queries: Vec<QueryTiming>,
}

/// One query's server time, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct QueryTiming {
    /// The query string (empty: the default page, newest first).
    pub query: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Times the runs page in this process (a release build under `make bench`).
pub async fn run(cfg: &Config) -> UiResult {
    let timings = kubedag::ui::bench::runs_page_timings(cfg.ui_runs, cfg.ui_requests).await;
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    UiResult {
        runs: cfg.ui_runs,
        parameter_sets: cfg.ui_runs.div_ceil(kubedag::ui::bench::RUNS_PER_SET),
        requests_per_query: cfg.ui_requests,
        queries: timings
            .iter()
            .map(|t| QueryTiming {
                query: t.query.to_string(),
                p50_ms: ms(t.p50),
                p99_ms: ms(t.p99),
            })
            .collect(),
    }
}

/// The (e) paragraph of latest.md.
pub fn markdown(ui: &UiResult) -> String {
    let queries: Vec<String> = ui
        .queries
        .iter()
        .map(|q| {
            let name = if q.query.is_empty() {
                "default page".to_string()
            } else {
                format!("`{}`", q.query)
            };
            format!("{name} **{:.1} / {:.1} ms**", q.p50_ms, q.p99_ms)
        })
        .collect();
    format!(
        "(e) Web UI, the runs page with {} runs of one Dag in {} parameter sets in its cache, server time p50 / p99 over {} requests per query: {}.\n\n",
        group_digits(ui.runs),
        group_digits(ui.parameter_sets),
        ui.requests_per_query,
        queries.join("; ")
    )
}

/// `10000` as `10,000`.
fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paragraph_names_each_query_with_its_times() {
        let ui = UiResult {
            runs: 10_000,
            parameter_sets: 1_000,
            requests_per_query: 200,
            queries: vec![
                QueryTiming {
                    query: String::new(),
                    p50_ms: 4.21,
                    p99_ms: 6.5,
                },
                QueryTiming {
                    query: "phase=Failed".into(),
                    p50_ms: 3.0,
                    p99_ms: 5.04,
                },
            ],
        };
        let md = markdown(&ui);
        assert!(md.starts_with("(e) Web UI, the runs page with 10,000 runs of one Dag in 1,000 parameter sets"));
        assert!(
            md.contains("default page **4.2 / 6.5 ms**; `phase=Failed` **3.0 / 5.0 ms**"),
            "{md}"
        );
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_234_567), "1,234,567");
    }
}
