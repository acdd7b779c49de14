/*
 * The archive's LMDB index (index/idx.[ch]), through its own API, with raw
 * LMDB only to look at (or damage) what it wrote.
 *
 * - Opening: a directory without an index is SNAPARC_NOT_FOUND and stays as
 *   it was unless IDX_CREATE; a new index holds the format record (u32 2,
 *   big-endian) and its eight named databases; another format is
 *   SNAPARC_VERSION; a read-only open reads and refuses to write.
 * - meta: the committed end and the dictionaries round-trip exactly; an
 *   aborted transaction changes nothing; a reader keeps its snapshot of the
 *   index until it renews.
 * - catalog: every field of an entry round-trips; by id, by name, last and
 *   next follow id order (big-endian keys); a name is unique.
 * - series: 10,000 locations with random sparse refs are found exactly,
 *   and every ref around them (between two, below the first, above the last,
 *   in another snapshot) is SNAPARC_NOT_FOUND; snapshots do not mix.
 * - hashes: every ref whose hash shares the top 32 bits, across block
 *   boundaries and at both ends of a snapshot's table, with neighbouring
 *   snapshots holding the same prefixes, and nothing else.
 * - both tables written in several calls of whole blocks (and an empty one)
 *   are, byte for byte, those one call writes.
 * - the map: a tiny map fills, the commit says SNAPARC_NOMEM, and the same
 *   writes then fit in a new transaction because the map grew.
 *
 * Every test works in its own mkdtemp() directory.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "bytes.h"
#include "idx.h"
#include "support.h"

/* ---- fixtures and helpers ---- */

static char tmpdir[64];
static char ixdir[128];

static void setup(void)
{
	support_tmpdir(tmpdir, sizeof(tmpdir), "idx");
	snprintf(ixdir, sizeof(ixdir), "%s/index", tmpdir);
}

static void teardown(void)
{
	support_rm_tree(tmpdir);
}

TestSuite(idx_open, .init = setup, .fini = teardown);
TestSuite(idx_meta, .init = setup, .fini = teardown);
TestSuite(idx_catalog, .init = setup, .fini = teardown);
TestSuite(idx_series, .init = setup, .fini = teardown);
TestSuite(idx_hashes, .init = setup, .fini = teardown);
TestSuite(idx_side, .init = setup, .fini = teardown);
TestSuite(idx_map, .init = setup, .fini = teardown);

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static struct idx *open_new(void)
{
	struct idx_opts o = { .flags = IDX_CREATE };
	struct idx *x = NULL;
	struct err e = { 0 };

	cr_assert_eq(idx_open(&x, ixdir, &o, &e), 0, "%s", e.msg);
	cr_assert_not_null(x);
	return x;
}

static struct idx_txn *wbegin(struct idx *x)
{
	struct idx_txn *t = NULL;
	struct err e = { 0 };

	cr_assert_eq(idx_write_begin(x, &t, &e), 0, "%s", e.msg);
	return t;
}

static struct idx_txn *rbegin(struct idx *x)
{
	struct idx_txn *t = NULL;
	struct err e = { 0 };

	cr_assert_eq(idx_read_begin(x, &t, &e), 0, "%s", e.msg);
	return t;
}

static void commit(struct idx_txn *t)
{
	struct err e = { 0 };

	cr_assert_eq(idx_commit(t, &e), 0, "%s", e.msg);
}

/* splitmix64: the same pseudo-random numbers on every run */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	return support_rand(&rng_state);
}

/* ---- opening ---- */

Test(idx_open, missing_index_without_create_is_not_found_and_makes_nothing)
{
	struct idx_opts plain = { 0 }, ro = { .flags = IDX_RDONLY };
	struct idx *x = NULL;
	struct err e = { 0 };

	cr_assert_eq(idx_open(&x, ixdir, &plain, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_null(x);
	cr_assert_not(exists(ixdir), "idx_open without IDX_CREATE made %s", ixdir);
	cr_assert_eq(idx_open(&x, ixdir, NULL, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(idx_open(&x, ixdir, &ro, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_not(exists(ixdir));

	/* an existing, empty directory stays empty */
	cr_assert_eq(mkdir(ixdir, 0777), 0);
	cr_assert_eq(idx_open(&x, ixdir, &plain, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(idx_open(&x, ixdir, &ro, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert_eq(count_entries(ixdir), 0, "idx_open without IDX_CREATE wrote into %s", ixdir);
	cr_assert_null(x);
}

Test(idx_open, create_writes_format_record_and_eight_databases)
{
	static const char *const dbs[] = { "meta", "snapshots", "names", "series", "hashes",
					   "tombstones", "exemplars", "others" };
	struct idx *x = open_new();
	char data[200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, (void *)"format" }, v;

	idx_close(x);
	snprintf(data, sizeof(data), "%s/data.mdb", ixdir);
	cr_assert(exists(data), "no %s", data);

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_RDONLY | MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		cr_assert_eq(mdb_dbi_open(txn, dbs[i], 0, &dbi), 0, "no '%s' database", dbs[i]);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0, "no format record");
	cr_assert_eq(v.mv_size, 4);
	cr_assert_eq(memcmp(v.mv_data, "\x00\x00\x00\x04", 4), 0, "format record is not big-endian 4");
	cr_assert_eq(IDX_FORMAT, 4);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

Test(idx_open, reopen_without_create_finds_an_empty_index)
{
	struct idx_opts plain = { 0 };
	struct idx *x = open_new();
	struct idx_txn *t;
	struct idx_pos end = { 9, 9 };
	struct idx_snapshot s;
	struct err e = { 0 };
	uint32_t id = 77;

	idx_close(x);
	x = NULL;
	cr_assert_eq(idx_open(&x, ixdir, &plain, &e), 0, "%s", e.msg);
	t = rbegin(x);
	cr_assert_eq(idx_end_get(t, &end, &e), 0, "%s", e.msg);
	cr_assert_eq(end.segment, 0);
	cr_assert_eq(end.offset, 0);
	cr_assert_eq(idx_dict_last(t, &id, &e), 0, "%s", e.msg);
	cr_assert_eq(id, 0);
	cr_assert_eq(idx_snapshot_last(t, &s, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_snapshot_next(t, 0, &s, &e), SNAPARC_NOT_FOUND);
	idx_abort(t);
	idx_close(x);
}

/* Byte i of the value under key in database db, read with LMDB itself. */
static int raw_byte(const char *db, const void *key, size_t klen, size_t i)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { klen, (void *)key }, v;
	int b;

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_RDONLY | MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0, "no such key in %s", db);
	cr_assert_gt(v.mv_size, i);
	b = ((const uint8_t *)v.mv_data)[i];
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return b;
}

static int raw_first_byte(const char *db, const void *key, size_t klen)
{
	return raw_byte(db, key, klen, 0);
}

/* Writes meta's format record as an older or other snaparc would. */
static void put_format(const char *be32)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 6, (void *)"format" }, v = { 4, (void *)be32 };

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

Test(idx_open, other_format_is_version_error)
{
	struct idx *x = open_new();
	struct err e = { 0 };

	idx_close(x);
	x = NULL;
	put_format("\x00\x00\x00\x01");

	cr_assert_eq(idx_open(&x, ixdir, NULL, &e), SNAPARC_VERSION, "%s", e.msg);
	cr_assert_null(x);
	cr_assert(strstr(e.msg, "format 1"), "message does not name the format: %s", e.msg);
}

Test(idx_open, lmdb_environment_without_snaparc_databases_is_refused_read_only)
{
	struct idx_opts ro = { .flags = IDX_RDONLY };
	struct idx *x = NULL;
	struct err e = { 0 };
	MDB_env *env;
	MDB_txn *txn;

	MDB_dbi dbi;
	MDB_val k = { 5, (void *)"hello" }, v = { 5, (void *)"world" };

	cr_assert_eq(mkdir(ixdir, 0777), 0);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_NOTLS, 0644), 0);
	/* a made environment, never committed to, is no index at all */
	mdb_env_close(env);
	cr_assert_eq(idx_open(&x, ixdir, &ro, &e), SNAPARC_NOT_FOUND, "%s", e.msg);
	cr_assert(strstr(e.msg, "none was ever committed"), "%s", e.msg);

	/* one that holds someone else's data is not a snaparc index */
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	cr_assert_eq(idx_open(&x, ixdir, &ro, &e), SNAPARC_CORRUPT, "%s", e.msg);
	cr_assert(strstr(e.msg, "not a snaparc index"), "%s", e.msg);
}

Test(idx_open, read_only_open_reads_and_refuses_to_write)
{
	struct idx_opts ro = { .flags = IDX_RDONLY };
	struct idx *x = open_new();
	struct idx_txn *t;
	struct idx_pos end = { 12, 345678 }, got;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_end_put(t, &end, &e), 0, "%s", e.msg);
	commit(t);
	idx_close(x);

	x = NULL;
	cr_assert_eq(idx_open(&x, ixdir, &ro, &e), 0, "%s", e.msg);
	t = rbegin(x);
	cr_assert_eq(idx_end_get(t, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.segment, 12);
	cr_assert_eq(got.offset, 345678);
	idx_abort(t);
	t = NULL;
	cr_assert_eq(idx_write_begin(x, &t, &e), SNAPARC_INVALID, "%s", e.msg);
	cr_assert_null(t);
	cr_assert(strstr(e.msg, "read-only"), "%s", e.msg);
	idx_close(x);
}

/* ---- meta ---- */

Test(idx_meta, committed_end_round_trips_and_abort_keeps_the_old_one)
{
	struct idx *x = open_new();
	struct idx_pos end = { 0xfffffffeu, UINT64_C(0x0123456789abcdef) }, other = { 1, 2 }, got;
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_end_put(t, &end, &e), 0, "%s", e.msg);
	/* the writer sees its own write before it commits */
	cr_assert_eq(idx_end_get(t, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.segment, end.segment);
	commit(t);

	t = wbegin(x);
	cr_assert_eq(idx_end_put(t, &other, &e), 0, "%s", e.msg);
	idx_abort(t);

	t = rbegin(x);
	cr_assert_eq(idx_end_get(t, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.segment, 0xfffffffeu);
	cr_assert_eq(got.offset, UINT64_C(0x0123456789abcdef));
	idx_abort(t);
	idx_close(x);
}

Test(idx_meta, reader_keeps_its_view_until_renewed)
{
	struct idx *x = open_new();
	struct idx_pos a = { 1, 100 }, b = { 2, 200 }, got;
	struct idx_txn *t, *r;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_end_put(t, &a, &e), 0, "%s", e.msg);
	commit(t);
	r = rbegin(x);
	t = wbegin(x);
	cr_assert_eq(idx_end_put(t, &b, &e), 0, "%s", e.msg);
	commit(t);

	cr_assert_eq(idx_end_get(r, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.segment, 1, "a reader saw a commit made after it began");
	cr_assert_eq(got.offset, 100);
	idx_read_reset(r);
	cr_assert_eq(idx_read_renew(r, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_end_get(r, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.segment, 2);
	cr_assert_eq(got.offset, 200);
	idx_abort(r);
	idx_close(x);
}

Test(idx_meta, dictionaries_put_get_last)
{
	struct idx *x = open_new();
	static uint8_t big[65536];
	const uint32_t ids[] = { 1, 2, 300, 70000 };
	const uint8_t *p;
	size_t len;
	uint32_t last = 0;
	struct idx_txn *t;
	struct err e = { 0 };
	struct idx_pos end = { 5, 5 };

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31 + 7);
	t = wbegin(x);
	cr_assert_eq(idx_dict_last(t, &last, &e), 0, "%s", e.msg);
	cr_assert_eq(last, 0);
	/* "end" and "format" live beside the dictionaries in meta */
	cr_assert_eq(idx_end_put(t, &end, &e), 0, "%s", e.msg);
	for (size_t i = 0; i < 4; i++) {
		/* each one distinct: its id's bytes then the pattern, a different length each */
		size_t n = 1000 + i * 20000;

		be32_put(big, ids[i]);
		cr_assert_eq(idx_dict_put(t, ids[i], big, n, &e), 0, "dict %u: %s", ids[i], e.msg);
	}
	cr_assert_eq(idx_dict_put(t, 2, big, 10, &e), SNAPARC_EXISTS, "a dictionary id was overwritten");
	commit(t);

	t = rbegin(x);
	cr_assert_eq(idx_dict_last(t, &last, &e), 0, "%s", e.msg);
	cr_assert_eq(last, 70000, "highest id %u, not 70000 (keys must sort big-endian)", last);
	for (size_t i = 0; i < 4; i++) {
		size_t n = 1000 + i * 20000;

		cr_assert_eq(idx_dict_get(t, ids[i], &p, &len, &e), 0, "dict %u: %s", ids[i], e.msg);
		cr_assert_eq(len, n, "dict %u: %zu bytes, not %zu", ids[i], len, n);
		cr_assert_eq(be32_get(p), ids[i]);
		cr_assert_eq(memcmp(p + 4, big + 4, n - 4), 0, "dict %u: bytes differ", ids[i]);
	}
	/* a dictionary a snapshot names but the index lacks is damage, not absence */
	cr_assert_eq(idx_dict_get(t, 3, &p, &len, &e), SNAPARC_CORRUPT, "%s", e.msg);
	idx_abort(t);
	idx_close(x);
}

/* ---- catalog ---- */

static struct idx_snapshot make_snapshot(uint32_t id, const char *name)
{
	struct idx_snapshot s;

	memset(&s, 0, sizeof(s));
	s.id = id;
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.imported_ms = 1795474429000 + id;
	s.mint = -5000 - (int64_t)id;
	s.maxt = INT64_MAX - id;
	s.series = 545 + id;
	s.tombstones = 25 * id;
	s.exemplars = 232 + id;
	s.records = UINT64_MAX - id;
	s.source_bytes = 196608ull << 20 | id;
	s.raw_bytes = 213985 + id;
	s.stored_bytes = 103539 + id;
	s.dict_id = 0x01020304u + id;
	s.start.segment = id;
	s.start.offset = UINT64_C(0x1122334455667788) + id;
	s.end.segment = 0xfffffff0u + id % 8;
	s.end.offset = UINT64_C(0x8877665544332211) - id;
	return s;
}

static void assert_snapshot_eq(const struct idx_snapshot *got, const struct idx_snapshot *want)
{
	cr_assert_eq(got->id, want->id);
	cr_assert_str_eq(got->name, want->name);
	cr_assert_eq(got->imported_ms, want->imported_ms, "snapshot %u: imported_ms", want->id);
	cr_assert_eq(got->mint, want->mint, "snapshot %u: mint", want->id);
	cr_assert_eq(got->maxt, want->maxt, "snapshot %u: maxt", want->id);
	cr_assert_eq(got->series, want->series, "snapshot %u: series", want->id);
	cr_assert_eq(got->tombstones, want->tombstones, "snapshot %u: tombstones", want->id);
	cr_assert_eq(got->exemplars, want->exemplars, "snapshot %u: exemplars", want->id);
	cr_assert_eq(got->records, want->records, "snapshot %u: records", want->id);
	cr_assert_eq(got->source_bytes, want->source_bytes, "snapshot %u: source_bytes", want->id);
	cr_assert_eq(got->raw_bytes, want->raw_bytes, "snapshot %u: raw_bytes", want->id);
	cr_assert_eq(got->stored_bytes, want->stored_bytes, "snapshot %u: stored_bytes", want->id);
	cr_assert_eq(got->dict_id, want->dict_id, "snapshot %u: dict_id", want->id);
	cr_assert_eq(got->start.segment, want->start.segment, "snapshot %u: start.segment", want->id);
	cr_assert_eq(got->start.offset, want->start.offset, "snapshot %u: start.offset", want->id);
	cr_assert_eq(got->end.segment, want->end.segment, "snapshot %u: end.segment", want->id);
	cr_assert_eq(got->end.offset, want->end.offset, "snapshot %u: end.offset", want->id);
}

Test(idx_catalog, entries_round_trip_and_follow_id_order)
{
	/* ids whose little-endian bytes would sort differently */
	const uint32_t ids[] = { 65536, 1, 256, 2, 0xfffffffeu };
	const uint32_t sorted[] = { 1, 2, 256, 65536, 0xfffffffeu };
	char longname[IDX_NAME_MAX + 1];
	struct idx *x = open_new();
	struct idx_snapshot want[5], got;
	struct idx_txn *t;
	struct err e = { 0 };
	uint32_t after = 0;
	size_t n = 0;

	memset(longname, 'n', IDX_NAME_MAX);
	longname[IDX_NAME_MAX] = '\0';
	t = wbegin(x);
	for (size_t i = 0; i < 5; i++) {
		char name[64];

		snprintf(name, sizeof(name), "chunk_snapshot.%06u.%010u", ids[i], ids[i] * 7u);
		want[i] = make_snapshot(ids[i], i == 4 ? longname : name);
		cr_assert_eq(idx_snapshot_put(t, &want[i], &e), 0, "%s", e.msg);
	}
	commit(t);

	t = rbegin(x);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(idx_snapshot_get(t, ids[i], &got, &e), 0, "%s", e.msg);
		assert_snapshot_eq(&got, &want[i]);
		cr_assert_eq(idx_snapshot_by_name(t, want[i].name, &got, &e), 0, "%s", e.msg);
		assert_snapshot_eq(&got, &want[i]);
	}
	cr_assert_eq(idx_snapshot_last(t, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 0xfffffffeu);
	assert_snapshot_eq(&got, &want[4]);
	while (idx_snapshot_next(t, after, &got, &e) == 0) {
		cr_assert_lt(n, 5);
		cr_assert_eq(got.id, sorted[n], "snapshot %zu in order is %u, not %u", n, got.id, sorted[n]);
		after = got.id;
		n++;
	}
	cr_assert_eq(n, 5);
	cr_assert_eq(idx_snapshot_next(t, 0xfffffffeu, &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_snapshot_next(t, UINT32_MAX, &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_snapshot_next(t, 2, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 256);
	cr_assert_eq(idx_snapshot_get(t, 3, &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_snapshot_get(t, 0, &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_snapshot_by_name(t, "chunk_snapshot.000003.0000000021", &got, &e), SNAPARC_NOT_FOUND);
	/* a name is matched whole, not as a prefix */
	cr_assert_eq(idx_snapshot_by_name(t, "chunk_snapshot.000001", &got, &e), SNAPARC_NOT_FOUND);
	idx_abort(t);
	idx_close(x);
}

Test(idx_catalog, duplicate_name_is_exists_and_changes_nothing)
{
	struct idx *x = open_new();
	struct idx_snapshot a = make_snapshot(1, "chunk_snapshot.000000.0000163840");
	struct idx_snapshot b = make_snapshot(2, "chunk_snapshot.000000.0000163840");
	struct idx_snapshot got;
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_snapshot_put(t, &a, &e), 0, "%s", e.msg);
	commit(t);

	t = wbegin(x);
	cr_assert_eq(idx_snapshot_put(t, &b, &e), SNAPARC_EXISTS, "%s", e.msg);
	cr_assert(strstr(e.msg, "chunk_snapshot.000000.0000163840"), "message lacks the name: %s", e.msg);
	commit(t);

	t = rbegin(x);
	cr_assert_eq(idx_snapshot_get(t, 2, &got, &e), SNAPARC_NOT_FOUND, "the refused entry was written");
	cr_assert_eq(idx_snapshot_by_name(t, a.name, &got, &e), 0, "%s", e.msg);
	assert_snapshot_eq(&got, &a);
	cr_assert_eq(idx_snapshot_last(t, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.id, 1);
	idx_abort(t);

	/* in one transaction too */
	b = make_snapshot(3, "x");
	a = make_snapshot(4, "x");
	t = wbegin(x);
	cr_assert_eq(idx_snapshot_put(t, &b, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_snapshot_put(t, &a, &e), SNAPARC_EXISTS, "%s", e.msg);
	commit(t);
	t = rbegin(x);
	cr_assert_eq(idx_snapshot_by_name(t, "x", &got, &e), 0, "%s", e.msg);
	assert_snapshot_eq(&got, &b);
	cr_assert_eq(idx_snapshot_get(t, 4, &got, &e), SNAPARC_NOT_FOUND);
	idx_abort(t);
	idx_close(x);
}

Test(idx_catalog, empty_name_is_invalid)
{
	struct idx *x = open_new();
	struct idx_snapshot s = make_snapshot(1, "");
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_snapshot_put(t, &s, &e), SNAPARC_INVALID, "an empty name was accepted");
	idx_abort(t);
	idx_close(x);
}

/* ---- series ---- */

static struct idx_loc *random_locs(size_t n, uint64_t first_ref, uint64_t seed)
{
	struct idx_loc *l = calloc(n, sizeof(*l));
	uint64_t ref = first_ref;

	cr_assert_not_null(l);
	rng_state = seed;
	for (size_t i = 0; i < n; i++) {
		uint64_t r = rnd();

		if (i)
			/* mostly small gaps of at least 2 (room for a ref between), now and then a huge one */
			ref += r % 97 == 0 ? (UINT64_C(1) << 40) + r % 1000 : 2 + r % 500;
		l[i].ref = ref;
		l[i].segment = r % 13 == 0 ? 0xffffffffu - (uint32_t)(r % 7) : (uint32_t)(r >> 40) % 200;
		l[i].offset = r % 11 == 0 ? r >> 8 : (r >> 20) % (128u << 20);
		l[i].span = r % 17 == 0 ? 0xffffffffu : 8 + (uint32_t)(rnd() % 40000);
	}
	return l;
}

static void assert_loc(struct idx_txn *t, uint32_t snap, const struct idx_loc *want)
{
	struct idx_loc got;
	struct err e = { 0 };

	memset(&got, 0xa5, sizeof(got));
	cr_assert_eq(idx_series_get(t, snap, want->ref, &got, &e), 0, "snapshot %u ref %llu: %s", snap,
		     (unsigned long long)want->ref, e.msg);
	cr_assert_eq(got.ref, want->ref);
	cr_assert_eq(got.segment, want->segment, "ref %llu: segment %u, not %u", (unsigned long long)want->ref,
		     got.segment, want->segment);
	cr_assert_eq(got.offset, want->offset, "ref %llu: offset %llu, not %llu", (unsigned long long)want->ref,
		     (unsigned long long)got.offset, (unsigned long long)want->offset);
	cr_assert_eq(got.span, want->span, "ref %llu: span %u, not %u", (unsigned long long)want->ref, got.span,
		     want->span);
	cr_assert_eq(got.cut, want->cut, "ref %llu: cut %u, not %u", (unsigned long long)want->ref, got.cut,
		     want->cut);
}

static void assert_no_ref(struct idx_txn *t, uint32_t snap, uint64_t ref)
{
	struct idx_loc got;
	struct err e = { 0 };
	int rc = idx_series_get(t, snap, ref, &got, &e);

	cr_assert_eq(rc, SNAPARC_NOT_FOUND, "snapshot %u ref %llu: got %d (%s), wanted not found", snap,
		     (unsigned long long)ref, rc, rc ? e.msg : "found");
}

Test(idx_series, ten_thousand_sparse_refs_found_exactly_and_nothing_between)
{
	enum { N = 10000, NB = 700 };
	struct idx *x = open_new();
	struct idx_loc *l = random_locs(N, 1000 + 17, 42);
	struct idx_loc *before = random_locs(NB, 1, 7), *after = random_locs(NB, 3, 8);
	struct idx_txn *t;
	struct err e = { 0 };

	/* snapshots 6 and 8 hold refs just off snapshot 7's: a mixed-up lookup finds them */
	for (size_t i = 0; i < NB; i++) {
		before[i].ref = l[i * 14].ref + 1;
		after[i].ref = l[i * 14 + 1].ref - 1;
	}
	before[0].ref = 1; /* and below snapshot 7's first ref */
	after[NB - 1].ref = l[N - 1].ref + 5; /* and above its last */
	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 7, l, N, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_series_put(t, 6, before, NB, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_series_put(t, 8, after, NB, &e), 0, "%s", e.msg);
	commit(t);

	t = rbegin(x);
	for (size_t i = 0; i < N; i++)
		assert_loc(t, 7, &l[i]);
	for (size_t i = 0; i + 1 < N; i++) {
		assert_no_ref(t, 7, l[i].ref + 1);
		assert_no_ref(t, 7, l[i + 1].ref - 1);
		assert_no_ref(t, 7, l[i].ref + (l[i + 1].ref - l[i].ref) / 2);
	}
	assert_no_ref(t, 7, 0);
	assert_no_ref(t, 7, 1);
	assert_no_ref(t, 7, l[0].ref - 1);
	assert_no_ref(t, 7, l[N - 1].ref + 1);
	assert_no_ref(t, 7, l[N - 1].ref + 5);
	assert_no_ref(t, 7, UINT64_MAX);
	for (size_t i = 0; i < N; i += 97) {
		assert_no_ref(t, 0, l[i].ref);
		assert_no_ref(t, 5, l[i].ref);
		assert_no_ref(t, 6, l[i].ref);
		assert_no_ref(t, 8, l[i].ref);
		assert_no_ref(t, 9, l[i].ref);
		assert_no_ref(t, UINT32_MAX, l[i].ref);
	}
	for (size_t i = 0; i < NB; i++) {
		assert_loc(t, 6, &before[i]);
		assert_loc(t, 8, &after[i]);
	}
	idx_abort(t);
	free(l);
	free(before);
	free(after);
	idx_close(x);
}

Test(idx_series, two_snapshots_tables_do_not_mix)
{
	enum { N = 1000 };
	struct idx *x = open_new();
	struct idx_loc *a = random_locs(N, 10, 1), *b = random_locs(N, 10, 2);
	struct idx_txn *t;
	struct err e = { 0 };

	/* the same refs in both, at different places; snapshot 2 written first */
	for (size_t i = 0; i < N; i++) {
		a[i].ref = 10 + 2 * i;
		b[i].ref = 10 + 2 * i;
	}
	b[N - 1].ref = 5000000; /* one ref only snapshot 2 has */
	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 2, b, N, &e), 0, "%s", e.msg);
	commit(t);
	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 1, a, N, &e), 0, "%s", e.msg);
	commit(t);

	t = rbegin(x);
	for (size_t i = 0; i < N; i++) {
		assert_loc(t, 1, &a[i]);
		assert_loc(t, 2, &b[i]);
		assert_no_ref(t, 1, a[i].ref + 1);
	}
	assert_no_ref(t, 1, 5000000);
	assert_no_ref(t, 2, a[N - 1].ref);
	assert_no_ref(t, 3, 10);
	idx_abort(t);
	free(a);
	free(b);
	idx_close(x);
}

/*
 * A compacted snapshot's table: cuts point into the records of several
 * later snapshots, each run in ref order (put near an earlier entry's
 * record), some records follow the one before, some are far. Every entry
 * reads back exactly, by lookup and in order; the blocks without a cut
 * keep format 3's bytes.
 */
Test(idx_series, cuts_and_locations_near_earlier_ones_read_back_exactly)
{
	enum { N = 3000, RUNS = 12 };
	struct idx *x = open_new();
	struct idx_loc *l = calloc(N, sizeof(*l)), *plain = random_locs(200, 1, 9), got;
	uint64_t run_end[RUNS];
	struct idx_series_iter *it;
	struct idx_txn *t;
	struct err e = { 0 };
	size_t i;

	cr_assert_not_null(l);
	rng_state = 77;
	for (int r = 0; r < RUNS; r++)
		run_end[r] = (uint64_t)r * 5000000 + 4096;
	for (i = 0; i < N; i++) {
		uint64_t r = rnd();
		int run = (int)(r % RUNS);

		l[i].ref = 100 + 3 * i + r % 3;
		l[i].span = 40 + (uint32_t)(rnd() % 600);
		l[i].segment = run == 3 ? 9 : 7;
		if (r % 29 == 0) {
			/* far from everything */
			l[i].offset = (r >> 8) % (1ull << 40);
		} else if (i && r % 7 == 0) {
			/* follows the one before */
			l[i].segment = l[i - 1].segment;
			l[i].offset = l[i - 1].offset + l[i - 1].span;
		} else {
			/* in its run, after a gap */
			l[i].offset = run_end[run] + rnd() % 3 * 300;
			run_end[run] = l[i].offset + l[i].span;
		}
		l[i].cut = r % 5 == 0 ? 0 : 1 + (uint32_t)(rnd() % (r % 11 == 0 ? 65535 : 120));
	}
	l[N - 1].cut = 65535;
	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 5, l, N, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_series_put(t, 6, plain, 200, &e), 0, "%s", e.msg);
	commit(t);

	t = rbegin(x);
	for (i = 0; i < N; i++) {
		assert_loc(t, 5, &l[i]);
		if (i + 1 == N || l[i + 1].ref > l[i].ref + 1)
			assert_no_ref(t, 5, l[i].ref + 1);
	}
	cr_assert_eq(idx_series_iter_open(t, 5, &it, &e), 0, "%s", e.msg);
	for (i = 0; idx_series_iter_next(it, &got, &e) == 1; i++) {
		cr_assert_lt(i, N);
		cr_assert(got.ref == l[i].ref && got.segment == l[i].segment && got.offset == l[i].offset &&
			  got.span == l[i].span && got.cut == l[i].cut, "entry %zu differs in order", i);
	}
	cr_assert_eq(i, N);
	idx_series_iter_close(it);
	for (i = 0; i < 200; i++)
		assert_loc(t, 6, &plain[i]);
	idx_abort(t);
	idx_close(x);

	/* a block without a cut is format 3's: its count first, never 0 */
	{
		uint8_t key[12] = { 0, 0, 0, 6 };

		be64_put(key + 4, plain[0].ref);
		cr_assert_eq(raw_first_byte("series", key, sizeof(key)), 64,
			     "the first block of snapshot 6 does not start with its count");
		be32_put(key, 5);
		be64_put(key + 4, l[0].ref);
		cr_assert_eq(raw_first_byte("series", key, sizeof(key)), 0, "a block with cuts is not marked");
	}
	free(l);
	free(plain);
}

Test(idx_open, format_3_index_opens_and_reads)
{
	struct idx *x = open_new();
	struct idx_loc *l = random_locs(500, 1, 3);
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 1, l, 500, &e), 0, "%s", e.msg);
	commit(t);
	idx_close(x);
	put_format("\x00\x00\x00\x03");

	cr_assert_eq(idx_open(&x, ixdir, NULL, &e), 0, "%s", e.msg);
	t = rbegin(x);
	for (size_t i = 0; i < 500; i++)
		assert_loc(t, 1, &l[i]);
	idx_abort(t);
	/* a cut makes it format 4 */
	l[499].cut = 7;
	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 2, l, 500, &e), 0, "%s", e.msg);
	commit(t);
	idx_close(x);
	cr_assert_eq(raw_first_byte("meta", "format", 6), 0);   /* big-endian 4 */
	cr_assert_eq(raw_byte("meta", "format", 6, 3), 4, "a table with a cut left the index format 3");
	free(l);
}

Test(idx_series, unsorted_or_repeated_refs_are_invalid)
{
	struct idx *x = open_new();
	struct idx_loc l[3] = { { .ref = 5 }, { .ref = 9 }, { .ref = 7 } };
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 1, l, 3, &e), SNAPARC_INVALID, "%s", e.msg);
	l[2].ref = 9;
	cr_assert_eq(idx_series_put(t, 2, l, 3, &e), SNAPARC_INVALID, "%s", e.msg);
	idx_abort(t);
	idx_close(x);
}

Test(idx_series, empty_snapshot_has_no_series)
{
	struct idx *x = open_new();
	struct idx_loc one = { .ref = 3, .segment = 1, .offset = 2, .span = 3 };
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_series_put(t, 1, &one, 1, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_series_put(t, 2, NULL, 0, &e), 0, "%s", e.msg);
	commit(t);
	t = rbegin(x);
	assert_no_ref(t, 2, 3);
	assert_loc(t, 1, &one);
	idx_abort(t);
	idx_close(x);
}

/* ---- hashes ---- */

static int cmp_hash(const void *a, const void *b)
{
	uint64_t x = ((const struct idx_hash *)a)->hash, y = ((const struct idx_hash *)b)->hash;

	return x < y ? -1 : x > y;
}

/* Checks idx_hash_find against the table (sorted) that was written. */
static void assert_find(struct idx_txn *t, uint32_t snap, const struct idx_hash *table, size_t n,
			uint64_t hash)
{
	uint64_t want[1024], got[1024];
	size_t nwant = 0, ngot = 12345;
	struct err e = { 0 };

	for (size_t i = 0; i < n; i++)
		if (table[i].hash >> 32 == hash >> 32) {
			cr_assert_lt(nwant, 1024);
			want[nwant++] = table[i].ref;
		}
	cr_assert_eq(idx_hash_find(t, snap, hash, got, 1024, &ngot, &e), 0, "%s", e.msg);
	cr_assert_eq(ngot, nwant, "snapshot %u prefix %08x: %zu refs, wanted %zu", snap, (unsigned)(hash >> 32),
		     ngot, nwant);
	for (size_t i = 0; i < nwant; i++)
		cr_assert_eq(got[i], want[i], "snapshot %u prefix %08x: ref %zu is %llu, wanted %llu", snap,
			     (unsigned)(hash >> 32), i, (unsigned long long)got[i], (unsigned long long)want[i]);
}

/* A snapshot's table: runs of hashes sharing a prefix, refs tagged with the snapshot. */
struct run {
	uint32_t prefix;
	size_t count;
};

static size_t build_table(struct idx_hash *out, const struct run *runs, size_t nruns, uint32_t snap)
{
	size_t n = 0;

	rng_state = snap * 1000003u;
	for (size_t r = 0; r < nruns; r++)
		for (size_t i = 0; i < runs[r].count; i++) {
			/* low halves distinct within a run; refs unique per snapshot */
			out[n].hash = (uint64_t)runs[r].prefix << 32 | (uint32_t)(i * 0x01000193u + (rnd() & 0xff));
			out[n].ref = (uint64_t)snap << 48 | (uint64_t)n << 8 | (rnd() & 0xff);
			n++;
		}
	qsort(out, n, sizeof(*out), cmp_hash);
	return n;
}

Test(idx_hashes, colliding_prefixes_across_blocks_and_at_both_ends)
{
	/* 70 at the start (over the first block boundary), 150 in the middle
	 * spanning four blocks, 70 at the very end: blocks hold 64 */
	static const struct run mine[] = {
		{ 0x00000000u, 70 }, { 0x10000000u, 1 }, { 0x10000001u, 1 }, { 0x10000002u, 38 },
		{ 0x80000000u, 150 }, { 0x80000001u, 30 }, { 0xfffffffeu, 1 }, { 0xffffffffu, 70 },
	};
	static const struct run theirs[] = {
		{ 0x00000000u, 65 }, { 0x7fffffffu, 3 }, { 0x80000000u, 64 }, { 0x80000002u, 1 }, { 0xffffffffu, 66 },
	};
	static const uint32_t probes[] = { 0x00000000u, 0x00000001u, 0x0fffffffu, 0x10000000u, 0x10000001u,
					   0x10000002u, 0x10000003u, 0x7fffffffu, 0x80000000u, 0x80000001u,
					   0x80000002u, 0xfffffffdu, 0xfffffffeu, 0xffffffffu };
	static struct idx_hash t4[1024], t5[1024], t6[1024];
	struct idx *x = open_new();
	size_t n4, n5, n6;
	struct idx_txn *t;
	struct err e = { 0 };

	n4 = build_table(t4, theirs, 5, 4);
	n5 = build_table(t5, mine, 8, 5);
	n6 = build_table(t6, theirs, 5, 6);
	cr_assert_eq(n5, 361);
	t = wbegin(x);
	cr_assert_eq(idx_hashes_put(t, 4, 0, t4, n4, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_hashes_put(t, 5, 0, t5, n5, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_hashes_put(t, 6, 0, t6, n6, &e), 0, "%s", e.msg);
	commit(t);

	t = rbegin(x);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		/* the low 32 bits of the asked hash do not matter */
		uint64_t h = (uint64_t)probes[i] << 32;

		assert_find(t, 5, t5, n5, h);
		assert_find(t, 5, t5, n5, h | 0xdeadbeefu);
		assert_find(t, 4, t4, n4, h | 7);
		assert_find(t, 6, t6, n6, h | 0xffffffffu);
		/* snapshots with no table around them */
		assert_find(t, 3, NULL, 0, h);
		assert_find(t, 7, NULL, 0, h);
	}
	idx_abort(t);
	idx_close(x);
}

Test(idx_hashes, exact_counts_of_the_big_runs)
{
	/* the same table as above, counted by hand rather than by a brute force */
	static const struct run mine[] = {
		{ 0x00000000u, 70 }, { 0x10000000u, 40 }, { 0x80000000u, 150 }, { 0xffffffffu, 70 },
	};
	static struct idx_hash tab[512];
	uint64_t refs[200];
	size_t n, got;
	struct idx *x = open_new();
	struct idx_txn *t;
	struct err e = { 0 };

	n = build_table(tab, mine, 4, 9);
	t = wbegin(x);
	cr_assert_eq(idx_hashes_put(t, 9, 0, tab, n, &e), 0, "%s", e.msg);
	commit(t);
	t = rbegin(x);
	cr_assert_eq(idx_hash_find(t, 9, 0, refs, 200, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got, 70);
	cr_assert_eq(idx_hash_find(t, 9, 0x10000000ull << 32, refs, 200, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got, 40);
	cr_assert_eq(idx_hash_find(t, 9, 0x80000000ull << 32 | 1, refs, 200, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got, 150);
	for (size_t i = 0; i < 150; i++)
		cr_assert_eq(refs[i], tab[110 + i].ref, "ref %zu of the middle run", i);
	cr_assert_eq(idx_hash_find(t, 9, UINT64_MAX, refs, 200, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got, 70);
	for (size_t i = 0; i < 70; i++)
		cr_assert_eq(refs[i], tab[260 + i].ref, "ref %zu of the last run", i);
	cr_assert_eq(idx_hash_find(t, 9, 0x80000001ull << 32, refs, 200, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got, 0);
	idx_abort(t);
	idx_close(x);
}

Test(idx_hashes, cap_limits_refs_written_not_the_count)
{
	static const struct run mine[] = { { 0x01u, 3 }, { 0x42u, 100 }, { 0x43u, 3 } };
	static struct idx_hash tab[128];
	uint64_t refs[11];
	size_t n, got = 0;
	struct idx *x = open_new();
	struct idx_txn *t;
	struct err e = { 0 };

	n = build_table(tab, mine, 3, 1);
	t = wbegin(x);
	cr_assert_eq(idx_hashes_put(t, 1, 0, tab, n, &e), 0, "%s", e.msg);
	commit(t);
	t = rbegin(x);
	refs[10] = 0x5a5a5a5a;
	cr_assert_eq(idx_hash_find(t, 1, 0x42ull << 32, refs, 10, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got, 100);
	for (size_t i = 0; i < 10; i++)
		cr_assert_eq(refs[i], tab[3 + i].ref);
	cr_assert_eq(refs[10], 0x5a5a5a5a, "idx_hash_find wrote past cap");
	idx_abort(t);
	idx_close(x);
}

Test(idx_hashes, random_tables_of_three_snapshots_agree_with_brute_force)
{
	enum { N = 5000, PREFIXES = 300 };
	static struct idx_hash tab[3][N];
	static uint32_t prefixes[PREFIXES];
	struct idx *x = open_new();
	struct idx_txn *t;
	struct err e = { 0 };

	rng_state = 99;
	for (size_t i = 0; i < PREFIXES; i++)
		prefixes[i] = (uint32_t)rnd();
	prefixes[0] = 0;
	prefixes[1] = UINT32_MAX;
	for (uint32_t s = 0; s < 3; s++) {
		for (size_t i = 0; i < N; i++) {
			/* skewed: low prefix numbers are much more common */
			size_t p = (size_t)(rnd() % PREFIXES) % (1 + rnd() % PREFIXES);

			tab[s][i].hash = (uint64_t)prefixes[p] << 32 | (uint32_t)rnd();
			tab[s][i].ref = (uint64_t)s << 32 | i;
		}
		qsort(tab[s], N, sizeof(tab[s][0]), cmp_hash);
	}
	t = wbegin(x);
	for (uint32_t s = 0; s < 3; s++)
		cr_assert_eq(idx_hashes_put(t, 10 + s, 0, tab[s], N, &e), 0, "%s", e.msg);
	commit(t);
	t = rbegin(x);
	for (uint32_t s = 0; s < 3; s++) {
		for (size_t i = 0; i < PREFIXES; i++) {
			assert_find(t, 10 + s, tab[s], N, (uint64_t)prefixes[i] << 32);
			assert_find(t, 10 + s, tab[s], N, ((uint64_t)prefixes[i] + 1) << 32);
		}
	}
	idx_abort(t);
	idx_close(x);
}

Test(idx_hashes, unsorted_hashes_are_invalid)
{
	struct idx *x = open_new();
	struct idx_hash h[2] = { { .hash = 2, .ref = 1 }, { .hash = 1, .ref = 2 } };
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_hashes_put(t, 1, 0, h, 2, &e), SNAPARC_INVALID, "%s", e.msg);
	idx_abort(t);
	idx_close(x);
}

/* Every key and value of database db of the index in dir, end to end. */
static void raw_db(const char *dir, const char *db, struct buf *out)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(txn, dbi, &c), 0);
	for (int op = MDB_FIRST; mdb_cursor_get(c, &k, &v, op) == 0; op = MDB_NEXT) {
		buf_put_uvarint(out, k.mv_size);
		buf_put(out, k.mv_data, k.mv_size);
		buf_put_uvarint(out, v.mv_size);
		buf_put(out, v.mv_data, v.mv_size);
	}
	cr_assert(!out->oom);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

Test(idx_hashes, tables_written_in_batches_of_whole_blocks_are_the_bytes_of_one_call)
{
	enum { N = 1000 };
	/* batches of 128, 64, 0, 448 and the last 360 */
	static const size_t cut[] = { 0, 128, 192, 192, 640, N };
	static struct idx_hash h[N];
	struct idx_loc *l = random_locs(N, 5, 11);
	struct buf got[2][2] = { { { 0 } } };
	struct err e = { 0 };

	rng_state = 5;
	for (size_t i = 0; i < N; i++) {
		/* 50 prefixes: runs of them cross the blocks */
		h[i].hash = (rnd() % 50) << 32 | (uint32_t)rnd();
		h[i].ref = i;
	}
	qsort(h, N, sizeof(h[0]), cmp_hash);
	for (int batched = 0; batched < 2; batched++) {
		struct idx_opts o = { .flags = IDX_CREATE };
		struct idx *x = NULL;
		struct idx_txn *t;
		char dir[160];

		snprintf(dir, sizeof(dir), "%s/%s", tmpdir, batched ? "batched" : "one");
		cr_assert_eq(idx_open(&x, dir, &o, &e), 0, "%s", e.msg);
		t = wbegin(x);
		for (size_t i = 0; i + 1 < sizeof(cut) / sizeof(cut[0]); i++) {
			size_t from = batched ? cut[i] : 0, n = batched ? cut[i + 1] - cut[i] : N;

			cr_assert_eq(idx_series_put(t, 3, l + from, n, &e), 0, "%s", e.msg);
			cr_assert_eq(idx_hashes_put(t, 3, (uint32_t)(from / IDX_BLOCK_ENTRIES), h + from, n, &e), 0,
				     "%s", e.msg);
			if (!batched)
				break;
		}
		commit(t);
		idx_close(x);
		raw_db(dir, "series", &got[batched][0]);
		raw_db(dir, "hashes", &got[batched][1]);
	}
	for (int d = 0; d < 2; d++) {
		cr_assert_gt(got[0][d].len, N, "setup: %zu bytes of the %s table", got[0][d].len,
			     d ? "hash" : "series");
		cr_assert(got[1][d].len == got[0][d].len && !memcmp(got[1][d].p, got[0][d].p, got[0][d].len),
			  "the %s table written in batches differs", d ? "hash" : "series");
		buf_free(&got[0][d]);
		buf_free(&got[1][d]);
	}
	free(l);
}

/* ---- per-series side data ---- */

Test(idx_side, tombstones_and_exemplar_locations_round_trip)
{
	struct idx *x = open_new();
	struct idx_loc xl = { .ref = 260, .segment = 0xfffffffeu, .offset = UINT64_C(1) << 50, .span = 0xffffffffu };
	struct idx_loc other = { .ref = 0, .segment = 3, .offset = 4096, .span = 155 };
	static const uint8_t iv[] = { 0x80, 0xc0, 0x9f, 0x8d, 0x9c, 0x68, 0x02, 0x04 };
	struct idx_loc got;
	const uint8_t *p;
	size_t len;
	struct idx_txn *t;
	struct err e = { 0 };

	t = wbegin(x);
	cr_assert_eq(idx_tombstones_put(t, 1, 260, iv, sizeof(iv), &e), 0, "%s", e.msg);
	cr_assert_eq(idx_exemplars_put(t, 1, &xl, &e), 0, "%s", e.msg);
	cr_assert_eq(idx_other_put(t, 1, &other, 2, &e), 0, "%s", e.msg);
	commit(t);

	t = rbegin(x);
	cr_assert_eq(idx_tombstones_get(t, 1, 260, &p, &len, &e), 0, "%s", e.msg);
	cr_assert_eq(len, sizeof(iv));
	cr_assert_eq(memcmp(p, iv, len), 0);
	cr_assert_eq(idx_tombstones_get(t, 1, 261, &p, &len, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_tombstones_get(t, 2, 260, &p, &len, &e), SNAPARC_NOT_FOUND);
	memset(&got, 0, sizeof(got));
	cr_assert_eq(idx_exemplars_get(t, 1, 260, &got, &e), 0, "%s", e.msg);
	cr_assert_eq(got.ref, 260);
	cr_assert_eq(got.segment, 0xfffffffeu);
	cr_assert_eq(got.offset, UINT64_C(1) << 50);
	cr_assert_eq(got.span, 0xffffffffu);
	cr_assert_eq(idx_exemplars_get(t, 1, 259, &got, &e), SNAPARC_NOT_FOUND);
	cr_assert_eq(idx_exemplars_get(t, 0, 260, &got, &e), SNAPARC_NOT_FOUND);
	idx_abort(t);
	idx_close(x);
}

/* ---- the map ---- */

Test(idx_map, full_map_fails_the_commit_then_grows_so_the_redo_fits)
{
	enum { VALUE = 1000, MAX = 100000 };
	struct idx_opts o = { .flags = IDX_CREATE, .map_size = 64 * 1024 };
	static uint8_t value[VALUE];
	struct idx *x = NULL;
	struct idx_txn *t;
	struct err e = { 0 };
	size_t n = 0;
	int rc = 0;

	cr_assert_eq(idx_open(&x, ixdir, &o, &e), 0, "%s", e.msg);
	t = wbegin(x);
	while (n < MAX) {
		memset(value, (int)(n & 0xff), sizeof(value));
		be64_put(value, n);
		rc = idx_tombstones_put(t, 1, n, value, sizeof(value), &e);
		n++;
		if (rc)
			break;
	}
	cr_assert_eq(rc, SNAPARC_NOMEM, "writing %zu values of %d bytes into a 64 KiB map: rc %d (%s)", n, VALUE,
		     rc, e.msg);
	cr_assert_lt(n * VALUE, 64 * 1024, "%zu values fit in a 64 KiB map", n);
	cr_assert_eq(idx_commit(t, &e), SNAPARC_NOMEM, "the commit of a transaction that hit the full map");
	cr_assert(strstr(e.msg, "grown"), "%s", e.msg);

	/* the same writes in a new transaction: the map grew, they fit */
	t = wbegin(x);
	for (size_t i = 0; i < n; i++) {
		memset(value, (int)(i & 0xff), sizeof(value));
		be64_put(value, i);
		cr_assert_eq(idx_tombstones_put(t, 1, i, value, sizeof(value), &e), 0, "redo %zu of %zu: %s", i, n,
			     e.msg);
	}
	commit(t);

	t = rbegin(x);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p;
		size_t len;

		cr_assert_eq(idx_tombstones_get(t, 1, i, &p, &len, &e), 0, "value %zu: %s", i, e.msg);
		cr_assert_eq(len, VALUE);
		cr_assert_eq(be64_get(p), i);
		cr_assert_eq(p[VALUE - 1], (uint8_t)(i & 0xff));
	}
	idx_abort(t);
	cr_assert_gt(idx_file_bytes(x), (uint64_t)n * VALUE / 2);
	idx_close(x);

	/* reopening with the same small map size adopts the larger file */
	x = NULL;
	o.flags = 0;
	cr_assert_eq(idx_open(&x, ixdir, &o, &e), 0, "%s", e.msg);
	t = rbegin(x);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p;
		size_t len;

		cr_assert_eq(idx_tombstones_get(t, 1, i, &p, &len, &e), 0, "after reopen, value %zu: %s", i, e.msg);
		cr_assert_eq(be64_get(p), i);
	}
	idx_abort(t);
	idx_close(x);
}

/* Bytes data.mdb holds on disk, its length, and the bytes of the pages
 * LMDB has in use. */
static void data_size(uint64_t *blocks, uint64_t *len, uint64_t *used)
{
	char p[4200];
	struct stat st;
	MDB_env *env;
	MDB_envinfo info;
	MDB_stat ms;

	snprintf(p, sizeof(p), "%s/data.mdb", ixdir);
	cr_assert_eq(stat(p, &st), 0, "%s: %s", p, strerror(errno));
	*blocks = (uint64_t)st.st_blocks * 512;
	*len = (uint64_t)st.st_size;
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_RDONLY | MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_env_info(env, &info), 0);
	cr_assert_eq(mdb_env_stat(env, &ms), 0);
	*used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	mdb_env_close(env);
}

/* A writer maps the file writable and allocates its blocks ahead of LMDB's
 * writes: what a transaction reserved and did not use is given back, after
 * a commit and after an abort, and reopening does not lengthen the file. */
Test(idx_map, room_reserved_for_a_writer_is_given_back)
{
	enum { VALUE = 3000, N = 2000 };
	static uint8_t value[VALUE];
	struct idx *x = NULL;
	struct idx_txn *t;
	struct err e = { 0 };
	uint64_t b0, b1, b2, l0, l1, l2, u0, u1, u2;

	cr_assert_eq(idx_open(&x, ixdir, &(struct idx_opts){ .flags = IDX_CREATE }, &e), 0, "%s", e.msg);
	t = wbegin(x);
	for (size_t i = 0; i < N; i++) {
		memset(value, (int)(i & 0xff), sizeof(value));
		cr_assert_eq(idx_tombstones_put(t, 1, i, value, sizeof(value), &e), 0, "%s", e.msg);
	}
	commit(t);
	data_size(&b0, &l0, &u0);
	/* the pages in use and nothing past them (but a block or two of the
	 * file system's own, such as ext4's extent tree; a reservation left
	 * behind would be 128 KiB or more) */
	cr_assert_geq(u0, (uint64_t)N * VALUE);
	cr_assert_leq(b0, u0 + 16384, "%llu bytes on disk, %llu in pages in use", (unsigned long long)b0,
		      (unsigned long long)u0);

	/* a bigger transaction that is aborted leaves the file as it was */
	t = wbegin(x);
	for (size_t i = 0; i < 2 * N; i++)
		cr_assert_eq(idx_tombstones_put(t, 2, i, value, sizeof(value), &e), 0, "%s", e.msg);
	idx_abort(t);
	data_size(&b1, &l1, &u1);
	cr_assert_eq(b1, b0, "after an abort: %llu bytes on disk, %llu before", (unsigned long long)b1,
		     (unsigned long long)b0);
	cr_assert_eq(l1, l0);
	cr_assert_eq(u1, u0);
	idx_close(x);

	x = NULL;
	cr_assert_eq(idx_open(&x, ixdir, NULL, &e), 0, "%s", e.msg);
	idx_close(x);
	data_size(&b2, &l2, &u2);
	cr_assert_eq(l2, l0, "reopened: %llu bytes long, %llu before", (unsigned long long)l2,
		     (unsigned long long)l0);
	cr_assert_eq(b2, b0);
}

Test(idx_map, repeated_growth_up_to_many_megabytes)
{
	enum { VALUE = 4000, BATCH = 500, BATCHES = 6 };
	struct idx_opts o = { .flags = IDX_CREATE, .map_size = 64 * 1024 };
	static uint8_t value[VALUE];
	struct idx *x = NULL;
	struct err e = { 0 };
	int grew = 0;

	cr_assert_eq(idx_open(&x, ixdir, &o, &e), 0, "%s", e.msg);
	for (size_t b = 0; b < BATCHES; b++) {
		int rc;

		/* each batch is redone until it fits, as the import does */
		for (int tries = 0;; tries++) {
			struct idx_txn *t = wbegin(x);

			rc = 0;
			for (size_t i = 0; i < BATCH && !rc; i++) {
				be64_put(value, b * BATCH + i);
				rc = idx_tombstones_put(t, 2, b * BATCH + i, value, sizeof(value), &e);
			}
			if (rc) {
				cr_assert_eq(rc, SNAPARC_NOMEM, "%s", e.msg);
				idx_abort(t);
			} else {
				rc = idx_commit(t, &e);
			}
			if (rc != SNAPARC_NOMEM)
				break;
			grew++;
			cr_assert_lt(tries, 20, "batch %zu never fit", b);
		}
		cr_assert_eq(rc, 0, "%s", e.msg);
	}
	cr_assert_geq(grew, 5, "a 64 KiB map took 12 MB after growing only %d times", grew);
	{
		struct idx_txn *t = rbegin(x);
		const uint8_t *p;
		size_t len;

		for (size_t i = 0; i < BATCH * BATCHES; i++) {
			cr_assert_eq(idx_tombstones_get(t, 2, i, &p, &len, &e), 0, "%zu: %s", i, e.msg);
			cr_assert_eq(be64_get(p), i);
		}
		idx_abort(t);
	}
	idx_close(x);
}

/* The bytes of value i of transaction s: its size, then a pattern of both. */
static size_t pattern_value(uint8_t *v, size_t s, size_t i)
{
	static const size_t sizes[] = { 100, 3000, 9000, 17000, 40 };
	size_t n = sizes[(i + s) % 5];

	for (size_t k = 0; k < n; k++)
		v[k] = (uint8_t)(k * 31 + i * 7 + s * 13);
	be64_put(v, i);
	return n;
}

Test(idx_map, pages_zeroed_ahead_of_lmdb_never_cover_a_page_it_wrote)
{
	/* each transaction some 20 MB, past several of reserve()'s steps, of
	 * values on one page, sharing pages, and on runs of overflow pages */
	enum { N = 3000, TXNS = 3 };
	static uint8_t value[17000], want[17000];
	struct idx *x = NULL;
	struct idx_txn *t;
	struct err e = { 0 };

	cr_assert_eq(idx_open(&x, ixdir, &(struct idx_opts){ .flags = IDX_CREATE }, &e), 0, "%s", e.msg);
	/* one aborted first: its pages stay in the file past the end in use */
	t = wbegin(x);
	for (size_t i = 0; i < N / 2; i++)
		cr_assert_eq(idx_tombstones_put(t, 9, i, value, pattern_value(value, 9, i), &e), 0, "%s", e.msg);
	idx_abort(t);
	for (size_t s = 1; s <= TXNS; s++) {
		t = wbegin(x);
		for (size_t i = 0; i < N; i++)
			cr_assert_eq(idx_tombstones_put(t, s, i, value, pattern_value(value, s, i), &e), 0,
				     "txn %zu, value %zu: %s", s, i, e.msg);
		commit(t);
	}
	idx_close(x);
	x = NULL;
	cr_assert_eq(idx_open(&x, ixdir, NULL, &e), 0, "%s", e.msg);
	t = rbegin(x);
	for (size_t s = 1; s <= TXNS; s++)
		for (size_t i = 0; i < N; i++) {
			const uint8_t *p;
			size_t len, n = pattern_value(want, s, i);

			cr_assert_eq(idx_tombstones_get(t, s, i, &p, &len, &e), 0, "txn %zu, value %zu: %s", s, i,
				     e.msg);
			cr_assert_eq(len, n, "txn %zu, value %zu: %zu bytes, not %zu", s, i, len, n);
			cr_assert_arr_eq(p, want, n, "txn %zu, value %zu: other bytes", s, i);
		}
	idx_abort(t);
	idx_close(x);
}

/* ---- damage: every value carries a checksum of its key and bytes ---- */

TestSuite(idx_damage, .init = setup, .fini = teardown);

enum damage { FLIP, CUT, REKEY };

/* Damages the value under key in database db with raw LMDB, as a flipped
 * bit or a cut on the disk would: FLIP flips bit `arg` of the value, CUT
 * drops its last byte, REKEY moves it, unchanged, under the key whose last
 * byte is the original's plus arg. */
static void damage(const char *db, const void *key, size_t klen, enum damage how, size_t arg)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { klen, (void *)key }, v;
	uint8_t *copy, k2[64];

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_NOTLS, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
	cr_assert_eq(mdb_get(txn, dbi, &k, &v), 0, "no such key in %s", db);
	copy = malloc(v.mv_size);
	cr_assert_not_null(copy);
	memcpy(copy, v.mv_data, v.mv_size);
	if (how == FLIP)
		copy[arg / 8 % v.mv_size] ^= (uint8_t)(1u << (arg % 8));
	if (how == CUT)
		v.mv_size--;
	if (how == REKEY) {
		cr_assert_leq(klen, sizeof(k2));
		cr_assert_eq(mdb_del(txn, dbi, &k, NULL), 0);
		memcpy(k2, key, klen);
		k2[klen - 1] = (uint8_t)(k2[klen - 1] + arg);
		k.mv_data = k2;
	}
	v.mv_data = copy;
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(copy);
}

static void assert_checksum_error(int rc, const struct err *e, const char *db)
{
	char want[64];

	snprintf(want, sizeof(want), "the %s value of", db);
	cr_assert_eq(rc, SNAPARC_CORRUPT, "got %d (%s), wanted SNAPARC_CORRUPT", rc, rc ? e->msg : "success");
	cr_assert(strstr(e->msg, "/data.mdb: offset ") && strstr(e->msg, want) &&
		  strstr(e->msg, "fails its checksum"), "%s", e->msg);
}

Test(idx_damage, a_flipped_bit_or_a_cut_in_a_dictionary_is_corrupt_never_data)
{
	static uint8_t dict[3000];
	uint8_t key[8] = { 'd', 'i', 'c', 't', 0, 0, 0, 1 };
	const uint8_t *p;
	size_t len;
	struct err e = { 0 };

	for (size_t i = 0; i < sizeof(dict); i++)
		dict[i] = (uint8_t)(i * 7 + 3);
	/* a bit of the bytes, of the checksum itself, and a cut */
	for (size_t round = 0; round < 4; round++) {
		struct idx *x = open_new();
		struct idx_txn *t = wbegin(x);

		cr_assert_eq(idx_dict_put(t, 1, dict, sizeof(dict), &e), 0, "%s", e.msg);
		commit(t);
		idx_close(x);
		if (round < 3)
			damage("meta", key, sizeof(key), FLIP, round == 0 ? 8 * 1234 + 5 : round == 1 ? 0 : 8 * 3002 + 7);
		else
			damage("meta", key, sizeof(key), CUT, 0);
		x = open_new();
		t = rbegin(x);
		assert_checksum_error(idx_dict_get(t, 1, &p, &len, &e), &e, "meta");
		idx_abort(t);
		idx_close(x);
		support_rm_tree(ixdir);
	}
}

Test(idx_damage, a_damaged_series_block_fails_its_refs_and_spares_the_others)
{
	enum { N = 640 };
	struct idx *x = open_new();
	struct idx_loc *l = random_locs(N, 100, 9);
	struct idx_loc got;
	struct idx_txn *t = wbegin(x);
	uint8_t key[12];
	struct err e = { 0 };

	cr_assert_eq(idx_series_put(t, 3, l, N, &e), 0, "%s", e.msg);
	commit(t);
	idx_close(x);
	/* the fourth block: refs l[192..255] */
	be32_put(key, 3);
	be64_put(key + 4, l[192].ref);
	damage("series", key, sizeof(key), FLIP, 8 * 10 + 2);
	x = open_new();
	t = rbegin(x);
	for (size_t i = 0; i < N; i++) {
		if (i >= 192 && i < 256)
			assert_checksum_error(idx_series_get(t, 3, l[i].ref, &got, &e), &e, "series");
		else
			assert_loc(t, 3, &l[i]);
	}
	idx_abort(t);
	free(l);
	idx_close(x);
}

Test(idx_damage, a_block_under_a_changed_key_is_corrupt_not_missing)
{
	enum { N = 640 };
	struct idx *x = open_new();
	struct idx_loc *l = random_locs(N, 100, 11);
	struct idx_loc got;
	struct idx_txn *t = wbegin(x);
	struct idx_series_iter *it;
	uint8_t key[12];
	size_t seen = 0;
	int rc;
	struct err e = { 0 };

	cr_assert_eq(idx_series_put(t, 3, l, N, &e), 0, "%s", e.msg);
	commit(t);
	idx_close(x);
	/* the third block's key moves up by one: still sorted, no longer its own */
	be32_put(key, 3);
	be64_put(key + 4, l[128].ref);
	cr_assert_gt(l[129].ref, l[128].ref + 1);
	damage("series", key, sizeof(key), REKEY, 1);
	x = open_new();
	t = rbegin(x);
	/* the search for its first ref lands on the block before and looks past it */
	for (size_t i = 128; i < 192; i++)
		assert_checksum_error(idx_series_get(t, 3, l[i].ref, &got, &e), &e, "series");
	for (size_t i = 0; i < 64; i++)
		assert_loc(t, 3, &l[i]);
	for (size_t i = 192; i < N; i++)
		assert_loc(t, 3, &l[i]);
	/* a whole walk stops at it */
	cr_assert_eq(idx_series_iter_open(t, 3, &it, &e), 0, "%s", e.msg);
	while ((rc = idx_series_iter_next(it, &got, &e)) == 1)
		seen++;
	assert_checksum_error(rc, &e, "series");
	cr_assert_eq(seen, 128);
	idx_series_iter_close(it);
	idx_abort(t);
	free(l);
	idx_close(x);
}

static int count_values(void *ctx, const char *value, size_t len, const uint64_t *hash, const uint8_t *list,
			size_t list_len)
{
	(void)value, (void)len, (void)hash, (void)list, (void)list_len;
	(*(size_t *)ctx)++;
	return 0;
}

Test(idx_damage, a_flipped_posting_fails_the_scan_instead_of_shortening_it)
{
	enum { N = 2000 };
	struct idx *x = open_new();
	struct idx_posting *vals = calloc(N, sizeof(*vals));
	static char text[N][16];
	static uint8_t lists[N][1 + UVARINT_MAX_LEN];
	struct idx_postings_block blk = { 0 };
	struct idx_txn *t = wbegin(x);
	MDB_env *env;
	MDB_txn *raw;
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	uint8_t key[64];
	size_t n = 0, klen = 0, blocks = 0;
	struct err e = { 0 };

	cr_assert_not_null(vals);
	for (size_t i = 0; i < N; i++) {
		snprintf(text[i], sizeof(text[i]), "pod-%06zu", i);
		lists[i][0] = 1; /* one ref: i + 1 */
		vals[i] = (struct idx_posting){ text[i], strlen(text[i]), lists[i],
						1 + uvarint_put(lists[i] + 1, i + 1) };
	}
	cr_assert_eq(idx_postings_put(t, 1, "pod", 3, &blk, vals, N, 1, &e), 0, "%s", e.msg);
	commit(t);
	t = rbegin(x);
	cr_assert_eq(idx_postings_scan(t, 1, "pod", 3, "", 0, count_values, &n, &e), 0, "%s", e.msg);
	cr_assert_eq(n, N);
	idx_abort(t);
	idx_close(x);
	/* the middle block of several */
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
	cr_assert_eq(mdb_env_open(env, ixdir, MDB_NOTLS | MDB_RDONLY, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &raw), 0);
	cr_assert_eq(mdb_dbi_open(raw, "postings", 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(raw, dbi, &c), 0);
	while (mdb_cursor_get(c, &k, &v, blocks ? MDB_NEXT : MDB_FIRST) == 0)
		blocks++;
	cr_assert_geq(blocks, 3, "%zu postings blocks", blocks);
	for (size_t i = 0; i <= blocks / 2; i++)
		cr_assert_eq(mdb_cursor_get(c, &k, &v, i ? MDB_NEXT : MDB_FIRST), 0);
	cr_assert_leq(k.mv_size, sizeof(key));
	klen = k.mv_size;
	memcpy(key, k.mv_data, klen);
	mdb_cursor_close(c);
	mdb_txn_abort(raw);
	mdb_env_close(env);
	damage("postings", key, klen, FLIP, 8 * 100 + 1);

	x = open_new();
	t = rbegin(x);
	n = 0;
	assert_checksum_error(idx_postings_scan(t, 1, "pod", 3, "", 0, count_values, &n, &e), &e, "postings");
	cr_assert_lt(n, N);
	idx_abort(t);
	free(vals);
	idx_close(x);
}
