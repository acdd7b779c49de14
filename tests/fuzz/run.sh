#!/bin/sh
# run.sh BUILD_DIR SECONDS [TARGET...]: runs each fuzz target (fuzz_wal,
# fuzz_record, fuzz_recode, fuzz_select, fuzz_wal_push, fuzz_lz4dict, fuzz_xordelta, fuzz_snappy_small and fuzz_import by
# default) for SECONDS, seeded by make-corpus.sh (fuzz_select starts from
# nothing), and exits non-zero if any of them found a crash, a leak, a
# timeout or hit a limit. fuzz_lz4dict runs with inputs of at most 128 KiB
# and -malloc_limit_mb=128: its payloads claim up to 2^39 bytes, and a
# decoder that believed a claim past what 128 KiB of LZ4 can hold (32 MiB)
# would allocate up to WAL_MAX_RECORD (256 MiB) and hit the limit.
# fuzz_xordelta runs with -malloc_limit_mb=64 for the same reason: an
# append delta's stated bit count and padding must never size a buffer
# past what the base record and the payload hold.
#
# BUILD_DIR is a build tree configured with -DSNAPARC_FUZZ=ON. Corpora go to
# a temporary directory that is removed at the end, unless
# SNAPARC_FUZZ_CORPUS names a directory to keep them in (one subdirectory
# per target, grown run after run: useful for long campaigns). Crashing
# inputs and the logs of failed targets go to $SNAPARC_FUZZ_ARTIFACTS
# (default BUILD_DIR/fuzz-artifacts). SNAPARC_FUZZ_FLAGS adds libFuzzer
# flags (e.g. "-workers=4 -jobs=4").
#
#   ctest's fuzz/short:  run.sh BUILD_DIR 15
#   a campaign:          SNAPARC_FUZZ_CORPUS=$HOME/snaparc-corpus run.sh build-fuzz 3600
#   one target, longer:  run.sh build-fuzz 300 fuzz_import
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
	exit 2
fi
build=$(cd "$1" && pwd) || exit 2
seconds=$2
shift 2
targets=${*:-fuzz_wal fuzz_record fuzz_recode fuzz_select fuzz_wal_push fuzz_lz4dict fuzz_xordelta fuzz_snappy_small fuzz_import}
here=$(cd "$(dirname "$0")" && pwd)

bindir=$build/tests/fuzz
[ -x "$bindir/fuzz_wal" ] || bindir=$build
artifacts=${SNAPARC_FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
mkdir -p "$artifacts" || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/snaparc-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# UBSan reports come with a stack, like ASan's
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS
trap 'exit 130' INT TERM

"$here/make-corpus.sh" "$build" "$tmp/seeds" || exit 1

passed=0
failed=0
for t in $targets; do
	bin=$bindir/$t
	log=$tmp/$t.log
	if [ ! -x "$bin" ]; then
		echo "$t: FAILED: no $bin (configure with CC=clang -DSNAPARC_FUZZ=ON and build)"
		failed=$((failed + 1))
		continue
	fi
	corpus=$tmp/corpus/$t
	[ -z "${SNAPARC_FUZZ_CORPUS:-}" ] || corpus=$SNAPARC_FUZZ_CORPUS/$t
	mkdir -p "$corpus" "$tmp/seeds/$t"
	limits="-rss_limit_mb=2048 -malloc_limit_mb=512"
	case $t in
	fuzz_lz4dict) limits="-rss_limit_mb=1024 -malloc_limit_mb=128 -max_len=131072" ;;
	fuzz_xordelta) limits="-rss_limit_mb=1024 -malloc_limit_mb=64 -max_len=131072" ;;
	fuzz_recode) limits="-rss_limit_mb=1024 -malloc_limit_mb=64 -max_len=131072" ;;
	esac
	# The first directory receives new inputs; the seeds are only read.
	# shellcheck disable=SC2086  # limits and SNAPARC_FUZZ_FLAGS are lists of flags
	"$bin" -max_total_time="$seconds" $limits \
		-timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
		${SNAPARC_FUZZ_FLAGS:-} "$corpus" "$tmp/seeds/$t" > "$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	size=$(find "$corpus" -type f | wc -l)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ] && ! grep -q '^==[0-9]*== *ERROR' "$log"; then
		echo "$t: passed: ${execs} executions in ${seconds} s (${rate}/s), corpus of $size new inputs"
		passed=$((passed + 1))
	else
		cp "$log" "$artifacts/$t.log"
		echo "$t: FAILED (exit $rc) after ${execs:-?} executions; log in $artifacts/$t.log:"
		sed -n '/^==[0-9]*== *ERROR\|runtime error:/,/^SUMMARY/p' "$log" | head -n 60
		grep -E 'Test unit written|^Base64' "$log"
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
