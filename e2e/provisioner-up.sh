#!/usr/bin/env bash
# Start (or keep running) the local cluster's dynamic volume provisioner:
# rancher's local-path-provisioner (built from e2e/provisioner by
# build-binaries.sh) as a host daemon, and the default StorageClass
# `local-path` (WaitForFirstConsumer), so PVCs bind as on a real cluster.
#
# Usage: e2e/provisioner-up.sh       (cluster-up.sh runs it; idempotent, ~1 s)
# Needs a running cluster (e2e/cluster-up.sh). Applies e2e/provisioner/storage.yaml
# (namespace local-path-storage, ServiceAccount + upstream RBAC, StorageClass)
# and the ConfigMap local-path-config (the helper pods' setup/teardown scripts).
# The daemon authenticates as that ServiceAccount (a token in
# $KUBEDAG_E2E_DIR/local-path/kubeconfig), provisions each claim as a hostPath
# PersistentVolume in $KUBEDAG_E2E_DIR/local-path/volumes/ (created and removed
# by helper pods running kubedag.local/busybox:1), logs to
# $KUBEDAG_E2E_DIR/logs/local-path-provisioner.log. cluster-down.sh stops it.
. "$(dirname "$0")/lib.sh"
take_lock

NS=local-path-storage
SA=local-path-provisioner-service-account
SRC="$E2E_SRC/provisioner"
CONF_DIR="$E2E_DIR/local-path"
NAME=$PROVISIONER_BIN_NAME

[[ -s $ADMIN_KUBECONFIG ]] || die "no cluster: $ADMIN_KUBECONFIG missing (run e2e/cluster-up.sh)"
kubectl_admin() { "$E2E_DIR/sbin/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

bin=$("$E2E_SRC/build-binaries.sh" provisioner | awk -v n="$NAME" '$1 == n {print $2}')
[[ -x $bin ]] || die "no $NAME binary"

kubectl_admin apply -f "$SRC/storage.yaml" >/dev/null
mkdir -p "$CONF_DIR" "$LOCAL_PATH_DIR"
printf '{"nodePathMap":[{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["%s"]}]}\n' \
  "$LOCAL_PATH_DIR" >"$CONF_DIR/config.json"
kubectl_admin -n "$NS" create configmap local-path-config --dry-run=client -o yaml \
  --from-file=setup="$SRC/setup" --from-file=teardown="$SRC/teardown" \
  --from-file=helperPod.yaml="$SRC/helperPod.yaml" --from-file=config.json="$CONF_DIR/config.json" |
  kubectl_admin apply -f - >/dev/null

pidfile="$RUN/$NAME.pid"
if pid_alive "$pidfile" && [[ $(readlink "/proc/$(cat "$pidfile")/exe") == "$bin" ]]; then
  log "$NAME already running (pid $(cat "$pidfile"))"
  exit 0
fi
if pid_alive "$pidfile"; then
  log "restarting $NAME (binary changed)"
  kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
  wait_for 10 "$NAME to stop" bash -c "! kill -0 $(cat "$pidfile") 2>/dev/null" || kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
fi

# A kubeconfig with a token of the ServiceAccount: the daemon has exactly the
# rights it would have in-cluster. The token lives as long as the cluster
# (a new cluster has a new ServiceAccount; this script then makes a new token).
token=$(kubectl_admin -n "$NS" create token "$SA" --duration=87600h)
umask 077
cat >"$CONF_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kubedag-e2e
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $SA
  user:
    token: $token
contexts:
- name: kubedag-e2e
  context: {cluster: kubedag-e2e, user: $SA}
current-context: kubedag-e2e
KC
umask 022

start=$SECONDS
start_daemon "$NAME" "$bin" start \
  --kubeconfig "$CONF_DIR/kubeconfig" \
  --config "$CONF_DIR/config.json" \
  --helper-pod-file "$SRC/helperPod.yaml" \
  --namespace "$NS" --service-account-name "$SA" \
  --configmap-name local-path-config \
  --helper-image kubedag.local/busybox:1
started() { grep -q 'Started provisioner controller' "$LOGS/$NAME.log"; }
# Not pid_alive: just after start_daemon the pid may not have exec'd the binary yet (its
# cmdline is still the shell's), which pid_alive's identity check reads as "exited".
running() { local state; state=$(awk '{print $3}' "/proc/$(cat "$pidfile")/stat" 2>/dev/null) && [[ $state != Z ]]; }
until started; do
  running || { tail -20 "$LOGS/$NAME.log" >&2; die "$NAME exited (log: $LOGS/$NAME.log)"; }
  ((SECONDS - start < 30)) || { tail -20 "$LOGS/$NAME.log" >&2; die "timed out waiting for $NAME"; }
  sleep 0.2
done
log "$NAME started in $((SECONDS - start))s (volumes in $LOCAL_PATH_DIR)"
