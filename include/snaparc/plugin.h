/*
 * snaparc: the contract between the snaparc plugin (snaparc.so) and its hosts.
 *
 * This is the one header a host needs. The shared object exports exactly one
 * symbol, SNAPARC_ENTRY_SYMBOL:
 *
 *     void *so = dlopen("snaparc.so", RTLD_NOW | RTLD_LOCAL);
 *     snaparc_entry_fn entry = (snaparc_entry_fn)dlsym(so, SNAPARC_ENTRY_SYMBOL);
 *     const char *why;
 *     const struct snaparc_api *api = entry(SNAPARC_ABI_VERSION, &why);
 *     if (!api) { fprintf(stderr, "snaparc: %s\n", why); ... }
 *
 * Versions. SNAPARC_ABI_MAJOR changes only when something already in the
 * table changes meaning or layout; the plugin refuses a host of another
 * major version. SNAPARC_ABI_MINOR grows when functions are added, always
 * at the end of struct snaparc_api: a host built against an older minor
 * gets a table it can use as is; a host built against a newer minor than
 * the plugin's must not call past api->size (SNAPARC_API_HAS() tells). Every
 * struct passed in either direction starts with its size, set by whoever
 * fills it, so either side can tell which fields the other knows of: the
 * plugin writes a host's struct only as far as its size, and reads a host's
 * input struct only as far as its size, refusing (SNAPARC_INVALID) one too
 * short to hold what the call needs: at least the fields before `sync` in
 * snaparc_open_options, before `last_value` in snaparc_series_in, before
 * `reserved` in snaparc_restore_options, and the first 8 bytes of an output
 * struct. A later minor only adds fields at the end.
 *
 * Errors. Every function that can fail returns a status: 0, or one of enum
 * snaparc_status below (negative). The message that goes with the last
 * failure on an archive handle (file, segment, offset, reason) is copied
 * out by last_error(). A function given a NULL handle, a closed one (close
 * clears the host's pointer) or a NULL where a pointer is required returns
 * SNAPARC_INVALID.
 *
 * Memory. Nothing the plugin returns needs freeing by the host except the
 * handles, each with its own function. Pointers inside a struct
 * snaparc_series point into the snaparc_result the host passed and stay
 * valid until that result is used again or freed. Strings and structs the
 * host passes in are only read during the call.
 *
 * Threads. Any number of threads may read through one archive handle at
 * once (snapshot_*, read_*, select, history, restore, verify), each with
 * its own snaparc_result. Writing is one writer per archive, across
 * processes: begin() takes the archive's writer lock and fails with
 * SNAPARC_BUSY (or waits, with SNAPARC_OPEN_WAIT) while another writer
 * holds it; a writer handle is used by one thread at a time. Readers never
 * wait for the writer and never see a snapshot before it is committed.
 *
 * Manners. The plugin never prints, exits or aborts, calls back into the
 * host only through callbacks passed to the call, and keeps no global
 * state: any number of archives may be open in one process.
 */
#ifndef SNAPARC_PLUGIN_H
#define SNAPARC_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SNAPARC_ABI_MAJOR 1
#define SNAPARC_ABI_MINOR 2
#define SNAPARC_ABI_VERSION ((uint32_t)SNAPARC_ABI_MAJOR << 16 | SNAPARC_ABI_MINOR)
#define SNAPARC_ENTRY_SYMBOL "snaparc_plugin_entry"

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

typedef struct snaparc_archive snaparc_archive;   /* an open archive */
typedef struct snaparc_writer snaparc_writer;     /* a snapshot being written */
typedef struct snaparc_result snaparc_result;     /* buffers for one reader's answers */

/* ---- options and descriptions ---- */

enum snaparc_open_flags {
	SNAPARC_OPEN_CREATE = 1,     /* make the archive if the directory is missing or empty */
	SNAPARC_OPEN_READ_ONLY = 2,  /* never write (works on a read-only directory's archive) */
	SNAPARC_OPEN_WAIT = 4,       /* begin() waits for another writer instead of SNAPARC_BUSY */
};

enum snaparc_sync {
	SNAPARC_SYNC_FULL = 0,       /* fdatasync segments before the index commits (default) */
	SNAPARC_SYNC_NONE = 1,       /* faster; a crash may lose the snapshot being written, never older ones */
};

/* Sizes of an archive, as du counts them (allocated blocks). */
struct snaparc_stat {
	uint32_t size;               /* set by the host: sizeof(struct snaparc_stat) */
	uint32_t reserved;
	uint64_t index_bytes;
	uint64_t segment_bytes;
	uint64_t segments;
};

/* Called now and then during long work with how far it is (same unit as total). */
typedef void (*snaparc_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct snaparc_open_options {
	uint32_t size;               /* sizeof(struct snaparc_open_options) */
	uint32_t flags;              /* enum snaparc_open_flags */
	uint64_t map_size;           /* initial LMDB map size in bytes; 0: 1 GiB. It grows as needed. */
	uint32_t sync;               /* enum snaparc_sync */
	uint32_t reserved;
	uint64_t segment_size;       /* archive segment size; 0: 128 MiB */
};

#define SNAPARC_NAME_MAX 255

struct snaparc_snapshot_info {
	uint32_t size;               /* set by the host: sizeof(struct snaparc_snapshot_info) */
	uint32_t id;                 /* 1, 2, ... in import order */
	char name[SNAPARC_NAME_MAX + 1];
	int64_t imported_ms;         /* wall clock at import, Unix milliseconds */
	int64_t mint, maxt;          /* over the snapshot's head chunks */
	uint64_t series, tombstones, exemplars, records;
	uint64_t source_bytes;       /* the imported snapshot's segment files */
	uint64_t raw_bytes;          /* its records, decoded */
	uint64_t stored_bytes;       /* what the archive stores for them */
};

struct snaparc_label {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* One series as read back. Every pointer points into the snaparc_result
 * passed to the call, valid until that result is used again or freed. */
struct snaparc_series {
	uint32_t size;               /* set by the host: sizeof(struct snaparc_series) */
	uint32_t snapshot;           /* the snapshot's id */
	uint64_t ref;
	const uint8_t *record;       /* the series record exactly as Prometheus wrote it */
	size_t record_len;
	const struct snaparc_label *labels;   /* sorted by name */
	size_t nlabels;
	int has_chunk;
	uint8_t encoding;            /* 1 XOR, 2 histogram, 3 float histogram, 4-6 (3.x) */
	int64_t mint, maxt;
	const uint8_t *chunk;        /* the head chunk's bytes (a Prometheus chunk of that encoding) */
	size_t chunk_len;
	const int64_t *deleted;      /* tombstone intervals: pairs mint, maxt (inclusive) */
	size_t ndeleted;             /* number of pairs */
	const uint8_t *exemplars;    /* an exemplars record (type 3) holding this series' exemplars */
	size_t exemplars_len;        /* 0 when it has none */
	size_t stored_len;           /* bytes the archive stores for the record (compressed) */
	uint32_t segment;            /* where: the archive segment and offset of its first fragment */
	uint64_t offset;
	/* 0: the record is the one stored there; else it is that record cut to
	 * its first `cut` samples (compaction stores a head chunk that a later
	 * snapshot's record continues so: stored_len is then 0) */
	uint32_t cut;
};

/* A record to put: the bytes of one snapshot record (series, tombstones or
 * exemplars), as Prometheus' snapshot holds them, decompressed. */
struct snaparc_record {
	const uint8_t *data;
	size_t len;
};

/* A series for hosts that do not encode records themselves. */
struct snaparc_series_in {
	uint32_t size;               /* sizeof(struct snaparc_series_in) */
	uint32_t reserved;
	uint64_t ref;
	const struct snaparc_label *labels;   /* sorted by name, names unique */
	size_t nlabels;
	int has_chunk;
	uint8_t encoding;            /* as in struct snaparc_series */
	int64_t mint, maxt;
	const uint8_t *chunk;
	size_t chunk_len;
	/* XOR: the last sample's value (IEEE-754 bits); histograms: their last
	 * value as Prometheus encodes it (record.EncodeHistogram) in tail. */
	uint64_t last_value;
	const uint8_t *tail;
	size_t tail_len;
};

enum snaparc_compression {
	SNAPARC_COMPRESS_SNAPPY = 0, /* as Prometheus 2.42 writes (default) */
	SNAPARC_COMPRESS_NONE = 1,
	SNAPARC_COMPRESS_ZSTD = 2,   /* as Prometheus 3.x can write */
};

struct snaparc_restore_options {
	uint32_t size;               /* sizeof(struct snaparc_restore_options) */
	uint32_t compression;        /* enum snaparc_compression */
	uint32_t overwrite;          /* replace an existing directory, once the new one is complete */
	uint32_t reserved;
	snaparc_progress_fn progress;
	void *progress_ctx;
};

/* Compaction (ABI 1.1). Retention: with neither rule every snapshot is
 * kept; otherwise those that some rule keeps. */
struct snaparc_compact_options {
	uint32_t size;               /* sizeof(struct snaparc_compact_options) */
	uint32_t keep_last;          /* the newest N snapshots; 0: no such rule */
	int64_t keep_within_ms;      /* those whose time (maxt, else import time) lies within this of
				      * the newest snapshot's; 0: no such rule */
	uint32_t flags;              /* SNAPARC_COMPACT_* */
	uint32_t max_chain;          /* deltas a read follows at most; 0: the default (6) */
	snaparc_progress_fn progress;  /* bytes of stored records processed */
	void *progress_ctx;
};

enum {
	SNAPARC_COMPACT_DRY_RUN = 1,     /* compute the new layout, report, keep nothing of it */
	SNAPARC_COMPACT_NO_DELTA = 2,    /* store repeated records once, but make no deltas */
	/* the samples a series' tombstones delete are taken out of its head
	 * chunk (a chunk left empty is dropped: the series stays, without
	 * one); the tombstones stay, as they apply to the series' older
	 * chunks too */
	SNAPARC_COMPACT_APPLY_TOMBSTONES = 4,
};

/* What a compaction did (or, dry, would do). */
struct snaparc_compact_stats {
	uint32_t size;               /* set by the host: sizeof(struct snaparc_compact_stats) */
	uint32_t snapshots_kept, snapshots_dropped;
	uint32_t labels_shared;      /* snapshots that now share an earlier one's label index */
	uint64_t bytes_before, bytes_after;   /* segments and index, as du counts them */
	uint64_t input_bytes, output_bytes;   /* stored record bytes read and written */
	uint64_t records, records_full, records_delta, records_shared;
	uint64_t segments_deleted;   /* old segment files deleted */
	uint64_t segments_pending;   /* old segment files a reader may still use: deleted by a later writer */
	uint64_t records_cut;        /* stored as a later snapshot's record cut short: nothing stored */
	uint64_t chunks_tombstoned;  /* head chunks that lost samples to their tombstones */
	uint64_t chunks_dropped;     /* of those, chunks that lost every sample */
};

/* What a restore wrote. */
struct snaparc_restore_stats {
	uint32_t size;               /* set by the host: sizeof(struct snaparc_restore_stats) */
	uint32_t reserved;
	uint64_t series, records;
};

/* Called for each series found; a non-zero return stops the call, which
 * then returns that value. The series is valid only during the call. */
typedef int (*snaparc_series_fn)(void *ctx, const struct snaparc_snapshot_info *snapshot,
				 const struct snaparc_series *series);

/* Called for each problem verify() finds; a non-zero return stops it. */
enum snaparc_verify_flags {
	SNAPARC_VERIFY_DEEP = 1,   /* also decode every sample; every series' label hash and postings must find it */
};

typedef int (*snaparc_problem_fn)(void *ctx, int status, const char *message);

/* ---- the table ---- */

struct snaparc_api {
	uint32_t size;               /* sizeof(struct snaparc_api) as the plugin was built */
	uint16_t abi_major, abi_minor;
	const char *name;            /* "snaparc" */
	const char *version;         /* the plugin's release, "0.1.0" */

	/* A short name for a status ("corrupt", "not found" ...); static. */
	const char *(*strerror)(int status);

	/* Opens the archive at path (opts may be NULL: defaults, no create).
	 * A directory that is not an archive is SNAPARC_NOT_FOUND and is left
	 * untouched unless SNAPARC_OPEN_CREATE and it is empty. On failure *out
	 * is still set (unless memory ran out) to a handle that only carries
	 * the reason for last_error(): close it like an open one. */
	int (*open)(snaparc_archive **out, const char *path, const struct snaparc_open_options *opts);
	/* Closes *a (after its writers and results are freed) and sets *a to NULL. */
	void (*close)(snaparc_archive **a);
	/* Copies the message of the last failure on a (NUL-terminated, cut to
	 * cap) into buf; returns its full length. With several threads on one
	 * handle the last failure may be another thread's. */
	size_t (*last_error)(snaparc_archive *a, char *buf, size_t cap);

	/* Writing: begin a snapshot, put its records, commit (visible to
	 * readers from then on, in one index transaction) or abort (nothing
	 * kept). Errors of put_* are recorded on the archive's last_error. */
	int (*begin)(snaparc_archive *a, const char *name, uint64_t source_bytes, snaparc_writer **out);
	/* Puts n records, validated as they come; a bad one fails the snapshot. */
	int (*put_records)(snaparc_writer *w, const struct snaparc_record *recs, size_t n);
	/* Puts WAL segment bytes (Prometheus' snapshot files, 32 KiB pages of
	 * fragments) in pieces of any size; records are taken as they complete.
	 * end_of_segment says a segment file ends after these bytes. */
	int (*put_wal)(snaparc_writer *w, const uint8_t *bytes, size_t len, int end_of_segment);
	/* Puts one series given by its fields (the record is encoded here). */
	int (*put_series)(snaparc_writer *w, const struct snaparc_series_in *s);
	/* Commits; info (may be NULL, else its size set) receives the catalog
	 * entry. A series ref put twice fails here (SNAPARC_CORRUPT), when the
	 * refs are sorted. Frees w in every case and sets *w to NULL. */
	int (*commit)(snaparc_writer **w, struct snaparc_snapshot_info *info);
	/* Drops everything put; frees w and sets *w to NULL. */
	void (*abort)(snaparc_writer **w);
	/* Imports a chunk snapshot directory of the file system (or a Prometheus
	 * data directory: its newest chunk_snapshot.*) as one snapshot, reading
	 * on a second thread: begin, every record, commit. name NULL: the
	 * directory's name. Progress is in bytes of the source. */
	int (*import)(snaparc_archive *a, const char *dir, const char *name, struct snaparc_snapshot_info *info,
		      snaparc_progress_fn progress, void *progress_ctx);

	/* Snapshots: by spec ("latest", an id, or a name), and all in id order
	 * (after = 0 for the first; SNAPARC_NOT_FOUND past the last). */
	int (*snapshot_find)(snaparc_archive *a, const char *spec, struct snaparc_snapshot_info *out);
	int (*snapshot_next)(snaparc_archive *a, uint32_t after, struct snaparc_snapshot_info *out);
	/* Removes a snapshot from the catalog and the index in one transaction
	 * (its segment space is given back by compaction). */
	int (*snapshot_remove)(snaparc_archive *a, const char *spec);

	/* Reading one series, into buffers of r (see struct snaparc_series). */
	int (*result_new)(snaparc_result **out);
	void (*result_free)(snaparc_result **r);
	int (*read_ref)(snaparc_archive *a, const char *snapshot, uint64_t ref, snaparc_result *r,
			struct snaparc_series *out);
	int (*read_labels)(snaparc_archive *a, const char *snapshot, const struct snaparc_label *labels,
			   size_t n, snaparc_result *r, struct snaparc_series *out);
	/* The series a PromQL selector matches, as Prometheus would select
	 * them, in ref order. A selector that does not parse is SNAPARC_INVALID
	 * with the column in last_error. */
	int (*select)(snaparc_archive *a, const char *snapshot, const char *selector, snaparc_series_fn fn,
		      void *ctx);
	/* One series (these exact labels) through every snapshot that has it,
	 * newest first. */
	int (*history)(snaparc_archive *a, const struct snaparc_label *labels, size_t n, snaparc_series_fn fn,
		       void *ctx);

	/* Writes a snapshot (selector NULL: whole, records byte-identical to
	 * what was imported; else the series it matches, with their tombstones
	 * and exemplars) as a chunk snapshot directory Prometheus loads.
	 * stats may be NULL, else its size set. */
	int (*restore)(snaparc_archive *a, const char *snapshot, const char *selector, const char *dir,
		       const struct snaparc_restore_options *opts, struct snaparc_restore_stats *stats);
	/* The same for the n series with these refs (n = 0: none is an error). */
	int (*restore_refs)(snaparc_archive *a, const char *snapshot, const uint64_t *refs, size_t n,
			    const char *dir, const struct snaparc_restore_options *opts,
			    struct snaparc_restore_stats *stats);

	/* The archive's sizes. */
	int (*stat)(snaparc_archive *a, struct snaparc_stat *out);

	/* Checks every value of the index (each carries a checksum) and every
	 * stored record of every snapshot (CRCs, decompression, decoding, the
	 * index entries that point at it, the catalog's counts) and reports
	 * each problem; returns 0 when sound, SNAPARC_CORRUPT when a problem
	 * was found. */
	int (*verify)(snaparc_archive *a, snaparc_problem_fn fn, void *ctx, snaparc_progress_fn progress,
		      void *progress_ctx);

	/* ---- ABI 1.1 ---- */

	/* Compacts the archive (one writer at a time, like an import): drops
	 * the snapshots retention does not keep, rewrites the kept ones so
	 * each series' record is stored once when it repeats and as a delta
	 * against its previous snapshot's when that is smaller, switches the
	 * index to the new layout in one transaction and deletes the old
	 * segments once no reader (of any process) can still use them. The
	 * records are read ahead on a second thread. Readers, this handle's
	 * other threads included, keep working throughout; a crash leaves the
	 * archive as it was before or after. opts and stats may be NULL, else
	 * their size set. */
	int (*compact)(snaparc_archive *a, const struct snaparc_compact_options *opts,
		       struct snaparc_compact_stats *stats);

	/* ---- ABI 1.2 ---- */

	/* verify() with flags (enum snaparc_verify_flags); unknown flags are
	 * SNAPARC_INVALID. */
	int (*verify_flags)(snaparc_archive *a, uint32_t flags, snaparc_problem_fn fn, void *ctx,
			    snaparc_progress_fn progress, void *progress_ctx);
};

/* Whether the table has field f (a function added in a later minor). */
#define SNAPARC_API_HAS(api, f) \
	((api)->size >= offsetof(struct snaparc_api, f) + sizeof((api)->f) && (api)->f != NULL)

/*
 * The one exported function. host_abi is the SNAPARC_ABI_VERSION the host
 * was built with. Returns the plugin's table (constant, never freed), or
 * NULL with *why (static text) saying why the host is not compatible.
 */
typedef const struct snaparc_api *(*snaparc_entry_fn)(uint32_t host_abi, const char **why);

#ifdef __cplusplus
}
#endif
#endif
