/*
 * lz4dict_seeds: seeds for fuzz_lz4dict (make-corpus.sh runs it).
 *
 *   lz4dict_seeds OUTDIR RECORD...
 *
 * For each RECORD file (a decompressed snapshot record) writes three inputs
 * in fuzz_lz4dict's layout: its payload as the archive stores it, compressed
 * against a dictionary made of the records before it (up to 64 KiB - 1,
 * what the layout's length can say), compressed without one, and the record
 * itself after that dictionary, for the round trip of a record against a
 * dictionary that does not hold it. Records LZ4 does not shrink go in plain,
 * for the round trip only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "lz4dict.h"

#define DICT_MAX (LZ4DICT_MAX - 1)
#define DICT_ID 7

static int read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	uint8_t chunk[65536];
	size_t n;

	if (!f) {
		perror(path);
		return -1;
	}
	buf_reset(b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_put(b, chunk, n);
	fclose(f);
	return b->oom ? -1 : 0;
}

/* flags, le16 dictionary length, le32 id, dictionary, payload */
static int write_seed(const char *dir, const char *name, const uint8_t *dict, size_t dict_len,
		      const struct buf *payload)
{
	uint8_t head[7] = { 0, (uint8_t)dict_len, (uint8_t)(dict_len >> 8), DICT_ID, 0, 0, 0 };
	char path[4200];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	ok = fwrite(head, 1, sizeof(head), f) == sizeof(head) &&
	     (!dict_len || fwrite(dict, 1, dict_len, f) == dict_len) &&
	     (!payload->len || fwrite(payload->p, 1, payload->len, f) == payload->len);
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct buf history = { 0 }, rec = { 0 }, payload = { 0 };
	struct lz4dict_enc *with = NULL, *without = NULL;
	struct err e = { 0 };
	char name[64];
	int written = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: lz4dict_seeds OUTDIR RECORD...\n");
		return 2;
	}
	if (lz4dict_enc_new(&without, DICT_ID, NULL, 0, &e)) {
		fprintf(stderr, "lz4dict_seeds: %s\n", e.msg);
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		const uint8_t *dict = history.p;
		size_t dict_len = history.len > DICT_MAX ? DICT_MAX : history.len;
		int rc;

		if (read_file(argv[i], &rec))
			return 1;
		if (dict_len)
			dict = history.p + history.len - dict_len;
		lz4dict_enc_free(with);
		with = NULL;
		if (lz4dict_enc_new(&with, DICT_ID, dict, dict_len, &e)) {
			fprintf(stderr, "lz4dict_seeds: %s\n", e.msg);
			return 1;
		}
		buf_reset(&payload);
		if ((rc = lz4dict_compress(with, rec.p, rec.len, &payload)) < 0)
			return 1;
		if (rc == 0)
			buf_put(&payload, rec.p, rec.len);
		snprintf(name, sizeof(name), "dict-%04d", i - 2);
		if (write_seed(argv[1], name, dict, dict_len, &payload))
			return 1;
		snprintf(name, sizeof(name), "raw-%04d", i - 2);
		if (write_seed(argv[1], name, dict, dict_len, &rec))
			return 1;
		buf_reset(&payload);
		if ((rc = lz4dict_compress(without, rec.p, rec.len, &payload)) < 0)
			return 1;
		if (rc == 0)
			buf_put(&payload, rec.p, rec.len);
		snprintf(name, sizeof(name), "nodict-%04d", i - 2);
		if (write_seed(argv[1], name, NULL, 0, &payload))
			return 1;
		written += 3;
		buf_put(&history, rec.p, rec.len);
		if (history.oom)
			return 1;
	}
	lz4dict_enc_free(with);
	lz4dict_enc_free(without);
	buf_free(&history);
	buf_free(&rec);
	buf_free(&payload);
	printf("%d\n", written);
	return 0;
}
