/*
 * Compaction: retention, and the kept snapshots rewritten so that repeated
 * data is stored once.
 *
 * Phase 1 reads the kept snapshots through one read transaction (the state
 * before compaction, which other readers keep seeing) and appends their
 * records to new segments after the committed end, snapshot by snapshot
 * from the newest back, series in ref order, then the snapshot's other
 * records and its series' exemplars; a second thread reads the series
 * records ahead (put_series()). A series' record is compared with the
 * same ref's record in the next newer kept snapshot: identical, it is not
 * written again (both entries point at one record); one whose head chunk
 * that record continues (a host that snapshots without restarting) is a
 * cut of it (codec/xordelta.h: its location and a sample count in the
 * index, nothing in the segments); another is stored as an LZ4 delta
 * against the root of that record's chain (the record stored whole that
 * it is, or is a delta or cut of: the labels are what they share) or
 * against the record itself, while the chain of deltas a read follows
 * stays within max_chain; otherwise whole. What the next older snapshot
 * needs of each record (its locations, its chain's root) goes to one of two
 * temporary files, the one the snapshot before the previous used, written
 * over from its start; the new locations alone go to a third, in order,
 * for the switch. So memory does not grow with the archive, and the
 * temporary files take 32 bytes a record and 192 bytes a record of the
 * largest snapshot, where one file of 96 bytes a record did (10 x 1M
 * series: 512 MB against 960 MB; the time is the same).
 *
 * Phase 2 switches the index to the new layout in one write transaction:
 * dropped snapshots removed, kept ones' entries rewritten, the new committed
 * end, the first live segment, and the old segments marked retired at this
 * transaction. A crash before the commit leaves segments past the committed
 * end, which the next writer cuts; after it, retired segments, which the
 * next writer deletes.
 *
 * Phase 3 deletes the retired segments once LMDB's reader table shows no
 * reader whose transaction began before the switch: an older reader may
 * still read the old locations.
 */
#include "archive_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "lz4dict.h"
#include "tmpfile.h"
#include "wal.h"
#include "xordelta.h"

#define DEFAULT_CHAIN 6
#define COMMIT_TRIES 8
#define TMP_CHUNK 4096          /* entries read or written at a time */
#define REAP_WAIT_MS 2000       /* how long compaction waits for old readers */
#define AHEAD 8                 /* series records asked for before they are read */
#define PREFETCH_BYTES 256

enum { ENT_SERIES, ENT_EXEMPLARS, ENT_OTHER };

/* One record of a kept snapshot, as the next older one reads it: 96 bytes,
 * in a file of chain entries. A location and a cut (idx_loc's: the record
 * stored there cut to that many samples). */
struct ent {
	uint64_t ref;
	uint64_t old_off, new_off;
	/* the start of its chain (a record stored whole), old and new */
	uint64_t root_old_off, root_new_off;
	uint32_t old_seg, old_span, new_seg, new_span;
	uint32_t root_old_seg, root_old_span, root_new_seg, root_new_span;
	union {
		uint64_t hash;       /* an other record: of its raw bytes */
		uint32_t maxt_at;    /* a series: where its maxt starts, 0 not known */
	} u;
	uint16_t old_cut, new_cut, root_old_cut;
	uint8_t type;          /* an other record */
	uint8_t kind : 2, depth : 5;
	uint32_t root_snap;    /* the snapshot whose record the root is */
	uint32_t pad;
};

_Static_assert(sizeof(struct ent) == 96, "the chain entry grew");

/* One record's new location as the switch writes it to the index: 32
 * bytes, as many as the file of them takes on a full disk beside the new
 * segments. */
struct newloc {
	uint64_t ref;          /* an other record: its ordinal */
	uint64_t off;
	uint32_t seg, span;
	uint16_t cut;
	uint8_t type;          /* an other record */
	uint8_t pad[5];
};

_Static_assert(sizeof(struct newloc) == 32, "the new location's entry grew");

#define LOCS 2          /* compact's temporary file of new locations */

/* An unnamed temporary file of fixed-size entries. */
struct tmpf {
	int fd;
	uint64_t n;            /* entries in it (written, or buffered to be) */
};

struct kept {
	struct idx_snapshot s;
	/* its entries of each kind: in chain file `chain`, and in the file of new locations */
	uint64_t first[3], count[3], loc_first[3];
	int chain;
	uint32_t labels;               /* the label index that serves it after compaction */
	uint64_t stored;               /* bytes of its own records written */
	struct idx_pos start, end;
};

/* Sequential reading of a run of entries of the temporary file. */
struct ent_reader {
	const struct tmpf *f;
	const char *dir;
	uint64_t next, end;       /* entry numbers */
	struct ent buf[TMP_CHUNK];
	size_t n, i;
};

/* An old segment's mapping: base and len once known; tried and none: base
 * NULL, tried 1. */
struct old_map {
	const uint8_t *base;
	size_t len;
	int tried;
};

/* The old segments' mappings a thread has looked up, by segment number
 * (archive_segment_mapping()). */
struct old_maps {
	struct old_map *m;
	size_t n;
};

struct compact {
	struct archive *a;
	const struct archive_compact_opts *o;
	struct archive_compact_stats *st;
	archive_compact_progress_fn progress;
	void *ctx;
	struct idx_txn *r;              /* the state before compaction */
	struct wal_writer *w;
	struct lz4dict_enc *enc;        /* the newest dictionary, for records that were deltas */
	struct lz4dict_enc *delta;      /* for deltas alone (lz4dict_delta_enc_new()) */
	char tmp_dir[4200];             /* where the temporary files are (messages name it) */
	/* [0] and [1]: chain entries, the snapshot's (cur) and the previous
	 * one's; [LOCS]: new locations, all kept snapshots' */
	struct tmpf tmp[3];
	int cur;
	struct ent out[TMP_CHUNK];
	struct newloc lout[TMP_CHUNK];
	size_t nout, nlout;
	struct kept *kept;
	size_t nkept;
	uint64_t done, total;
	unsigned max_chain;
	int labels_same;                /* put_record() found the labels its base's */
	/* the next snapshot compacted (the next older kept one): its series, in
	 * ref order, for recode_for() */
	struct idx_series_iter *next_it;
	struct idx_loc next_loc;
	int next_have, next_end;
	uint64_t cur_ref;               /* the series being stored, and */
	int cur_recode;                 /* whether it is recoded: -1 not known yet */
	uint32_t cur_snap, next_snap;   /* the snapshot being compacted, the next older one */
	struct buf tomb_chunk, tomb_rec; /* apply_tombstones()' */
	struct xor_enc tomb_enc;
	struct old_maps maps;           /* this thread's */
	/* per record scratch */
	struct buf raw, prev_raw, root_raw, span, scratch, packed, packed2, pspan, pscratch, next_raw;
};

/* ---- the temporary files ---- */

/* Writes n entries of size bytes, the last n of f's, from p. */
static int tmpf_write(const struct compact *c, const struct tmpf *f, const void *p, size_t n, size_t size,
		      struct err *e)
{
	return tmpfile_write(f->fd, c->tmp_dir, (f->n - n) * size, p, n * size, e);
}

static int tmp_flush(struct compact *c, struct err *e)
{
	int rc = tmpf_write(c, &c->tmp[c->cur], c->out, c->nout, sizeof(struct ent), e);

	if (!rc)
		rc = tmpf_write(c, &c->tmp[LOCS], c->lout, c->nlout, sizeof(struct newloc), e);
	c->nout = c->nlout = 0;
	return rc;
}

static int tmp_add(struct compact *c, const struct ent *x, struct err *e)
{
	c->out[c->nout++] = *x;
	c->tmp[c->cur].n++;
	c->lout[c->nlout++] = (struct newloc){ .ref = x->ref, .off = x->new_off, .seg = x->new_seg,
					       .span = x->new_span, .cut = x->new_cut, .type = x->type };
	c->tmp[LOCS].n++;
	return c->nout == TMP_CHUNK ? tmp_flush(c, e) : 0;
}

/* The count of k's entries of a kind so far, and where they start. */
static void ents_begin(struct compact *c, struct kept *k, int kind)
{
	k->first[kind] = c->tmp[c->cur].n;
	k->loc_first[kind] = c->tmp[LOCS].n;
}

static void ents_end(struct compact *c, struct kept *k, int kind)
{
	k->count[kind] = c->tmp[c->cur].n - k->first[kind];
}

static void ent_reader_init(struct ent_reader *r, const struct compact *c, const struct tmpf *f, uint64_t first,
			    uint64_t count)
{
	r->f = f;
	r->dir = c->tmp_dir;
	r->next = first;
	r->end = first + count;
	r->n = r->i = 0;
}

/* 1 and *out, 0 at the end, or an error. */
static int ent_next(struct ent_reader *r, const struct ent **out, struct err *e)
{
	if (r->i == r->n) {
		size_t want = r->end - r->next < TMP_CHUNK ? (size_t)(r->end - r->next) : TMP_CHUNK;
		int rc;

		if (!want)
			return 0;
		if ((rc = tmpfile_read(r->f->fd, r->dir, r->next * sizeof(struct ent), r->buf, want * sizeof(struct ent),
					e)))
			return rc;
		r->next += want;
		r->n = want;
		r->i = 0;
	}
	*out = &r->buf[r->i++];
	return 1;
}

/* ---- records ---- */

/*
 * archive_segment_map() for the old segments, which do not change until
 * the switch, from a copy of their mappings: each record is mapped twice
 * (asked for ahead, then read), and the archive's lock each time was a
 * twentieth of compaction.
 */
static int map_old(struct archive *a, struct old_maps *maps, uint32_t segment, uint64_t offset, uint32_t span,
		   const uint8_t **p, struct err *e)
{
	struct old_map *m;
	int rc;

	if (segment >= maps->n) {
		size_t n = (size_t)segment + 16;
		struct old_map *grown = realloc(maps->m, n * sizeof(*grown));

		if (!grown)
			return archive_segment_map(a, segment, offset, span, p, e);
		memset(grown + maps->n, 0, (n - maps->n) * sizeof(*grown));
		maps->m = grown;
		maps->n = n;
	}
	m = &maps->m[segment];
	if (!m->tried) {
		if ((rc = archive_segment_mapping(a, segment, &m->base, &m->len, e)) < 0)
			return rc;
		m->tried = 1;
		if (!rc)
			m->base = NULL;
	}
	if (!m->base)
		return archive_segment_map(a, segment, offset, span, p, e);
	if (offset > m->len || span > m->len - offset)
		return 0;
	*p = m->base + offset;
	return 1;
}

/* What a thread reads the old state through: a read transaction of the
 * state before compaction (its own), and its segments' mappings. */
struct src {
	struct archive *a;
	struct idx_txn *t;
	struct old_maps *maps;
};

/* Reads the stored record at loc: data, len and flags its stored payload
 * (in span or scratch), raw its record. again: this compaction has read it
 * before, in a mapped old segment (which does not change), so its CRCs
 * are not computed again. */
static int read_at(const struct src *src, const struct idx_loc *loc, int again, struct buf *span,
		   struct buf *scratch, struct buf *raw, const uint8_t **data, size_t *len, uint8_t *flags,
		   struct err *e)
{
	struct archive *a = src->a;
	const uint8_t *at, *rec;
	size_t rec_len;
	/* the old segments stay as they are until the switch: read them in
	 * place (a pread of each record was a third of the time) */
	int rc = map_old(a, src->maps, loc->segment, loc->offset, loc->span, &at, e);

	if (rc == 0) {
		rc = archive_load_stored(a, src->t, loc, raw, span, scratch, data, len, flags, e);
	} else if (rc > 0) {
		if ((rc = again ? wal_reparse_record(at, loc->span, loc->offset, data, len, flags, scratch, e)
				: wal_parse_record(at, loc->span, loc->offset, 1, data, len, flags, scratch, e)))
			return err_prefix(e, "%s/%08u", a->segdir, loc->segment);
		if ((rc = archive_unpack(a, src->t, *flags, *data, *len, raw, &rec, &rec_len, e)))
			return err_prefix(e, "%s/%08u: offset %llu", a->segdir, loc->segment,
					  (unsigned long long)loc->offset);
		if (rec != raw->p) {
			buf_reset(raw);
			buf_put(raw, rec, rec_len);
			if (raw->oom)
				return err_set(e, SNAPARC_NOMEM, "out of memory");
		}
		if (loc->cut && (rc = archive_apply_cut(a, loc, raw, scratch, e)))
			return rc;
	}
	if (!rc && loc->cut) {
		/* nothing of its own is stored: as if it were stored plain */
		*data = raw->p;
		*len = raw->len;
		*flags = 0;
	}
	return rc;
}

static void count_input(struct compact *c, uint64_t bytes)
{
	c->done += bytes;
	c->st->input_bytes += bytes;
}

/* read_at() on this thread, counted as input. */
static int read_stored(struct compact *c, const struct idx_loc *loc, int again, struct buf *span,
		       struct buf *scratch, struct buf *raw, const uint8_t **data, size_t *len, uint8_t *flags,
		       struct err *e)
{
	struct src src = { c->a, c->r, &c->maps };
	int rc = read_at(&src, loc, again, span, scratch, raw, data, len, flags, e);

	if (!rc)
		count_input(c, loc->span);
	return rc;
}

static int is_delta(const uint8_t *data, size_t len, uint8_t flags)
{
	return flags == WAL_LZ4 && len && data[0] == 0;
}

/* Appends a stored payload to the new segments; *loc receives where. */
static int put_stored(struct compact *c, struct kept *k, const uint8_t *p, size_t len, uint8_t flags,
		      struct idx_loc *loc, struct err *e)
{
	struct wal_pos pos, end;
	int rc = wal_writer_log_stored(c->w, p, len, flags, &pos, e);

	if (rc)
		return rc;
	end = wal_writer_end(c->w);
	loc->segment = pos.segment;
	loc->offset = pos.offset;
	loc->span = (uint32_t)(end.offset - pos.offset);
	k->stored += loc->span;
	c->st->output_bytes += loc->span;
	return 0;
}

/* Whether an interval of a series' tombstones (varint pairs mint, maxt,
 * as the index keeps them) holds all of [lo, hi]; -1 when they
 * do not decode. */
static int deleted(const uint8_t *p, size_t len, int64_t lo, int64_t hi)
{
	struct dec d;
	int hit = 0;

	dec_init(&d, p, len);
	while (!hit && dec_left(&d)) {
		int64_t mint = dec_varint(&d, "mint"), maxt = dec_varint(&d, "maxt");

		hit = dec_ok(&d) && mint <= lo && hi <= maxt;
	}
	return dec_ok(&d) ? hit : -1;
}

/*
 * With apply_tombstones: the series record in raw, of snapshot snap,
 * without the samples its tombstones there delete (an XOR chunk written
 * again without them, with its mint, maxt and last value; a chunk of
 * another encoding only when every sample is deleted, by its range); a
 * chunk that loses every sample is left out. 1 when raw changed, 2 when it
 * lost its chunk, 0 when not, or an error.
 */
static int apply_tombstones(struct compact *c, uint32_t snap, struct buf *raw, struct err *e)
{
	struct rec_series s;
	const uint8_t *p;
	size_t len, kept = 0;
	int64_t t, first = 0, last = 0;
	uint64_t v, last_v = 0;
	int rc, hit = 0;

	if (!c->o->apply_tombstones || rec_type(raw->p, raw->len) != REC_SERIES ||
	    rec_series_decode(&s, raw->p, raw->len, NULL) || !s.has_chunk)
		return 0;
	if ((rc = idx_tombstones_get(c->r, snap, s.ref, &p, &len, e)) == SNAPARC_NOT_FOUND)
		return 0;
	if (rc)
		return rc;
	if (s.encoding != CHUNK_XOR) {
		if ((rc = deleted(p, len, s.mint, s.maxt)) <= 0)
			goto done;
		hit = 1;
	} else {
		struct xor_iter it;

		xor_enc_free(&c->tomb_enc);
		xor_enc_init(&c->tomb_enc);
		xor_iter_init(&it, s.chunk, s.chunk_len);
		while ((rc = xor_iter_next(&it, &t, &v)) == 1) {
			if ((rc = deleted(p, len, t, t)) < 0)
				break;
			if (rc) {
				hit = 1;
				continue;
			}
			if (!kept++)
				first = t;
			last = t;
			last_v = v;
			if (xor_enc_append(&c->tomb_enc, t, v))
				return err_set(e, SNAPARC_NOMEM, "out of memory");
		}
		if (rc < 0 && it.error) {
			char why[200];

			xor_iter_describe(&it, why, sizeof(why));
			return err_set(e, SNAPARC_CORRUPT, "snapshot %u ref %llu: head chunk: %s", snap,
				       (unsigned long long)s.ref, why);
		}
	}
done:
	if (rc < 0)
		return err_set(e, SNAPARC_CORRUPT, "snapshot %u ref %llu: malformed tombstones in the index", snap,
			       (unsigned long long)s.ref);
	if (!hit)
		return 0;
	if (!kept) {
		s.has_chunk = 0;
	} else {
		const uint8_t *ch = xor_enc_bytes(&c->tomb_enc, &s.chunk_len);

		buf_reset(&c->tomb_chunk);
		buf_put(&c->tomb_chunk, ch, s.chunk_len);
		s.chunk = c->tomb_chunk.p;
		s.mint = first;
		s.maxt = last;
		s.last_value = last_v;
		s.tail = NULL;
		s.tail_len = 0;
	}
	buf_reset(&c->tomb_rec);
	rec_series_encode(&c->tomb_rec, &s);
	if (c->tomb_rec.oom || c->tomb_chunk.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	buf_reset(raw);
	buf_put(raw, c->tomb_rec.p, c->tomb_rec.len);
	return raw->oom ? err_set(e, SNAPARC_NOMEM, "out of memory") : kept ? 1 : 2;
}

/*
 * Whether the series record in c->raw (ref c->cur_ref) is stored recoded:
 * yes, unless the next snapshot compacted (the next older one) has a record
 * of the series with the same head chunk (the same mint). That one is then
 * a cut of it, and reading it would write the recoded chunk again as XOR
 * before cutting it, at every lookup of every snapshot the chunk lived in.
 * Sets both encoders.
 */
static int read_uncounted(struct compact *c, const struct idx_loc *l, int again, struct buf *out, struct err *e);

static int recode_for(struct compact *c, struct err *e)
{
	struct rec_series a, b;
	int rc;

	if (c->cur_recode >= 0)
		return 0;
	c->cur_recode = 1;
	while (c->next_it && !c->next_end && (!c->next_have || c->next_loc.ref < c->cur_ref)) {
		if ((rc = idx_series_iter_next(c->next_it, &c->next_loc, e)) < 0)
			return rc;
		c->next_have = rc;
		c->next_end = !rc;
	}
	if (c->next_have && c->next_loc.ref == c->cur_ref) {
		if ((rc = read_uncounted(c, &c->next_loc, 0, &c->next_raw, e)) ||
		    (rc = apply_tombstones(c, c->next_snap, &c->next_raw, e)) < 0)
			return rc;
		if (!rec_series_decode(&a, c->raw.p, c->raw.len, NULL) &&
		    !rec_series_decode(&b, c->next_raw.p, c->next_raw.len, NULL) && a.has_chunk && b.has_chunk &&
		    a.mint == b.mint)
			c->cur_recode = 0;
	}
	lz4dict_enc_recode(c->delta, c->cur_recode);
	if (c->enc)
		lz4dict_enc_recode(c->enc, c->cur_recode);
	return 0;
}

/*
 * Whether a series record's payload holds it as Prometheus wrote it, not
 * recoded (codec/recode.h): import stores it so, to stay fast; compaction
 * stores it recoded. A recoded payload holds fewer bytes than the record
 * (or, rarely, as many: it is then recompressed to the same bytes).
 */
static int not_recoded(const uint8_t *data, size_t len, uint8_t flags, const struct buf *raw)
{
	uint32_t id;
	size_t held, hdr;
	struct err e;

	if (rec_type(raw->p, raw->len) != REC_SERIES)
		return 0;
	if (!flags)
		return 1;
	return !lz4dict_header(data, len, &id, &held, &hdr, &e) && id && held == raw->len;
}

/* Stores a record whole: its stored payload as it is, unless that is a
 * delta, whose base may not survive, or a series record not yet recoded:
 * then compressed anew. */
static int put_whole(struct compact *c, struct kept *k, const uint8_t *data, size_t len, uint8_t flags,
		     const struct buf *raw, struct idx_loc *loc, struct err *e)
{
	int z, delta = is_delta(data, len, flags);

	c->st->records_full++;
	if (!c->enc || (!delta && !not_recoded(data, len, flags, raw)))
		return put_stored(c, k, data, len, flags, loc, e);
	if (rec_type(raw->p, raw->len) == REC_SERIES && (z = recode_for(c, e)))
		return z;
	if (!delta && !c->cur_recode)
		return put_stored(c, k, data, len, flags, loc, e);
	buf_reset(&c->packed);
	if ((z = lz4dict_compress(c->enc, raw->p, raw->len, &c->packed)) < 0)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	/* recoded, a record may still be smaller as it was (its chunk like
	 * those the dictionary holds) */
	if (!delta && (!z || c->packed.len >= len))
		return put_stored(c, k, data, len, flags, loc, e);
	return z ? put_stored(c, k, c->packed.p, c->packed.len, WAL_LZ4, loc, e)
		 : put_stored(c, k, raw->p, raw->len, 0, loc, e);
}

static void set_new(struct ent *x, const struct idx_loc *l)
{
	x->new_seg = l->segment;
	x->new_off = l->offset;
	x->new_span = l->span;
}

/* Reads the record stored at l into out without counting it as input (it
 * was, or will be, counted where it is compacted itself); again as
 * read_stored()'s. */
static int read_uncounted(struct compact *c, const struct idx_loc *l, int again, struct buf *out, struct err *e)
{
	struct src src = { c->a, c->r, &c->maps };
	const uint8_t *pd;
	size_t plen;
	uint8_t pf;

	return read_at(&src, l, again, &c->pspan, &c->pscratch, out, &pd, &plen, &pf, e);
}

/* Where entry x's record was before compaction. */
static struct idx_loc old_loc(const struct ent *x)
{
	return (struct idx_loc){ x->ref, x->old_off, x->old_seg, x->old_span, x->old_cut };
}

/* The record of entry pe of snapshot snap (the next newer one), into
 * c->prev_raw, as it is stored anew. It was read, CRCs checked, when that
 * snapshot was compacted. */
static int read_prev(struct compact *c, uint32_t snap, const struct ent *pe, struct err *e)
{
	struct idx_loc pl = old_loc(pe);
	int rc = read_uncounted(c, &pl, 1, &c->prev_raw, e);

	return rc ? rc : apply_tombstones(c, snap, &c->prev_raw, e) < 0 ? e->code : 0;
}

/* The record at the root of base's chain, into c->root_raw: a newer
 * snapshot's, read as itself before. */
static int read_root(struct compact *c, const struct ent *base, struct err *e)
{
	struct idx_loc rl = { base->ref, base->root_old_off, base->root_old_seg, base->root_old_span,
			      base->root_old_cut };
	int rc = read_uncounted(c, &rl, 1, &c->root_raw, e);

	return rc ? rc : apply_tombstones(c, base->root_snap, &c->root_raw, e) < 0 ? e->code : 0;
}

static void root_from(struct ent *x, const struct ent *r)
{
	x->root_old_off = r->root_old_off;
	x->root_old_seg = r->root_old_seg;
	x->root_old_span = r->root_old_span;
	x->root_old_cut = r->root_old_cut;
	x->root_snap = r->root_snap;
	x->root_new_off = r->root_new_off;
	x->root_new_seg = r->root_new_seg;
	x->root_new_span = r->root_new_span;
}

static int same_raw(const struct compact *c)
{
	return c->prev_raw.len == c->raw.len && !memcmp(c->prev_raw.p, c->raw.p, c->raw.len);
}

/*
 * Stores the record in c->raw (stored as data/len/flags) for entry x: with
 * base (the next newer snapshot's entry, its record in c->prev_raw) the same
 * record is shared, a cut of it stored as one, a changed one stored as a
 * delta against it or its root when that is smaller and the chain allows;
 * otherwise whole.
 */
static int put_record(struct compact *c, struct kept *k, const struct ent *base, const uint8_t *data, size_t len,
		      uint8_t flags, struct ent *x, struct err *e)
{
	struct idx_loc nl;
	uint32_t cut;
	size_t at = 0;
	int rc, z = 0;

	c->labels_same = 0;
	c->cur_ref = x->ref;
	c->cur_recode = x->kind == ENT_SERIES ? -1 : 1;
	if (base && same_raw(c)) {
		x->u = base->u;
		x->new_seg = base->new_seg;
		x->new_off = base->new_off;
		x->new_span = base->new_span;
		x->new_cut = base->new_cut;
		x->depth = base->depth;
		root_from(x, base);
		c->labels_same = 1;
		c->st->records_shared++;
		return 0;
	}
	if (base)
		root_from(x, base);
	if (base && x->kind == ENT_SERIES)
		at = base->u.maxt_at;
	if (base && !c->o->no_delta && x->kind == ENT_SERIES &&
	    (rc = xordelta_cut_of(c->prev_raw.p, c->prev_raw.len, c->raw.p, c->raw.len, &c->packed, &at, &cut))) {
		if (rc < 0)
			return err_set(e, SNAPARC_NOMEM, "out of memory");
		x->u.maxt_at = (uint32_t)at;
		/* a cut of the same stored record as the base, which is longer */
		x->new_seg = base->new_seg;
		x->new_off = base->new_off;
		x->new_span = base->new_span;
		x->new_cut = (uint16_t)cut;
		x->depth = base->depth;
		c->labels_same = 1;
		c->st->records_cut++;
		return 0;
	}
	if (x->kind == ENT_SERIES)
		x->u.maxt_at = at <= UINT32_MAX ? (uint32_t)at : 0;
	if (base && !c->o->no_delta) {
		size_t limit = is_delta(data, len, flags) ? c->raw.len : len;
		/* the record stored at base's location: base's own, unless base is a cut */
		int own = !base->new_cut;

		/*
		 * A series against the root of the base's chain, the record
		 * stored whole that the base is, or is a delta or cut of: it
		 * shares the labels as well as the base does and keeps the
		 * chain at depth 1.
		 */
		if (x->kind == ENT_SERIES && (base->depth >= 1 || !own) && base->root_new_span) {
			struct lz4dict_base r = { base->root_new_seg, base->root_new_off, base->root_new_span };

			if ((rc = read_root(c, base, e)) || (rc = recode_for(c, e)))
				return rc;
			buf_reset(&c->packed);
			z = lz4dict_delta(c->delta, &r, c->root_raw.p, c->root_raw.len, c->raw.p, c->raw.len, limit,
					  &c->packed);
			if (z < 0)
				return err_set(e, SNAPARC_NOMEM, "out of memory");
			if (z)
				x->depth = 1;
		}
		/* else against the base's record */
		if (!z && own && base->depth < c->max_chain) {
			struct lz4dict_base b = { base->new_seg, base->new_off, base->new_span };

			if (x->kind == ENT_SERIES && (rc = recode_for(c, e)))
				return rc;
			buf_reset(&c->packed);
			z = lz4dict_delta(c->delta, &b, c->prev_raw.p, c->prev_raw.len, c->raw.p, c->raw.len, limit,
					  &c->packed);
			if (z < 0)
				return err_set(e, SNAPARC_NOMEM, "out of memory");
			if (z)
				x->depth = (uint8_t)(base->depth + 1);
		}
		if (z) {
			if ((rc = put_stored(c, k, c->packed.p, c->packed.len, WAL_LZ4, &nl, e)))
				return rc;
			set_new(x, &nl);
			c->st->records_delta++;
			return 0;
		}
	}
	if ((rc = put_whole(c, k, data, len, flags, &c->raw, &nl, e)))
		return rc;
	set_new(x, &nl);
	x->depth = 0;
	x->root_old_off = x->old_off;
	x->root_old_seg = x->old_seg;
	x->root_old_span = x->old_span;
	x->root_old_cut = x->old_cut;
	x->root_snap = c->cur_snap;
	x->root_new_off = x->new_off;
	x->root_new_seg = x->new_seg;
	x->root_new_span = x->new_span;
	return 0;
}

static void progress(struct compact *c)
{
	if (c->progress)
		c->progress(c->ctx, c->done, c->total);
}

/* ---- one snapshot ---- */

/*
 * Asks for the first bytes of the record at l before they are read: records
 * are read in ref order from where import wrote them, in the snapshot's
 * order, so each is a cache and TLB miss somewhere in the segments; a wait
 * on each was a sixth of the time.
 */
static void prefetch(const struct src *src, const struct idx_loc *l)
{
	const uint8_t *p;
	struct err ignore;   /* the read itself reports what is wrong */

	if (map_old(src->a, src->maps, l->segment, l->offset, l->span, &p, &ignore) == 1)
		for (uint32_t at = 0; at < l->span && at < PREFETCH_BYTES; at += 64)
			__builtin_prefetch(p + at);
}

/*
 * A snapshot's series are read ahead on a second thread: in ref order, each
 * record with the next newer snapshot's record of its ref, CRCs checked and
 * decompressed (about half of the work) into a ring of slots, while this
 * thread compares and stores them. The reading thread has a read
 * transaction of its own, of the same state (the archive's lock keeps
 * writers out), and its own mappings.
 */
#define RING 256        /* records read ahead at most */
#define HANDOVER 16     /* records handed over at a time, each way */

struct slot {
	struct idx_loc loc;
	struct ent pe;                  /* when have_pe: the next newer snapshot's entry of the ref */
	int have_pe;
	const uint8_t *data;            /* the stored payload: in span, scratch or raw */
	size_t len;
	uint8_t flags;
	struct buf raw, prev_raw, span, scratch, pspan, pscratch;
};

struct ahead {
	struct compact *c;
	const struct kept *k, *p;
	struct old_maps maps;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t filled, taken;         /* slots [taken, filled) are the taker's */
	int done, stop, rc;
	struct err e;
	struct slot slot[RING];
};

/* The reading thread's part: one slot after another, until the end, an
 * error, or stop. */
static int read_series(struct ahead *h, struct idx_txn *t, struct idx_series_iter *it, struct ent_reader *pr,
		       uint64_t *read, struct err *e)
{
	struct src src = { h->c->a, t, &h->maps };
	struct idx_loc locs[AHEAD];
	const struct ent *pe = NULL;
	uint64_t n = 0, filled = 0, taken = 0, head = 0, tail = 0;   /* locs[head, tail) are asked for */
	int rc, more = 0, end = 0;

	if (pr && (more = ent_next(pr, &pe, e)) < 0)
		return more;
	for (;;) {
		struct slot *s;
		struct idx_loc pl;
		const uint8_t *pd;
		size_t plen;
		uint8_t pf;

		while (!end && tail - head < AHEAD) {
			struct idx_loc *l = &locs[tail % AHEAD];

			if ((rc = idx_series_iter_next(it, l, e)) < 0)
				return rc;
			if (rc == 0) {
				end = 1;
				break;
			}
			prefetch(&src, l);
			if (pr && pr->i + tail - head < pr->n) {
				pl = old_loc(&pr->buf[pr->i + tail - head]);
				prefetch(&src, &pl);
			}
			tail++;
		}
		if (head == tail)
			return 0;
		/* hand over what is read; wait for a free slot */
		if (n - filled >= HANDOVER || n - taken >= RING) {
			int stop;

			pthread_mutex_lock(&h->mu);
			h->filled = filled = n;
			pthread_cond_broadcast(&h->cv);
			while (n - h->taken >= RING && !h->stop)
				pthread_cond_wait(&h->cv, &h->mu);
			taken = h->taken;
			stop = h->stop;
			pthread_mutex_unlock(&h->mu);
			if (stop)
				return 0;
		}
		s = &h->slot[n % RING];
		s->loc = locs[head++ % AHEAD];
		if ((rc = read_at(&src, &s->loc, 0, &s->span, &s->scratch, &s->raw, &s->data, &s->len, &s->flags, e)))
			return rc;
		while (more && pe->ref < s->loc.ref)
			if ((more = ent_next(pr, &pe, e)) < 0)
				return more;
		s->have_pe = more && pe->ref == s->loc.ref;
		if (s->have_pe) {
			s->pe = *pe;
			pl = old_loc(pe);
			if ((rc = read_at(&src, &pl, 1, &s->pspan, &s->pscratch, &s->prev_raw, &pd, &plen, &pf, e)))
				return rc;
		}
		*read = ++n;
	}
}

static void *read_ahead(void *arg)
{
	struct ahead *h = arg;
	struct compact *c = h->c;
	struct idx_txn *t = NULL;
	struct idx_series_iter *it = NULL;
	struct ent_reader *pr = NULL;
	uint64_t n = 0;
	int rc;

	if (!(rc = idx_read_begin(c->a->idx, &t, &h->e)) && !(rc = idx_series_iter_open(t, h->k->s.id, &it, &h->e))) {
		if (h->p && !(pr = malloc(sizeof(*pr)))) {
			rc = err_set(&h->e, SNAPARC_NOMEM, "out of memory");
		} else {
			if (pr)
				ent_reader_init(pr, c, &c->tmp[h->p->chain], h->p->first[ENT_SERIES],
						h->p->count[ENT_SERIES]);
			rc = read_series(h, t, it, pr, &n, &h->e);
		}
	}
	free(pr);
	if (it)
		idx_series_iter_close(it);
	if (t)
		idx_abort(t);
	pthread_mutex_lock(&h->mu);
	h->filled = n;
	h->rc = rc;
	h->done = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* The taker's side: the slots it has, and has given back. */
struct taker {
	uint64_t next, avail, given;
};

/* The next slot read: 1 and *s, 0 at the end, or the reading thread's
 * error. The slot taken before is given back (HANDOVER at a time). */
static int take(struct ahead *h, struct taker *tk, struct slot **s, struct err *e)
{
	if (tk->next == tk->avail || tk->next - tk->given >= HANDOVER) {
		int rc = 0;

		pthread_mutex_lock(&h->mu);
		h->taken = tk->given = tk->next;
		pthread_cond_broadcast(&h->cv);
		while (h->filled == tk->next && !h->done)
			pthread_cond_wait(&h->cv, &h->mu);
		tk->avail = h->filled;
		if (tk->next == tk->avail && h->rc < 0) {
			rc = h->rc;
			*e = h->e;
		}
		pthread_mutex_unlock(&h->mu);
		if (tk->next == tk->avail)
			return rc;
	}
	*s = &h->slot[tk->next++ % RING];
	return 1;
}

/* Stops the reading thread (when the taker stopped first), waits for it,
 * and frees h. */
static void ahead_end(struct ahead *h, pthread_t th)
{
	pthread_mutex_lock(&h->mu);
	h->stop = 1;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(th, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	for (size_t i = 0; i < RING; i++) {
		struct slot *s = &h->slot[i];

		buf_free(&s->raw);
		buf_free(&s->prev_raw);
		buf_free(&s->span);
		buf_free(&s->scratch);
		buf_free(&s->pspan);
		buf_free(&s->pscratch);
	}
	free(h->maps.m);
	free(h);
}

static void swap_bufs(struct buf *a, struct buf *b)
{
	struct buf t = *a;

	*a = *b;
	*b = t;
}

/* The series of k, against the previous kept snapshot p (or none). Sets
 * *same when k's refs and labels are exactly p's. */
static int put_series(struct compact *c, struct kept *k, const struct kept *p, int *same, struct err *e)
{
	struct ahead *h = calloc(1, sizeof(*h));
	struct taker tk = { 0 };
	struct slot *s;
	pthread_t th;
	uint64_t matched = 0, n = 0;
	int rc = 0;

	*same = p != NULL;
	if (!h)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	h->c = c;
	h->k = k;
	h->p = p;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&th, NULL, read_ahead, h) != 0) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return err_set(e, SNAPARC_NOMEM, "cannot start a second thread");
	}
	c->next_it = NULL;
	c->next_have = c->next_end = 0;
	if (k > c->kept && (rc = idx_series_iter_open(c->r, k[-1].s.id, &c->next_it, e))) {
		ahead_end(h, th);
		return rc;
	}
	ents_begin(c, k, ENT_SERIES);
	while ((rc = take(h, &tk, &s, e)) == 1) {
		struct ent x = { .kind = ENT_SERIES };
		const uint8_t *data = s->data;
		size_t len = s->len;
		uint8_t flags = s->flags;

		n++;
		count_input(c, s->loc.span);
		x.ref = s->loc.ref;
		x.old_seg = s->loc.segment;
		x.old_off = s->loc.offset;
		x.old_span = s->loc.span;
		x.old_cut = (uint16_t)s->loc.cut;
		/* the slot's records are this thread's raw and prev_raw now (data
		 * may point into the first: the same bytes) */
		swap_bufs(&c->raw, &s->raw);
		if ((rc = apply_tombstones(c, k->s.id, &c->raw, e)) < 0)
			break;
		if (rc) {
			/* changed: stored anew */
			c->st->chunks_tombstoned++;
			c->st->chunks_dropped += rc == 2;
			data = c->raw.p;
			len = c->raw.len;
			flags = 0;
			rc = 0;
		}
		if (s->have_pe) {
			matched++;
			swap_bufs(&c->prev_raw, &s->prev_raw);
			if (apply_tombstones(c, p->s.id, &c->prev_raw, e) < 0) {
				rc = e->code;
				break;
			}
			rc = put_record(c, k, &s->pe, data, len, flags, &x, e);
			if (!rc && *same && !c->labels_same) {
				struct rec_series a, b;

				if (rec_series_decode(&a, c->raw.p, c->raw.len, NULL) ||
				    rec_series_decode(&b, c->prev_raw.p, c->prev_raw.len, NULL) ||
				    !rec_labels_equal(&a.labels, &b.labels))
					*same = 0;
			}
		} else {
			*same = 0;
			rc = put_record(c, k, NULL, data, len, flags, &x, e);
		}
		if (rc)
			break;
		c->st->records++;
		if ((rc = tmp_add(c, &x, e)))
			break;
		if ((n & 4095) == 0)
			progress(c);
	}
	ahead_end(h, th);
	if (c->next_it)
		idx_series_iter_close(c->next_it);
	c->next_it = NULL;
	ents_end(c, k, ENT_SERIES);
	if (p && (matched != p->count[ENT_SERIES] || n != matched))
		*same = 0;
	return rc;
}

struct side_ctx {
	struct compact *c;
	struct kept *k;
	const struct kept *p;
	struct ent_reader *pr;
	const struct ent *pe;
	int more;
	uint64_t others[2];   /* other records so far: exemplars, tombstones */
	struct err *e;
};

/* A series' exemplars record: shared with, or a delta against, the previous snapshot's. */
static int put_exemplars(void *ctx, const struct idx_loc *loc, uint8_t type)
{
	struct side_ctx *sc = ctx;
	struct compact *c = sc->c;
	struct ent x = { .kind = ENT_EXEMPLARS, .ref = loc->ref };
	const uint8_t *data;
	size_t len;
	uint8_t flags;
	int rc;

	(void)type;
	x.old_seg = loc->segment;
	x.old_off = loc->offset;
	x.old_span = loc->span;
	if ((rc = read_stored(c, loc, 0, &c->span, &c->scratch, &c->raw, &data, &len, &flags, sc->e)))
		return rc;
	while (sc->more > 0 && sc->pe->ref < loc->ref)
		sc->more = ent_next(sc->pr, &sc->pe, sc->e);
	if (sc->more < 0)
		return sc->more;
	c->st->records++;
	if (sc->more && sc->pe->ref == loc->ref) {
		struct ent base = *sc->pe;

		if ((rc = read_prev(c, sc->p->s.id, &base, sc->e)) ||
		    (rc = put_record(c, sc->k, &base, data, len, flags, &x, sc->e)))
			return rc;
	} else if ((rc = put_record(c, sc->k, NULL, data, len, flags, &x, sc->e))) {
		return rc;
	}
	return tmp_add(c, &x, sc->e);
}

/* The snapshot's own other records (tombstones, exemplars as Prometheus
 * wrote them), in their order; one identical to one of the previous
 * snapshot's is stored once, another as a delta against the previous
 * snapshot's record of its type and ordinal (exemplar records grow). */
static int put_other(void *ctx, const struct idx_loc *loc, uint8_t type)
{
	struct side_ctx *sc = ctx;
	struct compact *c = sc->c;
	struct ent x = { .kind = ENT_OTHER, .type = type };
	struct ent_reader *pr = sc->pr;
	const struct ent *pe = NULL;
	const uint8_t *data;
	size_t len;
	uint8_t flags;
	int rc;

	x.old_seg = loc->segment;
	x.old_off = loc->offset;
	x.old_span = loc->span;
	if ((rc = read_stored(c, loc, 0, &c->span, &c->scratch, &c->raw, &data, &len, &flags, sc->e)))
		return rc;
	x.u.hash = XXH64(c->raw.p, c->raw.len, 0);
	x.ref = sc->others[type == REC_TOMBSTONES]++;   /* its ordinal among its type's */
	c->st->records++;
	if (sc->p) {
		/* an identical one anywhere, else the one of its type and ordinal */
		struct ent base;
		int have = 0, loaded = 0;

		ent_reader_init(pr, c, &c->tmp[sc->p->chain], sc->p->first[ENT_OTHER], sc->p->count[ENT_OTHER]);
		while ((rc = ent_next(pr, &pe, sc->e)) == 1) {
			if (pe->type != type)
				continue;
			if (pe->u.hash == x.u.hash) {
				if ((rc = read_prev(c, sc->p->s.id, pe, sc->e)))
					return rc;
				if (same_raw(c)) {
					base = *pe;
					have = loaded = 1;
					break;
				}
			}
			if (pe->ref == x.ref && !have) {
				base = *pe;
				have = 1;
			}
		}
		if (rc < 0)
			return rc;
		if (have) {
			if ((!loaded && (rc = read_prev(c, sc->p->s.id, &base, sc->e))) ||
			    (rc = put_record(c, sc->k, &base, data, len, flags, &x, sc->e)))
				return rc;
			return tmp_add(c, &x, sc->e);
		}
	}
	if ((rc = put_record(c, sc->k, NULL, data, len, flags, &x, sc->e)))
		return rc;
	return tmp_add(c, &x, sc->e);
}

static int put_snapshot(struct compact *c, struct kept *k, const struct kept *p, struct err *e)
{
	struct wal_pos start = wal_writer_end(c->w), end;
	struct side_ctx sc = { .c = c, .k = k, .p = p, .e = e };
	int rc, same;

	k->start.segment = start.segment;
	k->start.offset = start.offset;
	c->cur_snap = k->s.id;
	c->next_snap = k > c->kept ? k[-1].s.id : 0;
	/* p's entries are read back from their file; k's go over those of the
	 * snapshot before p, which no one reads any more */
	if ((rc = tmp_flush(c, e)))
		return rc;
	c->cur ^= 1;
	c->tmp[c->cur].n = 0;
	k->chain = c->cur;
	if ((rc = put_series(c, k, p, &same, e)))
		return rc;
	k->labels = same ? p->labels : k->s.labels;
	if (same && k->s.labels != p->labels)
		c->st->labels_shared++;
	if (!(sc.pr = malloc(sizeof(*sc.pr))))
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	ents_begin(c, k, ENT_OTHER);
	rc = idx_others_scan(c->r, k->s.id, put_other, &sc, e);
	ents_end(c, k, ENT_OTHER);
	if (!rc) {
		if (p) {
			ent_reader_init(sc.pr, c, &c->tmp[p->chain], p->first[ENT_EXEMPLARS], p->count[ENT_EXEMPLARS]);
			sc.more = ent_next(sc.pr, &sc.pe, e);
			rc = sc.more < 0 ? sc.more : 0;
		}
		ents_begin(c, k, ENT_EXEMPLARS);
		if (!rc)
			rc = idx_exemplars_scan(c->r, k->s.id, put_exemplars, &sc, e);
		ents_end(c, k, ENT_EXEMPLARS);
	}
	free(sc.pr);
	end = wal_writer_end(c->w);
	k->end.segment = end.segment;
	k->end.offset = end.offset;
	progress(c);
	return rc;
}

/* ---- retention ---- */

static int64_t snapshot_time(const struct idx_snapshot *s)
{
	return s->mint || s->maxt ? s->maxt : s->imported_ms;
}

/* Which snapshots are kept: all when no rule is given, else those that some
 * rule keeps (the newest keep_last, those within keep_within of the newest). */
static int choose(struct compact *c, struct idx_snapshot *all, size_t n, struct err *e)
{
	int64_t newest = INT64_MIN;
	int rules = c->o->keep_last || c->o->keep_within_ms;

	(void)e;
	for (size_t i = 0; i < n; i++)
		if (snapshot_time(&all[i]) > newest)
			newest = snapshot_time(&all[i]);
	for (size_t i = 0; i < n; i++) {
		int keep = !rules;

		if (c->o->keep_last && n - i <= c->o->keep_last)
			keep = 1;
		if (c->o->keep_within_ms && newest - snapshot_time(&all[i]) <= c->o->keep_within_ms)
			keep = 1;
		if (keep)
			c->kept[c->nkept++].s = all[i];
	}
	return 0;
}

/* ---- switching the index ---- */

static int write_entries(struct compact *c, struct idx_txn *t, const struct kept *k, struct err *e)
{
	struct newloc *x = malloc(TMP_CHUNK * sizeof(*x));
	struct idx_loc *locs = malloc(TMP_CHUNK * sizeof(*locs));
	int rc = 0;

	if (!x || !locs) {
		free(x);
		free(locs);
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	}
	for (int kind = ENT_SERIES; kind <= ENT_OTHER && !rc; kind++) {
		for (uint64_t at = 0, n; at < k->count[kind] && !rc; at += n) {
			n = k->count[kind] - at < TMP_CHUNK ? k->count[kind] - at : TMP_CHUNK;
			if ((rc = tmpfile_read(c->tmp[LOCS].fd, c->tmp_dir, (k->loc_first[kind] + at) * sizeof(*x), x,
						n * sizeof(*x), e)))
				break;
			for (size_t i = 0; i < n; i++)
				locs[i] = (struct idx_loc){ kind == ENT_OTHER ? 0 : x[i].ref, x[i].off, x[i].seg,
							    x[i].span, kind == ENT_SERIES ? x[i].cut : 0 };
			/* series in blocks: TMP_CHUNK is a multiple of the table's block */
			if (kind == ENT_SERIES)
				rc = idx_series_put(t, k->s.id, locs, n, e);
			else
				for (size_t i = 0; i < n && !rc; i++)
					rc = kind == ENT_EXEMPLARS ? idx_exemplars_put(t, k->s.id, &locs[i], e)
								   : idx_other_put(t, k->s.id, &locs[i], x[i].type, e);
		}
	}
	free(x);
	free(locs);
	return rc;
}

static int switch_index(struct compact *c, const struct idx_snapshot *all, size_t nall, const struct idx_pos *end,
			uint32_t first_new, struct err *e)
{
	struct idx_retired ret;
	struct idx_txn *t;
	uint32_t live;
	int rc;

	if ((rc = idx_write_begin(c->a->idx, &t, e)))
		return rc;
	if ((rc = idx_live_get(t, &live, e)) || (rc = idx_retired_get(t, &ret, e)))
		goto out;
	/* all cleared first: then each table is written in key order at its
	 * end (MDB_APPEND), which fills its pages */
	for (size_t i = 0, j = 0; i < nall && !rc; i++) {
		if (j < c->nkept && c->kept[j].s.id == all[i].id)
			rc = idx_snapshot_clear(t, c->kept[j++].s.id,
						IDX_CLEAR_SERIES | IDX_CLEAR_EXEMPLARS | IDX_CLEAR_OTHERS, e);
	}
	for (size_t i = 0, j = 0; i < nall && !rc; i++) {
		if (j < c->nkept && c->kept[j].s.id == all[i].id) {
			struct kept *k = &c->kept[j++];
			struct idx_snapshot s = k->s;

			rc = write_entries(c, t, k, e);
			s.start = k->start;
			s.end = k->end;
			s.stored_bytes = k->stored;
			s.flags |= IDX_SNAP_COMPACTED;
			s.labels = k->labels;
			if (!rc)
				rc = idx_snapshot_update(t, &s, e);
		} else {
			rc = idx_snapshot_remove(t, all[i].id, e);
		}
	}
	/* label indexes no snapshot uses any more: those a kept snapshot gave up
	 * for its predecessor's, and those only dropped ones used */
	for (size_t i = 0; i < nall && !rc; i++) {
		int used;

		if ((rc = idx_labels_used(t, all[i].labels, 0, &used, e)))
			break;
		if (!used)
			rc = idx_snapshot_clear(t, all[i].labels, IDX_CLEAR_LABELS, e);
	}
	if (rc)
		goto out;
	ret.first = ret.first < ret.end ? ret.first : live;
	ret.end = first_new;
	ret.txn = idx_txn_id(t);
	if ((rc = idx_end_put(t, end, e)) || (rc = idx_live_put(t, first_new, e)) ||
	    (rc = idx_retired_put(t, &ret, e)))
		goto out;
	return idx_commit(t, e);
out:
	idx_abort(t);
	return rc;
}

/* ---- deleting what no reader needs ---- */

static int sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return nanosleep(&ts, NULL);
}

/*
 * Deletes the retired segments when every reader's transaction began after
 * they were retired, waiting up to wait_ms for older readers to finish.
 * Under the writer lock.
 */
int archive_reap(struct archive *a, long wait_ms, uint64_t *deleted, uint64_t *pending, struct err *e)
{
	struct idx_retired ret;
	struct idx_txn *t;
	uint64_t oldest;
	int rc;

	*deleted = *pending = 0;
	if ((rc = idx_read_begin(a->idx, &t, e)))
		return rc;
	rc = idx_retired_get(t, &ret, e);
	idx_abort(t);
	if (rc || ret.first == ret.end)
		return rc;
	for (long waited = 0;; waited += 50) {
		if ((rc = idx_oldest_reader(a->idx, &oldest, e)))
			return rc;
		if (oldest >= ret.txn)
			break;
		if (waited >= wait_ms) {
			*pending = ret.end - ret.first;
			return 0;
		}
		sleep_ms(50);
	}
	for (uint32_t s = ret.first; s < ret.end; s++) {
		char p[4400];

		snprintf(p, sizeof(p), "%s/%08u", a->segdir, s);
		if (unlink(p) == 0)
			(*deleted)++;
		else if (errno != ENOENT)
			return err_errno(e, errno, "%s: remove retired segment", p);
	}
	if ((rc = idx_write_begin(a->idx, &t, e)))
		return rc;
	ret.first = ret.end = 0;
	if ((rc = idx_retired_put(t, &ret, e))) {
		idx_abort(t);
		return rc;
	}
	return idx_commit(t, e);
}

/* ---- the whole ---- */

static uint64_t archive_bytes(struct archive *a)
{
	struct archive_stat s;

	return archive_stat(a, &s, NULL) == 0 ? s.index_bytes + s.segment_bytes : 0;
}

static int load_snapshots(struct archive *a, struct idx_snapshot **out, size_t *n, struct idx_pos *end,
			  struct err *e)
{
	struct idx_snapshot s, *all = NULL;
	struct idx_txn *t;
	uint32_t after = 0;
	size_t cap = 0;
	int rc;

	*n = 0;
	if ((rc = idx_read_begin(a->idx, &t, e)))
		return rc;
	rc = idx_end_get(t, end, e);
	while (!rc && (rc = idx_snapshot_next(t, after, &s, e)) == 0) {
		after = s.id;
		if (*n == cap) {
			struct idx_snapshot *m = realloc(all, (cap = cap ? cap * 2 : 16) * sizeof(*m));

			if (!m) {
				rc = err_set(e, SNAPARC_NOMEM, "out of memory");
				break;
			}
			all = m;
		}
		all[(*n)++] = s;
	}
	idx_abort(t);
	*out = all;
	return rc == SNAPARC_NOT_FOUND ? 0 : rc;
}

static int newest_encoder(struct compact *c, struct err *e)
{
	const uint8_t *dict = NULL;
	size_t len = 0;
	uint32_t id;
	int rc = idx_dict_last(c->r, &id, e);

	/* (an archive without a dictionary has no deltas to recompress either) */
	if (!rc && id)
		rc = archive_dict(c->a, c->r, id, &dict, &len, e);
	if (!rc && id)
		rc = lz4dict_enc_new(&c->enc, id, dict, len, e);
	if (!rc)
		rc = lz4dict_delta_enc_new(&c->delta, e);
	/* stored as import stores them: series records recoded */
	if (!rc && c->enc)
		lz4dict_enc_recode(c->enc, 1);
	if (!rc)
		lz4dict_enc_recode(c->delta, 1);
	return rc;
}

static uint64_t segment_bytes_from(struct archive *a, uint32_t first)
{
	struct dirent *de;
	DIR *d = opendir(a->segdir);
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *end, p[4400];
		unsigned long seg = strtoul(de->d_name, &end, 10);
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", a->segdir, de->d_name);
		if (strlen(de->d_name) == 8 && !*end && seg >= first && stat(p, &st) == 0)
			n += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return n;
}

static int run(struct compact *c, struct err *e)
{
	struct archive *a = c->a;
	/* past the page cache, as import's (13.2-13.3 s against 13.9-14.4 s
	 * for 10 x 1M periodic series) */
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_NONE, .direct = 1 };
	struct idx_snapshot *all = NULL;
	struct idx_pos end, new_end;
	struct wal_pos wend;
	size_t nall;
	uint32_t first_new;
	int rc, compacted = 1;

	if ((rc = load_snapshots(a, &all, &nall, &end, e)))
		goto out;
	if (!(c->kept = calloc(nall ? nall : 1, sizeof(*c->kept)))) {
		rc = err_set(e, SNAPARC_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = choose(c, all, nall, e)))
		goto out;
	c->st->snapshots_kept = (uint32_t)c->nkept;
	c->st->snapshots_dropped = (uint32_t)(nall - c->nkept);
	for (size_t i = 0; i < c->nkept; i++) {
		c->total += c->kept[i].s.stored_bytes;
		compacted &= !!(c->kept[i].s.flags & IDX_SNAP_COMPACTED);
	}
	if (nall == 0 || (compacted && c->nkept == nall))
		goto out;   /* nothing to drop or rewrite */
	first_new = end.segment + 1;
	if ((rc = idx_read_begin(a->idx, &c->r, e)) || (rc = newest_encoder(c, e)))
		goto out;
	snprintf(c->tmp_dir, sizeof(c->tmp_dir), "%s/index", a->path);
	for (int i = 0; i < 3; i++)
		if ((rc = c->tmp[i].fd = tmpfile_open(c->tmp_dir, e)) < 0)
			goto out;
	rc = 0;
	wo.segment_size = a->opts.segment_size;
	wo.sync = a->opts.sync;
	if ((rc = wal_writer_open_at(&c->w, a->segdir, first_new, 0, &wo, e)))
		goto out;
	/* the newest first: an older record is a cut or delta of a newer one */
	for (size_t i = c->nkept; i-- > 0 && !rc;)
		rc = put_snapshot(c, &c->kept[i], i + 1 < c->nkept ? &c->kept[i + 1] : NULL, e);
	if (!rc)
		rc = tmp_flush(c, e);
	if (!rc)
		rc = wal_writer_flush(c->w, e);
	wend = wal_writer_end(c->w);
	new_end.segment = wend.segment;
	new_end.offset = wend.offset;
	idx_abort(c->r);
	c->r = NULL;
	if (!rc && c->o->dry_run)
		c->st->bytes_after = idx_file_bytes(a->idx) + segment_bytes_from(a, first_new);
	if (rc || c->o->dry_run)
		goto out;
	/* a full index map has grown when the switch fails so: switch again */
	for (int tries = 0; tries < COMMIT_TRIES; tries++)
		if ((rc = switch_index(c, all, nall, &new_end, first_new, e)) != SNAPARC_NOMEM)
			break;
	if (!rc) {
		wal_writer_discard(c->w);
		c->w = NULL;
	}
out:
	if (c->w) {
		/* not switched: the new segments are past the committed end */
		wal_writer_discard(c->w);
		c->w = NULL;
		archive_remove_segments_after(a, end.segment, NULL);
	}
	if (c->r)
		idx_abort(c->r);
	free(all);
	return rc;
}

int archive_compact(struct archive *a, const struct archive_compact_opts *opts, struct archive_compact_stats *st,
		    archive_compact_progress_fn progress_fn, void *ctx, struct err *e)
{
	struct archive_compact_opts none = { 0 };
	struct archive_compact_stats ignore;
	struct compact *c;
	int rc;

	if (!opts)
		opts = &none;
	if (!st)
		st = &ignore;
	memset(st, 0, sizeof(*st));
	if (a->opts.read_only)
		return err_set(e, SNAPARC_INVALID, "%s: the archive is open read-only", a->path);
	if (opts->keep_within_ms < 0)
		return err_set(e, SNAPARC_INVALID, "keep-within must not be negative");
	if (opts->max_chain > ARCHIVE_CHAIN_MAX)
		return err_set(e, SNAPARC_INVALID, "max chain %u is over %d", opts->max_chain, ARCHIVE_CHAIN_MAX);
	if (!(c = calloc(1, sizeof(*c))))
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	c->a = a;
	c->o = opts;
	c->st = st;
	c->progress = progress_fn;
	c->ctx = ctx;
	for (int i = 0; i < 3; i++)
		c->tmp[i].fd = -1;
	c->max_chain = opts->max_chain ? opts->max_chain : DEFAULT_CHAIN;
	if ((rc = archive_lock(a, e))) {
		free(c);
		return rc;
	}
	st->bytes_before = archive_bytes(a);
	/* what an earlier compaction left to delete, and what a crashed writer left */
	rc = archive_reap(a, 0, &st->segments_deleted, &st->segments_pending, e);
	if (!rc)
		rc = archive_cut(a, e);
	if (!rc)
		rc = run(c, e);
	if (!rc && !opts->dry_run) {
		uint64_t deleted;

		rc = archive_reap(a, REAP_WAIT_MS, &deleted, &st->segments_pending, e);
		st->segments_deleted += deleted;
		/* the index file keeps its largest size unless rewritten: do it
		 * when no one else has the archive open. The compaction is
		 * committed by now: a rewrite that fails (no room for the copy)
		 * leaves the index as it was and the file as large */
		if (!rc && deleted && archive_shrink_index(a, &st->index_shrunk, NULL))
			st->index_shrunk = 0;
	}
	if (!opts->dry_run)
		st->bytes_after = archive_bytes(a);
	archive_unlock(a);
	for (int i = 0; i < 3; i++)
		if (c->tmp[i].fd >= 0)
			close(c->tmp[i].fd);
	lz4dict_enc_free(c->enc);
	lz4dict_enc_free(c->delta);
	buf_free(&c->raw);
	buf_free(&c->prev_raw);
	buf_free(&c->root_raw);
	buf_free(&c->span);
	buf_free(&c->scratch);
	buf_free(&c->packed);
	buf_free(&c->packed2);
	buf_free(&c->pspan);
	buf_free(&c->pscratch);
	buf_free(&c->next_raw);
	free(c->maps.m);
	buf_free(&c->tomb_chunk);
	buf_free(&c->tomb_rec);
	xor_enc_free(&c->tomb_enc);
	free(c->kept);
	free(c);
	return rc;
}
