/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The phase engine (phases.c): one loop runs every job, in its style.
 *
 * A style (warm.c, mirror.c) is a table of phases: for each phase, the
 * function that does its work and the phase that follows when the work is
 * done; and, for the style as a whole, what it sets up when it takes a
 * job, what it lets go of when it gives the job up (a cancel, a switch of
 * style, the daemon stopping, the job's end), and what it adds to a
 * snapshot of the job.  The loop (sxm_job_thread()) picks the style that
 * runs the job now, calls the function of the job's phase, moves the job
 * to the next phase, and handles a cancel the same way for every style:
 * the style lets go, then the device is put back as it was
 * (sxm_job_undo_device()).
 *
 * Every phase transition goes through sxm_job_enter(); the daemon never
 * sets a phase, it asks (sxm_job_begin(), sxm_job_request(): requests.c).
 *
 * Locks as in jobs/core.h.  A phase's function is called with j->lock
 * held and returns with it held; it drops it around its work.
 */
#ifndef SXM_PHASES_H
#define SXM_PHASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobs/core.h"

/* What a phase's function asks of the loop. */
enum sxm_step {
	SXM_STEP_NEXT,		/* done: on to the phase's next (saved) */
	SXM_STEP_AGAIN,		/* look again: the phase is the same, or it
				 * moved the job itself (a failure, a
				 * restart of tracking, a cutover's end) */
};

struct sxm_phase_def {
	enum sxm_phase phase;
	enum sxm_step (*run)(struct sxm_job *j);
	enum sxm_phase next;		/* after SXM_STEP_NEXT */
};

struct sxm_style {
	const char *name;		/* in events: "warm", "mirror-style" */
	const struct sxm_phase_def *phases;
	size_t nr_phases;
	/* Whether this style runs @j in its phase now; j->lock held. */
	bool (*runs)(const struct sxm_job *j);
	/* Set up what the style keeps per job; j->lock held.  -errno. */
	int (*take)(struct sxm_job *j);
	/*
	 * Let go of the job: what the style holds, and a cutover in
	 * progress undone; with @detach, the attach too.  j->lock not held.
	 */
	void (*leave)(struct sxm_job *j, bool detach);
	/* Add the style's live figures to @out (NULL: none). */
	void (*snapshot)(struct sxm_job *j, struct sxm_job_rec *out);
};

extern const struct sxm_style sxm_warm_style;
extern const struct sxm_style sxm_mirror_style;

/* The job thread: runs @job's phases until it is final or must stop. */
void *sxm_job_thread(void *job);

/*
 * Move the job to @phase and save it (sxm_job_save()'s result); the one
 * place a phase is set.  j->lock held.
 */
int sxm_job_enter(struct sxm_job *j, enum sxm_phase phase);

/*
 * A copy of @j's record with its live figures (the dirty bytes, the
 * style's own) filled in, outside every lock but the job's own, taken
 * briefly.
 */
void sxm_job_snapshot(struct sxm_job *j, struct sxm_job_rec *out);

/* ---- What the daemon asks (requests.c) ---- */

/*
 * A submitted job, its sink open and its record filled in, begins: in its
 * style's first phase, said in an event, saved (the save's result).
 * j->lock held.
 */
int sxm_job_begin(struct sxm_job *j);

/* What some commands carry. */
struct sxm_job_args {
	uint64_t cadence_ms;		/* SXM_CMD_CADENCE */
	bool verify_all;		/* SXM_CMD_CUTOVER: read all back */
};

/*
 * Apply @cmd to @j if its rules allow it now (sxm_job_check()), and wake
 * the job's thread; -errno with the reason in @err if not.  j->lock not
 * held.
 */
int sxm_job_request(struct sxm_job *j, enum sxm_job_cmd cmd,
		    const struct sxm_job_args *a, char *err, size_t errlen);

#endif /* SXM_PHASES_H */
