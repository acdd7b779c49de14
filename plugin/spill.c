/*
 * An external merge sort. Added elements fill a buffer of half the budget,
 * since sort_by_u64_key() takes as much again (and 512 KiB of counters) to
 * sort it. A full buffer is sorted and appended to the temporary file as a
 * run. spill_sort() sorts a lone buffer where it is; otherwise it writes the
 * last run, frees the buffer and merges the runs with a heap, each run read
 * through an equal share of the budget.
 *
 * Stability: a run is sorted stably, and of two equal keys the heap takes
 * the one of the earlier run, which was added first.
 *
 * With a bg (spill_background()), a full buffer is sorted and written on
 * bg's thread while the adds go on into a second one: a third of the budget
 * each, the sort's copy the last third.
 */
#include "spill.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bg.h"
#include "sort.h"
#include "tmpfile.h"

struct run {
	uint64_t start;         /* its first byte in the file */
	struct tmpfile_reader rd;   /* its bytes; buf: its share of the read buffers */
};

struct head {
	uint64_t key;           /* of the run's next element */
	size_t run;
};

/* A full buffer, sorted and written on bg's thread. */
struct run_job {
	const struct spill *s;
	uint8_t *buf;
	size_t n;
	uint64_t at;            /* where in the file */
};

struct spill {
	size_t elem, mem;
	size_t cap;             /* elements the buffer holds */
	uint8_t *buf;           /* the elements added since the last run */
	struct bg *bg;          /* NULL: spill_add() writes the runs itself */
	uint8_t *spare;         /* with bg: the buffer bg has, or had last */
	struct run_job job;
	size_t n, at;           /* how many; with no run, the next to hand out */
	int fd;                 /* the temporary file, -1 until the first run */
	uint64_t file_end;
	struct run *runs;
	size_t nruns, runs_cap;
	struct head *heap;      /* merging: runs by next key, then run number */
	size_t nheap;
	uint8_t *reads;         /* merging: the runs' read buffers */
	size_t share;           /* bytes of each */
	int taken;              /* merging: the top run's element was handed out */
	char dir[];
};

static uint64_t key_of(const uint8_t *p)
{
	uint64_t k;

	memcpy(&k, p, sizeof(k));
	return k;
}

int spill_new(struct spill **out, size_t elem_size, size_t mem, const char *dir, struct err *e)
{
	struct spill *s = calloc(1, sizeof(*s) + strlen(dir) + 1);

	if (!s)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	s->elem = elem_size;
	s->mem = mem;
	s->cap = mem / 2 / elem_size ? mem / 2 / elem_size : 1;
	s->fd = -1;
	strcpy(s->dir, dir);
	if (!(s->buf = malloc(s->cap * elem_size))) {
		free(s);
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	}
	*out = s;
	return 0;
}

void spill_free(struct spill *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	free(s->spare);
	free(s->runs);
	free(s->heap);
	free(s->reads);
	free(s);
}

/* Makes room for one more run of bytes at the file's end, opening the file
 * first if need be; *at is where the run goes. */
static int add_run(struct spill *s, size_t bytes, uint64_t *at, struct err *e)
{
	if (s->nruns == s->runs_cap) {
		size_t cap = s->runs_cap ? 2 * s->runs_cap : 16;
		struct run *r = realloc(s->runs, cap * sizeof(*r));

		if (!r)
			return err_set(e, SNAPARC_NOMEM, "out of memory");
		s->runs = r;
		s->runs_cap = cap;
	}
	if (s->fd < 0) {
		int fd = tmpfile_open(s->dir, e);

		if (fd < 0)
			return fd;
		s->fd = fd;
	}
	*at = s->file_end;
	s->runs[s->nruns++] = (struct run){ .start = s->file_end, .rd = { .end = s->file_end + bytes } };
	s->file_end += bytes;
	return 0;
}

static int sort_and_write(const struct spill *s, uint8_t *buf, size_t n, uint64_t at, struct err *e)
{
	if (sort_by_u64_key(buf, n, s->elem))
		return err_set(e, SNAPARC_NOMEM, "out of memory sorting");
	return tmpfile_write(s->fd, s->dir, at, buf, n * s->elem, e);
}

static int run_job(void *arg, struct err *e)
{
	const struct run_job *j = arg;

	return sort_and_write(j->s, j->buf, j->n, j->at, e);
}

/* Sorts the buffer and appends it to the file as a run. */
static int write_run(struct spill *s, struct err *e)
{
	uint64_t at;
	int rc;

	if ((rc = add_run(s, s->n * s->elem, &at, e)))
		return rc;
	if ((rc = sort_and_write(s, s->buf, s->n, at, e))) {
		/* the run is not there */
		s->nruns--;
		s->file_end = at;
		return rc;
	}
	s->n = 0;
	return 0;
}

/* Hands the full buffer to bg as the next run and goes on in the spare. */
static int hand_off(struct spill *s, struct err *e)
{
	uint8_t *full = s->buf;
	int rc;

	/* the spare is free once bg's job, whichever spill's, is done */
	if ((rc = bg_wait(s->bg, e)) || (rc = add_run(s, s->n * s->elem, &s->job.at, e)))
		return rc;
	s->job.s = s;
	s->job.buf = full;
	s->job.n = s->n;
	s->buf = s->spare;
	s->spare = full;
	s->n = 0;
	return bg_submit(s->bg, run_job, &s->job, e);
}

int spill_background(struct spill *s, struct bg *bg, struct err *e)
{
	size_t cap = s->mem / 3 / s->elem ? s->mem / 3 / s->elem : 1;
	uint8_t *buf, *spare;

	if (s->n || s->nruns)
		return err_set(e, SNAPARC_INVALID, "a spill takes a bg before its first element");
	buf = malloc(cap * s->elem);
	spare = malloc(cap * s->elem);
	if (!buf || !spare) {
		free(buf);
		free(spare);
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	}
	free(s->buf);
	s->buf = buf;
	s->spare = spare;
	s->cap = cap;
	s->bg = bg;
	return 0;
}

int spill_add(struct spill *s, const void *elem, struct err *e)
{
	int rc;

	if (s->n == s->cap && (rc = s->bg ? hand_off(s, e) : write_run(s, e)))
		return rc;
	memcpy(s->buf + s->n++ * s->elem, elem, s->elem);
	return 0;
}

static int before(const struct head *a, const struct head *b)
{
	return a->key < b->key || (a->key == b->key && a->run < b->run);
}

/* Puts x in the heap from the hole at i down. x comes in registers: read
 * back whole from where its key was just stored, it waited for the store
 * (a store-forwarding stall: a fifth of this function's samples). */
static void sift_down(struct spill *s, size_t i, struct head x)
{
	/* the element moves down through a hole: one copy a level */
	for (size_t c; (c = 2 * i + 1) < s->nheap; i = c) {
		if (c + 1 < s->nheap && before(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!before(&s->heap[c], &x))
			break;
		s->heap[i] = s->heap[c];
	}
	s->heap[i] = x;
}

/* Reads run r's next piece into its buffer (the share is whole elements,
 * so nothing is left over): 1, 0 past its end, or a negative status. */
static int fill(struct run *r, struct err *e)
{
	int rc;

	if (r->rd.off == r->rd.end)
		return 0;
	return (rc = tmpfile_refill(&r->rd, e)) ? rc : 1;
}

int spill_rewind(struct spill *s, struct err *e)
{
	int rc;

	s->at = 0;
	s->taken = 0;
	s->nheap = 0;
	for (size_t i = 0; i < s->nruns; i++) {
		/* a run is never empty */
		s->runs[i].rd.off = s->runs[i].start;
		s->runs[i].rd.pos = s->runs[i].rd.len = 0;
		if ((rc = fill(&s->runs[i], e)) < 0)
			return rc;
		s->heap[s->nheap++] = (struct head){ key_of(s->runs[i].rd.buf), i };
	}
	for (size_t i = s->nheap / 2; i-- > 0;)
		sift_down(s, i, s->heap[i]);
	return 0;
}

int spill_sort(struct spill *s, struct err *e)
{
	int rc;

	/* the runs bg has are written */
	if (s->bg && (rc = bg_wait(s->bg, e)))
		return rc;
	if (!s->nruns)
		return sort_by_u64_key(s->buf, s->n, s->elem) ? err_set(e, SNAPARC_NOMEM, "out of memory sorting") : 0;
	if (s->n && (rc = write_run(s, e)))
		return rc;
	free(s->buf);
	free(s->spare);
	s->buf = s->spare = NULL;
	s->share = s->mem / s->nruns / s->elem * s->elem;
	if (s->share < s->elem)
		s->share = s->elem;
	s->reads = malloc(s->nruns * s->share);
	s->heap = malloc(s->nruns * sizeof(*s->heap));
	if (!s->reads || !s->heap)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	for (size_t i = 0; i < s->nruns; i++)
		s->runs[i].rd = (struct tmpfile_reader){ .fd = s->fd, .dir = s->dir, .end = s->runs[i].rd.end,
							 .buf = s->reads + i * s->share, .cap = s->share };
	return spill_rewind(s, e);
}

int spill_next(struct spill *s, const void **elem, struct err *e)
{
	struct run *r;
	int rc;

	if (!s->nruns) {
		if (s->at == s->n)
			return 0;
		*elem = s->buf + s->at++ * s->elem;
		return 1;
	}
	if (s->taken) {
		/* step past the element handed out last */
		s->taken = 0;
		struct head top = s->heap[0];

		r = &s->runs[top.run];
		r->rd.pos += s->elem;
		if (r->rd.pos < r->rd.len || (rc = fill(r, e)) == 1)
			top.key = key_of(r->rd.buf + r->rd.pos);
		else if (rc < 0)
			return rc;
		else
			top = s->heap[--s->nheap];
		sift_down(s, 0, top);
	}
	if (!s->nheap)
		return 0;
	r = &s->runs[s->heap[0].run];
	*elem = r->rd.buf + r->rd.pos;
	s->taken = 1;
	return 1;
}
