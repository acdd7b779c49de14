#!/usr/bin/env bash
# Builds snaparc and runs every test: unit tests, command-line tests and the
# round trips through a real Prometheus (build/), all of it again under
# AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), and a short
# run of every fuzz target (build-fuzz/). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
passed=0 failed=0
run_ctest() {
  local dir=$1 log
  log=$(mktemp)
  if ctest --test-dir "$dir" --output-on-failure -j"$jobs" 2>&1 | tee "$log"; then :; fi
  local total fails
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  fails=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
  rm -f "$log"
  if [ -z "$total" ]; then echo "check: ctest in $dir ran no tests" >&2; failed=$((failed + 1)); return; fi
  passed=$((passed + total - fails)); failed=$((failed + fails))
}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
run_ctest build
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSNAPARC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build-asan
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSNAPARC_FUZZ=ON -DSNAPARC_TESTS=OFF \
  -DSNAPARC_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$jobs"
run_ctest build-fuzz
echo
echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
