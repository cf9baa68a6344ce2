// SPDX-License-Identifier: GPL-2.0
/*
 * libaio engine, for kernels without io_uring or with it disabled
 * (kernel.io_uring_disabled).  Each iocb carries the eventfd the caller
 * polls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libaio.h>

#include "base/sxm.h"
#include "io/engine.h"

struct aio_engine {
	io_context_t ctx;
	struct iocb *iocbs;	/* depth of them */
	struct iocb **free;	/* stack of unused iocbs */
	unsigned int nfree;
	struct iocb **queued;	/* prepared, not yet submitted */
	unsigned int nqueued;
	struct io_event *events;
};

static void aio_free(struct aio_engine *a)
{
	free(a->iocbs);
	free(a->free);
	free(a->queued);
	free(a->events);
	free(a);
}

static int aio_init(struct sxm_engine *e, char *err, size_t errlen)
{
	struct aio_engine *a;
	unsigned int i;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a)
		goto out_nomem;
	a->iocbs = calloc(e->depth, sizeof(*a->iocbs));
	a->free = calloc(e->depth, sizeof(*a->free));
	a->queued = calloc(e->depth, sizeof(*a->queued));
	a->events = calloc(e->depth, sizeof(*a->events));
	if (!a->iocbs || !a->free || !a->queued || !a->events)
		goto out_nomem;
	for (i = 0; i < e->depth; i++)
		a->free[a->nfree++] = &a->iocbs[i];

	r = io_setup(e->depth, &a->ctx);
	if (r < 0) {
		snprintf(err, errlen, "libaio: io_setup: %s", strerror(-r));
		aio_free(a);
		return r;
	}
	e->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->event_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "libaio: eventfd: %s", strerror(-r));
		io_destroy(a->ctx);
		aio_free(a);
		return r;
	}
	e->priv = a;
	sxm_debug("libaio: depth %u, %u buffers of %zu bytes", e->depth,
		  e->nbufs, e->buf_size);
	return 0;

out_nomem:
	if (a)
		aio_free(a);
	snprintf(err, errlen, "libaio: %s", strerror(ENOMEM));
	return -ENOMEM;
}

static void aio_exit(struct sxm_engine *e)
{
	struct aio_engine *a = e->priv;
	unsigned int sent = e->in_flight - a->nqueued;

	while (sent) {
		int n = io_getevents(a->ctx, 1, e->depth, a->events, NULL);

		if (n < 0 && n != -EINTR)
			break;
		if (n > 0)
			sent -= n;
	}
	io_destroy(a->ctx);
	close(e->event_fd);
	aio_free(a);
}

static int aio_read(struct sxm_engine *e, void *buf, unsigned int buf_index,
		    size_t len, uint64_t off, struct sxm_engine_req *req)
{
	struct aio_engine *a = e->priv;
	struct iocb *iocb;

	if (!a->nfree)
		return -EBUSY;
	iocb = a->free[--a->nfree];
	io_prep_pread(iocb, e->fd, buf, len, off);
	io_set_eventfd(iocb, e->event_fd);
	iocb->data = req;
	a->queued[a->nqueued++] = iocb;
	e->in_flight++;
	return 0;
}

static int aio_submit(struct sxm_engine *e)
{
	struct aio_engine *a = e->priv;
	int r;

	while (a->nqueued) {
		r = io_submit(a->ctx, a->nqueued, a->queued);
		if (r == -EAGAIN || r == -EINTR)
			return 0;	/* try again on the next call */
		if (r < 0)
			return r;
		memmove(a->queued, a->queued + r,
			(a->nqueued - r) * sizeof(*a->queued));
		a->nqueued -= r;
	}
	return 0;
}

static int aio_reap(struct sxm_engine *e)
{
	struct aio_engine *a = e->priv;
	struct timespec zero = { 0, 0 };
	int n, i, total = 0;

	sxm_engine_clear_event(e);
	do {
		n = io_getevents(a->ctx, 0, e->depth, a->events, &zero);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			struct iocb *iocb = a->events[i].obj;
			struct sxm_engine_req *req = a->events[i].data;
			ssize_t res = (long)a->events[i].res;

			a->free[a->nfree++] = iocb;
			e->in_flight--;
			req->done(req, res);
		}
		total += n;
	} while (n == (int)e->depth);
	return total;
}

const struct sxm_engine_ops sxm_engine_aio_ops = {
	.name = "aio",
	.init = aio_init,
	.exit = aio_exit,
	.read = aio_read,
	.submit = aio_submit,
	.reap = aio_reap,
};
