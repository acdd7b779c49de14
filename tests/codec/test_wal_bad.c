/*
 * The WAL reader (codec/wal_reader.c) on damaged input: every kind of bad
 * segment or directory gives SNAPARC_CORRUPT (or the code the header
 * promises) with a message naming the file, the offset and the reason; the
 * records before the damage come out intact first (the reader streams), and
 * the error then sticks.
 *
 * Bad segments are made by writing good ones with wal_writer and patching
 * bytes; where a test needs the damage to get past the CRC check, the
 * fragment's CRC is recomputed with crc32c().
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
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
#include "support.h"

#define PAGE 32768u
#define HDR 7u
#define ROOM (PAGE - HDR)
#define MAX_RECS 256

/* ---- fixture ---- */

static char tmpdir[64];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "walbad");
}

static void teardown(void)
{
	support_rm_tree(tmpdir);
}

TestSuite(torn, .init = setup, .fini = teardown);
TestSuite(fragment, .init = setup, .fini = teardown);
TestSuite(compressed, .init = setup, .fini = teardown);
TestSuite(directory, .init = setup, .fini = teardown);
TestSuite(streaming, .init = setup, .fini = teardown);

/* ---- segment files ---- */

static void seg_path(char *out, size_t cap, uint32_t index)
{
	snprintf(out, cap, "%s/%08u", tmpdir, index);
}

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
	cr_assert_eq(read(fd, p, *len), (ssize_t)*len);
	close(fd);
	return p;
}

static void write_segment(uint32_t index, const uint8_t *p, size_t len)
{
	char path[512];
	int fd;

	seg_path(path, sizeof(path), index);
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

	seg_path(path, sizeof(path), index);
	cr_assert_eq(truncate(path, (off_t)size), 0, "truncate %s: %s", path, strerror(errno));
}

/* Recomputes the CRC of the fragment whose header is at seg[off]. */
static void fix_crc(uint8_t *seg, size_t off)
{
	be32_put(seg + off + 3, crc32c(0, seg + off + HDR, be16_get(seg + off + 1)));
}

/* ---- writing good segments ---- */

struct rec {
	uint8_t *data;
	size_t len;
	struct wal_pos pos;
};

static struct rec recs[MAX_RECS];
static size_t nrecs;

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 17 + (i >> 8) + 1);
	return p;
}

static struct wal_writer *writer_open(enum wal_compression c, uint64_t segment_size)
{
	struct wal_writer_opts o = { .compression = c, .segment_size = segment_size };
	struct wal_writer *w = NULL;
	struct err e = { 0 };

	cr_assert_eq(wal_writer_open(&w, tmpdir, &o, &e), 0, "wal_writer_open: %s", e.msg);
	return w;
}

/* Logs a pattern record of n bytes and remembers it. */
static const struct rec *add(struct wal_writer *w, size_t n)
{
	struct rec *r = &recs[nrecs];
	struct err e = { 0 };

	cr_assert_lt(nrecs, MAX_RECS);
	r->data = pattern(n, (unsigned)nrecs);
	r->len = n;
	cr_assert_eq(wal_writer_log(w, r->data, n, &r->pos, &e), 0, "%s", e.msg);
	nrecs++;
	return r;
}

/* Logs bytes as stored with compression flags (e.g. a body that is not Snappy). */
static const struct rec *add_stored(struct wal_writer *w, const uint8_t *p, size_t n, uint8_t flags)
{
	struct rec *r = &recs[nrecs];
	struct err e = { 0 };

	cr_assert_lt(nrecs, MAX_RECS);
	r->data = malloc(n ? n : 1);
	memcpy(r->data, p, n);
	r->len = n;
	cr_assert_eq(wal_writer_log_stored(w, p, n, flags, &r->pos, &e), 0, "%s", e.msg);
	nrecs++;
	return r;
}

static void writer_close(struct wal_writer *w)
{
	struct err e = { 0 };

	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
}

/* R0 = 100 bytes at 0, R1 = 200 at 107, R2 = 300 at 314 (ends at 621). */
static void write_basic(void)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	add(w, 200);
	add(w, 300);
	writer_close(w);
	cr_assert_eq(recs[1].pos.offset, 107);
	cr_assert_eq(recs[2].pos.offset, 314);
}

/* R0 = 32755 bytes ends at 32762 (6 bytes of padding), R1 = 70000 starts at
 * 32768: FIRST 32761 there, MIDDLE 32761 at 65536, LAST 4478 at 98304. */
static void write_multi_page(void)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	add(w, 70000);
	writer_close(w);
	cr_assert_eq(recs[1].pos.offset, PAGE);
}

/* ---- reading ---- */

struct outcome {
	int rc;                 /* the first non-record result */
	size_t n;               /* records delivered before it */
	struct err e;
	struct wal_reader *r;   /* still open, for stickiness checks */
};

/* Reads until the end or an error, checking each record against recs[]. */
static void read_all(struct outcome *o, const struct wal_reader_opts *opts)
{
	struct wal_record wr;
	int rc;

	memset(o, 0, sizeof(*o));
	rc = wal_reader_open_dir(&o->r, tmpdir, opts, &o->e);
	cr_assert_eq(rc, 0, "open: %s", o->e.msg);
	while ((rc = wal_reader_next(o->r, &wr, &o->e)) == 1) {
		const struct rec *want = &recs[o->n];

		cr_assert_lt(o->n, nrecs, "more records than written");
		cr_assert_eq(wr.len, want->len, "record %zu: %zu bytes, want %zu", o->n, wr.len, want->len);
		cr_assert(wr.len == 0 || memcmp(wr.data, want->data, wr.len) == 0, "record %zu: bytes differ", o->n);
		cr_assert_eq(wr.segment, want->pos.segment, "record %zu: segment", o->n);
		cr_assert_eq(wr.offset, want->pos.offset, "record %zu: offset", o->n);
		o->n++;
	}
	o->rc = rc;
}

static void done(struct outcome *o)
{
	wal_reader_close(o->r);
	o->r = NULL;
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].data);
	nrecs = 0;
}

/* Asserts each NULL-terminated substring is in msg. */
static void assert_msg(const char *msg, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, msg);
	while ((s = va_arg(ap, const char *)) != NULL)
		cr_assert_not_null(strstr(msg, s), "message \"%s\" lacks \"%s\"", msg, s);
	va_end(ap);
}

/* The error stays: the same code and message on every later call. */
static void assert_sticky(struct outcome *o)
{
	for (int i = 0; i < 3; i++) {
		struct wal_record wr;
		struct err again = { 0 };

		cr_assert_eq(wal_reader_next(o->r, &wr, &again), o->rc, "call %d after the error", i);
		cr_assert_str_eq(again.msg, o->e.msg);
		cr_assert_eq(again.code, o->rc);
	}
	cr_assert_eq(wal_reader_next(o->r, NULL, NULL), o->rc, "also without an err");
}

static void expect_corrupt(size_t delivered, uint32_t segment, uint64_t offset, const char *reason,
			   const struct wal_reader_opts *opts)
{
	struct outcome o;
	char path[512], at[64];

	read_all(&o, opts);
	seg_path(path, sizeof(path), segment);
	snprintf(at, sizeof(at), "offset %llu:", (unsigned long long)offset);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "rc %d (%s), want corrupt", o.rc, o.e.msg);
	cr_assert_eq(o.e.code, SNAPARC_CORRUPT);
	cr_assert_eq(o.n, delivered, "%zu records before the error, want %zu (%s)", o.n, delivered, o.e.msg);
	assert_msg(o.e.msg, path, at, reason, NULL);
	assert_sticky(&o);
	done(&o);
}

/* ---- torn and truncated segments ---- */

Test(torn, cut_at_page_boundary_inside_multi_page_record)
{
	write_multi_page();
	truncate_segment(0, 2 * PAGE);
	expect_corrupt(1, 0, PAGE, "segment ends inside a record", NULL);
}

Test(torn, cut_at_page_boundary_names_last_whole_record_end)
{
	struct outcome o;

	write_multi_page();
	truncate_segment(0, 3 * PAGE);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT);
	cr_assert_eq(o.n, 1);
	assert_msg(o.e.msg, "/00000000: offset 32768: ", "the last whole record ended at offset 32762", NULL);
	done(&o);
}

Test(torn, cut_inside_a_fragment)
{
	struct outcome o;

	write_multi_page();
	truncate_segment(0, 70000);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "%s", o.e.msg);
	cr_assert_eq(o.n, 1);
	assert_msg(o.e.msg, "/00000000: offset 65536: ", "segment ends inside a 32761-byte fragment",
		   "the last whole record ended at offset 32762", NULL);
	assert_sticky(&o);
	done(&o);
}

Test(torn, cut_inside_a_fragment_header)
{
	struct outcome o;

	write_multi_page();
	truncate_segment(0, 2 * PAGE + 3);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "%s", o.e.msg);
	cr_assert_eq(o.n, 1);
	assert_msg(o.e.msg, "/00000000: offset 65536: ", "fragment header",
		   "the last whole record ended at offset 32762", NULL);
	done(&o);
}

Test(torn, cut_inside_first_fragment_of_first_page)
{
	struct outcome o;

	write_basic();
	truncate_segment(0, 150);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "%s", o.e.msg);
	cr_assert_eq(o.n, 1);
	assert_msg(o.e.msg, "offset 107: ", "200-byte fragment", "the last whole record ended at offset 107", NULL);
	done(&o);
}

Test(torn, last_page_cut_right_after_complete_records)
{
	struct outcome o;

	write_basic();
	truncate_segment(0, 621);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "%s", o.e.msg);
	cr_assert_eq(o.n, 3, "all three whole records come first");
	assert_msg(o.e.msg, "/00000000: offset 621: ", "torn last page", "621 bytes",
		   "the last whole record ended at offset 621", NULL);
	assert_sticky(&o);
	done(&o);
}

Test(torn, last_page_cut_inside_padding)
{
	write_basic();
	truncate_segment(0, 1000);
	expect_corrupt(3, 0, 1000, "the last whole record ended at offset 621", NULL);
}

Test(torn, second_page_torn_after_full_first_page)
{
	struct outcome o;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, ROOM);
	add(w, 50);
	writer_close(w);
	truncate_segment(0, PAGE + 57 + 10);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "%s", o.e.msg);
	cr_assert_eq(o.n, 2);
	assert_msg(o.e.msg, "offset 32835: ", "torn last page", "the last whole record ended at offset 32825", NULL);
	done(&o);
}

/* A torn segment that is not the last one stops the reader there. */
Test(torn, torn_segment_before_another)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);

	add(w, 1000);
	add(w, ROOM);  /* does not fit: 00000001 */
	writer_close(w);
	cr_assert_eq(recs[1].pos.segment, 1);
	truncate_segment(0, 500);
	expect_corrupt(0, 0, 0, "segment ends inside a 1000-byte fragment", NULL);
}

/* ---- fragments ---- */

Test(fragment, crc_mismatch_after_one_flipped_bit)
{
	struct outcome o;
	char stored[32], path[512];

	write_basic();
	snprintf(stored, sizeof(stored), "stored 0x%08x", crc32c(0, recs[1].data, 200));
	seg_path(path, sizeof(path), 0);
	patch_byte(0, 107 + HDR + 50, recs[1].data[50] ^ 0x10);
	read_all(&o, NULL);
	cr_assert_eq(o.rc, SNAPARC_CORRUPT, "%s", o.e.msg);
	cr_assert_eq(o.n, 1, "R0 comes out before the damaged R1");
	assert_msg(o.e.msg, path, ": offset 107: ", "CRC mismatch", "200 bytes", stored, NULL);
	assert_sticky(&o);
	done(&o);
}

Test(fragment, crc_field_damaged)
{
	write_basic();
	/* the second CRC byte, one bit flipped */
	patch_byte(0, 314 + 4, (uint8_t)((crc32c(0, recs[2].data, 300) >> 16) ^ 0x01));
	expect_corrupt(2, 0, 314, "CRC mismatch", NULL);
}

Test(fragment, middle_without_first)
{
	write_basic();
	patch_byte(0, 107, 0x03);
	expect_corrupt(1, 0, 107, "middle fragment without a first fragment", NULL);
}

Test(fragment, last_without_first)
{
	write_basic();
	patch_byte(0, 107, 0x04);
	expect_corrupt(1, 0, 107, "last fragment without a first fragment", NULL);
}

Test(fragment, first_while_a_record_is_open)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	add(w, 40000);   /* FIRST at 107, LAST at 32768 */
	writer_close(w);
	patch_byte(0, PAGE, 0x02);
	expect_corrupt(1, 0, PAGE, "first fragment while the record that started at offset 107 is incomplete", NULL);
}

Test(fragment, full_while_a_record_is_open)
{
	write_basic();
	patch_byte(0, 107, 0x02); /* R1 becomes a FIRST; R2 is a FULL */
	expect_corrupt(1, 0, 314, "full fragment while the record that started at offset 107 is incomplete", NULL);
}

Test(fragment, compression_bit_differs_between_fragments)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	uint8_t *body = pattern(40000, 9);

	add_stored(w, body, 40000, WAL_SNAPPY);   /* 0x0a at 0, 0x0c at 32768 */
	writer_close(w);
	free(body);
	patch_byte(0, PAGE, 0x04);
	expect_corrupt(0, 0, PAGE, "compression bits 0x00 differ from its record's 0x08", NULL);
}

Test(fragment, non_zero_padding_byte)
{
	write_basic();
	patch_byte(0, 20000, 0x5a);
	expect_corrupt(3, 0, 20000, "non-zero byte 0x5a in page padding", NULL);
}

Test(fragment, non_zero_last_byte_of_page)
{
	write_basic();
	patch_byte(0, PAGE - 1, 0x01);
	expect_corrupt(3, 0, PAGE - 1, "non-zero byte 0x01 in page padding", NULL);
}

/* R0 ends at 32762: the 6 bytes left must be zero. */
Test(fragment, non_zero_byte_where_fewer_than_seven_are_left)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	add(w, 10);
	writer_close(w);
	patch_byte(0, PAGE - 6, 0x01);
	expect_corrupt(1, 0, PAGE - 6, "fewer than 7 bytes", NULL);
}

Test(fragment, non_zero_inside_short_page_tail_padding)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, PAGE - HDR - 6);
	add(w, 10);
	writer_close(w);
	patch_byte(0, PAGE - 3, 0x77);
	expect_corrupt(1, 0, PAGE - 3, "non-zero byte 0x77 in page padding", NULL);
}

static void expect_bad_type(uint8_t type, const char *reason, const struct wal_reader_opts *opts)
{
	char want[96];

	write_basic();
	patch_byte(0, 107, type);
	snprintf(want, sizeof(want), "%s 0x%02x", reason, type);
	expect_corrupt(1, 0, 107, want, opts);
}

Test(fragment, reserved_bit_0x20_without_allow_lz4)
{
	expect_bad_type(0x21, "reserved bits set in fragment type", NULL);
}

Test(fragment, reserved_bit_0x40)
{
	struct wal_reader_opts lz4 = { .allow_lz4 = 1 };

	expect_bad_type(0x41, "reserved bits set in fragment type", NULL);
	teardown();
	setup();
	expect_bad_type(0x41, "reserved bits set in fragment type", &lz4);
}

Test(fragment, reserved_bit_0x80)
{
	expect_bad_type(0x81, "reserved bits set in fragment type", NULL);
}

Test(fragment, lz4_bit_accepted_with_allow_lz4)
{
	struct wal_reader_opts lz4 = { .allow_lz4 = 1 };
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };

	write_basic();
	patch_byte(0, 107, 0x21);
	cr_assert_eq(wal_reader_open_dir(&r, tmpdir, &lz4, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 1);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
	cr_assert_eq(wr.flags, WAL_LZ4);
	cr_assert_eq(wr.len, 200);
	cr_assert_eq(memcmp(wr.data, recs[1].data, 200), 0, "handed out as stored");
	wal_reader_close(r);
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].data);
	nrecs = 0;
}

Test(fragment, both_compression_bits)
{
	struct wal_reader_opts lz4 = { .allow_lz4 = 1 };

	expect_bad_type(0x19, "more than one compression bit in fragment type", NULL);
	teardown();
	setup();
	expect_bad_type(0x29, "more than one compression bit in fragment type", &lz4);
}

Test(fragment, unknown_kind_5_6_7)
{
	for (uint8_t kind = 5; kind <= 7; kind++) {
		char want[64];

		teardown();
		setup();
		snprintf(want, sizeof(want), "unknown fragment kind %u (type byte", kind);
		expect_bad_type(kind, want, NULL);
		teardown();
		setup();
		snprintf(want, sizeof(want), "unknown fragment kind %u (type byte", kind);
		expect_bad_type((uint8_t)(kind | WAL_SNAPPY), want, NULL);
	}
}

/*
 * Kind 0 is padding and padding is zeros: a type byte of 0x08 (kind 0 with
 * the Snappy bit) is neither. Prometheus treats it as a page terminator and
 * then finds the non-zero bytes after it; either way it must not be read as
 * data. Here a 0x08 "fragment" of 3 bytes with a correct CRC sits before a
 * FIRST/LAST record.
 */
Test(fragment, padding_kind_with_compression_bit_is_not_data)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	size_t len;
	uint8_t *seg;

	add(w, 3);          /* placeholder, patched below */
	add(w, 40000);      /* FIRST at 10, LAST at 32768 */
	writer_close(w);
	seg = read_segment(0, &len);
	seg[0] = 0x08;
	memcpy(seg + HDR, "XYZ", 3);
	fix_crc(seg, 0);
	write_segment(0, seg, len);
	free(seg);
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].data);
	nrecs = 0;
	{
		struct wal_reader *r;
		struct wal_record wr;
		struct err e = { 0 };
		size_t got_len = 0;
		unsigned long long got_offset = 0;
		int rc, xyz = 0;

		cr_assert_eq(wal_reader_open_dir(&r, tmpdir, NULL, &e), 0, "%s", e.msg);
		rc = wal_reader_next(r, &wr, &e);
		if (rc == 1) {
			got_len = wr.len;
			got_offset = wr.offset;
			xyz = wr.len >= 3 && !memcmp(wr.data, "XYZ", 3);
		}
		wal_reader_close(r);
		cr_assert_neq(rc, 1, "a record of %zu bytes at offset %llu was delivered%s", got_len, got_offset,
			      xyz ? ", starting with the kind-0 fragment's XYZ" : "");
		cr_assert_eq(rc, SNAPARC_CORRUPT, "rc %d (%s)", rc, e.msg);
		assert_msg(e.msg, "/00000000: offset 0: ", NULL);
	}
}

Test(fragment, length_crosses_page_boundary)
{
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	be16_put(seg + 107 + 1, (uint16_t)(PAGE - 107 - HDR + 1));
	write_segment(0, seg, len);
	free(seg);
	expect_corrupt(1, 0, 107, "fragment of 32655 bytes crosses the page boundary", NULL);
}

Test(fragment, length_0xffff)
{
	size_t len;
	uint8_t *seg;

	write_basic();
	seg = read_segment(0, &len);
	be16_put(seg + 1, 0xffff);
	write_segment(0, seg, len);
	free(seg);
	expect_corrupt(0, 0, 0, "fragment of 65535 bytes crosses the page boundary", NULL);
}

/* ---- compressed bodies ---- */

Test(compressed, snappy_body_that_does_not_decompress)
{
	/* claims 5 bytes, then a copy from 16 bytes back with nothing written */
	static const uint8_t bad[] = { 0x05, 0x01, 0x10 };
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);
	size_t len;
	uint8_t *seg;

	add(w, 100);
	add_stored(w, bad, sizeof(bad), WAL_SNAPPY);
	writer_close(w);
	seg = read_segment(0, &len);
	cr_assert_eq(seg[107], 0x09);
	cr_assert_eq(be32_get(seg + 107 + 3), crc32c(0, bad, sizeof(bad)), "the CRC is right");
	free(seg);
	expect_corrupt(1, 0, 107, "Snappy data does not decompress", NULL);
}

/* A good Snappy record whose body is overwritten with garbage, CRC fixed. */
Test(compressed, snappy_garbage_body_with_fixed_crc)
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
	cr_assert_geq(stored, 6);
	/* keep the length header (0x88 0x27 = 5000), then an invalid tag stream */
	for (size_t i = 2; i < stored; i++)
		seg[57 + HDR + i] = 0xff;
	fix_crc(seg, 57);
	write_segment(0, seg, len);
	free(seg);
	free(rec);
	expect_corrupt(1, 0, 57, "Snappy", NULL);
}

Test(compressed, zstd_body_that_is_not_a_frame)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 0);

	add(w, 100);
	add_stored(w, (const uint8_t *)"definitely not zstd", 19, WAL_ZSTD);
	writer_close(w);
	expect_corrupt(1, 0, 107, "not a valid zstd frame", NULL);
}

/* A good zstd record with its magic number broken and the CRC fixed. */
Test(compressed, zstd_broken_magic_with_fixed_crc)
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
	expect_corrupt(1, 0, 57, "zstd", NULL);
}

/* A frame whose header says 6 bytes but whose block holds 5. */
Test(compressed, zstd_content_size_lies)
{
	uint8_t frame[64];
	size_t n = ZSTD_compress(frame, sizeof(frame), "hello", 5, 1);
	struct wal_writer *w;
	struct buf out = { 0 };
	struct err e = { 0 };

	cr_assert_not(ZSTD_isError(n));
	cr_assert_eq(ZSTD_getFrameContentSize(frame, n), 5);
	/* single-segment frame: magic (4), descriptor, then the 1-byte size */
	cr_assert_eq(frame[4] & 0x20, 0x20, "expected a single-segment frame header");
	cr_assert_eq(frame[5], 5);
	frame[5] = 6;
	cr_assert_eq(wal_decompress(WAL_ZSTD, frame, n, &out, &e), SNAPARC_CORRUPT);
	assert_msg(e.msg, "zstd", NULL);
	buf_free(&out);

	w = writer_open(WAL_COMPRESS_NONE, 0);
	add_stored(w, frame, n, WAL_ZSTD);
	writer_close(w);
	expect_corrupt(0, 0, 0, "zstd", NULL);
}

/* Snappy's length header claims 0xffffffff bytes: refused before allocating. */
Test(compressed, snappy_header_claiming_4_gb)
{
	static const uint8_t claim[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x61 };
	struct buf out = { 0 };
	struct err e = { 0 };

	cr_assert_eq(wal_decompress(WAL_SNAPPY, claim, sizeof(claim), &out, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert_eq(out.cap, 0, "nothing was allocated for the claimed size (cap %zu)", out.cap);
	cr_assert_null(out.p);
	assert_msg(e.msg, "4294967295", NULL);
	buf_free(&out);
}

/* 100 MB is under the record cap, but 7 bytes of Snappy cannot hold it. */
Test(compressed, snappy_header_claiming_more_than_body_can_hold)
{
	uint8_t claim[8];
	size_t n = uvarint_put(claim, 100u << 20);
	struct buf out = { 0 };
	struct err e = { 0 };

	claim[n++] = 0x00;
	claim[n++] = 0x61;
	cr_assert_eq(wal_decompress(WAL_SNAPPY, claim, n, &out, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert_eq(out.cap, 0, "cap %zu", out.cap);
	assert_msg(e.msg, "104857600", NULL);
	buf_free(&out);
}

/* Through the reader: a good Snappy record patched to claim 4 GB, CRC fixed. */
Test(compressed, snappy_4_gb_claim_in_segment)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_SNAPPY, 0);
	uint8_t *rec = calloc(1, 5000), *seg;
	size_t len, stored;

	add(w, 50);
	cr_assert_eq(wal_writer_log(w, rec, 5000, NULL, NULL), 0);
	writer_close(w);
	seg = read_segment(0, &len);
	stored = be16_get(seg + 57 + 1);
	cr_assert_geq(stored, 5);
	memcpy(seg + 57 + HDR, "\xff\xff\xff\xff\x0f", 5);
	fix_crc(seg, 57);
	write_segment(0, seg, len);
	free(seg);
	free(rec);
	expect_corrupt(1, 0, 57, "4294967295", NULL);
}

/* A zstd frame (raw empty last block) whose header claims 2^40 bytes. */
Test(compressed, zstd_header_claiming_a_terabyte)
{
	uint8_t frame[4 + 1 + 1 + 8 + 3] = { 0x28, 0xb5, 0x2f, 0xfd,
					     0xc0,       /* 8-byte content size, windowed */
					     0x00 };     /* window descriptor: 1 KiB */
	struct buf out = { 0 };
	struct err e = { 0 };

	for (int i = 0; i < 8; i++)
		frame[6 + i] = (uint8_t)((UINT64_C(1) << 40) >> (8 * i));
	frame[14] = 0x01; /* last block, raw, size 0 */
	cr_assert_eq(ZSTD_getFrameContentSize(frame, sizeof(frame)), UINT64_C(1) << 40);
	cr_assert_eq(wal_decompress(WAL_ZSTD, frame, sizeof(frame), &out, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert_eq(out.cap, 0, "cap %zu", out.cap);
	assert_msg(e.msg, "1099511627776", NULL);
	buf_free(&out);
}

/* Without a content size to check first, decompression must stop at the
 * record cap: 9 KB of zstd that would expand to 300 MB of zeros. */
Test(compressed, zstd_stream_without_size_stops_at_the_record_cap)
{
	size_t chunk = 1u << 20, cap = 1u << 20;
	uint8_t *zeros = calloc(1, chunk), *frame = malloc(cap);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_outBuffer o = { frame, cap, 0 };
	struct buf out = { 0 };
	struct err e = { 0 };
	size_t left;

	cr_assert_eq(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)), 0);
	for (size_t i = 0; i < 300; i++) {
		ZSTD_inBuffer in = { zeros, chunk, 0 };

		while (in.pos < in.size)
			cr_assert_not(ZSTD_isError(ZSTD_compressStream2(cc, &o, &in, ZSTD_e_continue)));
	}
	do {
		ZSTD_inBuffer in = { zeros, 0, 0 };

		left = ZSTD_compressStream2(cc, &o, &in, ZSTD_e_end);
		cr_assert_not(ZSTD_isError(left));
	} while (left);
	cr_assert_eq(ZSTD_getFrameContentSize(frame, o.pos), ZSTD_CONTENTSIZE_UNKNOWN);
	cr_assert_eq(wal_decompress(WAL_ZSTD, frame, o.pos, &out, &e), SNAPARC_CORRUPT, "%s", e.msg);
	assert_msg(e.msg, "zstd data expands past 268435456 bytes", NULL);
	cr_assert_leq(out.cap, WAL_MAX_RECORD, "%zu bytes allocated, cap %u", out.cap, WAL_MAX_RECORD);
	buf_free(&out);
	ZSTD_freeCCtx(cc);
	free(zeros);
	free(frame);
}

Test(compressed, zstd_truncated_frame_without_size)
{
	uint8_t *rec = malloc(5000), frame[8192];
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	struct buf out = { 0 };
	struct err e = { 0 };
	size_t fn;

	for (size_t i = 0; i < 5000; i++)
		rec[i] = (uint8_t)(i * i >> 3);
	cr_assert_eq(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)), 0);
	fn = ZSTD_compress2(cc, frame, sizeof(frame), rec, 5000);
	cr_assert_not(ZSTD_isError(fn));
	cr_assert_eq(wal_decompress(WAL_ZSTD, frame, fn - 3, &out, &e), SNAPARC_CORRUPT);
	assert_msg(e.msg, "zstd", NULL);
	buf_free(&out);
	ZSTD_freeCCtx(cc);
	free(rec);
}

Test(compressed, decompress_unknown_flags)
{
	struct buf out = { 0 };
	struct err e = { 0 };

	cr_assert_eq(wal_decompress(WAL_LZ4, (const uint8_t *)"x", 1, &out, &e), SNAPARC_UNSUPPORTED);
	cr_assert_eq(wal_decompress(0, (const uint8_t *)"x", 1, &out, &e), SNAPARC_UNSUPPORTED);
	buf_free(&out);
}

/* ---- directories ---- */

static void expect_open_error(const char *dir, int code, const char *reason)
{
	struct wal_reader *r = (struct wal_reader *)0x1;
	struct err e = { 0 };
	int rc = wal_reader_open_dir(&r, dir, NULL, &e);

	cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, e.msg, code);
	cr_assert_eq(e.code, code);
	cr_assert_eq(r, (struct wal_reader *)0x1, "out is set only on success");
	assert_msg(e.msg, dir, reason, NULL);
}

Test(directory, empty_directory)
{
	expect_open_error(tmpdir, SNAPARC_NOT_FOUND, "empty");
}

Test(directory, missing_directory)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	expect_open_error(path, SNAPARC_NOT_FOUND, "missing");
}

Test(directory, file_instead_of_directory)
{
	char path[512];

	write_basic();
	seg_path(path, sizeof(path), 0);
	expect_open_error(path, SNAPARC_INVALID, "not a directory");
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].data);
	nrecs = 0;
}

Test(directory, unexpected_entries)
{
	static const char *names[] = { "notes.txt", "0000001", "000000001", "00000000.tmp", "0000000a", "-0000001" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[512], why[128];
		int fd;

		teardown();
		setup();
		write_segment(0, (const uint8_t *)"", 0);
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		cr_assert_geq(fd, 0);
		close(fd);
		snprintf(why, sizeof(why), "unexpected entry '%s'", names[i]);
		expect_open_error(tmpdir, SNAPARC_CORRUPT, why);
	}
}

Test(directory, subdirectory_named_like_a_segment)
{
	char path[512];

	write_segment(0, (const uint8_t *)"", 0);
	seg_path(path, sizeof(path), 1);
	cr_assert_eq(mkdir(path, 0755), 0);
	expect_open_error(tmpdir, SNAPARC_CORRUPT, "not a regular file");
}

Test(directory, gap_in_numbering)
{
	write_segment(0, (const uint8_t *)"", 0);
	write_segment(1, (const uint8_t *)"", 0);
	write_segment(3, (const uint8_t *)"", 0);
	expect_open_error(tmpdir, SNAPARC_CORRUPT, "00000001 is followed by 00000003");
}

/* Numbering may start anywhere: 00000005, 00000006. */
Test(directory, numbering_starting_above_zero)
{
	struct outcome o;
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, PAGE);
	char from[512], to[512];

	add(w, ROOM);
	add(w, 10);
	writer_close(w);
	for (int i = 1; i >= 0; i--) {
		seg_path(from, sizeof(from), (uint32_t)i);
		seg_path(to, sizeof(to), (uint32_t)i + 5);
		cr_assert_eq(rename(from, to), 0);
		recs[i].pos.segment += 5;
	}
	read_all(&o, NULL);
	cr_assert_eq(o.rc, 0, "%s", o.e.msg);
	cr_assert_eq(o.n, 2);
	done(&o);
}

/* ---- streaming: the records before the damage, intact, then the error ---- */

Test(streaming, records_of_earlier_segments_and_before_damage_come_first)
{
	struct wal_writer *w = writer_open(WAL_COMPRESS_NONE, 2 * PAGE);
	size_t n_before = 0, damaged = 0;
	uint8_t *seg;
	size_t len;

	for (int i = 0; i < 80; i++)
		add(w, (size_t)(i * 977) % 9000);
	writer_close(w);
	cr_assert_gt(recs[79].pos.segment, 2, "needs several segments");
	/* damage the third record of segment 2 */
	for (size_t i = 0; i < nrecs; i++) {
		if (recs[i].pos.segment == 2) {
			if (++n_before == 3) {
				damaged = i;
				break;
			}
		}
	}
	cr_assert_gt(damaged, 0);
	seg = read_segment(2, &len);
	seg[recs[damaged].pos.offset + HDR] ^= 0x01;
	write_segment(2, seg, len);
	free(seg);
	expect_corrupt(damaged, 2, recs[damaged].pos.offset, "CRC mismatch", NULL);
}

Test(streaming, memory_reader_names_its_segment)
{
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	uint8_t *seg;
	size_t len;

	write_basic();
	seg = read_segment(0, &len);
	seg[314 + HDR] ^= 0x80;
	cr_assert_eq(wal_reader_open_mem(&r, seg, len, "in-memory 00000042", NULL, &e), 0);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 1);
	cr_assert_eq(memcmp(wr.data, recs[0].data, 100), 0);
	cr_assert_eq(wal_reader_next(r, &wr, &e), 1);
	cr_assert_eq(memcmp(wr.data, recs[1].data, 200), 0);
	cr_assert_eq(wal_reader_next(r, &wr, &e), SNAPARC_CORRUPT);
	assert_msg(e.msg, "in-memory 00000042: offset 314: CRC mismatch", NULL);
	cr_assert_eq(wal_reader_next(r, &wr, &e), SNAPARC_CORRUPT, "sticky");
	wal_reader_close(r);
	free(seg);
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].data);
	nrecs = 0;
}

Test(streaming, memory_reader_torn_page)
{
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	uint8_t *seg;
	size_t len;

	write_basic();
	seg = read_segment(0, &len);
	cr_assert_eq(wal_reader_open_mem(&r, seg, 700, "mem", NULL, &e), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(wal_reader_next(r, &wr, &e), 1, "%s", e.msg);
	cr_assert_eq(wal_reader_next(r, &wr, &e), SNAPARC_CORRUPT);
	assert_msg(e.msg, "mem: offset 700: torn last page", "ended at offset 621", NULL);
	wal_reader_close(r);
	free(seg);
	for (size_t i = 0; i < nrecs; i++)
		free(recs[i].data);
	nrecs = 0;
}
