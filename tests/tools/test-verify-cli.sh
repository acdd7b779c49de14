#!/usr/bin/env bash
# snaparc verify and rm from the outside: a sound archive, a damaged record
# (named with its segment and offset, while other snapshots keep serving),
# and removing a snapshot.
#   test-verify-cli.sh SNAPARC DATADIR
set -euo pipefail
snaparc=$1 data=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
expect() {
  local code=$1 pattern=$2; shift 3
  local got=0
  "$snaparc" "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" != "$code" ]; then bad "snaparc $* exited $got, wanted $code: $(cat "$tmp/err")"; return; fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$tmp/out" "$tmp/err"; then
    bad "snaparc $*: output lacks /$pattern/: $(cat "$tmp/out" "$tmp/err")"; return
  fi
  ok
}

arc=$tmp/arc
snap=$(ls -d "$data"/chunk_snapshot.* | head -1)
expect 0 "" -- import --name one "$arc" "$snap"
expect 0 "" -- import --name two "$arc" "$snap"
expect 0 "sound" -- verify "$arc"
expect 0 "" -- verify --json "$arc"
[ ! -s "$tmp/out" ] && ok || bad "verify --json printed problems for a sound archive"

# damage one stored record of snapshot 1: the first series record's payload
expect 0 "" -- lookup --json --detail --snapshot one "$arc" --ref 1
cp "$arc/segments/00000000" "$tmp/good"
# the record of ref 1 starts the segment: flip a byte inside its data
printf '\x55' | dd of="$arc/segments/00000000" bs=1 seek=20 conv=notrunc status=none
expect 4 "corrupt: snapshot 1 \(one\): .*segments/00000000: offset 0: CRC mismatch" -- verify "$arc"
expect 4 "\"problem\":\"corrupt\",\"message\":\"snapshot 1" -- verify --json "$arc"
expect 4 "offset 0: CRC mismatch" -- lookup --snapshot one "$arc" --ref 1
expect 0 "ref 1 " -- lookup --snapshot two "$arc" --ref 1
expect 0 "ref 2 " -- lookup --snapshot one "$arc" --ref 2
cp "$tmp/good" "$arc/segments/00000000"
expect 0 "sound" -- verify "$arc"

# rm: the snapshot goes, the other stays; unknown ones are "not found"
expect 0 "removed snapshot one" -- rm "$arc" one
expect 0 "" -- ls --json "$arc"
[ "$(grep -c '"id"' "$tmp/out")" = 1 ] && grep -q '"name":"two"' "$tmp/out" && ok || bad "ls after rm: $(cat "$tmp/out")"
expect 3 "no snapshot named one" -- lookup --snapshot one "$arc" --ref 1
expect 0 "ref 1 " -- lookup --snapshot two "$arc" --ref 1
expect 3 "no snapshot" -- rm "$arc" one
expect 0 "sound" -- verify "$arc"
expect 2 "usage" -- rm "$arc"
expect 0 "usage: snaparc verify" -- verify --help

echo "verify-cli: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
