#!/usr/bin/env bash
# A read-only archive serves ls, lookup, stat, verify and restore exactly as a
# writable one does, and refuses import and rm with exit 1 and a message
# naming the archive and the reason, leaving every file as it was. Read-only
# in the ways the machine allows:
#   ro-mount    a read-only bind mount of the archive (root, mount permitted)
#   other-user  another user (root: setpriv to nobody) who may read the
#               archive and write only index/lock.mdb, LMDB's reader table
#               (and first not even that: readers then read without it)
#   read-only   the same, as ourselves (not root): chmod a-w but lock.mdb
# and restore writes only where --out says: never through a symlink at
# --out, never outside --out's parent, never another process' temporary,
# and --out DIR/ (a trailing slash) is DIR.
# Exits 77 (skipped) when no read-only way is possible here.
#
# KNOWN bugs (reported in RELIABILITY.md) are checked and print KNOWN FAIL
# without failing the test; one that starts to pass fails it, so that its
# mark here goes.
#   test-permissions.sh SNAPARC DATADIR
set -euo pipefail
snaparc=$(realpath "$1") data=$2
umask 022

# A private mount namespace, when we may have one: mounts vanish with it even
# if the test is killed.
if [ -z "${SNAPARC_TEST_NS:-}" ] && [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
  SNAPARC_TEST_NS=1 exec unshare -m --propagation private "$0" "$@"
fi

tmp=$(mktemp -d)
chmod 755 "$tmp"   # other-user reads the archive from here
mounts=()
cleanup() {
  local m
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0 known_fails=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
not() { ! "$@"; }
# known WHAT CMD...: a check that a reported bug makes fail today
known() {
  local what=$1; shift
  checks=$((checks + 1))
  if "$@"; then
    fails=$((fails + 1)); echo "FAIL: fixed? now passes, drop its KNOWN mark: $what" >&2
  else
    known_fails=$((known_fails + 1)); echo "KNOWN FAIL: $what" >&2
  fi
}

as=()   # the reader of this round: () for ourselves, or a setpriv command
# run CODE PATTERN -- ARGS: snaparc ARGS as $as; 0 when it exits CODE with
# PATTERN in what it printed (out and err in $tmp/out, $tmp/err)
run() {
  local code=$1 pattern=$2; shift 3
  local got=0
  "${as[@]}" "$snaparc" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || got=$?
  [ "$got" = "$code" ] && { [ -z "$pattern" ] || grep -qE -- "$pattern" "$tmp/out" "$tmp/err"; }
}
expect() {
  if run "$@"; then ok; else
    shift 3; bad "${as[*]:+${as[*]} }snaparc $*: exit or message not as wanted: $(head -c 400 "$tmp/err")"
  fi
}

# Entries with their modes and sizes, and the files' checksums (index/lock.mdb
# apart: readers write their slots there, that is what it is for).
state() {
  (cd "$1" && find . -mindepth 1 -printf '%p %M %s\n' | grep -v '^./index/lock.mdb ' | sort &&
    find . -type f ! -path ./index/lock.mdb -exec sha256sum {} + | sort)
}
# A snapshot directory's records as dump prints them, without offsets.
records() { "$snaparc" dump --json "$1" | grep -v '"summary"' | sed 's/"offset":[0-9]*,//'; }

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
name=$(basename "$snap")
# the source in a place every user may read
mkdir "$tmp/src"
cp -r "$snap" "$tmp/src/"
chmod -R a+rX "$tmp/src"
src=$tmp/src/$name
arc=$tmp/arc

# ---- the truth, from the archive while it is writable ----

expect 0 "" -- import "$arc" "$src"
"$snaparc" dump --json "$src" >"$tmp/dump.json"
refs=$(python3 - "$tmp/dump.json" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
series = [r for r in recs if r.get("record") == "series"]
tomb = next(r for r in recs if r.get("record") == "tombstones")
ex = next(r for r in recs if r.get("record") == "exemplars")
print(series[0]["ref"], tomb["intervals"][0]["ref"], ex["exemplars"][-1]["ref"], series[-1]["ref"])
EOF
)
read -r -a refs <<<"$refs"
check "not four refs picked: ${refs[*]}" test "${#refs[@]}" = 4
selector='{__name__=~"app_.*",shard="0"}'
truth() {
  "$snaparc" ls "$arc" >"$tmp/truth.ls"
  "$snaparc" ls --json "$arc" >"$tmp/truth.lsjson"
  "$snaparc" stat --json "$arc" >"$tmp/truth.stat"
  for ref in "${refs[@]}"; do
    "$snaparc" lookup --json --detail --samples "$arc" --ref "$ref" >"$tmp/truth.$ref"
  done
  "$snaparc" lookup --json --samples "$arc" "$selector" >"$tmp/truth.sel"
}
truth
records "$src" >"$tmp/truth.records"

# ---- one read-only round ----

# readonly_round LABEL ARCHIVE OUTDIR: everything a reader does works through
# ARCHIVE as $as; import and rm fail with exit 1 naming ARCHIVE; the files of
# $arc (what ARCHIVE shows) do not change
readonly_round() {
  local label=$1 ro=$2 outdir=$3 before ref
  before=$(state "$arc")
  expect 0 "" -- ls "$ro"
  check "$label: ls differs" cmp -s "$tmp/out" "$tmp/truth.ls"
  expect 0 "" -- ls --json "$ro"
  check "$label: ls --json differs" cmp -s "$tmp/out" "$tmp/truth.lsjson"
  expect 0 "" -- stat --json "$ro"
  check "$label: stat --json differs" cmp -s "$tmp/out" "$tmp/truth.stat"
  for ref in "${refs[@]}"; do
    expect 0 "" -- lookup --json --detail --samples "$ro" --ref "$ref"
    check "$label: lookup --ref $ref differs" cmp -s "$tmp/out" "$tmp/truth.$ref"
  done
  expect 0 "" -- lookup --json --samples "$ro" "$selector"
  check "$label: lookup $selector differs" cmp -s "$tmp/out" "$tmp/truth.sel"
  expect 0 "sound" -- verify "$ro"
  expect 0 "restored 545 series" -- restore "$ro" --out "$outdir/whole"
  check "$label: restored records differ" cmp -s <(records "$outdir/whole") "$tmp/truth.records"
  expect 0 "restored 1 series" -- restore "$ro" --ref "${refs[0]}" --out "$outdir/one"
  expect 1 "$ro.*(Permission denied|Read-only file system)" -- import --name second "$ro" "$src"
  expect 1 "$ro.*(Permission denied|Read-only file system)" -- import "$ro" "$src"
  expect 1 "$ro.*(Permission denied|Read-only file system)" -- rm "$ro" 1
  expect 1 "$ro.*(Permission denied|Read-only file system)" -- rm "$ro" "$name"
  check "$label: the archive's files changed" test "$(state "$arc")" = "$before"
  as=()
  expect 0 "" -- ls --json "$arc"
  check "$label: ls after the refused writes differs" cmp -s "$tmp/out" "$tmp/truth.lsjson"
}

rounds=0 why_not=()

# ro-mount
if [ "$(id -u)" = 0 ] && mkdir "$tmp/ro" && mount --bind "$arc" "$tmp/ro" 2>/dev/null; then
  mounts=("$tmp/ro" "${mounts[@]}")
  mount -o remount,bind,ro "$tmp/ro" 2>/dev/null || true
  if touch "$tmp/ro/probe" 2>/dev/null; then
    rm -f "$tmp/ro/probe"
    why_not+=("ro-mount: the bind mount stays writable")
  else
    mkdir "$tmp/out-ro"
    as=()
    readonly_round ro-mount "$tmp/ro" "$tmp/out-ro"
    rounds=$((rounds + 1))
  fi
else
  why_not+=("ro-mount: $([ "$(id -u)" = 0 ] && echo "mount --bind is not permitted here" || echo "not root")")
fi

# other-user: nobody (65534), who may read $tmp and run the command
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && "${nobody[@]}" true 2>/dev/null &&
   "${nobody[@]}" "$snaparc" --help >/dev/null 2>&1 && "${nobody[@]}" test -r "$arc/index/data.mdb"; then
  mkdir "$tmp/out-nobody"
  chown 65534:65534 "$tmp/out-nobody"
  # the whole archive read-only to nobody: LMDB's lock file too
  as=("${nobody[@]}")
  check "other-user: ls of an archive nobody may only read (index/lock.mdb not writable)" \
    run 0 "" -- ls "$arc"
  as=("${nobody[@]}")
  check "other-user: lookup of an archive nobody may only read" run 0 "" -- lookup "$arc" --ref "${refs[0]}"
  check "other-user: verify of an archive nobody may only read" run 0 "sound" -- verify "$arc"
  as=()
  # LMDB readers take a slot in index/lock.mdb: that one file writable
  chmod 666 "$arc/index/lock.mdb"
  as=("${nobody[@]}")
  readonly_round other-user "$arc" "$tmp/out-nobody"
  chmod 644 "$arc/index/lock.mdb"
  rounds=$((rounds + 1))
elif [ "$(id -u)" = 0 ]; then
  why_not+=("other-user: setpriv to uid 65534 is missing, refused, or cannot run $snaparc")
fi

# read-only: not root, so modes stop us
if [ "$(id -u)" != 0 ]; then
  chmod -R a-w "$arc"
  as=()
  check "read-only: ls of an archive with nothing writable (index/lock.mdb neither)" run 0 "" -- ls "$arc"
  chmod u+w "$arc/index/lock.mdb"
  mkdir "$tmp/out-self"
  as=()
  readonly_round read-only "$arc" "$tmp/out-self"
  chmod -R u+w "$arc"
  rounds=$((rounds + 1))
fi

if [ "$rounds" = 0 ]; then
  echo "permissions: skipped: no way to make the archive read-only here (${why_not[*]})"
  exit 77
fi
for w in "${why_not[@]}"; do echo "permissions: not run: $w"; done

# ---- restore writes only where --out says ----

as=()
arc_before=$(state "$arc")
w=$tmp/w victim=$tmp/victim
mkdir "$w" "$victim"
echo "not yours" >"$victim/f"
victim_before=$(state "$victim")
ln -s "$victim" "$w/link"
leftovers() { ! find "$w" -mindepth 1 -maxdepth 1 \( -name '*.tmp-*' -o -name '*.old-*' \) | grep -q .; }

# a symlink at --out is not followed, with or without --force
expect 6 "$w/link exists" -- restore "$arc" --out "$w/link"
expect 6 "$w/link exists and is not a directory" -- restore --force "$arc" --out "$w/link"
check "restore through a symlink changed its target" test "$(state "$victim")" = "$victim_before"
check "the symlink at --out was replaced" test -L "$w/link"

# a missing parent is not made
check "restore into a missing parent did not fail" not run 0 "" -- restore "$arc" --out "$w/missing/sub"
check "restore into a missing parent: $(cat "$tmp/err")" grep -q "$w/missing/sub.*No such file or directory" "$tmp/err"
check "restore made --out's missing parent" test ! -e "$w/missing"

# a new directory, and only it
expect 0 "" -- restore "$arc" --out "$w/new"
check "restore --out new: no segment in it" test -f "$w/new/00000000"
entries() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tr '\n' ' '; }
check "restore --out new: other entries beside it: $(entries "$w")" test "$(entries "$w")" = "link new "
check "restore --out new: wrong records" cmp -s <(records "$w/new") "$tmp/truth.records"

# --force over a directory holding a symlink out: the link goes, not its target
mkdir "$w/old"
ln -s "$victim" "$w/old/escape"
echo "old" >"$w/old/file"
expect 0 "" -- restore --force "$arc" --out "$w/old"
check "restore --force: the old directory's entries stayed: $(entries "$w/old")" test ! -e "$w/old/escape" -a ! -e "$w/old/file"
check "restore --force: wrong records" cmp -s <(records "$w/old") "$tmp/truth.records"
check "restore --force followed a symlink inside the old directory" test "$(state "$victim")" = "$victim_before"

# another process' temporary (pid 1: never ours) is left alone
mkdir "$w/other.tmp-1"
echo "theirs" >"$w/other.tmp-1/f"
expect 0 "" -- restore "$arc" --out "$w/other"
check "restore removed another process' temporary" test "$(cat "$w/other.tmp-1/f" 2>/dev/null)" = theirs
rm -r "$w/other.tmp-1"
check "restore left temporaries: $(entries "$w")" leftovers

# --out with a trailing slash names the same directory: a new one is made
# there (its temporary beside it, not inside) ...
expect 0 "" -- restore "$arc" --out "$w/slash/"
check "restore --out DIR/: no segment in DIR" test -f "$w/slash/00000000"
check "restore --out DIR/: other entries in DIR: $(entries "$w/slash")" test "$(entries "$w/slash")" = "00000000 "
check "restore --out DIR/: wrong records" cmp -s <(records "$w/slash") "$tmp/truth.records"
expect 6 "$w/slash exists" -- restore "$arc" --out "$w/slash//"
# ... an old one is replaced with --force
rm -rf "$w/slash"
mkdir "$w/slash"
echo "old" >"$w/slash/file"
expect 0 "" -- restore --force "$arc" --out "$w/slash/"
check "restore --force --out DIR/: the old entries stayed, or more came: $(entries "$w/slash")" \
  test "$(entries "$w/slash")" = "00000000 "
check "restore --force --out DIR/: wrong records" cmp -s <(records "$w/slash") "$tmp/truth.records"
check "restore --force --out DIR/ left temporaries: $(entries "$w")" leftovers
# ... and a symlink to a directory elsewhere is refused, as without the
# slash, and nothing is written in its target (which a temporary made
# there and removed again would show in the target's mtime)
victim_mtime=$(stat -c %y "$victim")
expect 6 "$w/link exists and is not a directory" -- restore --force "$arc" --out "$w/link/"
expect 6 "$w/link exists" -- restore "$arc" --out "$w/link/"
check "restore --force --out LINK/ wrote in the link's target" test "$(stat -c %y "$victim")" = "$victim_mtime"
check "restore --force --out LINK/ replaced the symlink" test -L "$w/link"
# ... nor tried to, where the target may not be written
ro_victim=()
if [ "$(id -u)" = 0 ] && mkdir "$tmp/rov" && mount --bind "$victim" "$tmp/rov" 2>/dev/null &&
   mount -o remount,bind,ro "$tmp/rov" 2>/dev/null && ! touch "$tmp/rov/probe" 2>/dev/null; then
  mounts=("$tmp/rov" "${mounts[@]}")
  ro_victim=("$tmp/rov")
elif [ "$(id -u)" != 0 ] && mkdir "$tmp/rov" && chmod 555 "$tmp/rov"; then
  ro_victim=("$tmp/rov")
fi
if [ "${#ro_victim[@]}" = 1 ]; then
  ln -s "${ro_victim[0]}" "$w/rolink"
  expect 6 "$w/rolink exists and is not a directory" -- restore --force "$arc" --out "$w/rolink/"
  rm -f "$w/rolink"
fi
rm -rf "$w/slash"
check "restore changed a directory not asked for" test "$(state "$victim")" = "$victim_before"
check "restore left temporaries: $(entries "$w")" leftovers
check "restore changed the archive" test "$(state "$arc")" = "$arc_before"

echo "permissions: $((checks - fails)) passed, $fails failed ($known_fails known failures; $rounds read-only ways)"
[ "$fails" -eq 0 ]
