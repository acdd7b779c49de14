/*
 * Snappy's block elements, as its format description gives them: a tag
 * byte whose low two bits say what follows.
 *
 *   00 literal: length - 1 in the tag's high six bits when below 60, else
 *      60..63 there and the length - 1 in the next 1..4 bytes (little
 *      endian), then the bytes
 *   01 copy of 4..11 bytes at an offset below 2048: length - 4 in bits 2-4,
 *      offset bits 8-10 in bits 5-7, then the offset's low byte
 *   10 copy of 1..64 bytes: length - 1 in the high six bits, then a 16-bit
 *      little-endian offset
 *
 * The encoding is greedy: a 4-byte match found at a probe is taken as long
 * as it runs both ways, and what lies between matches is a literal.
 */
#include "snappy_small.h"

#include <string.h>

static uint32_t load32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t hash(uint32_t v)
{
	return (v * 0x1e35a7bdu) >> (32 - SNAPPY_SMALL_TABLE_BITS);
}

void snappy_small_init(struct snappy_small *s)
{
	memset(s->table, 0, sizeof(s->table));
	s->base = 1;
}

/* memcpy() for the short literals between matches: fixed-size moves,
 * the last one overlapping, instead of a call per literal. */
static inline void copy_bytes(uint8_t *op, const uint8_t *p, size_t n)
{
	if (n >= 16) {
		for (size_t k = 0; k + 16 <= n; k += 16)
			memcpy(op + k, p + k, 16);
		memcpy(op + n - 16, p + n - 16, 16);
	} else if (n >= 8) {
		memcpy(op, p, 8);
		memcpy(op + n - 8, p + n - 8, 8);
	} else if (n >= 4) {
		memcpy(op, p, 4);
		memcpy(op + n - 4, p + n - 4, 4);
	} else {
		for (size_t k = 0; k < n; k++)
			op[k] = p[k];
	}
}

static inline uint8_t *literal(uint8_t *op, const uint8_t *p, size_t n)
{
	size_t m = n - 1;

	if (!n)
		return op;
	if (m < 60) {
		*op++ = (uint8_t)(m << 2);
	} else {
		unsigned bytes = m < 0x100 ? 1 : m < 0x10000 ? 2 : 3;

		*op++ = (uint8_t)((59 + bytes) << 2);
		for (unsigned i = 0; i < bytes; i++)
			*op++ = (uint8_t)(m >> (8 * i));
	}
	copy_bytes(op, p, n);
	return op + n;
}

/* A copy of 4..64 bytes at offset (below 65536). */
static uint8_t *copy_short(uint8_t *op, size_t offset, size_t len)
{
	if (len < 12 && offset < 2048) {
		*op++ = (uint8_t)(1 | ((len - 4) << 2) | ((offset >> 8) << 5));
		*op++ = (uint8_t)offset;
	} else {
		*op++ = (uint8_t)(2 | ((len - 1) << 2));
		*op++ = (uint8_t)offset;
		*op++ = (uint8_t)(offset >> 8);
	}
	return op;
}

/* As libsnappy splits a long copy: never leaving fewer than 4 bytes. */
static uint8_t *copy(uint8_t *op, size_t offset, size_t len)
{
	while (len >= 68) {
		op = copy_short(op, offset, 64);
		len -= 64;
	}
	if (len > 64) {
		op = copy_short(op, offset, 60);
		len -= 60;
	}
	return copy_short(op, offset, len);
}

/* How many bytes from a and b (a < b) are equal, b's not past end. */
static size_t match_len(const uint8_t *a, const uint8_t *b, const uint8_t *end)
{
	const uint8_t *start = b;

	while (b + 8 <= end) {
		uint64_t x = load64(a) ^ load64(b);

		if (x)
			return (size_t)(b - start) + ((unsigned)__builtin_ctzll(x) >> 3);
		a += 8;
		b += 8;
	}
	while (b < end && *a == *b) {
		a++;
		b++;
	}
	return (size_t)(b - start);
}

size_t snappy_small_elements(struct snappy_small *s, const uint8_t *in, size_t n,
			     const struct snappy_small_range *ranges, size_t nranges, uint8_t *out)
{
	uint8_t *op = out;
	size_t lit_from = 0;
	uint32_t base;

	/* positions of earlier inputs are below base: stale, never cleared */
	if (s->base > UINT32_MAX - SNAPPY_SMALL_MAX)
		snappy_small_init(s);
	base = s->base;
	for (size_t r = 0; r < nranges && n >= 4; r++) {
		size_t i = ranges[r].from > lit_from ? ranges[r].from : lit_from;
		size_t to = ranges[r].to < n - 3 ? ranges[r].to : n - 3;

		for (; i < to; i++) {
			uint32_t v = load32(in + i), h = hash(v), seen = s->table[h];
			size_t from, len;

			s->table[h] = base + (uint32_t)i;
			if (seen < base || (from = seen - base) >= i || load32(in + from) != v)
				continue;
			len = 4 + match_len(in + from + 4, in + i + 4, in + n);
			while (i > lit_from && from > 0 && in[from - 1] == in[i - 1]) {
				i--;
				from--;
				len++;
			}
			op = literal(op, in + lit_from, i - lit_from);
			op = copy(op, i - from, len);
			lit_from = i + len;
			/* (the loop's i++ lands on lit_from) */
			i = lit_from - 1;
		}
	}
	op = literal(op, in + lit_from, n - lit_from);
	s->base = base + (uint32_t)n;
	return (size_t)(op - out);
}
