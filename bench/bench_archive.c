/*
 * bench_archive: the archive's figures beside its peers', measured in one run.
 *
 *   bench_archive [--series N] [--snapshot DIR]... [--work DIR] [--lookups K]
 *                 [--no-prometheus]
 *
 * For a generated snapshot of N series (snapgen, full 120-sample XOR chunks)
 * and for each real snapshot DIR:
 *   - import: series/s, against Prometheus loading the same snapshot (its log
 *     line "chunk snapshot loaded ... duration"), a plain read() of the
 *     snapshot's files and cp -r of them;
 *   - lookup by ref and by labels on a warm archive: p50/p99, against
 *     Prometheus' whole-snapshot load (today the only way to get one series
 *     back);
 *   - archive bytes (segments and index as du counts them) against the
 *     snapshot's bytes.
 * Prometheus is started by tests/prometheus/query-snapshot.sh.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "record.h"
#include "snapdir.h"
#include "wal.h"

#ifndef SNAPARC_SOURCE_DIR
#define SNAPARC_SOURCE_DIR "."
#endif

struct opts {
	uint64_t series, lookups;
	const char *work, *snapshots[16];
	int nsnapshots, prometheus;
	char snapgen[4096];
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t tree_bytes(const char *path, int allocated)
{
	struct stat st;
	uint64_t total = 0;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return allocated ? (uint64_t)st.st_blocks * 512 : (uint64_t)st.st_size;
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d)) != NULL) {
		char p[4400];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		total += tree_bytes(p, allocated);
	}
	closedir(d);
	return total;
}

static double plain_read(const char *dir)
{
	static uint8_t buf[1 << 20];
	double t0 = now();
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)) != NULL) {
		char p[4400];
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if ((fd = open(p, O_RDONLY)) < 0)
			continue;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	if (d)
		closedir(d);
	return now() - t0;
}

static double run_timed(const char *cmd)
{
	double t0 = now();

	if (system(cmd) != 0)
		return -1;
	return now() - t0;
}

/* Prometheus' own load time of snapshot dir, from its log; -1 if unknown. */
static double prometheus_load(const char *dir, uint64_t *series)
{
	char cmd[9000], line[2048];
	double best = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s/tests/prometheus/query-snapshot.sh '%s' 0 'up' 2>&1 >/dev/null | grep 'chunk snapshot loaded'",
		 SNAPARC_SOURCE_DIR, dir);
	if (!(f = popen(cmd, "r")))
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *d = strstr(line, "duration="), *n = strstr(line, "num_series=");
		double v;
		char unit[8] = "";

		if (n)
			*series = strtoull(n + 11, NULL, 10);
		if (!d || sscanf(d + 9, "%lf%7[a-zµ]", &v, unit) < 1)
			continue;
		if (!strcmp(unit, "ms"))
			v /= 1e3;
		else if (!strcmp(unit, "µs") || !strcmp(unit, "us"))
			v /= 1e6;
		else if (!strcmp(unit, "m"))
			v *= 60;
		best = v;
	}
	pclose(f);
	return best;
}

static int import_dir(struct archive *a, const char *dir, const char *name, struct idx_snapshot *snap,
		      struct err *e)
{
	struct archive_import_info info = { name, tree_bytes(dir, 0) };

	return archive_import_dir(a, dir, &info, NULL, NULL, snap, e);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct pct {
	double p50, p99;
};

static struct pct percentiles(double *v, size_t n)
{
	struct pct p = { 0, 0 };

	if (!n)
		return p;
	qsort(v, n, sizeof(*v), cmp_double);
	p.p50 = v[n / 2];
	p.p99 = v[n * 99 / 100];
	return p;
}

/* The series to look up: refs and label sets, from the snapshot itself. */
struct targets {
	uint64_t *refs;
	struct buf labels;     /* encoded label sets, end to end */
	size_t *offs, n;
};

static int collect_targets(const char *dir, size_t want, struct targets *t, struct err *e)
{
	struct wal_reader *r;
	struct wal_record rec;
	uint64_t seen = 0, rng = 88172645463325252ull;
	int rc;

	t->refs = calloc(want, sizeof(*t->refs));
	t->offs = calloc(want + 1, sizeof(*t->offs));
	t->n = 0;
	if (!t->refs || !t->offs)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	if ((rc = wal_reader_open_dir(&r, dir, NULL, e)))
		return rc;
	/* reservoir sample of the series records */
	while ((rc = wal_reader_next(r, &rec, e)) == 1) {
		struct rec_series s;
		size_t slot;

		if (rec_type(rec.data, rec.len) != REC_SERIES || rec_series_decode(&s, rec.data, rec.len, e))
			continue;
		seen++;
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		slot = t->n < want ? t->n++ : (size_t)(rng % seen);
		if (slot >= want)
			continue;
		t->refs[slot] = s.ref;
		/* label sets are kept by slot; a replaced one is simply appended again */
		t->offs[slot] = t->labels.len;
		buf_put(&t->labels, s.labels.raw, s.labels.raw_len);
	}
	wal_reader_close(r);
	return rc < 0 ? rc : 0;
}

static void bench_lookups(struct archive *a, uint32_t snap, const struct targets *t, uint64_t k,
			  struct pct *by_ref, struct pct *by_labels)
{
	double *lat = malloc(k * sizeof(*lat));
	struct archive_series res = { 0 };
	struct rec_label ls[64];
	struct err e;
	uint64_t fails = 0;

	if (!lat || !t->n)
		return;
	for (int pass = 0; pass < 2; pass++) { /* the first pass warms the archive */
		for (uint64_t i = 0; i < k; i++) {
			double t0 = now();

			if (archive_read_ref(a, snap, t->refs[i % t->n], &res, &e))
				fails++;
			lat[i] = now() - t0;
		}
	}
	*by_ref = percentiles(lat, k);
	for (uint64_t i = 0; i < k; i++) {
		size_t j = i % t->n, n = 0;
		struct rec_labels raw;
		struct rec_label_iter it;
		double t0;

		raw.raw = t->labels.p + t->offs[j];
		raw.raw_len = t->labels.len - t->offs[j];
		rec_labels_iter(&it, &raw);
		while (n < 64 && rec_labels_next(&it, &ls[n]))
			n++;
		t0 = now();
		if (archive_read_labels(a, snap, ls, n, &res, &e))
			fails++;
		lat[i] = now() - t0;
	}
	*by_labels = percentiles(lat, k);
	if (fails)
		fprintf(stderr, "bench_archive: %" PRIu64 " lookups failed: %s\n", fails, e.msg);
	archive_series_free(&res);
	free(lat);
}

static void report(const char *what, const char *snapdir, const struct opts *o)
{
	char arc[4400], cmd[9000], dir[4096];
	struct archive_opts ao = { .create = 1, .sync = 1 };
	struct archive *a;
	struct idx_snapshot snap;
	struct targets t = { 0 };
	struct pct by_ref = { 0, 0 }, by_labels = { 0, 0 };
	struct err e;
	uint64_t snap_bytes, prom_series = 0, arc_bytes, idx_bytes;
	double t_read, t_cp, t_import, t_prom = -1, t_restore_one = 0, t_restore_all = 0;

	if (snapdir_resolve(snapdir, dir, sizeof(dir), &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	snprintf(arc, sizeof(arc), "%s/archive", o->work);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s/cp'", arc, o->work);
	if (system(cmd) != 0)
		return;
	snap_bytes = tree_bytes(dir, 1);
	plain_read(dir); /* warm the page cache: every peer reads from memory */
	t_read = plain_read(dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s/cp'", dir, o->work);
	t_cp = run_timed(cmd);
	/* The timed steps below fdatasync their own files; with ext4's ordered
	 * journal that can wait on other dirty data, so none is left around. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/cp'", o->work);
	if (system(cmd) != 0)
		return;
	sync();
	if (o->prometheus)
		t_prom = prometheus_load(dir, &prom_series);
	if (archive_open(&a, arc, &ao, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	t_import = now();
	if (import_dir(a, dir, "bench", &snap, &e)) {
		fprintf(stderr, "import: %s\n", e.msg);
		archive_close(a);
		return;
	}
	t_import = now() - t_import;
	archive_close(a);
	ao.create = 0;
	ao.read_only = 1;
	if (archive_open(&a, arc, &ao, &e) || collect_targets(dir, 100000, &t, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	bench_lookups(a, snap.id, &t, o->lookups, &by_ref, &by_labels);
	/* restores: one series (the median of 21, each a fresh directory), then the whole snapshot */
	{
		struct archive_restore_opts ro = { .compression = WAL_COMPRESS_SNAPPY };
		double one[21];
		char rdir[4500];

		for (int i = 0; i < 21; i++) {
			double t0;

			snprintf(rdir, sizeof(rdir), "%s/restore-one", o->work);
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rdir);
			if (system(cmd) != 0)
				break;
			sync();
			t0 = now();
			if (archive_restore(a, "bench", &t.refs[(size_t)i % t.n], 1, rdir, &ro, NULL, &e))
				fprintf(stderr, "restore: %s\n", e.msg);
			one[i] = now() - t0;
		}
		qsort(one, 21, sizeof(one[0]), cmp_double);
		t_restore_one = one[10];
		snprintf(rdir, sizeof(rdir), "%s/restore-all", o->work);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rdir);
		if (system(cmd) == 0) {
			double t0;

			sync();
			t0 = now();

			if (archive_restore(a, "bench", NULL, 0, rdir, &ro, NULL, &e))
				fprintf(stderr, "restore: %s\n", e.msg);
			t_restore_all = now() - t0;
		}
	}
	archive_close(a);
	snprintf(cmd, sizeof(cmd), "%s/index", arc);
	idx_bytes = tree_bytes(cmd, 1);
	arc_bytes = tree_bytes(arc, 1);

	printf("\n## %s: %s\n\n", what, dir);
	printf("%" PRIu64 " series, %" PRIu64 " snapshot bytes (%.1f per series)\n\n", snap.series, snap_bytes,
	       (double)snap_bytes / (double)snap.series);
	printf("| operation | snaparc | peer | peer's figure | ratio |\n|---|---|---|---|---|\n");
	printf("| import | %.2f s, %.0f series/s | plain read() of the snapshot | %.3f s | %.1fx its time |\n",
	       t_import, (double)snap.series / t_import, t_read, t_import / t_read);
	printf("| import | | cp -r of the snapshot | %.3f s | %.1fx its time |\n", t_cp, t_import / t_cp);
	if (t_prom > 0)
		printf("| import | | Prometheus 2.42 loading it (%" PRIu64 " series) | %.3f s, %.0f series/s | %.2fx faster |\n",
		       prom_series, t_prom, (double)prom_series / t_prom, t_prom / t_import);
	printf("| lookup by ref | p50 %.1f µs, p99 %.1f µs | Prometheus' whole load | %.0f µs | %.0fx faster (p50) |\n",
	       by_ref.p50 * 1e6, by_ref.p99 * 1e6, t_prom * 1e6, t_prom > 0 ? t_prom / by_ref.p50 : 0);
	printf("| lookup by labels | p50 %.1f µs, p99 %.1f µs | Prometheus' whole load | %.0f µs | %.0fx faster (p50) |\n",
	       by_labels.p50 * 1e6, by_labels.p99 * 1e6, t_prom * 1e6, t_prom > 0 ? t_prom / by_labels.p50 : 0);
	printf("| restore one series | %.3f ms (median of 21, fsync included) | Prometheus' whole load | %.3f s | %.0fx faster |\n",
	       t_restore_one * 1e3, t_prom, t_prom > 0 ? t_prom / t_restore_one : 0);
	printf("| restore the whole snapshot | %.2f s, %.0f series/s | Prometheus' whole load | %.3f s | %.2fx faster |\n",
	       t_restore_all, (double)snap.series / t_restore_all, t_prom, t_prom > 0 ? t_prom / t_restore_all : 0);
	printf("| archive bytes | %" PRIu64 " (index %" PRIu64 ", %.1f B/series; segments %" PRIu64 ") | the snapshot | %" PRIu64 " | %.3fx |\n",
	       arc_bytes, idx_bytes, (double)idx_bytes / (double)snap.series, arc_bytes - idx_bytes, snap_bytes,
	       (double)arc_bytes / (double)snap_bytes);
	fflush(stdout);
	free(t.refs);
	free(t.offs);
	buf_free(&t.labels);
}

int main(int argc, char **argv)
{
	struct opts o = { .series = 1000000, .lookups = 100000, .work = "/tmp/snaparc-bench", .prometheus = 1 };
	char cmd[9000], snap[4400], *slash;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--series") && i + 1 < argc)
			o.series = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--snapshot") && i + 1 < argc && o.nsnapshots < 16)
			o.snapshots[o.nsnapshots++] = argv[++i];
		else if (!strcmp(argv[i], "--work") && i + 1 < argc)
			o.work = argv[++i];
		else if (!strcmp(argv[i], "--lookups") && i + 1 < argc)
			o.lookups = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--no-prometheus"))
			o.prometheus = 0;
		else {
			fprintf(stderr, "usage: bench_archive [--series N] [--snapshot DIR]... [--work DIR] [--lookups K] [--no-prometheus]\n");
			return 2;
		}
	}
	snprintf(o.snapgen, sizeof(o.snapgen), "%s", argv[0]);
	slash = strrchr(o.snapgen, '/');
	snprintf(slash ? slash + 1 : o.snapgen, sizeof(o.snapgen) - (size_t)(slash ? slash + 1 - o.snapgen : 0), "snapgen");
	mkdir(o.work, 0777);
	printf("# bench_archive\n");
	if (o.series) {
		double t;

		snprintf(snap, sizeof(snap), "%s/gen-%" PRIu64, o.work, o.series);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && '%s' '%s' --series %" PRIu64 " --tombstones 100 --exemplars 10000 >/dev/null",
			 snap, o.snapgen, snap, o.series);
		t = run_timed(cmd);
		if (t < 0) {
			fprintf(stderr, "bench_archive: %s failed\n", cmd);
			return 1;
		}
		printf("\ngenerated %" PRIu64 " series with snapgen in %.2f s\n", o.series, t);
		report("generated", snap, &o);
	}
	for (int i = 0; i < o.nsnapshots; i++)
		report("real", o.snapshots[i], &o);
	return 0;
}
