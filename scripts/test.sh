#!/usr/bin/env bash
# `make test`: unit and property tests, CRD drift, then the local cluster (brought up here if no
# KUBECONFIG is set, and taken down at the end) with its smoke test and the end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build (tests and binaries)"
cargo build --locked --all-targets

echo "== unit, property and CRD drift tests"
cargo test --locked

started_cluster=false
if [[ -z "${KUBECONFIG:-}" ]]; then
  echo "== local cluster"
  exports=$(e2e/cluster-up.sh | tail -n 2)
  eval "$exports"
  started_cluster=true
fi
cleanup() {
  if $started_cluster; then
    echo "== local cluster down"
    e2e/cluster-down.sh || true
  fi
}
trap cleanup EXIT

echo "== cluster smoke test"
e2e/smoke-test.sh

echo "== end-to-end tests on the cluster"
cargo test --locked --test 'e2e_*' -- --ignored --test-threads "${E2E_THREADS:-6}"
