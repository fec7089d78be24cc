//! The request profile (`BENCH_PROFILE=1`, `kubedag-bench profile-log`): every request the
//! operator's kube client sent, counted by method and normalised path, from its log written with
//! `RUST_LOG=kube_client=debug`.

use std::collections::BTreeMap;
use std::path::Path;

/// Request counts of the log at `log_path` by "METHOD /normalised/path (kind)"; empty when the
/// file cannot be read.
pub fn request_profile(log_path: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(log_path).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for raw in text.lines().filter(|l| l.contains("requesting")) {
        let line = strip_ansi(raw);
        let field = |key: &str| {
            line.split(key)
                .nth(1)
                .map(|rest| rest.split([' ', '}']).next().unwrap_or("").to_string())
        };
        let (Some(method), Some(url)) = (field("http.method="), field("http.url=")) else {
            continue;
        };
        counts
            .entry(format!("{method} {}", normalize_url(&url)))
            .and_modify(|c| *c += 1)
            .or_insert(1u64);
    }
    counts
}

/// `line` without its ANSI colour sequences.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `https://host/apis/batch/v1/namespaces/NS/jobs/NAME/status?x` -> `/apis/batch/v1/jobs/{name}/status`.
fn normalize_url(url: &str) -> String {
    let path_and_query = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    let (path, query) = path_and_query.split_once('?').unwrap_or((&path_and_query, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        if segments[i] == "namespaces" && i + 2 < segments.len() {
            out.push(segments[i + 2].to_string());
            if i + 3 < segments.len() {
                out.push("{name}".into());
            }
            out.extend(segments.iter().skip(i + 4).map(|s| s.to_string()));
            break;
        }
        out.push(segments[i].to_string());
        i += 1;
    }
    let mut label = format!("/{}", out.join("/"));
    if query.contains("watch=true") {
        label.push_str(" (watch)");
    } else if query.contains("dryRun") {
        label.push_str(" (dry-run)");
    } else if out.last().map(String::as_str) != Some("{name}") && query.contains("labelSelector") {
        label.push_str(" (list, selector)");
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names_and_namespaces_out_of_paths() {
        assert_eq!(
            normalize_url("https://10.0.0.1:6443/apis/batch/v1/namespaces/ns/jobs/r-1-a/status?fieldManager=x"),
            "/apis/batch/v1/jobs/{name}/status"
        );
        assert_eq!(
            normalize_url("https://h/apis/batch/v1/namespaces/ns/jobs?labelSelector=a%3Db"),
            "/apis/batch/v1/jobs (list, selector)"
        );
        assert_eq!(
            normalize_url("https://h/apis/kubedag.io/v1alpha1/namespaces/ns/dagruns?watch=true"),
            "/apis/kubedag.io/v1alpha1/dagruns (watch)"
        );
        assert_eq!(normalize_url("https://h/api/v1/nodes"), "/api/v1/nodes");
    }

    #[test]
    fn counts_requests_of_a_log() {
        let path = std::env::temp_dir().join(format!("kubedag-bench-profile-{}.log", std::process::id()));
        let lines = [
            "\u{1b}[2mDEBUG\u{1b}[0m requesting http.method=POST http.url=https://h/apis/batch/v1/namespaces/n/jobs otel.name=x",
            "DEBUG requesting{http.method=POST http.url=https://h/apis/batch/v1/namespaces/n/jobs}",
            "DEBUG requesting http.method=GET http.url=https://h/api/v1/namespaces/n/pods/p",
            "INFO something else",
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let counts = request_profile(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(counts.get("POST /apis/batch/v1/jobs"), Some(&2));
        assert_eq!(counts.get("GET /api/v1/pods/{name}"), Some(&1));
        assert_eq!(counts.len(), 2);
        assert!(strip_ansi("\u{1b}[1;31mred\u{1b}[0m").eq("red"));
    }
}
