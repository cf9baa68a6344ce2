/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading the source: the source itself (a block device or a file, opened
 * O_DIRECT where it allows) and the I/O engines that read it
 * asynchronously: io_uring (engine_uring.c) and libaio (engine_aio.c) for
 * kernels where io_uring is missing or disabled.
 *
 * An engine reads into buffers the caller registers once at creation
 * (io_uring uses them as fixed buffers).  Reads are queued with ->read(),
 * handed to the kernel with ->submit(), and completed from ->reap(), which
 * runs each request's ->done() with the bytes read or -errno.  The caller
 * polls e->event_fd (readable when completions wait) with its other
 * descriptors.
 *
 * Error policy as in sxm.h: 0 or -errno; creation and opening fill a
 * caller's buffer with the reason.
 */
#ifndef SXM_ENGINE_H
#define SXM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The device or file being migrated. */
struct sxm_source {
	int fd;
	char *path;
	uint64_t size;		/* bytes */
	unsigned int align;	/* offsets, lengths, buffers (O_DIRECT) */
	bool direct;		/* opened O_DIRECT */
	bool blockdev;
	bool seek_data;		/* SEEK_DATA/SEEK_HOLE answer truthfully */
};

/*
 * Open @path read-only for copying, O_DIRECT unless the file system
 * refuses it (tmpfs), in which case reads are buffered and a debug message
 * says so.
 */
int sxm_source_open(const char *path, struct sxm_source **out, char *err,
		    size_t errlen);
void sxm_source_close(struct sxm_source *src);

/*
 * Where the data is, for sparse files: the data extent at or after @off as
 * [*data, *hole).  *data == src->size when there is no more data.  Sources
 * that cannot tell (block devices) report all of it as data.
 */
int sxm_source_next_data(struct sxm_source *src, uint64_t off,
			 uint64_t *data, uint64_t *hole);

struct sxm_engine_req {
	/* Called once, from ->reap(): bytes read (maybe short) or -errno. */
	void (*done)(struct sxm_engine_req *req, ssize_t res);
};

struct sxm_engine;

struct sxm_engine_ops {
	const char *name;

	/*
	 * Required.  Set up for e->depth reads in flight on e->fd into
	 * e->bufs, and set e->event_fd.  Returns 0, -ENOSYS or -EPERM when
	 * the kernel will not do it (so "auto" tries the next engine), or
	 * another -errno, with the reason in @err.
	 */
	int (*init)(struct sxm_engine *e, char *err, size_t errlen);

	/* Required.  Release everything; reads in flight are waited for. */
	void (*exit)(struct sxm_engine *e);

	/*
	 * Required.  Queue a read of @len bytes at @off into @buf, which
	 * lies inside registered buffer @buf_index.  At most e->depth may
	 * be queued or in flight.
	 */
	int (*read)(struct sxm_engine *e, void *buf, unsigned int buf_index,
		    size_t len, uint64_t off, struct sxm_engine_req *req);

	/* Required.  Hand the queued reads to the kernel. */
	int (*submit)(struct sxm_engine *e);

	/* Required.  Run ready completions without blocking; count run. */
	int (*reap)(struct sxm_engine *e);
};

struct sxm_engine {
	const struct sxm_engine_ops *ops;
	int fd;			/* the source */
	unsigned int depth;	/* reads in flight, at most */
	void **bufs;		/* the caller's buffers */
	unsigned int nbufs;
	size_t buf_size;	/* bytes each */
	int event_fd;		/* poll for POLLIN */
	unsigned int in_flight;	/* queued or submitted, not yet done */
	bool registered;	/* uring: buffers registered (fixed) */
	void *priv;
};

/*
 * Create the engine named @name ("uring", "aio", or "auto" or NULL for
 * $SXM_ENGINE, else io_uring falling back to libaio).
 */
int sxm_engine_create(const char *name, int fd, unsigned int depth, void **bufs,
		      unsigned int nbufs, size_t buf_size,
		      struct sxm_engine **out, char *err, size_t errlen);
void sxm_engine_destroy(struct sxm_engine *e);

/* True if @name is an engine name sxm_engine_create() takes. */
bool sxm_engine_name_valid(const char *name);

/* Clear the event fd; engines call it from ->reap(). */
void sxm_engine_clear_event(struct sxm_engine *e);

extern const struct sxm_engine_ops sxm_engine_uring_ops;
extern const struct sxm_engine_ops sxm_engine_aio_ops;

#endif /* SXM_ENGINE_H */
