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

#include "recode.h"
#include "wal.h"

/* LZ4 cannot expand a block by more than this (a 1-byte token and 255-byte
 * length runs): a larger stated raw length is a lie. */
#define LZ4_MAX_EXPANSION 255u

struct lz4dict_enc {
	LZ4_stream_t dict_stream;   /* the dictionary, hashed once */
	LZ4_stream_t work;          /* reset per record, attached to dict_stream */
	uint8_t *dict;
	size_t dict_len;
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
		p.k = 2000;
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

int lz4dict_compress(struct lz4dict_enc *c, const uint8_t *src, size_t len, struct buf *out)
{
	size_t header, bound, limit = len;
	uint8_t *dst;
	int n;

	/* a delta compressor makes deltas alone (its id 0 would read as one);
	 * bytes that would read as a recoded record are stored plain */
	if (len > WAL_MAX_RECORD || c->dict_id == 0 || recode_is(src, len))
		return 0;
	if (recoded(c, &src, &len) < 0)
		return -1;
	/* stored only when smaller than the record: LZ4 gets limit - header - 1
	 * bytes, and its block takes at least one */
	header = uvarint_len(c->dict_id) + uvarint_len(len);
	if (limit <= header + 1)
		return 0;
	bound = (size_t)LZ4_compressBound((int)len);
	dst = buf_reserve(out, header + bound);
	if (!dst)
		return -1;
	LZ4_resetStream_fast(&c->work);
	if (c->dict_len)
		LZ4_attach_dictionary(&c->work, &c->dict_stream);
	/* only worth storing if it is smaller than the record: cap the output there */
	n = LZ4_compress_fast_continue(&c->work, (const char *)src, (char *)dst + header,
				       (int)len, (int)(limit - header - 1 < bound ? limit - header - 1 : bound), 1);
	if (n <= 0)
		return 0;
	dst += uvarint_put(dst, c->dict_id);
	uvarint_put(dst, len);
	out->len += header + (size_t)n;
	return 1;
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
