/*
 * fuzz_record: the input is one decompressed snapshot record.
 *
 * The decoder for its type runs and, when it accepts the record, everything
 * in it is walked: labels, intervals, exemplars and the samples of an XOR
 * chunk. Then rec_reencode() must agree with the decoder, and its output must
 * decode, walk, re-encode to itself (canonical form is a fixpoint) and be no
 * longer than the input. Failures must carry a message. A violation traps,
 * which libFuzzer reports as a crash with the input.
 *
 * "No longer" holds only when the input is based as Prometheus bases an
 * exemplars record: on its first exemplar. Another base is valid (Go's
 * decoder takes it too) but re-encoding moves the base to the first
 * exemplar, and the deltas from there can take more varint bytes: base 0,
 * deltas 63 and -64 (one byte each) become base 63, deltas 0 and -127 (one
 * and two bytes).
 *
 * XOR chunks are also checked against the encoder: the samples of a chunk
 * that iterates cleanly, appended to an xor_enc, must iterate back the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "xor.h"
#include "fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_labels(const struct rec_labels *ls)
{
	struct rec_label_iter it;
	struct rec_label l;
	uint32_t n = 0;
	size_t bytes = 0;

	rec_labels_iter(&it, ls);
	while (rec_labels_next(&it, &l)) {
		CHECK(l.name_len == 0 || (const uint8_t *)l.name >= ls->raw);
		CHECK(l.value_len == 0 || (const uint8_t *)l.value + l.value_len <= ls->raw + ls->raw_len);
		bytes += l.name_len + l.value_len;
		n++;
	}
	CHECK(dec_ok(&it.d));
	CHECK(n == ls->count);
	CHECK(bytes <= ls->raw_len);
	(void)rec_labels_hash(ls);
}

/* The samples of a chunk that read cleanly, encoded again, read back the same. */
static void xor_roundtrip(const uint8_t *chunk, size_t len, uint16_t count)
{
	struct xor_iter a, b;
	struct xor_enc enc;
	const uint8_t *out;
	size_t out_len;
	int64_t ta, tb;
	uint64_t va, vb;

	xor_enc_init(&enc);
	xor_iter_init(&a, chunk, len);
	while (xor_iter_next(&a, &ta, &va) == 1)
		CHECK(xor_enc_append(&enc, ta, va) == 0);
	out = xor_enc_bytes(&enc, &out_len);
	CHECK(xor_chunk_count(out, out_len) == count);
	xor_iter_init(&a, chunk, len);
	xor_iter_init(&b, out, out_len);
	for (uint32_t i = 0; i < count; i++) {
		CHECK(xor_iter_next(&a, &ta, &va) == 1);
		CHECK(xor_iter_next(&b, &tb, &vb) == 1);
		CHECK(ta == tb && va == vb);
	}
	CHECK(xor_iter_next(&b, &tb, &vb) == 0);
	xor_enc_free(&enc);
}

static void walk_xor(const uint8_t *chunk, size_t len)
{
	struct xor_iter it;
	uint16_t count = xor_chunk_count(chunk, len);
	uint32_t got = 0;
	int64_t t;
	uint64_t v;
	int rc;
	char why[256];

	xor_iter_init(&it, chunk, len);
	/* at most count samples, then an end or an error */
	while ((rc = xor_iter_next(&it, &t, &v)) == 1)
		CHECK(++got <= count);
	CHECK(rc == 0 || rc == -1);
	CHECK(xor_iter_next(&it, &t, &v) == rc);
	if (rc == 0) {
		CHECK(got == count);
		xor_roundtrip(chunk, len, count);
		return;
	}
	CHECK(it.error != NULL && it.error[0] != '\0');
	xor_iter_describe(&it, why, sizeof(why));
	CHECK(why[0] != '\0');
}

static void walk_series(const struct rec_series *s)
{
	walk_labels(&s->labels);
	if (s->has_chunk && s->encoding == CHUNK_XOR)
		walk_xor(s->chunk, s->chunk_len);
}

static void walk_tombstones(const struct rec_tombstones *t)
{
	struct rec_tombstone_iter it;
	struct rec_interval iv;
	size_t n = 0;

	rec_tombstones_iter(&it, t);
	while (rec_tombstones_next(&it, &iv))
		n++;
	CHECK(dec_ok(&it.d));
	CHECK(n == t->count);
}

/* Returns whether the record is based on its first exemplar (or has none). */
static int walk_exemplars(const struct rec_exemplars *x)
{
	struct rec_exemplar_iter it;
	struct rec_exemplar ex;
	size_t n = 0;
	int first_is_base = 1;

	rec_exemplars_iter(&it, x);
	while (rec_exemplars_next(&it, &ex)) {
		if (n == 0)
			first_is_base = ex.ref == x->base_ref && ex.t == x->base_t;
		walk_labels(&ex.labels);
		n++;
	}
	CHECK(dec_ok(&it.d));
	CHECK(n == x->count);
	return first_is_base;
}

/* Decodes with the decoder for the record's type and walks what it holds;
 * returns the decoder's status (unknown types fail as rec_reencode does).
 * *may_grow says whether re-encoding may lengthen the record. */
static int decode_and_walk(const uint8_t *p, size_t len, int *may_grow, struct err *e)
{
	struct rec_series s;
	struct rec_tombstones t;
	struct rec_exemplars x;
	int rc;

	*may_grow = 0;
	switch (rec_type(p, len)) {
	case REC_SERIES:
		if (!(rc = rec_series_decode(&s, p, len, e)))
			walk_series(&s);
		return rc;
	case REC_TOMBSTONES:
		if (!(rc = rec_tombstones_decode(&t, p, len, e)))
			walk_tombstones(&t);
		return rc;
	case REC_EXEMPLARS:
		if (!(rc = rec_exemplars_decode(&x, p, len, e)))
			*may_grow = !walk_exemplars(&x);
		return rc;
	}
	return err_set(e, SNAPARC_CORRUPT, "not a snapshot record");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf once = { 0 }, twice = { 0 };
	struct err e = { 0 };
	uint8_t *copy;
	int rc, rerc, may_grow, again_may_grow;

	rc = decode_and_walk(data, size, &may_grow, &e);
	CHECK(rc <= 0);
	if (rc)
		CHECK(e.msg[0] != '\0');
	e.msg[0] = '\0';
	rerc = rec_reencode(&once, data, size, &e);
	CHECK(rerc <= 0);
	if (rerc) {
		CHECK(e.msg[0] != '\0');
		CHECK(rc != 0 || rerc == SNAPARC_NOMEM);
		goto out;
	}
	CHECK(rc == 0);
	CHECK(may_grow || once.len <= size);
	/* an exactly-sized copy, so that ASan sees a read past the end */
	copy = malloc(once.len ? once.len : 1);
	CHECK(copy != NULL);
	if (once.len)
		memcpy(copy, once.p, once.len);
	CHECK(decode_and_walk(copy, once.len, &again_may_grow, &e) == 0);
	CHECK(!again_may_grow);   /* canonical form is based on its first exemplar */
	CHECK(rec_reencode(&twice, copy, once.len, &e) == 0);
	CHECK(twice.len == once.len && memcmp(twice.p, once.p, once.len) == 0);
	free(copy);
out:
	buf_free(&once);
	buf_free(&twice);
	return 0;
}
