// SPDX-License-Identifier: GPL-2.0
/*
 * Sinks: picking the implementation for a URI, and the few helpers every
 * caller needs on top of the ops table (sink.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sxm.h"
#include "io/sink.h"

static const struct sxm_sink_ops *const sink_impls[] = {
	&sxm_sink_nbd_ops,
	&sxm_sink_file_ops,
};

void sxm_sink_new_epoch(struct sxm_sink *s)
{
	static uint64_t last;

	__atomic_store_n(&s->epoch, __atomic_add_fetch(&last, 1,
						       __ATOMIC_RELAXED),
			 __ATOMIC_RELEASE);
}

int sxm_sink_refresh(struct sxm_sink *s)
{
	return s->ops->refresh ? s->ops->refresh(s) : 0;
}

int sxm_sink_open(const char *uri, const struct sxm_sink_opts *o,
		  struct sxm_sink **out, char *err, size_t errlen)
{
	const struct sxm_sink_ops *ops = NULL;
	struct sxm_sink *s;
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(sink_impls); i++) {
		if (sink_impls[i]->match(uri)) {
			ops = sink_impls[i];
			break;
		}
	}
	if (!ops) {
		snprintf(err, errlen,
			 "sink %s: unsupported URI (expected nbd://, nbds://, nbd+unix://, nbds+unix:// or file:PATH)",
			 uri);
		return -EINVAL;
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		goto out_nomem;
	s->ops = ops;
	s->uri = strdup(uri);
	s->name = strdup(uri);
	if (!s->uri || !s->name)
		goto out_nomem;

	r = ops->open(s, o, err, errlen);
	if (!r)
		sxm_sink_new_epoch(s);
	if (r) {
		free(s->uri);
		free(s->name);
		free(s);
		return r;
	}
	*out = s;
	return 0;

out_nomem:
	if (s) {
		free(s->uri);
		free(s->name);
		free(s);
	}
	snprintf(err, errlen, "sink %s: %s", uri, strerror(ENOMEM));
	return -ENOMEM;
}

void sxm_sink_close(struct sxm_sink *s)
{
	if (!s)
		return;
	s->ops->close(s);
	free(s->uri);
	free(s->name);
	free(s);
}

void sxm_sink_done_run(struct sxm_sink *s, struct sxm_sink_done_list *l)
{
	struct sxm_sink_req *req;

	while ((req = l->head)) {
		l->head = req->next;
		if (!l->head)
			l->tail = &l->head;
		s->in_flight--;
		req->done(req, req->err);
	}
}

int sxm_sink_wait(struct sxm_sink *s, int timeout_ms)
{
	struct pollfd fds[SXM_SINK_MAX_FDS];
	int n, r;

	n = s->ops->poll_fds(s, fds, ARRAY_SIZE(fds), &timeout_ms);
	if (n < 0)
		return n;
	if (n > 0 || timeout_ms != 0) {
		r = poll(fds, n, timeout_ms);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r < 0)
			return 0;
	}
	return s->ops->process(s, fds, n);
}

/*
 * A lost connection, as ->process() reports it, is no reason to stop
 * waiting: the requests it had out complete, with errors, and the others
 * go on.  Leaving then would leave requests queued that point into the
 * caller's memory.
 */
static bool wait_failed(int r)
{
	return r && r != -ENOTCONN;
}

int sxm_sink_drain(struct sxm_sink *s)
{
	int r;

	while (s->in_flight) {
		r = sxm_sink_wait(s, -1);
		if (wait_failed(r))
			return r;
	}
	return 0;
}

struct sync_req {
	struct sxm_sink_req req;
	bool done;
	int err;
};

static void sync_done(struct sxm_sink_req *req, int err)
{
	struct sync_req *sr = (struct sync_req *)req;

	sr->done = true;
	sr->err = err;
}

int sxm_sink_flush_sync(struct sxm_sink *s)
{
	struct sync_req sr = { .req.done = sync_done };
	int r;

	r = s->ops->flush(s, &sr.req);
	if (r)
		return r;
	while (!sr.done) {
		r = sxm_sink_wait(s, -1);
		if (wait_failed(r) && !sr.done)
			return r;
	}
	return sr.err;
}

int sxm_sink_check_size(const struct sxm_sink *s,
			const struct sxm_sink_opts *o, const char *what,
			char *err, size_t errlen)
{
	char have[32], need[32];

	if (s->size >= o->min_size)
		return 0;
	snprintf(err, errlen,
		 "sink %s: %s is %s (%" PRIu64 " bytes), smaller than the source's %s (%" PRIu64 " bytes)",
		 s->name, what, fmt_size(s->size, have, sizeof(have)), s->size,
		 fmt_size(o->min_size, need, sizeof(need)), o->min_size);
	return -ENOSPC;
}

const char *sxm_sink_caps_str(unsigned int caps, char *buf, size_t len)
{
	static const struct {
		unsigned int bit;
		const char *word;
	} words[] = {
		{ SXM_SINK_CAN_FLUSH, "flush" },
		{ SXM_SINK_CAN_FUA, "fua" },
		{ SXM_SINK_CAN_ZERO, "zero" },
		{ SXM_SINK_CAN_FAST_ZERO, "fast-zero" },
		{ SXM_SINK_CAN_TRIM, "trim" },
		{ SXM_SINK_MULTI_CONN, "multi-conn" },
		{ SXM_SINK_ZERO_INIT, "zero-init" },
		{ SXM_SINK_CAN_READ, "read" },
		{ SXM_SINK_READ_ONLY, "read-only" },
		{ SXM_SINK_CAN_EXTENTS, "extents" },
	};
	size_t i, used = 0;

	if (len)
		buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(words); i++) {
		int n;

		if (!(caps & words[i].bit))
			continue;
		n = snprintf(buf + used, len - used, "%s%s", used ? " " : "",
			     words[i].word);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += n;
	}
	return buf;
}
