// SPDX-License-Identifier: GPL-2.0
/*
 * Insert and restore (insert.h): put the sxm target under a device-mapper
 * device that is in use (an LVM logical volume, any dm device), and take it
 * out again, without its openers noticing.  "sxm-ctl insert/restore"
 * (cmd_insert.c) and the daemon's jobs (warm.c) both use these.
 *
 * insert DMNAME:
 *   1. write a record of the original table (the state directory);
 *   2. create the hidden device DMNAME-sxm-orig with that same table;
 *   3. load "0 <len> sxm <hidden major:minor> <region>" into DMNAME;
 *   4. suspend DMNAME (flushing), resume it: the sxm table goes live, in
 *      one step for whoever has DMNAME open.
 * restore DMNAME: load the hidden device's table back into DMNAME, suspend,
 * resume, remove the hidden device and the record; "dmsetup table DMNAME"
 * is then what it was before the insert.
 *
 * Either command that fails part-way puts DMNAME back on the table it ran
 * before; if even that fails, the record stays and "sxm-ctl restore" takes
 * it from wherever it stopped (a later restore reads what is live, not what
 * it expected).  The state directory is locked while either runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/sxm.h"
#include "dm/dm.h"
#include "dm/insert.h"
#include "dm/status.h"

/* ----------------------------------------------------------------------
 * The state directory and the insert record
 * ----------------------------------------------------------------------
 */

const char *sxm_insert_state_dir(void)
{
	const char *d = getenv("SXM_STATE_DIR");

	return d && *d ? d : SXM_STATE_DIR_DEFAULT;
}

/*
 * Open the state directory and lock it until the descriptor is closed:
 * one insert or restore at a time.
 */
static int lock_state_dir(char *err, size_t errlen)
{
	const char *dir = sxm_insert_state_dir();
	int fd, r;

	r = sxm_mkdir_p(dir, 0700);
	if (r) {
		sxm_msg_add(err, errlen, "state directory %s: %s", dir, strerror(-r));
		return r;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		r = -errno;
		sxm_msg_add(err, errlen, "state directory %s: %s", dir, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	return fd;
}

/* An insert record's largest size: a table of thousands of targets. */
#define REC_MAX		(16 << 20)

static void rec_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s.insert", sxm_insert_state_dir(), name);
}

/* Read @name's record: 0, -ENOENT if there is none, or another -errno. */
static int rec_read(const char *name, struct sxm_insert_rec *rec)
{
	char path[PATH_MAX], *text = NULL;
	int r;

	rec_path(path, sizeof(path), name);
	r = sxm_read_text(AT_FDCWD, path, REC_MAX, &text);
	if (r)
		return r;
	r = sxm_insert_rec_parse(text, rec);
	if (!r && strcmp(rec->name, name)) {
		sxm_table_free(&rec->table);
		r = -EINVAL;
	}
	free(text);
	return r;
}

/* Write the record durably: a temporary file, fsync, rename, fsync. */
static int rec_write(int dirfd, const struct sxm_insert_rec *rec)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], *text;
	int r;

	text = sxm_insert_rec_format(rec);
	if (!text)
		return -ENOMEM;
	rec_path(path, sizeof(path), rec->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	r = sxm_replace_file(dirfd, path, tmp, text);
	free(text);
	return r;
}

static int rec_remove(int dirfd, const char *name)
{
	char path[PATH_MAX];

	rec_path(path, sizeof(path), name);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	fsync(dirfd);
	return 0;
}

/* ----------------------------------------------------------------------
 * Table swaps
 * ----------------------------------------------------------------------
 */

/* Load @tbl into @name and make it live: suspend (flushing), resume. */
static int swap_table(const char *name, const struct sxm_table *tbl,
		      unsigned int flags, const char **step)
{
	int r;

	*step = "load";
	r = sxm_dm_load(name, tbl, flags);
	if (r)
		return r;
	*step = "suspend";
	r = sxm_dm_suspend(name, 0);
	if (r)
		return r;
	*step = "resume";
	return sxm_dm_resume(name);
}

/*
 * Bring @name back to running @want after a swap failed at any step: drop
 * a table loaded and not resumed, put @want back if another one went live,
 * and resume.
 */
static int put_back(const char *name, const struct sxm_table *want,
		    unsigned int flags)
{
	struct sxm_table live = { 0 };
	struct sxm_dm_info info;
	const char *step;
	int r;

	r = sxm_dm_clear(name);
	if (!r)
		r = sxm_dm_table(name, &live);
	if (r)
		return r;
	if (!sxm_table_equal(&live, want)) {
		r = swap_table(name, want, flags, &step);
		if (r)
			sxm_dm_clear(name);
		goto out;
	}
	r = sxm_dm_info(name, &info);
	if (!r && info.suspended)
		r = info.inactive_table ? -EBUSY : sxm_dm_resume(name);
out:
	sxm_table_free(&live);
	return r;
}

static unsigned int ro_flag(bool read_only)
{
	return read_only ? SXM_DM_READ_ONLY : 0;
}

/* Whether @tbl is a single sxm target over the device @dev. */
static bool is_sxm_over(const struct sxm_table *tbl,
			const struct sxm_dm_info *dev)
{
	struct sxm_params p;

	return dev->exists && tbl->nr == 1 &&
	       !strcmp(tbl->t[0].type, SXM_TARGET_TYPE) &&
	       !sxm_params_parse(tbl->t[0].params, &p) &&
	       p.major == dev->major && p.minor == dev->minor;
}

/* ----------------------------------------------------------------------
 * insert
 * ----------------------------------------------------------------------
 */

/* Check that @name can take an insert; fill in @info and @rec. */
static int insert_check(const char *arg, struct sxm_dm_info *info,
			struct sxm_insert_rec *rec, char *err, size_t errlen)
{
	struct sxm_dm_info hinfo;
	unsigned int i;
	int r;

	r = sxm_dm_info(arg, info);
	if (!r && !info->exists)
		r = -ENXIO;
	if (r) {
		sxm_msg_add(err, errlen, "%s: %s", arg, sxm_dm_strerror(r));
		return r;
	}
	if (!info->live_table) {
		sxm_msg_add(err, errlen, "%s: has no live table", arg);
		return -EINVAL;
	}
	if (info->suspended || info->inactive_table) {
		sxm_msg_add(err, errlen, "%s: is %s: another operation on it is under way",
			arg, info->suspended ? "suspended" :
			"carrying a loaded inactive table");
		return -EBUSY;
	}
	snprintf(rec->name, sizeof(rec->name), "%s", info->name);
	if (snprintf(rec->hidden, sizeof(rec->hidden), "%s" HIDDEN_SUFFIX,
		     info->name) >= (int)sizeof(rec->hidden)) {
		sxm_msg_add(err, errlen, "%s: name too long to add \"%s\" for the hidden device",
			arg, HIDDEN_SUFFIX);
		return -ENAMETOOLONG;
	}
	rec->read_only = info->read_only;
	r = sxm_dm_table(info->name, &rec->table);
	if (r) {
		sxm_msg_add(err, errlen, "%s: table: %s", arg, sxm_dm_strerror(r));
		return r;
	}
	for (i = 0; i < rec->table.nr; i++)
		if (!strcmp(rec->table.t[i].type, SXM_TARGET_TYPE)) {
			sxm_msg_add(err, errlen, "%s: has an sxm target already", arg);
			return -EEXIST;
		}
	r = sxm_dm_info(rec->hidden, &hinfo);
	if (!r && hinfo.exists) {
		sxm_msg_add(err, errlen, "%s: %s exists: an earlier insert stopped part-way? sxm-ctl restore %s cleans it up",
			arg, rec->hidden, rec->name);
		return -EEXIST;
	}
	return r;
}

int sxm_insert(const char *arg, uint64_t region, bool track,
	       const struct sxm_meta_arg *meta, struct sxm_inserted *done,
	       char *err, size_t errlen)
{
	struct sxm_insert_rec rec = { 0 }, old;
	struct sxm_table sxm = { 0 };
	struct sxm_dm_info info, hinfo;
	char uuid[64], params[SXM_PARAMS_MAX], path[PATH_MAX];
	const char *step = "create";
	int dirfd, r, ret = -EIO;

	if (errlen)
		err[0] = '\0';
	dirfd = lock_state_dir(err, errlen);
	if (dirfd < 0)
		return dirfd;
	ret = insert_check(arg, &info, &rec, err, errlen);
	if (ret)
		goto out;
	ret = -EEXIST;
	rec_path(path, sizeof(path), rec.name);
	r = rec_read(rec.name, &old);
	if (r != -ENOENT) {
		if (!r)
			sxm_table_free(&old.table);
		sxm_msg_add(err, errlen, "%s: a record of an earlier insert is in %s: sxm-ctl restore %s first",
			arg, path, rec.name);
		goto out;
	}
	r = rec_write(dirfd, &rec);
	if (r) {
		sxm_msg_add(err, errlen, "%s: writing %s: %s", arg, path, strerror(-r));
		ret = r;
		goto out;
	}

	/* From here on every failure undoes what was done. */
	snprintf(uuid, sizeof(uuid), HIDDEN_UUID_PREFIX "%u:%u", info.major,
		 info.minor);
	r = sxm_dm_create(rec.hidden, uuid, &rec.table,
			  ro_flag(rec.read_only) | SXM_DM_HIDDEN);
	if (r) {
		sxm_msg_add(err, errlen, "%s: creating %s with its table: %s", arg,
			rec.hidden, sxm_dm_strerror(r));
		rec_remove(dirfd, rec.name);
		ret = r;
		goto out;
	}
	r = sxm_dm_info(rec.hidden, &hinfo);
	if (!r && !hinfo.exists)
		r = -ENXIO;
	if (!r)
		r = sxm_params_build(params, sizeof(params), hinfo.major,
				     hinfo.minor, region, track, meta);
	if (!r)
		r = sxm_table_add(&sxm, 0, sxm_table_sectors(&rec.table),
				  SXM_TARGET_TYPE, params);
	if (!r)
		r = swap_table(rec.name, &sxm, ro_flag(rec.read_only), &step);
	if (r) {
		ret = r;
		if (r == -EINVAL && !strcmp(step, "load") &&
		    sxm_dm_has_target_type(SXM_TARGET_TYPE) == 0)
			sxm_msg_add(err, errlen, "%s: load: dm-sxm module not loaded (device-mapper has no sxm target)",
				arg);
		else if (r == -EINVAL && !strcmp(step, "load"))
			sxm_msg_add(err, errlen, "%s: load: the kernel refused the sxm table (its reason is in the kernel log)",
				arg);
		else
			sxm_msg_add(err, errlen, "%s: %s: %s", arg, step,
				sxm_dm_strerror(r));
		r = put_back(rec.name, &rec.table, ro_flag(rec.read_only));
		if (!r)
			r = sxm_dm_remove(rec.hidden, true);
		if (!r)
			rec_remove(dirfd, rec.name);
		if (r)
			sxm_msg_add(err, errlen, "%s: undoing the insert failed too (%s): the record is kept in %s; sxm-ctl restore %s finishes the undo",
				arg, sxm_dm_strerror(r), path, rec.name);
		else
			sxm_msg_add(err, errlen, "%s: undone: the device runs its original table",
				arg);
		goto out;
	}
	snprintf(done->name, sizeof(done->name), "%s", rec.name);
	snprintf(done->hidden, sizeof(done->hidden), "%s", rec.hidden);
	done->hidden_major = hinfo.major;
	done->hidden_minor = hinfo.minor;
	ret = 0;
out:
	sxm_table_free(&sxm);
	sxm_table_free(&rec.table);
	close(dirfd);
	return ret;
}

/* ----------------------------------------------------------------------
 * restore
 * ----------------------------------------------------------------------
 */

/* The pid of the helper attached to @name's sxm target, 0 if none. */
static uint32_t helper_of(const char *name)
{
	struct sxm_table lines;
	struct sxm_status st;
	uint32_t pid = 0;

	if (sxm_dm_status(name, &lines))
		return 0;
	if (lines.nr == 1 && !sxm_status_parse(lines.t[0].params, &st))
		pid = st.helper_pid;
	sxm_table_free(&lines);
	return pid;
}

/* @name runs sxm over the hidden device: put the original table back. */
int sxm_end_track(const char *name, const struct sxm_table *live, char *err,
		  size_t errlen)
{
	struct sxm_params p;
	int r;

	if (live->nr != 1 || live->t[0].start ||
	    strcmp(live->t[0].type, SXM_TARGET_TYPE) ||
	    sxm_params_parse(live->t[0].params, &p) || !p.has_meta)
		return 0;
	r = sxm_dm_message(name, 0, "mode passthrough", NULL);
	if (r)
		sxm_msg_add(err, errlen, "%s: cannot end the track on its metadata device %u:%u (%s): writes without sxm would go unseen by a later load; unchanged",
			name, p.meta_major, p.meta_minor, r == -EIO ?
			"it fails its writes" : sxm_dm_strerror(r));
	return r;
}

static int restore_swap(const char *arg, const char *name,
			const struct sxm_dm_info *hinfo,
			const struct sxm_table *sxm, bool force, char *err,
			size_t errlen)
{
	struct sxm_table orig = { 0 };
	struct sxm_dm_info info;
	const char *step;
	uint32_t pid;
	int r;

	pid = helper_of(name);
	if (pid && !force) {
		sxm_msg_add(err, errlen, "%s: a helper (pid %u) is attached to its sxm target: stop it first, or --force",
			arg, pid);
		return -EBUSY;
	}
	r = sxm_dm_table(hinfo->name, &orig);
	if (!r && !orig.nr)
		r = -ENODATA;
	if (!r)
		r = sxm_dm_info(name, &info);
	if (r) {
		sxm_msg_add(err, errlen, "%s: reading %s: %s", arg, hinfo->name,
			sxm_dm_strerror(r));
		goto out;
	}
	/* The writes after the swap go unseen: no later load may trust it. */
	r = sxm_end_track(name, sxm, err, errlen);
	if (r)
		goto out;
	r = swap_table(name, &orig, ro_flag(hinfo->read_only), &step);
	if (r) {
		sxm_msg_add(err, errlen, "%s: %s: %s", arg, step, sxm_dm_strerror(r));
		if (put_back(name, sxm, ro_flag(info.read_only)))
			sxm_msg_add(err, errlen, "%s: and putting the sxm table back failed: check dmsetup info %s",
				arg, name);
		else
			sxm_msg_add(err, errlen, "%s: unchanged: it still runs sxm over %s",
				arg, hinfo->name);
	}
out:
	sxm_table_free(&orig);
	return r;
}

/*
 * @name does not run sxm over the hidden device: an insert or a restore
 * stopped part-way.  If it runs the original table, finish the cleanup:
 * drop an sxm table of ours left loaded, and resume it if left suspended.
 */
static int restore_leftovers(const char *arg, const char *name,
			     const struct sxm_dm_info *hinfo,
			     const struct sxm_table *live,
			     const struct sxm_insert_rec *rec, bool have_rec,
			     char *err, size_t errlen)
{
	struct sxm_table want = { 0 }, inactive = { 0 };
	const struct sxm_table *orig = &rec->table;
	struct sxm_dm_info info;
	int r;

	/* The hidden device's table if it is there, else the record's. */
	if (hinfo->exists) {
		r = sxm_dm_table(hinfo->name, &want);
		if (r)
			goto out;
		orig = &want;
	}
	if (!orig->nr || !sxm_table_equal(live, orig)) {
		sxm_msg_add(err, errlen, "%s: its table is neither sxm over %s nor the original: not touching it",
			arg, rec->hidden);
		r = -EINVAL;
		goto out;
	}
	r = sxm_dm_inactive_table(name, &inactive);
	if (!r && is_sxm_over(&inactive, hinfo))
		r = sxm_dm_clear(name);
	if (!r)
		r = sxm_dm_info(name, &info);
	if (!r && info.suspended && have_rec && !info.inactive_table)
		r = sxm_dm_resume(name);
	if (r)
		sxm_msg_add(err, errlen, "%s: cleaning up after the interrupted insert: %s",
			arg, sxm_dm_strerror(r));
out:
	sxm_table_free(&want);
	sxm_table_free(&inactive);
	return r;
}

int sxm_restore(const char *arg, bool force, char *name, size_t namelen,
		char *err, size_t errlen)
{
	struct sxm_insert_rec rec = { 0 };
	struct sxm_table live = { 0 };
	struct sxm_dm_info info, hinfo;
	bool have_rec;
	int dirfd, r, ret = -EINVAL;
	unsigned int i;

	if (errlen)
		err[0] = '\0';
	dirfd = lock_state_dir(err, errlen);
	if (dirfd < 0)
		return dirfd;
	r = sxm_dm_info(arg, &info);
	if (!r && !info.exists)
		r = -ENXIO;
	if (!r)
		r = sxm_dm_table(info.name, &live);
	if (r) {
		sxm_msg_add(err, errlen, "%s: %s", arg, sxm_dm_strerror(r));
		goto out;
	}
	r = rec_read(info.name, &rec);
	have_rec = !r;
	if (r && r != -ENOENT) {
		sxm_msg_add(err, errlen, "%s: the insert record: %s", arg,
			r == -EINVAL ? "unreadable" : strerror(-r));
		goto out;
	}
	if (!have_rec)
		snprintf(rec.hidden, sizeof(rec.hidden), "%.*s" HIDDEN_SUFFIX,
			 (int)(sizeof(rec.hidden) - sizeof(HIDDEN_SUFFIX)),
			 info.name);
	r = sxm_dm_info(rec.hidden, &hinfo);
	if (r) {
		sxm_msg_add(err, errlen, "%s: %s: %s", arg, rec.hidden,
			sxm_dm_strerror(r));
		goto out;
	}
	if (hinfo.exists && strncmp(hinfo.uuid, HIDDEN_UUID_PREFIX,
				    strlen(HIDDEN_UUID_PREFIX))) {
		sxm_msg_add(err, errlen, "%s: %s was not made by sxm-ctl insert (uuid '%s')",
			arg, rec.hidden, hinfo.uuid);
		goto out;
	}
	if (!have_rec && !hinfo.exists) {
		sxm_msg_add(err, errlen, "%s: sxm was not inserted under it (no %s, no record in %s)",
			arg, rec.hidden, sxm_insert_state_dir());
		goto out;
	}

	if (is_sxm_over(&live, &hinfo)) {
		r = restore_swap(arg, info.name, &hinfo, &live, force, err,
				 errlen);
		if (r)
			goto out;
	} else {
		for (i = 0; i < live.nr; i++)
			if (!strcmp(live.t[i].type, SXM_TARGET_TYPE)) {
				sxm_msg_add(err, errlen, "%s: its sxm target is not over %s: not touching it",
					arg, rec.hidden);
				goto out;
			}
		r = restore_leftovers(arg, info.name, &hinfo, &live, &rec,
				      have_rec, err, errlen);
		if (r)
			goto out;
	}

	if (hinfo.exists) {
		r = sxm_dm_remove(hinfo.name, true);
		if (r) {
			sxm_msg_add(err, errlen, "%s: the original table is back, but removing %s failed: %s; sxm-ctl restore %s again finishes",
				arg, hinfo.name, sxm_dm_strerror(r),
				info.name);
			goto out;
		}
	}
	r = rec_remove(dirfd, info.name);
	if (r) {
		sxm_msg_add(err, errlen, "%s: removing the insert record: %s", arg,
			strerror(-r));
		goto out;
	}
	snprintf(name, namelen, "%s", info.name);
	ret = 0;
out:
	if (ret && r < 0)
		ret = r;
	sxm_table_free(&live);
	sxm_table_free(&rec.table);
	close(dirfd);
	return ret;
}

