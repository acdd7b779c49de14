/*
 * The fragment rules of WAL segments (FORMAT.md section 2; see wal_int.h),
 * moved here from wal_reader.c so that the push parser applies them too.
 *
 * Stricter than Prometheus' reader where strictness costs nothing: padding
 * must be zero, fragments may not cross a page, every fragment of a record
 * carries the same compression bit, and reserved type bits are refused. A
 * segment that ends inside a page, a fragment or a record is reported with
 * where the last whole record ended.
 */
#include "wal_int.h"

#include <stdarg.h>
#include <stdio.h>

#include "crc32c.h"

#define HEADER_OK 1

__attribute__((format(printf, 4, 5)))
static int bad(struct wal_step *s, int code, uint64_t at, const char *fmt, ...)
{
	va_list ap;

	s->code = code;
	s->at = at;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return WAL_STEP_BAD;
}

static const char *kind_name(unsigned kind)
{
	static const char *names[] = { "padding", "full", "first", "middle", "last" };

	return kind < 5 ? names[kind] : "unknown";
}

static int check_type(uint8_t type, uint64_t off, int allow_lz4, struct wal_step *s)
{
	unsigned kind = type & WAL_KIND_MASK, comp = type & ~WAL_KIND_MASK & 0xffu;

	if (kind > WAL_LAST)
		return bad(s, SNAPARC_CORRUPT, off, "unknown fragment kind %u (type byte 0x%02x)", kind, type);
	if (kind == WAL_PAD)
		return bad(s, SNAPARC_CORRUPT, off, "padding type with other bits set (type byte 0x%02x)", type);
	if (comp & ~WAL_COMPRESSION_MASK || (comp == WAL_LZ4 && !allow_lz4))
		return bad(s, SNAPARC_CORRUPT, off, "reserved bits set in fragment type 0x%02x", type);
	if (comp && (comp & (comp - 1)))
		return bad(s, SNAPARC_CORRUPT, off, "more than one compression bit in fragment type 0x%02x", type);
	return 0;
}

int wal_check_padding(const struct wal_page_view *pg, size_t from, struct wal_step *s)
{
	for (size_t i = from; i < pg->len; i++)
		if (pg->bytes[i] != 0)
			return bad(s, SNAPARC_CORRUPT, pg->offset + i, "non-zero byte 0x%02x in page padding",
				   pg->bytes[i]);
	return 0;
}

/* Checks the header at page[pos] (at least one byte there, not padding) and
 * that its fragment stays in the page: WAL_STEP_BAD, WAL_STEP_MORE, or
 * HEADER_OK when the whole fragment is there. */
static int check_header(const struct wal_page_view *pg, size_t pos, int allow_lz4, uint64_t last_end,
			struct wal_step *s)
{
	const uint8_t *h = pg->bytes + pos;
	uint64_t off = pg->offset + pos;
	size_t left = pg->len - pos, len;

	if (left < WAL_HEADER_SIZE) {
		/* a page's last 6 bytes can only be padding, but which message
		 * applies depends on whether the page turns out torn */
		if (!pg->complete)
			return WAL_STEP_MORE;
		if (pg->len < WAL_PAGE_SIZE)
			return bad(s, SNAPARC_CORRUPT, off, "segment ends inside a fragment header (torn write); the last whole record ended at offset %llu",
				   (unsigned long long)last_end);
		return bad(s, SNAPARC_CORRUPT, off, "non-zero byte 0x%02x where fewer than 7 bytes of the page are left (must be padding)",
			   h[0]);
	}
	if (check_type(h[0], off, allow_lz4, s))
		return WAL_STEP_BAD;
	len = be16_get(h + 1);
	if (len > left - WAL_HEADER_SIZE) {
		if (pg->len < WAL_PAGE_SIZE && len <= WAL_PAGE_SIZE - pos - WAL_HEADER_SIZE) {
			if (!pg->complete)
				return WAL_STEP_MORE;
			return bad(s, SNAPARC_CORRUPT, off, "segment ends inside a %zu-byte fragment (torn write); the last whole record ended at offset %llu",
				   len, (unsigned long long)last_end);
		}
		return bad(s, SNAPARC_CORRUPT, off, "fragment of %zu bytes crosses the page boundary", len);
	}
	return HEADER_OK;
}

/* Checks a whole fragment's CRC and its place in the record being assembled. */
static int check_fragment(const uint8_t *h, uint64_t off, const struct wal_assembly *a, struct wal_step *s)
{
	unsigned kind = h[0] & WAL_KIND_MASK;
	size_t len = be16_get(h + 1);
	uint32_t crc = be32_get(h + 3), computed = crc32c(0, h + WAL_HEADER_SIZE, len);

	if (computed != crc)
		return bad(s, SNAPARC_CORRUPT, off, "CRC mismatch in %s fragment of %zu bytes: stored 0x%08x, computed 0x%08x",
			   kind_name(kind), len, crc, computed);
	if ((kind == WAL_FULL || kind == WAL_FIRST) && a->open)
		return bad(s, SNAPARC_CORRUPT, off, "%s fragment while the record that started at offset %llu is incomplete",
			   kind_name(kind), (unsigned long long)a->start);
	if ((kind == WAL_MIDDLE || kind == WAL_LAST) && !a->open)
		return bad(s, SNAPARC_CORRUPT, off, "%s fragment without a first fragment before it", kind_name(kind));
	if (a->open && (h[0] & ~WAL_KIND_MASK) != a->flags)
		return bad(s, SNAPARC_CORRUPT, off, "fragment's compression bits 0x%02x differ from its record's 0x%02x",
			   h[0] & ~WAL_KIND_MASK, a->flags);
	return 0;
}

int wal_step(const struct wal_page_view *pg, size_t *pos, int allow_lz4, uint64_t last_end,
	     struct wal_assembly *a, struct wal_step *s)
{
	const uint8_t *h = pg->bytes + *pos, *data;
	uint64_t off = pg->offset + *pos;
	unsigned kind = h[0] & WAL_KIND_MASK;
	uint8_t comp = h[0] & ~WAL_KIND_MASK & 0xff;
	size_t len;
	int rc;

	if (h[0] == WAL_PAD) {
		if (wal_check_padding(pg, *pos, s))
			return WAL_STEP_BAD;
		*pos = pg->len;
		return WAL_STEP_PADDING;
	}
	rc = check_header(pg, *pos, allow_lz4, last_end, s);
	if (rc != HEADER_OK)
		return rc;
	if (check_fragment(h, off, a, s))
		return WAL_STEP_BAD;
	data = h + WAL_HEADER_SIZE;
	len = be16_get(h + 1);
	*pos += WAL_HEADER_SIZE + len;
	if (kind == WAL_FULL) {
		s->data = data;
		s->len = len;
		s->flags = comp;
		s->start = off;
		s->end = off + WAL_HEADER_SIZE + len;
		return WAL_STEP_RECORD;
	}
	if (kind == WAL_FIRST) {
		a->open = 1;
		a->start = off;
		a->flags = comp;
		buf_reset(a->data);
	}
	if (a->data->len + len > WAL_MAX_RECORD)
		return bad(s, SNAPARC_CORRUPT, a->start, "record is larger than the %u-byte cap", WAL_MAX_RECORD);
	buf_put(a->data, data, len);
	if (a->data->oom)
		return bad(s, SNAPARC_NOMEM, a->start, "out of memory assembling a record");
	if (kind != WAL_LAST)
		return WAL_STEP_FRAGMENT;
	a->open = 0;
	s->data = a->data->p;
	s->len = a->data->len;
	s->flags = a->flags;
	s->start = a->start;
	s->end = off + WAL_HEADER_SIZE + len;
	return WAL_STEP_RECORD;
}

int wal_check_end(uint64_t size, const struct wal_assembly *a, uint64_t last_end, int partial_last_page,
		  struct wal_step *s)
{
	if (a->open)
		return bad(s, SNAPARC_CORRUPT, a->start, "segment ends inside a record (torn write); the last whole record ended at offset %llu",
			   (unsigned long long)last_end);
	if (size % WAL_PAGE_SIZE && !partial_last_page)
		return bad(s, SNAPARC_CORRUPT, size, "torn last page: the segment is %llu bytes, not a whole number of 32 KiB pages; the last whole record ended at offset %llu",
			   (unsigned long long)size, (unsigned long long)last_end);
	return 0;
}

int wal_step_record(struct wal_step *s, uint32_t segment, int raw, struct buf *out, struct wal_record *rec)
{
	struct err e;

	rec->segment = segment;
	rec->offset = s->start;
	rec->end = s->end;
	rec->flags = s->flags;
	rec->stored_len = s->len;
	rec->data = s->data;
	rec->len = s->len;
	if (s->flags && !raw && s->flags != WAL_LZ4) {
		/* reported as corruption whatever wal_decompress says, as before */
		if (wal_decompress(s->flags, s->data, s->len, out, &e))
			return bad(s, SNAPARC_CORRUPT, s->start, "record of %zu stored bytes: %s", s->len, e.msg);
		rec->data = out->p;
		rec->len = out->len;
	}
	return 0;
}
