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
#include "labelset.h"
#include "out.h"
#include "wal.h"

static void usage(FILE *f)
{
	fputs("usage: snaparc restore [--snapshot S] [--compression snappy|zstd|none] [--force]\n"
	      "                       ARCHIVE [--ref N | LABELS] --out DIR\n"
	      "\n"
	      "Writes a Prometheus chunk snapshot directory (WAL segments, records exactly as\n"
	      "Prometheus writes them): the whole snapshot, byte-identical in its records to\n"
	      "what was imported, or one series with its own tombstones and exemplars. Copy DIR\n"
	      "into a Prometheus data directory as chunk_snapshot.NNNNNN.MMMMMMMMMM (higher than\n"
	      "the WAL's) and start Prometheus with --enable-feature=memory-snapshot-on-shutdown.\n"
	      "\n"
	      "  --snapshot S     its id, its name, or latest (default)\n"
	      "  --ref N          only the series with this ref\n"
	      "  LABELS           only the series with exactly these labels: '{job=\"api\",...}'\n"
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
	struct archive_series s = { 0 };
	struct idx_snapshot snap;
	struct labelset ls = { 0 };
	struct archive *a;
	struct err e = { 0 };
	const char *snapshot = "latest", *ref = NULL, *out = NULL;
	char why[200], *end;
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
	} else if (pick && labelset_parse(argv[optind + 1], &ls, why, sizeof(why))) {
		fprintf(stderr, "snaparc restore: %s: %s\n", argv[optind + 1], why);
		return EXIT_USAGE;
	}
	if ((rc = archive_open(&a, argv[optind], &ao, &e))) {
		fprintf(stderr, "snaparc restore: %s\n", e.msg);
		labelset_free(&ls);
		return exit_for_status(rc);
	}
	if (pick) {
		/* find the series' ref first: by labels, in the snapshot asked for */
		rc = archive_snapshot_find(a, snapshot, &snap, &e);
		if (!rc)
			rc = archive_read_labels(a, snap.id, ls.labels, ls.n, &s, &e);
		one = s.series.ref;
		archive_series_free(&s);
	}
	if (!rc)
		rc = archive_restore(a, snapshot, ref || pick ? &one : NULL, ref || pick ? 1 : 0, out, &ro, &st, &e);
	if (rc)
		fprintf(stderr, "snaparc restore: %s\n", e.msg);
	else
		printf("restored %" PRIu64 " series (%" PRIu64 " records) to %s\n", st.series, st.records, out);
	archive_close(a);
	labelset_free(&ls);
	return exit_for_status(rc);
}
