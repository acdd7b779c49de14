#!/usr/bin/env bash
# The snaparc command under valgrind's memcheck, on the bundled real
# Prometheus 2.42 snapshot: import (twice, so that compaction has work),
# ls, stat, lookup (by ref, by labels, --samples, --json [--detail], a
# selector, --history, --plot, a ref it lacks), restore (whole, one ref, a
# selector), verify, compact (--dry-run, --keep-last), rm, dump, and the
# reads again after compaction (deltas). Every command must exit as it should
# with no memcheck error and no leak (definite, indirect or possible): any is
# a failure, with the valgrind log printed.
#   test-valgrind.sh SNAPARC DATADIR
# Exits 77 (CTest: skipped) without valgrind, or when SNAPARC is built with
# AddressSanitizer (they do not mix). SNAPARC_VALGRIND_KEEP=DIR keeps the logs.
set -euo pipefail
snaparc=$1 data=$2
if ! command -v valgrind >/dev/null; then
  echo "valgrind: not installed (scripts/deps.sh installs it)" >&2
  exit 77
fi
if nm -D "$snaparc" 2>/dev/null | grep -q __asan_init ||
   ldd "$snaparc" 2>/dev/null | grep -q libasan; then
  echo "valgrind: $snaparc is built with AddressSanitizer" >&2
  exit 77
fi
tmp=$(mktemp -d)
keep=${SNAPARC_VALGRIND_KEEP:-}
trap 'if [ -n "$keep" ]; then mkdir -p "$keep"; cp "$tmp"/vg.*.log "$keep"/ 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
fails=0 runs=0 errors=0 leaked=0
start=$(date +%s)

# vg CODE -- ARGS: snaparc ARGS under memcheck; wants exit CODE and a clean log
vg() {
  local code=$1; shift 2
  local n=$((runs + 1)) got=0 log
  runs=$n
  log=$tmp/vg.$n.log
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes --keep-debuginfo=yes \
    --child-silent-after-fork=yes --num-callers=30 --log-file="$log" \
    "$snaparc" "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  local e l
  e=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
  l=$(sed -n 's/.*\(definitely\|indirectly\|possibly\) lost: \([0-9,]*\) bytes.*/\2/p' "$log" | tr -d , |
      awk '{s += $1} END {print s + 0}')
  errors=$((errors + ${e:-0})); leaked=$((leaked + l))
  if [ "$got" = 99 ] || [ "${e:-1}" != 0 ]; then
    fails=$((fails + 1))
    echo "FAIL: valgrind snaparc $*: ${e:-?} error(s), $l bytes lost (exit $got); its log:" >&2
    sed -n '/^==[0-9]*== \(Invalid\|Conditional\|Use of\|Syscall\|Mismatched\|.*lost in\|Source and\|Argument\)/,/^==[0-9]*== $/p' \
      "$log" | head -150 >&2
    return
  fi
  if [ "$got" != "$code" ]; then
    fails=$((fails + 1))
    echo "FAIL: snaparc $* exited $got under valgrind, wanted $code: $(head -c 500 "$tmp/err")" >&2
    return
  fi
  echo "ok: snaparc $*" >&2
}

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
arc=$tmp/arc
# a series with tombstones and one with exemplars, and one's labels
read -r tref xref sel < <("$snaparc" dump --json "$snap" | python3 -c '
import json, sys
tomb = ex = None
labels = {}
for line in sys.stdin:
    j = json.loads(line)
    if j.get("record") == "series":
        labels[j["ref"]] = j["labels"]
    elif j.get("record") == "tombstones" and tomb is None:
        tomb = j["intervals"][0]["ref"]
    elif j.get("record") == "exemplars" and ex is None:
        ex = j["exemplars"][0]["ref"]
l = labels[ex]
print(tomb, ex, "{" + ",".join("%s=\"%s\"" % kv for kv in sorted(l.items())) + "}")')

vg 0 -- import "$arc" "$snap"
vg 0 -- import --name second --json "$arc" "$snap"
vg 0 -- ls "$arc"
vg 0 -- ls --json "$arc"
vg 0 -- stat "$arc"
vg 0 -- stat --json "$arc"
vg 0 -- lookup "$arc" --ref 1
vg 0 -- lookup --samples --snapshot 1 "$arc" --ref "$tref"
vg 0 -- lookup --json --detail --samples "$arc" --ref "$xref"
vg 0 -- lookup --samples "$arc" "$sel"
vg 0 -- lookup --json --samples "$arc" "$sel"
vg 0 -- lookup --json --samples "$arc" '{__name__=~"prometheus_.*|app_.+",job!="x"}'
vg 0 -- lookup --history --json --samples "$arc" "$sel"
vg 0 -- lookup --plot --snapshot second "$arc" --ref "$tref"
vg 3 -- lookup "$arc" --ref 999999
vg 2 -- lookup "$arc" '{job=~"("}'
vg 0 -- restore --snapshot 1 "$arc" --out "$tmp/whole"
vg 0 -- restore --compression zstd "$arc" --ref "$xref" --out "$tmp/one"
vg 0 -- restore "$arc" "$sel" --out "$tmp/sel"
vg 0 -- dump --samples "$tmp/whole"
vg 0 -- verify "$arc"
vg 0 -- compact --dry-run "$arc"
vg 0 -- import --name third "$arc" "$snap"
vg 0 -- compact --json --keep-last 2 "$arc"
vg 0 -- lookup --json --detail --samples --snapshot third "$arc" --ref "$xref"
vg 0 -- lookup --json --samples --snapshot second "$arc" '{__name__=~".+"}'
vg 0 -- restore --snapshot third "$arc" --out "$tmp/after"
vg 0 -- verify "$arc"
vg 0 -- rm "$arc" second
vg 0 -- compact "$arc"
vg 0 -- verify "$arc"

# what was restored is what was imported
records() { "$snaparc" dump --json "$1" | python3 -c '
import json, sys
for l in sorted(json.dumps({k: v for k, v in json.loads(l).items() if k not in ("segment", "offset")}, sort_keys=True)
                for l in sys.stdin if "summary" not in l): print(l)'; }
if ! cmp -s <(records "$tmp/whole") <(records "$tmp/after"); then
  fails=$((fails + 1)); echo "FAIL: the snapshot restored after compaction differs from the one before" >&2
fi

echo "valgrind: $runs commands in $(( $(date +%s) - start )) s, $errors memcheck errors, $leaked bytes lost, $fails failed"
test "$fails" = 0
