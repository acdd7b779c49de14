/*
 * fuzz_wal_push: the input is one WAL segment. It is fed to the push parser
 * (codec/wal_push.c) in pieces and read by the pull reader
 * (wal_reader_open_mem), the reference, in lockstep: each record the push
 * parser hands out must be the pull reader's next one (bytes, offsets,
 * flags), and both must end the same way, cleanly or with the same code and
 * the same "offset O: reason" after the segment's name. After the error the
 * push parser must keep returning it.
 *
 * Where the input is cut comes from the input itself: whole; at sizes read
 * from its own bytes (tiny, around a page, several pages); and one byte at
 * a time when it is small (up to a page and a bit). Each way with the
 * options of Prometheus' segments (decompressing) and of archive segments
 * (LZ4 allowed, records as stored, a partial last page). Two of them feed
 * the segment twice, as segments 0 and 1, when the first ends cleanly.
 *
 * As in fuzz_wal, the custom mutator mostly puts the CRCs right, so that the
 * fuzzer gets past them. A violation traps, which libFuzzer reports as a
 * crash with the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "crc32c.h"
#include "wal.h"
#include "wal_push.h"
#include "fuzz.h"

#define KEEP_BAD_CRCS_ONE_IN 8
#define ONE_BYTE_AT_A_TIME_UP_TO (WAL_PAGE_SIZE + 4096)
#define NAME "fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	if (seed % KEEP_BAD_CRCS_ONE_IN != 0)
		fix_crcs(data, size);
	return size;
}

/* How to cut the input. */
enum cut { WHOLE, FROM_INPUT, ONE_BYTE };

struct cutter {
	enum cut how;
	const uint8_t *data;
	size_t size;
	size_t cursor;          /* FROM_INPUT: the next bytes to read a size from */
};

/* The next piece's size: 1..left. FROM_INPUT reads two bytes of the input
 * (from its end backwards, so that the sizes and the segment's first bytes
 * change apart): the top bits pick tiny, small, around a page or large. */
static size_t next_piece(struct cutter *c, size_t left)
{
	size_t n, v;

	if (c->how == WHOLE)
		return left;
	if (c->how == ONE_BYTE || c->size < 2)
		return 1;
	if (c->cursor < 2)
		c->cursor = c->size;
	v = (size_t)c->data[c->cursor - 1] << 8 | c->data[c->cursor - 2];
	c->cursor -= 2;
	switch (v >> 14) {
	case 0: n = 1 + (v & 7); break;
	case 1: n = 1 + (v & 1023); break;
	case 2: n = WAL_PAGE_SIZE - 8 + (v & 15); break;
	default: n = 1 + (v & 0x3fff) * 8; break;
	}
	return n < left ? n : left;
}

/* The pull reader of the segment being fed, one step behind the push parser. */
struct lockstep {
	struct wal_reader *r;
	const struct wal_reader_opts *opts;
	uint32_t segment;       /* the push parser's segment number */
	uint64_t prev_end;
	struct err e;
};

static volatile uint8_t touched;

static void touch(const uint8_t *p, size_t len)
{
	uint8_t x = 0;

	for (size_t i = 0; i < len; i++)
		x ^= p[i];
	touched = x;
}

static int on_record(void *ctx, const struct wal_record *rec, struct err *e)
{
	struct lockstep *l = ctx;
	struct wal_record want;

	CHECK(e != NULL && e->code == 0);
	CHECK(wal_reader_next(l->r, &want, &l->e) == 1);
	CHECK(rec->segment == l->segment);
	CHECK(rec->offset == want.offset && rec->end == want.end);
	CHECK(rec->offset >= l->prev_end && rec->offset < rec->end);
	CHECK(rec->flags == want.flags && rec->stored_len == want.stored_len);
	CHECK(rec->len == want.len);
	CHECK(rec->len == 0 || (rec->data && memcmp(rec->data, want.data, rec->len) == 0));
	touch(rec->data, rec->len);
	l->prev_end = rec->end;
	return 0;
}

static int lockstep_open(struct lockstep *l, const uint8_t *data, size_t size, uint32_t segment)
{
	l->segment = segment;
	l->prev_end = 0;
	return wal_reader_open_mem(&l->r, data, size, NAME, l->opts, &l->e);
}

/* "offset O: reason": the message after the segment's name. */
static const char *after_name(const char *msg, const char *name)
{
	size_t n = strlen(name);

	CHECK(strncmp(msg, name, n) == 0);
	CHECK(strncmp(msg + n, ": offset ", 9) == 0);
	return msg + n + 2;
}

/* The push parser stopped with rc (or ended the segment cleanly, rc 0): the
 * pull reader must have nothing more but the same end. */
static void check_end(struct lockstep *l, int rc, const struct err *pushed)
{
	struct wal_record ignored;
	char name[64];
	int want = wal_reader_next(l->r, &ignored, &l->e);

	CHECK(want != 1);
	CHECK(rc == want);
	if (!rc)
		return;
	CHECK(pushed->code == rc && l->e.code == rc);
	snprintf(name, sizeof(name), NAME " segment %u", l->segment);
	CHECK(strcmp(after_name(pushed->msg, name), after_name(l->e.msg, NAME)) == 0);
}

/* Feeds data as one segment; 0 when it ended cleanly, else the error. */
static int feed_segment(struct wal_push *p, struct lockstep *l, struct cutter *c, struct err *e)
{
	int rc = 0;

	for (size_t off = 0; off < c->size && !rc;) {
		size_t n = next_piece(c, c->size - off);

		rc = wal_push_feed(p, c->data + off, n, on_record, l, e);
		off += n;
	}
	if (!rc)
		rc = wal_push_end_segment(p, e);
	check_end(l, rc, e);
	return rc;
}

static void run(const uint8_t *data, size_t size, enum cut how, const struct wal_reader_opts *opts, int twice)
{
	struct cutter c = { how, data, size, size };
	struct lockstep l = { .opts = opts };
	struct err e = { 0 }, again = { 0 };
	struct wal_push *p;
	int rc;

	if (wal_push_new(&p, NAME, opts, &e))
		return;
	if (lockstep_open(&l, data, size, 0)) {
		wal_push_free(p);
		return;
	}
	rc = feed_segment(p, &l, &c, &e);
	wal_reader_close(l.r);
	if (!rc && twice && !lockstep_open(&l, data, size, 1)) {
		rc = feed_segment(p, &l, &c, &e);
		wal_reader_close(l.r);
	}
	if (rc) {
		/* the error sticks */
		CHECK(wal_push_feed(p, data, size, on_record, NULL, &again) == rc);
		CHECK(again.code == rc && strcmp(again.msg, e.msg) == 0);
		CHECK(wal_push_end_segment(p, NULL) == rc);
	}
	wal_push_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct wal_reader_opts prometheus = { 0 },
		archive = { .allow_lz4 = 1, .raw = 1, .partial_last_page = 1 };

	run(data, size, WHOLE, &prometheus, 0);
	run(data, size, FROM_INPUT, &prometheus, 1);
	run(data, size, FROM_INPUT, &archive, 0);
	if (size <= ONE_BYTE_AT_A_TIME_UP_TO) {
		run(data, size, ONE_BYTE, &prometheus, 0);
		run(data, size, ONE_BYTE, &archive, 1);
	} else {
		run(data, size, WHOLE, &archive, 0);
	}
	return 0;
}
