#!/usr/bin/env bash
# Runs the example host (examples/host.c) on the bundled snapshot and checks
# what it says: the plugin it loaded, the streamed snapshot, the series read
# back by its labels, the series it built itself.
#   test-host.sh HOST SNAPSHOT_DIR [PLUGIN]   (PLUGIN: the path the host must report loading)
set -euo pipefail
host=$1 snap=$2 plugin=${3:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }
want() { grep -qE -- "$1" "$tmp/out" || bad "no /$1/ in the host's output"; }

labels='__name__=app_flaky,job=synthetic,instance=127.0.0.1:45825,id=0'
"$host" "$tmp/archive" "$snap/00000000" "$labels" >"$tmp/out" 2>"$tmp/err" || bad "host exited $?: $(cat "$tmp/err")"
cat "$tmp/out"
want '^plugin .*snaparc\.so: snaparc [0-9.]+, ABI 1\.'
[ -z "$plugin" ] || want "^plugin $plugin: "
want "^snapshot 1 $(basename "$snap"): [0-9]{3} series, [0-9]+ records from 196608 bytes in [0-9]+ pieces"
want '^read back: ref [0-9]+ \{__name__="app_flaky", id="0", instance="127.0.0.1:45825", job="synthetic"\} 29 samples'
want '^snapshot 2 host\.[0-9]+: 3 series built by the host'
want '^read back: ref 2 \{__name__="host_requests_total", instance="db-2:9100", job="node"\} 120 samples'

# Errors: a plugin that is not one, labels that name nothing (and its message).
"$host" -p /nonexistent/snaparc.so "$tmp/a2" >/dev/null 2>"$tmp/err" && bad "a missing plugin was accepted"
grep -q 'snaparc-host: .*nonexistent/snaparc.so' "$tmp/err" || bad "no dlopen reason: $(cat "$tmp/err")"
"$host" "$tmp/a3" "$snap/00000000" 'job=nothing' >/dev/null 2>"$tmp/err" && bad "a missing series was found"
grep -q 'read_labels in snapshot 1: not found: ' "$tmp/err" || bad "no not-found reason: $(cat "$tmp/err")"

[ "$fails" = 0 ] || exit 1
echo "ok"
