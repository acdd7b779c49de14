/*
 * LZ4 against a dictionary (codec/lz4dict.[ch]): a record is stored
 * compressed only when its payload (header and LZ4 block) is smaller than
 * the record, at every length and for dictionary ids of every varint
 * length, right at the boundary included; dictionary id 0, which marks a
 * delta, gets no compressor, and the delta compressor makes deltas alone.
 * Told where a series record's chunk is (lz4dict_compress_series()), the
 * compressor makes the payload it makes finding it.
 * A series record whose XOR chunk is dense (LZ4 searches only its start and
 * writes the rest into the block as literals) reads back exactly, with LZ4's
 * own decoder, whatever the lengths around the chunk and after it.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>

#include "bytes.h"
#include "lz4dict.h"
#include "record.h"
#include "xor.h"

#define PREFIX "pre"   /* compress appends: what is there must stay */

/* Ids whose uvarints take 1 to 5 bytes. */
static const uint32_t ids[] = { 1, 127, 128, 16384, UINT32_C(1) << 21, UINT32_C(1) << 28, UINT32_MAX };

static struct lz4dict_enc *enc(uint32_t id, const uint8_t *dict, size_t len)
{
	struct lz4dict_enc *c = NULL;
	struct err e = { 0 };

	cr_assert_eq(lz4dict_enc_new(&c, id, dict, len, &e), 0, "id %u: %s", id, e.msg);
	cr_assert_not_null(c);
	return c;
}

/* src in a prefixed buffer: returns what lz4dict_compress() did, checks it
 * appended nothing on 0 and a payload that reads back on 1; *plen is the
 * payload's length. */
static int compress(struct lz4dict_enc *c, uint32_t id, const uint8_t *dict, size_t dict_len, const uint8_t *src,
		    size_t len, size_t *plen)
{
	struct buf out = { 0 }, back = { 0 };
	struct err e = { 0 };
	uint32_t got_id;
	size_t raw, hdr;
	int rc;

	buf_put(&out, PREFIX, strlen(PREFIX));
	rc = lz4dict_compress(c, src, len, &out);
	cr_assert(rc == 0 || rc == 1, "id %u, %zu bytes: returned %d", id, len, rc);
	cr_assert(out.len >= strlen(PREFIX) && !memcmp(out.p, PREFIX, strlen(PREFIX)));
	*plen = out.len - strlen(PREFIX);
	if (rc == 0) {
		cr_assert_eq(*plen, 0, "id %u, %zu bytes: returned 0 and appended %zu bytes", id, len, *plen);
	} else {
		const uint8_t *p = out.p + strlen(PREFIX);

		cr_assert_eq(lz4dict_header(p, *plen, &got_id, &raw, &hdr, &e), 0, "%s", e.msg);
		cr_assert_eq(got_id, id);
		cr_assert_eq(raw, len);
		cr_assert_eq(hdr, uvarint_len(id) + uvarint_len(len));
		cr_assert_eq(lz4dict_decompress(p, *plen, dict, dict_len, &back, &e), 0, "%s", e.msg);
		cr_assert(back.len == len && !memcmp(back.p, src, len), "id %u, %zu bytes: reads back otherwise", id,
			  len);
	}
	buf_free(&out);
	buf_free(&back);
	return rc;
}

Test(lz4dict, no_payload_for_a_record_at_most_one_byte_longer_than_its_header)
{
	uint8_t zeros[16] = { 0 };

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct lz4dict_enc *c = enc(ids[i], NULL, 0);
		size_t header = uvarint_len(ids[i]) + 1, plen;   /* the lengths here take one byte */

		/* a payload of len bytes or more: the header, and a block of at
		 * least one byte; len == header once wrapped LZ4's output cap */
		for (size_t len = 0; len <= header + 1; len++)
			cr_assert_eq(compress(c, ids[i], NULL, 0, zeros, len, &plen), 0,
				     "id %u (header %zu bytes): a %zu-byte record gave a %zu-byte payload", ids[i],
				     header, len, plen);
		lz4dict_enc_free(c);
	}
}

/* LZ4's block for src with no dictionary, unbounded, as lz4dict_compress()
 * makes it (a fresh stream, acceleration 1). */
static size_t block_len(const uint8_t *src, size_t len)
{
	LZ4_stream_t *s = LZ4_createStream();
	int cap = LZ4_compressBound((int)len), n;
	char *dst = malloc((size_t)cap);

	cr_assert(s && dst);
	n = LZ4_compress_fast_continue(s, (const char *)src, dst, (int)len, cap, 1);
	cr_assert_gt(n, 0);
	free(dst);
	LZ4_freeStream(s);
	return (size_t)n;
}

Test(lz4dict, payload_one_byte_smaller_is_stored_and_one_as_long_is_not)
{
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct lz4dict_enc *c = enc(ids[i], NULL, 0);
		int stored = 0, refused = 0;

		/* 20 bytes that do not repeat, then zeros: each zero more saves a byte */
		for (size_t zeros = 0; zeros < 80; zeros++) {
			uint8_t src[100];
			size_t len = 20 + zeros, payload, plen;
			int rc;

			for (size_t j = 0; j < 20; j++)
				src[j] = (uint8_t)(j * 37 + 11);
			memset(src + 20, 0, zeros);
			payload = uvarint_len(ids[i]) + uvarint_len(len) + block_len(src, len);
			rc = compress(c, ids[i], NULL, 0, src, len, &plen);
			if (payload >= len) {
				cr_assert_eq(rc, 0, "id %u: a %zu-byte record stored as a %zu-byte payload", ids[i], len,
					     plen);
				refused += payload == len;
			} else if (payload == len - 1) {
				cr_assert_eq(rc, 1, "id %u: a %zu-byte record not stored as a %zu-byte payload", ids[i],
					     len, payload);
				cr_assert_eq(plen, payload);
				stored++;
			}
		}
		cr_assert(stored && refused, "id %u: no record with a payload of its length (%d) or one less (%d)",
			  ids[i], refused, stored);
		lz4dict_enc_free(c);
	}
}

Test(lz4dict, stored_payloads_are_smaller_at_every_length_and_read_back)
{
	uint8_t dict[512], src[600];
	int compressed = 0;

	for (size_t j = 0; j < sizeof(dict); j++)
		dict[j] = (uint8_t)("up{job=\"node\",instance=\"10.0.0.1:9100\"} "[j % 41]);
	for (size_t j = 0; j < sizeof(src); j++)
		src[j] = (uint8_t)(j % 50 ? dict[(j + 5) % sizeof(dict)] : j * 13);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		for (int with = 0; with < 2; with++) {
			struct lz4dict_enc *c = enc(ids[i], with ? dict : NULL, with ? sizeof(dict) : 0);

			for (size_t len = 0; len <= sizeof(src); len++) {
				size_t plen;

				if (compress(c, ids[i], with ? dict : NULL, with ? sizeof(dict) : 0, src, len, &plen)) {
					cr_assert_lt(plen, len, "id %u: a %zu-byte record stored as %zu bytes", ids[i],
						     len, plen);
					compressed++;
				}
			}
			lz4dict_enc_free(c);
		}
	}
	cr_assert_gt(compressed, 0, "nothing compressed: the test tests nothing");
}

Test(lz4dict, dictionary_id_0_gets_no_compressor)
{
	static const uint8_t dict[] = "some dictionary bytes";
	struct lz4dict_enc *c = NULL;
	struct err e = { 0 };

	cr_assert_eq(lz4dict_enc_new(&c, 0, dict, sizeof(dict), &e), SNAPARC_INVALID, "%s", e.msg);
	cr_assert_null(c);
	cr_assert(strstr(e.msg, "dictionary id 0") && strstr(e.msg, "delta"), "%s", e.msg);
	memset(&e, 0, sizeof(e));
	cr_assert_eq(lz4dict_enc_new(&c, 0, NULL, 0, &e), SNAPARC_INVALID, "%s", e.msg);
	cr_assert_null(c);
}

Test(lz4dict, delta_compressor_makes_deltas_alone)
{
	struct lz4dict_base base = { 3, 12345, 678 }, got;
	struct lz4dict_enc *c = NULL;
	struct buf out = { 0 }, back = { 0 };
	struct err e = { 0 };
	uint8_t base_raw[300], src[300], zeros[300];
	uint32_t id;
	size_t raw, hdr;

	for (size_t j = 0; j < sizeof(base_raw); j++)
		base_raw[j] = (uint8_t)(j * 31 + j / 7);
	memcpy(src, base_raw, sizeof(src));
	src[150] ^= 0xff;
	cr_assert_eq(lz4dict_delta_enc_new(&c, &e), 0, "%s", e.msg);

	/* a whole record, however well it compresses: nothing (a payload with
	 * id 0 would read as a delta) */
	memset(zeros, 0, sizeof(zeros));
	cr_assert_eq(lz4dict_compress(c, zeros, sizeof(zeros), &out), 0);
	cr_assert_eq(out.len, 0);

	cr_assert_eq(lz4dict_delta(c, &base, base_raw, sizeof(base_raw), src, sizeof(src), sizeof(src), &out), 1);
	cr_assert_lt(out.len, sizeof(src));
	cr_assert_eq(lz4dict_delta_base(out.p, out.len, &got, &e), 1, "%s", e.msg);
	cr_assert(got.segment == base.segment && got.offset == base.offset && got.span == base.span);
	cr_assert_eq(lz4dict_header(out.p, out.len, &id, &raw, &hdr, &e), 0, "%s", e.msg);
	cr_assert_eq(id, 0);
	cr_assert_eq(raw, sizeof(src));
	cr_assert_eq(lz4dict_decompress(out.p, out.len, base_raw, sizeof(base_raw), &back, &e), 0, "%s", e.msg);
	cr_assert(back.len == sizeof(src) && !memcmp(back.p, src, sizeof(src)));
	lz4dict_enc_free(c);
	buf_free(&out);
	buf_free(&back);
}

/* A record that begins with all of its base but its end, like a snapshot's
 * exemplar record after the previous one: a prefix delta stores the length
 * they share and the rest, however far past LZ4's 64 KiB window it is. */
Test(lz4dict, prefix_delta_stores_what_follows_the_base)
{
	struct lz4dict_base base = { 2, 777, 99999 }, got;
	struct lz4dict_enc *c = NULL;
	struct buf out = { 0 }, back = { 0 };
	struct err e = { 0 };
	size_t base_len = 200000, len = base_len + 3000, raw, hdr;
	uint8_t *b = malloc(base_len), *src = malloc(len);
	uint64_t x = 88172645463325252ULL;
	uint32_t id;

	cr_assert(b && src);
	for (size_t j = 0; j < len; j++) {   /* xorshift: LZ4 finds nothing in it */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		src[j] = (uint8_t)x;
	}
	memcpy(b, src, base_len - 10);       /* the base's own last 10 bytes differ */
	memset(b + base_len - 10, 0xee, 10);
	cr_assert_eq(lz4dict_delta_enc_new(&c, &e), 0, "%s", e.msg);
	cr_assert_eq(lz4dict_delta(c, &base, b, base_len, src, len, len, &out), 1);
	/* the 3010 bytes after what they share, stored as they are, and a header */
	cr_assert_lt(out.len, 3010 + 40, "%zu bytes", out.len);
	cr_assert_eq(lz4dict_delta_base(out.p, out.len, &got, &e), 1, "%s", e.msg);
	cr_assert(got.segment == 2 && got.offset == 777 && got.span == 99999);
	cr_assert_eq(lz4dict_header(out.p, out.len, &id, &raw, &hdr, &e), 0, "%s", e.msg);
	cr_assert_eq(id, 0);
	cr_assert_eq(raw, len);
	cr_assert_eq(lz4dict_decompress(out.p, out.len, b, base_len, &back, &e), 0, "%s", e.msg);
	cr_assert(back.len == len && !memcmp(back.p, src, len));
	/* a base shorter than the prefix it stands for */
	cr_assert_eq(lz4dict_decompress(out.p, out.len, b, base_len - 11, &back, &e), SNAPARC_CORRUPT);
	cr_assert_not_null(strstr(e.msg, "prefix delta starts with 199990 bytes of a 199989-byte base"), "%s", e.msg);
	lz4dict_enc_free(c);
	buf_free(&out);
	buf_free(&back);
	free(b);
	free(src);
}

/* Bytes that begin as a recoded record does would be unpacked on reading:
 * they are stored plain. */
Test(lz4dict, a_record_that_looks_recoded_is_stored_plain)
{
	uint8_t src[400];
	struct lz4dict_enc *c = enc(1, NULL, 0);
	struct buf out = { 0 };

	memset(src, 'a', sizeof(src));
	src[0] = 0x81;
	cr_assert_eq(lz4dict_compress(c, src, sizeof(src), &out), 0);
	cr_assert_eq(out.len, 0);
	src[0] = 0x01;
	cr_assert_eq(lz4dict_compress(c, src, sizeof(src), &out), 1);
	lz4dict_enc_free(c);
	buf_free(&out);
}

/* A series record with `labels` labels whose values are `value_len` bytes,
 * and an XOR chunk of n samples whose values are random bits (about 60 bits
 * a sample: dense); its tail is Prometheus' (tail NULL) or the bytes given. */
static void dense_series(struct buf *b, size_t labels, size_t value_len, size_t n, uint64_t seed,
			 const uint8_t *tail, size_t tail_len)
{
	struct rec_label ls[16];
	char names[16][8], value[300];
	struct buf lb = { 0 };
	struct xor_enc x;
	struct rec_series s = { 0 };
	uint64_t v = seed, last = 0;
	size_t len;

	cr_assert(labels <= 16 && value_len <= sizeof(value));
	memset(value, 'v', value_len);
	for (size_t i = 0; i < labels; i++) {
		snprintf(names[i], sizeof(names[i]), "l%02zu", i);
		ls[i] = (struct rec_label){ names[i], value, 3, value_len };
	}
	rec_labels_encode(&lb, ls, labels);
	xor_enc_init(&x);
	for (size_t i = 0; i < n; i++) {
		/* splitmix64: xorshift's successive values share bits, whose xors repeat */
		uint64_t z = (v += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		last = (z ^ (z >> 31)) >> 2;
		cr_assert_eq(xor_enc_append(&x, 1700000000000 + (int64_t)i * 15000, last), 0);
	}
	s.ref = seed;
	s.labels = (struct rec_labels){ lb.p, lb.len, (uint32_t)labels };
	s.has_chunk = 1;
	s.mint = 1700000000000;
	s.maxt = 1700000000000 + (int64_t)(n - 1) * 15000;
	s.encoding = CHUNK_XOR;
	s.chunk = xor_enc_bytes(&x, &len);
	s.chunk_len = len;
	s.tail = tail;
	s.tail_len = tail_len;
	s.last_value = last;
	buf_reset(b);
	rec_series_encode(b, &s);
	cr_assert(!b->oom && !lb.oom);
	xor_enc_free(&x);
	buf_free(&lb);
}

/* The block LZ4 alone makes of the whole record against dict. */
static size_t whole_block_len(const uint8_t *dict, size_t dict_len, const uint8_t *src, size_t len)
{
	LZ4_stream_t *s = LZ4_createStream();
	int cap = LZ4_compressBound((int)len), n;
	char *dst = malloc((size_t)cap);

	cr_assert(s && dst);
	LZ4_loadDict(s, (const char *)dict, (int)dict_len);
	n = LZ4_compress_fast_continue(s, (const char *)src, dst, (int)len, cap, 1);
	cr_assert_gt(n, 0);
	free(dst);
	LZ4_freeStream(s);
	return (size_t)n;
}

/* lz4dict_compress_series() told where the record's chunk is, as its
 * decoder says, makes want, lz4dict_compress()'s payload, byte for byte
 * (import compresses only series that decode so): whether it decodes. */
static int check_series_payload(struct lz4dict_enc *c, const struct buf *rec, const struct buf *want)
{
	struct rec_series s;
	struct buf got = { 0 };
	size_t at = 0, n = 0;

	if (rec_series_decode(&s, rec->p, rec->len, NULL))
		return 0;
	if (s.has_chunk && (s.encoding == CHUNK_XOR || s.encoding == CHUNK_XOR2)) {
		at = (size_t)(s.chunk - rec->p);
		n = s.chunk_len;
	}
	cr_assert_eq(lz4dict_compress_series(c, rec->p, rec->len, at, n, &got), want->len ? 1 : 0);
	cr_assert(got.len == want->len && !memcmp(got.p, want->p, got.len),
		  "a %zu-byte record: %zu bytes told where its chunk is, %zu found", rec->len, got.len, want->len);
	buf_free(&got);
	return 1;
}

/* Checks a dense series record through compress() (it reads back), with
 * LZ4's decoder directly too, and no larger than LZ4 makes it whole but for
 * a match LZ4 finds into the chunk's first bytes (what they share with the
 * dictionary here: the time), which LZ4 cannot reach from its last 12 bytes. */
static void check_dense(struct lz4dict_enc *c, const uint8_t *dict, size_t dict_len, const struct buf *rec)
{
	struct buf out = { 0 };
	size_t plen, header = uvarint_len(7) + uvarint_len(rec->len);
	char *back = malloc(rec->len);
	int n;

	cr_assert_eq(compress(c, 7, dict, dict_len, rec->p, rec->len, &plen), 1, "a %zu-byte record not stored",
		     rec->len);
	cr_assert_eq(lz4dict_compress(c, rec->p, rec->len, &out), 1);
	n = LZ4_decompress_safe_usingDict((const char *)out.p + header, back, (int)(out.len - header), (int)rec->len,
					  (const char *)dict, (int)dict_len);
	cr_assert(n == (int)rec->len && !memcmp(back, rec->p, rec->len), "LZ4 reads %d bytes of %zu", n, rec->len);
	cr_assert_leq(plen, header + whole_block_len(dict, dict_len, rec->p, rec->len) + 16,
		      "a %zu-byte record: %zu bytes, LZ4 %zu", rec->len, plen, whole_block_len(dict, dict_len, rec->p, rec->len));
	check_series_payload(c, rec, &out);
	free(back);
	buf_free(&out);
}

Test(lz4dict, dense_chunks_read_back_at_every_length)
{
	uint8_t dict[4096];
	struct buf rec = { 0 };
	struct lz4dict_enc *c;
	int checked = 0;

	/* a dictionary that holds the records' labels, as a trained one does */
	dense_series(&rec, 16, 200, 1, 1, NULL, 0);
	for (size_t j = 0; j < sizeof(dict); j++)
		dict[j] = rec.p[j % (rec.len - 80)];
	c = enc(7, dict, sizeof(dict));
	/* chunks of 64 to about 1,100 bytes: the literals after LZ4's own
	 * cross every length where one more length byte is needed */
	for (size_t n = 8; n <= 120; n++)
		for (size_t labels = 1; labels <= 16; labels += 5) {
			dense_series(&rec, labels, 5 + n % 40, n, n * 31 + labels, NULL, 0);
			check_dense(c, dict, sizeof(dict), &rec);
			checked++;
		}
	cr_assert_gt(checked, 400);
	lz4dict_enc_free(c);
	buf_free(&rec);
}

Test(lz4dict, dense_chunks_read_back_whatever_follows_them)
{
	uint8_t dict[2048], tail[80];
	struct buf rec = { 0 };
	struct lz4dict_enc *c;

	dense_series(&rec, 8, 20, 1, 1, NULL, 0);
	for (size_t j = 0; j < sizeof(dict); j++)
		dict[j] = rec.p[j % (rec.len - 80)];
	c = enc(7, dict, sizeof(dict));
	/* no bytes after the chunk to 80, and each with a run of 0 to all
	 * zeros first: the run becomes a match only where LZ4's rules allow */
	for (size_t tail_len = 0; tail_len <= sizeof(tail); tail_len++)
		for (size_t zeros = 0; zeros <= tail_len; zeros++) {
			memset(tail, 0, zeros);
			for (size_t j = zeros; j < tail_len; j++)
				tail[j] = (uint8_t)(j * 7 + 1);
			dense_series(&rec, 8, 20, 90, tail_len * 100 + zeros, tail, tail_len);
			check_dense(c, dict, sizeof(dict), &rec);
		}
	lz4dict_enc_free(c);
	buf_free(&rec);
}

/* What makes it fast: past its first 24 bytes a chunk none of whose 8-byte
 * strings is in the dictionary is not searched, even when it repeats itself
 * (LZ4 alone would store its second half as a match); one the dictionary
 * holds is, and shrinks. */
Test(lz4dict, chunks_are_searched_only_for_what_the_dictionary_holds)
{
	uint8_t dict[4096], chunk[602];
	struct buf rec = { 0 }, out = { 0 };
	struct lz4dict_enc *c;
	struct rec_series s;
	struct err e = { 0 };
	uint64_t z = 99;
	size_t plen;

	/* 100 samples, then 300 random bytes twice */
	chunk[0] = 0;
	chunk[1] = 100;
	for (size_t j = 0; j < 300; j++) {
		z = z * 6364136223846793005ULL + 1442695040888963407ULL;
		chunk[2 + j] = chunk[302 + j] = (uint8_t)(z >> 56);
	}
	dense_series(&rec, 4, 10, 1, 5, NULL, 0);
	cr_assert_eq(rec_series_decode(&s, rec.p, rec.len, &e), 0, "%s", e.msg);
	for (size_t j = 0; j < sizeof(dict); j++)
		dict[j] = rec.p[j % (rec.len - 80)];
	s.chunk = chunk;
	s.chunk_len = sizeof(chunk);
	s.tail = NULL;
	{
		struct buf labels = { 0 };

		buf_put(&labels, s.labels.raw, s.labels.raw_len);
		s.labels.raw = labels.p;
		buf_reset(&rec);
		rec_series_encode(&rec, &s);
		buf_free(&labels);
	}
	cr_assert(!rec.oom);
	cr_assert_lt(whole_block_len(dict, sizeof(dict), rec.p, rec.len), rec.len - 250);
	c = enc(7, dict, sizeof(dict));
	cr_assert_eq(lz4dict_compress(c, rec.p, rec.len, &out), 1);
	cr_assert_geq(out.len, sizeof(chunk) - 24, "%zu bytes", out.len);
	cr_assert(check_series_payload(c, &rec, &out));
	cr_assert_eq(compress(c, 7, dict, sizeof(dict), rec.p, rec.len, &plen), 1);
	lz4dict_enc_free(c);

	/* the same record in the dictionary: LZ4 finds it whole */
	c = enc(7, rec.p, rec.len);
	buf_reset(&out);
	cr_assert_eq(lz4dict_compress(c, rec.p, rec.len, &out), 1);
	cr_assert_lt(out.len, 40, "%zu bytes", out.len);
	cr_assert(check_series_payload(c, &rec, &out));
	lz4dict_enc_free(c);
	buf_free(&rec);
	buf_free(&out);
}
