# shellcheck shell=bash
# Common settings and helpers for the e2e cluster scripts. Source it:
#   . "$(dirname "$0")/lib.sh"
#
# Everything that outlives one run lives in fixed machine-wide directories so
# that another clone of the repository (CI clones into a new folder) finds the
# same cluster and the same build cache:
#   KUBEDAG_E2E_DIR    (default /var/lib/kubedag-e2e)    cluster state, logs, PID files
#   KUBEDAG_E2E_CACHE  (default /var/cache/kubedag-e2e)  built binaries and images

set -euo pipefail

E2E_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_DIR="${KUBEDAG_E2E_DIR:-/var/lib/kubedag-e2e}"
E2E_CACHE="${KUBEDAG_E2E_CACHE:-/var/cache/kubedag-e2e}"

# Network layout.
NODE_BRIDGE=kubedag0            # our bridge, holds the node IP
NODE_IP=10.250.0.1              # node address (/32 on NODE_BRIDGE)
CNI_BRIDGE=cni0                 # created by the CNI bridge plugin
POD_CIDR=10.88.0.0/16
SERVICE_CIDR=10.96.0.0/12
KUBERNETES_SVC_IP=10.96.0.1
APISERVER_PORT=6443
NODE_NAME=kubedag-node
CNI_NETWORK_NAME=kubedag

# Paths inside the state directory.
PKI="$E2E_DIR/pki"
LOGS="$E2E_DIR/logs"
RUN="$E2E_DIR/run"               # PID files
BIN="$E2E_DIR/bin"               # kubectl / helm symlinks for users
KUBELET_ROOT="$E2E_DIR/kubelet"
CONTAINERD_ROOT="$E2E_DIR/containerd/root"
CONTAINERD_STATE="$E2E_DIR/containerd/state"
CONTAINERD_SOCK="$CONTAINERD_STATE/containerd.sock"
RUNC_ROOT="$E2E_DIR/containerd/runc"
CNI_CONF_DIR="$E2E_DIR/cni/net.d"
CNI_IPAM_DIR="$E2E_DIR/cni/ipam"
ADMIN_KUBECONFIG="$E2E_DIR/kubeconfig"

# All daemons started by cluster-up, in start order.
DAEMONS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

# The multi-call binary's name; every cluster process runs it (or containerd).
CLUSTER_BIN_NAME=kubedag-cluster

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

# pid_alive PIDFILE -> 0 if the PID in the file is a live process (not zombie).
pid_alive() {
  local f=$1 pid state
  [[ -s $f ]] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# wait_for SECONDS DESCRIPTION CMD... : poll CMD every 0.2 s.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}
