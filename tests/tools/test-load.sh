#!/usr/bin/env bash
# A load campaign through the command alone: readers look up and restore
# (and some are killed with SIGKILL holding a read transaction) while one
# process imports and another compacts with --keep-last; every answer is the
# truth recorded from a quiet archive, or "no snapshot" for one the
# compactions dropped. At the end the killed readers must not keep
# compaction from deleting the retired segments. See load.py.
#   test-load.sh SNAPARC SNAPGEN DATADIR
# SNAPARC_LOAD_SECONDS (default 30), e.g. 600 for a long run;
# SNAPARC_LOAD_READERS (default 4); SNAPARC_LOAD_SEED repeats the choices.
# Exits 77 when mdb_stat/mdb_dump (lmdb-utils) are missing.
set -euo pipefail
exec python3 "$(dirname "$0")/load.py" "$@"
