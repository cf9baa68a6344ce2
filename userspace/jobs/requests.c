// SPDX-License-Identifier: GPL-2.0
/*
 * What the daemon asks of a job (phases.h): a submitted job's start, and
 * the commands of sxm-ctl (sync, pause, resume, cadence, cutover, cancel,
 * retry, forget, mirror).  The rules of which command a job takes in which
 * phase are job.c's (sxm_job_check()); here each one is applied, and the
 * job's thread is woken to act on it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/sxm.h"
#include "jobs/phases.h"

int sxm_job_begin(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	bool mirror = sxm_job_is_mirror(rec);
	char b[32], c[32];

	rec->sink_zero = j->run.sink->caps & SXM_SINK_ZERO_INIT;
	/* The sink's identity from here on (verify.c). */
	rec->sink_size = j->run.sink->size;
	rec->sink_block_min = j->run.sink->block_min;
	rec->sink_block_max = j->run.sink->block_max;
	rec->created_ms = sxm_now_ms();
	sxm_job_event(j, "submitted: %s migration of %s (%s, %s) to %s%s%s",
		      mirror ? sxm_mirror_style.name : sxm_warm_style.name,
		      rec->source, fmt_size(rec->size, b, sizeof(b)),
		      rec->src_mode == SXM_SRC_EXISTING ? "its sxm device" :
		      rec->src_mode == SXM_SRC_INSERTED ? "sxm inserted under it" :
		      "a new sxm device over it", rec->sink,
		      mirror ? "" : ", cadence ",
		      mirror ? "" : sxm_cadence_str(rec->cadence_ms, c, sizeof(c)));
	return sxm_job_enter(j, mirror ? SXM_PHASE_PREPARING :
				  SXM_PHASE_INITIALIZING);
}

/* Where a retry takes a job back to: a failed cutover starts over. */
static enum sxm_phase retry_phase(const struct sxm_job_rec *rec)
{
	return rec->fail_phase == SXM_PHASE_CUTTING_OVER ? SXM_PHASE_READY :
							    rec->fail_phase;
}

/* The job thread waits in Failed; it picks this up.  j->lock held. */
static void retry(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;

	rec->reason[0] = '\0';
	sxm_job_event(j, "retry: back to %s",
		      sxm_phase_name(retry_phase(rec)));
	sxm_job_enter(j, retry_phase(rec));
	/* Until the job has looked again (its sink too): "retry --wait". */
	rec->retrying = true;
}

/* Apply @cmd, checked; j->lock held. */
static int apply(struct sxm_job *j, enum sxm_job_cmd cmd,
		 const struct sxm_job_args *a, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	char b[32];

	switch (cmd) {
	case SXM_CMD_SYNC:
		rec->want_sync = rec->sync_count +
				 (rec->phase == SXM_PHASE_SYNCING ? 2 : 1);
		j->req_sync = true;
		sxm_job_event(j, "sync requested");
		break;
	case SXM_CMD_PAUSE:
		rec->paused = true;
		j->stop = 1;
		sxm_job_event(j, "paused");
		sxm_job_save(j);
		break;
	case SXM_CMD_RESUME:
		rec->paused = false;
		if (rec->cadence_ms && rec->phase == SXM_PHASE_READY)
			rec->next_sync_ms = sxm_now_ms() + rec->cadence_ms;
		sxm_job_event(j, "resumed");
		sxm_job_save(j);
		break;
	case SXM_CMD_CADENCE:
		rec->cadence_ms = a->cadence_ms;
		rec->next_sync_ms = a->cadence_ms && !rec->paused ?
				    sxm_now_ms() + a->cadence_ms : 0;
		sxm_job_event(j, "cadence %s",
			      sxm_cadence_str(a->cadence_ms, b, sizeof(b)));
		sxm_job_save(j);
		break;
	case SXM_CMD_CUTOVER:
		j->req_cutover = true;
		j->verify_all = a->verify_all;
		sxm_job_event(j, "cutover requested%s",
			      rec->phase == SXM_PHASE_SYNCING ?
			      ": it starts when the running sync ends" : "");
		break;
	case SXM_CMD_CANCEL:
		rec->cancelling = true;
		j->stop = 1;
		sxm_job_event(j, "cancel requested in %s",
			      sxm_phase_name(rec->phase));
		sxm_job_save(j);
		break;
	case SXM_CMD_RETRY:
		retry(j);
		break;
	case SXM_CMD_FORGET:
		j->forgotten = true;
		break;
	case SXM_CMD_VERIFY:
		/* A pass from the start; "verify --wait" waits for its end. */
		rec->verify_asked++;
		sxm_job_save(j);
		sxm_job_event(j, "verify requested");
		break;
	case SXM_CMD_MIRROR:
		if (j->req_sync || j->req_cutover) {
			snprintf(err, errlen, "job %s has a %s requested: switch once it is done",
				 rec->name, j->req_sync ? "sync" : "cutover");
			return -EBUSY;
		}
		/* The mirror style takes it from here: Composing. */
		snprintf(rec->kind, sizeof(rec->kind), SXM_KIND_MIRROR);
		rec->next_sync_ms = 0;
		sxm_job_event(j, "switching to mirror style: the pump up, the mirror on, what is dirty resynced");
		sxm_job_enter(j, SXM_PHASE_COMPOSING);
		break;
	}
	return 0;
}

int sxm_job_request(struct sxm_job *j, enum sxm_job_cmd cmd,
		    const struct sxm_job_args *a, char *err, size_t errlen)
{
	int r;

	sxm_job_lock(j);
	r = sxm_job_check(&j->rec, cmd, err, errlen);
	if (!r && j->forgotten) {
		r = -ENOENT;
		snprintf(err, errlen, "no such job: %s", j->rec.name);
	}
	if (!r)
		r = apply(j, cmd, a, err, errlen);
	if (!r) {
		/* A verify step gives way to any request at once. */
		j->verify_stop = 1;
		pthread_cond_broadcast(&j->cond);
	}
	sxm_job_unlock(j);
	return r;
}
