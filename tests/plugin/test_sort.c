/*
 * The import's radix sort (plugin/sort.c): arrays of 16-byte elements keyed
 * by their first u64, on either side of the sizes where it changes method
 * (insertion up to 48, 8-bit digits under 65,536, 16-bit digits from there),
 * with keys small, past 32 bits and of every bit, many equal: the order is
 * qsort's by (key, position), i.e. sorted and stable.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "sort.h"
#include "support.h"

struct elem {
	uint64_t key;
	uint64_t pos;
};

/* splitmix64: the same pseudo-random numbers on every run */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	return support_rand(&rng_state);
}

static int cmp_elem(const void *a, const void *b)
{
	const struct elem *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

Test(sort, sorted_and_stable_at_every_method_and_key_width)
{
	static const size_t sizes[] = { 2, 48, 49, 1000, 65535, 65536, 200000 };
	static const uint64_t masks[] = { 0xff, 0xfffff, 0xfffffffffull, UINT64_MAX };

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t m = 0; m < sizeof(masks) / sizeof(masks[0]); m++) {
			size_t n = sizes[s];
			struct elem *got = malloc(n * sizeof(*got)), *want = malloc(n * sizeof(*want));

			cr_assert(got && want);
			for (size_t i = 0; i < n; i++)
				got[i] = want[i] = (struct elem){ rnd() & masks[m], i };
			cr_assert_eq(sort_by_u64_key(got, n, sizeof(*got)), 0);
			qsort(want, n, sizeof(*want), cmp_elem);
			for (size_t i = 0; i < n; i++)
				cr_assert(got[i].key == want[i].key && got[i].pos == want[i].pos,
					  "%zu keys under %#llx: element %zu is (%#llx, %llu), want (%#llx, %llu)", n,
					  (unsigned long long)masks[m], i, (unsigned long long)got[i].key,
					  (unsigned long long)got[i].pos, (unsigned long long)want[i].key,
					  (unsigned long long)want[i].pos);
			free(got);
			free(want);
		}
	}
}
