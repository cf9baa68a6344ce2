// SPDX-License-Identifier: GPL-2.0
/*
 * The copy engine (copy.h).
 *
 * One thread, one poll loop: the source engine's eventfd and the sink's
 * sockets.  A fixed pool of buffers is divided into slots; a slot takes one
 * "item" from the planner (a piece of a run of wanted regions: data to
 * read, or a hole of the source to zero), reads it, splits it into data
 * and zero pieces and queues sink requests for them; when the last of
 * those completes the slot is free again.  Verification uses two buffers
 * per slot, one for the source and one for the sink.
 *
 * Sections: helpers, bitmap, planner, sink requests, source reads,
 * verification, the loop, entry points.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "io/copy.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))
#define ROUND_UP(x, a)	(((x) + (a) - 1) / (a) * (a))
#define ROUND_DOWN(x, a)	((x) / (a) * (a))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* True if @len bytes at @p are all zero (the trick nbdkit and qemu use). */
static bool is_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < 16 && i < len; i++)
		if (b[i])
			return false;
	if (len <= 16)
		return true;
	return !memcmp(b, b + 16, len - 16);
}

/* ------------------------------------------------------------------ */
/* State                                                              */
/* ------------------------------------------------------------------ */

enum item_kind { ITEM_DATA, ITEM_HOLE };
enum op_kind { OP_WRITE, OP_ZERO, OP_READ, OP_STATUS };

struct copy;
struct slot;

/* One sink request. */
struct op {
	struct sxm_sink_req req;	/* first: done() casts back */
	struct slot *slot;
	uint64_t off;
	uint64_t len;
	enum op_kind kind;
	/* Walking a source hole through the sink's extents, to @end. */
	bool walk;
	uint64_t end;
	uint64_t ext_len;		/* OP_STATUS: the answer */
	bool ext_zero;
};

struct slot {
	struct copy *c;
	void *buf;			/* source data */
	unsigned int buf_index;
	void *buf2;			/* verify: sink data */
	enum item_kind kind;
	uint64_t off;			/* the item */
	uint64_t len;
	uint64_t got;			/* bytes read so far */
	unsigned int pending;		/* reads and sink requests out */
	bool failed;
	struct sxm_engine_req rreq;
	struct op *ops;
	unsigned int nops;
};

struct copy {
	struct sxm_source *src;
	struct sxm_sink *sink;
	const struct sxm_copy_opts *o;
	struct sxm_copy_result *res;
	bool verify;

	struct sxm_engine *eng;
	void *pool;			/* nbufs * buf_size, mmap'd */
	void **bufs;
	unsigned int nbufs;
	size_t buf_size;
	uint64_t want_bytes;		/* in the wanted regions */
	void *zeroes;			/* buf_size zero bytes, mmap'd */
	unsigned int depth;		/* source reads in flight, max */

	struct slot *slots;
	unsigned int nslots;
	struct slot **free;
	unsigned int nfree;
	struct op *op_pool;
	unsigned int ops_per_slot;

	uint64_t region_size;
	unsigned int region_shift;
	uint64_t nr_regions;
	const uint64_t *want;		/* NULL: all */
	unsigned int grain;		/* alignment of source extents */

	/* The planner. */
	uint64_t pos;			/* next byte not yet planned */
	uint64_t run_end;		/* end of the current run */
	uint64_t map_from;		/* [map_from, map_data) is a hole, */
	uint64_t map_data;		/* [map_data, map_hole) data */
	uint64_t map_hole;
	bool map_valid;
	bool plan_done;
	bool stopping;

	/* Rate limit: tokens in bytes, may go negative. */
	double tokens;
	double refilled;

	/* Verification: the lowest offset that differs. */
	uint64_t first_diff;

	/* Progress. */
	double t0;
	double last_tick;
	uint64_t last_done;
};

static void record_error(struct copy *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void record_error(struct copy *c, int err, const char *fmt, ...)
{
	va_list ap;

	c->stopping = true;
	if (c->res->error)
		return;
	c->res->error = err;
	va_start(ap, fmt);
	vsnprintf(c->res->errmsg, sizeof(c->res->errmsg), fmt, ap);
	va_end(ap);
}

static bool wanted(const struct copy *c, uint64_t r)
{
	return !c->want || sxm_map_test(c->want, r);
}

/* The first wanted region at or after @r, or nr_regions. */
static uint64_t next_wanted(const struct copy *c, uint64_t r, bool set)
{
	while (r < c->nr_regions) {
		uint64_t w;

		if (!c->want)
			return set ? r : c->nr_regions;
		w = c->want[r / 64] >> (r % 64);
		if (!set)
			w = ~w;
		if (r % 64 == 0 && !w) {
			r += 64;
			continue;
		}
		if (w & 1)
			return r;
		if (!w) {
			r = ROUND_UP(r + 1, 64);
			continue;
		}
		r += __builtin_ctzll(w);
	}
	return c->nr_regions;
}

/* Mark the regions [off, off + len) touches as still dirty. */
static void mark_dirty(struct copy *c, uint64_t off, uint64_t len)
{
	uint64_t r, last;

	if (!len)
		return;
	last = (off + len - 1) >> c->region_shift;
	for (r = off >> c->region_shift; r <= last; r++)
		sxm_map_set(c->res->dirty, r);
}

/* Every wanted region from the one holding @off on is still dirty. */
static void mark_dirty_from(struct copy *c, uint64_t off)
{
	uint64_t r;

	for (r = off >> c->region_shift; r < c->nr_regions; r++)
		if (wanted(c, r))
			sxm_map_set(c->res->dirty, r);
}

/* ------------------------------------------------------------------ */
/* Planner                                                            */
/* ------------------------------------------------------------------ */

/* Move to the next run of wanted regions; false when there is none. */
static bool next_run(struct copy *c)
{
	/* Runs end on a region boundary, or at the end of a short last one. */
	uint64_t r = ROUND_UP(c->pos, c->region_size) >> c->region_shift;
	uint64_t end;

	r = next_wanted(c, r, true);
	if (r >= c->nr_regions)
		return false;
	end = next_wanted(c, r, false);
	c->pos = r << c->region_shift;
	c->run_end = MIN(end << c->region_shift, c->src->size);
	return true;
}

/* Learn where data is around c->pos in a sparse source. */
static int map_source(struct copy *c)
{
	uint64_t data, hole;
	int r;

	if (c->map_valid && c->pos >= c->map_from && c->pos < c->map_hole)
		return 0;
	r = sxm_source_next_data(c->src, c->pos, &data, &hole);
	if (r)
		return r;
	/* Read whole aligned blocks: a little hole read as data is fine. */
	c->map_from = c->pos;
	c->map_data = MAX(ROUND_DOWN(data, c->grain), c->pos);
	c->map_hole = MIN(ROUND_UP(hole, c->grain), c->src->size);
	if (c->map_hole <= c->map_data)
		c->map_hole = c->src->size;
	c->map_valid = true;
	return 0;
}

/*
 * The next item: *kind, *off, *len.  Returns 1, 0 when nothing is left,
 * or -errno.
 */
static int plan(struct copy *c, enum item_kind *kind, uint64_t *off,
		uint64_t *len)
{
	uint64_t end, max_hole;
	int r;

	if (c->plan_done || c->stopping)
		return 0;
	if (c->pos >= c->run_end && !next_run(c)) {
		c->plan_done = true;
		return 0;
	}
	r = map_source(c);
	if (r)
		return r;
	*off = c->pos;
	if (c->pos < c->map_data) {
		/* A hole: zeroed in big requests when the sink can. */
		max_hole = c->buf_size;
		if (!c->verify && (c->o->sink_is_zero ||
				   (c->sink->caps & SXM_SINK_CAN_ZERO)))
			max_hole = SXM_SINK_MAX_ZERO;
		end = MIN(MIN(c->run_end, c->map_data), c->pos + max_hole);
		*kind = ITEM_HOLE;
	} else {
		end = MIN(MIN(c->run_end, c->map_hole),
			  c->pos + c->buf_size);
		*kind = ITEM_DATA;
	}
	*len = end - c->pos;
	c->pos = end;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Slots and sink requests                                            */
/* ------------------------------------------------------------------ */

static void slot_put(struct slot *s)
{
	struct copy *c = s->c;

	if (--s->pending)
		return;
	c->free[c->nfree++] = s;
}

static const char *op_name(enum op_kind k)
{
	switch (k) {
	case OP_WRITE:
		return "write";
	case OP_ZERO:
		return "write-zeroes";
	case OP_READ:
		return "read";
	case OP_STATUS:
		return "block status";
	}
	return "?";
}

static void verify_compare(struct slot *s);
static void send_zero(struct slot *s, uint64_t off, uint64_t len, void *buf);
static void hole_walk(struct op *op, int err);
static void hole_status(struct slot *s, struct op *op, uint64_t off,
			uint64_t end);

static void op_done(struct sxm_sink_req *req, int err)
{
	struct op *op = (struct op *)req;
	struct slot *s = op->slot;
	struct copy *c = s->c;
	struct sxm_copy_stats *st = &c->res->stats;

	if (op->kind == OP_STATUS) {
		hole_walk(op, err);
		slot_put(s);
		return;
	}
	if (err) {
		record_error(c, err,
			     "sink %s: %s at 0x%" PRIx64 " (%" PRIu64
			     " bytes): %s",
			     sxm_sink_name(c->sink), op_name(op->kind),
			     op->off, op->len, strerror(-err));
		mark_dirty(c, op->off, op->len);
		s->failed = true;
	} else if (op->walk && op->off + op->len < op->end) {
		/* Zeroed one extent of a hole: on to the next. */
		st->bytes_zeroed += op->len;
		st->bytes_done += op->len;
		if (c->stopping)
			mark_dirty(c, op->off + op->len,
				   op->end - op->off - op->len);
		else
			hole_status(s, op, op->off + op->len, op->end);
	} else if (op->kind == OP_WRITE) {
		st->bytes_written += op->len;
		st->bytes_done += op->len;
	} else if (op->kind == OP_ZERO) {
		st->bytes_zeroed += op->len;
		st->bytes_done += op->len;
	}
	if (op->kind == OP_READ && s->pending == 1 && !s->failed)
		verify_compare(s);
	slot_put(s);
}

/* Queue one sink request for [off, off + len) of slot @s. */
static void op_start(struct slot *s, enum op_kind kind, uint64_t off,
		     uint64_t len, void *buf)
{
	struct copy *c = s->c;
	struct sxm_sink *sink = c->sink;
	struct op *op = &s->ops[s->nops++];
	int r;

	op->req.done = op_done;
	op->slot = s;
	op->off = off;
	op->len = len;
	op->kind = kind;
	op->walk = false;
	s->pending++;
	switch (kind) {
	case OP_WRITE:
		r = sink->ops->pwrite(sink, buf, len, off, 0, &op->req);
		break;
	case OP_ZERO:
		r = sink->ops->zero(sink, len, off, 0, &op->req);
		break;
	case OP_STATUS:
		r = sink->ops->extent(sink, len, off, &op->ext_len,
				      &op->ext_zero, &op->req);
		break;
	default:
		r = sink->ops->pread(sink, buf, len, off, &op->req);
		break;
	}
	if (r)
		op_done(&op->req, r);
}

/* Zero bytes: skipped on a zeroed sink, else write-zeroes or written. */
static void send_zero(struct slot *s, uint64_t off, uint64_t len, void *buf)
{
	struct copy *c = s->c;
	struct sxm_copy_stats *st = &c->res->stats;

	if (c->o->sink_is_zero) {
		st->bytes_skipped += len;
		st->bytes_done += len;
	} else if (c->sink->caps & SXM_SINK_CAN_ZERO) {
		op_start(s, OP_ZERO, off, len, NULL);
	} else {
		op_start(s, OP_WRITE, off, len, buf);
	}
}

/*
 * A hole of the source, [off, end), on a sink that can describe its
 * extents: one extent at a time, skip what already reads as zeroes and
 * zero the rest.  One request at a time per hole, reusing @op (its
 * previous request is done).
 */
static void hole_status(struct slot *s, struct op *op, uint64_t off,
			uint64_t end)
{
	s->nops = op - s->ops;
	op_start(s, OP_STATUS, off, end - off, NULL);
	op->walk = true;
	op->end = end;
}

static void hole_walk(struct op *op, int err)
{
	struct slot *s = op->slot;
	struct copy *c = s->c;
	struct sxm_copy_stats *st = &c->res->stats;
	uint64_t off = op->off, end = op->end, n;

	n = err ? 0 : MIN(op->ext_len, end - off);
	if (err)
		sxm_debug("sink %s: block status at 0x%" PRIx64 ": %s",
			  sxm_sink_name(c->sink), off, strerror(-err));
	if (!n || c->stopping) {
		/* No answer (or stopping): zero all that is left. */
		s->nops = op - s->ops;
		if (!c->stopping)
			send_zero(s, off, end - off, c->zeroes);
		else
			mark_dirty(c, off, end - off);
		return;
	}
	if (op->ext_zero) {
		st->bytes_skipped += n;
		st->bytes_done += n;
		if (off + n < end)
			hole_status(s, op, off + n, end);
		return;
	}
	s->nops = op - s->ops;
	send_zero(s, off, n, c->zeroes);
	if (off + n < end && s->nops) {
		op->walk = true;
		op->end = end;
	}
}

/* The source data of slot @s is in: send it, zero pieces as zeroes. */
static void send_data(struct slot *s)
{
	struct copy *c = s->c;
	uint64_t start = 0, i;
	int zero = -1;

	for (i = 0; i < s->len; i += SXM_COPY_ZERO_GRAIN) {
		uint64_t n = MIN(SXM_COPY_ZERO_GRAIN, s->len - i);
		int z = is_zero((char *)s->buf + i, n);

		if (zero >= 0 && z != zero) {
			if (zero)
				send_zero(s, s->off + start, i - start,
					  (char *)s->buf + start);
			else
				op_start(s, OP_WRITE, s->off + start,
					 i - start, (char *)s->buf + start);
			start = i;
		}
		zero = z;
	}
	if (zero)
		send_zero(s, s->off + start, s->len - start,
			  (char *)s->buf + start);
	else
		op_start(s, OP_WRITE, s->off + start, s->len - start,
			 (char *)s->buf + start);
	(void)c;
}

/* ------------------------------------------------------------------ */
/* Source reads                                                       */
/* ------------------------------------------------------------------ */

static int read_more(struct slot *s);

static void read_done(struct sxm_engine_req *req, ssize_t res)
{
	struct slot *s = (struct slot *)((char *)req -
					  offsetof(struct slot, rreq));
	struct copy *c = s->c;
	int err = 0;

	if (res < 0) {
		err = res;
	} else if (res == 0) {
		err = -EIO;	/* the source shrank under us */
	} else {
		c->res->stats.bytes_read += MIN((uint64_t)res,
						s->len - s->got);
		s->got += res;
		if (s->got < s->len) {
			/* Short read: ask for the rest, if aligned. */
			if (s->got % c->src->align)
				err = -EIO;
			else
				err = read_more(s);
			if (!err)
				return;
		}
	}
	if (err) {
		record_error(c, err,
			     "source %s: read at 0x%" PRIx64 " (%" PRIu64
			     " bytes): %s",
			     c->src->path, s->off + s->got, s->len - s->got,
			     res == 0 ? "unexpected end of file" :
			     strerror(-err));
		mark_dirty(c, s->off, s->len);
		s->failed = true;
		slot_put(s);
		return;
	}
	if (c->verify) {
		if (s->pending == 1)
			verify_compare(s);
	} else {
		send_data(s);
	}
	slot_put(s);
}

static int read_more(struct slot *s)
{
	struct copy *c = s->c;
	uint64_t len = ROUND_UP(s->len - s->got, c->src->align);

	return c->eng->ops->read(c->eng, (char *)s->buf + s->got,
				 s->buf_index, len, s->off + s->got, &s->rreq);
}

/* ------------------------------------------------------------------ */
/* Verification                                                       */
/* ------------------------------------------------------------------ */

/* Both sides of slot @s are in: compare them region by region. */
static void verify_compare(struct slot *s)
{
	struct copy *c = s->c;
	struct sxm_copy_stats *st = &c->res->stats;
	uint64_t pos = 0;

	while (pos < s->len) {
		uint64_t off = s->off + pos;
		uint64_t rend = ROUND_DOWN(off, c->region_size) +
				c->region_size;
		uint64_t n = MIN(rend - off, s->len - pos);
		const char *b = (char *)s->buf2 + pos;
		bool same;

		if (s->kind == ITEM_HOLE)
			same = is_zero(b, n);
		else
			same = !memcmp((char *)s->buf + pos, b, n);
		if (!same) {
			uint64_t i = 0;

			if (s->kind == ITEM_HOLE)
				while (!b[i])
					i++;
			else
				while (((char *)s->buf)[pos + i] == b[i])
					i++;
			st->bytes_differ += n;
			mark_dirty(c, off, n);
			if (off + i < c->first_diff)
				c->first_diff = off + i;
		}
		st->bytes_done += n;
		pos += n;
	}
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */
/* ------------------------------------------------------------------ */

static void refill_tokens(struct copy *c, double now)
{
	double burst = c->buf_size;

	if (!c->o->rate_limit)
		return;
	c->tokens += (now - c->refilled) * c->o->rate_limit;
	if (c->tokens > burst)
		c->tokens = burst;
	c->refilled = now;
}

/* Start items while slots, reads and the rate limit allow. */
static void fill(struct copy *c)
{
	if (c->o->cancel && *c->o->cancel)
		record_error(c, -EINTR, "interrupted");
	while (c->nfree && !c->stopping && !c->plan_done) {
		enum item_kind kind = ITEM_DATA;
		struct slot *s;
		uint64_t off = 0, len = 0;
		int r;

		if (c->eng->in_flight >= c->depth)
			break;
		if (c->o->rate_limit) {
			refill_tokens(c, now_s());
			if (c->tokens < 0)
				break;
		}
		r = plan(c, &kind, &off, &len);
		if (r < 0) {
			record_error(c, r, "source %s: finding data at 0x%" PRIx64 ": %s",
				     c->src->path, c->pos, strerror(-r));
			break;
		}
		if (!r)
			break;

		s = c->free[--c->nfree];
		s->kind = kind;
		s->off = off;
		s->len = len;
		s->got = 0;
		s->nops = 0;
		s->failed = false;
		s->pending = 1;	/* held until everything is queued */

		if (kind == ITEM_DATA) {
			if (c->o->rate_limit)
				c->tokens -= len;
			s->pending++;
			r = read_more(s);
			if (r)
				read_done(&s->rreq, r);
		} else if (c->verify) {
			op_start(s, OP_READ, off, len, s->buf2);
		} else if (!c->o->sink_is_zero &&
			   (c->sink->caps & SXM_SINK_CAN_EXTENTS)) {
			/* The sink may have zeroes there already. */
			hole_status(s, &s->ops[0], off, off + len);
		} else {
			send_zero(s, off, len, c->zeroes);
		}
		if (kind == ITEM_DATA && c->verify && !s->failed)
			op_start(s, OP_READ, off, len, s->buf2);
		slot_put(s);
	}
}

static void tick(struct copy *c, bool last)
{
	struct sxm_copy_stats *st = &c->res->stats;
	unsigned int every = c->o->progress_ms ? c->o->progress_ms : 1000;
	double now = now_s();
	double dt = now - c->last_tick;

	if (!last && dt * 1000 < every)
		return;
	st->elapsed = now - c->t0;
	if (dt > 0) {
		double inst = (st->bytes_done - c->last_done) / dt;

		st->rate = st->rate ? 0.5 * st->rate + 0.5 * inst : inst;
	}
	if (last && st->elapsed > 0)
		st->rate = st->bytes_done / st->elapsed;
	if (st->rate > 0)
		st->eta = (st->bytes_total - st->bytes_done) / st->rate;
	else
		st->eta = -1;
	c->last_tick = now;
	c->last_done = st->bytes_done;
	if (c->o->progress)
		c->o->progress(c->o->progress_opaque, st);
}

static int poll_timeout(struct copy *c)
{
	unsigned int every = c->o->progress_ms ? c->o->progress_ms : 1000;
	double now = now_s();
	double t = c->last_tick + every / 1000.0 - now;

	if (c->o->rate_limit && c->tokens < 0 && !c->stopping &&
	    !c->plan_done && c->nfree) {
		double wait = -c->tokens / c->o->rate_limit;

		if (wait < t)
			t = wait;
	}
	if (t < 0)
		t = 0;
	return (int)(t * 1000) + 1;
}

static void run(struct copy *c)
{
	struct pollfd fds[1 + SXM_SINK_MAX_FDS];
	int n, r, timeout;

	for (;;) {
		fill(c);
		r = c->eng->ops->submit(c->eng);
		if (r)
			record_error(c, r, "source %s: submitting reads: %s",
				     c->src->path, strerror(-r));
		if (c->nfree == c->nslots && (c->plan_done || c->stopping))
			break;

		timeout = poll_timeout(c);
		fds[0].fd = c->eng->event_fd;
		fds[0].events = POLLIN;
		fds[0].revents = 0;
		n = c->sink->ops->poll_fds(c->sink, fds + 1, SXM_SINK_MAX_FDS,
					   &timeout);
		if (n < 0)
			n = 0;
		r = poll(fds, 1 + n, timeout);
		if (r < 0) {
			/*
			 * Requests in flight point into our slots, so keep
			 * waiting for them; only stop starting new ones.
			 */
			if (errno != EINTR) {
				record_error(c, -errno, "poll: %s",
					     strerror(errno));
				usleep(1000);
			}
			for (r = 0; r < 1 + n; r++)
				fds[r].revents = 0;
		}
		if (fds[0].revents & POLLIN)
			c->eng->ops->reap(c->eng);
		c->sink->ops->process(c->sink, fds + 1, n);

		if (c->o->cancel && *c->o->cancel)
			record_error(c, -EINTR, "interrupted");
		tick(c, false);
	}
	if (c->stopping && !c->plan_done)
		mark_dirty_from(c, c->pos);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                       */
/* ------------------------------------------------------------------ */

int sxm_copy_check_opts(const struct sxm_copy_opts *o, char *err,
			size_t errlen)
{
	if (o->region_size && (!is_pow2(o->region_size) ||
			       o->region_size < SXM_COPY_MIN_REGION)) {
		snprintf(err, errlen,
			 "region size %" PRIu64 " must be a power of two of at least %u",
			 o->region_size, SXM_COPY_MIN_REGION);
		return -EINVAL;
	}
	if (o->buf_size && (!is_pow2(o->buf_size) ||
			    o->buf_size < SXM_COPY_MIN_BUF_SIZE ||
			    o->buf_size > SXM_COPY_MAX_BUF_SIZE)) {
		snprintf(err, errlen,
			 "buffer size %zu must be a power of two from %u to %u",
			 o->buf_size, SXM_COPY_MIN_BUF_SIZE,
			 SXM_COPY_MAX_BUF_SIZE);
		return -EINVAL;
	}
	if (o->nr_bufs > SXM_COPY_MAX_BUFS ||
	    o->queue_depth > SXM_COPY_MAX_BUFS) {
		snprintf(err, errlen, "queue depth must be at most %u",
			 SXM_COPY_MAX_BUFS);
		return -EINVAL;
	}
	return 0;
}

static void copy_teardown(struct copy *c)
{
	sxm_engine_destroy(c->eng);
	if (c->pool)
		munmap(c->pool, (size_t)c->nbufs * c->buf_size);
	if (c->zeroes)
		munmap(c->zeroes, c->buf_size);
	free(c->bufs);
	free(c->slots);
	free(c->free);
	free(c->op_pool);
}

static int copy_setup(struct copy *c, char *err, size_t errlen)
{
	const struct sxm_copy_opts *o = c->o;
	uint64_t want, fill, r, end, run;
	size_t pool;
	unsigned int i;
	int e;

	e = sxm_copy_check_opts(o, err, errlen);
	if (e)
		return e;
	c->region_size = o->region_size ? o->region_size :
			 SXM_COPY_DEFAULT_REGION;
	c->region_shift = __builtin_ctzll(c->region_size);
	c->nr_regions = sxm_regions(c->src->size, c->region_size);
	c->want = o->bitmap;
	c->grain = MAX(c->src->align, c->sink->block_min);
	if (c->region_size < c->grain) {
		snprintf(err, errlen,
			 "region size %" PRIu64 " is smaller than the %u-byte blocks of the source or sink",
			 c->region_size, c->grain);
		return -EINVAL;
	}

	c->buf_size = o->buf_size ? o->buf_size : SXM_COPY_DEFAULT_BUF_SIZE;
	if (c->buf_size > c->sink->block_max) {
		c->buf_size = c->sink->block_max;
		while (!is_pow2(c->buf_size))
			c->buf_size &= c->buf_size - 1;
		sxm_debug("buffers cut to %zu bytes: the sink's largest request",
			  c->buf_size);
	}
	if (c->buf_size < c->grain || c->buf_size % c->grain) {
		snprintf(err, errlen,
			 "buffer size %zu does not suit the %u-byte blocks of the source or sink",
			 c->buf_size, c->grain);
		return -EINVAL;
	}
	c->nbufs = o->nr_bufs ? o->nr_bufs : SXM_COPY_DEFAULT_BUFS;
	/*
	 * No more buffers than the runs of regions to move fill, a buffer
	 * at most each: a pool is faulted in, locked and pinned for the
	 * engine at each copy, and a batch of one region must not pay for
	 * megabytes of it.
	 */
	want = 0;
	fill = 0;
	for (r = next_wanted(c, 0, true); r < c->nr_regions;
	     r = next_wanted(c, end, true)) {
		/* A run of wanted regions: its items are a buffer each. */
		end = next_wanted(c, r, false);
		run = MIN(end << c->region_shift, c->src->size) -
		      (r << c->region_shift);
		want += run;
		fill += (run + c->buf_size - 1) / c->buf_size;
	}
	c->want_bytes = want;
	if (!fill)
		fill = 1;
	if (c->verify)
		fill *= 2;
	if (c->nbufs > fill)
		c->nbufs = fill;
	/* A verify's slots hold two buffers each, source and sink. */
	if (c->verify)
		c->nbufs &= ~1u;
	if (c->verify && c->nbufs < 2)
		c->nbufs = 2;
	c->nslots = c->verify ? c->nbufs / 2 : c->nbufs;
	c->depth = o->queue_depth ? o->queue_depth : c->nslots;
	if (c->depth > c->nslots)
		c->depth = c->nslots;
	c->ops_per_slot = c->buf_size / SXM_COPY_ZERO_GRAIN + 2;

	pool = (size_t)c->nbufs * c->buf_size;
	c->pool = mmap(NULL, pool, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c->zeroes = mmap(NULL, c->buf_size, PROT_READ,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->pool == MAP_FAILED)
		c->pool = NULL;
	if (c->zeroes == MAP_FAILED)
		c->zeroes = NULL;
	c->bufs = calloc(c->nbufs, sizeof(*c->bufs));
	c->slots = calloc(c->nslots, sizeof(*c->slots));
	c->free = calloc(c->nslots, sizeof(*c->free));
	c->op_pool = calloc((size_t)c->nslots * c->ops_per_slot,
			    sizeof(*c->op_pool));
	if (!c->pool || !c->zeroes || !c->bufs || !c->slots || !c->free ||
	    !c->op_pool) {
		snprintf(err, errlen, "copy: %zu bytes of buffers: %s", pool,
			 strerror(ENOMEM));
		return -ENOMEM;
	}
	for (i = 0; i < c->nbufs; i++)
		c->bufs[i] = (char *)c->pool + (size_t)i * c->buf_size;
	for (i = 0; i < c->nslots; i++) {
		struct slot *s = &c->slots[i];
		unsigned int b = c->verify ? 2 * i : i;

		s->c = c;
		s->buf = c->bufs[b];
		s->buf_index = b;
		s->buf2 = c->verify ? c->bufs[b + 1] : NULL;
		s->rreq.done = read_done;
		s->ops = &c->op_pool[(size_t)i * c->ops_per_slot];
		c->free[c->nfree++] = s;
	}

	return sxm_engine_create(o->engine, c->src->fd, c->depth, c->bufs,
				 c->nbufs, c->buf_size, &c->eng, err, errlen);
}

static int copy_main(struct sxm_source *src, struct sxm_sink *sink,
		     const struct sxm_copy_opts *o,
		     struct sxm_copy_result *res, bool verify)
{
	struct copy c = {
		.src = src,
		.sink = sink,
		.o = o,
		.res = res,
		.verify = verify,
	};
	struct sxm_copy_stats *st = &res->stats;
	int err;

	memset(res, 0, sizeof(*res));
	err = copy_setup(&c, res->errmsg, sizeof(res->errmsg));
	if (!err) {
		res->nr_regions = c.nr_regions;
		res->dirty = sxm_map_alloc(c.nr_regions);
		if (!res->dirty) {
			err = -ENOMEM;
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "copy: dirty bitmap: %s", strerror(ENOMEM));
		}
	}
	if (err) {
		res->error = err;
		copy_teardown(&c);
		return err;
	}
	if (verify && !(sink->caps & SXM_SINK_CAN_READ)) {
		copy_teardown(&c);
		res->error = -EOPNOTSUPP;
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "sink %s: cannot be read back", sxm_sink_name(sink));
		return res->error;
	}

	st->bytes_total = c.want_bytes;
	st->buffer_bytes = (uint64_t)c.nbufs * c.buf_size;
	st->eta = -1;
	c.t0 = c.last_tick = c.refilled = now_s();
	sxm_debug("%s %" PRIu64 " bytes with %s: %u x %zu-byte buffers, %u reads in flight%s",
		  verify ? "verifying" : "copying", st->bytes_total,
		  c.eng->ops->name, c.nbufs, c.buf_size, c.depth,
		  c.src->direct ? ", O_DIRECT" : "");

	c.first_diff = UINT64_MAX;
	run(&c);
	if (c.first_diff != UINT64_MAX && !res->error) {
		res->error = -EILSEQ;
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "sink %s: data differs from the source at 0x%" PRIx64,
			 sxm_sink_name(sink), c.first_diff);
	}

	if (!verify && !o->no_flush && c.nfree == c.nslots) {
		err = sxm_sink_flush_sync(sink);
		if (err) {
			/* Nothing written can be trusted to be there. */
			mark_dirty_from(&c, 0);
			record_error(&c, err, "sink %s: flush: %s",
				     sxm_sink_name(sink), strerror(-err));
		}
	}
	tick(&c, true);
	copy_teardown(&c);
	res->nr_dirty = sxm_map_weight(res->dirty, res->nr_regions);
	if (!res->error && res->nr_dirty) {
		/* Cannot happen, but never claim success with work left. */
		res->error = -EIO;
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "copy: %" PRIu64 " regions left dirty", res->nr_dirty);
	}
	return res->error;
}

int sxm_copy(struct sxm_source *src, struct sxm_sink *sink,
	     const struct sxm_copy_opts *o, struct sxm_copy_result *res)
{
	return copy_main(src, sink, o, res, false);
}

int sxm_copy_verify(struct sxm_source *src, struct sxm_sink *sink,
		    const struct sxm_copy_opts *o,
		    struct sxm_copy_result *res)
{
	struct sxm_copy_opts vo = *o;

	vo.sink_is_zero = false;
	return copy_main(src, sink, &vo, res, true);
}

void sxm_copy_result_free(struct sxm_copy_result *res)
{
	free(res->dirty);
	res->dirty = NULL;
}
