//! The pages as askama templates (`src/ui/templates/`) and the view models they render: plain
//! strings and numbers, built from the cache without I/O. Templates escape every value.
//!
//! - [`dags`]: the Dags page. [`runs`]: a Dag's runs grouped by parameter set, with the filter
//!   and submit forms. [`run`]: one run: steps, logs, events, actions; [`graph`]: its SVG graph,
//!   calls and fan-outs drawn as such, from [`composition`]. [`triggers`]: the DagTriggers.

pub mod composition;
pub mod dags;
pub mod graph;
pub mod run;
pub mod runs;
pub mod triggers;

use askama::Template;

/// What every page's frame shows.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub title: String,
    /// `namespace imaging` or `all namespaces`.
    pub scope: String,
    /// Breadcrumbs after the home link: (label, href).
    pub crumbs: Vec<(String, String)>,
    /// The live-update stream this page listens to (empty: none).
    pub live: String,
    /// The section of the page in the top navigation (`dags`, `triggers`), marked current.
    pub nav: &'static str,
}

/// A message above the page: an action's outcome or refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `error` or `ok` (a CSS class).
    pub kind: &'static str,
    pub message: String,
    /// (label, href), e.g. the run a duplicate refusal names.
    pub link: Option<(String, String)>,
}

impl Alert {
    pub fn error(message: impl Into<String>) -> Alert {
        Alert {
            kind: "error",
            message: message.into(),
            link: None,
        }
    }
}

/// Renders a template; a failure (a bug, as templates are checked at build time) becomes a
/// plain-text page naming the template error.
pub fn render(template: &impl Template) -> String {
    template
        .render()
        .unwrap_or_else(|e| format!("kubedag UI: cannot render this page: {e}"))
}

/// URL of a Dag's runs page.
pub fn dag_url(namespace: &str, dag: &str) -> String {
    format!("/ns/{}/dags/{}", encode(namespace), encode(dag))
}

/// URL of a run's page.
pub fn run_url(namespace: &str, run: &str) -> String {
    format!("/ns/{}/runs/{}", encode(namespace), encode(run))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, for a path segment or a
/// query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The fill colour of a phase (run or step) in the graph: the same as the `.phase-*` CSS badges,
/// each with at least 4.5:1 contrast against white text.
pub fn phase_colour(phase: &str) -> &'static str {
    match phase {
        "Succeeded" => "#1a7f37",
        "Failed" => "#cf222e",
        "Running" => "#0969da",
        "Queued" => "#8250df",
        "Cancelled" => "#9a6700",
        "Skipped" => "#57606a",
        "Rejected" => "#bc4c00",
        _ => "#6e7781",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_characters_only() {
        assert_eq!(encode("m31-0001.fits"), "m31-0001.fits");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn every_phase_has_a_distinct_colour() {
        let phases = [
            "Pending",
            "Queued",
            "Running",
            "Succeeded",
            "Failed",
            "Cancelled",
            "Skipped",
            "Rejected",
        ];
        let colours: std::collections::BTreeSet<&str> = phases.iter().map(|p| phase_colour(p)).collect();
        assert_eq!(colours.len(), phases.len());
    }
}
