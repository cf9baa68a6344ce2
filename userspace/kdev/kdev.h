/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /dev/dm-sxm, the sxm target's control device (include/uapi/linux/dm-sxm.h):
 * thin wrappers that fill in the size fields, check what comes back, and
 * return 0 or a negative errno:
 *
 *   -ENOENT	from sxm_kdev_open(): the dm-sxm module is not loaded;
 *   -ENODEV	from an attach: the device has no sxm target at that sector
 *		(the kernel's ENODEV and ENXIO both mean this);
 *   -EBUSY	from an attach: the target has a helper already, its pid is
 *		in attach->helper_pid;
 *   -EPERM	harvest or mark by a file attached as an observer;
 *   -EPROTO	from an attach: the kernel speaks another ABI (SXM_ABI_VERSION).
 */
#ifndef SXM_KDEV_H
#define SXM_KDEV_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/dm-sxm.h>

#define SXM_KDEV_PATH	"/dev/" SXM_MISC_NAME

/* A file descriptor on /dev/dm-sxm, or -errno. */
int sxm_kdev_open(void);
int sxm_kdev_features(int fd, struct sxm_features *f);
/* 0 if the kernel's ABI is this helper's (SXM_ABI_VERSION), else -EPROTO. */
int sxm_kdev_check_abi(int fd);

/*
 * Attach @fd to the sxm target at sector @start of the mapped device
 * @major:@minor (or the block device at @path).  @flags: SXM_ATTACH_*.
 * @a is filled in on success, and helper_pid on -EBUSY.
 */
int sxm_kdev_attach(int fd, uint32_t major, uint32_t minor, uint64_t start,
		    uint32_t flags, uint64_t features, struct sxm_attach *a);
int sxm_kdev_attach_path(int fd, const char *path, uint64_t start,
			 uint32_t flags, uint64_t features,
			 struct sxm_attach *a);

/*
 * Harvest the dirty map (or, with SXM_HARVEST_PEEK, copy it).  *@map is
 * malloc'd to the target's current size, sxm_map_bytes(h->nr_regions).
 */
int sxm_kdev_harvest(int fd, uint32_t flags, uint64_t **map,
		     struct sxm_harvest *h);

/* Mark every region dirty, or those set in @map (@nr_regions bits). */
int sxm_kdev_mark_all(int fd, uint64_t *marked);
int sxm_kdev_mark_map(int fd, const uint64_t *map, uint64_t nr_regions,
		      uint64_t *marked);

/*
 * Acknowledge the regions set in @map (or, with @map NULL, every held
 * region): their data is on the sink and the kernel may forget them.
 */
int sxm_kdev_ack(int fd, const uint64_t *map, uint64_t nr_regions,
		 uint64_t *acked);

int sxm_kdev_info(int fd, struct sxm_info *info);

/* Mirroring on (needs a ring: mirror.h) or off (back to tracking). */
int sxm_kdev_mirror(int fd, bool on);

/*
 * Take (or with @release, release) @nr region ranges at once, at most
 * SXM_LOCK_MAX held: taking waits until no mirrored write is in flight
 * there, and holds new ones until the release.
 */
int sxm_kdev_lock(int fd, const struct sxm_lock_range *ranges,
		  uint32_t nr, bool release);

/*
 * The mirror ring (io/pump.h drives it): set it up on @fd, attached as
 * the helper, with @entries, @slot_bytes and @timeout_ms (0: the kernel's
 * defaults), and map it.  @geo gets the geometry the kernel chose, *@area
 * the mapping (geo->mmap_bytes long; munmap() it).
 */
int sxm_kdev_ring_setup(int fd, uint32_t entries, uint32_t slot_bytes,
			uint32_t timeout_ms, struct sxm_ring_setup *geo,
			void **area);
/* Hand the completions posted so far to the kernel (SXM_IOC_RING_ENTER). */
int sxm_kdev_ring_enter(int fd);

/* The text for an errno from opening /dev/dm-sxm (-ENOENT, -EACCES). */
const char *sxm_kdev_strerror(int err);

#endif /* SXM_KDEV_H */
