// SPDX-License-Identifier: GPL-2.0
/* Job records on disk; see jobstore.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "base/sxm.h"
#include "jobs/jobstore.h"

#define REC_SUFFIX	".job"
#define REC_MAX		(1 << 20)	/* no record is this big */

int sxm_jobstore_open(const char *dir, char *err, size_t errlen)
{
	int fd, r;

	r = sxm_mkdir_p(dir, 0700);
	if (r) {
		snprintf(err, errlen, "state directory %s: %s", dir,
			 strerror(-r));
		return r;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "state directory %s: %s", dir,
			 strerror(-r));
		return r;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		r = -errno;
		if (r == -EWOULDBLOCK)
			snprintf(err, errlen,
				 "state directory %s is locked: another sxm-ctl daemon uses it",
				 dir);
		else
			snprintf(err, errlen, "state directory %s: lock: %s",
				 dir, strerror(-r));
		close(fd);
		return r;
	}
	return fd;
}

int sxm_jobstore_save(int dirfd, const struct sxm_job_rec *j)
{
	char path[SXM_JOB_NAME_MAX + 16], tmp[SXM_JOB_NAME_MAX + 24], *text;
	int r;

	if (sxm_job_name_check(j->name))
		return -EINVAL;
	text = sxm_job_rec_format(j);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s" REC_SUFFIX, j->name);
	snprintf(tmp, sizeof(tmp), ".%s" REC_SUFFIX ".tmp", j->name);
	r = sxm_replace_file(dirfd, path, tmp, text);
	free(text);
	return r;
}

int sxm_jobstore_remove(int dirfd, const char *name)
{
	char path[SXM_JOB_NAME_MAX + 16];

	if (sxm_job_name_check(name))
		return -EINVAL;
	snprintf(path, sizeof(path), "%s" REC_SUFFIX, name);
	if (unlinkat(dirfd, path, 0) && errno != ENOENT)
		return -errno;
	if (fsync(dirfd))
		return -errno;
	return 0;
}

int sxm_jobstore_load(int dirfd, int (*cb)(struct sxm_job_rec *j,
					   void *opaque), void *opaque)
{
	struct sxm_job_rec *j;
	struct dirent *de;
	char *text = NULL, bad[NAME_MAX + 8];
	size_t n;
	DIR *d;
	int fd, r = 0, e;

	fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	j = malloc(sizeof(*j));
	if (!j) {
		closedir(d);
		return -ENOMEM;
	}
	while (!r && (de = readdir(d))) {
		n = strlen(de->d_name);
		if (de->d_name[0] == '.' || n <= strlen(REC_SUFFIX) ||
		    strcmp(de->d_name + n - strlen(REC_SUFFIX), REC_SUFFIX))
			continue;
		e = sxm_read_text(dirfd, de->d_name, REC_MAX, &text);
		if (!e) {
			e = sxm_job_rec_parse(text, j);
			free(text);
		}
		/* The file name is the job's name. */
		if (!e && (strlen(j->name) != n - strlen(REC_SUFFIX) ||
			   strncmp(j->name, de->d_name, strlen(j->name))))
			e = -EINVAL;
		if (e) {
			snprintf(bad, sizeof(bad), "%s.bad", de->d_name);
			renameat(dirfd, de->d_name, dirfd, bad);
			sxm_err("job record %s: %s; kept as %s", de->d_name,
				e == -EINVAL ? "unreadable" :
				e == -EPROTONOSUPPORT ?
				"written by a newer sxm-ctl (a record format this one does not know): that sxm-ctl can take it back" :
				strerror(-e), bad);
			continue;
		}
		r = cb(j, opaque);
	}
	free(j);
	closedir(d);
	return r;
}
