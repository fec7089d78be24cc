//! The custom resource types of `kubedag.io/v1alpha1` (`Dag`, `DagRun`, `DagTrigger`): data, schema, printer columns and CEL rules,
//! nothing else. Behaviour lives in `engine` (pure) and `controller` (Kubernetes I/O).

mod dag;
mod dagrun;
mod schema;
mod trigger;

pub use dag::*;
pub use dagrun::*;
pub use trigger::*;

/// API group of every kubedag resource.
pub const GROUP: &str = "kubedag.io";

/// Labels put on every Job and pod the operator creates.
pub mod labels {
    pub const DAG: &str = "kubedag.io/dag";
    pub const RUN: &str = "kubedag.io/run";
    pub const STEP: &str = "kubedag.io/step";
    pub const ATTEMPT: &str = "kubedag.io/attempt";
    pub const REQUEST_ID: &str = "kubedag.io/request-id";
    pub const PARAM_HASH: &str = "kubedag.io/param-hash";
    /// On runs a `DagTrigger` submitted, and on the objects the operator makes for a trigger: its name.
    pub const TRIGGER: &str = "kubedag.io/trigger";
    /// How many characters of the parameter hash go into the label.
    pub const PARAM_HASH_LABEL_LEN: usize = 32;
}

/// The CustomResourceDefinitions as a multi-document YAML stream (the content of `crds/`).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    Ok(format!(
        "---\n{}---\n{}---\n{}",
        serde_yaml::to_string(&Dag::crd())?,
        serde_yaml::to_string(&DagRun::crd())?,
        serde_yaml::to_string(&DagTrigger::crd())?
    ))
}
