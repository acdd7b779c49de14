/*
 * The append delta (codec/xordelta.c): records whose XOR chunk grew come
 * back byte for byte from their base and the new bits, at every length of
 * the grown part and across a chunk cut (where it must not apply); damaged
 * or short payloads are SNAPARC_CORRUPT with a message.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lz4dict.h"
#include "record.h"
#include "xor.h"
#include "xordelta.h"

static const uint8_t LABELS[] = { 2, 8, '_', '_', 'n', 'a', 'm', 'e', '_', '_', 2, 'u', 'p',
				  3, 'j', 'o', 'b', 4, 'n', 'o', 'd', 'e' };

/* The labels make_record() writes (their count first, as a record holds them). */
static const uint8_t *labels_raw = LABELS;
static size_t labels_len = sizeof(LABELS);

/* A series record whose chunk holds samples [from, to) of a made-up series. */
static void make_record(struct buf *out, uint64_t ref, uint32_t from, uint32_t to, unsigned kind)
{
	struct xor_enc x;
	struct rec_series s;
	int64_t t = 0;
	uint64_t v = 0;
	size_t clen;

	xor_enc_init(&x);
	for (uint32_t i = from; i < to; i++) {
		double f;

		t = 1700000000000LL + (int64_t)i * 15000 + (kind == 1 ? (int64_t)(i * 7919 % 13) - 6 : 0);
		switch (kind) {
		case 0: f = (double)i * 3; break;               /* counter */
		case 1: f = (double)(i * 2654435761u % 1000) / 7; break;   /* noisy gauge */
		case 2: f = 42; break;                          /* constant */
		default: f = i % 5 ? 1e300 * i : -0.0; break;   /* wide windows */
		}
		if (kind == 2 && i % 17 == 3)
			t += 60000 * 1000;   /* a huge dod now and then */
		v = f64_bits(f);
		cr_assert_eq(xor_enc_append(&x, t, v), 0);
	}
	memset(&s, 0, sizeof(s));
	s.ref = ref;
	s.labels.raw = labels_raw;
	s.labels.raw_len = labels_len;
	s.labels.count = labels_raw[0];
	s.chunk_range = 7200000;
	s.has_chunk = 1;
	s.mint = 1700000000000LL + (int64_t)from * 15000;
	s.maxt = t;
	s.encoding = CHUNK_XOR;
	s.chunk = xor_enc_bytes(&x, &clen);
	s.chunk_len = clen;
	s.last_value = v;
	buf_reset(out);
	rec_series_encode(out, &s);
	cr_assert(!out->oom);
	xor_enc_free(&x);
}

static const struct lz4dict_base BASE = { 3, 123456789, 260 };

/* 1 when a delta was made (and checked to give rec back), 0 when not. */
static int round_trip(const struct buf *base, const struct buf *rec)
{
	struct buf d = { 0 }, back = { 0 };
	struct lz4dict_base b;
	struct err e = { 0 };
	int z = xordelta_make(&BASE, base->p, base->len, rec->p, rec->len, 0, rec->len, &d);

	cr_assert(z >= 0);
	if (z) {
		cr_assert(xordelta_is(d.p, d.len));
		cr_assert_eq(xordelta_base(d.p, d.len, &b, &e), 0, "%s", e.msg);
		cr_assert(b.segment == BASE.segment && b.offset == BASE.offset && b.span == BASE.span);
		cr_assert_eq(xordelta_apply(d.p, d.len, base->p, base->len, &back, &e), 0, "%s", e.msg);
		cr_assert_eq(back.len, rec->len);
		cr_assert_eq(memcmp(back.p, rec->p, rec->len), 0);
		/* an LZ4 delta's header reader refuses it: older readers fail cleanly */
		{
			uint32_t id;
			size_t raw, hdr;

			cr_assert_eq(lz4dict_header(d.p, d.len, &id, &raw, &hdr, &e), SNAPARC_CORRUPT);
		}
	}
	buf_free(&d);
	buf_free(&back);
	return z;
}

Test(xordelta, every_growth_of_every_kind)
{
	struct buf base = { 0 }, rec = { 0 };

	for (unsigned kind = 0; kind < 4; kind++)
		for (uint32_t nb = 0; nb <= 40; nb++)
			for (uint32_t grow = 0; grow <= 24 && nb + grow <= 130; grow++) {
				make_record(&base, 77, 0, nb, kind);
				make_record(&rec, 77, 0, nb + grow, kind);
				if (nb == 0 && grow == 0)
					continue;
				/* grown by one sample or more, a delta is always made
				 * and exact (the base chunk may be empty too) */
				if (grow)
					cr_assert_eq(round_trip(&base, &rec), 1, "kind %u base %u grow %u", kind, nb, grow);
			}
	buf_free(&base);
	buf_free(&rec);
}

Test(xordelta, long_chunks_and_a_cut)
{
	struct buf base = { 0 }, rec = { 0 };

	/* 110 -> 120 samples: the last growth before a cut */
	make_record(&base, 5, 0, 110, 1);
	make_record(&rec, 5, 0, 120, 1);
	cr_assert_eq(round_trip(&base, &rec), 1);
	/* the cut: a new chunk from sample 120 is no append */
	make_record(&base, 5, 0, 120, 1);
	make_record(&rec, 5, 120, 125, 1);
	cr_assert_eq(round_trip(&base, &rec), 0);
	/* other ref, other chunk start, or a chunk that lost samples: none */
	make_record(&base, 5, 0, 50, 0);
	make_record(&rec, 6, 0, 60, 0);
	cr_assert_eq(round_trip(&base, &rec), 0);
	make_record(&rec, 5, 1, 60, 0);
	cr_assert_eq(round_trip(&base, &rec), 0);
	make_record(&rec, 5, 0, 40, 0);
	cr_assert_eq(round_trip(&base, &rec), 0);
	/* the same samples with another value: not an extension */
	make_record(&base, 5, 0, 50, 0);
	make_record(&rec, 5, 0, 60, 1);
	cr_assert_eq(round_trip(&base, &rec), 0);
	buf_free(&base);
	buf_free(&rec);
}

Test(xordelta, smaller_than_limit_only)
{
	struct buf base = { 0 }, rec = { 0 }, d = { 0 };

	make_record(&base, 9, 0, 30, 0);
	make_record(&rec, 9, 0, 40, 0);
	cr_assert_eq(xordelta_make(&BASE, base.p, base.len, rec.p, rec.len, 0, 10, &d), 0);
	cr_assert_eq(d.len, 0);
	cr_assert_eq(xordelta_make(&BASE, base.p, base.len, rec.p, rec.len, 0, rec.len, &d), 1);
	cr_assert(d.len < 40, "an append delta of 10 counter samples is %zu bytes", d.len);
	buf_free(&base);
	buf_free(&rec);
	buf_free(&d);
}

Test(xordelta, damaged_and_short_payloads_are_corrupt)
{
	struct buf base = { 0 }, rec = { 0 }, d = { 0 }, out = { 0 };
	struct err e;
	int rc;

	make_record(&base, 9, 0, 30, 3);
	make_record(&rec, 9, 0, 45, 3);
	cr_assert_eq(xordelta_make(&BASE, base.p, base.len, rec.p, rec.len, 0, rec.len, &d), 1);
	/* every cut is refused with a message */
	for (size_t n = 0; n < d.len; n++) {
		memset(&e, 0, sizeof(e));
		rc = xordelta_apply(d.p, n, base.p, base.len, &out, &e);
		cr_assert_eq(rc, SNAPARC_CORRUPT, "cut at %zu: %d", n, rc);
		cr_assert(strstr(e.msg, "append delta") != NULL, "%s", e.msg);
	}
	/* every single bit flipped: corrupt with a message, or some record */
	for (size_t i = 0; i < d.len * 8; i++) {
		d.p[i / 8] ^= (uint8_t)(1u << (i % 8));
		memset(&e, 0, sizeof(e));
		rc = xordelta_apply(d.p, d.len, base.p, base.len, &out, &e);
		cr_assert(rc == 0 || (rc == SNAPARC_CORRUPT && e.msg[0]), "bit %zu: %d", i, rc);
		if (rc == 0)
			cr_assert(out.len < base.len + d.len + 16);
		d.p[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* a stated bit count past the payload */
	{
		uint8_t bad[] = { 0, 3, 5, 0, 9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0 };

		memset(&e, 0, sizeof(e));
		cr_assert_eq(xordelta_apply(bad, sizeof(bad), base.p, base.len, &out, &e), SNAPARC_CORRUPT);
		cr_assert(strstr(e.msg, "bits stated") != NULL, "%s", e.msg);
	}
	/* a base that is not a series record with an XOR chunk */
	memset(&e, 0, sizeof(e));
	cr_assert_eq(xordelta_apply(d.p, d.len, (const uint8_t *)"\x02\x01", 2, &out, &e), SNAPARC_CORRUPT);
	cr_assert(e.msg[0]);
	buf_free(&base);
	buf_free(&rec);
	buf_free(&d);
	buf_free(&out);
}

/* ---- cuts ---- */

/* Every record of a chunk's life is the last one cut to its samples, byte
 * for byte: counters, noisy times, constants, and values whose xor fills
 * whole bytes (the encoder's extra empty byte after a byte write). */
Test(xordelta_cut, every_earlier_record_of_every_kind)
{
	struct buf full = { 0 }, rec = { 0 }, out = { 0 }, scratch = { 0 };
	struct err e = { 0 };
	size_t learnt = 0;

	for (unsigned kind = 0; kind < 4; kind++) {
		make_record(&full, 9, 0, 130, kind);
		for (uint32_t n = 1; n < 130; n++) {
			uint32_t got = 0;

			make_record(&rec, 9, 0, n, kind);
			cr_assert_eq(xordelta_cut(full.p, full.len, n, &out, &e), 0, "kind %u n %u: %s", kind, n, e.msg);
			cr_assert_eq(out.len, rec.len, "kind %u n %u: %zu bytes, not %zu", kind, n, out.len, rec.len);
			cr_assert_eq(memcmp(out.p, rec.p, rec.len), 0, "kind %u n %u: the bytes differ", kind, n);
			/* with no hint where maxt is, the right one, a wrong one */
			for (int h = 0; h < 3; h++) {
				size_t at = h == 0 ? 0 : h == 1 ? learnt : learnt + 1;

				got = 0;
				cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &got), 1,
					     "kind %u n %u hint %d", kind, n, h);
				cr_assert_eq(got, n);
				if (h == 0)
					learnt = at;
				cr_assert_eq(at, learnt, "kind %u n %u hint %d: maxt at %zu, not %zu", kind, n, h, at,
					     learnt);
			}
		}
	}
	buf_free(&full);
	buf_free(&rec);
	buf_free(&out);
	buf_free(&scratch);
}

/* "A wrong hint costs only time", also when the bytes at the wrong place
 * read as the fields from maxt on: a label value holding 8 bytes, the XOR
 * encoding byte and a chunk length that ends the record at the tail, in
 * the record cut short but not in the longer one (fuzz_xordelta found such
 * a record: the cut was taken for none). */
Test(xordelta_cut, a_wrong_hint_that_reads_as_fields_still_finds_the_cut)
{
	uint8_t labels[64];
	struct buf full = { 0 }, rec = { 0 }, scratch = { 0 };
	size_t hint, right = 0, at, n, value_at;
	uint32_t got = 0;

	/* {__name__="m", x=<8 bytes, 0x01, a 2-byte varint, filler>} */
	n = 0;
	labels[n++] = 2;
	labels[n++] = 8;
	memcpy(labels + n, "__name__", 8);
	n += 8;
	labels[n++] = 1;
	labels[n++] = 'm';
	labels[n++] = 1;
	labels[n++] = 'x';
	labels[n++] = 40;
	value_at = n;
	memset(labels + n, 'A', 40);
	labels[n + 8] = CHUNK_XOR;
	n += 40;
	labels_raw = labels;
	labels_len = n;
	make_record(&full, 9, 0, 130, 0);
	make_record(&rec, 9, 0, 40, 0);
	/* in rec, the value starts past the type, the ref and the labels before it */
	hint = 1 + 8 + value_at;
	{
		size_t len = rec.len - (hint + 9 + 2) - REC_XOR_TAIL_LEN;

		cr_assert(len >= 128 && len < 16384, "%zu", len);
		labels[value_at + 9] = (uint8_t)(len | 0x80);
		labels[value_at + 10] = (uint8_t)(len >> 7);
	}
	make_record(&full, 9, 0, 130, 0);
	make_record(&rec, 9, 0, 40, 0);
	cr_assert_eq(rec.p[hint + 8], CHUNK_XOR);
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &right, &got), 1);
	cr_assert_eq(got, 40);
	cr_assert_neq(right, hint);
	at = hint;
	got = 0;
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &got), 1,
		     "the hint %zu hid the cut (maxt at %zu)", hint, right);
	cr_assert_eq(got, 40);
	cr_assert_eq(at, right, "learnt %zu, not %zu", at, right);
	buf_free(&full);
	buf_free(&rec);
	buf_free(&scratch);
}

Test(xordelta_cut, other_records_are_not_cuts)
{
	struct buf full = { 0 }, rec = { 0 }, scratch = { 0 };
	size_t at = 0;
	uint32_t n;

	make_record(&full, 9, 0, 120, 0);
	/* another series, a chunk that starts later, another kind of values,
	 * the whole record itself, a longer one */
	make_record(&rec, 10, 0, 50, 0);
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &n), 0);
	make_record(&rec, 9, 3, 50, 0);
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &n), 0);
	make_record(&rec, 9, 0, 50, 2);
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &n), 0);
	cr_assert_eq(xordelta_cut_of(full.p, full.len, full.p, full.len, &scratch, &at, &n), 0);
	make_record(&rec, 9, 0, 121, 0);
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &n), 0);
	/* a changed last value in the tail */
	make_record(&rec, 9, 0, 50, 0);
	rec.p[rec.len - 1] ^= 1;
	cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &n), 0);
	buf_free(&full);
	buf_free(&rec);
	buf_free(&scratch);
}

Test(xordelta_cut, impossible_counts_and_damaged_records_are_corrupt)
{
	struct buf full = { 0 }, out = { 0 };
	struct err e = { 0 };
	struct rec_series s;

	make_record(&full, 9, 0, 40, 1);
	cr_assert_eq(xordelta_cut(full.p, full.len, 0, &out, &e), SNAPARC_CORRUPT);
	cr_assert(strstr(e.msg, "cut to 0 samples"), "%s", e.msg);
	cr_assert_eq(xordelta_cut(full.p, full.len, 40, &out, &e), SNAPARC_CORRUPT);
	cr_assert_eq(xordelta_cut(full.p, full.len, 70000, &out, &e), SNAPARC_CORRUPT);
	cr_assert_eq(xordelta_cut(full.p, full.len - 3, 5, &out, &e), SNAPARC_CORRUPT);
	/* a chunk whose bits run out before the sample asked for */
	cr_assert_eq(rec_series_decode(&s, full.p, full.len, &e), 0, "%s", e.msg);
	memset((uint8_t *)s.chunk + 3, 0xff, s.chunk_len - 3);
	cr_assert_eq(xordelta_cut(full.p, full.len, 39, &out, &e), SNAPARC_CORRUPT);
	cr_assert(strstr(e.msg, "does not decode"), "%s", e.msg);
	buf_free(&full);
	buf_free(&out);
}

/* Whether rec is base cut to its chunk's count, by making that cut. */
static int cut_by_making(const struct buf *base, const uint8_t *rec, size_t len, struct buf *out)
{
	struct rec_series r;
	struct err e = { 0 };

	if (rec_series_decode(&r, rec, len, NULL) || !r.has_chunk || r.chunk_len < 2)
		return 0;
	return !xordelta_cut(base->p, base->len, xor_chunk_count(r.chunk, r.chunk_len), out, &e) && out->len == len &&
	       !memcmp(out->p, rec, len);
}

Test(xordelta_cut, every_bit_flip_of_a_cut_is_judged_as_the_cut_made)
{
	struct buf full = { 0 }, rec = { 0 }, out = { 0 }, scratch = { 0 };

	for (unsigned kind = 0; kind < 4; kind++) {
		make_record(&full, 9, 0, 130, kind);
		for (uint32_t n = 1; n < 130; n += 7) {
			make_record(&rec, 9, 0, n, kind);
			for (size_t bit = 0; bit < rec.len * 8; bit++) {
				size_t at = 0;
				uint32_t got = 0;
				int want;

				rec.p[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
				want = cut_by_making(&full, rec.p, rec.len, &out);
				cr_assert_eq(xordelta_cut_of(full.p, full.len, rec.p, rec.len, &scratch, &at, &got), want,
					     "kind %u n %u bit %zu: not %d", kind, n, bit, want);
				rec.p[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
			}
		}
	}
	buf_free(&full);
	buf_free(&rec);
	buf_free(&out);
	buf_free(&scratch);
}
