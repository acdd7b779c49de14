/*
 * snaparc dump: print a chunk snapshot's records and a summary.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "out.h"
#include "record.h"
#include "snapdir.h"
#include "wal.h"
#include "xor.h"


struct summary {
	uint64_t series, with_chunk, samples, tombstones, tombstone_records;
	uint64_t exemplars, exemplar_records, records, raw_bytes, stored_bytes;
	uint64_t by_encoding[8], by_compression[3], segments, segment_bytes;
};

struct dump {
	int samples, json;
	FILE *out;
	struct summary sum;
	char path[4096];
};

/* Prints the samples of an XOR chunk; returns 0 or SNAPARC_CORRUPT. */
static int print_samples(struct dump *d, const struct rec_series *s, const struct wal_record *w,
			 struct err *e)
{
	struct xor_iter it;
	char v[FLOAT_TEXT_MAX], when[40];
	int64_t t;
	uint64_t bits;
	int rc, first = 1;

	if (d->json)
		fputs(",\"samples\":[", d->out);
	xor_iter_init(&it, s->chunk, s->chunk_len);
	while ((rc = xor_iter_next(&it, &t, &bits)) == 1) {
		value_text(v, bits);
		if (d->json) {
			fprintf(d->out, "%s[%" PRId64 ",\"%s\"]", first ? "" : ",", t, v);
		} else {
			fmt_time_ms(when, sizeof(when), t);
			fprintf(d->out, "    %" PRId64 " %s %s\n", t, when, v);
		}
		first = 0;
	}
	if (d->json)
		putc(']', d->out);
	if (rc < 0) {
		char why[200];

		xor_iter_describe(&it, why, sizeof(why));
		return err_set(e, SNAPARC_CORRUPT, "%s: offset %" PRIu64 ": series ref %" PRIu64
			       ": XOR chunk: %s", d->path, w->offset, s->ref, why);
	}
	return 0;
}

static int dump_series(struct dump *d, const struct wal_record *w, char *seg, struct err *e)
{
	struct rec_series s;
	unsigned count = 0;
	char v[FLOAT_TEXT_MAX];
	int rc = rec_series_decode(&s, w->data, w->len, e);

	if (rc)
		return rc;
	d->sum.series++;
	if (s.has_chunk) {
		d->sum.with_chunk++;
		d->sum.by_encoding[s.encoding]++;
		if (s.encoding == CHUNK_XOR)
			count = xor_chunk_count(s.chunk, s.chunk_len);
		d->sum.samples += count;
	}
	if (d->json) {
		fprintf(d->out, "{\"record\":\"series\",\"segment\":\"%s\",\"offset\":%" PRIu64 ",\"ref\":%" PRIu64
			",\"labels\":", seg, w->offset, s.ref);
		labels_json(d->out, &s.labels);
		if (!s.has_chunk) {
			fputs(",\"chunk\":null", d->out);
		} else {
			fprintf(d->out, ",\"chunk\":{\"mint\":%" PRId64 ",\"maxt\":%" PRId64
				",\"encoding\":\"%s\",\"samples\":%u,\"bytes\":%zu}", s.mint, s.maxt,
				chunk_encoding_name(s.encoding), count, s.chunk_len);
			if (s.encoding == CHUNK_XOR || s.encoding == CHUNK_XOR2) {
				value_text(v, s.last_value);
				fprintf(d->out, ",\"last_value\":\"%s\"", v);
			}
		}
	} else {
		fprintf(d->out, "%s@%" PRIu64 " series ref=%" PRIu64 " ", seg, w->offset, s.ref);
		labels_text(d->out, &s.labels);
		if (s.has_chunk)
			fprintf(d->out, " chunk=%s mint=%" PRId64 " maxt=%" PRId64 " samples=%u bytes=%zu\n",
				chunk_encoding_name(s.encoding), s.mint, s.maxt, count, s.chunk_len);
		else
			fputs(" no chunk\n", d->out);
	}
	rc = 0;
	if (d->samples && s.has_chunk && s.encoding == CHUNK_XOR)
		rc = print_samples(d, &s, w, e);
	if (d->json)
		fputs("}\n", d->out);
	return rc;
}

static int dump_tombstones(struct dump *d, const struct wal_record *w, char *seg, struct err *e)
{
	struct rec_tombstones t;
	struct rec_tombstone_iter it;
	struct rec_interval iv;
	int rc = rec_tombstones_decode(&t, w->data, w->len, e), first = 1;

	if (rc)
		return rc;
	d->sum.tombstone_records++;
	d->sum.tombstones += t.count;
	if (d->json)
		fprintf(d->out, "{\"record\":\"tombstones\",\"segment\":\"%s\",\"offset\":%" PRIu64
			",\"intervals\":[", seg, w->offset);
	else
		fprintf(d->out, "%s@%" PRIu64 " tombstones intervals=%zu\n", seg, w->offset, t.count);
	rec_tombstones_iter(&it, &t);
	while (rec_tombstones_next(&it, &iv)) {
		if (d->json)
			fprintf(d->out, "%s{\"ref\":%" PRIu64 ",\"mint\":%" PRId64 ",\"maxt\":%" PRId64 "}",
				first ? "" : ",", iv.ref, iv.mint, iv.maxt);
		else
			fprintf(d->out, "    ref=%" PRIu64 " [%" PRId64 ", %" PRId64 "]\n", iv.ref, iv.mint, iv.maxt);
		first = 0;
	}
	if (d->json)
		fputs("]}\n", d->out);
	return 0;
}

static int dump_exemplars(struct dump *d, const struct wal_record *w, char *seg, struct err *e)
{
	struct rec_exemplars x;
	struct rec_exemplar_iter it;
	struct rec_exemplar ex;
	char v[FLOAT_TEXT_MAX];
	int rc = rec_exemplars_decode(&x, w->data, w->len, e), first = 1;

	if (rc)
		return rc;
	d->sum.exemplar_records++;
	d->sum.exemplars += x.count;
	if (d->json)
		fprintf(d->out, "{\"record\":\"exemplars\",\"segment\":\"%s\",\"offset\":%" PRIu64
			",\"exemplars\":[", seg, w->offset);
	else
		fprintf(d->out, "%s@%" PRIu64 " exemplars count=%zu\n", seg, w->offset, x.count);
	rec_exemplars_iter(&it, &x);
	while (rec_exemplars_next(&it, &ex)) {
		value_text(v, ex.value);
		if (d->json) {
			fprintf(d->out, "%s{\"ref\":%" PRIu64 ",\"t\":%" PRId64 ",\"value\":\"%s\",\"labels\":",
				first ? "" : ",", ex.ref, ex.t, v);
			labels_json(d->out, &ex.labels);
			putc('}', d->out);
		} else {
			fprintf(d->out, "    ref=%" PRIu64 " t=%" PRId64 " value=%s ", ex.ref, ex.t, v);
			labels_text(d->out, &ex.labels);
			putc('\n', d->out);
		}
		first = 0;
	}
	if (d->json)
		fputs("]}\n", d->out);
	return 0;
}

static void print_summary(struct dump *d)
{
	struct summary *s = &d->sum;

	if (d->json) {
		fprintf(d->out, "{\"summary\":{\"series\":%" PRIu64 ",\"series_with_chunk\":%" PRIu64
			",\"xor_samples\":%" PRIu64 ",\"tombstone_intervals\":%" PRIu64
			",\"exemplars\":%" PRIu64 ",\"exemplar_records\":%" PRIu64 ",\"records\":%" PRIu64
			",\"record_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 ",\"segments\":%" PRIu64
			",\"segment_bytes\":%" PRIu64 ",\"compression\":{\"none\":%" PRIu64 ",\"snappy\":%" PRIu64
			",\"zstd\":%" PRIu64 "},\"encodings\":{", s->series, s->with_chunk, s->samples,
			s->tombstones, s->exemplars, s->exemplar_records, s->records, s->raw_bytes,
			s->stored_bytes, s->segments, s->segment_bytes, s->by_compression[0],
			s->by_compression[1], s->by_compression[2]);
		for (unsigned i = 1, first = 1; i < 8; i++) {
			if (!s->by_encoding[i])
				continue;
			fprintf(d->out, "%s\"%s\":%" PRIu64, first ? "" : ",", chunk_encoding_name(i), s->by_encoding[i]);
			first = 0;
		}
		fputs("}}}\n", d->out);
		return;
	}
	fprintf(d->out, "\nsummary of %s\n", d->path);
	fprintf(d->out, "  series         %" PRIu64 " (%" PRIu64 " with a head chunk, %" PRIu64 " XOR samples)\n",
		s->series, s->with_chunk, s->samples);
	for (unsigned i = 1; i < 8; i++)
		if (s->by_encoding[i])
			fprintf(d->out, "    %-12s %" PRIu64 " chunks\n", chunk_encoding_name(i), s->by_encoding[i]);
	fprintf(d->out, "  tombstones     %" PRIu64 " intervals in %" PRIu64 " record(s)\n", s->tombstones,
		s->tombstone_records);
	fprintf(d->out, "  exemplars      %" PRIu64 " in %" PRIu64 " record(s)\n", s->exemplars, s->exemplar_records);
	fprintf(d->out, "  records        %" PRIu64 ": %" PRIu64 " bytes decoded, %" PRIu64 " stored (%.1f%%)\n",
		s->records, s->raw_bytes, s->stored_bytes,
		s->raw_bytes ? 100.0 * (double)s->stored_bytes / (double)s->raw_bytes : 0.0);
	fprintf(d->out, "  compression    %" PRIu64 " none, %" PRIu64 " Snappy, %" PRIu64 " zstd\n",
		s->by_compression[0], s->by_compression[1], s->by_compression[2]);
	fprintf(d->out, "  segments       %" PRIu64 " (%" PRIu64 " bytes)\n", s->segments, s->segment_bytes);
}

/* Segment files and their bytes, empty ones included. */
static void count_segments(struct dump *d)
{
	char path[4200];
	struct stat st;

	for (uint32_t i = 0;; i++) {
		snprintf(path, sizeof(path), "%s/%08u", d->path, i);
		if (stat(path, &st) != 0)
			break;
		d->sum.segments++;
		d->sum.segment_bytes += (uint64_t)st.st_size;
	}
}

static int dump_dir(struct dump *d, struct err *e)
{
	struct wal_reader_opts opts = { 0 };
	struct wal_reader *r;
	struct wal_record w;
	char seg[16];
	int rc;

	if ((rc = wal_reader_open_dir(&r, d->path, &opts, e)))
		return rc;
	while ((rc = wal_reader_next(r, &w, e)) == 1) {
		d->sum.records++;
		d->sum.raw_bytes += w.len;
		d->sum.stored_bytes += w.stored_len;
		d->sum.by_compression[w.flags == WAL_SNAPPY ? 1 : w.flags == WAL_ZSTD ? 2 : 0]++;
		wal_segment_name(seg, sizeof(seg), w.segment);
		switch (rec_type(w.data, w.len)) {
		case REC_SERIES: rc = dump_series(d, &w, seg, e); break;
		case REC_TOMBSTONES: rc = dump_tombstones(d, &w, seg, e); break;
		case REC_EXEMPLARS: rc = dump_exemplars(d, &w, seg, e); break;
		default:
			rc = err_set(e, SNAPARC_CORRUPT, "unknown record type %u%s", rec_type(w.data, w.len),
				     w.len ? "" : " (empty record)");
		}
		if (rc) {
			err_prefix(e, "%s: offset %" PRIu64 ": record", wal_reader_segment_path(r), w.offset);
			break;
		}
	}
	wal_reader_close(r);
	if (!rc)
		count_segments(d);
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: snaparc dump [--samples] [--json] DIR\n"
	      "\n"
	      "Prints every record of a Prometheus chunk snapshot and a summary.\n"
	      "DIR is a snapshot directory (WAL segments) or a Prometheus data directory,\n"
	      "whose newest chunk_snapshot.* is read.\n"
	      "\n"
	      "  --samples   also decode each XOR chunk and print its samples\n"
	      "  --json      one JSON object per record (JSON Lines), then {\"summary\":...}\n"
	      "  -h, --help  this help\n"
	      "\n"
	      "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 corrupt input.\n", f);
}

int cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "samples", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dump d = { .out = stdout };
	struct err e = { 0 };
	static char outbuf[1 << 20];
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': d.samples = 1; break;
		case 'j': d.json = 1; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	rc = snapdir_resolve(argv[optind], d.path, sizeof(d.path), &e);
	if (!rc)
		rc = dump_dir(&d, &e);
	if (!rc)
		print_summary(&d);
	fflush(stdout);
	if (rc) {
		fprintf(stderr, "snaparc dump: %s\n", e.msg);
		return exit_for_status(rc);
	}
	return EXIT_OK;
}
