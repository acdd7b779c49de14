#!/usr/bin/env bash
# The full live round trip: make a fresh snapshot with the installed Prometheus,
# then run test-dump.sh and test-rewrite.sh on it. About 30 s.
#
#   test-live.sh SNAPARC REWRITE
#
# SNAPARC may be refdump.py (beside this script) to check the harness itself.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
snaparc=${1:?usage: test-live.sh SNAPARC REWRITE} rewrite=${2:?usage: test-live.sh SNAPARC REWRITE}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/make-snapshot.sh" "$tmp/snap" --series 300 --gauges 50 --histograms 5 --flaky 4 \
    --scrapes 12 --exemplars --long-label 40000 --delete 'app_requests_total{shard="3"}' \
    --query '{__name__=~".+"}' --query 'app_requests_total{shard="3"}' \
    --query 'app_flaky' --query 'app_long_label' >&2
status=0
echo "== test-dump"
"$here/test-dump.sh" "$snaparc" "$tmp/snap" || status=1
echo "== test-rewrite"
"$here/test-rewrite.sh" "$rewrite" "$snaparc" "$tmp/snap" || status=1
exit $status
