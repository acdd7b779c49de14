/*
 * recode: a series record's XOR chunk as byte-aligned samples (recode.h).
 */
#include "recode.h"

#include <math.h>
#include <stdlib.h>

#include "record.h"
#include "xor.h"

#define MODE_FLOATS 0xff
#define E_MAX 15                /* values scaled by at most 10^15 */
#define INT_LIMIT 9007199254740992.0   /* 2^53: every integer up to it is a double */
#define TAIL_LEN 64             /* the sample buffer after an XOR chunk */

static const double pow10_tab[E_MAX + 1] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

void recode_scratch_free(struct recode_scratch *s)
{
	free(s->t);
	free(s->v);
	s->t = NULL;
	s->v = NULL;
	s->cap = 0;
}

static int scratch_room(struct recode_scratch *s, size_t n)
{
	int64_t *t;
	uint64_t *v;

	if (n <= s->cap)
		return 0;
	t = realloc(s->t, n * sizeof(*t));
	if (t)
		s->t = t;
	v = realloc(s->v, n * sizeof(*v));
	if (v)
		s->v = v;
	if (!t || !v)
		return -1;
	s->cap = n;
	return 0;
}

/* The value an integer i stands for with scale e: i / 10^e. */
static uint64_t scaled_bits(uint64_t i, unsigned e)
{
	double x = (double)(int64_t)i;

	return f64_bits(e ? x / pow10_tab[e] : x);
}

/*
 * Whether every value is an integer divided by 10^e that gives back its
 * exact bits; the integers go to out.
 */
static int scale_fits(const uint64_t *v, size_t n, unsigned e, int64_t *out)
{
	for (size_t k = 0; k < n; k++) {
		double y = f64_from_bits(v[k]) * pow10_tab[e];
		int64_t i;

		if (!(fabs(y) < INT_LIMIT))   /* also NaN and infinities */
			return 0;
		i = (int64_t)(y < 0 ? y - 0.5 : y + 0.5);   /* the check below decides */
		if (scaled_bits((uint64_t)i, e) != v[k])
			return 0;
		out[k] = i;
	}
	return 1;
}

static size_t zz_len(uint64_t d) { return uvarint_len(zigzag_encode((int64_t)d)); }

static size_t xor_field_len(uint64_t x)
{
	if (!x)
		return 1;
	return 1 + 8 - (size_t)(__builtin_clzll(x) / 8) - (size_t)(__builtin_ctzll(x) / 8);
}

/* A varint of a difference taken in wrapping arithmetic. */
static size_t put_varint(uint8_t *p, uint64_t d)
{
	uint64_t z = zigzag_encode((int64_t)d);

	if (z < 0x80) {
		*p = (uint8_t)z;
		return 1;
	}
	return uvarint_put(p, z);
}

static size_t put_xor_field(uint8_t *p, uint64_t x)
{
	unsigned l, r;

	if (!x) {
		*p = 0;
		return 1;
	}
	l = (unsigned)__builtin_clzll(x) / 8;
	r = (unsigned)__builtin_ctzll(x) / 8;
	*p++ = (uint8_t)(0x80 | l << 3 | r);
	for (unsigned j = l; j < 8 - r; j++)   /* byte j, most significant first */
		*p++ = (uint8_t)(x >> (8 * (7 - j)));
	return 1 + 8 - l - r;
}

/*
 * The value mode that stores v in the fewest bytes (before LZ4): integers
 * (scaled by the smallest 10^e that fits) as differences or second
 * differences, else the floats' xor fields. The integers are left in ints.
 */
static uint8_t choose_mode(const uint64_t *v, size_t n, int64_t *ints)
{
	size_t floats = 8, d1, d2, best;
	unsigned e;

	for (e = 0; e <= E_MAX; e++)
		if (scale_fits(v, n, e, ints))
			break;
	if (e > E_MAX)
		return MODE_FLOATS;
	d1 = d2 = zz_len((uint64_t)ints[0]);
	for (size_t k = 1; k < n; k++) {
		uint64_t delta = (uint64_t)ints[k] - (uint64_t)ints[k - 1];

		d1 += zz_len(delta);
		d2 += zz_len(k == 1 ? delta : delta - ((uint64_t)ints[k - 1] - (uint64_t)ints[k - 2]));
	}
	best = d1 < d2 ? d1 : d2;
	for (size_t k = 1; k < n && floats < best; k++)
		floats += xor_field_len(v[k] ^ v[k - 1]);
	if (floats < best)
		return MODE_FLOATS;
	return (uint8_t)(e << 1 | (d2 <= d1));   /* a steady rate: runs of zeros */
}

/*
 * About what LZ4 makes of the samples: their fields' bytes, but a run of
 * zero fields (a repeated time step, an unchanged value) as a match of
 * about 3 bytes. Counted as the fields are written.
 */
struct estimate {
	size_t bytes, run;
};

static inline size_t counted(struct estimate *es, size_t len, const uint8_t *field)
{
	if (len == 1 && field[0] == 0) {
		es->run++;
	} else {
		es->bytes += len + (es->run < 4 ? es->run : 3);
		es->run = 0;
	}
	return len;
}

static size_t estimate_end(const struct estimate *es)
{
	return es->bytes + (es->run < 4 ? es->run : 3);
}

/*
 * Reads a series record's fields from its ref to its chunk encoding byte,
 * which must be XOR; returns the chunk's mint.
 */
static uint64_t read_prefix(struct dec *d)
{
	uint64_t nlabels, mint;

	dec_bytes(d, 8, "series ref");
	nlabels = dec_uvarint(d, "label count");
	if (nlabels > dec_left(d) / 2)
		dec_fail(d, "label count", "more labels than bytes");
	for (uint64_t k = 0; k < nlabels && dec_ok(d); k++) {
		size_t l;

		dec_uvarint_bytes(d, &l, "label name");
		dec_uvarint_bytes(d, &l, "label value");
	}
	dec_bytes(d, 8, "chunk range");
	if (dec_uvarint(d, "chunk exists") != 1)
		dec_fail(d, "chunk exists", "a recoded record has a chunk");
	mint = dec_be64(d, "chunk mint");
	dec_be64(d, "chunk maxt");
	if (dec_byte(d, "chunk encoding") != CHUNK_XOR)
		dec_fail(d, "chunk encoding", "not XOR");
	return mint;
}

/* Sample k's time field: t - mint, t - t1, then the change of the step. */
static inline uint64_t time_field(const int64_t *t, size_t k, int64_t mint)
{
	uint64_t d;

	if (k == 0)
		return (uint64_t)t[0] - (uint64_t)mint;
	d = (uint64_t)t[k] - (uint64_t)t[k - 1];
	return k == 1 ? d : d - ((uint64_t)t[k - 1] - (uint64_t)t[k - 2]);
}

/* Sample k's value field in the mode: floats their bits, then the xor with
 * the one before; integers the first, then the differences (or their
 * changes). */
static inline uint64_t value_field(const uint64_t *v, const int64_t *ints, size_t k, uint8_t mode)
{
	uint64_t d;

	if (mode == MODE_FLOATS)
		return k ? v[k] ^ v[k - 1] : v[0];
	if (k == 0)
		return (uint64_t)ints[0];
	d = (uint64_t)ints[k] - (uint64_t)ints[k - 1];
	return k == 1 || !(mode & 1) ? d : d - ((uint64_t)ints[k - 1] - (uint64_t)ints[k - 2]);
}

int recode_pack(const uint8_t *rec, size_t len, struct buf *out, struct recode_scratch *s)
{
	struct rec_series sr;
	struct estimate es = { 0, 0 };
	struct dec d;
	struct err e;
	size_t start = out->len, prefix, tail_len, n, k, zt, zv;
	uint8_t *p;
	int64_t *ints;
	uint8_t mode;

	if (len == 0 || rec[0] != 1 || rec_series_decode(&sr, rec, len, &e) || !sr.has_chunk ||
	    sr.encoding != CHUNK_XOR || !sr.tail)
		return 0;
	n = xor_chunk_count(sr.chunk, sr.chunk_len);
	prefix = (size_t)(sr.chunk - rec) - uvarint_len(sr.chunk_len);
	/* unpack() finds the chunk's place by reading the prefix: it must
	 * read it as the record's decoder did */
	dec_init(&d, rec, prefix);
	dec_byte(&d, "record type");
	if (n == 0 || read_prefix(&d) != (uint64_t)sr.mint || !dec_ok(&d) || dec_left(&d))
		return 0;
	/* the times, then the values; the scaled integers reuse the times' room */
	if (scratch_room(s, 2 * n))
		return -1;
	/* recoded only when Prometheus' encoder writes these samples as these
	 * bytes, as unpack() writes them again; the rest of the record is
	 * copied, or (the tail) checked below */
	if (xor_read_canonical(sr.chunk, sr.chunk_len, s->t, s->v, n) != (int)n)
		return 0;
	ints = s->t + n;
	mode = choose_mode(s->v, n, ints);

	tail_len = len - (size_t)(sr.tail - rec);
	/* worst case: 10 bytes a time and a value, the tail as it is */
	if (!(p = buf_reserve(out, prefix + 2 * UVARINT_MAX_LEN + 20 * n + 1 + tail_len)))
		return -1;
	*p++ = RECODE_SERIES;
	memcpy(p, rec + 1, prefix - 1);
	p += prefix - 1;
	p += uvarint_put(p, n);
	*p++ = mode;
	/* each stream without the zero fields that end it (a steady scrape
	 * interval, a steady rate), which its count of them stands for */
	for (zt = 0; zt < n && time_field(s->t, n - 1 - zt, sr.mint) == 0; zt++)
		;
	p += uvarint_put(p, zt);
	for (k = 0; k < n - zt; k++)
		p += counted(&es, put_varint(p, time_field(s->t, k, sr.mint)), p);
	for (zv = 0; zv < n && value_field(s->v, ints, n - 1 - zv, mode) == 0; zv++)
		;
	p += uvarint_put(p, zv);
	for (k = 0; k < n - zv; k++) {
		uint64_t f = value_field(s->v, ints, k, mode);

		if (mode != MODE_FLOATS) {
			p += counted(&es, put_varint(p, f), p);
		} else if (k == 0) {
			be64_put(p, f);
			p += counted(&es, 8, p);
		} else {
			p += counted(&es, put_xor_field(p, f), p);
		}
	}
	if (tail_len == TAIL_LEN && be64_get(sr.tail + 56) == s->v[n - 1] &&
	    !memcmp(sr.tail, (const uint8_t[56]){ 0 }, 56)) {
		*p++ = 0;
	} else {
		*p++ = 1;
		memcpy(p, sr.tail, tail_len);
		p += tail_len;
	}
	out->len = (size_t)(p - out->p);
	/* worth it only if LZ4 will likely store less than the chunk (full
	 * precision floats: Gorilla's bit windows beat whole bytes) */
	if (estimate_end(&es) >= sr.chunk_len + TAIL_LEN / 8) {
		out->len = start;
		return 0;
	}

	return 1;
}

/* dec_varint, with one-byte varints (most times and values) inline. */
static inline uint64_t get_varint(struct dec *d, const char *what)
{
	if (d->p < d->end && *d->p < 0x80 && !d->failed) {
		uint64_t z = *d->p++;

		return (z >> 1) ^ -(z & 1);
	}
	return (uint64_t)dec_varint(d, what);
}

static int corrupt(struct dec *d, struct err *e)
{
	char why[200];

	dec_describe(d, why, sizeof(why));
	return err_set(e, SNAPARC_CORRUPT, "recoded record, %s", why);
}

int recode_unpack(const uint8_t *p, size_t len, struct buf *out, struct err *e)
{
	struct xor_writer x;
	struct dec d, dv;
	uint64_t n, zt, zv, t = 0, tdelta = 0, v = 0, i = 0, idelta = 0, mint;
	size_t prefix, chunk_len, ulen;
	uint8_t mode, tail, *room;
	unsigned e10 = 0;

	dec_init(&d, p, len);
	if (dec_byte(&d, "record type") != RECODE_SERIES)
		dec_fail(&d, "record type", "not a recoded series");
	mint = read_prefix(&d);
	prefix = dec_offset(&d);
	n = dec_uvarint(&d, "sample count");
	if (dec_ok(&d) && (n == 0 || n > XOR_MAX_SAMPLES))
		dec_fail(&d, "sample count", "not 1 to 65535");
	mode = dec_byte(&d, "value mode");
	if (mode != MODE_FLOATS && mode >> 1 > E_MAX)
		dec_fail(&d, "value mode", "unknown");
	if (!dec_ok(&d))
		return corrupt(&d, e);
	e10 = mode >> 1;

	/* the times come first, the values after them: a second cursor */
	zt = dec_uvarint(&d, "time fields left out");
	if (dec_ok(&d) && zt > n)
		dec_fail(&d, "time fields left out", "more than the samples");
	dv = d;
	for (uint64_t k = 0; k < n - zt && dec_ok(&dv); k++)
		get_varint(&dv, "sample time");
	zv = dec_uvarint(&dv, "value fields left out");
	if (dec_ok(&dv) && zv > n)
		dec_fail(&dv, "value fields left out", "more than the samples");
	if (!dec_ok(&d))
		return corrupt(&d, e);
	if (!dec_ok(&dv))
		return corrupt(&dv, e);
	/* the record's prefix, room for the chunk's length and the chunk, and
	 * for the tail, which is at most 64 bytes or what is left of p */
	buf_reset(out);
	room = buf_reserve(out, prefix + 3 + XOR_WRITER_ROOM(n) + (len > TAIL_LEN ? len : TAIL_LEN));
	if (!room)
		return err_set(e, SNAPARC_NOMEM, "out of memory for a %zu-byte recoded record", len);
	room[0] = 1;
	memcpy(room + 1, p + 1, prefix - 1);
	xor_writer_begin(&x, room + prefix + 3);
	for (uint64_t k = 0; k < n && dec_ok(&dv); k++) {
		uint64_t dt = k < n - zt ? get_varint(&d, "sample time") : 0;

		if (k == 0)
			t = mint + dt;
		else if (k == 1)
			tdelta = dt, t += tdelta;
		else
			tdelta += dt, t += tdelta;
		if (mode == MODE_FLOATS) {
			uint8_t c;

			if (k >= n - zv) {
				v = k ? v : 0;
			} else if (k == 0) {
				v = dec_be64(&dv, "sample value");
			} else if ((c = dec_byte(&dv, "sample value")) != 0) {
				unsigned l = c >> 3 & 7, r = c & 7;
				const uint8_t *b;
				uint64_t mid = 0;

				if (!(c & 0x80) || l + r > 7) {
					dec_fail(&dv, "sample value", "bad xor field");
					break;
				}
				if (!(b = dec_bytes(&dv, 8 - l - r, "sample value")))
					break;
				for (unsigned j = 0; j < 8 - l - r; j++)
					mid = mid << 8 | b[j];
				v ^= mid << (8 * r);
			}
		} else {
			uint64_t di = k < n - zv ? get_varint(&dv, "sample value") : 0;

			if (k == 0)
				i = di;
			else if (k == 1 || !(mode & 1))
				idelta = di, i += di;
			else
				idelta += di, i += idelta;
			v = scaled_bits(i, e10);
		}
		if (dec_ok(&dv))
			xor_writer_append(&x, (int64_t)t, v);
	}
	if (!dec_ok(&dv))
		return corrupt(&dv, e);
	d = dv;
	tail = dec_byte(&d, "tail");
	if (dec_ok(&d) && tail > 1)
		dec_fail(&d, "tail", "unknown");
	if (dec_ok(&d) && tail == 0 && dec_left(&d))
		dec_fail(&d, "tail", "bytes after the record's end");
	if (!dec_ok(&d))
		return corrupt(&d, e);
	/* the chunk's length goes before it: at most 3 bytes (under 2 MiB) */
	chunk_len = xor_writer_end(&x);
	ulen = uvarint_len(chunk_len);
	if (ulen < 3)
		memmove(room + prefix + ulen, room + prefix + 3, chunk_len);
	uvarint_put(room + prefix, chunk_len);
	room += prefix + ulen + chunk_len;
	if (tail == 0) {
		memset(room, 0, 56);
		be64_put(room + 56, v);
		room += TAIL_LEN;
	} else {
		memcpy(room, d.p, dec_left(&d));
		room += dec_left(&d);
	}
	out->len = (size_t)(room - out->p);
	return 0;
}
