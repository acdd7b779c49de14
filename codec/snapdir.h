/*
 * snapdir: finding a chunk snapshot on disk.
 *
 * A path names either a snapshot directory (it holds WAL segments) or a
 * Prometheus data directory, whose newest complete chunk_snapshot.N.M
 * (highest N, then highest M; ".tmp" ones are unfinished) is the snapshot,
 * as Prometheus itself chooses it at start-up.
 */
#ifndef SNAPARC_SNAPDIR_H
#define SNAPARC_SNAPDIR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Parses "chunk_snapshot.NNNNNN.MMMMMMMMMM"; 1 if name is one, else 0. */
int snapdir_parse_name(const char *name, uint64_t *index, uint64_t *offset);

/*
 * Resolves path to a snapshot directory, written to out (cap bytes).
 * Errors: SNAPARC_NOT_FOUND (missing, or a directory with neither segments
 * nor snapshots), SNAPARC_INVALID (not a directory), SNAPARC_IO.
 */
int snapdir_resolve(const char *path, char *out, size_t cap, struct err *e);

#endif
