//! The chart's PrometheusRule and Grafana dashboard use only metrics (and phase label values)
//! that the operator really exports: checked against the text exposition of
//! `kubedag::controller::metrics::Metrics`, so renaming a metric fails here. No cluster needed.

use std::collections::BTreeSet;

use kubedag::api::RunPhase;
use kubedag::controller::metrics::Metrics;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sample names the operator serves once every metric has a sample (families without label sets
/// are not listed): each `# TYPE family kind` line gives the family, plus the suffixes its kind
/// adds (`_total` for counters; `_bucket`, `_sum`, `_count` for histograms).
fn exported_samples() -> BTreeSet<String> {
    let metrics = Metrics::default();
    metrics.reconcile("dagrun");
    metrics.reconcile_error("dagrun", "api");
    RunPhase::ALL.iter().for_each(|p| metrics.run_transition(*p));
    metrics.api_write("status");
    metrics.step_launched(Some(0.1));
    metrics.stale_skip();
    let exposition = metrics.render(&[]);
    let mut samples = BTreeSet::new();
    for line in exposition.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(family), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            samples.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        }
    }
    assert!(
        samples.len() > 5,
        "the exposition lists its metric families:\n{exposition}"
    );
    samples
}

/// Every `kubedag_...` identifier in `text`.
fn referenced_metrics(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("kubedag_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        found.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    found
}

/// Every value of a `phase="..."` or `phase=~"A|B"` matcher in `text`.
fn referenced_phases(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("phase=") {
        let tail = text[i + "phase=".len()..].trim_start_matches('~');
        let tail = tail.trim_start_matches('\\').trim_start_matches('"');
        let end = tail.find(['"', '\\']).unwrap_or(tail.len());
        found.extend(tail[..end].split('|').map(str::to_string));
    }
    found
}

fn check_file(path: &str, min_metrics: usize) {
    let text = read(path);
    let exported = exported_samples();
    let used = referenced_metrics(&text);
    assert!(
        used.len() >= min_metrics,
        "{path} uses the operator's metrics: {used:?}"
    );
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "{path} uses metrics the operator does not export: {unknown:?} (exported: {exported:?})"
    );
    let phases: BTreeSet<String> = RunPhase::ALL.iter().map(|p| p.as_str().to_string()).collect();
    let used_phases = referenced_phases(&text);
    assert!(!used_phases.is_empty(), "{path} selects run phases");
    let bad: Vec<_> = used_phases.difference(&phases).collect();
    assert!(bad.is_empty(), "{path} uses run phases that do not exist: {bad:?}");
}

#[test]
fn prometheus_rule_uses_exported_metrics_and_real_phases() {
    check_file("charts/kubedag/templates/prometheusrule.yaml", 5);
    let rule = read("charts/kubedag/templates/prometheusrule.yaml");
    for alert in ["KubedagOperatorDown", "KubedagRunsFailing", "KubedagQueueNotDraining"] {
        assert!(rule.contains(&format!("alert: {alert}")), "{alert} defined");
    }
}

#[test]
fn grafana_dashboard_uses_exported_metrics_and_real_phases() {
    check_file("charts/kubedag/dashboards/kubedag.json", 7);
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("charts/kubedag/dashboards/kubedag.json")).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels.iter().all(|p| !p["targets"].as_array().unwrap().is_empty()),
        "every panel queries something"
    );
}

#[test]
fn the_checks_catch_a_misspelt_metric_and_phase() {
    let exported = exported_samples();
    let used = referenced_metrics(r#"rate(kubedag_run_transition_total{phase=~"Succeeded|Failled"}[5m])"#);
    assert!(
        !used.is_subset(&exported),
        "kubedag_run_transition_total is not exported"
    );
    let phases = referenced_phases(r#"x{phase=~"Succeeded|Failled"}"#);
    assert_eq!(phases, BTreeSet::from(["Succeeded".into(), "Failled".into()]));
}
