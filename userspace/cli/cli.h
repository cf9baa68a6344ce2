/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers of the command layer (cmd_*.c): option errors, printing what a
 * library call said, and finding a device's sxm target.
 * These print; the library layers below them do not.
 */
#ifndef SXM_CLI_H
#define SXM_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cmds.h"
#include "dm/dm.h"
#include "dm/status.h"

/*
 * Print "sxm-ctl: CMD: <message>" and the command's synopsis to stderr;
 * returns EXIT_USAGE.
 */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "sxm-ctl CMD --help": the synopsis and what it does, on stdout. */
int cli_help(const char *cmd);
/*
 * A command that is a group of commands ("sxm-ctl metadata check DEV"):
 * run the one argv[1] names among @subs, whose names are "GROUP SUB"
 * (the table ends with a NULL name), with argv shifted so that argv[0] is
 * that full name, which the helpers here then know ("sxm-ctl: metadata
 * check: missing arguments" and its synopsis).  No command, --help or an
 * unknown one: the group's commands listed, EXIT_USAGE or EXIT_OK.
 */
int cli_subcmds(int argc, char **argv, const struct sxm_subcmd *subs);
/*
 * An option getopt_long() refused: @ret is what it returned, '?' (unknown)
 * or ':' (missing argument; the option string must start with ':').
 */
int cli_bad_option(const char *cmd, char **argv, int ret);
/*
 * Exactly @nargs positional arguments after the options (from optind):
 * EXIT_OK, or a usage error ("missing arguments", "too many arguments")
 * printed and EXIT_USAGE.
 */
int cli_nargs(const char *cmd, int argc, int nargs);
/*
 * The options of a command that has none but --help and, where @json is
 * not NULL, --json (*@json), then @nargs positional arguments.  EXIT_OK
 * with *@done false to go on; else *@done and the status to return.
 */
int cli_simple_args(int argc, char **argv, int nargs, bool *json,
		    bool *done);
/*
 * The same with another flag than --json: "--@flag" sets *@set (none
 * when @flag is NULL), as restore's and metadata format's --force.
 */
int cli_flag_args(int argc, char **argv, int nargs, const char *flag,
		  bool *set, bool *done);
/*
 * The options of a command that puts an sxm target on a device (create,
 * insert): --region-size SIZE (*@region, in sectors; the default
 * otherwise), --track (*@track), --metadata DEV, --source-id ID and
 * --metadata-reset (into *@meta: path NULL without --metadata; the source
 * id NULL unless given) and --help, then @nargs positional arguments.
 * EXIT_OK with *@done false to go on; else *@done and the status to
 * return (--help answered, a usage error printed).
 */
int cli_target_args(int argc, char **argv, int nargs, uint64_t *region,
		    bool *track, struct sxm_meta_arg *meta, bool *done);

/*
 * The metadata device of create or insert checked as the kernel will check
 * it (sxm_meta_fit()): EXIT_OK, or the reason printed and the status.
 */
int cli_meta_fits(const char *cmd, const char *name,
		  const struct sxm_meta_arg *meta, uint64_t len_sectors,
		  uint64_t region_sectors);

/* --region-size SIZE to sectors; a usage error (printed) if bad. */
int cli_region_size(const char *cmd, const char *arg, uint64_t *sectors);

/* A device-mapper device with one sxm target. */
struct cli_sxm_dev {
	struct sxm_dm_info info;
	struct sxm_table table;		/* the live table */
	const struct sxm_table_target *t;	/* its sxm target */
	struct sxm_params params;	/* that target's arguments */
};

/*
 * Look @name up and find its sxm target; on failure print why (no such
 * device, no device-mapper, not an sxm device) and return EXIT_FAIL.
 */
int cli_get_sxm_dev(const char *cmd, const char *name,
		    struct cli_sxm_dev *d);
void cli_put_sxm_dev(struct cli_sxm_dev *d);

/* Print each line of @msgs (sxm_msg_add()) as "sxm-ctl: CMD <line>". */
void cli_print_msgs(const char *cmd, const char *msgs);

/* Flush stdout; on a write error print it and return EXIT_FAIL. */
int cli_flush_stdout(const char *cmd);

#endif /* SXM_CLI_H */
