//! Dependency order of a Dag's steps.

use std::collections::HashMap;

use crate::api::Step;

/// Index of each step by name. Later duplicates are ignored (validation reports them).
pub fn index_by_name(steps: &[Step]) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        index.entry(step.name.as_str()).or_insert(i);
    }
    index
}

/// Step indices in an order where every step comes after all its dependencies (Kahn's algorithm,
/// ties broken by spec order). `Err` holds the steps that lie on or behind a cycle, in spec order.
/// Unknown dependencies are ignored here (validation reports them).
pub fn topological_order(steps: &[Step]) -> Result<Vec<usize>, Vec<usize>> {
    let index = index_by_name(steps);
    let mut missing_deps = vec![0usize; steps.len()];
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for dep in &step.depends {
            if let Some(&d) = index.get(dep.as_str()) {
                missing_deps[i] += 1;
                dependants[d].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..steps.len()).filter(|&i| missing_deps[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependants[i] {
            missing_deps[d] -= 1;
            if missing_deps[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == steps.len() {
        Ok(order)
    } else {
        Err((0..steps.len()).filter(|&i| missing_deps[i] > 0).collect())
    }
}

/// Finds one cycle among `candidates` (the output of a failed [`topological_order`]) and returns the
/// step names along it, e.g. `["a", "b", "c"]` for a -> b -> c -> a.
pub fn find_cycle(steps: &[Step], candidates: &[usize]) -> Vec<String> {
    let index = index_by_name(steps);
    let on_cycle_side: std::collections::HashSet<usize> = candidates.iter().copied().collect();
    // Every candidate has a dependency among the candidates, so walking dependencies must revisit a step.
    let Some(&start) = candidates.first() else {
        return Vec::new();
    };
    let mut path: Vec<usize> = Vec::new();
    let mut seen_at: HashMap<usize, usize> = HashMap::new();
    let mut current = start;
    loop {
        if let Some(&pos) = seen_at.get(&current) {
            let mut cycle: Vec<String> = path[pos..].iter().map(|&i| steps[i].name.clone()).collect();
            cycle.reverse(); // walking went dependant -> dependency; report in execution order
            return cycle;
        }
        seen_at.insert(current, path.len());
        path.push(current);
        let next = steps[current]
            .depends
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .find(|d| on_cycle_side.contains(d));
        match next {
            Some(n) => current = n,
            None => return Vec::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A Dag spec with a default image and these steps.
    pub fn spec(steps: Vec<Step>) -> crate::api::DagSpec {
        crate::api::DagSpec {
            defaults: crate::api::ContainerSettings {
                image: Some("busybox".into()),
                ..Default::default()
            },
            steps,
            ..Default::default()
        }
    }

    pub fn step(name: &str, deps: &[&str]) -> Step {
        Step {
            name: name.into(),
            depends: deps.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn diamond_orders_dependencies_first() {
        let steps = [
            step("d", &["b", "c"]),
            step("b", &["a"]),
            step("c", &["a"]),
            step("a", &[]),
        ];
        let order = topological_order(&steps).unwrap();
        let pos = |name: &str| order.iter().position(|&i| steps[i].name == name).unwrap();
        assert!(pos("a") < pos("b") && pos("a") < pos("c") && pos("b") < pos("d") && pos("c") < pos("d"));
    }

    #[test]
    fn cycle_is_reported_with_its_steps_in_order() {
        let steps = [
            step("start", &[]),
            step("a", &["c", "start"]),
            step("b", &["a"]),
            step("c", &["b"]),
            step("tail", &["c"]),
        ];
        let stuck = topological_order(&steps).unwrap_err();
        let cycle = find_cycle(&steps, &stuck);
        assert_eq!(cycle.len(), 3);
        let rotated: Vec<&str> = {
            let p = cycle.iter().position(|s| s == "a").unwrap();
            cycle[p..].iter().chain(cycle[..p].iter()).map(String::as_str).collect()
        };
        assert_eq!(rotated, ["a", "b", "c"]);
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let steps = [step("a", &["a"])];
        let stuck = topological_order(&steps).unwrap_err();
        assert_eq!(find_cycle(&steps, &stuck), ["a"]);
    }
}
