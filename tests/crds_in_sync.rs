//! `crds/` is generated from the Rust types by `make crds`; this fails when they drift apart.
//! The chart renders its copy in `charts/kubedag/files/crds/` as templates (so `helm upgrade`
//! carries schema changes); that copy must be the same bytes.

#[test]
fn committed_crds_match_the_rust_types() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/kubedag.io.yaml"))
        .expect("crds/kubedag.io.yaml exists");
    let generated = kubedag::api::crds_yaml().unwrap();
    assert!(
        committed == generated,
        "crds/kubedag.io.yaml is stale: run `make crds` and commit the result"
    );
}

#[test]
fn helm_chart_ships_the_same_crds() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).expect(path);
    assert!(
        read("crds/kubedag.io.yaml") == read("charts/kubedag/files/crds/kubedag.io.yaml"),
        "charts/kubedag/files/crds/ differs from crds/: run `make crds` and commit the result"
    );
}

#[test]
fn helm_chart_renders_its_crds_as_templates_not_from_crds_dir() {
    let root = env!("CARGO_MANIFEST_DIR");
    // Helm installs crds/ once and never upgrades it: the chart must not have one.
    assert!(
        !std::path::Path::new(&format!("{root}/charts/kubedag/crds")).exists(),
        "charts/kubedag/crds/ would be installed once and never upgraded"
    );
    let template = std::fs::read_to_string(format!("{root}/charts/kubedag/templates/crds.yaml")).unwrap();
    assert!(template.contains(r#".Files.Get "files/crds/kubedag.io.yaml""#));
}
