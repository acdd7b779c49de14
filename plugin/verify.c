/*
 * Verifying an archive: every snapshot's stored records are read back from
 * its range of the segments and checked against what the index says; a
 * compacted snapshot's entries that point at records it shares with earlier
 * snapshots are read and checked too.
 */
#include "archive_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wal.h"

struct verify {
	struct archive *a;
	archive_problem_fn fn;
	void *ctx;
	uint64_t problems;
	int stop;
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

/* One stored record: decompress, decode, and for a series its index entry. */
static void check_record(struct verify *v, struct idx_txn *t, const struct idx_snapshot *s,
			 const struct wal_record *rec, const char *path, struct buf *raw, uint64_t *series)
{
	const uint8_t *p;
	size_t len;
	struct err e = { 0 };
	int rc;

	if ((rc = archive_unpack(v->a, t, rec->flags, rec->data, rec->len, raw, &p, &len, &e))) {
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
		return;
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
		if ((rrc = archive_read_record(v->a, t, s->id, &loc, &sc.rec, &re)))
			problem(v, rrc, "snapshot %u (%s): series ref %llu, shared: %s", s->id, s->name,
				(unsigned long long)loc.ref, re.msg);
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

int archive_verify(struct archive *a, archive_problem_fn fn, void *ctx, archive_verify_progress_fn progress,
		   void *progress_ctx, struct err *e)
{
	struct wal_reader_opts ro = { .allow_lz4 = 1, .raw = 1, .partial_last_page = 1 };
	struct verify v = { a, fn, ctx, 0, 0 };
	struct idx_snapshot s;
	struct buf raw = { 0 };
	uint64_t done = 0, total = 0;
	uint32_t after = 0;
	int rc;

	while ((rc = archive_snapshot_next(a, after, &s, e)) == 0) {
		after = s.id;
		total += s.stored_bytes;
	}
	after = 0;
	while (!v.stop && (rc = archive_snapshot_next(a, after, &s, e)) == 0) {
		struct wal_pos from = { s.start.segment, s.start.offset }, to = { s.end.segment, s.end.offset };
		struct wal_reader *r;
		struct wal_record rec;
		struct idx_txn *t;
		uint64_t series = 0;
		int rrc;

		after = s.id;
		if ((rc = archive_read_txn(a, &t, e)))
			break;
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
			if (!v.stop && series != s.series)
				problem(&v, SNAPARC_CORRUPT, "snapshot %u (%s): the catalog counts %llu series, the index and segments hold %llu",
					s.id, s.name, (unsigned long long)s.series, (unsigned long long)series);
		}
		wal_reader_close(r);
		archive_read_done(a, t);
	}
	buf_free(&raw);
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
