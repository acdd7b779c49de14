/*
 * Importing a snapshot directory with two threads (pipe.h): one reads the
 * segments (read, CRC-32C, Snappy or zstd) into batches of records and,
 * once the archive's dictionary is known, compresses them; the caller's
 * thread validates and stores them.
 */
#include "archive_int.h"

#include <inttypes.h>

#include "lz4dict.h"
#include "pipe.h"
#include "wal.h"

struct import_job {
	struct wal_reader *r;
	struct archive_writer *w;
	const char *dir;
	archive_progress_fn progress;
	void *ctx;
	uint64_t done;          /* bytes of the source read, over all its segments */
	/* The reading thread's compressor, once the dictionary is known: from
	 * the start, or handed over by the writing thread when its training
	 * ends (atomic: the reader takes it between batches). */
	struct lz4dict_enc *enc;
	/* The reading thread's alone, written record by record: on a cache
	 * line of its own, or every record moves the writer's fields' line
	 * from core to core (3% of an import's cycles, measured with perf). */
	_Alignas(64) struct buf packed;
};

/* Storing a record, the writer prefetches what the postings will read for
 * the record this many ahead (postings_prefetch()'s stages 0, 1, 2 at
 * 3, 2, 1 times it): each stage's loads have arrived by the next. */
#define PREFETCH_STEP 2

static int fill(void *ctx, struct pipe_batch *b, struct err *e)
{
	struct import_job *j = ctx;
	struct lz4dict_enc *enc = __atomic_load_n(&j->enc, __ATOMIC_ACQUIRE);
	uint64_t hashes[ARCHIVE_HASHED_LABELS];
	struct wal_record rec;
	int rc = 1;

	while (b->data.len < PIPE_BATCH_BYTES && (rc = wal_reader_next(j->r, &rec, e)) == 1) {
		struct pipe_rec meta = { .offset = rec.offset, .end = rec.end, .segment = rec.segment };
		struct archive_series_info s;
		int c;

		/* what the index takes of a series, the label hash too (a record
		 * that does not decode is the writer's to report) */
		if (archive_import_series(&s, hashes, rec.data, rec.len)) {
			meta.has_series = 1;
			meta.has_chunk = (uint8_t)s.has_chunk;
			meta.labels_off = (uint32_t)(s.labels.raw - rec.data);
			meta.labels_len = (uint32_t)s.labels.raw_len;
			meta.labels_count = s.labels.count;
			meta.chunk_at = (uint32_t)s.chunk_at;
			meta.chunk_len = (uint32_t)s.chunk_len;
			meta.ref = s.ref;
			meta.label_hash = s.label_hash;
			meta.mint = s.mint;
			meta.maxt = s.maxt;
		}
		if ((rc = pipe_batch_add(b, rec.data, rec.len, &meta, e)))
			return rc;
		if (meta.has_series && s.label_hashes && (rc = pipe_batch_add_hashes(b, hashes, s.labels.count, e)))
			return rc;
		/* the stored form too, LZ4 being the largest cost, unless the
		 * writing thread is waiting for records: then it compresses
		 * them itself, and the two threads share the work */
		if (!enc || pipe_queued(b) < 2)
			continue;
		buf_reset(&j->packed);
		c = meta.has_series ? lz4dict_compress_series(enc, rec.data, rec.len, s.chunk_at, s.chunk_len, &j->packed)
				    : lz4dict_compress(enc, rec.data, rec.len, &j->packed);
		if (c < 0)
			return err_set(e, SNAPARC_NOMEM, "out of memory compressing a record");
		rc = c ? pipe_batch_add_alt(b, j->packed.p, j->packed.len, WAL_LZ4, e)
		       : pipe_batch_add_alt(b, NULL, 0, 0, e);
		if (rc)
			return rc;
	}
	return b->data.len >= PIPE_BATCH_BYTES ? 1 : rc;
}

/* Record i of the batch as archive_import_series() found it. */
static void series_of(const struct pipe_batch *b, size_t i, struct archive_series_info *s)
{
	const struct pipe_rec *r = (const struct pipe_rec *)b->recs.p + i;
	const uint8_t *rec = b->data.p + r->off;

	*s = (struct archive_series_info){
		.ref = r->ref, .label_hash = r->label_hash, .mint = r->mint, .maxt = r->maxt,
		.has_chunk = r->has_chunk, .labels = { rec + r->labels_off, r->labels_len, r->labels_count },
		.label_hashes = r->has_hashes ? (const uint64_t *)(const void *)(b->data.p + r->hashes_off) : NULL,
		.chunk_at = r->chunk_at, .chunk_len = r->chunk_len
	};
}

static void prefetch(struct import_job *j, const struct pipe_batch *b, size_t n, size_t i, int stage)
{
	const struct pipe_rec *r = (const struct pipe_rec *)b->recs.p + i;

	if (i < n && r->has_hashes)
		archive_import_prefetch(j->w, (const uint64_t *)(const void *)(b->data.p + r->hashes_off),
					r->labels_count, stage);
}

static int drain(void *ctx, const struct pipe_batch *b, struct err *e)
{
	struct import_job *j = ctx;
	const struct pipe_rec *r = (const void *)b->recs.p;
	size_t n = b->recs.len / sizeof(*r);
	uint64_t done = j->done;   /* j's line is the reader's too: written once a batch */
	int rc;

	/* the batch's first records, ahead of the others */
	for (int stage = 0; stage < 3; stage++)
		for (size_t i = 0; i < (size_t)(3 - stage) * PREFETCH_STEP; i++)
			prefetch(j, b, n, i, stage);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *rec = b->data.p + r[i].off;
		struct archive_series_info s, *series = NULL;

		/* the hashes themselves, which the reading thread wrote */
		if (i + 4 * PREFETCH_STEP < n && r[i + 4 * PREFETCH_STEP].has_hashes) {
			const uint8_t *h = b->data.p + r[i + 4 * PREFETCH_STEP].hashes_off;

			__builtin_prefetch(h);
			__builtin_prefetch(h + r[i + 4 * PREFETCH_STEP].labels_count * sizeof(uint64_t) - 1);
		}
		prefetch(j, b, n, i + 3 * PREFETCH_STEP, 0);
		prefetch(j, b, n, i + 2 * PREFETCH_STEP, 1);
		prefetch(j, b, n, i + PREFETCH_STEP, 2);
		if (r[i].has_series) {
			series_of(b, i, &s);
			series = &s;
		}
		if (!r[i].has_alt)
			rc = archive_import_put_stored(j->w, rec, r[i].len, NULL, 0, 0, series, e);
		else if (r[i].alt_flags)
			rc = archive_import_put_stored(j->w, rec, r[i].len, b->data.p + r[i].alt_off, r[i].alt_len,
						       r[i].alt_flags, series, e);
		else
			rc = archive_import_put_stored(j->w, rec, r[i].len, rec, r[i].len, 0, series, e);
		if (rc)
			return err_prefix(e, "%s/%08u: offset %" PRIu64 ": record", j->dir, r[i].segment, r[i].offset);
		done += r[i].end - r[i].offset;
	}
	j->done = done;
	if (j->progress && n)
		j->progress(j->ctx, j->done);
	if (!__atomic_load_n(&j->enc, __ATOMIC_RELAXED)) {
		/* the dictionary is trained: the reader compresses from its next batch */
		struct lz4dict_enc *enc = archive_import_compressor(j->w, NULL);

		if (enc)
			__atomic_store_n(&j->enc, enc, __ATOMIC_RELEASE);
	}
	return 0;
}

/* Names the record where ref comes a second time, as drain() names a bad
 * record: the commit that found it knows only the ref. Reads the source
 * again; leaves the message as it is if that fails. */
static void where_twice(void *ctx, uint64_t ref, struct err *e)
{
	const char *dir = ctx;
	struct wal_reader *r;
	struct wal_record rec;
	struct rec_series s;
	struct err ignored;
	int seen = 0;

	if (wal_reader_open_dir(&r, dir, NULL, &ignored))
		return;
	while (wal_reader_next(r, &rec, &ignored) == 1) {
		if (rec_type(rec.data, rec.len) != REC_SERIES || rec_series_decode(&s, rec.data, rec.len, &ignored) ||
		    s.ref != ref || !seen++)
			continue;
		err_prefix(e, "%s/%08u: offset %" PRIu64 ": record", dir, rec.segment, rec.offset);
		break;
	}
	wal_reader_close(r);
}

int archive_import_dir(struct archive *a, const char *dir, const struct archive_import_info *info,
		       archive_progress_fn progress, void *ctx, struct idx_snapshot *snap, struct err *e)
{
	struct import_job j = { .dir = dir, .progress = progress, .ctx = ctx };
	int rc;

	if ((rc = wal_reader_open_dir(&j.r, dir, NULL, e)))
		return rc;
	if ((rc = archive_import_begin(a, info, &j.w, e))) {
		wal_reader_close(j.r);
		return rc;
	}
	archive_import_where_twice(j.w, where_twice, (void *)dir);
	j.enc = archive_import_compressor(j.w, NULL);
	rc = pipe_run(fill, &j, drain, &j, e);
	wal_reader_close(j.r);
	lz4dict_enc_free(j.enc);
	buf_free(&j.packed);
	if (rc) {
		archive_import_abort(j.w);
		return rc;
	}
	return archive_import_commit(j.w, snap, e);
}
