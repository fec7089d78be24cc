#!/usr/bin/env bash
# Builds the operator image without Docker: the kubedag binary plus exactly the shared libraries it
# links (from this Debian host), as a minimal non-root OCI image archive. Imports it into the local
# cluster's containerd when that cluster is running.
#
# Usage: scripts/build-image.sh [release|debug] [TAG]     (defaults: release dev)
# Output: target/image/kubedag-TAG.tar, image kubedag.local/kubedag:TAG
# Publish to a registry (on a machine that reaches one), e.g.:
#   skopeo copy oci-archive:target/image/kubedag-dev.tar docker://registry.example.com/kubedag:0.1.0
#   crane push target/image/kubedag-dev.tar registry.example.com/kubedag:0.1.0
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
tag=${2:-dev}
target_dir=${CARGO_TARGET_DIR:-target}
case $profile in
  release) cargo build --locked --release --bin kubedag ;;
  debug) cargo build --locked --bin kubedag ;;
  *) echo "usage: $0 [release|debug] [TAG]" >&2; exit 2 ;;
esac
mkdir -p target/image
out=target/image/kubedag-$tag.tar
# The CA bundle: a bucket DagTrigger's watcher (this image) verifies https S3 endpoints with it.
e2e/oci-image.sh --add-binary "$target_dir/$profile/kubedag:/kubedag" \
  --add /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt --name "kubedag.local/kubedag:$tag" \
  --out "$out" --entrypoint /kubedag --user 65532:65532 --no-gzip >&2
echo "built $out (kubedag.local/kubedag:$tag)" >&2
if [[ -S ${KUBEDAG_E2E_DIR:-/var/lib/kubedag-e2e}/containerd/state/containerd.sock ]]; then
  e2e/import-image.sh "$out" && echo "imported into the local cluster" >&2
fi
