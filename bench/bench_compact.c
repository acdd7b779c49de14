/*
 * bench_compact: what compaction gives back and what it costs, in one run.
 *
 *   bench_compact [--series N] [--snapshots K] [--step S] [--real DIR]...
 *                 [--work DIR] [--lookups L] [--check R] [--max-chain N] [--keep]
 *
 * Workloads, each imported snapshot by snapshot, in time order, into a fresh
 * archive and then compacted with the default options:
 *   generated (--series N, default 100,000; 0 skips it): K periodic snapshots
 *     (default 30) of one head that runs on, written by snapgen --periodic
 *     (each series' head chunk grows by S samples, default 10, between
 *     snapshots and is cut at 120, at a phase of its own);
 *   real (--real DIR): the rounds made by tests/prometheus/make-snapshot.sh
 *     DIR --rounds R (DIR/chunk_snapshot.*, DIR/round-02/chunk_snapshot.*, ...).
 * Figures: the snapshots' bytes (segment files as du counts them) against the
 * archive's (segments and index) before and after compaction; compaction's
 * time, MB/s of archived input (stats.input_bytes) and series/s (of all the
 * snapshots); memory (VmHWM, the peak RSS, LMDB's mapped pages included, over
 * the workload's imports and lookups, then reset through
 * /proc/self/clear_refs for compaction alone; RssAnon before, after and its
 * peak sampled from compaction's progress calls); lookup by ref p50/p99 on the newest and a middle
 * snapshot before and after (L random refs of that snapshot, after a warm
 * pass). Correctness: for R refs and every snapshot, the record read after
 * compaction must be the one read before, byte for byte, and for generated
 * snapshots the one gen makes for that snapshot.
 * Targets: generated after/snapshots <= 0.1x, real <= 0.3x; lookups after
 * <= 2x before.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "bench_util.h"
#include "gen.h"
#include "record.h"
#include "snapdir.h"
#include "wal.h"

#define MAX_REAL 8
#define MAX_ROUNDS 1000

struct opts {
	uint64_t series, lookups, check;
	uint32_t snapshots, step, max_chain;
	const char *work, *real[MAX_REAL];
	int nreal, keep;
	char snapgen[4096];
};

/* One workload's figures. */
struct result {
	char what[64], desc[256];
	int ok;                         /* it ran to the end */
	uint32_t snapshots;
	uint64_t series_newest, series_all;
	uint64_t snap_bytes;            /* the snapshots' segment files, du */
	double t_import, t_compact, ratio_target;
	struct archive_stat before, after;
	struct archive_compact_stats st;
	uint64_t hwm_import, hwm_compact, anon_before, anon_after, anon_peak;   /* kB */
	int hwm_reset;                  /* clear_refs worked: hwm_compact is compaction's own */
	uint32_t look_at[2];            /* newest and middle snapshot, 0-based */
	struct bench_pct look[2][2];    /* [newest, middle][before, after] */
	uint64_t checked, same_before, same_gen, gen_checked;
};

/* Resets VmHWM to the current RSS (Linux 4.0+); 0 when it did. */
static int reset_hwm(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	int rc;

	if (!f)
		return -1;
	rc = fputs("5", f) < 0;
	return fclose(f) || rc ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Up to want refs of a snapshot directory's series records (a reservoir
 * sample, sorted); their number. */
static size_t snapshot_refs(const char *dir, uint64_t *refs, size_t want, uint64_t seed, struct err *e)
{
	struct wal_reader *r;
	struct wal_record rec;
	uint64_t seen = 0, rng = seed | 1;
	size_t n = 0;
	int rc;

	if (wal_reader_open_dir(&r, dir, NULL, e))
		return 0;
	while ((rc = wal_reader_next(r, &rec, e)) == 1) {
		struct rec_series s;
		uint64_t slot;

		if (rec_type(rec.data, rec.len) != REC_SERIES || rec_series_decode(&s, rec.data, rec.len, e))
			continue;
		seen++;
		slot = n < want ? n++ : bench_xorshift(&rng) % seen;
		if (slot < want)
			refs[slot] = s.ref;
	}
	wal_reader_close(r);
	qsort(refs, n, sizeof(*refs), cmp_u64);
	return rc < 0 ? 0 : n;
}

/* p50/p99 of k lookups of random refs[] in snapshot id, after a warm pass. */
static struct bench_pct lookups(struct archive *a, uint32_t id, const uint64_t *refs, size_t nrefs, uint64_t k)
{
	struct archive_series res = { 0 };
	double *lat = malloc((k ? k : 1) * sizeof(*lat));
	struct bench_pct p = { 0, 0 };
	uint64_t rng = 0x9e3779b97f4a7c15ULL, fails = 0;
	struct err e = { 0 };

	if (!lat || !nrefs || !k) {
		free(lat);
		return p;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t i = 0; i < k; i++) {
			uint64_t ref = refs[bench_xorshift(&rng) % nrefs];
			double t0 = bench_now();

			fails += archive_read_ref(a, id, ref, &res, &e) != 0;
			lat[i] = bench_now() - t0;
		}
	}
	if (fails)
		fprintf(stderr, "bench_compact: %" PRIu64 " lookups failed: %s\n", fails, e.msg);
	p = bench_percentiles(lat, k);
	archive_series_free(&res);
	free(lat);
	return p;
}

/* The records (and exemplars) of the checked refs in every snapshot, as
 * read before compaction: ref j of snapshot i at [i * nrefs + j]. */
struct sample {
	uint64_t *refs;
	size_t nrefs;
	struct buf data;
	uint64_t *off;                  /* a record then its exemplars; UINT64_MAX: not there */
	uint32_t *len, *xlen;
};

static void sample_free(struct sample *s)
{
	free(s->refs);
	free(s->off);
	free(s->len);
	free(s->xlen);
	buf_free(&s->data);
}

static int sample_take(struct archive *a, const uint32_t *ids, uint32_t nsnaps, struct sample *s, struct err *e)
{
	struct archive_series res = { 0 };
	size_t n = (size_t)nsnaps * s->nrefs;
	int rc = 0;

	s->off = malloc((n ? n : 1) * sizeof(*s->off));
	s->len = calloc(n ? n : 1, sizeof(*s->len));
	s->xlen = calloc(n ? n : 1, sizeof(*s->xlen));
	if (!s->off || !s->len || !s->xlen)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		rc = archive_read_ref(a, ids[i / s->nrefs], s->refs[i % s->nrefs], &res, e);
		s->off[i] = UINT64_MAX;
		if (rc == SNAPARC_NOT_FOUND) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		s->off[i] = s->data.len;
		s->len[i] = (uint32_t)res.record.len;
		s->xlen[i] = (uint32_t)res.exemplars.len;
		buf_put(&s->data, res.record.p, res.record.len);
		buf_put(&s->data, res.exemplars.p, res.exemplars.len);
	}
	archive_series_free(&res);
	if (!rc && s->data.oom)
		rc = err_set(e, SNAPARC_NOMEM, "out of memory");
	return rc;
}

/* memcmp of n bytes, where an empty buffer may be NULL. */
static int same(const void *a, const void *b, size_t n)
{
	return !n || !memcmp(a, b, n);
}

/* After compaction: each sampled record as before, and (gen) as gen makes it. */
static int sample_check(struct archive *a, const uint32_t *ids, uint32_t nsnaps, const struct sample *s,
			const struct opts *o, int generated, struct result *res, struct err *e)
{
	struct archive_series got = { 0 };
	struct buf want = { 0 };
	struct gen *g = NULL;
	int rc = 0;

	for (uint32_t i = 0; i < nsnaps && !rc; i++) {
		if (generated) {
			struct gen_opts go;

			gen_opts_default(&go);
			go.series = o->series;
			go.periodic = 1;
			go.step = o->step;
			go.snapshot = i;
			gen_close(g);
			g = NULL;
			if ((rc = gen_open(&g, &go, e)))
				break;
		}
		for (size_t j = 0; j < s->nrefs && !rc; j++) {
			size_t at = (size_t)i * s->nrefs + j;
			int found;

			rc = archive_read_ref(a, ids[i], s->refs[j], &got, e);
			found = rc == 0;
			if (rc == SNAPARC_NOT_FOUND)
				rc = 0;
			if (rc)
				break;
			res->checked++;
			if (s->off[at] == UINT64_MAX ? !found :
			    found && got.record.len == s->len[at] && got.exemplars.len == s->xlen[at] &&
			    same(got.record.p, s->data.p + s->off[at], s->len[at]) &&
			    same(got.exemplars.p, s->data.p + s->off[at] + s->len[at], s->xlen[at]))
				res->same_before++;
			if (!generated)
				continue;
			buf_reset(&want);
			if ((rc = gen_series_record(g, s->refs[j] - 1, &want, e)))
				break;
			res->gen_checked++;
			if (found && got.record.len == want.len && same(got.record.p, want.p, want.len))
				res->same_gen++;
		}
	}
	gen_close(g);
	buf_free(&want);
	archive_series_free(&got);
	return rc;
}

/* Samples RssAnon now and then while compaction runs. */
struct progress {
	double last;
	uint64_t anon_peak;
};

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;
	double t = bench_now();
	uint64_t kb;

	(void)done;
	(void)total;
	if (t - p->last < 0.02)
		return;
	p->last = t;
	if ((kb = bench_status_kb(0, "RssAnon")) > p->anon_peak)
		p->anon_peak = kb;
}

/*
 * Imports dirs[0..n) (time order) into a fresh archive at arc, then measures
 * and compacts it. names: catalog names (unique).
 */
static int run(const struct opts *o, char **dirs, char **names, uint32_t n, int generated, struct result *res)
{
	struct archive_opts ao = { .create = 1, .sync = 1 };
	struct sample s = { 0 };
	struct progress prog = { 0, 0 };
	struct archive *a = NULL;
	struct idx_snapshot snap;
	uint32_t *ids = calloc(n, sizeof(*ids));
	uint64_t *refs[2] = { NULL, NULL };
	size_t nrefs[2] = { 0, 0 };
	char arc[4400], cmd[4500];
	struct err e = { 0 };
	double t0;
	int rc = 0;

	snprintf(arc, sizeof(arc), "%s/archive-%s", o->work, res->what);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", arc);
	if (!ids || system(cmd) != 0) {
		free(ids);
		return -1;
	}
	res->snapshots = n;
	for (uint32_t i = 0; i < n; i++)
		res->snap_bytes += bench_tree_bytes(dirs[i], 1);
	sync();
	reset_hwm();   /* from here: this workload's peak, not an earlier one's */
	if ((rc = archive_open(&a, arc, &ao, &e)))
		goto out;
	t0 = bench_now();
	for (uint32_t i = 0; i < n && !rc; i++) {
		struct archive_import_info info = { names[i], bench_tree_bytes(dirs[i], 1) };

		rc = archive_import_dir(a, dirs[i], &info, NULL, NULL, &snap, &e);
		if (rc) {
			err_prefix(&e, "importing %s", dirs[i]);
			break;
		}
		ids[i] = snap.id;
		res->series_all += snap.series;
		res->series_newest = snap.series;
	}
	res->t_import = bench_now() - t0;
	if (rc || (rc = archive_stat(a, &res->before, &e)))
		goto out;
	printf("%s: imported %u snapshots (%" PRIu64 " series in the newest) in %.2f s\n", res->what, n,
	       res->series_newest, res->t_import);
	fflush(stdout);

	/* lookups before: the newest snapshot and one in the middle */
	res->look_at[0] = n - 1;
	res->look_at[1] = n / 2;
	for (int w = 0; w < 2; w++) {
		refs[w] = malloc(100000 * sizeof(*refs[w]));
		if (!refs[w] || !(nrefs[w] = snapshot_refs(dirs[res->look_at[w]], refs[w], 100000, 88172645463325252ULL + (uint64_t)w, &e))) {
			rc = err_set(&e, SNAPARC_INVALID, "no series refs in %s", dirs[res->look_at[w]]);
			goto out;
		}
		res->look[w][0] = lookups(a, ids[res->look_at[w]], refs[w], nrefs[w], o->lookups);
	}
	/* the records to check: refs of the newest snapshot, spread over it */
	s.nrefs = o->check < nrefs[0] ? (size_t)o->check : nrefs[0];
	if (!(s.refs = malloc((s.nrefs ? s.nrefs : 1) * sizeof(*s.refs)))) {
		rc = err_set(&e, SNAPARC_NOMEM, "out of memory");
		goto out;
	}
	for (size_t j = 0; j < s.nrefs; j++)
		s.refs[j] = refs[0][j * nrefs[0] / s.nrefs];
	if ((rc = sample_take(a, ids, n, &s, &e)))
		goto out;

	res->hwm_import = bench_status_kb(0, "VmHWM");
	res->anon_before = bench_status_kb(0, "RssAnon");
	res->hwm_reset = reset_hwm() == 0;
	prog.anon_peak = res->anon_before;
	prog.last = bench_now();
	printf("%s: compacting %.1f MB of archive...\n", res->what, (double)(res->before.index_bytes +
	       res->before.segment_bytes) / 1e6);
	fflush(stdout);
	t0 = bench_now();
	{
		struct archive_compact_opts co = { .max_chain = o->max_chain };

		rc = archive_compact(a, &co, &res->st, on_progress, &prog, &e);
	}
	res->t_compact = bench_now() - t0;
	res->hwm_compact = bench_status_kb(0, "VmHWM");
	res->anon_after = bench_status_kb(0, "RssAnon");
	res->anon_peak = prog.anon_peak > res->anon_after ? prog.anon_peak : res->anon_after;
	if (rc) {
		err_prefix(&e, "compacting");
		goto out;
	}
	if ((rc = archive_stat(a, &res->after, &e)))
		goto out;
	for (int w = 0; w < 2; w++)
		res->look[w][1] = lookups(a, ids[res->look_at[w]], refs[w], nrefs[w], o->lookups);
	rc = sample_check(a, ids, n, &s, o, generated, res, &e);
	res->ok = !rc;
out:
	if (rc)
		fprintf(stderr, "bench_compact: %s: %s\n", res->what, e.msg);
	archive_close(a);
	if (!o->keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", arc);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_compact: could not remove %s\n", arc);
	}
	sample_free(&s);
	free(refs[0]);
	free(refs[1]);
	free(ids);
	return rc;
}

static void free_list(char **v, uint32_t n)
{
	for (uint32_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int generated(const struct opts *o, struct result *res)
{
	char dir[4200], cmd[9000];
	char **dirs = calloc(o->snapshots, sizeof(*dirs)), **names = calloc(o->snapshots, sizeof(*names));
	double t;
	int rc = -1;

	snprintf(res->what, sizeof(res->what), "generated");
	snprintf(res->desc, sizeof(res->desc), "%" PRIu64 " series x %u snapshots, step %u", o->series, o->snapshots,
		 o->step);
	res->ratio_target = 0.1;
	snprintf(dir, sizeof(dir), "%s/periodic-%" PRIu64 "-%u-%u", o->work, o->series, o->snapshots, o->step);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && '%s' '%s' --series %" PRIu64 " --periodic %u --step %u --quiet",
		 dir, o->snapgen, dir, o->series, o->snapshots, o->step);
	t = bench_now();
	if (!dirs || !names || system(cmd) != 0) {
		fprintf(stderr, "bench_compact: %s failed\n", cmd);
		goto out;
	}
	printf("generated: %u periodic snapshots of %" PRIu64 " series with snapgen in %.2f s\n", o->snapshots,
	       o->series, bench_now() - t);
	for (uint32_t j = 0; j < o->snapshots; j++) {
		char name[64], path[4300];

		snprintf(name, sizeof(name), "chunk_snapshot.000000.%010u", j);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if (!(names[j] = strdup(name)) || !(dirs[j] = strdup(path)))
			goto out;
	}
	rc = run(o, dirs, names, o->snapshots, 1, res);
	if (!o->keep) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_compact: could not remove %s\n", dir);
	}
out:
	free_list(dirs, o->snapshots);
	free_list(names, o->snapshots);
	return rc;
}

/* DIR's rounds: DIR's own snapshot, then DIR/round-02, round-03, ... */
static int real(const struct opts *o, const char *top, struct result *res)
{
	char **dirs = calloc(MAX_ROUNDS, sizeof(*dirs)), **names = calloc(MAX_ROUNDS, sizeof(*names));
	uint32_t n = 0;
	struct err e = { 0 };
	int rc = -1;

	snprintf(res->what, sizeof(res->what), "real");
	res->ratio_target = 0.3;
	while (dirs && names && n < MAX_ROUNDS) {
		char path[4200], dir[4200], name[64];
		const char *slash;

		if (n == 0)
			snprintf(path, sizeof(path), "%s", top);
		else
			snprintf(path, sizeof(path), "%s/round-%02u", top, n + 1);
		if (snapdir_resolve(path, dir, sizeof(dir), &e))
			break;
		slash = strrchr(dir, '/');
		snprintf(name, sizeof(name), "%.40s", slash ? slash + 1 : dir);
		for (uint32_t i = 0; i < n; i++)   /* the catalog wants names unique */
			if (!strcmp(names[i], name))
				snprintf(name + strlen(name), sizeof(name) - strlen(name), ".round-%02u", n + 1);
		if (!(dirs[n] = strdup(dir)) || !(names[n] = strdup(name)))
			goto out;
		n++;
	}
	if (n < 2) {
		fprintf(stderr, "bench_compact: %s: want 2 or more rounds (make-snapshot.sh --rounds), found %u%s%s\n",
			top, n, n ? "" : ": ", n ? "" : e.msg);
		goto out;
	}
	snprintf(res->desc, sizeof(res->desc), "%s, %u rounds", top, n);
	rc = run(o, dirs, names, n, 0, res);
out:
	free_list(dirs, MAX_ROUNDS);
	free_list(names, MAX_ROUNDS);
	return rc;
}

static void row(const char *figure, const struct result *r, int nr, const char *target,
		void (*cell)(const struct result *, char *, size_t))
{
	char c[256];

	printf("| %s |", figure);
	for (int i = 0; i < nr; i++) {
		c[0] = 0;
		if (r[i].ok)
			cell(&r[i], c, sizeof(c));
		printf(" %s |", r[i].ok ? c : "failed");
	}
	printf(" %s |\n", target);
}

static double mb(uint64_t b) { return (double)b / 1e6; }
static uint64_t arc_bytes(const struct archive_stat *s) { return s->index_bytes + s->segment_bytes; }
static double ratio_after(const struct result *r) { return (double)arc_bytes(&r->after) / (double)r->snap_bytes; }

static void c_snaps(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "%u snapshots, %" PRIu64 " series in the newest, %.1f MB (du)", r->snapshots, r->series_newest,
		 mb(r->snap_bytes));
}

static void c_before(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "%.1f MB (index %.1f MB), %.3fx the snapshots", mb(arc_bytes(&r->before)),
		 mb(r->before.index_bytes), (double)arc_bytes(&r->before) / (double)r->snap_bytes);
}

static void c_after(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "%.1f MB (index %.1f MB), **%.3fx** the snapshots: %s", mb(arc_bytes(&r->after)),
		 mb(r->after.index_bytes), ratio_after(r), ratio_after(r) <= r->ratio_target ? "met" : "NOT met");
}

static void c_time(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "%.2f s: %.1f MB/s of %.1f MB archived input, %.0f series/s", r->t_compact,
		 mb(r->st.input_bytes) / r->t_compact, mb(r->st.input_bytes), (double)r->series_all / r->t_compact);
}

static void c_records(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "%" PRIu64 ": %" PRIu64 " whole, %" PRIu64 " delta, %" PRIu64 " cut, %" PRIu64
		 " shared; %" PRIu64 " stored bytes written; %u label indexes shared", r->st.records, r->st.records_full,
		 r->st.records_delta, r->st.records_cut, r->st.records_shared, r->st.output_bytes, r->st.labels_shared);
}

static void c_segments(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "%" PRIu64 " deleted, %" PRIu64 " pending; stats: %.1f -> %.1f MB", r->st.segments_deleted,
		 r->st.segments_pending, mb(r->st.bytes_before), mb(r->st.bytes_after));
}

static void c_hwm(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "imports and lookups %.0f MiB; compaction %.0f MiB%s", (double)r->hwm_import / 1024,
		 (double)r->hwm_compact / 1024, r->hwm_reset ? "" : " (not reset: the whole run's)");
}

static void c_anon(const struct result *r, char *c, size_t n)
{
	snprintf(c, n, "before %.0f MiB, peak during %.0f MiB, after %.0f MiB", (double)r->anon_before / 1024,
		 (double)r->anon_peak / 1024, (double)r->anon_after / 1024);
}

static void c_look(const struct result *r, int w, char *c, size_t n)
{
	const struct bench_pct *b = &r->look[w][0], *a = &r->look[w][1];
	double x50 = a->p50 / b->p50, x99 = a->p99 / b->p99;

	snprintf(c, n, "%.1f / %.1f -> %.1f / %.1f µs: p50 %.2fx, p99 %.2fx%s (snapshot %u)", b->p50 * 1e6,
		 b->p99 * 1e6, a->p50 * 1e6, a->p99 * 1e6, x50, x99, x50 <= 2 && x99 <= 2 ? "" : " NOT met",
		 r->look_at[w] + 1);
}

static void c_look_new(const struct result *r, char *c, size_t n) { c_look(r, 0, c, n); }
static void c_look_mid(const struct result *r, char *c, size_t n) { c_look(r, 1, c, n); }

static void c_check(const struct result *r, char *c, size_t n)
{
	int l = snprintf(c, n, "%" PRIu64 "/%" PRIu64 " as before", r->same_before, r->checked);

	if (r->gen_checked && l > 0 && (size_t)l < n)
		snprintf(c + l, n - (size_t)l, ", %" PRIu64 "/%" PRIu64 " as gen makes them", r->same_gen,
			 r->gen_checked);
}

static void report(const struct result *r, int nr)
{
	printf("\n## bench_compact\n\n| figure |");
	for (int i = 0; i < nr; i++)
		printf(" %s: %s |", r[i].what, r[i].desc);
	printf(" target |\n|---|");
	for (int i = 0; i < nr; i++)
		printf("---|");
	printf("---|\n");
	row("snapshots", r, nr, "", c_snaps);
	row("archive before compaction", r, nr, "", c_before);
	row("archive after compaction", r, nr, "generated <= 0.1x, real <= 0.3x the snapshots", c_after);
	row("compaction", r, nr, "", c_time);
	row("records", r, nr, "", c_records);
	row("old segments", r, nr, "", c_segments);
	row("peak RSS (VmHWM)", r, nr, "", c_hwm);
	row("RssAnon", r, nr, "", c_anon);
	row("lookup by ref, newest: p50 / p99 before -> after", r, nr, "after <= 2x before", c_look_new);
	row("lookup by ref, middle: p50 / p99 before -> after", r, nr, "after <= 2x before", c_look_mid);
	row("records after compaction (refs x snapshots)", r, nr, "all equal", c_check);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_compact [--series N] [--snapshots K] [--step S] [--real DIR]... [--work DIR]\n"
		"                     [--lookups L] [--check R] [--max-chain N] [--keep]\n");
}

int main(int argc, char **argv)
{
	struct opts o = { .series = 100000, .snapshots = 30, .step = GEN_DEFAULT_STEP, .lookups = 100000,
			  .check = 1000, .work = "/tmp/snaparc-bench-compact" };
	struct result res[1 + MAX_REAL];
	int nr = 0, failed = 0;
	char *slash;

	memset(res, 0, sizeof(res));
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--series") && v)
			o.series = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--snapshots") && v)
			o.snapshots = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--step") && v)
			o.step = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--real") && v && o.nreal < MAX_REAL)
			o.real[o.nreal++] = argv[++i];
		else if (!strcmp(argv[i], "--work") && v)
			o.work = argv[++i];
		else if (!strcmp(argv[i], "--lookups") && v)
			o.lookups = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--check") && v)
			o.check = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--max-chain") && v)
			o.max_chain = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--keep"))
			o.keep = 1;
		else {
			usage();
			return 2;
		}
	}
	if ((o.series && o.snapshots < 2) || !o.step || !o.lookups) {
		usage();
		return 2;
	}
	/* snapgen sits beside this program */
	snprintf(o.snapgen, sizeof(o.snapgen), "%s", argv[0]);
	slash = strrchr(o.snapgen, '/');
	snprintf(slash ? slash + 1 : o.snapgen, sizeof(o.snapgen) - (size_t)(slash ? slash + 1 - o.snapgen : 0),
		 "snapgen");
	if (mkdir(o.work, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench_compact: %s: %s\n", o.work, strerror(errno));
		return 1;
	}
	printf("# bench_compact\n\n");
	if (o.series)
		failed |= generated(&o, &res[nr++]) != 0;
	for (int i = 0; i < o.nreal; i++)
		failed |= real(&o, o.real[i], &res[nr++]) != 0;
	report(res, nr);
	return failed;
}
