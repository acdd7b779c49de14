/*
 * snaparc restore: write an archived snapshot, or one series of it, back out
 * as a chunk snapshot directory that Prometheus loads.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

static void usage(FILE *f)
{
	fputs("usage: snaparc restore [--snapshot S] [--compression snappy|zstd|none] [--force]\n"
	      "                       ARCHIVE [--ref N | SELECTOR] --out DIR\n"
	      "\n"
	      "Writes a Prometheus chunk snapshot directory (WAL segments, records exactly as\n"
	      "Prometheus writes them): the whole snapshot, byte-identical in its records to\n"
	      "what was imported, or the series a selector picks with their own tombstones and\n"
	      "exemplars. Copy DIR\n"
	      "into a Prometheus data directory as chunk_snapshot.NNNNNN.MMMMMMMMMM (higher than\n"
	      "the WAL's) and start Prometheus with --enable-feature=memory-snapshot-on-shutdown.\n"
	      "\n"
	      "  --snapshot S     its id, its name, or latest (default)\n"
	      "  --ref N          only the series with this ref\n"
	      "  SELECTOR         only the series a PromQL selector matches, as Prometheus would:\n"
	      "                   'app_requests_total{job=\"api\",code!=\"200\"}'\n"
	      "  --out DIR        the directory to write; it must not exist, unless --force\n"
	      "  --compression C  snappy (default, as Prometheus 2.42 writes), zstd (3.x), none\n"
	      "  --force          replace DIR, once the new one is complete\n"
	      "\n"
	      "DIR is written as DIR.tmp-PID and renamed when complete; nothing is left behind\n"
	      "on failure. Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 corrupt archive,\n"
	      "6 DIR exists.\n", f);
}

int cmd_restore(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "snapshot", required_argument, NULL, 'S' },
		{ "ref", required_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ "compression", required_argument, NULL, 'c' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct snaparc_restore_options ro = { .size = sizeof(ro), .compression = SNAPARC_COMPRESS_SNAPPY };
	struct snaparc_snapshot_info snap = { .size = sizeof(snap) };
	struct snaparc_restore_stats st = { .size = sizeof(st) };
	struct progress pg;
	const struct snaparc_api *api;
	snaparc_archive *a;
	const char *snapshot = "latest", *ref = NULL, *out = NULL, *selector = NULL;
	char *end, id[16];
	uint64_t one = 0;
	int c, rc, pick, bad_selector = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': snapshot = optarg; break;
		case 'r': ref = optarg; break;
		case 'o': out = optarg; break;
		case 'f': ro.overwrite = 1; break;
		case 'c':
			if (!strcmp(optarg, "snappy"))
				ro.compression = SNAPARC_COMPRESS_SNAPPY;
			else if (!strcmp(optarg, "zstd"))
				ro.compression = SNAPARC_COMPRESS_ZSTD;
			else if (!strcmp(optarg, "none"))
				ro.compression = SNAPARC_COMPRESS_NONE;
			else {
				fprintf(stderr, "snaparc restore: --compression %s: not snappy, zstd or none\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	pick = argc - optind == 2;
	if (!out || argc - optind < 1 || argc - optind > 2 || (pick && ref)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (ref) {
		one = strtoull(ref, &end, 10);
		if (!*ref || *end) {
			fprintf(stderr, "snaparc restore: --ref %s is not a number\n", ref);
			return EXIT_USAGE;
		}
	}
	if (!(api = host_api("restore")))
		return EXIT_ERROR;
	if ((rc = host_open("restore", argv[optind], SNAPARC_OPEN_READ_ONLY, SNAPARC_SYNC_FULL, &a)))
		return exit_for_status(rc);
	if ((rc = api->snapshot_find(a, snapshot, &snap))) {
		host_report("restore", a, rc, NULL);
		goto done;
	}
	/* by id from here on: "latest" stays the snapshot just found */
	snprintf(id, sizeof(id), "%u", snap.id);
	if (pick)
		selector = argv[optind + 1];
	progress_start(&pg, "restore", 0);
	ro.progress = on_progress;
	ro.progress_ctx = &pg;
	rc = ref ? api->restore_refs(a, id, &one, 1, out, &ro, &st) : api->restore(a, id, selector, out, &ro, &st);
	progress_end(&pg);
	/* the selector is parsed there: one that does not parse is a usage error */
	bad_selector = pick && rc == SNAPARC_INVALID;
	if (rc)
		host_report("restore", a, rc, bad_selector ? selector : NULL);
	else
		printf("restored %" PRIu64 " series (%" PRIu64 " records) to %s\n", st.series, st.records, out);
done:
	api->close(&a);
	return bad_selector ? EXIT_USAGE : exit_for_status(rc);
}
