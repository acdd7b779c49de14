/*
 * An open-addressing hash table of distinct name=value pairs; each holds
 * its series' refs as uvarints in the order they came (a snapshot's order
 * is not by ref). At commit each list is decoded, sorted and written.
 * Memory is the distinct pairs plus about 3 bytes per label of every series.
 */
#include "postings.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "bytes.h"
#include "sort.h"

struct pair {
	uint64_t hash;
	size_t name_off, value_off;   /* in the arena */
	uint32_t name_len, value_len;
	uint64_t first;               /* the first ref, kept here: most values have one series */
	struct buf refs;              /* the others as uvarints, arrival order */
};

#define RECENT 16

struct postings {
	struct pair *slots;
	size_t cap, used;
	struct buf arena;
	/* the pairs of the last series, by label position: neighbours share
	 * most labels (job, namespace, instance ...), and a compare is cheaper
	 * than a hash and a probe */
	size_t recent[RECENT];    /* slot + 1, 0 for none */
};

int postings_new(struct postings **out, struct err *e)
{
	struct postings *p = calloc(1, sizeof(*p));

	if (!p || !(p->slots = calloc(1024, sizeof(*p->slots)))) {
		free(p);
		return err_set(e, SNAPARC_NOMEM, "out of memory for label postings");
	}
	p->cap = 1024;
	*out = p;
	return 0;
}

void postings_free(struct postings *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->cap; i++)
		buf_free(&p->slots[i].refs);
	free(p->slots);
	buf_free(&p->arena);
	free(p);
}

static uint64_t pair_hash(const struct rec_label *l)
{
	/* name and value, separated as labels.Hash does, never 0 (empty slot) */
	XXH64_hash_t h = XXH64(l->name, l->name_len, 0x9e3779b97f4a7c15ull);

	h = XXH64(l->value, l->value_len, h);
	return h ? h : 1;
}

static int grow(struct postings *p)
{
	size_t cap = p->cap * 2;
	struct pair *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < p->cap; i++) {
		size_t j;

		if (!p->slots[i].hash)
			continue;
		for (j = p->slots[i].hash & (cap - 1); slots[j].hash; j = (j + 1) & (cap - 1))
			;
		slots[j] = p->slots[i];
	}
	free(p->slots);
	p->slots = slots;
	p->cap = cap;
	memset(p->recent, 0, sizeof(p->recent));
	return 0;
}

static struct pair *find(struct postings *p, const struct rec_label *l)
{
	uint64_t h = pair_hash(l);
	size_t i;

	for (i = h & (p->cap - 1); p->slots[i].hash; i = (i + 1) & (p->cap - 1)) {
		struct pair *s = &p->slots[i];

		if (s->hash == h && s->name_len == l->name_len && s->value_len == l->value_len &&
		    !memcmp(p->arena.p + s->name_off, l->name, l->name_len) &&
		    !memcmp(p->arena.p + s->value_off, l->value, l->value_len))
			return s;
	}
	p->slots[i].hash = h;
	p->slots[i].name_off = p->arena.len;
	p->slots[i].name_len = (uint32_t)l->name_len;
	buf_put(&p->arena, l->name, l->name_len);
	p->slots[i].value_off = p->arena.len;
	p->slots[i].value_len = (uint32_t)l->value_len;
	buf_put(&p->arena, l->value, l->value_len);
	p->used++;
	return &p->slots[i];
}

static int same(const struct postings *p, const struct pair *s, const struct rec_label *l)
{
	return s->name_len == l->name_len && s->value_len == l->value_len &&
	       !memcmp(p->arena.p + s->value_off, l->value, l->value_len) &&
	       !memcmp(p->arena.p + s->name_off, l->name, l->name_len);
}

int postings_add(struct postings *p, const struct rec_labels *ls, uint64_t ref, struct err *e)
{
	struct rec_label_iter it;
	struct rec_label l;
	size_t pos = 0;

	rec_labels_iter(&it, ls);
	while (rec_labels_next(&it, &l)) {
		struct pair *s;

		if (pos < RECENT && p->recent[pos] && same(p, &p->slots[p->recent[pos] - 1], &l)) {
			s = &p->slots[p->recent[pos] - 1];
		} else {
			if (p->used * 2 >= p->cap && grow(p))
				return err_set(e, SNAPARC_NOMEM, "out of memory for label postings");
			s = find(p, &l);
			if (pos < RECENT)
				p->recent[pos] = (size_t)(s - p->slots) + 1;
		}
		pos++;
		if (!s->first) {
			s->first = ref + 1;
			continue;
		}
		buf_put_uvarint(&s->refs, ref);
		if (s->refs.oom || p->arena.oom)
			return err_set(e, SNAPARC_NOMEM, "out of memory for label postings");
	}
	return 0;
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : (al > bl) - (al < bl);
}

static int cmp_name_value(const void *a, const void *b, void *arena_p)
{
	const struct pair *x = *(const struct pair *const *)a, *y = *(const struct pair *const *)b;
	const uint8_t *arena = arena_p;
	int c = bytes_cmp(arena + x->name_off, x->name_len, arena + y->name_off, y->name_len);

	return c ? c : bytes_cmp(arena + x->value_off, x->value_len, arena + y->value_off, y->value_len);
}

/* The sorted refs of one pair, appended to refs. */
static int pair_refs(const struct pair *s, struct buf *refs, struct err *e)
{
	size_t start = refs->len;
	uint64_t first = s->first - 1;
	struct dec d;

	buf_put(refs, &first, sizeof(first));
	dec_init(&d, s->refs.p, s->refs.len);
	while (dec_left(&d)) {
		uint64_t ref = dec_uvarint(&d, "ref");

		buf_put(refs, &ref, sizeof(ref));
	}
	if (refs->oom || sort_by_u64_key(refs->p + start, (refs->len - start) / 8, 8))
		return err_set(e, SNAPARC_NOMEM, "out of memory writing label postings");
	return 0;
}

int postings_write(struct postings *p, struct idx_txn *t, uint32_t snap, struct err *e)
{
	struct pair **order = malloc((p->used + 1) * sizeof(*order));
	struct idx_posting *vals = malloc((p->used + 1) * sizeof(*vals));
	struct buf refs = { 0 };
	size_t n = 0;
	int rc = 0;

	if (!order || !vals) {
		free(order);
		free(vals);
		return err_set(e, SNAPARC_NOMEM, "out of memory writing label postings");
	}
	for (size_t i = 0; i < p->cap; i++)
		if (p->slots[i].hash)
			order[n++] = &p->slots[i];
	qsort_r(order, n, sizeof(*order), cmp_name_value, p->arena.p);
	/* one label name at a time: its values in order, with their refs */
	for (size_t i = 0, j; i < n && !rc; i = j) {
		buf_reset(&refs);
		for (j = i; j < n && !rc && order[j]->name_len == order[i]->name_len &&
			    !memcmp(p->arena.p + order[j]->name_off, p->arena.p + order[i]->name_off, order[i]->name_len); j++) {
			vals[j - i].value = (const char *)p->arena.p + order[j]->value_off;
			vals[j - i].len = order[j]->value_len;
			vals[j - i].n = refs.len; /* an offset until refs stops moving */
			rc = pair_refs(order[j], &refs, e);
		}
		for (size_t k = i; k < j && !rc; k++) {
			size_t off = vals[k - i].n, end = k + 1 < j ? vals[k + 1 - i].n : refs.len;

			vals[k - i].refs = (const uint64_t *)(refs.p + off);
			vals[k - i].n = (end - off) / sizeof(uint64_t);
		}
		if (!rc)
			rc = idx_postings_put(t, snap, (const char *)p->arena.p + order[i]->name_off, order[i]->name_len,
					      vals, j - i, e);
	}
	free(order);
	free(vals);
	buf_free(&refs);
	return rc;
}
