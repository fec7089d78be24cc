#!/usr/bin/env bash
# `make install`: Helm install (or upgrade) of the CRDs and the operator into the current
# KUBECONFIG cluster, waiting until the operator is ready. On the local cluster it first builds
# and imports the operator image (tag dev).
#
# Values are explicit: `--reset-values` starts from the chart's defaults plus HELM_ARGS, so a
# `make install` after `make demo` does not keep the demo's watchNamespace (Helm would otherwise
# silently reuse the last release's values).
#
# Env: KUBEDAG_NAMESPACE (default kubedag-system), KUBEDAG_RELEASE (default kubedag),
#      HELM_ARGS (extra helm flags, e.g. "-f my-values.yaml --set replicas=2").
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?set KUBECONFIG (make cluster-up prints it)}"
ns=${KUBEDAG_NAMESPACE:-kubedag-system}
release=${KUBEDAG_RELEASE:-kubedag}
image_args=()
if [[ -S ${KUBEDAG_E2E_DIR:-/var/lib/kubedag-e2e}/containerd/state/containerd.sock ]]; then
  scripts/build-image.sh release dev
  image_args=(--set image.tag=dev)
fi
# The chart owns the CRDs (templates, kept on uninstall). When they already exist (an older
# chart's crds/, kubectl, the e2e tests) the release adopts them (--take-ownership), but a
# `helm upgrade` does not patch what it adopts: bring their schema current first.
if [[ " ${HELM_ARGS:-} " != *crds.install=false* ]]; then
  kubectl apply --server-side --force-conflicts --field-manager=kubedag-install -f crds/ >&2
fi
# shellcheck disable=SC2086
helm upgrade --install "$release" charts/kubedag --namespace "$ns" --create-namespace \
  --reset-values --take-ownership "${image_args[@]}" ${HELM_ARGS:-} --wait --timeout 5m >&2
# The chart's full name: the release name if it contains "kubedag", else RELEASE-kubedag.
deployment=$release
[[ $release == *kubedag* ]] || deployment=$release-kubedag
kubectl -n "$ns" rollout status "deployment/$deployment" --timeout=120s >&2
echo "kubedag installed in namespace $ns (release $release)" >&2
