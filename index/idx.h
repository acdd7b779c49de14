/*
 * idx: the archive's LMDB index. The only code that includes lmdb.h.
 *
 * It stores locations and metadata, never record bytes, in these named
 * databases (keys big-endian so they sort; layouts at the top of idx.c):
 *
 *   meta        format version, committed end of the segments, dictionaries
 *   snapshots   snapshot id -> catalog entry (name, times, counts, sizes, extent)
 *   names       snapshot name -> snapshot id
 *   series      (snapshot, first ref of a block) -> up to 64 (ref, segment, offset, span)
 *   hashes      (snapshot, hash prefix, block) -> up to 64 (hash prefix, ref)
 *   tombstones  (snapshot, ref) -> the series' deleted intervals
 *   exemplars   (snapshot, ref) -> where the series' exemplars are stored
 *   others      (snapshot, segment, offset) -> a non-series record (tombstones, exemplars)
 *   postings    (snapshot, name, first value of a block) -> values (front-coded)
 *               and the refs of the series with each
 *
 * Series are found with one B-tree descent and a scan of one small block,
 * and cost about 14 bytes of index each (3 once compaction has laid a
 * snapshot's records out in ref order). Snapshots whose series have the same
 * refs and labels share one label index (hashes and postings).
 */
#ifndef SNAPARC_IDX_H
#define SNAPARC_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define IDX_FORMAT 4          /* written once an index holds a cut */
#define IDX_FORMAT_OLDEST 3   /* format 3: the same without cuts */
#define IDX_NAME_MAX 255

enum idx_flags {
	IDX_CREATE = 1,   /* make a new index if there is none */
	IDX_RDONLY = 2,   /* open read-only (also works on a read-only directory) */
};

struct idx;
struct idx_txn;

struct idx_opts {
	unsigned flags;
	uint64_t map_size;   /* initial map size; 0 for the default (1 GiB). It grows as needed. */
};

/* Opens (or with IDX_CREATE makes) the LMDB environment in dir. A directory
 * without one is SNAPARC_NOT_FOUND. Free with idx_close(). */
int idx_open(struct idx **out, const char *dir, const struct idx_opts *opts, struct err *e);
void idx_close(struct idx *x);

/* Rewrites the data file without its free pages (LMDB's files never shrink
 * by themselves) and reopens it. Only when no other process has the index
 * open (the caller makes sure) and this one runs no transaction. */
int idx_shrink(struct idx *x, struct err *e);

/* Bytes the environment's data file takes. */
uint64_t idx_file_bytes(const struct idx *x);

/* Transactions. A read transaction sees one committed state; any number run
 * at once, in any thread (not the same one in two threads at a time). There
 * is one write transaction at a time per environment, across processes. */
int idx_read_begin(struct idx *x, struct idx_txn **out, struct err *e);
int idx_write_begin(struct idx *x, struct idx_txn **out, struct err *e);
/* Ends a read transaction, keeping it for idx_read_renew(). */
void idx_read_reset(struct idx_txn *t);
int idx_read_renew(struct idx_txn *t, struct err *e);
/* Commits; on SNAPARC_NOMEM because the map is full the transaction is gone,
 * the map has been grown, and the caller may redo its writes in a new one. */
int idx_commit(struct idx_txn *t, struct err *e);
void idx_abort(struct idx_txn *t);

/* ---- meta ---- */

struct idx_pos {
	uint32_t segment;
	uint64_t offset;
};

/* The committed end of the segments ({0, 0} in a new archive). */
int idx_end_get(struct idx_txn *t, struct idx_pos *out, struct err *e);
int idx_end_put(struct idx_txn *t, const struct idx_pos *end, struct err *e);
/* The first segment the index may point into (0 in a new archive); those
 * before it are no longer used. */
int idx_live_get(struct idx_txn *t, uint32_t *first, struct err *e);
int idx_live_put(struct idx_txn *t, uint32_t first, struct err *e);

/* Segments [first, end) that are no longer used since write transaction txn
 * committed, to be deleted once no reader is older (first == end: none). */
struct idx_retired {
	uint32_t first, end;
	uint64_t txn;
};
int idx_retired_get(struct idx_txn *t, struct idx_retired *out, struct err *e);
int idx_retired_put(struct idx_txn *t, const struct idx_retired *r, struct err *e);

/* The id a write transaction commits as; readers that begin after the commit
 * see it or a later one. */
uint64_t idx_txn_id(const struct idx_txn *t);
/* The oldest transaction id that a live reader (of any process) still
 * holds, UINT64_MAX when there is none; readers of dead processes are
 * cleared first. */
int idx_oldest_reader(struct idx *x, uint64_t *txn, struct err *e);

/* Dictionaries by id (ids start at 1); the bytes are borrowed until the
 * transaction ends. */
int idx_dict_get(struct idx_txn *t, uint32_t id, const uint8_t **p, size_t *len, struct err *e);
int idx_dict_put(struct idx_txn *t, uint32_t id, const uint8_t *p, size_t len, struct err *e);
/* The highest dictionary id, 0 when there is none. */
int idx_dict_last(struct idx_txn *t, uint32_t *id, struct err *e);

/* ---- catalog ---- */

struct idx_snapshot {
	uint32_t id;
	char name[IDX_NAME_MAX + 1];
	int64_t imported_ms;        /* wall clock at import */
	int64_t mint, maxt;         /* over the head chunks; 0 when there is none */
	uint64_t series, tombstones, exemplars, records;
	uint64_t source_bytes;      /* the imported snapshot's segment files */
	uint64_t raw_bytes;         /* its records, decoded */
	uint64_t stored_bytes;      /* what the archive stores for them, with fragment headers */
	uint32_t dict_id;
	uint32_t flags;             /* IDX_SNAP_* */
	uint32_t labels;            /* the snapshot whose label index (hashes, postings) serves it */
	struct idx_pos start, end;  /* its records lie in [start, end) of the segments */
};

enum {
	/* Laid out by compaction: its own records in [start, end), series in ref
	 * order, then the others; some of its entries point at records of
	 * earlier snapshots, which it shares. */
	IDX_SNAP_COMPACTED = 1,
};

int idx_snapshot_put(struct idx_txn *t, const struct idx_snapshot *s, struct err *e);
int idx_snapshot_get(struct idx_txn *t, uint32_t id, struct idx_snapshot *out, struct err *e);
int idx_snapshot_by_name(struct idx_txn *t, const char *name, struct idx_snapshot *out, struct err *e);
/* The snapshot with the highest id; SNAPARC_NOT_FOUND when there is none. */
int idx_snapshot_last(struct idx_txn *t, struct idx_snapshot *out, struct err *e);
/* The first snapshot with an id above `after`; SNAPARC_NOT_FOUND past the last. */
int idx_snapshot_next(struct idx_txn *t, uint32_t after, struct idx_snapshot *out, struct err *e);
/* The last snapshot with an id below `before`; SNAPARC_NOT_FOUND before the first. */
int idx_snapshot_prev(struct idx_txn *t, uint32_t before, struct idx_snapshot *out, struct err *e);

/* *used: whether a snapshot other than `except` (0: none) is served by the
 * label index of snapshot owner. */
int idx_labels_used(struct idx_txn *t, uint32_t owner, uint32_t except, int *used, struct err *e);

/* Rewrites the catalog entry of an existing snapshot (same id and name). */
int idx_snapshot_update(struct idx_txn *t, const struct idx_snapshot *s, struct err *e);

/* Removes snapshot id: its catalog entry, name and every index entry of it
 * (the segments' bytes stay until compaction rewrites them); its label index
 * stays while another snapshot shares it. */
int idx_snapshot_remove(struct idx_txn *t, uint32_t id, struct err *e);

enum {
	IDX_CLEAR_SERIES = 1,      /* series table */
	IDX_CLEAR_EXEMPLARS = 2,   /* exemplar locations */
	IDX_CLEAR_OTHERS = 4,      /* other records */
	IDX_CLEAR_LABELS = 8,      /* its own label index (hashes, postings) */
};
/* Deletes some of snapshot id's index entries, to write them anew. */
int idx_snapshot_clear(struct idx_txn *t, uint32_t id, unsigned what, struct err *e);

/* ---- series ---- */

struct idx_loc {
	uint64_t ref;       /* first: the import sorts on it */
	uint64_t offset;    /* of the record's first fragment header */
	uint32_t segment;
	uint32_t span;      /* bytes from there to the end of its last fragment */
	/* 0: the series' record is the one stored there; else it is that
	 * record cut to its first `cut` samples (codec/xordelta.h) */
	uint32_t cut;
};

struct idx_hash {
	uint64_t hash;      /* the label hash; the index keeps its top 32 bits */
	uint64_t ref;
};

/* Entries a block of the series and hash tables holds. */
#define IDX_BLOCK_ENTRIES 64

/* Writes a snapshot's series table; locs sorted by ref, refs unique. A table
 * may come in several calls, in order, each but the last a multiple of
 * IDX_BLOCK_ENTRIES long: the blocks are then those of one call. */
int idx_series_put(struct idx_txn *t, uint32_t snap, const struct idx_loc *locs, size_t n,
		   struct err *e);
/* Writes its hash table; ents sorted by hash. Its blocks are numbered from
 * first_block: a table written in several calls as above passes each the
 * number of blocks the calls before it wrote. */
int idx_hashes_put(struct idx_txn *t, uint32_t snap, uint32_t first_block, const struct idx_hash *ents, size_t n,
		   struct err *e);
int idx_series_get(struct idx_txn *t, uint32_t snap, uint64_t ref, struct idx_loc *out, struct err *e);
/* A snapshot's series in ref order. */
struct idx_series_iter;
int idx_series_iter_open(struct idx_txn *t, uint32_t snap, struct idx_series_iter **out, struct err *e);
/* 1 and *out: the next series; 0 past the last; or a negative status. */
int idx_series_iter_next(struct idx_series_iter *it, struct idx_loc *out, struct err *e);
void idx_series_iter_close(struct idx_series_iter *it);

/* Refs whose label hash has the same top 32 bits as hash (candidates: the
 * caller compares labels). Up to cap in refs; *n is how many there are. */
int idx_hash_find(struct idx_txn *t, uint32_t snap, uint64_t hash, uint64_t *refs, size_t cap,
		  size_t *n, struct err *e);

/* ---- label postings: which series of a snapshot have name=value ---- */

/* Values longer than this are kept as their first IDX_POSTING_VALUE_MAX
 * bytes and the XXH64 (seed 0) of the whole value. */
#define IDX_POSTING_VALUE_MAX 128

struct idx_posting {
	const char *value;
	size_t len;
	const uint8_t *list;    /* its refs, sorted and unique, encoded as idx_postings_scan() gives them */
	size_t list_len;
};

/* The block of a label name's postings being filled across calls of
 * idx_postings_put(): zeroed before the name's first call. */
struct idx_postings_block {
	uint32_t number;                        /* its number among the name's blocks */
	size_t count, len;                      /* its values and bytes so far */
	size_t first_len, prev_len;
	uint8_t first[IDX_POSTING_VALUE_MAX];   /* the first bytes of its first value (its key) */
	uint8_t prev[IDX_POSTING_VALUE_MAX];    /* and of the last value, which the next shares */
	uint8_t bytes[3840];                    /* a block's worth, and one value's head */
};

/* Writes postings of label `name` in snapshot snap: vals sorted by value
 * (memcmp order, shorter first), each value once, after those of the
 * name's earlier calls with blk. With last set they are the name's last
 * values and the block being filled is written too. However a name's
 * values are split among calls, the index gets the same bytes. vals are
 * read during the call only: what the next call needs is copied into blk,
 * and a list that fills a block goes straight into the index. */
int idx_postings_put(struct idx_txn *t, uint32_t snap, const char *name, size_t name_len,
		     struct idx_postings_block *blk, const struct idx_posting *vals, size_t n, int last,
		     struct err *e);

/* Called for each value of a label name, in order; return non-zero to stop.
 * For a long value, value holds its first bytes and *hash is set (else hash
 * is NULL). list/list_len are the encoded refs, for idx_postings_decode; all
 * borrowed until the transaction ends. */
typedef int (*idx_postings_fn)(void *ctx, const char *value, size_t len, const uint64_t *hash,
			       const uint8_t *list, size_t list_len);

/* Visits the values of label `name` in snapshot snap that start with prefix
 * (len 0: all of them), in order. */
int idx_postings_scan(struct idx_txn *t, uint32_t snap, const char *name, size_t name_len,
		      const char *prefix, size_t prefix_len, idx_postings_fn fn, void *ctx, struct err *e);

/* Appends the refs of an encoded postings list to out (a struct buf of
 * uint64_t); SNAPARC_CORRUPT if it is malformed. */
struct buf;
int idx_postings_decode(const uint8_t *list, size_t len, struct buf *out, struct err *e);

/* ---- per-series side data, and other records ---- */

int idx_tombstones_put(struct idx_txn *t, uint32_t snap, uint64_t ref, const uint8_t *p, size_t len,
		       struct err *e);
int idx_tombstones_get(struct idx_txn *t, uint32_t snap, uint64_t ref, const uint8_t **p, size_t *len,
		       struct err *e);
/* Where a series' exemplars are stored (an exemplars record of its own). */
int idx_exemplars_put(struct idx_txn *t, uint32_t snap, const struct idx_loc *loc, struct err *e);
int idx_exemplars_get(struct idx_txn *t, uint32_t snap, uint64_t ref, struct idx_loc *out, struct err *e);
int idx_other_put(struct idx_txn *t, uint32_t snap, const struct idx_loc *loc, uint8_t type, struct err *e);

/* Called for each entry in key order; non-zero stops and is returned. */
typedef int (*idx_loc_fn)(void *ctx, const struct idx_loc *loc, uint8_t type);
/* A snapshot's exemplar locations, by ref (type 0). */
int idx_exemplars_scan(struct idx_txn *t, uint32_t snap, idx_loc_fn fn, void *ctx, struct err *e);
/* A snapshot's other records, in stored order (loc->ref is 0). */
int idx_others_scan(struct idx_txn *t, uint32_t snap, idx_loc_fn fn, void *ctx, struct err *e);

/* ---- checking ---- */

/* Called with a message for each damaged value; non-zero stops. */
typedef int (*idx_check_fn)(void *ctx, const char *msg);

/* Reads every value of every database and checks its checksum (and LMDB's
 * walk of its tree): each failure goes to fn. *values counts those read. */
int idx_check_values(struct idx_txn *t, idx_check_fn fn, void *ctx, uint64_t *values, struct err *e);

#endif
