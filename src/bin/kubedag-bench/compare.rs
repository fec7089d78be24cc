//! kubedag beside Argo Workflows: the side-by-side table of latest.md, the `argo_default` /
//! `argo_tuned` maps of latest.json, and the ratios of the issue (kubedag's runs finished per
//! second over Argo's; the worst completion and p99 ratios of kubedag's workloads).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::stats::round2;
use crate::workload::WorkloadResult;

/// The workloads both systems run, in report order.
const SHARED: [&str; 3] = ["a", "b", "c"];

/// `system`'s result of workload `key`.
fn find<'a>(results: &'a [WorkloadResult], system: &str, key: &str) -> Option<&'a WorkloadResult> {
    results.iter().find(|w| w.system == system && w.key == key)
}

/// kubedag's runs finished per second over `system`'s on workload `key` (runs finished/s is
/// size-independent once the pipeline is full; each side ran its own size).
pub fn speedup(all: &[WorkloadResult], system: &str, key: &str) -> Option<f64> {
    let (k, p) = (find(all, "kubedag", key)?, find(all, system, key)?);
    (p.runs_finished_per_s > 0.0).then(|| round2(k.runs_finished_per_s / p.runs_finished_per_s))
}

/// The smallest [`speedup`] over the workloads both ran.
pub fn min_speedup(all: &[WorkloadResult], system: &str) -> Option<f64> {
    SHARED.iter().filter_map(|k| speedup(all, system, k)).reduce(f64::min)
}

/// The worst (largest) p99 dependency -> launch over the plain client's p99 create, over
/// kubedag's workloads with dependencies.
pub fn worst_p99_ratio(all: &[WorkloadResult]) -> Option<f64> {
    all.iter()
        .filter(|w| w.system == "kubedag" && w.transition_ms.count > 0 && w.p99_ratio_to_client > 0.0)
        .map(|w| w.p99_ratio_to_client)
        .reduce(f64::max)
}

/// The worst (smallest) completion ratio over kubedag's (a) and (c).
pub fn worst_completion_ratio(all: &[WorkloadResult]) -> Option<f64> {
    ["a", "c"]
        .iter()
        .filter_map(|k| find(all, "kubedag", k))
        .map(|w| w.completion_ratio)
        .reduce(f64::min)
}

/// `{workload key: figures}` of `system` (the `argo_default` / `argo_tuned` keys of latest.json).
pub fn by_workload(all: &[WorkloadResult], system: &str) -> Value {
    let map: BTreeMap<&str, &WorkloadResult> = all
        .iter()
        .filter(|w| w.system == system)
        .map(|w| (w.key.as_str(), w))
        .collect();
    json!(map)
}

/// One column of the side-by-side table.
struct Column<'a> {
    title: String,
    w: &'a WorkloadResult,
}

/// The side-by-side table: per shared workload kubedag, Argo at its defaults, Argo tuned, and
/// kubedag's ratio over each. Empty when Argo ran nothing.
pub fn side_by_side(all: &[WorkloadResult]) -> String {
    let mut columns = Vec::new();
    for key in SHARED {
        for (system, name) in [
            ("kubedag", "kubedag"),
            ("argo-default", "Argo default"),
            ("argo-tuned", "Argo tuned"),
        ] {
            if let Some(w) = find(all, system, key) {
                columns.push(Column {
                    title: format!("({key}) {name}: {}", w.description),
                    w,
                });
            }
        }
    }
    if !columns.iter().any(|c| c.w.system != "kubedag") {
        return String::new();
    }
    let mut md = String::from("| figure |");
    for c in &columns {
        md.push_str(&format!(" {} |", c.title));
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(columns.len()));
    md.push('\n');
    let mut row = |label: &str, f: &dyn Fn(&WorkloadResult) -> String| {
        md.push_str(&format!("| {label} |"));
        for c in &columns {
            md.push_str(&format!(" {} |", f(c.w)));
        }
        md.push('\n');
    };
    row("runs finished / succeeded", &|w| {
        let late = if w.timed_out { " (timed out)" } else { "" };
        format!("{} / {}{late}", w.runs_finished, w.runs_succeeded)
    });
    row("**runs finished / s**", &|w| {
        format!("**{:.2}**", w.runs_finished_per_s)
    });
    row("kubedag ÷ this (runs finished / s)", &|w| {
        if w.system == "kubedag" {
            "–".into()
        } else {
            speedup(all, &w.system, &w.key).map_or("–".into(), |s| format!("**{s:.2}×**"))
        }
    });
    row("makespan (s)", &|w| format!("{:.1}", w.makespan_s));
    row("steps finished / s ÷ plain-client pipeline (Jobs or Pods)", &|w| {
        format!("{:.2}", w.completion_ratio)
    });
    row("step objects created / s ÷ plain-client create", &|w| {
        format!("{:.1} / {:.2}", w.launch_jobs_per_s, w.launch_ratio_create)
    });
    row("dependency done → next step created, p50 / p99 (ms)", &|w| {
        if w.transition_ms.count == 0 {
            "–".into()
        } else {
            format!("{:.0} / **{:.0}**", w.transition_ms.p50, w.transition_ms.p99)
        }
    });
    row("p99 ÷ plain-client create p99", &|w| {
        if w.transition_ms.count == 0 {
            "–".into()
        } else {
            format!("{:.2}", w.p99_ratio_to_client)
        }
    });
    row("run created → finished, p50 / p99 (s)", &|w| {
        format!("{:.1} / {:.1}", w.run_duration_s.p50, w.run_duration_s.p99)
    });
    row("controller peak RSS (MiB) / CPU (s)", &|w| {
        format!("{:.0} / {:.1}", w.operator.peak_rss_mib, w.operator.cpu_seconds)
    });
    row("own API writes per step (its own counter)", &|w| {
        format!("{:.2}", w.writes_per_step)
    });
    row(
        "API server writes per step (all, less driver, simulator, background)",
        &|w| format!("{:.2}", w.apiserver_writes_per_step),
    );
    row("run object bytes, mean", &|w| format!("{:.0}", w.object_bytes_mean));
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(system: &str, key: &str, runs_per_s: f64, p99_ratio: f64) -> WorkloadResult {
        let mut w = WorkloadResult {
            system: system.into(),
            key: key.into(),
            runs_finished_per_s: runs_per_s,
            p99_ratio_to_client: p99_ratio,
            completion_ratio: runs_per_s / 10.0,
            ..WorkloadResult::default()
        };
        w.transition_ms.count = usize::from(p99_ratio > 0.0);
        w
    }

    #[test]
    fn speedups_are_the_minimum_over_the_workloads_both_ran() {
        let all = vec![
            result("kubedag", "a", 10.0, 1.2),
            result("kubedag", "c", 30.0, 0.0),
            result("kubedag", "b", 1.0, 2.0),
            result("argo-default", "a", 2.0, 0.0),
            result("argo-default", "c", 3.0, 0.0),
            result("argo-tuned", "a", 4.0, 0.0),
        ];
        assert_eq!(speedup(&all, "argo-default", "a"), Some(5.0));
        assert_eq!(min_speedup(&all, "argo-default"), Some(5.0));
        assert_eq!(min_speedup(&all, "argo-tuned"), Some(2.5));
        assert_eq!(min_speedup(&all, "nobody"), None);
        assert_eq!(worst_p99_ratio(&all), Some(2.0));
        assert_eq!(worst_completion_ratio(&all), Some(1.0));
        let table = side_by_side(&all);
        assert!(table.contains("(a) Argo tuned"), "{table}");
        assert!(table.contains("**5.00×**"), "{table}");
        assert_eq!(by_workload(&all, "argo-default")["c"]["runs_finished_per_s"], 3.0);
        assert!(side_by_side(&all[..3]).is_empty(), "no table without Argo");
    }
}
