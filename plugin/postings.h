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
/* Each of n decoded labels' hash as postings_add() looks it up, into hashes:
 * 1; 0 when a length takes more than a byte, or a name is empty (then
 * postings_add() hashes that series itself). Reads ls alone: another thread
 * may call it while p is in use. */
int postings_hash_labels(const struct rec_label *ls, size_t n, uint64_t *hashes);
/* Brings into cache what postings_add() of a series will read, given its
 * labels' hashes (postings_hash_labels()): stage 0 the table's slots, 1 the
 * pairs they hold, 2 the pairs' bytes and the ends of their refs, each
 * stage a few series before the next (the one before must have been
 * reached for this one to find its addresses). Reads p, changes nothing. */
void postings_prefetch(const struct postings *p, const uint64_t *hashes, size_t n, int stage);
/* Adds every label of a series; hashes are its labels' from
 * postings_hash_labels(), or NULL. */
int postings_add(struct postings *p, const struct rec_labels *ls, const uint64_t *hashes, uint64_t ref,
		 struct err *e);
/* Writes what the table holds to the temporary file, as postings_write()
 * does first, and merges the runs into one: then the rest of
 * postings_write() takes less time. */
int postings_flush(struct postings *p, struct err *e);
/* Says that postings_flush() is about to run on another thread: then
 * postings_write() waits for it to write the table out, and reads the
 * merged run as it is written. Called before that thread starts. */
void postings_flush_announce(struct postings *p);
/* Writes them all under snapshot snap. Can be called again, in a new
 * transaction, after one that failed. */
int postings_write(struct postings *p, struct idx_txn *t, uint32_t snap, struct err *e);

#endif
