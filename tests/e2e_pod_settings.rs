//! End to end on the local cluster: pod settings from `defaults` and steps (volumes, volumeMounts,
//! workingDir, envFrom, securityContext, podSecurityContext, podLabels, podAnnotations) reach the
//! step pods, merged as documented, in a namespace that enforces the `restricted` Pod Security
//! Standard; the contract's labels and env vars win over user ones.

mod common;

use std::collections::BTreeMap;

use common::{STEP_IMAGE, TestEnv, run_yaml};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use kubedag::api::{Dag, DagRun, RunPhase};
use serde_json::json;

const GREETING: &str = "hello from a ConfigMap";

/// Labels the test namespace `pod-security.kubernetes.io/enforce: restricted` and shows that
/// the API server enforces it: a plain pod is refused there.
async fn enforce_restricted(env: &TestEnv) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let label = json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}});
    namespaces
        .patch(&env.ns, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label the namespace");
    let plain: Pod = serde_json::from_value(json!({
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": STEP_IMAGE}]},
    }))
    .unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let refused = env.api::<Pod>().create(&dry_run, &plain).await;
    match refused {
        Err(kube::Error::Api(e)) => assert!(e.message.contains("PodSecurity"), "{}", e.message),
        other => panic!("the restricted namespace admitted a plain pod: {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the local cluster: make test"]
async fn pod_settings_reach_pods_admitted_under_restricted_pod_security() {
    let env = TestEnv::new("podset").await;
    enforce_restricted(&env).await;
    let config: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"},
        // `file` collides with the param: the contract's env var must win over envFrom.
        "data": {"greeting": GREETING, "file": "forged"},
    }))
    .unwrap();
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
    let restricted = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
        "runAsUser": 65534,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    let dag = json!({
        "apiVersion": "kubedag.io/v1alpha1",
        "kind": "Dag",
        "metadata": {"name": "settings"},
        "spec": {
            "params": [{"name": "file"}],
            "defaults": {
                "image": STEP_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "envFrom": [{"configMapRef": {"name": "settings"}}],
                "volumes": [{"name": "config", "configMap": {"name": "settings"}}],
                "securityContext": restricted,
                "podSecurityContext": {"runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
                "podLabels": {"team": "astro", "kubedag.io/run": "forged"},
                "podAnnotations": {"example.com/owner": "astro team"},
            },
            "steps": [
                {
                    "name": "read-config",
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/settings"}],
                    "script": "printf '%s|%s|%s|%s' \"$(cat /etc/settings/greeting)\" \"$greeting\" \"$file\" \"$(id -u)\"",
                },
                {
                    "name": "scratch",
                    // Added to the defaults' volumes; the defaults' config volume stays.
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                    "workingDir": "/scratch",
                    "podLabels": {"team": "scratch-team"},
                    "script": "echo written > out.txt; printf '%s|%s' \"$(pwd)\" \"$(cat /scratch/out.txt)\"",
                },
            ],
        }
    });
    env.create::<Dag>(&dag.to_string()).await;
    env.create::<DagRun>(&run_yaml("r", "settings", &[("file", "m31.fits")]))
        .await;
    let done = env.wait_finished("r").await.status.unwrap();
    assert_eq!(done.phase, RunPhase::Succeeded, "{:?}", done.message);

    assert_eq!(
        env.step_log("r", "read-config").await,
        format!("{GREETING}|{GREETING}|m31.fits|65534")
    );
    assert_eq!(env.step_log("r", "scratch").await, "/scratch|written");

    let pods: BTreeMap<String, Pod> = env
        .pods_of("r")
        .await
        .into_iter()
        .map(|p| (p.labels()["kubedag.io/step"].clone(), p))
        .collect();
    assert_eq!(
        pods.len(),
        2,
        "one pod per step, both admitted in the restricted namespace"
    );
    for (step, pod) in &pods {
        assert_eq!(pod.labels()["kubedag.io/run"], "r", "{step}: the contract's label wins");
        assert_eq!(pod.annotations()["example.com/owner"], "astro team", "{step}");
        let spec = pod.spec.as_ref().unwrap();
        let security = spec.containers[0].security_context.as_ref().unwrap();
        assert_eq!(security.run_as_user, Some(65534), "{step}");
        assert_eq!(security.allow_privilege_escalation, Some(false), "{step}");
    }
    assert_eq!(pods["read-config"].labels()["team"], "astro");
    assert_eq!(
        pods["scratch"].labels()["team"],
        "scratch-team",
        "the step's podLabels win"
    );
    let volumes: Vec<&str> = pods["scratch"]
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| !n.starts_with("kube-api-access"))
        .collect();
    assert_eq!(volumes, ["config", "scratch"]);
}
