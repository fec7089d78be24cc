//! The targets of the issue, each checked against the figures of one run: `{target, measured,
//! met}` (met `null` when not measured), in latest.json's `targets` and latest.md's last table.

use serde_json::{Value, json};

use crate::compare::{speedup, worst_completion_ratio, worst_p99_ratio};
use crate::config::Config;
use crate::workload::WorkloadResult;

/// Issue #16's bound on a fan-out's parent DagRun, bytes.
const FANOUT_LIMIT_BYTES: f64 = 256.0 * 1024.0;

/// One target.
fn target(name: impl Into<String>, measured: String, met: Option<bool>) -> Value {
    json!({"target": name.into(), "measured": measured, "met": met})
}

/// `"k v, k v"` of the `(key, value)` pairs, or "–" when there are none.
fn joined(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "–".into();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// kubedag's speedups over `system` on (a) and (c): (text, every one at least `at_least`).
fn speedups(all: &[WorkloadResult], system: &str, at_least: f64) -> (String, Option<bool>) {
    let pairs: Vec<(String, f64)> = ["a", "c"]
        .iter()
        .filter_map(|k| speedup(all, system, k).map(|s| (k.to_string(), s)))
        .collect();
    let text: Vec<(String, String)> = pairs.iter().map(|(k, s)| (k.clone(), format!("{s:.2}×"))).collect();
    let met = (!pairs.is_empty()).then(|| pairs.iter().all(|(_, s)| *s >= at_least));
    (joined(&text), met)
}

/// The targets over kubedag's results and Argo's (`all` holds both).
pub fn targets(cfg: &Config, all: &[WorkloadResult]) -> Vec<Value> {
    let kubedag = |k: &str| all.iter().find(|w| w.system == "kubedag" && w.key == k);
    let (default_text, default_met) = speedups(all, "argo-default", 5.0);
    let (tuned_text, tuned_met) = speedups(all, "argo-tuned", 2.0);
    let with_deps: Vec<&WorkloadResult> = ["a", "b"]
        .iter()
        .filter_map(|k| kubedag(k))
        .filter(|w| w.transition_ms.count > 0)
        .collect();
    let p99_text: Vec<(String, String)> = with_deps
        .iter()
        .map(|w| {
            (
                w.key.clone(),
                format!("{:.0} ms ({:.2}×)", w.transition_ms.p99, w.p99_ratio_to_client),
            )
        })
        .collect();
    let argo_tuned_a = all.iter().find(|w| w.system == "argo-tuned" && w.key == "a");
    let vs_argo = kubedag("a")
        .zip(argo_tuned_a)
        .filter(|(k, p)| k.transition_ms.count > 0 && p.transition_ms.p99 > 0.0);
    let completion: Vec<(String, String)> = ["a", "c"]
        .iter()
        .filter_map(|k| kubedag(k))
        .map(|w| (w.key.clone(), format!("{:.2}", w.completion_ratio)))
        .collect();
    let writes: Vec<&WorkloadResult> = all
        .iter()
        .filter(|w| w.system == "kubedag" && w.steps_launched > 0.0)
        .collect();
    let worst_writes = writes.iter().map(|w| w.writes_per_step).reduce(f64::max);
    let c = kubedag("c");
    let f = kubedag("f");
    vec![
        target(
            "runs finished / s ≥ 5 × Argo at its defaults (a, c)",
            default_text,
            default_met,
        ),
        target("runs finished / s ≥ 2 × Argo tuned (a, c)", tuned_text, tuned_met),
        target(
            "p99 dependency → launch ≤ 1.5 × one plain-client Job create's p99, same run (a, b)",
            joined(&p99_text),
            worst_p99_ratio(all).map(|r| r <= 1.5),
        ),
        target(
            "p99 dependency → launch ≤ 1/10 of Argo tuned's (a)",
            vs_argo.map_or("–".into(), |(k, p)| {
                format!(
                    "{:.0} ms vs {:.0} ms ({:.3})",
                    k.transition_ms.p99,
                    p.transition_ms.p99,
                    k.transition_ms.p99 / p.transition_ms.p99
                )
            }),
            vs_argo.map(|(k, p)| k.transition_ms.p99 * 10.0 <= p.transition_ms.p99),
        ),
        target(
            "steps finished / s ≥ 0.9 × the Job pipeline rate (a, c)",
            joined(&completion),
            worst_completion_ratio(all).map(|r| r >= 0.9),
        ),
        target(
            "≤ 3 API writes per step on every workload (the operator's own count)",
            joined(
                &writes
                    .iter()
                    .map(|w| (w.key.clone(), format!("{:.2}", w.writes_per_step)))
                    .collect::<Vec<_>>(),
            ),
            worst_writes.map(|w| w <= 3.0),
        ),
        target(
            format!("operator RSS at {} runs < 128 MiB (c)", cfg.runs_c),
            c.map_or("–".into(), |c| {
                let ok = c.runs_succeeded == c.runs && !c.timed_out;
                format!(
                    "{:.0} MiB, {}",
                    c.operator.peak_rss_mib,
                    if ok { "all succeeded" } else { "NOT all succeeded" }
                )
            }),
            c.map(|c| c.operator.peak_rss_mib < 128.0 && c.runs_succeeded == c.runs && !c.timed_out),
        ),
        target(
            format!(
                "one run fanning out over {} items stays < 256 KiB at every version seen (f)",
                cfg.items_f
            ),
            f.map_or("–".into(), |f| {
                let ok = f.runs_succeeded == 1 && !f.timed_out;
                format!(
                    "{:.0} KiB, {}",
                    f.object_bytes_max_seen / 1024.0,
                    if ok { "succeeded" } else { "NOT succeeded" }
                )
            }),
            f.map(|f| f.object_bytes_max_seen < FANOUT_LIMIT_BYTES && f.runs_succeeded == 1 && !f.timed_out),
        ),
    ]
}
