//! `crds/` is generated from the Rust types by `make crds`; this fails when they drift apart.

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
        read("crds/kubedag.io.yaml") == read("charts/kubedag/crds/kubedag.io.yaml"),
        "charts/kubedag/crds/ differs from crds/: run `make crds` and commit the result"
    );
}
