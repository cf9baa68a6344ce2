// SPDX-License-Identifier: GPL-2.0
/*
 * File sink: file:PATH or file:///PATH, a regular file or a block device,
 * for tests and local copies.
 *
 * Requests are done synchronously when queued and their completions run
 * from ->process(), as the ops table promises.  A file that does not exist
 * is created with the source's size (sparse, so known to read as zeroes);
 * an existing one must be large enough, as an NBD export must.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/fs.h>

#include "base/sxm.h"
#include "io/sink.h"

#define FILE_MAX_BLOCK	(32u << 20)
#define FILE_ZERO_CHUNK	(1u << 20)

struct file_sink {
	int fd;
	bool blockdev;
	struct sxm_sink_done_list done;
	void *zeroes;		/* FILE_ZERO_CHUNK of them, on demand */
};

static bool file_match(const char *uri)
{
	return !strncmp(uri, "file:", 5);
}

static const char *file_path(const char *uri)
{
	if (!strncmp(uri, "file://", 7))
		return uri + 7;
	return uri + 5;
}

static int file_open(struct sxm_sink *s, const struct sxm_sink_opts *o,
		     char *err, size_t errlen)
{
	const char *path = file_path(s->uri);
	struct file_sink *fs;
	bool created = false;
	struct stat st;
	int r;

	if (!*path) {
		snprintf(err, errlen, "sink %s: no file name", s->name);
		return -EINVAL;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		snprintf(err, errlen, "sink %s: %s", s->name, strerror(ENOMEM));
		return -ENOMEM;
	}
	sxm_sink_done_init(&fs->done);

	fs->fd = open(path, (o->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fs->fd < 0 && errno == ENOENT && !o->read_only) {
		fs->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			      0644);
		if (fs->fd >= 0) {
			created = true;
			if (ftruncate(fs->fd, o->min_size)) {
				r = -errno;
				snprintf(err, errlen, "sink %s: resize: %s",
					 s->name, strerror(-r));
				unlink(path);
				goto out_close;
			}
		}
	}
	if (fs->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "sink %s: open: %s", s->name,
			 strerror(-r));
		goto out_free;
	}
	if (fstat(fs->fd, &st)) {
		r = -errno;
		snprintf(err, errlen, "sink %s: stat: %s", s->name,
			 strerror(-r));
		goto out_close;
	}
	if (S_ISBLK(st.st_mode)) {
		fs->blockdev = true;
		if (ioctl(fs->fd, BLKGETSIZE64, &s->size)) {
			r = -errno;
			snprintf(err, errlen, "sink %s: size: %s", s->name,
				 strerror(-r));
			goto out_close;
		}
	} else if (S_ISREG(st.st_mode)) {
		s->size = st.st_size;
	} else {
		r = -EINVAL;
		snprintf(err, errlen,
			 "sink %s: not a regular file or block device",
			 s->name);
		goto out_close;
	}
	r = sxm_sink_check_size(s, o, "file", err, errlen);
	if (r)
		goto out_close;

	s->caps = SXM_SINK_CAN_FLUSH | SXM_SINK_CAN_FUA | SXM_SINK_CAN_ZERO |
		  SXM_SINK_CAN_TRIM | SXM_SINK_CAN_READ;
	if (o->read_only)
		s->caps |= SXM_SINK_READ_ONLY;
	if (!fs->blockdev)
		s->caps |= SXM_SINK_CAN_EXTENTS;
	if (created) {
		s->caps |= SXM_SINK_ZERO_INIT;
	} else if (o->probe_zero && !fs->blockdev &&
		   lseek(fs->fd, 0, SEEK_DATA) < 0 && errno == ENXIO) {
		/* No data anywhere: a file of holes. */
		s->caps |= SXM_SINK_ZERO_INIT;
	}
	s->block_min = 512;
	s->block_pref = 4096;
	s->block_max = FILE_MAX_BLOCK;
	s->conns = 1;
	s->priv = fs;
	return 0;

out_close:
	close(fs->fd);
out_free:
	free(fs);
	return r;
}

static void file_close(struct sxm_sink *s)
{
	struct file_sink *fs = s->priv;

	close(fs->fd);
	free(fs->zeroes);
	free(fs);
	s->priv = NULL;
}

static int file_complete(struct sxm_sink *s, struct sxm_sink_req *req,
			 int err)
{
	struct file_sink *fs = s->priv;

	req->sink = s;
	s->in_flight++;
	sxm_sink_done_push(&fs->done, req, err);
	return 0;
}

static int file_pwrite(struct sxm_sink *s, const void *buf, size_t len,
		       uint64_t off, unsigned int flags,
		       struct sxm_sink_req *req)
{
	struct file_sink *fs = s->priv;
	int r;

	r = sxm_pwrite_all(fs->fd, buf, len, off);
	if (!r && (flags & SXM_SINK_F_FUA) && fdatasync(fs->fd))
		r = -errno;
	return file_complete(s, req, r);
}

static int write_zeroes(struct sxm_sink *s, uint64_t len, uint64_t off)
{
	struct file_sink *fs = s->priv;
	int r;

	if (!fs->zeroes) {
		fs->zeroes = calloc(1, FILE_ZERO_CHUNK);
		if (!fs->zeroes)
			return -ENOMEM;
	}
	while (len) {
		size_t n = len < FILE_ZERO_CHUNK ? len : FILE_ZERO_CHUNK;

		r = sxm_pwrite_all(fs->fd, fs->zeroes, n, off);
		if (r)
			return r;
		len -= n;
		off += n;
	}
	return 0;
}

static int do_zero(struct sxm_sink *s, uint64_t len, uint64_t off,
		   unsigned int flags)
{
	struct file_sink *fs = s->priv;
	int r;

	if (fs->blockdev) {
		uint64_t range[2] = { off, len };

		if (!ioctl(fs->fd, BLKZEROOUT, range))
			return 0;
	} else {
		int mode = (flags & SXM_SINK_F_NO_HOLE) ?
			   FALLOC_FL_ZERO_RANGE :
			   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

		if (!fallocate(fs->fd, mode, off, len))
			return 0;
	}
	r = -errno;
	if (r != -EOPNOTSUPP && r != -ENOTTY && r != -EINVAL)
		return r;
	if (flags & SXM_SINK_F_FAST_ZERO)
		return -EOPNOTSUPP;
	return write_zeroes(s, len, off);
}

static int file_zero(struct sxm_sink *s, uint64_t len, uint64_t off,
		     unsigned int flags, struct sxm_sink_req *req)
{
	struct file_sink *fs = s->priv;
	int r;

	r = do_zero(s, len, off, flags);
	if (!r && (flags & SXM_SINK_F_FUA) && fdatasync(fs->fd))
		r = -errno;
	return file_complete(s, req, r);
}

static int file_trim(struct sxm_sink *s, uint64_t len, uint64_t off,
		     unsigned int flags, struct sxm_sink_req *req)
{
	struct file_sink *fs = s->priv;
	int r = 0;

	if (fs->blockdev) {
		uint64_t range[2] = { off, len };

		if (ioctl(fs->fd, BLKDISCARD, range))
			r = -errno;
	} else if (fallocate(fs->fd,
			     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			     off, len)) {
		r = -errno;
	}
	/* A discard is advisory: a device that cannot do it did nothing. */
	if (r == -EOPNOTSUPP || r == -ENOTTY)
		r = 0;
	return file_complete(s, req, r);
}

static int file_flush(struct sxm_sink *s, struct sxm_sink_req *req)
{
	struct file_sink *fs = s->priv;

	return file_complete(s, req, fdatasync(fs->fd) ? -errno : 0);
}

static int file_pread(struct sxm_sink *s, void *buf, size_t len,
		      uint64_t off, struct sxm_sink_req *req)
{
	struct file_sink *fs = s->priv;
	int r = 0;

	while (len) {
		ssize_t n = pread(fs->fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0) {
			r = -EIO;	/* past the end */
			break;
		}
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
	return file_complete(s, req, r);
}

/* Holes of a regular file read as zeroes; data is not looked into. */
static int file_extent(struct sxm_sink *s, uint64_t len, uint64_t off,
		       uint64_t *ext_len, bool *zero, struct sxm_sink_req *req)
{
	struct file_sink *fs = s->priv;
	off_t d, h;
	int r = 0;

	*ext_len = 0;
	*zero = false;
	d = lseek(fs->fd, off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {
		*zero = true;		/* nothing but holes to the end */
		*ext_len = len;
	} else if (d < 0) {
		r = -errno;
	} else if (d > (off_t)off) {
		*zero = true;
		*ext_len = (uint64_t)d - off;
	} else {
		h = lseek(fs->fd, off, SEEK_HOLE);
		if (h < 0)
			r = -errno;
		else
			*ext_len = (uint64_t)h - off;
	}
	if (*ext_len > len)
		*ext_len = len;
	return file_complete(s, req, r);
}

static int file_poll_fds(struct sxm_sink *s, struct pollfd *fds,
			 unsigned int max, int *timeout_ms)
{
	struct file_sink *fs = s->priv;

	if (fs->done.head)
		*timeout_ms = 0;
	return 0;
}

static int file_process(struct sxm_sink *s, const struct pollfd *fds,
			unsigned int n)
{
	struct file_sink *fs = s->priv;

	sxm_sink_done_run(s, &fs->done);
	return 0;
}

const struct sxm_sink_ops sxm_sink_file_ops = {
	.name = "file",
	.match = file_match,
	.open = file_open,
	.close = file_close,
	.pwrite = file_pwrite,
	.zero = file_zero,
	.trim = file_trim,
	.flush = file_flush,
	.pread = file_pread,
	.extent = file_extent,
	.poll_fds = file_poll_fds,
	.process = file_process,
};
