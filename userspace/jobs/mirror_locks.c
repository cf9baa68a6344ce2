// SPDX-License-Identifier: GPL-2.0
/*
 * The mirror style's copies under region locks (mirror.h): batches of
 * regions, each taken with one SXM_IOC_LOCK, copied or compared on the
 * job's connection, released with one more; the batch sized by what the
 * last ones cost the guest (sxm_mirror_batch_bytes()).
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
/* Copying under locks                                                */
/* ------------------------------------------------------------------ */

/*
 * Copy (or with @verify, read back and compare) the regions of @map with
 * the job's own connection.  res->dirty says what is not done.
 */
int mirror_copy_regions(struct sxm_job *j, const uint64_t *map,
			bool sink_zero, bool verify,
			struct sxm_job_progress *pg,
			struct sxm_copy_result *res)
{
	char err[512];
	int r;

	if (!j->run.sink) {
		r = sxm_job_open_sink(j, false, err, sizeof(err));
		if (r) {
			memset(res, 0, sizeof(*res));
			res->error = r;
			snprintf(res->errmsg, sizeof(res->errmsg), "%s", err);
			return r;
		}
	}
	r = sxm_job_copy(j, map,
			 (sink_zero ? SXM_JOB_COPY_SINK_ZERO : 0) |
			 (verify ? SXM_JOB_COPY_VERIFY : 0),
			 BATCH_BUFS, pg, res);
	/* A failed copy may have lost the connection: the next one reopens. */
	if (r && r != -EILSEQ && r != -EINTR) {
		sxm_sink_close(j->run.sink);
		j->run.sink = NULL;
	}
	return r;
}

int mirror_check_sinks(struct sxm_job *j, bool mirroring, bool force,
		       char *err, size_t errlen)
{
	struct sxm_mirror_run *m = j->mirror;
	uint64_t epoch = m->sink ? sxm_sink_epoch(m->sink) : m->sink_ok;
	int r;

	if (m->sink && !m->running) {
		/* Not the pump's now: its own connection, looked at itself. */
		r = sxm_job_sink_check(j, m->sink, &m->sink_ok, mirroring,
				       false, err, errlen);
		if (r)
			return r;
		epoch = m->sink_ok;
	} else if (epoch != m->sink_ok) {
		/* The server the pump reached, through a new connection. */
		sxm_sink_close(j->run.sink);
		j->run.sink = NULL;
	}
	if (!j->run.sink) {
		r = sxm_job_open_sink(j, false, err, errlen);
		if (r)
			return r;
	}
	r = sxm_job_sink_check(j, j->run.sink, &j->run.sink_ok, mirroring,
			       force, err, errlen);
	if (!r)
		m->sink_ok = epoch;
	return r;
}

/* The next batch of a locked pass (sxm_mirror_batch_bytes()). */
uint64_t mirror_batch_limit(struct sxm_job *j, uint64_t rs)
{
	struct sxm_mirror_run *m = j->mirror;
	double limit;

	sxm_job_lock(j);
	limit = (double)j->rec.rate_limit;
	sxm_job_unlock(j);
	return sxm_mirror_batch_bytes(&m->batch, limit, rs);
}

struct batch {
	struct sxm_lock_range r[SXM_LOCK_MAX];
	uint32_t n;
	uint64_t *map;			/* the batch's regions */
	uint64_t bytes;
};

/* The next batch of @map from region *@pos on: runs become ranges. */
static void next_batch(const uint64_t *map, uint64_t nr, uint64_t *pos,
		       uint64_t rs, uint64_t size, uint64_t limit,
		       struct batch *b)
{
	uint64_t r = *pos;

	sxm_map_zero(b->map, nr);
	b->n = 0;
	b->bytes = 0;
	while (r < nr && b->n < SXM_LOCK_MAX && b->bytes < limit) {
		if (!sxm_map_test(map, r)) {
			r++;
			continue;
		}
		b->r[b->n].first = r;
		b->r[b->n].count = 0;
		while (r < nr && sxm_map_test(map, r) && b->bytes < limit) {
			sxm_map_set(b->map, r);
			b->bytes += sxm_region_len(r, rs, size);
			b->r[b->n].count++;
			r++;
		}
		b->n++;
	}
	*pos = r;
}

/*
 * Copy and/or verify the regions of @map in batches, each under its
 * region locks; acknowledge each batch copied.  *@copied and *@verified
 * count bytes.  A verify that finds differences marks them dirty and
 * returns -EILSEQ with @err saying where.  j->lock not held.
 */
int mirror_locked_pass(struct sxm_job *j, const uint64_t *map, bool copy,
		       bool verify, bool sink_zero, const char *op,
		       uint64_t base, bool own_op, uint64_t *copied,
		       uint64_t *verified, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr = run->nr_regions;
	uint64_t size = j->rec.size, pos = 0, total, done;
	struct sxm_copy_result res = { 0 };
	struct sxm_job_progress pg = { .j = j };
	struct batch *b;
	uint64_t *all = NULL;
	double asked, t0, now, held, waited;
	int r = 0, e;

	b = calloc(1, sizeof(*b));
	if (b)
		b->map = sxm_map_alloc(nr);
	if (!map) {
		all = sxm_map_alloc(nr);
		if (all)
			sxm_map_set_range(all, 0, nr);
		map = all;
	}
	if (!b || !b->map || !map) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: %s", op, strerror(ENOMEM));
		goto out;
	}
	/* Progress: its own op, or a part of a longer one from @base on. */
	total = sxm_regions_bytes(map, nr, rs, size);
	done = base;
	if (own_op) {
		sxm_job_lock(j);
		sxm_job_set_op(j, op, 0, total);
		sxm_job_unlock(j);
	}

	while (!r) {
		next_batch(map, nr, &pos, rs, size, mirror_batch_limit(j, rs), b);
		if (!b->n)
			break;
		if (stop_now(j)) {
			r = -EINTR;
			snprintf(err, errlen, "interrupted");
			break;
		}
		/* A connection opened or connected again is looked at first. */
		r = mirror_check_sinks(j, true, false, err, errlen);
		if (r)
			break;
		/*
		 * The guest's writes to these regions wait from here: the
		 * kernel holds new ones while it drains those in flight.
		 */
		asked = sxm_mono_s();
		r = sxm_kdev_lock(run->kfd, b->r, b->n, false);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: lock %u ranges: %s",
				 j->rec.device, b->n, strerror(-r));
			break;
		}
		/* Copying from here: the rate is of this part. */
		t0 = sxm_mono_s();
		pg.base = done;
		if (copy) {
			r = mirror_copy_regions(j, b->map, sink_zero, false, &pg, &res);
			if (!r)
				*copied += res.stats.bytes_done;
			else
				snprintf(err, errlen, "%s", res.errmsg);
			sxm_copy_result_free(&res);
			/* Written, not read back: to verify again. */
			sxm_job_unverify(j, b->map);
		}
		if (!r && verify) {
			r = mirror_copy_regions(j, b->map, false, true, &pg, &res);
			*verified += res.stats.bytes_done - res.stats.bytes_differ;
			if (!r || r == -EILSEQ)
				sxm_job_verified(j, b->map, res.dirty);
			if (r)
				snprintf(err, errlen, "%s", res.errmsg);
			if (r == -EILSEQ && res.dirty) {
				/* Not lost: they are dirty again. */
				e = sxm_kdev_mark_map(run->kfd, res.dirty, nr,
						      NULL);
				if (e)
					r = e;
			}
			sxm_copy_result_free(&res);
		}
		e = sxm_kdev_lock(run->kfd, b->r, b->n, true);
		now = sxm_mono_s();
		held = now - t0;
		waited = now - asked;
		if (e && !r) {
			r = e;
			snprintf(err, errlen, "/dev/mapper/%s: release %u ranges: %s",
				 j->rec.device, b->n, strerror(-e));
		}
		/*
		 * Connected again meanwhile: acknowledged only once the sink
		 * is known to be the one written to (the locks are let go).
		 */
		if (!r)
			r = mirror_check_sinks(j, true, false, err, errlen);
		/* On the sink (flushed) or read back: the kernel may forget. */
		if (!r && copy) {
			r = sxm_kdev_ack(run->kfd, b->map, nr, NULL);
			if (r)
				snprintf(err, errlen, "/dev/mapper/%s: acknowledge: %s",
					 j->rec.device, strerror(-r));
		}
		if (!r)
			sxm_mirror_batch_done(&j->mirror->batch, b->bytes,
					      held, waited, rs);
		j->mirror->batches++;
		if (waited > j->mirror->wait_max)
			j->mirror->wait_max = waited;
		done += b->bytes;
		sxm_job_lock(j);
		j->rec.op_done = done;
		sxm_job_unlock(j);
	}
out:
	free(all);
	if (b)
		free(b->map);
	free(b);
	return r;
}
