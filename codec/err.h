/*
 * err: the error a failing function leaves for its caller.
 *
 * A code from enum snaparc_status plus a message that names the file, the
 * offset and the reason. Functions that can fail take a `struct err *` and
 * return the code they stored, so `return err_set(e, ...)` is the idiom.
 * Lower layers write the detail; upper layers may prefix context (the file
 * name) with err_prefix() rather than replace the message.
 */
#ifndef SNAPARC_ERR_H
#define SNAPARC_ERR_H

#include <snaparc/plugin.h>

#define ERR_MSG_MAX 512

struct err {
	int code;
	char msg[ERR_MSG_MAX];
};

/* Records code and a printf-style message; returns code. e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records an errno failure: "<what>: <strerror>"; returns SNAPARC_IO or
 * SNAPARC_NOMEM/SNAPARC_NOT_FOUND/SNAPARC_EXISTS where errno says so. */
int err_errno(struct err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepends "<prefix>: " to the message already recorded; returns e->code. */
int err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void err_clear(struct err *e);

/* A short name for a status code ("corrupt", "not found", ...). */
const char *err_name(int code);

#endif
