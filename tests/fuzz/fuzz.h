/*
 * What the fuzz targets share: CHECK, which traps (libFuzzer reports the
 * input), and two helpers.
 */
#ifndef SNAPARC_FUZZ_H
#define SNAPARC_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "crc32c.h"
#include "wal.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

/* Rewrites the CRC of every fragment a reader would look at, page by page
 * (pages counted from p), as far as the headers make sense: mutated
 * fragments then get past the CRC most of the time. */
static inline void fix_crcs(uint8_t *p, size_t size)
{
	for (size_t page = 0; page < size; page += WAL_PAGE_SIZE) {
		size_t end = size - page < WAL_PAGE_SIZE ? size : page + WAL_PAGE_SIZE;
		size_t pos = page;

		while (end - pos >= WAL_HEADER_SIZE && p[pos] != WAL_PAD) {
			size_t len = be16_get(p + pos + 1);

			if (len > end - pos - WAL_HEADER_SIZE)
				break;
			be32_put(p + pos + 3, crc32c(0, p + pos + WAL_HEADER_SIZE, len));
			pos += WAL_HEADER_SIZE + len;
		}
	}
}

/* An exactly-sized copy, so that ASan sees a read past the end. */
static inline uint8_t *dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	CHECK(q != NULL);
	if (len)
		memcpy(q, p, len);
	return q;
}

#endif
