/*
 * fuzz_recode: series records recoded and back (codec/recode.c).
 *
 * The input is taken three ways:
 *   - as a record: when recode_pack() takes it, recode_unpack() must give
 *     it back byte for byte (pack checks its chunk by writing it again, so
 *     this is the proof that unpack reads what pack wrote);
 *   - as a recoded record: recode_unpack() must succeed or fail with
 *     SNAPARC_CORRUPT and a message, never read outside the input, and
 *     allocate no more than the samples it states can need;
 *   - packed, then one byte of the packed form changed (where and to what
 *     taken from the input's first bytes): the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "recode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_unpack(const uint8_t *p, size_t len)
{
	struct buf out = { 0 };
	struct err e = { 0 };
	int rc = recode_unpack(p, len, &out, &e);

	CHECK(rc == 0 || (rc == SNAPARC_CORRUPT && e.msg[0]));
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct recode_scratch rs = { 0 };
	struct buf packed = { 0 }, back = { 0 };
	struct err e = { 0 };
	int rc = recode_pack(data, size, &packed, &rs);

	CHECK(rc >= 0);
	if (rc == 1) {
		CHECK(recode_unpack(packed.p, packed.len, &back, &e) == 0);
		CHECK(back.len == size && memcmp(back.p, data, size) == 0);
		if (size >= 2) {
			size_t at = ((size_t)data[size - 1] << 8 | data[size - 2]) % packed.len;

			packed.p[at] ^= data[size / 2] ? data[size / 2] : 1;
			check_unpack(packed.p, packed.len);
		}
	} else {
		CHECK(packed.len == 0);
	}
	check_unpack(data, size);
	buf_free(&packed);
	buf_free(&back);
	recode_scratch_free(&rs);
	return 0;
}
