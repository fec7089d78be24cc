//! Builds the Kubernetes Job for one attempt of one step of one run.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::api::{ContainerSettings, DagRun, DagSpec, Step, StepStatus, labels};
use crate::engine::params::Params;
use crate::engine::{call, expand, naming, outputs, plan, references, settings, workspace};

/// Grace period for step pods on cancel: short, so a cancelled run stops within seconds.
const TERMINATION_GRACE_SECONDS: i64 = 5;

/// Identity of the run a Job belongs to; the same for every step of the run.
pub struct RunIdentity<'a> {
    pub run: &'a DagRun,
    pub dag_name: &'a str,
    pub request_id: &'a str,
    pub param_hash: &'a str,
    pub params: &'a Params,
    /// The run's step statuses: the outputs dependants read.
    pub steps: &'a [StepStatus],
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

    /// The name of the run's workspace claim (used only when its Dag has `spec.workspace`).
    fn workspace_claim(&self) -> String {
        let meta = &self.run.metadata;
        naming::workspace_claim(
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default(),
        )
    }

    /// The values `step`'s container gets as env vars, in order: one per resolved param, the
    /// KUBEDAG_* identity, `KUBEDAG_OUTPUTS` when it declares outputs, `KUBEDAG_RUN_PHASE` for an
    /// exit handler (the phase the main steps produced), and the `KUBEDAG_OUTPUT_<STEP>_<NAME>`
    /// variables its script names. They are also the names a `$(name)` reference may use.
    fn contract_vars(&self, spec: &DagSpec, step: &Step, item: Option<&plan::Item>) -> Vec<(String, String)> {
        let run_name = self.run.metadata.name.as_deref().unwrap_or_default();
        let mut vars: Vec<(String, String)> = self.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let identity = [
            ("KUBEDAG_DAG", self.dag_name),
            ("KUBEDAG_RUN", run_name),
            ("KUBEDAG_STEP", step.name.as_str()),
            ("KUBEDAG_REQUEST_ID", self.request_id),
            ("KUBEDAG_PARAM_HASH", self.param_hash),
        ];
        vars.extend(identity.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some(item) = item {
            vars.push((call::ITEM.into(), item.value.clone()));
            vars.push(("KUBEDAG_ITEM_INDEX".into(), item.index.to_string()));
        }
        if !step.outputs.is_empty() {
            vars.push((outputs::OUTPUTS_ENV.into(), outputs::OUTPUTS_PATH.into()));
        }
        if spec.on_exit.iter().any(|h| h.name == step.name) {
            let phase = plan::main_phase(spec, self.steps, self.run.spec.cancel);
            vars.push(("KUBEDAG_RUN_PHASE".into(), phase.as_str().into()));
        }
        for reference in references::script_refs(spec, step) {
            let value = self.output(&reference.step, &reference.output).unwrap_or_default();
            vars.push((reference.env_name(), value.to_string()));
        }
        vars
    }

    /// The recorded value of `step`'s output `name`.
    fn output(&self, step: &str, name: &str) -> Option<&str> {
        let status = self.steps.iter().find(|s| s.name == step)?;
        status.outputs.get(name).map(String::as_str)
    }

    /// What a `$(name)` in command, args or an env value stands for: a contract var (the last of
    /// equal names wins, as in the env list) or `steps.S.outputs.N`.
    fn reference<'v>(&'v self, vars: &'v [(String, String)], name: &str) -> Option<&'v str> {
        if let Some((_, value)) = vars.iter().rev().find(|(k, _)| k == name) {
            return Some(value);
        }
        let output = references::parse_key(name)?;
        Some(self.output(&output.step, &output.output).unwrap_or_default())
    }
}

/// A plain env var whose value Kubernetes delivers unchanged (escaped).
fn literal_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(expand::escape(value)),
        value_from: None,
    }
}

/// A user string for `command`, `args` or an env value: kubedag's `$(name)` references expanded
/// (in one pass, [`RunIdentity::reference`]), then escaped.
fn user_string<'v>(s: &str, lookup: &dyn Fn(&str) -> Option<&'v str>) -> String {
    expand::escape(&expand::expand(s, lookup))
}

/// The Job for `attempt` of `step` (of its `forEach` instance `item`, if set: env `item` and
/// `KUBEDAG_ITEM_INDEX`, `$(item)`, label `kubedag.io/item-index`), owned by the run (controller
/// reference), so deleting the run deletes its Jobs and their pods. The step's settings are merged over the Dag's defaults
/// ([`settings::merge`]); the contract's labels and env vars win over user ones of the same name.
pub fn build_job(
    id: &RunIdentity<'_>,
    spec: &DagSpec,
    step: &Step,
    attempt: u32,
    job_name: &str,
    item: Option<&plan::Item>,
) -> Job {
    let settings = settings::merge(&spec.defaults, &step.container);
    let settings = workspace::mount(settings, spec.workspace.as_deref(), &id.workspace_claim());
    let mut labels = id.labels(&step.name, attempt);
    if let Some(item) = item {
        labels.insert(labels::ITEM_INDEX.to_string(), item.index.to_string());
    }
    let vars = id.contract_vars(spec, step, item);
    let mut pod_labels = settings.pod_labels.clone();
    pod_labels.extend(labels.clone());
    let lookup = |name: &str| id.reference(&vars, name);
    let container = container(step, &settings, &vars, &lookup);
    let annotations = settings.pod_annotations.clone();
    let pod = pod_spec(settings, container);
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
                    labels: Some(pod_labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The step's container: its command (or script), the contract env vars then the user's (minus
/// any named like a contract one), and the container settings.
fn container<'v>(
    step: &Step,
    settings: &ContainerSettings,
    vars: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<&'v str>,
) -> Container {
    let mut env: Vec<EnvVar> = vars.iter().map(|(k, v)| literal_env(k, v)).collect();
    // User env values may reference params with $(name); kubedag expands them, Kubernetes must not.
    let user_env = settings.env.iter().filter(|e| !vars.iter().any(|(k, _)| *k == e.name));
    env.extend(user_env.map(|e| EnvVar {
        value: e.value.as_deref().map(|v| user_string(v, lookup)),
        ..e.clone()
    }));
    let (command, args) = match &step.script {
        // The script reaches `sh -c` exactly as written: escaped, never expanded by kubedag.
        Some(script) => (
            vec!["sh".to_string(), "-c".to_string(), expand::escape(script)],
            Vec::new(),
        ),
        None => {
            let strings = |v: &[String]| v.iter().map(|s| user_string(s, lookup)).collect::<Vec<_>>();
            (strings(&step.command), strings(&step.args))
        }
    };
    Container {
        name: step.name.clone(),
        image: settings.image.clone(),
        image_pull_policy: settings.image_pull_policy.clone(),
        command: non_empty(command),
        args: non_empty(args),
        env: Some(env),
        env_from: non_empty(settings.env_from.clone()),
        resources: settings.resources.as_deref().cloned(),
        volume_mounts: non_empty(settings.volume_mounts.clone()),
        working_dir: settings.working_dir.clone(),
        security_context: settings.security_context.as_deref().cloned(),
        // Outputs travel in the termination message; "File" never falls back to the log.
        termination_message_path: (!step.outputs.is_empty()).then(|| outputs::OUTPUTS_PATH.to_string()),
        termination_message_policy: (!step.outputs.is_empty()).then(|| "File".to_string()),
        ..Default::default()
    }
}

/// The pod of a step: `restartPolicy: Never`, no service links, a short grace period, and the
/// pod-level settings.
fn pod_spec(settings: ContainerSettings, container: Container) -> PodSpec {
    PodSpec {
        restart_policy: Some("Never".into()),
        containers: vec![container],
        service_account_name: settings.service_account_name,
        node_selector: (!settings.node_selector.is_empty()).then_some(settings.node_selector),
        tolerations: non_empty(settings.tolerations),
        volumes: non_empty(settings.volumes),
        security_context: settings.pod_security_context.map(|b| *b),
        affinity: settings.affinity.map(|b| *b),
        priority_class_name: settings.priority_class_name,
        image_pull_secrets: non_empty(settings.image_pull_secrets),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        ..Default::default()
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DagRunSpec;

    fn run() -> DagRun {
        let mut run = DagRun::new("r1", DagRunSpec::default());
        run.metadata.namespace = Some("ns".into());
        run.metadata.uid = Some("uid-1".into());
        run
    }

    fn user_env(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    /// The identity of run "r1" of Dag "img".
    fn identity<'a>(run: &'a DagRun, params: &'a Params, request_id: &'a str, hash: &'a str) -> RunIdentity<'a> {
        RunIdentity {
            run,
            dag_name: "img",
            request_id,
            param_hash: hash,
            params,
            steps: &[],
        }
    }

    #[test]
    fn job_carries_labels_env_owner_and_script() {
        let run = run();
        let params = Params::from([("file".to_string(), "m31.fits".to_string())]);
        let hash = "a".repeat(64);
        let id = identity(&run, &params, "req-1", &hash);
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
        let job = build_job(&id, &spec, &step, 2, "r1-fetch-2-abc", None);
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
        assert_eq!(c.command.as_ref().unwrap(), &["sh", "-c", "echo $$file"]);
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

    /// What the container sees: Kubernetes' expansion of `s` with the container's own env.
    fn k8s_sees(s: &str, env: &[EnvVar]) -> String {
        let lookup = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.as_deref());
        crate::engine::expand::k8s_model::k8s_expand(s, lookup)
    }

    #[test]
    fn dollar_sequences_reach_the_container_byte_for_byte() {
        let run = run();
        let b = "price $$5 total $(a) end";
        let params = Params::from([("a".to_string(), "alpha".to_string()), ("b".to_string(), b.to_string())]);
        let hash = "f".repeat(64);
        let id = identity(&run, &params, "req-$$", &hash);
        let user_env = user_env("MIXED", "a=$(a) pid=$$ run=$(KUBEDAG_RUN) $(UNDECLARED)");
        let spec = DagSpec {
            defaults: ContainerSettings {
                image: Some("busybox".into()),
                env: vec![user_env],
                ..Default::default()
            },
            ..Default::default()
        };
        let script = "echo $$ \"$b\" $(date) $(a)";
        let scripted = Step {
            name: "script".into(),
            script: Some(script.into()),
            ..Default::default()
        };
        let commanded = Step {
            name: "cmd".into(),
            command: vec!["printf".into(), "%s|%s".into()],
            args: vec!["$(b)".into(), "$$ $(KUBEDAG_STEP) $(nope) $(a".into()],
            ..Default::default()
        };
        let container = |step: &Step| {
            let job = build_job(&id, &spec, step, 1, "j", None);
            job.spec.unwrap().template.spec.unwrap().containers.remove(0)
        };
        let c = container(&scripted);
        let env = c.env.clone().unwrap();
        let seen = |s: &String| k8s_sees(s, &env);
        let command: Vec<String> = c.command.as_ref().unwrap().iter().map(seen).collect();
        assert_eq!(command, ["sh", "-c", script]);
        let env_seen = |name: &str| {
            let e = env.iter().find(|e| e.name == name).unwrap();
            k8s_sees(e.value.as_ref().unwrap(), &env)
        };
        assert_eq!(env_seen("b"), b);
        assert_eq!(env_seen("a"), "alpha");
        assert_eq!(env_seen("KUBEDAG_REQUEST_ID"), "req-$$");
        assert_eq!(env_seen("MIXED"), "a=alpha pid=$$ run=r1 $(UNDECLARED)");

        let c = container(&commanded);
        let env = c.env.clone().unwrap();
        let seen = |s: &String| k8s_sees(s, &env);
        let args: Vec<String> = c.args.as_ref().unwrap().iter().map(seen).collect();
        assert_eq!(args, [b, "$$ cmd $(nope) $(a"]);
        let command: Vec<String> = c.command.as_ref().unwrap().iter().map(seen).collect();
        assert_eq!(command, ["printf", "%s|%s"]);
    }

    #[test]
    fn pod_settings_reach_the_pod_and_the_contract_wins() {
        use k8s_openapi::api::core::v1::{PodSecurityContext, SecurityContext, Volume, VolumeMount};
        let run = run();
        let params = Params::from([("file".to_string(), "m31.fits".to_string())]);
        let hash = "c".repeat(64);
        let id = identity(&run, &params, "req-1", &hash);
        let user_labels = BTreeMap::from([
            (labels::RUN.to_string(), "forged".to_string()),
            ("team".to_string(), "astro".to_string()),
        ]);
        let spec = DagSpec {
            defaults: ContainerSettings {
                image: Some("busybox".into()),
                env: vec![user_env("file", "forged"), user_env("KUBEDAG_RUN", "forged")],
                volumes: vec![Volume {
                    name: "scratch".into(),
                    ..Default::default()
                }],
                pod_labels: user_labels,
                pod_annotations: BTreeMap::from([("note".to_string(), "hi".to_string())]),
                pod_security_context: Some(Box::new(PodSecurityContext {
                    run_as_user: Some(65534),
                    ..Default::default()
                })),
                priority_class_name: Some("low".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let step = Step {
            name: "work".into(),
            script: Some("true".into()),
            container: ContainerSettings {
                volume_mounts: vec![VolumeMount {
                    name: "scratch".into(),
                    mount_path: "/scratch".into(),
                    ..Default::default()
                }],
                working_dir: Some("/scratch".into()),
                security_context: Some(Box::new(SecurityContext {
                    allow_privilege_escalation: Some(false),
                    ..Default::default()
                })),
                ..Default::default()
            },
            ..Default::default()
        };
        let job = build_job(&id, &spec, &step, 1, "j", None);
        assert_eq!(
            job.metadata.labels.as_ref().unwrap().get("team"),
            None,
            "Job labels are the contract's"
        );
        let template = job.spec.unwrap().template;
        let meta = template.metadata.unwrap();
        let pod_labels = meta.labels.unwrap();
        assert_eq!(pod_labels[labels::RUN], "r1", "the contract's label wins");
        assert_eq!(pod_labels["team"], "astro");
        assert_eq!(meta.annotations.unwrap()["note"], "hi");
        let pod = template.spec.unwrap();
        assert_eq!(pod.volumes.as_ref().unwrap()[0].name, "scratch");
        assert_eq!(pod.security_context.unwrap().run_as_user, Some(65534));
        assert_eq!(pod.priority_class_name.as_deref(), Some("low"));
        let c = &pod.containers[0];
        assert_eq!(c.working_dir.as_deref(), Some("/scratch"));
        assert_eq!(c.volume_mounts.as_ref().unwrap()[0].mount_path, "/scratch");
        assert_eq!(
            c.security_context.as_ref().unwrap().allow_privilege_escalation,
            Some(false)
        );
        let env = c.env.as_ref().unwrap();
        let values = |name: &str| -> Vec<&str> {
            env.iter()
                .filter(|e| e.name == name)
                .map(|e| e.value.as_deref().unwrap())
                .collect()
        };
        assert_eq!(values("file"), ["m31.fits"], "the contract's env var wins, once");
        assert_eq!(values("KUBEDAG_RUN"), ["r1"]);
    }
}
