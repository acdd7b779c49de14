/*
 * test_abi: snaparc.so as a host sees it, loaded with dlopen from this
 * separate program (the plugin's path is the first argument; the rest goes
 * to criterion). Nothing here links the engine: only include/snaparc/plugin.h.
 *
 *   version      the entry point refuses another major version, with a reason
 *                naming the plugin's, and takes any minor
 *   older hosts  a table or struct of an older minor (a shorter prefix) works;
 *                SNAPARC_API_HAS on a shortened copy of the table
 *   bad calls    NULL handles, NULL pointers, closed handles: SNAPARC_INVALID
 *   archives     two archives open and written at once, read independently;
 *                readers on several threads through one handle; a snapshot
 *                streamed with put_wal equals one imported from disk
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snaparc/plugin.h>

#define PLUGIN_ENV "SNAPARC_TEST_PLUGIN"

static void *so;
static snaparc_entry_fn entry;
static const struct snaparc_api *api;
static char tmp[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void load(void)
{
	const char *path = getenv(PLUGIN_ENV), *why = NULL;
	void *sym;

	cr_assert(path, "the plugin's path is the first argument");
	so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert(so, "dlopen: %s", dlerror());
	sym = dlsym(so, SNAPARC_ENTRY_SYMBOL);
	cr_assert(sym, "dlsym: %s", dlerror());
	memcpy(&entry, &sym, sizeof(entry));
	api = entry(SNAPARC_ABI_VERSION, &why);
	cr_assert(api, "the plugin refused its own ABI: %s", why ? why : "(no reason)");
	snprintf(tmp, sizeof(tmp), "/tmp/snaparc-abi-XXXXXX");
	cr_assert(mkdtemp(tmp), "mkdtemp");
}

static void unload(void)
{
	nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (so)
		dlclose(so);
}

TestSuite(abi, .init = load, .fini = unload);

static char *path_in_tmp(const char *name)
{
	static char p[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", tmp, name);
	return p[i];
}

static snaparc_archive *open_new(const char *name)
{
	struct snaparc_open_options o = { .size = sizeof(o), .flags = SNAPARC_OPEN_CREATE, .sync = SNAPARC_SYNC_NONE };
	snaparc_archive *a = NULL;
	char msg[512] = "";
	int st = api->open(&a, path_in_tmp(name), &o);

	if (st && a)
		api->last_error(a, msg, sizeof(msg));
	cr_assert_eq(st, 0, "open %s: %s: %s", name, api->strerror(st), msg);
	cr_assert_not_null(a);
	return a;
}

static void expect_ok(snaparc_archive *a, int st, const char *what)
{
	char msg[512] = "";

	if (st && a)
		api->last_error(a, msg, sizeof(msg));
	cr_assert_eq(st, 0, "%s: %s: %s", what, api->strerror(st), msg);
}

/* ---- a series built here: labels and a one-sample XOR chunk ---- */

struct built {
	struct snaparc_label labels[3];
	uint8_t chunk[32];
	struct snaparc_series_in in;
};

/* {__name__="abi_test", archive=<which>, n=<n>} holding one sample (t, ref):
 * an XOR chunk of one sample is its count, varint t and the value's bits. */
static void build(struct built *b, const char *which, const char *n, uint64_t ref)
{
	int64_t t = 1700000000000;
	uint64_t zz = (uint64_t)t << 1 ^ (uint64_t)(t >> 63), bits;
	double v = (double)ref;
	size_t len = 2;

	memset(b, 0, sizeof(*b));
	b->labels[0] = (struct snaparc_label){ "__name__", 8, "abi_test", 8 };
	b->labels[1] = (struct snaparc_label){ "archive", 7, which, strlen(which) };
	b->labels[2] = (struct snaparc_label){ "n", 1, n, strlen(n) };
	b->chunk[1] = 1;
	for (; zz >= 0x80; zz >>= 7)
		b->chunk[len++] = (uint8_t)(zz | 0x80);
	b->chunk[len++] = (uint8_t)zz;
	memcpy(&bits, &v, sizeof(bits));
	for (int i = 56; i >= 0; i -= 8)
		b->chunk[len++] = (uint8_t)(bits >> i);
	b->in = (struct snaparc_series_in){
		.size = sizeof(b->in),
		.ref = ref,
		.labels = b->labels,
		.nlabels = 3,
		.has_chunk = 1,
		.encoding = 1,   /* XOR */
		.mint = t,
		.maxt = t,
		.chunk = b->chunk,
		.chunk_len = len,
		.last_value = bits,
	};
}

static uint32_t put_built(snaparc_archive *a, const char *name, const char *which, int n)
{
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	snaparc_writer *w = NULL;

	expect_ok(a, api->begin(a, name, 0, &w), "begin");
	for (int i = 1; i <= n; i++) {
		struct built b;
		char num[16];
		snprintf(num, sizeof(num), "%d", i);
		build(&b, which, num, (uint64_t)i);
		expect_ok(a, api->put_series(w, &b.in), "put_series");
	}
	expect_ok(a, api->commit(&w, &info), "commit");
	cr_assert_null(w, "commit sets the writer to NULL");
	cr_assert_eq(info.series, (uint64_t)n);
	return info.id;
}

/* Reads {__name__="abi_test", archive=which, n=n} from snapshot spec. */
static int read_built(snaparc_archive *a, const char *spec, const char *which, const char *n,
		      struct snaparc_series *out, snaparc_result *r)
{
	struct snaparc_label ls[3] = {
		{ "__name__", 8, "abi_test", 8 },
		{ "archive", 7, which, strlen(which) },
		{ "n", 1, n, strlen(n) },
	};

	out->size = sizeof(*out);
	return api->read_labels(a, spec, ls, 3, r, out);
}

/* ---- version ---- */

Test(abi, major_version_refused_with_reason)
{
	uint32_t newer = (uint32_t)(SNAPARC_ABI_MAJOR + 1) << 16 | SNAPARC_ABI_MINOR;
	uint32_t older = (uint32_t)(SNAPARC_ABI_MAJOR - 1) << 16 | 7;
	char plugin_major[16];
	const char *why = NULL;

	snprintf(plugin_major, sizeof(plugin_major), "%d.", SNAPARC_ABI_MAJOR);
	cr_assert_null(entry(newer, &why), "a host of ABI %u.x must be refused", SNAPARC_ABI_MAJOR + 1);
	cr_assert_not_null(why, "a refusal says why");
	cr_log_info("refusal of a newer major: %s", why);
	cr_assert(strstr(why, "ABI"), "the reason names the ABI: %s", why);
	cr_assert(strstr(why, plugin_major), "the reason names the plugin's ABI version %s: %s", plugin_major, why);

	why = NULL;
	cr_assert_null(entry(older, &why), "a host of ABI %u.x must be refused", SNAPARC_ABI_MAJOR - 1);
	cr_assert_not_null(why);
	cr_assert(strstr(why, plugin_major), "the reason names the plugin's ABI version: %s", why);

	cr_assert_null(entry(newer, NULL), "refused, and no crash without a why");
	cr_assert_null(entry(0xffffffffu, &why));
}

Test(abi, any_minor_accepted)
{
	uint32_t minors[] = { 0, SNAPARC_ABI_MINOR, SNAPARC_ABI_MINOR + 1, 0xffff };

	for (size_t i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		const char *why = NULL;
		const struct snaparc_api *t = entry((uint32_t)SNAPARC_ABI_MAJOR << 16 | minors[i], &why);

		cr_assert_not_null(t, "ABI %d.%u refused: %s", SNAPARC_ABI_MAJOR, minors[i], why ? why : "");
		cr_assert_eq(t, api, "one constant table");
		cr_assert_eq(t->abi_major, SNAPARC_ABI_MAJOR);
		cr_assert_eq(t->abi_minor, SNAPARC_ABI_MINOR, "the table says the plugin's minor, not the host's");
	}
	cr_assert_not_null(entry(SNAPARC_ABI_VERSION, NULL), "why may be NULL");
}

Test(abi, table_is_complete)
{
	cr_assert_eq(api->size, sizeof(struct snaparc_api));
	cr_assert_str_eq(api->name, "snaparc");
	cr_assert(api->version && api->version[0]);
#define HAS(f) cr_assert(SNAPARC_API_HAS(api, f), "the table lacks " #f)
	HAS(strerror); HAS(open); HAS(close); HAS(last_error); HAS(begin); HAS(put_records); HAS(put_wal);
	HAS(put_series); HAS(commit); HAS(abort); HAS(import); HAS(snapshot_find); HAS(snapshot_next);
	HAS(snapshot_remove); HAS(result_new); HAS(result_free); HAS(read_ref); HAS(read_labels); HAS(select);
	HAS(history); HAS(restore); HAS(restore_refs); HAS(stat); HAS(verify); HAS(compact);
	HAS(verify_flags);
#undef HAS
	for (int st = 0; st >= -12; st--)
		cr_assert(api->strerror(st) && api->strerror(st)[0], "strerror(%d)", st);
	cr_assert_not_null(api->strerror(12345));
	cr_assert_not_null(api->strerror(-2147483647 - 1));
}

/* ---- hosts of an older minor ---- */

/* What a host built when the table ended at abort() would have compiled
 * against: the same fields, in the same places. */
struct old_api {
	uint32_t size;
	uint16_t abi_major, abi_minor;
	const char *name;
	const char *version;
	const char *(*strerror)(int status);
	int (*open)(snaparc_archive **out, const char *path, const struct snaparc_open_options *opts);
	void (*close)(snaparc_archive **a);
	size_t (*last_error)(snaparc_archive *a, char *buf, size_t cap);
	int (*begin)(snaparc_archive *a, const char *name, uint64_t source_bytes, snaparc_writer **out);
	int (*put_records)(snaparc_writer *w, const struct snaparc_record *recs, size_t n);
	int (*put_wal)(snaparc_writer *w, const uint8_t *bytes, size_t len, int end_of_segment);
	int (*put_series)(snaparc_writer *w, const struct snaparc_series_in *s);
	int (*commit)(snaparc_writer **w, struct snaparc_snapshot_info *info);
	void (*abort)(snaparc_writer **w);
};

_Static_assert(offsetof(struct old_api, abort) == offsetof(struct snaparc_api, abort),
	       "the table only grows at its end");
_Static_assert(sizeof(struct old_api) < sizeof(struct snaparc_api), "an older table is a prefix");

Test(abi, host_of_an_older_table)
{
	const struct old_api *old = (const struct old_api *)(const void *)entry(SNAPARC_ABI_MAJOR << 16, NULL);
	struct snaparc_open_options o = { .size = sizeof(o), .flags = SNAPARC_OPEN_CREATE };
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	snaparc_archive *a = NULL;
	snaparc_writer *w = NULL;
	struct built b;

	cr_assert_not_null(old);
	cr_assert_geq(old->size, sizeof(*old), "the plugin's table holds all an older host knows");
	cr_assert_eq(old->open(&a, path_in_tmp("old"), &o), 0);
	cr_assert_eq(old->begin(a, "old-host", 0, &w), 0);
	build(&b, "old", "1", 1);
	cr_assert_eq(old->put_series(w, &b.in), 0);
	cr_assert_eq(old->commit(&w, &info), 0);
	cr_assert_eq(info.series, 1);
	old->close(&a);
	cr_assert_null(a);
}

Test(abi, api_has_on_a_shortened_table)
{
	struct snaparc_api copy = *api;

	cr_assert(SNAPARC_API_HAS(&copy, verify));
	copy.size = (uint32_t)offsetof(struct snaparc_api, verify);
	cr_assert(!SNAPARC_API_HAS(&copy, verify), "a table ending before verify has no verify");
	cr_assert(SNAPARC_API_HAS(&copy, stat));
	copy.size = (uint32_t)(offsetof(struct snaparc_api, verify) + sizeof(copy.verify) - 1);
	cr_assert(!SNAPARC_API_HAS(&copy, verify), "a field must fit whole");
	copy.size = (uint32_t)offsetof(struct snaparc_api, select);
	cr_assert(!SNAPARC_API_HAS(&copy, select));
	cr_assert(!SNAPARC_API_HAS(&copy, restore));
	cr_assert(SNAPARC_API_HAS(&copy, read_labels));
	copy.size = (uint32_t)sizeof(copy);
	copy.history = NULL;
	cr_assert(!SNAPARC_API_HAS(&copy, history), "a NULL entry is absent");

	/* A host of a newer minor, with a function after verify: it checks the
	 * plugin's size before calling it (what SNAPARC_API_HAS does for fields
	 * it knows of). */
	struct newer_api {
		struct snaparc_api known;
		int (*future)(snaparc_archive *a);
	};
	cr_assert_lt(api->size, offsetof(struct newer_api, future) + sizeof(int (*)(snaparc_archive *)),
		     "this plugin's table ends before a newer host's additions");
}

/* Structs of an older host are shorter: the plugin writes only as far as
 * their size says and reads no further. */
Test(abi, older_host_structs)
{
	/* 1.0 is the first ABI: its structs are the smallest a plugin must take */
	struct snaparc_open_options small_opts = { .size = offsetof(struct snaparc_open_options, sync),
						   .flags = SNAPARC_OPEN_CREATE };
	union {
		struct snaparc_snapshot_info info;
		uint8_t bytes[sizeof(struct snaparc_snapshot_info)];
	} info;
	union {
		struct snaparc_series s;
		uint8_t bytes[sizeof(struct snaparc_series)];
	} series;
	size_t info_size = offsetof(struct snaparc_snapshot_info, source_bytes);
	size_t series_size = offsetof(struct snaparc_series, deleted);
	snaparc_archive *a = NULL;
	snaparc_result *r = NULL;

	cr_assert_eq(api->open(&a, path_in_tmp("older"), &small_opts), 0, "open options of an older host");
	put_built(a, "s1", "older", 2);

	memset(&info, 0xa5, sizeof(info));
	info.info.size = (uint32_t)info_size;
	expect_ok(a, api->snapshot_find(a, "latest", &info.info), "snapshot_find");
	cr_assert_eq(info.info.size, info_size, "size is the host's");
	cr_assert_str_eq(info.info.name, "s1");
	cr_assert_eq(info.info.series, 2);
	for (size_t i = info_size; i < sizeof(info); i++)
		cr_assert_eq(info.bytes[i], 0xa5, "byte %zu written past the host's struct (size %zu)", i, info_size);

	memset(&series, 0xa5, sizeof(series));
	cr_assert_eq(api->result_new(&r), 0);
	series.s.size = (uint32_t)series_size;
	{
		struct snaparc_label ls[3] = {
			{ "__name__", 8, "abi_test", 8 }, { "archive", 7, "older", 5 }, { "n", 1, "2", 1 }
		};
		expect_ok(a, api->read_labels(a, "s1", ls, 3, r, &series.s), "read_labels");
	}
	cr_assert_eq(series.s.size, series_size);
	cr_assert_eq(series.s.ref, 2);
	cr_assert_eq(series.s.nlabels, 3);
	for (size_t i = series_size; i < sizeof(series); i++)
		cr_assert_eq(series.bytes[i], 0xa5, "byte %zu written past the host's struct (size %zu)", i, series_size);

	/* a series_in that ends before last_value (the host knew no tail) is taken */
	{
		snaparc_writer *w = NULL;
		struct built b;

		build(&b, "older", "3", 3);
		b.in.size = (uint32_t)offsetof(struct snaparc_series_in, last_value);
		expect_ok(a, api->begin(a, "s2", 0, &w), "begin");
		expect_ok(a, api->put_series(w, &b.in), "put_series of an older size");
		b.in.size = 4;
		cr_assert_eq(api->put_series(w, &b.in), SNAPARC_INVALID, "a size that holds nothing");
		api->abort(&w);
		cr_assert_null(w);
	}
	api->result_free(&r);
	api->close(&a);
}

/* ---- bad calls ---- */

static int on_series(void *ctx, const struct snaparc_snapshot_info *snap, const struct snaparc_series *s)
{
	(void)snap;
	(void)s;
	++*(int *)ctx;
	return 0;
}

static int on_problem(void *ctx, int status, const char *message)
{
	(void)status;
	(void)message;
	++*(int *)ctx;
	return 0;
}

#define INVALID(call) cr_assert_eq((call), SNAPARC_INVALID, "%s", #call)

/* Every function with a NULL (or closed: NULL again) handle. */
static void all_refuse(snaparc_archive *a, snaparc_writer *w, snaparc_result *r)
{
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series s = { .size = sizeof(s) };
	struct snaparc_stat st = { .size = sizeof(st) };
	struct snaparc_label l = { "job", 3, "x", 1 };
	struct snaparc_record rec = { (const uint8_t *)"\x01", 1 };
	uint64_t ref = 1;
	struct built b;
	snaparc_writer *w2 = NULL;
	char buf[64];
	int n = 0;

	build(&b, "x", "1", 1);
	INVALID(api->begin(a, "x", 0, &w2));
	cr_assert_null(w2);
	INVALID(api->put_records(w, &rec, 1));
	INVALID(api->put_wal(w, (const uint8_t *)"x", 1, 0));
	INVALID(api->put_series(w, &b.in));
	INVALID(api->commit(&w, &info));
	INVALID(api->commit(NULL, &info));
	api->abort(&w);
	api->abort(NULL);
	INVALID(api->import(a, tmp, NULL, &info, NULL, NULL));
	INVALID(api->snapshot_find(a, "latest", &info));
	INVALID(api->snapshot_next(a, 0, &info));
	INVALID(api->snapshot_remove(a, "latest"));
	INVALID(api->read_ref(a, "latest", 1, r, &s));
	INVALID(api->read_labels(a, "latest", &l, 1, r, &s));
	INVALID(api->select(a, "latest", "{job=\"x\"}", on_series, &n));
	INVALID(api->history(a, &l, 1, on_series, &n));
	INVALID(api->restore(a, "latest", NULL, path_in_tmp("restored"), NULL, NULL));
	INVALID(api->restore_refs(a, "latest", &ref, 1, path_in_tmp("restored"), NULL, NULL));
	INVALID(api->stat(a, &st));
	INVALID(api->verify(a, on_problem, &n, NULL, NULL));
	cr_assert_eq(n, 0, "no callback on a refused call");
	api->last_error(a, buf, sizeof(buf));
	api->last_error(a, NULL, 0);
	api->close(&a);
	api->close(NULL);
	api->result_free(NULL);
}

Test(abi, null_handles_are_invalid)
{
	snaparc_result *r = NULL;

	all_refuse(NULL, NULL, NULL);
	cr_assert_eq(api->result_new(&r), 0);
	all_refuse(NULL, NULL, r);   /* a good result, no archive */
	api->result_free(&r);
	cr_assert_null(r, "result_free sets the pointer to NULL");
	api->result_free(&r);
}

Test(abi, closed_handles_are_invalid)
{
	snaparc_archive *a = open_new("closed");
	snaparc_writer *w = NULL;
	snaparc_result *r = NULL;

	put_built(a, "s1", "closed", 1);
	expect_ok(a, api->begin(a, "s2", 0, &w), "begin");
	api->abort(&w);
	cr_assert_null(w, "abort sets the writer to NULL");
	api->abort(&w);
	cr_assert_eq(api->result_new(&r), 0);
	api->close(&a);
	cr_assert_null(a, "close sets the handle to NULL");
	all_refuse(a, w, r);
	api->result_free(&r);
}

Test(abi, null_arguments_are_invalid)
{
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series s = { .size = sizeof(s) };
	struct snaparc_label l = { "job", 3, "x", 1 };
	snaparc_archive *a = open_new("nulls"), *b = NULL;
	snaparc_writer *w = NULL;
	snaparc_result *r = NULL;
	uint64_t ref = 1;
	char msg[256];
	int n = 0;

	put_built(a, "s1", "nulls", 1);
	cr_assert_eq(api->result_new(&r), 0);

	INVALID(api->open(NULL, path_in_tmp("x"), NULL));
	INVALID(api->open(&b, NULL, NULL));
	api->close(&b);   /* a failed open may leave a handle with the reason */
	cr_assert_null(b);
	INVALID(api->result_new(NULL));
	INVALID(api->begin(a, NULL, 0, &w));
	INVALID(api->begin(a, "x", 0, NULL));
	INVALID(api->snapshot_find(a, NULL, &info));
	INVALID(api->snapshot_find(a, "latest", NULL));
	INVALID(api->snapshot_next(a, 0, NULL));
	INVALID(api->snapshot_remove(a, NULL));
	INVALID(api->read_ref(a, "latest", 1, NULL, &s));
	INVALID(api->read_ref(a, "latest", 1, r, NULL));
	INVALID(api->read_labels(a, "latest", NULL, 1, r, &s));
	INVALID(api->read_labels(a, "latest", &l, 1, NULL, &s));
	INVALID(api->read_labels(a, "latest", &l, 1, r, NULL));
	INVALID(api->select(a, "latest", NULL, on_series, &n));
	INVALID(api->select(a, "latest", "{job=\"x\"}", NULL, &n));
	INVALID(api->history(a, NULL, 1, on_series, &n));
	INVALID(api->history(a, &l, 1, NULL, &n));
	INVALID(api->restore(a, "latest", NULL, NULL, NULL, NULL));
	INVALID(api->restore_refs(a, "latest", NULL, 1, path_in_tmp("r"), NULL, NULL));
	INVALID(api->restore_refs(a, "latest", &ref, 1, NULL, NULL, NULL));
	INVALID(api->import(a, NULL, NULL, &info, NULL, NULL));
	INVALID(api->stat(a, NULL));
	cr_assert_gt(api->last_error(a, msg, sizeof(msg)), 0, "a refusal leaves a message");
	cr_log_info("last refusal: %s", msg);

	expect_ok(a, api->begin(a, "s2", 0, &w), "begin");
	INVALID(api->put_records(w, NULL, 1));
	INVALID(api->put_wal(w, NULL, 5, 0));
	INVALID(api->put_series(w, NULL));
	{
		struct built bad;
		build(&bad, "nulls", "2", 2);
		bad.in.labels = NULL;
		INVALID(api->put_series(w, &bad.in));
	}
	api->abort(&w);
	cr_assert_eq(n, 0);
	api->result_free(&r);
	api->close(&a);
}

Test(abi, failed_open_keeps_the_reason)
{
	snaparc_archive *a = NULL;
	char msg[512] = "";
	int st;

	mkdir(path_in_tmp("not-an-archive"), 0755);
	fclose(fopen(path_in_tmp("not-an-archive/file"), "w"));
	st = api->open(&a, path_in_tmp("not-an-archive"), NULL);
	cr_assert_eq(st, SNAPARC_NOT_FOUND, "a directory that is not an archive: %s", api->strerror(st));
	cr_assert_not_null(a, "the handle carries the reason");
	cr_assert_gt(api->last_error(a, msg, sizeof(msg)), 0);
	cr_log_info("open refused: %s", msg);
	INVALID(api->snapshot_next(a, 0, &(struct snaparc_snapshot_info){ .size = sizeof(struct snaparc_snapshot_info) }));
	api->close(&a);
	cr_assert_null(a);
	cr_assert_eq(access(path_in_tmp("not-an-archive/file"), F_OK), 0, "left untouched");
}

/* ---- archives ---- */

Test(abi, two_archives_at_once)
{
	snaparc_archive *a = open_new("a"), *b = open_new("b");
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series s;
	snaparc_writer *wa = NULL, *wb = NULL;
	snaparc_result *r = NULL;
	char msg[512];

	/* both writers open at once, their puts interleaved */
	expect_ok(a, api->begin(a, "snap-a", 0, &wa), "begin a");
	expect_ok(b, api->begin(b, "snap-b", 0, &wb), "begin b");
	for (int i = 1; i <= 50; i++) {
		struct built x, y;
		char num[16];
		snprintf(num, sizeof(num), "%d", i);
		build(&x, "a", num, (uint64_t)i);
		expect_ok(a, api->put_series(wa, &x.in), "put a");
		if (i % 2) {
			build(&y, "b", num, (uint64_t)i);
			expect_ok(b, api->put_series(wb, &y.in), "put b");
		}
	}
	expect_ok(b, api->commit(&wb, &info), "commit b");
	cr_assert_eq(info.series, 25);
	cr_assert_str_eq(info.name, "snap-b");
	expect_ok(a, api->commit(&wa, &info), "commit a");
	cr_assert_eq(info.series, 50);
	cr_assert_str_eq(info.name, "snap-a");

	cr_assert_eq(api->result_new(&r), 0);
	expect_ok(a, read_built(a, "latest", "a", "2", &s, r), "read a");
	cr_assert_eq(s.ref, 2);
	cr_assert_eq(read_built(b, "latest", "b", "2", &s, r), SNAPARC_NOT_FOUND, "b has only odd n");
	cr_assert_gt(api->last_error(b, msg, sizeof(msg)), 0);
	cr_assert_eq(read_built(b, "latest", "a", "1", &s, r), SNAPARC_NOT_FOUND, "a's series are not in b");
	expect_ok(b, read_built(b, "latest", "b", "49", &s, r), "read b");
	cr_assert_eq(s.ref, 49);
	cr_assert_eq(api->snapshot_find(a, "snap-b", &info), SNAPARC_NOT_FOUND);
	cr_assert_eq(api->snapshot_find(b, "snap-a", &info), SNAPARC_NOT_FOUND);

	/* a's error did not land on b */
	api->last_error(a, msg, sizeof(msg));
	cr_assert(strstr(msg, "snap-b"), "a's last error is its own: %s", msg);

	/* closing one leaves the other working */
	api->close(&a);
	expect_ok(b, read_built(b, "snap-b", "b", "1", &s, r), "read b after a closed");
	put_built(b, "snap-b2", "b", 3);
	api->result_free(&r);
	api->close(&b);
}

Test(abi, compact_through_the_table)
{
	snaparc_archive *a = open_new("compact");
	struct snaparc_compact_options o = { .size = sizeof(o), .keep_last = 2 };
	struct snaparc_compact_stats st = { .size = sizeof(st) };
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	struct snaparc_series s;
	snaparc_result *r = NULL;
	/* a host that knows only the first fields of the stats: the plugin
	 * writes no further than its size */
	struct {
		struct snaparc_compact_stats st;
		uint8_t sentinel[64];
	} old;

	put_built(a, "one", "x", 20);
	put_built(a, "two", "x", 20);
	put_built(a, "three", "x", 30);
	memset(&old, 0xa5, sizeof(old));
	old.st.size = (uint32_t)offsetof(struct snaparc_compact_stats, labels_shared);
	o.flags = SNAPARC_COMPACT_DRY_RUN;
	expect_ok(a, api->compact(a, &o, &old.st), "dry run");
	cr_assert_eq(old.st.snapshots_kept, 2);
	cr_assert_eq(old.st.snapshots_dropped, 1);
	for (size_t i = offsetof(struct snaparc_compact_stats, labels_shared); i < sizeof(old); i++)
		cr_assert_eq(((uint8_t *)&old)[i], 0xa5, "byte %zu past the host's stats was written", i);
	cr_assert_eq(api->snapshot_find(a, "one", &info), 0, "a dry run dropped a snapshot");

	o.flags = 0;
	expect_ok(a, api->compact(a, &o, &st), "compact");
	cr_assert_eq(st.snapshots_kept, 2);
	cr_assert_eq(st.snapshots_dropped, 1);
	cr_assert_eq(st.records_shared, 20, "the 20 series two and three share are stored once");
	cr_assert_eq(api->snapshot_find(a, "one", &info), SNAPARC_NOT_FOUND);
	cr_assert_eq(api->result_new(&r), 0);
	expect_ok(a, read_built(a, "two", "x", "7", &s, r), "read two");
	cr_assert_eq(s.ref, 7);
	expect_ok(a, read_built(a, "three", "x", "30", &s, r), "read three");
	cr_assert_eq(s.ref, 30);
	api->result_free(&r);

	o.flags = 0x80;
	cr_assert_eq(api->compact(a, &o, NULL), SNAPARC_INVALID, "unknown flags are refused");
	expect_ok(a, api->compact(a, NULL, NULL), "compact without options");
	api->close(&a);
}

static int count_problem(void *ctx, int status, const char *message)
{
	(void)status, (void)message;
	(*(int *)ctx)++;
	return 0;
}

Test(abi, verify_deep_through_the_table)
{
	snaparc_archive *a = open_new("verify");
	int problems = 0;

	put_built(a, "one", "x", 20);
	expect_ok(a, api->verify_flags(a, SNAPARC_VERIFY_DEEP, count_problem, &problems, NULL, NULL), "deep verify");
	expect_ok(a, api->verify_flags(a, 0, count_problem, &problems, NULL, NULL), "verify");
	cr_assert_eq(problems, 0);
	cr_assert_eq(api->verify_flags(a, 0x40, count_problem, &problems, NULL, NULL), SNAPARC_INVALID,
		     "unknown flags are refused");
	api->close(&a);
}

Test(abi, second_writer_is_busy)
{
	snaparc_archive *a = open_new("busy");
	snaparc_writer *w1 = NULL, *w2 = NULL;

	expect_ok(a, api->begin(a, "first", 0, &w1), "begin");
	cr_assert_eq(api->begin(a, "second", 0, &w2), SNAPARC_BUSY, "one writer per archive");
	cr_assert_null(w2);
	api->abort(&w1);
	expect_ok(a, api->begin(a, "second", 0, &w2), "begin after the first writer is gone");
	api->abort(&w2);
	api->close(&a);
}

/* Readers on threads through one handle, each with its own result, while
 * the archive takes a new snapshot. */
struct reader {
	snaparc_archive *a;
	int bad;
};

static void *read_many(void *arg)
{
	struct reader *rd = arg;
	snaparc_result *r = NULL;
	struct snaparc_series s;

	if (api->result_new(&r))
		return (rd->bad = 1, NULL);
	for (int k = 0; k < 400; k++) {
		char num[16];
		int n = k % 40 + 1;
		snprintf(num, sizeof(num), "%d", n);
		if (read_built(rd->a, "base", "threads", num, &s, r) || s.ref != (uint64_t)n || s.nlabels != 3 ||
		    s.labels[2].value_len != strlen(num) || memcmp(s.labels[2].value, num, strlen(num)) != 0)
			rd->bad++;
		s.size = sizeof(s);
		if (api->read_ref(rd->a, "base", (uint64_t)n, r, &s) || s.ref != (uint64_t)n)
			rd->bad++;
	}
	api->result_free(&r);
	return NULL;
}

Test(abi, readers_on_threads)
{
	snaparc_archive *a = open_new("threads");
	struct reader rd[4];
	pthread_t th[4];

	put_built(a, "base", "threads", 40);
	for (int i = 0; i < 4; i++) {
		rd[i] = (struct reader){ a, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, read_many, &rd[i]), 0);
	}
	put_built(a, "while-reading", "threads", 40);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(rd[i].bad, 0, "reader %d got %d wrong answers", i, rd[i].bad);
	}
	api->close(&a);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n);
	cr_assert_not_null(p);
	cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* The bundled snapshot, imported from its directory and streamed from
 * memory in pieces of every awkward size: the same snapshot. */
Test(abi, put_wal_in_pieces_equals_import)
{
	static const size_t pieces[] = { 1, 2, 3, 7, 31, 32767, 32768, 32769, 65536, 100000 };
	struct snaparc_snapshot_info imported = { .size = sizeof(imported) }, streamed = { .size = sizeof(streamed) };
	struct snaparc_label ls[4] = {
		{ "__name__", 8, "app_flaky", 9 }, { "id", 2, "0", 1 },
		{ "instance", 8, "127.0.0.1:45825", 15 }, { "job", 3, "synthetic", 9 },
	};
	struct snaparc_series s1 = { .size = sizeof(s1) }, s2 = { .size = sizeof(s2) };
	snaparc_archive *a = open_new("wal");
	snaparc_result *r1 = NULL, *r2 = NULL;
	snaparc_writer *w = NULL;
	size_t len, off = 0;
	uint8_t *bytes = slurp(SNAPARC_TEST_SNAPSHOT "/00000000", &len);

	expect_ok(a, api->import(a, SNAPARC_TEST_SNAPSHOT, NULL, &imported, NULL, NULL), "import");
	expect_ok(a, api->begin(a, "streamed", len, &w), "begin");
	for (size_t i = 0; off < len; i++) {
		size_t n = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];
		if (n > len - off)
			n = len - off;
		expect_ok(a, api->put_wal(w, bytes + off, n, off + n == len), "put_wal");
		off += n;
	}
	expect_ok(a, api->commit(&w, &streamed), "commit");
	free(bytes);

	cr_assert_eq(streamed.id, imported.id + 1);
	cr_assert_eq(streamed.series, imported.series);
	cr_assert_eq(streamed.records, imported.records);
	cr_assert_eq(streamed.tombstones, imported.tombstones);
	cr_assert_eq(streamed.exemplars, imported.exemplars);
	cr_assert_eq(streamed.raw_bytes, imported.raw_bytes);
	cr_assert_gt(imported.series, 500);

	cr_assert_eq(api->result_new(&r1), 0);
	cr_assert_eq(api->result_new(&r2), 0);
	expect_ok(a, api->read_labels(a, imported.name, ls, 4, r1, &s1), "read imported");
	expect_ok(a, api->read_labels(a, "streamed", ls, 4, r2, &s2), "read streamed");
	cr_assert_eq(s1.record_len, s2.record_len);
	cr_assert_eq(memcmp(s1.record, s2.record, s1.record_len), 0, "the same record bytes");
	cr_assert(s1.has_chunk && s1.chunk_len >= 2);
	cr_assert_eq(s1.chunk[0] << 8 | s1.chunk[1], 29, "app_flaky{id=\"0\"} holds 29 samples");
	cr_assert_eq(s1.nlabels, 4);
	cr_assert_eq(memcmp(s1.labels[3].value, "synthetic", 9), 0);
	api->result_free(&r1);
	api->result_free(&r2);
	api->close(&a);
}

/* The plugin's path comes first; criterion's options after it. The path
 * travels in the environment: criterion runs each test in a new process. */
int main(int argc, char **argv)
{
	struct criterion_test_set *tests;
	int rc = 1;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s PLUGIN.so [criterion options]\n", argv[0]);
		return 2;
	}
	setenv(PLUGIN_ENV, argv[1], 1);
	argv[1] = argv[0];
	tests = criterion_initialize();
	if (criterion_handle_args(argc - 1, argv + 1, true))
		rc = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return rc;
}
