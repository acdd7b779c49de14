#!/usr/bin/env bash
# Check `snaparc dump --samples --json` against Prometheus' saved answers.
#
#   test-dump.sh SNAPARC DATADIR
#
# DATADIR holds one chunk_snapshot.*/ and expected/ (make-snapshot.sh output,
# e.g. tests/data/prom-2.42). SNAPARC may also be refdump.py, the reference
# decoder beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
snaparc=${1:?usage: test-dump.sh SNAPARC DATADIR} data=${2:?usage: test-dump.sh SNAPARC DATADIR}
snaps=("$data"/chunk_snapshot.*)
if [ ${#snaps[@]} -ne 1 ] || [ ! -d "${snaps[0]}" ]; then
  echo "test-dump: want exactly one chunk_snapshot.* in $data" >&2; exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$snaparc" dump --samples --json "${snaps[0]}" > "$tmp/dump.jsonl"
python3 "$here/compare.py" dump "$tmp/dump.jsonl" "$data/expected"
