/*
 * extract_records: seeds for fuzz_record, and a map of a segment for the
 * fuzz_wal seeds (make-corpus.sh uses both).
 *
 *   extract_records [--segments DIR] SNAPSHOT_DIR OUTDIR [MAX_RECORDS [MAX_BYTES]]
 *
 * Writes decompressed records of the snapshot to OUTDIR/rec-NNNNNN (NNNNNN is
 * the record's index in the snapshot), at most MAX_RECORDS (200) of them and
 * none over MAX_BYTES (65536). Snapshots hold hundreds of series records and
 * one or two of the other types, so every record of a rarer type is kept and
 * series records are taken evenly spread over the rest of the budget.
 *
 * Prints one line per record of the snapshot, written or not:
 *   INDEX OFFSET END STORED_LEN FLAGS TYPE LEN FILE|-
 * where OFFSET and END bound the record's fragments in its segment.
 *
 * With --segments DIR it also writes small segments for fuzz_wal in the
 * encodings the snapshot lacks (Prometheus wrote it with Snappy), each
 * DIR/<kind>/00000000 holding the first few records written, every record
 * of a rarer type and the snapshot's largest record:
 *   plain        no compression
 *   zstd         zstd frames that state their size (snaparc's writer)
 *   zstd-nosize  zstd frames that do not, so the reader must stream them
 *   lz4          the LZ4 bit of archive segments, over uncompressed bytes
 *                (the reader hands LZ4 records out as stored)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>

#include "record.h"
#include "wal.h"

#define TYPES 256
#define SEGMENT_FIRST_RECORDS 8   /* leading records copied into each segment */

enum seg_kind { SEG_PLAIN, SEG_ZSTD, SEG_ZSTD_NOSIZE, SEG_LZ4, SEG_KINDS };
static const char *const seg_names[SEG_KINDS] = { "plain", "zstd", "zstd-nosize", "lz4" };

struct segments {
	struct wal_writer *w[SEG_KINDS];
	ZSTD_CCtx *cctx;          /* for zstd-nosize */
	struct buf frame;
	uint64_t logged;
};

struct plan {
	size_t max_records, max_bytes;
	uint64_t eligible[TYPES];   /* records of each type no larger than max_bytes */
	uint64_t quota[TYPES];      /* how many of them to write */
	uint64_t seen[TYPES], written[TYPES];
	uint64_t largest, largest_len;   /* index and length of the largest record */
};

/* Splits the budget: rare types first (all of each, up to a quarter of the
 * budget), then what is left to the most common type. */
static void plan_quotas(struct plan *pl)
{
	size_t left = pl->max_records, common = 0;

	for (size_t t = 0; t < TYPES; t++)
		if (pl->eligible[t] > pl->eligible[common])
			common = t;
	for (size_t t = 0; t < TYPES; t++) {
		uint64_t q = pl->eligible[t];

		if (t == common)
			continue;
		if (q > pl->max_records / 4)
			q = pl->max_records / 4;
		if (q > left)
			q = left;
		pl->quota[t] = q;
		left -= (size_t)q;
	}
	pl->quota[common] = pl->eligible[common] < left ? pl->eligible[common] : left;
}

/* Whether the k-th (0-based) eligible record of its type is one to write:
 * q of n, spread evenly (k starts a new value of k*q/n), the first included. */
static int chosen(const struct plan *pl, uint8_t type, uint64_t k)
{
	uint64_t n = pl->eligible[type], q = pl->quota[type];

	if (q >= n)
		return 1;
	return k == 0 ? q > 0 : k * q / n != (k - 1) * q / n;
}

static int write_file(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f) {
		perror(path);
		return -1;
	}
	ok = fwrite(p, 1, len, f) == len;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		perror(path);
		return -1;
	}
	return 0;
}

static int segments_open(struct segments *sg, const char *dir, struct err *e)
{
	static const enum wal_compression comp[SEG_KINDS] = {
		WAL_COMPRESS_NONE, WAL_COMPRESS_ZSTD, WAL_COMPRESS_NONE, WAL_COMPRESS_NONE
	};
	char path[4096];
	int rc;

	if (mkdir(dir, 0777) != 0)
		return err_errno(e, errno, "%s", dir);
	for (int k = 0; k < SEG_KINDS; k++) {
		struct wal_writer_opts o = { .compression = comp[k] };

		snprintf(path, sizeof(path), "%s/%s", dir, seg_names[k]);
		if (mkdir(path, 0777) != 0)
			return err_errno(e, errno, "%s", path);
		if ((rc = wal_writer_open(&sg->w[k], path, &o, e)))
			return rc;
	}
	sg->cctx = ZSTD_createCCtx();
	if (!sg->cctx || ZSTD_isError(ZSTD_CCtx_setParameter(sg->cctx, ZSTD_c_contentSizeFlag, 0)))
		return err_set(e, SNAPARC_NOMEM, "cannot set up zstd");
	return 0;
}

/* zstd without the content size in the frame header. */
static int log_zstd_nosize(struct segments *sg, const uint8_t *p, size_t len, struct err *e)
{
	size_t n;

	buf_reset(&sg->frame);
	if (!buf_reserve(&sg->frame, ZSTD_compressBound(len)))
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	n = ZSTD_compress2(sg->cctx, sg->frame.p, sg->frame.cap, p, len);
	if (ZSTD_isError(n))
		return err_set(e, SNAPARC_INVALID, "zstd: %s", ZSTD_getErrorName(n));
	return wal_writer_log_stored(sg->w[SEG_ZSTD_NOSIZE], sg->frame.p, n, WAL_ZSTD, NULL, e);
}

static int segments_log(struct segments *sg, const uint8_t *p, size_t len, struct err *e)
{
	int rc;

	if ((rc = wal_writer_log(sg->w[SEG_PLAIN], p, len, NULL, e)) ||
	    (rc = wal_writer_log(sg->w[SEG_ZSTD], p, len, NULL, e)) ||
	    (rc = log_zstd_nosize(sg, p, len, e)) ||
	    (rc = wal_writer_log_stored(sg->w[SEG_LZ4], p, len, WAL_LZ4, NULL, e)))
		return rc;
	sg->logged++;
	return 0;
}

/* Closes every writer; returns the first failure (e keeps its message). */
static int segments_close(struct segments *sg, struct err *e)
{
	int rc = 0;

	for (int k = 0; k < SEG_KINDS; k++) {
		if (sg->w[k]) {
			int crc = wal_writer_close(sg->w[k], rc ? NULL : e);

			rc = rc ? rc : crc;
		}
	}
	ZSTD_freeCCtx(sg->cctx);
	buf_free(&sg->frame);
	return rc;
}

/* One pass over the snapshot: counts (out == NULL) or writes and lists. */
static int pass(const char *dir, const char *out, struct plan *pl, struct segments *sg, struct err *e)
{
	struct wal_reader *r;
	struct wal_record rec;
	uint64_t index = 0;
	int rc;

	if ((rc = wal_reader_open_dir(&r, dir, NULL, e)))
		return rc;
	while ((rc = wal_reader_next(r, &rec, e)) == 1) {
		uint8_t type = rec_type(rec.data, rec.len);
		char name[4096] = "-";
		int eligible = rec.len <= pl->max_bytes, in_segments = 0;

		if (!out) {
			pl->eligible[type] += eligible;
			if (rec.len > pl->largest_len) {
				pl->largest = index;
				pl->largest_len = rec.len;
			}
			index++;
			continue;
		}
		if (eligible && chosen(pl, type, pl->seen[type]++)) {
			snprintf(name, sizeof(name), "%s/rec-%06" PRIu64, out, index);
			if (write_file(name, rec.data, rec.len)) {
				rc = err_set(e, SNAPARC_IO, "%s: cannot write", name);
				break;
			}
			pl->written[type]++;
			in_segments = sg && (sg->logged < SEGMENT_FIRST_RECORDS || pl->eligible[type] <= pl->max_records / 4);
		}
		if (sg && (in_segments || index == pl->largest) && (rc = segments_log(sg, rec.data, rec.len, e)))
			break;
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %zu 0x%02x %u %zu %s\n", index, rec.offset,
		       rec.end, rec.stored_len, rec.flags, type, rec.len, name);
		index++;
	}
	wal_reader_close(r);
	return rc;
}

int main(int argc, char **argv)
{
	struct plan pl = { .max_records = 200, .max_bytes = 65536 };
	struct segments segs = { 0 }, *sg = NULL;
	struct err e = { 0 };
	uint64_t total = 0;
	int rc;

	if (argc > 2 && !strcmp(argv[1], "--segments")) {
		sg = &segs;
		if (segments_open(sg, argv[2], &e)) {
			segments_close(sg, NULL);
			fprintf(stderr, "extract_records: %s\n", e.msg);
			return 1;
		}
		argv += 2;
		argc -= 2;
	}
	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: extract_records [--segments DIR] SNAPSHOT_DIR OUTDIR [MAX_RECORDS [MAX_BYTES]]\n");
		if (sg)
			segments_close(sg, NULL);
		return 2;
	}
	if (argc > 3)
		pl.max_records = strtoul(argv[3], NULL, 10);
	if (argc > 4)
		pl.max_bytes = strtoul(argv[4], NULL, 10);
	rc = pass(argv[1], NULL, &pl, NULL, &e);
	if (!rc) {
		plan_quotas(&pl);
		rc = pass(argv[1], argv[2], &pl, sg, &e);
	}
	if (sg) {
		int crc = segments_close(sg, rc ? NULL : &e);

		rc = rc ? rc : crc;
	}
	if (rc) {
		fprintf(stderr, "extract_records: %s\n", e.msg);
		return 1;
	}
	for (size_t t = 0; t < TYPES; t++) {
		if (pl.written[t])
			fprintf(stderr, "extract_records: type %zu: wrote %" PRIu64 " of %" PRIu64 " records\n",
				t, pl.written[t], pl.eligible[t]);
		total += pl.written[t];
	}
	fprintf(stderr, "extract_records: %" PRIu64 " records written to %s\n", total, argv[2]);
	return 0;
}
