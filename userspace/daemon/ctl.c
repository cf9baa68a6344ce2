// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket: its paths, sending on it, and the client's call
 * (ctl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/sxm.h"
#include "base/buf.h"
#include "daemon/ctl.h"

/* ------------------------------------------------------------------ */
/* The client                                                         */
/* ------------------------------------------------------------------ */

const char *sxm_ctl_socket_path(void)
{
	const char *p = getenv("SXM_SOCKET");

	return p && *p ? p : SXM_SOCKET_DEFAULT;
}

const char *sxm_ctl_job_dir(void)
{
	const char *p = getenv("SXM_JOB_DIR");

	return p && *p ? p : SXM_JOB_DIR_DEFAULT;
}

int sxm_ctl_send(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(int fd, struct sxm_buf *b)
{
	char chunk[4096];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		sxm_buf_printf(b, "%.*s", (int)n, chunk);
	}
	return b->oom ? -ENOMEM : 0;
}

static int ctl_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-e));
		return e;
	}
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return fd;
	e = -errno;
	close(fd);
	if (e == -ENOENT || e == -ECONNREFUSED)
		snprintf(err, errlen,
			 "cannot reach the daemon at %s: %s (is \"sxm-ctl daemon\" running?)",
			 path, strerror(-e));
	else if (e == -EACCES || e == -EPERM)
		snprintf(err, errlen,
			 "daemon socket %s: %s (root or the daemon's --group only)",
			 path, strerror(-e));
	else
		snprintf(err, errlen, "daemon socket %s: %s", path,
			 strerror(-e));
	return e;
}

int sxm_ctl_call(const char *request, char **body, char *err, size_t errlen)
{
	const char *path = sxm_ctl_socket_path();
	struct sxm_buf b = { 0 };
	char *nl, *msg, *end;
	long e;
	int fd, r, rd;

	*body = NULL;
	fd = ctl_connect(path, err, errlen);
	if (fd < 0)
		return fd;
	r = sxm_ctl_send(fd, request, strlen(request));
	if (!r)
		r = sxm_ctl_send(fd, "\n", 1);
	if (!r && shutdown(fd, SHUT_WR))
		r = -errno;
	/* A daemon that refused us may have closed first: read why. */
	if (!r || r == -EPIPE || r == -ECONNRESET) {
		rd = read_all(fd, &b);
		if (!r || (b.s && b.len))
			r = rd;
	}
	close(fd);
	if (r) {
		snprintf(err, errlen, "daemon socket %s: %s", path,
			 strerror(-r));
		sxm_buf_free(&b);
		return r;
	}
	if (!b.s || !b.len) {
		/*
		 * A refused peer is told so: no word at all means the daemon
		 * stopped or died while it had the request.
		 */
		snprintf(err, errlen,
			 "the daemon at %s closed the connection without an answer: it stopped or died while handling the request (see its log)",
			 path);
		sxm_buf_free(&b);
		return -ECONNRESET;
	}
	nl = strchr(b.s, '\n');
	if (nl)
		*nl = '\0';
	if (!strcmp(b.s, "ok")) {
		*body = strdup(nl ? nl + 1 : "");
		sxm_buf_free(&b);
		return *body ? 0 : -ENOMEM;
	}
	r = -EPROTO;
	snprintf(err, errlen, "the daemon answered '%.200s'", b.s);
	if (!strncmp(b.s, "err ", 4)) {
		e = strtol(b.s + 4, &end, 10);
		if (end != b.s + 4 && *end == ' ' && e > 0 && e < 4096) {
			msg = end + 1;
			snprintf(err, errlen, "%s", msg);
			r = -(int)e;
		}
	}
	sxm_buf_free(&b);
	return r;
}
