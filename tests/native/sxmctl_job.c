// SPDX-License-Identifier: GPL-2.0
/*
 * Warm-migration jobs without a kernel: the state machine's rules (which
 * command each phase takes, and the errno and reason of a refusal), the
 * metrics, cadences and names, the record file and the wire line (round
 * trips, escapes, unknown keys, every kind of bad text refused), the
 * control socket's words, and the job store on disk (atomic writes, the
 * lock, a bad record set aside).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "daemon/ctl.h"
#include "jobs/job.h"
#include "jobs/jobstore.h"

#include "kselftest_harness.h"

static void sample(struct sxm_job_rec *j)
{
	sxm_job_rec_init(j);
	strcpy(j->name, "vm1-disk");
	strcpy(j->source, "/dev/vg0/vm1 disk");
	strcpy(j->sink, "nbd://10.0.0.2:10809/vm1?tls=off");
	strcpy(j->device, "vg0-vm1");
	j->src_mode = SXM_SRC_INSERTED;
	j->dev_major = 253;
	j->dev_minor = 7;
	j->size = 64ULL << 30;
	j->cadence_ms = 15 * 60 * 1000;
	j->rate_limit = 100 << 20;
	j->phase = SXM_PHASE_READY;
	j->track_id = 0x8000000000000001ULL;
	j->full_done = j->size;
	j->bytes_full = j->size;
	j->bytes_incr = 123456789;
	j->sync_count = 42;
	j->last_sync_ms = 1700000000123LL;
	j->last_rate = 104857600.5;
	strcpy(j->reason, "sink nbd://h/e: write at 0x10000: 100% broken\nline two");
	sxm_job_add_event(j, 1700000000001LL, "full sync started");
	sxm_job_add_event(j, 1700000000002LL, "a=b c%d\ttab");
}

/* ----------------------------------------------------------- rules ---- */

struct rule {
	enum sxm_phase phase;
	bool paused;
	enum sxm_job_cmd cmd;
	int err;
	const char *says;	/* in the reason, when refused */
};

TEST(rules)
{
	static const struct rule tc[] = {
		{ SXM_PHASE_INITIALIZING, 0, SXM_CMD_SYNC, -EBUSY, "once the full sync is done" },
		{ SXM_PHASE_FULL_SYNC, 0, SXM_CMD_SYNC, -EBUSY, "in Full Sync" },
		{ SXM_PHASE_READY, 0, SXM_CMD_SYNC, 0, NULL },
		{ SXM_PHASE_SYNCING, 0, SXM_CMD_SYNC, 0, NULL },
		{ SXM_PHASE_READY, 1, SXM_CMD_SYNC, -EBUSY, "is paused" },
		{ SXM_PHASE_CUTTING_OVER, 0, SXM_CMD_SYNC, -EBUSY, "cutting over" },
		{ SXM_PHASE_FAILED, 0, SXM_CMD_SYNC, -EINVAL, "retry" },
		{ SXM_PHASE_COMPLETED, 0, SXM_CMD_SYNC, -EINVAL, "stays frozen" },
		{ SXM_PHASE_FULL_SYNC, 0, SXM_CMD_PAUSE, 0, NULL },
		{ SXM_PHASE_READY, 0, SXM_CMD_PAUSE, 0, NULL },
		{ SXM_PHASE_SYNCING, 0, SXM_CMD_PAUSE, 0, NULL },
		{ SXM_PHASE_READY, 1, SXM_CMD_PAUSE, -EALREADY, "paused already" },
		{ SXM_PHASE_INITIALIZING, 0, SXM_CMD_PAUSE, -EINVAL, "can pause" },
		{ SXM_PHASE_CUTTING_OVER, 0, SXM_CMD_PAUSE, -EINVAL, "can pause" },
		{ SXM_PHASE_READY, 1, SXM_CMD_RESUME, 0, NULL },
		{ SXM_PHASE_READY, 0, SXM_CMD_RESUME, -EALREADY, "not paused" },
		{ SXM_PHASE_FAILED, 0, SXM_CMD_CADENCE, 0, NULL },
		{ SXM_PHASE_CANCELLED, 0, SXM_CMD_CADENCE, -EINVAL, "Cancelled" },
		{ SXM_PHASE_READY, 0, SXM_CMD_CUTOVER, 0, NULL },
		{ SXM_PHASE_READY, 1, SXM_CMD_CUTOVER, 0, NULL },
		{ SXM_PHASE_SYNCING, 0, SXM_CMD_CUTOVER, 0, NULL },
		{ SXM_PHASE_INITIALIZING, 0, SXM_CMD_CUTOVER, -EBUSY, "needs the full sync done" },
		{ SXM_PHASE_FULL_SYNC, 0, SXM_CMD_CUTOVER, -EBUSY, "needs the full sync done" },
		{ SXM_PHASE_CUTTING_OVER, 0, SXM_CMD_CUTOVER, -EALREADY, "already" },
		{ SXM_PHASE_FAILED, 0, SXM_CMD_CUTOVER, -EINVAL, "retry" },
		{ SXM_PHASE_COMPLETED, 0, SXM_CMD_CUTOVER, -EINVAL, "Completed" },
		{ SXM_PHASE_INITIALIZING, 0, SXM_CMD_CANCEL, 0, NULL },
		{ SXM_PHASE_CUTTING_OVER, 0, SXM_CMD_CANCEL, 0, NULL },
		{ SXM_PHASE_FAILED, 0, SXM_CMD_CANCEL, 0, NULL },
		{ SXM_PHASE_COMPLETED, 0, SXM_CMD_CANCEL, -EINVAL, "frozen" },
		{ SXM_PHASE_CANCELLED, 0, SXM_CMD_CANCEL, -EINVAL, "Cancelled" },
		{ SXM_PHASE_FAILED, 0, SXM_CMD_RETRY, 0, NULL },
		{ SXM_PHASE_READY, 0, SXM_CMD_RETRY, -EINVAL, "nothing to retry" },
		{ SXM_PHASE_COMPLETED, 0, SXM_CMD_FORGET, 0, NULL },
		{ SXM_PHASE_CANCELLED, 0, SXM_CMD_FORGET, 0, NULL },
		{ SXM_PHASE_READY, 0, SXM_CMD_FORGET, -EBUSY, "cancel it first" },
		{ SXM_PHASE_FAILED, 0, SXM_CMD_FORGET, -EBUSY, "cancel it first" },
	};
	struct sxm_job_rec j;
	char err[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		sxm_job_rec_init(&j);
		strcpy(j.name, "j");
		j.phase = tc[i].phase;
		j.paused = tc[i].paused;
		err[0] = '\0';
		EXPECT_EQ(tc[i].err, sxm_job_check(&j, tc[i].cmd, err, sizeof(err)))
			TH_LOG("case %zu: %s, cmd %d", i,
			       sxm_phase_name(tc[i].phase), tc[i].cmd);
		if (tc[i].says)
			EXPECT_NE(NULL, strstr(err, tc[i].says))
				TH_LOG("case %zu: '%s' lacks '%s'", i, err,
				       tc[i].says);
	}
	/* While a cancel is under way only forget is even looked at. */
	sxm_job_rec_init(&j);
	strcpy(j.name, "j");
	j.phase = SXM_PHASE_READY;
	j.cancelling = true;
	EXPECT_EQ(-EBUSY, sxm_job_check(&j, SXM_CMD_SYNC, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "being cancelled"));
	EXPECT_EQ(-EBUSY, sxm_job_check(&j, SXM_CMD_CANCEL, err, sizeof(err)));
}

TEST(phase_names)
{
	enum sxm_phase p, q;

	for (p = 0; p < SXM_PHASE_NR; p++) {
		ASSERT_EQ(0, sxm_phase_parse(sxm_phase_name(p), &q));
		EXPECT_EQ(p, q);
	}
	EXPECT_STREQ("Full Sync", sxm_phase_name(SXM_PHASE_FULL_SYNC));
	EXPECT_STREQ("Cutting Over", sxm_phase_name(SXM_PHASE_CUTTING_OVER));
	EXPECT_EQ(-EINVAL, sxm_phase_parse("ready", &q));
	EXPECT_EQ(-EINVAL, sxm_phase_parse("", &q));
	EXPECT_STREQ("?", sxm_phase_name(SXM_PHASE_NR));
	EXPECT_TRUE(sxm_phase_final(SXM_PHASE_COMPLETED));
	EXPECT_TRUE(sxm_phase_final(SXM_PHASE_CANCELLED));
	EXPECT_FALSE(sxm_phase_final(SXM_PHASE_FAILED));
}

TEST(job_names)
{
	static const struct {
		const char *name;
		int err;
	} tc[] = {
		{ "vm1", 0 }, { "vg0-lv_1.disk+2", 0 }, { "a", 0 },
		{ "0123456789012345678901234567890123456789012345678901234567890123", 0 },
		{ "01234567890123456789012345678901234567890123456789012345678901234", -EINVAL },
		{ "", -EINVAL }, { ".hidden", -EINVAL }, { "-opt", -EINVAL },
		{ "a/b", -EINVAL }, { "..", -EINVAL }, { "a b", -EINVAL },
		{ "a=b", -EINVAL }, { "a%b", -EINVAL }, { "caf\xc3\xa9", -EINVAL },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++)
		EXPECT_EQ(tc[i].err, sxm_job_name_check(tc[i].name))
			TH_LOG("case %zu", i);
}

TEST(cadences)
{
	static const struct {
		const char *in;
		int err;
		uint64_t ms;
		const char *out;
	} tc[] = {
		{ "manual", 0, 0, "manual" },
		{ "15m", 0, 900000, "15m" },
		{ "1h", 0, 3600000, "1h" },
		{ "1d", 0, 86400000, "1d" },
		{ "90s", 0, 90000, "90s" },
		{ "120s", 0, 120000, "2m" },
		{ "1500ms", 0, 1500, "1500ms" },
		{ "1s", 0, 1000, "1s" },
		{ "25h", 0, 90000000, "25h" },
		{ "48h", 0, 172800000, "2d" },
		{ "999ms", -ERANGE, 0, NULL },
		{ "0", -ERANGE, 0, NULL },
		{ "", -EINVAL, 0, NULL },
		{ "Manual", -EINVAL, 0, NULL },
		{ "1w", -EINVAL, 0, NULL },
		{ "-1h", -EINVAL, 0, NULL },
		{ "1h30m", -EINVAL, 0, NULL },
	};
	char buf[64];
	uint64_t ms;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		ms = 7;
		EXPECT_EQ(tc[i].err, sxm_cadence_parse(tc[i].in, &ms))
			TH_LOG("'%s'", tc[i].in);
		if (tc[i].err) {
			EXPECT_EQ(7, ms);
			continue;
		}
		EXPECT_EQ(tc[i].ms, ms) TH_LOG("'%s'", tc[i].in);
		EXPECT_STREQ(tc[i].out, sxm_cadence_str(ms, buf, sizeof(buf)));
		/* What is shown reads back as the same cadence. */
		EXPECT_EQ(0, sxm_cadence_parse(buf, &ms));
		EXPECT_EQ(tc[i].ms, ms);
	}
}

TEST(metrics)
{
	struct sxm_job_rec j;

	sxm_job_rec_init(&j);
	j.phase = SXM_PHASE_FULL_SYNC;
	sxm_job_metrics(&j, 5000);
	EXPECT_EQ(-1, j.lag_ms);		/* never synced */
	EXPECT_TRUE(j.op_eta < 0);
	EXPECT_TRUE(j.predicted_downtime < 0);	/* no rate, no dirty */

	/* A running copy: ETA from its rate, Rate is its rate. */
	strcpy(j.op, "full sync");
	j.op_done = 25 << 20;
	j.op_total = 100 << 20;
	j.op_rate = 25 << 20;
	j.dirty_bytes = 50 << 20;
	sxm_job_metrics(&j, 5000);
	EXPECT_EQ(3.0, j.op_eta);
	EXPECT_EQ(25 << 20, j.rate);
	EXPECT_EQ(0.1 + 2.0 * 2, j.predicted_downtime);

	/* Idle in Ready: Lag since the last sync, Rate the last sync's. */
	j.op[0] = '\0';
	j.phase = SXM_PHASE_READY;
	j.size = 2000ULL << 20;
	j.last_sync_ms = 2000;
	j.last_rate = 100 << 20;
	j.dirty_bytes = 10 << 20;
	sxm_job_metrics(&j, 5000);
	EXPECT_EQ(3000, j.lag_ms);
	EXPECT_EQ(100 << 20, j.rate);
	EXPECT_TRUE(j.op_eta < 0);
	/*
	 * The cutover would first sync the 10 MiB live (0.1 s, while the guest
	 * dirties 10/3 MiB a second), then freeze for the third of a MiB
	 * dirtied meanwhile: copied and read back at 100 MiB/s.
	 */
	EXPECT_TRUE(fabs(0.1 + 2.0 * (10.0 / 3 * 0.1) / 100 -
			 j.predicted_downtime) < 1e-9);
	/* A guest that dirties as fast as the sink takes: one sync, no more. */
	j.last_sync_ms = 4900;
	sxm_job_metrics(&j, 5000);
	EXPECT_TRUE(fabs(0.1 + 2.0 * 0.1 - j.predicted_downtime) < 1e-9);
	/* Converging slowly: four syncs at the most, each leaving 0.4. */
	j.last_sync_ms = 5000;
	j.dirty_bytes = 1000ULL << 20;
	sxm_job_metrics(&j, 30000);	/* 40 MiB a second dirtied */
	EXPECT_TRUE(fabs(0.1 + 2.0 * (1000 * 0.4 * 0.4 * 0.4 * 0.4) / 100 -
			 j.predicted_downtime) < 1e-9);
	/* Dirtied faster than copied: one sync, the device at the most. */
	j.last_sync_ms = 29000;
	sxm_job_metrics(&j, 30000);
	EXPECT_TRUE(fabs(0.1 + 2.0 * 2000 / 100 - j.predicted_downtime) < 1e-9);
	/* In Syncing, what is dirty now is what it counts. */
	j.phase = SXM_PHASE_SYNCING;
	j.last_sync_ms = 4900;
	j.dirty_bytes = 10 << 20;
	sxm_job_metrics(&j, 5000);
	EXPECT_EQ(0.1 + 2.0 * 0.1, j.predicted_downtime);
	j.phase = SXM_PHASE_READY;

	/* Nothing to predict once it is over, or when dirty is unknown. */
	j.dirty_bytes = -1;
	sxm_job_metrics(&j, 5000);
	EXPECT_TRUE(j.predicted_downtime < 0);
	j.dirty_bytes = 0;
	j.phase = SXM_PHASE_COMPLETED;
	sxm_job_metrics(&j, 5000);
	EXPECT_TRUE(j.predicted_downtime < 0);
}

TEST(events_keep_the_last)
{
	struct sxm_job_rec j;
	char text[32];
	int i;

	sxm_job_rec_init(&j);
	for (i = 0; i < SXM_JOB_EVENTS + 5; i++) {
		snprintf(text, sizeof(text), "event %d", i);
		sxm_job_add_event(&j, i, text);
	}
	ASSERT_EQ(SXM_JOB_EVENTS, j.nr_events);
	EXPECT_EQ(5, j.events[0].t_ms);
	EXPECT_STREQ("event 5", j.events[0].text);
	EXPECT_STREQ("event 36", j.events[SXM_JOB_EVENTS - 1].text);
}

/* ----------------------------------------------------------- texts ---- */

TEST(record_roundtrip)
{
	struct sxm_job_rec a, b;
	char *text;

	sample(&a);
	strcpy(a.op, "sync");		/* live: not saved */
	a.dirty_bytes = 99;
	text = sxm_job_rec_format(&a);
	ASSERT_NE(NULL, text);
	EXPECT_EQ(0, strncmp(text, "sxm-job 1\nname vm1-disk\n", 24));
	/* Readable: spaces stay, '%' and newlines are escaped. */
	EXPECT_NE(NULL, strstr(text, "\nphase Ready\n"));
	EXPECT_NE(NULL, strstr(text, "\nsource /dev/vg0/vm1 disk\n"));
	EXPECT_NE(NULL, strstr(text, "100%25 broken%0Aline two\n"));
	EXPECT_NE(NULL, strstr(text, "\nevent 1700000000002 a=b c%25d%09tab\n"));
	EXPECT_EQ(NULL, strstr(text, "\nop "));
	ASSERT_EQ(0, sxm_job_rec_parse(text, &b));
	free(text);

	EXPECT_STREQ(a.name, b.name);
	EXPECT_STREQ(a.source, b.source);
	EXPECT_STREQ(a.sink, b.sink);
	EXPECT_STREQ(a.reason, b.reason);
	EXPECT_EQ(a.src_mode, b.src_mode);
	EXPECT_EQ(a.phase, b.phase);
	EXPECT_EQ(a.track_id, b.track_id);
	EXPECT_EQ(a.size, b.size);
	EXPECT_EQ(a.sync_count, b.sync_count);
	EXPECT_EQ(a.last_sync_ms, b.last_sync_ms);
	EXPECT_EQ(a.last_rate, b.last_rate);
	EXPECT_EQ(a.dev_minor, b.dev_minor);
	ASSERT_EQ(2, b.nr_events);
	EXPECT_STREQ("a=b c%d\ttab", b.events[1].text);
	EXPECT_EQ(1700000000002LL, b.events[1].t_ms);
	EXPECT_STREQ("", b.op);
	EXPECT_EQ(-1, b.dirty_bytes);
}

TEST(record_defaults_and_unknown_keys)
{
	static const char text[] =
		"sxm-job 1\n"
		"name old\n"
		"source /dev/sdb\n"
		"sink nbd://h/e\n"
		"feature_from_the_future 12\n";
	struct sxm_job_rec j;

	ASSERT_EQ(0, sxm_job_rec_parse(text, &j));
	EXPECT_STREQ("old", j.name);
	EXPECT_EQ(SXM_PHASE_INITIALIZING, j.phase);
	EXPECT_EQ(65536, j.region_size);
	EXPECT_STREQ("warm", j.kind);
	EXPECT_STREQ("auto", j.engine);
}

TEST(record_bad)
{
	static const char *const tc[] = {
		"",
		"sxm-job 0\nname a\nsource /dev/x\nsink nbd://h\n",
		"sxm-job x\nname a\nsource /dev/x\nsink nbd://h\n",
		"name a\nsource /dev/x\nsink nbd://h\n",
		"sxm-job 1\nsource /dev/x\nsink nbd://h\n",			/* no name */
		"sxm-job 1\nname a\nsink nbd://h\n",				/* no source */
		"sxm-job 1\nname a/b\nsource /dev/x\nsink nbd://h\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nphase Readyy\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nsize 12abc\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nsize -1\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nsize 99999999999999999999\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\npaused yes\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\ndev_major 4294967296\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nlast_rate nan\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nsrc_mode copied\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nregion_size 1000\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nreason 50%\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nreason %00\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nnovalue\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nevent 12\n",
		"sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\nevent x text\n",
	};
	struct sxm_job_rec j;
	char big[2048];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++)
		EXPECT_EQ(-EINVAL, sxm_job_rec_parse(tc[i], &j))
			TH_LOG("case %zu", i);
	/* A newer sxm-ctl's record: refused, and told apart. */
	EXPECT_EQ(-EPROTONOSUPPORT,
		  sxm_job_rec_parse("sxm-job 2\nname a\nsource /dev/x\nsink nbd://h\n", &j));
	/* A value longer than its field. */
	snprintf(big, sizeof(big), "sxm-job 1\nname a\nsource /dev/x\nsink nbd://h\ndevice %0200d\n", 0);
	EXPECT_EQ(-ERANGE, sxm_job_rec_parse(big, &j));
}

TEST(wire_roundtrip)
{
	struct sxm_job_rec a, b;
	char *text, *nl, *line;

	sample(&a);
	strcpy(a.op, "full sync");
	a.op_done = 10;
	a.op_total = 20;
	a.dirty_bytes = 65536;
	a.predicted_downtime = 0.25;
	a.want_sync = 43;
	text = sxm_job_wire_format(&a, true);
	ASSERT_NE(NULL, text);
	/* One line for the job, one per event; no raw space in a value. */
	nl = strchr(text, '\n');
	ASSERT_NE(NULL, nl);
	*nl = '\0';
	EXPECT_NE(NULL, strstr(text, " source=/dev/vg0/vm1%20disk "));
	EXPECT_NE(NULL, strstr(text, " phase=Ready "));
	sxm_job_rec_init(&b);
	ASSERT_EQ(0, sxm_job_wire_parse_line(text, &b));
	line = nl + 1;
	nl = strchr(line, '\n');
	ASSERT_NE(NULL, nl);
	*nl = '\0';
	ASSERT_EQ(0, sxm_job_wire_parse_event(line, &b));
	ASSERT_EQ(0, sxm_job_wire_parse_event(nl + 1, &b));
	free(text);

	EXPECT_STREQ(a.source, b.source);
	EXPECT_STREQ(a.reason, b.reason);
	EXPECT_STREQ("full sync", b.op);
	EXPECT_EQ(20, b.op_total);
	EXPECT_EQ(65536, b.dirty_bytes);
	EXPECT_EQ(0.25, b.predicted_downtime);
	EXPECT_EQ(43, b.want_sync);
	EXPECT_EQ(a.bytes_incr, b.bytes_incr);
	ASSERT_EQ(2, b.nr_events);
	EXPECT_STREQ("a=b c%d\ttab", b.events[1].text);
}

TEST(wire_bad)
{
	static const char *const tc[] = {
		"",
		"jobs name=a",
		"job=x name=a",
		"job name=a bare",
		"job name=a size=x",
		"job name=a phase=Nope",
		"job name=a reason=%zz",
		"job name=a/b",
		"job",				/* no name */
	};
	struct sxm_job_rec j;
	char line[128];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		snprintf(line, sizeof(line), "%s", tc[i]);
		sxm_job_rec_init(&j);
		EXPECT_EQ(-EINVAL, sxm_job_wire_parse_line(line, &j))
			TH_LOG("'%s'", tc[i]);
	}
	snprintf(line, sizeof(line), "event t=1");
	EXPECT_EQ(-EINVAL, sxm_job_wire_parse_event(line, &j));
	snprintf(line, sizeof(line), "event t=z text=a");
	EXPECT_EQ(-EINVAL, sxm_job_wire_parse_event(line, &j));
}

TEST(request_words)
{
	struct sxm_kv kv[4];
	struct sxm_buf b = { 0 };
	unsigned int n;
	char *s, line[64];

	sxm_buf_printf(&b, "submit");
	sxm_buf_kv(&b, "source", "/dev/a b");
	sxm_buf_kv(&b, "sink", "nbd://h/e?x=1&y=%2");
	s = sxm_buf_take(&b);
	ASSERT_NE(NULL, s);
	EXPECT_STREQ("submit source=/dev/a%20b sink=nbd://h/e?x%3D1&y%3D%252", s);
	ASSERT_EQ(0, sxm_kv_split(s, kv, ARRAY_SIZE(kv), &n));
	ASSERT_EQ(3, n);
	EXPECT_STREQ("submit", kv[0].key);
	EXPECT_EQ(NULL, kv[0].val);
	EXPECT_STREQ("/dev/a b", sxm_kv_get(kv, n, "source"));
	EXPECT_STREQ("nbd://h/e?x=1&y=%2", sxm_kv_get(kv, n, "sink"));
	EXPECT_EQ(NULL, sxm_kv_get(kv, n, "name"));
	free(s);

	snprintf(line, sizeof(line), "a b c d e");
	EXPECT_EQ(-E2BIG, sxm_kv_split(line, kv, ARRAY_SIZE(kv), &n));
	snprintf(line, sizeof(line), "show job=%%4");
	EXPECT_EQ(-EINVAL, sxm_kv_split(line, kv, ARRAY_SIZE(kv), &n));
	snprintf(line, sizeof(line), "show job=%%00x");
	EXPECT_EQ(-EINVAL, sxm_kv_split(line, kv, ARRAY_SIZE(kv), &n));
}

/* ------------------------------------------------------------ store ---- */

FIXTURE(store) {
	char dir[64];
	int fd;
};

FIXTURE_SETUP(store)
{
	char err[256];

	snprintf(self->dir, sizeof(self->dir), "/tmp/sxm-jobstore-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	strcat(self->dir, "/state");
	self->fd = sxm_jobstore_open(self->dir, err, sizeof(err));
	ASSERT_LE(0, self->fd) TH_LOG("%s", err);
}

FIXTURE_TEARDOWN(store)
{
	char cmd[128];

	close(self->fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)strlen(self->dir) - 6,
		 self->dir);
	if (system(cmd))
		TH_LOG("cleanup failed");
}

struct loaded {
	int n;
	struct sxm_job_rec last;
};

static int count_cb(struct sxm_job_rec *j, void *opaque)
{
	struct loaded *l = opaque;

	l->n++;
	l->last = *j;
	return 0;
}

TEST_F(store, save_load_replace_remove)
{
	struct sxm_job_rec j;
	struct loaded l = { 0 };
	char path[128];
	struct stat st;

	sample(&j);
	ASSERT_EQ(0, sxm_jobstore_save(self->fd, &j));
	j.sync_count = 43;
	ASSERT_EQ(0, sxm_jobstore_save(self->fd, &j));
	snprintf(path, sizeof(path), "%s/vm1-disk.job", self->dir);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(0600, st.st_mode & 0777);
	snprintf(path, sizeof(path), "%s/.vm1-disk.job.tmp", self->dir);
	EXPECT_NE(0, stat(path, &st));		/* no temporary left */
	ASSERT_EQ(0, stat(self->dir, &st));
	EXPECT_EQ(0700, st.st_mode & 0777);

	ASSERT_EQ(0, sxm_jobstore_load(self->fd, count_cb, &l));
	EXPECT_EQ(1, l.n);
	EXPECT_EQ(43, l.last.sync_count);
	EXPECT_STREQ(j.reason, l.last.reason);

	ASSERT_EQ(0, sxm_jobstore_remove(self->fd, "vm1-disk"));
	ASSERT_EQ(0, sxm_jobstore_remove(self->fd, "vm1-disk"));
	l.n = 0;
	ASSERT_EQ(0, sxm_jobstore_load(self->fd, count_cb, &l));
	EXPECT_EQ(0, l.n);
	EXPECT_EQ(-EINVAL, sxm_jobstore_remove(self->fd, "../x"));
}

TEST_F(store, bad_records_are_set_aside)
{
	struct loaded l = { 0 };
	struct sxm_job_rec j;
	char path[128], to[128];
	struct stat st;
	FILE *f;

	sample(&j);
	ASSERT_EQ(0, sxm_jobstore_save(self->fd, &j));
	snprintf(path, sizeof(path), "%s/junk.job", self->dir);
	f = fopen(path, "w");
	ASSERT_NE(NULL, f);
	fputs("not a record\n", f);
	fclose(f);
	/* A record whose name is not its file's. */
	strcpy(j.name, "other");
	ASSERT_EQ(0, sxm_jobstore_save(self->fd, &j));
	snprintf(path, sizeof(path), "%s/other.job", self->dir);
	snprintf(to, sizeof(to), "%s/moved.job", self->dir);
	ASSERT_EQ(0, rename(path, to));

	ASSERT_EQ(0, sxm_jobstore_load(self->fd, count_cb, &l));
	EXPECT_EQ(1, l.n);
	EXPECT_STREQ("vm1-disk", l.last.name);
	snprintf(path, sizeof(path), "%s/junk.job.bad", self->dir);
	EXPECT_EQ(0, stat(path, &st));
	snprintf(path, sizeof(path), "%s/moved.job.bad", self->dir);
	EXPECT_EQ(0, stat(path, &st));
}

TEST_F(store, one_daemon_at_a_time)
{
	char err[256];

	EXPECT_EQ(-EWOULDBLOCK, sxm_jobstore_open(self->dir, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "another sxm-ctl daemon uses it"));
}

/* --------------------------------------------- the client's answers ---- */

/* A "daemon" that takes one request and closes without a word. */
static void *dies_mid_request(void *arg)
{
	int lfd = *(int *)arg, fd;
	char buf[256];

	fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	return NULL;
}

TEST(client_daemon_gone_mid_request)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[512], *body = NULL;
	pthread_t t;
	int lfd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/sxm-ctl-test-%d.sock",
		 getpid());
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, listen(lfd, 1));
	setenv("SXM_SOCKET", sa.sun_path, 1);
	ASSERT_EQ(0, pthread_create(&t, NULL, dies_mid_request, &lfd));
	EXPECT_EQ(-ECONNRESET, sxm_ctl_call("list", &body, err, sizeof(err)));
	EXPECT_EQ(NULL, body);
	/* Not a permission problem: the daemon tells a refused peer so. */
	EXPECT_NE(NULL, strstr(err, "stopped or died while handling the request"));
	EXPECT_EQ(NULL, strstr(err, "--group"));
	pthread_join(t, NULL);
	close(lfd);
	unlink(sa.sun_path);
	unsetenv("SXM_SOCKET");
}

TEST_HARNESS_MAIN
