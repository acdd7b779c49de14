/* Sorting the import's index entries: arrays of structs whose first field is
 * a uint64_t key. */
#ifndef SNAPARC_SORT_H
#define SNAPARC_SORT_H

#include <stddef.h>

/* Sorts n elements of `size` bytes (a multiple of 8, key first) by their
 * key, stably; returns 0, or -1 when the scratch space cannot be had. */
int sort_by_u64_key(void *base, size_t n, size_t size);

#endif
