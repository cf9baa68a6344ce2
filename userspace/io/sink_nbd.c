// SPDX-License-Identifier: GPL-2.0
/*
 * NBD sink: libnbd's asynchronous API, one non-blocking handle per
 * connection, all driven from the caller's poll loop.
 *
 * URIs are handed to nbd_connect_uri() whole, so everything it takes
 * works: nbd://host[:port]/export, nbd+unix:///export?socket=PATH, and
 * with TLS nbds:// and nbds+unix:// with ?tls-psk-file=FILE or
 * ?tls-certificates=DIR, and the TLS user name as user@host (default: the
 * effective user's name).  Reading those local files from the URI is
 * allowed: the URI comes from the operator.
 *
 * When the server advertises multi-conn, up to four connections are
 * opened and each request goes to the one with the fewest in flight; a
 * flush on any of them then covers writes completed on all of them (the
 * promise multi-conn makes).  Without multi-conn there is one.
 *
 * A connection is lost when libnbd calls its handle dead (an error, such
 * as a reset) or closed (the server hung up cleanly: a server killed with
 * nothing unread in its socket sends FIN, not RST, and libnbd then says
 * "closed", not "dead"), when a request on it fails with ENOTCONN, EPIPE,
 * ECONNRESET or ESHUTDOWN, or when an idle one turns out readable (a
 * server never speaks unasked).  A lost connection takes no more requests
 * and is closed once nothing is in flight on it; ->process() says
 * -ENOTCONN once.  When none is left, the next request connects again (as
 * many connections as at first) to the same export: same size, the same
 * capabilities and block sizes, and a new epoch (sink.h) tells the
 * sink's user that what it wrote should be checked there.  After a
 * reconnection that failed, requests fail at once for NBD_RETRY_MS rather
 * than each wait for a server that is not there.
 *
 * A flush covers only the writes of the server it reaches.  Writes that
 * completed on a connection since lost, and that no flush covered, may
 * have died with the old server: the first flush after such a loss fails
 * with ENOTCONN rather than vouch for them.
 */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnbd.h>

#include "base/sxm.h"
#include "io/sink.h"

#define NBD_DEFAULT_CONNS	4
#define NBD_MAX_CONNS		SXM_SINK_MAX_FDS
#define NBD_DEFAULT_MAX_BLOCK	(32u << 20)	/* what servers accept */
#define NBD_ZERO_PROBE_LIMIT	100000		/* extents looked at */
#define NBD_SNDBUF		(4 << 20)	/* socket send buffer */
#define NBD_TIMEOUT_MS		30000		/* connect and handshake */
#define NBD_RETRY_MS		1000		/* after a failed reconnect */
#define NBD_SLOW_FACTOR		10		/* io_timeout: flush, zero, trim */

struct nbd_conn {
	struct nbd_handle *h;		/* NULL: a free slot */
	unsigned int in_flight;
	double heard;			/* busy: its last sign of life */
	unsigned int slow;		/* flushes, zeroes, trims in flight */
	bool stalled;			/* given up on: no sign for too long */
	bool lost;			/* no new requests; closed when idle */
	int err;			/* a request's connection error */
	bool wrote;			/* a write completed here, ... */
	uint64_t wrote_gen;		/* ... the last at this flush_gen */
};

struct nbd_sink {
	struct nbd_conn conn[NBD_MAX_CONNS];
	unsigned int nconn;		/* slots in use: [0, nconn) */
	unsigned int want;		/* connections: as at the open */
	int timeout_ms;			/* connect and handshake */
	double io_timeout;		/* seconds: see ns_stall() */
	double retry_at;		/* no reconnection before (ns_now()) */
	uint64_t flush_gen;		/* flushes sent */
	uint64_t flushed;		/* the newest flush that succeeded */
	bool writes_lost;		/* see ns_retire() */
	bool lost;			/* one lost: ->process() says so */
	struct sxm_sink_done_list done;
	bool closing;
};

static bool ns_match(const char *uri)
{
	static const char *const schemes[] = {
		"nbd://", "nbds://", "nbd+unix://", "nbds+unix://",
		"nbd+vsock://", "nbds+vsock://",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(schemes); i++)
		if (!strncmp(uri, schemes[i], strlen(schemes[i])))
			return true;
	return false;
}

/* libnbd's last error without the "nbd_connect_uri: " it starts with. */
static const char *ns_reason(void)
{
	const char *msg = nbd_get_error();
	const char *colon;

	if (!msg)
		return "unknown error";
	colon = strstr(msg, ": ");
	if (colon && !strncmp(msg, "nbd_", 4) && !memchr(msg, ' ', colon - msg))
		return colon + 2;
	return msg;
}

static int ns_errno(void)
{
	int e = nbd_get_errno();

	return e > 0 ? e : EIO;
}

static double ns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Connect and negotiate within @timeout_ms: nbd_connect_uri() would wait
 * for ever for a server that accepts the connection and never speaks.
 */
static int ns_connect(struct sxm_sink *s, struct nbd_handle *h,
		      int timeout_ms, char *err, size_t errlen)
{
	double deadline = ns_now() + timeout_ms / 1000.0;

	if (nbd_aio_connect_uri(h, s->uri) == -1)
		goto out_err;
	while (nbd_aio_is_connecting(h) == 1 ||
	       nbd_aio_is_negotiating(h) == 1) {
		struct pollfd p = { .fd = nbd_aio_get_fd(h) };
		unsigned int dir = nbd_aio_get_direction(h);
		int left = (int)((deadline - ns_now()) * 1000);
		int r = 0;

		if (left <= 0) {
			snprintf(err, errlen,
				 "sink %s: no NBD handshake within %d s",
				 s->name, (timeout_ms + 999) / 1000);
			return -ETIMEDOUT;
		}
		if (dir & LIBNBD_AIO_DIRECTION_READ)
			p.events |= POLLIN;
		if (dir & LIBNBD_AIO_DIRECTION_WRITE)
			p.events |= POLLOUT;
		if (poll(&p, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "sink %s: poll: %s", s->name,
				 strerror(errno));
			return -errno;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			r = nbd_aio_notify_read(h);
		else if (p.revents & POLLOUT)
			r = nbd_aio_notify_write(h);
		if (r == -1)
			goto out_err;
	}
	if (nbd_aio_is_ready(h) == 1)
		return 0;
	snprintf(err, errlen, "sink %s: connection closed during the handshake",
		 s->name);
	return -ECONNRESET;

out_err:
	snprintf(err, errlen, "sink %s: %s", s->name, ns_reason());
	return -ns_errno();
}

static struct nbd_handle *ns_conn_open(struct sxm_sink *s, int timeout_ms,
				       char *err, size_t errlen, int *rerr)
{
	struct nbd_handle *h;
	struct passwd *pw;

	h = nbd_create();
	if (!h) {
		*rerr = -ns_errno();
		snprintf(err, errlen, "sink %s: %s", s->name, ns_reason());
		return NULL;
	}
	if (nbd_supports_uri(h) != 1) {
		*rerr = -ENOTSUP;
		snprintf(err, errlen, "sink %s: libnbd was built without URI support",
			 s->name);
		goto out_close;
	}
	/*
	 * libnbd's default TLS user name comes from getlogin_r(), which
	 * fails without a controlling terminal (a daemon, a test): use the
	 * effective user's name instead.  A user@ in the URI still wins.
	 */
	pw = getpwuid(geteuid());
	if (pw && pw->pw_name && nbd_set_tls_username(h, pw->pw_name) == -1)
		sxm_debug("sink %s: %s", s->name, ns_reason());
	if (nbd_set_uri_allow_local_file(h, true) == -1 ||
	    nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1) {
		*rerr = -ns_errno();
		snprintf(err, errlen, "sink %s: %s", s->name, ns_reason());
		goto out_close;
	}
	*rerr = ns_connect(s, h, timeout_ms, err, errlen);
	if (*rerr)
		goto out_close;
	return h;

out_close:
	nbd_close(h);
	return NULL;
}

struct zero_probe {
	uint64_t seen;
	bool nonzero;
};

static int zero_probe_extent(void *opaque, const char *metacontext,
			     uint64_t offset, uint32_t *entries,
			     size_t nr_entries, int *error)
{
	struct zero_probe *zp = opaque;
	size_t i;

	if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION))
		return 0;
	for (i = 0; i + 1 < nr_entries; i += 2) {
		if (!(entries[i + 1] & LIBNBD_STATE_ZERO))
			zp->nonzero = true;
		zp->seen += entries[i];
	}
	return 0;
}

/*
 * NBD_INFO_INIT_STATE is not visible through libnbd 1.14, so ask
 * base:allocation instead: the export reads as zeroes if every extent
 * the server reports has the zero flag.  Any doubt means "not known".
 */
static bool ns_probe_zero(struct nbd_handle *h, uint64_t size)
{
	uint64_t off = 0;
	unsigned int n = 0;

	if (nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
		return false;
	while (off < size) {
		struct zero_probe zp = { 0 };
		nbd_extent_callback cb = {
			.callback = zero_probe_extent,
			.user_data = &zp,
		};
		uint64_t count = size - off;

		if (count > (1ULL << 31))
			count = 1ULL << 31;
		if (nbd_block_status(h, count, off, cb, 0) == -1)
			return false;
		if (zp.nonzero || !zp.seen || ++n > NBD_ZERO_PROBE_LIMIT)
			return false;
		off += zp.seen;
	}
	return true;
}

static uint32_t block_size(struct nbd_handle *h, int type, uint32_t dflt)
{
	int64_t v = nbd_get_block_size(h, type);

	return v > 0 ? (uint32_t)v : dflt;
}

/* What the server says the export can do, as SXM_SINK_* bits. */
/* The largest request: the server's, at most NBD_DEFAULT_MAX_BLOCK. */
static uint32_t ns_block_max(struct nbd_handle *h)
{
	uint32_t m = block_size(h, LIBNBD_SIZE_MAXIMUM, NBD_DEFAULT_MAX_BLOCK);

	return m < NBD_DEFAULT_MAX_BLOCK ? m : NBD_DEFAULT_MAX_BLOCK;
}

static unsigned int ns_caps(struct nbd_handle *h)
{
	unsigned int caps = 0;

	if (nbd_can_flush(h) == 1)
		caps |= SXM_SINK_CAN_FLUSH;
	if (nbd_can_fua(h) == 1)
		caps |= SXM_SINK_CAN_FUA;
	if (nbd_can_zero(h) == 1)
		caps |= SXM_SINK_CAN_ZERO;
	if (nbd_can_fast_zero(h) == 1)
		caps |= SXM_SINK_CAN_FAST_ZERO;
	if (nbd_can_trim(h) == 1)
		caps |= SXM_SINK_CAN_TRIM;
	if (nbd_can_multi_conn(h) == 1)
		caps |= SXM_SINK_MULTI_CONN;
	if (nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1)
		caps |= SXM_SINK_CAN_EXTENTS;
	return caps;
}

static int ns_learn(struct sxm_sink *s, struct nbd_handle *h,
		     const struct sxm_sink_opts *o, char *err, size_t errlen)
{
	int64_t size;
	int ro;

	size = nbd_get_size(h);
	if (size < 0) {
		snprintf(err, errlen, "sink %s: %s", s->name, ns_reason());
		return -ns_errno();
	}
	s->size = size;

	ro = nbd_is_read_only(h);
	if (ro == 1 && !o->read_only) {
		snprintf(err, errlen,
			 "sink %s: export is read-only, cannot write to it",
			 s->name);
		return -EROFS;
	}
	if (sxm_sink_check_size(s, o, "export", err, errlen))
		return -ENOSPC;

	s->caps = SXM_SINK_CAN_READ | ns_caps(h);
	if (ro == 1 || o->read_only)
		s->caps |= SXM_SINK_READ_ONLY;
	if (o->probe_zero && ns_probe_zero(h, s->size))
		s->caps |= SXM_SINK_ZERO_INIT;

	/* Unadvertised minimum: 512 is the safe guess libnbd suggests. */
	s->block_min = block_size(h, LIBNBD_SIZE_MINIMUM, 512);
	s->block_pref = block_size(h, LIBNBD_SIZE_PREFERRED, 4096);
	s->block_max = ns_block_max(h);
	return 0;
}

/*
 * A send buffer large enough for whole requests: a 1 MiB write then goes
 * out in one send() and wakes the server once, not five times (the
 * default buffer is ~200 KiB), which halves the CPU the copy costs.  Root
 * may exceed net.core.wmem_max; others get what it allows.
 */
static void ns_sndbuf(struct sxm_sink *s, struct nbd_handle *h)
{
	int fd = nbd_aio_get_fd(h), v = NBD_SNDBUF;

	if (fd < 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)))
		sxm_debug("sink %s: SO_SNDBUF: %s", s->name, strerror(errno));
}

/*
 * Close with requests still out (abandoned): reset the connection (TCP),
 * so that what is still in the socket's send queue is dropped, not sent
 * when a stalled link comes back.  What the server has already received
 * it may still apply (NBD cannot take a request back; nor can a Unix
 * socket's queue be emptied): a write given up on can land late.  The
 * caller copies its place again, and the cutover reads back, frozen.
 */
static void ns_abort(struct nbd_handle *h)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	int fd = nbd_aio_get_fd(h);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/*
 * Close one connection's handle: reset it if requests are still out on
 * it (@busy, see ns_abort()), else say goodbye if it is still up.  The
 * goodbye is queued, never waited for (nbd_shutdown() would wait, without
 * a bound, for a server that may have stopped answering).
 */
static void ns_conn_close(struct nbd_handle *h, bool busy)
{
	bool live = !nbd_aio_is_dead(h) && !nbd_aio_is_closed(h);

	if (live && busy)
		ns_abort(h);
	else if (live && nbd_aio_is_ready(h) == 1)
		nbd_aio_disconnect(h, 0);
	nbd_close(h);
}

static void ns_sink_free(struct nbd_sink *ns)
{
	unsigned int i;

	ns->closing = true;
	for (i = 0; i < ns->nconn; i++)
		if (ns->conn[i].h)
			ns_conn_close(ns->conn[i].h, ns->conn[i].in_flight);
	free(ns);
}

static int ns_open(struct sxm_sink *s, const struct sxm_sink_opts *o,
		    char *err, size_t errlen)
{
	int timeout = o->timeout_ms ? (int)o->timeout_ms : NBD_TIMEOUT_MS;
	struct nbd_sink *ns;
	unsigned int want, i;
	char caps[128];
	int r;

	ns = calloc(1, sizeof(*ns));
	if (!ns) {
		snprintf(err, errlen, "sink %s: %s", s->name, strerror(ENOMEM));
		return -ENOMEM;
	}
	sxm_sink_done_init(&ns->done);
	ns->timeout_ms = timeout;
	ns->io_timeout = (o->io_timeout_ms ? o->io_timeout_ms :
			  SXM_SINK_IO_TIMEOUT_MS) / 1000.0;

	ns->conn[0].h = ns_conn_open(s, timeout, err, errlen, &r);
	if (!ns->conn[0].h)
		goto out_free;
	ns->nconn = 1;
	r = ns_learn(s, ns->conn[0].h, o, err, errlen);
	if (r)
		goto out_free;

	want = o->max_conns ? o->max_conns : NBD_DEFAULT_CONNS;
	if (want > NBD_MAX_CONNS)
		want = NBD_MAX_CONNS;
	if (!(s->caps & SXM_SINK_MULTI_CONN))
		want = 1;
	for (i = 1; i < want; i++) {
		char why[256];
		int e;

		ns->conn[i].h = ns_conn_open(s, timeout, why, sizeof(why),
					     &e);
		if (!ns->conn[i].h) {
			sxm_debug("%s; going on with %u connection(s)", why, i);
			break;
		}
		ns->nconn++;
	}
	for (i = 0; i < ns->nconn; i++)
		ns_sndbuf(s, ns->conn[i].h);
	/* A reconnection opens as many as the server allowed now. */
	ns->want = ns->nconn;
	s->conns = ns->nconn;
	s->priv = ns;
	sxm_debug("sink %s: %" PRIu64 " bytes, %u connection(s), block %u/%u/%u, %s",
		  s->name, s->size, s->conns, s->block_min, s->block_pref,
		  s->block_max, sxm_sink_caps_str(s->caps, caps, sizeof(caps)));
	return 0;

out_free:
	ns_sink_free(ns);
	return r;
}

static void ns_sink_close(struct sxm_sink *s)
{
	ns_sink_free(s->priv);
	s->priv = NULL;
}

/* ----------------------------------------------------------------------
 * Lost connections (see the top)
 * ----------------------------------------------------------------------
 */

/* Writes completed on @c that no flush has covered yet. */
static bool ns_unflushed(const struct nbd_sink *ns, const struct nbd_conn *c)
{
	return c->wrote && c->wrote_gen >= ns->flushed;
}

/* Connection @ci is lost (@why, for the debug log). */
static void ns_lose(struct sxm_sink *s, unsigned int ci, const char *why)
{
	struct nbd_sink *ns = s->priv;

	if (ns->conn[ci].lost)
		return;
	ns->conn[ci].lost = true;
	ns->lost = true;
	sxm_debug("sink %s: connection %u lost: %s", s->name, ci, why);
}

/* libnbd has given up on @h: an error (dead) or the server's FIN (closed). */
static bool ns_down(struct nbd_handle *h)
{
	return nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1;
}

/* Whether libnbd has given up on connection @ci; it is lost then. */
static bool ns_check(struct sxm_sink *s, unsigned int ci)
{
	struct nbd_sink *ns = s->priv;
	struct nbd_handle *h = ns->conn[ci].h;

	if (nbd_aio_is_dead(h) == 1)
		ns_lose(s, ci, ns_reason());
	else if (nbd_aio_is_closed(h) == 1)
		ns_lose(s, ci, "closed by the server");
	else
		return false;
	return true;
}

/*
 * Connection @ci has had requests out and given no sign of life (no
 * reply, no room for more of a request) for io_timeout: a server that
 * accepted them and hangs, or a link that drops everything.  Nothing
 * else would ever end them (TCP retries for a quarter of an hour), so
 * give up on it: its requests fail with -ETIMEDOUT and the next request
 * goes to another connection or a new one.  Reset, not closed: what is
 * still unsent in the socket is dropped (see ns_abort(), and what it
 * cannot drop).  Shutting the socket down makes libnbd see the end at
 * once, fail the requests and close it; the reset happens then.
 */
static void ns_stall(struct sxm_sink *s, unsigned int ci)
{
	struct nbd_sink *ns = s->priv;
	struct nbd_conn *c = &ns->conn[ci];
	int fd = nbd_aio_get_fd(c->h);
	unsigned int dir;

	sxm_err("sink %s: no answer for %.0f s on connection %u (%u request(s) out): giving up on it",
		s->name, ns->io_timeout, ci, c->in_flight);
	c->stalled = true;
	ns_lose(s, ci, "stopped answering");
	ns_abort(c->h);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	dir = nbd_aio_get_direction(c->h);
	if (dir & LIBNBD_AIO_DIRECTION_READ)
		nbd_aio_notify_read(c->h);
	else if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		nbd_aio_notify_write(c->h);
}

/*
 * The connections that stalled (ns_stall()); and in *@timeout_ms, if
 * not NULL, the most a caller may sleep before the next could stall.
 */
static void ns_stalls(struct sxm_sink *s, int *timeout_ms)
{
	struct nbd_sink *ns = s->priv;
	double now = ns_now();
	unsigned int i;

	for (i = 0; i < ns->nconn; i++) {
		struct nbd_conn *c = &ns->conn[i];
		double left;
		int ms;

		if (!c->h || !c->in_flight || c->stalled || ns_down(c->h))
			continue;
		left = c->heard + ns->io_timeout *
		       (c->slow ? NBD_SLOW_FACTOR : 1) - now;
		if (!timeout_ms) {
			if (left <= 0)
				ns_stall(s, i);
			continue;
		}
		ms = left > 0 ? (int)(left * 1000) + 1 : 0;
		if (*timeout_ms < 0 || ms < *timeout_ms)
			*timeout_ms = ms;
	}
}

/*
 * Close lost connection @ci, idle now, and free its slot.  What it wrote
 * that no flush covered is remembered for the next flush.
 */
static void ns_retire(struct sxm_sink *s, unsigned int ci)
{
	struct nbd_sink *ns = s->priv;
	struct nbd_conn *c = &ns->conn[ci];

	if (ns_unflushed(ns, c))
		ns->writes_lost = true;
	/* No goodbye: a server that went away may never answer it. */
	ns_conn_close(c->h, true);
	memset(c, 0, sizeof(*c));
	s->conns--;
}

/*
 * Note the connections libnbd gave up on, or a request said were gone;
 * close those lost and idle.
 */
static void ns_sweep(struct sxm_sink *s)
{
	struct nbd_sink *ns = s->priv;
	unsigned int i;

	for (i = 0; i < ns->nconn; i++) {
		if (!ns->conn[i].h)
			continue;
		if (!ns_check(s, i) && ns->conn[i].err)
			ns_lose(s, i, strerror(-ns->conn[i].err));
		if (ns->conn[i].lost && !ns->conn[i].in_flight)
			ns_retire(s, i);
	}
	while (ns->nconn && !ns->conn[ns->nconn - 1].h)
		ns->nconn--;
}

/*
 * Whether idle connection @c was closed or reset while nobody looked: it
 * then reads as ready, since a server never sends anything unasked.  Let
 * libnbd read it, so that its state says so, rather than find out by
 * failing the request sent next.
 */
static bool ns_idle_closed(struct nbd_conn *c)
{
	struct pollfd p = { .fd = nbd_aio_get_fd(c->h), .events = POLLIN };

	if (c->in_flight || p.fd < 0)
		return false;
	if (poll(&p, 1, 0) == 1)
		nbd_aio_notify_read(c->h);
	return ns_down(c->h);
}

/*
 * Writes may have been lost with a connection since a flush last said
 * so.  Said once: a flush after the caller wrote them again succeeds.
 */
static bool ns_writes_lost(struct nbd_sink *ns)
{
	bool lost = ns->writes_lost;
	unsigned int i;

	for (i = 0; i < ns->nconn; i++) {
		struct nbd_conn *c = &ns->conn[i];

		/* Lost, still waiting for its last requests. */
		if (c->h && c->lost && ns_unflushed(ns, c)) {
			lost = true;
			c->wrote = false;
		}
	}
	ns->writes_lost = false;
	return lost;
}

/* Whether @h reaches the export the sink was opened on; @why if not. */
static bool ns_same_export(struct sxm_sink *s, struct nbd_handle *h,
			   char *why, size_t len)
{
	/* What callers may rely on, as learnt at the open. */
	unsigned int need = s->caps & (SXM_SINK_CAN_FLUSH | SXM_SINK_CAN_FUA |
				       SXM_SINK_CAN_ZERO |
				       SXM_SINK_CAN_FAST_ZERO |
				       SXM_SINK_CAN_TRIM |
				       SXM_SINK_CAN_EXTENTS);
	int64_t size = nbd_get_size(h);
	char caps[128];

	if (size != (int64_t)s->size)
		snprintf(why, len, "sink %s: the export is %" PRId64 " bytes now, not %" PRIu64,
			 s->name, size, s->size);
	else if (!(s->caps & SXM_SINK_READ_ONLY) && nbd_is_read_only(h) == 1)
		snprintf(why, len, "sink %s: the export is read-only now",
			 s->name);
	else if (need & ~ns_caps(h))
		snprintf(why, len, "sink %s: the export cannot %s now", s->name,
			 sxm_sink_caps_str(need & ~ns_caps(h), caps,
					   sizeof(caps)));
	else if (block_size(h, LIBNBD_SIZE_MINIMUM, 512) != s->block_min ||
		 ns_block_max(h) != s->block_max)
		snprintf(why, len, "sink %s: the export's block sizes are %u..%u bytes now, not %u..%u",
			 s->name, block_size(h, LIBNBD_SIZE_MINIMUM, 512),
			 ns_block_max(h), s->block_min, s->block_max);
	else
		return true;
	return false;
}

/*
 * Every connection is lost: connect again, as many as at the open (the
 * first must succeed, the others may not), to the same export.  The index
 * of the first, or -1, and then no new try for NBD_RETRY_MS.
 */
static int ns_reconnect(struct sxm_sink *s)
{
	struct nbd_sink *ns = s->priv;
	unsigned int i, n = 0, want = ns->want;
	int first = -1, e;
	char why[256];

	if (ns_now() < ns->retry_at)
		return -1;
	for (i = 0; i < NBD_MAX_CONNS && n < want; i++) {
		struct nbd_handle *h;

		if (ns->conn[i].h)
			continue;
		h = ns_conn_open(s, ns->timeout_ms, why, sizeof(why), &e);
		if (h && !ns_same_export(s, h, why, sizeof(why))) {
			/* Not the sink the caller wrote to: never use it. */
			sxm_err("%s; not reconnecting to it", why);
			ns_conn_close(h, false);
			h = NULL;
		}
		if (!h) {
			sxm_debug("%s; reconnected %u connection(s)", why, n);
			break;
		}
		/* A server without multi-conn now: one connection only. */
		if (nbd_can_multi_conn(h) != 1)
			want = 1;
		ns_sndbuf(s, h);
		ns->conn[i] = (struct nbd_conn){ .h = h };
		if (i >= ns->nconn)
			ns->nconn = i + 1;
		if (first < 0)
			first = i;
		n++;
	}
	s->conns += n;
	if (first < 0) {
		ns->retry_at = ns_now() + NBD_RETRY_MS / 1000.0;
		return -1;
	}
	/* Perhaps another server: its users check it (sxm_sink_epoch()). */
	sxm_sink_new_epoch(s);
	sxm_debug("sink %s: reconnected, %u connection(s)", s->name, n);
	return first;
}

/* The usable connection with the fewest requests in flight, or -1. */
static int ns_fewest(struct nbd_sink *ns)
{
	int best = -1;
	unsigned int i;

	for (i = 0; i < ns->nconn; i++) {
		if (!ns->conn[i].h || ns->conn[i].lost || ns->conn[i].err)
			continue;
		if (best < 0 || ns->conn[i].in_flight <
				ns->conn[best].in_flight)
			best = i;
	}
	return best;
}

/*
 * Pick the live connection with the fewest requests in flight, after
 * setting those lost aside; with none left, connect again.  -1: none.
 */
static int ns_pick(struct sxm_sink *s)
{
	int ci;

	for (;;) {
		ns_sweep(s);
		ci = ns_fewest(s->priv);
		if (ci < 0)
			return ns_reconnect(s);
		/* Closed while idle: the next sweep retires it. */
		if (!ns_idle_closed(&((struct nbd_sink *)s->priv)->conn[ci]))
			return ci;
	}
}

static int ns_refresh(struct sxm_sink *s)
{
	struct nbd_sink *ns = s->priv;
	unsigned int i;
	double wait;
	int ci;

	/*
	 * Every idle connection looked at, not only the one ns_pick() would
	 * choose: a server that went away closed them all, and a request
	 * must not find the others later.
	 */
	for (i = 0; i < ns->nconn; i++)
		if (ns->conn[i].h && !ns->conn[i].lost)
			ns_idle_closed(&ns->conn[i]);
	ci = ns_pick(s);
	/*
	 * A reconnection failed moments ago (the server was coming back):
	 * once more, now that it may be there, rather than say "none".
	 */
	wait = ns->retry_at - ns_now();
	if (ci < 0 && wait > 0) {
		usleep((useconds_t)(wait * 1e6) + 1000);
		ci = ns_pick(s);
	}
	return ci < 0 ? -ENOTCONN : 0;
}

/* ----------------------------------------------------------------------
 * Requests
 * ----------------------------------------------------------------------
 */

/*
 * A request done: off its connection's count, and on to the caller from
 * ->process().  A connection error is noted for ns_sweep(), which finds
 * out why (libnbd may not be called from its own callback).
 */
static int ns_req_done(void *user_data, int *error)
{
	struct sxm_sink_req *req = user_data;
	struct nbd_sink *ns = req->sink->priv;
	int err = *error ? -*error : 0;
	struct nbd_conn *c;

	if (!ns || ns->closing)
		return 1;
	c = &ns->conn[req->slot];
	c->in_flight--;
	if (req->slow)
		c->slow--;
	c->heard = ns_now();
	/* Failed since ns_stall() gave up on the connection: say why. */
	if (c->stalled && sxm_sink_conn_err(err))
		err = -ETIMEDOUT;
	if (sxm_sink_conn_err(err) && !c->err)
		c->err = err;
	sxm_sink_done_push(&ns->done, req, err);
	return 1;
}

/* A write, write-zeroes or trim done: a flush has yet to cover it. */
static int ns_write_done(void *user_data, int *error)
{
	struct sxm_sink_req *req = user_data;
	struct nbd_sink *ns = req->sink->priv;

	if (ns && !ns->closing && !*error) {
		ns->conn[req->slot].wrote = true;
		ns->conn[req->slot].wrote_gen = ns->flush_gen;
	}
	return ns_req_done(user_data, error);
}

/* A flush in flight, and the writes it covers: those done before it. */
struct ns_flush {
	struct sxm_sink_req *req;
	uint64_t gen;
};

static int ns_flush_done(void *user_data, int *error)
{
	struct ns_flush *f = user_data;
	struct nbd_sink *ns = f->req->sink->priv;

	if (ns && !ns->closing && !*error && f->gen > ns->flushed)
		ns->flushed = f->gen;
	return ns_req_done(f->req, error);
}

/*
 * Hand one command to connection @ci: ns_prep() before the libnbd call
 * (its callback may run inside it when the connection dies), ns_queued()
 * with what the call returned.
 */
static void ns_prep(struct sxm_sink *s, struct sxm_sink_req *req,
		     unsigned int ci)
{
	req->sink = s;
	req->slot = ci;
	req->slow = false;
}

/*
 * A request that may take long with no sign of life from a healthy
 * server (a flush of a large cache, zeroes written out): see ns_stalls().
 * Before the libnbd call, like ns_prep().
 */
static void ns_prep_slow(struct sxm_sink *s, struct sxm_sink_req *req,
			 unsigned int ci)
{
	struct nbd_sink *ns = s->priv;

	ns_prep(s, req, ci);
	req->slow = true;
	ns->conn[ci].slow++;
}

static int ns_queued(struct sxm_sink *s, struct sxm_sink_req *req,
		     unsigned int ci, int64_t cookie)
{
	struct nbd_sink *ns = s->priv;

	/*
	 * A connection that died since ns_pick() refuses with EINVAL
	 * ("invalid state"): say what it is.
	 */
	if (cookie == -1) {
		/* Not queued: its callback will not run. */
		if (req->slow)
			ns->conn[ci].slow--;
		return ns_check(s, ci) ? -ENOTCONN : -ns_errno();
	}
	/* Busy from now: the clock of ns_stall() starts. */
	if (!ns->conn[ci].in_flight++)
		ns->conn[ci].heard = ns_now();
	s->in_flight++;
	return 0;
}

static nbd_completion_callback ns_cb(struct sxm_sink_req *req)
{
	return (nbd_completion_callback) {
		.callback = ns_req_done,
		.user_data = req,
	};
}

/*
 * For a request that changes data: one a flush must cover, unless it is
 * written through (FUA) or the server has no flush to cover it with.
 */
static nbd_completion_callback ns_wcb(struct sxm_sink *s,
				      struct sxm_sink_req *req,
				      unsigned int flags)
{
	if ((flags & SXM_SINK_F_FUA) || !(s->caps & SXM_SINK_CAN_FLUSH))
		return ns_cb(req);
	return (nbd_completion_callback) {
		.callback = ns_write_done,
		.user_data = req,
	};
}

static uint32_t ns_flags(unsigned int flags)
{
	uint32_t f = 0;

	if (flags & SXM_SINK_F_FUA)
		f |= LIBNBD_CMD_FLAG_FUA;
	if (flags & SXM_SINK_F_FAST_ZERO)
		f |= LIBNBD_CMD_FLAG_FAST_ZERO;
	if (flags & SXM_SINK_F_NO_HOLE)
		f |= LIBNBD_CMD_FLAG_NO_HOLE;
	return f;
}

static int ns_pwrite(struct sxm_sink *s, const void *buf, size_t len,
		     uint64_t off, unsigned int flags, struct sxm_sink_req *req)
{
	struct nbd_sink *ns = s->priv;
	int ci = ns_pick(s);

	if (ci < 0)
		return -ENOTCONN;
	flags &= SXM_SINK_F_FUA;
	ns_prep(s, req, ci);
	return ns_queued(s, req, ci,
			  nbd_aio_pwrite(ns->conn[ci].h, buf, len, off,
					 ns_wcb(s, req, flags),
					 ns_flags(flags)));
}

static int ns_zero(struct sxm_sink *s, uint64_t len, uint64_t off,
		    unsigned int flags, struct sxm_sink_req *req)
{
	struct nbd_sink *ns = s->priv;
	int ci;

	if (!(s->caps & SXM_SINK_CAN_ZERO))
		return -EOPNOTSUPP;
	if ((flags & SXM_SINK_F_FAST_ZERO) &&
	    !(s->caps & SXM_SINK_CAN_FAST_ZERO))
		return -EOPNOTSUPP;
	ci = ns_pick(s);
	if (ci < 0)
		return -ENOTCONN;
	ns_prep_slow(s, req, ci);
	return ns_queued(s, req, ci,
			  nbd_aio_zero(ns->conn[ci].h, len, off,
				       ns_wcb(s, req, flags), ns_flags(flags)));
}

static int ns_trim(struct sxm_sink *s, uint64_t len, uint64_t off,
		    unsigned int flags, struct sxm_sink_req *req)
{
	struct nbd_sink *ns = s->priv;
	int ci;

	if (!(s->caps & SXM_SINK_CAN_TRIM))
		return -EOPNOTSUPP;
	ci = ns_pick(s);
	if (ci < 0)
		return -ENOTCONN;
	flags &= SXM_SINK_F_FUA;
	ns_prep_slow(s, req, ci);
	return ns_queued(s, req, ci,
			  nbd_aio_trim(ns->conn[ci].h, len, off,
				       ns_wcb(s, req, flags), ns_flags(flags)));
}

static int ns_flush(struct sxm_sink *s, struct sxm_sink_req *req)
{
	struct nbd_sink *ns = s->priv;
	nbd_completion_callback cb = {
		.callback = ns_flush_done,
		.free = free,		/* libnbd frees it when done */
	};
	struct ns_flush *f;
	int ci;

	if (!(s->caps & SXM_SINK_CAN_FLUSH)) {
		req->sink = s;
		s->in_flight++;
		sxm_sink_done_push(&ns->done, req, 0);
		return 0;
	}
	/*
	 * Writes lost with a connection already: said without connecting
	 * again (to a server that may not answer), and again after
	 * ns_pick(), which may find more lost.
	 */
	ns_sweep(s);
	if (ns_writes_lost(ns))
		return -ENOTCONN;
	ci = ns_pick(s);
	if (ns_writes_lost(ns) || ci < 0)
		return -ENOTCONN;
	f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->req = req;
	f->gen = ++ns->flush_gen;
	cb.user_data = f;
	ns_prep_slow(s, req, ci);
	return ns_queued(s, req, ci, nbd_aio_flush(ns->conn[ci].h, cb, 0));
}

static int ns_pread(struct sxm_sink *s, void *buf, size_t len,
		     uint64_t off, struct sxm_sink_req *req)
{
	struct nbd_sink *ns = s->priv;
	int ci = ns_pick(s);

	if (ci < 0)
		return -ENOTCONN;
	ns_prep(s, req, ci);
	return ns_queued(s, req, ci,
			  nbd_aio_pread(ns->conn[ci].h, buf, len, off,
					ns_cb(req), 0));
}

struct extent {
	uint64_t off;		/* where the answer starts */
	uint64_t *len;		/* the caller's */
	bool *zero;		/* the caller's */
	bool seen;
};

/* The first extent, merged with those after it of the same kind. */
static int ns_extent_cb(void *opaque, const char *metacontext,
			uint64_t offset, uint32_t *entries, size_t nr_entries,
			int *error)
{
	struct extent *e = opaque;
	size_t i;

	if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) ||
	    offset != e->off || e->seen || nr_entries < 2)
		return 0;
	e->seen = true;
	*e->zero = entries[1] & LIBNBD_STATE_ZERO;
	for (i = 0; i + 1 < nr_entries; i += 2) {
		if (!(entries[i + 1] & LIBNBD_STATE_ZERO) != !*e->zero)
			break;
		*e->len += entries[i];
	}
	return 0;
}

static int ns_extent(struct sxm_sink *s, uint64_t len, uint64_t off,
		     uint64_t *ext_len, bool *zero, struct sxm_sink_req *req)
{
	struct nbd_sink *ns = s->priv;
	nbd_extent_callback cb = {
		.callback = ns_extent_cb,
		.free = free,		/* libnbd frees it when done */
	};
	struct extent *e;
	int ci;

	if (!(s->caps & SXM_SINK_CAN_EXTENTS))
		return -EOPNOTSUPP;
	ci = ns_pick(s);
	if (ci < 0)
		return -ENOTCONN;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	*ext_len = 0;
	*zero = false;
	e->off = off;
	e->len = ext_len;
	e->zero = zero;
	cb.user_data = e;
	if (len > (1ULL << 31))
		len = 1ULL << 31;
	ns_prep(s, req, ci);
	return ns_queued(s, req, ci,
			 nbd_aio_block_status(ns->conn[ci].h, len, off, cb,
					      ns_cb(req), 0));
}

/* ----------------------------------------------------------------------
 * The caller's poll loop
 * ----------------------------------------------------------------------
 */

static int ns_poll_fds(struct sxm_sink *s, struct pollfd *fds, unsigned int max,
			int *timeout_ms)
{
	struct nbd_sink *ns = s->priv;
	unsigned int i, n = 0;

	if (ns->done.head)
		*timeout_ms = 0;
	ns_stalls(s, timeout_ms);
	for (i = 0; i < ns->nconn && n < max; i++) {
		struct nbd_handle *h = ns->conn[i].h;
		unsigned int dir;
		int fd;

		/* A lost one still up has replies to come: polled too. */
		if (!h || ns_down(h))
			continue;
		fd = nbd_aio_get_fd(h);
		if (fd < 0)
			continue;
		dir = nbd_aio_get_direction(h);
		fds[n].fd = fd;
		fds[n].events = 0;
		fds[n].revents = 0;
		if (dir & LIBNBD_AIO_DIRECTION_READ)
			fds[n].events |= POLLIN;
		if (dir & LIBNBD_AIO_DIRECTION_WRITE)
			fds[n].events |= POLLOUT;
		n++;
	}
	return n;
}

static int ns_by_fd(struct nbd_sink *ns, int fd)
{
	unsigned int i;

	for (i = 0; i < ns->nconn; i++)
		if (ns->conn[i].h && nbd_aio_get_fd(ns->conn[i].h) == fd)
			return i;
	return -1;
}

static int ns_process(struct sxm_sink *s, const struct pollfd *fds,
		       unsigned int n)
{
	struct nbd_sink *ns = s->priv;
	unsigned int i;

	for (i = 0; i < n; i++) {
		int ci = ns_by_fd(ns, fds[i].fd);
		struct nbd_handle *h;
		unsigned int dir;

		if (ci < 0 || !fds[i].revents)
			continue;
		h = ns->conn[ci].h;
		/* The direction may have changed since poll_fds. */
		dir = nbd_aio_get_direction(h);
		/* Bytes of a reply, or room for more of a request: alive. */
		if (fds[i].revents & (POLLIN | POLLOUT))
			ns->conn[ci].heard = ns_now();
		if ((dir & LIBNBD_AIO_DIRECTION_READ) &&
		    (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			nbd_aio_notify_read(h);
		else if ((dir & LIBNBD_AIO_DIRECTION_WRITE) &&
			 (fds[i].revents & (POLLOUT | POLLHUP | POLLERR)))
			nbd_aio_notify_write(h);
		/*
		 * Dead, or closed: a FIN between replies is no error to
		 * libnbd (notify returns 0), but the connection is gone
		 * just the same.
		 */
		ns_check(s, ci);
	}
	/* Given up on and still up (libnbd was not reading): again. */
	for (i = 0; i < ns->nconn; i++)
		if (ns->conn[i].h && ns->conn[i].stalled &&
		    !ns_down(ns->conn[i].h))
			nbd_aio_notify_read(ns->conn[i].h);
	ns_stalls(s, NULL);
	ns_sweep(s);
	sxm_sink_done_run(s, &ns->done);
	if (!ns->lost)
		return 0;
	ns->lost = false;
	return -ENOTCONN;
}

const struct sxm_sink_ops sxm_sink_nbd_ops = {
	.name = "nbd",
	.match = ns_match,
	.open = ns_open,
	.close = ns_sink_close,
	.pwrite = ns_pwrite,
	.zero = ns_zero,
	.trim = ns_trim,
	.flush = ns_flush,
	.pread = ns_pread,
	.extent = ns_extent,
	.poll_fds = ns_poll_fds,
	.process = ns_process,
	.refresh = ns_refresh,
};
