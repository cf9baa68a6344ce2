/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sxm-ctl internal header.
 *
 * Error policy (one, for all of userspace): library-style functions return
 * 0 or a negative errno and say nothing, or log the one detail only they
 * know with sxm_err() and still return -errno; only the command layer
 * (cmd_*.c, main.c) prints the final message and picks the exit status.
 * Messages say what failed and on what:
 *   "sink nbd://h/e: write at 0x10000: Input/output error".
 */
#ifndef SXM_H
#define SXM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SECTOR_SHIFT 9

/* Exit statuses of sxm-ctl. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,		/* the operation failed */
	EXIT_USAGE = 2,		/* bad command line */
};

/* Logging (log.c).  sxm_err() is for library code's one extra detail. */
extern int sxm_verbose;
void sxm_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sxm_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sxm_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * A library call with more than one thing to say about a failure (insert,
 * restore) appends each to the caller's @buf as a line of its own: the
 * command layer prints each line, the job layer joins them into a reason.
 */
void sxm_msg_add(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Number parsing (parse.c).  All return 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t *out);
int parse_size(const char *s, uint64_t *out);		/* 4096, 64k, 1M, 2GiB */
int parse_rate(const char *s, uint64_t *out);		/* 100M, 1G/s; 0 */
int parse_duration_ms(const char *s, uint64_t *out);	/* 500ms, 15m, 1h, 1d */
const char *fmt_size(uint64_t bytes, char *buf, size_t len);	/* "1.5 GiB" */

/*
 * Directories and files (fs.c).  mkdir -p: the missing parents of @dir made with
 * mode 0755, @dir itself with @mode (the state directories are private,
 * 0700); one that exists already is left as it is.
 */
int sxm_mkdir_p(const char *dir, mode_t mode);

/* All of @len bytes written (at @off), retried on EINTR and short writes. */
int sxm_write_all(int fd, const void *buf, size_t len);
int sxm_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/*
 * The whole of regular file @name (relative to @dirfd, or absolute) as a
 * NUL-terminated string (*@out, malloc'd): -EINVAL if it is not a regular
 * file, is larger than @max bytes or holds a NUL.
 */
int sxm_read_text(int dirfd, const char *name, size_t max, char **out);
/*
 * Replace @name in @dirfd with @text durably: written to @tmp, fsync'd,
 * renamed over @name, the directory fsync'd.  On failure @tmp is removed
 * and @name is as it was.
 */
int sxm_replace_file(int dirfd, const char *name, const char *tmp,
		     const char *text);
/*
 * The size in bytes of the regular file or block device open on @fd
 * (*@blockdev, may be NULL: which); -EINVAL if it is neither.
 */
int sxm_file_size(int fd, uint64_t *bytes, bool *blockdev);
/*
 * Whether block device @below is @dev itself or under it: the disk of a
 * partition, a device-mapper or md device's slaves, and so on down
 * (sysfs; a stack at most 16 deep is followed).
 */
bool sxm_blk_under(dev_t dev, dev_t below);

/*
 * CRC-32 (crc32.c), zlib's: sxm_crc32(0, buf, len), or carried on over
 * more data with the value it returned before.
 */
uint32_t sxm_crc32(uint32_t crc, const void *buf, size_t len);

#endif /* SXM_H */
