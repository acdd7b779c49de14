/*
 * host: a storage engine's use of snaparc, in small. It loads snaparc.so
 * the way an engine embeds it (dlopen, the one entry point, an ABI check),
 * then archives two snapshots from its own memory:
 *
 *   1. a Prometheus chunk snapshot segment, read into memory and streamed
 *      to put_wal() in uneven pieces, as an engine streams what it would
 *      have written to its own snapshot file;
 *   2. a few series it builds itself (labels and an XOR chunk of samples),
 *      given to put_series();
 *
 * commits each, and reads one series of each back by its labels, printing
 * the labels and the chunk's sample count.
 *
 *   snaparc-host [-p PLUGIN] ARCHIVE [SEGMENT [NAME=VALUE,...]]
 *
 * PLUGIN defaults to the snaparc.so this host was built against
 * (SNAPARC_HOST_PLUGIN: pkg-config's plugindir or CMake's SNAPARC_PLUGIN_PATH).
 * ARCHIVE is created when missing. SEGMENT is a segment file of a chunk
 * snapshot (chunk_snapshot.N.M/00000000); the labels name the series to read
 * back from it. Exit status 0, or 1 with the reason on stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <snaparc/plugin.h>

#ifndef SNAPARC_HOST_PLUGIN
#define SNAPARC_HOST_PLUGIN "snaparc.so"
#endif

#define MAX_LABELS 32

static const struct snaparc_api *api;

/* Prints "snaparc-host: <what>: <status name>: <the archive's message>". */
static int fail(snaparc_archive *a, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(snaparc_archive *a, int status, const char *fmt, ...)
{
	char msg[1024] = "";
	va_list ap;

	if (a)
		api->last_error(a, msg, sizeof(msg));
	fputs("snaparc-host: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s%s%s\n", api->strerror(status), *msg ? ": " : "", msg);
	return 1;
}

/* ---- loading the plugin ---- */

static int load_plugin(const char *path, void **so_out)
{
	const char *why = NULL;
	snaparc_entry_fn entry;
	void *sym, *so;

	/* RTLD_LOCAL: the plugin's symbols stay out of the host's namespace. */
	so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "snaparc-host: %s\n", dlerror());
		return 1;
	}
	sym = dlsym(so, SNAPARC_ENTRY_SYMBOL);
	if (!sym) {
		fprintf(stderr, "snaparc-host: %s is not a snaparc plugin: %s\n", path, dlerror());
		dlclose(so);
		return 1;
	}
	memcpy(&entry, &sym, sizeof(entry));   /* ISO C has no object-to-function pointer cast */
	api = entry(SNAPARC_ABI_VERSION, &why);
	if (!api) {
		fprintf(stderr, "snaparc-host: %s refused this host: %s\n", path, why ? why : "no reason given");
		dlclose(so);
		return 1;
	}
	/* A plugin of an older minor may lack functions added since: every
	 * function this host calls must be in its table. */
	if (api->abi_major != SNAPARC_ABI_MAJOR || !SNAPARC_API_HAS(api, strerror) || !SNAPARC_API_HAS(api, open) ||
	    !SNAPARC_API_HAS(api, close) || !SNAPARC_API_HAS(api, last_error) || !SNAPARC_API_HAS(api, begin) ||
	    !SNAPARC_API_HAS(api, put_wal) || !SNAPARC_API_HAS(api, put_series) || !SNAPARC_API_HAS(api, commit) ||
	    !SNAPARC_API_HAS(api, abort) || !SNAPARC_API_HAS(api, result_new) ||
	    !SNAPARC_API_HAS(api, result_free) || !SNAPARC_API_HAS(api, read_labels)) {
		fprintf(stderr, "snaparc-host: %s (ABI %u.%u, table of %u bytes) lacks what this host needs\n", path,
			(unsigned)api->abi_major, (unsigned)api->abi_minor, (unsigned)api->size);
		dlclose(so);
		return 1;
	}
	printf("plugin %s: %s %s, ABI %u.%u\n", path, api->name, api->version, (unsigned)api->abi_major,
	       (unsigned)api->abi_minor);
	*so_out = so;
	return 0;
}

/* ---- printing a series read back ---- */

static void print_series(const struct snaparc_series *s, const char *what)
{
	printf("%s: ref %" PRIu64 " {", what, s->ref);
	for (size_t i = 0; i < s->nlabels; i++)
		printf("%s%.*s=\"%.*s\"", i ? ", " : "", (int)s->labels[i].name_len, s->labels[i].name,
		       (int)s->labels[i].value_len, s->labels[i].value);
	printf("}");
	/* Every Prometheus chunk starts with its sample count, a big-endian uint16. */
	if (s->has_chunk && s->chunk_len >= 2)
		printf(" %u samples (encoding %u, %" PRId64 "..%" PRId64 ")\n", (unsigned)(s->chunk[0] << 8 | s->chunk[1]),
		       (unsigned)s->encoding, s->mint, s->maxt);
	else
		printf(" no head chunk\n");
}

/* ---- 1: a snapshot segment streamed from memory ---- */

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		fprintf(stderr, "snaparc-host: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (;;) {
		if (n == cap) {
			uint8_t *q = realloc(p, cap ? cap * 2 : 65536);
			if (!q) {
				fprintf(stderr, "snaparc-host: %s: out of memory\n", path);
				free(p);
				fclose(f);
				return 1;
			}
			p = q;
			cap = cap ? cap * 2 : 65536;
		}
		size_t got = fread(p + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "snaparc-host: %s: read error\n", path);
		free(p);
		fclose(f);
		return 1;
	}
	fclose(f);
	*out = p;
	*len = n;
	return 0;
}

/* "a=1,b=2" into labels sorted by name (pointing into spec, which is cut up). */
static int parse_labels(char *spec, struct snaparc_label *ls, size_t *n)
{
	*n = 0;
	for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok || *n == MAX_LABELS) {
			fprintf(stderr, "snaparc-host: labels are NAME=VALUE,... (at most %d): '%s'\n", MAX_LABELS, tok);
			return 1;
		}
		*eq = '\0';
		ls[*n] = (struct snaparc_label){ tok, strlen(tok), eq + 1, strlen(eq + 1) };
		++*n;
	}
	for (size_t i = 1; i < *n; i++)   /* insertion sort: a handful of labels */
		for (size_t j = i; j > 0 && strcmp(ls[j - 1].name, ls[j].name) > 0; j--) {
			struct snaparc_label t = ls[j];
			ls[j] = ls[j - 1];
			ls[j - 1] = t;
		}
	return 0;
}

/* The snapshot's name: its directory's (chunk_snapshot.N.M) when it has one. */
static void snapshot_name(const char *segment, char *out, size_t cap)
{
	const char *end = strrchr(segment, '/'), *start = segment;

	if (end)
		for (start = end; start > segment && start[-1] != '/'; start--)
			;
	if (end && end > start)
		snprintf(out, cap, "%.*s", (int)(end - start), start);
	else
		snprintf(out, cap, "host-wal");
}

static int archive_segment(snaparc_archive *a, const char *segment, char *labels_spec)
{
	static const size_t pieces[] = { 1, 13, 4093, 32768, 7, 40000, 512, 99999 };
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series series = { .size = sizeof(series) };
	struct snaparc_label labels[MAX_LABELS];
	snaparc_writer *w = NULL;
	snaparc_result *r = NULL;
	uint8_t *bytes = NULL;
	size_t len, off = 0, npieces = 0, nlabels = 0;
	char name[SNAPARC_NAME_MAX + 1];
	int rc = 1, st;

	if (labels_spec && parse_labels(labels_spec, labels, &nlabels))
		return 1;
	if (read_file(segment, &bytes, &len))
		return 1;
	snapshot_name(segment, name, sizeof(name));
	st = api->begin(a, name, len, &w);
	if (st) {
		fail(a, st, "begin %s", name);
		goto out;
	}
	/* Uneven pieces, none aligned to a page: the plugin reassembles them. */
	do {
		size_t n = pieces[npieces % (sizeof(pieces) / sizeof(pieces[0]))];
		if (n > len - off)
			n = len - off;
		st = api->put_wal(w, bytes + off, n, off + n == len);
		if (st) {
			fail(a, st, "put_wal %s, bytes %zu..%zu", segment, off, off + n);
			goto out;
		}
		off += n;
		npieces++;
	} while (off < len);
	st = api->commit(&w, &info);
	if (st) {
		fail(a, st, "commit %s", name);
		goto out;
	}
	printf("snapshot %u %s: %" PRIu64 " series, %" PRIu64 " records from %zu bytes in %zu pieces\n", info.id,
	       info.name, info.series, info.records, len, npieces);

	if (nlabels) {
		char id[16];
		snprintf(id, sizeof(id), "%u", info.id);
		st = api->result_new(&r);
		if (!st)
			st = api->read_labels(a, id, labels, nlabels, r, &series);
		if (st) {
			fail(a, st, "read_labels in snapshot %s", id);
			goto out;
		}
		print_series(&series, "read back");
	}
	rc = 0;
out:
	if (w)
		api->abort(&w);
	if (r)
		api->result_free(&r);
	free(bytes);
	return rc;
}

/* ---- 2: series the host builds itself ---- */

#define HOST_SERIES 3
#define HOST_SAMPLES 120

/* Prometheus' XOR chunk (tsdb/chunkenc/xor.go), as its appender writes it. */
struct xor_chunk {
	uint8_t bytes[2 + 19 * HOST_SAMPLES];   /* a sample takes at most 145 bits */
	size_t bit;              /* bits written after the 2-byte header */
	uint16_t n;
	int64_t t, tdelta;
	uint64_t v;
	uint8_t leading, trailing;
};

static void put_bits(struct xor_chunk *c, uint64_t v, unsigned nbits)
{
	while (nbits--) {
		if (v >> nbits & 1)
			c->bytes[2 + c->bit / 8] |= (uint8_t)(0x80 >> c->bit % 8);
		c->bit++;
	}
}

static void put_uvarint(struct xor_chunk *c, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		put_bits(c, (v & 0x7f) | 0x80, 8);
	put_bits(c, v, 8);
}

static void put_value(struct xor_chunk *c, uint64_t v)
{
	uint64_t delta = v ^ c->v;

	if (delta == 0) {
		put_bits(c, 0, 1);
		return;
	}
	put_bits(c, 1, 1);
	unsigned leading = (unsigned)__builtin_clzll(delta), trailing = (unsigned)__builtin_ctzll(delta);
	if (leading >= 32)
		leading = 31;
	if (c->leading != 0xff && leading >= c->leading && trailing >= c->trailing) {
		put_bits(c, 0, 1);
		put_bits(c, delta >> c->trailing, 64u - c->leading - c->trailing);
		return;
	}
	c->leading = (uint8_t)leading;
	c->trailing = (uint8_t)trailing;
	put_bits(c, 1, 1);
	put_bits(c, leading, 5);
	unsigned sigbits = 64 - leading - trailing;
	put_bits(c, sigbits & 63, 6);   /* 64 is written as 0 */
	put_bits(c, delta >> trailing, sigbits);
}

static int fits(int64_t x, unsigned nbits) { return -((1LL << (nbits - 1)) - 1) <= x && x <= 1LL << (nbits - 1); }

static void xor_append(struct xor_chunk *c, int64_t t, double value)
{
	uint64_t v;

	memcpy(&v, &value, sizeof(v));
	if (c->n == 0) {
		uint64_t zz = (uint64_t)t << 1 ^ (uint64_t)(t >> 63);   /* Go's PutVarint */
		c->leading = 0xff;
		put_uvarint(c, zz);
		put_bits(c, v, 64);
	} else if (c->n == 1) {
		c->tdelta = t - c->t;
		put_uvarint(c, (uint64_t)c->tdelta);
		put_value(c, v);
	} else {
		int64_t tdelta = t - c->t, dod = tdelta - c->tdelta;
		if (dod == 0) {
			put_bits(c, 0, 1);
		} else if (fits(dod, 14)) {
			put_bits(c, 2, 2);
			put_bits(c, (uint64_t)dod, 14);
		} else if (fits(dod, 17)) {
			put_bits(c, 6, 3);
			put_bits(c, (uint64_t)dod, 17);
		} else if (fits(dod, 20)) {
			put_bits(c, 14, 4);
			put_bits(c, (uint64_t)dod, 20);
		} else {
			put_bits(c, 15, 4);
			put_bits(c, (uint64_t)dod, 64);
		}
		c->tdelta = tdelta;
		put_value(c, v);
	}
	c->t = t;
	c->v = v;
	c->n++;
	c->bytes[0] = (uint8_t)(c->n >> 8);
	c->bytes[1] = (uint8_t)c->n;
}

static size_t xor_len(const struct xor_chunk *c) { return 2 + (c->bit + 7) / 8; }

static int archive_built(snaparc_archive *a)
{
	static const char *const instances[HOST_SERIES] = { "db-1:9100", "db-2:9100", "db-3:9100" };
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series series = { .size = sizeof(series) };
	struct xor_chunk chunk[HOST_SERIES];
	struct snaparc_label labels[HOST_SERIES][3];
	snaparc_writer *w = NULL;
	snaparc_result *r = NULL;
	char name[64], id[16];
	int64_t t0 = 1700000000000;   /* a fixed start: the same chunk bytes on every run */
	int rc = 1, st;

	snprintf(name, sizeof(name), "host.%lld", (long long)time(NULL));
	st = api->begin(a, name, 0, &w);
	if (st)
		return fail(a, st, "begin %s", name);
	for (int i = 0; i < HOST_SERIES; i++) {
		memset(&chunk[i], 0, sizeof(chunk[i]));
		/* A counter scraped every 15 s with a little jitter. */
		for (int k = 0; k < HOST_SAMPLES; k++)
			xor_append(&chunk[i], t0 + 15000LL * k + (k % 7 == 3 ? 12 : 0), (double)(k * (i + 1)) + 0.5 * (k % 3));
		labels[i][0] = (struct snaparc_label){ "__name__", 8, "host_requests_total", 19 };
		labels[i][1] = (struct snaparc_label){ "instance", 8, instances[i], strlen(instances[i]) };
		labels[i][2] = (struct snaparc_label){ "job", 3, "node", 4 };
		struct snaparc_series_in in = {
			.size = sizeof(in),
			.ref = (uint64_t)i + 1,
			.labels = labels[i],
			.nlabels = 3,
			.has_chunk = 1,
			.encoding = 1,   /* XOR */
			.mint = t0,
			.maxt = chunk[i].t,
			.chunk = chunk[i].bytes,
			.chunk_len = xor_len(&chunk[i]),
			.last_value = chunk[i].v,
		};
		st = api->put_series(w, &in);
		if (st) {
			fail(a, st, "put_series %d", i + 1);
			goto out;
		}
	}
	st = api->commit(&w, &info);
	if (st) {
		fail(a, st, "commit %s", name);
		goto out;
	}
	printf("snapshot %u %s: %" PRIu64 " series built by the host\n", info.id, info.name, info.series);

	snprintf(id, sizeof(id), "%u", info.id);
	st = api->result_new(&r);
	if (!st)
		st = api->read_labels(a, id, labels[1], 3, r, &series);
	if (st) {
		fail(a, st, "read_labels in snapshot %s", id);
		goto out;
	}
	print_series(&series, "read back");
	if (!series.has_chunk || series.chunk_len != xor_len(&chunk[1]) ||
	    memcmp(series.chunk, chunk[1].bytes, series.chunk_len) != 0) {
		fprintf(stderr, "snaparc-host: the chunk read back differs from the one put\n");
		goto out;
	}
	rc = 0;
out:
	if (w)
		api->abort(&w);
	if (r)
		api->result_free(&r);
	return rc;
}

int main(int argc, char **argv)
{
	const char *plugin = SNAPARC_HOST_PLUGIN;
	struct snaparc_open_options opts = { .size = sizeof(opts), .flags = SNAPARC_OPEN_CREATE };
	snaparc_archive *a = NULL;
	void *so = NULL;
	int rc, st;

	if (argc > 2 && !strcmp(argv[1], "-p")) {
		plugin = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2 || argc > 4 || argv[1][0] == '-') {
		fprintf(stderr, "usage: snaparc-host [-p PLUGIN] ARCHIVE [SEGMENT [NAME=VALUE,...]]\n");
		return 2;
	}
	if (load_plugin(plugin, &so))
		return 1;
	st = api->open(&a, argv[1], &opts);
	if (st) {
		/* a failed open still gives a handle carrying the reason (unless out of memory) */
		fail(a, st, "open %s", argv[1]);
		api->close(&a);
		dlclose(so);
		return 1;
	}
	rc = argc > 2 ? archive_segment(a, argv[2], argc > 3 ? argv[3] : NULL) : 0;
	if (rc == 0)
		rc = archive_built(a);
	api->close(&a);
	dlclose(so);
	return rc;
}
