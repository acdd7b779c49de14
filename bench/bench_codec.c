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
#include "lz4dict.h"
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

/* Loads every record of a snapshot into one buffer (records end to end). */
static int load_records(const char *dir, struct buf *all, struct buf *sizes, uint64_t *stored)
{
	struct wal_reader *r;
	struct wal_record rec;
	struct err e;
	int rc;

	if (wal_reader_open_dir(&r, dir, NULL, &e))
		return -1;
	*stored = 0;
	while ((rc = wal_reader_next(r, &rec, &e)) == 1) {
		buf_put(all, rec.data, rec.len);
		buf_put(sizes, &rec.len, sizeof(size_t));
		*stored += rec.stored_len;
	}
	wal_reader_close(r);
	return rc;
}

/*
 * The same dictionary, series records recoded first (as compaction stores
 * them): bytes, and the time to store and to read every record, payloads
 * kept so that reading is timed alone.
 */
static void bench_recoded(const struct buf *all, const size_t *sz, size_t n, const uint8_t *dict, size_t dict_len,
			  uint64_t plain)
{
	struct buf payloads = { 0 }, lens = { 0 }, back = { 0 };
	struct lz4dict_enc *c;
	struct err e;
	uint64_t bytes = 0;
	size_t off = 0, recoded = 0;
	double t0, comp_t, dec_t;

	if (lz4dict_enc_new(&c, 1, dict, dict_len, &e))
		return;
	lz4dict_enc_recode(c, 1);
	t0 = now();
	for (size_t i = 0; i < n; i++, off += sz[i - 1]) {
		size_t before = payloads.len;
		int z = lz4dict_compress(c, all->p + off, sz[i], &payloads);

		if (z != 1)
			buf_put(&payloads, all->p + off, sz[i]);
		bytes += payloads.len - before;
		buf_put(&lens, &(size_t){ z == 1 ? payloads.len - before : 0 }, sizeof(size_t));
	}
	comp_t = now() - t0;
	off = 0;
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		size_t len = ((const size_t *)lens.p)[i];

		uint32_t id;
		size_t held, hdr;

		if (len && !lz4dict_decompress(payloads.p + off, len, dict, dict_len, &back, &e) &&
		    !lz4dict_header(payloads.p + off, len, &id, &held, &hdr, &e))
			recoded += held != back.len;   /* the block held the record recoded */
		off += len ? len : sz[i];
	}
	dec_t = now() - t0;
	printf("  LZ4 + dictionary, recoded      %10" PRIu64 " bytes  %5.1f%% of raw  %5.1f%% of the above\n", bytes,
	       100.0 * (double)bytes / (double)all->len, 100.0 * (double)bytes / (double)plain);
	printf("    store %5.2f us a record, read %5.2f us a record (%zu of them recoded)\n", comp_t * 1e6 / (double)n,
	       dec_t * 1e6 / (double)n, recoded);
	lz4dict_enc_free(c);
	buf_free(&payloads);
	buf_free(&lens);
	buf_free(&back);
}

/* LZ4 against a dictionary trained on the first 4 MiB of records. */
static void bench_lz4dict(const char *path)
{
	struct buf all = { 0 }, sizes = { 0 }, out = { 0 }, back = { 0 };
	uint8_t dict[LZ4DICT_MAX];
	size_t dict_len, n, train_n = 0, train_bytes = 0, off = 0;
	const size_t *sz;
	struct lz4dict_enc *c;
	uint64_t stored, packed = 0;
	char dir[4096];
	struct err e;
	double t0, train_t, comp_t, dec_t;

	if (snapdir_resolve(path, dir, sizeof(dir), &e) || load_records(dir, &all, &sizes, &stored))
		return;
	sz = (const size_t *)sizes.p;
	n = sizes.len / sizeof(size_t);
	while (train_n < n && train_bytes + sz[train_n] <= (4u << 20))
		train_bytes += sz[train_n++];
	t0 = now();
	lz4dict_train(dict, sizeof(dict), &dict_len, all.p, sz, (unsigned)train_n, &e);
	train_t = now() - t0;
	lz4dict_enc_new(&c, 1, dict, dict_len, &e);
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		size_t before = out.len;

		if (lz4dict_compress(c, all.p + off, sz[i], &out) != 1)
			buf_put(&out, all.p + off, sz[i]);
		packed += out.len - before;
		off += sz[i];
		out.len = 0;
	}
	comp_t = now() - t0;
	/* decompression, record by record */
	off = 0;
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		buf_reset(&out);
		if (lz4dict_compress(c, all.p + off, sz[i], &out) == 1)
			lz4dict_decompress(out.p, out.len, dict, dict_len, &back, &e);
		off += sz[i];
	}
	dec_t = now() - t0 - comp_t;
	printf("lz4dict: %zu records, %zu raw bytes; dictionary %zu bytes trained on %zu records in %.0f ms\n",
	       n, all.len, dict_len, train_n, train_t * 1e3);
	printf("  stored by Prometheus (Snappy)  %10" PRIu64 " bytes  %5.1f%% of raw\n", stored,
	       100.0 * (double)stored / (double)all.len);
	printf("  LZ4 + dictionary               %10" PRIu64 " bytes  %5.1f%% of raw  %5.1f%% of Snappy\n",
	       packed, 100.0 * (double)packed / (double)all.len, 100.0 * (double)packed / (double)stored);
	printf("  compress   %7.0f MB/s  %5.2f M records/s\n", (double)all.len / comp_t / 1e6, (double)n / comp_t / 1e6);
	printf("  decompress %7.0f MB/s  (approx.: includes a second compression)\n", (double)all.len / (dec_t > 0 ? dec_t : 1e-9) / 1e6);
	lz4dict_enc_free(c);
	bench_recoded(&all, sz, n, dict, dict_len, packed);
	buf_free(&all);
	buf_free(&sizes);
	buf_free(&out);
	buf_free(&back);
}

int main(int argc, char **argv)
{
	bench_crc();
	if (argc > 1) {
		bench_read(argv[1]);
		bench_lz4dict(argv[1]);
	}
	return 0;
}
