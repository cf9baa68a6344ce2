// SPDX-License-Identifier: GPL-2.0
/*
 * Changed-region tracking and the /dev/dm-sxm ABI, against the real target.
 *
 * Proves: the harvested map is exactly the set of regions written (no region
 * missing, none extra) for writes of every kind and shape; a write racing
 * harvests is in exactly one harvested map, and its data is on the source
 * when the harvest that holds it returns; harvested regions stay held until
 * acknowledged, also across the helper's death; the map survives a reload;
 * and the kernel refuses every malformed or hostile ioctl without losing a
 * bit.
 *
 * Needs: SXM_TEST_SOURCE, a scratch block device of at least 64 MiB (its
 * contents are destroyed), dmsetup, and dm-sxm loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-sxm.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../../.cache/linux-source/tools/testing/selftests/kselftest_harness.h"
#include "dm_status.h"

#define DM_NAME		"sxm-track-test"
#define DM_PATH		"/dev/mapper/" DM_NAME
#define REGION		4096ULL		/* 8 sectors */
#define DEV_BYTES	(64ULL << 20)
#define NR_REGIONS	(DEV_BYTES / REGION)
#define MAP_WORDS	((NR_REGIONS + 63) / 64)

_Static_assert(sizeof(struct sxm_features) == SXM_FEATURES_SIZE, "abi");
_Static_assert(sizeof(struct sxm_attach) == SXM_ATTACH_SIZE, "abi");
_Static_assert(sizeof(struct sxm_harvest) == SXM_HARVEST_SIZE, "abi");
_Static_assert(sizeof(struct sxm_regions) == SXM_REGIONS_SIZE, "abi");
_Static_assert(sizeof(struct sxm_info) == SXM_INFO_SIZE, "abi");

static const char *source(void)
{
	const char *s = getenv("SXM_TEST_SOURCE");

	return s ? s : "/dev/ram0";
}

static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int dm_create(const char *mode, unsigned int region_sectors)
{
	return run("dmsetup create " DM_NAME " --table '0 %llu sxm %s %u 1 %s'",
		   DEV_BYTES >> 9, source(), region_sectors, mode);
}

static void dm_remove(void)
{
	dm_remove_leftover(DM_NAME);
}

static dev_t dm_devt(void)
{
	struct stat st;

	if (stat(DM_PATH, &st))
		return 0;
	return st.st_rdev;
}

static int attach(int fd, __u32 flags, struct sxm_attach *out)
{
	struct sxm_attach a = { .size = sizeof(a), .flags = flags };
	dev_t d = dm_devt();
	int r;

	a.dev_major = major(d);
	a.dev_minor = minor(d);
	a.features = SXM_F_TRACK | SXM_F_MARK_DIRTY;
	r = ioctl(fd, SXM_IOC_ATTACH, &a);
	if (out)
		*out = a;
	return r;
}

static int harvest(int fd, uint64_t *map, __u32 flags, struct sxm_harvest *out)
{
	struct sxm_harvest h = { .size = sizeof(h), .flags = flags };
	int r;

	memset(map, 0, MAP_WORDS * 8);
	h.bitmap_ptr = (uintptr_t)map;
	h.bitmap_bytes = MAP_WORDS * 8;
	r = ioctl(fd, SXM_IOC_HARVEST, &h);
	if (out)
		*out = h;
	return r;
}

/* Acknowledge @map (or, if NULL, everything held); returns count or -1. */
static long long ack(int fd, const uint64_t *map)
{
	struct sxm_regions a = { .size = sizeof(a) };

	if (map) {
		a.bitmap_ptr = (uintptr_t)map;
		a.bitmap_bytes = MAP_WORDS * 8;
	} else {
		a.flags = SXM_REGIONS_ALL;
	}
	if (ioctl(fd, SXM_IOC_ACK, &a))
		return -1;
	return a.count;
}

/* Harvest and acknowledge at once: the regions changed since last time. */
static int harvest_ack(int fd, uint64_t *map, struct sxm_harvest *out)
{
	int r = harvest(fd, map, 0, out);

	if (!r && ack(fd, map) < 0)
		r = -1;
	return r;
}

static int test_bit64(const uint64_t *map, uint64_t r)
{
	return (map[r / 64] >> (r % 64)) & 1;
}

static void set_bit64(uint64_t *map, uint64_t r)
{
	map[r / 64] |= 1ULL << (r % 64);
}

static uint64_t count_bits(const uint64_t *map)
{
	uint64_t n = 0, i;

	for (i = 0; i < MAP_WORDS; i++)
		n += __builtin_popcountll(map[i]);
	return n;
}

/* Write @len bytes of @byte at @off through the sxm device, O_DIRECT. */
static int pwrite_direct(int fd, uint64_t off, size_t len, int byte)
{
	void *buf;
	ssize_t n;

	if (posix_memalign(&buf, 4096, len < 4096 ? 4096 : len))
		return -1;
	memset(buf, byte, len);
	n = pwrite(fd, buf, len, off);
	free(buf);
	return n == (ssize_t)len ? 0 : -1;
}

FIXTURE(sxm) {
	int ctl;	/* /dev/dm-sxm, attached as helper */
	int dev;	/* the sxm device, O_DIRECT */
	uint64_t *map;
};

FIXTURE_SETUP(sxm)
{
	uint64_t zero_all[2] = { 0, DEV_BYTES };
	int src;

	dm_remove();
	src = open(source(), O_RDWR);
	ASSERT_LE(0, src);
	ASSERT_EQ(0, ioctl(src, BLKZEROOUT, zero_all));
	close(src);
	ASSERT_EQ(0, dm_create("track", REGION >> 9));
	self->dev = open(DM_PATH, O_RDWR | O_DIRECT);
	ASSERT_LE(0, self->dev);
	self->ctl = open("/dev/" SXM_MISC_NAME, O_RDWR);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, attach(self->ctl, 0, NULL));
	self->map = calloc(MAP_WORDS, 8);
	ASSERT_NE(NULL, self->map);
	/* Start from an empty map. */
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, NULL));
}

FIXTURE_TEARDOWN(sxm)
{
	close(self->ctl);
	close(self->dev);
	free(self->map);
	dm_remove();
}

TEST(features)
{
	struct sxm_features f = { .size = sizeof(f) };
	int fd = open("/dev/" SXM_MISC_NAME, O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SXM_IOC_GET_FEATURES, &f));
	EXPECT_EQ(SXM_ABI_VERSION, f.abi_version);
	/* ABI 2: the bits without a gap, every one of them this kernel's. */
	EXPECT_EQ(SXM_F_TRACK | SXM_F_MARK_DIRTY | SXM_F_TRACK_ID | SXM_F_HOLD |
		  SXM_F_EVENTS | SXM_F_MIRROR, f.features);
	EXPECT_EQ(0x3fULL, f.features);
	EXPECT_EQ(SXM_MIN_REGION_SECTORS, f.min_region_sectors);
	EXPECT_EQ(SXM_MAX_REGION_SECTORS, f.max_region_sectors);
	close(fd);
}

/* Known writes of every kind and shape: the map is exactly their regions. */
TEST_F(sxm, exact_map)
{
	uint64_t want[MAP_WORDS] = { 0 };
	uint64_t range[2], r, last = NR_REGIONS - 1;
	struct sxm_harvest h;
	char rbuf[512];
	int rfd;

	/* 512 B at the very start, and 512 B inside region 5. */
	ASSERT_EQ(0, pwrite_direct(self->dev, 0, 512, 0xa1));
	set_bit64(want, 0);
	ASSERT_EQ(0, pwrite_direct(self->dev, 5 * REGION + 512, 512, 0xa2));
	set_bit64(want, 5);
	/* 8 KiB starting mid-region 10: regions 10, 11 and 12. */
	ASSERT_EQ(0, pwrite_direct(self->dev, 10 * REGION + 2048, 8192, 0xa3));
	for (r = 10; r <= 12; r++)
		set_bit64(want, r);
	/* The last 512 bytes of the device. */
	ASSERT_EQ(0, pwrite_direct(self->dev, DEV_BYTES - 512, 512, 0xa4));
	set_bit64(want, last);
	/* Discard regions 100..103, write-zeroes region 200 and half of 201. */
	range[0] = 100 * REGION;
	range[1] = 4 * REGION;
	ASSERT_EQ(0, ioctl(self->dev, BLKDISCARD, range));
	for (r = 100; r <= 103; r++)
		set_bit64(want, r);
	range[0] = 200 * REGION;
	range[1] = REGION + 2048;
	ASSERT_EQ(0, ioctl(self->dev, BLKZEROOUT, range));
	set_bit64(want, 200);
	set_bit64(want, 201);
	/* A flush and a read mark nothing. */
	ASSERT_EQ(0, fsync(self->dev));
	rfd = open(DM_PATH, O_RDONLY);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(512, pread(rfd, rbuf, 512, 300 * REGION));
	close(rfd);

	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(count_bits(want), h.dirty_regions);
	EXPECT_EQ(NR_REGIONS, h.nr_regions);
	for (r = 0; r < NR_REGIONS; r++)
		if (test_bit64(want, r) != test_bit64(self->map, r))
			ksft_print_msg("region %llu: want %d got %d\n",
				       (unsigned long long)r,
				       test_bit64(want, r),
				       test_bit64(self->map, r));
	ASSERT_EQ(0, memcmp(want, self->map, sizeof(want)));

	/* Held until acknowledged: the next harvest returns them again. */
	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	ASSERT_EQ(0, memcmp(want, self->map, sizeof(want)));
	/* Acknowledged: gone. */
	EXPECT_EQ(count_bits(want), ack(self->ctl, self->map));
	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(0, h.dirty_regions);
	EXPECT_EQ(0, count_bits(self->map));
}

/*
 * Held regions: a partial acknowledgement keeps the rest; a helper that
 * dies after a harvest loses nothing to the next one; status shows them.
 */
TEST_F(sxm, held_until_acknowledged)
{
	uint64_t part[MAP_WORDS] = { 0 };
	struct sxm_info info = { .size = sizeof(info) };
	struct sxm_harvest h;
	char st[256], held[32] = "";

	ASSERT_EQ(0, pwrite_direct(self->dev, 20 * REGION, 4096, 1));
	ASSERT_EQ(0, pwrite_direct(self->dev, 21 * REGION, 4096, 1));
	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(2, h.dirty_regions);
	ASSERT_EQ(0, ioctl(self->ctl, SXM_IOC_GET_INFO, &info));
	EXPECT_EQ(2, info.held_regions);
	EXPECT_EQ(0, info.dirty_regions);
	ASSERT_EQ(0, dm_target_status(DM_NAME, "sxm", st, sizeof(st)));
	/* "mode region nr dirty harvests helper held ..." */
	sscanf(st, "%*s %*s %*s %*s %*s %*s %31s", held);
	EXPECT_STREQ("2", held);

	/* Acknowledge region 20 only; 21 comes back with the new write. */
	set_bit64(part, 20);
	EXPECT_EQ(1, ack(self->ctl, part));
	EXPECT_EQ(0, ack(self->ctl, part));
	ASSERT_EQ(0, pwrite_direct(self->dev, 22 * REGION, 4096, 1));
	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(2, h.dirty_regions);
	EXPECT_TRUE(test_bit64(self->map, 21));
	EXPECT_TRUE(test_bit64(self->map, 22));

	/* The helper dies before copying: the next one gets them back. */
	close(self->ctl);
	self->ctl = open("/dev/" SXM_MISC_NAME, O_RDWR);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, attach(self->ctl, 0, NULL));
	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(2, h.dirty_regions);
	EXPECT_TRUE(test_bit64(self->map, 21));
	EXPECT_TRUE(test_bit64(self->map, 22));
	EXPECT_EQ(2, ack(self->ctl, NULL));
}

/* Passthrough marks nothing; tracking again gives a new track_id. */
TEST_F(sxm, passthrough_marks_nothing)
{
	struct sxm_harvest h;
	__u64 id;

	ASSERT_EQ(0, harvest(self->ctl, self->map, SXM_HARVEST_PEEK, &h));
	id = h.track_id;
	EXPECT_NE(0, id);
	ASSERT_EQ(0, run("dmsetup message " DM_NAME " 0 mode passthrough"));
	ASSERT_EQ(0, pwrite_direct(self->dev, 7 * REGION, 4096, 1));
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
	EXPECT_EQ(0, h.dirty_regions);
	EXPECT_EQ(0, h.track_id);
	ASSERT_EQ(0, run("dmsetup message " DM_NAME " 0 mode track"));
	ASSERT_EQ(0, pwrite_direct(self->dev, 9 * REGION, 4096, 1));
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
	EXPECT_EQ(1, h.dirty_regions);
	EXPECT_TRUE(test_bit64(self->map, 9));
	EXPECT_NE(0, h.track_id);
	EXPECT_NE(id, h.track_id);
}

/*
 * Writers race a harvester.  Each region is written exactly once, with a
 * stamp of its own number; every write must appear in exactly one harvest,
 * and when the harvest holding it returns its stamp must be on the source.
 */
#define RACE_WRITERS	4
#define RACE_REGIONS	(NR_REGIONS / 4)

struct race {
	int dev;
	unsigned int id;
	int *finished;		/* writers done, counted atomically */
};

static void *race_writer(void *arg)
{
	struct race *w = arg;
	uint64_t r, i, n = RACE_REGIONS / RACE_WRITERS;
	uint64_t *buf;

	if (posix_memalign((void **)&buf, 4096, REGION))
		return (void *)1;
	for (i = 0; i < n; i++) {
		/* A scattered order, different for each writer. */
		r = ((i * 7919) % n) * RACE_WRITERS + w->id;
		for (size_t k = 0; k < REGION / 8; k++)
			buf[k] = r + 1;
		if (pwrite(w->dev, buf, REGION, r * REGION) != (ssize_t)REGION) {
			free(buf);
			return (void *)1;
		}
	}
	free(buf);
	__atomic_add_fetch(w->finished, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Minutes on a debug kernel (KASAN) under TCG: not the default 30 s. */
TEST_F_TIMEOUT(sxm, race_harvest, 300)
{
	pthread_t th[RACE_WRITERS];
	struct race w[RACE_WRITERS];
	uint8_t *seen = calloc(NR_REGIONS, 1);
	uint64_t *stamp;
	int finished = 0;
	struct sxm_harvest h;
	unsigned int i, done = 0, harvests = 0;
	uint64_t r, total = 0;
	void *ret;
	int src;

	ASSERT_NE(NULL, seen);
	src = open(source(), O_RDONLY | O_DIRECT);
	ASSERT_LE(0, src);
	ASSERT_EQ(0, posix_memalign((void **)&stamp, 4096, 4096));

	for (i = 0; i < RACE_WRITERS; i++) {
		w[i] = (struct race){ .dev = self->dev, .id = i,
				      .finished = &finished };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race_writer, &w[i]));
	}
	while (!done) {
		/* Decided before the harvest, so the last one sees every write. */
		done = __atomic_load_n(&finished, __ATOMIC_SEQ_CST) ==
		       RACE_WRITERS;
		ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
		harvests++;
		for (r = 0; r < NR_REGIONS; r++) {
			if (!test_bit64(self->map, r))
				continue;
			ASSERT_LT(r, RACE_REGIONS);
			ASSERT_EQ(0, seen[r]) {
				TH_LOG("region %llu harvested twice",
				       (unsigned long long)r);
			}
			seen[r] = 1;
			total++;
			/* Its data is on the source now. */
			ASSERT_EQ(4096, pread(src, stamp, 4096, r * REGION));
			ASSERT_EQ(r + 1, stamp[0]);
		}
	}
	for (i = 0; i < RACE_WRITERS; i++) {
		ASSERT_EQ(0, pthread_join(th[i], &ret));
		ASSERT_EQ(NULL, ret);
	}
	EXPECT_EQ(RACE_REGIONS, total);
	ksft_print_msg("%u harvests raced %llu writes\n", harvests,
		       (unsigned long long)total);
	free(stamp);
	free(seen);
	close(src);
}

/* Mark all, and mark a map: exact, and the tail past the last region clear. */
TEST_F(sxm, mark_dirty)
{
	struct sxm_regions m = { .size = sizeof(m), .flags = SXM_REGIONS_ALL };
	uint64_t mine[MAP_WORDS] = { 0 };
	struct sxm_harvest h;

	ASSERT_EQ(0, ioctl(self->ctl, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(NR_REGIONS, m.count);
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
	EXPECT_EQ(NR_REGIONS, h.dirty_regions);
	EXPECT_EQ(NR_REGIONS, count_bits(self->map));

	set_bit64(mine, 3);
	set_bit64(mine, NR_REGIONS - 1);
	m = (struct sxm_regions){ .size = sizeof(m) };
	m.bitmap_ptr = (uintptr_t)mine;
	m.bitmap_bytes = sizeof(mine);
	ASSERT_EQ(0, ioctl(self->ctl, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(2, m.count);
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
	ASSERT_EQ(0, memcmp(mine, self->map, sizeof(mine)));
}

/* A harvest into a bad buffer loses nothing: the regions stay held. */
TEST_F(sxm, harvest_efault_loses_nothing)
{
	struct sxm_harvest h = { .size = sizeof(h) };
	void *ro;

	ASSERT_EQ(0, pwrite_direct(self->dev, 42 * REGION, 4096, 3));
	ro = mmap(NULL, MAP_WORDS * 8, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		  -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	h.bitmap_ptr = (uintptr_t)ro;
	h.bitmap_bytes = MAP_WORDS * 8;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(EFAULT, errno);
	h.bitmap_ptr = 0x10;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(EFAULT, errno);
	munmap(ro, MAP_WORDS * 8);

	ASSERT_EQ(0, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(1, h.dirty_regions);
	EXPECT_TRUE(test_bit64(self->map, 42));
}

/* One helper; observers may only look. */
TEST_F(sxm, helper_and_observers)
{
	int fd2 = open("/dev/" SXM_MISC_NAME, O_RDWR);
	int fd3 = open("/dev/" SXM_MISC_NAME, O_RDWR);
	struct sxm_attach a;
	struct sxm_harvest h;
	struct sxm_info info = { .size = sizeof(info) };
	struct sxm_regions m = { .size = sizeof(m), .flags = SXM_REGIONS_ALL };

	ASSERT_LE(0, fd2);
	ASSERT_LE(0, fd3);
	EXPECT_EQ(-1, attach(fd2, 0, &a));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(getpid(), a.helper_pid);

	ASSERT_EQ(0, attach(fd3, SXM_ATTACH_OBSERVER, &a));
	EXPECT_EQ(NR_REGIONS, a.nr_regions);
	EXPECT_EQ(REGION >> 9, a.region_sectors);
	EXPECT_EQ(DEV_BYTES >> 9, a.len_sectors);
	EXPECT_EQ(-1, attach(fd3, SXM_ATTACH_OBSERVER, NULL));
	EXPECT_EQ(EALREADY, errno);

	ASSERT_EQ(0, pwrite_direct(self->dev, 0, 4096, 9));
	ASSERT_EQ(0, harvest(fd3, self->map, SXM_HARVEST_PEEK, &h));
	EXPECT_EQ(1, h.dirty_regions);
	EXPECT_EQ(-1, harvest(fd3, self->map, 0, NULL));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(fd3, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(fd3, SXM_IOC_ACK, &m));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, ioctl(fd3, SXM_IOC_GET_INFO, &info));
	EXPECT_EQ(SXM_MODE_TRACK, info.mode);
	EXPECT_EQ(1, info.dirty_regions);
	EXPECT_EQ(getpid(), info.helper_pid);

	/* The helper leaves: another may take its place. */
	close(self->ctl);
	self->ctl = fd2;
	ASSERT_EQ(0, attach(fd2, 0, NULL));
	close(fd3);
}

/* Every malformed or hostile ioctl is refused and changes nothing. */
TEST_F(sxm, hostile_ioctls)
{
	int fd = open("/dev/" SXM_MISC_NAME, O_RDWR);
	uint64_t big[MAP_WORDS + 1];
	struct sxm_attach a;
	struct sxm_harvest h;
	struct sxm_regions m;
	struct sxm_info info;
	struct sxm_features f;
	dev_t d = dm_devt();

	ASSERT_LE(0, fd);
	/* Not attached yet. */
	h = (struct sxm_harvest){ .size = sizeof(h) };
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(ENXIO, errno);
	/* Unknown command, wrong magic. */
	EXPECT_EQ(-1, ioctl(fd, _IOWR(SXM_IOC_MAGIC, 0x7f, struct sxm_info), &info));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(fd, _IO(0x12, 0x34)));
	EXPECT_EQ(ENOTTY, errno);
	/* Size field wrong, reserved set. */
	f = (struct sxm_features){ .size = 8 };
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_GET_FEATURES, &f));
	EXPECT_EQ(EINVAL, errno);
	f = (struct sxm_features){ .size = sizeof(f) };
	f.reserved[3] = 1;
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_GET_FEATURES, &f));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_GET_FEATURES, (void *)8));
	EXPECT_EQ(EFAULT, errno);

	/* Attach: unknown flags, features, reserved, bad or absent device. */
	a = (struct sxm_attach){ .size = sizeof(a), .flags = 1U << 7,
				 .dev_major = major(d), .dev_minor = minor(d) };
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ATTACH, &a));
	EXPECT_EQ(EINVAL, errno);
	a.flags = SXM_ATTACH_OBSERVER;
	a.features = 1ULL << 40;
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ATTACH, &a));
	EXPECT_EQ(EINVAL, errno);
	a.features = 0;
	a.reserved[7] = 5;
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ATTACH, &a));
	EXPECT_EQ(EINVAL, errno);
	a.reserved[7] = 0;
	a.dev_minor = 0xfffffff;
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ATTACH, &a));
	EXPECT_EQ(EINVAL, errno);
	a.dev_major = 1;	/* /dev/ram*: a block device, not sxm */
	a.dev_minor = 0;
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ATTACH, &a));
	EXPECT_EQ(ENODEV, errno);
	a.dev_major = major(d);
	a.dev_minor = minor(d);
	a.target_start = 8;	/* no sxm target starts there */
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ATTACH, &a));
	EXPECT_EQ(ENODEV, errno);

	/* Harvest: short buffer, unknown flags, reserved. */
	h = (struct sxm_harvest){ .size = sizeof(h) };
	h.bitmap_ptr = (uintptr_t)big;
	h.bitmap_bytes = MAP_WORDS * 8 - 8;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno);
	h.bitmap_bytes = sizeof(big);
	h.flags = 1U << 9;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno);
	h.flags = 0;
	h.reserved[0] = 1;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(EINVAL, errno);

	/* Mark: size not the map's, bits past the end, ALL with a buffer. */
	memset(big, 0, sizeof(big));
	m = (struct sxm_regions){ .size = sizeof(m) };
	m.bitmap_ptr = (uintptr_t)big;
	m.bitmap_bytes = sizeof(big);
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_ACK, &m));
	EXPECT_EQ(EINVAL, errno);
	/* An output field set on input. */
	m.bitmap_bytes = MAP_WORDS * 8;
	m.count = 1;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_ACK, &m));
	EXPECT_EQ(EINVAL, errno);
	m.count = 0;
	m.bitmap_bytes = sizeof(big);
	m.flags = SXM_REGIONS_ALL;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(EINVAL, errno);
	m.flags = 0;
	m.bitmap_ptr = 0x1000;
	m.bitmap_bytes = MAP_WORDS * 8;
	EXPECT_EQ(-1, ioctl(self->ctl, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(EFAULT, errno);

	/* None of it marked anything. */
	ASSERT_EQ(0, harvest(self->ctl, self->map, SXM_HARVEST_PEEK, &h));
	EXPECT_EQ(0, h.dirty_regions);
	close(fd);
}

/* A newer helper's larger struct is fine if what this kernel lacks is 0. */
struct sxm_info_v2 {
	struct sxm_info i;
	__u64 more;
};

TEST_F(sxm, larger_struct)
{
	unsigned long cmd = _IOWR(SXM_IOC_MAGIC, 0x04, struct sxm_info_v2);
	struct sxm_info_v2 bi;

	memset(&bi, 0, sizeof(bi));
	bi.i.size = sizeof(bi);
	ASSERT_EQ(0, ioctl(self->ctl, cmd, &bi));
	EXPECT_EQ(NR_REGIONS, bi.i.nr_regions);
	EXPECT_EQ(0, bi.more);
	memset(&bi, 0, sizeof(bi));
	bi.i.size = sizeof(bi);
	bi.more = 1;
	EXPECT_EQ(-1, ioctl(self->ctl, cmd, &bi));
	EXPECT_EQ(E2BIG, errno);
}

/* A map with bits past the last region is refused whole. */
TEST(tail_bits_refused)
{
	/* 3 regions short of 64 MiB: the last word has 61 regions. */
	uint64_t map[MAP_WORDS] = { 0 };
	struct sxm_regions m = { .size = sizeof(m) };
	struct sxm_harvest h = { .size = sizeof(h), .flags = SXM_HARVEST_PEEK };
	int fd;

	dm_remove();
	ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm %s 8 1 track'",
			 (DEV_BYTES - 3 * REGION) >> 9, source()));
	fd = open("/dev/" SXM_MISC_NAME, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, attach(fd, 0, NULL));
	map[0] = 1;
	map[MAP_WORDS - 1] = 1ULL << 61;	/* region NR_REGIONS - 3 */
	m.bitmap_ptr = (uintptr_t)map;
	m.bitmap_bytes = sizeof(map);
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(fd, SXM_IOC_ACK, &m));
	EXPECT_EQ(EINVAL, errno);
	/* Nothing was marked, not even region 0. */
	h.bitmap_ptr = (uintptr_t)map;
	h.bitmap_bytes = sizeof(map);
	ASSERT_EQ(0, ioctl(fd, SXM_IOC_HARVEST, &h));
	EXPECT_EQ(NR_REGIONS - 3, h.nr_regions);
	EXPECT_EQ(0, h.dirty_regions);
	/* The same map without the stray bit is fine. */
	map[0] = 1;
	map[MAP_WORDS - 1] = 1ULL << 60;
	ASSERT_EQ(0, ioctl(fd, SXM_IOC_MARK_DIRTY, &m));
	EXPECT_EQ(2, m.count);
	close(fd);
	dm_remove();
}

/* The map survives a reload of the same table; geometry may not change. */
TEST_F(sxm, reload_keeps_map)
{
	struct sxm_harvest h;
	__u64 id;

	ASSERT_EQ(0, harvest(self->ctl, self->map, SXM_HARVEST_PEEK, &h));
	id = h.track_id;
	ASSERT_EQ(0, pwrite_direct(self->dev, 77 * REGION, 4096, 5));
	ASSERT_EQ(0, run("dmsetup table " DM_NAME " | dmsetup reload " DM_NAME
			 " && dmsetup suspend " DM_NAME " && dmsetup resume "
			 DM_NAME));
	ASSERT_EQ(0, pwrite_direct(self->dev, 78 * REGION, 4096, 5));
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
	EXPECT_EQ(2, h.dirty_regions);
	EXPECT_TRUE(test_bit64(self->map, 77));
	EXPECT_TRUE(test_bit64(self->map, 78));
	EXPECT_EQ(id, h.track_id);

	/* A different region size is refused; the live table goes on. */
	EXPECT_NE(0, run("dmsetup reload " DM_NAME " --table '0 %llu sxm %s 16 1 track' 2>/dev/null",
			 DEV_BYTES >> 9, source()));
	ASSERT_EQ(0, pwrite_direct(self->dev, 79 * REGION, 4096, 5));
	ASSERT_EQ(0, harvest_ack(self->ctl, self->map, &h));
	EXPECT_EQ(1, h.dirty_regions);
}

/* After the device is removed an attached file can only be closed. */
TEST_F(sxm, removed_device)
{
	struct sxm_harvest h;

	close(self->dev);
	self->dev = -1;
	ASSERT_EQ(0, run("dmsetup remove --retry " DM_NAME));
	EXPECT_EQ(-1, harvest(self->ctl, self->map, 0, &h));
	EXPECT_EQ(ENODEV, errno);
}

TEST_HARNESS_MAIN
