/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The metadata device of the persistent write-intent map, in the format of
 * include/uapi/linux/dm-sxm-metadata.h: the device opened, its superblock
 * and every map block read and checked, the map read into a region map
 * (bitmap.h) the way the kernel reads it, a blank superblock written.
 * "sxm-ctl metadata" is built on it; so is anything else that reads a
 * metadata device.
 *
 * Error policy as in sxm.h: 0 or -errno, nothing printed.  What is wrong
 * with a device's content is not an error of the call: sxm_meta_read()
 * says it in struct sxm_meta, as bits and as one line a problem.
 */
#ifndef SXM_META_H
#define SXM_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/dm-sxm-metadata.h>

#include "base/buf.h"

/* What block 0 holds. */
enum sxm_meta_state {
	SXM_META_ST_BAD,	/* no superblock: bad magic, checksum or
				 * version, or a device smaller than one */
	SXM_META_ST_ZEROES,	/* blank: all zeroes */
	SXM_META_ST_BLANK,	/* blank: a superblock without SXM_META_BOUND */
	SXM_META_ST_BOUND,	/* a superblock with SXM_META_BOUND */
};

/* What is wrong: of the device and its superblock ... */
#define SXM_META_E_SIZE		(1U << 0)	/* the device is too small */
#define SXM_META_E_MAGIC	(1U << 1)
#define SXM_META_E_VERSION	(1U << 2)	/* unknown */
#define SXM_META_E_CSUM		(1U << 3)
#define SXM_META_E_FLAGS	(1U << 4)	/* unknown flags */
#define SXM_META_E_RESERVED	(1U << 5)	/* nonzero reserved bytes */
#define SXM_META_E_SOURCE_ID	(1U << 6)	/* not NUL-padded */
#define SXM_META_E_REGION_SIZE	(1U << 7)
#define SXM_META_E_GEOMETRY	(1U << 8)	/* nr_regions, len_sectors */
/* ... and of a map block (MAGIC, CSUM and RESERVED too) */
#define SXM_META_E_READ		(1U << 9)	/* could not be read */
#define SXM_META_E_BLOCKNR	(1U << 10)	/* names another block */
#define SXM_META_E_META_ID	(1U << 11)	/* another binding's */
#define SXM_META_E_TAIL		(1U << 12)	/* bits past nr_regions */

/* A map block with one of these is read as all ones, as the kernel does. */
#define SXM_META_E_BAD_BLOCK \
	(SXM_META_E_READ | SXM_META_E_CSUM | SXM_META_E_MAGIC | \
	 SXM_META_E_BLOCKNR | SXM_META_E_META_ID)

/* The superblock in host byte order. */
struct sxm_meta_super {
	uint32_t csum;
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint64_t seq;
	uint64_t meta_id;
	uint64_t region_sectors;
	uint64_t nr_regions;
	uint64_t len_sectors;
	uint64_t track_id;
	uint64_t clean_time;
	uint64_t bound_time;
	char source_id[SXM_META_SOURCE_ID_LEN + 1];	/* up to its first NUL */
};

/* A map block with a problem. */
struct sxm_meta_bad {
	uint64_t blocknr;
	unsigned int errs;		/* SXM_META_E_* */
};

/* A metadata device as sxm_meta_read() found it. */
struct sxm_meta {
	uint64_t dev_bytes;
	enum sxm_meta_state state;
	struct sxm_meta_super sb;	/* as read (nothing, if state is BAD) */
	unsigned int sb_errs;		/* SXM_META_E_* of device and superblock */
	/*
	 * Read when the superblock is bound and the device holds the whole
	 * map: map_blocks blocks into @map, nr_regions bits with the regions
	 * of every bad block set.  Else @map is NULL.
	 */
	uint64_t map_blocks;
	uint64_t *map;
	uint64_t bad_blocks;		/* those read as all ones */
	struct sxm_meta_bad *bad;	/* every map block with a problem */
	size_t nr_bad;
	/* Every problem, one line each ("map block 3: bad checksum ..."). */
	struct sxm_buf problems;
	size_t nr_problems;
};

/* The bytes a metadata device needs for @nr_regions: SXM_META_BYTES(). */
uint64_t sxm_meta_bytes(uint64_t nr_regions);
/* The regions the map of a device of @dev_bytes has room for. */
uint64_t sxm_meta_room(uint64_t dev_bytes);

/*
 * The checksum a map block (SXM_META_BLOCK_SIZE bytes) must hold, and a
 * superblock (of its bytes 4..SXM_META_SB_CSUM_END - 1).
 */
uint32_t sxm_meta_csum(const void *block);
uint32_t sxm_meta_sb_csum(const void *block);
/* @block becomes a blank superblock: magic, version, checksum, zeroes. */
void sxm_meta_blank(void *block);
/* Superblock @block decoded as it is, nothing checked. */
void sxm_meta_decode(const void *block, struct sxm_meta_super *sb);

/*
 * Open the metadata device at @path: a block device or a regular file,
 * O_DIRECT where the file system allows it (the kernel's writes bypass
 * the page cache).  For reading, or with @write for writing block 0:
 * O_SYNC, and O_EXCL on a block device (-EBUSY: it is in use, by a loaded
 * table or a mount).  -EINVAL: neither a file nor a block device.
 * *@bytes: its size.
 */
int sxm_meta_open(const char *path, bool write, int *fd, uint64_t *bytes);
/* A block buffer aligned for O_DIRECT, zeroed; free() it.  Or NULL. */
void *sxm_meta_block_alloc(void);
/* Read or write block @nr (a write is on stable storage on return). */
int sxm_meta_read_block(int fd, uint64_t nr, void *block);
int sxm_meta_write_block(int fd, uint64_t nr, const void *block);

/*
 * Read the device open on @fd (of @dev_bytes) and check all of it: the
 * superblock, and when it is bound every map block.  -errno only when
 * block 0 cannot be read or memory runs out; a problem of the content is
 * in @m.  sxm_meta_free() it either way.
 */
int sxm_meta_read(int fd, uint64_t dev_bytes, struct sxm_meta *m);
void sxm_meta_free(struct sxm_meta *m);

/* What the load of a table would find on a metadata device (sxm_meta_fit()). */
struct sxm_meta_fit {
	enum sxm_meta_state state;	/* what block 0 holds */
	struct sxm_meta_super sb;	/* its superblock, if it has one */
	bool bind;			/* the load binds it anew: a new track */
	/* Bound for another source or geometry (NULL: no): what, even when
	 * @reset lets the load bind it anew over that map. */
	const char *foreign;
};

/*
 * Whether a table's load would take the metadata device at @path for a
 * target of @len_sectors, regions of @region_sectors and source id
 * @source_id (@reset: with metadata_reset), checked as the kernel checks
 * it (kernel/dm-sxm-meta.c, meta_check_sb()): 0 with what it holds in
 * @fit, or -errno with the reason in @why, one line naming @path, saying
 * what to do.  Reads the superblock only.
 */
int sxm_meta_fit(const char *path, uint64_t len_sectors,
		 uint64_t region_sectors, const char *source_id, bool reset,
		 struct sxm_meta_fit *fit, char *why, size_t len);

/* A short name for one SXM_META_E_* bit ("bad checksum"). */
const char *sxm_meta_err_name(unsigned int bit);

/* A run of regions set in the map, and the bytes of the target it covers. */
struct sxm_meta_extent {
	uint64_t first_region;
	uint64_t nr_regions;
	uint64_t offset;
	uint64_t len;
};

/*
 * The regions set in @m's map as runs (*@out malloc'd, NULL for none),
 * adjacent regions merged also across map blocks; a run's bytes end at the
 * target's end (len_sectors).  -EINVAL if no map was read or its region
 * size is bad, -ENOMEM.
 */
int sxm_meta_extents(const struct sxm_meta *m, struct sxm_meta_extent **out,
		     size_t *nr);

#endif /* SXM_META_H */
