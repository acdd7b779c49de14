/*
 * fuzz_import: the import of a whole snapshot directory into an archive
 * (archive_import_dir), as `snaparc import` does it.
 *
 * The input is a 4-byte control word, then the bytes of the snapshot's
 * segments:
 *
 *   byte 0      bit 0: cut the bytes into two segments, 00000000 and
 *               00000001; bit 1: cut at a page boundary (page byte 1),
 *               else at byte le24(bytes 1..3); bit 2: add an empty last
 *               segment
 *   bytes 1..3  where to cut
 *
 * The segments are written into a snapshot directory and imported into a
 * fresh archive; both live in a scratch directory of this process under
 * $TMPDIR (or /tmp), emptied on every run and removed at exit.
 *
 * The import either succeeds, and then the archive holds that one snapshot
 * and verifies sound; or fails with a message, and then the archive shows
 * no snapshot, its segments hold no byte, and the writer lock is free (a
 * new import can begin). A violation traps, which libFuzzer reports as a
 * crash with the input. SNAPARC_FUZZ_VERBOSE=1 prints each failure's
 * message.
 *
 * As in fuzz_wal, the custom mutator mostly puts the CRCs right, so that the
 * fuzzer gets past them to the records.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "bytes.h"
#include "crc32c.h"
#include "wal.h"
#include "fuzz.h"

#define KEEP_BAD_CRCS_ONE_IN 8
#define CONTROL 4
#define NAME "chunk_snapshot.000001.0000000001"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static char scratch[4096], snapdir[4200], arcdir[4200];
static int verbose;

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	size = LLVMFuzzerMutate(data, size, max_size);
	/* pages count from the end of the control word; a cut off a page
	 * boundary makes the second segment's pages differ, which the CRCs
	 * then catch */
	if (seed % KEEP_BAD_CRCS_ONE_IN != 0 && size > CONTROL)
		fix_crcs(data + CONTROL, size - CONTROL);
	return size;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Empties path (and removes it unless keep): nothing of one run stays for the next. */
static void rm_tree(const char *path, int keep)
{
	struct stat st;

	if (keep) {
		DIR *d = opendir(path);
		struct dirent *de;
		char p[4400];

		CHECK(d != NULL);
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			rm_tree(p, 0);
		}
		closedir(d);
		return;
	}
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	CHECK(lstat(path, &st) != 0 && errno == ENOENT);
}

static void cleanup(void)
{
	if (scratch[0])
		rm_tree(scratch, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	verbose = getenv("SNAPARC_FUZZ_VERBOSE") != NULL;
	snprintf(scratch, sizeof(scratch), "%s/snaparc-fuzz-import.%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
	snprintf(snapdir, sizeof(snapdir), "%s/" NAME, scratch);
	snprintf(arcdir, sizeof(arcdir), "%s/archive", scratch);
	rm_tree(scratch, 0);   /* a crashed process of the same pid left it */
	CHECK(mkdir(scratch, 0700) == 0);
	CHECK(mkdir(snapdir, 0700) == 0);
	atexit(cleanup);
	return 0;
}

static void write_segment(unsigned n, const uint8_t *p, size_t len)
{
	char path[4400];
	int fd;

	snprintf(path, sizeof(path), "%s/%08u", snapdir, n);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	while (len) {
		ssize_t w = write(fd, p, len);

		CHECK(w > 0);
		p += w;
		len -= (size_t)w;
	}
	CHECK(close(fd) == 0);
}

/* What is in the archive's segments, in bytes. */
static uint64_t segment_bytes(void)
{
	char dir[4400], p[4600];
	struct dirent *de;
	struct stat st;
	uint64_t total = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/segments", arcdir);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		CHECK(stat(p, &st) == 0);
		total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

static int count_problem(void *ctx, int status, const char *message)
{
	(void)status;
	if (verbose)
		fprintf(stderr, "fuzz_import: verify: %s\n", message);
	++*(unsigned *)ctx;
	return 0;
}

static void check_imported(struct archive *a, const struct idx_snapshot *snap)
{
	struct idx_snapshot s;
	struct err e = { 0 };
	unsigned problems = 0;

	CHECK(snap->id == 1);
	CHECK(archive_snapshot_next(a, 0, &s, &e) == 0);
	CHECK(s.id == 1 && strcmp(s.name, NAME) == 0 && s.series == snap->series);
	CHECK(archive_snapshot_next(a, 1, &s, &e) == SNAPARC_NOT_FOUND);
	/* what was taken in reads back: records, CRCs, index entries, counts */
	CHECK(archive_verify(a, 0, count_problem, &problems, NULL, NULL, &e) == 0);
	CHECK(problems == 0);
}

static void check_failed(struct archive *a, int rc, const struct err *fail)
{
	struct archive_import_info info = { .name = "again" };
	struct archive_writer *w;
	struct idx_snapshot s;
	struct err e = { 0 };

	if (verbose)
		fprintf(stderr, "fuzz_import: %d %s\n", rc, fail->msg);
	CHECK(rc < 0 && fail->code == rc && fail->msg[0] != '\0');
	CHECK(archive_snapshot_next(a, 0, &s, &e) == SNAPARC_NOT_FOUND);
	CHECK(segment_bytes() == 0);
	/* the writer lock was let go */
	CHECK(archive_import_begin(a, &info, &w, &e) == 0);
	archive_import_abort(w);
	CHECK(archive_snapshot_next(a, 0, &s, &e) == SNAPARC_NOT_FOUND);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct archive_opts opts = { .create = 1, .sync = 0 };
	struct archive_import_info info = { .name = NAME };
	struct idx_snapshot snap;
	struct archive *a;
	struct err e = { 0 };
	const uint8_t *seg;
	size_t len, cut;
	unsigned n = 0;
	int rc;

	if (size < CONTROL)
		return 0;
	seg = data + CONTROL;
	len = size - CONTROL;
	rm_tree(snapdir, 1);
	rm_tree(arcdir, 0);
	if (data[0] & 1) {
		if (data[0] & 2)
			cut = (size_t)data[1] * WAL_PAGE_SIZE;
		else
			cut = (size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16;
		if (cut > len)
			cut = len;
		write_segment(n++, seg, cut);
		write_segment(n++, seg + cut, len - cut);
	} else {
		write_segment(n++, seg, len);
	}
	if (data[0] & 4)
		write_segment(n++, seg, 0);
	info.source_bytes = len;

	CHECK(archive_open(&a, arcdir, &opts, &e) == 0);
	memset(&e, 0, sizeof(e));
	rc = archive_import_dir(a, snapdir, &info, NULL, NULL, &snap, &e);
	if (rc == 0)
		check_imported(a, &snap);
	else
		check_failed(a, rc, &e);
	archive_close(a);
	return 0;
}
