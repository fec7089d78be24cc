# shellcheck shell=bash
# Common settings and helpers for the e2e cluster scripts. Source it:
#   . "$(dirname "$0")/lib.sh"
#
# Everything that outlives one run lives in fixed machine-wide directories so
# that another clone of the repository (CI clones into a new folder) finds the
# same cluster and the same build cache:
#   KUBEDAG_E2E_DIR    (default /var/lib/kubedag-e2e)    cluster state, logs, PID files
#   KUBEDAG_E2E_CACHE  (default /var/cache/kubedag-e2e)  built binaries and images

set -Eeuo pipefail
trap 'log "command failed (exit $?) at ${BASH_SOURCE[0]:-?}:$LINENO: $BASH_COMMAND"' ERR

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
# The dynamic volume provisioner, a host daemon started after the cluster is
# up (e2e/provisioner-up.sh); its volumes live in $LOCAL_PATH_DIR.
PROVISIONER_BIN_NAME=local-path-provisioner
LOCAL_PATH_DIR="$E2E_DIR/local-path/volumes"

# Serialise cluster-up / cluster-down runs machine-wide (a nested call made by
# the holder passes through).
take_lock() {
  [[ ${KUBEDAG_E2E_LOCKED:-} == 1 ]] && return 0
  mkdir -p /run/lock
  exec 9>/run/lock/kubedag-e2e.lock
  if ! flock -n 9; then
    log "waiting for another cluster-up/cluster-down to finish"
    flock 9
  fi
  export KUBEDAG_E2E_LOCKED=1
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH:/usr/local/go/bin"

# Component name of a cluster process ("" if PID is not one of ours):
# our multi-call binary (any component but kubectl/helm), our containerd, or a
# containerd shim serving our containerd.
our_component() {
  local pid=$1 exe argv0 args
  mapfile -d '' -t args < "/proc/$pid/cmdline" 2>/dev/null || return 0
  ((${#args[@]})) || return 0
  argv0=${args[0]##*/}
  # Cheap filter first (no fork): only these argv[0]s can be ours.
  case $argv0 in
    "$CLUSTER_BIN_NAME"*|etcd|kube-*|kubelet|containerd|containerd-shim*|"$PROVISIONER_BIN_NAME") ;;
    *) return 0 ;;
  esac
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  exe=${exe% (deleted)}
  case ${exe##*/} in
    "$CLUSTER_BIN_NAME"*)
      [[ $argv0 == "$CLUSTER_BIN_NAME"* ]] && argv0=${args[1]:-}
      case $argv0 in kubectl|helm|"") ;; *) echo "$argv0" ;; esac ;;
    "$PROVISIONER_BIN_NAME")
      [[ " ${args[*]} " == *" $E2E_DIR/local-path/config.json "* ]] && echo "$PROVISIONER_BIN_NAME" ;;
    containerd)
      [[ " ${args[*]} " == *" $E2E_DIR/containerd/config.toml "* ]] && echo containerd ;;
    containerd-shim*)
      [[ " ${args[*]} " == *" $CONTAINERD_SOCK "* ]] && echo containerd-shim ;;
  esac
  return 0
}

# pid_alive PIDFILE [NAME] -> 0 if the PID in the file is a live process (not
# a zombie) that is our component NAME (default: the file's basename), so a
# PID reused by an unrelated process after a crash never counts.
pid_alive() {
  local f=$1 name=${2:-} pid state
  [[ -n $name ]] || { name=${f##*/}; name=${name%.pid}; }
  [[ -s $f ]] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]] || return 1
  [[ $(our_component "$pid") == "$name" ]]
}

# start_daemon NAME CMD...: run CMD in its own session, stdin /dev/null, log to
# logs/NAME.log (the previous one kept as NAME.log.prev), PID in run/NAME.pid.
start_daemon() {
  local name=$1; shift
  mkdir -p "$LOGS" "$RUN"
  [[ -f $LOGS/$name.log ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.prev"
  # fd 9 is the cluster-up lock: the daemons must not inherit it.
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 9>&- &
  echo $! >"$RUN/$name.pid"
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

# Debian packages: `need PACKAGE PATH...` records PACKAGE unless all PATHs
# exist; `install_needed` then installs what was recorded (one apt-get run,
# log in $E2E_CACHE/logs/apt.log). Idempotent: nothing to do costs no apt call.
NEED_PKGS=()
need() {
  local pkg=$1 p; shift
  for p in "$@"; do [[ -e $p ]] || { NEED_PKGS+=("$pkg"); return 0; }; done
}
install_needed() {
  ((${#NEED_PKGS[@]})) || return 0
  log "installing apt packages: ${NEED_PKGS[*]}"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$E2E_CACHE/logs"
  local apt_log="$E2E_CACHE/logs/apt.log" start=$SECONDS
  mkdir -p /run/lock
  # The machine-wide lock: concurrent scripts (cluster-up, build-images) must
  # not run apt-get at the same time.
  (
    flock 8
    apt-get update >>"$apt_log" 2>&1 || { tail -20 "$apt_log" >&2; die "apt-get update failed"; }
    apt-get install -y --no-install-recommends "${NEED_PKGS[@]}" >>"$apt_log" 2>&1 ||
      { tail -20 "$apt_log" >&2; die "apt-get install ${NEED_PKGS[*]} failed"; }
  ) 8>/run/lock/kubedag-e2e-apt.lock
  log "installed ${NEED_PKGS[*]} in $((SECONDS - start))s"
  NEED_PKGS=()
}
