/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dm-sxm: internal header shared by the target (dm-sxm-target.c), the
 * dirty map (dm-sxm-dirty.c) and the misc device (dm-sxm-chr.c).
 *
 * Objects:
 *
 *   struct sxm_target  one per table instance (ti->private).  A reload
 *                      makes a second one while the first is still live.
 *   struct sxm_dev     the migration's memory for one target position
 *                      (mapped device, start sector): the dirty map, the
 *                      helper, the counters.  Shared by every table
 *                      instance at that position, so it survives a
 *                      reload; refcounted by table instances and by open
 *                      files of /dev/dm-sxm attached to it.
 *   struct sxm_dirty   the dirty map: two bitmaps (generations) with the
 *                      in-flight write count of each, and the held map
 *                      (harvested, not yet acknowledged).
 *   struct sxm_meta    the persistent write-intent map on a metadata
 *                      device (dm-sxm-meta.c), if the table names one;
 *                      belongs to the sxm_dev.
 *
 * Lock order: sxm_devs_lock (the registry) -> sxm_dev.lock ->
 * sxm_meta.lock -> sxm_ring.reap_lock -> sxm_ring.locks_mutex ->
 * sxm_dirty.harvest_lock -> sxm_dev.ring_lock, sxm_dirty.lock and
 * sxm_meta.wlock (spinlocks).  sxm_dirty.switch_lock
 * (a harvest waiting for writes to drain) is taken under none of these
 * and nothing a degrade needs is taken under it but harvest_lock, so a
 * degrade always ends a drain.  No lock of ours is taken under mmap_lock,
 * and none is held across a copy to or from userspace but switch_lock (a
 * harvest, for its own buffer).
 */
#ifndef DM_SXM_H
#define DM_SXM_H

#include <linux/atomic.h>
#include <linux/device-mapper.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>

#include <uapi/linux/dm-sxm.h>
#include <uapi/linux/dm-sxm-metadata.h>

#define DM_MSG_PREFIX "sxm"

/* ----------------------------------------------------------------------
 * Dirty map (dm-sxm-dirty.c)
 * ----------------------------------------------------------------------
 */

struct sxm_dirty {
	u64 nr_regions;
	unsigned int region_shift;	/* log2(region_sectors) */
	size_t nr_words;

	spinlock_t lock;		/* cur vs. the inflight increments */
	unsigned int cur;		/* generation new writes mark */
	atomic_long_t *map[2];
	atomic_t inflight[2];		/* writes accounted in each generation */
	unsigned int epoch;		/* the metadata cleaner's, under lock */
	atomic_t epoch_inflight[2];	/* writes accounted in each epoch */
	atomic64_t nr_dirty[2];		/* bits set in each map */
	atomic_long_t *held;		/* harvested, not yet acknowledged */
	atomic64_t nr_held;
	wait_queue_head_t drain_wait;

	struct mutex switch_lock;	/* one generation switch at a time */
	struct mutex harvest_lock;	/* changes to the maps; never waits */
	atomic64_t harvests;
	atomic64_t copied;		/* acknowledgements and sink flushes */
};

int sxm_dirty_init(struct sxm_dirty *d, sector_t len, unsigned int shift);
void sxm_dirty_exit(struct sxm_dirty *d);

/* Write path: account a write in the current generation, read the mode. */
unsigned int sxm_dirty_start_write(struct sxm_dirty *d, const int *modep,
				   int *mode, unsigned int *epoch);
void sxm_dirty_end_write(struct sxm_dirty *d, unsigned int gen,
			 unsigned int epoch);
int sxm_dirty_epoch_drain(struct sxm_dirty *d, const bool *stop,
			  unsigned long timeout);
unsigned long sxm_dirty_pending_word(struct sxm_dirty *d, size_t w);
void sxm_dirty_or_bits(struct sxm_dirty *d, const unsigned long *bits);

void sxm_dirty_mark_gen(struct sxm_dirty *d, unsigned int gen,
			sector_t sector, sector_t nr_sectors);
u64 sxm_dirty_count(struct sxm_dirty *d);
u64 sxm_dirty_held(struct sxm_dirty *d);
u64 sxm_dirty_mark_all(struct sxm_dirty *d);
u64 sxm_dirty_ack_all(struct sxm_dirty *d);
int sxm_dirty_apply_user(struct sxm_dirty *d, const void __user *buf,
			 bool ack, u64 *count);
int sxm_dirty_barrier(struct sxm_dirty *d);
int sxm_dirty_harvest(struct sxm_dirty *d, void __user *buf, bool peek,
		      u64 *nr_dirty, u64 *generation);
atomic_long_t *sxm_dirty_map_alloc(struct sxm_dirty *d);
u64 sxm_dirty_map_mark(struct sxm_dirty *d, atomic_long_t *map,
		       sector_t sector, sector_t nr_sectors);
void sxm_dirty_map_merge(struct sxm_dirty *d, atomic_long_t *map);
void sxm_dirty_map_clear(struct sxm_dirty *d, atomic_long_t *map);

static inline size_t sxm_dirty_map_bytes(const struct sxm_dirty *d)
{
	return DIV_ROUND_UP_ULL(d->nr_regions, 64) * sizeof(__u64);
}

/* ----------------------------------------------------------------------
 * Device state shared across table reloads (dm-sxm-target.c)
 * ----------------------------------------------------------------------
 */

struct sxm_target;
struct sxm_meta;

struct sxm_dev {
	struct list_head list;		/* on sxm_devs while tables use it */
	struct kref kref;
	dev_t devt;			/* the mapped device */
	sector_t begin;			/* the target's start in the table */
	sector_t len;

	struct mutex lock;		/* everything below */
	unsigned int nr_tables;		/* table instances using this */
	struct sxm_target *live;	/* the resumed instance, or NULL */
	struct file *helper;		/* the attached helper, or NULL */
	pid_t helper_tgid;
	u64 track_id;			/* 0 while not tracking */

	struct sxm_dirty dirty;
	struct sxm_meta *meta;		/* the persistent map, or NULL */
	dev_t meta_devt;		/* its device, also while it loads */

	/* The mirror ring (dm-sxm-ring.c). */
	spinlock_t ring_lock;
	struct sxm_ring *ring;		/* set up and freed under lock */
	const char *degraded_reason;	/* why mirroring stopped, or NULL */
	atomic64_t mirrored_writes;
	atomic64_t mirrored_bytes;
	atomic64_t degradations;
	atomic64_t events;		/* changes of the mirror state */
	struct work_struct event_work;	/* dm_table_event(), in process context */
};

struct sxm_target {
	struct dm_target *ti;
	struct sxm_dev *dev;
	struct dm_dev *source;
	sector_t region_sectors;
	int mode;			/* enum sxm_mode; READ_ONCE in map */
	struct dm_dev *meta_dev;	/* metadata:<dev>, or NULL */
	char *source_id;		/* source_id:<id>, or "" */
	bool meta_reset;		/* metadata_reset */
};

/* A sector range in an interval tree (dm-sxm-ring.c). */
struct sxm_range_node {
	struct rb_node rb;
	sector_t start, last;		/* inclusive */
	sector_t subtree_last;
};

/* Per-bio data. */
struct sxm_io {
	u8 gen;				/* generation the write is counted in */
	u8 accounted;
	u8 mirrored;			/* posted on the ring */
	u8 epoch;			/* the cleaner's epoch it is counted in */
	u8 mode;			/* read in map, while it waits for metadata */
	u32 slot;			/* its slot in the ring, when posted */
	atomic_t pending;		/* legs (source, sink) not yet done */
	struct sxm_target *tgt;
	sector_t sector;		/* target-relative; 0 for a flush */
	sector_t nr_sectors;		/* 0: a flush */
	bio_end_io_t *end_io;		/* the bio's own, while we hook it */
	void *private;
	struct bio *clone;		/* the source leg of a mirrored write */
	struct work_struct submit_work;	/* sends it again after "would block" */
	bool filled;			/* its slot was filled (deferred work) */
	/* While held back by the ring: */
	unsigned long since;		/* jiffies it arrived */
	u64 mirror_gen;			/* the ring's, when its slot was taken */
	struct sxm_range_node held_node;	/* in the ring's held tree */
	struct sxm_range_node wait_node;	/* in a deferred pass's tree */
};

struct sxm_dev *sxm_dev_find(dev_t devt, sector_t begin);
void sxm_dev_event(struct sxm_dev *dev);
void sxm_remap(struct sxm_target *tgt, struct bio *bio);
void sxm_map_continue(struct bio *bio);
int sxm_dev_set_mirror(struct sxm_dev *dev, bool on);
void sxm_dev_put(struct sxm_dev *dev);
int sxm_dev_mode(struct sxm_dev *dev);	/* with dev->lock held */

/* ----------------------------------------------------------------------
 * The mirror ring (dm-sxm-ring.c)
 * ----------------------------------------------------------------------
 */

struct sxm_ring;

/* sxm_ring_map(): the write is not mirrored; track it instead. */
#define SXM_RING_NOT_MIRRORED	(-1)

extern struct workqueue_struct *sxm_wq;

int sxm_ring_init(void);
void sxm_ring_exit(void);
int sxm_ring_map(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io,
		 bool in_map);
void sxm_ring_split(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io);
unsigned long sxm_ring_unflushed_word(struct sxm_dev *dev, size_t w);
void sxm_ring_notify(struct sxm_dev *dev);
int sxm_ring_setup(struct sxm_dev *dev, struct sxm_ring_setup *geo);
void sxm_ring_destroy(struct sxm_dev *dev);
int sxm_ring_set_mirror(struct sxm_dev *dev, bool on);
bool sxm_ring_mirroring(struct sxm_dev *dev);
void sxm_ring_presuspend(struct sxm_dev *dev);
void sxm_ring_resume(struct sxm_dev *dev, bool suspended);
int sxm_ring_enter(struct sxm_dev *dev);
int sxm_ring_lock(struct sxm_dev *dev, struct sxm_lock_range *r, u32 nr,
		  bool release);
__poll_t sxm_ring_poll(struct sxm_dev *dev, struct file *file,
		       struct poll_table_struct *wait, u64 seen);
int sxm_ring_mmap(struct sxm_dev *dev, struct vm_area_struct *vma);
void sxm_ring_status(struct sxm_dev *dev, const char **state, u32 *inflight,
		     u32 *held);

/* ----------------------------------------------------------------------
 * The persistent write-intent map (dm-sxm-meta.c)
 * ----------------------------------------------------------------------
 */

struct sxm_meta_info {
	bool present;
	bool failed;
	dev_t devt;
	const char *reason;		/* why it failed, or NULL */
	const char *loaded;		/* new, clean, unclean, reset */
	const char *source_id;
	u64 bits;			/* regions set on disk */
	u64 writes;			/* metadata blocks written */
	u64 write_avg_us;
	u64 clean_time;			/* last clean shutdown before the load */
	u64 bad_blocks;			/* map blocks read as all ones */
};

int sxm_meta_init(void);
void sxm_meta_exit(void);
int sxm_meta_create(struct sxm_dev *dev, struct dm_target *ti,
		    struct block_device *bdev, const char *source_id,
		    bool reset, bool passthrough);
bool sxm_meta_same(struct sxm_dev *dev, struct block_device *bdev,
		   const char *source_id);
bool sxm_meta_map(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io);
int sxm_meta_persist_marks(struct sxm_dev *dev);
u64 sxm_meta_take_track(struct sxm_dev *dev);
int sxm_meta_set_track(struct sxm_dev *dev);
void sxm_meta_resume(struct sxm_dev *dev);
void sxm_meta_presuspend(struct sxm_dev *dev);
void sxm_meta_presuspend_undo(struct sxm_dev *dev);
void sxm_meta_postsuspend(struct sxm_dev *dev);
void sxm_meta_detach(struct sxm_dev *dev);
void sxm_meta_free(struct sxm_dev *dev);
void sxm_meta_info(struct sxm_dev *dev, struct sxm_meta_info *i);

/* ----------------------------------------------------------------------
 * /dev/dm-sxm (dm-sxm-chr.c)
 * ----------------------------------------------------------------------
 */

int sxm_chr_init(void);
void sxm_chr_exit(void);

#endif /* DM_SXM_H */
