#!/usr/bin/env bash
# `make dist`: the release artifacts a kubedag release publishes, in target/dist/:
#   kubedag-image-VERSION.oci.tar           operator image (OCI archive, scripts/build-image.sh)
#   kubedag-CHART_VERSION.tgz               the Helm chart (helm package), image tag = VERSION
#   kubectl-dag_VERSION_OS_ARCH.tar.gz      the kubectl plugin binary, its completion helper
#                                           kubectl_complete-dag (+ README.md)
#   dag.yaml                                krew plugin manifest pointing at that archive
#   SHA256SUMS                              sha256 of every file above
# and checks them (checksums, krew sha256, helm lint of the package, archive contents).
#
# Env: VERSION (default: the chart's appVersion), DIST_DIR (default target/dist),
#      DIST_BASE_URL (where the files will be downloadable; default the GitHub release of vVERSION).
# Publish: skopeo copy oci-archive:target/dist/kubedag-image-VERSION.oci.tar docker://REGISTRY/kubedag:VERSION
#          helm push target/dist/kubedag-CHART_VERSION.tgz oci://REGISTRY/charts
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/var/lib/kubedag-e2e/bin:$PATH
command -v helm >/dev/null || { echo "helm not found: run make cluster-up once (it builds helm)" >&2; exit 1; }

chart_field() { awk -v k="$1:" '$1==k {gsub(/"/, "", $2); print $2; exit}' charts/kubedag/Chart.yaml; }
version=${VERSION:-$(chart_field appVersion)}
chart_version=$(chart_field version)
crate_version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
[[ $version == "$crate_version" ]] || echo "warning: VERSION $version differs from Cargo.toml's $crate_version" >&2
out=${DIST_DIR:-target/dist}
base_url=${DIST_BASE_URL:-https://github.com/kubedag/kubedag/releases/download/v$version}
os=linux
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
rm -rf "$out" && mkdir -p "$out"

echo "== operator image kubedag.local/kubedag:$version" >&2
scripts/build-image.sh release "$version"
cp "target/image/kubedag-$version.tar" "$out/kubedag-image-$version.oci.tar"

echo "== Helm chart $chart_version (appVersion $version)" >&2
helm lint --strict charts/kubedag >&2
helm package charts/kubedag --app-version "$version" --destination "$out" >&2

echo "== kubectl-dag $version ($os/$arch)" >&2
cargo build --locked --release --bin kubectl-dag --bin kubectl_complete-dag
plugin=kubectl-dag_${version}_${os}_${arch}.tar.gz
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp "${CARGO_TARGET_DIR:-target}"/release/{kubectl-dag,kubectl_complete-dag} README.md "$staging/"
tar -C "$staging" --owner=0 --group=0 --mtime=@0 --sort=name -cf - kubectl-dag kubectl_complete-dag README.md |
  gzip -n > "$out/$plugin"
plugin_sha=$(sha256sum "$out/$plugin" | cut -d' ' -f1)

echo "== krew manifest" >&2
cat > "$out/dag.yaml" <<YAML
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: dag
spec:
  version: v$version
  homepage: https://github.com/kubedag/kubedag
  shortDescription: Run, submit and inspect kubedag DAG workflows
  description: |
    kubectl dag works with kubedag, a Kubernetes operator that runs DAG workflows with one Job
    per step per run and one execution per parameter set: run a Dag with parameters, submit a
    CSV of parameter sets, list runs by Dag and parameters, show a run's step graph, follow step
    logs, cancel and retry runs. Needs the kubedag operator in the cluster.
  caveats: |
    For "kubectl dag <TAB>" (kubectl 1.26+), put the completion helper on PATH:
      ln -s "\${KREW_ROOT:-\$HOME/.krew}/store/dag/v$version/kubectl_complete-dag" "\${KREW_ROOT:-\$HOME/.krew}/bin/"
  platforms:
    - selector:
        matchLabels: {os: $os, arch: $arch}
      uri: $base_url/$plugin
      sha256: $plugin_sha
      files:
        - {from: kubectl-dag, to: .}
        - {from: kubectl_complete-dag, to: .}
        - {from: README.md, to: .}
      bin: kubectl-dag
YAML

(cd "$out" && sha256sum -- * > SHA256SUMS)

echo "== checking $out" >&2
# (Outputs are captured before grep -q reads them: an early exit would SIGPIPE the producer.)
check() { grep -q "$@" || { echo "dist check failed: grep $*" >&2; exit 1; }; }
(cd "$out" && sha256sum --quiet -c SHA256SUMS)
check "sha256: $(sha256sum "$out/$plugin" | cut -d' ' -f1)" "$out/dag.yaml"
check "uri: $base_url/$plugin" "$out/dag.yaml"
listing=$(tar -tzf "$out/$plugin")
check -x kubectl-dag <<<"$listing"
check -x kubectl_complete-dag <<<"$listing"
tar -xOzf "$out/$plugin" kubectl-dag > "$staging/check" && chmod +x "$staging/check" && "$staging/check" --help >/dev/null
helm lint --strict "$out/kubedag-$chart_version.tgz" >&2
chart=$(helm show chart "$out/kubedag-$chart_version.tgz")
check -x "appVersion: $version" <<<"$chart"
files=$(tar -tzf "$out/kubedag-$chart_version.tgz")
for f in values.schema.json README.md templates/crds.yaml files/crds/kubedag.io.yaml dashboards/kubedag.json; do
  check -x "kubedag/$f" <<<"$files"
done
index=$(tar -xOf "$out/kubedag-image-$version.oci.tar" index.json)
check "kubedag.local/kubedag:$version" <<<"$index"
echo "dist ready:" >&2
ls -l "$out" >&2
