//! The report: `latest.json` (the headline keys `launch_ratio`, `p99_transition_ms`,
//! `rss_mib_10k`, `writes_per_step`, `fanout_object_bytes_max`, `mode`, the comparison keys `speedup_vs_argo_default`,
//! `speedup_vs_argo_tuned`, `completion_ratio`, `p99_ratio_to_client`, `argo_default`,
//! `argo_tuned`, `ui` (the web UI's runs page), then every figure and distribution) and `latest.md` (the tables for the
//! README: kubedag beside Argo, kubedag's own figures, the targets of [`crate::targets`]).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::baseline::BaselineResult;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::sim_node::Sim;
use crate::stats::round2;
use crate::ui_page::{self, UiResult};
use crate::webhook::WebhookResult;
use crate::workload::WorkloadResult;
use crate::{Res, compare};

/// What the run measured, and when it started.
pub struct Measured {
    /// RFC 3339, to the second.
    pub started_at: String,
    /// `/proc/loadavg` at the start.
    pub load_at_start: String,
    pub base: Option<BaselineResult>,
    /// kubedag's workloads.
    pub results: Vec<WorkloadResult>,
    /// Argo's workloads, every mode.
    pub peers: Vec<WorkloadResult>,
    pub hook: Option<WebhookResult>,
    /// (e), the web UI's runs page.
    pub ui: Option<UiResult>,
}

/// The headline figures of latest.json.
struct Headline {
    /// (a)'s launch ratio.
    launch_ratio: Option<f64>,
    /// (a)'s p99 dependency done -> next Job created, ms.
    p99_transition_ms: Option<f64>,
    /// (c)'s operator peak RSS, MiB.
    rss_mib: Option<f64>,
    /// Over (a)-(c).
    writes_per_step: Option<f64>,
    /// (f)'s largest parent DagRun version seen, bytes.
    fanout_object_bytes_max: Option<f64>,
}

impl Headline {
    fn of(results: &[WorkloadResult]) -> Headline {
        let find = |k: &str| results.iter().find(|w| w.key == k);
        let (steps, writes) = results
            .iter()
            .filter(|r| ["a", "b", "c"].contains(&r.key.as_str()))
            .fold((0.0, 0.0), |(s, w), r| (s + r.steps_launched, w + r.api_writes_total));
        Headline {
            launch_ratio: find("a").map(|a| a.launch_ratio),
            p99_transition_ms: find("a")
                .filter(|a| a.transition_ms.count > 0)
                .map(|a| a.transition_ms.p99),
            rss_mib: find("c").map(|c| c.operator.peak_rss_mib),
            writes_per_step: (steps > 0.0).then(|| round2(writes / steps)),
            fanout_object_bytes_max: find("f").map(|f| f.object_bytes_max_seen),
        }
    }
}

/// Writes latest.json and latest.md into the output directory; returns the markdown.
pub fn write(cfg: &Config, sim: &Sim, m: &Measured) -> Res<String> {
    let (base, results, hook) = (&m.base, &m.results, &m.hook);
    let (started_at, load_at_start) = (&m.started_at, &m.load_at_start);
    let headline = Headline::of(results);
    let all: Vec<WorkloadResult> = results.iter().chain(&m.peers).cloned().collect();
    let targets = crate::targets::targets(cfg, &all);
    let summary = json!({
        "mode": "simulated-node",
        "scale": cfg.scale,
        "operator_concurrency": cfg.concurrency,
        "operator_args": cfg.operator_args.join(" "),
        "started_at": started_at,
        "finished_at": rfc3339(false),
        "sizes": {"runs_a": cfg.runs_a, "steps_b": cfg.width_b, "runs_c": cfg.runs_c,
                  "items_f": cfg.items_f, "max_running_jobs_f": cfg.max_running_jobs_f,
                  "baseline_jobs": cfg.baseline_jobs, "webhook_samples": cfg.webhook_samples},
        "pod_seconds": cfg.pod_seconds,
        "argo": {"version": "v4.0.5", "binary": cfg.argo_bin.display().to_string(),
                 "modes": cfg.argo.iter().map(|m| m.label()).collect::<Vec<_>>(),
                 "runs_a": cfg.argo_runs_a, "runs_c": cfg.argo_runs_c},
        "targets": targets,
    });
    let mut md = markdown(&summary, base, results, hook, &compare::side_by_side(&all));
    if let Some(ui) = &m.ui {
        // Before the targets table, after (d).
        let at = md.find("| target |").unwrap_or(md.len());
        md.insert_str(at, &ui_page::markdown(ui));
    }
    let mut out = summary.clone();
    let obj = out.as_object_mut().unwrap();
    obj.insert("launch_ratio".into(), json!(headline.launch_ratio));
    obj.insert("p99_transition_ms".into(), json!(headline.p99_transition_ms));
    obj.insert("rss_mib_10k".into(), json!(headline.rss_mib));
    obj.insert("writes_per_step".into(), json!(headline.writes_per_step));
    obj.insert(
        "fanout_object_bytes_max".into(),
        json!(headline.fanout_object_bytes_max),
    );
    obj.insert(
        "speedup_vs_argo_default".into(),
        json!(compare::min_speedup(&all, "argo-default")),
    );
    obj.insert(
        "speedup_vs_argo_tuned".into(),
        json!(compare::min_speedup(&all, "argo-tuned")),
    );
    obj.insert("completion_ratio".into(), json!(compare::worst_completion_ratio(&all)));
    obj.insert("p99_ratio_to_client".into(), json!(compare::worst_p99_ratio(&all)));
    obj.insert("argo_default".into(), compare::by_workload(&all, "argo-default"));
    obj.insert("argo_tuned".into(), compare::by_workload(&all, "argo-tuned"));
    obj.insert(
        "command".into(),
        json!(std::env::var("BENCH_COMMAND").unwrap_or_else(|_| "make bench".into())),
    );
    obj.insert(
        "host".into(),
        json!({"nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
               "load_average_at_start": load_at_start.trim(),
               "load_average_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()}),
    );
    obj.insert(
        "sim".into(),
        json!({"node": cfg.node,
        "pods_completed": sim.stats.completed.load(Ordering::Relaxed),
        "pods_force_deleted": sim.stats.force_deleted.load(Ordering::Relaxed),
        "errors": sim.stats.errors.load(Ordering::Relaxed)}),
    );
    obj.insert("baseline".into(), serde_json::to_value(base)?);
    obj.insert(
        "workloads".into(),
        serde_json::to_value(
            results
                .iter()
                .map(|w| (w.key.clone(), w.clone()))
                .collect::<BTreeMap<_, _>>(),
        )?,
    );
    obj.insert("webhook".into(), serde_json::to_value(hook)?);
    obj.insert("ui".into(), serde_json::to_value(&m.ui)?);
    std::fs::write(
        cfg.out_dir.join("latest.json"),
        serde_json::to_string_pretty(&out)? + "\n",
    )?;
    std::fs::write(cfg.out_dir.join("latest.md"), &md)?;
    Ok(md)
}

/// `x` with `digits` decimals, or "–".
fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// The table for the README (latest.md).
fn markdown(
    summary: &Value,
    base: &Option<BaselineResult>,
    ws: &[WorkloadResult],
    hook: &Option<WebhookResult>,
    side_by_side: &str,
) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "Mode: `{}`; scale {}; operator `--concurrency {}{}`; {}.\n\n",
        summary["mode"].as_str().unwrap_or(""),
        summary["scale"],
        summary["operator_concurrency"],
        summary["operator_args"]
            .as_str()
            .map_or(String::new(), |a| if a.is_empty() {
                String::new()
            } else {
                format!(" {a}")
            }),
        summary["finished_at"].as_str().unwrap_or("")
    ));
    if let Some(b) = base {
        md.push_str(&format!(
            "Plain client ({} in parallel, {} Jobs per phase): **{:.1} Jobs/s** create + status write, {:.1} Jobs/s create only; \
             Job pipeline (create → pod → Complete) {:.1} Jobs/s.\n\n",
            b.concurrency,
            b.jobs_per_phase,
            b.create_and_status_jobs_per_s,
            b.create_only_jobs_per_s,
            b.completion_jobs_per_s
        ));
        let p = &b.pods;
        md.push_str(&format!(
            "Plain client, Pods ({} in parallel, {} Pods): **{:.1} Pods/s** created, one create p50 / p99 {:.0} / {:.0} ms; \
             Pod pipeline (create → Succeeded) {:.1} Pods/s. One Job create p50 / p99 (create + status phase) {:.0} / {:.0} ms.\n\n",
            p.concurrency,
            p.pods,
            p.create_pods_per_s,
            p.create_latency_ms.p50,
            p.create_latency_ms.p99,
            p.completion_pods_per_s,
            b.create_latency_ms.p50,
            b.create_latency_ms.p99
        ));
    }
    if !side_by_side.is_empty() {
        md.push_str(
            "kubedag beside Argo Workflows v4.0.5 (same control plane and simulated node, one system at a time):\n\n",
        );
        md.push_str(side_by_side);
        md.push_str("kubedag alone:\n\n");
    }
    if !ws.is_empty() {
        md.push_str("| figure |");
        for w in ws {
            md.push_str(&format!(" ({}) {} |", w.key, w.description));
        }
        md.push_str("\n|---|");
        for _ in ws {
            md.push_str("---:|");
        }
        md.push('\n');
        let mut row = |label: &str, f: &dyn Fn(&WorkloadResult) -> String| {
            md.push_str(&format!("| {label} |"));
            for w in ws {
                md.push_str(&format!(" {} |", f(w)));
            }
            md.push('\n');
        };
        row("runs finished / succeeded", &|w| {
            format!(
                "{} / {}{}",
                w.runs_finished,
                w.runs_succeeded,
                if w.timed_out { " (timed out)" } else { "" }
            )
        });
        row("step Jobs launched", &|w| format!("{}", w.jobs_seen));
        row("launch throughput (Jobs/s)", &|w| format!("{:.1}", w.launch_jobs_per_s));
        row("÷ plain-client rate", &|w| format!("**{:.2}**", w.launch_ratio));
        row("÷ plain-client create-only rate", &|w| {
            format!("{:.2}", w.launch_ratio_create)
        });
        row("most step Jobs active at once (watched)", &|w| {
            format!("{}", w.max_active_jobs)
        });
        row("Jobs completed/s (whole pipeline)", &|w| {
            format!("{:.1}", w.completion_jobs_per_s)
        });
        row("dependency done → next Job created, p50 / p99 (ms)", &|w| {
            if w.transition_ms.count == 0 {
                "–".into()
            } else {
                format!("{:.0} / **{:.0}**", w.transition_ms.p50, w.transition_ms.p99)
            }
        });
        row("same, operator histogram p50 / p99 (ms)", &|w| {
            let show = |x: Option<f64>| match x {
                Some(v) if v >= 10_000.0 => "≥ 10000".to_string(),
                other => fmt_opt(other, 0),
            };
            format!(
                "{} / {}",
                show(w.operator_histogram_p50_ms),
                show(w.operator_histogram_p99_ms)
            )
        });
        row("run created → finished, p50 / p99 (s)", &|w| {
            format!("{:.1} / {:.1}", w.run_duration_s.p50, w.run_duration_s.p99)
        });
        row("all runs created in / makespan (s)", &|w| {
            format!("{:.1} / {:.1}", w.create_phase_s, w.makespan_s)
        });
        row("operator peak RSS (MiB)", &|w| {
            format!("**{:.0}**", w.operator.peak_rss_mib)
        });
        row("operator CPU (s) / utilisation", &|w| {
            format!(
                "{:.1} / {:.0}%",
                w.operator.cpu_seconds,
                w.operator_cpu_utilisation * 100.0
            )
        });
        row("DagRun JSON bytes: status / whole object (mean)", &|w| {
            format!("{:.0} / {:.0}", w.status_bytes_mean, w.object_bytes_mean)
        });
        row("DagRun JSON bytes, largest version seen during the run", &|w| {
            format!("{:.0}", w.object_bytes_max_seen)
        });
        row("API writes per step", &|w| format!("**{:.2}**", w.writes_per_step));
        row("writes by kind (per step)", &|w| {
            w.api_writes
                .iter()
                .map(|(k, v)| format!("{k} {:.2}", v / w.steps_launched.max(1.0)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        row("reconciles / errors", &|w| {
            // Summed from 0.0: an empty f64 sum is -0.0, which prints as "-0".
            let errors = w.reconcile_errors.values().fold(0.0, |a, b| a + b);
            format!("{:.0} / {:.0}", w.reconciles, errors)
        });
        if ws.iter().any(|w| w.requests_per_step.is_some()) {
            row("all API requests per step (profile)", &|w| {
                fmt_opt(w.requests_per_step, 2)
            });
        }
        md.push('\n');
    }
    if let Some(h) = hook {
        md.push_str(&format!(
            "(d) Webhook admission, {} dry-run DagRun creates with {} existing runs: p50 / p99 **{:.1} / {:.1} ms** with the webhook, \
             {:.1} / {:.1} ms without; webhook share p50 {:.1} ms, p99 {:.1} ms.\n\n",
            h.samples,
            h.existing_runs,
            h.with_webhook_ms.p50,
            h.with_webhook_ms.p99,
            h.without_webhook_ms.p50,
            h.without_webhook_ms.p99,
            h.overhead_p50_ms,
            h.overhead_p99_ms
        ));
    }
    md.push_str("| target | measured | met |\n|---|---:|:---:|\n");
    for t in summary["targets"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            t["target"].as_str().unwrap_or(""),
            t["measured"].as_str().unwrap_or(""),
            match t["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            }
        ));
    }
    md
}
