// SPDX-License-Identifier: GPL-2.0
/*
 * The mirror style (kind "sxm"): Storage XenMotion's steps (snapshot,
 * synchronous mirror, bulk copy, compose) on the kernel's mirror ring
 * (io/pump.h), as a table of phases the phase engine runs (phases.h).  A
 * cancel is the engine's, the same for both styles; what both styles do
 * alike (the device, the attach, tracking, copying) is core.c's; the
 * pump's life is mirror_pump.c's and the copies under region locks
 * mirror_locks.c's (mirror.h).
 *
 *   Preparing     the sxm target under the source as for a warm job
 *                 (insert, or a new device), attach as the helper, tracking
 *                 on with a clean baseline, the kernel's track_id saved.
 *   Mirroring + Copying
 *                 a second sink connection for the pump, the pump in a
 *                 thread of its own, mirroring on: from here (T0) every
 *                 write reaches the sink, or, if the mirror goes down,
 *                 marks its regions dirty.  Then every region is copied in
 *                 batches under region locks (one SXM_IOC_LOCK for the
 *                 batch, the copy engine on the job's connection, one
 *                 release): a lock waits for the mirrored writes in flight
 *                 there and holds new ones until the copy is on the sink,
 *                 so a copy never overwrites newer data.  Zero regions go
 *                 as write-zeroes, or not at all to a sink that read as
 *                 zeroes.  The cursor is saved after every batch.
 *   Composing     harvest what was dirtied before T0 or while the mirror
 *                 was down, resync it under locks, acknowledge it (the
 *                 kernel holds harvested regions until then), and read
 *                 back and compare under locks: the whole device when it
 *                 is small, the resynced regions else.
 *   Mirrored      the sink stays equal to the source.  A mirror that goes
 *                 down (the status says why) is brought back: see below.
 *   Cutting Over  a mirror that is down is brought back first, live (a
 *                 compose), so that little is left for the freeze (and
 *                 with a sink that takes no writes the cutover fails
 *                 without freezing the guest); then
 *                 suspend (guest I/O held), nothing may be in flight, the
 *                 harvest must be empty (or what it holds is copied), the
 *                 pump stops, both connections flushed, verified, the
 *                 mirror off; the downtime is from the suspend to here.
 *                 The device stays suspended: the source cannot diverge.
 *                 On a failure the device is resumed, the job Mirrored.
 *
 * Bringing the mirror back (mirror_up()): the kernel forgot what was in
 * flight and marked it dirty.  The pump drops the sqes it had not taken
 * and lets its abandoned requests finish (an old write landing after the
 * resync would undo it); a lost sink connection is replaced; a catch-up
 * copy of what is dirty runs without locks, as a warm sync does (it also
 * proves the sink takes writes again); then the pump runs and mirroring
 * is set; compose() resyncs what was dirtied meanwhile under locks.  In
 * Mirrored this is retried, backing off, for as long as it fails; the
 * guest's writes go on, tracked, meanwhile.
 *
 * A restarted daemon finds the mirror degraded ("helper_detached": the
 * kernel marked what was in flight dirty) and does the same.  If the
 * track_id changed, writes may have gone unseen: the bulk copy starts
 * over.
 *
 * Locks as in jobs/core.h; the pump thread takes j->lock only to say it
 * ended.  m->pump and m->sink change under j->lock (the snapshot for
 * "show" reads the pump's counters).
 *
 * Sections: bringing the mirror up, the work of the phases, the phases,
 * the style, observing.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "dm/dm.h"
#include "io/pump.h"
#include "jobs/mirror.h"
#include "jobs/phases.h"

/* ------------------------------------------------------------------ */
/* Bringing the mirror up                                             */
/* ------------------------------------------------------------------ */

/* Wait for the kernel to have nothing of ours in flight. */
static int wait_kernel_idle(struct sxm_job *j, double secs)
{
	double until = sxm_mono_s() + secs;
	struct sxm_status ms;
	int r;

	for (;;) {
		r = mirror_kstat(j, &ms);
		if (r || !ms.in_flight)
			return r;
		if (sxm_mono_s() > until)
			return -ETIMEDOUT;
		sxm_job_lock(j);
		sxm_job_wait_ms(j, 100);
		sxm_job_unlock(j);
	}
}

/*
 * Harvest and copy what is dirty, without locks, as a warm sync: what is
 * written meanwhile is in the next harvest.
 */
static int catch_up(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	struct sxm_copy_result res = { 0 };
	struct sxm_job_progress pg = { .j = j };
	uint64_t *map = NULL, bytes;
	struct sxm_harvest h;
	int r;

	r = sxm_job_harvest(j, NULL, &map, &h, err, errlen);
	if (r)
		return r;
	if (!h.dirty_regions) {
		free(map);
		return 0;
	}
	bytes = sxm_regions_bytes(map, h.nr_regions,
				  run->region_sectors << SECTOR_SHIFT,
				  j->rec.size);
	sxm_job_lock(j);
	sxm_job_set_op(j, "catch-up", 0, bytes);
	sxm_job_unlock(j);
	r = mirror_copy_regions(j, map, false, false, &pg, &res);
	/* Written, not read back: to verify again. */
	sxm_job_unverify(j, map);
	if (r) {
		snprintf(err, errlen, "%s", res.errmsg);
		/* What did get there may be forgotten; the rest stays held. */
		if (res.dirty) {
			sxm_map_andnot(map, res.dirty, h.nr_regions);
			sxm_kdev_ack(run->kfd, map, h.nr_regions, NULL);
		}
	} else {
		r = sxm_kdev_ack(run->kfd, map, h.nr_regions, NULL);
		if (r)
			snprintf(err, errlen, "/dev/mapper/%s: acknowledge: %s",
				 j->rec.device, strerror(-r));
	}
	sxm_job_lock(j);
	j->rec.bytes_incr += res.stats.bytes_done;
	sxm_job_set_op(j, "", 0, 0);
	sxm_job_unlock(j);
	sxm_copy_result_free(&res);
	free(map);
	return r;
}

/*
 * Make sure the mirror is on and the pump serves it.  0, or -errno with
 * the reason in @err (the sink unreachable...); then try again later.
 */
static int mirror_up(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_status ms;
	double until;
	int r;

	mirror_pump_reap(j);
	if (j->run.kfd < 0) {
		r = sxm_job_run_open(j, true, err, errlen);
		if (r)
			return r;
	}
	r = mirror_kstat(j, &ms);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: status: %s",
			 j->rec.device, sxm_dm_strerror(r));
		return r;
	}
	if (mirror_is_on(&ms) && m->running)
		return 0;

	if (mirror_is_on(&ms)) {
		/* Mirroring with no one serving it: stop it, it is tracked. */
		r = sxm_kdev_mirror(j->run.kfd, false);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: mirror off: %s",
				 j->rec.device, strerror(-r));
			return r;
		}
	}
	if (m->pump && m->running && strcmp(ms.mirror, "degraded")) {
		/* Off, not degraded: nothing was abandoned, the pump ends it. */
		r = wait_kernel_idle(j, 0.001 * sxm_pump_geometry(m->pump)->timeout_ms + 2);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: writes stay in flight: %s",
				 j->rec.device, strerror(-r));
			return r;
		}
	} else if (m->pump && m->running) {
		/* Let what the kernel abandoned finish before any resync. */
		sxm_pump_drop(m->pump);
		until = sxm_mono_s() + DROP_WAIT_S;
		while (!sxm_pump_dropped(m->pump) && sxm_mono_s() < until &&
		       !stop_now(j)) {
			bool exited;

			sxm_job_lock(j);
			/* A pump that ended (its sink lost) drops nothing. */
			exited = m->exited;
			if (!exited)
				sxm_job_wait_ms(j, 50);
			sxm_job_unlock(j);
			if (exited)
				break;
		}
		/* Ended meanwhile (its sink lost): reaped as at the top. */
		mirror_pump_reap(j);
		if (!m->pump) {
			snprintf(err, errlen, "/dev/mapper/%s: the mirror's ring went away with its pump",
				 j->rec.device);
			return -EAGAIN;
		}
		if (m->running && !sxm_pump_dropped(m->pump)) {
			/* A sink that does not answer: give its requests up. */
			mirror_pump_join(j);
			mirror_pump_close_sink(j);
		}
	}
	if (m->pump && !m->running) {
		/* What it had out will never complete: forget it. */
		mirror_pump_close_sink(j);
		r = wait_kernel_idle(j, 0.001 * sxm_pump_geometry(m->pump)->timeout_ms + 2);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: writes stay in flight: %s",
				 j->rec.device, strerror(-r));
			return r;
		}
		sxm_pump_forget(m->pump);
	}
	if (stop_now(j)) {
		snprintf(err, errlen, "interrupted");
		return -EINTR;
	}
	r = mirror_pump_open_sink(j, err, errlen);
	/* The mirror is off: what the map says clean is exactly so. */
	if (!r)
		r = mirror_check_sinks(j, false, false, err, errlen);
	if (!r)
		r = catch_up(j, err, errlen);
	if (!r)
		r = mirror_pump_start(j, err, errlen);
	if (r)
		return r;
	r = sxm_kdev_mirror(j->run.kfd, true);
	if (r)
		snprintf(err, errlen, "/dev/mapper/%s: mirror on: %s",
			 j->rec.device, strerror(-r));
	return r;
}

/*
 * How many times the mirror went down that the job has not counted yet:
 * each degradation the kernel counted since the job last looked (the
 * mirror may have come back on and gone down again while the job was
 * still resyncing), or one for a mirror the job finds down (a pump that
 * stopped) when it had not seen it so.  @ms: the kernel's status, or NULL.
 */
static uint64_t new_downs(struct sxm_mirror_run *m, const struct sxm_status *ms)
{
	uint64_t n = 0;

	if (ms) {
		/* A new device (a reload or a daemon restart) starts at 0. */
		if (m->kdeg_known && ms->degradations > m->kdeg_seen)
			n = ms->degradations - m->kdeg_seen;
		m->kdeg_seen = ms->degradations;
		m->kdeg_known = true;
	}
	if (!n && !m->down_since)
		n = 1;
	return n;
}

/*
 * Note that the mirror is down, counting each time it went down, with its
 * reason; j->lock held.
 */
static void note_down(struct sxm_job *j, const struct sxm_status *ms)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_job_rec *rec = &j->rec;
	char *p, *save = NULL, counts[sizeof(rec->degraded_reasons)] = "";
	const char *why;
	bool found = false;
	size_t used = 0;
	uint64_t n;

	n = new_downs(m, ms);
	if (!n)
		return;
	/* The batches start again from what the sink does after this. */
	memset(&m->batch, 0, sizeof(m->batch));
	why = ms && strcmp(ms->reason, "-") ? ms->reason : "pump_stopped";
	if (!m->down_since)
		m->down_since = sxm_mono_s();
	m->down_said = false;
	snprintf(m->down_reason, sizeof(m->down_reason), "%s", why);
	rec->degradations += n;
	snprintf(rec->degraded_reason, sizeof(rec->degraded_reason), "%s", why);
	/* "reason:count ..." */
	for (p = strtok_r(rec->degraded_reasons, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		char *c = strrchr(p, ':');
		unsigned long k = c ? strtoul(c + 1, NULL, 10) : 0;

		if (c && (size_t)(c - p) == strlen(why) &&
		    !strncmp(p, why, c - p)) {
			k += n;
			found = true;
		}
		if (c)
			*c = '\0';
		used += snprintf(counts + used, sizeof(counts) - used, "%s%s:%lu",
				 used ? " " : "", p, k);
		if (used >= sizeof(counts))
			break;
	}
	if (!found && used < sizeof(counts))
		snprintf(counts + used, sizeof(counts) - used, "%s%s:%" PRIu64,
			 used ? " " : "", why, n);
	snprintf(rec->degraded_reasons, sizeof(rec->degraded_reasons), "%s",
		 counts);
	sxm_job_event(j, "mirror degraded: %s; guest writes go on, tracked",
		      why);
	sxm_job_save(j);
}

/* The mirror is up again after being down; j->lock held. */
static void note_up(struct sxm_job *j, const char *how)
{
	struct sxm_mirror_run *m = j->mirror;
	double secs;

	if (!m->down_since)
		return;
	secs = sxm_mono_s() - m->down_since;
	j->rec.degraded_ms += (uint64_t)(secs * 1000);
	sxm_job_event(j, "mirror back on after %.1f s down (%s): %s",
		      secs, m->down_reason, how);
	m->down_since = 0;
	m->backoff_ms = 0;
	sxm_job_save(j);
}

/*
 * Mirror up, then harvest, resync under locks, acknowledge, and verify
 * (all of it with @verify_all, else what was resynced), until the mirror
 * stayed up throughout.  *@resynced counts the bytes.
 */
static int compose(struct sxm_job *j, bool verify_all, uint64_t *resynced,
		   uint64_t *verified, char *err, size_t errlen)
{
	struct sxm_harvest h;
	struct sxm_status ms;
	uint64_t *map = NULL, copied = 0, checked = 0;
	int round, st, r = 0;

	*resynced = *verified = 0;
	for (round = 0; round < COMPOSE_ROUNDS; round++) {
		r = mirror_up(j, err, errlen);
		if (r)
			return r;
		r = sxm_job_harvest(j,
				    "tracking was interrupted (track id changed)",
				    &map, &h, err, errlen);
		if (r)
			return r;
		copied = checked = 0;
		r = mirror_locked_pass(j, map, true, !verify_all, false, "resync", 0,
				true, &copied, &checked, err, errlen);
		free(map);
		map = NULL;
		sxm_job_lock(j);
		j->rec.bytes_incr += copied;
		if (copied)
			j->rec.sync_count++;
		j->rec.last_sync_ms = sxm_now_ms();
		sxm_job_unlock(j);
		*resynced += copied;
		if (!r && verify_all)
			r = mirror_locked_pass(j, NULL, false, true, false, "verify",
					0, true, &copied, &checked, err, errlen);
		*verified += checked;
		if (r && r != -EILSEQ)
			return r;
		st = mirror_kstat(j, &ms);
		if (!st && mirror_is_on(&ms) && !r)
			return 0;
		/*
		 * Down meanwhile, or data differed, or both: once more.  A
		 * mirror that went down is counted even when the verify also
		 * differed, or the next round's mirror_up() hides it.
		 */
		sxm_job_lock(j);
		if (r == -EILSEQ)
			sxm_job_event(j, "verify: %s; the regions are resynced", err);
		if (st || !mirror_is_on(&ms))
			note_down(j, st ? NULL : &ms);
		sxm_job_unlock(j);
	}
	if (!r)
		snprintf(err, errlen, "the mirror went down %d times while composing",
			 COMPOSE_ROUNDS);
	return r ? r : -EAGAIN;
}

/* ------------------------------------------------------------------ */
/* The work of the phases                                             */
/* ------------------------------------------------------------------ */

/*
 * Attached, and tracking without a gap since the job began; else the
 * bulk copy starts over (*@restarted).
 */
static int attach(struct sxm_job *j, bool *restarted, char *err,
		  size_t errlen)
{
	int r;

	*restarted = false;
	/* The sink is opened when needed: it may be down in Mirrored. */
	r = sxm_job_run_open(j, false, err, errlen);
	if (r)
		return r;
	r = sxm_job_tracking_gap(j, true, "the bulk copy starts over", err,
				 errlen);
	if (r <= 0)
		return r;
	/* The bulk copy brings the pump up again (mirror_up()). */
	mirror_pump_release(j);
	r = sxm_job_track_again(j, SXM_PHASE_COPYING, "", err, errlen);
	if (r)
		return r;
	*restarted = true;
	return 0;
}

static int do_prepare(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_features feat;
	int r;

	r = sxm_job_prepare_device(j, err, errlen);
	if (!r)
		r = sxm_job_run_open(j, true, err, errlen);
	if (r)
		return r;
	r = sxm_kdev_features(j->run.kfd, &feat);
	if (!r && !(feat.features & SXM_F_MIRROR)) {
		snprintf(err, errlen, "this dm-sxm has no mirror ring (SXM_F_MIRROR): a mirror-style job cannot run");
		return -EOPNOTSUPP;
	}
	/* Tracking on with a clean baseline: the bulk copy follows. */
	return sxm_job_start_tracking(j, "", err, errlen);
}

/*
 * --rate for the bulk copy: @bytes copied since @since, so wait until that
 * is the limit's worth of time (or until stopped, paused or cancelled).
 * Between batches, with no region locked, so that the guest's writes never
 * wait for it.  j->lock held.
 */
static void pace(struct sxm_job *j, uint64_t bytes, double since)
{
	double until, left;

	if (!j->rec.rate_limit)
		return;
	until = since + (double)bytes / (double)j->rec.rate_limit;
	while (!must_stop(j) && !j->rec.paused &&
	       (left = until - sxm_mono_s()) > 0)
		sxm_job_wait_ms(j, (unsigned int)ceil(left * 1000));
}

/* Mirror on, then every region from the cursor on, under locks. */
static int do_copy(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr = run->nr_regions;
	uint64_t size, done, end, copied = 0, checked, r0, r1;
	uint64_t *map;
	struct sxm_status ms;
	bool zero;
	double start = sxm_mono_s(), t0;
	int r;

	r = mirror_up(j, err, errlen);
	if (r)
		return r;
	map = sxm_map_alloc(nr);
	if (!map)
		return -ENOMEM;
	sxm_job_lock(j);
	size = j->rec.size;
	done = j->rec.full_done;
	zero = j->rec.sink_zero;
	sxm_job_event(j, "mirroring: every write from now on reaches %s; bulk copy %s %" PRIu64 " of %" PRIu64 " bytes",
		      j->rec.sink, done ? "resumes at" : "starts at", done,
		      size);
	sxm_job_set_op(j, "bulk copy", done, size);
	j->mirror->batches = 0;
	j->mirror->wait_max = 0;
	sxm_job_unlock(j);

	while (done < size) {
		sxm_job_lock(j);
		if (must_stop(j)) {
			sxm_job_unlock(j);
			r = -EINTR;
			break;
		}
		if (j->rec.paused) {
			sxm_job_set_op(j, "", 0, 0);
			sxm_job_wait_ms(j, TICK_MS);
			sxm_job_unlock(j);
			continue;
		}
		sxm_job_unlock(j);
		/* The mirror must serve the guest while the copy runs. */
		mirror_pump_reap(j);
		r = mirror_kstat(j, &ms);
		if (r || !mirror_is_on(&ms) || !j->mirror->running) {
			sxm_job_lock(j);
			note_down(j, r ? NULL : &ms);
			sxm_job_unlock(j);
			r = mirror_up(j, err, errlen);
			if (r)
				break;
			sxm_job_lock(j);
			note_up(j, "what was dirtied meanwhile is resynced when the copy is done");
			sxm_job_unlock(j);
		}
		/* Four batches between saves of the cursor, on region bounds. */
		end = (done + mirror_batch_limit(j, rs) * 4 + rs - 1) / rs * rs;
		if (end > size)
			end = size;
		r0 = done / rs;
		r1 = (end + rs - 1) / rs;
		sxm_map_zero(map, nr);
		sxm_map_set_range(map, r0, r1);
		checked = 0;
		copied = 0;
		sxm_job_lock(j);
		sxm_job_set_op(j, "bulk copy", done, size);
		sxm_job_unlock(j);
		t0 = sxm_mono_s();
		r = mirror_locked_pass(j, map, true, false, zero, "bulk copy", done,
				false, &copied, &checked, err, errlen);
		sxm_job_lock(j);
		j->rec.bytes_full += copied;
		if (!r)
			j->rec.full_done = end;
		done = j->rec.full_done;
		sxm_job_set_op(j, "bulk copy", done, size);
		sxm_job_save(j);
		if (!r)
			pace(j, copied, t0);
		/* Paused: the batch is done again once resumed. */
		if (r == -EINTR && !must_stop(j))
			r = 0;
		sxm_job_unlock(j);
		if (r)
			break;
	}
	free(map);
	if (r)
		return r;
	sxm_job_lock(j);
	j->rec.last_sync_secs = sxm_mono_s() - start;
	if (j->rec.last_sync_secs > 0)
		j->rec.last_rate = (double)size / j->rec.last_sync_secs;
	j->rec.last_sync_ms = sxm_now_ms();
	sxm_job_event(j, "bulk copy done: %" PRIu64 " bytes copied in all, %.1f s this run, in %" PRIu64 " batches; the guest waited %.3f s at most",
		      j->rec.bytes_full, j->rec.last_sync_secs,
		      j->mirror->batches, j->mirror->wait_max);
	sxm_job_set_op(j, "", 0, 0);
	sxm_job_unlock(j);
	return 0;
}

static int do_compose(struct sxm_job *j, char *err, size_t errlen)
{
	uint64_t resynced, verified;
	bool all;
	int r;

	sxm_job_lock(j);
	all = j->rec.size <= FULL_VERIFY_MAX;
	sxm_job_unlock(j);
	r = compose(j, all, &resynced, &verified, err, errlen);
	sxm_job_lock(j);
	sxm_job_set_op(j, "", 0, 0);
	if (!r) {
		note_up(j, "resynced");
		sxm_job_event(j, "composed: %" PRIu64 " bytes resynced, %" PRIu64 " bytes read back and verified%s; the sink equals the source and the mirror keeps it so",
			      resynced, verified, all ? " (all of it)" : "");
	}
	sxm_job_unlock(j);
	return r;
}

struct flush_req {
	struct sxm_sink_req req;	/* first: the completion casts back */
	bool done;
	int err;
};

static void flush_done(struct sxm_sink_req *req, int err)
{
	struct flush_req *f = (struct flush_req *)req;

	f->done = true;
	f->err = err;
}

/*
 * A flush within SINK_TIMEOUT_MS.  A sink that does not answer is closed,
 * and so is one that lost the connection: the next user opens a new one.
 */
static int flush_bounded(struct sxm_sink **sp)
{
	struct sxm_sink *s = *sp;
	double until = sxm_mono_s() + SINK_TIMEOUT_MS / 1000.0;
	struct flush_req *f;
	bool queued;
	int r;

	if (!s)
		return 0;
	/* On the heap: a request given up must not point into the stack. */
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->req.done = flush_done;
	r = s->ops->flush(s, &f->req);
	queued = !r;
	while (!r && !f->done && sxm_mono_s() < until) {
		r = sxm_sink_wait(s, 100);
		/* Another connection lost: this flush completes anyway. */
		if (r == -ENOTCONN)
			r = 0;
	}
	if (!r)
		r = f->done ? f->err : -ETIMEDOUT;
	if ((queued && !f->done) || sxm_sink_conn_err(r)) {
		sxm_sink_close(s);
		*sp = NULL;
	}
	free(f);
	return r;
}

/*
 * Bring a mirror that is down back (compose()), noting it down (@ms: the
 * kernel's status, NULL if it could not be read) and, once it is back, up
 * again, with @when after the bytes resynced.  0, or compose()'s -errno
 * with @err.  j->lock held; dropped meanwhile.
 */
static int mirror_back(struct sxm_job *j, const struct sxm_status *ms,
		       const char *when, char *err, size_t errlen)
{
	uint64_t resynced, verified;
	char how[160];
	int r;

	note_down(j, ms);
	sxm_job_unlock(j);
	r = compose(j, false, &resynced, &verified, err, errlen);
	sxm_job_lock(j);
	sxm_job_set_op(j, "", 0, 0);
	if (!r) {
		snprintf(how, sizeof(how), "%" PRIu64 " bytes resynced and %" PRIu64 " verified%s",
			 resynced, verified, when);
		note_up(j, how);
	}
	return r;
}

/*
 * A cutover asked for while the mirror is down: what went dirty meanwhile
 * would all be copied with the guest frozen.  Bring the mirror back first,
 * live (the resync under locks that Mirrored retries), so that the freeze
 * finds nothing dirty.  If the sink took writes but the mirror kept going
 * down (or a verify kept finding differences), the frozen copy takes what
 * is dirty: with the guest held, nothing goes dirty under it.  If the sink
 * does not take writes (errors, unreachable), the cutover fails here: the
 * guest is not frozen for a copy that could not succeed.  Not for a source
 * found frozen already (a daemon killed mid-cutover): that is the freeze.
 * 0 to go on to the freeze, or -errno with @err.  j->lock not held.
 */
static int mirror_before_cutover(struct sxm_job *j, char *err,
				 size_t errlen)
{
	const struct sxm_status *known;
	char why[512];
	struct sxm_status ms;
	int r;

	if (j->run.suspended)
		return 0;
	mirror_pump_reap(j);
	r = mirror_kstat(j, &ms);
	if (!r && mirror_is_on(&ms) && j->mirror->running)
		return 0;
	known = r ? NULL : &ms;
	sxm_job_lock(j);
	note_down(j, known);
	sxm_job_event(j, "cutover: the mirror is down; resyncing under the mirror first, with the guest running");
	r = mirror_back(j, known, " before the cutover", why, sizeof(why));
	if (r == -EAGAIN || r == -EILSEQ) {
		sxm_job_event(j, "cutover: the mirror could not come back (%s); what is dirty is copied with the source frozen",
			      why);
		r = 0;
	} else if (r && r != -EINTR) {
		snprintf(err, errlen, "the mirror could not come back (%s); the guest was not frozen",
			 why);
	} else if (r) {
		snprintf(err, errlen, "%s", why);
	}
	sxm_job_unlock(j);
	return r;
}

/*
 * Before the freeze, the guest running: the online verify's pass finished
 * at full speed, what differs resynced (unless --no-verify, or frozen
 * already).  j->lock not held.
 */
static int verify_live(struct sxm_job *j, char *err, size_t errlen)
{
	uint64_t found, resynced, verified;
	int r;

	r = sxm_job_verify_pass(j, j->run.sink, true, &found, err, errlen);
	if (r == 1 && found)
		r = compose(j, false, &resynced, &verified, err, errlen);
	if (r < 0)
		return r;
	if (r) {
		sxm_job_lock(j);
		sxm_job_set_op(j, "cutover", 0, 0);
		sxm_job_event(j, "cutover: the online verify's pass finished live first (%" PRIu64 " region%s differed, resynced)",
			      found, found == 1 ? "" : "s");
		sxm_job_unlock(j);
	}
	return 0;
}

/*
 * The cutover.  On success the device stays suspended, the job is
 * Completed; on failure the caller resumes it.  j->lock not held.
 */
static int do_cutover(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, total = 0;
	uint64_t verified = 0, nr;
	struct sxm_copy_result res = { 0 };
	struct sxm_job_progress pg = { .j = j };
	struct sxm_harvest h;
	struct sxm_status ms;
	uint64_t *map = NULL, *vmap = NULL, *tmp;
	bool all, all_ok;
	uint64_t downtime_ms;
	char how[sizeof(j->rec.events[0].text)];
	double t0 = sxm_mono_s(), t_susp, t_copy, t_flush, t1;
	int r, e = 0;

	r = sxm_job_cutover_start(j, &all, err, errlen);
	if (r)
		return r;
	if (!j->run.found_frozen)
		t0 = j->run.freeze_mono;
	t_susp = sxm_mono_s();
	/* Suspended: every write completed, on both legs or tracked. */
	r = mirror_kstat(j, &ms);
	if (!r && (ms.in_flight || ms.held_back)) {
		snprintf(err, errlen, "/dev/mapper/%s: %" PRIu64 " writes in flight and %" PRIu64 " held back after the suspend",
			 j->rec.device, ms.in_flight, ms.held_back);
		return -EBUSY;
	}
	r = sxm_job_harvest(j, "tracking was interrupted (track id changed): the bulk copy must run again",
			    &map, &h, err, errlen);
	if (r)
		return r;
	nr = h.nr_regions;
	sxm_job_lock(j);
	if (h.dirty_regions)
		total = sxm_regions_bytes(map, nr, rs, j->rec.size);
	sxm_job_set_op(j, "cutover", 0, total);
	sxm_job_unlock(j);
	if (h.dirty_regions) {
		/* The mirror was down: the source is frozen, copy the rest. */
		r = mirror_copy_regions(j, map, false, false, &pg, &res);
		if (r) {
			snprintf(err, errlen, "%s", res.errmsg);
			goto out;
		}
		sxm_copy_result_free(&res);
	}
	/* Nothing in flight: the pump has nothing left to do. */
	t_copy = sxm_mono_s();
	mirror_pump_join(j);
	r = flush_bounded(&m->sink);
	if (!r && j->run.sink)
		r = flush_bounded(&j->run.sink);
	if (r) {
		snprintf(err, errlen, "sink: flush: %s", strerror(-r));
		goto out;
	}
	/* Connected again since the live look: the source is frozen now. */
	r = mirror_check_sinks(j, false, false, err, errlen);
	if (r)
		goto out;
	t_flush = sxm_mono_s();
	/* What it copied, and what is not verified yet (unless --no-verify). */
	vmap = all ? NULL : sxm_map_alloc(nr);
	if (vmap) {
		if (!j->rec.no_verify)
			sxm_job_unverified(j, vmap);
		sxm_map_or(vmap, map, nr);
	}
	if (all || (vmap ? sxm_map_weight(vmap, nr) : h.dirty_regions)) {
		sxm_job_lock(j);
		sxm_job_set_op(j, "verify", 0, all ? j->rec.size :
			       sxm_regions_bytes(vmap ? vmap : map, nr, rs,
						 j->rec.size));
		sxm_job_unlock(j);
		r = mirror_copy_regions(j, all ? NULL : vmap ? vmap : map,
					false, true, &pg, &res);
		if (r == -EILSEQ && res.dirty) {
			/*
			 * Not lost: resynced once the guest has its disk; if
			 * the mark fails, still unverified: verified (and
			 * marked) again at the next cutover.
			 */
			e = sxm_kdev_mark_map(run->kfd, res.dirty, nr, NULL);
			sxm_job_lock(j);
			j->rec.verify_mismatches += res.nr_dirty;
			m->resync_due = true;
			sxm_job_unlock(j);
		}
		if (r) {
			snprintf(err, errlen, "verify: %s%s%s", res.errmsg,
				 e ? "; marking them to copy again: " : "",
				 e ? strerror(-e) : "");
			goto out;
		}
		verified = res.stats.bytes_done;
		sxm_copy_result_free(&res);
	}
	sxm_job_verified(j, all ? NULL : vmap ? vmap : map, NULL);
	tmp = sxm_map_alloc(nr);
	all_ok = tmp && !sxm_job_unverified(j, tmp);
	free(tmp);
	/* Never Completed unverified but by the operator's choice. */
	if (!all_ok && !j->rec.no_verify) {
		r = -ENOMEM;
		snprintf(err, errlen, "verify: not every region could be read back (%s)",
			 strerror(ENOMEM));
		goto out;
	}
	/* Connected again during the read-back: looked at once more. */
	r = mirror_check_sinks(j, false, false, err, errlen);
	if (r)
		goto out;
	r = sxm_kdev_ack(run->kfd, map, nr, NULL);
	if (!r)
		r = sxm_kdev_mirror(run->kfd, false);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: %s", j->rec.device,
			 strerror(-r));
		goto out;
	}
	t1 = sxm_mono_s();
	downtime_ms = sxm_job_held_ms(j);
	/* What the mirror did, kept in the record: the device goes soon. */
	r = mirror_kstat(j, &ms);
	sxm_job_lock(j);
	if (!r) {
		j->rec.mirrored_writes = ms.mirrored_writes;
		j->rec.mirrored_bytes = ms.mirrored_bytes;
	}
	snprintf(j->rec.mirror, sizeof(j->rec.mirror), "off");
	j->rec.mirror_reason[0] = '\0';
	sxm_job_unlock(j);
	r = 0;
	snprintf(how, sizeof(how), "cutover done: nothing in flight, %" PRIu64 " bytes left to copy, %" PRIu64 " verified, both connections flushed; guest I/O held for %" PRIu64 " ms (suspend %.0f, harvest and copy %.0f, pump stop and flushes %.0f, verify and the rest %.0f); %s",
		 total, verified, downtime_ms,
		 (t_susp - t0) * 1000, (t_copy - t_susp) * 1000,
		 (t_flush - t_copy) * 1000, (t1 - t_flush) * 1000,
		 all_ok ? "all verified" : "not all verified (--no-verify)");
	sxm_job_lock(j);
	j->rec.verified_all = all_ok;
	sxm_job_cutover_done(j, total, verified, downtime_ms, how);
	sxm_job_unlock(j);
out:
	sxm_copy_result_free(&res);
	free(vmap);
	free(map);
	return r;
}

/*
 * Leave the device to itself: the mirror off (its writes tracked, none
 * left waiting for a pump), a cutover in progress undone, detached.
 */
static void let_go(struct sxm_job *j, bool detach)
{
	char err[256];

	if (j->run.kfd >= 0 && j->mirror->pump) {
		sxm_kdev_mirror(j->run.kfd, false);
		if (!j->mirror->running && j->mirror->sink)
			mirror_pump_start(j, err, sizeof(err));
		wait_kernel_idle(j, 10);
	}
	mirror_pump_release(j);
	if (j->run.suspended && sxm_job_resume_device(j, err, sizeof(err)))
		sxm_err("job %s: %s", j->rec.name, err);
	if (detach)
		sxm_job_run_close(j);
}

/*
 * A check found another sink (@r is -EMEDIUMTYPE; anything else is not
 * this function's): the job's policy, the pump let go first.  Failed, or
 * the bulk copy from the start; true either way.  j->lock held.
 */
static bool sink_changed(struct sxm_job *j, int r, char *err, size_t errlen)
{
	bool restarted, resync = j->rec.sink_resync;

	if (r != -EMEDIUMTYPE)
		return false;
	sxm_job_unlock(j);
	/* A new ring needs a new attach: the old one goes with its ring. */
	mirror_release_all(j);
	r = resync ? sxm_job_run_open(j, false, err, errlen) : 0;
	if (!r)
		r = sxm_job_sink_changed(j, SXM_PHASE_COPYING, &restarted, err,
					 errlen);
	sxm_job_lock(j);
	sxm_job_set_op(j, "", 0, 0);
	if (r)
		sxm_job_fail(j, err);
	return true;
}

/* Publish the pump's latency; j->lock held. */
static void publish(struct sxm_job *j)
{
	struct sxm_pump_stats *st;

	if (!j->mirror->pump)
		return;
	st = malloc(sizeof(*st));
	if (!st)
		return;
	sxm_pump_get_stats(j->mirror->pump, st);
	j->rec.lat_p50_us = sxm_pump_latency_us(st, 0.5);
	j->rec.lat_p99_us = sxm_pump_latency_us(st, 0.99);
	free(st);
}

/*
 * Mirrored, the mirror up: a step of the online verify (verify.c) with
 * the job's own connection, a tick's worth at its rate; what differs is
 * resynced under locks (compose()) at once.  j->lock not held.
 */
static int verify_some(struct sxm_job *j, char *err, size_t errlen)
{
	uint64_t found = 0, resynced, verified;
	bool done = false;
	int r;

	sxm_job_verify_take_request(j);
	r = mirror_check_sinks(j, true, false, err, errlen);
	if (!r)
		r = sxm_job_verify_step(j, j->run.sink, true,
					sxm_job_verify_rate(j) * TICK_MS / 1000,
					&found, &done, err, errlen);
	if (!r && (found || j->mirror->resync_due)) {
		r = compose(j, false, &resynced, &verified, err, errlen);
		sxm_job_lock(j);
		sxm_job_set_op(j, "", 0, 0);
		if (!r) {
			j->mirror->resync_due = false;
			sxm_job_event(j, "verify: %" PRIu64 " bytes resynced and read back", resynced);
		}
		sxm_job_unlock(j);
	}
	/* What it found is resynced: the pass answers its requests. */
	if (!r && done)
		sxm_job_verify_answer(j);
	return r;
}

/*
 * Mirrored: keep it so.  Returns when the job leaves the phase (or must
 * stop); j->lock held on entry and exit.
 */
static void mirrored(struct sxm_job *j)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_status ms;
	char err[768];
	bool down;
	int r;

	while (j->rec.phase == SXM_PHASE_MIRRORED && !must_stop(j)) {
		if (j->req_cutover) {
			j->req_cutover = false;
			sxm_job_enter(j, SXM_PHASE_CUTTING_OVER);
			return;
		}
		publish(j);
		sxm_job_unlock(j);
		mirror_pump_reap(j);
		r = mirror_kstat(j, &ms);
		down = r || !mirror_is_on(&ms) || !m->running;
		sxm_job_lock(j);
		if (down) {
			r = mirror_back(j, r ? NULL : &ms, "", err,
					sizeof(err));
			if (sink_changed(j, r, err, sizeof(err)))
				return;
			if (r && r != -EINTR) {
				if (r == -ESTALE) {
					sxm_job_fail(j, err);
					return;
				}
				if (!m->down_said)
					sxm_job_event(j, "the mirror cannot come back yet: %s; trying again",
						      err);
				m->down_said = true;
				m->backoff_ms = m->backoff_ms ?
						m->backoff_ms * 2 : 500;
				if (m->backoff_ms > BACKOFF_MAX_MS)
					m->backoff_ms = BACKOFF_MAX_MS;
			}
		}
		if (!down && m->sink && sxm_sink_epoch(m->sink) != m->sink_ok) {
			/* The pump connected again: to the same sink? */
			sxm_job_unlock(j);
			r = mirror_check_sinks(j, true, false, err, sizeof(err));
			sxm_job_lock(j);
			if (sink_changed(j, r, err, sizeof(err)))
				return;
			if (r && r != -EINTR && !m->verify_said)
				sxm_job_event(j, "the sink could not be checked: %s; trying again",
					      err);
			m->verify_said = r && r != -EINTR;
		}
		if (!down && !m->down_since && !j->req_cutover &&
		    (sxm_job_verify_due(j) || m->resync_due)) {
			/* A request from now stops the step. */
			j->verify_stop = j->d->stopping || j->rec.cancelling;
			sxm_job_unlock(j);
			r = verify_some(j, err, sizeof(err));
			sxm_job_lock(j);
			if (sink_changed(j, r, err, sizeof(err)))
				return;
			if (r && r != -EINTR && !m->verify_said)
				sxm_job_event(j, "verify: %s; trying again", err);
			m->verify_said = r && r != -EINTR;
		}
		if (j->rec.phase != SXM_PHASE_MIRRORED || must_stop(j) ||
		    j->req_cutover)
			continue;
		/* The mirror looked at (and brought back): a retry's outcome. */
		j->rec.retrying = false;
		sxm_job_wait_ms(j, m->down_since ? m->backoff_ms : TICK_MS);
	}
}

/* ------------------------------------------------------------------ */
/* The phases                                                         */
/* ------------------------------------------------------------------ */

/*
 * Each is called with j->lock held and returns with it held (phases.h).
 * A job that must stop (stopping, cancelling) goes back to the loop at
 * once.
 */

static enum sxm_step preparing(struct sxm_job *j)
{
	char err[768] = "";
	int r;

	if (j->rec.phase != SXM_PHASE_PREPARING)
		sxm_job_enter(j, SXM_PHASE_PREPARING);
	sxm_job_unlock(j);
	r = do_prepare(j, err, sizeof(err));
	sxm_job_lock(j);
	if (must_stop(j))
		return SXM_STEP_AGAIN;
	if (r) {
		sxm_job_fail(j, err);
		return SXM_STEP_AGAIN;
	}
	return SXM_STEP_NEXT;
}

static enum sxm_step copying(struct sxm_job *j)
{
	char err[768] = "";
	bool restarted = false;
	int r;

	if (j->rec.phase != SXM_PHASE_COPYING)
		sxm_job_enter(j, SXM_PHASE_COPYING);
	sxm_job_unlock(j);
	r = attach(j, &restarted, err, sizeof(err));
	if (!r)
		r = do_copy(j, err, sizeof(err));
	sxm_job_lock(j);
	sxm_job_set_op(j, "", 0, 0);
	if (must_stop(j) || sink_changed(j, r, err, sizeof(err)))
		return SXM_STEP_AGAIN;
	if (r) {
		sxm_job_fail(j, err);
		return SXM_STEP_AGAIN;
	}
	return SXM_STEP_NEXT;
}

/* Also the way in for a warm job switched to mirror style (Ready). */
static enum sxm_step composing(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	char err[768] = "";
	bool restarted = false;
	int r;

	if (rec->phase != SXM_PHASE_COMPOSING)
		sxm_job_enter(j, SXM_PHASE_COMPOSING);
	sxm_job_unlock(j);
	r = attach(j, &restarted, err, sizeof(err));
	if (!r && !restarted)
		r = do_compose(j, err, sizeof(err));
	sxm_job_lock(j);
	if (must_stop(j) || restarted || sink_changed(j, r, err, sizeof(err)))
		return SXM_STEP_AGAIN;
	if (r == -ESTALE) {
		rec->full_done = 0;
		rec->sink_zero = false;
		sxm_job_event(j, "%s", err);
		sxm_job_enter(j, SXM_PHASE_COPYING);
		return SXM_STEP_AGAIN;
	}
	if (r) {
		sxm_job_fail(j, err);
		return SXM_STEP_AGAIN;
	}
	return SXM_STEP_NEXT;
}

static enum sxm_step mirrored_phase(struct sxm_job *j)
{
	char err[768] = "";
	bool restarted = false;
	int r;

	sxm_job_unlock(j);
	r = attach(j, &restarted, err, sizeof(err));
	sxm_job_lock(j);
	if (must_stop(j))
		return SXM_STEP_AGAIN;
	if (r) {
		sxm_job_fail(j, err);
		return SXM_STEP_AGAIN;
	}
	if (!restarted)
		mirrored(j);
	return SXM_STEP_AGAIN;
}

/* Done: Completed (final).  Failed: the device resumed, Mirrored again. */
static enum sxm_step cutting_over(struct sxm_job *j)
{
	char err[768] = "", rerr[256] = "";
	bool restarted = false;
	int r, e;

	sxm_job_unlock(j);
	r = attach(j, &restarted, err, sizeof(err));
	if (!r && restarted)
		r = -ESTALE;
	if (!r && !stop_now(j))
		r = mirror_before_cutover(j, err, sizeof(err));
	/*
	 * The sink looked at afresh, live: the freeze needs no new look.  A
	 * source found frozen has no ring (a restarted daemon): no locks.
	 */
	if (!r && !stop_now(j))
		r = mirror_check_sinks(j, !j->run.suspended, true, err,
				       sizeof(err));
	if (!r && !stop_now(j))
		r = verify_live(j, err, sizeof(err));
	if (!r && stop_now(j)) {
		snprintf(err, sizeof(err), "interrupted");
		r = -EINTR;
	}
	if (!r)
		r = do_cutover(j, err, sizeof(err));
	sxm_job_lock(j);
	if (!r) {
		sxm_job_completed(j, mirror_release_all);
		return SXM_STEP_AGAIN;
	}
	if (restarted) {
		/* The bulk copy starts over (attach said why). */
		sxm_job_set_op(j, "", 0, 0);
		return SXM_STEP_AGAIN;
	}
	sxm_job_unlock(j);
	/* The guest gets its disk back, and the pump its work. */
	if (j->mirror->pump && !j->mirror->running && j->mirror->sink)
		mirror_pump_start(j, rerr, sizeof(rerr));
	e = sxm_job_resume_device(j, rerr, sizeof(rerr));
	sxm_job_lock(j);
	if (e) {
		sxm_job_fail(j, rerr);
	} else if (!must_stop(j)) {
		/* Counted, with why; another sink then takes its policy. */
		sxm_job_cutover_failed(j, err, r == -EMEDIUMTYPE &&
				       j->rec.sink_resync ? SXM_PHASE_COPYING :
				       SXM_PHASE_MIRRORED);
		sink_changed(j, r, err, sizeof(err));
	}
	return SXM_STEP_AGAIN;
}

/* Let go of everything until a retry or a cancel. */
static enum sxm_step failed(struct sxm_job *j)
{
	if (j->run.kfd >= 0 || j->run.sink || j->mirror->pump) {
		sxm_job_unlock(j);
		let_go(j, true);
		sxm_job_lock(j);
		return SXM_STEP_AGAIN;
	}
	sxm_job_wait_ms(j, 60000);
	return SXM_STEP_AGAIN;
}

/* ------------------------------------------------------------------ */
/* The style                                                          */
/* ------------------------------------------------------------------ */

/*
 * A mirror-style job found in a warm phase takes the mirror phase that
 * matches it: a retry of a failed cutover comes back Ready, and composes.
 */
static const struct sxm_phase_def mirror_phases[] = {
	{ SXM_PHASE_INITIALIZING,	preparing,	SXM_PHASE_COPYING },
	{ SXM_PHASE_PREPARING,		preparing,	SXM_PHASE_COPYING },
	{ SXM_PHASE_FULL_SYNC,		copying,	SXM_PHASE_COMPOSING },
	{ SXM_PHASE_COPYING,		copying,	SXM_PHASE_COMPOSING },
	{ SXM_PHASE_READY,		composing,	SXM_PHASE_MIRRORED },
	{ SXM_PHASE_SYNCING,		composing,	SXM_PHASE_MIRRORED },
	{ SXM_PHASE_COMPOSING,		composing,	SXM_PHASE_MIRRORED },
	{ SXM_PHASE_MIRRORED,		mirrored_phase,	SXM_PHASE_CUTTING_OVER },
	{ SXM_PHASE_CUTTING_OVER,	cutting_over,	SXM_PHASE_COMPLETED },
	{ SXM_PHASE_FAILED,		failed,		SXM_PHASE_FAILED },
};

/* Mirror style runs its own kind, and its own phases of any job. */
static bool mirror_runs(const struct sxm_job *j)
{
	switch (j->rec.phase) {
	case SXM_PHASE_PREPARING:
	case SXM_PHASE_COPYING:
	case SXM_PHASE_COMPOSING:
	case SXM_PHASE_MIRRORED:
		return true;
	default:
		return sxm_job_is_mirror(&j->rec);
	}
}

static int mirror_take(struct sxm_job *j)
{
	if (!j->mirror)
		j->mirror = calloc(1, sizeof(*j->mirror));
	return j->mirror ? 0 : -ENOMEM;
}

/*
 * Let go: the mirror off, a cutover in progress undone (Mirrored again);
 * with @detach the attach too, and the pump's state freed.
 */
static void mirror_leave(struct sxm_job *j, bool detach)
{
	struct sxm_mirror_run *m;
	bool cutting;

	sxm_job_lock(j);
	m = j->mirror;
	cutting = j->rec.phase == SXM_PHASE_CUTTING_OVER;
	sxm_job_unlock(j);
	if (!m) {
		if (detach)
			sxm_job_run_close(j);
		return;
	}
	let_go(j, detach);
	sxm_job_lock(j);
	if (cutting && !j->run.suspended &&
	    j->rec.phase == SXM_PHASE_CUTTING_OVER) {
		sxm_job_event(j, "cutover interrupted; /dev/mapper/%s resumed",
			      j->rec.device);
		sxm_job_enter(j, SXM_PHASE_MIRRORED);
	}
	if (detach) {
		free(j->mirror);
		j->mirror = NULL;
	}
	sxm_job_unlock(j);
}

/* ------------------------------------------------------------------ */
/* Observing                                                          */
/* ------------------------------------------------------------------ */

/* The live mirror figures of @j (the kernel's, the pump's) into @out. */
static void mirror_snapshot(struct sxm_job *j, struct sxm_job_rec *out)
{
	struct sxm_status ms;

	sxm_job_lock(j);
	if (j->mirror)
		publish(j);
	out->lat_p50_us = j->rec.lat_p50_us;
	out->lat_p99_us = j->rec.lat_p99_us;
	sxm_job_unlock(j);
	if (sxm_phase_final(out->phase) || !out->device[0])
		return;
	sxm_job_dm_lock(j);
	if (!mirror_status_read(out->device, &ms)) {
		snprintf(out->mirror, sizeof(out->mirror), "%s", ms.mirror);
		snprintf(out->mirror_reason, sizeof(out->mirror_reason), "%s",
			 strcmp(ms.reason, "-") ? ms.reason : "");
		out->mirror_in_flight = ms.in_flight;
		out->mirror_held_back = ms.held_back;
		out->mirrored_writes = ms.mirrored_writes;
		out->mirrored_bytes = ms.mirrored_bytes;
	}
	sxm_job_dm_unlock(j);
}

const struct sxm_style sxm_mirror_style = {
	.name = "mirror-style",
	.phases = mirror_phases,
	.nr_phases = ARRAY_SIZE(mirror_phases),
	.runs = mirror_runs,
	.take = mirror_take,
	.leave = mirror_leave,
	.snapshot = mirror_snapshot,
};
