/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm_status.h — a device-mapper device's status line and existence, read
 * with the DM ioctls on /dev/mapper/control (as `dmsetup status` does), for
 * the VM's C tests.  The tests read the status dozens of times each: a
 * dmsetup process per read costs a third of a second on the debug kernel
 * under TCG, this a few milliseconds.
 */
#ifndef SXM_TEST_DM_STATUS_H
#define SXM_TEST_DM_STATUS_H

#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/*
 * The status of @name's first target of type @type ("" for any) as dmsetup
 * prints it after "START LEN TYPE ", into @out.  0, or -1 (no such device,
 * no such target, or the ioctl failed).
 */
static inline int dm_target_status(const char *name, const char *type,
				   char *out, size_t outlen)
{
	union {
		struct dm_ioctl io;
		char buf[16384];
	} u;
	size_t off;
	unsigned int i;
	int fd, r;

	memset(&u.io, 0, sizeof(u.io));
	u.io.version[0] = DM_VERSION_MAJOR;
	u.io.data_size = sizeof(u);
	u.io.data_start = sizeof(u.io);
	snprintf(u.io.name, sizeof(u.io.name), "%s", name);
	fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = ioctl(fd, DM_TABLE_STATUS, &u.io);
	close(fd);
	if (r || (u.io.flags & DM_BUFFER_FULL_FLAG))
		return -1;
	off = u.io.data_start;
	for (i = 0; i < u.io.target_count; i++) {
		const struct dm_target_spec *sp;

		if (off + sizeof(*sp) > sizeof(u) || off < u.io.data_start)
			return -1;
		sp = (const struct dm_target_spec *)(u.buf + off);
		if (!*type || !strncmp(sp->target_type, type,
				       sizeof(sp->target_type))) {
			snprintf(out, outlen, "%.*s",
				 (int)(sizeof(u) - off - sizeof(*sp)),
				 (const char *)(sp + 1));
			return 0;
		}
		/* An output spec's next is from the start of the data. */
		off = u.io.data_start + sp->next;
	}
	return -1;
}

/* Whether a dm device named @name exists. */
static inline int dm_exists(const char *name)
{
	char path[160];

	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	return access(path, F_OK) == 0;
}

/* Remove @name if it exists: what a test left, if it stopped half way. */
static inline void dm_remove_leftover(const char *name)
{
	char cmd[192];

	if (!dm_exists(name))
		return;
	snprintf(cmd, sizeof(cmd), "dmsetup remove --retry %s 2>/dev/null", name);
	if (system(cmd))
		fprintf(stderr, "# could not remove %s\n", name);
}

#endif
