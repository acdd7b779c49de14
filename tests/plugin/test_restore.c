/*
 * Whole restore (plugin/restore.c) of the bundled real Prometheus 2.42
 * snapshot: every record back byte for byte and in order, with each of the
 * three compressions; with Snappy (the default) each series record with a
 * chunk is stored compressed, as a valid Snappy block, and the restored
 * records take at most 2% more bytes than Snappy over each whole record
 * would (the chunk data is a literal, not searched).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "archive.h"
#include "bytes.h"
#include "record.h"
#include "wal.h"
#include "support.h"

static char tmpdir[64], arcdir[128], snapdir[4096];
static struct archive *arc;

static void setup(void)
{
	struct archive_opts o = { .create = 1 };
	struct archive_import_info info = { .name = "bundled", .source_bytes = 1 };
	struct err e = { 0 };

	support_tmpdir(tmpdir, sizeof(tmpdir), "restore");
	support_bundled_snapshot(snapdir, sizeof(snapdir));
	snprintf(arcdir, sizeof(arcdir), "%s/arc", tmpdir);
	cr_assert_eq(archive_open(&arc, arcdir, &o, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_import_dir(arc, snapdir, &info, NULL, NULL, NULL, &e), 0, "import: %s", e.msg);
}

static void teardown(void)
{
	archive_close(arc);
	support_rm_tree(tmpdir);
}

TestSuite(restore, .init = setup, .fini = teardown);

/* Restores the whole snapshot into tmpdir/name with compression c. */
static void restore_whole(const char *name, int c, char *out, size_t cap)
{
	struct archive_restore_opts o = { .compression = c };
	struct archive_restore_stats st = { 0 };
	struct err e = { 0 };

	snprintf(out, cap, "%s/%s", tmpdir, name);
	cr_assert_eq(archive_restore(arc, "latest", NULL, 0, out, &o, &st, &e), 0, "restore: %s", e.msg);
	cr_assert_gt(st.series, 0);
}

/* Every record of dir equals the source's, in order. */
static void assert_same_records(const char *dir)
{
	struct wal_reader *a, *b;
	struct wal_record ra, rb;
	struct err e = { 0 };
	size_t n = 0;
	int ka, kb;

	cr_assert_eq(wal_reader_open_dir(&a, snapdir, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_reader_open_dir(&b, dir, NULL, &e), 0, "%s", e.msg);
	for (;;) {
		struct buf copy = { 0 };

		ka = wal_reader_next(a, &ra, &e);
		cr_assert_geq(ka, 0, "%s", e.msg);
		if (ka)
			buf_put(&copy, ra.data, ra.len);
		kb = wal_reader_next(b, &rb, &e);
		cr_assert_geq(kb, 0, "%s", e.msg);
		cr_assert_eq(ka, kb, "record %zu: in one snapshot only", n);
		if (!ka)
			break;
		cr_assert(copy.len == rb.len && !memcmp(copy.p, rb.data, rb.len), "record %zu differs (%zu, %zu bytes)",
			  n, copy.len, rb.len);
		buf_free(&copy);
		n++;
	}
	cr_assert_gt(n, 500, "the bundled snapshot's records were all compared");
	wal_reader_close(a);
	wal_reader_close(b);
}

Test(restore, whole_snapshot_identical_records_with_each_compression)
{
	char out[256];

	restore_whole("snappy", WAL_COMPRESS_SNAPPY, out, sizeof(out));
	assert_same_records(out);
	restore_whole("none", WAL_COMPRESS_NONE, out, sizeof(out));
	assert_same_records(out);
	restore_whole("zstd", WAL_COMPRESS_ZSTD, out, sizeof(out));
	assert_same_records(out);
}

Test(restore, series_records_are_valid_snappy_near_whole_record_snappy)
{
	struct wal_reader_opts raw = { .raw = 1 };
	struct wal_reader *r;
	struct wal_record rec;
	struct err e = { 0 };
	struct buf back = { 0 };
	char out[256];
	size_t series = 0, stored = 0, whole = 0;
	int k;

	restore_whole("snappy", WAL_COMPRESS_SNAPPY, out, sizeof(out));
	cr_assert_eq(wal_reader_open_dir(&r, out, &raw, &e), 0, "%s", e.msg);
	while ((k = wal_reader_next(r, &rec, &e)) == 1) {
		struct rec_series s;
		char *packed;
		size_t n = 0, cap;

		buf_reset(&back);
		if (rec.flags)
			cr_assert_eq(wal_decompress(rec.flags, rec.data, rec.len, &back, &e), 0, "%s", e.msg);
		else
			buf_put(&back, rec.data, rec.len);
		if (back.p[0] != REC_SERIES || rec_series_decode(&s, back.p, back.len, &e) || !s.has_chunk)
			continue;
		cr_assert_eq(rec.flags, WAL_SNAPPY, "a series record with a chunk is stored with Snappy");
		cr_assert_eq(snappy_validate_compressed_buffer((const char *)rec.data, rec.len), SNAPPY_OK);
		cap = snappy_max_compressed_length(back.len);
		packed = malloc(cap);
		n = cap;
		cr_assert_eq(snappy_compress((const char *)back.p, back.len, packed, &n), SNAPPY_OK);
		free(packed);
		whole += n < back.len ? n : back.len;
		stored += rec.len;
		series++;
	}
	cr_assert_eq(k, 0, "%s", e.msg);
	wal_reader_close(r);
	buf_free(&back);
	cr_assert_gt(series, 500);
	cr_assert_leq(stored, whole + whole / 50, "%zu series records: %zu bytes stored, %zu with whole-record Snappy",
		      series, stored, whole);
}
