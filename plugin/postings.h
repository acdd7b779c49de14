/*
 * postings: the label postings of one snapshot being imported. For every
 * label name=value seen, the refs of the series that carry it; written to
 * the index, sorted, at commit. Memory stays near a budget whatever the
 * snapshot's size: what passes it goes to a temporary file in sorted runs.
 */
#ifndef SNAPARC_POSTINGS_H
#define SNAPARC_POSTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "idx.h"
#include "record.h"

struct postings;

/* mem: the budget in bytes; dir: where the temporary file goes (borrowed,
 * must outlive p). Frees with postings_free(). */
int postings_new(struct postings **out, const char *dir, size_t mem, struct err *e);
void postings_free(struct postings *p);
/* Adds every label of a series. */
int postings_add(struct postings *p, const struct rec_labels *ls, uint64_t ref, struct err *e);
/* Writes what the table holds to the temporary file, as postings_write()
 * does first: then the rest of postings_write() takes less time. */
int postings_flush(struct postings *p, struct err *e);
/* Writes them all under snapshot snap. Can be called again, in a new
 * transaction, after one that failed. */
int postings_write(struct postings *p, struct idx_txn *t, uint32_t snap, struct err *e);

#endif
