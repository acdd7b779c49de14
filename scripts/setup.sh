#!/usr/bin/env bash
# Installs what is missing, builds snaparc, and runs its main job on the
# bundled real Prometheus 2.42 snapshot: archives it, lists the archive, and
# gives one series back with its samples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
snaparc=build/tools/snaparc
archive=build/demo-archive
rm -rf "$archive"
run() { echo; echo "\$ $*"; "$@"; }
run "$snaparc" import "$archive" tests/data/prom-2.42
run "$snaparc" ls "$archive"
run "$snaparc" stat "$archive"
run "$snaparc" lookup --samples "$archive" \
  'app_requests_total{code="200",instance="127.0.0.1:45825",job="synthetic",method="GET",path="/api/v1/item/3",shard="3"}'
