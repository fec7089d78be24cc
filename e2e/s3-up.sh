#!/usr/bin/env bash
# Start (or keep running) a real S3-compatible server on this machine for the
# bucket source tests: Versity's S3 gateway (versitygw, Apache-2.0, built from
# its Go module pinned in e2e/s3/go.mod) with its POSIX backend.
#
# Usage: e2e/s3-up.sh      (idempotent: a running server is reused, ~0 s)
# Stdout: exactly these lines (shell-sourceable, nothing else):
#   S3_ENDPOINT=http://127.0.0.1:PORT
#   S3_REGION=us-east-1
#   S3_ACCESS_KEY_ID=...
#   S3_SECRET_ACCESS_KEY=...
# Build: once into $KUBEDAG_E2E_CACHE/s3/versitygw-<hash>/ (hash of go.mod,
#   go.sum, the Go version and the build flags; a cold build takes a few minutes on
#   2 cores, log in $KUBEDAG_E2E_CACHE/logs/build-versitygw.log).
# State: $KUBEDAG_E2E_DIR/s3/ holds data/ (buckets are its directories),
#   credentials and port (chosen free on first start, kept across restarts),
#   versitygw.pid and versitygw.log. The root credentials are random, made on
#   first start (mode 600). e2e/s3-down.sh stops the server (data kept).
# KUBEDAG_S3_HOST is the address it listens on; default the node address ($NODE_IP, on the
#   local cluster's bridge) while that exists, so pods reach it too (a bucket DagTrigger's
#   watcher), else 127.0.0.1. A server listening elsewhere is restarted on it (data kept).
. "$(dirname "$0")/lib.sh"

SRC="$E2E_SRC/s3"
MOD=github.com/versity/versitygw
S3_DIR="$E2E_DIR/s3"
S3_CACHE="$E2E_CACHE/s3"
HOST=${KUBEDAG_S3_HOST:-}
if [[ -z $HOST ]]; then
  # Here-strings, not pipes into grep -q: under pipefail a writer that outlives grep's early exit
  # dies of SIGPIPE and fails the test (this once chose 127.0.0.1 in one of two parallel calls,
  # and the restart that followed killed the server under the other).
  if grep -q " inet $NODE_IP/" <<<"$(ip -4 -o addr show 2>/dev/null)"; then HOST=$NODE_IP; else HOST=127.0.0.1; fi
fi
PIDFILE="$S3_DIR/versitygw.pid"
REGION=us-east-1

command -v go >/dev/null || die "the Go toolchain (go) is not installed"
export HOME="${HOME:-/root}"
mkdir -p "$S3_DIR/data" "$S3_CACHE" "$E2E_CACHE/logs" /run/lock
# One up/down at a time machine-wide (tests run this in parallel).
exec 8>/run/lock/kubedag-e2e-s3.lock
flock 8

# build -> path of the versitygw binary (cached by source hash).
build() {
  local version ld hash out tmp start logf="$E2E_CACHE/logs/build-versitygw.log"
  version=$(awk -v m="$MOD" '$1==m && $2 ~ /^v/ {print $2; exit}' "$SRC/go.mod")
  [[ -n $version ]] || die "cannot read the $MOD version from e2e/s3/go.mod"
  ld="-s -w -X main.Version=$version"
  hash=$({ echo "$ld CGO_ENABLED=0 -trimpath"; go env GOVERSION GOARCH; cat "$SRC/go.mod" "$SRC/go.sum"; } |
    sha256sum | cut -c1-16)
  out="$S3_CACHE/versitygw-$hash/versitygw"
  if [[ ! -x $out ]]; then
    log "building versitygw $version (cache miss, hash $hash); log: $logf"
    start=$SECONDS tmp="$out.tmp.$$"
    mkdir -p "$(dirname "$out")"
    if ! (cd "$SRC" && CGO_ENABLED=0 GOFLAGS="-p=${E2E_BUILD_JOBS:-2} -buildvcs=false" \
          go build -trimpath -ldflags "$ld" -o "$tmp" "$MOD/cmd/versitygw") >"$logf" 2>&1; then
      rm -f "$tmp"; tail -30 "$logf" >&2
      die "building versitygw failed (see $logf)"
    fi
    mv -f "$tmp" "$out"
    ls -dt "$S3_CACHE"/versitygw-* | tail -n +3 | xargs -r rm -rf
    log "built versitygw in $((SECONDS - start))s: $out"
  fi
  echo "$out"
}

# The PID in the pid file is a live versitygw serving our data dir.
running() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  grep -q -- "versitygw .* posix $S3_DIR/data" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")"
}

free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$HOST"
}

print_env() {
  # shellcheck disable=SC1091
  . "$S3_DIR/credentials"
  printf 'S3_ENDPOINT=http://%s:%s\nS3_REGION=%s\nS3_ACCESS_KEY_ID=%s\nS3_SECRET_ACCESS_KEY=%s\n' \
    "$HOST" "$(cat "$S3_DIR/port")" "$REGION" "$ACCESS" "$SECRET"
}

bin=$(build)
if [[ ! -s $S3_DIR/credentials ]]; then
  (umask 077; printf 'ACCESS=%s\nSECRET=%s\n' "kd$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(head -c 30 /dev/urandom | base64 | tr '+/' '-_')" >"$S3_DIR/credentials")
fi
# Serving our data with this binary on HOST.
current() {
  running && [[ $(readlink "/proc/$(cat "$PIDFILE")/exe") == "$bin" ]] &&
    grep -q -- "--port $HOST:" <<<"$(tr '\0' ' ' <"/proc/$(cat "$PIDFILE")/cmdline")"
}
if current; then
  log "versitygw already running (pid $(cat "$PIDFILE"))"
  print_env
  exit 0
fi
if running; then
  log "restarting versitygw (binary or address changed)"
  "$E2E_SRC/s3-down.sh" --locked
fi

port=$(cat "$S3_DIR/port" 2>/dev/null || true)
if [[ ! $port =~ ^[0-9]+$ ]] || [[ -n $(ss -Htln "sport = :$port") ]]; then
  port=$(free_port)
  echo "$port" >"$S3_DIR/port"
fi
# shellcheck disable=SC1091
. "$S3_DIR/credentials"
[[ -f $S3_DIR/versitygw.log ]] && mv -f "$S3_DIR/versitygw.log" "$S3_DIR/versitygw.log.prev"
ROOT_ACCESS_KEY_ID=$ACCESS ROOT_SECRET_ACCESS_KEY=$SECRET \
  setsid "$bin" --port "$HOST:$port" --region "$REGION" --quiet posix "$S3_DIR/data" \
  </dev/null >"$S3_DIR/versitygw.log" 2>&1 8>&- &
pid=$!
echo "$pid" >"$PIDFILE"

# Alive, not yet reaped: until the background shell has exec'd the server its command line is
# this script's, so `running` would call a slow start an exit.
alive() { [[ -r /proc/$pid/stat && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; }

start=$SECONDS
# Any HTTP answer (an anonymous request gets 403) means it serves.
until curl -s -o /dev/null -m 2 "http://$HOST:$port/"; do
  alive || { tail -20 "$S3_DIR/versitygw.log" >&2; die "versitygw exited (log: $S3_DIR/versitygw.log)"; }
  ((SECONDS - start < 30)) || { tail -20 "$S3_DIR/versitygw.log" >&2; die "timed out waiting for versitygw"; }
  sleep 0.2
done
log "versitygw started in $((SECONDS - start))s on $HOST:$port (data in $S3_DIR/data)"
print_env
