/*
 * snaparc-rewrite: reads a chunk snapshot, checks that every record decodes
 * and re-encodes from its fields to the same bytes, and writes the records
 * as a new snapshot with snaparc's WAL writer. The Prometheus round-trip
 * test loads the result in a real Prometheus.
 *
 *   snaparc-rewrite SRC DST [--compression none|snappy|zstd] [--segment-size BYTES]
 *
 * DST is created and must not exist. Exit 0 only when every record matched.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bytes.h"
#include "record.h"
#include "snapdir.h"
#include "wal.h"

static int parse_args(int argc, char **argv, struct wal_writer_opts *o)
{
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--compression") && i + 1 < argc) {
			const char *c = argv[++i];

			if (!strcmp(c, "none"))
				o->compression = WAL_COMPRESS_NONE;
			else if (!strcmp(c, "snappy"))
				o->compression = WAL_COMPRESS_SNAPPY;
			else if (!strcmp(c, "zstd"))
				o->compression = WAL_COMPRESS_ZSTD;
			else
				return -1;
		} else if (!strcmp(argv[i], "--segment-size") && i + 1 < argc) {
			o->segment_size = strtoull(argv[++i], NULL, 10);
		} else {
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_SNAPPY, .sync = 0 };
	struct wal_reader *r = NULL;
	struct wal_writer *w = NULL;
	struct wal_record rec;
	struct buf b = { 0 };
	struct err e = { 0 };
	char src[4096];
	uint64_t n = 0;
	int rc;

	if (argc < 3 || parse_args(argc, argv, &wo)) {
		fprintf(stderr, "usage: snaparc-rewrite SRC DST [--compression none|snappy|zstd] [--segment-size BYTES]\n");
		return 2;
	}
	if ((rc = snapdir_resolve(argv[1], src, sizeof(src), &e)) ||
	    (rc = wal_reader_open_dir(&r, src, NULL, &e)))
		goto out;
	if (mkdir(argv[2], 0777) != 0) {
		rc = err_errno(&e, errno, "%s", argv[2]);
		goto out;
	}
	if ((rc = wal_writer_open(&w, argv[2], &wo, &e)))
		goto out;
	while ((rc = wal_reader_next(r, &rec, &e)) == 1) {
		buf_reset(&b);
		if ((rc = rec_reencode(&b, rec.data, rec.len, &e))) {
			err_prefix(&e, "%s: offset %" PRIu64, wal_reader_segment_path(r), rec.offset);
			goto out;
		}
		if (b.len != rec.len || memcmp(b.p, rec.data, b.len)) {
			size_t at = 0;

			while (at < b.len && at < rec.len && b.p[at] == rec.data[at])
				at++;
			rc = err_set(&e, SNAPARC_CORRUPT, "%s: offset %" PRIu64 ": re-encoded record differs at byte %zu (%zu bytes, re-encoded %zu)",
				     wal_reader_segment_path(r), rec.offset, at, rec.len, b.len);
			goto out;
		}
		if ((rc = wal_writer_log(w, b.p, b.len, NULL, &e)))
			goto out;
		n++;
	}
out:
	if (w) {
		int crc = wal_writer_close(w, rc ? NULL : &e);

		if (!rc)
			rc = crc;
	}
	wal_reader_close(r);
	buf_free(&b);
	if (rc) {
		fprintf(stderr, "snaparc-rewrite: %s\n", e.msg);
		return 1;
	}
	printf("%" PRIu64 " records re-encoded identically and written to %s\n", n, argv[2]);
	return 0;
}
