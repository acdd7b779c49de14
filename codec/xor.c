/*
 * xor: Prometheus' XOR chunk (tsdb/chunkenc/xor.go and bstream.go).
 *
 *   be16 count, then a bit stream, most significant bit first:
 *   sample 1   varint t (8-bit groups), 64 bits of v
 *   sample 2   uvarint t2-t1 (8-bit groups), value
 *   sample n   dod = delta - previous delta: '0' | '10' 14 bits | '110' 17 bits
 *              | '1110' 20 bits | '1111' 64 bits, two's complement; a field
 *              above 2^(k-1) is negative, so the writer's range is
 *              -(2^(k-1)-1) .. 2^(k-1); then the value
 *   value      '0' same as before | '10' xor bits inside the previous window
 *              | '11' 5 bits leading zeros (31 at most), 6 bits significant
 *              bit count (0 means 64), the significant bits of the xor
 *
 * See FORMAT.md section 5. The encoder mimics bstream's two
 * primitives exactly, because they decide the chunk's length: writing a
 * whole byte always appends one more byte, so when a sample ends with a byte
 * write on a byte boundary the chunk ends with a zero byte that holds no
 * bits yet (a one-sample chunk is always 2 + len(varint t) + 8 + 1 bytes).
 */
#include "xor.h"

#include <stdio.h>

#define NO_WINDOW 0xff   /* xorAppender's "no leading/trailing yet" */
#define HEADER_BITS 16
#define SAMPLE_MAX_BYTES 32   /* sample 2 at worst: 80 + 77 bits, an empty byte */

uint16_t xor_chunk_count(const uint8_t *chunk, size_t len)
{
	return len < 2 ? 0 : be16_get(chunk);
}

/* ---- reading ---- */

void xor_iter_init(struct xor_iter *it, const uint8_t *chunk, size_t len)
{
	memset(it, 0, sizeof(*it));
	it->chunk = chunk;
	it->end_bit = (uint64_t)len * 8;
	it->bit = HEADER_BITS;
	it->count = xor_chunk_count(chunk, len);
	if (len < 2) {
		it->state = -1;
		it->error = "chunk shorter than 2 bytes";
		it->error_bit = 0;
	}
}

static int iter_fail(struct xor_iter *it, uint64_t bit, const char *why)
{
	it->state = -1;
	it->error = why;
	it->error_sample = (uint32_t)it->done + 1;
	it->error_bit = bit;
	return -1;
}

/* Reads n (1..64) bits into *out; -1 when fewer are left. */
static int read_bits(struct xor_iter *it, unsigned n, uint64_t *out)
{
	uint64_t v = 0;
	size_t at = (size_t)(it->bit >> 3);

	if (it->end_bit - it->bit < n)
		return iter_fail(it, it->bit, "bit stream ends inside the sample");
	/* eight whole bytes inside the stream: one load */
	if (n - 1 < 56 && at + 8 <= (it->end_bit + 7) >> 3) {
		*out = (be64_get(it->chunk + at) << (it->bit & 7)) >> (64 - n);
		it->bit += n;
		return 0;
	}
	while (n > 0) {
		unsigned avail = 8 - (unsigned)(it->bit & 7);
		unsigned take = avail < n ? avail : n;
		unsigned byte = it->chunk[it->bit >> 3];

		v = v << take | ((byte >> (avail - take)) & ((1u << take) - 1));
		it->bit += take;
		n -= take;
	}
	*out = v;
	return 0;
}

/* Go's binary.ReadUvarint over 8-bit groups, which it also accepts when
 * they are not minimal. */
static int read_uvarint(struct xor_iter *it, uint64_t *out)
{
	uint64_t start = it->bit, v = 0, byte;

	for (unsigned i = 0; i < UVARINT_MAX_LEN; i++) {
		if (read_bits(it, 8, &byte) < 0)
			return -1;
		if (byte < 0x80) {
			if (i == UVARINT_MAX_LEN - 1 && byte > 1)
				break;
			*out = v | byte << (7 * i);
			return 0;
		}
		v |= (byte & 0x7f) << (7 * i);
	}
	return iter_fail(it, start, "varint longer than 10 bytes or over 64 bits");
}

/* The delta of delta's size prefix and field. */
static int read_dod(struct xor_iter *it, uint64_t *dod)
{
	static const unsigned field_bits[] = { 0, 14, 17, 20, 64 };
	unsigned ones = 0;
	uint64_t bit = 1, v = 0;

	while (ones < 4) {
		if (read_bits(it, 1, &bit) < 0)
			return -1;
		if (!bit)
			break;
		ones++;
	}
	if (ones > 0) {
		unsigned n = field_bits[ones];

		if (read_bits(it, n, &v) < 0)
			return -1;
		/* the field's top half, except 2^(n-1) itself, is negative */
		if (n < 64 && v > (uint64_t)1 << (n - 1))
			v -= (uint64_t)1 << n;
	}
	*dod = v;
	return 0;
}

static int read_value(struct xor_iter *it)
{
	uint64_t bit, lead, sig, xor;

	if (read_bits(it, 1, &bit) < 0)
		return -1;
	if (!bit)
		return 0;
	if (read_bits(it, 1, &bit) < 0)
		return -1;
	if (bit) {
		uint64_t start = it->bit;

		if (read_bits(it, 5, &lead) < 0 || read_bits(it, 6, &sig) < 0)
			return -1;
		if (sig == 0)
			sig = 64;
		/*
		 * The writer never does this. Prometheus' reader would go on with
		 * a wrapped-around trailing count and leave the value unchanged;
		 * we call it corrupt instead.
		 */
		if (lead + sig > 64)
			return iter_fail(it, start, "value window wider than 64 bits");
		it->leading = (uint8_t)lead;
		it->trailing = (uint8_t)(64 - lead - sig);
	}
	/* A reused window before any was set is 0/0, all 64 bits: what an
	 * appender Prometheus rebuilt from a one-sample chunk writes. */
	if (read_bits(it, 64u - it->leading - it->trailing, &xor) < 0)
		return -1;
	it->vbits ^= xor << it->trailing;
	return 0;
}

static int read_sample(struct xor_iter *it)
{
	uint64_t u, dod;

	if (it->done == 0) {
		if (read_uvarint(it, &u) < 0 || read_bits(it, 64, &it->vbits) < 0)
			return -1;
		it->t = zigzag_decode(u);
		return 0;
	}
	if (it->done == 1) {
		if (read_uvarint(it, &it->tdelta) < 0)
			return -1;
	} else {
		if (read_dod(it, &dod) < 0)
			return -1;
		it->tdelta += dod;
	}
	/* Go's int64 arithmetic wraps; do it unsigned to stay defined here */
	it->t = (int64_t)((uint64_t)it->t + it->tdelta);
	return read_value(it);
}

/*
 * Checks what follows the last sample; Prometheus' reader ignores it, but
 * anything its writer cannot leave there means the chunk was cut or
 * misframed. The writer leaves the unused bits of the last byte zero, and
 * a byte write that ends on a byte boundary leaves one more, empty, byte
 * (see the top): up to 8 zero bits are normal, and a whole unused byte is
 * too (every one-sample chunk has one). No samples: the bare header.
 */
static int check_end(struct xor_iter *it)
{
	uint64_t end = it->bit, left = it->end_bit - end, pad = 0;
	const char *why = NULL;

	if (left > (it->count ? 8u : 0u)) {
		why = "trailing bytes after the last sample";
	} else if (left) {
		read_bits(it, (unsigned)left, &pad);
		if (pad)
			why = "nonzero padding after the last sample";
	}
	if (why) {
		iter_fail(it, end, why);
		it->error_sample = it->count;
		return -1;
	}
	it->state = 1;
	return 0;
}

int xor_iter_next(struct xor_iter *it, int64_t *t, uint64_t *vbits)
{
	if (it->state != 0)
		return it->state < 0 ? -1 : 0;
	if (it->open_end && it->bit == it->end_bit) {
		it->state = 1;
		return 0;
	}
	if (it->open_end && it->done == it->count)
		return iter_fail(it, it->bit, "more than 65535 samples");
	if (it->done == it->count)
		return check_end(it);
	if (read_sample(it) < 0)
		return -1;
	it->done++;
	*t = it->t;
	*vbits = it->vbits;
	return 1;
}

void xor_iter_state(const struct xor_iter *it, struct xor_state *out)
{
	out->bit = it->bit;
	out->done = it->done;
	out->t = it->t;
	out->tdelta = it->tdelta;
	out->vbits = it->vbits;
	out->leading = it->leading;
	out->trailing = it->trailing;
}

void xor_iter_resume(struct xor_iter *it, const uint8_t *chunk, uint64_t end_bit, const struct xor_state *st)
{
	memset(it, 0, sizeof(*it));
	it->chunk = chunk;
	it->end_bit = end_bit;
	it->bit = st->bit;
	it->done = st->done;
	it->count = XOR_MAX_SAMPLES;
	it->open_end = 1;
	it->t = st->t;
	it->tdelta = st->tdelta;
	it->vbits = st->vbits;
	it->leading = st->leading;
	it->trailing = st->trailing;
	if (st->bit > end_bit || st->bit < HEADER_BITS)
		iter_fail(it, st->bit, "resumed past the end of the chunk");
	else if ((unsigned)st->leading + st->trailing > 63)
		iter_fail(it, st->bit, "resumed with a value window of no bits");
}

void xor_iter_describe(const struct xor_iter *it, char *out, size_t cap)
{
	if (it->state >= 0 || !it->error) {
		snprintf(out, cap, "no error");
		return;
	}
	snprintf(out, cap, "sample %u of %u, bit %llu: %s", (unsigned)it->error_sample,
		 (unsigned)it->count, (unsigned long long)it->error_bit, it->error);
}

/* ---- reading a whole chunk: 64 bits peeked at a time ---- */

static int dod_fits(int64_t dod, unsigned n);

struct bitr {
	const uint8_t *p;
	size_t len;
	uint64_t bit;
};

/* The 64 bits from r->bit on, zeros past the end. */
static inline uint64_t rpeek(const struct bitr *r)
{
	size_t at = (size_t)(r->bit >> 3);
	uint8_t tmp[8] = { 0 };

	if (at + 8 <= r->len)
		return be64_get(r->p + at) << (r->bit & 7);
	if (at < r->len)
		memcpy(tmp, r->p + at, r->len - at);
	return be64_get(tmp) << (r->bit & 7);
}

/* n (1..64) bits. */
static inline uint64_t rget(struct bitr *r, unsigned n)
{
	uint64_t v;

	if (n > 56) {
		v = rget(r, n - 32) << 32;
		return v | rget(r, 32);
	}
	v = rpeek(r) >> (64 - n);
	r->bit += n;
	return v;
}

/* A uvarint; *bytes says how many it took (Go writes the fewest). */
static int rget_uvarint(struct bitr *r, uint64_t *out, unsigned *bytes)
{
	uint64_t v = 0, byte;

	for (unsigned i = 0; i < UVARINT_MAX_LEN; i++) {
		byte = rget(r, 8);
		if (byte < 0x80) {
			if (i == UVARINT_MAX_LEN - 1 && byte > 1)
				return -1;   /* over 64 bits */
			*out = v | byte << (7 * i);
			*bytes = i + 1;
			return 0;
		}
		v |= (byte & 0x7f) << (7 * i);
	}
	return -1;
}

/*
 * xor_read_all(), and with canon also whether the encoder writes these
 * samples as exactly these bytes: each field as it would choose it (the
 * fewest varint bytes, the smallest dod bucket, a value window reused
 * whenever it fits and else the exact one) and the chunk's end where it
 * would end it.
 */
static inline int read_all(const uint8_t *chunk, size_t len, int64_t *t, uint64_t *v, size_t cap, int canon)
{
	struct bitr r = { chunk, len, HEADER_BITS };
	uint64_t tdelta = 0, vbits = 0, u;
	unsigned lead = 0, trail = 0, bytes;
	size_t n = xor_chunk_count(chunk, len);
	int64_t tt = 0;
	int window = 0, byte_last = 0;

	if (len < 2 || n > cap)
		return -1;
	for (size_t k = 0; k < n; k++) {
		uint64_t w;

		if (k == 0) {
			if (rget_uvarint(&r, &u, &bytes) || (canon && bytes != uvarint_len(u)))
				return -1;
			tt = zigzag_decode(u);
			vbits = rget(&r, 64);
			byte_last = 1;
			goto done;
		}
		if (k == 1) {
			if (rget_uvarint(&r, &tdelta, &bytes) || (canon && bytes != uvarint_len(tdelta)))
				return -1;
		} else {
			static const unsigned field[] = { 14, 17, 20, 64 };
			unsigned ones;

			w = rpeek(&r);
			ones = (unsigned)__builtin_clzll(~w | 0x0fffffffffffffffULL);
			r.bit += ones + (ones < 4);
			if (ones) {
				unsigned nb = field[ones - 1];
				uint64_t dod = rget(&r, nb);

				if (nb < 64 && dod > (uint64_t)1 << (nb - 1))
					dod -= (uint64_t)1 << nb;
				/* the smallest bucket it fits: never 0, nor a smaller one */
				if (canon && (dod == 0 || (ones > 1 && dod_fits((int64_t)dod, field[ones - 2]))))
					return -1;
				tdelta += dod;
			}
		}
		tt = (int64_t)((uint64_t)tt + tdelta);
		w = rpeek(&r);
		if (w >> 63) {
			uint64_t xor;
			unsigned sig;

			r.bit += 2;
			if (w >> 62 == 3) {
				unsigned old_lead = lead, old_trail = trail;

				lead = (unsigned)rget(&r, 5);
				sig = (unsigned)rget(&r, 6);
				if (sig == 0)
					sig = 64;
				if (lead + sig > 64)
					return -1;
				trail = 64 - lead - sig;
				xor = rget(&r, sig) << trail;
				if (canon) {
					unsigned clz = xor ? (unsigned)__builtin_clzll(xor) : 64;

					/* a new window only when the old one cannot hold
					 * it, and exactly the xor's */
					if (!xor || (clz > 31 ? 31 : clz) != lead || (unsigned)__builtin_ctzll(xor) != trail ||
					    (window && (clz > 31 ? 31 : clz) >= old_lead &&
					     (unsigned)__builtin_ctzll(xor) >= old_trail))
						return -1;
				}
				window = 1;
			} else {
				sig = 64 - lead - trail;
				xor = rget(&r, sig) << trail;
				/* reused: only a window set before, and a change */
				if (canon && (!window || !xor))
					return -1;
			}
			vbits ^= xor;
			byte_last = sig % 8 == 0;
		} else {
			r.bit++;
			byte_last = 0;
		}
done:
		if (t) {
			t[k] = tt;
			v[k] = vbits;
		}
	}
	if (r.bit > (uint64_t)len * 8)
		return -1;
	if (canon) {
		/* where the encoder ends: the last byte's unused bits zero, and
		 * one more, empty, byte after a byte write on a boundary */
		uint64_t bits = r.bit - HEADER_BITS;
		size_t want = 2 + (size_t)((bits + 7) / 8) + (n && bits % 8 == 0 && byte_last);

		if (len != want || (r.bit < (uint64_t)len * 8 && rget(&r, (unsigned)((uint64_t)len * 8 - r.bit)) != 0))
			return -1;
	}
	return (int)n;
}

int xor_read_all(const uint8_t *chunk, size_t len, int64_t *t, uint64_t *v, size_t cap)
{
	return read_all(chunk, len, t, v, cap, 0);
}

int xor_read_canonical(const uint8_t *chunk, size_t len, int64_t *t, uint64_t *v, size_t cap)
{
	return read_all(chunk, len, t, v, cap, 1);
}

/* rpeek() with one load: the 64 bits from bit on, zeros past the end. */
static inline uint64_t cut_peek(const uint8_t *p, size_t len, uint64_t bit)
{
	size_t at = (size_t)(bit >> 3);
	uint64_t w;

	if (__builtin_expect(at + 8 > len, 0)) {
		struct bitr r = { p, len, bit };

		return rpeek(&r);
	}
	memcpy(&w, p + at, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap64(w);
#else
	w = be64_get(p + at);
#endif
	return w << (bit & 7);
}

/* n (1..64) bits from bit on. */
static inline uint64_t cut_get(const uint8_t *p, size_t len, uint64_t bit, unsigned n)
{
	if (n > 56)
		return cut_peek(p, len, bit) >> (64 - 32) << (n - 32) | cut_peek(p, len, bit + 32) >> (64 - (n - 32));
	return cut_peek(p, len, bit) >> (64 - n);
}

/*
 * xor_read_cut()'s reading: read_all()'s, for the position, time and value
 * alone (nothing stored, no canonical checks, the state in locals, a dod of
 * 0 and the value from one peek): compaction checks every cut with it, and
 * read_all() was a third of its time. Bits past the end read as zeros, and
 * decoding that has gone past the end fails, as with read_all().
 */
static int read_cut(const uint8_t *chunk, size_t len, struct xor_cut *cut)
{
	struct bitr r = { chunk, len, HEADER_BITS };
	const uint64_t end = (uint64_t)len * 8;
	uint64_t tdelta = 0, vbits, u, bit, w;
	unsigned width = 64, trail = 0, sig = 64, bytes;   /* the first value's 64 bits end on a byte */
	size_t count = cut->count, k = 1;
	int64_t tt;

	if (len < 2 || !count || count >= xor_chunk_count(chunk, len))
		return -1;
	if (rget_uvarint(&r, &u, &bytes))
		return -1;
	tt = zigzag_decode(u);
	vbits = rget(&r, 64);
	if (count == 1)
		goto done;
	if (rget_uvarint(&r, &tdelta, &bytes))
		return -1;
	bit = r.bit;
	/* the second sample's value follows its time delta */
	w = cut_peek(chunk, len, bit);
	for (;;) {
		unsigned used;

		tt = (int64_t)((uint64_t)tt + tdelta);
		if (!(w >> 63)) {
			bit++;
			sig = 0;
		} else {
			if (w >> 62 == 3) {
				unsigned lead = (unsigned)(w >> 57) & 31, n = (unsigned)(w >> 51) & 63;

				if (n == 0)
					n = 64;
				if (lead + n > 64)
					return -1;
				width = n;
				trail = 64 - lead - n;
				used = 13;
			} else {
				used = 2;
			}
			bit += used;
			if (used + width <= 56)
				vbits ^= (w << used) >> (64 - width) << trail;
			else
				vbits ^= cut_get(chunk, len, bit, width) << trail;
			bit += width;
			sig = width;
		}
		if (++k == count || bit > end)
			break;
		w = cut_peek(chunk, len, bit);
		if (!(w >> 63)) {
			/* dod 0: the value is in the same peek (56 bits left) */
			bit++;
			w <<= 1;
		} else {
			static const unsigned field[] = { 14, 17, 20, 64 };
			unsigned ones = (unsigned)__builtin_clzll(~w | 0x0fffffffffffffffULL);
			unsigned nb = field[ones - 1];
			uint64_t dod;

			bit += ones + (ones < 4);
			dod = cut_get(chunk, len, bit, nb);
			bit += nb;
			if (nb < 64 && dod > (uint64_t)1 << (nb - 1))
				dod -= (uint64_t)1 << nb;
			tdelta += dod;
			w = cut_peek(chunk, len, bit);
		}
	}
	r.bit = bit;
done:
	if (r.bit > end)
		return -1;
	{
		uint64_t bits = r.bit - HEADER_BITS;

		/* a sample that ends with a byte write on a boundary leaves an
		 * empty byte (see the top) */
		cut->len = 2 + (size_t)((bits + 7) / 8) + (bits % 8 == 0 && sig && sig % 8 == 0);
		cut->end_bit = r.bit;
		cut->t = tt;
		cut->v = vbits;
	}
	return cut->len <= len ? 0 : -1;
}

int xor_read_cut(const uint8_t *chunk, size_t len, struct xor_cut *cut)
{
	return read_cut(chunk, len, cut);
}

/* ---- writing: bstream's writeBit, writeByte and writeBits ---- */

/* The caller reserved room, so these appends cannot fail. */
static void put_empty_byte(struct xor_enc *e)
{
	e->out.p[e->out.len++] = 0;
	e->free_bits = 8;
}

static void put_bit(struct xor_enc *e, unsigned bit)
{
	if (e->free_bits == 0)
		put_empty_byte(e);
	if (bit)
		e->out.p[e->out.len - 1] |= (uint8_t)(1u << (e->free_bits - 1));
	e->free_bits--;
}

/* Fills the last byte's free bits and always appends the rest as a new
 * byte, even when nothing is left for it: Prometheus does. */
static void put_byte(struct xor_enc *e, unsigned byte)
{
	if (e->free_bits == 0)
		put_empty_byte(e);
	e->out.p[e->out.len - 1] |= (uint8_t)(byte >> (8 - e->free_bits));
	e->out.p[e->out.len++] = (uint8_t)(byte << e->free_bits);
}

/* The low n (1..64) bits of u: whole bytes first, then single bits. */
static void put_bits(struct xor_enc *e, uint64_t u, unsigned n)
{
	u <<= 64 - n;
	for (; n >= 8; n -= 8, u <<= 8)
		put_byte(e, (unsigned)(u >> 56));
	for (; n > 0; n--, u <<= 1)
		put_bit(e, (unsigned)(u >> 63));
}

static void put_varint_bytes(struct xor_enc *e, uint64_t u)
{
	uint8_t tmp[UVARINT_MAX_LEN];
	size_t n = uvarint_put(tmp, u);

	for (size_t i = 0; i < n; i++)
		put_byte(e, tmp[i]);
}

/* bitRange: does dod fit an n-bit field of the writer's range? */
static int dod_fits(int64_t dod, unsigned n)
{
	int64_t half = (int64_t)1 << (n - 1);

	return -(half - 1) <= dod && dod <= half;
}

static void put_dod(struct xor_enc *e, int64_t dod)
{
	if (dod == 0) {
		put_bit(e, 0);
	} else if (dod_fits(dod, 14)) {
		put_bits(e, 0x2, 2);
		put_bits(e, (uint64_t)dod, 14);
	} else if (dod_fits(dod, 17)) {
		put_bits(e, 0x6, 3);
		put_bits(e, (uint64_t)dod, 17);
	} else if (dod_fits(dod, 20)) {
		put_bits(e, 0xe, 4);
		put_bits(e, (uint64_t)dod, 20);
	} else {
		put_bits(e, 0xf, 4);
		put_bits(e, (uint64_t)dod, 64);
	}
}

static void put_value(struct xor_enc *e, uint64_t vbits)
{
	uint64_t xor = vbits ^ e->vbits;
	unsigned lead, trail, sig;

	if (xor == 0) {
		put_bit(e, 0);
		return;
	}
	put_bit(e, 1);
	lead = (unsigned)__builtin_clzll(xor);
	trail = (unsigned)__builtin_ctzll(xor);
	if (lead > 31)
		lead = 31;   /* the field has 5 bits */
	if (e->leading != NO_WINDOW && lead >= e->leading && trail >= e->trailing) {
		put_bit(e, 0);
		put_bits(e, xor >> e->trailing, 64u - e->leading - e->trailing);
		return;
	}
	e->leading = (uint8_t)lead;
	e->trailing = (uint8_t)trail;
	sig = 64 - lead - trail;
	put_bit(e, 1);
	put_bits(e, lead, 5);
	put_bits(e, sig & 63, 6);   /* 64 does not fit: 0 stands for it */
	put_bits(e, xor >> trail, sig);
}

void xor_enc_init(struct xor_enc *e)
{
	memset(e, 0, sizeof(*e));
	e->leading = NO_WINDOW;
}

int xor_enc_append(struct xor_enc *e, int64_t t, uint64_t vbits)
{
	uint64_t tdelta = 0;

	if (e->count == XOR_MAX_SAMPLES)
		return -1;
	/* reserving the worst case up front keeps a failed append a no-op */
	if (!buf_reserve(&e->out, SAMPLE_MAX_BYTES + (e->out.len ? 0 : 2))) {
		e->out.oom = 0;   /* nothing was half written; a retry may work */
		return -1;
	}
	if (e->out.len == 0) {
		be16_put(e->out.p, 0);   /* the header's bytes are full: no free bits */
		e->out.len = 2;
	}
	if (e->count == 0) {
		put_varint_bytes(e, zigzag_encode(t));
		put_bits(e, vbits, 64);
	} else {
		tdelta = (uint64_t)t - (uint64_t)e->t;
		if (e->count == 1)
			put_varint_bytes(e, tdelta);
		else
			put_dod(e, (int64_t)(tdelta - e->tdelta));
		put_value(e, vbits);
	}
	e->t = t;
	e->vbits = vbits;
	e->tdelta = tdelta;
	e->count++;
	be16_put(e->out.p, e->count);
	return 0;
}

/* ---- the same over reserved room: one 64-bit word of pending bits ---- */

void xor_writer_begin(struct xor_writer *w, uint8_t *room)
{
	memset(w, 0, sizeof(*w));
	w->start = room;
	w->p = room + 2;
	w->leading = NO_WINDOW;
}

/*
 * bstream's writeBits(u, n) (n 1..64), or writeBit when n is 1; several
 * calls may be merged into one when the last of them is not the sample's
 * last: only the last call decides whether the chunk ends in an empty byte.
 */
static inline void wput(struct xor_writer *w, uint64_t u, unsigned n)
{
	unsigned room = 64 - w->pending;

	if (n < 64)
		u &= ((uint64_t)1 << n) - 1;
	w->bits += n;
	w->byte_last = n % 8 == 0;
	if (n < room) {
		w->acc |= u << (room - n);
		w->pending += n;
		return;
	}
	w->acc |= u >> (n - room);
	be64_put(w->p, w->acc);
	w->p += 8;
	w->pending = n - room;
	w->acc = w->pending ? u << (64 - w->pending) : 0;
}

static void wput_varint_bytes(struct xor_writer *w, uint64_t u)
{
	uint8_t tmp[UVARINT_MAX_LEN];
	size_t n = uvarint_put(tmp, u);

	for (size_t i = 0; i < n; i++)
		wput(w, tmp[i], 8);
}

static void wput_value(struct xor_writer *w, uint64_t vbits)
{
	uint64_t xor = vbits ^ w->vbits;
	unsigned lead, trail, sig;

	if (xor == 0) {
		wput(w, 0, 1);
		return;
	}
	lead = (unsigned)__builtin_clzll(xor);
	trail = (unsigned)__builtin_ctzll(xor);
	if (lead > 31)
		lead = 31;
	if (w->leading != NO_WINDOW && lead >= w->leading && trail >= w->trailing) {
		wput(w, 0x2, 2);
		wput(w, xor >> w->trailing, 64u - w->leading - w->trailing);
		return;
	}
	w->leading = (uint8_t)lead;
	w->trailing = (uint8_t)trail;
	sig = 64 - lead - trail;
	wput(w, (uint64_t)0x3 << 11 | (uint64_t)lead << 6 | (sig & 63), 13);
	wput(w, xor >> trail, sig);
}

void xor_writer_append(struct xor_writer *w, int64_t t, uint64_t vbits)
{
	uint64_t tdelta = 0;

	if (w->count == 0) {
		wput_varint_bytes(w, zigzag_encode(t));
		wput(w, vbits, 64);
	} else {
		int64_t dod;

		tdelta = (uint64_t)t - (uint64_t)w->t;
		dod = (int64_t)(tdelta - w->tdelta);
		if (w->count == 1)
			wput_varint_bytes(w, tdelta);
		else if (dod == 0)
			wput(w, 0, 1);
		else if (dod_fits(dod, 14))
			wput(w, (uint64_t)0x2 << 14 | ((uint64_t)dod & 0x3fff), 16);
		else if (dod_fits(dod, 17))
			wput(w, (uint64_t)0x6 << 17 | ((uint64_t)dod & 0x1ffff), 20);
		else if (dod_fits(dod, 20))
			wput(w, (uint64_t)0xe << 20 | ((uint64_t)dod & 0xfffff), 24);
		else
			wput(w, 0xf, 4), wput(w, (uint64_t)dod, 64);
		wput_value(w, vbits);
	}
	w->t = t;
	w->vbits = vbits;
	w->tdelta = tdelta;
	w->count++;
}

size_t xor_writer_end(struct xor_writer *w)
{
	size_t len = 2 + (size_t)((w->bits + 7) / 8);

	/* writeByte on a byte boundary leaves one more, empty, byte */
	if (w->bits % 8 == 0 && w->byte_last && w->count)
		len++;
	be64_put(w->p, w->acc);
	if (w->bits % 8 == 0 && w->byte_last && w->count)
		w->start[len - 1] = 0;
	be16_put(w->start, w->count);
	return len;
}

const uint8_t *xor_enc_bytes(const struct xor_enc *e, size_t *len)
{
	static const uint8_t empty[2];

	if (e->out.len == 0) {
		*len = sizeof(empty);
		return empty;
	}
	*len = e->out.len;
	return e->out.p;
}

void xor_enc_free(struct xor_enc *e)
{
	buf_free(&e->out);
	xor_enc_init(e);
}
