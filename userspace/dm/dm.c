// SPDX-License-Identifier: GPL-2.0
/*
 * The dm layer over libdevmapper; see dm.h.
 *
 * Each operation is one struct dm_task.  Those that make a uevent carry a
 * udev cookie: where udev runs, dm_udev_wait() waits until its rules have
 * made the /dev/mapper node; where it does not (the test VM, containers),
 * libdevmapper makes the node itself and dm_udev_wait() is where it does.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libdevmapper.h>

#include "base/sxm.h"
#include "dm/dm.h"

/* libdevmapper's log levels (its _LOG_* are private). */
#define DM_LOG_LEVEL_MASK	0x0f
#define DM_LOG_WARN		4

__attribute__((format(printf, 5, 6)))
static void dm_log_cb(int level, const char *file, int line,
		      int dm_errno_or_class, const char *f, ...)
{
	va_list ap;

	/* The command says what failed; libdevmapper's detail is for -v. */
	if (!sxm_verbose)
		return;
	if ((level & DM_LOG_LEVEL_MASK) > DM_LOG_WARN && sxm_verbose < 2)
		return;
	fputs("sxm-ctl: libdevmapper: ", stderr);
	va_start(ap, f);
	vfprintf(stderr, f, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * A task for @name.  dm_task_create() fails only when it cannot talk to
 * device-mapper (or is out of memory); a path that names no device-mapper
 * device is -ENXIO.
 */
static int task_new(int type, const char *name, struct dm_task **out)
{
	static bool log_set;
	struct dm_task *dmt;

	if (!log_set) {
		dm_log_with_errno_init(dm_log_cb);
		log_set = true;
	}
	if (name && !strchr(name, '/') && strlen(name) > SXM_DM_NAME_MAX)
		return -ENAMETOOLONG;
	dmt = dm_task_create(type);
	if (!dmt)
		return -ENODEV;
	if (name && !dm_task_set_name(dmt, name)) {
		dm_task_destroy(dmt);
		return strchr(name, '/') ? -ENXIO : -EINVAL;
	}
	*out = dmt;
	return 0;
}

static int task_run(struct dm_task *dmt)
{
	int e;

	if (dm_task_run(dmt))
		return 0;
	e = dm_task_get_errno(dmt);
	return e > 0 ? -e : -EIO;
}

/* Run a task that makes a uevent, and wait until its node is done. */
static int task_run_udev(struct dm_task *dmt, uint16_t udev_flags)
{
	uint32_t cookie = 0;
	int r;

	if (!dm_task_set_cookie(dmt, &cookie, udev_flags))
		return -EIO;
	r = task_run(dmt);
	dm_udev_wait(cookie);
	return r;
}

/* Run a one-shot task on @name. */
static int simple(int type, const char *name, bool udev,
		  uint16_t udev_flags)
{
	struct dm_task *dmt;
	int r;

	r = task_new(type, name, &dmt);
	if (r)
		return r;
	r = udev ? task_run_udev(dmt, udev_flags) : task_run(dmt);
	dm_task_destroy(dmt);
	return r;
}

static uint16_t udev_flags_of(unsigned int flags)
{
	if (!(flags & SXM_DM_HIDDEN))
		return 0;
	return DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG |
	       DM_UDEV_DISABLE_DISK_RULES_FLAG |
	       DM_UDEV_DISABLE_OTHER_RULES_FLAG;
}

static int add_targets(struct dm_task *dmt, const struct sxm_table *tbl)
{
	unsigned int i;

	if (!tbl->nr)
		return -EINVAL;
	for (i = 0; i < tbl->nr; i++)
		if (!dm_task_add_target(dmt, tbl->t[i].start, tbl->t[i].len,
					tbl->t[i].type, tbl->t[i].params))
			return -ENOMEM;
	return 0;
}

/* ----------------------------------------------------------------------
 * Info
 * ----------------------------------------------------------------------
 */

static int info_of(struct dm_task *dmt, struct sxm_dm_info *info)
{
	struct dm_info di;
	const char *s;
	int r;

	memset(info, 0, sizeof(*info));
	r = task_run(dmt);
	if (r)
		return r;
	if (!dm_task_get_info(dmt, &di))
		return -EIO;
	if (!di.exists)
		return 0;
	info->exists = true;
	info->suspended = di.suspended;
	info->live_table = di.live_table;
	info->inactive_table = di.inactive_table;
	info->read_only = di.read_only;
	info->open_count = di.open_count;
	info->target_count = di.target_count;
	info->major = di.major;
	info->minor = di.minor;
	s = dm_task_get_name(dmt);
	if (s)
		snprintf(info->name, sizeof(info->name), "%s", s);
	s = dm_task_get_uuid(dmt);
	if (s)
		snprintf(info->uuid, sizeof(info->uuid), "%s", s);
	return 0;
}

int sxm_dm_info(const char *name, struct sxm_dm_info *info)
{
	struct dm_task *dmt;
	int r;

	memset(info, 0, sizeof(*info));
	r = task_new(DM_DEVICE_INFO, name, &dmt);
	if (r == -ENXIO)
		return 0;	/* a path that is no device-mapper device */
	if (r)
		return r;
	r = info_of(dmt, info);
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_info_dev(uint32_t major, uint32_t minor, struct sxm_dm_info *info)
{
	struct dm_task *dmt;
	int r;

	memset(info, 0, sizeof(*info));
	r = task_new(DM_DEVICE_INFO, NULL, &dmt);
	if (r)
		return r;
	if (!dm_task_set_major(dmt, major) || !dm_task_set_minor(dmt, minor))
		r = -EINVAL;
	else
		r = info_of(dmt, info);
	dm_task_destroy(dmt);
	return r;
}

/* ----------------------------------------------------------------------
 * Tables
 * ----------------------------------------------------------------------
 */

int sxm_dm_create(const char *name, const char *uuid,
		  const struct sxm_table *tbl, unsigned int flags)
{
	struct dm_task *dmt;
	int r;

	r = task_new(DM_DEVICE_CREATE, name, &dmt);
	if (r)
		return r;
	if (uuid && *uuid && !dm_task_set_uuid(dmt, uuid))
		r = -EINVAL;
	else if ((flags & SXM_DM_READ_ONLY) && !dm_task_set_ro(dmt))
		r = -ENOMEM;
	else
		r = add_targets(dmt, tbl);
	/*
	 * With a table, libdevmapper creates, loads and resumes, and removes
	 * the device again if the load or the resume fails.
	 */
	if (!r)
		r = task_run_udev(dmt, udev_flags_of(flags));
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_load(const char *name, const struct sxm_table *tbl,
		unsigned int flags)
{
	struct dm_task *dmt;
	int r;

	r = task_new(DM_DEVICE_RELOAD, name, &dmt);
	if (r)
		return r;
	if ((flags & SXM_DM_READ_ONLY) && !dm_task_set_ro(dmt))
		r = -ENOMEM;
	else
		r = add_targets(dmt, tbl);
	if (!r)
		r = task_run(dmt);
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_clear(const char *name)
{
	return simple(DM_DEVICE_CLEAR, name, false, 0);
}

/* Read the live or inactive table (DM_DEVICE_TABLE) or the status lines. */
static int get_lines(int type, const char *name, bool inactive,
		     struct sxm_table *tbl)
{
	struct dm_task *dmt;
	struct dm_info di;
	uint64_t start, len;
	char *ttype, *params;
	void *next = NULL;
	int r;

	memset(tbl, 0, sizeof(*tbl));
	r = task_new(type, name, &dmt);
	if (r)
		return r;
	if (inactive && !dm_task_query_inactive_table(dmt)) {
		r = -ENOMEM;
		goto out;
	}
	r = task_run(dmt);
	if (r)
		goto out;
	/* libdevmapper turns ENXIO on a status into "does not exist". */
	if (!dm_task_get_info(dmt, &di) || !di.exists) {
		r = -ENXIO;
		goto out;
	}
	do {
		ttype = NULL;
		params = NULL;
		next = dm_get_next_target(dmt, next, &start, &len, &ttype,
					  &params);
		if (!ttype)
			break;		/* no table */
		r = sxm_table_add(tbl, start, len, ttype, params);
	} while (next && !r);
	if (r)
		sxm_table_free(tbl);
out:
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_table(const char *name, struct sxm_table *tbl)
{
	return get_lines(DM_DEVICE_TABLE, name, false, tbl);
}

int sxm_dm_inactive_table(const char *name, struct sxm_table *tbl)
{
	return get_lines(DM_DEVICE_TABLE, name, true, tbl);
}

int sxm_dm_status(const char *name, struct sxm_table *tbl)
{
	return get_lines(DM_DEVICE_STATUS, name, false, tbl);
}

int sxm_dm_has_target_type(const char *type)
{
	struct dm_versions *v, *last;
	struct dm_task *dmt;
	int r;

	r = task_new(DM_DEVICE_LIST_VERSIONS, NULL, &dmt);
	if (r)
		return r;
	r = task_run(dmt);
	if (r)
		goto out;
	v = dm_task_get_versions(dmt);
	do {
		last = v;
		if (!strcmp(v->name, type)) {
			r = 1;
			break;
		}
		v = (void *)v + v->next;
	} while (last != v);
out:
	dm_task_destroy(dmt);
	return r;
}

/* ----------------------------------------------------------------------
 * Suspend, resume, remove, rename, message
 * ----------------------------------------------------------------------
 */

int sxm_dm_suspend(const char *name, unsigned int flags)
{
	struct dm_task *dmt;
	int r;

	r = task_new(DM_DEVICE_SUSPEND, name, &dmt);
	if (r)
		return r;
	if ((flags & SXM_DM_NOFLUSH) && !dm_task_no_flush(dmt))
		r = -ENOMEM;
	else if ((flags & SXM_DM_SKIP_LOCKFS) && !dm_task_skip_lockfs(dmt))
		r = -ENOMEM;
	else
		r = task_run(dmt);
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_resume(const char *name)
{
	return simple(DM_DEVICE_RESUME, name, true, 0);
}

int sxm_dm_remove(const char *name, bool retry)
{
	struct dm_task *dmt;
	int r;

	r = task_new(DM_DEVICE_REMOVE, name, &dmt);
	if (r)
		return r;
	if (retry && !dm_task_retry_remove(dmt))
		r = -ENOMEM;
	else
		r = task_run_udev(dmt, 0);
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_rename(const char *name, const char *new_name)
{
	struct dm_task *dmt;
	int r;

	r = sxm_check_dm_name(new_name);
	if (r)
		return r;
	r = task_new(DM_DEVICE_RENAME, name, &dmt);
	if (r)
		return r;
	if (!dm_task_set_newname(dmt, new_name))
		r = -EINVAL;
	else
		r = task_run_udev(dmt, 0);
	dm_task_destroy(dmt);
	return r;
}

int sxm_dm_message(const char *name, uint64_t sector, const char *msg,
		   char **response)
{
	struct dm_task *dmt;
	const char *resp;
	int r;

	if (response)
		*response = NULL;
	r = task_new(DM_DEVICE_TARGET_MSG, name, &dmt);
	if (r)
		return r;
	if (!dm_task_set_sector(dmt, sector) || !dm_task_set_message(dmt, msg))
		r = -ENOMEM;
	else
		r = task_run(dmt);
	if (!r && response) {
		resp = dm_task_get_message_response(dmt);
		if (resp && *resp) {
			*response = strdup(resp);
			if (!*response)
				r = -ENOMEM;
		}
	}
	dm_task_destroy(dmt);
	return r;
}

const char *sxm_dm_strerror(int err)
{
	switch (err) {
	case -ENODEV:
		return "device-mapper is not available (is dm-mod loaded?)";
	case -ENXIO:
		return "no such device-mapper device";
	case -ENAMETOOLONG:
		return "name too long for device-mapper";
	default:
		return strerror(-err);
	}
}
