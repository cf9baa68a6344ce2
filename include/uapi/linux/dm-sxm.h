/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * dm-sxm: the interface between the "sxm" device-mapper target and its
 * userspace helper, through the misc device /dev/dm-sxm.
 *
 * A helper opens /dev/dm-sxm, asks what the kernel supports
 * (SXM_IOC_GET_FEATURES), and attaches the open file to one sxm target
 * instance, named by the dev_t of its mapped device and the sector where the
 * target starts in the table (SXM_IOC_ATTACH).  From then on the file speaks
 * for that target: harvest its dirty map, acknowledge what it copied, mark
 * regions dirty, read its counters.  Closing the file detaches it.
 *
 * Versioning is by feature bits, never by struct layout: every struct here
 * starts with its size, ends in reserved space that must be zero, and is
 * pinned by a size assertion on both sides.  The kernel refuses feature bits,
 * flags and reserved fields it does not know (EINVAL), so a helper built
 * against a newer header learns at once what it cannot use.
 *
 * Dirty maps cross this interface as arrays of little-endian __u64 words:
 * region r is bit (r % 64) of word (r / 64).  Region r covers sectors
 * [r * region_sectors, (r + 1) * region_sectors) of the target, the last one
 * possibly short.
 */
#ifndef _UAPI_LINUX_DM_SXM_H
#define _UAPI_LINUX_DM_SXM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define SXM_MISC_NAME		"dm-sxm"
#define SXM_ABI_VERSION		1

/* Table-line bounds on the region size, in 512-byte sectors. */
#define SXM_MIN_REGION_SECTORS	8ULL		/* 4 KiB */
#define SXM_MAX_REGION_SECTORS	(1ULL << 21)	/* 1 GiB */

/*
 * Feature bits (struct sxm_features.features, struct sxm_attach.features).
 *
 * SXM_F_TRACK
 *	Changed-region tracking.  While the target is in "track" mode, every
 *	write, discard and write-zeroes marks each region it touches dirty
 *	before it is sent to the source.  SXM_IOC_HARVEST swaps in an empty map
 *	and returns the old one only after every write marked in the old map
 *	has completed on the source, so a region read after a harvest holds
 *	that write.  Each write is in exactly one harvested map.
 *
 * SXM_F_MARK_DIRTY
 *	SXM_IOC_MARK_DIRTY: OR a map (or every region) into the current dirty
 *	map.  Used for a full sync.
 *
 * SXM_F_HOLD
 *	Harvested regions are held, not forgotten: a harvest moves the dirty
 *	regions into the held map and returns all of it, and a region leaves
 *	the held map only when the helper acknowledges it (SXM_IOC_ACK) once
 *	its data is on the sink.  A helper that dies between a harvest and the
 *	copy loses nothing: the next harvest returns those regions again.
 *
 * SXM_F_TRACK_ID
 *	Every harvest and attach reports track_id: a random value chosen when
 *	tracking starts on a device and kept while it runs without a gap
 *	(across table reloads).  A helper that resumes after a restart compares
 *	it with the one it saved: if it differs, writes may have gone
 *	untracked and a full sync is needed.
 *
 * Bits 32..63 are reserved for the mirror ring (shared memory on an mmap of
 * this file, submission and completion rings, region locks); a kernel that
 * does not set them does not have it.
 */
#define SXM_F_TRACK		(1ULL << 0)
#define SXM_F_MARK_DIRTY	(1ULL << 1)
#define SXM_F_TRACK_ID		(1ULL << 2)
#define SXM_F_HOLD		(1ULL << 3)

/* Target modes, as reported by SXM_IOC_GET_INFO and dmsetup status. */
enum sxm_mode {
	SXM_MODE_PASSTHROUGH = 0,
	SXM_MODE_TRACK = 1,
};

/*
 * SXM_IOC_GET_FEATURES: what this kernel supports.  Needs no attach.
 */
struct sxm_features {
	__u32 size;			/* in: sizeof(struct sxm_features) */
	__u32 abi_version;		/* out: SXM_ABI_VERSION */
	__u64 features;			/* out: SXM_F_* supported */
	__u64 min_region_sectors;	/* out */
	__u64 max_region_sectors;	/* out */
	__u64 reserved[4];
};

/*
 * SXM_IOC_ATTACH: bind this file to one sxm target.
 *
 * Without SXM_ATTACH_OBSERVER the file becomes the target's helper: there is
 * at most one, and only the helper may harvest or mark regions dirty (EBUSY
 * for a second one, with helper_pid naming the holder).  An observer may
 * read the map (SXM_HARVEST_PEEK) and the counters, and there may be many.
 */
#define SXM_ATTACH_OBSERVER	(1U << 0)
#define SXM_ATTACH_FLAGS	(SXM_ATTACH_OBSERVER)

struct sxm_attach {
	__u32 size;			/* in: sizeof(struct sxm_attach) */
	__u32 flags;			/* in: SXM_ATTACH_* */
	__u32 dev_major;		/* in: the mapped device (dm-N) */
	__u32 dev_minor;		/* in */
	__u64 target_start;		/* in: sector of the target in the table */
	__u64 features;			/* in: SXM_F_* the helper will use */
	__u64 len_sectors;		/* out: length of the target */
	__u64 region_sectors;		/* out */
	__u64 nr_regions;		/* out */
	__u64 track_id;			/* out: see SXM_F_TRACK_ID, 0 if not tracking */
	__u32 helper_pid;		/* out: on EBUSY, the helper's tgid */
	__u32 reserved0;
	__u64 reserved[8];		/* ring geometry, later */
};

/*
 * SXM_IOC_HARVEST: hand the dirty map to the caller.
 *
 * Without SXM_HARVEST_PEEK (helper only): atomically switch new writes to
 * an empty map, wait until every write marked in the old one has completed
 * on the source, move the old map into the held map, and copy the held map
 * (every region harvested and not yet acknowledged) to bitmap_ptr.  If the
 * copy fails nothing is lost: the regions stay held.
 * With SXM_HARVEST_PEEK: copy the union of the current and the held map,
 * change nothing.
 *
 * bitmap_bytes must be at least map_bytes = 8 * ceil(nr_regions / 64);
 * the kernel writes exactly map_bytes.
 */
#define SXM_HARVEST_PEEK	(1U << 0)
#define SXM_HARVEST_FLAGS	(SXM_HARVEST_PEEK)

struct sxm_harvest {
	__u32 size;			/* in: sizeof(struct sxm_harvest) */
	__u32 flags;			/* in: SXM_HARVEST_* */
	__u64 bitmap_ptr;		/* in: user address of the map buffer */
	__u64 bitmap_bytes;		/* in: its size */
	__u64 nr_regions;		/* out */
	__u64 dirty_regions;		/* out: bits set in the returned map */
	__u64 generation;		/* out: harvests done on the device so far */
	__u64 track_id;			/* out */
	__u64 reserved[4];
};

/*
 * A set of regions, for SXM_IOC_MARK_DIRTY and SXM_IOC_ACK (helper only):
 * a map of exactly map_bytes whose bits past nr_regions are zero, or with
 * SXM_REGIONS_ALL every region (bitmap_ptr and bitmap_bytes then 0).
 *
 * SXM_IOC_MARK_DIRTY ORs the regions into the current dirty map; count is
 * how many were newly marked.
 * SXM_IOC_ACK drops the regions from the held map: their data is on the
 * sink.  count is how many were held.
 */
#define SXM_REGIONS_ALL		(1U << 0)
#define SXM_REGIONS_FLAGS	(SXM_REGIONS_ALL)

struct sxm_regions {
	__u32 size;			/* in: sizeof(struct sxm_regions) */
	__u32 flags;			/* in: SXM_REGIONS_* */
	__u64 bitmap_ptr;		/* in */
	__u64 bitmap_bytes;		/* in */
	__u64 count;			/* out */
	__u64 reserved[4];
};

/*
 * SXM_IOC_GET_INFO: the target's state and counters (any attached file).
 */
struct sxm_info {
	__u32 size;			/* in: sizeof(struct sxm_info) */
	__u32 mode;			/* out: enum sxm_mode */
	__u64 len_sectors;
	__u64 region_sectors;
	__u64 nr_regions;
	__u64 dirty_regions;		/* marked since the last harvest */
	__u64 harvests;			/* harvests done on the device */
	__u64 track_id;
	__u32 helper_pid;		/* 0: no helper attached */
	__u32 reserved0;
	__u64 held_regions;		/* harvested, not yet acknowledged */
	__u64 reserved[7];
};

#define SXM_IOC_MAGIC		0xE8

#define SXM_IOC_GET_FEATURES	_IOWR(SXM_IOC_MAGIC, 0x00, struct sxm_features)
#define SXM_IOC_ATTACH		_IOWR(SXM_IOC_MAGIC, 0x01, struct sxm_attach)
#define SXM_IOC_HARVEST		_IOWR(SXM_IOC_MAGIC, 0x02, struct sxm_harvest)
#define SXM_IOC_MARK_DIRTY	_IOWR(SXM_IOC_MAGIC, 0x03, struct sxm_regions)
#define SXM_IOC_GET_INFO	_IOWR(SXM_IOC_MAGIC, 0x04, struct sxm_info)
#define SXM_IOC_ACK		_IOWR(SXM_IOC_MAGIC, 0x05, struct sxm_regions)

/* Sizes pinned: a change here is an ABI break. */
#define SXM_FEATURES_SIZE	64
#define SXM_ATTACH_SIZE		136
#define SXM_HARVEST_SIZE	88
#define SXM_REGIONS_SIZE	64
#define SXM_INFO_SIZE		128

#endif /* _UAPI_LINUX_DM_SXM_H */
