// SPDX-License-Identifier: GPL-2.0
/* Helpers of the command layer; see cli.h. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <string.h>

#include "base/sxm.h"
#include "base/meta.h"
#include "cli/cmds.h"
#include "cli/cli.h"
#include "kdev/kdev.h"

/* The commands of the group cli_subcmds() runs ("metadata check"). */
static const struct sxm_subcmd *cli_subs;

static const struct sxm_subcmd *find_cmd(const char *cmd)
{
	const struct sxm_subcmd *c;

	for (c = sxm_cmds; c->name; c++)
		if (!strcmp(c->name, cmd))
			return c;
	for (c = cli_subs; c && c->name; c++)
		if (!strcmp(c->name, cmd))
			return c;
	return NULL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	const struct sxm_subcmd *c = find_cmd(cmd);
	va_list ap;

	fprintf(stderr, "sxm-ctl: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (c)
		fprintf(stderr, "usage: sxm-ctl %s %s\n", cmd, c->args);
	return EXIT_USAGE;
}

int cli_help(const char *cmd)
{
	const struct sxm_subcmd *c = find_cmd(cmd);

	if (c)
		printf("usage: sxm-ctl %s %s\n  %s\n", cmd, c->args, c->help);
	return EXIT_OK;
}

static void subcmds_usage(FILE *f, const char *group,
			  const struct sxm_subcmd *subs)
{
	const struct sxm_subcmd *c;

	fprintf(f, "usage: sxm-ctl %s COMMAND [ARGS...]\n\ncommands:\n", group);
	for (c = subs; c->name; c++)
		fprintf(f, "  sxm-ctl %s %s\n      %s\n", c->name, c->args,
			c->help);
}

int cli_subcmds(int argc, char **argv, const struct sxm_subcmd *subs)
{
	const char *group = argv[0];
	size_t n = strlen(group);
	const struct sxm_subcmd *c;

	cli_subs = subs;
	if (argc < 2) {
		fprintf(stderr, "sxm-ctl: %s: which command?\n", group);
		subcmds_usage(stderr, group, subs);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		subcmds_usage(stdout, group, subs);
		return EXIT_OK;
	}
	for (c = subs; c->name; c++)
		if (!strncmp(c->name, group, n) && c->name[n] == ' ' &&
		    !strcmp(c->name + n + 1, argv[1])) {
			argv[1] = (char *)c->name;
			return c->fn(argc - 1, argv + 1);
		}
	fprintf(stderr, "sxm-ctl: %s: unknown command '%s'\n", group, argv[1]);
	subcmds_usage(stderr, group, subs);
	return EXIT_USAGE;
}

int cli_bad_option(const char *cmd, char **argv, int ret)
{
	const char *opt = argv[optind - 1];

	if (ret == ':')
		return cli_usage(cmd, "option %s needs an argument", opt);
	if (optopt)
		return cli_usage(cmd, "unknown option -%c", optopt);
	return cli_usage(cmd, "unknown option %s", opt);
}

int cli_nargs(const char *cmd, int argc, int nargs)
{
	if (argc - optind < nargs)
		return cli_usage(cmd, "missing arguments");
	if (argc - optind > nargs)
		return cli_usage(cmd, "too many arguments");
	return EXIT_OK;
}

int cli_flag_args(int argc, char **argv, int nargs, const char *flag,
		  bool *set, bool *done)
{
	const struct option opts[] = {
		{ flag, no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0];
	bool none;
	int c;

	*done = true;
	if (!flag)
		set = &none;	/* no such option: nothing sets it */
	*set = false;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", flag ? opts : opts + 1,
				NULL)) != -1) {
		switch (c) {
		case 'f':
			*set = true;
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	if (cli_nargs(cmd, argc, nargs))
		return EXIT_USAGE;
	*done = false;
	return EXIT_OK;
}

int cli_simple_args(int argc, char **argv, int nargs, bool *json,
		    bool *done)
{
	return cli_flag_args(argc, argv, nargs, json ? "json" : NULL, json,
			     done);
}

int cli_target_args(int argc, char **argv, int nargs, uint64_t *region,
		    bool *track, struct sxm_meta_arg *meta, bool *done)
{
	static const struct option opts[] = {
		{ "region-size", required_argument, NULL, 'r' },
		{ "track", no_argument, NULL, 't' },
		{ "metadata", required_argument, NULL, 'm' },
		{ "source-id", required_argument, NULL, 'i' },
		{ "metadata-reset", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0];
	int c;

	*done = true;
	*region = SXM_DEFAULT_REGION_SIZE >> SECTOR_SHIFT;
	*track = false;
	*meta = (struct sxm_meta_arg){ 0 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (cli_region_size(cmd, optarg, region))
				return EXIT_USAGE;
			break;
		case 't':
			*track = true;
			break;
		case 'm':
			meta->path = optarg;
			break;
		case 'i':
			meta->source_id = optarg;
			break;
		case 'R':
			meta->reset = true;
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	if (!meta->path && (meta->source_id || meta->reset))
		return cli_usage(cmd, "--source-id and --metadata-reset need --metadata");
	if (cli_nargs(cmd, argc, nargs))
		return EXIT_USAGE;
	*done = false;
	return EXIT_OK;
}

int cli_meta_fits(const char *cmd, const char *name,
		  const struct sxm_meta_arg *meta, uint64_t len_sectors,
		  uint64_t region_sectors)
{
	struct sxm_meta_fit fit;
	char why[512];

	if (!sxm_table_word(meta->path) || !sxm_source_id_ok(meta->source_id)) {
		sxm_err("%s %s: --metadata and --source-id: a path without white space, and an id of 1 to %d printable characters without white space",
			cmd, name, SXM_META_SOURCE_ID_LEN - 1);
		return EXIT_USAGE;
	}
	if (sxm_meta_fit(meta->path, len_sectors, region_sectors,
			 meta->source_id, meta->reset, &fit, why,
			 sizeof(why))) {
		sxm_err("%s %s: %s", cmd, name, why);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

void cli_print_msgs(const char *cmd, const char *msgs)
{
	const char *nl;

	while (*msgs) {
		nl = strchrnul(msgs, '\n');
		fprintf(stderr, "sxm-ctl: %s %.*s\n", cmd, (int)(nl - msgs), msgs);
		msgs = *nl ? nl + 1 : nl;
	}
}

int cli_region_size(const char *cmd, const char *arg, uint64_t *sectors)
{
	uint64_t bytes;
	int r;

	r = parse_size(arg, &bytes);
	if (!r)
		r = sxm_region_sectors(bytes, sectors);
	if (r)
		return cli_usage(cmd, "--region-size %s: must be a power of two from 4k to 1G",
				 arg);
	return EXIT_OK;
}

int cli_get_sxm_dev(const char *cmd, const char *name,
		    struct cli_sxm_dev *d)
{
	unsigned int i, n = 0;
	int r;

	memset(d, 0, sizeof(*d));
	r = sxm_dm_info(name, &d->info);
	if (!r && !d->info.exists)
		r = -ENXIO;
	if (!r)
		r = sxm_dm_table(d->info.name, &d->table);
	if (r) {
		sxm_err("%s %s: %s", cmd, name, sxm_dm_strerror(r));
		return EXIT_FAIL;
	}
	for (i = 0; i < d->table.nr; i++) {
		if (strcmp(d->table.t[i].type, SXM_TARGET_TYPE))
			continue;
		if (!n++)
			d->t = &d->table.t[i];
	}
	if (n != 1) {
		if (!d->table.nr)
			sxm_err("%s %s: has no live table", cmd, name);
		else if (!n)
			sxm_err("%s %s: not an sxm device (its table is %s)",
				cmd, name, d->table.t[0].type);
		else
			sxm_err("%s %s: has %u sxm targets; sxm-ctl handles devices with one",
				cmd, name, n);
		cli_put_sxm_dev(d);
		return EXIT_FAIL;
	}
	r = sxm_params_parse(d->t->params, &d->params);
	if (r) {
		sxm_err("%s %s: cannot read the sxm table arguments '%s'",
			cmd, name, d->t->params);
		cli_put_sxm_dev(d);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

void cli_put_sxm_dev(struct cli_sxm_dev *d)
{
	sxm_table_free(&d->table);
	d->t = NULL;
}

int cli_flush_stdout(const char *cmd)
{
	if (fflush(stdout) || ferror(stdout)) {
		sxm_err("%s: writing the output: %s", cmd, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
