/*
 * Selecting series from the label postings (plugin/find.c: archive_select)
 * and following one series through the archived snapshots (archive_history),
 * on the bundled real Prometheus 2.42 snapshot:
 *
 * - for a table of PromQL selectors (=, !=, =~ and !~; alternations,
 *   prefixes, character classes, anchors, case folding; matchers that the
 *   empty value satisfies next to a positive one; __name__ regexes; labels
 *   no series has; the 40,000-byte label value by = and by regexes on its
 *   prefix; values with '.', ':', '/', '+'), the answer is exactly the sorted
 *   refs a brute force gives: every series record of the snapshot, read with
 *   wal_reader and rec_series_decode, checked with select_matches;
 * - the same answers when the import's postings were merged from a sorted
 *   run per series (an import_mem of 1 byte);
 * - a few answers counted by hand from tests/data/README.md;
 * - a snapshot id the archive does not have answers nothing; two different
 *   snapshots in one archive each answer for themselves;
 * - archive_history over three snapshots (the bundled one, a modified copy
 *   with four series dropped and every ref moved, written here with
 *   wal_writer, and the bundled one again): newest first with each
 *   snapshot's own ref and record; a snapshot without the series is
 *   skipped; a label set no snapshot has gives no callback; a callback's
 *   non-zero return stops the walk and is returned.
 *
 * Every test works in its own mkdtemp() directory.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "bytes.h"
#include "record.h"
#include "select.h"
#include "wal.h"
#include "support.h"

#define SNAP_NAME "chunk_snapshot.000000.0000163840"
#define MOD_NAME "chunk_snapshot.000001.0000000000"
#define MAX_LABELS 64
#define REF_SHIFT 100000   /* the modified copy's refs: the bundled ones plus this */

/* ---- snapshots read independently of the archive ---- */

struct rec {
	uint8_t *p;
	size_t len;
};

struct snapset {
	struct rec *recs;
	size_t n;
	size_t *series;     /* indices into recs of the series records */
	size_t nseries;
};

static void *grow(void *p, size_t n, size_t size)
{
	void *q = realloc(p, (n + 1) * size);

	cr_assert_not_null(q);
	return q;
}

static void snapset_load(struct snapset *s, const char *dir)
{
	struct wal_reader *r;
	struct wal_record wr;
	struct err e = { 0 };
	int rc;

	memset(s, 0, sizeof(*s));
	cr_assert_eq(wal_reader_open_dir(&r, dir, NULL, &e), 0, "%s: %s", dir, e.msg);
	while ((rc = wal_reader_next(r, &wr, &e)) == 1) {
		struct rec *x;

		s->recs = grow(s->recs, s->n, sizeof(*s->recs));
		x = &s->recs[s->n];
		x->len = wr.len;
		x->p = malloc(wr.len ? wr.len : 1);
		cr_assert_not_null(x->p);
		memcpy(x->p, wr.data, wr.len);
		if (rec_type(x->p, x->len) == REC_SERIES) {
			s->series = grow(s->series, s->nseries, sizeof(*s->series));
			s->series[s->nseries++] = s->n;
		}
		s->n++;
	}
	cr_assert_eq(rc, 0, "%s: %s", dir, e.msg);
	wal_reader_close(r);
}

static void snapset_free(struct snapset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->recs[i].p);
	free(s->recs);
	free(s->series);
	memset(s, 0, sizeof(*s));
}

static struct rec_series series_at(const struct snapset *s, size_t i)
{
	struct rec_series out;
	struct err e = { 0 };
	const struct rec *x = &s->recs[s->series[i]];

	cr_assert_eq(rec_series_decode(&out, x->p, x->len, &e), 0, "series %zu: %s", i, e.msg);
	return out;
}

/* The value of label name in a series, or NULL. */
static const char *label_value(const struct rec_series *s, const char *name, size_t *len)
{
	struct rec_label_iter it;
	struct rec_label l;

	rec_labels_iter(&it, &s->labels);
	while (rec_labels_next(&it, &l))
		if (l.name_len == strlen(name) && !memcmp(l.name, name, l.name_len)) {
			*len = l.value_len;
			return l.value;
		}
	return NULL;
}

static int has_label(const struct rec_series *s, const char *name, const char *value)
{
	size_t len;
	const char *v = label_value(s, name, &len);

	return v && len == strlen(value) && !memcmp(v, value, len);
}

static size_t labels_of(const struct rec_series *s, struct rec_label *out)
{
	struct rec_label_iter it;
	size_t n = 0;

	rec_labels_iter(&it, &s->labels);
	while (rec_labels_next(&it, &out[n])) {
		n++;
		cr_assert_lt(n, MAX_LABELS);
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The brute-force answer: every series record of the snapshot, matched. */
static void brute_force(const struct snapset *s, const struct select *sel, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < s->nseries; i++) {
		struct rec_series rs = series_at(s, i);
		int m = select_matches(sel, &rs.labels);

		cr_assert_geq(m, 0, "select_matches failed (%d) on ref %llu", m, (unsigned long long)rs.ref);
		if (m)
			buf_put(out, &rs.ref, sizeof(rs.ref));
	}
	cr_assert_not(out->oom);
	if (out->len)
		qsort(out->p, out->len / 8, 8, cmp_u64);
}

/* ---- fixtures ---- */

static char tmpdir[64];
static char arcdir[128];
static char moddir[192];
static char srcdir[512];
static struct snapset orig, mod;
static uint64_t dropped[4];   /* refs of the bundled snapshot left out of the modified copy */

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "find");
	snprintf(arcdir, sizeof(arcdir), "%s/arc", tmpdir);
	snprintf(moddir, sizeof(moddir), "%s/%s", tmpdir, MOD_NAME);
	support_bundled_snapshot(srcdir, sizeof(srcdir));
	snapset_load(&orig, srcdir);
	/* what tests/data/README.md says the snapshot holds */
	cr_assert_eq(orig.n, 547);
	cr_assert_eq(orig.nseries, 545);
}

static void teardown(void)
{
	snapset_free(&orig);
	snapset_free(&mod);
	support_rm_tree(tmpdir);
}

TestSuite(select, .init = setup, .fini = teardown);
TestSuite(history, .init = setup, .fini = teardown);

static int is_dropped(uint64_t ref)
{
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (dropped[i] == ref)
			return 1;
	return 0;
}

/*
 * Writes the modified copy of the bundled snapshot at moddir with wal_writer
 * (Snappy, as Prometheus): without four series (the long label, the first
 * shard="3" one, which has tombstones, the first one with exemplars, and
 * app_flaky{id="1"}), their tombstones and exemplars left out too, and every
 * ref moved up by REF_SHIFT. Then reads it back into mod.
 */
static void write_modified(void)
{
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_SNAPPY };
	struct wal_writer *w;
	struct err e = { 0 };
	struct buf b = { 0 };
	size_t nd = 0;
	uint64_t ex_ref = 0;
	int shard3 = 0;

	/* the first ref with exemplars */
	for (size_t i = 0; i < orig.n && !ex_ref; i++) {
		struct rec_exemplars x;
		struct rec_exemplar_iter it;
		struct rec_exemplar ex;

		if (rec_type(orig.recs[i].p, orig.recs[i].len) != REC_EXEMPLARS)
			continue;
		cr_assert_eq(rec_exemplars_decode(&x, orig.recs[i].p, orig.recs[i].len, &e), 0, "%s", e.msg);
		rec_exemplars_iter(&it, &x);
		if (rec_exemplars_next(&it, &ex))
			ex_ref = ex.ref;
	}
	cr_assert_neq(ex_ref, 0);
	dropped[nd++] = ex_ref;
	for (size_t i = 0; i < orig.nseries; i++) {
		struct rec_series s = series_at(&orig, i);

		if (s.ref == ex_ref && has_label(&s, "shard", "3"))
			shard3 = 1;
	}
	for (size_t i = 0; i < orig.nseries; i++) {
		struct rec_series s = series_at(&orig, i);
		size_t len;
		int drop = 0;

		if (s.ref == ex_ref)
			continue;
		if (label_value(&s, "blob", &len) && len == 40000)
			drop = 1;
		if (has_label(&s, "__name__", "app_flaky") && has_label(&s, "id", "1"))
			drop = 1;
		if (has_label(&s, "shard", "3") && !shard3)
			drop = shard3 = 1;
		if (drop) {
			cr_assert_lt(nd, 4);
			dropped[nd++] = s.ref;
		}
	}
	cr_assert_eq(nd, 4, "dropped %zu series, wanted 4", nd);

	cr_assert_eq(mkdir(moddir, 0777), 0, "%s: %s", moddir, strerror(errno));
	cr_assert_eq(wal_writer_open(&w, moddir, &wo, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < orig.n; i++) {
		const uint8_t *p = orig.recs[i].p;
		size_t len = orig.recs[i].len;

		buf_reset(&b);
		switch (rec_type(p, len)) {
		case REC_SERIES: {
			struct rec_series s;

			cr_assert_eq(rec_series_decode(&s, p, len, &e), 0, "%s", e.msg);
			if (is_dropped(s.ref))
				continue;
			s.ref += REF_SHIFT;
			rec_series_encode(&b, &s);
			break;
		}
		case REC_TOMBSTONES: {
			struct rec_tombstones t;
			struct rec_tombstone_iter it;
			struct rec_interval iv, *kept = NULL;
			size_t n = 0;

			cr_assert_eq(rec_tombstones_decode(&t, p, len, &e), 0, "%s", e.msg);
			rec_tombstones_iter(&it, &t);
			while (rec_tombstones_next(&it, &iv)) {
				if (is_dropped(iv.ref))
					continue;
				kept = grow(kept, n, sizeof(*kept));
				iv.ref += REF_SHIFT;
				kept[n++] = iv;
			}
			cr_assert_eq(n, 24, "tombstones kept: %zu", n);
			rec_tombstones_encode(&b, kept, n);
			free(kept);
			break;
		}
		case REC_EXEMPLARS: {
			struct rec_exemplars x;
			struct rec_exemplar_iter it;
			struct rec_exemplar ex, *kept = NULL;
			size_t n = 0;

			cr_assert_eq(rec_exemplars_decode(&x, p, len, &e), 0, "%s", e.msg);
			rec_exemplars_iter(&it, &x);
			while (rec_exemplars_next(&it, &ex)) {
				if (is_dropped(ex.ref))
					continue;
				kept = grow(kept, n, sizeof(*kept));
				ex.ref += REF_SHIFT;
				kept[n++] = ex;
			}
			cr_assert_gt(n, 0);
			cr_assert_lt(n, 232);
			rec_exemplars_encode(&b, kept, n);
			free(kept);
			break;
		}
		default:
			cr_assert_fail("record %zu has type %u", i, rec_type(p, len));
		}
		cr_assert_not(b.oom);
		cr_assert_eq(wal_writer_log(w, b.p, b.len, NULL, &e), 0, "%s", e.msg);
	}
	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
	buf_free(&b);
	snapset_load(&mod, moddir);
	cr_assert_eq(mod.nseries, 541);
	cr_assert_eq(mod.n, 543);
}

/* An import's memory for sorting: 0 for the default. */
static uint64_t import_mem;

static struct archive *open_archive(void)
{
	struct archive_opts o = { .create = 1, .sync = 0, .import_mem = import_mem };
	struct archive *a = NULL;
	struct err e = { 0 };

	cr_assert_eq(archive_open(&a, arcdir, &o, &e), 0, "%s", e.msg);
	return a;
}

static struct idx_snapshot import_dir(struct archive *a, const char *dir, const char *name)
{
	struct archive_import_info info = { .name = name };
	struct idx_snapshot snap;
	struct err e = { 0 };

	memset(&snap, 0, sizeof(snap));
	cr_assert_eq(archive_import_dir(a, dir, &info, NULL, NULL, &snap, &e), 0, "import %s: %s", name, e.msg);
	return snap;
}

static struct select *parse(const char *text)
{
	struct select *s = NULL;
	struct err e = { 0 };

	cr_assert_eq(select_parse(text, &s, &e), 0, "%.200s: %s", text, e.msg);
	return s;
}

static void describe(char *out, size_t cap, const uint64_t *r, size_t n)
{
	size_t k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && k + 24 < cap; i++)
		k += (size_t)snprintf(out + k, cap - k, "%s%llu", i ? "," : "", (unsigned long long)r[i]);
	if (n && k + 24 >= cap)
		snprintf(out + k, cap - k, ",...");
}

/* archive_select's answer against the brute force; 1 when they agree.
 * Reports the first refs that differ, non-fatally, so a table shows every
 * selector that disagrees. *count receives the size of the brute force. */
static int agrees(struct archive *a, uint32_t snap, const struct snapset *s, const char *text, size_t *count)
{
	struct select *sel = parse(text);
	struct buf got = { 0 }, want = { 0 };
	struct err e = { 0 };
	int rc = archive_select(a, snap, sel, &got, NULL, NULL, &e), same;

	brute_force(s, sel, &want);
	if (count)
		*count = want.len / 8;
	cr_expect_eq(rc, 0, "snapshot %u, %.200s: %s", snap, text, e.msg);
	same = !rc && got.len == want.len && (!got.len || !memcmp(got.p, want.p, got.len));
	if (!same && !rc) {
		const uint64_t *g = (const uint64_t *)got.p, *w = (const uint64_t *)want.p;
		size_t ng = got.len / 8, nw = want.len / 8, i = 0, j = 0, nm = 0, nx = 0;
		uint64_t missing[8], extra[8];
		char ms[256], xs[256];

		while (i < ng || j < nw) {
			if (j < nw && (i == ng || w[j] < g[i])) {
				if (nm < 8)
					missing[nm] = w[j];
				nm++, j++;
			} else if (i < ng && (j == nw || g[i] < w[j])) {
				if (nx < 8)
					extra[nx] = g[i];
				nx++, i++;
			} else {
				i++, j++;
			}
		}
		describe(ms, sizeof(ms), missing, nm < 8 ? nm : 8);
		describe(xs, sizeof(xs), extra, nx < 8 ? nx : 8);
		cr_expect_fail("snapshot %u, %.200s%s: archive_select gave %zu refs, brute force %zu; "
			       "missing %zu [%s], extra %zu [%s]",
			       snap, text, strlen(text) > 200 ? "..." : "", ng, nw, nm, ms, nx, xs);
	}
	buf_free(&got);
	buf_free(&want);
	select_free(sel);
	return same;
}

/* ---- the selector table ---- */

static const char *const selectors[] = {
	/* equality, the metric name before the braces or inside them */
	"app_requests_total{shard=\"3\"}",
	"app_flaky",
	"up",
	"{__name__=\"up\"}",
	"{\"up\"}",
	"{\"__name__\"=\"app_flaky\", \"id\"=\"2\"}",
	"{job='synthetic', shard=`3`,}",
	"{job=\"nope\"}",
	"app_requests_total{shard=\"3\", code=\"200\", method=\"GET\"}",
	/* != */
	"app_requests_total{code!=\"200\"}",
	"app_requests_total{code!=\"200\", method!=\"GET\"}",
	"{job=\"synthetic\", code!=\"200\"}",
	"app_latency_seconds_bucket{le!=\"+Inf\"}",
	"{id!=\"0\", __name__=\"app_flaky\"}",
	"{job!=\"\", __name__=\"up\"}",
	/* =~: alternations, prefixes, classes, anchors, case folding */
	"{__name__=~\".+\"}",
	"app_requests_total{method=~\"GET|PUT\"}",
	"app_requests_total{method=~\"GE.|P(U|O)T\"}",
	"{__name__=~\"app_requests_total|app_flaky\", shard=~\"1[0-5]\"}",
	"app_requests_total{shard=~\"1\"}",
	"app_requests_total{shard=~\"^1$\"}",
	"app_requests_total{shard=~\"^(1|2)$\"}",
	"app_requests_total{shard=~\"1.*\"}",
	"app_requests_total{shard=~\".*1\"}",
	"app_requests_total{shard=~\"[0-3]\"}",
	"app_requests_total{shard=~\"[^0-9]\"}",
	"app_requests_total{shard=~\"\\\\d{2}\"}",
	"app_requests_total{shard=~\"1|\"}",
	"app_requests_total{shard=~\"(1|3)?\"}",
	"app_requests_total{path=~\"/api/v1/item/1.*\"}",
	"app_requests_total{path=~\"/api/v1/item/(1|2)[0-9]\"}",
	"{path=~\"/api/v1/item/3[0-9]{2}\"}",
	"{path=~\".*/item/7\"}",
	"{path=~\"(?i)/API/V1/ITEM/42\"}",
	"{path=~\"/api/v1/item/\\\\d+\", method=\"POST\", code=\"404\"}",
	"{job=~\".+\", path=~\"/api/v1/item/.*\", shard=\"15\"}",
	"{sensor=~\"s1[0-9]?\"}",
	"{sensor=~\"s(1|2)(0|1)\"}",
	"{svc=~\"svc[0-9]+\"}",
	"{id=~\"[0-2]\", __name__=\"app_flaky\"}",
	"app_requests_total{method=~\"(?i)get|put\"}",
	"app_requests_total{method=~\"(?i:G)ET\"}",
	"app_requests_total{shard=~\"1$|2\"}",
	"app_requests_total{shard=~\"^1|2$\"}",
	"app_requests_total{shard=~\"(?m)^1$\"}",
	"app_requests_total{shard=~\"(|1)3\"}",
	"app_requests_total{shard=~\"1{1,2}\"}",
	"app_requests_total{shard=~\"1+\"}",
	"app_requests_total{shard=~\"1.*?\"}",
	"app_requests_total{shard=~\"\\\\x31[\\\\x30-\\\\x32]\"}",
	"app_requests_total{shard=~\"\\\\p{N}\"}",
	"app_requests_total{shard=~\"[[:digit:]]{2}\"}",
	"app_requests_total{shard=~\"1\\\\b\"}",
	"{instance=~\"\\\\Q127.0.0.1\\\\E:.*\"}",
	"{le=~\"0[.]1\"}",
	"{path=~\"/api/(?i)V1/item/7\"}",
	"{path=~\"/api/v1/item/(?s:.*)\"}",
	"{path=~\"/api/v1/item/.*|x\"}",
	"{path=~\"/api/v1/item/1.*5\"}",
	"{path=~\"/api/v1/item/(1|2|3)[0-9]{2}\"}",
	"{path=~\"/api/v1/item/(0|1|2|3|4|5|6|7|8|9){1,2}\"}",
	/* !~ */
	"app_requests_total{method!~\"GET|PUT\"}",
	"app_requests_total{shard!~\"1.*\"}",
	"app_requests_total{shard!~\".+\"}",
	"{room=~\"r1|r2\", sensor!~\"s1.*\"}",
	/* matchers the empty value satisfies, beside a positive one */
	"{job=\"synthetic\", shard=\"\"}",
	"{job=\"synthetic\", shard!~\".+\"}",
	"{job=\"synthetic\", nonexistent=\"\"}",
	"{job=\"synthetic\", nonexistent!=\"x\"}",
	"{job=\"synthetic\", nonexistent!~\"x.*\"}",
	"{job=\"synthetic\", nonexistent=~\"|x\"}",
	"{__name__=\"app_flaky\", id=~\"|1|3\"}",
	/* labels that do not exist */
	"{nonexistent=\"x\"}",
	"{nonexistent=~\".+\"}",
	"{nonexistent=~\"x|y\", job=\"synthetic\"}",
	"nonexistent_metric",
	/* __name__ regexes */
	"{__name__=~\"app_.*_total\"}",
	"{__name__=~\"app_latency_seconds_(bucket|sum|count)\", svc=\"svc2\"}",
	"{__name__=~\"scrape_.+\"}",
	"{__name__=~\"(?i)UP\"}",
	"{__name__!~\"app_.*\", job=\"synthetic\"}",
	"{__name__=~\"app_temp.*\", room=~\"r[13579]\"}",
	"{__name__=~\"app_flaky|up|nope\"}",
	"{__name__=~\".*flaky.*\"}",
	"{__name__=~\"app_long_label\"}",
	/* values with special characters: . : / + */
	"{instance=\"127.0.0.1:45825\", __name__=~\"app_temperature_celsius\"}",
	"{instance=~\"127\\\\.0\\\\.0\\\\.1:.*\", id=~\".+\"}",
	"{instance=~\"127.0.0.1:45825\"}",
	"{instance=~\"127\\\\.0\\\\.0\\\\.2:.*\"}",
	"{le=\"+Inf\"}",
	"{le=~\"\\\\+Inf|0\\\\.1\"}",
	"{le=~\"0\\\\.0.*\"}",
	"{le=~\"[+]Inf\"}",
	/* many candidates (over find.c's FEW), narrowed by postings */
	"{__name__=~\".+\", shard!=\"3\"}",
	"{__name__=~\".+\", code!~\"2..\"}",
	"{__name__=~\".+\", shard=~\"|3\"}",
	"{__name__=~\".+\", shard=\"\"}",
	"{__name__=~\".+\", method!~\"GET|PUT\"}",
	"{__name__=~\".+\", instance=~\"127\\\\.0\\\\.0\\\\.1:.*\", job=~\"synth.*\"}",
	"{job=~\"synthetic|other\", __name__=~\"app_(requests_total|temperature_celsius)\", code=~\"200|404\"}",
	"{job=\"synthetic\", __name__!=\"app_requests_total\", room!~\"r[0-4]\"}",
	"{__name__=~\".+\", blob=\"\"}",
	"{__name__=~\".+\", blob!~\".+\"}",
	"{__name__=~\".+\", blob!=\"x\"}",
};

#define NSEL (sizeof(selectors) / sizeof(selectors[0]))

/* The selectors of the 40,000-byte value of label blob, made from it. */
static size_t long_selectors(const struct snapset *s, char ***out)
{
	const char *blob = NULL;
	size_t len = 0, n = 0;
	char **v = calloc(16, sizeof(*v));

	cr_assert_not_null(v);
	for (size_t i = 0; i < s->nseries && !blob; i++) {
		struct rec_series rs = series_at(s, i);

		blob = label_value(&rs, "blob", &len);
	}
	cr_assert_not_null(blob);
	cr_assert_eq(len, 40000);
	for (size_t i = 0; i < len; i++)
		cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", blob[i]),
			  "blob byte %zu is 0x%02x, not base64url", i, (unsigned char)blob[i]);
#define ADD(...)                                                       \
	do {                                                           \
		size_t cap = len + 200;                                \
		cr_assert_lt(n, 16);                                   \
		v[n] = malloc(cap);                                    \
		cr_assert_not_null(v[n]);                              \
		snprintf(v[n], cap, __VA_ARGS__);                      \
		n++;                                                   \
	} while (0)
	ADD("app_long_label{blob=\"%.*s\"}", (int)len, blob);
	ADD("{blob=\"%.*s\"}", (int)len, blob);
	ADD("{blob=\"%.*sx\"}", (int)len, blob);                 /* longer: the hash differs */
	ADD("{blob=\"%.*s\"}", (int)len - 1, blob);              /* one byte shorter */
	ADD("{blob=\"%.*s\"}", 128, blob);                        /* just what the index keeps */
	ADD("{blob=~\"%.*s.*\"}", 16, blob);
	ADD("{blob=~\"%.*s.*\"}", 127, blob);
	ADD("{blob=~\"%.*s.*\"}", 128, blob);
	ADD("{blob=~\".*%.*s\"}", 10, blob + len - 10);
	ADD("{blob!=\"%.*s\", job=\"synthetic\"}", (int)len, blob);
	ADD("{blob!~\"%.*s.*\", job=\"synthetic\"}", 16, blob);
	ADD("{__name__=~\".+\", blob!~\"%.*s.*\"}", 200, blob);
	ADD("{__name__=~\".+\", blob!=\"%.*s\"}", (int)len, blob);
#undef ADD
	*out = v;
	return n;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

Test(select, table_of_selectors_answers_as_brute_force)
{
	struct archive *a = open_archive();
	struct idx_snapshot s1 = import_dir(a, srcdir, SNAP_NAME);
	size_t bad = 0, empty = 0, all = 0;

	cr_assert_geq(NSEL, 40);
	for (size_t i = 0; i < NSEL; i++) {
		size_t n;

		if (!agrees(a, s1.id, &orig, selectors[i], &n))
			bad++;
		empty += n == 0;
		all += n == 545;
	}
	/* the table is not all trivial answers */
	cr_expect_lt(empty + all, NSEL / 3, "%zu empty and %zu whole answers of %zu", empty, all, NSEL);
	cr_expect_eq(bad, 0, "%zu of %zu selectors disagree with the brute force", bad, NSEL);
	archive_close(a);
}

Test(select, long_label_value_by_equality_and_short_prefixes)
{
	struct archive *a = open_archive();
	struct idx_snapshot s1 = import_dir(a, srcdir, SNAP_NAME);
	char **v;
	size_t n = long_selectors(&orig, &v), bad = 0, counts[16];

	for (size_t i = 0; i < n; i++)
		bad += !agrees(a, s1.id, &orig, v[i], &counts[i]);
	cr_expect_eq(bad, 0, "%zu of %zu long-value selectors disagree with the brute force", bad, n);
	/* by hand: the value, its prefixes up to 128 bytes and its suffix find
	 * the one series; longer or shorter values find none */
	static const size_t want[] = { 1, 1, 0, 0, 0, 1, 1, 1, 1, 544, 544, 544, 544 };

	cr_assert_eq(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(counts[i], want[i], "%.80s...: %zu series, want %zu", v[i], counts[i], want[i]);
	free_strings(v, n);
	archive_close(a);
}

/* With no memory for postings every series makes a run of its own, and
 * every label's postings are merged from hundreds of them. */
Test(select, the_same_answers_from_postings_merged_from_a_run_per_series)
{
	struct archive *a;
	struct idx_snapshot s1;
	char **v;
	size_t n = long_selectors(&orig, &v), bad = 0;

	import_mem = 1;
	a = open_archive();
	s1 = import_dir(a, srcdir, SNAP_NAME);
	for (size_t i = 0; i < NSEL; i++)
		bad += !agrees(a, s1.id, &orig, selectors[i], NULL);
	for (size_t i = 0; i < n; i++)
		bad += !agrees(a, s1.id, &orig, v[i], NULL);
	cr_expect_eq(bad, 0, "%zu of %zu selectors disagree with the brute force", bad, NSEL + n);
	free_strings(v, n);
	archive_close(a);
}

/* The whole 40,000-byte value as a regex is over PCRE2's pattern size
 * limit: select.h's documented SNAPARC_UNSUPPORTED, not a wrong answer. */
Test(select, long_label_value_as_a_whole_regex_is_unsupported)
{
	char **v;
	size_t n = long_selectors(&orig, &v);
	const char *blob = strchr(v[1], '"') + 1;
	size_t len = 40000;
	char *text = malloc(len + 32);
	struct select *sel = NULL;
	struct err e = { 0 };

	cr_assert_not_null(text);
	snprintf(text, len + 32, "{blob=~\"%.*s\"}", (int)len, blob);
	cr_expect_eq(select_parse(text, &sel, &e), SNAPARC_UNSUPPORTED, "%s", e.msg);
	cr_expect_null(sel);
	free(text);
	free_strings(v, n);
}

/* A regex whose literal prefix is longer than the 128 bytes the postings keep
 * of a long value must still find it. */
Test(select, long_label_value_by_a_regex_prefix_over_128_bytes)
{
	struct archive *a = open_archive();
	struct idx_snapshot s1 = import_dir(a, srcdir, SNAP_NAME);
	struct rec_series rs;
	const char *blob = NULL;
	size_t len = 0;
	static const size_t lens[] = { 129, 200, 1000 };

	for (size_t i = 0; i < orig.nseries && !blob; i++) {
		rs = series_at(&orig, i);
		blob = label_value(&rs, "blob", &len);
	}
	cr_assert_not_null(blob);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *sel = malloc(lens[i] + 64);
		size_t count;

		cr_assert_not_null(sel);
		snprintf(sel, lens[i] + 64, "{blob=~\"%.*s.*\"}", (int)lens[i], blob);
		agrees(a, s1.id, &orig, sel, &count);
		cr_expect_eq(count, 1);
		snprintf(sel, lens[i] + 64, "app_long_label{blob=~\"%.*s.+\"}", (int)lens[i], blob);
		agrees(a, s1.id, &orig, sel, &count);
		cr_expect_eq(count, 1);
		free(sel);
	}
	archive_close(a);
}

/* A matcher that the empty value satisfies, applied to more candidates than
 * find.c decides on their records, must not drop a series whose long value
 * it matches. */
Test(select, negative_regex_keeps_a_long_value_it_matches_among_many_candidates)
{
	static const char *const sels[] = {
		"{__name__=~\".+\", blob!~\".*zzz\"}",
		"{__name__=~\".+\", blob=~\".*\"}",
		"{__name__=~\".+\", blob!~\"Kd.*zzz\"}",
		"{__name__=~\".+\", blob=~\"(?s).*|x\"}",
	};
	struct archive *a = open_archive();
	struct idx_snapshot s1 = import_dir(a, srcdir, SNAP_NAME);

	for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
		size_t count;

		agrees(a, s1.id, &orig, sels[i], &count);
		cr_expect_eq(count, 545, "%s: brute force %zu", sels[i], count);
	}
	archive_close(a);
}

static size_t select_count_of(struct archive *a, uint32_t snap, const char *text)
{
	struct select *sel = parse(text);
	struct buf got = { 0 };
	struct err e = { 0 };
	size_t n;

	cr_assert_eq(archive_select(a, snap, sel, &got, NULL, NULL, &e), 0, "%s: %s", text, e.msg);
	n = got.len / 8;
	buf_free(&got);
	select_free(sel);
	return n;
}

Test(select, hand_checked_counts)
{
	struct archive *a = open_archive();
	uint32_t id = import_dir(a, srcdir, SNAP_NAME).id;

	/* tests/data/README.md: 400 counters over 16 shards, 100 gauges, 5
	 * histograms (25 buckets, 5 _sum, 5 _count), 4 app_flaky, 1 long label,
	 * Prometheus' own 5 */
	cr_expect_eq(select_count_of(a, id, "app_requests_total{shard=\"3\"}"), 25);
	cr_expect_eq(select_count_of(a, id, "app_requests_total"), 400);
	cr_expect_eq(select_count_of(a, id, "{__name__=~\".+\"}"), 545);
	cr_expect_eq(select_count_of(a, id, "{job=\"synthetic\"}"), 545);
	cr_expect_eq(select_count_of(a, id, "app_temperature_celsius"), 100);
	cr_expect_eq(select_count_of(a, id, "app_latency_seconds_bucket"), 25);
	cr_expect_eq(select_count_of(a, id, "{__name__=~\"app_latency_seconds_(sum|count)\"}"), 10);
	cr_expect_eq(select_count_of(a, id, "app_flaky"), 4);
	cr_expect_eq(select_count_of(a, id, "app_long_label"), 1);
	cr_expect_eq(select_count_of(a, id, "{__name__!~\"app_.*\", job=\"synthetic\"}"), 5);
	cr_expect_eq(select_count_of(a, id, "{__name__=~\"scrape_.+|up\"}"), 5);
	cr_expect_eq(select_count_of(a, id, "{le=\"+Inf\"}"), 5);
	cr_expect_eq(select_count_of(a, id, "{job=\"synthetic\", shard=\"\"}"), 145);
	cr_expect_eq(select_count_of(a, id, "{__name__=~\".+\", shard!=\"3\"}"), 520);
	cr_expect_eq(select_count_of(a, id, "app_requests_total{shard=~\"1[0-5]\"}"), 150);
	cr_expect_eq(select_count_of(a, id, "{shard=~\"1\"}"), 25);
	cr_expect_eq(select_count_of(a, id, "{path=\"/api/v1/item/42\"}"), 1);
	cr_expect_eq(select_count_of(a, id, "{sensor=~\"s1[0-9]?\"}"), 11);
	cr_expect_eq(select_count_of(a, id, "{nonexistent=\"x\"}"), 0);
	cr_expect_eq(select_count_of(a, id, "{job=\"synthetic\", nonexistent=\"\"}"), 545);
	archive_close(a);
}

Test(select, snapshot_the_archive_does_not_have_answers_nothing)
{
	struct archive *a = open_archive();
	uint32_t id = import_dir(a, srcdir, SNAP_NAME).id;
	struct select *sel = parse("{__name__=~\".+\"}");
	struct buf got = { 0 };
	struct err e = { 0 };
	static const uint32_t missing[] = { 0, 2, 99, UINT32_MAX };

	cr_assert_eq(id, 1);
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		int rc;

		buf_put(&got, "garbage!", 8); /* the answer is reset, not appended to */
		rc = archive_select(a, missing[i], sel, &got, NULL, NULL, &e);
		/* what it does: no error, and no refs */
		cr_expect_eq(rc, 0, "snapshot %u: %d %s", missing[i], rc, e.msg);
		cr_expect_eq(got.len, 0, "snapshot %u: %zu refs", missing[i], got.len / 8);
	}
	buf_free(&got);
	select_free(sel);
	archive_close(a);
}

Test(select, two_snapshots_in_one_archive_answer_each_for_itself)
{
	struct archive *a;
	struct idx_snapshot s1, s2, s3;
	char **v;
	size_t nl, bad = 0;

	write_modified();
	a = open_archive();
	s1 = import_dir(a, srcdir, SNAP_NAME);
	s2 = import_dir(a, moddir, MOD_NAME);
	s3 = import_dir(a, srcdir, "again");
	cr_assert_eq(s1.id, 1);
	cr_assert_eq(s2.id, 2);
	cr_assert_eq(s3.id, 3);
	cr_assert_eq(s2.series, 541);
	nl = long_selectors(&orig, &v);
	for (size_t i = 0; i < NSEL + nl; i++) {
		const char *text = i < NSEL ? selectors[i] : v[i - NSEL];

		bad += !agrees(a, s1.id, &orig, text, NULL);
		bad += !agrees(a, s2.id, &mod, text, NULL);
		bad += !agrees(a, s3.id, &orig, text, NULL);
	}
	cr_expect_eq(bad, 0, "%zu answers disagree with the brute force", bad);
	/* by hand: the modified copy lost one shard="3" series, and every ref moved */
	cr_expect_eq(select_count_of(a, s1.id, "app_requests_total{shard=\"3\"}"), 25);
	cr_expect_eq(select_count_of(a, s2.id, "app_requests_total{shard=\"3\"}"), 24);
	cr_expect_eq(select_count_of(a, s3.id, "app_requests_total{shard=\"3\"}"), 25);
	cr_expect_eq(select_count_of(a, s2.id, "app_long_label"), 0);
	cr_expect_eq(select_count_of(a, s2.id, "app_flaky"), 3);
	cr_expect_eq(select_count_of(a, s2.id, "{__name__=~\".+\"}"), 541);
	{
		struct select *sel = parse("app_flaky");
		struct buf got = { 0 };
		struct err e = { 0 };

		cr_assert_eq(archive_select(a, s2.id, sel, &got, NULL, NULL, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < got.len / 8; i++)
			cr_expect_gt(((const uint64_t *)got.p)[i], REF_SHIFT);
		cr_assert_eq(archive_select(a, s1.id, sel, &got, NULL, NULL, &e), 0, "%s", e.msg);
		for (size_t i = 0; i < got.len / 8; i++)
			cr_expect_lt(((const uint64_t *)got.p)[i], REF_SHIFT);
		buf_free(&got);
		select_free(sel);
	}
	free_strings(v, nl);
	archive_close(a);
}

/* ---- history ---- */

struct seen {
	uint32_t snap[8];
	char name[8][IDX_NAME_MAX + 1];
	uint64_t ref[8];
	struct buf record[8];
	size_t n;
	int stop_at;       /* return 7 from this callback (1-based), 0 never */
};

static int on_history(void *ctx, const struct idx_snapshot *snap, const struct archive_series *s)
{
	struct seen *sn = ctx;

	cr_assert_lt(sn->n, 8);
	sn->snap[sn->n] = snap->id;
	snprintf(sn->name[sn->n], sizeof(sn->name[0]), "%s", snap->name);
	sn->ref[sn->n] = s->series.ref;
	cr_assert_eq(s->snapshot, snap->id);
	buf_reset(&sn->record[sn->n]);
	buf_put(&sn->record[sn->n], s->record.p, s->record.len);
	sn->n++;
	return sn->stop_at && (int)sn->n == sn->stop_at ? 7 : 0;
}

static void seen_free(struct seen *sn)
{
	for (size_t i = 0; i < 8; i++)
		buf_free(&sn->record[i]);
}

/* The record of ref in a snapset, or NULL. */
static const struct rec *record_of(const struct snapset *s, uint64_t ref)
{
	for (size_t i = 0; i < s->nseries; i++)
		if (series_at(s, i).ref == ref)
			return &s->recs[s->series[i]];
	return NULL;
}

static void assert_record(const struct seen *sn, size_t k, const struct rec *want, const char *what)
{
	cr_assert_not_null(want, "%s: no source record", what);
	cr_assert_eq(sn->record[k].len, want->len, "%s: callback %zu: record of %zu bytes, want %zu", what, k,
		     sn->record[k].len, want->len);
	cr_assert_eq(memcmp(sn->record[k].p, want->p, want->len), 0, "%s: callback %zu: record differs", what, k);
}

static struct archive *three_snapshots(void)
{
	struct archive *a;

	write_modified();
	a = open_archive();
	cr_assert_eq(import_dir(a, srcdir, SNAP_NAME).id, 1);
	cr_assert_eq(import_dir(a, moddir, MOD_NAME).id, 2);
	cr_assert_eq(import_dir(a, srcdir, "again").id, 3);
	return a;
}

Test(history, every_series_newest_first_with_each_snapshots_ref_and_record)
{
	struct archive *a = three_snapshots();
	size_t in_all = 0, skipped = 0;

	for (size_t i = 0; i < orig.nseries; i++) {
		struct rec_series s = series_at(&orig, i);
		struct rec_label ls[MAX_LABELS];
		size_t n = labels_of(&s, ls);
		struct seen sn = { 0 };
		struct err e = { 0 };
		char what[64];
		int rc = archive_history(a, ls, n, on_history, &sn, &e);

		snprintf(what, sizeof(what), "ref %llu", (unsigned long long)s.ref);
		cr_assert_eq(rc, 0, "%s: %s", what, e.msg);
		if (is_dropped(s.ref)) {
			/* not in the modified copy: skipped there */
			cr_assert_eq(sn.n, 2, "%s: %zu callbacks, want 2", what, sn.n);
			cr_assert_eq(sn.snap[0], 3);
			cr_assert_eq(sn.snap[1], 1);
			cr_assert_eq(sn.ref[0], s.ref);
			cr_assert_eq(sn.ref[1], s.ref);
			assert_record(&sn, 0, record_of(&orig, s.ref), what);
			assert_record(&sn, 1, record_of(&orig, s.ref), what);
			skipped++;
		} else {
			cr_assert_eq(sn.n, 3, "%s: %zu callbacks, want 3", what, sn.n);
			cr_assert_eq(sn.snap[0], 3);
			cr_assert_eq(sn.snap[1], 2);
			cr_assert_eq(sn.snap[2], 1);
			cr_assert_str_eq(sn.name[0], "again");
			cr_assert_str_eq(sn.name[1], MOD_NAME);
			cr_assert_str_eq(sn.name[2], SNAP_NAME);
			cr_assert_eq(sn.ref[0], s.ref);
			cr_assert_eq(sn.ref[1], s.ref + REF_SHIFT, "%s: ref %llu in the modified copy", what,
				     (unsigned long long)sn.ref[1]);
			cr_assert_eq(sn.ref[2], s.ref);
			assert_record(&sn, 0, record_of(&orig, s.ref), what);
			assert_record(&sn, 1, record_of(&mod, s.ref + REF_SHIFT), what);
			assert_record(&sn, 2, record_of(&orig, s.ref), what);
			in_all++;
		}
		seen_free(&sn);
	}
	cr_expect_eq(in_all, 541);
	cr_expect_eq(skipped, 4);
	archive_close(a);
}

Test(history, label_sets_no_snapshot_has_give_no_callback)
{
	struct archive *a = three_snapshots();
	struct rec_series s = series_at(&orig, 0);
	struct rec_label ls[MAX_LABELS + 1];
	size_t n = labels_of(&s, ls);
	struct seen sn = { 0 };
	struct err e = { 0 };
	struct rec_label one = { "__name__", "no_such_metric", 8, 14 };

	/* a label more: zz sorts last */
	ls[n] = (struct rec_label){ "zz", "1", 2, 1 };
	cr_assert_eq(archive_history(a, ls, n + 1, on_history, &sn, &e), 0, "%s", e.msg);
	cr_expect_eq(sn.n, 0);
	/* a label fewer */
	cr_assert_eq(archive_history(a, ls, n - 1, on_history, &sn, &e), 0, "%s", e.msg);
	cr_expect_eq(sn.n, 0);
	/* a value changed */
	cr_assert(has_label(&s, "__name__", "app_requests_total"));
	ls[0].value = "app_requests_totaL";
	cr_assert_eq(archive_history(a, ls, n, on_history, &sn, &e), 0, "%s", e.msg);
	cr_expect_eq(sn.n, 0);
	cr_assert_eq(archive_history(a, &one, 1, on_history, &sn, &e), 0, "%s", e.msg);
	cr_expect_eq(sn.n, 0);
	cr_assert_eq(archive_history(a, NULL, 0, on_history, &sn, &e), 0, "%s", e.msg);
	cr_expect_eq(sn.n, 0);
	seen_free(&sn);
	archive_close(a);
}

/* A series the modified copy kept. */
static struct rec_series kept_series(void)
{
	for (size_t i = 0; i < orig.nseries; i++) {
		struct rec_series s = series_at(&orig, i);

		if (!is_dropped(s.ref))
			return s;
	}
	cr_assert_fail("every series dropped");
	return series_at(&orig, 0);
}

Test(history, callback_return_stops_and_is_returned)
{
	struct archive *a = three_snapshots();
	struct rec_series s = kept_series();
	struct rec_label ls[MAX_LABELS];
	size_t n = labels_of(&s, ls);
	struct err e = { 0 };

	for (int stop = 1; stop <= 3; stop++) {
		struct seen sn = { .stop_at = stop };

		cr_expect_eq(archive_history(a, ls, n, on_history, &sn, &e), 7, "stop at %d", stop);
		cr_expect_eq(sn.n, (size_t)stop);
		seen_free(&sn);
	}
	archive_close(a);
}

Test(history, long_label_series_found_in_the_snapshots_that_have_it)
{
	struct archive *a = three_snapshots();
	struct seen sn = { 0 };
	struct err e = { 0 };
	struct rec_series s;
	struct rec_label ls[MAX_LABELS];
	size_t n = 0, len;

	for (size_t i = 0; i < orig.nseries && !n; i++) {
		s = series_at(&orig, i);
		if (label_value(&s, "blob", &len))
			n = labels_of(&s, ls);
	}
	cr_assert_gt(n, 0);
	cr_assert(is_dropped(s.ref));
	cr_assert_eq(archive_history(a, ls, n, on_history, &sn, &e), 0, "%s", e.msg);
	cr_assert_eq(sn.n, 2);
	cr_expect_eq(sn.snap[0], 3);
	cr_expect_eq(sn.snap[1], 1);
	cr_expect_eq(sn.ref[0], s.ref);
	seen_free(&sn);
	archive_close(a);
}
