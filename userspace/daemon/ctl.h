/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The control socket: how the CLI talks to "sxm-ctl daemon".
 *
 * A Unix stream socket ($SXM_SOCKET, default /run/sxm/sxm.sock), mode 0660,
 * root or the daemon's --group only (the daemon checks SO_PEERCRED too).
 * One request per connection, one line of words:
 *
 *   VERB key=value key=value ...\n
 *
 * with values escaped as %XX (bytes below 0x21, '%', '=', 0x7f), and the
 * answer is text up to the end of the connection:
 *
 *   ok\n                              then the body, "key=value" lines
 *   err ERRNO MESSAGE\n               (ERRNO a positive errno number)
 *
 * Verbs (daemon.c): submit, list, show, sync, pause, resume, cadence,
 * cutover, cancel, retry, forget.  The body of list and show is one
 * "job ..." line per job (job.h), and show adds "event ..." lines.
 *
 * This file has the paths, sending, and the client's call; the words and
 * escapes both sides use are base/buf.h's.  Error policy as in sxm.h.
 */
#ifndef SXM_CTL_H
#define SXM_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define SXM_SOCKET_DEFAULT	"/run/sxm/sxm.sock"
#define SXM_JOB_DIR_DEFAULT	"/var/lib/sxm"
#define SXM_CTL_MAX_REQUEST	8192	/* bytes of one request line */
#define SXM_CTL_MAX_WORDS	32

/*
 * Send all of @p on a connected control socket, either side: a peer that
 * went away is -EPIPE, not a SIGPIPE.
 */
int sxm_ctl_send(int fd, const char *p, size_t len);

/* $SXM_SOCKET, or the default. */
const char *sxm_ctl_socket_path(void);
/* $SXM_JOB_DIR, or the default. */
const char *sxm_ctl_job_dir(void);

/*
 * Send @request (one line, no newline) to the daemon and read the answer.
 * 0 with *@body (malloc'd, maybe "") after "ok"; the daemon's -errno with
 * its message in @err after "err"; or -errno with what went wrong in
 * @err when the daemon cannot be reached ("is sxm-ctl daemon running?")
 * or is not allowed (root or its group only).
 */
int sxm_ctl_call(const char *request, char **body, char *err, size_t errlen);

#endif /* SXM_CTL_H */
