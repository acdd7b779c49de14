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
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "bench_util.h"
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

		if (n)
			*series = strtoull(n + 11, NULL, 10);
		if (d)
			best = bench_go_duration(d + 9);
	}
	pclose(f);
	return best;
}

static int import_dir(struct archive *a, const char *dir, const char *name, struct idx_snapshot *snap,
		      struct err *e)
{
	struct archive_import_info info = { name, bench_tree_bytes(dir, 0) };

	return archive_import_dir(a, dir, &info, NULL, NULL, snap, e);
}

static void report(const char *what, const char *snapdir, const struct opts *o)
{
	char arc[4400], cmd[9000], dir[4096];
	struct archive_opts ao = { .create = 1, .sync = 1 };
	struct archive *a;
	struct idx_snapshot snap;
	struct bench_targets t = { 0 };
	struct bench_pct by_ref = { 0, 0 }, by_labels = { 0, 0 };
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
	snap_bytes = bench_tree_bytes(dir, 1);
	bench_plain_read(dir); /* warm the page cache: every peer reads from memory */
	t_read = bench_plain_read(dir);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s/cp'", dir, o->work);
	t_cp = bench_run_timed(cmd);
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
	t_import = bench_now();
	if (import_dir(a, dir, "bench", &snap, &e)) {
		fprintf(stderr, "import: %s\n", e.msg);
		archive_close(a);
		return;
	}
	t_import = bench_now() - t_import;
	archive_close(a);
	ao.create = 0;
	ao.read_only = 1;
	if (archive_open(&a, arc, &ao, &e) || bench_targets_collect(dir, 100000, &t, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	bench_lookups(a, snap.id, &t, o->lookups, &by_ref, &by_labels);
	/* restores: one series (the median of 21, each a fresh directory), then the whole snapshot */
	t_restore_one = bench_restore_one(a, "bench", t.refs, t.n, o->work, 21, NULL);
	{
		struct archive_restore_opts ro = { .compression = WAL_COMPRESS_SNAPPY };
		char rdir[4500];

		snprintf(rdir, sizeof(rdir), "%s/restore-all", o->work);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rdir);
		if (system(cmd) == 0) {
			double t0;

			sync();
			t0 = bench_now();
			if (archive_restore(a, "bench", NULL, 0, rdir, &ro, NULL, &e))
				fprintf(stderr, "restore: %s\n", e.msg);
			t_restore_all = bench_now() - t0;
		}
	}
	archive_close(a);
	snprintf(cmd, sizeof(cmd), "%s/index", arc);
	idx_bytes = bench_tree_bytes(cmd, 1);
	arc_bytes = bench_tree_bytes(arc, 1);

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
	bench_targets_free(&t);
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
		t = bench_run_timed(cmd);
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
