/*
 * xor: Prometheus' XOR chunk of float samples (Gorilla encoding), the bytes
 * tsdb/chunkenc/xor.go writes into head chunks, snapshots and blocks.
 * The format is described at the top of xor.c and in FORMAT.md section 5.
 *
 * Values travel as their IEEE-754 bits so that NaN payloads (the staleness
 * marker 0x7ff0000000000002) come out exactly as they went in.
 */
#ifndef SNAPARC_XOR_H
#define SNAPARC_XOR_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define XOR_MAX_SAMPLES 65535   /* the count is a uint16 */
#define XOR_STALE_NAN 0x7ff0000000000002ULL

/* The sample count in a chunk's header, or 0 when len < 2. */
uint16_t xor_chunk_count(const uint8_t *chunk, size_t len);

/*
 * Iterator over a chunk's samples. It borrows the chunk bytes, which must
 * stay valid and unchanged while it is used. Any bytes are safe to give it:
 * it never reads outside chunk[0..len).
 */
struct xor_iter {
	/* private */
	const uint8_t *chunk;
	uint64_t bit, end_bit;   /* next bit to read and the end, from chunk[0] */
	uint16_t count, done;    /* samples in the header, samples returned */
	int state;               /* 0 reading, 1 at the end, -1 failed */
	int open_end;            /* resumed: the samples end where the bits do */
	int64_t t;
	uint64_t tdelta, vbits;
	uint8_t leading, trailing;

	/* set when xor_iter_next() returns -1 */
	const char *error;       /* why, a static string */
	uint32_t error_sample;   /* 1-based sample being read; 0 for the header */
	uint64_t error_bit;      /* bit offset from chunk[0] of the bad field */
};

void xor_iter_init(struct xor_iter *it, const uint8_t *chunk, size_t len);

/*
 * Reads the next sample. Returns 1 with the sample in *t and *vbits, 0 when
 * all `count` samples were read and the chunk ends there, or -1 when the
 * chunk is corrupt (it->error and friends say where; *t and *vbits are
 * untouched). The 0 or -1 repeats on later calls. After the last sample the
 * chunk may hold at most 8 bits of zero padding; more is reported as -1.
 */
int xor_iter_next(struct xor_iter *it, int64_t *t, uint64_t *vbits);

/*
 * The decoder's state between two samples, enough to go on reading a chunk
 * whose bits continue past them (codec/xordelta.c): the bit where the next
 * sample starts (from chunk[0]), samples read, and the last sample's time,
 * delta, value bits and value window.
 */
struct xor_state {
	uint64_t bit;
	uint16_t done;
	int64_t t;
	uint64_t tdelta, vbits;
	uint8_t leading, trailing;
};

/* The state after the samples read so far. */
void xor_iter_state(const struct xor_iter *it, struct xor_state *out);

/*
 * Starts an iterator at state st over chunk bits [0, end_bit) that reads
 * samples with no stated count: xor_iter_next() returns 1 for each sample
 * that starts before end_bit, and 0 when the next one would start exactly at
 * end_bit (no padding is allowed); -1 when a sample runs past end_bit, or
 * when st is impossible (bit past end_bit, a window of no bits, 65535
 * samples read).
 */
void xor_iter_resume(struct xor_iter *it, const uint8_t *chunk, uint64_t end_bit, const struct xor_state *st);

/* Formats the failure: "sample N of M, bit B: <why>", or "no error". */
void xor_iter_describe(const struct xor_iter *it, char *out, size_t cap);

/*
 * Reads every sample of a chunk into t[] and v[], which have room for cap.
 * Returns the count, or -1 when the chunk does not decode or holds more than
 * cap; xor_iter says why and where. Any bytes are safe to give it; it is
 * several times faster than the iterator, for whole chunks.
 */
int xor_read_all(const uint8_t *chunk, size_t len, int64_t *t, uint64_t *v, size_t cap);
/*
 * The same, and -1 too unless the chunk is exactly what the encoder (and
 * Prometheus' xorAppender) writes for the samples read: then writing them
 * again gives these bytes back, without writing them to find out.
 */
int xor_read_canonical(const uint8_t *chunk, size_t len, int64_t *t, uint64_t *v, size_t cap);

/*
 * Where a chunk's first count samples end: the chunk as the encoder had
 * written it when it held only them is its first len bytes, with count in
 * the header and the bits after the count-th sample zero. t and v: that
 * sample.
 */
struct xor_cut {
	size_t count;      /* in: 1 .. the chunk's count - 1 */
	size_t len;        /* out */
	uint64_t end_bit;  /* out: where the count-th sample ends, from chunk[0] */
	int64_t t;         /* out */
	uint64_t v;        /* out */
};
/* 0 and cut's out fields, or -1 when count is out of range or the chunk
 * does not decode as far. Reads only the first count samples (as fast as
 * xor_read_all()); any bytes are safe to give it. */
int xor_read_cut(const uint8_t *chunk, size_t len, struct xor_cut *cut);

/*
 * Encoder: appends samples and produces the bytes Prometheus' xorAppender
 * produces for the same samples, starting from an empty chunk.
 */
struct xor_enc {
	/* private */
	struct buf out;          /* 2-byte count, then the bit stream */
	unsigned free_bits;      /* unused low bits of the last byte */
	uint16_t count;
	int64_t t;
	uint64_t tdelta, vbits;
	uint8_t leading, trailing;
};

/* Starts an empty chunk; allocates nothing. */
void xor_enc_init(struct xor_enc *e);

/*
 * Appends a sample. Timestamps are not checked for order (Prometheus does
 * that above the chunk). Returns 0, or -1 when the chunk already holds
 * XOR_MAX_SAMPLES samples or memory ran out; on -1 the chunk is unchanged.
 */
int xor_enc_append(struct xor_enc *e, int64_t t, uint64_t vbits);

/* The chunk so far (the 2 header bytes when empty); borrowed, valid until
 * the next xor_enc_append() or xor_enc_free(). */
const uint8_t *xor_enc_bytes(const struct xor_enc *e, size_t *len);

/* Frees the encoder's memory; it may be initialised again. */
void xor_enc_free(struct xor_enc *e);

/*
 * The same encoder over room the caller reserved, for whole chunks: about
 * four times faster than xor_enc, with no allocation. It writes the bytes
 * xor_enc writes for the same samples.
 */
struct xor_writer {
	/* private */
	uint8_t *start, *p;      /* the chunk; the next whole word to flush */
	uint64_t acc;            /* pending bits, the first at the high end */
	unsigned pending;        /* bits in acc, under 64 between calls */
	int byte_last;           /* the last write was bstream's writeByte */
	uint64_t bits;           /* bits written after the header */
	uint16_t count;
	int64_t t;
	uint64_t tdelta, vbits;
	uint8_t leading, trailing;
};
/* Room a chunk of n samples may need, header and a flushed word included. */
#define XOR_WRITER_ROOM(n) (2 + 19 * (size_t)(n) + 32)
/* Starts a chunk at room, which has XOR_WRITER_ROOM(samples) bytes. */
void xor_writer_begin(struct xor_writer *w, uint8_t *room);
/* Appends a sample; at most XOR_MAX_SAMPLES, and no more than the room was for. */
void xor_writer_append(struct xor_writer *w, int64_t t, uint64_t vbits);
/* Ends the chunk: writes its count and returns its length in bytes. */
size_t xor_writer_end(struct xor_writer *w);

#endif
