/*
 * snapgen: writes the chunk snapshot Prometheus 2.42 would write for a
 * generated head (gen.h; the series, label and value mix is described at the
 * top of gen.c). Records, in Prometheus' order (FORMAT.md section 1): one
 * series record a series, in a shuffled (or 2.42's stripe) order; exactly
 * one tombstones record; exemplar records of at most 10,000 exemplars.
 *
 * Streaming: memory does not grow with the number of series (only with
 * --tombstones, whose record is one record, and with --exemplars / samples).
 * Worker threads, each with its own generator, build series records in
 * batches; the main thread writes the batches in order, so the output does
 * not depend on the number of threads.
 *
 * --periodic K writes K snapshots of one head that runs on (gen.h), named so
 * that they sort in time order; --check reads snapshots back against the
 * generator (and, periodic, each chunk against the previous snapshot's): it
 * regenerates every record and compares where the writer would write.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"
#include "wal.h"
#include "xor.h"

#define SNAPSHOT_NAME "chunk_snapshot.000000.0000000000"
#define SNAPSHOT_FMT "chunk_snapshot.000000.%010u"   /* periodic: j as the offset */
#define BATCH 1024          /* series records a worker builds at a time */
#define MAX_THREADS 16

/* A batch being built by one worker, then written by the main thread. Each
 * worker owns two slots and alternates between them. */
struct slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int full;
	struct buf data;            /* the batch's records, back to back */
	size_t lens[BATCH], n;
	uint64_t samples;
	int rc;
	struct err e;
};

struct pool {
	struct run *run;
	unsigned workers;
	uint64_t batches;
	struct slot slots[2 * MAX_THREADS];
	int stop;                   /* set by the main thread on error */
};

struct worker {
	struct pool *pool;
	unsigned id;
};

/* Checking: each series' record of one snapshot, by ref. */
struct store {
	struct buf data;
	uint64_t *off;              /* [ref - 1]: where its record is in data */
	uint32_t *len;              /* and its length; 0 when not seen */
};

struct run {
	struct gen_opts opts;
	enum wal_compression compression;
	const char *outdir, *expect_path;
	int quiet, check;
	unsigned threads;
	uint32_t periodic;          /* --periodic K: snapshots 0 .. K-1 */
	char name[64], final[4096], tmp[4096];
	FILE *expect;
	struct wal_writer *w;
	struct gen *g;
	struct buf rec;
	uint64_t records, raw_bytes, samples, exemplar_records;
	/* --check */
	struct wal_reader *rd;      /* the snapshot on disk, read as records are made */
	struct store seen[2];       /* series records of this snapshot and the previous one */
	uint64_t extended, cut;     /* series whose chunk grew by step samples, or was cut */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fputs("usage: snapgen OUTDIR --series N [options]\n"
	      "\n"
	      "Writes OUTDIR/" SNAPSHOT_NAME "/, the chunk snapshot Prometheus 2.42\n"
	      "writes for a head of N series of a generated Kubernetes fleet (refs 1..N),\n"
	      "each with one full XOR head chunk. OUTDIR is created if missing; the snapshot\n"
	      "directory must not exist.\n"
	      "\n"
	      "  --series N            series (k, M, G suffixes: 1M = 1000000)\n"
	      "  --samples N           samples a chunk (default 120, where Prometheus cuts)\n"
	      "  --periodic K          K snapshots of one head that runs on, one every --step\n"
	      "                        scrapes, as OUTDIR/chunk_snapshot.000000.000000000J\n"
	      "                        (J = 0 .. K-1): each series' open chunk grows by step\n"
	      "                        samples between them and is cut at --samples, at a\n"
	      "                        phase of its own; refs and labels stay\n"
	      "  --step S              periodic: scrapes between snapshots (default 10)\n"
	      "  --check               write nothing: read the snapshot(s) in OUTDIR written\n"
	      "                        with the same options back; every record must be what\n"
	      "                        the generator makes, and with --periodic every chunk\n"
	      "                        must extend the previous snapshot's (same XOR bits,\n"
	      "                        step samples more) or start after it at a cut\n"
	      "  --seed S              (default 1); output is a function of the options\n"
	      "  --compression C       snappy (default, as 2.42), zstd (3.x only) or none\n"
	      "  --start-ms T          first scrape cycle (default 1700000000000)\n"
	      "  --interval-ms MS      scrape interval (default 15000)\n"
	      "  --tombstones K        K intervals on K distinct series (default 0)\n"
	      "  --exemplars K         K exemplars in all, time-ordered (default 0)\n"
	      "  --order O             shuffle (default: keyed permutation of the refs) or\n"
	      "                        stripe (2.42's order: ref & 16383, then Go map order)\n"
	      "  --threads N           worker threads building records (default: online CPUs,\n"
	      "                        at most 16); the output does not depend on it\n"
	      "  --expect FILE         also write what was generated as JSON Lines shaped like\n"
	      "                        `snaparc dump --json --samples` (values as %.17g);\n"
	      "                        one thread; with --periodic, of the last snapshot\n"
	      "  --quiet               no summary line\n", f);
}

/* Parses a count with an optional k/M/G (decimal) suffix. */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno || *s == '-')
		return -1;
	if (*end == 'k' || *end == 'K')
		mul = 1000, end++;
	else if (*end == 'M')
		mul = 1000000, end++;
	else if (*end == 'G')
		mul = 1000000000, end++;
	if (*end || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno)
		return -1;
	*out = v;
	return 0;
}

static void json_str(FILE *f, const char *s, size_t len)
{
	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			putc(c, f);
	}
	putc('"', f);
}

static void expect_series(FILE *f, const struct gen_series *s)
{
	fprintf(f, "{\"record\":\"series\",\"ref\":%" PRIu64 ",\"kind\":\"%s\",\"labels\":{", s->ref, s->kind);
	for (size_t i = 0; i < s->nlabels; i++) {
		if (i)
			putc(',', f);
		json_str(f, s->labels[i].name, s->labels[i].name_len);
		putc(':', f);
		json_str(f, s->labels[i].value, s->labels[i].value_len);
	}
	fprintf(f, "},\"chunk\":{\"mint\":%" PRId64 ",\"maxt\":%" PRId64 ",\"encoding\":\"xor\",\"samples\":%zu},"
		"\"samples\":[", s->t[0], s->t[s->nsamples - 1], s->nsamples);
	for (size_t k = 0; k < s->nsamples; k++)
		fprintf(f, "%s[%" PRId64 ",\"%.17g\"]", k ? "," : "", s->t[k], f64_from_bits(s->v[k]));
	fputs("]}\n", f);
}

/* ---- --check ---- */

/* A chunk's samples into t and v (room for XOR_MAX_SAMPLES); their number,
 * or -1 when the chunk does not decode or disagrees with the record's mint,
 * maxt or --samples. */
static long chunk_samples(const struct run *r, const struct rec_series *s, int64_t *t, uint64_t *v)
{
	struct xor_iter it;
	long n = 0;
	int rc;

	if (!s->has_chunk || s->encoding != CHUNK_XOR)
		return -1;
	xor_iter_init(&it, s->chunk, s->chunk_len);
	while ((rc = xor_iter_next(&it, &t[n], &v[n])) == 1)
		if (++n > 1 && t[n - 1] <= t[n - 2])
			return -1;
	if (rc || n < 1 || n > (long)r->opts.samples || t[0] != s->mint || t[n - 1] != s->maxt ||
	    v[n - 1] != s->last_value)
		return -1;
	return n;
}

/*
 * Series ref in snapshot j against j-1: the same labels, and either the same
 * chunk step samples longer (the earlier one's XOR bits a prefix: bytes 2 ..
 * len-1 equal, the last byte's bits down to its lowest set one, the rest
 * being padding the appender fills), or, when the chunk would have passed
 * --samples, a new chunk that starts after the earlier one at the cut.
 */
static int check_extends(struct run *r, const uint8_t *p, size_t len, struct err *e)
{
	static int64_t ta[XOR_MAX_SAMPLES], tb[XOR_MAX_SAMPLES];
	static uint64_t va[XOR_MAX_SAMPLES], vb[XOR_MAX_SAMPLES];
	uint32_t j = r->opts.snapshot, step = r->opts.step, cap = r->opts.samples;
	struct store *cur = &r->seen[j % 2], *prev = &r->seen[(j + 1) % 2];
	struct rec_series a, b;
	long na, nb;
	uint64_t i;

	if (rec_series_decode(&b, p, len, e))
		return err_prefix(e, "%s: record %" PRIu64, r->final, r->records - 1);
	if (b.ref < 1 || b.ref > r->opts.series || cur->len[b.ref - 1])
		return err_set(e, SNAPARC_CORRUPT, "%s: ref %" PRIu64 " is not new in 1..N", r->final, b.ref);
	i = b.ref - 1;
	if ((nb = chunk_samples(r, &b, tb, vb)) < 0)
		return err_set(e, SNAPARC_CORRUPT, "%s: ref %" PRIu64 ": the chunk does not decode to 1..%u "
			       "increasing samples from mint to maxt", r->final, b.ref, cap);
	cur->off[i] = cur->data.len;
	cur->len[i] = (uint32_t)len;
	buf_put(&cur->data, p, len);
	if (cur->data.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory keeping the records");
	if (!r->opts.periodic || j == 0)
		return 0;
	if (!prev->len[i] || rec_series_decode(&a, prev->data.p + prev->off[i], prev->len[i], e) ||
	    (na = chunk_samples(r, &a, ta, va)) < 0)
		return err_set(e, SNAPARC_CORRUPT, "%s: ref %" PRIu64 " is not in the previous snapshot", r->final,
			       b.ref);
	if (a.labels.raw_len != b.labels.raw_len || memcmp(a.labels.raw, b.labels.raw, a.labels.raw_len))
		return err_set(e, SNAPARC_CORRUPT, "%s: ref %" PRIu64 ": labels changed", r->final, b.ref);
	if (na + step <= cap) {
		uint8_t x = a.chunk[a.chunk_len - 1], mask = (uint8_t)~((x & -x) - 1);

		if (b.mint != a.mint || nb != na + step || b.chunk_len < a.chunk_len ||
		    memcmp(a.chunk + 2, b.chunk + 2, a.chunk_len - 3) || ((x ^ b.chunk[a.chunk_len - 1]) & mask) ||
		    memcmp(ta, tb, (size_t)na * sizeof(*ta)) || memcmp(va, vb, (size_t)na * sizeof(*va)))
			return err_set(e, SNAPARC_CORRUPT, "%s: ref %" PRIu64 ": the chunk (%ld samples from %" PRId64
				       ") does not extend the previous one (%ld samples from %" PRId64 ") by %u",
				       r->final, b.ref, nb, b.mint, na, a.mint, step);
		r->extended++;
	} else {
		if (b.mint <= a.maxt || (na + step - (uint64_t)nb) % cap)
			return err_set(e, SNAPARC_CORRUPT, "%s: ref %" PRIu64 ": after a cut the chunk (%ld samples "
				       "from %" PRId64 ") does not start at it (previous: %ld samples to %" PRId64 ")",
				       r->final, b.ref, nb, b.mint, na, a.maxt);
		r->cut++;
	}
	return 0;
}

/* The next record on disk must be the one just made. */
static int check_record(struct run *r, struct err *e)
{
	struct wal_record rec;
	int rc = wal_reader_next(r->rd, &rec, e);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return err_set(e, SNAPARC_CORRUPT, "%s: ends after %" PRIu64 " records; the generator makes more",
			       r->final, r->records - 1);
	if (rec.len != r->rec.len || memcmp(rec.data, r->rec.p, rec.len))
		return err_set(e, SNAPARC_CORRUPT, "%s: record %" PRIu64 " (segment %08u, offset %" PRIu64
			       ") is not what the generator makes", r->final, r->records - 1, rec.segment, rec.offset);
	return rec_type(rec.data, rec.len) == REC_SERIES ? check_extends(r, rec.data, rec.len, e) : 0;
}

static int log_record(struct run *r, struct err *e)
{
	if (r->rec.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory building a record");
	r->records++;
	r->raw_bytes += r->rec.len;
	if (r->rd)
		return check_record(r, e);
	return wal_writer_log(r->w, r->rec.p, r->rec.len, NULL, e);
}

/* One at a time, also writing the generator's account (--expect) or
 * checking the snapshot on disk (--check). */
static int write_series_one(struct run *r, struct err *e)
{
	struct gen_series s;
	int rc;

	for (uint64_t pos = 0; pos < r->opts.series; pos++) {
		buf_reset(&r->rec);
		rc = gen_series(r->g, gen_index_at(r->g, pos), &s, e);
		if (!rc)
			rc = gen_series_encode(r->g, &s, &r->rec, e);
		if (!rc)
			rc = log_record(r, e);
		if (rc)
			return rc;
		r->samples += s.nsamples;
		if (r->expect)
			expect_series(r->expect, &s);
	}
	return 0;
}

static int pool_stopped(struct pool *p)
{
	return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
}

/* Builds the records of one batch into sl. */
static void build_batch(struct gen *g, uint64_t batch, uint64_t series, struct slot *sl)
{
	uint64_t first = batch * BATCH, end = first + BATCH < series ? first + BATCH : series;
	struct gen_series s;

	buf_reset(&sl->data);
	sl->n = 0;
	sl->samples = 0;
	sl->rc = 0;
	for (uint64_t pos = first; pos < end && !sl->rc; pos++) {
		size_t before = sl->data.len;

		sl->rc = gen_series(g, gen_index_at(g, pos), &s, &sl->e);
		if (!sl->rc)
			sl->rc = gen_series_encode(g, &s, &sl->data, &sl->e);
		sl->lens[sl->n++] = sl->data.len - before;
		sl->samples += s.nsamples;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;
	struct gen *g = NULL;
	struct err e = { 0 };
	int rc = gen_open(&g, &p->run->opts, &e);

	for (uint64_t b = w->id; b < p->batches; b += p->workers) {
		struct slot *sl = &p->slots[b % (2 * p->workers)];

		pthread_mutex_lock(&sl->mu);
		while (sl->full && !pool_stopped(p))
			pthread_cond_wait(&sl->cv, &sl->mu);
		pthread_mutex_unlock(&sl->mu);
		if (pool_stopped(p))
			break;
		if (rc) {
			sl->rc = rc;
			sl->e = e;
		} else {
			build_batch(g, b, p->run->opts.series, sl);
		}
		pthread_mutex_lock(&sl->mu);
		sl->full = 1;
		pthread_cond_broadcast(&sl->cv);
		pthread_mutex_unlock(&sl->mu);
		if (sl->rc)
			break;
	}
	gen_close(g);
	return NULL;
}

/* Writes the batches in order as the workers finish them. */
static int write_batches(struct run *r, struct pool *p, struct err *e)
{
	for (uint64_t b = 0; b < p->batches; b++) {
		struct slot *sl = &p->slots[b % (2 * p->workers)];
		size_t at = 0;
		int rc;

		pthread_mutex_lock(&sl->mu);
		while (!sl->full)
			pthread_cond_wait(&sl->cv, &sl->mu);
		pthread_mutex_unlock(&sl->mu);
		if (sl->rc) {
			*e = sl->e;
			return sl->rc;
		}
		if (sl->data.oom)
			return err_set(e, SNAPARC_NOMEM, "out of memory building records");
		for (size_t i = 0; i < sl->n; i++) {
			r->records++;
			r->raw_bytes += sl->lens[i];
			if ((rc = wal_writer_log(r->w, sl->data.p + at, sl->lens[i], NULL, e)))
				return rc;
			at += sl->lens[i];
		}
		r->samples += sl->samples;
		pthread_mutex_lock(&sl->mu);
		sl->full = 0;
		pthread_cond_broadcast(&sl->cv);
		pthread_mutex_unlock(&sl->mu);
	}
	return 0;
}

static int write_series(struct run *r, struct err *e)
{
	struct pool *p;
	struct worker workers[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	unsigned started = 0;
	int rc = 0;

	if (r->expect || r->rd)
		return write_series_one(r, e);
	if (!(p = calloc(1, sizeof(*p))))
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	p->run = r;
	p->workers = r->threads;
	p->batches = (r->opts.series + BATCH - 1) / BATCH;
	for (unsigned i = 0; i < 2 * p->workers; i++) {
		pthread_mutex_init(&p->slots[i].mu, NULL);
		pthread_cond_init(&p->slots[i].cv, NULL);
	}
	for (; started < p->workers; started++) {
		workers[started] = (struct worker){ p, started };
		if (pthread_create(&tids[started], NULL, worker_main, &workers[started])) {
			rc = err_set(e, SNAPARC_NOMEM, "cannot start a worker thread");
			break;
		}
	}
	if (!rc && started == p->workers)
		rc = write_batches(r, p, e);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < 2 * p->workers; i++) {
		pthread_mutex_lock(&p->slots[i].mu);
		pthread_cond_broadcast(&p->slots[i].cv);
		pthread_mutex_unlock(&p->slots[i].mu);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	for (unsigned i = 0; i < 2 * p->workers; i++) {
		pthread_mutex_destroy(&p->slots[i].mu);
		pthread_cond_destroy(&p->slots[i].cv);
		buf_free(&p->slots[i].data);
	}
	free(p);
	return rc;
}

/* Exactly one record, empty (02 01 01) when there are no tombstones. Its
 * intervals are held in memory: the record is one record. */
static int write_tombstones(struct run *r, struct err *e)
{
	uint64_t n = r->opts.tombstones;
	struct rec_interval *iv = malloc((n ? n : 1) * sizeof(*iv));
	int rc;

	if (!iv)
		return err_set(e, SNAPARC_NOMEM, "out of memory for %" PRIu64 " tombstones", n);
	for (uint64_t j = 0; j < n; j++)
		gen_tombstone(r->g, j, &iv[j]);
	buf_reset(&r->rec);
	rec_tombstones_encode(&r->rec, iv, n);
	rc = log_record(r, e);
	if (!rc && r->expect) {
		fputs("{\"record\":\"tombstones\",\"intervals\":[", r->expect);
		for (uint64_t j = 0; j < n; j++)
			fprintf(r->expect, "%s{\"ref\":%" PRIu64 ",\"mint\":%" PRId64 ",\"maxt\":%" PRId64 "}",
				j ? "," : "", iv[j].ref, iv[j].mint, iv[j].maxt);
		fputs("]}\n", r->expect);
	}
	free(iv);
	return rc;
}

static int write_exemplars(struct run *r, struct err *e)
{
	struct gen_exemplar *x = malloc(GEN_EXEMPLARS_PER_RECORD * sizeof(*x));
	size_t n;
	int rc = 0;

	if (!x)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	while (!rc && (n = gen_exemplars_next(r->g, x, GEN_EXEMPLARS_PER_RECORD)) > 0) {
		buf_reset(&r->rec);
		rc = gen_exemplars_encode(x, n, &r->rec, e);
		if (!rc)
			rc = log_record(r, e);
		r->exemplar_records++;
		if (!rc && r->expect) {
			fputs("{\"record\":\"exemplars\",\"exemplars\":[", r->expect);
			for (size_t i = 0; i < n; i++)
				fprintf(r->expect, "%s{\"ref\":%" PRIu64 ",\"t\":%" PRId64 ",\"value\":\"%.17g\","
					"\"labels\":{\"trace_id\":\"%s\"}}", i ? "," : "", x[i].ref, x[i].t, x[i].value,
					x[i].trace_id);
			fputs("]}\n", r->expect);
		}
	}
	free(x);
	return rc;
}

/* Sum of the segment files' sizes. */
static uint64_t dir_bytes(const char *dir, unsigned *segments)
{
	uint64_t total = 0;
	char path[4200];
	struct stat st;

	for (*segments = 0;; (*segments)++) {
		snprintf(path, sizeof(path), "%s/%08u", dir, *segments);
		if (stat(path, &st) != 0)
			return total;
		total += (uint64_t)st.st_size;
	}
}

static void remove_partial(const char *dir)
{
	char path[4200];

	for (uint32_t i = 0;; i++) {
		snprintf(path, sizeof(path), "%s/%08u", dir, i);
		if (unlink(path) != 0)
			break;
	}
	rmdir(dir);
}

static int prepare_dirs(struct run *r, struct err *e)
{
	struct stat st;

	if (mkdir(r->outdir, 0777) != 0 && errno != EEXIST)
		return err_errno(e, errno, "creating %s", r->outdir);
	if (stat(r->outdir, &st) != 0 || !S_ISDIR(st.st_mode))
		return err_set(e, SNAPARC_INVALID, "%s is not a directory", r->outdir);
	if ((size_t)snprintf(r->final, sizeof(r->final), "%s/%s", r->outdir, r->name) >= sizeof(r->final) ||
	    (size_t)snprintf(r->tmp, sizeof(r->tmp), "%s.tmp", r->final) >= sizeof(r->tmp))
		return err_set(e, SNAPARC_INVALID, "output path too long");
	if (lstat(r->final, &st) == 0)
		return err_set(e, SNAPARC_EXISTS, "%s exists; not overwriting it", r->final);
	/* written under .tmp and renamed when complete, as Prometheus does */
	if (mkdir(r->tmp, 0777) != 0)
		return err_errno(e, errno, "creating %s%s", r->tmp, errno == EEXIST ? " (left by a failed run? "
				 "remove it)" : "");
	return 0;
}

static int generate(struct run *r, struct err *e)
{
	struct wal_writer_opts wo = { .compression = r->compression };
	int rc;

	if ((rc = gen_open(&r->g, &r->opts, e)))
		return rc;
	if ((rc = prepare_dirs(r, e)))
		return rc;
	if (r->expect_path && !(r->expect = fopen(r->expect_path, "w")))
		rc = err_errno(e, errno, "opening %s", r->expect_path);
	if (!rc)
		rc = wal_writer_open(&r->w, r->tmp, &wo, e);
	if (!rc)
		rc = write_series(r, e);
	if (!rc)
		rc = write_tombstones(r, e);
	if (!rc)
		rc = write_exemplars(r, e);
	if (r->w) {
		int crc = wal_writer_close(r->w, rc ? NULL : e);

		r->w = NULL;
		rc = rc ? rc : crc;
	}
	if (r->expect) {
		if (!rc)
			fprintf(r->expect, "{\"summary\":{\"series\":%" PRIu64 ",\"xor_samples\":%" PRIu64
				",\"tombstone_intervals\":%" PRIu64 ",\"exemplars\":%" PRIu64 "}}\n",
				r->opts.series, r->samples, r->opts.tombstones, r->opts.exemplars);
		int failed = ferror(r->expect);

		if ((fclose(r->expect) != 0 || failed) && !rc)
			rc = err_set(e, SNAPARC_IO, "writing %s failed", r->expect_path);
		r->expect = NULL;
	}
	if (!rc && rename(r->tmp, r->final) != 0)
		rc = err_errno(e, errno, "renaming %s to %s", r->tmp, r->final);
	if (rc)
		remove_partial(r->tmp);
	return rc;
}

/* --check: makes snapshot r->name's records again, comparing each with the
 * one on disk instead of writing it (log_record). */
static int check(struct run *r, struct err *e)
{
	struct store *cur = &r->seen[r->opts.snapshot % 2];
	uint64_t n = r->opts.series;
	struct wal_record rec;
	int rc;

	if ((rc = gen_open(&r->g, &r->opts, e)))
		return rc;
	if ((size_t)snprintf(r->final, sizeof(r->final), "%s/%s", r->outdir, r->name) >= sizeof(r->final))
		return err_set(e, SNAPARC_INVALID, "output path too long");
	if (!cur->off && (!(cur->off = calloc(n, sizeof(*cur->off))) || !(cur->len = calloc(n, sizeof(*cur->len)))))
		return err_set(e, SNAPARC_NOMEM, "out of memory for %" PRIu64 " series", n);
	buf_reset(&cur->data);
	memset(cur->len, 0, n * sizeof(*cur->len));
	r->extended = r->cut = 0;
	if ((rc = wal_reader_open_dir(&r->rd, r->final, NULL, e)))
		return rc;
	rc = write_series(r, e);
	if (!rc)
		rc = write_tombstones(r, e);
	if (!rc)
		rc = write_exemplars(r, e);
	if (!rc && (rc = wal_reader_next(r->rd, &rec, e)) == 1)
		rc = err_set(e, SNAPARC_CORRUPT, "%s: holds more than the %" PRIu64 " records the generator makes",
			     r->final, r->records);
	wal_reader_close(r->rd);
	r->rd = NULL;
	/* per-series phases: a step shorter than a chunk never cuts them all */
	if (!rc && r->opts.periodic && r->opts.snapshot && n > 1 && r->cut == n && r->opts.step < r->opts.samples)
		rc = err_set(e, SNAPARC_CORRUPT, "%s: every series' chunk was cut at once", r->final);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "series", required_argument, NULL, 'n' },
		{ "samples", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "compression", required_argument, NULL, 'c' },
		{ "start-ms", required_argument, NULL, 't' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "tombstones", required_argument, NULL, 'T' },
		{ "exemplars", required_argument, NULL, 'x' },
		{ "order", required_argument, NULL, 'o' },
		{ "expect", required_argument, NULL, 'e' },
		{ "threads", required_argument, NULL, 'j' },
		{ "periodic", required_argument, NULL, 'P' },
		{ "step", required_argument, NULL, 'p' },
		{ "check", no_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r = { .compression = WAL_COMPRESS_SNAPPY };
	struct err e = { 0 };
	uint64_t n, bytes, cycle_series = 0;
	unsigned segments, cycle_targets = 0;
	const char *expect = NULL;
	double t0, elapsed;
	int c, bad = 0, rc = 0;

	gen_opts_default(&r.opts);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': bad |= parse_count(optarg, &r.opts.series); break;
		case 'S': bad |= parse_count(optarg, &n) || n > UINT32_MAX; r.opts.samples = (uint32_t)n; break;
		case 's': bad |= parse_count(optarg, &r.opts.seed); break;
		case 't': bad |= parse_int64(optarg, &r.opts.start_ms); break;
		case 'i': bad |= parse_int64(optarg, &r.opts.interval_ms); break;
		case 'T': bad |= parse_count(optarg, &r.opts.tombstones); break;
		case 'x': bad |= parse_count(optarg, &r.opts.exemplars); break;
		case 'e': expect = optarg; break;
		case 'j': bad |= parse_count(optarg, &n) || n < 1 || n > MAX_THREADS; r.threads = (unsigned)n; break;
		case 'q': r.quiet = 1; break;
		case 'P': bad |= parse_count(optarg, &n) || n < 1 || n > UINT32_MAX; r.periodic = (uint32_t)n; break;
		case 'p': bad |= parse_count(optarg, &n) || n < 1 || n > UINT32_MAX; r.opts.step = (uint32_t)n; break;
		case 'C': r.check = 1; break;
		case 'c':
			if (!strcmp(optarg, "snappy"))
				r.compression = WAL_COMPRESS_SNAPPY;
			else if (!strcmp(optarg, "zstd"))
				r.compression = WAL_COMPRESS_ZSTD;
			else if (!strcmp(optarg, "none"))
				r.compression = WAL_COMPRESS_NONE;
			else
				bad = 1;
			break;
		case 'o':
			if (!strcmp(optarg, "shuffle"))
				r.opts.order = GEN_ORDER_SHUFFLE;
			else if (!strcmp(optarg, "stripe"))
				r.opts.order = GEN_ORDER_STRIPE;
			else
				bad = 1;
			break;
		case 'h': usage(stdout); return 0;
		default: bad = 1;
		}
	}
	if (bad || optind != argc - 1 || r.opts.series == 0 || (r.check && expect)) {
		if (bad)
			fprintf(stderr, "snapgen: bad option value\n");
		usage(stderr);
		return 2;
	}
	r.outdir = argv[optind];
	if (!r.threads) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		r.threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (unsigned)cpus;
	}
	r.opts.periodic = r.periodic > 0;
	r.opts.snapshot = r.periodic ? r.periodic - 1 : 0;
	if ((rc = gen_open(&r.g, &r.opts, &e))) {   /* the last snapshot's options: fail before the first */
		fprintf(stderr, "snapgen: %s\n", e.msg);
		return 2;
	}
	gen_close(r.g);
	r.g = NULL;
	/* snapshot 0 is SNAPSHOT_NAME: a periodic series starts where one snapshot is */
	for (uint32_t j = 0; j < (r.periodic ? r.periodic : 1); j++) {
		r.opts.snapshot = j;
		snprintf(r.name, sizeof(r.name), SNAPSHOT_FMT, j);
		r.expect_path = j + 1 >= r.periodic ? expect : NULL;
		r.records = r.raw_bytes = r.samples = r.exemplar_records = 0;
		t0 = now();
		rc = r.check ? check(&r, &e) : generate(&r, &e);
		elapsed = now() - t0;
		if (r.g) {
			cycle_series = gen_cycle_series(r.g);
			cycle_targets = gen_cycle_targets(r.g);
		}
		gen_close(r.g);
		r.g = NULL;
		if (rc)
			break;
		if (r.quiet)
			continue;
		if (r.check) {
			printf("snapgen: check %s: %" PRIu64 " records as generated", r.final, r.records);
			if (r.opts.periodic && j)
				printf("; %" PRIu64 " chunks extended by %u samples, %" PRIu64 " cut (%.1f%%)", r.extended,
				       r.opts.step, r.cut, 100.0 * (double)r.cut / (double)r.opts.series);
			printf("\n");
			continue;
		}
		bytes = dir_bytes(r.final, &segments);
		printf("snapgen: %s: %" PRIu64 " series, %" PRIu64 " samples, %" PRIu64 " tombstones, %" PRIu64
		       " exemplars in %" PRIu64 " records (%" PRIu64 " exemplar records); %" PRIu64
		       " record bytes, %" PRIu64 " bytes in %u segments, %.1f bytes/series; %.2f s, %u threads"
		       " (fleet: %u targets, %" PRIu64 " series a cycle)\n",
		       r.final, r.opts.series, r.samples, r.opts.tombstones, r.opts.exemplars, r.records,
		       r.exemplar_records, r.raw_bytes, bytes, segments, (double)bytes / (double)r.opts.series,
		       elapsed, r.expect_path ? 1 : r.threads, cycle_targets, cycle_series);
	}
	buf_free(&r.rec);
	for (int i = 0; i < 2; i++) {
		buf_free(&r.seen[i].data);
		free(r.seen[i].off);
		free(r.seen[i].len);
	}
	if (rc) {
		fprintf(stderr, "snapgen: %s\n", e.msg);
		return rc == SNAPARC_INVALID ? 2 : 1;
	}
	return 0;
}
