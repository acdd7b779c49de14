#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define BAR 30

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const char *label, uint64_t total)
{
	p->label = label;
	p->total = total;
	p->start = now_seconds();
	p->last_draw = 0;
	p->tty = isatty(2);
	p->drawn = 0;
}

void progress_update(struct progress *p, uint64_t done)
{
	double t, frac;
	int fill;

	if (!p->tty || !p->total)
		return;
	t = now_seconds();
	if (t - p->start < 0.5 || t - p->last_draw < 0.1)
		return;
	p->last_draw = t;
	frac = done >= p->total ? 1.0 : (double)done / (double)p->total;
	fill = (int)(frac * BAR);
	fprintf(stderr, "\r%s [", p->label);
	for (int i = 0; i < BAR; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3.0f%% %.1f MB/s ", frac * 100, (double)done / (t - p->start) / 1e6);
	p->drawn = 1;
}

void progress_end(struct progress *p)
{
	if (p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = 0;
}
