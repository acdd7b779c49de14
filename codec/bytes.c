#include "bytes.h"

#include <stdio.h>
#include <stdlib.h>

int uvarint_get(const uint8_t *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;

	if (len >= UVARINT_MAX_LEN) {
		/* room for the longest: no length checks */
		for (int i = 0; i < UVARINT_MAX_LEN - 1; i++) {
			v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
			if (p[i] < 0x80) {
				*out = v;
				return i + 1;
			}
		}
		if (p[UVARINT_MAX_LEN - 1] > 1)
			return -1; /* the tenth byte may only carry bit 63 */
		*out = v | (uint64_t)p[UVARINT_MAX_LEN - 1] << 63;
		return UVARINT_MAX_LEN;
	}

	for (size_t i = 0; i < len; i++) {
		uint8_t b = p[i];

		if (i == UVARINT_MAX_LEN - 1 && b > 1)
			return -1; /* the tenth byte may only carry bit 63 */
		if (b < 0x80) {
			*out = v | (uint64_t)b << shift;
			return (int)i + 1;
		}
		if (i == UVARINT_MAX_LEN - 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	}
	return 0;
}

void dec_fail(struct dec *d, const char *what, const char *reason)
{
	if (d->failed)
		return;
	d->failed = what;
	d->reason = reason;
	d->fail_offset = dec_offset(d);
	d->p = d->end;
}

uint8_t dec_byte(struct dec *d, const char *what)
{
	if (d->failed)
		return 0;
	if (d->p >= d->end) {
		dec_fail(d, what, "unexpected end of record");
		return 0;
	}
	return *d->p++;
}

uint64_t dec_be64(struct dec *d, const char *what)
{
	uint64_t v;

	if (d->failed)
		return 0;
	if (dec_left(d) < 8) {
		dec_fail(d, what, "unexpected end of record");
		return 0;
	}
	v = be64_get(d->p);
	d->p += 8;
	return v;
}

uint64_t dec_uvarint_slow(struct dec *d, const char *what)
{
	uint64_t v = 0;
	int n;

	if (d->failed)
		return 0;
	n = uvarint_get(d->p, dec_left(d), &v);
	if (n <= 0) {
		dec_fail(d, what, n == 0 ? "unexpected end of record inside a varint"
					 : "varint longer than 10 bytes or over 64 bits");
		return 0;
	}
	d->p += n;
	return v;
}

int64_t dec_varint(struct dec *d, const char *what)
{
	return zigzag_decode(dec_uvarint(d, what));
}

const uint8_t *dec_bytes(struct dec *d, size_t n, const char *what)
{
	const uint8_t *p;

	if (d->failed)
		return NULL;
	if (dec_left(d) < n) {
		dec_fail(d, what, "length past the end of the record");
		return NULL;
	}
	p = d->p;
	d->p += n;
	return p;
}

const uint8_t *dec_uvarint_bytes_slow(struct dec *d, size_t *len, const char *what)
{
	const uint8_t *field = d->p;
	uint64_t n = dec_uvarint(d, what);

	*len = 0;
	if (d->failed)
		return NULL;
	if (n > dec_left(d)) {
		/* report at the length field, which is what lies */
		d->p = field;
		dec_fail(d, what, "length past the end of the record");
		return NULL;
	}
	*len = (size_t)n;
	return dec_bytes(d, (size_t)n, what);
}

void dec_describe(const struct dec *d, char *out, size_t cap)
{
	if (!d->failed) {
		snprintf(out, cap, "no error");
		return;
	}
	snprintf(out, cap, "offset %zu: %s: %s", d->fail_offset, d->failed, d->reason);
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}

uint8_t *buf_reserve_slow(struct buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->cap - b->len < n || !b->p) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = 1;
				return NULL;
			}
			cap *= 2;
		}
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

void buf_put_byte(struct buf *b, uint8_t v)
{
	uint8_t *dst = buf_reserve(b, 1);

	if (!dst)
		return;
	*dst = v;
	b->len++;
}

void buf_put_be64(struct buf *b, uint64_t v)
{
	uint8_t *dst = buf_reserve(b, 8);

	if (!dst)
		return;
	be64_put(dst, v);
	b->len += 8;
}

void buf_put_varint(struct buf *b, int64_t v)
{
	buf_put_uvarint(b, zigzag_encode(v));
}

void buf_put_uvarint_bytes(struct buf *b, const void *p, size_t n)
{
	buf_put_uvarint(b, n);
	buf_put(b, p, n);
}
