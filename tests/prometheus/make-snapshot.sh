#!/usr/bin/env bash
# Make a real chunk snapshot with Debian's Prometheus (2.42) and save its answers.
#
#   make-snapshot.sh OUTDIR [--series N] [--gauges N] [--histograms N] [--flaky N]
#                    [--scrapes N] [--rounds K] [--long-label BYTES] [--exemplars]
#                    [--delete 'SELECTOR'] [--query 'SELECTOR']...
#
# Runs target.py and Prometheus on loopback, lets Prometheus scrape every second
# for N seconds, optionally deletes the middle third of that time range for
# SELECTOR (this leaves tombstones; it happens before the snapshot), asks
# Prometheus for each --query as SELECTOR[1h] at time t (the end of the scrapes),
# then stops Prometheus so that it writes its chunk snapshot on shutdown.
# With --rounds K it restarts Prometheus on the same data directory K-1 more
# times (it loads its own snapshot and scrapes on): K consecutive snapshots.
#
# OUTDIR receives, for round 1 (round-02/, round-03/... for later rounds):
#   chunk_snapshot.NNNNNN.MMMMMMMMMM/   the snapshot exactly as Prometheus wrote it
#   expected/queries.txt                t TAB selector, one a line
#   expected/NN.json                    Prometheus' answer to line NN (from 00) of queries.txt
#   expected/exemplars.txt, .json       with --exemplars: START TAB END TAB selector and
#                                       Prometheus' query_exemplars answer for it
#   expected/delete.txt                 with --delete: START TAB END TAB selector (seconds)
#   prometheus.log
# and prints the snapshot directories it wrote. OUTDIR must be new or empty.
# The snapshot is taken moments after t and may hold later samples. A snapshot
# holds only each series' open head chunk, so for compare.py dump keep N under
# ~100 (Prometheus cuts a chunk at ~120 samples; it also cuts one at every even
# UTC hour, which this script waits out) and use round 1 only: the first append
# after a restart cuts a new chunk, so a round-2 answer also holds round-1
# samples that live in chunks_head/ and not in the round-2 snapshot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
out=${1:?usage: make-snapshot.sh OUTDIR [options]}; shift
series=2000 gauges=500 hist=20 flaky=0 scrapes=20 rounds=1 long=0 exemplars="" delete="" queries=()
while [ $# -gt 0 ]; do
  case $1 in
    --series) series=$2; shift 2;; --gauges) gauges=$2; shift 2;;
    --histograms) hist=$2; shift 2;; --flaky) flaky=$2; shift 2;;
    --scrapes) scrapes=$2; shift 2;; --rounds) rounds=$2; shift 2;;
    --long-label) long=$2; shift 2;; --exemplars) exemplars=--exemplars; shift;;
    --delete) delete=$2; shift 2;; --query) queries+=("$2"); shift 2;;
    *) echo "make-snapshot.sh: unknown option $1" >&2; exit 2;;
  esac
done
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "make-snapshot.sh: $out exists and is not empty" >&2; exit 2
fi
ensure_prometheus

work=$(mktemp -d); tpid="" ppid_=""
cleanup() { stop_pid "$ppid_" 60 || true; stop_pid "$tpid" 5 || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# A head chunk is cut at every even UTC hour; a run across one would leave
# early samples outside the snapshot. Wait for the boundary to pass (bounded
# by the run's own length).
budget=$(( rounds * (scrapes + 20) )); now=$(date +%s); next=$(( (now / 7200 + 1) * 7200 ))
if [ $(( now + budget )) -ge "$next" ]; then
  echo "make-snapshot: waiting $(( next - now + 1 )) s for the 2-hour chunk boundary to pass" >&2
  sleep $(( next - now + 1 ))
fi

tport=$(free_port); pport=$(free_port)
$PY "$here/target.py" --port "$tport" --series "$series" --gauges "$gauges" --histograms "$hist" \
    --flaky "$flaky" --long-label "$long" $exemplars & tpid=$!
# wait for the port without scraping (a GET would count as a scrape)
for _ in $(seq 1 50); do
  $PY -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$tport" 2>/dev/null && break
  kill -0 "$tpid" || { echo "target.py exited" >&2; exit 1; }
  sleep 0.2
done
cat > "$work/prom.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1h}
scrape_configs:
  - job_name: synthetic
    static_configs: [{targets: ['127.0.0.1:$tport']}]
YML
api="http://127.0.0.1:$pport/api/v1"
first_start=""
for round in $(seq 1 "$rounds"); do
  dest=$out; [ "$round" -gt 1 ] && dest=$out/round-$(printf %02d "$round")
  prometheus --config.file="$work/prom.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$pport" --web.enable-admin-api \
    --enable-feature=memory-snapshot-on-shutdown,exemplar-storage >"$work/prometheus.log" 2>&1 & ppid_=$!
  wait_http "http://127.0.0.1:$pport/-/ready" "$ppid_" 30 || { cat "$work/prometheus.log" >&2; exit 1; }
  # Prometheus' service discovery hands the target over only after ~5 s:
  # start the clock at the first successful scrape of this round. (timestamp()
  # gives a sample's own time only when applied directly to a selector.)
  ready=$(date +%s.%3N) scraped=""
  for _ in $(seq 1 150); do
    http_get "$api/query?query=$(urlenc "timestamp(up) > $ready and on(job, instance) up == 1")" | grep -q '"value"' && { scraped=1; break; }
    sleep 0.2
  done
  [ -n "$scraped" ] || { echo "make-snapshot: no scrape within 30 s" >&2; cat "$work/prometheus.log" >&2; exit 1; }
  start=$(date +%s); : "${first_start:=$start}"
  sleep "$scrapes" & wait $!
  end=$(date +%s)
  mkdir -p "$dest/expected"
  if [ -n "$delete" ] && [ "$round" -eq 1 ]; then
    third=$(( (end - start) / 3 ))
    http_post "$api/admin/tsdb/delete_series?match%5B%5D=$(urlenc "$delete")&start=$((start + third))&end=$((end - third))"
    printf '%s\t%s\t%s\n' "$((start + third))" "$((end - third))" "$delete" > "$dest/expected/delete.txt"
  fi
  # answers as of time t; give every scrape up to t time to be ingested
  t=$end; sleep 2; : > "$dest/expected/queries.txt"
  i=0
  for q in ${queries[@]+"${queries[@]}"}; do
    http_get "$api/query?query=$(urlenc "${q}[1h]")&time=$t" > "$dest/expected/$(printf %02d $i).json"
    printf '%s\t%s\n' "$t" "$q" >> "$dest/expected/queries.txt"; i=$((i + 1))
  done
  if [ -n "$exemplars" ]; then
    esel='{__name__=~".+"}' estart=$((first_start - 60))
    http_get "$api/query_exemplars?query=$(urlenc "$esel")&start=$estart&end=$t" > "$dest/expected/exemplars.json"
    printf '%s\t%s\t%s\n' "$estart" "$t" "$esel" > "$dest/expected/exemplars.txt"
  fi
  stop_pid "$ppid_" 60 || { cat "$work/prometheus.log" >&2; exit 1; }
  ppid_=""
  snap=""
  for d in "$work"/data/chunk_snapshot.*; do
    case $d in *.tmp|*'*') ;; *) snap=$d;; esac  # the glob sorts; keep the last
  done
  if [ -z "$snap" ] || ! grep -q 'chunk snapshot complete' "$work/prometheus.log"; then
    echo "make-snapshot: Prometheus wrote no chunk snapshot" >&2; cat "$work/prometheus.log" >&2; exit 1
  fi
  cp -r "$snap" "$dest/"
  cp "$work/prometheus.log" "$dest/"
  echo "$dest/$(basename "$snap")"
done
