// SPDX-License-Identifier: GPL-2.0
/*
 * base/meta.c, the metadata device's format (include/uapi/linux/
 * dm-sxm-metadata.h), natively on memory files: CRC-32 against zlib's
 * known values, SXM_META_BYTES and the room a size gives, a blank
 * superblock, and a bound device read into a region map the way the
 * kernel reads it: good blocks as they are, a bad block (checksum, block
 * number, meta_id) all set, bits past the last region never in the map,
 * each problem said once; the runs of regions cut at the target's end.
 * tests/native/24-metadata.sh tests the commands on devices built by an
 * independent generator.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "base/bitmap.h"
#include "base/meta.h"

#include "kselftest_harness.h"

#define BLOCK	SXM_META_BLOCK_SIZE
#define PER	SXM_META_REGIONS_PER_BLOCK
#define META_ID	0x0123456789abcdefULL

/* A memory file holding @len bytes of @data. */
static int memfile(const void *data, size_t len)
{
	int fd = memfd_create("sxm-meta", MFD_CLOEXEC);

	if (fd < 0 || sxm_pwrite_all(fd, data, len, 0)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void seal(void *block)
{
	*(uint32_t *)block = htole32(sxm_meta_csum(block));
}

/*
 * A bound device of @nr regions of @rs sectors, @len sectors, with the
 * regions in @bits set (-1 ends the list); its blocks in one buffer.
 */
static unsigned char *build(uint64_t nr, uint64_t rs, uint64_t len,
			    const int64_t *bits, size_t *size)
{
	uint64_t blocks = sxm_meta_bytes(nr) / BLOCK, b;
	unsigned char *dev = calloc(blocks, BLOCK);
	struct sxm_meta_sb *sb = (struct sxm_meta_sb *)dev;

	if (!dev)
		return NULL;
	sb->magic = htole32(SXM_META_SB_MAGIC);
	sb->version = htole32(SXM_META_VERSION);
	sb->flags = htole32(SXM_META_BOUND);
	sb->meta_id = htole64(META_ID);
	sb->region_sectors = htole64(rs);
	sb->nr_regions = htole64(nr);
	sb->len_sectors = htole64(len);
	sb->track_id = htole64(1);
	*(uint32_t *)sb = htole32(sxm_meta_sb_csum(sb));
	for (b = 1; b < blocks; b++) {
		struct sxm_meta_map_hdr *h = (void *)(dev + b * BLOCK);

		h->magic = htole32(SXM_META_MAP_MAGIC);
		h->blocknr = htole64(b);
		h->meta_id = htole64(META_ID);
	}
	for (; bits && *bits >= 0; bits++) {
		uint64_t r = *bits, blk = 1 + r / PER, i = r % PER;

		dev[blk * BLOCK + SXM_META_MAP_HDR_SIZE + i / 8] |= 1 << (i % 8);
	}
	for (b = 1; b < blocks; b++)
		seal(dev + b * BLOCK);
	*size = blocks * BLOCK;
	return dev;
}

/* Read @dev (@size bytes) as a device. */
static int read_mem(const void *dev, size_t size, struct sxm_meta *m)
{
	int fd = memfile(dev, size), r;

	if (fd < 0)
		return -errno;
	r = sxm_meta_read(fd, size, m);
	close(fd);
	return r;
}

TEST(crc32_is_zlibs)
{
	static const char fox[] = "The quick brown fox jumps over the lazy dog";

	EXPECT_EQ(0U, sxm_crc32(0, "", 0));
	EXPECT_EQ(0xcbf43926U, sxm_crc32(0, "123456789", 9));
	EXPECT_EQ(0x414fa339U, sxm_crc32(0, fox, strlen(fox)));
	/* Carried on over a second piece: the same as in one go. */
	EXPECT_EQ(0x414fa339U, sxm_crc32(sxm_crc32(0, fox, 10), fox + 10,
					 strlen(fox) - 10));
}

TEST(bytes_and_room)
{
	static const uint64_t nrs[] = { 1, 2, PER - 1, PER, PER + 1,
					2 * PER, 2 * PER + 1, 1000000,
					1ULL << 32 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(nrs); i++) {
		uint64_t bytes = sxm_meta_bytes(nrs[i]);

		EXPECT_EQ(SXM_META_BYTES(nrs[i]), bytes)
			TH_LOG("%llu regions", (unsigned long long)nrs[i]);
		/* Enough, and one byte less is not. */
		EXPECT_LE(nrs[i], sxm_meta_room(bytes));
		EXPECT_GT(nrs[i], sxm_meta_room(bytes - 1));
	}
	EXPECT_EQ(8192U, sxm_meta_bytes(PER));
	EXPECT_EQ(12288U, sxm_meta_bytes(PER + 1));
	/* No overflow where the macro's nr + 32255 would wrap. */
	EXPECT_EQ((2 + UINT64_MAX / PER) * BLOCK, sxm_meta_bytes(UINT64_MAX));
	EXPECT_EQ(0U, sxm_meta_room(BLOCK));
	EXPECT_EQ(UINT64_MAX, sxm_meta_room(UINT64_MAX));
}

TEST(blank_and_zeroes)
{
	unsigned char dev[2 * BLOCK] = { 0 };
	struct sxm_meta_super sb;
	struct sxm_meta m;

	ASSERT_EQ(0, read_mem(dev, sizeof(dev), &m));
	EXPECT_EQ(SXM_META_ST_ZEROES, m.state);
	EXPECT_EQ(0U, m.nr_problems);
	EXPECT_EQ(NULL, m.map);
	sxm_meta_free(&m);

	sxm_meta_blank(dev);
	sxm_meta_decode(dev, &sb);
	EXPECT_EQ(SXM_META_SB_MAGIC, sb.magic);
	EXPECT_EQ(SXM_META_VERSION, sb.version);
	EXPECT_EQ(0U, sb.flags);
	EXPECT_EQ(sxm_meta_sb_csum(dev), sb.csum);
	ASSERT_EQ(0, read_mem(dev, sizeof(dev), &m));
	EXPECT_EQ(SXM_META_ST_BLANK, m.state);
	EXPECT_EQ(0U, m.nr_problems);
	sxm_meta_free(&m);

	/* One block: blank, but too small to bind; less: no superblock. */
	ASSERT_EQ(0, read_mem(dev, BLOCK, &m));
	EXPECT_EQ(SXM_META_ST_BLANK, m.state);
	EXPECT_EQ(SXM_META_E_SIZE, m.sb_errs);
	sxm_meta_free(&m);
	ASSERT_EQ(0, read_mem(dev, 100, &m));
	EXPECT_EQ(SXM_META_ST_BAD, m.state);
	EXPECT_EQ(SXM_META_E_SIZE, m.sb_errs);
	EXPECT_EQ(1U, m.nr_problems);
	sxm_meta_free(&m);
}

TEST(map_as_the_kernel_reads_it)
{
	static const int64_t bits[] = { 0, 63, 64, PER - 1, PER, PER + 99, -1 };
	uint64_t nr = PER + 100, r;
	struct sxm_meta m;
	unsigned char *dev;
	size_t size;

	dev = build(nr, 8, nr * 8, bits, &size);
	ASSERT_NE(NULL, dev);
	ASSERT_EQ(0, read_mem(dev, size, &m));
	EXPECT_EQ(SXM_META_ST_BOUND, m.state);
	EXPECT_EQ(0U, m.nr_problems);
	EXPECT_EQ(2U, m.map_blocks);
	ASSERT_NE(NULL, m.map);
	EXPECT_EQ(6U, sxm_map_weight(m.map, nr));
	for (r = 0; bits[r] >= 0; r++)
		EXPECT_TRUE(sxm_map_test(m.map, bits[r]));
	sxm_meta_free(&m);

	/* A bit past the last region: said, never in the map. */
	dev[2 * BLOCK + SXM_META_MAP_HDR_SIZE + 100 / 8] |= 1 << (100 % 8);
	seal(dev + 2 * BLOCK);
	ASSERT_EQ(0, read_mem(dev, size, &m));
	EXPECT_EQ(1U, m.nr_problems);
	ASSERT_EQ(1U, m.nr_bad);
	EXPECT_EQ(SXM_META_E_TAIL, m.bad[0].errs);
	EXPECT_EQ(0U, m.bad_blocks);
	EXPECT_FALSE(sxm_map_tail_set(m.map, nr));
	EXPECT_EQ(6U, sxm_map_weight(m.map, nr));
	sxm_meta_free(&m);

	/* Block 1 from another binding: all its regions set; block 2 kept. */
	((struct sxm_meta_map_hdr *)(dev + BLOCK))->meta_id = htole64(7);
	seal(dev + BLOCK);
	ASSERT_EQ(0, read_mem(dev, size, &m));
	EXPECT_EQ(1U, m.bad_blocks);
	ASSERT_EQ(2U, m.nr_bad);
	EXPECT_EQ(1U, m.bad[0].blocknr);
	EXPECT_EQ(SXM_META_E_META_ID, m.bad[0].errs);
	EXPECT_EQ(PER + 2, sxm_map_weight(m.map, nr));
	EXPECT_EQ(PER + 1, sxm_map_find(m.map, nr, 0, false));
	sxm_meta_free(&m);

	/* Torn: a bad checksum and nothing more about that block. */
	dev[BLOCK + 2000] ^= 1;
	ASSERT_EQ(0, read_mem(dev, size, &m));
	ASSERT_EQ(2U, m.nr_bad);
	EXPECT_EQ(SXM_META_E_CSUM, m.bad[0].errs);
	EXPECT_EQ(2U, m.nr_problems);
	sxm_meta_free(&m);
	free(dev);
}

TEST(extents_end_at_the_target)
{
	static const int64_t bits[] = { 1, 2, 3, 9, -1 };
	struct sxm_meta_extent *ext;
	struct sxm_meta m;
	unsigned char *dev;
	size_t size, n;

	/* 10 regions of 8 sectors, the last 3 sectors long. */
	dev = build(10, 8, 75, bits, &size);
	ASSERT_NE(NULL, dev);
	ASSERT_EQ(0, read_mem(dev, size, &m));
	ASSERT_EQ(0, sxm_meta_extents(&m, &ext, &n));
	ASSERT_EQ(2U, n);
	EXPECT_EQ(1U, ext[0].first_region);
	EXPECT_EQ(3U, ext[0].nr_regions);
	EXPECT_EQ(4096U, ext[0].offset);
	EXPECT_EQ(3 * 4096U, ext[0].len);
	EXPECT_EQ(9U, ext[1].first_region);
	EXPECT_EQ(1U, ext[1].nr_regions);
	EXPECT_EQ(9 * 4096U, ext[1].offset);
	EXPECT_EQ(3 * 512U, ext[1].len);
	free(ext);
	sxm_meta_free(&m);
	free(dev);

	/* len_sectors short of the regions: said, and no region lost. */
	dev = build(10, 8, 40, bits, &size);
	ASSERT_NE(NULL, dev);
	ASSERT_EQ(0, read_mem(dev, size, &m));
	EXPECT_EQ(SXM_META_E_GEOMETRY, m.sb_errs);
	ASSERT_EQ(0, sxm_meta_extents(&m, &ext, &n));
	ASSERT_EQ(2U, n);
	EXPECT_EQ(4096U, ext[1].len);
	free(ext);
	sxm_meta_free(&m);
	free(dev);
}

TEST_HARNESS_MAIN
