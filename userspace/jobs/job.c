// SPDX-License-Identifier: GPL-2.0
/*
 * Warm-migration jobs (job.h): phases, the state machine's rules, metrics,
 * and the record and wire texts, both made from the one field table below.
 *
 * Sections: names, durations, rules, metrics, fields, record, wire.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sxm.h"
#include "base/buf.h"
#include "jobs/job.h"

/* ------------------------------------------------------------------ */
/* Names                                                              */
/* ------------------------------------------------------------------ */

static const char *const phase_names[SXM_PHASE_NR] = {
	[SXM_PHASE_INITIALIZING] = "Initializing",
	[SXM_PHASE_FULL_SYNC] = "Full Sync",
	[SXM_PHASE_READY] = "Ready",
	[SXM_PHASE_SYNCING] = "Syncing",
	[SXM_PHASE_CUTTING_OVER] = "Cutting Over",
	[SXM_PHASE_COMPLETED] = "Completed",
	[SXM_PHASE_FAILED] = "Failed",
	[SXM_PHASE_CANCELLED] = "Cancelled",
	[SXM_PHASE_PREPARING] = "Preparing",
	[SXM_PHASE_COPYING] = "Mirroring + Copying",
	[SXM_PHASE_COMPOSING] = "Composing",
	[SXM_PHASE_MIRRORED] = "Mirrored",
};

static const char *const src_mode_names[SXM_SRC_NR] = {
	[SXM_SRC_EXISTING] = "existing",
	[SXM_SRC_INSERTED] = "inserted",
	[SXM_SRC_CREATED] = "created",
};

const char *sxm_phase_name(enum sxm_phase p)
{
	return (unsigned int)p < SXM_PHASE_NR ? phase_names[p] : "?";
}

int sxm_phase_parse(const char *s, enum sxm_phase *p)
{
	unsigned int i;

	for (i = 0; i < SXM_PHASE_NR; i++)
		if (!strcmp(s, phase_names[i])) {
			*p = i;
			return 0;
		}
	return -EINVAL;
}

const char *sxm_src_mode_name(enum sxm_src_mode m)
{
	return (unsigned int)m < SXM_SRC_NR ? src_mode_names[m] : "?";
}

static int src_mode_parse(const char *s, enum sxm_src_mode *m)
{
	unsigned int i;

	for (i = 0; i < SXM_SRC_NR; i++)
		if (!strcmp(s, src_mode_names[i])) {
			*m = i;
			return 0;
		}
	return -EINVAL;
}

bool sxm_job_is_mirror(const struct sxm_job_rec *rec)
{
	return !strcmp(rec->kind, SXM_KIND_MIRROR);
}

bool sxm_phase_final(enum sxm_phase p)
{
	return p == SXM_PHASE_COMPLETED || p == SXM_PHASE_CANCELLED;
}

int sxm_job_name_check(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > SXM_JOB_NAME_MAX || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '+'))
			return -EINVAL;
	}
	return 0;
}

int64_t sxm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Durations                                                          */
/* ------------------------------------------------------------------ */

int sxm_cadence_parse(const char *s, uint64_t *ms)
{
	uint64_t v;
	int r;

	if (!strcmp(s, "manual")) {
		*ms = 0;
		return 0;
	}
	r = parse_duration_ms(s, &v);
	if (r)
		return r;
	if (v < 1000)
		return -ERANGE;
	*ms = v;
	return 0;
}

const char *sxm_cadence_str(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" },
		{ 1000, "s" }, { 1, "ms" },
	};
	size_t i;

	if (!ms) {
		snprintf(buf, len, "manual");
		return buf;
	}
	/* The largest unit that divides it: what sxm_cadence_parse() reads. */
	for (i = 0; ms % units[i].ms; i++)
		;
	snprintf(buf, len, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
	return buf;
}

const char *sxm_duration_str(double secs, char *buf, size_t len)
{
	uint64_t s;

	if (secs < 0 || isnan(secs)) {
		snprintf(buf, len, "-");
	} else if (secs < 10) {
		snprintf(buf, len, "%.2f s", secs);
	} else if (secs < 60) {
		snprintf(buf, len, "%.0f s", secs);
	} else {
		s = (uint64_t)secs;
		if (s < 3600)
			snprintf(buf, len, "%" PRIu64 "m %02" PRIu64 "s",
				 s / 60, s % 60);
		else if (s < 86400)
			snprintf(buf, len, "%" PRIu64 "h %02" PRIu64 "m",
				 s / 3600, s / 60 % 60);
		else
			snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h",
				 s / 86400, s / 3600 % 24);
	}
	return buf;
}

/* ------------------------------------------------------------------ */
/* Rules                                                              */
/* ------------------------------------------------------------------ */

void sxm_job_rec_init(struct sxm_job_rec *j)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->kind, sizeof(j->kind), SXM_KIND_WARM);
	snprintf(j->engine, sizeof(j->engine), "auto");
	j->region_size = SXM_DEFAULT_REGION_SIZE;
	j->phase = SXM_PHASE_INITIALIZING;
	j->fail_phase = SXM_PHASE_INITIALIZING;
	j->op_eta = -1;
	j->dirty_bytes = -1;
	j->lag_ms = -1;
	j->predicted_downtime = -1;
}

void sxm_job_add_event(struct sxm_job_rec *j, int64_t t_ms,
		       const char *text)
{
	struct sxm_job_event *e;

	if (j->nr_events == SXM_JOB_EVENTS) {
		memmove(&j->events[0], &j->events[1],
			sizeof(j->events[0]) * (SXM_JOB_EVENTS - 1));
		j->nr_events--;
	}
	e = &j->events[j->nr_events++];
	e->t_ms = t_ms;
	snprintf(e->text, sizeof(e->text), "%s", text);
}

__attribute__((format(printf, 4, 5)))
static int refuse(int err, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return err;
}

/* A Failed job takes the command only after a retry. */
static int refuse_failed(const struct sxm_job_rec *j, char *err,
			 size_t errlen)
{
	return refuse(-EINVAL, err, errlen,
		      "job %s failed (%s): sxm-ctl retry %s first",
		      j->name, j->reason, j->name);
}

/*
 * A cutover, the same in both styles but for the phases it may start in
 * (@ready: the job is in one of them) and what it waits for (@needs).
 */
static int check_cutover(const struct sxm_job_rec *j, bool ready,
			 const char *needs, char *err, size_t errlen)
{
	if (ready)
		return 0;
	if (j->phase == SXM_PHASE_CUTTING_OVER)
		return refuse(-EALREADY, err, errlen,
			      "job %s is cutting over already", j->name);
	if (j->phase == SXM_PHASE_FAILED)
		return refuse_failed(j, err, errlen);
	return refuse(-EBUSY, err, errlen, "job %s is in %s: cutover needs %s",
		      j->name, sxm_phase_name(j->phase), needs);
}

/* The rules for a mirror-style job (kind "sxm"), after the common ones. */
static int check_mirror(const struct sxm_job_rec *j, enum sxm_job_cmd cmd,
			char *err, size_t errlen)
{
	const char *ph = sxm_phase_name(j->phase);
	enum sxm_phase p = j->phase;

	switch (cmd) {
	case SXM_CMD_SYNC:
		return refuse(-EINVAL, err, errlen,
			      "job %s is mirror-style: the mirror keeps the sink in step, there is nothing to sync",
			      j->name);
	case SXM_CMD_CADENCE:
		return refuse(-EINVAL, err, errlen,
			      "job %s is mirror-style: it has no cadence",
			      j->name);
	case SXM_CMD_PAUSE:
		if (j->paused)
			return refuse(-EALREADY, err, errlen,
				      "job %s is paused already", j->name);
		if (p == SXM_PHASE_COPYING)
			return 0;
		return refuse(-EINVAL, err, errlen,
			      "job %s is %s: only the bulk copy (Mirroring + Copying) can pause; the mirror never does",
			      j->name, ph);
	case SXM_CMD_CUTOVER:
		return check_cutover(j, p == SXM_PHASE_MIRRORED,
				     "the mirror composed (Mirrored)", err,
				     errlen);
	case SXM_CMD_MIRROR:
		return refuse(-EALREADY, err, errlen,
			      "job %s is mirror-style already (%s)", j->name, ph);
	default:
		return 1;	/* as for a warm job */
	}
}

int sxm_job_check(const struct sxm_job_rec *j, enum sxm_job_cmd cmd,
		  char *err, size_t errlen)
{
	const char *ph = sxm_phase_name(j->phase);
	enum sxm_phase p = j->phase;

	if (j->cancelling && cmd != SXM_CMD_FORGET)
		return refuse(-EBUSY, err, errlen,
			      "job %s is being cancelled", j->name);
	if (sxm_phase_final(p) && cmd != SXM_CMD_FORGET)
		return refuse(-EINVAL, err, errlen, "job %s is %s%s", j->name,
			      ph, p == SXM_PHASE_COMPLETED ?
			      ": its source stays frozen" : "");

	if (sxm_job_is_mirror(j)) {
		int r = check_mirror(j, cmd, err, errlen);

		if (r <= 0)
			return r;
	}

	switch (cmd) {
	case SXM_CMD_SYNC:
		if (p == SXM_PHASE_INITIALIZING || p == SXM_PHASE_FULL_SYNC)
			return refuse(-EBUSY, err, errlen,
				      "job %s is in %s: incremental syncs start once the full sync is done",
				      j->name, ph);
		if (p == SXM_PHASE_FAILED)
			return refuse_failed(j, err, errlen);
		if (p == SXM_PHASE_CUTTING_OVER)
			return refuse(-EBUSY, err, errlen,
				      "job %s is cutting over", j->name);
		if (j->paused)
			return refuse(-EBUSY, err, errlen,
				      "job %s is paused: sxm-ctl resume %s first",
				      j->name, j->name);
		return 0;
	case SXM_CMD_PAUSE:
		if (j->paused)
			return refuse(-EALREADY, err, errlen,
				      "job %s is paused already", j->name);
		if (p == SXM_PHASE_FULL_SYNC || p == SXM_PHASE_READY ||
		    p == SXM_PHASE_SYNCING)
			return 0;
		return refuse(-EINVAL, err, errlen,
			      "job %s is %s: only Full Sync, Ready and Syncing can pause",
			      j->name, ph);
	case SXM_CMD_RESUME:
		if (!j->paused)
			return refuse(-EALREADY, err, errlen,
				      "job %s is not paused", j->name);
		return 0;
	case SXM_CMD_CADENCE:
		return 0;
	case SXM_CMD_CUTOVER:
		return check_cutover(j, p == SXM_PHASE_READY ||
					p == SXM_PHASE_SYNCING,
				     "the full sync done (Ready)", err, errlen);
	case SXM_CMD_CANCEL:
		return 0;
	case SXM_CMD_RETRY:
		if (p != SXM_PHASE_FAILED)
			return refuse(-EINVAL, err, errlen,
				      "job %s is %s, not Failed: nothing to retry",
				      j->name, ph);
		return 0;
	case SXM_CMD_VERIFY:
		if (p == SXM_PHASE_READY || p == SXM_PHASE_SYNCING ||
		    p == SXM_PHASE_MIRRORED)
			return 0;
		if (p == SXM_PHASE_FAILED)
			return refuse_failed(j, err, errlen);
		return refuse(-EBUSY, err, errlen,
			      "job %s is %s: a verify runs once it is %s",
			      j->name, ph, sxm_job_is_mirror(j) ? "Mirrored" :
			      "Ready");
	case SXM_CMD_FORGET:
		if (!sxm_phase_final(p))
			return refuse(-EBUSY, err, errlen,
				      "job %s is %s: only Completed or Cancelled jobs can be forgotten (cancel it first)",
				      j->name, ph);
		return 0;
	case SXM_CMD_MIRROR:
		if (p == SXM_PHASE_READY && !j->paused)
			return 0;
		if (p == SXM_PHASE_READY)
			return refuse(-EBUSY, err, errlen,
				      "job %s is paused: sxm-ctl resume %s first",
				      j->name, j->name);
		if (p == SXM_PHASE_FAILED)
			return refuse_failed(j, err, errlen);
		return refuse(-EBUSY, err, errlen,
			      "job %s is in %s: it switches to mirror style from Ready",
			      j->name, ph);
	}
	return refuse(-EINVAL, err, errlen, "unknown command");
}

/* ------------------------------------------------------------------ */
/* Metrics                                                            */
/* ------------------------------------------------------------------ */

bool sxm_job_catchup_done(double dirty, double before, double rate,
			  uint64_t syncs)
{
	return dirty <= 0 || dirty <= rate * SXM_CATCHUP_TARGET_S ||
	       (before >= 0 && dirty > before / 2) ||
	       syncs >= SXM_CATCHUP_MAX;
}

/*
 * What a warm cutover would copy frozen if asked now: @dirty played
 * through the catch-up, each sync taking dirty / @rate seconds during
 * which the guest dirties @dirtying bytes a second, of @size at most.
 */
static double frozen_bytes(double dirty, double rate, double dirtying,
			   double size)
{
	double before = -1;
	uint64_t n;

	for (n = 0; !sxm_job_catchup_done(dirty, before, rate, n); n++) {
		before = dirty;
		dirty = fmin(dirtying * dirty / rate, size);
	}
	return dirty;
}

uint64_t sxm_mirror_batch_bytes(const struct sxm_batch_stat *st,
				double limit, uint64_t rs)
{
	double secs = SXM_BATCH_SECS, rate = st->rate, want, cap;

	/*
	 * Half of each batch copying, if its fixed costs take more; at most
	 * a second, or a quarter second past them.
	 */
	if (secs < 2 * st->fixed)
		secs = 2 * st->fixed;
	cap = st->fixed + SXM_BATCH_SECS;
	if (cap < SXM_BATCH_SECS_MAX)
		cap = SXM_BATCH_SECS_MAX;
	if (secs > cap)
		secs = cap;
	/* Longer for the fixed cost: measure it again now and then. */
	if (secs > SXM_BATCH_SECS && st->since_small >= SXM_BATCH_PROBE)
		return SXM_BATCH_SMALL < rs ? rs : SXM_BATCH_SMALL / rs * rs;
	/* Slower than the rate said: at once, not as the average follows. */
	if (st->bytes && st->held > secs &&
	    (rate <= 0 || rate > st->bytes / st->held))
		rate = st->bytes / st->held;
	if (limit > 0 && (rate <= 0 || rate > limit))
		rate = limit;
	want = rate > 0 ? rate * secs : SXM_BATCH_FIRST;
	if (st->bytes && st->waited < secs / 2 && want < 2.0 * st->bytes)
		want = 2.0 * st->bytes;
	if (limit > 0 && want > limit * secs)
		want = limit * secs;
	if (want > SXM_BATCH_MAX)
		want = SXM_BATCH_MAX;
	if (want < rs)
		want = rs;
	return (uint64_t)(want + rs / 2) / rs * rs;
}

/*
 * The fixed cost of a batch, what one of no bytes would hold the locks
 * for: a small batch's hold is mostly that.  No batch's fixed cost is
 * more than its hold, so the last hold bounds it, and a small batch's
 * hold that is less is taken at once: a spell of slow batches is
 * forgotten as soon as a small one is fast (sxm_mirror_batch_bytes()
 * makes one now and then while the fixed cost makes batches longer).
 */
static void batch_fixed(struct sxm_batch_stat *st, uint64_t bytes,
			uint64_t rs, double held)
{
	if (bytes <= rs || bytes <= SXM_BATCH_SMALL) {
		/* Less at once, more as an average. */
		st->fixed = st->fixed > 0 && held > st->fixed ?
			    0.5 * st->fixed + 0.5 * held : held;
		st->since_small = 0;
	} else {
		st->since_small++;
	}
	if (st->fixed > held)
		st->fixed = held;
}

void sxm_mirror_batch_done(struct sxm_batch_stat *st, uint64_t bytes,
			   double held, double waited, uint64_t rs)
{
	if (held <= 0 || !bytes)
		return;
	st->rate = st->rate > 0 ? 0.5 * st->rate + 0.5 * bytes / held :
				  bytes / held;
	batch_fixed(st, bytes, rs, held);
	st->bytes = bytes;
	st->held = held;
	st->waited = waited;
}

void sxm_job_metrics(struct sxm_job_rec *j, int64_t now_ms)
{
	bool mirrored = j->phase == SXM_PHASE_MIRRORED &&
			!strcmp(j->mirror, "on");
	double rate;

	/* Mirrored with the mirror on, the sink has every completed write. */
	if (mirrored)
		j->lag_ms = 0;
	else
		j->lag_ms = j->last_sync_ms ? now_ms - j->last_sync_ms : -1;
	if (j->lag_ms < -1)
		j->lag_ms = 0;
	j->rate = j->op[0] ? j->op_rate : j->last_rate;
	if (j->op[0] && j->op_rate > 0 && j->op_total >= j->op_done)
		j->op_eta = (j->op_total - j->op_done) / j->op_rate;
	else
		j->op_eta = -1;
	rate = j->last_rate > 0 ? j->last_rate : j->op_rate;
	/*
	 * A mirror-style cutover copies nothing: it waits for the writes in
	 * flight to reach the sink and then flushes it, about two round trips.
	 */
	if (mirrored && j->lat_p50_us)
		j->predicted_downtime = 2.0 * j->lat_p50_us / 1e6;
	else if (j->dirty_bytes >= 0 && rate > 0 &&
		 j->phase == SXM_PHASE_READY && j->lag_ms > 0)
		j->predicted_downtime = 0.1 + 2.0 *
			frozen_bytes(j->dirty_bytes, rate,
				     j->dirty_bytes * 1000.0 / j->lag_ms,
				     j->size) / rate;
	else if (j->dirty_bytes >= 0 && rate > 0 &&
	    (j->phase == SXM_PHASE_READY || j->phase == SXM_PHASE_SYNCING ||
	     j->phase == SXM_PHASE_FULL_SYNC || j->phase == SXM_PHASE_MIRRORED))
		j->predicted_downtime = 0.1 + 2.0 * j->dirty_bytes / rate;
	else
		j->predicted_downtime = -1;
}

/* ------------------------------------------------------------------ */
/* Fields                                                             */
/* ------------------------------------------------------------------ */

enum ftype { F_STR, F_U64, F_I64, F_U32, F_DBL, F_BOOL, F_PHASE, F_MODE };

#define F_SAVE	(1u << 0)	/* in the record file */
#define F_WIRE	(1u << 1)	/* sent to the CLI */
#define F_BOTH	(F_SAVE | F_WIRE)

struct field {
	const char *key;
	enum ftype type;
	size_t off;
	size_t size;
	unsigned int flags;
};

#define FLD(k, t, m, f) \
	{ k, t, offsetof(struct sxm_job_rec, m), \
	  sizeof(((struct sxm_job_rec *)0)->m), f }

static const struct field fields[] = {
	FLD("name", F_STR, name, F_BOTH),
	FLD("kind", F_STR, kind, F_BOTH),
	FLD("source", F_STR, source, F_BOTH),
	FLD("sink", F_STR, sink, F_BOTH),
	FLD("engine", F_STR, engine, F_BOTH),
	FLD("cadence_ms", F_U64, cadence_ms, F_BOTH),
	FLD("rate_limit", F_U64, rate_limit, F_BOTH),
	FLD("region_size", F_U64, region_size, F_BOTH),
	FLD("io_timeout_ms", F_U64, io_timeout_ms, F_BOTH),
	FLD("metadata", F_STR, metadata, F_BOTH),
	FLD("src_mode", F_MODE, src_mode, F_BOTH),
	FLD("device", F_STR, device, F_BOTH),
	FLD("dev_major", F_U32, dev_major, F_BOTH),
	FLD("dev_minor", F_U32, dev_minor, F_BOTH),
	FLD("size", F_U64, size, F_BOTH),
	FLD("orig_track", F_BOOL, orig_track, F_SAVE),
	FLD("boot_id", F_STR, boot_id, F_SAVE),
	FLD("phase", F_PHASE, phase, F_BOTH),
	FLD("paused", F_BOOL, paused, F_BOTH),
	FLD("cancelling", F_BOOL, cancelling, F_BOTH),
	FLD("fail_phase", F_PHASE, fail_phase, F_BOTH),
	FLD("reason", F_STR, reason, F_BOTH),
	FLD("track_id", F_U64, track_id, F_BOTH),
	FLD("full_done", F_U64, full_done, F_BOTH),
	FLD("engine_used", F_STR, engine_used, F_BOTH),
	FLD("sink_zero", F_BOOL, sink_zero, F_SAVE),
	FLD("sink_resync", F_BOOL, sink_resync, F_BOTH),
	FLD("sink_size", F_U64, sink_size, F_BOTH),
	FLD("sink_block_min", F_U32, sink_block_min, F_BOTH),
	FLD("sink_block_max", F_U32, sink_block_max, F_BOTH),
	FLD("sink_checks", F_U64, sink_checks, F_BOTH),
	FLD("sink_changes", F_U64, sink_changes, F_BOTH),
	FLD("sink_checked_ms", F_I64, sink_checked_ms, F_BOTH),
	FLD("no_verify", F_BOOL, no_verify, F_BOTH),
	FLD("verified_all", F_BOOL, verified_all, F_BOTH),
	FLD("verify_passes", F_U64, verify_passes, F_BOTH),
	FLD("verify_last_ms", F_I64, verify_last_ms, F_BOTH),
	FLD("verify_mismatches", F_U64, verify_mismatches, F_BOTH),
	FLD("created_ms", F_I64, created_ms, F_BOTH),
	FLD("last_sync_ms", F_I64, last_sync_ms, F_BOTH),
	FLD("bytes_full", F_U64, bytes_full, F_BOTH),
	FLD("bytes_incr", F_U64, bytes_incr, F_BOTH),
	FLD("sync_count", F_U64, sync_count, F_BOTH),
	FLD("last_sync_bytes", F_U64, last_sync_bytes, F_BOTH),
	FLD("last_sync_secs", F_DBL, last_sync_secs, F_BOTH),
	FLD("last_rate", F_DBL, last_rate, F_BOTH),
	FLD("cutover_bytes", F_U64, cutover_bytes, F_BOTH),
	FLD("verified_bytes", F_U64, verified_bytes, F_BOTH),
	FLD("downtime_ms", F_U64, downtime_ms, F_BOTH),
	FLD("freeze_ms", F_I64, freeze_ms, F_SAVE),
	FLD("cutover_failures", F_U64, cutover_failures, F_BOTH),
	FLD("catchup_syncs", F_U64, catchup_syncs, F_BOTH),
	FLD("degradations", F_U64, degradations, F_BOTH),
	FLD("degraded_ms", F_U64, degraded_ms, F_BOTH),
	FLD("degraded_reason", F_STR, degraded_reason, F_BOTH),
	FLD("degraded_reasons", F_STR, degraded_reasons, F_BOTH),
	FLD("op", F_STR, op, F_WIRE),
	FLD("op_done", F_U64, op_done, F_WIRE),
	FLD("op_total", F_U64, op_total, F_WIRE),
	FLD("op_rate", F_DBL, op_rate, F_WIRE),
	FLD("op_eta", F_DBL, op_eta, F_WIRE),
	FLD("next_sync_ms", F_I64, next_sync_ms, F_WIRE),
	FLD("dirty_bytes", F_I64, dirty_bytes, F_WIRE),
	FLD("lag_ms", F_I64, lag_ms, F_WIRE),
	FLD("rate", F_DBL, rate, F_WIRE),
	FLD("predicted_downtime", F_DBL, predicted_downtime, F_WIRE),
	FLD("want_sync", F_U64, want_sync, F_WIRE),
	FLD("retrying", F_BOOL, retrying, F_WIRE),
	FLD("verified_now", F_U64, verified_now, F_WIRE),
	FLD("verify_asked", F_U64, verify_asked, F_BOTH),
	FLD("verify_answered", F_U64, verify_answered, F_BOTH),
	FLD("mirror", F_STR, mirror, F_BOTH),
	FLD("mirror_reason", F_STR, mirror_reason, F_WIRE),
	FLD("mirrored_writes", F_U64, mirrored_writes, F_BOTH),
	FLD("mirrored_bytes", F_U64, mirrored_bytes, F_BOTH),
	FLD("mirror_in_flight", F_U64, mirror_in_flight, F_WIRE),
	FLD("mirror_held_back", F_U64, mirror_held_back, F_WIRE),
	FLD("lat_p50_us", F_U64, lat_p50_us, F_WIRE),
	FLD("lat_p99_us", F_U64, lat_p99_us, F_WIRE),
	FLD("meta_state", F_STR, meta_state, F_WIRE),
	FLD("meta_bits", F_U64, meta_bits, F_WIRE),
	FLD("meta_writes", F_U64, meta_writes, F_WIRE),
	FLD("meta_write_us", F_U64, meta_write_us, F_WIRE),
	FLD("meta_loaded", F_STR, meta_loaded, F_WIRE),
	FLD("meta_clean_time", F_U64, meta_clean_time, F_WIRE),
	FLD("meta_reason", F_STR, meta_reason, F_WIRE),
};

static void field_str(const struct field *f, const struct sxm_job_rec *j,
		      char *buf, size_t len)
{
	const void *p = (const char *)j + f->off;

	switch (f->type) {
	case F_STR:
		snprintf(buf, len, "%s", (const char *)p);
		break;
	case F_U64:
		snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p);
		break;
	case F_I64:
		snprintf(buf, len, "%" PRId64, *(const int64_t *)p);
		break;
	case F_U32:
		snprintf(buf, len, "%" PRIu32, *(const uint32_t *)p);
		break;
	case F_DBL:
		snprintf(buf, len, "%.17g", *(const double *)p);
		break;
	case F_BOOL:
		snprintf(buf, len, "%d", *(const bool *)p ? 1 : 0);
		break;
	case F_PHASE:
		snprintf(buf, len, "%s",
			 sxm_phase_name(*(const enum sxm_phase *)p));
		break;
	case F_MODE:
		snprintf(buf, len, "%s",
			 sxm_src_mode_name(*(const enum sxm_src_mode *)p));
		break;
	}
}

static int parse_i64(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int field_set(const struct field *f, struct sxm_job_rec *j,
		     const char *val)
{
	void *p = (char *)j + f->off;
	uint64_t u;
	int64_t i;
	double d;
	char *end;

	switch (f->type) {
	case F_STR:
		if (strlen(val) >= f->size)
			return -ERANGE;
		strcpy(p, val);
		return 0;
	case F_U64:
		if (parse_u64(val, &u))
			return -EINVAL;
		*(uint64_t *)p = u;
		return 0;
	case F_I64:
		if (parse_i64(val, &i))
			return -EINVAL;
		*(int64_t *)p = i;
		return 0;
	case F_U32:
		if (parse_u64(val, &u) || u > UINT32_MAX)
			return -EINVAL;
		*(uint32_t *)p = u;
		return 0;
	case F_DBL:
		if (!*val)
			return -EINVAL;
		errno = 0;
		d = strtod(val, &end);
		if (errno || *end || isnan(d))
			return -EINVAL;
		*(double *)p = d;
		return 0;
	case F_BOOL:
		if (strcmp(val, "0") && strcmp(val, "1"))
			return -EINVAL;
		*(bool *)p = val[0] == '1';
		return 0;
	case F_PHASE:
		return sxm_phase_parse(val, p);
	case F_MODE:
		return src_mode_parse(val, p);
	}
	return -EINVAL;
}

static const struct field *field_find(const char *key, unsigned int flag)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fields); i++)
		if ((fields[i].flags & flag) && !strcmp(fields[i].key, key))
			return &fields[i];
	return NULL;
}

/* After reading: what a record must have, and what must hold. */
static int rec_check(const struct sxm_job_rec *j)
{
	if (sxm_job_name_check(j->name))
		return -EINVAL;
	if (!j->sink[0] || !j->source[0])
		return -EINVAL;
	if (j->region_size < 4096 || (j->region_size & (j->region_size - 1)))
		return -EINVAL;
	/* --io-timeout's bounds (0: the default), as submit checks them. */
	if (j->io_timeout_ms && (j->io_timeout_ms < 1000 ||
				 j->io_timeout_ms > 3600 * 1000))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Record                                                             */
/* ------------------------------------------------------------------ */

char *sxm_job_rec_format(const struct sxm_job_rec *j)
{
	struct sxm_buf b = { 0 };
	char val[1100];
	unsigned int i;

	sxm_buf_printf(&b, "sxm-job %d\n", SXM_JOB_RECORD_VERSION);
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!(fields[i].flags & F_SAVE))
			continue;
		field_str(&fields[i], j, val, sizeof(val));
		sxm_buf_printf(&b, "%s ", fields[i].key);
		sxm_buf_escape(&b, val, false);
		sxm_buf_printf(&b, "\n");
	}
	for (i = 0; i < j->nr_events; i++) {
		sxm_buf_printf(&b, "event %" PRId64 " ", j->events[i].t_ms);
		sxm_buf_escape(&b, j->events[i].text, false);
		sxm_buf_printf(&b, "\n");
	}
	return sxm_buf_take(&b);
}

/*
 * A record's first line: ours, -EPROTONOSUPPORT from a newer sxm-ctl
 * (a format this one does not know), or -EINVAL.
 */
static int rec_header(const char *line)
{
	uint64_t v;

	if (strncmp(line, "sxm-job ", 8) || parse_u64(line + 8, &v))
		return -EINVAL;
	if (v > SXM_JOB_RECORD_VERSION)
		return -EPROTONOSUPPORT;
	return v == SXM_JOB_RECORD_VERSION ? 0 : -EINVAL;
}

int sxm_job_rec_parse(const char *text, struct sxm_job_rec *j)
{
	char *copy, *line, *save = NULL, *val, *sp;
	const struct field *f;
	int64_t t;
	int r = 0, n = 0;

	sxm_job_rec_init(j);
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line && !r;
	     line = strtok_r(NULL, "\n", &save), n++) {
		if (n == 0) {
			r = rec_header(line);
			continue;
		}
		sp = strchr(line, ' ');
		if (!sp) {
			r = -EINVAL;
			break;
		}
		*sp = '\0';
		val = sp + 1;
		if (!strcmp(line, "event")) {
			sp = strchr(val, ' ');
			if (!sp) {
				r = -EINVAL;
				break;
			}
			*sp = '\0';
			r = parse_i64(val, &t);
			if (!r)
				r = sxm_unescape(sp + 1);
			if (!r)
				sxm_job_add_event(j, t, sp + 1);
			continue;
		}
		r = sxm_unescape(val);
		if (r)
			break;
		f = field_find(line, F_SAVE);
		if (f)
			r = field_set(f, j, val);
	}
	if (!r && n == 0)
		r = -EINVAL;
	if (!r)
		r = rec_check(j);
	free(copy);
	return r;
}

/* ------------------------------------------------------------------ */
/* Wire                                                               */
/* ------------------------------------------------------------------ */

char *sxm_job_wire_format(const struct sxm_job_rec *j, bool events)
{
	struct sxm_buf b = { 0 };
	char val[1100];
	unsigned int i;

	sxm_buf_printf(&b, "job");
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!(fields[i].flags & F_WIRE))
			continue;
		field_str(&fields[i], j, val, sizeof(val));
		sxm_buf_kv(&b, fields[i].key, val);
	}
	for (i = 0; events && i < j->nr_events; i++) {
		sxm_buf_printf(&b, "\nevent t=%" PRId64, j->events[i].t_ms);
		sxm_buf_kv(&b, "text", j->events[i].text);
	}
	return sxm_buf_take(&b);
}

int sxm_job_wire_parse_line(char *line, struct sxm_job_rec *j)
{
	struct sxm_kv kv[96];
	const struct field *f;
	unsigned int n, i;
	int r;

	r = sxm_kv_split(line, kv, ARRAY_SIZE(kv), &n);
	if (r)
		return r;
	if (!n || strcmp(kv[0].key, "job") || kv[0].val)
		return -EINVAL;
	for (i = 1; i < n; i++) {
		if (!kv[i].val)
			return -EINVAL;
		f = field_find(kv[i].key, F_WIRE);
		if (!f)
			continue;
		r = field_set(f, j, kv[i].val);
		if (r)
			return r;
	}
	return sxm_job_name_check(j->name);
}

int sxm_job_wire_parse_event(char *line, struct sxm_job_rec *j)
{
	struct sxm_kv kv[4];
	const char *t, *text;
	unsigned int n;
	int64_t ms;
	int r;

	r = sxm_kv_split(line, kv, ARRAY_SIZE(kv), &n);
	if (r)
		return r;
	if (!n || strcmp(kv[0].key, "event") || kv[0].val)
		return -EINVAL;
	t = sxm_kv_get(kv, n, "t");
	text = sxm_kv_get(kv, n, "text");
	if (!t || !text || parse_i64(t, &ms))
		return -EINVAL;
	sxm_job_add_event(j, ms, text);
	return 0;
}
