/*
 * bg: a job at a time on a thread of its own. An import's writing thread
 * meets long, bursty work as it goes (sorting a full buffer and writing it
 * out as a run) while the reading thread, its queue full, sits idle: handed
 * to bg, that work runs on the idle core and the writer goes on.
 *
 * One bg serves several users, one job after another. A job's failure is
 * reported by the next bg_submit() or bg_wait(), with its message.
 */
#ifndef SNAPARC_BG_H
#define SNAPARC_BG_H

#include "err.h"

typedef int (*bg_fn)(void *arg, struct err *e);

struct bg;

/* No thread is started until the first job. */
int bg_new(struct bg **out, struct err *e);
/* Waits for the job before to end, then starts fn(arg) on the thread (or,
 * when no thread can be started, runs it here). Returns the job before's
 * status, and does not start fn when that failed. */
int bg_submit(struct bg *b, bg_fn fn, void *arg, struct err *e);
/* Waits for the job started last to end; its status (0 when none ran). A
 * failure is reported once. */
int bg_wait(struct bg *b, struct err *e);
/* Waits for the job and ends the thread. NULL is ignored. */
void bg_free(struct bg *b);

#endif
