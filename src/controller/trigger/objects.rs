//! The objects the operator keeps for a directory or bucket trigger, as server-side apply
//! configurations (pure): the watcher's ServiceAccount, its Role and RoleBinding (least
//! privilege: create DagRuns, get its own trigger, read and write only its ledger and stats
//! ConfigMaps), those ConfigMaps, and a one-replica `Recreate` Deployment running
//! `kubedag watch-trigger` (non-root, read-only root filesystem, no capabilities, the volume
//! mounted read-only). Every object is owned by the trigger, so deleting it deletes them.

use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::{DagTrigger, labels};
use crate::controller::WatcherSettings;
use crate::engine::trigger::identity_hash;
use crate::runtime::watch_trigger::{ACCESS_KEY_ENV, MOUNT_PATH, REGION_ENV, SECRET_KEY_ENV};
use crate::watch::bucket::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::watch::ledger::SHARDS;
use crate::watch::store::ConfigMapLedger;
use crate::watch::{ledger_prefix, stats_name, watcher_name};

/// Label `app.kubernetes.io/component` of every watcher object.
pub const COMPONENT: &str = "trigger-watcher";
/// Annotation on the Deployment: the hash of everything applied, so unchanged objects are not
/// applied again on every reconcile.
pub const APPLIED_HASH: &str = "kubedag.io/applied-hash";
/// Label of the stats ConfigMap (the one object of a watcher whose changes the operator watches).
pub const REPORT_LABEL: &str = "kubedag.io/watcher-report";
/// The user the watcher runs as (the image's non-root user).
pub const WATCHER_UID: i64 = 65532;

/// The apply configurations of one trigger, in the order they are applied (the Deployment
/// last, carrying the hash of all of them).
#[derive(Clone, Debug, PartialEq)]
pub struct WatcherObjects {
    pub config_maps: Vec<Value>,
    pub service_account: Value,
    pub role: Value,
    pub role_binding: Value,
    pub deployment: Value,
}

/// The label selector of a trigger's watcher pods.
pub fn pod_selector(trigger: &str) -> String {
    format!("{}={trigger},app.kubernetes.io/component={COMPONENT}", labels::TRIGGER)
}

/// What the operator applies for `trigger` with `image`.
pub fn desired(trigger: &DagTrigger, settings: &WatcherSettings, image: &str) -> WatcherObjects {
    let name = trigger.name_any();
    let meta = |object_name: String| {
        json!({
            "name": object_name,
            "namespace": trigger.namespace(),
            "labels": {labels::TRIGGER: name, "app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/managed-by": "kubedag"},
            "ownerReferences": [trigger.controller_owner_ref(&())],
        })
    };
    let watcher = watcher_name(&name);
    let mut maps: Vec<String> = (0..SHARDS)
        .map(|i| ConfigMapLedger::shard_name(&ledger_prefix(&name), i))
        .collect();
    maps.push(stats_name(&name));
    let mut config_maps: Vec<Value> = maps
        .iter()
        .map(|m| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(m.clone())}))
        .collect();
    if let Some(stats) = config_maps.last_mut() {
        stats["metadata"]["labels"][REPORT_LABEL] = json!("true");
    }
    let service_account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(watcher.clone())});
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(watcher.clone()),
        "rules": [
            {"apiGroups": ["kubedag.io"], "resources": ["dagruns"], "verbs": ["create"]},
            {"apiGroups": ["kubedag.io"], "resources": ["dagtriggers"], "verbs": ["get"], "resourceNames": [name]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update", "patch"], "resourceNames": maps},
        ],
    });
    let role_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(watcher.clone()),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": watcher},
        "subjects": [{"kind": "ServiceAccount", "name": watcher, "namespace": trigger.namespace()}],
    });
    let mut deployment = deployment(trigger, settings, image, meta(watcher.clone()));
    let hash = identity_hash(
        &serde_json::to_string(&(&config_maps, &service_account, &role, &role_binding, &deployment))
            .unwrap_or_default(),
    );
    deployment["metadata"]["annotations"] = json!({APPLIED_HASH: hash[..16]});
    WatcherObjects {
        config_maps,
        service_account,
        role,
        role_binding,
        deployment,
    }
}

fn deployment(trigger: &DagTrigger, settings: &WatcherSettings, image: &str, meta: Value) -> Value {
    let name = trigger.name_any();
    let pod_labels = json!({labels::TRIGGER: name, "app.kubernetes.io/component": COMPONENT});
    let mut env = vec![
        json!({"name": "KUBEDAG_TRIGGER", "value": name}),
        json!({"name": "KUBEDAG_TRIGGER_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": "KUBEDAG_WATCH_ROOT", "value": MOUNT_PATH}),
        json!({"name": "KUBEDAG_RESCAN_SECONDS", "value": settings.rescan_seconds.to_string()}),
        json!({"name": "RUST_LOG", "value": "info,kube=warn"}),
    ];
    let (mut volumes, mut mounts) = (vec![], vec![]);
    if let Some(dir) = &trigger.spec.directory {
        volumes.push(serde_json::to_value(&dir.volume).unwrap_or_default());
        mounts.push(json!({"name": dir.volume.name, "mountPath": MOUNT_PATH, "readOnly": true}));
    }
    if let Some(secret) = trigger.spec.bucket.as_ref().and_then(|b| b.credentials_secret.as_ref()) {
        let from = |var: &str, key: &str, optional: bool| json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": optional}}});
        env.push(from(ACCESS_KEY_ENV, ACCESS_KEY_ID, false));
        env.push(from(SECRET_KEY_ENV, SECRET_ACCESS_KEY, false));
        env.push(from(REGION_ENV, "region", true));
    }
    // A spec change rolls the pod (the watcher reads its trigger once, at start).
    let spec_hash = identity_hash(&serde_json::to_string(&trigger.spec).unwrap_or_default());
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": if trigger.spec.suspend { 0 } else { 1 },
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {"kubedag.io/spec-hash": spec_hash[..16]}},
                "spec": {
                    "serviceAccountName": watcher_name(&name),
                    "terminationGracePeriodSeconds": 10,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": WATCHER_UID,
                        "runAsGroup": WATCHER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "watcher",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["watch-trigger"],
                        "env": env,
                        "volumeMounts": mounts,
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "32Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }],
                    "volumes": volumes,
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DagTriggerSpec;

    fn trigger(yaml: &str) -> DagTrigger {
        let mut t = DagTrigger::new("scan", serde_yaml::from_str::<DagTriggerSpec>(yaml).unwrap());
        t.metadata.namespace = Some("ns".into());
        t.metadata.uid = Some("u-1".into());
        t
    }

    #[test]
    fn a_directory_watcher_mounts_its_volume_read_only_with_least_privilege() {
        let t = trigger("dagRef: {name: d}\ndirectory: {volume: {name: in, persistentVolumeClaim: {claimName: c}}}\n");
        let o = desired(&t, &WatcherSettings::default(), "img:1");
        assert_eq!(o.config_maps.len(), SHARDS + 1);
        let pod = &o.deployment["spec"]["template"]["spec"];
        assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "c");
        assert_eq!(
            pod["containers"][0]["volumeMounts"][0],
            json!({"name": "in", "mountPath": "/watch", "readOnly": true})
        );
        assert_eq!(pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(o.deployment["spec"]["strategy"]["type"], "Recreate");
        assert_eq!(o.deployment["spec"]["replicas"], 1);
        assert_eq!(o.deployment["metadata"]["ownerReferences"][0]["uid"], "u-1");
        let rules = o.role["rules"].as_array().unwrap();
        assert_eq!(rules[0]["verbs"], json!(["create"]));
        assert_eq!(rules[1]["resourceNames"], json!(["scan"]));
        assert_eq!(rules[2]["resourceNames"].as_array().unwrap().len(), SHARDS + 1);
        assert!(rules.iter().all(|r| {
            r["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v != "delete" && v != "list")
        }));
    }

    #[test]
    fn suspend_scales_to_zero_and_any_change_changes_the_applied_hash() {
        let yaml = "dagRef: {name: d}\nbucket: {endpoint: 'http://s3:9000', bucket: b, credentialsSecret: creds}\n";
        let running = desired(&trigger(yaml), &WatcherSettings::default(), "img:1");
        let env = &running.deployment["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["valueFrom"]["secretKeyRef"]["key"] == "secretAccessKey")
        );
        let suspended = desired(
            &trigger(&format!("{yaml}suspend: true\n")),
            &WatcherSettings::default(),
            "img:1",
        );
        assert_eq!(suspended.deployment["spec"]["replicas"], 0);
        let other_image = desired(&trigger(yaml), &WatcherSettings::default(), "img:2");
        let hash = |o: &WatcherObjects| o.deployment["metadata"]["annotations"][APPLIED_HASH].clone();
        assert_ne!(hash(&running), hash(&suspended));
        assert_ne!(hash(&running), hash(&other_image));
        assert_eq!(
            hash(&running),
            hash(&desired(&trigger(yaml), &WatcherSettings::default(), "img:1"))
        );
    }
}
