/*
 * codec/snappy_small.c: Snappy elements for short inputs, matches sought
 * at the caller's probes. Whatever the input and the probes, libsnappy's
 * own decoder must give the input back byte for byte, and the elements
 * must stay within snappy_small_bound(); where the probes fall on repeats,
 * copies must be made (an encoder of literals alone fails these).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "snappy_small.h"
#include "support.h"

static uint64_t rng;

/* Puts n's length varint before the elements and decodes them with
 * libsnappy; returns the elements' length. */
static size_t roundtrip(struct snappy_small *s, const uint8_t *in, size_t n, const struct snappy_small_range *probes,
			size_t np)
{
	size_t bound = snappy_small_bound(n), got = 0, vlen = 0;
	uint8_t *block = malloc(bound + 16 + 5), *back = malloc(n + 1);
	size_t len;

	cr_assert(block && back);
	for (uint64_t v = n;; v >>= 7) {
		block[vlen++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
		if (v < 0x80)
			break;
	}
	/* a canary past the bound */
	memset(block + vlen + bound, 0xa5, 16);
	len = snappy_small_elements(s, in, n, probes, np, block + vlen);
	cr_assert_leq(len, bound, "%zu bytes: %zu of elements, bound %zu", n, len, bound);
	for (size_t i = 0; i < 16; i++)
		cr_assert_eq(block[vlen + bound + i], 0xa5, "wrote past the bound");
	cr_assert_eq(snappy_validate_compressed_buffer((const char *)block, vlen + len), SNAPPY_OK,
		     "%zu bytes: not a valid Snappy block", n);
	cr_assert_eq(snappy_uncompressed_length((const char *)block, vlen + len, &got), SNAPPY_OK);
	cr_assert_eq(got, n);
	cr_assert_eq(snappy_uncompress((const char *)block, vlen + len, (char *)back, &got), SNAPPY_OK);
	cr_assert_eq(got, n);
	cr_assert_eq(memcmp(back, in, n), 0, "%zu bytes: other bytes back", n);
	free(block);
	free(back);
	return len;
}

/* Every position, as one range or one range each. */
static size_t every_position(struct snappy_small_range *probes, size_t n, int one_each)
{
	if (!one_each) {
		probes[0] = (struct snappy_small_range){ 0, (uint16_t)(n < UINT16_MAX ? n : UINT16_MAX) };
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		probes[i] = (struct snappy_small_range){ (uint16_t)i, (uint16_t)(i + 1) };
	return n;
}

TestSuite(snappy_small);

/* A label set with its values repeated (container, job, service and the
 * pod's prefix), probed where restore probes: copies, and as small as
 * libsnappy's whole-input search. */
Test(snappy_small, repeated_label_values_become_copies)
{
	static const char text[] = "\x08__name__\x16go_gc_duration_seconds\x09" "container\x0asearch-api"
				   "\x03job\x0asearch-api\x09namespace\x06search\x03pod\x1asearch-api-p7kvz46gp-xksvh"
				   "\x07service\x0asearch-api";
	const uint8_t *in = (const uint8_t *)text;
	size_t n = sizeof(text) - 1, np = 0, len, lib_len = 1024;
	struct snappy_small_range probes[64];
	char lib[1024];
	struct snappy_small s;

	/* each string's first and third byte */
	for (size_t pos = 0; pos < n; pos += 1 + in[pos]) {
		probes[np++] = (struct snappy_small_range){ (uint16_t)(pos + 1), (uint16_t)(pos + 2) };
		if (in[pos] >= 6)
			probes[np++] = (struct snappy_small_range){ (uint16_t)(pos + 3), (uint16_t)(pos + 4) };
	}
	snappy_small_init(&s);
	len = roundtrip(&s, in, n, probes, np);
	cr_assert_eq(snappy_compress(text, n, lib, &lib_len), SNAPPY_OK);
	/* libsnappy's block has a 2-byte varint before its elements */
	cr_assert_leq(len, lib_len - 2, "%zu bytes of elements, libsnappy %zu", len, lib_len - 2);
	cr_assert_lt(len, n - 20, "the three repeats of \"\\nsearch-api\" are copies: %zu of %zu", len, n);
}

/* A match is taken however far it runs, both ways from its probe, and a
 * long one is split into copies of at most 64 bytes. */
Test(snappy_small, a_match_extends_both_ways_and_long_ones_split)
{
	uint8_t in[1000];
	struct snappy_small_range probe = { 700, 701 };
	struct snappy_small s;
	size_t len;

	rng = 3;
	for (size_t i = 0; i < 500; i++)
		in[i] = (uint8_t)(support_rand(&rng) >> 56);
	memcpy(in + 500, in, 500);
	snappy_small_init(&s);
	/* the input's first half is never probed: a probe into the second half
	 * finds nothing, so this only checks the literal */
	len = roundtrip(&s, in, sizeof(in), &probe, 1);
	cr_assert_eq(len, 3 + sizeof(in));
	{
		struct snappy_small_range two[2] = { { 200, 201 }, { 700, 701 } };

		len = roundtrip(&s, in, sizeof(in), two, 2);
		/* a literal of 500 (3 + 500) and copies of 500 at offset 500: 64 x 7 + 52 */
		cr_assert_eq(len, 3 + 500 + 3 * 8, "%zu", len);
	}
}

/* Random inputs (text, zeros, random bytes and mixes) of every small length
 * and some long ones up to the largest, with random probes, every position
 * or none. */
Test(snappy_small, random_inputs_and_probes_round_trip)
{
	static uint8_t in[SNAPPY_SMALL_MAX];
	static struct snappy_small_range probes[SNAPPY_SMALL_MAX];
	struct snappy_small s;

	rng = 4;
	snappy_small_init(&s);
	for (unsigned round = 0; round < 3000; round++) {
		size_t n = round < 600 ? round % 300 : round % 50 == 0 ? SNAPPY_SMALL_MAX - round % 3 : support_rand(&rng) % 4096;
		unsigned kind = (unsigned)(support_rand(&rng) % 4), how = (unsigned)(support_rand(&rng) % 3);
		size_t np = 0;

		for (size_t i = 0; i < n; i++) {
			uint64_t r = support_rand(&rng);

			if (kind == 0)
				in[i] = (uint8_t)(r >> 56);
			else if (kind == 1)
				in[i] = (uint8_t)("abcab"[r % 5]);
			else if (kind == 2)
				in[i] = r % 16 ? 0 : (uint8_t)(r >> 56);
			else
				in[i] = i > 16 && r % 3 ? in[i - 1 - (r >> 40) % 16] : (uint8_t)(r >> 56);
		}
		if (how == 0) {
			np = every_position(probes, n, round % 2);
		} else if (how == 1) {
			/* ascending, of random lengths, some empty, some past the end */
			for (size_t i = 0; i < n + 8 && np < SNAPPY_SMALL_MAX; i += support_rand(&rng) % 9) {
				size_t to = i + support_rand(&rng) % 5;

				probes[np++] = (struct snappy_small_range){ (uint16_t)(i < UINT16_MAX ? i : UINT16_MAX),
									    (uint16_t)(to < UINT16_MAX ? to : UINT16_MAX) };
				i = to;
			}
		}
		roundtrip(&s, in, n, probes, np);
	}
}

/* The table is stamped, not cleared: positions of an earlier input are
 * never taken for this one's, through the stamp's wrap too. */
Test(snappy_small, earlier_inputs_and_the_stamps_wrap_are_not_matched)
{
	static const char a[] = "0123456789abcdef0123456789abcdef";
	static const char b[] = "0123456789ABCDEF";
	struct snappy_small_range probes[1];
	struct snappy_small s;
	size_t len;

	snappy_small_init(&s);
	every_position(probes, 32, 0);
	len = roundtrip(&s, (const uint8_t *)a, 32, probes, 1);
	cr_assert_lt(len, 32);
	/* b begins as a did: a position from a would give a's bytes back */
	cr_assert_eq(roundtrip(&s, (const uint8_t *)b, 16, probes, 1), 17);
	s.base = UINT32_MAX - SNAPPY_SMALL_MAX - 10;
	len = roundtrip(&s, (const uint8_t *)a, 32, probes, 1);
	cr_assert_lt(len, 32);
	cr_assert_eq(roundtrip(&s, (const uint8_t *)b, 16, probes, 1), 17);
	cr_assert_lt(s.base, 100, "the stamps started again");
	cr_assert_eq(roundtrip(&s, (const uint8_t *)b, 16, probes, 1), 17);
}
