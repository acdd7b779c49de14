/*
 * snaparc-crash-import: imports one chunk snapshot directory through
 * snaparc.so as any host does (dlopen, the entry point, api->import), with
 * a segment size of the caller's choosing, so that the crash campaigns
 * (test-crash.sh, test-powerloss.sh) can make an import roll over to new
 * segments without a snapshot of 128 MiB. The `snaparc` command has no
 * option for the segment size; otherwise this is `snaparc import --name`.
 *
 *   snaparc-crash-import PLUGIN ARCHIVE SNAPSHOT_DIR NAME SEGMENT_BYTES
 *
 * Prints "committed ID NAME" and exits 0 once the commit returned; else
 * prints the plugin's message and exits 1 (2: usage, 3: no plugin).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snaparc/plugin.h"

int main(int argc, char **argv)
{
	struct snaparc_open_options o = { .size = sizeof(o), .flags = SNAPARC_OPEN_CREATE };
	struct snaparc_snapshot_info info = { .size = sizeof(info) };
	const struct snaparc_api *api;
	snaparc_entry_fn entry;
	snaparc_archive *a = NULL;
	const char *why = "";
	char msg[1024];
	void *so, *sym;
	int rc;

	if (argc != 6) {
		fprintf(stderr, "usage: snaparc-crash-import PLUGIN ARCHIVE SNAPSHOT_DIR NAME SEGMENT_BYTES\n");
		return 2;
	}
	o.segment_size = strtoull(argv[5], NULL, 10);
	if (!(so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) || !(sym = dlsym(so, SNAPARC_ENTRY_SYMBOL))) {
		fprintf(stderr, "snaparc-crash-import: %s\n", dlerror());
		return 3;
	}
	memcpy(&entry, &sym, sizeof(entry));
	if (!(api = entry(SNAPARC_ABI_VERSION, &why)) || !SNAPARC_API_HAS(api, import)) {
		fprintf(stderr, "snaparc-crash-import: %s: %s\n", argv[1], why ? why : "no import");
		return 3;
	}
	rc = api->open(&a, argv[2], &o);
	if (!rc)
		rc = api->import(a, argv[3], argv[4], &info, NULL, NULL);
	if (rc) {
		if (a)
			api->last_error(a, msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "%s", api->strerror(rc));
		fprintf(stderr, "snaparc-crash-import: %s: %s\n", argv[2], msg);
		api->close(&a);
		return 1;
	}
	printf("committed %u %s\n", info.id, info.name);
	fflush(stdout);
	api->close(&a);
	return 0;
}
