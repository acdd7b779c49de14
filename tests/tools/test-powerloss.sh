#!/usr/bin/env bash
# Power loss: an import (and a restore) stopped at a random durability point
# under powerloss.so (tests/tools/powerloss.c: writes after a file's last
# sync are lost; names are durable when their directory is fsynced, "strict",
# or at any sync, "journal"; some rounds also keep a random half of the
# unsynced 4 KiB blocks, "writeback"), then checked on the disk image the
# shim leaves. Each round, from the archive the last round left (or a fresh
# one, every few rounds):
#
# - a dry run (the shim stops nothing) counts the import's durability points
#   and its disk image after the import returned must hold the snapshot:
#   a committed import survives a power loss;
# - the import is run again from the same state and stopped right before a
#   random point k: the shim's log must be the dry run's first k-1 points;
# - on the disk image: the archive opens, verify passes, ls shows exactly the
#   snapshots committed before (plus the new one only if its index commit
#   was durable), the new one, if there, restores to exactly the source's
#   records, and so does one older snapshot; a fresh archive whose first
#   import never committed may be no archive at all;
# - the tree the stopped process left (a kill -9 at exactly that point) must
#   show the same;
# - a next import into the disk image succeeds (the writer cuts what was
#   written past the committed end) and restores exactly.
# Then a restore --out (over an older one with --force, every other round)
# stopped at a random point: on the image and on the tree left, --out is the
# old content (or absent) or the new one, complete; other entries beside it
# are only OUT.tmp-PID and OUT.old-PID; a restore --force then succeeds.
#
# A fresh archive stopped before its first transaction committed is no
# archive yet (ls exits 3); one whose first import returned is there even in
# the strict model (its names are synced); restore --force swaps the new
# directory in with one rename (RENAME_EXCHANGE), so --out is never missing.
#
#   test-powerloss.sh SNAPARC SNAPGEN CRASH_IMPORT PLUGIN RECS_CMP POWERLOSS_SO DATADIR
# SNAPARC_POWERLOSS_ROUNDS (default 20), SNAPARC_POWERLOSS_SEED,
# SNAPARC_POWERLOSS_NS=strict|journal (default: each round at random).
set -euo pipefail
snaparc=$(realpath "$1") snapgen=$(realpath "$2") cimport=$(realpath "$3") plugin=$(realpath "$4")
recscmp=$(realpath "$5") shim=$(realpath "$6") data=$7
rounds=${SNAPARC_POWERLOSS_ROUNDS:-20}
seed=${SNAPARC_POWERLOSS_SEED:-$$}
RANDOM=$seed

# Under AddressSanitizer its runtime must come first in LD_PRELOAD.
preload=$shim
asan=$(ldd "$snaparc" 2>/dev/null | grep -o '/[^ ]*libasan\.so[^ ]*' | head -1 || true)
if [ -n "$asan" ]; then
  preload="$asan:$shim"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: round $round: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
"$snapgen" "$tmp/gen" --series 8000 --tombstones 10 --exemplars 100 --quiet >/dev/null
gen=$(find "$tmp/gen" -maxdepth 1 -name "chunk_snapshot.*" -type d)

# shim ROOT STATE CRASH_AT NS WRITEBACK LOG -- COMMAND...: runs it under the shim; sets $rc
shim() {
  local root=$1 state=$2 at=$3 ns=$4 wb=$5 log=$6; shift 7
  rm -rf "$state" "$log"; mkdir -p "$state"
  rc=0
  SNAPARC_PL_ROOT=$root SNAPARC_PL_STATE=$state SNAPARC_PL_CRASH_AT=$at SNAPARC_PL_NS=$ns \
    SNAPARC_PL_WRITEBACK=$wb SNAPARC_PL_SEED=$RANDOM SNAPARC_PL_LOG=$log LD_PRELOAD=$preload \
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
}
points() { grep -cv '^- ' "$1" 2>/dev/null || true; }

# names ARC: the snapshots ls lists, one a line ("-" when ARC is no archive)
names() {
  local r=0
  "$snaparc" ls --json "$1" >"$tmp/ls.json" 2>"$tmp/ls.err" || r=$?
  if [ "$r" = 3 ]; then echo "-"; return; fi
  if [ "$r" != 0 ]; then echo "ls-failed-$r: $(head -c 300 "$tmp/ls.err")"; return; fi
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.strip(): print(json.loads(l)["name"])' "$tmp/ls.json"
}

# same_records ARC NAME SRC: restores NAME whole and compares its records with SRC's
same_records() {
  rm -rf "$tmp/r"
  "$snaparc" restore --snapshot "$2" "$1" --out "$tmp/r" >/dev/null 2>"$tmp/r.err" &&
    "$recscmp" "$tmp/r" "$3" >/dev/null 2>>"$tmp/r.err" || { echo "  ($2: $(head -c 300 "$tmp/r.err"))" >&2; return 1; }
}

# check_archive WHAT ARC NEW SRC_NEW MAY: ls is the committed list, plus NEW
# when MAY is 1 (it may be there) or 2 (it must); verify passes; NEW (if
# listed) and one older snapshot restore to exactly their sources' records
check_archive() {
  local what=$1 arc=$2 new=$3 newsrc=$4 may=$5 got want want2
  got=$(names "$arc")
  want=$(printf '%s\n' "${committed[@]}")
  want2=$(printf '%s\n' "${committed[@]}" "$new")
  if [ ${#committed[@]} = 0 ]; then want="-"; fi
  if [ "$got" = "$want2" ] && [ "$may" != 0 ]; then
    ok
    check "$what: $new restores other records" same_records "$arc" "$new" "$newsrc"
  elif [ "$got" = "$want2" ]; then
    bad "$what: the uncommitted $new is listed"
  elif [ "$got" = "$want" ] || { [ "$got" = "" ] && [ ${#committed[@]} = 0 ]; }; then
    if [ "$may" = 2 ]; then bad "$what: the committed $new is missing: $(echo $got)"; else ok; fi
  else
    bad "$what: ls shows [$(echo $got)], committed [$(echo "${committed[@]}")]"
  fi
  if [ "$got" != "-" ] && [ -n "$got" ]; then
    local r=0
    "$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || r=$?
    check "$what: verify exited $r: $(head -c 300 "$tmp/verify")" test "$r" = 0
  fi
  if [ ${#committed[@]} -gt 0 ]; then
    local i=$((RANDOM % ${#committed[@]}))
    check "$what: ${committed[$i]} restores other records" same_records "$arc" "${committed[$i]}" "${source[$i]}"
  fi
}

committed=() source=()
state=$tmp/state
mkdir -p "$state"
t0=$SECONDS
stats_strict=0 stats_journal=0 stats_wb=0 stats_fresh=0 total_points=0 restore_rounds=0
for ((round = 1; round <= rounds; round++)); do
  if [ ${#committed[@]} -ge 5 ]; then
    rm -rf "$state"; mkdir -p "$state"; committed=() source=()
  fi
  fresh=0; [ ${#committed[@]} = 0 ] && fresh=1 && stats_fresh=$((stats_fresh + 1))
  if [ $((RANDOM % 2)) = 0 ]; then src=$gen; else src=$snap; fi
  segs=(65536 1048576 0); seg=${segs[$((RANDOM % 3))]}
  ns=${SNAPARC_POWERLOSS_NS:-}; [ -z "$ns" ] && { if [ $((RANDOM % 2)) = 0 ]; then ns=strict; else ns=journal; fi; }
  wb=0; [ $((RANDOM % 3)) = 0 ] && wb=0.5
  [ "$ns" = strict ] && stats_strict=$((stats_strict + 1)) || stats_journal=$((stats_journal + 1))
  [ "$wb" != 0 ] && stats_wb=$((stats_wb + 1))
  name=r$round

  # ---- the dry run: its points, and the disk after it returned ----
  rm -rf "$tmp/w1"; cp -a "$state" "$tmp/w1"
  shim "$tmp/w1" "$tmp/s1" 0 "$ns" "$wb" "$tmp/log1" -- "$cimport" "$plugin" "$tmp/w1" "$src" "$name" "$seg"
  if [ "$rc" != 0 ]; then bad "the import under the shim failed ($rc): $(head -c 300 "$tmp/err")"; continue; fi
  n=$(points "$tmp/log1")
  total_points=$((total_points + n))
  # the index's commit: its meta page's sync, the last of data.mdb. A writer
  # maps the file writable (MDB_WRITEMAP): the meta page is written in the
  # mapping, then msynced, so stopped right before that msync the new
  # snapshot may be there or not (the shim cannot drop writes to a mapping)
  commit=$(grep -v '^- ' "$tmp/log1" | grep -nE '(dsync-write|msync) index/data.mdb$' | tail -1 | cut -d: -f1 || true)
  check_archive "power loss after the import returned ($ns)" "$tmp/s1/disk" "$name" "$src" 2

  # ---- stopped before point k ----
  k=$((1 + RANDOM % n))
  rm -rf "$tmp/w2"; cp -a "$state" "$tmp/w2"
  shim "$tmp/w2" "$tmp/s2" "$k" "$ns" "$wb" "$tmp/log2" -- "$cimport" "$plugin" "$tmp/w2" "$src" "$name" "$seg"
  check "stopping before point $k of $n: exit $rc: $(head -c 300 "$tmp/err")" test "$rc" = 86
  check "the run stopped before point $k took other points than the dry run" \
    cmp -s <(grep -v '^- ' "$tmp/log2" | grep -v '^crash ' | cut -d' ' -f2-) <(grep -v '^- ' "$tmp/log1" | head -n $((k - 1)) | cut -d' ' -f2-)
  may=0; [ -n "$commit" ] && [ "$k" -gt "$commit" ] && may=2
  [ -n "$commit" ] && [ "$k" = "$commit" ] && grep -v '^- ' "$tmp/log1" | sed -n "${k}p" | grep -q '^[^ ]* msync ' && may=1
  where=$(grep '^crash ' "$tmp/log2" | cut -d' ' -f3- || true)
  check_archive "power loss before point $k/$n ($where, $ns, writeback $wb, segments $seg)" "$tmp/s2/disk" "$name" "$src" "$may"
  check_archive "process stopped before point $k/$n ($where)" "$tmp/w2" "$name" "$src" "$may"

  # ---- the writer recovers on the disk image ----
  # (stopped at or after the index's commit, the image may hold the new
  # snapshot: it is committed, and the next import takes another name)
  if [ "$may" != 0 ] && names "$tmp/s2/disk" | grep -qx "$name"; then
    committed+=("$name"); source+=("$src")
    name=${name}b
  fi
  rc=0
  "$cimport" "$plugin" "$tmp/s2/disk" "$src" "$name" "$seg" >"$tmp/out" 2>"$tmp/err" || rc=$?
  check "the import after the power loss exited $rc: $(head -c 300 "$tmp/err")" test "$rc" = 0
  check_archive "after the next import" "$tmp/s2/disk" "$name" "$src" 2
  if [ "$rc" = 0 ]; then
    committed+=("$name"); source+=("$src")
  fi
  rm -rf "$state"; mv "$tmp/s2/disk" "$state"

  # ---- restore --out stopped at a random point ----
  restore_rounds=$((restore_rounds + 1))
  last=$((${#committed[@]} - 1))
  rsrc=${source[$last]} rname=${committed[$last]}
  rm -rf "$tmp/out-w"; mkdir -p "$tmp/out-w"
  force=()
  old=
  if [ $((round % 2)) = 0 ]; then
    # an older restore in place: the bundled snapshot's records, or none when it is the one restored
    force=(--force)
    "$snapgen" "$tmp/out-w/o" --series 3 --quiet >/dev/null 2>&1
    mv "$(find "$tmp/out-w/o" -maxdepth 1 -name "chunk_snapshot.*" -type d)" "$tmp/out-w/out"; rm -rf "$tmp/out-w/o"
    old=$tmp/old-records; rm -rf "$old"; cp -a "$tmp/out-w/out" "$old"
  fi
  rm -rf "$tmp/out-w1"; cp -a "$tmp/out-w" "$tmp/out-w1"
  shim "$tmp/out-w1" "$tmp/rs1" 0 "$ns" 0 "$tmp/rlog1" -- "$snaparc" restore "${force[@]}" --snapshot "$rname" "$state" --out "$tmp/out-w1/out"
  check "restore under the shim exited $rc: $(head -c 300 "$tmp/err")" test "$rc" = 0
  check "power loss after restore returned: --out is not the snapshot" "$recscmp" "$tmp/rs1/disk/out" "$rsrc" >/dev/null
  n=$(points "$tmp/rlog1")
  k=$((1 + RANDOM % n))
  rm -rf "$tmp/out-w2"; cp -a "$tmp/out-w" "$tmp/out-w2"
  shim "$tmp/out-w2" "$tmp/rs2" "$k" "$ns" "$wb" "$tmp/rlog2" -- "$snaparc" restore "${force[@]}" --snapshot "$rname" "$state" --out "$tmp/out-w2/out"
  check "restore stopped before point $k of $n: exit $rc" test "$rc" = 86
  where=$(grep '^crash ' "$tmp/rlog2" | cut -d' ' -f3- || true)
  for view in "$tmp/rs2/disk" "$tmp/out-w2"; do
    what="restore ${force[*]} stopped before point $k/$n ($where), $([ "$view" = "$tmp/out-w2" ] && echo "process crash" || echo "power loss, $ns, writeback $wb")"
    others=$(cd "$view" && ls -A | grep -v -x out | grep -v -E '^out\.(tmp|old)-[0-9]+$' | tr '\n' ' ' || true)
    check "$what: other entries beside --out: $others" test -z "$others"
    if [ ! -e "$view/out" ]; then
      check "$what: --out is gone but there was one" test -z "$old"
    elif "$recscmp" "$view/out" "$rsrc" >/dev/null 2>&1; then
      ok
    elif [ -n "$old" ] && "$recscmp" "$view/out" "$old" >/dev/null 2>&1; then
      ok
    else
      bad "$what: --out is neither the old directory nor the restored snapshot: $("$recscmp" "$view/out" "$rsrc" 2>&1 | head -c 300)"
    fi
  done
  rc=0
  "$snaparc" restore --force --snapshot "$rname" "$state" --out "$tmp/out-w2/out" >/dev/null 2>"$tmp/err" || rc=$?
  check "restore --force after the crash exited $rc: $(head -c 300 "$tmp/err")" test "$rc" = 0
  check "restore --force after the crash: other records" "$recscmp" "$tmp/out-w2/out" "$rsrc" >/dev/null
done

echo "powerloss: $rounds import rounds ($stats_strict strict, $stats_journal journal, $stats_wb with writeback," \
  "$stats_fresh into a fresh archive; $total_points durability points in the dry runs)," \
  "$restore_rounds restore rounds, seed $seed, $((SECONDS - t0)) s"
echo "powerloss: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
