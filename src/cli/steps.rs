//! A run's steps in dependency order, each with its depth in the graph and its recorded state:
//! the shape `kubectl dag get` draws and the order `kubectl dag logs` prints in.

use crate::api::{DagSpec, StepStatus};
use crate::engine::graph;

#[derive(Debug, Clone, PartialEq)]
pub struct StepView<'a> {
    pub name: &'a str,
    pub depends: &'a [String],
    /// Longest chain of dependencies above this step (0 for steps without dependencies).
    pub level: usize,
    pub status: Option<&'a StepStatus>,
    /// An `onExit` handler (listed after the main steps).
    pub handler: bool,
}

/// Every step of `spec` in dependency order (ties in spec order), then its `onExit` handlers
/// the same way, then any step that only `statuses` knows. Without a spec (a run not started
/// yet), the statuses in their own order.
pub fn ordered<'a>(spec: Option<&'a DagSpec>, statuses: &'a [StepStatus]) -> Vec<StepView<'a>> {
    let mut views: Vec<StepView<'a>> = Vec::new();
    if let Some(spec) = spec {
        views.extend(in_order(&spec.steps, statuses, false));
        views.extend(in_order(&spec.on_exit, statuses, true));
    }
    for status in statuses {
        if !views.iter().any(|v| v.name == status.name) {
            views.push(StepView {
                name: &status.name,
                depends: &[],
                level: 0,
                status: Some(status),
                handler: false,
            });
        }
    }
    views
}

fn in_order<'a>(steps: &'a [crate::api::Step], statuses: &'a [StepStatus], handler: bool) -> Vec<StepView<'a>> {
    let status_of = |name: &str| statuses.iter().find(|s| s.name == name);
    let mut views = Vec::new();
    {
        let order = graph::topological_order(steps).unwrap_or_else(|_| (0..steps.len()).collect());
        let index = graph::index_by_name(steps);
        let mut levels = vec![0usize; steps.len()];
        for &i in &order {
            let step = &steps[i];
            levels[i] = step
                .depends
                .iter()
                .filter_map(|d| index.get(d.as_str()))
                .map(|&d| levels[d] + 1)
                .max()
                .unwrap_or(0);
            views.push(StepView {
                name: &step.name,
                depends: &step.depends,
                level: levels[i],
                status: status_of(&step.name),
                handler,
            });
        }
    }
    views
}

/// The step name drawn as a tree: indented by its level, with a branch mark below the roots.
/// Exit handlers are marked `(onExit)`.
pub fn tree_label(view: &StepView<'_>) -> String {
    let name = if view.handler {
        format!("{} (onExit)", view.name)
    } else {
        view.name.to_string()
    };
    if view.level == 0 {
        name
    } else {
        format!("{}└─ {name}", "   ".repeat(view.level - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Step;

    fn step(name: &str, depends: &[&str]) -> Step {
        Step {
            name: name.into(),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn diamond_is_ordered_with_levels_from_the_longest_chain() {
        let spec = DagSpec {
            steps: vec![
                step("report", &["b", "fetch"]),
                step("b", &["a"]),
                step("a", &["fetch"]),
                step("fetch", &[]),
            ],
            ..Default::default()
        };
        let statuses = [StepStatus {
            name: "a".into(),
            attempts: 2,
            ..Default::default()
        }];
        let views = ordered(Some(&spec), &statuses);
        let names: Vec<(&str, usize)> = views.iter().map(|v| (v.name, v.level)).collect();
        assert_eq!(names, [("fetch", 0), ("a", 1), ("b", 2), ("report", 3)]);
        assert_eq!(views[1].status.unwrap().attempts, 2);
        assert!(views[0].status.is_none());
        let labels: Vec<String> = views.iter().map(tree_label).collect();
        assert_eq!(labels, ["fetch", "└─ a", "   └─ b", "      └─ report"]);
    }

    #[test]
    fn statuses_alone_keep_their_order() {
        let statuses = [
            StepStatus {
                name: "z".into(),
                ..Default::default()
            },
            StepStatus {
                name: "a".into(),
                ..Default::default()
            },
        ];
        let names: Vec<&str> = ordered(None, &statuses).iter().map(|v| v.name).collect();
        assert_eq!(names, ["z", "a"]);
    }
}
