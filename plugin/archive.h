/*
 * archive: the snaparc archive engine (DESIGN.md "The archive on disk").
 *
 *   ARCHIVE/index/      the LMDB index (index/idx.h)
 *   ARCHIVE/segments/   WAL-format segments holding the stored records
 *   ARCHIVE/lock        held (flock) by the one writer
 *   ARCHIVE/users       held shared (flock) by every open handle
 *
 * A stored record is a Prometheus snapshot record, LZ4-compressed against the
 * archive's dictionary (lz4dict.h; the fragments carry WAL_LZ4) or plain when
 * that does not shrink it. Import appends a snapshot's records to the
 * segments, syncs them, then commits the index in one LMDB transaction that
 * records the new committed end and makes the snapshot visible. A writer
 * first cuts everything past the committed end: what a crashed import left.
 *
 * A snapshot's stored records lie together in the segments, in the order they
 * came, followed by one record per series that has exemplars: an exemplars
 * record of that series' exemplars only, with the archive's own type byte
 * ARCHIVE_SERIES_EXEMPLARS, so that a lookup reads just those and a restore
 * of the whole snapshot can tell them from the snapshot's own records.
 */

#define ARCHIVE_SERIES_EXEMPLARS 0x83
#ifndef SNAPARC_ARCHIVE_H
#define SNAPARC_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"
#include "idx.h"
#include "record.h"

struct archive;
struct archive_writer;

struct archive_opts {
	int create;              /* make the archive if the directory is empty or missing */
	int read_only;
	int wait;                /* a writer waits for another writer instead of failing */
	int sync;                /* fdatasync segments before the index commits (default on) */
	uint64_t map_size;       /* initial LMDB map size; 0 for the default */
	uint64_t segment_size;   /* 0 for 128 MiB */
	uint64_t import_mem;     /* an import's memory for sorting its series, label hashes and
				  * label postings, past which they go through temporary files in
				  * the archive's directory (about 60 bytes a series); 0 for 40 MiB */
};

/* Opens the archive at path. Without create, a directory that is not an
 * archive is SNAPARC_NOT_FOUND and is left untouched. Close with archive_close(). */
int archive_open(struct archive **out, const char *path, const struct archive_opts *opts, struct err *e);
void archive_close(struct archive *a);

/* ---- import ---- */

struct archive_import_info {
	const char *name;        /* catalog name (chunk_snapshot.NNNNNN.MMMMMMMMMM) */
	uint64_t source_bytes;   /* size of the source snapshot's segments, if known */
};

/* Begins a snapshot: takes the writer lock (SNAPARC_BUSY if another process
 * holds it, unless opts.wait), cuts what a crashed writer left. */
int archive_import_begin(struct archive *a, const struct archive_import_info *info,
			 struct archive_writer **out, struct err *e);
/* Adds one record (series, tombstones or exemplars, as Prometheus wrote it).
 * It is validated; a bad record fails the import (a ref met twice fails the
 * commit). */
int archive_import_put(struct archive_writer *w, const uint8_t *rec, size_t len, struct err *e);
/* Makes the snapshot visible; *snap receives its id. Frees w in any case. */
int archive_import_commit(struct archive_writer *w, struct idx_snapshot *snap, struct err *e);
/* Drops everything put since begin. Frees w. */
void archive_import_abort(struct archive_writer *w);

/* A compressor with the writer's dictionary, for another thread to make
 * records' stored form (free with lz4dict_enc_free), or NULL while this
 * import is still choosing the dictionary. */
struct lz4dict_enc;
struct lz4dict_enc *archive_import_compressor(struct archive_writer *w, struct err *e);
/* What the index takes of a series record, found on another thread by
 * archive_import_series(): its fields (labels borrowed from the record) and
 * its label hash (rec_labels_hash()). */
struct archive_series_info {
	uint64_t ref, label_hash;
	int64_t mint, maxt;
	int has_chunk;
	struct rec_labels labels;
	/* each label's hash as the postings look it up (labels.count of them),
	 * or NULL: the writer hashes them */
	const uint64_t *label_hashes;
	/* the XOR chunk's bytes in the record (chunk_at 0: none), for
	 * lz4dict_compress_series() */
	size_t chunk_at, chunk_len;
};
/* Up to this many labels a series are hashed by archive_import_series(). */
#define ARCHIVE_HASHED_LABELS 64
/* Fills *out when rec is a series record that decodes and can be indexed:
 * 1; 0 otherwise, without a message (archive_import_put() gives it). With
 * room for ARCHIVE_HASHED_LABELS in hashes (or NULL), the labels' hashes
 * for the postings go there too (out->label_hashes) when it can. */
int archive_import_series(struct archive_series_info *out, uint64_t *hashes, const uint8_t *rec, size_t len);
/* Brings into cache what storing a series will read of the writer's tables
 * (postings_prefetch()), given its n labels' hashes (label_hashes), the
 * stages in turn a few series ahead. */
void archive_import_prefetch(struct archive_writer *w, const uint64_t *label_hashes, size_t n, int stage);
/* archive_import_put() with, unless stored is NULL, the record's stored form
 * made by such a compressor (WAL_LZ4 and the payload, or flags 0 to store it
 * plain); and, unless series is NULL, what archive_import_series() found of
 * it. */
int archive_import_put_stored(struct archive_writer *w, const uint8_t *rec, size_t len, const uint8_t *stored,
			      size_t stored_len, uint8_t flags, const struct archive_series_info *series,
			      struct err *e);

/* Called now and then with the bytes of the source read so far. */
typedef void (*archive_progress_fn)(void *ctx, uint64_t done);

/*
 * Imports a snapshot directory of WAL segments as one snapshot: begin, every
 * record, commit, reading on a second thread. Errors name the segment and
 * offset of the record; nothing of the snapshot is kept after one.
 */
int archive_import_dir(struct archive *a, const char *dir, const struct archive_import_info *info,
		       archive_progress_fn progress, void *ctx, struct idx_snapshot *snap, struct err *e);

/* ---- reading ---- */

/* Resolves "latest", a numeric id or a name to a catalog entry. */
int archive_snapshot_find(struct archive *a, const char *spec, struct idx_snapshot *out, struct err *e);
/* Snapshots in id order: first call with after = 0. SNAPARC_NOT_FOUND past the last. */
int archive_snapshot_next(struct archive *a, uint32_t after, struct idx_snapshot *out, struct err *e);

struct archive_series {
	uint32_t snapshot;
	struct idx_loc loc;          /* where the record is stored */
	size_t stored_len;           /* its stored payload */
	struct buf record;           /* the record as Prometheus wrote it */
	struct rec_series series;    /* decoded; points into record */
	struct buf tombstones;       /* pairs of varint mint, varint maxt */
	struct buf exemplars;        /* an exemplars record of this series' exemplars, or empty */
	struct buf span, scratch;
};

/* Reads series ref of snapshot snap into out (whose buffers it reuses; free
 * with archive_series_free). SNAPARC_NOT_FOUND, or SNAPARC_CORRUPT naming the
 * segment and offset when the stored record is damaged. */
int archive_read_ref(struct archive *a, uint32_t snap, uint64_t ref, struct archive_series *out,
		     struct err *e);
/* Reads the series with exactly these labels (sorted by name). */
int archive_read_labels(struct archive *a, uint32_t snap, const struct rec_label *ls, size_t n,
			struct archive_series *out, struct err *e);
void archive_series_free(struct archive_series *s);

struct select;

/* Called for each series selected, read whole (valid during the call); a
 * non-zero return stops the selection and is returned. */
typedef int (*archive_series_fn)(void *ctx, const struct archive_series *s);

/*
 * The refs (uint64_t, ascending, into refs) of the series of snapshot snap
 * that the selector matches, answered from the label postings and checked
 * against each series' stored labels; with fn, each is also handed over as
 * read for that check (no second read), in ref order.
 */
int archive_select(struct archive *a, uint32_t snap, const struct select *s, struct buf *refs,
		   archive_series_fn fn, void *ctx, struct err *e);

/* Called for each archived snapshot holding the series, newest first; a
 * non-zero return stops and is returned. */
typedef int (*archive_history_fn)(void *ctx, const struct idx_snapshot *snap, const struct archive_series *s);

/* One series (these exact labels, sorted) through every archived snapshot that
 * has it, newest first: refs change between restarts, label sets do not. */
int archive_history(struct archive *a, const struct rec_label *ls, size_t n, archive_history_fn fn, void *ctx,
		    struct err *e);

/* ---- restore ---- */

struct archive_restore_opts {
	int compression;          /* enum wal_compression; Snappy (as Prometheus 2.42) by default */
	int overwrite;            /* replace an existing directory (only once the new one is complete) */
	uint64_t segment_size;    /* 0 for 128 MiB */
};

struct archive_restore_stats {
	uint64_t series, records;
};

/*
 * Writes snapshot `snapshot` ("latest", an id or a name) as a Prometheus
 * chunk snapshot directory at out: the whole snapshot when refs is NULL
 * (every record byte-identical to what was imported), else the n series
 * refs (sorted) with their tombstones and exemplars. opts may be NULL.
 * Nothing is left at out, or in a temporary beside it, on failure;
 * SNAPARC_EXISTS if out exists and opts->overwrite is not set.
 */
int archive_restore(struct archive *a, const char *snapshot, const uint64_t *refs, size_t n,
		    const char *out, const struct archive_restore_opts *opts, struct archive_restore_stats *st,
		    struct err *e);

/* Removes a snapshot from the catalog and the index, under the writer lock. */
int archive_snapshot_remove(struct archive *a, const char *spec, struct err *e);

/* Called for each problem verify finds; non-zero stops it. */
typedef int (*archive_problem_fn)(void *ctx, int status, const char *message);
typedef void (*archive_verify_progress_fn)(void *ctx, uint64_t done, uint64_t total);

enum { ARCHIVE_VERIFY_DEEP = 1 };

/*
 * Reads every value of the index (checksums) and every stored record of
 * every snapshot: fragments and CRCs, decompression, decoding, and the index
 * entry of each series, which must point at it; the catalog's series count
 * against the records and the index's entries. ARCHIVE_VERIFY_DEEP also
 * decodes every sample of every XOR chunk (count, first and last time, last
 * value as the record keeps them) and finds each series through its label
 * hash and each of its labels' postings. Returns 0 when sound,
 * SNAPARC_CORRUPT when anything was reported, or another error that stopped it.
 */
int archive_verify(struct archive *a, unsigned flags, archive_problem_fn fn, void *ctx,
		   archive_verify_progress_fn progress, void *progress_ctx, struct err *e);

/* ---- compaction ---- */

struct archive_compact_opts {
	uint32_t keep_last;          /* keep at most this many newest snapshots; 0: no limit */
	int64_t keep_within_ms;      /* keep snapshots whose time (maxt, else import time) is within
				      * this of the newest one's; 0: no limit */
	int dry_run;                 /* count what would be reclaimed; change nothing */
	unsigned max_chain;          /* deltas a read may follow; 0 for the default (6) */
	int no_delta;                /* store repeated records once, but no deltas */
	int apply_tombstones;        /* take the deleted samples out of the head chunks */
};

struct archive_compact_stats {
	uint32_t snapshots_kept, snapshots_dropped;
	uint64_t bytes_before, bytes_after;     /* segments and index, as du counts them */
	uint64_t input_bytes;                   /* stored bytes read (the kept snapshots') */
	uint64_t output_bytes;                  /* stored bytes written */
	uint64_t records;                       /* records of the kept snapshots */
	uint64_t records_full;                  /* stored whole (LZ4 with the dictionary, or plain) */
	uint64_t records_delta;                 /* stored as a delta against another record */
	uint64_t records_cut;                   /* a later snapshot's record cut short: nothing
						 * stored (codec/xordelta.h) */
	uint64_t records_shared;                /* identical to a stored one: stored once */
	uint64_t chunks_tombstoned;             /* head chunks that lost samples to tombstones */
	uint64_t chunks_dropped;                /* of those, chunks that lost every sample */
	uint64_t segments_deleted;              /* old segment files deleted */
	uint64_t segments_pending;              /* old segment files a reader may still need */
	uint32_t labels_shared;                 /* snapshots sharing an earlier one's label index */
	int index_shrunk;                       /* the index file was rewritten without free pages
						 * (only when no other handle had the archive open) */
};

/* Called now and then with the stored bytes processed and the total. */
typedef void (*archive_compact_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/*
 * Compacts the archive under the writer lock: drops the snapshots retention
 * does not keep, rewrites the kept ones' records into new segments (each
 * snapshot's together, sorted by ref; a record identical to the same series'
 * in the previous kept snapshot stored once; others as a delta against it,
 * chains bounded by max_chain), switches the index to them in one LMDB
 * transaction and then deletes the old segments once no reader can reach
 * them (old ones still in use are deleted by a later writer). A crash at any
 * point leaves the archive as it was before or after. opts may be NULL.
 */
int archive_compact(struct archive *a, const struct archive_compact_opts *opts, struct archive_compact_stats *st,
		    archive_compact_progress_fn progress, void *ctx, struct err *e);

struct archive_stat {
	uint64_t index_bytes, segment_bytes, segments;
};
int archive_stat(struct archive *a, struct archive_stat *out, struct err *e);

#endif
