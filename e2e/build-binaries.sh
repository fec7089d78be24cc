#!/usr/bin/env bash
# Build (or reuse from the machine-wide cache) the e2e binaries:
#   kubedag-cluster  multi-call binary from e2e/cluster (kube-apiserver,
#                    kube-controller-manager, kube-scheduler, kubelet,
#                    kube-proxy, etcd, kubectl)
#   helm             from e2e/helm
#   local-path-provisioner
#                    rancher's dynamic hostPath volume provisioner, from
#                    e2e/provisioner (run by e2e/provisioner-up.sh)
#
# Usage: e2e/build-binaries.sh [cluster|helm|provisioner|all]   (default: all)
# Prints nothing on stdout except, for each binary, "NAME PATH".
# Binaries land in $KUBEDAG_E2E_CACHE/bin/<name>-<hash>/ where <hash> covers the
# module's go.mod, go.sum, *.go, the Go version and this script's build
# settings, so any clone of the repository on this machine reuses them.
# Build logs go to $KUBEDAG_E2E_CACHE/logs/. E2E_BUILD_JOBS sets `go build -p`
# (default 2: the machine has 2 cores and is shared with other builds).
. "$(dirname "$0")/lib.sh"

what=${1:-all}
command -v go >/dev/null || die "the Go toolchain (go) is not installed"
export HOME="${HOME:-/root}"   # go needs it for its caches
mkdir -p "$E2E_CACHE/bin" "$E2E_CACHE/logs"

# The version a module's binaries report: taken from its go.mod.
module_version() { # DIR MODULE
  awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit}' "$1/go.mod"
}

src_hash() { # DIR EXTRA...
  local dir=$1; shift
  {
    printf '%s\n' "$@"
    go env GOVERSION GOARCH
    cd "$dir"
    shopt -s nullglob
    for f in go.mod go.sum *.go; do
      printf '== %s\n' "$f"; cat "$f"
    done
  } | sha256sum | cut -c1-16
}

# build NAME MODULE_DIR PACKAGE LDFLAGS
build() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  local hash out tmp start
  hash=$(src_hash "$dir" "$pkg" "$ldflags" "CGO_ENABLED=0 -trimpath")
  out="$E2E_CACHE/bin/$name-$hash/$name"
  if [[ -x $out ]]; then
    echo "$name $out"
    return 0
  fi
  log "building $name (cache miss, hash $hash); log: $E2E_CACHE/logs/build-$name.log"
  log "  a cold build takes several minutes on 2 cores"
  tmp="$out.tmp.$$"
  mkdir -p "$(dirname "$out")"
  start=$SECONDS
  if ! (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-p=${E2E_BUILD_JOBS:-2} -buildvcs=false ${GOFLAGS:-}" \
        go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg" ) >"$E2E_CACHE/logs/build-$name.log" 2>&1; then
    rm -f "$tmp"
    tail -30 "$E2E_CACHE/logs/build-$name.log" >&2
    die "building $name failed (see $E2E_CACHE/logs/build-$name.log)"
  fi
  mv -f "$tmp" "$out"
  # Keep the 3 newest builds of each binary (other clones may use older ones).
  ls -dt "$E2E_CACHE/bin/$name-"* 2>/dev/null | tail -n +4 | xargs -r rm -rf
  log "built $name in $((SECONDS - start))s: $out"
  echo "$name $out"
}

if [[ $what == cluster || $what == all ]]; then
  v=$(module_version "$E2E_SRC/cluster" k8s.io/kubernetes)
  [[ $v =~ ^v([0-9]+)\.([0-9]+)\. ]] || die "cannot read k8s.io/kubernetes version from e2e/cluster/go.mod"
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  ld="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build "$CLUSTER_BIN_NAME" "$E2E_SRC/cluster" . "$ld"
fi

if [[ $what == helm || $what == all ]] && [[ -d $E2E_SRC/helm ]]; then
  hv=$(module_version "$E2E_SRC/helm" helm.sh/helm/v3)
  [[ -n $hv ]] || hv=$(module_version "$E2E_SRC/helm" helm.sh/helm/v4)
  [[ -n $hv ]] || die "cannot read the helm version from e2e/helm/go.mod"
  hmod=helm.sh/helm/v${hv:1:1}
  ld="-s -w -X $hmod/internal/version.version=$hv -X $hmod/internal/version.gitTreeState=clean"
  build helm "$E2E_SRC/helm" "$hmod/cmd/helm" "$ld"
fi

if [[ $what == provisioner || $what == all ]]; then
  pmod=github.com/rancher/local-path-provisioner
  pv=$(module_version "$E2E_SRC/provisioner" "$pmod")
  [[ -n $pv ]] || die "cannot read the $pmod version from e2e/provisioner/go.mod"
  build local-path-provisioner "$E2E_SRC/provisioner" "$pmod" "-s -w -X main.VERSION=$pv"
fi
