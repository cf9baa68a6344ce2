// SPDX-License-Identifier: GPL-2.0
/*
 * meta_tool: what tests/vm/76-metadata.sh needs to look at and damage a
 * metadata device (include/uapi/linux/dm-sxm-metadata.h) and to read a
 * target's track id, independently of sxm-ctl.
 *
 *   meta_tool track DMNAME            the target's track_id (observer attach)
 *   meta_tool mark DMNAME FIRST LAST  attach as the helper and mark regions
 *                                     FIRST..LAST dirty (SXM_IOC_MARK_DIRTY);
 *                                     prints how many were newly marked
 *   meta_tool sb DEV                  the superblock: "field value" lines
 *   meta_tool sb-set DEV FIELD VALUE  set a superblock field (version, flags,
 *                                     region_sectors, track_id), checksum
 *                                     made good again
 *   meta_tool flip DEV BLOCK OFFSET   invert one byte (checksum left bad)
 *   meta_tool bits DEV                the regions set in the map, as runs
 *                                     "FIRST-LAST"; "bad K" for a map block
 *                                     that fails its checks
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <linux/dm-sxm.h>
#include <linux/dm-sxm-metadata.h>

#define BS SXM_META_BLOCK_SIZE

static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = ~0U;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xEDB88320U : c >> 1;
	}
	return ~c;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* O_DIRECT: the kernel writes the device under the page cache. */
static void rw_block(int fd, uint64_t k, void *buf, int write)
{
	static void *bounce;
	ssize_t n;

	if (!bounce && posix_memalign(&bounce, BS, BS))
		die("posix_memalign");
	if (write)
		memcpy(bounce, buf, BS);
	n = write ? pwrite(fd, bounce, BS, k * BS) :
		    pread(fd, bounce, BS, k * BS);
	if (n != BS)
		die(write ? "pwrite" : "pread");
	if (write && fsync(fd))
		die("fsync");
	if (!write)
		memcpy(buf, bounce, BS);
}

/* The superblock's checksum covers bytes 4..511, a map block's 4..4095. */
static void reseal_sb(void *block)
{
	*(uint32_t *)block = htole32(crc32((uint8_t *)block + 4,
					   SXM_META_SB_CSUM_END - 4));
}

/* Attach to /dev/mapper/@name as @a asks; the file. */
static int attach(const char *name, struct sxm_attach *a)
{
	char path[256];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	if (stat(path, &st))
		die(path);
	a->dev_major = major(st.st_rdev);
	a->dev_minor = minor(st.st_rdev);
	fd = open("/dev/dm-sxm", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, SXM_IOC_ATTACH, a))
		die("attach");
	return fd;
}

static int cmd_track(const char *name)
{
	struct sxm_attach a = { .size = sizeof(a), .flags = SXM_ATTACH_OBSERVER };

	attach(name, &a);
	printf("%" PRIu64 "\n", (uint64_t)a.track_id);
	return 0;
}

static int cmd_mark(const char *name, uint64_t first, uint64_t last)
{
	struct sxm_attach a = { .size = sizeof(a),
				.features = SXM_F_TRACK | SXM_F_MARK_DIRTY };
	struct sxm_regions rg = { .size = sizeof(rg) };
	uint64_t *map, r;
	size_t bytes;
	int fd = attach(name, &a);

	if (first > last || last >= a.nr_regions) {
		fprintf(stderr, "meta_tool: regions %" PRIu64 "..%" PRIu64 " of %" PRIu64 "\n",
			first, last, (uint64_t)a.nr_regions);
		return 2;
	}
	bytes = (a.nr_regions + 63) / 64 * 8;
	map = calloc(1, bytes);
	if (!map)
		die("calloc");
	for (r = first; r <= last; r++)
		map[r / 64] |= htole64(1ULL << (r % 64));
	rg.bitmap_ptr = (uintptr_t)map;
	rg.bitmap_bytes = bytes;
	if (ioctl(fd, SXM_IOC_MARK_DIRTY, &rg))
		die("mark dirty");
	printf("%" PRIu64 "\n", (uint64_t)rg.count);
	return 0;
}

static int cmd_sb(int fd)
{
	struct sxm_meta_sb sb;

	rw_block(fd, 0, &sb, 0);
	printf("csum_ok %d\n", le32toh(sb.csum) ==
	       crc32((uint8_t *)&sb + 4, SXM_META_SB_CSUM_END - 4));
	printf("version %u\nflags %u\nseq %" PRIu64 "\nregion_sectors %" PRIu64
	       "\nnr_regions %" PRIu64 "\nlen_sectors %" PRIu64
	       "\ntrack_id %" PRIu64 "\nclean_time %" PRIu64 "\nsource_id %.*s\n",
	       le32toh(sb.version), le32toh(sb.flags), le64toh(sb.seq),
	       le64toh(sb.region_sectors), le64toh(sb.nr_regions),
	       le64toh(sb.len_sectors), le64toh(sb.track_id),
	       le64toh(sb.clean_time), SXM_META_SOURCE_ID_LEN, sb.source_id);
	return 0;
}

static int cmd_sb_set(int fd, const char *field, const char *value)
{
	uint64_t v = strtoull(value, NULL, 0);
	struct sxm_meta_sb sb;

	rw_block(fd, 0, &sb, 0);
	if (!strcmp(field, "version"))
		sb.version = htole32(v);
	else if (!strcmp(field, "flags"))
		sb.flags = htole32(v);
	else if (!strcmp(field, "region_sectors"))
		sb.region_sectors = htole64(v);
	else if (!strcmp(field, "track_id"))
		sb.track_id = htole64(v);
	else
		return fprintf(stderr, "unknown field %s\n", field), 2;
	reseal_sb(&sb);
	rw_block(fd, 0, &sb, 1);
	return 0;
}

static int cmd_flip(int fd, uint64_t k, unsigned int off)
{
	uint8_t b[BS];

	if (off >= BS)
		return fprintf(stderr, "offset past the block\n"), 2;
	rw_block(fd, k, b, 0);
	b[off] ^= 0xff;
	rw_block(fd, k, b, 1);
	return 0;
}

static int cmd_bits(int fd)
{
	struct sxm_meta_sb sb;
	uint64_t nr, r, k, run = UINT64_MAX, meta_id;
	uint8_t b[BS];

	rw_block(fd, 0, &sb, 0);
	nr = le64toh(sb.nr_regions);
	meta_id = le64toh(sb.meta_id);
	for (k = 0; k < SXM_META_MAP_BLOCKS(nr); k++) {
		struct sxm_meta_map_hdr *h = (void *)b;
		uint64_t *w = (void *)(b + SXM_META_MAP_HDR_SIZE);

		rw_block(fd, 1 + k, b, 0);
		if (le32toh(h->csum) != crc32(b + 4, BS - 4) ||
		    le32toh(h->magic) != SXM_META_MAP_MAGIC ||
		    le64toh(h->blocknr) != 1 + k ||
		    le64toh(h->meta_id) != meta_id) {
			printf("bad %" PRIu64 "\n", k);
			continue;
		}
		for (r = 0; r < SXM_META_REGIONS_PER_BLOCK; r++) {
			uint64_t g = k * SXM_META_REGIONS_PER_BLOCK + r;
			int set = g < nr && (le64toh(w[r / 64]) >> (r % 64) & 1);

			if (set && run == UINT64_MAX)
				run = g;
			if (!set && run != UINT64_MAX) {
				printf("%" PRIu64 "-%" PRIu64 "\n", run, g - 1);
				run = UINT64_MAX;
			}
		}
	}
	if (run != UINT64_MAX)
		printf("%" PRIu64 "-%" PRIu64 "\n", run,
		       (uint64_t)(SXM_META_MAP_BLOCKS(nr) * SXM_META_REGIONS_PER_BLOCK - 1));
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc == 3 && !strcmp(argv[1], "track"))
		return cmd_track(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "mark"))
		return cmd_mark(argv[2], strtoull(argv[3], NULL, 0),
				strtoull(argv[4], NULL, 0));
	if (argc < 3)
		goto usage;
	fd = open(argv[2], O_RDWR | O_CLOEXEC | O_DIRECT);
	if (fd < 0)
		die(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "sb"))
		return cmd_sb(fd);
	if (argc == 5 && !strcmp(argv[1], "sb-set"))
		return cmd_sb_set(fd, argv[3], argv[4]);
	if (argc == 5 && !strcmp(argv[1], "flip"))
		return cmd_flip(fd, strtoull(argv[3], NULL, 0),
				strtoul(argv[4], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "bits"))
		return cmd_bits(fd);
usage:
	fprintf(stderr, "usage: meta_tool track DMNAME | mark DMNAME FIRST LAST | sb DEV | sb-set DEV FIELD VALUE | flip DEV BLOCK OFFSET | bits DEV\n");
	return 2;
}
