#!/usr/bin/env bash
# Prove the astronomy Dag's steps without kubedag: run each step of
# manifests/examples/21-astronomy-dag.yaml, exactly as written there (rendered by
# dag_pod.py: same image, script, mounts, security context, env), as a plain
# Pod in the restricted namespace kubedag-demo, in dependency order, on one staged
# image, then check the catalogue it wrote with oracle.py. Runs the unit
# tests of oracle.py and dag_pod.py first.
#
# Usage: e2e/astro/prove-steps.sh [IMAGE-NAME...]   (default: kdg-field-0001)
#        (IMAGE-NAME without .fits; m13 is the real image: checked for >= 20
#        sources since it has no truth list)
# Needs the cluster (e2e/cluster-up.sh) with kubedag.local/astro:1 and the
# local-path provisioner. Stages the inputs (stage-inputs.sh), applies
# manifests/examples/{00-namespace,20-astronomy-volumes}.yaml, creates one workspace PVC per image
# (the Dag's volumeClaimTemplate), deletes its pods and PVCs at the end.
# Last line "N passed, M failed"; exit 1 if any failed.
. "$(dirname "$0")/../lib.sh"

ASTRO="$E2E_SRC/astro"
MAN="$E2E_SRC/../manifests/examples"
DAG="$MAN/21-astronomy-dag.yaml"
NS=kubedag-demo
export KUBECONFIG=${KUBECONFIG:-$ADMIN_KUBECONFIG}
k() { "$E2E_DIR/bin/kubectl" "$@"; }
fields=("$@")
((${#fields[@]})) || fields=(kdg-field-0001)

staged=$("$ASTRO/stage-inputs.sh")
truth_dir=$(awk '$1 == "truth" {print $2}' <<<"$staged")
PY=$("$ASTRO/venv.sh")
k apply -f "$MAN/00-namespace.yaml" -f "$MAN/20-astronomy-volumes.yaml" >/dev/null

run=prove-$(date +%s)
cleanup() {
  k -n "$NS" delete pods -l "kubedag.io/run=$run" --wait=false >/dev/null 2>&1 || true
  k -n "$NS" delete pvc -l "kubedag.io/run=$run" --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

host_path_of_claim() { # CLAIM: the node directory of its (hostPath) PV
  local pv
  pv=$(k -n "$NS" get pvc "$1" -o jsonpath='{.spec.volumeName}')
  k get pv "$pv" -o jsonpath='{.spec.hostPath.path}{.spec.local.path}'
}

# run_step FIELD STEP WORKSPACE-CLAIM: the step's pod, to completion; its log on stdout.
run_step() {
  local field=$1 step=$2 claim=$3 pod="$run-$1-$2" phase="" deadline=$((SECONDS + 180))
  "$PY" "$ASTRO/dag_pod.py" "$DAG" "$step" --name "$pod" --workspace-claim "$claim" \
    --param "file=/data/input/$field.fits" --run "$run" | k -n "$NS" apply -f - >/dev/null
  until [[ $phase == Succeeded || $phase == Failed ]]; do
    ((SECONDS < deadline)) || { echo "pod $pod still '$phase' after 180s"; return 1; }
    sleep 0.5
    phase=$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.phase}')
  done
  k -n "$NS" logs "$pod" | sed "s/^/    $step| /"
  [[ $phase == Succeeded ]] || { echo "step $step failed: exit $(k -n "$NS" get pod "$pod" \
    -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}')"; return 1; }
}

# prove FIELD: all steps on one image, then the oracle on its catalogue.
prove() {
  local field=$1 claim="$run-$1-workspace" step cat out ws
  "$PY" - "$DAG" "$claim" "$run" <<'PY' | k -n "$NS" apply -f - >/dev/null
import json, sys, yaml
dag = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Dag")
print(json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": sys.argv[2], "labels": {"kubedag.io/run": sys.argv[3]}},
                  "spec": dag["spec"]["workspace"]["volumeClaimTemplate"]["spec"]}))
PY
  for step in header detect catalogue; do
    run_step "$field" "$step" "$claim" || return 1
  done
  cat="$(host_path_of_claim astro-catalogues)/$field.cat"
  [[ -s $cat ]] || { echo "no catalogue $cat on the output volume"; return 1; }
  # The step's declared output, as kubedag would record it.
  ws=$(host_path_of_claim "$claim")
  out=$(cat "$ws/.outputs-catalogue" 2>/dev/null)
  [[ $out == "sources=$(grep -vc '^#' "$cat")" ]] || { echo "outputs file reads '$out'"; return 1; }
  if [[ -f $truth_dir/$field.truth.csv ]]; then
    python3 "$ASTRO/oracle.py" "$cat" "$truth_dir/$field.truth.csv"
  else
    python3 "$ASTRO/oracle.py" "$cat" --min-sources 20
  fi
}

passed=0 failed=0
# The oracle's and dag_pod.py's own unit tests first.
if out=$(cd "$ASTRO" && "$PY" -m unittest -q test_oracle.py test_dag_pod.py 2>&1); then
  echo "PASS unit: $(grep -o 'Ran [0-9]* tests' <<<"$out") (oracle.py, dag_pod.py)"; passed=$((passed + 1))
else
  echo "FAIL unit: $(tail -5 <<<"$out")"; failed=$((failed + 1))
fi
# The namespace really enforces the restricted standard: a root pod is refused.
if out=$(k -n "$NS" run pss-probe --image=kubedag.local/astro:1 --restart=Never --dry-run=server 2>&1); then
  echo "FAIL restricted: a pod without a restricted security context was admitted"; failed=$((failed + 1))
elif [[ $out == *"violates PodSecurity \"restricted"* ]]; then
  echo "PASS restricted: namespace $NS refuses pods that violate the restricted standard"; passed=$((passed + 1))
else
  echo "FAIL restricted: unexpected answer: ${out:0:200}"; failed=$((failed + 1))
fi
# A missing input fails the header step with a message naming the file.
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $run-missing-workspace, labels: {kubedag.io/run: $run}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Mi}}}
YAML
if out=$(run_step missing header "$run-missing-workspace" 2>&1); then
  echo "FAIL header-missing-file: the header step succeeded on a missing file"; failed=$((failed + 1))
elif [[ $out == *"cannot read image '/data/input/missing.fits'"* && $out == *"exit 2"* ]]; then
  echo "PASS header-missing-file: exit 2, \"header: cannot read image '/data/input/missing.fits'\""; passed=$((passed + 1))
else
  echo "FAIL header-missing-file: ${out:0:300}"; failed=$((failed + 1))
fi
for f in "${fields[@]}"; do
  start=$SECONDS
  echo "== $f"
  if prove "$f"; then
    echo "PASS $f ($((SECONDS - start))s)"; passed=$((passed + 1))
  else
    echo "FAIL $f ($((SECONDS - start))s)"; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
((failed == 0))
