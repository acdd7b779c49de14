/* Sorting the import's index entries: arrays of structs whose first field is
 * a uint64_t key. */
#ifndef SNAPARC_SORT_H
#define SNAPARC_SORT_H

#include <stddef.h>

/* Sorts n elements of `size` bytes (a multiple of 8, key first) by their
 * key, stably; returns 0, or -1 when the scratch space cannot be had. */
int sort_by_u64_key(void *base, size_t n, size_t size);

/* Up to this many elements of up to this size are sorted where they are. */
#define SORT_SMALL 48
#define SORT_MAX_SMALL_SIZE 64
/* Bits of the key a pass sorts on, for n elements. */
#define SORT_DIGIT_BITS(n) ((n) < (1u << 16) ? 8u : 16u)

/* The scratch space sort_by_u64_key() of n such elements takes at most:
 * a copy of them and a count for every digit. */
static inline size_t sort_by_u64_key_mem(size_t n, size_t size)
{
	if (n < 2 || (n <= SORT_SMALL && size <= SORT_MAX_SMALL_SIZE))
		return 0;
	return n * size + ((size_t)1 << SORT_DIGIT_BITS(n)) * sizeof(size_t);
}

#endif
