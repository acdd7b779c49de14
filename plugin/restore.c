/*
 * Restore: writing an archived snapshot, or some of its series, back out as
 * a Prometheus chunk snapshot directory that Prometheus loads.
 *
 * The whole snapshot: its stored records in the order they were imported,
 * each decompressed to the bytes Prometheus wrote, written with Prometheus'
 * WAL layout. Some series: their series records, one tombstones record with
 * only their intervals, and exemplar records (at most 10,000 exemplars
 * each, in time order) with only their exemplars, in the order Prometheus
 * writes a snapshot. Either way the directory is written under a temporary
 * name beside the target and renamed when complete, as Prometheus does.
 */
#include "archive_int.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipe.h"
#include "snappy_small.h"
#include "sort.h"
#include "wal.h"

#define EXEMPLARS_PER_RECORD 10000
#define COMPRESS_ON_WRITE 0x80   /* a pipe record the writing thread compresses */
#define BACKLOG_BYTES (3 * (uint64_t)PIPE_BATCH_BYTES)

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes path's entry in its directory durable. */
static int sync_parent(const char *path, struct err *e)
{
	char copy[4200];

	snprintf(copy, sizeof(copy), "%s", path);
	return wal_sync_dir(dirname(copy), e);
}

/* The whole snapshot on two threads: the second reads each stored record,
 * decompresses it and compresses it as asked; this one writes. A snapshot
 * as imported is read in one pass over its range of the segments; a
 * compacted one through its index: series in ref order, then its other
 * records (some of its records are shared with earlier snapshots). */
struct whole_job {
	struct archive *a;
	struct idx_txn *t;
	struct wal_reader *r;
	struct idx_series_iter *it;
	struct buf others, span, scratch;    /* struct idx_loc */
	size_t next_other;
	struct wal_compressor *comp, *write_comp;   /* the reading thread's, the writing one's */
	struct buf raw, packed, write_packed;
	struct wal_writer *w;
	struct archive_restore_stats *st;
	uint64_t added_bytes;                /* the reading thread's */
	_Atomic uint64_t written_bytes;      /* the writing thread's, read by the other */
};

/* Reads a uvarint at *pos of p[0, len); 0 when it runs past the end. */
static int span_uvarint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = p[(*pos)++];

		x |= (uint64_t)(b & 0x7f) << shift;
		if (b < 0x80) {
			*v = x;
			return 1;
		}
	}
	return 0;
}

#define PROBES_MAX 512    /* ranges: a record with more labels goes to libsnappy */
#define DENSE_STRING 100  /* a label string this long is probed at every byte */

/* Where a Snappy match may start in a series record's head (see
 * codec/snappy_small.h): each label string's first byte, each value's
 * third byte and that of the first name, every byte of a label string of
 * DENSE_STRING bytes or more (a cgroup path repeats itself at no fixed
 * step), the ref's first two (its high zeros) and the chunk range, its
 * middle, mint and maxt (their high bytes). Measured on the generated
 * 1M-series snapshot's heads (299 bytes; libsnappy's search of every byte
 * gives 271.7 bytes): 271.5 bytes. Without the dense strings 275.7; with
 * them from 64 bytes 270.8, for 1.6% more instructions in the whole
 * restore; from 48 270.2. The third byte of every name adds work and no
 * bytes; without any third bytes 271.9 (from 64). Probing every byte of
 * the ref and the fields after the labels makes it larger (an early
 * 4-byte match takes bytes a longer one would have had). */
struct probes {
	struct snappy_small_range at[PROBES_MAX];
	size_t n;
};

/* Reads a label string's length at *pos: 1 when the string is within p. */
static inline int string_len(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	/* names and values are shorter than 128 bytes but for a few */
	if (*pos < len && p[*pos] < 0x80)
		*v = p[(*pos)++];
	else if (!span_uvarint(p, len, pos, v))
		return 0;
	return *v <= len - *pos;
}

/* Adds probes at[*np] = [from, to); past the room, the last one is written
 * over and *np stays at PROBES_MAX - 1, which the caller reads as too many.
 * (No branch: the label loop runs for every record.) */
static void probe(struct snappy_small_range *at, size_t *np, size_t from, size_t to)
{
	at[*np].from = (uint16_t)from;
	at[*np].to = (uint16_t)to;
	*np += *np < PROBES_MAX - 1;
}

/* Where a series record's chunk data is (FORMAT.md section 4: type, ref,
 * labels, chunk range, chunk flag, mint, maxt, encoding, data): 1 with
 * *off and *n set and the head's probes in *pr (none for a record of 64
 * KiB or more, or with too many labels), or 0 when p is not a series
 * record with a chunk, or not one this can follow (it is then compressed
 * whole: no harm either way). */
static int chunk_span(const uint8_t *p, size_t len, size_t *off, size_t *n, struct probes *pr)
{
	struct snappy_small_range *at = pr->at;
	size_t pos = 9, labels_end, np = 0;
	uint64_t count, v;

	if (len < pos || p[0] != REC_SERIES || !span_uvarint(p, len, &pos, &count) || count > len)
		return 0;
	probe(at, &np, 1, 3);
	for (uint64_t i = 0; i < count; i++) {
		if (!string_len(p, len, &pos, &v))
			return 0;
		if (v >= DENSE_STRING) {
			probe(at, &np, pos, pos + v);
		} else {
			probe(at, &np, pos, pos + 1);
			/* "name" of "__name__" begins "namespace" */
			if (i == 0 && v >= 6)
				probe(at, &np, pos + 2, pos + 3);
		}
		pos += v;
		if (!string_len(p, len, &pos, &v))
			return 0;
		if (v >= DENSE_STRING) {
			probe(at, &np, pos, pos + v);
		} else {
			probe(at, &np, pos, pos + 1);
			if (v >= 6)
				probe(at, &np, pos + 2, pos + 3);
		}
		pos += v;
	}
	labels_end = pos;
	pos += 8;                                   /* chunk range */
	if (pos > len || !span_uvarint(p, len, &pos, &v) || v != 1)
		return 0;
	pos += 17;                                  /* mint, maxt, encoding */
	if (pos > len || !span_uvarint(p, len, &pos, &v) || v > len - pos)
		return 0;
	probe(at, &np, labels_end, labels_end + 1);
	probe(at, &np, labels_end + 4, labels_end + 5);
	probe(at, &np, labels_end + 9, labels_end + 10);
	probe(at, &np, labels_end + 17, labels_end + 18);
	/* positions are 16 bits */
	pr->n = np < PROBES_MAX - 1 && len <= UINT16_MAX ? np : 0;
	*off = pos;
	*n = (size_t)v;
	return 1;
}

/* A record compressed as the restore asks, the chunk data of a series
 * record left as it is (an XOR chunk does not compress: Snappy would only
 * spend time on it) and its head searched only at its probes. */
static int restore_compress(struct wal_compressor *c, const uint8_t *p, size_t len, struct buf *out, struct err *e)
{
	struct probes pr;
	size_t off, n;

	if (!chunk_span(p, len, &off, &n, &pr))
		return wal_compress(c, p, len, out, e);
	if (!pr.n)
		return wal_compress_span(c, p, len, off, n, out, e);
	return wal_compress_probed(c, p, len, off, n, pr.at, pr.n, out, e);
}

/* Adds a record to the batch, compressed here or left to the writer. */
static int whole_add(struct whole_job *j, struct pipe_batch *b, const uint8_t *p, size_t len, struct pipe_rec *meta,
		     struct err *e)
{
	int flags;

	/* the writing thread compresses what it has time for: while it keeps
	 * up (less than BACKLOG_BYTES of records added and not yet written),
	 * records are left to it; when it falls behind, this thread does
	 * them, which slows it down until the writer catches up (bytes as
	 * they are in the batches) */
	if (j->added_bytes - atomic_load_explicit(&j->written_bytes, memory_order_relaxed) < BACKLOG_BYTES) {
		flags = 0;
		meta->flags = COMPRESS_ON_WRITE;
	} else if ((flags = restore_compress(j->comp, p, len, &j->packed, e)) < 0) {
		return flags;
	} else {
		meta->flags = (uint8_t)flags;
	}
	if (flags) {
		p = j->packed.p;
		len = j->packed.len;
	}
	j->added_bytes += len;
	return pipe_batch_add(b, p, len, meta, e);
}

static int whole_fill(void *ctx, struct pipe_batch *b, struct err *e)
{
	struct whole_job *j = ctx;
	struct wal_record rec;
	int rc = 1;

	while (b->data.len < PIPE_BATCH_BYTES && (rc = wal_reader_next(j->r, &rec, e)) == 1) {
		struct pipe_rec meta = { .offset = rec.offset, .end = rec.end, .segment = rec.segment };
		const uint8_t *p;
		size_t len;

		if ((rc = archive_unpack(j->a, j->t, rec.flags, rec.data, rec.len, &j->raw, &p, &len, e)))
			return err_prefix(e, "%s: offset %llu", wal_reader_segment_path(j->r),
					  (unsigned long long)rec.offset);
		if (len && p[0] == ARCHIVE_SERIES_EXEMPLARS)
			continue;
		if ((rc = whole_add(j, b, p, len, &meta, e)))
			return rc;
	}
	return b->data.len >= PIPE_BATCH_BYTES ? 1 : rc;
}

static int collect_other(void *ctx, const struct idx_loc *loc, uint8_t type)
{
	struct buf *b = ctx;

	(void)type;
	buf_put(b, loc, sizeof(*loc));
	return b->oom ? SNAPARC_NOMEM : 0;
}

static int walk_fill(void *ctx, struct pipe_batch *b, struct err *e)
{
	struct whole_job *j = ctx;
	const struct idx_loc *others = (const void *)j->others.p;
	int rc;

	while (b->data.len < PIPE_BATCH_BYTES) {
		struct pipe_rec meta = { 0 };
		struct idx_loc loc;
		size_t stored;

		if (j->it && (rc = idx_series_iter_next(j->it, &loc, e)) <= 0) {
			if (rc < 0)
				return rc;
			idx_series_iter_close(j->it);
			j->it = NULL;
		}
		if (!j->it) {
			if (j->next_other == j->others.len / sizeof(*others))
				return 0;
			loc = others[j->next_other++];
		}
		if ((rc = archive_load(j->a, j->t, &loc, &j->raw, &j->span, &j->scratch, &stored, e)))
			return rc;
		if (j->it && (j->raw.len < 9 || j->raw.p[0] != REC_SERIES || be64_get(j->raw.p + 1) != loc.ref))
			return err_set(e, SNAPARC_CORRUPT, "%s/%08u: offset %llu: not the series record of ref %llu",
				       j->a->segdir, loc.segment, (unsigned long long)loc.offset,
				       (unsigned long long)loc.ref);
		meta.segment = loc.segment;
		meta.offset = loc.offset;
		meta.end = loc.offset + loc.span;
		if ((rc = whole_add(j, b, j->raw.p, j->raw.len, &meta, e)))
			return rc;
	}
	return 1;
}

/* Logs a record the reading thread left to this one: a series record
 * compressed straight into the writer's page where it fits. */
static int drain_one(struct whole_job *j, const uint8_t *p, size_t len, struct err *e)
{
	struct probes pr;
	size_t off, n;
	int flags;

	if (chunk_span(p, len, &off, &n, &pr))
		return wal_writer_log_probed(j->w, j->write_comp, p, len, off, n, pr.n ? pr.at : NULL, pr.n,
					     &j->write_packed, e);
	if ((flags = wal_compress(j->write_comp, p, len, &j->write_packed, e)) < 0)
		return flags;
	if (flags)
		return wal_writer_log_stored(j->w, j->write_packed.p, j->write_packed.len, (uint8_t)flags, NULL, e);
	return wal_writer_log_stored(j->w, p, len, 0, NULL, e);
}

static int whole_drain(void *ctx, const struct pipe_batch *b, struct err *e)
{
	struct whole_job *j = ctx;
	const struct pipe_rec *r = (const void *)b->recs.p;
	size_t n = b->recs.len / sizeof(*r);
	int rc;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = b->data.p + r[i].off;

		if (r[i].flags == COMPRESS_ON_WRITE)
			rc = drain_one(j, p, r[i].len, e);
		else
			rc = wal_writer_log_stored(j->w, p, r[i].len, r[i].flags, NULL, e);
		if (rc)
			return rc;
		j->st->records++;
	}
	atomic_fetch_add_explicit(&j->written_bytes, b->data.len, memory_order_relaxed);
	return 0;
}

/* Every record of the snapshot, decompressed. */
static int write_whole(struct archive *a, const struct idx_snapshot *found, struct wal_writer *w, int compression,
		       struct archive_restore_stats *st, struct err *e)
{
	struct wal_reader_opts ro = { .allow_lz4 = 1, .raw = 1, .partial_last_page = 1 };
	struct whole_job j = { .a = a, .w = w, .st = st };
	struct idx_snapshot now, *s = &now;
	struct wal_pos from, to;
	int rc;

	if ((rc = archive_read_txn(a, &j.t, e)))
		return rc;
	/* the snapshot as this transaction sees it: a compaction may have moved
	 * its records, or dropped it, since it was looked up */
	if ((rc = idx_snapshot_get(j.t, found->id, &now, e))) {
		if (rc == SNAPARC_NOT_FOUND)
			err_set(e, rc, "snapshot %u (%s) was removed as the restore began", found->id, found->name);
		goto out;
	}
	from = (struct wal_pos){ s->start.segment, s->start.offset };
	to = (struct wal_pos){ s->end.segment, s->end.offset };
	if ((rc = wal_compressor_new(&j.comp, compression, e)) ||
	    (rc = wal_compressor_new(&j.write_comp, compression, e)))
		goto out;
	if (s->flags & IDX_SNAP_COMPACTED) {
		if (!(rc = idx_others_scan(j.t, s->id, collect_other, &j.others, e)) &&
		    !(rc = idx_series_iter_open(j.t, s->id, &j.it, e)))
			rc = pipe_run(walk_fill, &j, whole_drain, &j, e);
		if (rc == SNAPARC_NOMEM && j.others.oom)
			rc = err_set(e, rc, "out of memory");
	} else if (!(rc = wal_reader_open_range(&j.r, a->segdir, &from, &to, &ro, e))) {
		rc = pipe_run(whole_fill, &j, whole_drain, &j, e);
	}
	if (!rc)
		st->series = s->series;
out:
	wal_reader_close(j.r);
	idx_series_iter_close(j.it);
	wal_compressor_free(j.comp);
	wal_compressor_free(j.write_comp);
	archive_read_done(a, j.t);
	buf_free(&j.raw);
	buf_free(&j.packed);
	buf_free(&j.write_packed);
	buf_free(&j.others);
	buf_free(&j.span);
	buf_free(&j.scratch);
	return rc;
}

struct restore_exemplar {
	int64_t t;                 /* first: sorted on (as unsigned, after the bias below) */
	uint64_t ref, value;
	size_t labels_off, labels_len;
};

/* Some series: their records, their tombstones, their exemplars. */
static int write_some(struct archive *a, uint32_t snap, const uint64_t *refs, size_t n,
		      struct wal_writer *w, struct archive_restore_stats *st, struct err *e)
{
	struct archive_series s = { 0 };
	struct buf iv = { 0 }, ex = { 0 }, exlabels = { 0 }, rec = { 0 };
	struct rec_exemplar *batch = NULL;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		struct dec d;

		if (i && refs[i] == refs[i - 1])
			continue;
		if ((rc = archive_read_ref(a, snap, refs[i], &s, e)) ||
		    (rc = wal_writer_log(w, s.record.p, s.record.len, NULL, e)))
			break;
		st->series++;
		st->records++;
		dec_init(&d, s.tombstones.p, s.tombstones.len);
		while (dec_left(&d)) {
			struct rec_interval v = { refs[i], dec_varint(&d, "mint"), dec_varint(&d, "maxt") };

			buf_put(&iv, &v, sizeof(v));
		}
		if (s.exemplars.len) {
			struct rec_exemplars x;
			struct rec_exemplar_iter it;
			struct rec_exemplar one;

			if ((rc = rec_exemplars_decode(&x, s.exemplars.p, s.exemplars.len, e)))
				break;
			rec_exemplars_iter(&it, &x);
			while (rec_exemplars_next(&it, &one)) {
				/* bias the time so that it sorts as an unsigned key */
				struct restore_exemplar r = { (int64_t)((uint64_t)one.t ^ (1ull << 63)), one.ref,
							      one.value, exlabels.len, one.labels.raw_len };

				buf_put(&exlabels, one.labels.raw, one.labels.raw_len);
				buf_put(&ex, &r, sizeof(r));
			}
		}
		if (iv.oom || ex.oom || exlabels.oom)
			rc = err_set(e, SNAPARC_NOMEM, "out of memory");
	}
	if (!rc) {
		rec_tombstones_encode(&rec, (const void *)iv.p, iv.len / sizeof(struct rec_interval));
		rc = rec.oom ? err_set(e, SNAPARC_NOMEM, "out of memory") : wal_writer_log(w, rec.p, rec.len, NULL, e);
		st->records++;
	}
	if (!rc && ex.len) {
		struct restore_exemplar *x = (void *)ex.p;
		size_t nx = ex.len / sizeof(*x);

		/* in time order, as Prometheus' exemplar storage hands them out */
		if (sort_by_u64_key(x, nx, sizeof(*x)) || !(batch = malloc(EXEMPLARS_PER_RECORD * sizeof(*batch))))
			rc = err_set(e, SNAPARC_NOMEM, "out of memory");
		for (size_t i = 0; i < nx && !rc; i += EXEMPLARS_PER_RECORD) {
			size_t m = nx - i < EXEMPLARS_PER_RECORD ? nx - i : EXEMPLARS_PER_RECORD;

			for (size_t j = 0; j < m; j++) {
				batch[j].ref = x[i + j].ref;
				batch[j].t = (int64_t)((uint64_t)x[i + j].t ^ (1ull << 63));
				batch[j].value = x[i + j].value;
				batch[j].labels.raw = exlabels.p + x[i + j].labels_off;
				batch[j].labels.raw_len = x[i + j].labels_len;
			}
			buf_reset(&rec);
			rec_exemplars_encode(&rec, batch, m);
			rc = rec.oom ? err_set(e, SNAPARC_NOMEM, "out of memory") : wal_writer_log(w, rec.p, rec.len, NULL, e);
			st->records++;
		}
	}
	free(batch);
	archive_series_free(&s);
	buf_free(&iv);
	buf_free(&ex);
	buf_free(&exlabels);
	buf_free(&rec);
	return rc;
}

/* What restores into out that were killed left beside it: OUT.tmp-PID and
 * OUT.old-PID of processes that are gone. A temporary is removed; an old
 * directory is put back at out when out is missing (the process died
 * between its two renames), else removed. Those of live processes stay. */
static void reclaim(const char *out)
{
	char copy[4200], parent[4200], base[4200], path[8500];
	const char *name;
	struct dirent *de;
	DIR *d;

	snprintf(copy, sizeof(copy), "%s", out);
	snprintf(parent, sizeof(parent), "%s", dirname(copy));
	snprintf(copy, sizeof(copy), "%s", out);
	snprintf(base, sizeof(base), "%s", basename(copy));
	if (!(d = opendir(parent)))
		return;
	while ((de = readdir(d)) != NULL) {
		size_t bl = strlen(base);
		char *end;
		long pid;
		int is_old;

		name = de->d_name;
		if (strncmp(name, base, bl) || (strncmp(name + bl, ".tmp-", 5) && strncmp(name + bl, ".old-", 5)))
			continue;
		is_old = name[bl + 1] == 'o';
		pid = strtol(name + bl + 5, &end, 10);
		if (*end || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", parent, name);
		if (is_old && access(out, F_OK) != 0 && errno == ENOENT && rename(path, out) == 0)
			continue;
		rm_tree(path);
	}
	closedir(d);
}

int archive_restore(struct archive *a, const char *snapshot, const uint64_t *refs, size_t n,
		    const char *out, const struct archive_restore_opts *opts, struct archive_restore_stats *st,
		    struct err *e)
{
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_SNAPPY, .sync = 1, .direct = 1 };
	struct archive_restore_stats ignore;
	struct idx_snapshot s;
	struct wal_writer *w = NULL;
	struct stat sb;
	char dir[4096], tmp[4200], old[4200];
	size_t len = strlen(out);
	int rc, exists;

	/* "DIR/" names DIR: without the slash, the temporary goes beside it,
	 * not inside, and a symlink at DIR is not followed */
	while (len > 1 && out[len - 1] == '/')
		len--;
	if (len >= sizeof(dir))
		return err_set(e, SNAPARC_INVALID, "%s: path too long", out);
	memcpy(dir, out, len);
	dir[len] = '\0';
	out = dir;
	if (!st)
		st = &ignore;
	memset(st, 0, sizeof(*st));
	if (opts) {
		wo.compression = opts->compression;
		wo.segment_size = opts->segment_size;
	}
	if ((rc = archive_snapshot_find(a, snapshot, &s, e)))
		return rc;
	exists = lstat(out, &sb) == 0;
	if (exists && !(opts && opts->overwrite))
		return err_set(e, SNAPARC_EXISTS, "%s exists (restore does not overwrite unless told to)", out);
	if (exists && !S_ISDIR(sb.st_mode))
		return err_set(e, SNAPARC_EXISTS, "%s exists and is not a directory", out);
	reclaim(out);
	snprintf(tmp, sizeof(tmp), "%s.tmp-%d", out, (int)getpid());
	rm_tree(tmp);
	if (mkdir(tmp, 0777) != 0)
		return err_errno(e, errno, "%s", tmp);
	if ((rc = wal_writer_open(&w, tmp, &wo, e)))
		goto fail;
	rc = refs ? write_some(a, s.id, refs, n, w, st, e) : write_whole(a, &s, w, wo.compression, st, e);
	if (rc) {
		wal_writer_discard(w);
		goto fail;
	}
	if ((rc = wal_writer_close(w, e)))
		goto fail;
	if (exists) {
		/* swap them in one step: a crash leaves the old or the new one at
		 * out, never neither; tmp then holds the old */
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) == 0) {
			rm_tree(tmp);
			return sync_parent(out, e);
		}
		if (errno != EINVAL && errno != ENOSYS) {
			rc = err_errno(e, errno, "%s: exchange with %s", tmp, out);
			goto fail;
		}
		/* a file system without the exchange: keep the old directory
		 * until the new one is in place (a crash between the two renames
		 * leaves both beside out, which the next restore puts back) */
		snprintf(old, sizeof(old), "%s.old-%d", out, (int)getpid());
		if (rename(out, old) != 0) {
			rc = err_errno(e, errno, "%s: move aside", out);
			goto fail;
		}
	}
	if (rename(tmp, out) != 0) {
		rc = err_errno(e, errno, "%s: rename to %s", tmp, out);
		if (exists)
			rename(old, out);
		goto fail;
	}
	if (exists)
		rm_tree(old);
	return sync_parent(out, e);
fail:
	rm_tree(tmp);
	return rc;
}
