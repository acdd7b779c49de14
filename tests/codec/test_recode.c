/*
 * recode: series records whose XOR chunk is stored as byte-aligned samples
 * give back their exact bytes; the whole-chunk reader and writer it uses
 * agree with the sample-by-sample iterator and encoder; a chunk the encoder
 * would not write is left alone; hostile recoded bytes are refused, never
 * read past.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lz4dict.h"
#include "recode.h"
#include "xor.h"
#include "support.h"

#define MAX_N 600
/* the test records' bytes from the type to the chunk encoding byte */
#define PREFIX (1 + 8 + 1 + (1 + 8) + (1 + 19) + (1 + 3) + (1 + 3) + 8 + 1 + 8 + 8 + 1)

struct series {
	int64_t t[MAX_N];
	uint64_t v[MAX_N];
	size_t n;
};

static void put_str(struct buf *b, const char *s)
{
	buf_put_uvarint_bytes(b, s, strlen(s));
}

/* A series record as Prometheus 2.42 writes it into a chunk snapshot. */
static void record_with_chunk(struct buf *b, const uint8_t *chunk, size_t len, int64_t mint, int64_t maxt,
			      uint64_t last)
{
	buf_reset(b);
	buf_put_byte(b, 1);
	buf_put_be64(b, 4242);
	buf_put_uvarint(b, 2);
	put_str(b, "__name__");
	put_str(b, "http_requests_total");
	put_str(b, "job");
	put_str(b, "api");
	buf_put_be64(b, 0);
	buf_put_uvarint(b, 1);
	buf_put_be64(b, (uint64_t)mint);
	buf_put_be64(b, (uint64_t)maxt);
	buf_put_byte(b, 1);
	buf_put_uvarint_bytes(b, chunk, len);
	for (int i = 0; i < 7; i++)
		buf_put_be64(b, 0);
	buf_put_be64(b, last);
	cr_assert(!b->oom);
}

static void record_of(struct buf *b, const struct series *s)
{
	struct xor_enc x;
	const uint8_t *c;
	size_t len;

	xor_enc_init(&x);
	for (size_t i = 0; i < s->n; i++)
		cr_assert_eq(xor_enc_append(&x, s->t[i], s->v[i]), 0);
	c = xor_enc_bytes(&x, &len);
	record_with_chunk(b, c, len, s->t[0], s->t[s->n - 1], s->v[s->n - 1]);
	xor_enc_free(&x);
}

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	cr_assert_eq(got_len, want_len, "length %zu, want %zu", got_len, want_len);
	for (size_t i = 0; i < want_len; i++)
		cr_assert_eq(got[i], want[i], "byte %zu: %02x, want %02x", i, got[i], want[i]);
}

/* Packs rec; when packed, unpacking gives rec back. Returns pack's answer. */
static int round_trip(const uint8_t *rec, size_t len, size_t *packed_len)
{
	struct recode_scratch rs = { 0 };
	struct buf packed = { 0 }, back = { 0 };
	struct err e = { 0 };
	int rc = recode_pack(rec, len, &packed, &rs);

	cr_assert_geq(rc, 0);
	if (rc) {
		cr_assert(recode_is(packed.p, packed.len));
		cr_assert_eq(recode_unpack(packed.p, packed.len, &back, &e), 0, "%s", e.msg);
		assert_bytes(back.p, back.len, rec, len);
	} else {
		cr_assert_eq(packed.len, 0, "a refused record appends nothing");
	}
	if (packed_len)
		*packed_len = packed.len;
	buf_free(&packed);
	buf_free(&back);
	recode_scratch_free(&rs);
	return rc;
}

static uint64_t f64(double d)
{
	uint64_t u;

	memcpy(&u, &d, 8);
	return u;
}

static void regular_times(struct series *s, size_t n, int64_t start, int64_t step)
{
	s->n = n;
	for (size_t i = 0; i < n; i++)
		s->t[i] = start + (int64_t)i * step;
}

Test(recode_bytes, a_counter_is_stored_as_exact_bytes)
{
	/* three samples 15 s apart, 10, 14, 18: integers, second differences
	 * (as short as first ones here, and a steady rate gives zeros) */
	struct series s;
	struct buf rec = { 0 }, packed = { 0 };
	struct recode_scratch rs = { 0 };
	static const uint8_t samples[] = {
		3,                 /* n */
		0x01,              /* mode: integers, e 0, second differences */
		1,                 /* one time field left out: the last dod, 0 */
		0x00,              /* t1 - mint */
		0xb0, 0xea, 0x01,  /* t2 - t1 = 15000, zig-zag 30000 */
		1,                 /* one value field left out: +4 again, 0 */
		0x14,              /* 10 */
		0x08,              /* +4 */
		0x00,              /* the tail Prometheus writes */
	};

	regular_times(&s, 3, 1700000000000, 15000);
	s.v[0] = f64(10), s.v[1] = f64(14), s.v[2] = f64(18);
	record_of(&rec, &s);
	cr_assert_eq(recode_pack(rec.p, rec.len, &packed, &rs), 1);
	/* the type, then the record up to the chunk encoding byte as it was */
	cr_assert_eq(packed.p[0], RECODE_SERIES);
	assert_bytes(packed.p + 1, PREFIX - 1, rec.p + 1, PREFIX - 1);
	assert_bytes(packed.p + PREFIX, packed.len - PREFIX, samples, sizeof(samples));
	buf_free(&rec);
	buf_free(&packed);
	recode_scratch_free(&rs);
}

Test(recode_bytes, decimals_and_second_differences)
{
	/* 0.25 a step: hundredths, a constant step, so second differences */
	struct series s;
	struct buf rec = { 0 }, packed = { 0 };
	struct recode_scratch rs = { 0 };

	regular_times(&s, 50, 1000, 1000);
	for (size_t i = 0; i < 50; i++)
		s.v[i] = f64(0.25 * (double)i + 0.5);
	record_of(&rec, &s);
	cr_assert_eq(recode_pack(rec.p, rec.len, &packed, &rs), 1);
	/* n, then the mode: e = 2, second differences; then the times: 48 zero
	 * dods left out, 0 and 1000; the values: 48 left out, 50 and +25 */
	{
		static const uint8_t want[] = { 50, 2 << 1 | 1, 48, 0, 0xd0, 0x0f, 48, 100, 50, 0 };

		assert_bytes(packed.p + PREFIX, packed.len - PREFIX, want, sizeof(want));
	}
	buf_free(&rec);
	buf_free(&packed);
	recode_scratch_free(&rs);
}

/* Every kind of value the archive meets comes back exactly. */
Test(recode_round_trip, every_kind_of_series)
{
	uint64_t seed = 7;
	struct series *s = malloc(sizeof(*s));
	struct buf rec = { 0 };
	int packed = 0;

	cr_assert_not_null(s);
	for (int kind = 0; kind < 14; kind++) {
		for (int rep = 0; rep < 20; rep++) {
			size_t n = 1 + support_rand(&seed) % (kind == 13 ? MAX_N : 130);
			double acc = 0;

			regular_times(s, n, 1700000000000 + (int64_t)(support_rand(&seed) % 1000), 15000);
			for (size_t i = 0; i < n; i++) {
				uint64_t r = support_rand(&seed);

				if (kind == 1 && r % 3 == 0)   /* jitter */
					s->t[i] += (int64_t)(r % 50) - 25;
				switch (kind) {
				case 0: case 1: acc += (double)(r % 100); s->v[i] = f64(acc); break;      /* counter */
				case 2: s->v[i] = f64(42); break;                                       /* constant */
				case 3: acc += (double)(r % 1000); s->v[i] = f64(acc / 100); break;     /* hundredths */
				case 4: acc += (double)(r % 100000); s->v[i] = f64(acc / 1e9); break;   /* nanoseconds */
				case 5: s->v[i] = r;  break;                                            /* any bits */
				case 6: s->v[i] = f64((double)(r % 1000) / 7.0); break;                 /* floats */
				case 7: s->v[i] = r % 4 == 0 ? XOR_STALE_NAN : f64((double)(r % 10)); break;
				case 8: s->v[i] = f64(r % 2 ? -0.0 : 0.0); break;
				case 9: s->v[i] = f64(r % 2 ? INFINITY : -(double)(r % 5)); break;
				case 10: s->v[i] = f64((double)((int64_t)1 << 53) - (double)(r % 3)); break;
				case 11: s->t[i] = (int64_t)(r >> 1) * (r % 2 ? -1 : 1); s->v[i] = f64(1); break;
				case 12: s->t[i] = i ? s->t[i - 1] + (int64_t)(r % (1u << 22)) : 0; s->v[i] = f64(-acc--); break;
				default: acc += 1; s->v[i] = f64(acc); break;
				}
			}
			record_of(&rec, s);
			if (round_trip(rec.p, rec.len, NULL))
				packed++;
			else
				cr_assert(kind != 2 && kind != 13, "kind %d, %zu samples: not recoded", kind, n);
		}
	}
	/* a constant and a steady rate are always worth it; others may be */
	cr_assert_geq(packed, 2 * 20, "%d records recoded", packed);
	buf_free(&rec);
	free(s);
}

Test(recode_round_trip, a_counter_shrinks_a_lot_after_lz4)
{
	/* what recoding is for: 120 samples of a counter growing by 4 */
	struct series s;
	struct buf rec = { 0 }, z_plain = { 0 }, z_recoded = { 0 }, back = { 0 };
	struct lz4dict_enc *plain, *recoded;
	struct err e = { 0 };

	regular_times(&s, 120, 1700000000000, 15000);
	for (size_t i = 0; i < 120; i++)
		s.v[i] = f64(1000 + 4.0 * (double)i);
	record_of(&rec, &s);
	cr_assert_eq(lz4dict_enc_new(&plain, 1, NULL, 0, &e), 0);
	cr_assert_eq(lz4dict_enc_new(&recoded, 1, NULL, 0, &e), 0);
	lz4dict_enc_recode(recoded, 1);
	cr_assert_eq(lz4dict_compress(plain, rec.p, rec.len, &z_plain), 1);
	cr_assert_eq(lz4dict_compress(recoded, rec.p, rec.len, &z_recoded), 1);
	cr_assert_lt(z_recoded.len * 5, z_plain.len * 3, "recoded %zu bytes, plain %zu", z_recoded.len, z_plain.len);
	cr_assert_eq(lz4dict_decompress(z_recoded.p, z_recoded.len, NULL, 0, &back, &e), 0, "%s", e.msg);
	assert_bytes(back.p, back.len, rec.p, rec.len);
	lz4dict_enc_free(plain);
	lz4dict_enc_free(recoded);
	buf_free(&rec);
	buf_free(&z_plain);
	buf_free(&z_recoded);
	buf_free(&back);
}

Test(recode_refused, records_it_cannot_give_back)
{
	struct series s;
	struct buf rec = { 0 };
	struct xor_enc x;
	const uint8_t *c;
	uint8_t chunk[64];
	size_t len;
	static const uint8_t tombstones[] = { 2, 1, 0 };

	cr_assert_eq(round_trip(tombstones, sizeof(tombstones), NULL), 0);

	regular_times(&s, 3, 5000, 1000);
	s.v[0] = f64(1), s.v[1] = f64(2), s.v[2] = f64(3);
	xor_enc_init(&x);
	for (size_t i = 0; i < 3; i++)
		xor_enc_append(&x, s.t[i], s.v[i]);
	c = xor_enc_bytes(&x, &len);
	cr_assert_leq(len, sizeof(chunk));
	memcpy(chunk, c, len);
	xor_enc_free(&x);

	/* a histogram chunk: encoding byte 2 */
	record_with_chunk(&rec, chunk, len, 5000, 7000, s.v[2]);
	rec.p[rec.len - 64 - len - 1 - 1] = 2;
	cr_assert_eq(round_trip(rec.p, rec.len, NULL), 0);

	/* the same samples, but a chunk the encoder would not write: one more
	 * zero byte than its bits need */
	chunk[len] = 0;
	record_with_chunk(&rec, chunk, len + 1, 5000, 7000, s.v[2]);
	cr_assert_eq(round_trip(rec.p, rec.len, NULL), 0);

	/* a tail that is not the one Prometheus writes is kept as it was */
	record_with_chunk(&rec, chunk, len, 5000, 7000, f64(99));
	cr_assert_eq(round_trip(rec.p, rec.len, NULL), 1);

	/* a record that ends early */
	record_with_chunk(&rec, chunk, len, 5000, 7000, s.v[2]);
	cr_assert_eq(round_trip(rec.p, rec.len - 1, NULL), 0);
	buf_free(&rec);
}

Test(recode_hostile, every_truncation_and_bit_flip_is_refused_or_read_safely)
{
	struct series s;
	struct buf rec = { 0 }, packed = { 0 }, back = { 0 };
	struct recode_scratch rs = { 0 };
	struct err e;
	uint64_t seed = 3;

	regular_times(&s, 100, 1700000000000, 15000);
	for (size_t i = 0; i < 100; i++) {
		s.t[i] += i == 50 ? 3 : 0;   /* some fields that are not 0 */
		s.v[i] = f64((double)(4 * i + (i == 70)));
	}
	record_of(&rec, &s);
	cr_assert_eq(recode_pack(rec.p, rec.len, &packed, &rs), 1);
	for (size_t cut = 0; cut < packed.len; cut++) {
		int rc = recode_unpack(packed.p, cut, &back, &e);

		cr_assert_eq(rc, SNAPARC_CORRUPT, "cut at %zu: %d", cut, rc);
		cr_assert_not_null(strstr(e.msg, "recoded record"), "%s", e.msg);
	}
	for (int round = 0; round < 20000; round++) {
		uint8_t *p = malloc(packed.len);
		size_t at = support_rand(&seed) % packed.len;
		int rc;

		cr_assert_not_null(p);
		memcpy(p, packed.p, packed.len);
		p[at] ^= (uint8_t)(1u << (support_rand(&seed) % 8));
		if (round % 2)
			p[support_rand(&seed) % packed.len] = (uint8_t)support_rand(&seed);
		rc = recode_unpack(p, packed.len, &back, &e);
		cr_assert(rc == 0 || rc == SNAPARC_CORRUPT, "%d", rc);
		free(p);
	}
	buf_free(&rec);
	buf_free(&packed);
	buf_free(&back);
	recode_scratch_free(&rs);
}

/* The whole-chunk writer writes what xor_enc writes, byte for byte, and the
 * whole-chunk reader reads what the iterator reads. */
Test(xor_whole_chunk, writer_and_reader_agree_with_encoder_and_iterator)
{
	uint64_t seed = 11;
	struct series *s = malloc(sizeof(*s));
	int64_t *t = malloc(MAX_N * sizeof(*t));
	uint64_t *v = malloc(MAX_N * sizeof(*v));
	uint8_t *room = malloc(XOR_WRITER_ROOM(MAX_N));

	cr_assert(s && t && v && room);
	for (int round = 0; round < 3000; round++) {
		struct xor_enc x;
		struct xor_writer w;
		struct xor_iter it;
		const uint8_t *c;
		size_t len, wlen, n = 1 + support_rand(&seed) % (round % 10 ? 40 : MAX_N);
		unsigned shape = (unsigned)(support_rand(&seed) % 6);

		for (size_t i = 0; i < n; i++) {
			uint64_t r = support_rand(&seed);
			int64_t step = shape == 0 ? 15000 : shape == 1 ? (int64_t)(r % 3000) : (int64_t)(r >> (r % 64));

			s->t[i] = i ? (int64_t)((uint64_t)s->t[i - 1] + (uint64_t)step) : (int64_t)support_rand(&seed);
			s->v[i] = shape == 3 ? r : shape == 4 ? f64((double)(r % 8)) : r >> (r % 64) << (r % 13);
		}
		xor_enc_init(&x);
		xor_writer_begin(&w, room);
		for (size_t i = 0; i < n; i++) {
			cr_assert_eq(xor_enc_append(&x, s->t[i], s->v[i]), 0);
			xor_writer_append(&w, s->t[i], s->v[i]);
		}
		c = xor_enc_bytes(&x, &len);
		wlen = xor_writer_end(&w);
		assert_bytes(room, wlen, c, len);
		cr_assert_eq(xor_read_all(c, len, t, v, n), (int)n, "round %d", round);
		xor_iter_init(&it, c, len);
		for (size_t i = 0; i < n; i++) {
			int64_t it_t;
			uint64_t it_v;

			cr_assert_eq(xor_iter_next(&it, &it_t, &it_v), 1);
			cr_assert_eq(t[i], it_t, "round %d sample %zu time", round, i);
			cr_assert_eq(v[i], it_v, "round %d sample %zu value", round, i);
		}
		cr_assert_eq(xor_read_all(c, len, t, v, n - 1), -1, "more samples than room");
		xor_enc_free(&x);
	}
	free(s);
	free(t);
	free(v);
	free(room);
}

Test(xor_whole_chunk, reader_never_reads_past_hostile_bytes)
{
	uint64_t seed = 5;
	int64_t t[70000 / 8];
	uint64_t v[70000 / 8];

	for (int round = 0; round < 20000; round++) {
		size_t len = support_rand(&seed) % 48;
		uint8_t *p = malloc(len ? len : 1);

		cr_assert_not_null(p);
		for (size_t i = 0; i < len; i++)
			p[i] = (uint8_t)support_rand(&seed);
		if (len >= 2 && round % 2)
			p[0] = 0, p[1] = (uint8_t)(p[1] % 16);   /* a plausible count */
		(void)xor_read_all(p, len, t, v, sizeof(t) / sizeof(t[0]));
		free(p);
	}
}

/* xor_read_canonical() says yes exactly when writing the samples again gives
 * the chunk's bytes: on the encoder's own chunks, and on them damaged. */
Test(xor_whole_chunk, canonical_means_written_again_the_same)
{
	uint64_t seed = 13;
	struct series *s = malloc(sizeof(*s));
	int64_t *t = malloc(MAX_N * sizeof(*t));
	uint64_t *v = malloc(MAX_N * sizeof(*v));
	uint8_t *room = malloc(XOR_WRITER_ROOM(MAX_N)), *c = malloc(XOR_WRITER_ROOM(MAX_N));
	int yes = 0, no = 0;

	cr_assert(s && t && v && room && c);
	for (int round = 0; round < 40000; round++) {
		struct xor_writer w;
		size_t len, n = 1 + support_rand(&seed) % 24;
		unsigned shape = (unsigned)(support_rand(&seed) % 6);
		int canon, read;

		for (size_t i = 0; i < n; i++) {
			uint64_t r = support_rand(&seed);
			int64_t step = shape == 0 ? 15000 : shape == 1 ? (int64_t)(r % 3000) : (int64_t)(r >> (r % 64));

			s->t[i] = i ? (int64_t)((uint64_t)s->t[i - 1] + (uint64_t)step) : (int64_t)support_rand(&seed) >> (r % 64);
			s->v[i] = shape == 3 ? r : shape == 4 ? f64((double)(r % 8)) : r >> (r % 64) << (r % 13);
		}
		xor_writer_begin(&w, c);
		for (size_t i = 0; i < n; i++)
			xor_writer_append(&w, s->t[i], s->v[i]);
		len = xor_writer_end(&w);
		if (round % 4) {
			/* damage: a bit flipped, a byte cut or added */
			uint64_t r = support_rand(&seed);

			if (r % 3 == 0)
				c[2 + r / 3 % (len - 2 > 0 ? len - 2 : 1)] ^= (uint8_t)(1u << (r % 8));
			else if (r % 3 == 1 && len > 2)
				len--;
			else
				c[len++] = (uint8_t)(r >> 8 & (r % 2 ? 0xff : 0));
		}
		canon = xor_read_canonical(c, len, t, v, MAX_N);
		read = xor_read_all(c, len, t, v, MAX_N);
		if (read < 0) {
			cr_assert_eq(canon, -1, "round %d: canonical but unreadable", round);
			continue;
		}
		xor_writer_begin(&w, room);
		for (int i = 0; i < read; i++)
			xor_writer_append(&w, t[i], v[i]);
		{
			size_t again = xor_writer_end(&w);
			int same = again == len && !memcmp(room, c, len);

			cr_assert_eq(canon == read, same, "round %d: canonical %d, written again the same %d", round,
				     canon, same);
			yes += same;
			no += !same;
		}
	}
	cr_assert_gt(yes, 10000);
	cr_assert_gt(no, 1000);
	free(s);
	free(t);
	free(v);
	free(room);
	free(c);
}
