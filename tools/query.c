/*
 * snaparc ls, stat and lookup: reading an archive.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "host.h"
#include "labelset.h"
#include "out.h"
#include "plot.h"
#include "xor.h"

/* ---- ls ---- */

int cmd_ls(int argc, char **argv)
{
	const struct snaparc_api *api;
	snaparc_archive *a;
	struct snaparc_snapshot_info s = { .size = sizeof(s) };
	uint32_t after = 0;
	int rc, json = argc == 3 && !strcmp(argv[1], "--json");
	char when[40];

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: snaparc ls [--json] ARCHIVE\n\nLists the archived snapshots: id, name, import time, series, tombstone\n"
		     "intervals, exemplars, the source snapshot's bytes and the bytes stored.");
		return EXIT_OK;
	}
	if (argc != 2 + json) {
		fputs("usage: snaparc ls [--json] ARCHIVE\n", stderr);
		return EXIT_USAGE;
	}
	if (!(api = host_api("ls")))
		return EXIT_ERROR;
	if ((rc = host_open("ls", argv[argc - 1], SNAPARC_OPEN_READ_ONLY, SNAPARC_SYNC_FULL, &a)))
		return exit_for_status(rc);
	if (!json)
		printf("%4s  %-34s %-24s %10s %8s %8s %12s %12s\n", "id", "name", "imported", "series",
		       "tombst.", "exempl.", "source", "stored");
	while ((rc = api->snapshot_next(a, after, &s)) == 0) {
		after = s.id;
		fmt_time_ms(when, sizeof(when), s.imported_ms);
		if (json) {
			printf("{\"id\":%u,\"name\":", s.id);
			json_string(stdout, s.name, strlen(s.name));
			printf(",\"imported\":\"%s\",\"mint\":%" PRId64 ",\"maxt\":%" PRId64 ",\"series\":%" PRIu64
			       ",\"tombstones\":%" PRIu64 ",\"exemplars\":%" PRIu64 ",\"records\":%" PRIu64
			       ",\"source_bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 "}\n",
			       when, s.mint, s.maxt, s.series, s.tombstones, s.exemplars, s.records, s.source_bytes,
			       s.raw_bytes, s.stored_bytes);
		} else {
			printf("%4u  %-34s %-24s %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n",
			       s.id, s.name, when, s.series, s.tombstones, s.exemplars, s.source_bytes, s.stored_bytes);
		}
	}
	if (rc != SNAPARC_NOT_FOUND)
		host_report("ls", a, rc, NULL);
	api->close(&a);
	return rc == SNAPARC_NOT_FOUND ? EXIT_OK : exit_for_status(rc);
}

/* ---- stat ---- */

int cmd_stat(int argc, char **argv)
{
	const struct snaparc_api *api;
	snaparc_archive *a;
	struct snaparc_stat st = { .size = sizeof(st) };
	struct snaparc_snapshot_info s = { .size = sizeof(s) };
	uint64_t snaps = 0, series = 0, source = 0, raw = 0, stored = 0, total;
	uint32_t after = 0;
	int rc, json = argc == 3 && !strcmp(argv[1], "--json");

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: snaparc stat [--json] ARCHIVE\n\nSizes of the archive (index and segments, as du counts them), bytes per\n"
		     "series, and the ratio to the imported snapshots' bytes.");
		return EXIT_OK;
	}
	if (argc != 2 + json) {
		fputs("usage: snaparc stat [--json] ARCHIVE\n", stderr);
		return EXIT_USAGE;
	}
	if (!(api = host_api("stat")))
		return EXIT_ERROR;
	if ((rc = host_open("stat", argv[argc - 1], SNAPARC_OPEN_READ_ONLY, SNAPARC_SYNC_FULL, &a)))
		return exit_for_status(rc);
	while ((rc = api->snapshot_next(a, after, &s)) == 0) {
		after = s.id;
		snaps++;
		series += s.series;
		source += s.source_bytes;
		raw += s.raw_bytes;
		stored += s.stored_bytes;
	}
	if (rc == SNAPARC_NOT_FOUND)
		rc = api->stat(a, &st);
	if (rc)
		host_report("stat", a, rc, NULL);
	api->close(&a);
	if (rc)
		return exit_for_status(rc);
	total = st.index_bytes + st.segment_bytes;
	if (json) {
		printf("{\"snapshots\":%" PRIu64 ",\"series\":%" PRIu64 ",\"index_bytes\":%" PRIu64
		       ",\"segment_bytes\":%" PRIu64 ",\"segments\":%" PRIu64 ",\"archive_bytes\":%" PRIu64
		       ",\"source_bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 "}\n",
		       snaps, series, st.index_bytes, st.segment_bytes, st.segments, total, source, raw, stored);
		return EXIT_OK;
	}
	printf("snapshots        %" PRIu64 "\n", snaps);
	printf("series           %" PRIu64 "\n", series);
	printf("index            %" PRIu64 " bytes (%.1f per series)\n", st.index_bytes,
	       series ? (double)st.index_bytes / (double)series : 0);
	printf("segments         %" PRIu64 " bytes in %" PRIu64 " files (%.1f per series)\n", st.segment_bytes,
	       st.segments, series ? (double)st.segment_bytes / (double)series : 0);
	printf("archive          %" PRIu64 " bytes (%.1f per series)\n", total, series ? (double)total / (double)series : 0);
	printf("imported from    %" PRIu64 " bytes of snapshots (%.1f per series); records %" PRIu64 " bytes decoded\n",
	       source, series ? (double)source / (double)series : 0, raw);
	printf("ratio            %.3fx the snapshots' bytes\n", source ? (double)total / (double)source : 0);
	return EXIT_OK;
}

/* ---- lookup ---- */

struct lookup {
	int samples, json, plot, history, detail;
	const char *snapshot;
	const char *archive;
};

/* Whether t falls in one of the series' tombstone intervals. */
static int deleted(const struct snaparc_series *s, int64_t t)
{
	for (size_t i = 0; i < s->ndeleted; i++)
		if (t >= s->deleted[2 * i] && t <= s->deleted[2 * i + 1])
			return 1;
	return 0;
}

/* A chunk that does not decode: where its record is stored, and why. */
static int xor_failed(const struct lookup *l, const struct snaparc_series *s, const struct xor_iter *it,
		      struct err *e)
{
	char why[200];

	xor_iter_describe(it, why, sizeof(why));
	return err_set(e, SNAPARC_CORRUPT, "%s/segments/%08" PRIu32 ": offset %" PRIu64 ": ref %" PRIu64 ": XOR chunk: %s",
		       l->archive, s->segment, s->offset, s->ref, why);
}

static unsigned chunk_samples(const struct snaparc_series *s)
{
	return s->encoding == CHUNK_XOR ? xor_chunk_count(s->chunk, s->chunk_len) : 0;
}

static int print_exemplars(const struct lookup *l, const struct snaparc_series *s, struct err *e)
{
	struct rec_exemplars x;
	struct rec_exemplar_iter it;
	struct rec_exemplar ex;
	char v[FLOAT_TEXT_MAX];
	int first = 1;

	if (!s->exemplars_len)
		return 0;
	if (rec_exemplars_decode(&x, s->exemplars, s->exemplars_len, e))
		return err_prefix(e, "exemplars of ref %" PRIu64, s->ref);
	rec_exemplars_iter(&it, &x);
	while (rec_exemplars_next(&it, &ex)) {
		value_text(v, ex.value);
		if (l->json) {
			printf("%s{\"t\":%" PRId64 ",\"value\":\"%s\",\"labels\":", first ? "" : ",", ex.t, v);
			labels_json(stdout, &ex.labels);
			putchar('}');
		} else {
			printf("  exemplar    t=%" PRId64 " value=%s ", ex.t, v);
			labels_text(stdout, &ex.labels);
			putchar('\n');
		}
		first = 0;
	}
	return 0;
}

static int print_series(const struct lookup *l, const struct snaparc_snapshot_info *snap,
			const struct snaparc_series *s, struct err *e)
{
	char v[FLOAT_TEXT_MAX], when[40];
	int rc;

	if (l->json) {
		printf("{\"snapshot\":%u,\"name\":", snap->id);
		json_string(stdout, snap->name, strlen(snap->name));
		printf(",\"ref\":%" PRIu64 ",\"labels\":", s->ref);
		label_array_json(stdout, s->labels, s->nlabels);
		if (s->has_chunk)
			printf(",\"chunk\":{\"mint\":%" PRId64 ",\"maxt\":%" PRId64 ",\"encoding\":\"%s\",\"samples\":%u,\"bytes\":%zu}",
			       s->mint, s->maxt, chunk_encoding_name(s->encoding), chunk_samples(s), s->chunk_len);
		else
			fputs(",\"chunk\":null", stdout);
		printf(",\"stored_bytes\":%zu,\"record_bytes\":%zu,\"cut\":%u,\"tombstones\":[", s->stored_len,
		       s->record_len, s->cut);
	} else {
		printf("snapshot %u (%s) ref %" PRIu64 " ", snap->id, snap->name, s->ref);
		label_array_text(stdout, s->labels, s->nlabels);
		putchar('\n');
		if (s->has_chunk)
			printf("  chunk       %s, %u samples, %zu bytes, mint %" PRId64 " maxt %" PRId64 "\n",
			       chunk_encoding_name(s->encoding), chunk_samples(s), s->chunk_len, s->mint, s->maxt);
		else
			puts("  chunk       none");
		if (s->cut)
			printf("  stored      as the record at segment %u offset %" PRIu64 " cut to %u samples (record %zu bytes)\n",
			       s->segment, s->offset, s->cut, s->record_len);
		else
			printf("  stored      %zu bytes (record %zu bytes) at segment %u offset %" PRIu64 "\n", s->stored_len,
			       s->record_len, s->segment, s->offset);
	}
	for (size_t i = 0; i < s->ndeleted; i++) {
		int64_t mint = s->deleted[2 * i], maxt = s->deleted[2 * i + 1];

		if (l->json)
			printf("%s[%" PRId64 ",%" PRId64 "]", i ? "," : "", mint, maxt);
		else
			printf("  deleted     [%" PRId64 ", %" PRId64 "]\n", mint, maxt);
	}
	if (l->json)
		fputs("],\"exemplars\":[", stdout);
	if ((rc = print_exemplars(l, s, e)))
		return rc;
	if (l->json)
		putchar(']');
	if (l->samples && s->has_chunk && s->encoding == CHUNK_XOR) {
		struct xor_iter it;
		int64_t t;
		uint64_t bits;
		int first = 1;

		if (l->json)
			fputs(",\"samples\":[", stdout);
		xor_iter_init(&it, s->chunk, s->chunk_len);
		while ((rc = xor_iter_next(&it, &t, &bits)) == 1) {
			int del = deleted(s, t);

			value_text(v, bits);
			if (l->json) {
				printf("%s[%" PRId64 ",\"%s\"%s]", first ? "" : ",", t, v, del ? ",\"deleted\"" : "");
			} else {
				fmt_time_ms(when, sizeof(when), t);
				printf("  %" PRId64 " %s %s%s\n", t, when, v, del ? " (deleted)" : "");
			}
			first = 0;
		}
		if (l->json)
			putchar(']');
		if (rc < 0)
			return xor_failed(l, s, &it, e);
	}
	if (l->json)
		puts("}");
	return 0;
}

/* Prometheus' timestamp in seconds: ms / 1000 with the fraction's three
 * digits when there is one (jsonutil.MarshalTimestamp). */
static void print_prom_time(int64_t t)
{
	if (t < 0) {
		putchar('-');
		t = -t;
	}
	printf("%" PRId64, t / 1000);
	if (t % 1000)
		printf(".%03d", (int)(t % 1000));
}

/* One series as an entry of a query API matrix: what Prometheus answers,
 * so without deleted samples and stale markers. */
static int print_matrix_entry(const struct lookup *l, const struct snaparc_series *s, int first, struct err *e)
{
	struct xor_iter it;
	char v[FLOAT_TEXT_MAX];
	int64_t t;
	uint64_t bits;
	int rc, n = 0;

	printf("%s{\"metric\":", first ? "" : ",");
	label_array_json(stdout, s->labels, s->nlabels);
	fputs(",\"values\":[", stdout);
	if (s->has_chunk && s->encoding == CHUNK_XOR) {
		xor_iter_init(&it, s->chunk, s->chunk_len);
		while ((rc = xor_iter_next(&it, &t, &bits)) == 1) {
			if (bits == XOR_STALE_NAN || deleted(s, t))
				continue;
			fmt_float(v, f64_from_bits(bits));
			printf("%s[", n++ ? "," : "");
			print_prom_time(t);
			printf(",\"%s\"]", v);
		}
		if (rc < 0)
			return xor_failed(l, s, &it, e);
	}
	fputs("]}", stdout);
	return 0;
}

static void plot_series(const struct snaparc_series *s)
{
	struct xor_iter it;
	struct buf ts = { 0 }, vs = { 0 };
	int64_t t;
	uint64_t bits;

	if (!s->has_chunk || s->encoding != CHUNK_XOR) {
		puts("  (no XOR chunk to plot)");
		return;
	}
	xor_iter_init(&it, s->chunk, s->chunk_len);
	while (xor_iter_next(&it, &t, &bits) == 1) {
		double v = deleted(s, t) ? NAN : f64_from_bits(bits);

		buf_put(&ts, &t, sizeof(t));
		buf_put(&vs, &v, sizeof(v));
	}
	if (!ts.oom && !vs.oom)
		plot_samples(stdout, (const int64_t *)ts.p, (const double *)vs.p, ts.len / sizeof(t), 60, 10);
	buf_free(&ts);
	buf_free(&vs);
}

/* What the series found so far came to; e holds a failure of ours (not the
 * plugin's) while e.code is set. */
struct shown {
	const struct lookup *l;
	uint64_t count;
	struct err e;
};

static int show(struct shown *sh, const struct snaparc_snapshot_info *snap, const struct snaparc_series *s)
{
	int rc;

	if (sh->l->json && sh->l->samples && !sh->l->history && !sh->l->detail)
		rc = print_matrix_entry(sh->l, s, sh->count == 0, &sh->e);
	else
		rc = print_series(sh->l, snap, s, &sh->e);
	if (!rc && sh->l->plot && !sh->l->json)
		plot_series(s);
	sh->count++;
	return rc;
}

/* The plugin's callback for select and history. */
static int on_series(void *ctx, const struct snaparc_snapshot_info *snap, const struct snaparc_series *s)
{
	return show(ctx, snap, s);
}

static void lookup_usage(FILE *f)
{
	fputs("usage: snaparc lookup [--snapshot S] [--samples] [--json [--detail]] [--plot] ARCHIVE (--ref N | SELECTOR)\n"
	      "       snaparc lookup --history [--samples] [--json] [--plot] ARCHIVE LABELS\n"
	      "\n"
	      "Prints series of an archived snapshot: labels, head chunk, deleted intervals and\n"
	      "exemplars, and with --samples their samples.\n"
	      "\n"
	      "  --snapshot S  the snapshot: its id, its name, or latest (default)\n"
	      "  --ref N       the series with this ref\n"
	      "  SELECTOR      the series a PromQL selector matches, as Prometheus would:\n"
	      "                'app_requests_total{job=\"api\",path=~\"/v1/.*\",code!=\"200\"}'\n"
	      "  --history     the series with exactly these LABELS in every archived snapshot\n"
	      "                that has it, newest first (refs change across restarts)\n"
	      "  --samples     decode the chunks' samples (deleted ones are marked)\n"
	      "  --json        JSON; with --samples, the query API's matrix answer\n"
	      "                ({\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",...}}: times in\n"
	      "                seconds, values as strings, without deleted samples and stale markers)\n"
	      "  --detail      with --json: one object a series (chunk, deleted intervals,\n"
	      "                exemplars, and every sample with the deleted ones marked)\n"
	      "  --plot        draw each series' samples as a chart\n"
	      "\n"
	      "Exit codes: 0 found, 1 error, 2 usage, 3 not found, 4 the stored record is corrupt.\n", f);
}

int cmd_lookup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "snapshot", required_argument, NULL, 'S' },
		{ "ref", required_argument, NULL, 'r' },
		{ "samples", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", no_argument, NULL, 'p' },
		{ "history", no_argument, NULL, 'H' },
		{ "detail", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lookup l = { .snapshot = "latest" };
	struct snaparc_snapshot_info snap = { .size = sizeof(snap) };
	struct snaparc_series s = { .size = sizeof(s) };
	struct labelset ls = { 0 };
	struct shown sh = { .l = &l };
	const struct snaparc_api *api;
	snaparc_archive *a;
	snaparc_result *r = NULL;
	const char *ref = NULL;
	char why[200], id[16], *end;
	uint64_t refn = 0;
	int c, rc, matrix;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S': l.snapshot = optarg; break;
		case 'r': ref = optarg; break;
		case 's': l.samples = 1; break;
		case 'j': l.json = 1; break;
		case 'p': l.plot = 1; break;
		case 'H': l.history = 1; break;
		case 'd': l.detail = 1; break;
		case 'h': lookup_usage(stdout); return EXIT_OK;
		default: lookup_usage(stderr); return EXIT_USAGE;
		}
	}
	if (argc - optind != (ref ? 1 : 2) || (ref && l.history)) {
		lookup_usage(stderr);
		return EXIT_USAGE;
	}
	if (ref) {
		refn = strtoull(ref, &end, 10);
		if (!*ref || *end) {
			fprintf(stderr, "snaparc lookup: --ref %s is not a number\n", ref);
			return EXIT_USAGE;
		}
	} else if (l.history && labelset_parse(argv[optind + 1], &ls, why, sizeof(why))) {
		fprintf(stderr, "snaparc lookup: %s: %s\n", argv[optind + 1], why);
		return EXIT_USAGE;
	}
	if (!(api = host_api("lookup"))) {
		labelset_free(&ls);
		return EXIT_ERROR;
	}
	l.archive = argv[optind];
	if ((rc = host_open("lookup", argv[optind], SNAPARC_OPEN_READ_ONLY, SNAPARC_SYNC_FULL, &a))) {
		labelset_free(&ls);
		return exit_for_status(rc);
	}
	matrix = l.json && l.samples && !l.history && !l.detail;
	if (matrix)
		fputs("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[", stdout);
	if (l.history) {
		rc = api->history(a, ls.labels, ls.n, on_series, &sh);
	} else if (!(rc = api->snapshot_find(a, l.snapshot, &snap))) {
		/* by id from here on: "latest" stays the snapshot just found */
		snprintf(id, sizeof(id), "%u", snap.id);
		if (!ref)
			rc = api->select(a, id, argv[optind + 1], on_series, &sh);
		else if ((rc = api->result_new(&r)))
			err_set(&sh.e, rc, "out of memory for a result");
		else if (!(rc = api->read_ref(a, id, refn, r, &s)))
			rc = show(&sh, &snap, &s);
	}
	if (matrix)
		puts("]}}");
	if (!rc && sh.count == 0)
		rc = err_set(&sh.e, SNAPARC_NOT_FOUND, "no series matches %s", argv[optind + 1]);
	fflush(stdout);
	if (rc && sh.e.code)
		fprintf(stderr, "snaparc lookup: %s\n", sh.e.msg);
	else if (rc)
		host_report("lookup", a, rc, NULL);
	if (r)
		api->result_free(&r);
	api->close(&a);
	labelset_free(&ls);
	/* a selector that does not parse is a usage error */
	return rc == SNAPARC_INVALID ? EXIT_USAGE : exit_for_status(rc);
}
