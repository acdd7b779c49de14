#!/usr/bin/env bash
# Check against a real Prometheus 2.42 that what `snaparc restore` writes is
# what Prometheus had: the whole snapshot, and single series.
#
#   test-restore.sh SNAPARC DATADIR
#
# DATADIR is make-snapshot.sh output made as tests/data/README.md says (e.g.
# tests/data/prom-2.42): one chunk_snapshot.*/, prometheus.log and expected/
# with query 01 a selector whose series carry tombstones (--delete of it),
# query 03 app_long_label (a record over 32 KiB) and exemplars.
#
# 1. Full restore. The snapshot is imported into a new archive and restored
#    with the default compression (Snappy) and with --compression none. Each
#    restore is loaded by query-snapshot.sh (a fresh Prometheus), which must log
#    the num_series Prometheus logged when it wrote the snapshot, and answer
#    every saved query (at the saved time) and the saved query_exemplars
#    exactly as saved (compare.py answers / exemplars). `snaparc dump --samples
#    --json` of the restore must equal the original's record by record,
#    ignoring where records lie (segment, offset). The same snapshot imported
#    twice into another archive: the second, restored by name, must be the
#    same again (dump, num_series, answers).
# 2. One-series restores, each loaded by Prometheus, which must load exactly 1
#    series and answer the saved queries restricted to that label set (the
#    saved result entries whose metric equals it, samples exactly; any other
#    series is a mismatch), and its exemplars as exemplars.json restricted to
#    it (none for series without); the restore's dump must hold exactly the
#    original's record of that series, its tombstone intervals and exemplars:
#      a. a tombstoned series of query 01, restored by LABELS;
#      b. an exemplar-carrying series of exemplars.json, restored by --ref
#         (the ref `snaparc lookup --json` gives for its labels);
#      c. the app_long_label series (its record is over 32 KiB), by LABELS.
# 3. Refusals: an existing --out (a directory with a file, an empty directory)
#    is refused with exit 6 and left untouched; --force replaces it; failed
#    restores (--ref or LABELS of a missing series, --snapshot of a missing
#    snapshot: exit 3; also with --force over an existing DIR) leave no DIR
#    (or the old DIR as it was) and no DIR.tmp-* behind.
# Prints MISMATCH lines, then `restore: N passed, M failed`; exits 1 on any
# failure. Six Prometheus starts; about 15 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: test-restore.sh SNAPARC DATADIR"
snaparc=${1:?$usage} data=${2:?$usage}
exp=$data/expected
snaps=("$data"/chunk_snapshot.*)
if [ ${#snaps[@]} -ne 1 ] || [ ! -d "${snaps[0]}" ]; then
  echo "test-restore: want exactly one chunk_snapshot.* in $data" >&2; exit 2
fi
snap=${snaps[0]} name=$(basename "${snaps[0]}")
for f in queries.txt 01.json 03.json exemplars.txt exemplars.json; do
  [ -f "$exp/$f" ] || { echo "test-restore: $exp/$f is missing" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
chk=(python3 "$here/restore_check.py")
started=$(date +%s)

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "MISMATCH $*"; }
# check WHAT CMD...: CMD's output is shown; its status decides
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

cut -f1 "$exp/queries.txt" | sort -u > "$tmp/times"
[ "$(wc -l < "$tmp/times")" -eq 1 ] || { echo "test-restore: queries.txt must use one time" >&2; exit 2; }
t=$(cat "$tmp/times")
mapfile -t sels < <(cut -f2- "$exp/queries.txt")
IFS=$'\t' read -r es ee esel < "$exp/exemplars.txt"

# The series count Prometheus logged when it wrote this snapshot (else the dump's).
"$snaparc" dump --samples --json "$snap" > "$tmp/orig.jsonl"
want_series=$(grep -o "chunk snapshot complete.*num_series=[0-9]* dir=[^ ]*/$name\$" "$data/prometheus.log" 2>/dev/null |
              sed 's/.*num_series=\([0-9]*\).*/\1/' | tail -n 1 || true)
if [ -z "$want_series" ]; then
  want_series=$(tail -n 1 "$tmp/orig.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["series"])')
fi

# prom TAG DIR: load DIR into a fresh Prometheus, ask every saved query of
# queries.txt and the exemplars query; answers in $tmp/TAG.*; sets $loaded.
prom() {
  local tag=$1 dir=$2
  loaded=""
  if ! "$here/query-snapshot.sh" --exemplars "$tmp/$tag.exemplars.json" "$es" "$ee" "$esel" \
      "$dir" "$t" "${sels[@]}" > "$tmp/$tag.answers.jsonl" 2> "$tmp/$tag.log"; then
    grep -m 5 -E 'panic|level=error|Failed|did not|timed out|exited' "$tmp/$tag.log" || tail -n 5 "$tmp/$tag.log"
    fail "$tag: Prometheus did not load the restored snapshot"; return 1
  fi
  loaded=$(sed -n 's/.*chunk snapshot loaded.* num_series=\([0-9]*\).*/\1/p' "$tmp/$tag.log")
}

# restore_ok TAG ARGS...: `snaparc restore ARGS` must succeed
restore_ok() {
  local tag=$1 rc=0; shift
  "$snaparc" restore "$@" > "$tmp/$tag.restore.out" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    local how="$*"; [ ${#how} -le 200 ] || how="${how:0:160}...(${#how} bytes)"
    cat "$tmp/$tag.restore.out"; fail "$tag: snaparc restore $how exited $rc"; return 1
  fi
}

arc=$tmp/arc
if ! "$snaparc" import "$arc" "$snap" > "$tmp/import.out" 2>&1; then
  cat "$tmp/import.out"; echo "MISMATCH snaparc import $snap failed"; echo "restore: 0 passed, 1 failed"; exit 1
fi

# ---- 1. the whole snapshot ------------------------------------------------------
for c in snappy none; do
  tag=full-$c out=$tmp/$tag
  echo "== full restore, compression $c"
  copt=(); [ "$c" = snappy ] || copt=(--compression "$c")
  restore_ok "$tag" ${copt[@]+"${copt[@]}"} "$arc" --out "$out" || continue
  "$snaparc" dump --samples --json "$out" > "$tmp/$tag.dump.jsonl" || true
  check "$tag: dump of the restore equals the original's" \
    "${chk[@]}" dumps "$tmp/orig.jsonl" "$tmp/$tag.dump.jsonl" --compression "$c"
  prom "$tag" "$out" || continue
  if [ "$loaded" = "$want_series" ]; then pass "$tag: Prometheus loaded num_series=$loaded, as it wrote"
  else fail "$tag: Prometheus loaded num_series=$loaded, it wrote $want_series"; fi
  check "$tag: answers to ${#sels[@]} saved queries" python3 "$here/compare.py" answers "$exp" "$tmp/$tag.answers.jsonl"
  check "$tag: exemplars" python3 "$here/compare.py" exemplars "$exp" "$tmp/$tag.exemplars.json"
done

# The same snapshot imported twice into another archive: the second one, whose
# records follow the first's in the archive's segment, restores alone.
echo "== full restore of the second snapshot of an archive"
tag=second out=$tmp/second
if ! { "$snaparc" import --name first "$tmp/arc2" "$snap" && "$snaparc" import --name second "$tmp/arc2" "$snap"; } \
    > "$tmp/import2.out" 2>&1; then
  cat "$tmp/import2.out"; fail "second: importing $snap twice (as first, second) failed"
elif restore_ok "$tag" --snapshot second "$tmp/arc2" --out "$out"; then
  "$snaparc" dump --samples --json "$out" > "$tmp/$tag.dump.jsonl" || true
  check "$tag: dump of the restore equals the original's" \
    "${chk[@]}" dumps "$tmp/orig.jsonl" "$tmp/$tag.dump.jsonl" --compression snappy
  if prom "$tag" "$out"; then
    if [ "$loaded" = "$want_series" ]; then pass "$tag: Prometheus loaded num_series=$loaded, as it wrote"
    else fail "$tag: Prometheus loaded num_series=$loaded, it wrote $want_series"; fi
    check "$tag: answers to ${#sels[@]} saved queries" python3 "$here/compare.py" answers "$exp" "$tmp/$tag.answers.jsonl"
  fi
fi

# ---- 2. one series ---------------------------------------------------------------
# one_series TAG LABELS_JSON HOW...: restore the series (HOW: --ref N or LABELS),
# check the dump, load it, compare with the saved answers restricted to it.
one_series() {
  local tag=$1 labels=$2 ref=$3; shift 3
  local out=$tmp/$tag
  local how="$*"; [ ${#how} -le 200 ] || how="${how:0:160}...(${#how} bytes)"
  echo "== one series ($tag): restore $how"
  restore_ok "$tag" "$arc" "$@" --out "$out" || return 0
  "$snaparc" dump --samples --json "$out" > "$tmp/$tag.dump.jsonl" || true
  check "$tag: dump holds exactly the original's series ref $ref, its tombstones and exemplars" \
    "${chk[@]}" dumps "$tmp/orig.jsonl" "$tmp/$tag.dump.jsonl" --ref "$ref" --compression snappy
  "${chk[@]}" restrict "$exp" "$tmp/$tag.exp" --series "$labels"
  prom "$tag" "$out" || return 0
  if [ "$loaded" = 1 ]; then pass "$tag: Prometheus loaded num_series=1"
  else fail "$tag: Prometheus loaded num_series=$loaded, want 1"; fi
  check "$tag: answers restricted to the series" python3 "$here/compare.py" answers "$tmp/$tag.exp" "$tmp/$tag.answers.jsonl"
  if python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["data"] else 1)' "$tmp/$tag.exp/exemplars.json"; then
    check "$tag: exemplars restricted to the series" python3 "$here/compare.py" exemplars "$tmp/$tag.exp" "$tmp/$tag.exemplars.json"
  else
    check "$tag: no exemplars, as saved" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
n = sum(len(s["exemplars"]) for s in a["data"])
print("%d exemplars of %d series" % (n, len(a["data"])))
sys.exit(0 if a["status"] == "success" and not a["data"] else 1)' "$tmp/$tag.exemplars.json"
  fi
}

# lookup_ref LABELS: the ref snaparc gives for the label set; "" when not found
lookup_ref() {
  "$snaparc" lookup --json "$arc" "$1" 2>"$tmp/lookup.err" | python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["ref"], len(o["tombstones"]), len(o["exemplars"]), o["record_bytes"])' ||
    { cat "$tmp/lookup.err"; echo ""; }
}

# a. a series with tombstones, by LABELS
la=$("${chk[@]}" pick "$exp/01.json" 0)
sa=$("${chk[@]}" labels "$la")
read -r ref_a stones_a _ _ <<<"$(lookup_ref "$sa")"
if [ -z "$ref_a" ] || [ "${stones_a:-0}" -eq 0 ]; then
  fail "tombstoned: lookup of $sa gives ref '${ref_a:-}' with ${stones_a:-0} tombstone intervals, want some"
else
  one_series tombstoned "$la" "$ref_a" "$sa"
fi

# b. a series with exemplars, by --ref
lb=$("${chk[@]}" pick "$exp/exemplars.json" 0)
sb=$("${chk[@]}" labels "$lb")
read -r ref_b _ ex_b _ <<<"$(lookup_ref "$sb")"
if [ -z "$ref_b" ] || [ "${ex_b:-0}" -eq 0 ]; then
  fail "exemplars: lookup of $sb gives ref '${ref_b:-}' with ${ex_b:-0} exemplars, want some"
else
  one_series exemplars "$lb" "$ref_b" --ref "$ref_b"
fi

# c. the series whose record is over 32 KiB, by LABELS (a 40 KB argument)
lc=$("${chk[@]}" pick "$exp/03.json" 0)
sc=$("${chk[@]}" labels "$lc")
read -r ref_c _ _ bytes_c <<<"$(lookup_ref "$sc")"
if [ -z "$ref_c" ] || [ "${bytes_c:-0}" -le 32768 ]; then
  fail "long: lookup of app_long_label gives ref '${ref_c:-}', a ${bytes_c:-0}-byte record, want > 32768"
else
  one_series long "$lc" "$ref_c" "$sc"
fi

# ---- 3. refusals and failures ---------------------------------------------------
echo "== refusals"
# state DIR: every entry with its size and every file's checksum
state() { (cd "$1" && find . -mindepth 1 -printf '%p %s %y\n' | sort && find . -type f -exec sha256sum {} + | sort); }
# leftovers DIR: DIR.tmp-* next to DIR
leftovers() { find "$(dirname "$1")" -maxdepth 1 -name "$(basename "$1").tmp-*" | sort; }
# expect_rc CODE TAG ARGS...: snaparc restore ARGS must exit CODE
expect_rc() {
  local code=$1 tag=$2 rc=0; shift 2
  "$snaparc" restore "$@" > "$tmp/rc.out" 2>&1 || rc=$?
  if [ "$rc" = "$code" ]; then pass "$tag: exit $rc ($(head -c 200 "$tmp/rc.out" | tr '\n' ' '))"
  else
    local how="$*"; [ ${#how} -le 200 ] || how="${how:0:160}...(${#how} bytes)"
    cat "$tmp/rc.out"; fail "$tag: snaparc restore $how exited $rc, want $code"
  fi
}

mkdir -p "$tmp/refuse"
existing=$tmp/refuse/existing
mkdir "$existing"; echo "not a snapshot" > "$existing/keep.txt"; mkdir "$existing/sub"
state "$existing" > "$tmp/existing.before"
expect_rc 6 "existing --out" "$arc" --out "$existing"
check "existing --out left as it was" cmp -s "$tmp/existing.before" <(state "$existing")
check "existing --out: no .tmp-* left" test -z "$(leftovers "$existing")"
empty=$tmp/refuse/empty; mkdir "$empty"
expect_rc 6 "empty existing --out" "$arc" "$sc" --out "$empty"
check "empty --out left empty" test -d "$empty" -a -z "$(ls -A "$empty")"

# a failed --force restore leaves the old DIR as it was
missing_ref=$(python3 -c '
import json, sys
refs = [json.loads(l).get("ref", 0) for l in open(sys.argv[1]) if "\"series\"" in l]
print(max(refs) + 1000003)' "$tmp/orig.jsonl")
expect_rc 3 "--force --ref $missing_ref (missing) over an existing DIR" --force "$arc" --ref "$missing_ref" --out "$existing"
check "failed --force left the old DIR as it was" cmp -s "$tmp/existing.before" <(state "$existing")
check "failed --force: no .tmp-* left" test -z "$(leftovers "$existing")"

expect_rc 0 "--force over an existing DIR" --force "$arc" --out "$existing"
check "--force replaced DIR (no old file left)" test ! -e "$existing/keep.txt" -a ! -e "$existing/sub"
"$snaparc" dump --samples --json "$existing" > "$tmp/forced.dump.jsonl" || true
check "--force: DIR holds the whole snapshot" "${chk[@]}" dumps "$tmp/orig.jsonl" "$tmp/forced.dump.jsonl"
check "--force: no .tmp-* left" test -z "$(leftovers "$existing")"
expect_rc 0 "--force of one series over a full restore" --force "$arc" --ref "$ref_b" --out "$existing"
"$snaparc" dump --samples --json "$existing" > "$tmp/forced1.dump.jsonl" || true
check "--force: DIR now holds series ref $ref_b only" "${chk[@]}" dumps "$tmp/orig.jsonl" "$tmp/forced1.dump.jsonl" --ref "$ref_b"

gone=$tmp/refuse/gone
expect_rc 3 "--ref $missing_ref (missing)" "$arc" --ref "$missing_ref" --out "$gone"
check "missing --ref: no DIR" test ! -e "$gone"
check "missing --ref: no DIR.tmp-*" test -z "$(leftovers "$gone")"
expect_rc 3 "LABELS of a missing series" "$arc" '{__name__="app_requests_total",no_such_label="x"}' --out "$gone"
check "missing LABELS: no DIR, no DIR.tmp-*" test ! -e "$gone" -a -z "$(leftovers "$gone")"
expect_rc 3 "--snapshot 99 (missing)" --snapshot 99 "$arc" --out "$gone"
check "missing --snapshot: no DIR, no DIR.tmp-*" test ! -e "$gone" -a -z "$(leftovers "$gone")"
check "nothing else was written beside them" \
  test "$(find "$tmp/refuse" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' ')" = "empty existing "

echo "restore: $passed passed, $failed failed ($(( $(date +%s) - started )) s)"
[ "$failed" -eq 0 ]
