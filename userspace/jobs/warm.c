// SPDX-License-Identifier: GPL-2.0
/*
 * The warm style (phases.h, job.h): warm migration's phases, run by the
 * phase engine's thread, one per job.
 *
 *   Initializing  put sxm under the source if it is not there (insert.c
 *                 under a dm device, a new device over a plain one; the
 *                 device, the attach and tracking are core.c's), attach
 *                 to /dev/dm-sxm as the helper, "mode track", harvest and
 *                 acknowledge whatever the map held (a clean baseline), and
 *                 save the kernel's track_id.
 *   Full Sync     copy every region, in chunks of about two seconds each;
 *                 after each chunk (flushed) the cursor full_done is saved,
 *                 so a daemon killed with kill -9 resumes at the cursor.
 *                 Writes meanwhile are tracked: the first sync takes them.
 *   Syncing       harvest (the kernel holds what it hands out until it is
 *                 acknowledged), copy those regions in chunks, and after
 *                 each chunk is on the sink (flushed) acknowledge exactly
 *                 its regions.  A daemon killed mid-sync harvests again and
 *                 gets the rest back.
 *   Cutting Over  suspend the device (guest I/O held), harvest, copy the
 *                 delta without the rate limit, flush, read it back and
 *                 compare, acknowledge, and leave the device suspended: the
 *                 source is frozen and cannot diverge from the sink.  On any
 *                 failure the device is resumed and the job is Ready again.
 *   Cancel        (phases.c and core.c, the same for both styles) stop,
 *                 resume the device if we suspended it, detach, and take
 *                 sxm out again: restore the original table (inserted),
 *                 remove the device we made or, while it is open, turn it
 *                 into a plain linear mapping (created), or put the tracking
 *                 back as it was (existing).  The source is only ever read.
 *
 * If the kernel's track_id is not the one saved (the device was recreated,
 * or tracking stopped), writes may have gone unseen: the job starts a full
 * sync again and says so in its events.
 *
 * Sections: tracking, the work of the phases, the phases, the style.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "dm/dm.h"
#include "jobs/core.h"
#include "jobs/phases.h"

#define CHUNK_SECS		2.0		/* of copying between saves */
#define CHUNK_MIN		(4ULL << 20)
#define CHUNK_MAX		(4ULL << 30)
#define CHUNK_FIRST		(64ULL << 20)	/* before any rate is known */

/* ------------------------------------------------------------------ */
/* Tracking                                                           */
/* ------------------------------------------------------------------ */

/* What a new baseline's event says follows it: the full sync. */
static void full_sync_plan(struct sxm_job *j, char *buf, size_t len)
{
	sxm_job_lock(j);
	snprintf(buf, len, "; full sync of %" PRIu64 " bytes to %s",
		 j->rec.size, j->rec.sink);
	sxm_job_unlock(j);
}

/* Tracking on with a clean baseline, a full sync to follow. */
static int start_tracking(struct sxm_job *j, char *err, size_t errlen)
{
	char then[sizeof(j->rec.sink) + 64];

	full_sync_plan(j, then, sizeof(then));
	return sxm_job_start_tracking(j, then, err, errlen);
}

/*
 * Tracking had a gap (sxm_job_tracking_gap()): writes may have gone
 * unseen, so start over with a full sync.  j->lock not held.
 */
static int check_tracking(struct sxm_job *j, char *err, size_t errlen,
			  bool *restarted)
{
	char then[sizeof(j->rec.sink) + 64];
	int r;

	*restarted = false;
	r = sxm_job_tracking_gap(j, false, "a full sync is needed", err,
				 errlen);
	if (r <= 0)
		return r;
	full_sync_plan(j, then, sizeof(then));
	r = sxm_job_track_again(j, SXM_PHASE_FULL_SYNC, then, err, errlen);
	if (r)
		return r;
	*restarted = true;
	return 0;
}

/*
 * The sink checked (sxm_job_sink_check()), and the job's policy applied
 * to one found changed: -EMEDIUMTYPE to fail, or a full sync from the
 * start (*@restarted).  j->lock not held.
 */
static int check_sink(struct sxm_job *j, bool force, bool *restarted,
		      char *err, size_t errlen)
{
	int r;

	*restarted = false;
	if (!j->run.sink)
		return 0;
	r = sxm_job_sink_check(j, j->run.sink, &j->run.sink_ok, false, force,
			       err, errlen);
	if (r == -EMEDIUMTYPE)
		r = sxm_job_sink_changed(j, SXM_PHASE_FULL_SYNC, restarted,
					 err, errlen);
	return r;
}

/*
 * Between two chunks of a copy: the sink may have connected again (to
 * another server).  -ERESTART when the job starts over (its phase set).
 */
static int check_sink_again(struct sxm_job *j, char *err, size_t errlen)
{
	bool restarted;
	int r;

	r = check_sink(j, false, &restarted, err, errlen);
	return !r && restarted ? -ERESTART : r;
}

/* Tracking, then the sink: what the phases check before they copy. */
static int check_job(struct sxm_job *j, bool *restarted, char *err,
		     size_t errlen)
{
	int r;

	r = check_tracking(j, err, errlen, restarted);
	if (!r && !*restarted)
		r = check_sink(j, false, restarted, err, errlen);
	return r;
}

/* ------------------------------------------------------------------ */
/* Copying                                                            */
/* ------------------------------------------------------------------ */

/* The next chunk's size: about CHUNK_SECS of copying at the last rate. */
static uint64_t next_chunk(uint64_t chunk, uint64_t bytes, double secs,
			   uint64_t rate_limit, uint64_t rs)
{
	double want;

	if (secs > 0.05 && bytes)
		want = bytes / secs * CHUNK_SECS;
	else if (rate_limit)
		want = (double)rate_limit * CHUNK_SECS;
	else
		want = chunk;
	if (want < CHUNK_MIN)
		want = CHUNK_MIN;
	if (want > CHUNK_MAX)
		want = CHUNK_MAX;
	return ((uint64_t)want + rs - 1) / rs * rs;
}

/* ------------------------------------------------------------------ */
/* The work of the phases                                             */
/* ------------------------------------------------------------------ */

static int do_full(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr = run->nr_regions;
	uint64_t done, size, chunk, end, lw;
	struct sxm_copy_result res;
	struct sxm_job_progress pg = { .j = j };
	uint64_t *map, copied = 0;
	bool zero;
	double t0, start;
	int r = 0, e;

	map = sxm_map_alloc(nr);
	if (!map)
		return -ENOMEM;
	sxm_job_lock(j);
	done = j->rec.full_done;
	size = j->rec.size;
	zero = j->rec.sink_zero;
	chunk = next_chunk(CHUNK_FIRST, 0, 0, j->rec.rate_limit, rs);
	sxm_job_set_op(j, "full sync", done, size);
	if (done)
		sxm_job_event(j, "full sync resumes at %" PRIu64 " of %" PRIu64 " bytes",
			      done, size);
	else
		sxm_job_event(j, "full sync started");
	sxm_job_unlock(j);
	start = sxm_mono_s();

	while (done < size) {
		sxm_job_lock(j);
		if (sxm_job_copy_must_stop(j))
			r = -EINTR;
		sxm_job_unlock(j);
		if (!r)
			r = check_sink_again(j, err, errlen);
		if (r)
			break;
		end = done + chunk < size ? done + chunk : size;
		sxm_map_zero(map, nr);
		sxm_map_set_range(map, done / rs, (end + rs - 1) / rs);
		pg.base = done;
		t0 = sxm_mono_s();
		r = sxm_job_copy(j, map, SXM_JOB_COPY_LIMIT |
				 (zero ? SXM_JOB_COPY_SINK_ZERO : 0),
				 0, &pg, &res);
		/* Connected again meanwhile: the cursor moves once checked. */
		e = r ? 0 : check_sink_again(j, err, errlen);
		sxm_job_lock(j);
		j->rec.bytes_full += res.stats.bytes_done;
		copied += res.stats.bytes_done;
		if (e) {
			r = e;
		} else if (r) {
			/* Below the first region still dirty all is on the sink. */
			lw = res.dirty ? sxm_map_find(res.dirty, nr, done / rs, true) : done / rs;
			if (lw * rs > done)
				j->rec.full_done = lw * rs < size ? lw * rs : size;
			snprintf(err, errlen, "%s", res.errmsg);
		} else {
			j->rec.full_done = end;
		}
		done = j->rec.full_done;
		j->rec.op_done = done;
		sxm_job_save(j);
		sxm_job_unlock(j);
		if (r)
			break;
		chunk = next_chunk(chunk, res.stats.bytes_done,
				   sxm_mono_s() - t0, 0, rs);
		sxm_copy_result_free(&res);
	}
	sxm_copy_result_free(&res);
	free(map);
	if (r)
		return r;
	sxm_job_lock(j);
	j->rec.last_sync_secs = sxm_mono_s() - start;
	if (copied && j->rec.last_sync_secs > 0)
		j->rec.last_rate = copied / j->rec.last_sync_secs;
	j->rec.last_sync_ms = sxm_now_ms();
	j->rec.last_sync_bytes = size;
	sxm_job_event(j, "full sync done: %" PRIu64 " bytes copied in all, %.1f s this run",
		      j->rec.bytes_full, j->rec.last_sync_secs);
	sxm_job_set_op(j, "", 0, 0);
	sxm_job_unlock(j);
	return 0;
}

/*
 * One incremental sync: harvest, copy in chunks, acknowledge each chunk
 * once it is flushed on the sink.  j->lock not held.
 */
static int do_sync(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr, r0;
	uint64_t total, done = 0, chunk, in_chunk, size;
	struct sxm_copy_result res = { 0 };
	struct sxm_job_progress pg = { .j = j };
	uint64_t *map = NULL, *cmap = NULL;
	struct sxm_harvest h;
	double start, t0;
	int r;

	r = sxm_job_harvest(j, "tracking was interrupted", &map, &h, err,
			    errlen);
	if (r)
		return r;
	sxm_job_lock(j);
	size = j->rec.size;
	nr = h.nr_regions;
	total = sxm_regions_bytes(map, nr, rs, size);
	sxm_job_set_op(j, "sync", 0, total);
	chunk = next_chunk(CHUNK_FIRST, 0, 0, j->rec.rate_limit, rs);
	sxm_job_unlock(j);
	start = sxm_mono_s();

	cmap = sxm_map_alloc(nr);
	if (!cmap) {
		free(map);
		return -ENOMEM;
	}
	for (r0 = 0; r0 < nr && !r; ) {
		sxm_map_zero(cmap, nr);
		for (in_chunk = 0; r0 < nr && in_chunk < chunk; r0++) {
			if (!sxm_map_test(map, r0))
				continue;
			sxm_map_set(cmap, r0);
			in_chunk += sxm_region_len(r0, rs, size);
		}
		if (!in_chunk)
			break;
		r = check_sink_again(j, err, errlen);
		if (r)
			break;
		pg.base = done;
		t0 = sxm_mono_s();
		r = sxm_job_copy(j, cmap, SXM_JOB_COPY_LIMIT, 0, &pg, &res);
		/* Connected again meanwhile: acknowledged once checked. */
		if (!r) {
			r = check_sink_again(j, res.errmsg,
					     sizeof(res.errmsg));
			if (r)
				sxm_map_zero(cmap, nr);
		}
		if (r && res.dirty)
			sxm_map_andnot(cmap, res.dirty, nr);
		else if (r)
			sxm_map_zero(cmap, nr);
		/* On the sink and flushed: the kernel may forget them. */
		if (sxm_map_weight(cmap, nr)) {
			int e = sxm_kdev_ack(run->kfd, cmap, nr, NULL);

			/* Written, not read back: to verify again. */
			sxm_job_unverify(j, cmap);

			if (e && !r) {
				r = e;
				snprintf(res.errmsg, sizeof(res.errmsg),
					 "/dev/mapper/%s: acknowledge: %s",
					 j->rec.device, strerror(-e));
			}
		}
		sxm_job_lock(j);
		j->rec.bytes_incr += res.stats.bytes_done;
		done += res.stats.bytes_done;
		j->rec.op_done = done;
		sxm_job_save(j);
		sxm_job_unlock(j);
		if (r) {
			snprintf(err, errlen, "%s", res.errmsg);
		} else {
			chunk = next_chunk(chunk, res.stats.bytes_done,
					   sxm_mono_s() - t0, 0, rs);
		}
		sxm_copy_result_free(&res);
	}
	free(cmap);
	free(map);
	if (r)
		return r;

	sxm_job_lock(j);
	j->rec.sync_count++;
	j->rec.last_sync_ms = sxm_now_ms();
	j->rec.last_sync_bytes = total;
	j->rec.last_sync_secs = sxm_mono_s() - start;
	if (total && j->rec.last_sync_secs > 0)
		j->rec.last_rate = total / j->rec.last_sync_secs;
	sxm_job_event(j, "sync %" PRIu64 ": %" PRIu64 " bytes in %.2f s",
		      j->rec.sync_count, total, j->rec.last_sync_secs);
	sxm_job_set_op(j, "", 0, 0);
	sxm_job_unlock(j);
	return 0;
}

/*
 * Before the cutover suspends the device, syncs run live until what is
 * dirty is small, as a live migration of memory iterates before it stops
 * the guest: guest I/O is then held only for the copy of what changed
 * during the last of them.  When to stop is sxm_job_catchup_done()'s: a
 * sync that no longer halves what is dirty means the guest writes about
 * as fast as the sink takes it, and more would not shorten the freeze.
 * j->lock not held.
 */
static int catch_up(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_dm_info info;
	int64_t dirty, before = -1;
	uint64_t n;
	double rate;
	int r;

	sxm_job_lock(j);
	j->rec.catchup_syncs = 0;
	sxm_job_unlock(j);
	/* Frozen already: a daemon killed mid-cutover and started again. */
	if (!j->run.suspended) {
		sxm_job_dm_lock(j);
		r = sxm_dm_info(j->rec.device, &info);
		sxm_job_dm_unlock(j);
		if (!r && info.suspended)
			j->run.suspended = true;
	}
	if (j->run.suspended)
		return 0;
	for (;;) {
		dirty = sxm_job_dirty_bytes(&j->rec);
		if (dirty < 0)
			return 0;	/* the suspended copy will find out */
		sxm_job_lock(j);
		rate = j->rec.last_rate;
		n = j->rec.catchup_syncs;
		sxm_job_unlock(j);
		if (sxm_job_catchup_done(dirty, before, rate, n))
			break;
		r = do_sync(j, err, errlen);
		if (r)
			return r;
		sxm_job_lock(j);
		j->rec.catchup_syncs++;
		sxm_job_unlock(j);
		before = dirty;
	}
	sxm_job_lock(j);
	sxm_job_event(j, "cutover: %" PRIu64 " sync%s caught up live first; %" PRId64 " bytes dirty left for the frozen copy",
		      j->rec.catchup_syncs,
		      j->rec.catchup_syncs == 1 ? "" : "s", dirty);
	sxm_job_unlock(j);
	return 0;
}

/*
 * Before the freeze, with the guest running: the online verify's pass
 * finished, at full speed, so that the freeze reads back only what it
 * copies (unless --no-verify, or frozen already).  j->lock not held.
 */
static int verify_live(struct sxm_job *j, char *err, size_t errlen)
{
	uint64_t found;
	int r;

	r = sxm_job_verify_pass(j, j->run.sink, false, &found, err, errlen);
	if (r == 1) {
		sxm_job_lock(j);
		sxm_job_event(j, "cutover: the online verify's pass finished live first (%" PRIu64 " region%s differed: copied with the source frozen)",
			      found, found == 1 ? "" : "s");
		sxm_job_unlock(j);
	}
	return r < 0 ? r : 0;
}

/*
 * What the freeze reads back: what it copied (@map), everything with
 * @all, and unless --no-verify whatever is not verified yet; into @out.
 */
static const uint64_t *freeze_verify_map(struct sxm_job *j,
					 const uint64_t *map, bool all,
					 uint64_t *out)
{
	if (all)
		return NULL;
	if (j->rec.no_verify || !out)
		return map;
	sxm_job_unverified(j, out);
	sxm_map_or(out, map, j->run.nr_regions);
	return out;
}

/*
 * The frozen read-back: what the cutover copied (@map), all of it with
 * @all, and whatever is not verified yet.  *@verified: bytes compared;
 * *@all_ok: every region of the device is verified now.  A region that
 * differs fails it, marked dirty for the next sync.  j->lock not held.
 */
static int freeze_verify(struct sxm_job *j, const uint64_t *map, bool all,
			 uint64_t *verified, bool *all_ok, char *err,
			 size_t errlen)
{
	uint64_t nr = j->run.nr_regions, rs = j->run.region_sectors << SECTOR_SHIFT;
	struct sxm_copy_result res = { 0 };
	struct sxm_job_progress pg = { .j = j };
	uint64_t *vmap = sxm_map_alloc(nr);
	const uint64_t *vm = freeze_verify_map(j, map, all, vmap);
	int r = 0, e = 0;

	*all_ok = false;
	if (!vm || sxm_map_weight(vm, nr)) {
		sxm_job_lock(j);
		sxm_job_set_op(j, "verify", 0, vm ?
			       sxm_regions_bytes(vm, nr, rs, j->rec.size) :
			       j->rec.size);
		sxm_job_unlock(j);
		r = sxm_job_copy(j, vm, SXM_JOB_COPY_VERIFY, 0, &pg, &res);
		if (r == -EILSEQ && res.dirty) {
			/*
			 * Not lost: copied again by the next sync; if the mark
			 * fails, still unverified: verified (and marked) again
			 * at the next cutover, never Completed before.
			 */
			e = sxm_kdev_mark_map(j->run.kfd, res.dirty, nr, NULL);
			sxm_job_lock(j);
			j->rec.verify_mismatches += res.nr_dirty;
			sxm_job_unlock(j);
		}
		if (r)
			snprintf(err, errlen, "verify: %s%s%s", res.errmsg,
				 e ? "; marking them to copy again: " : "",
				 e ? strerror(-e) : "");
		*verified = res.stats.bytes_done;
	}
	if (!r) {
		sxm_job_verified(j, vm, NULL);
		*all_ok = vmap && !sxm_job_unverified(j, vmap);
	}
	/* Never Completed unverified but by the operator's choice. */
	if (!r && !*all_ok && !j->rec.no_verify) {
		r = vmap ? -EIO : -ENOMEM;
		snprintf(err, errlen, "verify: not every region could be read back (%s)",
			 vmap ? "the verified map is short" : strerror(ENOMEM));
	}
	sxm_copy_result_free(&res);
	free(vmap);
	return r;
}

/*
 * The cutover.  On success the device stays suspended and the job is
 * Completed; on failure the caller resumes the device.  j->lock not held.
 */
static int do_cutover(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr, total;
	struct sxm_copy_result res = { 0 };
	struct sxm_job_progress pg = { .j = j };
	uint64_t *map = NULL, verified = 0;
	struct sxm_harvest h;
	bool all, all_ok;
	uint64_t downtime_ms;
	char how[sizeof(j->rec.events[0].text)];
	int r;

	r = sxm_job_cutover_start(j, &all, err, errlen);
	if (r)
		return r;
	sxm_job_lock(j);
	sxm_job_event(j, "cutover: /dev/mapper/%s suspended, guest I/O held",
		      j->rec.device);
	sxm_job_unlock(j);

	r = sxm_job_harvest(j, "tracking was interrupted (track id changed): a full sync is needed first",
			    &map, &h, err, errlen);
	if (r)
		return r;
	sxm_job_lock(j);
	nr = h.nr_regions;
	total = sxm_regions_bytes(map, nr, rs, j->rec.size);
	sxm_job_set_op(j, "cutover", 0, total);
	sxm_job_unlock(j);

	r = sxm_job_copy(j, map, 0, 0, &pg, &res);
	if (r) {
		snprintf(err, errlen, "%s", res.errmsg);
		goto out;
	}
	sxm_copy_result_free(&res);
	r = freeze_verify(j, map, all, &verified, &all_ok, err, errlen);
	if (r)
		goto out;
	/* Connected again meanwhile: the sink is looked at once more. */
	r = check_sink_again(j, err, errlen);
	if (r)
		goto out;
	r = sxm_kdev_ack(run->kfd, map, nr, NULL);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: acknowledge: %s",
			 j->rec.device, strerror(-r));
		goto out;
	}
	downtime_ms = sxm_job_held_ms(j);
	snprintf(how, sizeof(how), "cutover done: %" PRIu64 " bytes copied and %" PRIu64 " verified with guest I/O held for %" PRIu64 " ms; %s",
		 total, verified, downtime_ms, all_ok ?
		 "every region of the sink verified equal to the source" :
		 "not every region verified (--no-verify)");
	sxm_job_lock(j);
	j->rec.verified_all = all_ok;
	sxm_job_cutover_done(j, total, verified, downtime_ms, how);
	sxm_job_unlock(j);
out:
	sxm_copy_result_free(&res);
	free(map);
	return r;
}

/* ------------------------------------------------------------------ */
/* The phases                                                         */
/* ------------------------------------------------------------------ */

/*
 * Fail the job in its current phase; a sync asked is off too (a warm job
 * has them, a mirror-style one not).  j->lock held.
 */
static void fail(struct sxm_job *j, const char *why)
{
	j->req_sync = false;
	sxm_job_fail(j, why);
}

/* Wait for a request, or until @until_ms (0: no limit); j->lock held. */
static void wait_for(struct sxm_job *j, int64_t until_ms)
{
	int64_t left;

	if (!until_ms) {
		pthread_cond_wait(&j->cond, &j->lock);
		return;
	}
	left = until_ms - sxm_now_ms();
	if (left > 0)
		sxm_job_wait_ms(j, left);
}

/*
 * The phases: each is called with j->lock held and returns with it held
 * (phases.h).
 */

static enum sxm_step initializing(struct sxm_job *j)
{
	char err[768] = "";
	int r;

	sxm_job_unlock(j);
	r = sxm_job_prepare_device(j, err, sizeof(err));
	if (!r)
		r = sxm_job_run_open(j, true, err, sizeof(err));
	if (!r)
		r = start_tracking(j, err, sizeof(err));
	sxm_job_lock(j);
	if (j->rec.cancelling)
		return SXM_STEP_AGAIN;
	if (r) {
		fail(j, err);
		return SXM_STEP_AGAIN;
	}
	return SXM_STEP_NEXT;
}

static enum sxm_step full_sync(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	char err[768] = "";
	bool restarted;
	int r;

	if (rec->paused) {
		sxm_job_set_op(j, "", 0, 0);
		wait_for(j, 0);
		return SXM_STEP_AGAIN;
	}
	sxm_job_unlock(j);
	r = sxm_job_run_open(j, true, err, sizeof(err));
	if (!r)
		r = check_job(j, &restarted, err, sizeof(err));
	if (!r)
		r = do_full(j, err, sizeof(err));
	sxm_job_lock(j);
	if (r == -EINTR || r == -ERESTART || rec->cancelling ||
	    j->d->stopping)
		return SXM_STEP_AGAIN;
	if (r) {
		fail(j, err);
		return SXM_STEP_AGAIN;
	}
	rec->next_sync_ms = rec->cadence_ms ? sxm_now_ms() + rec->cadence_ms : 0;
	return SXM_STEP_NEXT;
}

#define VERIFY_STEP_SECS	1.0	/* of the online verify between looks */
#define VERIFY_BACKOFF_MAX_MS	60000	/* after steps that keep failing */

/*
 * A verify step failed for a reason that may pass (the sink unreachable,
 * a read error): said once, the connection let go, and tried again later,
 * backing off; the job stays Ready (a sync or a cutover fails by itself if
 * the sink is still gone).  j->lock held.
 */
static enum sxm_step verify_failed(struct sxm_job *j, const char *why)
{
	if (!j->verify_backoff_ms)
		sxm_job_event(j, "verify: %s; trying again later", why);
	j->verify_backoff_ms = j->verify_backoff_ms ?
			       j->verify_backoff_ms * 2 : 1000;
	if (j->verify_backoff_ms > VERIFY_BACKOFF_MAX_MS)
		j->verify_backoff_ms = VERIFY_BACKOFF_MAX_MS;
	sxm_job_unlock(j);
	sxm_sink_close(j->run.sink);
	j->run.sink = NULL;
	sxm_job_lock(j);
	if (!j->req_sync && !j->req_cutover && !j->rec.cancelling &&
	    !j->d->stopping)
		sxm_job_wait_ms(j, j->verify_backoff_ms);
	return SXM_STEP_AGAIN;
}

/*
 * Ready, nothing else to do: a step of the online verify (verify.c), at
 * its rate, the sink checked first; a region found differing asks for a
 * sync, which repairs it.  j->lock held, dropped meanwhile.
 */
static enum sxm_step verify_some(struct sxm_job *j)
{
	uint64_t rate, found = 0;
	char err[768] = "";
	bool restarted = false, done = false;
	double t0 = sxm_mono_s(), want;
	int r;

	/* Nothing else asked (ready() looked): a request from now stops it. */
	j->verify_stop = j->d->stopping || j->rec.cancelling;
	sxm_job_unlock(j);
	sxm_job_verify_take_request(j);
	rate = sxm_job_verify_rate(j);
	r = sxm_job_run_open(j, true, err, sizeof(err));
	if (!r)
		r = check_job(j, &restarted, err, sizeof(err));
	if (!r && !restarted)
		r = sxm_job_verify_step(j, j->run.sink, false,
					(uint64_t)(rate * VERIFY_STEP_SECS),
					&found, &done, err, sizeof(err));
	if (!r && done)
		sxm_job_verify_answer(j);
	sxm_job_lock(j);
	if (restarted || r == -EINTR || r == -ERESTART)
		return SXM_STEP_AGAIN;
	if (r == -EMEDIUMTYPE) {
		fail(j, err);
		return SXM_STEP_AGAIN;
	}
	if (r)
		return verify_failed(j, err[0] ? err : strerror(-r));
	j->verify_backoff_ms = 0;
	if (found)
		j->req_sync = true;
	/* At the rate: a step's worth of bytes, a step's worth of time. */
	want = t0 + VERIFY_STEP_SECS;
	if (!j->req_sync && !j->req_cutover && !j->verify_stop &&
	    !j->rec.cancelling && !j->d->stopping && want > sxm_mono_s())
		sxm_job_wait_ms(j, (uint64_t)((want - sxm_mono_s()) * 1000) + 1);
	return SXM_STEP_AGAIN;
}

/* Ready: a sync when asked or due (next), a cutover when asked. */
static enum sxm_step ready(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	char err[768] = "";
	bool restarted, retried;
	int r;

	/* Retried: the sink is looked at now, not at the next sync. */
	retried = rec->retrying;
	sxm_job_unlock(j);
	r = sxm_job_run_open(j, retried, err, sizeof(err));
	if (!r)
		r = check_job(j, &restarted, err, sizeof(err));
	sxm_job_lock(j);
	/* The sink kept open for the online verify, gone for now: later. */
	if (r && r != -EMEDIUMTYPE && !retried && j->run.sink)
		return verify_failed(j, err);
	if (r) {
		fail(j, err);
		return SXM_STEP_AGAIN;
	}
	/* Back to a full sync; or switched to mirror style while unlocked. */
	if (restarted || rec->phase != SXM_PHASE_READY)
		return SXM_STEP_AGAIN;
	if (j->req_cutover) {
		j->req_cutover = false;
		sxm_job_enter(j, SXM_PHASE_CUTTING_OVER);
		return SXM_STEP_AGAIN;
	}
	if (rec->paused)
		rec->next_sync_ms = 0;
	else if (rec->cadence_ms && !rec->next_sync_ms)
		rec->next_sync_ms = sxm_now_ms() + rec->cadence_ms;
	if (j->req_sync || (!rec->paused && rec->next_sync_ms &&
			    sxm_now_ms() >= rec->next_sync_ms)) {
		j->req_sync = false;
		return SXM_STEP_NEXT;
	}
	if (sxm_job_verify_due(j))
		return verify_some(j);
	/*
	 * Idle: let the sink go, it may be days to the next sync; but not
	 * while the online verify is on: what it verified holds for this
	 * connection only (a new one starts it again).
	 */
	if (j->run.sink && (rec->no_verify || rec->paused)) {
		sxm_job_unlock(j);
		sxm_sink_close(j->run.sink);
		j->run.sink = NULL;
		sxm_job_lock(j);
		return SXM_STEP_AGAIN;
	}
	/*
	 * A cancel or a stop that came while the lock was dropped above has
	 * woken no one: look before waiting, or the wake-up is lost.
	 */
	if (rec->cancelling || j->d->stopping)
		return SXM_STEP_AGAIN;
	rec->retrying = false;
	wait_for(j, rec->next_sync_ms);
	return SXM_STEP_AGAIN;
}

static enum sxm_step syncing(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	char err[768] = "";
	bool restarted;
	int r;

	sxm_job_unlock(j);
	r = sxm_job_run_open(j, true, err, sizeof(err));
	if (!r)
		r = check_job(j, &restarted, err, sizeof(err));
	if (!r && !restarted)
		r = do_sync(j, err, sizeof(err));
	sxm_job_lock(j);
	if ((!r && restarted) || r == -ERESTART) {
		/*
		 * Everything is copied again first; then the sync asked for
		 * (or due) runs, and a "sync --wait" sees it done.
		 */
		j->req_sync = true;
		return SXM_STEP_AGAIN;
	}
	if (r == -ESTALE) {
		sxm_job_unlock(j);
		r = check_tracking(j, err, sizeof(err), &restarted);
		sxm_job_lock(j);
		if (r)
			fail(j, err);
		return SXM_STEP_AGAIN;
	}
	if (rec->cancelling || j->d->stopping)
		return SXM_STEP_AGAIN;
	if (r == -EINTR) {
		/* Paused: what was copied is acknowledged. */
		sxm_job_set_op(j, "", 0, 0);
		sxm_job_event(j, "sync stopped: paused");
		return SXM_STEP_NEXT;
	}
	if (r) {
		fail(j, err);
		return SXM_STEP_AGAIN;
	}
	rec->next_sync_ms = rec->cadence_ms && !rec->paused ?
			    sxm_now_ms() + rec->cadence_ms : 0;
	return SXM_STEP_NEXT;
}

/* Done: Completed (final).  Failed: the device resumed, Ready again. */
static enum sxm_step cutting_over(struct sxm_job *j)
{
	char err[768] = "", rerr[256] = "";
	bool cancel, restarted;
	int r, e;

	sxm_job_unlock(j);
	r = sxm_job_run_open(j, true, err, sizeof(err));
	/* Looked at afresh, live: the freeze then needs no new look. */
	if (!r)
		r = check_sink(j, true, &restarted, err, sizeof(err));
	if (!r && restarted)
		r = -ERESTART;
	if (!r)
		r = catch_up(j, err, sizeof(err));
	if (!r)
		r = verify_live(j, err, sizeof(err));
	if (!r)
		r = do_cutover(j, err, sizeof(err));
	sxm_job_lock(j);
	if (!r) {
		sxm_job_completed(j, sxm_job_run_close);
		return SXM_STEP_AGAIN;
	}
	if (j->d->stopping && r == -EINTR)
		snprintf(err, sizeof(err), "the daemon is stopping");
	cancel = j->rec.cancelling;
	sxm_job_unlock(j);
	e = sxm_job_resume_device(j, rerr, sizeof(rerr));
	sxm_job_lock(j);
	if (e) {
		fail(j, rerr);
		return SXM_STEP_AGAIN;
	}
	/*
	 * Another sink: a full sync from the start (the phase is set), and
	 * the cutover counted as failed, with why...
	 */
	if (r == -ERESTART) {
		sxm_job_cutover_failed(j, err, SXM_PHASE_FULL_SYNC);
		return SXM_STEP_AGAIN;
	}
	/* ... or the job fails: no cutover can make this sink right. */
	if (r == -EMEDIUMTYPE && !cancel) {
		fail(j, err);
		return SXM_STEP_AGAIN;
	}
	/* A cancel gave up the cutover: it is cancelled in this phase. */
	if (!cancel)
		sxm_job_cutover_failed(j, err, SXM_PHASE_READY);
	return SXM_STEP_AGAIN;
}

/* Let go of everything until a retry (requests.c) or a cancel. */
static enum sxm_step failed(struct sxm_job *j)
{
	if (j->run.kfd >= 0 || j->run.sink) {
		sxm_job_unlock(j);
		sxm_job_run_close(j);
		sxm_job_lock(j);
		return SXM_STEP_AGAIN;
	}
	wait_for(j, 0);
	return SXM_STEP_AGAIN;
}

/* ------------------------------------------------------------------ */
/* The style                                                          */
/* ------------------------------------------------------------------ */

static const struct sxm_phase_def warm_phases[] = {
	{ SXM_PHASE_INITIALIZING,	initializing,	SXM_PHASE_FULL_SYNC },
	{ SXM_PHASE_FULL_SYNC,		full_sync,	SXM_PHASE_READY },
	{ SXM_PHASE_READY,		ready,		SXM_PHASE_SYNCING },
	{ SXM_PHASE_SYNCING,		syncing,	SXM_PHASE_READY },
	{ SXM_PHASE_CUTTING_OVER,	cutting_over,	SXM_PHASE_COMPLETED },
	{ SXM_PHASE_FAILED,		failed,		SXM_PHASE_FAILED },
};

/* A warm job is every job the mirror style does not run. */
static bool warm_runs(const struct sxm_job *j)
{
	return !sxm_mirror_style.runs(j);
}

/*
 * Let go: the device resumed if a cutover was under way (the daemon is
 * stopping; the job is Ready again), and with @detach the attach.
 */
static void warm_leave(struct sxm_job *j, bool detach)
{
	char err[256];

	if (j->run.suspended) {
		if (sxm_job_resume_device(j, err, sizeof(err)))
			sxm_err("job %s: %s", j->rec.name, err);
		sxm_job_lock(j);
		if (j->rec.phase == SXM_PHASE_CUTTING_OVER) {
			sxm_job_event(j, "cutover interrupted: the daemon is stopping; /dev/mapper/%s resumed",
				      j->rec.device);
			sxm_job_enter(j, SXM_PHASE_READY);
		}
		sxm_job_unlock(j);
	}
	if (detach)
		sxm_job_run_close(j);
}

const struct sxm_style sxm_warm_style = {
	.name = "warm",
	.phases = warm_phases,
	.nr_phases = ARRAY_SIZE(warm_phases),
	.runs = warm_runs,
	.leave = warm_leave,
};
