#!/usr/bin/env bash
# `make demo`: the main job. With no KUBECONFIG, brings up the local cluster; stages the astronomy
# input images (e2e/astro/stage-inputs.sh); installs kubedag with Helm (an in-cluster operator
# watching the examples' namespace); applies manifests/examples/ (a diamond, a retrying Dag, and
# the astronomy pipeline with 20 concurrent runs, one per image, in the restricted namespace
# kubedag-demo) plus one duplicate run that the webhook refuses; applies the DagTrigger
# astro-incoming (23-astronomy-trigger.yaml) and drops 5 new images into its incoming/ directory
# one by one, one of them written slowly in chunks, showing the runs the trigger submits; waits;
# prints per image the run, its phase, the number of sources found and the oracle's verdict on
# the catalogue.
# Takes the local cluster down at the end if it started it (KUBEDAG_KEEP_CLUSTER=1 keeps it).
# The input volume is a directory on the node (hostPath PV), so the astronomy part needs the local
# cluster (or a one-node cluster whose node is this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
ns=kubedag-demo # the examples' namespace (manifests/examples/00-namespace.yaml)
ex=manifests/examples
# shellcheck source=scripts/cluster-session.sh
. scripts/cluster-session.sh
ensure_cluster

echo "== staging the astronomy input images (e2e/astro/stage-inputs.sh)"
# 25 fields: 20 for the explicit runs, 21..25 dropped into incoming/ for the trigger.
staged=$(ASTRO_FIELDS=25 e2e/astro/stage-inputs.sh)
truth_dir=$(awk '$1 == "truth" {print $2}' <<<"$staged")
images_dir=$(awk '$1 == "images" {print $2}' <<<"$staged")
incoming=$(awk '$1 == "node" {print $2}' <<<"$staged")/incoming
trigger=astro-incoming
echo "$staged"

kubectl apply -f "$ex/00-namespace.yaml" >/dev/null
echo "== installing kubedag with Helm (make install), watching namespace $ns"
HELM_ARGS="--set watchNamespace=$ns ${HELM_ARGS:-}" scripts/install.sh

echo "== applying manifests/examples/ in namespace $ns (restricted Pod Security Standard)"
kubectl apply -n "$ns" -f "$ex/10-dags.yaml" -f "$ex/20-astronomy-volumes.yaml" -f "$ex/21-astronomy-dag.yaml"
kubectl apply -n "$ns" -f "$ex/11-runs.yaml" -f "$ex/22-astronomy-runs.yaml" | tail -3
echo "   ... $(grep -c '^kind: DagRun' "$ex/22-astronomy-runs.yaml") astronomy runs, one per image"

echo "== submitting a duplicate of kdg-field-0001 (same Dag, same params): the webhook refuses it"
duplicate=$(cat <<'YAML'
apiVersion: kubedag.io/v1alpha1
kind: DagRun
metadata: {name: kdg-field-0001-again}
spec:
  dagRef: {name: astro-pipeline}
  params: {file: /data/input/kdg-field-0001.fits}
YAML
)
if refusal=$(kubectl apply -n "$ns" -f - <<<"$duplicate" 2>&1); then
  echo "ERROR: the duplicate was accepted: $refusal" >&2
  exit 1
fi
echo "refused: $refusal"

echo "== the DagTrigger $trigger: one run per new image in incoming/ ($ex/23-astronomy-trigger.yaml)"
# A re-run of the demo drops the same images again (new mtimes: new inputs); their old runs go
# first, or the Dag's duplicatePolicy Forbid would refuse the new ones.
kubectl delete dagruns -n "$ns" -l "kubedag.io/trigger=$trigger" --wait >/dev/null
kubectl apply -n "$ns" -f "$ex/23-astronomy-trigger.yaml"
until kubectl get deployment -n "$ns" "$trigger-watcher" >/dev/null 2>&1; do sleep 1; done
kubectl rollout status -n "$ns" "deployment/$trigger-watcher" --timeout=180s
trigger_runs() {
  kubectl get dagruns -n "$ns" -l "kubedag.io/trigger=$trigger" --sort-by=.metadata.creationTimestamp \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.params.file}{" "}{.status.phase}{"\n"}{end}'
}
# A file is written at once (cp), or slowly: in 3 chunks 1 s apart, inside settleSeconds (3).
drop() {
  local src=$1 dst=$2 how=$3 size chunk i
  if [[ $how == slowly ]]; then
    size=$(stat -c %s "$src")
    chunk=$(((size + 2) / 3))
    for i in 0 1 2; do
      dd if="$src" of="$dst" bs="$chunk" skip="$i" seek="$i" count=1 conv=notrunc status=none
      ((i == 2)) || sleep 1
    done
  else
    cp "$src" "$dst"
  fi
}
umask 022
for n in 21 22 23 24 25; do
  image=kdg-field-00$n.fits
  how=at-once
  [[ $n == 23 ]] && how=slowly
  drop "$images_dir/$image" "$incoming/$image" "$how"
  echo "$(date -u +%T) dropped incoming/$image ($(stat -c %s "$incoming/$image") bytes, written $how)"
  sleep 3
  trigger_runs | sed 's/^/           run /'
done
echo "   waiting for the trigger to submit all 5"
deadline=$((SECONDS + 120))
while [[ $(trigger_runs | grep -c .) -lt 5 ]]; do
  if ((SECONDS > deadline)); then echo "ERROR: the trigger did not submit 5 runs in 2 minutes" >&2; exit 1; fi
  sleep 1
done
kubectl get dagtriggers -n "$ns"

echo "== waiting for the runs to finish"
total=$(kubectl get dagruns -n "$ns" --no-headers | wc -l)
deadline=$((SECONDS + 900))
while :; do
  phases=$(kubectl get dagruns -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
  finished=$(grep -cE '^(Succeeded|Failed|Cancelled|Rejected)$' <<<"$phases" || true)
  printf '\r%d/%d runs finished' "$finished" "$total"
  [[ $finished -ge $total ]] && break
  if ((SECONDS > deadline)); then echo; echo "ERROR: runs did not finish in 15 minutes" >&2; exit 1; fi
  sleep 2
done
echo

echo "== runs (kubectl get dagruns -n $ns)"
kubectl get dagruns -n "$ns"
echo

# The node directory of the catalogue volume (local-path: a hostPath PV on this machine).
pv=$(kubectl get pvc -n "$ns" astro-catalogues -o jsonpath='{.spec.volumeName}')
catalogues=$(kubectl get pv "$pv" -o jsonpath='{.spec.hostPath.path}{.spec.local.path}' 2>/dev/null || true)
# sources RUN: the catalogue step's output `sources` when recorded, else the count in its log.
sources() {
  local n
  n=$(kubectl get dagrun -n "$ns" "$1" -o jsonpath='{.status.steps[?(@.name=="catalogue")].outputs.sources}')
  if [[ -z $n ]]; then
    n=$(kubectl logs -n "$ns" -l "kubedag.io/run=$1,kubedag.io/step=catalogue" --tail=-1 2>/dev/null |
      sed -n 's/^catalogue: \([0-9]*\) sources.*/\1/p' | tail -1)
  fi
  echo "${n:--}"
}
echo "== per image: the run, its phase, the sources found, the oracle on the catalogue"
runs=$(kubectl get dagruns -n "$ns" \
  -o jsonpath='{range .items[?(@.spec.dagRef.name=="astro-pipeline")]}{.metadata.name}{" "}{.status.phase}{" "}{.status.params.file}{"\n"}{end}')
table=$(
  printf 'IMAGE\tRUN\tPHASE\tSOURCES\tORACLE (vs the truth list)\n'
  while read -r run phase file; do
    image=$(basename "$file" .fits)
    verdict=-
    if [[ -n $catalogues && -f $catalogues/$image.cat && -f $truth_dir/$image.truth.csv ]]; then
      verdict=$(python3 e2e/astro/oracle.py "$catalogues/$image.cat" "$truth_dir/$image.truth.csv" 2>&1 |
        head -1 | sed -E 's#^oracle: ([A-Z]+) [^ ]*: #\1 #; s# within 1.5 px \(([0-9.]+%), need >= 90%\)#, \1#' || true)
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$image" "$run" "$phase" "$(sources "$run")" "$verdict"
  done <<<"$runs"
)
column -t -s $'\t' <<<"$table"
bad_oracle=$(grep -c $'\tFAIL' <<<"$table" || true)
echo
echo "== workspaces: one PersistentVolumeClaim per astronomy run, owned by it"
kubectl get pvc -n "$ns" -l kubedag.io/dag=astro-pipeline --no-headers | awk '{print $2}' | sort | uniq -c |
  sed 's/^/   claims /'
echo
echo "== the other examples"
kubectl get dagruns -n "$ns" \
  -o jsonpath='{range .items[?(@.spec.dagRef.name!="astro-pipeline")]}{.metadata.name}{"\t"}{.status.phase}{"\t"}{.status.message}{"\n"}{end}' |
  column -t -s $'\t'
echo
echo "== runs by phase"
kubectl get dagruns -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c
echo
echo "== the trigger (kubectl get dagtriggers -n $ns) and its runs"
kubectl get dagtriggers -n "$ns"
trigger_runs | column -t
echo
echo "== the refusal"
echo "$refusal"
echo
echo "== expected: every astronomy and diamond run Succeeded with a catalogue the oracle passes"
echo "   (the trigger's 5 too, one per dropped image, submitted exactly once each),"
echo "   flaky-ok Succeeded after a retry 2 s later, flaky-break Failed (broken failed, report Skipped,"
echo "   cleanup still ran)"
bad=$(kubectl get dagruns -n "$ns" -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}' |
  grep -vE '=Succeeded$' | grep -v '^flaky-break=Failed$' || true)
trigger_total=$(trigger_runs | grep -c . || true)
trigger_ok=$(trigger_runs | awk '$3 == "Succeeded"' | grep -c . || true)
if [[ -n $bad || $bad_oracle -gt 0 || $trigger_total != 5 || $trigger_ok != 5 ]]; then
  echo "ERROR: unexpected outcomes: $bad (oracle failures: $bad_oracle;" \
    "the trigger made $trigger_total runs, $trigger_ok Succeeded, want 5 and 5)" >&2
  exit 1
fi
echo "demo finished in $((SECONDS - t0)) s"
