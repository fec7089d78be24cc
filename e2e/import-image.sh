#!/usr/bin/env bash
# Import an image archive (OCI layout tar, e.g. from e2e/oci-image.sh, or a
# docker-archive tar) into the e2e cluster's containerd, namespace k8s.io, so
# pods can use it with imagePullPolicy IfNotPresent/Never.
#
# Usage: e2e/import-image.sh ARCHIVE.tar [ARCHIVE.tar...]
# Needs the cluster's containerd running (e2e/cluster-up.sh).
. "$(dirname "$0")/lib.sh"

(($#)) || die "usage: $0 ARCHIVE.tar..."
[[ -S $CONTAINERD_SOCK ]] || die "containerd socket $CONTAINERD_SOCK missing: is the cluster up?"
for f in "$@"; do
  [[ -s $f ]] || die "no such archive: $f"
  out=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$f" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out" >&2
  # Pinned images are never removed by the kubelet's image garbage collection (under disk
  # pressure it would otherwise delete the sandbox image, and no pod could start again).
  for ref in $(sed -n 's/^unpacking \([^ ]*\) .*/\1/p' <<<"$out"); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
  done
done
