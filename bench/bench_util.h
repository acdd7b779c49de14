/*
 * bench_util: what the benchmark programs share. Timing, sizes as du counts
 * them, the peers' reads and copies, latency percentiles, random lookups and
 * one-series restores on an archive, child processes watched for their
 * memory, and Prometheus 2.42 loading and writing a chunk snapshot.
 * Nothing here is a test: failures are reported as negative or zero figures
 * and a message on stderr.
 */
#ifndef SNAPARC_BENCH_UTIL_H
#define SNAPARC_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "archive.h"
#include "bytes.h"

/* Seconds on the monotonic clock. */
double bench_now(void);

uint64_t bench_xorshift(uint64_t *state);

/* Bytes of a file or a tree: allocated (as du counts them) or apparent sizes. */
uint64_t bench_tree_bytes(const char *path, int allocated);

/* Seconds a plain read() of every file in dir takes (1 MiB at a time). */
double bench_plain_read(const char *dir);

/* Seconds /bin/sh -c cmd takes; -1 when it fails. */
double bench_run_timed(const char *cmd);

/* A Go duration as Prometheus logs it ("1m2.5s", "592.1ms", "47.24µs") in
 * seconds; -1 if it is not one. */
double bench_go_duration(const char *s);

/* A field of /proc/PID/status in kB ("RssAnon", "VmHWM"); pid 0 is this
 * process. 0 when missing (the process is gone). */
uint64_t bench_status_kb(pid_t pid, const char *field);

/* MemAvailable of /proc/meminfo in kB. */
uint64_t bench_mem_available_kb(void);

struct bench_pct {
	double p50, p99;
};

int bench_cmp_double(const void *a, const void *b);

/* p50 and p99 of v[0..n) (sorts v). */
struct bench_pct bench_percentiles(double *v, size_t n);

/* Up to want series of a snapshot directory (a reservoir sample): their
 * refs, and their label sets end to end in labels. Free with
 * bench_targets_free(). */
struct bench_targets {
	uint64_t *refs;
	struct buf labels;
	size_t *offs, n;
};

int bench_targets_collect(const char *dir, size_t want, struct bench_targets *t, struct err *e);
void bench_targets_free(struct bench_targets *t);

/* k lookups of the targets in snapshot id, by ref (after a warm pass) and by
 * label set, one at a time, each timed. */
void bench_lookups(struct archive *a, uint32_t id, const struct bench_targets *t, uint64_t k,
		   struct bench_pct *by_ref, struct bench_pct *by_labels);

/* The median of runs restores of one series (refs[i % n]) of snapshot name,
 * each into a fresh directory under work after a sync(); fsync included.
 * The fastest in *min when min is not NULL. -1 if one failed. */
double bench_restore_one(struct archive *a, const char *name, const uint64_t *refs, size_t n, const char *work,
			 int runs, double *min);

/*
 * A child process watched while it runs: its wall time, its CPU time (user
 * and system, which other work on the machine moves less than the wall
 * time), its peak RssAnon (heap and other private memory, not mapped files)
 * sampled every interval seconds, and its peak RSS from the kernel at exit
 * (mapped pages included).
 */
struct bench_child {
	pid_t pid;
	double start, end, interval, cpu;
	uint64_t anon_peak_kb, maxrss_kb;
	int status;                      /* waitpid's, once it has exited */
	int exited;
};

/* Starts argv[0] (a path) with stdout to out_path and stderr to err_path
 * (NULL: inherited). 0 on success. */
int bench_child_start(struct bench_child *c, char *const argv[], const char *out_path, const char *err_path);

/* Samples the child until it exits (1), stop(ctx) says so (0), or timeout
 * seconds pass (-1). */
int bench_child_watch(struct bench_child *c, double timeout, int (*stop)(void *ctx), void *ctx);

/* Runs a child to its end; 0 when it exited with status 0. */
int bench_child_run(struct bench_child *c, char *const argv[], const char *out_path, const char *err_path);

/* Prometheus 2.42 started on a snapshot, then stopped with SIGTERM. */
struct bench_prometheus {
	double load, write;              /* its log's durations, s; -1 unknown */
	uint64_t load_series, write_series;
	uint64_t anon_load_kb, anon_write_kb;   /* peak RssAnon until ready, and while stopping */
	char failed[256];                /* why it did not give both figures */
};

/* Loads snapshot dir in a fresh Prometheus under work (its data dir holds
 * hard links to the snapshot's files and an empty WAL segment, so that the
 * WAL it opens is past the snapshot and it writes a new one on shutdown),
 * waits for it to be ready, stops it with SIGTERM and reads both durations
 * from its log. Kills it when MemAvailable falls under guard_kb. */
int bench_prometheus_cycle(const char *dir, const char *work, uint64_t guard_kb, struct bench_prometheus *p);

#endif
