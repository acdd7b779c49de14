/*
 * fuzz_lz4dict: the archive's LZ4 payloads (codec/lz4dict.c), both ways.
 *
 * The input is a 7-byte header, then a dictionary, then a payload:
 *
 *   byte 0      flags: bit 0 replaces the payload's header by one with
 *               dictionary id (bits 3..4) and a raw length of
 *               le32(bytes 3..6) << (bits 5..7), up to 2^39 bytes; bit 2
 *               adds 64 KiB to the dictionary length
 *   bytes 1..2  the dictionary length (le16, cut to what the input has)
 *   bytes 3..6  a dictionary id for the round trip (0, which marks a
 *               delta, must be refused by lz4dict_enc_new() and is then
 *               taken as 1), and the claimed length
 *
 * Decompression of the payload with the dictionary must never crash, must
 * fail with a message when it fails, must agree with lz4dict_header() and
 * must allocate no more than the payload can expand to (255 bytes a byte,
 * LZ4's limit): a payload that claims 4 GiB is refused, not allocated.
 * run.sh also runs this target with a low -malloc_limit_mb.
 *
 * The round trip: everything after the header, compressed with a
 * dictionary cut from its start, must decompress to itself, be smaller
 * than it, and read back with the dictionary alone whatever the compressor
 * did before (each record stays readable on its own); so must what follows
 * the dictionary, which then does not begin with it (a series record whose
 * chunk the dictionary does not hold: LZ4 searches it only up to the chunk,
 * the compressor writes the rest into the block itself). A violation traps,
 * which libFuzzer reports as a crash with the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "lz4dict.h"
#include "wal.h"
#include "fuzz.h"

#define HEADER 7
#define LZ4_MAX_EXPANSION 255u   /* as lz4dict.c: a byte of block gives at most 255 */
#define PREFIX "pre"             /* compress appends: what is there must stay */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The most a buffer may have grown to for a payload of len bytes: buf
 * doubles from 256 up to the raw length, which is at most 255 a byte. */
static int cap_ok(const struct buf *b, size_t len)
{
	uint64_t most = (uint64_t)len * LZ4_MAX_EXPANSION + 16;

	return b->cap <= 256 || b->cap < 2 * most;
}

static void check_decompress(const uint8_t *p, size_t len, const uint8_t *dict, size_t dict_len)
{
	struct buf out = { 0 }, again = { 0 };
	struct err e = { 0 }, e2 = { 0 };
	uint32_t id;
	size_t raw = 0, hdr = 0;
	int hrc, rc;

	hrc = lz4dict_header(p, len, &id, &raw, &hdr, &e);
	if (hrc) {
		CHECK(hrc == SNAPARC_CORRUPT && strstr(e.msg, "LZ4 payload") != NULL);
	} else {
		CHECK(hdr >= 2 && hdr <= len);
		CHECK(raw <= WAL_MAX_RECORD);
		/* a prefix delta's prefix is claimed up to WAL_MAX_RECORD: only
		 * what its base holds is believed (below) */
		CHECK(id == 0 || (uint64_t)raw <= (uint64_t)(len - hdr) * LZ4_MAX_EXPANSION + 16);
	}
	memset(&e, 0, sizeof(e));
	rc = lz4dict_decompress(p, len, dict, dict_len, &out, &e);
	CHECK(cap_ok(&out, len) || (!hrc && id == 0 && out.cap <= 2 * ((uint64_t)len * LZ4_MAX_EXPANSION + 16 + dict_len)));
	if (hrc) {
		/* refused on the header alone: nothing allocated */
		CHECK(rc == hrc && out.cap == 0 && e.msg[0] != '\0');
		return;
	}
	if (rc == 0) {
		CHECK(out.len == raw || (out.len > 0 && out.p[0] == 1));   /* or a recoded record, unpacked */
	} else {
		CHECK(rc == SNAPARC_CORRUPT || rc == SNAPARC_NOMEM);
		CHECK(e.code == rc && e.msg[0] != '\0');
	}
	/* the same answer into a buffer holding something: it is replaced */
	buf_put(&again, "left over", 9);
	CHECK(lz4dict_decompress(p, len, dict, dict_len, &again, &e2) == rc);
	if (rc == 0)
		CHECK(again.len == out.len && (out.len == 0 || memcmp(again.p, out.p, out.len) == 0));
	else
		CHECK(strcmp(e.msg, e2.msg) == 0);
	buf_free(&out);
	buf_free(&again);
}

/* Compresses src with the dictionary and reads it back. */
static void check_roundtrip(const uint8_t *src, size_t len, const uint8_t *dict, size_t dict_len, uint32_t id)
{
	static const uint8_t other[] = "a record before this one, to leave state in the compressor";
	struct lz4dict_enc *c;
	struct buf out = { 0 }, second = { 0 }, back = { 0 };
	struct err e = { 0 };
	uint32_t got_id;
	size_t raw, hdr, plen;
	const uint8_t *payload;
	uint8_t *copy;
	int rc;

	rc = lz4dict_enc_new(&c, id, dict, dict_len, &e);
	if (dict_len > LZ4DICT_MAX) {
		CHECK(rc == SNAPARC_INVALID && e.msg[0] != '\0');
		return;
	}
	CHECK(rc == 0);
	buf_put(&out, PREFIX, strlen(PREFIX));
	rc = lz4dict_compress(c, src, len, &out);
	CHECK(rc == 0 || rc == 1);
	CHECK(memcmp(out.p, PREFIX, strlen(PREFIX)) == 0);
	if (rc == 0) {
		CHECK(out.len == strlen(PREFIX));
		goto out;
	}
	payload = out.p + strlen(PREFIX);
	plen = out.len - strlen(PREFIX);
	/* stored only when smaller */
	CHECK(plen > 0 && plen < len);
	copy = dup_exact(payload, plen);
	CHECK(lz4dict_header(copy, plen, &got_id, &raw, &hdr, &e) == 0);
	CHECK(got_id == id && raw == len);
	CHECK(lz4dict_decompress(copy, plen, dict, dict_len, &back, &e) == 0);
	CHECK(back.len == len && memcmp(back.p, src, len) == 0);
	/* another dictionary (none) may give other bytes, never a crash */
	if (dict_len)
		(void)lz4dict_decompress(copy, plen, NULL, 0, &back, &e);
	free(copy);

	/* after another record, a payload that needs only the dictionary: LZ4's
	 * stream keeps state between blocks, and a record must not lean on the
	 * one before it (the bytes may differ: the stale hash table steers the
	 * matches) */
	CHECK(lz4dict_compress(c, other, sizeof(other), &second) >= 0);
	buf_reset(&second);
	rc = lz4dict_compress(c, src, len, &second);
	CHECK(rc == 0 || rc == 1);
	if (rc == 1) {
		copy = dup_exact(second.p, second.len);
		CHECK(lz4dict_decompress(copy, second.len, dict, dict_len, &back, &e) == 0);
		CHECK(back.len == len && memcmp(back.p, src, len) == 0);
		free(copy);
	}
out:
	lz4dict_enc_free(c);
	buf_free(&out);
	buf_free(&second);
	buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *rest, *payload;
	size_t left, dict_len, plen;
	uint8_t *dict, *p;
	uint32_t word;
	struct buf claimed = { 0 };

	if (size < HEADER)
		return 0;
	rest = data + HEADER;
	left = size - HEADER;
	dict_len = (size_t)data[1] | (size_t)data[2] << 8;
	if (data[0] & 4)
		dict_len += LZ4DICT_MAX;
	if (dict_len > left)
		dict_len = left;
	word = (uint32_t)data[3] | (uint32_t)data[4] << 8 | (uint32_t)data[5] << 16 | (uint32_t)data[6] << 24;
	dict = dup_exact(rest, dict_len);
	payload = rest + dict_len;
	plen = left - dict_len;

	if (data[0] & 1) {
		/* a made-up header claiming up to 2^39 bytes, then the block */
		buf_put_uvarint(&claimed, data[0] >> 3 & 3);
		buf_put_uvarint(&claimed, (uint64_t)word << (data[0] >> 5));
		buf_put(&claimed, payload, plen);
		CHECK(!claimed.oom);
		p = dup_exact(claimed.p, claimed.len);
		check_decompress(p, claimed.len, dict, dict_len);
		free(p);
		buf_free(&claimed);
	} else {
		p = dup_exact(payload, plen);
		check_decompress(p, plen, dict, dict_len);
		free(p);
	}

	if (!word) {
		struct lz4dict_enc *c = NULL;
		struct err e = { 0 };

		CHECK(lz4dict_enc_new(&c, 0, dict, dict_len > LZ4DICT_MAX ? LZ4DICT_MAX : dict_len, &e) ==
		      SNAPARC_INVALID);
		CHECK(c == NULL && e.msg[0] != '\0');
		word = 1;
	}
	check_roundtrip(rest, left, dict, dict_len > LZ4DICT_MAX ? LZ4DICT_MAX : dict_len, word);
	if (dict_len <= LZ4DICT_MAX)
		check_roundtrip(payload, plen, dict, dict_len, word);
	if (dict_len > LZ4DICT_MAX)
		check_roundtrip(rest, left, dict, dict_len, word);   /* refused */
	free(dict);
	return 0;
}
