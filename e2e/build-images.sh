#!/usr/bin/env bash
# Build (or reuse from the machine-wide cache) the cluster's local images as
# OCI archives, with e2e/oci-image.sh:
#   kubedag.local/busybox:1  Debian's busybox-static at /bin/busybox plus a
#                            symlink for every applet (/bin/sh, sleep, wget, ...)
#   kubedag.local/pause:1    the pod sandbox image: e2e/pause/pause.c, gcc -static
#
# Usage: e2e/build-images.sh       prints "IMAGE-REF ARCHIVE" per image on stdout.
# Archives land in $KUBEDAG_E2E_CACHE/images/, keyed by a hash of their inputs.
. "$(dirname "$0")/lib.sh"

BUSYBOX_IMAGE=kubedag.local/busybox:1
PAUSE_IMAGE=kubedag.local/pause:1

mkdir -p "$E2E_CACHE/images"
[[ -x /bin/busybox ]] || die "/bin/busybox missing: apt-get install busybox-static"
command -v gcc >/dev/null || die "gcc missing: apt-get install gcc libc6-dev"

tool_hash=$(sha256sum "$E2E_SRC/oci-image.sh" "$E2E_SRC/build-images.sh" | sha256sum | cut -c1-12)

# busybox
bb_hash=$( { echo "$tool_hash"; sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
bb_out="$E2E_CACHE/images/busybox-$bb_hash.tar"
if [[ ! -s $bb_out ]]; then
  root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,home,var,proc,sys,dev}
  chmod 1777 "$root/tmp"; chmod 700 "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  /bin/busybox --list-full | while read -r p; do
    [[ $p == bin/busybox ]] && continue
    # Debian's list puts some applets in usr/bin, others in bin or sbin; link
    # every applet in both /bin and its listed place so PATH lookups always work.
    for d in "$p" "bin/${p##*/}"; do
      [[ -e $root/$d || -L $root/$d ]] || ln -s /bin/busybox "$root/$d"
    done
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
  "$E2E_SRC/oci-image.sh" --rootfs "$root" --name "$BUSYBOX_IMAGE" --out "$bb_out" --cmd /bin/sh 2>/dev/null
  rm -rf "$root"; trap - EXIT
fi
echo "$BUSYBOX_IMAGE $bb_out"

# pause
p_hash=$( { echo "$tool_hash"; cat "$E2E_SRC/pause/pause.c"; gcc --version | head -1; } | sha256sum | cut -c1-16)
p_out="$E2E_CACHE/images/pause-$p_hash.tar"
if [[ ! -s $p_out ]]; then
  root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
  gcc -static -O2 -s -o "$root/pause" "$E2E_SRC/pause/pause.c"
  "$E2E_SRC/oci-image.sh" --rootfs "$root" --name "$PAUSE_IMAGE" --out "$p_out" \
    --entrypoint /pause --user 65535:65535 2>/dev/null
  rm -rf "$root"; trap - EXIT
fi
echo "$PAUSE_IMAGE $p_out"
# Keep the 3 newest archives of each image (other clones may use older ones).
for n in busybox pause; do
  ls -t "$E2E_CACHE/images/$n-"*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
done
