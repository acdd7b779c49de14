/* A progress bar on stderr, drawn only when stderr is a terminal and the
 * work has taken more than a moment. */
#ifndef SNAPARC_TOOLS_PROGRESS_H
#define SNAPARC_TOOLS_PROGRESS_H

#include <stdint.h>

struct progress {
	const char *label;
	uint64_t total;
	double start, last_draw;
	int tty, drawn;
};

void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_update(struct progress *p, uint64_t done);
/* Clears the bar if one was drawn. */
void progress_end(struct progress *p);
double now_seconds(void);

#endif
