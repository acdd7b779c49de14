#include "out.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <snaparc/plugin.h>

#include "xor.h"

#define TEXT_VALUE_MAX 120   /* longer label values are cut in text output */

int exit_for_status(int status)
{
	switch (status) {
	case SNAPARC_OK: return EXIT_OK;
	case SNAPARC_NOT_FOUND: return EXIT_NOT_FOUND;
	case SNAPARC_CORRUPT: return EXIT_CORRUPT;
	case SNAPARC_BUSY: return EXIT_BUSY;
	case SNAPARC_EXISTS: return EXIT_EXISTS;
	}
	return EXIT_ERROR;
}

void fmt_float(char *out, double v)
{
	char sci[40], digits[24];
	int prec, exp, nd = 0;
	char *p = out;
	const char *s;

	if (isnan(v)) {
		strcpy(out, "NaN");
		return;
	}
	if (isinf(v)) {
		strcpy(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* the shortest %e that reads back as v */
	for (prec = 1; prec <= 17; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
		if (strtod(sci, NULL) == v)
			break;
	}
	s = sci;
	if (*s == '-')
		*p++ = *s++;
	for (; *s && *s != 'e'; s++)
		if (*s != '.')
			digits[nd++] = *s;
	exp = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (v != 0 && (fabs(v) < 1e-6 || fabs(v) >= 1e21)) {
		/* Prometheus' jsonutil.MarshalValue switches to Go's 'e' format here:
		 * shortest digits, a sign and at least two exponent digits */
		*p++ = digits[0];
		if (nd > 1) {
			*p++ = '.';
			memcpy(p, digits + 1, (size_t)(nd - 1));
			p += nd - 1;
		}
		sprintf(p, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
		return;
	}
	if (nd == 1 && digits[0] == '0') {
		*p++ = '0';
	} else if (exp < 0) {
		*p++ = '0';
		*p++ = '.';
		for (int i = 0; i < -exp - 1; i++)
			*p++ = '0';
		memcpy(p, digits, (size_t)nd);
		p += nd;
	} else {
		for (int i = 0; i <= exp; i++)
			*p++ = i < nd ? digits[i] : '0';
		if (nd > exp + 1) {
			*p++ = '.';
			memcpy(p, digits + exp + 1, (size_t)(nd - exp - 1));
			p += nd - exp - 1;
		}
	}
	*p = '\0';
}

void fmt_time_ms(char *out, size_t cap, int64_t ms)
{
	time_t sec = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	struct tm tm;

	if (frac < 0) {
		frac += 1000;
		sec--;
	}
	if (!gmtime_r(&sec, &tm)) {
		snprintf(out, cap, "%lld", (long long)ms);
		return;
	}
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

void json_string(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	putc('"', f);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(s + i, len - i);

		if (n == 1 && s[i] == '"') {
			fputs("\\\"", f);
		} else if (n == 1 && s[i] == '\\') {
			fputs("\\\\", f);
		} else if (n == 1 && s[i] == '\n') {
			fputs("\\n", f);
		} else if (n == 0 || s[i] < 0x20) {
			fprintf(f, "\\u%04x", s[i]);
			n = 1;
		} else {
			fwrite(s + i, 1, n, f);
		}
		i += n;
	}
	putc('"', f);
}

void text_label_value(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	putc('"', f);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(s + i, len - i);

		if (n == 1 && (s[i] == '"' || s[i] == '\\'))
			fprintf(f, "\\%c", s[i]);
		else if (n == 1 && s[i] == '\n')
			fputs("\\n", f);
		else if (n == 0 || s[i] < 0x20 || s[i] == 0x7f) {
			fprintf(f, "\\x%02x", s[i]);
			n = 1;
		} else
			fwrite(s + i, 1, n, f);
		i += n;
	}
	putc('"', f);
}

/* One label of a set: ",name:value" as JSON, ", name=value" for a human. */
static void label_json(FILE *f, int first, const char *name, size_t name_len, const char *value, size_t value_len)
{
	if (!first)
		putc(',', f);
	json_string(f, name, name_len);
	putc(':', f);
	json_string(f, value, value_len);
}

static void label_text(FILE *f, int first, const char *name, size_t name_len, const char *value, size_t value_len)
{
	fprintf(f, "%s%.*s=", first ? "" : ", ", (int)name_len, name);
	if (value_len > TEXT_VALUE_MAX) {
		text_label_value(f, value, TEXT_VALUE_MAX);
		fprintf(f, "...(%zu bytes)", value_len);
	} else {
		text_label_value(f, value, value_len);
	}
}

void labels_json(FILE *f, const struct rec_labels *ls)
{
	struct rec_label_iter it;
	struct rec_label l;
	int first = 1;

	putc('{', f);
	rec_labels_iter(&it, ls);
	while (rec_labels_next(&it, &l)) {
		label_json(f, first, l.name, l.name_len, l.value, l.value_len);
		first = 0;
	}
	putc('}', f);
}

void labels_text(FILE *f, const struct rec_labels *ls)
{
	struct rec_label_iter it;
	struct rec_label l;
	int first = 1;

	putc('{', f);
	rec_labels_iter(&it, ls);
	while (rec_labels_next(&it, &l)) {
		label_text(f, first, l.name, l.name_len, l.value, l.value_len);
		first = 0;
	}
	putc('}', f);
}

void label_array_json(FILE *f, const struct snaparc_label *ls, size_t n)
{
	putc('{', f);
	for (size_t i = 0; i < n; i++)
		label_json(f, i == 0, ls[i].name, ls[i].name_len, ls[i].value, ls[i].value_len);
	putc('}', f);
}

void label_array_text(FILE *f, const struct snaparc_label *ls, size_t n)
{
	putc('{', f);
	for (size_t i = 0; i < n; i++)
		label_text(f, i == 0, ls[i].name, ls[i].name_len, ls[i].value, ls[i].value_len);
	putc('}', f);
}

void value_text(char *out, uint64_t bits)
{
	if (bits == XOR_STALE_NAN)
		strcpy(out, "stale");
	else
		fmt_float(out, f64_from_bits(bits));
}

