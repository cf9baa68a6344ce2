// SPDX-License-Identifier: GPL-2.0
/*
 * The phase engine (phases.h): the one loop that runs a job's phases in
 * its style, the one cancel path, the one place a phase is set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sxm.h"
#include "jobs/phases.h"

int sxm_job_enter(struct sxm_job *j, enum sxm_phase phase)
{
	j->rec.phase = phase;
	return sxm_job_save(j);
}

/* The style that runs @j now; j->lock held. */
static const struct sxm_style *pick(const struct sxm_job *j)
{
	return sxm_mirror_style.runs(j) ? &sxm_mirror_style : &sxm_warm_style;
}

static const struct sxm_phase_def *phase_def(const struct sxm_style *s,
					     enum sxm_phase phase)
{
	size_t i;

	for (i = 0; i < s->nr_phases; i++)
		if (s->phases[i].phase == phase)
			return &s->phases[i];
	return NULL;
}

/*
 * A cancel, for every style once it has let go: the device as it was
 * before the job (sxm_job_undo_device()), the job Cancelled.  If that
 * fails the job is Failed, and another cancel tries again.  j->lock held.
 */
static void cancel(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	char err[768] = "";
	int r;

	sxm_job_unlock(j);
	r = sxm_job_undo_device(j, err, sizeof(err));
	sxm_job_lock(j);
	rec->cancelling = false;
	if (r) {
		j->req_sync = false;
		sxm_job_fail(j, err);
		sxm_job_event(j, "cancel failed; sxm-ctl cancel %s tries again",
			      rec->name);
		return;
	}
	sxm_job_event(j, "cancelled in %s", sxm_phase_name(rec->phase));
	sxm_job_set_op(j, "", 0, 0);
	sxm_job_enter(j, SXM_PHASE_CANCELLED);
}

/* @s lets go of the job (j->lock held, dropped for it). */
static void leave(struct sxm_job *j, const struct sxm_style *s, bool detach)
{
	sxm_job_unlock(j);
	s->leave(j, detach);
	sxm_job_lock(j);
}

/*
 * A save failed (sxm_job_save()): the record on disk is the last one that
 * was saved whole, and the job fails rather than go on without recording
 * what it does.  j->lock held.
 */
static void save_failed(struct sxm_job *j)
{
	char why[160];

	snprintf(why, sizeof(why), "its record could not be saved in %s: %s; retry once the state directory takes writes",
		 j->d->state_dir, strerror(-j->save_err));
	j->save_err = 0;
	if (j->rec.phase != SXM_PHASE_FAILED && !sxm_phase_final(j->rec.phase))
		sxm_job_fail(j, why);
	/* The failure's own save failing too is known already. */
	j->save_err = 0;
}

/*
 * One turn of the loop: a cancel, a change of style, or the function of
 * the job's phase.  j->lock held.
 */
static void turn(struct sxm_job *j, const struct sxm_style **cur)
{
	const struct sxm_style *s;
	const struct sxm_phase_def *p;

	if (j->save_err)
		save_failed(j);
	if (j->rec.cancelling) {
		if (*cur)
			leave(j, *cur, false);
		cancel(j);
		return;
	}
	s = pick(j);
	if (s != *cur) {
		/* Warm to mirror style ("mirror"): a new attach. */
		if (*cur)
			leave(j, *cur, true);
		*cur = s;
		if (s->take && s->take(j)) {
			*cur = NULL;
			if (j->rec.phase != SXM_PHASE_FAILED)
				sxm_job_fail(j, "out of memory");
			sxm_job_wait_ms(j, 1000);
			return;
		}
	}
	p = phase_def(s, j->rec.phase);
	if (!p) {
		char why[96];

		snprintf(why, sizeof(why), "the %s style has no phase %s",
			 s->name, sxm_phase_name(j->rec.phase));
		sxm_job_fail(j, why);
		return;
	}
	if (p->run(j) == SXM_STEP_NEXT)
		sxm_job_enter(j, p->next);
	/*
	 * A step of work done, or failed: a retry has its outcome.  Not
	 * Failed's own step, which ends when a retry wakes it.
	 */
	if (p->phase != SXM_PHASE_FAILED)
		j->rec.retrying = false;
}

void *sxm_job_thread(void *arg)
{
	const struct sxm_style *cur = NULL;
	struct sxm_job *j = arg;

	sxm_job_lock(j);
	/* A cancel asked before the daemon stops is finished first. */
	while (!sxm_phase_final(j->rec.phase) &&
	       (!j->d->stopping || j->rec.cancelling))
		turn(j, &cur);
	sxm_job_set_op(j, "", 0, 0);
	/* Final, or the daemon stops: a cutover under way is undone. */
	if (cur)
		leave(j, cur, true);
	sxm_job_unlock(j);
	return NULL;
}

void sxm_job_snapshot(struct sxm_job *j, struct sxm_job_rec *out)
{
	sxm_job_lock(j);
	*out = j->rec;
	sxm_job_unlock(j);
	out->dirty_bytes = -1;
	if (!sxm_phase_final(out->phase)) {
		int64_t b = sxm_job_dirty_bytes(out);

		out->dirty_bytes = b < 0 ? -1 : b;
		sxm_job_meta_status(j, out);
	}
	if (sxm_job_is_mirror(out) && sxm_mirror_style.snapshot)
		sxm_mirror_style.snapshot(j, out);
	sxm_job_metrics(out, sxm_now_ms());
}
