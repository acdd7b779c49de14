/*
 * wal_push: WAL segments (FORMAT.md section 2) parsed as their bytes are
 * pushed in, in batches of any size, where wal.h's reader pulls them from
 * files or memory. It applies the same fragment rules as the pull reader
 * (wal_frag.c): the same records come out of the same bytes, and bad bytes
 * are refused with the same code, offset and reason.
 *
 * Memory does not grow with the segment: the parser holds at most one page
 * of bytes it has not parsed yet, the record being assembled (at most
 * WAL_MAX_RECORD) and its decompressed form.
 *
 *   wal_push_new -> (wal_push_feed ... wal_push_end_segment)* -> wal_push_free
 */
#ifndef SNAPARC_WAL_PUSH_H
#define SNAPARC_WAL_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "wal.h"

struct wal_push;

/*
 * Creates a parser; the first bytes fed are segment 0 at offset 0. name
 * (copied; NULL for "WAL stream") starts its messages. opts as for the pull
 * reader (allow_lz4, raw, partial_last_page); NULL for none. Caller frees
 * with wal_push_free(). *out is set only on success; SNAPARC_NOMEM.
 */
int wal_push_new(struct wal_push **out, const char *name, const struct wal_reader_opts *opts, struct err *e);

void wal_push_free(struct wal_push *p);

/*
 * Called for each complete record, decompressed unless opts.raw (records
 * stored with WAL_LZ4 stay as stored, as from the pull reader). rec and its
 * data are borrowed for the call. segment counts the segments fed (0, 1,
 * ...); offset and end are offsets in it, as in struct wal_record. e starts
 * cleared; a non-zero return stops the parser (see wal_push_feed).
 */
typedef int (*wal_push_fn)(void *ctx, const struct wal_record *rec, struct err *e);

/*
 * Feeds the next len bytes of the current segment, split anywhere (one byte
 * at a time is fine), and calls fn (NULL: records are checked and dropped)
 * for each record they complete, in order. bytes are not kept after the
 * call. Returns 0, or the error that stopped the parser:
 *
 *  - bad bytes: SNAPARC_CORRUPT (SNAPARC_NOMEM when a record cannot be
 *    assembled) with "<name> segment N: offset O: <reason>", the offset and
 *    reason the pull reader gives for the same segment;
 *  - fn's non-zero return, with the message fn left in its err (or one
 *    naming the record when it left none).
 *
 * Errors stick: once stopped, the bytes after the failure are not parsed
 * and every later call returns the same code and message.
 */
int wal_push_feed(struct wal_push *p, const uint8_t *bytes, size_t len, wal_push_fn fn, void *ctx,
		  struct err *e);

/*
 * The current segment ends after the bytes fed. It is an error (as in
 * wal_push_feed, naming where the last whole record of the segment ended)
 * when that is inside a record, a fragment or a fragment header, or inside
 * a page unless opts.partial_last_page. On success the next bytes fed start
 * segment N+1 at offset 0; ending a segment nothing was fed into is fine.
 */
int wal_push_end_segment(struct wal_push *p, struct err *e);

#endif
