// SPDX-License-Identifier: GPL-2.0
/*
 * dm-sxm: the dirty map (changed-region tracking).
 *
 * One bit per region, in two maps: generations.  Every write, discard and
 * write-zeroes is accounted in the current generation (its in-flight count)
 * before it is submitted, and, while tracking, marks its regions in that
 * generation's map.  A harvest switches new writes to the other generation,
 * waits until the old one has no write in flight, and only then hands the
 * old map out.  So:
 *
 *  - a write is in exactly one harvested map: the one of the generation it
 *    was accounted in;
 *  - when a harvest returns, every write in the map it returned has
 *    completed on the source, so a copy of those regions made from now on
 *    reads the new data (a region written but not yet on the source is never
 *    copied and forgotten).
 *
 * A harvest moves the old generation into a third map, the held map, and
 * hands out all of that: regions leave it only when the helper acknowledges
 * them (their data is on the sink).  So a helper that dies mid-copy loses
 * nothing; the next harvest returns what it had not confirmed.
 *
 * Hot path: sxm_dirty_start_write() takes a spinlock only to read the
 * generation and count the write, then marks with atomic word ORs (none
 * when the bits are set already).  sxm_dirty_end_write() is one atomic
 * decrement, and a wake-up only if a harvest is waiting.
 *
 * Locks: harvest_lock serialises generation switches and every change the
 * helper makes to the maps; lock (a spinlock) covers only "read cur and
 * count the write" against the switch.
 */
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "dm-sxm.h"

/* Bytes of the map copied to or from userspace at a time. */
#define SXM_CHUNK_WORDS	(PAGE_SIZE / sizeof(__u64))

int sxm_dirty_init(struct sxm_dirty *d, sector_t len, unsigned int shift)
{
	int i;

	d->region_shift = shift;
	d->nr_regions = DIV_ROUND_UP_ULL((u64)len, 1ULL << shift);
	d->nr_words = BITS_TO_LONGS(d->nr_regions);
	spin_lock_init(&d->lock);
	init_waitqueue_head(&d->drain_wait);
	mutex_init(&d->harvest_lock);
	d->cur = 0;
	d->harvests = 0;
	atomic64_set(&d->nr_held, 0);
	d->held = kvcalloc(d->nr_words, sizeof(atomic_long_t), GFP_KERNEL);
	if (!d->held)
		return -ENOMEM;
	for (i = 0; i < 2; i++) {
		atomic_set(&d->inflight[i], 0);
		atomic64_set(&d->nr_dirty[i], 0);
		d->map[i] = kvcalloc(d->nr_words, sizeof(atomic_long_t),
				     GFP_KERNEL);
		if (!d->map[i]) {
			sxm_dirty_exit(d);
			return -ENOMEM;
		}
	}
	return 0;
}

void sxm_dirty_exit(struct sxm_dirty *d)
{
	kvfree(d->map[0]);
	kvfree(d->map[1]);
	kvfree(d->held);
	d->map[0] = NULL;
	d->map[1] = NULL;
	d->held = NULL;
}

/* ----------------------------------------------------------------------
 * Bit operations on one map
 * ----------------------------------------------------------------------
 */

/* Mark regions first..last (inclusive); returns how many were newly set. */
static u64 map_mark_range(atomic_long_t *map, u64 first, u64 last)
{
	u64 w, lw = last / BITS_PER_LONG, fw = first / BITS_PER_LONG;
	u64 newly = 0;

	for (w = fw; w <= lw; w++) {
		unsigned long mask = ~0UL, old;

		if (w == fw)
			mask &= BITMAP_FIRST_WORD_MASK(first);
		if (w == lw)
			mask &= BITMAP_LAST_WORD_MASK(last + 1);
		/* Already marked: no store, no cache line bounced. */
		if ((atomic_long_read(&map[w]) & mask) == mask)
			continue;
		old = atomic_long_fetch_or(mask, &map[w]);
		newly += hweight_long(mask & ~old);
	}
	return newly;
}

/* Move every bit of map @src (counted in @src_n) into @dst (@dst_n). */
static void move_bits(struct sxm_dirty *d, atomic_long_t *src,
		      atomic64_t *src_n, atomic_long_t *dst, atomic64_t *dst_n)
{
	u64 newly = 0;
	size_t w;

	for (w = 0; w < d->nr_words; w++) {
		unsigned long v = atomic_long_xchg(&src[w], 0);

		if (v)
			newly += hweight_long(v & ~atomic_long_fetch_or(v,
								&dst[w]));
	}
	atomic64_set(src_n, 0);
	atomic64_add(newly, dst_n);
}

static void move_gen(struct sxm_dirty *d, unsigned int src, unsigned int dst)
{
	move_bits(d, d->map[src], &d->nr_dirty[src], d->map[dst],
		  &d->nr_dirty[dst]);
}

/* Word @i of the map as the ABI has it: 64 regions, little-endian. */
static u64 map_get_u64(struct sxm_dirty *d, atomic_long_t *map, size_t i)
{
#if BITS_PER_LONG == 64
	return atomic_long_read(&map[i]);
#else
	u64 v = (u32)atomic_long_read(&map[2 * i]);

	if (2 * i + 1 < d->nr_words)
		v |= (u64)(u32)atomic_long_read(&map[2 * i + 1]) << 32;
	return v;
#endif
}

/* OR (or with @clear, clear) long @w of @map with @v: the bits it changed. */
static u64 map_apply_long(atomic_long_t *map, size_t w, unsigned long v,
			  bool clear)
{
	if (!v)
		return 0;
	if (clear)
		return hweight_long(v & atomic_long_fetch_andnot(v, &map[w]));
	return hweight_long(v & ~atomic_long_fetch_or(v, &map[w]));
}

/* The same for word @i of the map as the ABI has it. */
static u64 map_apply_u64(struct sxm_dirty *d, atomic_long_t *map, size_t i,
			 u64 v, bool clear)
{
#if BITS_PER_LONG == 64
	return map_apply_long(map, i, v, clear);
#else
	u64 n = map_apply_long(map, 2 * i, (u32)v, clear);

	if (2 * i + 1 < d->nr_words)
		n += map_apply_long(map, 2 * i + 1, v >> 32, clear);
	return n;
#endif
}

/* ----------------------------------------------------------------------
 * Write path
 * ----------------------------------------------------------------------
 */

/* Mark regions in generation @gen (a write accounted there, still open). */
void sxm_dirty_mark_gen(struct sxm_dirty *d, unsigned int gen,
			sector_t sector, sector_t nr_sectors)
{
	u64 newly = map_mark_range(d->map[gen], sector >> d->region_shift,
				   (sector + nr_sectors - 1) >> d->region_shift);

	if (newly)
		atomic64_add(newly, &d->nr_dirty[gen]);
}

unsigned int sxm_dirty_start_write(struct sxm_dirty *d, bool mark,
				   sector_t sector, unsigned int nr_sectors)
{
	unsigned long flags;
	unsigned int gen;

	spin_lock_irqsave(&d->lock, flags);
	gen = d->cur;
	atomic_inc(&d->inflight[gen]);
	spin_unlock_irqrestore(&d->lock, flags);

	if (mark && nr_sectors)
		sxm_dirty_mark_gen(d, gen, sector, nr_sectors);
	return gen;
}

void sxm_dirty_end_write(struct sxm_dirty *d, unsigned int gen)
{
	if (atomic_dec_and_test(&d->inflight[gen]) &&
	    wq_has_sleeper(&d->drain_wait))
		wake_up_all(&d->drain_wait);
}

/* ----------------------------------------------------------------------
 * Generation switch
 * ----------------------------------------------------------------------
 */

/*
 * A switch interrupted by a fatal signal leaves the old generation with
 * writes in flight.  Its bits were moved to the current map at once, but a
 * straggler may still mark the old map, so the next switch waits for it and
 * moves what came in since.
 */
static bool gen_stale(struct sxm_dirty *d)
{
	return atomic64_read(&d->nr_dirty[d->cur ^ 1]) ||
	       atomic_read(&d->inflight[d->cur ^ 1]);
}

static int wait_drained(struct sxm_dirty *d, unsigned int gen)
{
	int r = wait_event_killable(d->drain_wait,
				    !atomic_read(&d->inflight[gen]));

	/* Pairs with the full barrier of atomic_dec_and_test(). */
	smp_mb();
	return r;
}

/*
 * Send new writes to the other generation and wait until the old one has
 * none in flight.  On success *old is the drained generation, whose map
 * the caller owns until it releases harvest_lock.
 */
static int switch_gen(struct sxm_dirty *d, unsigned int *old)
{
	unsigned int o;
	int r;

	lockdep_assert_held(&d->harvest_lock);

	if (gen_stale(d)) {
		r = wait_drained(d, d->cur ^ 1);
		if (r)
			return r;
		move_gen(d, d->cur ^ 1, d->cur);
	}

	spin_lock_irq(&d->lock);
	o = d->cur;
	d->cur ^= 1;
	spin_unlock_irq(&d->lock);

	r = wait_drained(d, o);
	if (r) {
		/* Keep every bit visible; stragglers are moved next time. */
		move_gen(d, o, d->cur);
		return r;
	}
	*old = o;
	return 0;
}

/*
 * Wait for every write in flight now; the map keeps all its bits.  Used
 * when tracking starts, so that no write sent before it completes later
 * unseen.
 */
int sxm_dirty_barrier(struct sxm_dirty *d)
{
	unsigned int old;
	int r;

	mutex_lock(&d->harvest_lock);
	r = switch_gen(d, &old);
	if (!r)
		move_gen(d, old, d->cur);
	mutex_unlock(&d->harvest_lock);
	return r;
}

/* ----------------------------------------------------------------------
 * Helper operations
 * ----------------------------------------------------------------------
 */

u64 sxm_dirty_count(struct sxm_dirty *d)
{
	return atomic64_read(&d->nr_dirty[0]) + atomic64_read(&d->nr_dirty[1]);
}

u64 sxm_dirty_held(struct sxm_dirty *d)
{
	return atomic64_read(&d->nr_held);
}

u64 sxm_dirty_mark_all(struct sxm_dirty *d)
{
	u64 newly;

	mutex_lock(&d->harvest_lock);
	newly = map_mark_range(d->map[d->cur], 0, d->nr_regions - 1);
	atomic64_add(newly, &d->nr_dirty[d->cur]);
	mutex_unlock(&d->harvest_lock);
	return newly;
}

u64 sxm_dirty_ack_all(struct sxm_dirty *d)
{
	u64 n;

	mutex_lock(&d->harvest_lock);
	n = atomic64_read(&d->nr_held);
	memset(d->held, 0, d->nr_words * sizeof(atomic_long_t));
	atomic64_set(&d->nr_held, 0);
	mutex_unlock(&d->harvest_lock);
	return n;
}

/*
 * Apply a user map (exactly sxm_dirty_map_bytes() long): OR it into the
 * current generation, or with @ack clear it from the held map.  The bits
 * past the last region must be clear; that is checked before anything
 * changes.  @count: the bits that changed.
 */
int sxm_dirty_apply_user(struct sxm_dirty *d, const void __user *buf,
			 bool ack, u64 *count)
{
	const __u64 __user *ubuf = buf;
	size_t nr = sxm_dirty_map_bytes(d) / sizeof(__u64);
	unsigned int tail = d->nr_regions % 64;
	atomic_long_t *map;
	atomic64_t *map_n;
	__le64 *chunk;
	__le64 last;
	size_t i, j, n;
	u64 changed = 0;
	int r = 0;

	if (get_user(last, (const __le64 __user *)&ubuf[nr - 1]))
		return -EFAULT;
	if (tail && (le64_to_cpu(last) & ~((1ULL << tail) - 1)))
		return -EINVAL;

	chunk = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;

	mutex_lock(&d->harvest_lock);
	map = ack ? d->held : d->map[d->cur];
	map_n = ack ? &d->nr_held : &d->nr_dirty[d->cur];
	for (i = 0; i < nr; i += n) {
		n = min_t(size_t, nr - i, SXM_CHUNK_WORDS);
		if (copy_from_user(chunk, &ubuf[i], n * sizeof(__u64))) {
			r = -EFAULT;
			break;
		}
		for (j = 0; j < n; j++)
			changed += map_apply_u64(d, map, i + j,
						 le64_to_cpu(chunk[j]), ack);
		cond_resched();
	}
	if (ack)
		atomic64_sub(changed, map_n);
	else
		atomic64_add(changed, map_n);
	mutex_unlock(&d->harvest_lock);

	kfree(chunk);
	*count = changed;
	return r;
}

/* Copy the union of @nr_maps maps to userspace, counting its bits. */
static int export_maps(struct sxm_dirty *d, atomic_long_t **maps,
		       unsigned int nr_maps, void __user *buf, u64 *nr_dirty)
{
	__u64 __user *ubuf = buf;
	size_t nr = sxm_dirty_map_bytes(d) / sizeof(__u64);
	unsigned int k;
	__le64 *chunk;
	size_t i, j, n;
	u64 count = 0;
	int r = 0;

	chunk = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;

	for (i = 0; i < nr; i += n) {
		n = min_t(size_t, nr - i, SXM_CHUNK_WORDS);
		for (j = 0; j < n; j++) {
			u64 v = 0;

			for (k = 0; k < nr_maps; k++)
				v |= map_get_u64(d, maps[k], i + j);
			count += hweight64(v);
			chunk[j] = cpu_to_le64(v);
		}
		if (copy_to_user(&ubuf[i], chunk, n * sizeof(__u64))) {
			r = -EFAULT;
			break;
		}
		cond_resched();
	}
	kfree(chunk);
	*nr_dirty = count;
	return r;
}

/*
 * Harvest: move the dirty map into the held map, start an empty one (see
 * the top of this file), and copy the held map to @buf.  With @peek copy
 * what is dirty or held and change nothing.  A copy that fails loses
 * nothing: the regions stay held.
 */
int sxm_dirty_harvest(struct sxm_dirty *d, void __user *buf, bool peek,
		      u64 *nr_dirty)
{
	atomic_long_t *maps[3];
	unsigned int old;
	int r;

	mutex_lock(&d->harvest_lock);
	if (peek) {
		maps[0] = d->map[0];
		maps[1] = d->map[1];
		maps[2] = d->held;
		r = export_maps(d, maps, 3, buf, nr_dirty);
		goto out;
	}

	r = switch_gen(d, &old);
	if (r)
		goto out;
	move_bits(d, d->map[old], &d->nr_dirty[old], d->held, &d->nr_held);
	d->harvests++;
	r = export_maps(d, &d->held, 1, buf, nr_dirty);
out:
	mutex_unlock(&d->harvest_lock);
	return r;
}
