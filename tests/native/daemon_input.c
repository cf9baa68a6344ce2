// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon against bad input, with the real daemon (build/userspace/
 * sxm-ctl daemon; without a kernel it has no device, which is what a job
 * whose device is gone finds):
 *
 *   its clients   garbage, an oversized request, one cut short (no
 *                 newline: never acted on), a hundred idle connections
 *                 held open, a client that trickles its request, clients
 *                 that go away before their answer, and more connections
 *                 than it answers at once;
 *   its state     job records that are garbage, truncated or from a
 *                 newer sxm-ctl, one whose device is gone, two that claim
 *                 one device, and a state directory that is full or
 *                 read-only when a record is saved.
 *
 * After each the daemon is alive and answers a real client, and no record
 * is lost or half written.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "base/sxm.h"
#include "daemon/ctl.h"
#include "jobs/job.h"

#include "kselftest_harness.h"

#define SXM_CTL_BIN	"build/userspace/sxm-ctl"

FIXTURE(daemon) {
	char dir[64];
	char sock[96];
	pid_t pid;
};

/* A connection to the daemon's socket, or -1. */
static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* What the daemon answers on @fd, until it closes (at most @ms). */
static int answer_of(int fd, char *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t used = 0;
	ssize_t n;

	buf[0] = '\0';
	while (used + 1 < len && poll(&p, 1, ms) == 1) {
		n = read(fd, buf + used, len - used - 1);
		if (n <= 0)
			break;
		used += n;
		buf[used] = '\0';
	}
	return (int)used;
}

/* A real client's "list": 0 if the daemon answered it (@say: why not). */
static int list_answered(bool say)
{
	char err[512], *body = NULL;
	int r = sxm_ctl_call("list", &body, err, sizeof(err));

	free(body);
	if (r && say)
		fprintf(stderr, "# list: %s\n", err);
	return r;
}

static int list_ok(void)
{
	return list_answered(true);
}

/*
 * "sxm-ctl daemon" on @dir/state and @sock, its output in @dir/log; its
 * pid, once it answers, or -1.
 */
static pid_t start_daemon(const char *dir, const char *sock)
{
	char state[96], log[96];
	pid_t pid;
	int fd, i;

	setenv("SXM_SOCKET", sock, 1);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		snprintf(state, sizeof(state), "%s/state", dir);
		snprintf(log, sizeof(log), "%s/log", dir);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		/* $SXM_CTL: another build (the ASan+UBSan pass's). */
		execl(getenv("SXM_CTL") ? getenv("SXM_CTL") : SXM_CTL_BIN,
		      "sxm-ctl", "daemon", "--state-dir", state, "--socket",
		      sock, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100 && list_answered(false); i++)
		usleep(100000);
	return list_ok() ? -1 : pid;
}

static void stop_daemon(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
}

static void remove_dir(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "umount %s/state 2>/dev/null; rm -rf %s",
		 dir, dir);
	if (system(cmd))
		fprintf(stderr, "# %s failed\n", cmd);
}

FIXTURE_SETUP(daemon)
{
	snprintf(self->dir, sizeof(self->dir), "/tmp/sxm-input-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	self->pid = start_daemon(self->dir, self->sock);
	ASSERT_LT(0, self->pid);
}

FIXTURE_TEARDOWN(daemon)
{
	stop_daemon(self->pid);
	remove_dir(self->dir);
}

TEST_F(daemon, garbage_is_refused)
{
	static const char junk[] = "\x01\x02\xff ==== %zz =x=y\n";
	char buf[512];
	int fd = dial(self->sock);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sxm_ctl_send(fd, junk, sizeof(junk) - 1));
	answer_of(fd, buf, sizeof(buf), 5000);
	close(fd);
	EXPECT_EQ(0, strncmp(buf, "err ", 4));
	EXPECT_EQ(0, list_ok());
}

TEST_F(daemon, oversized_request_is_refused)
{
	char *big = malloc(4 * SXM_CTL_MAX_REQUEST), buf[512];
	int fd = dial(self->sock);

	ASSERT_NE(NULL, big);
	ASSERT_LE(0, fd);
	memset(big, 'a', 4 * SXM_CTL_MAX_REQUEST);
	/* The daemon may close before it has read it all. */
	sxm_ctl_send(fd, big, 4 * SXM_CTL_MAX_REQUEST);
	answer_of(fd, buf, sizeof(buf), 5000);
	close(fd);
	free(big);
	EXPECT_NE(NULL, strstr(buf, "longer than a request may be"));
	EXPECT_EQ(0, list_ok());
}

TEST_F(daemon, request_cut_short_is_not_acted_on)
{
	char buf[512];
	int fd = dial(self->sock);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sxm_ctl_send(fd, "list", 4));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	answer_of(fd, buf, sizeof(buf), 5000);
	close(fd);
	EXPECT_NE(NULL, strstr(buf, "did not end with a newline; nothing done"));
	EXPECT_EQ(0, strncmp(buf, "err ", 4));
}

TEST_F(daemon, idle_clients_do_not_hold_up_others)
{
	struct pollfd p;
	int fds[100], i, open = 0;

	for (i = 0; i < 100; i++) {
		fds[i] = dial(self->sock);
		ASSERT_LE(0, fds[i]);
	}
	/* Answered while all hundred still wait, connected and unanswered. */
	EXPECT_EQ(0, list_ok());
	for (i = 0; i < 100; i++) {
		p = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (poll(&p, 1, 0) == 0)
			open++;
		close(fds[i]);
	}
	EXPECT_EQ(100, open);
	EXPECT_EQ(0, list_ok());
}

TEST_F_TIMEOUT(daemon, trickling_client_is_cut_off, 60)
{
	struct pollfd p;
	char buf[512];
	int fd = dial(self->sock), sent = 0;

	ASSERT_LE(0, fd);
	/* A byte a second, never a newline: cut off after the timeout. */
	for (;;) {
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) == 1)
			break;
		if (sxm_ctl_send(fd, "l", 1))
			break;
		ASSERT_GT(30, ++sent);
	}
	answer_of(fd, buf, sizeof(buf), 5000);
	close(fd);
	EXPECT_NE(NULL, strstr(buf, "Connection timed out; nothing done"));
	EXPECT_EQ(0, list_ok());
}

TEST_F(daemon, clients_gone_before_their_answer)
{
	int fd, i;

	for (i = 0; i < 50; i++) {
		fd = dial(self->sock);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, sxm_ctl_send(fd, "list\n", 5));
		/* Closed with the answer unread: the daemon's send fails. */
		close(fd);
	}
	EXPECT_EQ(0, list_ok());
	EXPECT_EQ(0, kill(self->pid, 0));
}

TEST_F(daemon, more_connections_than_it_answers_at_once)
{
	enum { N = 300 };
	char buf[256], err[512], *body = NULL;
	int fds[N], i, busy = 0;

	for (i = 0; i < N; i++) {
		fds[i] = dial(self->sock);
		ASSERT_LE(0, fds[i]);
	}
	/* A new client while they all hold theirs: told, at once. */
	EXPECT_EQ(-EBUSY, sxm_ctl_call("list", &body, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "connections open: try again"));
	for (i = 0; i < N; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };

		if (poll(&p, 1, 0) == 1 && answer_of(fds[i], buf, sizeof(buf), 100) &&
		    strstr(buf, "connections open"))
			busy++;
		close(fds[i]);
	}
	EXPECT_LE(N - 256, busy);
	/* Each gone, the daemon answers again. */
	for (i = 0; i < 50 && list_answered(false); i++)
		usleep(100000);
	EXPECT_EQ(0, list_ok());
}

/* ---------------------------------------------------------- its state ---- */

FIXTURE(state) {
	char dir[64];
	char sock[96];
	char state[96];
	pid_t pid;
};

FIXTURE_SETUP(state)
{
	snprintf(self->dir, sizeof(self->dir), "/tmp/sxm-state-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->sock, sizeof(self->sock), "%s/sock", self->dir);
	snprintf(self->state, sizeof(self->state), "%s/state", self->dir);
	ASSERT_EQ(0, mkdir(self->state, 0700));
	self->pid = -1;
}

FIXTURE_TEARDOWN(state)
{
	stop_daemon(self->pid);
	remove_dir(self->dir);
}

/* Write @text as @dir/@name. */
static int put(const char *dir, const char *name, const char *text)
{
	char path[160];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	r = fputs(text, f) < 0;
	return fclose(f) || r ? -1 : 0;
}

/* @dir/@name's text (malloc'd), or NULL. */
static char *get(const char *dir, const char *name)
{
	char path[160], *buf = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* A warm job @name in Ready on dm device @device, as a record's text. */
static char *record(const char *name, const char *device)
{
	struct sxm_job_rec j;

	sxm_job_rec_init(&j);
	snprintf(j.name, sizeof(j.name), "%s", name);
	snprintf(j.source, sizeof(j.source), "/dev/mapper/%s", device);
	snprintf(j.sink, sizeof(j.sink), "nbd://192.0.2.1/%s", name);
	snprintf(j.device, sizeof(j.device), "%s", device);
	j.src_mode = SXM_SRC_INSERTED;
	j.size = 16 << 20;
	j.full_done = j.size;
	j.phase = SXM_PHASE_READY;
	return sxm_job_rec_format(&j);
}

/* Job @name as the daemon shows it, into @j: 0, or -errno. */
static int shown(const char *name, struct sxm_job_rec *j)
{
	char req[128], err[512], *body = NULL, *nl;
	int r;

	snprintf(req, sizeof(req), "show job=%s", name);
	r = sxm_ctl_call(req, &body, err, sizeof(err));
	if (r)
		return r;
	nl = strchr(body, '\n');
	if (nl)
		*nl = '\0';
	sxm_job_rec_init(j);
	r = sxm_job_wire_parse_line(body, j);
	free(body);
	return r;
}

/* Until job @name is Failed (at most 10 s): 0, or -ETIMEDOUT. */
static int failed_job(const char *name, struct sxm_job_rec *j)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (!shown(name, j) && j->phase == SXM_PHASE_FAILED)
			return 0;
		usleep(100000);
	}
	return -ETIMEDOUT;
}

TEST_F(state, bad_records_are_kept_aside)
{
	static const char garbage[] = "hello, world\n\x01\x02";
	static const char newer[] = "sxm-job 2\nname newer\nphase Ready\n";
	char *good = record("good", "sxm-test-good"), *cut, *t, *log;

	ASSERT_NE(NULL, good);
	cut = strndup(good, 40);
	ASSERT_EQ(0, put(self->state, "garbage.job", garbage));
	ASSERT_EQ(0, put(self->state, "newer.job", newer));
	ASSERT_EQ(0, put(self->state, "cut.job", cut));
	ASSERT_EQ(0, put(self->state, "good.job", good));
	self->pid = start_daemon(self->dir, self->sock);
	ASSERT_LT(0, self->pid);
	/* Kept, whole, beside; the daemon runs the good one. */
	t = get(self->state, "garbage.job.bad");
	EXPECT_TRUE(t && !strcmp(t, garbage));
	free(t);
	t = get(self->state, "newer.job.bad");
	EXPECT_TRUE(t && !strcmp(t, newer));
	free(t);
	t = get(self->state, "cut.job.bad");
	EXPECT_TRUE(t && !strcmp(t, cut));
	free(t);
	log = get(self->dir, "log");
	ASSERT_NE(NULL, log);
	EXPECT_NE(NULL, strstr(log, "job record newer.job: written by a newer sxm-ctl"));
	EXPECT_NE(NULL, strstr(log, "job record garbage.job: unreadable; kept as garbage.job.bad"));
	free(log);
	EXPECT_EQ(0, list_ok());
	free(cut);
	free(good);
}

TEST_F(state, a_job_whose_device_is_gone_fails_alone)
{
	struct sxm_job_rec j;
	char *a = record("gone", "sxm-test-gone");

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, put(self->state, "gone.job", a));
	self->pid = start_daemon(self->dir, self->sock);
	ASSERT_LT(0, self->pid);
	ASSERT_EQ(0, failed_job("gone", &j));
	EXPECT_NE(NULL, strstr(j.reason, "/dev/mapper/sxm-test-gone"));
	EXPECT_EQ(SXM_PHASE_READY, j.fail_phase);
	EXPECT_EQ(0, list_ok());
	free(a);
}

TEST_F(state, two_records_for_one_device)
{
	struct sxm_job_rec a, b;
	char *ta = record("one", "sxm-test-shared");
	char *tb = record("two", "sxm-test-shared");
	const struct sxm_job_rec *second;

	ASSERT_NE(NULL, ta);
	ASSERT_NE(NULL, tb);
	ASSERT_EQ(0, put(self->state, "one.job", ta));
	ASSERT_EQ(0, put(self->state, "two.job", tb));
	self->pid = start_daemon(self->dir, self->sock);
	ASSERT_LT(0, self->pid);
	/* Both fail here (no device), but one for the claim, not resumed. */
	ASSERT_EQ(0, failed_job("one", &a));
	ASSERT_EQ(0, failed_job("two", &b));
	second = strstr(a.reason, "two records for one device") ? &a : &b;
	EXPECT_NE(NULL, strstr(second->reason, "claims /dev/mapper/sxm-test-shared too"));
	EXPECT_EQ(NULL, strstr((second == &a ? &b : &a)->reason, "two records"));
	free(ta);
	free(tb);
}

/* A full (or read-only) state directory when a record is saved. */
static void unwritable_state(struct __test_metadata *_metadata,
			     FIXTURE_DATA(state) *self, const char *how,
			     const char *errtext)
{
	char cmd[512], *before, *after;
	struct sxm_job_rec j;

	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=64k tmpfs %s", self->state);
	ASSERT_EQ(0, system(cmd));
	before = record("stuck", "sxm-test-stuck");
	ASSERT_NE(NULL, before);
	ASSERT_EQ(0, put(self->state, "stuck.job", before));
	ASSERT_EQ(0, put(self->state, "other.job", before));
	snprintf(cmd, sizeof(cmd), "%s", how);
	ASSERT_EQ(0, system(cmd));
	self->pid = start_daemon(self->dir, self->sock);
	ASSERT_LT(0, self->pid);
	ASSERT_EQ(0, failed_job("stuck", &j));
	EXPECT_NE(NULL, strstr(j.reason, "its record could not be saved in"));
	EXPECT_NE(NULL, strstr(j.reason, errtext));
	/* The record on disk is the last saved whole. */
	after = get(self->state, "stuck.job");
	EXPECT_TRUE(after && !strcmp(after, before));
	free(after);
	EXPECT_EQ(0, list_ok());
	free(before);
}

TEST_F(state, state_directory_full)
{
	char how[512];

	/* other.job is the job "stuck" too: its file is the filler's room. */
	snprintf(how, sizeof(how), "rm %s/other.job && dd if=/dev/zero of=%s/fill bs=4k status=none 2>/dev/null; true",
		 self->state, self->state);
	unwritable_state(_metadata, self, how, strerror(ENOSPC));
}

TEST_F(state, state_directory_read_only)
{
	char how[512];

	snprintf(how, sizeof(how), "rm %s/other.job && mount -o remount,ro %s",
		 self->state, self->state);
	unwritable_state(_metadata, self, how, strerror(EROFS));
}

TEST_HARNESS_MAIN
