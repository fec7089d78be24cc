#!/usr/bin/env bash
# Bring up the local single-node e2e Kubernetes cluster, from nothing if need be.
#
# Usage: e2e/cluster-up.sh
# Then:  eval "$(e2e/cluster-up.sh | tail -2)"   or copy the two printed lines.
#
# Steps (each skipped when already done):
#   1. apt packages: containerd, runc, CNI plugins, iptables, conntrack, ...
#   2. binaries (e2e/build-binaries.sh) and images (e2e/build-images.sh), cached
#      machine-wide in $KUBEDAG_E2E_CACHE (default /var/cache/kubedag-e2e)
#   3. if a healthy cluster already runs: print the export lines, exit 0
#   4. otherwise clean whatever a previous cluster left (e2e/cluster-down.sh),
#      then create PKI, kubeconfigs and configs in $KUBEDAG_E2E_DIR (default
#      /var/lib/kubedag-e2e) and start etcd, kube-apiserver,
#      kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy
#   5. wait for the node to be Ready and the default ServiceAccount to exist
#   6. (also when already healthy) start the dynamic volume provisioner and
#      the default StorageClass local-path (e2e/provisioner-up.sh)
# The last two lines on stdout are
#   export PATH=/var/lib/kubedag-e2e/bin:$PATH
#   export KUBECONFIG=/var/lib/kubedag-e2e/kubeconfig
# Progress goes to stderr; daemon logs to $KUBEDAG_E2E_DIR/logs/.
. "$(dirname "$0")/lib.sh"
take_lock

t0=$SECONDS

# --- 1. packages -------------------------------------------------------------
need containerd /usr/bin/containerd /usr/bin/ctr /usr/bin/containerd-shim-runc-v2
need runc /usr/sbin/runc
need containernetworking-plugins /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/portmap /usr/lib/cni/loopback
need iptables /usr/sbin/iptables /usr/sbin/ip6tables
need conntrack /usr/sbin/conntrack
need ipset /usr/sbin/ipset
need socat /usr/bin/socat
need busybox-static /bin/busybox
need iproute2 /usr/sbin/ip /usr/bin/nsenter
need openssl /usr/bin/openssl
need curl /usr/bin/curl
need gcc /usr/bin/gcc
need libc6-dev /usr/lib/x86_64-linux-gnu/libc.a
need kmod /usr/sbin/modprobe
install_needed
[[ -x /usr/bin/busybox ]] || [[ -x /bin/busybox ]] || die "busybox-static is not installed"

# --- 2. binaries and images --------------------------------------------------
built=$("$E2E_SRC/build-binaries.sh" all)
while read -r n p; do
  case $n in
    "$CLUSTER_BIN_NAME") CLUSTER_BIN=$p ;;
    helm) HELM_BIN=$p ;;
  esac
done <<<"$built"
[[ -x ${CLUSTER_BIN:-} ]] || die "no $CLUSTER_BIN_NAME binary"
[[ -x ${HELM_BIN:-} ]] || die "no helm binary"
declare -A IMAGES=()
built=$("$E2E_SRC/build-images.sh")
while read -r ref file; do IMAGES[$ref]=$file; done <<<"$built"
PAUSE_IMAGE=kubedag.local/pause:1

kubectl_admin() { "$CLUSTER_BIN" kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

print_exports() {
  mkdir -p "$BIN"
  ln -sfn "$CLUSTER_BIN" "$BIN/kubectl"
  ln -sfn "$HELM_BIN" "$BIN/helm"
  echo "export PATH=$BIN:\$PATH"
  echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
}

# --- 3. already healthy? -----------------------------------------------------
healthy() {
  local d
  for d in "${DAEMONS[@]}"; do pid_alive "$RUN/$d.pid" || return 1; done
  # The binary the daemons run must be the current build.
  [[ $(readlink "$E2E_DIR/sbin/kubelet" 2>/dev/null) == "$CLUSTER_BIN" ]] || return 1
  [[ $(kubectl_admin get --raw /readyz 2>/dev/null) == ok ]] || return 1
  [[ $(kubectl_admin get node "$NODE_NAME" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
  # (Re-)import the images: a no-op if they are current, an update if the
  # archives changed since the cluster started (~0.1 s).
  local ref
  for ref in "${!IMAGES[@]}"; do
    "$E2E_SRC/import-image.sh" "${IMAGES[$ref]}" >/dev/null 2>&1 || return 1
  done
}
if healthy; then
  log "cluster already running and healthy"
  "$E2E_SRC/provisioner-up.sh"
  print_exports
  exit 0
fi

# --- 4. clean and configure --------------------------------------------------
log "cleaning previous cluster state (if any)"
"$E2E_SRC/cluster-down.sh" --quiet

mkdir -p "$E2E_DIR" "$PKI" "$LOGS" "$RUN" "$BIN" "$E2E_DIR/sbin" "$KUBELET_ROOT" \
  "$CONTAINERD_ROOT" "$CONTAINERD_STATE" "$RUNC_ROOT" "$CNI_CONF_DIR" "$CNI_IPAM_DIR" \
  "$E2E_DIR/etc" "$E2E_DIR/pod-logs"
chmod 700 "$PKI"
# Components run through symlinks named after them: argv[0] picks the
# component and `ps` shows which is which.
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  ln -sfn "$CLUSTER_BIN" "$E2E_DIR/sbin/$c"
done

# Kernel and network settings.
modprobe br_netfilter 2>/dev/null || true
modprobe overlay 2>/dev/null || true
cat /proc/sys/net/ipv4/ip_forward >"$E2E_DIR/ip_forward.orig"
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
ip link add "$NODE_BRIDGE" type bridge
ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE"
ip link set "$NODE_BRIDGE" up
# Host -> ClusterIP traffic leaves with the node address, whatever the default
# route is (or even without one).
ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"

# PKI (ECDSA P-256: fast to generate).
openssl_quiet() { openssl "$@" 2>>"$LOGS/openssl.log"; }
new_key() { openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$1"; chmod 600 "$1"; }
# sign NAME SUBJECT CA EXTENSIONS...: key NAME.key, cert NAME.crt signed by CA
# (CA "self" for a self-signed CA).
sign() {
  local name=$1 subj=$2 ca=$3; shift 3
  local ext="$PKI/$name.ext"
  new_key "$PKI/$name.key"
  printf '[v3]\n' >"$ext"
  printf '%s\n' "$@" >>"$ext"
  openssl_quiet req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr"
  if [[ $ca == self ]]; then
    openssl_quiet x509 -req -in "$PKI/$name.csr" -signkey "$PKI/$name.key" -days 3650 \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -extensions v3 -out "$PKI/$name.crt"
  else
    openssl_quiet x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -days 3650 \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -extensions v3 -out "$PKI/$name.crt"
  fi
  rm -f "$PKI/$name.csr" "$ext"
}
CA_EXT=("basicConstraints=critical,CA:TRUE" "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign")
CLIENT_EXT=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")
SERVER_EXT=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth")
log "generating certificates"
sign ca "/CN=kubedag-e2e-ca" self "${CA_EXT[@]}"
sign front-proxy-ca "/CN=kubedag-e2e-front-proxy-ca" self "${CA_EXT[@]}"
sign apiserver "/CN=kube-apiserver" ca "${SERVER_EXT[@]}" \
  "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" ca "${CLIENT_EXT[@]}"
sign front-proxy-client "/CN=front-proxy-client" front-proxy-ca "${CLIENT_EXT[@]}"
sign admin "/O=system:masters/CN=kubernetes-admin" ca "${CLIENT_EXT[@]}"
sign controller-manager "/CN=system:kube-controller-manager" ca "${CLIENT_EXT[@]}"
sign scheduler "/CN=system:kube-scheduler" ca "${CLIENT_EXT[@]}"
sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" ca "${CLIENT_EXT[@]}"
sign kubelet-server "/CN=$NODE_NAME" ca "${SERVER_EXT[@]}" "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
sign kube-proxy "/CN=system:kube-proxy" ca "${CLIENT_EXT[@]}"
new_key "$PKI/sa.key"
openssl_quiet ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

# kubeconfig FILE NAME SERVER: client cert NAME.crt/.key, data embedded.
kubeconfig() {
  local file=$1 name=$2 server=$3
  cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kubedag-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$name.crt")
    client-key-data: $(base64 -w0 <"$PKI/$name.key")
contexts:
- name: kubedag-e2e
  context:
    cluster: kubedag-e2e
    user: $name
current-context: kubedag-e2e
KC
  chmod 600 "$file"
}
LOCAL_API="https://127.0.0.1:$APISERVER_PORT"
kubeconfig "$ADMIN_KUBECONFIG" admin "$LOCAL_API"
kubeconfig "$E2E_DIR/etc/controller-manager.kubeconfig" controller-manager "$LOCAL_API"
kubeconfig "$E2E_DIR/etc/scheduler.kubeconfig" scheduler "$LOCAL_API"
kubeconfig "$E2E_DIR/etc/kubelet.kubeconfig" kubelet-client "$LOCAL_API"
kubeconfig "$E2E_DIR/etc/kube-proxy.kubeconfig" kube-proxy "$LOCAL_API"

# CNI: bridge + host-local + portmap (containerd's CRI adds loopback itself).
cat >"$CNI_CONF_DIR/10-$CNI_NETWORK_NAME.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$CNI_IPAM_DIR"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

cat >"$E2E_DIR/containerd/config.toml" <<TOML
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
oom_score = 0
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_STATE/containerd.sock.ttrpc"

[debug]
  address = "$CONTAINERD_STATE/debug.sock"
  level = "warn"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$E2E_DIR/containerd/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$PAUSE_IMAGE"
    # root lacks CAP_SYS_RESOURCE here: without this every sandbox fails with
    # "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    max_concurrent_downloads = 3

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$CNI_CONF_DIR"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$RUNC_ROOT"
          SystemdCgroup = false
TOML

cat >"$E2E_DIR/etc/scheduler.yaml" <<YAML
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $E2E_DIR/etc/scheduler.kubeconfig
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
YAML

# No cluster DNS server runs. Giving the kubelet the host's resolver as
# "cluster DNS" keeps pods resolving as the host does and avoids a
# MissingClusterDNS warning event on every pod (noise in event-based tests).
HOST_DNS=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ {print $2; exit}' /etc/resolv.conf 2>/dev/null || true)
cat >"$E2E_DIR/etc/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [${HOST_DNS}]
resolvConf: /etc/resolv.conf
podLogsDir: $E2E_DIR/pod-logs
volumePluginDir: $E2E_DIR/kubelet-plugins
maxPods: 250
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
kubeAPIQPS: 100
kubeAPIBurst: 200
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusReportFrequency: 1m
YAML

cat >"$E2E_DIR/etc/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $E2E_DIR/etc/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  syncPeriod: 30s
  minSyncPeriod: 0s
YAML

# --- start -------------------------------------------------------------------
check_running() { # NAME
  pid_alive "$RUN/$1.pid" || { tail -25 "$LOGS/$1.log" >&2; die "$1 exited (log: $LOGS/$1.log)"; }
}
wait_running() { # SECONDS NAME DESCRIPTION CMD...
  local t=$1 name=$2 what=$3; shift 3
  local deadline=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    check_running "$name"
    ((SECONDS < deadline)) || { tail -25 "$LOGS/$name.log" >&2; die "timed out waiting for $what"; }
    sleep 0.2
  done
}
S="$E2E_DIR/sbin"
log "starting etcd and containerd"
start_daemon etcd "$S/etcd" --name=kubedag-e2e --data-dir="$E2E_DIR/etcd" \
  --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
  --initial-cluster=kubedag-e2e=http://127.0.0.1:2380 --listen-metrics-urls=http://127.0.0.1:2381 \
  --unsafe-no-fsync=true --quota-backend-bytes=4294967296 --log-level=warn
start_daemon containerd containerd --config "$E2E_DIR/containerd/config.toml"
wait_running 30 etcd "etcd health" curl -sf http://127.0.0.1:2381/health

log "starting kube-apiserver"
start_daemon kube-apiserver "$S/kube-apiserver" \
  --advertise-address="$NODE_IP" --bind-address=0.0.0.0 --secure-port="$APISERVER_PORT" \
  --etcd-servers=http://127.0.0.1:2379 \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$PKI/ca.crt" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --authorization-mode=Node,RBAC \
  --enable-aggregator-routing=true \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-username-headers=X-Remote-User \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
  --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --allow-privileged=true \
  --max-requests-inflight=800 --max-mutating-requests-inflight=400 \
  --profiling=false

# While the API server starts: containerd and the images.
wait_running 30 containerd "containerd socket" ctr --address "$CONTAINERD_SOCK" version
for ref in "${!IMAGES[@]}"; do
  "$E2E_SRC/import-image.sh" "${IMAGES[$ref]}" >>"$LOGS/import-images.log" 2>&1 ||
    { tail "$LOGS/import-images.log" >&2; die "importing $ref failed"; }
done

api_ready() {
  [[ $(curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "$LOCAL_API/readyz") == ok ]]
}
wait_running 90 kube-apiserver "kube-apiserver /readyz" api_ready
log "kube-apiserver ready after $((SECONDS - t0))s"

log "starting kube-controller-manager, kube-scheduler, kubelet, kube-proxy"
start_daemon kube-controller-manager "$S/kube-controller-manager" \
  --kubeconfig="$E2E_DIR/etc/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$E2E_DIR/etc/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$E2E_DIR/etc/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --client-ca-file="$PKI/ca.crt" \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --root-ca-file="$PKI/ca.crt" \
  --service-account-private-key-file="$PKI/sa.key" \
  --use-service-account-credentials=true \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --allocate-node-cidrs=false \
  --leader-elect=false \
  --kube-api-qps=200 --kube-api-burst=400 \
  --concurrent-job-syncs=50 \
  --flex-volume-plugin-dir="$E2E_DIR/kubelet-plugins" \
  --profiling=false
start_daemon kube-scheduler "$S/kube-scheduler" \
  --config="$E2E_DIR/etc/scheduler.yaml" \
  --authentication-kubeconfig="$E2E_DIR/etc/scheduler.kubeconfig" \
  --authorization-kubeconfig="$E2E_DIR/etc/scheduler.kubeconfig" \
  --bind-address=127.0.0.1
start_daemon kubelet "$S/kubelet" \
  --config="$E2E_DIR/etc/kubelet.yaml" \
  --kubeconfig="$E2E_DIR/etc/kubelet.kubeconfig" \
  --root-dir="$KUBELET_ROOT" \
  --cert-dir="$KUBELET_ROOT/pki" \
  --hostname-override="$NODE_NAME" \
  --node-ip="$NODE_IP"
start_daemon kube-proxy "$S/kube-proxy" --config="$E2E_DIR/etc/kube-proxy.yaml"

# --- 5. wait -----------------------------------------------------------------
node_ready() {
  [[ $(kubectl_admin get node "$NODE_NAME" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
wait_running 120 kubelet "node $NODE_NAME Ready" node_ready
check_running kube-proxy
wait_running 60 kube-controller-manager "the default ServiceAccount" kubectl_admin -n default get serviceaccount default
for d in "${DAEMONS[@]}"; do check_running "$d"; done
# Dynamic volume provisioning (default StorageClass local-path).
"$E2E_SRC/provisioner-up.sh"
log "cluster up in $((SECONDS - t0))s (state: $E2E_DIR, logs: $LOGS)"
print_exports
