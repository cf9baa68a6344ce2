// SPDX-License-Identifier: GPL-2.0
/* /dev/dm-sxm wrappers; see kdev.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "kdev/kdev.h"

_Static_assert(sizeof(struct sxm_features) == SXM_FEATURES_SIZE,
	       "struct sxm_features changed size");
_Static_assert(sizeof(struct sxm_attach) == SXM_ATTACH_SIZE,
	       "struct sxm_attach changed size");
_Static_assert(sizeof(struct sxm_harvest) == SXM_HARVEST_SIZE,
	       "struct sxm_harvest changed size");
_Static_assert(sizeof(struct sxm_regions) == SXM_REGIONS_SIZE,
	       "struct sxm_regions changed size");
_Static_assert(sizeof(struct sxm_info) == SXM_INFO_SIZE,
	       "struct sxm_info changed size");

#define SXM_SYSFS_DEV	"/sys/class/misc/" SXM_MISC_NAME "/dev"

/*
 * The module is loaded but nothing made its node (no udev, no devtmpfs):
 * make it from the number sysfs gives, as libdevmapper does for
 * /dev/mapper/control.
 */
static int make_node(void)
{
	unsigned int ma, mi;
	FILE *f;
	int n;

	f = fopen(SXM_SYSFS_DEV, "re");
	if (!f)
		return -ENOENT;
	n = fscanf(f, "%u:%u", &ma, &mi);
	fclose(f);
	if (n != 2)
		return -EIO;
	if (mknod(SXM_KDEV_PATH, S_IFCHR | 0600, makedev(ma, mi)) &&
	    errno != EEXIST)
		return -errno;
	return 0;
}

int sxm_kdev_open(void)
{
	int fd, r;

	fd = open(SXM_KDEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		r = make_node();
		if (r)
			return r;
		fd = open(SXM_KDEV_PATH, O_RDWR | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

int sxm_kdev_features(int fd, struct sxm_features *f)
{
	memset(f, 0, sizeof(*f));
	f->size = sizeof(*f);
	return xioctl(fd, SXM_IOC_GET_FEATURES, f);
}

int sxm_kdev_check_abi(int fd)
{
	struct sxm_features f;
	int r;

	r = sxm_kdev_features(fd, &f);
	if (r)
		return r;
	return f.abi_version == SXM_ABI_VERSION ? 0 : -EPROTO;
}

int sxm_kdev_attach(int fd, uint32_t major, uint32_t minor, uint64_t start,
		    uint32_t flags, uint64_t features, struct sxm_attach *a)
{
	int r;

	memset(a, 0, sizeof(*a));
	/* Every attach: the kernel must speak this helper's ABI. */
	r = sxm_kdev_check_abi(fd);
	if (r)
		return r;
	a->size = sizeof(*a);
	a->flags = flags;
	a->dev_major = major;
	a->dev_minor = minor;
	a->target_start = start;
	a->features = features;
	r = xioctl(fd, SXM_IOC_ATTACH, a);
	if (r == -ENXIO)
		r = -ENODEV;
	return r;
}

int sxm_kdev_attach_path(int fd, const char *path, uint64_t start,
			 uint32_t flags, uint64_t features,
			 struct sxm_attach *a)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	return sxm_kdev_attach(fd, major(st.st_rdev), minor(st.st_rdev),
			       start, flags, features, a);
}

int sxm_kdev_info(int fd, struct sxm_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return xioctl(fd, SXM_IOC_GET_INFO, info);
}

int sxm_kdev_harvest(int fd, uint32_t flags, uint64_t **map,
		     struct sxm_harvest *h)
{
	struct sxm_info info;
	uint64_t nr, bytes;
	uint64_t *buf;
	int r, tries;

	r = sxm_kdev_info(fd, &info);
	if (r)
		return r;
	/*
	 * The buffer is sized from the target's region count; if a table
	 * reload changed it before the harvest, size it again.
	 */
	for (tries = 0; ; tries++) {
		nr = info.nr_regions;
		bytes = sxm_map_bytes(nr);
		buf = calloc(1, bytes ? bytes : sizeof(*buf));
		if (!buf)
			return -ENOMEM;
		memset(h, 0, sizeof(*h));
		h->size = sizeof(*h);
		h->flags = flags;
		h->bitmap_ptr = (uintptr_t)buf;
		h->bitmap_bytes = bytes;
		r = xioctl(fd, SXM_IOC_HARVEST, h);
		if (!r && sxm_map_bytes(h->nr_regions) > bytes)
			r = -EIO;	/* the kernel wrote past the buffer */
		if (!r) {
			*map = buf;
			return 0;
		}
		free(buf);
		if (tries == 2 ||
		    (r != -EINVAL && r != -ENOSPC && r != -EOVERFLOW))
			return r;
		if (sxm_kdev_info(fd, &info) || info.nr_regions == nr)
			return r;
	}
}

/* SXM_IOC_MARK_DIRTY or SXM_IOC_ACK on a map, or with @map NULL all. */
static int regions_op(int fd, unsigned long cmd, const uint64_t *map,
		      uint64_t bytes, uint64_t *count)
{
	struct sxm_regions m = {
		.size = sizeof(m),
		.flags = map ? 0 : SXM_REGIONS_ALL,
		.bitmap_ptr = (uintptr_t)map,
		.bitmap_bytes = map ? bytes : 0,
	};
	int r;

	r = xioctl(fd, cmd, &m);
	if (!r && count)
		*count = m.count;
	return r;
}

int sxm_kdev_mark_all(int fd, uint64_t *marked)
{
	return regions_op(fd, SXM_IOC_MARK_DIRTY, NULL, 0, marked);
}

int sxm_kdev_ack(int fd, const uint64_t *map, uint64_t nr_regions,
		 uint64_t *acked)
{
	return regions_op(fd, SXM_IOC_ACK, map, sxm_map_bytes(nr_regions),
			  acked);
}

int sxm_kdev_mark_map(int fd, const uint64_t *map, uint64_t nr_regions,
		      uint64_t *marked)
{
	return regions_op(fd, SXM_IOC_MARK_DIRTY, map, sxm_map_bytes(nr_regions),
			  marked);
}

int sxm_kdev_mirror(int fd, bool on)
{
	struct sxm_mirror m = { .size = sizeof(m), .on = on };

	return xioctl(fd, SXM_IOC_MIRROR, &m);
}

int sxm_kdev_lock(int fd, const struct sxm_lock_range *ranges,
		  uint32_t nr, bool release)
{
	struct sxm_lock l = {
		.size = sizeof(l),
		.flags = release ? SXM_LOCK_RELEASE : 0,
		.ranges_ptr = (uintptr_t)ranges,
		.nr_ranges = nr,
	};

	return xioctl(fd, SXM_IOC_LOCK, &l);
}

int sxm_kdev_ring_setup(int fd, uint32_t entries, uint32_t slot_bytes,
			uint32_t timeout_ms, struct sxm_ring_setup *geo,
			void **area)
{
	void *a;

	memset(geo, 0, sizeof(*geo));
	geo->size = sizeof(*geo);
	geo->entries = entries;
	geo->slot_bytes = slot_bytes;
	geo->timeout_ms = timeout_ms;
	if (ioctl(fd, SXM_IOC_RING_SETUP, geo) < 0)
		return -errno;
	a = mmap(NULL, geo->mmap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	if (a == MAP_FAILED)
		return -errno;
	*area = a;
	return 0;
}

int sxm_kdev_ring_enter(int fd)
{
	return ioctl(fd, SXM_IOC_RING_ENTER) < 0 ? -errno : 0;
}

const char *sxm_kdev_strerror(int err)
{
	switch (err) {
	case -ENOENT:
		return "dm-sxm module not loaded (no " SXM_KDEV_PATH ")";
	case -EACCES:
	case -EPERM:
		return "/dev/dm-sxm needs CAP_SYS_ADMIN";
	case -EPROTO:
		return "the dm-sxm module speaks another ABI than this sxm-ctl (see sxm-ctl version)";
	default:
		return strerror(-err);
	}
}
