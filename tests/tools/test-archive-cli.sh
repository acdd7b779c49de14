#!/usr/bin/env bash
# snaparc import, ls, stat and lookup from the outside, on the bundled real
# snapshot: what they print agrees with `snaparc dump`, and each kind of
# failure has its exit code (0 ok, 2 usage, 3 not found, 4 corrupt, 5 busy,
# 6 exists) and leaves the archive, or a directory that is not one, as it was.
#   test-archive-cli.sh SNAPARC DATADIR
set -euo pipefail
snaparc=$1 data=$2
tmp=$(mktemp -d)
holder=
cleanup() {
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; wait "$holder" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
not() { ! "$@"; }

# expect CODE PATTERN -- ARGS: runs snaparc ARGS, wants exit CODE and PATTERN in stderr
expect() {
  local code=$1 pattern=$2; shift 3
  local got=0
  "$snaparc" "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  if [ "$got" != "$code" ]; then bad "snaparc $* exited $got, wanted $code: $(head -c 500 "$tmp/err")"; return; fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$tmp/err"; then
    bad "snaparc $*: stderr lacks /$pattern/: $(head -c 500 "$tmp/err")"; return
  fi
  ok
}

# The directory's entries, recursively, with sizes and contents' checksums.
state() { (cd "$1" && find . -mindepth 1 -printf '%p %s\n' | sort && find . -type f -exec sha256sum {} + | sort); }

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
name=$(basename "$snap")
arc=$tmp/arc

# The oracle: every record of the snapshot as `snaparc dump --json --samples` prints it.
"$snaparc" dump --json --samples "$snap" >"$tmp/dump.json"

# ---- import, ls, stat ----

expect 0 "" -- import "$arc" "$data"
check "import summary: $(cat "$tmp/out")" \
  grep -qE "snapshot 1 \($name\): 545 series, 25 tombstones, 232 exemplars; [0-9]+ bytes stored for 196608 " "$tmp/out"
for d in index segments; do check "no $d/ in the archive" test -d "$arc/$d"; done

expect 0 "" -- ls "$arc"
check "ls: $(cat "$tmp/out")" grep -qE "^ +1 +$name +[0-9T:.-]+Z +545 +25 +232 +196608 +[0-9]+$" "$tmp/out"
check "ls does not list exactly one snapshot" test "$(grep -c "$name" "$tmp/out")" = 1
cp "$tmp/out" "$tmp/ls1.txt"

expect 0 "" -- ls --json "$arc"
cp "$tmp/out" "$tmp/ls1.json"
check "ls --json disagrees with dump" python3 - "$tmp/ls1.json" "$tmp/dump.json" "$name" <<'EOF'
import json, sys
from datetime import datetime
rows = [json.loads(l) for l in open(sys.argv[1])]
recs = [json.loads(l) for l in open(sys.argv[2])]
series = [r for r in recs if r.get("record") == "series"]
summary = recs[-1]["summary"]
assert len(rows) == 1, rows
s = rows[0]
want = {"id": 1, "name": sys.argv[3], "series": 545, "tombstones": 25, "exemplars": 232,
        "records": 547, "source_bytes": 196608, "raw_bytes": summary["record_bytes"],
        "mint": min(r["chunk"]["mint"] for r in series), "maxt": max(r["chunk"]["maxt"] for r in series)}
for k, v in want.items():
    assert s[k] == v, (k, s[k], v)
assert 0 < s["stored_bytes"] < s["raw_bytes"], s
datetime.strptime(s["imported"], "%Y-%m-%dT%H:%M:%S.%fZ")
EOF

expect 0 "" -- stat "$arc"
cp "$tmp/out" "$tmp/stat.txt"
for line in "^snapshots +1$" "^series +545$" "^index +[1-9][0-9]* bytes \(" "^segments +[1-9][0-9]* bytes in 1 files \(" \
            "^archive +[1-9][0-9]* bytes \(" "^imported from +196608 bytes of snapshots" "^ratio +[0-9]+\.[0-9]{3}x"; do
  check "stat lacks /$line/: $(cat "$tmp/stat.txt")" grep -qE "$line" "$tmp/stat.txt"
done
expect 0 "" -- stat --json "$arc"
check "stat --json disagrees with stat or ls" python3 - "$tmp/out" "$tmp/stat.txt" "$tmp/ls1.json" <<'EOF'
import json, re, sys
j = json.loads(open(sys.argv[1]).read())
text = open(sys.argv[2]).read()
ls = json.loads(open(sys.argv[3]).readline())
assert j["snapshots"] == 1 and j["series"] == 545 and j["segments"] == 1, j
assert j["archive_bytes"] == j["index_bytes"] + j["segment_bytes"], j
assert j["source_bytes"] == 196608 and j["raw_bytes"] == ls["raw_bytes"] and j["stored_bytes"] == ls["stored_bytes"], j
# du's figure for the one segment file: its size rounded up to blocks
assert j["segment_bytes"] >= j["stored_bytes"], j
assert f"index            {j['index_bytes']} bytes" in text, text
assert f"segments         {j['segment_bytes']} bytes in 1 files" in text, text
ratio = float(re.search(r"ratio +([0-9.]+)x", text).group(1))
assert abs(ratio - j["archive_bytes"] / j["source_bytes"]) < 0.0006, (ratio, j)
assert ratio < 1, f"the archive of the snapshot takes {ratio}x its bytes"
EOF

# ---- lookup ----

# refs: the first series, a deleted one (shard="3"), one with exemplars, the
# 40,000-byte label, and the last
refs=$(python3 - "$tmp/dump.json" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
series = [r for r in recs if r.get("record") == "series"]
tomb = next(r for r in recs if r.get("record") == "tombstones")
ex = next(r for r in recs if r.get("record") == "exemplars")
long = next(r for r in series if any(len(v) > 30000 for v in r["labels"].values()))
print(series[0]["ref"], tomb["intervals"][0]["ref"], ex["exemplars"][-1]["ref"], long["ref"], series[-1]["ref"])
EOF
)
read -r -a refs <<<"$refs"
check "not five refs picked: ${refs[*]}" test "${#refs[@]}" = 5
for ref in "${refs[@]}"; do
  expect 0 "" -- lookup --json --detail --samples "$arc" --ref "$ref"
  cp "$tmp/out" "$tmp/byref.$ref.json"
  # the selector of its exact label set, from dump's labels
  python3 - "$tmp/dump.json" "$ref" >"$tmp/sel" <<'EOF'
import json, sys
ref = int(sys.argv[2])
r = next(json.loads(l) for l in open(sys.argv[1]) if f'"ref":{ref},' in l and '"record":"series"' in l)
esc = lambda v: v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
print("{" + ", ".join(f'{k}="{esc(v)}"' for k, v in sorted(r["labels"].items())) + "}", end="")
EOF
  expect 0 "" -- lookup --json --detail --samples "$arc" "$(cat "$tmp/sel")"
  cp "$tmp/out" "$tmp/bylabels.$ref.json"
  check "lookup of ref $ref disagrees with dump" python3 - "$tmp/dump.json" "$ref" "$tmp/byref.$ref.json" "$tmp/bylabels.$ref.json" "$name" <<'EOF'
import json, sys
ref = int(sys.argv[2])
recs = [json.loads(l) for l in open(sys.argv[1])]
d = next(r for r in recs if r.get("record") == "series" and r["ref"] == ref)
iv = [[i["mint"], i["maxt"]] for t in recs if t.get("record") == "tombstones" for i in t["intervals"] if i["ref"] == ref]
ex = [x for t in recs if t.get("record") == "exemplars" for x in t["exemplars"] if x["ref"] == ref]
a = json.loads(open(sys.argv[3]).read())
b = json.loads(open(sys.argv[4]).read())
assert a == b, "by ref and by labels differ"
assert a["snapshot"] == 1 and a["name"] == sys.argv[5] and a["ref"] == ref, a["ref"]
assert a["labels"] == d["labels"], "labels differ"
for k in ("mint", "maxt", "encoding", "samples", "bytes"):
    assert a["chunk"][k] == d["chunk"][k], (k, a["chunk"][k], d["chunk"][k])
assert a["tombstones"] == iv, (a["tombstones"], iv)
assert [[x["t"], x["value"], x["labels"]] for x in a["exemplars"]] == [[x["t"], x["value"], x["labels"]] for x in ex]
assert [s[:2] for s in a["samples"]] == d["samples"], "samples differ"
deleted = [s[0] for s in a["samples"] if s[2:] == ["deleted"]]
want = [s[0] for s in d["samples"] if any(lo <= s[0] <= hi for lo, hi in iv)]
assert deleted == want, (deleted, want)
assert all(s[2:] in ([], ["deleted"]) for s in a["samples"])
EOF
done
# the deleted series hides exactly the 9 samples of the delete; the exemplar one has 29
ref_deleted=${refs[1]} ref_ex=${refs[2]}
check "ref $ref_deleted: not 9 deleted samples" test "$(grep -o '"deleted"' "$tmp/byref.$ref_deleted.json" | wc -l)" = 9
check "ref $ref_ex: not 29 exemplars" \
  test "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["exemplars"]))' "$tmp/byref.$ref_ex.json")" = 29
# the metric{...} form, and text output, and snapshot by id and name
first=${refs[0]}
sel=$(python3 -c 'import json,sys; l=json.loads(open(sys.argv[1]).readline())["labels"]; n=l.pop("__name__"); print(n + "{" + ",".join(f"{k}=\"{v}\"" for k, v in sorted(l.items())) + "}")' "$tmp/dump.json")
expect 0 "" -- lookup --snapshot 1 "$arc" "$sel"
check "metric{...} form did not find ref $first: $(head -1 "$tmp/out")" grep -q "^snapshot 1 ($name) ref $first " "$tmp/out"
expect 0 "" -- lookup --snapshot "$name" --json "$arc" --ref "$first"
check "--snapshot NAME did not find ref $first" grep -q "\"ref\":$first," "$tmp/out"

# ---- not found (3) and usage (2) ----

expect 3 "ref 999999" -- lookup "$arc" --ref 999999
expect 3 "" -- lookup "$arc" '{__name__="app_requests_total",shard="nope"}'
expect 3 "" -- lookup "$arc" "${sel%\}},extra=\"1\"}"
expect 3 "no snapshot named nope" -- lookup --snapshot nope "$arc" --ref "$first"
expect 3 "" -- lookup --snapshot 2 "$arc" --ref "$first"
expect 2 "usage" -- lookup "$arc"
expect 2 "not a number" -- lookup "$arc" --ref 12x
expect 2 "usage" -- lookup --bogus "$arc" --ref 1
expect 3 "no series matches" -- lookup "$arc" '{job=~"x"}'
expect 2 "column 9" -- lookup "$arc" '{job="x"'
expect 2 "column 1" -- lookup "$arc" '"job"'
expect 2 "usage" -- ls
expect 2 "usage" -- ls "$arc" "$arc"
expect 2 "usage" -- ls --bogus "$arc"
expect 2 "usage" -- stat
expect 2 "usage" -- stat --bogus "$arc"
expect 2 "usage" -- import "$arc"
expect 2 "usage" -- import --bogus "$arc" "$data"
expect 2 "usage" -- import --name x "$arc" "$data" "$data"
for cmd in import ls stat lookup; do
  expect 0 "" -- $cmd --help
  check "$cmd --help prints no usage" grep -q "^usage: snaparc $cmd" "$tmp/out"
done

# ---- directories that are not archives are left alone ----

mkdir "$tmp/other"
echo "keep me" >"$tmp/other/notes.txt"
before=$(state "$tmp/other")
expect 3 "not empty" -- import "$tmp/other" "$data"
check "import wrote into a directory that holds other files" test "$(state "$tmp/other")" = "$before"
for cmd in ls stat; do
  expect 3 "not a snaparc archive" -- $cmd "$tmp/other"
done
expect 3 "not a snaparc archive" -- lookup "$tmp/other" --ref 1
check "lookup wrote into a directory that is not an archive" test "$(state "$tmp/other")" = "$before"
mkdir "$tmp/empty"
expect 3 "not a snaparc archive" -- lookup "$tmp/empty" --ref 1
expect 3 "not a snaparc archive" -- ls "$tmp/empty"
check "no index/ made by lookup or ls" test -z "$(ls -A "$tmp/empty")"
expect 3 "" -- lookup "$tmp/missing" --ref 1
check "lookup made the missing archive" test ! -e "$tmp/missing"

# ---- failed imports leave the archive as it was ----

arc_before=$(state "$arc/segments")
# corrupt: a byte of the exemplars record (the last) flipped, so 546 records go in first
mkdir "$tmp/bad"
cp -r "$snap" "$tmp/bad/"
off=$(python3 -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][-2]["offset"] + 50)' "$tmp/dump.json")
printf '\x5a' | dd of="$tmp/bad/$name/00000000" bs=1 seek="$off" conv=notrunc status=none
check "the damaged copy is the same" not cmp -s "$snap/00000000" "$tmp/bad/$name/00000000"
expect 4 "CRC mismatch" -- import --name damaged "$arc" "$tmp/bad/$name"
expect 0 "" -- ls --json "$arc"
check "ls changed after a corrupt import" cmp -s "$tmp/out" "$tmp/ls1.json"
check "segments changed after a corrupt import" test "$(state "$arc/segments")" = "$arc_before"
expect 3 "no snapshot named damaged" -- lookup --snapshot damaged "$arc" --ref "$first"

# a series the index cannot take is refused where it is met, naming the
# file and the record's offset: a label name with a NUL byte, and a ref
# that came before (written here as WAL segments: one page, uncompressed)
python3 - "$tmp" <<'EOF'
import os, struct, sys

def crc32c(b):
    c = 0xffffffff
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 & -(c & 1))
    return c ^ 0xffffffff

def uv(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7f | 0x80]); n >>= 7
    return out + bytes([n])

def series(ref, labels):   # no chunk
    r = b"\x01" + struct.pack(">Q", ref) + uv(len(labels))
    for k, v in labels:
        r += uv(len(k)) + k + uv(len(v)) + v
    return r + struct.pack(">Q", 0) + uv(0)

def snapshot(d, recs):   # and DIR.offsets: where each record starts
    os.mkdir(d)
    page, offs = b"", []
    for r in recs:
        offs.append(len(page))
        page += bytes([1]) + struct.pack(">HI", len(r), crc32c(r)) + r
    open(d + "/00000000", "wb").write(page + bytes(32768 - len(page)))
    open(d + ".offsets", "w").write(" ".join(map(str, offs)) + "\n")

up = [(b"__name__", b"up"), (b"job", b"a")]
snapshot(sys.argv[1] + "/nul", [series(1, up), series(2, [(b"__name__", b"up"), (b"inst\0nce", b"x")])])
snapshot(sys.argv[1] + "/twice", [series(1, up), series(2, up[:1]), series(1, up)])
EOF
read -r -a offs <"$tmp/nul.offsets"
expect 4 "^snaparc import: $tmp/nul: $tmp/nul/00000000: offset ${offs[1]}: record: offset 27: label name of 8 bytes has a NUL byte" \
  -- import --name nul "$arc" "$tmp/nul"
read -r -a offs <"$tmp/twice.offsets"
expect 4 "^snaparc import: $tmp/twice: $tmp/twice/00000000: offset ${offs[2]}: record: series ref 1 appears twice in the snapshot" \
  -- import --name twice "$arc" "$tmp/twice"
expect 0 "" -- ls --json "$arc"
check "ls changed after an import refused for its series" cmp -s "$tmp/out" "$tmp/ls1.json"
check "segments changed after an import refused for its series" test "$(state "$arc/segments")" = "$arc_before"

# the same name twice
expect 6 "$name" -- import "$arc" "$data"
expect 0 "" -- ls --json "$arc"
check "ls changed after a refused duplicate" cmp -s "$tmp/out" "$tmp/ls1.json"
check "segments changed after a refused duplicate" test "$(state "$arc/segments")" = "$arc_before"

# ---- one writer at a time ----

flock "$arc/lock" sleep 3 &
holder=$!
for _ in $(seq 100); do flock -n "$arc/lock" true || break; sleep 0.05; done
expect 5 "another process" -- import --name second "$arc" "$data"
check "the holder of the lock ended early" kill -0 "$holder"
start=$(date +%s%N)
expect 0 "" -- import --wait --json --name second "$arc" "$data"
waited=$(( ($(date +%s%N) - start) / 1000000 ))
check "import --wait returned after ${waited} ms, before the lock was let go" test "$waited" -ge 1000
wait "$holder"; holder=
check "import --json: $(cat "$tmp/out")" python3 -c '
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert j["snapshot"] == 2 and j["name"] == "second" and j["series"] == 545 and j["source_bytes"] == 196608, j' "$tmp/out"
expect 0 "" -- lookup --snapshot second --json "$arc" --ref "$first"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("snapshot"); d.pop("name"); print(json.dumps(d, sort_keys=True))' "$tmp/out" >"$tmp/s2"
expect 0 "" -- lookup --snapshot 1 --json "$arc" --ref "$first"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("snapshot"); d.pop("name"); print(json.dumps(d, sort_keys=True))' "$tmp/out" >"$tmp/s1"
check "ref $first differs between the two copies of the snapshot" cmp -s "$tmp/s1" "$tmp/s2"
expect 0 "" -- ls "$arc"
check "ls does not list two snapshots" test "$(grep -cE '^ +[12] ' "$tmp/out")" = 2

# two snapshots of the bundled one: the archive takes less than they did
expect 0 "" -- stat --json "$arc"
check "archive of two snapshots not smaller than them: $(cat "$tmp/out")" python3 -c '
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert j["snapshots"] == 2 and j["series"] == 1090 and j["source_bytes"] == 2 * 196608, j
assert j["archive_bytes"] < j["source_bytes"], j' "$tmp/out"

echo "archive-cli: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
