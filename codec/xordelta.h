/*
 * xordelta: the archive's append delta, a series record stored as the bits
 * its XOR chunk gained since another stored record of the same series (its
 * base), which compaction made for a head chunk that grew between snapshots
 * before it stored cuts (below); archives compacted so are read as ever.
 *
 * It applies when the record equals its base up to the chunk's maxt (type,
 * ref, labels, chunk range, chunk flag, mint), both chunks are XOR, the new
 * chunk's bit stream starts with the base chunk's and the 64-byte tail is
 * the base's first 56 bytes and then the new last value. The payload, stored
 * with the WAL_LZ4 fragment bit like every archive payload, is:
 *
 *   0x00                  dictionary id 0: a delta (lz4dict.h)
 *   uvarint base segment
 *   uvarint base offset
 *   0x00                  a base span of 0, which an LZ4 delta never has
 *                         (lz4dict_header() calls it corrupt): this marks an
 *                         append delta, so readers before it refuse it
 *   uvarint base span     (> 0)
 *   byte    ends          base_pad * 9 + new_pad: the zero bits after the
 *                         last sample in the base's chunk and in the new one
 *                         (each 0..8); + 0x80 when window and tdelta are
 *                         left out (the base is itself an append delta: a
 *                         read decodes its appended samples first, which
 *                         leaves them known)
 *   uvarint window        leading | trailing << 5: the value window after the
 *                         base's last sample (leading <= 31, trailing <= 63)
 *   uvarint tdelta        the time delta of the base's last sample
 *   uvarint nbits         appended bits
 *   ceil(nbits / 8) bytes the appended bits, most significant first, the last
 *                         byte's unused bits zero
 *
 * Applying it: the base chunk's bits up to its last sample (its length in
 * bits less base_pad), the appended bits, new_pad zero bits; the samples in
 * the appended bits are decoded from the base's last sample (time its maxt,
 * value its tail's last value, tdelta and window from the payload), which
 * gives the new count (the chunk's first 2 bytes), maxt and last value, so
 * none of them is stored. Compaction makes one only when applying it gives
 * the record back byte for byte. A payload that does not decode, or does
 * not fit its base, is SNAPARC_CORRUPT with the reason; what is allocated
 * is bounded by the base record and the payload (never by a stated length).
 */
#ifndef SNAPARC_XORDELTA_H
#define SNAPARC_XORDELTA_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"
#include "lz4dict.h"
#include "xor.h"

/* Whether the payload (stored with WAL_LZ4) is marked as an append delta;
 * a cheap look at its header, not a validation. */
int xordelta_is(const uint8_t *p, size_t len);

/* The base of an append delta; SNAPARC_CORRUPT when the header is not one. */
int xordelta_base(const uint8_t *p, size_t len, struct lz4dict_base *base, struct err *e);

/*
 * Appends the append delta of record rec against base_rec, stored at base,
 * to out and returns 1; returns 0 and appends nothing when it does not apply
 * (see the top), does not give rec back exactly, or would not be smaller
 * than limit; -1 out of memory. carry: the base is stored as an append
 * delta, so the decoder state is left out (such a payload reads only in a
 * chain: xordelta_apply_chain()).
 */
int xordelta_make(const struct lz4dict_base *base, const uint8_t *base_rec, size_t base_len, const uint8_t *rec,
		  size_t len, int carry, size_t limit, struct buf *out);

/* Replaces out's contents by the record the payload p makes of its base's
 * record. 0, SNAPARC_CORRUPT with the reason, or SNAPARC_NOMEM. */
int xordelta_apply(const uint8_t *p, size_t len, const uint8_t *base_rec, size_t base_len, struct buf *out,
		   struct err *e);

/* xordelta_apply() of p[0], then of p[1] on what p[0] made, ..., p[n-1]
 * (each one's base the one before), in one pass: the base record is
 * decoded once and the chunk grows in place. out must not hold base_rec. */
int xordelta_apply_chain(const uint8_t *const *p, const size_t *len, size_t n, const uint8_t *base_rec,
			 size_t base_len, struct buf *out, struct err *e);

/*
 * A cut: a series record of a snapshot whose head chunk a later snapshot's
 * record of the series continues (the same record up to maxt, the chunk's
 * first samples the same bits) is that record cut to its first n samples:
 * the chunk as the encoder had it then (its first bytes, the count n, zero
 * bits after the n-th sample), maxt and the tail's last value the n-th
 * sample's. Compaction stores it as the later record's location and n (the
 * index's cut, index/idx.h), nothing in the segments.
 */

/* Replaces out's contents by base_rec cut to its first n samples; n from 1
 * to the chunk's count - 1. 0, SNAPARC_CORRUPT with the reason (not a
 * series with an XOR chunk that decodes as far), or SNAPARC_NOMEM. */
int xordelta_cut(const uint8_t *base_rec, size_t base_len, uint32_t n, struct buf *out, struct err *e);

/*
 * 1 and *n when rec is base_rec cut to n samples (xordelta_cut() gives rec
 * back byte for byte; compared in place, scratch is not used any more), 0
 * when not, -1 out of memory (no longer: nothing is allocated).
 * *at_hint: where rec's maxt field starts when the caller knows (from
 * another record of the series, whose labels are the same), else 0; set
 * when rec's labels were decoded to find it. A wrong hint costs only time.
 */
int xordelta_cut_of(const uint8_t *base_rec, size_t base_len, const uint8_t *rec, size_t len, struct buf *scratch,
		    size_t *at_hint, uint32_t *n);

#endif
