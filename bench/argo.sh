#!/usr/bin/env bash
# The peer of `make bench`: Argo Workflows' workflow-controller, built from its Go module with the
# ordinary Go client and cached beside the cluster binaries (skipped when cached), and its minimal
# CRDs (manifests/base/crds/minimal/ of the same module, from the module cache) applied to the
# cluster in KUBECONFIG. Prints the controller's path on stdout; progress goes to stderr. The
# benchmark driver runs the controller out of cluster (src/bin/kubedag-bench/argo.rs).
#
# ARGO_VERSION (v4.0.5), ARGO_CACHE (/var/cache/kubedag-e2e/argo). A cold build takes ~11 min on
# 2 cores.
set -euo pipefail
ARGO_VERSION=${ARGO_VERSION:-v4.0.5}
ARGO_CACHE=${ARGO_CACHE:-/var/cache/kubedag-e2e/argo}
module=github.com/argoproj/argo-workflows/v4
bin="$ARGO_CACHE/workflow-controller-$ARGO_VERSION"
export PATH="$PATH:/usr/local/go/bin"

command -v go >/dev/null || { echo "argo.sh: no Go toolchain; cannot build the workflow-controller" >&2; exit 1; }
if [ ! -x "$bin" ]; then
  echo "== argo: building workflow-controller $ARGO_VERSION from its Go module (~11 min cold)" >&2
  # Its own Go build cache, removed afterwards: ~5.5 GB that nothing else needs once it is built.
  mkdir -p "$ARGO_CACHE/build"
  GOBIN="$ARGO_CACHE/build" GOCACHE="$ARGO_CACHE/build/go-cache" \
    go install "$module/cmd/workflow-controller@$ARGO_VERSION" >&2
  mv "$ARGO_CACHE/build/workflow-controller" "$bin"
  rm -rf "$ARGO_CACHE/build"
else
  echo "== argo: workflow-controller $ARGO_VERSION cached at $bin" >&2
fi

# The module's source (for the CRDs): in the module cache after the build, or downloaded again.
src=$(go mod download -json "$module@$ARGO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src/manifests/base/crds/minimal" ] || { echo "argo.sh: no CRDs under $src/manifests/base/crds/minimal" >&2; exit 1; }
echo "== argo: CRDs from $src/manifests/base/crds/minimal" >&2
for crd in "$src"/manifests/base/crds/minimal/argoproj.io_*.yaml; do
  kubectl apply --server-side --force-conflicts --field-manager kubedag-bench -f "$crd" >&2
done
kubectl wait --for condition=established --timeout=60s crd/workflows.argoproj.io crd/workflowtaskresults.argoproj.io >&2
echo "$bin"
