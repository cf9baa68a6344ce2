// SPDX-License-Identifier: GPL-2.0
/*
 * region_diff_tool — compare or copy two block devices region by region
 * (tests/vm/77-metadata-crash.sh).
 *
 *   region_diff_tool diff A B REGION_BYTES   the indices of the regions
 *                                            where A and B differ, one a line
 *   region_diff_tool copy A B REGION_BYTES   copy the regions whose indices
 *                                            come on stdin from A to B,
 *                                            then fsync B
 *
 * O_DIRECT both ways: what is read is what the devices hold, not a cache.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

static void die(const char *what)
{
	fprintf(stderr, "region_diff_tool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pread_all(int fd, void *buf, size_t len, off_t off, const char *name)
{
	ssize_t r = pread(fd, buf, len, off);

	if (r < 0)
		die(name);
	if ((size_t)r != len) {
		fprintf(stderr, "region_diff_tool: %s: short read at %lld\n", name, (long long)off);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	unsigned long long sa, sb, region, i, n;
	void *ba, *bb;
	int fa, fb, copy;

	if (argc != 5 || (strcmp(argv[1], "diff") && strcmp(argv[1], "copy"))) {
		fprintf(stderr, "usage: region_diff_tool diff|copy A B REGION_BYTES\n");
		return 2;
	}
	copy = !strcmp(argv[1], "copy");
	region = strtoull(argv[4], NULL, 0);
	if (!region || region % 4096) {
		fprintf(stderr, "region_diff_tool: region size: a multiple of 4096\n");
		return 2;
	}
	fa = open(argv[2], O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fa < 0)
		die(argv[2]);
	fb = open(argv[3], (copy ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fb < 0)
		die(argv[3]);
	if (ioctl(fa, BLKGETSIZE64, &sa) || ioctl(fb, BLKGETSIZE64, &sb))
		die("BLKGETSIZE64");
	if (sa != sb || sa % region) {
		fprintf(stderr, "region_diff_tool: sizes %llu and %llu (region %llu)\n", sa, sb, region);
		return 1;
	}
	n = sa / region;
	if (posix_memalign(&ba, 4096, region) || posix_memalign(&bb, 4096, region))
		die("posix_memalign");
	if (!copy) {
		for (i = 0; i < n; i++) {
			pread_all(fa, ba, region, i * region, argv[2]);
			pread_all(fb, bb, region, i * region, argv[3]);
			if (memcmp(ba, bb, region))
				printf("%llu\n", i);
		}
		return 0;
	}
	while (scanf("%llu", &i) == 1) {
		if (i >= n) {
			fprintf(stderr, "region_diff_tool: region %llu past the end (%llu)\n", i, n);
			return 1;
		}
		pread_all(fa, ba, region, i * region, argv[2]);
		if (pwrite(fb, ba, region, i * region) != (ssize_t)region)
			die(argv[3]);
	}
	if (fsync(fb))
		die("fsync");
	return 0;
}
