/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon's insides, shared by daemon.c (service, socket, requests,
 * scheduling of the job threads), warm.c (what a warm job does),
 * mirror_job.c (what a mirror-style job does) and jobcore.c (what both
 * styles do the same way: the device, the attach, tracking, copying).
 *
 * Threads: the main thread accepts connections; each connection gets a
 * short-lived thread that answers its one request; each job that is not
 * Completed or Cancelled has a thread of its own that runs its phases
 * (warm.c: sxm_job_main()).
 *
 * Locks, in this order: sxm_daemon.lock (the list of jobs, their
 * references) -> sxm_job.lock (everything in the job but ->run) ->
 * sxm_daemon.dm_lock (libdevmapper, which is not thread-safe).  A job
 * thread never holds its job's lock while it copies, waits for the kernel
 * or talks to the sink; it takes it to publish progress and to save.
 */
#ifndef SXM_DAEMON_H
#define SXM_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "io/engine.h"
#include "jobs/job.h"
#include "io/sink.h"

struct sxm_job;

struct sxm_daemon {
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
};

struct sxm_job {
	struct sxm_job *next;		/* daemon->lock */
	struct sxm_daemon *d;
	unsigned int refs;		/* daemon->lock */
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
	pthread_t thread;
	volatile sig_atomic_t stop;	/* stop the running copy */

	struct sxm_run run;
	struct sxm_mirror_run *mirror;	/* mirror style: the pump (thread) */
};

/* daemon.c */

struct sxm_daemon_opts {
	const char *state_dir;		/* job records */
	const char *socket;		/* the control socket */
	const char *group;		/* may use the socket too; NULL: root */
};

/* Run the daemon in the foreground until SIGTERM or SIGINT. */
int sxm_daemon_run(const struct sxm_daemon_opts *o);

/* warm.c: the job thread of a warm job. */
void *sxm_job_main(void *job);

/* mirror_job.c */

struct sxm_mirror_run;

/* Whether @rec is a mirror-style job (kind "sxm"). */
bool sxm_job_is_mirror(const struct sxm_job_rec *rec);
/*
 * The job thread: runs a job in its style (sxm_job_main() for a warm one)
 * and hands a cancel to warm.c, which undoes the device for both.
 */
void *sxm_job_thread(void *job);
/* The live mirror figures of @j (the kernel's, the pump's) into @out. */
void sxm_mirror_snapshot(struct sxm_job *j, struct sxm_job_rec *out);

/*
 * jobcore.c (jobcore.h has the rest of the job layer under both styles).
 * Log and record an event; j->lock held.
 */
void sxm_job_event(struct sxm_job *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Save j->rec; j->lock held.  A failure is logged and recorded. */
int sxm_job_save(struct sxm_job *j);

#endif /* SXM_DAEMON_H */
