#!/usr/bin/env python3
"""snaparc dump against an independent decoder.

  dump-oracle.py SNAPARC SNAPSHOT_DIR

Runs `snaparc dump --json --samples` and tests/prometheus/refdump.py (a
from-scratch Python reader of the same format) on one snapshot and checks
that every record decodes to the same fields, samples and labels. Segment
offsets are left out: they are the same bytes, but are also checked to be
increasing within each segment.
"""
import json
import os
import subprocess
import sys

snaparc, snap = sys.argv[1], sys.argv[2]
ref = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "prometheus", "refdump.py")
ours = [json.loads(l) for l in subprocess.run([snaparc, "dump", "--json", "--samples", snap],
                                              check=True, capture_output=True, text=True).stdout.splitlines()]
theirs = [json.loads(l) for l in subprocess.run([sys.executable, ref, snap],
                                                check=True, capture_output=True, text=True).stdout.splitlines()]
ours_recs = [r for r in ours if "record" in r]
theirs_recs = [r for r in theirs if "record" in r]
fail = 0
if len(ours_recs) != len(theirs_recs) or not ours_recs:
    print(f"dump-oracle: {len(ours_recs)} records from snaparc, {len(theirs_recs)} from refdump.py")
    fail += 1
strip = lambda r: {k: v for k, v in r.items() if k not in ("offset", "segment")}
for i, (a, b) in enumerate(zip(ours_recs, theirs_recs)):
    if strip(a) != strip(b):
        fail += 1
        if fail <= 3:
            keys = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
            print(f"record {i}: fields {keys} differ:\n  snaparc {str(a)[:300]}\n  refdump {str(b)[:300]}")
last = (None, -1)
for r in ours_recs:
    if r["segment"] == last[0] and r["offset"] <= last[1]:
        fail += 1
        print(f"offsets not increasing at {r['segment']}@{r['offset']}")
    last = (r["segment"], r["offset"])
summary = ours[-1].get("summary", {})
for k in ("series", "tombstone_intervals", "exemplars"):
    if summary.get(k) != theirs[-1]["summary"].get(k):
        fail += 1
        print(f"summary {k}: snaparc {summary.get(k)}, refdump {theirs[-1]['summary'].get(k)}")
print(f"dump-oracle: {len(ours_recs) - min(fail, len(ours_recs))} passed, {fail} failed")
sys.exit(1 if fail else 0)
