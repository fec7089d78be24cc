//! The effective container and pod settings of one step: the Dag's `defaults` merged with the
//! step's own [`ContainerSettings`].
//!
//! Rules (also in the doc of [`ContainerSettings`]):
//! - a value the step sets replaces the default's (`image`, `resources`, `securityContext`,
//!   `affinity`, ... as whole objects; `nodeSelector`, `tolerations` and `envFrom` as whole lists);
//! - keyed lists merge entry by entry, in the defaults' order with the step's new entries after:
//!   `env`, `volumes` and `imagePullSecrets` by `name`, `volumeMounts` by `mountPath` (Kubernetes
//!   requires mount paths, not names, to be unique in a container: one volume may be mounted twice);
//! - `podLabels` and `podAnnotations` merge as maps, the step winning.
//!
//! The contract's labels and env vars are not part of this: the Job builder puts them over the
//! result, so they always win.

use std::collections::BTreeMap;

use crate::api::ContainerSettings;

/// `defaults` with `own` (a step's settings) applied; see the module doc for the rules.
pub fn merge(defaults: &ContainerSettings, own: &ContainerSettings) -> ContainerSettings {
    ContainerSettings {
        image: pick(&own.image, &defaults.image),
        image_pull_policy: pick(&own.image_pull_policy, &defaults.image_pull_policy),
        env: merge_keyed(&defaults.env, &own.env, |e| e.name.clone()),
        env_from: replace_list(&defaults.env_from, &own.env_from),
        resources: pick(&own.resources, &defaults.resources),
        service_account_name: pick(&own.service_account_name, &defaults.service_account_name),
        node_selector: if own.node_selector.is_empty() {
            defaults.node_selector.clone()
        } else {
            own.node_selector.clone()
        },
        tolerations: replace_list(&defaults.tolerations, &own.tolerations),
        volumes: merge_keyed(&defaults.volumes, &own.volumes, |v| v.name.clone()),
        volume_mounts: merge_keyed(&defaults.volume_mounts, &own.volume_mounts, |m| m.mount_path.clone()),
        working_dir: pick(&own.working_dir, &defaults.working_dir),
        security_context: pick(&own.security_context, &defaults.security_context),
        pod_security_context: pick(&own.pod_security_context, &defaults.pod_security_context),
        affinity: pick(&own.affinity, &defaults.affinity),
        priority_class_name: pick(&own.priority_class_name, &defaults.priority_class_name),
        image_pull_secrets: merge_keyed(&defaults.image_pull_secrets, &own.image_pull_secrets, |r| {
            r.name.clone()
        }),
        pod_labels: merge_maps(&defaults.pod_labels, &own.pod_labels),
        pod_annotations: merge_maps(&defaults.pod_annotations, &own.pod_annotations),
    }
}

/// The step's value when it sets one, else the default's.
fn pick<T: Clone>(own: &Option<T>, default: &Option<T>) -> Option<T> {
    own.as_ref().or(default.as_ref()).cloned()
}

/// `own` when it has entries, else `defaults`.
fn replace_list<T: Clone>(defaults: &[T], own: &[T]) -> Vec<T> {
    if own.is_empty() { defaults } else { own }.to_vec()
}

/// The defaults' entries in order, each replaced by the step's entry of the same key when there
/// is one, then the step's entries with new keys in the step's order.
fn merge_keyed<T: Clone, K: PartialEq>(defaults: &[T], own: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let replaced = defaults
        .iter()
        .map(|d| own.iter().find(|o| key(o) == key(d)).unwrap_or(d));
    let added = own.iter().filter(|o| !defaults.iter().any(|d| key(d) == key(o)));
    replaced.chain(added).cloned().collect()
}

/// `defaults` overlaid with `own`: the step wins on equal keys.
fn merge_maps(defaults: &BTreeMap<String, String>, own: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    defaults
        .iter()
        .chain(own)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        EmptyDirVolumeSource, EnvFromSource, EnvVar, LocalObjectReference, SecurityContext, Volume, VolumeMount,
    };
    use proptest::prelude::*;

    fn volume(name: &str, medium: &str) -> Volume {
        Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some(medium.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..Default::default()
        }
    }

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn defaults() -> ContainerSettings {
        ContainerSettings {
            image: Some("base".into()),
            working_dir: Some("/work".into()),
            env: vec![env("A", "1"), env("B", "2")],
            env_from: vec![EnvFromSource {
                prefix: Some("D_".into()),
                ..Default::default()
            }],
            volumes: vec![volume("data", ""), volume("cache", "")],
            volume_mounts: vec![mount("data", "/data"), mount("cache", "/cache")],
            image_pull_secrets: vec![LocalObjectReference { name: "reg".into() }],
            security_context: Some(Box::new(SecurityContext {
                run_as_user: Some(1000),
                privileged: Some(false),
                ..Default::default()
            })),
            pod_labels: labels(&[("team", "astro"), ("tier", "batch")]),
            pod_annotations: labels(&[("note", "default")]),
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_step_gets_the_defaults() {
        assert_eq!(merge(&defaults(), &ContainerSettings::default()), defaults());
        assert_eq!(merge(&ContainerSettings::default(), &defaults()), defaults());
    }

    #[test]
    fn keyed_lists_merge_by_key_in_place_and_add_new_entries() {
        let own = ContainerSettings {
            env: vec![env("C", "3"), env("B", "step")],
            volumes: vec![volume("scratch", ""), volume("cache", "Memory")],
            // Same volume, new path: added; same path, other volume: replaces.
            volume_mounts: vec![mount("data", "/data-ro"), mount("scratch", "/cache")],
            image_pull_secrets: vec![LocalObjectReference { name: "other".into() }],
            ..Default::default()
        };
        let got = merge(&defaults(), &own);
        assert_eq!(got.env, [env("A", "1"), env("B", "step"), env("C", "3")]);
        assert_eq!(
            got.volumes,
            [volume("data", ""), volume("cache", "Memory"), volume("scratch", "")]
        );
        assert_eq!(
            got.volume_mounts,
            [
                mount("data", "/data"),
                mount("scratch", "/cache"),
                mount("data", "/data-ro")
            ]
        );
        let secrets: Vec<&str> = got.image_pull_secrets.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(secrets, ["reg", "other"]);
    }

    #[test]
    fn step_values_replace_whole_objects_and_lists() {
        let own = ContainerSettings {
            image: Some("mine".into()),
            working_dir: Some("/tmp".into()),
            security_context: Some(Box::new(SecurityContext {
                run_as_non_root: Some(true),
                ..Default::default()
            })),
            env_from: vec![EnvFromSource::default()],
            ..Default::default()
        };
        let got = merge(&defaults(), &own);
        assert_eq!(got.image.as_deref(), Some("mine"));
        assert_eq!(got.working_dir.as_deref(), Some("/tmp"));
        // Not a field-by-field merge: the default's runAsUser is gone.
        assert_eq!(got.security_context, own.security_context);
        assert_eq!(got.env_from, own.env_from);
    }

    #[test]
    fn labels_and_annotations_merge_as_maps_step_winning() {
        let own = ContainerSettings {
            pod_labels: labels(&[("tier", "gpu"), ("step", "yes")]),
            pod_annotations: labels(&[("extra", "1")]),
            ..Default::default()
        };
        let got = merge(&defaults(), &own);
        assert_eq!(
            got.pod_labels,
            labels(&[("team", "astro"), ("tier", "gpu"), ("step", "yes")])
        );
        assert_eq!(got.pod_annotations, labels(&[("note", "default"), ("extra", "1")]));
    }

    fn names() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[a-d]", "[0-9]"), 0..5).prop_map(|mut v| {
            // Keys are unique within one list (Kubernetes requires it of volumes and mounts).
            let mut seen = std::collections::HashSet::new();
            v.retain(|(k, _)| seen.insert(k.clone()));
            v
        })
    }

    proptest! {
        #[test]
        fn keyed_merge_keeps_each_key_once_with_the_step_winning(d in names(), o in names()) {
            let got = merge_keyed(&d, &o, |(k, _)| k.clone());
            let keys: Vec<&String> = got.iter().map(|(k, _)| k).collect();
            let unique: std::collections::HashSet<&String> = keys.iter().copied().collect();
            prop_assert_eq!(unique.len(), keys.len(), "a key twice in {:?}", got);
            for (k, v) in d.iter().chain(&o) {
                let want = o.iter().find(|(ok, _)| ok == k).map(|(_, ov)| ov).unwrap_or(v);
                prop_assert!(got.contains(&(k.clone(), want.clone())), "{} missing in {:?}", k, got);
            }
            prop_assert_eq!(got.len(), unique.len());
        }
    }
}
