#!/usr/bin/env bash
# `make demo`: the main job. With no KUBECONFIG, brings up the local cluster; installs kubedag with
# Helm (an in-cluster operator); applies manifests/examples/ (a diamond, a retrying Dag, and 20
# concurrent astronomy runs) plus one duplicate run that the webhook refuses; waits; prints a summary.
# Takes the local cluster down at the end if it started it (KUBEDAG_KEEP_CLUSTER=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
ns=${KUBEDAG_DEMO_NAMESPACE:-kubedag-demo}
# shellcheck source=scripts/cluster-session.sh
. scripts/cluster-session.sh
ensure_cluster

kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
echo "== installing kubedag with Helm (make install), watching namespace $ns"
HELM_ARGS="--set watchNamespace=$ns ${HELM_ARGS:-}" scripts/install.sh

echo "== applying manifests/examples/ in namespace $ns"
kubectl apply -n "$ns" -f manifests/examples/00-dags.yaml
kubectl apply -n "$ns" -f manifests/examples/10-runs.yaml -f manifests/examples/20-astronomy-batch.yaml

echo "== submitting a duplicate of m31-0001 (same Dag, same params): the webhook refuses it"
duplicate=$(cat <<'YAML'
apiVersion: kubedag.io/v1alpha1
kind: DagRun
metadata: {name: m31-0001-again}
spec:
  dagRef: {name: process-image}
  params: {file: m31-0001.fits}
YAML
)
if refusal=$(kubectl apply -n "$ns" -f - <<<"$duplicate" 2>&1); then
  echo "ERROR: the duplicate was accepted: $refusal" >&2
  exit 1
fi
echo "refused: $refusal"

echo "== waiting for the runs to finish"
total=$(kubectl get dagruns -n "$ns" --no-headers | wc -l)
deadline=$((SECONDS + 600))
while :; do
  phases=$(kubectl get dagruns -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
  finished=$(grep -cE '^(Succeeded|Failed|Cancelled|Rejected)$' <<<"$phases" || true)
  printf '\r%d/%d runs finished' "$finished" "$total"
  [[ $finished -ge $total ]] && break
  if ((SECONDS > deadline)); then echo; echo "ERROR: runs did not finish in 10 minutes" >&2; exit 1; fi
  sleep 2
done
echo

echo "== runs (kubectl get dagruns -n $ns)"
kubectl get dagruns -n "$ns"
echo
echo "== per-run parameters and outcome"
kubectl get dagruns -n "$ns" \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\t"}{.status.params}{"\t"}{.status.message}{"\n"}{end}' |
  column -t -s $'\t'
echo
echo "== runs by phase"
kubectl get dagruns -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c
echo
echo "== the refusal"
echo "$refusal"
echo
echo "== expected: every astronomy and diamond run Succeeded, flaky-ok Succeeded after a retry,"
echo "   flaky-break Failed (broken failed, report Skipped, cleanup still ran)"
bad=$(kubectl get dagruns -n "$ns" -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{"\n"}{end}' |
  grep -vE '=Succeeded$' | grep -v '^flaky-break=Failed$' || true)
if [[ -n $bad ]]; then
  echo "ERROR: unexpected outcomes: $bad" >&2
  exit 1
fi
echo "demo finished in $((SECONDS - t0)) s"
