#include "tmpfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tmpfile_open(const char *dir, struct err *e)
{
	char p[4200];
	int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return err_errno(e, errno, "%s: temporary file", dir);
	/* a file system without O_TMPFILE: a named file, unlinked at once */
	snprintf(p, sizeof(p), "%s/.sort.XXXXXX", dir);
	if ((fd = mkostemp(p, O_CLOEXEC)) < 0)
		return err_errno(e, errno, "%s: temporary file", p);
	unlink(p);
	return fd;
}

int tmpfile_write(int fd, const char *dir, uint64_t off, const void *p, size_t n, struct err *e)
{
	const char *c = p;

	while (n) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return err_errno(e, w < 0 ? errno : ENOSPC, "%s: temporary file: offset %llu", dir,
					 (unsigned long long)off);
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int tmpfile_read(int fd, const char *dir, uint64_t off, void *p, size_t n, struct err *e)
{
	char *c = p;

	while (n) {
		ssize_t r = pread(fd, c, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(e, errno, "%s: temporary file: offset %llu", dir,
					 (unsigned long long)off);
		if (r == 0)
			return err_set(e, SNAPARC_CORRUPT, "%s: temporary file: offset %llu: ends early", dir,
				       (unsigned long long)off);
		c += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int tmpfile_refill(struct tmpfile_reader *r, struct err *e)
{
	size_t have = r->len - r->pos, n = r->cap - have;
	int rc;

	if (n > r->end - r->off)
		n = (size_t)(r->end - r->off);
	memmove(r->buf, r->buf + r->pos, have);
	if ((rc = tmpfile_read(r->fd, r->dir, r->off, r->buf + have, n, e)))
		return rc;
	r->off += n;
	r->pos = 0;
	r->len = have + n;
	return 0;
}
