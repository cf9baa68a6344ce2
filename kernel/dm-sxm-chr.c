// SPDX-License-Identifier: GPL-2.0
/*
 * dm-sxm: /dev/dm-sxm, the helper's door into the target.
 *
 * An open file is a client.  It attaches to one sxm target (struct sxm_dev)
 * as its helper (one at most) or as an observer, and then harvests, marks
 * and reads that target.  The ABI is include/uapi/linux/dm-sxm.h.
 *
 * Nothing from userspace is trusted: every struct is read whole with
 * copy_struct_from_user() (so a newer, larger struct works if its new
 * fields are zero), every flag, feature bit and reserved field is checked,
 * and buffer sizes are checked against the map before it is touched.
 *
 * Locking: client.lock only serialises attaching.  c->dev and c->helper
 * are set once, at attach (c->dev last, with release), and stay until the
 * file is released, so every other call reads them without a lock of the
 * file's own.  That way no call waits for another call on the same file
 * (a harvest waiting for writes held behind the helper's own region lock
 * does not keep that lock's release out), and mmap (under mmap_lock) takes
 * no lock that a call holds across copy_to_user() or copy_from_user().
 * Lock order: client.lock -> sxm_dev.lock (then the ring's and the dirty
 * map's locks).
 */
#include <linux/capability.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "dm-sxm.h"

#define SXM_F_ALL	(SXM_F_TRACK | SXM_F_MARK_DIRTY | SXM_F_TRACK_ID | \
			 SXM_F_HOLD | SXM_F_EVENTS | SXM_F_MIRROR)

struct sxm_client {
	struct mutex lock;		/* serialises attaching */
	struct sxm_dev *dev;		/* attached to, or NULL */
	bool helper;			/* attached as the helper */
	atomic64_t seen;		/* the device's events this file read */
};

static int sxm_chr_open(struct inode *inode, struct file *file)
{
	struct sxm_client *c;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	mutex_init(&c->lock);
	file->private_data = c;
	return 0;
}

static int sxm_chr_release(struct inode *inode, struct file *file)
{
	struct sxm_client *c = file->private_data;
	struct sxm_dev *dev = c->dev;

	if (dev) {
		mutex_lock(&dev->lock);
		if (dev->helper == file) {
			/* Mirroring stops; writes go on, tracked. */
			sxm_ring_destroy(dev);
			dev->helper = NULL;
			dev->helper_tgid = 0;
		}
		mutex_unlock(&dev->lock);
		sxm_dev_put(dev);
	}
	kfree(c);
	return 0;
}

/*
 * Read an ioctl struct: its first __u32 is its size, which must match the
 * size in the command and be at least the size this kernel knows; a larger
 * one must be zero past what the kernel knows.  Replies write back only
 * what the kernel knows.
 */
static int get_ustruct(void *k, size_t ksize, unsigned int cmd,
		       const void __user *u)
{
	__u32 usize;

	if (get_user(usize, (const __u32 __user *)u))
		return -EFAULT;
	if (usize != _IOC_SIZE(cmd) || usize < ksize)
		return -EINVAL;
	return copy_struct_from_user(k, ksize, u, usize);
}

static bool zeroed(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

/* ----------------------------------------------------------------------
 * Commands
 * ----------------------------------------------------------------------
 */

static int ioc_get_features(unsigned int cmd, void __user *u)
{
	struct sxm_features f;
	int r;

	r = get_ustruct(&f, sizeof(f), cmd, u);
	if (r)
		return r;
	if (!zeroed(f.reserved, sizeof(f.reserved)))
		return -EINVAL;
	f.abi_version = SXM_ABI_VERSION;
	f.features = SXM_F_ALL;
	f.min_region_sectors = SXM_MIN_REGION_SECTORS;
	f.max_region_sectors = SXM_MAX_REGION_SECTORS;
	return copy_to_user(u, &f, sizeof(f)) ? -EFAULT : 0;
}

static int ioc_attach(struct file *file, struct sxm_client *c,
		      unsigned int cmd, void __user *u)
{
	struct sxm_attach a;
	struct sxm_dev *dev;
	int r;

	r = get_ustruct(&a, sizeof(a), cmd, u);
	if (r)
		return r;
	if ((a.flags & ~SXM_ATTACH_FLAGS) || (a.features & ~SXM_F_ALL) ||
	    a.reserved0 || a.helper_pid ||
	    !zeroed(a.reserved, sizeof(a.reserved)))
		return -EINVAL;
	if (a.dev_major >= (1U << (32 - MINORBITS)) ||
	    a.dev_minor > MINORMASK)
		return -EINVAL;

	if (c->dev)
		return -EALREADY;
	dev = sxm_dev_find(MKDEV(a.dev_major, a.dev_minor), a.target_start);
	if (!dev)
		return -ENODEV;

	mutex_lock(&dev->lock);
	atomic64_set(&c->seen, atomic64_read(&dev->events));
	if (!(a.flags & SXM_ATTACH_OBSERVER)) {
		if (dev->helper) {
			a.helper_pid = dev->helper_tgid;
			mutex_unlock(&dev->lock);
			sxm_dev_put(dev);
			if (copy_to_user(u, &a, sizeof(a)))
				return -EFAULT;
			return -EBUSY;
		}
		dev->helper = file;
		dev->helper_tgid = task_tgid_nr(current);
		c->helper = true;
	}
	a.len_sectors = dev->len;
	a.region_sectors = 1ULL << dev->dirty.region_shift;
	a.nr_regions = dev->dirty.nr_regions;
	a.track_id = dev->track_id;
	/* Last: SXM_IOC_RING_ENTER and poll read c->dev without c->lock. */
	smp_store_release(&c->dev, dev);
	mutex_unlock(&dev->lock);

	/* The attach stands even if the caller's struct went away. */
	return copy_to_user(u, &a, sizeof(a)) ? -EFAULT : 0;
}

static int ioc_harvest(struct sxm_client *c, unsigned int cmd,
		       void __user *u)
{
	struct sxm_dev *dev = c->dev;
	struct sxm_harvest h;
	u64 n, gen;
	bool peek;
	int r;

	r = get_ustruct(&h, sizeof(h), cmd, u);
	if (r)
		return r;
	if ((h.flags & ~SXM_HARVEST_FLAGS) ||
	    !zeroed(h.reserved, sizeof(h.reserved)))
		return -EINVAL;
	peek = h.flags & SXM_HARVEST_PEEK;
	if (!peek && !c->helper)
		return -EPERM;
	if (h.bitmap_bytes < sxm_dirty_map_bytes(&dev->dirty))
		return -EINVAL;

	r = sxm_dirty_harvest(&dev->dirty, u64_to_user_ptr(h.bitmap_ptr),
			      peek, &n, &gen);
	if (r)
		return r;

	mutex_lock(&dev->lock);
	h.nr_regions = dev->dirty.nr_regions;
	h.dirty_regions = n;
	h.generation = gen;
	h.track_id = dev->track_id;
	mutex_unlock(&dev->lock);
	return copy_to_user(u, &h, sizeof(h)) ? -EFAULT : 0;
}

/* SXM_IOC_MARK_DIRTY and SXM_IOC_ACK: a set of regions, or all of them. */
static int ioc_regions(struct sxm_client *c, unsigned int cmd, bool ack,
		       void __user *u)
{
	struct sxm_dev *dev = c->dev;
	struct sxm_regions m;
	int r;

	r = get_ustruct(&m, sizeof(m), cmd, u);
	if (r)
		return r;
	if ((m.flags & ~SXM_REGIONS_FLAGS) || m.count ||
	    !zeroed(m.reserved, sizeof(m.reserved)))
		return -EINVAL;
	if (!c->helper)
		return -EPERM;

	if (m.flags & SXM_REGIONS_ALL) {
		if (m.bitmap_ptr || m.bitmap_bytes)
			return -EINVAL;
		m.count = ack ? sxm_dirty_ack_all(&dev->dirty) :
				sxm_dirty_mark_all(&dev->dirty);
	} else {
		if (m.bitmap_bytes != sxm_dirty_map_bytes(&dev->dirty))
			return -EINVAL;
		r = sxm_dirty_apply_user(&dev->dirty,
					 u64_to_user_ptr(m.bitmap_ptr), ack,
					 &m.count);
	}
	/*
	 * What the helper marked survives a power cut once we return (also
	 * the part a fault in the middle of its map left marked).  Not
	 * skipped when nothing was new: another caller's mark of the same
	 * regions may still be on its way to the metadata device.
	 */
	if (!ack) {
		int e = sxm_meta_persist_marks(dev);

		r = r ?: e;
	}
	if (r)
		return r;
	return copy_to_user(u, &m, sizeof(m)) ? -EFAULT : 0;
}

static int ioc_get_info(struct sxm_client *c, unsigned int cmd,
			void __user *u)
{
	struct sxm_dev *dev = c->dev;
	const char *reason, *state;
	u32 in_flight, held_back;
	struct sxm_info i;
	int r;

	r = get_ustruct(&i, sizeof(i), cmd, u);
	if (r)
		return r;
	if (!zeroed(&i.mode, sizeof(i) - offsetof(struct sxm_info, mode)))
		return -EINVAL;

	mutex_lock(&dev->lock);
	/* Read first: a change after this shows as a new event. */
	i.mirror_events = atomic64_read(&dev->events);
	i.mode = sxm_dev_mode(dev);
	i.len_sectors = dev->len;
	i.region_sectors = 1ULL << dev->dirty.region_shift;
	i.nr_regions = dev->dirty.nr_regions;
	i.dirty_regions = sxm_dirty_count(&dev->dirty);
	i.held_regions = sxm_dirty_held(&dev->dirty);
	i.harvests = atomic64_read(&dev->dirty.harvests);
	i.track_id = dev->track_id;
	i.helper_pid = dev->helper_tgid;
	reason = READ_ONCE(dev->degraded_reason);
	if (sxm_ring_mirroring(dev))
		i.mirror = SXM_MIRROR_ON;
	else if (reason)
		i.mirror = SXM_MIRROR_DEGRADED;
	else
		i.mirror = SXM_MIRROR_OFF;
	i.degradations = atomic64_read(&dev->degradations);
	if (reason)
		strscpy(i.degraded_reason, reason, sizeof(i.degraded_reason));
	sxm_ring_status(dev, &state, &in_flight, &held_back);
	i.mirror_in_flight = in_flight;
	i.mirror_held_back = held_back;
	i.mirrored_writes = atomic64_read(&dev->mirrored_writes);
	i.mirrored_bytes = atomic64_read(&dev->mirrored_bytes);
	mutex_unlock(&dev->lock);
	if (copy_to_user(u, &i, sizeof(i)))
		return -EFAULT;
	atomic64_set(&c->seen, i.mirror_events);
	return 0;
}

static int ioc_ring_setup(struct sxm_client *c, unsigned int cmd,
			  void __user *u)
{
	struct sxm_dev *dev = c->dev;
	struct sxm_ring_setup g;
	int r;

	r = get_ustruct(&g, sizeof(g), cmd, u);
	if (r)
		return r;
	if (g.mmap_bytes || g.hdr_off || g.sq_off || g.cq_off || g.data_off ||
	    !zeroed(g.reserved, sizeof(g.reserved)))
		return -EINVAL;
	if (!c->helper)
		return -EPERM;
	mutex_lock(&dev->lock);
	r = sxm_ring_setup(dev, &g);
	mutex_unlock(&dev->lock);
	if (r)
		return r;
	return copy_to_user(u, &g, sizeof(g)) ? -EFAULT : 0;
}

static int ioc_mirror(struct sxm_client *c, unsigned int cmd, void __user *u)
{
	struct sxm_mirror m;
	int r;

	r = get_ustruct(&m, sizeof(m), cmd, u);
	if (r)
		return r;
	if (m.on > 1 || !zeroed(m.reserved, sizeof(m.reserved)))
		return -EINVAL;
	if (!c->helper)
		return -EPERM;
	return sxm_dev_set_mirror(c->dev, m.on);
}

static int ioc_lock(struct sxm_client *c, unsigned int cmd, void __user *u)
{
	struct sxm_dev *dev = c->dev;
	struct sxm_lock_range *ranges;
	struct sxm_lock l;
	u32 i;
	int r;

	r = get_ustruct(&l, sizeof(l), cmd, u);
	if (r)
		return r;
	if ((l.flags & ~SXM_LOCK_FLAGS) || l.reserved0 ||
	    !zeroed(l.reserved, sizeof(l.reserved)) ||
	    !l.nr_ranges || l.nr_ranges > SXM_LOCK_MAX)
		return -EINVAL;
	if (!c->helper)
		return -EPERM;
	ranges = memdup_user(u64_to_user_ptr(l.ranges_ptr),
			     l.nr_ranges * sizeof(*ranges));
	if (IS_ERR(ranges))
		return PTR_ERR(ranges);
	for (i = 0; i < l.nr_ranges; i++)
		if (!ranges[i].count ||
		    ranges[i].first >= dev->dirty.nr_regions ||
		    ranges[i].count > dev->dirty.nr_regions - ranges[i].first) {
			kfree(ranges);
			return -EINVAL;
		}
	r = sxm_ring_lock(dev, ranges, l.nr_ranges,
			  l.flags & SXM_LOCK_RELEASE);
	kfree(ranges);
	return r;
}

/*
 * SXM_IOC_RING_ENTER, without c->lock: a SXM_IOC_LOCK or SXM_IOC_HARVEST
 * on this file may be waiting, under c->lock, for mirrored writes that
 * only these completions finish.  c->dev and c->helper are set once, at
 * attach (c->dev last), and stay until the file is released.
 */
static long ioc_ring_enter(struct sxm_client *c)
{
	/* Pairs with ioc_attach(): c->helper is set before c->dev. */
	struct sxm_dev *dev = smp_load_acquire(&c->dev);

	if (!dev)
		return -ENXIO;
	if (!READ_ONCE(dev->nr_tables))
		return -ENODEV;
	if (!c->helper)
		return -EPERM;
	return sxm_ring_enter(dev);
}

/*
 * The command without its size: a helper built against a newer header
 * passes a larger struct (and so another size in the command), which is
 * accepted as long as what this kernel does not know of it is zero.
 */
#define SXM_IOC_BASE(c)	((c) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

static long sxm_chr_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct sxm_client *c = file->private_data;
	void __user *u = (void __user *)arg;
	long r;

	switch (SXM_IOC_BASE(cmd)) {
	case SXM_IOC_BASE(SXM_IOC_GET_FEATURES):
		return ioc_get_features(cmd, u);
	case SXM_IOC_BASE(SXM_IOC_ATTACH):
	case SXM_IOC_BASE(SXM_IOC_HARVEST):
	case SXM_IOC_BASE(SXM_IOC_MARK_DIRTY):
	case SXM_IOC_BASE(SXM_IOC_ACK):
	case SXM_IOC_BASE(SXM_IOC_GET_INFO):
	case SXM_IOC_BASE(SXM_IOC_RING_SETUP):
	case SXM_IOC_BASE(SXM_IOC_MIRROR):
	case SXM_IOC_BASE(SXM_IOC_LOCK):
		break;
	case SXM_IOC_RING_ENTER:
		return ioc_ring_enter(c);
	default:
		/* Unknown is ENOTTY whatever state the file is in. */
		return -ENOTTY;
	}

	if (SXM_IOC_BASE(cmd) == SXM_IOC_BASE(SXM_IOC_ATTACH)) {
		mutex_lock(&c->lock);
		r = ioc_attach(file, c, cmd, u);
		mutex_unlock(&c->lock);
		return r;
	}
	/* Pairs with ioc_attach(): c->helper is set before c->dev. */
	if (!smp_load_acquire(&c->dev))
		return -ENXIO;
	/* The target was removed: the file may only be closed. */
	if (!READ_ONCE(c->dev->nr_tables))
		return -ENODEV;
	switch (SXM_IOC_BASE(cmd)) {
	case SXM_IOC_BASE(SXM_IOC_HARVEST):
		r = ioc_harvest(c, cmd, u);
		break;
	case SXM_IOC_BASE(SXM_IOC_MARK_DIRTY):
		r = ioc_regions(c, cmd, false, u);
		break;
	case SXM_IOC_BASE(SXM_IOC_ACK):
		r = ioc_regions(c, cmd, true, u);
		break;
	case SXM_IOC_BASE(SXM_IOC_RING_SETUP):
		r = ioc_ring_setup(c, cmd, u);
		break;
	case SXM_IOC_BASE(SXM_IOC_MIRROR):
		r = ioc_mirror(c, cmd, u);
		break;
	case SXM_IOC_BASE(SXM_IOC_LOCK):
		r = ioc_lock(c, cmd, u);
		break;
	default:
		r = ioc_get_info(c, cmd, u);
		break;
	}
	return r;
}

/* The helper's ring: readable while submissions wait. */
static __poll_t sxm_chr_poll(struct file *file, poll_table *wait)
{
	struct sxm_client *c = file->private_data;
	/* Pairs with ioc_attach(): c->helper is set before c->dev. */
	struct sxm_dev *dev = smp_load_acquire(&c->dev);

	if (!dev || !c->helper)
		return EPOLLERR;
	return sxm_ring_poll(dev, file, wait, atomic64_read(&c->seen));
}

/* Under mmap_lock: no lock of the file's (see the top). */
static int sxm_chr_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct sxm_client *c = file->private_data;
	/* Pairs with ioc_attach(): c->helper is set before c->dev. */
	struct sxm_dev *dev = smp_load_acquire(&c->dev);

	if (!dev || !c->helper)
		return -ENXIO;
	return sxm_ring_mmap(dev, vma);
}

static const struct file_operations sxm_chr_fops = {
	.owner = THIS_MODULE,
	.open = sxm_chr_open,
	.release = sxm_chr_release,
	.unlocked_ioctl = sxm_chr_ioctl,
	.poll = sxm_chr_poll,
	.mmap = sxm_chr_mmap,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice sxm_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = SXM_MISC_NAME,
	.nodename = SXM_MISC_NAME,
	.mode = 0600,
	.fops = &sxm_chr_fops,
};

int sxm_chr_init(void)
{
	BUILD_BUG_ON(sizeof(struct sxm_features) != SXM_FEATURES_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_attach) != SXM_ATTACH_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_harvest) != SXM_HARVEST_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_regions) != SXM_REGIONS_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_info) != SXM_INFO_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_ring_hdr) != SXM_RING_HDR_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_sqe) != SXM_SQE_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_cqe) != SXM_CQE_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_ring_setup) != SXM_RING_SETUP_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_mirror) != SXM_MIRROR_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_lock_range) != SXM_LOCK_RANGE_SIZE);
	BUILD_BUG_ON(sizeof(struct sxm_lock) != SXM_LOCK_SIZE);

	return misc_register(&sxm_misc);
}

void sxm_chr_exit(void)
{
	misc_deregister(&sxm_misc);
}
