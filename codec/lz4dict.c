#define LZ4_STATIC_LINKING_ONLY   /* LZ4_attach_dictionary: linked from liblz4.a */
#include "lz4dict.h"

#include <stdlib.h>
#include <string.h>

#include <lz4.h>
/* ZDICT_trainFromBuffer_fastCover with fixed parameters: the default
 * trainer searches its parameters and takes 8x longer for the same result
 * (measured on a 71k-series real snapshot: 176 ms against 21 ms, both 28.2%). */
#define ZDICT_STATIC_LINKING_ONLY
#include <zdict.h>

#include "record.h"
#include "recode.h"
#include "wal.h"

/* LZ4 cannot expand a block by more than this (a 1-byte token and 255-byte
 * length runs): a larger stated raw length is a lie. */
#define LZ4_MAX_EXPANSION 255u

/* The LZ4 block format's rules (lz4_Block_format.md): the last 5 bytes are
 * literals, the last match starts 12 or more bytes before the end, a match
 * is 4 bytes or more; a length of 15 or more goes on in bytes of 255. */
#define LZ4_LAST_LITERALS 5
#define LZ4_MF_LIMIT 12
#define LZ4_MIN_MATCH 4

/*
 * A series record's XOR chunk holds its samples' bits end to end: values that
 * change take 20 bits a sample and more, and no byte string in it repeats.
 * LZ4 would search such a chunk in vain at about 15 instructions a byte, so
 * it searches the record up to the chunk's first CHUNK_SEARCHED bytes only
 * (the sample count, first time and value, which other series share), and the
 * rest of the chunk is written into its block as literals (end_block()).
 * What LZ4 does find in chunks, steady values and series alike, is mostly in
 * the dictionary, which the chunk is looked up in first: a chunk of
 * RAW_MIN_BYTES or more is taken as it is when none of its 8-byte strings at
 * every 8th byte is in the dictionary (windows, about 12 instructions a
 * string). Measured on import: a chunk whose bytes repeat each other but
 * none of the dictionary's is rare enough to leave archive bytes unchanged.
 */
#define CHUNK_SEARCHED 24
#define RAW_MIN_BYTES 64
#define WINDOW_BITS 16
#define WINDOW_SLOTS (1u << WINDOW_BITS)
/* A bit for every string of the dictionary, by more of the hash's bits: a
 * quarter of them are set, and a string whose bit is clear is nowhere in the
 * dictionary; the rest are looked up in the windows. 32 KiB stay in cache
 * where the windows and the dictionary (192 KiB) do not: a dense chunk's
 * strings were two cache misses each. */
#define SEEN_BITS 18
#define SEEN_WORDS ((1u << SEEN_BITS) / 64)

static inline uint64_t string_hash(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v * 0x9e3779b97f4a7c15ULL;
}

static inline uint32_t window_hash(uint64_t h)
{
	return (uint32_t)(h >> (64 - WINDOW_BITS));
}

static inline uint32_t seen_bit(uint64_t h)
{
	return (uint32_t)(h >> (64 - SEEN_BITS));
}

static inline int seen(const uint64_t *bits, uint64_t h)
{
	uint32_t b = seen_bit(h);

	return (int)(bits[b / 64] >> (b % 64)) & 1;
}

struct lz4dict_enc {
	LZ4_stream_t dict_stream;   /* the dictionary, hashed once */
	LZ4_stream_t work;          /* reset per record, attached to dict_stream */
	uint8_t *dict;
	size_t dict_len;
	uint16_t *windows;          /* by an 8-byte string's hash: 1 + where in dict it was
				     * last seen (0: none); NULL without a dictionary */
	uint64_t *seen;             /* SEEN_BITS of the hash of every string in dict */
	uint32_t dict_id;
	int recode;                 /* series records are recoded first */
	struct buf packed;          /* such a record recoded (recode.h) */
	struct recode_scratch rs;
};

int lz4dict_train(uint8_t *dict, size_t cap, size_t *len, const uint8_t *samples,
		  const size_t *sizes, unsigned n, struct err *e)
{
	size_t total = 0, got;

	if (cap > LZ4DICT_MAX)
		cap = LZ4DICT_MAX;
	for (unsigned i = 0; i < n; i++)
		total += sizes[i];
	/* a dictionary costs its bytes once: on little data, keep it small */
	if (cap > total / 8)
		cap = total / 8 > 4096 ? total / 8 : 4096;
	if (n >= 8) {
		ZDICT_fastCover_params_t p;

		memset(&p, 0, sizeof(p));
		/* segments of 1000 bytes, about 4 records' labels: on import's
		 * 2 MiB, smaller archives than 2000 (measured on 1M generated
		 * series and the 71k-series real snapshot) */
		p.k = 1000;
		p.d = 8;
		p.f = 20;
		p.accel = 5;
		p.nbThreads = 1;
		p.zParams.compressionLevel = 1;
		got = ZDICT_trainFromBuffer_fastCover(dict, cap, samples, sizes, n, p);
	} else {
		got = 0;
	}
	if (n >= 8 && !ZDICT_isError(got)) {
		*len = got;
		return 0;
	}
	/* too little to train on: the samples are the dictionary */
	if (total > cap) {
		samples += total - cap;
		total = cap;
	}
	if (total)
		memcpy(dict, samples, total);
	*len = total;
	(void)e;
	return 0;
}

static int enc_new(struct lz4dict_enc **out, uint32_t dict_id, const uint8_t *dict, size_t len, struct err *e)
{
	struct lz4dict_enc *c = malloc(sizeof(*c));

	if (!c)
		return err_set(e, SNAPARC_NOMEM, "out of memory for an LZ4 compressor");
	c->dict = NULL;
	c->windows = NULL;
	c->seen = NULL;
	c->recode = 0;
	memset(&c->packed, 0, sizeof(c->packed));
	memset(&c->rs, 0, sizeof(c->rs));
	c->dict_len = len;
	c->dict_id = dict_id;
	if (len > LZ4DICT_MAX) {
		free(c);
		return err_set(e, SNAPARC_INVALID, "dictionary of %zu bytes is over 64 KiB", len);
	}
	if (len) {
		c->dict = malloc(len);
		if (!c->dict) {
			free(c);
			return err_set(e, SNAPARC_NOMEM, "out of memory for an LZ4 dictionary");
		}
		memcpy(c->dict, dict, len);
		c->windows = calloc(WINDOW_SLOTS, sizeof(*c->windows));
		c->seen = calloc(SEEN_WORDS, sizeof(*c->seen));
		if (!c->windows || !c->seen) {
			free(c->windows);
			free(c->seen);
			free(c->dict);
			free(c);
			return err_set(e, SNAPARC_NOMEM, "out of memory for an LZ4 dictionary");
		}
		/* positions up to 65528 + 1: they fit */
		for (size_t i = 0; i + 8 <= len; i++) {
			uint64_t h = string_hash(c->dict + i);
			uint32_t b = seen_bit(h);

			c->windows[window_hash(h)] = (uint16_t)(i + 1);
			c->seen[b / 64] |= 1ull << (b % 64);
		}
	}
	LZ4_initStream(&c->dict_stream, sizeof(c->dict_stream));
	LZ4_initStream(&c->work, sizeof(c->work));
	if (len)
		LZ4_loadDict(&c->dict_stream, (const char *)c->dict, (int)len);
	*out = c;
	return 0;
}

int lz4dict_enc_new(struct lz4dict_enc **out, uint32_t dict_id, const uint8_t *dict, size_t len,
		    struct err *e)
{
	/* a payload with id 0 reads as a delta: nothing could read it back */
	if (dict_id == 0)
		return err_set(e, SNAPARC_INVALID, "dictionary id 0 marks a delta, not a dictionary");
	return enc_new(out, dict_id, dict, len, e);
}

int lz4dict_delta_enc_new(struct lz4dict_enc **out, struct err *e)
{
	return enc_new(out, 0, NULL, 0, e);
}

void lz4dict_enc_recode(struct lz4dict_enc *c, int on)
{
	c->recode = on;
}

void lz4dict_enc_free(struct lz4dict_enc *c)
{
	if (!c)
		return;
	free(c->dict);
	free(c->windows);
	free(c->seen);
	buf_free(&c->packed);
	recode_scratch_free(&c->rs);
	free(c);
}

/* With recoding on, points *src and *len at the record recoded when it
 * takes it (c->packed); -1 out of memory. */
static int recoded(struct lz4dict_enc *c, const uint8_t **src, size_t *len)
{
	int n;

	buf_reset(&c->packed);
	n = c->recode ? recode_pack(*src, *len, &c->packed, &c->rs) : 0;
	if (n > 0) {
		*src = c->packed.p;
		*len = c->packed.len;
	}
	return n;
}

/* Skips a uvarint-length string at p (before end): its end, or NULL. Most
 * lengths take one byte. */
static inline const uint8_t *skip_string(const uint8_t *p, const uint8_t *end)
{
	uint64_t n;
	int l;

	if (p < end && *p < 0x80)
		return *p < end - p ? p + 1 + *p : NULL;
	if ((l = uvarint_get(p, (size_t)(end - p), &n)) <= 0 || n > (uint64_t)(end - p - l))
		return NULL;
	return p + l + n;
}

/* Where a series record's XOR chunk lies, found by skimming the record up to
 * it: 1 and *at, *n, or 0 when the record is not one or does not read as one
 * (LZ4 then takes it whole; a bad record is for its decoder to report). */
static int xor_chunk(const uint8_t *rec, size_t len, size_t *at, size_t *n)
{
	const uint8_t *p = rec + 9, *end = rec + len;   /* past the type and ref */
	uint64_t count, chunk_len;
	int l;

	if (len < 10 || rec[0] != REC_SERIES || (l = uvarint_get(p, (size_t)(end - p), &count)) <= 0)
		return 0;
	for (p += l; count > 0 && p; count--)
		if ((p = skip_string(p, end)) != NULL)
			p = skip_string(p, end);
	/* chunk range, "chunk exists" 1, mint, maxt, encoding, chunk length */
	if (!p || end - p < 27 || p[8] != 1 || (p[25] != CHUNK_XOR && p[25] != CHUNK_XOR2))
		return 0;
	p += 26;
	if ((l = uvarint_get(p, (size_t)(end - p), &chunk_len)) <= 0 || chunk_len > (uint64_t)(end - p - l))
		return 0;
	*at = (size_t)(p + l - rec);
	*n = (size_t)chunk_len;
	return 1;
}

/* Whether LZ4 would find nothing in a chunk of n bytes past its first
 * CHUNK_SEARCHED: none of its 8-byte strings at every 8th byte is in the
 * dictionary. Without a dictionary, nothing is known: it is searched. */
static int chunk_incompressible(const struct lz4dict_enc *c, const uint8_t *chunk, size_t n)
{
	if (n < RAW_MIN_BYTES || !c->windows)
		return 0;
	for (size_t i = CHUNK_SEARCHED; i + 8 <= n; i += 8) {
		uint64_t h = string_hash(chunk + i), a, b;
		uint16_t at;

		if (!seen(c->seen, h) || !(at = c->windows[window_hash(h)]))
			continue;
		memcpy(&a, chunk + i, 8);
		memcpy(&b, c->dict + at - 1, 8);
		if (a == b)
			return 0;
	}
	return 1;
}

/* Writes the bytes of 255 that carry a length of 15 or more (len - 15); returns how many. */
static size_t put_length(uint8_t *p, size_t more)
{
	size_t n = 0;

	for (; more >= 255; more -= 255)
		p[n++] = 255;
	p[n++] = (uint8_t)more;
	return n;
}

static size_t length_bytes(size_t len)
{
	return len < 15 ? 0 : (len - 15) / 255 + 1;
}

/*
 * Ends an LZ4 block of n bytes at blk (LZ4's own, ending in literals) with
 * more literals, lits[0 .. n_lits), then tail[0 .. n_tail): a run of zero
 * bytes that begins it (Prometheus' 56) as a match, offset 1 after its first
 * zero as a literal, when the rules allow one. Returns the block's new length;
 * blk has room for end_bound(n, n_lits, n_tail) bytes.
 */
static size_t end_block(uint8_t *blk, size_t n, const uint8_t *lits, size_t n_lits, const uint8_t *tail,
			size_t n_tail)
{
	uint8_t *p = blk, *end = blk + n, *token, *q;
	size_t last = 0, run, zeros = 0, match;

	/* the last sequence: its token, and its literals at the block's end */
	for (;;) {
		uint8_t b;

		token = p;
		last = *p++ >> 4;
		if (last == 15)
			do
				last += (b = *p++);
			while (b == 255);
		p += last;
		if (p >= end)
			break;
		p += 2;
		if ((*token & 15) == 15)
			do
				b = *p++;
			while (b == 255);
	}
	for (uint64_t word = 0; zeros + 8 <= n_tail && (memcpy(&word, tail + zeros, 8), word == 0);)
		zeros += 8;
	while (zeros < n_tail && tail[zeros] == 0)
		zeros++;
	/* the zeros after the first are matched but the last 5 bytes, if the
	 * match is long enough and starts early enough */
	match = zeros > 1 ? zeros - 1 : 0;
	if (n_tail <= LZ4_MF_LIMIT)
		match = 0;
	else if (match > n_tail - 1 - LZ4_LAST_LITERALS)
		match = n_tail - 1 - LZ4_LAST_LITERALS;
	if (match < LZ4_MIN_MATCH)
		match = 0;
	run = last + n_lits + (match ? 1 : n_tail);
	/* room for the run's longer length, then its first literals after it */
	q = token + 1 + length_bytes(run);
	memmove(q, end - last, last);
	*token = (uint8_t)((run < 15 ? run : 15) << 4);
	if (run >= 15)
		put_length(token + 1, run - 15);
	q += last;
	memcpy(q, lits, n_lits);
	q += n_lits;
	if (!match) {
		memcpy(q, tail, n_tail);
		return (size_t)(q + n_tail - blk);
	}
	*q++ = 0;
	*q++ = 1;   /* offset 1, little-endian: the zero before, again and again */
	*q++ = 0;
	*token |= (uint8_t)(match - LZ4_MIN_MATCH < 15 ? match - LZ4_MIN_MATCH : 15);
	if (match - LZ4_MIN_MATCH >= 15)
		q += put_length(q, match - LZ4_MIN_MATCH - 15);
	run = n_tail - 1 - match;
	token = q++;
	*token = (uint8_t)((run < 15 ? run : 15) << 4);
	if (run >= 15)
		q += put_length(q, run - 15);
	memcpy(q, tail + 1 + match, run);
	return (size_t)(q + run - blk);
}

/* What end_block() may need past LZ4's n bytes. */
static size_t end_bound(size_t n, size_t n_lits, size_t n_tail)
{
	return n + n_lits + n_tail + 2 * length_bytes(n + n_lits + n_tail) + 8;
}

/* chunk_at: where the XOR chunk is, 0 for none, or SIZE_MAX to find it. */
static int compress(struct lz4dict_enc *c, const uint8_t *src, size_t len, size_t chunk_at, size_t chunk_len,
		    struct buf *out)
{
	size_t header, bound, limit = len, searched, at = chunk_at, cap;
	uint8_t *dst;
	int n;

	/* a delta compressor makes deltas alone (its id 0 would read as one);
	 * bytes that would read as a recoded record are stored plain */
	if (len > WAL_MAX_RECORD || c->dict_id == 0 || recode_is(src, len))
		return 0;
	if ((n = recoded(c, &src, &len)) < 0)
		return -1;
	searched = len;
	/* a chunk LZ4 would find nothing in: it searches the record up to
	 * the chunk's first bytes, and the rest is appended to its block */
	if (n == 0 && at == SIZE_MAX && !xor_chunk(src, len, &at, &chunk_len))
		at = 0;
	if (n == 0 && at && chunk_incompressible(c, src + at, chunk_len))
		searched = at + CHUNK_SEARCHED;
	/* stored only when smaller than the record: LZ4 gets limit - header - 1
	 * bytes, and its block takes at least one */
	header = uvarint_len(c->dict_id) + uvarint_len(len);
	if (limit <= header + 1)
		return 0;
	bound = (size_t)LZ4_compressBound((int)searched);
	cap = limit - header - 1 < bound ? limit - header - 1 : bound;
	if (searched < len) {
		bound = end_bound(bound, at + chunk_len - searched, len - at - chunk_len);
		cap = bound;
	}
	dst = buf_reserve(out, header + bound);
	if (!dst)
		return -1;
	LZ4_resetStream_fast(&c->work);
	if (c->dict_len)
		LZ4_attach_dictionary(&c->work, &c->dict_stream);
	/* only worth storing if it is smaller than the record: cap the output there */
	n = LZ4_compress_fast_continue(&c->work, (const char *)src, (char *)dst + header, (int)searched, (int)cap, 1);
	if (n <= 0)
		return 0;
	if (searched < len) {
		n = (int)end_block(dst + header, (size_t)n, src + searched, at + chunk_len - searched,
				   src + at + chunk_len, len - at - chunk_len);
		if ((size_t)n >= limit - header)
			return 0;
	}
	dst += uvarint_put(dst, c->dict_id);
	uvarint_put(dst, len);
	out->len += header + (size_t)n;
	return 1;
}

int lz4dict_compress(struct lz4dict_enc *c, const uint8_t *src, size_t len, struct buf *out)
{
	return compress(c, src, len, SIZE_MAX, 0, out);
}

int lz4dict_compress_series(struct lz4dict_enc *c, const uint8_t *src, size_t len, size_t chunk_at,
			    size_t chunk_len, struct buf *out)
{
	if (chunk_at > len || chunk_len > len - chunk_at)
		chunk_at = chunk_len = 0;
	return compress(c, src, len, chunk_at, chunk_len, out);
}

/* A prefix delta only pays when the prefix is long. */
#define PREFIX_MIN 256

/* How many first bytes a and b (n each) share. */
static size_t common_prefix(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			break;
	}
	while (i < n && a[i] == b[i])
		i++;
	return i;
}

int lz4dict_delta(struct lz4dict_enc *c, const struct lz4dict_base *base, const uint8_t *base_raw,
		  size_t base_len, const uint8_t *src, size_t len, size_t limit, struct buf *out)
{
	size_t header, bound, prefix;
	uint8_t *dst;
	int n;

	if (len > WAL_MAX_RECORD || recode_is(src, len))
		return 0;
	/* the base's labels are found in it; the samples, recoded, in themselves */
	if (recoded(c, &src, &len) < 0)
		return -1;
	/* a record that starts with all of its base but the end (exemplars:
	 * each snapshot's record is the last one's and some more): the
	 * length of what they share, then LZ4 on the rest, which LZ4 alone
	 * could not reach past 64 KiB back */
	prefix = common_prefix(src, base_raw, len < base_len ? len : base_len);
	if (prefix < PREFIX_MIN)
		prefix = 0;
	header = 1 + uvarint_len(base->segment) + uvarint_len(base->offset) + uvarint_len(base->span) +
		 uvarint_len(len - prefix) + (prefix ? 2 + uvarint_len(prefix) : 0);
	if (limit <= header + 1)
		return 0;
	if (prefix) {
		base_raw = src;
		base_len = prefix;
		src += prefix;
		len -= prefix;
	}
	bound = (size_t)LZ4_compressBound((int)len);
	dst = buf_reserve(out, header + bound);
	if (!dst)
		return -1;
	LZ4_resetStream_fast(&c->work);
	/* LZ4 looks back at most 64 KiB: the base's end is what it can reach */
	if (base_len > LZ4DICT_MAX) {
		base_raw += base_len - LZ4DICT_MAX;
		base_len = LZ4DICT_MAX;
	}
	if (base_len)
		LZ4_loadDict(&c->work, (const char *)base_raw, (int)base_len);
	n = LZ4_compress_fast_continue(&c->work, (const char *)src, (char *)dst + header, (int)len,
				       (int)(limit - header - 1 < bound ? limit - header - 1 : bound), 1);
	if (n <= 0)
		return 0;
	*dst++ = 0;
	dst += uvarint_put(dst, base->segment);
	dst += uvarint_put(dst, base->offset);
	if (prefix) {
		*dst++ = 0;
		*dst++ = 0;
	}
	dst += uvarint_put(dst, base->span);
	if (prefix)
		dst += uvarint_put(dst, prefix);
	uvarint_put(dst, len);
	out->len += header + (size_t)n;
	return 1;
}

struct header {
	uint32_t dict_id;           /* 0: a delta */
	struct lz4dict_base base;   /* a delta's */
	size_t prefix;              /* a prefix delta: the base's first bytes it starts with */
	size_t raw;                 /* what the LZ4 block holds */
	size_t len;                 /* the header's bytes */
};

static int header(const uint8_t *p, size_t len, struct header *h, struct err *e)
{
	struct dec d;
	uint64_t id, raw, seg = 0, off = 0, span = 0, prefix = 0;

	dec_init(&d, p, len);
	id = dec_uvarint(&d, "LZ4 dictionary id");
	if (id == 0) {
		seg = dec_uvarint(&d, "delta base segment");
		off = dec_uvarint(&d, "delta base offset");
		span = dec_uvarint(&d, "delta base span");
		/* 0 0: a prefix delta (0 then a span is an append delta, xordelta.h) */
		if (span == 0 && dec_uvarint(&d, "prefix delta mark") == 0) {
			span = dec_uvarint(&d, "delta base span");
			prefix = dec_uvarint(&d, "prefix delta's prefix");
			if (prefix == 0)
				dec_fail(&d, "prefix delta's prefix", "empty");
		}
	}
	raw = dec_uvarint(&d, "LZ4 raw length");
	if (!dec_ok(&d)) {
		char why[200];

		dec_describe(&d, why, sizeof(why));
		return err_set(e, SNAPARC_CORRUPT, "LZ4 payload: %s", why);
	}
	if (id > UINT32_MAX)
		return err_set(e, SNAPARC_CORRUPT, "LZ4 payload: dictionary id %llu is too large",
			       (unsigned long long)id);
	if (id == 0 && (seg > UINT32_MAX || span > UINT32_MAX || span == 0 || off > INT64_MAX))
		return err_set(e, SNAPARC_CORRUPT, "LZ4 payload: delta base at segment %llu offset %llu span %llu is impossible",
			       (unsigned long long)seg, (unsigned long long)off, (unsigned long long)span);
	if (raw > WAL_MAX_RECORD || raw > (uint64_t)dec_left(&d) * LZ4_MAX_EXPANSION + 16)
		return err_set(e, SNAPARC_CORRUPT, "LZ4 payload: raw length %llu is more than %zu bytes can hold",
			       (unsigned long long)raw, dec_left(&d));
	if (prefix > WAL_MAX_RECORD - raw)
		return err_set(e, SNAPARC_CORRUPT, "LZ4 payload: a prefix of %llu bytes and %llu more is over %u",
			       (unsigned long long)prefix, (unsigned long long)raw, (unsigned)WAL_MAX_RECORD);
	h->dict_id = (uint32_t)id;
	h->base.segment = (uint32_t)seg;
	h->base.offset = off;
	h->base.span = (uint32_t)span;
	h->prefix = (size_t)prefix;
	h->raw = (size_t)raw;
	h->len = dec_offset(&d);
	return 0;
}

int lz4dict_delta_base(const uint8_t *p, size_t len, struct lz4dict_base *base, struct err *e)
{
	struct header h;
	int rc = header(p, len, &h, e);

	if (rc)
		return rc;
	*base = h.base;
	return h.dict_id == 0;
}

int lz4dict_header(const uint8_t *p, size_t len, uint32_t *dict_id, size_t *raw_len,
		   size_t *header_len, struct err *e)
{
	struct header h;
	int rc = header(p, len, &h, e);

	if (rc)
		return rc;
	*dict_id = h.dict_id;
	*raw_len = h.prefix + h.raw;
	*header_len = h.len;
	return 0;
}

int lz4dict_decompress(const uint8_t *p, size_t len, const uint8_t *dict, size_t dict_len,
		       struct buf *out, struct err *e)
{
	struct header h;
	size_t window;
	uint8_t *dst;
	int rc = header(p, len, &h, e), n;

	if (rc)
		return rc;
	if (h.prefix > dict_len)
		return err_set(e, SNAPARC_CORRUPT, "prefix delta starts with %zu bytes of a %zu-byte base", h.prefix,
			       dict_len);
	buf_reset(out);
	if (!(dst = buf_reserve(out, h.prefix + h.raw ? h.prefix + h.raw : 1)))
		return err_set(e, SNAPARC_NOMEM, "out of memory for a %zu-byte record", h.prefix + h.raw);
	if (h.prefix) {
		/* the base's first bytes, then LZ4 after them, which reaches back
		 * into them as into the rest of its own output */
		memcpy(dst, dict, h.prefix);
		window = h.prefix < LZ4DICT_MAX ? h.prefix : LZ4DICT_MAX;
		dict = dst + h.prefix - window;
		dict_len = window;
		dst += h.prefix;
	}
	n = LZ4_decompress_safe_usingDict((const char *)p + h.len, (char *)dst, (int)(len - h.len), (int)h.raw,
					  (const char *)dict, (int)dict_len);
	if (n < 0)
		return h.dict_id ? err_set(e, SNAPARC_CORRUPT, "LZ4 block does not decompress (dictionary %u)", h.dict_id)
				 : err_set(e, SNAPARC_CORRUPT, "LZ4 delta does not decompress against its base");
	if ((size_t)n != h.raw)
		return err_set(e, SNAPARC_CORRUPT, "LZ4 block gave %d bytes, its header said %zu", n, h.raw);
	out->len = h.prefix + h.raw;
	if (recode_is(out->p, out->len)) {
		struct buf rec = { 0 };

		if ((rc = recode_unpack(out->p, out->len, &rec, e))) {
			buf_free(&rec);
			return rc;
		}
		buf_free(out);
		*out = rec;
	}
	return 0;
}
