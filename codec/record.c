/*
 * Snapshot records (FORMAT.md section 4):
 *
 *   series      1 | be64 ref | labels | be64 chunk range | uvarint has_chunk
 *               [ be64 mint | be64 maxt | byte encoding | uvarint-bytes chunk | tail ]
 *               tail: XOR 4 x (be64 t, be64 v); histograms: the last value
 *   tombstones  2 | uvarint-bytes ( byte 1 | { uvarint ref, varint mint, varint maxt }* )
 *   exemplars   3 [ be64 base ref | be64 base t | { varint dref, varint dt, be64 v, labels }* ]
 *
 * Decoders read every field, so a record that decodes has been checked end
 * to end: lengths against what is left, varints at most 10 bytes, no
 * trailing bytes, known types and encodings.
 */
#include "record.h"

#include <stdio.h>
#include <string.h>

/* for XXH64_state_t on the stack: hashing must not allocate */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define CUSTOM_BUCKETS_SCHEMA (-53)

const char *chunk_encoding_name(unsigned enc)
{
	static const char *names[] = { "none", "xor", "histogram", "float-histogram",
				       "xor2", "histogram-st", "float-histogram-st" };

	return enc < sizeof(names) / sizeof(names[0]) ? names[enc] : "unknown";
}

/* ---- labels ---- */

/* rec_labels_decode(), also filling arr[0 .. min(count, cap)) */
static void labels_decode(struct dec *d, struct rec_labels *out, int sorted, struct rec_label *arr, size_t cap);

void rec_labels_decode(struct dec *d, struct rec_labels *out, int sorted)
{
	labels_decode(d, out, sorted, NULL, 0);
}

static void labels_decode(struct dec *d, struct rec_labels *out, int sorted, struct rec_label *arr, size_t cap)
{
	const uint8_t *start = d->p, *prev = NULL;
	size_t prev_len = 0;
	uint64_t n = dec_uvarint(d, "label count");

	/* each label takes at least two bytes: a count past that is a lie */
	if (dec_ok(d) && n > dec_left(d) / 2) {
		d->p = start;
		dec_fail(d, "label count", "more labels than bytes left in the record");
	}
	for (uint64_t i = 0; i < n && dec_ok(d); i++) {
		size_t name_len, value_len;
		const uint8_t *name = dec_uvarint_bytes(d, &name_len, "label name");
		const uint8_t *value = dec_uvarint_bytes(d, &value_len, "label value");

		if (i < cap)
			arr[i] = (struct rec_label){ (const char *)name, (const char *)value, name_len, value_len };
		if (!dec_ok(d) || !sorted)
			continue;
		if (prev) {
			size_t k = prev_len < name_len ? prev_len : name_len;
			/* most names differ in their first byte */
			int c = k && *prev != *name ? (int)*prev - (int)*name : memcmp(prev, name, k);

			if (c > 0 || (c == 0 && prev_len >= name_len)) {
				d->p = name;
				dec_fail(d, "label name", "label names are not sorted and unique");
			}
		}
		prev = name;
		prev_len = name_len;
	}
	out->raw = start;
	out->raw_len = (size_t)(d->p - start);
	out->count = dec_ok(d) ? (uint32_t)n : 0;
}

void rec_labels_iter(struct rec_label_iter *it, const struct rec_labels *ls)
{
	dec_init(&it->d, ls->raw, ls->raw_len);
	it->left = ls->raw_len ? (uint32_t)dec_uvarint(&it->d, "label count") : 0;
}

int rec_labels_next(struct rec_label_iter *it, struct rec_label *out)
{
	if (!it->left)
		return 0;
	it->left--;
	out->name = (const char *)dec_uvarint_bytes(&it->d, &out->name_len, "label name");
	out->value = (const char *)dec_uvarint_bytes(&it->d, &out->value_len, "label value");
	return dec_ok(&it->d);
}

/*
 * Most label sets fit in a small buffer and hash in one call, which is much
 * faster than feeding XXH64 four small pieces per label; larger ones stream.
 */
#define HASH_STACK 1024

struct hasher {
	uint8_t small[HASH_STACK];
	size_t len;
	int streaming;
	XXH64_state_t st;
};

static void hasher_add(struct hasher *h, const char *name, size_t nl, const char *value, size_t vl)
{
	static const uint8_t sep = 0xff;

	if (!h->streaming && h->len + nl + vl + 2 <= HASH_STACK) {
		if ((uintptr_t)value == (uintptr_t)name + nl + 1) {
			/* as encoded, a one-byte value length between them: one
			 * copy, the length's byte then overwritten */
			memcpy(h->small + h->len, name, nl + 1 + vl);
		} else {
			memcpy(h->small + h->len, name, nl);
			memcpy(h->small + h->len + nl + 1, value, vl);
		}
		h->small[h->len + nl] = sep;
		h->small[h->len + nl + 1 + vl] = sep;
		h->len += nl + vl + 2;
		return;
	}
	if (!h->streaming) {
		XXH64_reset(&h->st, 0);
		XXH64_update(&h->st, h->small, h->len);
		h->streaming = 1;
	}
	XXH64_update(&h->st, name, nl);
	XXH64_update(&h->st, &sep, 1);
	XXH64_update(&h->st, value, vl);
	XXH64_update(&h->st, &sep, 1);
}

static uint64_t hasher_done(struct hasher *h)
{
	return h->streaming ? XXH64_digest(&h->st) : XXH64(h->small, h->len, 0);
}

uint64_t rec_labels_hash(const struct rec_labels *ls)
{
	struct hasher h;
	struct rec_label_iter it;
	struct rec_label l;

	h.len = 0;
	h.streaming = 0;
	rec_labels_iter(&it, ls);
	while (rec_labels_next(&it, &l))
		hasher_add(&h, l.name, l.name_len, l.value, l.value_len);
	return hasher_done(&h);
}

/* The labels laid out as a record spells them, every length one byte, and
 * small: their bytes from the first name on, hashed after one copy whose
 * length bytes become the separators. 0 when they are not so. */
static int hash_laid_out(const struct rec_label *ls, size_t n, uint64_t *out)
{
	uint8_t b[HASH_STACK];
	const char *start = ls[0].name, *at = start;
	size_t len;

	for (size_t i = 0; i < n; i++) {
		if (ls[i].name != at || ls[i].value != at + ls[i].name_len + 1)
			return 0;
		at = ls[i].value + ls[i].value_len + 1;
	}
	len = (size_t)(at - start);
	if (len > sizeof(b))
		return 0;
	memcpy(b, start, len - 1);
	for (size_t i = 0; i < n; i++) {
		b[ls[i].value - start - 1] = 0xff;
		b[ls[i].value - start + ls[i].value_len] = 0xff;
	}
	*out = XXH64(b, len, 0);
	return 1;
}

uint64_t rec_label_array_hash(const struct rec_label *ls, size_t n)
{
	struct hasher h;
	uint64_t v;

	if (n && hash_laid_out(ls, n, &v))
		return v;
	h.len = 0;
	h.streaming = 0;
	for (size_t i = 0; i < n; i++)
		hasher_add(&h, ls[i].name, ls[i].name_len, ls[i].value, ls[i].value_len);
	return hasher_done(&h);
}

void rec_labels_encode(struct buf *b, const struct rec_label *ls, size_t n)
{
	buf_put_uvarint(b, n);
	for (size_t i = 0; i < n; i++) {
		buf_put_uvarint_bytes(b, ls[i].name, ls[i].name_len);
		buf_put_uvarint_bytes(b, ls[i].value, ls[i].value_len);
	}
}

int rec_labels_equal(const struct rec_labels *a, const struct rec_labels *b)
{
	struct rec_label_iter ia, ib;
	struct rec_label la, lb;

	if (a->count != b->count)
		return 0;
	if (a->raw_len == b->raw_len && !memcmp(a->raw, b->raw, a->raw_len))
		return 1;
	/* the same labels may be spelled with non-minimal varints */
	rec_labels_iter(&ia, a);
	rec_labels_iter(&ib, b);
	while (rec_labels_next(&ia, &la)) {
		if (!rec_labels_next(&ib, &lb) || la.name_len != lb.name_len ||
		    la.value_len != lb.value_len || memcmp(la.name, lb.name, la.name_len) ||
		    memcmp(la.value, lb.value, la.value_len))
			return 0;
	}
	return 1;
}

/* ---- series ---- */

static void spans_skip(struct dec *d, const char *what)
{
	const uint8_t *field = d->p;
	uint64_t n = dec_uvarint(d, what);

	if (dec_ok(d) && n > dec_left(d) / 2) {
		d->p = field;
		dec_fail(d, what, "more spans than bytes left in the record");
	}
	for (uint64_t i = 0; i < n && dec_ok(d); i++) {
		dec_varint(d, "span offset");
		if (dec_uvarint(d, "span length") > UINT32_MAX)
			dec_fail(d, "span length", "over 32 bits");
	}
}

static void buckets_skip(struct dec *d, int is_float, const char *what)
{
	const uint8_t *field = d->p;
	uint64_t n = dec_uvarint(d, what);

	if (dec_ok(d) && n > dec_left(d) / (is_float ? 8 : 1)) {
		d->p = field;
		dec_fail(d, what, "more buckets than bytes left in the record");
	}
	for (uint64_t i = 0; i < n && dec_ok(d); i++) {
		if (is_float)
			dec_be64(d, "bucket count");
		else
			dec_varint(d, "bucket delta");
	}
}

/* Walks a histogram last value (record.EncodeHistogram/EncodeFloatHistogram). */
static void histogram_skip(struct dec *d, int is_float)
{
	int64_t schema;

	dec_byte(d, "histogram counter-reset hint");
	schema = dec_varint(d, "histogram schema");
	dec_be64(d, "histogram zero threshold");
	if (is_float) {
		dec_be64(d, "histogram zero count");
		dec_be64(d, "histogram count");
	} else {
		dec_uvarint(d, "histogram zero count");
		dec_uvarint(d, "histogram count");
	}
	dec_be64(d, "histogram sum");
	spans_skip(d, "positive span count");
	spans_skip(d, "negative span count");
	buckets_skip(d, is_float, "positive bucket count");
	buckets_skip(d, is_float, "negative bucket count");
	if (schema == CUSTOM_BUCKETS_SCHEMA)
		buckets_skip(d, 1, "custom bound count");
}

static int decode_failed(struct dec *d, struct err *e)
{
	char why[ERR_MSG_MAX];

	dec_describe(d, why, sizeof(why));
	return err_set(e, SNAPARC_CORRUPT, "%s", why);
}

static int check_end(struct dec *d, struct err *e, const char *what)
{
	if (!dec_ok(d))
		return decode_failed(d, e);
	if (dec_left(d))
		return err_set(e, SNAPARC_CORRUPT, "offset %zu: %zu trailing bytes after the %s record",
			       dec_offset(d), dec_left(d), what);
	return 0;
}

static int check_type(const uint8_t *p, size_t len, uint8_t want, const char *what, struct err *e)
{
	if (len == 0)
		return err_set(e, SNAPARC_CORRUPT, "offset 0: empty record");
	if (p[0] != want)
		return err_set(e, SNAPARC_CORRUPT, "offset 0: record type %u is not a %s record (%u)",
			       p[0], what, want);
	return 0;
}

int rec_series_decode(struct rec_series *s, const uint8_t *p, size_t len, struct err *e)
{
	return rec_series_decode_labels(s, NULL, 0, p, len, e);
}

int rec_series_decode_labels(struct rec_series *s, struct rec_label *labels, size_t cap, const uint8_t *p, size_t len,
			     struct err *e)
{
	struct dec d;
	const uint8_t *tail;
	uint64_t has;
	int rc = check_type(p, len, REC_SERIES, "series", e);

	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	dec_init(&d, p + 1, len - 1);
	d.start = p;
	s->ref = dec_be64(&d, "series ref");
	labels_decode(&d, &s->labels, 1, labels, cap);
	s->chunk_range = (int64_t)dec_be64(&d, "chunk range");
	has = dec_uvarint(&d, "chunk flag");
	if (dec_ok(&d) && has > 1)
		return err_set(e, SNAPARC_CORRUPT, "offset %zu: chunk flag is %llu, not 0 or 1",
			       dec_offset(&d) - uvarint_len(has), (unsigned long long)has);
	if (!has || !dec_ok(&d))
		return check_end(&d, e, "series");
	s->has_chunk = 1;
	s->mint = (int64_t)dec_be64(&d, "chunk mint");
	s->maxt = (int64_t)dec_be64(&d, "chunk maxt");
	s->encoding = dec_byte(&d, "chunk encoding");
	if (dec_ok(&d) && (s->encoding < CHUNK_XOR || s->encoding > CHUNK_FLOAT_HISTOGRAM_ST))
		return err_set(e, SNAPARC_UNSUPPORTED, "offset %zu: unknown chunk encoding %u",
			       dec_offset(&d) - 1, s->encoding);
	s->chunk = dec_uvarint_bytes(&d, &s->chunk_len, "chunk data");
	tail = d.p;
	switch (s->encoding) {
	case CHUNK_XOR:
	case CHUNK_XOR2:
		dec_bytes(&d, REC_XOR_TAIL_LEN - 8, "sample buffer");
		s->last_value = dec_be64(&d, "last value");
		break;
	case CHUNK_HISTOGRAM:
	case CHUNK_HISTOGRAM_ST:
		histogram_skip(&d, 0);
		break;
	default:
		histogram_skip(&d, 1);
		break;
	}
	s->tail = tail;
	s->tail_len = (size_t)(d.p - tail);
	return check_end(&d, e, "series");
}

void rec_series_encode(struct buf *b, const struct rec_series *s)
{
	buf_put_byte(b, REC_SERIES);
	buf_put_be64(b, s->ref);
	buf_put(b, s->labels.raw, s->labels.raw_len);
	buf_put_be64(b, (uint64_t)s->chunk_range);
	buf_put_uvarint(b, s->has_chunk ? 1 : 0);
	if (!s->has_chunk)
		return;
	buf_put_be64(b, (uint64_t)s->mint);
	buf_put_be64(b, (uint64_t)s->maxt);
	buf_put_byte(b, s->encoding);
	buf_put_uvarint_bytes(b, s->chunk, s->chunk_len);
	if (s->tail) {
		buf_put(b, s->tail, s->tail_len);
	} else if (s->encoding == CHUNK_XOR || s->encoding == CHUNK_XOR2) {
		uint8_t *z = buf_reserve(b, REC_XOR_TAIL_LEN - 8);

		if (z) {
			memset(z, 0, REC_XOR_TAIL_LEN - 8);
			b->len += REC_XOR_TAIL_LEN - 8;
		}
		buf_put_be64(b, s->last_value);
	}
}

/* ---- tombstones ---- */

#define TOMBSTONES_FORMAT_V1 1

int rec_tombstones_decode(struct rec_tombstones *t, const uint8_t *p, size_t len, struct err *e)
{
	struct dec d, in;
	const uint8_t *body;
	size_t body_len;
	int rc = check_type(p, len, REC_TOMBSTONES, "tombstones", e);

	if (rc)
		return rc;
	memset(t, 0, sizeof(*t));
	dec_init(&d, p + 1, len - 1);
	d.start = p;
	body = dec_uvarint_bytes(&d, &body_len, "tombstones length");
	if ((rc = check_end(&d, e, "tombstones")))
		return rc;
	dec_init(&in, body, body_len);
	in.start = p; /* offsets in messages stay relative to the record */
	in.p = body;
	if (dec_byte(&in, "tombstones format") != TOMBSTONES_FORMAT_V1 && dec_ok(&in))
		return err_set(e, SNAPARC_UNSUPPORTED, "offset %zu: tombstones format %u is not 1",
			       dec_offset(&in) - 1, body[0]);
	t->raw = in.p;
	while (dec_ok(&in) && dec_left(&in)) {
		dec_uvarint(&in, "tombstone ref");
		dec_varint(&in, "tombstone mint");
		dec_varint(&in, "tombstone maxt");
		t->count++;
	}
	if (!dec_ok(&in))
		return decode_failed(&in, e);
	t->raw_len = (size_t)(in.p - t->raw);
	return 0;
}

void rec_tombstones_iter(struct rec_tombstone_iter *it, const struct rec_tombstones *t)
{
	dec_init(&it->d, t->raw, t->raw_len);
}

int rec_tombstones_next(struct rec_tombstone_iter *it, struct rec_interval *out)
{
	if (!dec_left(&it->d))
		return 0;
	out->ref = dec_uvarint(&it->d, "tombstone ref");
	out->mint = dec_varint(&it->d, "tombstone mint");
	out->maxt = dec_varint(&it->d, "tombstone maxt");
	return dec_ok(&it->d);
}

void rec_tombstones_encode(struct buf *b, const struct rec_interval *iv, size_t n)
{
	size_t len = 1;

	for (size_t i = 0; i < n; i++)
		len += uvarint_len(iv[i].ref) + uvarint_len(zigzag_encode(iv[i].mint)) +
		       uvarint_len(zigzag_encode(iv[i].maxt));
	buf_put_byte(b, REC_TOMBSTONES);
	buf_put_uvarint(b, len);
	buf_put_byte(b, TOMBSTONES_FORMAT_V1);
	for (size_t i = 0; i < n; i++) {
		buf_put_uvarint(b, iv[i].ref);
		buf_put_varint(b, iv[i].mint);
		buf_put_varint(b, iv[i].maxt);
	}
}

/* ---- exemplars ---- */

int rec_exemplars_decode(struct rec_exemplars *x, const uint8_t *p, size_t len, struct err *e)
{
	struct dec d;
	int rc = check_type(p, len, REC_EXEMPLARS, "exemplars", e);

	if (rc)
		return rc;
	memset(x, 0, sizeof(*x));
	dec_init(&d, p + 1, len - 1);
	d.start = p;
	if (!dec_left(&d))
		return 0;
	x->base_ref = dec_be64(&d, "exemplar base ref");
	x->base_t = (int64_t)dec_be64(&d, "exemplar base time");
	x->raw = d.p;
	while (dec_ok(&d) && dec_left(&d)) {
		struct rec_labels ls;

		dec_varint(&d, "exemplar ref delta");
		dec_varint(&d, "exemplar time delta");
		dec_be64(&d, "exemplar value");
		rec_labels_decode(&d, &ls, 0);
		x->count++;
	}
	if (!dec_ok(&d))
		return decode_failed(&d, e);
	x->raw_len = (size_t)(d.p - x->raw);
	return 0;
}

void rec_exemplars_iter(struct rec_exemplar_iter *it, const struct rec_exemplars *x)
{
	dec_init(&it->d, x->raw, x->raw_len);
	it->base_ref = x->base_ref;
	it->base_t = x->base_t;
}

int rec_exemplars_next(struct rec_exemplar_iter *it, struct rec_exemplar *out)
{
	if (!dec_left(&it->d))
		return 0;
	out->ref = it->base_ref + (uint64_t)dec_varint(&it->d, "exemplar ref delta");
	out->t = (int64_t)((uint64_t)it->base_t + (uint64_t)dec_varint(&it->d, "exemplar time delta"));
	out->value = dec_be64(&it->d, "exemplar value");
	rec_labels_decode(&it->d, &out->labels, 0);
	return dec_ok(&it->d);
}

void rec_exemplars_encode(struct buf *b, const struct rec_exemplar *x, size_t n)
{
	buf_put_byte(b, REC_EXEMPLARS);
	if (!n)
		return;
	buf_put_be64(b, x[0].ref);
	buf_put_be64(b, (uint64_t)x[0].t);
	for (size_t i = 0; i < n; i++) {
		buf_put_varint(b, (int64_t)(x[i].ref - x[0].ref));
		buf_put_varint(b, (int64_t)((uint64_t)x[i].t - (uint64_t)x[0].t));
		buf_put_be64(b, x[i].value);
		buf_put(b, x[i].labels.raw, x[i].labels.raw_len);
	}
}

/* ---- re-encoding from fields ---- */

/* Expands a label set into an array kept in scratch (which it grows). */
static const struct rec_label *labels_expand(const struct rec_labels *ls, struct buf *scratch, int *oom)
{
	struct rec_label_iter it;
	struct rec_label *out;
	size_t i = 0;

	buf_reset(scratch);
	out = (struct rec_label *)buf_reserve(scratch, (ls->count + 1) * sizeof(*out));
	if (!out) {
		*oom = 1;
		return NULL;
	}
	rec_labels_iter(&it, ls);
	while (rec_labels_next(&it, &out[i]))
		i++;
	return out;
}

static int reencode_series(struct buf *out, const uint8_t *p, size_t len, struct buf *scratch, struct err *e)
{
	struct rec_series s;
	struct buf labels = { 0 };
	const struct rec_label *ls;
	int rc = rec_series_decode(&s, p, len, e), oom = 0;

	if (rc)
		return rc;
	ls = labels_expand(&s.labels, scratch, &oom);
	if (!oom) {
		rec_labels_encode(&labels, ls, s.labels.count);
		s.labels.raw = labels.p;
		s.labels.raw_len = labels.len;
		if (s.encoding == CHUNK_XOR || s.encoding == CHUNK_XOR2)
			s.tail = NULL;
		rec_series_encode(out, &s);
	}
	oom |= labels.oom;
	buf_free(&labels);
	return oom ? err_set(e, SNAPARC_NOMEM, "out of memory re-encoding a series") : 0;
}

static int reencode_tombstones(struct buf *out, const uint8_t *p, size_t len, struct buf *scratch, struct err *e)
{
	struct rec_tombstones t;
	struct rec_tombstone_iter it;
	struct rec_interval *iv;
	size_t n = 0;
	int rc = rec_tombstones_decode(&t, p, len, e);

	if (rc)
		return rc;
	buf_reset(scratch);
	iv = (struct rec_interval *)buf_reserve(scratch, (t.count + 1) * sizeof(*iv));
	if (!iv)
		return err_set(e, SNAPARC_NOMEM, "out of memory re-encoding tombstones");
	rec_tombstones_iter(&it, &t);
	while (rec_tombstones_next(&it, &iv[n]))
		n++;
	rec_tombstones_encode(out, iv, n);
	return 0;
}

static int reencode_exemplars(struct buf *out, const uint8_t *p, size_t len, struct buf *scratch, struct err *e)
{
	struct rec_exemplars x;
	struct rec_exemplar_iter it;
	struct rec_exemplar *ex;
	struct buf labels = { 0 }, one = { 0 };
	size_t n = 0;
	int rc = rec_exemplars_decode(&x, p, len, e), oom = 0;

	if (rc)
		return rc;
	buf_reset(scratch);
	ex = (struct rec_exemplar *)buf_reserve(scratch, (x.count + 1) * sizeof(*ex));
	if (!ex)
		return err_set(e, SNAPARC_NOMEM, "out of memory re-encoding exemplars");
	rec_exemplars_iter(&it, &x);
	while (rec_exemplars_next(&it, &ex[n]))
		n++;
	/* Every label set spelled again from its labels into one buffer, reserved
	 * up front so it never moves: minimal varints are never longer than the
	 * input's, so the input's size is enough. */
	if (!buf_reserve(&labels, x.raw_len + 1))
		oom = 1;
	for (size_t i = 0; i < n && !oom; i++) {
		const struct rec_label *ls = labels_expand(&ex[i].labels, &one, &oom);

		if (ls) {
			size_t at = labels.len;

			rec_labels_encode(&labels, ls, ex[i].labels.count);
			ex[i].labels.raw = labels.p + at;
			ex[i].labels.raw_len = labels.len - at;
		}
	}
	oom |= labels.oom;
	if (!oom)
		rec_exemplars_encode(out, ex, n);
	buf_free(&labels);
	buf_free(&one);
	return oom ? err_set(e, SNAPARC_NOMEM, "out of memory re-encoding exemplars") : 0;
}

int rec_reencode(struct buf *out, const uint8_t *p, size_t len, struct err *e)
{
	struct buf scratch = { 0 };
	int rc;

	switch (rec_type(p, len)) {
	case REC_SERIES: rc = reencode_series(out, p, len, &scratch, e); break;
	case REC_TOMBSTONES: rc = reencode_tombstones(out, p, len, &scratch, e); break;
	case REC_EXEMPLARS: rc = reencode_exemplars(out, p, len, &scratch, e); break;
	default:
		rc = len ? err_set(e, SNAPARC_CORRUPT, "offset 0: unknown record type %u", p[0])
			 : err_set(e, SNAPARC_CORRUPT, "offset 0: empty record");
	}
	buf_free(&scratch);
	if (!rc && out->oom)
		rc = err_set(e, SNAPARC_NOMEM, "out of memory re-encoding a record");
	return rc;
}
