# Sourced by scripts that need a cluster (test, demo, bench). `ensure_cluster` uses $KUBECONFIG when
# set; otherwise it brings up the local cluster and takes it down again when the calling script exits
# (KUBEDAG_KEEP_CLUSTER=1 keeps it).
ensure_cluster() {
  started_cluster=false
  if [[ -z "${KUBECONFIG:-}" ]]; then
    echo "== local cluster"
    local exports
    exports=$(e2e/cluster-up.sh | tail -n 2)
    eval "$exports"
    started_cluster=true
  fi
  export PATH="${KUBEDAG_E2E_DIR:-/var/lib/kubedag-e2e}/bin:$PATH"
  trap release_cluster EXIT
}

release_cluster() {
  if $started_cluster && [[ -z "${KUBEDAG_KEEP_CLUSTER:-}" ]]; then
    echo "== local cluster down (KUBEDAG_KEEP_CLUSTER=1 keeps it)"
    e2e/cluster-down.sh --quiet || true
  fi
}
