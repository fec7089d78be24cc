//! Every value in `charts/kubedag/values.yaml` is described in the chart's README and declared in
//! `values.schema.json` (whose top level refuses unknown keys), so neither can fall behind. No
//! cluster needed.

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/kubedag");

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{CHART}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Dotted paths of the values: nested maps are followed, except free-form ones (labels,
/// annotations, resources...), which are leaves like scalars and lists.
fn value_paths(value: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
    const FREE_FORM: [&str; 7] = [
        "annotations",
        "labels",
        "additionalLabels",
        "resources",
        "nodeSelector",
        "affinity",
        "podAnnotations",
    ];
    let leaf = FREE_FORM.iter().any(|k| prefix.ends_with(k)) || prefix.ends_with("podLabels");
    match value.as_mapping() {
        Some(map) if !leaf && !map.is_empty() => {
            for (key, child) in map {
                let key = key.as_str().expect("string keys");
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                value_paths(child, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

fn values() -> Vec<String> {
    let values: serde_yaml::Value = serde_yaml::from_str(&read("values.yaml")).unwrap();
    let mut paths = Vec::new();
    value_paths(&values, "", &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    paths
}

#[test]
fn readme_describes_every_value() {
    let readme = read("README.md");
    let missing: Vec<_> = values()
        .into_iter()
        .filter(|p| !readme.contains(&format!("| `{p}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "charts/kubedag/README.md lacks rows for {missing:?}"
    );
}

#[test]
fn schema_declares_every_value_and_refuses_unknown_ones() {
    let schema: serde_json::Value = serde_json::from_str(&read("values.schema.json")).unwrap();
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    let missing: Vec<_> = values()
        .into_iter()
        .filter(|path| {
            let pointer: String = path.split('.').map(|k| format!("/properties/{k}")).collect();
            schema.pointer(&pointer).is_none()
        })
        .collect();
    assert!(missing.is_empty(), "values.schema.json lacks {missing:?}");
}
