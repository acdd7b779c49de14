/*
 * Whole restore (plugin/restore.c) of the bundled real Prometheus 2.42
 * snapshot: every record back byte for byte and in order, with each of the
 * three compressions; with Snappy (the default) each series record with a
 * chunk is stored compressed, as a valid Snappy block, and the restored
 * records take at most 2% more bytes than Snappy over each whole record
 * would (the chunk data is a literal, not searched). Series records of the
 * shapes restore's Snappy probes treat apart (long label strings, long
 * lengths, more labels than it probes, a record past 64 KiB) come back
 * byte for byte too.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* Every record of dir equals src's, in order. */
static void assert_same_records_as(const char *src, const char *dir, size_t min_records)
{
	struct wal_reader *a, *b;
	struct wal_record ra, rb;
	struct err e = { 0 };
	size_t n = 0;
	int ka, kb;

	cr_assert_eq(wal_reader_open_dir(&a, src, NULL, &e), 0, "%s", e.msg);
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
	cr_assert_geq(n, min_records, "the source's records were all compared");
	wal_reader_close(a);
	wal_reader_close(b);
}

static void assert_same_records(const char *dir)
{
	assert_same_records_as(snapdir, dir, 500);
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

/* The bundled snapshot's first series record with an XOR chunk, decoded
 * (borrowed from *keep, which the caller frees). */
static struct rec_series first_series(struct buf *keep)
{
	struct wal_reader *r;
	struct wal_record rec;
	struct rec_series s;
	struct err e = { 0 };

	cr_assert_eq(wal_reader_open_dir(&r, snapdir, NULL, &e), 0, "%s", e.msg);
	while (wal_reader_next(r, &rec, &e) == 1) {
		if (rec.data[0] != REC_SERIES)
			continue;
		buf_put(keep, rec.data, rec.len);
		cr_assert_eq(rec_series_decode(&s, keep->p, keep->len, &e), 0, "%s", e.msg);
		if (s.has_chunk && s.encoding == CHUNK_XOR)
			break;
		buf_reset(keep);
	}
	wal_reader_close(r);
	cr_assert(keep->len, "a series record with an XOR chunk");
	return s;
}

/* A label set of n labels, sorted, with values of the given lengths made
 * of a repeating cgroup-like text (value i of length lens[i % nlens]). */
static void shaped_labels(struct buf *out, struct buf *text, size_t n, const size_t *lens, size_t nlens)
{
	static const char words[] = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod";
	struct rec_label *ls = calloc(n, sizeof(*ls));
	char *names = malloc(n * 8);
	size_t total = 0;

	cr_assert(ls && names);
	for (size_t i = 0; i < n; i++)
		total += lens[i % nlens];
	buf_reset(text);
	for (size_t k = 0; k < total + 1; k++)
		buf_put_byte(text, (uint8_t)words[(k * 7 + k / 97) % (sizeof(words) - 1)]);
	cr_assert(!text->oom);
	total = 0;
	for (size_t i = 0; i < n; i++) {
		/* "__name__" sorts before "l0000", "l0001", ... */
		if (i == 0)
			memcpy(names, "__name__", 8);
		else
			snprintf(names + 8 * i, 8, "l%05zu", i);
		ls[i].name = names + 8 * i;
		ls[i].name_len = i == 0 ? 8 : 6;
		ls[i].value = (const char *)text->p + total;
		ls[i].value_len = lens[i % nlens];
		total += lens[i % nlens];
	}
	buf_reset(out);
	rec_labels_encode(out, ls, n);
	cr_assert(!out->oom);
	free(ls);
	free(names);
}

Test(restore, series_of_every_probe_shape_come_back_byte_for_byte)
{
	static const size_t plain[] = { 1, 6, 12 }, dense[] = { 3, 64, 99, 100, 101, 191, 7 }, long_len[] = { 127, 128, 300 },
			    short_ones[] = { 0, 1, 2, 3, 4, 5 }, huge[] = { 70000 };
	static const struct { const size_t *lens; size_t nlens, n; } shapes[] = {
		{ plain, 3, 10 }, { dense, 7, 14 }, { long_len, 3, 5 }, { short_ones, 6, 30 },
		{ plain, 3, 200 },      /* more labels than restore probes */
		{ huge, 1, 2 },         /* a record past 64 KiB */
	};
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_SNAPPY };
	struct buf keep = { 0 }, labels = { 0 }, text = { 0 }, rec = { 0 };
	struct rec_series s = first_series(&keep);
	struct wal_writer *w;
	struct archive_restore_stats st = { 0 };
	struct err e = { 0 };
	char src[256], out[256];
	size_t nrec = 0;

	snprintf(src, sizeof(src), "%s/chunk_snapshot.000002.0000000000", tmpdir);
	cr_assert_eq(mkdir(src, 0777), 0, "%s: %s", src, strerror(errno));
	cr_assert_eq(wal_writer_open(&w, src, &wo, &e), 0, "%s", e.msg);
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		shaped_labels(&labels, &text, shapes[k].n, shapes[k].lens, shapes[k].nlens);
		s.ref = 1000 + k;
		s.labels.raw = labels.p;
		s.labels.raw_len = labels.len;
		s.labels.count = (uint32_t)shapes[k].n;
		buf_reset(&rec);
		rec_series_encode(&rec, &s);
		cr_assert(!rec.oom);
		cr_assert_eq(wal_writer_log(w, rec.p, rec.len, NULL, &e), 0, "%s", e.msg);
		nrec++;
	}
	buf_reset(&rec);
	rec_tombstones_encode(&rec, NULL, 0);
	cr_assert_eq(wal_writer_log(w, rec.p, rec.len, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
	{
		struct archive_import_info info = { .name = "shapes", .source_bytes = 1 };

		cr_assert_eq(archive_import_dir(arc, src, &info, NULL, NULL, NULL, &e), 0, "import: %s", e.msg);
	}
	snprintf(out, sizeof(out), "%s/shapes-out", tmpdir);
	cr_assert_eq(archive_restore(arc, "shapes", NULL, 0, out, NULL, &st, &e), 0, "restore: %s", e.msg);
	cr_assert_eq(st.series, nrec);
	assert_same_records_as(src, out, nrec + 1);
	buf_free(&keep);
	buf_free(&labels);
	buf_free(&text);
	buf_free(&rec);
}
