/*
 * snaparc: the command-line tool. Each subcommand lives in its own file; the
 * ones that read or write an archive do it through the plugin snaparc.so
 * (host.h), which they load when they need it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "host.h"
#include "out.h"

/* The files this command maps are an archive's index/data.mdb (LMDB reads
 * it through mmap and trusts its page numbers) and its segments (delta
 * bases): a SIGBUS is a read past the end of one of them, which a damaged
 * index page, or a file cut short under the command, leads to. Say so and
 * exit "corrupt" rather than die of the signal. */
static void on_sigbus(int sig)
{
	static const char head[] = "snaparc: ", tail[] =
		": a read went past the end of a file of the archive (SIGBUS): index/data.mdb is damaged "
		"or a segment was cut short; snaparc verify names the damage\n";
	const char *arc = host_archive_path ? host_archive_path : "ARCHIVE";
	ssize_t unused = write(STDERR_FILENO, head, sizeof(head) - 1);

	unused = write(STDERR_FILENO, arc, strlen(arc));
	unused = write(STDERR_FILENO, tail, sizeof(tail) - 1);
	(void)sig, (void)unused;
	_exit(EXIT_CORRUPT);
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} commands[] = {
	{ "import", cmd_import, "archive Prometheus chunk snapshots" },
	{ "ls", cmd_ls, "list the archived snapshots" },
	{ "lookup", cmd_lookup, "print one series of an archived snapshot" },
	{ "restore", cmd_restore, "write an archived snapshot back out for Prometheus" },
	{ "verify", cmd_verify, "check every stored record against the index" },
	{ "rm", cmd_rm, "remove a snapshot from an archive" },
	{ "compact", cmd_compact, "drop old snapshots, store repeated data once, reclaim space" },
	{ "stat", cmd_stat, "sizes of an archive and its ratio to the snapshots" },
	{ "dump", cmd_dump, "print the records of a Prometheus chunk snapshot" },
};

static void usage(FILE *f)
{
	fputs("usage: snaparc [--plugin PATH] COMMAND [OPTIONS] ...\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
	fputs("\n'snaparc COMMAND --help' describes each.\n"
	      "\n"
	      "The archive commands run the plugin " HOST_PLUGIN_NAME ", taken from --plugin PATH, else\n"
	      "from $SNAPARC_PLUGIN, else beside this command (DIR/" HOST_PLUGIN_NAME " or\n"
	      "DIR/../plugin/" HOST_PLUGIN_NAME ")"
#ifdef SNAPARC_PLUGIN_INSTALL_PATH
	      ", else the installed one\n(" SNAPARC_PLUGIN_INSTALL_PATH ")"
#endif
	      ".\n", f);
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
	/* global options, before the subcommand */
	while (argc > 1 && !strncmp(argv[1], "--plugin", 8) && (argv[1][8] == '\0' || argv[1][8] == '=')) {
		if (argv[1][8] == '=' && argv[1][9]) {
			host_set_plugin_path(argv[1] + 9);
			argc--, argv++;
		} else if (argv[1][8] == '\0' && argc > 2 && argv[2][0]) {
			host_set_plugin_path(argv[2]);
			argc -= 2, argv += 2;
		} else {
			fputs("snaparc: --plugin needs a PATH\n", stderr);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("snaparc %s\n", SNAPARC_VERSION_STRING);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "snaparc: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
