/*
 * recode: a series record whose XOR chunk is stored as its samples,
 * byte-aligned, so that LZ4 finds the repetition the bit-packed chunk hides
 * (a counter that grows by the same step, a scrape interval that does not
 * change), and that gives back the record's exact bytes: the chunk is
 * written again by Prometheus' XOR encoder (codec/xor.c).
 *
 * A recoded record:
 *
 *   byte     RECODE_SERIES (0x81) where the record had its type, 1
 *   bytes    the record from its ref to its chunk encoding byte, unchanged
 *   uvarint  n, the chunk's samples (1 or more)
 *   byte     value mode: 0xff floats, else e << 1 | d: each value is an
 *            integer i divided by 10^e (e = 0: the integer itself), and d
 *            says the integers are stored as second differences
 *   uvarint  zt, then the time fields of samples 1 .. n - zt: the last zt
 *            are 0 and left out (a steady scrape interval)
 *            sample 1 varint t - mint
 *            sample 2 varint t - t1
 *            sample k varint (t - t') - (t' - t''), t' the time before
 *   uvarint  zv, then the value fields of samples 1 .. n - zv, the last zv
 *            0 and left out (an unchanged value, a steady rate):
 *            floats    sample 1 be64 bits, then each its xor field
 *            integers  sample 1 varint i, sample 2 varint i - i1, then
 *                      varint i - i' (d = 0) or (i - i') - (i' - i'') (d = 1)
 *   byte     tail: 0 when the record ends in the 64 bytes Prometheus writes
 *            after an XOR chunk (56 zero bytes, then the last value, which
 *            is the chunk's last), 1 when the record's remaining bytes
 *            follow as they were
 *
 *   xor field  byte 0 when the value equals the one before; else
 *              0x80 | l << 3 | r, where l and r are the whole zero bytes
 *              leading and trailing the xor of the two values' bits, then
 *              the 8 - l - r bytes between, most significant first
 *
 * Integer arithmetic wraps (uint64), so any bytes decode without undefined
 * behaviour; only what recode_pack() checked gives back a real record.
 */
#ifndef SNAPARC_RECODE_H
#define SNAPARC_RECODE_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

#define RECODE_SERIES 0x81

/* Reusable working memory for recode_pack(); zero it to start, free with
 * recode_scratch_free(). */
struct recode_scratch {
	int64_t *t;
	uint64_t *v;
	size_t cap;
};
void recode_scratch_free(struct recode_scratch *s);

/*
 * Appends rec recoded to out and returns 1, or returns 0 and appends
 * nothing when rec is not a series record with an XOR chunk, or when the
 * recoded form would not give back rec's exact bytes (a chunk Prometheus'
 * encoder would not have written so); -1 out of memory.
 */
int recode_pack(const uint8_t *rec, size_t len, struct buf *out, struct recode_scratch *s);

/* 1 when p (len > 0) is a recoded record. */
static inline int recode_is(const uint8_t *p, size_t len) { return len > 0 && p[0] == RECODE_SERIES; }

/*
 * Replaces out's contents with the record p[0..len) stands for.
 * SNAPARC_CORRUPT with "recoded record, offset N: reading <field>: <reason>"
 * when p is not a recoded record this encoding can read.
 */
int recode_unpack(const uint8_t *p, size_t len, struct buf *out, struct err *e);

#endif
