/*
 * wal: Prometheus' write-ahead-log segment format (FORMAT.md section 2),
 * reading and writing. It frames opaque records and knows no record types.
 *
 * A directory holds segments named %08d. Each is a run of 32 KiB pages; a
 * record is split into fragments that never cross a page, each with a 7-byte
 * header (type, big-endian length, big-endian CRC-32C of the data). Records
 * never cross segments.
 */
#ifndef SNAPARC_WAL_H
#define SNAPARC_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct buf;

#define WAL_PAGE_SIZE 32768u
#define WAL_HEADER_SIZE 7u
#define WAL_DEFAULT_SEGMENT_SIZE (128u * 1024 * 1024)
/* No record we accept, stored or decompressed, is larger than this. */
#define WAL_MAX_RECORD (256u * 1024 * 1024)

/* Fragment type byte: kind in the low 3 bits, compression in bits 3 and 4. */
enum wal_kind { WAL_PAD = 0, WAL_FULL = 1, WAL_FIRST = 2, WAL_MIDDLE = 3, WAL_LAST = 4 };
#define WAL_KIND_MASK 0x07u
#define WAL_SNAPPY 0x08u
#define WAL_ZSTD 0x10u
/* Reserved by Prometheus; snaparc's own archive segments use it for LZ4. */
#define WAL_LZ4 0x20u
#define WAL_COMPRESSION_MASK (WAL_SNAPPY | WAL_ZSTD | WAL_LZ4)

enum wal_compression { WAL_COMPRESS_NONE = 0, WAL_COMPRESS_SNAPPY, WAL_COMPRESS_ZSTD };

/* Formats a segment file's name ("%08d") into out (at least 12 bytes). */
void wal_segment_name(char *out, size_t cap, uint32_t index);

/* ---- reading ---- */

struct wal_reader;

struct wal_reader_opts {
	/* Accept the LZ4 bit (archive segments). Prometheus' segments never set it. */
	int allow_lz4;
	/* Return records as stored (not decompressed); wal_record.flags says how. */
	int raw;
	/* Accept a last page that ends right after a whole record: archive
	 * segments end where the last commit did, mid-page. */
	int partial_last_page;
};

struct wal_record {
	const uint8_t *data;   /* borrowed: valid until the next wal_reader_next() */
	size_t len;
	uint32_t segment;      /* segment index */
	uint64_t offset;       /* offset of the record's first fragment header */
	uint64_t end;          /* offset just past its last fragment */
	uint8_t flags;         /* compression bits as stored (WAL_SNAPPY, ...); data is
				* decompressed unless the reader is raw (or flags is WAL_LZ4) */
	size_t stored_len;     /* bytes as stored, before decompression */
};

/*
 * Opens a directory of segments for reading, in order. Fails with
 * SNAPARC_NOT_FOUND / SNAPARC_CORRUPT / SNAPARC_IO and a message naming the
 * directory: not a directory, no segments, unexpected entries, a gap in the
 * numbering. opts may be NULL. The reader holds one page and one record in
 * memory, whatever the size of the segments. Caller frees with
 * wal_reader_close().
 */
int wal_reader_open_dir(struct wal_reader **out, const char *dir,
			const struct wal_reader_opts *opts, struct err *e);

struct wal_pos;

/* Reads the records of dir that start in [from, to): from must be where a
 * record starts. Ends cleanly at `to`. */
int wal_reader_open_range(struct wal_reader **out, const char *dir, const struct wal_pos *from,
			  const struct wal_pos *to, const struct wal_reader_opts *opts, struct err *e);

/* Reads one segment's bytes from memory (borrowed, must outlive the reader);
 * name is used in messages. */
int wal_reader_open_mem(struct wal_reader **out, const uint8_t *p, size_t len,
			const char *name, const struct wal_reader_opts *opts, struct err *e);

/*
 * Next record: 1 and *rec filled, 0 at the clean end of the last segment, or
 * a negative status with a message naming the segment file, the offset and
 * the reason (and, when a segment is torn, where the last whole record
 * ended). After an error the reader returns that error again.
 */
int wal_reader_next(struct wal_reader *r, struct wal_record *rec, struct err *e);

/* Path of the segment being read (borrowed, valid until the next call). */
const char *wal_reader_segment_path(const struct wal_reader *r);

void wal_reader_close(struct wal_reader *r);

/*
 * Parses the one record stored in p[0..span), bytes read from a segment at
 * file offset `offset` (so page boundaries are known): fragments, CRCs,
 * padding. Its stored bytes go to *data (pointing into p for a single
 * fragment, else into scratch) and its compression bits to *flags; it is not
 * decompressed. SNAPARC_CORRUPT with "offset N: reason" (file offsets) when
 * the span does not hold exactly one valid record.
 */
int wal_parse_record(const uint8_t *p, size_t span, uint64_t offset, int allow_lz4,
		     const uint8_t **data, size_t *len, uint8_t *flags, struct buf *scratch,
		     struct err *e);

/*
 * wal_parse_record() (LZ4 allowed) of a record the caller has parsed with
 * it before, from the same unchanged bytes (a segment that is not written
 * any more): the same checks but the CRCs, which were right then.
 * Compaction reads each record again as the base of an older one's.
 */
int wal_reparse_record(const uint8_t *p, size_t span, uint64_t offset, const uint8_t **data, size_t *len,
		       uint8_t *flags, struct buf *scratch, struct err *e);

/* ---- decompression (shared with archive reads) ---- */

/* Decompresses a record stored with the given flags (one of WAL_SNAPPY,
 * WAL_ZSTD) into out, which it grows. Returns 0 or SNAPARC_CORRUPT/NOMEM
 * with the reason in e. Never allocates more than WAL_MAX_RECORD. */
int wal_decompress(uint8_t flags, const uint8_t *p, size_t len, struct buf *out, struct err *e);

/* ---- compression as the writer does it ---- */

struct wal_compressor;

int wal_compressor_new(struct wal_compressor **out, enum wal_compression c, struct err *e);
void wal_compressor_free(struct wal_compressor *c);

/* Compresses rec into out (replacing its contents) and returns the flag to
 * store it with (WAL_SNAPPY or WAL_ZSTD), or 0 when it is to be stored plain
 * because compression would not make it smaller (as Prometheus decides), or
 * a negative status. For work on another thread than the writer's. */
int wal_compress(struct wal_compressor *c, const uint8_t *rec, size_t len, struct buf *out, struct err *e);

/* As wal_compress(), except that with Snappy only bytes [0, plain_off) of
 * rec are compressed as usual: [plain_off, plain_off + plain_len), known
 * not to compress (an XOR chunk's data), goes into the stream as a literal
 * without being searched for matches, and what follows is searched only for
 * runs of zeros (an XOR chunk's tail is 56 zeros and the last value). The
 * stream decompresses to rec all the same. Other kinds compress the whole
 * record. */
int wal_compress_span(struct wal_compressor *c, const uint8_t *rec, size_t len, size_t plain_off,
		      size_t plain_len, struct buf *out, struct err *e);

struct snappy_small_range;

/* As wal_compress_span(), except that with Snappy the head [0, plain_off)
 * is searched for matches only in the probes' ranges (see
 * codec/snappy_small.h), for a head of at most 64 KiB: a caller that knows
 * the record's layout saves most of the search. The stream decompresses to
 * rec whatever the probes. */
int wal_compress_probed(struct wal_compressor *c, const uint8_t *rec, size_t len, size_t plain_off,
			size_t plain_len, const struct snappy_small_range *probes, size_t nprobes,
			struct buf *out, struct err *e);

/* ---- writing ---- */

struct wal_writer;

struct wal_writer_opts {
	enum wal_compression compression;
	uint64_t segment_size;  /* a multiple of WAL_PAGE_SIZE; 0 for the default */
	int sync;               /* fdatasync segments and the directory on close */
	int direct;             /* write whole pages with O_DIRECT, past the page cache,
				 * where the file system takes it (buffered where not) */
	int write_behind;       /* writes made by a thread of their own, as direct
				 * ones are: the copy into the page cache leaves the
				 * caller's core (an import's busiest) */
};

/* Position of a record written: where its first fragment starts. */
struct wal_pos {
	uint32_t segment;
	uint64_t offset;
};

/*
 * Opens dir (which must exist) for writing, starting a segment after the
 * highest one there (00000000 in an empty directory), as Prometheus does.
 * Caller closes with wal_writer_close(). opts may be NULL (no compression,
 * 128 MiB segments, no sync).
 */
int wal_writer_open(struct wal_writer **out, const char *dir,
		    const struct wal_writer_opts *opts, struct err *e);

/*
 * Appends one record, compressed as the options say unless that does not
 * make it smaller, split into fragments exactly as Prometheus' writer splits
 * them. pos (may be NULL) receives where it starts.
 */
int wal_writer_log(struct wal_writer *w, const uint8_t *rec, size_t len,
		   struct wal_pos *pos, struct err *e);

/* Appends bytes already compressed by the caller; flags are the compression
 * bits to set on every fragment (0, WAL_SNAPPY, WAL_ZSTD or WAL_LZ4). */
int wal_writer_log_stored(struct wal_writer *w, const uint8_t *stored, size_t len,
			  uint8_t flags, struct wal_pos *pos, struct err *e);

/*
 * Appends rec as wal_compress_probed() with c then wal_writer_log_stored()
 * would (wal_compress_span() when probes is NULL; the same fragments, byte
 * for byte), except that a stream that fits in the page being filled is
 * written there directly; scratch (the caller's, reused) holds one that
 * does not. c is used on the writer's thread for the call.
 */
int wal_writer_log_probed(struct wal_writer *w, struct wal_compressor *c, const uint8_t *rec, size_t len,
			  size_t plain_off, size_t plain_len, const struct snappy_small_range *probes,
			  size_t nprobes, struct buf *scratch, struct err *e);

/*
 * Opens dir for appending at (segment, offset), the committed end of an
 * archive: the segment is cut to offset (anything after is uncommitted) and
 * its last, partial page is read back so records continue in it, as if the
 * writer had never stopped. The segment is created when offset is 0.
 */
int wal_writer_open_at(struct wal_writer **out, const char *dir, uint32_t segment, uint64_t offset,
		       const struct wal_writer_opts *opts, struct err *e);

/* Where the last record logged ended (just past its last fragment). */
struct wal_pos wal_writer_end(const struct wal_writer *w);

/*
 * Writes everything logged so far (the last page only as far as it is
 * filled) and, with opts.sync, fdatasyncs the segment and the directory.
 * The writer stays open: the next flush rewrites the partial page in full.
 */
int wal_writer_flush(struct wal_writer *w, struct err *e);

/* Frees the writer without writing anything more. */
void wal_writer_discard(struct wal_writer *w);

/* Zero-pads the last page, writes, syncs if asked, and frees w (also on error). */
int wal_writer_close(struct wal_writer *w, struct err *e);

/* fsyncs directory dir, which makes the names in it durable (a new file's
 * is not until then); an error names it. */
int wal_sync_dir(const char *dir, struct err *e);

#endif
