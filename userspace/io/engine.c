// SPDX-License-Identifier: GPL-2.0
/*
 * The source and the choice of I/O engine (engine.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "base/sxm.h"
#include "io/engine.h"

#define FILE_DIRECT_ALIGN	4096	/* safe for every file system */

int sxm_source_open(const char *path, struct sxm_source **out, char *err,
		    size_t errlen)
{
	struct sxm_source *src;
	struct stat st;
	int r;

	src = calloc(1, sizeof(*src));
	if (src)
		src->path = strdup(path);
	if (!src || !src->path) {
		free(src);
		snprintf(err, errlen, "source %s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	src->direct = true;
	src->fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (src->fd < 0 && errno == EINVAL) {
		src->direct = false;
		src->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (src->fd >= 0)
			sxm_debug("source %s: O_DIRECT refused, reading through the page cache",
				  path);
	}
	if (src->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "source %s: open: %s", path,
			 strerror(-r));
		goto out_free;
	}
	if (fstat(src->fd, &st)) {
		r = -errno;
		snprintf(err, errlen, "source %s: stat: %s", path,
			 strerror(-r));
		goto out_close;
	}
	src->align = FILE_DIRECT_ALIGN;
	if (S_ISBLK(st.st_mode)) {
		int lbs = 0;

		src->blockdev = true;
		if (ioctl(src->fd, BLKGETSIZE64, &src->size)) {
			r = -errno;
			snprintf(err, errlen, "source %s: size: %s", path,
				 strerror(-r));
			goto out_close;
		}
		if (!ioctl(src->fd, BLKSSZGET, &lbs) && lbs > 0)
			src->align = lbs;
	} else if (S_ISREG(st.st_mode)) {
		src->size = st.st_size;
		src->seek_data = lseek(src->fd, 0, SEEK_DATA) >= 0 ||
				 errno == ENXIO;
	} else {
		r = -EINVAL;
		snprintf(err, errlen,
			 "source %s: not a regular file or block device", path);
		goto out_close;
	}
	*out = src;
	return 0;

out_close:
	close(src->fd);
out_free:
	free(src->path);
	free(src);
	return r;
}

void sxm_source_close(struct sxm_source *src)
{
	if (!src)
		return;
	close(src->fd);
	free(src->path);
	free(src);
}

int sxm_source_next_data(struct sxm_source *src, uint64_t off,
			 uint64_t *data, uint64_t *hole)
{
	off_t d, h;

	if (off >= src->size) {
		*data = *hole = src->size;
		return 0;
	}
	if (!src->seek_data) {
		*data = off;
		*hole = src->size;
		return 0;
	}
	d = lseek(src->fd, off, SEEK_DATA);
	if (d < 0) {
		if (errno != ENXIO)
			return -errno;
		*data = *hole = src->size;
		return 0;
	}
	h = lseek(src->fd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*data = (uint64_t)d < src->size ? (uint64_t)d : src->size;
	*hole = (uint64_t)h < src->size ? (uint64_t)h : src->size;
	return 0;
}

bool sxm_engine_name_valid(const char *name)
{
	return !strcmp(name, "auto") || !strcmp(name, "uring") ||
	       !strcmp(name, "aio");
}

static int engine_try(const struct sxm_engine_ops *ops, int fd,
		      unsigned int depth, void **bufs, unsigned int nbufs,
		      size_t buf_size, struct sxm_engine **out, char *err,
		      size_t errlen)
{
	struct sxm_engine *e;
	int r;

	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "I/O engine: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	e->ops = ops;
	e->fd = fd;
	e->depth = depth;
	e->bufs = bufs;
	e->nbufs = nbufs;
	e->buf_size = buf_size;
	e->event_fd = -1;
	r = ops->init(e, err, errlen);
	if (r) {
		free(e);
		return r;
	}
	*out = e;
	return 0;
}

/* Why io_uring is off, when the administrator turned it off. */
static const char *uring_disabled_reason(void)
{
	char buf[8] = "";
	FILE *f;

	f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	if (!f)
		return "";
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	if (buf[0] == '1' || buf[0] == '2')
		return " (kernel.io_uring_disabled is set)";
	return "";
}

int sxm_engine_create(const char *name, int fd, unsigned int depth, void **bufs,
		      unsigned int nbufs, size_t buf_size,
		      struct sxm_engine **out, char *err, size_t errlen)
{
	int r;

	if (!name || !*name)
		name = getenv("SXM_ENGINE");
	if (!name || !*name)
		name = "auto";
	if (!sxm_engine_name_valid(name)) {
		snprintf(err, errlen,
			 "unknown I/O engine '%s' (expected uring, aio or auto)",
			 name);
		return -EINVAL;
	}
	if (!strcmp(name, "aio"))
		return engine_try(&sxm_engine_aio_ops, fd, depth, bufs, nbufs,
				  buf_size, out, err, errlen);
	r = engine_try(&sxm_engine_uring_ops, fd, depth, bufs, nbufs,
		       buf_size, out, err, errlen);
	if (!r || strcmp(name, "auto"))
		return r;
	if (r != -ENOSYS && r != -EPERM && r != -EOPNOTSUPP)
		return r;
	sxm_debug("io_uring unavailable: %s%s; using libaio", err,
		  uring_disabled_reason());
	return engine_try(&sxm_engine_aio_ops, fd, depth, bufs, nbufs,
			  buf_size, out, err, errlen);
}

void sxm_engine_destroy(struct sxm_engine *e)
{
	if (!e)
		return;
	e->ops->exit(e);
	free(e);
}

void sxm_engine_clear_event(struct sxm_engine *e)
{
	uint64_t v;

	while (read(e->event_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}
