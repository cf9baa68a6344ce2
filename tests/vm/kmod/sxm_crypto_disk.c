// SPDX-License-Identifier: GPL-2.0
/*
 * sxm_crypto_disk: a test disk that declares what no device the VM has
 * (loop, brd, scsi_debug, virtio) does, so that the tests can see what a
 * dm device over such hardware does with it:
 *   - inline encryption hardware: a blk-crypto profile (AES-256-XTS, 512-
 *     and 4096-byte data units, keyslots that accept any key), for
 *     tests/vm/65-inline-crypto.sh;
 *   - secure erase (REQ_OP_SECURE_ERASE, BLKSECDISCARD), for
 *     tests/vm/66-secure-erase.sh.
 * It stores nothing: reads return zeroes, writes and everything else
 * complete at once.  Load with size_mb=N (default 16); the disk is
 * /dev/sxmcrypt0.
 */
#include <linux/blk-crypto-profile.h>
#include <linux/blkdev.h>
#include <linux/module.h>
#include <linux/slab.h>

static unsigned int size_mb = 16;
module_param(size_mb, uint, 0444);
MODULE_PARM_DESC(size_mb, "size of /dev/sxmcrypt0 in MiB");

static int major;
static struct gendisk *disk;
/* Not static data: lockdep registers a key of its own in each profile. */
static struct blk_crypto_profile *profile;

static int cd_keyslot_program(struct blk_crypto_profile *p,
			      const struct blk_crypto_key *key,
			      unsigned int slot)
{
	return 0;
}

static int cd_keyslot_evict(struct blk_crypto_profile *p,
			    const struct blk_crypto_key *key,
			    unsigned int slot)
{
	return 0;
}

static void cd_submit_bio(struct bio *bio)
{
	if (bio_op(bio) == REQ_OP_READ)
		zero_fill_bio(bio);
	bio_endio(bio);
}

static const struct block_device_operations cd_fops = {
	.owner = THIS_MODULE,
	.submit_bio = cd_submit_bio,
};

static int __init cd_init(void)
{
	int r;

	if (!size_mb || size_mb > 1024)
		return -EINVAL;
	major = register_blkdev(0, "sxmcrypt");
	if (major < 0)
		return major;
	r = -ENOMEM;
	profile = kzalloc(sizeof(*profile), GFP_KERNEL);
	if (!profile)
		goto out_blkdev;
	r = blk_crypto_profile_init(profile, 4);
	if (r)
		goto out_free;
	profile->ll_ops.keyslot_program = cd_keyslot_program;
	profile->ll_ops.keyslot_evict = cd_keyslot_evict;
	profile->max_dun_bytes_supported = 8;
	profile->modes_supported[BLK_ENCRYPTION_MODE_AES_256_XTS] = 512 | 4096;

	r = -ENOMEM;
	disk = blk_alloc_disk(NUMA_NO_NODE);
	if (!disk)
		goto out_profile;
	disk->major = major;
	disk->first_minor = 0;
	disk->minors = 1;
	disk->fops = &cd_fops;
	disk->flags |= GENHD_FL_NO_PART;
	snprintf(disk->disk_name, sizeof(disk->disk_name), "sxmcrypt0");
	set_capacity(disk, (sector_t)size_mb << 11);
	blk_queue_logical_block_size(disk->queue, 512);
	blk_queue_max_secure_erase_sectors(disk->queue, UINT_MAX >> 9);
	r = -EINVAL;
	if (!blk_crypto_register(profile, disk->queue))
		goto out_disk;
	r = add_disk(disk);
	if (r)
		goto out_disk;
	return 0;

out_disk:
	put_disk(disk);
out_profile:
	blk_crypto_profile_destroy(profile);
out_free:
	kfree(profile);
out_blkdev:
	unregister_blkdev(major, "sxmcrypt");
	return r;
}

static void __exit cd_exit(void)
{
	del_gendisk(disk);
	put_disk(disk);
	blk_crypto_profile_destroy(profile);
	kfree(profile);
	unregister_blkdev(major, "sxmcrypt");
}

module_init(cd_init);
module_exit(cd_exit);
MODULE_DESCRIPTION("dm-sxm tests: a disk with inline encryption and secure erase, and no storage");
MODULE_LICENSE("GPL");
