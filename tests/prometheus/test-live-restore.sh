#!/usr/bin/env bash
# Two consecutive real snapshots in one archive, each restored and checked
# against what a real Prometheus 2.42 answered. About 60 s.
#
#   test-live-restore.sh SNAPARC
#
# make-snapshot.sh --rounds 2 makes a fresh snapshot with the installed
# Prometheus, restarts it on the same data directory (it loads that snapshot
# and scrapes on) and makes a second one. Both are imported into one archive
# (ids 1 and 2). Then:
#  - `restore --snapshot 2` and `restore --snapshot NAME2` (its name) are each
#    loaded by query-snapshot.sh, which must log the num_series Prometheus logged
#    writing snapshot 2, and answer round 2's saved queries as Prometheus
#    answered them live, restricted to the second snapshot's data: a round-2
#    snapshot holds only the head chunks cut after the restart (the live
#    answers also hold round-1 samples from chunks_head/), so each series'
#    expected samples start at its head chunk's mint in the original round-2
#    snapshot, read by refdump.py (independent of snaparc). The exemplars
#    must be round 2's saved query_exemplars answer, whole (Prometheus
#    snapshots its whole exemplar buffer, round 1's exemplars included).
#    A restore with no --snapshot (latest) must be byte-identical to them.
#  - `restore --snapshot 1` must answer round 1's saved queries and exemplars
#    exactly (its snapshot holds every round-1 sample), as must
#    `restore --snapshot NAME1` byte for byte.
#  - `snaparc dump --samples --json` of each restore equals the original
#    snapshot's record by record (ignoring segment and offset).
# Prints MISMATCH lines and `live-restore: N passed, M failed`; exits 1 on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
snaparc=${1:?usage: test-live-restore.sh SNAPARC}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
chk=(python3 "$here/restore_check.py")
started=$(date +%s)

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "MISMATCH $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
not_same() { ! diff -rq "$1" "$2" > /dev/null; }

"$here/make-snapshot.sh" "$tmp/snap" --rounds 2 --series 200 --gauges 20 --histograms 3 --flaky 2 \
    --scrapes 8 --exemplars --delete 'app_requests_total{shard="3"}' \
    --query '{__name__=~".+"}' --query 'app_requests_total{shard="3"}' --query 'app_flaky' >&2
echo "make-snapshot: $(( $(date +%s) - started )) s"
d1=$tmp/snap d2=$tmp/snap/round-02
s1=$(find "$d1" -maxdepth 1 -name 'chunk_snapshot.*' -type d) s2=$(find "$d2" -maxdepth 1 -name 'chunk_snapshot.*' -type d)
{ [ -d "$s1" ] && [ -d "$s2" ]; } || { echo "test-live-restore: make-snapshot.sh wrote no two snapshots" >&2; exit 1; }
n1=$(basename "$s1") n2=$(basename "$s2")
[ "$n1" != "$n2" ] || { echo "test-live-restore: both snapshots are named $n1" >&2; exit 1; }

arc=$tmp/arc
if ! "$snaparc" import "$arc" "$s1" "$s2"; then
  echo "MISMATCH snaparc import of both snapshots failed"; echo "live-restore: 0 passed, 1 failed"; exit 1
fi
"$snaparc" ls --json "$arc" > "$tmp/ls.json"
check "ls: snapshot 1 is $n1 and 2 is $n2" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
got = [(r["id"], r["name"]) for r in rows]
print("ls:", got)
sys.exit(0 if got == [(1, sys.argv[2]), (2, sys.argv[3])] else 1)' "$tmp/ls.json" "$n1" "$n2"

# the expected answers: round 1 as saved; round 2 restricted to snapshot 2's samples
python3 "$here/refdump.py" "$s2" > "$tmp/ref2.jsonl"
"${chk[@]}" restrict "$d2/expected" "$tmp/exp2" --since-dump "$tmp/ref2.jsonl"

# logged ROUNDDIR NAME: the num_series Prometheus logged writing snapshot NAME
logged() { grep -o "chunk snapshot complete.*num_series=[0-9]* dir=[^ ]*/$2\$" "$1/prometheus.log" |
           sed 's/.*num_series=\([0-9]*\).*/\1/' | tail -n 1; }

# verify TAG OUT ORIG_SNAPSHOT ROUNDDIR EXPDIR: dump, load into Prometheus, compare
verify() {
  local tag=$1 out=$2 orig=$3 round=$4 exp=$5
  echo "== $tag"
  "$snaparc" dump --samples --json "$orig" > "$tmp/$tag.orig.jsonl"
  "$snaparc" dump --samples --json "$out" > "$tmp/$tag.dump.jsonl" || true
  check "$tag: dump of the restore equals the original's" \
    "${chk[@]}" dumps "$tmp/$tag.orig.jsonl" "$tmp/$tag.dump.jsonl" --compression snappy
  local t sels es ee esel want got
  t=$(cut -f1 "$exp/queries.txt" | sort -u)
  mapfile -t sels < <(cut -f2- "$exp/queries.txt")
  IFS=$'\t' read -r es ee esel < "$exp/exemplars.txt"
  if ! "$here/query-snapshot.sh" --exemplars "$tmp/$tag.exemplars.json" "$es" "$ee" "$esel" \
      "$out" "$t" "${sels[@]}" > "$tmp/$tag.answers.jsonl" 2> "$tmp/$tag.log"; then
    grep -m 5 -E 'panic|level=error|Failed|did not|timed out|exited' "$tmp/$tag.log" || tail -n 5 "$tmp/$tag.log"
    fail "$tag: Prometheus did not load the restore"; return 0
  fi
  got=$(sed -n 's/.*chunk snapshot loaded.* num_series=\([0-9]*\).*/\1/p' "$tmp/$tag.log")
  want=$(logged "$round" "$(basename "$orig")")
  if [ -n "$want" ] && [ "$got" = "$want" ]; then pass "$tag: Prometheus loaded num_series=$got, as it wrote"
  else fail "$tag: Prometheus loaded num_series=$got, it wrote ${want:-?}"; fi
  check "$tag: answers to ${#sels[@]} queries" python3 "$here/compare.py" answers "$exp" "$tmp/$tag.answers.jsonl"
  check "$tag: exemplars" python3 "$here/compare.py" exemplars "$exp" "$tmp/$tag.exemplars.json"
}

# restore TAG ARGS...: snaparc restore ARGS --out $tmp/TAG
restore() {
  local tag=$1 rc=0; shift
  "$snaparc" restore "$@" --out "$tmp/$tag" || rc=$?
  [ $rc -eq 0 ] || fail "$tag: snaparc restore $* exited $rc"
  return $rc
}

if restore s2-id --snapshot 2 "$arc"; then verify s2-id "$tmp/s2-id" "$s2" "$d2" "$tmp/exp2"; fi
if restore s2-name --snapshot "$n2" "$arc"; then verify s2-name "$tmp/s2-name" "$s2" "$d2" "$tmp/exp2"; fi
if restore s2-latest "$arc"; then
  check "restore with no --snapshot (latest) is byte-identical to --snapshot 2" diff -r "$tmp/s2-latest" "$tmp/s2-id"
fi
if restore s1-id --snapshot 1 "$arc"; then verify s1-id "$tmp/s1-id" "$s1" "$d1" "$d1/expected"; fi
if restore s1-name --snapshot "$n1" "$arc"; then
  check "--snapshot $n1 is byte-identical to --snapshot 1" diff -r "$tmp/s1-name" "$tmp/s1-id"
fi
if [ -d "$tmp/s1-id" ] && [ -d "$tmp/s2-id" ]; then
  check "snapshots 1 and 2 restore differently" not_same "$tmp/s1-id" "$tmp/s2-id"
fi

echo "live-restore: $passed passed, $failed failed ($(( $(date +%s) - started )) s)"
[ "$failed" -eq 0 ]
