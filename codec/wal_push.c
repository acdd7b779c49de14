/*
 * Parsing WAL segments pushed in batches (FORMAT.md section 2; wal_push.h).
 *
 * Bytes go into the current 32 KiB page. A page is parsed as its bytes come:
 * wal_step() (wal_frag.c, the pull reader's rules) takes each fragment once
 * all of its bytes are there, and says "more" while they are not, so a page
 * is held only until it is whole. A whole page that arrives in one batch is
 * parsed in place, without a copy. Once padding starts, the rest of the page
 * is checked for zeros as it comes.
 *
 * What the pull reader decides by the file's size, the push parser decides
 * when it is told the segment ended: a torn page, fragment, header or record.
 */
#include "wal_push.h"

#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "wal_int.h"

struct wal_push {
	struct wal_reader_opts opts;
	char *name;
	uint32_t segment;          /* segments ended so far */

	uint8_t *page_buf;         /* the current page while it is not whole */
	size_t page_len;           /* bytes of the current page fed */
	size_t page_pos;           /* next of them to parse */
	uint64_t page_offset;      /* offset of the page in the segment */
	int in_padding;            /* the rest of the page must be zeros */

	struct buf rec;            /* fragments of the record being assembled */
	struct wal_assembly assembly;
	struct buf out;            /* its decompressed form */
	uint64_t last_end;         /* where the segment's last whole record ended */
	int failed;                /* sticky error code */
	struct err error;
};

int wal_push_new(struct wal_push **out, const char *name, const struct wal_reader_opts *opts, struct err *e)
{
	struct wal_push *p = calloc(1, sizeof(*p));

	if (!name)
		name = "WAL stream";
	if (!p)
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", name);
	if (opts)
		p->opts = *opts;
	p->name = strdup(name);
	p->page_buf = malloc(WAL_PAGE_SIZE);
	if (!p->name || !p->page_buf) {
		wal_push_free(p);
		return err_set(e, SNAPARC_NOMEM, "%s: out of memory", name);
	}
	p->assembly.data = &p->rec;
	*out = p;
	return 0;
}

void wal_push_free(struct wal_push *p)
{
	if (!p)
		return;
	buf_free(&p->rec);
	buf_free(&p->out);
	free(p->page_buf);
	free(p->name);
	free(p);
}

static int fail(struct wal_push *p, const struct wal_step *s)
{
	p->failed = err_set(&p->error, s->code, "%s segment %u: offset %llu: %s", p->name, p->segment,
			    (unsigned long long)s->at, s->why);
	return p->failed;
}

static int stopped(const struct wal_push *p, struct err *e)
{
	if (e)
		*e = p->error;
	return p->failed;
}

/* Decompresses the record a step found and hands it to fn. */
static void deliver(struct wal_push *p, struct wal_step *s, wal_push_fn fn, void *ctx)
{
	struct wal_record rec;
	struct err cb = { 0 };
	int rc;

	p->last_end = s->end;
	if (wal_step_record(s, p->segment, p->opts.raw, &p->out, &rec)) {
		fail(p, s);
		return;
	}
	if (!fn || (rc = fn(ctx, &rec, &cb)) == 0)
		return;
	p->failed = rc;
	if (cb.msg[0]) {
		p->error = cb;
		p->error.code = rc;
	} else {
		err_set(&p->error, rc, "%s segment %u: offset %llu: the record's consumer failed (%s)", p->name,
			p->segment, (unsigned long long)rec.offset, err_name(rc));
	}
}

/* Parses what has come of the current page (page holds its page_len bytes);
 * complete when no more of it will come. */
static void parse(struct wal_push *p, const uint8_t *page, int complete, wal_push_fn fn, void *ctx)
{
	struct wal_page_view pg = { page, p->page_len, p->page_offset, complete };
	struct wal_step s;

	if (p->in_padding) {
		if (wal_check_padding(&pg, p->page_pos, &s))
			fail(p, &s);
		p->page_pos = p->page_len;
	}
	while (!p->failed && p->page_pos < p->page_len) {
		switch (wal_step(&pg, &p->page_pos, p->opts.allow_lz4, p->last_end, &p->assembly, &s)) {
		case WAL_STEP_MORE:
			return;
		case WAL_STEP_BAD:
			fail(p, &s);
			return;
		case WAL_STEP_PADDING:
			p->in_padding = 1;
			break;
		case WAL_STEP_RECORD:
			deliver(p, &s, fn, ctx);
			break;
		default:
			break;
		}
	}
}

int wal_push_feed(struct wal_push *p, const uint8_t *bytes, size_t len, wal_push_fn fn, void *ctx,
		  struct err *e)
{
	while (!p->failed && len) {
		const uint8_t *page = p->page_buf;
		size_t n = WAL_PAGE_SIZE - p->page_len;

		if (n == 0) {
			p->page_offset += WAL_PAGE_SIZE;
			p->page_len = p->page_pos = 0;
			p->in_padding = 0;
			n = WAL_PAGE_SIZE;
		}
		if (p->page_len == 0 && len >= WAL_PAGE_SIZE)
			page = bytes;   /* whole: parsed before this call returns */
		else if (n > len)
			n = len;
		if (page == p->page_buf)
			memcpy(p->page_buf + p->page_len, bytes, n);
		p->page_len += n;
		bytes += n;
		len -= n;
		parse(p, page, p->page_len == WAL_PAGE_SIZE, fn, ctx);
	}
	return stopped(p, e);
}

int wal_push_end_segment(struct wal_push *p, struct err *e)
{
	struct wal_step s;

	if (p->failed)
		return stopped(p, e);
	/* a whole page was parsed as it came; a short one is now all there is */
	if (p->page_len < WAL_PAGE_SIZE)
		parse(p, p->page_buf, 1, NULL, NULL);
	if (!p->failed && wal_check_end(p->page_offset + p->page_len, &p->assembly, p->last_end,
					p->opts.partial_last_page, &s))
		fail(p, &s);
	if (p->failed)
		return stopped(p, e);
	p->segment++;
	p->page_offset = 0;
	p->page_len = p->page_pos = 0;
	p->in_padding = 0;
	p->last_end = 0;
	p->assembly.open = 0;
	buf_reset(&p->rec);
	return 0;
}
