/*
 * snaparc: the command-line tool. Each subcommand lives in its own file.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "out.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} commands[] = {
	{ "import", cmd_import, "archive Prometheus chunk snapshots" },
	{ "ls", cmd_ls, "list the archived snapshots" },
	{ "lookup", cmd_lookup, "print one series of an archived snapshot" },
	{ "restore", cmd_restore, "write an archived snapshot back out for Prometheus" },
	{ "stat", cmd_stat, "sizes of an archive and its ratio to the snapshots" },
	{ "dump", cmd_dump, "print the records of a Prometheus chunk snapshot" },
};

static void usage(FILE *f)
{
	fputs("usage: snaparc COMMAND [OPTIONS] ...\n\ncommands:\n", f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
	fputs("\n'snaparc COMMAND --help' describes each.\n", f);
}

int main(int argc, char **argv)
{
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
