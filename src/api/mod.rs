//! The custom resource types of `kubedag.io/v1alpha1` (`Dag`, `DagRun`, `DagTrigger`): data, schema, printer columns and CEL rules,
//! nothing else. Behaviour lives in `engine` (pure) and `controller` (Kubernetes I/O).

mod dag;
mod dagrun;
pub mod json_schema;
mod schema;
mod trigger;

pub use dag::*;
pub use dagrun::*;
pub use trigger::*;

/// API group of every kubedag resource.
pub const GROUP: &str = "kubedag.io";

/// The DagRun field a server-side field selector can match a run's Dag on (the CRD's
/// `selectableFields`, Kubernetes 1.32+): `kubectl get dr --field-selector spec.dagRef.name=X`.
pub const DAG_REF_FIELD: &str = "spec.dagRef.name";

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
    /// On a `forEach` instance's Job: the 0-based item index.
    pub const ITEM_INDEX: &str = "kubedag.io/item-index";
    /// On a child DagRun made by a `call` step: the parent run's name.
    pub const PARENT_RUN: &str = "kubedag.io/parent-run";
    /// On a child DagRun: the calling step of the parent.
    pub const PARENT_STEP: &str = "kubedag.io/parent-step";
}

/// Annotations the operator puts on objects it creates.
pub mod annotations {
    /// On a child DagRun: the Dags of the calling chain, outermost first, `/`-separated
    /// (`a/b`: a run of `a` called `b`, which called this run's Dag).
    pub const CALL_CHAIN: &str = "kubedag.io/call-chain";
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
