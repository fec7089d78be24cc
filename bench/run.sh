#!/usr/bin/env bash
# `make bench`: build the operator and the benchmark driver (release), bring up the local cluster
# if KUBECONFIG is unset (and take it down at the end), install the CRDs, build (once) Argo's
# workflow-controller and install its CRDs (bench/argo.sh; BENCH_ARGO= skips Argo), then run
# `kubedag-bench`, which runs the simulated node, the plain-client baseline and the workloads in
# their own namespaces and writes bench/results/latest.{json,md}. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
E2E_DIR=${E2E_DIR:-/var/lib/kubedag-e2e}
export PATH="$E2E_DIR/bin:$HOME/.cargo/bin:$PATH"
target=${CARGO_TARGET_DIR:-target}

echo "== build (release): kubedag, kubedag-bench"
cargo build --locked --release --bin kubedag --bin kubedag-bench

# shellcheck source=scripts/cluster-session.sh
. scripts/cluster-session.sh
ensure_cluster

echo "== CRDs"
"$target/release/kubedag" crds | kubectl apply --server-side --force-conflicts --field-manager kubedag-bench -f -
kubectl wait --for condition=established --timeout=60s crd/dags.kubedag.io crd/dagruns.kubedag.io

# The peer (Argo Workflows), unless BENCH_ARGO is set empty: built once and cached, CRDs applied.
if [ -n "${BENCH_ARGO-default,tuned}" ]; then
  BENCH_ARGO_BIN=$(bench/argo.sh)
  export BENCH_ARGO_BIN
fi

echo "== benchmark (scale ${BENCH_SCALE:-1}; workloads ${BENCH_WORKLOADS:-ui,baseline,a,d,b,c,f})"
mkdir -p bench/results
export BENCH_COMMAND="${BENCH_COMMAND:-make bench${BENCH_SCALE:+ BENCH_SCALE=$BENCH_SCALE}}"
"$target/release/kubedag-bench" --operator-bin "$target/release/kubedag" --out-dir bench/results \
  2> >(tee bench/results/latest.log >&2)
