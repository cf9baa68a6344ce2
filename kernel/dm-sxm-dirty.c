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
 * Locks: switch_lock serialises generation switches (a harvest holds it
 * while it waits for the old generation to drain); harvest_lock covers every
 * change the helper makes to the maps and is never held across a wait or a
 * copy to or from userspace, so that marking or acknowledging regions never
 * waits for a drain (which may need writes that only the helper's other
 * calls release); lock (a spinlock) covers only "read cur and the mode, and
 * count the write" against the switch.  Loops over the whole map reschedule
 * every SXM_CHUNK_WORDS words: a map may have 2^25 words.
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
	mutex_init(&d->switch_lock);
	mutex_init(&d->harvest_lock);
	d->cur = 0;
	d->epoch = 0;
	atomic_set(&d->epoch_inflight[0], 0);
	atomic_set(&d->epoch_inflight[1], 0);
	atomic64_set(&d->harvests, 0);
	atomic64_set(&d->copied, 0);
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
		if (!((w + 1) % SXM_CHUNK_WORDS))
			cond_resched();
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

/*
 * Account a write in the current generation and return it; *mode is read
 * under the same lock as the generation (see set_mode() in the target: a
 * switch to tracking flips the generation after it sets the mode, so a
 * write that still saw the old mode is in the generation the switch waits
 * for, and one counted after the switch sees the new mode).
 */
unsigned int sxm_dirty_start_write(struct sxm_dirty *d, const int *modep,
				   int *mode, unsigned int *epoch)
{
	unsigned long flags;
	unsigned int gen;

	spin_lock_irqsave(&d->lock, flags);
	gen = d->cur;
	*epoch = d->epoch;
	*mode = READ_ONCE(*modep);
	atomic_inc(&d->inflight[gen]);
	atomic_inc(&d->epoch_inflight[*epoch]);
	spin_unlock_irqrestore(&d->lock, flags);
	return gen;
}

void sxm_dirty_end_write(struct sxm_dirty *d, unsigned int gen,
			 unsigned int epoch)
{
	bool drained = atomic_dec_and_test(&d->inflight[gen]);

	drained |= atomic_dec_and_test(&d->epoch_inflight[epoch]);
	if (drained && wq_has_sleeper(&d->drain_wait))
		wake_up_all(&d->drain_wait);
}

/*
 * Epochs (the metadata cleaner's, dm-sxm-meta.c): every write is also
 * counted in an epoch, which only sxm_dirty_epoch_drain() switches.  It
 * sends new writes to the other epoch and waits until the old one has
 * none in flight, or until @stop or @timeout.  0 once drained; -EAGAIN
 * if not yet, and then the next call waits for the same old epoch again
 * before it switches.  One caller at a time (the cleaner of the device).
 */
int sxm_dirty_epoch_drain(struct sxm_dirty *d, const bool *stop,
			  unsigned long timeout)
{
	unsigned int old;

	spin_lock_irq(&d->lock);
	old = d->epoch ^ 1;
	if (!atomic_read(&d->epoch_inflight[old])) {
		old = d->epoch;
		d->epoch ^= 1;
	}
	spin_unlock_irq(&d->lock);

	wait_event_timeout(d->drain_wait,
			   !atomic_read(&d->epoch_inflight[old]) ||
			   READ_ONCE(*stop), timeout);
	/* Pairs with the full barrier of atomic_dec_and_test(). */
	smp_mb();
	return atomic_read(&d->epoch_inflight[old]) ? -EAGAIN : 0;
}

/*
 * Word @w (a long) of the regions the helper has not copied yet: dirty in
 * either generation or held.  With harvest_lock held, so that no bit is
 * on its way from one map to another.
 */
unsigned long sxm_dirty_pending_word(struct sxm_dirty *d, size_t w)
{
	lockdep_assert_held(&d->harvest_lock);
	return atomic_long_read(&d->map[0][w]) |
	       atomic_long_read(&d->map[1][w]) |
	       atomic_long_read(&d->held[w]);
}

/* OR @bits (nr_words longs, nothing past the last region) into the map. */
void sxm_dirty_or_bits(struct sxm_dirty *d, const unsigned long *bits)
{
	u64 newly = 0;
	size_t w;

	mutex_lock(&d->harvest_lock);
	for (w = 0; w < d->nr_words; w++) {
		newly += map_apply_long(d->map[d->cur], w, bits[w], false);
		if (!((w + 1) % SXM_CHUNK_WORDS))
			cond_resched();
	}
	atomic64_add(newly, &d->nr_dirty[d->cur]);
	mutex_unlock(&d->harvest_lock);
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

	lockdep_assert_held(&d->switch_lock);

	if (gen_stale(d)) {
		r = wait_drained(d, d->cur ^ 1);
		if (r)
			return r;
		mutex_lock(&d->harvest_lock);
		move_gen(d, d->cur ^ 1, d->cur);
		mutex_unlock(&d->harvest_lock);
	}

	spin_lock_irq(&d->lock);
	o = d->cur;
	d->cur ^= 1;
	spin_unlock_irq(&d->lock);

	r = wait_drained(d, o);
	if (r) {
		/* Keep every bit visible; stragglers are moved next time. */
		mutex_lock(&d->harvest_lock);
		move_gen(d, o, d->cur);
		mutex_unlock(&d->harvest_lock);
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

	r = mutex_lock_killable(&d->switch_lock);
	if (r)
		return r;
	r = switch_gen(d, &old);
	if (!r) {
		mutex_lock(&d->harvest_lock);
		move_gen(d, old, d->cur);
		mutex_unlock(&d->harvest_lock);
	}
	mutex_unlock(&d->switch_lock);
	return r;
}

/* ----------------------------------------------------------------------
 * Helper operations
 * ----------------------------------------------------------------------
 */

/*
 * Regions dirty since the last harvest.  A region may be set in both
 * generations (marked in the new one while a harvest still drains the
 * old), so the sum is an upper bound, capped at the number of regions.
 */
u64 sxm_dirty_count(struct sxm_dirty *d)
{
	return min_t(u64, d->nr_regions,
		     atomic64_read(&d->nr_dirty[0]) +
		     atomic64_read(&d->nr_dirty[1]));
}

u64 sxm_dirty_held(struct sxm_dirty *d)
{
	return atomic64_read(&d->nr_held);
}

u64 sxm_dirty_mark_all(struct sxm_dirty *d)
{
	u64 newly = 0, first, last;

	mutex_lock(&d->harvest_lock);
	for (first = 0; first < d->nr_regions; first = last + 1) {
		last = min_t(u64, first + SXM_CHUNK_WORDS * BITS_PER_LONG,
			     d->nr_regions) - 1;
		newly += map_mark_range(d->map[d->cur], first, last);
		cond_resched();
	}
	atomic64_add(newly, &d->nr_dirty[d->cur]);
	mutex_unlock(&d->harvest_lock);
	return newly;
}

/* Clear a whole map (not counted), rescheduling as it goes. */
static void map_clear(struct sxm_dirty *d, atomic_long_t *map)
{
	size_t w, n;

	for (w = 0; w < d->nr_words; w += n) {
		n = min_t(size_t, d->nr_words - w, SXM_CHUNK_WORDS);
		memset(&map[w], 0, n * sizeof(*map));
		cond_resched();
	}
}

u64 sxm_dirty_ack_all(struct sxm_dirty *d)
{
	u64 n;

	mutex_lock(&d->harvest_lock);
	n = atomic64_read(&d->nr_held);
	map_clear(d, d->held);
	atomic64_set(&d->nr_held, 0);
	atomic64_inc(&d->copied);
	mutex_unlock(&d->harvest_lock);
	return n;
}

/* ----------------------------------------------------------------------
 * Side maps (the mirror ring's regions written since the sink's last flush)
 * ----------------------------------------------------------------------
 */

atomic_long_t *sxm_dirty_map_alloc(struct sxm_dirty *d)
{
	return kvcalloc(d->nr_words, sizeof(atomic_long_t), GFP_KERNEL);
}

/* Mark a write's regions in side map @map; returns how many were new. */
u64 sxm_dirty_map_mark(struct sxm_dirty *d, atomic_long_t *map,
		       sector_t sector, sector_t nr_sectors)
{
	return map_mark_range(map, sector >> d->region_shift,
			      (sector + nr_sectors - 1) >> d->region_shift);
}

/*
 * Move every bit of side map @map into the current generation: those
 * regions are copied again.  Process context; the writes of @map are over.
 */
void sxm_dirty_map_merge(struct sxm_dirty *d, atomic_long_t *map)
{
	atomic64_t dummy;

	mutex_lock(&d->harvest_lock);
	move_bits(d, map, &dummy, d->map[d->cur], &d->nr_dirty[d->cur]);
	mutex_unlock(&d->harvest_lock);
}

void sxm_dirty_map_clear(struct sxm_dirty *d, atomic_long_t *map)
{
	map_clear(d, map);
}

/*
 * Apply a user map (exactly sxm_dirty_map_bytes() long): OR it into the
 * current generation, or with @ack clear it from the held map.  The bits
 * past the last region must be clear: the last chunk is copied and checked
 * first, and that copy is the one applied (the caller cannot change it in
 * between).  A fault in the middle leaves the chunks before it applied;
 * marking or acknowledging a part of what was asked is safe either way.
 * @count: the bits that changed.
 */
int sxm_dirty_apply_user(struct sxm_dirty *d, const void __user *buf,
			 bool ack, u64 *count)
{
	const __u64 __user *ubuf = buf;
	size_t nr = sxm_dirty_map_bytes(d) / sizeof(__u64);
	size_t last_i = (nr - 1) / SXM_CHUNK_WORDS * SXM_CHUNK_WORDS;
	unsigned int tail = d->nr_regions % 64;
	__le64 *chunk, *last;
	size_t i, j, n;
	u64 changed = 0;
	int r = 0;

	chunk = kmalloc(2 * PAGE_SIZE, GFP_KERNEL);
	if (!chunk)
		return -ENOMEM;
	last = chunk + SXM_CHUNK_WORDS;
	if (copy_from_user(last, &ubuf[last_i], (nr - last_i) * sizeof(__u64))) {
		r = -EFAULT;
		goto out;
	}
	if (tail && (le64_to_cpu(last[nr - 1 - last_i]) & ~((1ULL << tail) - 1))) {
		r = -EINVAL;
		goto out;
	}

	for (i = 0; i < nr; i += n) {
		__le64 *src = chunk;
		u64 c = 0;

		n = min_t(size_t, nr - i, SXM_CHUNK_WORDS);
		if (i == last_i) {
			src = last;
		} else if (copy_from_user(chunk, &ubuf[i], n * sizeof(__u64))) {
			r = -EFAULT;
			break;
		}
		mutex_lock(&d->harvest_lock);
		for (j = 0; j < n; j++)
			c += map_apply_u64(d, ack ? d->held : d->map[d->cur],
					   i + j, le64_to_cpu(src[j]), ack);
		if (ack) {
			atomic64_sub(c, &d->nr_held);
			atomic64_inc(&d->copied);
		} else {
			atomic64_add(c, &d->nr_dirty[d->cur]);
		}
		mutex_unlock(&d->harvest_lock);
		changed += c;
		cond_resched();
	}
out:
	kfree(chunk);
	*count = changed;
	return r;
}

/*
 * Copy the union of @nr_maps maps to userspace, counting its bits.  No lock
 * is held across the copy: the words are read atomically, one chunk at a
 * time, so a caller whose buffer faults slowly stalls no one else.
 */
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
 * nothing: the regions stay held.  *@generation: harvests done so far.
 */
int sxm_dirty_harvest(struct sxm_dirty *d, void __user *buf, bool peek,
		      u64 *nr_dirty, u64 *generation)
{
	atomic_long_t *maps[3];
	unsigned int old;
	int r;

	if (peek) {
		maps[0] = d->map[0];
		maps[1] = d->map[1];
		maps[2] = d->held;
		r = export_maps(d, maps, 3, buf, nr_dirty);
		*generation = atomic64_read(&d->harvests);
		return r;
	}

	r = mutex_lock_killable(&d->switch_lock);
	if (r)
		return r;
	r = switch_gen(d, &old);
	if (!r) {
		mutex_lock(&d->harvest_lock);
		move_bits(d, d->map[old], &d->nr_dirty[old], d->held,
			  &d->nr_held);
		*generation = atomic64_inc_return(&d->harvests);
		mutex_unlock(&d->harvest_lock);
		r = export_maps(d, &d->held, 1, buf, nr_dirty);
	}
	mutex_unlock(&d->switch_lock);
	return r;
}
