// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl daemon: the helper service.  It keeps the warm-migration jobs,
 * runs each in a thread of its own (warm.c), and answers the CLI on a Unix
 * socket (ctl.h has the protocol).
 *
 * Threads (daemon.h has the locks):
 *   - the main thread: load the job records, start a thread for every job
 *     that is not finished, then accept connections and wait for SIGTERM
 *     or SIGINT (a signalfd; every thread blocks those signals);
 *   - one short-lived thread per connection: check the peer
 *     (SO_PEERCRED: root, or the --group), read its one request, answer,
 *     close;
 *   - one thread per unfinished job, which does the copying and sleeps
 *     on the job's condition variable between scheduled syncs: the
 *     scheduler is each job's own timed wait, woken early by requests.
 *
 * On SIGTERM every job stops at the next chunk boundary (a cutover in
 * progress is abandoned and the device resumed), its record is saved, and
 * the daemon exits; a restart resumes each job from its record and the
 * kernel's dirty map.
 *
 * Sections: jobs, requests, connections, the service.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include "base/sxm.h"
#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "dm/status.h"
#include "io/engine.h"
#include "jobs/core.h"
#include "jobs/phases.h"
#include "jobs/jobstore.h"

#define REQUEST_TIMEOUT_S	10	/* to send a request, and to read its answer */
#define MAX_CONNS		256	/* connections answered at once */

/* ------------------------------------------------------------------ */
/* Jobs                                                               */
/* ------------------------------------------------------------------ */

/* Drop a reference; d->lock held. */
static void job_put_locked(struct sxm_job *j)
{
	if (--j->refs)
		return;
	sxm_job_free(j);
}

static void job_put(struct sxm_job *j)
{
	struct sxm_jobs *d = j->d;

	pthread_mutex_lock(&d->lock);
	job_put_locked(j);
	pthread_mutex_unlock(&d->lock);
}

/* Take @j off the list and drop the list's reference; d->lock held. */
static void job_unlink_locked(struct sxm_job *j)
{
	struct sxm_job **pp;

	for (pp = &j->d->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			job_put_locked(j);
			return;
		}
}

/* The job called @name, with a reference, or NULL. */
static struct sxm_job *job_find(struct sxm_jobs *d, const char *name)
{
	struct sxm_job *j;

	pthread_mutex_lock(&d->lock);
	for (j = d->jobs; j; j = j->next)
		if (!j->submitting && !strcmp(j->rec.name, name)) {
			j->refs++;
			break;
		}
	pthread_mutex_unlock(&d->lock);
	return j;
}

static int job_start(struct sxm_job *j)
{
	int r;

	if (sxm_phase_final(j->rec.phase) || j->d->stopping)
		return 0;
	r = pthread_create(&j->thread, NULL, sxm_job_thread, j);
	if (r)
		return -r;
	j->thread_started = true;
	return 0;
}

/* Wake the job's thread; j->lock held. */
static void job_kick(struct sxm_job *j)
{
	pthread_cond_broadcast(&j->cond);
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

struct reply {
	int err;			/* positive errno, 0: ok */
	char msg[1024];
	struct sxm_buf body;
};

__attribute__((format(printf, 3, 4)))
static void reply_err(struct reply *rp, int err, const char *fmt, ...)
{
	va_list ap;
	char *p;

	rp->err = err < 0 ? -err : err;
	if (!rp->err)
		rp->err = EINVAL;
	va_start(ap, fmt);
	vsnprintf(rp->msg, sizeof(rp->msg), fmt, ap);
	va_end(ap);
	for (p = rp->msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

static void reply_job(struct reply *rp, struct sxm_job *j, bool events)
{
	struct sxm_job_rec *rec;
	char *line;

	rec = malloc(sizeof(*rec));
	if (!rec) {
		rp->body.oom = true;
		return;
	}
	sxm_job_snapshot(j, rec);
	line = sxm_job_wire_format(rec, events);
	if (line)
		sxm_buf_printf(&rp->body, "%s\n", line);
	else
		rp->body.oom = true;
	free(line);
	free(rec);
}

/*
 * Whether @j may be made: its name is free and its device is in no other
 * unfinished job.  Adds it to the list as reserved; d->lock held.
 */
static int reserve(struct sxm_jobs *d, struct sxm_job *j, struct reply *rp)
{
	struct sxm_job *o;

	for (o = d->jobs; o; o = o->next) {
		bool busy = !sxm_phase_final(o->rec.phase);

		if (!strcmp(o->rec.name, j->rec.name)) {
			reply_err(rp, EEXIST, "a job named %s exists already (%s)%s",
				  j->rec.name, o->submitting ? "being submitted" :
				  sxm_phase_name(o->rec.phase),
				  busy ? "" : ": sxm-ctl forget it first, or choose another --name");
			return -EEXIST;
		}
		if (busy && (!strcmp(o->rec.device, j->rec.device) ||
			     (o->src_rdev && o->src_rdev == j->src_rdev))) {
			reply_err(rp, EBUSY, "%s is already in job %s (%s): one job per device",
				  j->rec.source, o->rec.name,
				  o->submitting ? "being submitted" :
				  sxm_phase_name(o->rec.phase));
			return -EBUSY;
		}
	}
	j->submitting = true;
	j->next = d->jobs;
	d->jobs = j;
	j->refs++;
	return 0;
}

/*
 * Whether the block device @path is the source or the sxm device of an
 * unfinished job (then the reply says which).
 */
static bool in_a_job(struct sxm_jobs *d, const char *path, struct reply *rp)
{
	struct sxm_job *o;
	struct stat sb;
	bool busy = false;

	if (stat(path, &sb) || !S_ISBLK(sb.st_mode))
		return false;
	pthread_mutex_lock(&d->lock);
	for (o = d->jobs; o && !busy; o = o->next) {
		if (sxm_phase_final(o->rec.phase))
			continue;
		busy = o->src_rdev == sb.st_rdev ||
		       ((o->rec.dev_major || o->rec.dev_minor) &&
			makedev(o->rec.dev_major, o->rec.dev_minor) ==
			sb.st_rdev);
		if (busy)
			reply_err(rp, EBUSY, "%s is already in job %s (%s): one job per device",
				  path, o->rec.name, o->submitting ?
				  "being submitted" : sxm_phase_name(o->rec.phase));
	}
	pthread_mutex_unlock(&d->lock);
	return busy;
}

/*
 * What a submit asks of the checks on the sink, and its metadata device:
 * 0, or -1 replied.
 */
static int submit_checks(const struct sxm_kv *kv, unsigned int n,
			 struct sxm_job_rec *rec, struct reply *rp)
{
	const char *on_change = sxm_kv_get(kv, n, "on_sink_change");
	const char *no_verify = sxm_kv_get(kv, n, "no_verify");
	const char *metadata = sxm_kv_get(kv, n, "metadata");

	if (on_change && strcmp(on_change, "fail") &&
	    strcmp(on_change, "resync")) {
		reply_err(rp, EINVAL, "--on-sink-change %s: fail or resync",
			  on_change);
		return -1;
	}
	rec->sink_resync = on_change && !strcmp(on_change, "resync");
	if (no_verify && strcmp(no_verify, "1")) {
		reply_err(rp, EINVAL, "no_verify=%s: 1 or nothing", no_verify);
		return -1;
	}
	rec->no_verify = no_verify;
	if (metadata) {
		if (!sxm_table_word(metadata) ||
		    strlen(metadata) >= sizeof(rec->metadata)) {
			reply_err(rp, EINVAL, "--metadata %s: a device's path, without white space",
				  metadata);
			return -1;
		}
		snprintf(rec->metadata, sizeof(rec->metadata), "%s", metadata);
	}
	return 0;
}

/*
 * The record of a submit from its words (all checked, nothing else done):
 * 0, or -1 with the error replied.
 */
static int submit_args(const struct sxm_kv *kv, unsigned int n,
		       struct sxm_job_rec *rec, struct reply *rp)
{
	const char *source = sxm_kv_get(kv, n, "source");
	const char *sink = sxm_kv_get(kv, n, "sink");
	const char *kind = sxm_kv_get(kv, n, "kind");
	const char *name = sxm_kv_get(kv, n, "name");
	const char *cadence = sxm_kv_get(kv, n, "cadence");
	const char *rate = sxm_kv_get(kv, n, "rate");
	const char *engine = sxm_kv_get(kv, n, "engine");
	const char *region = sxm_kv_get(kv, n, "region_size");
	const char *io_timeout = sxm_kv_get(kv, n, "io_timeout");
	uint64_t v;

	if (!source || !sink) {
		reply_err(rp, EINVAL, "submit needs a source and a sink");
		return -1;
	}
	if (kind && strcmp(kind, SXM_KIND_WARM) && strcmp(kind, SXM_KIND_MIRROR)) {
		reply_err(rp, EINVAL, "--kind %s: warm, or sxm (mirror style)", kind);
		return -1;
	}
	if (strlen(source) >= sizeof(rec->source) ||
	    strlen(sink) >= sizeof(rec->sink)) {
		reply_err(rp, ENAMETOOLONG, "source or sink too long");
		return -1;
	}
	snprintf(rec->source, sizeof(rec->source), "%s", source);
	snprintf(rec->sink, sizeof(rec->sink), "%s", sink);
	if (kind)
		snprintf(rec->kind, sizeof(rec->kind), "%s", kind);
	if (name) {
		if (sxm_job_name_check(name)) {
			reply_err(rp, EINVAL, "--name '%s': 1 to %d of A-Z a-z 0-9 . _ + -, not starting with . or -",
				  name, SXM_JOB_NAME_MAX);
			return -1;
		}
		snprintf(rec->name, sizeof(rec->name), "%s", name);
	}
	if (cadence && sxm_cadence_parse(cadence, &rec->cadence_ms)) {
		reply_err(rp, EINVAL, "--cadence %s: manual or a duration of at least 1s (15m, 1h, 1d)",
			  cadence);
		return -1;
	}
	if (rate && parse_rate(rate, &rec->rate_limit)) {
		reply_err(rp, EINVAL, "--rate %s: a size per second (100M, 1G/s; 0: no limit)",
			  rate);
		return -1;
	}
	if (engine) {
		if (!sxm_engine_name_valid(engine)) {
			reply_err(rp, EINVAL, "--engine %s: uring, aio or auto",
				  engine);
			return -1;
		}
		snprintf(rec->engine, sizeof(rec->engine), "%s", engine);
	}
	if (region) {
		if (parse_size(region, &v) || v < 4096 || v > (1ULL << 30) ||
		    (v & (v - 1))) {
			reply_err(rp, EINVAL, "--region-size %s: a power of two from 4k to 1G",
				  region);
			return -1;
		}
		rec->region_size = v;
	}
	if (io_timeout) {
		if (parse_duration_ms(io_timeout, &v) || v < 1000 ||
		    v > 3600 * 1000) {
			reply_err(rp, EINVAL, "--io-timeout %s: a duration from 1s to 1h",
				  io_timeout);
			return -1;
		}
		rec->io_timeout_ms = v;
	}
	return submit_checks(kv, n, rec, rp);
}

/*
 * A submit's --metadata: a block device that is neither the source, nor
 * its sxm device, nor another unfinished job's metadata device, and that a
 * new track can be bound on (sxm_job_meta_fits()).
 */
static int submit_metadata(struct sxm_jobs *d, struct sxm_job *j, char *err,
			   size_t errlen)
{
	const struct sxm_job_rec *rec = &j->rec;
	struct sxm_job *o;
	struct stat sb, ob;
	int r = 0;

	if (rec->src_mode == SXM_SRC_EXISTING) {
		snprintf(err, errlen, "--metadata: %s is an sxm device already; its own table names its metadata device (sxm-ctl create --metadata)",
			 rec->source);
		return -EINVAL;
	}
	if (stat(rec->metadata, &sb)) {
		r = -errno;
		snprintf(err, errlen, "--metadata %s: %s", rec->metadata,
			 strerror(-r));
		return r;
	}
	if (!S_ISBLK(sb.st_mode)) {
		snprintf(err, errlen, "--metadata %s: not a block device (over a file: losetup -f --show FILE)",
			 rec->metadata);
		return -ENOTBLK;
	}
	/* Not the source, nor on it, nor under it (a partition, a PV...). */
	if (sxm_blk_under(sb.st_rdev, j->src_rdev) ||
	    sxm_blk_under(j->src_rdev, sb.st_rdev)) {
		snprintf(err, errlen, "--metadata %s is the source, or on it, or under it: its map would land in the VM's disk",
			 rec->metadata);
		return -EINVAL;
	}
	pthread_mutex_lock(&d->lock);
	for (o = d->jobs; o && !r; o = o->next) {
		if (sxm_phase_final(o->rec.phase) || !o->rec.metadata[0] ||
		    stat(o->rec.metadata, &ob) || ob.st_rdev != sb.st_rdev)
			continue;
		snprintf(err, errlen, "--metadata %s is job %s's metadata device",
			 rec->metadata, o->rec.name);
		r = -EBUSY;
	}
	pthread_mutex_unlock(&d->lock);
	return r ? r : sxm_job_meta_fits(j, err, errlen);
}

static void req_submit(struct sxm_jobs *d, const struct sxm_kv *kv,
		       unsigned int n, struct reply *rp)
{
	struct sxm_job_rec *rec;
	struct sxm_job *j;
	char err[768];
	int r;

	j = sxm_job_alloc(d);
	if (!j) {
		reply_err(rp, ENOMEM, "%s", strerror(ENOMEM));
		return;
	}
	rec = &j->rec;
	if (submit_args(kv, n, rec, rp))
		goto out_free;

	/* Ours already: say so before the device's state says it less well. */
	if (in_a_job(d, rec->source, rp))
		goto out_free;
	r = sxm_job_classify(j, err, sizeof(err));
	if (!r && rec->metadata[0])
		r = submit_metadata(d, j, err, sizeof(err));
	if (r) {
		reply_err(rp, r, "%s", err);
		goto out_free;
	}

	pthread_mutex_lock(&d->lock);
	r = reserve(d, j, rp);
	pthread_mutex_unlock(&d->lock);
	if (r)
		goto out_free;

	/* Initializing: the sink must be there, big enough and writable. */
	r = sxm_job_open_sink(j, true, err, sizeof(err));
	if (!r)
		r = sxm_job_sink_blocks_fit(j, err, sizeof(err));
	if (r) {
		reply_err(rp, r, "%s", err);
		goto out_unlink;
	}
	pthread_mutex_lock(&j->lock);
	r = sxm_job_begin(j);
	pthread_mutex_unlock(&j->lock);
	if (r) {
		reply_err(rp, r, "saving the job record in %s: %s",
			  d->state_dir, strerror(-r));
		goto out_unlink;
	}
	pthread_mutex_lock(&d->lock);
	j->submitting = false;
	r = job_start(j);
	pthread_mutex_unlock(&d->lock);
	if (r) {
		reply_err(rp, r, "starting the job: %s", strerror(-r));
		sxm_jobstore_remove(d->store_fd, rec->name);
		goto out_unlink;
	}
	reply_job(rp, j, false);
	job_put(j);
	return;

out_unlink:
	sxm_sink_close(j->run.sink);
	j->run.sink = NULL;
	pthread_mutex_lock(&d->lock);
	job_unlink_locked(j);
	job_put_locked(j);
	pthread_mutex_unlock(&d->lock);
	return;
out_free:
	job_put(j);
}

static void req_list(struct sxm_jobs *d, struct reply *rp)
{
	struct sxm_job **all, *j;
	size_t i, nr = 0;

	pthread_mutex_lock(&d->lock);
	for (j = d->jobs; j; j = j->next)
		nr++;
	all = calloc(nr + 1, sizeof(*all));
	nr = 0;
	for (j = d->jobs; j && all; j = j->next)
		if (!j->submitting) {
			j->refs++;
			all[nr++] = j;
		}
	pthread_mutex_unlock(&d->lock);
	if (!all) {
		reply_err(rp, ENOMEM, "%s", strerror(ENOMEM));
		return;
	}
	/* Oldest first. */
	for (i = nr; i-- > 0; ) {
		reply_job(rp, all[i], false);
		job_put(all[i]);
	}
	free(all);
}

/* A forget applied: the job's thread joined, its record and it gone. */
static void forget(struct sxm_jobs *d, struct sxm_job *j, struct reply *rp)
{
	bool join;
	int r;

	/* Final: its thread has ended or is ending. */
	pthread_mutex_lock(&d->lock);
	join = j->thread_started;
	j->thread_started = false;
	pthread_mutex_unlock(&d->lock);
	if (join)
		pthread_join(j->thread, NULL);
	r = sxm_jobstore_remove(d->store_fd, j->rec.name);
	if (r) {
		reply_err(rp, r, "removing the record of %s: %s", j->rec.name,
			  strerror(-r));
		job_put(j);
		return;
	}
	pthread_mutex_lock(&d->lock);
	job_unlink_locked(j);
	job_put_locked(j);
	pthread_mutex_unlock(&d->lock);
}

/* A request on one job: find it, check the command, apply it. */
static void req_job(struct sxm_jobs *d, const char *verb,
		    const struct sxm_kv *kv, unsigned int n, struct reply *rp)
{
	static const struct {
		const char *verb;
		int cmd;
	} cmds[] = {
		{ "show", -1 },
		{ "sync", SXM_CMD_SYNC },
		{ "pause", SXM_CMD_PAUSE },
		{ "resume", SXM_CMD_RESUME },
		{ "cadence", SXM_CMD_CADENCE },
		{ "cutover", SXM_CMD_CUTOVER },
		{ "cancel", SXM_CMD_CANCEL },
		{ "retry", SXM_CMD_RETRY },
		{ "forget", SXM_CMD_FORGET },
		{ "mirror", SXM_CMD_MIRROR },
		{ "verify", SXM_CMD_VERIFY },
	};
	const char *name = sxm_kv_get(kv, n, "job");
	const char *value = sxm_kv_get(kv, n, "value");
	struct sxm_job_args args = { 0 };
	struct sxm_job *j;
	char err[768];
	uint64_t ms = 0;
	size_t i;
	int cmd = -2, r;

	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmds[i].verb, verb))
			cmd = cmds[i].cmd;
	if (cmd == -2) {
		reply_err(rp, EINVAL, "unknown request '%s'", verb);
		return;
	}
	if (!name) {
		reply_err(rp, EINVAL, "%s: which job?", verb);
		return;
	}
	j = job_find(d, name);
	if (!j) {
		reply_err(rp, ENOENT, "no such job: %s", name);
		return;
	}
	if (cmd == -1) {
		reply_job(rp, j, true);
		job_put(j);
		return;
	}
	if (cmd == SXM_CMD_CADENCE &&
	    (!value || sxm_cadence_parse(value, &ms))) {
		reply_err(rp, EINVAL, "cadence %s: manual or a duration of at least 1s (15m, 1h, 1d)",
			  value ? value : "");
		job_put(j);
		return;
	}

	args.cadence_ms = ms;
	value = sxm_kv_get(kv, n, "verify");
	args.verify_all = value && !strcmp(value, "all");
	r = sxm_job_request(j, cmd, &args, err, sizeof(err));
	if (r) {
		reply_err(rp, r, "%s", err);
		job_put(j);
		return;
	}

	if (cmd == SXM_CMD_FORGET) {
		forget(d, j, rp);
		return;
	}
	reply_job(rp, j, false);
	if (cmd == SXM_CMD_SYNC) {
		pthread_mutex_lock(&j->lock);
		j->rec.want_sync = 0;
		pthread_mutex_unlock(&j->lock);
	}
	job_put(j);
}

/* ------------------------------------------------------------------ */
/* Connections                                                        */
/* ------------------------------------------------------------------ */

struct conn {
	struct sxm_jobs *d;
	int fd;
	bool allowed;		/* SO_PEERCRED said yes */
	unsigned int *conns;	/* the service's count, this one in it */
};

/*
 * Read one request line, whole, within REQUEST_TIMEOUT_S in all (a client
 * that trickles bytes is cut off as one that sends none): -EMSGSIZE if too
 * long, -ETIMEDOUT, or -EPROTO if the client closed before the newline (a
 * request cut short is never acted on).
 */
static int read_line(int fd, char *buf, size_t len)
{
	double until = sxm_mono_s() + REQUEST_TIMEOUT_S;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t used = 0;
	ssize_t n;
	int left;

	buf[0] = '\0';
	while (used + 1 < len && !strchr(buf, '\n')) {
		left = (int)((until - sxm_mono_s()) * 1000);
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			return -ETIMEDOUT;
		n = read(fd, buf + used, len - used - 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPROTO;
		used += n;
		buf[used] = '\0';
	}
	if (!strchr(buf, '\n'))
		return -EMSGSIZE;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static void answer(struct conn *c, char *line)
{
	struct sxm_kv kv[SXM_CTL_MAX_WORDS];
	struct reply rp = { 0 };
	unsigned int n;
	char head[1100];
	char *body;
	int r;

	r = sxm_kv_split(line, kv, ARRAY_SIZE(kv), &n);
	if (r || !n || kv[0].val)
		reply_err(&rp, EINVAL, "malformed request");
	else if (!strcmp(kv[0].key, "submit"))
		req_submit(c->d, kv, n, &rp);
	else if (!strcmp(kv[0].key, "list"))
		req_list(c->d, &rp);
	else
		req_job(c->d, kv[0].key, kv, n, &rp);

	if (!rp.err && rp.body.oom)
		reply_err(&rp, ENOMEM, "%s", strerror(ENOMEM));
	if (rp.err) {
		snprintf(head, sizeof(head), "err %d %s\n", rp.err, rp.msg);
		sxm_ctl_send(c->fd, head, strlen(head));
	} else {
		body = sxm_buf_take(&rp.body);
		sxm_ctl_send(c->fd, "ok\n", 3);
		if (body)
			sxm_ctl_send(c->fd, body, strlen(body));
		free(body);
	}
	sxm_buf_free(&rp.body);
}

/* Whether the peer may talk to us: root, us, or a member of @gid. */
static bool peer_allowed(int fd, gid_t gid, bool have_group)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char path[64], line[1024], *p, *end;
	bool ok = false;
	FILE *f;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (!have_group)
		return false;
	if (cr.gid == gid)
		return true;
	/* Supplementary groups, as the kernel has them for the peer. */
	snprintf(path, sizeof(path), "/proc/%d/status", cr.pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7))
			continue;
		for (p = line + 7; *p; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (g == gid)
				ok = true;
		}
	}
	fclose(f);
	return ok;
}

struct service {
	struct sxm_jobs d;
	gid_t gid;
	bool have_group;
	unsigned int conns;		/* connections being answered */
};

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	char *line;
	int r;

	line = malloc(SXM_CTL_MAX_REQUEST);
	if (!line)
		goto out;
	/*
	 * Read the request even from a refused peer: closing with it unread
	 * would reset the connection before the peer reads why.
	 */
	r = read_line(c->fd, line, SXM_CTL_MAX_REQUEST);
	if (!c->allowed) {
		snprintf(line, SXM_CTL_MAX_REQUEST,
			 "err %d permission denied: root or the daemon's --group only\n",
			 EPERM);
		sxm_ctl_send(c->fd, line, strlen(line));
	} else if (r) {
		snprintf(line, SXM_CTL_MAX_REQUEST, "err %d reading the request: %s; nothing done\n",
			 -r, r == -EPROTO ? "it did not end with a newline" :
			 r == -EMSGSIZE ? "longer than a request may be" :
			 strerror(-r));
		sxm_ctl_send(c->fd, line, strlen(line));
	} else {
		answer(c, line);
	}
	free(line);
out:
	close(c->fd);
	__atomic_sub_fetch(c->conns, 1, __ATOMIC_RELAXED);
	free(c);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The service                                                        */
/* ------------------------------------------------------------------ */

/*
 * Two records that claim one device (a copied state directory, a slip):
 * the second loaded is not resumed.  Why, into @why ("" if not); @rec is
 * not a listed job's.  No lock held.
 */
static void claimed_twice(struct sxm_jobs *d, const struct sxm_job_rec *rec,
			  char *why, size_t len)
{
	struct sxm_job *o;

	why[0] = '\0';
	if (!rec->device[0] || sxm_phase_final(rec->phase) ||
	    rec->phase == SXM_PHASE_FAILED)
		return;
	pthread_mutex_lock(&d->lock);
	for (o = d->jobs; o && !why[0]; o = o->next) {
		/* Device and name never change once a job is made. */
		if (strcmp(o->rec.device, rec->device))
			continue;
		pthread_mutex_lock(&o->lock);
		if (!sxm_phase_final(o->rec.phase))
			snprintf(why, len, "job %s claims /dev/mapper/%s too: two records for one device; this one is not resumed (cancel or forget one of them)",
				 o->rec.name, rec->device);
		pthread_mutex_unlock(&o->lock);
	}
	pthread_mutex_unlock(&d->lock);
}

static int load_one(struct sxm_job_rec *rec, void *opaque)
{
	struct sxm_jobs *d = opaque;
	struct sxm_job *j;
	struct stat sb;
	char why[512], err[768];
	int r;

	j = sxm_job_alloc(d);
	if (!j)
		return -ENOMEM;
	j->rec = *rec;
	if (!stat(rec->source, &sb) && S_ISBLK(sb.st_mode))
		j->src_rdev = sb.st_rdev;
	claimed_twice(d, rec, why, sizeof(why));
	if (!sxm_phase_final(rec->phase)) {
		pthread_mutex_lock(&j->lock);
		sxm_job_event(j, "daemon started: the job resumes in %s%s",
			      sxm_phase_name(rec->phase),
			      rec->paused ? " (paused)" : "");
		if (why[0])
			sxm_job_fail(j, why);
		sxm_job_save(j);
		pthread_mutex_unlock(&j->lock);
	}
	/*
	 * Its device gone (a reboot): put back now, before the daemon says it
	 * is up and the VMs start.  Not a job still making it (its phase
	 * does), nor one another record claims.
	 */
	if (!sxm_phase_final(rec->phase) && !why[0] &&
	    rec->phase != SXM_PHASE_INITIALIZING &&
	    rec->phase != SXM_PHASE_PREPARING &&
	    sxm_job_restore_device(j, err, sizeof(err)) < 0) {
		pthread_mutex_lock(&j->lock);
		sxm_job_event(j, "daemon started: its device could not be put back: %s",
			      err);
		pthread_mutex_unlock(&j->lock);
	}
	pthread_mutex_lock(&d->lock);
	j->next = d->jobs;
	d->jobs = j;
	r = job_start(j);
	pthread_mutex_unlock(&d->lock);
	if (r)
		sxm_err("job %s: cannot start its thread: %s", rec->name,
			strerror(-r));
	return 0;
}

/* mkdir -p the socket's directory (0755). */
static int socket_dir(const char *path)
{
	char dir[PATH_MAX], *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	return sxm_mkdir_p(dir, 0755);
}

static int listen_on(const char *path, gid_t gid, bool have_group)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, probe, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		sxm_err("daemon: socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	r = socket_dir(path);
	if (r) {
		sxm_err("daemon: socket directory of %s: %s", path,
			strerror(-r));
		return r;
	}
	/* A socket file left by a daemon that died: take it over. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
		close(probe);
		sxm_err("daemon: another daemon answers on %s", path);
		return -EADDRINUSE;
	}
	if (probe >= 0)
		close(probe);
	unlink(path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(path, 0660) ||
	    (have_group && chown(path, (uid_t)-1, gid)) ||
	    listen(fd, 64)) {
		r = -errno;
		sxm_err("daemon: socket %s: %s", path, strerror(-r));
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

static int lookup_group(const char *name, gid_t *gid)
{
	struct group *g;
	uint64_t v;

	if (!parse_u64(name, &v) && v < (gid_t)-1) {
		*gid = v;
		return 0;
	}
	g = getgrnam(name);
	if (!g)
		return -ENOENT;
	*gid = g->gr_gid;
	return 0;
}

/*
 * Past MAX_CONNS connections being answered (clients that hold theirs
 * open, each for REQUEST_TIMEOUT_S at most), a new one is told so at once
 * and closed, without a thread.
 */
static void refuse_busy(int cfd)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "err %d the daemon has %d connections open: try again\n",
		 EBUSY, MAX_CONNS);
	send(cfd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(cfd, SHUT_WR);
	/* What the client sent already, read: no reset before it reads why. */
	while (recv(cfd, msg, sizeof(msg), MSG_DONTWAIT) > 0)
		;
	close(cfd);
}

/* Accept one connection and answer it in a thread of its own. */
static void accept_one(struct service *s, int lfd)
{
	/* A client that does not read its answer holds no thread for ever. */
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_S };
	pthread_attr_t attr;
	struct conn *c;
	pthread_t t;
	int cfd;

	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	if (__atomic_add_fetch(&s->conns, 1, __ATOMIC_RELAXED) > MAX_CONNS) {
		__atomic_sub_fetch(&s->conns, 1, __ATOMIC_RELAXED);
		refuse_busy(cfd);
		return;
	}
	setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c = malloc(sizeof(*c));
	if (!c) {
		__atomic_sub_fetch(&s->conns, 1, __ATOMIC_RELAXED);
		close(cfd);
		return;
	}
	c->d = &s->d;
	c->fd = cfd;
	c->conns = &s->conns;
	c->allowed = peer_allowed(cfd, s->gid, s->have_group);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_main, c)) {
		__atomic_sub_fetch(&s->conns, 1, __ATOMIC_RELAXED);
		close(cfd);
		free(c);
	}
	pthread_attr_destroy(&attr);
}

/* Serve the socket until a signal on @sfd says stop. */
static void serve(struct service *s, int lfd, int sfd)
{
	struct signalfd_siginfo si;
	struct pollfd pfd[2] = {
		{ .fd = lfd, .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				sxm_info("daemon: signal %u: stopping", si.ssi_signo);
			break;
		}
		if (pfd[0].revents & POLLIN)
			accept_one(s, lfd);
	}
}

/* Stop every job at its next chunk, records saved, and join its thread. */
static void stop_jobs(struct sxm_jobs *d)
{
	struct sxm_job *j;
	pthread_t t;
	bool found;

	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	for (j = d->jobs; j; j = j->next) {
		pthread_mutex_lock(&j->lock);
		j->stop = 1;
		j->verify_stop = 1;
		job_kick(j);
		pthread_mutex_unlock(&j->lock);
	}
	pthread_mutex_unlock(&d->lock);
	/* No thread starts now (stopping); the list may still change. */
	do {
		found = false;
		pthread_mutex_lock(&d->lock);
		for (j = d->jobs; j && !found; j = j->next)
			if (j->thread_started) {
				t = j->thread;
				j->thread_started = false;
				found = true;
			}
		pthread_mutex_unlock(&d->lock);
		if (found)
			pthread_join(t, NULL);
	} while (found);
	/* Every thread joined: the list's references go (records stay). */
	pthread_mutex_lock(&d->lock);
	while (d->jobs)
		job_unlink_locked(d->jobs);
	pthread_mutex_unlock(&d->lock);
}

/*
 * SIGTERM and SIGINT blocked in every thread (so set before any starts),
 * taken by a signalfd instead; SIGPIPE ignored.  The signalfd, or -1.
 */
static int signals(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		sxm_err("daemon: signalfd: %s", strerror(errno));
	return sfd;
}

/*
 * Tell systemd (Type=notify) that the daemon is up: every job's device is
 * back, so the services ordered after it (the hypervisor's) may start.
 * Nothing without $NOTIFY_SOCKET.
 */
static void notify_ready(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = getenv("NOTIFY_SOCKET");
	static const char msg[] = "READY=1";
	socklen_t salen;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* an abstract socket */
	salen = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL,
		   (struct sockaddr *)&sa, salen) < 0)
		sxm_err("daemon: telling systemd it is ready: %s",
			strerror(errno));
	close(fd);
}

/* The jobs of the state directory, loaded and started. */
static void load_jobs(struct service *s, const struct sxm_daemon_opts *o)
{
	struct sxm_jobs *d = &s->d;
	struct sxm_job *j;
	int r, njobs = 0;

	r = sxm_jobstore_load(d->store_fd, load_one, d);
	if (r)
		sxm_err("daemon: loading the jobs in %s: %s", o->state_dir,
			strerror(-r));
	for (j = d->jobs; j; j = j->next)
		njobs++;
	sxm_info("daemon: listening on %s (%s), jobs in %s: %d",
		 o->socket, s->have_group ? "root and its group" : "root only",
		 o->state_dir, njobs);
}

int sxm_daemon_run(const struct sxm_daemon_opts *o)
{
	struct service s = { 0 };
	struct sxm_jobs *d = &s.d;
	char err[512];
	int lfd, sfd;

	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->dm_lock, NULL);
	d->state_dir = o->state_dir;
	if (o->group) {
		if (lookup_group(o->group, &s.gid)) {
			sxm_err("daemon: --group %s: no such group", o->group);
			return EXIT_FAIL;
		}
		s.have_group = true;
	}
	sfd = signals();
	if (sfd < 0)
		return EXIT_FAIL;
	d->store_fd = sxm_jobstore_open(o->state_dir, err, sizeof(err));
	if (d->store_fd < 0) {
		sxm_err("daemon: %s", err);
		close(sfd);
		return EXIT_FAIL;
	}
	lfd = listen_on(o->socket, s.gid, s.have_group);
	if (lfd < 0) {
		close(d->store_fd);
		close(sfd);
		return EXIT_FAIL;
	}
	load_jobs(&s, o);
	notify_ready();
	serve(&s, lfd, sfd);

	close(lfd);
	unlink(o->socket);
	stop_jobs(d);
	sxm_info("daemon: stopped");
	close(d->store_fd);
	close(sfd);
	return EXIT_OK;
}
