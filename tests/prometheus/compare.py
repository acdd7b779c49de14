#!/usr/bin/env python3
"""Compare chunk-snapshot contents with the answers Prometheus gave.

  compare.py dump DUMP_JSONL EXPECTED_DIR
      DUMP_JSONL is `snaparc dump --samples --json` output (or refdump.py's).
      For every line "TIME<TAB>SELECTOR" of EXPECTED_DIR/queries.txt, evaluate
      SELECTOR[1h] at TIME against the dump the way Prometheus 2.42 does and
      compare with EXPECTED_DIR/NN.json (NN = line number from 00). When
      EXPECTED_DIR/exemplars.txt exists, also compare the dump's exemplars with
      EXPECTED_DIR/exemplars.json.
  compare.py answers EXPECTED_DIR ACTUAL_JSONL
      ACTUAL_JSONL holds one query-API answer a line (query-snapshot.sh output),
      in queries.txt order; compare each with the saved NN.json.
  compare.py exemplars EXPECTED_DIR ACTUAL_JSON
      ACTUAL_JSON is a query_exemplars answer; compare with exemplars.json.

Regular expressions are Python's (fully anchored, '.' not matching a
newline, as Prometheus 2.x's RE2 matchers); fine for the selectors the tests use.
Series are matched by label set (order does not matter); samples must be the
same timestamps (exact milliseconds) and the same value strings. Prints the
first mismatches and `compare: N series, M samples matched`; exits 1 on any
mismatch and when the expected answers hold no series at all.
Python standard library only.
"""
import decimal
import json
import os
import re
import sys

RANGE_MS = 3600 * 1000
MAX_DIFFS = 10


class Mismatch(Exception):
    pass


def ms(num):
    """Seconds (Decimal or str from JSON/queries.txt) -> integer milliseconds, exactly."""
    d = decimal.Decimal(str(num)) * 1000
    if d != d.to_integral_value():
        raise ValueError("time %s is not a whole number of milliseconds" % num)
    return int(d)


def ms_text(t):
    """Integer milliseconds printed as Prometheus prints a timestamp."""
    s, f = divmod(t, 1000)
    return "%d" % s if f == 0 else "%d.%03d" % (s, f)


def lkey(labels):
    return tuple(sorted(labels.items()))


def lstr(key):
    d = dict(key)
    name = d.pop("__name__", "")
    body = ",".join('%s=%s' % (k, json.dumps(v if len(v) <= 60 else v[:40] + "...(%d bytes)" % len(v)))
                    for k, v in sorted(d.items()))
    return "%s{%s}" % (name, body)


# ---- PromQL vector selectors -------------------------------------------------

TOKEN = re.compile(r'\s*(?:(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<op>=~|!~|!=|=)|(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)|(?P<p>[{},]))')


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    body = s[1:-1]
    if s[0] == "'":
        body = body.replace('\\\'', "'").replace('"', '\\"')
    return json.loads('"' + body + '"')


def parse_selector(text):
    """name, name{matchers}, {matchers} -> list of (label, op, value)."""
    toks, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError("cannot parse selector %r at %d" % (text, pos))
        pos = m.end()
        kind = m.lastgroup
        toks.append((kind, unquote(m.group(kind)) if kind == "str" else m.group(kind)))
    matchers, i = [], 0
    if toks and toks[0][0] == "id":
        matchers.append(("__name__", "=", toks[0][1])); i = 1
    if i < len(toks):
        if toks[i] != ("p", "{") or toks[-1] != ("p", "}"):
            raise ValueError("cannot parse selector %r" % text)
        body = toks[i + 1:-1]
        j = 0
        while j < len(body):
            if j + 2 >= len(body) or body[j][0] != "id" or body[j + 1][0] != "op" or body[j + 2][0] != "str":
                raise ValueError("cannot parse matchers in %r" % text)
            matchers.append((body[j][1], body[j + 1][1], body[j + 2][1]))
            j += 3
            if j < len(body):
                if body[j] != ("p", ","):
                    raise ValueError("expected ',' in %r" % text)
                j += 1
    if not matchers:
        raise ValueError("empty selector %r" % text)
    compiled = []
    for name, op, val in matchers:
        rx = re.compile(val) if op in ("=~", "!~") else None
        compiled.append((name, op, val, rx))
    return compiled


def matches(matchers, labels):
    for name, op, val, rx in matchers:
        v = labels.get(name, "")  # a missing label is the empty string
        ok = {"=": v == val, "!=": v != val,
              "=~": rx is not None and rx.fullmatch(v) is not None,
              "!~": rx is not None and rx.fullmatch(v) is None}[op]
        if not ok:
            return False
    return True


# ---- reading inputs -----------------------------------------------------------

def read_queries(exp_dir):
    path = os.path.join(exp_dir, "queries.txt")
    if not os.path.exists(path):
        raise Mismatch("%s is missing" % path)
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                t, sel = line.split("\t", 1)
                out.append((t, sel))
    if not out:
        raise Mismatch("%s holds no queries" % path)
    return out


def matrix(answer, what):
    """A query-API answer -> {label key: [(ms, value string)]}."""
    if answer.get("status") != "success":
        raise Mismatch("%s: status %r, error %r" % (what, answer.get("status"), answer.get("error")))
    data = answer["data"]
    if data.get("resultType") != "matrix":
        raise Mismatch("%s: resultType %r, want matrix" % (what, data.get("resultType")))
    out = {}
    for s in data["result"]:
        k = lkey(s["metric"])
        if k in out:
            raise Mismatch("%s: series %s twice" % (what, lstr(k)))
        out[k] = [(ms(t), v) for t, v in s.get("values", [])]
        if "histograms" in s:
            raise Mismatch("%s: native histograms are not supported here" % what)
    return out


def load_json(path):
    with open(path) as f:
        return json.loads(f.read(), parse_float=decimal.Decimal)


def read_dump(path):
    series, stones, exemplars, summary = {}, {}, [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if summary is not None:
                raise Mismatch("%s:%d: a record after the summary line" % (path, n))
            o = json.loads(line)
            if "summary" in o:
                summary = o["summary"]
                continue
            rec = o.get("record")
            if rec == "series":
                if o["ref"] in series:
                    raise Mismatch("%s:%d: series ref %d twice" % (path, n, o["ref"]))
                series[o["ref"]] = o
            elif rec == "tombstones":
                for iv in o["intervals"]:
                    stones.setdefault(iv["ref"], []).append((iv["mint"], iv["maxt"]))
            elif rec == "exemplars":
                exemplars.extend(o["exemplars"])
            else:
                raise Mismatch("%s:%d: unknown record %r" % (path, n, rec))
    if summary is None:
        raise Mismatch("%s: no summary line (dump cut short?)" % path)
    return series, stones, exemplars


def is_stale(sample):
    return sample[1] == "stale" or (len(sample) > 2 and isinstance(sample[2], dict) and sample[2].get("stale"))


def evaluate(series, stones, sel, t_ms):
    """SELECTOR[1h] at t: Prometheus 2.x keeps samples with t-1h <= ts <= t
    (closed at both ends; 3.x opens the left end), drops deleted (tombstoned,
    inclusive) samples and stale markers, and omits series left empty."""
    matchers = parse_selector(sel)
    out = {}
    for ref, s in series.items():
        if not matches(matchers, s["labels"]):
            continue
        if s.get("chunk") is None:
            continue
        if "samples" not in s:
            raise Mismatch("series ref %d %s has a %s chunk; only xor is evaluated"
                           % (ref, lstr(lkey(s["labels"])), s["chunk"].get("encoding")))
        ivs = stones.get(ref, [])
        pts = []
        for smp in s["samples"]:
            ts = int(smp[0])
            if not t_ms - RANGE_MS <= ts <= t_ms or is_stale(smp):
                continue
            if any(a <= ts <= b for a, b in ivs):
                continue
            pts.append((ts, smp[1]))
        if pts:
            k = lkey(s["labels"])
            if k in out:
                raise Mismatch("label set %s appears under two refs" % lstr(k))
            out[k] = pts
    return out


# ---- comparing ----------------------------------------------------------------

class Report:
    def __init__(self, unit="samples"):
        self.diffs, self.series, self.samples, self.unit = [], 0, 0, unit

    def diff(self, msg):
        self.diffs.append(msg)

    def compare(self, what, want, got):
        for k in sorted(set(want) | set(got)):
            if k not in got:
                self.diff("%s: missing series %s (%d %s expected)" % (what, lstr(k), len(want[k]), self.unit))
            elif k not in want:
                self.diff("%s: unexpected series %s (%d %s)" % (what, lstr(k), len(got[k]), self.unit))
            elif want[k] != got[k]:
                w, g = want[k], got[k]
                i = next((i for i in range(min(len(w), len(g))) if w[i] != g[i]), min(len(w), len(g)))
                show = lambda p: "(none)" if p is None else "[%s,%s%s]" % (
                    ms_text(p[0]), json.dumps(p[1]), "".join("," + json.dumps(dict(x)) for x in p[2:]))
                self.diff("%s: series %s differs at %s %d: expected %s, got %s (%d vs %d)"
                          % (what, lstr(k), self.unit[:-1], i, show(w[i] if i < len(w) else None),
                             show(g[i] if i < len(g) else None), len(w), len(g)))
            else:
                self.series += 1
                self.samples += len(want[k])

    def finish(self):
        for d in self.diffs[:MAX_DIFFS]:
            print("MISMATCH " + d)
        if len(self.diffs) > MAX_DIFFS:
            print("... and %d more mismatches" % (len(self.diffs) - MAX_DIFFS))
        if self.series == 0 and not self.diffs:
            self.diff("expected answers hold no series: nothing was compared")
            print("MISMATCH " + self.diffs[-1])
        print("compare: %d series, %d %s matched%s" % (self.series, self.samples, self.unit,
              "" if not self.diffs else ", %d mismatches" % len(self.diffs)))
        return 1 if self.diffs else 0


def exemplar_answer(answer, what):
    """query_exemplars answer -> {series key: [(ms, value, labels key)]}."""
    if answer.get("status") != "success":
        raise Mismatch("%s: status %r, error %r" % (what, answer.get("status"), answer.get("error")))
    out = {}
    for s in answer["data"]:
        k = lkey(s["seriesLabels"])
        out[k] = [(ms(e["timestamp"]), e["value"], lkey(e["labels"])) for e in s["exemplars"]]
    return out


def exemplar_spec(exp_dir):
    path = os.path.join(exp_dir, "exemplars.txt")
    if not os.path.exists(path):
        return None
    start, end, sel = open(path).read().rstrip("\n").split("\t", 2)
    return ms(start), ms(end), sel


def mode_dump(dump_path, exp_dir):
    rep = Report()
    queries = read_queries(exp_dir)
    series, stones, exemplars = read_dump(dump_path)
    for i, (t, sel) in enumerate(queries):
        what = "query %02d %s[1h] @%s" % (i, sel, t)
        want = matrix(load_json(os.path.join(exp_dir, "%02d.json" % i)), what)
        rep.compare(what, want, evaluate(series, stones, sel, ms(t)))
    spec = exemplar_spec(exp_dir)
    if spec:
        start, end, sel = spec
        matchers = parse_selector(sel)
        got = {}
        for e in exemplars:
            s = series.get(e["ref"])
            if s is None:
                rep.diff("exemplar for unknown series ref %d" % e["ref"])
                continue
            if matches(matchers, s["labels"]) and start <= int(e["t"]) <= end:
                got.setdefault(lkey(s["labels"]), []).append((int(e["t"]), e["value"], lkey(e["labels"])))
        want = exemplar_answer(load_json(os.path.join(exp_dir, "exemplars.json")), "exemplars.json")
        ex = Report("exemplars")
        ex.compare("exemplars %s" % sel, want, got)
        rep.diffs += ex.diffs
        print("compare: exemplars of %d series, %d exemplars matched" % (ex.series, ex.samples))
        if ex.series == 0:
            rep.diff("exemplars.json holds no exemplars")
    return rep.finish()


def mode_answers(exp_dir, actual_path):
    rep = Report()
    queries = read_queries(exp_dir)
    with open(actual_path) as f:
        lines = [ln for ln in f.read().splitlines() if ln.strip()]
    if len(lines) != len(queries):
        raise Mismatch("%s has %d answers for %d queries" % (actual_path, len(lines), len(queries)))
    for i, ((t, sel), line) in enumerate(zip(queries, lines)):
        what = "query %02d %s[1h] @%s" % (i, sel, t)
        want = matrix(load_json(os.path.join(exp_dir, "%02d.json" % i)), what + " (expected)")
        got = matrix(json.loads(line, parse_float=decimal.Decimal), what)
        rep.compare(what, want, got)
    return rep.finish()


def mode_exemplars(exp_dir, actual_path):
    rep = Report("exemplars")
    want = exemplar_answer(load_json(os.path.join(exp_dir, "exemplars.json")), "exemplars.json")
    got = exemplar_answer(load_json(actual_path), actual_path)
    rep.compare("exemplars", want, got)
    return rep.finish()


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "dump":
            return mode_dump(argv[2], argv[3])
        if len(argv) == 4 and argv[1] == "answers":
            return mode_answers(argv[2], argv[3])
        if len(argv) == 4 and argv[1] == "exemplars":
            return mode_exemplars(argv[2], argv[3])
    except (Mismatch, ValueError, KeyError, OSError) as e:
        print("compare: FAILED: %s: %s" % (type(e).__name__, e))
        return 1
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
