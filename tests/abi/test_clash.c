/*
 * test_clash: a host with its own LMDB, LZ4, zstd, xxHash, Snappy and PCRE2
 * symbols, different from the plugin's, loads snaparc.so and uses all of it.
 *
 *   test_clash PLUGIN.so SNAPSHOT_DIR
 *
 * This program defines (and exports: it is linked with -rdynamic) every
 * function of those libraries the plugin calls, each one aborting when
 * called. A plugin that bound any of its references to the host (a shared
 * liblmdb.so, say, whose mdb_* the host's own definitions would shadow)
 * dies here; snaparc.so holds its libraries and binds inside itself. It
 * then archives the bundled snapshot (Snappy-compressed WAL, dictionary
 * training, LZ4, xxHash, LMDB), looks a series up, selects with a regex
 * (PCRE2), restores with zstd and Snappy, and verifies.
 */
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snaparc/plugin.h>

/* ---- the host's own, different, symbols ---- */

static void hostile(const char *name)
{
	char msg[160];
	int n = snprintf(msg, sizeof(msg), "test_clash: the plugin called the host's %s\n", name);

	if (write(2, msg, (size_t)n) < 0) {
		/* nothing more to say */
	}
	abort();
}

#define HOSTILE(name)                       \
	void *name(void *, void *, void *); \
	void *name(void *a, void *b, void *c) \
	{                                   \
		(void)a;                    \
		(void)b;                    \
		(void)c;                    \
		hostile(#name);             \
		return (void *)0x1;         \
	}

/* LMDB */
HOSTILE(mdb_env_create) HOSTILE(mdb_env_open) HOSTILE(mdb_env_close) HOSTILE(mdb_env_set_mapsize)
HOSTILE(mdb_env_set_maxdbs) HOSTILE(mdb_env_set_maxreaders) HOSTILE(mdb_txn_begin) HOSTILE(mdb_txn_commit)
HOSTILE(mdb_txn_abort) HOSTILE(mdb_txn_reset) HOSTILE(mdb_txn_renew) HOSTILE(mdb_dbi_open) HOSTILE(mdb_get)
HOSTILE(mdb_put) HOSTILE(mdb_del) HOSTILE(mdb_cursor_open) HOSTILE(mdb_cursor_close) HOSTILE(mdb_cursor_get)
HOSTILE(mdb_cursor_del) HOSTILE(mdb_strerror) HOSTILE(mdb_env_info) HOSTILE(mdb_env_stat) HOSTILE(mdb_mid2l_insert)
/* LZ4 */
HOSTILE(LZ4_compress_default) HOSTILE(LZ4_decompress_safe) HOSTILE(LZ4_compressBound) HOSTILE(LZ4_initStream)
HOSTILE(LZ4_loadDict) HOSTILE(LZ4_attach_dictionary) HOSTILE(LZ4_resetStream_fast) HOSTILE(LZ4_compress_fast_continue)
HOSTILE(LZ4_decompress_safe_usingDict) HOSTILE(LZ4_compress_fast_extState_fastReset) HOSTILE(LZ4_decompress_safe_partial)
/* zstd */
HOSTILE(ZSTD_compress) HOSTILE(ZSTD_decompress) HOSTILE(ZSTD_compressBound) HOSTILE(ZSTD_compressCCtx)
HOSTILE(ZSTD_createCCtx) HOSTILE(ZSTD_freeCCtx) HOSTILE(ZSTD_createDStream) HOSTILE(ZSTD_freeDStream)
HOSTILE(ZSTD_decompressStream) HOSTILE(ZSTD_findFrameCompressedSize) HOSTILE(ZSTD_getFrameContentSize)
HOSTILE(ZSTD_isError) HOSTILE(ZSTD_getErrorName) HOSTILE(ZDICT_trainFromBuffer_fastCover) HOSTILE(ZDICT_isError)
HOSTILE(ZSTD_trace_compress_begin) HOSTILE(ZSTD_trace_compress_end) HOSTILE(ZSTD_trace_decompress_begin)
HOSTILE(ZSTD_trace_decompress_end)
/* xxHash */
HOSTILE(XXH64) HOSTILE(XXH64_reset) HOSTILE(XXH64_update) HOSTILE(XXH64_digest) HOSTILE(XXH3_64bits)
HOSTILE(XXH32)
/* Snappy */
HOSTILE(snappy_compress) HOSTILE(snappy_uncompress) HOSTILE(snappy_uncompressed_length)
HOSTILE(snappy_max_compressed_length) HOSTILE(snappy_validate_compressed_buffer)
/* PCRE2 */
HOSTILE(pcre2_compile_8) HOSTILE(pcre2_match_8) HOSTILE(pcre2_dfa_match_8) HOSTILE(pcre2_jit_compile_8)
HOSTILE(pcre2_code_free_8) HOSTILE(pcre2_match_data_create_8) HOSTILE(pcre2_match_data_free_8)
HOSTILE(pcre2_compile_context_create_8) HOSTILE(pcre2_compile_context_free_8) HOSTILE(pcre2_set_newline_8)
HOSTILE(pcre2_set_parens_nest_limit_8) HOSTILE(pcre2_get_error_message_8)
/* The C++ runtime the plugin carries for Snappy. Not under AddressSanitizer:
 * its runtime replaces operator new and delete for the whole process (the
 * plugin's included), so there a host's own would stand in too. */
#ifndef __SANITIZE_ADDRESS__
HOSTILE(_Znwm) HOSTILE(_ZdlPv) HOSTILE(_Znam) HOSTILE(_ZdaPv)
#endif
HOSTILE(__cxa_pure_virtual) HOSTILE(__cxa_guard_acquire) HOSTILE(__cxa_guard_release)

/* A function's address as a data pointer, which ISO C does not convert. */
static void *address_of(void *(*fn)(void *, void *, void *))
{
	void *p;

	memcpy(&p, &fn, sizeof(p));
	return p;
}

/* ---- using the plugin ---- */

static const struct snaparc_api *api;
static snaparc_archive *archive;
static int failures;

static void check(int st, const char *what)
{
	char msg[512] = "";

	if (!st)
		return;
	if (archive)
		api->last_error(archive, msg, sizeof(msg));
	fprintf(stderr, "test_clash: %s: %s: %s\n", what, api->strerror(st), msg);
	failures++;
}

static int count_series(void *ctx, const struct snaparc_snapshot_info *snap, const struct snaparc_series *s)
{
	(void)snap;
	(void)s;
	++*(int *)ctx;
	return 0;
}

static int on_problem(void *ctx, int status, const char *message)
{
	(void)ctx;
	fprintf(stderr, "test_clash: verify: %d %s\n", status, message);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) ||
	    !(p = malloc((size_t)n)) || fread(p, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "test_clash: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

int main(int argc, char **argv)
{
	struct snaparc_open_options o = { .size = sizeof(o), .flags = SNAPARC_OPEN_CREATE };
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series s = { .size = sizeof(s) };
	struct snaparc_label ls[4] = {
		{ "__name__", 8, "app_flaky", 9 }, { "id", 2, "0", 1 },
		{ "instance", 8, "127.0.0.1:45825", 15 }, { "job", 3, "synthetic", 9 },
	};
	struct snaparc_restore_options zstd = { .size = sizeof(zstd), .compression = SNAPARC_COMPRESS_ZSTD };
	char tmp[] = "/tmp/snaparc-clash-XXXXXX", path[256], seg[512];
	snaparc_writer *w = NULL;
	snaparc_result *r = NULL;
	snaparc_entry_fn entry;
	const char *why = NULL;
	void *so, *sym, *mine;
	uint8_t *bytes;
	size_t len;
	int n = 0, st;

	if (argc != 3) {
		fprintf(stderr, "usage: test_clash PLUGIN.so SNAPSHOT_DIR\n");
		return 2;
	}
	/* The host's definitions are what the global scope offers: a plugin
	 * that looked its libraries up there would get them. */
	mine = dlsym(RTLD_DEFAULT, "mdb_env_create");
	if (!mine || mine != address_of(mdb_env_create) ||
	    dlsym(RTLD_DEFAULT, "LZ4_decompress_safe_usingDict") != address_of(LZ4_decompress_safe_usingDict)) {
		fprintf(stderr, "test_clash: the host's symbols are not exported (link with -rdynamic)\n");
		return 1;
	}

	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "test_clash: dlopen: %s\n", dlerror());
		return 1;
	}
	if (!(sym = dlsym(so, SNAPARC_ENTRY_SYMBOL))) {
		fprintf(stderr, "test_clash: dlsym: %s\n", dlerror());
		return 1;
	}
	memcpy(&entry, &sym, sizeof(entry));
	if (!(api = entry(SNAPARC_ABI_VERSION, &why))) {
		fprintf(stderr, "test_clash: refused: %s\n", why);
		return 1;
	}
	/* and the plugin's own stay out of the host's way: neither it nor the
	 * libraries it loads offer an mdb_env_create or LZ4 of their own */
	if (dlsym(RTLD_DEFAULT, "mdb_env_create") != mine || dlsym(so, "mdb_env_create") ||
	    dlsym(so, "LZ4_compress_fast_continue") || dlsym(so, "archive_open") || dlsym(so, "idx_open")) {
		fprintf(stderr, "test_clash: the plugin's own symbols are visible from outside\n");
		failures++;
	}

	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/archive", tmp);
	check(api->open(&archive, path, &o), "open");
	if (!archive)
		goto out;

	/* snapshot 1 from memory: Snappy, dictionary training, LZ4, xxHash, LMDB */
	snprintf(seg, sizeof(seg), "%s/00000000", argv[2]);
	bytes = slurp(seg, &len);
	check(api->begin(archive, "from-memory", len, &w), "begin");
	for (size_t off = 0, piece = 1000; w && off < len; off += piece, piece = piece * 3 % 50000 + 1) {
		size_t k = piece < len - off ? piece : len - off;
		int put = api->put_wal(w, bytes + off, k, off + k == len);
		check(put, "put_wal");
		if (put)
			api->abort(&w);
	}
	free(bytes);
	if (w)
		check(api->commit(&w, &info), "commit");
	/* snapshot 2 from the directory */
	check(api->import(archive, argv[2], NULL, &info, NULL, NULL), "import");
	printf("archived %s: %llu series\n", info.name, (unsigned long long)info.series);

	check(api->result_new(&r), "result_new");
	st = api->read_labels(archive, "from-memory", ls, 4, r, &s);
	check(st, "read_labels");
	if (!st)
		printf("read back: ref %llu, %u samples\n", (unsigned long long)s.ref,
		       s.chunk_len >= 2 ? (unsigned)(s.chunk[0] << 8 | s.chunk[1]) : 0);
	if (!st && (s.nlabels != 4 || s.chunk_len < 2 || (s.chunk[0] << 8 | s.chunk[1]) != 29)) {
		fprintf(stderr, "test_clash: app_flaky{id=\"0\"} read back wrong\n");
		failures++;
	}
	st = api->select(archive, "latest", "app_requests_total{shard=~\"[0-3]\", job=~\"synth.*\"}", count_series, &n);
	check(st, "select");
	printf("selected %d series\n", n);
	if (!st && n == 0) {
		fprintf(stderr, "test_clash: the regex selector matched nothing\n");
		failures++;
	}
	snprintf(path, sizeof(path), "%s/restored-zstd", tmp);
	check(api->restore(archive, "latest", NULL, path, &zstd, NULL), "restore (zstd)");
	snprintf(path, sizeof(path), "%s/restored-snappy", tmp);
	check(api->restore(archive, "from-memory", "app_flaky", path, NULL, NULL), "restore (snappy, selected)");
	check(api->verify(archive, on_problem, NULL, NULL, NULL), "verify");
out:
	if (r)
		api->result_free(&r);
	if (archive)
		api->close(&archive);
	dlclose(so);
	nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (failures)
		return 1;
	printf("ok: the plugin used none of the host's LMDB, LZ4, zstd, xxHash, Snappy, PCRE2 or C++ runtime\n");
	return 0;
}
