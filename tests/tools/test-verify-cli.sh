#!/usr/bin/env bash
# snaparc verify and rm from the outside: a sound archive, a damaged record
# (named with its segment and offset, while other snapshots keep serving),
# a damaged value in the index, a chunk whose record is sound but whose
# samples do not decode (found by --deep alone), and removing a snapshot.
#   test-verify-cli.sh SNAPARC DATADIR REWRITE
set -euo pipefail
snaparc=$1 data=$2 rewrite=$3
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

expect 0 "sound \(deep\)" -- verify --deep "$arc"

# a flipped bit in a dictionary in the index: every value carries a checksum
cp "$arc/index/data.mdb" "$tmp/good.mdb"
python3 - "$arc/index/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.find(b'__name__')          # the dictionary holds the label names
assert i > 0
b[i + 3] ^= 0x10
open(p, 'wb').write(b)
PY
expect 4 "index/data.mdb: offset [0-9]+: the (meta|postings) value of [0-9]+ bytes under key [0-9a-f]+.* fails its checksum" -- verify "$arc"
got=0; "$snaparc" lookup --json --samples --snapshot one "$arc" --ref 1 >"$tmp/out" 2>"$tmp/err" || got=$?
[ "$got" = 4 ] && grep -q "index/data.mdb: offset" "$tmp/err" && ok || bad "lookup after index damage: exit $got: $(cat "$tmp/err")"
cp "$tmp/good.mdb" "$arc/index/data.mdb"
expect 0 "sound" -- verify "$arc"

# a chunk that does not decode inside a record whose CRC is right: the
# snapshot rewritten without compression, a byte near the end of the first
# series' chunk changed and its fragment's CRC-32C made right again
"$rewrite" "$snap" "$tmp/bent" --compression none >/dev/null
python3 - "$tmp/bent/00000000" <<'PY'
import sys
def crc32c(data):
    crc = 0xffffffff
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
assert b[0] == 1 and b[7] == 1, "the segment does not start with a whole series record"
n = int.from_bytes(b[1:3], 'big')
b[7 + n - 64 - 4] ^= 0x5a          # before the 64-byte tail: inside the chunk
b[3:7] = crc32c(b[7:7 + n]).to_bytes(4, 'big')
open(p, 'wb').write(b)
PY
arc2=$tmp/arc2
expect 0 "" -- import --name bent "$arc2" "$tmp/bent"
expect 0 "sound$" -- verify "$arc2"
expect 4 "corrupt: snapshot 1 \(bent\): .*segments/00000000: offset 0: series ref 1: (XOR chunk: sample|the chunk's)" -- verify --deep "$arc2"
expect 4 "$arc2/segments/00000000: offset 0: ref 1: XOR chunk" -- lookup --samples "$arc2" --ref 1
expect 0 "ref 2 " -- lookup --samples "$arc2" --ref 2

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
