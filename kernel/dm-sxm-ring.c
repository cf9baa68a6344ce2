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
 * Hot path (sxm_ring_map, in the target's map): under dev->ring_lock, check
 * that the write overlaps nothing in flight, locked or held back, and
 * reserve a slot and a place in the submission ring; then, with the lock
 * dropped, copy its data into the slot; then, under the lock again, write
 * the sqe and publish it (release on sq_tail), hook the bio's completion,
 * and send it on to the source.  The guest's bio completes when both the
 * source (sxm_source_endio) and the helper (a cqe reaped by
 * SXM_IOC_RING_ENTER) are done, and its slot is free only then: until both
 * legs are over, an overlapping write waits and a region lock is not
 * granted, so the source and the sink see overlapping writes in the same
 * order and a bulk copy never reads the source under a write still on its
 * way there.  A write that cannot be posted now waits on the deferred list
 * (first come, first posted); completions and lock releases kick the
 * deferred work, which posts what it can and submits it.
 *
 * A flush has no range: it needs only what the guest already saw completed,
 * which is on the sink already, so it waits for nothing but room.
 *
 * Bounded work under the spinlock: in-flight writes, held-back writes and
 * region locks are found by interval trees and a sorted array (O(log n) per
 * write), the oldest in-flight and held-back entries are the heads of
 * lists kept in order, the data is copied with the lock dropped, and the
 * deferred work drops the lock every SXM_KICK_BATCH entries.
 *
 * Fail safe: degrade_locked() turns mirroring off, marks every region with
 * a write in flight or held back dirty, and every region the sink
 * acknowledged since its last good flush (it may have lost them: see
 * "unflushed" below), completes their sink legs and sends held-back writes
 * to the source.  It runs for a sink error, a bad value from the helper, a
 * timeout (the periodic timeout work), and the helper's detach.  Nothing
 * from the shared area is trusted: indices and ids are checked against the
 * kernel's own copies before use, and each value is read once.
 *
 * Unflushed regions: a write the sink acknowledged may sit in its volatile
 * cache until a flush succeeds.  Two side maps (epochs) hold the regions of
 * such writes; posting a flush while no other flush owns the old epoch
 * starts a new epoch, and that flush's success clears the old one.  A
 * failed flush, or any degrade, moves both into the dirty map.
 *
 * Lock order: sxm_ring.reap_lock (a mutex: reaping, degrading, the
 * deferred work, the timeout work) -> sxm_ring.locks_mutex (changes to the
 * region locks) -> sxm_dev.ring_lock (a spinlock: everything in struct
 * sxm_ring marked so).  Bios are completed and submitted only with
 * ring_lock dropped.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/highmem.h>
#include <linux/interval_tree_generic.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "dm-sxm.h"

/* The geometry's limits are the ABI's (SXM_RING_*); the data area's ours. */
#define SXM_RING_MAX_DATA	(64ULL << 20)
/* Deferred entries handled per hold of ring_lock by the deferred work. */
#define SXM_KICK_BATCH		32

/* Ids: the post sequence above the slot index (SXM_SQE_ID_SLOT()). */
#define SXM_ID_IDX_BITS		SXM_SQE_ID_SLOT_BITS
static_assert(SXM_RING_MAX_ENTRIES <= (1U << SXM_ID_IDX_BITS));

/*
 * The four indices of a new ring start here, not at 0 (as INITIAL_JIFFIES
 * does for jiffies): they wrap past 0 after SXM_RING_INDEX_START_BEFORE_WRAP
 * sqes, so every mirror that runs for a while crosses the wrap and a
 * comparison that is wrong there shows in testing, not after 2^32 writes.
 */
static_assert(SXM_RING_INDEX_START ==
	      (u32)(0U - SXM_RING_INDEX_START_BEFORE_WRAP));

#define RN_START(n)	((n)->start)
#define RN_LAST(n)	((n)->last)
INTERVAL_TREE_DEFINE(struct sxm_range_node, rb, sector_t, subtree_last,
		     RN_START, RN_LAST, static inline, rn)

enum sxm_slot_state {
	SLOT_FREE,
	SLOT_RESERVED,			/* data being copied, not yet seen */
	SLOT_POSTED,			/* the helper may complete it */
};

struct sxm_slot {
	struct bio *bio;
	u64 id;
	sector_t sector;		/* target-relative */
	sector_t nr_sectors;		/* 0: a flush */
	unsigned long posted;		/* jiffies */
	u8 state;			/* enum sxm_slot_state */
	bool sink_done;			/* completed by the helper, or abandoned */
	bool source_done;		/* completed by the source */
	bool fua;
	struct sxm_range_node node;	/* in ring->inflight while busy */
	struct list_head open;		/* on ring->open while the sink leg is */
};

struct sxm_ring {
	struct sxm_dev *dev;
	struct mutex reap_lock;		/* reaping, degrading, the works */
	struct mutex locks_mutex;	/* changes to locks[] */

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
	u32 nr_reserved;		/* sq places reserved, not yet published */
	u32 nr_posting;			/* map calls between reserve and publish */
	struct sxm_slot *slots;
	u32 *free;
	u32 nr_free;
	u64 seq;
	u64 abandoned_seq;		/* ids up to here: forgotten by a degrade */
	u64 mirror_gen;			/* bumped whenever the mirror stops */
	struct rb_root_cached inflight;	/* ranges of busy slots */
	struct list_head open;		/* posted slots, sink leg open, oldest first */
	struct bio_list deferred;	/* held back, oldest first */
	struct rb_root_cached held;	/* their ranges */
	u32 nr_deferred;
	bool room_wait;			/* a held-back entry waits for room */
	/* Region locks: disjoint, sorted by first region. */
	struct sxm_lock_range *locks, *locks_spare;
	u32 nr_locks;
	bool mirror;			/* mirroring on */
	bool suspending;		/* between presuspend and resume */
	const char *broken;		/* set in atomic context: degrade soon */
	struct bio **reap;		/* bios whose sink leg is done */
	/* Unflushed regions (see the top), under reap_lock but ue. */
	atomic_long_t *unflushed[2];
	unsigned int ue;		/* the epoch completions mark */
	u64 flush_owner;		/* id of the flush owning epoch ue ^ 1 */

	wait_queue_head_t poll_wait;
	wait_queue_head_t drain_wait;
	struct delayed_work timeout_work;
	struct work_struct kick_work;
};

struct workqueue_struct *sxm_wq;
/* The source legs of mirrored writes (slot_bio()). */
static struct bio_set sxm_bioset;

static u32 ring_mask(struct sxm_ring *ring)
{
	return ring->geo.entries - 1;
}

static sector_t region_first(struct sxm_dev *dev, u64 region)
{
	return region << dev->dirty.region_shift;
}

static struct sxm_io *bio_io(struct bio *bio)
{
	return dm_per_bio_data(bio, sizeof(struct sxm_io));
}

/* Something changed that the helper and dmsetup should hear of. */
static void ring_event(struct sxm_ring *ring)
{
	struct sxm_dev *dev = ring->dev;

	atomic64_inc(&dev->events);
	wake_up_interruptible(&ring->poll_wait);
	sxm_dev_event(dev);
}

/* ----------------------------------------------------------------------
 * Overlap checks (ring_lock held): O(log n) each
 * ----------------------------------------------------------------------
 */

static bool tree_overlaps(struct rb_root_cached *root, sector_t s,
			  sector_t n)
{
	return n && rn_iter_first(root, s, s + n - 1);
}

/* The locks are disjoint and sorted: the last one starting before the end. */
static bool overlaps_locks(struct sxm_ring *ring, sector_t s, sector_t n)
{
	struct sxm_dev *dev = ring->dev;
	u64 first = s >> dev->dirty.region_shift;
	u64 last = (s + n - 1) >> dev->dirty.region_shift;
	u32 lo = 0, hi = ring->nr_locks;

	if (!n)
		return false;
	/* The first lock starting after @last. */
	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (ring->locks[mid].first > last)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo && ring->locks[lo - 1].first + ring->locks[lo - 1].count > first;
}

/* ----------------------------------------------------------------------
 * Posting
 * ----------------------------------------------------------------------
 */

static void sxm_source_endio(struct bio *bio);

/* Room in both rings?  Also checks the helper's sq_head (read once). */
static bool ring_has_room(struct sxm_ring *ring)
{
	/* Pairs with the helper's release of sq_head: it is done with them. */
	u32 head = smp_load_acquire(&ring->hdr->sq_head);
	u32 used = ring->sq_tail - head;

	if (used > ring->geo.entries) {
		ring->broken = "bad_sq_head";
		return false;
	}
	return ring->nr_free && used + ring->nr_reserved < ring->geo.entries;
}

enum post_verdict { POST_NOW, POST_WAIT_ROOM, POST_WAIT };

/* May @io be posted now?  @from_queue: it is a held-back entry itself. */
static enum post_verdict can_post(struct sxm_ring *ring, struct sxm_io *io,
				  bool from_queue)
{
	sector_t s = io->sector, n = io->nr_sectors;

	/* First come, first posted while anyone waits for room. */
	if (!from_queue && ring->room_wait)
		return POST_WAIT_ROOM;
	if (tree_overlaps(&ring->inflight, s, n) || overlaps_locks(ring, s, n))
		return POST_WAIT;
	/* A new write may not pass a held-back write it overlaps. */
	if (!from_queue && tree_overlaps(&ring->held, s, n))
		return POST_WAIT;
	if (!ring_has_room(ring))
		return POST_WAIT_ROOM;
	return POST_NOW;
}

/*
 * Take a slot and a place in the submission ring for @bio (ring_lock
 * held).  The slot's range is busy from now on; the helper sees nothing
 * until publish().
 */
static u32 reserve(struct sxm_ring *ring, struct bio *bio, struct sxm_io *io)
{
	u32 idx = ring->free[--ring->nr_free];
	struct sxm_slot *slot = &ring->slots[idx];

	slot->bio = bio;
	slot->id = (++ring->seq << SXM_ID_IDX_BITS) | idx;
	slot->sector = io->sector;
	slot->nr_sectors = io->nr_sectors;
	slot->state = SLOT_RESERVED;
	slot->sink_done = false;
	slot->source_done = false;
	slot->fua = bio->bi_opf & REQ_FUA;
	if (io->nr_sectors) {
		slot->node.start = io->sector;
		slot->node.last = io->sector + io->nr_sectors - 1;
		rn_insert(&slot->node, &ring->inflight);
	}
	ring->nr_reserved++;
	io->slot = idx;
	io->mirror_gen = ring->mirror_gen;
	return idx;
}

static void free_slot(struct sxm_ring *ring, u32 idx)
{
	struct sxm_slot *slot = &ring->slots[idx];

	if (slot->nr_sectors)
		rn_remove(&slot->node, &ring->inflight);
	slot->bio = NULL;
	slot->id = 0;
	slot->state = SLOT_FREE;
	ring->free[ring->nr_free++] = idx;
}

/* Undo reserve(): the mirror went down before the helper saw it. */
static void unreserve(struct sxm_ring *ring, u32 idx)
{
	ring->nr_reserved--;
	free_slot(ring, idx);
}

/* The data, copied with ring_lock dropped: the slot is ours alone. */
static void copy_bio_data(struct sxm_ring *ring, u32 idx, struct bio *bio)
{
	u8 *dst = ring->data + (u64)idx * ring->geo.slot_bytes;
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, bio, iter) {
		memcpy_from_bvec(dst, &bv);
		dst += bv.bv_len;
	}
}

/*
 * Publish a reserved slot (ring_lock held): write its sqe from the kernel's
 * own values and let the helper see it.  False if the mirror went down
 * since reserve(): the slot is released and the caller tracks the write.
 */
static bool publish(struct sxm_ring *ring, u32 idx, struct sxm_io *io)
{
	struct sxm_slot *slot = &ring->slots[idx];
	struct bio *bio = slot->bio;
	struct sxm_sqe *sqe = &ring->sq[ring->sq_tail & ring_mask(ring)];
	u64 len = (u64)slot->nr_sectors << SECTOR_SHIFT;
	u8 op;

	if (!ring->mirror || ring->broken || io->mirror_gen != ring->mirror_gen) {
		unreserve(ring, idx);
		return false;
	}
	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
		op = slot->nr_sectors ? SXM_OP_WRITE : SXM_OP_FLUSH;
		break;
	case REQ_OP_WRITE_ZEROES:
	case REQ_OP_SECURE_ERASE:
		/* What was there must be gone from the sink too. */
		op = SXM_OP_WRITE_ZEROES;
		break;
	default:
		op = SXM_OP_DISCARD;
		break;
	}
	sqe->id = slot->id;
	sqe->offset = (u64)slot->sector << SECTOR_SHIFT;
	sqe->len = len;
	sqe->data_off = op == SXM_OP_WRITE ?
			ring->geo.data_off + (u64)idx * ring->geo.slot_bytes : 0;
	sqe->op = op;
	sqe->flags = slot->fua ? SXM_SQE_FUA : 0;
	sqe->reserved = 0;
	/* The sqe and its data are written before the helper sees the tail. */
	smp_store_release(&ring->hdr->sq_tail, ++ring->sq_tail);
	ring->nr_reserved--;
	slot->state = SLOT_POSTED;
	slot->posted = jiffies;
	list_add_tail(&slot->open, &ring->open);

	/* A flush owns the older epoch of unflushed regions if it is free. */
	if (op == SXM_OP_FLUSH && !ring->flush_owner) {
		ring->flush_owner = slot->id;
		ring->ue ^= 1;
	}

	/*
	 * Both legs must finish; the source's completion comes to us: that of
	 * the write of the slot's bytes (io->clone), or of @bio itself.
	 */
	atomic_set(&io->pending, 2);
	io->mirrored = 1;
	if (!io->clone) {
		io->end_io = bio->bi_end_io;
		io->private = bio->bi_private;
		bio->bi_end_io = sxm_source_endio;
		bio->bi_private = ring->dev;
	}
	atomic64_inc(&ring->dev->mirrored_writes);
	atomic64_add(len, &ring->dev->mirrored_bytes);
	return true;
}

/* The source leg of mirrored @bio is over, with @status. */
static void source_leg_done(struct sxm_dev *dev, struct bio *bio,
			    blk_status_t status)
{
	struct sxm_io *io = bio_io(bio);
	struct sxm_ring *ring;
	unsigned long flags;

	/* The sink may have what the source lacks: copy it again later. */
	if (status && io->nr_sectors)
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

/* A mirrored flush, discard or write-zeroes: the guest's bio itself. */
static void sxm_source_endio(struct bio *bio)
{
	struct sxm_io *io = bio_io(bio);

	bio->bi_end_io = io->end_io;
	bio->bi_private = io->private;
	source_leg_done(io->tgt->dev, bio, bio->bi_status);
}

/* Drop the page references slot_bio() took, and the bio. */
static void slot_bio_put(struct bio *clone)
{
	struct bvec_iter_all iter;
	struct bio_vec *bv;

	bio_for_each_segment_all(bv, clone, iter)
		put_page(bv->bv_page);
	bio_put(clone);
}

/*
 * Send the source leg of @io again, allowed to wait: it came back "would
 * block".  A new bio over the same pages (the old one's references keep
 * them until it is put).
 */
static void resubmit_fn(struct work_struct *work)
{
	struct sxm_io *io = container_of(work, struct sxm_io, submit_work);
	struct bio *old = io->clone, *clone;
	struct bvec_iter_all iter;
	struct bio_vec *bv;

	clone = bio_alloc_bioset(old->bi_bdev, old->bi_vcnt,
				 old->bi_opf & ~REQ_NOWAIT, GFP_NOIO,
				 &sxm_bioset);
	clone->bi_iter.bi_sector = io->sector;
	bio_for_each_segment_all(bv, old, iter) {
		get_page(bv->bv_page);
		__bio_add_page(clone, bv->bv_page, bv->bv_len, bv->bv_offset);
	}
	clone->bi_end_io = old->bi_end_io;
	clone->bi_private = old->bi_private;
	io->clone = clone;
	slot_bio_put(old);
	submit_bio_noacct(clone);
}

/* A mirrored write: the write of the slot's bytes to the source. */
static void sxm_clone_endio(struct bio *clone)
{
	struct bio *bio = clone->bi_private;
	struct sxm_io *io = bio_io(bio);
	blk_status_t status = clone->bi_status;

	if (status == BLK_STS_AGAIN && (clone->bi_opf & REQ_NOWAIT)) {
		INIT_WORK(&io->submit_work, resubmit_fn);
		queue_work(sxm_wq, &io->submit_work);
		return;
	}
	if (status)
		bio->bi_status = status;
	io->clone = NULL;
	slot_bio_put(clone);
	source_leg_done(io->tgt->dev, bio, status);
}

/*
 * The source leg of a write: a bio over the slot's pages, so that the
 * source stores the very bytes the sink gets (the guest may change its
 * buffer while the write is in flight, when its pages are not stable).
 * The helper maps the slots read-only (see sxm_ring_mmap()), so it cannot
 * change them either.  Each page is referenced until the bio is done: a
 * helper that detaches frees the ring while the source may still be
 * reading them.  Slots start on page boundaries (check_geometry()).  Not
 * polled: dm polls only the bios it made.  REQ_NOWAIT as the guest's bio,
 * from map: a "would block" of the source is retried from a work item
 * (sxm_clone_endio()), since the guest's bio completes only with its sink
 * leg, away from its submitter, which could not retry it.
 *
 * @may_wait: from the deferred work, which may wait for a bio and for the
 * source whatever the guest's bio said; else a REQ_NOWAIT bio does not
 * wait, and NULL is returned if none could be had (the write is then
 * tracked instead).
 */
static struct bio *slot_bio(struct sxm_ring *ring, u32 idx, struct bio *bio,
			    bool may_wait)
{
	struct sxm_io *io = bio_io(bio);
	u32 len = io->nr_sectors << SECTOR_SHIFT, off;
	u8 *data = ring->data + (u64)idx * ring->geo.slot_bytes;
	blk_opf_t opf = bio->bi_opf & ~REQ_POLLED;
	gfp_t gfp = GFP_NOIO;
	struct bio *clone;

	if (may_wait)
		opf &= ~REQ_NOWAIT;
	else if (opf & REQ_NOWAIT)
		gfp = GFP_NOWAIT;
	clone = bio_alloc_bioset(io->tgt->source->bdev,
				 DIV_ROUND_UP(len, PAGE_SIZE), opf, gfp,
				 &sxm_bioset);
	if (!clone)
		return NULL;
	clone->bi_iter.bi_sector = io->sector;
	for (off = 0; off < len; off += PAGE_SIZE) {
		struct page *page = vmalloc_to_page(data + off);

		get_page(page);
		__bio_add_page(clone, page, min_t(u32, PAGE_SIZE, len - off),
			       0);
	}
	clone->bi_end_io = sxm_clone_endio;
	clone->bi_private = bio;
	return clone;
}

/*
 * Fill reserved slot @idx for @bio, with ring_lock dropped (the slot is
 * ours alone): copy the data and make the source leg.  False if no source
 * bio could be had (the caller tracks the write).
 */
static bool fill_slot(struct sxm_ring *ring, u32 idx, struct bio *bio,
		      bool may_wait)
{
	struct sxm_io *io = bio_io(bio);

	io->clone = NULL;
	if (bio_op(bio) != REQ_OP_WRITE || !io->nr_sectors)
		return true;
	io->clone = slot_bio(ring, idx, bio, may_wait);
	if (!io->clone)
		return false;
	copy_bio_data(ring, idx, bio);
	return true;
}

static void submit_to_source(struct bio *bio);

/* After publish(): the source leg goes. */
static void submit_source_leg(struct bio *bio)
{
	struct sxm_io *io = bio_io(bio);

	if (io->clone)
		dm_submit_bio_remap(bio, io->clone);
	else
		submit_to_source(bio);
}

/* Count @bio held back and put its range in the held tree. */
static void requeue(struct sxm_ring *ring, struct bio *bio)
{
	struct sxm_io *io = bio_io(bio);

	if (io->nr_sectors) {
		io->held_node.start = io->sector;
		io->held_node.last = io->sector + io->nr_sectors - 1;
		rn_insert(&io->held_node, &ring->held);
	}
	ring->nr_deferred++;
}

static void hold_back(struct sxm_ring *ring, struct bio *bio,
		      struct sxm_io *io, bool room)
{
	io->since = jiffies;
	requeue(ring, bio);
	bio_list_add(&ring->deferred, bio);
	if (room)
		ring->room_wait = true;
}

/*
 * A mirror-mode write from the target's map: post it, hold it back, or (no
 * ring, mirroring off) leave it to the caller to track.
 */
int sxm_ring_map(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io,
		 bool in_map)
{
	struct sxm_ring *ring;
	enum post_verdict v;
	unsigned long flags;
	int r = SXM_RING_NOT_MIRRORED;
	bool filled, posted = false;
	u32 idx;

	spin_lock_irqsave(&dev->ring_lock, flags);
	ring = dev->ring;
	if (!ring || !ring->mirror || ring->broken)
		goto out;

	if (bio_op(bio) == REQ_OP_WRITE &&
	    bio->bi_iter.bi_size > ring->geo.slot_bytes) {
		/*
		 * Only the target's map may split a bio.  Out of it (a write
		 * that waited for the metadata, see sxm_ring_split(), while a
		 * ring with smaller slots came) one too big for this ring is
		 * tracked, and the mirror degrades.
		 */
		if (!in_map) {
			/* Tracked, so the mirror must go down: resync. */
			if (!ring->broken)
				ring->broken = "oversized_write";
			goto out;
		}
		dm_accept_partial_bio(bio, ring->geo.slot_bytes >> SECTOR_SHIFT);
		io->nr_sectors = bio_sectors(bio);
	}
	v = can_post(ring, io, false);
	if (v == POST_NOW) {
		idx = reserve(ring, bio, io);
		ring->nr_posting++;
		spin_unlock_irqrestore(&dev->ring_lock, flags);

		filled = fill_slot(ring, idx, bio, false);

		spin_lock_irqsave(&dev->ring_lock, flags);
		if (filled && publish(ring, idx, io)) {
			posted = true;
			r = io->clone ? DM_MAPIO_SUBMITTED : DM_MAPIO_REMAPPED;
			wake_up_interruptible(&ring->poll_wait);
		} else {
			if (!filled)
				unreserve(ring, idx);
			else if (io->clone)
				slot_bio_put(io->clone);
			/* The slot is free again: what waits for it may go. */
			queue_work(sxm_wq, &ring->kick_work);
			wake_up_all(&ring->drain_wait);
		}
		if (ring->broken)
			mod_delayed_work(sxm_wq, &ring->timeout_work, 0);
		/* Last use of @ring: sxm_ring_destroy() may wait for this. */
		if (!--ring->nr_posting)
			wake_up_all(&ring->drain_wait);
		spin_unlock_irqrestore(&dev->ring_lock, flags);
		/* A clone is ours to send; @bio is dm's to send otherwise. */
		if (posted && io->clone)
			submit_source_leg(bio);
		return r;
	} else if (!ring->broken && !ring->suspending) {
		hold_back(ring, bio, io, v == POST_WAIT_ROOM);
		r = DM_MAPIO_SUBMITTED;
	}
	/* Suspending: what would wait is tracked instead (see presuspend). */
out:
	/* Under the lock: the ring is freed only after it is unlinked. */
	if (ring && ring->broken)
		mod_delayed_work(sxm_wq, &ring->timeout_work, 0);
	/* Held back: @bio belongs to the deferred work from here on. */
	spin_unlock_irqrestore(&dev->ring_lock, flags);
	return r;
}

/*
 * From the target's map, before a mirror-mode write may wait for the
 * metadata device: split it now to what one slot holds, as sxm_ring_map()
 * would (only map may), so that the regions marked are the ones posted.
 */
void sxm_ring_split(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io)
{
	unsigned long flags;
	u32 slot_bytes = 0;

	if (bio_op(bio) != REQ_OP_WRITE)
		return;
	spin_lock_irqsave(&dev->ring_lock, flags);
	if (dev->ring)
		slot_bytes = dev->ring->geo.slot_bytes;
	spin_unlock_irqrestore(&dev->ring_lock, flags);
	if (slot_bytes && bio->bi_iter.bi_size > slot_bytes) {
		dm_accept_partial_bio(bio, slot_bytes >> SECTOR_SHIFT);
		io->nr_sectors = bio_sectors(bio);
	}
}

/*
 * Word @w (a long) of the regions the sink acknowledged since its last
 * good flush (dev->lock held: the ring stays).  A degrade moves them into
 * the dirty map under the dirty map's harvest_lock, which the caller holds.
 */
unsigned long sxm_ring_unflushed_word(struct sxm_dev *dev, size_t w)
{
	struct sxm_ring *ring = dev->ring;

	lockdep_assert_held(&dev->lock);
	if (!ring)
		return 0;
	return atomic_long_read(&ring->unflushed[0][w]) |
	       atomic_long_read(&ring->unflushed[1][w]);
}

/*
 * A change the helper should hear of that is not the ring's (the
 * persistent map went off): as ring_event(), with or without a ring.
 */
void sxm_ring_notify(struct sxm_dev *dev)
{
	unsigned long flags;

	atomic64_inc(&dev->events);
	spin_lock_irqsave(&dev->ring_lock, flags);
	if (dev->ring)
		wake_up_interruptible(&dev->ring->poll_wait);
	spin_unlock_irqrestore(&dev->ring_lock, flags);
	sxm_dev_event(dev);
}

/* ----------------------------------------------------------------------
 * Completing and degrading
 * ----------------------------------------------------------------------
 */

/* The sink leg of @bio is over (successfully or not). */
static void sink_leg_done(struct bio *bio)
{
	struct sxm_io *io = bio_io(bio);

	if (atomic_dec_and_test(&io->pending))
		bio_endio(bio);
}

/*
 * A bio held back, sent from process context: it may wait for the source.
 * Not REQ_NOWAIT any more: a "would block" now would complete it with
 * EAGAIN away from its submitter, which could not retry it.
 */
static void submit_to_source(struct bio *bio)
{
	struct sxm_io *io = bio_io(bio);

	bio->bi_opf &= ~REQ_NOWAIT;
	sxm_remap(io->tgt, bio);
	dm_submit_bio_remap(bio, NULL);
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
	list_del_init(&slot->open);
	if (slot->source_done)
		free_slot(ring, idx);
}

/* Take every held-back bio off the queue (ring_lock held). */
static void steal_deferred(struct sxm_ring *ring, struct bio_list *out)
{
	*out = ring->deferred;
	bio_list_init(&ring->deferred);
	ring->held = RB_ROOT_CACHED;
	ring->nr_deferred = 0;
	ring->room_wait = false;
}

/* Held-back bios go to the source, their regions marked dirty. */
static void track_deferred(struct sxm_dev *dev, struct bio_list *list)
{
	struct bio *bio;

	while ((bio = bio_list_pop(list))) {
		struct sxm_io *io = bio_io(bio);

		if (io->nr_sectors)
			sxm_dirty_mark_gen(&dev->dirty, io->gen, io->sector,
					   io->nr_sectors);
		submit_to_source(bio);
	}
}

/*
 * Mirroring off, for @reason: every write in flight or held back gets its
 * regions marked dirty, and so does every region the sink may still hold
 * only in its cache; in-flight sink legs are abandoned (the ids become
 * unknown to the kernel), held-back writes go to the source.  Called with
 * reap_lock held, in process context.
 *
 * The caller's own @taken bios are at the start of ring->reap, and it
 * completes them only after this returns: a write or flush the sink failed
 * must not reach the guest before the mirror is down and its regions dirty.
 * The two sets never add up to more than the ring's entries: the caller
 * set ring->broken in the ring_lock section that released its slots, so
 * none was posted again since, and a slot's sink leg is released once.
 */
static void degrade_locked(struct sxm_ring *ring, const char *reason,
			   u32 taken)
{
	struct sxm_dev *dev = ring->dev;
	struct sxm_slot *slot, *tmp;
	struct bio_list held;
	bool changed = false;
	u32 i, n = taken;

	lockdep_assert_held(&ring->reap_lock);
	/*
	 * Every region the sink may hold only in its cache is copied again.
	 * Before mirroring is seen off: a helper that sees it off and
	 * harvests at once must find them.  Nothing adds to these maps
	 * meanwhile: only enter does, under reap_lock.
	 */
	sxm_dirty_map_merge(&dev->dirty, ring->unflushed[0]);
	sxm_dirty_map_merge(&dev->dirty, ring->unflushed[1]);
	spin_lock_irq(&dev->ring_lock);
	ring->flush_owner = 0;
	if (ring->mirror) {
		ring->mirror = false;
		dev->degraded_reason = reason;
		atomic64_inc(&dev->degradations);
		changed = true;
	}
	ring->broken = NULL;
	ring->mirror_gen++;
	/* The helper may still complete what is abandoned here: see enter. */
	ring->abandoned_seq = ring->seq;
	list_for_each_entry_safe(slot, tmp, &ring->open, open)
		release_slot(ring, slot - ring->slots, &n);
	steal_deferred(ring, &held);
	spin_unlock_irq(&dev->ring_lock);

	if (changed)
		DMWARN_LIMIT("%u:%u: mirror degraded: %s", MAJOR(dev->devt),
			     MINOR(dev->devt), reason);
	for (i = taken; i < n; i++) {
		struct sxm_io *io = bio_io(ring->reap[i]);

		if (io->nr_sectors)
			sxm_dirty_mark_gen(&dev->dirty, io->gen, io->sector,
					   io->nr_sectors);
		sink_leg_done(ring->reap[i]);
	}
	track_deferred(dev, &held);
	wake_up_all(&ring->drain_wait);
	if (changed)
		ring_event(ring);
}

static void ring_degrade(struct sxm_ring *ring, const char *reason)
{
	mutex_lock(&ring->reap_lock);
	degrade_locked(ring, reason, 0);
	mutex_unlock(&ring->reap_lock);
}

/*
 * One batch of the deferred work (ring_lock held): post, in order, what can
 * go now from @todo; what must still wait goes back on the queue, behind
 * anything older and ahead of what arrived meanwhile.  @waiting holds the
 * ranges of this pass's entries that stay, which later ones may not pass.
 */
static void kick_batch(struct sxm_ring *ring, struct bio_list *todo,
		       struct bio_list *stay, struct rb_root_cached *waiting,
		       struct bio_list *go, bool *no_room)
{
	struct bio *bio;
	int k;

	for (k = 0; k < SXM_KICK_BATCH && (bio = bio_list_pop(todo)); k++) {
		struct sxm_io *io = bio_io(bio);
		enum post_verdict v = POST_WAIT_ROOM;

		if (!*no_room && !tree_overlaps(waiting, io->sector,
						io->nr_sectors))
			v = can_post(ring, io, true);
		if (v == POST_NOW) {
			if (io->nr_sectors)
				rn_remove(&io->held_node, &ring->held);
			ring->nr_deferred--;
			io->slot = reserve(ring, bio, io);
			bio_list_add(go, bio);
			continue;
		}
		/* Room goes to the oldest: nothing after this one posts. */
		if (v == POST_WAIT_ROOM)
			*no_room = true;
		if (io->nr_sectors) {
			io->wait_node.start = io->sector;
			io->wait_node.last = io->sector + io->nr_sectors - 1;
			rn_insert(&io->wait_node, waiting);
		}
		bio_list_add(stay, bio);
	}
}

/*
 * Post what was held back and can go now, and submit it.  A write never
 * passes an earlier held-back write it overlaps, and room goes to the
 * oldest first.  Runs under reap_lock, so no degrade takes the queue while
 * a batch is out of it.
 */
static void kick_work_fn(struct work_struct *work)
{
	struct sxm_ring *ring = container_of(work, struct sxm_ring, kick_work);
	struct sxm_dev *dev = ring->dev;
	struct rb_root_cached waiting = RB_ROOT_CACHED;
	struct bio_list todo, stay, go, out;
	bool no_room = false, arrivals, room_wait, retry = false;
	struct bio *bio;

	bio_list_init(&stay);
	bio_list_init(&out);
	mutex_lock(&ring->reap_lock);
	spin_lock_irq(&dev->ring_lock);
	if (!ring->mirror || ring->broken) {
		spin_unlock_irq(&dev->ring_lock);
		mutex_unlock(&ring->reap_lock);
		return;
	}
	todo = ring->deferred;
	bio_list_init(&ring->deferred);
	room_wait = ring->room_wait;
	while (!bio_list_empty(&todo)) {
		bio_list_init(&go);
		kick_batch(ring, &todo, &stay, &waiting, &go, &no_room);
		spin_unlock_irq(&dev->ring_lock);

		/* The slots are ours; reap_lock keeps the ring. */
		bio_list_for_each(bio, &go)
			bio_io(bio)->filled = fill_slot(ring, bio_io(bio)->slot,
							bio, true);

		spin_lock_irq(&dev->ring_lock);
		while ((bio = bio_list_pop(&go))) {
			struct sxm_io *io = bio_io(bio);

			if (io->filled && publish(ring, io->slot, io)) {
				bio_list_add(&out, bio);
				continue;
			}
			/* Broken meanwhile: the timeout work degrades. */
			if (!io->filled)
				unreserve(ring, io->slot);
			else if (io->clone)
				slot_bio_put(io->clone);
			io->clone = NULL;
			requeue(ring, bio);
			bio_list_add(&stay, bio);
			retry = true;
		}
		if (!ring->mirror || ring->broken)
			break;
		if (!bio_list_empty(&todo)) {
			spin_unlock_irq(&dev->ring_lock);
			cond_resched();
			spin_lock_irq(&dev->ring_lock);
		}
	}
	/* Back on the queue, oldest first, ahead of new arrivals. */
	arrivals = !bio_list_empty(&ring->deferred);
	bio_list_merge(&stay, &todo);
	bio_list_merge(&stay, &ring->deferred);
	ring->deferred = stay;
	ring->room_wait = no_room;
	spin_unlock_irq(&dev->ring_lock);

	if (!bio_list_empty(&out))
		wake_up_interruptible(&ring->poll_wait);
	/*
	 * What arrived during the pass may go now too: it may have waited
	 * behind what this pass posted, or only for the room the pass had
	 * kept for older entries.  A slot given back needs a pass too.
	 */
	if ((arrivals && !no_room && (!bio_list_empty(&out) || room_wait)) ||
	    retry)
		queue_work(sxm_wq, &ring->kick_work);
	while ((bio = bio_list_pop(&out)))
		submit_source_leg(bio);
	mutex_unlock(&ring->reap_lock);
}

/*
 * Clear epoch @e of unflushed regions: the flush owning it succeeded
 * (reap_lock held, ring_lock not).  Until it is clear no flush may start
 * a new epoch, which would make @e the one completions mark.
 */
static void flush_done(struct sxm_ring *ring, unsigned int e)
{
	sxm_dirty_map_clear(&ring->dev->dirty, ring->unflushed[e]);
	/* Their bits on the metadata device may be cleared now. */
	atomic64_inc(&ring->dev->dirty.copied);
	spin_lock_irq(&ring->dev->ring_lock);
	ring->flush_owner = 0;
	spin_unlock_irq(&ring->dev->ring_lock);
}

struct reaped {
	u32 idx;
	s32 status;
	u8 epoch;			/* writes: the epoch it marks */
	bool owner;			/* a flush owning the older epoch */
};

/*
 * SXM_IOC_RING_ENTER: reap the helper's completions.  Returns how many, or
 * -EIO if the ring held nonsense (mirroring is then off).
 */
int sxm_ring_enter(struct sxm_dev *dev)
{
	/* Pairs with sxm_ring_setup(): the helper's ioctls are not serialised. */
	struct sxm_ring *ring = smp_load_acquire(&dev->ring);
	const char *bad = NULL, *why = NULL;
	u32 tail, n = 0, i, reaped = 0;
	struct reaped *done;

	if (!ring)
		return -ENXIO;
	mutex_lock(&ring->reap_lock);
	done = (struct reaped *)(ring->reap + ring->geo.entries);
	spin_lock_irq(&dev->ring_lock);
	/* Pairs with the helper's release of cq_tail: the cqes are written. */
	tail = smp_load_acquire(&ring->hdr->cq_tail);
	if (tail - ring->cq_head > ring->geo.entries)
		bad = "bad_cq_tail";
	while (!bad && ring->cq_head != tail) {
		struct sxm_cqe *cqe = &ring->cq[ring->cq_head & ring_mask(ring)];
		u64 id = READ_ONCE(cqe->id);
		s32 status = READ_ONCE(cqe->status);
		u32 idx = SXM_SQE_ID_SLOT(id);
		struct sxm_slot *slot = NULL;

		if (idx < ring->geo.entries)
			slot = &ring->slots[idx];
		if (!slot || slot->state != SLOT_POSTED || slot->id != id ||
		    slot->sink_done) {
			/*
			 * An entry a degrade abandoned: the helper cannot know
			 * in time (a timeout is not its to see), so its late
			 * completion is consumed and ignored.
			 */
			if ((id >> SXM_ID_IDX_BITS) &&
			    (id >> SXM_ID_IDX_BITS) <= ring->abandoned_seq) {
				ring->cq_head++;
				continue;
			}
			bad = "bad_completion";
			break;
		}
		ring->cq_head++;
		if (status && !why)
			why = slot->nr_sectors ? "sink_error" : "sink_flush_error";
		done[reaped] = (struct reaped){ .idx = idx, .status = status,
						.epoch = ring->ue };
		/* Its epoch is cleared below; a new one starts only then. */
		if (!slot->nr_sectors && slot->id == ring->flush_owner)
			done[reaped].owner = true;
		reaped++;
		release_slot(ring, idx, &n);
	}
	/* The cqes are read before the helper may reuse their places. */
	smp_store_release(&ring->hdr->cq_head, ring->cq_head);
	/*
	 * Nothing new is posted until the degrade below: the slots freed
	 * above stay free, so what it releases and what was reaped here fit
	 * in ring->reap together, and no write goes to a sink that failed.
	 */
	if (bad || why)
		ring->broken = bad ?: why;
	spin_unlock_irq(&dev->ring_lock);

	/* In cqe order: a write's epoch is marked before a flush clears it. */
	for (i = 0; i < n; i++) {
		struct sxm_io *io = bio_io(ring->reap[i]);

		if (done[i].status) {
			if (io->nr_sectors)
				sxm_dirty_mark_gen(&dev->dirty, io->gen,
						   io->sector, io->nr_sectors);
		} else if (io->nr_sectors && !(ring->reap[i]->bi_opf & REQ_FUA)) {
			sxm_dirty_map_mark(&dev->dirty,
					   ring->unflushed[done[i].epoch],
					   io->sector, io->nr_sectors);
		} else if (done[i].owner) {
			flush_done(ring, done[i].epoch ^ 1);
		}
	}
	if (bad || why)
		degrade_locked(ring, bad ?: why, n);
	/* Only now: a guest that sees its write or flush done sees all this. */
	for (i = 0; i < n; i++)
		sink_leg_done(ring->reap[i]);
	mutex_unlock(&ring->reap_lock);

	if (n) {
		wake_up_all(&ring->drain_wait);
		queue_work(sxm_wq, &ring->kick_work);
	}
	return bad ? -EIO : reaped;
}

/*
 * Periodic: a sqe or a held-back write older than the timeout degrades.
 * Both are timed from their own arrival, so a steady stream of other
 * writes completing does not keep an old one waiting.
 */
static void timeout_work_fn(struct work_struct *work)
{
	struct sxm_ring *ring = container_of(to_delayed_work(work),
					     struct sxm_ring, timeout_work);
	struct sxm_dev *dev = ring->dev;
	unsigned long tmo = msecs_to_jiffies(ring->geo.timeout_ms);
	struct sxm_slot *oldest;
	const char *why;
	struct bio *head;

	mutex_lock(&ring->reap_lock);
	spin_lock_irq(&dev->ring_lock);
	why = ring->broken;
	oldest = list_first_entry_or_null(&ring->open, struct sxm_slot, open);
	if (!why && oldest && time_after(jiffies, oldest->posted + tmo))
		why = "sink_timeout";
	head = bio_list_peek(&ring->deferred);
	if (!why && head && time_after(jiffies, bio_io(head)->since + tmo))
		why = overlaps_locks(ring, bio_io(head)->sector,
				     bio_io(head)->nr_sectors) ?
		      "lock_timeout" : "ring_full";
	spin_unlock_irq(&dev->ring_lock);
	if (why)
		degrade_locked(ring, why, 0);
	mutex_unlock(&ring->reap_lock);
	queue_delayed_work(sxm_wq, &ring->timeout_work,
			   max_t(unsigned long, tmo / 4, 1));
}

/* ----------------------------------------------------------------------
 * Set-up, mode, suspend, locks, teardown
 * ----------------------------------------------------------------------
 */

static void ring_free(struct sxm_ring *ring)
{
	vfree(ring->area);
	kvfree(ring->slots);
	kvfree(ring->free);
	kvfree(ring->reap);
	kvfree(ring->locks);
	kvfree(ring->locks_spare);
	kvfree(ring->unflushed[0]);
	kvfree(ring->unflushed[1]);
	kvfree(ring);
}

static int check_geometry(struct sxm_ring_setup *geo)
{
	if (!geo->entries)
		geo->entries = SXM_RING_DEFAULT_ENTRIES;
	if (!geo->slot_bytes)
		geo->slot_bytes = SXM_RING_DEFAULT_SLOT_BYTES;
	if (!geo->timeout_ms)
		geo->timeout_ms = SXM_RING_DEFAULT_TIMEOUT_MS;
	if (!is_power_of_2(geo->entries) ||
	    geo->entries < SXM_RING_MIN_ENTRIES ||
	    geo->entries > SXM_RING_MAX_ENTRIES ||
	    !is_power_of_2(geo->slot_bytes) ||
	    geo->slot_bytes < max_t(u32, SXM_RING_MIN_SLOT_BYTES, PAGE_SIZE) ||
	    geo->slot_bytes > SXM_RING_MAX_SLOT_BYTES ||
	    geo->timeout_ms < SXM_RING_MIN_TIMEOUT_MS ||
	    geo->timeout_ms > SXM_RING_MAX_TIMEOUT_MS ||
	    (u64)geo->entries * geo->slot_bytes > SXM_RING_MAX_DATA)
		return -EINVAL;
	return 0;
}

/* With dev->lock held. */
int sxm_ring_setup(struct sxm_dev *dev, struct sxm_ring_setup *geo)
{
	struct sxm_ring *ring;
	size_t sq_bytes, cq_bytes;
	u32 i;

	lockdep_assert_held(&dev->lock);
	if (check_geometry(geo))
		return -EINVAL;
	if (dev->ring)
		return -EBUSY;

	ring = kvzalloc(sizeof(*ring), GFP_KERNEL);
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
	/* The bios reaped, then what enter learnt of each. */
	ring->reap = kvcalloc(geo->entries, sizeof(struct bio *) +
			      sizeof(struct reaped), GFP_KERNEL);
	ring->locks = kvcalloc(SXM_LOCK_MAX, sizeof(*ring->locks), GFP_KERNEL);
	ring->locks_spare = kvcalloc(SXM_LOCK_MAX, sizeof(*ring->locks),
				     GFP_KERNEL);
	ring->unflushed[0] = sxm_dirty_map_alloc(&dev->dirty);
	ring->unflushed[1] = sxm_dirty_map_alloc(&dev->dirty);
	if (!ring->area || !ring->slots || !ring->free || !ring->reap ||
	    !ring->locks || !ring->locks_spare || !ring->unflushed[0] ||
	    !ring->unflushed[1]) {
		ring_free(ring);
		return -ENOMEM;
	}
	ring->hdr = ring->area;
	ring->sq = ring->area + geo->sq_off;
	ring->cq = ring->area + geo->cq_off;
	ring->data = ring->area + geo->data_off;
	ring->sq_tail = SXM_RING_INDEX_START;
	ring->cq_head = SXM_RING_INDEX_START;
	ring->hdr->sq_head = SXM_RING_INDEX_START;
	ring->hdr->sq_tail = SXM_RING_INDEX_START;
	ring->hdr->cq_head = SXM_RING_INDEX_START;
	ring->hdr->cq_tail = SXM_RING_INDEX_START;
	for (i = 0; i < geo->entries; i++) {
		ring->free[i] = geo->entries - 1 - i;
		INIT_LIST_HEAD(&ring->slots[i].open);
	}
	ring->nr_free = geo->entries;
	ring->dev = dev;
	ring->inflight = RB_ROOT_CACHED;
	ring->held = RB_ROOT_CACHED;
	INIT_LIST_HEAD(&ring->open);
	mutex_init(&ring->reap_lock);
	mutex_init(&ring->locks_mutex);
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
 * Mirroring on or off (helper, the "mode" message, a reload).  On needs a
 * ring; it clears the degraded state.  Off lets writes in flight finish and
 * sends the held-back ones to the source at once, tracked.  With dev->lock
 * held (so the ring stays).
 */
int sxm_ring_set_mirror(struct sxm_dev *dev, bool on)
{
	struct sxm_ring *ring = dev->ring;
	struct bio_list held;
	bool changed;

	lockdep_assert_held(&dev->lock);
	if (!ring)
		return on ? -ENXIO : 0;
	mutex_lock(&ring->reap_lock);
	/* Broken while on: writes were tracked meanwhile; say so first. */
	if (READ_ONCE(ring->broken))
		degrade_locked(ring, READ_ONCE(ring->broken), 0);
	spin_lock_irq(&dev->ring_lock);
	changed = ring->mirror != on || (on && dev->degraded_reason);
	ring->mirror = on;
	bio_list_init(&held);
	if (on) {
		ring->broken = NULL;
		dev->degraded_reason = NULL;
	} else {
		ring->mirror_gen++;
		steal_deferred(ring, &held);
	}
	spin_unlock_irq(&dev->ring_lock);
	track_deferred(dev, &held);
	mutex_unlock(&ring->reap_lock);
	if (changed)
		ring_event(ring);
	return 0;
}

/*
 * Suspend: what is held back goes to the source now, tracked, and until the
 * resume nothing new is held back, so a suspend waits at most for the
 * writes the helper has (bounded by the timeout), never for a region lock.
 * With dev->lock held.
 */
void sxm_ring_presuspend(struct sxm_dev *dev)
{
	struct sxm_ring *ring = dev->ring;
	struct bio_list held;

	lockdep_assert_held(&dev->lock);
	if (!ring)
		return;
	mutex_lock(&ring->reap_lock);
	spin_lock_irq(&dev->ring_lock);
	ring->suspending = true;
	steal_deferred(ring, &held);
	spin_unlock_irq(&dev->ring_lock);
	track_deferred(dev, &held);
	mutex_unlock(&ring->reap_lock);
}

/* Suspended (nothing in flight) or resumed: the works stop or start. */
void sxm_ring_resume(struct sxm_dev *dev, bool suspended)
{
	struct sxm_ring *ring = dev->ring;

	lockdep_assert_held(&dev->lock);
	if (!ring)
		return;
	if (suspended) {
		cancel_delayed_work_sync(&ring->timeout_work);
		flush_work(&ring->kick_work);
		return;
	}
	spin_lock_irq(&dev->ring_lock);
	ring->suspending = false;
	spin_unlock_irq(&dev->ring_lock);
	mod_delayed_work(sxm_wq, &ring->timeout_work,
			 msecs_to_jiffies(ring->geo.timeout_ms / 4));
}

bool sxm_ring_mirroring(struct sxm_dev *dev)
{
	struct sxm_ring *ring = dev->ring;

	return ring && READ_ONCE(ring->mirror);
}

static bool locks_drained(struct sxm_ring *ring, struct sxm_lock_range *r,
			  u32 nr)
{
	struct sxm_dev *dev = ring->dev;
	bool busy = false;
	u32 i;

	spin_lock_irq(&dev->ring_lock);
	for (i = 0; i < nr && !busy; i++)
		busy = tree_overlaps(&ring->inflight,
				     region_first(dev, r[i].first),
				     region_first(dev, r[i].count));
	spin_unlock_irq(&dev->ring_lock);
	return !busy;
}

static int cmp_range(const void *a, const void *b)
{
	const struct sxm_lock_range *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return 0;
}

/* Index of the held lock exactly @r, or -1 (locks_mutex held). */
static int find_lock(struct sxm_ring *ring, const struct sxm_lock_range *r)
{
	u32 lo = 0, hi = ring->nr_locks;

	while (lo < hi) {
		u32 mid = lo + (hi - lo) / 2;

		if (ring->locks[mid].first < r->first)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ring->nr_locks && ring->locks[lo].first == r->first &&
	    ring->locks[lo].count == r->count)
		return lo;
	return -1;
}

/*
 * Build the new lock set in locks_spare from the held one and sorted @r
 * (locks_mutex held): all of it checked first, nothing changed on error.
 * Taking: the ranges may not overlap each other (-EINVAL) or a held one
 * (-EBUSY), and must fit (-ENOSPC).  Releasing: each must be held, once
 * (-ENOENT).
 */
static int lock_set_build(struct sxm_ring *ring, struct sxm_lock_range *r,
			  u32 nr, bool release, u32 *nr_new)
{
	struct sxm_lock_range *old = ring->locks, *out = ring->locks_spare;
	u32 i, j = 0, k = 0;

	for (i = 1; i < nr; i++)
		if (r[i - 1].first + r[i - 1].count > r[i].first)
			return release ? -ENOENT : -EINVAL;
	if (release) {
		for (i = 0; i < nr; i++)
			if (find_lock(ring, &r[i]) < 0)
				return -ENOENT;
		/* Both sorted: keep what is not released. */
		for (i = 0; i < ring->nr_locks; i++) {
			if (j < nr && old[i].first == r[j].first) {
				j++;
				continue;
			}
			out[k++] = old[i];
		}
		*nr_new = k;
		return 0;
	}
	if (ring->nr_locks + nr > SXM_LOCK_MAX)
		return -ENOSPC;
	/* Merge, refusing any overlap with a held range. */
	for (i = 0; i < ring->nr_locks || j < nr;) {
		const struct sxm_lock_range *next;

		if (j >= nr || (i < ring->nr_locks && old[i].first < r[j].first))
			next = &old[i++];
		else
			next = &r[j++];
		if (k && out[k - 1].first + out[k - 1].count > next->first)
			return -EBUSY;
		out[k++] = *next;
	}
	*nr_new = k;
	return 0;
}

/*
 * SXM_IOC_LOCK: take @nr ranges (waiting until no write is in flight in
 * them) or release them.  All or nothing: the whole call is checked before
 * the lock set changes, and it changes at once (a pointer swap under
 * ring_lock).  The wait for writes in flight is killable and needs nothing
 * from the helper but its completions, which SXM_IOC_RING_ENTER reaps
 * without taking any lock this holds.
 */
int sxm_ring_lock(struct sxm_dev *dev, struct sxm_lock_range *r, u32 nr,
		  bool release)
{
	/* Pairs with sxm_ring_setup(). */
	struct sxm_ring *ring = smp_load_acquire(&dev->ring);
	struct sxm_lock_range *old;
	u32 nr_new;
	int err;

	if (!ring)
		return -ENXIO;
	sort(r, nr, sizeof(*r), cmp_range, NULL);
	mutex_lock(&ring->locks_mutex);
	err = lock_set_build(ring, r, nr, release, &nr_new);
	if (!err) {
		spin_lock_irq(&dev->ring_lock);
		old = ring->locks;
		ring->locks = ring->locks_spare;
		ring->nr_locks = nr_new;
		ring->locks_spare = old;
		spin_unlock_irq(&dev->ring_lock);
	}
	mutex_unlock(&ring->locks_mutex);
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

/*
 * Readable while sqes wait; EPOLLPRI while the mirror state changed since
 * this file last read it with SXM_IOC_GET_INFO (@seen).
 */
__poll_t sxm_ring_poll(struct sxm_dev *dev, struct file *file,
		       poll_table *wait, u64 seen)
{
	/* Pairs with sxm_ring_setup(). */
	struct sxm_ring *ring = smp_load_acquire(&dev->ring);
	__poll_t mask = 0;

	if (!ring)
		return EPOLLERR;
	poll_wait(file, &ring->poll_wait, wait);
	if (READ_ONCE(ring->sq_tail) != READ_ONCE(ring->hdr->sq_head))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (atomic64_read(&dev->events) != seen)
		mask |= EPOLLPRI;
	return mask;
}

/* The helper may write the header (sq_head, cq_tail) and the cqes only. */
static bool helper_writable(struct sxm_ring *ring, u64 off)
{
	return off < ring->geo.sq_off ||
	       (off >= ring->geo.cq_off && off < ring->geo.data_off);
}

/* A write to a read-only page of the ring: SIGBUS for the sqes and data. */
static vm_fault_t sxm_ring_pfn_mkwrite(struct vm_fault *vmf)
{
	struct sxm_ring *ring = vmf->vma->vm_private_data;

	if (helper_writable(ring, (u64)vmf->pgoff << PAGE_SHIFT))
		return 0;
	return VM_FAULT_SIGBUS;
}

static const struct vm_operations_struct sxm_ring_vm_ops = {
	.pfn_mkwrite = sxm_ring_pfn_mkwrite,
};

/*
 * The helper maps the whole area, shared, never executable.  The sqes and
 * the data slots are mapped read-only, whatever the mapping asks for: the
 * source is written from the slots (see slot_bio()), so the helper must
 * not be able to change them.  The pages are inserted one by one (the area
 * is vmalloc'd), each with its own protection; a later mprotect() makes
 * every page fault on its first write, and sxm_ring_pfn_mkwrite() refuses
 * the read-only ones.  (The vma holds the file, so the ring outlives the
 * mapping.)
 */
int sxm_ring_mmap(struct sxm_dev *dev, struct vm_area_struct *vma)
{
	/* Pairs with sxm_ring_setup(). */
	struct sxm_ring *ring = smp_load_acquire(&dev->ring);
	pgprot_t ro = vm_get_page_prot(VM_READ | VM_SHARED);
	u64 off;
	int r;

	if (!ring)
		return -ENXIO;
	if (!(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_EXEC))
		return -EINVAL;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != ring->area_bytes)
		return -EINVAL;
	vma->vm_flags &= ~VM_MAYEXEC;
	vma->vm_private_data = ring;
	vma->vm_ops = &sxm_ring_vm_ops;
	for (off = 0; off < ring->area_bytes; off += PAGE_SIZE) {
		r = remap_pfn_range(vma, vma->vm_start + off,
				    vmalloc_to_pfn(ring->area + off), PAGE_SIZE,
				    helper_writable(ring, off) ?
				    vma->vm_page_prot : ro);
		if (r)
			return r;
	}
	return 0;
}

void sxm_ring_status(struct sxm_dev *dev, const char **state, u32 *inflight,
		     u32 *held)
{
	struct sxm_ring *ring;
	unsigned long flags;

	*inflight = 0;
	*held = 0;
	spin_lock_irqsave(&dev->ring_lock, flags);
	ring = dev->ring;
	if (ring) {
		*inflight = ring->geo.entries - ring->nr_free;
		*held = ring->nr_deferred;
	}
	if (ring && ring->mirror)
		*state = "on";
	else if (dev->degraded_reason)
		*state = "degraded";
	else
		*state = "off";
	spin_unlock_irqrestore(&dev->ring_lock, flags);
}

/* The helper is gone (dev->lock held): degrade, stop the works, free. */
void sxm_ring_destroy(struct sxm_dev *dev)
{
	struct sxm_ring *ring = dev->ring;

	lockdep_assert_held(&dev->lock);
	if (!ring)
		return;
	ring_degrade(ring, "helper_detached");
	spin_lock_irq(&dev->ring_lock);
	dev->ring = NULL;
	spin_unlock_irq(&dev->ring_lock);
	/*
	 * A map call between reserve and publish still uses it; its last
	 * touch is under ring_lock, so taking that lock after the count fell
	 * to zero waits for it.  (Source legs still writing from the slots
	 * hold references to their pages: see slot_bio().)
	 */
	wait_event(ring->drain_wait, !READ_ONCE(ring->nr_posting));
	spin_lock_irq(&dev->ring_lock);
	spin_unlock_irq(&dev->ring_lock);
	cancel_delayed_work_sync(&ring->timeout_work);
	cancel_work_sync(&ring->kick_work);
	ring_free(ring);
}

int sxm_ring_init(void)
{
	int r = bioset_init(&sxm_bioset, 64, 0, BIOSET_NEED_BVECS);

	if (r)
		return r;
	sxm_wq = alloc_workqueue("dm-sxm", WQ_MEM_RECLAIM, 0);
	if (!sxm_wq) {
		bioset_exit(&sxm_bioset);
		return -ENOMEM;
	}
	return 0;
}

void sxm_ring_exit(void)
{
	destroy_workqueue(sxm_wq);
	bioset_exit(&sxm_bioset);
}
