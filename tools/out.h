/*
 * out: formatting shared by the snaparc command's subcommands.
 */
#ifndef SNAPARC_TOOLS_OUT_H
#define SNAPARC_TOOLS_OUT_H

#include <stdint.h>
#include <stdio.h>

#include <snaparc/plugin.h>

#include "record.h"

/* Process exit codes of every subcommand. */
enum exit_code {
	EXIT_OK = 0,
	EXIT_ERROR = 1,     /* an error other than the ones below */
	EXIT_USAGE = 2,     /* bad command line */
	EXIT_NOT_FOUND = 3, /* the snapshot, series or file asked for is not there */
	EXIT_CORRUPT = 4,   /* the input or the archive is corrupt */
	EXIT_BUSY = 5,      /* another process is writing to the archive */
	EXIT_EXISTS = 6,    /* what would be made exists already */
};

/* Exit code for a status code. */
int exit_for_status(int status);

/* A float as Prometheus' API prints it (jsonutil.MarshalValue: Go's
 * strconv.FormatFloat(v, 'f', -1, 64), or 'e' when 0 < |v| < 1e-6 or
 * |v| >= 1e21: shortest digits that read back exactly; "NaN", "+Inf",
 * "-Inf"). out needs FLOAT_TEXT_MAX bytes. */
#define FLOAT_TEXT_MAX 400
void fmt_float(char *out, double v);

/* A millisecond timestamp as UTC ISO-8601 ("2026-11-23T22:38:11.803Z"). */
void fmt_time_ms(char *out, size_t cap, int64_t ms);

/* Length of the valid UTF-8 sequence at s (left > 0 bytes), or 0. */
size_t utf8_len(const unsigned char *s, size_t left);

/* Writes s as a JSON string (with quotes), escaping what JSON requires and
 * bytes that are not UTF-8 (as \u00XX). */
void json_string(FILE *f, const char *s, size_t len);

/* Writes s for a human: as is when printable, otherwise Go-quoted escapes. */
void text_label_value(FILE *f, const char *s, size_t len);

/* A label set as JSON ({"name":"value",...}) or for a human ({name="value", ...},
 * long values cut). */
void labels_json(FILE *f, const struct rec_labels *ls);
void labels_text(FILE *f, const struct rec_labels *ls);
/* The same for a label set as the plugin hands it back (struct snaparc_series). */
void label_array_json(FILE *f, const struct snaparc_label *ls, size_t n);
void label_array_text(FILE *f, const struct snaparc_label *ls, size_t n);

/* A sample value as text: fmt_float(), or "stale" for Prometheus' stale marker. */
void value_text(char *out, uint64_t bits);

#endif
