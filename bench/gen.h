/*
 * gen: a deterministic, streaming model of a Prometheus 2.42 head holding a
 * Kubernetes fleet's series, for benchmarks. Series `index` (0 .. N-1, ref
 * index + 1) is a pure function of (options, index): its labels and its one
 * full XOR head chunk are computed on demand, so nothing grows with N and a
 * benchmark can ask what any series holds without reading a snapshot. The
 * value and label mix is described at the top of gen.c.
 *
 * Periodic snapshots (opts.periodic): the same head snapshotted every `step`
 * scrapes while it runs on. Each series is then one stream of samples from
 * start_ms, cut into chunks of opts.samples at a phase of its own, and
 * snapshot j holds each series' open chunk after samples + j * step scrapes:
 * the chunk of snapshot j extended by `step` samples (the same XOR bits, the
 * appender being deterministic), or, past a cut, a new chunk that starts at
 * the cut. Refs and labels do not change between snapshots.
 *
 * A handle owns the scratch space of the calls that return borrowed data; it
 * is not thread-safe: give each thread its own handle (they are cheap).
 */
#ifndef SNAPARC_BENCH_GEN_H
#define SNAPARC_BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"
#include "record.h"

#define GEN_MAX_LABELS 12
#define GEN_DEFAULT_SAMPLES 120          /* Prometheus cuts head chunks at 120 samples */
#define GEN_DEFAULT_INTERVAL_MS 15000
#define GEN_DEFAULT_START_MS 1700000000000LL   /* 2023-11-14T22:13:20Z */
#define GEN_MAX_SERIES 500000000ULL      /* instance addresses stay unique below this */
#define GEN_EXEMPLARS_PER_RECORD 10000   /* what Prometheus puts in one snapshot record */
#define GEN_DEFAULT_STEP 10              /* periodic: scrapes between snapshots */
#define GEN_MAX_SCRAPES (1u << 20)       /* periodic: samples + snapshot * step, at most */

/* Order of series records in the snapshot. */
enum gen_order {
	/* A keyed bijective shuffle of the refs: nothing can rely on order. */
	GEN_ORDER_SHUFFLE = 0,
	/* What 2.42 writes: stripe by stripe (ref & 16383, stripe 0 first),
	 * Go map order (here a keyed shuffle) inside a stripe. Heads below
	 * 16384 series come out sorted by ref. */
	GEN_ORDER_STRIPE,
};

struct gen_opts {
	uint64_t series;        /* N >= 1; refs are 1..N */
	uint32_t samples;       /* per chunk, 1 .. 65535 */
	uint64_t seed;
	int64_t start_ms;       /* the first scrape cycle starts here */
	int64_t interval_ms;    /* scrape interval, >= 10 */
	uint64_t tombstones;    /* intervals, on this many distinct refs (<= N) */
	uint64_t exemplars;     /* in all (<= N * samples) */
	enum gen_order order;
	/* Periodic snapshots (see above); samples is then where chunks are cut.
	 * Tombstones stay those of the first `samples` scrapes (a deletion is
	 * kept until the head is compacted); exemplars are those of the last
	 * `samples` scrapes, the ring buffer's newest. */
	int periodic;
	uint32_t step;          /* >= 1 (default GEN_DEFAULT_STEP) */
	uint32_t snapshot;      /* j = 0, 1, ...: samples + j * step scrapes so far */
};

/* Fills opts with the defaults (N = 0 still has to be set). */
void gen_opts_default(struct gen_opts *opts);

struct gen;

/*
 * Checks the options and builds the fleet model (a few hundred KiB whatever
 * N is). Fails with SNAPARC_INVALID and a message naming the option.
 * Caller frees with gen_close().
 */
int gen_open(struct gen **out, const struct gen_opts *opts, struct err *e);
void gen_close(struct gen *g);

/* The series written at position pos (0 .. N-1) of the snapshot. */
uint64_t gen_index_at(const struct gen *g, uint64_t pos);

/* A series: ref, sorted labels and samples. Borrowed from the handle, valid
 * until its next gen_series()/gen_labels() call. */
struct gen_series {
	uint64_t ref;                       /* index + 1 */
	size_t nlabels;                     /* 5 .. GEN_MAX_LABELS */
	struct rec_label labels[GEN_MAX_LABELS];
	const char *kind;                   /* value model: "counter", "gauge", ... */
	int exemplar_capable;               /* counters and histogram buckets */
	size_t nsamples;                    /* opts.samples (periodic: 1 .. samples);
					     * 0 after gen_labels() */
	const int64_t *t;                   /* strictly increasing */
	const uint64_t *v;                  /* IEEE-754 bits */
};

/* Labels (and kind) of series index, without samples. */
int gen_labels(struct gen *g, uint64_t index, struct gen_series *out, struct err *e);
/* Labels and samples of series index. */
int gen_series(struct gen *g, uint64_t index, struct gen_series *out, struct err *e);

/* Appends the series record Prometheus 2.42 writes for s: one XOR head
 * chunk of its samples (mint = first t, maxt = last t) and the tail of 3
 * zero pairs and (0, last value). SNAPARC_NOMEM if out ran out of memory. */
int gen_series_encode(struct gen *g, const struct gen_series *s, struct buf *out, struct err *e);
/* gen_series() then gen_series_encode(). */
int gen_series_record(struct gen *g, uint64_t index, struct buf *out, struct err *e);

/* Tombstone j (0 .. opts.tombstones-1): distinct refs, in Go map order. */
void gen_tombstone(const struct gen *g, uint64_t j, struct rec_interval *out);

struct gen_exemplar {
	uint64_t ref;
	int64_t t;                          /* the series' sample time in that scrape */
	double value;
	char trace_id[33];                  /* the one label, trace_id: 32 hex digits */
};

/*
 * Next exemplars in time order (opts.exemplars in all): fills up to cap of
 * them and returns how many, 0 at the end. Per series the timestamps are
 * strictly increasing, as Prometheus' exemplar storage requires.
 */
size_t gen_exemplars_next(struct gen *g, struct gen_exemplar *out, size_t cap);
/* Restarts the exemplar stream from the beginning. */
void gen_exemplars_rewind(struct gen *g);
/* Appends one exemplars record holding x[0..n) (at most
 * GEN_EXEMPLARS_PER_RECORD, as Prometheus writes them); SNAPARC_NOMEM. */
int gen_exemplars_encode(const struct gen_exemplar *x, size_t n, struct buf *out, struct err *e);

/* Series in one cycle of the fleet layout, and targets in it (for reports). */
uint64_t gen_cycle_series(const struct gen *g);
unsigned gen_cycle_targets(const struct gen *g);

#endif
