/*
 * snaparc compact: retention and space reclaimed, through the plugin's
 * compact (ABI 1.1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "host.h"
#include "out.h"
#include "progress.h"

static void usage(FILE *f)
{
	fputs("usage: snaparc compact [--keep-last N] [--keep-within DURATION] [--dry-run]\n"
	      "                       [--max-chain N] [--no-delta] [--apply-tombstones] [--wait] [--json]\n"
	      "                       ARCHIVE\n", f);
}

/* A Prometheus duration: 1y2w3d4h5m6s7ms (units largest first, each once). */
static int parse_duration(const char *s, int64_t *ms)
{
	/* in size order; "ms" is tried before "m" */
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "y", 365LL * 86400000 }, { "w", 7LL * 86400000 }, { "d", 86400000 }, { "h", 3600000 },
		{ "m", 60000 }, { "s", 1000 }, { "ms", 1 },
	};
	int last = -1;

	*ms = 0;
	if (!*s)
		return -1;
	while (*s) {
		unsigned long long n;
		char *end;
		int u;

		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		n = strtoull(s, &end, 10);
		if (errno)
			return -1;
		if (!strncmp(end, "ms", 2))
			u = 6;
		else
			for (u = 0; u < 6 && *end != units[u].unit[0]; u++)
				;
		if (u == 6 && strncmp(end, "ms", 2))
			return -1;
		if (u <= last || n > (unsigned long long)(INT64_MAX - *ms) / (unsigned long long)units[u].ms)
			return -1;
		*ms += (int64_t)n * units[u].ms;
		s = end + strlen(units[u].unit);
		last = u;
	}
	return 0;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *pg = ctx;

	pg->total = total;
	progress_update(pg, done);
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

int cmd_compact(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keep-last", required_argument, NULL, 'l' },
		{ "keep-within", required_argument, NULL, 'k' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "max-chain", required_argument, NULL, 'c' },
		{ "no-delta", no_argument, NULL, 'D' },
		{ "apply-tombstones", no_argument, NULL, 'T' },
		{ "wait", no_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct snaparc_compact_options o = { .size = sizeof(o) };
	struct snaparc_compact_stats st = { .size = sizeof(st) };
	const struct snaparc_api *api;
	struct progress pg;
	snaparc_archive *a;
	uint32_t flags = 0;
	int c, rc, json = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			errno = 0;
			o.keep_last = (uint32_t)strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || o.keep_last == 0 || strtoul(optarg, NULL, 10) > UINT32_MAX) {
				fprintf(stderr, "snaparc compact: --keep-last wants a count of at least 1, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'k':
			if (parse_duration(optarg, &o.keep_within_ms) || o.keep_within_ms == 0) {
				fprintf(stderr, "snaparc compact: --keep-within wants a duration such as 30d or 1w2d, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'n': o.flags |= SNAPARC_COMPACT_DRY_RUN; break;
		case 'c':
			o.max_chain = (uint32_t)strtoul(optarg, &end, 10);
			if (*end || !*optarg || o.max_chain == 0 || o.max_chain > 16) {
				fprintf(stderr, "snaparc compact: --max-chain wants 1 to 16, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'D': o.flags |= SNAPARC_COMPACT_NO_DELTA; break;
		case 'T': o.flags |= SNAPARC_COMPACT_APPLY_TOMBSTONES; break;
		case 'w': flags |= SNAPARC_OPEN_WAIT; break;
		case 'j': json = 1; break;
		case 'h':
			usage(stdout);
			puts("\n"
			     "Drops the snapshots retention does not keep and rewrites the kept ones: each\n"
			     "snapshot's records together, series in ref order; a series' record identical\n"
			     "to its record in the next newer kept snapshot is stored once, one whose head\n"
			     "chunk that record continues as a cut of it (an index entry: the record and\n"
			     "a sample count), another changed one as an LZ4 delta against it or the\n"
			     "record its chain starts from, when that is smaller (a read follows at most\n"
			     "--max-chain deltas, 6 by default). Snapshots whose series have the same refs\n"
			     "and labels share one label index. The index switches to the new layout in\n"
			     "one transaction; old segments are deleted once no reader can still use them.\n"
			     "Lookups and restores in other processes go on working meanwhile.\n\n"
			     "  --keep-last N         keep the newest N snapshots\n"
			     "  --keep-within DUR     keep the snapshots whose time (their newest sample, else\n"
			     "                        their import) is within DUR (e.g. 30d, 1w, 12h) of the\n"
			     "                        newest snapshot's\n"
			     "                        (with both rules, a snapshot either keeps is kept;\n"
			     "                        with neither, all are)\n"
			     "  --dry-run             compute the new layout, report what it would reclaim,\n"
			     "                        keep nothing of it\n"
			     "  --max-chain N         deltas a read follows at most (1-16)\n"
			     "  --no-delta            store repeated records once, but make no deltas\n"
			     "  --apply-tombstones    take the samples a series' tombstones delete out of its\n"
			     "                        head chunk (one left empty is dropped; the series and\n"
			     "                        the tombstones stay)\n"
			     "  --wait                wait for another writer instead of failing\n"
			     "  --json                print the figures as one JSON object\n\n"
			     "Exit codes: 0 done, 1 error, 2 usage, 3 not an archive, 5 busy.");
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!(api = host_api("compact")))
		return EXIT_ERROR;
	if (!SNAPARC_API_HAS(api, compact)) {
		fprintf(stderr, "snaparc compact: the plugin (ABI %u.%u) has no compact: it needs ABI 1.1\n",
			api->abi_major, api->abi_minor);
		return EXIT_ERROR;
	}
	if ((rc = host_open("compact", argv[optind], flags, SNAPARC_SYNC_FULL, &a)))
		return exit_for_status(rc);
	progress_start(&pg, "compact", 0);
	o.progress = on_progress;
	o.progress_ctx = &pg;
	rc = api->compact(a, &o, &st);
	progress_end(&pg);
	if (rc) {
		host_report("compact", a, rc, NULL);
	} else if (json) {
		printf("{\"dry_run\":%s,\"snapshots_kept\":%u,\"snapshots_dropped\":%u,\"bytes_before\":%llu,"
		       "\"bytes_after\":%llu,\"input_bytes\":%llu,\"output_bytes\":%llu,\"records\":%llu,"
		       "\"records_full\":%llu,\"records_delta\":%llu,\"records_cut\":%llu,\"records_shared\":%llu,"
		       "\"labels_shared\":%u,\"chunks_tombstoned\":%llu,\"chunks_dropped\":%llu,"
		       "\"segments_deleted\":%llu,\"segments_pending\":%llu}\n",
		       o.flags & SNAPARC_COMPACT_DRY_RUN ? "true" : "false", st.snapshots_kept, st.snapshots_dropped,
		       (unsigned long long)st.bytes_before, (unsigned long long)st.bytes_after,
		       (unsigned long long)st.input_bytes, (unsigned long long)st.output_bytes,
		       (unsigned long long)st.records, (unsigned long long)st.records_full,
		       (unsigned long long)st.records_delta, (unsigned long long)st.records_cut,
		       (unsigned long long)st.records_shared, st.labels_shared, (unsigned long long)st.chunks_tombstoned,
		       (unsigned long long)st.chunks_dropped, (unsigned long long)st.segments_deleted,
		       (unsigned long long)st.segments_pending);
	} else {
		int dry = o.flags & SNAPARC_COMPACT_DRY_RUN;

		printf("%s%u snapshot(s) kept, %u dropped\n", dry ? "dry run: " : "", st.snapshots_kept,
		       st.snapshots_dropped);
		printf("records: %llu (%llu whole, %llu deltas, %llu cuts of a later one, %llu stored once for several "
		       "snapshots)\n",
		       (unsigned long long)st.records, (unsigned long long)st.records_full,
		       (unsigned long long)st.records_delta, (unsigned long long)st.records_cut,
		       (unsigned long long)st.records_shared);
		if (o.flags & SNAPARC_COMPACT_APPLY_TOMBSTONES)
			printf("tombstones: %llu head chunk(s) lost deleted samples, %llu of them every sample\n",
			       (unsigned long long)st.chunks_tombstoned, (unsigned long long)st.chunks_dropped);
		if (st.labels_shared)
			printf("label indexes: %u snapshot(s) now share an earlier one's\n", st.labels_shared);
		printf("archive: %.1f MiB -> %.1f MiB%s (%.2fx)\n", mib(st.bytes_before), mib(st.bytes_after),
		       dry ? " (would be)" : "", st.bytes_before ? (double)st.bytes_after / (double)st.bytes_before : 1.0);
		if (st.segments_pending)
			printf("%llu old segment(s) are still read by another process: the next import or compaction deletes them\n",
			       (unsigned long long)st.segments_pending);
	}
	api->close(&a);
	return exit_for_status(rc);
}
