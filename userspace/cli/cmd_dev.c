// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl create, remove, status, harvest, track: an sxm device over a
 * block device, and what its target knows.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/sxm.h"
#include "base/buf.h"
#include "base/bitmap.h"
#include "cli/cmds.h"
#include "cli/cli.h"
#include "dm/dm.h"
#include "kdev/kdev.h"
#include "dm/insert.h"
#include "dm/status.h"

/* Explain a table the kernel refused. */
static void explain_refused(const char *cmd, const char *name,
			    const char *what, int err)
{
	if (err == -EINVAL && sxm_dm_has_target_type(SXM_TARGET_TYPE) == 0)
		sxm_err("%s %s: %s: dm-sxm module not loaded (device-mapper has no sxm target)",
			cmd, name, what);
	else if (err == -EINVAL)
		sxm_err("%s %s: %s: the kernel refused the table (its reason is in the kernel log)",
			cmd, name, what);
	else
		sxm_err("%s %s: %s: %s", cmd, name, what, sxm_dm_strerror(err));
}

/* ----------------------------------------------------------------------
 * create
 * ----------------------------------------------------------------------
 */

/* The device number and size of the block device at @path. */
static int block_dev(const char *path, dev_t *rdev, uint64_t *bytes)
{
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		r = -errno;
	else if (!S_ISBLK(st.st_mode))
		r = -ENOTBLK;
	else if (ioctl(fd, BLKGETSIZE64, bytes))
		r = -errno;
	else
		*rdev = st.st_rdev;
	close(fd);
	return r;
}

int cmd_create(int argc, char **argv)
{
	const char *cmd = argv[0], *name, *source;
	uint64_t region, bytes = 0;
	struct sxm_table tbl = { 0 };
	struct sxm_dm_info info;
	char params[SXM_PARAMS_MAX], b1[32], b2[32];
	struct sxm_meta_arg meta;
	bool track, done;
	dev_t rdev = 0;
	int r;

	r = cli_target_args(argc, argv, 2, &region, &track, &meta, &done);
	if (done)
		return r;
	name = argv[optind];
	source = argv[optind + 1];
	if (meta.path && !meta.source_id)
		meta.source_id = name;
	r = sxm_check_dm_name(name);
	if (r)
		return cli_usage(cmd, "'%s' cannot be a device-mapper name%s",
				 name, r == -ENAMETOOLONG ?
				 " (at most 127 bytes)" : "");

	r = block_dev(source, &rdev, &bytes);
	if (r) {
		sxm_err("%s %s: source %s: %s", cmd, name, source,
			r == -ENOTBLK ? "not a block device" : strerror(-r));
		return EXIT_FAIL;
	}
	if (bytes < (1U << SECTOR_SHIFT)) {
		sxm_err("%s %s: source %s is empty", cmd, name, source);
		return EXIT_FAIL;
	}
	r = sxm_dm_info(name, &info);
	if (!r && info.exists)
		r = -EEXIST;
	if (r) {
		sxm_err("%s %s: %s", cmd, name, r == -EEXIST ?
			"a device-mapper device of that name exists" :
			sxm_dm_strerror(r));
		return EXIT_FAIL;
	}
	if (meta.path && cli_meta_fits(cmd, name, &meta, bytes >> SECTOR_SHIFT,
				       region))
		return EXIT_FAIL;

	r = sxm_params_build(params, sizeof(params), major(rdev), minor(rdev),
			     region, track, meta.path ? &meta : NULL);
	if (!r)
		r = sxm_table_add(&tbl, 0, bytes >> SECTOR_SHIFT,
				  SXM_TARGET_TYPE, params);
	if (!r)
		r = sxm_dm_create(name, NULL, &tbl, 0);
	sxm_table_free(&tbl);
	if (r) {
		explain_refused(cmd, name, "create", r);
		return EXIT_FAIL;
	}
	printf("/dev/mapper/%s: sxm over %s (%u:%u), %s, %s regions, %s%s%s\n",
	       name, source, major(rdev), minor(rdev),
	       fmt_size(bytes & ~511ULL, b1, sizeof(b1)),
	       fmt_size(region << SECTOR_SHIFT, b2, sizeof(b2)),
	       track ? "tracking" : "passthrough",
	       meta.path ? ", map kept on " : "", meta.path ? meta.path : "");
	return cli_flush_stdout(cmd);
}

/* ----------------------------------------------------------------------
 * remove
 * ----------------------------------------------------------------------
 */

/* Whether the sxm target of @d sits over a device "sxm-ctl insert" made. */
static bool is_inserted(const struct cli_sxm_dev *d, char *hidden,
			size_t len)
{
	struct sxm_dm_info src;

	if (sxm_dm_info_dev(d->params.major, d->params.minor, &src) ||
	    !src.exists || strncmp(src.uuid, "SXM-ORIG-", 9))
		return false;
	snprintf(hidden, len, "%s", src.name);
	return true;
}

int cmd_remove(int argc, char **argv)
{
	const char *cmd = argv[0], *name;
	char hidden[SXM_DM_NAME_MAX + 1], err[512] = "";
	struct cli_sxm_dev d;
	unsigned int i;
	bool done;
	int r;

	r = cli_simple_args(argc, argv, 1, NULL, &done);
	if (done)
		return r;
	name = argv[optind];
	if (cli_get_sxm_dev(cmd, name, &d))
		return EXIT_FAIL;
	r = EXIT_FAIL;
	for (i = 0; i < d.table.nr; i++)
		if (strcmp(d.table.t[i].type, SXM_TARGET_TYPE)) {
			sxm_err("%s %s: not an sxm device (it has a %s target too)",
				cmd, name, d.table.t[i].type);
			goto out;
		}
	if (is_inserted(&d, hidden, sizeof(hidden))) {
		sxm_err("%s %s: sxm was inserted under it (the original table is on %s): use sxm-ctl restore %s",
			cmd, name, hidden, name);
		goto out;
	}
	/*
	 * With a metadata device, in use is refused before the track is ended
	 * (that stops tracking).  (Without one the remove retries: udev may
	 * hold a new device open for a moment.)
	 */
	if (d.params.has_meta && d.info.open_count) {
		sxm_err("%s %s: device is in use (open %d times)", cmd, name,
			d.info.open_count);
		goto out;
	}
	r = sxm_end_track(d.info.name, &d.table, err, sizeof(err));
	if (r) {
		cli_print_msgs(cmd, err);
		r = EXIT_FAIL;
		goto out;
	}
	r = sxm_dm_remove(d.info.name, true);
	if (r == -EBUSY) {
		struct sxm_dm_info now;

		if (!sxm_dm_info(d.info.name, &now) && now.exists)
			sxm_err("%s %s: device is in use (open %d times)",
				cmd, name, now.open_count);
		else
			sxm_err("%s %s: device is in use", cmd, name);
		r = EXIT_FAIL;
	} else if (r) {
		sxm_err("%s %s: %s", cmd, name, sxm_dm_strerror(r));
		r = EXIT_FAIL;
	}
out:
	cli_put_sxm_dev(&d);
	return r;
}

/* ----------------------------------------------------------------------
 * status
 * ----------------------------------------------------------------------
 */

static int get_status(const char *cmd, const char *name,
		      const struct cli_sxm_dev *d, struct sxm_status *st)
{
	struct sxm_table lines;
	unsigned int i;
	int r;

	r = sxm_dm_status(d->info.name, &lines);
	if (r) {
		sxm_err("%s %s: status: %s", cmd, name, sxm_dm_strerror(r));
		return EXIT_FAIL;
	}
	r = -ENOENT;
	for (i = 0; i < lines.nr; i++)
		if (lines.t[i].start == d->t->start &&
		    !strcmp(lines.t[i].type, SXM_TARGET_TYPE)) {
			r = sxm_status_parse(lines.t[i].params, st);
			if (r)
				sxm_err("%s %s: cannot read the status line '%s'",
					cmd, name, lines.t[i].params);
			break;
		}
	if (r == -ENOENT)
		sxm_err("%s %s: the table changed while reading it", cmd,
			name);
	sxm_table_free(&lines);
	return r ? EXIT_FAIL : EXIT_OK;
}

/* The persistent map's fields of status (null / nothing without one). */
static void print_meta_json(const struct sxm_status *st)
{
	if (!st->has_meta) {
		printf("null");
		return;
	}
	printf("{\"dev\":\"%s\",\"state\":\"%s\",\"bits\":%llu,\"writes\":%llu,\"write_us\":%llu,\"loaded\":\"%s\",\"last_clean\":%llu,\"reason\":",
	       st->meta_dev, st->meta_state,
	       (unsigned long long)st->meta_bits,
	       (unsigned long long)st->meta_writes,
	       (unsigned long long)st->meta_write_us, st->meta_loaded,
	       (unsigned long long)st->meta_clean_time);
	if (strcmp(st->meta_reason, "-"))
		printf("\"%s\"}", st->meta_reason);
	else
		printf("null}");
}

static void print_meta_text(const struct sxm_status *st)
{
	char when[32] = "never";
	time_t t = st->meta_clean_time;
	struct tm tm;

	if (!st->has_meta)
		return;
	if (t && gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("  metadata      %s, %s%s%s\n", st->meta_dev, st->meta_state,
	       strcmp(st->meta_reason, "-") ? ": " : "",
	       strcmp(st->meta_reason, "-") ? st->meta_reason : "");
	printf("    on disk     %llu regions; %llu blocks written, %llu us each\n",
	       (unsigned long long)st->meta_bits,
	       (unsigned long long)st->meta_writes,
	       (unsigned long long)st->meta_write_us);
	printf("    loaded      %s; last clean shutdown before: %s\n",
	       st->meta_loaded, when);
}

int cmd_status(int argc, char **argv)
{
	const char *cmd = argv[0], *name;
	uint64_t region_bytes, len_bytes, dirty_bytes;
	char b1[32], b2[32], b3[32];
	struct cli_sxm_dev d;
	struct sxm_status st;
	bool json, done;
	int r;

	r = cli_simple_args(argc, argv, 1, &json, &done);
	if (done)
		return r;
	name = argv[optind];
	if (cli_get_sxm_dev(cmd, name, &d))
		return EXIT_FAIL;
	r = get_status(cmd, name, &d, &st);
	if (r)
		goto out;

	region_bytes = st.region_sectors << SECTOR_SHIFT;
	len_bytes = d.t->len << SECTOR_SHIFT;
	/* The last region may be short. */
	dirty_bytes = st.dirty_regions * region_bytes;
	if (dirty_bytes > len_bytes)
		dirty_bytes = len_bytes;

	if (json) {
		printf("{\"name\":");
		sxm_json_str(stdout, d.info.name);
		printf(",\"dev\":\"%u:%u\",\"source\":\"%u:%u\",\"start\":%llu,\"size\":%llu,\"mode\":",
		       d.info.major, d.info.minor, d.params.major,
		       d.params.minor,
		       (unsigned long long)(d.t->start << SECTOR_SHIFT),
		       (unsigned long long)len_bytes);
		sxm_json_str(stdout, st.mode);
		printf(",\"region_size\":%llu,\"nr_regions\":%llu,\"dirty_regions\":%llu,\"dirty_bytes\":%llu,\"held_regions\":%llu,\"harvests\":%llu,\"helper_pid\":",
		       (unsigned long long)region_bytes,
		       (unsigned long long)st.nr_regions,
		       (unsigned long long)st.dirty_regions,
		       (unsigned long long)dirty_bytes,
		       (unsigned long long)st.held_regions,
		       (unsigned long long)st.harvests);
		if (st.helper_pid)
			printf("%u", st.helper_pid);
		else
			printf("null");
		printf(",\"suspended\":%s,\"metadata\":",
		       d.info.suspended ? "true" : "false");
		print_meta_json(&st);
		printf("}\n");
	} else {
		printf("%s: sxm over %u:%u (%u:%u)%s\n", d.info.name,
		       d.params.major, d.params.minor, d.info.major,
		       d.info.minor, d.info.suspended ? ", suspended" : "");
		printf("  mode          %s\n", st.mode);
		printf("  size          %s\n",
		       fmt_size(len_bytes, b1, sizeof(b1)));
		printf("  region size   %s (%llu sectors)\n",
		       fmt_size(region_bytes, b2, sizeof(b2)),
		       (unsigned long long)st.region_sectors);
		printf("  regions       %llu\n",
		       (unsigned long long)st.nr_regions);
		printf("  dirty         %llu regions, %s\n",
		       (unsigned long long)st.dirty_regions,
		       fmt_size(dirty_bytes, b3, sizeof(b3)));
		printf("  held          %llu regions (harvested, copy not confirmed)\n",
		       (unsigned long long)st.held_regions);
		printf("  harvests      %llu\n", (unsigned long long)st.harvests);
		if (st.helper_pid)
			printf("  helper        pid %u\n", st.helper_pid);
		else
			printf("  helper        none\n");
		print_meta_text(&st);
	}
	r = cli_flush_stdout(cmd);
out:
	cli_put_sxm_dev(&d);
	return r;
}

/* ----------------------------------------------------------------------
 * harvest
 * ----------------------------------------------------------------------
 */

static void print_extents(const char *name, bool json, bool peek,
			  const struct sxm_harvest *h,
			  const struct sxm_extent *ext, size_t nr,
			  uint64_t region_bytes)
{
	char b1[32], b2[32];
	uint64_t bytes = 0;
	size_t i;

	if (json) {
		fputc('[', stdout);
		for (i = 0; i < nr; i++)
			printf("%s{\"offset\":%llu,\"length\":%llu}",
			       i ? "," : "",
			       (unsigned long long)ext[i].offset,
			       (unsigned long long)ext[i].len);
		fputs("]\n", stdout);
		return;
	}
	for (i = 0; i < nr; i++)
		bytes += ext[i].len;
	printf("# %s: %s %llu dirty regions of %s, %s in %zu extents (harvests %llu)\n",
	       name, peek ? "peek:" : "harvested",
	       (unsigned long long)h->dirty_regions,
	       fmt_size(region_bytes, b1, sizeof(b1)),
	       fmt_size(bytes, b2, sizeof(b2)), nr,
	       (unsigned long long)h->generation);
	printf("# offset length (bytes)\n");
	for (i = 0; i < nr; i++)
		printf("%llu %llu\n", (unsigned long long)ext[i].offset,
		       (unsigned long long)ext[i].len);
}

int cmd_harvest(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "peek", no_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0], *name;
	struct sxm_extent *ext = NULL;
	bool json = false, peek = false;
	struct sxm_features feat;
	struct sxm_attach att = { 0 };	/* said on EBUSY */
	struct sxm_harvest h;
	struct cli_sxm_dev d;
	uint64_t *map = NULL;
	int c, e, fd, r;
	size_t nr, i;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			peek = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	if (cli_nargs(cmd, argc, 1))
		return EXIT_USAGE;
	name = argv[optind];
	if (cli_get_sxm_dev(cmd, name, &d))
		return EXIT_FAIL;

	r = EXIT_FAIL;
	fd = sxm_kdev_open();
	if (fd < 0) {
		sxm_err("%s %s: %s", cmd, name, sxm_kdev_strerror(fd));
		goto out;
	}
	e = sxm_kdev_features(fd, &feat);
	if (!e)
		e = sxm_kdev_attach(fd, d.info.major, d.info.minor, d.t->start,
				    peek ? SXM_ATTACH_OBSERVER : 0,
				    feat.features & (SXM_F_TRACK |
						     SXM_F_MARK_DIRTY), &att);
	if (e == -EBUSY) {
		sxm_err("%s %s: a helper is attached (pid %u); --peek reads the map without harvesting it",
			cmd, name, att.helper_pid);
		goto out_close;
	} else if (e) {
		sxm_err("%s %s: attach: %s", cmd, name, e == -ENODEV ?
			"the kernel knows no sxm target there" :
			sxm_kdev_strerror(e));
		goto out_close;
	}
	e = sxm_kdev_harvest(fd, peek ? SXM_HARVEST_PEEK : 0, &map, &h);
	if (e) {
		sxm_err("%s %s: %s: %s", cmd, name, peek ? "peek" : "harvest",
			strerror(-e));
		goto out_close;
	}
	e = sxm_map_extents(map, h.nr_regions, att.region_sectors,
			    att.len_sectors, &ext, &nr);
	if (e) {
		sxm_err("%s %s: %s", cmd, name, strerror(-e));
		goto out_close;
	}
	/* Offsets in the device, not in the target. */
	for (i = 0; i < nr; i++)
		ext[i].offset += d.t->start << SECTOR_SHIFT;
	print_extents(d.info.name, json, peek, &h, ext, nr,
		      att.region_sectors << SECTOR_SHIFT);
	r = cli_flush_stdout(cmd);
	/*
	 * Printed: the caller has the regions, the kernel may forget them.
	 * Not printed: they stay held and the next harvest returns them.
	 */
	if (!r && !peek && h.dirty_regions) {
		e = sxm_kdev_ack(fd, map, h.nr_regions, NULL);
		if (e) {
			sxm_err("%s %s: acknowledge: %s (the regions stay held; the next harvest returns them)",
				cmd, name, strerror(-e));
			r = EXIT_FAIL;
		}
	}
out_close:
	free(ext);
	free(map);
	close(fd);
out:
	cli_put_sxm_dev(&d);
	return r;
}

/* ----------------------------------------------------------------------
 * track
 * ----------------------------------------------------------------------
 */

int cmd_track(int argc, char **argv)
{
	const char *cmd = argv[0], *name, *mode;
	struct cli_sxm_dev d;
	char msg[32];
	bool done;
	int r;

	r = cli_simple_args(argc, argv, 2, NULL, &done);
	if (done)
		return r;
	name = argv[optind];
	if (!strcmp(argv[optind + 1], "on"))
		mode = "track";
	else if (!strcmp(argv[optind + 1], "off"))
		mode = "passthrough";
	else
		return cli_usage(cmd, "'%s': on or off", argv[optind + 1]);
	if (cli_get_sxm_dev(cmd, name, &d))
		return EXIT_FAIL;
	snprintf(msg, sizeof(msg), "mode %s", mode);
	r = sxm_dm_message(d.info.name, d.t->start, msg, NULL);
	if (r == -EINVAL)
		sxm_err("%s %s: the kernel refused '%s' (its reason is in the kernel log)",
			cmd, name, msg);
	else if (r)
		sxm_err("%s %s: message '%s': %s", cmd, name, msg,
			sxm_dm_strerror(r));
	else
		printf("%s: %s\n", d.info.name, mode);
	cli_put_sxm_dev(&d);
	return r ? EXIT_FAIL : cli_flush_stdout(cmd);
}
