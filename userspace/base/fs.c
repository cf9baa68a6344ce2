// SPDX-License-Identifier: GPL-2.0
/* Directories and files: see sxm.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/sxm.h"

int sxm_mkdir_p(const char *dir, mode_t mode)
{
	char path[PATH_MAX], *p;

	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int sxm_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

int sxm_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

int sxm_read_text(int dirfd, const char *name, size_t max, char **out)
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
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
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

int sxm_replace_file(int dirfd, const char *name, const char *tmp,
		     const char *text)
{
	int fd, r;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	r = sxm_write_all(fd, text, strlen(text));
	if (!r && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && renameat(dirfd, tmp, dirfd, name))
		r = -errno;
	if (!r && fsync(dirfd))
		r = -errno;
	if (r)
		unlinkat(dirfd, tmp, 0);
	return r;
}

int sxm_file_size(int fd, uint64_t *bytes, bool *blockdev)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, bytes))
			return -errno;
	} else if (S_ISREG(st.st_mode)) {
		*bytes = st.st_size;
	} else {
		return -EINVAL;
	}
	if (blockdev)
		*blockdev = S_ISBLK(st.st_mode);
	return 0;
}

/* The dev_t in sysfs file @path ("M:m"), or 0. */
static dev_t sysfs_dev(const char *path)
{
	unsigned int ma, mi;
	FILE *f = fopen(path, "re");
	int n = 0;

	if (f) {
		n = fscanf(f, "%u:%u", &ma, &mi);
		fclose(f);
	}
	return n == 2 ? makedev(ma, mi) : 0;
}

static bool blk_under(dev_t dev, dev_t below, int depth)
{
	char path[PATH_MAX], sub[PATH_MAX + 300], real[PATH_MAX];
	struct dirent *e;
	bool found = false;
	char *slash;
	DIR *d;

	if (dev == below)
		return true;
	if (depth > 16)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev),
		 minor(dev));
	/* A partition: its disk is the directory above it. */
	snprintf(sub, sizeof(sub), "%s/partition", path);
	if (!access(sub, F_OK) && realpath(path, real)) {
		slash = strrchr(real, '/');
		if (slash) {
			*slash = '\0';
			snprintf(sub, sizeof(sub), "%s/dev", real);
			if (blk_under(sysfs_dev(sub), below, depth + 1))
				return true;
		}
	}
	snprintf(sub, sizeof(sub), "%s/slaves", path);
	d = opendir(sub);
	while (d && !found && (e = readdir(d))) {
		char dv[PATH_MAX + 600];

		if (e->d_name[0] == '.')
			continue;
		snprintf(dv, sizeof(dv), "%s/%s/dev", sub, e->d_name);
		found = blk_under(sysfs_dev(dv), below, depth + 1);
	}
	if (d)
		closedir(d);
	return found;
}

bool sxm_blk_under(dev_t dev, dev_t below)
{
	return dev && below && blk_under(dev, below, 0);
}
