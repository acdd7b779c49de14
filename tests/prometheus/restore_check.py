#!/usr/bin/env python3
"""Helpers for test-restore.sh and test-live-restore.sh (Python standard library only).

  restore_check.py pick ANSWER_JSON INDEX
      Print (as one JSON object) the label set of result entry INDEX of a saved
      answer: a query-API matrix answer ("metric") or a query_exemplars answer
      ("seriesLabels"). Entries are taken in label-set order (sorted), so the
      pick does not depend on the order Prometheus happened to print them in.
  restore_check.py labels LABELS_JSON
      Print the exact label set as snaparc's LABELS argument:
      {__name__="x",a="b",...} (values quoted as PromQL strings).
  restore_check.py restrict EXPECTED_DIR OUT_DIR [--series LABELS_JSON] [--since-dump DUMP_JSONL]
      Write a copy of EXPECTED_DIR (queries.txt, NN.json, exemplars.txt and
      exemplars.json when present) restricted to what a restore must answer:
      with --series, only the result entries (and exemplar series) whose label
      set equals LABELS_JSON exactly; with --since-dump, only the samples a
      snapshot holds: for each series of an answer, those at or after the
      mint of the head chunk the same label set has in DUMP_JSONL (refdump.py
      or `snaparc dump --json` of that snapshot), no series it lacks (a
      later-round snapshot of make-snapshot.sh --rounds holds only the head
      chunk cut after the restart, while the live answers also hold the
      earlier rounds' samples); exemplars are kept (Prometheus snapshots its
      whole exemplar buffer). Entries left empty are dropped. Sample values
      and timestamps are kept as Prometheus printed them, so compare.py
      compares them exactly.
  restore_check.py dumps ORIG_DUMP RESTORED_DUMP [--ref N] [--compression C]
      Compare two `dump --samples --json` outputs, ignoring where records lie
      (segment, offset). Without --ref: record by record, in order, and the
      summaries' content counts. With --ref N: the restored dump must hold
      exactly the original's series record N, the tombstone intervals of N and
      the exemplars of N (in the original's order), and nothing else. With
      --compression, every restored record must be stored that way
      (for snappy: snappy, or none where Snappy would not shrink it).
Exit status 0 when equal, 1 with MISMATCH lines otherwise, 2 on bad usage.
"""
import decimal
import json
import os
import sys


def load_json(path):
    with open(path) as f:
        return json.loads(f.read(), parse_float=decimal.Decimal)


def load_plain(path):
    """For answers that are written back out: floats (timestamps) stay floats,
    whose repr() is the shortest text that reads back as the same double, i.e.
    the millisecond text Prometheus printed."""
    with open(path) as f:
        return json.load(f)


def lkey(labels):
    return tuple(sorted(labels.items()))


def entries(answer):
    data = answer["data"]
    if isinstance(data, dict):           # query API: {"resultType":..., "result": [...]}
        return data["result"], "metric"
    return data, "seriesLabels"          # query_exemplars: [...]


def promql_quote(v):
    out = ['"']
    for ch in v:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def mode_pick(path, index):
    ents, key = entries(load_json(path))
    ents = sorted(ents, key=lambda e: lkey(e[key]))
    print(json.dumps(ents[int(index)][key], sort_keys=True))
    return 0


def mode_labels(labels_json):
    labels = json.loads(labels_json)
    body = ",".join("%s=%s" % (k, promql_quote(labels[k])) for k in sorted(labels))
    print("{%s}" % body)
    return 0


def dump_json(obj):
    return json.dumps(obj, separators=(",", ":"))


def mode_restrict(exp_dir, out_dir, series, since_dump):
    os.makedirs(out_dir)
    want = lkey(json.loads(series)) if series is not None else None
    mints = None
    if since_dump is not None:
        recs, _ = read_records(since_dump)
        mints = {lkey(r["labels"]): r["chunk"]["mint"]
                 for r in recs if r.get("record") == "series" and r.get("chunk")}

    def keep_ts(labels, seconds):
        if mints is None:
            return True
        # seconds is a float parsed from Prometheus' text; repr() gives that text back
        since = mints.get(lkey(labels))
        return since is not None and decimal.Decimal(repr(seconds)) * 1000 >= since

    with open(os.path.join(exp_dir, "queries.txt")) as f:
        queries = [ln for ln in f.read().splitlines() if ln]
    with open(os.path.join(out_dir, "queries.txt"), "w") as f:
        f.write("".join(q + "\n" for q in queries))
    total_s = total_v = 0
    for i in range(len(queries)):
        name = "%02d.json" % i
        ans = load_plain(os.path.join(exp_dir, name))
        res = []
        for e in ans["data"]["result"]:
            if want is not None and lkey(e["metric"]) != want:
                continue
            e = dict(e)
            if "values" in e:
                e["values"] = [v for v in e["values"] if keep_ts(e["metric"], v[0])]
                if not e["values"]:
                    continue
                total_v += len(e["values"])
            res.append(e)
        total_s += len(res)
        ans["data"]["result"] = res
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(dump_json(ans))
    ex = 0
    if os.path.exists(os.path.join(exp_dir, "exemplars.txt")):
        with open(os.path.join(exp_dir, "exemplars.txt")) as f:
            spec = f.read()
        with open(os.path.join(out_dir, "exemplars.txt"), "w") as f:
            f.write(spec)
        ans = load_plain(os.path.join(exp_dir, "exemplars.json"))
        data = []
        for s in ans["data"]:
            if want is not None and lkey(s["seriesLabels"]) != want:
                continue
            if s["exemplars"]:
                data.append(s)
                ex += len(s["exemplars"])
        ans["data"] = data
        with open(os.path.join(out_dir, "exemplars.json"), "w") as f:
            f.write(dump_json(ans))
    print("restrict: %d queries keep %d series entries, %d samples; %d exemplars"
          % (len(queries), total_s, total_v, ex))
    return 0


def read_records(path):
    recs, summary = [], None
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            o = json.loads(line)
            if "summary" in o:
                summary = o["summary"]
            else:
                recs.append(o)
    if summary is None:
        raise ValueError("%s: no summary line" % path)
    return recs, summary


def placeless(rec):
    return {k: v for k, v in rec.items() if k not in ("segment", "offset")}


def field_diff(a, b):
    """The first difference between two records, briefly."""
    first = ("record", "ref", "labels", "chunk")
    for k in sorted(set(a) | set(b), key=lambda k: (first.index(k) if k in first else len(first), k)):
        x, y = a.get(k), b.get(k)
        if x == y:
            continue
        if isinstance(x, list) and isinstance(y, list):
            i = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
            show = lambda l: dump_json(l[i])[:150] if i < len(l) else "(none)"
            return "%s[%d]: original %s, restored %s (%d vs %d entries)" % (k, i, show(x), show(y), len(x), len(y))
        return "%s: original %s, restored %s" % (k, dump_json(x)[:150], dump_json(y)[:150])
    return "nothing?"


CONTENT = ("series", "series_with_chunk", "xor_samples", "tombstone_intervals", "exemplars",
           "records", "record_bytes", "encodings")


def mode_dumps(orig, restored, ref, compression):
    diffs = []
    orecs, osum = read_records(orig)
    rrecs, rsum = read_records(restored)
    if ref is None:
        if len(orecs) != len(rrecs):
            longer, which = (rrecs, "restore") if len(rrecs) > len(orecs) else (orecs, "original")
            x = longer[min(len(orecs), len(rrecs))]
            diffs.append("the original has %d records, the restore %d; the %s's record %d is %s%s"
                         % (len(orecs), len(rrecs), which, min(len(orecs), len(rrecs)), x.get("record"),
                            " ref %s" % x["ref"] if "ref" in x else ""))
        for i, (a, b) in enumerate(zip(orecs, rrecs)):
            a, b = placeless(a), placeless(b)
            if a != b:
                diffs.append("record %d (%s%s) differs in %s" % (i, a.get("record"),
                             " ref %s" % a["ref"] if "ref" in a else "", field_diff(a, b)))
        for k in CONTENT:
            if osum.get(k) != rsum.get(k):
                diffs.append("summary %s: original %r, restored %r" % (k, osum.get(k), rsum.get(k)))
        what = "%d records" % len(orecs)
    else:
        ref = int(ref)
        want_series = [placeless(r) for r in orecs if r.get("record") == "series" and r["ref"] == ref]
        want_stones = [iv for r in orecs if r.get("record") == "tombstones"
                       for iv in r["intervals"] if iv["ref"] == ref]
        want_ex = [x for r in orecs if r.get("record") == "exemplars"
                   for x in r["exemplars"] if x["ref"] == ref]
        got_series = [placeless(r) for r in rrecs if r.get("record") == "series"]
        got_stones = [iv for r in rrecs if r.get("record") == "tombstones" for iv in r["intervals"]]
        got_ex = [x for r in rrecs if r.get("record") == "exemplars" for x in r["exemplars"]]
        if len(want_series) != 1:
            diffs.append("the original has %d series records with ref %d" % (len(want_series), ref))
        if got_series != want_series and len(got_series) == len(want_series) == 1:
            diffs.append("series record differs in %s" % field_diff(want_series[0], got_series[0]))
        elif got_series != want_series:
            diffs.append("series records: original %s, restored %s"
                         % (dump_json(want_series)[:300], dump_json(got_series)[:300]))
        if got_stones != want_stones:
            diffs.append("tombstone intervals: original %s, restored %s"
                         % (dump_json(want_stones)[:300], dump_json(got_stones)[:300]))
        if got_ex != want_ex:
            diffs.append("exemplars: original %d (%s...), restored %d (%s...)"
                         % (len(want_ex), dump_json(want_ex)[:200], len(got_ex), dump_json(got_ex)[:200]))
        other = [r.get("record") for r in rrecs if r.get("record") not in ("series", "tombstones", "exemplars")]
        if other:
            diffs.append("unexpected records %s" % other)
        what = "series ref %d, %d tombstone intervals, %d exemplars" % (ref, len(want_stones), len(want_ex))
    if compression is not None:
        comp = rsum.get("compression", {})
        allowed = {"snappy": ("snappy", "none"), "none": ("none",), "zstd": ("zstd", "none")}[compression]
        bad = {k: v for k, v in comp.items() if v and k not in allowed}
        if bad:
            diffs.append("restored with --compression %s, but records are stored %s" % (compression, bad))
        if compression == "none" and comp.get("none") != rsum.get("records"):
            diffs.append("--compression none: %r of %s records uncompressed" % (comp.get("none"), rsum.get("records")))
    for d in diffs[:10]:
        print("MISMATCH dump: " + d)
    print("dumps: %s%s" % (what, ": identical" if not diffs else ", %d mismatches" % len(diffs)))
    return 1 if diffs else 0


def options(args, names):
    pos, opts = [], {n: None for n in names}
    i = 0
    while i < len(args):
        if args[i] in names and i + 1 < len(args):
            opts[args[i]] = args[i + 1]
            i += 2
        elif args[i].startswith("--"):
            raise SystemExit("restore_check.py: unknown option %s" % args[i])
        else:
            pos.append(args[i])
            i += 1
    return pos, opts


def main(argv):
    mode, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    try:
        if mode == "pick" and len(args) == 2:
            return mode_pick(*args)
        if mode == "labels" and len(args) == 1:
            return mode_labels(args[0])
        if mode == "restrict":
            pos, o = options(args, ("--series", "--since-dump"))
            if len(pos) == 2:
                return mode_restrict(pos[0], pos[1], o["--series"], o["--since-dump"])
        if mode == "dumps":
            pos, o = options(args, ("--ref", "--compression"))
            if len(pos) == 2:
                return mode_dumps(pos[0], pos[1], o["--ref"], o["--compression"])
    except (ValueError, KeyError, IndexError, OSError) as e:
        print("MISMATCH restore_check.py %s: %s: %s" % (mode, type(e).__name__, e))
        return 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
