/*
 * The primitive encodings (codec/bytes.[ch]) against the exact bytes Go's
 * encoding/binary writes, the sticky decoder's error bookkeeping, and the
 * growable output buffer.
 *
 * The expected varint bytes are those of binary.PutUvarint/PutVarint (Go's
 * encoding/binary/varint.go: 7 bits per byte, least significant group first,
 * high bit set on every byte but the last; PutVarint zig-zags first).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	cr_assert_eq(got_len, want_len, "length %zu, want %zu", got_len, want_len);
	for (size_t i = 0; i < want_len; i++)
		cr_assert_eq(got[i], want[i], "byte %zu: %02x, want %02x", i, got[i], want[i]);
}

struct uvarint_case {
	uint64_t v;
	uint8_t bytes[UVARINT_MAX_LEN];
	size_t len;
};

static const struct uvarint_case uvarint_cases[] = {
	{ 0, { 0x00 }, 1 },
	{ 1, { 0x01 }, 1 },
	{ 127, { 0x7f }, 1 },
	{ 128, { 0x80, 0x01 }, 2 },
	{ 300, { 0xac, 0x02 }, 2 },
	{ 16383, { 0xff, 0x7f }, 2 },
	{ 16384, { 0x80, 0x80, 0x01 }, 3 },
	{ UINT64_C(1) << 63, { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, 10 },
	{ UINT64_MAX, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
};

struct varint_case {
	int64_t v;
	uint8_t bytes[UVARINT_MAX_LEN];
	size_t len;
};

static const struct varint_case varint_cases[] = {
	{ 0, { 0x00 }, 1 },
	{ 1, { 0x02 }, 1 },
	{ -1, { 0x01 }, 1 },
	{ 63, { 0x7e }, 1 },
	{ -64, { 0x7f }, 1 },
	{ 64, { 0x80, 0x01 }, 2 },
	{ -65, { 0x81, 0x01 }, 2 },
	{ INT64_MAX, { 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
	{ INT64_MIN, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, 10 },
};

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

Test(uvarint, put_writes_go_putuvarint_bytes)
{
	for (size_t i = 0; i < NCASES(uvarint_cases); i++) {
		const struct uvarint_case *c = &uvarint_cases[i];
		uint8_t out[UVARINT_MAX_LEN + 4];

		memset(out, 0xaa, sizeof(out));
		size_t n = uvarint_put(out, c->v);
		assert_bytes(out, n, c->bytes, c->len);
		cr_assert_eq(out[n], 0xaa, "uvarint_put(%llu) wrote past its length",
			     (unsigned long long)c->v);
		cr_assert_eq(uvarint_len(c->v), c->len, "uvarint_len(%llu)", (unsigned long long)c->v);
	}
}

Test(uvarint, get_reads_go_putuvarint_bytes)
{
	for (size_t i = 0; i < NCASES(uvarint_cases); i++) {
		const struct uvarint_case *c = &uvarint_cases[i];
		uint64_t v = 12345;
		uint8_t in[UVARINT_MAX_LEN + 3];

		/* bytes after the varint must not be read */
		memset(in, 0xff, sizeof(in));
		memcpy(in, c->bytes, c->len);
		cr_assert_eq(uvarint_get(in, sizeof(in), &v), (int)c->len, "length of %llu",
			     (unsigned long long)c->v);
		cr_assert_eq(v, c->v, "value %llu, want %llu", (unsigned long long)v,
			     (unsigned long long)c->v);
		/* exactly its own bytes are enough */
		cr_assert_eq(uvarint_get(c->bytes, c->len, &v), (int)c->len);
		cr_assert_eq(v, c->v);
	}
}

Test(varint, put_and_get_match_go_putvarint)
{
	for (size_t i = 0; i < NCASES(varint_cases); i++) {
		const struct varint_case *c = &varint_cases[i];
		struct buf b = { 0 };
		struct dec d;

		buf_put_varint(&b, c->v);
		assert_bytes(b.p, b.len, c->bytes, c->len);
		dec_init(&d, c->bytes, c->len);
		cr_assert_eq(dec_varint(&d, "v"), c->v, "varint %lld", (long long)c->v);
		cr_assert(dec_ok(&d));
		cr_assert_eq(dec_left(&d), 0);
		buf_free(&b);
	}
}

Test(varint, zigzag_known_values)
{
	cr_assert_eq(zigzag_encode(0), 0);
	cr_assert_eq(zigzag_encode(-1), 1);
	cr_assert_eq(zigzag_encode(1), 2);
	cr_assert_eq(zigzag_encode(-2), 3);
	cr_assert_eq(zigzag_encode(INT64_MAX), UINT64_MAX - 1);
	cr_assert_eq(zigzag_encode(INT64_MIN), UINT64_MAX);
	cr_assert_eq(zigzag_decode(UINT64_MAX), INT64_MIN);
	cr_assert_eq(zigzag_decode(UINT64_MAX - 1), INT64_MAX);
	cr_assert_eq(zigzag_decode(3), -2);
}

Test(uvarint, get_rejects_eleven_bytes)
{
	/* ten continuation bytes then a terminator: Go's Uvarint reports overflow */
	static const uint8_t eleven[11] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t ten_ff[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint64_t v = 7;

	cr_assert_eq(uvarint_get(eleven, sizeof(eleven), &v), -1);
	cr_assert_eq(uvarint_get(ten_ff, sizeof(ten_ff), &v), -1,
		     "a tenth byte with its continuation bit is an overflow, not a truncation");
	cr_assert_eq(v, 7, "a rejected varint must not store a value");
}

Test(uvarint, get_rejects_tenth_byte_over_one)
{
	static const uint8_t two[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	static const uint8_t big[10] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f };
	static const uint8_t zero[10] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00 };
	uint64_t v = 0;

	cr_assert_eq(uvarint_get(two, sizeof(two), &v), -1);
	cr_assert_eq(uvarint_get(big, sizeof(big), &v), -1);
	/* 0 in the tenth byte is a (non-minimal) valid encoding for Go */
	cr_assert_eq(uvarint_get(zero, sizeof(zero), &v), 10);
	cr_assert_eq(v, UINT64_MAX >> 1);
}

Test(uvarint, get_accepts_non_minimal_like_go)
{
	static const uint8_t zero2[2] = { 0x80, 0x00 };
	static const uint8_t five3[3] = { 0x85, 0x80, 0x00 };
	uint64_t v = 99;

	cr_assert_eq(uvarint_get(zero2, 2, &v), 2);
	cr_assert_eq(v, 0);
	cr_assert_eq(uvarint_get(five3, 3, &v), 3);
	cr_assert_eq(v, 5);
}

Test(uvarint, get_reports_truncation_as_zero)
{
	static const uint8_t nine_ff[9] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t one[1] = { 0x80 };
	uint64_t v = 42;

	cr_assert_eq(uvarint_get(one, 0, &v), 0, "empty input");
	cr_assert_eq(uvarint_get(one, 1, &v), 0);
	cr_assert_eq(uvarint_get(nine_ff, 9, &v), 0);
	for (size_t i = 0; i < 9; i++)
		cr_assert_eq(uvarint_get(uvarint_cases[8].bytes, i, &v), 0, "UINT64_MAX cut to %zu bytes", i);
	cr_assert_eq(v, 42, "a truncated varint must not store a value");
}

Test(uvarint, round_trip_every_length)
{
	for (unsigned bits = 0; bits <= 64; bits++) {
		uint64_t vals[3];

		vals[0] = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
		vals[1] = bits == 0 ? 0 : UINT64_C(1) << (bits - 1);
		vals[2] = bits < 64 ? UINT64_C(1) << bits : 0;
		for (int k = 0; k < 3; k++) {
			uint8_t out[UVARINT_MAX_LEN];
			uint64_t v = 0;
			size_t n = uvarint_put(out, vals[k]);

			cr_assert_eq(n, uvarint_len(vals[k]));
			cr_assert_eq(uvarint_get(out, n, &v), (int)n);
			cr_assert_eq(v, vals[k]);
			cr_assert_eq(uvarint_get(out, n - 1, &v), 0, "cut by one byte: truncated");
		}
	}
}

Test(fixed, big_endian_and_float_bits)
{
	uint8_t p[8];
	static const uint8_t want64[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
	/* Prometheus' stale marker: a NaN whose payload must survive */
	const uint64_t stale = UINT64_C(0x7ff0000000000002);

	be64_put(p, UINT64_C(0x0123456789abcdef));
	assert_bytes(p, 8, want64, 8);
	cr_assert_eq(be64_get(want64), UINT64_C(0x0123456789abcdef));
	be32_put(p, 0xdeadbeef);
	cr_assert(p[0] == 0xde && p[1] == 0xad && p[2] == 0xbe && p[3] == 0xef);
	cr_assert_eq(be32_get(p), 0xdeadbeefu);
	be16_put(p, 0x8001);
	cr_assert(p[0] == 0x80 && p[1] == 0x01);
	cr_assert_eq(be16_get(p), 0x8001);
	cr_assert_eq(f64_bits(f64_from_bits(stale)), stale);
	cr_assert_eq(f64_bits(1.0), UINT64_C(0x3ff0000000000000));
	cr_assert_eq(f64_bits(-0.0), UINT64_C(0x8000000000000000));
}

Test(dec, reads_fields_in_order)
{
	static const uint8_t in[] = {
		0x07,                                           /* byte */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, /* be64 258 */
		0xac, 0x02,                                     /* uvarint 300 */
		0x7f,                                           /* varint -64 */
		0x03, 'a', 'b', 'c',                            /* uvarint-bytes "abc" */
		0x00,                                           /* uvarint-bytes "" */
		'x', 'y',                                       /* 2 raw bytes */
	};
	struct dec d;
	size_t len = 99;
	const uint8_t *p;

	dec_init(&d, in, sizeof(in));
	cr_assert_eq(dec_byte(&d, "a"), 7);
	cr_assert_eq(dec_be64(&d, "b"), 258);
	cr_assert_eq(dec_offset(&d), 9);
	cr_assert_eq(dec_uvarint(&d, "c"), 300);
	cr_assert_eq(dec_varint(&d, "d"), -64);
	p = dec_uvarint_bytes(&d, &len, "e");
	cr_assert_eq(len, 3);
	cr_assert_eq(p, in + 13, "uvarint-bytes are borrowed in place");
	p = dec_uvarint_bytes(&d, &len, "f");
	cr_assert_not_null(p, "an empty string is not a failure");
	cr_assert_eq(len, 0);
	p = dec_bytes(&d, 2, "g");
	cr_assert_eq(p, in + sizeof(in) - 2);
	cr_assert(dec_ok(&d));
	cr_assert_eq(dec_left(&d), 0);
	cr_assert_eq(dec_offset(&d), sizeof(in));
}

Test(dec, error_is_sticky_and_keeps_first_failure)
{
	/* a byte, then a varint cut short, then bytes that would decode fine */
	static const uint8_t in[] = { 0x05, 0x80 };
	struct dec d;
	size_t len = 77;
	char msg[128];

	dec_init(&d, in, sizeof(in));
	cr_assert_eq(dec_byte(&d, "kind"), 5);
	cr_assert_eq(dec_uvarint(&d, "series count"), 0);
	cr_assert_not(dec_ok(&d));
	cr_assert_str_eq(d.failed, "series count");
	cr_assert_eq(d.fail_offset, 1, "the failure is where the varint starts, not where it broke");
	cr_assert_str_eq(d.reason, "unexpected end of record inside a varint");
	cr_assert_eq(dec_left(&d), 0, "a failed decoder stops");

	/* later getters return 0 and do not replace the first failure */
	cr_assert_eq(dec_byte(&d, "later byte"), 0);
	cr_assert_eq(dec_be64(&d, "later be64"), 0);
	cr_assert_eq(dec_uvarint(&d, "later uvarint"), 0);
	cr_assert_eq(dec_varint(&d, "later varint"), 0);
	cr_assert_null(dec_bytes(&d, 0, "later bytes"));
	cr_assert_null(dec_uvarint_bytes(&d, &len, "later uvarint-bytes"));
	cr_assert_eq(len, 0);
	dec_fail(&d, "explicit", "second failure");
	cr_assert_str_eq(d.failed, "series count");
	cr_assert_eq(d.fail_offset, 1);
	dec_describe(&d, msg, sizeof(msg));
	cr_assert_str_eq(msg, "offset 1: series count: unexpected end of record inside a varint");
}

Test(dec, getters_after_failure_do_not_read_good_bytes)
{
	/* the failure happens on an over-long varint; a good byte follows it */
	static const uint8_t in[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x2a };
	struct dec d;
	char msg[128];

	dec_init(&d, in, sizeof(in));
	cr_assert_eq(dec_uvarint(&d, "label count"), 0);
	cr_assert_eq(dec_byte(&d, "next"), 0, "must not read 0x2a after a failure");
	cr_assert_str_eq(d.failed, "label count");
	cr_assert_eq(d.fail_offset, 0);
	dec_describe(&d, msg, sizeof(msg));
	cr_assert_str_eq(msg, "offset 0: label count: varint longer than 10 bytes or over 64 bits");
}

Test(dec, one_byte_fields_after_a_failure_read_nothing_wherever_the_position_is)
{
	/* one-byte uvarints and lengths are read inline: a failed decoder
	 * must stop them too, even with its position moved back to good bytes */
	static const uint8_t in[] = { 0x02, 'a', 'b', 0x05 };
	struct dec d;
	size_t len = 99;

	dec_init(&d, in, sizeof(in));
	dec_fail(&d, "first", "made to fail");
	d.p = in;
	cr_assert_eq(dec_uvarint(&d, "count"), 0);
	cr_assert_null(dec_uvarint_bytes(&d, &len, "name"));
	cr_assert_eq(len, 0);
	cr_assert_str_eq(d.failed, "first");
	/* and the same fields read, before any failure */
	dec_init(&d, in, sizeof(in));
	cr_assert_eq(dec_uvarint_bytes(&d, &len, "name"), in + 1);
	cr_assert_eq(len, 2);
	cr_assert_eq(dec_uvarint(&d, "count"), 5);
	cr_assert(dec_ok(&d));
	cr_assert_eq(dec_uvarint(&d, "past the end"), 0);
	cr_assert_str_eq(d.failed, "past the end");
}

Test(dec, be64_and_bytes_fail_at_field_start)
{
	static const uint8_t in[] = { 0x01, 0x02, 0x03, 0x04, 0x05 };
	struct dec d;

	dec_init(&d, in, sizeof(in));
	dec_byte(&d, "type");
	cr_assert_eq(dec_be64(&d, "series ref"), 0, "4 bytes left, 8 needed");
	cr_assert_str_eq(d.failed, "series ref");
	cr_assert_eq(d.fail_offset, 1);

	dec_init(&d, in, sizeof(in));
	dec_byte(&d, "type");
	dec_byte(&d, "type2");
	cr_assert_null(dec_bytes(&d, 4, "sample buffer"));
	cr_assert_str_eq(d.failed, "sample buffer");
	cr_assert_eq(d.fail_offset, 2);

	dec_init(&d, in, 0);
	cr_assert_eq(dec_byte(&d, "type"), 0);
	cr_assert_str_eq(d.failed, "type");
	cr_assert_eq(d.fail_offset, 0);
	cr_assert_str_eq(d.reason, "unexpected end of record");
}

Test(dec, describe_without_error)
{
	static const uint8_t in[] = { 0x01 };
	struct dec d;
	char msg[32];

	dec_init(&d, in, 1);
	dec_describe(&d, msg, sizeof(msg));
	cr_assert_str_eq(msg, "no error");
}

Test(dec, uvarint_bytes_rejects_length_past_end)
{
	/* one leading byte, then a length of 5 with only 2 bytes behind it */
	static const uint8_t in[] = { 0x01, 0x05, 'a', 'b' };
	struct dec d;
	size_t len = 99;
	char msg[128];

	dec_init(&d, in, sizeof(in));
	dec_byte(&d, "type");
	cr_assert_null(dec_uvarint_bytes(&d, &len, "label name"));
	cr_assert_eq(len, 0);
	cr_assert_str_eq(d.failed, "label name");
	cr_assert_eq(d.fail_offset, 1, "reported at the length field, which is what lies");
	dec_describe(&d, msg, sizeof(msg));
	cr_assert_str_eq(msg, "offset 1: label name: length past the end of the record");
}

Test(dec, uvarint_bytes_rejects_huge_length)
{
	static const uint8_t in[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a' };
	struct dec d;
	size_t len = 99;

	dec_init(&d, in, sizeof(in));
	cr_assert_null(dec_uvarint_bytes(&d, &len, "chunk data"));
	cr_assert_eq(len, 0);
	cr_assert_str_eq(d.failed, "chunk data");
	cr_assert_eq(d.fail_offset, 0);
	cr_assert_str_eq(d.reason, "length past the end of the record");
}

Test(dec, uvarint_bytes_exactly_to_the_end)
{
	static const uint8_t in[] = { 0x02, 'a', 'b' };
	struct dec d;
	size_t len = 0;

	dec_init(&d, in, sizeof(in));
	cr_assert_eq(dec_uvarint_bytes(&d, &len, "v"), in + 1);
	cr_assert_eq(len, 2);
	cr_assert(dec_ok(&d));
	cr_assert_eq(dec_left(&d), 0);
	/* one byte short */
	dec_init(&d, in, 2);
	cr_assert_null(dec_uvarint_bytes(&d, &len, "v"));
	cr_assert_eq(d.fail_offset, 0);
}

/*
 * Go accepts a non-minimal length (0x85 0x00 is 5 in two bytes). The error
 * must still point at the start of the length field: offset 1 here. The
 * decoder steps back uvarint_len(5) == 1 byte instead of the 2 it read.
 */
Test(dec, uvarint_bytes_past_end_with_non_minimal_length_points_at_field_start)
{
	static const uint8_t in[] = { 0x01, 0x85, 0x00, 'a', 'b' };
	struct dec d;
	size_t len = 99;

	dec_init(&d, in, sizeof(in));
	dec_byte(&d, "type");
	cr_assert_null(dec_uvarint_bytes(&d, &len, "label name"));
	cr_assert_str_eq(d.failed, "label name");
	cr_assert_eq(d.fail_offset, 1, "offset %zu, want 1 (start of the 2-byte length field)", d.fail_offset);
}

Test(buf, puts_exact_bytes)
{
	struct buf b = { 0 };
	static const uint8_t want[] = {
		0x02,                                           /* byte */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c, /* be64 300 */
		0xac, 0x02,                                     /* uvarint 300 */
		0x7f,                                           /* varint -64 */
		0x03, 'a', 'b', 'c',                            /* uvarint-bytes */
		'x', 'y',                                       /* raw */
		0x00,                                           /* uvarint-bytes "" */
	};

	buf_put_byte(&b, 2);
	buf_put_be64(&b, 300);
	buf_put_uvarint(&b, 300);
	buf_put_varint(&b, -64);
	buf_put_uvarint_bytes(&b, "abc", 3);
	buf_put(&b, "xy", 2);
	buf_put_uvarint_bytes(&b, NULL, 0);
	buf_put(&b, NULL, 0);
	cr_assert_not(b.oom);
	assert_bytes(b.p, b.len, want, sizeof(want));
	buf_free(&b);
	cr_assert_null(b.p);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
}

Test(buf, grows_and_keeps_contents)
{
	struct buf b = { 0 };
	const size_t n = 300000;

	for (size_t i = 0; i < n; i++) {
		buf_put_byte(&b, (uint8_t)(i * 7 + 3));
		cr_assert_geq(b.cap, b.len);
	}
	cr_assert_eq(b.len, n);
	cr_assert_not(b.oom);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(b.p[i], (uint8_t)(i * 7 + 3), "byte %zu lost in a realloc", i);

	/* a big reserve in one step */
	uint8_t *r = buf_reserve(&b, 5u << 20);
	cr_assert_not_null(r);
	cr_assert_eq(r, b.p + b.len, "reserve returns the room after the contents");
	cr_assert_geq(b.cap - b.len, 5u << 20);
	cr_assert_eq(b.len, n, "reserve does not change the length");
	memset(r, 0x5a, 5u << 20);
	b.len += 5u << 20;
	cr_assert_eq(b.p[n - 1], (uint8_t)((n - 1) * 7 + 3));
	cr_assert_eq(b.p[b.len - 1], 0x5a);

	/* reset keeps the allocation */
	size_t cap = b.cap;
	buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, cap);
	buf_put(&b, "q", 1);
	cr_assert_eq(b.p[0], 'q');
	buf_free(&b);
}

Test(buf, impossible_reserve_sticks_as_oom)
{
	struct buf b = { 0 };

	buf_put(&b, "abc", 3);
	cr_assert_null(buf_reserve(&b, SIZE_MAX - 1));
	cr_assert(b.oom);
	cr_assert_eq(b.len, 3, "contents stay");
	buf_put_byte(&b, 'd');
	buf_put_uvarint(&b, 1);
	buf_put_be64(&b, 1);
	cr_assert_eq(b.len, 3, "puts after an allocation failure do nothing");
	cr_assert(b.oom);
	cr_assert_null(buf_reserve(&b, 1), "oom sticks");
	buf_reset(&b);
	cr_assert_not(b.oom);
	buf_put_byte(&b, 'e');
	cr_assert_eq(b.len, 1);
	cr_assert_eq(b.p[0], 'e');
	buf_free(&b);
}
