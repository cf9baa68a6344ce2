// SPDX-License-Identifier: GPL-2.0
/*
 * show_load_tool SOCKET CLIENTS SECONDS JOB... — CLIENTS threads, each a
 * client of the daemon on SOCKET as sxm-ctl is one (a connection per
 * request: "show job=NAME", the write side shut, the answer read to its
 * end), looping over the JOBs for SECONDS.  Prints one line:
 *
 *   calls N errors E p50_us X p99_us Y max_us Z
 *
 * and exits 1 if any answer was not "ok" with a JSON body, or no call was
 * answered at all.  For tests/vm/70-load.sh.
 */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES	(1 << 20)

static const char *sock_path;
static char **jobs;
static int njobs;
static double until;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *samples;	/* microseconds */
static size_t nsamples;
static unsigned long calls, errors;
static char first_error[512];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One request; 0 and the answer's first line in @line, or -errno. */
static int call(const char *job, char *line, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[512], buf[65536];
	size_t got = 0;
	ssize_t n;
	int fd, r = 0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		goto out;
	}
	n = snprintf(req, sizeof(req), "show job=%s\n", job);
	if (write(fd, req, n) != n || shutdown(fd, SHUT_WR)) {
		r = -EIO;
		goto out;
	}
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
		got += n;
		if (got == sizeof(buf) - 1)
			got = 0;	/* only the start and the end matter */
	}
	if (n < 0)
		r = -errno;
	buf[got] = '\0';
	snprintf(line, len, "%.*s", (int)strcspn(buf, "\n"), buf);
out:
	close(fd);
	return r;
}

static void *client(void *arg)
{
	unsigned int i = (unsigned int)(uintptr_t)arg;
	char line[256];

	while (now() < until) {
		const char *job = jobs[i++ % njobs];
		double t0 = now();
		int r = call(job, line, sizeof(line));
		double dt = now() - t0;
		bool ok = !r && !strcmp(line, "ok");

		pthread_mutex_lock(&lock);
		calls++;
		if (!ok) {
			errors++;
			if (!first_error[0])
				snprintf(first_error, sizeof(first_error),
					 "show %s: %s", job,
					 r ? strerror(-r) : line);
		} else if (nsamples < MAX_SAMPLES) {
			samples[nsamples++] = (uint32_t)(dt * 1e6);
		}
		pthread_mutex_unlock(&lock);
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	pthread_t *t;
	int nclients, i;

	if (argc < 5) {
		fprintf(stderr, "usage: %s SOCKET CLIENTS SECONDS JOB...\n",
			argv[0]);
		return 2;
	}
	sock_path = argv[1];
	nclients = atoi(argv[2]);
	until = now() + atof(argv[3]);
	jobs = argv + 4;
	njobs = argc - 4;
	samples = malloc(MAX_SAMPLES * sizeof(*samples));
	t = calloc(nclients, sizeof(*t));
	if (nclients < 1 || !samples || !t)
		return 2;
	for (i = 0; i < nclients; i++)
		if (pthread_create(&t[i], NULL, client, (void *)(uintptr_t)i))
			return 2;
	for (i = 0; i < nclients; i++)
		pthread_join(t[i], NULL);
	qsort(samples, nsamples, sizeof(*samples), cmp_u32);
	printf("calls %lu errors %lu p50_us %u p99_us %u max_us %u\n", calls,
	       errors, nsamples ? samples[nsamples / 2] : 0,
	       nsamples ? samples[nsamples * 99 / 100] : 0,
	       nsamples ? samples[nsamples - 1] : 0);
	if (first_error[0])
		printf("first error: %s\n", first_error);
	return errors || !nsamples ? 1 : 0;
}
