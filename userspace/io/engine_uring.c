// SPDX-License-Identifier: GPL-2.0
/*
 * io_uring engine: the caller's buffers registered as fixed buffers (so
 * O_DIRECT reads pin nothing per request), completions signalled on an
 * eventfd the caller polls.
 *
 * No IORING_SETUP_COOP_TASKRUN: the caller sleeps in poll(2), and with
 * cooperative task running a completion would wait for it to wake up by
 * itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>

#include "base/sxm.h"
#include "io/engine.h"

struct uring_engine {
	struct io_uring ring;
	unsigned int queued;	/* prepared, not yet submitted */
};

static void uring_register(struct sxm_engine *e, struct uring_engine *u)
{
	struct iovec *iov;
	unsigned int i;
	int r;

	iov = calloc(e->nbufs, sizeof(*iov));
	if (!iov)
		return;
	for (i = 0; i < e->nbufs; i++) {
		iov[i].iov_base = e->bufs[i];
		iov[i].iov_len = e->buf_size;
	}
	r = io_uring_register_buffers(&u->ring, iov, e->nbufs);
	free(iov);
	if (r < 0) {
		sxm_debug("io_uring: cannot register buffers (%s); using plain reads",
			  strerror(-r));
		return;
	}
	e->registered = true;
}

static int uring_init(struct sxm_engine *e, char *err, size_t errlen)
{
	struct uring_engine *u;
	int r;

	u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "io_uring: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	r = io_uring_queue_init(e->depth, &u->ring, 0);
	if (r < 0) {
		snprintf(err, errlen, "io_uring: setup: %s", strerror(-r));
		goto out_free;
	}
	e->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->event_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "io_uring: eventfd: %s", strerror(-r));
		goto out_exit;
	}
	r = io_uring_register_eventfd(&u->ring, e->event_fd);
	if (r < 0) {
		snprintf(err, errlen, "io_uring: register eventfd: %s",
			 strerror(-r));
		goto out_close;
	}
	uring_register(e, u);
	e->priv = u;
	sxm_debug("io_uring: depth %u, %u %s buffers of %zu bytes", e->depth,
		  e->nbufs, e->registered ? "fixed" : "plain", e->buf_size);
	return 0;

out_close:
	close(e->event_fd);
	e->event_fd = -1;
out_exit:
	io_uring_queue_exit(&u->ring);
out_free:
	free(u);
	return r;
}

static void uring_exit(struct sxm_engine *e)
{
	struct uring_engine *u = e->priv;
	struct io_uring_cqe *cqe;

	if (u->queued)
		io_uring_submit(&u->ring);
	while (e->in_flight && !io_uring_wait_cqe(&u->ring, &cqe)) {
		io_uring_cqe_seen(&u->ring, cqe);
		e->in_flight--;
	}
	io_uring_queue_exit(&u->ring);
	close(e->event_fd);
	free(u);
}

static int uring_read(struct sxm_engine *e, void *buf, unsigned int buf_index,
		      size_t len, uint64_t off, struct sxm_engine_req *req)
{
	struct uring_engine *u = e->priv;
	struct io_uring_sqe *sqe;
	int r;

	if (e->in_flight >= e->depth)
		return -EBUSY;
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		r = io_uring_submit(&u->ring);
		if (r < 0)
			return r;
		u->queued = 0;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;
	}
	if (e->registered)
		io_uring_prep_read_fixed(sqe, e->fd, buf, len, off, buf_index);
	else
		io_uring_prep_read(sqe, e->fd, buf, len, off);
	io_uring_sqe_set_data(sqe, req);
	u->queued++;
	e->in_flight++;
	return 0;
}

static int uring_submit(struct sxm_engine *e)
{
	struct uring_engine *u = e->priv;
	int r;

	if (!u->queued)
		return 0;
	r = io_uring_submit(&u->ring);
	if (r == -EAGAIN || r == -EBUSY || r == -EINTR)
		return 0;	/* the kernel takes them on the next call */
	if (r < 0)
		return r;
	u->queued = 0;
	return 0;
}

static int uring_reap(struct sxm_engine *e)
{
	struct uring_engine *u = e->priv;
	struct io_uring_cqe *cqe;
	int n = 0;

	sxm_engine_clear_event(e);
	while (!io_uring_peek_cqe(&u->ring, &cqe)) {
		struct sxm_engine_req *req = io_uring_cqe_get_data(cqe);
		ssize_t res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		e->in_flight--;
		n++;
		req->done(req, res);
	}
	return n;
}

const struct sxm_engine_ops sxm_engine_uring_ops = {
	.name = "uring",
	.init = uring_init,
	.exit = uring_exit,
	.read = uring_read,
	.submit = uring_submit,
	.reap = uring_reap,
};
