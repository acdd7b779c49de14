/*
 * bench_scale: the archive's figures at several snapshot sizes, each beside
 * a peer's measured in the same run, in one table.
 *
 *   bench_scale [--sizes N,N,...] [--work DIR] [--lookups K] [--no-prometheus]
 *               [--compact-series N] [--compact-snapshots K] [--compact-step S]
 *               [--runs R] [--keep]
 *
 * For each size (default 100000,1000000,10000000) a snapshot from snapgen
 * (--tombstones 100 --exemplars 10000, as bench_archive), kept in
 * DIR/gen-N and reused when it is there:
 *   - peers: a plain read() of its files (after one read that warms the page
 *     cache), cp -r, and Prometheus 2.42 loading it and writing it again on
 *     SIGTERM (the log lines "chunk snapshot loaded" and "chunk snapshot
 *     complete"), with its peak RssAnon; skipped, with the reason in the
 *     table, when Prometheus would not fit in the memory available;
 *   - import and the whole restore as the snaparc command, a child process
 *     whose RssAnon (/proc/PID/status) is sampled every 10 ms: its wall and
 *     CPU time (user and system: the machine's other work moves it less) and
 *     its peak RssAnon; each R times (default 3: a fresh archive, a fresh
 *     output), the fastest run's times and the largest peak of all. One run
 *     alone moves with what ran before it: the first import after
 *     Prometheus, which let go of gigabytes, took 1.61 s where the next two
 *     took 1.13 and 1.17 (1M series);
 *   - in this process: lookups by ref and by label set (K random series,
 *     one at a time), and the median of 21 restores of one series, each into
 *     a fresh directory, fsync included;
 *   - the archive's bytes (du of segments and index) against the snapshot's.
 * Then compaction: K periodic snapshots of N series (snapgen --periodic K
 * --step S, default 10 of 1,000,000 at 10 samples between snapshots: one
 * head that runs on, each series' chunk growing and cut at 120 at a phase of
 * its own, as bench_compact's workload), imported into one archive by one
 * snaparc import, then snaparc compact, timed with its peak RssAnon, beside
 * cp -r of the archive it reads.
 * Import and restore run as separate processes so that their memory is
 * theirs alone: the table's RssAnon is the command's, not this program's,
 * which holds the lookup targets and an open archive.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "bench_util.h"
#include "snapdir.h"

#ifndef SNAPARC_CMD
#define SNAPARC_CMD "snaparc"
#endif
#ifndef SNAPGEN_CMD
#define SNAPGEN_CMD "snapgen"
#endif

#define MAX_SIZES 8
#define MIB_BOUND (64.0 * 1024 * 1024)
/* Prometheus' RssAnon a series before one size has been measured: 1.95 kB
 * loading 100k generated series (2.42, this machine), rounded up. */
#define PROM_PRIOR_KB_PER_SERIES 2.5
#define PROM_MARGIN 1.5                          /* its heap's growth is not linear */
#define PROM_RESERVE_KB (2ull << 20)             /* left to the machine's other users */
#define PROM_GUARD_KB (1ull << 20)               /* killed under this MemAvailable */

struct opts {
	uint64_t sizes[MAX_SIZES], lookups, compact_series;
	uint32_t compact_snapshots, compact_step;
	int nsizes, prometheus, keep, runs;
	const char *work;
};

/* One size's figures; a negative time is one not measured. */
struct size_result {
	uint64_t want, series, snap_bytes, arc_bytes, idx_bytes;
	double t_read, t_cp, t_import, t_restore, t_restore_one, t_restore_one_min;
	double cpu_import, cpu_restore;     /* the commands' user and system time */
	uint64_t anon_import_kb, anon_restore_kb, rss_import_kb, rss_restore_kb;
	struct bench_pct by_ref, by_labels;
	int depth_series, depth_hashes;
	struct bench_prometheus prom;
	char prom_skip[256], failed[256];
	double load_start, load_end, cpu_wait, io_wait;   /* the machine's other work */
};

struct compact_result {
	uint64_t series_each, series_all, input_bytes, bytes_before, bytes_after;
	uint32_t snapshots, step;
	double t_import, t_compact, t_cp, cpu_import, cpu_compact;
	uint64_t anon_import_kb, anon_compact_kb, rss_import_kb, rss_compact_kb;
	char failed[256];
};

static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f && fscanf(f, "%lf", &l) != 1)
		l = -1;
	if (f)
		fclose(f);
	return l;
}

/* The share of the last 60 s in which some task waited for resource
 * ("cpu", "io"), in percent (Linux PSI); -1 unknown. */
static double pressure(const char *resource)
{
	char path[64];
	double v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/pressure/%s", resource);
	if ((f = fopen(path, "r")) && fscanf(f, "some avg10=%*f avg60=%lf", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static int rm_rf(const char *path)
{
	char cmd[4500];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) == 0)
		return 0;
	fprintf(stderr, "bench_scale: could not remove %s\n", path);
	return -1;
}

static double copy_timed(const char *from, const char *to)
{
	char cmd[9000];

	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", from, to);
	return bench_run_timed(cmd);
}

static void print_file(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		fputs(line, stderr);
	if (f)
		fclose(f);
}

/* The sum of every number after "key": in a file of JSON lines, and how
 * many there were. */
static double json_sum(const char *path, const char *key, int *count)
{
	char line[8192], pat[64];
	double sum = 0;
	FILE *f = fopen(path, "r");

	*count = 0;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, pat);

		if (p) {
			sum += strtod(p + strlen(pat), NULL);
			(*count)++;
		}
	}
	if (f)
		fclose(f);
	return sum;
}

/* The B-tree depth of one of the index's databases (mdb_stat), 0 unknown. */
static int tree_depth(const char *arc, const char *db)
{
	char cmd[4600], line[256];
	int depth = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "mdb_stat -s %s '%s/index' 2>/dev/null", db, arc);
	if (!(f = popen(cmd, "r")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " Tree depth: %d", &depth) == 1)
			break;
	pclose(f);
	return depth;
}

/* Runs the snaparc command; its stdout to work/NAME.out, stderr to
 * work/NAME.err (printed when it fails). */
static int snaparc(const char *work, const char *name, char *const argv[], struct bench_child *c)
{
	char out[4300], err[4300];

	snprintf(out, sizeof(out), "%s/%s.out", work, name);
	snprintf(err, sizeof(err), "%s/%s.err", work, name);
	sync();   /* its fdatasync can otherwise wait on other files' dirty pages */
	if (bench_child_run(c, argv, out, err) == 0)
		return 0;
	fprintf(stderr, "bench_scale: snaparc %s failed:\n", argv[1]);
	print_file(err);
	return -1;
}

/* Records why a step failed; -1. */
static int fail(char *why, size_t cap, const char *what, const char *path)
{
	snprintf(why, cap, "%s%s%s", what, *path ? " " : "", path);
	return -1;
}

/* A generated snapshot of n series under work, made unless it is there. */
static int snapshot_for(const struct opts *o, uint64_t n, char *dir, size_t cap)
{
	char top[4200], cmd[9000], spec[4300];
	struct err e;

	snprintf(top, sizeof(top), "%s/gen-%" PRIu64, o->work, n);
	snprintf(spec, sizeof(spec), "%s/chunk_snapshot.000000.0000000000", top);
	if (access(spec, F_OK) != 0) {   /* snapgen renames it into place once complete */
		double t;

		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && '%s' '%s' --series %" PRIu64
			 " --tombstones 100 --exemplars 10000 --quiet", top, SNAPGEN_CMD, top, n);
		if ((t = bench_run_timed(cmd)) < 0) {
			fprintf(stderr, "bench_scale: %s failed\n", cmd);
			return -1;
		}
		fprintf(stderr, "bench_scale: generated %" PRIu64 " series in %.1f s\n", n, t);
	}
	if (snapdir_resolve(spec, dir, cap, &e)) {
		fprintf(stderr, "bench_scale: %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* Prometheus on the snapshot, unless its memory would not fit: the largest
 * earlier size's RssAnon a series (else a prior), with a margin. */
static void prometheus(const char *dir, const char *work, const struct size_result *done, int ndone,
		       struct size_result *r)
{
	double per_kb = PROM_PRIOR_KB_PER_SERIES, need_kb;
	uint64_t avail = bench_mem_available_kb();
	const char *from = "a prior";
	char basis[64];

	for (int i = 0; i < ndone; i++) {
		uint64_t peak = done[i].prom.anon_load_kb > done[i].prom.anon_write_kb ? done[i].prom.anon_load_kb :
				done[i].prom.anon_write_kb;

		if (done[i].prom.load > 0 && peak && done[i].series) {
			per_kb = (double)peak / (double)done[i].series;
			from = "measured";
		}
	}
	snprintf(basis, sizeof(basis), "%.2f kB a series, %s", per_kb, from);
	need_kb = per_kb * (double)r->want * PROM_MARGIN;
	if (need_kb + (double)PROM_RESERVE_KB > (double)avail) {
		snprintf(r->prom_skip, sizeof(r->prom_skip), "not run: needs about %.1f GiB (%s, x%.1f), "
			 "%.1f GiB available", need_kb / 1048576, basis, PROM_MARGIN, (double)avail / 1048576);
		return;
	}
	fprintf(stderr, "bench_scale: Prometheus on %" PRIu64 " series (needs about %.1f GiB, %.1f available)\n",
		r->want, need_kb / 1048576, (double)avail / 1048576);
	if (bench_prometheus_cycle(dir, work, PROM_GUARD_KB, &r->prom))
		snprintf(r->prom_skip, sizeof(r->prom_skip), "failed: %s", r->prom.failed);
}

/* In this process: lookups and one-series restores. */
static int lookups(const struct opts *o, const char *dir, const char *arc, uint32_t id, struct size_result *r)
{
	struct archive_opts ao = { .read_only = 1 };
	struct bench_targets t;
	struct archive *a;
	struct err e;

	if (archive_open(&a, arc, &ao, &e))
		return fail(r->failed, sizeof(r->failed), e.msg, "");
	if (bench_targets_collect(dir, 100000, &t, &e)) {
		archive_close(a);
		bench_targets_free(&t);
		return fail(r->failed, sizeof(r->failed), e.msg, "");
	}
	bench_lookups(a, id, &t, o->lookups, &r->by_ref, &r->by_labels);
	r->t_restore_one = bench_restore_one(a, "bench", t.refs, t.n, o->work, 21, &r->t_restore_one_min);
	archive_close(a);
	bench_targets_free(&t);
	r->depth_series = tree_depth(arc, "series");
	r->depth_hashes = tree_depth(arc, "hashes");
	return 0;
}

/* Run i of a command: the fastest run's wall and CPU time, the largest
 * memory of all. */
static void take_run(int i, const struct bench_child *c, double *t, double *cpu, uint64_t *anon_kb,
		     uint64_t *rss_kb)
{
	if (!i || c->end - c->start < *t) {
		*t = c->end - c->start;
		*cpu = c->cpu;
	}
	if (!i || c->anon_peak_kb > *anon_kb)
		*anon_kb = c->anon_peak_kb;
	if (!i || c->maxrss_kb > *rss_kb)
		*rss_kb = c->maxrss_kb;
}

static int one_size(const struct opts *o, struct size_result *all, int at)
{
	struct size_result *r = &all[at];
	char dir[4096], arc[4300], rdir[4300], cp[4300], out[4400];
	struct bench_child c;
	int n;

	r->load_start = loadavg();
	r->t_read = r->t_cp = r->t_import = r->t_restore = r->t_restore_one = -1;
	if (snapshot_for(o, r->want, dir, sizeof(dir)))
		return fail(r->failed, sizeof(r->failed), "no snapshot", "");
	snprintf(arc, sizeof(arc), "%s/archive", o->work);
	snprintf(rdir, sizeof(rdir), "%s/restore-all", o->work);
	snprintf(cp, sizeof(cp), "%s/cp", o->work);
	if (rm_rf(arc) || rm_rf(rdir) || rm_rf(cp))
		return fail(r->failed, sizeof(r->failed), "cannot clear", o->work);
	r->snap_bytes = bench_tree_bytes(dir, 1);
	fprintf(stderr, "bench_scale: %" PRIu64 " series: peers\n", r->want);
	bench_plain_read(dir);   /* warm the page cache: every peer reads from memory */
	r->t_read = bench_plain_read(dir);
	r->t_cp = copy_timed(dir, cp);
	if (rm_rf(cp))
		return fail(r->failed, sizeof(r->failed), "cannot remove", cp);
	sync();
	if (!o->prometheus)
		snprintf(r->prom_skip, sizeof(r->prom_skip), "not run (--no-prometheus)");
	else
		prometheus(dir, o->work, all, at, r);

	fprintf(stderr, "bench_scale: %" PRIu64 " series: import\n", r->want);
	bench_plain_read(dir);   /* Prometheus' heap may have pushed it out */
	for (int i = 0; i < o->runs; i++) {
		char *argv[] = { SNAPARC_CMD, "import", "--json", "--name", "bench", arc, dir, NULL };

		if (i && rm_rf(arc))
			return fail(r->failed, sizeof(r->failed), "cannot remove", arc);
		if (snaparc(o->work, "import", argv, &c))
			return fail(r->failed, sizeof(r->failed), "import failed", "");
		take_run(i, &c, &r->t_import, &r->cpu_import, &r->anon_import_kb, &r->rss_import_kb);
	}
	snprintf(out, sizeof(out), "%s/import.out", o->work);
	r->series = (uint64_t)json_sum(out, "series", &n);
	if (n != 1)
		return fail(r->failed, sizeof(r->failed), "no series count in", out);
	if (lookups(o, dir, arc, (uint32_t)json_sum(out, "snapshot", &n), r))
		return -1;

	fprintf(stderr, "bench_scale: %" PRIu64 " series: restore\n", r->want);
	for (int i = 0; i < o->runs; i++) {
		char *argv[] = { SNAPARC_CMD, "restore", "--snapshot", "bench", arc, "--out", rdir, NULL };

		if (i && rm_rf(rdir))
			return fail(r->failed, sizeof(r->failed), "cannot remove", rdir);
		if (snaparc(o->work, "restore", argv, &c))
			return fail(r->failed, sizeof(r->failed), "restore failed", "");
		take_run(i, &c, &r->t_restore, &r->cpu_restore, &r->anon_restore_kb, &r->rss_restore_kb);
	}
	snprintf(out, sizeof(out), "%s/index", arc);
	r->idx_bytes = bench_tree_bytes(out, 1);
	r->arc_bytes = bench_tree_bytes(arc, 1);
	rm_rf(rdir);
	if (!o->keep)
		rm_rf(arc);
	r->load_end = loadavg();
	r->cpu_wait = pressure("cpu");
	r->io_wait = pressure("io");
	return 0;
}

static int compaction(const struct opts *o, struct compact_result *r)
{
	char top[4200], arc[4300], cp[4300], last[4400], out[4400];
	char *argv[8 + 64] = { SNAPARC_CMD, "import", "--json" }, *dirs[64] = { 0 };
	struct bench_child c;
	int n, argc = 3, rc = -1;

	r->snapshots = o->compact_snapshots;
	r->step = o->compact_step;
	r->series_each = o->compact_series;
	r->t_import = r->t_compact = r->t_cp = -1;
	snprintf(top, sizeof(top), "%s/periodic-%" PRIu64 "-%u-%u", o->work, r->series_each, r->snapshots, r->step);
	snprintf(arc, sizeof(arc), "%s/archive-compact", o->work);
	snprintf(cp, sizeof(cp), "%s/cp", o->work);
	snprintf(last, sizeof(last), "%s/chunk_snapshot.000000.%010u", top, r->snapshots - 1);
	if (access(last, F_OK) != 0) {
		double t;

		snprintf(out, sizeof(out), "rm -rf '%s' && '%s' '%s' --series %" PRIu64 " --periodic %u --step %u --quiet",
			 top, SNAPGEN_CMD, top, r->series_each, r->snapshots, r->step);
		if ((t = bench_run_timed(out)) < 0)
			return fail(r->failed, sizeof(r->failed), "snapgen failed:", out);
		fprintf(stderr, "bench_scale: generated %u periodic snapshots in %.1f s\n", r->snapshots, t);
	}
	if (rm_rf(arc) || rm_rf(cp))
		return fail(r->failed, sizeof(r->failed), "cannot clear", o->work);
	argv[argc++] = arc;
	for (uint32_t j = 0; j < r->snapshots; j++) {
		if (!(dirs[j] = malloc(4400))) {
			fail(r->failed, sizeof(r->failed), "out of memory", "");
			goto out;
		}
		snprintf(dirs[j], 4400, "%s/chunk_snapshot.000000.%010u", top, j);
		argv[argc++] = dirs[j];
	}
	argv[argc] = NULL;
	fprintf(stderr, "bench_scale: compaction: importing %u snapshots\n", r->snapshots);
	if (snaparc(o->work, "import-compact", argv, &c)) {
		fail(r->failed, sizeof(r->failed), "import failed", "");
		goto out;
	}
	r->t_import = c.end - c.start;
	r->cpu_import = c.cpu;
	r->anon_import_kb = c.anon_peak_kb;
	r->rss_import_kb = c.maxrss_kb;
	snprintf(out, sizeof(out), "%s/import-compact.out", o->work);
	r->series_all = (uint64_t)json_sum(out, "series", &n);
	r->bytes_before = bench_tree_bytes(arc, 1);
	sync();
	r->t_cp = copy_timed(arc, cp);
	rm_rf(cp);
	fprintf(stderr, "bench_scale: compaction: compacting\n");
	{
		char *cargv[] = { SNAPARC_CMD, "compact", "--json", arc, NULL };

		if (snaparc(o->work, "compact", cargv, &c)) {
			fail(r->failed, sizeof(r->failed), "compact failed", "");
			goto out;
		}
	}
	r->t_compact = c.end - c.start;
	r->cpu_compact = c.cpu;
	r->anon_compact_kb = c.anon_peak_kb;
	r->rss_compact_kb = c.maxrss_kb;
	snprintf(out, sizeof(out), "%s/compact.out", o->work);
	r->input_bytes = (uint64_t)json_sum(out, "input_bytes", &n);
	r->bytes_after = bench_tree_bytes(arc, 1);
	if (!o->keep)
		rm_rf(arc);
	rc = 0;
out:
	for (uint32_t j = 0; j < r->snapshots; j++)
		free(dirs[j]);
	return rc;
}

/* ---- the table ---- */

static void row(const char *op, const char *size, const char *ours, const char *per, const char *peer,
		const char *peer_figure, const char *ratio, const char *met)
{
	printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", op, size, ours, per, peer, peer_figure, ratio, met);
}

static const char *size_name(uint64_t n, char *b, size_t cap)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(b, cap, "%" PRIu64 "M", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(b, cap, "%" PRIu64 "k", n / 1000);
	else
		snprintf(b, cap, "%" PRIu64, n);
	return b;
}

static const char *yes(int met)
{
	return met ? "yes" : "**no**";
}

static double mib(uint64_t kb)
{
	return (double)kb / 1024;
}

/* Peak RssAnon against the bound, and against Prometheus' when it ran. */
static void memory_row(const char *op, const char *size, uint64_t anon_kb, uint64_t rss_kb, uint64_t series,
		       const char *peer, uint64_t peer_kb, const char *skip)
{
	char ours[128], per[64], fig[256], ratio[64], met[64];

	snprintf(ours, sizeof(ours), "%.1f MiB (max RSS %.0f MiB with mapped files)", mib(anon_kb), mib(rss_kb));
	snprintf(per, sizeof(per), "%.1f B", (double)anon_kb * 1024 / (double)series);
	if (peer_kb) {
		snprintf(fig, sizeof(fig), "%.2f GiB, %.0f B a series", mib(peer_kb) / 1024,
			 (double)peer_kb * 1024 / (double)series);
		snprintf(ratio, sizeof(ratio), "%.0fx less", (double)peer_kb / (double)anon_kb);
	} else {
		snprintf(fig, sizeof(fig), "%s", skip ? skip : "");
		ratio[0] = 0;
	}
	snprintf(met, sizeof(met), "<= 64 MiB: %s", yes((double)anon_kb * 1024 <= MIB_BOUND));
	row(op, size, ours, per, peer ? peer : "", fig, ratio, met);
}

/* "Nx faster" when the peer's time is known, else nothing. */
static void faster(char *b, size_t cap, double peer, double ours)
{
	if (peer <= 0 || ours <= 0)
		b[0] = 0;
	else if (peer / ours >= 100)
		snprintf(b, cap, "%.0fx faster", peer / ours);
	else
		snprintf(b, cap, "%.1fx faster", peer / ours);
}

/* Prometheus' figure for a time, or why there is none. */
static void prom_figure(char *b, size_t cap, const struct size_result *r, double t, uint64_t series)
{
	if (t > 0)
		snprintf(b, cap, "%.2f s, %.2fM series/s", t, (double)series / t / 1e6);
	else
		snprintf(b, cap, "%s", r->prom_skip[0] ? r->prom_skip : "not in its log");
}

static void size_rows(const struct size_result *r)
{
	char sz[32], ours[256], per[128], fig[384], ratio[64], met[128];
	double prom_load = r->prom.load, prom_write = r->prom.write;
	double n = (double)r->series;

	size_name(r->want, sz, sizeof(sz));
	if (r->failed[0] || r->t_restore < 0) {
		row("(every operation)", sz, "failed", "", "", r->failed, "", "");
		return;
	}
	snprintf(ours, sizeof(ours), "%.2f s, %.2fM series/s (CPU %.2f s)", r->t_import, n / r->t_import / 1e6,
		 r->cpu_import);
	snprintf(per, sizeof(per), "%.2f µs (CPU %.2f µs)", r->t_import / n * 1e6, r->cpu_import / n * 1e6);
	prom_figure(fig, sizeof(fig), r, prom_load, r->prom.load_series);
	faster(ratio, sizeof(ratio), prom_load, r->t_import);
	snprintf(met, sizeof(met), ">= 1M series/s: %s; >= 5x Prometheus: %s", yes(n / r->t_import >= 1e6),
		 prom_load > 0 ? yes(prom_load / r->t_import >= 5) : "not measured");
	row("import", sz, ours, per, "Prometheus 2.42 loading the snapshot (its log)", fig, ratio, met);
	snprintf(fig, sizeof(fig), "%.3f s", r->t_read);
	snprintf(ratio, sizeof(ratio), "%.0fx its time", r->t_import / r->t_read);
	row("import", sz, "", "", "plain read() of the snapshot's files (page cache)", fig, ratio, "");
	snprintf(fig, sizeof(fig), "%.3f s", r->t_cp);
	snprintf(ratio, sizeof(ratio), "%.1fx its time", r->t_import / r->t_cp);
	row("import", sz, "", "", "cp -r of the snapshot", fig, ratio, "");
	memory_row("import: peak RssAnon", sz, r->anon_import_kb, r->rss_import_kb, r->series,
		   "Prometheus' peak RssAnon loading it", r->prom.load > 0 ? r->prom.anon_load_kb : 0, r->prom_skip);

	prom_figure(fig, sizeof(fig), r, prom_load, r->prom.load_series);
	snprintf(ours, sizeof(ours), "p50 %.2f µs, p99 %.2f µs", r->by_ref.p50 * 1e6, r->by_ref.p99 * 1e6);
	snprintf(per, sizeof(per), "(series B-tree depth %d)", r->depth_series);
	faster(ratio, sizeof(ratio), prom_load, r->by_ref.p50);
	snprintf(met, sizeof(met), "p50 <= 3 µs: %s", yes(r->by_ref.p50 <= 3e-6));
	row("lookup by ref", sz, ours, per, "Prometheus' whole load, the only way to one series today (ratio of p50)",
	    fig, ratio, met);
	snprintf(ours, sizeof(ours), "p50 %.2f µs, p99 %.2f µs", r->by_labels.p50 * 1e6, r->by_labels.p99 * 1e6);
	snprintf(per, sizeof(per), "(hashes B-tree depth %d)", r->depth_hashes);
	faster(ratio, sizeof(ratio), prom_load, r->by_labels.p50);
	row("lookup by labels", sz, ours, per, "the same", fig, ratio, "no target");
	snprintf(ours, sizeof(ours), "%.3f ms (median of 21, fsync included; fastest %.3f ms)", r->t_restore_one * 1e3,
		 r->t_restore_one_min * 1e3);
	faster(ratio, sizeof(ratio), prom_load, r->t_restore_one);
	snprintf(met, sizeof(met), "<= 1 ms: %s", yes(r->t_restore_one > 0 && r->t_restore_one <= 1e-3));
	row("restore one series", sz, ours, "", "the same", fig, ratio, met);

	snprintf(ours, sizeof(ours), "%.2f s, %.2fM series/s (CPU %.2f s)", r->t_restore, n / r->t_restore / 1e6,
		 r->cpu_restore);
	snprintf(per, sizeof(per), "%.2f µs (CPU %.2f µs)", r->t_restore / n * 1e6, r->cpu_restore / n * 1e6);
	prom_figure(fig, sizeof(fig), r, prom_write, r->prom.write_series);
	faster(ratio, sizeof(ratio), prom_write, r->t_restore);
	snprintf(met, sizeof(met), ">= 1.5M series/s: %s", yes(n / r->t_restore >= 1.5e6));
	row("full restore", sz, ours, per, "Prometheus 2.42 writing its snapshot on SIGTERM (its log)", fig, ratio,
	    met);
	snprintf(fig, sizeof(fig), "%.3f s", r->t_cp);
	snprintf(ratio, sizeof(ratio), "%.1fx its time", r->t_restore / r->t_cp);
	row("full restore", sz, "", "", "cp -r of the snapshot", fig, ratio, "");
	memory_row("full restore: peak RssAnon", sz, r->anon_restore_kb, r->rss_restore_kb, r->series,
		   "Prometheus' peak RssAnon writing it", r->prom.write > 0 ? r->prom.anon_write_kb : 0,
		   r->prom_skip);

	snprintf(ours, sizeof(ours), "%.1f MB (index %.1f MB)", (double)r->arc_bytes / 1e6, (double)r->idx_bytes / 1e6);
	snprintf(per, sizeof(per), "%.0f B (index %.1f B)", (double)r->arc_bytes / n, (double)r->idx_bytes / n);
	snprintf(fig, sizeof(fig), "%.1f MB, %.0f B a series", (double)r->snap_bytes / 1e6, (double)r->snap_bytes / n);
	snprintf(ratio, sizeof(ratio), "%.3fx", (double)r->arc_bytes / (double)r->snap_bytes);
	row("archive bytes (du)", sz, ours, per, "the snapshot (du)", fig, ratio,
	    "<= 0.35x is for real snapshots: n/a");
}

static void compact_rows(const struct compact_result *r)
{
	char sz[64], each[32], ours[256], per[64], fig[128], ratio[64], met[64];
	double mbs;

	snprintf(sz, sizeof(sz), "%u x %s", r->snapshots, size_name(r->series_each, each, sizeof(each)));
	if (r->failed[0] || r->t_compact < 0) {
		row("compaction", sz, "failed", "", "", r->failed, "", "");
		return;
	}
	snprintf(ours, sizeof(ours), "%.2f s, %.2fM series/s (CPU %.2f s)", r->t_import,
		 (double)r->series_all / r->t_import / 1e6, r->cpu_import);
	snprintf(per, sizeof(per), "%.2f µs (CPU %.2f µs)", r->t_import / (double)r->series_all * 1e6,
		 r->cpu_import / (double)r->series_all * 1e6);
	row("import of its input, one command into one archive", sz, ours, per, "", "", "", "");
	memory_row("that import: peak RssAnon", sz, r->anon_import_kb, r->rss_import_kb, r->series_all, NULL, 0, NULL);
	mbs = (double)r->input_bytes / 1e6 / r->t_compact;
	snprintf(ours, sizeof(ours), "%.2f s (CPU %.2f s), %.0f MB/s of %.0f MB archived input; archive %.0f -> %.0f MB",
		 r->t_compact, r->cpu_compact, mbs, (double)r->input_bytes / 1e6, (double)r->bytes_before / 1e6,
		 (double)r->bytes_after / 1e6);
	snprintf(per, sizeof(per), "%.2f µs (CPU %.2f µs)", r->t_compact / (double)r->series_all * 1e6,
		 r->cpu_compact / (double)r->series_all * 1e6);
	snprintf(fig, sizeof(fig), "%.2f s, %.0f MB/s", r->t_cp, (double)r->bytes_before / 1e6 / r->t_cp);
	snprintf(ratio, sizeof(ratio), "%.1fx its time", r->t_compact / r->t_cp);
	snprintf(met, sizeof(met), ">= 200 MB/s: %s", yes(mbs >= 200));
	row("compaction", sz, ours, per, "cp -r of the archive", fig, ratio, met);
	memory_row("compaction: peak RssAnon", sz, r->anon_compact_kb, r->rss_compact_kb, r->series_all, NULL, 0,
		   NULL);
}

/* Per series, the largest size against the smallest: flat is 1.00x. */
static void flatness(const struct size_result *r, int n)
{
	const struct size_result *a = NULL, *b = NULL;
	char sa[32], sb[32];

	for (int i = 0; i < n; i++) {
		if (r[i].failed[0] || r[i].t_restore < 0)
			continue;
		if (!a || r[i].series < a->series)
			a = &r[i];
		if (!b || r[i].series > b->series)
			b = &r[i];
	}
	if (!a || a == b)
		return;
	printf("\nPer series, %s against %s (flat is 1.00x): import %.2fx (CPU %.2fx), full restore %.2fx (CPU %.2fx), "
	       "archive bytes %.2fx, "
	       "index bytes %.2fx; lookup by ref p50 %.2fx (depth %d -> %d), by labels %.2fx (depth %d -> %d); "
	       "peak RssAnon import %.2fx and restore %.2fx in total, not per series.\n",
	       size_name(b->want, sb, sizeof(sb)), size_name(a->want, sa, sizeof(sa)),
	       (b->t_import / (double)b->series) / (a->t_import / (double)a->series),
	       (b->cpu_import / (double)b->series) / (a->cpu_import / (double)a->series),
	       (b->t_restore / (double)b->series) / (a->t_restore / (double)a->series),
	       (b->cpu_restore / (double)b->series) / (a->cpu_restore / (double)a->series),
	       ((double)b->arc_bytes / (double)b->series) / ((double)a->arc_bytes / (double)a->series),
	       ((double)b->idx_bytes / (double)b->series) / ((double)a->idx_bytes / (double)a->series),
	       b->by_ref.p50 / a->by_ref.p50, a->depth_series, b->depth_series, b->by_labels.p50 / a->by_labels.p50,
	       a->depth_hashes, b->depth_hashes, (double)b->anon_import_kb / (double)a->anon_import_kb,
	       (double)b->anon_restore_kb / (double)a->anon_restore_kb);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_scale [--sizes N,N,...] [--work DIR] [--lookups K] [--no-prometheus]\n"
		"                   [--compact-series N] [--compact-snapshots K] [--compact-step S]\n"
		"                   [--runs R] [--keep]\n");
}

static int parse_sizes(const char *s, struct opts *o)
{
	char *end;

	for (o->nsizes = 0; *s && o->nsizes < MAX_SIZES; s = *end ? end + 1 : end) {
		errno = 0;
		o->sizes[o->nsizes] = strtoull(s, &end, 10);
		if (errno || end == s || (*end && *end != ',') || !o->sizes[o->nsizes])
			return -1;
		o->nsizes++;
	}
	return *s || !o->nsizes ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .sizes = { 100000, 1000000, 10000000 }, .nsizes = 3, .lookups = 100000,
			  .compact_series = 1000000, .compact_snapshots = 10, .compact_step = 10, .prometheus = 1, .runs = 3,
			  .work = "/tmp/snaparc-scale" };
	struct size_result res[MAX_SIZES];
	struct compact_result cres;
	double load_start = loadavg();
	int failed = 0;

	memset(res, 0, sizeof(res));
	memset(&cres, 0, sizeof(cres));
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--sizes") && v && !parse_sizes(v, &o))
			i++;
		else if (!strcmp(argv[i], "--work") && v)
			o.work = argv[++i];
		else if (!strcmp(argv[i], "--lookups") && v && strtoull(v, NULL, 10))
			o.lookups = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--compact-series") && v)
			o.compact_series = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--compact-snapshots") && v && atoi(v) >= 2 && atoi(v) <= 64)
			o.compact_snapshots = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--compact-step") && v && atoi(v) >= 1)
			o.compact_step = (uint32_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--runs") && v && atoi(v) >= 1 && atoi(v) <= 20)
			o.runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-prometheus"))
			o.prometheus = 0;
		else if (!strcmp(argv[i], "--keep"))
			o.keep = 1;
		else {
			usage();
			return 2;
		}
	}
	if (mkdir(o.work, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench_scale: %s: %s\n", o.work, strerror(errno));
		return 1;
	}
	for (int i = 0; i < o.nsizes; i++) {
		res[i].want = o.sizes[i];
		failed |= one_size(&o, res, i) != 0;
	}
	if (o.compact_series)
		failed |= compaction(&o, &cres) != 0;

	printf("# bench_scale\n\n");
	printf("| operation | size | snaparc | per series | peer | peer's figure | ratio | target met |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < o.nsizes; i++)
		size_rows(&res[i]);
	if (o.compact_series)
		compact_rows(&cres);
	flatness(res, o.nsizes);
	printf("\nImport and full restore: the fastest of %d runs (its wall and CPU time), the largest peak "
	       "RssAnon of them.\n", o.runs);
	printf("\nThe machine's other work: load average (1 min) %.2f at the start, %.2f at the end", load_start,
	       loadavg());
	for (int i = 0; i < o.nsizes; i++)
		printf("; %" PRIu64 " series: %.2f before, %.2f after, then some task waiting for CPU %.0f%% and for "
		       "I/O %.0f%% of the last minute", res[i].want, res[i].load_start, res[i].load_end, res[i].cpu_wait,
		       res[i].io_wait);
	printf(".\n");
	return failed;
}
