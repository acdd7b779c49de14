/*
 * Writing WAL segments exactly as Prometheus' wlog writer lays them out
 * (FORMAT.md section 2), so that the same records give the same fragments:
 *
 * - compression first, kept only when it makes the record smaller;
 * - if the record does not fit in what is left of the segment (counting a
 *   7-byte header per remaining page), the segment is ended and a new one
 *   started, even when the current one is empty; a record larger than a
 *   segment therefore lands alone in a larger one;
 * - a page with fewer than 7 bytes left is finished with zeros; a fragment
 *   may be empty when exactly 7 bytes are left;
 * - on close the last page is zero-padded to 32 KiB.
 *
 * Pages are collected in a buffer and written in large writes; with
 * opts.direct those go past the page cache (O_DIRECT), which on a new
 * directory of segments saves copying every byte into it and most of
 * fdatasync's wait. A write the file system refuses that way (EINVAL: a
 * file system without O_DIRECT, or a flush of a partial page) is done
 * buffered, and the segment stays buffered from then on. Direct writes
 * wait for the device, so they are made by a thread of the writer's own
 * while the writer fills the next buffer (struct wal_io).
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snappy-c.h>
#include <zstd.h>

#include "bytes.h"
#include "crc32c.h"
#include "snappy_small.h"

#define WRITE_PAGES 32u   /* pages collected before one write() */
#define DIRECT_ALIGN 4096u /* of the page buffer, for O_DIRECT */
#define IO_BUFFERS 4u      /* with direct writes: one filling, the others being written */
#define ZSTD_LEVEL 3

/* The thread that makes a direct writer's writes, one buffer at a time in
 * the order they were handed over; the writer waits for it before it syncs,
 * switches segments or closes, so the segment's fd is the same for every
 * write it has. */
struct wal_io {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint8_t *bufs[IO_BUFFERS];
	size_t lens[IO_BUFFERS];
	unsigned head, count;   /* handed over, not yet written: [head, head + count) */
	int error;              /* errno of the first write that failed; later ones are skipped */
	int stop;
	struct wal_writer *w;
};

struct wal_writer {
	struct wal_writer_opts opts;
	char *dir;
	char path[4096];
	int fd;
	uint32_t segment;       /* index of the open segment */
	uint64_t pages_per_segment;
	uint64_t done_pages;    /* whole pages of this segment written or buffered */
	uint8_t *pages;         /* WRITE_PAGES pages; the last one is being filled */
	size_t buffered;        /* whole pages in `pages` not yet written */
	size_t alloc;           /* bytes used of the page being filled */
	struct buf compressed;
	struct wal_compressor *comp;
	struct wal_pos last_end;
	int created;            /* made a segment file since the last flush */
	int direct;             /* fd is open with O_DIRECT */
	struct wal_io *io;      /* NULL: pages are written by write_all() */
	int io_tried;           /* io_start() was called */
	int failed;
};

/* Takes the open segment off O_DIRECT. */
static int leave_direct(struct wal_writer *w)
{
	int fl = fcntl(w->fd, F_GETFL);

	if (fl < 0 || fcntl(w->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return -1;
	w->direct = 0;
	return 0;
}

/* Puts the open segment on O_DIRECT if the options ask for it: set after
 * the open, since an open with O_DIRECT that the file system refuses may
 * have created the file already. */
static void enter_direct(struct wal_writer *w)
{
	int fl;

	w->direct = w->opts.direct && (fl = fcntl(w->fd, F_GETFL)) >= 0 &&
		    fcntl(w->fd, F_SETFL, fl | O_DIRECT) == 0;
}

/* Writes n bytes at the segment's position: 0 or an errno. */
static int write_fd(struct wal_writer *w, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(w->fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EINVAL && w->direct && leave_direct(w) == 0)
			continue;
		if (k < 0)
			return errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int write_all(struct wal_writer *w, const uint8_t *p, size_t n, struct err *e)
{
	int err = write_fd(w, p, n);

	return err ? (w->failed = err_errno(e, err, "%s: write", w->path)) : 0;
}

static void *io_main(void *arg)
{
	struct wal_io *io = arg;

	pthread_mutex_lock(&io->mu);
	for (;;) {
		unsigned slot;
		int err = 0;

		while (!io->count && !io->stop)
			pthread_cond_wait(&io->cv, &io->mu);
		if (io->stop)
			break;
		slot = io->head;
		pthread_mutex_unlock(&io->mu);
		if (!io->error)
			err = write_fd(io->w, io->bufs[slot], io->lens[slot]);
		pthread_mutex_lock(&io->mu);
		if (err && !io->error)
			io->error = err;
		io->head = (io->head + 1) % IO_BUFFERS;
		io->count--;
		pthread_cond_broadcast(&io->cv);
	}
	pthread_mutex_unlock(&io->mu);
	return NULL;
}

/* Buffers and a thread for w's writes, the first buffer w's own; NULL when
 * they cannot be had (the writer then writes itself). */
static struct wal_io *io_start(struct wal_writer *w)
{
	struct wal_io *io = calloc(1, sizeof(*io));
	unsigned i = 1;

	if (!io)
		return NULL;
	io->w = w;
	io->bufs[0] = w->pages;
	while (i < IO_BUFFERS && (io->bufs[i] = aligned_alloc(DIRECT_ALIGN, WRITE_PAGES * WAL_PAGE_SIZE)))
		i++;
	if (i == IO_BUFFERS) {
		pthread_mutex_init(&io->mu, NULL);
		pthread_cond_init(&io->cv, NULL);
		if (pthread_create(&io->thread, NULL, io_main, io) == 0)
			return io;
		pthread_cond_destroy(&io->cv);
		pthread_mutex_destroy(&io->mu);
	}
	while (--i)
		free(io->bufs[i]);
	free(io);
	return NULL;
}

/* Stops the thread (writes not yet made are dropped) and frees io with
 * its buffers. */
static void io_stop(struct wal_io *io)
{
	if (!io)
		return;
	pthread_mutex_lock(&io->mu);
	io->stop = 1;
	pthread_cond_broadcast(&io->cv);
	pthread_mutex_unlock(&io->mu);
	pthread_join(io->thread, NULL);
	pthread_cond_destroy(&io->cv);
	pthread_mutex_destroy(&io->mu);
	for (unsigned i = 0; i < IO_BUFFERS; i++)
		free(io->bufs[i]);
	free(io);
}

static int io_failed(struct wal_writer *w, int err, struct err *e)
{
	return err ? (w->failed = err_errno(e, err, "%s: write", w->path)) : 0;
}

/* Hands the filled buffer (n bytes) to the thread and takes a free one. */
static int io_hand_over(struct wal_writer *w, size_t n, struct err *e)
{
	struct wal_io *io = w->io;
	int err;

	pthread_mutex_lock(&io->mu);
	io->lens[(io->head + io->count) % IO_BUFFERS] = n;
	io->count++;
	pthread_cond_broadcast(&io->cv);
	while (io->count == IO_BUFFERS)
		pthread_cond_wait(&io->cv, &io->mu);
	w->pages = io->bufs[(io->head + io->count) % IO_BUFFERS];
	err = io->error;
	pthread_mutex_unlock(&io->mu);
	return io_failed(w, err, e);
}

/* Waits until every buffer handed over is written. */
static int io_drain(struct wal_writer *w, struct err *e)
{
	struct wal_io *io = w->io;
	int err;

	if (!io)
		return 0;
	pthread_mutex_lock(&io->mu);
	while (io->count)
		pthread_cond_wait(&io->cv, &io->mu);
	err = io->error;
	pthread_mutex_unlock(&io->mu);
	return io_failed(w, err, e);
}

static uint8_t *cur_page(struct wal_writer *w)
{
	return w->pages + w->buffered * WAL_PAGE_SIZE;
}

/* Writes out the buffered whole pages. */
static int flush_pages(struct wal_writer *w, struct err *e)
{
	size_t n = w->buffered * WAL_PAGE_SIZE;
	int rc;

	/* the thread is started by the first full buffer: a restore of a few
	 * series does without it */
	if (!w->io && (w->opts.direct || w->opts.write_behind) && w->buffered == WRITE_PAGES && !w->io_tried) {
		w->io_tried = 1;
		w->io = io_start(w);
	}
	if (w->io)
		rc = n ? io_hand_over(w, n, e) : 0;
	else
		rc = write_all(w, w->pages, n, e);
	w->buffered = 0;
	return rc;
}

/* Ends the page being filled: zero the rest, count it, flush when the buffer is full. */
static int end_page(struct wal_writer *w, struct err *e)
{
	memset(cur_page(w) + w->alloc, 0, WAL_PAGE_SIZE - w->alloc);
	w->alloc = 0;
	w->buffered++;
	w->done_pages++;
	if (w->buffered == WRITE_PAGES)
		return flush_pages(w, e);
	return 0;
}

static int sync_fd(struct wal_writer *w, int fd, const char *what, struct err *e)
{
	if (w->opts.sync && fdatasync(fd) != 0)
		return w->failed = err_errno(e, errno, "%s: fdatasync", what);
	return 0;
}

/* Finishes the open segment (if any) and creates the next one. */
static int next_segment(struct wal_writer *w, struct err *e)
{
	char name[16];

	if (w->fd >= 0) {
		if (w->alloc > 0 && end_page(w, e))
			return w->failed;
		if (flush_pages(w, e) || io_drain(w, e) || sync_fd(w, w->fd, w->path, e))
			return w->failed;
		close(w->fd);
		w->fd = -1;
		w->segment++;
	}
	wal_segment_name(name, sizeof(name), w->segment);
	snprintf(w->path, sizeof(w->path), "%s/%s", w->dir, name);
	w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (w->fd < 0)
		return w->failed = err_errno(e, errno, "%s: create segment", w->path);
	enter_direct(w);
	w->done_pages = 0;
	w->created = 1;
	return 0;
}

/* The highest segment index in dir, or -1 when there is none. */
static int64_t last_segment(const char *dir, struct err *e, int *rc)
{
	int64_t last = -1;
	struct dirent *de;
	DIR *d = opendir(dir);

	*rc = 0;
	if (!d) {
		*rc = err_errno(e, errno, "%s", dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long v;

		if (strlen(de->d_name) != 8)
			continue;
		v = strtoul(de->d_name, &end, 10);
		if (*end == '\0' && (int64_t)v > last)
			last = (int64_t)v;
	}
	closedir(d);
	return last;
}

static int writer_new(struct wal_writer **out, const char *dir, const struct wal_writer_opts *opts,
		      struct err *e)
{
	struct wal_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", dir);
	w->fd = -1;
	if (opts)
		w->opts = *opts;
	if (!w->opts.segment_size)
		w->opts.segment_size = WAL_DEFAULT_SEGMENT_SIZE;
	if (w->opts.segment_size % WAL_PAGE_SIZE) {
		rc = err_set(e, SNAPARC_INVALID, "segment size %llu is not a multiple of %u",
			     (unsigned long long)w->opts.segment_size, WAL_PAGE_SIZE);
		free(w);
		return rc;
	}
	w->pages_per_segment = w->opts.segment_size / WAL_PAGE_SIZE;
	w->dir = strdup(dir);
	w->pages = aligned_alloc(DIRECT_ALIGN, WRITE_PAGES * WAL_PAGE_SIZE);
	if (!w->dir || !w->pages) {
		wal_writer_discard(w);
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", dir);
	}
	if ((rc = wal_compressor_new(&w->comp, w->opts.compression, e))) {
		wal_writer_discard(w);
		return rc;
	}
	*out = w;
	return 0;
}

int wal_writer_open(struct wal_writer **out, const char *dir,
		    const struct wal_writer_opts *opts, struct err *e)
{
	struct wal_writer *w;
	int64_t last;
	int rc;

	if ((rc = writer_new(&w, dir, opts, e)))
		return rc;
	last = last_segment(dir, e, &rc);
	if (!rc) {
		w->segment = (uint32_t)(last + 1);
		rc = next_segment(w, e);
	}
	if (rc) {
		wal_writer_discard(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* Reads exactly n bytes at off. */
static int read_at(int fd, uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pread(fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

int wal_writer_open_at(struct wal_writer **out, const char *dir, uint32_t segment, uint64_t offset,
		       const struct wal_writer_opts *opts, struct err *e)
{
	struct wal_writer *w;
	uint64_t page_start = offset - offset % WAL_PAGE_SIZE;
	struct stat st;
	int rc;

	if ((rc = writer_new(&w, dir, opts, e)))
		return rc;
	w->segment = segment;
	snprintf(w->path, sizeof(w->path), "%s/%08u", dir, segment);
	w->fd = open(w->path, O_RDWR | O_CLOEXEC | (offset == 0 ? O_CREAT : 0), 0666);
	if (w->fd < 0) {
		rc = err_errno(e, errno, "%s: open segment", w->path);
		goto fail;
	}
	w->created = offset == 0;
	/* cut only what is past the end: on ext4 a file cut to no bytes has
	 * all its pages written out when it is closed */
	if (fstat(w->fd, &st) != 0) {
		rc = err_errno(e, errno, "%s: stat segment", w->path);
		goto fail;
	}
	if ((uint64_t)st.st_size != offset && ftruncate(w->fd, (off_t)offset) != 0) {
		rc = err_errno(e, errno, "%s: cut to the committed end %llu", w->path, (unsigned long long)offset);
		goto fail;
	}
	w->alloc = (size_t)(offset - page_start);
	if (w->alloc && read_at(w->fd, w->pages, w->alloc, page_start) != 0) {
		rc = err_errno(e, errno ? errno : EIO, "%s: read the last page at %llu", w->path,
			       (unsigned long long)page_start);
		goto fail;
	}
	if (lseek(w->fd, (off_t)page_start, SEEK_SET) < 0) {
		rc = err_errno(e, errno, "%s: seek", w->path);
		goto fail;
	}
	/* the last page was read through the page cache; from its start on,
	 * every write is of whole pages from an aligned buffer but a flush */
	enter_direct(w);
	w->done_pages = page_start / WAL_PAGE_SIZE;
	w->last_end.segment = segment;
	w->last_end.offset = offset;
	/* fewer than 7 bytes left: the page was finished with zeros, which the
	 * cut removed; finish it again and go on in the next page */
	if (w->alloc && WAL_PAGE_SIZE - w->alloc < WAL_HEADER_SIZE && end_page(w, e)) {
		rc = w->failed;
		goto fail;
	}
	*out = w;
	return 0;
fail:
	wal_writer_discard(w);
	return rc;
}

struct wal_pos wal_writer_end(const struct wal_writer *w)
{
	/* field by field: read whole, the segment's 4 bytes with the padding
	 * after them, the load waited for the record's stores (a
	 * store-forwarding stall, called once a record) */
	return (struct wal_pos){ .segment = w->last_end.segment, .offset = w->last_end.offset };
}

int wal_writer_flush(struct wal_writer *w, struct err *e)
{
	uint8_t *partial = cur_page(w);

	if (w->failed)
		return err_set(e, w->failed, "%s: the writer failed earlier", w->path);
	if (io_drain(w, e))
		return w->failed;
	if (w->buffered) {
		if (write_all(w, w->pages, w->buffered * WAL_PAGE_SIZE, e))
			return w->failed;
		memmove(w->pages, partial, w->alloc);
		w->buffered = 0;
	}
	if (w->alloc) {
		/* write the page as far as it is filled, then come back to its start */
		if (write_all(w, w->pages, w->alloc, e))
			return w->failed;
		if (lseek(w->fd, -(off_t)w->alloc, SEEK_CUR) < 0)
			return w->failed = err_errno(e, errno, "%s: seek", w->path);
	}
	if (sync_fd(w, w->fd, w->path, e))
		return w->failed;
	if (w->opts.sync && w->created) {
		if ((w->failed = wal_sync_dir(w->dir, e)))
			return w->failed;
		w->created = 0;
	}
	return 0;
}

void wal_writer_discard(struct wal_writer *w)
{
	if (!w)
		return;
	if (w->io)
		io_stop(w->io);
	else
		free(w->pages);
	if (w->fd >= 0)
		close(w->fd);
	buf_free(&w->compressed);
	wal_compressor_free(w->comp);
	free(w->dir);
	free(w);
}

struct wal_compressor {
	enum wal_compression kind;
	ZSTD_CCtx *zstd;
	struct snappy_small *small;   /* for wal_compress_probed(); made on its first use */
};

int wal_compressor_new(struct wal_compressor **out, enum wal_compression kind, struct err *e)
{
	struct wal_compressor *c = calloc(1, sizeof(*c));

	if (!c)
		return err_set(e, SNAPARC_NOMEM, "out of memory for a compressor");
	c->kind = kind;
	if (kind == WAL_COMPRESS_ZSTD && !(c->zstd = ZSTD_createCCtx())) {
		free(c);
		return err_set(e, SNAPARC_NOMEM, "out of memory for zstd");
	}
	*out = c;
	return 0;
}

void wal_compressor_free(struct wal_compressor *c)
{
	if (!c)
		return;
	ZSTD_freeCCtx(c->zstd);
	free(c->small);
	free(c);
}

int wal_compress(struct wal_compressor *c, const uint8_t *rec, size_t len, struct buf *out, struct err *e)
{
	size_t cap, n;

	if (c->kind == WAL_COMPRESS_NONE || len == 0)
		return 0;
	cap = c->kind == WAL_COMPRESS_SNAPPY ? snappy_max_compressed_length(len) : ZSTD_compressBound(len);
	buf_reset(out);
	if (!buf_reserve(out, cap))
		return err_set(e, SNAPARC_NOMEM, "out of memory compressing a %zu-byte record", len);
	if (c->kind == WAL_COMPRESS_SNAPPY) {
		n = cap;
		if (snappy_compress((const char *)rec, len, (char *)out->p, &n) != SNAPPY_OK)
			return err_set(e, SNAPARC_NOMEM, "Snappy could not compress a %zu-byte record", len);
	} else {
		n = ZSTD_compressCCtx(c->zstd, out->p, cap, rec, len, ZSTD_LEVEL);
		if (ZSTD_isError(n))
			return err_set(e, SNAPARC_NOMEM, "zstd could not compress a %zu-byte record: %s", len,
				       ZSTD_getErrorName(n));
	}
	if (n >= len)
		return 0;
	out->len = n;
	return c->kind == WAL_COMPRESS_SNAPPY ? WAL_SNAPPY : WAL_ZSTD;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* A Snappy literal's tag for n (>= 1) bytes: 1 to 5 bytes. */
static uint8_t *snappy_literal_tag(uint8_t *p, size_t n)
{
	uint64_t m = n - 1;
	size_t bytes = 0;

	if (m < 60) {
		*p++ = (uint8_t)(m << 2);
		return p;
	}
	for (uint64_t v = m; v; v >>= 8)
		bytes++;
	*p++ = (uint8_t)((59 + bytes) << 2);
	for (size_t i = 0; i < bytes; i++)
		*p++ = (uint8_t)(m >> (8 * i));
	return p;
}

/*
 * Snappy's elements (FORMAT.md: a length varint, then literals and copies
 * whose offsets point back into the output) for the head of a record,
 * written at p: the library compresses the head as a block of its own,
 * which starts with its length varint, placed so that the varint falls in
 * the bytes before p, which the caller writes over with the record's.
 */
static uint8_t *snappy_head(uint8_t *p, const uint8_t *head, size_t len, size_t cap)
{
	size_t vlen = varint_len(len), n = cap;

	if (!len)
		return p;
	if (snappy_compress((const char *)head, len, (char *)p - vlen, &n) != SNAPPY_OK)
		return NULL;
	return p - vlen + n;
}

static uint8_t *snappy_literal(uint8_t *p, const uint8_t *bytes, size_t n)
{
	p = snappy_literal_tag(p, n);
	memcpy(p, bytes, n);
	return p + n;
}

#define ZERO_RUN_MIN 8   /* shorter runs of zeros stay in the literal */

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/*
 * Elements for bytes[0, n) after the head: literals, except that each run
 * of ZERO_RUN_MIN or more zeros from scan_from on is its first zero (in
 * the literal) and copies of the byte before it (offset 1, at most 64
 * bytes each). An XOR chunk's tail is 56 zeros and the last value: a
 * second call into the library for it cost more than the rest.
 */
static uint8_t *zero_runs(uint8_t *p, const uint8_t *bytes, size_t n, size_t scan_from)
{
	size_t lit = 0, i = scan_from;

	while (i < n) {
		size_t run = i;

		if (bytes[i]) {
			i++;
			continue;
		}
		while (run + 8 <= n && !load64(bytes + run))
			run += 8;
		while (run < n && !bytes[run])
			run++;
		if (run - i >= ZERO_RUN_MIN) {
			p = snappy_literal(p, bytes + lit, i + 1 - lit);
			for (size_t left = run - i - 1, k; left; left -= k) {
				k = left < 64 ? left : 64;
				*p++ = (uint8_t)(((k - 1) << 2) | 2);
				*p++ = 1;
				*p++ = 0;
			}
			lit = run;
		}
		i = run;
	}
	if (lit < n)
		p = snappy_literal(p, bytes + lit, n - lit);
	return p;
}

/* The head by probes when there are (with our encoder), else by libsnappy. */
static uint8_t *head_elements(struct wal_compressor *c, uint8_t *p, const uint8_t *head, size_t len, size_t cap,
			      const struct snappy_small_range *probes, size_t nprobes)
{
	if (!probes)
		return snappy_head(p, head, len, cap);
	return p + snappy_small_elements(c->small, head, len, probes, nprobes, p);
}

/* Whether compress_span() codes rec by spans (else wal_compress() does it
 * whole), setting *probes to NULL where libsnappy codes the head. */
static int span_coded(struct wal_compressor *c, size_t len, size_t plain_off, size_t plain_len,
		      const struct snappy_small_range **probes)
{
	/* (a literal's tag holds up to 4 bytes of length) */
	if (c->kind != WAL_COMPRESS_SNAPPY || plain_off > len || plain_len > len - plain_off || len > UINT32_MAX)
		return 0;
	if (*probes && !c->small && (c->small = malloc(sizeof(*c->small))))
		snappy_small_init(c->small);
	/* libsnappy for what ours does not take, or without its table */
	if (!c->small || plain_off > SNAPPY_SMALL_MAX)
		*probes = NULL;
	return 1;
}

/* The most bytes span_stream() writes for a record of len bytes. */
static size_t span_cap(size_t len, size_t plain_off)
{
	size_t rest_len = len - plain_off;

	/* the head at most what libsnappy may take (snappy_small_bound() is
	 * below it); the rest at worst a literal tag (5) for each run's
	 * literal, and a run's copies never take more bytes than its zeros */
	return 10 + snappy_max_compressed_length(plain_off) + rest_len + 5 * (rest_len / ZERO_RUN_MIN + 1);
}

/* Writes the Snappy stream of a record coded by spans at dst (room for
 * span_cap()): its length, or 0 when libsnappy failed. */
static size_t span_stream(struct wal_compressor *c, const uint8_t *rec, size_t len, size_t plain_off,
			  size_t plain_len, const struct snappy_small_range *probes, size_t nprobes, uint8_t *dst)
{
	uint8_t *p = dst + varint_len(len);

	if (!(p = head_elements(c, p, rec, plain_off, snappy_max_compressed_length(plain_off), probes, nprobes)))
		return 0;
	varint_put(dst, len);
	p = zero_runs(p, rec + plain_off, len - plain_off, plain_len);
	return (size_t)(p - dst);
}

static int compress_span(struct wal_compressor *c, const uint8_t *rec, size_t len, size_t plain_off,
			 size_t plain_len, const struct snappy_small_range *probes, size_t nprobes, struct buf *out,
			 struct err *e)
{
	if (!span_coded(c, len, plain_off, plain_len, &probes))
		return wal_compress(c, rec, len, out, e);
	buf_reset(out);
	if (!buf_reserve(out, span_cap(len, plain_off)))
		return err_set(e, SNAPARC_NOMEM, "out of memory compressing a %zu-byte record", len);
	if (!(out->len = span_stream(c, rec, len, plain_off, plain_len, probes, nprobes, out->p)))
		return err_set(e, SNAPARC_NOMEM, "Snappy could not compress a %zu-byte record", len);
	if (out->len >= len)
		return 0;
	return WAL_SNAPPY;
}

int wal_compress_span(struct wal_compressor *c, const uint8_t *rec, size_t len, size_t plain_off,
		      size_t plain_len, struct buf *out, struct err *e)
{
	return compress_span(c, rec, len, plain_off, plain_len, NULL, 0, out, e);
}

int wal_compress_probed(struct wal_compressor *c, const uint8_t *rec, size_t len, size_t plain_off,
			size_t plain_len, const struct snappy_small_range *probes, size_t nprobes,
			struct buf *out, struct err *e)
{
	static const struct snappy_small_range none[1];

	return compress_span(c, rec, len, plain_off, plain_len, probes ? probes : none, nprobes, out, e);
}

int wal_writer_log(struct wal_writer *w, const uint8_t *rec, size_t len,
		   struct wal_pos *pos, struct err *e)
{
	int flags;

	if (w->failed)
		return err_set(e, w->failed, "%s: the writer failed earlier", w->path);
	flags = wal_compress(w->comp, rec, len, &w->compressed, e);
	if (flags < 0)
		return flags;
	if (flags)
		return wal_writer_log_stored(w, w->compressed.p, w->compressed.len, (uint8_t)flags, pos, e);
	return wal_writer_log_stored(w, rec, len, 0, pos, e);
}

int wal_writer_log_stored(struct wal_writer *w, const uint8_t *rec, size_t len,
			  uint8_t flags, struct wal_pos *pos, struct err *e)
{
	int64_t left;
	size_t i;

	if (w->failed)
		return err_set(e, w->failed, "%s: the writer failed earlier", w->path);
	if (flags & ~WAL_COMPRESSION_MASK || (flags & (flags - 1)))
		return err_set(e, SNAPARC_INVALID, "invalid compression flags 0x%02x", flags);
	/* Free space in the page and in the segment's remaining pages; negative
	 * once an oversized record has overrun the segment, as in Prometheus. */
	left = (int64_t)(WAL_PAGE_SIZE - w->alloc - WAL_HEADER_SIZE) +
	       (int64_t)(WAL_PAGE_SIZE - WAL_HEADER_SIZE) *
		       ((int64_t)w->pages_per_segment - (int64_t)w->done_pages - 1);
	if ((int64_t)len > left && next_segment(w, e))
		return w->failed;
	if (pos) {
		pos->segment = w->segment;
		pos->offset = w->done_pages * WAL_PAGE_SIZE + w->alloc;
	}
	for (i = 0; i == 0 || len > 0; i++) {
		uint8_t *h = cur_page(w) + w->alloc;
		size_t room = WAL_PAGE_SIZE - w->alloc - WAL_HEADER_SIZE;
		size_t part = len < room ? len : room;
		uint8_t kind;

		if (i == 0)
			kind = part == len ? WAL_FULL : WAL_FIRST;
		else
			kind = part == len ? WAL_LAST : WAL_MIDDLE;
		h[0] = kind | flags;
		be16_put(h + 1, (uint16_t)part);
		be32_put(h + 3, crc32c(0, rec, part));
		if (part)
			memcpy(h + WAL_HEADER_SIZE, rec, part);
		w->alloc += WAL_HEADER_SIZE + part;
		w->last_end.segment = w->segment;
		w->last_end.offset = w->done_pages * WAL_PAGE_SIZE + w->alloc;
		if (WAL_PAGE_SIZE - w->alloc < WAL_HEADER_SIZE && end_page(w, e))
			return w->failed;
		rec += part;
		len -= part;
	}
	return 0;
}

int wal_writer_log_probed(struct wal_writer *w, struct wal_compressor *c, const uint8_t *rec, size_t len,
			  size_t plain_off, size_t plain_len, const struct snappy_small_range *probes,
			  size_t nprobes, struct buf *scratch, struct err *e)
{
	uint8_t *h;
	size_t n;
	int flags;

	if (w->failed)
		return err_set(e, w->failed, "%s: the writer failed earlier", w->path);
	/* a stream that surely fits in the page being filled is written there,
	 * behind its fragment header: it then fits in the segment too, and is
	 * the record's only fragment, as wal_writer_log_stored() would make it */
	if (!span_coded(c, len, plain_off, plain_len, &probes) ||
	    span_cap(len, plain_off) > WAL_PAGE_SIZE - w->alloc - WAL_HEADER_SIZE) {
		flags = compress_span(c, rec, len, plain_off, plain_len, probes, nprobes, scratch, e);
		if (flags < 0)
			return flags;
		if (flags)
			return wal_writer_log_stored(w, scratch->p, scratch->len, (uint8_t)flags, NULL, e);
		return wal_writer_log_stored(w, rec, len, 0, NULL, e);
	}
	h = cur_page(w) + w->alloc;
	if (!(n = span_stream(c, rec, len, plain_off, plain_len, probes, nprobes, h + WAL_HEADER_SIZE)))
		return err_set(e, SNAPARC_NOMEM, "Snappy could not compress a %zu-byte record", len);
	if (n >= len)
		return wal_writer_log_stored(w, rec, len, 0, NULL, e);
	h[0] = WAL_FULL | WAL_SNAPPY;
	be16_put(h + 1, (uint16_t)n);
	be32_put(h + 3, crc32c(0, h + WAL_HEADER_SIZE, n));
	w->alloc += WAL_HEADER_SIZE + n;
	w->last_end.segment = w->segment;
	w->last_end.offset = w->done_pages * WAL_PAGE_SIZE + w->alloc;
	if (WAL_PAGE_SIZE - w->alloc < WAL_HEADER_SIZE && end_page(w, e))
		return w->failed;
	return 0;
}

int wal_writer_close(struct wal_writer *w, struct err *e)
{
	int rc = w->failed;

	if (!rc && w->alloc > 0)
		rc = end_page(w, e);
	if (!rc)
		rc = flush_pages(w, e);
	if (!rc)
		rc = io_drain(w, e);
	if (!rc)
		rc = sync_fd(w, w->fd, w->path, e);
	if (w->fd >= 0 && close(w->fd) != 0 && !rc)
		rc = err_errno(e, errno, "%s: close", w->path);
	if (!rc && w->opts.sync)
		rc = wal_sync_dir(w->dir, e);
	if (w->failed && rc == w->failed && e && e->code != rc)
		err_set(e, rc, "%s: the writer failed earlier", w->path);
	w->fd = -1;
	wal_writer_discard(w);
	return rc;
}

int wal_sync_dir(const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0 || fsync(fd) != 0)
		rc = err_errno(e, errno, "%s: fsync directory", dir);
	if (fd >= 0)
		close(fd);
	return rc;
}
