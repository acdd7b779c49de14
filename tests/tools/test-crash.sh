#!/usr/bin/env bash
# kill -9 at random moments (RELIABILITY.md "Crash").
#
# Import: `snaparc import --name` (default 128 MiB segments) or
# snaparc-crash-import (snaparc.so's import with 1 MiB segments, so that an
# import rolls over to new segments) of a generated snapshot (snapgen, 30,000
# series, 16 MB) or the bundled one, killed with SIGKILL after a random
# delay of up to 1.2 times an import's run time. After each kill:
# - ls lists exactly the snapshots whose import returned success, plus the
#   killed one only if it is whole (its records restore byte-identical to its
#   source, snaparc-recs-cmp); one whose import returned success must be there;
# - verify passes;
# - a next import (the bundled snapshot) succeeds and restores exactly.
# Every 10 kills every snapshot is restored and compared with its source,
# and the next kill hits a fresh archive.
#
# Restore: `snaparc restore --out OUT` of the generated snapshot, new or with
# --force over an older OUT (a restore of the bundled one), killed after a
# random delay of up to 1.2 times a restore's run time. After each kill: OUT
# is missing (there was none), the old one intact, or the new one whole (its
# records the source's); no other entry beside it than OUT.tmp-PID and
# OUT.old-PID of the killed process (counted, then removed); the archive's
# files are unchanged and verify passes; then restore --force succeeds and
# its records are the source's.
#
#   test-crash.sh SNAPARC SNAPGEN CRASH_IMPORT PLUGIN RECS_CMP DATADIR
# A fresh archive killed before its first transaction committed is no
# archive yet: ls and verify exit 3 (not found) until an import sets it up.
#
# SNAPARC_CRASH_KILLS (default 20) kills each of import and restore
# (SNAPARC_CRASH_RESTORE_KILLS for restore alone); SNAPARC_CRASH_SEED.
set -euo pipefail
snaparc=$(realpath "$1") snapgen=$(realpath "$2") cimport=$(realpath "$3") plugin=$(realpath "$4")
recscmp=$(realpath "$5") data=$6
kills=${SNAPARC_CRASH_KILLS:-20}
rkills=${SNAPARC_CRASH_RESTORE_KILLS:-$kills}
seed=${SNAPARC_CRASH_SEED:-$$}
RANDOM=$seed

tmp=$(mktemp -d)
bgpid=
cleanup() {
  if [ -n "$bgpid" ]; then kill -9 "$bgpid" 2>/dev/null || true; wait "$bgpid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
"$snapgen" "$tmp/gen" --series 30000 --tombstones 10 --exemplars 100 --quiet >/dev/null
gen=$(find "$tmp/gen" -maxdepth 1 -name "chunk_snapshot.*" -type d)

now_ms() { date +%s%3N; }
# a random delay of up to 1.2 x MS milliseconds, as seconds for sleep
delay() { local us=$(( (RANDOM * 32768 + RANDOM) % ($1 * 1200 + 1) )); printf '%d.%06d' $((us / 1000000)) $((us % 1000000)); }

# killed DELAY -- COMMAND...: runs it, SIGKILL after DELAY s; sets $rc (137: killed)
killed() {
  local d=$1; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" &
  bgpid=$!
  sleep "$d"
  kill -9 "$bgpid" 2>/dev/null || true
  rc=0
  { wait "$bgpid"; } 2>/dev/null || rc=$?
  bgpid=
}

names() {   # the snapshots ls lists; none when there is no archive yet (ls exits 3)
  local out r=0
  out=$("$snaparc" ls --json "$1" 2>"$tmp/ls.err") || r=$?
  [ "$r" = 3 ] && return 0
  [ "$r" = 0 ] || { echo "ls failed ($r): $(head -c 300 "$tmp/ls.err")"; return 0; }
  printf '%s\n' "$out" | python3 -c 'import json,sys
for l in sys.stdin:
    if l.strip(): print(json.loads(l)["name"])' || echo "ls output unreadable: $(echo $out | head -c 300)"
}
same_records() {
  rm -rf "$tmp/r"
  "$snaparc" restore --snapshot "$2" "$1" --out "$tmp/r" >/dev/null 2>"$tmp/r.err" &&
    "$recscmp" "$tmp/r" "$3" >/dev/null 2>>"$tmp/r.err" || { echo "  ($2: $(head -c 300 "$tmp/r.err"))" >&2; return 1; }
}

# ---- import ----

import_cmd() {   # import_cmd TOOL ARC SRC NAME
  if [ "$1" = cli ]; then echo "$snaparc" import --name "$4" "$2" "$3"
  else echo "$cimport" "$plugin" "$2" "$3" "$4" 1048576; fi
}
# an import's run time, each way
declare -A took
for tool in cli plugin; do
  for s in gen snap; do
    src=$gen; [ $s = snap ] && src=$snap
    rm -rf "$tmp/t"; t=$(now_ms)
    $(import_cmd $tool "$tmp/t" "$src" x) >/dev/null
    took[$tool-$s]=$(( $(now_ms) - t + 1 ))
  done
done
echo "crash: an import takes ${took[cli-gen]} ms (generated, snaparc import), ${took[plugin-gen]} ms (1 MiB segments)," \
  "${took[cli-snap]} / ${took[plugin-snap]} ms (bundled)"

arc=$tmp/arc
committed=() source=()
t0=$SECONDS
i_killed=0 i_done=0 i_visible=0 i_fresh=0
full_check() {
  for j in "${!committed[@]}"; do
    check "import kill $i: ${committed[$j]} restores other records" \
      same_records "$arc" "${committed[$j]}" "${source[$j]}"
  done
}
for ((i = 1; i <= kills; i++)); do
  if [ $((i % 10)) = 1 ]; then
    [ "$i" -gt 1 ] && full_check
    rm -rf "$arc"; committed=() source=(); i_fresh=$((i_fresh + 1))
  fi
  tool=cli; [ $((RANDOM % 2)) = 0 ] && tool=plugin
  s=gen; src=$gen; [ $((RANDOM % 4)) = 0 ] && s=snap && src=$snap
  name=k$i
  d=$(delay "${took[$tool-$s]}")
  killed "$d" -- $(import_cmd $tool "$arc" "$src" "$name")
  case $rc in
    0) i_done=$((i_done + 1)); may=2 ;;
    137) i_killed=$((i_killed + 1)); may=1 ;;
    *) bad "import kill $i: the import failed before the kill ($rc): $(head -c 300 "$tmp/err")"; may=1 ;;
  esac
  got=$(names "$arc")   # "" also when no archive is there yet (ls exits 3)
  want=$(printf '%s\n' "${committed[@]}")
  want2=$(printf '%s\n' "${committed[@]}" "$name")
  if [ "$got" = "$want2" ]; then
    i_visible=$((i_visible + 1))
    check "import kill $i ($tool, $s, after ${d}s): the killed import's $name restores other records" \
      same_records "$arc" "$name" "$src"
    committed+=("$name"); source+=("$src")
  elif [ "$got" = "$want" ] && [ "$may" = 1 ]; then
    ok
  else
    bad "import kill $i ($tool, $s, after ${d}s, exit $rc): ls shows [$(echo $got)], committed [$(echo "${committed[@]}")]"
  fi
  r=0; "$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || r=$?
  if [ -z "$got" ] && [ ${#committed[@]} = 0 ]; then
    # a fresh archive killed before its first commit is no archive yet
    # (exit 3), or an empty one when its index was set up (exit 0)
    check "import kill $i ($tool, $s, after ${d}s): verify of an empty or no archive exited $r: $(head -c 300 "$tmp/verify")" \
      test "$r" = 0 -o "$r" = 3
  else
    check "import kill $i ($tool, $s, after ${d}s): verify exited $r: $(head -c 300 "$tmp/verify")" test "$r" = 0
  fi
  # the next import
  r=0; "$snaparc" import --name "n$i" "$arc" "$snap" >/dev/null 2>"$tmp/err" || r=$?
  check "import kill $i: the next import exited $r: $(head -c 300 "$tmp/err")" test "$r" = 0
  if [ "$r" = 0 ]; then
    committed+=("n$i"); source+=("$snap")
    check "import kill $i: the next import restores other records" same_records "$arc" "n$i" "$snap"
  fi
done
full_check
echo "crash: import: $kills kills ($i_killed killed, $i_done done first; $i_visible left the snapshot committed;" \
  "$i_fresh into a fresh archive), $((SECONDS - t0)) s"

# ---- restore ----

rm -rf "$arc"
"$snaparc" import --name gen "$arc" "$gen" >/dev/null
"$snaparc" import --name snap "$arc" "$snap" >/dev/null
astate() { (cd "$arc" && find . -type f ! -name lock.mdb -exec sha256sum {} + | sort); }
arc_before=$(astate)
w=$tmp/w
rm -rf "$w"; mkdir -p "$w"
t=$(now_ms); "$snaparc" restore --snapshot gen "$arc" --out "$w/x" >/dev/null; rtook=$(( $(now_ms) - t + 1 )); rm -rf "$w/x"
echo "crash: a restore takes $rtook ms"
t0=$SECONDS
r_killed=0 r_done=0 r_tmp=0 r_old=0 r_new=0 r_kept=0 r_absent=0
for ((i = 1; i <= rkills; i++)); do
  rm -rf "$w"; mkdir -p "$w"
  force=()
  if [ $((i % 2)) = 0 ]; then
    "$snaparc" restore --snapshot snap "$arc" --out "$w/out" >/dev/null
    force=(--force)
  fi
  d=$(delay "$rtook")
  killed "$d" -- "$snaparc" restore "${force[@]}" --snapshot gen "$arc" --out "$w/out"
  what="restore kill $i (${force[*]:-new}, after ${d}s, exit $rc)"
  case $rc in
    0) r_done=$((r_done + 1)) ;;
    137) r_killed=$((r_killed + 1)) ;;
    *) bad "$what: the restore failed before the kill: $(head -c 300 "$tmp/err")" ;;
  esac
  if [ ! -e "$w/out" ]; then
    r_absent=$((r_absent + 1))
    check "$what: OUT is gone${force[*]:+ (there was an older one)}" test ${#force[@]} = 0 -a "$rc" != 0
  elif "$recscmp" "$w/out" "$gen" >/dev/null 2>&1; then
    r_new=$((r_new + 1)); ok
  elif [ ${#force[@]} = 1 ] && [ "$rc" != 0 ] && "$recscmp" "$w/out" "$snap" >/dev/null 2>&1; then
    r_kept=$((r_kept + 1)); ok
  else
    bad "$what: OUT is neither the old one nor the restored snapshot: $("$recscmp" "$w/out" "$gen" 2>&1 | head -c 300)"
  fi
  others=$(cd "$w" && ls -A | grep -v -x out | grep -v -E '^out\.(tmp|old)-[0-9]+$' | tr '\n' ' ' || true)
  check "$what: other entries beside OUT: $others" test -z "$others"
  r_tmp=$((r_tmp + $(cd "$w" && ls -A | grep -c -E '^out\.tmp-[0-9]+$' || true)))
  r_old=$((r_old + $(cd "$w" && ls -A | grep -c -E '^out\.old-[0-9]+$' || true)))
  check "$what: the archive changed" test "$(astate)" = "$arc_before"
  if [ $((i % 5)) = 0 ] || [ "$i" = "$rkills" ]; then
    r=0; "$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || r=$?
    check "$what: verify exited $r: $(head -c 300 "$tmp/verify")" test "$r" = 0
  fi
  r=0; "$snaparc" restore --force --snapshot gen "$arc" --out "$w/out" >/dev/null 2>"$tmp/err" || r=$?
  check "$what: restore --force afterwards exited $r: $(head -c 300 "$tmp/err")" test "$r" = 0
  check "$what: restore --force afterwards: other records" "$recscmp" "$w/out" "$gen" >/dev/null
done
echo "crash: restore: $rkills kills ($r_killed killed, $r_done done first): OUT new $r_new, old kept $r_kept," \
  "absent $r_absent; left behind: $r_tmp OUT.tmp-PID, $r_old OUT.old-PID; $((SECONDS - t0)) s; seed $seed"
echo "crash: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
