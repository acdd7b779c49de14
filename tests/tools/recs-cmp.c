/*
 * snaparc-recs-cmp: compares the records of two chunk snapshot directories
 * byte for byte, as Prometheus reads them (decompressed), in order, whatever
 * their segment layout and compression. The crash campaigns use it to check
 * that a restored snapshot holds exactly the records that were imported.
 *
 *   snaparc-recs-cmp A B
 *
 * Exit 0 and "N records identical" when equal; 1 with the first difference
 * (record number, offsets, lengths, first differing byte); 4 when either
 * directory cannot be read.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "snapdir.h"
#include "wal.h"

struct side {
	const char *arg;
	char dir[4096];
	struct wal_reader *r;
	struct wal_record rec;
	struct buf copy;
	int rc;
	struct err e;
};

static int open_side(struct side *s)
{
	int rc = snapdir_resolve(s->arg, s->dir, sizeof(s->dir), &s->e);

	return rc ? rc : wal_reader_open_dir(&s->r, s->dir, NULL, &s->e);
}

int main(int argc, char **argv)
{
	struct side s[2] = { { .arg = argc > 1 ? argv[1] : NULL }, { .arg = argc > 2 ? argv[2] : NULL } };
	uint64_t n = 0;
	int status = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: snaparc-recs-cmp A B\n");
		return 2;
	}
	for (int i = 0; i < 2; i++) {
		if (open_side(&s[i])) {
			fprintf(stderr, "snaparc-recs-cmp: %s: %s\n", s[i].arg, s[i].e.msg);
			status = 4;
			goto out;
		}
	}
	for (;;) {
		/* the first side's record is copied: each reader's is borrowed */
		s[0].rc = wal_reader_next(s[0].r, &s[0].rec, &s[0].e);
		if (s[0].rc == 1) {
			buf_reset(&s[0].copy);
			buf_put(&s[0].copy, s[0].rec.data, s[0].rec.len);
			if (s[0].copy.oom) {
				fprintf(stderr, "snaparc-recs-cmp: out of memory\n");
				status = 4;
				goto out;
			}
		}
		s[1].rc = wal_reader_next(s[1].r, &s[1].rec, &s[1].e);
		for (int i = 0; i < 2; i++) {
			if (s[i].rc < 0) {
				fprintf(stderr, "snaparc-recs-cmp: %s\n", s[i].e.msg);
				status = 4;
				goto out;
			}
		}
		if (s[0].rc == 0 && s[1].rc == 0)
			break;
		if (s[0].rc != s[1].rc) {
			fprintf(stderr, "snaparc-recs-cmp: %s has %" PRIu64 " records, %s more\n",
				s[0].rc ? s[1].arg : s[0].arg, n, s[0].rc ? s[0].arg : s[1].arg);
			status = 1;
			goto out;
		}
		if (s[0].copy.len != s[1].rec.len || memcmp(s[0].copy.p, s[1].rec.data, s[1].rec.len)) {
			size_t at = 0;

			while (at < s[0].copy.len && at < s[1].rec.len && s[0].copy.p[at] == s[1].rec.data[at])
				at++;
			fprintf(stderr,
				"snaparc-recs-cmp: record %" PRIu64 " differs at byte %zu: %s segment %u offset %" PRIu64
				" (%zu bytes), %s segment %u offset %" PRIu64 " (%zu bytes)\n",
				n, at, s[0].arg, s[0].rec.segment, s[0].rec.offset, s[0].copy.len, s[1].arg,
				s[1].rec.segment, s[1].rec.offset, s[1].rec.len);
			status = 1;
			goto out;
		}
		n++;
	}
	printf("%" PRIu64 " records identical\n", n);
out:
	for (int i = 0; i < 2; i++) {
		wal_reader_close(s[i].r);
		buf_free(&s[i].copy);
	}
	return status;
}
