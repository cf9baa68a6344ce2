/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * dm-sxm: the on-disk format of the metadata device (the persistent
 * write-intent map), shared by the kernel target and sxm-ctl's "metadata"
 * commands.  Documentation/admin-guide/device-mapper/dm-sxm.rst describes
 * how the target uses it.
 *
 * The device is an array of 4096-byte blocks, every field little-endian:
 *
 *   block 0            the superblock (struct sxm_meta_sb)
 *   blocks 1..nr_map   the map: block 1 + k holds regions
 *                      [k * SXM_META_REGIONS_PER_BLOCK,
 *                       (k + 1) * SXM_META_REGIONS_PER_BLOCK) after a
 *                      struct sxm_meta_map_hdr, as little-endian __u64
 *                      words: region r is bit (r % 64) of word (r / 64) of
 *                      the block's part of the map
 *
 * where nr_map = ceil(nr_regions / SXM_META_REGIONS_PER_BLOCK).  So the
 * device must hold at least SXM_META_BYTES(nr_regions) bytes.
 *
 * Every block carries a CRC-32 (the one of zlib and of Ethernet: reflected
 * polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF) in its
 * first four bytes: a map block's of its bytes 4..4095, the superblock's
 * of its bytes 4..511 (SXM_META_SB_CSUM_END), which hold all its fields
 * (the rest is zero), so that a device that writes a 512-byte sector
 * atomically can never tear a superblock in a power cut.  A map block also names its own
 * block number and the metadata device's meta_id, so that a block written
 * to the wrong place or left from an earlier binding is never taken for
 * this one's.
 *
 * States of the superblock:
 *
 *   all zeroes, or a valid superblock without SXM_META_BOUND
 *      blank: "sxm-ctl metadata format" made it so.  The first table that
 *      loads it binds it to its source (geometry, source_id, a new meta_id)
 *      and writes every map block empty.
 *   SXM_META_BOUND
 *      the map is of the target with this geometry and source_id.
 *      track_id != 0: the map holds every region written since that track
 *      started (a superset: write intent), so a helper whose saved track_id
 *      is that one copies only those regions.  track_id == 0: no track; the
 *      map means nothing.
 *   SXM_META_CLEAN
 *      set when the target was suspended or removed with nothing in flight
 *      (clean_time then), cleared before the first write after a resume.
 *      Informational: the map is a superset of what changed either way.
 *
 * A map block that fails its checks (CRC, magic, block number, meta_id: a
 * write torn by a power cut) or cannot be read (a bad sector) is read as
 * all ones: every region it covers is copied again, none is lost.  Its
 * reserved bytes and its bits past the last region are ignored (and must
 * be zero).  source_id holds at most 127 characters and a NUL.
 */
#ifndef _UAPI_LINUX_DM_SXM_METADATA_H
#define _UAPI_LINUX_DM_SXM_METADATA_H

#include <linux/types.h>

#define SXM_META_BLOCK_SIZE		4096
#define SXM_META_SB_MAGIC		0x4253584dU	/* "MXSB" on disk */
#define SXM_META_MAP_MAGIC		0x504d584dU	/* "MXMP" on disk */
#define SXM_META_VERSION		1

/* struct sxm_meta_sb.flags */
#define SXM_META_BOUND			(1U << 0)
#define SXM_META_CLEAN			(1U << 1)
#define SXM_META_FLAGS			(SXM_META_BOUND | SXM_META_CLEAN)

#define SXM_META_SOURCE_ID_LEN		128	/* with its NUL padding */
#define SXM_META_SB_CSUM_END		512

struct sxm_meta_sb {
	__le32 csum;			/* CRC-32 of bytes 4..511 */
	__le32 magic;			/* SXM_META_SB_MAGIC */
	__le32 version;			/* SXM_META_VERSION */
	__le32 flags;			/* SXM_META_* */
	__le64 seq;			/* +1 at every superblock write */
	__le64 meta_id;			/* random, chosen when bound */
	__le64 region_sectors;		/* of the target bound */
	__le64 nr_regions;
	__le64 len_sectors;		/* the target's length */
	__le64 track_id;		/* see above; 0: no track */
	__le64 clean_time;		/* seconds since the epoch, last clean */
	__le64 bound_time;		/* seconds since the epoch, when bound */
	char source_id[SXM_META_SOURCE_ID_LEN];	/* NUL-padded, may be "" */
	__u8 reserved[3888];		/* zero */
};

#define SXM_META_MAP_HDR_SIZE		64

struct sxm_meta_map_hdr {
	__le32 csum;			/* CRC-32 of bytes 4..4095 of the block */
	__le32 magic;			/* SXM_META_MAP_MAGIC */
	__le64 blocknr;			/* its own block number (1, 2, ...) */
	__le64 meta_id;			/* the superblock's */
	__u8 reserved[40];		/* zero */
};

#define SXM_META_WORDS_PER_BLOCK \
	((SXM_META_BLOCK_SIZE - SXM_META_MAP_HDR_SIZE) / 8)	/* 504 */
#define SXM_META_REGIONS_PER_BLOCK	(SXM_META_WORDS_PER_BLOCK * 64)	/* 32256 */

/* Map blocks for @nr regions, and the bytes the device needs. */
#define SXM_META_MAP_BLOCKS(nr) \
	(((__u64)(nr) + SXM_META_REGIONS_PER_BLOCK - 1) / \
	 SXM_META_REGIONS_PER_BLOCK)
#define SXM_META_BYTES(nr) \
	((1 + SXM_META_MAP_BLOCKS(nr)) * (__u64)SXM_META_BLOCK_SIZE)

#endif /* _UAPI_LINUX_DM_SXM_METADATA_H */
