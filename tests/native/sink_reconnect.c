// SPDX-License-Identifier: GPL-2.0
/*
 * The NBD sink when its server goes away, with real nbdkit servers: one
 * killed while idle (its kernel sends FIN: libnbd calls the connection
 * "closed", not "dead"), one killed with requests unread in its socket
 * (RST: "dead"), one stopped with SIGTERM while a write waits in it (the
 * write fails with ESHUTDOWN).  After each, ->process() says -ENOTCONN
 * once (the mirror pump's cue), and once the server is back the next
 * write and flush go through on a fresh connection, as does a copy; a
 * server that is still down fails requests at once.  A flush after the
 * loss of writes that no flush covered fails once: they may be gone.
 *
 * The server listens on a socket this program made and hands over
 * (LISTEN_FDS, nbdkit's socket activation), so that a restarted server is
 * on the same port at once, and a client that connects before it runs
 * waits in the backlog instead of being refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "io/copy.h"
#include "io/engine.h"
#include "io/sink.h"

#include "kselftest_harness.h"

#define MiB		(1ULL << 20)
#define SIZE		(8 * MiB)	/* the export */
#define WLEN		(256 << 10)	/* a write */
#define NWRITES		8		/* out at once when the server dies */
#define RETRY_SLEEP_MS	1100		/* past NBD_RETRY_MS (sink_nbd.c) */

FIXTURE(srv) {
	char dir[64];
	char img[96];
	char log[96];			/* this program's stderr, while caught */
	char uri[64];
	int port;
	int lfd;			/* the listening socket, or -1 */
	pid_t pid;			/* nbdkit, or 0 */
	int saved_err;			/* stderr, while caught */
	struct sxm_sink *sink;
};

static void msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Listen on 127.0.0.1, on the port of earlier servers if there was one. */
static int listen_on(int *port)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(*port),
	};
	socklen_t len = sizeof(a);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/*
 * nbdkit on the listening socket, serving the image: @args are its
 * options (-x) before the plugin and the parameters (x=y) after it.
 */
static pid_t server_start(FIXTURE_DATA(srv) *self, const char *const *args)
{
	const char *argv[16] = { "nbdkit", "--foreground", "--exit-with-parent" };
	char file[128], pid[16];
	unsigned int n = 3, i;
	pid_t p;
	int fd;

	for (i = 0; args && args[i]; i++)
		if (args[i][0] == '-')
			argv[n++] = args[i];
	snprintf(file, sizeof(file), "file=%s", self->img);
	argv[n++] = "file";
	argv[n++] = file;
	for (i = 0; args && args[i]; i++)
		if (args[i][0] != '-')
			argv[n++] = args[i];
	argv[n] = NULL;

	if (self->lfd < 0)
		self->lfd = listen_on(&self->port);
	if (self->lfd < 0)
		return -1;
	p = fork();
	if (p)
		return p;
	/* The child: the socket as fd 3, for nbdkit's socket activation. */
	if (dup2(self->lfd, 3) < 0)
		_exit(127);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	fd = open("/dev/null", O_WRONLY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execvp("nbdkit", (char **)argv);
	_exit(127);
}

static void server_kill(FIXTURE_DATA(srv) *self, int sig)
{
	if (self->pid <= 0)
		return;
	kill(self->pid, sig);
	waitpid(self->pid, NULL, 0);
	self->pid = 0;
}

/* Nothing listens any more: a connection is refused. */
static void server_gone(FIXTURE_DATA(srv) *self)
{
	if (self->lfd >= 0)
		close(self->lfd);
	self->lfd = -1;
}

/* Catch this program's stderr (the sink's debug log) in self->log. */
static void catch_log(FIXTURE_DATA(srv) *self)
{
	int fd = open(self->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	fflush(stderr);
	self->saved_err = dup(2);
	dup2(fd, 2);
	close(fd);
	sxm_verbose = 1;
}

/* Stop catching it; whether what was caught has @what in it. */
static bool caught(FIXTURE_DATA(srv) *self, const char *what)
{
	char buf[16384];
	ssize_t n = 0;
	int fd;

	if (self->saved_err >= 0) {
		fflush(stderr);
		dup2(self->saved_err, 2);
		close(self->saved_err);
		self->saved_err = -1;
		sxm_verbose = 0;
	}
	fd = open(self->log, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	if (!strstr(buf, what))
		fprintf(stderr, "# no '%s' in the log:\n%s", what, buf);
	return strstr(buf, what);
}

FIXTURE_SETUP(srv)
{
	int fd;

	self->lfd = -1;
	self->pid = 0;
	self->saved_err = -1;
	self->sink = NULL;
	self->port = 0;
	if (system("command -v nbdkit >/dev/null 2>&1"))
		SKIP(return, "nbdkit is not installed");
	strcpy(self->dir, "/tmp/sxm-sink-reconnect.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->img, sizeof(self->img), "%s/img", self->dir);
	snprintf(self->log, sizeof(self->log), "%s/log", self->dir);
	fd = open(self->img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, SIZE));
	close(fd);
	self->lfd = listen_on(&self->port);
	ASSERT_LE(0, self->lfd);
	snprintf(self->uri, sizeof(self->uri), "nbd://127.0.0.1:%d/",
		 self->port);
}

FIXTURE_TEARDOWN(srv)
{
	if (self->saved_err >= 0)
		caught(self, "");
	sxm_sink_close(self->sink);
	server_kill(self, SIGKILL);
	server_gone(self);
	if (self->dir[0]) {
		unlink(self->img);
		unlink(self->log);
		rmdir(self->dir);
	}
}

/* A request run to its end. */
struct sreq {
	struct sxm_sink_req req;	/* first: the completion casts back */
	bool done;
	int err;
};

static void sreq_done(struct sxm_sink_req *req, int err)
{
	struct sreq *q = (struct sreq *)req;

	q->done = true;
	q->err = err;
}

/*
 * Wait for @q, queued with @r as the result; its error.  *@lost counts
 * the times ->process() said a connection was lost.
 */
static int sreq_wait(struct sxm_sink *s, struct sreq *q, int r, int *lost)
{
	int i;

	if (r)
		return r;
	for (i = 0; !q->done && i < 300; i++) {
		r = sxm_sink_wait(s, 100);
		/* A loss is said once; the request completes all the same. */
		if (r == -ENOTCONN && lost)
			(*lost)++;
		else if (r && r != -ENOTCONN)
			return r;
	}
	return q->done ? q->err : -ETIMEDOUT;
}

static int write_sync(struct sxm_sink *s, const void *buf, uint64_t off)
{
	struct sreq q = { .req.done = sreq_done };

	return sreq_wait(s, &q, s->ops->pwrite(s, buf, WLEN, off, 0, &q.req),
			 NULL);
}

static int read_sync(struct sxm_sink *s, void *buf, uint64_t off)
{
	struct sreq q = { .req.done = sreq_done };

	return sreq_wait(s, &q, s->ops->pread(s, buf, WLEN, off, &q.req),
			 NULL);
}

static void *pattern(unsigned char seed)
{
	unsigned char *p = malloc(WLEN);
	size_t i;

	for (i = 0; p && i < WLEN; i++)
		p[i] = seed + i * 7;
	return p;
}

static void open_sink(struct __test_metadata *_metadata,
		      FIXTURE_DATA(srv) *self)
{
	struct sxm_sink_opts so = { .min_size = SIZE, .timeout_ms = 10000 };
	char err[512];

	ASSERT_EQ(0, sxm_sink_open(self->uri, &so, &self->sink, err,
				   sizeof(err))) TH_LOG("%s", err);
	/* nbdkit's file plugin allows multi-conn: several connections. */
	ASSERT_LT(1, self->sink->conns);
}

/* Poll the sink as the mirror pump does; whether a loss was reported. */
static bool poll_says_lost(struct sxm_sink *s)
{
	int i;

	for (i = 0; i < 50; i++)
		if (sxm_sink_wait(s, 100) == -ENOTCONN)
			return true;
	return false;
}

/* Killed while idle: FIN, "closed"; down a while, then back. */
TEST_F(srv, closed_while_idle)
{
	unsigned char *a = pattern(1), *b = pattern(2), *got = malloc(WLEN);
	struct sxm_sink *s;
	unsigned int conns;

	ASSERT_TRUE(a && b && got);
	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	open_sink(_metadata, self);
	s = self->sink;
	conns = s->conns;
	ASSERT_EQ(0, write_sync(s, a, 0));
	ASSERT_EQ(0, sxm_sink_flush_sync(s));

	catch_log(self);
	server_kill(self, SIGKILL);
	/* Polled while idle, as the pump polls: the FIN is a loss. */
	EXPECT_TRUE(poll_says_lost(s));
	EXPECT_EQ(0, s->in_flight);
	EXPECT_TRUE(caught(self, "lost: closed by the server"));

	/* Down: a request fails at once, and the next ones too. */
	server_gone(self);
	EXPECT_EQ(-ENOTCONN, write_sync(s, b, WLEN));
	EXPECT_EQ(-ENOTCONN, sxm_sink_flush_sync(s));

	/* Back: a flush (what it covers was flushed), a write, a read. */
	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	msleep(RETRY_SLEEP_MS);
	catch_log(self);
	EXPECT_EQ(0, sxm_sink_flush_sync(s));
	EXPECT_TRUE(caught(self, "reconnected"));
	EXPECT_EQ(conns, s->conns);
	EXPECT_EQ(0, write_sync(s, b, WLEN));
	EXPECT_EQ(0, sxm_sink_flush_sync(s));
	EXPECT_EQ(0, read_sync(s, got, 0));
	EXPECT_EQ(0, memcmp(got, a, WLEN));
	EXPECT_EQ(0, read_sync(s, got, WLEN));
	EXPECT_EQ(0, memcmp(got, b, WLEN));
	free(a);
	free(b);
	free(got);
}

/*
 * Killed with writes unread in its socket: RST, "dead".  The writes fail
 * as lost; the restarted server takes the next.
 */
TEST_F(srv, reset_with_requests_out)
{
	/* One request at a time per connection, each held for 3 s. */
	static const char *const slow[] = {
		"--threads=1", "--filter=delay", "delay-write=3", NULL
	};
	struct sreq q[NWRITES];
	unsigned char *a = pattern(3), *got = malloc(WLEN);
	struct sxm_sink *s;
	int i, r, lost = 0;

	ASSERT_TRUE(a && got);
	self->pid = server_start(self, slow);
	ASSERT_LT(0, self->pid);
	open_sink(_metadata, self);
	s = self->sink;

	/* Two or more per connection: the second waits, unread. */
	for (i = 0; i < NWRITES; i++) {
		q[i] = (struct sreq){ .req.done = sreq_done };
		ASSERT_EQ(0, s->ops->pwrite(s, a, WLEN, i * (uint64_t)WLEN,
					    0, &q[i].req));
	}
	for (i = 0; i < 5; i++)
		sxm_sink_wait(s, 100);
	catch_log(self);
	server_kill(self, SIGKILL);
	for (i = 0; i < NWRITES; i++) {
		r = sreq_wait(s, &q[i], 0, &lost);
		EXPECT_TRUE(sxm_sink_conn_err(r)) TH_LOG("write %d: %d", i, r);
	}
	EXPECT_EQ(0, s->in_flight);
	EXPECT_LE(1, lost);
	EXPECT_TRUE(caught(self, "Connection reset by peer"));

	/* The server back, quick now: the next write and flush go through. */
	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	EXPECT_EQ(0, write_sync(s, a, 0));
	EXPECT_EQ(0, sxm_sink_flush_sync(s));
	EXPECT_EQ(0, read_sync(s, got, 0));
	EXPECT_EQ(0, memcmp(got, a, WLEN));
	free(a);
	free(got);
}

/* SIGTERM with a write held in the server: it answers ESHUTDOWN. */
TEST_F(srv, shutdown_with_a_write_out)
{
	static const char *const slow[] = {
		"--filter=delay", "delay-write=10", NULL
	};
	unsigned char *a = pattern(4), *got = malloc(WLEN);
	struct sreq q = { .req.done = sreq_done };
	struct sxm_sink *s;
	int lost = 0;

	ASSERT_TRUE(a && got);
	self->pid = server_start(self, slow);
	ASSERT_LT(0, self->pid);
	open_sink(_metadata, self);
	s = self->sink;

	ASSERT_EQ(0, s->ops->pwrite(s, a, WLEN, 0, 0, &q.req));
	sxm_sink_wait(s, 300);
	catch_log(self);
	kill(self->pid, SIGTERM);
	EXPECT_EQ(-ESHUTDOWN, sreq_wait(s, &q, 0, &lost));
	EXPECT_TRUE(caught(self, strerror(ESHUTDOWN)));
	server_kill(self, SIGKILL);

	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	EXPECT_EQ(0, write_sync(s, a, 0));
	EXPECT_EQ(0, sxm_sink_flush_sync(s));
	EXPECT_EQ(0, read_sync(s, got, 0));
	EXPECT_EQ(0, memcmp(got, a, WLEN));
	free(a);
	free(got);
}

/*
 * A write done but not flushed when the server died may be lost with it:
 * the flush after says so, once; written again, it is flushed.
 */
TEST_F(srv, flush_after_unflushed_writes_lost)
{
	unsigned char *a = pattern(5);
	struct sxm_sink *s;

	ASSERT_NE(NULL, a);
	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	open_sink(_metadata, self);
	s = self->sink;
	ASSERT_EQ(0, write_sync(s, a, 0));

	server_kill(self, SIGKILL);
	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	EXPECT_EQ(-ENOTCONN, sxm_sink_flush_sync(s));
	EXPECT_EQ(0, write_sync(s, a, 0));
	EXPECT_EQ(0, sxm_sink_flush_sync(s));
	EXPECT_EQ(0, sxm_sink_flush_sync(s));
	free(a);
}

/* The copy engine on a sink whose server was restarted since. */
TEST_F(srv, copy_after_restart)
{
	struct sxm_copy_opts o = { .region_size = MiB };
	unsigned char *data = malloc(SIZE), *got = malloc(WLEN);
	struct sxm_copy_result res;
	struct sxm_source *src;
	char path[128], err[256];
	struct sxm_sink *s;
	uint64_t off;
	int fd, pass;

	ASSERT_TRUE(data && got);
	snprintf(path, sizeof(path), "%s/src", self->dir);
	self->pid = server_start(self, NULL);
	ASSERT_LT(0, self->pid);
	open_sink(_metadata, self);
	s = self->sink;

	for (pass = 0; pass < 2; pass++) {
		for (off = 0; off < SIZE; off++)
			data[off] = off * 13 + pass * 101 + (off >> 12);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ASSERT_LE(0, fd);
		ASSERT_EQ(SIZE, write(fd, data, SIZE));
		close(fd);
		ASSERT_EQ(0, sxm_source_open(path, &src, err, sizeof(err)))
			TH_LOG("%s", err);
		EXPECT_EQ(0, sxm_copy(src, s, &o, &res))
			TH_LOG("pass %d: %s", pass, res.errmsg);
		sxm_copy_result_free(&res);
		sxm_source_close(src);
		for (off = 0; off < SIZE; off += 1 * MiB) {
			EXPECT_EQ(0, read_sync(s, got, off));
			EXPECT_EQ(0, memcmp(got, data + off, WLEN))
				TH_LOG("pass %d at %llu", pass,
				       (unsigned long long)off);
		}
		/* Between the passes the server is killed and back. */
		server_kill(self, SIGKILL);
		self->pid = server_start(self, NULL);
		ASSERT_LT(0, self->pid);
	}
	unlink(path);
	free(data);
	free(got);
}

TEST_HARNESS_MAIN
