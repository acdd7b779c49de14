/*
 * snaparc import: archive Prometheus chunk snapshots.
 */
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "cmd.h"
#include "out.h"
#include "progress.h"
#include "snapdir.h"
#include "wal.h"

static uint64_t dir_bytes(const char *dir)
{
	char p[4200];
	struct stat st;
	uint64_t total = 0;

	for (uint32_t i = 0;; i++) {
		snprintf(p, sizeof(p), "%s/%08u", dir, i);
		if (stat(p, &st) != 0)
			return total;
		total += (uint64_t)st.st_size;
	}
}

static void on_progress(void *ctx, uint64_t done)
{
	progress_update(ctx, done);
}

static int import_one(struct archive *a, const char *src, const char *name, int json, struct err *e)
{
	char dir[4096], base[4096];
	struct archive_import_info info;
	struct idx_snapshot snap;
	struct progress pg;
	double t0 = now_seconds(), dt;
	int rc;

	if ((rc = snapdir_resolve(src, dir, sizeof(dir), e)))
		return rc;
	snprintf(base, sizeof(base), "%s", dir);
	info.name = name ? name : basename(base);
	info.source_bytes = dir_bytes(dir);
	progress_start(&pg, "import", info.source_bytes);
	rc = archive_import_dir(a, dir, &info, on_progress, &pg, &snap, e);
	progress_end(&pg);
	if (rc)
		return rc;
	dt = now_seconds() - t0;
	if (json)
		printf("{\"snapshot\":%u,\"name\":\"%s\",\"series\":%" PRIu64 ",\"source_bytes\":%" PRIu64
		       ",\"stored_bytes\":%" PRIu64 ",\"seconds\":%.6f}\n", snap.id, snap.name, snap.series,
		       snap.source_bytes, snap.stored_bytes, dt);
	else
		printf("%s: snapshot %u (%s): %" PRIu64 " series, %" PRIu64 " tombstones, %" PRIu64
		       " exemplars; %" PRIu64 " bytes stored for %" PRIu64 " (%.2fx) in %.2f s (%.0f series/s)\n",
		       src, snap.id, snap.name, snap.series, snap.tombstones, snap.exemplars, snap.stored_bytes,
		       snap.source_bytes, snap.source_bytes ? (double)snap.stored_bytes / (double)snap.source_bytes : 0,
		       dt, dt > 0 ? (double)snap.series / dt : 0);
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: snaparc import [--name NAME] [--wait] [--no-sync] [--json] ARCHIVE SNAPSHOT_DIR...\n"
	      "\n"
	      "Archives Prometheus chunk snapshots. Each SNAPSHOT_DIR is a snapshot directory or a\n"
	      "Prometheus data directory (its newest chunk_snapshot.* is taken). ARCHIVE is made\n"
	      "when it does not exist or is empty. Each snapshot is committed on its own: it is\n"
	      "visible whole or not at all.\n"
	      "\n"
	      "  --name NAME  catalog name (default: the snapshot directory's name); one snapshot only\n"
	      "  --wait       wait for another writer instead of failing\n"
	      "  --no-sync    do not fdatasync (faster; a crash may lose the import, never older ones)\n"
	      "  --json       one JSON object per snapshot imported\n"
	      "\n"
	      "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 corrupt input (nothing of that\n"
	      "snapshot is kept), 5 the archive is busy, 6 a snapshot of that name exists.\n", f);
}

int cmd_import(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "wait", no_argument, NULL, 'w' },
		{ "no-sync", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct archive_opts o = { .create = 1, .sync = 1 };
	struct archive *a;
	struct err e = { 0 };
	const char *name = NULL;
	int c, rc = 0, json = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'w': o.wait = 1; break;
		case 's': o.sync = 0; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind < 2 || (name && argc - optind != 2)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((rc = archive_open(&a, argv[optind], &o, &e))) {
		fprintf(stderr, "snaparc import: %s\n", e.msg);
		return exit_for_status(rc);
	}
	for (int i = optind + 1; i < argc && !rc; i++) {
		rc = import_one(a, argv[i], name, json, &e);
		if (rc)
			fprintf(stderr, "snaparc import: %s: %s\n", argv[i], e.msg);
		fflush(stdout);
	}
	archive_close(a);
	return exit_for_status(rc);
}
