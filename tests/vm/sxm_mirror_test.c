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
#include <setjmp.h>
#include <signal.h>
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
#include "dm_status.h"

#define DM_NAME		"sxm-mirror-test"
#define DM_PATH		"/dev/mapper/" DM_NAME
#define FLAKEY		"sxm-mirror-flakey"
#define FLAKEY_PATH	"/dev/mapper/" FLAKEY
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

/* The sxm target's status words from the mode on. */
static void status_words(char words[24][32], int *n)
{
	char line[512], *tok, *save;

	*n = 0;
	if (dm_target_status(DM_NAME, "sxm", line, sizeof(line)))
		return;
	for (tok = strtok_r(line, " \n", &save); tok && *n < 24;
	     tok = strtok_r(NULL, " \n", &save))
		snprintf(words[(*n)++], 32, "%s", tok);
}

/* INFO word: 0 mode ... 7 mirror 8 in_flight 9 held_back ... 13 reason */
static const char *status_word(int k)
{
	static char w[24][32];
	int n;

	status_words(w, &n);
	return k < n ? w[k] : "";
}

/*
 * Wait up to @ms for status word @k to read @want: a background write
 * takes a shell and dd to arrive, a second or more on the debug kernel.
 * 0 once it does, else -1.
 */
static int wait_word(int k, const char *want, long ms)
{
	for (; ms > 0 && strcmp(status_word(k), want); ms -= 20)
		usleep(20 * 1000);
	return strcmp(status_word(k), want) ? -1 : 0;
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
	volatile int fail_flush;	/* answer the next flush with -EIO */
	volatile int slow_ms;		/* one sqe at a time, this long each */
	volatile long done;
	volatile long flushes;
	volatile long proto_errors;	/* sqes breaking the ABI's rules */
};

/* What the ABI promises of every sqe; a break is counted and said. */
static int sqe_valid(struct helper *h, const struct sxm_sqe *e)
{
	uint64_t data_end = h->geo.data_off +
			    (uint64_t)h->geo.entries * h->geo.slot_bytes;

	switch (e->op) {
	case SXM_OP_FLUSH:
		return !e->offset && !e->len && !e->data_off;
	case SXM_OP_WRITE:
		return e->len && e->len <= h->geo.slot_bytes &&
		       e->data_off >= h->geo.data_off &&
		       e->data_off + e->len <= data_end &&
		       e->offset + e->len <= DEV_BYTES;
	case SXM_OP_WRITE_ZEROES:
	case SXM_OP_DISCARD:
		return e->len && !e->data_off && e->offset + e->len <= DEV_BYTES;
	}
	return 0;
}

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
		for (; head != tail && !(h->slow_ms && n); head++, n++) {
			struct sxm_sqe e = sq[head & (h->geo.entries - 1)];

			if (!sqe_valid(h, &e)) {
				printf("# bad sqe: op %u offset %llu len %llu data_off %u\n",
				       e.op, (unsigned long long)e.offset,
				       (unsigned long long)e.len, e.data_off);
				h->proto_errors++;
				complete(h, e.id, -EPROTO);
				continue;
			}
			apply(h, &e);
			if (e.op == SXM_OP_FLUSH)
				h->flushes++;
			if (e.op == SXM_OP_FLUSH && h->fail_flush) {
				h->fail_flush = 0;
				complete(h, e.id, -EIO);
			} else if (h->bogus_next) {
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
		if (h->slow_ms)
			usleep(h->slow_ms * 1000);
	}
	return NULL;
}

/* The helper of the sxm target starting at sector @start of DM_NAME. */
static int helper_start_at(struct helper *h, uint32_t timeout_ms,
			   uint64_t start)
{
	struct sxm_attach a = { .size = sizeof(a), .target_start = start };
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

static int helper_start(struct helper *h, uint32_t timeout_ms)
{
	return helper_start_at(h, timeout_ms, 0);
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
	dm_remove_leftover(DM_NAME);
	ASSERT_EQ(0, zero_dev(env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, zero_dev(env("SXM_TEST_SINK", "")));
	/*
	 * SXM_TEST_META: the mirror over a persistent map on that device
	 * (blanked first), as tests/vm/76-metadata.sh runs some of these.
	 */
	if (*env("SXM_TEST_META", "")) {
		ASSERT_EQ(0, run("dd if=/dev/zero of=%s bs=4k count=1 oflag=direct status=none",
				 env("SXM_TEST_META", "")));
		ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm %s 8 2 track metadata:%s'",
				 DEV_BYTES >> 9, env("SXM_TEST_SOURCE", ""),
				 env("SXM_TEST_META", "")));
	} else {
		ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm %s 8 1 track'",
				 DEV_BYTES >> 9, env("SXM_TEST_SOURCE", "")));
	}
	ASSERT_EQ(0, helper_start(&self->h, 5000));
	ASSERT_STREQ("mirror", status_word(0));
	ASSERT_STREQ("on", status_word(7));
}

FIXTURE_TEARDOWN(mirror)
{
	EXPECT_EQ(0, self->h.proto_errors);
	helper_stop(&self->h);
	/* What a test made of its own, if it stopped half way. */
	dm_remove_leftover(DM_NAME);
	dm_remove_leftover("sxm-mirror-linear");
	dm_remove_leftover("sxm-mirror-slow");
	dm_remove_leftover(FLAKEY);
}

/* Writes of every kind, mirrored: the sink ends equal to the source. */
TEST_F_TIMEOUT(mirror, every_write_reaches_the_sink, 300)
{
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=4M --randrepeat=0 --output=/dev/null"));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=psync --direct=1 --rw=randwrite --bs=512 --size=256k --offset=8M --fsync=4 --randrepeat=0 --output=/dev/null"));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=write --bs=256k --size=4M --offset=10M --sync=dsync --output=/dev/null"));
	ASSERT_EQ(0, range_ioctl(BLKDISCARD, 1 << 20, 1 << 20));
	ASSERT_EQ(0, range_ioctl(BLKZEROOUT, 3 << 20, 528384));
	ASSERT_EQ(0, same_data());
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
	/* Mirrored writes are not marked dirty. */
	EXPECT_STREQ("0", status_word(3));
}

/*
 * A new ring's indices start SXM_RING_INDEX_START_BEFORE_WRAP short of the
 * wrap: more sqes than that (writes with flushes among them, write-zeroes,
 * discards) carry all four past 0, and every one still reaches the sink
 * with the mirror on throughout.
 */
TEST_F_TIMEOUT(mirror, indices_cross_the_wrap, 900)
{
	struct sxm_ring_hdr *hdr = self->h.hdr;
	uint32_t posted;

	ASSERT_EQ(SXM_RING_INDEX_START, hdr->sq_tail);
	ASSERT_EQ(SXM_RING_INDEX_START, hdr->sq_head);
	ASSERT_EQ(SXM_RING_INDEX_START, hdr->cq_head);
	ASSERT_EQ(SXM_RING_INDEX_START, hdr->cq_tail);
	/* 17408 writes of 4 KiB and a flush after every 256. */
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --io_size=68M --fsync=256 --randrepeat=0 --output=/dev/null"));
	for (int i = 0; i < 64; i++) {
		ASSERT_EQ(0, range_ioctl(BLKDISCARD, (uint64_t)i << 16, 4096));
		ASSERT_EQ(0, range_ioctl(BLKZEROOUT, (8ULL << 20) + ((uint64_t)i << 16), 4096));
	}
	/* Every sqe completed: the helper has read all and answered all. */
	posted = hdr->sq_tail - SXM_RING_INDEX_START;
	/* Its count follows its last enter by a moment. */
	for (int i = 0; i < 500 && (uint32_t)self->h.done != posted; i++)
		usleep(10 * 1000);
	printf("# %u sqes; sq_tail %u, cq_head %u\n", posted, hdr->sq_tail,
	       hdr->cq_head);
	EXPECT_GT(posted, SXM_RING_INDEX_START_BEFORE_WRAP);
	EXPECT_LT(hdr->sq_tail, SXM_RING_INDEX_START);	/* past 0 */
	EXPECT_EQ(hdr->sq_tail, hdr->sq_head);
	EXPECT_EQ(hdr->sq_tail, hdr->cq_tail);
	EXPECT_EQ(hdr->sq_tail, hdr->cq_head);
	EXPECT_EQ(posted, (uint32_t)self->h.done);
	EXPECT_EQ(0, same_data());
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
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
	EXPECT_EQ(0, wait_word(9, "1", 10000)) {
		run("dmsetup status " DM_NAME " | sed 's/^/# /'");
	}
	usleep(100 * 1000);
	EXPECT_NE(0, access("/tmp/mirror-dd-done", F_OK));
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
	EXPECT_EQ(0, wait_word(8, "1", 10000));
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
	ASSERT_EQ(0, run("dmsetup create sxm-mirror-slow --table '0 %llu delay %s 0 0 %s 0 8000'",
			 DEV_BYTES >> 9, env("SXM_TEST_SOURCE", ""),
			 env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm /dev/mapper/sxm-mirror-slow 8 1 track'",
			 DEV_BYTES >> 9));
	/* The second write is held for most of the delay: no timeout. */
	ASSERT_EQ(0, helper_start(&self->h, 20000));
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=90 oflag=direct status=none; touch /tmp/mirror-w1) &"));
	/*
	 * The helper is done with it, the source is not (8 s: long enough
	 * for what follows, a shell and a dd started on a loaded debug
	 * kernel taking a second or more): still in flight.
	 */
	EXPECT_EQ(0, wait_word(8, "1", 8000));
	ASSERT_EQ(0, run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=90 oflag=direct status=none; touch /tmp/mirror-w2) &"));
	/* The second waits for the first's source leg. */
	EXPECT_EQ(0, wait_word(9, "1", 8000));
	EXPECT_STREQ("1", status_word(8));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	EXPECT_GE(ms, 100);
	/* The first is done (its dd exits soon), the second waits. */
	for (int i = 0; i < 100 && access("/tmp/mirror-w1", F_OK); i++)
		usleep(50 * 1000);
	EXPECT_EQ(0, access("/tmp/mirror-w1", F_OK));
	EXPECT_NE(0, access("/tmp/mirror-w2", F_OK));
	l.flags = SXM_LOCK_RELEASE;
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_LOCK, &l));
	/* Its source leg takes the 8 s of the delay too. */
	for (int i = 0; i < 200 && access("/tmp/mirror-w2", F_OK); i++)
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

/* ------------------------------------------------------------------
 * Regression tests: each of these failed (or hung, or oopsed) before
 * the fix it names.
 * ------------------------------------------------------------------
 */

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A 4 KiB write at block @seek in the background; @flag appears when done. */
static int bg_write(unsigned int seek, const char *flag)
{
	unlink(flag);
	return run("(dd if=/dev/urandom of=" DM_PATH " bs=4k count=1 seek=%u oflag=direct status=none; touch %s) &",
		   seek, flag);
}

static int wait_file(const char *path, long ms)
{
	for (; ms > 0 && access(path, F_OK); ms -= 20)
		usleep(20 * 1000);
	return access(path, F_OK);
}

static int lock_call(struct helper *h, struct sxm_lock_range *r, uint32_t n,
		     int release)
{
	struct sxm_lock l = { .size = sizeof(l), .nr_ranges = n,
			      .ranges_ptr = (uintptr_t)r,
			      .flags = release ? SXM_LOCK_RELEASE : 0 };

	return ioctl(h->ctl, SXM_IOC_LOCK, &l) ? errno : 0;
}

static int harvest(struct helper *h, uint64_t *map, int peek)
{
	struct sxm_harvest hv = { .size = sizeof(hv),
				  .flags = peek ? SXM_HARVEST_PEEK : 0,
				  .bitmap_ptr = (uintptr_t)map,
				  .bitmap_bytes = MAP_WORDS * 8 };

	return ioctl(h->ctl, SXM_IOC_HARVEST, &hv) ? errno : 0;
}

static int bit(const uint64_t *map, uint64_t r)
{
	return (map[r / 64] >> (r % 64)) & 1;
}

/* A flush through the sxm device (the loop device below has a cache). */
static int flush_dev(void)
{
	int fd = open(DM_PATH, O_RDWR), r;

	if (fd < 0)
		return -1;
	r = fdatasync(fd);
	close(fd);
	return r;
}

/*
 * SXM_IOC_LOCK releasing the same range twice in one call wrote
 * locks[-1] and underflowed the count.  Now every call is checked whole
 * first: nothing changes unless all of it is valid.
 */
TEST_F(mirror, lock_calls_are_all_or_nothing)
{
	struct sxm_lock_range a = { .first = 10, .count = 2 };
	struct sxm_lock_range twice[2] = { a, a };
	struct sxm_lock_range mixed[2] = { a, { .first = 500, .count = 1 } };
	struct sxm_lock_range overlap[2] = { { 600, 4 }, { 602, 1 } };
	struct sxm_lock_range inside = { .first = 11, .count = 1 };
	static struct sxm_lock_range many[SXM_LOCK_MAX];

	ASSERT_EQ(0, lock_call(&self->h, &a, 1, 0));
	EXPECT_EQ(ENOENT, lock_call(&self->h, twice, 2, 1));
	EXPECT_EQ(ENOENT, lock_call(&self->h, mixed, 2, 1));
	EXPECT_EQ(EINVAL, lock_call(&self->h, overlap, 2, 0));
	EXPECT_EQ(EBUSY, lock_call(&self->h, &inside, 1, 0));
	EXPECT_EQ(ENOENT, lock_call(&self->h, &inside, 1, 1));
	for (int i = 0; i < SXM_LOCK_MAX; i++)
		many[i] = (struct sxm_lock_range){ .first = 1000 + 2 * i,
						   .count = 1 };
	EXPECT_EQ(ENOSPC, lock_call(&self->h, many, SXM_LOCK_MAX, 0));
	/* A is still held once, and a write there still waits for it. */
	ASSERT_EQ(0, bg_write(10, "/tmp/mirror-w1"));
	EXPECT_EQ(0, wait_word(9, "1", 10000));
	usleep(100 * 1000);
	EXPECT_NE(0, access("/tmp/mirror-w1", F_OK));
	EXPECT_EQ(0, lock_call(&self->h, &a, 1, 1));
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 5000));
	EXPECT_EQ(ENOENT, lock_call(&self->h, &a, 1, 1));
	/* Both halves of the refused overlap are free: take them apart. */
	EXPECT_EQ(0, lock_call(&self->h, overlap, 1, 0));
	EXPECT_EQ(0, lock_call(&self->h, overlap, 1, 1));
	EXPECT_STREQ("on", status_word(7));
	EXPECT_EQ(0, same_data());
	unlink("/tmp/mirror-w1");
}

struct writers {
	volatile int stop;
	volatile long writes;
	int fd;
	unsigned int seed;
};

/* Random 4 KiB O_DIRECT writes in the first 8 MiB until told to stop. */
static void *writer(void *arg)
{
	struct writers *w = arg;
	unsigned int seed = __atomic_add_fetch(&w->seed, 7919, __ATOMIC_RELAXED);
	void *buf;

	if (posix_memalign(&buf, 4096, 4096))
		return NULL;
	memset(buf, seed & 0xff, 4096);
	while (!w->stop) {
		off_t off = (off_t)(rand_r(&seed) % 2048) * 4096;

		if (pwrite(w->fd, buf, 4096, off) == 4096)
			__atomic_add_fetch(&w->writes, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

static int writers_start(struct writers *w, pthread_t *th, int n)
{
	memset(w, 0, sizeof(*w));
	w->fd = open(DM_PATH, O_RDWR | O_DIRECT);
	if (w->fd < 0)
		return -1;
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, writer, w))
			return -1;
	return 0;
}

static void writers_stop(struct writers *w, pthread_t *th, int n)
{
	w->stop = 1;
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	close(w->fd);
}

/*
 * A flush held back until no write was in flight starved under steady
 * writes: new writes passed it, and the first fsync waited for as long as
 * fio wrote.  It needs only what the guest saw completed: it is posted at
 * once, and fsyncs go on while the writes do.  The helper answers one sqe
 * a millisecond (a sink with latency), so that fio at queue depth 16 has
 * writes in flight all the time.  Counted over 6 s in the middle of fio's
 * 14: the debug kernel on a busy host does a few per second, a starved
 * flush none.
 */
TEST_F_TIMEOUT(mirror, flush_passes_steady_writes, 300)
{
	struct timespec t0, t1;
	long flushes = 0, slowest = 0, ms;
	int fd;
	void *buf;

	ASSERT_EQ(0, posix_memalign(&buf, 4096, 4096));
	memset(buf, 0x5a, 4096);
	fd = open(DM_PATH, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd);
	unlink("/tmp/mirror-w1");
	/* A sink with latency: writes are in flight all the time. */
	self->h.slow_ms = 1;
	ASSERT_EQ(0, run("(fio --name=w --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=8M --time_based --runtime=14 --randrepeat=0 --output=/dev/null; touch /tmp/mirror-w1) &"));
	/* Until fio is under way (a few seconds at most). */
	for (int i = 0; i < 600 && atoi(status_word(10)) < 200; i++)
		usleep(50 * 1000);
	/* Each fsync is bounded by the pump, not by the other writes. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 6000) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ASSERT_EQ(4096, pwrite(fd, buf, 4096, 12 << 20));
		ASSERT_EQ(0, fdatasync(fd));
		ms = ms_since(&t1);
		if (ms > slowest)
			slowest = ms;
		/* Done with fio: it may have waited for fio's end. */
		if (!access("/tmp/mirror-w1", F_OK))
			break;
		flushes++;
	}
	printf("# %ld fsyncs in %ld ms while fio wrote, the slowest %ld ms\n",
	       flushes, ms_since(&t0), slowest);
	fflush(stdout);
	EXPECT_NE(0, access("/tmp/mirror-w1", F_OK));
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 30000));
	self->h.slow_ms = 0;
	close(fd);
	free(buf);
	EXPECT_GE(flushes, 3);
	EXPECT_GE(self->h.flushes, flushes);
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
	EXPECT_EQ(0, same_data());
	unlink("/tmp/mirror-w1");
}

/*
 * A write held behind a region lock was timed from the last time any
 * held-back write moved, so other writes completing kept it waiting for
 * ever.  It is timed from its own arrival.
 */
TEST_F_TIMEOUT(mirror, held_write_times_out_beside_other_writes, 120)
{
	struct sxm_lock_range r = { .first = 3000, .count = 1 };
	struct writers w;
	pthread_t th[2];

	helper_stop(&self->h);
	ASSERT_EQ(0, helper_start(&self->h, 1000));
	ASSERT_EQ(0, lock_call(&self->h, &r, 1, 0));
	ASSERT_EQ(0, bg_write(3000, "/tmp/mirror-w1"));
	ASSERT_EQ(0, writers_start(&w, th, 2));
	/* Timeout 1 s: degraded, and the held write done, well within 4 s. */
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 4000));
	writers_stop(&w, th, 2);
	EXPECT_STREQ("degraded", status_word(7));
	EXPECT_STREQ("lock_timeout", status_word(13));
	EXPECT_GT(w.writes, 0);
	lock_call(&self->h, &r, 1, 1);
	unlink("/tmp/mirror-w1");
}

struct harvest_arg {
	struct helper *h;
	uint64_t *map;
	int err;
	volatile int done;
};

static void *harvester(void *arg)
{
	struct harvest_arg *a = arg;

	a->err = harvest(a->h, a->map, 0);
	a->done = 1;
	return NULL;
}

/*
 * A harvest waiting for a write held behind the helper's own lock held the
 * file's mutex, which the release of that lock needed: the two waited on
 * each other until the lock timed out.  Now no call waits for another
 * call on the same file.
 */
TEST_F_TIMEOUT(mirror, release_while_a_harvest_waits, 120)
{
	static uint64_t map[MAP_WORDS];
	struct sxm_lock_range r = { .first = 3100, .count = 1 };
	struct harvest_arg a = { .h = &self->h, .map = map };
	struct timespec t0;
	pthread_t th;

	ASSERT_EQ(0, lock_call(&self->h, &r, 1, 0));
	ASSERT_EQ(0, bg_write(3100, "/tmp/mirror-w1"));
	EXPECT_EQ(0, wait_word(9, "1", 10000));
	ASSERT_EQ(0, pthread_create(&th, NULL, harvester, &a));
	usleep(300 * 1000);
	/* The harvest waits for the held write... */
	EXPECT_EQ(0, a.done);
	/* ...and the release gets through at once, well before 5 s. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(0, lock_call(&self->h, &r, 1, 1));
	EXPECT_LT(ms_since(&t0), 2000);
	pthread_join(th, NULL);
	EXPECT_EQ(0, a.err);
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 5000));
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
	unlink("/tmp/mirror-w1");
}

struct mmap_race {
	struct helper *h;
	volatile int stop;
	long harvests, maps;
};

static void *harvest_fresh_buffers(void *arg)
{
	struct mmap_race *m = arg;

	while (!m->stop) {
		uint64_t *buf = mmap(NULL, MAP_WORDS * 8, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (buf == MAP_FAILED)
			break;
		if (!harvest(m->h, buf, 0))
			m->harvests++;
		munmap(buf, MAP_WORDS * 8);
	}
	return NULL;
}

/*
 * mmap took the file's mutex under mmap_lock while the ioctls held that
 * mutex across copy_to_user(), which faults and takes mmap_lock: a harvest
 * into a fresh buffer beside an mmap of the ring deadlocked.
 */
TEST_F_TIMEOUT(mirror, mmap_beside_harvests, 120)
{
	struct mmap_race m = { .h = &self->h };
	struct timespec t0;
	pthread_t th;

	ASSERT_EQ(0, pthread_create(&th, NULL, harvest_fresh_buffers, &m));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < 3000) {
		void *p = mmap(NULL, self->h.geo.mmap_bytes,
			       PROT_READ | PROT_WRITE, MAP_SHARED, self->h.ctl, 0);

		ASSERT_NE(MAP_FAILED, p);
		munmap(p, self->h.geo.mmap_bytes);
		m.maps++;
	}
	m.stop = 1;
	pthread_join(th, NULL);
	printf("# %ld maps beside %ld harvests\n", m.maps, m.harvests);
	EXPECT_GT(m.harvests, 0);
}

/* The ring is mapped shared and never executable. */
TEST_F(mirror, mmap_refuses_private_and_exec)
{
	size_t len = self->h.geo.mmap_bytes;
	void *p;

	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ, MAP_PRIVATE,
				   self->h.ctl, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_EXEC,
				   MAP_SHARED, self->h.ctl, 0));
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, self->h.ctl, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, len, PROT_READ | PROT_EXEC));
	munmap(p, len);
}

/*
 * A failed flush marked nothing, though the sink may have lost every write
 * it acknowledged since its last good flush.  Those regions are dirty now,
 * and the ones a good flush covered are not.
 */
TEST_F_TIMEOUT(mirror, failed_flush_marks_unflushed_writes, 120)
{
	static uint64_t map[MAP_WORDS];

	ASSERT_EQ(0, dd_write("count=4 seek=300"));
	ASSERT_EQ(0, flush_dev());
	ASSERT_EQ(0, dd_write("count=4 seek=200"));
	EXPECT_STREQ("0", status_word(3));
	self->h.fail_flush = 1;
	ASSERT_EQ(0, flush_dev());
	EXPECT_STREQ("degraded", status_word(7));
	EXPECT_STREQ("sink_flush_error", status_word(13));
	ASSERT_EQ(0, harvest(&self->h, map, 0));
	for (int i = 200; i < 204; i++)
		EXPECT_EQ(1, bit(map, i));
	for (int i = 300; i < 304; i++)
		EXPECT_EQ(0, bit(map, i));
}

/*
 * A reload of a mirroring device left the new table in "track" while the
 * ring still said mirror on: nothing was posted.  The mirror belongs to
 * the device: the reloaded table goes on mirroring.
 */
TEST_F_TIMEOUT(mirror, reload_keeps_mirroring, 120)
{
	long before;

	ASSERT_EQ(0, run("dmsetup table " DM_NAME " > /tmp/mirror-table"));
	ASSERT_EQ(0, run("dmsetup load " DM_NAME " /tmp/mirror-table && dmsetup suspend " DM_NAME " && dmsetup resume " DM_NAME));
	EXPECT_STREQ("mirror", status_word(0));
	EXPECT_STREQ("on", status_word(7));
	before = self->h.done;
	ASSERT_EQ(0, dd_write("count=2 seek=400"));
	EXPECT_GE(self->h.done - before, 2);
	EXPECT_STREQ("0", status_word(3));
	EXPECT_EQ(0, same_data());
	/* A table loaded as passthrough turns the mirror off. */
	ASSERT_EQ(0, run("sed -i 's/ 1 track$/ 1 passthrough/' /tmp/mirror-table && dmsetup load " DM_NAME " /tmp/mirror-table && dmsetup suspend " DM_NAME " && dmsetup resume " DM_NAME));
	EXPECT_STREQ("passthrough", status_word(0));
	EXPECT_STREQ("off", status_word(7));
	unlink("/tmp/mirror-table");
}

/*
 * Writes held back when the helper turned the mirror off waited for the
 * timeout.  They go to the source at once now, their regions dirty.
 */
TEST_F_TIMEOUT(mirror, mirror_off_sends_held_writes, 120)
{
	struct sxm_lock_range r = { .first = 3200, .count = 1 };
	struct sxm_mirror m = { .size = sizeof(m), .on = 0 };
	static uint64_t map[MAP_WORDS];

	ASSERT_EQ(0, lock_call(&self->h, &r, 1, 0));
	ASSERT_EQ(0, bg_write(3200, "/tmp/mirror-w1"));
	EXPECT_EQ(0, wait_word(9, "1", 10000));
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_MIRROR, &m));
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 2000));
	EXPECT_STREQ("track", status_word(0));
	EXPECT_STREQ("off", status_word(7));
	EXPECT_STREQ("0", status_word(9));
	ASSERT_EQ(0, harvest(&self->h, map, 1));
	EXPECT_EQ(1, bit(map, 3200));
	lock_call(&self->h, &r, 1, 1);
	unlink("/tmp/mirror-w1");
}

/*
 * A flush's offset was (-start) << 9 when the sxm target did not start at
 * sector 0, which a helper rejects.  A flush has offset 0 and length 0.
 */
TEST_F_TIMEOUT(mirror, flush_of_a_target_not_at_sector_0, 120)
{
	helper_stop(&self->h);
	run("dmsetup remove --retry " DM_NAME);
	ASSERT_EQ(0, run("printf '0 2048 linear %s 0\\n2048 %llu sxm %s 8 1 track\\n' | dmsetup create " DM_NAME,
			 env("SXM_TEST_SOURCE", ""), (DEV_BYTES >> 9) - 2048,
			 env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, helper_start_at(&self->h, 5000, 2048));
	ASSERT_EQ(0, dd_write("count=2 seek=1000"));
	ASSERT_EQ(0, flush_dev());
	EXPECT_GE(self->h.flushes, 1);
	EXPECT_EQ(0, self->h.proto_errors);
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
}

/*
 * A suspend waited for writes held behind a region lock until the lock
 * timed out (and the mirror degraded).  Held-back writes go to the source
 * at the presuspend, tracked; the mirror stays on.
 */
TEST_F_TIMEOUT(mirror, suspend_does_not_wait_for_locks, 120)
{
	struct sxm_lock_range r = { .first = 3300, .count = 1 };
	static uint64_t map[MAP_WORDS];
	struct timespec t0;

	ASSERT_EQ(0, lock_call(&self->h, &r, 1, 0));
	ASSERT_EQ(0, bg_write(3300, "/tmp/mirror-w1"));
	EXPECT_EQ(0, wait_word(9, "1", 10000));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ASSERT_EQ(0, run("dmsetup suspend " DM_NAME));
	EXPECT_LT(ms_since(&t0), 2500);
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 2000));
	ASSERT_EQ(0, run("dmsetup resume " DM_NAME));
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("-", status_word(13));
	ASSERT_EQ(0, harvest(&self->h, map, 1));
	EXPECT_EQ(1, bit(map, 3300));
	EXPECT_EQ(0, lock_call(&self->h, &r, 1, 1));
	/* Mirrored as before. */
	ASSERT_EQ(0, dd_write("count=1 seek=3400"));
	EXPECT_STREQ("on", status_word(7));
	unlink("/tmp/mirror-w1");
}

/*
 * Thousands of writes held back at once (the deferred work used to scan
 * them all for each, with interrupts off): all go through, in order, when
 * the lock is released.
 */
TEST_F_TIMEOUT(mirror, thousands_of_held_writes, 300)
{
	struct sxm_lock_range r = { .first = 2048, .count = 64 };
	int held;

	/* fio may take seconds to queue them all: no timeout meanwhile. */
	helper_stop(&self->h);
	ASSERT_EQ(0, helper_start(&self->h, 60000));
	ASSERT_EQ(0, lock_call(&self->h, &r, 1, 0));
	ASSERT_EQ(0, run("(fio --name=h --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=2048 --iodepth_batch_submit=256 --offset=8M --size=256k --io_size=8M --norandommap --randrepeat=0 --output=/dev/null; touch /tmp/mirror-w1) &"));
	for (int i = 0; i < 1200 && atoi(status_word(9)) < 1000; i++)
		usleep(100 * 1000);
	held = atoi(status_word(9));
	printf("# %d writes held back\n", held);
	EXPECT_GE(held, 1000);
	EXPECT_EQ(0, lock_call(&self->h, &r, 1, 1));
	EXPECT_EQ(0, wait_file("/tmp/mirror-w1", 120000));
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("0", status_word(9));
	EXPECT_EQ(0, same_data());
	unlink("/tmp/mirror-w1");
}

static long dm_event_nr(void)
{
	char line[256];
	long n = -1;
	FILE *p = popen("dmsetup info " DM_NAME, "r");

	while (p && fgets(line, sizeof(line), p))
		sscanf(line, "Event number: %ld", &n);
	if (p)
		pclose(p);
	return n;
}

/*
 * A degrade is an event: poll() on the helper's file reports EPOLLPRI
 * until SXM_IOC_GET_INFO reads the new state, and dm counts an event
 * (dmsetup wait).  The helper used to read the status every 250 ms.
 */
TEST_F(mirror, degrade_is_an_event)
{
	struct sxm_info i = { .size = sizeof(i) };
	struct pollfd pfd = { .fd = self->h.ctl, .events = POLLPRI };
	long ev;

	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_GET_INFO, &i));
	EXPECT_EQ(SXM_MIRROR_ON, i.mirror);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ev = dm_event_nr();
	self->h.fail_next = 1;
	ASSERT_EQ(0, dd_write("count=1 seek=500"));
	EXPECT_EQ(1, poll(&pfd, 1, 2000));
	EXPECT_TRUE(pfd.revents & POLLPRI);
	memset(&i, 0, sizeof(i));
	i.size = sizeof(i);
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_GET_INFO, &i));
	EXPECT_EQ(SXM_MIRROR_DEGRADED, i.mirror);
	EXPECT_STREQ("sink_error", i.degraded_reason);
	EXPECT_EQ(1, i.degradations);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	for (int k = 0; k < 50 && dm_event_nr() <= ev; k++)
		usleep(20 * 1000);
	EXPECT_GT(dm_event_nr(), ev);
}

/*
 * SXM_IOC_GET_INFO says what the status line says (ABI 2), mirror
 * counters included, so a helper need not parse text.
 */
TEST_F(mirror, info_matches_status)
{
	struct sxm_info i = { .size = sizeof(i) };
	char w[24][32];
	int n;

	ASSERT_EQ(0, dd_write("count=8 seek=300"));
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_GET_INFO, &i));
	status_words(w, &n);
	ASSERT_LE(14, n);
	EXPECT_EQ(SXM_MIRROR_ON, i.mirror);
	EXPECT_STREQ("on", w[7]);
	EXPECT_EQ(strtoull(w[8], NULL, 10), i.mirror_in_flight);
	EXPECT_EQ(strtoull(w[9], NULL, 10), i.mirror_held_back);
	EXPECT_EQ(strtoull(w[10], NULL, 10), i.mirrored_writes);
	EXPECT_EQ(strtoull(w[11], NULL, 10), i.mirrored_bytes);
	EXPECT_EQ(strtoull(w[12], NULL, 10), i.degradations);
	EXPECT_LE(8, i.mirrored_writes);
	EXPECT_LE(8 * 4096, i.mirrored_bytes);
	EXPECT_EQ(0, i.reserved[0]);
	EXPECT_EQ(0, i.reserved[1]);
}

static sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(bus_jmp, 1);
}

/* 1 if a byte written at @p raised SIGBUS, 0 if the write went through. */
static int write_faults(volatile uint8_t *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	int faulted = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1))
		faulted = 1;
	else
		*p = *p;
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

/*
 * The source is written from the slot the sink's copy comes from, so the
 * helper must not be able to change a slot: the sqes and the data are
 * read-only in its mapping (mprotect cannot change that), the header and
 * the cqes writable.
 */
TEST_F(mirror, helper_cannot_write_slots)
{
	uint8_t *a = self->h.area;
	struct sxm_ring_setup *g = &self->h.geo;

	EXPECT_EQ(0, write_faults(a + g->hdr_off));
	EXPECT_EQ(0, write_faults(a + g->cq_off));
	EXPECT_EQ(1, write_faults(a + g->sq_off));
	EXPECT_EQ(1, write_faults(a + g->data_off));
	EXPECT_EQ(1, write_faults(a + g->mmap_bytes - 1));
	ASSERT_EQ(0, mprotect(a, g->mmap_bytes, PROT_READ | PROT_WRITE));
	EXPECT_EQ(1, write_faults(a + g->data_off + g->slot_bytes));
	EXPECT_EQ(0, write_faults(a + g->cq_off));
	/* The ring still works. */
	ASSERT_EQ(0, dd_write("count=4 seek=600"));
	EXPECT_STREQ("on", status_word(7));
	EXPECT_EQ(0, same_data());
}

struct scribble {
	uint8_t *buf;
	volatile int stop;
};

static void *scribbler(void *arg)
{
	struct scribble *s = arg;
	uint8_t v = 0;

	while (!s->stop)
		memset(s->buf, v++, 65536);
	return NULL;
}

/*
 * A guest that changes its buffer while its write is in flight (O_DIRECT
 * without stable pages) used to leave source and sink different with no
 * dirty bit: the sink got the bytes of the map-time copy, the source what
 * the buffer held when its DMA (here: the loop device's read) ran.  Both
 * legs now write the same bytes.
 */
TEST_F_TIMEOUT(mirror, unstable_pages_land_alike, 300)
{
	struct scribble sc;
	pthread_t th;
	int fd;

	ASSERT_EQ(0, posix_memalign((void **)&sc.buf, 4096, 65536));
	memset(sc.buf, 0, 65536);
	sc.stop = 0;
	fd = open(DM_PATH, O_RDWR | O_DIRECT);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pthread_create(&th, NULL, scribbler, &sc));
	for (int i = 0; i < 400; i++)
		ASSERT_EQ(65536, pwrite(fd, sc.buf, 65536,
					(off_t)(i % 16) * 65536 + (4 << 20)));
	sc.stop = 1;
	pthread_join(th, NULL);
	close(fd);
	free(sc.buf);
	EXPECT_STREQ("on", status_word(7));
	EXPECT_STREQ("0", status_word(3));
	EXPECT_EQ(0, same_data());
}

/* A 4 KiB O_DIRECT write of one block: 0, or the errno the guest sees. */
static int write_block(const char *path, unsigned int block)
{
	void *buf;
	int fd, r = 0;

	if (posix_memalign(&buf, 4096, 4096))
		return ENOMEM;
	memset(buf, 0xa5, 4096);
	fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0)
		r = errno;
	else if (pwrite(fd, buf, 4096, (off_t)block * 4096) != 4096)
		r = errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	return r;
}

/* The source (dm-flakey) takes writes, or fails them all with EIO. */
static int flakey_set(int fail_writes)
{
	return run("dmsetup load " FLAKEY " --table '0 %llu flakey %s 0 %s' && dmsetup suspend " FLAKEY " && dmsetup resume " FLAKEY,
		   DEV_BYTES >> 9, env("SXM_TEST_SOURCE", ""),
		   fail_writes ? "0 3600 1 error_writes" : "3600 0");
}

/*
 * Source write errors, mirrored and tracked: the guest gets the error the
 * source gave, exactly as through dm-linear (never hidden, whatever the
 * sink did), and the region is dirty, so the sink, which may have taken
 * the write, gets the source's data again on the next copy.
 */
TEST_F_TIMEOUT(mirror, source_write_errors_reach_the_guest, 120)
{
	struct sxm_mirror off = { .size = sizeof(off), .on = 0 };
	static uint64_t map[MAP_WORDS];

	helper_stop(&self->h);
	run("dmsetup remove --retry " DM_NAME);
	ASSERT_EQ(0, run("dmsetup create " FLAKEY " --table '0 %llu flakey %s 0 3600 0'",
			 DEV_BYTES >> 9, env("SXM_TEST_SOURCE", "")));
	ASSERT_EQ(0, run("dmsetup create " DM_NAME " --table '0 %llu sxm " FLAKEY_PATH " 8 1 track'",
			 DEV_BYTES >> 9));
	ASSERT_EQ(0, run("dmsetup create sxm-mirror-linear --table '0 %llu linear " FLAKEY_PATH " 0'",
			 DEV_BYTES >> 9));
	ASSERT_EQ(0, helper_start(&self->h, 5000));
	ASSERT_EQ(0, write_block(DM_PATH, 700));
	ASSERT_EQ(0, flakey_set(1));

	/* Mirrored: the helper took it, the source did not. */
	EXPECT_EQ(EIO, write_block("/dev/mapper/sxm-mirror-linear", 701));
	EXPECT_EQ(EIO, write_block(DM_PATH, 701));
	EXPECT_STREQ("on", status_word(7));
	ASSERT_EQ(0, harvest(&self->h, map, 1));
	EXPECT_EQ(1, bit(map, 701));
	EXPECT_EQ(0, bit(map, 700));

	/* Tracked: the same error, the region dirty. */
	ASSERT_EQ(0, ioctl(self->h.ctl, SXM_IOC_MIRROR, &off));
	EXPECT_EQ(EIO, write_block(DM_PATH, 702));
	ASSERT_EQ(0, harvest(&self->h, map, 1));
	EXPECT_EQ(1, bit(map, 702));

	ASSERT_EQ(0, flakey_set(0));
	EXPECT_EQ(0, write_block(DM_PATH, 703));
	helper_stop(&self->h);
	run("dmsetup remove --retry " DM_NAME);
	run("dmsetup remove --retry sxm-mirror-linear");
	run("dmsetup remove --retry " FLAKEY);
}

/*
 * SXM_TEST_ONLY="name,name...": run only those tests (the harness of this
 * kernel's selftests takes no filter), as tests/vm/76-metadata.sh does.
 */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (!p[n] || p[n] == ','))
			return true;
	return false;
}

static void keep_only(const char *only)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t, *next, *head, *tail;

	for (f = __fixture_list; f; f = f->next) {
		head = tail = NULL;
		for (t = f->tests; t; t = next) {
			next = t->next;
			if (!listed(only, t->name))
				continue;
			/* The harness's list: next ends in NULL, head->prev is the tail. */
			t->next = NULL;
			t->prev = tail ? tail : t;
			if (tail)
				tail->next = t;
			else
				head = t;
			tail = t;
		}
		if (head)
			head->prev = tail;
		f->tests = head;
	}
}

static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	const char *only = getenv("SXM_TEST_ONLY");

	if (only && *only)
		keep_only(only);
	return test_harness_run(argc, argv);
}
