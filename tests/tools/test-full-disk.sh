#!/usr/bin/env bash
# snaparc import on a full file system: an archive of the bundled snapshot
# on a small tmpfs (else a loop-mounted ext4 image), the rest of it taken by
# a filler file; then a generated snapshot imported while the filler gives
# back STEP KiB at a time until it fits. Every failed import exits 1 with a
# message naming the file it could not write and "No space left on device",
# and leaves the archive as it was: `ls` prints the same, its segments hold
# the same bytes, verify finds it sound and a lookup answers the same. Then
# the filler goes and an import succeeds and verifies.
# Exits 77 (skipped) when no small file system can be mounted here.
# A commit of the index that runs out of space must say so too (LMDB itself
# reports the short write as EIO), and so must the label postings' unnamed
# temporary file in the archive's directory (named by the directory and offset). Then a compaction, likewise: with the
# disk full it fails with ENOSPC naming the file and changes nothing, and
# with room it succeeds (a rewrite of the index file that finds no room
# after the compaction committed is skipped, not an error).
#   test-full-disk.sh SNAPARC SNAPGEN DATADIR
# SNAPARC_FULL_DISK_STEP_KB (default 32) sets the step; SNAPARC_FULL_DISK_FS=ext4
# goes straight to the ext4 image.
set -euo pipefail
snaparc=$(realpath "$1") snapgen=$(realpath "$2") data=$3
step=${SNAPARC_FULL_DISK_STEP_KB:-32}
size_mb=8

# A private mount namespace when we may have one (root, or a user namespace
# mapping us to root): the mount goes with it even if the test is killed.
if [ -z "${SNAPARC_TEST_NS:-}" ]; then
  if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
    SNAPARC_TEST_NS=1 exec unshare -m --propagation private "$0" "$@"
  elif [ "$(id -u)" != 0 ] && unshare -rm true 2>/dev/null; then
    SNAPARC_TEST_NS=1 exec unshare -rm "$0" "$@"
  fi
fi

tmp=$(mktemp -d)
fs=$tmp/fs
mounted=
cleanup() {
  if [ -n "$mounted" ]; then umount "$fs" 2>/dev/null || umount -l "$fs" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# ---- a small file system ----

mkdir "$fs"
why=
if [ "${SNAPARC_FULL_DISK_FS:-tmpfs}" = tmpfs ] &&
   mount -t tmpfs -o size=${size_mb}m,mode=755 tmpfs "$fs" 2>"$tmp/mount.err"; then
  mounted=tmpfs
else
  why="tmpfs: $(tr '\n' ' ' 2>/dev/null <"$tmp/mount.err" | head -c 200 || true)"
  if command -v mkfs.ext4 >/dev/null && truncate -s $((size_mb + 4))M "$tmp/fs.img" &&
     mkfs.ext4 -q -F -m 0 "$tmp/fs.img" 2>"$tmp/mount.err" &&
     mount -o loop "$tmp/fs.img" "$fs" 2>>"$tmp/mount.err"; then
    mounted=ext4
  else
    why="$why; loop ext4: $(tr '\n' ' ' <"$tmp/mount.err" | head -c 200)"
  fi
fi
if [ -z "$mounted" ]; then
  echo "full-disk: skipped: cannot mount a small file system here ($why)"
  exit 77
fi

snap=$(find "$data" -maxdepth 1 -name "chunk_snapshot.*" -type d | sort | head -1)
arc=$fs/arc
"$snaparc" import "$arc" "$snap" >/dev/null
# 5,000 series: about 2.5 MB, a third of the file system
"$snapgen" "$tmp/gen" --series 5000 --tombstones 10 --exemplars 100 --quiet >/dev/null
gen=$(find "$tmp/gen" -maxdepth 1 -name "chunk_snapshot.*" -type d)
# a series with tombstones: its answer has the most parts
ref=$("$snaparc" dump --json "$snap" | python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin]
print(next(r for r in recs if r.get("record") == "tombstones")["intervals"][0]["ref"])')

segments() { (cd "$arc/segments" && find . -type f -printf '%p %s\n' | sort && sha256sum ./* | sort); }
"$snaparc" ls "$arc" >"$tmp/ls.before"
"$snaparc" lookup --json --detail --samples "$arc" --ref "$ref" >"$tmp/lookup.before"
segs_before=$(segments)

# ---- fill it, then give back STEP KiB at a time ----

dd if=/dev/zero of="$fs/filler" bs=64k 2>/dev/null || true
check "the filler did not fill the file system" test "$(df -Pk "$fs" | awk 'NR == 2 { print $4 }')" -lt 64
full=$(stat -c %s "$fs/filler")
free=0 imported=0 failed=0 at_segments=0 at_index=0 at_sort=0
while [ "$free" -le $((size_mb * 1024)) ]; do
  truncate -s $((full > free * 1024 ? full - free * 1024 : 0)) "$fs/filler"
  rc=0
  "$snaparc" import --name "gen-$free" "$arc" "$gen" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [ "$rc" = 0 ]; then
    imported=1
    break
  fi
  failed=$((failed + 1))
  msg=$(head -c 400 "$tmp/err")
  check "import with $free KiB free exited $rc, not 1: $msg" test "$rc" = 1
  if grep -qE "$arc/(segments/[0-9]{8}|index)(/[a-z.]+)?: [a-z ]+: No space left on device" "$tmp/err"; then
    ok
    if grep -q "$arc/index" "$tmp/err"; then at_index=$((at_index + 1)); else at_segments=$((at_segments + 1)); fi
  elif grep -qE "$arc: temporary file: offset [0-9]+: No space left on device" "$tmp/err"; then
    ok
    at_sort=$((at_sort + 1))
  else
    bad "import with $free KiB free: the message names no file of the archive or not ENOSPC: $msg"
  fi
  # the archive as it was
  "$snaparc" ls "$arc" >"$tmp/ls.after" 2>&1 || true
  check "ls changed after the import failed with $free KiB free" cmp -s "$tmp/ls.before" "$tmp/ls.after"
  check "segments changed after the import failed with $free KiB free" test "$(segments)" = "$segs_before"
  rc=0
  "$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || rc=$?
  check "verify after the import failed with $free KiB free exited $rc: $(head -c 400 "$tmp/verify")" test "$rc" = 0
  "$snaparc" lookup --json --detail --samples "$arc" --ref "$ref" >"$tmp/lookup.after" 2>&1 || true
  check "lookup --ref $ref changed after the import failed with $free KiB free" \
    cmp -s "$tmp/lookup.before" "$tmp/lookup.after"
  free=$((free + step))
done
check "the import never fitted, even with $((free - step)) KiB free" test "$imported" = 1
check "no import failed: the filler left too much room" test "$failed" -gt 0

# ---- space back: imports work again ----

rm -f "$fs/filler"
rc=0
"$snaparc" import --name after "$arc" "$gen" >"$tmp/out" 2>"$tmp/err" || rc=$?
check "import after freeing space exited $rc: $(head -c 400 "$tmp/err")" test "$rc" = 0
rc=0
"$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || rc=$?
check "verify after freeing space exited $rc: $(head -c 400 "$tmp/verify")" test "$rc" = 0
"$snaparc" ls --json "$arc" >"$tmp/ls.json"
check "ls after freeing space does not list 3 snapshots: $(cat "$tmp/ls.json")" test "$(grep -c '"id"' "$tmp/ls.json")" = 3
check "lookup in the last snapshot failed" "$snaparc" lookup --snapshot after "$arc" --ref 1 >/dev/null
"$snaparc" lookup --snapshot 1 --json --detail --samples "$arc" --ref "$ref" >"$tmp/lookup.after"
check "lookup --ref $ref in snapshot 1 changed" cmp -s "$tmp/lookup.before" "$tmp/lookup.after"

# ---- compaction on a full disk: it fails cleanly until it fits ----
# (--keep-last 1: the new layout, the last snapshot, about 2.5 MB, must fit
# beside the old one)

"$snaparc" ls "$arc" >"$tmp/ls.before"
"$snaparc" lookup --snapshot after --json --detail --samples "$arc" --ref 1 >"$tmp/lookup.before"
segs_before=$(segments)
dd if=/dev/zero of="$fs/filler" bs=64k 2>/dev/null || true
full=$(stat -c %s "$fs/filler")
free=0 compacted=0 cfailed=0
while [ "$free" -le $((size_mb * 1024)) ]; do
  truncate -s $((full > free * 1024 ? full - free * 1024 : 0)) "$fs/filler"
  rc=0
  "$snaparc" compact --keep-last 1 "$arc" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [ "$rc" = 0 ]; then
    compacted=1
    break
  fi
  cfailed=$((cfailed + 1))
  msg=$(head -c 400 "$tmp/err")
  check "compact with $free KiB free exited $rc, not 1: $msg" test "$rc" = 1
  check "compact with $free KiB free: the message names no file of the archive or not ENOSPC: $msg" \
    grep -qE "$arc/(segments|index)[^:]*: .*No space left on device" "$tmp/err"
  "$snaparc" ls "$arc" >"$tmp/ls.after" 2>&1 || true
  check "ls changed after compact failed with $free KiB free" cmp -s "$tmp/ls.before" "$tmp/ls.after"
  check "segments changed after compact failed with $free KiB free" test "$(segments)" = "$segs_before"
  rc=0
  "$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || rc=$?
  check "verify after compact failed with $free KiB free exited $rc: $(head -c 400 "$tmp/verify")" test "$rc" = 0
  "$snaparc" lookup --snapshot after --json --detail --samples "$arc" --ref 1 >"$tmp/lookup.after" 2>&1 || true
  check "lookup --ref 1 changed after compact failed with $free KiB free" \
    cmp -s "$tmp/lookup.before" "$tmp/lookup.after"
  free=$((free + step * 8))
done
rm -f "$fs/filler"
check "compact never fitted" test "$compacted" = 1
check "no compaction failed: the filler left too much room" test "$cfailed" -gt 0
rc=0
"$snaparc" verify "$arc" >"$tmp/verify" 2>&1 || rc=$?
check "verify after the compaction exited $rc: $(head -c 400 "$tmp/verify")" test "$rc" = 0
"$snaparc" ls --json "$arc" >"$tmp/ls.json"
check "ls after compact --keep-last 1 does not list the last snapshot alone: $(cat "$tmp/ls.json")" \
  test "$(grep -c '"id"' "$tmp/ls.json")" = 1 -a "$(grep -c '"name":"after"' "$tmp/ls.json")" = 1
"$snaparc" lookup --snapshot after --json --detail --samples "$arc" --ref 1 >"$tmp/lookup.after"
# the record, not how it is stored: compaction stores a series recoded
no_stored() { sed 's/"stored_bytes":[0-9]*,//' "$1"; }
check "lookup --ref 1 in the last snapshot changed by the compaction" \
  cmp -s <(no_stored "$tmp/lookup.before") <(no_stored "$tmp/lookup.after")

echo "full-disk ($mounted, ${size_mb} MiB, steps of $step KiB): $failed imports failed" \
  "($at_segments writing segments, $at_sort the temporary file, $at_index committing the index), then one fitted;" \
  "$cfailed compactions failed (steps of $((step * 8)) KiB), then one fitted"
echo "full-disk: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
