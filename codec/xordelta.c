/* The append delta: see xordelta.h for the payload. */
#include "xordelta.h"

#include <stdio.h>
#include <string.h>

#include "record.h"
#include "wal.h"
#include "xor.h"

#define TAIL_KEEP (REC_XOR_TAIL_LEN - 8)   /* the tail's bytes before the last value */

#define ENDS_CARRY 0x80   /* in the padding byte: no window and time delta follow */

struct hdr {
	struct lz4dict_base base;
	unsigned base_pad, new_pad;
	int has_state;
	uint8_t leading, trailing;
	uint64_t tdelta, nbits;
	const uint8_t *bits;
};

int xordelta_is(const uint8_t *p, size_t len)
{
	size_t i = 1;

	if (len < 4 || p[0] != 0)
		return 0;
	/* skip the base segment and offset */
	for (int k = 0; k < 2; k++) {
		while (i < len && (p[i] & 0x80))
			i++;
		i++;
	}
	/* the mark, then a base span (> 0: its first byte is not 0); a second 0
	 * marks a prefix delta (lz4dict.h) */
	return i + 1 < len && p[i] == 0 && p[i + 1] != 0;
}

static int parse(const uint8_t *p, size_t len, struct hdr *h, struct err *e)
{
	struct dec d;
	uint64_t id, seg, off, mark, span, ends, win;

	if (!xordelta_is(p, len))
		return err_set(e, SNAPARC_CORRUPT, "append delta: not marked as one");
	dec_init(&d, p, len);
	id = dec_uvarint(&d, "delta kind");
	seg = dec_uvarint(&d, "append delta base segment");
	off = dec_uvarint(&d, "append delta base offset");
	mark = dec_uvarint(&d, "append delta mark");
	span = dec_uvarint(&d, "append delta base span");
	ends = dec_byte(&d, "append delta padding");
	h->has_state = !(ends & ENDS_CARRY);
	ends &= ~(uint64_t)ENDS_CARRY;
	win = h->has_state ? dec_uvarint(&d, "append delta value window") : 0;
	h->tdelta = h->has_state ? dec_uvarint(&d, "append delta time delta") : 0;
	h->nbits = dec_uvarint(&d, "append delta bit count");
	if (!dec_ok(&d)) {
		char why[200];

		dec_describe(&d, why, sizeof(why));
		return err_set(e, SNAPARC_CORRUPT, "append delta: %s", why);
	}
	if (id != 0 || mark != 0)
		return err_set(e, SNAPARC_CORRUPT, "append delta: not marked as one");
	if (seg > UINT32_MAX || span > UINT32_MAX || span == 0 || off > INT64_MAX)
		return err_set(e, SNAPARC_CORRUPT, "append delta: base at segment %llu offset %llu span %llu is impossible",
			       (unsigned long long)seg, (unsigned long long)off, (unsigned long long)span);
	if (ends >= 81)
		return err_set(e, SNAPARC_CORRUPT, "append delta: padding byte %llu is over 80", (unsigned long long)ends);
	if (win >= 1u << 11 || (win & 31) + (win >> 5) > 63)
		return err_set(e, SNAPARC_CORRUPT, "append delta: value window %llu is impossible", (unsigned long long)win);
	if (h->nbits > (uint64_t)dec_left(&d) * 8 || (h->nbits + 7) / 8 != dec_left(&d))
		return err_set(e, SNAPARC_CORRUPT, "append delta: %llu bits stated, %zu bytes hold them",
			       (unsigned long long)h->nbits, dec_left(&d));
	h->base.segment = (uint32_t)seg;
	h->base.offset = off;
	h->base.span = (uint32_t)span;
	h->base_pad = (unsigned)ends / 9;
	h->new_pad = (unsigned)ends % 9;
	h->leading = (uint8_t)(win & 31);
	h->trailing = (uint8_t)(win >> 5);
	h->bits = d.p;
	if (h->nbits && (h->bits[(h->nbits - 1) / 8] & (0xffu >> (1 + (h->nbits - 1) % 8))))
		return err_set(e, SNAPARC_CORRUPT, "append delta: nonzero bits after the appended ones");
	return 0;
}

int xordelta_base(const uint8_t *p, size_t len, struct lz4dict_base *base, struct err *e)
{
	struct hdr h;
	int rc = parse(p, len, &h, e);

	if (!rc)
		*base = h.base;
	return rc;
}

/* ORs n bits of src (from bit 0, the rest of its last byte zero) into dst
 * (dst_len bytes, zero from bit `at` on) at bit `at`. */
static void put_bits_at(uint8_t *dst, size_t dst_len, uint64_t at, const uint8_t *src, uint64_t n)
{
	size_t i = (size_t)(at >> 3), nb = (size_t)((n + 7) / 8);
	unsigned sh = (unsigned)(at & 7);

	for (size_t k = 0; k < nb; k++) {
		dst[i + k] |= (uint8_t)(src[k] >> sh);
		if (sh && i + k + 1 < dst_len)
			dst[i + k + 1] |= (uint8_t)(src[k] << (8 - sh));
	}
}

/* Copies n bits of src (src_len bytes) from bit `at` into dst aligned at
 * bit 0, the rest of the last byte zero. */
static void get_bits_at(uint8_t *dst, const uint8_t *src, size_t src_len, uint64_t at, uint64_t n)
{
	size_t i = (size_t)(at >> 3), nb = (size_t)((n + 7) / 8);
	unsigned sh = (unsigned)(at & 7);

	for (size_t k = 0; k < nb; k++) {
		unsigned v = (unsigned)src[i + k] << sh;

		if (sh && i + k + 1 < src_len)
			v |= src[i + k + 1] >> (8 - sh);
		dst[k] = (uint8_t)v;
	}
	if (n & 7)
		dst[nb - 1] &= (uint8_t)(0xff00u >> (n & 7));
}

/* Where the base's maxt field starts: the record is type, ref, labels, chunk
 * range, chunk flag, mint, maxt, encoding, uvarint length, chunk. */
static size_t maxt_at(const struct rec_series *s, const uint8_t *rec)
{
	return (size_t)(s->chunk - rec) - uvarint_len(s->chunk_len) - 1 - 8;
}

static int series_ok(const struct rec_series *s)
{
	return s->has_chunk && s->encoding == CHUNK_XOR && s->tail_len == REC_XOR_TAIL_LEN && s->chunk_len >= 2;
}

/* The series a chain of append deltas is applied to: the base's record up
 * to maxt, its tail and the chunk as it grows. */
struct work {
	struct buf chunk;
	int carry;                  /* tdelta, leading and trailing are known */
	uint64_t tdelta;
	uint8_t leading, trailing;
	uint16_t count;
	int64_t t;
	uint64_t v;
};

/* Appends one payload's bits to w. A payload without the decoder's state
 * takes it from the last sample w holds, which the previous payload of the
 * chain decoded (w->carry). */
static int apply_hop(const struct hdr *h, struct work *w, struct err *e)
{
	struct xor_state st;
	struct xor_iter it;
	uint64_t bb = (uint64_t)w->chunk.len * 8, nb, nlen, cnt = 0, keep;
	int64_t t = w->t;
	uint64_t v = w->v;
	int rc;

	if (h->base_pad > bb - 16)
		return err_set(e, SNAPARC_CORRUPT, "append delta: %u padding bits in a %zu-byte base chunk", h->base_pad,
			       w->chunk.len);
	bb -= h->base_pad;
	nb = bb + h->nbits;
	if ((nb + h->new_pad) % 8)
		return err_set(e, SNAPARC_CORRUPT, "append delta: %llu bits and %u padding bits are not whole bytes",
			       (unsigned long long)nb, h->new_pad);
	nlen = (nb + h->new_pad) / 8;
	if (nlen > WAL_MAX_RECORD)
		return err_set(e, SNAPARC_CORRUPT, "append delta: a %llu-byte chunk", (unsigned long long)nlen);
	keep = (bb + 7) / 8;
	if (nlen > w->chunk.len && !buf_reserve(&w->chunk, (size_t)(nlen - w->chunk.len)))
		return err_set(e, SNAPARC_NOMEM, "out of memory for a %llu-byte chunk", (unsigned long long)nlen);
	if (nlen > keep)
		memset(w->chunk.p + keep, 0, (size_t)(nlen - keep));
	if (bb & 7)
		w->chunk.p[bb / 8] &= (uint8_t)(0xff00u >> (bb & 7));
	w->chunk.len = (size_t)nlen;
	if (h->nbits)
		put_bits_at(w->chunk.p, w->chunk.len, bb, h->bits, h->nbits);
	st.bit = bb;
	st.done = w->count;
	st.t = w->t;
	st.vbits = w->v;
	if (h->has_state) {
		st.tdelta = h->tdelta;
		st.leading = h->leading;
		st.trailing = h->trailing;
	} else if (w->carry) {
		st.tdelta = w->tdelta;
		st.leading = w->leading;
		st.trailing = w->trailing;
	} else {
		return err_set(e, SNAPARC_CORRUPT, "append delta: no decoder state, and its base is not an append delta");
	}
	xor_iter_resume(&it, w->chunk.p, nb, &st);
	while ((rc = xor_iter_next(&it, &t, &v)) == 1)
		cnt++;
	if (rc < 0) {
		char why[200];

		xor_iter_describe(&it, why, sizeof(why));
		return err_set(e, SNAPARC_CORRUPT, "append delta: appended samples: %s", why);
	}
	xor_iter_state(&it, &st);
	w->carry = 1;
	w->tdelta = st.tdelta;
	w->leading = st.leading;
	w->trailing = st.trailing;
	w->count = (uint16_t)(w->count + cnt);
	w->t = t;
	w->v = v;
	be16_put(w->chunk.p, w->count);
	return 0;
}

/*
 * Replaces out's contents by the record b (decoded from rec) with maxt, the
 * chunk (its first len bytes from chunk, its count in the header set to
 * count) and the last value in the tail given: the bytes before maxt and
 * the rest of the tail are b's.
 */
static int put_series(struct buf *out, const struct rec_series *b, const uint8_t *rec, int64_t maxt,
		      const uint8_t *chunk, size_t len, uint16_t count, uint64_t last, struct err *e)
{
	size_t at = maxt_at(b, rec), head = at + 8 + 1 + uvarint_len(len);
	uint8_t *o;

	buf_reset(out);
	if (!(o = buf_reserve(out, head + len + REC_XOR_TAIL_LEN)))
		return err_set(e, SNAPARC_NOMEM, "out of memory for a %zu-byte record", head + len + REC_XOR_TAIL_LEN);
	memcpy(o, rec, at);
	be64_put(o + at, (uint64_t)maxt);
	o[at + 8] = CHUNK_XOR;
	uvarint_put(o + at + 9, len);
	memcpy(o + head, chunk, len);
	be16_put(o + head, count);
	memcpy(o + head + len, b->tail, TAIL_KEEP);
	be64_put(o + head + len + TAIL_KEEP, last);
	out->len = head + len + REC_XOR_TAIL_LEN;
	return 0;
}

/* apply_chain() on a base already decoded into b. */
static int apply_decoded(const uint8_t *const *p, const size_t *len, size_t n, const struct rec_series *bp,
			 const uint8_t *base_rec, const struct xor_state *carry, struct buf *out, struct err *e)
{
	const struct rec_series b = *bp;
	struct work w = { 0 };
	int rc;

	buf_put(&w.chunk, b.chunk, b.chunk_len);
	if (w.chunk.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	w.count = xor_chunk_count(b.chunk, b.chunk_len);
	w.t = b.maxt;
	w.v = b.last_value;
	if (carry) {
		w.carry = 1;
		w.tdelta = carry->tdelta;
		w.leading = carry->leading;
		w.trailing = carry->trailing;
	}
	for (size_t i = 0; i < n; i++) {
		struct hdr h;

		if ((rc = parse(p[i], len[i], &h, e)) || (rc = apply_hop(&h, &w, e))) {
			buf_free(&w.chunk);
			return rc;
		}
	}
	rc = put_series(out, &b, base_rec, w.t, w.chunk.p, w.chunk.len, w.count, w.v, e);
	buf_free(&w.chunk);
	return rc;
}

static int apply_chain(const uint8_t *const *p, const size_t *len, size_t n, const uint8_t *base_rec,
		       size_t base_len, const struct xor_state *carry, struct buf *out, struct err *e)
{
	struct rec_series b;
	int rc;

	if ((rc = rec_series_decode(&b, base_rec, base_len, e)))
		return err_prefix(e, "append delta base");
	if (!series_ok(&b))
		return err_set(e, SNAPARC_CORRUPT, "append delta: the base record has no XOR chunk");
	return apply_decoded(p, len, n, &b, base_rec, carry, out, e);
}

int xordelta_apply_chain(const uint8_t *const *p, const size_t *len, size_t n, const uint8_t *base_rec,
			 size_t base_len, struct buf *out, struct err *e)
{
	return apply_chain(p, len, n, base_rec, base_len, NULL, out, e);
}

int xordelta_apply(const uint8_t *p, size_t len, const uint8_t *base_rec, size_t base_len, struct buf *out,
		   struct err *e)
{
	return apply_chain(&p, &len, 1, base_rec, base_len, NULL, out, e);
}

/*
 * A series record's fields from its maxt on (at: where maxt starts), when
 * its bytes before are known to be those of a record decoded whole: its
 * labels need not be decoded again. The fields before maxt are left as they
 * are. 0, or -1 when it is not then a series with an XOR chunk (the check
 * of the payload made from it is what proves the rest right).
 */
static int fields_from_maxt(struct rec_series *n, const uint8_t *rec, size_t len, size_t at)
{
	uint64_t clen;
	int k;

	if (len < at + 9 || rec[at + 8] != CHUNK_XOR)
		return -1;
	n->has_chunk = 1;
	n->encoding = CHUNK_XOR;
	n->tail_len = REC_XOR_TAIL_LEN;
	n->maxt = (int64_t)be64_get(rec + at);
	if ((k = uvarint_get(rec + at + 9, len - at - 9, &clen)) <= 0 || clen > len - at - 9 - (size_t)k ||
	    len - at - 9 - (size_t)k - clen != REC_XOR_TAIL_LEN)
		return -1;
	n->chunk = rec + at + 9 + k;
	n->chunk_len = (size_t)clen;
	n->tail = n->chunk + clen;
	n->last_value = be64_get(n->tail + REC_XOR_TAIL_LEN - 8);
	return series_ok(n) ? 0 : -1;
}

int xordelta_make(const struct lz4dict_base *base, const uint8_t *base_rec, size_t base_len, const uint8_t *rec,
		  size_t len, int carry, size_t limit, struct buf *out)
{
	struct rec_series b, n;
	struct xor_iter it;
	struct xor_state st, last;
	struct buf check = { 0 };
	uint16_t cb, cn;
	int64_t t;
	uint64_t v, nbits, bpad, npad, win;
	size_t at, start = out->len, need;
	uint8_t *o;
	int rc;

	if (rec_series_decode(&b, base_rec, base_len, NULL) || !series_ok(&b))
		return 0;
	at = maxt_at(&b, base_rec);
	n = b;
	if (len < at || memcmp(base_rec, rec, at) != 0 || fields_from_maxt(&n, rec, len, at))
		return 0;
	cb = xor_chunk_count(b.chunk, b.chunk_len);
	cn = xor_chunk_count(n.chunk, n.chunk_len);
	if (cn < cb)
		return 0;
	/* the new chunk read as far as the base's samples go: the state there */
	xor_iter_init(&it, n.chunk, n.chunk_len);
	for (uint16_t i = 0; i < cb; i++)
		if (xor_iter_next(&it, &t, &v) != 1)
			return 0;
	xor_iter_state(&it, &st);
	if (cb && (t != b.maxt || v != b.last_value))
		return 0;
	last = st;
	while ((rc = xor_iter_next(&it, &t, &v)) == 1)
		xor_iter_state(&it, &last);
	if (rc < 0)
		return 0;
	if (last.done != cn)
		return 0;
	if ((uint64_t)b.chunk_len * 8 < st.bit || (bpad = (uint64_t)b.chunk_len * 8 - st.bit) > 8)
		return 0;
	if ((npad = (uint64_t)n.chunk_len * 8 - last.bit) > 8)
		return 0;
	nbits = last.bit - st.bit;
	win = st.leading | (uint64_t)st.trailing << 5;
	need = 1 + uvarint_len(base->segment) + uvarint_len(base->offset) + 1 + uvarint_len(base->span) + 1 +
	       (carry ? 0 : uvarint_len(win) + uvarint_len(st.tdelta)) + uvarint_len(nbits) + (size_t)((nbits + 7) / 8);
	if (need >= limit)
		return 0;
	if (!(o = buf_reserve(out, need)))
		return -1;
	*o++ = 0;
	o += uvarint_put(o, base->segment);
	o += uvarint_put(o, base->offset);
	*o++ = 0;
	o += uvarint_put(o, base->span);
	*o++ = (uint8_t)(bpad * 9 + npad + (carry ? ENDS_CARRY : 0));
	if (!carry) {
		o += uvarint_put(o, win);
		o += uvarint_put(o, st.tdelta);
	}
	o += uvarint_put(o, nbits);
	if (nbits)
		get_bits_at(o, n.chunk, n.chunk_len, st.bit, nbits);
	/* made only when it gives the record back exactly */
	{
		const uint8_t *q = out->p + start;

		rc = apply_decoded(&q, &need, 1, &b, base_rec, carry ? &st : NULL, &check, NULL);
	}
	if (rc == SNAPARC_NOMEM) {
		buf_free(&check);
		return -1;
	}
	if (rc || check.len != len || memcmp(check.p, rec, len)) {
		buf_free(&check);
		return 0;
	}
	buf_free(&check);
	out->len = start + need;
	return 1;
}


/* ---- cuts ---- */

/* xordelta_cut() of a record decoded into b (its fields from maxt on). */
static int cut_decoded(const struct rec_series *bp, const uint8_t *base_rec, uint32_t n, struct buf *out,
		       struct err *e)
{
	const struct rec_series b = *bp;
	struct xor_cut cut = { .count = n };
	uint8_t *o;
	int rc;

	if (xor_read_cut(b.chunk, b.chunk_len, &cut))
		return err_set(e, SNAPARC_CORRUPT, "cut to %u samples: its chunk of %u samples does not decode so far", n,
			       (unsigned)xor_chunk_count(b.chunk, b.chunk_len));
	if ((rc = put_series(out, &b, base_rec, cut.t, b.chunk, cut.len, (uint16_t)n, cut.v, e)))
		return rc;
	/* zero after the n-th sample */
	o = out->p + out->len - REC_XOR_TAIL_LEN - cut.len;
	if (cut.end_bit & 7)
		o[cut.end_bit / 8] &= (uint8_t)(0xff00u >> (cut.end_bit & 7));
	for (size_t i = (size_t)((cut.end_bit + 7) / 8); i < cut.len; i++)
		o[i] = 0;
	return 0;
}

int xordelta_cut(const uint8_t *base_rec, size_t base_len, uint32_t n, struct buf *out, struct err *e)
{
	struct rec_series b;
	int rc;

	if ((rc = rec_series_decode(&b, base_rec, base_len, e)))
		return err_prefix(e, "cut series");
	if (!series_ok(&b))
		return err_set(e, SNAPARC_CORRUPT, "cut to %u samples: the record has no XOR chunk", n);
	return cut_decoded(&b, base_rec, n, out, e);
}

/*
 * Whether rec is what cut_decoded() makes of base b cut to n samples
 * (cut: where they end), compared in place instead of made and compared:
 * the bytes before maxt (at, compared by the caller), maxt, the chunk's
 * length, its bytes up to the cut and zeros after, the tail and last value.
 */
static int is_cut(const struct rec_series *b, const uint8_t *base_rec, const uint8_t *rec, size_t len, size_t at,
		  uint16_t n, const struct xor_cut *cut)
{
	uint8_t clen[UVARINT_MAX_LEN];
	size_t vl = (size_t)uvarint_put(clen, cut->len), head = at + 9 + vl, whole = (size_t)(cut->end_bit / 8), i;
	const uint8_t *ch = rec + head;

	if (maxt_at(b, base_rec) != at || len != head + cut->len + REC_XOR_TAIL_LEN ||
	    be64_get(rec + at) != (uint64_t)cut->t || rec[at + 8] != CHUNK_XOR || memcmp(rec + at + 9, clen, vl) ||
	    be16_get(ch) != n || memcmp(ch + 2, b->chunk + 2, whole - 2))
		return 0;
	i = whole;
	if (cut->end_bit & 7 && ch[i++] != (b->chunk[whole] & (uint8_t)(0xff00u >> (cut->end_bit & 7))))
		return 0;
	for (; i < cut->len; i++)
		if (ch[i])
			return 0;
	return !memcmp(ch + cut->len, b->tail, TAIL_KEEP) && be64_get(ch + cut->len + TAIL_KEEP) == cut->v;
}

/* xordelta_cut_of() with rec's maxt at `at` and rec's fields from there in r. */
static int cut_of_at(const uint8_t *base_rec, size_t base_len, const uint8_t *rec, size_t len,
		     const struct rec_series *r, size_t at, uint32_t *n)
{
	struct rec_series b;
	struct xor_cut cut;

	/* the same record up to maxt: type, ref, labels, range, mint */
	if (base_len < at || memcmp(base_rec, rec, at) || fields_from_maxt(&b, base_rec, base_len, at) ||
	    r->chunk_len > b.chunk_len || memcmp(r->chunk + 2, b.chunk + 2, r->chunk_len > 3 ? r->chunk_len - 3 : 0))
		return 0;
	*n = xor_chunk_count(r->chunk, r->chunk_len);
	cut.count = *n;
	if (xor_read_cut(b.chunk, b.chunk_len, &cut))
		return 0;
	return is_cut(&b, base_rec, rec, len, at, (uint16_t)*n, &cut);
}

int xordelta_cut_of(const uint8_t *base_rec, size_t base_len, const uint8_t *rec, size_t len, struct buf *scratch,
		    size_t *at_hint, uint32_t *n)
{
	struct rec_series r;
	size_t at = *at_hint;

	(void)scratch;   /* nothing is made any more */
	if (rec_type(rec, len) != REC_SERIES || rec_type(base_rec, base_len) != REC_SERIES || len > base_len)
		return 0;
	/* the labels decoded only when the hint does not give a cut: then they
	 * tell whether it was wrong (found by fuzz_xordelta: a wrong hint whose
	 * bytes read as fields made a cut look like none) */
	if (at && !fields_from_maxt(&r, rec, len, at) && cut_of_at(base_rec, base_len, rec, len, &r, at, n))
		return 1;
	if (rec_series_decode(&r, rec, len, NULL) || !series_ok(&r) || maxt_at(&r, rec) == at)
		return 0;
	*at_hint = at = maxt_at(&r, rec);
	return cut_of_at(base_rec, base_len, rec, len, &r, at, n);
}
