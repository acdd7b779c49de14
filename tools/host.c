#include "host.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TRIED 5
#define REASON_MAX 600

struct candidate {
	char path[PATH_MAX];
	const char *source;      /* where the path came from, for the message */
	int explicit_choice;     /* --plugin or SNAPARC_PLUGIN: the only one tried */
	char reason[REASON_MAX]; /* why it was not used */
};

static const char *plugin_path;        /* --plugin */
static const struct snaparc_api *api;  /* once loaded */

void host_set_plugin_path(const char *path)
{
	plugin_path = path;
}

/* Adds the candidate DIR/FILE (dir NULL: FILE alone). */
static void add(struct candidate *c, size_t *n, const char *source, int explicit_choice, const char *dir,
		const char *file)
{
	struct candidate *k;
	int len;

	if (*n >= MAX_TRIED)
		return;
	k = &c[*n];
	if (dir)
		len = snprintf(k->path, sizeof(k->path), "%s/%s", dir, file);
	else /* dlopen searches the library path for a name without a slash: a file here is meant */
		len = snprintf(k->path, sizeof(k->path), "%s%s", strchr(file, '/') ? "" : "./", file);
	if (len < 0 || len >= (int)sizeof(k->path))
		return;
	k->source = source;
	k->explicit_choice = explicit_choice;
	k->reason[0] = '\0';
	(*n)++;
}

/* The places to look, in order (see host.h). */
static size_t candidates(struct candidate *c)
{
	const char *env = getenv("SNAPARC_PLUGIN");
	char exe[PATH_MAX], *slash = NULL;
	ssize_t len;
	size_t n = 0;

	if (plugin_path) {
		add(c, &n, "--plugin", 1, NULL, plugin_path);
		return n;
	}
	if (env && *env) {
		add(c, &n, "SNAPARC_PLUGIN", 1, NULL, env);
		return n;
	}
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL) {
			*slash = '\0';
			add(c, &n, "beside the command", 0, exe, HOST_PLUGIN_NAME);
			add(c, &n, "the build tree", 0, exe, "../plugin/" HOST_PLUGIN_NAME);
		}
	}
#ifdef SNAPARC_PLUGIN_FROM_BINDIR
	/* an installed tree moved elsewhere: the plugin where it lies from bin/ */
	if (len > 0 && slash && strlen(SNAPARC_PLUGIN_FROM_BINDIR) > 0)
		add(c, &n, "installed, from the command", 0, exe, SNAPARC_PLUGIN_FROM_BINDIR);
#endif
#ifdef SNAPARC_PLUGIN_INSTALL_PATH
	if (strlen(SNAPARC_PLUGIN_INSTALL_PATH) > 0)
		add(c, &n, "installed", 0, NULL, SNAPARC_PLUGIN_INSTALL_PATH);
#endif
	return n;
}

/* Loads the plugin at c->path: its table, or NULL with c->reason set. */
static const struct snaparc_api *load(struct candidate *c)
{
	const struct snaparc_api *t;
	snaparc_entry_fn entry;
	const char *why = NULL;
	const char *err;
	void *so, *sym;

	dlerror();
	if (!(so = dlopen(c->path, RTLD_NOW | RTLD_LOCAL))) {
		err = dlerror();
		snprintf(c->reason, sizeof(c->reason), "%s", err ? err : "dlopen failed");
		return NULL;
	}
	dlerror();
	sym = dlsym(so, SNAPARC_ENTRY_SYMBOL);
	if (!sym) {
		err = dlerror();
		snprintf(c->reason, sizeof(c->reason), "no entry %s: %s", SNAPARC_ENTRY_SYMBOL,
			 err ? err : "the symbol is NULL");
		goto fail;
	}
	/* POSIX guarantees a data pointer from dlsym can hold a function's address */
	_Static_assert(sizeof(entry) == sizeof(sym), "function and data pointers differ in size");
	memcpy(&entry, &sym, sizeof(entry));
	t = entry(SNAPARC_ABI_VERSION, &why);
	if (!t) {
		snprintf(c->reason, sizeof(c->reason), "incompatible with this snaparc (ABI %u.%u): %s",
			 SNAPARC_ABI_MAJOR, SNAPARC_ABI_MINOR, why ? why : "the plugin gave no reason");
		goto fail;
	}
	if (t->abi_major != SNAPARC_ABI_MAJOR) {
		snprintf(c->reason, sizeof(c->reason), "incompatible: its ABI is %u.%u, this snaparc's %u.%u",
			 t->abi_major, t->abi_minor, SNAPARC_ABI_MAJOR, SNAPARC_ABI_MINOR);
		goto fail;
	}
#define NEED(f)                                                                                              \
	if (!SNAPARC_API_HAS(t, f)) {                                                                        \
		snprintf(c->reason, sizeof(c->reason), "incompatible: its table (ABI %u.%u, %u bytes) lacks %s", \
			 t->abi_major, t->abi_minor, t->size, #f);                                           \
		goto fail;                                                                                   \
	}
	NEED(strerror) NEED(open) NEED(close) NEED(last_error) NEED(import) NEED(snapshot_find)
	NEED(snapshot_next) NEED(result_new) NEED(result_free) NEED(read_ref) NEED(select) NEED(history)
	NEED(restore) NEED(stat)
#undef NEED
	return t;
fail:
	dlclose(so);
	return NULL;
}

const struct snaparc_api *host_api(const char *cmd)
{
	struct candidate c[MAX_TRIED];
	size_t n, tried = 0;
	int none_there = 1;

	if (api)
		return api;
	n = candidates(c);
	for (size_t i = 0; i < n; i++) {
		tried = i + 1;
		if (!c[i].explicit_choice && access(c[i].path, F_OK) != 0) {
			snprintf(c[i].reason, sizeof(c[i].reason), "%s", strerror(errno));
			continue;
		}
		none_there = 0;
		if ((api = load(&c[i])) != NULL)
			return api;
		break;
	}
	fprintf(stderr, "snaparc %s: cannot load the plugin %s; tried:\n", cmd, HOST_PLUGIN_NAME);
	for (size_t i = 0; i < tried; i++)
		fprintf(stderr, "  %s (%s): %s\n", c[i].path, c[i].source, c[i].reason);
	if (!n)
		fputs("  nowhere: the command's own path is unknown\n", stderr);
	if (none_there)
		fputs("  (pass --plugin PATH before the subcommand, or set SNAPARC_PLUGIN)\n", stderr);
	return NULL;
}

/* The plugin's message for the last failure on a, or NULL (caller frees). */
static char *last_error(snaparc_archive *a)
{
	char small[1024], *msg;
	size_t len;

	if (!a)
		return NULL;
	len = api->last_error(a, small, sizeof(small));
	if (!len)
		return NULL;
	if (!(msg = malloc(len + 1)))
		return strdup(small);
	if (len < sizeof(small))
		memcpy(msg, small, len + 1);
	else
		api->last_error(a, msg, len + 1);
	return msg;
}

void host_report(const char *cmd, snaparc_archive *a, int rc, const char *what)
{
	char *msg = last_error(a);

	fprintf(stderr, "snaparc %s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "",
		msg ? msg : api->strerror(rc));
	free(msg);
}

const char *host_archive_path;

int host_open(const char *cmd, const char *path, uint32_t flags, uint32_t sync, snaparc_archive **out)
{
	struct snaparc_open_options o = { .size = sizeof(o), .flags = flags, .sync = sync };
	int rc;

	*out = NULL;
	host_archive_path = path;
	rc = api->open(out, path, &o);
	if (rc) {
		/* a failed open leaves a handle that only carries why (plugin.h),
		 * unless memory ran out: then the status's name */
		char *msg = last_error(*out);

		if (msg)
			fprintf(stderr, "snaparc %s: %s\n", cmd, msg);
		else
			fprintf(stderr, "snaparc %s: %s: %s\n", cmd, path, api->strerror(rc));
		free(msg);
		if (*out)
			api->close(out);
		*out = NULL;
	}
	return rc;
}
