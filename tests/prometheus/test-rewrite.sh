#!/usr/bin/env bash
# Rewrite a real snapshot with snaparc's WAL writer and check that Prometheus
# loads the result and gives the same answers.
#
#   test-rewrite.sh REWRITE SNAPARC DATADIR
#
# DATADIR holds one chunk_snapshot.*/ and expected/ (make-snapshot.sh output).
# For C in snappy and none: `REWRITE SNAPSHOT OUT --compression C` (decodes
# every record, re-encodes it, writes OUT, fails on any difference), then
# query-snapshot.sh on OUT with every saved query, then compare.py answers
# (and compare.py exemplars when exemplars were saved). Prometheus must load
# as many series as `SNAPARC dump --json` counts in the original.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage="usage: test-rewrite.sh REWRITE SNAPARC DATADIR"
rewrite=${1:?$usage} snaparc=${2:?$usage} data=${3:?$usage}
exp=$data/expected
snaps=("$data"/chunk_snapshot.*)
if [ ${#snaps[@]} -ne 1 ] || [ ! -d "${snaps[0]}" ]; then
  echo "test-rewrite: want exactly one chunk_snapshot.* in $data" >&2; exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

want=$("$snaparc" dump --json "${snaps[0]}" | tail -n 1 |
       python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["series"])')
cut -f1 "$exp/queries.txt" | sort -u > "$tmp/times"
[ "$(wc -l < "$tmp/times")" -eq 1 ] || { echo "test-rewrite: queries.txt must use one time" >&2; exit 2; }
t=$(cat "$tmp/times")
mapfile -t sels < <(cut -f2- "$exp/queries.txt")
exargs=()
if [ -f "$exp/exemplars.txt" ]; then
  IFS=$'\t' read -r es ee esel < "$exp/exemplars.txt"
  exargs=(--exemplars "$tmp/exemplars.json" "$es" "$ee" "$esel")
fi

status=0
for c in snappy none; do
  echo "== rewrite --compression $c"
  out=$tmp/out-$c
  if ! "$rewrite" "${snaps[0]}" "$out" --compression "$c"; then
    echo "MISMATCH $rewrite failed with --compression $c"; status=1; continue
  fi
  if ! "$here/query-snapshot.sh" ${exargs[@]+"${exargs[@]}"} "$out" "$t" "${sels[@]}" \
      > "$tmp/answers-$c.jsonl" 2> "$tmp/log-$c"; then
    cat "$tmp/log-$c"; echo "MISMATCH Prometheus did not load the $c rewrite"; status=1; continue
  fi
  got=$(sed -n 's/.*chunk snapshot loaded.* num_series=\([0-9]*\).*/\1/p' "$tmp/log-$c")
  if [ "$got" != "$want" ]; then
    echo "MISMATCH Prometheus loaded num_series=$got from the rewrite, the original has $want"; status=1
  else
    echo "loaded num_series=$got, as in the original"
  fi
  python3 "$here/compare.py" answers "$exp" "$tmp/answers-$c.jsonl" || status=1
  if [ ${#exargs[@]} -gt 0 ]; then
    python3 "$here/compare.py" exemplars "$exp" "$tmp/exemplars.json" || status=1
  fi
done
exit $status
