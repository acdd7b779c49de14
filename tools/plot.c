/*
 * Each character cell is a 2 x 4 grid of braille dots (U+2800 + bits), so a
 * 60 x 10 chart has 120 x 40 points: each sample is one point, and points
 * of consecutive samples are joined by a vertical run so steps stay visible.
 */
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"

static const uint8_t dot_bit[4][2] = { { 0x01, 0x08 }, { 0x02, 0x10 }, { 0x04, 0x20 }, { 0x40, 0x80 } };

static void put_braille(FILE *f, uint8_t bits)
{
	unsigned cp = 0x2800u + bits;

	fputc(0xe0 | (cp >> 12), f);
	fputc(0x80 | ((cp >> 6) & 0x3f), f);
	fputc(0x80 | (cp & 0x3f), f);
}

void plot_samples(FILE *f, const int64_t *t, const double *v, size_t n, int cols, int rows)
{
	int w = cols * 2, h = rows * 4, prev_y = -1, axis;
	double lo = INFINITY, hi = -INFINITY;
	int64_t t0 = 0, t1 = 0;
	uint8_t *cells;
	char a[FLOAT_TEXT_MAX], b[FLOAT_TEXT_MAX], when0[40], when1[40];
	size_t points = 0;

	for (size_t i = 0; i < n; i++) {
		if (isnan(v[i]) || isinf(v[i]))
			continue;
		if (!points++)
			t0 = t[i];
		t1 = t[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	if (!points) {
		fputs("  (no samples to plot)\n", f);
		return;
	}
	if (!(cells = calloc((size_t)cols * (size_t)rows, 1)))
		return;
	for (size_t i = 0; i < n; i++) {
		int x, y, from, to;

		if (isnan(v[i]) || isinf(v[i]))
			continue;
		x = t1 > t0 ? (int)((double)(t[i] - t0) / (double)(t1 - t0) * (w - 1) + 0.5) : 0;
		y = hi > lo ? (int)((v[i] - lo) / (hi - lo) * (h - 1) + 0.5) : h / 2;
		from = prev_y < 0 ? y : (prev_y < y ? prev_y : y);
		to = prev_y < 0 ? y : (prev_y > y ? prev_y : y);
		for (int yy = from; yy <= to; yy++) {
			int row = (h - 1 - yy) / 4, sub = (h - 1 - yy) % 4;

			cells[row * cols + x / 2] |= dot_bit[sub][x % 2];
		}
		prev_y = y;
	}
	fmt_float(a, hi);
	fmt_float(b, lo);
	axis = (int)(strlen(a) > strlen(b) ? strlen(a) : strlen(b));
	for (int r = 0; r < rows; r++) {
		fprintf(f, "  %*s ┤", axis, r == 0 ? a : r == rows - 1 ? b : "");
		for (int c = 0; c < cols; c++)
			put_braille(f, cells[r * cols + c]);
		fputc('\n', f);
	}
	fmt_time_ms(when0, sizeof(when0), t0);
	fmt_time_ms(when1, sizeof(when1), t1);
	fprintf(f, "  %*s └", axis, "");
	for (int c = 0; c < cols; c++)
		fputs("─", f);
	fprintf(f, "\n  %*s%-*s%s\n", axis + 2, "", cols - (int)strlen(when1) > 0 ? cols - (int)strlen(when1) : 1,
		when0, when1);
	free(cells);
}
