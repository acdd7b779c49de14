/*
 * host: the snaparc command as a host of the plugin snaparc.so, like any
 * other (include/snaparc/plugin.h): it loads the shared object with
 * dlopen(RTLD_NOW | RTLD_LOCAL) and does every archive operation through
 * the table the plugin's entry returns.
 *
 * Where the plugin is looked for, in this order:
 *   1. --plugin PATH, the global option before the subcommand;
 *   2. the environment variable SNAPARC_PLUGIN;
 *   3. beside the command: DIR/snaparc.so, then DIR/../plugin/snaparc.so
 *      (the build tree: build/tools/snaparc and build/plugin/snaparc.so),
 *      DIR being the directory of /proc/self/exe;
 *   4. the installed one, where the build says (plugin/CMakeLists.txt):
 *      DIR/SNAPARC_PLUGIN_FROM_BINDIR (an installed tree moved elsewhere),
 *      then SNAPARC_PLUGIN_INSTALL_PATH.
 * A path given by 1 or 2 is the only one tried. Of 3 and 4, the first that
 * exists is loaded; if it cannot be, that is the error (no other is tried,
 * so a broken plugin is never silently replaced by another).
 *
 * The plugin is loaded on first use, so that subcommands without an archive
 * (dump, --help) run without it.
 */
#ifndef SNAPARC_TOOLS_HOST_H
#define SNAPARC_TOOLS_HOST_H

#include <stddef.h>
#include <stdint.h>

#include <snaparc/plugin.h>

/* The file name of the plugin. */
#define HOST_PLUGIN_NAME "snaparc.so"

/* Sets the path given by --plugin (borrowed: argv outlives the process's use of it). */
void host_set_plugin_path(const char *path);

/*
 * The plugin's table, loaded on the first call (later calls return the
 * same table). On failure prints "snaparc CMD: ..." naming every path
 * tried with dlerror() or the entry's reason, and returns NULL; the
 * command then exits EXIT_ERROR.
 */
const struct snaparc_api *host_api(const char *cmd);

/*
 * Opens the archive at path through the loaded table (host_api() must have
 * succeeded) with flags (enum snaparc_open_flags) and sync (enum
 * snaparc_sync). On failure prints "snaparc CMD: <message>" (the plugin's
 * last_error() of the handle a failed open leaves, which is closed here)
 * and returns the status; *out is then NULL. Close with api->close().
 */
int host_open(const char *cmd, const char *path, uint32_t flags, uint32_t sync, snaparc_archive **out);
/* The archive host_open() last opened (for messages from signal handlers). */
extern const char *host_archive_path;

/*
 * Prints "snaparc CMD: [WHAT: ]<message>" for the failure rc of a call on
 * a: the message is the plugin's last_error() for a, or the status's name
 * (api->strerror) when there is none. what may be NULL.
 */
void host_report(const char *cmd, snaparc_archive *a, int rc, const char *what);

#endif
