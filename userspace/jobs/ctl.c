// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket's words and escapes, and the client's call (ctl.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/sxm.h"
#include "jobs/ctl.h"

/* ------------------------------------------------------------------ */
/* Strings                                                            */
/* ------------------------------------------------------------------ */

static bool buf_room(struct sxm_buf *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void sxm_buf_printf(struct sxm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_room(b, n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

static bool must_escape(unsigned char c, bool word)
{
	if (c < 0x20 || c == '%' || c == 0x7f)
		return true;
	return word && (c == ' ' || c == '=');
}

void sxm_buf_escape(struct sxm_buf *b, const char *val, bool word)
{
	const unsigned char *p;

	for (p = (const unsigned char *)val; *p; p++) {
		if (!buf_room(b, 3))
			return;
		if (must_escape(*p, word))
			b->len += sprintf(b->s + b->len, "%%%02X", *p);
		else
			b->s[b->len++] = *p;
		b->s[b->len] = '\0';
	}
	if (buf_room(b, 0))
		b->s[b->len] = '\0';
}

void sxm_buf_kv(struct sxm_buf *b, const char *key, const char *val)
{
	sxm_buf_printf(b, " %s=", key);
	sxm_buf_escape(b, val, true);
}

char *sxm_buf_take(struct sxm_buf *b)
{
	char *s;

	if (b->oom || !buf_room(b, 0)) {
		sxm_buf_free(b);
		return NULL;
	}
	/* An empty buffer's first allocation has no terminator yet. */
	b->s[b->len] = '\0';
	s = b->s;
	memset(b, 0, sizeof(*b));
	return s;
}

void sxm_buf_free(struct sxm_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sxm_unescape(char *s)
{
	char *w = s;
	int hi, lo;

	for (; *s; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		hi = hexval(s[1]);
		lo = hi < 0 ? -1 : hexval(s[2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		*w++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*w = '\0';
	return 0;
}

int sxm_kv_split(char *line, struct sxm_kv *kv, unsigned int max,
		 unsigned int *n)
{
	char *save = NULL, *w, *eq;
	unsigned int i = 0;

	for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (i == max)
			return -E2BIG;
		eq = strchr(w, '=');
		kv[i].key = w;
		kv[i].val = NULL;
		if (eq) {
			*eq = '\0';
			kv[i].val = eq + 1;
			if (sxm_unescape(kv[i].val))
				return -EINVAL;
		}
		i++;
	}
	*n = i;
	return 0;
}

const char *sxm_kv_get(const struct sxm_kv *kv, unsigned int n,
		       const char *key)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (kv[i].val && !strcmp(kv[i].key, key))
			return kv[i].val;
	return NULL;
}

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
	int fd, r;

	*body = NULL;
	fd = ctl_connect(path, err, errlen);
	if (fd < 0)
		return fd;
	r = sxm_ctl_send(fd, request, strlen(request));
	if (!r)
		r = sxm_ctl_send(fd, "\n", 1);
	if (!r && shutdown(fd, SHUT_WR))
		r = -errno;
	if (!r)
		r = read_all(fd, &b);
	close(fd);
	if (r) {
		snprintf(err, errlen, "daemon socket %s: %s", path,
			 strerror(-r));
		sxm_buf_free(&b);
		return r;
	}
	if (!b.s || !b.len) {
		/* The daemon closes without a word only when it refuses us. */
		snprintf(err, errlen,
			 "the daemon at %s closed the connection without an answer (not root or its --group?)",
			 path);
		sxm_buf_free(&b);
		return -EPERM;
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
