// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl insert, restore: put the sxm target under a device-mapper device
 * that is in use (an LVM logical volume, any dm device), and take it out
 * again, without its openers noticing.  The work is in insert.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

#include "base/sxm.h"
#include "cli/cmds.h"
#include "cli/cli.h"
#include "dm/insert.h"

/* The size of DMNAME (a path, or a name in /dev/mapper). */
static int dev_bytes(const char *arg, uint64_t *bytes)
{
	char path[PATH_MAX];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s%s", arg[0] == '/' ? "" : "/dev/mapper/",
		 arg);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, bytes))
		r = -errno;
	close(fd);
	return r;
}

int cmd_insert(int argc, char **argv)
{
	struct sxm_inserted ins;
	struct sxm_meta_arg meta;
	const char *cmd = argv[0], *arg;
	uint64_t region, bytes = 0;
	bool track, done;
	char b1[32], err[1024];
	int r;

	r = cli_target_args(argc, argv, 1, &region, &track, &meta, &done);
	if (done)
		return r;
	arg = argv[optind];
	if (meta.path && !meta.source_id)
		meta.source_id = arg + (strncmp(arg, "/dev/", 5) ? 0 : 5);
	/* Checked here for a clear reason; a device not found: insert says. */
	if (meta.path && !dev_bytes(arg, &bytes)) {
		r = cli_meta_fits(cmd, arg, &meta, bytes >> SECTOR_SHIFT,
				  region);
		if (r)
			return r;
	}
	if (sxm_insert(arg, region, track, meta.path ? &meta : NULL, &ins,
		       err, sizeof(err))) {
		cli_print_msgs(cmd, err);
		return EXIT_FAIL;
	}
	printf("%s: sxm inserted, original table on %s (%u:%u), %s regions, %s%s%s\n",
	       ins.name, ins.hidden, ins.hidden_major, ins.hidden_minor,
	       fmt_size(region << SECTOR_SHIFT, b1, sizeof(b1)),
	       track ? "tracking" : "passthrough",
	       meta.path ? ", map kept on " : "", meta.path ? meta.path : "");
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
