/*
 * snaparc restore: write an archived snapshot, or one series of it, back out
 * as a chunk snapshot directory that Prometheus loads.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "cmd.h"
#include "select.h"
#include "out.h"
#include "wal.h"

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
	struct archive_opts ao = { .read_only = 1 };
	struct archive_restore_opts ro = { .compression = WAL_COMPRESS_SNAPPY };
	struct archive_restore_stats st;
	struct idx_snapshot snap;
	struct select *sel = NULL;
	struct buf refs = { 0 };
	struct archive *a;
	struct err e = { 0 };
	const char *snapshot = "latest", *ref = NULL, *out = NULL;
	char *end;
	uint64_t one = 0;
	int c, rc, pick;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': snapshot = optarg; break;
		case 'r': ref = optarg; break;
		case 'o': out = optarg; break;
		case 'f': ro.overwrite = 1; break;
		case 'c':
			if (!strcmp(optarg, "snappy"))
				ro.compression = WAL_COMPRESS_SNAPPY;
			else if (!strcmp(optarg, "zstd"))
				ro.compression = WAL_COMPRESS_ZSTD;
			else if (!strcmp(optarg, "none"))
				ro.compression = WAL_COMPRESS_NONE;
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
	} else if (pick && (rc = select_parse(argv[optind + 1], &sel, &e))) {
		fprintf(stderr, "snaparc restore: %s: %s\n", argv[optind + 1], e.msg);
		return rc == SNAPARC_INVALID ? EXIT_USAGE : exit_for_status(rc);
	}
	if ((rc = archive_open(&a, argv[optind], &ao, &e))) {
		fprintf(stderr, "snaparc restore: %s\n", e.msg);
		select_free(sel);
		return exit_for_status(rc);
	}
	if (pick) {
		/* the series the selector picks, in the snapshot asked for */
		rc = archive_snapshot_find(a, snapshot, &snap, &e);
		if (!rc)
			rc = archive_select(a, snap.id, sel, &refs, &e);
		if (!rc && !refs.len)
			rc = err_set(&e, SNAPARC_NOT_FOUND, "no series matches %s", argv[optind + 1]);
	} else if (ref) {
		buf_put(&refs, &one, sizeof(one));
	}
	if (!rc)
		rc = archive_restore(a, snapshot, refs.len ? (const uint64_t *)refs.p : NULL, refs.len / 8, out, &ro,
				     &st, &e);
	if (rc)
		fprintf(stderr, "snaparc restore: %s\n", e.msg);
	else
		printf("restored %" PRIu64 " series (%" PRIu64 " records) to %s\n", st.series, st.records, out);
	archive_close(a);
	select_free(sel);
	buf_free(&refs);
	return exit_for_status(rc);
}
