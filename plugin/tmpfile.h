/* Unnamed temporary files for what does not fit in memory (sorts, compaction): gone
 * when closed, and when the process dies. */
#ifndef SNAPARC_TMPFILE_H
#define SNAPARC_TMPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A new, empty, unnamed file in dir (on dir's file system); its descriptor,
 * or a negative status. */
int tmpfile_open(const char *dir, struct err *e);
/* Writes or reads n bytes at off, whole (a short read is corrupt); errors
 * name dir, the offset and the reason (ENOSPC: the disk is full). */
int tmpfile_write(int fd, const char *dir, uint64_t off, const void *p, size_t n, struct err *e);
int tmpfile_read(int fd, const char *dir, uint64_t off, void *p, size_t n, struct err *e);

/* Bytes [off, end) of a temporary file, read through buf: buf[pos, len)
 * is read and not yet taken. */
struct tmpfile_reader {
	int fd;
	const char *dir;
	uint64_t off, end;
	uint8_t *buf;
	size_t cap, pos, len;
};

/* Moves what is left of the buffer to its start and reads as much more of
 * the region as fits after it. */
int tmpfile_refill(struct tmpfile_reader *r, struct err *e);

#endif
