/*
 * snaparc verify and snaparc rm: checking an archive, and dropping a snapshot.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "host.h"
#include "out.h"
#include "progress.h"

struct report {
	unsigned long problems;
	int json;
};

static int on_problem(void *ctx, int status, const char *message)
{
	struct report *r = ctx;

	r->problems++;
	if (r->json) {
		printf("{\"problem\":\"%s\",\"message\":", err_name(status));
		json_string(stdout, message, strlen(message));
		puts("}");
	} else {
		printf("%s: %s\n", err_name(status), message);
	}
	return 0;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *pg = ctx;

	pg->total = total;
	progress_update(pg, done);
}

int cmd_verify(int argc, char **argv)
{
	static const char usage[] = "usage: snaparc verify [--deep] [--json] ARCHIVE\n";
	struct report r = { 0, 0 };
	const struct snaparc_api *api;
	struct progress pg;
	snaparc_archive *a;
	const char *dir = NULL;
	uint32_t flags = 0;
	int rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("%s\n"
		       "Reads every value of the index (each carries a CRC-32C of its key and bytes)\n"
		       "and every stored record of every snapshot back: fragments and CRC-32C,\n"
		       "decompression, decoding, the index entry of each series (which must point at\n"
		       "it) and the catalog's series counts. Prints each problem with its snapshot,\n"
		       "file and offset.\n\n"
		       "  --deep   also decode every sample of every chunk (count, first and last\n"
		       "           time, last value as the record keeps them), and find every series\n"
		       "           through its label hash and each of its labels' postings\n"
		       "  --json   one JSON object a line per problem\n\n"
		       "Exit codes: 0 sound, 4 problems found, 1 error, 2 usage, 3 not an archive.\n",
		       usage);
		return EXIT_OK;
	}
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			r.json = 1;
		else if (!strcmp(argv[i], "--deep"))
			flags |= SNAPARC_VERIFY_DEEP;
		else if (argv[i][0] == '-' || dir) {
			fputs(usage, stderr);
			return EXIT_USAGE;
		} else
			dir = argv[i];
	}
	if (!dir) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!(api = host_api("verify")))
		return EXIT_ERROR;
	if (flags && !SNAPARC_API_HAS(api, verify_flags)) {
		fputs("snaparc verify: --deep needs a snaparc.so of ABI 1.2 or later\n", stderr);
		return EXIT_ERROR;
	}
	if ((rc = host_open("verify", dir, SNAPARC_OPEN_READ_ONLY, SNAPARC_SYNC_FULL, &a)))
		return exit_for_status(rc);
	progress_start(&pg, "verify", 0);
	rc = flags ? api->verify_flags(a, flags, on_problem, &r, on_progress, &pg)
		   : api->verify(a, on_problem, &r, on_progress, &pg);
	progress_end(&pg);
	if (rc && !r.problems)
		host_report("verify", a, rc, NULL);
	else if (rc)
		fprintf(stderr, "snaparc verify: %lu problem(s) in %s\n", r.problems, dir);
	else if (!r.json)
		printf("%s: sound%s\n", dir, flags ? " (deep)" : "");
	api->close(&a);
	return exit_for_status(rc);
}

int cmd_rm(int argc, char **argv)
{
	const struct snaparc_api *api;
	snaparc_archive *a;
	int rc;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: snaparc rm ARCHIVE SNAPSHOT\n\n"
		     "Removes a snapshot (its id, its name, or latest) from the catalog and the index,\n"
		     "in one transaction: readers see it whole or not at all. Its bytes in the\n"
		     "segments are given back by compaction.\n\n"
		     "Exit codes: 0 removed, 1 error, 2 usage, 3 no such snapshot, 5 busy.");
		return EXIT_OK;
	}
	if (argc != 3) {
		fputs("usage: snaparc rm ARCHIVE SNAPSHOT\n", stderr);
		return EXIT_USAGE;
	}
	if (!(api = host_api("rm")))
		return EXIT_ERROR;
	if ((rc = host_open("rm", argv[1], 0, SNAPARC_SYNC_FULL, &a)))
		return exit_for_status(rc);
	if ((rc = api->snapshot_remove(a, argv[2])))
		host_report("rm", a, rc, NULL);
	else
		printf("removed snapshot %s from %s\n", argv[2], argv[1]);
	api->close(&a);
	return exit_for_status(rc);
}
