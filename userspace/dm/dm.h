/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The dm layer: the few device-mapper operations sxm-ctl needs, over
 * libdevmapper.
 *
 * A device is named by its device-mapper name or a path to it
 * (/dev/mapper/NAME, /dev/VG/LV, as dmsetup accepts).  Every function
 * returns 0 or a negative errno: the errno of the device-mapper ioctl that
 * failed (ENXIO: no such device, EBUSY: open or in use, EINVAL: the kernel
 * refused the table or message, its reason is in the kernel log), or
 * -ENODEV when device-mapper itself is not available.  libdevmapper's own
 * messages are shown with -v only.
 *
 * Device nodes: operations that make a uevent (create, resume, remove,
 * rename) wait for udev when it runs, and otherwise make or remove the
 * /dev/mapper node themselves, so the nodes are there (or gone) on return
 * in both cases.
 */
#ifndef SXM_DM_H
#define SXM_DM_H

#include <stdbool.h>
#include <stdint.h>

#include "dm/status.h"

struct sxm_dm_info {
	bool exists;
	bool suspended;
	bool live_table;
	bool inactive_table;
	bool read_only;
	int32_t open_count;
	int32_t target_count;
	uint32_t major;
	uint32_t minor;
	char name[SXM_DM_NAME_MAX + 1];	/* the device-mapper name */
	char uuid[129];			/* "" when it has none */
};

/* Flags of sxm_dm_create() and sxm_dm_load(). */
#define SXM_DM_READ_ONLY	(1U << 0)
/* Keep udev's disk and subsystem rules off the device (an inner layer). */
#define SXM_DM_HIDDEN		(1U << 1)

/* Flags of sxm_dm_suspend(). */
#define SXM_DM_NOFLUSH		(1U << 0)	/* requeue in-flight I/O */
#define SXM_DM_SKIP_LOCKFS	(1U << 1)	/* do not freeze a filesystem */

/* Info; a missing device is info->exists == false, not an error. */
int sxm_dm_info(const char *name, struct sxm_dm_info *info);
int sxm_dm_info_dev(uint32_t major, uint32_t minor, struct sxm_dm_info *info);

/* Create a device with @tbl as its live table (create, load, resume). */
int sxm_dm_create(const char *name, const char *uuid,
		  const struct sxm_table *tbl, unsigned int flags);
/* Load @tbl as the inactive table; the next resume makes it live. */
int sxm_dm_load(const char *name, const struct sxm_table *tbl,
		unsigned int flags);
/* Drop the inactive table. */
int sxm_dm_clear(const char *name);
int sxm_dm_suspend(const char *name, unsigned int flags);
int sxm_dm_resume(const char *name);
/* With @retry, an EBUSY device is tried again for a few seconds. */
int sxm_dm_remove(const char *name, bool retry);
int sxm_dm_rename(const char *name, const char *new_name);
/* *@response (may be NULL) is the target's answer, or NULL; free it. */
int sxm_dm_message(const char *name, uint64_t sector, const char *msg,
		   char **response);
/*
 * The live table, the inactive one (loaded, not yet resumed) and the status
 * (INFO) lines, as tables; a device with no such table gives tbl->nr == 0.
 */
int sxm_dm_table(const char *name, struct sxm_table *tbl);
int sxm_dm_inactive_table(const char *name, struct sxm_table *tbl);
int sxm_dm_status(const char *name, struct sxm_table *tbl);
/* 1 if device-mapper has the target type @type loaded, 0 if not. */
int sxm_dm_has_target_type(const char *type);

/*
 * The text for an errno from this layer: -ENODEV (no device-mapper),
 * -ENXIO (no such device) and -ENAMETOOLONG say what they mean here.
 */
const char *sxm_dm_strerror(int err);

#endif /* SXM_DM_H */
