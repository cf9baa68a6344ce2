/* SPDX-License-Identifier: GPL-2.0 */
/* The subcommands listed in cmds.def: their table and prototypes. */
#ifndef SXM_CMDS_H
#define SXM_CMDS_H

/*
 * A subcommand: main.c dispatches argv[1] to it with argv shifted so that
 * argv[0] is the subcommand's name.  It returns an EXIT_* status and has
 * printed whatever went wrong.
 */
struct sxm_subcmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;	/* one-line synopsis of the arguments */
	const char *help;	/* one line: what it does */
};

/* The command table, in main.c, from cmds.def. */
extern const struct sxm_subcmd sxm_cmds[];


#define SXM_SUBCMD(name, fn, args, help) int fn(int argc, char **argv);
#include "cli/cmds.def"
#undef SXM_SUBCMD

#endif /* SXM_CMDS_H */
