/*
 * fuzz_snappy_small: Snappy elements from codec/snappy_small.c for any
 * input and any probes must stay within snappy_small_bound() and be given
 * back byte for byte by libsnappy's own decoder, as the block restore
 * writes (a length varint, then the elements).
 *
 * Input: a control byte c, then the data. c's low bits pick the probes:
 * every position, one position in (c >> 2) + 1, or ranges whose lengths
 * and gaps are read from the data's own bytes (so matches and probes
 * move together under mutation). The data is encoded twice with one
 * encoder state, as restore encodes record after record, to check that
 * positions of the first never leak into the second. A violation traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "snappy_small.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snappy_small_range ranges[SNAPPY_SMALL_MAX];
static uint8_t block[SNAPPY_SMALL_MAX + SNAPPY_SMALL_MAX / 32 + 16], back[SNAPPY_SMALL_MAX];

static size_t pick_ranges(uint8_t c, const uint8_t *in, size_t n)
{
	size_t nr = 0, step = (size_t)(c >> 2) + 1;

	switch (c & 3) {
	case 0:
		ranges[nr++] = (struct snappy_small_range){ 0, (uint16_t)(n < UINT16_MAX ? n : UINT16_MAX) };
		break;
	case 1:
		for (size_t i = 0; i < n; i += step)
			ranges[nr++] = (struct snappy_small_range){ (uint16_t)i, (uint16_t)(i + 1) };
		break;
	default:
		for (size_t i = 0; i < n;) {
			size_t len = in[i] & 15, gap = in[i] >> 4;

			ranges[nr++] = (struct snappy_small_range){ (uint16_t)i,
								    (uint16_t)(i + len < UINT16_MAX ? i + len : UINT16_MAX) };
			i += len + gap + 1;
		}
	}
	return nr;
}

static void roundtrip(struct snappy_small *s, const uint8_t *in, size_t n, size_t nr)
{
	size_t vlen = 0, len, got = 0;

	for (uint64_t v = n;; v >>= 7) {
		block[vlen++] = (uint8_t)(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
		if (v < 0x80)
			break;
	}
	len = snappy_small_elements(s, in, n, ranges, nr, block + vlen);
	CHECK(len <= snappy_small_bound(n));
	CHECK(snappy_uncompressed_length((const char *)block, vlen + len, &got) == SNAPPY_OK && got == n);
	CHECK(snappy_uncompress((const char *)block, vlen + len, (char *)back, &got) == SNAPPY_OK);
	CHECK(got == n && (n == 0 || memcmp(back, in, n) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct snappy_small s;
	static int ready;
	size_t n, nr;

	if (size < 1)
		return 0;
	if (!ready) {
		snappy_small_init(&s);
		ready = 1;
	}
	n = size - 1 < SNAPPY_SMALL_MAX ? size - 1 : SNAPPY_SMALL_MAX;
	nr = pick_ranges(data[0], data + 1, n);
	roundtrip(&s, data + 1, n, nr);
	/* the second half alone, after the whole: no stale positions */
	roundtrip(&s, data + 1 + n / 2, n - n / 2, pick_ranges(data[0], data + 1 + n / 2, n - n / 2));
	return 0;
}
