//! Builds the Kubernetes Job for one attempt of one step of one run.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::api::{DagRun, DagSpec, Step, labels};
use crate::engine::params::Params;

/// Grace period for step pods on cancel: short, so a cancelled run stops within seconds.
const TERMINATION_GRACE_SECONDS: i64 = 5;

/// Identity of the run a Job belongs to; the same for every step of the run.
pub struct RunIdentity<'a> {
    pub run: &'a DagRun,
    pub dag_name: &'a str,
    pub request_id: &'a str,
    pub param_hash: &'a str,
    pub params: &'a Params,
}

impl RunIdentity<'_> {
    /// The contract's labels for every Job and pod of this run's `step`.
    pub fn labels(&self, step: &str, attempt: u32) -> BTreeMap<String, String> {
        let run_name = self.run.metadata.name.clone().unwrap_or_default();
        let short_hash: String = self.param_hash.chars().take(labels::PARAM_HASH_LABEL_LEN).collect();
        BTreeMap::from([
            (labels::DAG.to_string(), self.dag_name.to_string()),
            (labels::RUN.to_string(), run_name),
            (labels::STEP.to_string(), step.to_string()),
            (labels::ATTEMPT.to_string(), attempt.to_string()),
            (labels::REQUEST_ID.to_string(), self.request_id.to_string()),
            (labels::PARAM_HASH.to_string(), short_hash),
        ])
    }

    /// Env vars every step container gets: one per resolved param, then the KUBEDAG_* identity.
    fn env(&self, step: &str) -> Vec<EnvVar> {
        let var = |name: &str, value: &str| EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        };
        let run_name = self.run.metadata.name.as_deref().unwrap_or_default();
        let mut env: Vec<EnvVar> = self.params.iter().map(|(k, v)| var(k, v)).collect();
        env.push(var("KUBEDAG_DAG", self.dag_name));
        env.push(var("KUBEDAG_RUN", run_name));
        env.push(var("KUBEDAG_STEP", step));
        env.push(var("KUBEDAG_REQUEST_ID", self.request_id));
        env.push(var("KUBEDAG_PARAM_HASH", self.param_hash));
        env
    }
}

/// The Job for `attempt` of `step`, owned by the run (controller reference), so deleting the run
/// deletes its Jobs and their pods.
pub fn build_job(id: &RunIdentity<'_>, spec: &DagSpec, step: &Step, attempt: u32, job_name: &str) -> Job {
    let defaults = &spec.defaults;
    let own = &step.container;
    let labels = id.labels(&step.name, attempt);
    let mut env = id.env(&step.name);
    // User env comes after the params so it may reference them with $(name).
    env.extend(defaults.env.iter().cloned());
    env.extend(own.env.iter().cloned());
    let (command, args) = match &step.script {
        Some(script) => (vec!["sh".to_string(), "-c".to_string(), script.clone()], Vec::new()),
        None => (step.command.clone(), step.args.clone()),
    };
    let non_empty = |v: Vec<String>| if v.is_empty() { None } else { Some(v) };
    let container = Container {
        name: step.name.clone(),
        image: own.image.clone().or_else(|| defaults.image.clone()),
        image_pull_policy: own
            .image_pull_policy
            .clone()
            .or_else(|| defaults.image_pull_policy.clone()),
        command: non_empty(command),
        args: non_empty(args),
        env: Some(env),
        resources: own.resources.clone().or_else(|| defaults.resources.clone()),
        ..Default::default()
    };
    let node_selector = if own.node_selector.is_empty() {
        &defaults.node_selector
    } else {
        &own.node_selector
    };
    let tolerations = if own.tolerations.is_empty() {
        &defaults.tolerations
    } else {
        &own.tolerations
    };
    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        containers: vec![container],
        service_account_name: own
            .service_account_name
            .clone()
            .or_else(|| defaults.service_account_name.clone()),
        node_selector: (!node_selector.is_empty()).then(|| node_selector.clone()),
        tolerations: (!tolerations.is_empty()).then(|| tolerations.clone()),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(job_name.to_string()),
            namespace: id.run.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: id.run.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            completions: Some(1),
            parallelism: Some(1),
            active_deadline_seconds: step.timeout_seconds,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ContainerSettings, DagRunSpec};

    fn run() -> DagRun {
        let mut run = DagRun::new("r1", DagRunSpec::default());
        run.metadata.namespace = Some("ns".into());
        run.metadata.uid = Some("uid-1".into());
        run
    }

    #[test]
    fn job_carries_labels_env_owner_and_script() {
        let run = run();
        let params = Params::from([("file".to_string(), "m31.fits".to_string())]);
        let hash = "a".repeat(64);
        let id = RunIdentity {
            run: &run,
            dag_name: "img",
            request_id: "req-1",
            param_hash: &hash,
            params: &params,
        };
        let spec = DagSpec {
            defaults: ContainerSettings {
                image: Some("busybox".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let step = Step {
            name: "fetch".into(),
            script: Some("echo $file".into()),
            ..Default::default()
        };
        let job = build_job(&id, &spec, &step, 2, "r1-fetch-2-abc");
        let labels = job.metadata.labels.clone().unwrap();
        assert_eq!(labels[labels::PARAM_HASH], "a".repeat(32));
        assert_eq!(labels[labels::REQUEST_ID], "req-1");
        assert_eq!(labels[labels::STEP], "fetch");
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.uid.as_str(), owner.controller), ("uid-1", Some(true)));
        let spec = job.spec.unwrap();
        let pod = spec.template.spec.unwrap();
        assert_eq!(spec.template.metadata.unwrap().labels.unwrap(), labels);
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let c = &pod.containers[0];
        assert_eq!(c.command.as_ref().unwrap(), &["sh", "-c", "echo $file"]);
        let env: Vec<(String, String)> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e.value.clone().unwrap()))
            .collect();
        assert!(env.contains(&("file".into(), "m31.fits".into())));
        assert!(env.contains(&("KUBEDAG_PARAM_HASH".into(), "a".repeat(64))));
        assert!(env.contains(&("KUBEDAG_REQUEST_ID".into(), "req-1".into())));
        assert_eq!(c.image.as_deref(), Some("busybox"));
    }
}
