/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The daemon (daemon.c): the service behind the control socket
 * (daemon/ctl.h has its wire format).  It checks who connects, reads one
 * request per connection, and asks the job layer (jobs/core.h) to act;
 * the jobs' threads, phases and records are the job layer's.
 *
 * Threads: the main thread accepts connections; each connection gets a
 * short-lived thread that answers its one request; each job that is not
 * Completed or Cancelled has a thread of its own (jobs/core.h).
 */
#ifndef SXM_DAEMON_H
#define SXM_DAEMON_H

struct sxm_daemon_opts {
	const char *state_dir;		/* job records */
	const char *socket;		/* the control socket */
	const char *group;		/* may use the socket too; NULL: root */
};

/* Run the daemon in the foreground until SIGTERM or SIGINT. */
int sxm_daemon_run(const struct sxm_daemon_opts *o);

#endif /* SXM_DAEMON_H */
