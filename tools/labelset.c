#include "labelset.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_char(int c, int first)
{
	return isalpha(c) || c == '_' || (!first && isdigit(c)) || c == ':';
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	return p;
}

static int cmp_label(const void *a, const void *b)
{
	const struct snaparc_label *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

#define FAIL(...) do { snprintf(why, cap, __VA_ARGS__); labelset_free(ls); return -1; } while (0)

int labelset_parse(const char *s, struct labelset *ls, char *why, size_t cap)
{
	const char *p = skip_space(s);
	size_t len = strlen(s), max = len / 2 + 2;
	char *out;

	memset(ls, 0, sizeof(*ls));
	ls->text = malloc(len + sizeof("__name__") + 1);
	ls->labels = calloc(max, sizeof(*ls->labels));
	if (!ls->text || !ls->labels)
		FAIL("out of memory");
	out = ls->text;
	if (name_char((unsigned char)*p, 1)) {
		/* metric{...}: the name is the __name__ label */
		const char *start = p;

		while (name_char((unsigned char)*p, 0))
			p++;
		memcpy(out, "__name__", 8);
		ls->labels[0] = (struct snaparc_label){ out, 8, out + 8, (size_t)(p - start) };
		memcpy(out + 8, start, (size_t)(p - start));
		out += 8 + (p - start);
		ls->n = 1;
		p = skip_space(p);
		if (!*p)
			goto done;
	}
	if (*p != '{')
		FAIL("column %zu: expected '{' or a metric name", (size_t)(p - s) + 1);
	p = skip_space(p + 1);
	while (*p != '}') {
		struct snaparc_label *l = &ls->labels[ls->n];

		if (!name_char((unsigned char)*p, 1))
			FAIL("column %zu: expected a label name", (size_t)(p - s) + 1);
		l->name = out;
		while (name_char((unsigned char)*p, 0))
			*out++ = *p++;
		l->name_len = (size_t)(out - l->name);
		p = skip_space(p);
		if (*p != '=' || p[1] == '~')
			FAIL("column %zu: expected '=' (an exact label set)", (size_t)(p - s) + 1);
		p = skip_space(p + 1);
		if (*p != '"')
			FAIL("column %zu: expected a quoted value", (size_t)(p - s) + 1);
		l->value = out;
		for (p++; *p != '"'; p++) {
			if (!*p)
				FAIL("column %zu: unterminated value", (size_t)(p - s) + 1);
			if (*p == '\\') {
				p++;
				if (*p == 'n')
					*out++ = '\n';
				else if (*p == '"' || *p == '\\')
					*out++ = *p;
				else
					FAIL("column %zu: unknown escape", (size_t)(p - s) + 1);
			} else {
				*out++ = *p;
			}
		}
		l->value_len = (size_t)(out - l->value);
		ls->n++;
		p = skip_space(p + 1);
		if (*p == ',')
			p = skip_space(p + 1);
		else if (*p != '}')
			FAIL("column %zu: expected ',' or '}'", (size_t)(p - s) + 1);
	}
	if (*skip_space(p + 1))
		FAIL("column %zu: unexpected text after '}'", (size_t)(skip_space(p + 1) - s) + 1);
done:
	qsort(ls->labels, ls->n, sizeof(*ls->labels), cmp_label);
	for (size_t i = 1; i < ls->n; i++)
		if (!cmp_label(&ls->labels[i - 1], &ls->labels[i]))
			FAIL("label %.*s appears twice", (int)ls->labels[i].name_len, ls->labels[i].name);
	return 0;
}

void labelset_free(struct labelset *ls)
{
	free(ls->text);
	free(ls->labels);
	ls->text = NULL;
	ls->labels = NULL;
	ls->n = 0;
}
