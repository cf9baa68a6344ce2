/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The copy engine: copies a set of regions of a source to a sink, many
 * requests in flight, in bounded memory.
 *
 * Regions.  The device is cut into regions of o->region_size bytes (a
 * power of two, at least 4 KiB; the last region may be short).  A set of
 * regions is a bitmap of little-endian u64 words: region r is bit r % 64
 * of word r / 64, the layout of the kernel target's dirty map.  A NULL
 * bitmap means every region.
 *
 * What is sent.  Runs of adjacent regions are read in requests of up to
 * o->buf_size bytes, from a fixed pool of o->nr_bufs buffers.  Holes of a
 * sparse source file (SEEK_DATA/SEEK_HOLE) are not read.  Data that reads
 * as zero (in SXM_COPY_ZERO_GRAIN pieces) and holes are sent as
 * write-zeroes (the sink may punch holes) or, with o->sink_is_zero, not
 * sent at all; for a hole the sink is first asked (block status) whether
 * it reads as zeroes there already, and what it says is zero is skipped.
 * Finished by a sink flush.
 *
 * Errors.  Nothing is ignored.  The first error stops new requests; those
 * in flight finish.  res->dirty then holds every region that is not known
 * to be on the sink: those whose read or write failed and those not yet
 * copied (all of them when the final flush failed).  Copying again with
 * res->dirty as the bitmap carries on where it stopped.  res->error is the
 * first -errno and res->errmsg says what failed and where:
 *   "sink nbd://h/e: write at 0x10000 (65536 bytes): Input/output error"
 *
 * Error policy as in sxm.h: returns 0 or res->error, prints nothing.
 */
#ifndef SXM_COPY_H
#define SXM_COPY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/engine.h"
#include "io/sink.h"

#define SXM_COPY_DEFAULT_BUFS		64
#define SXM_COPY_DEFAULT_BUF_SIZE	(512u << 10)
#define SXM_COPY_DEFAULT_REGION		(64u << 10)
#define SXM_COPY_MIN_REGION		4096u
#define SXM_COPY_MIN_BUF_SIZE		(64u << 10)
#define SXM_COPY_MAX_BUF_SIZE		(32u << 20)
#define SXM_COPY_MAX_BUFS		1024u
#define SXM_COPY_ZERO_GRAIN		(64u << 10)

struct sxm_copy_stats {
	uint64_t bytes_total;	/* bytes in the regions to copy */
	uint64_t bytes_done;	/* of those, on the sink or skipped */
	uint64_t bytes_read;	/* read from the source */
	uint64_t bytes_written;	/* sent as data */
	uint64_t bytes_zeroed;	/* sent as write-zeroes */
	uint64_t bytes_skipped;	/* zero, not sent: the sink had zeroes */
	uint64_t bytes_differ;	/* verify: in regions that differ */
	uint64_t buffer_bytes;	/* the buffers: what the copy moves fills */
	double elapsed;		/* seconds since the start */
	double rate;		/* bytes_done per second, lately */
	double eta;		/* seconds left; negative: unknown */
};

struct sxm_copy_opts {
	uint64_t region_size;	/* 0: SXM_COPY_DEFAULT_REGION */
	const uint64_t *bitmap;	/* regions to copy; NULL: all */
	unsigned int nr_bufs;	/* buffer pool; 0: default */
	size_t buf_size;	/* bytes each, power of two; 0: default */
	unsigned int queue_depth;	/* source reads in flight; 0: nr_bufs */
	uint64_t rate_limit;	/* bytes/s read from the source; 0: none */
	const char *engine;	/* "uring", "aio", "auto"; NULL: $SXM_ENGINE */
	/*
	 * The sink reads as zeroes wherever this copy does not write: skip
	 * zeroes (a first full copy to a SXM_SINK_ZERO_INIT sink).
	 */
	bool sink_is_zero;
	bool no_flush;		/* leave the final flush to the caller */

	/* Called at most every progress_ms (default 1000) and at the end. */
	void (*progress)(void *opaque, const struct sxm_copy_stats *st);
	void *progress_opaque;
	unsigned int progress_ms;

	/* Set (from a signal handler) to stop; the copy ends with -EINTR. */
	volatile sig_atomic_t *cancel;
};

struct sxm_copy_result {
	struct sxm_copy_stats stats;
	uint64_t nr_regions;	/* regions in the device */
	uint64_t *dirty;	/* regions still to copy; free() it */
	uint64_t nr_dirty;	/* bits set in it */
	int error;		/* 0 or the first -errno */
	char errmsg[512];	/* what failed and where, when error */
};

/*
 * Check @o against @src and @sink before copying: sizes, alignment, the
 * bitmap's extent is the caller's business.  0 or -EINVAL with @err set.
 */
int sxm_copy_check_opts(const struct sxm_copy_opts *o, char *err,
			size_t errlen);

/*
 * Copy the regions @o asks for from @src to @sink.  On return @res holds
 * the counters and the still-dirty bitmap (all clear on success); free
 * it with sxm_copy_result_free().  Returns 0 or res->error.
 */
int sxm_copy(struct sxm_source *src, struct sxm_sink *sink,
	     const struct sxm_copy_opts *o, struct sxm_copy_result *res);

/*
 * Read the same regions back from the sink and compare them with the
 * source.  Regions that differ or could not be read end up in
 * res->dirty; differing ones make it return -EILSEQ ("sink ...: data
 * differs from the source at 0x...").  Needs SXM_SINK_CAN_READ.
 */
int sxm_copy_verify(struct sxm_source *src, struct sxm_sink *sink,
		    const struct sxm_copy_opts *o,
		    struct sxm_copy_result *res);

void sxm_copy_result_free(struct sxm_copy_result *res);

#endif /* SXM_COPY_H */
