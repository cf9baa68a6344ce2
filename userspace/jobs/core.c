// SPDX-License-Identifier: GPL-2.0
/*
 * The job layer under both styles of job (jobcore.h): the device, the
 * attach, tracking, copying, and the start and end of a cutover, as a
 * warm job (warm.c) and a mirror-style job (mirror_job.c) both have them.
 *
 * The device is only ever read: a job puts the sxm target under it (an
 * insert under a dm device, a new device over a plain one, or the
 * operator's own sxm device as it is) and a cancel takes it out again the
 * same way for both styles.
 *
 * Sections: helpers, the record, the device, attach, tracking, copying,
 * the cutover, cancel, observing.
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

#include "base/sxm.h"
#include "base/bitmap.h"
#include "dm/dm.h"
#include "base/meta.h"
#include "dm/insert.h"
#include "jobs/core.h"
#include "jobs/phases.h"
#include "jobs/jobstore.h"
#include "dm/status.h"

#define PROGRESS_MS		250
#define SXM_FEATURES_NEEDED	(SXM_F_TRACK | SXM_F_TRACK_ID | SXM_F_HOLD)

/* ------------------------------------------------------------------ */
/* Helpers                                                            */
/* ------------------------------------------------------------------ */

double sxm_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Bytes of region @r of a device of @size bytes. */
uint64_t sxm_region_len(uint64_t r, uint64_t rs, uint64_t size)
{
	uint64_t start = r * rs;

	return start + rs <= size ? rs : size - start;
}

uint64_t sxm_regions_bytes(const uint64_t *map, uint64_t nr, uint64_t rs,
			   uint64_t size)
{
	uint64_t n = sxm_map_weight(map, nr) * rs;

	/* Only the last region can be short. */
	if (nr && sxm_map_test(map, nr - 1))
		n -= rs - sxm_region_len(nr - 1, rs, size);
	return n;
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

/* ------------------------------------------------------------------ */
/* The record                                                         */
/* ------------------------------------------------------------------ */

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

	if (r) {
		sxm_err("job %s: saving its record in %s: %s", j->rec.name,
			j->d->state_dir, strerror(-r));
		/* The old record stands (saves replace it whole); the job stops. */
		j->save_err = r;
	}
	return r;
}

struct sxm_job *sxm_job_alloc(struct sxm_jobs *d)
{
	pthread_condattr_t ca;
	struct sxm_job *j;

	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->d = d;
	j->refs = 1;
	j->run.kfd = -1;
	sxm_job_rec_init(&j->rec);
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	return j;
}

void sxm_job_free(struct sxm_job *j)
{
	free(j->verified);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j);
}

void sxm_job_set_op(struct sxm_job *j, const char *op, uint64_t done,
		    uint64_t total)
{
	snprintf(j->rec.op, sizeof(j->rec.op), "%s", op);
	j->rec.op_done = done;
	j->rec.op_total = total;
	if (!*op)
		j->rec.op_rate = 0;
}

void sxm_job_fail(struct sxm_job *j, const char *why)
{
	j->rec.fail_phase = j->rec.phase;
	snprintf(j->rec.reason, sizeof(j->rec.reason), "%s",
		 why[0] ? why : "unknown error");
	j->req_cutover = false;
	sxm_job_set_op(j, "", 0, 0);
	sxm_job_event(j, "failed in %s: %s", sxm_phase_name(j->rec.fail_phase),
		      j->rec.reason);
	sxm_job_enter(j, SXM_PHASE_FAILED);
}

void sxm_job_wait_ms(struct sxm_job *j, uint64_t ms)
{
	struct timespec ts;

	/* j->cond runs on CLOCK_MONOTONIC (daemon.c). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&j->cond, &j->lock, &ts);
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

/* The block device @path: its stat and its size in bytes. */
static int source_size(const char *path, struct stat *sb, uint64_t *bytes,
		       char *err, size_t errlen)
{
	int fd, r;

	if (stat(path, sb)) {
		r = -errno;
		snprintf(err, errlen, "source %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISBLK(sb->st_mode)) {
		snprintf(err, errlen, "source %s: not a block device", path);
		return -ENOTBLK;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, bytes)) {
		r = -errno;
		snprintf(err, errlen, "source %s: %s", path, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
	return 0;
}

/*
 * A plain device of @bytes: an sxm device named after the job over it, a
 * name no device-mapper device has yet.  dm_lock held.
 */
static int classify_plain(struct sxm_job_rec *rec, uint64_t bytes, char *err,
			  size_t errlen)
{
	struct sxm_dm_info other;
	int r;

	rec->src_mode = SXM_SRC_CREATED;
	snprintf(rec->device, sizeof(rec->device), "%s", rec->name);
	rec->size = bytes & ~511ULL;
	r = sxm_dm_info(rec->device, &other);
	if (!r && other.exists) {
		snprintf(err, errlen,
			 "a device-mapper device named %s exists already: choose another --name",
			 rec->device);
		return -EEXIST;
	}
	return r;
}

/*
 * A source that is an sxm device already (its table @t, one sxm target):
 * its region size and tracking, and no helper on it.  dm_lock held.
 */
static int classify_existing(struct sxm_job_rec *rec, const char *dmname,
			     const struct sxm_table *t, char *err,
			     size_t errlen)
{
	struct sxm_table st = { 0 };
	struct sxm_status status;
	struct sxm_params p;
	int r;

	r = sxm_params_parse(t->t[0].params, &p);
	if (!r)
		r = sxm_dm_status(dmname, &st);
	if (!r && (st.nr != 1 || sxm_status_parse(st.t[0].params, &status)))
		r = -EPROTO;
	sxm_table_free(&st);
	if (r) {
		snprintf(err, errlen, "source %s: reading its sxm target: %s",
			 rec->source, strerror(-r));
		return r;
	}
	rec->region_size = p.region_sectors << SECTOR_SHIFT;
	rec->orig_track = p.track;
	if (status.helper_pid) {
		snprintf(err, errlen,
			 "source %s (%s): a helper (pid %u) is attached to its sxm target already",
			 rec->source, dmname, status.helper_pid);
		return -EBUSY;
	}
	return 0;
}

int sxm_job_classify(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_table t = { 0 };
	struct sxm_dm_info info;
	struct stat sb;
	uint64_t bytes = 0;
	unsigned int i, nsxm = 0;
	int r;

	r = source_size(rec->source, &sb, &bytes, err, errlen);
	if (r)
		return r;
	j->src_rdev = sb.st_rdev;

	sxm_job_dm_lock(j);
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
		r = classify_plain(rec, bytes, err, errlen);
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
	r = classify_existing(rec, info.name, &t, err, errlen);
out:
	sxm_job_dm_unlock(j);
	if (!r && !rec->size) {
		snprintf(err, errlen, "source %s is empty", rec->source);
		r = -EINVAL;
	}
	sxm_table_free(&t);
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

/* The lines insert or restore said, as one reason: "OP line; OP line". */
static void msgs_reason(char *err, size_t errlen, const char *op,
			const char *msgs)
{
	size_t used = 0;
	const char *nl;

	if (errlen)
		err[0] = '\0';
	while (*msgs && used + 1 < errlen) {
		nl = strchrnul(msgs, '\n');
		used += snprintf(err + used, errlen - used, "%s%s %.*s",
				 used ? "; " : "", op, (int)(nl - msgs), msgs);
		msgs = *nl ? nl + 1 : nl;
	}
}

/* The job's metadata device in a table, or NULL without one. */
static const struct sxm_meta_arg *meta_arg(const struct sxm_job *j,
					   bool reset, struct sxm_meta_arg *a)
{
	if (!j->rec.metadata[0])
		return NULL;
	a->path = j->rec.metadata;
	a->source_id = j->rec.name;
	a->reset = reset;
	return a;
}

/*
 * Put the sxm target on the source as the job makes it: sxm inserted
 * under the LV, or /dev/mapper/NAME created over the source; tracking from
 * the load with a metadata device @meta (NULL: none), else in passthrough
 * until tracking starts.  @again: put back (a restart).  What it did for
 * the job's events in @said.  dm_lock held (so not j->lock).
 */
static int put_device(struct sxm_job *j, const struct sxm_meta_arg *meta,
		      bool again, char *said, size_t saidlen, char *err,
		      size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_table t = { 0 };
	struct sxm_inserted ins;
	char params[SXM_PARAMS_MAX], cap[512];
	struct stat sb;
	int r;

	if (rec->src_mode == SXM_SRC_INSERTED) {
		r = sxm_insert(rec->device, rec->region_size >> SECTOR_SHIFT,
			       meta, meta, &ins, cap, sizeof(cap));
		if (r)
			msgs_reason(err, errlen, "insert", cap);
		else
			snprintf(said, saidlen, "sxm inserted under %s%s, its original table moved to %s",
				 rec->device, again ? " again" : "", ins.hidden);
		return r;
	}
	/* Created: the VM must use /dev/mapper/NAME. */
	if (stat(rec->source, &sb) || !S_ISBLK(sb.st_mode)) {
		snprintf(err, errlen, "source %s: no longer a block device",
			 rec->source);
		return -ENODEV;
	}
	r = sxm_params_build(params, sizeof(params), major(sb.st_rdev),
			     minor(sb.st_rdev), rec->region_size >> SECTOR_SHIFT,
			     meta, meta);
	if (!r)
		r = sxm_table_add(&t, 0, rec->size >> SECTOR_SHIFT,
				  SXM_TARGET_TYPE, params);
	if (!r)
		r = sxm_dm_create(rec->device, NULL, &t, 0);
	sxm_table_free(&t);
	if (r)
		snprintf(err, errlen, "creating /dev/mapper/%s over %s: %s",
			 rec->device, rec->source, r == -EINVAL ?
			 "the kernel refused the table (is dm-sxm loaded? the reason is in the kernel log)" :
			 sxm_dm_strerror(r));
	else
		snprintf(said, saidlen, "/dev/mapper/%s %s over %s: the VM must use /dev/mapper/%s",
			 rec->device, again ? "created again" : "created",
			 rec->source, rec->device);
	return r;
}

/*
 * The job's metadata device, checked as the table's load will check it
 * (@reset: bound anew), with what to do when it is refused.  Not under
 * j->lock (it reads the device); dm_lock may be held.
 */
static int meta_check(struct sxm_job *j, bool reset, struct sxm_meta_fit *fit,
		      char *err, size_t errlen)
{
	const struct sxm_job_rec *rec = &j->rec;
	char why[400];
	int r;

	r = sxm_meta_fit(rec->metadata, rec->size >> SECTOR_SHIFT,
			 rec->region_size >> SECTOR_SHIFT, rec->name, reset,
			 fit, why, sizeof(why));
	/* Bound anew (@reset) only over a map of the job's own. */
	if (!r && fit->foreign) {
		snprintf(why, sizeof(why), "metadata device %s %s", rec->metadata,
			 fit->foreign);
		r = -EINVAL;
	}
	if (r == -EINVAL && fit->state != SXM_META_ST_ZEROES &&
	    fit->sb.magic == SXM_META_SB_MAGIC)
		snprintf(err, errlen, "%s (its source id \"%s\", the job's \"%s\"): sxm-ctl metadata format --force %s makes it usable (what it holds is lost; the job copies everything)",
			 why, fit->sb.source_id, rec->name, rec->metadata);
	else if (r)
		snprintf(err, errlen, "%s", why);
	return r;
}

int sxm_job_meta_fits(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_meta_fit fit;

	/* Bound anew at the load, but not over another source's map. */
	return meta_check(j, false, &fit, err, errlen);
}

/*
 * Put the sxm target under the source, unless it is there already (a
 * retry, or a daemon restarted in Initializing or Preparing).  j->lock
 * not held.
 */
int sxm_job_prepare_device(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_meta_arg ma;
	struct sxm_meta_fit fit;
	struct sxm_dm_info info;
	struct sxm_params p;
	char said[600] = "";
	uint64_t sectors;
	int r;

	sxm_job_dm_lock(j);
	r = sxm_table_of(rec->device, &info, &p, &sectors);
	if (!r) {
		/* There already: a retry, or a restart while preparing. */
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
			 rec->device, sxm_dm_strerror(r));
		goto out;
	}
	/* A new job: its metadata device starts a new track. */
	r = rec->metadata[0] ? meta_check(j, true, &fit, err, errlen) : 0;
	if (!r)
		r = put_device(j, meta_arg(j, true, &ma), false, said,
			       sizeof(said), err, errlen);
out:
	sxm_job_dm_unlock(j);
	if (said[0]) {
		sxm_job_lock(j);
		sxm_job_event(j, "%s", said);
		sxm_job_unlock(j);
	}
	if (!r)
		sxm_job_note_boot(j);
	return r;
}

/* The host's boot id ("" if unknown). */
static void read_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (f && fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	if (f)
		fclose(f);
}

void sxm_job_note_boot(struct sxm_job *j)
{
	char cur[sizeof(j->rec.boot_id)];

	read_boot_id(cur, sizeof(cur));
	sxm_job_lock(j);
	if (cur[0] && strcmp(cur, j->rec.boot_id)) {
		snprintf(j->rec.boot_id, sizeof(j->rec.boot_id), "%s", cur);
		sxm_job_save(j);
	}
	sxm_job_unlock(j);
}

/*
 * Whether the track on the job's metadata device can go on when its
 * device is put back: only after a reboot (the device was last seen in
 * another boot) and with nothing holding the source open; else why not,
 * in @why.  dm_lock held.
 */
static bool track_goes_on(struct sxm_job *j, const struct sxm_dm_info *lv,
			  char *why, size_t len)
{
	char cur[sizeof(j->rec.boot_id)];

	read_boot_id(cur, sizeof(cur));
	if (!cur[0] || !j->rec.boot_id[0] || !strcmp(cur, j->rec.boot_id)) {
		snprintf(why, len, "it went away while the host was up (or when, is not known), and the source may have been written without sxm since");
		return false;
	}
	if (j->rec.src_mode == SXM_SRC_INSERTED && lv->open_count > 0) {
		snprintf(why, len, "%s was open (%d) before sxm was back under it: it may have been written without sxm (start the daemon before the VMs)",
			 j->rec.device, lv->open_count);
		return false;
	}
	return true;
}

/*
 * The status of sxm device @device with a metadata device, parsed into
 * @s; -ENODATA if it is not that.  The caller holds the dm lock.
 */
static int meta_status_read(const char *device, struct sxm_status *s)
{
	struct sxm_table st = { 0 };
	int r;

	r = sxm_dm_status(device, &st);
	if (!r && (st.nr != 1 || strcmp(st.t[0].type, SXM_TARGET_TYPE) ||
		   sxm_status_parse(st.t[0].params, s) || !s->has_meta))
		r = -ENODATA;
	sxm_table_free(&st);
	return r;
}

/* What the load of a device put back found on its metadata device. */
static void loaded_text(struct sxm_job *j, const struct sxm_meta_fit *fit,
			const char *reset_why, char *buf, size_t len)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_status status = { 0 };
	char when[64] = "never";
	time_t t;

	if (reset_why[0]) {
		snprintf(buf, len, "metadata device %s starts a new track: %s",
			 rec->metadata, reset_why);
		return;
	}
	if (fit->bind || !fit->sb.track_id) {
		snprintf(buf, len, "metadata device %s holds no track (%s): a new track",
			 rec->metadata, fit->state == SXM_META_ST_ZEROES ?
			 "all zeroes" : fit->bind ? "blank" :
			 "it was ended: by a metadata failure, or passthrough");
		return;
	}
	if (meta_status_read(rec->device, &status))
		memset(&status, 0, sizeof(status));
	t = (time_t)status.meta_clean_time;
	if (t)
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z",
			 localtime(&t));
	snprintf(buf, len, "metadata device %s: the map was loaded %s (last clean shutdown: %s), %" PRIu64 " regions marked, track %016" PRIx64 " goes on",
		 rec->metadata, status.meta_loaded[0] ? status.meta_loaded :
		 "?", when, status.meta_bits, fit->sb.track_id);
}

int sxm_job_restore_device(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_meta_arg ma;
	struct sxm_meta_fit fit = { 0 };
	struct sxm_dm_info info;
	struct sxm_params p;
	char why[256] = "", said[600] = "", loaded[600] = "";
	uint64_t sectors;
	bool reset = false;
	int r;

	if (rec->src_mode == SXM_SRC_EXISTING)
		return 0;
	sxm_job_dm_lock(j);
	r = sxm_table_of(rec->device, &info, &p, &sectors);
	/* There; or device-mapper fails: the attach says why. */
	if (r != -ENXIO && r != -EMEDIUMTYPE) {
		r = 0;
		goto out;
	}
	/* Inserted: the LV is there without sxm; created: nothing is. */
	if ((r == -ENXIO) != (rec->src_mode == SXM_SRC_CREATED) ||
	    (r == -EMEDIUMTYPE && !info.exists)) {
		snprintf(err, errlen, "/dev/mapper/%s: %s", rec->device,
			 r == -ENXIO ? "no such device-mapper device (is the LV active?)" :
			 "a device-mapper device that is not the job's is there");
		goto out;
	}
	if (rec->metadata[0]) {
		reset = !track_goes_on(j, &info, why, sizeof(why));
		r = meta_check(j, reset, &fit, err, errlen);
		if (r)
			goto out;
	}
	r = put_device(j, meta_arg(j, reset, &ma), true, said, sizeof(said),
		       err, errlen);
	if (!r && rec->metadata[0])
		loaded_text(j, &fit, why, loaded, sizeof(loaded));
	r = r ? r : 1;
out:
	sxm_job_dm_unlock(j);
	if (r <= 0)
		return r;
	sxm_job_lock(j);
	sxm_job_event(j, "/dev/mapper/%s was gone (a reboot?): put back%s",
		      rec->device, rec->metadata[0] ? " with its metadata device" :
		      "; without a metadata device, what was written meanwhile is not known");
	sxm_job_event(j, "%s", said);
	if (loaded[0])
		sxm_job_event(j, "%s", loaded);
	sxm_job_unlock(j);
	sxm_job_note_boot(j);
	return r;
}

/* ------------------------------------------------------------------ */
/* Attach                                                             */
/* ------------------------------------------------------------------ */

int sxm_job_open_sink(struct sxm_job *j, bool probe_zero, char *err,
		      size_t errlen)
{
	struct sxm_sink_opts so = {
		.min_size = j->rec.size,
		.probe_zero = probe_zero,
		/* One bound for a sink that does not answer: --io-timeout. */
		.timeout_ms = j->rec.io_timeout_ms,
		.io_timeout_ms = j->rec.io_timeout_ms,
	};

	if (j->run.sink)
		return 0;
	return sxm_sink_open(j->rec.sink, &so, &j->run.sink, err, errlen);
}

int sxm_job_sink_blocks_fit(struct sxm_job *j, char *err, size_t errlen)
{
	const struct sxm_job_rec *rec = &j->rec;
	uint32_t min = j->run.sink->block_min;
	int fd, lbs = 512;

	if (rec->region_size && rec->region_size % min) {
		snprintf(err, errlen,
			 "sink %s: its blocks are at least %u bytes, and --region-size %" PRIu64 " is not a multiple of that",
			 sxm_sink_name(j->run.sink), min, rec->region_size);
		return -EINVAL;
	}
	if (!sxm_job_is_mirror(rec) || min <= 512)
		return 0;
	fd = open(rec->source, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, BLKSSZGET, &lbs))
			lbs = 512;
		close(fd);
	}
	if (min <= (uint32_t)lbs)
		return 0;
	snprintf(err, errlen,
		 "sink %s: its blocks are at least %u bytes, and the guest writes %d-byte blocks of %s: the mirror cannot forward them (a warm job can: it copies whole regions)",
		 sxm_sink_name(j->run.sink), min, lbs, rec->source);
	return -EINVAL;
}

void sxm_job_run_close(struct sxm_job *j)
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
	sxm_job_lock(j);
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
	sxm_job_unlock(j);
	sxm_engine_destroy(e);
	free(buf);
}

/*
 * Attach to the job's sxm target as its helper and open the device under
 * it for reading; the sink too when @sink.  j->lock not held.
 */
int sxm_job_run_open(struct sxm_job *j, bool sink, char *err, size_t errlen)
{
	struct sxm_job_rec *rec = &j->rec;
	struct sxm_run *run = &j->run;
	struct sxm_features feat;
	struct sxm_dm_info info;
	struct sxm_attach att = { 0 };	/* said on EBUSY */
	struct sxm_params p;
	char path[128];
	uint64_t sectors;
	int r;

	if (run->kfd < 0) {
		/* Gone since the job made it (a reboot): put back first. */
		r = sxm_job_restore_device(j, err, errlen);
		if (r < 0)
			return r;
		sxm_job_dm_lock(j);
		r = sxm_table_of(rec->device, &info, &p, &sectors);
		sxm_job_dm_unlock(j);
		if (r) {
			snprintf(err, errlen, "/dev/mapper/%s: %s", rec->device,
				 r == -EMEDIUMTYPE ? "no longer an sxm device" :
				 sxm_dm_strerror(r));
			return r;
		}
		if (sectors << SECTOR_SHIFT != rec->size) {
			snprintf(err, errlen,
				 "/dev/mapper/%s: its size changed (%" PRIu64 " bytes, the job has %" PRIu64 ")",
				 rec->device, sectors << SECTOR_SHIFT,
				 rec->size);
			return -EINVAL;
		}
		sxm_job_lock(j);
		rec->dev_major = info.major;
		rec->dev_minor = info.minor;
		sxm_job_unlock(j);
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
			sxm_job_run_close(j);
			return -EINVAL;
		}
		run->src->size = rec->size;

		r = sxm_kdev_open();
		if (r < 0) {
			snprintf(err, errlen, "%s", sxm_kdev_strerror(r));
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
				 sxm_kdev_strerror(r));
		}
		if (r) {
			sxm_job_run_close(j);
			return r;
		}
		run->region_sectors = att.region_sectors;
		run->nr_regions = att.nr_regions;
		if (sxm_job_verify_init(j)) {
			snprintf(err, errlen, "the verified map: %s",
				 strerror(ENOMEM));
			sxm_job_run_close(j);
			return -ENOMEM;
		}
		sxm_job_lock(j);
		rec->region_size = att.region_sectors << SECTOR_SHIFT;
		sxm_job_unlock(j);
		sxm_job_note_boot(j);
		probe_engine(j);
	}
	if (sink && !run->sink) {
		r = sxm_job_open_sink(j, false, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Tracking                                                           */
/* ------------------------------------------------------------------ */

int sxm_job_start_tracking(struct sxm_job *j, const char *then, char *err,
			   size_t errlen)
{
	struct sxm_harvest h;
	struct sxm_info info;
	uint64_t *map = NULL;
	int r;

	sxm_job_dm_lock(j);
	r = sxm_dm_message(j->rec.device, 0, "mode track", NULL);
	sxm_job_dm_unlock(j);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: mode track: %s",
			 j->rec.device, sxm_dm_strerror(r));
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
	/* Everything is copied again: nothing on the sink is verified. */
	sxm_job_unverify(j, NULL);
	sxm_job_lock(j);
	j->rec.track_id = info.track_id;
	j->rec.full_done = 0;
	sxm_job_event(j, "tracking changes (track id %016" PRIx64 ")%s",
		      (uint64_t)info.track_id, then);
	sxm_job_unlock(j);
	return 0;
}

int sxm_job_tracking_gap(struct sxm_job *j, bool mirroring, const char *then,
			 char *err, size_t errlen)
{
	struct sxm_info info;
	uint64_t saved;
	bool tracks;
	int r;

	r = sxm_kdev_info(j->run.kfd, &info);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: info: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	sxm_job_lock(j);
	saved = j->rec.track_id;
	sxm_job_unlock(j);
	tracks = mirroring ? info.mode != SXM_MODE_PASSTHROUGH :
			     info.mode == SXM_MODE_TRACK;
	if (info.track_id == saved && tracks)
		return 0;
	sxm_job_lock(j);
	sxm_job_event(j, "tracking was interrupted (track id %016" PRIx64 ", now %016" PRIx64 "): writes may have gone unseen, %s",
		      saved, (uint64_t)info.track_id, then);
	sxm_job_unlock(j);
	return 1;
}

int sxm_job_track_again(struct sxm_job *j, enum sxm_phase phase,
			const char *then, char *err, size_t errlen)
{
	int r;

	r = sxm_job_start_tracking(j, then, err, errlen);
	if (r)
		return r;
	sxm_job_lock(j);
	j->rec.sink_zero = false;
	sxm_job_enter(j, phase);
	sxm_job_unlock(j);
	return 0;
}

int sxm_job_harvest(struct sxm_job *j, const char *stale, uint64_t **map,
		    struct sxm_harvest *h, char *err, size_t errlen)
{
	bool changed;
	int r;

	r = sxm_kdev_harvest(j->run.kfd, 0, map, h);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: harvest: %s",
			 j->rec.device, strerror(-r));
		return r;
	}
	if (!stale)
		return 0;
	sxm_job_lock(j);
	changed = h->track_id != j->rec.track_id;
	sxm_job_unlock(j);
	if (!changed)
		return 0;
	free(*map);
	*map = NULL;
	snprintf(err, errlen, "%s", stale);
	return -ESTALE;
}

/* ------------------------------------------------------------------ */
/* Copying                                                            */
/* ------------------------------------------------------------------ */

static void on_progress(void *opaque, const struct sxm_copy_stats *st)
{
	struct sxm_job_progress *pg = opaque;

	if (!pg)
		return;
	sxm_job_lock(pg->j);
	pg->j->rec.op_done = pg->base + st->bytes_done;
	if (st->rate > 0)
		pg->j->rec.op_rate = st->rate;
	sxm_job_unlock(pg->j);
}

bool sxm_job_copy_must_stop(struct sxm_job *j)
{
	enum sxm_phase p = j->rec.phase;

	return j->d->stopping || j->rec.cancelling || j->save_err ||
	       (j->rec.paused && (p == SXM_PHASE_FULL_SYNC ||
				  p == SXM_PHASE_SYNCING));
}

int sxm_job_copy(struct sxm_job *j, const uint64_t *map, unsigned int flags,
		 unsigned int nr_bufs, struct sxm_job_progress *pg,
		 struct sxm_copy_result *res)
{
	struct sxm_copy_opts o = {
		.region_size = j->run.region_sectors << SECTOR_SHIFT,
		.bitmap = map,
		.sink_is_zero = flags & SXM_JOB_COPY_SINK_ZERO,
		.nr_bufs = nr_bufs,
		.progress = on_progress,
		.progress_opaque = pg,
		.progress_ms = PROGRESS_MS,
		.cancel = &j->stop,
	};

	sxm_job_lock(j);
	o.rate_limit = flags & SXM_JOB_COPY_LIMIT ? j->rec.rate_limit : 0;
	o.engine = strcmp(j->rec.engine, "auto") ? j->rec.engine : NULL;
	j->stop = sxm_job_copy_must_stop(j);
	sxm_job_unlock(j);
	if (flags & SXM_JOB_COPY_VERIFY)
		return sxm_copy_verify(j->run.src, j->run.sink, &o, res);
	return sxm_copy(j->run.src, j->run.sink, &o, res);
}

/* ------------------------------------------------------------------ */
/* The cutover                                                        */
/* ------------------------------------------------------------------ */

int sxm_job_cutover_start(struct sxm_job *j, bool *verify_all, char *err,
			  size_t errlen)
{
	int r;

	sxm_job_lock(j);
	*verify_all = j->verify_all;
	sxm_job_set_op(j, "cutover", 0, 0);
	if (!j->run.suspended) {
		/*
		 * Saved before the freeze: a daemon that dies during it and
		 * is started again counts the guest's wait from here.
		 */
		j->rec.freeze_ms = sxm_now_ms();
		sxm_job_save(j);
	}
	j->run.found_frozen = j->run.suspended;
	sxm_job_unlock(j);
	if (j->run.suspended)
		return 0;
	j->run.freeze_mono = sxm_mono_s();
	sxm_job_dm_lock(j);
	r = sxm_dm_suspend(j->rec.device, 0);
	sxm_job_dm_unlock(j);
	if (r) {
		snprintf(err, errlen, "/dev/mapper/%s: suspend: %s",
			 j->rec.device, sxm_dm_strerror(r));
		return r;
	}
	j->run.suspended = true;
	return 0;
}

uint64_t sxm_job_held_ms(struct sxm_job *j)
{
	int64_t since;

	if (!j->run.found_frozen)
		return (uint64_t)((sxm_mono_s() - j->run.freeze_mono) * 1000 +
				  0.5);
	sxm_job_lock(j);
	since = j->rec.freeze_ms;
	sxm_job_unlock(j);
	return since && sxm_now_ms() > since ? sxm_now_ms() - since : 0;
}

int sxm_job_resume_device(struct sxm_job *j, char *err, size_t errlen)
{
	int r = 0;

	if (!j->run.suspended)
		return 0;
	sxm_job_dm_lock(j);
	r = sxm_dm_resume(j->rec.device);
	sxm_job_dm_unlock(j);
	if (r)
		snprintf(err, errlen, "/dev/mapper/%s: resume: %s",
			 j->rec.device, sxm_dm_strerror(r));
	else
		j->run.suspended = false;
	return r;
}

void sxm_job_cutover_done(struct sxm_job *j, uint64_t copied,
			  uint64_t verified, uint64_t downtime_ms,
			  const char *how)
{
	j->rec.cutover_bytes = copied;
	j->rec.verified_bytes = verified;
	j->rec.downtime_ms = downtime_ms;
	j->rec.last_sync_ms = sxm_now_ms();
	sxm_job_event(j, "%s", how);
	sxm_job_event(j, "the source /dev/mapper/%s is left suspended (frozen) so that it cannot diverge from the sink: stop the VM, then remove the device",
		      j->rec.device);
	sxm_job_set_op(j, "", 0, 0);
}

void sxm_job_completed(struct sxm_job *j,
		       void (*detach)(struct sxm_job *j))
{
	j->rec.reason[0] = '\0';
	sxm_job_enter(j, SXM_PHASE_COMPLETED);
	sxm_job_unlock(j);
	/* Not resumed: a source that stays frozen cannot diverge. */
	j->run.suspended = false;
	detach(j);
	sxm_job_lock(j);
}

void sxm_job_cutover_failed(struct sxm_job *j, const char *why,
			    enum sxm_phase back)
{
	struct sxm_job_rec *rec = &j->rec;

	sxm_job_set_op(j, "", 0, 0);
	rec->cutover_failures++;
	snprintf(rec->reason, sizeof(rec->reason), "cutover failed: %s", why);
	sxm_job_event(j, "cutover failed: %s; /dev/mapper/%s runs on, the job is %s again",
		      why, rec->device, sxm_phase_name(back));
	sxm_job_enter(j, back);
}

/* ------------------------------------------------------------------ */
/* Cancel                                                             */
/* ------------------------------------------------------------------ */

/*
 * Created by us: remove the device, or make it linear while it is open;
 * what was done in @said, for the job's events.
 */
static int undo_created(struct sxm_job *j, char *said, size_t len, char *err,
			size_t errlen)
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
	/* Writes without sxm follow: no later load may trust its map. */
	if (p.has_meta) {
		r = sxm_dm_message(j->rec.device, 0, "mode passthrough", NULL);
		if (r)
			goto fail;
	}
	if (!info.open_count) {
		r = sxm_dm_remove(j->rec.device, true);
		if (!r) {
			snprintf(said, len, "/dev/mapper/%s removed",
				 j->rec.device);
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
	snprintf(said, len, "/dev/mapper/%s is open: it is now a plain linear mapping of %s; remove it once the VM has stopped",
		 j->rec.device, j->rec.source);
	return 0;
fail:
	snprintf(err, errlen, "taking sxm off /dev/mapper/%s: %s",
		 j->rec.device, sxm_dm_strerror(r));
	return r;
}

/*
 * Undo what the job did to the device.  j->lock not held; the events are
 * added under it once the dm lock is let go.
 */
int sxm_job_undo_device(struct sxm_job *j, char *err, size_t errlen)
{
	struct sxm_dm_info info, hinfo;
	char hidden[SXM_DM_NAME_MAX + 16], name[SXM_DM_NAME_MAX + 1];
	char cap[512], said[600] = "";
	int r;

	r = sxm_job_resume_device(j, err, errlen);
	if (r)
		return r;
	/* Detach: a restore refuses while a helper is on. */
	sxm_job_run_close(j);

	sxm_job_dm_lock(j);
	switch (j->rec.src_mode) {
	case SXM_SRC_INSERTED:
		snprintf(hidden, sizeof(hidden), "%s" HIDDEN_SUFFIX,
			 j->rec.device);
		r = sxm_dm_info(hidden, &hinfo);
		if (r || !hinfo.exists)
			break;	/* never inserted */
		r = sxm_restore(j->rec.device, false, name, sizeof(name), cap,
				sizeof(cap));
		if (r)
			msgs_reason(err, errlen, "restore", cap);
		else
			snprintf(said, sizeof(said),
				 "the original table of %s is back",
				 j->rec.device);
		break;
	case SXM_SRC_CREATED:
		r = undo_created(j, said, sizeof(said), err, errlen);
		break;
	case SXM_SRC_EXISTING:
		r = sxm_dm_info(j->rec.device, &info);
		if (r || !info.exists || j->rec.orig_track)
			break;
		r = sxm_dm_message(j->rec.device, 0, "mode passthrough", NULL);
		if (r)
			snprintf(err, errlen, "/dev/mapper/%s: mode passthrough: %s",
				 j->rec.device, sxm_dm_strerror(r));
		else
			snprintf(said, sizeof(said),
				 "/dev/mapper/%s back in passthrough",
				 j->rec.device);
		break;
	default:
		break;
	}
	sxm_job_dm_unlock(j);
	if (said[0]) {
		sxm_job_lock(j);
		sxm_job_event(j, "%s", said);
		sxm_job_unlock(j);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Observing                                                          */
/* ------------------------------------------------------------------ */

void sxm_job_meta_status(struct sxm_job *j, struct sxm_job_rec *rec)
{
	struct sxm_status s = { 0 };
	int r;

	if (!rec->metadata[0] || !rec->device[0])
		return;
	sxm_job_dm_lock(j);
	r = meta_status_read(rec->device, &s);
	sxm_job_dm_unlock(j);
	if (r)
		return;
	snprintf(rec->meta_state, sizeof(rec->meta_state), "%s", s.meta_state);
	rec->meta_bits = s.meta_bits;
	rec->meta_writes = s.meta_writes;
	rec->meta_write_us = s.meta_write_us;
	snprintf(rec->meta_loaded, sizeof(rec->meta_loaded), "%s",
		 s.meta_loaded);
	rec->meta_clean_time = s.meta_clean_time;
	snprintf(rec->meta_reason, sizeof(rec->meta_reason), "%s",
		 strcmp(s.meta_reason, "-") ? s.meta_reason : "");
}

int64_t sxm_job_dirty_bytes(const struct sxm_job_rec *rec)
{
	struct sxm_attach att = { 0 };
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
	bytes = sxm_regions_bytes(map, h.nr_regions,
				  att.region_sectors << SECTOR_SHIFT,
				  att.len_sectors << SECTOR_SHIFT);
	free(map);
	return bytes;
}
