/*
 * abi: the plugin's one exported symbol and its table (include/snaparc/plugin.h),
 * a thin layer over the archive engine: it checks handles and arguments,
 * translates the public structs, and keeps each handle's last error.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <snaparc/plugin.h>

#include "archive.h"
#include "record.h"
#include "select.h"
#include "snapdir.h"
#include "sort.h"
#include "wal.h"
#include "wal_push.h"

#ifndef SNAPARC_VERSION_STRING
#define SNAPARC_VERSION_STRING "0.1.0"
#endif

#define MAGIC_ARCHIVE 0x53415243u   /* "SARC" */
#define MAGIC_WRITER 0x53575254u    /* "SWRT" */
#define MAGIC_RESULT 0x53525354u    /* "SRST" */
#define MAGIC_GONE 0xdeadbeefu

struct snaparc_archive {
	uint32_t magic;
	struct archive *a;           /* NULL when open failed: the handle only carries why */
	pthread_mutex_t mu;          /* guards error */
	struct err error;
};

struct snaparc_writer {
	uint32_t magic;
	snaparc_archive *owner;
	struct archive_writer *w;
	struct wal_push *push;
	struct buf rec, labels, raw_labels;
};

struct snaparc_result {
	uint32_t magic;
	struct archive_series s;
	struct buf labels;           /* struct snaparc_label */
	struct buf deleted;          /* int64_t pairs */
};

/* ---- handles and errors ---- */

static int bad(const void *h, uint32_t magic)
{
	return !h || *(const uint32_t *)h != magic;
}

static int keep(snaparc_archive *h, int rc, const struct err *e)
{
	if (rc && h) {
		pthread_mutex_lock(&h->mu);
		h->error = *e;
		if (!h->error.msg[0])
			err_set(&h->error, rc, "%s", err_name(rc));
		pthread_mutex_unlock(&h->mu);
	}
	return rc;
}

static int refuse(snaparc_archive *h, const char *what)
{
	struct err e;

	err_set(&e, SNAPARC_INVALID, "%s", what);
	return keep(h && h->magic == MAGIC_ARCHIVE ? h : NULL, SNAPARC_INVALID, &e);
}

static int ready(snaparc_archive *h)
{
	return !bad(h, MAGIC_ARCHIVE) && h->a;
}

static const char *api_strerror(int status)
{
	return err_name(status);
}

static size_t api_last_error(snaparc_archive *h, char *buf, size_t cap)
{
	size_t n;

	if (bad(h, MAGIC_ARCHIVE)) {
		const char *msg = "not an open snaparc archive handle";

		if (buf && cap) {
			strncpy(buf, msg, cap - 1);
			buf[cap - 1] = '\0';
		}
		return strlen(msg);
	}
	pthread_mutex_lock(&h->mu);
	n = strlen(h->error.msg);
	if (buf && cap) {
		size_t k = n < cap - 1 ? n : cap - 1;

		memcpy(buf, h->error.msg, k);
		buf[k] = '\0';
	}
	pthread_mutex_unlock(&h->mu);
	return n;
}

/* Copies a struct the plugin filled in full into the host's, as far as the
 * host's size says it reaches (an older host knows fewer fields). */
static void give(void *host, const void *full, size_t full_size)
{
	uint32_t size;

	memcpy(&size, host, sizeof(size));
	memcpy(host, full, size < full_size ? size : full_size);
	memcpy(host, &size, sizeof(size));
}

/* ---- open, close ---- */

static int api_open(snaparc_archive **out, const char *path, const struct snaparc_open_options *opts)
{
	struct archive_opts ao = { .sync = 1 };
	struct snaparc_open_options o = { 0 };
	snaparc_archive *h;
	int rc;

	if (!out)
		return SNAPARC_INVALID;
	*out = NULL;
	if (opts) {
		if (opts->size < offsetof(struct snaparc_open_options, sync))
			return SNAPARC_INVALID;
		memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
	}
	if (!(h = calloc(1, sizeof(*h))))
		return SNAPARC_NOMEM;
	h->magic = MAGIC_ARCHIVE;
	pthread_mutex_init(&h->mu, NULL);
	*out = h;
	if (!path)
		return refuse(h, "open: no path");
	ao.create = !!(o.flags & SNAPARC_OPEN_CREATE);
	ao.read_only = !!(o.flags & SNAPARC_OPEN_READ_ONLY);
	ao.wait = !!(o.flags & SNAPARC_OPEN_WAIT);
	ao.sync = o.sync != SNAPARC_SYNC_NONE;
	ao.map_size = o.map_size;
	ao.segment_size = o.segment_size;
	rc = archive_open(&h->a, path, &ao, &h->error);
	return rc;
}

static void api_close(snaparc_archive **hp)
{
	snaparc_archive *h;

	if (!hp || bad(*hp, MAGIC_ARCHIVE))
		return;
	h = *hp;
	archive_close(h->a);
	pthread_mutex_destroy(&h->mu);
	h->magic = MAGIC_GONE;
	free(h);
	*hp = NULL;
}

/* ---- writing ---- */

static int api_begin(snaparc_archive *h, const char *name, uint64_t source_bytes, snaparc_writer **out)
{
	struct archive_import_info info = { name, source_bytes };
	struct err e = { 0 };
	snaparc_writer *w;
	int rc;

	if (out)
		*out = NULL;
	if (!ready(h) || !out || !name)
		return refuse(ready(h) ? h : NULL, "begin: a handle, a name and an out pointer are needed");
	if (!(w = calloc(1, sizeof(*w))))
		return SNAPARC_NOMEM;
	w->magic = MAGIC_WRITER;
	w->owner = h;
	if ((rc = archive_import_begin(h->a, &info, &w->w, &e))) {
		free(w);
		return keep(h, rc, &e);
	}
	*out = w;
	return 0;
}

static int api_put_records(snaparc_writer *w, const struct snaparc_record *recs, size_t n)
{
	struct err e = { 0 };
	int rc;

	if (bad(w, MAGIC_WRITER) || (!recs && n))
		return bad(w, MAGIC_WRITER) ? SNAPARC_INVALID : refuse(w->owner, "put_records: no records");
	for (size_t i = 0; i < n; i++) {
		if (!recs[i].data && recs[i].len)
			return refuse(w->owner, "put_records: a record without data");
		if ((rc = archive_import_put(w->w, recs[i].data, recs[i].len, &e))) {
			err_prefix(&e, "record %zu of the batch", i);
			return keep(w->owner, rc, &e);
		}
	}
	return 0;
}

static int on_pushed(void *ctx, const struct wal_record *rec, struct err *e)
{
	snaparc_writer *w = ctx;
	int rc = archive_import_put(w->w, rec->data, rec->len, e);

	if (rc)
		err_prefix(e, "segment %u: offset %llu: record", rec->segment, (unsigned long long)rec->offset);
	return rc;
}

static int api_put_wal(snaparc_writer *w, const uint8_t *bytes, size_t len, int end_of_segment)
{
	struct err e = { 0 };
	int rc;

	if (bad(w, MAGIC_WRITER))
		return SNAPARC_INVALID;
	if (!bytes && len)
		return refuse(w->owner, "put_wal: no bytes");
	if (!w->push && (rc = wal_push_new(&w->push, "host stream", NULL, &e)))
		return keep(w->owner, rc, &e);
	if (len && (rc = wal_push_feed(w->push, bytes, len, on_pushed, w, &e)))
		return keep(w->owner, rc, &e);
	if (end_of_segment && (rc = wal_push_end_segment(w->push, &e)))
		return keep(w->owner, rc, &e);
	return 0;
}

static int api_put_series(snaparc_writer *w, const struct snaparc_series_in *in)
{
	struct snaparc_series_in s = { 0 };
	struct rec_series rs = { 0 };
	struct err e = { 0 };
	struct rec_label *ls;
	int rc;

	if (bad(w, MAGIC_WRITER))
		return SNAPARC_INVALID;
	if (!in || in->size < offsetof(struct snaparc_series_in, last_value))
		return refuse(w->owner, "put_series: no series, or one from an unknown ABI");
	memcpy(&s, in, in->size < sizeof(s) ? in->size : sizeof(s));
	if ((!s.labels && s.nlabels) || (s.has_chunk && !s.chunk && s.chunk_len) || (!s.tail && s.tail_len))
		return refuse(w->owner, "put_series: a length without its pointer");
	buf_reset(&w->labels);
	ls = (struct rec_label *)buf_reserve(&w->labels, (s.nlabels + 1) * sizeof(*ls));
	if (!ls)
		return SNAPARC_NOMEM;
	for (size_t i = 0; i < s.nlabels; i++)
		ls[i] = (struct rec_label){ s.labels[i].name, s.labels[i].value, s.labels[i].name_len,
					    s.labels[i].value_len };
	buf_reset(&w->raw_labels);
	rec_labels_encode(&w->raw_labels, ls, s.nlabels);
	rs.ref = s.ref;
	rs.labels.raw = w->raw_labels.p;
	rs.labels.raw_len = w->raw_labels.len;
	rs.labels.count = (uint32_t)s.nlabels;
	rs.has_chunk = s.has_chunk;
	rs.mint = s.mint;
	rs.maxt = s.maxt;
	rs.encoding = s.encoding;
	rs.chunk = s.chunk;
	rs.chunk_len = s.chunk_len;
	rs.last_value = s.last_value;
	rs.tail = s.tail;
	rs.tail_len = s.tail_len;
	buf_reset(&w->rec);
	rec_series_encode(&w->rec, &rs);
	if (w->rec.oom || w->raw_labels.oom)
		return SNAPARC_NOMEM;
	/* the import validates it like any record: sorted labels, known encoding */
	rc = archive_import_put(w->w, w->rec.p, w->rec.len, &e);
	if (rc)
		err_prefix(&e, "series ref %llu", (unsigned long long)s.ref);
	return keep(w->owner, rc, &e);
}

static void to_info(const struct idx_snapshot *s, struct snaparc_snapshot_info *out)
{
	struct snaparc_snapshot_info full;

	memset(&full, 0, sizeof(full));
	full.size = sizeof(full);
	full.id = s->id;
	memcpy(full.name, s->name, sizeof(full.name) < sizeof(s->name) ? sizeof(full.name) : sizeof(s->name));
	full.name[SNAPARC_NAME_MAX] = '\0';
	full.imported_ms = s->imported_ms;
	full.mint = s->mint;
	full.maxt = s->maxt;
	full.series = s->series;
	full.tombstones = s->tombstones;
	full.exemplars = s->exemplars;
	full.records = s->records;
	full.source_bytes = s->source_bytes;
	full.raw_bytes = s->raw_bytes;
	full.stored_bytes = s->stored_bytes;
	give(out, &full, sizeof(full));
}

static void writer_free(snaparc_writer *w)
{
	wal_push_free(w->push);
	buf_free(&w->rec);
	buf_free(&w->labels);
	buf_free(&w->raw_labels);
	w->magic = MAGIC_GONE;
	free(w);
}

static int api_commit(snaparc_writer **wp, struct snaparc_snapshot_info *info)
{
	struct idx_snapshot snap;
	struct err e = { 0 };
	snaparc_writer *w;
	int rc = 0;

	if (!wp || bad(*wp, MAGIC_WRITER))
		return SNAPARC_INVALID;
	w = *wp;
	if (info && info->size < sizeof(uint32_t) * 2) {
		archive_import_abort(w->w);
		rc = refuse(w->owner, "commit: info has no size");
	} else {
		if (w->push)
			rc = wal_push_end_segment(w->push, &e);
		if (rc)
			archive_import_abort(w->w);
		else
			rc = archive_import_commit(w->w, &snap, &e);
		if (!rc && info)
			to_info(&snap, info);
		keep(w->owner, rc, &e);
	}
	writer_free(w);
	*wp = NULL;
	return rc;
}

static void api_abort(snaparc_writer **wp)
{
	if (!wp || bad(*wp, MAGIC_WRITER))
		return;
	archive_import_abort((*wp)->w);
	writer_free(*wp);
	*wp = NULL;
}

struct progress_adapter {
	snaparc_progress_fn fn;
	void *ctx;
	uint64_t total;
};

static void on_progress(void *ctx, uint64_t done)
{
	struct progress_adapter *p = ctx;

	p->fn(p->ctx, done, p->total);
}

static int api_import(snaparc_archive *h, const char *dir, const char *name, struct snaparc_snapshot_info *info,
		      snaparc_progress_fn progress, void *progress_ctx)
{
	struct progress_adapter pa = { progress, progress_ctx, 0 };
	struct archive_import_info ai;
	struct idx_snapshot snap;
	struct err e = { 0 };
	char resolved[4096], base[4096], seg[4200];
	const char *slash;
	int rc;

	if (!ready(h) || !dir || (info && info->size < sizeof(uint32_t) * 2))
		return refuse(ready(h) ? h : NULL, "import: a handle and a directory are needed");
	if ((rc = snapdir_resolve(dir, resolved, sizeof(resolved), &e)))
		return keep(h, rc, &e);
	slash = strrchr(resolved, '/');
	snprintf(base, sizeof(base), "%s", slash ? slash + 1 : resolved);
	for (uint32_t i = 0;; i++) {
		struct stat st;

		snprintf(seg, sizeof(seg), "%s/%08u", resolved, i);
		if (stat(seg, &st) != 0)
			break;
		pa.total += (uint64_t)st.st_size;
	}
	ai.name = name ? name : base;
	ai.source_bytes = pa.total;
	rc = archive_import_dir(h->a, resolved, &ai, progress ? on_progress : NULL, &pa, &snap, &e);
	if (!rc && info)
		to_info(&snap, info);
	return keep(h, rc, &e);
}

/* ---- snapshots ---- */

static int api_snapshot_find(snaparc_archive *h, const char *spec, struct snaparc_snapshot_info *out)
{
	struct idx_snapshot s;
	struct err e = { 0 };
	int rc;

	if (!ready(h) || !spec || !out || out->size < sizeof(uint32_t) * 2)
		return refuse(ready(h) ? h : NULL, "snapshot_find: a handle, a spec and an out struct with its size are needed");
	if ((rc = archive_snapshot_find(h->a, spec, &s, &e)))
		return keep(h, rc, &e);
	to_info(&s, out);
	return 0;
}

static int api_snapshot_next(snaparc_archive *h, uint32_t after, struct snaparc_snapshot_info *out)
{
	struct idx_snapshot s;
	struct err e = { 0 };
	int rc;

	if (!ready(h) || !out || out->size < sizeof(uint32_t) * 2)
		return refuse(ready(h) ? h : NULL, "snapshot_next: a handle and an out struct with its size are needed");
	rc = archive_snapshot_next(h->a, after, &s, &e);
	if (rc == SNAPARC_NOT_FOUND)
		return rc; /* the end of the list, not a failure */
	if (rc)
		return keep(h, rc, &e);
	to_info(&s, out);
	return 0;
}

static int api_snapshot_remove(snaparc_archive *h, const char *spec)
{
	struct err e = { 0 };

	if (!ready(h) || !spec)
		return refuse(ready(h) ? h : NULL, "snapshot_remove: a handle and a spec are needed");
	return keep(h, archive_snapshot_remove(h->a, spec, &e), &e);
}

static int api_stat(snaparc_archive *h, struct snaparc_stat *out)
{
	struct archive_stat st;
	struct snaparc_stat full = { sizeof(full), 0, 0, 0, 0 };
	struct err e = { 0 };
	int rc;

	if (!ready(h) || !out || out->size < sizeof(uint32_t) * 2)
		return refuse(ready(h) ? h : NULL, "stat: a handle and an out struct with its size are needed");
	if ((rc = archive_stat(h->a, &st, &e)))
		return keep(h, rc, &e);
	full.index_bytes = st.index_bytes;
	full.segment_bytes = st.segment_bytes;
	full.segments = st.segments;
	give(out, &full, sizeof(full));
	return 0;
}

/* ---- reading ---- */

static int api_result_new(snaparc_result **out)
{
	snaparc_result *r;

	if (!out)
		return SNAPARC_INVALID;
	if (!(r = calloc(1, sizeof(*r))))
		return SNAPARC_NOMEM;
	r->magic = MAGIC_RESULT;
	*out = r;
	return 0;
}

static void api_result_free(snaparc_result **rp)
{
	snaparc_result *r;

	if (!rp || bad(*rp, MAGIC_RESULT))
		return;
	r = *rp;
	archive_series_free(&r->s);
	buf_free(&r->labels);
	buf_free(&r->deleted);
	r->magic = MAGIC_GONE;
	free(r);
	*rp = NULL;
}

/* Describes r->s (just read) in a struct snaparc_series of the host's size. */
static int to_series(snaparc_result *r, struct snaparc_series *out)
{
	struct snaparc_series full;
	struct rec_label_iter it;
	struct rec_label l;
	struct dec d;

	buf_reset(&r->labels);
	rec_labels_iter(&it, &r->s.series.labels);
	while (rec_labels_next(&it, &l)) {
		struct snaparc_label sl = { l.name, l.name_len, l.value, l.value_len };

		buf_put(&r->labels, &sl, sizeof(sl));
	}
	buf_reset(&r->deleted);
	dec_init(&d, r->s.tombstones.p, r->s.tombstones.len);
	while (dec_left(&d)) {
		int64_t pair[2] = { dec_varint(&d, "mint"), dec_varint(&d, "maxt") };

		buf_put(&r->deleted, pair, sizeof(pair));
	}
	if (r->labels.oom || r->deleted.oom || !dec_ok(&d))
		return r->labels.oom || r->deleted.oom ? SNAPARC_NOMEM : SNAPARC_CORRUPT;
	memset(&full, 0, sizeof(full));
	full.size = sizeof(full);
	full.snapshot = r->s.snapshot;
	full.ref = r->s.series.ref;
	full.record = r->s.record.p;
	full.record_len = r->s.record.len;
	full.labels = (const struct snaparc_label *)r->labels.p;
	full.nlabels = r->labels.len / sizeof(struct snaparc_label);
	full.has_chunk = r->s.series.has_chunk;
	full.encoding = r->s.series.encoding;
	full.mint = r->s.series.mint;
	full.maxt = r->s.series.maxt;
	full.chunk = r->s.series.chunk;
	full.chunk_len = r->s.series.chunk_len;
	full.deleted = (const int64_t *)r->deleted.p;
	full.ndeleted = r->deleted.len / (2 * sizeof(int64_t));
	full.exemplars = r->s.exemplars.len ? r->s.exemplars.p : NULL;
	full.exemplars_len = r->s.exemplars.len;
	full.stored_len = r->s.stored_len;
	full.segment = r->s.loc.segment;
	full.offset = r->s.loc.offset;
	full.cut = r->s.loc.cut;
	give(out, &full, sizeof(full));
	return 0;
}

static int find_id(snaparc_archive *h, const char *snapshot, struct idx_snapshot *s, struct err *e)
{
	return archive_snapshot_find(h->a, snapshot ? snapshot : "latest", s, e);
}

static int api_read_ref(snaparc_archive *h, const char *snapshot, uint64_t ref, snaparc_result *r,
			struct snaparc_series *out)
{
	struct idx_snapshot s;
	struct err e = { 0 };
	int rc;

	if (!ready(h) || bad(r, MAGIC_RESULT) || !out || out->size < sizeof(uint32_t) * 2)
		return refuse(ready(h) ? h : NULL, "read_ref: a handle, a result and an out struct with its size are needed");
	if ((rc = find_id(h, snapshot, &s, &e)) || (rc = archive_read_ref(h->a, s.id, ref, &r->s, &e)))
		return keep(h, rc, &e);
	return keep(h, to_series(r, out), &e);
}

static int labels_in(const struct snaparc_label *ls, size_t n, struct buf *b)
{
	struct rec_label *out = (struct rec_label *)buf_reserve(b, (n + 1) * sizeof(*out));

	if (!out)
		return SNAPARC_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((!ls[i].name && ls[i].name_len) || (!ls[i].value && ls[i].value_len))
			return SNAPARC_INVALID;
		out[i] = (struct rec_label){ ls[i].name, ls[i].value, ls[i].name_len, ls[i].value_len };
	}
	return 0;
}

static int api_read_labels(snaparc_archive *h, const char *snapshot, const struct snaparc_label *labels, size_t n,
			   snaparc_result *r, struct snaparc_series *out)
{
	struct idx_snapshot s;
	struct buf ls = { 0 };
	struct err e = { 0 };
	int rc;

	if (!ready(h) || bad(r, MAGIC_RESULT) || !out || out->size < sizeof(uint32_t) * 2 || (!labels && n))
		return refuse(ready(h) ? h : NULL, "read_labels: a handle, labels, a result and an out struct are needed");
	if ((rc = labels_in(labels, n, &ls))) {
		buf_free(&ls);
		return refuse(h, "read_labels: a label without its bytes");
	}
	if (!(rc = find_id(h, snapshot, &s, &e)))
		rc = archive_read_labels(h->a, s.id, (const struct rec_label *)ls.p, n, &r->s, &e);
	buf_free(&ls);
	if (rc)
		return keep(h, rc, &e);
	return keep(h, to_series(r, out), &e);
}

/* Hands one series of the engine to the host's callback, described in the
 * public structs (borrowing the engine's buffers for the call). */
struct series_ctx {
	snaparc_series_fn fn;
	void *ctx;
	snaparc_result r;
	struct snaparc_snapshot_info info;   /* for select: the one snapshot */
};

static int give_series(struct series_ctx *sc, const struct idx_snapshot *snap, const struct archive_series *s)
{
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series out = { .size = sizeof(out) };
	int rc;

	sc->r.s = *s;
	rc = to_series(&sc->r, &out);
	memset(&sc->r.s, 0, sizeof(sc->r.s));
	if (rc)
		return rc;
	if (snap)
		to_info(snap, &info);
	return sc->fn(sc->ctx, snap ? &info : &sc->info, &out);
}

static int on_selected(void *ctx, const struct archive_series *s)
{
	return give_series(ctx, NULL, s);
}

static int api_select(snaparc_archive *h, const char *snapshot, const char *selector, snaparc_series_fn fn,
		      void *ctx)
{
	struct series_ctx sc = { fn, ctx, { .magic = MAGIC_RESULT }, { .size = sizeof(sc.info) } };
	struct idx_snapshot s;
	struct select *sel = NULL;
	struct buf refs = { 0 };
	struct err e = { 0 };
	int rc;

	if (!ready(h) || !selector || !fn)
		return refuse(ready(h) ? h : NULL, "select: a handle, a selector and a callback are needed");
	if (!(rc = select_parse(selector, &sel, &e)) && !(rc = find_id(h, snapshot, &s, &e))) {
		to_info(&s, &sc.info);
		rc = archive_select(h->a, s.id, sel, &refs, on_selected, &sc, &e);
		if (rc > 0 || (rc && !e.msg[0]))
			err_set(&e, rc, "the callback stopped the selection with %d", rc);
	}
	buf_free(&sc.r.labels);
	buf_free(&sc.r.deleted);
	buf_free(&refs);
	select_free(sel);
	return keep(h, rc, &e);
}

static int on_history(void *ctx, const struct idx_snapshot *snap, const struct archive_series *s)
{
	return give_series(ctx, snap, s);
}

static int api_history(snaparc_archive *h, const struct snaparc_label *labels, size_t n, snaparc_series_fn fn,
		       void *ctx)
{
	struct series_ctx hc = { fn, ctx, { .magic = MAGIC_RESULT }, { .size = sizeof(hc.info) } };
	struct buf ls = { 0 };
	struct err e = { 0 };
	int rc;

	if (!ready(h) || (!labels && n) || !fn)
		return refuse(ready(h) ? h : NULL, "history: a handle, labels and a callback are needed");
	if (labels_in(labels, n, &ls)) {
		buf_free(&ls);
		return refuse(h, "history: a label without its bytes");
	}
	rc = archive_history(h->a, (const struct rec_label *)ls.p, n, on_history, &hc, &e);
	if (rc > 0 || (rc && !e.msg[0]))
		err_set(&e, rc, "the callback stopped the history with %d", rc);
	buf_free(&ls);
	buf_free(&hc.r.labels);
	buf_free(&hc.r.deleted);
	return keep(h, rc, &e);
}

/* Restores the whole snapshot (refs NULL, selector NULL), the series a
 * selector matches, or the given refs. */
static int restore_some(snaparc_archive *h, const char *snapshot, const char *selector, const uint64_t *given,
			size_t ngiven, const char *dir, const struct snaparc_restore_options *opts,
			struct snaparc_restore_stats *stats)
{
	struct archive_restore_opts ro = { .compression = WAL_COMPRESS_SNAPPY };
	struct snaparc_restore_options o = { 0 };
	struct archive_restore_stats st = { 0, 0 };
	struct idx_snapshot s;
	struct select *sel = NULL;
	struct buf refs = { 0 };
	struct err e = { 0 };
	char spec[16];
	int rc;

	if (!ready(h) || !dir || (opts && opts->size < offsetof(struct snaparc_restore_options, reserved)) ||
	    (stats && stats->size < sizeof(uint32_t) * 2))
		return refuse(ready(h) ? h : NULL, "restore: a handle and a directory are needed");
	if (opts)
		memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
	if (o.compression > SNAPARC_COMPRESS_ZSTD)
		return refuse(h, "restore: unknown compression");
	ro.compression = o.compression == SNAPARC_COMPRESS_NONE ? WAL_COMPRESS_NONE
			 : o.compression == SNAPARC_COMPRESS_ZSTD ? WAL_COMPRESS_ZSTD : WAL_COMPRESS_SNAPPY;
	ro.overwrite = !!o.overwrite;
	if ((rc = find_id(h, snapshot, &s, &e)))
		return keep(h, rc, &e);
	snprintf(spec, sizeof(spec), "%u", s.id);
	if (selector) {
		if (!(rc = select_parse(selector, &sel, &e)))
			rc = archive_select(h->a, s.id, sel, &refs, NULL, NULL, &e);
		if (!rc && !refs.len)
			rc = err_set(&e, SNAPARC_NOT_FOUND, "no series of snapshot %u matches %s", s.id, selector);
	} else if (given) {
		buf_put(&refs, given, ngiven * sizeof(*given));
		if (refs.oom || sort_by_u64_key(refs.p, ngiven, sizeof(*given)))
			rc = err_set(&e, SNAPARC_NOMEM, "out of memory");
	}
	if (!rc)
		rc = archive_restore(h->a, spec, selector || given ? (const uint64_t *)refs.p : NULL, refs.len / 8,
				     dir, &ro, &st, &e);
	if (!rc && o.progress)
		o.progress(o.progress_ctx, st.series, st.series);
	if (!rc && stats) {
		struct snaparc_restore_stats full = { sizeof(full), 0, st.series, st.records };

		give(stats, &full, sizeof(full));
	}
	select_free(sel);
	buf_free(&refs);
	return keep(h, rc, &e);
}

static int api_restore(snaparc_archive *h, const char *snapshot, const char *selector, const char *dir,
		       const struct snaparc_restore_options *opts, struct snaparc_restore_stats *stats)
{
	return restore_some(h, snapshot, selector, NULL, 0, dir, opts, stats);
}

static int api_restore_refs(snaparc_archive *h, const char *snapshot, const uint64_t *refs, size_t n,
			    const char *dir, const struct snaparc_restore_options *opts,
			    struct snaparc_restore_stats *stats)
{
	if (!refs || !n)
		return refuse(ready(h) ? h : NULL, "restore_refs: no refs");
	return restore_some(h, snapshot, NULL, refs, n, dir, opts, stats);
}

struct verify_adapter {
	snaparc_problem_fn fn;
	void *ctx;
};

static int on_problem(void *ctx, int status, const char *message)
{
	struct verify_adapter *v = ctx;

	return v->fn ? v->fn(v->ctx, status, message) : 0;
}

static int api_verify_flags(snaparc_archive *h, uint32_t flags, snaparc_problem_fn fn, void *ctx,
			    snaparc_progress_fn progress, void *progress_ctx)
{
	struct verify_adapter va = { fn, ctx };
	struct err e = { 0 };

	if (!ready(h))
		return refuse(NULL, "verify: an open handle is needed");
	if (flags & ~(uint32_t)SNAPARC_VERIFY_DEEP)
		return refuse(h, "verify: unknown flags");
	return keep(h, archive_verify(h->a, flags & SNAPARC_VERIFY_DEEP ? ARCHIVE_VERIFY_DEEP : 0, on_problem, &va,
				      progress, progress_ctx, &e), &e);
}

static int api_verify(snaparc_archive *h, snaparc_problem_fn fn, void *ctx, snaparc_progress_fn progress,
		      void *progress_ctx)
{
	return api_verify_flags(h, 0, fn, ctx, progress, progress_ctx);
}

static int api_compact(snaparc_archive *h, const struct snaparc_compact_options *opts,
		       struct snaparc_compact_stats *stats)
{
	struct snaparc_compact_options o = { .size = sizeof(o) };
	struct archive_compact_opts ao = { 0 };
	struct archive_compact_stats st;
	struct snaparc_compact_stats full;
	struct err e = { 0 };
	int rc;

	if (!ready(h))
		return refuse(NULL, "compact: an open handle is needed");
	if (opts && opts->size < offsetof(struct snaparc_compact_options, progress))
		return refuse(h, "compact: the options' size is too small");
	if (stats && stats->size < sizeof(stats->size))
		return refuse(h, "compact: the stats' size is too small");
	if (opts)
		memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
	if (o.flags & ~(uint32_t)(SNAPARC_COMPACT_DRY_RUN | SNAPARC_COMPACT_NO_DELTA | SNAPARC_COMPACT_APPLY_TOMBSTONES))
		return refuse(h, "compact: unknown flags");
	ao.keep_last = o.keep_last;
	ao.keep_within_ms = o.keep_within_ms;
	ao.dry_run = !!(o.flags & SNAPARC_COMPACT_DRY_RUN);
	ao.no_delta = !!(o.flags & SNAPARC_COMPACT_NO_DELTA);
	ao.apply_tombstones = !!(o.flags & SNAPARC_COMPACT_APPLY_TOMBSTONES);
	ao.max_chain = o.max_chain;
	rc = archive_compact(h->a, &ao, &st, o.progress, o.progress_ctx, &e);
	if (stats) {
		memset(&full, 0, sizeof(full));
		full.size = sizeof(full);
		full.snapshots_kept = st.snapshots_kept;
		full.snapshots_dropped = st.snapshots_dropped;
		full.labels_shared = st.labels_shared;
		full.bytes_before = st.bytes_before;
		full.bytes_after = st.bytes_after;
		full.input_bytes = st.input_bytes;
		full.output_bytes = st.output_bytes;
		full.records = st.records;
		full.records_full = st.records_full;
		full.records_delta = st.records_delta;
		full.records_shared = st.records_shared;
		full.segments_deleted = st.segments_deleted;
		full.segments_pending = st.segments_pending;
		full.records_cut = st.records_cut;
		full.chunks_tombstoned = st.chunks_tombstoned;
		full.chunks_dropped = st.chunks_dropped;
		memcpy((uint8_t *)stats + sizeof(stats->size), (uint8_t *)&full + sizeof(full.size),
		       (stats->size < sizeof(full) ? stats->size : sizeof(full)) - sizeof(full.size));
	}
	return keep(h, rc, &e);
}

static const struct snaparc_api api = {
	.size = sizeof(struct snaparc_api),
	.abi_major = SNAPARC_ABI_MAJOR,
	.abi_minor = SNAPARC_ABI_MINOR,
	.name = "snaparc",
	.version = SNAPARC_VERSION_STRING,
	.strerror = api_strerror,
	.open = api_open,
	.close = api_close,
	.last_error = api_last_error,
	.begin = api_begin,
	.put_records = api_put_records,
	.put_wal = api_put_wal,
	.put_series = api_put_series,
	.commit = api_commit,
	.abort = api_abort,
	.import = api_import,
	.snapshot_find = api_snapshot_find,
	.snapshot_next = api_snapshot_next,
	.snapshot_remove = api_snapshot_remove,
	.result_new = api_result_new,
	.result_free = api_result_free,
	.read_ref = api_read_ref,
	.read_labels = api_read_labels,
	.select = api_select,
	.history = api_history,
	.restore = api_restore,
	.restore_refs = api_restore_refs,
	.stat = api_stat,
	.verify = api_verify,
	.compact = api_compact,
	.verify_flags = api_verify_flags,
};

__attribute__((visibility("default"))) const struct snaparc_api *snaparc_plugin_entry(uint32_t host_abi,
										      const char **why);

const struct snaparc_api *snaparc_plugin_entry(uint32_t host_abi, const char **why)
{
	uint32_t major = host_abi >> 16;

	if (major != SNAPARC_ABI_MAJOR) {
		if (why)
			*why = major < SNAPARC_ABI_MAJOR
				       ? "the host was built for an older snaparc ABI major version; this snaparc.so implements ABI 1.x"
				       : "the host was built for a newer snaparc ABI major version; this snaparc.so implements ABI 1.x";
		return NULL;
	}
	if (why)
		*why = NULL;
	return &api;
}
