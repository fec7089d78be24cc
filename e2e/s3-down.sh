#!/usr/bin/env bash
# Stop the S3 server started by e2e/s3-up.sh (its data in $KUBEDAG_E2E_DIR/s3/data
# is kept; remove that directory to start empty). Idempotent.
# Usage: e2e/s3-down.sh      (--locked: called by s3-up.sh, which holds the lock)
. "$(dirname "$0")/lib.sh"

S3_DIR="$E2E_DIR/s3"
PIDFILE="$S3_DIR/versitygw.pid"
if [[ ${1:-} != --locked ]]; then
  mkdir -p /run/lock
  exec 8>/run/lock/kubedag-e2e-s3.lock
  flock 8
fi

pid=$(cat "$PIDFILE" 2>/dev/null || true)
# Only our server: the PID must still be a versitygw serving our data dir.
if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
     grep -q -- "versitygw .* posix $S3_DIR/data"; then
  kill -TERM "$pid"
  wait_for 10 "versitygw (pid $pid) to stop" bash -c "! kill -0 $pid 2>/dev/null" ||
    kill -KILL "$pid" 2>/dev/null || true
  log "versitygw stopped (pid $pid)"
else
  log "versitygw is not running"
fi
rm -f "$PIDFILE"
