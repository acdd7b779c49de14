#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int err_errno(struct err *e, int errnum, const char *fmt, ...)
{
	int code = SNAPARC_IO;
	size_t n;
	va_list ap;

	if (errnum == ENOMEM)
		code = SNAPARC_NOMEM;
	else if (errnum == ENOENT)
		code = SNAPARC_NOT_FOUND;
	else if (errnum == EEXIST || errnum == ENOTEMPTY)
		code = SNAPARC_EXISTS;
	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(errnum));
	return code;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX], old[ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return SNAPARC_INVALID;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, old);
	return e->code;
}

void err_clear(struct err *e)
{
	if (!e)
		return;
	e->code = SNAPARC_OK;
	e->msg[0] = '\0';
}

const char *err_name(int code)
{
	switch (code) {
	case SNAPARC_OK: return "ok";
	case SNAPARC_NOT_FOUND: return "not found";
	case SNAPARC_EXISTS: return "exists";
	case SNAPARC_CORRUPT: return "corrupt";
	case SNAPARC_VERSION: return "version mismatch";
	case SNAPARC_NOMEM: return "out of memory";
	case SNAPARC_IO: return "I/O error";
	case SNAPARC_INVALID: return "invalid argument";
	case SNAPARC_BUSY: return "busy";
	case SNAPARC_UNSUPPORTED: return "unsupported";
	}
	return "unknown error";
}
