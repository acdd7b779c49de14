/*
 * The index's LMDB layouts (all integers big-endian):
 *
 *   meta        "format" -> u32 IDX_FORMAT
 *               "end"    -> u32 segment | u64 offset        committed end
 *               "dict" u32 id -> dictionary bytes
 *               "live"   -> u32 first segment the index may point into
 *               "retired" -> u32 first | u32 end | u64 txn: segments [first, end)
 *                           no longer used since transaction txn, to delete
 *                           once no reader is older
 *   snapshots   u32 id -> u8 version | u32 dict | 11 x u64 fields (the last:
 *                         u32 flags | u32 label index owner) | 2 x (u32, u64)
 *                         extents | u16 name length | name
 *   names       name -> u32 id
 *   series      u32 snap | u64 first ref -> block: uvarint count, then per
 *               series uvarint (ref - previous ref), uvarint (span << 1 |
 *               follows), and unless it follows the previous record (same
 *               segment, offset = previous offset + span) uvarint segment,
 *               uvarint offset.
 *               A block with cuts (format 4) is 0x00, uvarint count, then
 *               per series uvarint (ref - previous ref), uvarint (span << 2
 *               | has cut << 1 | follows), with a cut uvarint cut, and
 *               unless it follows either uvarint k (1..32), varint (offset
 *               - where the record of the k-th entry before it ends, in its
 *               segment), or uvarint 0, uvarint segment, uvarint offset
 *   hashes      u32 snap | u32 first prefix | u32 block number -> block:
 *               uvarint count, then uvarint (prefix - previous), uvarint ref
 *   tombstones  u32 snap | u64 ref -> bytes given by the caller
 *   exemplars   u32 snap | u64 ref -> bytes given by the caller
 *   others      u32 snap | u32 segment | u64 offset -> u32 span | u8 type
 *   postings    u32 snap | name | 0x00 | first value's first 128 bytes | u32
 *               block number -> uvarint count, then per value in order:
 *               uvarint (bytes shared with the previous value << 1 | long),
 *               uvarint-bytes the rest, for a long value (over 128 bytes: only
 *               its first 128 are kept) u64 XXH64 of it all, then uvarint n,
 *               n x uvarint (ref - previous ref)
 *               (about 4 KiB a block)
 *
 * Every value but meta's "format" ends in a u32 CRC-32C of the database's
 * number (one byte, the order above from meta 0), its key and its bytes,
 * checked whenever it is read: a damaged value is SNAPARC_CORRUPT
 * naming the file and offset, never data.
 *
 * Series and hashes are written once per snapshot, in key order, with
 * MDB_APPEND: pages fill completely and nothing is searched while writing.
 */
#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <lmdb.h>
#include <xxhash.h>

#include "bytes.h"
#include "crc32c.h"

#define DEFAULT_MAP_SIZE (1ull << 30)
#define SNAPSHOT_VERSION 1

enum { DB_META, DB_SNAPSHOTS, DB_NAMES, DB_SERIES, DB_HASHES, DB_TOMBSTONES, DB_EXEMPLARS,
       DB_OTHERS, DB_POSTINGS, DB_COUNT };
static const char *const db_names[DB_COUNT] = { "meta", "snapshots", "names", "series", "hashes",
						"tombstones", "exemplars", "others", "postings" };

struct idx {
	MDB_env *env;
	MDB_dbi dbi[DB_COUNT];
	char path[4096];
	uint64_t map_size;
	int rdonly;
	unsigned psize;   /* LMDB's page size */
	int fd;           /* data.mdb (LMDB's descriptor) */
	/* Every transaction of this process holds it shared; resizing the map
	 * takes it exclusively, as LMDB requires no transaction to be active. */
	pthread_rwlock_t resize;
};

struct idx_txn {
	struct idx *x;
	MDB_txn *txn;
	int write, active, map_full;
	/* A writer's pages go straight into the file's mapping (MDB_WRITEMAP),
	 * where a full disk would be a SIGBUS: the file's blocks are allocated
	 * ahead of them (reserve()), from `used` (its pages when the
	 * transaction began) to `reserved`, as `high` (the end of the highest
	 * page it wrote) and `deleted` (bytes) grow. */
	uint64_t used, reserved, high, deleted, map_size;
	uint64_t taken;   /* pages LMDB has taken: all below this one (prefill()) */
	const uint8_t *map;   /* LMDB's map, as wrote() found it; NULL before */
	MDB_cursor *cur[DB_COUNT];   /* get()'s, opened on first use, kept across renewals */
	/* where the last value that failed its checksum was, for txn_err() */
	int bad_db;
	long long bad_offset;
	size_t bad_len, bad_key_len;
	uint8_t bad_key[16];
};

/* Every value but the format record ends in a CRC-32C of its key and its
 * bytes. LMDB checks nothing: without it a flipped bit in a dictionary, a
 * block or a posting would be served as if it were right. */
#define SUM_LEN 4
/* A value failed its checksum (below LMDB's codes, which run from
 * MDB_KEYEXIST up to MDB_LAST_ERRCODE). */
#define BAD_SUM (MDB_KEYEXIST - 1)

static int lmdb_err(struct err *e, int rc, const char *what, const struct idx *x)
{
	int code = SNAPARC_IO;

	switch (rc) {
	case MDB_NOTFOUND: code = SNAPARC_NOT_FOUND; break;
	case MDB_KEYEXIST: code = SNAPARC_EXISTS; break;
	case MDB_MAP_FULL: code = SNAPARC_NOMEM; break;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID: code = SNAPARC_CORRUPT; break;
	case MDB_VERSION_MISMATCH: code = SNAPARC_VERSION; break;
	case MDB_READERS_FULL: case MDB_TXN_FULL: code = SNAPARC_BUSY; break;
	case ENOMEM: code = SNAPARC_NOMEM; break;
	case EACCES: case EROFS: code = SNAPARC_IO; break;
	}
	return err_set(e, code, "%s: %s: %s", x ? x->path : "index", what, mdb_strerror(rc));
}

/* An error code from LMDB (or the operating system through it, or BAD_SUM),
 * as opposed to snaparc's own, which callbacks and decoders return. */
static int lmdb_code(int rc)
{
	return rc > 0 || (rc >= BAD_SUM && rc <= MDB_LAST_ERRCODE);
}

/* Seeded with the database's number: a value found in another database
 * (a damaged root pointing into another tree) fails too. */
static uint32_t value_sum(int db, const MDB_val *k, const void *v, size_t n)
{
	uint8_t seed = (uint8_t)db;

	return crc32c(crc32c(crc32c(0, &seed, 1), k->mv_data, k->mv_size), v, n);
}

/* Whether a value a read transaction got lies inside its page (or, a big
 * one, its overflow pages). A damaged node can give a size past its page,
 * which must be reported, not read. LMDB's page header (struct MDB_page,
 * the same since 0.9): u64 page number, u16 pad, u16 flags (P_OVERFLOW
 * 0x04), then u16 lower and upper or, on an overflow page, u32 pages. */
static int fits_its_page(const struct idx *x, const MDB_val *v)
{
	uintptr_t at = (uintptr_t)v->mv_data, page = at - at % x->psize;
	uint16_t flags;
	uint32_t pages;

	memcpy(&flags, (const void *)(page + 10), sizeof(flags));
	if (flags & 0x04) {
		memcpy(&pages, (const void *)(page + 12), sizeof(pages));
		return at == page + 16 && v->mv_size <= (uint64_t)pages * x->psize - 16;
	}
	return v->mv_size <= page + x->psize - at;
}

/* Checks and strips the checksum that ends a value: 0, or BAD_SUM with
 * where it was noted in t. */
static int checked(struct idx_txn *t, int db, const MDB_val *k, MDB_val *v)
{
	MDB_envinfo info;
	size_t n;

	if (db == DB_META && k->mv_size == 6 && !memcmp(k->mv_data, "format", 6))
		return 0; /* the one value without a checksum: another format may say so */
	/* in a write transaction, pages being written are not in the map */
	if (v->mv_size >= SUM_LEN && (t->write || fits_its_page(t->x, v))) {
		n = v->mv_size - SUM_LEN;
		if (be32_get((const uint8_t *)v->mv_data + n) == value_sum(db, k, v->mv_data, n)) {
			v->mv_size = n;
			return 0;
		}
	}
	t->bad_db = db;
	t->bad_len = v->mv_size;
	t->bad_key_len = k->mv_size < sizeof(t->bad_key) ? k->mv_size : sizeof(t->bad_key);
	memcpy(t->bad_key, k->mv_data, t->bad_key_len);
	t->bad_offset = -1;
	/* A read transaction's values lie in LMDB's map, whose pages begin
	 * with their page number: where in the file this one is. */
	if (!t->write && mdb_env_info(t->x->env, &info) == 0) {
		uintptr_t at = (uintptr_t)v->mv_data, page = at - at % t->x->psize;
		uint64_t pgno;

		memcpy(&pgno, (const void *)page, sizeof(pgno));
		if (pgno <= info.me_last_pgno)
			t->bad_offset = (long long)(pgno * t->x->psize + (at - page));
	}
	return BAD_SUM;
}

/* lmdb_err(), and for BAD_SUM which value of which database, where. */
static int txn_err(struct err *e, int rc, const char *what, const struct idx_txn *t)
{
	char key[2 * sizeof(t->bad_key) + 1] = "", at[40] = "";

	if (rc != BAD_SUM)
		return lmdb_err(e, rc, what, t->x);
	for (size_t i = 0; i < t->bad_key_len; i++)
		snprintf(key + 2 * i, 3, "%02x", t->bad_key[i]);
	if (t->bad_offset >= 0)
		snprintf(at, sizeof(at), " offset %lld:", t->bad_offset);
	return err_set(e, SNAPARC_CORRUPT, "%s/data.mdb:%s the %s value of %zu bytes under key %s%s fails its checksum",
		       t->x->path, at, db_names[t->bad_db], t->bad_len, key,
		       t->bad_key_len == sizeof(t->bad_key) ? "..." : "");
}

/* mdb_cursor_get() of a checked value. */
static int cget(struct idx_txn *t, int db, MDB_cursor *c, MDB_val *k, MDB_val *v, MDB_cursor_op op)
{
	int rc = mdb_cursor_get(c, k, v, op);

	return rc ? rc : checked(t, db, k, v);
}

uint64_t idx_file_bytes(const struct idx *x)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", x->path);
	return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}

/* ---- a writer's room in the file ---- */

/* Pages a change may take past the highest page the transaction wrote
 * (copies of the pages on its path, a split's new page) and, at commit,
 * LMDB's free list. */
#define RESERVE_SLACK (128u << 10)
/* Reserved at once past what is needed: a quarter of what the transaction
 * has taken, up to this (fewer calls, little held back). */
#define RESERVE_STEP (8u << 20)

/* Zeros, written ahead of LMDB into data.mdb (prefill()). In .bss: read,
 * never written, its pages are the kernel's one zero page. */
static uint8_t zeros[256u << 10];

/* Writes zeros into the reserved pages from..to that LMDB has not taken,
 * through the page cache. LMDB writes new pages through its map: the first
 * write to each page that has no page in the cache faults it in alone,
 * 4-7 µs a page (read from the unwritten block, its block mapped), where
 * the zeros and then the fault take 0.6-1.4 µs, and the commit's sync a
 * third less (a test program: 256 MB written through a mapping, 274-440 ms
 * against 37-94 ms; a 1M-series import's commit, 124-136 ms of the writing
 * thread against 94-102 ms). Nothing LMDB wrote may be written over: it
 * takes new pages one after the other from the end of those in use, and
 * writes each one's number into its header as it takes it (a run of
 * overflow pages: its first, with the run's length), so the pages it has
 * taken are read off the map from the transaction's start on. A page past
 * the end that reads as taken (left by a transaction that never committed)
 * only stops the zeros there. A write that fails leaves the faults to do
 * it. */
static void prefill(struct idx_txn *t, uint64_t from, uint64_t to)
{
	struct idx *x = t->x;
	unsigned psize = x->psize;
	const uint8_t *map;
	struct stat st;

	if (!(map = t->map) || fstat(x->fd, &st) != 0)
		return;
	/* the map reaches no further than the file, nor the zeros */
	if (to > (uint64_t)st.st_size)
		to = (uint64_t)st.st_size - (uint64_t)st.st_size % psize;
	while (t->taken < to / psize) {
		const uint8_t *page = map + t->taken * psize;
		uint64_t pgno;
		uint16_t flags;
		uint32_t pages = 1;

		memcpy(&pgno, page, sizeof(pgno));
		if (pgno != t->taken)
			break;
		memcpy(&flags, page + 10, sizeof(flags));
		if (flags & 0x04)   /* P_OVERFLOW: the run's length follows */
			memcpy(&pages, page + 12, sizeof(pages));
		t->taken += pages ? pages : 1;
	}
	if (from < t->taken * psize)
		from = t->taken * psize;
	while (from < to) {
		size_t n = to - from < sizeof(zeros) ? (size_t)(to - from) : sizeof(zeros);
		ssize_t w = pwrite(x->fd, zeros, n, (off_t)from);

		if (w <= 0)
			return;
		from += (uint64_t)w;
	}
}

/* Allocates data.mdb's blocks as far as the transaction may write next:
 * past the highest page it wrote, `extra` bytes, the slack, and a page of
 * free list for each 256 pages of what it deleted. A full disk is then an
 * error here, not a SIGBUS where LMDB writes into the mapping. */
static int reserve(struct idx_txn *t, uint64_t extra, struct err *e)
{
	struct idx *x = t->x;
	uint64_t need = (t->high > t->used ? t->high : t->used) + extra + RESERVE_SLACK + t->deleted / 256, to;
	int rc;

	if (need <= t->reserved || x->fd < 0)
		return 0;
	to = need + ((t->reserved - t->used) / 4 < RESERVE_STEP ? (t->reserved - t->used) / 4 : RESERVE_STEP);
	to += x->psize - 1;
	to -= to % x->psize;   /* whole pages: unreserve() gives them back whole */
	to = to < t->map_size ? to : t->map_size;   /* LMDB writes nothing past its map */
	if (to <= t->reserved)
		return 0;
	if (fallocate(x->fd, FALLOC_FL_KEEP_SIZE, (off_t)t->reserved, (off_t)(to - t->reserved)) != 0) {
		rc = errno;
		if (rc == EOPNOTSUPP || rc == ENOSYS) {
			/* a file system without it: blocks come as LMDB writes */
			t->reserved = UINT64_MAX;
			return 0;
		}
		return err_set(e, SNAPARC_IO, "%s/data.mdb: room for the index: %s (%llu bytes at offset %llu)",
			       x->path, strerror(rc), (unsigned long long)(to - t->reserved),
			       (unsigned long long)t->reserved);
	}
	prefill(t, t->reserved, to);
	t->reserved = to;
	return 0;
}

/* Notes how far into the file bytes LMDB placed for us reach: they sit in
 * a page of the mapping, whose header starts with its page number (the
 * layout fits_its_page() reads). */
static void wrote(struct idx_txn *t, const void *p, size_t n)
{
	unsigned psize = t->x->psize;
	const uint8_t *c = p, *page = c - (uintptr_t)c % psize;
	uint64_t pgno, end;

	memcpy(&pgno, page, sizeof(pgno));
	if (pgno >= t->map_size / psize)
		return;
	t->map = page - pgno * psize;
	end = pgno * psize + (uint64_t)(c - page) + n + psize - 1;
	end -= end % psize;
	if (end > t->high)
		t->high = end;
}

/* Where a write transaction starts: the pages in use, the map's size. */
static int reserve_begin(struct idx_txn *t, struct err *e)
{
	MDB_envinfo info;
	int rc;

	if ((rc = mdb_env_info(t->x->env, &info)))
		return lmdb_err(e, rc, "begin write", t->x);
	t->used = t->reserved = ((uint64_t)info.me_last_pgno + 1) * t->x->psize;
	t->taken = info.me_last_pgno + 1;
	t->map = NULL;   /* (a map that grew moved) */
	t->map_size = info.me_mapsize;
	return reserve(t, 0, e);
}

/* Gives back the blocks reserved past the pages in use. */
static void unreserve(struct idx *x, uint64_t reserved)
{
	MDB_envinfo info;
	uint64_t used;

	if (x->fd < 0 || reserved == UINT64_MAX || mdb_env_info(x->env, &info) != 0)
		return;
	used = ((uint64_t)info.me_last_pgno + 1) * x->psize;
	if (reserved > used)
		fallocate(x->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)used, (off_t)(reserved - used));
}

static int open_dbs_txn(struct idx *x, struct err *e)
{
	MDB_txn *txn;
	MDB_val k = { 6, (void *)"format" }, v;
	uint8_t fmt[4];
	int rc = mdb_txn_begin(x->env, NULL, x->rdonly ? MDB_RDONLY : 0, &txn);

	if (rc)
		return lmdb_err(e, rc, "begin", x);
	for (int i = 0; i < DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_names[i], x->rdonly ? 0 : MDB_CREATE, &x->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			if (rc == MDB_NOTFOUND)
				return err_set(e, SNAPARC_CORRUPT, "%s: not a snaparc index (no '%s' database)",
					       x->path, db_names[i]);
			return lmdb_err(e, rc, "open database", x);
		}
	}
	rc = mdb_get(txn, x->dbi[DB_META], &k, &v);
	if (rc == MDB_NOTFOUND && !x->rdonly) {
		be32_put(fmt, IDX_FORMAT);
		v.mv_data = fmt;
		v.mv_size = 4;
		rc = mdb_put(txn, x->dbi[DB_META], &k, &v, 0);
	} else if (rc == 0 && (v.mv_size != 4 || be32_get(v.mv_data) < IDX_FORMAT_OLDEST ||
				be32_get(v.mv_data) > IDX_FORMAT)) {
		mdb_txn_abort(txn);
		return err_set(e, SNAPARC_VERSION, "%s: index format %u, this snaparc reads format %u", x->path,
			       v.mv_size == 4 ? be32_get(v.mv_data) : 0, IDX_FORMAT);
	} else if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return err_set(e, SNAPARC_CORRUPT, "%s: not a snaparc index (no format record)", x->path);
	}
	if (rc) {
		mdb_txn_abort(txn);
		return lmdb_err(e, rc, "read format", x);
	}
	rc = mdb_txn_commit(txn);
	return rc ? lmdb_err(e, rc, "commit", x) : 0;
}

/* Opens the databases, making them (and the format record) in a new index. */
static int open_dbs(struct idx *x, struct err *e)
{
	struct idx_txn room = { .x = x };
	int rc;

	if (!x->rdonly && (rc = reserve_begin(&room, e)))
		return rc;
	rc = open_dbs_txn(x, e);
	if (!x->rdonly)
		unreserve(x, room.reserved);
	return rc;
}

/* Pages LMDB may count in its last page number without having written
 * them: a page a transaction took and freed again (a loose page) goes to
 * the free list unwritten, and can be the file's last. */
#define UNWRITTEN_PAGES_MAX 64

/* LMDB maps the file and trusts it: a page past a cut file's end is a
 * SIGBUS in whoever reads it. The pages its newest meta says are in use
 * must be there, but for a few unwritten free ones at the end, which a
 * writer adds (as zeros) so that the file holds them all. */
static int check_size(struct idx *x, struct err *e)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	mdb_filehandle_t fd;
	uint64_t need;
	int rc;

	if ((rc = mdb_env_info(x->env, &info)) || (rc = mdb_env_stat(x->env, &st)) ||
	    (rc = mdb_env_get_fd(x->env, &fd)))
		return lmdb_err(e, rc, "open", x);
	if (fstat(fd, &fst) != 0)
		return err_errno(e, errno, "%s/data.mdb", x->path);
	need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	if ((uint64_t)fst.st_size >= need)
		return 0;
	if ((uint64_t)fst.st_size + (uint64_t)UNWRITTEN_PAGES_MAX * st.ms_psize >= need) {
		if (!x->rdonly && ftruncate(fd, (off_t)need) != 0)
			return err_errno(e, errno, "%s/data.mdb: extend to %llu bytes", x->path,
					 (unsigned long long)need);
		return 0;
	}
	return err_set(e, SNAPARC_CORRUPT, "%s/data.mdb: %lld bytes, but its pages run to byte %llu: the file is cut short",
		       x->path, (long long)fst.st_size, (unsigned long long)need);
}

static int env_open(struct idx *x, struct err *e)
{
	MDB_envinfo info;
	MDB_stat st;
	int rc;

	if ((rc = mdb_env_create(&x->env)) || (rc = mdb_env_set_maxdbs(x->env, DB_COUNT)) ||
	    (rc = mdb_env_set_mapsize(x->env, x->map_size)) || (rc = mdb_env_set_maxreaders(x->env, 510)))
		return lmdb_err(e, rc, "create environment", x);
	/* MDB_NOTLS: read transactions belong to their handle, not to a thread.
	 * MDB_WRITEMAP: a writer's pages are the file's (page cache), not copies
	 * on the heap, so memory does not grow with a transaction's size;
	 * reserve() allocates the file's blocks before LMDB writes there. */
	rc = mdb_env_open(x->env, x->path,
			  MDB_NOTLS | MDB_NORDAHEAD | (x->rdonly ? MDB_RDONLY : MDB_WRITEMAP), 0666);
	if (rc == EACCES && x->rdonly) {
		/* A reader who may not write lock.mdb (LMDB's reader table) reads
		 * without it. No writer then knows of this reader: one that runs
		 * meanwhile may reuse pages it reads, which the values' checksums
		 * catch as damage. */
		mdb_env_close(x->env);
		if ((rc = mdb_env_create(&x->env)) || (rc = mdb_env_set_maxdbs(x->env, DB_COUNT)) ||
		    (rc = mdb_env_set_mapsize(x->env, x->map_size)))
			return lmdb_err(e, rc, "create environment", x);
		rc = mdb_env_open(x->env, x->path, MDB_NOTLS | MDB_NORDAHEAD | MDB_RDONLY | MDB_NOLOCK, 0666);
	}
	if (rc)
		return lmdb_err(e, rc, "open", x);
	if ((rc = check_size(x, e)))
		return rc;
	if (mdb_env_stat(x->env, &st) == 0)
		x->psize = st.ms_psize;
	if (mdb_env_get_fd(x->env, &x->fd) != 0)
		x->fd = -1;
	if (x->rdonly && mdb_env_info(x->env, &info) == 0 && info.me_last_txnid == 0)
		/* made, then interrupted before its first transaction: no index yet */
		return err_set(e, SNAPARC_NOT_FOUND, "%s: no index here (none was ever committed)", x->path);
	return open_dbs(x, e);
}

int idx_open(struct idx **out, const char *dir, const struct idx_opts *opts, struct err *e)
{
	struct idx *x = calloc(1, sizeof(*x));
	unsigned flags = opts ? opts->flags : 0;
	char data[4200];
	struct stat st;
	int rc;

	if (!x)
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", dir);
	snprintf(x->path, sizeof(x->path), "%s", dir);
	x->rdonly = !!(flags & IDX_RDONLY);
	x->map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
	pthread_rwlock_init(&x->resize, NULL);
	snprintf(data, sizeof(data), "%s/data.mdb", dir);
	if (stat(data, &st) != 0) {
		if (errno != ENOENT || !(flags & IDX_CREATE)) {
			rc = errno == ENOENT ? err_set(e, SNAPARC_NOT_FOUND, "%s: no index here", dir)
					     : err_errno(e, errno, "%s", data);
			goto fail;
		}
		if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
			rc = err_errno(e, errno, "%s", dir);
			goto fail;
		}
	} else if ((uint64_t)st.st_size > x->map_size) {
		/* a writer's file is as long as its map (MDB_WRITEMAP), sparse */
		x->map_size = (uint64_t)st.st_size;
	}
	if ((rc = env_open(x, e)))
		goto fail;
	if (!x->rdonly) {
		/* what an interrupted idx_shrink() left */
		snprintf(data, sizeof(data), "%s/data.mdb.tmp", dir);
		unlink(data);
	}
	*out = x;
	return 0;
fail:
	idx_close(x);
	return rc;
}

int idx_shrink(struct idx *x, struct err *e)
{
	char tmp[4200], data[4200];
	int fd, rc = 0;

	if (x->rdonly)
		return err_set(e, SNAPARC_INVALID, "%s: the index is open read-only", x->path);
	snprintf(tmp, sizeof(tmp), "%s/data.mdb.tmp", x->path);
	snprintf(data, sizeof(data), "%s/data.mdb", x->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno(e, errno, "%s", tmp);
	/* no transaction of this process may run while the file changes */
	pthread_rwlock_wrlock(&x->resize);
	if ((rc = mdb_env_copyfd2(x->env, fd, MDB_CP_COMPACT)))
		rc = lmdb_err(e, rc, "copy", x);
	else if (fsync(fd) != 0)
		rc = err_errno(e, errno, "%s: fsync", tmp);
	close(fd);
	if (rc) {
		unlink(tmp);
		pthread_rwlock_unlock(&x->resize);
		return rc;
	}
	mdb_env_close(x->env);
	x->env = NULL;
	if (rename(tmp, data) != 0) {
		rc = err_errno(e, errno, "%s: rename to %s", tmp, data);
		unlink(tmp);
	} else if ((fd = open(x->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	{
		int orc = env_open(x, rc ? NULL : e);

		if (orc && x->env) {
			mdb_env_close(x->env);
			x->env = NULL;
		}
		rc = rc ? rc : orc;
	}
	pthread_rwlock_unlock(&x->resize);
	return rc;
}

void idx_close(struct idx *x)
{
	if (!x)
		return;
	if (x->env)
		mdb_env_close(x->env);
	pthread_rwlock_destroy(&x->resize);
	free(x);
}

/* Another process grew the map: adopt its size (no transaction may be open here). */
static int adopt_map_size(struct idx *x, struct err *e)
{
	int rc;

	pthread_rwlock_wrlock(&x->resize);
	rc = mdb_env_set_mapsize(x->env, 0);
	pthread_rwlock_unlock(&x->resize);
	return rc ? lmdb_err(e, rc, "adopt the new map size", x) : 0;
}

static int txn_begin(struct idx *x, int write, struct idx_txn **out, struct err *e)
{
	struct idx_txn *t;
	int rc;

	if (write && x->rdonly)
		return err_set(e, SNAPARC_INVALID, "%s: the archive is open read-only", x->path);
	t = calloc(1, sizeof(*t));
	if (!t)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	t->x = x;
	t->write = write;
	if (!x->env) {
		free(t);
		return err_set(e, SNAPARC_IO, "%s: the index could not be reopened", x->path);
	}
	if (write) {
		int dead;

		/* a reader killed in a read transaction keeps LMDB from reusing
		 * any page freed since: clear such slots before each write */
		mdb_reader_check(x->env, &dead);
	}
	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&x->resize);
		rc = mdb_txn_begin(x->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
		if (rc != MDB_MAP_RESIZED || tries > 3)
			break;
		pthread_rwlock_unlock(&x->resize);
		if (adopt_map_size(x, e)) {
			free(t);
			return e ? e->code : SNAPARC_IO;
		}
	}
	if (rc) {
		pthread_rwlock_unlock(&x->resize);
		free(t);
		return lmdb_err(e, rc, write ? "begin write" : "begin read", x);
	}
	t->active = 1;
	if (write) {
		if ((rc = reserve_begin(t, e))) {
			mdb_txn_abort(t->txn);
			pthread_rwlock_unlock(&x->resize);
			free(t);
			return rc;
		}
	}
	*out = t;
	return 0;
}

int idx_read_begin(struct idx *x, struct idx_txn **out, struct err *e)
{
	return txn_begin(x, 0, out, e);
}

int idx_write_begin(struct idx *x, struct idx_txn **out, struct err *e)
{
	return txn_begin(x, 1, out, e);
}

/* get()'s cursors: a read transaction's are LMDB's to close only when
 * told; a write transaction's go with it. */
static void close_cursors(struct idx_txn *t)
{
	for (int i = 0; i < DB_COUNT; i++) {
		if (t->cur[i] && !t->write)
			mdb_cursor_close(t->cur[i]);
		t->cur[i] = NULL;
	}
}

void idx_read_reset(struct idx_txn *t)
{
	if (!t->active)
		return;
	mdb_txn_reset(t->txn);
	t->active = 0;
	pthread_rwlock_unlock(&t->x->resize);
}

int idx_read_renew(struct idx_txn *t, struct err *e)
{
	int rc;

	if (t->active)
		return 0;
	pthread_rwlock_rdlock(&t->x->resize);
	rc = mdb_txn_renew(t->txn);
	if (rc == MDB_MAP_RESIZED) {
		pthread_rwlock_unlock(&t->x->resize);
		if (adopt_map_size(t->x, e))
			return e ? e->code : SNAPARC_IO;
		pthread_rwlock_rdlock(&t->x->resize);
		rc = mdb_txn_renew(t->txn);
	}
	if (rc) {
		pthread_rwlock_unlock(&t->x->resize);
		return lmdb_err(e, rc, "renew read", t->x);
	}
	for (int i = 0; i < DB_COUNT; i++) {
		if (t->cur[i] && mdb_cursor_renew(t->txn, t->cur[i])) {
			mdb_cursor_close(t->cur[i]);
			t->cur[i] = NULL;
		}
	}
	t->active = 1;
	return 0;
}

/* After MDB_MAP_FULL: double the map (this process has no other transaction open). */
static void grow_map(struct idx *x)
{
	pthread_rwlock_wrlock(&x->resize);
	if (mdb_env_set_mapsize(x->env, x->map_size * 2) == 0)
		x->map_size *= 2;
	pthread_rwlock_unlock(&x->resize);
}

void idx_abort(struct idx_txn *t)
{
	int full;

	if (!t)
		return;
	full = t->map_full;
	close_cursors(t);
	if (t->active) {
		mdb_txn_abort(t->txn);
		if (t->write)
			unreserve(t->x, t->reserved);
		pthread_rwlock_unlock(&t->x->resize);
	} else if (!t->write) {
		mdb_txn_abort(t->txn);
	}
	if (full)
		grow_map(t->x);
	free(t);
}

/* Whether the file system of the index has no room for another page: LMDB
 * turns a short write into EIO, which a full disk is the usual cause of. */
static int disk_full(const struct idx *x)
{
	struct statvfs fs;

	return statvfs(x->path, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < 4096 * 4;
}

int idx_commit(struct idx_txn *t, struct err *e)
{
	struct idx *x = t->x;
	int rc;

	if (t->map_full) {
		idx_abort(t);
		return err_set(e, SNAPARC_NOMEM, "%s: the index map was full; it has grown, write again", x->path);
	}
	close_cursors(t);
	if ((rc = reserve(t, 0, e))) {   /* the free list's pages */
		idx_abort(t);
		return rc;
	}
	rc = mdb_txn_commit(t->txn);
	unreserve(x, t->reserved);
	pthread_rwlock_unlock(&x->resize);
	free(t);
	if (rc == MDB_MAP_FULL) {
		grow_map(x);
		return err_set(e, SNAPARC_NOMEM, "%s: the index map was full; it has grown, write again", x->path);
	}
	if (rc == 0)
		check_size(x, NULL); /* a commit can leave unwritten free pages at the end */
	if (rc == EIO && disk_full(x))
		return err_set(e, SNAPARC_IO, "%s: commit: %s (LMDB reports the short write as an I/O error)", x->path,
			       strerror(ENOSPC));
	return rc ? lmdb_err(e, rc, "commit", x) : 0;
}

/* Makes room for a value of vlen bytes and its checksum under key k; *v is
 * where the caller writes the value, then seal() its checksum. */
static int put_room(struct idx_txn *t, int db, const void *k, size_t klen, size_t vlen, unsigned flags,
		    uint8_t **v, struct err *e)
{
	MDB_val key = { klen, (void *)k }, val = { vlen + SUM_LEN, NULL };
	int rc;

	if ((rc = reserve(t, klen + vlen + SUM_LEN, e)))
		return rc;
	rc = mdb_put(t->txn, t->x->dbi[db], &key, &val, flags | MDB_RESERVE);
	if (rc == MDB_MAP_FULL)
		t->map_full = 1;
	if (rc)
		return lmdb_err(e, rc, db_names[db], t->x);
	wrote(t, val.mv_data, val.mv_size);
	*v = val.mv_data;
	return 0;
}

static void seal(int db, const void *k, size_t klen, uint8_t *v, size_t vlen)
{
	MDB_val key = { klen, (void *)k };

	be32_put(v + vlen, value_sum(db, &key, v, vlen));
}

static int put(struct idx_txn *t, int db, const void *k, size_t klen, const void *v, size_t vlen,
	       unsigned flags, struct err *e)
{
	uint8_t *p;
	int rc;

	if ((rc = put_room(t, db, k, klen, vlen, flags, &p, e)))
		return rc;
	if (vlen)
		memcpy(p, v, vlen);
	seal(db, k, klen, p, vlen);
	return 0;
}

/* Marks the index as of this format (an older snaparc then refuses it):
 * meta's "format", the one value without a checksum, in the room of one. */
static int put_format(struct idx_txn *t, struct err *e)
{
	uint8_t *p;
	int rc = put_room(t, DB_META, "format", 6, 0, 0, &p, e);

	if (!rc)
		be32_put(p, IDX_FORMAT);
	return rc;
}

/* The value under key k, checked; not found is SNAPARC_NOT_FOUND without a
 * message (callers word it). A key that is not there may be one whose bits
 * were flipped: it still sits where it was, where the search ends or just
 * before, and its value fails the checksum made with the key it had. One
 * descent answers both, with the transaction's cursor for db. */
static int get(struct idx_txn *t, int db, const void *k, size_t klen, MDB_val *v, struct err *e)
{
	MDB_val key = { klen, (void *)k };
	int rc = 0;

	if (!t->cur[db])
		rc = mdb_cursor_open(t->txn, t->x->dbi[db], &t->cur[db]);
	if (!rc)
		rc = mdb_cursor_get(t->cur[db], &key, v, MDB_SET_RANGE);
	if (rc == 0 && key.mv_size == klen && !memcmp(key.mv_data, k, klen))
		rc = checked(t, db, &key, v);
	else if (rc == 0 || rc == MDB_NOTFOUND) {
		if (rc == 0)
			rc = checked(t, db, &key, v);
		if (rc == 0 || rc == MDB_NOTFOUND)
			rc = cget(t, db, t->cur[db], &key, v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
		if (rc == 0 || rc == MDB_NOTFOUND)
			return SNAPARC_NOT_FOUND;
	}
	return rc ? txn_err(e, rc, db_names[db], t) : 0;
}

/* ---- meta ---- */

int idx_end_get(struct idx_txn *t, struct idx_pos *out, struct err *e)
{
	MDB_val v;
	int rc = get(t, DB_META, "end", 3, &v, e);

	out->segment = 0;
	out->offset = 0;
	if (rc == SNAPARC_NOT_FOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != 12)
		return err_set(e, SNAPARC_CORRUPT, "%s: meta 'end' has %zu bytes, not 12", t->x->path, v.mv_size);
	out->segment = be32_get(v.mv_data);
	out->offset = be64_get((const uint8_t *)v.mv_data + 4);
	return 0;
}

int idx_end_put(struct idx_txn *t, const struct idx_pos *end, struct err *e)
{
	uint8_t v[12];

	be32_put(v, end->segment);
	be64_put(v + 4, end->offset);
	return put(t, DB_META, "end", 3, v, sizeof(v), 0, e);
}

int idx_live_get(struct idx_txn *t, uint32_t *first, struct err *e)
{
	MDB_val v;
	int rc = get(t, DB_META, "live", 4, &v, e);

	*first = 0;
	if (rc == SNAPARC_NOT_FOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return err_set(e, SNAPARC_CORRUPT, "%s: meta 'live' has %zu bytes, not 4", t->x->path, v.mv_size);
	*first = be32_get(v.mv_data);
	return 0;
}

int idx_live_put(struct idx_txn *t, uint32_t first, struct err *e)
{
	uint8_t v[4];

	be32_put(v, first);
	return put(t, DB_META, "live", 4, v, sizeof(v), 0, e);
}

int idx_retired_get(struct idx_txn *t, struct idx_retired *out, struct err *e)
{
	MDB_val v;
	int rc = get(t, DB_META, "retired", 7, &v, e);

	memset(out, 0, sizeof(*out));
	if (rc == SNAPARC_NOT_FOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != 16 || be32_get(v.mv_data) > be32_get((const uint8_t *)v.mv_data + 4))
		return err_set(e, SNAPARC_CORRUPT, "%s: meta 'retired' is malformed", t->x->path);
	out->first = be32_get(v.mv_data);
	out->end = be32_get((const uint8_t *)v.mv_data + 4);
	out->txn = be64_get((const uint8_t *)v.mv_data + 8);
	return 0;
}

int idx_retired_put(struct idx_txn *t, const struct idx_retired *r, struct err *e)
{
	MDB_val key = { 7, (void *)"retired" };
	uint8_t v[16];
	int rc;

	if (r->first == r->end) {
		rc = mdb_del(t->txn, t->x->dbi[DB_META], &key, NULL);
		return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err(e, rc, "meta", t->x);
	}
	be32_put(v, r->first);
	be32_put(v + 4, r->end);
	be64_put(v + 8, r->txn);
	return put(t, DB_META, "retired", 7, v, sizeof(v), 0, e);
}

uint64_t idx_txn_id(const struct idx_txn *t)
{
	return (uint64_t)mdb_txn_id(t->txn);
}

/* mdb_reader_list() prints a header, then "pid thread txnid" per live
 * reader slot, the txnid as "-" when the slot holds no transaction. */
static int reader_line(const char *msg, void *ctx)
{
	uint64_t *oldest = ctx;
	unsigned long long txn;
	char thread[64];
	int pid;

	if (sscanf(msg, "%d %63s %llu", &pid, thread, &txn) == 3 && txn < *oldest)
		*oldest = txn;
	return 0;
}

int idx_oldest_reader(struct idx *x, uint64_t *txn, struct err *e)
{
	int dead, rc = mdb_reader_check(x->env, &dead);

	if (rc)
		return lmdb_err(e, rc, "reader table", x);
	*txn = UINT64_MAX;
	if (mdb_reader_list(x->env, reader_line, txn) < 0)
		return err_set(e, SNAPARC_IO, "%s: cannot list the readers", x->path);
	return 0;
}

static void dict_key(uint8_t k[8], uint32_t id)
{
	memcpy(k, "dict", 4);
	be32_put(k + 4, id);
}

int idx_dict_get(struct idx_txn *t, uint32_t id, const uint8_t **p, size_t *len, struct err *e)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	dict_key(k, id);
	rc = get(t, DB_META, k, sizeof(k), &v, e);
	if (rc == SNAPARC_NOT_FOUND)
		return err_set(e, SNAPARC_CORRUPT, "%s: dictionary %u is missing", t->x->path, id);
	if (rc)
		return rc;
	*p = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int idx_dict_put(struct idx_txn *t, uint32_t id, const uint8_t *p, size_t len, struct err *e)
{
	uint8_t k[8];

	dict_key(k, id);
	return put(t, DB_META, k, sizeof(k), p, len, MDB_NOOVERWRITE, e);
}

int idx_dict_last(struct idx_txn *t, uint32_t *id, struct err *e)
{
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key, val;
	int rc;

	*id = 0;
	dict_key(k, UINT32_MAX);
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_META], &c)))
		return lmdb_err(e, rc, "meta", t->x);
	key.mv_size = 4;
	key.mv_data = k;
	/* the dictionaries are the keys "dict" + id; find the last of them */
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size == 8 && !memcmp(key.mv_data, "dict", 4)) {
		*id = be32_get((const uint8_t *)key.mv_data + 4);
		rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err(e, rc, "meta", t->x);
}

/* ---- catalog ---- */

#define SNAPSHOT_FIXED (1 + 4 + 11 * 8 + 2 * 12 + 2)

static size_t snapshot_encode(uint8_t *p, const struct idx_snapshot *s)
{
	uint64_t f[11] = { (uint64_t)s->imported_ms, (uint64_t)s->mint, (uint64_t)s->maxt, s->series,
			   s->tombstones, s->exemplars, s->records, s->source_bytes, s->raw_bytes,
			   s->stored_bytes, (uint64_t)s->flags << 32 | (s->labels == s->id ? 0 : s->labels) };
	size_t nl = strlen(s->name), o = 0;

	p[o++] = SNAPSHOT_VERSION;
	be32_put(p + o, s->dict_id), o += 4;
	for (int i = 0; i < 11; i++, o += 8)
		be64_put(p + o, f[i]);
	be32_put(p + o, s->start.segment), o += 4;
	be64_put(p + o, s->start.offset), o += 8;
	be32_put(p + o, s->end.segment), o += 4;
	be64_put(p + o, s->end.offset), o += 8;
	be16_put(p + o, (uint16_t)nl), o += 2;
	memcpy(p + o, s->name, nl);
	return o + nl;
}

static int snapshot_decode(struct idx_txn *t, uint32_t id, const MDB_val *v, struct idx_snapshot *s,
			   struct err *e)
{
	const uint8_t *p = v->mv_data;
	uint64_t f[11];
	size_t o = 5, nl;

	if (v->mv_size < SNAPSHOT_FIXED || p[0] != SNAPSHOT_VERSION ||
	    (nl = be16_get(p + SNAPSHOT_FIXED - 2)) != v->mv_size - SNAPSHOT_FIXED || nl > IDX_NAME_MAX)
		return err_set(e, SNAPARC_CORRUPT, "%s: catalog entry of snapshot %u is malformed (%zu bytes)",
			       t->x->path, id, v->mv_size);
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->dict_id = be32_get(p + 1);
	for (int i = 0; i < 11; i++, o += 8)
		f[i] = be64_get(p + o);
	s->imported_ms = (int64_t)f[0];
	s->mint = (int64_t)f[1];
	s->maxt = (int64_t)f[2];
	s->series = f[3];
	s->tombstones = f[4];
	s->exemplars = f[5];
	s->records = f[6];
	s->source_bytes = f[7];
	s->raw_bytes = f[8];
	s->stored_bytes = f[9];
	s->flags = (uint32_t)(f[10] >> 32);
	s->labels = (uint32_t)f[10] ? (uint32_t)f[10] : id;
	s->start.segment = be32_get(p + o), o += 4;
	s->start.offset = be64_get(p + o), o += 8;
	s->end.segment = be32_get(p + o), o += 4;
	s->end.offset = be64_get(p + o), o += 8;
	memcpy(s->name, p + SNAPSHOT_FIXED, nl);
	s->name[nl] = '\0';
	return 0;
}

int idx_snapshot_put(struct idx_txn *t, const struct idx_snapshot *s, struct err *e)
{
	uint8_t v[SNAPSHOT_FIXED + IDX_NAME_MAX], k[4];
	size_t nl = strlen(s->name);
	int rc;

	if (nl == 0 || nl > IDX_NAME_MAX)
		return err_set(e, SNAPARC_INVALID, "snapshot name must have 1 to %d bytes", IDX_NAME_MAX);
	be32_put(k, s->id);
	rc = put(t, DB_NAMES, s->name, nl, k, 4, MDB_NOOVERWRITE, e);
	if (rc == SNAPARC_EXISTS)
		return err_set(e, SNAPARC_EXISTS, "a snapshot named %s is already archived", s->name);
	if (rc)
		return rc;
	return put(t, DB_SNAPSHOTS, k, 4, v, snapshot_encode(v, s), 0, e);
}

int idx_snapshot_update(struct idx_txn *t, const struct idx_snapshot *s, struct err *e)
{
	uint8_t v[SNAPSHOT_FIXED + IDX_NAME_MAX], k[4];
	MDB_val old;
	int rc;

	be32_put(k, s->id);
	if ((rc = get(t, DB_SNAPSHOTS, k, 4, &old, e)))
		return rc == SNAPARC_NOT_FOUND ? err_set(e, rc, "no snapshot with id %u", s->id) : rc;
	return put(t, DB_SNAPSHOTS, k, 4, v, snapshot_encode(v, s), 0, e);
}

/* The snapshot whose label index serves snap (snap itself when it has its own). */
static int labels_of(struct idx_txn *t, uint32_t snap, uint32_t *owner, struct err *e)
{
	uint8_t k[4];
	MDB_val v;
	int rc;

	be32_put(k, snap);
	*owner = snap;
	rc = get(t, DB_SNAPSHOTS, k, 4, &v, e);
	if (rc == SNAPARC_NOT_FOUND)
		return 0;   /* its tables, if any, are its own */
	if (rc)
		return rc;
	if (v.mv_size < SNAPSHOT_FIXED)
		return err_set(e, SNAPARC_CORRUPT, "%s: catalog entry of snapshot %u is malformed (%zu bytes)",
			       t->x->path, snap, v.mv_size);
	if (be32_get((const uint8_t *)v.mv_data + 5 + 10 * 8 + 4))
		*owner = be32_get((const uint8_t *)v.mv_data + 5 + 10 * 8 + 4);
	return 0;
}

int idx_snapshot_get(struct idx_txn *t, uint32_t id, struct idx_snapshot *out, struct err *e)
{
	uint8_t k[4];
	MDB_val v;
	int rc;

	be32_put(k, id);
	rc = get(t, DB_SNAPSHOTS, k, 4, &v, e);
	if (rc == SNAPARC_NOT_FOUND)
		return err_set(e, rc, "no snapshot with id %u", id);
	return rc ? rc : snapshot_decode(t, id, &v, out, e);
}

int idx_snapshot_by_name(struct idx_txn *t, const char *name, struct idx_snapshot *out, struct err *e)
{
	MDB_val v;
	size_t len = strlen(name);
	int rc = len && len <= IDX_NAME_MAX ? get(t, DB_NAMES, name, len, &v, e) : SNAPARC_NOT_FOUND;

	if (rc == SNAPARC_NOT_FOUND)
		return err_set(e, rc, "no snapshot named %s", name);
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return err_set(e, SNAPARC_CORRUPT, "%s: name entry of %s is malformed", t->x->path, name);
	return idx_snapshot_get(t, be32_get(v.mv_data), out, e);
}

int idx_snapshot_prev(struct idx_txn *t, uint32_t before, struct idx_snapshot *out, struct err *e)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint8_t k[4];
	int rc;

	if (before == 0)
		return SNAPARC_NOT_FOUND;
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_SNAPSHOTS], &c)))
		return lmdb_err(e, rc, "snapshots", t->x);
	be32_put(k, before);
	key.mv_size = 4;
	key.mv_data = k;
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	rc = rc == 0 ? cget(t, DB_SNAPSHOTS, c, &key, &val, MDB_PREV) : cget(t, DB_SNAPSHOTS, c, &key, &val, MDB_LAST);
	if (rc == 0 && key.mv_size != 4)
		rc = MDB_CORRUPTED;
	if (rc == 0 && be32_get(key.mv_data) >= before)
		rc = MDB_NOTFOUND;
	if (rc == 0)
		rc = snapshot_decode(t, be32_get(key.mv_data), &val, out, e);
	else if (rc == MDB_NOTFOUND)
		rc = SNAPARC_NOT_FOUND;
	else
		rc = txn_err(e, rc, "snapshots", t);
	mdb_cursor_close(c);
	return rc;
}

static int snapshot_cursor(struct idx_txn *t, uint32_t after, int last, struct idx_snapshot *out,
			   struct err *e)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint8_t k[4];
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_SNAPSHOTS], &c)))
		return lmdb_err(e, rc, "snapshots", t->x);
	if (last) {
		rc = cget(t, DB_SNAPSHOTS, c, &key, &val, MDB_LAST);
	} else {
		if (after == UINT32_MAX) {
			mdb_cursor_close(c);
			return SNAPARC_NOT_FOUND;
		}
		be32_put(k, after + 1);
		key.mv_size = 4;
		key.mv_data = k;
		rc = cget(t, DB_SNAPSHOTS, c, &key, &val, MDB_SET_RANGE);
	}
	if (rc == 0 && key.mv_size != 4)
		rc = MDB_CORRUPTED;
	if (rc == 0)
		rc = snapshot_decode(t, be32_get(key.mv_data), &val, out, e);
	else if (rc == MDB_NOTFOUND)
		rc = last ? err_set(e, SNAPARC_NOT_FOUND, "the archive holds no snapshot") : SNAPARC_NOT_FOUND;
	else
		rc = txn_err(e, rc, "snapshots", t);
	mdb_cursor_close(c);
	return rc;
}

int idx_snapshot_last(struct idx_txn *t, struct idx_snapshot *out, struct err *e)
{
	return snapshot_cursor(t, 0, 1, out, e);
}

int idx_snapshot_next(struct idx_txn *t, uint32_t after, struct idx_snapshot *out, struct err *e)
{
	return snapshot_cursor(t, after, 0, out, e);
}

/* Positions c at the last key before `key`, where a block holding it (or
 * what follows it) starts, or at the first key when none is before. */
static int seek_block_before(struct idx_txn *t, int db, MDB_cursor *c, MDB_val *key, MDB_val *val)
{
	int rc = mdb_cursor_get(c, key, val, MDB_SET_RANGE);

	if (rc == 0)
		rc = cget(t, db, c, key, val, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = cget(t, db, c, key, val, MDB_LAST);
	if (rc == MDB_NOTFOUND)
		rc = cget(t, db, c, key, val, MDB_FIRST);
	return rc;
}

/* ---- series and hash tables ---- */

static void key_snap_u64(uint8_t k[12], uint32_t snap, uint64_t v)
{
	be32_put(k, snap);
	be64_put(k + 4, v);
}

/*
 * Where entry j of a block with cuts is, unless it follows the one before:
 * as an offset from where one of the NEAR_BACK entries before it in the
 * same segment ends (the cuts of one snapshot point into the records of
 * several later ones, each in ref order), uvarint k then varint
 * (offset - that end), the nearest; or uvarint 0, uvarint segment,
 * uvarint offset.
 */
#define NEAR_BACK 32

static void put_near(struct buf *b, const struct idx_loc *l, size_t j)
{
	uint64_t best = UINT64_MAX;
	size_t k_best = 0;

	for (size_t k = 1; k <= j && k <= NEAR_BACK; k++) {
		const struct idx_loc *p = &l[j - k];
		uint64_t d;

		if (p->segment != l[j].segment)
			continue;
		d = zigzag_encode((int64_t)(l[j].offset - (p->offset + p->span)));
		if (d < best) {
			best = d;
			k_best = k;
		}
	}
	if (k_best && uvarint_len(best) < uvarint_len(l[j].segment) + uvarint_len(l[j].offset)) {
		buf_put_uvarint(b, k_best);
		buf_put_uvarint(b, best);
		return;
	}
	buf_put_uvarint(b, 0);
	buf_put_uvarint(b, l[j].segment);
	buf_put_uvarint(b, l[j].offset);
}

int idx_series_put(struct idx_txn *t, uint32_t snap, const struct idx_loc *locs, size_t n, struct err *e)
{
	struct buf b = { 0 };
	int rc = 0, wrote_format = 0;

	for (size_t i = 0; i < n && !rc; i += IDX_BLOCK_ENTRIES) {
		size_t m = n - i < IDX_BLOCK_ENTRIES ? n - i : IDX_BLOCK_ENTRIES;
		uint8_t k[12];

		int cuts = 0;

		for (size_t j = i; j < i + m; j++)
			cuts |= locs[j].cut != 0;
		if (cuts && !wrote_format) {
			if ((rc = put_format(t, e)))
				break;
			wrote_format = 1;
		}
		buf_reset(&b);
		if (cuts)
			buf_put_byte(&b, 0);
		buf_put_uvarint(&b, m);
		for (size_t j = i; j < i + m; j++) {
			const struct idx_loc *l = &locs[j], *p = &locs[j - (j > i)];
			int follows = j > i && l->segment == p->segment && l->offset == p->offset + p->span;

			if (j > i && l->ref <= p->ref) {
				buf_free(&b);
				return err_set(e, SNAPARC_INVALID, "series refs not sorted and unique at ref %llu",
					       (unsigned long long)l->ref);
			}
			buf_put_uvarint(&b, j > i ? l->ref - p->ref : 0);
			if (!cuts) {
				buf_put_uvarint(&b, (uint64_t)l->span << 1 | (uint64_t)follows);
				if (!follows) {
					buf_put_uvarint(&b, l->segment);
					buf_put_uvarint(&b, l->offset);
				}
				continue;
			}
			buf_put_uvarint(&b, (uint64_t)l->span << 2 | (uint64_t)(l->cut != 0) << 1 | (uint64_t)follows);
			if (l->cut)
				buf_put_uvarint(&b, l->cut);
			if (!follows)
				put_near(&b, locs + i, j - i);
		}
		if (b.oom) {
			rc = err_set(e, SNAPARC_NOMEM, "out of memory building the series table");
			break;
		}
		key_snap_u64(k, snap, locs[i].ref);
		rc = put(t, DB_SERIES, k, sizeof(k), b.p, b.len, MDB_APPEND, e);
		if (rc == SNAPARC_EXISTS) /* MDB_APPEND refuses keys out of order */
			rc = put(t, DB_SERIES, k, sizeof(k), b.p, b.len, 0, e);
	}
	buf_free(&b);
	return rc;
}

static uint32_t prefix(uint64_t hash)
{
	return (uint32_t)(hash >> 32);
}

int idx_hashes_put(struct idx_txn *t, uint32_t snap, uint32_t first_block, const struct idx_hash *ents, size_t n,
		   struct err *e)
{
	struct buf b = { 0 };
	uint32_t block = first_block;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i += IDX_BLOCK_ENTRIES, block++) {
		size_t m = n - i < IDX_BLOCK_ENTRIES ? n - i : IDX_BLOCK_ENTRIES;
		uint8_t k[12];

		buf_reset(&b);
		buf_put_uvarint(&b, m);
		for (size_t j = i; j < i + m; j++) {
			if (j > i && ents[j].hash < ents[j - 1].hash) {
				buf_free(&b);
				return err_set(e, SNAPARC_INVALID, "label hashes not sorted");
			}
			buf_put_uvarint(&b, j > i ? prefix(ents[j].hash) - prefix(ents[j - 1].hash) : 0);
			buf_put_uvarint(&b, ents[j].ref);
		}
		if (b.oom) {
			rc = err_set(e, SNAPARC_NOMEM, "out of memory building the hash table");
			break;
		}
		be32_put(k, snap);
		be32_put(k + 4, prefix(ents[i].hash));
		be32_put(k + 8, block);
		rc = put(t, DB_HASHES, k, sizeof(k), b.p, b.len, MDB_APPEND, e);
		if (rc == SNAPARC_EXISTS)
			rc = put(t, DB_HASHES, k, sizeof(k), b.p, b.len, 0, e);
	}
	buf_free(&b);
	return rc;
}

static int block_corrupt(struct idx_txn *t, const char *db, uint32_t snap, struct err *e)
{
	return err_set(e, SNAPARC_CORRUPT, "%s: a %s block of snapshot %u is malformed", t->x->path, db, snap);
}

/* Decodes a series block into out[] (IDX_BLOCK_ENTRIES) as far as the first
 * entry with a ref of at least `until`; the count decoded, or <0 corrupt. */
static int series_block_decode(struct idx_txn *t, uint32_t snap, uint64_t first, const MDB_val *v,
			       uint64_t until, struct idx_loc *out, struct err *e)
{
	struct dec d;
	uint64_t n, r = first;
	int cuts;

	dec_init(&d, v->mv_data, v->mv_size);
	/* a block with cuts begins with a 0 (a count is never 0) */
	if ((cuts = v->mv_size && *(const uint8_t *)v->mv_data == 0))
		dec_byte(&d, "mark");
	n = dec_uvarint(&d, "count");
	for (uint64_t i = 0; i < n && i < IDX_BLOCK_ENTRIES && dec_ok(&d); i++) {
		uint64_t seg, off, span, cut = 0, back;

		r += dec_uvarint(&d, "ref");
		span = dec_uvarint(&d, "span");
		if (cuts) {
			if (span & 2)
				cut = dec_uvarint(&d, "cut");
			if ((span & 2) && (cut == 0 || cut > UINT32_MAX))
				return block_corrupt(t, "series", snap, e);
			span = (span >> 1 & ~(uint64_t)1) | (span & 1);
		}
		if (span & 1) {
			if (i == 0)
				break;
			seg = out[i - 1].segment;
			off = out[i - 1].offset + out[i - 1].span;
		} else if (cuts && (back = dec_uvarint(&d, "back")) != 0) {
			/* near where an earlier entry's record ends (put_near()) */
			if (back > i || back > NEAR_BACK)
				return block_corrupt(t, "series", snap, e);
			seg = out[i - back].segment;
			off = out[i - back].offset + out[i - back].span + (uint64_t)zigzag_decode(dec_uvarint(&d, "offset"));
		} else {
			seg = dec_uvarint(&d, "segment");
			off = dec_uvarint(&d, "offset");
		}
		span >>= 1;
		if (!dec_ok(&d) || seg > UINT32_MAX || span > UINT32_MAX || (i && r <= out[i - 1].ref))
			return block_corrupt(t, "series", snap, e);
		out[i].ref = r;
		out[i].segment = (uint32_t)seg;
		out[i].offset = off;
		out[i].span = (uint32_t)span;
		out[i].cut = (uint32_t)cut;
		if (r >= until)
			return (int)i + 1;
	}
	if (!dec_ok(&d) || n > IDX_BLOCK_ENTRIES || n == 0 || dec_left(&d))
		return block_corrupt(t, "series", snap, e);
	return (int)n;
}

/* Finds ref in a series block. 1 found, 0 not there, <0 corrupt. */
static int series_block_find(struct idx_txn *t, uint32_t snap, uint64_t first, const MDB_val *v,
			     uint64_t ref, struct idx_loc *out, struct err *e)
{
	struct idx_loc locs[IDX_BLOCK_ENTRIES];
	int n = series_block_decode(t, snap, first, v, ref, locs, e);

	for (int i = 0; i < n; i++) {
		if (locs[i].ref == ref) {
			*out = locs[i];
			return 1;
		}
	}
	return n < 0 ? n : 0;
}

struct idx_series_iter {
	struct idx_txn *t;
	MDB_cursor *c;
	uint32_t snap;
	int started, n, i;
	struct idx_loc locs[IDX_BLOCK_ENTRIES];
};

int idx_series_iter_open(struct idx_txn *t, uint32_t snap, struct idx_series_iter **out, struct err *e)
{
	struct idx_series_iter *it = calloc(1, sizeof(*it));
	int rc;

	if (!it)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_SERIES], &it->c))) {
		free(it);
		return lmdb_err(e, rc, "series", t->x);
	}
	it->t = t;
	it->snap = snap;
	*out = it;
	return 0;
}

int idx_series_iter_next(struct idx_series_iter *it, struct idx_loc *out, struct err *e)
{
	while (it->i >= it->n) {
		uint8_t k[12];
		MDB_val key = { sizeof(k), k }, val;
		int rc;

		key_snap_u64(k, it->snap, 0);
		rc = cget(it->t, DB_SERIES, it->c, &key, &val, it->started ? MDB_NEXT : MDB_SET_RANGE);
		it->started = 1;
		if (rc == MDB_NOTFOUND || (rc == 0 && (key.mv_size != 12 || be32_get(key.mv_data) != it->snap)))
			return 0;
		if (rc)
			return txn_err(e, rc, "series", it->t);
		it->n = series_block_decode(it->t, it->snap, be64_get((const uint8_t *)key.mv_data + 4), &val,
					    UINT64_MAX, it->locs, e);
		if (it->n < 0)
			return it->n;
		it->i = 0;
	}
	*out = it->locs[it->i++];
	return 1;
}

void idx_series_iter_close(struct idx_series_iter *it)
{
	if (!it)
		return;
	mdb_cursor_close(it->c);
	free(it);
}

int idx_series_get(struct idx_txn *t, uint32_t snap, uint64_t ref, struct idx_loc *out, struct err *e)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint8_t k[12];
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_SERIES], &c)))
		return lmdb_err(e, rc, "series", t->x);
	key_snap_u64(k, snap, ref);
	key.mv_size = sizeof(k);
	key.mv_data = k;
	/* the block holding ref starts at ref or is the one before the next */
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	if (rc == 0 && (key.mv_size != 12 || memcmp(key.mv_data, k, 12) != 0))
		rc = cget(t, DB_SERIES, c, &key, &val, MDB_PREV);
	else if (rc == 0)
		rc = checked(t, DB_SERIES, &key, &val);
	else if (rc == MDB_NOTFOUND)
		rc = cget(t, DB_SERIES, c, &key, &val, MDB_LAST);
	if (rc == 0 && key.mv_size == 12 && be32_get(key.mv_data) == snap)
		rc = series_block_find(t, snap, be64_get((const uint8_t *)key.mv_data + 4), &val, ref, out, e);
	else if (rc == MDB_NOTFOUND)
		rc = 0;
	else if (rc)
		rc = txn_err(e, rc, "series", t);
	if (rc == 0) {
		/* Not there: the next block must start after ref, or the tree led
		 * the search astray (a damaged key or branch page). */
		int next = cget(t, DB_SERIES, c, &key, &val, MDB_NEXT);

		if (next == 0 && key.mv_size == 12 && be32_get(key.mv_data) == snap &&
		    be64_get((const uint8_t *)key.mv_data + 4) <= ref)
			rc = block_corrupt(t, "series", snap, e);
		else if (next && next != MDB_NOTFOUND)
			rc = txn_err(e, next, "series", t);
	}
	mdb_cursor_close(c);
	if (rc == 0)
		return err_set(e, SNAPARC_NOT_FOUND, "no series with ref %llu in snapshot %u",
			       (unsigned long long)ref, snap);
	return rc < 0 ? rc : 0;
}

/* Collects refs with the wanted prefix from one hash block; sets *past when
 * the block goes beyond it. */
static int hash_block_scan(struct idx_txn *t, uint32_t snap, uint32_t first, const MDB_val *v, uint32_t want,
			   uint64_t *refs, size_t cap, size_t *n, int *past, struct err *e)
{
	struct dec d;
	uint64_t count, p = first;

	dec_init(&d, v->mv_data, v->mv_size);
	count = dec_uvarint(&d, "count");
	for (uint64_t i = 0; i < count && dec_ok(&d); i++) {
		uint64_t ref;

		p += dec_uvarint(&d, "prefix");
		ref = dec_uvarint(&d, "ref");
		if (!dec_ok(&d))
			break;
		if (p > want) {
			*past = 1;
			return 0;
		}
		if (p == want) {
			if (*n < cap)
				refs[*n] = ref;
			(*n)++;
		}
	}
	if (!dec_ok(&d) || count > IDX_BLOCK_ENTRIES)
		return block_corrupt(t, "hashes", snap, e);
	return 0;
}

int idx_hash_find(struct idx_txn *t, uint32_t snap, uint64_t hash, uint64_t *refs, size_t cap,
		  size_t *n, struct err *e)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint8_t k[12];
	uint32_t want = prefix(hash);
	int rc, past = 0;

	*n = 0;
	if ((rc = labels_of(t, snap, &snap, e)))
		return rc;
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_HASHES], &c)))
		return lmdb_err(e, rc, "hashes", t->x);
	be32_put(k, snap);
	be32_put(k + 4, want);
	be32_put(k + 8, 0);
	key.mv_size = sizeof(k);
	key.mv_data = k;
	/* entries with the prefix may start in the block before the first block
	 * keyed at or after it, and run over several blocks */
	rc = seek_block_before(t, DB_HASHES, c, &key, &val);
	while (rc == 0 && !past) {
		if (key.mv_size != 12) {
			rc = block_corrupt(t, "hashes", snap, e);
			break;
		}
		if (be32_get(key.mv_data) < snap) {
			rc = cget(t, DB_HASHES, c, &key, &val, MDB_NEXT);
			continue;
		}
		if (be32_get(key.mv_data) > snap || be32_get((const uint8_t *)key.mv_data + 4) > want)
			break;
		rc = hash_block_scan(t, snap, be32_get((const uint8_t *)key.mv_data + 4), &val, want, refs,
				     cap, n, &past, e);
		if (rc)
			break;
		rc = cget(t, DB_HASHES, c, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		return 0;
	return lmdb_code(rc) ? txn_err(e, rc, "hashes", t) : rc;
}

/* ---- per-series side data, and other records ---- */

int idx_tombstones_put(struct idx_txn *t, uint32_t snap, uint64_t ref, const uint8_t *p, size_t len,
		       struct err *e)
{
	uint8_t k[12];

	key_snap_u64(k, snap, ref);
	return put(t, DB_TOMBSTONES, k, sizeof(k), p, len, 0, e);
}

static int side_get(struct idx_txn *t, int db, uint32_t snap, uint64_t ref, const uint8_t **p,
		    size_t *len, struct err *e)
{
	uint8_t k[12];
	MDB_val v;
	int rc;

	key_snap_u64(k, snap, ref);
	rc = get(t, db, k, sizeof(k), &v, e);
	if (rc)
		return rc;
	*p = v.mv_data;
	*len = v.mv_size;
	return 0;
}

int idx_tombstones_get(struct idx_txn *t, uint32_t snap, uint64_t ref, const uint8_t **p, size_t *len,
		       struct err *e)
{
	return side_get(t, DB_TOMBSTONES, snap, ref, p, len, e);
}

int idx_exemplars_put(struct idx_txn *t, uint32_t snap, const struct idx_loc *loc, struct err *e)
{
	uint8_t k[12], v[3 * UVARINT_MAX_LEN];
	size_t n = 0;

	key_snap_u64(k, snap, loc->ref);
	n += uvarint_put(v + n, loc->segment);
	n += uvarint_put(v + n, loc->offset);
	n += uvarint_put(v + n, loc->span);
	return put(t, DB_EXEMPLARS, k, sizeof(k), v, n, 0, e);
}

int idx_exemplars_get(struct idx_txn *t, uint32_t snap, uint64_t ref, struct idx_loc *out, struct err *e)
{
	const uint8_t *p;
	size_t len;
	struct dec d;
	uint64_t seg, span;
	int rc = side_get(t, DB_EXEMPLARS, snap, ref, &p, &len, e);

	if (rc)
		return rc;
	dec_init(&d, p, len);
	seg = dec_uvarint(&d, "segment");
	out->offset = dec_uvarint(&d, "offset");
	span = dec_uvarint(&d, "span");
	if (!dec_ok(&d) || dec_left(&d) || seg > UINT32_MAX || span > UINT32_MAX)
		return err_set(e, SNAPARC_CORRUPT, "%s: exemplars entry of ref %llu in snapshot %u is malformed",
			       t->x->path, (unsigned long long)ref, snap);
	out->ref = ref;
	out->segment = (uint32_t)seg;
	out->span = (uint32_t)span;
	out->cut = 0;
	return 0;
}

int idx_other_put(struct idx_txn *t, uint32_t snap, const struct idx_loc *loc, uint8_t type, struct err *e)
{
	uint8_t k[16], v[5];

	be32_put(k, snap);
	be32_put(k + 4, loc->segment);
	be64_put(k + 8, loc->offset);
	be32_put(v, loc->span);
	v[4] = type;
	return put(t, DB_OTHERS, k, sizeof(k), v, sizeof(v), 0, e);
}

/* Visits the keys of db that start with snap's id. */
static int scan_prefixed(struct idx_txn *t, int db, uint32_t snap, int (*each)(const MDB_val *, const MDB_val *, void *),
			 void *ctx, struct err *e)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint8_t k[4];
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[db], &c)))
		return lmdb_err(e, rc, db_names[db], t->x);
	be32_put(k, snap);
	key.mv_size = 4;
	key.mv_data = k;
	rc = cget(t, db, c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= 4 && !memcmp(key.mv_data, k, 4)) {
		if ((rc = each(&key, &val, ctx)))
			break;
		rc = cget(t, db, c, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND || rc == 0)
		return 0;
	return lmdb_code(rc) ? txn_err(e, rc, db_names[db], t) : rc;
}

struct loc_scan {
	struct idx_txn *t;
	uint32_t snap;
	idx_loc_fn fn;
	void *ctx;
	struct err *e;
};

static int each_exemplars(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct loc_scan *ls = ctx;
	struct idx_loc loc;
	uint64_t ref;
	int rc;

	if (k->mv_size != 12)
		return block_corrupt(ls->t, "exemplars", ls->snap, ls->e);
	ref = be64_get((const uint8_t *)k->mv_data + 4);
	if ((rc = idx_exemplars_get(ls->t, ls->snap, ref, &loc, ls->e)))
		return rc;
	(void)v;
	return ls->fn(ls->ctx, &loc, 0);
}

static int each_other(const MDB_val *k, const MDB_val *v, void *ctx)
{
	struct loc_scan *ls = ctx;
	struct idx_loc loc = { 0 };

	if (k->mv_size != 16 || v->mv_size != 5)
		return block_corrupt(ls->t, "others", ls->snap, ls->e);
	loc.segment = be32_get((const uint8_t *)k->mv_data + 4);
	loc.offset = be64_get((const uint8_t *)k->mv_data + 8);
	loc.span = be32_get(v->mv_data);
	loc.cut = 0;
	return ls->fn(ls->ctx, &loc, ((const uint8_t *)v->mv_data)[4]);
}

int idx_exemplars_scan(struct idx_txn *t, uint32_t snap, idx_loc_fn fn, void *ctx, struct err *e)
{
	struct loc_scan ls = { t, snap, fn, ctx, e };

	return scan_prefixed(t, DB_EXEMPLARS, snap, each_exemplars, &ls, e);
}

int idx_others_scan(struct idx_txn *t, uint32_t snap, idx_loc_fn fn, void *ctx, struct err *e)
{
	struct loc_scan ls = { t, snap, fn, ctx, e };

	return scan_prefixed(t, DB_OTHERS, snap, each_other, &ls, e);
}

/* ---- postings ---- */

/* Values over half a page live in overflow pages that have a 16-byte
 * header: a block that ends by 4080 bytes fills one 4 KiB page. */
#define POSTINGS_BLOCK 3584
#define POSTINGS_BLOCK_MAX 4070
#define POSTING_KEY_VALUE_MAX IDX_POSTING_VALUE_MAX   /* a block's key: its first value's first bytes */
#define POSTING_KEY_MAX (4 + 256 + 1 + POSTING_KEY_VALUE_MAX + 4)

static size_t posting_key(uint8_t *k, uint32_t snap, const char *name, size_t name_len, const char *value,
			  size_t value_len)
{
	size_t n = 4, vl = value_len < POSTING_KEY_VALUE_MAX ? value_len : POSTING_KEY_VALUE_MAX;

	be32_put(k, snap);
	memcpy(k + n, name, name_len);
	n += name_len;
	k[n++] = 0;
	memcpy(k + n, value, vl);
	return n + vl;
}

/* A value's entry up to its list: uvarint (shared << 1 | long), the rest of
 * its kept bytes, and for a long value the hash of it all. */
#define ENTRY_HEAD_MAX (2 * UVARINT_MAX_LEN + IDX_POSTING_VALUE_MAX + 8)

_Static_assert(sizeof(((struct idx_postings_block *)0)->bytes) >= POSTINGS_BLOCK + ENTRY_HEAD_MAX,
	       "a block being filled holds under POSTINGS_BLOCK bytes and one more head");

static size_t entry_head(uint8_t *h, const struct idx_posting *v, size_t shared)
{
	size_t kept = v->len > IDX_POSTING_VALUE_MAX ? IDX_POSTING_VALUE_MAX : v->len, n;

	n = uvarint_put(h, shared << 1 | (v->len > IDX_POSTING_VALUE_MAX));
	n += uvarint_put(h + n, kept - shared);
	if (kept > shared)
		memcpy(h + n, v->value + shared, kept - shared);
	n += kept - shared;
	if (v->len > IDX_POSTING_VALUE_MAX) {
		be64_put(h + n, XXH64(v->value, v->len, 0));
		n += 8;
	}
	return n;
}

/* Writes the block, under its first value and number: its count, its
 * bytes, then list (a value's list too big to be copied into them). */
static int put_block(struct idx_txn *t, uint32_t snap, const char *name, size_t name_len,
		     struct idx_postings_block *blk, const uint8_t *list, size_t list_len, struct err *e)
{
	uint8_t k[POSTING_KEY_MAX], head[UVARINT_MAX_LEN], *v;
	size_t klen = posting_key(k, snap, name, name_len, (const char *)blk->first, blk->first_len);
	size_t hl = uvarint_put(head, blk->count), len = blk->len, n = hl + len + list_len;
	int rc;

	/* the block number keeps keys unique when first values share 128 bytes */
	be32_put(k + klen, blk->number++);
	blk->count = blk->len = 0;
	if ((rc = put_room(t, DB_POSTINGS, k, klen + 4, n, 0, &v, e)))
		return rc;
	memcpy(v, head, hl);
	memcpy(v + hl, blk->bytes, len);
	if (list_len)
		memcpy(v + hl + len, list, list_len);
	seal(DB_POSTINGS, k, klen + 4, v, n);
	return 0;
}

int idx_postings_put(struct idx_txn *t, uint32_t snap, const char *name, size_t name_len,
		     struct idx_postings_block *blk, const struct idx_posting *vals, size_t n, int last,
		     struct err *e)
{
	int rc = 0;

	if (name_len == 0 || name_len > 256 || memchr(name, 0, name_len))
		return err_set(e, SNAPARC_INVALID, "label name of %zu bytes cannot be indexed", name_len);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct idx_posting *v = &vals[i];
		size_t kept = v->len > IDX_POSTING_VALUE_MAX ? IDX_POSTING_VALUE_MAX : v->len, shared = 0, hl;

		/* only what the previous entry stored can be shared */
		while (blk->count && shared < blk->prev_len && shared < kept &&
		       blk->prev[shared] == (uint8_t)v->value[shared])
			shared++;
		hl = entry_head(blk->bytes + blk->len, v, shared);
		if (blk->count && blk->len + hl + v->list_len > POSTINGS_BLOCK_MAX) {
			/* this value would spill into a second page: it starts the next block */
			if ((rc = put_block(t, snap, name, name_len, blk, NULL, 0, e)))
				break;
			hl = entry_head(blk->bytes, v, 0);
		}
		if (!blk->count && (blk->first_len = kept))
			memcpy(blk->first, v->value, kept);
		if ((blk->prev_len = kept))
			memcpy(blk->prev, v->value, kept);
		blk->count++;
		blk->len += hl;
		if (blk->len + v->list_len >= POSTINGS_BLOCK) {
			rc = put_block(t, snap, name, name_len, blk, v->list, v->list_len, e);
		} else {
			memcpy(blk->bytes + blk->len, v->list, v->list_len);
			blk->len += v->list_len;
		}
	}
	if (!rc && last && blk->count)
		rc = put_block(t, snap, name, name_len, blk, NULL, 0, e);
	return rc;
}

int idx_postings_decode(const uint8_t *list, size_t len, struct buf *out, struct err *e)
{
	struct dec d;
	uint64_t n, ref = 0;

	dec_init(&d, list, len);
	n = dec_uvarint(&d, "count");
	if (!dec_ok(&d) || n > len)
		return err_set(e, SNAPARC_CORRUPT, "a postings list is malformed");
	for (uint64_t i = 0; i < n && dec_ok(&d); i++) {
		ref += dec_uvarint(&d, "ref");
		buf_put(out, &ref, sizeof(ref));
	}
	if (!dec_ok(&d) || dec_left(&d))
		return err_set(e, SNAPARC_CORRUPT, "a postings list is malformed");
	return out->oom ? err_set(e, SNAPARC_NOMEM, "out of memory") : 0;
}

/* How a key's first `head` bytes compare with k's (a shorter key is less). */
static int head_cmp(const MDB_val *key, const uint8_t *k, size_t head)
{
	size_t n = key->mv_size < head ? key->mv_size : head;
	int c = memcmp(key->mv_data, k, n);

	return c ? c : (key->mv_size < head ? -1 : 0);
}

/* Visits one block's values; *past when a value beyond the prefix range was met. */
static int scan_block(struct idx_txn *t, const MDB_val *v, const char *prefix, size_t prefix_len,
		      struct buf *value, idx_postings_fn fn, void *ctx, int *past, struct err *e)
{
	struct dec d;
	uint64_t count;

	dec_init(&d, v->mv_data, v->mv_size);
	count = dec_uvarint(&d, "count");
	buf_reset(value);
	for (uint64_t i = 0; i < count && dec_ok(&d); i++) {
		uint64_t head = dec_uvarint(&d, "shared"), shared = head >> 1, n, hash = 0;
		size_t suffix_len, cmp_len;
		const uint8_t *suffix = dec_uvarint_bytes(&d, &suffix_len, "suffix"), *list;
		int c;

		if (head & 1)
			hash = dec_be64(&d, "hash");
		list = d.p;
		if (!dec_ok(&d) || shared > value->len)
			break;
		value->len = (size_t)shared;
		buf_put(value, suffix, suffix_len);
		n = dec_uvarint(&d, "refs");
		for (uint64_t j = 0; j < n && dec_ok(&d); j++)
			dec_uvarint(&d, "ref");
		if (!dec_ok(&d) || value->oom)
			break;
		cmp_len = value->len < prefix_len ? value->len : prefix_len;
		c = memcmp(value->p, prefix, cmp_len);
		if (c > 0) { /* past every value with the prefix */
			*past = 1;
			return 0;
		}
		if (c < 0 || value->len < prefix_len)
			continue;
		if (fn(ctx, (const char *)value->p, value->len, (head & 1) ? &hash : NULL, list, (size_t)(d.p - list))) {
			*past = 1;
			return 0;
		}
	}
	if (!dec_ok(&d) || value->oom)
		return err_set(e, SNAPARC_CORRUPT, "%s: a postings block is malformed", t->x->path);
	return 0;
}

int idx_postings_scan(struct idx_txn *t, uint32_t snap, const char *name, size_t name_len,
		      const char *prefix, size_t prefix_len, idx_postings_fn fn, void *ctx, struct err *e)
{
	uint8_t k[POSTING_KEY_MAX];
	struct buf value = { 0 };
	size_t head, klen;
	MDB_cursor *c;
	MDB_val key, val;
	int rc, past = 0;

	if (name_len == 0 || name_len > 256)
		return 0;
	if ((rc = labels_of(t, snap, &snap, e)))
		return rc;
	klen = posting_key(k, snap, name, name_len, prefix, prefix_len);
	head = 4 + name_len + 1;
	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[DB_POSTINGS], &c)))
		return lmdb_err(e, rc, "postings", t->x);
	key.mv_size = klen;
	key.mv_data = k;
	/* the values from prefix on may start in the block before the first one keyed after it */
	rc = seek_block_before(t, DB_POSTINGS, c, &key, &val);
	if (rc == 0 && head_cmp(&key, k, head) < 0)
		rc = cget(t, DB_POSTINGS, c, &key, &val, MDB_NEXT); /* that one was an earlier name's */
	while (rc == 0 && !past) {
		if (head_cmp(&key, k, head))
			break;
		if ((rc = scan_block(t, &val, prefix, prefix_len, &value, fn, ctx, &past, e)))
			break;
		rc = cget(t, DB_POSTINGS, c, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(c);
	buf_free(&value);
	if (rc == MDB_NOTFOUND)
		return 0;
	return lmdb_code(rc) ? txn_err(e, rc, "postings", t) : rc;
}

/* ---- removing a snapshot ---- */

/* Deletes every key of db that starts with the snapshot's id. */
static int delete_prefixed(struct idx_txn *t, int db, uint32_t snap, struct err *e)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint8_t k[4];
	int rc;

	if ((rc = mdb_cursor_open(t->txn, t->x->dbi[db], &c)))
		return lmdb_err(e, rc, db_names[db], t->x);
	be32_put(k, snap);
	key.mv_size = 4;
	key.mv_data = k;
	rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= 4 && !memcmp(key.mv_data, k, 4)) {
		t->deleted += key.mv_size + val.mv_size;
		if ((rc = reserve(t, 0, e))) {
			mdb_cursor_close(c);
			return rc;
		}
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		rc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT);
		if (rc == 0)
			wrote(t, key.mv_data, key.mv_size);   /* in the page the delete copied */
		if (rc == EINVAL || rc == MDB_NOTFOUND) /* the cursor sits past the last key */
			break;
	}
	mdb_cursor_close(c);
	if (rc == MDB_MAP_FULL)
		t->map_full = 1;
	return rc == 0 || rc == MDB_NOTFOUND || rc == EINVAL ? 0 : lmdb_err(e, rc, db_names[db], t->x);
}

int idx_labels_used(struct idx_txn *t, uint32_t owner, uint32_t except, int *shared, struct err *e)
{
	struct idx_snapshot s;
	uint32_t after = 0;
	int rc;

	*shared = 0;
	while ((rc = snapshot_cursor(t, after, 0, &s, e)) == 0) {
		after = s.id;
		if (s.id != except && s.labels == owner) {
			*shared = 1;
			return 0;
		}
	}
	return rc == SNAPARC_NOT_FOUND ? 0 : rc;
}

int idx_snapshot_clear(struct idx_txn *t, uint32_t id, unsigned what, struct err *e)
{
	int rc = 0;

	if (what & IDX_CLEAR_SERIES)
		rc = delete_prefixed(t, DB_SERIES, id, e);
	if (!rc && (what & IDX_CLEAR_EXEMPLARS))
		rc = delete_prefixed(t, DB_EXEMPLARS, id, e);
	if (!rc && (what & IDX_CLEAR_OTHERS))
		rc = delete_prefixed(t, DB_OTHERS, id, e);
	if (!rc && (what & IDX_CLEAR_LABELS))
		rc = delete_prefixed(t, DB_HASHES, id, e);
	if (!rc && (what & IDX_CLEAR_LABELS))
		rc = delete_prefixed(t, DB_POSTINGS, id, e);
	return rc;
}

int idx_snapshot_remove(struct idx_txn *t, uint32_t id, struct err *e)
{
	struct idx_snapshot s, owner;
	MDB_val key;
	uint8_t k[4];
	int rc, shared;

	if ((rc = idx_snapshot_get(t, id, &s, e)))
		return rc;
	if ((rc = idx_snapshot_clear(t, id, IDX_CLEAR_SERIES | IDX_CLEAR_EXEMPLARS | IDX_CLEAR_OTHERS, e)) ||
	    (rc = delete_prefixed(t, DB_TOMBSTONES, id, e)))
		return rc;
	key.mv_size = strlen(s.name);
	key.mv_data = s.name;
	if ((rc = mdb_del(t->txn, t->x->dbi[DB_NAMES], &key, NULL)) && rc != MDB_NOTFOUND)
		return lmdb_err(e, rc, "names", t->x);
	be32_put(k, id);
	key.mv_size = 4;
	key.mv_data = k;
	if ((rc = mdb_del(t->txn, t->x->dbi[DB_SNAPSHOTS], &key, NULL)))
		return lmdb_err(e, rc, "snapshots", t->x);
	/* the label index it used goes with its last user: its own stays while a
	 * later snapshot shares it, a shared one goes when it was the last */
	if ((rc = idx_labels_used(t, s.labels, id, &shared, e)))
		return rc;
	if (!shared && (s.labels == id || idx_snapshot_get(t, s.labels, &owner, NULL) == SNAPARC_NOT_FOUND))
		rc = idx_snapshot_clear(t, s.labels, IDX_CLEAR_LABELS, e);
	return rc;
}

/* ---- checking ---- */

int idx_check_values(struct idx_txn *t, idx_check_fn fn, void *ctx, uint64_t *values, struct err *e)
{
	*values = 0;
	for (int db = 0; db < DB_COUNT; db++) {
		MDB_cursor *c;
		MDB_val key, val;
		int rc;

		if ((rc = mdb_cursor_open(t->txn, t->x->dbi[db], &c)))
			return lmdb_err(e, rc, db_names[db], t->x);
		for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			struct err be = { 0 };

			(*values)++;
			if (checked(t, db, &key, &val) == 0)
				continue;
			txn_err(&be, BAD_SUM, db_names[db], t);
			if (fn(ctx, be.msg)) {
				mdb_cursor_close(c);
				return 0;
			}
		}
		mdb_cursor_close(c);
		if (rc != MDB_NOTFOUND) {
			struct err be = { 0 };

			lmdb_err(&be, rc, db_names[db], t->x);
			if (fn(ctx, be.msg))
				return 0;
		}
	}
	return 0;
}
