/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The job layer under both styles of job (jobcore.c): what a warm job
 * (warm.c) and a mirror-style job (mirror_job.c) do the same way.
 *
 *   the device    read the source a submit names, put sxm under it, and
 *                 take it out again on a cancel;
 *   attach        the helper's attach and the source opened for reading
 *                 (struct sxm_run), the sink;
 *   tracking      a clean baseline, the kernel's track_id saved, and the
 *                 check that tracking had no gap since;
 *   copying       the copy engine on the job's source and sink, with the
 *                 job's engine, its stop flag and its progress;
 *   the cutover   suspend and resume, a failed cutover undone;
 *   the record    events, saves, the published op, a failure.
 *
 * What each style does with these (its phases, its copies, its cutover)
 * stays in its own file.  Locks as in struct sxm_jobs; each function says
 * whether j->lock is held.  Errors as in sxm.h: 0 or -errno, the reason
 * in @err.
 */
#ifndef SXM_JOBCORE_H
#define SXM_JOBCORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <signal.h>
#include <sys/types.h>

#include "kdev/kdev.h"
#include "io/copy.h"
#include "io/sink.h"
#include "jobs/job.h"

struct sxm_job;
struct sxm_mirror_run;			/* mirror.c's */

/*
 * The jobs of one daemon and what they share.  Locks, in this order:
 * sxm_jobs.lock (the list of jobs, their references) -> sxm_job.lock
 * (everything in the job but ->run) -> sxm_jobs.dm_lock (libdevmapper,
 * which is not thread-safe).  A job thread never holds its job's lock
 * while it copies, waits for the kernel or talks to the sink; it takes it
 * to publish progress and to save.
 */
struct sxm_jobs {
	pthread_mutex_t lock;
	struct sxm_job *jobs;		/* ->lock */
	int store_fd;			/* the state directory, locked */
	const char *state_dir;
	pthread_mutex_t dm_lock;
	volatile sig_atomic_t stopping;	/* shutting down */
};

/* What a job thread holds while it works; only that thread touches it. */
struct sxm_run {
	int kfd;			/* /dev/dm-sxm, attached as helper */
	struct sxm_sink *sink;
	struct sxm_source *src;		/* the device under the sxm target */
	uint64_t region_sectors;
	uint64_t nr_regions;
	bool suspended;			/* we suspended the device (cutover) */
	uint64_t sink_ok;		/* the sink's epoch last checked */
	bool found_frozen;		/* the cutover found it suspended */
	double freeze_mono;		/* else when it suspended it (mono s) */
};

struct sxm_job {
	struct sxm_job *next;		/* d->lock */
	struct sxm_jobs *d;		/* the jobs it is one of */
	unsigned int refs;		/* d->lock */
	bool submitting;		/* reserved by a submit, not yet made */
	dev_t src_rdev;			/* the source as given */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* requests for the job thread */
	struct sxm_job_rec rec;
	bool req_sync;
	bool req_cutover;
	bool verify_all;		/* the cutover verifies everything */
	bool thread_started;
	bool forgotten;			/* a forget is taking it away */
	int save_err;			/* a save failed: the job must stop */
	pthread_t thread;
	volatile sig_atomic_t stop;	/* stop the running copy */

	struct sxm_run run;
	struct sxm_mirror_run *mirror;	/* mirror style: the pump (thread) */

	/* The online verify's, the job thread's alone (verify.c). */
	uint64_t *verified;		/* regions verified equal */
	uint64_t verified_nr;		/* its regions */
	uint64_t verify_pos;		/* the pass's cursor */
	uint64_t verify_for;		/* the request the pass answers */
	bool verify_idle;		/* a pass found nothing left to do */
	unsigned int verify_backoff_ms;	/* after a step that failed */
	volatile sig_atomic_t verify_stop;	/* a request: stop the step */
};

/* core.c: log and record an event; j->lock held. */
void sxm_job_event(struct sxm_job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Save j->rec; j->lock held.  A failure is logged, and the job fails at
 * its next turn (j->save_err): it cannot record what it does.
 */
int sxm_job_save(struct sxm_job *j);


/* A new job of @d, one reference, its record's defaults; or NULL. */
struct sxm_job *sxm_job_alloc(struct sxm_jobs *d);
/* Free a job no one references (its thread ended or never started). */
void sxm_job_free(struct sxm_job *j);

/* CLOCK_MONOTONIC, in seconds. */
double sxm_mono_s(void);

/* The job's lock (its record, requests) and the daemon's libdevmapper's. */
static inline void sxm_job_lock(struct sxm_job *j)
{
	pthread_mutex_lock(&j->lock);
}

static inline void sxm_job_unlock(struct sxm_job *j)
{
	pthread_mutex_unlock(&j->lock);
}

static inline void sxm_job_dm_lock(struct sxm_job *j)
{
	pthread_mutex_lock(&j->d->dm_lock);
}

static inline void sxm_job_dm_unlock(struct sxm_job *j)
{
	pthread_mutex_unlock(&j->d->dm_lock);
}

/* ---- The record (j->lock held) ---- */

/* Publish what the job is doing now ("" when idle). */
void sxm_job_set_op(struct sxm_job *j, const char *op, uint64_t done,
		    uint64_t total);
/* Fail the job in its current phase with @why; a cutover asked is off. */
void sxm_job_fail(struct sxm_job *j, const char *why);
/* Wait up to @ms for a request (j->cond). */
void sxm_job_wait_ms(struct sxm_job *j, uint64_t ms);

/* ---- Regions ---- */

/* Bytes of region @r of a device of @size bytes, regions of @rs bytes. */
uint64_t sxm_region_len(uint64_t r, uint64_t rs, uint64_t size);
/* Bytes of the regions set in @map (@nr regions). */
uint64_t sxm_regions_bytes(const uint64_t *map, uint64_t nr, uint64_t rs,
			   uint64_t size);

/* ---- The device (j->lock not held) ---- */

/*
 * Read the source a submit names: a block device; an sxm device of its
 * own (SXM_SRC_EXISTING), another dm device (SXM_SRC_INSERTED) or a plain
 * device (SXM_SRC_CREATED, the sxm device named after the job).  Fills in
 * j->rec's src_mode, device, size, region_size and j->src_rdev; refuses
 * what cannot take a job, with the reason in @err.
 */
int sxm_job_classify(struct sxm_job *j, char *err, size_t errlen);
/*
 * Put the sxm target under the source, unless it is there already (a
 * retry, or a daemon restarted while preparing).
 */
int sxm_job_prepare_device(struct sxm_job *j, char *err, size_t errlen);
/*
 * The job's metadata device (--metadata), checked for a new job: one the
 * table's load can take, holding no other source's map (the load binds it
 * anew): 0, or why not in @err.
 */
int sxm_job_meta_fits(struct sxm_job *j, char *err, size_t errlen);
/*
 * The job's sxm device gone since the job made it (a reboot; a remove):
 * put it back as the job made it, with its metadata device.  Its track
 * goes on (only what the map marks is copied again) after a reboot with
 * the source not yet open; else a new track, and so a full copy, with the
 * reason in the events.  1 put back, 0 nothing to do (there, or the
 * operator's own sxm device), or -errno with the reason in @err.
 */
int sxm_job_restore_device(struct sxm_job *j, char *err, size_t errlen);
/* The device was seen in this boot of the host (rec.boot_id, saved). */
void sxm_job_note_boot(struct sxm_job *j);
/*
 * Undo what the job did to the device (a cancel): resume it if we
 * suspended it, detach, and restore the original table (inserted), remove
 * or make linear the device we made (created), or put the tracking back
 * as it was (existing).
 */
int sxm_job_undo_device(struct sxm_job *j, char *err, size_t errlen);

/* ---- Attach (j->lock not held) ---- */

/* Open j->rec.sink for j->run, as a submit checks it (size, writable). */
int sxm_job_open_sink(struct sxm_job *j, bool probe_zero, char *err,
		      size_t errlen);

/*
 * Whether the job's open sink takes what the job will send it: regions
 * (--region-size) in whole blocks, and for a mirror-style job the guest's
 * own writes, which are as small as the source's logical block.  0, or
 * -EINVAL with the reason in @err (at submit: no job is made).
 */
int sxm_job_sink_blocks_fit(struct sxm_job *j, char *err, size_t errlen);
/*
 * Attach to the job's sxm target as its helper and open the device under
 * it for reading; the sink too when @sink.  Nothing to do if attached.
 */
int sxm_job_run_open(struct sxm_job *j, bool sink, char *err, size_t errlen);
/* Detach, and close the source and the sink. */
void sxm_job_run_close(struct sxm_job *j);
/*
 * Dirty bytes of the job's device now (dirty or harvested and not yet
 * acknowledged), read through an observer attach; -errno if unknown.
 */
int64_t sxm_job_dirty_bytes(const struct sxm_job_rec *rec);
/*
 * The kernel's status of the metadata device of @j into @rec's meta_*
 * (@rec: a snapshot of @j's record; no lock held).
 */
void sxm_job_meta_status(struct sxm_job *j, struct sxm_job_rec *rec);

/* ---- Tracking (j->lock not held) ---- */

/*
 * Tracking on (if it was not) and a clean baseline: whatever the map and
 * the held map had is forgotten, since a copy of everything follows.
 * Saves the track_id, resets full_done and says so in an event, with
 * @then (what follows: "; full sync of ...", or "") at its end.
 */
int sxm_job_start_tracking(struct sxm_job *j, const char *then, char *err,
			   size_t errlen);
/*
 * Whether tracking had a gap since the baseline: the kernel's track_id is
 * not the saved one (the device was recreated, or tracking stopped), or
 * the device no longer tracks (@mirroring: the mirror mode counts as
 * tracking).  1, said in an event that ends with @then; 0: no gap.
 */
int sxm_job_tracking_gap(struct sxm_job *j, bool mirroring, const char *then,
			 char *err, size_t errlen);
/*
 * After a gap: a new baseline (@then as for sxm_job_start_tracking()),
 * and the job in @phase to copy everything again, the sink no longer
 * known to be zeroes.  Saved.
 */
int sxm_job_track_again(struct sxm_job *j, enum sxm_phase phase,
			const char *then, char *err, size_t errlen);
/*
 * Harvest the dirty map into *@map (the caller frees it).  With @stale,
 * a track_id that is not the job's is -ESTALE with @stale as the reason:
 * writes may have gone unseen.
 */
int sxm_job_harvest(struct sxm_job *j, const char *stale, uint64_t **map,
		    struct sxm_harvest *h, char *err, size_t errlen);

/* ---- Copying (j->lock not held) ---- */

/* Where a copy's progress goes: op_done is @base plus the copy's bytes. */
struct sxm_job_progress {
	struct sxm_job *j;
	uint64_t base;
};

enum {
	SXM_JOB_COPY_LIMIT = 1,		/* at the job's rate limit */
	SXM_JOB_COPY_SINK_ZERO = 2,	/* the sink reads as zeroes */
	SXM_JOB_COPY_VERIFY = 4,	/* read back and compare instead */
};

/*
 * Whether the running copy must stop: the daemon stops, a cancel, or a
 * pause of a warm job's full sync or sync (a mirror-style bulk copy
 * waits paused between its batches instead).  j->lock held.
 */
bool sxm_job_copy_must_stop(struct sxm_job *j);
/*
 * Copy the regions of @map (NULL: all) from the job's source to its sink
 * with the job's engine and stop flag (SXM_JOB_COPY_* @flags); @nr_bufs
 * as struct sxm_copy_opts has it.  res->dirty says what is not done.
 */
int sxm_job_copy(struct sxm_job *j, const uint64_t *map, unsigned int flags,
		 unsigned int nr_bufs, struct sxm_job_progress *pg,
		 struct sxm_copy_result *res);

/* ---- The sink's identity (verify.c; j->lock not held) ---- */

/*
 * Whether sink @s still holds what the job wrote: a connection its server
 * closed replaced first (sxm_sink_refresh()); nothing to do if its epoch
 * is *@ok_epoch (checked already) unless @force; else its geometry against the
 * record's, and a sample of the regions believed on it compared with the
 * source (@mirroring: the mirror may be on, and regions that differ are
 * compared again under their locks).  Needs the job attached and its
 * source open, and no region locked by the caller.  0, and *@ok_epoch
 * set (a new connection: the online verify's map starts again, since it
 * was verified on another); -EMEDIUMTYPE with @err: another sink, said in
 * an event; or another -errno with @err: it could not be checked.
 */
int sxm_job_sink_check(struct sxm_job *j, struct sxm_sink *s,
		       uint64_t *ok_epoch, bool mirroring, bool force,
		       char *err, size_t errlen);
/*
 * The job's policy for a sink found changed (@err says how): without
 * --on-sink-change resync, -EMEDIUMTYPE with @err completed (the job is to
 * fail with it); with it, a new baseline and the job in @restart to copy
 * everything again (*@restarted), the new sink's geometry taken next.
 */
int sxm_job_sink_changed(struct sxm_job *j, enum sxm_phase restart,
			 bool *restarted, char *err, size_t errlen);

/* ---- The online verify (verify.c; j->lock not held) ---- */

/* The verified map for the attached device's regions: 0 or -ENOMEM. */
int sxm_job_verify_init(struct sxm_job *j);
/* The regions of @map (NULL: all) are not verified: written again. */
void sxm_job_unverify(struct sxm_job *j, const uint64_t *map);
/* The regions of @map were read back equal, but those of @bad (or NULL). */
void sxm_job_verified(struct sxm_job *j, const uint64_t *map,
		      const uint64_t *bad);
/* Regions of the device not verified now (into @out), how many. */
uint64_t sxm_job_unverified(struct sxm_job *j, uint64_t *out);
/*
 * A verify pass asked for ("sxm-ctl verify") begins: everything to
 * verify again from the start.  Nothing if none was asked.
 */
void sxm_job_verify_take_request(struct sxm_job *j);
/* A pass done, what it found repaired: the requests it began for answered. */
void sxm_job_verify_answer(struct sxm_job *j);
/*
 * One step of the online verify with sink @s: up to @bytes of the regions
 * from the cursor on that are neither verified nor dirty, compared (see
 * verify.c; @mirroring: the mirror may be on).  *@found: regions that
 * differ, counted and marked dirty for a sync or resync to repair.
 * *@pass_done: the cursor came round (a pass counted).  A step whose sink
 * connected again meanwhile counts for nothing.  0, -EINTR (a request came:
 * j->verify_stop, which the caller clears under j->lock when it decided
 * that nothing else was asked), or -errno.
 */
int sxm_job_verify_step(struct sxm_job *j, struct sxm_sink *s,
			bool mirroring, uint64_t bytes, uint64_t *found,
			bool *pass_done, char *err, size_t errlen);
/*
 * A cutover's pass, live, from the start, at full speed: steps until the
 * cursor comes round, published as the op "verify" (then "cutover").
 * *@found as above.  0 if there was nothing to do (--no-verify, the
 * source frozen already, every region verified), 1 if it ran, -errno.
 */
int sxm_job_verify_pass(struct sxm_job *j, struct sxm_sink *s,
			bool mirroring, uint64_t *found, char *err,
			size_t errlen);
/*
 * Whether the online verify has work: a pass asked for, or (unless
 * --no-verify, or paused) regions to verify that were not found clean
 * and verified already.  j->lock held.
 */
bool sxm_job_verify_due(struct sxm_job *j);
/* The online verify's rate, bytes/s: the job's --rate, or a default. */
uint64_t sxm_job_verify_rate(struct sxm_job *j);

/* ---- The cutover ---- */

/*
 * The start of a cutover: published as the job's op, and the device
 * suspended (guest I/O held) unless we did already.  *@verify_all: the
 * operator asked to read all of it back.  j->lock not held.
 */
int sxm_job_cutover_start(struct sxm_job *j, bool *verify_all, char *err,
			  size_t errlen);
/*
 * How long this cutover has held guest I/O: since its suspend, or, for a
 * device it found suspended (a daemon restarted mid-cutover), since the
 * freeze the record saved.  j->lock not held.
 */
uint64_t sxm_job_held_ms(struct sxm_job *j);
/*
 * A cutover done: its figures recorded, @how (the style's account of it)
 * and the source left frozen said in events, the op cleared.  j->lock
 * held.
 */
void sxm_job_cutover_done(struct sxm_job *j, uint64_t copied,
			  uint64_t verified, uint64_t downtime_ms,
			  const char *how);
/*
 * The job Completed and saved, then detached with @detach (j->lock not
 * held for it): the device stays suspended, on purpose.  j->lock held.
 */
void sxm_job_completed(struct sxm_job *j,
		       void (*detach)(struct sxm_job *j));
/* Resume the device if we suspended it; j->lock not held. */
int sxm_job_resume_device(struct sxm_job *j, char *err, size_t errlen);
/*
 * A cutover failed with @why and the device is resumed: counted, and
 * the job is in @back again.  Saved; j->lock held.
 */
void sxm_job_cutover_failed(struct sxm_job *j, const char *why,
			    enum sxm_phase back);

#endif /* SXM_JOBCORE_H */
