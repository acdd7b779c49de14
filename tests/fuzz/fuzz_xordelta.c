/*
 * fuzz_xordelta: the archive's append deltas and cuts (codec/xordelta.c),
 * both ways.
 *
 * The input is a control byte, a base record and payloads:
 *
 *   byte 0      where the base record's samples are split for the round
 *               trip (mod their count)
 *   bytes 1..2  the base record's length (le16, cut to what the input has)
 *   then        the base record, then up to 4 payloads, each a le16 length
 *               (cut) and its bytes
 *
 * The payloads, applied in a chain to the base record, must never crash,
 * must fail with SNAPARC_CORRUPT (or UNSUPPORTED for a base of an unknown
 * encoding) and a message when they fail, and must give a record no longer
 * than the base and the payloads can hold, allocating no more than that:
 * stated lengths are never believed (run.sh also runs this target with a
 * low -malloc_limit_mb). A payload xordelta_base() accepts is one
 * xordelta_is() recognises.
 *
 * The round trip: when the base decodes as a series record with an XOR
 * chunk, its samples [0, j), [0, k) and all of them (j < k < n, from byte
 * 0) are encoded as three records; the append delta of the second against
 * the first and of the third against the second (without the decoder
 * state, as compaction stores a delta on a delta) must be made, and apply
 * in a chain to give the third back byte for byte, and the first two must
 * be the third cut to their samples. Any record cut to any count (bytes 0
 * and 1) is a record no longer than it, or a clear error. The first payload is
 * then damaged with the input's payload bytes and applied again: any
 * answer but a crash, an unbounded record or a silent error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "record.h"
#include "xor.h"
#include "xordelta.h"
#include "fuzz.h"

#define MAX_HOPS 4
#define MAX_SAMPLES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct lz4dict_base BASE = { 7, 1234567, 300 };

/* Applies n payloads to base and checks the answer. */
static void check_apply(const uint8_t *const *p, const size_t *len, size_t n, const uint8_t *base, size_t base_len)
{
	struct buf out = { 0 };
	struct err e = { 0 };
	uint64_t most = base_len + 16 + REC_XOR_TAIL_LEN;
	int rc;

	for (size_t i = 0; i < n; i++) {
		struct lz4dict_base b;
		struct err e2 = { 0 };

		most += len[i] + 2;
		if (xordelta_base(p[i], len[i], &b, &e2) == 0)
			CHECK(xordelta_is(p[i], len[i]));
		else
			CHECK(e2.msg[0]);
	}
	rc = xordelta_apply_chain(p, len, n, base, base_len, &out, &e);
	if (rc) {
		CHECK((rc == SNAPARC_CORRUPT || rc == SNAPARC_UNSUPPORTED) && e.msg[0]);
	} else {
		CHECK(out.len <= most);
		CHECK(out.cap <= 256 || out.cap < 2 * most);
	}
	buf_free(&out);
}

/* The record s with its chunk's first n samples. */
static void encode_first(struct buf *out, const struct rec_series *s, const int64_t *t, const uint64_t *v, size_t n)
{
	struct rec_series r = *s;
	struct xor_enc x;

	xor_enc_init(&x);
	for (size_t i = 0; i < n; i++)
		CHECK(xor_enc_append(&x, t[i], v[i]) == 0);
	r.chunk = xor_enc_bytes(&x, &r.chunk_len);
	r.maxt = n ? t[n - 1] : s->mint;
	r.last_value = n ? v[n - 1] : 0;
	r.tail = NULL;
	r.tail_len = 0;
	buf_reset(out);
	rec_series_encode(out, &r);
	CHECK(!out->oom);
	xor_enc_free(&x);
}

static void round_trip(uint8_t ctl, const uint8_t *base, size_t base_len, const uint8_t *mask, size_t mask_len)
{
	static int64_t t[MAX_SAMPLES];
	static uint64_t v[MAX_SAMPLES];
	struct rec_series s;
	struct xor_iter it;
	struct buf r0 = { 0 }, r1 = { 0 }, r2 = { 0 }, d1 = { 0 }, d2 = { 0 }, out = { 0 };
	struct err e = { 0 };
	size_t n = 0, j, k;

	if (rec_series_decode(&s, base, base_len, NULL) || !s.has_chunk || s.encoding != CHUNK_XOR)
		return;
	xor_iter_init(&it, s.chunk, s.chunk_len);
	while (n < MAX_SAMPLES && xor_iter_next(&it, &t[n], &v[n]) == 1)
		n++;
	if (n < 3)
		return;
	k = 1 + ctl % (n - 1);          /* 1 .. n-1 */
	j = ctl / 2 % k;                /* 0 .. k-1 */
	encode_first(&r0, &s, t, v, j);
	encode_first(&r1, &s, t, v, k);
	encode_first(&r2, &s, t, v, n);
	CHECK(xordelta_make(&BASE, r0.p, r0.len, r1.p, r1.len, 0, SIZE_MAX, &d1) == 1);
	CHECK(xordelta_make(&BASE, r1.p, r1.len, r2.p, r2.len, 1, SIZE_MAX, &d2) == 1);
	{
		const uint8_t *p[2] = { d1.p, d2.p };
		size_t len[2] = { d1.len, d2.len };

		CHECK(xordelta_apply_chain(p, len, 2, r0.p, r0.len, &out, &e) == 0);
		CHECK(out.len == r2.len && memcmp(out.p, r2.p, r2.len) == 0);
		CHECK(xordelta_apply(d1.p, d1.len, r0.p, r0.len, &out, &e) == 0);
		CHECK(out.len == r1.len && memcmp(out.p, r1.p, r1.len) == 0);
		/* alone, the second has no decoder state to start from */
		CHECK(xordelta_apply(d2.p, d2.len, r1.p, r1.len, &out, &e) == SNAPARC_CORRUPT);
		/* and the first two are cuts of the third */
		if (j) {
			uint32_t got = 0;
			size_t at = ctl;   /* a hint, right or wrong */

			CHECK(xordelta_cut(r2.p, r2.len, (uint32_t)j, &out, &e) == 0);
			CHECK(out.len == r0.len && memcmp(out.p, r0.p, r0.len) == 0);
			CHECK(xordelta_cut_of(r2.p, r2.len, r0.p, r0.len, &d2, &at, &got) == 1 && got == j);
		}
		CHECK(xordelta_cut(r2.p, r2.len, (uint32_t)k, &out, &e) == 0);
		CHECK(out.len == r1.len && memcmp(out.p, r1.p, r1.len) == 0);
		if (mask_len) {
			for (size_t i = 0; i < d1.len; i++)
				d1.p[i] ^= mask[i % mask_len];
			{
				uint8_t *q = dup_exact(d1.p, d1.len);
				const uint8_t *pq[2] = { q, d2.p };

				check_apply(pq, len, 2, r0.p, r0.len);
				free(q);
			}
		}
	}
	buf_free(&r0);
	buf_free(&r1);
	buf_free(&r2);
	buf_free(&d1);
	buf_free(&d2);
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p[MAX_HOPS];
	uint8_t *own[MAX_HOPS];
	size_t len[MAX_HOPS], n = 0, blen, at;
	uint8_t *base;

	if (size < 3)
		return 0;
	blen = (size_t)data[1] | (size_t)data[2] << 8;
	if (blen > size - 3)
		blen = size - 3;
	base = dup_exact(data + 3, blen);
	at = 3 + blen;
	while (n < MAX_HOPS && at + 2 <= size) {
		size_t l = (size_t)data[at] | (size_t)data[at + 1] << 8;

		at += 2;
		if (l > size - at)
			l = size - at;
		own[n] = dup_exact(data + at, l);
		p[n] = own[n];
		len[n++] = l;
		at += l;
	}
	if (n)
		check_apply(p, len, n, base, blen);
	/* any record cut to any count: an answer or a clear error, never more than it holds */
	{
		struct buf out = { 0 };
		struct err e = { 0 };
		int rc = xordelta_cut(base, blen, (uint32_t)data[0] | (uint32_t)data[1] << 8, &out, &e);

		CHECK(rc ? rc == SNAPARC_CORRUPT || rc == SNAPARC_UNSUPPORTED ? e.msg[0] != 0 : 0 : out.len <= blen);
		buf_free(&out);
	}
	round_trip(data[0], base, blen, data + 3 + blen, size - 3 - blen);
	for (size_t i = 0; i < n; i++)
		free(own[i]);
	free(base);
	return 0;
}
