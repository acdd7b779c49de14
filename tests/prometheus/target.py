#!/usr/bin/env python3
"""A scrape target on loopback serving a fixed, deterministic set of series.

  target.py --port P [--series N] [--gauges N] [--histograms N] [--flaky N]
            [--long-label BYTES] [--exemplars]

Scrape number k (1, 2, ...) serves:
  app_requests_total{shard,path,method,code}  counters, k * (i % 7 + 1)
  app_temperature_celsius{sensor,room}         gauges following a sine of k
  app_latency_seconds_{bucket,sum,count}{svc}  classic histograms, five buckets
  app_flaky{id}                                present on odd k only, so every even
                                               scrape makes Prometheus write stale markers
  app_long_label{blob}                         one series whose label value has BYTES
                                               bytes of deterministic, poorly compressible
                                               text (its snapshot record stays > 32 KiB
                                               after Snappy, so it spans WAL pages)
With --exemplars, every 50th counter carries an OpenMetrics exemplar (value i % 13,
trace_id from i and k, timestamp = the target's wall clock). Prometheus asks for
OpenMetrics by default; exemplars are only sent in that format.
Only the Python standard library is used; listens on 127.0.0.1 only.
"""
import argparse
import base64
import hashlib
import http.server
import math
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--series", type=int, default=2000)
ap.add_argument("--gauges", type=int, default=500)
ap.add_argument("--histograms", type=int, default=20)
ap.add_argument("--flaky", type=int, default=0)
ap.add_argument("--long-label", type=int, default=0)
ap.add_argument("--exemplars", action="store_true")
args = ap.parse_args()


def long_value(n):
    """n bytes of base64url text from a SHA-256 chain: deterministic, and Snappy
    finds almost nothing to compress in it."""
    out, h = [], b"snaparc"
    while sum(map(len, out)) < n:
        h = hashlib.sha256(h).digest()
        out.append(base64.urlsafe_b64encode(h).decode().rstrip("="))
    return "".join(out)[:n]


LONG = long_value(args.long_label) if args.long_label else ""
scrapes = 0
lock = threading.Lock()


def body(openmetrics):
    global scrapes
    with lock:
        scrapes += 1
        k = scrapes
    now = time.time()
    out = ["# TYPE app_requests counter\n"]
    for i in range(args.series):
        ex = ""
        if openmetrics and args.exemplars and i % 50 == 0:
            ex = ' # {trace_id="%016x"} %d %.3f' % (i * 7919 + k, i % 13, now)
        out.append('app_requests_total{shard="%d",path="/api/v1/item/%d",method="%s",code="%d"} %d%s\n'
                   % (i % 16, i, ("GET", "POST", "PUT")[i % 3], (200, 404, 500)[i % 3], k * (i % 7 + 1), ex))
    out.append("# TYPE app_temperature_celsius gauge\n")
    for i in range(args.gauges):
        out.append('app_temperature_celsius{sensor="s%d",room="r%d"} %.4f\n' % (i, i % 10, 20 + 5 * math.sin(k / 7 + i)))
    out.append("# TYPE app_latency_seconds histogram\n")
    for i in range(args.histograms):
        c = 0
        for j, le in enumerate(("0.005", "0.01", "0.1", "1", "+Inf")):
            c += k * (j + 1) + i
            out.append('app_latency_seconds_bucket{svc="svc%d",le="%s"} %d\n' % (i, le, c))
        out.append('app_latency_seconds_sum{svc="svc%d"} %.3f\n' % (i, c * 0.05))
        out.append('app_latency_seconds_count{svc="svc%d"} %d\n' % (i, c))
    if args.flaky:
        out.append("# TYPE app_flaky gauge\n")
        if k % 2 == 1:
            for i in range(args.flaky):
                out.append('app_flaky{id="%d"} %d\n' % (i, k + i))
    if LONG:
        out.append("# TYPE app_long_label gauge\n")
        out.append('app_long_label{blob="%s"} %d\n' % (LONG, k))
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        om = "openmetrics" in (self.headers.get("Accept") or "")
        b = body(om)
        self.send_response(200)
        self.send_header("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8"
                         if om else "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
