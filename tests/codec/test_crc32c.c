/*
 * CRC-32C (codec/crc32c.[ch]): published check values, a bit-at-a-time
 * reference written here from the polynomial, agreement of the table and
 * SSE4.2 paths on every length 0..300 at every alignment and around the
 * lengths where the SSE4.2 path starts running three streams at once
 * (192 and 6144 bytes, and their multiples), and continuation (crc of
 * a + b from crc of a).
 *
 * Check values: "123456789" -> 0xe3069283 (the CRC catalogue's CRC-32/ISCSI
 * check); the 32-byte vectors are RFC 3720 appendix B.4, read as the
 * little-endian CRC value.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

/* One bit at a time, reflected Castagnoli polynomial: slow and obvious. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

/* xorshift64*, so the "random" buffers are the same on every run */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd() >> 56);
}

Test(crc32c, check_value)
{
	cr_assert_eq(crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(crc32c_sw(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(crc32c_bitwise((const uint8_t *)"123456789", 9), 0xe3069283u);
	if (crc32c_have_hw())
		cr_assert_eq(crc32c_hw(0, "123456789", 9), 0xe3069283u);
}

Test(crc32c, empty_is_zero)
{
	cr_assert_eq(crc32c(0, "", 0), 0);
	cr_assert_eq(crc32c(0, NULL, 0), 0);
	cr_assert_eq(crc32c_sw(0, NULL, 0), 0);
	cr_assert_eq(crc32c(0x12345678u, NULL, 0), 0x12345678u, "no bytes: the running crc is unchanged");
}

Test(crc32c, rfc3720_vectors)
{
	uint8_t p[32];

	memset(p, 0, 32);
	cr_assert_eq(crc32c(0, p, 32), 0x8a9136aau, "32 zero bytes");
	cr_assert_eq(crc32c_sw(0, p, 32), 0x8a9136aau);
	memset(p, 0xff, 32);
	cr_assert_eq(crc32c(0, p, 32), 0x62a8ab43u, "32 0xff bytes");
	cr_assert_eq(crc32c_sw(0, p, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		p[i] = (uint8_t)i;
	cr_assert_eq(crc32c(0, p, 32), 0x46dd794eu, "00..1f");
	cr_assert_eq(crc32c_sw(0, p, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		p[i] = (uint8_t)(31 - i);
	cr_assert_eq(crc32c(0, p, 32), 0x113fdb5cu, "1f..00");
	cr_assert_eq(crc32c_sw(0, p, 32), 0x113fdb5cu);
}

Test(crc32c, sw_matches_bitwise_reference_every_length_and_alignment)
{
	uint8_t *mem = malloc(300 + 16);

	cr_assert_not_null(mem);
	for (size_t align = 0; align < 16; align++) {
		for (size_t len = 0; len <= 300; len++) {
			uint8_t *p = mem + align;

			fill_random(p, len);
			uint32_t want = crc32c_bitwise(p, len);

			cr_assert_eq(crc32c_sw(0, p, len), want, "sw, length %zu, alignment %zu", len, align);
			cr_assert_eq(crc32c(0, p, len), want, "crc32c, length %zu, alignment %zu", len, align);
		}
	}
	free(mem);
}

Test(crc32c, hw_and_sw_agree_every_length_and_alignment)
{
	uint8_t *mem = malloc(300 + 16);

	if (!crc32c_have_hw()) {
		free(mem);
		cr_skip_test("no SSE4.2 on this CPU: crc32c_hw must not be called");
	}
	cr_assert_not_null(mem);
	for (size_t align = 0; align < 16; align++) {
		for (size_t len = 0; len <= 300; len++) {
			uint8_t *p = mem + align;

			fill_random(p, len);
			uint32_t sw = crc32c_sw(0, p, len), hw = crc32c_hw(0, p, len);

			cr_assert_eq(hw, sw, "length %zu, alignment %zu: hw %08x, sw %08x", len, align, hw, sw);
			/* and when continuing from a non-zero crc */
			cr_assert_eq(crc32c_hw(0xdeadbeefu, p, len), crc32c_sw(0xdeadbeefu, p, len),
				     "continued, length %zu, alignment %zu", len, align);
		}
	}
	free(mem);
}

/* The hardware path joins three streams over blocks of 2048 bytes from 6144
 * on, then over three blocks of whatever is left (a multiple of 8 bytes
 * each, with a carry-less multiply) from 96 bytes on, or of 64 bytes
 * without one: every length near those, and mixes of them, against the
 * bitwise reference. */
Test(crc32c, hw_three_streams_agree_with_reference_around_block_lengths)
{
	static const size_t around[] = { 96, 120, 192, 384, 550, 576, 3 * 2048, 2 * 3 * 2048, 3 * 2048 + 192, 32768 };
	uint8_t *mem = malloc(32768 + 128);

	if (!crc32c_have_hw()) {
		free(mem);
		cr_skip_test("no SSE4.2 on this CPU: crc32c_hw must not be called");
	}
	cr_assert_not_null(mem);
	fill_random(mem, 32768 + 128);
	for (size_t i = 0; i < sizeof(around) / sizeof(around[0]); i++) {
		for (size_t len = around[i] - 17; len <= around[i] + 17 + 64; len++) {
			for (size_t align = 0; align < 16; align += 5) {
				const uint8_t *p = mem + align;
				uint32_t want = crc32c_bitwise(p, len);
				size_t cut = len < 200 ? len / 3 : 100;

				cr_assert_eq(crc32c_hw(0, p, len), want, "length %zu, alignment %zu", len, align);
				cr_assert_eq(crc32c_hw(crc32c_hw(0, p, cut), p + cut, len - cut), want,
					     "continued after %zu bytes, length %zu, alignment %zu", cut, len, align);
			}
		}
	}
	free(mem);
}

Test(crc32c, incremental_equals_one_shot)
{
	uint8_t p[300 + 8];

	fill_random(p, sizeof(p));
	for (size_t len = 0; len <= 300; len += 7) {
		for (size_t align = 0; align < 8; align++) {
			const uint8_t *q = p + align;
			uint32_t whole = crc32c(0, q, len);

			for (size_t cut = 0; cut <= len; cut++) {
				uint32_t a = crc32c(0, q, cut);

				cr_assert_eq(crc32c(a, q + cut, len - cut), whole, "len %zu cut %zu align %zu",
					     len, cut, align);
				a = crc32c_sw(0, q, cut);
				cr_assert_eq(crc32c_sw(a, q + cut, len - cut), whole, "sw len %zu cut %zu",
					     len, cut);
				if (crc32c_have_hw()) {
					a = crc32c_hw(0, q, cut);
					cr_assert_eq(crc32c_hw(a, q + cut, len - cut), whole, "hw len %zu cut %zu",
						     len, cut);
				}
			}
		}
	}
}

Test(crc32c, byte_at_a_time_equals_one_shot)
{
	uint8_t p[1000];
	uint32_t crc = 0;

	fill_random(p, sizeof(p));
	for (size_t i = 0; i < sizeof(p); i++)
		crc = crc32c(crc, p + i, 1);
	cr_assert_eq(crc, crc32c(0, p, sizeof(p)));
	cr_assert_eq(crc, crc32c_bitwise(p, sizeof(p)));
}

Test(crc32c, large_buffer)
{
	size_t n = 3u << 20;
	uint8_t *p = malloc(n);

	cr_assert_not_null(p);
	fill_random(p, n);
	cr_assert_eq(crc32c(0, p, n), crc32c_bitwise(p, n));
	cr_assert_eq(crc32c_sw(0, p, n), crc32c_bitwise(p, n));
	free(p);
}
