#!/usr/bin/env bash
# Build an OCI image archive (a tar of an OCI image layout) from a root
# filesystem directory, without Docker or any registry.
#
# Usage:
#   e2e/oci-image.sh [--rootfs DIR] [--add ...] [--add-binary ...] --name REF --out FILE.tar [options]
#
# Options:
#   --rootfs DIR          directory whose contents become the image's only layer
#                         (files are stored as owned by uid/gid 0, mtime 0);
#                         without it the image starts empty
#   --add SRC:DEST        copy file or directory SRC to DEST in the image (repeatable)
#   --add-binary SRC[:DEST]
#                         copy an executable (DEST defaults to SRC's path) and, if
#                         it is dynamically linked, the shared libraries and the
#                         loader `ldd` lists for it, at their host paths (repeatable)
#   --name REF            full image reference, e.g. kubedag.local/busybox:1
#   --out FILE            the archive to write (replaced atomically)
#   --entrypoint ARG      append ARG to the image's Entrypoint (repeatable)
#   --cmd ARG             append ARG to the image's Cmd (repeatable)
#   --user USER           image User, e.g. 65532 or 65532:65532
#   --env NAME=VALUE      add an environment variable (repeatable);
#                         PATH defaults to /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
#   --workdir DIR         image WorkingDir
#   --label KEY=VALUE     add an image label (repeatable)
#   --no-gzip             store the layer uncompressed
#
# Example (the operator image, from a cargo-built binary):
#   e2e/oci-image.sh --add-binary target/release/kubedag:/kubedag \
#       --name kubedag.local/kubedag:dev --out /tmp/kubedag.tar \
#       --entrypoint /kubedag --user 65532:65532
#   e2e/import-image.sh /tmp/kubedag.tar
#
# The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...)
# whose index annotates the manifest with io.containerd.image.name=REF (what
# `ctr images import` names the image by) and org.opencontainers.image.ref.name,
# plus a Docker-style manifest.json, so `docker load`-compatible tools read it too.
# The output is reproducible: the same rootfs and options give the same bytes.
set -euo pipefail

rootfs='' name='' out='' user='' workdir='' gzip=1
entrypoint=() cmd=() env=() labels=() adds=() binaries=()
while (($#)); do
  case $1 in
    --rootfs) rootfs=$2; shift 2 ;;
    --add) adds+=("$2"); shift 2 ;;
    --add-binary) binaries+=("$2"); shift 2 ;;
    --name) name=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --entrypoint) entrypoint+=("$2"); shift 2 ;;
    --cmd) cmd+=("$2"); shift 2 ;;
    --user) user=$2; shift 2 ;;
    --env) env+=("$2"); shift 2 ;;
    --workdir) workdir=$2; shift 2 ;;
    --label) labels+=("$2"); shift 2 ;;
    --no-gzip) gzip=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "oci-image.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -z $rootfs || -d $rootfs ]] || { echo "oci-image.sh: --rootfs $rootfs is not a directory" >&2; exit 2; }
[[ -n $rootfs ]] || ((${#adds[@]} + ${#binaries[@]})) ||
  { echo "oci-image.sh: give --rootfs, --add or --add-binary" >&2; exit 2; }
[[ -n $name ]] || { echo "oci-image.sh: --name REF is required" >&2; exit 2; }
[[ -n $out ]] || { echo "oci-image.sh: --out FILE is required" >&2; exit 2; }
# The tag part for org.opencontainers.image.ref.name (default "latest").
last=${name##*/}
if [[ $last == *:* ]]; then tag=${last##*:}; else tag=latest; name="$name:latest"; fi

json_str() { # quote one string as JSON
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}
json_arr() { # quote all arguments as a JSON array
  local first=1 a
  printf '['
  for a in "$@"; do ((first)) || printf ','; first=0; json_str "$a"; done
  printf ']'
}
json_obj_kv() { # KEY=VALUE... as a JSON object
  local first=1 kv
  printf '{'
  for kv in "$@"; do ((first)) || printf ','; first=0; json_str "${kv%%=*}"; printf ':'; json_str "${kv#*=}"; done
  printf '}'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/oci-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

put_blob() { # FILE -> prints digest hex, moves FILE into blobs
  local h
  h=$(sha256sum "$1" | cut -d' ' -f1)
  mv -f "$1" "$work/blobs/sha256/$h"
  echo "$h"
}

# Root filesystem: the given one plus the added files, staged in $work/rootfs
# (the given directory is left untouched).
if ((${#adds[@]} + ${#binaries[@]})); then
  mkdir -p "$work/rootfs"
  [[ -z $rootfs ]] || cp -a "$rootfs/." "$work/rootfs/"
  add() { # SRC DEST
    mkdir -p "$work/rootfs/$(dirname "$2")"
    cp -aL "$1" "$work/rootfs/$2"
  }
  for a in ${adds[@]+"${adds[@]}"}; do
    [[ $a == *:* ]] || { echo "oci-image.sh: --add wants SRC:DEST, got $a" >&2; exit 2; }
    add "${a%%:*}" "${a#*:}"
  done
  for b in ${binaries[@]+"${binaries[@]}"}; do
    src=${b%%:*} dest=${b#*:}
    [[ $b == *:* ]] || dest=$(realpath "$src")
    [[ -f $src ]] || { echo "oci-image.sh: no such file: $src" >&2; exit 2; }
    add "$src" "$dest"
    # Shared libraries: "name => /path (addr)" and the loader "/path (addr)".
    if ldd "$src" >/dev/null 2>&1; then
      while read -r lib; do
        [[ -e $work/rootfs/$lib ]] || add "$lib" "$lib"
      done < <(ldd "$src" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
    fi
  done
  rootfs=$work/rootfs
fi

# Layer.
tar --create --file "$work/layer.tar" --directory "$rootfs" --sort=name --mtime=@0 \
    --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
if ((gzip)); then
  gzip -n -6 "$work/layer.tar"
  layer_media=application/vnd.oci.image.layer.v1.tar+gzip
  layer=$(put_blob "$work/layer.tar.gz")
else
  layer_media=application/vnd.oci.image.layer.v1.tar
  layer=$(put_blob "$work/layer.tar")
fi
layer_size=$(stat -c %s "$work/blobs/sha256/$layer")

# Config.
have_path=0
for e in ${env[@]+"${env[@]}"}; do [[ $e == PATH=* ]] && have_path=1; done
((have_path)) || env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" ${env[@]+"${env[@]}"})
{
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{'
  printf '"Env":%s' "$(json_arr "${env[@]}")"
  ((${#entrypoint[@]})) && printf ',"Entrypoint":%s' "$(json_arr "${entrypoint[@]}")"
  ((${#cmd[@]})) && printf ',"Cmd":%s' "$(json_arr "${cmd[@]}")"
  [[ -n $user ]] && printf ',"User":%s' "$(json_str "$user")"
  [[ -n $workdir ]] && printf ',"WorkingDir":%s' "$(json_str "$workdir")"
  ((${#labels[@]})) && printf ',"Labels":%s' "$(json_obj_kv "${labels[@]}")"
  printf '},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},' "$diff_id"
  printf '"history":[{"created":"1970-01-01T00:00:00Z","created_by":"e2e/oci-image.sh"}]}'
} > "$work/config.json"
config=$(put_blob "$work/config.json")
config_size=$(stat -c %s "$work/blobs/sha256/$config")

# Manifest.
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer_media" "$layer" "$layer_size" > "$work/manifest.oci.json"
manifest=$(put_blob "$work/manifest.oci.json")
manifest_size=$(stat -c %s "$work/blobs/sha256/$manifest")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":%s,"org.opencontainers.image.ref.name":%s},"platform":{"architecture":"amd64","os":"linux"}}]}' \
  "$manifest" "$manifest_size" "$(json_str "$name")" "$(json_str "$tag")" > "$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
printf '[{"Config":"blobs/sha256/%s","RepoTags":[%s],"Layers":["blobs/sha256/%s"]}]' \
  "$config" "$(json_str "$name")" "$layer" > "$work/manifest.json"

mkdir -p "$(dirname "$out")"
tar --create --file "$out.tmp.$$" --directory "$work" --sort=name --mtime=@0 \
    --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    oci-layout index.json manifest.json blobs
mv -f "$out.tmp.$$" "$out"
echo "oci-image.sh: wrote $out ($name, manifest sha256:$manifest)" >&2
