/*
 * The archive engine (plugin/archive.c, plugin/import.c) on the bundled real
 * Prometheus 2.42 snapshot, read independently with wal_reader and the
 * record decoders:
 *
 * - import through archive_import_begin/put/commit, then every one of the
 *   545 series reads back byte-identical by ref and by its label set, with
 *   exactly the source's tombstone intervals and exemplars for its ref (in
 *   order) and none for the others; what is not there is SNAPARC_NOT_FOUND;
 * - a second snapshot gets id 2, both stay readable, "latest", ids and names
 *   resolve; a name already archived is SNAPARC_EXISTS and changes nothing;
 *   abort and a bad record leave the archive as it was (segment files and
 *   catalog) and the next import works;
 * - a series the index cannot take (a label name with a NUL byte, of 0 or
 *   257 bytes) is refused where it is met, named "DIR/00000000: offset N:
 *   record: ..." like any bad record, before and after the records held back
 *   for the dictionary; a ref the snapshot had already, at commit, named so
 *   too by archive_import_dir();
 * - an import whose index entries go through temporary files (a tiny
 *   import_mem) reads back exactly as one that sorts them in memory, also
 *   when the index map filled and its transaction was written again;
 * - what a crashed writer left past the committed end (garbage, extra
 *   segments, or a writer killed mid-import) is cut by the next import and
 *   committed data stays byte-identical;
 * - one writer at a time, across handles (SNAPARC_BUSY, or waiting);
 * - a directory that is not an archive is left untouched; read-only opens read;
 * - damaged stored bytes are SNAPARC_CORRUPT naming "segments/NNNNNNNN:
 *   offset N", and only the damaged series fails;
 * - label sets whose hashes share the 32 bits the index keeps are told
 *   apart; per-series tombstones and exemplars spread over several records
 *   keep their order; an import that starts after a commit which left under
 *   7 bytes in its page writes valid WAL.
 *
 * Every test works in its own mkdtemp() directory.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "bytes.h"
#include "crc32c.h"
#include "record.h"
#include "wal.h"
#include "support.h"

#define SNAP_NAME "chunk_snapshot.000000.0000163840"
#define MAX_LABELS 64
/* An import_mem that makes an import sort its series and hashes in runs of a
 * few dozen, written to a temporary file and merged. */
#define SPILL_MEM 3000

/* ---- the source snapshot, read independently of the archive ---- */

struct src_rec {
	uint8_t *p;
	size_t len;
};

struct src_exemplar {
	uint64_t ref;
	int64_t t;
	uint64_t value;
	const uint8_t *labels;
	size_t labels_len;
};

static struct source {
	char dir[512];
	struct src_rec *recs;
	size_t n;
	size_t *series;            /* indices into recs of the series records */
	size_t nseries;
	uint64_t raw_bytes, source_bytes;
	int64_t mint, maxt;
	uint64_t max_ref;
	struct rec_interval *iv;   /* in the record's order */
	size_t niv;
	struct src_exemplar *ex;   /* in the record's order */
	size_t nex;
	size_t tombstone_records, exemplar_records;
} src;

static void *grow(void *p, size_t n, size_t size)
{
	void *q = realloc(p, (n + 1) * size);

	cr_assert_not_null(q);
	return q;
}

static void source_load(void)
{
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	struct stat st;
	char seg[600];
	int rc, have_times = 0;

	memset(&src, 0, sizeof(src));
	support_bundled_snapshot(src.dir, sizeof(src.dir));
	snprintf(seg, sizeof(seg), "%s/00000000", src.dir);
	cr_assert_eq(stat(seg, &st), 0, "%s: %s", seg, strerror(errno));
	src.source_bytes = (uint64_t)st.st_size;
	cr_assert_eq(wal_reader_open_dir(&r, src.dir, NULL, &e), 0, "%s", e.msg);
	while ((rc = wal_reader_next(r, &wr, &e)) == 1) {
		struct src_rec *sr;

		src.recs = grow(src.recs, src.n, sizeof(*src.recs));
		sr = &src.recs[src.n];
		sr->len = wr.len;
		sr->p = malloc(wr.len);
		cr_assert_not_null(sr->p);
		memcpy(sr->p, wr.data, wr.len);
		src.raw_bytes += wr.len;
		src.n++;
	}
	cr_assert_eq(rc, 0, "%s", e.msg);
	wal_reader_close(r);

	for (size_t i = 0; i < src.n; i++) {
		const uint8_t *p = src.recs[i].p;
		size_t len = src.recs[i].len;

		switch (rec_type(p, len)) {
		case REC_SERIES: {
			struct rec_series s;

			cr_assert_eq(rec_series_decode(&s, p, len, &e), 0, "%s", e.msg);
			src.series = grow(src.series, src.nseries, sizeof(*src.series));
			src.series[src.nseries++] = i;
			if (s.ref > src.max_ref)
				src.max_ref = s.ref;
			if (s.has_chunk) {
				if (!have_times || s.mint < src.mint)
					src.mint = s.mint;
				if (!have_times || s.maxt > src.maxt)
					src.maxt = s.maxt;
				have_times = 1;
			}
			break;
		}
		case REC_TOMBSTONES: {
			struct rec_tombstones t;
			struct rec_tombstone_iter it;
			struct rec_interval iv;

			cr_assert_eq(rec_tombstones_decode(&t, p, len, &e), 0, "%s", e.msg);
			rec_tombstones_iter(&it, &t);
			while (rec_tombstones_next(&it, &iv)) {
				src.iv = grow(src.iv, src.niv, sizeof(*src.iv));
				src.iv[src.niv++] = iv;
			}
			src.tombstone_records++;
			break;
		}
		case REC_EXEMPLARS: {
			struct rec_exemplars x;
			struct rec_exemplar_iter it;
			struct rec_exemplar ex;

			cr_assert_eq(rec_exemplars_decode(&x, p, len, &e), 0, "%s", e.msg);
			rec_exemplars_iter(&it, &x);
			while (rec_exemplars_next(&it, &ex)) {
				src.ex = grow(src.ex, src.nex, sizeof(*src.ex));
				src.ex[src.nex++] = (struct src_exemplar){ ex.ref, ex.t, ex.value, ex.labels.raw,
									   ex.labels.raw_len };
			}
			src.exemplar_records++;
			break;
		}
		default:
			cr_assert_fail("record %zu has type %u", i, rec_type(p, len));
		}
	}
	/* what tests/data/README.md says the snapshot holds */
	cr_assert_eq(src.n, 547);
	cr_assert_eq(src.nseries, 545);
	cr_assert_eq(src.niv, 25);
	cr_assert_eq(src.nex, 232);
	cr_assert_eq(src.tombstone_records, 1);
	cr_assert_eq(src.exemplar_records, 1);
}

static void source_free(void)
{
	for (size_t i = 0; i < src.n; i++)
		free(src.recs[i].p);
	free(src.recs);
	free(src.series);
	free(src.iv);
	free(src.ex);
	memset(&src, 0, sizeof(src));
}

/* ---- fixtures ---- */

static char tmpdir[64];
static char arcdir[128];
static char segdir[160];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "archive");
	snprintf(arcdir, sizeof(arcdir), "%s/arc", tmpdir);
	snprintf(segdir, sizeof(segdir), "%s/segments", arcdir);
	source_load();
}

static void teardown(void)
{
	source_free();
	support_rm_tree(tmpdir);
}

TestSuite(archive_import, .init = setup, .fini = teardown);
TestSuite(archive_crash, .init = setup, .fini = teardown);
TestSuite(archive_lock, .init = setup, .fini = teardown);
TestSuite(archive_open, .init = setup, .fini = teardown);
TestSuite(archive_corrupt, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static struct archive *open_archive(const struct archive_opts *o)
{
	struct archive_opts def = { .create = 1, .sync = 1 };
	struct archive *a = NULL;
	struct err e = { 0 };

	cr_assert_eq(archive_open(&a, arcdir, o ? o : &def, &e), 0, "%s", e.msg);
	cr_assert_not_null(a);
	return a;
}

static struct archive_writer *begin(struct archive *a, const char *name)
{
	struct archive_import_info info = { .name = name, .source_bytes = src.source_bytes };
	struct archive_writer *w = NULL;
	struct err e = { 0 };

	cr_assert_eq(archive_import_begin(a, &info, &w, &e), 0, "%s", e.msg);
	cr_assert_not_null(w);
	return w;
}

static void put_all(struct archive_writer *w)
{
	struct err e = { 0 };

	for (size_t i = 0; i < src.n; i++)
		cr_assert_eq(archive_import_put(w, src.recs[i].p, src.recs[i].len, &e), 0, "record %zu: %s", i,
			     e.msg);
}

/* Record i of the source in copy k of it: copy 0 is the source, a later
 * one has its series' refs past the copy before's (a snapshot holds a ref
 * once). Points into the source or into b. */
static const uint8_t *copy_record(size_t i, uint64_t k, struct buf *b)
{
	const struct src_rec *sr = &src.recs[i];

	if (!k || rec_type(sr->p, sr->len) != REC_SERIES)
		return sr->p;
	buf_reset(b);
	buf_put(b, sr->p, sr->len);
	if (b->oom)
		return NULL;
	be64_put(b->p + 1, be64_get(sr->p + 1) + k * (src.max_ref + 1));
	return b->p;
}

/* put_all() of copy k. */
static void put_copy(struct archive_writer *w, uint64_t k)
{
	struct buf b = { 0 };
	struct err e = { 0 };

	for (size_t i = 0; i < src.n; i++) {
		const uint8_t *p = copy_record(i, k, &b);

		cr_assert_not_null(p);
		cr_assert_eq(archive_import_put(w, p, src.recs[i].len, &e), 0, "copy %llu, record %zu: %s",
			     (unsigned long long)k, i, e.msg);
	}
	buf_free(&b);
}

/* Imports the bundled snapshot under name; returns the commit's status. */
static int import_source(struct archive *a, const char *name, struct idx_snapshot *snap, struct err *e)
{
	struct archive_writer *w = begin(a, name);

	put_all(w);
	return archive_import_commit(w, snap, e);
}

static struct idx_snapshot import_ok(struct archive *a, const char *name)
{
	struct idx_snapshot snap;
	struct err e = { 0 };

	memset(&snap, 0, sizeof(snap));
	cr_assert_eq(import_source(a, name, &snap, &e), 0, "import %s: %s", name, e.msg);
	return snap;
}

/* The labels of a series record as an array (pointing into the record). */
static size_t labels_of(const struct rec_series *s, struct rec_label *out)
{
	struct rec_label_iter it;
	size_t n = 0;

	rec_labels_iter(&it, &s->labels);
	while (rec_labels_next(&it, &out[n])) {
		n++;
		cr_assert_lt(n, MAX_LABELS);
	}
	cr_assert_eq(n, s->labels.count);
	return n;
}

static void assert_same_record(const struct archive_series *got, const struct src_rec *want, uint64_t ref,
			       const char *how)
{
	cr_assert_eq(got->record.len, want->len, "%s ref %llu: record of %zu bytes, source has %zu", how,
		     (unsigned long long)ref, got->record.len, want->len);
	cr_assert_eq(memcmp(got->record.p, want->p, want->len), 0, "%s ref %llu: record bytes differ", how,
		     (unsigned long long)ref);
	cr_assert_eq(got->series.ref, ref, "%s ref %llu: decoded ref %llu", how, (unsigned long long)ref,
		     (unsigned long long)got->series.ref);
}

static void assert_tombstones(const struct archive_series *got, uint64_t ref)
{
	struct dec d;
	size_t k = 0;

	dec_init(&d, got->tombstones.p, got->tombstones.len);
	for (size_t i = 0; i < src.niv; i++) {
		int64_t mint, maxt;

		if (src.iv[i].ref != ref)
			continue;
		cr_assert_gt(dec_left(&d), 0, "ref %llu: interval %zu missing", (unsigned long long)ref, k);
		mint = dec_varint(&d, "mint");
		maxt = dec_varint(&d, "maxt");
		cr_assert(dec_ok(&d), "ref %llu: tombstones undecodable", (unsigned long long)ref);
		cr_assert_eq(mint, src.iv[i].mint, "ref %llu: interval %zu mint %lld, wanted %lld",
			     (unsigned long long)ref, k, (long long)mint, (long long)src.iv[i].mint);
		cr_assert_eq(maxt, src.iv[i].maxt, "ref %llu: interval %zu maxt %lld, wanted %lld",
			     (unsigned long long)ref, k, (long long)maxt, (long long)src.iv[i].maxt);
		k++;
	}
	cr_assert_eq(dec_left(&d), 0, "ref %llu: %zu bytes of tombstones past the %zu intervals it has",
		     (unsigned long long)ref, dec_left(&d), k);
}

static void assert_exemplars(const struct archive_series *got, uint64_t ref)
{
	struct rec_exemplars x;
	struct rec_exemplar_iter it;
	struct rec_exemplar ex;
	struct err e = { 0 };
	size_t want = 0, k = 0, i = 0;

	for (size_t j = 0; j < src.nex; j++)
		want += src.ex[j].ref == ref;
	if (!want) {
		cr_assert_eq(got->exemplars.len, 0, "ref %llu has no exemplars, got %zu bytes of them",
			     (unsigned long long)ref, got->exemplars.len);
		return;
	}
	cr_assert_eq(rec_exemplars_decode(&x, got->exemplars.p, got->exemplars.len, &e), 0, "%s", e.msg);
	cr_assert_eq(x.count, want, "ref %llu: %zu exemplars, wanted %zu", (unsigned long long)ref, x.count, want);
	rec_exemplars_iter(&it, &x);
	while (rec_exemplars_next(&it, &ex)) {
		while (src.ex[i].ref != ref)
			i++;
		cr_assert_eq(ex.ref, ref);
		cr_assert_eq(ex.t, src.ex[i].t, "ref %llu: exemplar %zu at %lld, wanted %lld", (unsigned long long)ref,
			     k, (long long)ex.t, (long long)src.ex[i].t);
		cr_assert_eq(ex.value, src.ex[i].value, "ref %llu: exemplar %zu value", (unsigned long long)ref, k);
		cr_assert_eq(ex.labels.raw_len, src.ex[i].labels_len, "ref %llu: exemplar %zu labels",
			     (unsigned long long)ref, k);
		cr_assert_eq(memcmp(ex.labels.raw, src.ex[i].labels, src.ex[i].labels_len), 0,
			     "ref %llu: exemplar %zu labels differ", (unsigned long long)ref, k);
		i++;
		k++;
	}
	cr_assert_eq(k, want);
}

/* Every series of the source, read from snapshot snap by ref and by labels. */
static void assert_snapshot_reads_back(struct archive *a, uint32_t snap)
{
	struct archive_series r = { 0 }, byl = { 0 };
	struct err e = { 0 };
	size_t with_tombstones = 0, with_exemplars = 0;

	for (size_t i = 0; i < src.nseries; i++) {
		const struct src_rec *sr = &src.recs[src.series[i]];
		struct rec_label ls[MAX_LABELS];
		struct rec_series s;
		size_t n;

		cr_assert_eq(rec_series_decode(&s, sr->p, sr->len, &e), 0, "%s", e.msg);
		cr_assert_eq(archive_read_ref(a, snap, s.ref, &r, &e), 0, "snapshot %u ref %llu: %s", snap,
			     (unsigned long long)s.ref, e.msg);
		assert_same_record(&r, sr, s.ref, "by ref:");
		cr_assert_eq(r.snapshot, snap);
		cr_assert_eq(r.loc.ref, s.ref);
		assert_tombstones(&r, s.ref);
		assert_exemplars(&r, s.ref);
		with_tombstones += r.tombstones.len > 0;
		with_exemplars += r.exemplars.len > 0;

		n = labels_of(&s, ls);
		cr_assert_eq(archive_read_labels(a, snap, ls, n, &byl, &e), 0, "snapshot %u labels of ref %llu: %s",
			     snap, (unsigned long long)s.ref, e.msg);
		assert_same_record(&byl, sr, s.ref, "by labels:");
		assert_tombstones(&byl, s.ref);
		assert_exemplars(&byl, s.ref);
	}
	cr_assert_eq(with_tombstones, 25, "%zu series with tombstones, wanted 25", with_tombstones);
	cr_assert_eq(with_exemplars, 8, "%zu series with exemplars, wanted 8", with_exemplars);
	archive_series_free(&r);
	archive_series_free(&byl);
}

/* ---- the segment files, to tell that nothing changed ---- */

#define MAX_SEGS 64

struct segs {
	size_t n;
	char name[MAX_SEGS][32];
	uint8_t *data[MAX_SEGS];
	size_t len[MAX_SEGS];
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void segs_capture(struct segs *s)
{
	DIR *d = opendir(segdir);
	struct dirent *de;

	memset(s, 0, sizeof(*s));
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cr_assert_lt(s->n, MAX_SEGS);
		snprintf(s->name[s->n++], sizeof(s->name[0]), "%s", de->d_name);
	}
	closedir(d);
	qsort(s->name, s->n, sizeof(s->name[0]), cmp_name);
	for (size_t i = 0; i < s->n; i++) {
		char p[300];

		snprintf(p, sizeof(p), "%s/%s", segdir, s->name[i]);
		s->data[i] = support_read_file(p, &s->len[i]);
	}
}

static void segs_free(struct segs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->data[i]);
	memset(s, 0, sizeof(*s));
}

/* The segment files are exactly as captured (names, sizes, bytes). */
static void assert_segs_unchanged(const struct segs *before, const char *after_what)
{
	struct segs now;

	segs_capture(&now);
	cr_assert_eq(now.n, before->n, "after %s: %zu segment files, were %zu", after_what, now.n, before->n);
	for (size_t i = 0; i < now.n; i++) {
		cr_assert_str_eq(now.name[i], before->name[i], "after %s", after_what);
		cr_assert_eq(now.len[i], before->len[i], "after %s: segments/%s has %zu bytes, had %zu", after_what,
			     now.name[i], now.len[i], before->len[i]);
		cr_assert_eq(memcmp(now.data[i], before->data[i], now.len[i]), 0, "after %s: segments/%s changed",
			     after_what, now.name[i]);
	}
	segs_free(&now);
}

/* The catalog as "id name;id name;..." */
static void catalog(struct archive *a, char *out, size_t cap)
{
	struct idx_snapshot s;
	struct err e = { 0 };
	uint32_t after = 0;
	size_t o = 0;
	int rc;

	out[0] = '\0';
	while ((rc = archive_snapshot_next(a, after, &s, &e)) == 0) {
		o += (size_t)snprintf(out + o, cap - o, "%u %s;", s.id, s.name);
		cr_assert_lt(o, cap);
		after = s.id;
	}
	cr_assert_eq(rc, SNAPARC_NOT_FOUND, "%s", e.msg);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

static void seg_path(char *out, size_t cap, uint32_t segment)
{
	snprintf(out, cap, "%s/%08u", segdir, segment);
}

static void write_at(const char *path, uint64_t off, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, p, n, (off_t)off), (ssize_t)n, "%s: %s", path, strerror(errno));
	close(fd);
}

static uint64_t series_ref(size_t i)
{
	struct rec_series s;
	struct err e = { 0 };
	const struct src_rec *sr = &src.recs[src.series[i]];

	cr_assert_eq(rec_series_decode(&s, sr->p, sr->len, &e), 0, "%s", e.msg);
	return s.ref;
}

/* ---- import and read ---- */

Test(archive_import, every_series_reads_back_byte_identical_by_ref_and_by_labels)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot snap = import_ok(a, SNAP_NAME);
	char seg0[300];

	cr_assert_eq(snap.id, 1);
	cr_assert_str_eq(snap.name, SNAP_NAME);
	cr_assert_eq(snap.series, 545);
	cr_assert_eq(snap.tombstones, 25);
	cr_assert_eq(snap.exemplars, 232);
	cr_assert_eq(snap.records, 547);
	cr_assert_eq(snap.raw_bytes, src.raw_bytes, "raw_bytes %llu, the records hold %llu",
		     (unsigned long long)snap.raw_bytes, (unsigned long long)src.raw_bytes);
	cr_assert_eq(snap.source_bytes, 196608);
	cr_assert_eq(snap.mint, src.mint);
	cr_assert_eq(snap.maxt, src.maxt);
	cr_assert_eq(snap.start.segment, 0);
	cr_assert_eq(snap.start.offset, 0);
	cr_assert_eq(snap.end.segment, 0);
	seg_path(seg0, sizeof(seg0), 0);
	cr_assert_eq(snap.end.offset, file_size(seg0), "end %llu, segment has %llu bytes",
		     (unsigned long long)snap.end.offset, (unsigned long long)file_size(seg0));
	cr_assert_leq(snap.stored_bytes, snap.end.offset);
	cr_assert_lt(snap.stored_bytes, src.raw_bytes, "nothing was compressed");
	assert_snapshot_reads_back(a, 1);
	archive_close(a);

	/* and from a new handle */
	a = open_archive(NULL);
	assert_snapshot_reads_back(a, 1);
	archive_close(a);
}

Test(archive_import, catalog_entry_matches_what_commit_returned)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot snap = import_ok(a, SNAP_NAME), got;
	struct err e = { 0 };

	cr_assert_eq(archive_snapshot_find(a, "latest", &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, snap.id);
	cr_assert_str_eq(got.name, snap.name);
	cr_assert_eq(got.imported_ms, snap.imported_ms);
	cr_assert_eq(got.mint, snap.mint);
	cr_assert_eq(got.maxt, snap.maxt);
	cr_assert_eq(got.series, snap.series);
	cr_assert_eq(got.tombstones, snap.tombstones);
	cr_assert_eq(got.exemplars, snap.exemplars);
	cr_assert_eq(got.records, snap.records);
	cr_assert_eq(got.source_bytes, snap.source_bytes);
	cr_assert_eq(got.raw_bytes, snap.raw_bytes);
	cr_assert_eq(got.stored_bytes, snap.stored_bytes);
	cr_assert_eq(got.dict_id, snap.dict_id);
	cr_assert_eq(got.start.segment, snap.start.segment);
	cr_assert_eq(got.start.offset, snap.start.offset);
	cr_assert_eq(got.end.segment, snap.end.segment);
	cr_assert_eq(got.end.offset, snap.end.offset);
	cr_assert_neq(got.dict_id, 0, "the first snapshot has no dictionary");
	cr_assert_gt(got.imported_ms, (int64_t)1700000000 * 1000, "imported_ms %lld is not a wall-clock time",
		     (long long)got.imported_ms);
	archive_close(a);
}

Test(archive_import, refs_and_label_sets_not_present_are_not_found)
{
	struct archive *a = open_archive(NULL);
	struct archive_series r = { 0 };
	struct err e = { 0 };
	const struct src_rec *sr = &src.recs[src.series[0]];
	struct rec_label ls[MAX_LABELS], bad[MAX_LABELS];
	struct rec_series s;
	uint8_t refs_seen[4096] = { 0 };
	size_t n;
	char changed[256];

	import_ok(a, SNAP_NAME);
	cr_assert_lt(src.max_ref, sizeof(refs_seen));
	for (size_t i = 0; i < src.nseries; i++)
		refs_seen[series_ref(i)] = 1;
	for (uint64_t ref = 0; ref <= src.max_ref + 3; ref++)
		if (!refs_seen[ref])
			cr_assert_eq(archive_read_ref(a, 1, ref, &r, &e), SNAPARC_NOT_FOUND, "ref %llu: %s",
				     (unsigned long long)ref, e.msg);
	cr_assert_eq(archive_read_ref(a, 1, UINT64_MAX, &r, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(archive_read_ref(a, 1, src.max_ref << 20, &r, &e), SNAPARC_NOT_FOUND);
	/* a snapshot that does not exist */
	cr_assert_eq(archive_read_ref(a, 2, series_ref(0), &r, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(archive_read_ref(a, 0, series_ref(0), &r, &e), SNAPARC_NOT_FOUND);

	cr_assert_eq(rec_series_decode(&s, sr->p, sr->len, &e), 0, "%s", e.msg);
	n = labels_of(&s, ls);
	cr_assert_gt(n, 2);
	/* one value changed */
	memcpy(bad, ls, n * sizeof(*ls));
	snprintf(changed, sizeof(changed), "%.*sX", (int)bad[n - 1].value_len, bad[n - 1].value);
	bad[n - 1].value = changed;
	bad[n - 1].value_len = strlen(changed);
	cr_assert_eq(archive_read_labels(a, 1, bad, n, &r, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	/* a label fewer, a label more */
	cr_assert_eq(archive_read_labels(a, 1, ls, n - 1, &r, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	memcpy(bad, ls, n * sizeof(*ls));
	bad[n] = (struct rec_label){ "zzz", "1", 3, 1 };
	cr_assert_eq(archive_read_labels(a, 1, bad, n + 1, &r, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(archive_read_labels(a, 1, ls, 0, &r, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	/* the right labels in a snapshot that does not exist */
	cr_assert_eq(archive_read_labels(a, 2, ls, n, &r, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	/* and still found as they are */
	cr_assert_eq(archive_read_labels(a, 1, ls, n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.series.ref, s.ref);
	archive_series_free(&r);
	archive_close(a);
}

Test(archive_import, second_snapshot_gets_id_2_and_both_stay_readable)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot one = import_ok(a, SNAP_NAME), two = import_ok(a, "second"), got;
	struct err e = { 0 };
	char cat[1024];

	cr_assert_eq(one.id, 1);
	cr_assert_eq(two.id, 2);
	cr_assert_eq(two.series, 545);
	cr_assert_eq(two.start.segment, one.end.segment);
	cr_assert_eq(two.start.offset, one.end.offset, "snapshot 2 starts at %llu, snapshot 1 ended at %llu",
		     (unsigned long long)two.start.offset, (unsigned long long)one.end.offset);
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);

	cr_assert_eq(archive_snapshot_find(a, "latest", &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 2);
	cr_assert_str_eq(got.name, "second");
	cr_assert_eq(archive_snapshot_find(a, "1", &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 1);
	cr_assert_str_eq(got.name, SNAP_NAME);
	cr_assert_eq(archive_snapshot_find(a, "2", &got, &e), 0, "%s", e.msg);
	cr_assert_str_eq(got.name, "second");
	cr_assert_eq(archive_snapshot_find(a, SNAP_NAME, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 1);
	cr_assert_eq(archive_snapshot_find(a, "second", &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 2);
	cr_assert_eq(archive_snapshot_find(a, "3", &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(archive_snapshot_find(a, "0", &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(archive_snapshot_find(a, "third", &got, &e), SNAPARC_NOT_FOUND);
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, "1 " SNAP_NAME ";2 second;");
	archive_close(a);

	a = open_archive(NULL);
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);
	archive_close(a);
}

Test(archive_import, empty_snapshot_name_is_not_found)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot got;
	struct err e = { 0 };
	char longname[1000];

	import_ok(a, SNAP_NAME);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	/* names have 1 to 255 bytes: no snapshot has these; not an I/O error */
	cr_assert_eq(archive_snapshot_find(a, longname, &got, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(archive_snapshot_find(a, "", &got, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	archive_close(a);
}

Test(archive_import, name_already_archived_is_exists_and_changes_nothing)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot snap;
	struct segs before;
	struct err e = { 0 };
	char cat[1024];

	import_ok(a, SNAP_NAME);
	segs_capture(&before);
	cr_assert_eq(import_source(a, SNAP_NAME, &snap, &e), SNAPARC_EXISTS, "%s", e.msg);
	cr_assert(strstr(e.msg, SNAP_NAME), "message lacks the name: %s", e.msg);
	assert_segs_unchanged(&before, "a refused duplicate name");
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, "1 " SNAP_NAME ";");
	assert_snapshot_reads_back(a, 1);

	/* the next import works and takes id 2 */
	snap = import_ok(a, "other");
	cr_assert_eq(snap.id, 2);
	assert_snapshot_reads_back(a, 2);
	segs_free(&before);
	archive_close(a);
}

Test(archive_import, abort_leaves_archive_as_it_was_and_next_import_works)
{
	struct archive *a = open_archive(NULL);
	struct archive_writer *w;
	struct idx_snapshot snap;
	struct segs before;
	char cat[1024];

	import_ok(a, SNAP_NAME);
	segs_capture(&before);
	w = begin(a, "aborted");
	/* over 4 MiB of records: past what the writer holds back to train a
	 * dictionary and what it buffers, so records reach the segment file */
	for (int k = 0; k < 20; k++)
		put_copy(w, (uint64_t)k);
	archive_import_abort(w);
	assert_segs_unchanged(&before, "abort");
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, "1 " SNAP_NAME ";");

	snap = import_ok(a, "aborted");
	cr_assert_eq(snap.id, 2);
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);
	segs_free(&before);
	archive_close(a);
}

Test(archive_import, abort_removes_the_segments_the_import_started)
{
	/* segments of 4 pages: the aborted import fills several */
	struct archive_opts small = { .create = 1, .sync = 1, .segment_size = 4 * WAL_PAGE_SIZE };
	struct archive *a = open_archive(&small);
	struct archive_writer *w;
	struct idx_snapshot snap;
	struct segs before, during;
	char cat[1024];

	import_ok(a, SNAP_NAME);
	segs_capture(&before);
	w = begin(a, "aborted");
	for (int k = 0; k < 20; k++)
		put_copy(w, (uint64_t)k);
	segs_capture(&during);
	cr_assert_gt(during.n, before.n + 1, "setup: the import wrote no new segments (%zu, were %zu)", during.n,
		     before.n);
	archive_import_abort(w);
	assert_segs_unchanged(&before, "abort");
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, "1 " SNAP_NAME ";");
	snap = import_ok(a, "aborted");
	cr_assert_eq(snap.id, 2);
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);
	segs_free(&before);
	segs_free(&during);
	archive_close(a);
}

Test(archive_import, abort_of_the_first_import_leaves_no_snapshot)
{
	struct archive *a = open_archive(NULL);
	struct archive_writer *w = begin(a, SNAP_NAME);
	struct archive_series r = { 0 };
	struct idx_snapshot s;
	struct segs after;
	struct err e = { 0 };

	put_all(w);
	archive_import_abort(w);
	cr_assert_eq(archive_snapshot_next(a, 0, &s, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(archive_snapshot_find(a, "latest", &s, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(archive_read_ref(a, 1, series_ref(0), &r, &e), SNAPARC_NOT_FOUND);
	segs_capture(&after);
	for (size_t i = 0; i < after.n; i++)
		cr_assert_eq(after.len[i], 0, "segments/%s keeps %zu bytes of an aborted import", after.name[i],
			     after.len[i]);
	segs_free(&after);

	s = import_ok(a, SNAP_NAME);
	cr_assert_eq(s.id, 1);
	cr_assert_eq(s.start.offset, 0);
	assert_snapshot_reads_back(a, 1);
	archive_close(a);
}

/* A series record whose only label's name claims 5 bytes where 2 are left. */
static const uint8_t bad_series[] = { 0x01, 0, 0, 0, 0, 0, 0, 0x30, 0x39, 0x01, 0x05, 'a', 'b' };

static void corrupt_record_is_refused(int archive_has_snapshot)
{
	struct archive *a = open_archive(NULL);
	struct archive_writer *w;
	struct archive_series r = { 0 };
	struct idx_snapshot snap;
	struct segs before;
	struct err e = { 0 };
	char cat[1024], want[1024];

	if (archive_has_snapshot)
		import_ok(a, SNAP_NAME);
	segs_capture(&before);
	catalog(a, want, sizeof(want));

	/* refused where it is met, and the import stays failed */
	w = begin(a, "bad");
	for (size_t i = 0; i < 100; i++)
		cr_assert_eq(archive_import_put(w, src.recs[i].p, src.recs[i].len, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_import_put(w, bad_series, sizeof(bad_series), &e), SNAPARC_CORRUPT,
		     "a series record with a label past its end: %s", e.msg);
	cr_assert_eq(archive_import_put(w, src.recs[100].p, src.recs[100].len, &e), SNAPARC_CORRUPT,
		     "a put after a failed one: %s", e.msg);
	archive_import_abort(w);
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, want);
	cr_assert_eq(archive_read_ref(a, archive_has_snapshot ? 2 : 1, series_ref(0), &r, &e), SNAPARC_NOT_FOUND);
	if (archive_has_snapshot)
		assert_segs_unchanged(&before, "a corrupt record and abort");

	/* committing a failed import fails too, and leaves nothing either */
	w = begin(a, "bad");
	cr_assert_eq(archive_import_put(w, bad_series, sizeof(bad_series), &e), SNAPARC_CORRUPT, "%s", e.msg);
	for (size_t i = 0; i < src.n; i++)
		cr_assert_eq(archive_import_put(w, src.recs[i].p, src.recs[i].len, &e), SNAPARC_CORRUPT,
			     "record %zu after a failed one: %s", i, e.msg);
	cr_assert_eq(archive_import_commit(w, &snap, &e), SNAPARC_CORRUPT, "%s", e.msg);
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, want);
	if (archive_has_snapshot)
		assert_segs_unchanged(&before, "committing a failed import");

	/* other bad records: unknown type, empty, truncated tombstones */
	{
		static const uint8_t unknown[] = { 0x09, 1, 2, 3 };
		static const uint8_t tomb[] = { 0x02, 0x05, 0x01, 0x01 };

		w = begin(a, "bad");
		cr_assert_eq(archive_import_put(w, unknown, sizeof(unknown), &e), SNAPARC_CORRUPT, "%s", e.msg);
		archive_import_abort(w);
		w = begin(a, "bad");
		cr_assert_eq(archive_import_put(w, unknown, 0, &e), SNAPARC_CORRUPT, "%s", e.msg);
		archive_import_abort(w);
		w = begin(a, "bad");
		cr_assert_eq(archive_import_put(w, tomb, sizeof(tomb), &e), SNAPARC_CORRUPT, "%s", e.msg);
		archive_import_abort(w);
	}
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, want);

	snap = import_ok(a, "good");
	cr_assert_eq(snap.id, archive_has_snapshot ? 2u : 1u);
	assert_snapshot_reads_back(a, snap.id);
	if (archive_has_snapshot)
		assert_snapshot_reads_back(a, 1);
	segs_free(&before);
	archive_series_free(&r);
	archive_close(a);
}

Test(archive_import, corrupt_record_fails_the_import_of_a_first_snapshot)
{
	corrupt_record_is_refused(0);
}

Test(archive_import, corrupt_record_fails_the_import_into_an_archive_with_a_snapshot)
{
	corrupt_record_is_refused(1);
}

/* ---- series the index cannot take: refused where they are met ---- */

/* A series record without a chunk, ref past the source's, with labels
 * {__name__="up", name="x"} (name of name_len bytes, sorted after or, when
 * empty, before __name__). */
static void odd_series(struct buf *b, const char *name, size_t name_len)
{
	struct rec_label ls[2] = { { "__name__", "up", 8, 2 }, { name, "x", name_len, 1 } };

	if (name_len == 0) {
		ls[1] = ls[0];
		ls[0] = (struct rec_label){ name, "x", 0, 1 };
	}
	buf_reset(b);
	buf_put_byte(b, REC_SERIES);
	buf_put_be64(b, src.max_ref + 1);
	rec_labels_encode(b, ls, 2);
	buf_put_be64(b, 0);
	buf_put_uvarint(b, 0);
	cr_assert_not(b->oom);
}

/* Writes the source's records as snapshot directory dir with rec put after
 * record `after`; returns where rec went in dir/00000000. */
static uint64_t write_snapshot_with(const char *dir, size_t after, const uint8_t *rec, size_t len)
{
	struct wal_writer *w;
	struct wal_pos pos = { 0 };
	struct err e = { 0 };

	cr_assert_eq(mkdir(dir, 0777), 0, "%s: %s", dir, strerror(errno));
	cr_assert_eq(wal_writer_open(&w, dir, NULL, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < src.n; i++) {
		cr_assert_eq(wal_writer_log(w, src.recs[i].p, src.recs[i].len, NULL, &e), 0, "%s", e.msg);
		if (i == after)
			cr_assert_eq(wal_writer_log(w, rec, len, &pos, &e), 0, "%s", e.msg);
	}
	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
	cr_assert_eq(pos.segment, 0);
	return pos.offset;
}

/* Importing dir fails SNAPARC_CORRUPT with "dir/00000000: offset <offset>:
 * record: " and then why, and leaves the archive's catalog and segments
 * (no byte in them, when there were none). */
static void import_dir_refused(struct archive *a, const char *dir, uint64_t offset, const char *why)
{
	struct archive_import_info info = { .name = "bad" };
	struct idx_snapshot snap;
	struct segs before;
	struct err e = { 0 };
	char head[600], want[1024], cat[1024];

	segs_capture(&before);
	catalog(a, want, sizeof(want));
	snprintf(head, sizeof(head), "%s/00000000: offset %llu: record: ", dir, (unsigned long long)offset);
	cr_assert_eq(archive_import_dir(a, dir, &info, NULL, NULL, &snap, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert(!strncmp(e.msg, head, strlen(head)) && strstr(e.msg + strlen(head), why),
		  "the message\n  %s\nwanted\n  %s...%s", e.msg, head, why);
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, want);
	if (before.n) {
		assert_segs_unchanged(&before, "a refused import");
	} else {
		/* (a first import leaves its empty segment file) */
		segs_capture(&before);
		for (size_t i = 0; i < before.n; i++)
			cr_assert_eq(before.len[i], 0, "a refused first import left %zu bytes in %s", before.len[i],
				     before.name[i]);
	}
	segs_free(&before);
}

static void label_names_refused(int archive_has_snapshot)
{
	struct archive *a = open_archive(NULL);
	struct archive_series r = { 0 };
	struct idx_snapshot snap;
	struct buf b = { 0 };
	struct err e = { 0 };
	char name[300], dir[300];
	/* where the name starts: type, ref, count, "__name__" and "up" with their lengths, its length */
	const size_t name_at = 1 + 8 + 1 + 1 + 8 + 1 + 2 + 1;
	uint64_t off;

	if (archive_has_snapshot)
		import_ok(a, SNAP_NAME);

	/* a NUL byte in the name: the offset is the NUL's in the record */
	odd_series(&b, "inst\0nce", 8);
	snprintf(dir, sizeof(dir), "%s/nul", tmpdir);
	off = write_snapshot_with(dir, 100, b.p, b.len);
	snprintf(name, sizeof(name), "offset %zu: label name of 8 bytes has a NUL byte, which cannot be indexed",
		 name_at + 4);
	import_dir_refused(a, dir, off, name);

	/* 257 bytes; and none */
	memset(name, 'n', 257);
	odd_series(&b, name, 257);
	snprintf(dir, sizeof(dir), "%s/long", tmpdir);
	off = write_snapshot_with(dir, 0, b.p, b.len);
	snprintf(name, sizeof(name), "offset %zu: label name of 257 bytes cannot be indexed (1 to 256 bytes)",
		 name_at + 1);   /* a 2-byte length */
	import_dir_refused(a, dir, off, name);
	odd_series(&b, "", 0);
	snprintf(dir, sizeof(dir), "%s/empty", tmpdir);
	off = write_snapshot_with(dir, src.n - 1, b.p, b.len);
	import_dir_refused(a, dir, off, "offset 11: label name of 0 bytes cannot be indexed (1 to 256 bytes)");

	/* 256 bytes are indexed */
	memset(name, 'n', 256);
	odd_series(&b, name, 256);
	snprintf(dir, sizeof(dir), "%s/longest", tmpdir);
	write_snapshot_with(dir, 7, b.p, b.len);
	{
		struct archive_import_info info = { .name = "longest" };
		struct rec_label ls[2] = { { "__name__", "up", 8, 2 }, { name, "x", 256, 1 } };

		cr_assert_eq(archive_import_dir(a, dir, &info, NULL, NULL, &snap, &e), 0, "%s", e.msg);
		cr_assert_eq(snap.id, archive_has_snapshot ? 2u : 1u);
		cr_assert_eq(archive_read_ref(a, snap.id, src.max_ref + 1, &r, &e), 0, "%s", e.msg);
		cr_assert(r.record.len == b.len && !memcmp(r.record.p, b.p, b.len));
		cr_assert_eq(archive_read_labels(a, snap.id, ls, 2, &r, &e), 0, "%s", e.msg);
		cr_assert_eq(r.series.ref, src.max_ref + 1);
	}
	archive_series_free(&r);
	buf_free(&b);
	archive_close(a);
}

Test(archive_import, label_name_the_index_cannot_take_names_file_and_offset_in_a_first_snapshot)
{
	label_names_refused(0);
}

Test(archive_import, label_name_the_index_cannot_take_names_file_and_offset_in_a_later_snapshot)
{
	label_names_refused(1);
}

/* A NUL byte in a label value is indexed: only names are refused for one
 * (import looks for one in all the labels' bytes at once, then by name). */
Test(archive_import, a_nul_byte_in_a_label_value_is_indexed)
{
	struct archive *a = open_archive(NULL);
	struct archive_import_info info = { .name = "nul-value" };
	struct rec_label ls[2] = { { "__name__", "up", 8, 2 }, { "instance", "x\0y", 8, 3 } };
	struct archive_series r = { 0 };
	struct idx_snapshot snap;
	struct buf b = { 0 };
	struct err e = { 0 };
	char dir[300];

	buf_put_byte(&b, REC_SERIES);
	buf_put_be64(&b, src.max_ref + 1);
	rec_labels_encode(&b, ls, 2);
	buf_put_be64(&b, 0);
	buf_put_uvarint(&b, 0);
	cr_assert_not(b.oom);
	snprintf(dir, sizeof(dir), "%s/nul-value", tmpdir);
	write_snapshot_with(dir, 7, b.p, b.len);
	cr_assert_eq(archive_import_dir(a, dir, &info, NULL, NULL, &snap, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_read_labels(a, snap.id, ls, 2, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.series.ref, src.max_ref + 1);
	cr_assert(r.record.len == b.len && !memcmp(r.record.p, b.p, b.len));
	/* the same name with the value cut at its NUL is another series */
	ls[1].value_len = 1;
	cr_assert_eq(archive_read_labels(a, snap.id, ls, 2, &r, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	archive_series_free(&r);
	buf_free(&b);
	archive_close(a);
}

/* Found at commit, sorting in memory or through temporary files. */
Test(archive_import, duplicate_ref_names_file_and_offset_of_the_second_record)
{
	struct archive_opts spill = { .create = 1, .sync = 1, .import_mem = SPILL_MEM };
	const struct src_rec *seven = &src.recs[src.series[7]];
	struct archive *a;
	char next[300], end[300], why[100];
	uint64_t next_off, end_off;

	snprintf(why, sizeof(why), "series ref %llu appears twice in the snapshot",
		 (unsigned long long)series_ref(7));
	/* right after the first, and at the end */
	snprintf(next, sizeof(next), "%s/next", tmpdir);
	next_off = write_snapshot_with(next, src.series[7], seven->p, seven->len);
	snprintf(end, sizeof(end), "%s/end", tmpdir);
	end_off = write_snapshot_with(end, src.n - 1, seven->p, seven->len);
	for (int spilled = 0; spilled < 2; spilled++) {
		a = open_archive(spilled ? &spill : NULL);
		import_dir_refused(a, next, next_off, why);
		import_dir_refused(a, end, end_off, why);
		archive_close(a);
	}
	/* and into an archive with a snapshot */
	a = open_archive(&spill);
	import_ok(a, SNAP_NAME);
	import_dir_refused(a, end, end_off, why);
	archive_close(a);
}

static void assert_same_series(const struct archive_series *x, const struct archive_series *y, const char *how,
			       uint64_t ref)
{
	cr_assert(x->loc.ref == y->loc.ref && x->loc.segment == y->loc.segment && x->loc.offset == y->loc.offset &&
			  x->loc.span == y->loc.span,
		  "%s %llu: ref %llu at %u:%llu+%u, in memory ref %llu at %u:%llu+%u", how, (unsigned long long)ref,
		  (unsigned long long)x->loc.ref, x->loc.segment, (unsigned long long)x->loc.offset, x->loc.span,
		  (unsigned long long)y->loc.ref, y->loc.segment, (unsigned long long)y->loc.offset, y->loc.span);
	cr_assert(x->record.len == y->record.len && !memcmp(x->record.p, y->record.p, x->record.len),
		  "%s %llu: the records differ", how, (unsigned long long)ref);
}

/* A full index map fails the index's transaction, which is written again
 * once the map has grown: from the first series. */
Test(archive_import, index_written_again_after_the_map_filled_has_every_series)
{
	struct archive_opts small = { .create = 1, .sync = 1, .map_size = 64 << 10, .import_mem = SPILL_MEM };
	struct archive *a = open_archive(&small);

	import_ok(a, SNAP_NAME);
	assert_snapshot_reads_back(a, 1);
	archive_close(a);
}

Test(archive_import, import_through_temporary_files_reads_back_as_one_in_memory)
{
	struct archive_opts spill = { .create = 1, .sync = 1, .import_mem = SPILL_MEM };
	struct archive_opts def = { .create = 1, .sync = 1 };
	struct archive *a[2] = { NULL, NULL };
	struct archive_series r[2] = { 0 };
	struct idx_snapshot snap[2];
	struct buf c = { 0 };
	struct err e = { 0 };
	char dir[200];

	/* the same two imports into each: the bundled snapshot, then 20 copies
	 * of it (10,900 series, each label set in 20 of them) */
	snprintf(dir, sizeof(dir), "%s/in-memory", tmpdir);
	a[0] = open_archive(&spill);
	cr_assert_eq(archive_open(&a[1], dir, &def, &e), 0, "%s", e.msg);
	for (int i = 0; i < 2; i++) {
		struct archive_writer *w;

		import_ok(a[i], SNAP_NAME);
		w = begin(a[i], "copies");
		for (uint64_t copy = 0; copy < 20; copy++)
			put_copy(w, copy);
		cr_assert_eq(archive_import_commit(w, &snap[i], &e), 0, "%s", e.msg);
	}
	cr_assert_eq(snap[0].series, 20 * src.nseries);
	cr_assert_eq(snap[1].series, snap[0].series);
	assert_snapshot_reads_back(a[0], 1);
	for (uint64_t copy = 0; copy < 20; copy++) {
		for (size_t i = 0; i < src.nseries; i++) {
			const uint8_t *want = copy_record(src.series[i], copy, &c);
			size_t len = src.recs[src.series[i]].len;
			uint64_t ref = series_ref(i) + copy * (src.max_ref + 1);

			for (int k = 0; k < 2; k++)
				cr_assert_eq(archive_read_ref(a[k], 2, ref, &r[k], &e), 0, "ref %llu: %s",
					     (unsigned long long)ref, e.msg);
			cr_assert(r[0].record.len == len && !memcmp(r[0].record.p, want, len), "ref %llu: not the record put",
				  (unsigned long long)ref);
			assert_same_series(&r[0], &r[1], "ref", ref);
		}
	}
	/* one of the 20 with these labels: the same one */
	for (size_t i = 0; i < src.nseries; i++) {
		struct rec_label ls[MAX_LABELS];
		struct rec_series s;
		size_t n;

		cr_assert_eq(rec_series_decode(&s, src.recs[src.series[i]].p, src.recs[src.series[i]].len, &e), 0,
			     "%s", e.msg);
		n = labels_of(&s, ls);
		for (int k = 0; k < 2; k++)
			cr_assert_eq(archive_read_labels(a[k], 2, ls, n, &r[k], &e), 0, "labels of ref %llu: %s",
				     (unsigned long long)s.ref, e.msg);
		cr_assert_eq(r[0].series.ref % (src.max_ref + 1), s.ref, "labels of ref %llu found ref %llu",
			     (unsigned long long)s.ref, (unsigned long long)r[0].series.ref);
		assert_same_series(&r[0], &r[1], "labels of ref", s.ref);
	}
	archive_series_free(&r[0]);
	archive_series_free(&r[1]);
	buf_free(&c);
	archive_close(a[0]);
	archive_close(a[1]);
}

/* Past the records held back to train a dictionary, where records are
 * stored as they come: the same checks, against the held-back ones too. */
Test(archive_import, series_after_dictionary_training_are_checked_too)
{
	struct archive_opts spill = { .create = 1, .sync = 1, .import_mem = SPILL_MEM };
	struct archive *a = open_archive(NULL);
	const struct src_rec *seven = &src.recs[src.series[7]];
	struct archive_writer *w;
	struct idx_snapshot snap;
	struct buf b = { 0 }, c = { 0 };
	struct err e = { 0 };
	char cat[1024], why[100];

	cr_assert_gt(20 * src.raw_bytes, 4u << 20, "setup: 20 copies of the source hold no more than 4 MiB");
	/* a ref of the held-back records, then of the stored ones; sorted in
	 * memory, then through temporary files */
	for (int k = 0; k < 4; k++) {
		uint64_t copy = k % 2 ? 20 : 0;

		if (k == 2) {
			archive_close(a);
			a = open_archive(&spill);
		}
		w = begin(a, SNAP_NAME);
		for (uint64_t i = 0; i < 20; i++)
			put_copy(w, i);
		cr_assert_eq(archive_import_put(w, copy_record(src.series[7], 20, &c), seven->len, &e), 0, "%s",
			     e.msg);
		cr_assert_eq(archive_import_put(w, copy_record(src.series[7], copy, &c), seven->len, &e), 0,
			     "a second ref %s is put, to fail at commit: %s", copy ? "stored" : "held back", e.msg);
		cr_assert_eq(archive_import_commit(w, &snap, &e), SNAPARC_CORRUPT, "%s", e.msg);
		snprintf(why, sizeof(why), "series ref %llu appears twice in the snapshot",
			 (unsigned long long)(series_ref(7) + copy * (src.max_ref + 1)));
		cr_assert_str_eq(e.msg, why);
		catalog(a, cat, sizeof(cat));
		cr_assert_str_eq(cat, "");
	}
	w = begin(a, SNAP_NAME);
	for (uint64_t copy = 0; copy < 20; copy++)
		put_copy(w, copy);
	odd_series(&b, "inst\0nce", 8);
	be64_put(b.p + 1, 21 * (src.max_ref + 1));
	cr_assert_eq(archive_import_put(w, b.p, b.len, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert(strstr(e.msg, "label name of 8 bytes has a NUL byte"), "%s", e.msg);
	archive_import_abort(w);
	catalog(a, cat, sizeof(cat));
	cr_assert_str_eq(cat, "");
	buf_free(&b);
	buf_free(&c);
	archive_close(a);
}

/* A series record with no chunk: labels {__name__="pad", v=<value_len random bytes>}. */
static void make_series(struct buf *b, uint64_t ref, size_t value_len, uint64_t seed)
{
	uint8_t *v = malloc(value_len ? value_len : 1);
	struct rec_label ls[2];

	cr_assert_not_null(v);
	for (size_t i = 0; i < value_len; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (uint8_t)(seed >> 56);
	}
	ls[0] = (struct rec_label){ "__name__", "pad", 8, 3 };
	ls[1] = (struct rec_label){ "v", (const char *)v, 1, value_len };
	buf_reset(b);
	buf_put_byte(b, REC_SERIES);
	buf_put_be64(b, ref);
	rec_labels_encode(b, ls, 2);
	buf_put_be64(b, 0);
	buf_put_uvarint(b, 0);
	cr_assert_not(b->oom);
	free(v);
}

/* The size of a make_series() record with a value of n bytes. */
static size_t series_size(size_t n)
{
	struct buf b = { 0 };
	size_t len;

	make_series(&b, 1, n, 1);
	len = b.len;
	buf_free(&b);
	return len;
}

/* A value length whose record is exactly len bytes (or 0 when none is). */
static size_t value_for(size_t len)
{
	for (size_t n = len > 40 ? len - 40 : 0; n <= len; n++)
		if (series_size(n) == len)
			return n;
	return 0;
}

Test(archive_import, committed_end_with_under_7_bytes_left_in_its_page)
{
	/* A record that ends 5 bytes before its page ends closes the page (a
	 * header does not fit); the snapshot's committed end is then 5 bytes
	 * before the page boundary. The next import must start on the next
	 * page, as Prometheus' reader skips such a page tail. */
	struct archive *a = open_archive(NULL);
	struct idx_snapshot one = import_ok(a, SNAP_NAME), two, three;
	struct archive_writer *w;
	struct archive_series r = { 0 };
	struct wal_reader_opts ro = { .allow_lz4 = 1, .raw = 1, .partial_last_page = 1 };
	struct wal_reader *rd;
	struct wal_record wr;
	struct buf b = { 0 };
	struct err e = { 0 };
	size_t at = one.end.offset % WAL_PAGE_SIZE, first, second, nrec = 0;
	int rc;

	/* first record: to the end of this page (or over it to the end of the next) */
	first = WAL_PAGE_SIZE - at - WAL_HEADER_SIZE;
	if (first < 64)
		first += WAL_PAGE_SIZE - WAL_HEADER_SIZE; /* and a whole fragment in the next page */
	/* second: a whole page less 5 bytes */
	second = WAL_PAGE_SIZE - 5 - WAL_HEADER_SIZE;
	w = begin(a, "page-tail");
	make_series(&b, 1000001, value_for(first), 11);
	cr_assert_eq(b.len, first);
	cr_assert_eq(archive_import_put(w, b.p, b.len, &e), 0, "%s", e.msg);
	make_series(&b, 1000002, value_for(second), 12);
	cr_assert_eq(b.len, second);
	cr_assert_eq(archive_import_put(w, b.p, b.len, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_import_commit(w, &two, &e), 0, "%s", e.msg);
	/* the setup worked only if the random records were stored plain */
	cr_assert_eq(two.end.offset % WAL_PAGE_SIZE, WAL_PAGE_SIZE - 5,
		     "setup: snapshot 2 ends at %llu (page offset %llu), wanted page offset 32763",
		     (unsigned long long)two.end.offset, (unsigned long long)(two.end.offset % WAL_PAGE_SIZE));

	three = import_ok(a, "after-the-tail");
	cr_assert_eq(three.id, 3);
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 3);
	cr_assert_eq(archive_read_ref(a, 2, 1000002, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.record.len, second);

	/* and the segments are valid WAL throughout */
	cr_assert_eq(wal_reader_open_dir(&rd, segdir, &ro, &e), 0, "%s", e.msg);
	while ((rc = wal_reader_next(rd, &wr, &e)) == 1)
		nrec++;
	cr_assert_eq(rc, 0, "the archive's segments do not read as WAL: %s", e.msg);
	wal_reader_close(rd);
	cr_assert_gt(nrec, 2 * 547);
	archive_series_free(&r);
	buf_free(&b);
	archive_close(a);
}

Test(archive_import, side_data_keeps_each_series_order_across_records)
{
	/* tombstones and exemplars of three series, interleaved over two
	 * records each: each series gets its own, in the order they came */
	static const struct rec_interval t1[] = {
		{ 20, 5, 6 }, { 10, 1, 2 }, { 20, 3, 4 }, { 99, 0, 0 }, { 10, -9, 9 },
	};
	static const struct rec_interval t2[] = { { 20, -7, 100 }, { 30, 42, 42 }, { 10, 7, 8 } };
	struct rec_exemplar x1[4], x2[3];
	struct archive *a = open_archive(NULL);
	struct archive_writer *w;
	struct archive_series r = { 0 };
	struct idx_snapshot snap;
	struct buf b = { 0 }, lbl = { 0 };
	struct rec_label one = { "trace_id", "abc", 8, 3 };
	struct err e = { 0 };
	uint8_t *recs[4];
	size_t lens[4];

	import_ok(a, SNAP_NAME);
	rec_labels_encode(&lbl, &one, 1);
	for (int i = 0; i < 4; i++)
		x1[i] = (struct rec_exemplar){ i % 2 ? 30u : 10u, 1000 + i, (uint64_t)i, { lbl.p, lbl.len, 1 } };
	for (int i = 0; i < 3; i++)
		x2[i] = (struct rec_exemplar){ i == 1 ? 10u : 30u, 500 - i, 100u + (uint64_t)i, { lbl.p, lbl.len, 1 } };

	w = begin(a, "side");
	for (uint64_t ref = 10; ref <= 30; ref += 10) {
		make_series(&b, ref, 10, ref);
		cr_assert_eq(archive_import_put(w, b.p, b.len, &e), 0, "%s", e.msg);
	}
	buf_reset(&b);
	rec_tombstones_encode(&b, t1, 5);
	recs[0] = malloc(b.len), lens[0] = b.len, memcpy(recs[0], b.p, b.len);
	buf_reset(&b);
	rec_tombstones_encode(&b, t2, 3);
	recs[1] = malloc(b.len), lens[1] = b.len, memcpy(recs[1], b.p, b.len);
	buf_reset(&b);
	rec_exemplars_encode(&b, x1, 4);
	recs[2] = malloc(b.len), lens[2] = b.len, memcpy(recs[2], b.p, b.len);
	buf_reset(&b);
	rec_exemplars_encode(&b, x2, 3);
	recs[3] = malloc(b.len), lens[3] = b.len, memcpy(recs[3], b.p, b.len);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(archive_import_put(w, recs[i], lens[i], &e), 0, "side record %d: %s", i, e.msg);
	cr_assert_eq(archive_import_commit(w, &snap, &e), 0, "%s", e.msg);
	cr_assert_eq(snap.series, 3);
	cr_assert_eq(snap.tombstones, 8);
	cr_assert_eq(snap.exemplars, 7);

	/* swap in a source made of these records, and check with the same helpers */
	{
		struct source saved = src;
		struct rec_interval iv[8];
		struct src_exemplar ex[7];

		memcpy(iv, t1, sizeof(t1));
		memcpy(iv + 5, t2, sizeof(t2));
		for (int i = 0; i < 4; i++)
			ex[i] = (struct src_exemplar){ x1[i].ref, x1[i].t, x1[i].value, lbl.p, lbl.len };
		for (int i = 0; i < 3; i++)
			ex[4 + i] = (struct src_exemplar){ x2[i].ref, x2[i].t, x2[i].value, lbl.p, lbl.len };
		src.iv = iv;
		src.niv = 8;
		src.ex = ex;
		src.nex = 7;
		for (uint64_t ref = 10; ref <= 30; ref += 10) {
			cr_assert_eq(archive_read_ref(a, snap.id, ref, &r, &e), 0, "ref %llu: %s",
				     (unsigned long long)ref, e.msg);
			assert_tombstones(&r, ref);
			assert_exemplars(&r, ref);
		}
		src = saved;
	}
	cr_assert_eq(archive_read_ref(a, snap.id, 99, &r, &e), SNAPARC_NOT_FOUND);
	assert_snapshot_reads_back(a, 1);
	for (int i = 0; i < 4; i++)
		free(recs[i]);
	archive_series_free(&r);
	buf_free(&b);
	buf_free(&lbl);
	archive_close(a);
}

struct prefix_of {
	uint32_t prefix;
	size_t series;   /* index into src.series */
};

static int cmp_prefix(const void *a, const void *b)
{
	uint32_t x = ((const struct prefix_of *)a)->prefix, y = ((const struct prefix_of *)b)->prefix;

	return x < y ? -1 : x > y;
}

Test(archive_import, label_sets_whose_hashes_collide_are_told_apart)
{
	/* The index keeps 32 bits of each label hash: find a label set
	 * {__name__="collision", n="<16 hex digits>"} whose hash shares them
	 * with one of the snapshot's series (about 2^32 / 545 tries). */
	static const char hex[] = "0123456789abcdef";
	struct prefix_of tab[545], key, *hit = NULL;
	struct rec_label mine[2], theirs[MAX_LABELS];
	struct rec_series s;
	struct archive *a = open_archive(NULL);
	struct archive_writer *w;
	struct archive_series r = { 0 };
	struct idx_snapshot snap;
	struct buf b = { 0 };
	struct err e = { 0 };
	char num[16];
	size_t n;

	for (size_t i = 0; i < src.nseries; i++) {
		const struct src_rec *sr = &src.recs[src.series[i]];

		cr_assert_eq(rec_series_decode(&s, sr->p, sr->len, &e), 0, "%s", e.msg);
		tab[i].prefix = (uint32_t)(rec_labels_hash(&s.labels) >> 32);
		tab[i].series = i;
	}
	qsort(tab, src.nseries, sizeof(tab[0]), cmp_prefix);
	mine[0] = (struct rec_label){ "__name__", "collision", 8, 9 };
	mine[1] = (struct rec_label){ "n", num, 1, sizeof(num) };
	for (uint64_t i = 0; i < (UINT64_C(1) << 36) && !hit; i++) {
		for (int d = 0; d < 16; d++)
			num[d] = hex[(i >> (60 - 4 * d)) & 15];
		key.prefix = (uint32_t)(rec_label_array_hash(mine, 2) >> 32);
		hit = bsearch(&key, tab, src.nseries, sizeof(tab[0]), cmp_prefix);
	}
	cr_assert_not_null(hit, "no colliding label set found");
	cr_assert_eq(rec_series_decode(&s, src.recs[src.series[hit->series]].p,
				       src.recs[src.series[hit->series]].len, &e), 0, "%s", e.msg);
	n = labels_of(&s, theirs);
	cr_assert_neq(rec_label_array_hash(mine, 2), rec_label_array_hash(theirs, n), "a full 64-bit collision");

	/* in the bundled snapshot: the colliding set is not there, the real one is */
	import_ok(a, SNAP_NAME);
	cr_assert_eq(archive_read_labels(a, 1, mine, 2, &r, &e), SNAPARC_NOT_FOUND,
		     "labels {n=\"%.16s\"} that only share a hash prefix with ref %llu were found", num,
		     (unsigned long long)s.ref);
	cr_assert_eq(archive_read_labels(a, 1, theirs, n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.series.ref, s.ref);

	/* a snapshot holding both: each label set finds its own series */
	w = begin(a, "collisions");
	cr_assert_eq(archive_import_put(w, src.recs[src.series[hit->series]].p, src.recs[src.series[hit->series]].len,
					&e), 0, "%s", e.msg);
	buf_put_byte(&b, REC_SERIES);
	buf_put_be64(&b, 100000);
	rec_labels_encode(&b, mine, 2);
	buf_put_be64(&b, 0);
	buf_put_uvarint(&b, 0);
	cr_assert_eq(archive_import_put(w, b.p, b.len, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_import_commit(w, &snap, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_read_labels(a, snap.id, mine, 2, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.series.ref, 100000);
	cr_assert_eq(r.record.len, b.len);
	cr_assert_eq(memcmp(r.record.p, b.p, b.len), 0);
	cr_assert_eq(archive_read_labels(a, snap.id, theirs, n, &r, &e), 0, "%s", e.msg);
	cr_assert_eq(r.series.ref, s.ref);
	archive_series_free(&r);
	buf_free(&b);
	archive_close(a);
}

/* ---- crashed writers ---- */

Test(archive_crash, garbage_past_committed_end_and_extra_segments_are_cut)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot one = import_ok(a, SNAP_NAME), two;
	struct segs before, after;
	char seg0[300], seg1[300], seg2[300];
	uint8_t junk[50000];
	int fd;

	archive_close(a);
	segs_capture(&before);
	cr_assert_eq(before.n, 1);
	seg_path(seg0, sizeof(seg0), 0);
	seg_path(seg1, sizeof(seg1), 1);
	seg_path(seg2, sizeof(seg2), 2);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + 1);
	/* a half-written record after the committed end, and segments after it */
	write_at(seg0, one.end.offset, junk, sizeof(junk));
	fd = open(seg1, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	fd = open(seg2, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	close(fd);

	a = open_archive(NULL);
	/* readers are not disturbed by what lies past the committed end */
	assert_snapshot_reads_back(a, 1);
	two = import_ok(a, "after-crash");
	cr_assert_eq(two.id, 2);
	cr_assert_eq(two.start.segment, 0);
	cr_assert_eq(two.start.offset, one.end.offset, "the import did not start at the committed end");
	segs_capture(&after);
	cr_assert_eq(after.n, 1, "%zu segment files after the import; the extra ones should be gone", after.n);
	cr_assert_str_eq(after.name[0], "00000000");
	cr_assert_eq(after.len[0], two.end.offset);
	cr_assert_eq(memcmp(after.data[0], before.data[0], before.len[0]), 0, "committed bytes changed");
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);
	segs_free(&before);
	segs_free(&after);
	archive_close(a);
}

Test(archive_crash, writer_killed_mid_import_leaves_committed_data_intact)
{
	struct archive *a = open_archive(NULL);
	struct idx_snapshot one = import_ok(a, SNAP_NAME), two;
	struct segs before, crashed, after;
	int status;
	pid_t pid;

	archive_close(a);
	segs_capture(&before);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* small segments, and over 4 MiB of records (past the dictionary
		 * training the writer holds records back for), so that pages
		 * and new segments reach the disk before the writer dies */
		struct archive_opts o = { .segment_size = 4 * WAL_PAGE_SIZE, .sync = 0 };
		struct archive *c;
		struct archive_writer *w;
		struct archive_import_info info = { .name = "crashing" };
		struct buf b = { 0 };
		struct err e = { 0 };

		if (archive_open(&c, arcdir, &o, &e) || archive_import_begin(c, &info, &w, &e))
			_exit(2);
		for (uint64_t k = 0; k < 24; k++) {
			for (size_t i = 0; i < src.n; i++) {
				const uint8_t *p = copy_record(i, k, &b);

				if (!p || archive_import_put(w, p, src.recs[i].len, &e))
					_exit(3);
			}
		}
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the writer child ended with status 0x%x",
		  status);
	segs_capture(&crashed);
	cr_assert_gt(crashed.n, 1, "setup: the killed writer left no new segment");

	a = open_archive(NULL);
	assert_snapshot_reads_back(a, 1);
	two = import_ok(a, "after-crash");
	cr_assert_eq(two.id, 2);
	cr_assert_eq(two.start.offset, one.end.offset);
	segs_capture(&after);
	cr_assert_eq(after.n, 1, "%zu segment files after the import; the killed writer's should be gone", after.n);
	cr_assert_eq(memcmp(after.data[0], before.data[0], before.len[0]), 0, "committed bytes changed");
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);
	segs_free(&before);
	segs_free(&crashed);
	segs_free(&after);
	archive_close(a);
}

/* ---- one writer at a time ---- */

Test(archive_lock, second_writer_is_busy_across_handles)
{
	struct archive *a = open_archive(NULL), *b = open_archive(NULL);
	struct archive_import_info info = { .name = "two" };
	struct archive_writer *w, *w2 = NULL;
	struct idx_snapshot snap;
	struct err e = { 0 };

	w = begin(a, "one");
	cr_assert_eq(archive_import_begin(b, &info, &w2, &e), SNAPARC_BUSY, "%s", e.msg);
	cr_assert_null(w2);
	cr_assert(strstr(e.msg, "another process"), "%s", e.msg);
	/* the same handle twice */
	cr_assert_eq(archive_import_begin(a, &info, &w2, &e), SNAPARC_BUSY, "%s", e.msg);
	put_all(w);
	cr_assert_eq(archive_import_commit(w, &snap, &e), 0, "%s", e.msg);

	w2 = begin(b, "two");
	put_all(w2);
	cr_assert_eq(archive_import_commit(w2, &snap, &e), 0, "%s", e.msg);
	cr_assert_eq(snap.id, 2);
	/* each handle sees both */
	assert_snapshot_reads_back(a, 2);
	assert_snapshot_reads_back(b, 1);
	archive_close(a);
	archive_close(b);
}

struct waiter {
	struct archive *a;
	struct archive_writer *w;
	struct err e;
	int rc;
	volatile int done;
};

static void *wait_begin(void *arg)
{
	struct waiter *wt = arg;
	struct archive_import_info info = { .name = "waited" };

	wt->rc = archive_import_begin(wt->a, &info, &wt->w, &wt->e);
	wt->done = 1;
	return NULL;
}

Test(archive_lock, waiting_writer_begins_when_the_first_ends)
{
	struct archive_opts wait = { .create = 1, .sync = 1, .wait = 1 };
	struct archive *a = open_archive(NULL), *b = open_archive(&wait);
	struct archive_writer *w = begin(a, "first");
	struct waiter wt = { .a = b };
	struct idx_snapshot snap;
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	struct err e = { 0 };
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, wait_begin, &wt), 0);
	nanosleep(&ts, NULL);
	cr_assert_not(wt.done, "the waiting writer began while the first held the lock (rc %d)", wt.rc);
	put_all(w);
	cr_assert_eq(archive_import_commit(w, &snap, &e), 0, "%s", e.msg);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(wt.rc, 0, "%s", wt.e.msg);
	put_all(wt.w);
	cr_assert_eq(archive_import_commit(wt.w, &snap, &e), 0, "%s", e.msg);
	cr_assert_eq(snap.id, 2);
	assert_snapshot_reads_back(a, 1);
	assert_snapshot_reads_back(a, 2);
	archive_close(a);
	archive_close(b);
}

/* ---- opening ---- */

Test(archive_open, directory_that_is_not_an_archive_is_not_found_and_untouched)
{
	struct archive_opts plain = { .sync = 1 }, ro = { .read_only = 1 };
	struct archive *a = NULL;
	struct err e = { 0 };
	char f[300];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	/* missing */
	cr_assert_eq(archive_open(&a, arcdir, &plain, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(archive_open(&a, arcdir, &ro, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(access(arcdir, F_OK), -1, "opening without create made %s", arcdir);
	/* empty */
	cr_assert_eq(mkdir(arcdir, 0777), 0);
	cr_assert_eq(archive_open(&a, arcdir, &plain, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(archive_open(&a, arcdir, &ro, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(archive_open(&a, arcdir, NULL, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	/* with a file in it */
	snprintf(f, sizeof(f), "%s/notes.txt", arcdir);
	cr_assert_eq(close(open(f, O_WRONLY | O_CREAT, 0644)), 0);
	cr_assert_eq(archive_open(&a, arcdir, &plain, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(archive_open(&a, arcdir, &ro, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_null(a);
	d = opendir(arcdir);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			cr_assert_str_eq(de->d_name, "notes.txt", "opening made %s", de->d_name);
			n++;
		}
	closedir(d);
	cr_assert_eq(n, 1);
}

Test(archive_open, non_empty_directory_is_not_made_an_archive)
{
	struct archive_opts create = { .create = 1, .sync = 1 };
	struct archive *a = NULL;
	struct err e = { 0 };
	char f[300], sub[300];
	DIR *d;
	struct dirent *de;
	size_t n = 0;

	cr_assert_eq(mkdir(arcdir, 0777), 0);
	snprintf(f, sizeof(f), "%s/notes.txt", arcdir);
	snprintf(sub, sizeof(sub), "%s/segments", arcdir);
	cr_assert_eq(close(open(f, O_WRONLY | O_CREAT, 0644)), 0);
	cr_assert_neq(archive_open(&a, arcdir, &create, &e), 0, "a directory with a file became an archive");
	cr_assert_null(a);
	cr_assert(strstr(e.msg, "not empty"), "%s", e.msg);
	/* a directory with something that looks like ours, but no index */
	cr_assert_eq(mkdir(sub, 0777), 0);
	cr_assert_eq(unlink(f), 0);
	cr_assert_neq(archive_open(&a, arcdir, &create, &e), 0, "a directory with segments/ became an archive");
	d = opendir(arcdir);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			cr_assert_str_eq(de->d_name, "segments", "opening made %s", de->d_name);
			n++;
		}
	closedir(d);
	cr_assert_eq(n, 1);
}

Test(archive_open, empty_directory_with_create_becomes_an_archive)
{
	struct archive_opts create = { .create = 1, .sync = 1 };
	struct archive *a = NULL;
	struct idx_snapshot s;
	struct err e = { 0 };

	cr_assert_eq(mkdir(arcdir, 0777), 0);
	cr_assert_eq(archive_open(&a, arcdir, &create, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_snapshot_next(a, 0, &s, &e), SNAPARC_NOT_FOUND);
	archive_close(a);
	/* and opens without create from now on */
	create.create = 0;
	cr_assert_eq(archive_open(&a, arcdir, &create, &e), 0, "%s", e.msg);
	archive_close(a);
}

Test(archive_open, read_only_open_serves_reads_and_refuses_import)
{
	struct archive_opts ro = { .read_only = 1 };
	struct archive *w = open_archive(NULL), *a = NULL;
	struct archive_import_info info = { .name = "x" };
	struct archive_writer *wr = NULL;
	struct archive_stat st;
	struct segs before;
	struct err e = { 0 };

	import_ok(w, SNAP_NAME);
	archive_close(w);
	segs_capture(&before);
	cr_assert_eq(archive_open(&a, arcdir, &ro, &e), 0, "%s", e.msg);
	assert_snapshot_reads_back(a, 1);
	cr_assert_eq(archive_import_begin(a, &info, &wr, &e), SNAPARC_INVALID, "%s", e.msg);
	cr_assert_null(wr);
	cr_assert_eq(archive_stat(a, &st, &e), 0, "%s", e.msg);
	cr_assert_eq(st.segments, 1);
	cr_assert_gt(st.index_bytes, 0);
	cr_assert_geq(st.segment_bytes, before.len[0]);
	archive_close(a);
	assert_segs_unchanged(&before, "a read-only open");

	/* a reader opened before an import sees it after */
	cr_assert_eq(archive_open(&a, arcdir, &ro, &e), 0, "%s", e.msg);
	w = open_archive(NULL);
	import_ok(w, "later");
	assert_snapshot_reads_back(a, 2);
	archive_close(w);
	archive_close(a);
	segs_free(&before);
}

/* ---- damage ---- */

/* The location of the i-th series; caller frees nothing. */
static struct idx_loc loc_of(struct archive *a, size_t i)
{
	struct archive_series r = { 0 };
	struct idx_loc loc = { 0 };
	struct err e = { 0 };

	cr_assert_eq(archive_read_ref(a, 1, series_ref(i), &r, &e), 0, "%s", e.msg);
	loc = r.loc;
	archive_series_free(&r);
	return loc;
}

/* Every series but the one at index `broken` still reads back exactly. */
static void assert_others_read(struct archive *a, size_t broken)
{
	struct archive_series r = { 0 };
	struct err e = { 0 };

	for (size_t i = 0; i < src.nseries; i++) {
		if (i == broken)
			continue;
		cr_assert_eq(archive_read_ref(a, 1, series_ref(i), &r, &e), 0, "%s", e.msg);
		assert_same_record(&r, &src.recs[src.series[i]], series_ref(i), "beside the damage:");
	}
	archive_series_free(&r);
}

Test(archive_corrupt, flipped_byte_in_a_stored_record_names_segment_and_offset)
{
	struct archive *a = open_archive(NULL);
	struct archive_series r = { 0 };
	struct err e = { 0 };
	struct idx_loc loc = { 0 };
	char seg0[300], want[200];
	uint8_t byte;
	size_t victim = 300;
	int fd;

	import_ok(a, SNAP_NAME);
	seg_path(seg0, sizeof(seg0), 0);
	fd = open(seg0, O_RDWR);
	cr_assert_geq(fd, 0);
	/* a series stored in one fragment, so the damage is in the record's own */
	for (;; victim++) {
		cr_assert_lt(victim, src.nseries, "no series is stored as one fragment");
		loc = loc_of(a, victim);
		cr_assert_eq(pread(fd, &byte, 1, (off_t)loc.offset), 1);
		if ((byte & WAL_KIND_MASK) == WAL_FULL)
			break;
	}
	cr_assert_gt(loc.span, WAL_HEADER_SIZE + 4);
	cr_assert_eq(pread(fd, &byte, 1, (off_t)(loc.offset + loc.span - 2)), 1);
	byte ^= 0x10;
	cr_assert_eq(pwrite(fd, &byte, 1, (off_t)(loc.offset + loc.span - 2)), 1);
	close(fd);

	cr_assert_eq(archive_read_ref(a, 1, series_ref(victim), &r, &e), SNAPARC_CORRUPT, "%s", e.msg);
	snprintf(want, sizeof(want), "segments/00000000: offset %llu", (unsigned long long)loc.offset);
	cr_assert(strstr(e.msg, want), "message does not say '%s': %s", want, e.msg);
	assert_others_read(a, victim);
	archive_series_free(&r);
	archive_close(a);

	/* the same from a fresh handle (nothing cached) */
	a = open_archive(NULL);
	cr_assert_eq(archive_read_ref(a, 1, series_ref(victim), &r, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert(strstr(e.msg, want), "message does not say '%s': %s", want, e.msg);
	archive_series_free(&r);
	archive_close(a);
}

Test(archive_corrupt, damaged_lz4_header_under_a_valid_crc_is_corrupt)
{
	struct archive *a = open_archive(NULL);
	struct archive_series r = { 0 };
	struct err e = { 0 };
	struct idx_loc loc = { 0 };
	char seg0[300], want[200];
	uint8_t hdr[WAL_HEADER_SIZE], *data;
	size_t victim, n;
	int fd;

	import_ok(a, SNAP_NAME);
	seg_path(seg0, sizeof(seg0), 0);
	fd = open(seg0, O_RDWR);
	cr_assert_geq(fd, 0);
	/* a series stored in one fragment, LZ4-compressed */
	for (victim = 10; victim < src.nseries; victim++) {
		loc = loc_of(a, victim);
		cr_assert_eq(pread(fd, hdr, sizeof(hdr), (off_t)loc.offset), (ssize_t)sizeof(hdr));
		if (hdr[0] == (WAL_FULL | WAL_LZ4))
			break;
	}
	cr_assert_lt(victim, src.nseries, "no series is stored as one LZ4 fragment");
	n = be16_get(hdr + 1);
	cr_assert_eq(n + WAL_HEADER_SIZE, loc.span);
	data = malloc(n);
	cr_assert_not_null(data);
	cr_assert_eq(pread(fd, data, n, (off_t)(loc.offset + WAL_HEADER_SIZE)), (ssize_t)n);
	/* the payload starts with the dictionary id: name one that does not exist */
	cr_assert_lt(data[0], 0x80);
	data[0] = 0x7f;
	be32_put(hdr + 3, crc32c(0, data, n));
	cr_assert_eq(pwrite(fd, hdr, sizeof(hdr), (off_t)loc.offset), (ssize_t)sizeof(hdr));
	cr_assert_eq(pwrite(fd, data, n, (off_t)(loc.offset + WAL_HEADER_SIZE)), (ssize_t)n);
	close(fd);
	free(data);

	cr_assert_eq(archive_read_ref(a, 1, series_ref(victim), &r, &e), SNAPARC_CORRUPT, "%s", e.msg);
	snprintf(want, sizeof(want), "segments/00000000: offset %llu", (unsigned long long)loc.offset);
	cr_assert(strstr(e.msg, want), "message does not say '%s': %s", want, e.msg);
	assert_others_read(a, victim);
	archive_series_free(&r);
	archive_close(a);
}

Test(archive_corrupt, segment_cut_short_is_corrupt_for_the_series_past_the_cut)
{
	struct archive *a = open_archive(NULL);
	struct archive_series r = { 0 };
	struct err e = { 0 };
	struct idx_loc loc = { 0 };
	char seg0[300], want[200];
	size_t last = src.nseries - 1;

	import_ok(a, SNAP_NAME);
	/* the series stored last of all */
	for (size_t i = 0; i < src.nseries; i++) {
		struct idx_loc l = loc_of(a, i);

		if (i == 0 || l.offset > loc.offset) {
			loc = l;
			last = i;
		}
	}
	seg_path(seg0, sizeof(seg0), 0);
	cr_assert_eq(truncate(seg0, (off_t)(loc.offset + loc.span - 1)), 0);
	archive_close(a);
	a = open_archive(NULL);
	cr_assert_eq(archive_read_ref(a, 1, series_ref(last), &r, &e), SNAPARC_CORRUPT, "%s", e.msg);
	snprintf(want, sizeof(want), "segments/00000000: offset %llu", (unsigned long long)loc.offset);
	cr_assert(strstr(e.msg, want), "message does not say '%s': %s", want, e.msg);
	archive_series_free(&r);
	archive_close(a);
}
