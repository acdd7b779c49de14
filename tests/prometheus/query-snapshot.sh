#!/usr/bin/env bash
# Load one chunk snapshot into a fresh Prometheus (2.42) and print its answers.
#
#   query-snapshot.sh [--exemplars OUTFILE START END 'SELECTOR'] SNAPSHOT_DIR TIME 'SELECTOR'...
#
# SNAPSHOT_DIR is a directory of WAL segments (any name). It is copied into an
# empty data directory as chunk_snapshot.000000.0000000000 beside an empty
# wal/, the state Prometheus restores from. Each SELECTOR is asked as
# SELECTOR[1h] at TIME (Unix seconds); one JSON answer a line goes to stdout.
# With --exemplars, Prometheus' query_exemplars answer for SELECTOR over
# [START, END] (seconds) is written to OUTFILE (exemplar storage is always
# enabled, so exemplar records are decoded at load time either way).
# The log line 'chunk snapshot loaded ... num_series=N' goes to stderr.
# Exits non-zero when the snapshot did not load cleanly: Prometheus does not
# fail on a bad snapshot, it logs "Failed to load chunk snapshot" and silently
# replays the WAL instead, so the log is checked for that.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
usage="usage: query-snapshot.sh [--exemplars OUTFILE START END SELECTOR] SNAPSHOT_DIR TIME SELECTOR..."
exout=""
if [ "${1:-}" = --exemplars ]; then
  [ $# -ge 5 ] || { echo "$usage" >&2; exit 2; }
  exout=$2 exstart=$3 exend=$4 exsel=$5; shift 5
fi
[ $# -ge 3 ] || { echo "$usage" >&2; exit 2; }
snap=$1 t=$2; shift 2
[ -d "$snap" ] || { echo "query-snapshot: $snap is not a directory" >&2; exit 2; }
ensure_prometheus

work=$(mktemp -d); pid=""
cleanup() { stop_pid "$pid" 30 || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/data/wal"
cp -r "$snap" "$work/data/chunk_snapshot.000000.0000000000"
printf 'global: {scrape_interval: 1h, evaluation_interval: 1h}\n' > "$work/prom.yml"
port=$(free_port)
prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$port" \
  --enable-feature=memory-snapshot-on-shutdown,exemplar-storage >"$work/log" 2>&1 & pid=$!
wait_http "http://127.0.0.1:$port/-/ready" "$pid" 60 || { cat "$work/log" >&2; exit 1; }

if ! grep -o 'chunk snapshot loaded.*' "$work/log" >&2; then
  echo "query-snapshot: Prometheus did not load the snapshot" >&2; cat "$work/log" >&2; exit 1
fi
if grep -E 'Failed to load chunk snapshot|Deleting chunk snapshot|unknown series references during chunk snapshot|level=error' "$work/log" >&2; then
  echo "query-snapshot: Prometheus reported an error loading the snapshot" >&2; exit 1
fi

api="http://127.0.0.1:$port/api/v1"
for q in "$@"; do
  http_get "$api/query?query=$(urlenc "${q}[1h]")&time=$t"; echo
done
if [ -n "$exout" ]; then
  http_get "$api/query_exemplars?query=$(urlenc "$exsel")&start=$exstart&end=$exend" > "$exout"
fi
