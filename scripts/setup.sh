#!/usr/bin/env bash
# Installs what is missing, builds snaparc, and dumps the bundled real
# Prometheus 2.42 snapshot (its last records and the summary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "$ build/tools/snaparc dump tests/data/prom-2.42 | tail -n 24"
build/tools/snaparc dump tests/data/prom-2.42 | tail -n 24
