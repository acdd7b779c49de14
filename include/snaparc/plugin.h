/*
 * snaparc: the contract between the snaparc plugin and its hosts.
 *
 * Every function of snaparc returns one of these status codes; 0 is success.
 * Codes are negative so that a function may return a positive count or a
 * "there is more" flag on success. A human-readable message with the detail
 * (file, segment, offset, reason) goes with every error.
 */
#ifndef SNAPARC_PLUGIN_H
#define SNAPARC_PLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

enum snaparc_status {
	SNAPARC_OK = 0,
	SNAPARC_NOT_FOUND = -1,    /* no such snapshot, series or file */
	SNAPARC_EXISTS = -2,       /* the target already exists */
	SNAPARC_CORRUPT = -3,      /* stored or input bytes are not valid */
	SNAPARC_VERSION = -4,      /* incompatible format or ABI version */
	SNAPARC_NOMEM = -5,        /* allocation failed or a size cap was hit */
	SNAPARC_IO = -6,           /* the operating system refused (errno in message) */
	SNAPARC_INVALID = -7,      /* a caller's argument is not acceptable */
	SNAPARC_BUSY = -8,         /* another writer holds the archive */
	SNAPARC_UNSUPPORTED = -9,  /* valid input this version cannot handle */
};

#ifdef __cplusplus
}
#endif
#endif
