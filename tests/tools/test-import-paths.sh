#!/usr/bin/env bash
# Both import paths give back the snapshot's records byte for byte: the first
# import of an archive (held back while its dictionary is trained) and a
# later one (records compressed on the reading thread with the archive's
# final dictionary), through verify and a whole restore.
#   test-import-paths.sh SNAPARC SNAPGEN
set -euo pipefail
snaparc=$1 snapgen=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
check() { checks=$((checks + 1)); if ! "$@"; then fails=$((fails + 1)); echo "FAIL: $*" >&2; fi; }
records() { "$snaparc" dump --json "$1" | grep -v '"summary"' | sed 's/"offset":[0-9]*,//'; }

# 20,000 series: over the 2 MiB the first import trains its 64 KiB dictionary on
"$snapgen" "$tmp/gen" --series 20000 --tombstones 20 --exemplars 500 --quiet >/dev/null
snap=$(ls -d "$tmp"/gen/chunk_snapshot.*)
"$snaparc" import --name first "$tmp/arc" "$snap" >/dev/null
"$snaparc" import --name second "$tmp/arc" "$snap" >/dev/null
check "$snaparc" verify "$tmp/arc"
records "$snap" > "$tmp/want"
for name in first second; do
  "$snaparc" restore --snapshot "$name" "$tmp/arc" --out "$tmp/out-$name" >/dev/null
  records "$tmp/out-$name" > "$tmp/got-$name"
  check cmp -s "$tmp/want" "$tmp/got-$name"
done
check test "$(wc -l < "$tmp/want")" -gt 20000
echo "import-paths: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
