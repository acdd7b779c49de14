#!/usr/bin/env python3
"""A load campaign through the snaparc command alone (test-load.sh).

  load.py SNAPARC SNAPGEN DATADIR

Sources: SNAPARC_LOAD_SERIES-series periodic snapshots from snapgen (one head
that runs on, so that consecutive snapshots differ a little and compaction
makes deltas; with tombstones and exemplars) and the bundled Prometheus 2.42
snapshot. Each is imported alone into a quiet archive, where the answer to
every query the campaign asks of it is recorded: the truth (exit code and
the output, without what depends on where and when a record is stored: the
snapshot's id and name, stored bytes, segment and offset). A whole restore's
records must also be the source's.

Then, for SNAPARC_LOAD_SECONDS (default 30), against one archive:

- an importer imports the sources again and again, in order, each under a
  name of its own (iNNNNN-SOURCE), with --wait;
- a compactor runs `compact --wait --keep-last K` (K from 2 to 5, with
  varying --max-chain and --no-delta), dropping the oldest snapshots;
- SNAPARC_LOAD_READERS readers (default 4) list the archive and ask one
  listed snapshot (by id or by name) a query: lookup by ref (--json --detail
  --samples, and text), by its exact labels, selectors (matrix and detail),
  a restore of one series or of the whole snapshot (the dump of what was
  restored compared), or the latest snapshot (its answer names the
  snapshot, which must be at least as new as the newest listed before);
  now and then they run `verify`, which must find the archive sound;
- every few seconds each reader starts a lookup whose output it does not
  read, waits until LMDB's reader table shows that process holding a read
  transaction, and kills it with SIGKILL; now and then it kills a whole
  restore at a random moment too;
- half of the time (alternating periods) a pin holds the archive open as a
  host process would (a shared lock on ARCHIVE/users and the LMDB
  environment open, no transaction): LMDB then never resets its reader
  table on a first open, so only the archive's writers (mdb_reader_check)
  can clear a killed reader's slot; without it compaction may rewrite the
  index file when it finds itself alone;
- a monitor samples the reader table (`mdb_stat -r`) twice a second.

The rules:

- an answer is the truth; or, for a snapshot the reader listed, exit 3 with
  "no snapshot with id N" / "no snapshot named X" / "snapshot N (X) was
  removed as the restore began" (or "no series ...", when the snapshot
  went after the command had found it), and then the
  snapshot must be gone from a listing made right after it, and be one of
  those the compactions dropped (imported, not in the final archive, which
  holds exactly the newest --keep-last); never other data, never another
  exit code, never a crash; a failed restore leaves no directory behind;
- a snapshot missing from a listing that began after its import ended never
  comes back;
- imports, compactions and verify all succeed; no command hangs (timeouts);
- a killed reader's slot (its pid and transaction, the pid dead: pids wrap)
  is never in the reader table after a writer that began after the kill
  ended: an import, or a compaction that deleted retired segments or left
  some pending (writers clear dead readers' slots, mdb_reader_check);
- at the end, with the pin holding the archive: a reader killed holding a
  transaction is in the reader table and gone after an import; then a
  compaction (--keep-last 3) must leave no retired segment pending
  (the dead reader's old transaction must not block their deletion), the
  reader table must then hold no slot at all, the index no "retired"
  entry, `verify` passes, and the kept snapshots answer every query with
  the truth.

  SNAPARC_LOAD_SECONDS   run time (default 30)
  SNAPARC_LOAD_READERS   reader processes (default 4)
  SNAPARC_LOAD_SERIES    series of the generated snapshots (default 2000)
  SNAPARC_LOAD_SEED      the random seed (default: from the clock; printed)
  SNAPARC_LOAD_KEEP      keep the work directory (else removed on success)

It found (RELIABILITY.md, "Bugs found"): a whole restore that read its
records in another transaction than the one that found the snapshot (exit
4 "segments N to N are not all there", or an empty snapshot with exit 0,
when a compaction committed between them); the index refused as "cut
short" while a compaction ran (LMDB's unwritten free pages at the end); a
dead reader's slot kept until a compaction. Each is now a failure here.

Prints the figures at the end and exits 1 if anything went wrong.
"""
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

GEN_SNAPSHOTS = 6
TIMEOUT = 300            # seconds any one command may take
NOT_FOUND_SNAPSHOT = re.compile(rb"^snaparc (lookup|restore): (no snapshot (with id \d+|named \S+)|"
                                rb"snapshot \d+ \(.*\) was removed as the restore began)\n$")
NOT_FOUND_SERIES = re.compile(rb"^snaparc (lookup|restore): no series (with ref \d+ in snapshot \d+|matches .*)\n$")
EVERYTHING = '{__name__=~".+"}'
MDB_RDONLY = 0x20000
MDB_NOTLS = 0x200000


def run(cmd, timeout=TIMEOUT):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def now():
    return time.monotonic()


def digest(b):
    return hashlib.sha256(b).hexdigest()[:32]


def selector_of(labels):
    def esc(v):
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join('%s="%s"' % (k, esc(v)) for k, v in sorted(labels.items())) + "}"


# ---- what an answer is, without where and when it is stored ----

def norm_detail(out):
    """--json --detail lines: (normalized text, [(id, name)] they name)."""
    lines, named = [], []
    for line in out.decode().splitlines():
        j = json.loads(line)
        named.append((j.pop("snapshot"), j.pop("name")))
        j.pop("stored_bytes")
        j.pop("cut", None)
        lines.append(json.dumps(j, sort_keys=True))
    return "\n".join(lines).encode(), named


TEXT_HEAD = re.compile(r"^snapshot (\d+) \((.*)\) ref (\d+) ")


def norm_text(out):
    lines, named = [], []
    for line in out.decode().splitlines():
        m = TEXT_HEAD.match(line)
        if m:
            named.append((int(m.group(1)), m.group(2)))
            line = line[m.end(2) + 2:]
        elif line.startswith("  stored "):
            # how much and where (compaction stores some records as cuts
            # of another): only the record's own size is the answer's
            m = re.search(r"\(record \d+ bytes\)", line)
            line = "  stored " + (m.group(0) if m else line)
        lines.append(line)
    return "\n".join(lines).encode(), named


def norm_dump(out):
    lines = []
    for line in out.decode().splitlines():
        j = json.loads(line)
        j.pop("segment", None)
        j.pop("offset", None)
        if "summary" in j:
            # how records are stored: which are compressed depends on the
            # encoder (restore codes an XOR chunk's tail by its runs of
            # zeros, which can make a record smaller where Snappy was not)
            for k in ("stored_bytes", "segment_bytes", "segments", "compression"):
                j["summary"].pop(k, None)
        lines.append(json.dumps(j, sort_keys=True))
    return "\n".join(sorted(lines)).encode()


# ---- queries ----

class Query:
    """One question asked of a snapshot (SPEC: its id or name; None: latest)."""

    def __init__(self, qid, kind, args):
        self.qid, self.kind, self.args = qid, kind, args

    def argv(self, snaparc, arc, spec, out=None):
        snap = ["--snapshot", str(spec)] if spec is not None else []
        if self.kind in ("restore1", "restoreall"):
            return [snaparc, "restore"] + snap + [arc] + self.args + ["--out", out]
        n = 2 if self.args[-2:-1] == ["--ref"] else 1
        return [snaparc, "lookup"] + snap + self.args[:-n] + [arc] + self.args[-n:]

    def normalize(self, out):
        """(bytes compared, [(id, name)] the answer names)."""
        if self.kind in ("detail", "seld"):
            return norm_detail(out)
        if self.kind == "text":
            return norm_text(out)
        return out, []


def queries_for(series, rng):
    """series: {ref: labels} of one source."""
    refs = sorted(series)
    jobs = {}
    names = {}
    for labels in series.values():
        jobs[labels.get("job", "")] = jobs.get(labels.get("job", ""), 0) + 1
        names[labels["__name__"]] = names.get(labels["__name__"], 0) + 1
    job = max(sorted(jobs), key=lambda j: jobs[j])
    name = max(sorted(names), key=lambda n: names[n])
    prefix = name.split("_")[0]
    sample = sorted(set([refs[0], refs[-1]] + rng.sample(refs, min(14, len(refs)))))
    qs = []
    for r in sample + [refs[-1] + 1000]:
        qs.append(Query("detail:%d" % r, "detail", ["--json", "--detail", "--samples", "--ref", str(r)]))
        qs.append(Query("text:%d" % r, "text", ["--samples", "--ref", str(r)]))
    for r in sample:
        qs.append(Query("labels:%d" % r, "labels", ["--json", "--samples", selector_of(series[r])]))
    sels = [EVERYTHING, '{job="%s"}' % job, '%s{job!="%s"}' % (name, job),
            '{__name__=~"%s_.*",instance=~".*:9.*"}' % prefix, '{job="no-such-job"}', name,
            '{__name__=~"%s_.+",job=~"%s|x"}' % (prefix, job)]
    for i, s in enumerate(sels):
        if s != EVERYTHING:
            qs.append(Query("sel:%d" % i, "matrix", ["--json", "--samples", s]))
        qs.append(Query("seld:%d" % i, "seld", ["--json", "--detail", s]))
    for r in sample[:6] + [refs[-1] + 1000]:
        qs.append(Query("restore1:%d" % r, "restore1", ["--ref", str(r)]))
    qs.append(Query("restoreall", "restoreall", []))
    return qs


# ---- the campaign ----

class Load:
    def __init__(self, snaparc, snapgen, data):
        self.snaparc, self.snapgen, self.data = snaparc, snapgen, data
        self.seconds = float(os.environ.get("SNAPARC_LOAD_SECONDS", "30"))
        self.nreaders = int(os.environ.get("SNAPARC_LOAD_READERS", "4"))
        self.nseries = int(os.environ.get("SNAPARC_LOAD_SERIES", "2000"))
        self.seed = int(os.environ.get("SNAPARC_LOAD_SEED", str(int(time.time()))))
        self.tmp = tempfile.mkdtemp(prefix="snaparc-load.")
        self.arc = os.path.join(self.tmp, "arc")
        self.failures = []
        print("load: seed %d, %g s, %d readers, work in %s" % (self.seed, self.seconds, self.nreaders, self.tmp),
              flush=True)

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL: " + msg, file=sys.stderr, flush=True)

    # -- sources and their truth --

    def sources(self):
        gen = os.path.join(self.tmp, "gen")
        code, out, err = run([self.snapgen, gen, "--series", str(self.nseries), "--periodic", str(GEN_SNAPSHOTS),
                              "--step", "10", "--tombstones", "20", "--exemplars", "50", "--seed",
                              str(self.seed % 1000 + 1), "--threads", "1", "--quiet"])
        if code:
            raise SystemExit("snapgen failed: %s" % err.decode())
        src = {}
        for j in range(GEN_SNAPSHOTS):
            src["g%d" % j] = os.path.join(gen, "chunk_snapshot.000000.%010d" % j)
        bundled = sorted(d for d in os.listdir(self.data) if d.startswith("chunk_snapshot."))
        src["p"] = os.path.join(self.data, bundled[0])
        self.src = src
        self.order = ["g%d" % j for j in range(GEN_SNAPSHOTS)] + ["p"]

    def build_truth(self):
        rng = random.Random(self.seed)
        quiet = os.path.join(self.tmp, "quiet")
        self.queries, self.truth = {}, {}
        t0 = now()
        asked = 0
        for s in self.order:
            code, _, err = run([self.snaparc, "import", "--name", s, quiet, self.src[s]])
            if code:
                raise SystemExit("quiet import of %s: %s" % (s, err.decode()))
            code, out, err = run([self.snaparc, "dump", "--json", "--samples", self.src[s]])
            if code:
                raise SystemExit("dump of %s: %s" % (s, err.decode()))
            series = {}
            for line in out.decode().splitlines():
                j = json.loads(line)
                if j.get("record") == "series":
                    series[j["ref"]] = j["labels"]
            source_records = digest(norm_dump(out))
            qs = queries_for(series, rng)
            self.queries[s] = qs
            for q in qs:
                code, digest_, named, _ = self.ask(quiet, s, q, os.path.join(self.tmp, "quiet-out"))
                asked += 1
                if code not in (0, 3):
                    raise SystemExit("quiet archive: %s of %s exited %d" % (q.qid, s, code))
                self.truth[(s, q.qid)] = (code, digest_)
            if self.truth[(s, "restoreall")] != (0, source_records):
                raise SystemExit("quiet archive: the whole restore of %s is not the source's records" % s)
        self.truth_secs = now() - t0
        self.truth_asked = asked
        # the latest queries: a ref every source has, answered --json --detail
        common = set.intersection(*(set(int(q.qid.split(":")[1]) for q in self.queries[s]
                                        if q.kind == "detail") for s in self.order))
        self.latest_refs = sorted(r for r in common if self.truth[(self.order[0], "detail:%d" % r)][0] == 0)
        if not self.latest_refs:
            self.latest_refs = [1]
            for s in self.order:
                q = Query("detail:1", "detail", ["--json", "--detail", "--samples", "--ref", "1"])
                self.queries[s].append(q)
                code, d, _, _ = self.ask(quiet, s, q, None)
                self.truth[(s, q.qid)] = (code, d)
        print("load: truth of %d queries of %d sources in %.1f s" % (asked, len(self.order), self.truth_secs),
              flush=True)

    def ask(self, arc, spec, q, out, kill_after=None):
        """Runs q against snapshot spec (None: latest): (exit, digest, named, stderr).
        exit is None when kill_after killed it first."""
        if out is not None and os.path.exists(out):
            shutil.rmtree(out)
        argv = q.argv(self.snaparc, arc, spec, out)
        if kill_after is None:
            code, stdout, stderr = run(argv)
        else:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                stdout, stderr = p.communicate(timeout=kill_after)
                code = p.returncode
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                if out is not None:
                    for leftover in (out, out + ".tmp-%d" % p.pid):
                        shutil.rmtree(leftover, ignore_errors=True)
                return None, None, [], b""
        named = []
        if q.kind in ("restore1", "restoreall"):
            if code == 0:
                dcode, dout, derr = run([self.snaparc, "dump", "--json", "--samples", out])
                if dcode:
                    return 1000 + dcode, None, [], b"dump of the restored directory: " + derr
                stdout = norm_dump(dout)
                shutil.rmtree(out)
            else:
                left = [e for e in os.listdir(os.path.dirname(out))
                        if e == os.path.basename(out) or e.startswith(os.path.basename(out) + ".")]
                if left:
                    return 2000, None, [], ("a failed restore left %s behind: " % left).encode() + stderr
        elif code == 0:
            try:
                stdout, named = q.normalize(stdout)
            except (ValueError, KeyError) as ex:
                return 3000, None, [], ("unparsable output: %s: %r" % (ex, stdout[:300])).encode()
        return code, digest(stdout) if code in (0, 3) else None, named, stderr

    # -- the processes --

    def listing(self):
        """[(id, name)] the archive lists, or raises."""
        code, out, err = run([self.snaparc, "ls", "--json", self.arc])
        if code:
            raise RuntimeError("ls exited %d: %s" % (code, err.decode().strip()))
        return [(j["id"], j["name"]) for j in map(json.loads, out.decode().splitlines())]

    def importer(self, deadline, log):
        rng = random.Random(self.seed * 7 + 1)
        seq = log["seq0"]
        while now() < deadline:
            s = self.order[seq % len(self.order)]
            name = "i%05d-%s" % (seq, s)
            t0 = now()
            try:
                code, out, err = run([self.snaparc, "import", "--wait", "--json", "--name", name, self.arc,
                                      self.src[s]])
            except subprocess.TimeoutExpired:
                log["errors"].append("import %s hung" % name)
                break
            t1 = now()
            if code:
                log["errors"].append("import %s exited %d: %s" % (name, code, err.decode().strip()))
            else:
                j = json.loads(out.decode().splitlines()[-1])
                log["imported"].append((name, j["snapshot"], t0, t1))
            seq += 1
            time.sleep(rng.uniform(0.05, 0.4))

    def compactor(self, deadline, log):
        rng = random.Random(self.seed * 7 + 2)
        while True:
            time.sleep(rng.uniform(0.3, 1.2))
            if now() >= deadline:
                break
            keep = rng.randint(2, 5)
            argv = [self.snaparc, "compact", "--wait", "--json", "--keep-last", str(keep),
                    "--max-chain", str(rng.randint(1, 4))]
            if rng.random() < 0.25:
                argv.append("--no-delta")
            t0 = now()
            try:
                code, out, err = run(argv + [self.arc])
            except subprocess.TimeoutExpired:
                log["errors"].append("compact hung")
                break
            if code:
                log["errors"].append("compact exited %d: %s" % (code, err.decode().strip()))
                continue
            j = json.loads(out.decode())
            j.update(keep=keep, t0=t0, t1=now())
            log["compactions"].append(j)

    def doomed(self, rng, snaps, log, hold=5.0):
        """A lookup killed with SIGKILL while it holds a read transaction
        (after up to hold seconds)."""
        sid, name = rng.choice(snaps)
        before = readers(self.arc)      # (a dead reader's slot may have the pid it gets)
        p = subprocess.Popen([self.snaparc, "lookup", "--snapshot", str(sid), "--json", "--samples", self.arc,
                              EVERYTHING], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        held = None
        t_end = now() + 10
        while now() < t_end and p.poll() is None:
            new = [txn for pid, txn in readers(self.arc) - before if pid == p.pid and txn is not None]
            if new:
                held = new[0]
                break
            time.sleep(0.01)
        if held is not None and hold:
            # an old reader for a while: compactions meanwhile must leave the
            # segments it may read (pending), later ones delete them
            time.sleep(rng.uniform(0, hold))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            p.stdout.close()
            p.stderr.close()
            log["kills"].append((p.pid, held, now(), sid))
            return
        # it ended on its own: it cannot have printed everything into the pipe
        err = p.stderr.read()
        p.stdout.close()
        p.stderr.close()
        self.judge_not_found(log, p.returncode, err, sid, name, "doomed lookup")

    def gone(self, sid, name):
        return (sid, name) not in self.listing()

    def judge_not_found(self, log, code, err, sid, name, what):
        if code == 3 and NOT_FOUND_SNAPSHOT.match(err):
            after = self.listing()
            if (sid, name) in after:
                log["wrong"].append("%s of snapshot %d (%s): not found, yet listed after" % (what, sid, name))
            else:
                log["vanished"].append((name, now()))
            return True
        log["errors"].append("%s of snapshot %d (%s) exited %d: %s" % (what, sid, name, code, err[:500]))
        return False

    def reader(self, k, deadline, log):
        rng = random.Random(self.seed * 7 + 10 + k)
        out = os.path.join(self.tmp, "r%d" % k, "out")
        os.makedirs(os.path.dirname(out))
        next_kill = now() + rng.uniform(1, 6)
        weights = [("detail", 28), ("text", 8), ("labels", 16), ("matrix", 8), ("seld", 8), ("restore1", 10),
                   ("restoreall", 4), ("latest", 6), ("verify", 2)]
        kinds = [w[0] for w in weights]
        cum = [w[1] for w in weights]
        while now() < deadline:
            try:
                t0 = now()
                snaps = self.listing()
                t1 = now()
                log["lists"].append((t0, t1, [n for _, n in snaps]))
                if not snaps:
                    time.sleep(0.05)
                    continue
                if now() >= next_kill:
                    next_kill = now() + rng.uniform(4, 12)
                    self.doomed(rng, snaps, log)
                    continue
                kind = rng.choices(kinds, cum)[0]
                if kind == "verify":
                    code, vout, verr = run([self.snaparc, "verify", self.arc])
                    log["ops"]["verify"] = log["ops"].get("verify", 0) + 1
                    if code or not vout.rstrip().endswith(b"sound"):
                        log["errors"].append("verify exited %d: %r %r" % (code, vout[-300:], verr[-300:]))
                    continue
                if kind == "latest":
                    self.ask_latest(rng, snaps, log)
                    continue
                sid, name = rng.choice(snaps)
                src = name.split("-", 1)[1]
                pool = [q for q in self.queries[src] if q.kind == kind]
                q = rng.choice(pool)
                spec = sid if rng.random() < 0.5 else name
                kill_after = None
                if kind == "restoreall" and rng.random() < 0.2:
                    kill_after = rng.uniform(0.0, 0.06)
                code, d, named, err = self.ask(self.arc, spec, q, out, kill_after)
                if code is None:
                    log["killed_random"] += 1
                    continue
                log["ops"][kind] = log["ops"].get(kind, 0) + 1
                what = "%s of snapshot %s (%s, source %s)" % (q.qid, spec, name, src)
                truth = self.truth[(src, q.qid)]
                if code == 3 and NOT_FOUND_SNAPSHOT.match(err):
                    # the snapshot went between the listing and the query
                    self.judge_not_found(log, code, err, sid, name, q.qid)
                elif code == 0 and (code, d) == truth and not err and all(n == (sid, name) for n in named):
                    pass
                elif code == 3 and (code, d) == truth and NOT_FOUND_SERIES.match(err):
                    pass
                elif code == 3 and NOT_FOUND_SERIES.match(err) and self.gone(sid, name):
                    # went after the command found it by name or id: it says
                    # "no series" rather than "no snapshot", but it is gone
                    log["vanished"].append((name, now()))
                    log["vanished_series"] += 1
                elif code in (0, 3):
                    log["wrong"].append("%s: exit %d (truth %d), %s, named %s, stderr %r" % (
                        what, code, truth[0], "same output" if d == truth[1] else "other output", named[:2],
                        err[:300]))
                else:
                    log["errors"].append("%s exited %d: %r" % (what, code, err[:500]))
            except subprocess.TimeoutExpired as ex:
                log["errors"].append("hung: %s" % (ex.cmd,))
            except RuntimeError as ex:
                log["errors"].append(str(ex))

    def ask_latest(self, rng, snaps, log):
        newest = max(sid for sid, _ in snaps)
        r = rng.choice(self.latest_refs)
        q = Query("detail:%d" % r, "detail", ["--json", "--detail", "--samples", "--ref", str(r)])
        code, d, named, err = self.ask(self.arc, None, q, None)
        log["ops"]["latest"] = log["ops"].get("latest", 0) + 1
        if code != 0 or err or len(named) != 1:
            log["errors" if code not in (0, 3) else "wrong"].append(
                "latest %s: exit %d, named %s: %r" % (q.qid, code, named, err[:300]))
            return
        sid, name = named[0]
        src = name.split("-", 1)[1]
        if sid < newest:
            log["wrong"].append("latest %s answered from snapshot %d (%s), older than %d listed before" % (
                q.qid, sid, name, newest))
        elif (code, d) != self.truth.get((src, q.qid)):
            log["wrong"].append("latest %s from snapshot %d (%s): not the truth" % (q.qid, sid, name))

    # -- running it --

    def run_children(self, deadline):
        ctx = multiprocessing.get_context("fork")
        procs = []

        def spawn(name, fn, *args):
            path = os.path.join(self.tmp, "log-%s.json" % name)

            def body():
                log = {"errors": [], "wrong": [], "vanished": [], "lists": [], "kills": [], "ops": {},
                       "killed_random": 0, "imported": [], "compactions": [], "seq0": self.seq0,
                       "vanished_series": 0}
                try:
                    fn(*args, log)
                except Exception as ex:  # noqa: BLE001 -- reported as a failure of the campaign
                    log["errors"].append("%s crashed: %r" % (name, ex))
                with open(path, "w") as f:
                    json.dump(log, f)
                os._exit(0)
            p = ctx.Process(target=body, name=name)
            p.start()
            procs.append((name, p, path))

        spawn("importer", self.importer, deadline)
        spawn("compactor", self.compactor, deadline)
        for k in range(self.nreaders):
            spawn("reader%d" % k, self.reader, k, deadline)
        return procs

    def main(self):
        self.sources()
        self.build_truth()
        # a start: the first three sources
        self.seq0 = 0
        for s in self.order[:3]:
            code, _, err = run([self.snaparc, "import", "--name", "i%05d-%s" % (self.seq0, s), self.arc,
                                self.src[s]])
            if code:
                raise SystemExit("first import: %s" % err.decode())
            self.seq0 += 1
        start = self.start = now()
        deadline = start + self.seconds
        pin = Pin(self.arc)
        samples = []            # (t, {pid: txn}, pinned)
        pinned_time = 0.0
        procs = self.run_children(deadline)
        period = min(10.0, max(2.0, self.seconds / 6))
        last = now()
        while now() < deadline:
            pinned = int((now() - start) / period) % 2 == 0
            if pinned and not pin.held:
                pin.take()
            elif not pinned and pin.held:
                pin.give()
            samples.append((now(), dead_slots(readers(self.arc)), pin.held))
            time.sleep(0.5)
            if pin.held:
                pinned_time += now() - last
            last = now()
        if not pin.held:
            pin.take()
        logs = {}
        for name, p, path in procs:
            p.join(TIMEOUT)
            if p.is_alive():
                self.fail("%s did not stop" % name)
                p.kill()
                continue
            try:
                with open(path) as f:
                    logs[name] = json.load(f)
            except (OSError, ValueError):
                self.fail("%s left no log (exit %s)" % (name, p.exitcode))
        ran = now() - start
        self.judge(logs, samples, ran, pinned_time, pin)
        pin.give()
        if self.failures:
            print("load: FAILED, work kept in %s" % self.tmp)
            return 1
        if not os.environ.get("SNAPARC_LOAD_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 0

    def judge(self, logs, samples, ran, pinned_time, pin):
        errors = [e for lg in logs.values() for e in lg["errors"]]
        wrong = [w for lg in logs.values() for w in lg["wrong"]]
        imported = [tuple(x) for lg in logs.values() for x in lg["imported"]]
        compactions = [c for lg in logs.values() for c in lg["compactions"]]
        kills = [tuple(x) for lg in logs.values() for x in lg["kills"]]
        vanished = [tuple(x) for lg in logs.values() for x in lg["vanished"]]
        lists = [x for k, lg in logs.items() if k.startswith("reader") for x in lg["lists"]]
        ops = {}
        for lg in logs.values():
            for k, v in lg["ops"].items():
                ops[k] = ops.get(k, 0) + v
        killed_random = sum(lg["killed_random"] for lg in logs.values())
        vanished_series = sum(lg["vanished_series"] for lg in logs.values())
        for e in errors[:20]:
            self.fail("error: " + e)
        for w in wrong[:20]:
            self.fail("wrong answer: " + w)

        # the end: a reader killed in a transaction while the pin holds the archive
        final = self.final_phase()
        stale_end = final.pop("stale_before")

        names_final = [n for _, n in self.listing()]
        first = ["i%05d-%s" % (i, self.order[i % len(self.order)]) for i in range(self.seq0)]
        all_imported = first + [n for n, _, _, _ in sorted(imported, key=lambda x: x[1])] + final["imported"]
        dropped = set(all_imported) - set(names_final)
        keep = final["keep"]
        if names_final != all_imported[-keep:]:
            self.fail("after compact --keep-last %d the archive holds %s, not the newest %s" % (
                keep, names_final, all_imported[-keep:]))
        for name, t in vanished:
            if name not in dropped:
                self.fail("snapshot %s answered not found but was never dropped" % name)
        # a snapshot gone from a listing begun after its import ended never
        # comes back (listings in order of their start; a snapshot counts as
        # gone at the end of the first listing without it)
        imported_at = sorted([(t1, n) for n, _, _, t1 in imported] + [(0.0, n) for n in first])
        gone_at, candidates, i = {}, set(), 0
        lists.sort(key=lambda x: x[0])
        for t0, t1, names in lists:
            while i < len(imported_at) and imported_at[i][0] < t0:
                candidates.add(imported_at[i][1])
                i += 1
            for n in candidates - set(names):
                gone_at[n] = t1
            candidates -= gone_at.keys()
        back = 0
        for t0, t1, names in lists:
            for n in names:
                if n in gone_at and t0 > gone_at[n]:
                    back += 1
                    if back <= 5:
                        self.fail("snapshot %s listed again after a listing without it" % n)
        # the reader table during the run: a killed reader's slot is its
        # (pid, transaction) among the slots of dead processes
        cleanup = []
        stale_max = 0
        for pid, held, tk, _ in kills:
            seen = [t for t, dead, _ in samples if (pid, held) in dead and t > tk]
            cleanup.append(max(seen) - tk if seen else 0.0)
        slots = {(pid, held): tk for pid, held, tk, _ in kills}
        for t, dead, _ in samples:
            stale_max = max(stale_max, sum(1 for sl in dead if sl in slots and slots[sl] < t))
        # a writer clears dead readers' slots before each write transaction:
        # none may be seen after an import, or a compaction that deleted
        # retired segments or found some still in use, began after the kill
        # and ended
        outlived = 0
        for pid, held, tk, _ in kills:
            after = [c["t1"] for c in compactions if c["t0"] > tk and
                     (c["segments_deleted"] or c["segments_pending"])]
            after += [t1 for _, _, t0, t1 in imported if t0 > tk]
            if after and any((pid, held) in dead and t > min(after) for t, dead, _ in samples):
                outlived += 1
                if outlived <= 5:
                    self.fail("the slot of reader %d, killed at %.1f s, outlived a writer that ended at %.1f s"
                              % (pid, tk - self.start, min(after) - self.start))
        in_txn = sum(1 for _, held, _, _ in kills if held is not None)
        pending = [c["segments_pending"] for c in compactions]

        verifies = ops.pop("verify", 0)
        lookups = sum(v for k, v in ops.items() if not k.startswith("restore"))
        restores = sum(v for k, v in ops.items() if k.startswith("restore"))
        print("load: %.0f s (%.0f s pinned), %d readers" % (ran, pinned_time, self.nreaders))
        print("  lookups %d (%s), restores %d (%s), listings %d" % (
            lookups, ", ".join("%s %d" % (k, v) for k, v in sorted(ops.items()) if not k.startswith("restore")),
            restores, ", ".join("%s %d" % (k, v) for k, v in sorted(ops.items()) if k.startswith("restore")),
            len(lists)))
        print("  verify runs %d (all must say sound)" % verifies)
        print("  imports %d, compactions %d (snapshots dropped %d; retired segments pending after %d of them,"
              " at most %d)" % (len(imported) + len(final["imported"]), len(compactions) + 1,
                                sum(c["snapshots_dropped"] for c in compactions) + final["dropped"],
                                sum(1 for p in pending if p), max(pending or [0])))
        print("  answers 'not found' (exit 3) for a dropped snapshot: %d (%d of them 'no series ...', the snapshot"
              " gone after the command found it)" % (len(vanished), vanished_series))
        print("  readers killed: %d holding a read transaction (reader table), %d at a random moment"
              " (restores), %d before the table showed them; +1 at the end" % (
                  in_txn, killed_random, len(kills) - in_txn))
        print("  killed readers' slots: at most %d at once, gone %.1f s after the kill at most"
              " (sampled every 0.5 s), %d seen after a writer that cleared, %d left when the run stopped" % (
                  stale_max, max(cleanup or [0]), outlived, stale_end))
        print("  end: stale slot %s after an import, %s after compaction; segments pending %d; "
              "reader slots after %d; retired entry %s; verify %s" % (
                  "kept" if final["stale_after_import"] else "gone",
                  "kept" if final["stale_after_compact"] else "gone", final["pending"], final["slots_after"],
                  "present" if final["retired"] else "absent", "sound" if final["verify"] == 0 else "FAILED"))
        print("  final sweep: %d queries of %d kept snapshots, %d wrong" % (
            final["swept"], len(names_final), final["sweep_wrong"]))
        print("  errors %d, wrong answers %d, resurrected %d" % (
            len(errors) + final["errors"], len(wrong) + final["sweep_wrong"], back))

    def final_phase(self):
        """With the pin held: a reader killed in a transaction, then an import
        and a compaction; what is left of it."""
        r = {"imported": [], "errors": 0}
        r["stale_before"] = len(dead_slots(readers(self.arc)))
        snaps = self.listing()
        log = {"kills": [], "errors": [], "wrong": [], "vanished": []}
        self.doomed(random.Random(self.seed), snaps, log, hold=0)
        if not log["kills"] or log["kills"][0][1] is None:
            self.fail("the last reader was not seen holding a read transaction: %s" % log)
            return dict(r, stale_after_import=0, stale_after_compact=0, pending=-1, slots_after=-1, retired=1,
                        verify=-1, keep=0, dropped=0, swept=0, sweep_wrong=0)
        slot = tuple(log["kills"][0][:2])
        pid = slot[0]
        if slot not in readers(self.arc):
            self.fail("the killed reader %d is not in the reader table" % pid)
        seq = max(int(n[1:6]) for _, n in snaps) + 1000
        name = "i%05d-%s" % (seq, self.order[seq % len(self.order)])
        code, _, err = run([self.snaparc, "import", "--name", name, self.arc, self.src[name.split("-")[1]]])
        if code:
            self.fail("final import exited %d: %s" % (code, err.decode()))
            r["errors"] += 1
        else:
            r["imported"].append(name)
        r["stale_after_import"] = int(slot in readers(self.arc))
        if r["stale_after_import"]:
            self.fail("the killed reader %d's slot outlived an import (writers clear dead readers)" % pid)
        keep = 3
        code, out, err = run([self.snaparc, "compact", "--json", "--keep-last", str(keep), self.arc])
        if code:
            self.fail("final compaction exited %d: %s" % (code, err.decode()))
            r["errors"] += 1
            j = {"segments_pending": -1, "snapshots_dropped": 0}
        else:
            j = json.loads(out)
        r.update(keep=keep, dropped=j["snapshots_dropped"], pending=j["segments_pending"])
        if j["segments_pending"] != 0:
            self.fail("the final compaction left %d retired segment(s) pending: the dead reader blocks them"
                      % j["segments_pending"])
        table = readers(self.arc)
        r["stale_after_compact"] = int(slot in table)
        r["slots_after"] = len(table)
        if table:
            self.fail("after the final compaction the reader table holds %s (pid %d was killed)" % (table, pid))
        code, out, err = run(["mdb_dump", "-s", "meta", os.path.join(self.arc, "index")])
        r["retired"] = int(code != 0 or b"72657469726564" in out)
        if r["retired"]:
            self.fail("the index still has a 'retired' entry (or mdb_dump failed: %s)" % err.decode())
        code, out, err = run([self.snaparc, "verify", self.arc])
        r["verify"] = code
        if code:
            self.fail("verify exited %d: %s%s" % (code, out.decode()[-500:], err.decode()[-500:]))
        # every query of every kept snapshot
        swept = wrong = 0
        out_dir = os.path.join(self.tmp, "final-out")
        for sid, n in self.listing():
            src = n.split("-", 1)[1]
            for q in self.queries[src]:
                code, d, named, err = self.ask(self.arc, sid, q, out_dir)
                swept += 1
                if (code, d) != self.truth[(src, q.qid)] or any(x != (sid, n) for x in named):
                    wrong += 1
                    if wrong <= 5:
                        self.fail("final: %s of snapshot %d (%s): exit %s, not the truth: %r" % (
                            q.qid, sid, n, code, err[:300]))
        r.update(swept=swept, sweep_wrong=wrong)
        return r


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def readers(arc):
    """LMDB's reader table: a set of (pid, txnid or None) slots; only a slot
    holding a transaction has a txnid. (mdb_stat -r neither begins a
    transaction nor clears dead slots.) pids wrap (pid_max is often 32768):
    a killed reader's slot is told apart by its transaction and by its pid
    being dead."""
    for attempt in range(5):
        code, out, err = run(["mdb_stat", "-r", os.path.join(arc, "index")], timeout=60)
        if out.startswith(b"Reader Table Status"):   # (its exit code is 1 even then)
            break
        # mdb_stat opens the environment as a process of its own, beside
        # compaction's rewrite of the index file: say so, and look again
        print("load: mdb_stat -r exited %d: %s; again" % (code, err.decode().strip()), flush=True)
        time.sleep(0.05)
    table = set()
    if not out.startswith(b"Reader Table Status"):
        raise RuntimeError("mdb_stat -r exited %d: %s" % (code, err.decode().strip()))
    for line in out.decode().splitlines():
        f = line.split()
        if len(f) == 3 and f[0].isdigit():
            table.add((int(f[0]), int(f[2]) if f[2].isdigit() else None))
    return table


def dead_slots(table):
    """The slots of table whose process is gone."""
    return {(pid, txn) for pid, txn in table if not alive(pid)}


class Pin:
    """The archive held open as a host holds it, with no transaction: a shared
    lock on ARCHIVE/users (so that compaction does not rewrite the index) and
    the LMDB environment open (so that LMDB never finds itself alone and resets
    its reader table: dead readers' slots stay until a writer clears them)."""

    lib = None

    def __init__(self, arc):
        self.arc = arc
        self.held = False
        if Pin.lib is None:
            Pin.lib = ctypes.CDLL(ctypes.util.find_library("lmdb") or "liblmdb.so.0")
            Pin.lib.mdb_env_set_mapsize.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
            Pin.lib.mdb_env_open.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int]
            Pin.lib.mdb_env_set_maxreaders.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            Pin.lib.mdb_env_set_maxdbs.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            Pin.lib.mdb_env_close.argtypes = [ctypes.c_void_p]

    def take(self):
        self.fd = os.open(os.path.join(self.arc, "users"), os.O_RDONLY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        self.env = ctypes.c_void_p()
        lib = Pin.lib
        if lib.mdb_env_create(ctypes.byref(self.env)):
            raise SystemExit("pin: mdb_env_create failed")
        lib.mdb_env_set_maxreaders(self.env, 510)
        lib.mdb_env_set_maxdbs(self.env, 16)
        lib.mdb_env_set_mapsize(self.env, 1 << 30)
        rc = lib.mdb_env_open(self.env, os.path.join(self.arc, "index").encode(), MDB_RDONLY | MDB_NOTLS, 0o644)
        if rc:
            raise SystemExit("pin: mdb_env_open failed: %d" % rc)
        self.held = True

    def give(self):
        if self.held:
            Pin.lib.mdb_env_close(self.env)
            os.close(self.fd)
            self.held = False


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    for tool in ("mdb_stat", "mdb_dump"):
        if not shutil.which(tool):
            print("load: %s (Debian's lmdb-utils) is missing" % tool, file=sys.stderr)
            return 77
    return Load(*sys.argv[1:]).main()


if __name__ == "__main__":
    sys.exit(main())
