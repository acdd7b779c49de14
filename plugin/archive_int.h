/* The archive's private parts, shared by its files. */
#ifndef SNAPARC_ARCHIVE_INT_H
#define SNAPARC_ARCHIVE_INT_H

#include <pthread.h>

#include "archive.h"
#include "sort.h"

struct archive_dict {
	uint32_t id;
	uint8_t *p;
	size_t len;
};

/* A segment mapped read-only as long as it was when first mapped (p NULL:
 * not mapped yet; len 0 with p set: mapping failed, read with pread). */
struct archive_map {
	uint8_t *p;
	size_t len;
};

struct archive {
	struct archive_opts opts;
	char path[4096];
	char segdir[4200];
	struct idx *idx;
	int lock_fd;
	int users_fd;                /* ARCHIVE/users, held shared while open (-1: none) */
	pthread_mutex_t mu;          /* guards the caches below */
	int *fds;                    /* read-only segment descriptors by index (0: not open) */
	size_t nfds;
	struct archive_map *maps;    /* segments mapped for chains of deltas, by index */
	size_t nmaps;
	struct archive_dict *dicts;
	size_t ndicts;
	struct idx_txn *rtxn;        /* a reset read transaction kept for reuse */
	int rtxn_busy;
	int shrinking;               /* the index file is being rewritten: none is kept */
};

/* Commit finds a series ref the snapshot has twice only once it has sorted
 * them: where(ctx, ref, e) then prefixes the message with where the second
 * record is, which the writer does not know. */
void archive_import_where_twice(struct archive_writer *w, void (*where)(void *ctx, uint64_t ref, struct err *e),
				void *ctx);

/* Takes the archive's writer lock (SNAPARC_BUSY, or waits with opts.wait). */
int archive_lock(struct archive *a, struct err *e);
void archive_unlock(struct archive *a);

/* Under the writer lock: when no other handle (of any process) has the
 * archive open, rewrites the index file without its free pages. *done says
 * whether it did. */
int archive_shrink_index(struct archive *a, int *done, struct err *e);

/* Under the writer lock: deletes segment files past the committed end (what
 * an interrupted writer left). */
int archive_cut(struct archive *a, struct err *e);
/* Under the writer lock: deletes the segments compaction retired once no
 * reader's transaction is older than their retirement, waiting up to
 * wait_ms; *pending counts those left for later. */
int archive_reap(struct archive *a, long wait_ms, uint64_t *deleted, uint64_t *pending, struct err *e);

int archive_read_txn(struct archive *a, struct idx_txn **out, struct err *e);
void archive_read_done(struct archive *a, struct idx_txn *t);
/* A read-only descriptor of a segment (owned by the archive), or a negative status. */
int archive_segment_fd(struct archive *a, uint32_t segment, struct err *e);
/* Where bytes [offset, offset + span) of a segment are in memory: 1 and *p
 * when they are inside its mapping (made on first use, as long as the file
 * was then, kept for the archive's life), 0 when they are not (read them
 * with pread), or a negative status. A mapped segment that someone cuts
 * shorter under a running reader gives SIGBUS: compaction and import never
 * cut what the index names. */
int archive_segment_map(struct archive *a, uint32_t segment, uint64_t offset, uint32_t span, const uint8_t **p,
			struct err *e);
/* A segment's whole mapping, as archive_segment_map() makes it: 1, *base
 * and *len (borrowed for the archive's life), 0 when it has none, or a
 * negative status. For a caller that reads many records of segments that
 * no longer change without taking the archive's lock each time. */
int archive_segment_mapping(struct archive *a, uint32_t segment, const uint8_t **base, size_t *len,
			    struct err *e);
/* A dictionary's bytes, cached for the archive's life. */
int archive_dict(struct archive *a, struct idx_txn *t, uint32_t id, const uint8_t **p, size_t *len,
		 struct err *e);
/* Deltas a read follows at most; compaction makes chains of a few. */
#define ARCHIVE_CHAIN_MAX 16

/* Turns a stored payload back into the record Prometheus wrote: flags 0
 * gives p as it is, WAL_LZ4 decompresses it into out with its dictionary
 * (or, for a delta, with its base record, read first), other bits are
 * corrupt. *rec and *rec_len receive the record; errors are
 * "reason" for the caller to prefix with where. */
int archive_unpack(struct archive *a, struct idx_txn *t, uint8_t flags, const uint8_t *p, size_t len,
		   struct buf *out, const uint8_t **rec, size_t *rec_len, struct err *e);

/* A series' record from loc, decoded and checked to be ref loc->ref; then
 * its tombstones and exemplars (archive_read_side, once it is wanted). */
int archive_read_record(struct archive *a, struct idx_txn *t, uint32_t snap, const struct idx_loc *loc,
			struct archive_series *out, struct err *e);
int archive_read_side(struct archive *a, struct idx_txn *t, struct archive_series *out, struct err *e);

/* Replaces rec, the record stored at loc, by the record loc's cut makes of
 * it (codec/xordelta.h), swapping buffers with scratch; errors name where. */
int archive_apply_cut(struct archive *a, const struct idx_loc *loc, struct buf *rec, struct buf *scratch,
		      struct err *e);

/* Reads the record stored at loc (its bytes into span, fragments joined in
 * scratch) and decompresses it into out. */
int archive_load(struct archive *a, struct idx_txn *t, const struct idx_loc *loc, struct buf *out,
		 struct buf *span, struct buf *scratch, size_t *stored_len, struct err *e);
/* archive_load(), also handing out the stored payload (in span or scratch)
 * and its compression flags. */
int archive_load_stored(struct archive *a, struct idx_txn *t, const struct idx_loc *loc, struct buf *out,
			struct buf *span, struct buf *scratch, const uint8_t **stored, size_t *stored_len,
			uint8_t *flags, struct err *e);
/* Deletes the segment files after `last`. */
int archive_remove_segments_after(struct archive *a, uint32_t last, struct err *e);

#endif
