//! `kubectl dag graph RUN|DAG -o mermaid|dot`: the step graph as Mermaid or Graphviz text, for
//! docs, chat and `dot -Tsvg`. A run's steps are coloured by phase; a Dag's are plain.

use std::process::ExitCode;

use crate::api::{Dag, DagRun, DagSpec, StepPhase};

use super::cluster::Cluster;
use super::error::CliError;
use super::output;
use super::steps::{self, StepView};

/// `-o` of `graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders in GitHub, GitLab and most wikis).
    #[default]
    Mermaid,
    /// A Graphviz digraph (`| dot -Tsvg > graph.svg`).
    Dot,
}

/// Draws run `name`, or Dag `name` when there is no such run.
pub async fn graph(cluster: &Cluster, name: &str, format: GraphFormat) -> Result<ExitCode, CliError> {
    let text = match cluster.get::<DagRun>("DagRun", name).await {
        Ok(run) => {
            let status = run.status.clone().unwrap_or_default();
            let spec = match status.dag_spec {
                Some(spec) => std::sync::Arc::unwrap_or_clone(spec),
                None => cluster.get::<Dag>("Dag", &run.spec.dag_ref.name).await?.spec,
            };
            render(&spec, &status.steps, format)
        }
        Err(CliError::NotFound { .. }) => match cluster.get::<Dag>("Dag", name).await {
            Ok(dag) => render(&dag.spec, &[], format),
            Err(CliError::NotFound { namespace, .. }) => {
                return Err(CliError::Invalid(format!(
                    "no DagRun or Dag {name:?} in namespace {namespace:?}"
                )));
            }
            Err(other) => return Err(other),
        },
        Err(other) => return Err(other),
    };
    output::emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The graph of `spec`, nodes labelled (and coloured) by the phases in `statuses` when given.
pub fn render(spec: &DagSpec, statuses: &[crate::api::StepStatus], format: GraphFormat) -> String {
    let views = steps::ordered(Some(spec), statuses);
    match format {
        GraphFormat::Mermaid => mermaid(&views),
        GraphFormat::Dot => dot(&views),
    }
}

/// Fill colours by phase (light, so the black labels stay readable).
fn fill(phase: Option<StepPhase>) -> &'static str {
    match phase {
        None => "#ffffff",
        Some(StepPhase::Pending) => "#eeeeee",
        Some(StepPhase::Running) => "#cfe2ff",
        Some(StepPhase::Succeeded) => "#d1e7dd",
        Some(StepPhase::Failed) => "#f8d7da",
        Some(StepPhase::Skipped) => "#fff3cd",
        Some(StepPhase::Cancelled) => "#e2e3e5",
    }
}

fn phase_of(view: &StepView<'_>) -> Option<StepPhase> {
    view.status.map(|s| s.phase)
}

fn label(view: &StepView<'_>) -> String {
    let mut label = view.name.to_string();
    if view.handler {
        label.push_str(" (onExit)");
    }
    if let Some(phase) = phase_of(view) {
        label.push_str(&format!(" · {phase:?}"));
    }
    label
}

/// Node ids: `s0`, `s1`... (step names may hold characters neither format allows bare).
fn ids<'a>(views: &[StepView<'a>]) -> impl Fn(&str) -> String + 'a {
    let names: Vec<&'a str> = views.iter().map(|v| v.name).collect();
    move |name| match names.iter().position(|n| *n == name) {
        Some(i) => format!("s{i}"),
        None => "unknown".to_string(),
    }
}

fn mermaid(views: &[StepView<'_>]) -> String {
    let id = ids(views);
    let mut text = String::from("flowchart TD\n");
    for view in views {
        let shape = if view.handler { ("([", "])") } else { ("[", "]") };
        let label = label(view).replace('"', "#quot;");
        text.push_str(&format!("  {}{}\"{label}\"{}\n", id(view.name), shape.0, shape.1));
    }
    for view in views {
        for dependency in view.depends {
            text.push_str(&format!("  {} --> {}\n", id(dependency), id(view.name)));
        }
    }
    for view in views.iter().filter(|v| v.status.is_some()) {
        text.push_str(&format!("  style {} fill:{}\n", id(view.name), fill(phase_of(view))));
    }
    text
}

fn dot(views: &[StepView<'_>]) -> String {
    let id = ids(views);
    let mut text = String::from("digraph dag {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\"];\n");
    for view in views {
        let label = label(view).replace('\\', "\\\\").replace('"', "\\\"");
        let dashed = if view.handler { ", peripheries=2" } else { "" };
        text.push_str(&format!(
            "  {} [label=\"{label}\", fillcolor=\"{}\"{dashed}];\n",
            id(view.name),
            fill(phase_of(view))
        ));
    }
    for view in views {
        for dependency in view.depends {
            text.push_str(&format!("  {} -> {};\n", id(dependency), id(view.name)));
        }
    }
    text.push_str("}\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Step, StepStatus};

    fn spec() -> DagSpec {
        let step = |name: &str, depends: &[&str]| Step {
            name: name.into(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        DagSpec {
            steps: vec![step("a", &[]), step("b \"quoted\"", &["a"]), step("c", &["a"])],
            on_exit: vec![step("notify", &[])],
            ..Default::default()
        }
    }

    fn status(name: &str, phase: StepPhase) -> StepStatus {
        StepStatus {
            name: name.into(),
            phase,
            ..Default::default()
        }
    }

    #[test]
    fn mermaid_has_every_step_edge_and_phase_colour() {
        let statuses = [status("a", StepPhase::Succeeded), status("c", StepPhase::Failed)];
        let text = render(&spec(), &statuses, GraphFormat::Mermaid);
        assert!(text.starts_with("flowchart TD\n"));
        assert!(text.contains("s0[\"a · Succeeded\"]"), "{text}");
        assert!(text.contains("[\"b #quot;quoted#quot;\"]"), "{text}");
        assert!(text.contains("s3([\"notify (onExit)\"])"), "{text}");
        assert!(text.contains("s0 --> s1\n") && text.contains("s0 --> s2\n"), "{text}");
        assert!(
            text.contains("style s0 fill:#d1e7dd") && text.contains("style s2 fill:#f8d7da"),
            "{text}"
        );
        assert!(
            !text.contains("style s1"),
            "a step without status is not coloured: {text}"
        );
    }

    #[test]
    fn dot_escapes_labels_and_draws_every_edge() {
        let text = render(&spec(), &[status("a", StepPhase::Running)], GraphFormat::Dot);
        assert!(text.starts_with("digraph dag {"));
        assert!(text.contains("label=\"b \\\"quoted\\\"\""), "{text}");
        assert!(
            text.contains("s0 [label=\"a · Running\", fillcolor=\"#cfe2ff\"]"),
            "{text}"
        );
        assert_eq!(text.matches(" -> ").count(), 2, "{text}");
        assert!(text.trim_end().ends_with('}'));
    }
}
