/*
 * record: the three records of a Prometheus chunk snapshot (FORMAT.md
 * section 4): series, tombstones and exemplars.
 *
 * Decoders validate the whole record and fill structs that point into it
 * (borrowed: valid while the record's bytes are). Encoders append to a
 * struct buf. Decoding then encoding a record gives back its bytes.
 */
#ifndef SNAPARC_RECORD_H
#define SNAPARC_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"

enum rec_type { REC_SERIES = 1, REC_TOMBSTONES = 2, REC_EXEMPLARS = 3 };

enum chunk_encoding {
	CHUNK_NONE = 0,
	CHUNK_XOR = 1,
	CHUNK_HISTOGRAM = 2,
	CHUNK_FLOAT_HISTOGRAM = 3,
	CHUNK_XOR2 = 4,
	CHUNK_HISTOGRAM_ST = 5,
	CHUNK_FLOAT_HISTOGRAM_ST = 6,
};

/* "xor", "histogram", ... or "unknown". */
const char *chunk_encoding_name(unsigned enc);

/* A label set as encoded: uvarint count, then uvarint-str name and value
 * per label. Validated by the decoder that produced it. */
struct rec_labels {
	const uint8_t *raw;
	size_t raw_len;
	uint32_t count;
};

struct rec_label {
	const char *name, *value;   /* not NUL-terminated */
	size_t name_len, value_len;
};

struct rec_label_iter {
	struct dec d;
	uint32_t left;
};

void rec_labels_iter(struct rec_label_iter *it, const struct rec_labels *ls);
/* 1 and *out filled, 0 at the end. */
int rec_labels_next(struct rec_label_iter *it, struct rec_label *out);

/* Prometheus' labels.Hash: XXH64 (seed 0) over name 0xff value 0xff ... */
uint64_t rec_labels_hash(const struct rec_labels *ls);
uint64_t rec_label_array_hash(const struct rec_label *ls, size_t n);

/* Appends the encoded form of n labels (already sorted by name). */
void rec_labels_encode(struct buf *b, const struct rec_label *ls, size_t n);

/* Whether two encoded label sets hold the same labels. */
int rec_labels_equal(const struct rec_labels *a, const struct rec_labels *b);

/* Reads an encoded label set at d's position, checking every length; when
 * sorted is set, names must be strictly increasing (a series' labels). */
void rec_labels_decode(struct dec *d, struct rec_labels *out, int sorted);

/* The bytes after an XOR chunk: the pre-2.32 sample buffer of 4 x (t, v). */
#define REC_XOR_TAIL_LEN 64

struct rec_series {
	uint64_t ref;
	struct rec_labels labels;
	int64_t chunk_range;        /* unused since 2.32; kept for the exact bytes */
	int has_chunk;
	int64_t mint, maxt;
	uint8_t encoding;           /* enum chunk_encoding */
	const uint8_t *chunk;
	size_t chunk_len;
	/* XOR/XOR2: the 64-byte sample buffer; histograms: the last value as
	 * encoded. NULL when encoding: an XOR tail is then written as Prometheus
	 * does (zeros and last_value). */
	const uint8_t *tail;
	size_t tail_len;
	uint64_t last_value;        /* XOR/XOR2: the last sample's value bits */
};

/*
 * Decodes a series record. Returns 0, or SNAPARC_CORRUPT with "offset N:
 * reading <field>: <reason>" in e (the caller prefixes file and record
 * offset), or SNAPARC_UNSUPPORTED for an unknown chunk encoding.
 */
int rec_series_decode(struct rec_series *out, const uint8_t *p, size_t len, struct err *e);
/* rec_series_decode() that also fills labels[0 .. min(count, cap)) with the
 * series' labels, from the same pass (borrowed like the rest). */
int rec_series_decode_labels(struct rec_series *out, struct rec_label *labels, size_t cap, const uint8_t *p,
			     size_t len, struct err *e);
void rec_series_encode(struct buf *b, const struct rec_series *s);

struct rec_interval {
	uint64_t ref;
	int64_t mint, maxt;
};

struct rec_tombstones {
	const uint8_t *raw;     /* the intervals after the format byte */
	size_t raw_len;
	size_t count;
};

struct rec_tombstone_iter {
	struct dec d;
};

int rec_tombstones_decode(struct rec_tombstones *out, const uint8_t *p, size_t len, struct err *e);
void rec_tombstones_iter(struct rec_tombstone_iter *it, const struct rec_tombstones *t);
int rec_tombstones_next(struct rec_tombstone_iter *it, struct rec_interval *out);
void rec_tombstones_encode(struct buf *b, const struct rec_interval *iv, size_t n);

struct rec_exemplar {
	uint64_t ref;
	int64_t t;
	uint64_t value;             /* IEEE-754 bits */
	struct rec_labels labels;
};

struct rec_exemplars {
	uint64_t base_ref;
	int64_t base_t;
	const uint8_t *raw;         /* the exemplars after the base ref and time */
	size_t raw_len;
	size_t count;
};

struct rec_exemplar_iter {
	struct dec d;
	uint64_t base_ref;
	int64_t base_t;
};

int rec_exemplars_decode(struct rec_exemplars *out, const uint8_t *p, size_t len, struct err *e);
void rec_exemplars_iter(struct rec_exemplar_iter *it, const struct rec_exemplars *x);
int rec_exemplars_next(struct rec_exemplar_iter *it, struct rec_exemplar *out);
/* The first exemplar is the base, as Prometheus encodes them; n may be 0. */
void rec_exemplars_encode(struct buf *b, const struct rec_exemplar *x, size_t n);

/* The record's type byte, or 0 for an empty record. */
static inline uint8_t rec_type(const uint8_t *p, size_t len) { return len ? p[0] : 0; }


/*
 * Decodes a record of any type and encodes it again from its fields alone
 * (labels, intervals and exemplars one by one; an XOR tail from the last
 * value), appending the result to out. For a record Prometheus wrote the
 * result equals the input: the round-trip tests and the fuzzer rely on it.
 * Returns 0 or the decoder's error.
 */
int rec_reencode(struct buf *out, const uint8_t *p, size_t len, struct err *e);

#endif
