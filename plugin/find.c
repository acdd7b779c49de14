/*
 * Selecting series of a snapshot with a PromQL selector, from the label
 * postings (never by scanning the snapshot's records):
 *
 * - a matcher that the empty value fails ("positive": job="api", path=~"/v1/.*")
 *   selects the union of the postings of the values it matches; one that
 *   the empty value satisfies ("negative": code!="200", x="") removes the
 *   series whose value it fails, as Prometheus' PostingsForMatchers does;
 * - the smallest positive set is read first; once the candidates are few,
 *   the rest is decided on the records themselves, which are read anyway;
 * - every answer is checked against its record's labels, so values the
 *   index keeps only a prefix of, and regexes, are decided exactly.
 *
 * Memory: the postings of the matched values and the answer.
 */
#include "archive_int.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "select.h"

#define FEW 256   /* candidates checked on their records rather than intersected further */

struct collect {
	const struct select_matcher *m;
	int want_match;         /* collect values the matcher matches (1) or fails (0) */
	int count_only;
	uint64_t count;         /* sum of the lists' lengths */
	struct buf *refs;       /* uint64_t, unsorted union */
	int rc;
	struct err *e;
};

static int on_value(void *ctx, const char *value, size_t len, const uint64_t *hash, const uint8_t *list,
		    size_t list_len)
{
	struct collect *c = ctx;
	int match;

	/* Undecided here (a long value the index keeps a prefix of, under a
	 * regex; or a regex PCRE2 gave up on) counts as a match: it joins a
	 * positive matcher's candidates and stays out of a negative matcher's
	 * drop set, and its record decides. */
	if (hash && (c->m->op == SELECT_EQ || c->m->op == SELECT_NE))
		match = (XXH64(c->m->value, c->m->value_len, 0) == *hash) == (c->m->op == SELECT_EQ);
	else if (hash)
		match = 1;
	else if ((match = select_matcher_matches(c->m, value, len)) < 0)
		match = 1;
	if (match != c->want_match)
		return 0;
	if (c->count_only) {
		struct dec d;

		dec_init(&d, list, list_len);
		c->count += dec_uvarint(&d, "count");
		return 0;
	}
	if ((c->rc = idx_postings_decode(list, list_len, c->refs, c->e)))
		return 1;
	return 0;
}

/* Visits the values the matcher needs: its literals, its prefix, or all. */
static int visit(struct idx_txn *t, uint32_t snap, struct collect *c, struct err *e)
{
	const struct select_matcher *m = c->m;
	const struct select_literal *lits;
	const char *prefix = "";
	size_t n, plen;
	int exact, rc;

	if (m->op == SELECT_EQ || m->op == SELECT_NE) {
		rc = idx_postings_scan(t, snap, m->name, m->name_len, m->value,
				       m->value_len < IDX_POSTING_VALUE_MAX ? m->value_len : IDX_POSTING_VALUE_MAX,
				       on_value, c, e);
		return rc ? rc : c->rc;
	}
	if ((n = select_matcher_literals(m, &lits)) > 0) {
		for (size_t i = 0; i < n; i++) {
			rc = idx_postings_scan(t, snap, m->name, m->name_len, lits[i].value,
					       lits[i].len < IDX_POSTING_VALUE_MAX ? lits[i].len : IDX_POSTING_VALUE_MAX,
					       on_value, c, e);
			if (rc || c->rc)
				return rc ? rc : c->rc;
		}
		return 0;
	}
	if (!select_matcher_prefix(m, &prefix, &plen, &exact))
		plen = 0;
	if (plen > IDX_POSTING_VALUE_MAX) /* the index keeps that much of a value */
		plen = IDX_POSTING_VALUE_MAX;
	rc = idx_postings_scan(t, snap, m->name, m->name_len, prefix, plen, on_value, c, e);
	return rc ? rc : c->rc;
}

static void dedup_sorted(struct buf *b)
{
	uint64_t *r = (uint64_t *)b->p;
	size_t n = b->len / 8, k = 0;

	for (size_t i = 0; i < n; i++)
		if (!k || r[i] != r[k - 1])
			r[k++] = r[i];
	b->len = k * 8;
}

/* a := a AND b (keep = 1) or a AND NOT b (keep = 0); both sorted. */
static void merge(struct buf *a, const struct buf *b, int keep)
{
	uint64_t *x = (uint64_t *)a->p;
	const uint64_t *y = (const uint64_t *)b->p;
	size_t nx = a->len / 8, ny = b->len / 8, i = 0, j = 0, k = 0;

	while (i < nx) {
		while (j < ny && y[j] < x[i])
			j++;
		if ((j < ny && y[j] == x[i]) == keep)
			x[k++] = x[i];
		i++;
	}
	a->len = k * 8;
}

static int matcher_set(struct idx_txn *t, uint32_t snap, const struct select_matcher *m, int want, struct buf *out,
		       struct err *e)
{
	struct collect c = { .m = m, .want_match = want, .refs = out, .e = e };
	int rc = visit(t, snap, &c, e);

	if (rc)
		return rc;
	if (sort_by_u64_key(out->p, out->len / 8, 8))
		return err_set(e, SNAPARC_NOMEM, "out of memory selecting series");
	dedup_sorted(out);
	return 0;
}

/* Keeps the candidates whose stored labels the selector matches, handing
 * each to fn (when there is one) as read for the check. A damaged record
 * does not stop the others: they are served, and the call then fails with
 * SNAPARC_CORRUPT naming the first damaged one. */
static int check_records(struct archive *a, struct idx_txn *t, uint32_t snap, const struct select *s,
			 struct buf *refs, archive_series_fn fn, void *ctx, struct err *e)
{
	struct archive_series cur = { 0 };
	uint64_t *r = (uint64_t *)refs->p;
	size_t n = refs->len / 8, k = 0;
	uint64_t damaged = 0;
	struct err first = { 0 };
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		struct idx_loc loc;
		int m;

		rc = idx_series_get(t, snap, r[i], &loc, e);
		if (rc == SNAPARC_NOT_FOUND)
			rc = err_set(e, SNAPARC_CORRUPT, "%s/index/data.mdb: snapshot %u: the postings name ref %llu, which is not indexed",
				     a->path, snap, (unsigned long long)r[i]);
		if (!rc)
			rc = archive_read_record(a, t, snap, &loc, &cur, e);
		if (rc == SNAPARC_CORRUPT) {
			if (damaged++ == 0 && e)
				first = *e;
			rc = 0;
			continue;
		}
		if (rc)
			break;
		m = select_matches(s, &cur.series.labels);
		if (m < 0) {
			rc = err_set(e, m, "ref %llu: the selector's regular expression could not be decided",
				     (unsigned long long)r[i]);
		} else if (m) {
			r[k++] = r[i];
			if (fn && !(rc = archive_read_side(a, t, &cur, e)))
				rc = fn(ctx, &cur);
		}
	}
	refs->len = k * 8;
	archive_series_free(&cur);
	if (!rc && damaged == 1)
		rc = err_set(e, SNAPARC_CORRUPT, "%s", first.msg);
	else if (!rc && damaged)
		rc = err_set(e, SNAPARC_CORRUPT, "%s (and %llu more damaged series)", first.msg,
			     (unsigned long long)damaged - 1);
	return rc;
}

int archive_select(struct archive *a, uint32_t snap, const struct select *s, struct buf *refs,
		   archive_series_fn fn, void *ctx, struct err *e)
{
	size_t n = select_count(s), best = SIZE_MAX;
	uint64_t best_count = UINT64_MAX;
	struct buf other = { 0 };
	struct idx_txn *t;
	int rc;

	buf_reset(refs);
	if ((rc = archive_read_txn(a, &t, e)))
		return rc;
	/* the smallest positive matcher first */
	for (size_t i = 0; i < n && !rc; i++) {
		const struct select_matcher *m = select_matcher(s, i);
		struct collect c = { .m = m, .want_match = 1, .count_only = 1, .e = e };

		if (select_matcher_matches_empty(m))
			continue;
		rc = visit(t, snap, &c, e);
		if (!rc && c.count < best_count) {
			best_count = c.count;
			best = i;
		}
	}
	if (!rc && best == SIZE_MAX)
		rc = err_set(e, SNAPARC_INVALID, "the selector has no matcher that the empty value fails");
	if (!rc)
		rc = matcher_set(t, snap, select_matcher(s, best), 1, refs, e);
	for (size_t i = 0; i < n && !rc && refs->len / 8 > FEW; i++) {
		const struct select_matcher *m = select_matcher(s, i);
		int positive = !select_matcher_matches_empty(m);

		if (i == best)
			continue;
		buf_reset(&other);
		/* positive: keep those it matches; negative: drop those that carry
		 * the label with a value it fails */
		if (!(rc = matcher_set(t, snap, m, positive, &other, e)))
			merge(refs, &other, positive);
	}
	if (!rc)
		rc = check_records(a, t, snap, s, refs, fn, ctx, e);
	archive_read_done(a, t);
	buf_free(&other);
	return rc;
}

int archive_history(struct archive *a, const struct rec_label *ls, size_t n, archive_history_fn fn, void *ctx,
		    struct err *e)
{
	struct archive_series s = { 0 };
	struct idx_snapshot snap;
	uint32_t before = UINT32_MAX;
	int rc;

	/* newest first: the catalog from the end */
	for (;;) {
		struct idx_txn *t;
		uint32_t id = 0;

		if ((rc = archive_read_txn(a, &t, e)))
			break;
		rc = before == UINT32_MAX ? idx_snapshot_last(t, &snap, e) : idx_snapshot_prev(t, before, &snap, e);
		archive_read_done(a, t);
		if (rc == SNAPARC_NOT_FOUND) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		id = snap.id;
		before = id;
		rc = archive_read_labels(a, id, ls, n, &s, e);
		if (rc == SNAPARC_NOT_FOUND)
			continue;
		if (rc || (rc = fn(ctx, &snap, &s)))
			break;
	}
	archive_series_free(&s);
	return rc;
}
