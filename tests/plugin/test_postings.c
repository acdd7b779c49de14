/*
 * An import's label postings (plugin/postings.c), against a reference
 * written here with one idx_postings_put() call per label name, compared
 * with raw LMDB: every key and value of the postings database.
 *
 * - 6,000 series arriving out of ref order, refs sparse and past 32 bits:
 *   a name with 6,000 values, a value on every series, lists of several
 *   blocks and lists a few to a block, values over 128 bytes (forty sharing
 *   their first 140), values of 127, 128 and 129 bytes, a 256-byte name,
 *   empty values, values alike for their first 300 bytes, values that
 *   differ only in the NULs that end them, names alike for 18 bytes.
 *   Budgets from none (a run per series) to unlimited (one run) give the
 *   reference's bytes, the runs merged into one first (postings_flush())
 *   or not.
 * - The same with refs close together (those merged through a bitmap).
 * - The same when a third of the series spell their label lengths with more
 *   bytes than they need: those labels meet their minimal spelling.
 * - A write that fills the index's map fails with SNAPARC_NOMEM, and
 *   postings_write() writes the same bytes again in the next transaction,
 *   refs far apart or close together.
 * - The same with each series' label hashes made apart (as the reading
 *   thread does) and what they read prefetched; a label whose lengths take
 *   two bytes is left to postings_add() to hash.
 * - A temporary file that cannot be written is SNAPARC_IO naming the
 *   directory and offset.
 *
 * Every test works in its own mkdtemp() directory.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <lmdb.h>

#include "bytes.h"
#include "idx.h"
#include "postings.h"
#include "support.h"

#define N 6000
#define MAX_LABELS 16
#define VALUE_MAX 320

static char tmpdir[64];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "postings");
}

static void teardown(void)
{
	support_rm_tree(tmpdir);
}

TestSuite(postings, .init = setup, .fini = teardown);

/* ---- the series ---- */

/* Refs far apart (past 32 bits), or close together. */
static int dense;
/* The series are added with their label hashes (postings_hash_labels()),
 * after prefetching what they read; then they have only the labels whose
 * lengths take one byte. */
static int hashed;

static uint64_t ref_of(size_t i)
{
	return dense ? 1000 + i + i / 64 : (uint64_t)i * 1000003 + i % 7;
}

/* Arrival order: a permutation of 0 .. N-1 (4099 is prime to 6000). */
static size_t arrival(size_t j)
{
	return j * 4099 % N;
}

struct labels {
	struct rec_label l[MAX_LABELS];
	char value[MAX_LABELS][VALUE_MAX];
	char long_name[257];
	size_t n;
};

static void add(struct labels *ls, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add(struct labels *ls, const char *name, const char *fmt, ...)
{
	va_list ap;
	size_t n = ls->n++;

	cr_assert_lt(n, MAX_LABELS);
	va_start(ap, fmt);
	vsnprintf(ls->value[n], VALUE_MAX, fmt, ap);
	va_end(ap);
	ls->l[n] = (struct rec_label){ name, ls->value[n], strlen(name), strlen(ls->value[n]) };
}

/* A value of n bytes, NULs past s. */
static void add_padded(struct labels *ls, const char *name, const char *s, size_t n)
{
	size_t k = ls->n++;

	cr_assert_lt(k, MAX_LABELS);
	cr_assert_leq(n, VALUE_MAX);
	memset(ls->value[k], 0, n);
	memcpy(ls->value[k], s, strlen(s) < n ? strlen(s) : n);
	ls->l[k] = (struct rec_label){ name, ls->value[k], strlen(name), n };
}

static int cmp_label(const void *a, const void *b)
{
	const struct rec_label *x = a, *y = b;
	int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);

	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Series i's labels, sorted by name. */
static void labels_of(size_t i, struct labels *ls)
{
	char deep[302];
	static const char p140[] = "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
				   "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp";

	ls->n = 0;
	memset(ls->long_name, 'n', 256);
	ls->long_name[256] = '\0';
	add(ls, "__name__", "metric_%zu", i % 17);
	add(ls, "all", "x");
	add(ls, "edge", "%.*s", (int)(127 + i % 3), p140);
	add(ls, "grp", "g%zu", i % 12);
	add(ls, "id", "%06zu", i);
	add(ls, "long", "%s-%zu", p140, i % 40);
	add(ls, ls->long_name, "%zu", i % 2);
	if (i % 5 == 0)
		add(ls, "empty", "%s", "");
	if (i % 3)
		add(ls, "shard", "%zu", i % 7);
	/* values alike for 300 bytes, past the depth the run's sort goes to
	 * by radix, and values that differ only in how many NULs end them */
	memset(deep, 'q', 300);
	deep[300] = (char)('0' + i % 5);
	deep[301] = '\0';
	add_padded(ls, "deep", deep, 301 + i % 3);
	add_padded(ls, "nul", i % 4 ? "a" : "", i % 4);
	/* names alike in their first 16 bytes and more */
	add(ls, i % 2 ? "shared_prefix_name_b" : "shared_prefix_name_a", "%zu", i % 3);
	qsort(ls->l, ls->n, sizeof(ls->l[0]), cmp_label);
	if (hashed) {
		/* the labels the reading thread hashes: lengths of one byte */
		size_t n = 0;

		for (size_t k = 0; k < ls->n; k++)
			if (ls->l[k].name_len < 0x80 && ls->l[k].value_len < 0x80)
				ls->l[n++] = ls->l[k];
		ls->n = n;
	}
}

/* ---- the reference: one idx_postings_put() per name ---- */

struct triple {
	size_t name, name_len, value, value_len;   /* in text */
	uint64_t ref;
};

static const uint8_t *text;

static int cmp_bytes(size_t a, size_t al, size_t b, size_t bl)
{
	int c = memcmp(text + a, text + b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

static int cmp_triple(const void *a, const void *b)
{
	const struct triple *x = a, *y = b;
	int c = cmp_bytes(x->name, x->name_len, y->name, y->name_len);

	if (!c)
		c = cmp_bytes(x->value, x->value_len, y->value, y->value_len);
	return c ? c : (x->ref > y->ref) - (x->ref < y->ref);
}

static struct idx *open_idx(const char *dir, uint64_t map_size)
{
	struct idx_opts o = { .flags = IDX_CREATE, .map_size = map_size };
	struct idx *x = NULL;
	struct err e = { 0 };

	cr_assert_eq(idx_open(&x, dir, &o, &e), 0, "%s", e.msg);
	return x;
}

static struct idx_txn *wbegin(struct idx *x)
{
	struct idx_txn *t = NULL;
	struct err e = { 0 };

	cr_assert_eq(idx_write_begin(x, &t, &e), 0, "%s", e.msg);
	return t;
}

static void write_reference(const char *dir)
{
	struct buf tb = { 0 }, lists = { 0 };
	struct triple *tr = malloc(N * MAX_LABELS * sizeof(*tr));
	struct idx_posting *vals = malloc(N * sizeof(*vals));
	size_t *list_off = malloc((N + 1) * sizeof(*list_off));
	struct idx *x = open_idx(dir, 0);
	struct idx_txn *t = wbegin(x);
	struct err e = { 0 };
	size_t n = 0;

	cr_assert(tr && vals && list_off);
	for (size_t i = 0; i < N; i++) {
		struct labels ls;

		labels_of(i, &ls);
		for (size_t k = 0; k < ls.n; k++) {
			tr[n] = (struct triple){ tb.len, ls.l[k].name_len, tb.len + ls.l[k].name_len, ls.l[k].value_len,
						 ref_of(i) };
			buf_put(&tb, ls.l[k].name, ls.l[k].name_len);
			buf_put(&tb, ls.l[k].value, ls.l[k].value_len);
			n++;
		}
	}
	cr_assert_not(tb.oom);
	text = tb.p;
	qsort(tr, n, sizeof(*tr), cmp_triple);
	for (size_t i = 0, j; i < n; i = j) {
		struct idx_postings_block blk = { 0 };
		size_t nv = 0;

		buf_reset(&lists);
		for (j = i; j < n && !cmp_bytes(tr[j].name, tr[j].name_len, tr[i].name, tr[i].name_len);) {
			size_t a = j;
			uint64_t last = 0;

			for (; j < n && !cmp_bytes(tr[j].name, tr[j].name_len, tr[i].name, tr[i].name_len) &&
			       !cmp_bytes(tr[j].value, tr[j].value_len, tr[a].value, tr[a].value_len); j++)
				;
			list_off[nv] = lists.len;
			buf_put_uvarint(&lists, j - a);
			for (size_t k = a; k < j; k++) {
				buf_put_uvarint(&lists, tr[k].ref - last);
				last = tr[k].ref;
			}
			vals[nv++] = (struct idx_posting){ (const char *)text + tr[a].value, tr[a].value_len, NULL, 0 };
		}
		cr_assert_not(lists.oom);
		list_off[nv] = lists.len;
		for (size_t v = 0; v < nv; v++) {
			vals[v].list = lists.p + list_off[v];
			vals[v].list_len = list_off[v + 1] - list_off[v];
		}
		cr_assert_eq(idx_postings_put(t, 1, (const char *)text + tr[i].name, tr[i].name_len, &blk, vals, nv, 1,
					      &e),
			     0, "%s", e.msg);
	}
	cr_assert_eq(idx_commit(t, &e), 0, "%s", e.msg);
	idx_close(x);
	free(tr);
	free(vals);
	free(list_off);
	buf_free(&tb);
	buf_free(&lists);
	text = NULL;
}

/* ---- through postings ---- */

/* A third of the series spell every length with one byte more than it needs. */
static int padded;

static void put_padded_uvarint(struct buf *b, uint64_t v)
{
	uint8_t *p = buf_reserve(b, UVARINT_MAX_LEN);
	size_t n;

	cr_assert(p);
	n = uvarint_put(p, v);
	p[n - 1] |= 0x80;
	p[n] = 0;
	b->len += n + 1;
}

static void encode(struct buf *b, const struct labels *ls, size_t i)
{
	if (!padded || i % 3) {
		rec_labels_encode(b, ls->l, ls->n);
		return;
	}
	put_padded_uvarint(b, ls->n);
	for (size_t k = 0; k < ls->n; k++) {
		put_padded_uvarint(b, ls->l[k].name_len);
		buf_put(b, ls->l[k].name, ls->l[k].name_len);
		put_padded_uvarint(b, ls->l[k].value_len);
		buf_put(b, ls->l[k].value, ls->l[k].value_len);
	}
}

/* postings_hash_labels() of the n labels encoded in raw, as decoded. */
static int hash_encoded(const struct rec_labels *raw, size_t n, uint64_t *hashes)
{
	struct rec_label decoded[MAX_LABELS];
	struct rec_label_iter it;
	size_t k = 0;

	cr_assert_leq(n, MAX_LABELS);
	rec_labels_iter(&it, raw);
	while (k < n && rec_labels_next(&it, &decoded[k]))
		k++;
	cr_assert_eq(k, n);
	return postings_hash_labels(decoded, n, hashes);
}

static struct postings *add_all(size_t mem)
{
	struct postings *p = NULL;
	struct buf b = { 0 };
	struct err e = { 0 };

	cr_assert_eq(postings_new(&p, tmpdir, mem, &e), 0, "%s", e.msg);
	for (size_t j = 0; j < N; j++) {
		size_t i = arrival(j);
		struct labels ls;
		struct rec_labels raw;
		uint64_t hashes[MAX_LABELS];
		int have = 0;

		labels_of(i, &ls);
		buf_reset(&b);
		encode(&b, &ls, i);
		cr_assert_not(b.oom);
		raw = (struct rec_labels){ b.p, b.len, (uint32_t)ls.n };
		if (hashed) {
			/* (the padded spell their lengths with two bytes) */
			have = hash_encoded(&raw, ls.n, hashes);
			cr_assert_eq(have, !padded || i % 3, "series %zu: hashed %d", i, have);
			for (int stage = 0; have && stage < 3; stage++)
				postings_prefetch(p, hashes, ls.n, stage);
		}
		cr_assert_eq(postings_add(p, &raw, have ? hashes : NULL, ref_of(i), &e), 0, "series %zu: %s", i,
			     e.msg);
	}
	buf_free(&b);
	return p;
}

/* How postings_write() meets postings_flush(). */
enum merge {
	MERGE_IN_WRITE,          /* none: postings_write() merges the runs */
	MERGE_FIRST,             /* postings_flush() first, as a commit that failed and retries */
	MERGE_ON_A_THREAD,       /* postings_flush() on a thread, followed as it writes (an import) */
	MERGES
};

static const char *const merge_names[] = { "", ", the runs merged first", ", the runs merged on a thread" };

struct flusher {
	struct postings *p;
	struct err e;
	int rc;
};

static void *flush_thread(void *arg)
{
	struct flusher *f = arg;

	f->rc = postings_flush(f->p, &f->e);
	return NULL;
}

/* Starts postings_flush() on a thread when merge asks for it, as an
 * import's commit does; merge_end() joins it. */
static void merge_start(struct postings *p, enum merge merge, struct flusher *f, pthread_t *th)
{
	struct err e = { 0 };

	f->p = p;
	f->rc = 0;
	if (merge == MERGE_FIRST)
		cr_assert_eq(postings_flush(p, &e), 0, "%s", e.msg);
	if (merge == MERGE_ON_A_THREAD) {
		postings_flush_announce(p);
		cr_assert_eq(pthread_create(th, NULL, flush_thread, f), 0);
	}
}

static void merge_end(enum merge merge, struct flusher *f, pthread_t th)
{
	if (merge != MERGE_ON_A_THREAD)
		return;
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(f->rc, 0, "%s", f->e.msg);
}

static void write_postings(const char *dir, size_t mem, enum merge merge)
{
	struct postings *p = add_all(mem);
	struct idx *x = open_idx(dir, 0);
	struct idx_txn *t = wbegin(x);
	struct err e = { 0 };
	struct flusher f;
	pthread_t th;

	merge_start(p, merge, &f, &th);
	cr_assert_eq(postings_write(p, t, 1, &e), 0, "%s", e.msg);
	merge_end(merge, &f, th);
	cr_assert_eq(idx_commit(t, &e), 0, "%s", e.msg);
	idx_close(x);
	postings_free(p);
}

/* Every key and value of the postings database, each with its length;
 * *blocks: how many. */
static void dump(const char *dir, struct buf *out, size_t *blocks)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	*blocks = 0;
	buf_reset(out);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "postings", 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(txn, dbi, &c), 0);
	while ((rc = mdb_cursor_get(c, &k, &v, *blocks ? MDB_NEXT : MDB_FIRST)) == 0) {
		buf_put_uvarint(out, k.mv_size);
		buf_put(out, k.mv_data, k.mv_size);
		buf_put_uvarint(out, v.mv_size);
		buf_put(out, v.mv_data, v.mv_size);
		(*blocks)++;
	}
	cr_assert_eq(rc, MDB_NOTFOUND);
	cr_assert_not(out->oom);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

static void assert_same(const struct buf *want, const char *dir, const char *what)
{
	struct buf got = { 0 };
	size_t blocks, at = 0;

	dump(dir, &got, &blocks);
	while (at < got.len && at < want->len && got.p[at] == want->p[at])
		at++;
	cr_assert(got.len == want->len && at == got.len,
		  "%s: %zu bytes of postings, the reference %zu; they differ from byte %zu", what, got.len,
		  want->len, at);
	buf_free(&got);
}

/* ---- tests ---- */

static void assert_any_budget(void)
{
	static const size_t budgets[] = { 0, 150 << 10, 1 << 20, SIZE_MAX };
	struct buf want = { 0 };
	char dir[128];
	size_t blocks;

	snprintf(dir, sizeof(dir), "%s/reference", tmpdir);
	write_reference(dir);
	dump(dir, &want, &blocks);
	/* 6,000 ids, 2,000 of them a block; "all" alone is over 20 blocks' worth
	 * (refs far apart: refs close together take fewer bytes, as do the
	 * short labels alone) */
	cr_assert_gt(blocks, dense && hashed ? 15 : dense || hashed ? 20 : 50, "%zu blocks", blocks);
	for (size_t i = 0; i < MERGES * sizeof(budgets) / sizeof(budgets[0]); i++) {
		char what[96];

		snprintf(dir, sizeof(dir), "%s/budget-%zu", tmpdir, i);
		snprintf(what, sizeof(what), "a budget of %zu bytes%s", budgets[i / MERGES], merge_names[i % MERGES]);
		write_postings(dir, budgets[i / MERGES], (enum merge)(i % MERGES));
		assert_same(&want, dir, what);
		support_rm_tree(dir);
	}
	buf_free(&want);
	snprintf(dir, sizeof(dir), "%s/reference", tmpdir);
	support_rm_tree(dir);
}

Test(postings, any_budget_writes_the_bytes_of_one_put_per_name)
{
	assert_any_budget();
}

Test(postings, refs_close_together_merge_to_the_bytes_of_one_put_per_name)
{
	dense = 1;
	assert_any_budget();
}

Test(postings, lengths_spelled_with_more_bytes_meet_their_minimal_spelling)
{
	padded = 1;
	assert_any_budget();
	dense = 1;
	assert_any_budget();
}

Test(postings, labels_hashed_elsewhere_and_prefetched_write_the_same_bytes)
{
	hashed = 1;
	assert_any_budget();
	dense = 1;
	assert_any_budget();
	padded = 1;
	assert_any_budget();
}

Test(postings, a_label_whose_lengths_take_more_than_a_byte_is_left_to_postings_add_to_hash)
{
	struct rec_label long_value = { "a", NULL, 1, 128 }, long_name = { NULL, "v", 128, 1 };
	char bytes[128];
	struct buf b = { 0 };
	uint64_t h;

	memset(bytes, 'x', sizeof(bytes));
	long_value.value = bytes;
	long_name.name = bytes;
	rec_labels_encode(&b, &long_value, 1);
	cr_assert_eq(hash_encoded(&(struct rec_labels){ b.p, b.len, 1 }, 1, &h), 0);
	buf_reset(&b);
	rec_labels_encode(&b, &long_name, 1);
	cr_assert_eq(hash_encoded(&(struct rec_labels){ b.p, b.len, 1 }, 1, &h), 0);
	long_name.name_len = 127;
	buf_reset(&b);
	rec_labels_encode(&b, &long_name, 1);
	cr_assert_eq(hash_encoded(&(struct rec_labels){ b.p, b.len, 1 }, 1, &h), 1);
	/* an empty name's length spelled in two bytes ends in the zero a
	 * minimal one is: empty names are left to postings_add() */
	long_name.name_len = 0;
	buf_reset(&b);
	rec_labels_encode(&b, &long_name, 1);
	cr_assert_eq(hash_encoded(&(struct rec_labels){ b.p, b.len, 1 }, 1, &h), 0);
	buf_free(&b);
}

static void assert_written_again(enum merge merge)
{
	struct postings *p = add_all(150 << 10);
	struct buf want = { 0 };
	struct idx *x;
	struct err e = { 0 };
	struct flusher f;
	pthread_t th;
	char dir[128];
	size_t blocks, failed = 0;
	int rc;

	snprintf(dir, sizeof(dir), "%s/reference", tmpdir);
	write_reference(dir);
	dump(dir, &want, &blocks);
	snprintf(dir, sizeof(dir), "%s/small-map", tmpdir);
	x = open_idx(dir, 64 << 10);
	merge_start(p, merge, &f, &th);
	do {
		struct idx_txn *t = wbegin(x);

		rc = postings_write(p, t, 1, &e);
		if (rc) {
			cr_assert_eq(rc, SNAPARC_NOMEM, "%s", e.msg);
			idx_abort(t);
			failed++;
		} else if ((rc = idx_commit(t, &e)) != 0) {
			cr_assert_eq(rc, SNAPARC_NOMEM, "%s", e.msg);
			failed++;
		}
	} while (rc && failed < 20);
	merge_end(merge, &f, th);
	cr_assert_eq(rc, 0, "still failing after %zu tries: %s", failed, e.msg);
	cr_assert_gt(failed, 0, "the postings fitted a 64 KiB map");
	idx_close(x);
	postings_free(p);
	assert_same(&want, dir, "written again");
	buf_free(&want);
	support_rm_tree(dir);
	snprintf(dir, sizeof(dir), "%s/reference", tmpdir);
	support_rm_tree(dir);
}

Test(postings, a_write_that_fills_the_map_is_written_again_in_the_next_transaction)
{
	for (int dense_refs = 0; dense_refs < 2; dense_refs++) {
		dense = dense_refs;
		for (enum merge m = 0; m < MERGES; m++)
			assert_written_again(m);
	}
}

Test(postings, a_temporary_file_that_cannot_be_written_is_an_io_error_naming_dir_and_offset)
{
	struct rlimit small = { 4096, RLIM_INFINITY };
	struct postings *p = NULL;
	struct buf b = { 0 };
	struct err e = { 0 };
	int rc = 0;

	/* past the limit a write is EFBIG, not a signal */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	cr_assert_eq(postings_new(&p, tmpdir, 0, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < N && !rc; i++) {
		struct labels ls;
		struct rec_labels raw;

		labels_of(i, &ls);
		buf_reset(&b);
		rec_labels_encode(&b, ls.l, ls.n);
		raw = (struct rec_labels){ b.p, b.len, (uint32_t)ls.n };
		rc = postings_add(p, &raw, NULL, ref_of(i), &e);
	}
	cr_assert_eq(rc, SNAPARC_IO, "rc %d: %s", rc, e.msg);
	cr_assert(strstr(e.msg, tmpdir) && strstr(e.msg, "temporary file: offset ") &&
		  strstr(e.msg, "File too large"), "%s", e.msg);
	postings_free(p);
	buf_free(&b);
}

Test(postings, a_merge_that_fails_on_its_thread_fails_the_write_that_follows_it)
{
	struct rlimit small = { 4096, RLIM_INFINITY };
	struct postings *p = add_all(SIZE_MAX);
	struct idx *x;
	struct idx_txn *t;
	struct err e = { 0 };
	struct flusher f;
	pthread_t th;
	char dir[128];
	int rc;

	/* the table, never written out while added to, is the first write:
	 * past the limit it is EFBIG, not a signal */
	snprintf(dir, sizeof(dir), "%s/failed-merge", tmpdir);
	x = open_idx(dir, 0);
	t = wbegin(x);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	postings_flush_announce(p);
	f = (struct flusher){ .p = p };
	cr_assert_eq(pthread_create(&th, NULL, flush_thread, &f), 0);
	rc = postings_write(p, t, 1, &e);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(f.rc, SNAPARC_IO, "the flush: rc %d: %s", f.rc, f.e.msg);
	cr_assert_eq(rc, SNAPARC_IO, "the write: rc %d: %s", rc, e.msg);
	cr_assert(strstr(e.msg, tmpdir) && strstr(e.msg, "temporary file: offset ") &&
		  strstr(e.msg, "File too large"), "%s", e.msg);
	idx_abort(t);
	idx_close(x);
	postings_free(p);
}
