#!/usr/bin/env bash
# snaparc compact from the outside, on the bundled real snapshot imported
# three times (the second and third as "b" and "c"): options and their
# errors, --dry-run changes no file, retention drops exactly the snapshots it
# should, what is kept restores to the same records as before compaction,
# verify passes, and the segments shrink.
#   test-compact-cli.sh SNAPARC DATADIR
set -euo pipefail
snaparc=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# expect CODE PATTERN -- ARGS: runs snaparc ARGS, wants exit CODE and PATTERN in stdout+stderr
expect() {
  local code=$1 pattern=$2; shift 3
  local got=0
  "$snaparc" "$@" >"$tmp/out" 2>&1 || got=$?
  if [ "$got" != "$code" ]; then bad "snaparc $* exited $got, wanted $code: $(head -c 500 "$tmp/out")"; return; fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$tmp/out"; then
    bad "snaparc $*: output lacks /$pattern/: $(head -c 500 "$tmp/out")"; return
  fi
  ok
}
# (LMDB's lock.mdb holds the reader table, which any reader changes)
state() { (cd "$1" && find . -type f ! -name lock.mdb -exec sha256sum {} + | sort); }
segbytes() { du -sb "$1/segments" | cut -f1; }
# The records of a restored snapshot, one hex line each, sorted.
records() { "$snaparc" dump --json "$1" | python3 -c '
import json, sys
for line in sorted(json.dumps(json.loads(l), sort_keys=True) for l in sys.stdin if l.strip()): print(line)'; }

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
arc=$tmp/arc
expect 0 "" -- import "$arc" "$snap"
expect 0 "" -- import --name b "$arc" "$snap"
expect 0 "" -- import --name c "$arc" "$snap"
expect 0 "" -- restore "$arc" --snapshot 1 --out "$tmp/before"
records "$tmp/before" >"$tmp/before.txt"
check "the restored snapshot has no records" test -s "$tmp/before.txt"

# ---- usage ----
expect 0 "--keep-within" -- compact --help
expect 2 "keep-last wants" -- compact --keep-last 0 "$arc"
expect 2 "keep-last wants" -- compact --keep-last x "$arc"
expect 2 "keep-within wants a duration" -- compact --keep-within 3x "$arc"
expect 2 "keep-within wants a duration" -- compact --keep-within 1m1h "$arc"
expect 2 "max-chain wants" -- compact --max-chain 17 "$arc"
expect 2 "usage" -- compact
expect 3 "not a snaparc archive" -- compact "$tmp"

# ---- dry run: reports, changes nothing ----
before=$(state "$arc")
expect 0 "dry run: 2 snapshot\(s\) kept, 1 dropped" -- compact --dry-run --keep-last 2 "$arc"
check "dry run printed no size: $(cat "$tmp/out")" grep -qE "archive: [0-9.]+ MiB -> [0-9.]+ MiB \(would be\)" "$tmp/out"
check "dry run changed the archive" test "$before" = "$(state "$arc")"
expect 0 "" -- compact --dry-run --json "$arc"
check "dry run --json: $(cat "$tmp/out")" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["dry_run"] is True and j["snapshots_kept"] == 3 and j["snapshots_dropped"] == 0, j
assert j["records_shared"] > 0 and j["bytes_after"] < j["bytes_before"], j' "$tmp/out"

# ---- retention and space ----
seg0=$(segbytes "$arc")
expect 0 "2 snapshot\(s\) kept, 1 dropped" -- compact --keep-last 2 "$arc"
check "shared records not reported: $(cat "$tmp/out")" grep -qE "records: [0-9]+ \([0-9]+ whole, [0-9]+ deltas, [0-9]+ cuts of a later one, [1-9][0-9]* stored once" "$tmp/out"
seg1=$(segbytes "$arc")
check "segments did not shrink to under half: $seg0 -> $seg1" test $((seg1 * 2)) -lt "$seg0"
expect 0 "" -- ls "$arc"
check "ls after keep-last 2: $(cat "$tmp/out")" test "$(grep -cE '^ +[23] +[bc] ' "$tmp/out")" = 2
check "snapshot 1 still listed" test "$(grep -cE "^ +1 " "$tmp/out")" = 0
expect 3 "" -- lookup "$arc" --snapshot 1 --ref 1
expect 0 "sound" -- verify "$arc"
for s in b c; do
  expect 0 "" -- restore "$arc" --snapshot "$s" --out "$tmp/after-$s"
  records "$tmp/after-$s" >"$tmp/after-$s.txt"
  check "snapshot $s restores other records than were imported" cmp -s "$tmp/before.txt" "$tmp/after-$s.txt"
done
# nothing left to do: nothing changes
before=$(state "$arc")
expect 0 "records: 0 " -- compact "$arc"
check "a compaction with nothing to do changed files" test "$before" = "$(state "$arc")"
# within: all three imports have the same newest sample, so a day keeps both
expect 0 "2 snapshot\(s\) kept, 0 dropped" -- compact --keep-within 1d "$arc"
# tombstones applied: the bundled snapshot's delete samples of some head chunks
expect 0 "tombstones: [1-9][0-9]* head chunk\(s\) lost deleted samples" -- compact --apply-tombstones --keep-last 1 "$arc"
expect 0 "sound" -- verify "$arc"
expect 0 "" -- compact --apply-tombstones --dry-run --json "$arc"
check "tombstones applied twice: $(cat "$tmp/out")" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["chunks_tombstoned"] == 0 and j["records_cut"] == 0, j' "$tmp/out"

echo "compact-cli: $checks checks, $fails failed"
test "$fails" = 0
