/* The snaparc command's subcommands: each takes its own argv (argv[0] is its name). */
#ifndef SNAPARC_TOOLS_CMD_H
#define SNAPARC_TOOLS_CMD_H

int cmd_dump(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_compact(int argc, char **argv);

#endif
