/*
 * bytes: the primitive encodings of Prometheus' formats (FORMAT.md section 3).
 *
 *   big-endian fixed-width integers; floats as their IEEE-754 bits
 *   uvarint  unsigned LEB128, at most 10 bytes (Go binary.PutUvarint)
 *   varint   zig-zag then uvarint (Go binary.PutVarint)
 *
 * struct dec reads a borrowed buffer with bounds checks. Its error sticks:
 * after the first failure every getter returns 0 and the decoder stops
 * advancing, so a decoder reads all fields and checks dec_ok() once. The
 * error keeps the offset where it happened and what was being read.
 *
 * struct buf is a growable output buffer whose allocation failure also
 * sticks (check buf.oom once at the end).
 */
#ifndef SNAPARC_BYTES_H
#define SNAPARC_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UVARINT_MAX_LEN 10

static inline uint16_t be16_get(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64_get(const uint8_t *p) { return (uint64_t)be32_get(p) << 32 | be32_get(p + 4); }
static inline void be16_put(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void be64_put(uint8_t *p, uint64_t v) { be32_put(p, (uint32_t)(v >> 32)); be32_put(p + 4, (uint32_t)v); }

static inline uint64_t f64_bits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static inline double f64_from_bits(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

/* Writes v as a uvarint into p (room for UVARINT_MAX_LEN); returns its length. */
static inline size_t uvarint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}
static inline uint64_t zigzag_encode(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t zigzag_decode(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }
static inline size_t uvarint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) { v >>= 7; n++; }
	return n;
}

/*
 * Reads a uvarint from p[0..len). Returns its length in bytes, 0 when the
 * buffer ends inside it, or -1 when it runs over 10 bytes or overflows 64 bits.
 */
int uvarint_get(const uint8_t *p, size_t len, uint64_t *out);

struct dec {
	const uint8_t *start, *p, *end;
	const char *failed;   /* what was being read at the first failure, or NULL */
	const char *reason;   /* why it failed */
	size_t fail_offset;   /* offset from start where it failed */
};

static inline void dec_init(struct dec *d, const uint8_t *p, size_t len)
{
	static const uint8_t empty[1];

	if (!p) /* an empty buffer: no pointer arithmetic on NULL */
		p = empty, len = 0;
	d->start = d->p = p;
	d->end = p + len;
	d->failed = d->reason = NULL;
	d->fail_offset = 0;
}
static inline int dec_ok(const struct dec *d) { return d->failed == NULL; }
static inline size_t dec_left(const struct dec *d) { return (size_t)(d->end - d->p); }
static inline size_t dec_offset(const struct dec *d) { return (size_t)(d->p - d->start); }

/* Marks the decoder failed (first failure wins); later getters return 0. */
void dec_fail(struct dec *d, const char *what, const char *reason);

/* The getters' general cases; call the getters below. */
uint64_t dec_uvarint_slow(struct dec *d, const char *what);
const uint8_t *dec_uvarint_bytes_slow(struct dec *d, size_t *len, const char *what);

/* Each getter names what it reads, for the error message. */
uint8_t dec_byte(struct dec *d, const char *what);
uint64_t dec_be64(struct dec *d, const char *what);
/* Inline for the one-byte uvarints that most fields are (label lengths). */
static inline uint64_t dec_uvarint(struct dec *d, const char *what)
{
	if (!d->failed && d->p < d->end && *d->p < 0x80)
		return *d->p++;
	return dec_uvarint_slow(d, what);
}
int64_t dec_varint(struct dec *d, const char *what);
/* n bytes in place (borrowed from the input), or NULL on failure. */
const uint8_t *dec_bytes(struct dec *d, size_t n, const char *what);
/* uvarint length then that many bytes; the length is checked against what is left. */
static inline const uint8_t *dec_uvarint_bytes(struct dec *d, size_t *len, const char *what)
{
	if (!d->failed && d->p < d->end && *d->p < 0x80 && *d->p < (size_t)(d->end - d->p)) {
		const uint8_t *p = d->p + 1;

		*len = *d->p;
		d->p = p + *len;
		return p;
	}
	return dec_uvarint_bytes_slow(d, len, what);
}

/* Formats the failure: "offset N: reading <what>: <reason>". */
void dec_describe(const struct dec *d, char *out, size_t cap);

struct buf {
	uint8_t *p;
	size_t len, cap;
	int oom;   /* an allocation failed; contents are incomplete */
};

/* Frees the buffer's memory and resets it to empty. */
void buf_free(struct buf *b);
/* buf_reserve() when the room is not there: grows the buffer. */
uint8_t *buf_reserve_slow(struct buf *b, size_t n);
/* Makes room for n more bytes; returns a pointer to them or NULL (sets oom). */
static inline uint8_t *buf_reserve(struct buf *b, size_t n)
{
	if (b->p && !b->oom && b->cap - b->len >= n)
		return b->p + b->len;
	return buf_reserve_slow(b, n);
}
static inline void buf_put(struct buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (!n || !(dst = buf_reserve(b, n)))
		return;
	memcpy(dst, p, n);
	b->len += n;
}
void buf_put_byte(struct buf *b, uint8_t v);
void buf_put_be64(struct buf *b, uint64_t v);
static inline void buf_put_uvarint(struct buf *b, uint64_t v)
{
	uint8_t *dst = buf_reserve(b, UVARINT_MAX_LEN);

	if (dst)
		b->len += uvarint_put(dst, v);
}
void buf_put_varint(struct buf *b, int64_t v);
void buf_put_uvarint_bytes(struct buf *b, const void *p, size_t n);
static inline void buf_reset(struct buf *b) { b->len = 0; b->oom = 0; }

#endif
