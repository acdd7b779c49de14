/*
 * wal_int: the fragment rules of WAL segments, shared by the pull reader
 * (wal_reader.c) and the push parser (wal_push.c) so that both accept the
 * same segments and refuse a bad one with the same reason at the same
 * offset. Internal to codec/; hosts use wal.h and wal_push.h.
 *
 * A reader hands wal_step() a page as far as it has the page's bytes, and
 * says whether more of them can come. Each step looks at one fragment (or
 * the padding that ends the page) and, when the bytes decide, checks it and
 * adds it to the record being assembled. What is refused comes back as a
 * code, a segment offset and a reason; the reader puts its segment's name in
 * front ("<name>: offset O: <reason>").
 */
#ifndef SNAPARC_WAL_INT_H
#define SNAPARC_WAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"
#include "wal.h"

/* A page of a segment as far as a reader has it. */
struct wal_page_view {
	const uint8_t *bytes;  /* the page's first len bytes */
	size_t len;
	uint64_t offset;       /* of the page in the segment */
	int complete;          /* no more bytes of it will come: it is whole
				* (len == WAL_PAGE_SIZE) or the segment ends here */
};

/* The record being assembled from its fragments, within one segment. */
struct wal_assembly {
	int open;              /* a FIRST fragment has come, its LAST not yet */
	uint64_t start;        /* offset of its first fragment */
	uint8_t flags;         /* its compression bits */
	struct buf *data;      /* its fragments' data so far (the reader's buffer) */
};

/* What a step found: a whole record (as stored), or why the segment is bad. */
struct wal_step {
	const uint8_t *data;   /* WAL_STEP_RECORD: borrowed from the page or the assembly */
	size_t len;
	uint8_t flags;
	uint64_t start, end;   /* its first fragment's offset, and just past its last */

	int code;              /* WAL_STEP_BAD: SNAPARC_CORRUPT or SNAPARC_NOMEM */
	uint64_t at;           /* the segment offset the reason is about */
	char why[ERR_MSG_MAX];
};

enum wal_step_result {
	WAL_STEP_BAD = -1,     /* refused: code, at and why are set */
	WAL_STEP_MORE = 0,     /* the bytes so far do not decide (only when !complete) */
	WAL_STEP_PADDING,      /* the rest of the page is padding; what is there is zeros */
	WAL_STEP_FRAGMENT,     /* a FIRST or MIDDLE fragment went into the assembly */
	WAL_STEP_RECORD,       /* a record is whole: data, len, flags, start, end are set */
};

/*
 * Looks at the page from *pos (< pg->len) and returns what it found,
 * advancing *pos past what it consumed. Nothing changes on WAL_STEP_MORE.
 * allow_lz4 is the reader option; last_end (where the last whole record of
 * the segment ended) goes into messages about torn segments. After
 * WAL_STEP_PADDING the bytes of the page that are still to come must be
 * checked with wal_check_padding().
 */
int wal_step(const struct wal_page_view *pg, size_t *pos, int allow_lz4, uint64_t last_end,
	     struct wal_assembly *a, struct wal_step *s);

/* Checks that bytes [from, pg->len) of the page are zeros; 0 or WAL_STEP_BAD. */
int wal_check_padding(const struct wal_page_view *pg, size_t from, struct wal_step *s);

/* The segment ends after size bytes: 0, or WAL_STEP_BAD when that is inside
 * a record or (unless partial_last_page) inside a page. */
int wal_check_end(uint64_t size, const struct wal_assembly *a, uint64_t last_end, int partial_last_page,
		  struct wal_step *s);

/*
 * Fills rec with the record s found, as readers hand records out: data
 * decompressed into out unless raw or stored with WAL_LZ4 (borrowed from s
 * or out). 0, or WAL_STEP_BAD when it does not decompress.
 */
int wal_step_record(struct wal_step *s, uint32_t segment, int raw, struct buf *out, struct wal_record *rec);

#endif
