/*
 * What restore writes with (codec/wal_writer.c): wal_compress_span(), a
 * Snappy stream with a span left as a literal and the bytes after it coded
 * only by their runs of zeros, and the writer's direct mode (O_DIRECT, its
 * writes on a thread of its own).
 *
 * A span's stream must decompress, with the library's own decoder, to the
 * record byte for byte, whatever the span and the zeros around it; a
 * direct writer must leave exactly the segment files a buffered one does;
 * and wal_writer_log_probed(), compressing into the page, exactly those of
 * compressing first and logging the result.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snappy-c.h>

#include "bytes.h"
#include "snappy_small.h"
#include "wal.h"
#include "support.h"

static uint64_t rng;

static uint8_t rnd_byte(void)
{
	return (uint8_t)(support_rand(&rng) >> 56);
}

/* Label-like text (compressible) for the head of a record. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *words[] = { "__name__", "http_requests_total", "namespace", "kube-system",
				       "instance", "10.0.3.17:9100", "job", "node-exporter", "pod" };

	for (size_t i = 0; i < n;) {
		const char *w = words[support_rand(&rng) % 9];

		for (size_t k = 0; w[k] && i < n; k++)
			p[i++] = (uint8_t)w[k];
	}
}

/* The stream for rec with span [off, off + n); checks that it decompresses
 * to rec, and returns its flags (0: kept plain) and length. */
static int span_roundtrip(const uint8_t *rec, size_t len, size_t off, size_t n, size_t *stored)
{
	struct wal_compressor *c = NULL;
	struct buf out = { 0 };
	struct err e = { 0 };
	int flags;

	cr_assert_eq(wal_compressor_new(&c, WAL_COMPRESS_SNAPPY, &e), 0, "%s", e.msg);
	flags = wal_compress_span(c, rec, len, off, n, &out, &e);
	cr_assert_geq(flags, 0, "wal_compress_span: %s", e.msg);
	if (flags) {
		size_t got = 0;
		uint8_t *back = malloc(len ? len : 1);

		cr_assert_eq(flags, WAL_SNAPPY);
		cr_assert_lt(out.len, len, "kept only when smaller");
		cr_assert_eq(snappy_validate_compressed_buffer((const char *)out.p, out.len), SNAPPY_OK,
			     "span %zu+%zu of %zu bytes: not a valid Snappy block", off, n, len);
		cr_assert_eq(snappy_uncompressed_length((const char *)out.p, out.len, &got), SNAPPY_OK);
		cr_assert_eq(got, len);
		cr_assert_eq(snappy_uncompress((const char *)out.p, out.len, (char *)back, &got), SNAPPY_OK);
		cr_assert_eq(memcmp(back, rec, len), 0, "span %zu+%zu of %zu bytes: other bytes back", off, n, len);
		free(back);
	}
	*stored = flags ? out.len : len;
	buf_free(&out);
	wal_compressor_free(c);
	return flags;
}

TestSuite(wal_span);

/* A series record's shape: text, random chunk bytes, 56 zeros and a value. */
Test(wal_span, series_shape_decompresses_and_stays_near_whole_snappy)
{
	uint8_t rec[300 + 262 + 64];
	char whole[1024];
	size_t whole_len = sizeof(whole), stored;

	rng = 1;
	fill_text(rec, 300);
	for (size_t i = 300; i < 562; i++)
		rec[i] = rnd_byte();
	memset(rec + 562, 0, 56);
	for (size_t i = 618; i < sizeof(rec); i++)
		rec[i] = rnd_byte();
	cr_assert_eq(span_roundtrip(rec, sizeof(rec), 300, 262, &stored), WAL_SNAPPY);
	cr_assert_eq(snappy_compress((const char *)rec, sizeof(rec), whole, &whole_len), SNAPPY_OK);
	/* the tail's 56 zeros: a zero in the literal and one copy */
	cr_assert_leq(stored, whole_len + 8, "span %zu bytes, whole Snappy %zu", stored, whole_len);
}

/* Zero runs of every length around where they start paying (8) and where a
 * copy is split (64 bytes a copy), at the start, middle and end of the
 * tail, and right after the span. */
Test(wal_span, zero_runs_of_every_length_and_place)
{
	uint8_t rec[400];
	size_t stored;

	rng = 2;
	for (size_t run = 1; run <= 200; run++) {
		for (size_t where = 0; where < 3; where++) {
			size_t start;

			fill_text(rec, 100);
			for (size_t i = 100; i < sizeof(rec); i++)
				rec[i] = rnd_byte() | 1;
			start = where == 0 ? 150 : where == 1 ? 150 + (250 - run) / 2 : sizeof(rec) - run;
			if (start + run > sizeof(rec))
				continue;
			memset(rec + start, 0, run);
			span_roundtrip(rec, sizeof(rec), 100, 50, &stored);
		}
	}
}

/* Zeros inside the span stay there as they are: only what follows it is
 * searched. A tail of nothing but zeros, and a run that starts the tail. */
Test(wal_span, zeros_in_span_and_tail_made_of_zeros)
{
	uint8_t rec[1000];
	size_t stored, first;

	rng = 3;
	fill_text(rec, 200);
	memset(rec + 200, 0, 800);
	cr_assert_eq(span_roundtrip(rec, sizeof(rec), 200, 100, &stored), WAL_SNAPPY);
	cr_assert_geq(stored, 100, "the span's 100 zeros are a literal");
	first = stored;
	cr_assert_eq(span_roundtrip(rec, sizeof(rec), 200, 0, &stored), WAL_SNAPPY);
	cr_assert_lt(stored, first, "an empty span: the zeros are copies");
}

/* Spans at the edges: empty head, empty tail, the whole record, and
 * literals whose tags take 1, 2, 3 and 4 bytes (lengths to 60, 256, 65536). */
Test(wal_span, edges_and_long_literals)
{
	static const size_t lens[] = { 1, 59, 60, 61, 255, 256, 257, 65535, 65536, 65537, 70000 };
	size_t stored;

	rng = 4;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t span = lens[i], len = 64 + span + 80;
		uint8_t *rec = malloc(len);

		fill_text(rec, 64);
		for (size_t k = 64; k < 64 + span; k++)
			rec[k] = rnd_byte();
		memset(rec + 64 + span, 0, 72);
		memset(rec + 64 + span + 72, 0x5a, 8);
		span_roundtrip(rec, len, 64, span, &stored);
		span_roundtrip(rec, len, 0, 64 + span, &stored);          /* no head */
		span_roundtrip(rec, len, 64, span + 80, &stored);          /* no tail */
		span_roundtrip(rec, len, 0, len, &stored);                 /* all of it */
		free(rec);
	}
}

/* A span outside the record, or another compression, compresses whole:
 * the same bytes as wal_compress(). */
Test(wal_span, bad_span_or_other_kind_is_wal_compress)
{
	uint8_t rec[500];
	struct wal_compressor *c = NULL;
	struct buf a = { 0 }, b = { 0 };
	struct err e = { 0 };
	enum wal_compression kinds[] = { WAL_COMPRESS_SNAPPY, WAL_COMPRESS_ZSTD, WAL_COMPRESS_NONE };
	size_t spans[][2] = { { 400, 200 }, { 501, 0 }, { 10, SIZE_MAX } };

	rng = 5;
	fill_text(rec, sizeof(rec));
	for (size_t k = 0; k < 3; k++) {
		cr_assert_eq(wal_compressor_new(&c, kinds[k], &e), 0);
		for (size_t s = 0; s < 3; s++) {
			size_t off = kinds[k] == WAL_COMPRESS_SNAPPY ? spans[s][0] : 100;
			size_t n = kinds[k] == WAL_COMPRESS_SNAPPY ? spans[s][1] : 100;
			int fa = wal_compress(c, rec, sizeof(rec), &a, &e);
			int fb = wal_compress_span(c, rec, sizeof(rec), off, n, &b, &e);

			cr_assert_eq(fa, fb, "kind %zu span %zu", k, s);
			if (fa)
				cr_assert(a.len == b.len && !memcmp(a.p, b.p, a.len), "kind %zu span %zu", k, s);
		}
		wal_compressor_free(c);
	}
	buf_free(&a);
	buf_free(&b);
}

/* Random text and binary, random spans: always back to the same bytes. */
Test(wal_span, random_records_round_trip)
{
	uint8_t rec[2048];
	size_t stored;

	rng = 6;
	for (int i = 0; i < 3000; i++) {
		size_t len = 1 + support_rand(&rng) % sizeof(rec);
		size_t off = support_rand(&rng) % (len + 1), n = support_rand(&rng) % (len - off + 1);

		for (size_t k = 0; k < len; k++) {
			uint64_t r = support_rand(&rng) % 8;

			rec[k] = r < 3 ? 0 : r < 6 ? (uint8_t)('a' + r) : rnd_byte();
		}
		span_roundtrip(rec, len, off, n, &stored);
	}
}

/* ---- the writer's direct mode ---- */

static char dir_buffered[64], dir_direct[64];

static void setup_dirs(void)
{
	support_tmpdir(dir_buffered, sizeof(dir_buffered), "wal-buffered");
	support_tmpdir(dir_direct, sizeof(dir_direct), "wal-direct");
}

static void teardown_dirs(void)
{
	support_rm_tree(dir_buffered);
	support_rm_tree(dir_direct);
}

TestSuite(wal_direct, .init = setup_dirs, .fini = teardown_dirs);

/* Writes the same records into dir with and without opts.direct; flush_every
 * (0: never) calls wal_writer_flush() every so many records. */
static void write_records(const char *dir, int direct, uint64_t segment_size, size_t flush_every)
{
	struct wal_writer_opts o = { .compression = WAL_COMPRESS_SNAPPY, .segment_size = segment_size,
				     .sync = 1, .direct = direct };
	struct wal_writer *w = NULL;
	struct err e = { 0 };
	uint8_t rec[70000];

	rng = 7;
	cr_assert_eq(wal_writer_open(&w, dir, &o, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < 3000; i++) {
		/* mostly records of a few hundred bytes, now and then one over
		 * several pages */
		size_t len = i % 500 == 7 ? 40000 + i : 1 + support_rand(&rng) % 900;

		fill_text(rec, len / 2);
		for (size_t k = len / 2; k < len; k++)
			rec[k] = rnd_byte();
		cr_assert_eq(wal_writer_log(w, rec, len, NULL, &e), 0, "%s", e.msg);
		if (flush_every && i % flush_every == flush_every - 1)
			cr_assert_eq(wal_writer_flush(w, &e), 0, "%s", e.msg);
	}
	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
}

/* The number of segments, each the same in both directories. */
static uint32_t assert_same_segments(void)
{
	for (uint32_t seg = 0;; seg++) {
		char a[128], b[128];
		size_t la, lb;
		uint8_t *pa, *pb;
		int has_a, has_b;

		snprintf(a, sizeof(a), "%s/%08u", dir_buffered, seg);
		snprintf(b, sizeof(b), "%s/%08u", dir_direct, seg);
		has_a = access(a, F_OK) == 0;
		has_b = access(b, F_OK) == 0;
		cr_assert_eq(has_a, has_b, "segment %u in one directory only", seg);
		if (!has_a)
			return seg;
		pa = support_read_file(a, &la);
		pb = support_read_file(b, &lb);
		cr_assert_eq(la, lb, "segment %u: %zu bytes buffered, %zu direct", seg, la, lb);
		cr_assert_eq(memcmp(pa, pb, la), 0, "segment %u differs", seg);
		free(pa);
		free(pb);
	}
}

/* Several segments (256 KiB each: a segment switch every few buffers, and
 * records over pages) with direct writes: the same files, byte for byte. */
Test(wal_direct, same_segments_as_buffered)
{
	write_records(dir_buffered, 0, 8 * 32768, 0);
	write_records(dir_direct, 1, 8 * 32768, 0);
	cr_assert_geq(assert_same_segments(), 5);
}

/* A segment larger than the writer's buffers (1 MiB): buffers handed to
 * the writing thread one after another within it. */
Test(wal_direct, same_segments_as_buffered_with_large_segments)
{
	write_records(dir_buffered, 0, 40 * 32768, 0);
	write_records(dir_direct, 1, 40 * 32768, 0);
	cr_assert_geq(assert_same_segments(), 1);
}

/* A flush writes a partial page, which O_DIRECT refuses: the writer goes
 * on buffered and the files are still the same. */
Test(wal_direct, flush_of_a_partial_page_falls_back_to_buffered)
{
	write_records(dir_buffered, 0, 8 * 32768, 100);
	write_records(dir_direct, 1, 8 * 32768, 100);
	cr_assert_geq(assert_same_segments(), 5);
}

/* Writes records as restore's writing thread does, with
 * wal_writer_log_probed() (in_page) or by compressing first and logging
 * what came out: series-like records with a text head probed every few
 * bytes or not at all, now and then one whose head is random (stored
 * plain), one over several pages or one whose head is past 64 KiB. */
static void write_probed(const char *dir, int in_page)
{
	struct wal_writer_opts o = { .compression = WAL_COMPRESS_SNAPPY, .segment_size = 8 * 32768 };
	struct snappy_small_range probes[64];
	struct wal_compressor *c = NULL;
	struct wal_writer *w = NULL;
	struct buf scratch = { 0 };
	struct err e = { 0 };
	static uint8_t rec[80000];

	rng = 8;
	cr_assert_eq(wal_writer_open(&w, dir, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_compressor_new(&c, WAL_COMPRESS_SNAPPY, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < 3000; i++) {
		size_t head = i % 400 == 11 ? 70000 : 20 + support_rand(&rng) % 400;
		size_t span = i % 300 == 5 ? 40000 : support_rand(&rng) % 300, len = head + span + 64;
		size_t np = i % 7 == 3 ? 0 : (head > 60 ? 60 : head) / 4;
		const struct snappy_small_range *pr = i % 13 == 4 ? NULL : probes;
		int flags;

		if (len > sizeof(rec))
			len = sizeof(rec), span = len - head - 64;
		if (i % 50 == 9)
			for (size_t k = 0; k < head; k++)
				rec[k] = rnd_byte();
		else
			fill_text(rec, head);
		for (size_t k = head; k < head + span; k++)
			rec[k] = rnd_byte();
		memset(rec + head + span, 0, 56);
		for (size_t k = len - 8; k < len; k++)
			rec[k] = rnd_byte();
		for (size_t k = 0; k < np; k++)
			probes[k] = (struct snappy_small_range){ (uint16_t)(k * 4), (uint16_t)(k * 4 + 2) };
		if (in_page) {
			cr_assert_eq(wal_writer_log_probed(w, c, rec, len, head, span, pr, np, &scratch, &e), 0,
				     "%s", e.msg);
			continue;
		}
		flags = pr ? wal_compress_probed(c, rec, len, head, span, pr, np, &scratch, &e)
			   : wal_compress_span(c, rec, len, head, span, &scratch, &e);
		cr_assert_geq(flags, 0, "%s", e.msg);
		cr_assert_eq(wal_writer_log_stored(w, flags ? scratch.p : rec, flags ? scratch.len : len, (uint8_t)flags,
						   NULL, &e), 0, "%s", e.msg);
	}
	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
	wal_compressor_free(c);
	buf_free(&scratch);
}

/* Compressing straight into the page changes nothing in the files. */
Test(wal_direct, log_probed_writes_what_compress_then_log_writes)
{
	write_probed(dir_buffered, 0);
	write_probed(dir_direct, 1);
	cr_assert_geq(assert_same_segments(), 5);
}
