/*
 * Importing a snapshot: records go to the segments as they come; the index
 * entries are collected and written, sorted, in one transaction at commit,
 * after the segments are synced. Series locations and label hashes (a few
 * dozen bytes a series, spill.h) and label postings (postings.h) are sorted
 * in bounded memory, the archive's import_mem, with temporary files in the
 * archive's directory.
 *
 * The archive's first snapshot also makes its dictionary: its first
 * TRAIN_BYTES of records are held back, the dictionary is trained on them,
 * and then they are stored like the rest. A later, larger snapshot replaces
 * a dictionary that was trained on less than that.
 */
#include "archive_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bg.h"
#include "lz4dict.h"
#include "postings.h"
#include "sort.h"
#include "spill.h"
#include "wal.h"

/* Training takes about 40 instructions a byte: 2 MiB of records train as good
 * a dictionary as 4 did (segments of 1000 bytes, lz4dict_train(); measured:
 * the 71k-series real snapshot 0.482x -> 0.483x, 1M generated series 0.746x
 * -> 0.739x) in half the time. */
#define TRAIN_BYTES (2u << 20)
#define COMMIT_TRIES 8
#define IMPORT_MEM (40u << 20)
/* Index entries written at a time: whole blocks, so the tables come out as
 * one call would write them. */
#define INDEX_BATCH (64 * IDX_BLOCK_ENTRIES)
/* The label names the index keeps postings for: 1 to this many bytes, no NUL
 * (what idx_postings_put() in index/idx.c takes). */
#define LABEL_NAME_MAX 256
/* A series with up to this many labels is hashed from the pass that checks
 * them. */
#define HASH_LABELS ARCHIVE_HASHED_LABELS

struct exemplar_ent {
	uint64_t ref;                  /* first: sorted on */
	uint64_t seq;
	int64_t t;
	uint64_t value;
	size_t labels_off, labels_len;
};

struct archive_writer {
	struct archive *a;
	struct wal_writer *w;
	struct idx_pos committed;      /* the archive's committed end when we began */
	struct idx_snapshot snap;
	struct lz4dict_enc *enc;
	uint8_t dict[LZ4DICT_MAX];
	size_t dict_len;
	int dict_new;                  /* this import trained the dictionary */
	uint32_t last_dict;            /* the archive's newest dictionary (0: none) */
	int training;
	int have_times;                /* mint/maxt hold a chunk's times */
	struct buf train, train_sizes; /* held-back records and their sizes (size_t) */
	struct spill *locs;            /* struct idx_loc */
	struct spill *hashes;          /* struct idx_hash */
	struct bg *bg;                 /* sorts and writes their full buffers */
	struct buf intervals;          /* struct rec_interval, in arrival order */
	struct buf exemplars;          /* struct exemplar_ent */
	struct buf exemplar_labels;    /* their label sets, end to end */
	struct buf exemplar_locs;      /* struct idx_loc: each series' exemplars, stored */
	struct buf others;             /* struct other_ent: tombstones and exemplar records */
	struct buf out, scratch;
	struct postings *postings;
	void (*where_twice)(void *ctx, uint64_t ref, struct err *e);
	void *where_ctx;
	const uint8_t *pre;            /* the next record's stored form, made elsewhere, or NULL */
	size_t pre_len;
	uint8_t pre_flags;
	const struct archive_series_info *pre_series;   /* the next series record's, found elsewhere, or NULL */
	int failed;
	/* The writer does not sync a segment it has filled, which would stop
	 * the import until the device has it: its writeback is started
	 * instead, and every segment written is synced at commit. */
	int sync;
	uint32_t writing;              /* the segment being written */
	/* committing: the segments' end, a thread that syncs them and one
	 * that writes the last postings run and merges the runs meanwhile */
	struct wal_pos end;
	struct flusher {
		struct archive_writer *w;
		pthread_t thread;
		int running, rc;
		struct err err;
	} syncing, merging;
};

struct other_ent {
	struct idx_loc loc;
	uint8_t type;
};

int archive_lock(struct archive *a, struct err *e)
{
	char p[4200];

	snprintf(p, sizeof(p), "%s/lock", a->path);
	a->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (a->lock_fd < 0)
		return err_errno(e, errno, "%s", p);
	while (flock(a->lock_fd, LOCK_EX | (a->opts.wait ? 0 : LOCK_NB)) != 0) {
		int err = errno;

		if (err == EINTR)
			continue;
		close(a->lock_fd);
		a->lock_fd = -1;
		if (err == EWOULDBLOCK)
			return err_set(e, SNAPARC_BUSY, "%s: another process is writing to this archive", p);
		return err_errno(e, err, "%s: lock", p);
	}
	return 0;
}

void archive_unlock(struct archive *a)
{
	if (a->lock_fd >= 0) {
		close(a->lock_fd);
		a->lock_fd = -1;
	}
}

/* Deletes segment files after `last`: what an interrupted writer left. */
int archive_remove_segments_after(struct archive *a, uint32_t last, struct err *e)
{
	struct dirent *de;
	DIR *d = opendir(a->segdir);
	int rc = 0;

	if (!d)
		return err_errno(e, errno, "%s", a->segdir);
	while ((de = readdir(d)) != NULL) {
		char *end, p[4400];
		unsigned long n = strtoul(de->d_name, &end, 10);

		if (strlen(de->d_name) != 8 || *end || n <= last)
			continue;
		snprintf(p, sizeof(p), "%s/%s", a->segdir, de->d_name);
		if (unlink(p) != 0 && errno != ENOENT)
			rc = err_errno(e, errno, "%s: remove uncommitted segment", p);
	}
	closedir(d);
	return rc;
}

int archive_cut(struct archive *a, struct err *e)
{
	struct idx_txn *t;
	struct idx_pos end;
	int rc;

	if ((rc = idx_read_begin(a->idx, &t, e)))
		return rc;
	rc = idx_end_get(t, &end, e);
	idx_abort(t);
	return rc ? rc : archive_remove_segments_after(a, end.segment, e);
}

static int load_dictionary(struct archive_writer *w, struct err *e)
{
	struct idx_txn *t;
	const uint8_t *p;
	uint32_t id;
	int rc;

	if ((rc = idx_read_begin(w->a->idx, &t, e)))
		return rc;
	rc = idx_end_get(t, &w->committed, e);
	if (!rc)
		rc = idx_dict_last(t, &id, e);
	if (!rc && id == 0) {
		w->training = 1;
	} else if (!rc) {
		w->last_dict = id;
		w->snap.dict_id = id;
		rc = idx_dict_get(t, id, &p, &w->dict_len, e);
		if (!rc && w->dict_len <= LZ4DICT_MAX)
			memcpy(w->dict, p, w->dict_len);
		else if (!rc)
			rc = err_set(e, SNAPARC_CORRUPT, "dictionary %u has %zu bytes, over 64 KiB", id, w->dict_len);
	}
	idx_abort(t);
	if (!rc && !w->training)
		rc = lz4dict_enc_new(&w->enc, w->snap.dict_id, w->dict, w->dict_len, e);
	/* A dictionary smaller than LZ4's window was trained on too little (a
	 * small first snapshot): a larger snapshot trains a better one, under a
	 * new id; older snapshots keep theirs. */
	if (!rc && w->dict_len < LZ4DICT_MAX)
		w->training = 1;
	return rc;
}

int archive_import_begin(struct archive *a, const struct archive_import_info *info,
			 struct archive_writer **out, struct err *e)
{
	/* new segments are written past the page cache (O_DIRECT, by the
	 * writer's I/O thread): an archive's bytes are seldom read soon, and
	 * copying them into the page cache, then writing that back, took more
	 * system time than the import's own (at 10M series, 11-18 s of it
	 * against 3 s, and the wall time 24-27 s against 17-20 s) */
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_NONE, .direct = 1, .write_behind = 1 };
	struct archive_writer *w;
	uint64_t reaped, pending, mem = a->opts.import_mem ? a->opts.import_mem : IMPORT_MEM;
	int rc;

	if (a->opts.read_only)
		return err_set(e, SNAPARC_INVALID, "%s: the archive is open read-only", a->path);
	if (!info->name || !*info->name || strlen(info->name) > IDX_NAME_MAX)
		return err_set(e, SNAPARC_INVALID, "a snapshot needs a name of 1 to %d bytes", IDX_NAME_MAX);
	if (a->lock_fd >= 0)
		return err_set(e, SNAPARC_BUSY, "%s: this handle is already importing", a->path);
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	w->a = a;
	snprintf(w->snap.name, sizeof(w->snap.name), "%s", info->name);
	w->snap.source_bytes = info->source_bytes;
	/* fourteenths: 11 for the label postings, 2 for the locations, 1 for
	 * the hashes (a location is half as large again as a hash). A run of
	 * postings costs for each of its pairs, and values such as a pod's
	 * name come back in every run: fewer, larger runs are cheaper. The
	 * spills cost the same whatever their runs (but their merge's log k). */
	if ((rc = bg_new(&w->bg, e)) || (rc = spill_new(&w->locs, sizeof(struct idx_loc), mem / 14 * 2, a->path, e)) ||
	    (rc = spill_background(w->locs, w->bg, e)) ||
	    (rc = spill_new(&w->hashes, sizeof(struct idx_hash), mem / 14, a->path, e)) ||
	    (rc = spill_background(w->hashes, w->bg, e)) ||
	    (rc = postings_new(&w->postings, a->path, mem / 14 * 11, e)) || (rc = archive_lock(a, e)))
		goto fail;
	if ((rc = archive_reap(a, 0, &reaped, &pending, e)) || (rc = load_dictionary(w, e)) ||
	    (rc = archive_remove_segments_after(a, w->committed.segment, e)))
		goto fail;
	wo.segment_size = a->opts.segment_size;
	w->sync = a->opts.sync;
	w->writing = w->committed.segment;
	if ((rc = wal_writer_open_at(&w->w, a->segdir, w->committed.segment, w->committed.offset, &wo, e)))
		goto fail;
	w->snap.start = w->committed;
	*out = w;
	return 0;
fail:
	lz4dict_enc_free(w->enc);
	bg_free(w->bg);
	spill_free(w->locs);
	spill_free(w->hashes);
	postings_free(w->postings);
	archive_unlock(a);
	free(w);
	return rc;
}

void archive_import_where_twice(struct archive_writer *w, void (*where)(void *ctx, uint64_t ref, struct err *e),
				void *ctx)
{
	w->where_twice = where;
	w->where_ctx = ctx;
}

/*
 * What the index needs of a series that its record's decoding does not check:
 * label names it can keep postings for. Refused here, the error names the
 * record (the caller adds where it is). A ref no other series of the snapshot
 * has is checked at commit, when the series are sorted by ref. no_nul: the
 * caller found no NUL byte in the bytes of all the labels.
 */
static int check_label(const struct rec_label *l, const uint8_t *rec, int no_nul, struct err *e)
{
	size_t at = (size_t)((const uint8_t *)l->name - rec);
	const char *nul;

	if (l->name_len == 0 || l->name_len > LABEL_NAME_MAX)
		return err_set(e, SNAPARC_CORRUPT, "offset %zu: label name of %zu bytes cannot be indexed (1 to %d bytes)",
			       at, l->name_len, LABEL_NAME_MAX);
	if (!no_nul && (nul = memchr(l->name, 0, l->name_len)) != NULL)
		return err_set(e, SNAPARC_CORRUPT,
			       "offset %zu: label name of %zu bytes has a NUL byte, which cannot be indexed",
			       at + (size_t)(nul - l->name), l->name_len);
	return 0;
}

static int check_series(const struct rec_series *s, const uint8_t *rec, struct err *e)
{
	struct rec_label_iter it;
	struct rec_label l;
	int rc;

	rec_labels_iter(&it, &s->labels);
	while (rec_labels_next(&it, &l))
		if ((rc = check_label(&l, rec, 0, e)))
			return rc;
	return 0;
}

/* Opens segment seg to sync it, its path in p; the descriptor or -1. */
static int open_segment(const struct archive_writer *w, uint32_t seg, char *p, size_t cap)
{
	snprintf(p, cap, "%s/%08u", w->a->segdir, seg);
	return open(p, O_RDONLY | O_CLOEXEC);
}

/* Starts the device writing the segments [from, to) (a hint: errors are for
 * the sync at commit to report). */
static void start_writeback(struct archive_writer *w, uint32_t from, uint32_t to)
{
	for (uint32_t seg = from; seg < to; seg++) {
		char p[4400];
		int fd;

		if ((fd = open_segment(w, seg, p, sizeof(p))) < 0)
			continue;
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		close(fd);
	}
}

/* Syncs the segments the import wrote, and their directory. */
static int sync_written(struct archive_writer *w, struct err *e)
{
	uint32_t last = wal_writer_end(w->w).segment;

	for (uint32_t seg = w->committed.segment; seg <= last; seg++) {
		char p[4400];
		int fd, rc = 0;

		if ((fd = open_segment(w, seg, p, sizeof(p))) < 0) {
			/* an empty archive's first segment before any record */
			if (errno == ENOENT && seg == last)
				break;
			return err_errno(e, errno, "%s: open to sync", p);
		}
		if (fdatasync(fd) != 0)
			rc = err_errno(e, errno, "%s: fdatasync", p);
		close(fd);
		if (rc)
			return rc;
	}
	return wal_sync_dir(w->a->segdir, e);
}

/* Stores one record: compressed when that makes it smaller. */
static int store(struct archive_writer *w, const uint8_t *rec, size_t len, struct idx_loc *loc, struct err *e)
{
	struct wal_pos pos, end;
	int c, rc;

	if (w->pre) {
		/* compressed already, on the reading thread */
		rc = wal_writer_log_stored(w->w, w->pre, w->pre_len, w->pre_flags, &pos, e);
		w->pre = NULL;
	} else {
		buf_reset(&w->out);
		/* a series the reading thread decoded says where its chunk is */
		c = w->pre_series ? lz4dict_compress_series(w->enc, rec, len, w->pre_series->chunk_at,
							    w->pre_series->chunk_len, &w->out)
				  : lz4dict_compress(w->enc, rec, len, &w->out);
		if (c < 0)
			return err_set(e, SNAPARC_NOMEM, "out of memory compressing a record");
		rc = c ? wal_writer_log_stored(w->w, w->out.p, w->out.len, WAL_LZ4, &pos, e)
		       : wal_writer_log_stored(w->w, rec, len, 0, &pos, e);
	}
	if (rc)
		return rc;
	end = wal_writer_end(w->w);
	if (pos.segment != w->writing) {
		start_writeback(w, w->writing, pos.segment);
		w->writing = pos.segment;
	}
	loc->segment = pos.segment;
	loc->offset = pos.offset;
	loc->span = (uint32_t)(end.offset - pos.offset);
	loc->cut = 0;
	w->snap.stored_bytes += loc->span;
	return 0;
}

static int push(struct buf *b, const void *p, size_t n, struct err *e)
{
	buf_put(b, p, n);
	return b->oom ? err_set(e, SNAPARC_NOMEM, "out of memory indexing the snapshot") : 0;
}

/* Stores a validated record and collects what the index needs of it; a
 * series is checked (check_series()) unless it was when held back. */
static int put_record(struct archive_writer *w, const uint8_t *rec, size_t len, int checked, struct err *e)
{
	struct idx_loc loc;
	int rc;

	switch (rec_type(rec, len)) {
	case REC_SERIES: {
		struct rec_series s;
		struct idx_hash h;

		const struct archive_series_info *pre = w->pre_series;

		if (pre) {
			/* decoded and checked on the reading thread */
			s.ref = pre->ref;
			s.labels = pre->labels;
			s.has_chunk = pre->has_chunk;
			s.mint = pre->mint;
			s.maxt = pre->maxt;
		} else if ((rc = rec_series_decode(&s, rec, len, e)) || (!checked && (rc = check_series(&s, rec, e)))) {
			return rc;
		}
		if ((rc = store(w, rec, len, &loc, e)))
			return rc;
		loc.ref = s.ref;
		if ((rc = postings_add(w->postings, &s.labels, pre ? pre->label_hashes : NULL, s.ref, e)))
			return rc;
		h.hash = pre ? pre->label_hash : rec_labels_hash(&s.labels);
		h.ref = s.ref;
		if (s.has_chunk) {
			if (!w->have_times || s.mint < w->snap.mint)
				w->snap.mint = s.mint;
			if (!w->have_times || s.maxt > w->snap.maxt)
				w->snap.maxt = s.maxt;
			w->have_times = 1;
		}
		w->snap.series++;
		return (rc = spill_add(w->locs, &loc, e)) ? rc : spill_add(w->hashes, &h, e);
	}
	case REC_TOMBSTONES: {
		struct rec_tombstones t;
		struct rec_tombstone_iter it;
		struct rec_interval iv;
		struct other_ent o;

		if ((rc = rec_tombstones_decode(&t, rec, len, e)) || (rc = store(w, rec, len, &o.loc, e)))
			return rc;
		rec_tombstones_iter(&it, &t);
		while (rec_tombstones_next(&it, &iv))
			if (push(&w->intervals, &iv, sizeof(iv), e))
				return SNAPARC_NOMEM;
		w->snap.tombstones += t.count;
		o.loc.ref = 0;
		o.type = REC_TOMBSTONES;
		return push(&w->others, &o, sizeof(o), e);
	}
	case REC_EXEMPLARS: {
		struct rec_exemplars x;
		struct rec_exemplar_iter it;
		struct rec_exemplar ex;
		struct other_ent o;

		if ((rc = rec_exemplars_decode(&x, rec, len, e)) || (rc = store(w, rec, len, &o.loc, e)))
			return rc;
		rec_exemplars_iter(&it, &x);
		while (rec_exemplars_next(&it, &ex)) {
			struct exemplar_ent ent = { ex.ref, w->snap.exemplars++, ex.t, ex.value,
						    w->exemplar_labels.len, ex.labels.raw_len };

			if (push(&w->exemplar_labels, ex.labels.raw, ex.labels.raw_len, e) ||
			    push(&w->exemplars, &ent, sizeof(ent), e))
				return SNAPARC_NOMEM;
		}
		o.loc.ref = 0;
		o.type = REC_EXEMPLARS;
		return push(&w->others, &o, sizeof(o), e);
	}
	}
	return err_set(e, SNAPARC_CORRUPT, "offset 0: %s", len ? "unknown record type" : "empty record");
}

/* Stores the held-back records: with a dictionary trained on them when they
 * are enough (or there is none yet), else with the archive's current one. */
static int finish_training(struct archive_writer *w, int enough, struct err *e)
{
	const size_t *sizes = (const size_t *)w->train_sizes.p;
	size_t n = w->train_sizes.len / sizeof(size_t), off = 0;
	int rc = 0;

	w->training = 0;
	if (enough || !w->enc) {
		if ((rc = lz4dict_train(w->dict, sizeof(w->dict), &w->dict_len, w->train.p, sizes, (unsigned)n, e)))
			return rc;
		w->snap.dict_id = w->last_dict + 1;
		w->dict_new = 1;
		lz4dict_enc_free(w->enc);
		w->enc = NULL;
		if ((rc = lz4dict_enc_new(&w->enc, w->snap.dict_id, w->dict, w->dict_len, e)))
			return rc;
	}
	for (size_t i = 0; i < n && !rc; off += sizes[i++])
		rc = put_record(w, w->train.p + off, sizes[i], 1, e);
	buf_free(&w->train);
	buf_free(&w->train_sizes);
	return rc;
}

int archive_import_put(struct archive_writer *w, const uint8_t *rec, size_t len, struct err *e)
{
	int rc;

	if (w->failed)
		return err_set(e, w->failed, "the import failed earlier");
	w->snap.records++;
	w->snap.raw_bytes += len;
	if (w->training) {
		/* validate now, so a bad record is reported where it is met */
		switch (rec_type(rec, len)) {
		case REC_SERIES: {
			struct rec_series s;

			if (!(rc = rec_series_decode(&s, rec, len, e)))
				rc = check_series(&s, rec, e);
			break;
		}
		case REC_TOMBSTONES: { struct rec_tombstones t; rc = rec_tombstones_decode(&t, rec, len, e); break; }
		case REC_EXEMPLARS: { struct rec_exemplars x; rc = rec_exemplars_decode(&x, rec, len, e); break; }
		default: rc = err_set(e, SNAPARC_CORRUPT, "offset 0: %s", len ? "unknown record type" : "empty record");
		}
		if (!rc && (push(&w->train, rec, len, e) || push(&w->train_sizes, &len, sizeof(len), e)))
			rc = SNAPARC_NOMEM;
		if (!rc && w->train.len >= TRAIN_BYTES)
			rc = finish_training(w, 1, e);
	} else {
		rc = put_record(w, rec, len, 0, e);
	}
	if (rc)
		w->failed = rc;
	return rc;
}

struct lz4dict_enc *archive_import_compressor(struct archive_writer *w, struct err *e)
{
	struct lz4dict_enc *c = NULL;

	if (w->training || !w->enc)
		return NULL;
	if (lz4dict_enc_new(&c, w->snap.dict_id, w->dict, w->dict_len, e))
		return NULL;
	return c;
}

int archive_import_series(struct archive_series_info *out, uint64_t *hashes, const uint8_t *rec, size_t len)
{
	struct rec_label ls[HASH_LABELS];
	struct rec_series s;
	size_t n;

	if (rec_type(rec, len) != REC_SERIES || rec_series_decode_labels(&s, ls, HASH_LABELS, rec, len, NULL))
		return 0;
	/* the labels as decoded, checked and hashed without decoding them
	 * again when they are few */
	n = s.labels.count;
	if (n > HASH_LABELS) {
		if (check_series(&s, rec, NULL))
			return 0;
		out->label_hash = rec_labels_hash(&s.labels);
	} else {
		/* one look for a NUL byte in all the labels' bytes, lengths
		 * included, rather than one a name: there is almost never one */
		int no_nul = !memchr(s.labels.raw, 0, s.labels.raw_len);

		for (size_t i = 0; i < n; i++)
			if (check_label(&ls[i], rec, no_nul, NULL))
				return 0;
		out->label_hash = rec_label_array_hash(ls, n);
	}
	out->label_hashes = hashes && n <= HASH_LABELS && postings_hash_labels(ls, n, hashes) ? hashes : NULL;
	out->chunk_at = out->chunk_len = 0;
	if (s.has_chunk && (s.encoding == CHUNK_XOR || s.encoding == CHUNK_XOR2)) {
		out->chunk_at = (size_t)(s.chunk - rec);
		out->chunk_len = s.chunk_len;
	}
	out->ref = s.ref;
	out->mint = s.mint;
	out->maxt = s.maxt;
	out->has_chunk = s.has_chunk;
	out->labels = s.labels;
	return 1;
}

void archive_import_prefetch(struct archive_writer *w, const uint64_t *label_hashes, size_t n, int stage)
{
	if (!w->training)
		postings_prefetch(w->postings, label_hashes, n, stage);
}

int archive_import_put_stored(struct archive_writer *w, const uint8_t *rec, size_t len, const uint8_t *stored,
			      size_t stored_len, uint8_t flags, const struct archive_series_info *series,
			      struct err *e)
{
	int rc;

	if (stored && (w->training || (flags && flags != WAL_LZ4)))
		return err_set(e, SNAPARC_INVALID, "a record compressed elsewhere while the dictionary is chosen");
	w->pre = stored;
	w->pre_len = stored_len;
	w->pre_flags = flags;
	/* held back for training, a record is decoded again when stored */
	w->pre_series = w->training ? NULL : series;
	rc = archive_import_put(w, rec, len, e);
	w->pre = NULL;
	w->pre_series = NULL;
	return rc;
}

/* Stores each series' exemplars as one exemplars record of its own, so a
 * lookup reads just those (the snapshot's own exemplar records are kept
 * as they came, for restore). Their locations go in w->exemplar_locs. */
static int store_exemplar_groups(struct archive_writer *w, struct err *e)
{
	const struct exemplar_ent *ex = (const void *)w->exemplars.p;
	size_t nex = w->exemplars.len / sizeof(*ex);
	struct rec_exemplar *group = NULL;
	struct buf b = { 0 };
	int rc = 0;

	if (nex && !(group = malloc(nex * sizeof(*group))))
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	for (size_t i = 0, j; i < nex && !rc; i = j) {
		struct idx_loc loc;

		for (j = i; j < nex && ex[j].ref == ex[i].ref; j++) {
			group[j - i].ref = ex[j].ref;
			group[j - i].t = ex[j].t;
			group[j - i].value = ex[j].value;
			group[j - i].labels.raw = w->exemplar_labels.p + ex[j].labels_off;
			group[j - i].labels.raw_len = ex[j].labels_len;
		}
		buf_reset(&b);
		rec_exemplars_encode(&b, group, j - i);
		if (!b.oom)
			b.p[0] = ARCHIVE_SERIES_EXEMPLARS;
		if (b.oom) {
			rc = err_set(e, SNAPARC_NOMEM, "out of memory");
			break;
		}
		rc = store(w, b.p, b.len, &loc, e);
		loc.ref = ex[i].ref;
		if (!rc && push(&w->exemplar_locs, &loc, sizeof(loc), e))
			rc = SNAPARC_NOMEM;
	}
	free(group);
	buf_free(&b);
	return rc;
}

/* Writes the per-series tombstones and exemplar locations. */
static int put_side_data(struct archive_writer *w, struct idx_txn *t, struct err *e)
{
	const struct rec_interval *iv = (const void *)w->intervals.p;
	const struct idx_loc *xl = (const void *)w->exemplar_locs.p;
	size_t niv = w->intervals.len / sizeof(*iv), nxl = w->exemplar_locs.len / sizeof(*xl);
	struct buf b = { 0 };
	int rc = 0;

	for (size_t i = 0, j; i < niv && !rc; i = j) {
		buf_reset(&b);
		for (j = i; j < niv && iv[j].ref == iv[i].ref; j++) {
			buf_put_varint(&b, iv[j].mint);
			buf_put_varint(&b, iv[j].maxt);
		}
		rc = b.oom ? err_set(e, SNAPARC_NOMEM, "out of memory") :
			     idx_tombstones_put(t, w->snap.id, iv[i].ref, b.p, b.len, e);
	}
	for (size_t i = 0; i < nxl && !rc; i++)
		rc = idx_exemplars_put(t, w->snap.id, &xl[i], e);
	buf_free(&b);
	return rc;
}

/* Writes the series table from the sorted locations, INDEX_BATCH at a time
 * through batch; a ref met twice fails the import. */
static int put_series(struct archive_writer *w, struct idx_txn *t, struct idx_loc *batch, struct err *e)
{
	const void *p;
	uint64_t prev = 0;
	size_t n = 0;
	int rc, first = 1;

	while ((rc = spill_next(w->locs, &p, e)) == 1) {
		memcpy(&batch[n], p, sizeof(*batch));
		if (!first && batch[n].ref == prev) {
			err_set(e, SNAPARC_CORRUPT, "series ref %llu appears twice in the snapshot",
				(unsigned long long)prev);
			if (w->where_twice)
				w->where_twice(w->where_ctx, prev, e);
			return SNAPARC_CORRUPT;
		}
		prev = batch[n].ref;
		first = 0;
		if (++n < INDEX_BATCH)
			continue;
		if ((rc = idx_series_put(t, w->snap.id, batch, n, e)))
			return rc;
		n = 0;
	}
	return rc ? rc : idx_series_put(t, w->snap.id, batch, n, e);
}

/* Writes the hash table from the sorted hashes, likewise. */
static int put_hashes(struct archive_writer *w, struct idx_txn *t, struct idx_hash *batch, struct err *e)
{
	const void *p;
	uint32_t block = 0;
	size_t n = 0;
	int rc;

	while ((rc = spill_next(w->hashes, &p, e)) == 1) {
		memcpy(&batch[n], p, sizeof(*batch));
		if (++n < INDEX_BATCH)
			continue;
		if ((rc = idx_hashes_put(t, w->snap.id, block, batch, n, e)))
			return rc;
		block += INDEX_BATCH / IDX_BLOCK_ENTRIES;
		n = 0;
	}
	return rc ? rc : idx_hashes_put(t, w->snap.id, block, batch, n, e);
}

static void *sync_segments(void *arg)
{
	struct flusher *f = arg;

	f->rc = wal_writer_flush(f->w->w, &f->err);
	if (!f->rc && f->w->sync)
		f->rc = sync_written(f->w, &f->err);
	return NULL;
}

static void *merge_postings(void *arg)
{
	struct flusher *f = arg;

	f->rc = postings_flush(f->w->postings, &f->err);
	return NULL;
}

/* Starts fn on a thread of its own, or runs it here if there is none. */
static void flusher_start(struct archive_writer *w, struct flusher *f, void *(*fn)(void *))
{
	f->w = w;
	f->rc = 0;
	if (pthread_create(&f->thread, NULL, fn, f) == 0)
		f->running = 1;
	else
		fn(f);
}

static int flusher_wait(struct flusher *f, struct err *e)
{
	if (f->running) {
		pthread_join(f->thread, NULL);
		f->running = 0;
	}
	if (f->rc && e)
		*e = f->err;
	return f->rc;
}

/* Syncing the segments waits for the device, merging the postings runs
 * takes a core: each on a thread of its own, beside the index's writing. */
static void flush_start(struct archive_writer *w)
{
	flusher_start(w, &w->syncing, sync_segments);
	postings_flush_announce(w->postings);
	flusher_start(w, &w->merging, merge_postings);
}

/* Waits for both; the first failure's status (and message in e). */
static int flush_wait(struct archive_writer *w, struct err *e)
{
	int rc = flusher_wait(&w->syncing, e);
	int merged = flusher_wait(&w->merging, rc ? NULL : e);

	return rc ? rc : merged;
}

static int write_index(struct archive_writer *w, struct err *e)
{
	const struct other_ent *o = (const void *)w->others.p;
	struct idx_pos end = { w->end.segment, w->end.offset };
	struct idx_snapshot last;
	struct idx_txn *t;
	void *batch = malloc(INDEX_BATCH * sizeof(struct idx_loc));   /* the larger entry */
	int rc;

	if (!batch)
		return err_set(e, SNAPARC_NOMEM, "out of memory writing the index");
	if ((rc = idx_write_begin(w->a->idx, &t, e))) {
		free(batch);
		return rc;
	}
	rc = idx_snapshot_last(t, &last, e);
	w->snap.id = rc == 0 ? last.id + 1 : 1;
	rc = rc == SNAPARC_NOT_FOUND ? 0 : rc;
	w->snap.end.segment = end.segment;
	w->snap.end.offset = end.offset;
	w->snap.imported_ms = (int64_t)time(NULL) * 1000;
	if (!rc && w->dict_new)
		rc = idx_dict_put(t, w->snap.dict_id, w->dict, w->dict_len, e);
	if (!rc)
		rc = idx_snapshot_put(t, &w->snap, e);
	if (!rc)
		rc = put_series(w, t, batch, e);
	if (!rc)
		rc = put_hashes(w, t, batch, e);
	if (!rc)
		rc = put_side_data(w, t, e);
	/* the postings as they are merged, then the segments synced */
	if (!rc)
		rc = postings_write(w->postings, t, w->snap.id, e);
	if (!rc)
		rc = flush_wait(w, e);
	for (size_t i = 0; !rc && i < w->others.len / sizeof(*o); i++)
		rc = idx_other_put(t, w->snap.id, &o[i].loc, o[i].type, e);
	if (!rc)
		rc = idx_end_put(t, &end, e);
	free(batch);
	if (rc) {
		idx_abort(t);
		return rc;
	}
	return idx_commit(t, e);
}

static void writer_free(struct archive_writer *w)
{
	bg_free(w->bg);   /* first: it may be writing a run of the spills */
	lz4dict_enc_free(w->enc);
	postings_free(w->postings);
	spill_free(w->locs);
	spill_free(w->hashes);
	buf_free(&w->train);
	buf_free(&w->train_sizes);
	buf_free(&w->intervals);
	buf_free(&w->exemplars);
	buf_free(&w->exemplar_labels);
	buf_free(&w->exemplar_locs);
	buf_free(&w->others);
	buf_free(&w->out);
	buf_free(&w->scratch);
	free(w);
}

/* Cuts the segments back to the committed end. */
static void roll_back(struct archive_writer *w)
{
	char p[4400];

	wal_writer_discard(w->w);
	w->w = NULL;
	archive_remove_segments_after(w->a, w->committed.segment, NULL);
	snprintf(p, sizeof(p), "%s/%08u", w->a->segdir, w->committed.segment);
	if (truncate(p, (off_t)w->committed.offset) != 0 && errno == ENOENT && w->committed.offset == 0)
		return;
}

int archive_import_commit(struct archive_writer *w, struct idx_snapshot *snap, struct err *e)
{
	struct archive *a = w->a;
	int rc = w->failed ? err_set(e, w->failed, "the import failed earlier") : 0;

	if (!rc && w->training)
		rc = finish_training(w, 0, e);
	if (!rc) {
		/* stable: each series keeps its exemplars in the snapshot's order */
		if (sort_by_u64_key(w->exemplars.p, w->exemplars.len / sizeof(struct exemplar_ent),
				    sizeof(struct exemplar_ent)))
			rc = err_set(e, SNAPARC_NOMEM, "out of memory sorting exemplars");
		else
			rc = store_exemplar_groups(w, e);
	}
	if (!rc) {
		/* nothing more is stored: syncing the segments and sorting the
		 * postings go on while the series and hashes are indexed */
		w->end = wal_writer_end(w->w);
		flush_start(w);
		rc = spill_sort(w->locs, e);
	}
	if (!rc)
		rc = spill_sort(w->hashes, e);
	/* stable: each series keeps its intervals' order */
	if (!rc && sort_by_u64_key(w->intervals.p, w->intervals.len / sizeof(struct rec_interval),
				   sizeof(struct rec_interval)))
		rc = err_set(e, SNAPARC_NOMEM, "out of memory sorting the index");
	/* a full index map has grown when write_index fails so: write again */
	for (int tries = 0; !rc || (rc == SNAPARC_NOMEM && tries > 0 && tries < COMMIT_TRIES); tries++) {
		if (tries && ((rc = spill_rewind(w->locs, e)) || (rc = spill_rewind(w->hashes, e))))
			break;
		rc = write_index(w, e);
		if (rc != SNAPARC_NOMEM)
			break;
	}
	/* (a failure before write_index() waited for it) */
	flush_wait(w, NULL);
	if (rc) {
		roll_back(w);
	} else {
		if (snap)
			*snap = w->snap;
		wal_writer_discard(w->w);
	}
	archive_unlock(a);
	writer_free(w);
	return rc;
}

void archive_import_abort(struct archive_writer *w)
{
	struct archive *a = w->a;

	roll_back(w);
	archive_unlock(a);
	writer_free(w);
}
