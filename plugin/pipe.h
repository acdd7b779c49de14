/*
 * pipe: work split over two threads in batches. A second thread fills
 * batches of records (reading, decompressing, compressing); the caller's
 * thread drains them in order (writing, indexing). QUEUE batches of about
 * PIPE_BATCH_BYTES each are all the memory it holds.
 */
#ifndef SNAPARC_PIPE_H
#define SNAPARC_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

#define PIPE_BATCH_BYTES (1u << 20)

struct pipe_rec {
	size_t off, len;        /* in the batch's data */
	uint64_t offset, end;   /* where it came from, for messages and progress */
	uint32_t segment;
	uint8_t flags;          /* compression bits of the bytes, if any */
	uint8_t has_alt;        /* a second form of the record follows it (see alt_*) */
	size_t alt_off, alt_len;
	uint8_t alt_flags;
	/* a series record the filling thread decoded (import): its fields,
	 * its labels as an offset into the record */
	uint8_t has_series, has_chunk, has_hashes;
	uint32_t labels_off, labels_len, labels_count;
	size_t hashes_off;      /* labels_count uint64_t, 8-byte aligned in the batch's data */
	uint32_t chunk_at, chunk_len;   /* the XOR chunk in the record (chunk_at 0: none) */
	uint64_t ref, label_hash;
	int64_t mint, maxt;
};

struct pipe_batch {
	struct buf data;        /* records end to end */
	struct buf recs;        /* struct pipe_rec */
	const unsigned *queued; /* the pipe's count of filled batches (pipe_queued()) */
};

/* While filling b: the batches filled and not yet drained, the one being
 * drained included. 0 or 1: the draining thread is waiting or about to,
 * and the filler may leave it work it could do itself (compressing, say);
 * more: the draining thread is behind. */
static inline unsigned pipe_queued(const struct pipe_batch *b)
{
	return __atomic_load_n(b->queued, __ATOMIC_RELAXED);
}

/* Appends a record to a batch; SNAPARC_NOMEM with a message on failure. */
int pipe_batch_add(struct pipe_batch *b, const void *p, size_t len, const struct pipe_rec *meta, struct err *e);
/* Adds a second form of the last record added (its compressed form, say). */
int pipe_batch_add_alt(struct pipe_batch *b, const void *p, size_t len, uint8_t flags, struct err *e);
/* Adds the last record's n label hashes (has_hashes, hashes_off). */
int pipe_batch_add_hashes(struct pipe_batch *b, const uint64_t *hashes, size_t n, struct err *e);

/* Fills an empty batch on the second thread: 1 when more may follow, 0 at
 * the end (the batch may hold the last records), negative on error. */
typedef int (*pipe_fill_fn)(void *ctx, struct pipe_batch *b, struct err *e);
/* Drains a batch on the caller's thread; non-zero stops the pipe. */
typedef int (*pipe_drain_fn)(void *ctx, const struct pipe_batch *b, struct err *e);

/* Runs fill and drain until the end or the first error, which it returns
 * (with its message in e, from whichever side failed). */
int pipe_run(pipe_fill_fn fill, void *fill_ctx, pipe_drain_fn drain, void *drain_ctx, struct err *e);

#endif
