#!/usr/bin/env bash
# Tear the local e2e cluster down completely: every process it started (by PID
# file, then a sweep for leftovers of a cluster whose processes were killed
# without cluster-down), all pod containers, every mount under the state
# directory, the CRI network namespaces, the bridges, the iptables chains of
# kube-proxy and CNI, the kubepods cgroups, the S3 server of e2e/s3-up.sh, and
# the state directory itself.
# Idempotent: safe to run when nothing is running. Keeps the build cache
# ($KUBEDAG_E2E_CACHE: binaries and image archives).
#
# Usage: e2e/cluster-down.sh [--quiet]
. "$(dirname "$0")/lib.sh"
take_lock

quiet=0
[[ ${1:-} == --quiet ]] && quiet=1
say() { ((quiet)) || log "$@"; }

# --- processes --------------------------------------------------------------

# PIDs of all our leftover processes (optionally only component $1).
our_pids() {
  local want=${1:-} p c
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    c=$(our_component "$p")
    [[ -n $c ]] || continue
    [[ -z $want || $c == "$want" ]] && echo "$p"
  done
  return 0
}

# PIDs of processes in the kubepods cgroups (pod containers, even orphaned).
pod_pids() {
  local f
  for f in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $f ]] || continue
    find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -u
  return 0
}

kill_wait() { # SECONDS PID...  TERM, wait, then KILL
  local t=$1; shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + t)) p alive
  while :; do
    alive=()
    for p in "$@"; do
      [[ -d /proc/$p ]] && [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]] && alive+=("$p")
    done
    ((${#alive[@]})) || return 0
    if ((SECONDS >= deadline)); then
      kill -KILL "${alive[@]}" 2>/dev/null || true
      sleep 0.2
      return 0
    fi
    sleep 0.1
  done
}

pid_of() { # NAME: the PID from our PID file if alive and still that component
  local f="$RUN/$1.pid"
  pid_alive "$f" "$1" && cat "$f"
  return 0
}

stop_component() { # NAME GRACE
  local pids
  pids=$( { pid_of "$1"; our_pids "$1"; } | sort -u)
  [[ -n $pids ]] || return 0
  say "stopping $1 ($(echo $pids))"
  # shellcheck disable=SC2086
  kill_wait "$2" $pids
}

# The S3 server the bucket tests start (e2e/s3-up.sh) keeps its data under the
# state directory removed below, so it stops first.
if ((quiet)); then "$E2E_SRC/s3-down.sh" >/dev/null 2>&1 || true; else "$E2E_SRC/s3-down.sh" || true; fi

# The volume provisioner first (it creates helper pods), then the node side so
# nothing restarts pods while we tear them down.
stop_component "$PROVISIONER_BIN_NAME" 3
stop_component kubelet 5
stop_component kube-proxy 3
# Pod containers: kill every process in the kubepods cgroups.
for _ in 1 2 3 4 5; do
  pids=$(pod_pids)
  [[ -n $pids ]] || break
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 0.2
done
stop_component containerd 5
shims=$(our_pids containerd-shim)
# shellcheck disable=SC2086
[[ -z $shims ]] || kill -KILL $shims 2>/dev/null || true
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_component "$c" 5
done
# Anything else of ours still around (e.g. a component started by hand).
rest=$(our_pids)
if [[ -n $rest ]]; then
  say "killing leftover processes: $(echo $rest)"
  # shellcheck disable=SC2086
  kill_wait 2 $rest
fi
rm -f "$RUN"/*.pid 2>/dev/null || true

# runc state of our containers (its root is under the state dir, but a
# container that is still "running" for runc keeps cgroups busy).
if [[ -d $RUNC_ROOT ]] && command -v runc >/dev/null; then
  for r in "$RUNC_ROOT"/*; do
    [[ -d $r ]] || continue
    for id in $(runc --root "$r" list -q 2>/dev/null); do
      runc --root "$r" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
fi

# --- mounts and network namespaces -----------------------------------------

mounts_under() { # PREFIX: mount points under PREFIX, deepest first
  awk -v p="$1" '{ m=$5; gsub(/\\040/, " ", m); if (m == p || index(m, p "/") == 1) print m }' /proc/self/mountinfo |
    awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2- | uniq
}

unmount_all() { # PREFIX
  local prefix=$1 m i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    mapfile -t ms < <(mounts_under "$prefix")
    ((${#ms[@]})) || return 0
    for m in "${ms[@]}"; do umount "$m" 2>/dev/null || true; done
    if ((i >= 3)); then
      for m in "${ms[@]}"; do umount -l "$m" 2>/dev/null || true; done
    fi
  done
  [[ -z $(mounts_under "$prefix") ]]
}

# The pods' network namespaces are bind mounts under the state directory
# (containerd: netns_mounts_under_state_dir), so unmounting frees them too.
if [[ -d $E2E_DIR ]]; then
  unmount_all "$E2E_DIR" || log "WARNING: some mounts under $E2E_DIR could not be removed"
fi

# --- network ---------------------------------------------------------------

for br in "$CNI_BRIDGE" "$NODE_BRIDGE"; do
  if ip link show "$br" >/dev/null 2>&1; then
    say "deleting bridge $br"
    ip link delete "$br" 2>/dev/null || true
  fi
done
ip route del "$SERVICE_CIDR" 2>/dev/null || true

clean_iptables() { # IPTABLES-COMMAND
  local ipt=$1 t chains rule
  command -v "$ipt" >/dev/null || return 0
  for t in filter nat mangle raw; do
    "$ipt" -w -t "$t" -S >/dev/null 2>&1 || continue
    # Rules in built-in chains that jump to our chains.
    { "$ipt" -w -t "$t" -S 2>/dev/null || true; } |
      { grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j (KUBE-|CNI-)' || true; } |
      while IFS= read -r rule; do
        eval "\"\$ipt\" -w -t \"\$t\" -D ${rule#-A }" 2>/dev/null || true
      done
    chains=$("$ipt" -w -t "$t" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^KUBE-/ || $2 ~ /^CNI-/) {print $2}')
    for c in $chains; do "$ipt" -w -t "$t" -F "$c" 2>/dev/null || true; done
    for c in $chains; do "$ipt" -w -t "$t" -X "$c" 2>/dev/null || true; done
  done
}
clean_iptables iptables
clean_iptables ip6tables
# The legacy backend too, but only if its tables exist (listing them would
# create them).
[[ -s /proc/net/ip_tables_names ]] && clean_iptables iptables-legacy
[[ -s /proc/net/ip6_tables_names ]] && clean_iptables ip6tables-legacy
true

# --- cgroups ---------------------------------------------------------------

for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [[ -d $d ]] || continue
  find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [[ -d $d ]] && log "WARNING: cgroup $d could not be removed (processes left?)"
done

# --- files -----------------------------------------------------------------

if [[ -f $E2E_DIR/ip_forward.orig ]]; then
  sysctl -qw net.ipv4.ip_forward="$(cat "$E2E_DIR/ip_forward.orig")" 2>/dev/null || true
fi
# What the components write outside the state directory, whatever their flags.
if [[ -d /var/log/containers ]]; then
  find /var/log/containers -maxdepth 1 -type l -lname "$E2E_DIR/*" -delete 2>/dev/null || true
fi
rm -f /var/lib/kubelet/device-plugins/kubelet.sock "/var/lib/cni/results/$CNI_NETWORK_NAME-"* /var/lib/cni/results/cni-loopback-* 2>/dev/null || true
for d in /var/log/containers /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni \
         /usr/libexec/kubernetes/kubelet-plugins/volume/exec /usr/libexec/kubernetes/kubelet-plugins/volume \
         /usr/libexec/kubernetes/kubelet-plugins /usr/libexec/kubernetes; do
  [[ -d $d ]] && rmdir "$d" 2>/dev/null || true
done
if [[ -d $E2E_DIR ]]; then
  if [[ -n $(mounts_under "$E2E_DIR") ]]; then
    die "mounts remain under $E2E_DIR; not deleting it: $(mounts_under "$E2E_DIR" | head -3)"
  fi
  rm -rf --one-file-system "$E2E_DIR"
fi
say "cluster is down"
