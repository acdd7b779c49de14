/*
 * bench_util: what the benchmark programs share (bench_util.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "record.h"
#include "wal.h"

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

uint64_t bench_tree_bytes(const char *path, int allocated)
{
	struct stat st;
	uint64_t total = 0;
	struct dirent *de;
	DIR *d;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return allocated ? (uint64_t)st.st_blocks * 512 : (uint64_t)st.st_size;
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d)) != NULL) {
		char p[4400];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		total += bench_tree_bytes(p, allocated);
	}
	closedir(d);
	return total;
}

double bench_plain_read(const char *dir)
{
	static uint8_t buf[1 << 20];
	double t0 = bench_now();
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)) != NULL) {
		char p[4400];
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if ((fd = open(p, O_RDONLY)) < 0)
			continue;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	if (d)
		closedir(d);
	return bench_now() - t0;
}

double bench_run_timed(const char *cmd)
{
	double t0 = bench_now();

	if (system(cmd) != 0)
		return -1;
	return bench_now() - t0;
}

double bench_go_duration(const char *s)
{
	/* longest unit first where one is a prefix of another */
	static const struct { const char *unit; double seconds; } units[] = {
		{ "ns", 1e-9 }, { "us", 1e-6 }, { "\xc2\xb5s", 1e-6 }, { "ms", 1e-3 }, { "s", 1 }, { "m", 60 },
		{ "h", 3600 },
	};
	double total = 0;
	int parts = 0;

	while (*s >= '0' && *s <= '9') {
		char *end;
		double v = strtod(s, &end);
		size_t u = 0;

		while (u < sizeof(units) / sizeof(units[0]) && strncmp(end, units[u].unit, strlen(units[u].unit)))
			u++;
		if (u == sizeof(units) / sizeof(units[0]))
			return -1;
		total += v * units[u].seconds;
		s = end + strlen(units[u].unit);
		parts++;
	}
	return parts ? total : -1;
}

uint64_t bench_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	uint64_t v = 0;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

uint64_t bench_mem_available_kb(void)
{
	char line[256];
	uint64_t v = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "MemAvailable:", 13)) {
			v = strtoull(line + 13, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct bench_pct bench_percentiles(double *v, size_t n)
{
	struct bench_pct p = { 0, 0 };

	if (!n)
		return p;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	p.p50 = v[n / 2];
	p.p99 = v[n * 99 / 100];
	return p;
}

int bench_targets_collect(const char *dir, size_t want, struct bench_targets *t, struct err *e)
{
	struct wal_reader *r;
	struct wal_record rec;
	uint64_t seen = 0, rng = 88172645463325252ull;
	int rc;

	memset(t, 0, sizeof(*t));
	t->refs = calloc(want, sizeof(*t->refs));
	t->offs = calloc(want + 1, sizeof(*t->offs));
	if (!t->refs || !t->offs)
		return err_set(e, SNAPARC_NOMEM, "out of memory");
	if ((rc = wal_reader_open_dir(&r, dir, NULL, e)))
		return rc;
	/* reservoir sample of the series records */
	while ((rc = wal_reader_next(r, &rec, e)) == 1) {
		struct rec_series s;
		size_t slot;

		if (rec_type(rec.data, rec.len) != REC_SERIES || rec_series_decode(&s, rec.data, rec.len, e))
			continue;
		seen++;
		slot = t->n < want ? t->n++ : (size_t)(bench_xorshift(&rng) % seen);
		if (slot >= want)
			continue;
		t->refs[slot] = s.ref;
		/* label sets are kept by slot; a replaced one is simply appended again */
		t->offs[slot] = t->labels.len;
		buf_put(&t->labels, s.labels.raw, s.labels.raw_len);
	}
	wal_reader_close(r);
	if (!rc && t->labels.oom)
		rc = err_set(e, SNAPARC_NOMEM, "out of memory");
	return rc < 0 ? rc : 0;
}

void bench_targets_free(struct bench_targets *t)
{
	free(t->refs);
	free(t->offs);
	buf_free(&t->labels);
	memset(t, 0, sizeof(*t));
}

void bench_lookups(struct archive *a, uint32_t snap, const struct bench_targets *t, uint64_t k,
		   struct bench_pct *by_ref, struct bench_pct *by_labels)
{
	double *lat = malloc(k * sizeof(*lat));
	struct archive_series res = { 0 };
	struct rec_label ls[64];
	struct err e;
	uint64_t fails = 0;

	if (!lat || !t->n) {
		free(lat);
		return;
	}
	for (int pass = 0; pass < 2; pass++) { /* the first pass warms the archive */
		for (uint64_t i = 0; i < k; i++) {
			double t0 = bench_now();

			if (archive_read_ref(a, snap, t->refs[i % t->n], &res, &e))
				fails++;
			lat[i] = bench_now() - t0;
		}
	}
	*by_ref = bench_percentiles(lat, k);
	for (uint64_t i = 0; i < k; i++) {
		size_t j = i % t->n, n = 0;
		struct rec_labels raw;
		struct rec_label_iter it;
		double t0;

		raw.raw = t->labels.p + t->offs[j];
		raw.raw_len = t->labels.len - t->offs[j];
		rec_labels_iter(&it, &raw);
		while (n < 64 && rec_labels_next(&it, &ls[n]))
			n++;
		t0 = bench_now();
		if (archive_read_labels(a, snap, ls, n, &res, &e))
			fails++;
		lat[i] = bench_now() - t0;
	}
	*by_labels = bench_percentiles(lat, k);
	if (fails)
		fprintf(stderr, "bench: %" PRIu64 " lookups failed: %s\n", fails, e.msg);
	archive_series_free(&res);
	free(lat);
}

double bench_restore_one(struct archive *a, const char *name, const uint64_t *refs, size_t n, const char *work,
			 int runs, double *min)
{
	struct archive_restore_opts ro = { .compression = WAL_COMPRESS_SNAPPY };
	char rdir[4500], cmd[4600];
	double *t = malloc((size_t)runs * sizeof(*t)), median = -1;
	struct err e;
	int done = 0;

	snprintf(rdir, sizeof(rdir), "%s/restore-one", work);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rdir);
	while (t && n && done < runs && system(cmd) == 0) {
		double t0;

		sync();   /* fdatasync can otherwise wait on other files' dirty pages */
		t0 = bench_now();
		if (archive_restore(a, name, &refs[(size_t)done % n], 1, rdir, &ro, NULL, &e)) {
			fprintf(stderr, "bench: restore: %s\n", e.msg);
			break;
		}
		t[done++] = bench_now() - t0;
	}
	if (done == runs) {
		qsort(t, (size_t)runs, sizeof(*t), bench_cmp_double);
		median = t[runs / 2];
		if (min)
			*min = t[0];
	}
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", rdir);
	free(t);
	return median;
}

int bench_child_start(struct bench_child *c, char *const argv[], const char *out_path, const char *err_path)
{
	memset(c, 0, sizeof(*c));
	c->interval = 0.01;
	c->start = bench_now();
	if ((c->pid = fork()) < 0)
		return -1;
	if (c->pid == 0) {
		int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666) : -1;
		int errfd = !err_path ? -1 : out_path && !strcmp(out_path, err_path) ? out :
			    open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);

		if ((out_path && out < 0) || (err_path && errfd < 0) || (out >= 0 && dup2(out, STDOUT_FILENO) < 0) ||
		    (errfd >= 0 && dup2(errfd, STDERR_FILENO) < 0))
			_exit(126);
		execvp(argv[0], argv);
		fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return 0;
}

int bench_child_watch(struct bench_child *c, double timeout, int (*stop)(void *ctx), void *ctx)
{
	double until = bench_now() + timeout;
	struct timespec nap = { 0, (long)(c->interval * 1e9) };

	while (!c->exited) {
		struct rusage ru;
		pid_t r = wait4(c->pid, &c->status, WNOHANG, &ru);
		uint64_t kb;

		if (r == c->pid || (r < 0 && errno != EINTR)) {
			c->end = bench_now();
			c->exited = 1;
			if (r == c->pid) {
				c->maxrss_kb = (uint64_t)ru.ru_maxrss;
				c->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
					 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
			}
			break;
		}
		if ((kb = bench_status_kb(c->pid, "RssAnon")) > c->anon_peak_kb)
			c->anon_peak_kb = kb;
		if (stop && stop(ctx))
			return 0;
		if (bench_now() > until)
			return -1;
		nanosleep(&nap, NULL);
	}
	return 1;
}

int bench_child_run(struct bench_child *c, char *const argv[], const char *out_path, const char *err_path)
{
	if (bench_child_start(c, argv, out_path, err_path))
		return -1;
	bench_child_watch(c, 1e9, NULL, NULL);
	return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0 ? 0 : -1;
}

/* What Prometheus' watch stops for: its log says it is ready, or memory is short. */
struct prom_watch {
	const char *log;
	uint64_t guard_kb;
	int ready, short_of_memory;
};

static int file_has(const char *path, const char *needle)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen(path, "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

static int prom_stop(void *ctx)
{
	struct prom_watch *w = ctx;

	if (bench_mem_available_kb() < w->guard_kb)
		return w->short_of_memory = 1;
	return w->log && (w->ready = file_has(w->log, "Server is ready to receive web requests"));
}

/* The duration and num_series of the log line with msg, the last one that
 * names series; -1 when there is none. */
static double log_duration(const char *log, const char *msg, uint64_t *series)
{
	char line[4096];
	double d = -1;
	FILE *f = fopen(log, "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *dur = strstr(line, " duration="), *num = strstr(line, " num_series=");
		uint64_t n = num ? strtoull(num + 12, NULL, 10) : 0;

		if (!strstr(line, msg) || !dur || !n)
			continue;
		d = bench_go_duration(dur + 10);
		*series = n;
	}
	if (f)
		fclose(f);
	return d;
}

/* Hard links to dir's files in to (a new directory), else a copy. */
static int link_tree(const char *dir, const char *to)
{
	char cmd[9000];

	snprintf(cmd, sizeof(cmd), "cp -rl '%s' '%s' 2>/dev/null || cp -r '%s' '%s'", dir, to, dir, to);
	return system(cmd) == 0 ? 0 : -1;
}

int bench_prometheus_cycle(const char *dir, const char *work, uint64_t guard_kb, struct bench_prometheus *p)
{
	char top[4200], data[4300], snap[4400], wal0[4400], yml[4300], log[4300], cmd[4400], arg_cfg[4400],
	     arg_data[4400];
	char *argv[] = { "prometheus", arg_cfg, arg_data, "--web.listen-address=127.0.0.1:0",
			 "--enable-feature=memory-snapshot-on-shutdown,exemplar-storage", NULL };
	struct prom_watch w = { log, guard_kb, 0, 0 };
	struct bench_child c;
	FILE *f;
	int r, rc = -1;

	memset(p, 0, sizeof(*p));
	p->load = p->write = -1;
	snprintf(top, sizeof(top), "%s/prometheus", work);
	snprintf(data, sizeof(data), "%s/data", top);
	snprintf(snap, sizeof(snap), "%s/chunk_snapshot.000000.0000000000", data);
	snprintf(wal0, sizeof(wal0), "%s/wal/00000000", data);
	snprintf(yml, sizeof(yml), "%s/prom.yml", top);
	snprintf(log, sizeof(log), "%s/log", top);
	snprintf(arg_cfg, sizeof(arg_cfg), "--config.file=%s", yml);
	snprintf(arg_data, sizeof(arg_data), "--storage.tsdb.path=%s", data);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/wal'", top, data);
	/* An empty segment 0 makes the WAL Prometheus opens start at segment 1:
	 * past the snapshot's (0, 0), so that it writes one on shutdown instead of
	 * finding nothing new since the last. */
	if (system(cmd) != 0 || !(f = fopen(wal0, "w")) || fclose(f) || link_tree(dir, snap) ||
	    !(f = fopen(yml, "w"))) {
		snprintf(p->failed, sizeof(p->failed), "could not prepare %s", top);
		goto out;
	}
	fputs("global: {scrape_interval: 1h, evaluation_interval: 1h}\n", f);
	if (fclose(f) || bench_child_start(&c, argv, log, log)) {
		snprintf(p->failed, sizeof(p->failed), "could not start prometheus");
		goto out;
	}
	c.interval = 0.02;
	r = bench_child_watch(&c, 3600, prom_stop, &w);
	p->anon_load_kb = c.anon_peak_kb;
	if (r != 0 || !w.ready) {
		kill(c.pid, SIGKILL);
		bench_child_watch(&c, 60, NULL, NULL);
		snprintf(p->failed, sizeof(p->failed), "%s", w.short_of_memory ?
			 "killed while loading: MemAvailable fell under the guard" : r == 1 ?
			 "exited before it was ready (see its log)" : "not ready within an hour");
		goto out;
	}
	c.anon_peak_kb = 0;
	w.log = NULL;   /* from here on it stops for memory only */
	kill(c.pid, SIGTERM);
	if ((r = bench_child_watch(&c, 3600, prom_stop, &w)) != 1) {
		kill(c.pid, SIGKILL);
		bench_child_watch(&c, 60, NULL, NULL);
		snprintf(p->failed, sizeof(p->failed), "%s", w.short_of_memory ?
			 "killed while writing: MemAvailable fell under the guard" : "did not stop within an hour");
	}
	p->anon_write_kb = c.anon_peak_kb;
	p->load = log_duration(log, "msg=\"chunk snapshot loaded\"", &p->load_series);
	p->write = log_duration(log, "msg=\"chunk snapshot complete\"", &p->write_series);
	if (p->load < 0 || file_has(log, "Failed to load chunk snapshot"))
		snprintf(p->failed, sizeof(p->failed), "it did not load the snapshot (see %s)", log);
	else if (p->write < 0 && !p->failed[0])
		snprintf(p->failed, sizeof(p->failed), "it wrote no snapshot on shutdown (see %s)", log);
	rc = p->failed[0] ? -1 : 0;
out:
	/* a failure's log is kept to read; the data, as large as the snapshot, is not */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rc ? data : top);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", rc ? data : top);
	return rc;
}
