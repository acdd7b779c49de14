/*
 * spill: sorting more fixed-size elements than fit in a memory budget.
 * Elements are structs whose first field is a uint64_t key, as for
 * sort_by_u64_key(); they come back in key order, equal keys in the order
 * they were added. What does not fit goes to an unnamed temporary file.
 */
#ifndef SNAPARC_SPILL_H
#define SNAPARC_SPILL_H

#include <stddef.h>

#include "err.h"

struct spill;

/* A new, empty sorter of elem_size-byte elements (a multiple of 8, key
 * first) using about mem bytes, with its temporary file, if it needs one,
 * in dir (copied). Free with spill_free(). */
int spill_new(struct spill **out, size_t elem_size, size_t mem, const char *dir, struct err *e);
struct bg;

/* Has bg sort and write each full buffer as a run while the adds go on
 * (spill.c): before the first add. bg must outlive the adds and
 * spill_sort(), and be idle (bg_wait()) before spill_free(). */
int spill_background(struct spill *s, struct bg *bg, struct err *e);
/* Adds a copy of elem; may write to the temporary file (errors name dir). */
int spill_add(struct spill *s, const void *elem, struct err *e);
/* Ends the adds and readies the elements, sorted, for spill_next(). Only
 * spill_next(), spill_rewind() and spill_free() may follow. */
int spill_sort(struct spill *s, struct err *e);
/* 1 and *elem: the next element (borrowed, valid until the next call on s);
 * 0 past the last; or a negative status, after which only spill_rewind()
 * and spill_free() may follow. */
int spill_next(struct spill *s, const void **elem, struct err *e);
/* Goes back to the first sorted element, to read them all again. */
int spill_rewind(struct spill *s, struct err *e);
void spill_free(struct spill *s);

#endif
