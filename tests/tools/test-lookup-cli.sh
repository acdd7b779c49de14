#!/usr/bin/env bash
# snaparc lookup from the outside, on the bundled real Prometheus 2.42
# snapshot and the answers Prometheus gave for it (DATADIR/expected):
# - `lookup --json --samples ARCHIVE SELECTOR` is the query API's matrix
#   answer: cut to (TIME - 1h, TIME] (the snapshot holds samples a few seconds
#   past TIME), it has exactly the series and [time, "value"] pairs of
#   Prometheus' answer to SELECTOR[1h] at TIME, times compared as the exact
#   decimal text; no deleted samples, no stale markers;
# - `lookup --history` over two imports of the snapshot lists both, newest
#   (id 2) first, as text and as JSON lines;
# - `lookup --plot` draws braille (U+2800..U+28FF) with the series' largest
#   value on the top line of the axis and its smallest on the bottom one;
# - a selector matching nothing exits 3, one that does not parse exits 2
#   naming the column, and `{job=""}` alone exits 2 (no non-empty matcher).
#   test-lookup-cli.sh SNAPARC DATADIR
set -euo pipefail
snaparc=$1 data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

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

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
name=$(basename "$snap")
exp=$data/expected
arc=$tmp/arc

expect 0 "" -- import "$arc" "$data"

# ---- the matrix answers against Prometheus' ----

# compare GOT WANT TIME: GOT cut to [TIME - 3600, TIME] equals WANT
cat >"$tmp/compare.py" <<'EOF'
import json, sys
from decimal import Decimal

got_path, want_path, when = sys.argv[1], sys.argv[2], Decimal(sys.argv[3])

def load(path):
    text = open(path).read()
    typed = json.loads(text)                                  # for the JSON types
    exact = json.loads(text, parse_float=str, parse_int=str)  # numbers as their text
    assert typed["status"] == "success", typed.get("status")
    assert typed["data"]["resultType"] == "matrix", typed["data"]["resultType"]
    out, order = {}, []
    for t, e in zip(typed["data"]["result"], exact["data"]["result"]):
        assert set(e) == {"metric", "values"}, sorted(e)
        m = e["metric"]
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()), m
        for tv, ev in zip(t["values"], e["values"]):
            assert len(ev) == 2, ev
            assert isinstance(tv[0], (int, float)) and not isinstance(tv[0], bool), f"time {tv[0]!r} is not a number"
            assert isinstance(tv[1], str), f"value {tv[1]!r} is not a string"
        key = tuple(sorted(m.items()))
        assert key not in out, f"{path}: series {dict(key)} twice"
        out[key] = [tuple(v) for v in e["values"]]
        order.append(key)
    return out, order

got, got_order = load(got_path)
want, want_order = load(want_path)
nan = [(k, v) for k, vs in got.items() for v in vs if v[1] == "NaN"]
assert not nan, f"NaN samples (stale markers?) in the answer: {dict(nan[0][0])} {nan[0][1]}"
dropped = 0
cut = {}
for k, vs in got.items():
    kept = [v for v in vs if when - 3600 <= Decimal(v[0]) <= when]
    dropped += len(vs) - len(kept)
    if kept:
        cut[k] = kept
missing = [dict(k) for k in want if k not in cut]
extra = [dict(k) for k in cut if k not in want]
assert not missing and not extra, f"{len(missing)} series missing, e.g. {missing[:2]}; {len(extra)} extra, e.g. {extra[:2]}"
for k in want:
    if cut[k] != want[k]:
        g, w = cut[k], want[k]
        i = next((i for i in range(min(len(g), len(w))) if g[i] != w[i]), min(len(g), len(w)))
        raise AssertionError(f"{dict(k)}: {len(g)} samples, Prometheus {len(w)}; first difference at {i}: "
                             f"{g[i] if i < len(g) else None} vs {w[i] if i < len(w) else None}")
assert dropped > 0, "no sample after TIME: the cut was not exercised"
if [k for k in got_order if k in want] != want_order:
    print(f"note: {want_path}: same series, but not in Prometheus' order (sorted by labels)")
print(f"{len(want)} series, {sum(map(len, want.values()))} samples agree ({dropped} past the query's range left out)")
EOF

i=0
while IFS=$'\t' read -r when sel; do
  n=$(printf '%02d' "$i"); i=$((i + 1))
  expect 0 "" -- lookup --json --samples "$arc" "$sel"
  cp "$tmp/out" "$tmp/matrix.$n.json"
  if python3 "$tmp/compare.py" "$tmp/matrix.$n.json" "$exp/$n.json" "$when" >"$tmp/cmp" 2>&1; then
    ok
    sed "s|^|lookup --json --samples '$sel': |" "$tmp/cmp"
  else
    bad "lookup --json --samples '$sel' differs from $n.json: $(tail -3 "$tmp/cmp")"
  fi
done <"$exp/queries.txt"
check "not four saved queries" test "$i" = 4

# by hand: the shard="3" series lost the 9 samples of the delete (29 - 9 = 20
# in the snapshot), app_flaky keeps 15 of 29 without the stale markers
check "shard=\"3\": not 25 series of 20 samples" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
assert len(r) == 25 and all(len(x["values"]) == 20 for x in r), [len(x["values"]) for x in r]' "$tmp/matrix.01.json"
check "app_flaky: not 4 series of 14 or 15 samples" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["data"]["result"]
assert len(r) == 4 and all(len(x["values"]) in (14, 15) for x in r), [len(x["values"]) for x in r]' "$tmp/matrix.02.json"

# ---- --history over two imports ----

arc2=$tmp/arc2
expect 0 "" -- import "$arc2" "$data"
expect 0 "" -- import --name second "$arc2" "$data"
labels='app_flaky{id="0",instance="127.0.0.1:45825",job="synthetic"}'
expect 0 "" -- lookup --json "$arc2" "$labels"
ref=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["ref"])' "$tmp/out")
for form in "$labels" '{job="synthetic", __name__="app_flaky", instance="127.0.0.1:45825", id="0"}'; do
  expect 0 "" -- lookup --history "$arc2" "$form"
  cp "$tmp/out" "$tmp/history.txt"
  check "--history '$form': not two snapshots, 2 then 1: $(grep '^snapshot' "$tmp/history.txt" | head -3)" \
    test "$(grep '^snapshot' "$tmp/history.txt" | cut -d' ' -f1-5)" = "snapshot 2 (second) ref $ref
snapshot 1 ($name) ref $ref"
  check "--history '$form': labels not printed" \
    test "$(grep -c '^snapshot .*{__name__="app_flaky", id="0", instance="127.0.0.1:45825", job="synthetic"}$' "$tmp/history.txt")" = 2
done
expect 0 "" -- lookup --history --json "$arc2" "$labels"
check "--history --json: not JSON lines of snapshots 2 then 1: $(head -c 300 "$tmp/out")" python3 - "$tmp/out" "$ref" "$name" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [r["snapshot"] for r in rows] == [2, 1], [r["snapshot"] for r in rows]
assert [r["name"] for r in rows] == ["second", sys.argv[3]], [r["name"] for r in rows]
assert all(r["ref"] == int(sys.argv[2]) for r in rows)
want = {"__name__": "app_flaky", "id": "0", "instance": "127.0.0.1:45825", "job": "synthetic"}
assert all(r["labels"] == want for r in rows), rows[0]["labels"]
assert rows[0]["chunk"] == rows[1]["chunk"] and rows[0]["chunk"]["samples"] == 29, rows[0]["chunk"]
EOF
expect 0 "" -- lookup --history --json --samples "$arc2" "$labels"
check "--history --json --samples: not two lines of 29 samples each" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert [r["snapshot"] for r in rows] == [2, 1] and all(len(r["samples"]) == 29 for r in rows)
assert rows[0]["samples"] == rows[1]["samples"]' "$tmp/out"
# the one-snapshot archive has it once
expect 0 "" -- lookup --history --json "$arc" "$labels"
check "--history on one snapshot: not one line" test "$(grep -c '"snapshot":1,' "$tmp/out")" = 1
check "--history on one snapshot: more than one line" test "$(wc -l <"$tmp/out")" = 1
# a label set that is not a series' whole set, and one no series has
expect 3 "" -- lookup --history "$arc2" 'app_flaky{id="0",job="synthetic"}'
expect 3 "" -- lookup --history "$arc2" 'app_flaky{id="0",instance="127.0.0.1:45825",job="synthetic",x="1"}'
expect 3 "" -- lookup --history "$arc2" 'app_flaky{id="9",instance="127.0.0.1:45825",job="synthetic"}'
expect 2 "exact label set" -- lookup --history "$arc2" 'app_flaky{id=~"0"}'

# ---- --plot ----

# plot SELECTOR MATRIX: the chart of each series, braille, min and max on the axis
cat >"$tmp/plot.py" <<'EOF'
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
matrix = json.load(open(sys.argv[2]))["data"]["result"]
charts = re.findall(r"((?:^ +\S* ┤.*\n)+)", text, re.M)
assert len(charts) == len(matrix), f"{len(charts)} charts for {len(matrix)} series"
for chart, series in zip(charts, matrix):
    rows = chart.splitlines()
    assert len(rows) == 10, f"{len(rows)} rows"
    cells = "".join(r.split("┤", 1)[1] for r in rows)
    assert cells and all(0x2800 <= ord(c) <= 0x28FF for c in cells), "not all braille"
    assert any(ord(c) != 0x2800 for c in cells), "no dot drawn"
    values = [v for _, v in series["values"]]
    hi = max(values, key=float)
    lo = min(values, key=float)
    top, bottom = rows[0].split("┤")[0].strip(), rows[-1].split("┤")[0].strip()
    assert top == hi, f"{series['metric']}: top of the axis {top!r}, largest value {hi!r}"
    assert bottom == lo, f"{series['metric']}: bottom of the axis {bottom!r}, smallest value {lo!r}"
print(len(charts), "charts")
EOF
for sel in 'app_flaky' 'app_requests_total{shard="3",code="404"}' 'app_temperature_celsius{sensor=~"s1."}'; do
  expect 0 "" -- lookup --json --samples "$arc" "$sel"
  cp "$tmp/out" "$tmp/plot.json"
  expect 0 "" -- lookup --plot "$arc" "$sel"
  cp "$tmp/out" "$tmp/plot.txt"
  if python3 "$tmp/plot.py" "$tmp/plot.txt" "$tmp/plot.json" >"$tmp/cmp" 2>&1; then ok; else
    bad "lookup --plot '$sel': $(tail -2 "$tmp/cmp")"
  fi
done

# ---- exit codes ----

expect 3 "no series matches" -- lookup "$arc" 'app_flaky{id="nope"}'
expect 3 "no series matches" -- lookup --json --samples "$arc" 'app_flaky{id="nope"}'
expect 3 "no series matches" -- lookup "$arc" '{nonexistent=~".+"}'
expect 3 "no series matches" -- lookup "$arc" '{job!~".*"}'
expect 3 "no series matches" -- lookup --plot "$arc" 'nonexistent_metric'
expect 2 "column 17: " -- lookup "$arc" 'app_flaky{id="0"'
expect 2 "column 14: " -- lookup "$arc" 'app_flaky{id=="0"}'
expect 2 "column 18: " -- lookup "$arc" 'app_flaky{id="0"}}'
expect 2 "column 6: .*missing closing \)" -- lookup "$arc" '{x=~"("}'
expect 2 "column 11: " -- lookup "$arc" '{job="é",x}'
expect 2 "line 2, column 3: " -- lookup "$arc" '{job="x",
 y}'
expect 2 "non-empty matcher" -- lookup "$arc" '{job=""}'
expect 2 "non-empty matcher" -- lookup --json --samples "$arc" '{job=~".*", x!="1"}'

echo "lookup-cli: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
