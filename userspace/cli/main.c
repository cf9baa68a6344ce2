// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl: move a block device that is in use to another host's storage
 * over NBD.  This file is the command dispatch; each subcommand lives in a
 * cmd_*.c of its own.
 */
#include <stdio.h>
#include <string.h>

#include "base/sxm.h"
#include "cli/cmds.h"

const struct sxm_subcmd sxm_cmds[] = {
#include "cli/cmds.def"
	{ NULL, NULL, NULL, NULL },
};

static void usage(FILE *f)
{
	const struct sxm_subcmd *c;

	fprintf(f, "usage: sxm-ctl [-v] COMMAND [ARGS...]\n\ncommands:\n");
	for (c = sxm_cmds; c->name; c++)
		fprintf(f, "  %-10s %s\n  %-10s   %s\n", c->name, c->args, "",
			c->help);
	fprintf(f, "\nsxm-ctl COMMAND --help shows a command's options.\n");
}

int main(int argc, char **argv)
{
	const struct sxm_subcmd *c;

	while (argc > 1 && !strcmp(argv[1], "-v")) {
		sxm_verbose++;
		argv++;
		argc--;
	}
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (c = sxm_cmds; c->name; c++)
		if (!strcmp(c->name, argv[1]))
			return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "sxm-ctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
