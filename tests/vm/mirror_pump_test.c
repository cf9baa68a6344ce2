// SPDX-License-Identifier: GPL-2.0
/*
 * The mirror pump (userspace/io/pump.c) against the real target and real
 * nbdkit sinks, with this program as the helper.
 *
 * Proves: every kind of write (4 KiB at queue depth 16, 512 bytes with
 * fsync, FUA writes, discard, write-zeroes) reaches the sink through the
 * pump, which counts them and their latency; region locks and harvests
 * taken while mirrored writes are in flight neither hang nor degrade the
 * mirror (the pump keeps completing writes meanwhile); a sink write error
 * degrades the mirror with "sink_error", the completions of entries the
 * kernel abandoned are ignored, and after a drop the mirror comes back
 * and the dirty regions resynced under locks leave the sink equal to the
 * source; a sink slower than the ring's timeout degrades with
 * "sink_timeout", never with "bad_completion", and the pump survives.
 *
 * Needs: SXM_TEST_SOURCE (a scratch block device of at least 16 MiB),
 * SXM_TEST_SINK (an nbdkit memory export), SXM_TEST_ERR_SINK (a file
 * export behind the error filter, failing writes while
 * SXM_TEST_ERR_FLAG exists), SXM_TEST_SLOW_SINK (an export behind the
 * delay filter, 500 ms a write), dmsetup, fio, nbdcopy, cmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "io/copy.h"
#include "io/engine.h"
#include "kdev/kdev.h"
#include "io/pump.h"
#include "io/sink.h"

#include "kselftest_harness.h"
#include "dm_status.h"

#define DM_NAME		"sxm-pump-test"
#define DM_PATH		"/dev/mapper/" DM_NAME
#define REGION		65536ULL
#define DEV_BYTES	(16ULL << 20)
#define NR_REGIONS	(DEV_BYTES / REGION)

static const char *env(const char *name)
{
	const char *s = getenv(name);

	return s ? s : "";
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

/* INFO word k of the status, counted from the mode (0). */
static const char *status_word(int k)
{
	static char w[24][40];
	char line[512], *tok, *save;
	int n = 0;

	if (dm_target_status(DM_NAME, "sxm", line, sizeof(line)))
		return "";
	for (tok = strtok_r(line, " \n", &save); tok && n < 24;
	     tok = strtok_r(NULL, " \n", &save))
		snprintf(w[n++], sizeof(w[0]), "%s", tok);
	return k < n ? w[k] : "";
}

enum {
	W_MODE = 0,
	W_DIRTY = 3,
	W_MIRROR = 7,
	W_DEGRADATIONS = 12,
	W_REASON = 13,
};

/* The helper: this file attached, the pump in a thread. */
struct helper {
	int kfd;
	struct sxm_pump *pump;
	struct sxm_sink *sink;
	pthread_t th;
	bool stop;
	int result;
	bool running;
	long events;			/* sxm_pump_on_event() calls */
};

static void on_event(void *arg)
{
	struct helper *h = arg;

	__atomic_add_fetch(&h->events, 1, __ATOMIC_RELAXED);
}

static void *pump_main(void *arg)
{
	struct helper *h = arg;

	h->result = sxm_pump_run(h->pump, h->sink, &h->stop);
	return NULL;
}

static int sink_open(const char *uri, struct sxm_sink **s)
{
	struct sxm_sink_opts o = { .min_size = DEV_BYTES };
	char err[512];
	int r = sxm_sink_open(uri, &o, s, err, sizeof(err));

	if (r)
		printf("# %s\n", err);
	fflush(stdout);
	return r;
}

static int helper_start(struct helper *h, const char *uri, uint32_t tmo)
{
	struct sxm_attach a;
	int r;

	memset(h, 0, sizeof(*h));
	h->kfd = sxm_kdev_open();
	if (h->kfd < 0)
		return h->kfd;
	r = sxm_kdev_attach_path(h->kfd, DM_PATH, 0, 0, SXM_F_TRACK |
				 SXM_F_HOLD | SXM_F_MIRROR, &a);
	if (!r)
		r = sxm_pump_open(h->kfd, 64, 65536, tmo, &h->pump);
	if (!r)
		sxm_pump_on_event(h->pump, on_event, h);
	if (!r)
		r = sink_open(uri, &h->sink);
	if (!r)
		r = -pthread_create(&h->th, NULL, pump_main, h);
	if (!r)
		h->running = true;
	if (!r)
		r = sxm_kdev_mirror(h->kfd, true);
	return r;
}

static int helper_stop(struct helper *h)
{
	if (h->running) {
		__atomic_store_n(&h->stop, true, __ATOMIC_RELAXED);
		pthread_join(h->th, NULL);
		h->running = false;
	}
	sxm_sink_close(h->sink);
	h->sink = NULL;
	sxm_pump_close(h->pump);
	h->pump = NULL;
	if (h->kfd >= 0)
		close(h->kfd);
	h->kfd = -1;
	return h->result;
}

/* Whether the sink at @uri holds what the source holds. */
static int same_data(const char *uri)
{
	return run("nbdcopy %s - | cmp -n %llu - %s", uri, DEV_BYTES,
		   env("SXM_TEST_SOURCE"));
}

/* Zero the source and the sink at @uri. */
static int zero_both(const char *uri)
{
	uint64_t range[2] = { 0, DEV_BYTES };
	int fd = open(env("SXM_TEST_SOURCE"), O_RDWR), r;

	if (fd < 0)
		return -1;
	r = ioctl(fd, BLKZEROOUT, range);
	close(fd);
	if (r)
		return r;
	/* nbdcopy sends zero requests for the zeroes. */
	return run("nbdcopy %s %s", env("SXM_TEST_SOURCE"), uri);
}

static int make_dev(void)
{
	dm_remove_leftover(DM_NAME);
	return run("dmsetup create " DM_NAME " --table '0 %llu sxm %s %llu 1 track'",
		   DEV_BYTES >> 9, env("SXM_TEST_SOURCE"), REGION >> 9);
}

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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * What a helper does after the mirror degraded: drop what the kernel
 * abandoned, mirror on, harvest, and copy the harvested regions under
 * region locks, then acknowledge them.  0 or -errno.
 */
static int resync(struct helper *h, const char *uri)
{
	struct sxm_copy_opts o = { .region_size = REGION };
	struct sxm_copy_result res = { 0 };
	struct sxm_lock_range lr = { 0, NR_REGIONS };
	struct sxm_source *src = NULL;
	struct sxm_sink *sink = NULL;
	struct sxm_harvest hv;
	uint64_t *map = NULL;
	char err[256];
	int i, r;

	sxm_pump_drop(h->pump);
	for (i = 0; i < 100 && !sxm_pump_dropped(h->pump); i++)
		usleep(50 * 1000);
	if (!sxm_pump_dropped(h->pump))
		return -ETIMEDOUT;
	r = sxm_kdev_mirror(h->kfd, true);
	if (!r)
		r = sxm_kdev_harvest(h->kfd, 0, &map, &hv);
	if (!r)
		r = sxm_source_open(env("SXM_TEST_SOURCE"), &src, err,
				    sizeof(err));
	if (!r)
		r = sink_open(uri, &sink);
	if (!r)
		r = sxm_kdev_lock(h->kfd, &lr, 1, false);
	if (!r) {
		o.bitmap = map;
		r = sxm_copy(src, sink, &o, &res);
		if (r)
			printf("# resync: %s\n", res.errmsg);
		sxm_copy_result_free(&res);
		sxm_kdev_lock(h->kfd, &lr, 1, true);
	}
	if (!r)
		r = sxm_kdev_ack(h->kfd, map, hv.nr_regions, NULL);
	sxm_sink_close(sink);
	sxm_source_close(src);
	free(map);
	return r;
}

FIXTURE(pump) {
	struct helper h;
};

FIXTURE_SETUP(pump)
{
	self->h.kfd = -1;
	ASSERT_EQ(0, make_dev());
}

FIXTURE_TEARDOWN(pump)
{
	helper_stop(&self->h);
	dm_remove_leftover(DM_NAME);
}

/* Writes of every kind through the pump: the sink ends equal. */
TEST_F_TIMEOUT(pump, every_kind_reaches_the_sink, 300)
{
	const char *uri = env("SXM_TEST_SINK");
	struct sxm_pump_stats st;

	ASSERT_EQ(0, zero_both(uri));
	ASSERT_EQ(0, helper_start(&self->h, uri, 5000));
	ASSERT_STREQ("on", status_word(W_MIRROR));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=4M --randrepeat=0 --output=/dev/null"));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=psync --direct=1 --rw=randwrite --bs=512 --size=256k --offset=8M --fsync=4 --randrepeat=0 --output=/dev/null"));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=write --bs=256k --size=2M --offset=10M --sync=dsync --output=/dev/null"));
	ASSERT_EQ(0, range_ioctl(BLKDISCARD, 1 << 20, 1 << 20));
	ASSERT_EQ(0, range_ioctl(BLKZEROOUT, 3 << 20, 528384));
	EXPECT_STREQ("on", status_word(W_MIRROR));
	EXPECT_STREQ("-", status_word(W_REASON));
	EXPECT_STREQ("0", status_word(W_DIRTY));
	EXPECT_EQ(0, same_data(uri));

	sxm_pump_get_stats(self->h.pump, &st);
	printf("# pump: %llu entries, %llu writes (%llu bytes), %llu zeroes, %llu flushes, p50 %llu us, p99 %llu us\n",
	       (unsigned long long)st.entries, (unsigned long long)st.writes,
	       (unsigned long long)st.bytes, (unsigned long long)st.zeroes,
	       (unsigned long long)st.flushes,
	       (unsigned long long)sxm_pump_latency_us(&st, 0.5),
	       (unsigned long long)sxm_pump_latency_us(&st, 0.99));
	fflush(stdout);
	EXPECT_GE(st.writes, 1024 + 512);
	EXPECT_GE(st.bytes, 4ULL << 20);
	EXPECT_GE(st.zeroes, 2);
	EXPECT_GE(st.flushes, 1);
	EXPECT_EQ(0, st.errors);
	EXPECT_EQ(0, st.in_flight);
	EXPECT_GT(sxm_pump_latency_us(&st, 0.5), 0);
	EXPECT_GE(sxm_pump_latency_us(&st, 0.99),
		  sxm_pump_latency_us(&st, 0.5));
	EXPECT_EQ(0, helper_stop(&self->h));
}

/*
 * Locks and harvests while mirrored writes are in flight: each waits for
 * writes only the pump can complete, so the pump must get through.
 */
TEST_F_TIMEOUT(pump, locks_and_harvests_under_load, 300)
{
	const char *uri = env("SXM_TEST_SINK");
	struct sxm_harvest hv;
	uint64_t *map;
	double t0;
	int n = 0;

	ASSERT_EQ(0, zero_both(uri));
	ASSERT_EQ(0, helper_start(&self->h, uri, 2000));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M --time_based --runtime=6 --randrepeat=0 --output=/dev/null & echo $! > /tmp/pump-fio.pid"));
	usleep(500 * 1000);
	for (t0 = now_s(); now_s() - t0 < 4; n++) {
		struct sxm_lock_range lr = { (n * 7) % (NR_REGIONS - 16), 16 };

		ASSERT_EQ(0, sxm_kdev_lock(self->h.kfd, &lr, 1, false));
		usleep(2000);
		ASSERT_EQ(0, sxm_kdev_lock(self->h.kfd, &lr, 1, true));
		if (n % 8 == 0) {
			ASSERT_EQ(0, sxm_kdev_harvest(self->h.kfd, 0, &map,
						      &hv));
			free(map);
		}
	}
	printf("# %d locks taken and released under load\n", n);
	fflush(stdout);
	EXPECT_EQ(0, run("while kill -0 $(cat /tmp/pump-fio.pid) 2>/dev/null; do sleep 0.2; done"));
	EXPECT_STREQ("on", status_word(W_MIRROR));
	EXPECT_STREQ("0", status_word(W_DEGRADATIONS));
	EXPECT_EQ(0, same_data(uri));
	EXPECT_EQ(0, helper_stop(&self->h));
}

/* A sink error degrades; after a drop and a resync the mirror is back. */
TEST_F_TIMEOUT(pump, sink_error_degrades_and_recovers, 300)
{
	const char *uri = env("SXM_TEST_ERR_SINK");
	const char *flag = env("SXM_TEST_ERR_FLAG");
	struct sxm_pump_stats st;

	ASSERT_EQ(0, zero_both(uri));
	ASSERT_EQ(0, helper_start(&self->h, uri, 5000));
	ASSERT_EQ(0, run("touch %s", flag));
	/* Many in flight when the first fails: the rest are abandoned. */
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=2M --randrepeat=0 --output=/dev/null"));
	EXPECT_STREQ("degraded", status_word(W_MIRROR));
	EXPECT_STREQ("sink_error", status_word(W_REASON));
	/*
	 * The kernel's events reached the pump, and through it the helper:
	 * the mirror on, then down.
	 */
	for (int i = 0; i < 500 && __atomic_load_n(&self->h.events, __ATOMIC_RELAXED) < 2; i++)
		usleep(20 * 1000);
	EXPECT_GE(self->h.events, 2);
	EXPECT_EQ(self->h.events, (long)sxm_pump_events(self->h.pump));
	EXPECT_STRNE("0", status_word(W_DIRTY));
	ASSERT_EQ(0, run("rm -f %s", flag));
	/* The pump is still up: the abandoned completions were ignored. */
	usleep(300 * 1000);
	EXPECT_TRUE(self->h.running && !self->h.result);
	ASSERT_EQ(0, resync(&self->h, uri));
	EXPECT_STREQ("on", status_word(W_MIRROR));
	ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=2M --offset=4M --randrepeat=0 --output=/dev/null"));
	EXPECT_STREQ("on", status_word(W_MIRROR));
	EXPECT_STREQ("1", status_word(W_DEGRADATIONS));
	EXPECT_EQ(0, same_data(uri));
	sxm_pump_get_stats(self->h.pump, &st);
	printf("# pump: %llu errors, %llu dropped\n",
	       (unsigned long long)st.errors, (unsigned long long)st.dropped);
	fflush(stdout);
	EXPECT_GE(st.errors, 1);
	EXPECT_EQ(0, helper_stop(&self->h));
}

/* A sink slower than the timeout: "sink_timeout", the pump survives. */
TEST_F_TIMEOUT(pump, slow_sink_times_out_cleanly, 300)
{
	const char *uri = env("SXM_TEST_SLOW_SINK");
	struct sxm_pump_stats st;
	int i;

	ASSERT_EQ(0, helper_start(&self->h, uri, 100));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, run("fio --name=m --filename=" DM_PATH " --ioengine=io_uring --direct=1 --rw=randwrite --bs=4k --iodepth=8 --size=1M --number_ios=8 --randrepeat=0 --output=/dev/null"));
		EXPECT_STREQ("degraded", status_word(W_MIRROR));
		EXPECT_STREQ("sink_timeout", status_word(W_REASON));
		/*
		 * The abandoned writes complete late, their completions are
		 * posted (no drop yet) and must be ignored.
		 */
		ASSERT_EQ(0, run("sleep 1.5"));
		EXPECT_STREQ("sink_timeout", status_word(W_REASON));
		EXPECT_TRUE(self->h.running && !self->h.result);
		sxm_pump_drop(self->h.pump);
		usleep(300 * 1000);
		EXPECT_TRUE(sxm_pump_dropped(self->h.pump));
		ASSERT_EQ(0, sxm_kdev_mirror(self->h.kfd, true));
	}
	sxm_pump_get_stats(self->h.pump, &st);
	printf("# pump: %llu completed after the kernel gave up on them\n",
	       (unsigned long long)st.entries);
	fflush(stdout);
	EXPECT_GE(st.entries, 8);
	EXPECT_EQ(0, helper_stop(&self->h));
}

TEST_HARNESS_MAIN
