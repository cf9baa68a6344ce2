// SPDX-License-Identifier: GPL-2.0
/*
 * dm-sxm: live storage migration target.
 *
 * The "sxm" target sits in the I/O path of a block device that is in use.
 * Every bio passes through to the source device; while tracking, every
 * write marks the regions it touches in a dirty map that a userspace helper
 * (sxm-ctl) harvests through /dev/dm-sxm to copy what changed to another
 * host's storage.  See Documentation/admin-guide/device-mapper/dm-sxm.rst.
 */
#include <linux/blkdev.h>
#include <linux/bio.h>
#include <linux/delay.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "dm-sxm.h"

/* The most regions one target may have: 2^31 bits, 256 MiB per map. */
#define SXM_MAX_REGIONS		BIT_ULL(31)
/* Feature arguments accepted at most (duplicates are refused by name). */
#define SXM_MAX_FEATURE_ARGS	8

#define SXM_ARG_METADATA	"metadata:"
#define SXM_ARG_SOURCE_ID	"source_id:"
#define SXM_ARG_METADATA_RESET	"metadata_reset"

static const char *const sxm_mode_names[] = {
	[SXM_MODE_PASSTHROUGH] = "passthrough",
	[SXM_MODE_TRACK] = "track",
	[SXM_MODE_MIRROR] = "mirror",
};

/* ----------------------------------------------------------------------
 * The registry of sxm_dev: one per (mapped device, target start)
 * ----------------------------------------------------------------------
 */

static LIST_HEAD(sxm_devs);
static DEFINE_MUTEX(sxm_devs_lock);

static struct sxm_dev *__sxm_dev_lookup(dev_t devt, sector_t begin)
{
	struct sxm_dev *dev;

	lockdep_assert_held(&sxm_devs_lock);
	list_for_each_entry(dev, &sxm_devs, list)
		if (dev->devt == devt && dev->begin == begin)
			return dev;
	return NULL;
}

/* For /dev/dm-sxm: the device at (devt, begin) with a reference, or NULL. */
struct sxm_dev *sxm_dev_find(dev_t devt, sector_t begin)
{
	struct sxm_dev *dev;

	mutex_lock(&sxm_devs_lock);
	dev = __sxm_dev_lookup(devt, begin);
	if (dev)
		kref_get(&dev->kref);
	mutex_unlock(&sxm_devs_lock);
	return dev;
}

/*
 * Events have a workqueue of their own, without a rescuer: their work
 * takes dev->lock, and the suspend and the reload flush the ring's works
 * on sxm_wq with dev->lock held.  On sxm_wq (WQ_MEM_RECLAIM), under
 * memory pressure its rescuer could be running an event's work, waiting
 * for dev->lock, while the flush under dev->lock waits for a ring work
 * queued behind it on that same rescuer: a deadlock (lockdep says so).
 * An event is not on the I/O path: it needs no rescuer.
 */
static struct workqueue_struct *sxm_event_wq;

/* Tell dm (and so dmsetup wait and the helper's poll) of a change. */
static void sxm_dev_event_fn(struct work_struct *work)
{
	struct sxm_dev *dev = container_of(work, struct sxm_dev, event_work);

	mutex_lock(&dev->lock);
	if (dev->live)
		dm_table_event(dev->live->ti->table);
	mutex_unlock(&dev->lock);
	sxm_dev_put(dev);
}

/* From any context but hard interrupts; the work holds a reference. */
void sxm_dev_event(struct sxm_dev *dev)
{
	kref_get(&dev->kref);
	if (!queue_work(sxm_event_wq, &dev->event_work))
		sxm_dev_put(dev);
}

static void sxm_dev_release(struct kref *kref)
{
	struct sxm_dev *dev = container_of(kref, struct sxm_dev, kref);

	sxm_meta_free(dev);
	sxm_dirty_exit(&dev->dirty);
	kfree(dev);
}

void sxm_dev_put(struct sxm_dev *dev)
{
	kref_put(&dev->kref, sxm_dev_release);
}

/* The device's mode: that of its live table, passthrough if none. */
int sxm_dev_mode(struct sxm_dev *dev)
{
	lockdep_assert_held(&dev->lock);
	return dev->live ? READ_ONCE(dev->live->mode) : SXM_MODE_PASSTHROUGH;
}

/* Devices whose first table is reading its metadata device. */
static LIST_HEAD(sxm_devs_loading);
/*
 * Devices whose last table went, until their metadata device is let go
 * (sxm_meta_detach()): a helper's mark may still write to it meanwhile.
 */
static LIST_HEAD(sxm_devs_leaving);

/* Whether a device on @list has metadata device @devt. */
static bool meta_devt_on(struct list_head *list, dev_t devt)
{
	struct sxm_dev *other;

	list_for_each_entry(other, list, list)
		if (other->meta_devt == devt)
			return true;
	return false;
}

/* The metadata device is no other device's (sxm_devs_lock held). */
static int meta_check_unused(struct sxm_target *tgt)
{
	dev_t devt = tgt->meta_dev->bdev->bd_dev;

	lockdep_assert_held(&sxm_devs_lock);
	if (meta_devt_on(&sxm_devs, devt) ||
	    meta_devt_on(&sxm_devs_loading, devt) ||
	    meta_devt_on(&sxm_devs_leaving, devt)) {
		tgt->ti->error = "Metadata device is in use by another sxm target";
		return -EBUSY;
	}
	return 0;
}

/* A reload may keep everything that the device's state depends on. */
static int check_reload(struct sxm_target *tgt, struct sxm_dev *dev)
{
	struct dm_target *ti = tgt->ti;

	if (dev->len != ti->len ||
	    dev->dirty.region_shift != ilog2(tgt->region_sectors)) {
		ti->error = "A reload may not change length or region size";
		return -EINVAL;
	}
	if (!dev->meta != !tgt->meta_dev ||
	    (tgt->meta_dev && !sxm_meta_same(dev, tgt->meta_dev->bdev,
					     tgt->source_id))) {
		ti->error = "A reload may not change the metadata device or source_id";
		return -EINVAL;
	}
	if (dev->meta_devt && dev->meta_devt == tgt->source->bdev->bd_dev) {
		ti->error = "The metadata device may not be the source";
		return -EINVAL;
	}
	return 0;
}

static struct sxm_dev *sxm_dev_alloc(struct sxm_target *tgt, dev_t devt)
{
	struct dm_target *ti = tgt->ti;
	struct sxm_dev *dev = kzalloc(sizeof(*dev), GFP_KERNEL);

	if (!dev) {
		ti->error = "Cannot allocate device state";
		return NULL;
	}
	if (sxm_dirty_init(&dev->dirty, ti->len, ilog2(tgt->region_sectors))) {
		kfree(dev);
		ti->error = "Cannot allocate dirty map";
		return NULL;
	}
	kref_init(&dev->kref);
	mutex_init(&dev->lock);
	spin_lock_init(&dev->ring_lock);
	INIT_WORK(&dev->event_work, sxm_dev_event_fn);
	dev->devt = devt;
	dev->begin = ti->begin;
	dev->len = ti->len;
	dev->nr_tables = 1;
	if (tgt->meta_dev)
		dev->meta_devt = tgt->meta_dev->bdev->bd_dev;
	return dev;
}

/*
 * A new device's metadata device is read (and bound) with sxm_devs_lock
 * dropped: it may take a while, and other devices' loads and attaches go
 * on meanwhile.  The device waits on sxm_devs_loading, so that no other
 * table takes the same metadata device; if another table made a device at
 * this position meanwhile, this load fails.
 */
static int sxm_dev_load_meta(struct sxm_target *tgt, struct sxm_dev *dev)
{
	struct dm_target *ti = tgt->ti;
	int r;

	lockdep_assert_held(&sxm_devs_lock);
	list_add(&dev->list, &sxm_devs_loading);
	mutex_unlock(&sxm_devs_lock);
	r = sxm_meta_create(dev, ti, tgt->meta_dev->bdev, tgt->source_id,
			    tgt->meta_reset, tgt->mode == SXM_MODE_PASSTHROUGH);
	mutex_lock(&sxm_devs_lock);
	list_del_init(&dev->list);
	if (!r && __sxm_dev_lookup(dev->devt, dev->begin)) {
		ti->error = "Another table at this position was loaded meanwhile";
		r = -EBUSY;
	}
	if (r && dev->meta)
		sxm_meta_detach(dev);
	return r;
}

/*
 * Join the sxm_dev of this target's position, or make it.  A reload of the
 * same device shares the existing one (and so its dirty map), which is why
 * a reload may not change the length, the region size or the metadata.
 */
static int sxm_dev_get(struct sxm_target *tgt)
{
	struct dm_target *ti = tgt->ti;
	struct mapped_device *md = dm_table_get_md(ti->table);
	dev_t devt = disk_devt(dm_disk(md));
	struct sxm_dev *dev;
	int r = 0;

	mutex_lock(&sxm_devs_lock);
	dev = __sxm_dev_lookup(devt, ti->begin);
	if (dev) {
		r = check_reload(tgt, dev);
		if (r)
			goto out;
		mutex_lock(&dev->lock);
		dev->nr_tables++;
		mutex_unlock(&dev->lock);
		kref_get(&dev->kref);
		tgt->dev = dev;
		goto out;
	}

	if (tgt->meta_dev) {
		if (tgt->meta_dev->bdev->bd_dev == tgt->source->bdev->bd_dev) {
			ti->error = "The metadata device may not be the source";
			r = -EINVAL;
			goto out;
		}
		r = meta_check_unused(tgt);
		if (r)
			goto out;
	}
	dev = sxm_dev_alloc(tgt, devt);
	if (!dev) {
		r = -ENOMEM;
		goto out;
	}
	if (tgt->meta_dev) {
		r = sxm_dev_load_meta(tgt, dev);
		if (r) {
			sxm_dev_put(dev);
			goto out;
		}
	}
	list_add(&dev->list, &sxm_devs);
	tgt->dev = dev;
out:
	mutex_unlock(&sxm_devs_lock);
	return r;
}

/*
 * A table instance lets go.  The last one takes the device out of the
 * registry: a new table at that position later starts a new map, while
 * files still attached keep theirs until they close.
 */
static void sxm_dev_unget(struct sxm_target *tgt)
{
	struct sxm_dev *dev = tgt->dev;

	bool last;

	mutex_lock(&sxm_devs_lock);
	mutex_lock(&dev->lock);
	if (dev->live == tgt)
		dev->live = NULL;
	last = !--dev->nr_tables;
	if (last) {
		list_move(&dev->list, &sxm_devs_leaving);
		dev->track_id = 0;
	}
	mutex_unlock(&dev->lock);
	mutex_unlock(&sxm_devs_lock);
	/* The tables held the metadata device: no I/O to it after this. */
	if (last) {
		sxm_meta_detach(dev);
		mutex_lock(&sxm_devs_lock);
		list_del_init(&dev->list);
		mutex_unlock(&sxm_devs_lock);
	}
	sxm_dev_put(dev);
}

/* ----------------------------------------------------------------------
 * Constructor and destructor
 * ----------------------------------------------------------------------
 */

static int parse_source(struct sxm_target *tgt, struct dm_arg_set *as)
{
	struct dm_target *ti = tgt->ti;
	int r;

	r = dm_get_device(ti, dm_shift_arg(as), dm_table_get_mode(ti->table),
			  &tgt->source);
	if (r) {
		ti->error = "Error opening source device";
		return r;
	}
	if (bdev_nr_sectors(tgt->source->bdev) < ti->len) {
		ti->error = "Source device is smaller than the target";
		return -EINVAL;
	}
	return 0;
}

static int parse_region_size(struct sxm_target *tgt, struct dm_arg_set *as)
{
	struct dm_target *ti = tgt->ti;
	unsigned long long v;
	int r;

	r = kstrtoull(dm_shift_arg(as), 10, &v);
	if (r == -ERANGE) {
		ti->error = "Region size is out of range";
		return -EINVAL;
	}
	if (r) {
		ti->error = "Region size is not a number";
		return -EINVAL;
	}
	if (!is_power_of_2(v)) {
		ti->error = "Region size must be a power of two";
		return -EINVAL;
	}
	if (v < SXM_MIN_REGION_SECTORS) {
		ti->error = "Region size must be at least 8 sectors (4 KiB)";
		return -EINVAL;
	}
	if (v > SXM_MAX_REGION_SECTORS) {
		ti->error = "Region size must be at most 2097152 sectors (1 GiB)";
		return -EINVAL;
	}
	if (DIV_ROUND_UP_ULL((u64)ti->len, v) > SXM_MAX_REGIONS) {
		ti->error = "Too many regions: choose a larger region size";
		return -EINVAL;
	}
	tgt->region_sectors = v;
	return 0;
}

/* source_id:<id>: 1 to 127 printable characters, no space. */
static int parse_source_id(struct sxm_target *tgt, const char *id)
{
	size_t i, n = strlen(id);

	if (!n || n >= SXM_META_SOURCE_ID_LEN) {
		tgt->ti->error = "source_id must have 1 to 127 characters";
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		if (id[i] <= ' ' || id[i] > '~') {
			tgt->ti->error = "source_id may hold only printable characters, no space";
			return -EINVAL;
		}
	tgt->source_id = kstrdup(id, GFP_KERNEL);
	if (!tgt->source_id) {
		tgt->ti->error = "Cannot allocate source_id";
		return -ENOMEM;
	}
	return 0;
}

static int parse_metadata(struct sxm_target *tgt, const char *path)
{
	struct dm_target *ti = tgt->ti;
	int r;

	if (!*path) {
		ti->error = "metadata: names no device";
		return -EINVAL;
	}
	r = dm_get_device(ti, path, FMODE_READ | FMODE_WRITE, &tgt->meta_dev);
	if (r)
		ti->error = "Error opening metadata device";
	return r;
}

/* One of the persistent map's feature arguments; 1 if @arg is none. */
static int parse_meta_feature(struct sxm_target *tgt, const char *arg)
{
	struct dm_target *ti = tgt->ti;

	if (!strncmp(arg, SXM_ARG_METADATA, strlen(SXM_ARG_METADATA))) {
		if (tgt->meta_dev) {
			ti->error = "Duplicate feature argument";
			return -EINVAL;
		}
		return parse_metadata(tgt, arg + strlen(SXM_ARG_METADATA));
	}
	if (!strncmp(arg, SXM_ARG_SOURCE_ID, strlen(SXM_ARG_SOURCE_ID))) {
		if (tgt->source_id) {
			ti->error = "Duplicate feature argument";
			return -EINVAL;
		}
		return parse_source_id(tgt, arg + strlen(SXM_ARG_SOURCE_ID));
	}
	if (!strcmp(arg, SXM_ARG_METADATA_RESET)) {
		if (tgt->meta_reset) {
			ti->error = "Duplicate feature argument";
			return -EINVAL;
		}
		tgt->meta_reset = true;
		return 0;
	}
	return 1;
}

static int parse_features(struct sxm_target *tgt, struct dm_arg_set *as)
{
	struct dm_target *ti = tgt->ti;
	unsigned int n, i, seen = 0;
	const char *arg;
	int mode = -1;
	int r;

	if (!as->argc)
		return 0;
	if (kstrtouint(dm_shift_arg(as), 10, &n) ||
	    n > SXM_MAX_FEATURE_ARGS) {
		ti->error = "Invalid number of feature arguments";
		return -EINVAL;
	}
	if (n > as->argc) {
		ti->error = "Fewer feature arguments than their count says";
		return -EINVAL;
	}
	if (n < as->argc) {
		ti->error = "Unexpected arguments after the feature arguments";
		return -EINVAL;
	}

	for (i = 0; i < n; i++) {
		int m;

		arg = dm_shift_arg(as);
		r = parse_meta_feature(tgt, arg);
		if (r <= 0) {
			if (r)
				return r;
			continue;
		}
		if (!strcmp(arg, sxm_mode_names[SXM_MODE_PASSTHROUGH])) {
			m = SXM_MODE_PASSTHROUGH;
		} else if (!strcmp(arg, sxm_mode_names[SXM_MODE_TRACK])) {
			m = SXM_MODE_TRACK;
		} else {
			ti->error = "Unrecognised feature argument";
			return -EINVAL;
		}
		if (seen & BIT(m)) {
			ti->error = "Duplicate feature argument";
			return -EINVAL;
		}
		if (mode >= 0) {
			ti->error = "Conflicting feature arguments: passthrough and track";
			return -EINVAL;
		}
		seen |= BIT(m);
		mode = m;
	}
	if (mode >= 0)
		tgt->mode = mode;
	if ((tgt->source_id || tgt->meta_reset) && !tgt->meta_dev) {
		ti->error = "source_id and metadata_reset need metadata:<dev>";
		return -EINVAL;
	}
	if (!tgt->source_id) {
		tgt->source_id = kstrdup("", GFP_KERNEL);
		if (!tgt->source_id) {
			ti->error = "Cannot allocate source_id";
			return -ENOMEM;
		}
	}
	return 0;
}

/* Tolerates a half-built target: the constructor's error path calls it. */
static void sxm_target_free(struct sxm_target *tgt)
{
	if (tgt->dev)
		sxm_dev_unget(tgt);
	if (tgt->meta_dev)
		dm_put_device(tgt->ti, tgt->meta_dev);
	if (tgt->source)
		dm_put_device(tgt->ti, tgt->source);
	kfree(tgt->source_id);
	kfree(tgt);
}

/*
 * Construct an sxm mapping:
 *
 *   <source_dev> <region_sectors> [<#feature_args> <feature_arg>...]
 *
 * source_dev:
 *	The device every bio is sent to, at the same offset.  It must be at
 *	least as long as the target.
 *
 * region_sectors:
 *	Size of a region of the dirty map, in 512-byte sectors: a power of
 *	two from 8 (4 KiB) to 2097152 (1 GiB).  At most 2^31 regions.
 *
 * Feature arguments:
 *	passthrough	Start with tracking off (the default).
 *	track		Start tracking changed regions at once.
 *	metadata:<dev>	Keep a persistent write-intent map on <dev>
 *			(dm-sxm-meta.c): bound to this target on first use,
 *			refused if it is another target's.
 *	source_id:<id>	What the metadata device records as the source
 *			(1 to 127 printable characters); a load naming
 *			another is refused.  Needs metadata:.
 *	metadata_reset	Bind the metadata device anew whatever it holds
 *			(but another format's data): a new track, so the
 *			helper copies everything.  Needs metadata:.
 *
 * A reload of a device already carrying an sxm target at the same start
 * keeps its dirty map, and so must keep its length, region size,
 * metadata device and source_id (metadata_reset is then without effect).
 */
static int sxm_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct sxm_target *tgt;
	int r;

	if (argc < 2) {
		ti->error = "Not enough arguments: <source_dev> <region_sectors> required";
		return -EINVAL;
	}

	tgt = kzalloc(sizeof(*tgt), GFP_KERNEL);
	if (!tgt) {
		ti->error = "Cannot allocate target";
		return -ENOMEM;
	}
	tgt->ti = ti;
	tgt->mode = SXM_MODE_PASSTHROUGH;

	r = parse_source(tgt, &as);
	if (r)
		goto bad;
	r = parse_region_size(tgt, &as);
	if (r)
		goto bad;
	r = parse_features(tgt, &as);
	if (r)
		goto bad;
	r = sxm_dev_get(tgt);
	if (r)
		goto bad;

	ti->num_flush_bios = 1;
	ti->num_discard_bios = 1;
	ti->num_secure_erase_bios = 1;
	ti->num_write_zeroes_bios = 1;
	ti->per_io_data_size = sizeof(struct sxm_io);
	/* What map holds back is sent later with dm_submit_bio_remap(). */
	ti->accounts_remapped_io = true;
	ti->private = tgt;
	return 0;

bad:
	sxm_target_free(tgt);
	return r;
}

static void sxm_dtr(struct dm_target *ti)
{
	sxm_target_free(ti->private);
}

/* ----------------------------------------------------------------------
 * I/O path
 * ----------------------------------------------------------------------
 */

static bool bio_changes_data(struct bio *bio)
{
	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
	case REQ_OP_DISCARD:
	case REQ_OP_SECURE_ERASE:
	case REQ_OP_WRITE_ZEROES:
		return bio_sectors(bio) != 0;
	default:
		return false;
	}
}

void sxm_remap(struct sxm_target *tgt, struct bio *bio)
{
	struct dm_target *ti = tgt->ti;

	bio_set_dev(bio, tgt->source->bdev);
	if (bio_sectors(bio))
		bio->bi_iter.bi_sector = dm_target_offset(ti,
							  bio->bi_iter.bi_sector);
}

#ifdef DM_SXM_TEST_HOOKS
/*
 * Test hook, in the debug kernel's build of the module only (make
 * module-debug; never in a normal build): the next write to reach
 * sxm_map() sleeps this many milliseconds before it is counted and reads
 * the mode, so that a test can switch the mode inside that window
 * (tests/vm/64-track-start.sh).
 */
static unsigned int test_delay_map_ms;
module_param(test_delay_map_ms, uint, 0600);
MODULE_PARM_DESC(test_delay_map_ms,
		 "test hook: the next write sleeps this long in map (ms)");

static void sxm_test_delay_map(struct bio *bio)
{
	unsigned int ms;

	if (!bio_changes_data(bio) || (bio->bi_opf & REQ_NOWAIT))
		return;
	ms = xchg(&test_delay_map_ms, 0);
	if (ms)
		msleep(min(ms, 10000U));
}
#else
static inline void sxm_test_delay_map(struct bio *bio)
{
}
#endif

/* The rest of map for a write: mirror it, or send it to the source. */
static int map_rest(struct sxm_target *tgt, struct bio *bio,
		    struct sxm_io *io, int mode, bool in_map)
{
	if (mode == SXM_MODE_MIRROR && (io->nr_sectors || !bio_sectors(bio))) {
		int r = sxm_ring_map(tgt->dev, bio, io, in_map);

		if (r != SXM_RING_NOT_MIRRORED) {
			if (r == DM_MAPIO_REMAPPED)
				sxm_remap(tgt, bio);
			return r;
		}
		/* Not mirrored (degraded, no helper): tracked instead. */
		if (io->nr_sectors)
			sxm_dirty_mark_gen(&tgt->dev->dirty, io->gen,
					   io->sector, io->nr_sectors);
	}
	sxm_remap(tgt, bio);
	return DM_MAPIO_REMAPPED;
}

static int sxm_map(struct dm_target *ti, struct bio *bio)
{
	struct sxm_target *tgt = ti->private;
	struct sxm_io *io = dm_per_bio_data(bio, sizeof(struct sxm_io));
	unsigned int epoch;
	bool changes;
	int mode;

	io->accounted = 0;
	io->mirrored = 0;
	if (!op_is_write(bio_op(bio)))
		goto remap;

	/*
	 * Every write is accounted, tracked or not, so that a harvest or the
	 * start of tracking can wait for the writes already sent.  The mode
	 * is read under the same lock (see sxm_dirty_start_write()).  A flush
	 * has no range: offset 0, length 0.
	 */
	changes = bio_changes_data(bio);
	io->tgt = tgt;
	io->sector = changes ? dm_target_offset(ti, bio->bi_iter.bi_sector) : 0;
	io->nr_sectors = changes ? bio_sectors(bio) : 0;
	sxm_test_delay_map(bio);
	io->gen = sxm_dirty_start_write(&tgt->dev->dirty, &tgt->mode, &mode,
					&epoch);
	io->epoch = epoch;
	io->accounted = 1;
	if (mode == SXM_MODE_TRACK && changes)
		sxm_dirty_mark_gen(&tgt->dev->dirty, io->gen, io->sector,
				   io->nr_sectors);

	/*
	 * With a persistent map, a write whose regions are not on the
	 * metadata device yet waits for them there (a mirrored one split
	 * first, as the ring would, so the regions are the ones posted).
	 */
	if (changes && mode != SXM_MODE_PASSTHROUGH && tgt->dev->meta) {
		if (mode == SXM_MODE_MIRROR)
			sxm_ring_split(tgt->dev, bio, io);
		io->mode = mode;
		if (sxm_meta_map(tgt->dev, bio, io))
			return DM_MAPIO_SUBMITTED;
	}
	return map_rest(tgt, bio, io, mode, true);
remap:
	sxm_remap(tgt, bio);
	return DM_MAPIO_REMAPPED;
}

/*
 * A write that waited for its regions on the metadata device goes on
 * (process context; not REQ_NOWAIT, see sxm_meta_map()).
 */
void sxm_map_continue(struct bio *bio)
{
	struct sxm_io *io = dm_per_bio_data(bio, sizeof(struct sxm_io));

	if (map_rest(io->tgt, bio, io, io->mode, false) == DM_MAPIO_REMAPPED)
		dm_submit_bio_remap(bio, NULL);
}

static int sxm_end_io(struct dm_target *ti, struct bio *bio,
		      blk_status_t *error)
{
	struct sxm_target *tgt = ti->private;
	struct sxm_io *io = dm_per_bio_data(bio, sizeof(struct sxm_io));

	if (io->accounted)
		sxm_dirty_end_write(&tgt->dev->dirty, io->gen, io->epoch);
	return DM_ENDIO_DONE;
}

static int sxm_iterate_devices(struct dm_target *ti,
			       iterate_devices_callout_fn fn, void *data)
{
	struct sxm_target *tgt = ti->private;

	return fn(ti, tgt->source, 0, ti->len, data);
}

/*
 * No prepare_ioctl: SCSI and NVMe pass-through ioctls (SG_IO and the like)
 * are refused (ENOTTY), as by dm-era, dm-clone and dm-cache.  A write sent
 * that way would reach the source neither tracked nor mirrored, and a mode
 * check here could not close the window of an ioctl already past it when
 * tracking starts.
 */

/* ----------------------------------------------------------------------
 * Mode changes
 * ----------------------------------------------------------------------
 */

/*
 * Switch @tgt (the live table) to @mode, with dev->lock held.  Tracking
 * starts only after every write sent before it has completed, so none of
 * them can land on the source after a copy that does not know of it.
 */
static int set_mode(struct sxm_target *tgt, int mode)
{
	struct sxm_dev *dev = tgt->dev;
	int old = tgt->mode;
	int r;

	lockdep_assert_held(&dev->lock);
	if (mode == old)
		return mode == SXM_MODE_MIRROR ? sxm_ring_set_mirror(dev, true) : 0;
	if (mode == SXM_MODE_MIRROR && !dev->ring)
		return -ENXIO;
	if (mode == SXM_MODE_PASSTHROUGH) {
		/*
		 * The track ends on the metadata device before any write goes
		 * untracked; if it may not have, tracking goes on (-EIO).
		 */
		u64 t = dev->track_id;

		dev->track_id = 0;
		r = sxm_meta_set_track(dev);
		if (r) {
			dev->track_id = t;
			return r;
		}
	}
	if (old == SXM_MODE_PASSTHROUGH) {
		/* Tracking starts: wait for what was sent untracked. */
		WRITE_ONCE(tgt->mode, SXM_MODE_TRACK);
		r = sxm_dirty_barrier(&dev->dirty);
		if (r) {
			WRITE_ONCE(tgt->mode, old);
			return r;
		}
		dev->track_id = get_random_u64() | 1;
		sxm_meta_set_track(dev);
	}
	if (mode == SXM_MODE_MIRROR)
		sxm_ring_set_mirror(dev, true);
	else if (old == SXM_MODE_MIRROR)
		/* Held-back writes go to the source at once, tracked. */
		sxm_ring_set_mirror(dev, false);
	WRITE_ONCE(tgt->mode, mode);
	return 0;
}

/* SXM_IOC_MIRROR: the helper turns mirroring on or off (to track). */
int sxm_dev_set_mirror(struct sxm_dev *dev, bool on)
{
	int r = -ENODEV;

	mutex_lock(&dev->lock);
	if (dev->live)
		r = set_mode(dev->live, on ? SXM_MODE_MIRROR : SXM_MODE_TRACK);
	mutex_unlock(&dev->lock);
	return r;
}

/*
 * Suspend: nothing the ring holds back may keep it waiting (see
 * sxm_ring_presuspend()); once suspended nothing is in flight and the
 * ring's works stop until the resume.
 */
static void sxm_presuspend(struct dm_target *ti)
{
	struct sxm_target *tgt = ti->private;

	sxm_meta_presuspend(tgt->dev);
	mutex_lock(&tgt->dev->lock);
	sxm_ring_presuspend(tgt->dev);
	mutex_unlock(&tgt->dev->lock);
}

static void sxm_presuspend_undo(struct dm_target *ti)
{
	struct sxm_target *tgt = ti->private;

	mutex_lock(&tgt->dev->lock);
	sxm_ring_resume(tgt->dev, false);
	mutex_unlock(&tgt->dev->lock);
	sxm_meta_presuspend_undo(tgt->dev);
}

/* Suspended: nothing in flight, so the metadata device is marked clean. */
static void sxm_postsuspend(struct dm_target *ti)
{
	struct sxm_target *tgt = ti->private;

	mutex_lock(&tgt->dev->lock);
	sxm_ring_resume(tgt->dev, true);
	sxm_meta_postsuspend(tgt->dev);
	mutex_unlock(&tgt->dev->lock);
}

/*
 * The new live table takes over.  Nothing is in flight while a device is
 * suspended, so a tracking table resuming after a tracking one continues
 * the same tracking (same track_id): no write went unseen in between.
 *
 * The mirror belongs to the device, not to a table: a table loaded as
 * "track" (what a mirroring table's status gives back) over a mirroring
 * one goes on mirroring, and one loaded as "passthrough" turns the mirror
 * off.  So the mode in the status and the ring always agree.
 */
static void sxm_resume(struct dm_target *ti)
{
	struct sxm_target *tgt = ti->private;
	struct sxm_dev *dev = tgt->dev;
	struct sxm_target *old;
	bool was_tracking;
	u64 saved;

	mutex_lock(&dev->lock);
	old = dev->live;
	was_tracking = old && dev->track_id &&
		       READ_ONCE(old->mode) != SXM_MODE_PASSTHROUGH;
	if (old && old != tgt && READ_ONCE(old->mode) == SXM_MODE_MIRROR &&
	    tgt->mode == SXM_MODE_TRACK)
		WRITE_ONCE(tgt->mode, SXM_MODE_MIRROR);
	if (tgt->mode != SXM_MODE_MIRROR)
		sxm_ring_set_mirror(dev, false);
	/* A track found on the metadata device at load goes on. */
	saved = sxm_meta_take_track(dev);
	if (tgt->mode != SXM_MODE_PASSTHROUGH) {
		if (!was_tracking)
			dev->track_id = saved ?: get_random_u64() | 1;
	} else {
		dev->track_id = 0;
	}
	dev->live = tgt;
	sxm_meta_resume(dev);
	sxm_ring_resume(dev, false);
	mutex_unlock(&dev->lock);
}

/*
 * Messages:
 *
 *   mode passthrough	stop tracking (the dirty map is kept)
 *   mode track		start tracking; returns once every write sent
 *			before it has completed
 *   mode mirror	mirror every write through the helper's ring (needs
 *			a helper with a ring); while the mirror is down,
 *			writes are tracked
 */
static int sxm_message(struct dm_target *ti, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct sxm_target *tgt = ti->private;
	int r, mode;

	if (argc == 2 && !strcasecmp(argv[0], "mode")) {
		if (!strcasecmp(argv[1], "track")) {
			mode = SXM_MODE_TRACK;
		} else if (!strcasecmp(argv[1], "passthrough")) {
			mode = SXM_MODE_PASSTHROUGH;
		} else if (!strcasecmp(argv[1], "mirror")) {
			mode = SXM_MODE_MIRROR;
		} else {
			DMERR("%s: unknown mode '%s' (passthrough, track or mirror)",
			      dm_device_name(dm_table_get_md(ti->table)),
			      argv[1]);
			return -EINVAL;
		}
		mutex_lock(&tgt->dev->lock);
		r = set_mode(tgt, mode);
		mutex_unlock(&tgt->dev->lock);
		if (r == -ENXIO)
			DMERR("%s: mode mirror needs a helper with a ring attached",
			      dm_device_name(dm_table_get_md(ti->table)));
		if (r == -EIO)
			DMERR("%s: cannot end the track on the metadata device: tracking goes on",
			      dm_device_name(dm_table_get_md(ti->table)));
		return r;
	}

	DMERR("%s: unsupported message '%s' (known: mode passthrough|track|mirror)",
	      dm_device_name(dm_table_get_md(ti->table)),
	      argc ? argv[0] : "");
	return -EINVAL;
}

/* ----------------------------------------------------------------------
 * Status
 * ----------------------------------------------------------------------
 */

/*
 * Status format:
 *
 * INFO:  <mode> <region_sectors> <nr_regions> <dirty_regions> <harvests>
 *        <helper> <held_regions> <mirror> <in_flight> <held_back>
 *        <mirrored_writes> <mirrored_bytes> <degradations> <reason>
 *
 *   mode		passthrough | track | mirror
 *   dirty_regions	regions marked dirty since the last harvest
 *   harvests		harvests of the dirty map so far
 *   helper		the attached helper's process id, or "-"
 *   held_regions	regions harvested and not yet acknowledged by the
 *			helper (their copy to the sink is not confirmed)
 *   mirror		off | on | degraded
 *   in_flight		writes posted on the ring, not yet acknowledged
 *   held_back		writes waiting (overlap, region lock, ring full)
 *   mirrored		writes and bytes mirrored so far
 *   degradations	times the mirror went down
 *   reason		why it last went down (sink_error, sink_flush_error,
 *			sink_timeout, ring_full, lock_timeout,
 *			helper_detached, bad_completion, bad_cq_tail,
 *			bad_sq_head, oversized_write), or "-"
 *
 * and, of the persistent map:
 *        <metadata> <meta_state> <meta_bits> <meta_writes> <meta_write_us>
 *        <meta_loaded> <meta_clean_time> <meta_reason>
 *
 *   metadata		the metadata device (major:minor), or "-"
 *   meta_state		active | failed, or "-"
 *   meta_bits		regions set in the map on disk
 *   meta_writes	metadata blocks written, and their mean latency (us)
 *   meta_loaded	what the load found: new (bound then), clean,
 *			unclean (not shut down cleanly: a power cut), reset;
 *			or "-"
 *   meta_clean_time	when the device was last shut down cleanly before
 *			the load (seconds since the epoch; 0: never)
 *   meta_reason	why the map went off (write_error, timeout), or "-"
 *
 * New fields are only ever appended.
 *
 * TABLE: <source_dev> <region_sectors> [<#features> [track]
 *        [metadata:<dev> [source_id:<id>]]]
 *   (the current mode: loading it back gives the same target; a mirroring
 *   target reads back as tracking, since a new table has no helper yet)
 */
static void emit_meta_status(struct sxm_dev *dev, char *result,
			     unsigned int maxlen, unsigned int *szp)
{
	struct sxm_meta_info mi;
	unsigned int sz = *szp;

	sxm_meta_info(dev, &mi);
	if (!mi.present) {
		DMEMIT(" - - 0 0 0 - 0 -");
	} else {
		DMEMIT(" %u:%u %s %llu %llu %llu %s %llu %s", MAJOR(mi.devt),
		       MINOR(mi.devt), mi.failed ? "failed" : "active",
		       (unsigned long long)mi.bits,
		       (unsigned long long)mi.writes,
		       (unsigned long long)mi.write_avg_us, mi.loaded,
		       (unsigned long long)mi.clean_time,
		       mi.reason ? mi.reason : "-");
	}
	*szp = sz;
}

static void emit_table(struct sxm_target *tgt, int mode, char *result,
		       unsigned int maxlen, unsigned int *szp)
{
	bool id = tgt->meta_dev && tgt->source_id && *tgt->source_id;
	unsigned int sz = *szp, n;

	DMEMIT("%s %llu", tgt->source->name,
	       (unsigned long long)tgt->region_sectors);
	n = (mode != SXM_MODE_PASSTHROUGH) + !!tgt->meta_dev + id;
	if (n)
		DMEMIT(" %u", n);
	if (mode != SXM_MODE_PASSTHROUGH)
		DMEMIT(" track");
	if (tgt->meta_dev)
		DMEMIT(" " SXM_ARG_METADATA "%s", tgt->meta_dev->name);
	if (id)
		DMEMIT(" " SXM_ARG_SOURCE_ID "%s", tgt->source_id);
	*szp = sz;
}

static void sxm_status(struct dm_target *ti, status_type_t type,
		       unsigned int status_flags, char *result,
		       unsigned int maxlen)
{
	struct sxm_target *tgt = ti->private;
	struct sxm_dev *dev = tgt->dev;
	int mode = READ_ONCE(tgt->mode);
	const char *state, *reason;
	u32 inflight, held_back;
	unsigned int sz = 0;
	pid_t helper;

	switch (type) {
	case STATUSTYPE_INFO:
		helper = READ_ONCE(dev->helper_tgid);
		DMEMIT("%s %llu %llu %llu %llu ", sxm_mode_names[mode],
		       (unsigned long long)tgt->region_sectors,
		       (unsigned long long)dev->dirty.nr_regions,
		       (unsigned long long)sxm_dirty_count(&dev->dirty),
		       (unsigned long long)atomic64_read(&dev->dirty.harvests));
		if (helper)
			DMEMIT("%d", helper);
		else
			DMEMIT("-");
		DMEMIT(" %llu", (unsigned long long)sxm_dirty_held(&dev->dirty));
		sxm_ring_status(dev, &state, &inflight, &held_back);
		reason = READ_ONCE(dev->degraded_reason);
		DMEMIT(" %s %u %u %llu %llu %llu %s", state, inflight, held_back,
		       (unsigned long long)atomic64_read(&dev->mirrored_writes),
		       (unsigned long long)atomic64_read(&dev->mirrored_bytes),
		       (unsigned long long)atomic64_read(&dev->degradations),
		       reason ? reason : "-");
		emit_meta_status(dev, result, maxlen, &sz);
		break;

	case STATUSTYPE_TABLE:
		emit_table(tgt, mode, result, maxlen, &sz);
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",source_device=%s,region_sectors=%llu,mode=%s",
		       tgt->source->name,
		       (unsigned long long)tgt->region_sectors,
		       sxm_mode_names[mode]);
		if (tgt->meta_dev)
			DMEMIT(",metadata_device=%s,source_id=%s",
			       tgt->meta_dev->name,
			       tgt->source_id ? tgt->source_id : "");
		DMEMIT(";");
		break;
	}
}

/* ----------------------------------------------------------------------
 * Module
 * ----------------------------------------------------------------------
 */

static struct target_type sxm_target = {
	.name = "sxm",
	.version = { 1, 3, 0 },
	/*
	 * Not DM_TARGET_PASSES_CRYPTO: a mirrored write's copy for the sink
	 * would be the plaintext of what the source stores encrypted.
	 */
	.features = DM_TARGET_NOWAIT,
	.module = THIS_MODULE,
	.ctr = sxm_ctr,
	.dtr = sxm_dtr,
	.map = sxm_map,
	.end_io = sxm_end_io,
	.presuspend = sxm_presuspend,
	.presuspend_undo = sxm_presuspend_undo,
	.postsuspend = sxm_postsuspend,
	.resume = sxm_resume,
	.message = sxm_message,
	.status = sxm_status,
	.iterate_devices = sxm_iterate_devices,
};

static int __init dm_sxm_init(void)
{
	int r;

	sxm_event_wq = alloc_workqueue("dm-sxm-event", 0, 0);
	if (!sxm_event_wq)
		return -ENOMEM;
	r = sxm_ring_init();
	if (r)
		goto out_event;
	r = sxm_meta_init();
	if (r)
		goto out_ring;
	r = sxm_chr_init();
	if (r)
		goto out_meta;
	r = dm_register_target(&sxm_target);
	if (r) {
		DMERR("register failed %d", r);
		goto out_chr;
	}
	return 0;

out_chr:
	sxm_chr_exit();
out_meta:
	sxm_meta_exit();
out_ring:
	sxm_ring_exit();
out_event:
	destroy_workqueue(sxm_event_wq);
	return r;
}

static void __exit dm_sxm_exit(void)
{
	dm_unregister_target(&sxm_target);
	sxm_chr_exit();
	sxm_meta_exit();
	sxm_ring_exit();
	/* Last: the ring's works (drained above) may queue events. */
	destroy_workqueue(sxm_event_wq);
}

module_init(dm_sxm_init);
module_exit(dm_sxm_exit);

MODULE_DESCRIPTION(DM_NAME " live storage migration target");
MODULE_AUTHOR("dm-sxm developers");
MODULE_LICENSE("GPL");
