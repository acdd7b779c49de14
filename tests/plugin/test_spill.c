/*
 * The external sorter (plugin/spill.[ch]).
 *
 * - Random keys, a quarter of them drawn from 8 values, in elements of 16
 *   and 24 bytes, come back exactly as a stable sort orders them (equal keys
 *   in the order they were added): in memory, in hundreds of runs merged
 *   through one-element read buffers, and in runs with larger ones; the
 *   same again after a rewind, from the end or from halfway.
 * - No element, and one.
 * - The buffer holds half the budget: that many elements never touch the
 *   file; the next add writes the first run (in a directory that does not
 *   exist, it fails naming it).
 * - A write the file system refuses (over RLIMIT_FSIZE) fails the add
 *   naming the directory and the offset.
 * - With a bg thread (spill_background()), all of the above again: the
 *   same order, a third of the budget in memory, and a refused write that
 *   bg made reported by the next add that hands it a run, or by the sort.
 *
 * Every test works in its own mkdtemp() directory.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bg.h"
#include "spill.h"
#include "support.h"

#define MAX_WORDS 3

static char tmpdir[64];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "spill");
}

static void teardown(void)
{
	support_rm_tree(tmpdir);
}

TestSuite(spill, .init = setup, .fini = teardown);

/* splitmix64: the same pseudo-random numbers on every run */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	return support_rand(&rng_state);
}

/* Element i: key, then i (the order of adding), then its complement. */
static void make(uint64_t *el, size_t words, uint64_t key, uint64_t i)
{
	el[0] = key;
	el[1] = i;
	if (words > 2)
		el[2] = ~i;
}

static int cmp_stable(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

/* The bg new spills take, or NULL. */
static struct bg *use_bg;

static struct spill *new_spill(size_t size, size_t mem, const char *dir)
{
	struct spill *s = NULL;
	struct err e = { 0 };

	cr_assert_eq(spill_new(&s, size, mem, dir, &e), 0, "%s", e.msg);
	if (use_bg)
		cr_assert_eq(spill_background(s, use_bg, &e), 0, "%s", e.msg);
	return s;
}

static void start_bg(void)
{
	struct err e = { 0 };

	cr_assert_eq(bg_new(&use_bg, &e), 0, "%s", e.msg);
}

static void stop_bg(void)
{
	bg_free(use_bg);
	use_bg = NULL;
}

/* Reads s to its end: exactly want[0..n), n elements of size bytes. */
static void assert_reads(struct spill *s, const uint64_t *want, size_t n, size_t size, const char *how)
{
	const void *p;
	struct err e = { 0 };
	size_t i = 0;
	int rc;

	while ((rc = spill_next(s, &p, &e)) == 1) {
		cr_assert_lt(i, n, "%s: more than the %zu elements added", how, n);
		cr_assert_eq(memcmp(p, (const uint8_t *)want + i * size, size), 0,
			     "%s: element %zu is key %llu (added %llu), wanted key %llu (added %llu)", how, i,
			     (unsigned long long)((const uint64_t *)p)[0], (unsigned long long)((const uint64_t *)p)[1],
			     (unsigned long long)want[i * size / 8], (unsigned long long)want[i * size / 8 + 1]);
		i++;
	}
	cr_assert_eq(rc, 0, "%s: %s", how, e.msg);
	cr_assert_eq(i, n, "%s: %zu elements, wanted %zu", how, i, n);
	cr_assert_eq(spill_next(s, &p, &e), 0, "%s: an element past the end", how);
}

static void sorts_like_a_stable_sort(size_t size, size_t mem)
{
	enum { N = 10000 };
	size_t words = size / 8;
	uint64_t *added = malloc(N * size), *sorted = malloc(N * size);
	struct spill *s = new_spill(size, mem, tmpdir);
	struct err e = { 0 };
	const void *p;
	char how[100];

	cr_assert(added && sorted);
	rng_state = size * 1000 + mem;
	for (size_t i = 0; i < N; i++) {
		uint64_t r = rnd(), key = r % 4 ? rnd() : r % 8;

		if (i % 1000 == 0)
			key = i % 2000 ? UINT64_MAX : 0;
		make(added + i * words, words, key, i);
		cr_assert_eq(spill_add(s, added + i * words, &e), 0, "%s", e.msg);
	}
	memcpy(sorted, added, N * size);
	qsort(sorted, N, size, cmp_stable);
	cr_assert_eq(spill_sort(s, &e), 0, "%s", e.msg);
	snprintf(how, sizeof(how), "%zu-byte elements, %zu bytes of memory", size, mem);
	assert_reads(s, sorted, N, size, how);
	cr_assert_eq(spill_rewind(s, &e), 0, "%s", e.msg);
	assert_reads(s, sorted, N, size, how);
	cr_assert_eq(spill_rewind(s, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < N / 2; i++)
		cr_assert_eq(spill_next(s, &p, &e), 1, "%s", e.msg);
	cr_assert_eq(spill_rewind(s, &e), 0, "%s", e.msg);
	assert_reads(s, sorted, N, size, how);
	spill_free(s);
	free(added);
	free(sorted);
}

Test(spill, sixteen_byte_elements_come_out_as_a_stable_sort_orders_them)
{
	sorts_like_a_stable_sort(16, 1 << 20);          /* in memory */
	sorts_like_a_stable_sort(16, 2 * 16 * 16);      /* 625 runs of 16 */
	sorts_like_a_stable_sort(16, 5000);             /* 65 runs, read 4 elements at a time */
}

Test(spill, twenty_four_byte_elements_come_out_as_a_stable_sort_orders_them)
{
	sorts_like_a_stable_sort(24, 1 << 20);
	sorts_like_a_stable_sort(24, 2 * 24 * 16);
	sorts_like_a_stable_sort(24, 5000);             /* 97 runs, 2 at a time */
}

Test(spill, no_element_and_one)
{
	uint64_t one[2] = { 42, 7 };
	struct spill *s = new_spill(16, 1024, tmpdir);
	struct err e = { 0 };

	cr_assert_eq(spill_sort(s, &e), 0, "%s", e.msg);
	assert_reads(s, NULL, 0, 16, "none");
	cr_assert_eq(spill_rewind(s, &e), 0, "%s", e.msg);
	assert_reads(s, NULL, 0, 16, "none, rewound");
	spill_free(s);

	s = new_spill(16, 1024, tmpdir);
	cr_assert_eq(spill_add(s, one, &e), 0, "%s", e.msg);
	cr_assert_eq(spill_sort(s, &e), 0, "%s", e.msg);
	assert_reads(s, one, 1, 16, "one");
	cr_assert_eq(spill_rewind(s, &e), 0, "%s", e.msg);
	assert_reads(s, one, 1, 16, "one, rewound");
	spill_free(s);
}

/* A spill of mem bytes in a directory that does not exist: cap 24-byte
 * elements (from el) stay in memory, the next add writes the first run and
 * fails naming the directory. */
static void cap_then_run(size_t mem, const char *missing, const uint64_t *el, size_t cap)
{
	struct spill *s = new_spill(24, mem, missing);
	struct err e = { 0 };
	char want[300];

	for (size_t i = 0; i < cap; i++)
		cr_assert_eq(spill_add(s, el + 3 * i, &e), 0, "element %zu: %s", i, e.msg);
	cr_assert_eq(spill_add(s, el + 3 * cap, &e), SNAPARC_NOT_FOUND, "the first run: %s", e.msg);
	snprintf(want, sizeof(want), "%s: temporary file: ", missing);
	cr_assert(!strncmp(e.msg, want, strlen(want)), "%s", e.msg);
	spill_free(s);
}

Test(spill, half_the_budget_stays_in_memory_and_the_next_add_writes_a_run)
{
	enum { CAP = 20 };   /* 2 * CAP * 24 bytes of memory: CAP elements in the buffer */
	uint64_t el[CAP + 1][3];
	struct spill *s;
	struct err e = { 0 };
	char missing[128];

	snprintf(missing, sizeof(missing), "%s/missing", tmpdir);
	for (size_t i = 0; i <= CAP; i++)
		make(el[i], 3, i, i);
	cap_then_run(2 * CAP * 24 + 23, missing, el[0], CAP);

	/* CAP sorted in memory, from the same missing directory */
	s = new_spill(24, 2 * CAP * 24 + 23, missing);
	for (size_t i = 0; i < CAP; i++)
		cr_assert_eq(spill_add(s, el[CAP - 1 - i], &e), 0, "element %zu: %s", i, e.msg);
	cr_assert_eq(spill_sort(s, &e), 0, "%s", e.msg);
	assert_reads(s, el[0], CAP, 24, "in memory");
	spill_free(s);
}

/* Over RLIMIT_FSIZE (1000 bytes), 16-byte elements in runs of 384 bytes (a
 * spill of mem bytes): the third run, bytes 768 to 1152, is cut at 1000,
 * and add number fails_at fails naming the directory and the offset. */
static void refused_write_fails_an_add(size_t mem, size_t fails_at)
{
	struct rlimit lim = { 1000, 1000 };
	uint64_t el[2] = { 0, 0 };
	struct spill *s = new_spill(16, mem, tmpdir);
	struct err e = { 0 };
	char want[200];
	size_t i;
	int rc = 0;

	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (i = 0; i < 1000 && !rc; i++) {
		el[0] = i;
		rc = spill_add(s, el, &e);
	}
	cr_assert_eq(rc, SNAPARC_IO, "%s", e.msg);
	cr_assert_eq(i, fails_at);
	snprintf(want, sizeof(want), "%s: temporary file: offset 1000: File too large", tmpdir);
	cr_assert_str_eq(e.msg, want);
	spill_free(s);
}

Test(spill, write_the_file_system_refuses_fails_the_add_naming_directory_and_offset)
{
	/* the add that writes the third run */
	refused_write_fails_an_add(2 * 16 * 24, 3 * 24 + 1);
}

Test(spill, with_a_bg_elements_come_out_as_a_stable_sort_orders_them)
{
	start_bg();
	sorts_like_a_stable_sort(16, 1 << 20);
	sorts_like_a_stable_sort(16, 3 * 16 * 16);      /* 625 runs of 16 */
	sorts_like_a_stable_sort(16, 5000);
	sorts_like_a_stable_sort(24, 3 * 24 * 16);
	sorts_like_a_stable_sort(24, 7000);
	stop_bg();
}

Test(spill, with_a_bg_a_third_of_the_budget_stays_in_memory)
{
	enum { CAP = 20 };   /* 3 * CAP * 24 bytes of memory: CAP elements in a buffer */
	uint64_t el[3 * CAP][3];
	struct spill *s;
	struct err e = { 0 };
	char missing[128];

	start_bg();
	snprintf(missing, sizeof(missing), "%s/missing", tmpdir);
	for (size_t i = 0; i < 3 * CAP; i++)
		make(el[i], 3, i, i);
	cap_then_run(3 * CAP * 24 + 23, missing, el[0], CAP);

	/* three buffers' worth, added backwards, in two runs and the buffer */
	s = new_spill(24, 3 * CAP * 24 + 23, tmpdir);
	for (size_t i = 0; i < 3 * CAP; i++)
		cr_assert_eq(spill_add(s, el[3 * CAP - 1 - i], &e), 0, "element %zu: %s", i, e.msg);
	cr_assert_eq(spill_sort(s, &e), 0, "%s", e.msg);
	assert_reads(s, el[0], 3 * CAP, 24, "two runs and the buffer");
	spill_free(s);
	stop_bg();
}

Test(spill, with_a_bg_a_write_the_file_system_refuses_fails_the_next_hand_over_or_the_sort)
{
	struct rlimit lim = { 1000, 1000 };
	uint64_t el[2] = { 0, 0 };
	struct spill *s;
	struct err e = { 0 };
	char want[200];

	start_bg();
	/* bg writes the third run; the fourth hand-over waits for it */
	refused_write_fails_an_add(3 * 16 * 24, 4 * 24 + 1);

	/* the sort waits for bg too */
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	s = new_spill(16, 3 * 16 * 24, tmpdir);
	for (size_t i = 0; i < 3 * 24 + 1; i++) {
		el[0] = i;
		cr_assert_eq(spill_add(s, el, &e), 0, "element %zu: %s", i, e.msg);
	}
	cr_assert_eq(spill_sort(s, &e), SNAPARC_IO, "%s", e.msg);
	snprintf(want, sizeof(want), "%s: temporary file: offset 1000: File too large", tmpdir);
	cr_assert_str_eq(e.msg, want);
	spill_free(s);
	stop_bg();
}
