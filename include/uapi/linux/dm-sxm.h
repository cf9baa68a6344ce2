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
 * Versioning, three things, each with one job:
 *
 *   struct size	the layout.  Every struct starts with its size, which is
 *			also the size in its ioctl number, and ends in reserved
 *			space that must be zero.  The kernel accepts a larger
 *			struct from a newer helper as long as what it does not
 *			know of it is zero, and writes back only what it knows;
 *			it refuses a smaller one (EINVAL).  So new fields go in
 *			the reserved space first; a struct that must grow
 *			beyond it is an incompatible change, and bumps
 *			SXM_ABI_VERSION.  The sizes are pinned below
 *			(SXM_*_SIZE) and asserted on both sides.
 *   feature bits	what the kernel can do (SXM_IOC_GET_FEATURES), and what
 *			a helper will use (SXM_IOC_ATTACH).  New capabilities
 *			are new bits; the kernel refuses bits, flags and
 *			reserved fields it does not know (EINVAL), so a helper
 *			built against a newer header learns at once what it
 *			cannot use.
 *   SXM_ABI_VERSION	changes only when a meaning changes incompatibly (a
 *			bit or a field that means something else).  A helper
 *			refuses a kernel whose abi_version is not its own.
 *			Version 2 numbered the feature bits without a gap and
 *			gave struct sxm_info the mirror's counters.
 *
 * The ioctls' magic, 0xE8, is not among those
 * Documentation/userspace-api/ioctl/ioctl-number.rst lists; ioctls reach
 * only this misc device, so a clash could not misroute one anyway.
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
#define SXM_ABI_VERSION		2

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
 * SXM_F_MIRROR
 *	The mirror ring: SXM_IOC_RING_SETUP, an mmap of this file, mode
 *	"mirror" (SXM_IOC_MIRROR or the dm message), SXM_IOC_RING_ENTER, and
 *	region locks (SXM_IOC_LOCK).  See "The mirror ring" below.
 *
 * SXM_F_EVENTS
 *	SXM_IOC_GET_INFO reports the mirror's state, why it last went down,
 *	and a count of its changes (events); poll() on the file reports
 *	EPOLLPRI while that count differs from the one this file last read
 *	with SXM_IOC_GET_INFO, and each change also raises a dm event
 *	(dmsetup wait).  A helper waits on these instead of polling the
 *	status.
 *
 * Bits 6..63 are reserved.
 */
#define SXM_F_TRACK		(1ULL << 0)	/* changed-region tracking */
#define SXM_F_MARK_DIRTY	(1ULL << 1)	/* SXM_IOC_MARK_DIRTY */
#define SXM_F_TRACK_ID		(1ULL << 2)	/* track_id across reloads */
#define SXM_F_HOLD		(1ULL << 3)	/* held map, SXM_IOC_ACK */
#define SXM_F_EVENTS		(1ULL << 4)	/* mirror events, EPOLLPRI */
#define SXM_F_MIRROR		(1ULL << 5)	/* the mirror ring, locks */

/* Target modes, as reported by SXM_IOC_GET_INFO and dmsetup status. */
enum sxm_mode {
	SXM_MODE_PASSTHROUGH = 0,
	SXM_MODE_TRACK = 1,
	SXM_MODE_MIRROR = 2,
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
	__u64 reserved[8];
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
 * how many were newly marked.  With a persistent map (metadata:<dev>)
 * they are on the metadata device when the call returns, as a write's
 * region is when the write completes (unless that write fails: the map is
 * then off, as after any metadata failure, and the call still succeeds);
 * the call may wait for the metadata device, meta_timeout_ms at most for
 * each 16 map blocks it writes.  ENODEV: the target's last table went
 * meanwhile, and the marks may not be on the metadata device.
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

/* The mirror's state (struct sxm_info.mirror, the status line's word). */
enum sxm_mirror_state {
	SXM_MIRROR_OFF = 0,
	SXM_MIRROR_ON = 1,
	SXM_MIRROR_DEGRADED = 2,
};

/*
 * SXM_IOC_GET_INFO: the target's state and counters (any attached file),
 * the same as the status line's (the admin guide's status table), so a
 * helper need not parse text.  It also marks the events up to
 * mirror_events as seen by this file (see SXM_F_EVENTS): a helper whose
 * pump waits for those events and that reads the info on the same file
 * for other needs (to size a harvest) must also look at the mirror state
 * itself, or read the info on another file (an observer).
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
	__u32 mirror;			/* enum sxm_mirror_state */
	__u32 reserved1;
	__u64 mirror_events;		/* changes of the mirror state so far */
	__u64 degradations;		/* times the mirror went down */
	char degraded_reason[24];	/* why it last did ("" if never) */
	__u32 mirror_in_flight;		/* writes posted, not yet completed */
	__u32 mirror_held_back;		/* writes waiting: overlap, lock, full */
	__u64 mirrored_writes;		/* writes mirrored so far */
	__u64 mirrored_bytes;		/* their bytes */
	__u64 reserved[2];
};

/*
 * The mirror ring
 * ===============
 *
 * Shared memory the helper maps with mmap(fd, mmap_bytes, offset 0) after
 * SXM_IOC_RING_SETUP.  Everything in it is addressed by offsets from its
 * start, never by pointers, so a restarted helper can set up and map a new
 * ring.  Layout (offsets returned by the setup):
 *
 *   hdr_off   struct sxm_ring_hdr: the four ring indices
 *   sq_off    struct sxm_sqe[entries]: submissions, kernel -> helper
 *   cq_off    struct sxm_cqe[entries]: completions, helper -> kernel
 *   data_off  entries slots of slot_bytes: the data of mirrored writes
 *
 * The mapping must be MAP_SHARED and not executable.  The header and the
 * cqes are writable; the sqes and the data slots are read-only whatever
 * the mapping asks for (a write there is SIGBUS, mprotect() cannot change
 * it): the source is written from the same slot the helper sends to the
 * sink, and the helper must not be able to change what lands on the
 * source.  The memory cannot be pinned (it is a VM_PFNMAP mapping): send
 * a slot to an O_DIRECT file or a registered io_uring buffer by copying
 * it first.
 *
 * Indices are free-running __u32; entry i of a ring is at (index % entries).
 * A new ring's four indices are all SXM_RING_INDEX_START, not 0: they wrap
 * past 0 after SXM_RING_INDEX_START_BEFORE_WRAP sqes, so that a helper that
 * compares them wrongly fails at once, not after 2^32 writes.  A helper
 * reads them from the header; it must not assume where they start.
 * The kernel writes sq_tail and cq_head, the helper sq_head and cq_tail;
 * each side reads the other's with acquire and publishes its own with
 * release semantics.
 *
 * While the target is in mirror mode, each write, discard, write-zeroes and
 * flush is posted as one sqe (a secure erase as a write-zeroes); a write's
 * data is copied into the slot at data_off first.  The guest's bio
 * completes only when the source write has completed and the helper has
 * posted a cqe with the same id and status 0 (for SXM_SQE_FUA and
 * SXM_OP_FLUSH: after the sink made it durable).  Overlapping writes are
 * posted one after the other: a write is held until every earlier
 * overlapping one has completed both ways, so the helper may send every
 * sqe it sees at once.  A flush waits for nothing: it covers the writes the
 * helper completed before it read the flush's sqe, which the helper must
 * make durable (an NBD flush sent after their replies does).  A failed
 * flush degrades the mirror and marks dirty every region the sink
 * acknowledged since its last good flush.
 *
 * Wake-ups: poll() on the file is readable while sqes are waiting; the
 * helper consumes them (advancing sq_head), and after posting cqes calls
 * SXM_IOC_RING_ENTER, which reaps them.  No one polls busily.
 *
 * Fail safe: a cqe with a nonzero status, a ring that stays full, a sqe not
 * completed within timeout_ms, a helper that detaches, or anything in the
 * ring that does not make sense (an unknown or repeated id, an index out of
 * range) turns mirroring off: every region with a write in flight is marked
 * dirty and the guest's writes go on, tracked.  The status then says
 * "degraded" and why; the helper resyncs the dirty regions and sets the
 * mirror again.  The kernel forgets the entries it abandons: a cqe the
 * helper posts for one later (it cannot know in time) is consumed and
 * ignored.  Sqes still in the ring when mirroring went down are stale too:
 * before it sets the mirror again, the helper skips them (sq_head to
 * sq_tail; no new ones come while the mirror is down) and waits until
 * its own requests for them have finished at the sink, so that none
 * lands after its resync.
 *
 * SXM_IOC_RING_ENTER does not wait for the helper's other ioctls: a pump
 * thread may reap completions while another thread of the helper waits in
 * SXM_IOC_LOCK or SXM_IOC_HARVEST for the writes they complete.
 */
#define SXM_RING_INDEX_START_BEFORE_WRAP	16384U
#define SXM_RING_INDEX_START			(0U - 16384U)

struct sxm_ring_hdr {
	__u32 sq_head;			/* helper: next sqe it will read */
	__u32 sq_pad[15];
	__u32 sq_tail;			/* kernel: next sqe it will write */
	__u32 sq_pad2[15];
	__u32 cq_head;			/* kernel: next cqe it will read */
	__u32 cq_pad[15];
	__u32 cq_tail;			/* helper: next cqe it will write */
	__u32 cq_pad2[15];
};

enum sxm_op {
	SXM_OP_WRITE = 1,		/* data in the slot at data_off */
	SXM_OP_WRITE_ZEROES = 2,
	SXM_OP_DISCARD = 3,
	SXM_OP_FLUSH = 4,		/* offset and len are 0 */
};

#define SXM_SQE_FUA		(1U << 0)	/* write through to stable media */

/*
 * An sqe's id: a sequence number above the index of its slot, so never 0
 * and never the same twice while the ring lives.  A helper echoes it and
 * may check SXM_SQE_ID_SLOT(id) < entries; it must not rely on more.
 */
#define SXM_SQE_ID_SLOT_BITS	16
#define SXM_SQE_ID_SLOT(id)	((id) & ((1ULL << SXM_SQE_ID_SLOT_BITS) - 1))

struct sxm_sqe {
	__u64 id;			/* echo it in the cqe */
	__u64 offset;			/* bytes from the start of the target */
	__u64 len;			/* bytes */
	__u32 data_off;			/* SXM_OP_WRITE: the slot's offset */
	__u8 op;			/* enum sxm_op */
	__u8 flags;			/* SXM_SQE_* */
	__u16 reserved;
};

struct sxm_cqe {
	__u64 id;
	__s32 status;			/* 0, or a negative errno from the sink */
	__u32 reserved;
};

/*
 * SXM_IOC_RING_SETUP (helper only, once per attach): entries is a power of
 * two, slot_bytes a power of two at least the page size (the longest write
 * one sqe carries; longer ones become several), timeout_ms how long an sqe
 * not completed, or a write held back, may wait after it arrived before
 * the mirror degrades.  Each within its limits below; 0 picks the default.
 */
#define SXM_RING_MIN_ENTRIES		8
#define SXM_RING_MAX_ENTRIES		4096
#define SXM_RING_DEFAULT_ENTRIES	256
#define SXM_RING_MIN_SLOT_BYTES		4096		/* or the page size */
#define SXM_RING_MAX_SLOT_BYTES		(1U << 20)
#define SXM_RING_DEFAULT_SLOT_BYTES	(128U << 10)
#define SXM_RING_MIN_TIMEOUT_MS		100
#define SXM_RING_MAX_TIMEOUT_MS		600000
#define SXM_RING_DEFAULT_TIMEOUT_MS	5000
struct sxm_ring_setup {
	__u32 size;			/* in: sizeof(struct sxm_ring_setup) */
	__u32 entries;			/* in/out */
	__u32 slot_bytes;		/* in/out */
	__u32 timeout_ms;		/* in/out */
	__u64 mmap_bytes;		/* out */
	__u64 hdr_off;			/* out */
	__u64 sq_off;			/* out */
	__u64 cq_off;			/* out */
	__u64 data_off;			/* out */
	__u64 reserved[4];
};

/* SXM_IOC_MIRROR (helper only): mirroring on (on = 1) or off (on = 0). */
struct sxm_mirror {
	__u32 size;			/* in: sizeof(struct sxm_mirror) */
	__u32 on;			/* in */
	__u64 reserved[3];
};

/*
 * SXM_IOC_LOCK (helper only): take or, with SXM_LOCK_RELEASE, release
 * region ranges, in one call for many.  Taking a range waits until no
 * write is in flight there and holds new writes until it is released; they
 * are mirrored after it.  So a bulk copy of a locked region never
 * overwrites a newer mirrored write.  At most 1024 ranges held at once.
 * Held ranges never overlap.  A call is checked whole before anything
 * changes: taking ranges that overlap each other is EINVAL, one that
 * overlaps a held range EBUSY, more than fit ENOSPC; releasing a range
 * that is not held exactly so (or the same range twice) ENOENT.
 */
#define SXM_LOCK_RELEASE	(1U << 0)
#define SXM_LOCK_FLAGS		(SXM_LOCK_RELEASE)
#define SXM_LOCK_MAX		1024

struct sxm_lock_range {
	__u64 first;			/* first region */
	__u64 count;			/* regions */
};

struct sxm_lock {
	__u32 size;			/* in: sizeof(struct sxm_lock) */
	__u32 flags;			/* in: SXM_LOCK_* */
	__u64 ranges_ptr;		/* in: struct sxm_lock_range[nr_ranges] */
	__u32 nr_ranges;		/* in: 1..SXM_LOCK_MAX */
	__u32 reserved0;
	__u64 reserved[3];
};

#define SXM_IOC_MAGIC		0xE8

#define SXM_IOC_GET_FEATURES	_IOWR(SXM_IOC_MAGIC, 0x00, struct sxm_features)
#define SXM_IOC_ATTACH		_IOWR(SXM_IOC_MAGIC, 0x01, struct sxm_attach)
#define SXM_IOC_HARVEST		_IOWR(SXM_IOC_MAGIC, 0x02, struct sxm_harvest)
#define SXM_IOC_MARK_DIRTY	_IOWR(SXM_IOC_MAGIC, 0x03, struct sxm_regions)
#define SXM_IOC_GET_INFO	_IOWR(SXM_IOC_MAGIC, 0x04, struct sxm_info)
#define SXM_IOC_ACK		_IOWR(SXM_IOC_MAGIC, 0x05, struct sxm_regions)
#define SXM_IOC_RING_SETUP	_IOWR(SXM_IOC_MAGIC, 0x06, struct sxm_ring_setup)
#define SXM_IOC_MIRROR		_IOWR(SXM_IOC_MAGIC, 0x07, struct sxm_mirror)
#define SXM_IOC_RING_ENTER	_IO(SXM_IOC_MAGIC, 0x08)
#define SXM_IOC_LOCK		_IOWR(SXM_IOC_MAGIC, 0x09, struct sxm_lock)

/* Sizes pinned: a change here is an ABI break. */
#define SXM_FEATURES_SIZE	64
#define SXM_ATTACH_SIZE		136
#define SXM_HARVEST_SIZE	88
#define SXM_REGIONS_SIZE	64
#define SXM_INFO_SIZE		160
#define SXM_RING_HDR_SIZE	256
#define SXM_SQE_SIZE		32
#define SXM_CQE_SIZE		16
#define SXM_RING_SETUP_SIZE	88
#define SXM_MIRROR_SIZE		32
#define SXM_LOCK_RANGE_SIZE	16
#define SXM_LOCK_SIZE		48

#endif /* _UAPI_LINUX_DM_SXM_H */
