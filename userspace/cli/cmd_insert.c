// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl insert, restore: put the sxm target under a device-mapper device
 * that is in use (an LVM logical volume, any dm device), and take it out
 * again, without its openers noticing.  The work is in insert.c.
 */
#include <getopt.h>
#include <stdio.h>

#include "base/sxm.h"
#include "cli/cmds.h"
#include "cli/cli.h"
#include "dm/insert.h"

int cmd_insert(int argc, char **argv)
{
	struct sxm_inserted ins;
	const char *cmd = argv[0];
	uint64_t region;
	bool track, done;
	char b1[32], err[1024];
	int r;

	r = cli_target_args(argc, argv, 1, &region, &track, &done);
	if (done)
		return r;
	if (sxm_insert(argv[optind], region, track, &ins, err, sizeof(err))) {
		cli_print_msgs(cmd, err);
		return EXIT_FAIL;
	}
	printf("%s: sxm inserted, original table on %s (%u:%u), %s regions, %s\n",
	       ins.name, ins.hidden, ins.hidden_major, ins.hidden_minor,
	       fmt_size(region << SECTOR_SHIFT, b1, sizeof(b1)),
	       track ? "tracking" : "passthrough");
	return cli_flush_stdout(cmd);
}

int cmd_restore(int argc, char **argv)
{
	char name[SXM_DM_NAME_MAX + 1], err[1024];
	const char *cmd = argv[0];
	bool force, done;
	int r;

	r = cli_flag_args(argc, argv, 1, "force", &force, &done);
	if (done)
		return r;
	if (sxm_restore(argv[optind], force, name, sizeof(name), err,
			sizeof(err))) {
		cli_print_msgs(cmd, err);
		return EXIT_FAIL;
	}
	printf("%s: original table restored\n", name);
	return cli_flush_stdout(cmd);
}
