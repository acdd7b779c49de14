/* A small chart of a series' samples in the terminal, in Unicode braille. */
#ifndef SNAPARC_TOOLS_PLOT_H
#define SNAPARC_TOOLS_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Draws n samples (t in ms, v; NaNs are skipped) in cols x rows characters,
 * with the value axis on the left and the time axis below. */
void plot_samples(FILE *f, const int64_t *t, const double *v, size_t n, int cols, int rows);

#endif
