// SPDX-License-Identifier: GPL-2.0
/*
 * What a job checks on its sink (core.h): the sink's identity on every
 * connection, and the online verify of every region.
 *
 * The sink's identity: before a job trusts a sink connection it
 * checks that the sink still holds what the job wrote there.  An NBD
 * server restarted at the job's address may serve another volume (a
 * destination re-provisioned by its tooling, an operator's slip): writes
 * would go on succeeding, and a job that did not look would call a sink
 * Completed that differs from its source wherever it copied nothing since.
 *
 * What is checked, on a connection the job has not checked before (a new
 * sink opened, or one that connected again: its epoch, io/sink.h):
 *
 *   the geometry  size and block sizes as the job first found them
 *                 (saved in its record, so a restarted daemon checks them
 *                 too);
 *   a sample      of the regions the job believes are on the sink: the
 *                 first and the last of them and SAMPLE_RANDOM more chosen
 *                 at random each time, read from the source and from the
 *                 sink and compared.  "Believed on the sink": below the
 *                 copy's cursor (full_done) and neither dirty nor held in
 *                 the kernel's map.
 *
 * The guest keeps writing meanwhile, so a region that differs is looked
 * at again before it counts: one written since (dirty in the map now) is
 * not evidence; with the mirror on, whose writes are not in the map, the
 * regions that differed are compared again under their region locks,
 * which wait for the mirrored writes in flight there.  What still differs
 * is a changed sink: -EMEDIUMTYPE, said in an event and counted; the
 * style then applies the job's policy (--on-sink-change: fail, or copy
 * everything again).
 *
 * A sample cannot prove a sink equal, only catch one that is not: the
 * online verify and the cutover's own read-back do the rest.
 *
 * The online verify (DRBD's "verify" is the model): while a job is Ready
 * or Mirrored, a background pass reads source and sink region by region,
 * at its rate, and compares them.  It keeps a map of the regions verified
 * equal: a region copied again (a sync, a resync) leaves it, since what
 * is on the sink now was written, not read back; a mirrored write does
 * not (the kernel completes it only once both legs have it).  A region
 * that differs is looked at again as above (dirty since, or equal under
 * its lock: no mismatch); what still differs is counted as a mismatch and
 * marked dirty, so the next sync or resync repairs it.  A cutover finishes
 * the pass live before it freezes the guest and reads back, frozen, what
 * it copied and whatever is still unverified: a job is Completed only
 * with every region verified (unless submitted with --no-verify).  The
 * map lives in the daemon: a restarted daemon verifies again from the
 * start.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "jobs/core.h"

#define SAMPLE_RANDOM		8	/* random regions, beside first and last */
#define SAMPLE_DRAWS		64	/* tries to find them among the clean */
#define SAMPLE_BUFS		4

/* The sink's geometry against the record's; j->lock held.  0 or -EMEDIUMTYPE. */
static int check_geometry(struct sxm_job *j, const struct sxm_sink *s,
			  char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;

	if (!rec->sink_size) {
		/* A record from before the check, or the first connection. */
		rec->sink_size = s->size;
		rec->sink_block_min = s->block_min;
		rec->sink_block_max = s->block_max;
		return 0;
	}
	if (s->size != rec->sink_size) {
		snprintf(err, errlen, "sink %s: %" PRIu64 " bytes now, the job wrote to one of %" PRIu64,
			 sxm_sink_name(s), s->size, rec->sink_size);
		return -EMEDIUMTYPE;
	}
	if (s->block_min != rec->sink_block_min ||
	    s->block_max != rec->sink_block_max) {
		snprintf(err, errlen, "sink %s: block sizes %u..%u bytes now, the job wrote to one of %u..%u",
			 sxm_sink_name(s), s->block_min, s->block_max,
			 rec->sink_block_min, rec->sink_block_max);
		return -EMEDIUMTYPE;
	}
	return 0;
}

/* Region @r if clean and below @limit regions, into @sample. */
static bool take(uint64_t *sample, const uint64_t *dirty, uint64_t r,
		 uint64_t limit)
{
	if (r >= limit || sxm_map_test(dirty, r))
		return false;
	sxm_map_set(sample, r);
	return true;
}

/*
 * The sample: the first and last clean regions below @limit, and up to
 * SAMPLE_RANDOM more at random.  How many, into *@n.
 */
static void pick(uint64_t *sample, const uint64_t *dirty, uint64_t nr,
		 uint64_t limit, uint64_t *n)
{
	uint64_t r;
	unsigned int i, got = 0;

	r = sxm_map_find(dirty, nr, 0, false);
	if (r < limit)
		take(sample, dirty, r, limit);
	for (r = limit; r-- > 0; ) {
		if (take(sample, dirty, r, limit))
			break;
	}
	for (i = 0; i < SAMPLE_DRAWS && got < SAMPLE_RANDOM; i++) {
		r = limit > UINT32_MAX ?
		    (((uint64_t)arc4random() << 32) | arc4random()) % limit :
		    arc4random_uniform((uint32_t)limit);
		if (!sxm_map_test(sample, r) && take(sample, dirty, r, limit))
			got++;
	}
	*n = sxm_map_weight(sample, nr);
}

/*
 * Compare @map's regions of the source and @s; differing ones in *@diff.
 * @cancel set (a request, the daemon stopping) ends it with -EINTR.
 */
static int compare(struct sxm_job *j, struct sxm_sink *s, const uint64_t *map,
		   volatile sig_atomic_t *cancel, uint64_t **diff, char *err,
		   size_t errlen)
{
	struct sxm_copy_opts o = {
		.region_size = j->run.region_sectors << SECTOR_SHIFT,
		.bitmap = map,
		.nr_bufs = SAMPLE_BUFS,
		.cancel = cancel,
	};
	struct sxm_copy_result res = { 0 };
	int r;

	sxm_job_lock(j);
	o.engine = strcmp(j->rec.engine, "auto") ? j->rec.engine : NULL;
	sxm_job_unlock(j);
	*diff = NULL;
	r = sxm_copy_verify(j->run.src, s, &o, &res);
	if (r == -EILSEQ) {
		*diff = res.dirty;
		res.dirty = NULL;
		r = 0;
	} else if (r) {
		snprintf(err, errlen, "%s", res.errmsg);
	}
	sxm_copy_result_free(&res);
	return r;
}

/*
 * The runs of @map from region *@pos on, as lock ranges (at most @max),
 * into @lr and @part; how many.  *@pos: where the next call goes on.
 */
static uint32_t ranges_of(const uint64_t *map, uint64_t nr, uint64_t *pos,
			  struct sxm_lock_range *lr, uint32_t max,
			  uint64_t *part)
{
	uint64_t r = *pos;
	uint32_t n = 0;

	sxm_map_zero(part, nr);
	while (n < max && (r = sxm_map_find(map, nr, r, true)) < nr) {
		lr[n].first = r;
		lr[n].count = 0;
		while (r < nr && sxm_map_test(map, r)) {
			sxm_map_set(part, r++);
			lr[n].count++;
		}
		n++;
	}
	*pos = r;
	return n;
}

/*
 * Compare the regions of @part again, under their locks (@lr, @n), and
 * keep in @still those that still differ.
 */
static int compare_under(struct sxm_job *j, struct sxm_sink *s,
			 const uint64_t *part, struct sxm_lock_range *lr,
			 uint32_t n, volatile sig_atomic_t *cancel,
			 uint64_t *still, char *err, size_t errlen)
{
	uint64_t *again = NULL;
	int r, e;

	r = sxm_kdev_lock(j->run.kfd, lr, n, false);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: lock %u ranges: %s",
			 j->rec.device, n, strerror(-r));
		return r;
	}
	r = compare(j, s, part, cancel, &again, err, errlen);
	e = sxm_kdev_lock(j->run.kfd, lr, n, true);
	if (e && !r) {
		r = e;
		snprintf(err, errlen, "/dev/mapper/%s: release %u ranges: %s",
			 j->rec.device, n, strerror(-e));
	}
	if (!r && again)
		sxm_map_or(still, again, j->run.nr_regions);
	free(again);
	return r;
}

/*
 * Compare the regions of *@diff again, under their locks, SXM_LOCK_MAX
 * ranges at a time; *@diff then holds those that still differ (NULL:
 * none).
 */
static int compare_locked(struct sxm_job *j, struct sxm_sink *s,
			  volatile sig_atomic_t *cancel, uint64_t **diff,
			  char *err, size_t errlen)
{
	uint64_t nr = j->run.nr_regions, pos = 0;
	struct sxm_lock_range *lr;
	uint64_t *part, *still;
	uint32_t n;
	int r = 0;

	lr = calloc(SXM_LOCK_MAX, sizeof(*lr));
	part = sxm_map_alloc(nr);
	still = sxm_map_alloc(nr);
	if (!lr || !part || !still) {
		r = -ENOMEM;
		snprintf(err, errlen, "compare: %s", strerror(ENOMEM));
	}
	while (!r && (n = ranges_of(*diff, nr, &pos, lr, SXM_LOCK_MAX, part)))
		r = compare_under(j, s, part, lr, n, cancel, still, err,
				  errlen);
	free(lr);
	free(part);
	free(*diff);
	*diff = NULL;
	if (!r && still && sxm_map_weight(still, nr))
		*diff = still;
	else
		free(still);
	return r;
}

/* The kernel's map, dirty or held now, into *@map (the caller frees it). */
static int peek_dirty(struct sxm_job *j, uint64_t **map, char *err,
		      size_t errlen)
{
	struct sxm_harvest h;
	int r;

	r = sxm_kdev_harvest(j->run.kfd, SXM_HARVEST_PEEK, map, &h);
	if (r)
		snprintf(err, errlen, "/dev/mapper/%s: the dirty map: %s",
			 j->rec.device, strerror(-r));
	return r;
}

/* Drop from @diff what is dirty or held in the kernel's map now. */
static int drop_written(struct sxm_job *j, uint64_t *diff, char *err,
			size_t errlen)
{
	uint64_t *now = NULL;
	int r;

	r = peek_dirty(j, &now, err, errlen);
	if (r)
		return r;
	sxm_map_andnot(diff, now, j->run.nr_regions);
	free(now);
	return 0;
}

/* A check passed: counted, with the time; j->lock held. */
static void passed(struct sxm_job *j, uint64_t *ok_epoch, uint64_t epoch)
{
	j->rec.sink_checks++;
	j->rec.sink_checked_ms = sxm_now_ms();
	*ok_epoch = epoch;
}

/*
 * The sample of what is below @limit regions (the copy's cursor) and
 * clean, compared; -EMEDIUMTYPE with @err if a region differs that was
 * not written since.  0, or -errno with @err.
 */
static int check_sample(struct sxm_job *j, struct sxm_sink *s,
			bool mirroring, uint64_t limit, char *err,
			size_t errlen)
{
	uint64_t rs = j->run.region_sectors << SECTOR_SHIFT;
	uint64_t nr = j->run.nr_regions, n = 0, first;
	uint64_t *dirty = NULL, *sample = NULL, *diff = NULL;
	int r;

	r = peek_dirty(j, &dirty, err, errlen);
	if (r)
		return r;
	sample = sxm_map_alloc(nr);
	if (!sample) {
		r = -ENOMEM;
		snprintf(err, errlen, "sink check: %s", strerror(ENOMEM));
		goto out;
	}
	pick(sample, dirty, nr, limit < nr ? limit : nr, &n);
	if (n)
		r = compare(j, s, sample, &j->stop, &diff, err, errlen);
	if (!r && diff && mirroring)
		r = compare_locked(j, s, &j->stop, &diff, err, errlen);
	if (!r && diff)
		r = drop_written(j, diff, err, errlen);
	first = !r && diff ? sxm_map_find(diff, nr, 0, true) : nr;
	if (first < nr) {
		snprintf(err, errlen, "sink %s: the region at %" PRIu64 " (of %" PRIu64 " compared) differs from the source, and the job had copied it",
			 sxm_sink_name(s), first * rs, n);
		r = -EMEDIUMTYPE;
	}
out:
	free(diff);
	free(sample);
	free(dirty);
	return r;
}

int sxm_job_sink_check(struct sxm_job *j, struct sxm_sink *s,
		       uint64_t *ok_epoch, bool mirroring, bool force,
		       char *err, size_t errlen)
{
	uint64_t rs = j->run.region_sectors << SECTOR_SHIFT, limit, epoch;
	bool fresh, nothing;
	int r;

	/*
	 * A connection the server closed while idle is replaced now; with
	 * none left, nothing can be checked (nor written).
	 */
	r = sxm_sink_refresh(s);
	if (r) {
		snprintf(err, errlen, "sink %s: no connection to it: %s",
			 sxm_sink_name(s), strerror(-r));
		return r;
	}
	epoch = sxm_sink_epoch(s);
	if (*ok_epoch == epoch && !force)
		return 0;
	/* What was verified was verified on another connection. */
	fresh = *ok_epoch != epoch;
	sxm_job_lock(j);
	j->stop = j->d->stopping || j->rec.cancelling;
	r = check_geometry(j, s, err, errlen);
	limit = rs ? j->rec.full_done / rs : 0;
	/* Nothing on it to look at yet, or no way to read it back. */
	nothing = !r && (!limit || !(s->caps & SXM_SINK_CAN_READ));
	sxm_job_unlock(j);
	if (!r && !nothing)
		r = check_sample(j, s, mirroring, limit, err, errlen);
	if (r == -EMEDIUMTYPE) {
		sxm_job_lock(j);
		j->rec.sink_changes++;
		sxm_job_event(j, "not the sink the job wrote to: %s", err);
		sxm_job_save(j);
		sxm_job_unlock(j);
	}
	if (r)
		return r;
	sxm_job_lock(j);
	passed(j, ok_epoch, epoch);
	sxm_job_unlock(j);
	if (fresh)
		sxm_job_unverify(j, NULL);
	return 0;
}

int sxm_job_sink_changed(struct sxm_job *j, enum sxm_phase restart,
			 bool *restarted, char *err, size_t errlen)
{
	char then[96];
	bool resync;
	int r;

	*restarted = false;
	sxm_job_lock(j);
	resync = j->rec.sink_resync;
	sxm_job_unlock(j);
	if (!resync) {
		/* @err says what differs; the job fails with it. */
		size_t used = strlen(err);

		snprintf(err + used, errlen - used,
			 " (not the sink the job wrote to; --on-sink-change resync would copy everything again)");
		return -EMEDIUMTYPE;
	}
	snprintf(then, sizeof(then), "; the sink changed, so everything is copied again (--on-sink-change resync)");
	r = sxm_job_track_again(j, restart, then, err, errlen);
	if (r)
		return r;
	sxm_job_lock(j);
	/* The new sink's geometry from now on. */
	j->rec.sink_size = 0;
	sxm_job_unlock(j);
	*restarted = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The online verify                                                  */
/* ------------------------------------------------------------------ */

#define VERIFY_RATE_DEFAULT	(64ULL << 20)	/* bytes/s, without --rate */
#define VERIFY_PASS_STEP	(64ULL << 20)	/* a live pass's steps */

uint64_t sxm_job_verify_rate(struct sxm_job *j)
{
	uint64_t rate;

	sxm_job_lock(j);
	rate = j->rec.rate_limit ? j->rec.rate_limit : VERIFY_RATE_DEFAULT;
	sxm_job_unlock(j);
	return rate;
}

/* rec.verified_now from the map; j->lock held. */
static void publish_verified(struct sxm_job *j)
{
	uint64_t rs = j->run.region_sectors << SECTOR_SHIFT;

	j->rec.verified_now = j->verified ?
		sxm_regions_bytes(j->verified, j->verified_nr, rs, j->rec.size) :
		0;
}

int sxm_job_verify_init(struct sxm_job *j)
{
	uint64_t nr = j->run.nr_regions;

	if (j->verified && j->verified_nr == nr)
		return 0;
	free(j->verified);
	j->verified = sxm_map_alloc(nr);
	j->verified_nr = j->verified ? nr : 0;
	j->verify_pos = 0;
	sxm_job_lock(j);
	publish_verified(j);
	sxm_job_unlock(j);
	return j->verified ? 0 : -ENOMEM;
}

void sxm_job_unverify(struct sxm_job *j, const uint64_t *map)
{
	if (!j->verified)
		return;
	j->verify_idle = false;
	if (map) {
		sxm_map_andnot(j->verified, map, j->verified_nr);
	} else {
		sxm_map_zero(j->verified, j->verified_nr);
		j->verify_pos = 0;
	}
	sxm_job_lock(j);
	publish_verified(j);
	sxm_job_unlock(j);
}

void sxm_job_verified(struct sxm_job *j, const uint64_t *map,
		      const uint64_t *bad)
{
	uint64_t i, nr = j->verified_nr;

	if (!j->verified)
		return;
	if (!map)
		sxm_map_set_range(j->verified, 0, nr);
	/* Bitwise, so the same in either byte order. */
	for (i = 0; i < sxm_map_words(nr); i++) {
		if (map)
			j->verified[i] |= map[i] & ~(bad ? bad[i] : 0);
		else if (bad)
			j->verified[i] &= ~bad[i];
	}
	sxm_job_lock(j);
	publish_verified(j);
	sxm_job_unlock(j);
}

uint64_t sxm_job_unverified(struct sxm_job *j, uint64_t *out)
{
	uint64_t nr = j->run.nr_regions;

	sxm_map_set_range(out, 0, nr);
	if (j->verified && j->verified_nr == nr)
		sxm_map_andnot(out, j->verified, nr);
	return sxm_map_weight(out, nr);
}

void sxm_job_verify_take_request(struct sxm_job *j)
{
	bool asked;

	sxm_job_lock(j);
	asked = j->rec.verify_asked > j->verify_for;
	if (asked)
		j->verify_for = j->rec.verify_asked;
	sxm_job_unlock(j);
	if (asked)
		sxm_job_unverify(j, NULL);
}

void sxm_job_verify_answer(struct sxm_job *j)
{
	sxm_job_lock(j);
	if (j->verify_for > j->rec.verify_answered) {
		j->rec.verify_answered = j->verify_for;
		sxm_job_save(j);
	}
	sxm_job_unlock(j);
}

bool sxm_job_verify_due(struct sxm_job *j)
{
	return j->rec.verify_asked > j->rec.verify_answered ||
	       (!j->rec.no_verify && !j->rec.paused && !j->verify_idle);
}

/* The next regions to verify from the cursor on, up to @bytes, in @map. */
static uint64_t next_regions(struct sxm_job *j, const uint64_t *dirty,
			     uint64_t bytes, uint64_t *map, uint64_t *pos)
{
	uint64_t rs = j->run.region_sectors << SECTOR_SHIFT;
	uint64_t nr = j->run.nr_regions, got = 0, r = *pos;

	for (; r < nr && got < bytes; r++) {
		if (sxm_map_test(j->verified, r) || sxm_map_test(dirty, r))
			continue;
		sxm_map_set(map, r);
		got += sxm_region_len(r, rs, j->rec.size);
	}
	*pos = r;
	return got;
}

/* Regions of @bad (differing, not written since) counted and marked dirty. */
static int mismatched(struct sxm_job *j, struct sxm_sink *s, uint64_t *bad,
		      uint64_t *found, char *err, size_t errlen)
{
	uint64_t nr = j->run.nr_regions, rs = j->run.region_sectors << SECTOR_SHIFT;
	uint64_t n = sxm_map_weight(bad, nr), first;
	int r;

	*found = n;
	if (!n)
		return 0;
	first = sxm_map_find(bad, nr, 0, true);
	r = sxm_kdev_mark_map(j->run.kfd, bad, nr, NULL);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: mark dirty: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	sxm_job_lock(j);
	j->rec.verify_mismatches += n;
	sxm_job_event(j, "verify: %" PRIu64 " region%s of %s differ%s from the source (the first at %" PRIu64 "); marked to copy again",
		      n, n == 1 ? "" : "s", sxm_sink_name(s), n == 1 ? "s" : "",
		      first * rs);
	sxm_job_save(j);
	sxm_job_unlock(j);
	return 0;
}

/*
 * The regions of @map that differed at the first look (*@diff) looked at
 * again: with @mirroring under their locks.  @equal gets those equal at
 * either look; *@diff keeps those that still differ and were not written
 * since (NULL: none).
 */
static int look_again(struct sxm_job *j, struct sxm_sink *s, bool mirroring,
		      const uint64_t *map, uint64_t **diff, uint64_t *equal,
		      char *err, size_t errlen)
{
	uint64_t nr = j->run.nr_regions;
	int r = 0;

	if (*diff && mirroring)
		r = compare_locked(j, s, &j->verify_stop, diff, err, errlen);
	memcpy(equal, map, sxm_map_bytes(nr));
	if (*diff)
		sxm_map_andnot(equal, *diff, nr);
	if (!r && *diff)
		r = drop_written(j, *diff, err, errlen);
	return r;
}

int sxm_job_verify_step(struct sxm_job *j, struct sxm_sink *s,
			bool mirroring, uint64_t bytes, uint64_t *found,
			bool *pass_done, char *err, size_t errlen)
{
	uint64_t nr = j->run.nr_regions, pos = j->verify_pos;
	uint64_t *dirty = NULL, *map = NULL, *diff = NULL, *equal = NULL;
	uint64_t epoch = sxm_sink_epoch(s);
	int r;

	*found = 0;
	*pass_done = false;
	r = sxm_job_verify_init(j);
	if (r) {
		snprintf(err, errlen, "verify: %s", strerror(-r));
		return r;
	}
	r = peek_dirty(j, &dirty, err, errlen);
	if (r)
		return r;
	map = sxm_map_alloc(nr);
	equal = sxm_map_alloc(nr);
	if (!map || !equal) {
		r = -ENOMEM;
		snprintf(err, errlen, "verify: %s", strerror(ENOMEM));
		goto out;
	}
	if (next_regions(j, dirty, bytes, map, &pos))
		r = compare(j, s, map, &j->verify_stop, &diff, err, errlen);
	else if (!j->verify_pos)
		j->verify_idle = true;	/* nothing left to verify */
	if (!r)
		r = look_again(j, s, mirroring, map, &diff, equal, err, errlen);
	/*
	 * Connected again meanwhile (to whom?): nothing of this step counts;
	 * the next one looks at the sink first.
	 */
	if (!r && sxm_sink_epoch(s) != epoch)
		goto out;
	/* Written since: neither equal nor a mismatch. */
	if (!r && diff)
		r = mismatched(j, s, diff, found, err, errlen);
	if (r)
		goto out;
	sxm_job_verified(j, equal, NULL);
	j->verify_pos = pos < nr ? pos : 0;
	if (pos >= nr) {
		*pass_done = true;
		sxm_job_lock(j);
		j->rec.verify_passes++;
		j->rec.verify_last_ms = sxm_now_ms();
		sxm_job_unlock(j);
	}
out:
	free(equal);
	free(diff);
	free(map);
	free(dirty);
	return r;
}

int sxm_job_verify_pass(struct sxm_job *j, struct sxm_sink *s,
			bool mirroring, uint64_t *found, char *err,
			size_t errlen)
{
	uint64_t n, nr = j->run.nr_regions;
	bool done = false, skip;
	int r = 0;

	*found = 0;
	sxm_job_lock(j);
	skip = j->rec.no_verify || j->run.suspended;
	sxm_job_unlock(j);
	/* Nothing to do: --no-verify, frozen already, or all verified. */
	if (skip || (j->verified && j->verified_nr == nr &&
		     sxm_map_weight(j->verified, nr) == nr))
		return 0;
	sxm_job_lock(j);
	sxm_job_set_op(j, "verify", 0, j->rec.size);
	sxm_job_unlock(j);
	j->verify_pos = 0;
	/* Only a cancel or the daemon stopping ends a cutover's pass. */
	sxm_job_lock(j);
	j->verify_stop = j->d->stopping || j->rec.cancelling;
	sxm_job_unlock(j);
	while (!r && !done) {
		r = sxm_job_verify_step(j, s, mirroring, VERIFY_PASS_STEP, &n,
					&done, err, errlen);
		*found += n;
	}
	sxm_job_lock(j);
	sxm_job_set_op(j, "cutover", 0, 0);
	sxm_job_unlock(j);
	return r ? r : 1;
}
