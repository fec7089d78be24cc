#!/usr/bin/env bash
# Generate the astronomy pipeline's input images (cached) and stage them on the
# node directory behind the astro-input PersistentVolume.
#
# Usage: e2e/astro/stage-inputs.sh
# Prints three lines on stdout:
#   images DIR   the generated FITS images (24 simulated fields + m13.fits)
#   truth DIR    their truth lists, NAME.truth.csv (never on the input volume)
#   node DIR     the PV's node directory (spec.hostPath.path of the
#                PersistentVolume in manifests/examples/20-astronomy-volumes.yaml), which
#                now holds exactly the images, world-readable, and an empty
#                incoming/ (the DagTrigger's directory, 23-astronomy-trigger.yaml)
# The images are generated once per version of make_fields.py and the venv
# (in $KUBEDAG_E2E_CACHE/astro/fields-<hash>/), ~2 s; staging copies ~6 MB.
# Env: ASTRO_FIELDS (default 24), ASTRO_SEED (default 20240601).
. "$(dirname "$0")/../lib.sh"

ASTRO="$E2E_SRC/astro"
PV_MANIFEST="$E2E_SRC/../manifests/examples/20-astronomy-volumes.yaml"
count=${ASTRO_FIELDS:-24}
seed=${ASTRO_SEED:-20240601}

PY=$("$ASTRO/venv.sh")

# The real image shipped inside astropy's wheel (SkyView, M13).
m13=$("$PY" -c 'import astropy, os; print(os.path.join(os.path.dirname(astropy.__file__), "io/fits/hdu/compressed/tests/data/m13.fits"))')
[[ -s $m13 ]] || die "astropy's m13.fits test image is missing: $m13"

hash=$( { cat "$ASTRO/make_fields.py"; echo "$PY $count $seed"; sha256sum "$m13"; } | sha256sum | cut -c1-16)
data="$E2E_CACHE/astro/fields-$hash"
if [[ ! -f $data/.complete ]]; then
  start=$SECONDS
  rm -rf "$data"
  "$PY" "$ASTRO/make_fields.py" --images "$data/images" --truth "$data/truth" \
    --count "$count" --seed "$seed" --real-image "$m13"
  touch "$data/.complete"
  ls -dt "$E2E_CACHE/astro/fields-"* 2>/dev/null | tail -n +3 | xargs -r rm -rf
  log "generated $count fields in $((SECONDS - start))s: $data"
fi

node_dir=$("$PY" - "$PV_MANIFEST" <<'PY'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "PersistentVolume":
        print(doc["spec"]["hostPath"]["path"])
        break
else:
    sys.exit(f"{sys.argv[1]}: no PersistentVolume with spec.hostPath.path")
PY
)
[[ $node_dir == /* ]] || die "bad node directory '$node_dir' in $PV_MANIFEST"
mkdir -p "$node_dir"
# Exactly the generated images: stale files of an older dataset go.
find "$node_dir" -mindepth 1 -maxdepth 1 -name '*.fits' -delete
cp "$data/images/"*.fits "$node_dir/"
chmod 0755 "$node_dir"
chmod 0644 "$node_dir/"*.fits
mkdir -p "$node_dir/incoming"
find "$node_dir/incoming" -mindepth 1 -maxdepth 1 -name '*.fits' -delete
chmod 0755 "$node_dir/incoming"
log "staged $(find "$node_dir" -name '*.fits' | wc -l) images in $node_dir"
echo "images $data/images"
echo "truth $data/truth"
echo "node $node_dir"
