#include "support.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void support_tmpdir(char *out, size_t cap, const char *name)
{
	cr_assert_lt((size_t)snprintf(out, cap, "/tmp/snaparc-test-%s-XXXXXX", name), cap);
	cr_assert_not_null(mkdtemp(out), "mkdtemp %s: %s", out, strerror(errno));
}

uint8_t *support_read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	p = malloc(*len ? *len : 1);
	cr_assert_not_null(p);
	for (size_t got = 0; got < *len;) {
		ssize_t k = pread(fd, p + got, *len - got, (off_t)got);

		cr_assert_gt(k, 0, "%s: short read", path);
		got += (size_t)k;
	}
	close(fd);
	return p;
}

void support_rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[4096];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			support_rm_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

void support_bundled_snapshot(char *out, size_t cap)
{
	const char *base = SNAPARC_TEST_DATA "/prom-2.42";
	DIR *d = opendir(base);
	struct dirent *de;
	int found = 0;

	cr_assert_not_null(d, "%s: %s", base, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "chunk_snapshot.", 15) || strstr(de->d_name, ".tmp"))
			continue;
		cr_assert_not(found, "more than one chunk_snapshot.* in %s", base);
		snprintf(out, cap, "%s/%s", base, de->d_name);
		found = 1;
	}
	closedir(d);
	cr_assert(found, "no chunk_snapshot.* in %s", base);
}

uint64_t support_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
