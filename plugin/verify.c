/*
 * Verifying an archive: every value of the index is read and its checksum
 * checked; every snapshot's stored records are read back from its range of
 * the segments and checked against what the index says; a compacted
 * snapshot's entries that point at records it shares with earlier snapshots
 * are read and checked too. Deep, each series' samples are decoded and its
 * label hash and postings must find it.
 */
#include "archive_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "wal.h"
#include "xor.h"

struct verify {
	struct archive *a;
	unsigned flags;
	archive_problem_fn fn;
	void *ctx;
	uint64_t problems;
	int stop;
	uint64_t index_fails;   /* records of this snapshot a damaged index value kept from being read */
	struct buf refs;        /* uint64_t: a postings list */
};

__attribute__((format(printf, 3, 4)))
static void problem(struct verify *v, int status, const char *fmt, ...)
{
	char msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->fn && v->fn(v->ctx, status, msg))
		v->stop = 1;
}

/* An XOR chunk's samples: as many as its header says, from mint to maxt,
 * ending in the value the record keeps. */
static int deep_samples(const struct rec_series *rs, struct err *e)
{
	struct xor_iter it;
	int64_t t, first = 0, last = 0;
	uint64_t vbits, lastv = 0;
	uint32_t n = 0;
	int rc;

	if (!rs->has_chunk || rs->encoding != CHUNK_XOR)
		return 0;
	xor_iter_init(&it, rs->chunk, rs->chunk_len);
	while ((rc = xor_iter_next(&it, &t, &vbits)) == 1) {
		if (n++ == 0)
			first = t;
		last = t;
		lastv = vbits;
	}
	if (rc < 0) {
		char why[160];

		xor_iter_describe(&it, why, sizeof(why));
		return err_set(e, SNAPARC_CORRUPT, "series ref %llu: XOR chunk: %s", (unsigned long long)rs->ref, why);
	}
	if (n && (first != rs->mint || last != rs->maxt))
		return err_set(e, SNAPARC_CORRUPT, "series ref %llu: the chunk's samples run from %lld to %lld, the record says %lld to %lld",
			       (unsigned long long)rs->ref, (long long)first, (long long)last, (long long)rs->mint,
			       (long long)rs->maxt);
	if (n && rs->tail && lastv != rs->last_value)
		return err_set(e, SNAPARC_CORRUPT, "series ref %llu: the chunk's last value is %016llx, the record keeps %016llx",
			       (unsigned long long)rs->ref, (unsigned long long)lastv,
			       (unsigned long long)rs->last_value);
	return 0;
}

struct posting_want {
	struct verify *v;
	const struct rec_label *l;
	uint64_t ref;
	int found, rc;
	struct err *e;
};

static int posting_has(void *ctx, const char *value, size_t len, const uint64_t *hash, const uint8_t *list,
		       size_t list_len)
{
	struct posting_want *w = ctx;
	struct buf *refs = &w->v->refs;

	if (hash ? *hash != XXH64(w->l->value, w->l->value_len, 0)
		 : len != w->l->value_len || memcmp(value, w->l->value, len))
		return 0;
	buf_reset(refs);
	if ((w->rc = idx_postings_decode(list, list_len, refs, w->e)))
		return 1;
	for (size_t i = 0; i < refs->len / sizeof(uint64_t); i++)
		if (((const uint64_t *)(const void *)refs->p)[i] == w->ref)
			w->found = 1;
	return 1;
}

/* The label index finds the series: through its hash, and through the
 * postings of each of its labels. */
static int deep_labels(struct verify *v, struct idx_txn *t, uint32_t snap, const struct rec_series *rs,
		       struct err *e)
{
	uint64_t refs[64];
	size_t n = 0;
	struct rec_label_iter it;
	struct rec_label l;
	int rc, found = 0;

	if ((rc = idx_hash_find(t, snap, rec_labels_hash(&rs->labels), refs, 64, &n, e)))
		return rc;
	for (size_t i = 0; i < n && i < 64; i++)
		found |= refs[i] == rs->ref;
	if (!found && n <= 64)
		return err_set(e, SNAPARC_CORRUPT, "series ref %llu: its label hash does not find it",
			       (unsigned long long)rs->ref);
	rec_labels_iter(&it, &rs->labels);
	while ((rc = rec_labels_next(&it, &l)) == 1) {
		struct posting_want w = { v, &l, rs->ref, 0, 0, e };
		size_t prefix = l.value_len < IDX_POSTING_VALUE_MAX ? l.value_len : IDX_POSTING_VALUE_MAX;

		if ((rc = idx_postings_scan(t, snap, l.name, l.name_len, l.value, prefix, posting_has, &w, e)))
			return rc;
		if (w.rc)
			return w.rc;
		if (!w.found)
			return err_set(e, SNAPARC_CORRUPT, "series ref %llu: the postings of %.*s=\"%.*s\" do not hold it",
				       (unsigned long long)rs->ref, (int)(l.name_len < 100 ? l.name_len : 100), l.name,
				       (int)(l.value_len < 100 ? l.value_len : 100), l.value);
	}
	return 0;
}

static int deep_series(struct verify *v, struct idx_txn *t, uint32_t snap, const struct rec_series *rs,
		       struct err *e)
{
	int rc;

	if (!(v->flags & ARCHIVE_VERIFY_DEEP))
		return 0;
	if ((rc = deep_samples(rs, e)))
		return rc;
	return deep_labels(v, t, snap, rs, e);
}

/* One stored record: decompress, decode, and for a series its index entry. */
static void check_record(struct verify *v, struct idx_txn *t, const struct idx_snapshot *s,
			 const struct wal_record *rec, const char *path, struct buf *raw, uint64_t *series)
{
	const uint8_t *p;
	size_t len;
	struct err e = { 0 };
	int rc;

	if ((rc = archive_unpack(v->a, t, rec->flags, rec->data, rec->len, raw, &p, &len, &e))) {
		/* a damaged dictionary fails every record that uses it: say it once */
		if (strstr(e.msg, "/data.mdb: ") && v->index_fails++)
			return;
		problem(v, rc, "snapshot %u (%s): %s: offset %llu: %s", s->id, s->name, path,
			(unsigned long long)rec->offset, e.msg);
		return;
	}
	switch (len ? p[0] : 0) {
	case REC_SERIES: {
		struct rec_series rs;
		struct idx_loc loc;

		if ((rc = rec_series_decode(&rs, p, len, &e)))
			break;
		(*series)++;
		rc = idx_series_get(t, s->id, rs.ref, &loc, &e);
		if (rc == SNAPARC_NOT_FOUND)
			problem(v, SNAPARC_CORRUPT, "snapshot %u (%s): %s: offset %llu: series ref %llu is not in the index",
				s->id, s->name, path, (unsigned long long)rec->offset, (unsigned long long)rs.ref);
		else if (!rc && (loc.segment != rec->segment || loc.offset != rec->offset ||
				 loc.span != rec->end - rec->offset))
			problem(v, SNAPARC_CORRUPT, "snapshot %u (%s): %s: offset %llu: the index puts series ref %llu at segment %u offset %llu",
				s->id, s->name, path, (unsigned long long)rec->offset, (unsigned long long)rs.ref,
				loc.segment, (unsigned long long)loc.offset);
		else if (rc)
			break;
		else
			rc = deep_series(v, t, s->id, &rs, &e);
		break;
	}
	case REC_TOMBSTONES: {
		struct rec_tombstones tb;

		rc = rec_tombstones_decode(&tb, p, len, &e);
		break;
	}
	case REC_EXEMPLARS:
	case ARCHIVE_SERIES_EXEMPLARS: {
		struct rec_exemplars x;
		uint8_t type = p[0];

		/* the archive's own per-series exemplars decode as an exemplars record */
		if (type == ARCHIVE_SERIES_EXEMPLARS) {
			if (p != raw->p) {
				buf_reset(raw);
				buf_put(raw, p, len);
				if (raw->oom) {
					rc = err_set(&e, SNAPARC_NOMEM, "out of memory");
					break;
				}
				p = raw->p;
			}
			raw->p[0] = REC_EXEMPLARS;
		}
		rc = rec_exemplars_decode(&x, p, len, &e);
		break;
	}
	default:
		rc = err_set(&e, SNAPARC_CORRUPT, "unknown record type %u", len ? p[0] : 0);
	}
	if (rc)
		problem(v, rc, "snapshot %u (%s): %s: offset %llu: %s", s->id, s->name, path,
			(unsigned long long)rec->offset, e.msg);
}

static int outside(const struct idx_snapshot *s, const struct idx_loc *l)
{
	if (l->segment != s->start.segment ? l->segment < s->start.segment : l->offset < s->start.offset)
		return 1;
	return l->segment != s->end.segment ? l->segment > s->end.segment : l->offset >= s->end.offset;
}

struct shared_ctx {
	struct verify *v;
	struct idx_txn *t;
	const struct idx_snapshot *s;
	struct archive_series rec;
};

/* A record a compacted snapshot shares with an earlier one. */
static int check_shared(void *ctx, const struct idx_loc *loc, uint8_t type)
{
	struct shared_ctx *sc = ctx;
	struct err e = { 0 };
	size_t stored;
	int rc;

	(void)type;
	if (!outside(sc->s, loc))
		return 0;
	rc = archive_load(sc->v->a, sc->t, loc, &sc->rec.record, &sc->rec.span, &sc->rec.scratch, &stored, &e);
	if (rc)
		problem(sc->v, rc, "snapshot %u (%s): shared record: %s", sc->s->id, sc->s->name, e.msg);
	return sc->v->stop;
}

/* The entries of a compacted snapshot that point before its own records:
 * each is read and checked; *series counts the series among them. */
static int check_shared_entries(struct verify *v, struct idx_txn *t, const struct idx_snapshot *s,
				uint64_t *series, struct err *e)
{
	struct shared_ctx sc = { v, t, s, { 0 } };
	struct idx_series_iter *it;
	struct idx_loc loc;
	int rc;

	if ((rc = idx_series_iter_open(t, s->id, &it, e)))
		return rc;
	while (!v->stop && (rc = idx_series_iter_next(it, &loc, e)) == 1) {
		struct err re = { 0 };
		int rrc;

		if (!outside(s, &loc))
			continue;
		(*series)++;
		if ((rrc = archive_read_record(v->a, t, s->id, &loc, &sc.rec, &re)) ||
		    (rrc = deep_series(v, t, s->id, &sc.rec.series, &re)))
			problem(v, rrc, "snapshot %u (%s): series ref %llu, shared (segment %u offset %llu): %s",
				s->id, s->name, (unsigned long long)loc.ref, loc.segment,
				(unsigned long long)loc.offset, re.msg);
	}
	idx_series_iter_close(it);
	if (rc < 0)
		problem(v, rc, "snapshot %u (%s): series table: %s", s->id, s->name, e->msg);
	rc = idx_exemplars_scan(t, s->id, check_shared, &sc, e);
	if (rc == 0)
		rc = idx_others_scan(t, s->id, check_shared, &sc, e);
	if (rc < 0 && !v->stop)
		problem(v, rc, "snapshot %u (%s): %s", s->id, s->name, e->msg);
	archive_series_free(&sc.rec);
	return 0;
}

static int index_problem(void *ctx, const char *msg)
{
	struct verify *v = ctx;

	problem(v, SNAPARC_CORRUPT, "%s", msg);
	return v->stop;
}

/* The index's entries of a snapshot's series, counted. */
static int count_entries(struct idx_txn *t, uint32_t snap, uint64_t *n, struct err *e)
{
	struct idx_series_iter *it;
	struct idx_loc loc;
	int rc;

	*n = 0;
	if ((rc = idx_series_iter_open(t, snap, &it, e)))
		return rc;
	while ((rc = idx_series_iter_next(it, &loc, e)) == 1)
		(*n)++;
	idx_series_iter_close(it);
	return rc;
}

int archive_verify(struct archive *a, unsigned flags, archive_problem_fn fn, void *ctx,
		   archive_verify_progress_fn progress, void *progress_ctx, struct err *e)
{
	struct wal_reader_opts ro = { .allow_lz4 = 1, .raw = 1, .partial_last_page = 1 };
	struct verify v = { a, flags, fn, ctx, 0, 0, 0, { 0 } };
	struct idx_snapshot s;
	struct idx_txn *whole;
	struct buf raw = { 0 };
	uint64_t done = 0, total = 0, values;
	uint32_t after = 0;
	int rc;

	/* the index first: every value's checksum */
	if ((rc = archive_read_txn(a, &whole, e)))
		return rc;
	rc = idx_check_values(whole, index_problem, &v, &values, e);
	archive_read_done(a, whole);
	if (rc)
		return rc;
	while ((rc = archive_snapshot_next(a, after, &s, e)) == 0) {
		after = s.id;
		total += s.stored_bytes;
	}
	after = 0;
	while (!v.stop) {
		struct wal_pos from, to;
		struct wal_reader *r;
		struct wal_record rec;
		struct idx_txn *t;
		uint64_t series = 0, entries;
		int rrc;

		/* the snapshot found in the transaction its records are read
		 * under: a compaction that drops it meanwhile keeps its segments
		 * until that transaction ends */
		if ((rc = archive_read_txn(a, &t, e)))
			break;
		if ((rc = idx_snapshot_next(t, after, &s, e))) {
			archive_read_done(a, t);
			break;
		}
		from = (struct wal_pos){ s.start.segment, s.start.offset };
		to = (struct wal_pos){ s.end.segment, s.end.offset };
		after = s.id;
		v.index_fails = 0;
		if ((rrc = wal_reader_open_range(&r, a->segdir, &from, &to, &ro, e))) {
			problem(&v, rrc, "snapshot %u (%s): %s", s.id, s.name, e->msg);
			archive_read_done(a, t);
			continue;
		}
		while (!v.stop && (rrc = wal_reader_next(r, &rec, e)) == 1) {
			check_record(&v, t, &s, &rec, wal_reader_segment_path(r), &raw, &series);
			done += rec.end - rec.offset;
			if (progress)
				progress(progress_ctx, done, total);
		}
		if (rrc < 0) {
			problem(&v, rrc, "snapshot %u (%s): %s", s.id, s.name, e->msg);
		} else {
			if (s.flags & IDX_SNAP_COMPACTED)
				check_shared_entries(&v, t, &s, &series, e);
			if (v.index_fails > 1)
				problem(&v, SNAPARC_CORRUPT, "snapshot %u (%s): %llu more records could not be read for that damage in the index",
					s.id, s.name, (unsigned long long)v.index_fails - 1);
			if (!v.stop && !v.index_fails && series != s.series)
				problem(&v, SNAPARC_CORRUPT, "snapshot %u (%s): the catalog counts %llu series, the index and segments hold %llu",
					s.id, s.name, (unsigned long long)s.series, (unsigned long long)series);
			if (!v.stop && (rrc = count_entries(t, s.id, &entries, e)) < 0)
				problem(&v, rrc, "snapshot %u (%s): series table: %s", s.id, s.name, e->msg);
			else if (!v.stop && entries != s.series)
				problem(&v, SNAPARC_CORRUPT, "snapshot %u (%s): the catalog counts %llu series, the index has entries for %llu",
					s.id, s.name, (unsigned long long)s.series, (unsigned long long)entries);
		}
		wal_reader_close(r);
		archive_read_done(a, t);
	}
	buf_free(&raw);
	buf_free(&v.refs);
	if (rc && rc != SNAPARC_NOT_FOUND)
		return rc;
	if (v.problems)
		return err_set(e, SNAPARC_CORRUPT, "%llu problem(s) found", (unsigned long long)v.problems);
	return 0;
}

int archive_snapshot_remove(struct archive *a, const char *spec, struct err *e)
{
	struct idx_snapshot s;
	struct idx_txn *t;
	int rc;

	if (a->opts.read_only)
		return err_set(e, SNAPARC_INVALID, "%s: the archive is open read-only", a->path);
	if ((rc = archive_snapshot_find(a, spec, &s, e)) || (rc = archive_lock(a, e)))
		return rc;
	if (!(rc = idx_write_begin(a->idx, &t, e))) {
		if ((rc = idx_snapshot_remove(t, s.id, e)))
			idx_abort(t);
		else
			rc = idx_commit(t, e);
	}
	archive_unlock(a);
	return rc;
}
