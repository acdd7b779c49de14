/* Parsing a label set written as {name="value", ...} or metric{...}. */
#ifndef SNAPARC_TOOLS_LABELSET_H
#define SNAPARC_TOOLS_LABELSET_H

#include <stddef.h>

#include <snaparc/plugin.h>

struct labelset {
	char *text;              /* unescaped copy the labels point into */
	struct snaparc_label *labels;
	size_t n;
};

/* Parses s into ls, sorted by name. Returns 0, or -1 with a message naming
 * the column in why. Free with labelset_free(). */
int labelset_parse(const char *s, struct labelset *ls, char *why, size_t cap);
void labelset_free(struct labelset *ls);

#endif
