// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl metadata size, format, check, dump: the metadata device of the
 * persistent write-intent map (include/uapi/linux/dm-sxm-metadata.h), in
 * the manner of thin-provisioning-tools' thin_check and thin_dump.  What
 * the format is, and how a device is read and checked, is base/meta.c's;
 * this file parses, prints and picks the exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "base/buf.h"
#include "base/meta.h"
#include "cli/cmds.h"
#include "cli/cli.h"
#include "dm/status.h"

/* metadata check: as diff and cmp, 2 is "could not tell". */
enum {
	CHECK_CONSISTENT = EXIT_OK,
	CHECK_INCONSISTENT = 1,
	CHECK_TROUBLE = 2,	/* a bad command line, or not read */
};

static int meta_size(int argc, char **argv);
static int meta_format(int argc, char **argv);
static int meta_check(int argc, char **argv);
static int meta_dump(int argc, char **argv);

static const struct sxm_subcmd meta_cmds[] = {
	{ "metadata size", meta_size,
	  "--regions N | (--size BYTES | --source DEV) [--region-size SIZE]",
	  "the bytes a metadata device needs: 4096 * (1 + ceil(N / 32256)), N regions, or ceil(size / region size) (default 64k)" },
	{ "metadata format", meta_format, "DEV [--force]",
	  "write a blank superblock to DEV (a file, or a block device nothing holds); --force over a bound one too" },
	{ "metadata check", meta_check, "DEV",
	  "check the superblock and every map block; exit 0 consistent, 1 not (each problem said), 2 not checked" },
	{ "metadata dump", meta_dump, "DEV [--json]",
	  "every superblock field, the regions set in the map as extents, the bad map blocks" },
	{ NULL, NULL, NULL, NULL },
};

int cmd_metadata(int argc, char **argv)
{
	return cli_subcmds(argc, argv, meta_cmds);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static int open_failed(const char *cmd, const char *dev, int err)
{
	if (err == -EINVAL)
		sxm_err("%s %s: not a regular file or block device", cmd, dev);
	else if (err == -EBUSY)
		sxm_err("%s %s: in use (a loaded table, a mount or another program holds it)",
			cmd, dev);
	else
		sxm_err("%s %s: %s", cmd, dev, strerror(-err));
	return EXIT_FAIL;
}

/* Open and read all of @dev; on failure say why and return EXIT_FAIL. */
static int read_dev(const char *cmd, const char *dev, struct sxm_meta *m)
{
	uint64_t bytes;
	int fd, r;

	r = sxm_meta_open(dev, false, &fd, &bytes);
	if (r)
		return open_failed(cmd, dev, r);
	r = sxm_meta_read(fd, bytes, m);
	close(fd);
	if (r) {
		sxm_err("%s %s: %s%s", cmd, dev,
			r == -ENOMEM ? "" : "reading the superblock: ",
			strerror(-r));
		sxm_meta_free(m);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* Each problem of @m on a line of its own: "sxm-ctl: CMD DEV: ...". */
static void print_problems(const char *cmd, const char *dev,
			   const struct sxm_meta *m)
{
	size_t len = strlen(cmd) + strlen(dev) + 3;
	char *prefix = malloc(len);

	if (!prefix || !m->nr_problems) {
		free(prefix);
		return;
	}
	snprintf(prefix, len, "%s %s:", cmd, dev);
	cli_print_msgs(prefix, m->problems.s);
	free(prefix);
}

/* Seconds since the epoch in ISO 8601, UTC; NULL for 0 or out of range. */
static const char *iso_time(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || t > INT64_MAX || (uint64_t)tt != t || !gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return buf;
}

/* The name of flag bit @i: "bound", "clean", or its value. */
static const char *flag_name(unsigned int i, char *buf, size_t len)
{
	static const char *const names[] = { "bound", "clean" };

	if (i < ARRAY_SIZE(names))
		return names[i];
	snprintf(buf, len, "0x%x", 1U << i);
	return buf;
}

/* ------------------------------------------------------------------ */
/* size                                                               */
/* ------------------------------------------------------------------ */

struct size_args {
	const char *regions;
	const char *size;
	const char *source;
	uint64_t region;		/* sectors */
	bool region_given;
};

/* Returns EXIT_OK with *@done false to go on. */
static int size_parse(int argc, char **argv, struct size_args *a,
		      bool *done)
{
	static const struct option opts[] = {
		{ "regions", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "source", required_argument, NULL, 'S' },
		{ "region-size", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0];
	int c;

	*done = true;
	a->region = SXM_DEFAULT_REGION_SIZE >> SECTOR_SHIFT;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			a->regions = optarg;
			break;
		case 's':
			a->size = optarg;
			break;
		case 'S':
			a->source = optarg;
			break;
		case 'r':
			if (cli_region_size(cmd, optarg, &a->region))
				return EXIT_USAGE;
			a->region_given = true;
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	if (cli_nargs(cmd, argc, 0))
		return EXIT_USAGE;
	if (!!a->regions + !!a->size + !!a->source != 1)
		return cli_usage(cmd, "one of --regions, --size and --source");
	if (a->regions && a->region_given)
		return cli_usage(cmd, "--region-size goes with --size or --source, not --regions");
	*done = false;
	return EXIT_OK;
}

/* The size of --source: a block device or a file. */
static int source_bytes(const char *cmd, const char *path, uint64_t *bytes)
{
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_failed(cmd, path, -errno);
	r = sxm_file_size(fd, bytes, NULL);
	close(fd);
	if (r)
		return open_failed(cmd, path, r);
	if (*bytes < (1U << SECTOR_SHIFT)) {
		sxm_err("%s %s: smaller than a sector: no target over it", cmd,
			path);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int meta_size(int argc, char **argv)
{
	const char *cmd = argv[0];
	struct size_args a = { 0 };
	uint64_t nr = 0, bytes = 0;
	bool done;
	int r;

	r = size_parse(argc, argv, &a, &done);
	if (done)
		return r;
	if (a.regions) {
		if (parse_u64(a.regions, &nr) || !nr)
			return cli_usage(cmd, "--regions %s: not a number of regions (1 or more)",
					 a.regions);
	} else if (a.source) {
		if (source_bytes(cmd, a.source, &bytes))
			return EXIT_FAIL;
	} else if (parse_size(a.size, &bytes) ||
		   bytes < (1U << SECTOR_SHIFT)) {
		return cli_usage(cmd, "--size %s: not a size of at least a sector",
				 a.size);
	}
	/* The target's regions: ceil(len_sectors / region_sectors). */
	if (!a.regions)
		nr = sxm_regions(bytes >> SECTOR_SHIFT, a.region);
	printf("%" PRIu64 "\n", sxm_meta_bytes(nr));
	return cli_flush_stdout(cmd);
}

/* ------------------------------------------------------------------ */
/* format                                                             */
/* ------------------------------------------------------------------ */

/* Whether block 0 is bound (or unreadable): said, and so refused. */
static bool format_refused(const char *cmd, const char *dev, int fd,
			   void *blk)
{
	struct sxm_meta_super sb;
	char b[32], t[32];
	const char *when;
	int e;

	e = sxm_meta_read_block(fd, 0, blk);
	if (e) {
		sxm_err("%s %s: reading the superblock: %s; --force formats it without looking",
			cmd, dev, strerror(-e));
		return true;
	}
	sxm_meta_decode(blk, &sb);
	if (sb.magic != SXM_META_SB_MAGIC || !(sb.flags & SXM_META_BOUND))
		return false;
	when = iso_time(sb.bound_time, t, sizeof(t));
	sxm_err("%s %s: bound to a target (source_id \"%s\", %" PRIu64 " regions of %s, bound %s): formatting loses its map; --force formats it anyway",
		cmd, dev, sb.source_id, sb.nr_regions,
		fmt_size(sb.region_sectors << SECTOR_SHIFT, b, sizeof(b)),
		when ? when : "at an unknown time");
	return true;
}

static int meta_format(int argc, char **argv)
{
	const char *cmd = argv[0], *dev;
	bool force, done;
	int e, fd, r;
	uint64_t bytes;
	char b[32];
	void *blk;

	r = cli_flag_args(argc, argv, 1, "force", &force, &done);
	if (done)
		return r;
	r = EXIT_FAIL;
	dev = argv[optind];
	e = sxm_meta_open(dev, true, &fd, &bytes);
	if (e)
		return open_failed(cmd, dev, e);
	blk = sxm_meta_block_alloc();
	if (!blk) {
		sxm_err("%s %s: %s", cmd, dev, strerror(ENOMEM));
	} else if (bytes < sxm_meta_bytes(1)) {
		sxm_err("%s %s: %" PRIu64 " bytes: a metadata device has at least %" PRIu64 " (a superblock and a map block)",
			cmd, dev, bytes, sxm_meta_bytes(1));
	} else if (force || !format_refused(cmd, dev, fd, blk)) {
		sxm_meta_blank(blk);
		e = sxm_meta_write_block(fd, 0, blk);
		if (e)
			sxm_err("%s %s: writing the superblock: %s", cmd, dev,
				strerror(-e));
		else
			printf("%s: formatted: blank, %s, room for the map of %" PRIu64 " regions\n",
			       dev, fmt_size(bytes, b, sizeof(b)),
			       sxm_meta_room(bytes));
		r = e ? EXIT_FAIL : cli_flush_stdout(cmd);
	}
	free(blk);
	close(fd);
	return r;
}

/* ------------------------------------------------------------------ */
/* check                                                              */
/* ------------------------------------------------------------------ */

static int meta_check(int argc, char **argv)
{
	const char *cmd = argv[0], *dev;
	struct sxm_meta m;
	char b[32];
	bool done;
	int r;

	r = cli_simple_args(argc, argv, 1, NULL, &done);
	if (done)
		return r ? CHECK_TROUBLE : CHECK_CONSISTENT;
	dev = argv[optind];
	if (read_dev(cmd, dev, &m))
		return CHECK_TROUBLE;
	if (m.nr_problems) {
		print_problems(cmd, dev, &m);
		sxm_err("%s %s: inconsistent: %zu problem%s", cmd, dev,
			m.nr_problems, m.nr_problems == 1 ? "" : "s");
		sxm_meta_free(&m);
		return CHECK_INCONSISTENT;
	}
	if (m.state == SXM_META_ST_ZEROES)
		printf("%s: consistent: blank (all zeroes)\n", dev);
	else if (m.state == SXM_META_ST_BLANK)
		printf("%s: consistent: blank (formatted)\n", dev);
	else
		printf("%s: consistent: bound, %" PRIu64 " regions of %s, %" PRIu64 " map block%s, %" PRIu64 " regions set%s\n",
		       dev, m.sb.nr_regions,
		       fmt_size(m.sb.region_sectors << SECTOR_SHIFT, b,
				sizeof(b)),
		       m.map_blocks, m.map_blocks == 1 ? "" : "s",
		       sxm_map_weight(m.map, m.sb.nr_regions),
		       m.sb.flags & SXM_META_CLEAN ? ", clean" : "");
	sxm_meta_free(&m);
	return cli_flush_stdout(cmd) ? CHECK_TROUBLE : CHECK_CONSISTENT;
}

/* ------------------------------------------------------------------ */
/* dump                                                               */
/* ------------------------------------------------------------------ */

static const char *const state_names[] = {
	[SXM_META_ST_BAD] = "bad",
	[SXM_META_ST_ZEROES] = "zeroes",
	[SXM_META_ST_BLANK] = "blank",
	[SXM_META_ST_BOUND] = "bound",
};

static void text_time(const char *key, uint64_t t)
{
	char buf[32];
	const char *iso = iso_time(t, buf, sizeof(buf));

	printf("  %-15s %s (%" PRIu64 ")\n", key,
	       iso ? iso : t ? "out of range" : "never", t);
}

static void text_super(const struct sxm_meta_super *sb)
{
	unsigned int i, k;
	char b[64];

	printf("  %-15s %08x\n", "magic", sb->magic);
	printf("  %-15s %u\n", "version", sb->version);
	printf("  %-15s %08x\n", "csum", sb->csum);
	printf("  %-15s 0x%x (", "flags", sb->flags);
	for (i = 0, k = 0; i < 32; i++)
		if (sb->flags & (1U << i))
			printf("%s%s", k++ ? ", " : "",
			       flag_name(i, b, sizeof(b)));
	printf("%s)\n", sb->flags ? "" : "none");
	printf("  %-15s %" PRIu64 "\n", "seq", sb->seq);
	printf("  %-15s %016" PRIx64 "\n", "meta_id", sb->meta_id);
	printf("  %-15s %" PRIu64 " (%s)\n", "region_sectors",
	       sb->region_sectors,
	       fmt_size(sb->region_sectors << SECTOR_SHIFT, b, sizeof(b)));
	printf("  %-15s %" PRIu64 "\n", "nr_regions", sb->nr_regions);
	printf("  %-15s %" PRIu64 " (%s)\n", "len_sectors", sb->len_sectors,
	       fmt_size(sb->len_sectors << SECTOR_SHIFT, b, sizeof(b)));
	printf("  %-15s %016" PRIx64 "%s\n", "track_id", sb->track_id,
	       sb->track_id || !(sb->flags & SXM_META_BOUND) ? "" :
	       " (no track: the map means nothing)");
	text_time("clean_time", sb->clean_time);
	text_time("bound_time", sb->bound_time);
	printf("  %-15s ", "source_id");
	sxm_json_str(stdout, sb->source_id);
	putchar('\n');
}

static uint64_t extents_bytes(const struct sxm_meta_extent *ext, size_t n)
{
	uint64_t bytes = 0;
	size_t i;

	for (i = 0; i < n; i++)
		bytes += ext[i].len;
	return bytes;
}

/* The regions of map block @b, as "first-last". */
static const char *block_regions_str(const struct sxm_meta *m, uint64_t b,
				     char *buf, size_t len)
{
	uint64_t first = (b - 1) * SXM_META_REGIONS_PER_BLOCK;
	uint64_t last = first + SXM_META_REGIONS_PER_BLOCK - 1;

	if (last >= m->sb.nr_regions)
		last = m->sb.nr_regions - 1;
	snprintf(buf, len, "%" PRIu64 "-%" PRIu64, first, last);
	return buf;
}

static void text_map(const struct sxm_meta *m,
		     const struct sxm_meta_extent *ext, size_t n)
{
	char b[48];
	size_t i;

	printf("  %-15s %" PRIu64 " (%" PRIu64 " bad)\n", "map blocks",
	       m->map_blocks, m->bad_blocks);
	for (i = 0; i < m->nr_bad; i++)
		if (m->bad[i].errs & SXM_META_E_BAD_BLOCK)
			printf("  %-15s %" PRIu64 ": regions %s read as set\n",
			       "bad block", m->bad[i].blocknr,
			       block_regions_str(m, m->bad[i].blocknr, b,
						 sizeof(b)));
	printf("  %-15s %" PRIu64 " (%s)\n", "regions set",
	       sxm_map_weight(m->map, m->sb.nr_regions),
	       fmt_size(extents_bytes(ext, n), b, sizeof(b)));
}

static void dump_text(const char *dev, const struct sxm_meta *m,
		      const struct sxm_meta_extent *ext, size_t n)
{
	const char *p, *nl;
	size_t i;

	printf("%s: sxm metadata, %s\n", dev,
	       m->state == SXM_META_ST_ZEROES ? "blank (all zeroes)" :
	       m->state == SXM_META_ST_BLANK ? "blank (formatted)" : "bound");
	printf("  %-15s %" PRIu64 " bytes", "size", m->dev_bytes);
	if (m->state == SXM_META_ST_BOUND)
		printf(" (the map needs %" PRIu64 ")",
		       sxm_meta_bytes(m->sb.nr_regions));
	putchar('\n');
	if (m->state != SXM_META_ST_ZEROES)
		text_super(&m->sb);
	if (m->map)
		text_map(m, ext, n);
	else
		printf("  %-15s none: the first table to load it binds it\n",
		       "map");
	for (p = m->nr_problems ? m->problems.s : ""; *p; p = *nl ? nl + 1 : nl) {
		nl = strchrnul(p, '\n');
		printf("  %-15s %.*s\n", "problem", (int)(nl - p), p);
	}
	if (m->map)
		printf("# first_region nr_regions offset length (bytes)\n");
	for (i = 0; i < n; i++)
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		       ext[i].first_region, ext[i].nr_regions, ext[i].offset,
		       ext[i].len);
}

static void json_time(const char *key, uint64_t t)
{
	char buf[32];
	const char *iso = iso_time(t, buf, sizeof(buf));

	printf(",\"%s\":%" PRIu64 ",\"%s_iso\":", key, t, key);
	if (iso)
		sxm_json_str(stdout, iso);
	else
		printf("null");
}

static void json_super(const struct sxm_meta_super *sb)
{
	unsigned int i, k;
	char b[16];

	printf(",\"magic\":\"%08x\",\"version\":%u,\"csum\":\"%08x\",\"flags\":%u,\"flag_names\":[",
	       sb->magic, sb->version, sb->csum, sb->flags);
	for (i = 0, k = 0; i < 32; i++)
		if (sb->flags & (1U << i))
			printf("%s\"%s\"", k++ ? "," : "",
			       flag_name(i, b, sizeof(b)));
	printf("],\"seq\":%" PRIu64 ",\"meta_id\":\"%016" PRIx64 "\",\"region_sectors\":%" PRIu64
	       ",\"region_size\":%" PRIu64 ",\"nr_regions\":%" PRIu64 ",\"len_sectors\":%" PRIu64
	       ",\"track_id\":\"%016" PRIx64 "\"",
	       sb->seq, sb->meta_id, sb->region_sectors,
	       sb->region_sectors << SECTOR_SHIFT, sb->nr_regions,
	       sb->len_sectors, sb->track_id);
	json_time("clean_time", sb->clean_time);
	json_time("bound_time", sb->bound_time);
	printf(",\"source_id\":");
	sxm_json_str(stdout, sb->source_id);
}

static void json_bad_blocks(const struct sxm_meta *m)
{
	unsigned int bit;
	size_t i, k = 0;
	bool first;

	printf(",\"bad_blocks\":[");
	for (i = 0; i < m->nr_bad; i++) {
		if (!(m->bad[i].errs & SXM_META_E_BAD_BLOCK))
			continue;
		printf("%s{\"block\":%" PRIu64 ",\"first_region\":%" PRIu64 ",\"errors\":[",
		       k++ ? "," : "", m->bad[i].blocknr,
		       (m->bad[i].blocknr - 1) * SXM_META_REGIONS_PER_BLOCK);
		first = true;
		for (bit = 1; bit; bit <<= 1)
			if (m->bad[i].errs & bit) {
				printf("%s\"%s\"", first ? "" : ",",
				       sxm_meta_err_name(bit));
				first = false;
			}
		printf("]}");
	}
	putchar(']');
}

static void dump_json(const char *dev, const struct sxm_meta *m,
		      const struct sxm_meta_extent *ext, size_t n)
{
	const char *p, *nl;
	char line[256];
	size_t i;

	printf("{\"device\":");
	sxm_json_str(stdout, dev);
	printf(",\"size\":%" PRIu64 ",\"state\":\"%s\"", m->dev_bytes,
	       state_names[m->state]);
	json_super(&m->sb);
	if (m->state == SXM_META_ST_BOUND)
		printf(",\"needed\":%" PRIu64, sxm_meta_bytes(m->sb.nr_regions));
	else
		printf(",\"needed\":null");
	printf(",\"map_blocks\":%" PRIu64, m->map_blocks);
	json_bad_blocks(m);
	printf(",\"regions_set\":%" PRIu64 ",\"bytes_set\":%" PRIu64 ",\"extents\":[",
	       m->map ? sxm_map_weight(m->map, m->sb.nr_regions) : 0,
	       extents_bytes(ext, n));
	for (i = 0; i < n; i++)
		printf("%s{\"first_region\":%" PRIu64 ",\"nr_regions\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"length\":%" PRIu64 "}",
		       i ? "," : "", ext[i].first_region, ext[i].nr_regions,
		       ext[i].offset, ext[i].len);
	printf("],\"problems\":[");
	for (p = m->nr_problems ? m->problems.s : ""; *p; p = *nl ? nl + 1 : nl) {
		nl = strchrnul(p, '\n');
		/* A problem's line is shorter than a line of base/meta.c. */
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		if (p != m->problems.s)
			putchar(',');
		sxm_json_str(stdout, line);
	}
	printf("]}\n");
}

static int meta_dump(int argc, char **argv)
{
	const char *cmd = argv[0], *dev;
	struct sxm_meta_extent *ext = NULL;
	struct sxm_meta m;
	bool json, done;
	size_t n = 0;
	int r;

	r = cli_simple_args(argc, argv, 1, &json, &done);
	if (done)
		return r;
	dev = argv[optind];
	if (read_dev(cmd, dev, &m))
		return EXIT_FAIL;
	/*
	 * Nothing to show but what is wrong: no superblock, a map not read
	 * (the device is smaller), or regions of no size to say in bytes.
	 */
	r = m.map ? sxm_meta_extents(&m, &ext, &n) : 0;
	if (m.state == SXM_META_ST_BAD || r == -EINVAL ||
	    (m.state == SXM_META_ST_BOUND && !m.map)) {
		print_problems(cmd, dev, &m);
		sxm_err("%s %s: nothing to dump", cmd, dev);
		sxm_meta_free(&m);
		return EXIT_FAIL;
	} else if (r) {
		sxm_err("%s %s: %s", cmd, dev, strerror(-r));
		sxm_meta_free(&m);
		return EXIT_FAIL;
	}
	if (json)
		dump_json(dev, &m, ext, n);
	else
		dump_text(dev, &m, ext, n);
	free(ext);
	sxm_meta_free(&m);
	return cli_flush_stdout(cmd);
}
