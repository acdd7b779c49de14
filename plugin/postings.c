/*
 * An open-addressing hash table of distinct name=value pairs; each holds
 * its series' refs as uvarints in the order they came (a snapshot's order
 * is not by ref): in the pair itself while they fit in 16 bytes, as most
 * pairs' few do, then in a buffer of its own. The table's slots are small
 * (a hash tag and the pair's number) and the pairs lie in an array in the
 * order they came;
 * a pair's name and value are kept in an arena as one canonical label
 * encoding (uvarint name length, name, uvarint value length, value), which
 * is how a series record almost always spells them: looking a label up is
 * one hash and one compare of its bytes. When the table's memory passes
 * the budget it is written to one temporary file as a run, sorted, and
 * emptied; its arrays are kept for the next run, and grow by a quarter or
 * a half, not twice: a run holds as many pairs as the budget can. At
 * commit what is left becomes the last run, and the runs are merged in
 * (name, value) order, each pair's refs merged too, into the index one
 * value at a time: memory is the runs' buffers and one value's list.
 *
 * A run is its pairs in (name, value) order (memcmp, shorter first), each
 *   uvarint 0 (the previous pair's name) or name length + 1, then the name
 *   uvarint value length, the value
 *   uvarint n, n x uvarint (ref - previous ref), the refs sorted
 * the refs' part being a list as idx_postings_put() takes it. Runs lie in
 * the file where their spans say; they are only read, so a failed commit
 * can merge them again.
 *
 * Writing a run out, the table's pairs are sorted, then the first half
 * (by refs) is written here and the second on a thread of the table's own
 * (bg.h), as a run of its own: two runs whose keys do not meet. The second
 * starts past the most the first can take, a hole in the file. An import's
 * reading thread waits for the table while it is written: half the wait.
 *
 * postings_flush() on a thread of its own merges the runs into one at the
 * file's end, while the import's writing thread indexes the series; that
 * thread's postings_write() then follows the merged run as it is written
 * (struct tail), a pair at a time, rather than waiting for its end.
 */
#include "postings.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* XXH3 inlined: most labels are a few dozen bytes */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bg.h"
#include "bytes.h"
#include "sort.h"
#include "tmpfile.h"

#define SLOTS 1024              /* an empty table's */
#define LOAD_MAX 70             /* percent of the slots used before the table grows */
#define RUN_BUF (64u << 10)     /* a run's buffer, writing or reading it */
#define RUN_BUF_MIN (4u << 10)  /* reading, when the runs are many */
#define MALLOC_OVERHEAD 16      /* glibc's chunk header and rounding */
#define REFS_IN 16              /* a pair's refs kept in the pair up to this many bytes, */
#define REFS_OUT 32             /* then in a buffer of this many, growing by half */
#define ARENA_MIN (64u << 10)
/* Merging, a bit a ref from the lowest to the highest when that takes at
 * most this much (32 Mi refs apart), */
#define BITS_MAX (4u << 20)
/* for the pairs with a ref for every this many words of it or more. */
#define BITS_PER_REF 2
/* A run is written in two halves, each on a thread, from this many refs. */
#define HALVES_MIN_REFS 4096

struct pair {
	uint32_t label_off;           /* in the arena: name length, name, value length, value */
	uint32_t name_len, value_len;
	uint32_t n;                   /* refs in all */
	uint32_t len, cap;            /* the refs' bytes; cap 0: they are in in */
	union {
		uint8_t in[REFS_IN];
		uint8_t *p;
	} refs;
};

/* A slot: the pair's number + 1 (0: empty) and its hash's high bits. */
struct slot {
	uint32_t tag;
	uint32_t pair;
};

/* Bytes [start, end) of the temporary file. */
struct span {
	uint64_t start, end;
};

/* A postings_flush() on another thread, as postings_write() sees it. */
struct tail {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int announced;            /* postings_flush_announce() */
	int ready;                /* the flush has written the table out */
	int merging;              /* and is merging the runs into [start, published) */
	int done;                 /* it has ended: rc, err */
	uint64_t start, published;   /* published ends a pair */
	int rc;
	struct err err;
};

struct postings {
	struct slot *slots;
	size_t cap;               /* slots, a power of two */
	size_t grow_at;           /* pairs the slots take before they grow (LOAD_MAX) */
	struct pair *pairs;
	size_t used, pairs_cap;
	struct buf arena;
	struct buf canon;         /* a label spelled otherwise, in the arena's form */
	size_t mem;               /* the budget */
	size_t ref_mem;           /* the ref buffers' allocations */
	size_t most_refs;         /* the largest pair's n (at most UINT32_MAX) */
	uint64_t ref_min, ref_max;    /* of every series added */
	/* a bit a ref from bits_lo, for sorting the refs of pairs that have
	 * many (ensure_bits()); clear but while one pair's are in it. The
	 * second half of a run being written has bits_half. */
	uint64_t *bits, *bits_half;
	uint64_t bits_lo;
	size_t bits_words;
	const char *dir;
	int fd;                   /* the temporary file, -1 until the first run */
	struct buf runs;          /* struct span: where each run lies in it */
	uint64_t file_end;        /* past the last run */
	struct bg *bg;            /* writes a run's second half */
	struct tail tail;
};

/* A string's first 16 bytes as two big-endian numbers, zeros past its end:
 * they order as the bytes do, and a merge's compares of names and values,
 * almost all equal names or values that differ early, need no memcmp(). */
struct prefix {
	uint64_t hi, lo;
};

/* A run being read. */
struct run {
	struct tmpfile_reader rd;
	struct buf name, value;   /* the current pair's */
	struct prefix name_pre, value_pre;
	uint64_t left, ref;       /* its refs not taken yet, and the last taken */
	struct tail *tail;        /* the run being merged on another thread, or NULL */
};

static const uint8_t *refs_of(const struct pair *s)
{
	return s->cap ? s->refs.p : s->refs.in;
}

/* The bytes the pair's refs have room for, in it or in their buffer. */
static size_t refs_room(const struct pair *s)
{
	return s->cap ? s->cap : REFS_IN;
}

/* The slots' count, and the pairs they take before they grow. */
static void set_slots(struct postings *p, struct slot *slots, size_t cap)
{
	p->slots = slots;
	p->cap = cap;
	p->grow_at = (cap * LOAD_MAX + 99) / 100;
}

static void free_refs(struct postings *p)
{
	for (size_t i = 0; i < p->used; i++)
		if (p->pairs[i].cap)
			free(p->pairs[i].refs.p);
	p->ref_mem = 0;
}

static int nomem(struct err *e)
{
	return err_set(e, SNAPARC_NOMEM, "out of memory for label postings");
}

int postings_new(struct postings **out, const char *dir, size_t mem, struct err *e)
{
	struct postings *p = calloc(1, sizeof(*p));

	if (!p || !(p->slots = calloc(SLOTS, sizeof(*p->slots)))) {
		free(p);
		return nomem(e);
	}
	set_slots(p, p->slots, SLOTS);
	p->mem = mem;
	p->dir = dir;
	p->fd = -1;
	pthread_mutex_init(&p->tail.mu, NULL);
	pthread_cond_init(&p->tail.cv, NULL);
	if (bg_new(&p->bg, e)) {
		postings_free(p);
		return SNAPARC_NOMEM;
	}
	*out = p;
	return 0;
}

void postings_free(struct postings *p)
{
	if (!p)
		return;
	bg_free(p->bg);   /* first: it may be writing half a run */
	free_refs(p);
	free(p->slots);
	free(p->pairs);
	buf_free(&p->arena);
	buf_free(&p->canon);
	buf_free(&p->runs);
	free(p->bits);
	free(p->bits_half);
	if (p->fd >= 0)
		close(p->fd);
	pthread_cond_destroy(&p->tail.cv);
	pthread_mutex_destroy(&p->tail.mu);
	free(p);
}

/* A pair's place in a run: the key it is sorted on, then its number. */
struct order_ent {
	uint64_t key;
	uint64_t pair;
};

/* What the table takes, and will while it is written out: the slots, the
 * pairs, the arena, the ref buffers, the pairs' order with its sort's
 * scratch, and for each half the bits and the largest pair's refs decoded
 * with theirs. */
static size_t table_mem(const struct postings *p)
{
	return p->cap * sizeof(struct slot) + p->pairs_cap * sizeof(struct pair) + p->arena.cap + p->ref_mem +
	       p->used * sizeof(struct order_ent) + sort_by_u64_key_mem(p->used, sizeof(struct order_ent)) +
	       2 * (p->bits_words * sizeof(uint64_t) + p->most_refs * sizeof(uint64_t) +
		    sort_by_u64_key_mem(p->most_refs, sizeof(uint64_t)));
}

/* Makes the bits cover every ref added so far when that takes at most
 * BITS_MAX; without them every pair's refs are sorted instead. */
static void ensure_bits(struct postings *p)
{
	size_t words;

	if (!p->ref_max || (p->ref_max - p->ref_min) / 8 >= BITS_MAX) {
		free(p->bits);
		free(p->bits_half);
		p->bits = p->bits_half = NULL;
		p->bits_words = 0;
		return;
	}
	words = (size_t)((p->ref_max - p->ref_min) / 64 + 1);
	if (p->bits && p->bits_lo == p->ref_min && p->bits_words >= words)
		return;
	free(p->bits);
	free(p->bits_half);
	p->bits_lo = p->ref_min;
	p->bits = calloc(words, sizeof(*p->bits));
	p->bits_half = p->bits ? calloc(words, sizeof(*p->bits_half)) : NULL;
	p->bits_words = p->bits ? words : 0;
}

/* Whether n refs, at least one from lo, are better sorted by their bits:
 * scanning them costs at most BITS_PER_REF words a ref. */
static int dense(const struct postings *p, uint64_t lo, uint64_t n)
{
	return p->bits && lo >= p->bits_lo && (p->ref_max - p->bits_lo) / 64 < p->bits_words &&
	       (p->ref_max - lo) / 64 <= n * BITS_PER_REF;
}

/* The bits set, from lo to hi (bit numbers); empty: lo > hi. */
struct bits_span {
	uint64_t lo, hi;
};

/* Sets ref's bit in bits (p->bits or p->bits_half) and widens the span.
 * 0, or -1 for a ref outside them. */
static int bits_set(const struct postings *p, uint64_t *bits, uint64_t ref, struct bits_span *span)
{
	uint64_t at = ref - p->bits_lo;

	if (ref < p->bits_lo || at / 64 >= p->bits_words)
		return -1;
	bits[at / 64] |= 1ull << (at % 64);
	if (at > span->hi)
		span->hi = at;
	if (at < span->lo)
		span->lo = at;
	return 0;
}

static void bits_clear(const struct postings *p, uint64_t *bits)
{
	memset(bits, 0, p->bits_words * sizeof(*bits));
}

/* Appends to list the uvarint count of the refs whose bits are set in the
 * span, then each ref's delta from the one before, clearing the bits (all
 * of them, out of memory). */
static void bits_take(const struct postings *p, uint64_t *bits, struct bits_span span, struct buf *list)
{
	uint64_t last = 0, taken = 0, lo = span.lo / 64, hi = span.hi / 64;
	uint8_t *q;

	if (span.lo > span.hi) {
		buf_put_uvarint(list, 0);
		return;
	}
	/* counted first: the count goes before the deltas, and with it the
	 * room they take is known (a delta after the first is at most the
	 * span) */
	for (uint64_t word = lo; word <= hi; word++)
		taken += (uint64_t)__builtin_popcountll(bits[word]);
	if (!(q = buf_reserve(list, 2 * UVARINT_MAX_LEN + taken * uvarint_len(span.hi - span.lo)))) {
		bits_clear(p, bits);
		return;
	}
	q += uvarint_put(q, taken);
	for (uint64_t word = lo; word <= hi; word++) {
		uint64_t w = bits[word];

		if (!w)
			continue;
		bits[word] = 0;
		for (; w; w &= w - 1) {
			uint64_t ref = p->bits_lo + word * 64 + (uint64_t)__builtin_ctzll(w);

			q += uvarint_put(q, ref - last);
			last = ref;
		}
	}
	list->len = (size_t)(q - list->p);
}

static const uint8_t *pair_name(const struct postings *p, const struct pair *s)
{
	return p->arena.p + s->label_off + uvarint_len(s->name_len);
}

static const uint8_t *pair_value(const struct postings *p, const struct pair *s)
{
	return pair_name(p, s) + s->name_len + uvarint_len(s->value_len);
}

/* The pair's label in the arena's form, its length. */
static size_t pair_label_len(const struct pair *s)
{
	return uvarint_len(s->name_len) + s->name_len + uvarint_len(s->value_len) + s->value_len;
}

static uint64_t label_hash(const uint8_t *label, size_t len)
{
	return XXH3_64bits(label, len);
}

static void place(struct slot *slots, size_t cap, uint64_t h, uint32_t pair)
{
	size_t j;

	for (j = h & (cap - 1); slots[j].pair; j = (j + 1) & (cap - 1))
		;
	slots[j].tag = (uint32_t)(h >> 32);
	slots[j].pair = pair;
}

static int grow(struct postings *p)
{
	size_t cap = p->cap * 2;
	struct slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < p->used; i++) {
		const struct pair *s = &p->pairs[i];

		place(slots, cap, label_hash(p->arena.p + s->label_off, pair_label_len(s)), (uint32_t)i + 1);
	}
	free(p->slots);
	set_slots(p, slots, cap);
	return 0;
}

/* Empties the table, keeping its arrays for the next run. */
static void empty(struct postings *p)
{
	free_refs(p);
	memset(p->slots, 0, p->cap * sizeof(*p->slots));
	buf_reset(&p->arena);
	p->used = p->most_refs = 0;
}

/* Empties the table, back to its first size: its memory is the merge's. */
static void release(struct postings *p)
{
	struct slot *small;

	empty(p);
	/* (its first slots, which empty() cleared, are kept) */
	if (p->cap > SLOTS && (small = realloc(p->slots, SLOTS * sizeof(*small))) != NULL)
		set_slots(p, small, SLOTS);
	free(p->pairs);
	p->pairs = NULL;
	p->pairs_cap = 0;
	buf_free(&p->arena);
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

/* Sorting in a run's order, a string at a time (the name, then the value). */
enum part { NAME, VALUE };

/* Deepest a string is radix sorted; past it the rest is compared. */
#define RADIX_DEPTH 256

static const uint8_t *part_of(const struct postings *p, const struct order_ent *o, enum part part, size_t *len)
{
	const struct pair *s = &p->pairs[o->pair];

	*len = part == NAME ? s->name_len : s->value_len;
	return part == NAME ? pair_name(p, s) : pair_value(p, s);
}

/* Bytes [off, off + 8) of a string as a big-endian number, zeros past its
 * end: numbers order as the bytes do, and two strings with the same
 * numbers all along differ only in length (the shorter first). */
static uint64_t chunk_at(const uint8_t *str, size_t len, size_t off)
{
	uint8_t b[8] = { 0 };

	if (off < len)
		memcpy(b, str + off, len - off < 8 ? len - off : 8);
	return be64_get(b);
}

static struct prefix prefix_of(const struct buf *b)
{
	return (struct prefix){ chunk_at(b->p, b->len, 0), chunk_at(b->p, b->len, 8) };
}

struct part_cmp {
	const struct postings *p;
	enum part part;
};

static int cmp_part(const void *a, const void *b, void *ctx)
{
	const struct part_cmp *c = ctx;
	size_t al, bl;
	const uint8_t *x = part_of(c->p, a, c->part, &al), *y = part_of(c->p, b, c->part, &bl);

	return bytes_cmp(x, al, y, bl);
}

/* Sorts the n entries, whose strings (part) have the same bytes before off,
 * by the rest of them: MSD radix, 8 bytes a pass (sort_by_u64_key()), each
 * group with the same 8 bytes on to the next ones, then by length; no
 * compare of their bytes, most of which qsort would make several times
 * over, each a cache miss in a large arena. */
static int sort_part(const struct postings *p, struct order_ent *o, size_t n, enum part part, size_t off)
{
	size_t most = 0, len;
	const uint8_t *str;

	if (n < 2)
		return 0;
	if (off >= RADIX_DEPTH) {
		struct part_cmp c = { p, part };

		qsort_r(o, n, sizeof(*o), cmp_part, &c);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		str = part_of(p, &o[i], part, &len);
		o[i].key = chunk_at(str, len, off);
		if (len > most)
			most = len;
	}
	if (most <= off) {
		/* the same bytes, some strings shorter */
		for (size_t i = 0; i < n; i++) {
			part_of(p, &o[i], part, &len);
			o[i].key = len;
		}
		return sort_by_u64_key(o, n, sizeof(*o));
	}
	if (sort_by_u64_key(o, n, sizeof(*o)))
		return -1;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && o[j].key == o[i].key;)
			j++;
		if (j - i > 1 && sort_part(p, o + i, j - i, part, off + 8))
			return -1;
	}
	return 0;
}

/* The table's pairs in (name, value) order: by name, then each name's by
 * value. */
static int sort_pairs(const struct postings *p, struct order_ent *o, size_t n)
{
	if (sort_part(p, o, n, NAME, 0))
		return -1;
	for (size_t i = 0, j; i < n; i = j) {
		const struct pair *s = &p->pairs[o[i].pair];

		for (j = i + 1; j < n && !bytes_cmp(pair_name(p, s), s->name_len, pair_name(p, &p->pairs[o[j].pair]),
						  p->pairs[o[j].pair].name_len);)
			j++;
		if (sort_part(p, o + i, j - i, VALUE, 0))
			return -1;
	}
	return 0;
}

/* The next of a pair's refs, which postings_add() wrote: no checks. */
static inline uint64_t ref_next(const uint8_t **q)
{
	uint64_t v = 0;

	for (unsigned shift = 0;; shift += 7) {
		uint8_t b = *(*q)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80)
			return v;
	}
}

/* The pair's refs, sorted, into refs (uint64_t). */
static int pair_refs(const struct pair *s, struct buf *refs, struct err *e)
{
	const uint8_t *q = refs_of(s), *end = q + s->len;
	uint64_t *r;

	buf_reset(refs);
	if (!(r = (uint64_t *)buf_reserve(refs, s->n * sizeof(*r))))
		return nomem(e);
	while (q < end)
		*r++ = ref_next(&q);
	refs->len = s->n * sizeof(*r);
	if (sort_by_u64_key(refs->p, s->n, sizeof(uint64_t)))
		return nomem(e);
	return 0;
}

/* The pair's refs as a run holds them (count, sorted deltas), through the
 * bits, appended to out. */
static int pair_bits(const struct postings *p, uint64_t *bits, const struct pair *s, struct buf *out,
		     struct err *e)
{
	const uint8_t *q = refs_of(s), *end = q + s->len;
	struct bits_span span = { UINT64_MAX, 0 };
	int bad = 0;

	while (q < end && !bad)
		bad = bits_set(p, bits, ref_next(&q), &span);
	if (bad) {
		bits_clear(p, bits);
		return err_set(e, SNAPARC_INVALID, "a ref outside those the postings were given");
	}
	bits_take(p, bits, span, out);
	return out->oom ? nomem(e) : 0;
}

/* A pair's name and value as a run spells them: the name as 0 when it is
 * the pair before's (same_name). */
static void put_key(struct buf *out, int same_name, const uint8_t *name, size_t name_len, const uint8_t *value,
		    size_t value_len)
{
	if (same_name) {
		buf_put_uvarint(out, 0);
	} else {
		buf_put_uvarint(out, name_len + 1ull);
		buf_put(out, name, name_len);
	}
	buf_put_uvarint_bytes(out, value, value_len);
}

/* Writes out what out holds, at *off. */
static int flush(const struct postings *p, struct buf *out, uint64_t *off, struct err *e)
{
	int rc;

	if (out->oom)
		return nomem(e);
	if ((rc = tmpfile_write(p->fd, p->dir, *off, out->p, out->len, e)))
		return rc;
	*off += out->len;
	buf_reset(out);
	return 0;
}

/* Pairs [from, to) of a run's order, written as a run from start. */
struct run_half {
	const struct postings *p;
	const struct order_ent *order;
	size_t from, to;
	uint64_t *bits;           /* p->bits or p->bits_half */
	struct span at;           /* start, and once written its end */
};

static int write_half(void *arg, struct err *e)
{
	struct run_half *h = arg;
	const struct postings *p = h->p;
	struct buf out = { 0 }, refs = { 0 };
	uint64_t off = h->at.start;
	int rc = 0;

	for (size_t i = h->from; i < h->to && !rc; i++) {
		const struct pair *s = &p->pairs[h->order[i].pair];
		const struct pair *prev = i > h->from ? &p->pairs[h->order[i - 1].pair] : NULL;
		const uint8_t *name = pair_name(p, s);
		const uint64_t *r;

		put_key(&out, prev && !bytes_cmp(name, s->name_len, pair_name(p, prev), prev->name_len), name,
			s->name_len, pair_value(p, s), s->value_len);
		if (dense(p, p->bits_lo, s->n)) {
			if ((rc = pair_bits(p, h->bits, s, &out, e)))
				break;
			if (out.len >= RUN_BUF)
				rc = flush(p, &out, &off, e);
			continue;
		}
		if ((rc = pair_refs(s, &refs, e)))
			break;
		r = (const uint64_t *)refs.p;
		buf_put_uvarint(&out, s->n);
		for (size_t j = 0; j < s->n && !rc; j++) {
			buf_put_uvarint(&out, j ? r[j] - r[j - 1] : r[0]);
			if (out.len >= RUN_BUF)
				rc = flush(p, &out, &off, e);
		}
	}
	if (!rc)
		rc = flush(p, &out, &off, e);
	h->at.end = off;
	buf_free(&out);
	buf_free(&refs);
	return rc;
}

/* Where the table's sorted pairs split into two halves of about as many
 * refs: the second's first pair (n: no split, the table is small or the
 * second half would have no bits). *first_max: the most bytes the first
 * half takes as a run, a ref's delta being at most ref_max. */
static size_t halves_split(const struct postings *p, const struct order_ent *order, size_t n, uint64_t *first_max)
{
	uint64_t refs = 0, half = 0, max = 0, per_ref = uvarint_len(p->ref_max);
	size_t i;

	for (i = 0; i < n; i++)
		refs += p->pairs[order[i].pair].n;
	if (refs < HALVES_MIN_REFS || n < 2 || (p->bits && !p->bits_half))
		return n;
	for (i = 0; i < n - 1 && half < refs / 2; i++) {
		const struct pair *s = &p->pairs[order[i].pair];

		half += s->n;
		max += 3 * UVARINT_MAX_LEN + s->name_len + s->value_len + s->n * per_ref;
	}
	*first_max = max;
	return i;
}

/* Writes the table out as the next runs and empties it; on failure the
 * table and the runs before are as they were. */
static int write_run(struct postings *p, struct err *e)
{
	struct run_half h[2];
	struct order_ent *order;
	uint64_t first_max = 0;
	size_t n, split;
	int rc = 0, rc2;

	if (!p->used)
		return 0;
	if (p->fd < 0) {
		int fd = tmpfile_open(p->dir, e);

		if (fd < 0)
			return fd;
		p->fd = fd;
	}
	ensure_bits(p);
	/* room for both runs' spans first: a run listed alone would be
	 * written again with the table */
	if (!buf_reserve(&p->runs, 2 * sizeof(struct span)) || !(order = malloc(p->used * sizeof(*order))))
		return nomem(e);
	for (n = 0; n < p->used; n++)
		order[n].pair = n;
	if (sort_pairs(p, order, n)) {
		free(order);
		return nomem(e);
	}
	split = halves_split(p, order, n, &first_max);
	h[0] = (struct run_half){ p, order, 0, split, p->bits, { p->file_end, 0 } };
	h[1] = (struct run_half){ p, order, split, n, p->bits_half, { p->file_end + first_max, 0 } };
	if (split < n)
		rc = bg_submit(p->bg, write_half, &h[1], e);
	if (!rc)
		rc = write_half(&h[0], e);
	if (split < n) {
		rc2 = bg_wait(p->bg, rc ? NULL : e);
		rc = rc ? rc : rc2;
	}
	for (int i = 0; i < 2 && !rc; i++)
		if (h[i].from < h[i].to) {
			buf_put(&p->runs, &h[i].at, sizeof(h[i].at));
			p->file_end = h[i].at.end;
		}
	if (!rc)
		empty(p);
	free(order);
	return rc;
}

/* Before the table fills: doubles it or, when that would pass the budget
 * (both tables are held while the pairs move), empties it into a run. */
static int make_room(struct postings *p, struct err *e)
{
	if (table_mem(p) + 2 * p->cap * sizeof(struct slot) > p->mem)
		return write_run(p, e);
	return grow(p) ? nomem(e) : 0;
}

/* The pair of the label spelled label[0..len) canonically, whose hash is h,
 * added if new; NULL out of memory. */
static struct pair *find(struct postings *p, uint64_t h, const uint8_t *label, size_t len, size_t name_len,
			 size_t value_len)
{
	uint32_t tag = (uint32_t)(h >> 32);
	struct pair *s;
	size_t i;

	for (i = h & (p->cap - 1); p->slots[i].pair; i = (i + 1) & (p->cap - 1)) {
		if (p->slots[i].tag != tag)
			continue;
		s = &p->pairs[p->slots[i].pair - 1];
		if (s->name_len == name_len && s->value_len == value_len &&
		    !memcmp(p->arena.p + s->label_off, label, len))
			return s;
	}
	if (p->used == p->pairs_cap) {
		size_t cap = p->pairs_cap ? p->pairs_cap + p->pairs_cap / 4 : SLOTS / 2;

		if (!(s = realloc(p->pairs, cap * sizeof(*s))))
			return NULL;
		p->pairs = s;
		p->pairs_cap = cap;
	}
	if (p->arena.cap - p->arena.len < len) {
		size_t cap = p->arena.cap + p->arena.cap / 4;
		uint8_t *a;

		if (cap < p->arena.len + len)
			cap = p->arena.len + len;
		if (cap < ARENA_MIN)
			cap = ARENA_MIN;
		if (!(a = realloc(p->arena.p, cap)))
			return NULL;
		p->arena.p = a;
		p->arena.cap = cap;
	}
	s = &p->pairs[p->used];
	memset(s, 0, sizeof(*s));
	s->label_off = (uint32_t)p->arena.len;
	s->name_len = (uint32_t)name_len;
	s->value_len = (uint32_t)value_len;
	memcpy(p->arena.p + p->arena.len, label, len);
	p->arena.len += len;
	p->slots[i].tag = tag;
	p->slots[i].pair = (uint32_t)++p->used;
	return s;
}

static uint64_t label_uvarint_slow(const uint8_t **q, const uint8_t *end)
{
	uint64_t v;
	int n = uvarint_get(*q, (size_t)(end - *q), &v);

	*q += n > 0 ? n : end - *q;
	return n > 0 ? v : 0;
}

/* A uvarint of a validated label set. */
static inline uint64_t label_uvarint(const uint8_t **q, const uint8_t *end)
{
	if (*q < end && **q < 0x80)
		return *(*q)++;
	return label_uvarint_slow(q, end);
}

int postings_hash_labels(const struct rec_label *ls, size_t n, uint64_t *hashes)
{
	for (size_t k = 0; k < n; k++) {
		const uint8_t *name = (const uint8_t *)ls[k].name;
		size_t name_len = ls[k].name_len, value_len = ls[k].value_len;

		/* one byte a length, as the label was decoded: a length under
		 * 0x80 spelled longer ends in a zero byte (and a name of none is
		 * not indexed) */
		if (name_len - 1 >= 0x7f || value_len >= 0x80 || name[-1] != name_len ||
		    (const uint8_t *)ls[k].value != name + name_len + 1)
			return 0;
		hashes[k] = label_hash(name - 1, name_len + value_len + 2);
	}
	return 1;
}

void postings_prefetch(const struct postings *p, const uint64_t *hashes, size_t n, int stage)
{
	size_t mask = p->cap - 1;

	for (size_t k = 0; k < n; k++) {
		uint64_t h = hashes[k];
		uint32_t tag = (uint32_t)(h >> 32);
		const struct slot *slot = &p->slots[h & mask];
		const struct pair *s;

		if (stage == 0) {
			__builtin_prefetch(slot);
			continue;
		}
		/* the first slot with the tag: almost always the label's */
		for (size_t i = h & mask; slot->pair && slot->tag != tag; i = (i + 1) & mask, slot = &p->slots[i])
			;
		if (!slot->pair || slot->pair > p->used)
			continue;
		s = &p->pairs[slot->pair - 1];
		if (stage == 1) {
			/* (a pair may straddle two cache lines) */
			__builtin_prefetch(s);
			__builtin_prefetch((const uint8_t *)(s + 1) - 1);
			continue;
		}
		__builtin_prefetch(p->arena.p + s->label_off);
		if (s->cap)
			__builtin_prefetch(s->refs.p + s->len, 1);
	}
}

/* Makes room for k more bytes of the pair's refs; -1 out of memory. */
static int grow_refs(struct postings *p, struct pair *s, size_t k)
{
	size_t cap;
	uint8_t *q;

	if (s->len + k <= refs_room(s))
		return 0;
	cap = s->cap ? s->cap + s->cap / 2 : REFS_OUT;
	if (cap < s->len + k)
		cap = s->len + k;
	if (cap > UINT32_MAX)
		return -1;
	if (s->cap) {
		q = realloc(s->refs.p, cap);
	} else if ((q = malloc(cap)) != NULL) {
		memcpy(q, s->refs.in, s->len);
		p->ref_mem += MALLOC_OVERHEAD;
	}
	if (!q)
		return -1;
	p->ref_mem += cap - s->cap;
	s->refs.p = q;
	s->cap = (uint32_t)cap;
	return 0;
}

/* Appends ref to the pair's refs; -1 out of memory. */
static inline int add_ref(struct postings *p, struct pair *s, uint64_t ref)
{
	if (s->len + UVARINT_MAX_LEN > refs_room(s) && grow_refs(p, s, uvarint_len(ref)))
		return -1;
	s->len += (uint32_t)uvarint_put((s->cap ? s->refs.p : s->refs.in) + s->len, ref);
	return 0;
}

int postings_add(struct postings *p, const struct rec_labels *ls, const uint64_t *hashes, uint64_t ref,
		 struct err *e)
{
	const uint8_t *q = ls->raw, *end = ls->raw + ls->raw_len;
	int rc;

	if (ref < p->ref_min || !p->ref_max)
		p->ref_min = ref;
	if (ref > p->ref_max)
		p->ref_max = ref;
	label_uvarint(&q, end);
	for (uint32_t k = 0; k < ls->count; k++) {
		const uint8_t *label = q, *name, *value;
		uint64_t name_len = label_uvarint(&q, end), value_len;
		struct pair *s;
		size_t len;

		name = q;
		q += name_len < (uint64_t)(end - q) ? name_len : (uint64_t)(end - q);
		value_len = label_uvarint(&q, end);
		value = q;
		if (value_len > (uint64_t)(end - q))
			return err_set(e, SNAPARC_CORRUPT, "a label set that was not decoded reached the postings");
		q += value_len;
		len = (size_t)(q - label);
		/* two one-byte lengths are minimal; longer ones may not be */
		if ((name_len >= 0x80 || value_len >= 0x80 || len != name_len + value_len + 2) &&
		    len != uvarint_len(name_len) + name_len + uvarint_len(value_len) + value_len) {
			/* lengths spelled with more bytes than they need: the
			 * arena's form, for this label to meet its other spellings */
			buf_reset(&p->canon);
			buf_put_uvarint_bytes(&p->canon, name, (size_t)name_len);
			buf_put_uvarint_bytes(&p->canon, value, (size_t)value_len);
			if (p->canon.oom)
				return nomem(e);
			label = p->canon.p;
			len = p->canon.len;
		}
		/* a pair's n and an arena's offset are 32 bits */
		if ((p->most_refs == UINT32_MAX || p->arena.len + len > UINT32_MAX) && (rc = write_run(p, e)))
			return rc;
		if (p->used >= p->grow_at && (rc = make_room(p, e)))
			return rc;
		if (!(s = find(p, hashes && label != p->canon.p ? hashes[k] : label_hash(label, len), label, len,
			       (size_t)name_len, (size_t)value_len)))
			return nomem(e);
		if (++s->n > p->most_refs)
			p->most_refs = s->n;
		if (add_ref(p, s, ref))
			return nomem(e);
	}
	return table_mem(p) > p->mem ? write_run(p, e) : 0;
}

/* ---- merging the runs ---- */

static int run_corrupt(const struct postings *p, const struct run *r, struct err *e)
{
	return err_set(e, SNAPARC_CORRUPT, "%s: temporary file: offset %llu: a postings run is malformed",
		       p->dir, (unsigned long long)(r->rd.off - (r->rd.len - r->rd.pos)));
}

static int run_uvarint_slow(const struct postings *p, struct run *r, uint64_t *v, struct err *e)
{
	int n, rc;

	if (r->rd.len - r->rd.pos < UVARINT_MAX_LEN && r->rd.off < r->rd.end && (rc = tmpfile_refill(&r->rd, e)))
		return rc;
	if ((n = uvarint_get(r->rd.buf + r->rd.pos, r->rd.len - r->rd.pos, v)) <= 0)
		return run_corrupt(p, r, e);
	r->rd.pos += (size_t)n;
	return 0;
}

/* Inline for the one- and two-byte deltas that most refs of a merged pair
 * are (two: refs of a run spread over 10M series). */
static inline int run_uvarint(const struct postings *p, struct run *r, uint64_t *v, struct err *e)
{
	const uint8_t *b = r->rd.buf + r->rd.pos;
	size_t left = r->rd.len - r->rd.pos;

	if (left && b[0] < 0x80) {
		*v = b[0];
		r->rd.pos++;
		return 0;
	}
	if (left >= 2 && b[1] < 0x80) {
		*v = (b[0] & 0x7fu) | (uint64_t)b[1] << 7;
		r->rd.pos += 2;
		return 0;
	}
	return run_uvarint_slow(p, r, v, e);
}

/* The run's next n bytes, into out. */
static int run_bytes(const struct postings *p, struct run *r, uint64_t n, struct buf *out, struct err *e)
{
	int rc;

	buf_reset(out);
	while (n) {
		size_t k = r->rd.len - r->rd.pos < n ? r->rd.len - r->rd.pos : (size_t)n;

		if (!k && r->rd.off == r->rd.end)
			return run_corrupt(p, r, e);
		if (!k && (rc = tmpfile_refill(&r->rd, e)))
			return rc;
		buf_put(out, r->rd.buf + r->rd.pos, k);
		r->rd.pos += k;
		n -= k;
	}
	return out->oom ? nomem(e) : 0;
}

/* For a run merged on another thread, read to where it is written: waits
 * until it is written further or ends. 1 (more of it), 0 (its end), or the
 * merge's failure. Where it is written to ends a pair. */
static int tail_more(struct run *r, struct err *e)
{
	struct tail *t = r->tail;
	int rc;

	pthread_mutex_lock(&t->mu);
	while (t->published == r->rd.end && !t->done)
		pthread_cond_wait(&t->cv, &t->mu);
	r->rd.end = t->published;
	rc = r->rd.off < r->rd.end ? 1 : t->rc;
	if (rc < 0 && e)
		*e = t->err;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* Reads the run's next pair up to its refs; at the run's end r->left is 0. */
static int run_next(const struct postings *p, struct run *r, struct err *e)
{
	uint64_t len;
	int rc;

	r->left = 0;
	if (r->rd.pos == r->rd.len && r->rd.off == r->rd.end && (!r->tail || (rc = tail_more(r, e)) <= 0))
		return r->tail ? rc : 0;
	if ((rc = run_uvarint(p, r, &len, e)))
		return rc;
	if (len) {
		if ((rc = run_bytes(p, r, len - 1, &r->name, e)))
			return rc;
		r->name_pre = prefix_of(&r->name);
	}
	if ((rc = run_uvarint(p, r, &len, e)) || (rc = run_bytes(p, r, len, &r->value, e)) ||
	    (rc = run_uvarint(p, r, &r->left, e)))
		return rc;
	r->value_pre = prefix_of(&r->value);
	return r->left ? 0 : run_corrupt(p, r, e);
}

static int prefix_cmp(struct prefix x, const struct buf *a, struct prefix y, const struct buf *b)
{
	if (x.hi != y.hi)
		return x.hi < y.hi ? -1 : 1;
	if (x.lo != y.lo)
		return x.lo < y.lo ? -1 : 1;
	if (a->len <= 16 && b->len <= 16)
		return (a->len > b->len) - (a->len < b->len);
	return bytes_cmp(a->p, a->len, b->p, b->len);
}

static inline int pair_less(const struct run *a, const struct run *b)
{
	int c = prefix_cmp(a->name_pre, &a->name, b->name_pre, &b->name);

	return (c ? c : prefix_cmp(a->value_pre, &a->value, b->value_pre, &b->value)) < 0;
}

static int ref_less(const struct run *a, const struct run *b)
{
	return a->ref < b->ref;
}

/* Binary min-heaps of runs; inline, for the compare to be inlined too:
 * merging refs runs one for every ref. */
static inline void sift_down(struct run **h, size_t n, size_t i, int (*less)(const struct run *, const struct run *))
{
	struct run *x = h[i];

	for (size_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && less(h[c + 1], h[c]))
			c++;
		if (!less(h[c], x))
			break;
		h[i] = h[c];
	}
	h[i] = x;
}

static inline void sift_up(struct run **h, size_t i, int (*less)(const struct run *, const struct run *))
{
	struct run *x = h[i];

	for (; i && less(x, h[(i - 1) / 2]); i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = x;
}

static void push(struct run **h, size_t *n, struct run *r)
{
	h[*n] = r;
	sift_up(h, (*n)++, pair_less);
}

/* merge_refs() for a pair with many refs: each run's set their bits, and
 * the bits give them back in order. A ref twice is taken once (the
 * snapshot fails the import then). */
static int merge_bits(struct postings *p, struct run **h, size_t m, struct buf *list, struct err *e)
{
	struct bits_span span = { UINT64_MAX, 0 };
	uint64_t delta;
	int rc;

	for (size_t i = 0; i < m; i++) {
		struct run *r = h[i];

		for (;;) {
			if (bits_set(p, p->bits, r->ref, &span)) {
				rc = run_corrupt(p, r, e);
				goto fail;
			}
			if (!--r->left)
				break;
			if ((rc = run_uvarint(p, r, &delta, e)))
				goto fail;
			r->ref += delta;
		}
	}
	buf_reset(list);
	bits_take(p, p->bits, span, list);
	return list->oom ? nomem(e) : 0;
fail:
	/* clear for a commit that merges again */
	bits_clear(p, p->bits);
	return rc;
}

/* merge_refs() of a pair one run holds: its list as the run spells it,
 * which is how idx_postings_put() takes it, copied whole. */
static int copy_refs(const struct postings *p, struct run *r, struct buf *list, struct err *e)
{
	uint64_t left = r->left;
	unsigned more = 0;   /* bytes of the uvarint being copied so far */
	int rc;

	buf_reset(list);
	buf_put_uvarint(list, left);
	while (left) {
		const uint8_t *q, *end, *from;

		if (r->rd.pos == r->rd.len && (r->rd.off == r->rd.end || (rc = tmpfile_refill(&r->rd, e))))
			return r->rd.off == r->rd.end ? run_corrupt(p, r, e) : rc;
		from = q = r->rd.buf + r->rd.pos;
		end = r->rd.buf + r->rd.len;
		for (; q < end && left; q++) {
			if (*q < 0x80) {
				left--;
				more = 0;
			} else if (++more == UVARINT_MAX_LEN) {
				return run_corrupt(p, r, e);
			}
		}
		buf_put(list, from, (size_t)(q - from));
		r->rd.pos = (size_t)(q - r->rd.buf);
	}
	r->left = 0;
	return list->oom ? nomem(e) : 0;
}

/* A pair's refs from up to this many in all are merged by sorting them
 * together (merge_sorted()), more through a heap. */
#define SORTED_REFS_MAX (1u << 16)

/* merge_refs() for a pair with few refs: each run's read into one array,
 * sorted (sort_by_u64_key(): one pass when they are in order already).
 * Most such pairs are on a series or two a run (a pod's, spread over the
 * snapshot): a heap took a sift a ref through a hundred runs. */
static int merge_sorted(struct postings *p, struct run **h, size_t m, uint64_t n, struct buf *list,
			struct buf *refs, struct err *e)
{
	uint64_t *v, last = 0, delta;
	size_t k = 0;
	int rc;

	buf_reset(refs);
	if (!buf_reserve(refs, n * sizeof(*v)))
		return nomem(e);
	v = (uint64_t *)(void *)refs->p;
	for (size_t i = 0; i < m; i++) {
		struct run *r = h[i];

		v[k++] = r->ref;
		while (--r->left) {
			if ((rc = run_uvarint(p, r, &delta, e)))
				return rc;
			r->ref += delta;
			v[k++] = r->ref;
		}
	}
	if (sort_by_u64_key(v, n, sizeof(*v)))
		return nomem(e);
	buf_reset(list);
	buf_reserve(list, UVARINT_MAX_LEN + n);
	buf_put_uvarint(list, n);
	for (size_t i = 0; i < n; i++) {
		buf_put_uvarint(list, v[i] - last);
		last = v[i];
	}
	return list->oom ? nomem(e) : 0;
}

/* The refs of the m runs' current pair (each run's sorted), merged into
 * list as idx_postings_put() takes it; refs is scratch space. */
static int merge_refs(struct postings *p, struct run **h, size_t m, struct buf *list, struct buf *refs,
		      struct err *e)
{
	uint64_t n = 0, last = 0, lo = UINT64_MAX, delta;
	int rc;

	if (m == 1)
		return copy_refs(p, h[0], list, e);
	for (size_t i = 0; i < m; i++) {
		n += h[i]->left;
		if ((rc = run_uvarint(p, h[i], &h[i]->ref, e)))
			return rc;
		lo = h[i]->ref < lo ? h[i]->ref : lo;
	}
	/* dense enough that scanning the bits of every ref costs less than
	 * taking the refs one by one */
	if (dense(p, lo, n))
		return merge_bits(p, h, m, list, e);
	if (n <= SORTED_REFS_MAX)
		return merge_sorted(p, h, m, n, list, refs, e);
	for (size_t i = 1; i < m; i++)
		sift_up(h, i, ref_less);
	buf_reset(list);
	/* a byte a ref is what dense refs take: most lists grow no further */
	buf_reserve(list, UVARINT_MAX_LEN + n);
	buf_put_uvarint(list, n);
	while (m) {
		struct run *r = h[0];

		buf_put_uvarint(list, r->ref - last);
		last = r->ref;
		if (--r->left) {
			if ((rc = run_uvarint(p, r, &delta, e)))
				return rc;
			r->ref += delta;
		} else {
			/* kept past the heap: the caller goes on with all m */
			h[0] = h[--m];
			h[m] = r;
		}
		sift_down(h, m, 0, ref_less);
	}
	return list->oom ? nomem(e) : 0;
}

/* Opens the k runs, each at its first pair, into the heap. */
static int open_runs(const struct postings *p, const struct span *spans, struct tail *tail, struct run *runs,
		     size_t k, struct run **heap, size_t *heaped, struct err *e)
{
	/* a run's share of the budget, within RUN_BUF_MIN and RUN_BUF */
	size_t cap = p->mem / k < RUN_BUF_MIN ? RUN_BUF_MIN : p->mem / k < RUN_BUF ? p->mem / k : RUN_BUF;
	int rc = 0;

	for (size_t i = 0; i < k && !rc; i++) {
		struct run *r = &runs[i];

		r->rd.fd = p->fd;
		r->rd.dir = p->dir;
		r->rd.off = spans[i].start;
		r->rd.end = spans[i].end;
		r->rd.cap = cap;
		r->tail = tail;
		/* (name and value never NULL: compared and passed on even when empty) */
		if (!(r->rd.buf = malloc(cap)) || !buf_reserve(&r->name, 64) || !buf_reserve(&r->value, 64))
			rc = nomem(e);
		else if (!(rc = run_next(p, r, e)) && r->left)
			push(heap, heaped, r);
	}
	return rc;
}

/* Called with each pair of the merged runs in (name, value) order, its refs
 * as a list idx_postings_put() takes; non-zero stops the merge. */
typedef int (*emit_fn)(void *ctx, const struct run *key, const struct buf *list, struct err *e);

/* Merges the k runs at spans, giving each pair to emit. With a tail, the
 * one run being merged on another thread (a lone run needs no bits, which
 * that merge is using). */
static int merge_runs(struct postings *p, const struct span *spans, size_t k, struct tail *tail, emit_fn emit,
		      void *ctx, struct err *e)
{
	size_t heaped = 0;
	struct buf list = { 0 }, refs = { 0 };
	struct run *runs = NULL, **heap = NULL;
	int rc;

	if (!k)
		return 0;
	runs = calloc(k, sizeof(*runs));
	heap = malloc(2 * k * sizeof(*heap));
	if (k > 1)
		ensure_bits(p);
	rc = runs && heap ? open_runs(p, spans, tail, runs, k, heap, &heaped, e) : nomem(e);
	while (heaped && !rc) {
		struct run **same = heap + k;   /* the runs that hold the next pair */
		size_t m = 0;

		do {
			same[m++] = heap[0];
			heap[0] = heap[--heaped];
			sift_down(heap, heaped, 0, pair_less);
		} while (heaped && !pair_less(same[0], heap[0]));
		if (!(rc = merge_refs(p, same, m, &list, &refs, e)))
			rc = emit(ctx, same[0], &list, e);
		for (size_t i = 0; i < m && !rc; i++)
			if (!(rc = run_next(p, same[i], e)) && same[i]->left)
				push(heap, &heaped, same[i]);
	}
	for (size_t i = 0; runs && i < k; i++) {
		free(runs[i].rd.buf);
		buf_free(&runs[i].name);
		buf_free(&runs[i].value);
	}
	free(runs);
	free(heap);
	buf_free(&list);
	buf_free(&refs);
	return rc;
}

/* Merging into one run at the file's end. */
struct run_writer {
	struct postings *p;
	struct buf out, name;
	uint64_t off;
	int named;
};

/* A pair's end written: postings_write() may read to there. */
static int flush_published(struct postings *p, struct buf *out, uint64_t *off, struct err *e)
{
	int rc = flush(p, out, off, e);

	if (!rc) {
		pthread_mutex_lock(&p->tail.mu);
		p->tail.published = *off;
		pthread_cond_broadcast(&p->tail.cv);
		pthread_mutex_unlock(&p->tail.mu);
	}
	return rc;
}

static int emit_run(void *ctx, const struct run *key, const struct buf *list, struct err *e)
{
	struct run_writer *w = ctx;

	int same = w->named && !bytes_cmp(w->name.p, w->name.len, key->name.p, key->name.len);

	put_key(&w->out, same, key->name.p, key->name.len, key->value.p, key->value.len);
	if (!same) {
		buf_reset(&w->name);
		buf_put(&w->name, key->name.p, key->name.len);
		w->named = 1;
	}
	buf_put(&w->out, list->p, list->len);
	if (w->name.oom)
		return nomem(e);
	return w->out.len >= RUN_BUF ? flush_published(w->p, &w->out, &w->off, e) : 0;
}

/* The flush's state as postings_write() waits on it. */
static void tail_set(struct postings *p, int merging, int done, int rc, const struct err *e)
{
	pthread_mutex_lock(&p->tail.mu);
	p->tail.ready = 1;
	p->tail.merging |= merging;
	p->tail.done = done;
	p->tail.rc = rc;
	if (rc < 0 && e)
		p->tail.err = *e;
	pthread_cond_broadcast(&p->tail.cv);
	pthread_mutex_unlock(&p->tail.mu);
}

void postings_flush_announce(struct postings *p)
{
	pthread_mutex_lock(&p->tail.mu);
	p->tail.announced = 1;
	pthread_mutex_unlock(&p->tail.mu);
}

int postings_flush(struct postings *p, struct err *e)
{
	struct run_writer w = { .p = p };
	struct span merged;
	size_t k = 0;
	int rc;

	if (!(rc = write_run(p, e))) {
		release(p);
		k = p->runs.len / sizeof(struct span);
	}
	if (rc || k < 2) {
		tail_set(p, 0, 1, rc, e);
		return rc;
	}
	/* the runs as one after them, which postings_write() reads alone, as
	 * it is written */
	merged.start = w.off = p->tail.start = p->tail.published = p->file_end;
	tail_set(p, 1, 0, 0, NULL);
	if (!(rc = merge_runs(p, (const struct span *)(const void *)p->runs.p, k, NULL, emit_run, &w, e)))
		rc = flush_published(p, &w.out, &w.off, e);
	if (!rc) {
		merged.end = w.off;
		/* (the list had room for two) */
		buf_reset(&p->runs);
		buf_put(&p->runs, &merged, sizeof(merged));
		p->file_end = w.off;
	}
	tail_set(p, 1, 1, rc, e);
	buf_free(&w.out);
	buf_free(&w.name);
	return rc;
}

/* Writing into the index, a block of values a name at a time. */
struct index_writer {
	struct idx_txn *t;
	uint32_t snap;
	struct idx_postings_block blk;
	struct buf name;
	int named;
};

static int emit_index(void *ctx, const struct run *key, const struct buf *list, struct err *e)
{
	struct index_writer *w = ctx;
	struct idx_posting v = { (const char *)key->value.p, key->value.len, list->p, list->len };
	int rc = 0;

	/* a new name: the last one's last block first */
	if (w->named && bytes_cmp(w->name.p, w->name.len, key->name.p, key->name.len)) {
		rc = idx_postings_put(w->t, w->snap, (const char *)w->name.p, w->name.len, &w->blk, NULL, 0, 1, e);
		w->named = 0;
	}
	if (!rc && !w->named) {
		buf_reset(&w->name);
		buf_put(&w->name, key->name.p, key->name.len);
		memset(&w->blk, 0, sizeof(w->blk));
		w->named = 1;
		rc = w->name.oom ? nomem(e) : 0;
	}
	return rc ? rc : idx_postings_put(w->t, w->snap, (const char *)w->name.p, w->name.len, &w->blk, &v, 1, 0, e);
}

int postings_write(struct postings *p, struct idx_txn *t, uint32_t snap, struct err *e)
{
	struct index_writer w = { .t = t, .snap = snap };
	struct span merged;
	int rc = 0, merging = 0;

	/* a flush on another thread: wait for it to write the table out, then
	 * follow its merge, or take its failure */
	pthread_mutex_lock(&p->tail.mu);
	while (p->tail.announced && !p->tail.ready)
		pthread_cond_wait(&p->tail.cv, &p->tail.mu);
	if (p->tail.announced && p->tail.done && p->tail.rc < 0) {
		rc = p->tail.rc;
		*e = p->tail.err;
	}
	merging = p->tail.merging;
	merged = (struct span){ p->tail.start, p->tail.published };
	pthread_mutex_unlock(&p->tail.mu);
	if (rc)
		return rc;
	if (merging)
		rc = merge_runs(p, &merged, 1, &p->tail, emit_index, &w, e);
	else if (!(rc = write_run(p, e)))
		release(p);
	if (!merging && !rc)
		rc = merge_runs(p, (const struct span *)(const void *)p->runs.p, p->runs.len / sizeof(struct span),
				NULL, emit_index, &w, e);
	if (rc)
		goto out;
	if (w.named)
		rc = idx_postings_put(t, snap, (const char *)w.name.p, w.name.len, &w.blk, NULL, 0, 1, e);
out:
	buf_free(&w.name);
	return rc;
}
