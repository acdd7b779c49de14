/*
 * Opening an archive, and reading from it: one index lookup and one
 * positioned read per series.
 */
#include "archive_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lz4dict.h"
#include "wal.h"
#include "xordelta.h"

/* A new archive's names, from its parent's entry down to index/data.mdb,
 * made durable before anything is committed into it. */
static int sync_new_archive(const char *path, int made_dir, struct err *e)
{
	char p[4200];
	int rc;

	snprintf(p, sizeof(p), "%s/index", path);
	if ((rc = wal_sync_dir(p, e)) || (rc = wal_sync_dir(path, e)) || !made_dir)
		return rc;
	snprintf(p, sizeof(p), "%s", path);
	return wal_sync_dir(dirname(p), e);
}

/* A directory is an archive when it has index/data.mdb; an empty or missing
 * one may become an archive (*made says it was missing); anything else is
 * refused. */
static int check_dir(const char *path, int create, int *made, struct err *e)
{
	char p[4200];
	struct stat st;
	struct dirent *de;
	DIR *d;
	int other = 0;

	if (stat(path, &st) != 0) {
		if (errno == ENOENT && create) {
			if (mkdir(path, 0777) != 0)
				return err_errno(e, errno, "%s: create archive", path);
			*made = 1;
			return 0;
		}
		return err_errno(e, errno, "%s", path);
	}
	if (!S_ISDIR(st.st_mode))
		return err_set(e, SNAPARC_INVALID, "%s: not a directory", path);
	snprintf(p, sizeof(p), "%s/index/data.mdb", path);
	if (stat(p, &st) == 0)
		return 0;
	d = opendir(path);
	if (!d)
		return err_errno(e, errno, "%s", path);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			other = 1;
	closedir(d);
	if (other || !create)
		return err_set(e, SNAPARC_NOT_FOUND, "%s: not a snaparc archive (no index/data.mdb)%s", path,
			       other && create ? " and not empty: refusing to make it one" : "");
	return 0;
}

int archive_open(struct archive **out, const char *path, const struct archive_opts *opts, struct err *e)
{
	struct archive_opts o = { .sync = 1 };
	struct idx_opts io = { 0 };
	struct archive *a;
	char p[4200];
	struct stat st;
	int rc, made = 0, fresh;

	if (opts)
		o = *opts;
	if ((rc = check_dir(path, o.create && !o.read_only, &made, e)))
		return rc;
	a = calloc(1, sizeof(*a));
	if (!a)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	a->opts = o;
	a->lock_fd = -1;
	a->users_fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	snprintf(a->path, sizeof(a->path), "%s", path);
	snprintf(a->segdir, sizeof(a->segdir), "%s/segments", path);
	if (!o.read_only && mkdir(a->segdir, 0777) != 0 && errno != EEXIST) {
		rc = err_errno(e, errno, "%s", a->segdir);
		goto fail;
	}
	/* every handle holds ARCHIVE/users shared: a compaction that finds it
	 * can take it exclusively knows it is alone (see archive_shrink_index) */
	snprintf(p, sizeof(p), "%s/users", path);
	a->users_fd = open(p, (o.read_only ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0666);
	if (a->users_fd < 0 && !(o.read_only && (errno == ENOENT || errno == EACCES))) {
		rc = err_errno(e, errno, "%s", p);
		goto fail;
	}
	while (a->users_fd >= 0 && flock(a->users_fd, LOCK_SH) != 0) {
		if (errno != EINTR) {
			rc = err_errno(e, errno, "%s: lock", p);
			goto fail;
		}
	}
	snprintf(p, sizeof(p), "%s/index", path);
	io.flags = (o.read_only ? IDX_RDONLY : 0) | (o.create && !o.read_only ? IDX_CREATE : 0);
	io.map_size = o.map_size;
	snprintf(p, sizeof(p), "%s/index/data.mdb", path);
	fresh = !o.read_only && stat(p, &st) != 0;
	snprintf(p, sizeof(p), "%s/index", path);
	if ((rc = idx_open(&a->idx, p, &io, e)) || (fresh && (rc = sync_new_archive(path, made, e))))
		goto fail;
	*out = a;
	return 0;
fail:
	archive_close(a);
	return rc;
}

void archive_close(struct archive *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nfds; i++)
		if (a->fds[i] > 0)
			close(a->fds[i]);
	free(a->fds);
	for (size_t i = 0; i < a->nmaps; i++)
		if (a->maps[i].p && a->maps[i].len)
			munmap(a->maps[i].p, a->maps[i].len);
	free(a->maps);
	for (size_t i = 0; i < a->ndicts; i++)
		free(a->dicts[i].p);
	free(a->dicts);
	if (a->rtxn)
		idx_abort(a->rtxn);
	idx_close(a->idx);
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	if (a->users_fd >= 0)
		close(a->users_fd);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* ---- read transactions: one cached, renewed per read ---- */

int archive_read_txn(struct archive *a, struct idx_txn **out, struct err *e)
{
	int rc;

	if (pthread_mutex_trylock(&a->mu) == 0) {
		if (!a->rtxn_busy && a->rtxn) {
			a->rtxn_busy = 1;
			pthread_mutex_unlock(&a->mu);
			if ((rc = idx_read_renew(a->rtxn, e))) {
				pthread_mutex_lock(&a->mu);
				a->rtxn_busy = 0;
				pthread_mutex_unlock(&a->mu);
				return rc;
			}
			*out = a->rtxn;
			return 0;
		}
		pthread_mutex_unlock(&a->mu);
	}
	return idx_read_begin(a->idx, out, e);
}

void archive_read_done(struct archive *a, struct idx_txn *t)
{
	pthread_mutex_lock(&a->mu);
	if (t == a->rtxn) {
		idx_read_reset(t);
		a->rtxn_busy = 0;
	} else if (!a->rtxn && !a->shrinking) {
		idx_read_reset(t);
		a->rtxn = t;
	} else {
		idx_abort(t);
	}
	pthread_mutex_unlock(&a->mu);
}

int archive_shrink_index(struct archive *a, int *done, struct err *e)
{
	int rc;

	*done = 0;
	if (a->users_fd < 0 || flock(a->users_fd, LOCK_EX | LOCK_NB) != 0) {
		/* another handle has it open (the conversion may have let go of
		 * ours: take it again) */
		while (a->users_fd >= 0 && flock(a->users_fd, LOCK_SH) != 0 && errno == EINTR)
			;
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (a->rtxn_busy) {
		pthread_mutex_unlock(&a->mu);
		flock(a->users_fd, LOCK_SH);
		return 0;
	}
	if (a->rtxn) {
		idx_abort(a->rtxn);
		a->rtxn = NULL;
	}
	/* the rewrite waits for this handle's read transactions to end, and a
	 * read takes a->mu inside its transaction: a->mu is let go (no
	 * transaction is kept meanwhile, since the file it reads goes) */
	a->shrinking = 1;
	pthread_mutex_unlock(&a->mu);
	rc = idx_shrink(a->idx, e);
	pthread_mutex_lock(&a->mu);
	a->shrinking = 0;
	pthread_mutex_unlock(&a->mu);
	while (flock(a->users_fd, LOCK_SH) != 0 && errno == EINTR)
		;
	*done = rc == 0;
	return rc;
}

/* ---- snapshots ---- */

int archive_snapshot_find(struct archive *a, const char *spec, struct idx_snapshot *out, struct err *e)
{
	struct idx_txn *t;
	char *end;
	unsigned long id;
	int rc;

	if ((rc = archive_read_txn(a, &t, e)))
		return rc;
	id = strtoul(spec, &end, 10);
	if (!strcmp(spec, "latest"))
		rc = idx_snapshot_last(t, out, e);
	else if (*spec && *end == '\0' && id <= UINT32_MAX)
		rc = idx_snapshot_get(t, (uint32_t)id, out, e);
	else
		rc = idx_snapshot_by_name(t, spec, out, e);
	archive_read_done(a, t);
	return rc;
}

int archive_snapshot_next(struct archive *a, uint32_t after, struct idx_snapshot *out, struct err *e)
{
	struct idx_txn *t;
	int rc;

	if ((rc = archive_read_txn(a, &t, e)))
		return rc;
	rc = idx_snapshot_next(t, after, out, e);
	archive_read_done(a, t);
	return rc;
}

/* ---- segments and dictionaries, opened once ---- */

int archive_segment_fd(struct archive *a, uint32_t segment, struct err *e)
{
	int fd = -1;

	pthread_mutex_lock(&a->mu);
	if (segment < a->nfds && a->fds[segment] > 0) {
		fd = a->fds[segment];
	} else {
		char p[4200];

		snprintf(p, sizeof(p), "%s/%08u", a->segdir, segment);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err_errno(e, errno, "%s", p);
		} else if (segment >= a->nfds) {
			size_t n = segment + 16;
			int *fds = realloc(a->fds, n * sizeof(*fds));

			if (fds) {
				memset(fds + a->nfds, 0, (n - a->nfds) * sizeof(*fds));
				a->fds = fds;
				a->nfds = n;
			}
		}
		if (fd >= 0 && segment < a->nfds)
			a->fds[segment] = fd;
		else if (fd >= 0) {
			close(fd);
			fd = -1;
			err_set(e, SNAPARC_NOMEM, "out of memory");
		}
	}
	pthread_mutex_unlock(&a->mu);
	return fd < 0 ? (e ? e->code : SNAPARC_IO) : fd;
}

int archive_segment_map(struct archive *a, uint32_t segment, uint64_t offset, uint32_t span, const uint8_t **p,
			struct err *e)
{
	struct archive_map *m;
	int fd, rc = 0;

	pthread_mutex_lock(&a->mu);
	if (segment < a->nmaps && a->maps[segment].p) {
		m = &a->maps[segment];
		goto found;
	}
	pthread_mutex_unlock(&a->mu);
	if ((fd = archive_segment_fd(a, segment, e)) < 0)
		return fd;
	pthread_mutex_lock(&a->mu);
	if (segment >= a->nmaps) {
		size_t n = segment + 16;
		struct archive_map *maps = realloc(a->maps, n * sizeof(*maps));

		if (!maps) {
			pthread_mutex_unlock(&a->mu);
			return 0;
		}
		memset(maps + a->nmaps, 0, (n - a->nmaps) * sizeof(*maps));
		a->maps = maps;
		a->nmaps = n;
	}
	m = &a->maps[segment];
	if (!m->p) {
		struct stat st;
		void *q = MAP_FAILED;

		if (fstat(fd, &st) == 0 && st.st_size > 0)
			q = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (q == MAP_FAILED) {
			m->p = (uint8_t *)a;   /* tried: pread from now on */
			m->len = 0;
		} else {
			m->p = q;
			m->len = (size_t)st.st_size;
		}
	}
found:
	if (m->len && offset <= m->len && span <= m->len - offset) {
		*p = m->p + offset;
		rc = 1;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int archive_segment_mapping(struct archive *a, uint32_t segment, const uint8_t **base, size_t *len,
			    struct err *e)
{
	const uint8_t *p;
	int rc = archive_segment_map(a, segment, 0, 0, &p, e);

	if (rc != 1)
		return rc;
	pthread_mutex_lock(&a->mu);
	*base = a->maps[segment].p;
	*len = a->maps[segment].len;
	pthread_mutex_unlock(&a->mu);
	return 1;
}

int archive_dict(struct archive *a, struct idx_txn *t, uint32_t id, const uint8_t **p, size_t *len,
		 struct err *e)
{
	const uint8_t *src;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->ndicts; i++) {
		if (a->dicts[i].id == id) {
			*p = a->dicts[i].p;
			*len = a->dicts[i].len;
			pthread_mutex_unlock(&a->mu);
			return 0;
		}
	}
	if ((rc = idx_dict_get(t, id, &src, &n, e)) == 0) {
		struct archive_dict *d = realloc(a->dicts, (a->ndicts + 1) * sizeof(*d));
		uint8_t *copy = malloc(n ? n : 1);

		if (!d || !copy) {
			free(copy);
			if (d)
				a->dicts = d;
			rc = err_set(e, SNAPARC_NOMEM, "out of memory for a dictionary");
		} else {
			memcpy(copy, src, n);
			a->dicts = d;
			d[a->ndicts].id = id;
			d[a->ndicts].p = copy;
			d[a->ndicts].len = n;
			a->ndicts++;
			*p = copy;
			*len = n;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- reading one series ---- */

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pread(fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -ENODATA;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int unpack(struct archive *a, struct idx_txn *t, uint8_t flags, const uint8_t *p, size_t len,
		  struct buf *out, const uint8_t **rec, size_t *rec_len, int depth, struct err *e);

static int load(struct archive *a, struct idx_txn *t, const struct idx_loc *loc, struct buf *out,
		struct buf *span, struct buf *scratch, const uint8_t **stored, size_t *stored_len, uint8_t *stored_flags,
		int depth, struct err *e)
{
	const uint8_t *data, *rec;
	size_t len, rec_len;
	uint8_t flags;
	const uint8_t *at = NULL;
	int fd, rc = 0;

	/* from the segment's mapping when it has one (a lookup of a warm
	 * archive: 2.5 -> 2.05 us at 1M series against a pread), else read */
	if ((rc = archive_segment_map(a, loc->segment, loc->offset, loc->span, &at, e)) < 0)
		return rc;
	if (!rc) {
		if ((fd = archive_segment_fd(a, loc->segment, e)) < 0)
			return fd;
		buf_reset(span);
		if (!buf_reserve(span, loc->span))
			return err_set(e, SNAPARC_NOMEM, "out of memory for a %u-byte record", loc->span);
		if ((rc = pread_all(fd, span->p, loc->span, loc->offset)))
			return err_set(e, rc == -ENODATA ? SNAPARC_CORRUPT : SNAPARC_IO,
				       "%s/%08u: offset %llu: reading %u bytes: %s", a->segdir, loc->segment,
				       (unsigned long long)loc->offset, loc->span,
				       rc == -ENODATA ? "the segment ends before the record" : strerror(-rc));
		at = span->p;
	}
	rc = wal_parse_record(at, loc->span, loc->offset, 1, &data, &len, &flags, scratch, e);
	if (rc)
		return err_prefix(e, "%s/%08u", a->segdir, loc->segment);
	if (stored)
		*stored = data;
	if (stored_flags)
		*stored_flags = flags;
	*stored_len = len;
	if ((rc = unpack(a, t, flags, data, len, out, &rec, &rec_len, depth, e)))
		return err_prefix(e, "%s/%08u: offset %llu", a->segdir, loc->segment, (unsigned long long)loc->offset);
	if (rec != out->p) {
		/* stored plain: the bytes live in span or scratch, which the caller reuses */
		buf_reset(out);
		buf_put(out, rec, rec_len);
		if (out->oom)
			return err_set(e, SNAPARC_NOMEM, "out of memory");
	}
	if (loc->cut) {
		/* a cut of the record stored there: nothing of its own is stored */
		if ((rc = archive_apply_cut(a, loc, out, scratch, e)))
			return rc;
		if (stored)
			*stored = NULL;
		if (stored_flags)
			*stored_flags = 0;
		*stored_len = 0;
	}
	return 0;
}

int archive_apply_cut(struct archive *a, const struct idx_loc *loc, struct buf *rec, struct buf *scratch,
		      struct err *e)
{
	struct buf tmp;
	int rc;

	if ((rc = xordelta_cut(rec->p, rec->len, loc->cut, scratch, e)))
		return err_prefix(e, "%s/%08u: offset %llu", a->segdir, loc->segment, (unsigned long long)loc->offset);
	tmp = *rec;
	*rec = *scratch;
	*scratch = tmp;
	return 0;
}

int archive_load(struct archive *a, struct idx_txn *t, const struct idx_loc *loc, struct buf *out,
		 struct buf *span, struct buf *scratch, size_t *stored_len, struct err *e)
{
	return load(a, t, loc, out, span, scratch, NULL, stored_len, NULL, 0, e);
}

int archive_load_stored(struct archive *a, struct idx_txn *t, const struct idx_loc *loc, struct buf *out,
			struct buf *span, struct buf *scratch, const uint8_t **stored, size_t *stored_len,
			uint8_t *flags, struct err *e)
{
	return load(a, t, loc, out, span, scratch, stored, stored_len, flags, 0, e);
}

/* A delta: its base's record (itself perhaps a delta) is its dictionary. */
static int unpack_delta(struct archive *a, struct idx_txn *t, const uint8_t *p, size_t len, struct buf *out,
			int depth, struct err *e)
{
	struct lz4dict_base b;
	struct idx_loc loc;
	struct buf base = { 0 }, span = { 0 }, scratch = { 0 };
	size_t stored;
	int rc;

	if (depth >= ARCHIVE_CHAIN_MAX)
		return err_set(e, SNAPARC_CORRUPT, "a chain of more than %d deltas", ARCHIVE_CHAIN_MAX);
	if ((rc = lz4dict_delta_base(p, len, &b, e)) < 0)
		return rc;
	loc.ref = 0;
	loc.segment = b.segment;
	loc.offset = b.offset;
	loc.span = b.span;
	loc.cut = 0;
	if ((rc = load(a, t, &loc, &base, &span, &scratch, NULL, &stored, NULL, depth + 1, e)))
		err_prefix(e, "delta base");
	else
		rc = lz4dict_decompress(p, len, base.p, base.len, out, e);
	buf_free(&base);
	buf_free(&span);
	buf_free(&scratch);
	return rc;
}

/*
 * A chain of append deltas, read in one pass: each hop's stored payload is
 * read into one buffer (no allocation per hop), down to the first record
 * that is not an append delta, which is unpacked into out; then the hops'
 * bits are applied from the bottom up, alternating between out and one
 * other buffer.
 */
static int unpack_appends(struct archive *a, struct idx_txn *t, const uint8_t *p, size_t len, struct buf *out,
			  int depth, struct err *e)
{
	struct buf arena = { 0 }, scratch = { 0 }, other = { 0 };
	/* each hop's payload: in a mapped segment (ptr), or at off in the arena */
	const uint8_t *ptr[ARCHIVE_CHAIN_MAX + 1];
	size_t off[ARCHIVE_CHAIN_MAX + 1], lens[ARCHIVE_CHAIN_MAX + 1], n, rec_len;
	const uint8_t *rec;
	int rc = 0;

	ptr[0] = NULL;
	off[0] = 0;
	lens[0] = len;
	buf_put(&arena, p, len);
	n = 1;
#define HOP(i) (ptr[i] ? ptr[i] : arena.p + off[i])
	while (!arena.oom) {
		struct lz4dict_base b;
		const uint8_t *data, *stored;
		size_t dlen, base_at;
		uint8_t flags;
		int mapped;

		if (depth + (int)n > ARCHIVE_CHAIN_MAX) {
			rc = err_set(e, SNAPARC_CORRUPT, "a chain of more than %d deltas", ARCHIVE_CHAIN_MAX);
			goto out;
		}
		if ((rc = xordelta_base(HOP(n - 1), lens[n - 1], &b, e)))
			goto out;
		if ((mapped = archive_segment_map(a, b.segment, b.offset, b.span, &stored, e)) < 0) {
			rc = mapped;
			goto delta_base;
		}
		if (!mapped) {
			/* not mapped: read into the arena */
			int fd = archive_segment_fd(a, b.segment, e);

			if (fd < 0) {
				rc = fd;
				goto delta_base;
			}
			base_at = arena.len;
			if (!buf_reserve(&arena, b.span)) {
				rc = err_set(e, SNAPARC_NOMEM, "out of memory for a %u-byte record", b.span);
				goto out;
			}
			if ((rc = pread_all(fd, arena.p + base_at, b.span, b.offset))) {
				rc = err_set(e, rc == -ENODATA ? SNAPARC_CORRUPT : SNAPARC_IO,
					     "%s/%08u: offset %llu: reading %u bytes: %s", a->segdir, b.segment,
					     (unsigned long long)b.offset, b.span,
					     rc == -ENODATA ? "the segment ends before the record" : strerror(-rc));
				goto delta_base;
			}
			arena.len += b.span;
			stored = arena.p + base_at;
		}
		if ((rc = wal_parse_record(stored, b.span, b.offset, 1, &data, &dlen, &flags, &scratch, e))) {
			err_prefix(e, "%s/%08u", a->segdir, b.segment);
			goto delta_base;
		}
		if (flags == WAL_LZ4 && xordelta_is(data, dlen)) {
			ptr[n] = NULL;
			off[n] = 0;
			if (scratch.p && data == scratch.p) {
				/* in fragments: joined in scratch, kept in the arena */
				off[n] = arena.len;
				buf_put(&arena, data, dlen);
			} else if (mapped) {
				ptr[n] = data;
			} else {
				off[n] = (size_t)(data - arena.p);
			}
			lens[n++] = dlen;
			continue;
		}
		/* the bottom of the chain */
		if ((rc = unpack(a, t, flags, data, dlen, out, &rec, &rec_len, depth + (int)n, e))) {
			err_prefix(e, "%s/%08u: offset %llu", a->segdir, b.segment, (unsigned long long)b.offset);
			goto delta_base;
		}
		if (rec != out->p) {
			buf_reset(out);
			buf_put(out, rec, rec_len);
		}
		break;
	}
	if (arena.oom || out->oom) {
		rc = err_set(e, SNAPARC_NOMEM, "out of memory");
		goto out;
	}
	{
		const uint8_t *hops[ARCHIVE_CHAIN_MAX + 1];
		size_t hop_lens[ARCHIVE_CHAIN_MAX + 1];
		struct buf tmp;

		/* applied from the bottom of the chain up */
		for (size_t i = 0; i < n; i++) {
			hops[i] = HOP(n - 1 - i);
			hop_lens[i] = lens[n - 1 - i];
		}
		if ((rc = xordelta_apply_chain(hops, hop_lens, n, out->p, out->len, &other, e)))
			goto out;
		tmp = *out;
		*out = other;
		other = tmp;
	}
#undef HOP
	goto out;
delta_base:
	err_prefix(e, "delta base");
out:
	buf_free(&arena);
	buf_free(&scratch);
	buf_free(&other);
	return rc;
}

static int unpack(struct archive *a, struct idx_txn *t, uint8_t flags, const uint8_t *p, size_t len,
		  struct buf *out, const uint8_t **rec, size_t *rec_len, int depth, struct err *e)
{
	const uint8_t *dict;
	size_t dict_len, raw, hdr;
	uint32_t dict_id;
	int rc;

	if (!flags) {
		*rec = p;
		*rec_len = len;
		return 0;
	}
	if (flags != WAL_LZ4)
		return err_set(e, SNAPARC_CORRUPT, "archive record with compression 0x%02x", flags);
	if (xordelta_is(p, len))
		rc = unpack_appends(a, t, p, len, out, depth, e);
	else if ((rc = lz4dict_header(p, len, &dict_id, &raw, &hdr, e)))
		return rc;
	else if (dict_id == 0)
		rc = unpack_delta(a, t, p, len, out, depth, e);
	else if (!(rc = archive_dict(a, t, dict_id, &dict, &dict_len, e)))
		rc = lz4dict_decompress(p, len, dict, dict_len, out, e);
	if (rc)
		return rc;
	*rec = out->p;
	*rec_len = out->len;
	return 0;
}

int archive_unpack(struct archive *a, struct idx_txn *t, uint8_t flags, const uint8_t *p, size_t len,
		   struct buf *out, const uint8_t **rec, size_t *rec_len, struct err *e)
{
	return unpack(a, t, flags, p, len, out, rec, rec_len, 0, e);
}

int archive_read_record(struct archive *a, struct idx_txn *t, uint32_t snap, const struct idx_loc *loc,
			struct archive_series *out, struct err *e)
{
	int rc;

	out->snapshot = snap;
	out->loc = *loc;
	if ((rc = archive_load(a, t, loc, &out->record, &out->span, &out->scratch, &out->stored_len, e)))
		return rc;
	if ((rc = rec_series_decode(&out->series, out->record.p, out->record.len, e)))
		return err_prefix(e, "%s/%08u: offset %llu: stored series record", a->segdir, loc->segment,
				  (unsigned long long)loc->offset);
	if (out->series.ref != loc->ref)
		return err_set(e, SNAPARC_CORRUPT, "%s/%08u: offset %llu: the index says ref %llu, the record holds ref %llu",
			       a->segdir, loc->segment, (unsigned long long)loc->offset,
			       (unsigned long long)loc->ref, (unsigned long long)out->series.ref);
	return 0;
}

int archive_read_side(struct archive *a, struct idx_txn *t, struct archive_series *out, struct err *e)
{
	const struct idx_loc *loc = &out->loc;
	uint32_t snap = out->snapshot;
	struct idx_loc xl;
	const uint8_t *p;
	size_t len, xlen;
	int rc;

	buf_reset(&out->tombstones);
	buf_reset(&out->exemplars);
	rc = idx_tombstones_get(t, snap, loc->ref, &p, &len, e);
	if (rc == 0)
		buf_put(&out->tombstones, p, len);
	else if (rc != SNAPARC_NOT_FOUND)
		return rc;
	rc = idx_exemplars_get(t, snap, loc->ref, &xl, e);
	if (rc == 0) {
		struct rec_exemplars x;

		if ((rc = archive_load(a, t, &xl, &out->exemplars, &out->span, &out->scratch, &xlen, e)))
			return rc;
		if (!out->exemplars.len || out->exemplars.p[0] != ARCHIVE_SERIES_EXEMPLARS)
			return err_set(e, SNAPARC_CORRUPT, "%s/%08u: offset %llu: not the exemplars of ref %llu",
				       a->segdir, xl.segment, (unsigned long long)xl.offset, (unsigned long long)loc->ref);
		out->exemplars.p[0] = REC_EXEMPLARS;
		if ((rc = rec_exemplars_decode(&x, out->exemplars.p, out->exemplars.len, e)))
			return err_prefix(e, "%s/%08u: offset %llu: stored exemplars of ref %llu", a->segdir,
					  xl.segment, (unsigned long long)xl.offset, (unsigned long long)loc->ref);
	} else if (rc != SNAPARC_NOT_FOUND) {
		return rc;
	}
	if (out->tombstones.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	return 0;
}

static int read_loc(struct archive *a, struct idx_txn *t, uint32_t snap, const struct idx_loc *loc,
		    struct archive_series *out, struct err *e)
{
	int rc = archive_read_record(a, t, snap, loc, out, e);

	return rc ? rc : archive_read_side(a, t, out, e);
}

int archive_read_ref(struct archive *a, uint32_t snap, uint64_t ref, struct archive_series *out,
		     struct err *e)
{
	struct idx_txn *t;
	struct idx_loc loc;
	int rc;

	if ((rc = archive_read_txn(a, &t, e)))
		return rc;
	rc = idx_series_get(t, snap, ref, &loc, e);
	if (!rc)
		rc = read_loc(a, t, snap, &loc, out, e);
	archive_read_done(a, t);
	return rc;
}

int archive_read_labels(struct archive *a, uint32_t snap, const struct rec_label *ls, size_t n,
			struct archive_series *out, struct err *e)
{
	uint64_t refs[16];
	size_t found;
	struct idx_txn *t;
	struct buf want = { 0 };
	struct rec_labels wl;
	int rc;

	rec_labels_encode(&want, ls, n);
	if (want.oom)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	wl.raw = want.p;
	wl.raw_len = want.len;
	wl.count = (uint32_t)n;
	if ((rc = archive_read_txn(a, &t, e))) {
		buf_free(&want);
		return rc;
	}
	rc = idx_hash_find(t, snap, rec_label_array_hash(ls, n), refs, 16, &found, e);
	/* hashes collide: read each candidate and compare its labels */
	for (size_t i = 0; !rc && i < found && i < 16; i++) {
		struct idx_loc loc;

		rc = idx_series_get(t, snap, refs[i], &loc, e);
		if (!rc)
			rc = read_loc(a, t, snap, &loc, out, e);
		if (!rc && rec_labels_equal(&out->series.labels, &wl))
			goto out;
	}
	if (!rc)
		rc = err_set(e, SNAPARC_NOT_FOUND, "no series with these labels in snapshot %u", snap);
out:
	archive_read_done(a, t);
	buf_free(&want);
	return rc;
}

void archive_series_free(struct archive_series *s)
{
	buf_free(&s->record);
	buf_free(&s->tombstones);
	buf_free(&s->exemplars);
	buf_free(&s->scratch);
	buf_free(&s->span);
}

int archive_stat(struct archive *a, struct archive_stat *out, struct err *e)
{
	struct dirent *de;
	DIR *d = opendir(a->segdir);

	memset(out, 0, sizeof(*out));
	out->index_bytes = idx_file_bytes(a->idx);
	if (!d)
		return err_errno(e, errno, "%s", a->segdir);
	while ((de = readdir(d)) != NULL) {
		char p[4400];
		struct stat st;

		if (strlen(de->d_name) != 8)
			continue;
		snprintf(p, sizeof(p), "%s/%s", a->segdir, de->d_name);
		if (stat(p, &st) == 0) {
			out->segments++;
			out->segment_bytes += (uint64_t)st.st_blocks * 512;
		}
	}
	closedir(d);
	return 0;
}
