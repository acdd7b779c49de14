/*
 * fuzz_wal: the input is one WAL segment. It is read to the end or the first
 * error as Prometheus' segments are read (decompressing, next to a reader
 * of the same segment that returns records as stored) and as archive
 * segments are read (LZ4 bit allowed, records as stored).
 *
 * Besides memory safety (ASan/UBSan) it checks what wal.h promises:
 * records lie inside the segment, in order, without overlapping; a failure
 * has a message that says where ("offset N"), its code is the one returned,
 * and it repeats on the next call. Decompression is checked against Snappy
 * and zstd used directly. A violation traps, which libFuzzer reports as a
 * crash with the input.
 *
 * Every fragment carries a CRC-32C, so nearly every blind mutation of a
 * fragment's bytes would stop at the CRC check. The custom mutator puts
 * the CRCs right after mutating, most of the time, so that the fuzzer gets
 * past it to fragment assembly and decompression; the rest of the time it
 * leaves them, so that the CRC check itself stays covered.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <snappy-c.h>
#include <zstd.h>

#include "bytes.h"
#include "crc32c.h"
#include "wal.h"
#include "fuzz.h"

#define KEEP_BAD_CRCS_ONE_IN 8

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

/* Reads every byte of a record, so ASan sees a record that points outside
 * memory it may read; the volatile keeps the optimizer from dropping it. */
static volatile uint8_t touched;

static void touch(const uint8_t *p, size_t len)
{
	uint8_t x = 0;

	for (size_t i = 0; i < len; i++)
		x ^= p[i];
	touched = x;
}

static void check_record(const struct wal_record *rec, const struct wal_reader_opts *opts,
			 size_t size, uint64_t prev_end)
{
	CHECK(rec->offset < rec->end);
	CHECK(rec->end <= size);
	CHECK(rec->offset >= prev_end);
	CHECK(rec->segment == 0);
	/* the stored bytes sit between fragment headers inside [offset, end) */
	CHECK(rec->stored_len + WAL_HEADER_SIZE <= rec->end - rec->offset);
	CHECK((rec->flags & ~WAL_COMPRESSION_MASK) == 0);
	CHECK(opts->allow_lz4 || !(rec->flags & WAL_LZ4));
	CHECK(rec->len <= WAL_MAX_RECORD);
	if (opts->raw || !(rec->flags & (WAL_SNAPPY | WAL_ZSTD)))
		CHECK(rec->len == rec->stored_len);
	CHECK(rec->len == 0 || rec->data != NULL);
	touch(rec->data, rec->len);
}

/* One reader and what has been checked of it so far. */
struct walk {
	struct wal_reader *r;
	const struct wal_reader_opts *opts;
	size_t size;
	uint64_t prev_end;
	struct err e;
};

static int walk_open(struct walk *w, const uint8_t *data, size_t size, const struct wal_reader_opts *opts)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->opts = opts;
	w->size = size;
	rc = wal_reader_open_mem(&w->r, data, size, "fuzz", opts, &w->e);
	if (rc)
		CHECK(rc < 0 && w->e.msg[0] != '\0');
	return rc;
}

/* The next record, checked; after 0 or an error the walk is over. */
static int walk_next(struct walk *w, struct wal_record *rec)
{
	struct wal_record ignored;
	struct err again = { 0 };
	int rc = wal_reader_next(w->r, rec, &w->e);

	if (rc == 1) {
		check_record(rec, w->opts, w->size, w->prev_end);
		w->prev_end = rec->end;
	} else if (rc < 0) {
		CHECK(w->e.code == rc);
		CHECK(w->e.msg[0] != '\0' && strstr(w->e.msg, "offset") != NULL);
		/* the error sticks */
		CHECK(wal_reader_next(w->r, &ignored, &again) == rc);
		CHECK(again.code == rc && strcmp(again.msg, w->e.msg) == 0);
	} else {
		CHECK(rc == 0);
	}
	return rc;
}

/*
 * What the compression libraries make of a stored record on their own,
 * without the reader's shortcuts: 1 with the bytes in out, 0 when they
 * refuse it, -1 when it comes to more than WAL_MAX_RECORD bytes. zstd input
 * may be several frames, as Prometheus' decoder (DecodeAll) accepts. Memory
 * follows the real output (never a claimed size), so that -malloc_limit_mb
 * keeps pointing at the reader.
 */
static int reference_decompress(uint8_t flags, const uint8_t *p, size_t len, struct buf *out)
{
	ZSTD_inBuffer in = { p, len, 0 };
	ZSTD_DStream *ds;
	uint8_t probe[1];
	size_t n, r;
	int rc = 0;

	buf_reset(out);
	if (flags == WAL_SNAPPY) {
		/* validation decodes without writing, so n is then the real size */
		if (snappy_validate_compressed_buffer((const char *)p, len) != SNAPPY_OK ||
		    snappy_uncompressed_length((const char *)p, len, &n) != SNAPPY_OK)
			return 0;
		if (n > WAL_MAX_RECORD)
			return -1;
		CHECK(buf_reserve(out, n ? n : 1) != NULL);
		CHECK(snappy_uncompress((const char *)p, len, (char *)out->p, &n) == SNAPPY_OK);
		out->len = n;
		return 1;
	}
	CHECK(flags == WAL_ZSTD);
	if (len == 0)
		return 0;
	ds = ZSTD_createDStream();
	CHECK(ds != NULL);
	for (;;) {
		ZSTD_outBuffer o = { probe, sizeof(probe), 0 };

		/* up to the cap in out, then one byte more tells it is over */
		if (out->len < WAL_MAX_RECORD) {
			size_t want = WAL_MAX_RECORD - out->len < 64 * 1024 ? WAL_MAX_RECORD - out->len : 64 * 1024;

			if (out->cap - out->len < 4096)
				CHECK(buf_reserve(out, want) != NULL);
			o.dst = out->p;
			o.size = out->cap < WAL_MAX_RECORD ? out->cap : WAL_MAX_RECORD;
			o.pos = out->len;
		}
		r = ZSTD_decompressStream(ds, &o, &in);
		if (ZSTD_isError(r))
			break;
		if (o.dst == probe && o.pos) {
			rc = -1;
			break;
		}
		if (o.dst != probe)
			out->len = o.pos;
		if (r == 0 && in.pos == in.size) {
			rc = 1;
			break;
		}
		if (in.pos == in.size && o.pos < o.size)
			break;   /* the last frame is cut short */
	}
	ZSTD_freeDStream(ds);
	return rc;
}

/*
 * Reads the segment as Prometheus' segments are read (decompressing) next
 * to a reader that returns records as stored. Both must frame the same
 * records; the decompressed bytes must be what the compression library
 * makes of the stored ones, and the decompressing reader may fail where
 * the other does not only on a record the library refuses too.
 */
static void read_decompressing(const uint8_t *data, size_t size)
{
	static const struct wal_reader_opts plain = { 0 }, stored = { .raw = 1 };
	struct walk dw, sw;
	struct wal_record drec, srec;
	struct buf ref = { 0 };
	char at[64];
	int rd, rs, want;

	if (walk_open(&dw, data, size, &plain))
		return;
	if (walk_open(&sw, data, size, &stored)) {
		wal_reader_close(dw.r);
		return;
	}
	do {
		rd = walk_next(&dw, &drec);
		rs = walk_next(&sw, &srec);
		if (rs != 1) {
			CHECK(rd == rs);
			CHECK(rs == 0 || strcmp(dw.e.msg, sw.e.msg) == 0);
			break;
		}
		want = srec.flags ? reference_decompress(srec.flags, srec.data, srec.len, &ref) : 1;
		if (rd != 1) {
			CHECK(rd < 0 && want != 1);
			snprintf(at, sizeof(at), "offset %llu:", (unsigned long long)srec.offset);
			CHECK(strstr(dw.e.msg, at) != NULL);
			break;
		}
		CHECK(want == 1);
		CHECK(drec.offset == srec.offset && drec.end == srec.end);
		CHECK(drec.flags == srec.flags && drec.stored_len == srec.stored_len);
		if (srec.flags) {
			CHECK(drec.len == ref.len);
			CHECK(ref.len == 0 || memcmp(drec.data, ref.p, ref.len) == 0);
		} else {
			CHECK(drec.len == srec.len);
			CHECK(srec.len == 0 || memcmp(drec.data, srec.data, srec.len) == 0);
		}
	} while (rd == 1);
	buf_free(&ref);
	wal_reader_close(dw.r);
	wal_reader_close(sw.r);
}

/* Reads the segment as an archive segment: LZ4 allowed, records as stored. */
static void read_archive(const uint8_t *data, size_t size)
{
	static const struct wal_reader_opts archive = { .allow_lz4 = 1, .raw = 1 };
	struct walk w;
	struct wal_record rec;

	if (walk_open(&w, data, size, &archive))
		return;
	while (walk_next(&w, &rec) == 1)
		;
	wal_reader_close(w.r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_decompressing(data, size);
	read_archive(data, size);
	return 0;
}
