#!/usr/bin/env bash
# Build (or reuse from the machine-wide cache) the cluster's local images as
# OCI archives, with e2e/oci-image.sh:
#   kubedag.local/busybox:1  Debian's busybox-static at /bin/busybox plus a
#                            symlink for every applet (/bin/sh, sleep, wget, ...)
#   kubedag.local/pause:1    the pod sandbox image: e2e/pause/pause.c, gcc -static
#   kubedag.local/astro:1    the astronomy step image: busybox (for sh) plus
#                            Debian's source-extractor, wcstools and cfitsio
#                            programs (ASTRO_BINARIES below) with exactly the
#                            shared libraries ldd lists for them, and
#                            source-extractor's default configuration in
#                            /usr/share/source-extractor; user 65534:65534
#
# Usage: e2e/build-images.sh       prints "IMAGE-REF ARCHIVE" per image on stdout.
# Archives land in $KUBEDAG_E2E_CACHE/images/, keyed by a hash of their inputs
# (this script, oci-image.sh, the files that go in), so a re-run builds nothing.
# Missing Debian packages (busybox-static, gcc, source-extractor, wcstools,
# libcfitsio-bin) are installed first.
. "$(dirname "$0")/lib.sh"

BUSYBOX_IMAGE=kubedag.local/busybox:1
PAUSE_IMAGE=kubedag.local/pause:1
ASTRO_IMAGE=kubedag.local/astro:1
# The astronomy programs in the astro image. source-extractor: detection and
# photometry; wcstools: header and WCS tools (gethead reads keywords, imsize
# the size and centre, xy2sky/sky2xy convert pixels and sky coordinates);
# cfitsio: copying, compressing and checking FITS files.
ASTRO_BINARIES=(
  /usr/bin/source-extractor
  /usr/bin/gethead /usr/bin/imhead /usr/bin/imsize /usr/bin/wcshead
  /usr/bin/xy2sky /usr/bin/sky2xy /usr/bin/sethead /usr/bin/keyhead
  /usr/bin/fitscopy /usr/bin/imcopy /usr/bin/fpack /usr/bin/funpack
)
SEX_CONFIG_DIR=/usr/share/source-extractor

need busybox-static /bin/busybox
need gcc /usr/bin/gcc
need libc6-dev /usr/lib/x86_64-linux-gnu/libc.a
need source-extractor /usr/bin/source-extractor "$SEX_CONFIG_DIR/default.sex"
need wcstools /usr/bin/gethead /usr/bin/xy2sky
need libcfitsio-bin /usr/bin/fitscopy /usr/bin/imcopy
install_needed

mkdir -p "$E2E_CACHE/images"
tool_hash=$(sha256sum "$E2E_SRC/oci-image.sh" "$E2E_SRC/build-images.sh" | sha256sum | cut -c1-12)

# busybox_rootfs DIR: Debian's busybox with every applet linked, /etc/passwd
# and /etc/group with root and nobody (65534), /tmp (1777).
busybox_rootfs() {
  local root=$1 p d
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
}

# build_image NAME HASH-INPUT-CMD BUILD-CMD: the archive for NAME is
# images/NAME-<hash of HASH-INPUT-CMD's output and the tools>.tar; BUILD-CMD
# ROOT OUT builds it on a cache miss (ROOT: an empty scratch directory).
# Prints "REF ARCHIVE" (REF from the caller's ${NAME^^}_IMAGE variable).
build_image() {
  local name=$1 hash_cmd=$2 build_cmd=$3 hash out root start
  hash=$( { echo "$tool_hash"; "$hash_cmd"; } | sha256sum | cut -c1-16)
  out="$E2E_CACHE/images/$name-$hash.tar"
  if [[ ! -s $out ]]; then
    start=$SECONDS
    root=$(mktemp -d)
    chmod 755 "$root"   # the layer's "./" entry: / must be searchable for non-root users
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" EXIT
    "$build_cmd" "$root" "$out"
    rm -rf "$root"; trap - EXIT
    log "built image $name in $((SECONDS - start))s: $out ($(du -h "$out" | cut -f1))"
  fi
  # Keep the 3 newest archives of each image (other clones may use older ones).
  ls -t "$E2E_CACHE/images/$name-"*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
  local ref_var="${name^^}_IMAGE"
  echo "${!ref_var} $out"
}

# --- busybox
busybox_inputs() { sha256sum /bin/busybox; }
busybox_build() {
  busybox_rootfs "$1"
  "$E2E_SRC/oci-image.sh" --rootfs "$1" --name "$BUSYBOX_IMAGE" --out "$2" --cmd /bin/sh 2>/dev/null
}
build_image busybox busybox_inputs busybox_build

# --- pause
pause_inputs() { cat "$E2E_SRC/pause/pause.c"; gcc --version | head -1; }
pause_build() {
  gcc -static -O2 -s -o "$1/pause" "$E2E_SRC/pause/pause.c"
  "$E2E_SRC/oci-image.sh" --rootfs "$1" --name "$PAUSE_IMAGE" --out "$2" \
    --entrypoint /pause --user 65535:65535 2>/dev/null
}
build_image pause pause_inputs pause_build

# --- astro
# The libraries ldd resolves for the astro binaries (what --add-binary copies).
astro_libs() {
  # (with several files ldd prints a "FILE:" line before each one's list)
  ldd "${ASTRO_BINARIES[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $3} NF > 1 && $1 ~ /^\// {print $1}' | sort -u
}
astro_inputs() {
  sha256sum /bin/busybox "${ASTRO_BINARIES[@]}"
  astro_libs | xargs -r realpath | xargs -r sha256sum
  find "$SEX_CONFIG_DIR" -type f | sort | xargs sha256sum
  printf '%s\n' "${ASTRO_BINARIES[@]}"
}
astro_build() {
  local root=$1 out=$2 b args=() versions
  busybox_rootfs "$root"
  for b in "${ASTRO_BINARIES[@]}"; do args+=(--add-binary "$b"); done
  versions=$(dpkg-query -W -f '${Package}=${Version} ' source-extractor wcstools libcfitsio-bin)
  "$E2E_SRC/oci-image.sh" --rootfs "$root" "${args[@]}" \
    --add "$SEX_CONFIG_DIR:$SEX_CONFIG_DIR" \
    --name "$ASTRO_IMAGE" --out "$out" --cmd /bin/sh \
    --user 65534:65534 --env HOME=/tmp --workdir /tmp \
    --label "org.opencontainers.image.description=kubedag astronomy step image" \
    --label "io.kubedag.debian-packages=${versions% }" 2>/dev/null
}
build_image astro astro_inputs astro_build
