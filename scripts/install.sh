#!/usr/bin/env bash
# `make install`: Helm install (or upgrade) of the CRDs and the operator into the current
# KUBECONFIG cluster, waiting until the operator is ready. On the local cluster it first builds
# and imports the operator image.
#
# Env: KUBEDAG_NAMESPACE (default kubedag-system), HELM_ARGS (extra helm flags, e.g. --set ...).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?set KUBECONFIG (make cluster-up prints it)}"
ns=${KUBEDAG_NAMESPACE:-kubedag-system}
if [[ -S ${KUBEDAG_E2E_DIR:-/var/lib/kubedag-e2e}/containerd/state/containerd.sock ]]; then
  scripts/build-image.sh release dev
fi
# Helm installs crds/ only on first install; applying them first keeps upgrades current too.
kubectl apply --server-side --force-conflicts -f crds/ >&2
# shellcheck disable=SC2086
helm upgrade --install kubedag charts/kubedag --namespace "$ns" --create-namespace --wait --timeout 5m ${HELM_ARGS:-} >&2
kubectl -n "$ns" rollout status deployment/kubedag --timeout=120s >&2
echo "kubedag installed in namespace $ns" >&2
