/*
 * snaparc import: archive Prometheus chunk snapshots.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "host.h"
#include "out.h"
#include "progress.h"

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *pg = ctx;

	pg->total = total;
	progress_update(pg, done);
}

static int import_one(const struct snaparc_api *api, snaparc_archive *a, const char *src, const char *name,
		      int json)
{
	struct snaparc_snapshot_info snap = { .size = sizeof(snap) };
	struct progress pg;
	double t0 = now_seconds(), dt;
	int rc;

	/* the plugin resolves a data directory to its newest snapshot and names it */
	progress_start(&pg, "import", 0);
	rc = api->import(a, src, name, &snap, on_progress, &pg);
	progress_end(&pg);
	if (rc)
		return rc;
	dt = now_seconds() - t0;
	if (json) {
		printf("{\"snapshot\":%u,\"name\":", snap.id);
		json_string(stdout, snap.name, strlen(snap.name));
		printf(",\"series\":%" PRIu64 ",\"source_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
		       ",\"seconds\":%.6f}\n", snap.series, snap.source_bytes, snap.stored_bytes, dt);
	} else {
		printf("%s: snapshot %u (%s): %" PRIu64 " series, %" PRIu64 " tombstones, %" PRIu64
		       " exemplars; %" PRIu64 " bytes stored for %" PRIu64 " (%.2fx) in %.2f s (%.0f series/s)\n",
		       src, snap.id, snap.name, snap.series, snap.tombstones, snap.exemplars, snap.stored_bytes,
		       snap.source_bytes, snap.source_bytes ? (double)snap.stored_bytes / (double)snap.source_bytes : 0,
		       dt, dt > 0 ? (double)snap.series / dt : 0);
	}
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
	const struct snaparc_api *api;
	snaparc_archive *a;
	const char *name = NULL;
	uint32_t flags = SNAPARC_OPEN_CREATE, sync = SNAPARC_SYNC_FULL;
	int c, rc = 0, json = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'w': flags |= SNAPARC_OPEN_WAIT; break;
		case 's': sync = SNAPARC_SYNC_NONE; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind < 2 || (name && argc - optind != 2)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!(api = host_api("import")))
		return EXIT_ERROR;
	if ((rc = host_open("import", argv[optind], flags, sync, &a)))
		return exit_for_status(rc);
	for (int i = optind + 1; i < argc && !rc; i++) {
		rc = import_one(api, a, argv[i], name, json);
		if (rc)
			host_report("import", a, rc, argv[i]);
		fflush(stdout);
	}
	api->close(&a);
	return exit_for_status(rc);
}
