#include "snapdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PREFIX "chunk_snapshot."

static int parse_digits(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return n > 0;
}

int snapdir_parse_name(const char *name, uint64_t *index, uint64_t *offset)
{
	const char *a, *dot;

	if (strncmp(name, PREFIX, strlen(PREFIX)) != 0)
		return 0;
	a = name + strlen(PREFIX);
	dot = strchr(a, '.');
	if (!dot || dot - a > 18 || strlen(dot + 1) > 18)
		return 0;
	return parse_digits(a, (size_t)(dot - a), index) &&
	       parse_digits(dot + 1, strlen(dot + 1), offset);
}

static int is_segment(const char *name)
{
	if (strlen(name) != 8)
		return 0;
	for (int i = 0; i < 8; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return 1;
}

int snapdir_resolve(const char *path, char *out, size_t cap, struct err *e)
{
	uint64_t best_n = 0, best_m = 0;
	char best[256] = "";
	int segments = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (stat(path, &st) != 0)
		return err_errno(e, errno, "%s", path);
	if (!S_ISDIR(st.st_mode))
		return err_set(e, SNAPARC_INVALID,
			       "%s: not a directory (expected a chunk snapshot or a Prometheus data directory)", path);
	d = opendir(path);
	if (!d)
		return err_errno(e, errno, "%s", path);
	while ((de = readdir(d)) != NULL) {
		uint64_t n, m;

		if (is_segment(de->d_name))
			segments++;
		else if (snapdir_parse_name(de->d_name, &n, &m) &&
			 (!best[0] || n > best_n || (n == best_n && m > best_m))) {
			best_n = n;
			best_m = m;
			snprintf(best, sizeof(best), "%s", de->d_name);
		}
	}
	closedir(d);
	if (segments) {
		snprintf(out, cap, "%s", path);
		return 0;
	}
	if (!best[0])
		return err_set(e, SNAPARC_NOT_FOUND,
			       "%s: no WAL segments and no chunk_snapshot.* directory in it", path);
	snprintf(out, cap, "%s/%s", path, best);
	return 0;
}
