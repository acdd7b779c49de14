/* Reading a range of segments: what restore of one snapshot among several uses. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "support.h"
#include "wal.h"

static char dir[64];

static void setup(void)
{
	support_tmpdir(dir, sizeof(dir), "range");
}

static void teardown(void)
{
	support_rm_tree(dir);
}

TestSuite(wal_range, .init = setup, .fini = teardown);

/* Three runs of records; the reader of [start of run 2, start of run 3)
 * gives exactly run 2, whatever page or segment the bounds fall in. */
static void check_middle_run(uint64_t segment_size, size_t rec_size)
{
	struct wal_writer_opts wo = { .compression = WAL_COMPRESS_NONE, .segment_size = segment_size };
	struct wal_reader_opts ro = { .partial_last_page = 1 };
	struct wal_pos pos[30];
	struct wal_writer *w;
	struct wal_reader *r;
	struct wal_record rec;
	struct err e;
	uint8_t *data = malloc(rec_size);
	int i, n = 0, rc;

	cr_assert_eq(wal_writer_open(&w, dir, &wo, &e), 0, "%s", e.msg);
	for (i = 0; i < 30; i++) {
		memset(data, 'a' + i % 26, rec_size);
		cr_assert_eq(wal_writer_log(w, data, rec_size, &pos[i], &e), 0, "%s", e.msg);
	}
	cr_assert_eq(wal_writer_close(w, &e), 0, "%s", e.msg);
	cr_assert_eq(wal_reader_open_range(&r, dir, &pos[10], &pos[20], &ro, &e), 0, "%s", e.msg);
	while ((rc = wal_reader_next(r, &rec, &e)) == 1) {
		cr_assert_eq(rec.segment, pos[10 + n].segment);
		cr_assert_eq(rec.offset, pos[10 + n].offset, "record %d at %llu, want %llu", 10 + n,
			     (unsigned long long)rec.offset, (unsigned long long)pos[10 + n].offset);
		cr_assert_eq(rec.len, rec_size);
		cr_assert_eq(rec.data[0], 'a' + (10 + n) % 26);
		n++;
	}
	cr_assert_eq(rc, 0, "%s", e.msg);
	cr_assert_eq(n, 10, "read %d records of the range, want 10", n);
	wal_reader_close(r);
	free(data);
}

Test(wal_range, small_records_mid_page)
{
	check_middle_run(0, 100);
}

Test(wal_range, records_across_pages_and_segments)
{
	check_middle_run(4 * WAL_PAGE_SIZE, 20000);
}
