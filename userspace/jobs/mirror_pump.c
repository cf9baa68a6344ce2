// SPDX-License-Identifier: GPL-2.0
/*
 * The mirror style's pump (mirror.h): the kernel's mirror status, and the
 * pump's life on a job: its ring on the job's attach, its own sink
 * connection, its thread (io/pump.h does the serving).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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

/* ------------------------------------------------------------------ */
/* The kernel's mirror status                                         */
/* ------------------------------------------------------------------ */

/* The status line, which must have the mirror's fields. */
int mirror_status_read(const char *device, struct sxm_status *m)
{
	struct sxm_table st = { 0 };
	int r;

	r = sxm_dm_status(device, &st);
	if (!r && (st.nr != 1 || sxm_status_parse(st.t[0].params, m) ||
		    !m->has_mirror))
		r = -EPROTO;
	sxm_table_free(&st);
	return r;
}

int mirror_kstat(struct sxm_job *j, struct sxm_status *m)
{
	int r;

	sxm_job_dm_lock(j);
	r = mirror_status_read(j->rec.device, m);
	sxm_job_dm_unlock(j);
	return r;
}

bool mirror_is_on(const struct sxm_status *m)
{
	return !strcmp(m->mirror, "on");
}

/* ------------------------------------------------------------------ */
/* The pump                                                           */
/* ------------------------------------------------------------------ */

/*
 * The pump sits in the guest's write path: a page reclaim that writes to
 * the sxm device waits for it.  So its own allocations must not recurse
 * into that I/O (PR_SET_IO_FLUSHER: GFP_NOIO for this thread, as for the
 * daemons of loop and nbd devices), and the daemon's memory is locked so
 * that no page it needs is reclaimed from under it.  Failures are said,
 * not fatal: the mirror still works, with that risk.
 */
static void pump_harden(void)
{
	static bool locked;

	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		sxm_err("mirror pump: PR_SET_IO_FLUSHER: %s", strerror(errno));
	if (!__atomic_exchange_n(&locked, true, __ATOMIC_RELAXED) &&
	    mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		sxm_err("mirror pump: mlockall: %s", strerror(errno));
}

/* From the pump's thread: the mirror's state changed; look now. */
static void pump_event(void *arg)
{
	struct sxm_job *j = arg;

	sxm_job_lock(j);
	pthread_cond_broadcast(&j->cond);
	sxm_job_unlock(j);
}

static void *pump_main(void *arg)
{
	struct sxm_job *j = arg;
	struct sxm_mirror_run *m = j->mirror;
	int r;

	pump_harden();
	r = sxm_pump_run(m->pump, m->sink, &m->stop);

	sxm_job_lock(j);
	m->result = r;
	m->exited = true;
	pthread_cond_broadcast(&j->cond);
	sxm_job_unlock(j);
	return NULL;
}

/* Stop the pump thread (its requests may still be out). */
void mirror_pump_join(struct sxm_job *j)
{
	struct sxm_mirror_run *m = j->mirror;

	if (!m->running)
		return;
	__atomic_store_n(&m->stop, true, __ATOMIC_RELAXED);
	sxm_pump_kick(m->pump);
	pthread_join(m->thread, NULL);
	m->running = false;
}

void mirror_pump_close_sink(struct sxm_job *j)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_sink *s;

	sxm_job_lock(j);
	s = m->sink;
	m->sink = NULL;
	sxm_job_unlock(j);
	sxm_sink_close(s);
}

/* Everything of the pump, the ring's mapping too (then a detach works). */
void mirror_pump_release(struct sxm_job *j)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_pump *p;

	if (!m)
		return;
	mirror_pump_join(j);
	mirror_pump_close_sink(j);
	sxm_job_lock(j);
	p = m->pump;
	m->pump = NULL;
	sxm_job_unlock(j);
	sxm_pump_close(p);
}

/* Let go of the device: the pump, then the attach. */
void mirror_release_all(struct sxm_job *j)
{
	mirror_pump_release(j);
	sxm_job_run_close(j);
}

/* The largest power of two of at most @max, at most 128 KiB. */
static uint32_t slot_size(uint32_t max)
{
	uint32_t s = 128 << 10;

	while (s > 4096 && s > max)
		s >>= 1;
	return s;
}

int mirror_pump_open_sink(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_sink_opts so = {
		.min_size = j->rec.size,
		.timeout_ms = SINK_TIMEOUT_MS,
		.io_timeout_ms = j->rec.io_timeout_ms,
	};
	struct sxm_sink *s;
	int r;

	if (m->sink)
		return 0;
	r = sxm_sink_open(j->rec.sink, &so, &s, err, errlen);
	if (r)
		return r;
	sxm_job_lock(j);
	m->sink = s;
	sxm_job_unlock(j);
	return 0;
}

/* The ring on the job's attach, the sink, the thread. */
int mirror_pump_start(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_mirror_run *m = j->mirror;
	struct sxm_features feat;
	struct sxm_pump *p;
	int r;

	r = mirror_pump_open_sink(j, err, errlen);
	if (r)
		return r;
	if (m->pump && m->pump_kfd != j->run.kfd) {
		/* A new attach: the old ring went with the old one. */
		sxm_job_lock(j);
		p = m->pump;
		m->pump = NULL;
		sxm_job_unlock(j);
		sxm_pump_close(p);
	}
	if (!m->pump) {
		r = sxm_kdev_features(j->run.kfd, &feat);
		if (!r && !(feat.features & SXM_F_MIRROR))
			r = -EOPNOTSUPP;
		if (!r)
			r = sxm_pump_open(j->run.kfd, 0,
					  slot_size(m->sink->block_max), 0, &p);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: the mirror ring: %s",
				 j->rec.device, r == -EOPNOTSUPP ?
				 "this dm-sxm has no mirror ring" :
				 strerror(-r));
			return r;
		}
		sxm_pump_on_event(p, pump_event, j);
		sxm_job_lock(j);
		m->pump = p;
		m->pump_kfd = j->run.kfd;
		sxm_job_unlock(j);
	}
	if (m->running)
		return 0;
	m->stop = false;
	m->exited = false;
	m->result = 0;
	r = pthread_create(&m->thread, NULL, pump_main, j);
	if (r) {
		snprintf(err, errlen, "the pump thread: %s", strerror(r));
		return -r;
	}
	m->running = true;
	return 0;
}

/*
 * The pump thread ended by itself: say why and clear up.  A ring that
 * the kernel refused needs a new attach; a lost sink a new connection.
 */
void mirror_pump_reap(struct sxm_job *j)
{
	struct sxm_mirror_run *m = j->mirror;
	bool exited;
	int r;

	sxm_job_lock(j);
	exited = m->running && m->exited;
	r = m->result;
	sxm_job_unlock(j);
	if (!exited)
		return;
	mirror_pump_join(j);
	sxm_job_lock(j);
	sxm_job_event(j, "mirror pump stopped: %s", strerror(-r));
	sxm_job_unlock(j);
	if (r == -EIO || r == -ENXIO || r == -EPROTO || r == -EINVAL) {
		mirror_release_all(j);
		return;
	}
	mirror_pump_close_sink(j);
}
