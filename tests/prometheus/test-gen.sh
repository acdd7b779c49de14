#!/usr/bin/env bash
# Check that a real Prometheus 2.42 loads what snapgen writes and answers
# with exactly the samples the generator says it generated.
#
#   test-gen.sh SNAPGEN SNAPARC
#
# 1. SNAPGEN writes a snapshot of $GEN_SERIES (default 3000) series with 60
#    tombstones and 5000 exemplars, plus --expect: the generator's own account
#    (labels, samples, tombstones, exemplars).
# 2. `SNAPARC dump --json --samples` of the snapshot must equal that account
#    record by record, in order (values as the dump prints them, Go's
#    FormatFloat 'f' -1), and the account must look like a head: 5-12 labels sorted
#    bytewise (etcd's "To" comes before "__name__"), unique label sets, refs
#    1..N in no sorted order, increasing timestamps, exemplars in time order
#    and strictly increasing per series.
# 3. query-snapshot.sh loads it into Prometheus 2.42 and asks SELECTOR[1h] at
#    T, the first whole second after the last sample (the [1h] window covers
#    every chunk), plus query_exemplars; compare.py checks the answers against
#    the generator's account with deleted (tombstoned) samples removed. Values
#    are compared as Prometheus prints them (jsonutil.MarshalFloat: 'f' -1, but
#    'e' -1 when 0 < |v| < 1e-6 or |v| >= 1e21, for samples and exemplars).
# 4. Prometheus must log num_series=N.
# 5. Periodic snapshots: SNAPGEN --periodic writes $GEN_PERIODIC_SNAPSHOTS
#    (default 3) snapshots of $GEN_PERIODIC_SERIES (default 300) series, one
#    every 10 scrapes of a head that runs on; `SNAPGEN --check` reads them
#    back (every record as the generator makes it; each chunk the previous
#    snapshot's extended by 10 samples, the XOR bits a prefix, or a new one
#    from a cut); and steps 2-4 run on the last one.
# Prints a summary line; exits 1 on any mismatch.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: test-gen.sh SNAPGEN SNAPARC"
snapgen=${1:?$usage} snaparc=${2:?$usage}
series=${GEN_SERIES:-3000}
pseries=${GEN_PERIODIC_SERIES:-300} psnaps=${GEN_PERIODIC_SNAPSHOTS:-3}
tmp=$(mktemp -d)
# TEST_GEN_KEEP=1 keeps the work directory (snapshot, accounts, answers).
if [ -n "${TEST_GEN_KEEP:-}" ]; then echo "test-gen: keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
status=0

# load_and_compare SNAP GEN_JSONL WORKDIR SERIES: steps 2-4 for one snapshot
# and the generator's account of it; sets status=1 on any mismatch.
load_and_compare() {
local snap=$1 gen=$2 w=$3 want=$4 exp=$3/expected t sels es ee esel got i line
mkdir -p "$exp"
"$snaparc" dump --json --samples "$snap" > "$w/dump.jsonl"

# Step 2; writes the account with Go-formatted values (gen-go.jsonl, shaped
# like the dump for compare.py), queries.txt and exemplars.txt.
python3 - "$gen" "$w/dump.jsonl" "$w/gen-go.jsonl" "$exp" <<'PY' || status=1
import decimal, json, math, sys

gen_path, dump_path, out_path, exp_dir = sys.argv[1:]
errors = []

def fail(msg):
    errors.append(msg)

def gofmt(s):
    """A %.17g string -> Go strconv.FormatFloat(v, 'f', -1, 64) (the dump's form)."""
    x = float(s)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    t = format(decimal.Decimal(repr(x)), "f")   # repr: the shortest round trip
    return t.rstrip("0").rstrip(".") if "." in t else t

def promfmt(s):
    """As Prometheus' API prints it (jsonutil.MarshalFloat): 'e' -1 when
    0 < |v| < 1e-6 or |v| >= 1e21, where Python's repr is Go's 'e' -1."""
    x = float(s)
    if x == x and x not in (math.inf, -math.inf) and x != 0 and not 1e-6 <= abs(x) < 1e21:
        return repr(x)
    return gofmt(s)

def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]

gen, dump = records(gen_path), records(dump_path)
with open(out_path, "w") as f:   # the account as Prometheus would print it
    for r in gen:
        if r.get("record") == "series":
            r = dict(r, samples=[[t, promfmt(v)] for t, v in r["samples"]])
        elif r.get("record") == "exemplars":
            r = dict(r, exemplars=[dict(x, value=promfmt(x["value"])) for x in r["exemplars"]])
        f.write(json.dumps(r) + "\n")
exp_forms = sum(1 for r in gen if r.get("record") == "series" for _, v in r["samples"] if promfmt(v) != gofmt(v))
for r in gen:   # the account as the dump prints it: as Prometheus does
    if r.get("record") == "series":
        r["samples"] = [[t, promfmt(v)] for t, v in r["samples"]]
    elif r.get("record") == "exemplars":
        for x in r["exemplars"]:
            x["value"] = promfmt(x["value"])

gs = [r for r in gen if "record" in r]
ds = [r for r in dump if "record" in r]
if len(gs) != len(ds):
    fail("generator has %d records, the dump %d" % (len(gs), len(ds)))
for i, (g, d) in enumerate(zip(gs, ds)):
    if g["record"] != d["record"]:
        fail("record %d: generator %s, dump %s" % (i, g["record"], d["record"]))
    elif g["record"] == "series":
        ch = d["chunk"]
        if (g["ref"], g["labels"], g["samples"]) != (d["ref"], d["labels"], d["samples"]):
            fail("record %d: series ref %d differs from the dump's ref %d" % (i, g["ref"], d["ref"]))
        elif (ch["mint"], ch["maxt"], ch["encoding"], ch["samples"]) != \
                (g["samples"][0][0], g["samples"][-1][0], "xor", len(g["samples"])):
            fail("record %d: ref %d: chunk header %r" % (i, g["ref"], ch))
        elif d["last_value"] != g["samples"][-1][1]:
            fail("record %d: ref %d: tail last value %s, want %s" % (i, g["ref"], d["last_value"],
                                                                      g["samples"][-1][1]))
    elif g["record"] == "tombstones":
        if g["intervals"] != d["intervals"]:
            fail("record %d: tombstones differ" % i)
    elif g["exemplars"] != d["exemplars"]:
        fail("record %d: exemplars differ" % i)
    if len(errors) > 10:
        break

# The account must look like a head Prometheus could have written.
series = [r for r in gs if r["record"] == "series"]
stones = [r for r in gs if r["record"] == "tombstones"]
exrecs = [r for r in gs if r["record"] == "exemplars"]
refs = [s["ref"] for s in series]
if sorted(refs) != list(range(1, len(refs) + 1)):
    fail("refs are not 1..N")
if refs == sorted(refs):
    fail("series records are in ref order")
if [r["record"] for r in gs] != ["series"] * len(series) + ["tombstones"] + ["exemplars"] * len(exrecs):
    fail("records are not series, one tombstones record, exemplars")
seen = set()
for s in series:
    names = list(s["labels"])
    # bytewise order: etcd's "To" sorts before "__name__"
    if not 5 <= len(names) <= 12 or names != sorted(names) or "__name__" not in names:
        fail("ref %d: labels %r" % (s["ref"], names))
    key = tuple(sorted(s["labels"].items()))
    if key in seen:
        fail("ref %d: label set repeats" % s["ref"])
    seen.add(key)
    ts = [t for t, _ in s["samples"]]
    if any(b <= a for a, b in zip(ts, ts[1:])):
        fail("ref %d: timestamps not increasing" % s["ref"])
ivs = stones[0]["intervals"] if stones else []
if len({iv["ref"] for iv in ivs}) != len(ivs):
    fail("tombstones are not on distinct refs")
exs = [x for r in exrecs for x in r["exemplars"]]
if any(len(r["exemplars"]) > 10000 for r in exrecs):
    fail("an exemplar record holds more than 10000 exemplars")
if any(b["t"] < a["t"] for a, b in zip(exs, exs[1:])):
    fail("exemplars are not in time order")
last = {}
for x in exs:
    if x["t"] <= last.get(x["ref"], -2**63):
        fail("exemplars of ref %d are not strictly increasing in time" % x["ref"])
    last[x["ref"]] = x["t"]

maxt = max(s["samples"][-1][0] for s in series)
mint = min(s["samples"][0][0] for s in series)
t = maxt // 1000 + 1
if mint < (t - 3600) * 1000:
    fail("the [1h] window at %d does not cover the first sample at %d ms" % (t, mint))
sels = ['{__name__=~".+"}', 'up', 'node_cpu_seconds_total{mode="idle"}', '{__name__=~".+_bucket",le="+Inf"}',
        '{job="kubelet",metrics_path="/metrics/cadvisor"}', '{__name__=~".+_sum|.+_count"}']
with open(exp_dir + "/queries.txt", "w") as f:
    for s in sels:
        f.write("%d\t%s\n" % (t, s))
with open(exp_dir + "/exemplars.txt", "w") as f:
    f.write("%d\t%d\t%s\n" % (min(x["t"] for x in exs) // 1000 if exs else t - 3600, t, '{__name__=~".+"}'))
samples = sum(len(s["samples"]) for s in series)
for e in errors[:10]:
    print("MISMATCH " + e)
print("generator vs dump: %d series, %d samples (%d printed by Prometheus in 'e' form), %d tombstones,"
      " %d exemplars in %d records%s" % (len(series), samples, exp_forms, len(ivs), len(exs), len(exrecs),
                                         ": identical" if not errors else ", %d mismatches" % len(errors)))
sys.exit(1 if errors else 0)
PY

t=$(cut -f1 "$exp/queries.txt" | head -n 1)
mapfile -t sels < <(cut -f2- "$exp/queries.txt")
IFS=$'\t' read -r es ee esel < "$exp/exemplars.txt"
if ! "$here/query-snapshot.sh" --exemplars "$exp/exemplars.json" "$es" "$ee" "$esel" "$snap" "$t" "${sels[@]}" \
    > "$w/answers.jsonl" 2> "$w/log"; then
  cat "$w/log"; echo "MISMATCH Prometheus did not load the generated snapshot $snap"
  echo "test-gen: FAILED"; exit 1
fi
got=$(sed -n 's/.*chunk snapshot loaded.* num_series=\([0-9]*\).*/\1/p' "$w/log")
if [ "$got" != "$want" ]; then
  echo "MISMATCH Prometheus loaded num_series=$got, generated $want"; status=1
fi
i=0
while IFS= read -r line; do
  printf '%s\n' "$line" > "$exp/$(printf %02d $i).json"; i=$((i + 1))
done < "$w/answers.jsonl"
python3 "$here/compare.py" dump "$w/gen-go.jsonl" "$exp" || status=1
echo "test-gen: $(basename "$snap"): Prometheus 2.42 loaded num_series=$got and answered ${#sels[@]} selectors at $t"
}

"$snapgen" "$tmp/out" --series "$series" --tombstones 60 --exemplars 5000 --seed 7 --expect "$tmp/gen.jsonl"
load_and_compare "$tmp/out/chunk_snapshot.000000.0000000000" "$tmp/gen.jsonl" "$tmp" "$series"

# Step 5. --check fails on snapshots other options made (the check is not vacuous).
popts=(--series "$pseries" --periodic "$psnaps" --step 10 --tombstones 6 --exemplars 600 --seed 11)
mkdir -p "$tmp/periodic"
"$snapgen" "$tmp/periodic/out" "${popts[@]}" --expect "$tmp/periodic/gen.jsonl" --quiet
"$snapgen" "$tmp/periodic/out" "${popts[@]}" --check || status=1
if "$snapgen" "$tmp/periodic/out" "${popts[@]}" --step 11 --check >/dev/null 2>&1; then
  echo "MISMATCH snapgen --check accepted periodic snapshots made with another step"; status=1
fi
last=$(ls -d "$tmp"/periodic/out/chunk_snapshot.* | sort | tail -n 1)
if [ "$(ls -d "$tmp"/periodic/out/chunk_snapshot.* | wc -l)" != "$psnaps" ]; then
  echo "MISMATCH snapgen --periodic $psnaps wrote $(ls "$tmp/periodic/out" | wc -l) directories"; status=1
fi
load_and_compare "$last" "$tmp/periodic/gen.jsonl" "$tmp/periodic" "$pseries"

if [ $status -eq 0 ]; then
  echo "test-gen: OK: Prometheus 2.42 loaded the snapshot and the last of $psnaps periodic ones and answered the selectors and the exemplars as generated"
else
  echo "test-gen: FAILED"
fi
exit $status
