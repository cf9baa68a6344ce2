/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The text formats of the dm layer, with no libdevmapper and no I/O, so
 * that the native tests can link them alone:
 *
 *   - device-mapper tables as lists of targets, and as the text
 *     "dmsetup table" prints (one "<start> <len> <type> <params>" a line);
 *   - the sxm target's table arguments and its status line;
 *   - region sizes and device-mapper names, checked before anything is done;
 *   - the record "sxm-ctl insert" keeps to undo itself.
 *
 * Every function returns 0 or a negative errno (-EINVAL for text that does
 * not parse, -ERANGE for a number out of bounds, -ENOMEM) and prints nothing.
 */
#ifndef SXM_STATUS_H
#define SXM_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SXM_TARGET_TYPE		"sxm"
#define SXM_DM_NAME_MAX		127	/* DM_NAME_LEN - 1 */
#define SXM_DM_TYPE_MAX		15	/* DM_MAX_TYPE_NAME - 1 */
#define SXM_DEFAULT_REGION_SIZE	(64 * 1024)

/* ----------------------------------------------------------------------
 * Tables
 * ----------------------------------------------------------------------
 */

/* One target of a table, or one line of a status; sizes in sectors. */
struct sxm_table_target {
	uint64_t start;
	uint64_t len;
	char *type;
	char *params;		/* "" when the target has none */
};

struct sxm_table {
	unsigned int nr;
	struct sxm_table_target *t;
};

void sxm_table_free(struct sxm_table *tbl);
int sxm_table_add(struct sxm_table *tbl, uint64_t start, uint64_t len,
		  const char *type, const char *params);
/* Append one "<start> <len> <type> [<params>]" line (no newline). */
int sxm_table_add_line(struct sxm_table *tbl, const char *line);
/* The device size the table maps: the end of its last target. */
uint64_t sxm_table_sectors(const struct sxm_table *tbl);
bool sxm_table_equal(const struct sxm_table *a, const struct sxm_table *b);
/* The table as "dmsetup table" prints it; the caller frees it. */
char *sxm_table_text(const struct sxm_table *tbl);

/* ----------------------------------------------------------------------
 * The sxm target
 * ----------------------------------------------------------------------
 */

/* A metadata device in a table (the admin guide's "The metadata device"). */
struct sxm_meta_arg {
	const char *path;	/* metadata:<path> */
	const char *source_id;	/* source_id:<id> */
	bool reset;		/* metadata_reset: bind it anew, a new track */
};

/*
 * A word of a table: not empty, no white space (dm splits the arguments
 * there).  A source id: 1 to SXM_META_SOURCE_ID_LEN - 1 characters, each
 * 0x21..0x7e (as the kernel takes it).
 */
bool sxm_table_word(const char *s);
bool sxm_source_id_ok(const char *s);

/* Room for any arguments sxm_params_build() makes. */
#define SXM_PARAMS_MAX	1024

/*
 * The table arguments: "<major:minor> <region_sectors>", then the features:
 * "track", and with @meta (or NULL) "metadata:<path> source_id:<id>" and
 * "metadata_reset".  -EINVAL: a path that is not a table word, or an id
 * that is not a source id (above); -ENOSPC: @len is too small.
 */
int sxm_params_build(char *buf, size_t len, uint32_t major, uint32_t minor,
		     uint64_t region_sectors, bool track,
		     const struct sxm_meta_arg *meta);

struct sxm_params {
	uint32_t major;
	uint32_t minor;
	uint64_t region_sectors;
	bool track;
	bool has_meta;		/* metadata:<major:minor> */
	uint32_t meta_major;
	uint32_t meta_minor;
};

/* Read the TABLE status (the arguments as the kernel reports them). */
int sxm_params_parse(const char *params, struct sxm_params *p);

/*
 * The INFO status (kernel/dm-sxm-target.c, above sxm_status(); the admin
 * guide's status table):
 *   <mode> <region_sectors> <nr_regions> <dirty_regions> <harvests> <pid|->
 *   [<held_regions> [<mirror> <in_flight> <held_back> <mirrored_writes>
 *    <mirrored_bytes> <degradations> <reason>]]
 * held_regions is absent from a kernel that does not hold harvested
 * regions (read as 0); the seven mirror fields come as a group (has_mirror;
 * mirror reads "off" without them); fields appended after them are
 * ignored.  This is the one parser of the status line.
 */
struct sxm_status {
	char mode[16];		/* "passthrough", "track", ... */
	uint64_t region_sectors;
	uint64_t nr_regions;
	uint64_t dirty_regions;
	uint64_t harvests;
	uint32_t helper_pid;	/* 0: no helper ("-") */
	uint64_t held_regions;	/* harvested, not yet acknowledged */
	bool has_mirror;	/* the mirror fields below were there */
	char mirror[12];	/* "off", "on", "degraded" */
	uint64_t in_flight;	/* writes posted on the ring */
	uint64_t held_back;	/* writes waiting (overlap, lock, ring full) */
	uint64_t mirrored_writes;
	uint64_t mirrored_bytes;
	uint64_t degradations;	/* times the mirror went down */
	char reason[32];	/* why it last went down, or "-" */
	/* The persistent map (target 1.3.0 on), if has_meta. */
	bool has_meta;		/* a metadata device is in the table */
	char meta_dev[24];	/* "major:minor" */
	char meta_state[12];	/* "active", "failed" */
	uint64_t meta_bits;	/* regions set on the metadata device */
	uint64_t meta_writes;	/* metadata blocks written */
	uint64_t meta_write_us;	/* their mean latency */
	char meta_loaded[12];	/* "new", "clean", "unclean", "reset" */
	uint64_t meta_clean_time;	/* last clean shutdown before the load */
	char meta_reason[32];	/* why it went off, or "-" */
};

int sxm_status_parse(const char *params, struct sxm_status *st);

/*
 * A region size in bytes to sectors: a power of two from 4 KiB to 1 GiB
 * (-EINVAL if not a power of two, -ERANGE if out of bounds).
 */
int sxm_region_sectors(uint64_t bytes, uint64_t *sectors);

/* A name device-mapper accepts for a new device (-EINVAL, -ENAMETOOLONG). */
int sxm_check_dm_name(const char *name);

/* ----------------------------------------------------------------------
 * The insert record
 * ----------------------------------------------------------------------
 */

/*
 * What "sxm-ctl insert" did to a device, written before it changes
 * anything, so that "sxm-ctl restore" can undo it even after a crash.
 * As text:
 *
 *   sxm-insert 1
 *   name <dm name>
 *   hidden <dm name of the device that holds the original table>
 *   read_only 0|1
 *   target <start> <len> <type> <params>      (one a target, in order)
 */
struct sxm_insert_rec {
	char name[SXM_DM_NAME_MAX + 1];
	char hidden[SXM_DM_NAME_MAX + 1];
	bool read_only;
	struct sxm_table table;	/* the original table */
};

/* The caller frees the text. */
char *sxm_insert_rec_format(const struct sxm_insert_rec *rec);
int sxm_insert_rec_parse(const char *text, struct sxm_insert_rec *rec);

#endif /* SXM_STATUS_H */
