/*
 * Reading WAL segments (FORMAT.md section 2).
 *
 * The reader walks a segment page by page with one 32 KiB page buffer and
 * assembles fragments into a record buffer, so memory follows the largest
 * record, never the segment. The fragment rules (wal_frag.c, shared with
 * the push parser) are stricter than Prometheus' reader where strictness
 * costs nothing: padding must be zero, fragments may not cross a page,
 * every fragment of a record carries the same compression bit, and reserved
 * type bits are refused. A segment that ends inside a page or a record is
 * reported with where the last whole record ended.
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snappy-c.h>
#include <zstd.h>

#include "bytes.h"
#include "crc32c.h"
#include "wal_int.h"

/* Snappy's densest op is a 3-byte copy of 64 bytes: nothing expands more. */
#define SNAPPY_MAX_EXPANSION 22u

struct wal_reader {
	struct wal_reader_opts opts;
	char *dir;                 /* NULL when reading memory */
	uint32_t first, count;     /* segment indexes [first, first+count) */
	uint32_t seg;              /* current segment, relative index */
	int fd;
	char path[4096];
	int started;

	const uint8_t *mem;        /* memory mode: the segment's bytes */
	size_t mem_len;

	uint8_t *page_buf;         /* file mode: one page */
	const uint8_t *page;       /* the current page's bytes */
	size_t page_len;           /* bytes of it present (short only at the end) */
	size_t page_pos;           /* next byte to read within the page */
	uint64_t page_offset;      /* offset of the page in the segment */
	int seg_done;              /* the segment has no more pages */

	uint64_t skip_to;          /* range reading: where in the first page to start */
	int ranged;                /* stop at (end_seg, end_off) */
	uint32_t end_seg;
	uint64_t end_off;

	struct buf rec;            /* fragments of the record being assembled */
	struct buf out;            /* its decompressed form */
	uint64_t last_end;         /* where the last whole record ended */
	int failed;                /* sticky error code */
	struct err error;
};

void wal_segment_name(char *out, size_t cap, uint32_t index)
{
	snprintf(out, cap, "%08u", index);
}

static int is_segment_name(const char *name, uint32_t *index)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (uint32_t)(name[i] - '0');
	}
	if (name[8] != '\0')
		return 0;
	*index = v;
	return 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Lists dir's segments; they must be regular files numbered without gaps. */
static int list_segments(struct wal_reader *r, const char *dir, struct err *e)
{
	uint32_t *idx = NULL, n = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	int rc = 0;
	DIR *d;

	if (stat(dir, &st) != 0)
		return err_errno(e, errno, "%s", dir);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, SNAPARC_INVALID, "%s: not a directory (expected a directory of WAL segments)", dir);
	d = opendir(dir);
	if (!d)
		return err_errno(e, errno, "%s", dir);
	while ((de = readdir(d)) != NULL) {
		uint32_t v;
		char path[4096];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!is_segment_name(de->d_name, &v)) {
			rc = err_set(e, SNAPARC_CORRUPT, "%s: unexpected entry '%s' (segments are named like 00000000)",
				     dir, de->d_name);
			goto out;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0) {
			rc = err_errno(e, errno, "%s", path);
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = err_set(e, SNAPARC_CORRUPT, "%s: not a regular file", path);
			goto out;
		}
		if (n == cap) {
			uint32_t *p = realloc(idx, (cap ? cap * 2 : 16) * sizeof(*idx));

			if (!p) {
				rc = err_set(e, SNAPARC_NOMEM, "%s: out of memory listing segments", dir);
				goto out;
			}
			idx = p;
			cap = cap ? cap * 2 : 16;
		}
		idx[n++] = v;
	}
	if (n == 0) {
		rc = err_set(e, SNAPARC_NOT_FOUND, "%s: empty directory: no WAL segments", dir);
		goto out;
	}
	qsort(idx, n, sizeof(*idx), cmp_u32);
	for (uint32_t i = 1; i < n; i++) {
		if (idx[i] != idx[i - 1] + 1) {
			rc = err_set(e, SNAPARC_CORRUPT, "%s: segments are not consecutive: %08u is followed by %08u",
				     dir, idx[i - 1], idx[i]);
			goto out;
		}
	}
	r->first = idx[0];
	r->count = n;
out:
	closedir(d);
	free(idx);
	return rc;
}

static struct wal_reader *reader_new(const struct wal_reader_opts *opts)
{
	struct wal_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (opts)
		r->opts = *opts;
	r->fd = -1;
	return r;
}

int wal_reader_open_dir(struct wal_reader **out, const char *dir,
			const struct wal_reader_opts *opts, struct err *e)
{
	struct wal_reader *r = reader_new(opts);
	int rc;

	if (!r)
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", dir);
	r->dir = strdup(dir);
	r->page_buf = malloc(WAL_PAGE_SIZE);
	if (!r->dir || !r->page_buf) {
		wal_reader_close(r);
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", dir);
	}
	rc = list_segments(r, dir, e);
	if (rc) {
		wal_reader_close(r);
		return rc;
	}
	r->seg_done = 1;
	*out = r;
	return 0;
}

int wal_reader_open_range(struct wal_reader **out, const char *dir, const struct wal_pos *from,
			  const struct wal_pos *to, const struct wal_reader_opts *opts, struct err *e)
{
	struct wal_reader *r;
	int rc = wal_reader_open_dir(&r, dir, opts, e);

	if (rc)
		return rc;
	if (from->segment < r->first || from->segment - r->first >= r->count ||
	    to->segment < from->segment || to->segment - r->first >= r->count) {
		wal_reader_close(r);
		return err_set(e, SNAPARC_CORRUPT, "%s: segments %08u to %08u are not all there", dir,
			       from->segment, to->segment);
	}
	r->seg = from->segment - r->first;
	r->skip_to = from->offset;
	r->ranged = 1;
	r->end_seg = to->segment;
	r->end_off = to->offset;
	*out = r;
	return 0;
}

int wal_reader_open_mem(struct wal_reader **out, const uint8_t *p, size_t len,
			const char *name, const struct wal_reader_opts *opts, struct err *e)
{
	struct wal_reader *r = reader_new(opts);

	if (!r)
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", name);
	r->mem = p;
	r->mem_len = len;
	r->count = 1;
	r->started = 1;
	snprintf(r->path, sizeof(r->path), "%s", name);
	*out = r;
	return 0;
}

const char *wal_reader_segment_path(const struct wal_reader *r)
{
	return r->path;
}

void wal_reader_close(struct wal_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	buf_free(&r->rec);
	buf_free(&r->out);
	free(r->page_buf);
	free(r->dir);
	free(r);
}

/* Records a sticky error about the current segment: what a step refused. */
static int fail(struct wal_reader *r, const struct wal_step *s)
{
	r->failed = err_set(&r->error, s->code, "%s: offset %llu: %s", r->path,
			    (unsigned long long)s->at, s->why);
	return r->failed;
}

/* Reads the next page of the current segment; page_len 0 means none left. */
static int next_page(struct wal_reader *r)
{
	size_t got = 0;

	r->page_offset += r->page_len;
	r->page_pos = 0;
	if (r->mem) {
		size_t off = (size_t)r->page_offset;

		r->page = r->mem + off;
		r->page_len = r->mem_len - off < WAL_PAGE_SIZE ? r->mem_len - off : WAL_PAGE_SIZE;
		return 0;
	}
	while (got < WAL_PAGE_SIZE) {
		ssize_t n = read(r->fd, r->page_buf + got, WAL_PAGE_SIZE - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r->failed = err_errno(&r->error, errno, "%s: offset %llu: read", r->path,
					      (unsigned long long)(r->page_offset + got));
			return r->failed;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r->page = r->page_buf;
	r->page_len = got;
	return 0;
}

/* Moves to the next segment file; returns 0 (1 in *none when there is none). */
static int next_segment(struct wal_reader *r, int *none)
{
	char name[16];

	*none = 0;
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	if (r->started)
		r->seg++;
	if (r->seg >= r->count) {
		*none = 1;
		return 0;
	}
	r->started = 1;
	wal_segment_name(name, sizeof(name), r->first + r->seg);
	snprintf(r->path, sizeof(r->path), "%s/%s", r->dir, name);
	r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		r->failed = err_errno(&r->error, errno, "%s", r->path);
		return r->failed;
	}
	r->page_offset = 0;
	r->page_len = 0;
	r->page_pos = 0;
	r->last_end = 0;
	r->seg_done = 0;
	if (r->skip_to) {
		/* start reading at the page holding skip_to */
		r->page_offset = r->skip_to - r->skip_to % WAL_PAGE_SIZE;
		r->last_end = r->skip_to;
		if (lseek(r->fd, (off_t)r->page_offset, SEEK_SET) < 0) {
			r->failed = err_errno(&r->error, errno, "%s: seek", r->path);
			return r->failed;
		}
	}
	return 0;
}

static int decompress_snappy(const uint8_t *p, size_t len, struct buf *out, struct err *e)
{
	size_t n;

	if (snappy_uncompressed_length((const char *)p, len, &n) != SNAPPY_OK)
		return err_set(e, SNAPARC_CORRUPT, "Snappy header is not valid");
	if (n > WAL_MAX_RECORD || n > (uint64_t)len * SNAPPY_MAX_EXPANSION + 16)
		return err_set(e, SNAPARC_CORRUPT, "Snappy data claims %zu bytes from %zu, more than it can hold",
			       n, len);
	buf_reset(out);
	if (!buf_reserve(out, n ? n : 1))
		return err_set(e, SNAPARC_NOMEM, "out of memory for a %zu-byte record", n);
	if (snappy_uncompress((const char *)p, len, (char *)out->p, &n) != SNAPPY_OK)
		return err_set(e, SNAPARC_CORRUPT, "Snappy data does not decompress");
	out->len = n;
	return 0;
}

/* Total content size of the zstd frames in p, ZSTD_CONTENTSIZE_UNKNOWN if a
 * frame does not say, ZSTD_CONTENTSIZE_ERROR if p is not a run of frames. */
static unsigned long long zstd_content_size(const uint8_t *p, size_t len)
{
	unsigned long long total = 0;

	if (len == 0)
		return ZSTD_CONTENTSIZE_ERROR;
	while (len) {
		unsigned long long n = ZSTD_getFrameContentSize(p, len);
		size_t frame = ZSTD_findFrameCompressedSize(p, len);

		if (n == ZSTD_CONTENTSIZE_ERROR || ZSTD_isError(frame))
			return ZSTD_CONTENTSIZE_ERROR;
		if (n == ZSTD_CONTENTSIZE_UNKNOWN)
			return n;
		total += n;
		if (total > WAL_MAX_RECORD)
			return total;
		p += frame;
		len -= frame;
	}
	return total;
}

static int decompress_zstd(const uint8_t *p, size_t len, struct buf *out, struct err *e)
{
	unsigned long long n = zstd_content_size(p, len);
	size_t got;

	if (n == ZSTD_CONTENTSIZE_ERROR)
		return err_set(e, SNAPARC_CORRUPT, "not a valid zstd frame");
	if (n == ZSTD_CONTENTSIZE_UNKNOWN) {
		/* Frames without a size: stream into a buffer that grows up to the cap. */
		ZSTD_inBuffer in = { p, len, 0 };
		ZSTD_DStream *ds = ZSTD_createDStream();
		size_t r = 1;

		if (!ds)
			return err_set(e, SNAPARC_NOMEM, "out of memory for zstd");
		buf_reset(out);
		/* every frame, as Prometheus' decoder reads them; junk after the
		 * last one is an error from ZSTD_decompressStream */
		while (in.pos < in.size) {
			ZSTD_outBuffer o;

			if (out->cap - out->len < 4096 && out->len >= WAL_MAX_RECORD) {
				ZSTD_freeDStream(ds);
				return err_set(e, SNAPARC_CORRUPT, "zstd data expands past %u bytes", WAL_MAX_RECORD);
			}
			if (!buf_reserve(out, 64 * 1024)) {
				ZSTD_freeDStream(ds);
				return err_set(e, SNAPARC_NOMEM, "out of memory decompressing zstd");
			}
			o.dst = out->p;
			o.size = out->cap < WAL_MAX_RECORD ? out->cap : WAL_MAX_RECORD;
			o.pos = out->len;
			r = ZSTD_decompressStream(ds, &o, &in);
			out->len = o.pos;
			if (ZSTD_isError(r)) {
				ZSTD_freeDStream(ds);
				return err_set(e, SNAPARC_CORRUPT, "zstd data does not decompress: %s",
					       ZSTD_getErrorName(r));
			}
		}
		ZSTD_freeDStream(ds);
		if (r != 0)
			return err_set(e, SNAPARC_CORRUPT, "zstd frame is truncated");
		return 0;
	}
	if (n > WAL_MAX_RECORD)
		return err_set(e, SNAPARC_CORRUPT, "zstd data claims %llu bytes, over the %u-byte record cap",
			       n, WAL_MAX_RECORD);
	buf_reset(out);
	if (!buf_reserve(out, n ? (size_t)n : 1))
		return err_set(e, SNAPARC_NOMEM, "out of memory for a %llu-byte record", n);
	got = ZSTD_decompress(out->p, (size_t)n, p, len);
	if (ZSTD_isError(got))
		return err_set(e, SNAPARC_CORRUPT, "zstd data does not decompress: %s", ZSTD_getErrorName(got));
	if (got != n)
		return err_set(e, SNAPARC_CORRUPT, "zstd data gave %zu bytes, its header said %llu", got, n);
	out->len = got;
	return 0;
}

int wal_decompress(uint8_t flags, const uint8_t *p, size_t len, struct buf *out, struct err *e)
{
	if (flags == WAL_SNAPPY)
		return decompress_snappy(p, len, out, e);
	if (flags == WAL_ZSTD)
		return decompress_zstd(p, len, out, e);
	return err_set(e, SNAPARC_UNSUPPORTED, "compression flags 0x%02x are not Snappy or zstd", flags);
}

/* Reports the end of a segment: clean, or torn inside a page or a record. */
static int segment_end(struct wal_reader *r, const struct wal_assembly *a)
{
	struct wal_step s;

	if (wal_check_end(r->page_offset + r->page_len, a, r->last_end, r->opts.partial_last_page, &s))
		return fail(r, &s);
	return 0;
}

/* The record is complete: decompress and hand it out. */
static int finish(struct wal_reader *r, struct wal_record *rec, struct wal_step *s)
{
	r->last_end = s->end;
	if (wal_step_record(s, r->first + r->seg, r->opts.raw, &r->out, rec))
		return fail(r, s);
	return 1;
}

int wal_reader_next(struct wal_reader *r, struct wal_record *rec, struct err *e)
{
	struct wal_assembly a = { .data = &r->rec };
	struct wal_step s;
	int none;

	buf_reset(&r->rec);
	while (!r->failed) {
		struct wal_page_view pg;
		uint64_t off;

		if (r->page_pos >= r->page_len) {
			if (r->page_len && r->page_len < WAL_PAGE_SIZE) {
				segment_end(r, &a);
				r->seg_done = 1;
			} else if (!r->seg_done && !next_page(r) && r->page_len == 0) {
				segment_end(r, &a);
				r->seg_done = 1;
			} else if (r->skip_to && !r->seg_done && !r->failed) {
				/* the range's first page is in: start inside it */
				r->page_pos = (size_t)(r->skip_to % WAL_PAGE_SIZE);
				r->skip_to = 0;
			}
			if (r->failed)
				break;
			if (r->seg_done) {
				if (r->mem)
					return 0;
				if (next_segment(r, &none))
					break;
				if (none)
					return 0;
			}
			continue;
		}
		off = r->page_offset + r->page_pos;
		if (r->ranged && !a.open &&
		    (r->first + r->seg > r->end_seg || (r->first + r->seg == r->end_seg && off >= r->end_off)))
			return 0;
		/* the page is all the file has of it: complete */
		pg = (struct wal_page_view){ r->page, r->page_len, r->page_offset, 1 };
		switch (wal_step(&pg, &r->page_pos, r->opts.allow_lz4, r->last_end, &a, &s)) {
		case WAL_STEP_BAD:
			fail(r, &s);
			break;
		case WAL_STEP_RECORD:
			if (finish(r, rec, &s) == 1)
				return 1;
			break;
		default:
			break;
		}
	}
	if (e)
		*e = r->error;
	return r->failed;
}

static int parse_record(const uint8_t *p, size_t span, uint64_t offset, int allow_lz4, int check_crc,
			const uint8_t **data, size_t *len, uint8_t *flags, struct buf *scratch, struct err *e)
{
	size_t i = 0;
	int first = 1;

	buf_reset(scratch);
	while (i < span) {
		uint64_t at = offset + i;
		size_t page_left = WAL_PAGE_SIZE - (size_t)(at % WAL_PAGE_SIZE), n;
		unsigned kind, comp;
		const uint8_t *h = p + i;

		if (page_left < WAL_HEADER_SIZE || h[0] == WAL_PAD) {
			/* the rest of the page is padding before the next fragment */
			for (size_t j = 0; j < page_left && i + j < span; j++)
				if (p[i + j])
					return err_set(e, SNAPARC_CORRUPT, "offset %llu: non-zero byte in page padding",
						       (unsigned long long)(at + j));
			if (first)
				return err_set(e, SNAPARC_CORRUPT, "offset %llu: no record starts here",
					       (unsigned long long)at);
			i += page_left;
			continue;
		}
		if (span - i < WAL_HEADER_SIZE)
			return err_set(e, SNAPARC_CORRUPT, "offset %llu: record is cut short", (unsigned long long)at);
		kind = h[0] & WAL_KIND_MASK;
		comp = h[0] & ~WAL_KIND_MASK & 0xffu;
		n = be16_get(h + 1);
		if (kind == WAL_PAD || kind > WAL_LAST || comp & ~WAL_COMPRESSION_MASK || (comp & (comp - 1)) ||
		    (comp == WAL_LZ4 && !allow_lz4))
			return err_set(e, SNAPARC_CORRUPT, "offset %llu: invalid fragment type 0x%02x",
				       (unsigned long long)at, h[0]);
		if (n > page_left - WAL_HEADER_SIZE || n > span - i - WAL_HEADER_SIZE)
			return err_set(e, SNAPARC_CORRUPT, "offset %llu: fragment of %zu bytes runs past %s",
				       (unsigned long long)at, n, n > page_left - WAL_HEADER_SIZE ? "its page" : "the record");
		if (check_crc && crc32c(0, h + WAL_HEADER_SIZE, n) != be32_get(h + 3))
			return err_set(e, SNAPARC_CORRUPT, "offset %llu: CRC mismatch: stored 0x%08x, computed 0x%08x",
				       (unsigned long long)at, be32_get(h + 3), crc32c(0, h + WAL_HEADER_SIZE, n));
		if (first != (kind == WAL_FULL || kind == WAL_FIRST) || (!first && comp != *flags))
			return err_set(e, SNAPARC_CORRUPT, "offset %llu: fragment kind %u out of order",
				       (unsigned long long)at, kind);
		i += WAL_HEADER_SIZE + n;
		if (kind == WAL_FULL || kind == WAL_LAST) {
			if (i != span)
				return err_set(e, SNAPARC_CORRUPT, "offset %llu: record ends %zu bytes before its indexed end",
					       (unsigned long long)(offset + i), span - i);
			if (kind == WAL_FULL) {
				*flags = (uint8_t)comp;
				*data = h + WAL_HEADER_SIZE;
				*len = n;
				return 0;
			}
			buf_put(scratch, h + WAL_HEADER_SIZE, n);
			if (scratch->oom)
				return err_set(e, SNAPARC_NOMEM, "out of memory assembling a record");
			*data = scratch->p;
			*len = scratch->len;
			return 0;
		}
		*flags = (uint8_t)comp;
		first = 0;
		buf_put(scratch, h + WAL_HEADER_SIZE, n);
	}
	return err_set(e, SNAPARC_CORRUPT, "offset %llu: record is cut short", (unsigned long long)(offset + span));
}

int wal_parse_record(const uint8_t *p, size_t span, uint64_t offset, int allow_lz4,
		     const uint8_t **data, size_t *len, uint8_t *flags, struct buf *scratch,
		     struct err *e)
{
	return parse_record(p, span, offset, allow_lz4, 1, data, len, flags, scratch, e);
}

int wal_reparse_record(const uint8_t *p, size_t span, uint64_t offset, const uint8_t **data, size_t *len,
		       uint8_t *flags, struct buf *scratch, struct err *e)
{
	return parse_record(p, span, offset, 1, 0, data, len, flags, scratch, e);
}
