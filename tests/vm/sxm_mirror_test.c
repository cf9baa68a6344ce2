// SPDX-License-Identifier: GPL-2.0
/*
 * The mirror ring against the real target, with this program as the helper
 * and a second scratch device as the sink.
 *
 * Proves: in mirror mode every write, write-zeroes, discard and flush
 * reaches the sink through the ring and the sink ends equal to the source;
 * a guest write completes only after the helper acknowledged it; a region
 * lock holds writes back until it is released; and every way the helper
 * can fail — a sink error, silence past the timeout, death, and hostile
 * ring values (an unknown id, an id twice, indices past the end) — turns
 * mirroring off with the reason in the status, marks the affected regions
 * dirty, and never fails or hangs the guest's writes.
 *
 * Needs: SXM_TEST_SOURCE and SXM_TEST_SINK, scratch block devices of at
 * least 16 MiB, dmsetup, dm-sxm loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-sxm.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <poll.h>
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
#include <time.h>
#include <unistd.h>

#include "../../.cache/linux-source/tools/testing/selftests/kselftest_harness.h"

#define DM_NAME		"sxm-mirror-test"
#define DM_PATH		"/dev/mapper/" DM_NAME
#define REGION		4096ULL
#define DEV_BYTES	(16ULL << 20)
#define NR_REGIONS	(DEV_BYTES / REGION)
#define MAP_WORDS	((NR_REGIONS + 63) / 64)

_Static_assert(sizeof(struct sxm_ring_hdr) == SXM_RING_HDR_SIZE, "abi");
_Static_assert(sizeof(struct sxm_sqe) == SXM_SQE_SIZE, "abi");
_Static_assert(sizeof(struct sxm_cqe) == SXM_CQE_SIZE, "abi");
_Static_assert(sizeof(struct sxm_ring_setup) == SXM_RING_SETUP_SIZE, "abi");
_Static_assert(sizeof(struct sxm_mirror) == SXM_MIRROR_SIZE, "abi");
_Static_assert(sizeof(struct sxm_lock) == SXM_LOCK_SIZE, "abi");

static const char *env(const char *name, const char *def)
{
	const char *s = getenv(name);

	return s ? s : def;
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

/* The status line's words from the mode on. */
static void status_words(char words[24][32], int *n)
{
	char line[512], *tok, *save;
	FILE *p = popen("dmsetup status " DM_NAME, "r");

	*n = 0;
	if (!p)
		return;
	if (fgets(line, sizeof(line), p)) {
		int i = 0;

		for (tok = strtok_r(line, " \n", &save); tok && *n < 24;
		     tok = strtok_r(NULL, " \n", &save), i++)
			if (i >= 3)
				snprintf(words[(*n)++], 32, "%s", tok);
	}
	pclose(p);
}

/* INFO word: 0 mode ... 7 mirror 8 in_flight 9 held_back ... 13 reason */
static const char *status_word(int k)
{
	static char w[24][32];
	int n;

	status_words(w, &n);
	return k < n ? w[k] : "";
}

/* The helper: a pump thread applying sqes to the sink device. */
struct helper {
	int ctl, sink;
	struct sxm_ring_setup geo;
	uint8_t *area;
	struct sxm_ring_hdr *hdr;
	pthread_t th;
	volatile int stop;
	volatile int paused;		/* read sqes, answer nothing */
	volatile int fail_next;		/* answer the next one with -EIO */
	volatile int bogus_next;	/* answer the next one with a bad id */
	volatile int twice_next;	/* answer the next one twice */
	volatile long done;
};

static void apply(struct helper *h, struct sxm_sqe *e)
{
	uint64_t range[2] = { e->offset, e->len };

	switch (e->op) {
	case SXM_OP_WRITE:
		if (pwrite(h->sink, h->area + e->data_off, e->len, e->offset) !=
		    (ssize_t)e->len)
			abort();
		if (e->flags & SXM_SQE_FUA)
			fdatasync(h->sink);
		break;
	case SXM_OP_WRITE_ZEROES:
		ioctl(h->sink, BLKZEROOUT, range);
		break;
	case SXM_OP_DISCARD:
		/* The oracle: a discarded range reads as zeroes on both. */
		ioctl(h->sink, BLKZEROOUT, range);
		break;
	case SXM_OP_FLUSH:
		fdatasync(h->sink);
		break;
	}
}

static void complete(struct helper *h, uint64_t id, int status)
{
	struct sxm_cqe *cq = (void *)(h->area + h->geo.cq_off);
	uint32_t t = h->hdr->cq_tail;

	cq[t & (h->geo.entries - 1)] = (struct sxm_cqe){ .id = id,
							 .status = status };
	__atomic_store_n(&h->hdr->cq_tail, t + 1, __ATOMIC_RELEASE);
}

static void *pump(void *arg)
{
	struct helper *h = arg;
	struct sxm_sqe *sq = (void *)(h->area + h->geo.sq_off);
	struct pollfd pfd = { .fd = h->ctl, .events = POLLIN };

	while (!h->stop) {
		uint32_t head = h->hdr->sq_head;
		uint32_t tail = __atomic_load_n(&h->hdr->sq_tail,
						__ATOMIC_ACQUIRE);
		int n = 0;

		if (h->paused || head == tail) {
			poll(&pfd, 1, 20);
			continue;
		}
		for (; head != tail; head++, n++) {
			struct sxm_sqe e = sq[head & (h->geo.entries - 1)];

			apply(h, &e);
			if (h->bogus_next) {
				h->bogus_next = 0;
				complete(h, e.id ^ (1ULL << 40), 0);
			} else if (h->fail_next) {
				h->fail_next = 0;
				complete(h, e.id, -EIO);
			} else {
				complete(h, e.id, 0);
				if (h->twice_next) {
					h->twice_next = 0;
					complete(h, e.id, 0);
				}
			}
		}
		__atomic_store_n(&h->hdr->sq_head, head, __ATOMIC_RELEASE);
		ioctl(h->ctl, SXM_IOC_RING_ENTER);
		h->done += n;
	}
	return NULL;
}

static int helper_start(struct helper *h, uint32_t timeout_ms)
{
	struct sxm_attach a = { .size = sizeof(a) };
	struct sxm_mirror m = { .size = sizeof(m), .on = 1 };
	struct stat st;

	memset(h, 0, sizeof(*h));
	if (stat(DM_PATH, &st))
		return -1;
	h->sink = open(env("SXM_TEST_SINK", "/dev/loop1"), O_RDWR | O_CLOEXEC);
	h->ctl = open("/dev/" SXM_MISC_NAME, O_RDWR | O_CLOEXEC);
	if (h->sink < 0 || h->ctl < 0)
		return -1;
	a.dev_major = major(st.st_rdev);
	a.dev_minor = minor(st.st_rdev);
	a.features = SXM_F_TRACK | SXM_F_HOLD | SXM_F_MIRROR;
	if (ioctl(h->ctl, SXM_IOC_ATTACH, &a))
		return -1;
	h->geo = (struct sxm_ring_setup){ .size = sizeof(h->geo),
					  .entries = 32, .slot_bytes = 65536,
					  .timeout_ms = timeout_ms };
	if (ioctl(h->ctl, SXM_IOC_RING_SETUP, &h->geo))
		return -1;
	h->area = mmap(NULL, h->geo.mmap_bytes, PROT_READ | PROT_WRITE,
		       MAP_SHARED, h->ctl, 0);
	if (h->area == MAP_FAILED)
		return -1;
	h->hdr = (void *)(h->area + h->geo.hdr_off);
	if (pthread_create(&h->th, NULL, pump, h))
		return -1;
	return ioctl(h->ctl, SXM_IOC_MIRROR, &m);
}

static void helper_stop(struct helper *h)
{
	if (h->stop)
		return;
	h->stop = 1;
	pthread_join(h->th, NULL);
	munmap(h->area, h->geo.mmap_bytes);
	close(h->ctl);
	close(h->sink);
}

/* Source and sink read back (O_DIRECT) equal; the first difference said. */
static int same_data(void)
{
	int a = open(env("SXM_TEST_SOURCE", ""), O_RDONLY | O_DIRECT);
	int b = open(env("SXM_TEST_SINK", ""), O_RDONLY | O_DIRECT);
	uint8_t *x, *y;
	uint64_t off;
	int r = -1;

	if (a < 0 || b < 0 || posix_memalign((void **)&x, 4096, 1 << 20) ||
	    posix_memalign((void **)&y, 4096, 1 << 20))
		return -1;
	for (off = 0; off < DEV_BYTES; off += 1 << 20) {
		if (pread(a, x, 1 << 20, off) != 1 << 20 ||
		    pread(b, y, 1 << 20, off) != 1 << 20)
			goto out;
		for (size_t i = 0; i < 1 << 20; i++)
			if (x[i] != y[i]) {
				printf("# source and sink differ at byte %llu\n",
				       (unsigned long long)(off + i));
				goto out;
			}
	}
	r = 0;
out:
	free(x);
	free(y);
	close(a);
	close(b);
	return r;
}

/* BLKDISCARD or BLKZEROOUT through the sxm device. */
static int range_ioctl(unsigned long req, uint64_t off, uint64_t len)
{
	uint64_t range[2] = { off, len };
	int fd = open(DM_PATH, O_RDWR), r;

	if (fd < 0)
		return -1;
	r = ioctl(fd, req, range);
	close(fd);
	return r;
}

static int dd_write(const char *extra)
{
	return run("dd if=/dev/urandom of=" DM_PATH " bs=4k oflag=direct status=none %s",
		   extra);
}

FIXTURE(mirror) {
	struct helper h;
};

static int zero_dev(const char *path)
{
	uint64_t range[2] = { 0, DEV_BYTES };
	int fd = open(path, O_RDWR), r;

	if (fd < 0)
		return -1;
	r = ioctl(fd, BLKZEROOUT, range);
	close(fd);
	return r;
}

FIXTURE_SETUP(mirror)
{
	run("dmsetup remove --retry " DM_NAME " 2>/dev/null");
	ASSERT_EQ(0, zero_dev(env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, zero_dev(env("SXM_TEST_SINK", "")));
	ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm %s 8 1 track'",
			 DEV_BYTES >> 9, env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, helper_start(&self->h, 5000));
	ASSERT_STREQ("mirror", status_word(0));
	ASSERT_STREQ("on", status_word(7));
}

FIXTURE_TEARDOWN(mirror)
{
	helper_stop(&self->h);
	run("dmsetup remove --retry " DM_NAME " 2>/dev/null");
}

/* Writes of every kind, mirrored: the sink ends equal to the source. */
TEST_F_TIMEOUT(mirror, every_write_reaches_the_sink, 300)
{
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=4M --randrepeat=0 --output=/dev/null"));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=psync --direct=1 --rw=randwrite --bs=512 --size=1M --offset=8M --fsync=4 --randrepeat=0 --output=/dev/null"));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=write --bs=256k --size=4M --offset=10M --sync=dsync --output=/dev/null"));
	ASSERT_EQ(0, range_ioctl(BLKDISCARD, 1 << 20, 1 << 20));
	ASSERT_EQ(0, range_ioctl(BLKZEROOUT, 3 << 20, 528384));
	ASSERT_EQ(0, same_data());
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
	/* Mirrored writes are not marked dirty. */
	EXPECT_STREQ("0", status_word(3));
}

static void *unpause_later(void *arg)
{
	struct helper *h = arg;

	usleep(300 * 1000);
	h->paused = 0;
	return NULL;
}

/* A guest write waits for the helper; a lock holds writes back. */
TEST_F_TIMEOUT(mirror, write_waits_for_the_sink_and_locks, 120)
{
	struct sxm_lock_range r = { .first = 100, .count = 4 };
	struct sxm_lock l = { .size = sizeof(l), .nr_ranges = 1,
			      .ranges_ptr = (uintptr_t)&r };
	struct timespec t0, t1;
	long ms;

	/* Paused helper: the write takes at least as long as the pause. */
	pthread_t th;

	self->h.paused = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, pthread_create(&th, NULL, unpause_later, &self->h));
	ASSERT_EQ(0, dd_write("count=1 seek=7"));
	pthread_join(th, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	EXPECT_GE(ms, 150);
	EXPECT_STREQ("on", status_word(7));

	/* Lock regions 100..103: a write there is held until released. */
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=101 oflag=direct status=none; touch /tmp/mirror-dd-done) &"));
	usleep(300 * 1000);
	EXPECT_NE(0, access("/tmp/mirror-dd-done", F_OK));
	EXPECT_STREQ("1", status_word(9)) {
		run("dmsetup status " DM_NAME " | sed 's/^/# /'");
	}
	l.flags = SXM_LOCK_RELEASE;
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	for (int i = 0; i < 50 && access("/tmp/mirror-dd-done", F_OK); i++)
		usleep(100 * 1000);
	EXPECT_EQ(0, access("/tmp/mirror-dd-done", F_OK));
	unlink("/tmp/mirror-dd-done");
	/* Released twice: refused, nothing changes. */
	EXPECT_EQ(-1, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, same_data());
}

/* Each way the helper fails degrades the mirror; the guest goes on. */
static void expect_degraded(struct __test_metadata *_metadata,
			    const char *reason)
{
	/* The write went through and the guest saw no error. */
	ASSERT_EQ(0, dd_write("count=2 seek=33"));
	EXPECT_STREQ("degraded", status_word(7));
	EXPECT_STREQ(reason, status_word(13));
	/* Still writable, tracked: no error, regions dirty. */
	ASSERT_EQ(0, dd_write("count=1 seek=40"));
	EXPECT_STRNE("0", status_word(3));
}

TEST_F(mirror, sink_error_degrades)
{
	self->h.fail_next = 1;
	expect_degraded(_metadata, "sink_error");
}

TEST_F(mirror, unknown_id_degrades)
{
	self->h.bogus_next = 1;
	expect_degraded(_metadata, "bad_completion");
}

TEST_F(mirror, id_twice_degrades)
{
	self->h.twice_next = 1;
	expect_degraded(_metadata, "bad_completion");
}

TEST_F(mirror, bad_cq_tail_degrades)
{
	self->h.paused = 1;
	usleep(50 * 1000);
	self->h.hdr->cq_tail = 0x7fff0000;
	EXPECT_EQ(-1, ioctl(self->h.ctl, SXM_IOC_RING_ENTER));
	EXPECT_EQ(EIO, errno);
	EXPECT_STREQ("bad_cq_tail", status_word(13));
	ASSERT_EQ(0, dd_write("count=1 seek=40"));
}

TEST_F(mirror, bad_sq_head_degrades)
{
	self->h.paused = 1;
	usleep(50 * 1000);
	self->h.hdr->sq_head = 0x40000000;
	ASSERT_EQ(0, dd_write("count=1 seek=40"));
	usleep(300 * 1000);
	EXPECT_STREQ("degraded", status_word(7));
	EXPECT_STREQ("bad_sq_head", status_word(13));
}

TEST_F(mirror, silent_helper_times_out)
{
	helper_stop(&self->h);
	ASSERT_EQ(0, helper_start(&self->h, 300));
	self->h.paused = 1;
	expect_degraded(_metadata, "sink_timeout");
}

/*
 * A lock waits for a write in flight, which only the helper's completion
 * finishes: the pump thread's RING_ENTER must get through meanwhile.
 */
TEST_F_TIMEOUT(mirror, lock_waits_while_the_pump_completes, 120)
{
	struct sxm_lock_range r = { .first = 20, .count = 4 };
	struct sxm_lock l = { .size = sizeof(l), .nr_ranges = 1,
			      .ranges_ptr = (uintptr_t)&r };
	pthread_t th;

	self->h.paused = 1;
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=21 oflag=direct status=none; touch /tmp/mirror-dd-done) &"));
	usleep(200 * 1000);
	EXPECT_STREQ("1", status_word(8));
	ASSERT_EQ(0, pthread_create(&th, NULL, unpause_later, &self->h));
	/* Returns once the pump completed the write, long before 5 s. */
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	pthread_join(th, NULL);
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
	l.flags = SXM_LOCK_RELEASE;
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	for (int i = 0; i < 50 && access("/tmp/mirror-dd-done", F_OK); i++)
		usleep(100 * 1000);
	EXPECT_EQ(0, access("/tmp/mirror-dd-done", F_OK));
	unlink("/tmp/mirror-dd-done");
	ASSERT_EQ(0, same_data());
}

/*
 * An entry abandoned by a timeout and completed late by the helper is
 * ignored: the ring goes on, the mirror comes back.
 */
TEST_F_TIMEOUT(mirror, late_completion_is_ignored, 120)
{
	helper_stop(&self->h);
	ASSERT_EQ(0, helper_start(&self->h, 300));
	self->h.paused = 1;
	ASSERT_EQ(0, dd_write("count=1 seek=70"));
	EXPECT_STREQ("degraded", status_word(7));
	EXPECT_STREQ("sink_timeout", status_word(13));
	/* The pump answers the abandoned entry now. */
	self->h.paused = 0;
	for (int i = 0; i < 50 && !self->h.done; i++)
		usleep(20 * 1000);
	EXPECT_EQ(1, self->h.done);
	EXPECT_LE(0, ioctl(self->h.ctl, SXM_IOC_RING_ENTER));
	EXPECT_STREQ("sink_timeout", status_word(13));
	/* Mirrored again, and the ring works. */
	struct sxm_mirror m = { .size = sizeof(m), .on = 1 };

	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_MIRROR, &m));
	ASSERT_EQ(0, dd_write("count=4 seek=80"));
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
}

/*
 * A source slower than the sink: the slot of a write stays taken until the
 * source has it too, so an overlapping write waits (source and sink see
 * them in the same order) and a region lock waits (a copy under it never
 * reads the source under a write still on its way there).
 */
TEST_F_TIMEOUT(mirror, slots_wait_for_the_source, 120)
{
	struct sxm_lock_range r = { .first = 90 * 4096 / REGION, .count = 1 };
	struct sxm_lock l = { .size = sizeof(l), .nr_ranges = 1,
			      .ranges_ptr = (uintptr_t)&r };
	struct timespec t0, t1;
	long ms;

	helper_stop(&self->h);
	run("dmsetup remove --retry " DM_NAME " 2>/dev/null");
	ASSERT_EQ(0, run("dmsetup create sxm-mirror-slow --table '0 %llu delay %s 0 0 %s 0 2000'",
			 DEV_BYTES >> 9, env("SXM_TEST_SOURCE", ""),
			 env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm /dev/mapper/sxm-mirror-slow 8 1 track'",
			 DEV_BYTES >> 9));
	ASSERT_EQ(0, helper_start(&self->h, 5000));
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=90 oflag=direct status=none; touch /tmp/mirror-w1) &"));
	usleep(300 * 1000);
	/* The helper is done with it, the source is not: still in flight. */
	EXPECT_STREQ("1", status_word(8));
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=90 oflag=direct status=none; touch /tmp/mirror-w2) &"));
	/* The second waits for the first's source leg. */
	for (int i = 0; i < 20 && strcmp(status_word(9), "1"); i++)
		usleep(50 * 1000);
	EXPECT_STREQ("1", status_word(9));
	EXPECT_STREQ("1", status_word(8));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	EXPECT_GE(ms, 100);
	/* The first is done (its dd exits soon), the second waits. */
	for (int i = 0; i < 40 && access("/tmp/mirror-w1", F_OK); i++)
		usleep(50 * 1000);
	EXPECT_EQ(0, access("/tmp/mirror-w1", F_OK));
	EXPECT_NE(0, access("/tmp/mirror-w2", F_OK));
	l.flags = SXM_LOCK_RELEASE;
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	for (int i = 0; i < 50 && access("/tmp/mirror-w2", F_OK); i++)
		usleep(100 * 1000);
	EXPECT_EQ(0, access("/tmp/mirror-w2", F_OK));
	unlink("/tmp/mirror-w1");
	unlink("/tmp/mirror-w2");
	EXPECT_STREQ("on", status_word(7));
	EXPECT_EQ(0, same_data());
	helper_stop(&self->h);
	run("dmsetup remove --retry " DM_NAME " 2>/dev/null");
	run("dmsetup remove --retry sxm-mirror-slow");
}

TEST_F_TIMEOUT(mirror, helper_death_degrades_and_remirrors, 120)
{
	struct helper h2;

	/* A timeout longer than this test: only the death degrades. */
	helper_stop(&self->h);
	ASSERT_EQ(0, helper_start(&self->h, 60000));
	self->h.paused = 1;
	/* A write in flight when the helper goes. */
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=50 oflag=direct status=none; touch /tmp/mirror-dd-done) &"));
	usleep(200 * 1000);
	helper_stop(&self->h);
	for (int i = 0; i < 50 && access("/tmp/mirror-dd-done", F_OK); i++)
		usleep(100 * 1000);
	EXPECT_EQ(0, access("/tmp/mirror-dd-done", F_OK));
	unlink("/tmp/mirror-dd-done");
	EXPECT_STREQ("degraded", status_word(7));
	EXPECT_STREQ("helper_detached", status_word(13));
	EXPECT_STRNE("0", status_word(3));

	/* A new helper mirrors again. */
	ASSERT_EQ(0, helper_start(&h2, 500));
	EXPECT_STREQ("on", status_word(7));
	ASSERT_EQ(0, dd_write("count=1 seek=60"));
	helper_stop(&h2);
}

TEST_HARNESS_MAIN
