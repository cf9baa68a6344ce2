// SPDX-License-Identifier: GPL-2.0
/*
 * What a warm-migration job does (daemon.h, job.h): one thread per job runs
 * its phases.
 *
 *   Initializing  put sxm under the source if it is not there (insert.c
 *                 under a dm device, a new device over a plain one), attach
 *                 to /dev/dm-sxm as the helper, "mode track", harvest and
 *                 acknowledge whatever the map held (a clean baseline), and
 *                 save the kernel's track_id.
 *   Full Sync     copy every region, in chunks of about two seconds each;
 *                 after each chunk (flushed) the cursor full_done is saved,
 *                 so a daemon killed with kill -9 resumes at the cursor.
 *                 Writes meanwhile are tracked: the first sync takes them.
 *   Syncing       harvest (the kernel holds what it hands out until it is
 *                 acknowledged), copy those regions in chunks, and after
 *                 each chunk is on the sink (flushed) acknowledge exactly
 *                 its regions.  A daemon killed mid-sync harvests again and
 *                 gets the rest back.
 *   Cutting Over  suspend the device (guest I/O held), harvest, copy the
 *                 delta without the rate limit, flush, read it back and
 *                 compare, acknowledge, and leave the device suspended: the
 *                 source is frozen and cannot diverge from the sink.  On any
 *                 failure the device is resumed and the job is Ready again.
 *   Cancel        stop, resume the device if we suspended it, detach, and
 *                 take sxm out again: restore the original table (inserted),
 *                 remove the device we made or, while it is open, turn it
 *                 into a plain linear mapping (created), or put the tracking
 *                 back as it was (existing).  The source is only ever read.
 *
 * If the kernel's track_id is not the one saved (the device was recreated,
 * or tracking stopped), writes may have gone unseen: the job starts a full
 * sync again and says so in its events.
 *
 * Sections: helpers, the device, attach, copying, the phases, cancel, the
 * job thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "sxm.h"
#include "cli.h"
#include "copy.h"
#include "daemon.h"
#include "dm.h"
#include "insert.h"
#include "jobstore.h"
#include "kdev.h"
#include "status.h"

#define CHUNK_SECS		2.0		/* of copying between saves */
#define CHUNK_MIN		(4ULL << 20)
#define CHUNK_MAX		(4ULL << 30)
#define CHUNK_FIRST		(64ULL << 20)	/* before any rate is known */
#define PROGRESS_MS		250
#define SXM_FEATURES_NEEDED	(SXM_F_TRACK | SXM_F_TRACK_ID | SXM_F_HOLD)

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void sxm_job_event(struct sxm_job *j, const char *fmt, ...)
{
	char text[sizeof(j->rec.events[0].text)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sxm_job_add_event(&j->rec, sxm_now_ms(), text);
	sxm_info("job %s: %s", j->rec.name, text);
}

int sxm_job_save(struct sxm_job *j)
{
	int r = sxm_jobstore_save(j->d->store_fd, &j->rec);

	if (r)
		sxm_err("job %s: saving its record in %s: %s", j->rec.name,
			j->d->state_dir, strerror(-r));
	return r;
}

static void lock(struct sxm_job *j)
{
	pthread_mutex_lock(&j->lock);
}

static void unlock(struct sxm_job *j)
{
	pthread_mutex_unlock(&j->lock);
}

static void dm_lock(struct sxm_job *j)
{
	pthread_mutex_lock(&j->d->dm_lock);
}

static void dm_unlock(struct sxm_job *j)
{
	pthread_mutex_unlock(&j->d->dm_lock);
}

/* Whether the running copy must stop; j->lock held. */
static bool must_stop(struct sxm_job *j)
{
	enum sxm_phase p = j->rec.phase;

	return j->d->stopping || j->rec.cancelling ||
	       (j->rec.paused && (p == SXM_PHASE_FULL_SYNC ||
				  p == SXM_PHASE_SYNCING));
}

/* The /dev node of block device @ma:@mi (devtmpfs names it). */
static int blkdev_path(uint32_t ma, uint32_t mi, char *buf, size_t len)
{
	char path[64], line[256];
	struct stat st;
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", ma, mi);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEVNAME=", 8))
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (snprintf(buf, len, "/dev/%.100s", line + 8) < (int)len)
			r = 0;
		break;
	}
	fclose(f);
	if (r)
		return r;
	if (stat(buf, &st) || !S_ISBLK(st.st_mode) ||
	    st.st_rdev != makedev(ma, mi))
		return -ENOENT;
	return 0;
}

/* Bytes of region @r of a device of @size bytes. */
static uint64_t region_len(uint64_t r, uint64_t rs, uint64_t size)
{
	uint64_t start = r * rs;

	return start + rs <= size ? rs : size - start;
}

static uint64_t map_bytes_of(const uint64_t *map, uint64_t nr, uint64_t rs,
			     uint64_t size)
{
	uint64_t n = sxm_bitmap_weight(map, nr) * rs;

	/* Only the last region can be short. */
	if (nr && sxm_bitmap_test(map, nr - 1))
		n -= rs - region_len(nr - 1, rs, size);
	return n;
}

/* ------------------------------------------------------------------ */
/* The device                                                         */
/* ------------------------------------------------------------------ */

/* The single sxm target at 0 of dm device @name, and its arguments. */
static int sxm_table_of(const char *name, struct sxm_dm_info *info,
			struct sxm_params *p, uint64_t *sectors)
{
	struct sxm_table t = { 0 };
	int r;

	r = sxm_dm_info(name, info);
	if (!r && !info->exists)
		r = -ENXIO;
	if (!r)
		r = sxm_dm_table(name, &t);
	if (r)
		return r;
	if (t.nr != 1 || t.t[0].start || strcmp(t.t[0].type, SXM_TARGET_TYPE))
		r = -EMEDIUMTYPE;
	else
		r = sxm_params_parse(t.t[0].params, p);
	if (!r)
		*sectors = t.t[0].len;
	sxm_table_free(&t);
	return r;
}

/*
 * The default name of a job: the dm name, or for a plain device its name
 * with "-sxm" (what /dev/mapper/ gets then).  -EINVAL if that is no name.
 */
static int default_name(struct sxm_job_rec *rec, const char *dm_name)
{
	char tmp[sizeof(rec->source)], *base;
	size_t i;

	if (dm_name) {
		snprintf(rec->name, sizeof(rec->name), "%.*s",
			 SXM_JOB_NAME_MAX, dm_name);
	} else {
		snprintf(tmp, sizeof(tmp), "%s", rec->source);
		base = basename(tmp);
		snprintf(rec->name, sizeof(rec->name), "%.*s-sxm",
			 SXM_JOB_NAME_MAX - 4, base);
		for (i = 0; rec->name[i]; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-",
				    rec->name[i]))
				rec->name[i] = '_';
	}
	return sxm_job_name_check(rec->name);
}

int sxm_warm_classify(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_table t = { 0 }, st = { 0 };
	struct sxm_dm_info info, other;
	struct sxm_status status;
	struct sxm_params p;
	struct stat sb;
	uint64_t bytes = 0;
	unsigned int i, nsxm = 0;
	int fd, r;

	if (stat(rec->source, &sb)) {
		r = -errno;
		snprintf(err, errlen, "source %s: %s", rec->source,
			 strerror(-r));
		return r;
	}
	if (!S_ISBLK(sb.st_mode)) {
		snprintf(err, errlen, "source %s: not a block device",
			 rec->source);
		return -ENOTBLK;
	}
	fd = open(rec->source, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &bytes)) {
		r = -errno;
		snprintf(err, errlen, "source %s: %s", rec->source,
			 strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
	j->src_rdev = sb.st_rdev;

	dm_lock(j);
	r = sxm_dm_info_dev(major(sb.st_rdev), minor(sb.st_rdev), &info);
	if (r) {
		snprintf(err, errlen, "source %s: device-mapper: %s",
			 rec->source, strerror(-r));
		goto out;
	}
	if (!rec->name[0] && default_name(rec, info.exists ? info.name : NULL)) {
		snprintf(err, errlen, "cannot make a job name of %s: give one with --name",
			 rec->source);
		r = -EINVAL;
		goto out;
	}
	if (!info.exists) {
		/* A plain device: an sxm device named after the job over it. */
		rec->src_mode = SXM_SRC_CREATED;
		snprintf(rec->device, sizeof(rec->device), "%s", rec->name);
		rec->size = bytes & ~511ULL;
		r = sxm_dm_info(rec->device, &other);
		if (!r && other.exists) {
			snprintf(err, errlen,
				 "a device-mapper device named %s exists already: choose another --name",
				 rec->device);
			r = -EEXIST;
		}
		goto out;
	}
	snprintf(rec->device, sizeof(rec->device), "%s", info.name);
	rec->dev_major = info.major;
	rec->dev_minor = info.minor;
	if (info.suspended || !info.live_table) {
		snprintf(err, errlen, "source %s (%s): %s", rec->source,
			 info.name, info.suspended ? "is suspended" :
			 "has no live table");
		r = -EBUSY;
		goto out;
	}
	r = sxm_dm_table(info.name, &t);
	if (r) {
		snprintf(err, errlen, "source %s: table: %s", rec->source,
			 strerror(-r));
		goto out;
	}
	for (i = 0; i < t.nr; i++)
		nsxm += !strcmp(t.t[i].type, SXM_TARGET_TYPE);
	if (nsxm && (t.nr != 1 || t.t[0].start)) {
		snprintf(err, errlen,
			 "source %s (%s): has an sxm target that is not its whole table",
			 rec->source, info.name);
		r = -EINVAL;
		goto out;
	}
	rec->size = sxm_table_sectors(&t) << SECTOR_SHIFT;
	if (!nsxm) {
		rec->src_mode = SXM_SRC_INSERTED;
		if (strlen(info.name) + strlen(HIDDEN_SUFFIX) > SXM_DM_NAME_MAX) {
			snprintf(err, errlen,
				 "source %s: name %s too long to add \"%s\" for the hidden device",
				 rec->source, info.name, HIDDEN_SUFFIX);
			r = -ENAMETOOLONG;
		}
		goto out;
	}
	rec->src_mode = SXM_SRC_EXISTING;
	r = sxm_params_parse(t.t[0].params, &p);
	if (!r)
		r = sxm_dm_status(info.name, &st);
	if (!r && (st.nr != 1 || sxm_status_parse(st.t[0].params, &status)))
		r = -EPROTO;
	if (r) {
		snprintf(err, errlen, "source %s: reading its sxm target: %s",
			 rec->source, strerror(-r));
		goto out;
	}
	rec->region_size = p.region_sectors << SECTOR_SHIFT;
	rec->orig_track = p.track;
	if (status.helper_pid) {
		snprintf(err, errlen,
			 "source %s (%s): a helper (pid %u) is attached to its sxm target already",
			 rec->source, info.name, status.helper_pid);
		r = -EBUSY;
	}
out:
	dm_unlock(j);
	if (!r && !rec->size) {
		snprintf(err, errlen, "source %s is empty", rec->source);
		r = -EINVAL;
	}
	sxm_table_free(&t);
	sxm_table_free(&st);
	return r;
}

/*
 * Whether the sxm target with arguments @p is the one this job uses: over
 * the hidden device an insert made (inserted), over the job's source
 * (created), or any (existing: the operator's own).  dm_lock held.
 */
static bool is_ours(struct sxm_job *j, const struct sxm_params *p)
{
	char hidden[SXM_DM_NAME_MAX + 16];
	struct sxm_dm_info under;
	struct stat sb;

	switch (j->rec.src_mode) {
	case SXM_SRC_INSERTED:
		snprintf(hidden, sizeof(hidden), "%s" HIDDEN_SUFFIX,
			 j->rec.device);
		return !sxm_dm_info_dev(p->major, p->minor, &under) &&
		       under.exists && !strcmp(under.name, hidden);
	case SXM_SRC_CREATED:
		return !stat(j->rec.source, &sb) &&
		       sb.st_rdev == makedev(p->major, p->minor);
	default:
		return true;
	}
}

/*
 * Put the sxm target under the source, unless it is there already (a
 * retry, or a daemon restarted during Initializing).  j->lock not held.
 */
static int prepare_device(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_table t = { 0 };
	struct sxm_dm_info info;
	struct sxm_inserted ins;
	struct sxm_params p;
	char params[64], cap[512];
	uint64_t sectors;
	struct stat sb;
	int r;

	dm_lock(j);
	r = sxm_table_of(rec->device, &info, &p, &sectors);
	if (!r) {
		/* There already: a retry, or a restart during Initializing. */
		if (!is_ours(j, &p)) {
			snprintf(err, errlen,
				 "/dev/mapper/%s is an sxm device over %u:%u, not over the job's source",
				 rec->device, p.major, p.minor);
			r = -EEXIST;
		}
		goto out;
	}
	if (rec->src_mode == SXM_SRC_EXISTING) {
		snprintf(err, errlen, "%s: no longer an sxm device: %s",
			 rec->device, cli_dm_strerror(r));
		goto out;
	}
	if (rec->src_mode == SXM_SRC_INSERTED) {
		sxm_err_capture(cap, sizeof(cap));
		r = sxm_insert("insert", rec->device,
			       rec->region_size >> SECTOR_SHIFT, false, &ins);
		sxm_err_release();
		if (r)
			snprintf(err, errlen, "%s", cap);
		else
			sxm_job_event(j, "sxm inserted under %s, its original table moved to %s",
				      rec->device, ins.hidden);
		goto out;
	}
	/* Created: the VM must use /dev/mapper/NAME. */
	if (stat(rec->source, &sb) || !S_ISBLK(sb.st_mode)) {
		r = -ENODEV;
		snprintf(err, errlen, "source %s: no longer a block device",
			 rec->source);
		goto out;
	}
	r = sxm_params_build(params, sizeof(params), major(sb.st_rdev),
			     minor(sb.st_rdev), rec->region_size >> SECTOR_SHIFT,
			     false);
	if (!r)
		r = sxm_table_add(&t, 0, rec->size >> SECTOR_SHIFT,
				  SXM_TARGET_TYPE, params);
	if (!r)
		r = sxm_dm_create(rec->device, NULL, &t, 0);
	if (r)
		snprintf(err, errlen, "creating /dev/mapper/%s over %s: %s",
			 rec->device, rec->source, r == -EINVAL ?
			 "the kernel refused the table (is dm-sxm loaded? the reason is in the kernel log)" :
			 cli_dm_strerror(r));
	else
		sxm_job_event(j, "/dev/mapper/%s created over %s: the VM must use /dev/mapper/%s",
			      rec->device, rec->source, rec->device);
out:
	dm_unlock(j);
	sxm_table_free(&t);
	return r;
}

/* ------------------------------------------------------------------ */
/* Attach                                                             */
/* ------------------------------------------------------------------ */

int sxm_warm_open_sink(struct sxm_job *j, bool probe_zero, char *err,
		       size_t errlen)
{
	struct sxm_sink_opts so = {
		.min_size = j->rec.size,
		.probe_zero = probe_zero,
	};

	if (j->run.sink)
		return 0;
	return sxm_sink_open(j->rec.sink, &so, &j->run.sink, err, errlen);
}

static void run_close(struct sxm_job *j)
{
	struct sxm_run *run = &j->run;

	if (run->kfd >= 0)
		close(run->kfd);
	run->kfd = -1;
	sxm_sink_close(run->sink);
	run->sink = NULL;
	sxm_source_close(run->src);
	run->src = NULL;
}

/* Which engine reads the source, as the copy engine will pick it. */
static void probe_engine(struct sxm_job *j)
{
	struct sxm_engine *e = NULL;
	const char *want = strcmp(j->rec.engine, "auto") ? j->rec.engine : NULL;
	char err[256] = "";
	void *buf = NULL;
	int r;

	if (posix_memalign(&buf, 4096, 4096))
		return;
	r = sxm_engine_create(want, j->run.src->fd, 1, &buf, 1, 4096, &e, err,
			      sizeof(err));
	lock(j);
	if (r) {
		sxm_job_event(j, "source engine: %s", err);
	} else if (strcmp(j->rec.engine_used, e->ops->name)) {
		snprintf(j->rec.engine_used, sizeof(j->rec.engine_used), "%s",
			 e->ops->name);
		if (!strcmp(e->ops->name, "aio") && err[0])
			sxm_job_event(j, "reading the source with libaio: io_uring is unavailable (%s)",
				      err);
		else
			sxm_job_event(j, "reading the source with %s",
				      !strcmp(e->ops->name, "aio") ? "libaio" :
				      "io_uring");
	}
	unlock(j);
	sxm_engine_destroy(e);
	free(buf);
}

/*
 * Attach to the job's sxm target as its helper and open the device under
 * it for reading; the sink too when @sink.  j->lock not held.
 */
static int run_open(struct sxm_job *j, bool sink, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_run *run = &j->run;
	struct sxm_features feat;
	struct sxm_dm_info info;
	struct sxm_attach att;
	struct sxm_params p;
	char path[128];
	uint64_t sectors;
	int r;

	if (run->kfd < 0) {
		dm_lock(j);
		r = sxm_table_of(rec->device, &info, &p, &sectors);
		dm_unlock(j);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: %s", rec->device,
				 r == -EMEDIUMTYPE ? "no longer an sxm device" :
				 cli_dm_strerror(r));
			return r;
		}
		if (sectors << SECTOR_SHIFT != rec->size) {
			snprintf(err, errlen,
				 "/dev/mapper/%s: its size changed (%" PRIu64 " bytes, the job has %" PRIu64 ")",
				 rec->device, sectors << SECTOR_SHIFT,
				 rec->size);
			return -EINVAL;
		}
		lock(j);
		rec->dev_major = info.major;
		rec->dev_minor = info.minor;
		unlock(j);
		/* A cutover the daemon did not live to finish. */
		run->suspended = info.suspended &&
				 rec->phase == SXM_PHASE_CUTTING_OVER;

		r = blkdev_path(p.major, p.minor, path, sizeof(path));
		if (r) {
			snprintf(err, errlen,
				 "the device under /dev/mapper/%s (%u:%u): no node in /dev",
				 rec->device, p.major, p.minor);
			return r;
		}
		r = sxm_source_open(path, &run->src, err, errlen);
		if (r)
			return r;
		if (run->src->size < rec->size) {
			snprintf(err, errlen, "source %s: smaller than the job",
				 path);
			run_close(j);
			return -EINVAL;
		}
		run->src->size = rec->size;

		r = sxm_kdev_open();
		if (r < 0) {
			snprintf(err, errlen, "%s", cli_kdev_strerror(r));
			return r;
		}
		run->kfd = r;
		r = sxm_kdev_features(run->kfd, &feat);
		if (!r && (feat.features & SXM_FEATURES_NEEDED) !=
		    SXM_FEATURES_NEEDED)
			r = -EOPNOTSUPP;
		if (!r)
			r = sxm_kdev_attach(run->kfd, info.major, info.minor, 0,
					    0, SXM_FEATURES_NEEDED, &att);
		if (r == -EBUSY) {
			snprintf(err, errlen,
				 "/dev/mapper/%s: another helper (pid %u) is attached to it",
				 rec->device, att.helper_pid);
		} else if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: attach: %s",
				 rec->device, r == -EOPNOTSUPP ?
				 "this dm-sxm lacks tracking with held regions" :
				 strerror(-r));
		}
		if (r) {
			run_close(j);
			return r;
		}
		run->region_sectors = att.region_sectors;
		run->nr_regions = att.nr_regions;
		lock(j);
		rec->region_size = att.region_sectors << SECTOR_SHIFT;
		unlock(j);
		probe_engine(j);
	}
	if (sink && !run->sink) {
		r = sxm_warm_open_sink(j, false, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/*
 * Start tracking (if it was not on) and take a clean baseline: whatever
 * the map and the held map had is forgotten, since a full sync follows.
 * Saves the track_id.  j->lock not held.
 */
static int start_tracking(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_harvest h;
	struct sxm_info info;
	uint64_t *map = NULL;
	int r;

	dm_lock(j);
	r = sxm_dm_message(j->rec.device, 0, "mode track", NULL);
	dm_unlock(j);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: mode track: %s",
			 j->rec.device, cli_dm_strerror(r));
		return r;
	}
	r = sxm_kdev_harvest(j->run.kfd, 0, &map, &h);
	free(map);
	if (!r)
		r = sxm_kdev_ack(j->run.kfd, NULL, 0, NULL);
	if (!r)
		r = sxm_kdev_info(j->run.kfd, &info);
	if (!r && !info.track_id)
		r = -EIO;
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: baseline: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	lock(j);
	j->rec.track_id = info.track_id;
	j->rec.full_done = 0;
	sxm_job_event(j, "tracking changes (track id %016" PRIx64 "); full sync of %" PRIu64 " bytes to %s",
		      (uint64_t)info.track_id, j->rec.size, j->rec.sink);
	unlock(j);
	return 0;
}

/*
 * The kernel's track_id is not the saved one: writes may have gone unseen
 * (the device was recreated, or tracking stopped).  Start over with a full
 * sync.  j->lock not held.
 */
static int check_tracking(struct sxm_job *j, char *err, size_t errlen,
			  bool *restarted)
{
	struct sxm_info info;
	uint64_t saved;
	int r;

	*restarted = false;
	r = sxm_kdev_info(j->run.kfd, &info);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: info: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	lock(j);
	saved = j->rec.track_id;
	unlock(j);
	if (info.track_id == saved && info.mode == SXM_MODE_TRACK)
		return 0;
	lock(j);
	sxm_job_event(j, "tracking was interrupted (track id %016" PRIx64 ", now %016" PRIx64 "): writes may have gone unseen, a full sync is needed",
		      saved, (uint64_t)info.track_id);
	unlock(j);
	r = start_tracking(j, err, errlen);
	if (r)
		return r;
	lock(j);
	j->rec.phase = SXM_PHASE_FULL_SYNC;
	j->rec.sink_zero = false;
	sxm_job_save(j);
	unlock(j);
	*restarted = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Copying                                                            */
/* ------------------------------------------------------------------ */

struct progress {
	struct sxm_job *j;
	uint64_t base;		/* op bytes done before this copy */
};

static void on_progress(void *opaque, const struct sxm_copy_stats *st)
{
	struct progress *pg = opaque;
	struct sxm_job *j = pg->j;

	lock(j);
	j->rec.op_done = pg->base + st->bytes_done;
	if (st->rate > 0)
		j->rec.op_rate = st->rate;
	unlock(j);
}

/* Publish what the job is doing now ("" when idle); j->lock held. */
static void set_op(struct sxm_job *j, const char *op, uint64_t done,
		   uint64_t total)
{
	snprintf(j->rec.op, sizeof(j->rec.op), "%s", op);
	j->rec.op_done = done;
	j->rec.op_total = total;
	if (!*op)
		j->rec.op_rate = 0;
}

/* Copy the regions in @map; @verify reads them back and compares instead. */
static int copy_map(struct sxm_job *j, const uint64_t *map, bool limit,
		    bool sink_zero, bool verify, struct progress *pg,
		    struct sxm_copy_result *res)
{
	struct sxm_copy_opts o = {
		.region_size = j->run.region_sectors << SECTOR_SHIFT,
		.bitmap = map,
		.sink_is_zero = sink_zero,
		.progress = on_progress,
		.progress_opaque = pg,
		.progress_ms = PROGRESS_MS,
		.cancel = &j->stop,
	};

	lock(j);
	o.rate_limit = limit ? j->rec.rate_limit : 0;
	o.engine = strcmp(j->rec.engine, "auto") ? j->rec.engine : NULL;
	j->stop = must_stop(j);
	unlock(j);
	if (verify)
		return sxm_copy_verify(j->run.src, j->run.sink, &o, res);
	return sxm_copy(j->run.src, j->run.sink, &o, res);
}

/* The next chunk's size: about CHUNK_SECS of copying at the last rate. */
static uint64_t next_chunk(uint64_t chunk, uint64_t bytes, double secs,
			   uint64_t rate_limit, uint64_t rs)
{
	double want;

	if (secs > 0.05 && bytes)
		want = bytes / secs * CHUNK_SECS;
	else if (rate_limit)
		want = (double)rate_limit * CHUNK_SECS;
	else
		want = chunk;
	if (want < CHUNK_MIN)
		want = CHUNK_MIN;
	if (want > CHUNK_MAX)
		want = CHUNK_MAX;
	return ((uint64_t)want + rs - 1) / rs * rs;
}

static void set_range(uint64_t *map, uint64_t from, uint64_t to)
{
	uint64_t r;

	for (r = from; r < to; r++)
		sxm_bitmap_set(map, r);
}

/* The first region set in @map at or after @from, or @nr. */
static uint64_t first_set(const uint64_t *map, uint64_t from, uint64_t nr)
{
	for (; from < nr; from++)
		if (sxm_bitmap_test(map, from))
			return from;
	return nr;
}

/* ------------------------------------------------------------------ */
/* The phases                                                         */
/* ------------------------------------------------------------------ */

static int do_full(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr = run->nr_regions;
	uint64_t words = sxm_bitmap_words(nr), done, size, chunk, end, lw;
	struct sxm_copy_result res;
	struct progress pg = { .j = j };
	uint64_t *map, copied = 0;
	bool zero;
	double t0, start;
	int r = 0;

	map = calloc(words + 1, sizeof(*map));
	if (!map)
		return -ENOMEM;
	lock(j);
	done = j->rec.full_done;
	size = j->rec.size;
	zero = j->rec.sink_zero;
	chunk = next_chunk(CHUNK_FIRST, 0, 0, j->rec.rate_limit, rs);
	set_op(j, "full sync", done, size);
	if (done)
		sxm_job_event(j, "full sync resumes at %" PRIu64 " of %" PRIu64 " bytes",
			      done, size);
	else
		sxm_job_event(j, "full sync started");
	unlock(j);
	start = mono_s();

	while (done < size) {
		lock(j);
		if (must_stop(j))
			r = -EINTR;
		unlock(j);
		if (r)
			break;
		end = done + chunk < size ? done + chunk : size;
		memset(map, 0, words * sizeof(*map));
		set_range(map, done / rs, (end + rs - 1) / rs);
		pg.base = done;
		t0 = mono_s();
		r = copy_map(j, map, true, zero, false, &pg, &res);
		lock(j);
		j->rec.bytes_full += res.stats.bytes_done;
		copied += res.stats.bytes_done;
		if (r) {
			/* Below the first region still dirty all is on the sink. */
			lw = res.dirty ? first_set(res.dirty, done / rs, nr) : done / rs;
			if (lw * rs > done)
				j->rec.full_done = lw * rs < size ? lw * rs : size;
			snprintf(err, errlen, "%s", res.errmsg);
		} else {
			j->rec.full_done = end;
		}
		done = j->rec.full_done;
		j->rec.op_done = done;
		sxm_job_save(j);
		unlock(j);
		if (r)
			break;
		chunk = next_chunk(chunk, res.stats.bytes_done,
				   mono_s() - t0, 0, rs);
		sxm_copy_result_free(&res);
	}
	sxm_copy_result_free(&res);
	free(map);
	if (r)
		return r;
	lock(j);
	j->rec.last_sync_secs = mono_s() - start;
	if (copied && j->rec.last_sync_secs > 0)
		j->rec.last_rate = copied / j->rec.last_sync_secs;
	j->rec.last_sync_ms = sxm_now_ms();
	j->rec.last_sync_bytes = size;
	sxm_job_event(j, "full sync done: %" PRIu64 " bytes copied in all, %.1f s this run",
		      j->rec.bytes_full, j->rec.last_sync_secs);
	set_op(j, "", 0, 0);
	unlock(j);
	return 0;
}

/*
 * One incremental sync: harvest, copy in chunks, acknowledge each chunk
 * once it is flushed on the sink.  j->lock not held.
 */
static int do_sync(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr, words, r0;
	uint64_t total, done = 0, chunk, in_chunk, i, size;
	struct sxm_copy_result res = { 0 };
	struct progress pg = { .j = j };
	uint64_t *map = NULL, *cmap = NULL;
	struct sxm_harvest h;
	double start, t0;
	int r;

	r = sxm_kdev_harvest(run->kfd, 0, &map, &h);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: harvest: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	lock(j);
	if (h.track_id != j->rec.track_id) {
		unlock(j);
		free(map);
		snprintf(err, errlen, "tracking was interrupted");
		return -ESTALE;
	}
	size = j->rec.size;
	nr = h.nr_regions;
	words = sxm_bitmap_words(nr);
	total = map_bytes_of(map, nr, rs, size);
	set_op(j, "sync", 0, total);
	chunk = next_chunk(CHUNK_FIRST, 0, 0, j->rec.rate_limit, rs);
	unlock(j);
	start = mono_s();

	cmap = calloc(words + 1, sizeof(*cmap));
	if (!cmap) {
		free(map);
		return -ENOMEM;
	}
	for (r0 = 0; r0 < nr && !r; ) {
		memset(cmap, 0, words * sizeof(*cmap));
		for (in_chunk = 0; r0 < nr && in_chunk < chunk; r0++) {
			if (!sxm_bitmap_test(map, r0))
				continue;
			sxm_bitmap_set(cmap, r0);
			in_chunk += region_len(r0, rs, size);
		}
		if (!in_chunk)
			break;
		pg.base = done;
		t0 = mono_s();
		r = copy_map(j, cmap, true, false, false, &pg, &res);
		if (r && res.dirty)
			for (i = 0; i < words; i++)
				cmap[i] &= ~res.dirty[i];
		else if (r)
			memset(cmap, 0, words * sizeof(*cmap));
		/* On the sink and flushed: the kernel may forget them. */
		if (sxm_bitmap_weight(cmap, nr)) {
			int e = sxm_kdev_ack(run->kfd, cmap, nr, NULL);

			if (e && !r) {
				r = e;
				snprintf(res.errmsg, sizeof(res.errmsg),
					 "/dev/mapper/%s: acknowledge: %s",
					 j->rec.device, strerror(-e));
			}
		}
		lock(j);
		j->rec.bytes_incr += res.stats.bytes_done;
		done += res.stats.bytes_done;
		j->rec.op_done = done;
		sxm_job_save(j);
		unlock(j);
		if (r) {
			snprintf(err, errlen, "%s", res.errmsg);
		} else {
			chunk = next_chunk(chunk, res.stats.bytes_done,
					   mono_s() - t0, 0, rs);
		}
		sxm_copy_result_free(&res);
	}
	free(cmap);
	free(map);
	if (r)
		return r;

	lock(j);
	j->rec.sync_count++;
	j->rec.last_sync_ms = sxm_now_ms();
	j->rec.last_sync_bytes = total;
	j->rec.last_sync_secs = mono_s() - start;
	if (total && j->rec.last_sync_secs > 0)
		j->rec.last_rate = total / j->rec.last_sync_secs;
	sxm_job_event(j, "sync %" PRIu64 ": %" PRIu64 " bytes in %.2f s",
		      j->rec.sync_count, total, j->rec.last_sync_secs);
	set_op(j, "", 0, 0);
	unlock(j);
	return 0;
}

static int resume_device(struct sxm_job *j, char *err, size_t errlen)
{
	int r = 0;

	if (!j->run.suspended)
		return 0;
	dm_lock(j);
	r = sxm_dm_resume(j->rec.device);
	dm_unlock(j);
	if (r)
		snprintf(err, errlen, "/dev/mapper/%s: resume: %s",
			 j->rec.device, cli_dm_strerror(r));
	else
		j->run.suspended = false;
	return r;
}

/*
 * The cutover.  On success the device stays suspended and the job is
 * Completed; on failure the caller resumes the device.  j->lock not held.
 */
static int do_cutover(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_run *run = &j->run;
	uint64_t rs = run->region_sectors << SECTOR_SHIFT, nr, total;
	struct sxm_copy_result res = { 0 };
	struct progress pg = { .j = j };
	uint64_t *map = NULL, verified = 0;
	struct sxm_harvest h;
	bool all;
	double t0 = mono_s(), t1;
	int r;

	lock(j);
	all = j->verify_all;
	set_op(j, "cutover", 0, 0);
	unlock(j);
	if (!run->suspended) {
		dm_lock(j);
		r = sxm_dm_suspend(j->rec.device, 0);
		dm_unlock(j);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: suspend: %s",
				 j->rec.device, cli_dm_strerror(r));
			return r;
		}
		run->suspended = true;
	}
	lock(j);
	sxm_job_event(j, "cutover: /dev/mapper/%s suspended, guest I/O held",
		      j->rec.device);
	unlock(j);

	r = sxm_kdev_harvest(run->kfd, 0, &map, &h);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: harvest: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	lock(j);
	if (h.track_id != j->rec.track_id) {
		unlock(j);
		free(map);
		snprintf(err, errlen,
			 "tracking was interrupted (track id changed): a full sync is needed first");
		return -ESTALE;
	}
	nr = h.nr_regions;
	total = map_bytes_of(map, nr, rs, j->rec.size);
	set_op(j, "cutover", 0, total);
	unlock(j);

	r = copy_map(j, map, false, false, false, &pg, &res);
	if (r) {
		snprintf(err, errlen, "%s", res.errmsg);
		goto out;
	}
	sxm_copy_result_free(&res);
	if (all || h.dirty_regions) {
		lock(j);
		set_op(j, "verify", 0, all ? j->rec.size : total);
		unlock(j);
		pg.base = 0;
		r = copy_map(j, all ? NULL : map, false, false, true, &pg, &res);
		if (r) {
			snprintf(err, errlen, "verify: %s", res.errmsg);
			goto out;
		}
		verified = res.stats.bytes_done;
	}
	r = sxm_kdev_ack(run->kfd, map, nr, NULL);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: acknowledge: %s",
			 j->rec.device, strerror(-r));
		goto out;
	}
	t1 = mono_s();
	lock(j);
	j->rec.cutover_bytes = total;
	j->rec.verified_bytes = verified;
	j->rec.downtime_ms = (uint64_t)((t1 - t0) * 1000 + 0.5);
	j->rec.last_sync_ms = sxm_now_ms();
	sxm_job_event(j, "cutover done: %" PRIu64 " bytes copied and %" PRIu64 " verified with guest I/O held for %" PRIu64 " ms",
		      total, verified, j->rec.downtime_ms);
	sxm_job_event(j, "the source /dev/mapper/%s is left suspended (frozen) so that it cannot diverge from the sink: stop the VM, then remove the device",
		      j->rec.device);
	set_op(j, "", 0, 0);
	unlock(j);
out:
	sxm_copy_result_free(&res);
	free(map);
	return r;
}

/* ------------------------------------------------------------------ */
/* Cancel                                                             */
/* ------------------------------------------------------------------ */

/* Created by us: remove the device, or make it linear while it is open. */
static int undo_created(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_table lin = { 0 };
	struct sxm_dm_info info;
	struct sxm_params p;
	uint64_t sectors;
	char params[48];
	int r;

	r = sxm_table_of(j->rec.device, &info, &p, &sectors);
	if (r == -ENXIO || r == -EMEDIUMTYPE || (!r && !is_ours(j, &p)))
		return 0;	/* never made, or not ours any more */
	if (r)
		goto fail;
	if (!info.open_count) {
		r = sxm_dm_remove(j->rec.device, true);
		if (!r) {
			sxm_job_event(j, "/dev/mapper/%s removed", j->rec.device);
			return 0;
		}
		if (r != -EBUSY)
			goto fail;
	}
	/* In use: the same blocks, without sxm. */
	snprintf(params, sizeof(params), "%u:%u 0", p.major, p.minor);
	r = sxm_table_add(&lin, 0, sectors, "linear", params);
	if (!r)
		r = sxm_dm_load(j->rec.device, &lin, info.read_only ?
				SXM_DM_READ_ONLY : 0);
	if (!r)
		r = sxm_dm_suspend(j->rec.device, 0);
	if (!r)
		r = sxm_dm_resume(j->rec.device);
	sxm_table_free(&lin);
	if (r) {
		sxm_dm_clear(j->rec.device);
		goto fail;
	}
	sxm_job_event(j, "/dev/mapper/%s is open: it is now a plain linear mapping of %s; remove it once the VM has stopped",
		      j->rec.device, j->rec.source);
	return 0;
fail:
	snprintf(err, errlen, "taking sxm off /dev/mapper/%s: %s",
		 j->rec.device, cli_dm_strerror(r));
	return r;
}

/* Undo what the job did to the device.  j->lock not held. */
static int do_cancel(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_dm_info info, hinfo;
	char hidden[SXM_DM_NAME_MAX + 16], name[SXM_DM_NAME_MAX + 1];
	char cap[512];
	int r;

	r = resume_device(j, err, errlen);
	if (r)
		return r;
	run_close(j);	/* detach: restore refuses while a helper is on */

	dm_lock(j);
	switch (j->rec.src_mode) {
	case SXM_SRC_INSERTED:
		snprintf(hidden, sizeof(hidden), "%s" HIDDEN_SUFFIX,
			 j->rec.device);
		r = sxm_dm_info(hidden, &hinfo);
		if (r || !hinfo.exists)
			break;	/* never inserted */
		sxm_err_capture(cap, sizeof(cap));
		r = sxm_restore("restore", j->rec.device, false, name,
				sizeof(name));
		sxm_err_release();
		if (r)
			snprintf(err, errlen, "%s", cap);
		else
			sxm_job_event(j, "the original table of %s is back",
				      j->rec.device);
		break;
	case SXM_SRC_CREATED:
		r = undo_created(j, err, errlen);
		break;
	case SXM_SRC_EXISTING:
		r = sxm_dm_info(j->rec.device, &info);
		if (r || !info.exists || j->rec.orig_track)
			break;
		r = sxm_dm_message(j->rec.device, 0, "mode passthrough", NULL);
		if (r)
			snprintf(err, errlen, "/dev/mapper/%s: mode passthrough: %s",
				 j->rec.device, cli_dm_strerror(r));
		else
			sxm_job_event(j, "/dev/mapper/%s back in passthrough",
				      j->rec.device);
		break;
	default:
		break;
	}
	dm_unlock(j);
	return r;
}

/* ------------------------------------------------------------------ */
/* The job thread                                                     */
/* ------------------------------------------------------------------ */

/* Fail the job in its current phase; j->lock held. */
static void fail(struct sxm_job *j, const char *why)
{
	j->rec.fail_phase = j->rec.phase;
	j->rec.phase = SXM_PHASE_FAILED;
	snprintf(j->rec.reason, sizeof(j->rec.reason), "%s",
		 why[0] ? why : "unknown error");
	j->req_sync = j->req_cutover = false;
	set_op(j, "", 0, 0);
	sxm_job_event(j, "failed in %s: %s", sxm_phase_name(j->rec.fail_phase),
		      j->rec.reason);
	sxm_job_save(j);
}

/* Wait for a request, or until @until_ms (0: no limit); j->lock held. */
static void wait_for(struct sxm_job *j, int64_t until_ms)
{
	struct timespec ts;
	int64_t left;

	if (!until_ms) {
		pthread_cond_wait(&j->cond, &j->lock);
		return;
	}
	left = until_ms - sxm_now_ms();
	if (left <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&j->cond, &j->lock, &ts);
}

/*
 * One step of the state machine, with j->lock held on entry and exit.
 * Returns false when the thread is done.
 */
static bool step(struct sxm_job *j)
{
	struct sxm_job_rec *rec = &j->rec;
	char err[768] = "", rerr[256] = "";
	bool restarted, cancel;
	int r;

	if (rec->cancelling) {
		unlock(j);
		r = do_cancel(j, err, sizeof(err));
		lock(j);
		rec->cancelling = false;
		if (r) {
			fail(j, err);
			sxm_job_event(j, "cancel failed; sxm-ctl cancel %s tries again",
				      rec->name);
			return true;
		}
		sxm_job_event(j, "cancelled in %s", sxm_phase_name(rec->phase));
		rec->phase = SXM_PHASE_CANCELLED;
		set_op(j, "", 0, 0);
		sxm_job_save(j);
		return false;
	}
	if (j->d->stopping)
		return false;

	switch (rec->phase) {
	case SXM_PHASE_INITIALIZING:
		unlock(j);
		r = prepare_device(j, err, sizeof(err));
		if (!r)
			r = run_open(j, true, err, sizeof(err));
		if (!r)
			r = start_tracking(j, err, sizeof(err));
		lock(j);
		if (rec->cancelling)
			return true;
		if (r) {
			fail(j, err);
			break;
		}
		rec->phase = SXM_PHASE_FULL_SYNC;
		sxm_job_save(j);
		break;

	case SXM_PHASE_FULL_SYNC:
		if (rec->paused) {
			set_op(j, "", 0, 0);
			wait_for(j, 0);
			break;
		}
		unlock(j);
		r = run_open(j, true, err, sizeof(err));
		if (!r)
			r = check_tracking(j, err, sizeof(err), &restarted);
		if (!r)
			r = do_full(j, err, sizeof(err));
		lock(j);
		if (r == -EINTR || rec->cancelling || j->d->stopping)
			break;
		if (r) {
			fail(j, err);
			break;
		}
		rec->phase = SXM_PHASE_READY;
		j->rec.next_sync_ms = rec->cadence_ms ?
				      sxm_now_ms() + rec->cadence_ms : 0;
		sxm_job_save(j);
		break;

	case SXM_PHASE_READY:
		unlock(j);
		r = run_open(j, false, err, sizeof(err));
		if (!r)
			r = check_tracking(j, err, sizeof(err), &restarted);
		lock(j);
		if (r) {
			fail(j, err);
			break;
		}
		if (restarted)
			break;
		/* Switched to mirror style while unlocked: mirror_job.c's now. */
		if (rec->phase != SXM_PHASE_READY)
			break;
		if (j->req_cutover) {
			j->req_cutover = false;
			rec->phase = SXM_PHASE_CUTTING_OVER;
			sxm_job_save(j);
			break;
		}
		if (rec->paused)
			rec->next_sync_ms = 0;
		else if (rec->cadence_ms && !rec->next_sync_ms)
			rec->next_sync_ms = sxm_now_ms() + rec->cadence_ms;
		if (j->req_sync || (!rec->paused && rec->next_sync_ms &&
				    sxm_now_ms() >= rec->next_sync_ms)) {
			j->req_sync = false;
			rec->phase = SXM_PHASE_SYNCING;
			sxm_job_save(j);
			break;
		}
		/* Idle: let the sink go, it may be days to the next sync. */
		if (j->run.sink) {
			unlock(j);
			sxm_sink_close(j->run.sink);
			j->run.sink = NULL;
			lock(j);
			break;
		}
		wait_for(j, rec->next_sync_ms);
		break;

	case SXM_PHASE_SYNCING:
		unlock(j);
		r = run_open(j, true, err, sizeof(err));
		if (!r)
			r = check_tracking(j, err, sizeof(err), &restarted);
		if (!r && !restarted)
			r = do_sync(j, err, sizeof(err));
		lock(j);
		if (!r && restarted)
			break;
		if (r == -ESTALE) {
			unlock(j);
			r = check_tracking(j, err, sizeof(err), &restarted);
			lock(j);
			if (r)
				fail(j, err);
			break;
		}
		if (rec->cancelling || j->d->stopping)
			break;
		if (r == -EINTR) {
			/* Paused: what was copied is acknowledged. */
			set_op(j, "", 0, 0);
			rec->phase = SXM_PHASE_READY;
			sxm_job_event(j, "sync stopped: paused");
			sxm_job_save(j);
			break;
		}
		if (r) {
			fail(j, err);
			break;
		}
		rec->phase = SXM_PHASE_READY;
		rec->next_sync_ms = rec->cadence_ms && !rec->paused ?
				    sxm_now_ms() + rec->cadence_ms : 0;
		sxm_job_save(j);
		break;

	case SXM_PHASE_CUTTING_OVER:
		unlock(j);
		r = run_open(j, true, err, sizeof(err));
		if (!r)
			r = do_cutover(j, err, sizeof(err));
		lock(j);
		if (!r) {
			rec->phase = SXM_PHASE_COMPLETED;
			rec->reason[0] = '\0';
			sxm_job_save(j);
			unlock(j);
			/* Detach; the device stays suspended, on purpose. */
			j->run.suspended = false;
			run_close(j);
			lock(j);
			return false;
		}
		if (j->d->stopping && r == -EINTR)
			snprintf(err, sizeof(err), "the daemon is stopping");
		cancel = rec->cancelling;
		unlock(j);
		r = resume_device(j, rerr, sizeof(rerr));
		lock(j);
		if (r) {
			fail(j, rerr);
			return true;
		}
		/* A cancel gave up the cutover: it is cancelled in this phase. */
		if (cancel)
			return true;
		set_op(j, "", 0, 0);
		rec->cutover_failures++;
		snprintf(rec->reason, sizeof(rec->reason), "cutover failed: %s",
			 err);
		rec->phase = SXM_PHASE_READY;
		sxm_job_event(j, "cutover failed: %s; /dev/mapper/%s resumed, the job is Ready again",
			      err, rec->device);
		sxm_job_save(j);
		break;

	case SXM_PHASE_FAILED:
		/* Let go of everything until a retry (daemon.c) or a cancel. */
		if (j->run.kfd >= 0 || j->run.sink) {
			unlock(j);
			run_close(j);
			lock(j);
			break;
		}
		wait_for(j, 0);
		break;

	default:
		return false;
	}
	return true;
}

void *sxm_job_main(void *arg)
{
	struct sxm_job *j = arg;

	lock(j);
	while (step(j))
		;
	set_op(j, "", 0, 0);
	unlock(j);

	/* Stopping in the middle of a cutover: give the guest its disk. */
	if (j->run.suspended) {
		char err[256];

		if (resume_device(j, err, sizeof(err)))
			sxm_err("job %s: %s", j->rec.name, err);
		lock(j);
		if (j->rec.phase == SXM_PHASE_CUTTING_OVER) {
			j->rec.phase = SXM_PHASE_READY;
			sxm_job_event(j, "cutover interrupted: the daemon is stopping; /dev/mapper/%s resumed",
				      j->rec.device);
			sxm_job_save(j);
		}
		unlock(j);
	}
	run_close(j);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Observing                                                          */
/* ------------------------------------------------------------------ */

int64_t sxm_warm_dirty_bytes(const struct sxm_job_rec *rec)
{
	struct sxm_attach att;
	struct sxm_harvest h;
	uint64_t *map = NULL;
	int64_t bytes;
	int fd, r;

	if (!rec->dev_major && !rec->dev_minor)
		return -ENODEV;
	fd = sxm_kdev_open();
	if (fd < 0)
		return fd;
	r = sxm_kdev_attach(fd, rec->dev_major, rec->dev_minor, 0,
			    SXM_ATTACH_OBSERVER, SXM_F_TRACK, &att);
	if (!r)
		r = sxm_kdev_harvest(fd, SXM_HARVEST_PEEK, &map, &h);
	close(fd);
	if (r)
		return r;
	bytes = map_bytes_of(map, h.nr_regions,
			     att.region_sectors << SECTOR_SHIFT,
			     att.len_sectors << SECTOR_SHIFT);
	free(map);
	return bytes;
}

/* ------------------------------------------------------------------ */
/* For mirror-style jobs (mirror_job.c)                               */
/* ------------------------------------------------------------------ */

int sxm_warm_prepare(struct sxm_job *j, char *err, size_t errlen)
{
	return prepare_device(j, err, errlen);
}

int sxm_warm_run_open(struct sxm_job *j, bool sink, char *err, size_t errlen)
{
	return run_open(j, sink, err, errlen);
}

void sxm_warm_run_close(struct sxm_job *j)
{
	run_close(j);
}
