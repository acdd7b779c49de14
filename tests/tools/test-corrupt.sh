#!/usr/bin/env bash
# A corruption campaign through the command alone: bits flipped (and files
# cut short) in copies of an archive of the bundled snapshot; every lookup
# gives the truth or fails with exit 4 or 1 naming the archive, never other
# data; verify fails whenever a stored record was damaged. See corrupt.py.
#   test-corrupt.sh SNAPARC DATADIR
# SNAPARC_CORRUPT_ROUNDS (default 20) rounds, e.g. 1000 for a long run;
# SNAPARC_CORRUPT_SEED repeats a campaign.
set -euo pipefail
exec python3 "$(dirname "$0")/corrupt.py" "$@"
