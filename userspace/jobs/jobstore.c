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

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

int sxm_jobstore_save(int dirfd, const struct sxm_job_rec *j)
{
	char path[SXM_JOB_NAME_MAX + 16], tmp[SXM_JOB_NAME_MAX + 24], *text;
	int fd, r;

	if (sxm_job_name_check(j->name))
		return -EINVAL;
	text = sxm_job_rec_format(j);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s" REC_SUFFIX, j->name);
	snprintf(tmp, sizeof(tmp), ".%s" REC_SUFFIX ".tmp", j->name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, text, strlen(text));
	if (!r && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && renameat(dirfd, tmp, dirfd, path))
		r = -errno;
	if (!r && fsync(dirfd))
		r = -errno;
	if (r)
		unlinkat(dirfd, tmp, 0);
out:
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

/* The text of @name in @dirfd, NUL-terminated; the caller frees it. */
static int read_text(int dirfd, const char *name, char **out)
{
	struct stat st;
	char *text;
	ssize_t n;
	int fd, r = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > REC_MAX) {
		r = -EINVAL;
		goto out;
	}
	text = malloc(st.st_size + 1);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	n = pread(fd, text, st.st_size, 0);
	if (n != st.st_size) {
		r = n < 0 ? -errno : -EIO;
		free(text);
		goto out;
	}
	text[n] = '\0';
	if (strlen(text) != (size_t)n) {
		free(text);
		r = -EINVAL;
		goto out;
	}
	*out = text;
out:
	close(fd);
	return r;
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
		e = read_text(dirfd, de->d_name, &text);
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
				e == -EINVAL ? "unreadable" : strerror(-e),
				bad);
			continue;
		}
		r = cb(j, opaque);
	}
	free(j);
	closedir(d);
	return r;
}
