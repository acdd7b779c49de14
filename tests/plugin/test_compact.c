/*
 * Compaction (plugin/compact.c) on rounds made from the bundled real
 * Prometheus 2.42 snapshot: round k of R holds each series with the first
 * (k+1)/R of its XOR chunk's samples (re-encoded as Prometheus' appender
 * does, so each round's chunk extends the last one's), without the series
 * whose ref is k modulo 7, and the snapshot's own tombstones and exemplar
 * records unchanged. So consecutive rounds have records that differ a little
 * (deltas), records that do not differ (stored once) and series that come
 * and go.
 *
 * - after compaction every snapshot reads back byte-identical by ref and by
 *   labels, restores whole to exactly its imported records, and verifies;
 *   the segments shrink and the old ones are deleted;
 * - --keep-last and --keep-within keep exactly the right snapshots;
 * - no read follows more than max_chain deltas;
 * - identical snapshots share one label index, which outlives the removal
 *   of the snapshot that owned it;
 * - a dry run changes nothing;
 * - the index file is rewritten without its free pages when no other handle
 *   has the archive open, and only then;
 * - a reader whose transaction began before the switch keeps reading the
 *   old segments, which are deleted only once it is gone;
 * - a lookup loop in another process never fails nor returns wrong data
 *   while compactions run;
 * - lookup loops on the compacting handle itself, in other threads, never
 *   fail, and never hold up the compaction's rewrite of the index file;
 * - a record damaged in the segments fails the compaction with the file,
 *   the offset and the reason, and the archive stays as it was;
 * - a compaction killed with SIGKILL at random moments leaves an archive
 *   that opens, verifies and reads back every snapshot.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "archive_int.h"
#include "bytes.h"
#include "gen.h"
#include "lz4dict.h"
#include "xordelta.h"
#include "record.h"
#include "select.h"
#include "wal.h"
#include "xor.h"
#include "support.h"

#define ROUNDS 5

struct rec {
	uint8_t *p;
	size_t len;
	uint64_t ref;        /* series records; 0 for the others */
};

static struct round {
	struct rec *recs;
	size_t n;
	int64_t maxt;
} rounds[ROUNDS];

static char tmpdir[64], arcdir[128];

/* ---- the rounds ---- */

static void add(struct round *r, const uint8_t *p, size_t len, uint64_t ref)
{
	r->recs = realloc(r->recs, (r->n + 1) * sizeof(*r->recs));
	cr_assert_not_null(r->recs);
	r->recs[r->n].p = malloc(len);
	cr_assert_not_null(r->recs[r->n].p);
	memcpy(r->recs[r->n].p, p, len);
	r->recs[r->n].len = len;
	r->recs[r->n].ref = ref;
	r->n++;
}

/* The series record with samples [from, keep) of its XOR chunk. */
static void truncated(struct buf *out, const struct rec_series *s, size_t from, size_t keep)
{
	struct rec_series t = *s;
	struct xor_iter it;
	struct xor_enc enc;
	int64_t ts;
	uint64_t v;
	size_t n = 0;

	xor_enc_init(&enc);
	xor_iter_init(&it, s->chunk, s->chunk_len);
	while (n < keep && xor_iter_next(&it, &ts, &v) == 1) {
		if (n++ < from)
			continue;
		if (n == from + 1)
			t.mint = ts;
		cr_assert_eq(xor_enc_append(&enc, ts, v), 0);
		t.maxt = ts;
		t.last_value = v;
	}
	t.chunk = xor_enc_bytes(&enc, &t.chunk_len);
	t.tail = NULL;
	t.tail_len = 0;
	buf_reset(out);
	rec_series_encode(out, &t);
	cr_assert(!out->oom);
	xor_enc_free(&enc);
}

static void make_rounds(void)
{
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	struct buf b = { 0 };
	char dir[512];
	int rc;

	support_bundled_snapshot(dir, sizeof(dir));
	cr_assert_eq(wal_reader_open_dir(&r, dir, NULL, &e), 0, "%s", e.msg);
	while ((rc = wal_reader_next(r, &wr, &e)) == 1) {
		struct rec_series s;

		if (rec_type(wr.data, wr.len) != REC_SERIES) {
			for (int k = 0; k < ROUNDS; k++)
				add(&rounds[k], wr.data, wr.len, 0);
			continue;
		}
		cr_assert_eq(rec_series_decode(&s, wr.data, wr.len, &e), 0, "%s", e.msg);
		for (int k = 0; k < ROUNDS; k++) {
			if (s.ref % 7 == (uint64_t)k)
				continue;
			if (s.has_chunk && s.encoding == CHUNK_XOR) {
				/* a head chunk that grows from round to round; every
				 * third one starts afresh each round */
				size_t n = xor_chunk_count(s.chunk, s.chunk_len);
				size_t keep = n * (size_t)(k + 1) / ROUNDS;
				size_t from = s.ref % 3 ? 0 : n * (size_t)k / ROUNDS;

				if (!keep)
					keep = 1;
				truncated(&b, &s, from < keep ? from : keep - 1, keep);
				add(&rounds[k], b.p, b.len, s.ref);
			} else {
				add(&rounds[k], wr.data, wr.len, s.ref);
			}
		}
	}
	cr_assert_eq(rc, 0, "%s", e.msg);
	wal_reader_close(r);
	buf_free(&b);
}

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "compact");
	snprintf(arcdir, sizeof(arcdir), "%s/arc", tmpdir);
	make_rounds();
}

static void teardown(void)
{
	for (int k = 0; k < ROUNDS; k++) {
		for (size_t i = 0; i < rounds[k].n; i++)
			free(rounds[k].recs[i].p);
		free(rounds[k].recs);
		memset(&rounds[k], 0, sizeof(rounds[k]));
	}
	support_rm_tree(tmpdir);
}

TestSuite(compact, .init = setup, .fini = teardown, .timeout = 300);

/* ---- helpers ---- */

static struct archive *open_archive(void)
{
	struct archive_opts o = { .create = 1, .sync = 0, .segment_size = 64 * 1024 };
	struct archive *a = NULL;
	struct err e = { 0 };

	cr_assert_eq(archive_open(&a, arcdir, &o, &e), 0, "%s", e.msg);
	return a;
}

static uint32_t import_round(struct archive *a, int k, const char *name)
{
	struct archive_import_info info = { .name = name, .source_bytes = 1 };
	struct archive_writer *w;
	struct idx_snapshot s;
	struct err e = { 0 };

	cr_assert_eq(archive_import_begin(a, &info, &w, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < rounds[k].n; i++)
		cr_assert_eq(archive_import_put(w, rounds[k].recs[i].p, rounds[k].recs[i].len, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_import_commit(w, &s, &e), 0, "%s", e.msg);
	rounds[k].maxt = s.maxt;
	return s.id;
}

static void import_all(struct archive *a)
{
	for (int k = 0; k < ROUNDS; k++) {
		char name[32];

		snprintf(name, sizeof(name), "round-%d", k);
		cr_assert_eq(import_round(a, k, name), (uint32_t)k + 1);
	}
}

static struct archive_compact_stats compact_ok(struct archive *a, const struct archive_compact_opts *o)
{
	struct archive_compact_stats st;
	struct err e = { 0 };

	cr_assert_eq(archive_compact(a, o, &st, NULL, NULL, &e), 0, "%s", e.msg);
	return st;
}

/* Every series of round k reads back as imported, by ref and by labels. */
static void assert_round_reads(struct archive *a, uint32_t snap, int k)
{
	struct archive_series s = { 0 };
	struct err e = { 0 };

	for (size_t i = 0; i < rounds[k].n; i++) {
		const struct rec *r = &rounds[k].recs[i];
		struct rec_series rs;
		struct rec_label ls[64];
		struct rec_label_iter it;
		size_t n = 0;

		if (!r->ref)
			continue;
		cr_assert_eq(archive_read_ref(a, snap, r->ref, &s, &e), 0, "snapshot %u ref %llu: %s", snap,
			     (unsigned long long)r->ref, e.msg);
		cr_assert_eq(s.record.len, r->len, "snapshot %u ref %llu: %zu bytes, not %zu", snap,
			     (unsigned long long)r->ref, s.record.len, r->len);
		cr_assert_eq(memcmp(s.record.p, r->p, r->len), 0, "snapshot %u ref %llu differs", snap,
			     (unsigned long long)r->ref);
		cr_assert_eq(rec_series_decode(&rs, r->p, r->len, &e), 0);
		rec_labels_iter(&it, &rs.labels);
		while (n < 64 && rec_labels_next(&it, &ls[n]))
			n++;
		cr_assert_eq(archive_read_labels(a, snap, ls, n, &s, &e), 0, "snapshot %u ref %llu by labels: %s",
			     snap, (unsigned long long)r->ref, e.msg);
		cr_assert_eq(s.series.ref, r->ref);
	}
	/* and a ref this round lacks is not there */
	cr_assert_eq(archive_read_ref(a, snap, (uint64_t)(7 + k), &s, &e), SNAPARC_NOT_FOUND);
	archive_series_free(&s);
}

static int cmp_rec(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;

	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->p, b->p, a->len);
}

/* The whole restore of snapshot snap holds exactly round k's records. */
static void assert_round_restores(struct archive *a, uint32_t snap, int k)
{
	struct archive_restore_stats st;
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	struct round got = { 0 };
	struct rec *want;
	char out[256], spec[16];
	int rc;

	snprintf(out, sizeof(out), "%s/restore-%u", tmpdir, snap);
	snprintf(spec, sizeof(spec), "%u", snap);
	support_rm_tree(out);
	cr_assert_eq(archive_restore(a, spec, NULL, 0, out, NULL, &st, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_reader_open_dir(&r, out, NULL, &e), 0, "%s", e.msg);
	while ((rc = wal_reader_next(r, &wr, &e)) == 1)
		add(&got, wr.data, wr.len, 0);
	cr_assert_eq(rc, 0, "%s", e.msg);
	wal_reader_close(r);
	cr_assert_eq(got.n, rounds[k].n, "snapshot %u restores %zu records, not %zu", snap, got.n, rounds[k].n);
	want = malloc(rounds[k].n * sizeof(*want));
	memcpy(want, rounds[k].recs, rounds[k].n * sizeof(*want));
	qsort(want, rounds[k].n, sizeof(*want), cmp_rec);
	qsort(got.recs, got.n, sizeof(*got.recs), cmp_rec);
	for (size_t i = 0; i < got.n; i++)
		cr_assert_eq(cmp_rec(&got.recs[i], &want[i]), 0, "snapshot %u: restored record %zu differs", snap, i);
	for (size_t i = 0; i < got.n; i++)
		free(got.recs[i].p);
	free(got.recs);
	free(want);
	support_rm_tree(out);
}

static void assert_verifies(struct archive *a)
{
	struct err e = { 0 };

	cr_assert_eq(archive_verify(a, ARCHIVE_VERIFY_DEEP, NULL, NULL, NULL, NULL, &e), 0, "verify: %s", e.msg);
}

static uint64_t segment_bytes(void)
{
	char dir[200];
	struct dirent *de;
	uint64_t n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/segments", arcdir);
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		char p[600];
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_name[0] != '.' && stat(p, &st) == 0)
			n += (uint64_t)st.st_size;
	}
	closedir(d);
	return n;
}

static uint32_t first_segment(void)
{
	char dir[200];
	struct dirent *de;
	unsigned long first = UINT32_MAX;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/segments", arcdir);
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strtoul(de->d_name, NULL, 10) < first)
			first = strtoul(de->d_name, NULL, 10);
	closedir(d);
	return (uint32_t)first;
}

/* ---- tests ---- */

Test(compact, every_snapshot_reads_and_restores_byte_identical_after_compaction)
{
	struct archive *a = open_archive();
	struct archive_compact_stats st;
	uint64_t before;

	import_all(a);
	before = segment_bytes();
	st = compact_ok(a, NULL);
	cr_assert_eq(st.snapshots_kept, ROUNDS);
	cr_assert_eq(st.snapshots_dropped, 0);
	cr_assert_gt(st.records_delta, 0, "no record was stored as a delta");
	cr_assert_gt(st.records_shared, 0, "no record was stored once for two snapshots");
	cr_assert_gt(st.segments_deleted, 0);
	cr_assert_eq(st.segments_pending, 0);
	cr_assert(st.index_shrunk, "the only handle open, the index file was not rewritten");
	cr_assert_lt(st.bytes_after, st.bytes_before);
	/* a seventh of the series come back whole each round: about 0.6x */
	cr_assert_lt(segment_bytes(), before * 2 / 3, "segments %llu bytes after, %llu before",
		     (unsigned long long)segment_bytes(), (unsigned long long)before);
	for (int k = 0; k < ROUNDS; k++) {
		assert_round_reads(a, (uint32_t)k + 1, k);
		assert_round_restores(a, (uint32_t)k + 1, k);
	}
	assert_verifies(a);

	/* an import after compaction, and a second compaction over deltas */
	cr_assert_eq(import_round(a, 0, "again"), ROUNDS + 1);
	st = compact_ok(a, NULL);
	assert_round_reads(a, ROUNDS + 1, 0);
	for (int k = 0; k < ROUNDS; k++)
		assert_round_reads(a, (uint32_t)k + 1, k);
	assert_verifies(a);
	/* nothing left to do: nothing is rewritten */
	st = compact_ok(a, NULL);
	cr_assert_eq(st.records, 0);
	archive_close(a);

	/* and in a new handle (no cache) */
	a = open_archive();
	for (int k = 0; k < ROUNDS; k++)
		assert_round_restores(a, (uint32_t)k + 1, k);
	archive_close(a);
}

Test(compact, keep_last_keeps_exactly_the_newest)
{
	struct archive *a = open_archive();
	struct archive_compact_opts o = { .keep_last = 2 };
	struct archive_compact_stats st;
	struct idx_snapshot s;
	struct err e = { 0 };

	import_all(a);
	st = compact_ok(a, &o);
	cr_assert_eq(st.snapshots_kept, 2);
	cr_assert_eq(st.snapshots_dropped, ROUNDS - 2);
	for (int k = 0; k < ROUNDS; k++) {
		char name[32];

		snprintf(name, sizeof(name), "round-%d", k);
		if (k < ROUNDS - 2) {
			cr_assert_eq(archive_snapshot_find(a, name, &s, &e), SNAPARC_NOT_FOUND, "%s kept", name);
		} else {
			cr_assert_eq(archive_snapshot_find(a, name, &s, &e), 0, "%s dropped", name);
			assert_round_reads(a, s.id, k);
			assert_round_restores(a, s.id, k);
		}
	}
	assert_verifies(a);
	archive_close(a);
}

Test(compact, keep_within_keeps_those_near_the_newest)
{
	struct archive *a = open_archive();
	struct archive_compact_opts o = { 0 };
	struct idx_snapshot s;
	struct err e = { 0 };
	int kept = 0;

	import_all(a);
	/* rounds' newest samples grow with k: keep the last two by time */
	cr_assert_lt(rounds[ROUNDS - 3].maxt, rounds[ROUNDS - 2].maxt);
	o.keep_within_ms = rounds[ROUNDS - 1].maxt - rounds[ROUNDS - 2].maxt;
	compact_ok(a, &o);
	for (int k = 0; k < ROUNDS; k++) {
		char name[32];
		int want = rounds[ROUNDS - 1].maxt - rounds[k].maxt <= o.keep_within_ms;

		snprintf(name, sizeof(name), "round-%d", k);
		cr_assert_eq(archive_snapshot_find(a, name, &s, &e) == 0, want, "%s: kept %d, want %d", name, !want, want);
		if (want) {
			assert_round_reads(a, s.id, k);
			kept++;
		}
	}
	cr_assert_eq(kept, 2);
	assert_verifies(a);
	archive_close(a);
}

/* The number of deltas a read of loc follows. */
static int chain_length(struct archive *a, struct idx_txn *t, struct idx_loc loc)
{
	struct buf span = { 0 }, scratch = { 0 };
	struct err e = { 0 };
	int n = 0;

	for (;;) {
		const uint8_t *data;
		size_t len;
		uint8_t flags;
		struct lz4dict_base b;
		int fd = archive_segment_fd(a, loc.segment, &e);

		cr_assert_geq(fd, 0, "%s", e.msg);
		buf_reset(&span);
		cr_assert_not_null(buf_reserve(&span, loc.span));
		cr_assert_eq(pread(fd, span.p, loc.span, (off_t)loc.offset), (ssize_t)loc.span);
		cr_assert_eq(wal_parse_record(span.p, loc.span, loc.offset, 1, &data, &len, &flags, &scratch, &e), 0,
			     "%s", e.msg);
		if (flags != WAL_LZ4)
			break;
		if (xordelta_is(data, len))
			cr_assert_eq(xordelta_base(data, len, &b, &e), 0, "%s", e.msg);
		else if (lz4dict_delta_base(data, len, &b, &e) != 1)
			break;
		n++;
		loc.segment = b.segment;
		loc.offset = b.offset;
		loc.span = b.span;
	}
	(void)t;
	buf_free(&span);
	buf_free(&scratch);
	return n;
}

static void assert_chains_within(struct archive *a, int max)
{
	struct idx_txn *t;
	struct err e = { 0 };
	int longest = 0;

	cr_assert_eq(archive_read_txn(a, &t, &e), 0);
	for (uint32_t snap = 1; snap <= ROUNDS; snap++) {
		struct idx_series_iter *it;
		struct idx_loc loc;

		cr_assert_eq(idx_series_iter_open(t, snap, &it, &e), 0);
		while (idx_series_iter_next(it, &loc, &e) == 1) {
			int n = chain_length(a, t, loc);

			cr_assert_leq(n, max, "snapshot %u ref %llu: a chain of %d deltas", snap,
				      (unsigned long long)loc.ref, n);
			if (n > longest)
				longest = n;
		}
		idx_series_iter_close(it);
	}
	archive_read_done(a, t);
	cr_assert_geq(longest, 1, "no read follows a delta");
}

Test(compact, no_read_follows_more_than_max_chain_deltas)
{
	struct archive *a = open_archive();
	struct archive_compact_opts o = { .max_chain = 2 };

	import_all(a);
	compact_ok(a, &o);
	assert_chains_within(a, 2);
	for (int k = 0; k < ROUNDS; k++)
		assert_round_reads(a, (uint32_t)k + 1, k);
	archive_close(a);

	a = open_archive();
	o.max_chain = 1;
	compact_ok(a, NULL);   /* nothing to do: already compacted */
	import_round(a, 0, "more");
	compact_ok(a, &o);     /* rewrites all, with shorter chains */
	assert_chains_within(a, 1);
	archive_close(a);
}

Test(compact, identical_snapshots_share_one_label_index_which_outlives_its_owner)
{
	struct archive *a = open_archive();
	struct archive_compact_stats st;
	struct select *sel;
	struct buf refs = { 0 };
	struct err e = { 0 };

	cr_assert_eq(import_round(a, 2, "first"), 1);
	cr_assert_eq(import_round(a, 2, "second"), 2);
	cr_assert_eq(import_round(a, 3, "third"), 3);
	st = compact_ok(a, NULL);
	cr_assert_eq(st.labels_shared, 1, "%u snapshots share a label index", st.labels_shared);
	/* the second is wholly the first's records */
	cr_assert_geq(st.records_shared, rounds[2].n);
	assert_round_reads(a, 2, 2);
	cr_assert_eq(archive_snapshot_remove(a, "first", &e), 0, "%s", e.msg);
	assert_round_reads(a, 2, 2);
	assert_round_reads(a, 3, 3);
	cr_assert_eq(select_parse("{__name__=~\".+\"}", &sel, &e), 0, "%s", e.msg);
	cr_assert_eq(archive_select(a, 2, sel, &refs, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(refs.len / sizeof(uint64_t) + 0, (size_t)(rounds[2].n - 2), "selected %zu", refs.len / 8);
	assert_verifies(a);
	/* the last user gone, its label index goes: compaction leaves no orphan */
	cr_assert_eq(archive_snapshot_remove(a, "second", &e), 0, "%s", e.msg);
	buf_reset(&refs);
	cr_assert_eq(archive_select(a, 3, sel, &refs, NULL, NULL, &e), 0, "%s", e.msg);
	cr_assert_eq(refs.len / sizeof(uint64_t), (size_t)(rounds[3].n - 2));
	select_free(sel);
	buf_free(&refs);
	assert_verifies(a);
	archive_close(a);
}

static void read_dir_files(const char *dir, char *out, size_t cap)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t o = 0;

	cr_assert_not_null(d);
	out[0] = '\0';
	while ((de = readdir(d)) != NULL) {
		char p[600];
		struct stat st;

		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_name[0] != '.' && stat(p, &st) == 0 && o < cap)
			o += (size_t)snprintf(out + o, cap - o, "%s:%lld:%lld ", de->d_name, (long long)st.st_size,
					      (long long)st.st_mtim.tv_nsec);
	}
	closedir(d);
}

Test(compact, dry_run_changes_nothing)
{
	struct archive *a = open_archive();
	struct archive_compact_opts o = { .dry_run = 1, .keep_last = 3 };
	struct archive_compact_stats st;
	char before[4096], after[4096], segdir[200];

	import_all(a);
	snprintf(segdir, sizeof(segdir), "%s/segments", arcdir);
	read_dir_files(segdir, before, sizeof(before));
	st = compact_ok(a, &o);
	read_dir_files(segdir, after, sizeof(after));
	cr_assert_str_eq(after, before);
	cr_assert_eq(st.snapshots_dropped, 2);
	cr_assert_lt(st.bytes_after, st.bytes_before);
	for (int k = 0; k < ROUNDS; k++)
		assert_round_reads(a, (uint32_t)k + 1, k);
	assert_verifies(a);
	archive_close(a);
}

Test(compact, old_segments_stay_while_an_older_reader_may_read_them)
{
	struct archive *a = open_archive();
	struct archive_compact_stats st;
	int go[2], ready[2], status;
	uint32_t first;
	char c;
	pid_t pid;

	import_all(a);
	first = first_segment();
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* a reader that looks a series up before compaction and reads
		 * its record afterwards, through the same transaction */
		struct archive *b = open_archive();
		struct archive_series s = { 0 };
		struct idx_txn *t;
		struct idx_loc loc;
		struct err e = { 0 };
		int ok;

		ok = archive_read_txn(b, &t, &e) == 0 && idx_series_get(t, 3, rounds[2].recs[0].ref ? rounds[2].recs[0].ref : 1, &loc, &e) == 0;
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(3);
		ok = ok && archive_read_record(b, t, 3, &loc, &s, &e) == 0;
		archive_read_done(b, t);
		archive_series_free(&s);
		archive_close(b);
		_exit(ok ? 0 : 1);
	}
	cr_assert_eq(read(ready[0], &c, 1), 1);
	st = compact_ok(a, NULL);
	cr_assert_gt(st.segments_pending, 0, "the old segments were deleted under a reader");
	cr_assert_eq(first_segment(), first, "the old segments are gone");
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader failed: status %d", status);
	/* the reader gone, the next writer deletes them */
	cr_assert_eq(import_round(a, 1, "later"), ROUNDS + 1);
	cr_assert_gt(first_segment(), first, "the old segments outlived their readers");
	for (int k = 0; k < ROUNDS; k++)
		assert_round_reads(a, (uint32_t)k + 1, k);
	assert_verifies(a);
	archive_close(a);
}

/* Reads every series of every round until told to stop; exits 0 only when
 * every read succeeded with the right bytes. */
static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void reader_loop(void)
{
	struct archive *b = open_archive();
	struct archive_series s = { 0 };
	struct err e = { 0 };
	unsigned long reads = 0;

	while (!stop_flag || reads == 0) {
		for (int k = 0; k < ROUNDS; k++) {
			for (size_t i = 0; i < rounds[k].n; i += 3) {
				const struct rec *r = &rounds[k].recs[i];

				if (!r->ref)
					continue;
				if (archive_read_ref(b, (uint32_t)k + 1, r->ref, &s, &e) != 0) {
					fprintf(stderr, "reader: snapshot %d ref %llu: %s\n", k + 1,
						(unsigned long long)r->ref, e.msg);
					_exit(1);
				}
				if (s.record.len != r->len || memcmp(s.record.p, r->p, r->len)) {
					fprintf(stderr, "reader: snapshot %d ref %llu: wrong bytes\n", k + 1,
						(unsigned long long)r->ref);
					_exit(2);
				}
				reads++;
			}
		}
		if (getppid() == 1)
			_exit(4);
	}
	_exit(0);
}

Test(compact, lookups_in_another_process_never_fail_during_compactions)
{
	struct archive *a = open_archive();
	struct archive_compact_opts o = { 0 };
	struct err e = { 0 };
	int status;
	pid_t pid;

	import_all(a);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		signal(SIGTERM, on_term);
		reader_loop();
	}
	for (int i = 0; i < 6; i++) {
		/* alternate the layout so that every pass rewrites everything */
		o.max_chain = 1 + (unsigned)(i % 3);
		o.no_delta = i % 2;
		import_round(a, i % ROUNDS, i % 2 ? "x-odd" : "x-even");
		cr_assert(!compact_ok(a, &o).index_shrunk, "the index file was rewritten under another process");
		cr_assert_eq(archive_snapshot_remove(a, i % 2 ? "x-odd" : "x-even", &e), 0, "%s", e.msg);
	}
	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader failed: status %d", status);
	archive_close(a);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Compacts in a child killed with SIGKILL after `delay` seconds (or when done). */
static void compact_killed(double delay, unsigned max_chain, int no_delta)
{
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct archive_opts ao = { .create = 0, .sync = 1, .segment_size = 64 * 1024 };
		struct archive_compact_opts o = { .max_chain = max_chain, .no_delta = no_delta };
		struct archive *b;
		struct err e = { 0 };

		if (archive_open(&b, arcdir, &ao, &e) || archive_compact(b, &o, NULL, NULL, NULL, &e))
			_exit(1);
		archive_close(b);
		_exit(0);
	}
	if (delay > 0) {
		struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };

		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
		  "the compaction failed before it was killed: status %d", status);
}

/* The bytes of every segment file, end to end, with their names. */
static void segments_bytes(struct buf *out)
{
	char dir[200], path[300];
	struct dirent **names;
	int n;

	buf_reset(out);
	snprintf(dir, sizeof(dir), "%s/segments", arcdir);
	n = scandir(dir, &names, NULL, alphasort);
	cr_assert_geq(n, 0);
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			size_t len;
			uint8_t *p;

			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			p = support_read_file(path, &len);
			buf_put(out, names[i]->d_name, strlen(names[i]->d_name) + 1);
			buf_put(out, p, len);
			free(p);
		}
		free(names[i]);
	}
	free(names);
	cr_assert(!out->oom);
}

/* A series record of the middle snapshot with a byte of its stored payload
 * changed: the compaction's reading thread meets it (the CRC) and the
 * compaction fails with where and why; nothing of the archive changes. */
Test(compact, a_damaged_record_fails_the_compaction_and_changes_nothing)
{
	struct archive *a = open_archive();
	struct archive_compact_stats st;
	struct buf before = { 0 }, after = { 0 };
	struct idx_txn *t;
	struct idx_loc loc;
	struct err e = { 0 };
	const struct rec *victim = NULL;
	char path[300], want[300];
	uint8_t byte;
	FILE *f;
	int rc;

	import_all(a);
	for (size_t i = rounds[2].n / 2; i < rounds[2].n && !victim; i++)
		if (rounds[2].recs[i].ref)
			victim = &rounds[2].recs[i];
	cr_assert_not_null(victim);
	cr_assert_eq(archive_read_txn(a, &t, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_series_get(t, 3, victim->ref, &loc, &e), 0, "%s", e.msg);
	archive_read_done(a, t);
	snprintf(path, sizeof(path), "%s/segments/%08u", arcdir, loc.segment);
	f = fopen(path, "r+b");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, (long)(loc.offset + loc.span / 2), SEEK_SET), 0);
	cr_assert_eq(fread(&byte, 1, 1, f), 1);
	byte ^= 0x5a;
	cr_assert_eq(fseek(f, (long)(loc.offset + loc.span / 2), SEEK_SET), 0);
	cr_assert_eq(fwrite(&byte, 1, 1, f), 1);
	cr_assert_eq(fclose(f), 0);
	segments_bytes(&before);

	rc = archive_compact(a, NULL, &st, NULL, NULL, &e);
	cr_assert_eq(rc, SNAPARC_CORRUPT, "compaction over a damaged record returned %d: %s", rc, e.msg);
	snprintf(want, sizeof(want), "segments/%08u", loc.segment);
	cr_assert(strstr(e.msg, want) && strstr(e.msg, "offset ") && strstr(e.msg, "CRC"),
		  "the message names no file, offset or reason: %s", e.msg);
	cr_log_info("%s", e.msg);
	segments_bytes(&after);
	cr_assert(before.len == after.len && memcmp(before.p, after.p, before.len) == 0,
		  "the segments changed (%zu bytes before, %zu after)", before.len, after.len);
	for (int k = 0; k < ROUNDS; k++)
		if (k != 2)
			assert_round_reads(a, (uint32_t)k + 1, k);
	buf_free(&before);
	buf_free(&after);
	archive_close(a);
}

/* A lookup loop on a handle that compacts: series of the newest snapshot,
 * by ref, until told to stop. */
struct looker {
	struct archive *a;
	const int *stop;
	unsigned long reads, fails;
	char msg[300];
};

static void *look(void *arg)
{
	struct looker *l = arg;
	struct archive_series s = { 0 };
	const struct round *r = &rounds[ROUNDS - 1];

	for (size_t i = 0; !__atomic_load_n(l->stop, __ATOMIC_RELAXED); i++) {
		const struct rec *x = &r->recs[i % r->n];
		struct idx_snapshot snap;
		struct err e = { 0 };
		int rc;

		if (!x->ref)
			continue;
		rc = archive_snapshot_find(l->a, "latest", &snap, &e);
		if (!rc && !(rc = archive_read_ref(l->a, snap.id, x->ref, &s, &e)) && s.series.ref != x->ref)
			rc = snprintf(e.msg, sizeof(e.msg), "ref %llu read as ref %llu", (unsigned long long)x->ref,
				      (unsigned long long)s.series.ref) > 0 ? SNAPARC_CORRUPT : SNAPARC_CORRUPT;
		/* a series may be missing from the newest round, or the snapshot
		 * dropped since it was found */
		if (rc && rc != SNAPARC_NOT_FOUND && !l->fails++)
			snprintf(l->msg, sizeof(l->msg), "%s", e.msg);
		l->reads++;
	}
	archive_series_free(&s);
	return NULL;
}

/* The index file's rewrite at the end of a compaction waits for the
 * handle's read transactions to end, and a lookup takes the handle's lock
 * inside its transaction: the rewrite must not hold that lock while it
 * waits. */
Test(compact, lookups_on_the_compacting_handle_never_fail_nor_hold_it_up)
{
	enum { COMPACTIONS = 32 };
	struct archive *a = open_archive();
	struct archive_compact_opts o = { .keep_last = 2 };
	struct looker l[3];
	pthread_t th[3];
	int stop = 0, shrunk = 0;

	import_all(a);
	for (int i = 0; i < 3; i++) {
		l[i] = (struct looker){ .a = a, .stop = &stop };
		cr_assert_eq(pthread_create(&th[i], NULL, look, &l[i]), 0);
	}
	for (int k = 0; k < COMPACTIONS; k++) {
		char name[32];

		shrunk += compact_ok(a, &o).index_shrunk;
		snprintf(name, sizeof(name), "again-%d", k);
		import_round(a, ROUNDS - 1, name);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(pthread_join(th[i], NULL), 0);
		cr_assert_eq(l[i].fails, 0, "lookup thread %d: %lu of %lu lookups failed, the first: %s", i,
			     l[i].fails, l[i].reads, l[i].msg);
		cr_assert_gt(l[i].reads, 0);
	}
	/* the rewrite is skipped while the handle's kept transaction is in
	 * use: with three threads reading, in a few compactions of the 32 */
	cr_log_info("lookups on the compacting handle: %lu, %lu, %lu; index rewritten in %d of %d compactions",
		    l[0].reads, l[1].reads, l[2].reads, shrunk, COMPACTIONS);
	assert_verifies(a);
	archive_close(a);
}

Test(compact, a_compaction_killed_at_any_moment_loses_nothing)
{
	struct archive *a = open_archive();
	struct err e = { 0 };
	int kills = getenv("SNAPARC_COMPACT_KILLS") ? atoi(getenv("SNAPARC_COMPACT_KILLS")) : 20;
	double t0, took;

	import_all(a);
	archive_close(a);
	t0 = now_s();
	compact_killed(-1, 0, 0);   /* killed only after it finished: the time a run takes */
	took = now_s() - t0;
	srand(12345);
	for (int i = 0; i < kills; i++) {
		struct idx_snapshot s;
		char name[32];

		a = open_archive();
		snprintf(name, sizeof(name), "extra-%d", i);
		import_round(a, i % ROUNDS, name);
		archive_close(a);
		/* a new snapshot and another chain bound: the next run rewrites everything */
		compact_killed(took * 1.3 * rand() / RAND_MAX, 1 + (unsigned)(i % 3), i % 4 == 3);
		a = open_archive();
		assert_verifies(a);
		for (int k = 0; k < ROUNDS; k++)
			assert_round_reads(a, (uint32_t)k + 1, k);
		cr_assert_eq(archive_snapshot_find(a, name, &s, &e), 0, "%s: %s", name, e.msg);
		assert_round_reads(a, s.id, i % ROUNDS);
		cr_assert_eq(archive_snapshot_remove(a, name, &e), 0, "%s", e.msg);
		archive_close(a);
	}
	a = open_archive();
	for (int k = 0; k < ROUNDS; k++)
		assert_round_restores(a, (uint32_t)k + 1, k);
	archive_close(a);
}

/* ---- periodic snapshots of one head (bench/gen, as snapgen --periodic) ---- */

#define PERIODIC_SERIES 400
#define PERIODIC_SNAPSHOTS 30

/* Snapshot j's series records (ref order), as gen makes them. */
static void periodic_records(uint32_t j, struct buf *out, size_t *at, size_t *len)
{
	struct gen_opts go;
	struct gen *g;
	struct err e = { 0 };

	gen_opts_default(&go);
	go.series = PERIODIC_SERIES;
	go.periodic = 1;
	go.step = GEN_DEFAULT_STEP;
	go.snapshot = j;
	cr_assert_eq(gen_open(&g, &go, &e), 0, "%s", e.msg);
	buf_reset(out);
	for (uint64_t i = 0; i < PERIODIC_SERIES; i++) {
		at[i] = out->len;
		cr_assert_eq(gen_series_record(g, i, out, &e), 0, "%s", e.msg);
		len[i] = out->len - at[i];
	}
	gen_close(g);
}

static void periodic_compaction(unsigned max_chain)
{
	struct archive *a;
	struct archive_compact_opts o = { .max_chain = max_chain };
	struct archive_compact_stats st;
	struct archive_series s = { 0 };
	struct err e = { 0 };
	struct buf recs = { 0 };
	size_t at[PERIODIC_SERIES], len[PERIODIC_SERIES];

	support_rm_tree(arcdir);
	a = open_archive();
	for (uint32_t j = 0; j < PERIODIC_SNAPSHOTS; j++) {
		struct archive_import_info info = { .source_bytes = 1 };
		struct archive_writer *w;
		struct idx_snapshot sn;
		char name[64];

		snprintf(name, sizeof(name), "chunk_snapshot.000000.%010u", j);
		info.name = name;
		periodic_records(j, &recs, at, len);
		cr_assert_eq(archive_import_begin(a, &info, &w, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < PERIODIC_SERIES; i++)
			cr_assert_eq(archive_import_put(w, recs.p + at[i], len[i], &e), 0, "%s", e.msg);
		cr_assert_eq(archive_import_commit(w, &sn, &e), 0, "%s", e.msg);
	}
	st = compact_ok(a, &o);
	/* most records are their chunk in a later snapshot, cut short */
	cr_assert_gt(st.records_cut, (uint64_t)PERIODIC_SERIES * PERIODIC_SNAPSHOTS / 2, "%llu cuts",
		     (unsigned long long)st.records_cut);
	/* then once more, from that layout, dropping the oldest 10 */
	for (int round = 0; round < 2; round++) {
		for (uint32_t j = round ? 10 : 0; j < PERIODIC_SNAPSHOTS; j++) {
			periodic_records(j, &recs, at, len);
			for (size_t i = 0; i < PERIODIC_SERIES; i++) {
				cr_assert_eq(archive_read_ref(a, j + 1, i + 1, &s, &e), 0, "snapshot %u ref %zu: %s", j + 1,
					     i + 1, e.msg);
				cr_assert_eq(s.record.len, len[i], "snapshot %u ref %zu: %zu bytes, not %zu", j + 1, i + 1,
					     s.record.len, len[i]);
				cr_assert_eq(memcmp(s.record.p, recs.p + at[i], len[i]), 0, "snapshot %u ref %zu differs",
					     j + 1, i + 1);
			}
		}
		assert_verifies(a);
		if (!round) {
			o.keep_last = PERIODIC_SNAPSHOTS - 10;
			st = compact_ok(a, &o);
			cr_assert_eq(st.snapshots_dropped, 10);
			cr_assert_gt(st.records_cut, (uint64_t)PERIODIC_SERIES * (PERIODIC_SNAPSHOTS - 10) / 2,
				     "%llu cuts", (unsigned long long)st.records_cut);
		}
	}
	archive_series_free(&s);
	buf_free(&recs);
	archive_close(a);
}

Test(compact, periodic_snapshots_read_back_byte_identical_as_cuts)
{
	/* the default, one chunk's life (12 growths of 10 samples), and a
	 * bound that falls inside a chunk's life */
	periodic_compaction(0);
	periodic_compaction(12);
	periodic_compaction(5);
}

/* ---- --apply-tombstones ---- */

/* Round k's series record r as compaction with apply_tombstones stores it:
 * without the samples round k's tombstones delete. 1 when that changed it. */
static int tombstoned(int k, const struct rec *r, struct buf *out, int *dropped)
{
	struct rec_series s;
	struct rec_tombstones ts = { 0 };
	struct err e = { 0 };
	struct xor_enc enc;
	struct xor_iter xi;
	int64_t t;
	uint64_t v;
	int hit = 0, kept = 0;

	cr_assert_eq(rec_series_decode(&s, r->p, r->len, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < rounds[k].n; i++)
		if (rec_type(rounds[k].recs[i].p, rounds[k].recs[i].len) == REC_TOMBSTONES)
			cr_assert_eq(rec_tombstones_decode(&ts, rounds[k].recs[i].p, rounds[k].recs[i].len, &e), 0,
				     "%s", e.msg);
	*dropped = 0;
	if (!s.has_chunk || s.encoding != CHUNK_XOR || !ts.raw)
		return 0;
	xor_enc_init(&enc);
	xor_iter_init(&xi, s.chunk, s.chunk_len);
	while (xor_iter_next(&xi, &t, &v) == 1) {
		struct rec_tombstone_iter ti;
		struct rec_interval iv;
		int del = 0;

		rec_tombstones_iter(&ti, &ts);
		while (rec_tombstones_next(&ti, &iv) == 1)
			del |= iv.ref == s.ref && iv.mint <= t && t <= iv.maxt;
		if (del) {
			hit = 1;
			continue;
		}
		cr_assert_eq(xor_enc_append(&enc, t, v), 0);
		if (!kept++)
			s.mint = t;
		s.maxt = t;
		s.last_value = v;
	}
	if (hit) {
		s.has_chunk = kept > 0;
		*dropped = !kept;
		s.chunk = xor_enc_bytes(&enc, &s.chunk_len);
		s.tail = NULL;
		s.tail_len = 0;
		buf_reset(out);
		rec_series_encode(out, &s);
	}
	xor_enc_free(&enc);
	return hit;
}

Test(compact, apply_tombstones_takes_the_deleted_samples_out_of_head_chunks)
{
	struct archive *a = open_archive();
	struct archive_compact_opts o = { .apply_tombstones = 1 };
	struct archive_compact_stats st;
	struct archive_series s = { 0 };
	struct buf want = { 0 };
	struct err e = { 0 };
	uint64_t changed = 0, dropped = 0;

	import_all(a);
	st = compact_ok(a, &o);
	for (int k = 0; k < ROUNDS; k++) {
		for (size_t i = 0; i < rounds[k].n; i++) {
			const struct rec *r = &rounds[k].recs[i];
			int drop, hit;

			if (!r->ref)
				continue;
			hit = tombstoned(k, r, &want, &drop);
			changed += (uint64_t)hit;
			dropped += (uint64_t)drop;
			cr_assert_eq(archive_read_ref(a, (uint32_t)k + 1, r->ref, &s, &e), 0, "%s", e.msg);
			if (!hit) {
				cr_assert(s.record.len == r->len && !memcmp(s.record.p, r->p, r->len),
					  "round %d ref %llu changed", k, (unsigned long long)r->ref);
				continue;
			}
			cr_assert(s.record.len == want.len && !memcmp(s.record.p, want.p, want.len),
				  "round %d ref %llu: not its chunk without the deleted samples", k,
				  (unsigned long long)r->ref);
			/* the tombstones stay */
			cr_assert_gt(s.tombstones.len, 0);
		}
	}
	cr_assert_gt(changed, 0, "the rounds have no tombstone on a head chunk's samples");
	cr_assert_eq(st.chunks_tombstoned, changed);
	cr_assert_eq(st.chunks_dropped, dropped);
	assert_verifies(a);
	/* again, dropping a snapshot: nothing more to take out */
	o.keep_last = ROUNDS - 1;
	st = compact_ok(a, &o);
	cr_assert_eq(st.chunks_tombstoned, 0);
	archive_series_free(&s);
	buf_free(&want);
	archive_close(a);
}
