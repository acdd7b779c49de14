/*
 * bench_codec: throughput of the codec's hot paths, each beside a peer
 * measured in the same run.
 *
 *   bench_codec [SNAPSHOT_DIR]
 *
 * - CRC-32C: the SSE4.2 instruction against the slicing-by-8 table, on 32 KiB
 *   pages (what the WAL checksums).
 * - Reading a snapshot: the WAL reader (CRC, reassembly, Snappy/zstd) plus the
 *   record decoder, against a plain read() of the same files; best of 5.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "record.h"
#include "snapdir.h"
#include "wal.h"
#include "xor.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_crc(void)
{
	enum { LEN = 32768, ROUNDS = 20000 };
	static uint8_t page[LEN];
	uint32_t sink = 0;
	double t0, sw, hw = 0;

	for (size_t i = 0; i < LEN; i++)
		page[i] = (uint8_t)(i * 131 + 7);
	t0 = now();
	for (int i = 0; i < ROUNDS; i++)
		sink ^= crc32c_sw((uint32_t)i, page, LEN);
	sw = now() - t0;
	if (crc32c_have_hw()) {
		t0 = now();
		for (int i = 0; i < ROUNDS; i++)
			sink ^= crc32c_hw((uint32_t)i, page, LEN);
		hw = now() - t0;
	}
	printf("crc32c  slicing-by-8 %8.0f MB/s", (double)LEN * ROUNDS / sw / 1e6);
	if (hw > 0)
		printf("   sse4.2 %8.0f MB/s   ratio %.1fx", (double)LEN * ROUNDS / hw / 1e6, sw / hw);
	printf("   (sink %08x)\n", sink);
}

/* Reads every file of dir with read(); returns bytes read. */
static uint64_t plain_read(const char *dir)
{
	static uint8_t buf[1 << 20];
	uint64_t total = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char path[4400];
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			total += (uint64_t)n;
		close(fd);
	}
	closedir(d);
	return total;
}

/* Reads and decodes every record; returns series decoded or -1. */
static int64_t decode_all(const char *dir, int samples)
{
	struct wal_reader *r;
	struct wal_record rec;
	struct err e;
	int64_t series = 0;
	int rc;

	if (wal_reader_open_dir(&r, dir, NULL, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	while ((rc = wal_reader_next(r, &rec, &e)) == 1) {
		struct rec_series s;

		if (rec_type(rec.data, rec.len) != REC_SERIES)
			continue;
		if (rec_series_decode(&s, rec.data, rec.len, &e)) {
			fprintf(stderr, "%s\n", e.msg);
			rc = -1;
			break;
		}
		rec_labels_hash(&s.labels);
		if (samples && s.encoding == CHUNK_XOR) {
			struct xor_iter it;
			int64_t t;
			uint64_t v;

			xor_iter_init(&it, s.chunk, s.chunk_len);
			while (xor_iter_next(&it, &t, &v) == 1)
				;
		}
		series++;
	}
	if (rc < 0)
		fprintf(stderr, "%s\n", e.msg);
	wal_reader_close(r);
	return rc < 0 ? -1 : series;
}

static void bench_read(const char *path)
{
	char dir[4096];
	struct err e;
	double best_plain = 1e9, best_dec = 1e9, best_samples = 1e9;
	uint64_t bytes = 0;
	int64_t series = 0;

	if (snapdir_resolve(path, dir, sizeof(dir), &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return;
	}
	for (int i = 0; i < 5; i++) {
		double t0 = now(), t;

		bytes = plain_read(dir);
		t = now() - t0;
		best_plain = t < best_plain ? t : best_plain;
		t0 = now();
		series = decode_all(dir, 0);
		t = now() - t0;
		best_dec = t < best_dec ? t : best_dec;
		t0 = now();
		decode_all(dir, 1);
		t = now() - t0;
		best_samples = t < best_samples ? t : best_samples;
	}
	if (series < 0)
		return;
	printf("snapshot %s: %" PRId64 " series, %" PRIu64 " bytes\n", dir, series, bytes);
	printf("  plain read()                %8.1f ms  %8.0f MB/s\n", best_plain * 1e3, (double)bytes / best_plain / 1e6);
	printf("  read+CRC+decompress+decode  %8.1f ms  %8.0f MB/s  %6.2f M series/s  %.1fx plain read\n",
	       best_dec * 1e3, (double)bytes / best_dec / 1e6, (double)series / best_dec / 1e6, best_dec / best_plain);
	printf("  ... and every XOR sample    %8.1f ms  %8.0f MB/s  %6.2f M series/s  %.1fx plain read\n",
	       best_samples * 1e3, (double)bytes / best_samples / 1e6, (double)series / best_samples / 1e6,
	       best_samples / best_plain);
}

int main(int argc, char **argv)
{
	bench_crc();
	if (argc > 1)
		bench_read(argv[1]);
	return 0;
}
