#!/usr/bin/env bash
# Smoke test of the local e2e cluster (e2e/cluster-up.sh). Uses $KUBECONFIG,
# default /var/lib/kubedag-e2e/kubeconfig (under $KUBEDAG_E2E_DIR), and $KUBECTL,
# default the cluster's own kubectl (/var/lib/kubedag-e2e/bin/kubectl), else
# `kubectl` from PATH.
#
# Usage: e2e/smoke-test.sh
# Checks (each prints PASS/FAIL with a reason; all run in a throw-away namespace
# that is deleted at the end):
#   job-complete     a Job running kubedag.local/busybox:1 `echo ok` completes, its log reads "ok"
#   job-fail-exit3   a Job running `exit 3` (backoffLimit 0) fails, its container exit code is 3
#   pod-to-apiserver a pod reaches the API server through the kubernetes Service (10.96.0.1:443):
#                    busybox nc sends plain HTTP to it and gets the TLS server's 400 answer
#   job-gc           deleting a Job (propagationPolicy Background) garbage-collects its pods
#   apiserver-to-pod the API server reaches a pod through its Service (service proxy)
#   host-to-service  the host reaches a ClusterIP Service and a pod IP
#   pvc-dynamic      a PVC with no storageClassName gets the default class
#                    (local-path), waits Pending until a pod uses it
#                    (WaitForFirstConsumer), is provisioned and bound; a
#                    non-root pod writes a file, a second pod reads it back;
#                    deleting the PVC deletes its PV and the directory on the node
# The last line is "N passed, M failed"; the exit code is non-zero if any failed.
set -uo pipefail

E2E_DIR=${KUBEDAG_E2E_DIR:-/var/lib/kubedag-e2e}
export KUBECONFIG=${KUBECONFIG:-$E2E_DIR/kubeconfig}
if [[ -z ${KUBECTL:-} ]]; then
  if [[ -x $E2E_DIR/bin/kubectl ]]; then KUBECTL=$E2E_DIR/bin/kubectl; else KUBECTL=kubectl; fi
fi
IMAGE=${SMOKE_IMAGE:-kubedag.local/busybox:1}
NS=kubedag-smoke-$(date +%s)-$$
passed=0 failed=0

k() { "$KUBECTL" "$@"; }
pass() { echo "PASS $1: $2"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
finish() {
  k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  echo "$passed passed, $failed failed"
  ((failed == 0))
}
# poll SECONDS CMD...: until CMD succeeds
poll() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

if ! k version >/dev/null 2>&1; then
  fail cluster "cannot reach the API server with KUBECONFIG=${KUBECONFIG:-}"
  finish; exit 1
fi
k create namespace "$NS" >/dev/null || { fail cluster "cannot create namespace $NS"; finish; exit 1; }
poll 60 k -n "$NS" get serviceaccount default || { fail cluster "no default ServiceAccount in $NS"; finish; exit 1; }

job() { # NAME BACKOFF COMMAND
  cat <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
  namespace: $NS
spec:
  backoffLimit: $2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: $IMAGE
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "$3"]
---
YAML
}
{
  job ok 0 'echo ok'
  job exit3 0 'exit 3'
  # Debian's busybox-static 1.35 crashes (SIGSEGV) in its own TLS client, so
  # no `wget https://`: speak plain HTTP to the HTTPS port instead; Go's TLS
  # server (the API server) answers that with a recognisable 400.
  job apiserver 0 'printf \"GET /version HTTP/1.0\\r\\n\\r\\n\" | nc -w 5 10.96.0.1 443'
  job gc 0 'sleep 3600'
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: $NS
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: $IMAGE
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{containerPort: 8080}]
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: $NS
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
} | k apply -f - >/dev/null || { fail cluster "cannot create the test objects"; finish; exit 1; }

pod_of() { k -n "$NS" get pods -l "batch.kubernetes.io/job-name=$1" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null; }
job_cond() { # JOB TYPE: the condition's status
  k -n "$NS" get job "$1" -o "jsonpath={.status.conditions[?(@.type==\"$2\")].status}" 2>/dev/null
}
is_true() { [[ $("$@") == True ]]; }

# (a) job-complete
if poll 90 is_true job_cond ok Complete; then
  out=$(k -n "$NS" logs "$(pod_of ok)" 2>&1)
  if [[ $out == ok ]]; then pass job-complete "Job completed, log reads 'ok'"
  else fail job-complete "Job completed but log reads '$out'"; fi
else
  fail job-complete "Job not Complete in 90s: $(k -n "$NS" get pods -l batch.kubernetes.io/job-name=ok -o wide 2>&1 | tail -1)"
fi

# (b) job-fail-exit3
if poll 90 is_true job_cond exit3 Failed; then
  code=$(k -n "$NS" get pod "$(pod_of exit3)" -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode}' 2>&1)
  if [[ $code == 3 ]]; then pass job-fail-exit3 "Job Failed, container exit code 3"
  else fail job-fail-exit3 "Job Failed but exit code is '$code'"; fi
else
  fail job-fail-exit3 "Job not Failed in 90s"
fi

# (c) pod-to-apiserver
if poll 90 is_true job_cond apiserver Complete; then
  out=$(k -n "$NS" logs "$(pod_of apiserver)" 2>&1)
  if [[ $out == *"HTTP request to an HTTPS server"* ]]; then
    pass pod-to-apiserver "pod reached the API server at 10.96.0.1:443 (kubernetes Service)"
  else fail pod-to-apiserver "unexpected response: ${out:0:200}"; fi
else
  fail pod-to-apiserver "Job did not complete: $(k -n "$NS" logs "$(pod_of apiserver)" 2>&1 | tail -2)"
fi

# (d) job-gc
has_pod() { [[ -n $(pod_of "$1") ]]; }
if poll 60 has_pod gc; then
  gc_pod=$(pod_of gc)
  k -n "$NS" delete job gc --cascade=background --wait=false >/dev/null
  pod_gone() { ! k -n "$NS" get pod "$gc_pod" >/dev/null 2>&1; }
  if poll 60 pod_gone; then pass job-gc "pod $gc_pod deleted after its Job was deleted (Background)"
  else fail job-gc "pod $gc_pod still exists 60s after deleting its Job"; fi
else
  fail job-gc "the Job never created a pod"
fi

# (e) apiserver-to-pod, (f) host-to-service
if k -n "$NS" wait --for=condition=Ready pod/web --timeout=90s >/dev/null 2>&1; then
  out=$(k get --raw "/api/v1/namespaces/$NS/services/http:web:http/proxy/" 2>&1)
  if [[ $out == hello-from-pod ]]; then pass apiserver-to-pod "API server proxied to the pod through Service web"
  else fail apiserver-to-pod "service proxy returned: ${out:0:200}"; fi
  cip=$(k -n "$NS" get svc web -o jsonpath='{.spec.clusterIP}')
  pip=$(k -n "$NS" get pod web -o jsonpath='{.status.podIP}')
  out1=$(curl -s --max-time 5 "http://$cip:80/" 2>&1)
  out2=$(curl -s --max-time 5 "http://$pip:8080/" 2>&1)
  if [[ $out1 == hello-from-pod && $out2 == hello-from-pod ]]; then
    pass host-to-service "host reached ClusterIP $cip:80 and pod IP $pip:8080"
  else fail host-to-service "ClusterIP $cip:80 -> '${out1:0:80}', pod IP $pip:8080 -> '${out2:0:80}'"; fi
else
  fail apiserver-to-pod "pod web not Ready in 90s"
  fail host-to-service "pod web not Ready in 90s"
fi

# (g) pvc-dynamic
pvc_pod() { # NAME COMMAND: a non-root pod with PVC "data" at /data
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $NS
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: main
    image: $IMAGE
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "$2"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
YAML
}
pod_phase() { k -n "$NS" get pod "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
is_succeeded() { [[ $(pod_phase "$1") == Succeeded ]]; }
pvc_field() { k -n "$NS" get pvc data -o "jsonpath=$1" 2>/dev/null; }
pvc_check() {
  k -n "$NS" apply -f - >/dev/null <<YAML || { echo "cannot create PVC data"; return 1; }
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
YAML
  sleep 2
  local sc phase pv dir out
  sc=$(pvc_field '{.spec.storageClassName}') phase=$(pvc_field '{.status.phase}')
  [[ $sc == local-path ]] || { echo "PVC got storageClassName '$sc', not the default local-path"; return 1; }
  [[ $phase == Pending ]] || { echo "PVC is '$phase' before any pod uses it (want Pending: WaitForFirstConsumer)"; return 1; }
  pvc_pod writer 'echo written-by-$(id -u) > /data/f && cat /data/f' | k apply -f - >/dev/null
  poll 90 is_succeeded writer || { echo "writer pod is '$(pod_phase writer)' after 90s, PVC '$(pvc_field '{.status.phase}')'"; return 1; }
  pvc_pod reader 'cat /data/f' | k apply -f - >/dev/null
  poll 60 is_succeeded reader || { echo "reader pod is '$(pod_phase reader)' after 60s"; return 1; }
  out=$(k -n "$NS" logs reader 2>&1)
  [[ $out == written-by-65534 ]] || { echo "reader read '$out', want 'written-by-65534'"; return 1; }
  pv=$(pvc_field '{.spec.volumeName}')
  dir=$(k get pv "$pv" -o jsonpath='{.spec.hostPath.path}{.spec.local.path}' 2>/dev/null)
  [[ -n $dir && -f $dir/f ]] || { echo "PV $pv: no file f in its node directory '$dir'"; return 1; }
  k -n "$NS" delete pod writer reader --wait=true >/dev/null 2>&1
  k -n "$NS" delete pvc data --wait=true >/dev/null 2>&1
  pv_gone() { ! k get pv "$pv" >/dev/null 2>&1 && [[ ! -e $dir ]]; }
  poll 60 pv_gone || { echo "PV $pv or its directory $dir still exists 60s after deleting the PVC"; return 1; }
  echo "PVC Pending until used, bound to $pv (local-path, $dir); uid 65534 wrote, a second pod read; PV and directory deleted with the PVC"
}
if msg=$(pvc_check 2>&1); then pass pvc-dynamic "$msg"; else fail pvc-dynamic "$(echo "$msg" | tail -1)"; fi

finish
