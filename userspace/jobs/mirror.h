/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mirror style's own parts, shared by its files and no one else:
 *
 *   mirror.c        the phases, bringing the mirror up, the cutover, the
 *                   style's table (phases.h)
 *   mirror_pump.c   the kernel's mirror status, and the pump's life: its
 *                   ring, its sink connection, its thread
 *   mirror_locks.c  copying and comparing in batches under region locks
 *
 * Locks as in jobs/core.h; the pump thread takes j->lock only to say it
 * ended.  m->pump and m->sink change under j->lock.
 */
#ifndef SXM_JOBS_MIRROR_H
#define SXM_JOBS_MIRROR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dm/status.h"
#include "io/copy.h"
#include "jobs/core.h"

#define BATCH_BUFS		16	/* copy buffers for one batch */
#define FULL_VERIFY_MAX		(256ULL << 20)	/* verify all of a device this small */
#define COMPOSE_ROUNDS		5
/*
 * Mirrored: how often the job looks at the mirror and refreshes its
 * metrics.  A change of the mirror's state wakes it at once (the kernel's
 * event, passed on by the pump: pump_event()); the tick only bounds how
 * stale the metrics and a missed event can be.
 */
#define TICK_MS			1000
#define BACKOFF_MAX_MS		5000
#define DROP_WAIT_S		10.0	/* for abandoned requests to finish */
#define SINK_TIMEOUT_MS		5000	/* connect; a flush in the cutover */

struct sxm_mirror_run {
	struct sxm_pump *pump;		/* the ring on pump_kfd; j->lock */
	int pump_kfd;
	struct sxm_sink *sink;		/* the pump's connection; j->lock */
	uint64_t sink_ok;		/* its epoch last checked */
	pthread_t thread;
	bool running;			/* started and not joined */
	bool stop;			/* asks the pump thread to stop */
	bool exited;			/* it returned (j->lock) */
	int result;			/* what it returned (j->lock) */
	double down_since;		/* the mirror went down (mono s), or 0 */
	char down_reason[32];
	uint64_t kdeg_seen;		/* the kernel's degradations counted */
	bool kdeg_known;		/* kdeg_seen was read */
	bool down_said;			/* "cannot bring it back" was said */
	unsigned int backoff_ms;
	bool resync_due;		/* regions a cutover found differing */
	bool verify_said;		/* a failing check or step said once */
	struct sxm_batch_stat batch;	/* what the batches showed */
	uint64_t batches;		/* of the bulk copy this run, */
	double wait_max;		/* the guest's longest wait in one */
};

/*
 * Whether the job must leave what it is doing; j->lock held.  Not a
 * pause: the bulk copy waits paused between its batches (do_copy()).
 */
static inline bool must_stop(struct sxm_job *j)
{
	return j->d->stopping || j->rec.cancelling || j->save_err;
}

static inline bool stop_now(struct sxm_job *j)
{
	bool r;

	sxm_job_lock(j);
	r = must_stop(j);
	sxm_job_unlock(j);
	return r;
}

/* mirror_pump.c: the kernel's mirror status */

/* The status line, which must have the mirror's fields. */
int mirror_status_read(const char *device, struct sxm_status *m);
int mirror_kstat(struct sxm_job *j, struct sxm_status *m);
bool mirror_is_on(const struct sxm_status *m);

/* mirror_pump.c: the pump */

/* Stop the pump thread (its requests may still be out). */
void mirror_pump_join(struct sxm_job *j);
void mirror_pump_close_sink(struct sxm_job *j);
/* Everything of the pump, the ring's mapping too (then a detach works). */
void mirror_pump_release(struct sxm_job *j);
/* Let go of the device: the pump, then the attach. */
void mirror_release_all(struct sxm_job *j);
int mirror_pump_open_sink(struct sxm_job *j, char *err, size_t errlen);
/* The ring on the job's attach, the sink, the thread. */
int mirror_pump_start(struct sxm_job *j, char *err, size_t errlen);
/*
 * The pump thread ended by itself: say why and clear up.  A ring that
 * the kernel refused needs a new attach; a lost sink a new connection.
 */
void mirror_pump_reap(struct sxm_job *j);

/* mirror_locks.c */

/*
 * Copy (or with @verify, read back and compare) the regions of @map with
 * the job's own connection.  res->dirty says what is not done.
 */
int mirror_copy_regions(struct sxm_job *j, const uint64_t *map,
			bool sink_zero, bool verify,
			struct sxm_job_progress *pg,
			struct sxm_copy_result *res);
/*
 * Both connections checked (sxm_job_sink_check()): the job's own, opened
 * if it is not, and the pump's if it connected again since it was last
 * looked at (through the job's own, afresh, while the pump's thread has
 * it).  @mirroring: the mirror may be on; @force: the job's own is
 * looked at even if it was already.  No region may be locked.  0,
 * -EMEDIUMTYPE (another sink, @err says how) or -errno.
 */
int mirror_check_sinks(struct sxm_job *j, bool mirroring, bool force,
		       char *err, size_t errlen);
/* The next batch of a locked pass (sxm_mirror_batch_bytes()). */
uint64_t mirror_batch_limit(struct sxm_job *j, uint64_t rs);
/*
 * Copy and/or verify the regions of @map in batches, each under its
 * region locks; acknowledge each batch copied.  *@copied and *@verified
 * count bytes.  A verify that finds differences marks them dirty and
 * returns -EILSEQ with @err saying where.  j->lock not held.
 */
int mirror_locked_pass(struct sxm_job *j, const uint64_t *map, bool copy,
		       bool verify, bool sink_zero, const char *op,
		       uint64_t base, bool own_op, uint64_t *copied,
		       uint64_t *verified, char *err, size_t errlen);

#endif /* SXM_JOBS_MIRROR_H */
