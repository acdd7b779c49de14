#!/usr/bin/env bash
# snaparc dump from the outside: output on the bundled real snapshot, and the
# exit code and message for each kind of bad input.
#   test-dump-cli.sh SNAPARC DATADIR
set -euo pipefail
snaparc=$1 data=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# expect CODE PATTERN -- ARGS: runs snaparc ARGS, wants exit CODE and PATTERN in stderr
expect() {
  local code=$1 pattern=$2; shift 3
  local got=0
  "$snaparc" "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" != "$code" ]; then bad "snaparc $* exited $got, wanted $code: $(cat "$tmp/err")"; return; fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$tmp/err"; then
    bad "snaparc $*: stderr lacks /$pattern/: $(cat "$tmp/err")"; return
  fi
  ok
}

snap=$(ls -d "$data"/chunk_snapshot.* | head -1)
seg=$snap/00000000

# A data directory resolves to its snapshot; the summary agrees with the records printed.
expect 0 "" -- dump --json "$data"
series=$(grep -c '"record":"series"' "$tmp/out")
summary=$(tail -1 "$tmp/out")
echo "$summary" | grep -q "\"series\":$series," && ok || bad "summary $summary does not count $series series"
[ "$series" -gt 100 ] && ok || bad "only $series series in the bundled snapshot"
grep -q '"record":"tombstones"' "$tmp/out" && ok || bad "no tombstones record"
grep -q '"record":"exemplars"' "$tmp/out" && ok || bad "no exemplars record"
expect 0 "" -- dump "$snap"
grep -q "^  series *$series " "$tmp/out" && ok || bad "text summary does not say $series series"
expect 0 "" -- dump --help
grep -q "usage: snaparc dump" "$tmp/out" && ok || bad "no usage in --help"

# Bad command lines and bad paths.
expect 2 "usage" -- dump
expect 2 "" -- dump --bogus "$snap"
expect 2 "unknown command" -- frobnicate
expect 3 "No such file" -- dump "$tmp/missing"
mkdir "$tmp/empty"
expect 3 "empty|no WAL segments" -- dump "$tmp/empty"
expect 1 "not a directory" -- dump "$seg"

# Damaged copies of the real segment.
mkdir "$tmp/s"
cp "$seg" "$tmp/s/00000000"
size=$(stat -c %s "$seg")
truncate -s $((size - 100)) "$tmp/s/00000000"
expect 4 "00000000: offset [0-9]+: .*last whole record ended at offset [0-9]+" -- dump "$tmp/s"
cp "$seg" "$tmp/s/00000000"
printf '\x55' | dd of="$tmp/s/00000000" bs=1 seek=100 conv=notrunc status=none
expect 4 "00000000: offset 0: CRC mismatch" -- dump "$tmp/s"
cp "$seg" "$tmp/s/00000000"
printf '\x41' | dd of="$tmp/s/00000000" bs=1 seek=0 conv=notrunc status=none
expect 4 "offset 0: reserved bits" -- dump "$tmp/s"
cp "$seg" "$tmp/s/00000000"
printf '\x07' | dd of="$tmp/s/00000000" bs=1 seek=$((size - 1)) conv=notrunc status=none
expect 4 "offset $((size - 1)): non-zero byte 0x07 in page padding" -- dump "$tmp/s"
cp "$seg" "$tmp/s/00000000"
cp "$seg" "$tmp/s/00000002"
expect 4 "not consecutive" -- dump "$tmp/s"
rm "$tmp/s/00000002"
touch "$tmp/s/notes.txt"
expect 4 "unexpected entry 'notes.txt'" -- dump "$tmp/s"

echo "dump-cli: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
