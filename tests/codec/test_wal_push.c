/*
 * The push parser (codec/wal_push.c) against the pull reader
 * (codec/wal_reader.c), which is the oracle: the same segments, fed in every
 * kind of split (whole, one byte at a time, a few bytes, around a page,
 * random sizes), give exactly the records the pull reader gives (bytes,
 * segment, offsets, flags), and a bad segment gives the same code and the
 * same message after the segment's name ("offset O: reason"; the pull
 * reader names a file, the push parser "<name> segment N").
 *
 * Segments are written with wal_writer into a mkdtemp() directory, and the
 * bad ones are the cases of test_wal_bad.c that concern a segment's bytes
 * (the pull reader's expectations there are checked again here, so that a
 * case cannot quietly stop being bad). The bundled Prometheus 2.42 snapshot
 * is fed too.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "bytes.h"
#include "crc32c.h"
#include "wal.h"
#include "wal_push.h"
#include "support.h"

#define PAGE 32768u
#define HDR 7u
#define ROOM (PAGE - HDR)
#define NAME "host stream"
#define MAX_SEGS 512

/* ---- fixture ---- */

static char tmpdir[64];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "walpush");
}

static void teardown(void)
{
	support_rm_tree(tmpdir);
}

TestSuite(push_same, .init = setup, .fini = teardown);
TestSuite(push_torn, .init = setup, .fini = teardown);
TestSuite(push_fragment, .init = setup, .fini = teardown);
TestSuite(push_compressed, .init = setup, .fini = teardown);
TestSuite(push_api, .init = setup, .fini = teardown);

/* ---- segment files ---- */

static void seg_path(char *out, size_t cap, const char *dir, uint32_t index)
{
	snprintf(out, cap, "%s/%08u", dir, index);
}

/* The file's bytes, or NULL when it does not exist; caller frees. */
static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		cr_assert_eq(errno, ENOENT, "%s: %s", path, strerror(errno));
		return NULL;
	}
	cr_assert_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	p = malloc(*len ? *len : 1);
	cr_assert_not_null(p);
	for (size_t got = 0; got < *len;) {
		ssize_t n = read(fd, p + got, *len - got);

		cr_assert_gt(n, 0, "%s: short read", path);
		got += (size_t)n;
	}
	close(fd);
	return p;
}

static uint8_t *read_segment(uint32_t index, size_t *len)
{
	char path[512];
	uint8_t *p;

	seg_path(path, sizeof(path), tmpdir, index);
	p = read_file(path, len);
	cr_assert_not_null(p, "%s is missing", path);
	return p;
}

static void write_segment(uint32_t index, const uint8_t *p, size_t len)
{
	char path[512];
	int fd;

	seg_path(path, sizeof(path), tmpdir, index);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
}

static void patch_byte(uint32_t index, size_t off, uint8_t v)
{
	size_t len;
	uint8_t *p = read_segment(index, &len);

	cr_assert_lt(off, len);
	p[off] = v;
	write_segment(index, p, len);
	free(p);
}

static void truncate_segment(uint32_t index, size_t size)
{
	char path[512];

	seg_path(path, sizeof(path), tmpdir, index);
	cr_assert_eq(truncate(path, (off_t)size), 0, "truncate %s: %s", path, strerror(errno));
}

/* Recomputes the CRC of the fragment whose header is at seg[off]. */
static void fix_crc(uint8_t *seg, size_t off)
{
	be32_put(seg + off + 3, crc32c(0, seg + off + HDR, be16_get(seg + off + 1)));
}

/* A directory's segments 00000000, 00000001, ... in memory. */
struct segs {
	uint8_t *p[MAX_SEGS];
	size_t len[MAX_SEGS];
	size_t n;
};

static void load_segments(const char *dir, struct segs *s)
{
	memset(s, 0, sizeof(*s));
	for (;;) {
		char path[512];

		cr_assert_lt(s->n, MAX_SEGS);
		seg_path(path, sizeof(path), dir, (uint32_t)s->n);
		s->p[s->n] = read_file(path, &s->len[s->n]);
		if (!s->p[s->n])
			break;
		s->n++;
	}
	cr_assert_gt(s->n, 0, "no segments in %s", dir);
}

static void free_segments(struct segs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->p[i]);
	s->n = 0;
}

/* ---- writing good segments ---- */

static struct wal_writer *writer_open(enum wal_compression c, uint64_t segment_size)
{
	struct wal_writer_opts o = { .compression = c, .segment_size = segment_size };
	struct wal_writer *w = NULL;
	struct err e = { 0 };

	cr_assert_eq(wal_writer_open(&w, tmpdir, &o, &e), 0, "wal_writer_open: %s", e.msg);
	return w;
}

static void writer_close(struct wal_writer *w)
{
	struct err e = { 0 };

	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 17 + (i >> 8) + 1);
	return p;
}

static unsigned npattern;

/* Logs a pattern record of n bytes; returns where it starts. */
static struct wal_pos add(struct wal_writer *w, size_t n)
{
	uint8_t *p = pattern(n, npattern++);
	struct wal_pos pos;
	struct err e = { 0 };

	cr_assert_eq(wal_writer_log(w, p, n, &pos, &e), 0, "%s", e.msg);
	free(p);
	return pos;
}

static struct wal_pos add_stored(struct wal_writer *w, const uint8_t *p, size_t n, uint8_t flags)
{
	struct wal_pos pos;
	struct err e = { 0 };

	cr_assert_eq(wal_writer_log_stored(w, p, n, flags, &pos, &e), 0, "%s", e.msg);
	return pos;
}

/* R0 = 100 bytes at 0, R1 = 200 at 107, R2 = 300 at 314 (ends at 621). */
static void write_basic(void)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	cr_assert_eq(add(w, 200).offset, 107);
	cr_assert_eq(add(w, 300).offset, 314);
	writer_close(w);
}

/* R0 = 32755 bytes ends at 32762 (6 bytes of padding), R1 = 70000 starts at
 * 32768: FIRST 32761 there, MIDDLE 32761 at 65536, LAST 4478 at 98304. */
static void write_multi_page(void)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	cr_assert_eq(add(w, 70000).offset, PAGE);
	writer_close(w);
}

/* xorshift64*, seeded per test */
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

/* Random bytes, or (compressible) 64-byte blocks picked from 16 random ones. */
static uint8_t *random_record(size_t n, int compressible)
{
	uint8_t dict[16][64];
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (int i = 0; i < 16; i++)
		for (int k = 0; k < 64; k++)
			dict[i][k] = (uint8_t)(rnd() >> 56);
	for (size_t i = 0; i < n; i += compressible ? 64 : 1) {
		if (compressible)
			memcpy(p + i, dict[rnd() % 16], n - i < 64 ? n - i : 64);
		else
			p[i] = (uint8_t)(rnd() >> 56);
	}
	return p;
}

/* Logs count records of random sizes 0..100000 (some around a page, some tiny). */
static void write_random(enum wal_compression c, uint64_t segment_size, size_t count, uint64_t seed)
{
	struct wal_writer *w = writer_open(c, segment_size);
	struct err e = { 0 };

	rng = seed;
	for (size_t i = 0; i < count; i++) {
		size_t n;
		uint8_t *p;

		switch (rnd() % 8) {
		case 0: n = 0; break;
		case 1: n = rnd() % 64; break;
		case 2: n = ROOM - 3 + rnd() % 7; break;
		default: n = rnd() % 100001; break;
		}
		p = random_record(n, (int)(rnd() % 2));
		cr_assert_eq(wal_writer_log(w, p, n, NULL, &e), 0, "%s", e.msg);
		free(p);
	}
	writer_close(w);
}

/* ---- reading both ways ---- */

struct got_rec {
	uint8_t *data;
	size_t len, stored_len;
	uint32_t segment;
	uint64_t offset, end;
	uint8_t flags;
};

/* What a reader made of some segments: records, then a clean end or an error. */
struct run {
	struct got_rec *recs;
	size_t n, cap;
	int rc;                     /* 0: clean end; else the error */
	struct err e;
	uint32_t err_segment;       /* the segment the error names */
	const char *where;          /* e.msg after the segment's name: "offset O: reason" */
};

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->recs[i].data);
	free(r->recs);
	memset(r, 0, sizeof(*r));
}

static void run_add(struct run *r, const struct wal_record *rec)
{
	struct got_rec *g;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->recs = realloc(r->recs, r->cap * sizeof(*r->recs));
		cr_assert_not_null(r->recs);
	}
	g = &r->recs[r->n++];
	g->data = malloc(rec->len ? rec->len : 1);
	cr_assert_not_null(g->data);
	if (rec->len)
		memcpy(g->data, rec->data, rec->len);
	g->len = rec->len;
	g->stored_len = rec->stored_len;
	g->segment = rec->segment;
	g->offset = rec->offset;
	g->end = rec->end;
	g->flags = rec->flags;
}

/* The pull reader over a directory (the oracle). */
static void pull_dir(struct run *out, const char *dir, const struct wal_reader_opts *opts)
{
	struct wal_reader *r;
	struct wal_record rec;
	int rc;

	memset(out, 0, sizeof(*out));
	cr_assert_eq(wal_reader_open_dir(&r, dir, opts, &out->e), 0, "%s", out->e.msg);
	while ((rc = wal_reader_next(r, &rec, &out->e)) == 1)
		run_add(out, &rec);
	out->rc = rc;
	if (rc) {
		const char *path = wal_reader_segment_path(r), *base = strrchr(path, '/');
		size_t n = strlen(path);

		cr_assert_eq(strncmp(out->e.msg, path, n), 0, "\"%s\" does not start with %s", out->e.msg, path);
		cr_assert_eq(strncmp(out->e.msg + n, ": ", 2), 0, "%s", out->e.msg);
		out->where = out->e.msg + n + 2;
		out->err_segment = (uint32_t)strtoul(base + 1, NULL, 10);
	}
	wal_reader_close(r);
}

/* The pull reader over one segment in memory. */
static void pull_mem(struct run *out, const uint8_t *p, size_t len, const char *name,
		     const struct wal_reader_opts *opts)
{
	struct wal_reader *r;
	struct wal_record rec;
	int rc;

	memset(out, 0, sizeof(*out));
	cr_assert_eq(wal_reader_open_mem(&r, p, len, name, opts, &out->e), 0, "%s", out->e.msg);
	while ((rc = wal_reader_next(r, &rec, &out->e)) == 1)
		run_add(out, &rec);
	out->rc = rc;
	if (rc) {
		size_t n = strlen(name);

		cr_assert_eq(strncmp(out->e.msg, name, n), 0, "%s", out->e.msg);
		cr_assert_eq(strncmp(out->e.msg + n, ": ", 2), 0, "%s", out->e.msg);
		out->where = out->e.msg + n + 2;
	}
	wal_reader_close(r);
}

/* How the push parser is fed: chunks of a fixed size, or random ones. */
struct split {
	const char *name;
	size_t fixed;               /* 0: random sizes, seeded */
	uint64_t seed;
};

static const struct split splits[] = {
	{ "whole segments", SIZE_MAX, 0 },
	{ "1 byte at a time", 1, 0 },
	{ "3 bytes", 3, 0 },
	{ "7 bytes", HDR, 0 },
	{ "page - 1", PAGE - 1, 0 },
	{ "whole pages", PAGE, 0 },
	{ "page + 1", PAGE + 1, 0 },
	{ "2.5 pages", 5 * PAGE / 2, 0 },
	{ "random sizes 1", 0, 1 },
	{ "random sizes 2", 0, 2 },
	{ "random sizes 3", 0, 3 },
};
#define NSPLITS (sizeof(splits) / sizeof(splits[0]))

/* Random chunks: tiny, small, around a page, several pages. */
static size_t next_chunk(const struct split *s, uint64_t *state, size_t left)
{
	uint64_t saved = rng;
	size_t n;

	rng = *state;
	if (s->fixed)
		n = s->fixed;
	else if (rnd() % 4 == 0)
		n = 1 + rnd() % 8;
	else if (rnd() % 3 == 0)
		n = 1 + rnd() % 600;
	else if (rnd() % 2 == 0)
		n = PAGE - 8 + rnd() % 17;
	else
		n = 1 + rnd() % (3 * PAGE);
	*state = rng;
	rng = saved;
	return n < left ? n : left;
}

static int collect(void *ctx, const struct wal_record *rec, struct err *e)
{
	cr_assert_not_null(e);
	cr_assert_eq(e->code, 0, "the callback's err starts cleared");
	run_add(ctx, rec);
	return 0;
}

static int no_record(void *ctx, const struct wal_record *rec, struct err *e)
{
	(void)ctx;
	(void)e;
	cr_assert_fail("a record at %llu after the error", (unsigned long long)rec->offset);
	return 0;
}

/* The error sticks: the same code and message from every later call. */
static void assert_sticky(struct wal_push *p, const struct run *r)
{
	static const uint8_t more[40];

	for (int i = 0; i < 2; i++) {
		struct err again = { 0 };

		cr_assert_eq(wal_push_feed(p, more, sizeof(more), no_record, NULL, &again), r->rc);
		cr_assert_eq(again.code, r->rc);
		cr_assert_str_eq(again.msg, r->e.msg);
		memset(&again, 0, sizeof(again));
		cr_assert_eq(wal_push_end_segment(p, &again), r->rc);
		cr_assert_str_eq(again.msg, r->e.msg);
		cr_assert_eq(wal_push_feed(p, NULL, 0, NULL, NULL, NULL), r->rc, "also without bytes or an err");
	}
}

/* Feeds the segments to a push parser named name, split as s says. */
static void push_run(struct run *out, const struct segs *segs, const struct split *s, const char *name,
		     const struct wal_reader_opts *opts)
{
	uint64_t state = s->seed * 7919 + 17;
	struct wal_push *p;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	cr_assert_eq(wal_push_new(&p, name, opts, &out->e), 0, "%s", out->e.msg);
	for (size_t i = 0; i < segs->n && !rc; i++) {
		for (size_t off = 0; off < segs->len[i] && !rc;) {
			size_t n = next_chunk(s, &state, segs->len[i] - off);

			rc = wal_push_feed(p, segs->p[i] + off, n, collect, out, &out->e);
			off += n;
		}
		if (!rc)
			rc = wal_push_end_segment(p, &out->e);
	}
	out->rc = rc;
	if (rc) {
		char prefix[128];
		size_t n = strlen(name);
		const char *at;

		cr_assert_eq(out->e.code, rc);
		cr_assert_eq(strncmp(out->e.msg, name, n), 0, "%s", out->e.msg);
		cr_assert_eq(strncmp(out->e.msg + n, " segment ", 9), 0, "%s", out->e.msg);
		out->err_segment = (uint32_t)strtoul(out->e.msg + n + 9, NULL, 10);
		snprintf(prefix, sizeof(prefix), "%s segment %u: ", name, out->err_segment);
		cr_assert_eq(strncmp(out->e.msg, prefix, strlen(prefix)), 0, "%s", out->e.msg);
		at = out->e.msg + strlen(prefix);
		out->where = at;
		assert_sticky(p, out);
	}
	wal_push_free(p);
}

/* push made the same records and ended the same way as pull. */
static void assert_same(const struct run *pull, const struct run *push, const char *how)
{
	for (size_t i = 0; i < pull->n && i < push->n; i++) {
		const struct got_rec *a = &pull->recs[i], *b = &push->recs[i];

		cr_assert_eq(b->len, a->len, "%s: record %zu: %zu bytes, pull gave %zu", how, i, b->len, a->len);
		cr_assert(a->len == 0 || memcmp(a->data, b->data, a->len) == 0, "%s: record %zu: bytes differ", how, i);
		cr_assert_eq(b->segment, a->segment, "%s: record %zu: segment %u, pull gave %u", how, i, b->segment,
			     a->segment);
		cr_assert_eq(b->offset, a->offset, "%s: record %zu: offset %llu, pull gave %llu", how, i,
			     (unsigned long long)b->offset, (unsigned long long)a->offset);
		cr_assert_eq(b->end, a->end, "%s: record %zu: end", how, i);
		cr_assert_eq(b->flags, a->flags, "%s: record %zu: flags", how, i);
		cr_assert_eq(b->stored_len, a->stored_len, "%s: record %zu: stored_len", how, i);
	}
	cr_assert_eq(push->n, pull->n, "%s: %zu records, pull gave %zu (push: %s; pull: %s)", how, push->n, pull->n,
		     push->rc ? push->e.msg : "clean end", pull->rc ? pull->e.msg : "clean end");
	cr_assert_eq(push->rc, pull->rc, "%s: rc %d (%s), pull gave %d (%s)", how, push->rc, push->e.msg, pull->rc,
		     pull->e.msg);
	if (pull->rc) {
		cr_assert_eq(push->e.code, pull->e.code, "%s", how);
		cr_assert_str_eq(push->where, pull->where, "%s: \"%s\", pull: \"%s\"", how, push->e.msg, pull->e.msg);
		cr_assert_eq(push->err_segment, pull->err_segment, "%s: %s, pull: %s", how, push->e.msg, pull->e.msg);
	}
}

/* Feeds dir's segments in every split; each run must match the pull reader.
 * Returns the number of records. */
static size_t expect_same_as_pull(const char *dir, const struct wal_reader_opts *opts, struct run *pull_out)
{
	struct segs segs;
	struct run pull;

	pull_dir(&pull, dir, opts);
	load_segments(dir, &segs);
	for (size_t i = 0; i < NSPLITS; i++) {
		struct run push;

		push_run(&push, &segs, &splits[i], NAME, opts);
		assert_same(&pull, &push, splits[i].name);
		run_free(&push);
	}
	free_segments(&segs);
	if (pull_out) {
		*pull_out = pull;
		/* where points into e.msg, which moved */
		if (pull_out->rc)
			pull_out->where = pull_out->e.msg + (pull.where - pull.e.msg);
	} else {
		run_free(&pull);
	}
	return pull_out ? pull_out->n : 0;
}

static void assert_msg(const char *msg, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, msg);
	while ((s = va_arg(ap, const char *)) != NULL)
		cr_assert_not_null(strstr(msg, s), "message \"%s\" lacks \"%s\"", msg, s);
	va_end(ap);
}

/* The pull reader fails as test_wal_bad.c says, and push exactly like it. */
static void expect_bad(size_t delivered, uint32_t segment, uint64_t offset, const char *reason,
		       const struct wal_reader_opts *opts)
{
	struct run pull;
	char at[64];

	expect_same_as_pull(tmpdir, opts, &pull);
	snprintf(at, sizeof(at), "offset %llu: ", (unsigned long long)offset);
	cr_assert_eq(pull.rc, SNAPARC_CORRUPT, "pull: rc %d (%s), want corrupt", pull.rc, pull.e.msg);
	cr_assert_eq(pull.n, delivered, "pull: %zu records before the error, want %zu (%s)", pull.n, delivered,
		     pull.e.msg);
	cr_assert_eq(pull.err_segment, segment, "%s", pull.e.msg);
	cr_assert_eq(strncmp(pull.where, at, strlen(at)), 0, "\"%s\" is not at %s", pull.e.msg, at);
	assert_msg(pull.where, reason, NULL);
	run_free(&pull);
}

static void expect_clean(size_t records, const struct wal_reader_opts *opts)
{
	struct run pull;

	expect_same_as_pull(tmpdir, opts, &pull);
	cr_assert_eq(pull.rc, 0, "pull: %s", pull.e.msg);
	cr_assert_eq(pull.n, records, "pull: %zu records, want %zu", pull.n, records);
	run_free(&pull);
}

/* ---- good segments: the same records ---- */

Test(push_same, plain_default_segments)
{
	write_random(WAL_COMPRESS_NONE, 0, 120, 201);
	expect_clean(120, NULL);
}

Test(push_same, snappy_default_segments)
{
	write_random(WAL_COMPRESS_SNAPPY, 0, 120, 202);
	expect_clean(120, NULL);
}

Test(push_same, zstd_default_segments)
{
	write_random(WAL_COMPRESS_ZSTD, 0, 120, 203);
	expect_clean(120, NULL);
}

Test(push_same, snappy_records_as_stored_with_raw)
{
	struct wal_reader_opts raw = { .raw = 1 };

	write_random(WAL_COMPRESS_SNAPPY, 0, 80, 204);
	expect_clean(80, &raw);
}

Test(push_same, plain_small_segments)
{
	write_random(WAL_COMPRESS_NONE, 4 * PAGE, 100, 205);
	expect_clean(100, NULL);
}

Test(push_same, snappy_small_segments)
{
	write_random(WAL_COMPRESS_SNAPPY, 2 * PAGE, 100, 206);
	expect_clean(100, NULL);
}

Test(push_same, zstd_small_segments)
{
	write_random(WAL_COMPRESS_ZSTD, 2 * PAGE, 100, 207);
	expect_clean(100, NULL);
}

Test(push_same, one_page_segments)
{
	struct segs segs;

	write_random(WAL_COMPRESS_NONE, PAGE, 60, 208);
	expect_clean(60, NULL);
	load_segments(tmpdir, &segs);
	cr_assert_gt(segs.n, 20, "records are spread over many segments (%zu)", segs.n);
	free_segments(&segs);
}

/* Records written as Prometheus' writer lays them out at the edges of pages. */
Test(push_same, page_edges)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);       /* 6 bytes of padding */
	add(w, 0);
	add(w, PAGE - 2 * HDR - 7);   /* leaves exactly 7 bytes: */
	add(w, 10);                   /* an empty FIRST there, then a LAST */
	add(w, ROOM);
	add(w, ROOM + 1);
	add(w, 3 * ROOM);
	add(w, 1);
	writer_close(w);
	expect_clean(8, NULL);
}

Test(push_same, empty_segment_and_empty_segments_between)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);

	writer_close(w);   /* 00000000 is empty */
	expect_clean(0, NULL);
	w = writer_open(WAL_COMPRESS_NONE, PAGE);
	add(w, ROOM);
	add(w, ROOM);
	writer_close(w);
	write_segment(3, (const uint8_t *)"", 0);
	expect_clean(2, NULL);
}

Test(push_same, lz4_bit_accepted_with_allow_lz4)
{
	struct wal_reader_opts lz4 = { .allow_lz4 = 1 };
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *body = pattern(50000, 3);

	add(w, 100);
	add_stored(w, body, 50000, WAL_LZ4);
	add(w, 10);
	writer_close(w);
	free(body);
	expect_clean(3, &lz4);
}

/* The real thing: Prometheus 2.42's chunk snapshot, Snappy-compressed. */
Test(push_same, prometheus_2_42_snapshot)
{
	static const struct wal_reader_opts raw = { .raw = 1 };
	char dir[512];
	struct run pull;

	support_bundled_snapshot(dir, sizeof(dir));
	expect_same_as_pull(dir, NULL, &pull);
	cr_assert_eq(pull.rc, 0, "%s", pull.e.msg);
	cr_assert_gt(pull.n, 500, "%zu records", pull.n);   /* 400 + 100 + 5 + 4 series and more */
	{
		size_t snappy = 0;

		for (size_t i = 0; i < pull.n; i++)
			snappy += pull.recs[i].flags == WAL_SNAPPY;
		cr_assert_gt(snappy, pull.n / 2, "%zu of %zu records Snappy-compressed", snappy, pull.n);
	}
	run_free(&pull);
	expect_same_as_pull(dir, &raw, &pull);
	cr_assert_eq(pull.rc, 0, "%s", pull.e.msg);
	run_free(&pull);
}

/* Archive segments end mid-page after the last commit. */
Test(push_same, partial_last_page)
{
	struct wal_reader_opts partial = { .partial_last_page = 1 };
	struct wal_writer *w = writer_open(WAL_COMPRESS_SNAPPY, 0);
	struct err e = { 0 };
	size_t len;
	uint8_t *seg;

	for (int i = 0; i < 10; i++)
		add(w, (size_t)i * 9000);
	cr_assert_eq(wal_writer_flush(w, &e), 0, "%s", e.msg);
	wal_writer_discard(w);
	seg = read_segment(0, &len);
	free(seg);
	cr_assert_neq(len % PAGE, 0, "the last page is partial");
	expect_clean(10, &partial);
	expect_bad(10, 0, len, "torn last page", NULL);
}

/* ---- torn segments (test_wal_bad.c's torn suite) ---- */

Test(push_torn, cut_at_page_boundary_inside_multi_page_record)
{
	write_multi_page();
	truncate_segment(0, 2 * PAGE);
	expect_bad(1, 0, PAGE, "segment ends inside a record", NULL);
}

Test(push_torn, cut_at_page_boundary_names_last_whole_record_end)
{
	write_multi_page();
	truncate_segment(0, 3 * PAGE);
	expect_bad(1, 0, PAGE, "the last whole record ended at offset 32762", NULL);
}

Test(push_torn, cut_inside_a_fragment)
{
	write_multi_page();
	truncate_segment(0, 70000);
	expect_bad(1, 0, 2 * PAGE, "segment ends inside a 32761-byte fragment", NULL);
}

Test(push_torn, cut_inside_a_fragment_header)
{
	write_multi_page();
	truncate_segment(0, 2 * PAGE + 3);
	expect_bad(1, 0, 2 * PAGE, "fragment header", NULL);
}

Test(push_torn, cut_inside_first_fragment_of_first_page)
{
	write_basic();
	truncate_segment(0, 150);
	expect_bad(1, 0, 107, "200-byte fragment", NULL);
}

Test(push_torn, last_page_cut_right_after_complete_records)
{
	write_basic();
	truncate_segment(0, 621);
	expect_bad(3, 0, 621, "torn last page", NULL);
}

Test(push_torn, last_page_cut_inside_padding)
{
	write_basic();
	truncate_segment(0, 1000);
	expect_bad(3, 0, 1000, "the last whole record ended at offset 621", NULL);
}

Test(push_torn, second_page_torn_after_full_first_page)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, ROOM);
	add(w, 50);
	writer_close(w);
	truncate_segment(0, PAGE + 57 + 10);
	expect_bad(2, 0, 32835, "the last whole record ended at offset 32825", NULL);
}

Test(push_torn, torn_segment_before_another)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);

	add(w, 1000);
	cr_assert_eq(add(w, ROOM).segment, 1);
	writer_close(w);
	truncate_segment(0, 500);
	expect_bad(0, 0, 0, "segment ends inside a 1000-byte fragment", NULL);
}

/* A non-zero byte in a page's last 6 bytes: which error it is depends on
 * whether the page turns out torn, which the push parser learns last. */
Test(push_torn, non_zero_byte_in_last_six_of_a_torn_page)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	add(w, 10);
	writer_close(w);
	patch_byte(0, PAGE - 6, 0x01);
	truncate_segment(0, PAGE - 2);
	expect_bad(1, 0, PAGE - 6, "segment ends inside a fragment header", NULL);
}

/* The header says the fragment crosses the page: no need to wait for the rest. */
Test(push_torn, torn_fragment_that_would_cross_the_page)
{
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	be16_put(seg + 107 + 1, (uint16_t)(PAGE - 107 - HDR + 1));
	write_segment(0, seg, 200);
	free(seg);
	expect_bad(1, 0, 107, "fragment of 32655 bytes crosses the page boundary", NULL);
}

/*
 * A good segment ended early, at many points: inside headers, fragments,
 * records, padding and at page boundaries. Whatever the push parser was fed
 * up to there, its error is the pull reader's on the same bytes and names
 * where the last whole record ended; a cut at a record boundary on a page
 * boundary is clean.
 */
static void cut_everywhere(const struct wal_reader_opts *opts, uint64_t seed)
{
	struct segs segs;
	struct run whole;
	size_t len;

	write_multi_page();
	{
		struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

		/* a second segment: 00000001, with small records and padding */
		for (int i = 0; i < 40; i++)
			add(w, (size_t)(i * 1777) % 5000);
		writer_close(w);
	}
	load_segments(tmpdir, &segs);
	cr_assert_eq(segs.n, 2);
	pull_mem(&whole, segs.p[1], segs.len[1], "whole", opts);
	cr_assert_eq(whole.rc, 0, "%s", whole.e.msg);
	len = segs.len[1];
	rng = seed;
	/* every cut in the first record (a 7-byte empty one), then here and there */
	for (size_t cut = 0; cut <= len; cut += cut < 8 ? 1 : 1 + rnd() % 400) {
		struct segs fed = { .n = 2 };
		struct run pull, push;
		uint64_t last_end = 0;
		size_t nwhole = 0;

		fed.p[0] = segs.p[0];
		fed.len[0] = segs.len[0];
		fed.p[1] = segs.p[1];
		fed.len[1] = cut;
		pull_mem(&pull, segs.p[1], cut, "cut", opts);
		for (size_t i = 0; i < whole.n && whole.recs[i].end <= cut; i++, nwhole++)
			last_end = whole.recs[i].end;
		push_run(&push, &fed, &splits[1 + cut % (NSPLITS - 1)], NAME, opts);
		cr_assert_eq(push.n, 2 + nwhole, "cut at %zu: %zu records, want 2 + %zu", cut, push.n, nwhole);
		cr_assert_eq(push.n - 2, pull.n);
		for (size_t i = 0; i < pull.n; i++) {
			cr_assert_eq(push.recs[2 + i].offset, pull.recs[i].offset);
			cr_assert_eq(push.recs[2 + i].segment, 1);
		}
		cr_assert_eq(push.rc, pull.rc, "cut at %zu: %s / %s", cut, push.e.msg, pull.e.msg);
		if (pull.rc) {
			char want[96];

			cr_assert_str_eq(push.where, pull.where, "cut at %zu", cut);
			cr_assert_eq(push.err_segment, 1);
			snprintf(want, sizeof(want), "the last whole record ended at offset %llu",
				 (unsigned long long)last_end);
			assert_msg(push.where, want, NULL);
		} else {
			cr_assert(cut % PAGE == 0 || opts->partial_last_page, "cut at %zu is clean", cut);
		}
		run_free(&pull);
		run_free(&push);
	}
	run_free(&whole);
	free_segments(&segs);
}

Test(push_torn, segment_ended_early_anywhere)
{
	static const struct wal_reader_opts none;

	cut_everywhere(&none, 301);
}

Test(push_torn, segment_ended_early_anywhere_with_partial_last_page)
{
	static const struct wal_reader_opts partial = { .partial_last_page = 1 };

	cut_everywhere(&partial, 302);
}

/* ---- fragments (test_wal_bad.c's fragment suite) ---- */

Test(push_fragment, crc_mismatch_after_one_flipped_bit)
{
	uint8_t *r1 = pattern(200, 1);

	npattern = 0;
	write_basic();
	patch_byte(0, 107 + HDR + 50, r1[50] ^ 0x10);
	free(r1);
	expect_bad(1, 0, 107, "CRC mismatch in full fragment of 200 bytes", NULL);
}

Test(push_fragment, crc_field_damaged)
{
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	seg[314 + 4] ^= 0x01;
	write_segment(0, seg, len);
	free(seg);
	expect_bad(2, 0, 314, "CRC mismatch", NULL);
}

Test(push_fragment, middle_without_first)
{
	write_basic();
	patch_byte(0, 107, 0x03);
	expect_bad(1, 0, 107, "middle fragment without a first fragment", NULL);
}

Test(push_fragment, last_without_first)
{
	write_basic();
	patch_byte(0, 107, 0x04);
	expect_bad(1, 0, 107, "last fragment without a first fragment", NULL);
}

Test(push_fragment, first_while_a_record_is_open)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	add(w, 40000);   /* FIRST at 107, LAST at 32768 */
	writer_close(w);
	patch_byte(0, PAGE, 0x02);
	expect_bad(1, 0, PAGE, "first fragment while the record that started at offset 107 is incomplete", NULL);
}

Test(push_fragment, full_while_a_record_is_open)
{
	write_basic();
	patch_byte(0, 107, 0x02);
	expect_bad(1, 0, 314, "full fragment while the record that started at offset 107 is incomplete", NULL);
}

Test(push_fragment, compression_bit_differs_between_fragments)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *body = pattern(40000, 9);

	add_stored(w, body, 40000, WAL_SNAPPY);   /* 0x0a at 0, 0x0c at 32768 */
	writer_close(w);
	free(body);
	patch_byte(0, PAGE, 0x04);
	expect_bad(0, 0, PAGE, "compression bits 0x00 differ from its record's 0x08", NULL);
}

Test(push_fragment, non_zero_padding_byte)
{
	write_basic();
	patch_byte(0, 20000, 0x5a);
	expect_bad(3, 0, 20000, "non-zero byte 0x5a in page padding", NULL);
}

Test(push_fragment, non_zero_last_byte_of_page)
{
	write_basic();
	patch_byte(0, PAGE - 1, 0x01);
	expect_bad(3, 0, PAGE - 1, "non-zero byte 0x01 in page padding", NULL);
}

Test(push_fragment, non_zero_byte_where_fewer_than_seven_are_left)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	add(w, 10);
	writer_close(w);
	patch_byte(0, PAGE - 6, 0x01);
	expect_bad(1, 0, PAGE - 6, "fewer than 7 bytes", NULL);
}

Test(push_fragment, non_zero_inside_short_page_tail_padding)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	add(w, 10);
	writer_close(w);
	patch_byte(0, PAGE - 3, 0x77);
	expect_bad(1, 0, PAGE - 3, "non-zero byte 0x77 in page padding", NULL);
}

static void expect_bad_type(uint8_t type, const char *reason, const struct wal_reader_opts *opts)
{
	char want[96];

	teardown();
	setup();
	write_basic();
	patch_byte(0, 107, type);
	snprintf(want, sizeof(want), "%s 0x%02x", reason, type);
	expect_bad(1, 0, 107, want, opts);
}

Test(push_fragment, reserved_bits)
{
	struct wal_reader_opts lz4 = { .allow_lz4 = 1 };

	expect_bad_type(0x21, "reserved bits set in fragment type", NULL);
	expect_bad_type(0x41, "reserved bits set in fragment type", NULL);
	expect_bad_type(0x41, "reserved bits set in fragment type", &lz4);
	expect_bad_type(0x81, "reserved bits set in fragment type", NULL);
}

Test(push_fragment, both_compression_bits)
{
	struct wal_reader_opts lz4 = { .allow_lz4 = 1 };

	expect_bad_type(0x19, "more than one compression bit in fragment type", NULL);
	expect_bad_type(0x29, "more than one compression bit in fragment type", &lz4);
}

Test(push_fragment, unknown_kind_5_6_7)
{
	for (uint8_t kind = 5; kind <= 7; kind++) {
		char want[64];

		snprintf(want, sizeof(want), "unknown fragment kind %u (type byte", kind);
		expect_bad_type(kind, want, NULL);
		expect_bad_type((uint8_t)(kind | WAL_SNAPPY), want, NULL);
	}
}

/* A 0x08 "fragment" (kind 0 with the Snappy bit) with a good CRC is not data. */
Test(push_fragment, padding_kind_with_compression_bit_is_not_data)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	size_t len;
	uint8_t *seg;

	add(w, 3);
	add(w, 40000);
	writer_close(w);
	seg = read_segment(0, &len);
	seg[0] = 0x08;
	memcpy(seg + HDR, "XYZ", 3);
	fix_crc(seg, 0);
	write_segment(0, seg, len);
	free(seg);
	expect_bad(0, 0, 0, "padding type with other bits set (type byte 0x08)", NULL);
}

Test(push_fragment, length_crosses_page_boundary)
{
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	be16_put(seg + 107 + 1, (uint16_t)(PAGE - 107 - HDR + 1));
	write_segment(0, seg, len);
	free(seg);
	expect_bad(1, 0, 107, "fragment of 32655 bytes crosses the page boundary", NULL);
}

Test(push_fragment, length_0xffff)
{
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	be16_put(seg + 1, 0xffff);
	write_segment(0, seg, len);
	free(seg);
	expect_bad(0, 0, 0, "fragment of 65535 bytes crosses the page boundary", NULL);
}

/* The damage is in the third record of segment 2: two whole segments first. */
Test(push_fragment, records_of_earlier_segments_and_before_damage_come_first)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 2 * PAGE);
	struct wal_pos pos[80];
	size_t damaged = 0, in_seg2 = 0, len;
	uint8_t *seg;

	for (int i = 0; i < 80; i++)
		pos[i] = add(w, (size_t)(i * 977) % 9000);
	writer_close(w);
	cr_assert_gt(pos[79].segment, 2);
	for (size_t i = 0; i < 80 && !damaged; i++)
		if (pos[i].segment == 2 && ++in_seg2 == 3)
			damaged = i;
	seg = read_segment(2, &len);
	seg[pos[damaged].offset + HDR] ^= 0x01;
	write_segment(2, seg, len);
	free(seg);
	expect_bad(damaged, 2, pos[damaged].offset, "CRC mismatch", NULL);
}

/* ---- compressed bodies (test_wal_bad.c's compressed suite, through a segment) ---- */

Test(push_compressed, snappy_body_that_does_not_decompress)
{
	static const uint8_t bad[] = { 0x05, 0x01, 0x10 };
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	add_stored(w, bad, sizeof(bad), WAL_SNAPPY);
	writer_close(w);
	expect_bad(1, 0, 107, "record of 3 stored bytes: Snappy data does not decompress", NULL);
}

/* A good multi-page Snappy record whose body is garbage, CRCs fixed. */
Test(push_compressed, snappy_garbage_body_with_fixed_crc)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_SNAPPY, 0);
	uint8_t *rec = calloc(1, 5000), *seg;
	size_t len, stored;

	add(w, 50);
	cr_assert_eq(wal_writer_log(w, rec, 5000, NULL, NULL), 0);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(seg[57], 0x09);
	stored = be16_get(seg + 57 + 1);
	for (size_t i = 2; i < stored; i++)
		seg[57 + HDR + i] = 0xff;
	fix_crc(seg, 57);
	write_segment(0, seg, len);
	free(seg);
	free(rec);
	expect_bad(1, 0, 57, "Snappy", NULL);
}

Test(push_compressed, zstd_body_that_is_not_a_frame)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	add_stored(w, (const uint8_t *)"definitely not zstd", 19, WAL_ZSTD);
	writer_close(w);
	expect_bad(1, 0, 107, "not a valid zstd frame", NULL);
}

Test(push_compressed, zstd_broken_magic_with_fixed_crc)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_ZSTD, 0);
	uint8_t *rec = calloc(1, 5000), *seg;
	size_t len;

	add(w, 50);
	cr_assert_eq(wal_writer_log(w, rec, 5000, NULL, NULL), 0);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(seg[57], 0x11);
	seg[57 + HDR] ^= 0xff;
	fix_crc(seg, 57);
	write_segment(0, seg, len);
	free(seg);
	free(rec);
	expect_bad(1, 0, 57, "zstd", NULL);
}

Test(push_compressed, zstd_content_size_lies)
{
	uint8_t frame[64];
	size_t n = ZSTD_compress(frame, sizeof(frame), "hello", 5, 1);
	struct wal_writer *w;

	cr_assert_not(ZSTD_isError(n));
	cr_assert_eq(frame[4] & 0x20, 0x20, "expected a single-segment frame header");
	cr_assert_eq(frame[5], 5);
	frame[5] = 6;
	w = writer_open(WAL_COMPRESS_NONE, 0);
	add_stored(w, frame, n, WAL_ZSTD);
	writer_close(w);
	expect_bad(0, 0, 0, "zstd", NULL);
}

Test(push_compressed, snappy_4_gb_claim_in_segment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_SNAPPY, 0);
	uint8_t *rec = calloc(1, 5000), *seg;
	size_t len;

	add(w, 50);
	cr_assert_eq(wal_writer_log(w, rec, 5000, NULL, NULL), 0);
	writer_close(w);
	seg = read_segment(0, &len);
	memcpy(seg + 57 + HDR, "\xff\xff\xff\xff\x0f", 5);
	fix_crc(seg, 57);
	write_segment(0, seg, len);
	free(seg);
	free(rec);
	expect_bad(1, 0, 57, "4294967295", NULL);
}

/* A multi-page zstd record that does not decompress: the error names its start. */
Test(push_compressed, zstd_multi_page_record_with_bad_body)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *body = pattern(90000, 5);

	add(w, 20);
	add_stored(w, body, 90000, WAL_ZSTD);
	writer_close(w);
	free(body);
	expect_bad(1, 0, 27, "record of 90000 stored bytes: not a valid zstd frame", NULL);
}

/* ---- the API ---- */

Test(push_api, messages_start_with_name_and_segment)
{
	struct wal_push *p;
	struct err e = { 0 };
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	seg[314 + HDR] ^= 0x80;
	cr_assert_eq(wal_push_new(&p, "in-memory", NULL, &e), 0);
	cr_assert_eq(wal_push_end_segment(p, &e), 0, "an empty segment 0");
	cr_assert_eq(wal_push_feed(p, seg, len, NULL, NULL, &e), SNAPARC_CORRUPT);
	cr_assert_eq(e.code, SNAPARC_CORRUPT);
	assert_msg(e.msg, "in-memory segment 1: offset 314: CRC mismatch", NULL);
	cr_assert_eq(strstr(e.msg, "in-memory"), e.msg, "%s", e.msg);
	wal_push_free(p);
	seg[314 + HDR] ^= 0x80;

	cr_assert_eq(wal_push_new(&p, NULL, NULL, &e), 0);
	cr_assert_eq(wal_push_feed(p, seg, 700, NULL, NULL, &e), 0);
	cr_assert_eq(wal_push_end_segment(p, &e), SNAPARC_CORRUPT);
	cr_assert_str_eq(e.msg, "WAL stream segment 0: offset 700: torn last page: the segment is 700 bytes, not a "
				"whole number of 32 KiB pages; the last whole record ended at offset 621");
	wal_push_free(p);
	free(seg);
}

struct counting {
	size_t n;
	uint32_t segment[8];
	int stop_at;              /* 1-based record to fail on; 0 never */
	int stop_code;
	int say_why;
};

static int count_records(void *ctx, const struct wal_record *rec, struct err *e)
{
	struct counting *c = ctx;

	if (c->n < 8)
		c->segment[c->n] = rec->segment;
	if (++c->n == (size_t)c->stop_at)
		return c->say_why ? err_set(e, c->stop_code, "record at %llu: refused by the consumer",
					   (unsigned long long)rec->offset)
				  : c->stop_code;
	return 0;
}

Test(push_api, segments_count_from_zero_in_the_order_fed)
{
	struct counting c = { 0 };
	struct wal_push *p;
	struct err e = { 0 };
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	cr_assert_eq(wal_push_new(&p, NAME, NULL, &e), 0);
	cr_assert_eq(wal_push_feed(p, seg, len, count_records, &c, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_push_end_segment(p, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_push_end_segment(p, &e), 0, "an empty segment 1");
	cr_assert_eq(wal_push_feed(p, seg, len, count_records, &c, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_push_end_segment(p, &e), 0, "%s", e.msg);
	cr_assert_eq(c.n, 6);
	cr_assert_eq(c.segment[2], 0);
	cr_assert_eq(c.segment[3], 2);
	cr_assert_eq(c.segment[5], 2);
	wal_push_free(p);
	free(seg);
}

/* Records come out in the call that brings their last byte. */
Test(push_api, records_come_out_as_soon_as_they_are_whole)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	struct wal_pos pos[12];
	struct counting c = { 0 };
	struct wal_push *p;
	struct err e = { 0 };
	uint64_t ends[12];
	size_t len, whole = 0;
	uint8_t *seg;

	for (int i = 0; i < 12; i++)
		pos[i] = add(w, (size_t)i * 7000);
	writer_close(w);
	seg = read_segment(0, &len);
	{
		struct run r;

		pull_mem(&r, seg, len, "mem", NULL);
		cr_assert_eq(r.n, 12);
		for (int i = 0; i < 12; i++) {
			cr_assert_eq(r.recs[i].offset, pos[i].offset);
			ends[i] = r.recs[i].end;
		}
		run_free(&r);
	}
	cr_assert_eq(wal_push_new(&p, NAME, NULL, &e), 0);
	for (size_t fed = 1; fed <= len; fed++) {
		cr_assert_eq(wal_push_feed(p, seg + fed - 1, 1, count_records, &c, &e), 0, "%s", e.msg);
		while (whole < 12 && ends[whole] <= fed)
			whole++;
		cr_assert_eq(c.n, whole, "after %zu bytes: %zu records, want %zu", fed, c.n, whole);
	}
	cr_assert_eq(wal_push_end_segment(p, &e), 0, "%s", e.msg);
	wal_push_free(p);
	free(seg);
}

/* The consumer's error stops the parser, with its message, for good. */
Test(push_api, consumer_error_stops_and_sticks)
{
	struct counting c = { .stop_at = 2, .stop_code = SNAPARC_IO, .say_why = 1 };
	struct wal_push *p;
	struct err e = { 0 };
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	cr_assert_eq(wal_push_new(&p, NAME, NULL, &e), 0);
	cr_assert_eq(wal_push_feed(p, seg, len, count_records, &c, &e), SNAPARC_IO);
	cr_assert_eq(e.code, SNAPARC_IO);
	cr_assert_str_eq(e.msg, "record at 107: refused by the consumer");
	cr_assert_eq(c.n, 2, "nothing after the refused record");
	memset(&e, 0, sizeof(e));
	cr_assert_eq(wal_push_feed(p, seg, len, count_records, &c, &e), SNAPARC_IO);
	cr_assert_str_eq(e.msg, "record at 107: refused by the consumer");
	cr_assert_eq(wal_push_end_segment(p, &e), SNAPARC_IO);
	cr_assert_eq(c.n, 2);
	wal_push_free(p);

	/* a consumer that says nothing: the parser names the record */
	c = (struct counting){ .stop_at = 3, .stop_code = SNAPARC_INVALID };
	cr_assert_eq(wal_push_new(&p, NAME, NULL, &e), 0);
	for (size_t i = 0; i < len; i += 10)
		if (wal_push_feed(p, seg + i, len - i < 10 ? len - i : 10, count_records, &c, &e))
			break;
	cr_assert_eq(e.code, SNAPARC_INVALID);
	assert_msg(e.msg, NAME " segment 0: offset 314: ", "consumer", NULL);
	cr_assert_eq(wal_push_end_segment(p, NULL), SNAPARC_INVALID);
	wal_push_free(p);
	free(seg);
}

/* The pull reader's oracle is checked against the writer once here, so that
 * "the same as pull" also means "the records written". */
Test(push_api, records_are_the_ones_written)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_ZSTD, 3 * PAGE);
	uint8_t *data[30];
	size_t lens[30];
	struct wal_pos pos[30];
	struct segs segs;
	struct run push;

	rng = 99;
	for (int i = 0; i < 30; i++) {
		lens[i] = rnd() % 100001;
		data[i] = random_record(lens[i], i % 2);
		cr_assert_eq(wal_writer_log(w, data[i], lens[i], &pos[i], NULL), 0);
	}
	writer_close(w);
	load_segments(tmpdir, &segs);
	push_run(&push, &segs, &splits[8], NAME, NULL);
	cr_assert_eq(push.rc, 0, "%s", push.e.msg);
	cr_assert_eq(push.n, 30);
	for (int i = 0; i < 30; i++) {
		cr_assert_eq(push.recs[i].len, lens[i]);
		cr_assert(lens[i] == 0 || memcmp(push.recs[i].data, data[i], lens[i]) == 0, "record %d", i);
		cr_assert_eq(push.recs[i].segment, pos[i].segment);
		cr_assert_eq(push.recs[i].offset, pos[i].offset);
		free(data[i]);
	}
	run_free(&push);
	free_segments(&segs);
}

/*
 * Memory does not follow the segment: after 64 pages of small records the
 * parser holds what it held after 4 (glibc's count of bytes in use; under
 * ASan, whose allocator glibc does not see, this checks nothing).
 */
Test(push_api, memory_does_not_grow_with_the_segment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	struct wal_push *p;
	struct err e = { 0 };
	size_t len, at4 = 0, at64 = 0;
	uint8_t *seg;
	int rc = 0;

	for (int i = 0; i < 1200; i++)
		add(w, 1500 + (size_t)(i % 7) * 300);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_geq(len, 64 * PAGE);
	cr_assert_eq(wal_push_new(&p, NAME, NULL, &e), 0);
	for (size_t off = 0; off < 64 * PAGE && !rc; off += 1000) {
		rc = wal_push_feed(p, seg + off, 1000, NULL, NULL, &e);
		if (off / PAGE == 4 && !at4)
			at4 = mallinfo2().uordblks;
	}
	at64 = mallinfo2().uordblks;
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_assert_leq(at64, at4 + 4096, "%zu bytes in use after 64 pages, %zu after 4", at64, at4);
	wal_push_free(p);
	free(seg);
}
