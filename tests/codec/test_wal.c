/*
 * WAL segments (codec/wal_writer.c, codec/wal_reader.c): the writer lays
 * out fragments byte for byte as Prometheus' tsdb/wlog writer does (WL.log:
 * compress first and keep it only if smaller; `left` = free space in the
 * page + (pageSize - 7) per remaining page, and a record longer than that
 * starts a new segment, even an empty one; fragments never cross a page;
 * a page with fewer than 7 bytes left is ended with zeros; an empty FIRST
 * fragment when exactly 7 are left; the last page zero-padded on close),
 * and the reader gives back every record with its segment and offset.
 *
 * Every test writes into its own mkdtemp() directory and checks the segment
 * files' exact bytes.
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
#include <zstd.h>

#include "bytes.h"
#include "crc32c.h"
#include "wal.h"
#include "support.h"

#define PAGE 32768u
#define HDR 7u
#define ROOM (PAGE - HDR) /* data bytes of a fragment that fills a page */

/* ---- fixtures and helpers ---- */

static char tmpdir[64];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "wal");
}

static void teardown(void)
{
	support_rm_tree(tmpdir);
}

TestSuite(wal_layout, .init = setup, .fini = teardown);
TestSuite(wal_compress, .init = setup, .fini = teardown);
TestSuite(wal_segments, .init = setup, .fini = teardown);
TestSuite(wal_roundtrip, .init = setup, .fini = teardown);

static void seg_path(char *out, size_t cap, uint32_t index)
{
	snprintf(out, cap, "%s/%08u", tmpdir, index);
}

/* The whole segment file; caller frees. A missing file fails the test. */
static uint8_t *read_segment(uint32_t index, size_t *len)
{
	char path[512];
	struct stat st;
	uint8_t *p;
	int fd;

	seg_path(path, sizeof(path), index);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
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

static int segment_exists(uint32_t index)
{
	char path[512];
	struct stat st;

	seg_path(path, sizeof(path), index);
	return stat(path, &st) == 0;
}

static size_t count_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static struct wal_writer *writer_open(enum wal_compression c, uint64_t segment_size)
{
	struct wal_writer_opts o = { .compression = c, .segment_size = segment_size, .sync = 0 };
	struct wal_writer *w = NULL;
	struct err e = { 0 };

	cr_assert_eq(wal_writer_open(&w, tmpdir, &o, &e), 0, "wal_writer_open: %s", e.msg);
	return w;
}

static struct wal_pos log_rec(struct wal_writer *w, const uint8_t *p, size_t len)
{
	struct wal_pos pos = { 99, 99 };
	struct err e = { 0 };

	cr_assert_eq(wal_writer_log(w, p, len, &pos, &e), 0, "wal_writer_log(%zu bytes): %s", len, e.msg);
	return pos;
}

static void writer_close(struct wal_writer *w)
{
	struct err e = { 0 };

	cr_assert_eq(wal_writer_close(w, &e), 0, "wal_writer_close: %s", e.msg);
}

/* A record of n bytes whose content depends on seed, so records differ. */
static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 17 + (i >> 8));
	return p;
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

static uint8_t *random_bytes(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 56);
	return p;
}

/* Compressible: 64-byte blocks picked from 16 random ones. */
static uint8_t *compressible_bytes(size_t n)
{
	uint8_t dict[16][64];
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (int i = 0; i < 16; i++)
		for (int k = 0; k < 64; k++)
			dict[i][k] = (uint8_t)(rnd() >> 56);
	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;

		memcpy(p + i, dict[rnd() % 16], k);
	}
	return p;
}

/* Asserts a fragment header and its data at seg[off]. */
static void assert_fragment(const uint8_t *seg, size_t seg_len, size_t off, uint8_t type,
			    const uint8_t *data, size_t len)
{
	cr_assert_leq(off + HDR + len, seg_len, "fragment at %zu runs past the file (%zu bytes)", off, seg_len);
	cr_assert_eq(seg[off], type, "type at %zu: 0x%02x, want 0x%02x", off, seg[off], type);
	cr_assert_eq(be16_get(seg + off + 1), len, "length at %zu: %u, want %zu", off, be16_get(seg + off + 1), len);
	cr_assert_eq(be32_get(seg + off + 3), crc32c(0, data, len), "CRC at %zu", off);
	cr_assert(len == 0 || memcmp(seg + off + HDR, data, len) == 0, "data at %zu differs", off);
}

static void assert_zero(const uint8_t *seg, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		cr_assert_eq(seg[i], 0, "byte %zu is 0x%02x, want padding 0", i, seg[i]);
}

/* ---- layout of single records ---- */

Test(wal_layout, check_value_record_header_bytes)
{
	/* "123456789" has the published CRC-32C 0xe3069283 */
	static const uint8_t want[16] = { 0x01, 0x00, 0x09, 0xe3, 0x06, 0x92, 0x83,
					  '1', '2', '3', '4', '5', '6', '7', '8', '9' };
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	struct wal_pos pos = log_rec(w, (const uint8_t *)"123456789", 9);
	size_t len;
	uint8_t *seg;

	writer_close(w);
	cr_assert_eq(pos.segment, 0);
	cr_assert_eq(pos.offset, 0);
	seg = read_segment(0, &len);
	cr_assert_eq(len, PAGE, "the last page is zero-padded to 32 KiB on close");
	cr_assert_eq(memcmp(seg, want, sizeof(want)), 0);
	assert_zero(seg, sizeof(want), PAGE);
	cr_assert_eq(count_entries(), 1, "one segment file, 00000000");
	free(seg);
}

Test(wal_layout, ten_byte_record)
{
	const uint8_t rec[10] = { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0xff, 0x7f };
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	size_t len;
	uint8_t *seg;
	uint32_t crc = crc32c(0, rec, 10);

	log_rec(w, rec, 10);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, PAGE);
	cr_assert_eq(seg[0], 0x01, "type FULL, no compression");
	cr_assert_eq(seg[1], 0x00);
	cr_assert_eq(seg[2], 0x0a, "big-endian length 10");
	cr_assert_eq(seg[3], (uint8_t)(crc >> 24), "big-endian CRC");
	cr_assert_eq(seg[4], (uint8_t)(crc >> 16));
	cr_assert_eq(seg[5], (uint8_t)(crc >> 8));
	cr_assert_eq(seg[6], (uint8_t)crc);
	cr_assert_eq(memcmp(seg + 7, rec, 10), 0);
	assert_zero(seg, 17, PAGE);
	free(seg);
}

Test(wal_layout, consecutive_records_are_packed)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(100, 1), *b = pattern(0, 2), *c = pattern(5, 3);
	struct wal_pos pa = log_rec(w, a, 100), pb = log_rec(w, b, 0), pc = log_rec(w, c, 5);
	size_t len;
	uint8_t *seg;

	writer_close(w);
	cr_assert_eq(pa.offset, 0);
	cr_assert_eq(pb.offset, 107);
	cr_assert_eq(pc.offset, 114, "an empty record is a 7-byte FULL fragment");
	seg = read_segment(0, &len);
	cr_assert_eq(len, PAGE);
	assert_fragment(seg, len, 0, 0x01, a, 100);
	assert_fragment(seg, len, 107, 0x01, b, 0);
	cr_assert_eq(be32_get(seg + 110), 0, "CRC of no bytes is 0");
	assert_fragment(seg, len, 114, 0x01, c, 5);
	assert_zero(seg, 126, PAGE);
	free(a);
	free(b);
	free(c);
	free(seg);
}

Test(wal_layout, record_of_page_minus_header_fills_one_page)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(ROOM, 1), *b = pattern(3, 2);
	size_t len;
	uint8_t *seg;

	cr_assert_eq(log_rec(w, a, ROOM).offset, 0);
	cr_assert_eq(log_rec(w, b, 3).offset, PAGE, "the next record starts the next page");
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, 0, 0x01, a, ROOM);
	assert_fragment(seg, len, PAGE, 0x01, b, 3);
	assert_zero(seg, PAGE + 10, 2 * PAGE);
	free(a);
	free(b);
	free(seg);
}

Test(wal_layout, record_one_byte_over_a_page_is_first_plus_last)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(ROOM + 1, 1);
	size_t len;
	uint8_t *seg;

	log_rec(w, a, ROOM + 1);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, 0, 0x02, a, ROOM);
	assert_fragment(seg, len, PAGE, 0x04, a + ROOM, 1);
	assert_zero(seg, PAGE + 8, 2 * PAGE);
	free(a);
	free(seg);
}

Test(wal_layout, record_over_three_pages_is_first_middle_middle_last)
{
	size_t n = 3 * ROOM + 100;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(n, 1);
	size_t len;
	uint8_t *seg;

	log_rec(w, a, n);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 4 * PAGE);
	assert_fragment(seg, len, 0, 0x02, a, ROOM);
	assert_fragment(seg, len, PAGE, 0x03, a + ROOM, ROOM);
	assert_fragment(seg, len, 2 * PAGE, 0x03, a + 2 * ROOM, ROOM);
	assert_fragment(seg, len, 3 * PAGE, 0x04, a + 3 * ROOM, 100);
	assert_zero(seg, 3 * PAGE + HDR + 100, 4 * PAGE);
	free(a);
	free(seg);
}

/* 7 + 32754 = 32761 bytes used: exactly a header's worth is left. */
Test(wal_layout, exactly_seven_bytes_left_gives_empty_first_fragment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(PAGE - 2 * HDR, 1), *b = pattern(5, 2), *c = pattern(2, 3);
	size_t len;
	uint8_t *seg;

	cr_assert_eq(log_rec(w, a, PAGE - 2 * HDR).offset, 0);
	cr_assert_eq(log_rec(w, b, 5).offset, PAGE - HDR, "the record starts in the last 7 bytes");
	cr_assert_eq(log_rec(w, c, 2).offset, PAGE + HDR + 5);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, 0, 0x01, a, PAGE - 2 * HDR);
	/* FIRST, length 0, CRC 0, exactly filling the page */
	static const uint8_t empty_first[7] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	cr_assert_eq(memcmp(seg + PAGE - HDR, empty_first, HDR), 0, "empty FIRST fragment");
	assert_fragment(seg, len, PAGE, 0x04, b, 5);
	assert_fragment(seg, len, PAGE + HDR + 5, 0x01, c, 2);
	free(a);
	free(b);
	free(c);
	free(seg);
}

Test(wal_layout, exactly_seven_bytes_left_and_empty_record_is_empty_full)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(PAGE - 2 * HDR, 1), *c = pattern(2, 3);
	size_t len;
	uint8_t *seg;

	log_rec(w, a, PAGE - 2 * HDR);
	cr_assert_eq(log_rec(w, a, 0).offset, PAGE - HDR);
	cr_assert_eq(log_rec(w, c, 2).offset, PAGE, "the page was exactly full");
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, PAGE - HDR, 0x01, a, 0);
	assert_fragment(seg, len, PAGE, 0x01, c, 2);
	free(a);
	free(c);
	free(seg);
}

Test(wal_layout, fewer_than_seven_bytes_left_are_padding)
{
	for (size_t left = 1; left < HDR; left++) {
		struct wal_writer *w;
		uint8_t *a = pattern(PAGE - HDR - left, 1), *b = pattern(40, 2);
		size_t len;
		uint8_t *seg;

		teardown(); /* a fresh directory for each case */
		setup();
		w = writer_open(WAL_COMPRESS_NONE, 0);
		cr_assert_eq(log_rec(w, a, PAGE - HDR - left).offset, 0);
		cr_assert_eq(log_rec(w, b, 40).offset, PAGE, "%zu bytes left: record starts the next page", left);
		writer_close(w);
		seg = read_segment(0, &len);
		cr_assert_eq(len, 2 * PAGE);
		assert_fragment(seg, len, 0, 0x01, a, PAGE - HDR - left);
		assert_zero(seg, PAGE - left, PAGE);
		assert_fragment(seg, len, PAGE, 0x01, b, 40);
		free(a);
		free(b);
		free(seg);
	}
}

Test(wal_layout, large_record_split_after_partial_page)
{
	/* 100 bytes used, then a record of 2 pages' worth */
	size_t n = 2 * ROOM;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *a = pattern(100, 1), *b = pattern(n, 2);
	size_t len, first = PAGE - 107 - HDR;
	uint8_t *seg;

	log_rec(w, a, 100);
	cr_assert_eq(log_rec(w, b, n).offset, 107);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 3 * PAGE);
	assert_fragment(seg, len, 107, 0x02, b, first);
	assert_fragment(seg, len, PAGE, 0x03, b + first, ROOM);
	assert_fragment(seg, len, 2 * PAGE, 0x04, b + first + ROOM, n - first - ROOM);
	free(a);
	free(b);
	free(seg);
}

Test(wal_layout, close_without_records_leaves_empty_segment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	size_t len;
	uint8_t *seg;

	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 0, "an unused page is not padded");
	free(seg);
}

Test(wal_layout, segment_size_must_be_whole_pages)
{
	struct wal_writer_opts o = { .segment_size = PAGE + 1 };
	struct wal_writer *w = NULL;
	struct err e = { 0 };

	cr_assert_eq(wal_writer_open(&w, tmpdir, &o, &e), SNAPARC_INVALID);
	cr_assert_not_null(strstr(e.msg, "32769"), "message: %s", e.msg);
	cr_assert_eq(count_entries(), 0);
}

Test(wal_layout, missing_directory)
{
	char path[512];
	struct wal_writer *w = NULL;
	struct err e = { 0 };

	snprintf(path, sizeof(path), "%s/nope", tmpdir);
	cr_assert_eq(wal_writer_open(&w, path, NULL, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_not_null(strstr(e.msg, path), "message names the directory: %s", e.msg);
}

Test(wal_layout, log_stored_rejects_bad_flags)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	static const uint8_t bad[] = { 0x01, 0x18, 0x40, 0x80, 0x28 };
	struct err e = { 0 };

	for (size_t i = 0; i < sizeof(bad); i++)
		cr_assert_eq(wal_writer_log_stored(w, (const uint8_t *)"x", 1, bad[i], NULL, &e),
			     SNAPARC_INVALID, "flags 0x%02x", bad[i]);
	writer_close(w);
}

/* ---- compression ---- */

static void check_compressed_full(enum wal_compression c, uint8_t type)
{
	size_t n = 5000, len, stored;
	uint8_t *rec = compressible_bytes(n), *seg, *out = malloc(n);
	struct wal_writer *w = writer_open(c, 0);

	log_rec(w, rec, n);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, PAGE);
	cr_assert_eq(seg[0], type, "type 0x%02x, want 0x%02x", seg[0], type);
	stored = be16_get(seg + 1);
	cr_assert_lt(stored, n, "compressed record must be smaller");
	cr_assert_eq(be32_get(seg + 3), crc32c(0, seg + HDR, stored), "CRC over the stored (compressed) bytes");
	if (c == WAL_COMPRESS_SNAPPY) {
		size_t out_len = n;
		uint8_t *want = malloc(snappy_max_compressed_length(n));
		size_t want_len = snappy_max_compressed_length(n);

		cr_assert_eq(snappy_uncompress((const char *)seg + HDR, stored, (char *)out, &out_len), SNAPPY_OK);
		cr_assert_eq(out_len, n);
		/* exactly what Snappy's block format gives for this record */
		cr_assert_eq(snappy_compress((const char *)rec, n, (char *)want, &want_len), SNAPPY_OK);
		cr_assert_eq(want_len, stored);
		cr_assert_eq(memcmp(want, seg + HDR, stored), 0);
		free(want);
	} else {
		size_t got = ZSTD_decompress(out, n, seg + HDR, stored);

		cr_assert_not(ZSTD_isError(got), "%s", ZSTD_getErrorName(got));
		cr_assert_eq(got, n);
	}
	cr_assert_eq(memcmp(out, rec, n), 0, "decompresses to the original");
	assert_zero(seg, HDR + stored, PAGE);
	free(rec);
	free(out);
	free(seg);
}

Test(wal_compress, snappy_record_is_type_0x09)
{
	rng = 11;
	check_compressed_full(WAL_COMPRESS_SNAPPY, 0x09);
}

Test(wal_compress, zstd_record_is_type_0x11)
{
	rng = 12;
	check_compressed_full(WAL_COMPRESS_ZSTD, 0x11);
}

static void check_incompressible(enum wal_compression c)
{
	size_t n = 3000, len;
	uint8_t *rec = random_bytes(n), *one = random_bytes(1), *seg;
	struct wal_writer *w = writer_open(c, 0);

	log_rec(w, rec, n);
	log_rec(w, one, 1);
	log_rec(w, one, 0);
	writer_close(w);
	seg = read_segment(0, &len);
	assert_fragment(seg, len, 0, 0x01, rec, n);
	assert_fragment(seg, len, HDR + n, 0x01, one, 1);
	assert_fragment(seg, len, 2 * HDR + n + 1, 0x01, one, 0);
	free(rec);
	free(one);
	free(seg);
}

Test(wal_compress, snappy_keeps_incompressible_record_plain)
{
	rng = 13;
	check_incompressible(WAL_COMPRESS_SNAPPY);
}

Test(wal_compress, zstd_keeps_incompressible_record_plain)
{
	rng = 14;
	check_incompressible(WAL_COMPRESS_ZSTD);
}

/* A compressed record over several pages: every fragment carries the bit. */
Test(wal_compress, snappy_multi_page_record)
{
	size_t n = 1u << 20, len, stored = 0, off = 0;
	uint8_t *rec, *seg, *joined, *out;
	struct wal_writer *w = writer_open(WAL_COMPRESS_SNAPPY, 0);
	int frags = 0;

	rng = 15;
	rec = compressible_bytes(n);
	log_rec(w, rec, n);
	writer_close(w);
	seg = read_segment(0, &len);
	joined = malloc(len);
	for (;;) {
		uint8_t type = seg[off];
		size_t flen = be16_get(seg + off + 1);

		cr_assert_eq(type, frags == 0 ? 0x0a : (off + PAGE >= len ? 0x0c : 0x0b),
			     "fragment %d at %zu: type 0x%02x", frags, off, type);
		cr_assert_eq(be32_get(seg + off + 3), crc32c(0, seg + off + HDR, flen));
		memcpy(joined + stored, seg + off + HDR, flen);
		stored += flen;
		frags++;
		if (type == 0x0c)
			break;
		cr_assert_eq(flen, PAGE - off % PAGE - HDR, "a non-last fragment fills its page");
		off += HDR + flen;
		cr_assert_eq(off % PAGE, 0);
	}
	cr_assert_geq(frags, 3);
	out = malloc(n);
	size_t out_len = n;
	cr_assert_eq(snappy_uncompress((const char *)joined, stored, (char *)out, &out_len), SNAPPY_OK);
	cr_assert_eq(out_len, n);
	cr_assert_eq(memcmp(out, rec, n), 0);
	free(rec);
	free(seg);
	free(joined);
	free(out);
}

Test(wal_compress, reader_decompresses_and_raw_reader_does_not)
{
	size_t n = 20000;
	uint8_t *rec;
	struct wal_reader *r;
	struct wal_record wr;
	struct wal_reader_opts raw = { .raw = 1 };
	struct err e = { 0 };

	rng = 16;
	rec = compressible_bytes(n);
	for (int c = WAL_COMPRESS_SNAPPY; c <= WAL_COMPRESS_ZSTD; c++) {
		struct wal_writer *w;
		uint8_t flag = c == WAL_COMPRESS_SNAPPY ? WAL_SNAPPY : WAL_ZSTD;

		teardown();
		setup();
		w = writer_open((enum wal_compression)c, 0);
		log_rec(w, rec, n);
		writer_close(w);

		cr_assert_eq(wal_reader_open_dir(&r, tmpdir, NULL, &e), 0, "%s", e.msg);
		cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
		cr_assert_eq(wr.flags, flag);
		cr_assert_eq(wr.len, n);
		cr_assert_lt(wr.stored_len, n);
		cr_assert_eq(memcmp(wr.data, rec, n), 0);
		cr_assert_eq(wr.end, HDR + wr.stored_len);
		cr_assert_eq(wal_reader_next(r, &wr, &e), 0);
		wal_reader_close(r);

		cr_assert_eq(wal_reader_open_dir(&r, tmpdir, &raw, &e), 0, "%s", e.msg);
		cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
		cr_assert_eq(wr.flags, flag);
		cr_assert_eq(wr.len, wr.stored_len, "raw: the record as stored");
		cr_assert_lt(wr.len, n);
		{
			struct buf out = { 0 };

			cr_assert_eq(wal_decompress(wr.flags, wr.data, wr.len, &out, &e), 0, "%s", e.msg);
			cr_assert_eq(out.len, n);
			cr_assert_eq(memcmp(out.p, rec, n), 0);
			buf_free(&out);
		}
		wal_reader_close(r);
	}
	free(rec);
}

/* zstd frames need not carry their content size: the reader streams them. */
Test(wal_compress, zstd_frame_without_content_size)
{
	size_t n = 200000, cap = ZSTD_compressBound(n), fn;
	uint8_t *rec, *frame = malloc(cap);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	struct wal_writer *w;
	struct wal_reader *r;
	struct wal_record wr;
	struct buf out = { 0 };
	struct err e = { 0 };

	rng = 17;
	rec = compressible_bytes(n);
	cr_assert_eq(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)), 0);
	fn = ZSTD_compress2(cc, frame, cap, rec, n);
	cr_assert_not(ZSTD_isError(fn));
	cr_assert_eq(ZSTD_getFrameContentSize(frame, fn), ZSTD_CONTENTSIZE_UNKNOWN);
	cr_assert_eq(wal_decompress(WAL_ZSTD, frame, fn, &out, &e), 0, "%s", e.msg);
	cr_assert_eq(out.len, n);
	cr_assert_eq(memcmp(out.p, rec, n), 0);
	buf_free(&out);

	w = writer_open(WAL_COMPRESS_NONE, 0);
	cr_assert_eq(wal_writer_log_stored(w, frame, fn, WAL_ZSTD, NULL, &e), 0, "%s", e.msg);
	writer_close(w);
	cr_assert_eq(wal_reader_open_dir(&r, tmpdir, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
	cr_assert_eq(wr.len, n);
	cr_assert_eq(memcmp(wr.data, rec, n), 0);
	wal_reader_close(r);
	ZSTD_freeCCtx(cc);
	free(frame);
	free(rec);
}

Test(wal_compress, lz4_flag_round_trips_as_stored_with_allow_lz4)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	struct wal_reader_opts o = { .allow_lz4 = 1 };
	struct wal_reader *r;
	struct wal_record wr;
	struct wal_pos pos;
	struct err e = { 0 };
	size_t len;
	uint8_t *seg;

	cr_assert_eq(wal_writer_log_stored(w, (const uint8_t *)"opaque", 6, WAL_LZ4, &pos, &e), 0, "%s", e.msg);
	writer_close(w);
	seg = read_segment(0, &len);
	assert_fragment(seg, len, 0, 0x21, (const uint8_t *)"opaque", 6);
	free(seg);
	cr_assert_eq(wal_reader_open_dir(&r, tmpdir, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
	cr_assert_eq(wr.flags, WAL_LZ4);
	cr_assert_eq(wr.len, 6);
	cr_assert_eq(memcmp(wr.data, "opaque", 6), 0, "LZ4 records are handed out as stored");
	wal_reader_close(r);
}

/* ---- segments ---- */

Test(wal_segments, names_are_eight_decimal_digits)
{
	char name[16];

	wal_segment_name(name, sizeof(name), 0);
	cr_assert_str_eq(name, "00000000");
	wal_segment_name(name, sizeof(name), 7);
	cr_assert_str_eq(name, "00000007");
	wal_segment_name(name, sizeof(name), 10);
	cr_assert_str_eq(name, "00000010");
	wal_segment_name(name, sizeof(name), 12345678);
	cr_assert_str_eq(name, "12345678");
}

/*
 * 4-page segments. A = 40000 (FIRST+LAST, ends at 32768+7246), B = 60000
 * fits (left = 25515 + 2 x 32761 = 91037) and ends at 98304+1731; C = 40000
 * does not fit in what is left (31030) and starts 00000001.
 */
Test(wal_segments, record_that_does_not_fit_starts_next_segment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 4 * PAGE);
	uint8_t *a = pattern(40000, 1), *b = pattern(60000, 2), *c = pattern(40000, 3);
	struct wal_pos pa, pb, pc;
	size_t len;
	uint8_t *seg;

	pa = log_rec(w, a, 40000);
	pb = log_rec(w, b, 60000);
	pc = log_rec(w, c, 40000);
	writer_close(w);
	cr_assert(pa.segment == 0 && pa.offset == 0);
	cr_assert(pb.segment == 0 && pb.offset == PAGE + 7246, "B at %u/%llu", pb.segment,
		  (unsigned long long)pb.offset);
	cr_assert(pc.segment == 1 && pc.offset == 0, "C at %u/%llu, want 1/0", pc.segment,
		  (unsigned long long)pc.offset);

	seg = read_segment(0, &len);
	cr_assert_eq(len, 4 * PAGE, "the segment's last page is padded when it is ended");
	assert_fragment(seg, len, 0, 0x02, a, ROOM);
	assert_fragment(seg, len, PAGE, 0x04, a + ROOM, 40000 - ROOM);
	assert_fragment(seg, len, PAGE + 7246, 0x02, b, PAGE - 7246 - HDR);
	assert_fragment(seg, len, 2 * PAGE, 0x03, b + 25515, ROOM);
	assert_fragment(seg, len, 3 * PAGE, 0x04, b + 25515 + ROOM, 60000 - 25515 - ROOM);
	assert_zero(seg, 3 * PAGE + 1731, 4 * PAGE);
	free(seg);

	seg = read_segment(1, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, 0, 0x02, c, ROOM);
	assert_fragment(seg, len, PAGE, 0x04, c + ROOM, 40000 - ROOM);
	free(seg);
	cr_assert_eq(count_entries(), 2);
	free(a);
	free(b);
	free(c);
}

/*
 * 2-page segments. After 100 bytes (107 used) `left` is 32654 + 32761 =
 * 65415: a record of exactly that stays and fills 00000000, after which left
 * is 0 and even 1 byte moves. In 00000001 after 8 + 107 bytes left is 65407:
 * a record of 65408 moves to 00000002.
 */
Test(wal_segments, record_exactly_filling_the_segment_stays_one_more_byte_moves)
{
	size_t blen = PAGE - 107 - HDR + ROOM, len;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 2 * PAGE);
	uint8_t *a = pattern(100, 1), *b = pattern(blen, 2), *c = pattern(65408, 3);
	struct wal_pos p;
	uint8_t *seg;

	cr_assert_eq(blen, 65415);
	p = log_rec(w, a, 100);
	cr_assert(p.segment == 0 && p.offset == 0);
	p = log_rec(w, b, blen);
	cr_assert(p.segment == 0 && p.offset == 107, "B at %u/%llu", p.segment, (unsigned long long)p.offset);
	p = log_rec(w, a, 1);
	cr_assert(p.segment == 1 && p.offset == 0, "C at %u/%llu, want 1/0", p.segment, (unsigned long long)p.offset);
	p = log_rec(w, a, 100);
	cr_assert(p.segment == 1 && p.offset == 8);
	p = log_rec(w, c, 65408);
	cr_assert(p.segment == 2 && p.offset == 0, "E at %u/%llu, want 2/0", p.segment, (unsigned long long)p.offset);
	writer_close(w);

	seg = read_segment(0, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, 0, 0x01, a, 100);
	assert_fragment(seg, len, 107, 0x02, b, PAGE - 107 - HDR);
	assert_fragment(seg, len, PAGE, 0x04, b + PAGE - 107 - HDR, ROOM);
	free(seg);
	seg = read_segment(1, &len);
	cr_assert_eq(len, PAGE);
	assert_fragment(seg, len, 0, 0x01, a, 1);
	assert_fragment(seg, len, 8, 0x01, a, 100);
	assert_zero(seg, 115, PAGE);
	free(seg);
	seg = read_segment(2, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, 0, 0x02, c, ROOM);
	assert_fragment(seg, len, PAGE, 0x04, c + ROOM, 65408 - ROOM);
	free(seg);
	cr_assert_eq(count_entries(), 3);
	free(a);
	free(b);
	free(c);
}

/*
 * Prometheus: `if len(enc) > left { nextSegment() }` even when the segment
 * is empty, so a fresh 00000000 stays 0 bytes and an oversized record lands
 * alone in 00000001, which grows past segment_size; the next record sees a
 * negative `left` and starts 00000002.
 */
Test(wal_segments, oversized_record_leaves_empty_segment_and_gets_its_own)
{
	size_t n = 3 * ROOM + 500, len;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 2 * PAGE);
	uint8_t *big = pattern(n, 1), *small = pattern(10, 2), *seg;
	struct wal_pos pb, ps;

	pb = log_rec(w, big, n);
	ps = log_rec(w, small, 10);
	writer_close(w);
	cr_assert(pb.segment == 1 && pb.offset == 0, "big at %u/%llu, want 1/0", pb.segment,
		  (unsigned long long)pb.offset);
	cr_assert(ps.segment == 2 && ps.offset == 0, "small at %u/%llu, want 2/0", ps.segment,
		  (unsigned long long)ps.offset);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 0, "the empty segment stays, 0 bytes");
	free(seg);
	seg = read_segment(1, &len);
	cr_assert_eq(len, 4 * PAGE, "the oversized record's segment is larger than segment_size");
	assert_fragment(seg, len, 0, 0x02, big, ROOM);
	assert_fragment(seg, len, PAGE, 0x03, big + ROOM, ROOM);
	assert_fragment(seg, len, 2 * PAGE, 0x03, big + 2 * ROOM, ROOM);
	assert_fragment(seg, len, 3 * PAGE, 0x04, big + 3 * ROOM, 500);
	assert_zero(seg, 3 * PAGE + HDR + 500, 4 * PAGE);
	free(seg);
	seg = read_segment(2, &len);
	cr_assert_eq(len, PAGE);
	assert_fragment(seg, len, 0, 0x01, small, 10);
	free(seg);
	cr_assert_eq(count_entries(), 3);

	/* and the reader walks the empty segment */
	{
		struct wal_reader *r;
		struct wal_record wr;
		struct err e = { 0 };

		cr_assert_eq(wal_reader_open_dir(&r, tmpdir, NULL, &e), 0, "%s", e.msg);
		cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
		cr_assert(wr.segment == 1 && wr.offset == 0 && wr.len == n);
		cr_assert_eq(memcmp(wr.data, big, n), 0);
		cr_assert_eq(wr.end, 3 * PAGE + HDR + 500);
		cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
		cr_assert(wr.segment == 2 && wr.offset == 0 && wr.len == 10);
		cr_assert_eq(wal_reader_next(r, &wr, &e), 0);
		wal_reader_close(r);
	}
	free(big);
	free(small);
}

Test(wal_segments, oversized_record_after_others_moves_to_next_segment)
{
	size_t n = 2 * ROOM + 1, len;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 2 * PAGE);
	uint8_t *big = pattern(n, 1), *small = pattern(10, 2), *seg;

	cr_assert_eq(log_rec(w, small, 10).segment, 0);
	cr_assert_eq(log_rec(w, big, n).segment, 1);
	cr_assert_eq(log_rec(w, small, 10).segment, 2);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, PAGE);
	free(seg);
	seg = read_segment(1, &len);
	cr_assert_eq(len, 3 * PAGE);
	free(seg);
	free(big);
	free(small);
}

/*
 * When a segment is exactly full, Prometheus' `left` is 0 and `0 > 0` is
 * false: an empty record is still written into that segment, on a page past
 * segment_size. Byte-for-byte compatibility means doing the same.
 */
Test(wal_segments, empty_record_after_full_segment_stays_like_prometheus)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);
	uint8_t *a = pattern(ROOM, 1);
	struct wal_pos p;
	size_t len;
	uint8_t *seg;

	log_rec(w, a, ROOM);
	p = log_rec(w, a, 0);
	cr_assert(p.segment == 0 && p.offset == PAGE, "at %u/%llu, want 0/32768", p.segment,
		  (unsigned long long)p.offset);
	p = log_rec(w, a, 1);
	cr_assert(p.segment == 1 && p.offset == 0, "at %u/%llu, want 1/0", p.segment, (unsigned long long)p.offset);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(len, 2 * PAGE);
	assert_fragment(seg, len, PAGE, 0x01, a, 0);
	free(seg);
	free(a);
}

Test(wal_segments, many_segments_named_in_decimal)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);
	uint8_t *a = pattern(ROOM, 1);

	for (uint32_t i = 0; i < 12; i++) {
		struct wal_pos p = log_rec(w, a, ROOM);

		cr_assert(p.segment == i && p.offset == 0, "record %u at %u/%llu", i, p.segment,
			  (unsigned long long)p.offset);
	}
	writer_close(w);
	cr_assert_eq(count_entries(), 12);
	cr_assert(segment_exists(10) && segment_exists(11), "00000010 and 00000011");
	for (uint32_t i = 0; i < 12; i++) {
		size_t len;
		uint8_t *seg = read_segment(i, &len);

		cr_assert_eq(len, PAGE);
		assert_fragment(seg, len, 0, 0x01, a, ROOM);
		free(seg);
	}
	free(a);
}

Test(wal_segments, writer_continues_after_highest_segment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);
	uint8_t *a = pattern(ROOM, 1);

	log_rec(w, a, ROOM);
	log_rec(w, a, ROOM);
	writer_close(w);
	w = writer_open(WAL_COMPRESS_NONE, PAGE);
	cr_assert_eq(log_rec(w, a, 1).segment, 2, "00000000 and 00000001 exist: start 00000002");
	writer_close(w);
	cr_assert(segment_exists(2));
	cr_assert_eq(count_entries(), 3);
	free(a);
}

/* ---- reader round trip ---- */

struct written {
	uint8_t *data;
	size_t len;
	struct wal_pos pos;
	int compressible;
};

static void round_trip(enum wal_compression c, uint64_t segment_size, size_t count, uint64_t seed)
{
	struct written *recs = calloc(count, sizeof(*recs));
	struct wal_writer *w = writer_open(c, segment_size);
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	uint32_t last_segment = 0;
	uint64_t last_end = 0;
	size_t i;

	rng = seed;
	for (i = 0; i < count; i++) {
		size_t n;

		switch (rnd() % 8) {
		case 0: n = 0; break;
		case 1: n = rnd() % 64; break;
		case 2: n = ROOM - 3 + rnd() % 7; break; /* around one page */
		default: n = rnd() % 100001; break;
		}
		recs[i].len = n;
		recs[i].compressible = rnd() % 2;
		recs[i].data = recs[i].compressible ? compressible_bytes(n) : random_bytes(n);
		recs[i].pos = log_rec(w, recs[i].data, n);
		cr_assert(i == 0 || recs[i].pos.segment >= recs[i - 1].pos.segment);
	}
	writer_close(w);

	cr_assert_eq(wal_reader_open_dir(&r, tmpdir, NULL, &e), 0, "%s", e.msg);
	for (i = 0; i < count; i++) {
		int rc = wal_reader_next(r, &wr, &e);

		cr_assert_eq(rc, 1, "record %zu: rc %d: %s", i, rc, e.msg);
		cr_assert_eq(wr.len, recs[i].len, "record %zu: length %zu, want %zu", i, wr.len, recs[i].len);
		cr_assert(wr.len == 0 || memcmp(wr.data, recs[i].data, wr.len) == 0, "record %zu: bytes differ", i);
		cr_assert_eq(wr.segment, recs[i].pos.segment, "record %zu: segment", i);
		cr_assert_eq(wr.offset, recs[i].pos.offset, "record %zu: offset %llu, writer said %llu", i,
			     (unsigned long long)wr.offset, (unsigned long long)recs[i].pos.offset);
		cr_assert_gt(wr.end, wr.offset);
		if (wr.segment == last_segment)
			cr_assert_geq(wr.offset, last_end, "record %zu overlaps the previous one", i);
		if (segment_size)
			/* an oversized record starts its own segment; an empty one
			 * may follow a full segment (see empty_record_after_full_segment) */
			cr_assert(wr.end <= segment_size || wr.offset == 0 || wr.end - wr.offset == HDR,
				  "record %zu crosses the segment end (%llu..%llu)", i,
				  (unsigned long long)wr.offset, (unsigned long long)wr.end);
		if (c == WAL_COMPRESS_NONE)
			cr_assert_eq(wr.flags, 0, "record %zu: flags 0x%02x without compression", i, wr.flags);
		if (c != WAL_COMPRESS_NONE && recs[i].compressible && wr.len > 1000)
			cr_assert_eq(wr.flags, c == WAL_COMPRESS_SNAPPY ? WAL_SNAPPY : WAL_ZSTD,
				     "record %zu (%zu bytes, compressible): flags 0x%02x", i, wr.len, wr.flags);
		if (!recs[i].compressible && wr.len > 100)
			cr_assert_eq(wr.flags, 0, "record %zu: random bytes stay plain", i);
		last_segment = wr.segment;
		last_end = wr.end;
	}
	cr_assert_eq(wal_reader_next(r, &wr, &e), 0, "clean end: %s", e.msg);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 0, "still the end");
	wal_reader_close(r);
	for (i = 0; i < count; i++)
		free(recs[i].data);
	free(recs);
}

Test(wal_roundtrip, plain_default_segments)
{
	round_trip(WAL_COMPRESS_NONE, 0, 200, 101);
}

Test(wal_roundtrip, snappy_default_segments)
{
	round_trip(WAL_COMPRESS_SNAPPY, 0, 200, 102);
}

Test(wal_roundtrip, zstd_default_segments)
{
	round_trip(WAL_COMPRESS_ZSTD, 0, 200, 103);
}

Test(wal_roundtrip, plain_small_segments)
{
	round_trip(WAL_COMPRESS_NONE, 4 * PAGE, 200, 104);
}

Test(wal_roundtrip, snappy_small_segments)
{
	round_trip(WAL_COMPRESS_SNAPPY, 4 * PAGE, 200, 105);
}

Test(wal_roundtrip, zstd_small_segments)
{
	round_trip(WAL_COMPRESS_ZSTD, 2 * PAGE, 200, 106);
}

Test(wal_roundtrip, one_page_segments)
{
	round_trip(WAL_COMPRESS_NONE, PAGE, 100, 107);
}

/* The same bytes through the in-memory reader: same records and offsets. */
Test(wal_roundtrip, memory_reader_matches_directory_reader)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_SNAPPY, 0);
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	struct wal_pos pos[60];
	uint8_t *data[60], *seg;
	size_t lens[60], len;

	rng = 108;
	for (int i = 0; i < 60; i++) {
		lens[i] = rnd() % 70000;
		data[i] = i % 2 ? compressible_bytes(lens[i]) : random_bytes(lens[i]);
		pos[i] = log_rec(w, data[i], lens[i]);
	}
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(wal_reader_open_mem(&r, seg, len, "mem-segment", NULL, &e), 0, "%s", e.msg);
	for (int i = 0; i < 60; i++) {
		cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "record %d: %s", i, e.msg);
		cr_assert_eq(wr.len, lens[i]);
		cr_assert(lens[i] == 0 || memcmp(wr.data, data[i], lens[i]) == 0, "record %d", i);
		cr_assert_eq(wr.offset, pos[i].offset);
		cr_assert_eq(wr.segment, 0);
		free(data[i]);
	}
	cr_assert_eq(wal_reader_next(r, &wr, &e), 0, "%s", e.msg);
	wal_reader_close(r);
	free(seg);
}
