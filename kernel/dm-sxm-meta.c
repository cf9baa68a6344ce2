// SPDX-License-Identifier: GPL-2.0
/*
 * dm-sxm: the persistent write-intent map, on an optional metadata device.
 *
 * The on-disk format is include/uapi/linux/dm-sxm-metadata.h's: a
 * superblock, then one bit per region in checksummed 4 KiB blocks.  The
 * rule, as md's write-intent bitmap has it: a write to a region whose bit
 * is not on the metadata device yet waits until that bit is durable (a
 * FUA write of its block), and only then goes on; so after a power cut
 * the map on disk holds every region written since its track started.
 *
 * In memory, three maps of the regions:
 *
 *   img      what the map on disk holds or is being written to hold; under
 *            lock, changed only by the write work, the cleaner and the
 *            helper's marks (sxm_meta_persist_marks()).
 *   durable  the bits known to be on disk and staying there: the fast path
 *            reads only this.  A bit is set once its block's write
 *            completed, and cleared by the cleaner before the block that
 *            clears it on disk is written.
 *   touched  every region written (tracked or mirrored) since the
 *            cleaner's last round, marked before durable is read.
 *
 * Write path (sxm_meta_map(), from the target's map): mark touched, a full
 * barrier, read durable.  All set: the write goes on, at no cost but two
 * atomic reads.  Else it waits on the list of the write work, which ORs
 * the regions of every waiting write into img, writes the blocks that
 * changed (one write per block however many writes wait on it, FUA),
 * sets durable, and sends the writes on.  The writes that arrive while a
 * metadata write is in flight make the next batch.
 *
 * Regions the helper marks dirty (SXM_IOC_MARK_DIRTY: found differing on
 * the sink) go on disk the same way before its call returns: pending in
 * the dirty maps and not durable, they are ORed into img and written.
 *
 * The cleaner (every meta_clean_ms, if the helper acknowledged a copy or
 * the sink a flush since its last round) clears bits lazily.  A region may lose
 * its bit only when the helper has nothing left to copy there: not dirty,
 * not held (harvested and not acknowledged), not acknowledged by the sink
 * without a flush since (the ring's unflushed regions), no write to it in
 * flight.  A round:
 *
 *   1. switch the write epoch and wait until the old one has no write in
 *      flight (sxm_dirty_epoch_drain()); every write of an older round is
 *      then complete, and so visible in the dirty, held or unflushed maps;
 *   2. flush the source device, so that what was copied from it is on it
 *      for good (the sink must not end up newer than the source after a
 *      power cut);
 *   3. candidates = img & ~(touched | dirty | held | unflushed); clear them
 *      in durable; a full barrier; look again and give back what a write
 *      marked meanwhile.  A write marks touched and then reads durable, the
 *      cleaner clears durable and then reads touched: one of them sees the
 *      other, so no write goes on with a bit that is about to be cleared.
 *      Word by word, META_BATCH blocks' words under the locks at a time;
 *   4. clear the rest from img, write their blocks (META_BATCH at a time,
 *      the lock dropped in between: a guest write waits for one chunk of
 *      the cleaner's at most), zero touched.
 *
 * Never the guest's failure: a metadata write that fails or does not
 * complete within meta_timeout_ms (each batch of writes has one deadline)
 * turns the persistent map off ("failed", with a reason in the status):
 * the superblock is rewritten to say "no track" in the same hold of
 * sxm_meta.lock that saw the failure, before the writes waiting go on
 * (after a write that hung, by inval_work once it landed; and at every
 * suspend, resume and mode change until that works), in-memory tracking
 * goes on, and the track id changes, so that no helper trusts a map with
 * holes.  A metadata I/O that never completes keeps its buffers and the
 * module (see "Block I/O").
 *
 * Lock order: sxm_dev.lock -> sxm_meta.lock -> sxm_dirty.harvest_lock;
 * sxm_meta.wlock (a spinlock, the waiting list) under any of them.  The
 * cleaner drains the epoch with none held, and is stopped before the
 * presuspend takes sxm_dev.lock.  The write work and inval_work never
 * take sxm_dev.lock: a mode change holds it while it waits for writes to
 * drain.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/crc32.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>

#include <uapi/linux/dm-sxm-metadata.h>

#include "dm-sxm.h"

static_assert(sizeof(struct sxm_meta_sb) == SXM_META_BLOCK_SIZE);
static_assert(sizeof(struct sxm_meta_map_hdr) == SXM_META_MAP_HDR_SIZE);
static_assert(SXM_META_REGIONS_PER_BLOCK % BITS_PER_LONG == 0);
static_assert(offsetof(struct sxm_meta_sb, reserved) <= SXM_META_SB_CSUM_END);

#define META_SECTORS		(SXM_META_BLOCK_SIZE >> SECTOR_SHIFT)
#define META_LONGS_PER_BLOCK	(SXM_META_REGIONS_PER_BLOCK / BITS_PER_LONG)
/* Map blocks written at once (their pages are the pool's). */
#define META_BATCH		16

static unsigned int meta_timeout_ms = 10000;
module_param(meta_timeout_ms, uint, 0644);
MODULE_PARM_DESC(meta_timeout_ms,
		 "a metadata write not complete after this long turns the persistent map off (ms)");

static unsigned int meta_clean_ms = 5000;
module_param(meta_clean_ms, uint, 0644);
MODULE_PARM_DESC(meta_clean_ms,
		 "how often bits of regions copied are cleared on the metadata device (ms)");

enum {
	META_ACTIVE,
	META_FAILING,	/* writes still wait: "no track" goes on disk first */
	META_FAILED,
};

/* The superblock's fields, in CPU order. */
struct meta_sb {
	u32 flags;
	u64 seq;
	u64 meta_id;
	u64 region_sectors;
	u64 nr_regions;
	u64 len_sectors;
	u64 track_id;
	u64 clean_time;
	u64 bound_time;
	char source_id[SXM_META_SOURCE_ID_LEN];
};

struct sxm_meta {
	struct sxm_dev *dev;
	struct block_device *bdev;	/* held by the tables; NULL once none */
	dev_t devt;
	char source_id[SXM_META_SOURCE_ID_LEN];

	u64 nr_regions;
	u64 nr_blocks;			/* map blocks */
	size_t nr_longs;		/* of each map, whole blocks */

	struct mutex lock;		/* below, and all metadata I/O */
	struct meta_sb sb;		/* as last written */
	unsigned long *img;
	unsigned long *blk_dirty;	/* map blocks to write */
	unsigned long *blk_batch;	/* of them, the write work's batch's */
	u64 img_bits;

	atomic_long_t *durable;
	atomic_long_t *touched;

	struct meta_io *slot[META_BATCH];	/* under lock */
	spinlock_t wlock;		/* the waiting list */
	struct bio_list waiting;
	struct work_struct write_work;
	struct work_struct fail_work;
	struct delayed_work clean_work;
	struct delayed_work inval_work;	/* "no track" after a hung write */
	u64 clean_hint;			/* dirty.copied at the last round */
	bool invalidated;		/* failed, and "no track" is on disk */
	bool kept_touched;		/* the last round kept bits as written */
	bool stop;			/* the cleaner's drain gives up */

	atomic_t state;
	const char *reason;		/* why it failed, or NULL */
	const char *loaded;		/* new, clean, unclean or reset */
	u64 loaded_clean_time;		/* from the superblock at load */
	u64 saved_track;		/* the track found at load; taken once */
	u64 bad_blocks;			/* map blocks read as all ones */
	atomic64_t writes;		/* metadata blocks written */
	atomic64_t write_ns;		/* their total latency */
};

/* ----------------------------------------------------------------------
 * Block I/O
 *
 * Each device has META_BATCH I/O slots (a bio and a page each), made at
 * table load, used under its lock: no allocation on the write path.  An
 * I/O that does not complete in time is given away ("orphaned"): its
 * completion frees it, and until then it holds a reference to this
 * module (rmmod says busy rather than wait for ever) and keeps any new
 * table from loading its device (a late write must not land on a newer
 * map).  The slot is made again, if memory allows, when next needed.
 * ----------------------------------------------------------------------
 */

enum {
	MIO_IDLE,
	MIO_INFLIGHT,
	MIO_DONE,
	MIO_ORPHAN,
};

struct meta_io {
	struct bio bio;
	struct bio_vec bvec;
	struct page *page;
	struct completion done;
	atomic_t state;
	blk_status_t status;
	ktime_t start;
	dev_t devt;			/* while an orphan */
	struct list_head orphan;
};

static struct workqueue_struct *meta_wq;
static LIST_HEAD(mio_orphans);
static DEFINE_SPINLOCK(mio_orphan_lock);	/* also mio_tainted[] */

/*
 * Devices an orphan wrote to late: what they hold may be older than what
 * was written after it (a superblock saying a track, map bits cleared).
 * Their track is not trusted at the next load, until a superblock write
 * of ours succeeds there again.
 */
#define MIO_TAINTED_MAX	16
static dev_t mio_tainted[MIO_TAINTED_MAX];
static bool mio_tainted_overflow;

static void taint_locked(dev_t devt)
{
	unsigned int i;

	for (i = 0; i < MIO_TAINTED_MAX; i++)
		if (mio_tainted[i] == devt)
			return;
	for (i = 0; i < MIO_TAINTED_MAX; i++)
		if (!mio_tainted[i]) {
			mio_tainted[i] = devt;
			return;
		}
	/* More than that many devices: trust no saved track at all. */
	mio_tainted_overflow = true;
}

static bool meta_tainted(dev_t devt)
{
	bool t = false;
	unsigned int i;

	spin_lock_irq(&mio_orphan_lock);
	for (i = 0; i < MIO_TAINTED_MAX; i++)
		t |= mio_tainted[i] == devt;
	t |= mio_tainted_overflow;
	spin_unlock_irq(&mio_orphan_lock);
	return t;
}

static void meta_untaint(dev_t devt)
{
	unsigned int i;

	spin_lock_irq(&mio_orphan_lock);
	for (i = 0; i < MIO_TAINTED_MAX; i++)
		if (mio_tainted[i] == devt)
			mio_tainted[i] = 0;
	spin_unlock_irq(&mio_orphan_lock);
}

static void mio_free(struct meta_io *mio)
{
	if (!mio)
		return;
	if (mio->page)
		__free_page(mio->page);
	kfree(mio);
}

static struct meta_io *mio_alloc(gfp_t gfp)
{
	struct meta_io *mio = kzalloc(sizeof(*mio), gfp);

	if (!mio)
		return NULL;
	mio->page = alloc_page(gfp);
	if (!mio->page) {
		kfree(mio);
		return NULL;
	}
	INIT_LIST_HEAD(&mio->orphan);
	return mio;
}

static void mio_endio(struct bio *bio)
{
	struct meta_io *mio = container_of(bio, struct meta_io, bio);
	unsigned long flags;

	mio->status = bio->bi_status;
	if (atomic_cmpxchg(&mio->state, MIO_INFLIGHT, MIO_DONE) ==
	    MIO_INFLIGHT) {
		complete(&mio->done);
		return;
	}
	/* An orphan: nobody waits for it any more; a write landed late. */
	spin_lock_irqsave(&mio_orphan_lock, flags);
	list_del(&mio->orphan);
	if (op_is_write(bio_op(bio)))
		taint_locked(mio->devt);
	spin_unlock_irqrestore(&mio_orphan_lock, flags);
	bio_uninit(&mio->bio);
	mio_free(mio);
	module_put(THIS_MODULE);
}

/* Is an orphan of an earlier table still writing to @devt? */
static bool mio_orphans_on(dev_t devt)
{
	struct meta_io *mio;
	bool busy = false;

	spin_lock_irq(&mio_orphan_lock);
	list_for_each_entry(mio, &mio_orphans, orphan)
		busy |= mio->devt == devt;
	spin_unlock_irq(&mio_orphan_lock);
	return busy;
}

/*
 * Slot @i of @m, ready for a zeroed block's I/O to block @blocknr; NULL
 * if it was given away and cannot be made again now.
 */
static struct meta_io *mio_get(struct sxm_meta *m, unsigned int i,
			       u64 blocknr, blk_opf_t opf)
{
	struct meta_io *mio = m->slot[i];

	if (!mio) {
		mio = mio_alloc(GFP_NOIO | __GFP_NOWARN);
		if (!mio)
			return NULL;
		m->slot[i] = mio;
	}
	clear_highpage(mio->page);
	bio_init(&mio->bio, m->bdev, &mio->bvec, 1, opf);
	mio->bio.bi_iter.bi_sector = blocknr * META_SECTORS;
	__bio_add_page(&mio->bio, mio->page, SXM_META_BLOCK_SIZE, 0);
	mio->bio.bi_end_io = mio_endio;
	init_completion(&mio->done);
	atomic_set(&mio->state, MIO_INFLIGHT);
	mio->status = BLK_STS_OK;
	return mio;
}

static void mio_submit(struct meta_io *mio)
{
	mio->start = ktime_get();
	submit_bio(&mio->bio);
}

/*
 * Wait for slot @i until @deadline (jiffies): 0, -EIO, or -ETIMEDOUT and
 * the slot is given away.
 */
static int mio_wait_until(struct sxm_meta *m, unsigned int i,
			  unsigned long deadline)
{
	struct meta_io *mio = m->slot[i];
	long left = (long)(deadline - jiffies);
	unsigned long got = 0;
	bool orphan;

	if (left > 0)
		got = wait_for_completion_timeout(&mio->done, left);
	/* Listed in the same section: mio_endio() unlists it under the lock. */
	spin_lock_irq(&mio_orphan_lock);
	orphan = atomic_cmpxchg(&mio->state, MIO_INFLIGHT, MIO_ORPHAN) ==
		 MIO_INFLIGHT;
	if (orphan) {
		__module_get(THIS_MODULE);
		mio->devt = m->devt;
		list_add(&mio->orphan, &mio_orphans);
	}
	spin_unlock_irq(&mio_orphan_lock);
	if (orphan) {
		m->slot[i] = NULL;
		return -ETIMEDOUT;
	}
	/*
	 * Done after the wait gave up: mio_endio() may still be in
	 * complete(); take that completion before the slot is used again.
	 */
	if (!got)
		wait_for_completion(&mio->done);
	bio_uninit(&mio->bio);
	atomic_set(&mio->state, MIO_IDLE);
	return mio->status ? -EIO : 0;
}

static unsigned long meta_deadline(void)
{
	return jiffies + msecs_to_jiffies(max(meta_timeout_ms, 100U));
}

/* A block's checksum: of bytes 4 to @end. */
static u32 meta_csum(const void *block, unsigned int end)
{
	return crc32_le(~0U, (const u8 *)block + 4, end - 4) ^ ~0U;
}

static u32 block_csum(const void *block)
{
	return meta_csum(block, SXM_META_BLOCK_SIZE);
}

static u32 sb_csum(const void *block)
{
	return meta_csum(block, SXM_META_SB_CSUM_END);
}

/* Read block @blocknr into @buf (lock held, or the table load's own). */
static int meta_read(struct sxm_meta *m, u64 blocknr, void *buf)
{
	struct meta_io *mio = mio_get(m, 0, blocknr, REQ_OP_READ | REQ_META |
				      REQ_SYNC);
	int r;

	if (!mio)
		return -ENOMEM;
	mio_submit(mio);
	r = mio_wait_until(m, 0, meta_deadline());
	if (!r)
		memcpy_from_page(buf, mio->page, 0, SXM_META_BLOCK_SIZE);
	return r;
}

/* ----------------------------------------------------------------------
 * Encoding
 * ----------------------------------------------------------------------
 */

static void sb_encode(const struct meta_sb *sb, void *block)
{
	struct sxm_meta_sb *d = block;

	memset(d, 0, SXM_META_BLOCK_SIZE);
	d->magic = cpu_to_le32(SXM_META_SB_MAGIC);
	d->version = cpu_to_le32(SXM_META_VERSION);
	d->flags = cpu_to_le32(sb->flags);
	d->seq = cpu_to_le64(sb->seq);
	d->meta_id = cpu_to_le64(sb->meta_id);
	d->region_sectors = cpu_to_le64(sb->region_sectors);
	d->nr_regions = cpu_to_le64(sb->nr_regions);
	d->len_sectors = cpu_to_le64(sb->len_sectors);
	d->track_id = cpu_to_le64(sb->track_id);
	d->clean_time = cpu_to_le64(sb->clean_time);
	d->bound_time = cpu_to_le64(sb->bound_time);
	memcpy(d->source_id, sb->source_id, sizeof(d->source_id));
	d->csum = cpu_to_le32(sb_csum(d));
}

/* Map block @k (0-based; on disk at 1 + k) from img. */
static void map_encode(struct sxm_meta *m, u64 k, void *block)
{
	struct sxm_meta_map_hdr *h = block;
	__le64 *words = block + SXM_META_MAP_HDR_SIZE;
	u64 first = k * SXM_META_REGIONS_PER_BLOCK;
	unsigned int nbits = min_t(u64, SXM_META_REGIONS_PER_BLOCK,
				   m->nr_regions - first);
	u64 *cpu = block + SXM_META_MAP_HDR_SIZE;
	unsigned int i;

	memset(block, 0, SXM_META_BLOCK_SIZE);
	bitmap_to_arr64(cpu, m->img + k * META_LONGS_PER_BLOCK, nbits);
	for (i = 0; i < SXM_META_WORDS_PER_BLOCK; i++)
		words[i] = cpu_to_le64(cpu[i]);
	h->magic = cpu_to_le32(SXM_META_MAP_MAGIC);
	h->blocknr = cpu_to_le64(1 + k);
	h->meta_id = cpu_to_le64(m->sb.meta_id);
	h->csum = cpu_to_le32(block_csum(block));
}

/*
 * Map block @k read from disk into img: false (and all its regions set)
 * if it is not a good block of this map.
 */
static bool map_decode(struct sxm_meta *m, u64 k, void *block)
{
	struct sxm_meta_map_hdr *h = block;
	__le64 *words = block + SXM_META_MAP_HDR_SIZE;
	u64 first = k * SXM_META_REGIONS_PER_BLOCK;
	unsigned int nbits = min_t(u64, SXM_META_REGIONS_PER_BLOCK,
				   m->nr_regions - first);
	unsigned long *dst = m->img + k * META_LONGS_PER_BLOCK;
	u64 *cpu = block + SXM_META_MAP_HDR_SIZE;
	bool good;
	unsigned int i;

	good = le32_to_cpu(h->csum) == block_csum(block) &&
	       le32_to_cpu(h->magic) == SXM_META_MAP_MAGIC &&
	       le64_to_cpu(h->blocknr) == 1 + k &&
	       le64_to_cpu(h->meta_id) == m->sb.meta_id;
	if (!good) {
		bitmap_set(dst, 0, nbits);
		return false;
	}
	for (i = 0; i < SXM_META_WORDS_PER_BLOCK; i++)
		cpu[i] = le64_to_cpu(words[i]);
	/* Bits past the last region are dropped (bitmap_from_arr64). */
	bitmap_from_arr64(dst, cpu, nbits);
	return true;
}

/* ----------------------------------------------------------------------
 * Writing
 * ----------------------------------------------------------------------
 */

static void meta_count_write(struct sxm_meta *m, struct meta_io *mio)
{
	atomic64_inc(&m->writes);
	atomic64_add(ktime_to_ns(ktime_sub(ktime_get(), mio->start)),
		     &m->write_ns);
}

/* Write the superblock @m->sb (seq + 1), FUA; with lock held. */
static int meta_write_sb(struct sxm_meta *m)
{
	struct meta_io *mio;
	int r;

	lockdep_assert_held(&m->lock);
	if (!m->bdev)
		return -ENODEV;
	mio = mio_get(m, 0, 0, REQ_OP_WRITE | REQ_META | REQ_SYNC | REQ_FUA |
		      REQ_PRIO);
	if (!mio)
		return -ENOMEM;
	m->sb.seq++;
	sb_encode(&m->sb, page_address(mio->page));
	mio_submit(mio);
	r = mio_wait_until(m, 0, meta_deadline());
	if (!r) {
		meta_count_write(m, mio);
		/* Ours is the newest superblock there now. */
		meta_untaint(m->devt);
	}
	return r;
}

/*
 * Write up to META_BATCH of the map blocks marked in @which (blk_dirty, or
 * blk_batch) from *@k to @last, FUA, all by @deadline (lock held); *@k
 * moves past them.  A block written leaves blk_dirty and blk_batch; one
 * that failed stays.  How many it wrote, or -errno.
 */
static int meta_write_chunk(struct sxm_meta *m, unsigned long *which, u64 *k,
			    u64 last, unsigned long deadline)
{
	u64 ks[META_BATCH];
	unsigned int n, i;
	int r = 0;

	lockdep_assert_held(&m->lock);
	if (!m->bdev)
		return -ENODEV;
	for (n = 0; n < META_BATCH; n++) {
		u64 b = find_next_bit(which, last + 1, *k);

		if (b > last) {
			*k = last + 1;
			break;
		}
		ks[n] = b;
		*k = b + 1;
	}
	for (i = 0; i < n; i++) {
		struct meta_io *mio = mio_get(m, i, 1 + ks[i], REQ_OP_WRITE |
					      REQ_META | REQ_SYNC | REQ_FUA |
					      REQ_PRIO);

		if (!mio) {
			n = i;
			r = -ENOMEM;
			break;
		}
		map_encode(m, ks[i], page_address(mio->page));
		mio_submit(mio);
	}
	for (i = 0; i < n; i++) {
		int e = mio_wait_until(m, i, deadline);

		if (!e) {
			meta_count_write(m, m->slot[i]);
			clear_bit(ks[i], m->blk_dirty);
			clear_bit(ks[i], m->blk_batch);
		} else if (!r || e == -ETIMEDOUT) {
			r = e;
		}
	}
	return r ?: n;
}

/* The blocks marked in @which from @first to @last, all by @deadline. */
static int meta_write_blocks(struct sxm_meta *m, unsigned long *which,
			     u64 first, u64 last, unsigned long deadline)
{
	u64 k = first;
	int r;

	while (k <= last) {
		r = meta_write_chunk(m, which, &k, last, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The bits of regions @first..@last in word @w of a map. */
static unsigned long word_mask(u64 w, u64 first, u64 last)
{
	unsigned long mask = ~0UL;

	if (w == first / BITS_PER_LONG)
		mask &= BITMAP_FIRST_WORD_MASK(first);
	if (w == last / BITS_PER_LONG)
		mask &= BITMAP_LAST_WORD_MASK(last + 1);
	return mask;
}

/*
 * For a batch (lock held): set @bits in word @w of img, and put its block
 * in blk_batch if its bits are not all on disk: it changed them, or it is
 * still to write anyway (blk_dirty: a block the cleaner cleared, or a bad
 * one read as all ones).  Bits the cleaner gave back are set already and
 * on disk: no rewrite for them.
 */
static void img_or(struct sxm_meta *m, u64 w, unsigned long bits)
{
	u64 k = w / META_LONGS_PER_BLOCK;

	bits &= ~m->img[w];
	if (bits) {
		m->img_bits += hweight_long(bits);
		m->img[w] |= bits;
		__set_bit(k, m->blk_dirty);
	}
	if (test_bit(k, m->blk_dirty))
		__set_bit(k, m->blk_batch);
}

/* img_or() for regions @first..@last. */
static void img_set(struct sxm_meta *m, u64 first, u64 last)
{
	u64 w;

	for (w = first / BITS_PER_LONG; w <= last / BITS_PER_LONG; w++)
		img_or(m, w, word_mask(w, first, last));
}

/*
 * durable |= img over regions @first..@last, whose blocks were just
 * written (lock held); a block still to write keeps its bits out.
 */
static void durable_from_img(struct sxm_meta *m, u64 first, u64 last)
{
	u64 w, lw = last / BITS_PER_LONG;

	for (w = first / BITS_PER_LONG; w <= lw; w++) {
		if (test_bit(w / META_LONGS_PER_BLOCK, m->blk_dirty))
			continue;
		if (m->img[w] & ~atomic_long_read(&m->durable[w]))
			atomic_long_or(m->img[w], &m->durable[w]);
	}
}

static bool range_durable(struct sxm_meta *m, u64 first, u64 last)
{
	u64 w;

	for (w = first / BITS_PER_LONG; w <= last / BITS_PER_LONG; w++) {
		unsigned long mask = word_mask(w, first, last);

		if ((atomic_long_read(&m->durable[w]) & mask) != mask)
			return false;
	}
	return true;
}

static void range_mark(atomic_long_t *map, u64 first, u64 last)
{
	u64 w;

	for (w = first / BITS_PER_LONG; w <= last / BITS_PER_LONG; w++) {
		unsigned long mask = word_mask(w, first, last);

		if ((atomic_long_read(&map[w]) & mask) != mask)
			atomic_long_or(mask, &map[w]);
	}
}

static void io_regions(struct sxm_meta *m, struct sxm_io *io, u64 *first,
		       u64 *last)
{
	unsigned int shift = m->dev->dirty.region_shift;

	*first = io->sector >> shift;
	*last = (io->sector + io->nr_sectors - 1) >> shift;
}

/* ----------------------------------------------------------------------
 * Failure: the persistent map goes off, never the guest's I/O
 * ----------------------------------------------------------------------
 */

/*
 * The superblock of a failed map says "no track", so that no later load
 * resumes a track whose map has holes (lock held).  Tried at the failure
 * (before any write that waited for its bits goes on) and again at every
 * suspend, resume and mode change until it is written.  Not while a
 * write to the device hangs (it would only pile up more: the late write
 * taints the device, see mio_tainted): then inval_work looks again every
 * second, and writes it once that write is done (and a second later
 * when a slot could not be allocated; a write error waits for the next
 * suspend, resume or mode change).
 */
static void meta_invalidate(struct sxm_meta *m)
{
	bool later;
	int r;

	lockdep_assert_held(&m->lock);
	if (m->invalidated || !m->bdev)
		return;
	/* One look: an orphan that lands after it is inval_work's to see. */
	later = mio_orphans_on(m->devt);
	if (!later) {
		m->sb.track_id = 0;
		m->sb.flags = SXM_META_BOUND;
		r = meta_write_sb(m);
		if (!r) {
			m->invalidated = true;
			return;
		}
		/* This one hangs now, or its slot could not be made again. */
		later = r == -ETIMEDOUT || r == -ENOMEM;
	}
	if (later)
		queue_delayed_work(system_long_wq, &m->inval_work, HZ);
}

static void meta_inval_work(struct work_struct *work)
{
	struct sxm_meta *m = container_of(to_delayed_work(work),
					  struct sxm_meta, inval_work);

	mutex_lock(&m->lock);
	meta_invalidate(m);
	mutex_unlock(&m->lock);
}

/*
 * Turn the persistent map off for @reason (lock held; the caller tries
 * meta_invalidate() before it lets the lock go, so that a map seen
 * failing under the lock has "no track" tried on disk already).  The map
 * is "failing" until the write work has seen that: writes whose bits are
 * not durable still wait meanwhile (so none goes on with the old track on
 * disk while that can be helped), then it is "failed" and they all go on.
 */
static void meta_fail(struct sxm_meta *m, const char *reason)
{
	lockdep_assert_held(&m->lock);
	if (atomic_cmpxchg(&m->state, META_ACTIVE, META_FAILING) !=
	    META_ACTIVE)
		return;
	WRITE_ONCE(m->reason, reason);
	DMERR("%u:%u: metadata device %u:%u: %s: persistent map off, tracking in memory",
	      MAJOR(m->dev->devt), MINOR(m->dev->devt), MAJOR(m->devt),
	      MINOR(m->devt), reason);
	queue_work(meta_wq, &m->write_work);
}

/* "No track" was tried: the writes go on from now on, untracked on disk. */
static void meta_set_failed(struct sxm_meta *m)
{
	if (atomic_cmpxchg(&m->state, META_FAILING, META_FAILED) ==
	    META_FAILING)
		queue_work(system_wq, &m->fail_work);
}

/* The write work, on a failing map: "no track" on disk, then failed. */
static void meta_finish_fail(struct sxm_meta *m)
{
	mutex_lock(&m->lock);
	meta_invalidate(m);
	mutex_unlock(&m->lock);
	meta_set_failed(m);
}

/*
 * After a failure: a map with holes must never be trusted.  The track id
 * changes, so the helper copies everything again and saves the new id,
 * which no later load of this device can match.  The helper hears of it
 * as of a change of the mirror (events, poll, dm event).  Not on meta_wq:
 * it waits for dev->lock, which a mode change holds while it waits for
 * writes that the write work releases.
 */
static void meta_fail_work(struct work_struct *work)
{
	struct sxm_meta *m = container_of(work, struct sxm_meta, fail_work);
	struct sxm_dev *dev = m->dev;

	mutex_lock(&dev->lock);
	if (dev->track_id)
		dev->track_id = get_random_u64() | 1;
	mutex_unlock(&dev->lock);
	sxm_ring_notify(dev);
}

static const char *io_reason(int r)
{
	return r == -ETIMEDOUT ? "timeout" : r == -ENOMEM ? "no_memory" :
	       r == -ENODEV ? "detached" : "write_error";
}

/* ----------------------------------------------------------------------
 * Write path
 * ----------------------------------------------------------------------
 */

/*
 * From the target's map, for a write in track or mirror mode: false if it
 * may go on now; true if it is ours (map returns DM_MAPIO_SUBMITTED): it
 * waits for its bits, or, REQ_NOWAIT, was ended with "would block".
 */
bool sxm_meta_map(struct sxm_dev *dev, struct bio *bio, struct sxm_io *io)
{
	struct sxm_meta *m = dev->meta;
	unsigned long flags;
	u64 first, last;

	if (!m || !io->nr_sectors || atomic_read(&m->state) == META_FAILED)
		return false;
	io_regions(m, io, &first, &last);
	range_mark(m->touched, first, last);
	/* touched before durable; pairs with clean_words()'s (file top). */
	smp_mb();
	if (range_durable(m, first, last))
		return false;
	if (bio->bi_opf & REQ_NOWAIT) {
		bio_wouldblock_error(bio);
		return true;
	}
	spin_lock_irqsave(&m->wlock, flags);
	if (atomic_read(&m->state) == META_FAILED) {
		/* The write work sends on what waits already. */
		spin_unlock_irqrestore(&m->wlock, flags);
		return false;
	}
	bio_list_add(&m->waiting, bio);
	spin_unlock_irqrestore(&m->wlock, flags);
	queue_work(meta_wq, &m->write_work);
	return true;
}

/*
 * One batch: the regions of every write in @batch on disk by one
 * deadline (lock held).  Never takes dev->lock: a mode change holds it
 * while it waits for writes to drain, and these are such writes.
 */
static int meta_write_batch(struct sxm_meta *m, struct bio_list *batch)
{
	unsigned long deadline = meta_deadline();
	u64 first, last, lo = U64_MAX, hi = 0;
	struct bio *bio;
	int r;

	bio_list_for_each(bio, batch) {
		io_regions(m, dm_per_bio_data(bio, sizeof(struct sxm_io)),
			   &first, &last);
		img_set(m, first, last);
		lo = min(lo, first);
		hi = max(hi, last);
	}
	r = meta_write_blocks(m, m->blk_batch, lo / SXM_META_REGIONS_PER_BLOCK,
			      hi / SXM_META_REGIONS_PER_BLOCK, deadline);
	if (r)
		return r;
	bio_list_for_each(bio, batch) {
		io_regions(m, dm_per_bio_data(bio, sizeof(struct sxm_io)),
			   &first, &last);
		durable_from_img(m, first, last);
	}
	return 0;
}

static void meta_write_work(struct work_struct *work)
{
	struct sxm_meta *m = container_of(work, struct sxm_meta, write_work);
	struct bio_list batch;
	struct bio *bio;

	for (;;) {
		if (atomic_read(&m->state) == META_FAILING)
			meta_finish_fail(m);
		spin_lock_irq(&m->wlock);
		batch = m->waiting;
		bio_list_init(&m->waiting);
		spin_unlock_irq(&m->wlock);
		if (bio_list_empty(&batch))
			return;

		mutex_lock(&m->lock);
		if (atomic_read(&m->state) == META_ACTIVE) {
			int r = meta_write_batch(m, &batch);

			if (r)
				meta_fail(m, io_reason(r));
		}
		/*
		 * Their bits are not on disk (this batch failed, or the map
		 * failed since the top of the loop): "no track" is tried
		 * before they go on, or a power cut would find the old
		 * track without them.
		 */
		if (atomic_read(&m->state) != META_ACTIVE)
			meta_invalidate(m);
		mutex_unlock(&m->lock);
		meta_set_failed(m);
		while ((bio = bio_list_pop(&batch)))
			sxm_map_continue(bio);
	}
}

/*
 * Map blocks @k0..@k1 of the helper's marks (lock held): what is pending
 * (dirty, or harvested and not yet acknowledged) and not durable is ORed
 * into img, the blocks that need it are written by one deadline (those
 * it changed, and those still to write anyway: a block read as all ones
 * at load holds its bits in img, not on disk), and their bits made
 * durable.  0, or the write's -errno.
 */
static int persist_chunk(struct sxm_meta *m, u64 k0, u64 k1)
{
	struct sxm_dirty *d = &m->dev->dirty;
	size_t w, w0 = k0 * META_LONGS_PER_BLOCK;
	size_t w1 = min_t(size_t, (k1 + 1) * META_LONGS_PER_BLOCK, d->nr_words);
	bool any = false;
	int r;

	lockdep_assert_held(&m->lock);
	if (w0 >= w1)
		return 0;
	mutex_lock(&d->harvest_lock);
	for (w = w0; w < w1; w++) {
		unsigned long need = sxm_dirty_pending_word(d, w) &
				     ~atomic_long_read(&m->durable[w]);

		if (need) {
			img_or(m, w, need);
			any = true;
		}
	}
	mutex_unlock(&d->harvest_lock);
	if (!any)
		return 0;
	r = meta_write_blocks(m, m->blk_batch, k0, k1, meta_deadline());
	if (!r)
		durable_from_img(m, w0 * BITS_PER_LONG,
				 w1 * BITS_PER_LONG - 1);
	return r;
}

/*
 * The helper marked regions dirty (SXM_IOC_MARK_DIRTY: regions it found
 * differing on the sink): those not on the device yet are written before
 * the call returns, as a write's would be, so that no power cut loses
 * them.  Every region written since the map was last acknowledged is
 * durable already (or its write waits for the write work, which does the
 * same): what is pending and not durable is what the helper marked.
 * META_BATCH blocks at a time, each by its own deadline, the lock dropped
 * in between, as the cleaner does: a guest write waits for a chunk or two
 * of ours at most.  Also while the device is suspended (after its clean
 * superblock): the map only grows.
 *
 * A failure turns the map off, never the caller's error; but as for a
 * write whose bit failed, the call returns only once "no track" is on the
 * device (if it can be written), since what was marked may not be.  An
 * already failed map: nothing (as for a write).  -ENODEV once the last
 * table let the device go (its clean superblock may say the track without
 * these marks: the caller must know); -EINTR if the caller was killed
 * (its call has no answer to give).  Process context, no lock held;
 * meta_fail() under the lock, before detach can let the device go.
 */
int sxm_meta_persist_marks(struct sxm_dev *dev)
{
	struct sxm_meta *m = dev->meta;
	u64 k, last;
	int r;

	if (!m || atomic_read(&m->state) == META_FAILED)
		return 0;
	for (k = 0; k < m->nr_blocks; k = last + 1) {
		last = min(k + META_BATCH, m->nr_blocks) - 1;
		if (mutex_lock_killable(&m->lock))
			return -EINTR;
		if (!m->bdev) {
			mutex_unlock(&m->lock);
			return -ENODEV;
		}
		if (atomic_read(&m->state) == META_ACTIVE) {
			r = persist_chunk(m, k, last);
			if (r)
				meta_fail(m, io_reason(r));
		}
		if (atomic_read(&m->state) != META_ACTIVE) {
			meta_invalidate(m);
			mutex_unlock(&m->lock);
			return 0;
		}
		mutex_unlock(&m->lock);
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return 0;
}

/* ----------------------------------------------------------------------
 * The cleaner
 * ----------------------------------------------------------------------
 */

/*
 * Candidates in words [@w, @w + @n): clear them in durable, then look
 * again (step 3 at the top); returns the bits cleared from img.
 */
static u64 clean_words(struct sxm_meta *m, size_t w, size_t n,
		       unsigned long *cand)
{
	struct sxm_dev *dev = m->dev;
	struct sxm_dirty *d = &dev->dirty;
	u64 cleared = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		size_t x = w + i;
		unsigned long keep;

		unsigned long busy;

		cand[i] = 0;
		if (!m->img[x] || x >= d->nr_words)
			continue;
		busy = sxm_dirty_pending_word(d, x) |
		       sxm_ring_unflushed_word(dev, x);
		keep = atomic_long_read(&m->touched[x]) | busy;
		/* Kept only as written lately: the next round may clear it. */
		if (m->img[x] & keep & ~busy)
			m->kept_touched = true;
		cand[i] = m->img[x] & ~keep;
		if (cand[i])
			atomic_long_andnot(cand[i], &m->durable[x]);
	}
	/* durable before touched; pairs with sxm_meta_map()'s (file top). */
	smp_mb();
	for (i = 0; i < n; i++) {
		size_t x = w + i;
		unsigned long again;

		if (!cand[i])
			continue;
		again = cand[i] & (atomic_long_read(&m->touched[x]) |
				   sxm_dirty_pending_word(d, x) |
				   sxm_ring_unflushed_word(dev, x));
		if (again) {
			/* Still on disk: give them back. */
			atomic_long_or(again, &m->durable[x]);
			cand[i] &= ~again;
		}
		if (!cand[i])
			continue;
		m->img[x] &= ~cand[i];
		cleared += hweight_long(cand[i]);
		__set_bit(x / META_LONGS_PER_BLOCK, m->blk_dirty);
	}
	return cleared;
}

/*
 * Step 3, META_BATCH map blocks' words at a time with dev->lock, lock and
 * harvest_lock held, all three let go in between (a guest write waits
 * for one chunk of ours at most, as in step 4).  Each word's look is
 * whole by itself (file top): a harvest, an acknowledgment, a flush, a
 * mark or a ring going away between two chunks is one that came before
 * the round looked at the later words.  Stops early for a suspend or a
 * failure (the words not looked at keep their bits).
 */
static void clean_map(struct sxm_meta *m)
{
	struct sxm_dev *dev = m->dev;
	unsigned long cand[64];
	size_t w = 0, end, n;
	u64 cleared;

	m->kept_touched = false;
	while (w < m->nr_longs && !READ_ONCE(m->stop) &&
	       atomic_read(&m->state) == META_ACTIVE) {
		end = min_t(size_t, m->nr_longs,
			    w + META_BATCH * META_LONGS_PER_BLOCK);
		cleared = 0;
		mutex_lock(&dev->lock);
		mutex_lock(&m->lock);
		mutex_lock(&dev->dirty.harvest_lock);
		for (; w < end; w += n) {
			n = min_t(size_t, end - w, ARRAY_SIZE(cand));
			cleared += clean_words(m, w, n, cand);
		}
		m->img_bits -= cleared;
		mutex_unlock(&dev->dirty.harvest_lock);
		mutex_unlock(&m->lock);
		mutex_unlock(&dev->lock);
		cond_resched();
	}
}

/*
 * Step 4: write what was cleared, META_BATCH blocks at a time, letting
 * the write work in between (guest writes never wait for more than one
 * chunk of ours); stops early for a suspend (the blocks left hold more
 * bits than img: the safe way).  Then zero touched.  A failure turns the
 * map off under the lock, "no track" tried before the lock goes, as a
 * mark's does: no write of the guest's gets by without its bits while
 * the old track is on disk.
 */
static int clean_write(struct sxm_meta *m)
{
	u64 k = 0;
	size_t w;
	int r = 0;

	while (k < m->nr_blocks && !READ_ONCE(m->stop) &&
	       atomic_read(&m->state) == META_ACTIVE) {
		mutex_lock(&m->lock);
		r = meta_write_chunk(m, m->blk_dirty, &k, m->nr_blocks - 1,
				     meta_deadline());
		if (r < 0) {
			meta_fail(m, io_reason(r));
			meta_invalidate(m);
		}
		mutex_unlock(&m->lock);
		if (r < 0)
			return r;
		cond_resched();
	}
	for (w = 0; w < m->nr_longs; w++) {
		if (atomic_long_read(&m->touched[w]))
			atomic_long_set(&m->touched[w], 0);
		if (!((w + 1) % 4096))
			cond_resched();
	}
	return 0;
}

static void meta_clean_work(struct work_struct *work)
{
	struct sxm_meta *m = container_of(to_delayed_work(work),
					  struct sxm_meta, clean_work);
	struct sxm_dev *dev = m->dev;
	struct block_device *source = NULL;
	u64 hint;

	if (atomic_read(&m->state) != META_ACTIVE || READ_ONCE(m->stop))
		return;
	/* Nothing on disk, or nothing copied since the last round. */
	hint = atomic64_read(&dev->dirty.copied);
	if (!READ_ONCE(m->img_bits) || hint == m->clean_hint)
		goto again;
	/* 1. */
	if (sxm_dirty_epoch_drain(&dev->dirty, &m->stop,
				  msecs_to_jiffies(1000)) || READ_ONCE(m->stop))
		goto again;
	/* 2. The live table stays until the presuspend, which stops us. */
	mutex_lock(&dev->lock);
	if (dev->live)
		source = dev->live->source->bdev;
	mutex_unlock(&dev->lock);
	if (!source || blkdev_issue_flush(source))
		goto again;
	/* 3. */
	clean_map(m);
	/* 4.  A failure turned the map off: no more rounds. */
	if (clean_write(m))
		return;
	/* Bits kept as written lately get a round of their own. */
	if (!READ_ONCE(m->stop) && !m->kept_touched)
		m->clean_hint = hint;
again:
	if (!READ_ONCE(m->stop))
		queue_delayed_work(system_long_wq, &m->clean_work,
				   msecs_to_jiffies(max(meta_clean_ms, 100U)));
}

/* ----------------------------------------------------------------------
 * Table load: read, check, bind
 * ----------------------------------------------------------------------
 */

static bool all_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

/*
 * Read every map block into img (META_BATCH at a time).  A block that
 * cannot be read (a bad sector) is bad: all ones, as a corrupt one.
 */
static int meta_read_map(struct sxm_meta *m)
{
	unsigned long deadline;
	unsigned int n, i;
	u64 k;
	int r = 0;

	for (k = 0; k < m->nr_blocks && !r; k += n) {
		n = min_t(u64, META_BATCH, m->nr_blocks - k);
		for (i = 0; i < n; i++) {
			struct meta_io *mio = mio_get(m, i, 1 + k + i,
						      REQ_OP_READ | REQ_META |
						      REQ_SYNC);

			if (!mio) {
				n = i;
				r = -ENOMEM;
				break;
			}
			mio_submit(mio);
		}
		deadline = meta_deadline();
		for (i = 0; i < n; i++) {
			int e = mio_wait_until(m, i, deadline);
			struct meta_io *mio = m->slot[i];

			if (e == -EIO)
				memset(page_address(mio->page), 0,
				       SXM_META_BLOCK_SIZE);
			else if (e && !r)
				r = e;
			/* A bad block is rewritten before its bits count. */
			if ((!e || e == -EIO) &&
			    !map_decode(m, k + i, page_address(mio->page))) {
				m->bad_blocks++;
				__set_bit(k + i, m->blk_dirty);
			}
		}
		cond_resched();
	}
	return r;
}

/* A new binding: an empty map of this target, no track. */
static int meta_bind(struct sxm_meta *m, struct dm_target *ti)
{
	struct sxm_dev *dev = m->dev;
	u64 seq = m->sb.seq, k;
	int r;

	memset(&m->sb, 0, sizeof(m->sb));
	m->sb.seq = seq;
	m->sb.flags = SXM_META_BOUND;
	m->sb.meta_id = get_random_u64() | 1;
	m->sb.region_sectors = 1ULL << dev->dirty.region_shift;
	m->sb.nr_regions = m->nr_regions;
	m->sb.len_sectors = dev->len;
	m->sb.bound_time = ktime_get_real_seconds();
	memcpy(m->sb.source_id, m->source_id, sizeof(m->sb.source_id));
	bitmap_zero(m->img, m->nr_longs * BITS_PER_LONG);
	m->img_bits = 0;
	bitmap_fill(m->blk_dirty, m->nr_blocks);
	/* The map first: a power cut before the superblock leaves it blank. */
	mutex_lock(&m->lock);
	r = 0;
	for (k = 0; k < m->nr_blocks && r >= 0; cond_resched())
		r = meta_write_chunk(m, m->blk_dirty, &k, m->nr_blocks - 1,
				     meta_deadline());
	if (r >= 0)
		r = meta_write_sb(m);
	mutex_unlock(&m->lock);
	if (r)
		ti->error = "Cannot write the metadata device";
	return r;
}

/*
 * Check superblock @sb (cpu order; its block is @raw) against the target:
 * 0, or the error with ti->error set.  @reset lets anything but a block
 * that is not sxm metadata be bound anew.
 */
static int meta_check_sb(struct sxm_meta *m, struct dm_target *ti,
			 const struct sxm_meta_sb *raw, bool reset,
			 bool *bind)
{
	struct sxm_dev *dev = m->dev;
	char *why = NULL;

	*bind = false;
	if (all_zero(raw, SXM_META_BLOCK_SIZE)) {
		*bind = true;
		return 0;
	}
	if (le32_to_cpu(raw->magic) != SXM_META_SB_MAGIC) {
		ti->error = "Metadata device holds no sxm metadata (sxm-ctl metadata format)";
		return -EINVAL;
	}
	if (le32_to_cpu(raw->csum) != sb_csum(raw))
		why = "Metadata superblock is corrupt (bad checksum); see metadata_reset";
	else if (le32_to_cpu(raw->version) != SXM_META_VERSION)
		why = "Metadata device has a format version this target does not know";
	else if (le32_to_cpu(raw->flags) & ~SXM_META_FLAGS ||
		 !all_zero(raw->reserved, sizeof(raw->reserved)))
		why = "Metadata superblock has flags or fields this target does not know";
	else if (!(le32_to_cpu(raw->flags) & SXM_META_BOUND))
		*bind = true;
	else if (le64_to_cpu(raw->region_sectors) !=
		 1ULL << dev->dirty.region_shift)
		why = "Metadata device is of another region size";
	else if (le64_to_cpu(raw->len_sectors) != dev->len ||
		 le64_to_cpu(raw->nr_regions) != m->nr_regions)
		why = "Metadata device is of a target of another length";
	else if (strncmp(raw->source_id, m->source_id,
			 SXM_META_SOURCE_ID_LEN))
		why = "Metadata device belongs to another source (source_id)";
	if (why && !reset) {
		ti->error = why;
		return -EINVAL;
	}
	if (why || reset)
		*bind = true;
	return 0;
}

static void sb_decode(struct meta_sb *sb, const struct sxm_meta_sb *raw)
{
	memset(sb, 0, sizeof(*sb));
	sb->flags = le32_to_cpu(raw->flags);
	sb->seq = le64_to_cpu(raw->seq);
	sb->meta_id = le64_to_cpu(raw->meta_id);
	sb->region_sectors = le64_to_cpu(raw->region_sectors);
	sb->nr_regions = le64_to_cpu(raw->nr_regions);
	sb->len_sectors = le64_to_cpu(raw->len_sectors);
	sb->track_id = le64_to_cpu(raw->track_id);
	sb->clean_time = le64_to_cpu(raw->clean_time);
	sb->bound_time = le64_to_cpu(raw->bound_time);
	memcpy(sb->source_id, raw->source_id, sizeof(sb->source_id));
	sb->source_id[SXM_META_SOURCE_ID_LEN - 1] = 0;
}

/* Read and check the device, bind it if blank (or @reset). */
static int meta_open(struct sxm_meta *m, struct dm_target *ti, bool reset)
{
	struct sxm_meta_sb *raw;
	bool bind;
	size_t w;
	int r;

	raw = kmalloc(SXM_META_BLOCK_SIZE, GFP_KERNEL);
	if (!raw) {
		ti->error = "Cannot allocate metadata buffer";
		return -ENOMEM;
	}
	r = meta_read(m, 0, raw);
	if (r) {
		ti->error = "Cannot read the metadata superblock";
		goto out;
	}
	r = meta_check_sb(m, ti, raw, reset, &bind);
	if (r)
		goto out;
	if (bind) {
		m->sb.seq = le32_to_cpu(raw->magic) == SXM_META_SB_MAGIC ?
			    le64_to_cpu(raw->seq) : 0;
		m->loaded = reset ? "reset" : "new";
		r = meta_bind(m, ti);
		goto out;
	}
	sb_decode(&m->sb, raw);
	r = meta_read_map(m);
	if (r) {
		ti->error = "Cannot read the metadata map";
		goto out;
	}
	m->img_bits = bitmap_weight(m->img, m->nr_longs * BITS_PER_LONG);
	for (w = 0; w < m->nr_longs; w++)
		if (!test_bit(w / META_LONGS_PER_BLOCK, m->blk_dirty))
			atomic_long_set(&m->durable[w], m->img[w]);
	m->loaded = m->sb.flags & SXM_META_CLEAN ? "clean" : "unclean";
	m->loaded_clean_time = m->sb.clean_time;
	m->saved_track = m->sb.track_id;
	if (m->saved_track && meta_tainted(m->devt)) {
		DMWARN("%u:%u: metadata %u:%u: a late write landed there: its track is not trusted",
		       MAJOR(m->dev->devt), MINOR(m->dev->devt),
		       MAJOR(m->devt), MINOR(m->devt));
		m->saved_track = 0;
	}
	if (m->bad_blocks)
		DMWARN("%u:%u: metadata %u:%u: %llu bad map blocks, their regions count as written",
		       MAJOR(m->dev->devt), MINOR(m->dev->devt),
		       MAJOR(m->devt), MINOR(m->devt),
		       (unsigned long long)m->bad_blocks);
	/* A track's map: every region in it is copied again. */
	if (m->saved_track)
		sxm_dirty_or_bits(&m->dev->dirty, m->img);
out:
	kfree(raw);
	return r;
}

static void meta_free(struct sxm_meta *m)
{
	unsigned int i;

	for (i = 0; i < META_BATCH; i++)
		mio_free(m->slot[i]);
	kvfree(m->img);
	kvfree(m->durable);
	kvfree(m->touched);
	bitmap_free(m->blk_dirty);
	bitmap_free(m->blk_batch);
	kfree(m);
}

/*
 * A new device's first table names metadata device @bdev (the caller
 * checked it is no other device's): read it, check it against the target
 * and bind it if it is blank.  dev->meta is set on success.
 */
int sxm_meta_create(struct sxm_dev *dev, struct dm_target *ti,
		    struct block_device *bdev, const char *source_id,
		    bool reset, bool passthrough)
{
	struct sxm_meta *m;
	unsigned int i;
	u64 need;
	int r;

	if (mio_orphans_on(bdev->bd_dev)) {
		ti->error = "Metadata device still has a write in flight from an earlier table";
		return -EBUSY;
	}
	if (bdev_logical_block_size(bdev) > SXM_META_BLOCK_SIZE) {
		ti->error = "Metadata device's logical block size is over 4096 bytes";
		return -EINVAL;
	}
	need = SXM_META_BYTES(dev->dirty.nr_regions);
	if (bdev_nr_bytes(bdev) < need) {
		DMERR("%pg: metadata device too small: %llu bytes, %llu needed",
		      bdev, (unsigned long long)bdev_nr_bytes(bdev),
		      (unsigned long long)need);
		ti->error = "Metadata device is too small (sxm-ctl metadata size tells how big)";
		return -EINVAL;
	}

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		goto nomem;
	m->dev = dev;
	m->bdev = bdev;
	m->devt = bdev->bd_dev;
	strscpy(m->source_id, source_id, sizeof(m->source_id));
	m->nr_regions = dev->dirty.nr_regions;
	m->nr_blocks = SXM_META_MAP_BLOCKS(m->nr_regions);
	m->nr_longs = m->nr_blocks * META_LONGS_PER_BLOCK;
	mutex_init(&m->lock);
	spin_lock_init(&m->wlock);
	bio_list_init(&m->waiting);
	INIT_WORK(&m->write_work, meta_write_work);
	INIT_WORK(&m->fail_work, meta_fail_work);
	m->clean_hint = U64_MAX;
	INIT_DELAYED_WORK(&m->clean_work, meta_clean_work);
	INIT_DELAYED_WORK(&m->inval_work, meta_inval_work);
	atomic_set(&m->state, META_ACTIVE);
	atomic64_set(&m->writes, 0);
	atomic64_set(&m->write_ns, 0);
	m->stop = true;
	m->img = kvcalloc(m->nr_longs, sizeof(long), GFP_KERNEL);
	m->durable = kvcalloc(m->nr_longs, sizeof(long), GFP_KERNEL);
	m->touched = kvcalloc(m->nr_longs, sizeof(long), GFP_KERNEL);
	m->blk_dirty = bitmap_zalloc(m->nr_blocks, GFP_KERNEL);
	m->blk_batch = bitmap_zalloc(m->nr_blocks, GFP_KERNEL);
	if (!m->img || !m->durable || !m->touched || !m->blk_dirty ||
	    !m->blk_batch)
		goto nomem;
	for (i = 0; i < META_BATCH; i++) {
		m->slot[i] = mio_alloc(GFP_KERNEL);
		if (!m->slot[i])
			goto nomem;
	}

	r = meta_open(m, ti, reset);
	/* A passthrough table ends the track before its first write. */
	if (!r && passthrough && m->saved_track) {
		m->saved_track = 0;
		m->sb.track_id = 0;
		m->sb.flags = SXM_META_BOUND;
		mutex_lock(&m->lock);
		r = meta_write_sb(m);
		mutex_unlock(&m->lock);
		if (r)
			ti->error = "Cannot end the track on the metadata device";
	}
	if (r) {
		meta_free(m);
		return r;
	}
	dev->meta = m;
	return 0;
nomem:
	if (m)
		meta_free(m);
	ti->error = "Cannot allocate the persistent map";
	return -ENOMEM;
}

/* A reload names metadata device @bdev and @source_id: the same ones? */
bool sxm_meta_same(struct sxm_dev *dev, struct block_device *bdev,
		   const char *source_id)
{
	struct sxm_meta *m = dev->meta;

	return m && m->devt == bdev->bd_dev &&
	       !strncmp(m->source_id, source_id, sizeof(m->source_id));
}

/* ----------------------------------------------------------------------
 * Track, suspend, resume, removal
 * ----------------------------------------------------------------------
 */

/* The track found on the device at load, once (dev->lock held). */
u64 sxm_meta_take_track(struct sxm_dev *dev)
{
	struct sxm_meta *m = dev->meta;
	u64 t;

	lockdep_assert_held(&dev->lock);
	if (!m || atomic_read(&m->state) != META_ACTIVE)
		return 0;
	t = m->saved_track;
	m->saved_track = 0;
	return t;
}

/*
 * Write the superblock with @flags and dev->track_id (dev->lock held); a
 * failed map's says "no track" instead, if it can.  0 if the device now
 * says that track (or "no track"), -EIO if it may still say an older one.
 */
static int meta_sync_sb(struct sxm_dev *dev, u32 flags)
{
	struct sxm_meta *m = dev->meta;
	int r;

	lockdep_assert_held(&dev->lock);
	if (!m)
		return 0;
	mutex_lock(&m->lock);
	if (atomic_read(&m->state) == META_ACTIVE) {
		m->sb.track_id = dev->track_id;
		m->sb.flags = SXM_META_BOUND | flags;
		if (flags & SXM_META_CLEAN)
			m->sb.clean_time = ktime_get_real_seconds();
		r = meta_write_sb(m);
		if (r)
			meta_fail(m, io_reason(r));
	}
	if (atomic_read(&m->state) != META_ACTIVE)
		meta_invalidate(m);
	r = atomic_read(&m->state) == META_ACTIVE || m->invalidated ? 0 : -EIO;
	mutex_unlock(&m->lock);
	return r;
}

/*
 * dev->track_id changed (tracking started, or is about to stop: then it
 * is 0 and this is done before any write goes untracked; -EIO if the
 * device may still say the old track, and then tracking must go on).
 */
int sxm_meta_set_track(struct sxm_dev *dev)
{
	return meta_sync_sb(dev, 0);
}

static void meta_start_cleaner(struct sxm_meta *m)
{
	WRITE_ONCE(m->stop, false);
	queue_delayed_work(system_long_wq, &m->clean_work,
			   msecs_to_jiffies(max(meta_clean_ms, 100U)));
}

/* The resume (dev->lock held, track_id decided): dirty from now on. */
void sxm_meta_resume(struct sxm_dev *dev)
{
	meta_sync_sb(dev, 0);
	if (dev->meta && atomic_read(&dev->meta->state) == META_ACTIVE)
		meta_start_cleaner(dev->meta);
}

/* Before the presuspend takes dev->lock: stop the cleaner. */
void sxm_meta_presuspend(struct sxm_dev *dev)
{
	struct sxm_meta *m = dev->meta;

	if (!m)
		return;
	WRITE_ONCE(m->stop, true);
	wake_up_all(&dev->dirty.drain_wait);
	cancel_delayed_work_sync(&m->clean_work);
}

void sxm_meta_presuspend_undo(struct sxm_dev *dev)
{
	if (dev->meta && atomic_read(&dev->meta->state) == META_ACTIVE)
		meta_start_cleaner(dev->meta);
}

/* Suspended, nothing in flight (dev->lock held): the map is clean. */
void sxm_meta_postsuspend(struct sxm_dev *dev)
{
	meta_sync_sb(dev, SXM_META_CLEAN);
}

/* The last table let go (no lock held): no more metadata I/O. */
void sxm_meta_detach(struct sxm_dev *dev)
{
	struct sxm_meta *m = dev->meta;

	if (!m)
		return;
	WRITE_ONCE(m->stop, true);
	wake_up_all(&dev->dirty.drain_wait);
	cancel_delayed_work_sync(&m->clean_work);
	flush_work(&m->write_work);
	flush_work(&m->fail_work);
	mutex_lock(&m->lock);
	if (atomic_read(&m->state) != META_ACTIVE)
		meta_invalidate(m);
	m->bdev = NULL;
	mutex_unlock(&m->lock);
	/*
	 * A helper's mark that failed under the lock before us queued the
	 * write work (meta_fail()); none can from now on (no bdev), nor
	 * can inval_work be queued again (meta_invalidate() needs bdev).
	 */
	flush_work(&m->write_work);
	flush_work(&m->fail_work);
	cancel_delayed_work_sync(&m->inval_work);
}

void sxm_meta_free(struct sxm_dev *dev)
{
	if (dev->meta) {
		/* sxm_meta_detach() flushed them, and none can come since. */
		WARN_ON_ONCE(work_pending(&dev->meta->write_work) ||
			     work_pending(&dev->meta->fail_work) ||
			     delayed_work_pending(&dev->meta->inval_work));
		meta_free(dev->meta);
	}
	dev->meta = NULL;
}

/* ----------------------------------------------------------------------
 * Status
 * ----------------------------------------------------------------------
 */

void sxm_meta_info(struct sxm_dev *dev, struct sxm_meta_info *i)
{
	struct sxm_meta *m = dev->meta;
	u64 n;

	memset(i, 0, sizeof(*i));
	if (!m)
		return;
	i->present = true;
	i->devt = m->devt;
	i->failed = atomic_read(&m->state) != META_ACTIVE;
	i->reason = READ_ONCE(m->reason);
	i->bits = READ_ONCE(m->img_bits);
	i->writes = atomic64_read(&m->writes);
	n = atomic64_read(&m->write_ns);
	i->write_avg_us = i->writes ? div64_u64(n, i->writes) / 1000 : 0;
	i->loaded = m->loaded;
	i->clean_time = m->loaded_clean_time;
	i->bad_blocks = m->bad_blocks;
	i->source_id = m->source_id;
}

/* ----------------------------------------------------------------------
 * Module
 * ----------------------------------------------------------------------
 */

int sxm_meta_init(void)
{
	meta_wq = alloc_workqueue("dm-sxm-meta", WQ_MEM_RECLAIM | WQ_HIGHPRI,
				  0);
	return meta_wq ? 0 : -ENOMEM;
}

/* No metadata I/O is left: an orphan holds a reference to the module. */
void sxm_meta_exit(void)
{
	destroy_workqueue(meta_wq);
}
