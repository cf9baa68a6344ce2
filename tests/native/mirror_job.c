// SPDX-License-Identifier: GPL-2.0
/*
 * Mirror-style jobs without a kernel: which command each mirror phase
 * takes (and the errno and reason of each refusal), when a warm job may
 * switch to mirror style, the names of the new phases, and the mirror's
 * fields in the record file (saved) and on the wire (live too); how big
 * a batch copied under region locks may be.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "jobs/job.h"

#include "kselftest_harness.h"

static void sample(struct sxm_job_rec *j, const char *kind,
		   enum sxm_phase phase)
{
	sxm_job_rec_init(j);
	strcpy(j->name, "vm7");
	strcpy(j->kind, kind);
	strcpy(j->source, "/dev/vg0/vm7");
	strcpy(j->sink, "nbd://10.0.0.2/vm7");
	strcpy(j->device, "vg0-vm7");
	j->size = 64ULL << 20;
	j->phase = phase;
}

TEST(rules)
{
	static const struct {
		const char *kind;
		enum sxm_phase phase;
		bool paused;
		enum sxm_job_cmd cmd;
		int err;
		const char *why;	/* in the reason */
	} tc[] = {
		/* A mirror-style job. */
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_SYNC, -EINVAL, "nothing to sync" },
		{ "sxm", SXM_PHASE_COPYING, 0, SXM_CMD_SYNC, -EINVAL, "nothing to sync" },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_CADENCE, -EINVAL, "no cadence" },
		{ "sxm", SXM_PHASE_COPYING, 0, SXM_CMD_PAUSE, 0, NULL },
		{ "sxm", SXM_PHASE_COPYING, 1, SXM_CMD_PAUSE, -EALREADY, "paused already" },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_PAUSE, -EINVAL, "only the bulk copy" },
		{ "sxm", SXM_PHASE_COMPOSING, 0, SXM_CMD_PAUSE, -EINVAL, "only the bulk copy" },
		{ "sxm", SXM_PHASE_COPYING, 1, SXM_CMD_RESUME, 0, NULL },
		{ "sxm", SXM_PHASE_COPYING, 0, SXM_CMD_RESUME, -EALREADY, "not paused" },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_CUTOVER, 0, NULL },
		{ "sxm", SXM_PHASE_PREPARING, 0, SXM_CMD_CUTOVER, -EBUSY, "needs the mirror composed" },
		{ "sxm", SXM_PHASE_COPYING, 0, SXM_CMD_CUTOVER, -EBUSY, "needs the mirror composed" },
		{ "sxm", SXM_PHASE_COMPOSING, 0, SXM_CMD_CUTOVER, -EBUSY, "needs the mirror composed" },
		{ "sxm", SXM_PHASE_CUTTING_OVER, 0, SXM_CMD_CUTOVER, -EALREADY, "already" },
		{ "sxm", SXM_PHASE_FAILED, 0, SXM_CMD_CUTOVER, -EINVAL, "retry" },
		{ "sxm", SXM_PHASE_COMPLETED, 0, SXM_CMD_CUTOVER, -EINVAL, "stays frozen" },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_MIRROR, -EALREADY, "mirror-style already" },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_CANCEL, 0, NULL },
		{ "sxm", SXM_PHASE_COPYING, 0, SXM_CMD_CANCEL, 0, NULL },
		{ "sxm", SXM_PHASE_FAILED, 0, SXM_CMD_RETRY, 0, NULL },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_RETRY, -EINVAL, "nothing to retry" },
		{ "sxm", SXM_PHASE_COMPLETED, 0, SXM_CMD_FORGET, 0, NULL },
		{ "sxm", SXM_PHASE_MIRRORED, 0, SXM_CMD_FORGET, -EBUSY, "cancel it first" },
		/* A warm job switching. */
		{ "warm", SXM_PHASE_READY, 0, SXM_CMD_MIRROR, 0, NULL },
		{ "warm", SXM_PHASE_READY, 1, SXM_CMD_MIRROR, -EBUSY, "resume" },
		{ "warm", SXM_PHASE_SYNCING, 0, SXM_CMD_MIRROR, -EBUSY, "from Ready" },
		{ "warm", SXM_PHASE_FULL_SYNC, 0, SXM_CMD_MIRROR, -EBUSY, "from Ready" },
		{ "warm", SXM_PHASE_INITIALIZING, 0, SXM_CMD_MIRROR, -EBUSY, "from Ready" },
		{ "warm", SXM_PHASE_CUTTING_OVER, 0, SXM_CMD_MIRROR, -EBUSY, "from Ready" },
		{ "warm", SXM_PHASE_FAILED, 0, SXM_CMD_MIRROR, -EINVAL, "retry" },
		{ "warm", SXM_PHASE_COMPLETED, 0, SXM_CMD_MIRROR, -EINVAL, "Completed" },
		{ "warm", SXM_PHASE_CANCELLED, 0, SXM_CMD_MIRROR, -EINVAL, "Cancelled" },
		/* Warm rules stay as they were. */
		{ "warm", SXM_PHASE_READY, 0, SXM_CMD_SYNC, 0, NULL },
		{ "warm", SXM_PHASE_READY, 0, SXM_CMD_CADENCE, 0, NULL },
	};
	struct sxm_job_rec j;
	char err[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		int r;

		sample(&j, tc[i].kind, tc[i].phase);
		j.paused = tc[i].paused;
		strcpy(j.reason, "sink gone");
		err[0] = '\0';
		r = sxm_job_check(&j, tc[i].cmd, err, sizeof(err));
		EXPECT_EQ(tc[i].err, r)
			TH_LOG("case %zu: %s in %s, command %d: %s", i,
			       tc[i].kind, sxm_phase_name(tc[i].phase),
			       tc[i].cmd, err);
		if (tc[i].why)
			EXPECT_NE(NULL, strstr(err, tc[i].why))
				TH_LOG("case %zu: reason '%s'", i, err);
	}

	/* Being cancelled refuses everything but forget, in any style. */
	sample(&j, "sxm", SXM_PHASE_MIRRORED);
	j.cancelling = true;
	EXPECT_EQ(-EBUSY, sxm_job_check(&j, SXM_CMD_CUTOVER, err, sizeof(err)));
	EXPECT_EQ(-EBUSY, sxm_job_check(&j, SXM_CMD_MIRROR, err, sizeof(err)));
}

TEST(phase_names)
{
	static const char *const names[] = {
		"Preparing", "Mirroring + Copying", "Composing", "Mirrored",
	};
	static const enum sxm_phase phases[] = {
		SXM_PHASE_PREPARING, SXM_PHASE_COPYING, SXM_PHASE_COMPOSING,
		SXM_PHASE_MIRRORED,
	};
	enum sxm_phase p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		EXPECT_STREQ(names[i], sxm_phase_name(phases[i]));
		ASSERT_EQ(0, sxm_phase_parse(names[i], &p));
		EXPECT_EQ(phases[i], p);
		EXPECT_FALSE(sxm_phase_final(phases[i]));
	}
}

TEST(record_and_wire)
{
	struct sxm_job_rec j, back;
	char *text, *line, *nl;

	sample(&j, "sxm", SXM_PHASE_COPYING);
	j.full_done = 8 << 20;
	j.degradations = 3;
	j.degraded_ms = 4200;
	strcpy(j.degraded_reason, "sink_timeout");
	strcpy(j.degraded_reasons, "sink_error:1 helper_detached:1 sink_timeout:1");
	/*
	 * Live figures: sent, never saved; but for the mirror's state and
	 * its counts of writes, which a Completed job keeps (its device is
	 * gone).
	 */
	strcpy(j.mirror, "degraded");
	strcpy(j.mirror_reason, "sink_timeout");
	j.mirrored_writes = 12345;
	j.mirrored_bytes = 987654321;
	j.mirror_in_flight = 7;
	j.mirror_held_back = 2;
	j.lat_p50_us = 1800;
	j.lat_p99_us = 21500;

	text = sxm_job_rec_format(&j);
	ASSERT_NE(NULL, text);
	EXPECT_NE(NULL, strstr(text, "\nphase Mirroring + Copying\n"));
	EXPECT_NE(NULL, strstr(text, "\nkind sxm\n"));
	EXPECT_EQ(NULL, strstr(text, "mirror_in_flight"));
	EXPECT_EQ(NULL, strstr(text, "lat_p99_us"));
	EXPECT_NE(NULL, strstr(text, "\nmirrored_writes 12345\n"));
	ASSERT_EQ(0, sxm_job_rec_parse(text, &back));
	free(text);
	EXPECT_EQ(SXM_PHASE_COPYING, back.phase);
	EXPECT_STREQ("sxm", back.kind);
	EXPECT_EQ(8U << 20, back.full_done);
	EXPECT_EQ(3U, back.degradations);
	EXPECT_EQ(4200U, back.degraded_ms);
	EXPECT_STREQ("sink_timeout", back.degraded_reason);
	EXPECT_STREQ("sink_error:1 helper_detached:1 sink_timeout:1",
		     back.degraded_reasons);
	EXPECT_EQ(0U, back.mirror_in_flight);
	EXPECT_EQ(0U, back.lat_p99_us);
	EXPECT_EQ(12345U, back.mirrored_writes);
	EXPECT_EQ(987654321U, back.mirrored_bytes);
	EXPECT_STREQ("degraded", back.mirror);

	text = sxm_job_wire_format(&j, false);
	ASSERT_NE(NULL, text);
	line = text;
	nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	sxm_job_rec_init(&back);
	ASSERT_EQ(0, sxm_job_wire_parse_line(line, &back));
	free(text);
	EXPECT_STREQ("degraded", back.mirror);
	EXPECT_STREQ("sink_timeout", back.mirror_reason);
	EXPECT_EQ(12345U, back.mirrored_writes);
	EXPECT_EQ(987654321U, back.mirrored_bytes);
	EXPECT_EQ(7U, back.mirror_in_flight);
	EXPECT_EQ(2U, back.mirror_held_back);
	EXPECT_EQ(1800U, back.lat_p50_us);
	EXPECT_EQ(21500U, back.lat_p99_us);
	EXPECT_EQ(3U, back.degradations);
	EXPECT_STREQ("sink_error:1 helper_detached:1 sink_timeout:1",
		     back.degraded_reasons);
}

TEST(predicted_downtime_when_mirrored)
{
	struct sxm_job_rec j;

	sample(&j, "sxm", SXM_PHASE_MIRRORED);
	j.last_rate = 100 << 20;
	j.dirty_bytes = 0;
	j.last_sync_ms = 1000;
	j.lat_p50_us = 4000;
	/* The mirror on: nothing to copy, two sink round trips; no lag. */
	strcpy(j.mirror, "on");
	sxm_job_metrics(&j, 61000);
	EXPECT_EQ(0.008, j.predicted_downtime);
	EXPECT_EQ(0, j.lag_ms);
	/* Degraded: what is dirty must be copied; the sink lags. */
	strcpy(j.mirror, "degraded");
	j.dirty_bytes = 100 << 20;
	sxm_job_metrics(&j, 61000);
	EXPECT_EQ(0.1 + 2.0, j.predicted_downtime);
	EXPECT_EQ(60000, j.lag_ms);
	j.phase = SXM_PHASE_COPYING;
	sxm_job_metrics(&j, 61000);
	EXPECT_LT(j.predicted_downtime, 0);
}

/* The next batch after one of @bytes held @held s, the guest's wait too. */
static uint64_t next_after(double rate, double limit, uint64_t bytes,
			   double held, double waited, uint64_t rs)
{
	struct sxm_batch_stat st = {
		.rate = rate, .bytes = bytes, .held = held, .waited = waited,
	};

	return sxm_mirror_batch_bytes(&st, limit, rs);
}

struct play {
	uint64_t b;		/* the next batch */
	double held;		/* the last one's hold */
	double max_held;	/* the longest of the last half */
	double mib_s;		/* copied per second held, the last half */
};

/*
 * Batches of @b bytes (the first) on, each holding the locks for @fixed s
 * plus its bytes at @mib_s MiB/s, batches @from to @to (excluded) stalled
 * 5 s more, as the caller measures them.
 */
static struct play play_stall(uint64_t b, double fixed, double mib_s,
			      int nr, int from, int to, uint64_t rs)
{
	struct sxm_batch_stat st = { 0 };
	struct play p = { 0 };
	double bytes = 0, secs = 0;
	int i;

	for (i = 0; i < nr; i++) {
		p.held = fixed + (double)b / (mib_s * (1 << 20));
		if (i >= from && i < to)
			p.held += 5;
		if (i >= nr / 2) {
			bytes += b;
			secs += p.held;
			if (p.held > p.max_held)
				p.max_held = p.held;
		}
		sxm_mirror_batch_done(&st, b, p.held, p.held, rs);
		b = sxm_mirror_batch_bytes(&st, 0, rs);
	}
	p.b = b;
	p.mib_s = bytes / secs / (1 << 20);
	return p;
}

static struct play play_batches(uint64_t b, double fixed, double mib_s,
				int nr, uint64_t rs)
{
	return play_stall(b, fixed, mib_s, nr, -1, -1, rs);
}

/*
 * The batches of a locked copy: BATCH_SECS (0.25 s) of copying at the
 * rate measured while locked, within --rate and 16 MiB; a batch that
 * copied for longer than that sizes the next at its own rate at once;
 * one the guest waited on for less than 0.125 s lets the next be twice
 * as big, so that batches whose rate is mostly fixed costs do not stay at
 * one region for long; and where the fixed cost of a batch is more than
 * 0.125 s (a slow machine, a distant sink), batches grow until half of
 * each is copying, up to a second.
 */
TEST(batch_bytes)
{
	const uint64_t rs = 256 << 10, mib = 1 << 20;
	struct sxm_batch_stat st = { 0 };
	struct play p;

	/* The first batch: 4 MiB, or a quarter second at --rate. */
	EXPECT_EQ(4 * mib, sxm_mirror_batch_bytes(&st, 0, rs));
	EXPECT_EQ(1 * mib, sxm_mirror_batch_bytes(&st, 4 * mib, rs));
	/* A quarter second at the rate measured, in whole regions. */
	EXPECT_EQ(2 * mib, next_after(8.0 * mib, 0, 4 * mib, 0.2, 0.5, rs));
	EXPECT_EQ(16 * mib, next_after(1e12, 0, 16 * mib, 0.2, 0.5, rs));
	EXPECT_EQ(rs, next_after(1000, 0, rs, 0.2, 0.2, rs));
	/* Waited on briefly: twice the last one, whatever the rate says... */
	EXPECT_EQ(2 * rs, next_after(256 << 10, 0, rs, 0.05, 0.1, rs));
	/* ...not at or past half of the quarter second... */
	EXPECT_EQ(rs, next_after(256 << 10, 0, rs, 0.05, 0.15, rs));
	/* ...never smaller than the rate makes it... */
	EXPECT_EQ(8 * mib, next_after(32.0 * mib, 0, 1 * mib, 0.03, 0.05, rs));
	/* ...and never past --rate's quarter second, nor 16 MiB. */
	EXPECT_EQ(1 * mib, next_after(256 << 10, 4 * mib, 1 * mib, 0.05, 0.05,
				      rs));
	EXPECT_EQ(16 * mib, next_after(1000, 0, 16 * mib, 0.01, 0.01, rs));
	/*
	 * The sink slowed down from 64 MiB/s to 5.9: the batch of 16 MiB took
	 * 2.7 s; the next holds a quarter second at 5.9 MiB/s (1.5 MiB, the
	 * nearest whole regions), not at the average of the two.
	 */
	EXPECT_EQ(6 * rs, next_after(35.0 * mib, 0, 16 * mib, 2.7, 2.7, rs));

	/*
	 * From one region, a copy whose batches each cost 50 ms under the
	 * locks plus 8 MiB/s: a quarter second's worth (1-2 MiB) by the
	 * third batch.
	 */
	p = play_batches(rs, 0.05, 8, 2, rs);
	EXPECT_GE(p.b, 1 * mib);
	p = play_batches(rs, 0.05, 8, 8, rs);
	EXPECT_GE(p.b, 1 * mib);
	EXPECT_LE(p.b, 2 * mib);
	EXPECT_LE(p.held * 1000, 300);

	/*
	 * A slow machine: 0.3 s for any batch plus 2 MiB/s.  From 4 MiB the
	 * batches shrink until a small one shows the fixed cost; then they
	 * grow until about half of each is copying (over 1 MiB/s in holds of
	 * 0.6 s), where one region at a time would move a fifth as much.
	 */
	p = play_batches(4 * mib, 0.3, 2, 40, 64 << 10);
	EXPECT_GE(p.mib_s * 100, 100);
	EXPECT_LE(p.max_held * 1000, 900);
	/* The same 0.3 s with a fast copy: 16 MiB batches in 0.46 s. */
	p = play_batches(4 * mib, 0.3, 100, 40, 64 << 10);
	EXPECT_GE(p.mib_s, 16);
	EXPECT_LE(p.max_held * 1000, 500);
	/* 1.5 s: a quarter second of copying past it, not one region. */
	p = play_batches(4 * mib, 1.5, 50, 40, 64 << 10);
	EXPECT_GE(p.mib_s * 100, 50);
	EXPECT_LE(p.max_held * 1000, 1800);
	/* A fast machine at 2 MiB/s: a quarter second (512 KiB) still. */
	p = play_batches(4 * mib, 0.01, 2, 30, 64 << 10);
	EXPECT_EQ(512 << 10, p.b);
	/*
	 * A sink that stalls for 5 s three times, then is itself again
	 * (0.01 s + 8 MiB/s): the stall's fixed cost is measured again within
	 * SXM_BATCH_PROBE batches, and the holds are back at a quarter
	 * second, not at the longest ever allowed.
	 */
	p = play_stall(4 * mib, 0.01, 8, 40, 10, 13, 64 << 10);
	EXPECT_GE(p.b, 1 * mib);
	EXPECT_LE(p.held * 1000, 300);
}

TEST_HARNESS_MAIN
