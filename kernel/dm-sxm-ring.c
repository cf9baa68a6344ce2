// SPDX-License-Identifier: GPL-2.0
/*
 * dm-sxm: the mirror ring.
 *
 * Structures: struct sxm_ring (one per device, made by the helper's
 * SXM_IOC_RING_SETUP, gone when the helper detaches) holds the shared area
 * (struct sxm_ring_hdr, the sqe and cqe arrays, the data slots; see the
 * uapi header), one struct sxm_slot per entry (the bio it carries and its
 * id), the free-slot stack, the bios held back (deferred), and the region
 * locks the helper holds.
 *
 * Hot path (sxm_ring_map, in the target's map): under dev->ring_lock, find
 * a free slot and room in the submission ring, check the write overlaps
 * nothing in flight, locked or held back, copy its data into the slot,
 * publish the sqe (release on sq_tail), hook the bio's completion, and
 * send it on to the source.  The guest's bio completes when both the
 * source (sxm_source_endio) and the helper (a cqe reaped by
 * SXM_IOC_RING_ENTER) are done, and its slot is free only then: until
 * both legs are over, an overlapping write waits and a region lock is not
 * granted, so the source and the sink see overlapping writes in the same
 * order and a bulk copy never reads the source under a write still on its
 * way there.  A write that cannot be posted now waits on the deferred
 * list; completions and lock releases kick the deferred work, which posts
 * what it can and submits it.
 *
 * Fail safe: sxm_ring_degrade() turns mirroring off, marks every region
 * with a write in flight or held back dirty, completes their sink legs and
 * sends held-back writes to the source.  It runs for a sink error, a bad
 * value from the helper, a timeout (the periodic timeout work), and the
 * helper's detach.  Nothing from the shared area is trusted: indices and
 * ids are checked against the kernel's own copies before use.
 *
 * Lock order: sxm_ring.reap_lock (a mutex: reaping and degrading) ->
 * sxm_dev.ring_lock (a spinlock: everything in struct sxm_ring).  Bios are
 * completed and submitted only with ring_lock dropped.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "dm-sxm.h"

#define SXM_RING_DEF_ENTRIES	256
#define SXM_RING_DEF_SLOT	(128 * 1024)
#define SXM_RING_DEF_TIMEOUT	5000
#define SXM_RING_MAX_DATA	(64ULL << 20)

struct sxm_slot {
	struct bio *bio;		/* NULL: free */
	u64 id;
	sector_t sector;		/* target-relative */
	sector_t nr_sectors;
	unsigned long posted;		/* jiffies */
	bool sink_done;			/* completed by the helper, or abandoned */
	bool source_done;		/* completed by the source */
};

struct sxm_ring {
	struct sxm_dev *dev;
	struct mutex reap_lock;		/* reaping and degrading */

	void *area;
	size_t area_bytes;
	struct sxm_ring_hdr *hdr;
	struct sxm_sqe *sq;
	struct sxm_cqe *cq;
	u8 *data;
	struct sxm_ring_setup geo;

	/* Below: under dev->ring_lock. */
	u32 sq_tail;			/* the kernel's own copies */
	u32 cq_head;
	struct sxm_slot *slots;
	u32 *free;
	u32 nr_free;
	u64 seq;
	u64 abandoned_seq;		/* ids up to here: forgotten by a degrade */
	struct bio_list deferred;
	unsigned long deferred_since;	/* jiffies the oldest waits since */
	struct sxm_lock_range locks[SXM_LOCK_MAX];
	u32 nr_locks;
	bool mirror;			/* mirroring on */
	const char *broken;		/* set in atomic context: degrade soon */
	struct bio **reap;		/* bios whose sink leg is done */

	wait_queue_head_t poll_wait;
	wait_queue_head_t drain_wait;
	struct delayed_work timeout_work;
	struct work_struct kick_work;
};

static struct workqueue_struct *sxm_wq;

static u32 ring_mask(struct sxm_ring *ring)
{
	return ring->geo.entries - 1;
}

static sector_t region_first(struct sxm_dev *dev, u64 region)
{
	return region << dev->dirty.region_shift;
}

/* ----------------------------------------------------------------------
 * Overlap checks (ring_lock held)
 * ----------------------------------------------------------------------
 */

static bool ranges_overlap(sector_t a, sector_t an, sector_t b, sector_t bn)
{
	return a < b + bn && b < a + an;
}

static bool overlaps_locks(struct sxm_ring *ring, sector_t s, sector_t n)
{
	struct sxm_dev *dev = ring->dev;
	u32 i;

	for (i = 0; i < ring->nr_locks; i++) {
		sector_t ls = region_first(dev, ring->locks[i].first);
		sector_t ln = region_first(dev, ring->locks[i].count);

		if (ranges_overlap(s, n, ls, ln))
			return true;
	}
	return false;
}

static bool overlaps_inflight(struct sxm_ring *ring, sector_t s, sector_t n)
{
	u32 i;

	for (i = 0; i < ring->geo.entries; i++)
		if (ring->slots[i].bio &&
		    ranges_overlap(s, n, ring->slots[i].sector,
				   ring->slots[i].nr_sectors))
			return true;
	return false;
}

static bool overlaps_deferred(struct sxm_ring *ring, sector_t s, sector_t n)
{
	struct bio *bio;

	bio_list_for_each(bio, &ring->deferred) {
		struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));

		if (ranges_overlap(s, n, io->sector, io->nr_sectors))
			return true;
	}
	return false;
}

/* A flush covers everything: it waits for all writes before it. */
static void io_range(struct sxm_io *io, sector_t *s, sector_t *n)
{
	*s = io->sector;
	*n = io->nr_sectors ? io->nr_sectors : (sector_t)-1 >> 1;
	if (!io->nr_sectors)
		*s = 0;
}

/* ----------------------------------------------------------------------
 * Posting
 * ----------------------------------------------------------------------
 */

static void sxm_source_endio(struct bio *bio);

/* Room in both rings?  Also checks the helper's sq_head. */
static bool ring_has_room(struct sxm_ring *ring)
{
	/* Pairs with the helper's release of sq_head: it is done with them. */
	u32 head = smp_load_acquire(&ring->hdr->sq_head);
	u32 used = ring->sq_tail - head;

	if (used > ring->geo.entries) {
		ring->broken = "bad_sq_head";
		return false;
	}
	return ring->nr_free && used < ring->geo.entries;
}

static bool can_post(struct sxm_ring *ring, struct sxm_io *io, bool deferred)
{
	sector_t s, n;

	io_range(io, &s, &n);
	if (!ring_has_room(ring))
		return false;
	if (overlaps_inflight(ring, s, n) || overlaps_locks(ring, s, n))
		return false;
	/* A new write may not pass a held-back write it overlaps. */
	return deferred || !overlaps_deferred(ring, s, n);
}

static void copy_bio_data(u8 *dst, struct bio *bio)
{
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		memcpy_from_bvec(dst, &bv);
		dst += bv.bv_len;
	}
}

static void post(struct sxm_ring *ring, struct bio *bio, struct sxm_io *io)
{
	u32 idx = ring->free[--ring->nr_free];
	struct sxm_slot *slot = &ring->slots[idx];
	struct sxm_sqe *sqe = &ring->sq[ring->sq_tail & ring_mask(ring)];

	slot->bio = bio;
	slot->id = (++ring->seq << 16) | idx;
	slot->sector = io->sector;
	slot->nr_sectors = io->nr_sectors;
	slot->posted = jiffies;
	slot->sink_done = false;
	slot->source_done = false;
	io->slot = idx;

	sqe->id = slot->id;
	sqe->offset = (u64)io->sector << SECTOR_SHIFT;
	sqe->len = (u64)io->nr_sectors << SECTOR_SHIFT;
	sqe->data_off = 0;
	sqe->flags = (bio->bi_opf & REQ_FUA) ? SXM_SQE_FUA : 0;
	sqe->reserved = 0;
	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
		if (!io->nr_sectors) {
			sqe->op = SXM_OP_FLUSH;
			break;
		}
		sqe->op = SXM_OP_WRITE;
		sqe->data_off = ring->geo.data_off + (u64)idx *
				ring->geo.slot_bytes;
		copy_bio_data(ring->data + (u64)idx * ring->geo.slot_bytes,
			      bio);
		break;
	case REQ_OP_WRITE_ZEROES:
		sqe->op = SXM_OP_WRITE_ZEROES;
		break;
	default:
		sqe->op = SXM_OP_DISCARD;
		break;
	}
	/* The sqe and its data are written before the helper sees the tail. */
	smp_store_release(&ring->hdr->sq_tail, ++ring->sq_tail);

	/* Both legs must finish; the source's completion comes to us. */
	atomic_set(&io->pending, 2);
	io->mirrored = 1;
	io->end_io = bio->bi_end_io;
	io->private = bio->bi_private;
	bio->bi_end_io = sxm_source_endio;
	bio->bi_private = ring->dev;
	atomic64_inc(&ring->dev->mirrored_writes);
	atomic64_add(sqe->len, &ring->dev->mirrored_bytes);
}

static void free_slot(struct sxm_ring *ring, u32 idx);

static void sxm_source_endio(struct bio *bio)
{
	struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));
	struct sxm_dev *dev = bio->bi_private;
	struct sxm_ring *ring;
	unsigned long flags;

	bio->bi_end_io = io->end_io;
	bio->bi_private = io->private;
	/* The sink may have what the source lacks: copy it again later. */
	if (bio->bi_status && io->nr_sectors)
		sxm_dirty_mark_gen(&dev->dirty, io->gen, io->sector,
				   io->nr_sectors);
	/* The slot is free once both legs are over (see the top). */
	spin_lock_irqsave(&dev->ring_lock, flags);
	ring = dev->ring;
	if (ring && io->slot < ring->geo.entries &&
	    ring->slots[io->slot].bio == bio) {
		struct sxm_slot *slot = &ring->slots[io->slot];

		slot->source_done = true;
		if (slot->sink_done) {
			free_slot(ring, io->slot);
			wake_up_all(&ring->drain_wait);
			queue_work(sxm_wq, &ring->kick_work);
		}
	}
	spin_unlock_irqrestore(&dev->ring_lock, flags);
	if (atomic_dec_and_test(&io->pending))
		bio_endio(bio);
}

/*
 * A mirror-mode write from the target's map: post it, hold it back, or (no
 * ring, mirroring off) leave it to the caller to track.
 */
int sxm_ring_map(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io)
{
	struct sxm_ring *ring;
	unsigned long flags;
	int r = SXM_RING_NOT_MIRRORED;

	spin_lock_irqsave(&dev->ring_lock, flags);
	ring = dev->ring;
	if (!ring || !ring->mirror || ring->broken)
		goto out;

	if (bio_op(bio) == REQ_OP_WRITE &&
	    bio->bi_iter.bi_size > ring->geo.slot_bytes) {
		dm_accept_partial_bio(bio, ring->geo.slot_bytes >> SECTOR_SHIFT);
		io->nr_sectors = bio_sectors(bio);
	}
	if (can_post(ring, io, false)) {
		post(ring, bio, io);
		r = DM_MAPIO_REMAPPED;
	} else if (ring->broken) {
		goto out;
	} else {
		if (bio_list_empty(&ring->deferred))
			ring->deferred_since = jiffies;
		bio_list_add(&ring->deferred, bio);
		r = DM_MAPIO_SUBMITTED;
	}
out:
	/* Under the lock: the ring is freed only after it is unlinked. */
	if (r == DM_MAPIO_REMAPPED)
		wake_up_interruptible(&ring->poll_wait);
	if (ring && ring->broken)
		mod_delayed_work(sxm_wq, &ring->timeout_work, 0);
	spin_unlock_irqrestore(&dev->ring_lock, flags);
	return r;
}

/* ----------------------------------------------------------------------
 * Completing and degrading
 * ----------------------------------------------------------------------
 */

/* The sink leg of @bio is over (successfully or not). */
static void sink_leg_done(struct bio *bio)
{
	struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));

	if (atomic_dec_and_test(&io->pending))
		bio_endio(bio);
}

static void submit_to_source(struct bio *bio)
{
	struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));

	sxm_remap(io->tgt, bio);
	submit_bio_noacct(bio);
}

static void free_slot(struct sxm_ring *ring, u32 idx)
{
	struct sxm_slot *slot = &ring->slots[idx];

	slot->bio = NULL;
	slot->id = 0;
	ring->free[ring->nr_free++] = idx;
}

/*
 * The sink leg of slot @idx is over (completed or abandoned): its bio is
 * put on ring->reap[*n] for sink_leg_done(), and the slot is free if the
 * source is done with it too.
 */
static void release_slot(struct sxm_ring *ring, u32 idx, u32 *n)
{
	struct sxm_slot *slot = &ring->slots[idx];

	ring->reap[(*n)++] = slot->bio;
	slot->sink_done = true;
	if (slot->source_done)
		free_slot(ring, idx);
}

/*
 * Mirroring off, for @reason: every write in flight or held back gets its
 * regions marked dirty; in-flight sink legs are abandoned (the ids become
 * unknown to the kernel), held-back writes go to the source.  Called with
 * reap_lock held, in process context.
 */
static void degrade_locked(struct sxm_ring *ring, const char *reason)
{
	struct sxm_dev *dev = ring->dev;
	struct bio_list held;
	struct bio *bio;
	u32 i, n = 0;

	lockdep_assert_held(&ring->reap_lock);
	spin_lock_irq(&dev->ring_lock);
	if (ring->mirror) {
		ring->mirror = false;
		dev->degraded_reason = reason;
		atomic64_inc(&dev->degradations);
		DMWARN("%u:%u: mirror degraded: %s", MAJOR(dev->devt),
		       MINOR(dev->devt), reason);
	}
	ring->broken = NULL;
	/* The helper may still complete what is abandoned here: see enter. */
	ring->abandoned_seq = ring->seq;
	for (i = 0; i < ring->geo.entries; i++) {
		struct sxm_slot *slot = &ring->slots[i];

		/* Done by the sink, waiting for the source: nothing to lose. */
		if (!slot->bio || slot->sink_done)
			continue;
		if (slot->nr_sectors) {
			struct sxm_io *io = dm_per_bio_data(slot->bio,
							    sizeof(*io));

			sxm_dirty_mark_gen(&dev->dirty, io->gen, slot->sector,
					   slot->nr_sectors);
		}
		release_slot(ring, i, &n);
	}
	held = ring->deferred;
	bio_list_init(&ring->deferred);
	bio_list_for_each(bio, &held) {
		struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));

		if (io->nr_sectors)
			sxm_dirty_mark_gen(&dev->dirty, io->gen, io->sector,
					   io->nr_sectors);
	}
	spin_unlock_irq(&dev->ring_lock);

	for (i = 0; i < n; i++)
		sink_leg_done(ring->reap[i]);
	while ((bio = bio_list_pop(&held)))
		submit_to_source(bio);
	wake_up_all(&ring->drain_wait);
}

static void ring_degrade(struct sxm_ring *ring, const char *reason)
{
	mutex_lock(&ring->reap_lock);
	degrade_locked(ring, reason);
	mutex_unlock(&ring->reap_lock);
}

static bool overlaps_list(struct bio_list *list, sector_t s, sector_t n)
{
	struct bio *bio;

	bio_list_for_each(bio, list) {
		struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));
		sector_t bs, bn;

		io_range(io, &bs, &bn);
		if (ranges_overlap(s, n, bs, bn))
			return true;
	}
	return false;
}

/*
 * Post what was held back and can go now, and submit it.  A write never
 * passes an earlier held-back write it overlaps.
 */
static void kick_work_fn(struct work_struct *work)
{
	struct sxm_ring *ring = container_of(work, struct sxm_ring, kick_work);
	struct sxm_dev *dev = ring->dev;
	struct bio_list go, wait;
	struct bio *bio;

	bio_list_init(&go);
	bio_list_init(&wait);
	spin_lock_irq(&dev->ring_lock);
	while ((bio = bio_list_pop(&ring->deferred))) {
		struct sxm_io *io = dm_per_bio_data(bio, sizeof(*io));
		sector_t s, n;

		io_range(io, &s, &n);
		if (ring->mirror && !ring->broken && !overlaps_list(&wait, s, n) &&
		    can_post(ring, io, true)) {
			post(ring, bio, io);
			bio_list_add(&go, bio);
		} else {
			bio_list_add(&wait, bio);
		}
	}
	ring->deferred = wait;
	if (!bio_list_empty(&wait))
		ring->deferred_since = jiffies;
	spin_unlock_irq(&dev->ring_lock);

	if (!bio_list_empty(&go))
		wake_up_interruptible(&ring->poll_wait);
	while ((bio = bio_list_pop(&go)))
		submit_to_source(bio);
}

/*
 * SXM_IOC_RING_ENTER: reap the helper's completions.  Returns how many, or
 * -EIO if the ring held nonsense (mirroring is then off).
 */
int sxm_ring_enter(struct sxm_dev *dev)
{
	/* Pairs with sxm_ring_setup(): the helper's ioctls are not serialised. */
	struct sxm_ring *ring = smp_load_acquire(&dev->ring);
	const char *bad = NULL;
	u32 tail, n = 0, i, reaped = 0;
	int err = 0;

	if (!ring)
		return -ENXIO;
	mutex_lock(&ring->reap_lock);
	spin_lock_irq(&dev->ring_lock);
	/* Pairs with the helper's release of cq_tail: the cqes are written. */
	tail = smp_load_acquire(&ring->hdr->cq_tail);
	if (tail - ring->cq_head > ring->geo.entries)
		bad = "bad_cq_tail";
	while (!bad && ring->cq_head != tail) {
		struct sxm_cqe *cqe = &ring->cq[ring->cq_head & ring_mask(ring)];
		u64 id = READ_ONCE(cqe->id);
		s32 status = READ_ONCE(cqe->status);
		u32 idx = id & 0xffff;

		if (idx >= ring->geo.entries || !ring->slots[idx].bio ||
		    ring->slots[idx].id != id || ring->slots[idx].sink_done) {
			/*
			 * An entry a degrade abandoned: the helper cannot know
			 * in time (a timeout is not its to see), so its late
			 * completion is consumed and ignored.
			 */
			if ((id >> 16) && (id >> 16) <= ring->abandoned_seq) {
				ring->cq_head++;
				continue;
			}
			bad = "bad_completion";
			break;
		}
		ring->cq_head++;
		reaped++;
		if (status) {
			struct sxm_io *io = dm_per_bio_data(ring->slots[idx].bio,
							    sizeof(*io));

			if (io->nr_sectors)
				sxm_dirty_mark_gen(&dev->dirty, io->gen,
						   io->sector, io->nr_sectors);
			err = status;
		}
		release_slot(ring, idx, &n);
	}
	/* The cqes are read before the helper may reuse their places. */
	smp_store_release(&ring->hdr->cq_head, ring->cq_head);
	spin_unlock_irq(&dev->ring_lock);

	for (i = 0; i < n; i++)
		sink_leg_done(ring->reap[i]);
	if (bad)
		degrade_locked(ring, bad);
	else if (err)
		degrade_locked(ring, "sink_error");
	mutex_unlock(&ring->reap_lock);

	if (n) {
		wake_up_all(&ring->drain_wait);
		queue_work(sxm_wq, &ring->kick_work);
	}
	return bad ? -EIO : reaped;
}

/* Periodic: a sqe or a held-back write older than the timeout degrades. */
static void timeout_work_fn(struct work_struct *work)
{
	struct sxm_ring *ring = container_of(to_delayed_work(work),
					     struct sxm_ring, timeout_work);
	struct sxm_dev *dev = ring->dev;
	unsigned long tmo = msecs_to_jiffies(ring->geo.timeout_ms);
	const char *why = NULL;
	u32 i;

	spin_lock_irq(&dev->ring_lock);
	why = ring->broken;
	for (i = 0; !why && i < ring->geo.entries; i++)
		if (ring->slots[i].bio && !ring->slots[i].sink_done &&
		    time_after(jiffies, ring->slots[i].posted + tmo))
			why = "sink_timeout";
	if (!why && !bio_list_empty(&ring->deferred) &&
	    time_after(jiffies, ring->deferred_since + tmo))
		why = ring->nr_locks ? "lock_timeout" : "ring_full";
	spin_unlock_irq(&dev->ring_lock);

	if (why)
		ring_degrade(ring, why);
	queue_delayed_work(sxm_wq, &ring->timeout_work,
			   max_t(unsigned long, tmo / 4, 1));
}

/* ----------------------------------------------------------------------
 * Set-up, mode, locks, teardown
 * ----------------------------------------------------------------------
 */

int sxm_ring_setup(struct sxm_dev *dev, struct sxm_ring_setup *geo)
{
	struct sxm_ring *ring;
	size_t sq_bytes, cq_bytes;
	u32 i;

	if (!geo->entries)
		geo->entries = SXM_RING_DEF_ENTRIES;
	if (!geo->slot_bytes)
		geo->slot_bytes = SXM_RING_DEF_SLOT;
	if (!geo->timeout_ms)
		geo->timeout_ms = SXM_RING_DEF_TIMEOUT;
	if (!is_power_of_2(geo->entries) || geo->entries < 8 ||
	    geo->entries > 4096 || !is_power_of_2(geo->slot_bytes) ||
	    geo->slot_bytes < 4096 || geo->slot_bytes > (1U << 20) ||
	    geo->timeout_ms < 100 || geo->timeout_ms > 600000 ||
	    (u64)geo->entries * geo->slot_bytes > SXM_RING_MAX_DATA)
		return -EINVAL;
	if (dev->ring)
		return -EBUSY;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL);
	if (!ring)
		return -ENOMEM;
	sq_bytes = PAGE_ALIGN(geo->entries * sizeof(struct sxm_sqe));
	cq_bytes = PAGE_ALIGN(geo->entries * sizeof(struct sxm_cqe));
	geo->hdr_off = 0;
	geo->sq_off = PAGE_SIZE;
	geo->cq_off = geo->sq_off + sq_bytes;
	geo->data_off = geo->cq_off + cq_bytes;
	geo->mmap_bytes = geo->data_off + (u64)geo->entries * geo->slot_bytes;
	ring->geo = *geo;
	ring->area_bytes = geo->mmap_bytes;
	ring->area = vmalloc_user(ring->area_bytes);
	ring->slots = kvcalloc(geo->entries, sizeof(*ring->slots), GFP_KERNEL);
	ring->free = kvcalloc(geo->entries, sizeof(u32), GFP_KERNEL);
	ring->reap = kvcalloc(geo->entries, sizeof(struct bio *), GFP_KERNEL);
	if (!ring->area || !ring->slots || !ring->free || !ring->reap) {
		vfree(ring->area);
		kvfree(ring->slots);
		kvfree(ring->free);
		kvfree(ring->reap);
		kfree(ring);
		return -ENOMEM;
	}
	ring->hdr = ring->area;
	ring->sq = ring->area + geo->sq_off;
	ring->cq = ring->area + geo->cq_off;
	ring->data = ring->area + geo->data_off;
	for (i = 0; i < geo->entries; i++)
		ring->free[i] = geo->entries - 1 - i;
	ring->nr_free = geo->entries;
	ring->dev = dev;
	mutex_init(&ring->reap_lock);
	bio_list_init(&ring->deferred);
	init_waitqueue_head(&ring->poll_wait);
	init_waitqueue_head(&ring->drain_wait);
	INIT_DELAYED_WORK(&ring->timeout_work, timeout_work_fn);
	INIT_WORK(&ring->kick_work, kick_work_fn);

	spin_lock_irq(&dev->ring_lock);
	/* Set up before it is seen: sxm_ring_enter() runs without locks. */
	smp_store_release(&dev->ring, ring);
	spin_unlock_irq(&dev->ring_lock);
	queue_delayed_work(sxm_wq, &ring->timeout_work,
			   msecs_to_jiffies(geo->timeout_ms / 4));
	return 0;
}

/*
 * Mirroring on or off (helper, or the "mode" message).  On needs a ring;
 * it clears the degraded state.  Off lets writes in flight finish.
 */
int sxm_ring_set_mirror(struct sxm_dev *dev, bool on)
{
	struct sxm_ring *ring = dev->ring;

	if (!ring)
		return on ? -ENXIO : 0;
	spin_lock_irq(&dev->ring_lock);
	ring->mirror = on;
	if (on) {
		ring->broken = NULL;
		dev->degraded_reason = NULL;
	}
	spin_unlock_irq(&dev->ring_lock);
	if (!on)
		queue_work(sxm_wq, &ring->kick_work);
	return 0;
}

static bool locks_drained(struct sxm_ring *ring, struct sxm_lock_range *r,
			  u32 nr)
{
	struct sxm_dev *dev = ring->dev;
	bool busy = false;
	u32 i;

	spin_lock_irq(&dev->ring_lock);
	for (i = 0; i < nr && !busy; i++)
		busy = overlaps_inflight(ring, region_first(dev, r[i].first),
					 region_first(dev, r[i].count));
	spin_unlock_irq(&dev->ring_lock);
	return !busy;
}

static int find_lock(struct sxm_ring *ring, struct sxm_lock_range *r)
{
	u32 i;

	for (i = 0; i < ring->nr_locks; i++)
		if (ring->locks[i].first == r->first &&
		    ring->locks[i].count == r->count)
			return i;
	return -1;
}

/*
 * SXM_IOC_LOCK: take @nr ranges (waiting until no write is in flight in
 * them) or release them.  All or nothing: a release of a range not held,
 * or more ranges than fit, changes nothing.
 */
int sxm_ring_lock(struct sxm_dev *dev, struct sxm_lock_range *r, u32 nr,
		  bool release)
{
	struct sxm_ring *ring = dev->ring;
	int err = 0;
	u32 i;

	if (!ring)
		return -ENXIO;
	spin_lock_irq(&dev->ring_lock);
	if (release) {
		for (i = 0; i < nr && !err; i++)
			if (find_lock(ring, &r[i]) < 0)
				err = -ENOENT;
		for (i = 0; i < nr && !err; i++) {
			int k = find_lock(ring, &r[i]);

			ring->locks[k] = ring->locks[--ring->nr_locks];
		}
	} else if (ring->nr_locks + nr > SXM_LOCK_MAX) {
		err = -ENOSPC;
	} else {
		for (i = 0; i < nr; i++)
			ring->locks[ring->nr_locks++] = r[i];
	}
	spin_unlock_irq(&dev->ring_lock);
	if (err)
		return err;
	if (release) {
		queue_work(sxm_wq, &ring->kick_work);
		return 0;
	}

	err = wait_event_killable(ring->drain_wait, locks_drained(ring, r, nr));
	if (err)
		sxm_ring_lock(dev, r, nr, true);
	return err;
}

__poll_t sxm_ring_poll(struct sxm_dev *dev, struct file *file,
		       poll_table *wait)
{
	struct sxm_ring *ring = dev->ring;
	__poll_t mask = 0;

	if (!ring)
		return EPOLLERR;
	poll_wait(file, &ring->poll_wait, wait);
	if (READ_ONCE(ring->sq_tail) != READ_ONCE(ring->hdr->sq_head))
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

int sxm_ring_mmap(struct sxm_dev *dev, struct vm_area_struct *vma)
{
	struct sxm_ring *ring = dev->ring;

	if (!ring)
		return -ENXIO;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != ring->area_bytes)
		return -EINVAL;
	return remap_vmalloc_range(vma, ring->area, 0);
}

void sxm_ring_status(struct sxm_dev *dev, const char **state, u32 *inflight,
		     u32 *held)
{
	struct sxm_ring *ring;
	unsigned long flags;
	struct bio *bio;

	*inflight = 0;
	*held = 0;
	spin_lock_irqsave(&dev->ring_lock, flags);
	ring = dev->ring;
	if (ring) {
		*inflight = ring->geo.entries - ring->nr_free;
		bio_list_for_each(bio, &ring->deferred)
			(*held)++;
	}
	if (ring && ring->mirror)
		*state = "on";
	else if (dev->degraded_reason)
		*state = "degraded";
	else
		*state = "off";
	spin_unlock_irqrestore(&dev->ring_lock, flags);
}

/* The helper is gone: degrade, stop the works, free the ring. */
void sxm_ring_destroy(struct sxm_dev *dev)
{
	struct sxm_ring *ring = dev->ring;

	if (!ring)
		return;
	ring_degrade(ring, "helper_detached");
	spin_lock_irq(&dev->ring_lock);
	dev->ring = NULL;
	spin_unlock_irq(&dev->ring_lock);
	cancel_delayed_work_sync(&ring->timeout_work);
	cancel_work_sync(&ring->kick_work);
	vfree(ring->area);
	kvfree(ring->slots);
	kvfree(ring->free);
	kvfree(ring->reap);
	kfree(ring);
}

int sxm_ring_init(void)
{
	sxm_wq = alloc_workqueue("dm-sxm", WQ_MEM_RECLAIM, 0);
	return sxm_wq ? 0 : -ENOMEM;
}

void sxm_ring_exit(void)
{
	destroy_workqueue(sxm_wq);
}
