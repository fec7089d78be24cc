//! The benchmark's Dags and runs: the Dag shapes of the workloads (diamond, wide, single, and a
//! fan-out over many items), placed on the simulated node, their DagRuns, the same shapes as Argo Workflows, and untyped
//! API handles for the three kinds (the driver reads them as JSON).

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kubedag::testkit::STEP_IMAGE;
use kubedag::testkit::manifests::{self, DagManifest};
use serde_json::json;

use crate::sim_node::SIM_LABEL;

/// The `Dag`s of namespace `ns`.
pub fn dags(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &resource("Dag", "dags"))
}

/// The `DagRun`s of namespace `ns`.
pub fn dagruns(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &resource("DagRun", "dagruns"))
}

/// Argo's `Workflow`s of namespace `ns`.
pub fn workflows(client: &Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow");
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "workflows"),
    )
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubedag.io", "v1alpha1", kind), plural)
}

/// A Dag shape: its name and its steps with their dependencies.
pub struct Shape {
    pub dag: String,
    pub steps: Vec<(String, Vec<String>)>,
    /// Some(n): every step is a `forEach` over n items (`maxParallel: 0`), one Job per item.
    pub fan_out: Option<usize>,
}

impl Shape {
    /// `fetch` -> 3 × `calibrate-i` -> `merge`.
    pub fn diamond() -> Shape {
        Shape::fan(
            "diamond",
            "fetch",
            (1..=3).map(|i| format!("calibrate-{i}")).collect(),
            "merge",
        )
    }

    /// `start` -> `width - 2` parallel steps -> `end`.
    pub fn wide(width: usize) -> Shape {
        let middle = (1..=width.saturating_sub(2)).map(|i| format!("w-{i:04}")).collect();
        Shape::fan("wide", "start", middle, "end")
    }

    /// One step, `work`.
    pub fn single() -> Shape {
        Shape {
            dag: "single".into(),
            steps: vec![("work".to_string(), vec![])],
            fan_out: None,
        }
    }

    /// One step, `each`, fanning out over `items` items (`forEach.items`: "0", "1", …) with
    /// `maxParallel: 0`, so only the operator's Job cap bounds how many run at once.
    pub fn fan_out(items: usize) -> Shape {
        Shape {
            dag: "fanout".into(),
            steps: vec![("each".to_string(), vec![])],
            fan_out: Some(items),
        }
    }

    /// Step Jobs one run launches (one per step, or per item of a fan-out).
    pub fn jobs_per_run(&self) -> usize {
        self.steps.len() * self.fan_out.unwrap_or(1)
    }

    /// `root` -> every step of `middle` in parallel -> `last`.
    fn fan(dag: &str, root: &str, middle: Vec<String>, last: &str) -> Shape {
        let mut steps = vec![(root.to_string(), vec![])];
        steps.extend(middle.iter().map(|m| (m.clone(), vec![root.to_string()])));
        steps.push((last.to_string(), middle));
        Shape {
            dag: dag.into(),
            steps,
            fan_out: None,
        }
    }

    /// The Dag: a required `file` param, every step `true` on the simulated node (its node
    /// selector, and a toleration of every taint), a fan-out's steps with their `forEach`.
    pub fn object(&self) -> Result<DynamicObject, serde_json::Error> {
        let for_each = self.fan_out.map(|n| {
            let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            json!({"items": items, "maxParallel": 0})
        });
        let dag = self.steps.iter().fold(
            DagManifest::new(&self.dag)
                .param("file")
                .default_field("nodeSelector", json!({SIM_LABEL: "true"}))
                .default_field("tolerations", json!([{"operator": "Exists"}])),
            |dag, (name, depends)| {
                let mut step = manifests::script_step(name, "true", depends);
                if let Some(for_each) = &for_each {
                    step["forEach"] = for_each.clone();
                }
                dag.step(step)
            },
        );
        serde_json::from_value(dag.into_value())
    }
}

impl Shape {
    /// The same shape as an Argo Workflow `name` with parameter `file`: a `dag` template of one
    /// task per step (`dependencies` as the steps' `depends`), each running template `work`
    /// (`sh -c true` in the step image, `file` in its environment); a one-step shape is the
    /// `work` template alone, as an Argo user writes it. Placed like the Dags: the simulated
    /// node's selector and a toleration of every taint.
    pub fn workflow(&self, name: &str, file: &str) -> Result<DynamicObject, serde_json::Error> {
        let work = json!({
            "name": "work",
            "container": {"image": STEP_IMAGE, "command": ["sh", "-c", "true"],
                          "env": [{"name": "file", "value": "{{workflow.parameters.file}}"}]},
        });
        let (entrypoint, templates) = if self.steps.len() == 1 {
            ("work", vec![work])
        } else {
            let tasks: Vec<_> = self
                .steps
                .iter()
                .map(|(step, depends)| {
                    let mut task = json!({"name": step, "template": "work"});
                    if !depends.is_empty() {
                        task["dependencies"] = json!(depends);
                    }
                    task
                })
                .collect();
            ("main", vec![json!({"name": "main", "dag": {"tasks": tasks}}), work])
        };
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "labels": {"kubedag.io/dag": self.dag}},
            "spec": {
                "entrypoint": entrypoint,
                "arguments": {"parameters": [{"name": "file", "value": file}]},
                "nodeSelector": {SIM_LABEL: "true"},
                "tolerations": [{"operator": "Exists"}],
                "templates": templates,
            },
        }))
    }
}

/// A DagRun `name` of `dag` with param `file`.
pub fn run_object(name: &str, dag: &str, file: &str) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(manifests::dag_run(name, dag, &[("file", file)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_have_the_documented_steps_and_dependencies() {
        let diamond = Shape::diamond();
        let names: Vec<&str> = diamond.steps.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["fetch", "calibrate-1", "calibrate-2", "calibrate-3", "merge"]);
        assert_eq!(diamond.steps[4].1, ["calibrate-1", "calibrate-2", "calibrate-3"]);
        let wide = Shape::wide(500);
        assert_eq!(wide.steps.len(), 500);
        assert_eq!(wide.steps[1], ("w-0001".to_string(), vec!["start".to_string()]));
        assert_eq!(wide.steps[499].1.len(), 498);
        let dag = diamond.object().unwrap();
        assert_eq!(dag.data["spec"]["defaults"]["nodeSelector"][SIM_LABEL], "true");
        assert_eq!(dag.data["spec"]["steps"][4]["depends"][0], "calibrate-1");
        assert!(dag.data["spec"]["steps"][0].get("depends").is_none());
        assert!(dag.data["spec"]["steps"][0].get("forEach").is_none());
        assert_eq!(diamond.jobs_per_run(), 5);
    }

    #[test]
    fn a_fan_out_is_one_for_each_step_over_numbered_items() {
        let shape = Shape::fan_out(3);
        assert_eq!(shape.jobs_per_run(), 3);
        let dag = shape.object().unwrap();
        let step = &dag.data["spec"]["steps"][0];
        assert_eq!(step["name"], "each");
        assert_eq!(step["forEach"], json!({"items": ["0", "1", "2"], "maxParallel": 0}));
        let parsed: kubedag::api::Dag = serde_json::from_value(serde_json::to_value(&dag).unwrap()).unwrap();
        let for_each = parsed.spec.steps[0].for_each.as_ref().unwrap();
        assert_eq!((for_each.items.as_ref().unwrap().len(), for_each.max_parallel), (3, 0));
    }

    #[test]
    fn workflows_have_the_same_steps_on_the_simulated_node() {
        let wf = Shape::diamond().workflow("r-1", "f.fits").unwrap();
        let spec = &wf.data["spec"];
        assert_eq!(spec["entrypoint"], "main");
        assert_eq!(spec["nodeSelector"][SIM_LABEL], "true");
        assert_eq!(spec["arguments"]["parameters"][0]["value"], "f.fits");
        let tasks = spec["templates"][0]["dag"]["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 5);
        assert!(tasks[0].get("dependencies").is_none());
        assert_eq!(
            tasks[4]["dependencies"],
            json!(["calibrate-1", "calibrate-2", "calibrate-3"])
        );
        let single = Shape::single().workflow("r-2", "g").unwrap();
        assert_eq!(single.data["spec"]["entrypoint"], "work");
        assert_eq!(single.data["spec"]["templates"].as_array().unwrap().len(), 1);
        assert_eq!(single.data["spec"]["templates"][0]["container"]["image"], STEP_IMAGE);
    }
}
