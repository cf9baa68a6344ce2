/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live insertion (insert.c): put the sxm target under a device-mapper device
 * that is in use, and take it out again.
 *
 * sxm_insert() moves DMNAME's table to the hidden device DMNAME-sxm-orig
 * and reloads DMNAME with "0 <len> sxm <hidden> <region>", in one
 * suspend/resume; sxm_restore() is the exact reverse.  Both keep a record
 * in the state directory ($SXM_STATE_DIR, default /run/sxm) so that a
 * restore finishes whatever an interrupted insert or restore left, and
 * both lock that directory while they run.  A failure part-way puts the
 * device back on the table it ran before.
 *
 * Error policy: 0 or -errno, and nothing printed; what went wrong is in
 * @err, one line per thing said (sxm_msg_add()), each beginning with
 * "DMNAME: " but those about the state directory.  A failure undone says
 * so in a line of its own.
 */
#ifndef SXM_INSERT_H
#define SXM_INSERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm/status.h"

#define SXM_STATE_DIR_DEFAULT	"/run/sxm"
#define HIDDEN_SUFFIX		"-sxm-orig"
/* The uuid of a hidden device: this, then the original's major:minor. */
#define HIDDEN_UUID_PREFIX	"SXM-ORIG-"

/* What an insert did. */
struct sxm_inserted {
	char name[SXM_DM_NAME_MAX + 1];		/* the device, now over sxm */
	char hidden[SXM_DM_NAME_MAX + 1];	/* holds the original table */
	uint32_t hidden_major;
	uint32_t hidden_minor;
};

/* The directory of insert records: $SXM_STATE_DIR or /run/sxm. */
const char *sxm_insert_state_dir(void);

/* With @meta (or NULL), the sxm target keeps its map on that device. */
int sxm_insert(const char *dmname, uint64_t region_sectors, bool track,
	       const struct sxm_meta_arg *meta, struct sxm_inserted *done,
	       char *err, size_t errlen);

/*
 * The sxm device @name is about to be taken away (restore, remove, a job's
 * cancel): if its live table @live keeps its map on a metadata device, end
 * the track there first ("mode passthrough" writes "no track" on it), so
 * that a later load starts a new track rather than trust a map that the
 * writes without sxm do not reach.  0, or -errno with the reason in @err
 * (the device unchanged).  A host's shutdown (dmsetup remove) keeps the
 * track: that is what the map is for.
 */
int sxm_end_track(const char *name, const struct sxm_table *live, char *err,
		  size_t errlen);

/*
 * Put DMNAME's original table back.  Refused (-EBUSY) while a helper is
 * attached to its sxm target, unless @force.  @name gets the device's
 * device-mapper name.
 */
int sxm_restore(const char *dmname, bool force, char *name, size_t namelen,
		char *err, size_t errlen);

#endif /* SXM_INSERT_H */
