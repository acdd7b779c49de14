/*
 * lz4dict: the archive's record compression, LZ4 against a shared dictionary,
 * so that every record stays readable on its own.
 *
 * A stored payload is:  uvarint dictionary id | uvarint raw length | LZ4 block
 * The WAL fragment's LZ4 bit says a record is stored this way; a record LZ4
 * does not shrink is stored plain. What the block holds is the record, or
 * the record recoded (codec/recode.h, its first byte says so), and its raw
 * length is that of what the block holds.
 *
 * A delta (made by compaction) has dictionary id 0 and names another stored
 * record, its base, whose raw bytes are its dictionary:
 *   0 | uvarint base segment | uvarint base offset | uvarint base span |
 *   uvarint raw length | LZ4 block
 * A prefix delta is a record that begins with its base's first bytes (a
 * snapshot's exemplar record is the previous one's and more): it is those
 * bytes, then the LZ4 block, against the 64 KiB before it:
 *   0 | uvarint base segment | uvarint base offset | 0 | 0 |
 *   uvarint base span | uvarint prefix length | uvarint raw length after it |
 *   LZ4 block
 * (0 and then a span is an append delta, codec/xordelta.h.)
 * Decompression uses only LZ4's bounds-checked functions and never trusts the
 * stated length past what LZ4 can expand to.
 */
#ifndef SNAPARC_LZ4DICT_H
#define SNAPARC_LZ4DICT_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

#define LZ4DICT_MAX 65536   /* LZ4 looks back at most 64 KiB */

/*
 * Trains a dictionary of at most cap bytes (<= LZ4DICT_MAX) from n samples
 * laid end to end in samples, with zstd's trainer (fastCover).
 * When the samples are too few for the trainer, the dictionary is the last
 * cap bytes of the samples themselves. Returns 0 and *len, or an error.
 */
int lz4dict_train(uint8_t *dict, size_t cap, size_t *len, const uint8_t *samples,
		  const size_t *sizes, unsigned n, struct err *e);

struct lz4dict_enc;

/* A compressor for one dictionary (copied, and indexed by its 8-byte strings
 * in 128 KiB more; len may be 0 for none). Not for concurrent use: one per
 * writer thread. Free with lz4dict_enc_free().
 * dict_id 0 is SNAPARC_INVALID: it marks a delta. */
int lz4dict_enc_new(struct lz4dict_enc **out, uint32_t dict_id, const uint8_t *dict, size_t len,
		    struct err *e);
/* A compressor for lz4dict_delta() alone, without a dictionary of its own:
 * lz4dict_compress() with it returns 0. */
int lz4dict_delta_enc_new(struct lz4dict_enc **out, struct err *e);
void lz4dict_enc_free(struct lz4dict_enc *c);

/*
 * With on, lz4dict_compress() and lz4dict_delta() store a series record's
 * XOR chunk as its samples (codec/recode.h) when that gives back the same
 * bytes and looks smaller: about 3x smaller chunks on real snapshots, at
 * about 2 us a 120-sample chunk to store and 0.5-1 us to read. Off (the
 * default), records go to LZ4 as they are. Reading needs no setting: a
 * payload says which.
 */
void lz4dict_enc_recode(struct lz4dict_enc *c, int on);

/* Appends the payload for src to out and returns 1, or returns 0 and appends
 * nothing when the payload would not be smaller than src (or c is a delta
 * compressor, or src begins as a recoded record does and could not be told
 * from one); -1 out of memory. */
int lz4dict_compress(struct lz4dict_enc *c, const uint8_t *src, size_t len, struct buf *out);
/* lz4dict_compress() of a series record its caller has decoded, which says
 * where its XOR chunk lies (chunk_len bytes from src + chunk_at), or that it
 * has none (chunk_at 0): the record is not skimmed for it. The same payload. */
int lz4dict_compress_series(struct lz4dict_enc *c, const uint8_t *src, size_t len, size_t chunk_at,
			    size_t chunk_len, struct buf *out);

/* Where a delta's base is stored (an archive location). */
struct lz4dict_base {
	uint32_t segment;
	uint64_t offset;
	uint32_t span;
};

/* Appends the delta payload of src against base (whose raw bytes are
 * base_raw) to out and returns 1, or returns 0 and appends nothing when the
 * payload would not be smaller than limit; -1 out of memory. */
int lz4dict_delta(struct lz4dict_enc *c, const struct lz4dict_base *base, const uint8_t *base_raw,
		  size_t base_len, const uint8_t *src, size_t len, size_t limit, struct buf *out);

/* 1 and *base when the payload is a delta, 0 when it is not; SNAPARC_CORRUPT. */
int lz4dict_delta_base(const uint8_t *p, size_t len, struct lz4dict_base *base, struct err *e);

/* Reads a payload's header: dictionary id (0 for a delta), raw length (a
 * prefix delta's prefix included) and where the block starts. */
int lz4dict_header(const uint8_t *p, size_t len, uint32_t *dict_id, size_t *raw_len,
		   size_t *header_len, struct err *e);

/* Decompresses a payload whose dictionary (dict, dict_len) the caller looked
 * up by lz4dict_header()'s id, or for a delta its base's raw bytes; replaces
 * out's contents. SNAPARC_CORRUPT with
 * the reason when the payload is not valid. */
int lz4dict_decompress(const uint8_t *p, size_t len, const uint8_t *dict, size_t dict_len,
		       struct buf *out, struct err *e);

#endif
