# shellcheck shell=bash
# Shared helpers for the Prometheus interop scripts; sourced, not run.
# Loopback only; every wait is bounded.

PY=${PYTHON:-python3}

# Install Debian's prometheus when missing (needs root; quiet).
ensure_prometheus() {
  command -v prometheus >/dev/null && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "prometheus is not installed and we are not root to apt-get install it" >&2; return 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
}

free_port() {
  $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# http_get URL: print the body; fail on any non-2xx answer or after 30 s.
http_get() {
  $PY -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode())' "$1"
}

# http_post URL: fail on any non-2xx answer or after 60 s.
http_post() {
  $PY -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="POST"), timeout=60).read()' "$1"
}

urlenc() { $PY -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }

# wait_http URL PID SECONDS: wait until URL answers 2xx; fail early if PID dies.
wait_http() {
  local url=$1 pid=$2 _
  for _ in $(seq 1 $(( $3 * 5 ))); do
    $PY -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "process $pid exited while waiting for $url" >&2; return 1; }
    sleep 0.2
  done
  echo "timed out waiting for $url" >&2; return 1
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL. Returns 1 if it had to kill.
stop_pid() {
  local pid=$1 _
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $(( $2 * 10 ))); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "process $pid did not stop within $2 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 1
}
