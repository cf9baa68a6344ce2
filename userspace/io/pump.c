// SPDX-License-Identifier: GPL-2.0
/*
 * The mirror pump (see mirror.h).
 *
 * Loop: poll the helper file (readable while sqes wait) and the sink's
 * descriptors; take every waiting sqe and queue its sink requests; let the
 * sink run its completions, each of which, when its entry is whole, writes
 * a cqe; then one SXM_IOC_RING_ENTER hands the batch to the kernel.
 *
 * Request state lives in a pool of twice the ring's entries: the kernel
 * never has more than a ring of entries in flight, but after mirroring
 * went down and came back up, entries it abandoned may still be out at the
 * sink while it posts new ones in the same slots.  When the pool is empty
 * the pump leaves sqes waiting in the ring (and stops polling for them).
 *
 * Threads: sxm_pump_run() owns the ring indices, the entries and the sink;
 * p->lock guards the counters and the drop request, which other threads
 * read and make.
 *
 * Sections: completions, issuing, the loop, life cycle.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>

#include "base/sxm.h"
#include "kdev/kdev.h"
#include "io/pump.h"
#include "io/sink.h"

/* One ring entry being served: one sink request at a time. */
struct pump_ent {
	struct sxm_sink_req req;	/* first: the completion casts back */
	struct sxm_pump *p;
	struct pump_ent *next_free;
	struct sxm_sqe sqe;		/* a private copy */
	uint64_t zero_off;		/* zeroing: next piece */
	uint64_t t0;			/* monotonic µs at start */
	int status;
	bool pending;			/* a sink request is out */
	bool flush_after;		/* FUA on a sink without FUA */
	bool busy;
	bool stale;			/* abandoned: no completion */
};

struct sxm_pump {
	int kfd;
	int wake_fd;			/* eventfd: sxm_pump_kick() */
	struct sxm_sink *sink;		/* while sxm_pump_run() runs */
	struct sxm_ring_setup geo;
	uint8_t *area;
	struct sxm_ring_hdr *hdr;
	struct sxm_sqe *sq;
	struct sxm_cqe *cq;
	struct pump_ent *ents;
	uint32_t nr_ents;
	struct pump_ent *free;
	uint32_t nr_cqes;		/* written since the last RING_ENTER */
	int enter_err;			/* RING_ENTER failed: the ring is bad */
	void *zeroes;			/* for sinks without write-zeroes */
	uint32_t zero_len;

	void (*on_event)(void *arg);	/* sxm_pump_on_event() */
	void *event_arg;
	bool events_off;		/* the kernel's event could not be read */

	pthread_mutex_t lock;		/* below */
	uint64_t events;		/* mirror state changes seen */
	struct sxm_pump_stats st;
	uint64_t drop_req;		/* drops asked for */
	uint64_t drop_done;		/* drops carried out */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The histogram bucket of @us (see SXM_PUMP_LAT_SUB). */
static unsigned int lat_bucket(uint64_t us)
{
	unsigned int msb, b;

	if (us < SXM_PUMP_LAT_SUB)
		return us;
	msb = 63 - __builtin_clzll(us);
	b = (msb - 2) * SXM_PUMP_LAT_SUB + ((us >> (msb - 3)) & 7);
	return b < SXM_PUMP_LAT_BUCKETS ? b : SXM_PUMP_LAT_BUCKETS - 1;
}

/* The middle of bucket @b, in µs. */
static uint64_t lat_value(unsigned int b)
{
	unsigned int msb = b / SXM_PUMP_LAT_SUB + 2;
	uint64_t lo, width;

	if (b < SXM_PUMP_LAT_SUB)
		return b;
	lo = (uint64_t)(SXM_PUMP_LAT_SUB | (b % SXM_PUMP_LAT_SUB)) << (msb - 3);
	width = 1ULL << (msb - 3);
	return lo + width / 2;
}

static void ent_free(struct sxm_pump *p, struct pump_ent *e)
{
	e->busy = false;
	e->next_free = p->free;
	p->free = e;
}

/* ----------------------------------------------------------------------
 * Completions
 * ----------------------------------------------------------------------
 */

static int enter(struct sxm_pump *p)
{
	if (!p->nr_cqes)
		return 0;
	p->nr_cqes = 0;
	p->enter_err = sxm_kdev_ring_enter(p->kfd);
	return p->enter_err;
}

/* Room for one more cqe: the kernel reads at most a ring of them. */
static bool cq_room(struct sxm_pump *p)
{
	/* Pairs with the kernel's release of cq_head: it read them. */
	uint32_t head = __atomic_load_n(&p->hdr->cq_head, __ATOMIC_ACQUIRE);

	return p->hdr->cq_tail - head < p->geo.entries;
}

static void post_cqe(struct sxm_pump *p, struct pump_ent *e)
{
	uint64_t us = now_us() - e->t0;
	struct sxm_cqe *c;
	uint32_t t;

	if (!e->stale && !p->enter_err) {
		if (!cq_room(p))
			enter(p);
		t = p->hdr->cq_tail;
		c = &p->cq[t & (p->geo.entries - 1)];
		c->id = e->sqe.id;
		c->status = e->status;
		c->reserved = 0;
		/* The cqe is written before the kernel sees the new tail. */
		__atomic_store_n(&p->hdr->cq_tail, t + 1, __ATOMIC_RELEASE);
		p->nr_cqes++;
	}

	pthread_mutex_lock(&p->lock);
	p->st.in_flight--;
	if (e->stale) {
		p->st.stale--;
		p->st.dropped++;
	} else {
		p->st.entries++;
		p->st.lat[lat_bucket(us)]++;
		if (e->status)
			p->st.errors++;
		switch (e->sqe.op) {
		case SXM_OP_WRITE:
			p->st.writes++;
			p->st.bytes += e->sqe.len;
			break;
		case SXM_OP_FLUSH:
			p->st.flushes++;
			break;
		default:
			p->st.zeroes++;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	ent_free(p, e);
}

static int issue_next(struct pump_ent *e);

static void req_done(struct sxm_sink_req *req, int err)
{
	struct pump_ent *e = (struct pump_ent *)req;

	e->pending = false;
	if (err && !e->status) {
		e->status = err;
		if (!e->stale)
			sxm_err("mirror: sink %s: %s at 0x%llx (%llu bytes): %s",
				sxm_sink_name(e->p->sink),
				e->sqe.op == SXM_OP_WRITE ? "write" :
				e->sqe.op == SXM_OP_FLUSH ? "flush" : "zero",
				(unsigned long long)e->sqe.offset,
				(unsigned long long)e->sqe.len, strerror(-err));
	}
	if (!e->status && issue_next(e) > 0)
		return;
	post_cqe(e->p, e);
}

/* ----------------------------------------------------------------------
 * Issuing
 * ----------------------------------------------------------------------
 */

static struct sxm_sink_req *next_req(struct pump_ent *e)
{
	e->pending = true;
	e->req.done = req_done;
	return &e->req;
}

/* Queue the next piece of zeroes; 1 if queued, 0 if none left, -errno. */
static int issue_zero(struct pump_ent *e)
{
	struct sxm_pump *p = e->p;
	struct sxm_sink *s = p->sink;
	uint64_t end = e->sqe.offset + e->sqe.len, off = e->zero_off, len;
	int r;

	if (off >= end)
		return 0;
	if (s->caps & SXM_SINK_CAN_ZERO) {
		len = end - off < SXM_SINK_MAX_ZERO ? end - off :
						      SXM_SINK_MAX_ZERO;
		r = s->ops->zero(s, len, off, 0, next_req(e));
	} else {
		len = end - off < p->zero_len ? end - off : p->zero_len;
		r = s->ops->pwrite(s, p->zeroes, len, off, 0, next_req(e));
	}
	if (r) {
		e->pending = false;
		return r;
	}
	e->zero_off = off + len;
	return 1;
}

/*
 * After a request of @e completed: queue what comes next (the flush after
 * a FUA write, the next piece of zeroes).  1 if something was queued.
 */
static int issue_next(struct pump_ent *e)
{
	struct sxm_sink *s = e->p->sink;
	int r;

	if (e->flush_after) {
		e->flush_after = false;
		r = s->ops->flush(s, next_req(e));
		if (r) {
			e->pending = false;
			e->status = r;
			return 0;
		}
		return 1;
	}
	if (e->sqe.op == SXM_OP_WRITE_ZEROES || e->sqe.op == SXM_OP_DISCARD) {
		r = issue_zero(e);
		if (r < 0)
			e->status = r;
		return r > 0;
	}
	return 0;
}

/* Whether the kernel's sqe makes sense; a bad one is a bug there. */
static bool sqe_valid(const struct sxm_pump *p, const struct sxm_sqe *sqe)
{
	const struct sxm_sink *s = p->sink;

	if (SXM_SQE_ID_SLOT(sqe->id) >= p->geo.entries || !sqe->id)
		return false;
	if (sqe->offset > s->size || sqe->len > s->size - sqe->offset)
		return false;
	switch (sqe->op) {
	case SXM_OP_WRITE:
		return sqe->len && sqe->len <= p->geo.slot_bytes &&
		       sqe->len <= s->block_max &&
		       sqe->data_off >= p->geo.data_off &&
		       sqe->data_off <= p->geo.mmap_bytes - sqe->len;
	case SXM_OP_WRITE_ZEROES:
	case SXM_OP_DISCARD:
		return sqe->len;
	case SXM_OP_FLUSH:
		return !sqe->len;
	default:
		return false;
	}
}

static int issue(struct sxm_pump *p, const struct sxm_sqe *sqe)
{
	struct sxm_sink *s = p->sink;
	struct pump_ent *e = p->free;
	unsigned int flags = 0;
	int r;

	if (!sqe_valid(p, sqe))
		return -EPROTO;
	p->free = e->next_free;
	memset(e, 0, sizeof(*e));
	e->p = p;
	e->sqe = *sqe;
	e->t0 = now_us();
	e->busy = true;
	e->zero_off = sqe->offset;
	pthread_mutex_lock(&p->lock);
	p->st.in_flight++;
	pthread_mutex_unlock(&p->lock);

	switch (sqe->op) {
	case SXM_OP_WRITE:
		if (sqe->flags & SXM_SQE_FUA) {
			if (s->caps & SXM_SINK_CAN_FUA)
				flags |= SXM_SINK_F_FUA;
			else
				e->flush_after = true;
		}
		r = s->ops->pwrite(s, p->area + sqe->data_off, sqe->len,
				   sqe->offset, flags, next_req(e));
		break;
	case SXM_OP_FLUSH:
		r = s->ops->flush(s, next_req(e));
		break;
	default:
		r = issue_zero(e);
		if (r > 0)
			r = 0;
		break;
	}
	if (r) {
		/* Not queued: answer with the error at once. */
		e->pending = false;
		e->status = r;
		post_cqe(p, e);
	}
	return 0;
}

/* Take the waiting sqes, as many as there are free entries. */
static int take_sqes(struct sxm_pump *p)
{
	uint32_t head = p->hdr->sq_head;
	/* Pairs with the kernel's release of sq_tail: the sqes are written. */
	uint32_t tail = __atomic_load_n(&p->hdr->sq_tail, __ATOMIC_ACQUIRE);
	int r = 0;

	if (tail - head > p->geo.entries)
		return -EPROTO;
	while (head != tail && p->free && !r) {
		struct sxm_sqe sqe = p->sq[head & (p->geo.entries - 1)];

		head++;
		r = issue(p, &sqe);
	}
	/* The sqes are copied: the kernel may reuse their places. */
	__atomic_store_n(&p->hdr->sq_head, head, __ATOMIC_RELEASE);
	return r;
}

/*
 * A drop asked for: skip every sqe not taken (posted before mirroring went
 * down; none come while it is down) and mark every entry out stale.
 */
static void do_drop(struct sxm_pump *p)
{
	uint32_t tail = __atomic_load_n(&p->hdr->sq_tail, __ATOMIC_ACQUIRE);
	uint64_t want;
	uint32_t i, stale = 0;

	pthread_mutex_lock(&p->lock);
	want = p->drop_req;
	pthread_mutex_unlock(&p->lock);

	__atomic_store_n(&p->hdr->sq_head, tail, __ATOMIC_RELEASE);
	for (i = 0; i < p->nr_ents; i++) {
		struct pump_ent *e = &p->ents[i];

		if (e->busy && !e->stale) {
			e->stale = true;
			stale++;
		}
	}

	pthread_mutex_lock(&p->lock);
	p->st.stale += stale;
	p->drop_done = want;
	pthread_mutex_unlock(&p->lock);
}

static bool drop_wanted(struct sxm_pump *p)
{
	bool want;

	pthread_mutex_lock(&p->lock);
	want = p->drop_done != p->drop_req;
	pthread_mutex_unlock(&p->lock);
	return want;
}

/*
 * EPOLLPRI: the mirror's state changed.  Reading the state acknowledges
 * it; if that fails the pump stops asking (the event would stay raised).
 */
static void take_event(struct sxm_pump *p)
{
	struct sxm_info info = { .size = sizeof(info) };
	int r = sxm_kdev_info(p->kfd, &info);

	if (r) {
		sxm_err("mirror: reading the mirror's state: %s; no more events",
			strerror(-r));
		p->events_off = true;
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->events++;
	pthread_mutex_unlock(&p->lock);
	sxm_debug("mirror: the kernel says the mirror is %s%s%s",
		  info.mirror == SXM_MIRROR_ON ? "on" :
		  info.mirror == SXM_MIRROR_DEGRADED ? "degraded" : "off",
		  info.degraded_reason[0] ? ": " : "",
		  info.mirror == SXM_MIRROR_DEGRADED ? info.degraded_reason : "");
	if (p->on_event)
		p->on_event(p->event_arg);
}

/* ----------------------------------------------------------------------
 * The loop
 * ----------------------------------------------------------------------
 */

int sxm_pump_run(struct sxm_pump *p, struct sxm_sink *sink,
		 const bool *stop)
{
	struct pollfd fds[2 + SXM_SINK_MAX_FDS];
	uint64_t v;
	int r = 0, lost = 0;

	if (sink->block_max < p->geo.slot_bytes)
		return -EINVAL;
	if (p->enter_err)
		return p->enter_err;
	p->sink = sink;
	while (!__atomic_load_n(stop, __ATOMIC_RELAXED)) {
		int timeout = 100, n;

		/*
		 * A connection lost: take no more entries, let those out
		 * finish (failed, or on the other connections), then say
		 * so.  Left out, their writes could reach the sink after
		 * the caller resynced the same regions.
		 */
		if (lost && !sink->in_flight)
			break;
		if (drop_wanted(p))
			do_drop(p);
		fds[0] = (struct pollfd){ .fd = p->kfd };
		if (!p->events_off)
			fds[0].events = POLLPRI;
		if (p->free && !lost)
			fds[0].events |= POLLIN;
		fds[1] = (struct pollfd){ .fd = p->wake_fd, .events = POLLIN };
		n = sink->ops->poll_fds(sink, fds + 2, SXM_SINK_MAX_FDS,
					&timeout);
		if (poll(fds, 2 + n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (fds[0].revents & POLLERR) {
			r = -ENXIO;	/* the ring is gone */
			break;
		}
		if (fds[0].revents & POLLPRI)
			take_event(p);
		if ((fds[1].revents & POLLIN) &&
		    read(p->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
			r = -errno;
			break;
		}
		r = lost ? 0 : take_sqes(p);
		if (r)
			break;
		r = sink->ops->process(sink, fds + 2, n);
		if (r == -ENOTCONN) {
			/* Closed or reset: what it had out failed. */
			lost = r;
			r = 0;
		}
		if (r) {
			/* Every request out completed with an error. */
			enter(p);
			break;
		}
		r = enter(p);
		if (r)
			break;
	}
	if (!r && p->enter_err)
		r = p->enter_err;
	return r ? r : lost;
}

/* ----------------------------------------------------------------------
 * Life cycle
 * ----------------------------------------------------------------------
 */

void sxm_pump_on_event(struct sxm_pump *p, void (*fn)(void *arg), void *arg)
{
	p->on_event = fn;
	p->event_arg = arg;
}

uint64_t sxm_pump_events(struct sxm_pump *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->events;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void sxm_pump_kick(struct sxm_pump *p)
{
	uint64_t one = 1;

	/* A full counter is as good a wake-up. */
	if (write(p->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		sxm_err("mirror: waking the pump: %s", strerror(errno));
}

void sxm_pump_drop(struct sxm_pump *p)
{
	pthread_mutex_lock(&p->lock);
	p->drop_req++;
	pthread_mutex_unlock(&p->lock);
	sxm_pump_kick(p);
}

bool sxm_pump_dropped(struct sxm_pump *p)
{
	bool done;

	pthread_mutex_lock(&p->lock);
	done = p->drop_done == p->drop_req && !p->st.stale;
	pthread_mutex_unlock(&p->lock);
	return done;
}

void sxm_pump_forget(struct sxm_pump *p)
{
	uint32_t i, forgot = 0;

	__atomic_store_n(&p->hdr->sq_head,
			 __atomic_load_n(&p->hdr->sq_tail, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	p->free = NULL;
	for (i = p->nr_ents; i-- > 0; ) {
		struct pump_ent *e = &p->ents[i];

		forgot += e->busy;
		ent_free(p, e);
	}
	pthread_mutex_lock(&p->lock);
	p->st.dropped += forgot;
	p->st.in_flight = 0;
	p->st.stale = 0;
	p->drop_done = p->drop_req;
	pthread_mutex_unlock(&p->lock);
}

int sxm_pump_open(int kfd, uint32_t entries, uint32_t slot_bytes,
		  uint32_t timeout_ms, struct sxm_pump **out)
{
	struct sxm_pump *p = calloc(1, sizeof(*p));
	void *area;
	uint32_t i;
	int r;

	if (!p)
		return -ENOMEM;
	p->wake_fd = -1;
	p->kfd = kfd;
	pthread_mutex_init(&p->lock, NULL);
	p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = sxm_kdev_ring_setup(kfd, entries, slot_bytes, timeout_ms, &p->geo,
				&area);
	if (r)
		goto fail;
	p->area = area;
	p->hdr = (void *)(p->area + p->geo.hdr_off);
	p->sq = (void *)(p->area + p->geo.sq_off);
	p->cq = (void *)(p->area + p->geo.cq_off);
	p->nr_ents = 2 * p->geo.entries;
	p->ents = calloc(p->nr_ents, sizeof(*p->ents));
	/* For sinks without write-zeroes: one slot's worth of zeroes. */
	p->zero_len = p->geo.slot_bytes;
	p->zeroes = calloc(1, p->zero_len);
	if (!p->ents || !p->zeroes) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = p->nr_ents; i-- > 0; )
		ent_free(p, &p->ents[i]);
	*out = p;
	return 0;

fail:
	sxm_pump_close(p);
	return r;
}

const struct sxm_ring_setup *sxm_pump_geometry(const struct sxm_pump *p)
{
	return &p->geo;
}

void sxm_pump_get_stats(struct sxm_pump *p, struct sxm_pump_stats *st)
{
	pthread_mutex_lock(&p->lock);
	*st = p->st;
	pthread_mutex_unlock(&p->lock);
}

uint64_t sxm_pump_latency_us(const struct sxm_pump_stats *st, double q)
{
	uint64_t total = 0, seen = 0;
	unsigned int b;

	for (b = 0; b < SXM_PUMP_LAT_BUCKETS; b++)
		total += st->lat[b];
	if (!total)
		return 0;
	for (b = 0; b < SXM_PUMP_LAT_BUCKETS; b++) {
		seen += st->lat[b];
		if (seen >= q * total)
			return lat_value(b);
	}
	return lat_value(SXM_PUMP_LAT_BUCKETS - 1);
}

void sxm_pump_close(struct sxm_pump *p)
{
	if (!p)
		return;
	if (p->area)
		munmap(p->area, p->geo.mmap_bytes);
	free(p->ents);
	free(p->zeroes);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
