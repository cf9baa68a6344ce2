// SPDX-License-Identifier: GPL-2.0
/*
 * sparse_cmp_tool A B — compare two sparse files of the same size byte for
 * byte, fast: what is a hole in both (SEEK_DATA/SEEK_HOLE) reads as zeros
 * in both and is not read; every range that holds data in either is read
 * from both and compared.  Exit 0 if equal, 1 with the first differing
 * byte's offset if not, 2 on an error.  Prints the bytes it compared.
 *
 * For multi-GiB test devices whose backing files are mostly holes (a loop
 * device's file, a sink's image), where cmp would read every byte.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK	(1 << 20)

/* The start of the next data at or after @off in @fd (@size if none). */
static off_t next_data(int fd, off_t off, off_t size)
{
	off_t d = lseek(fd, off, SEEK_DATA);

	if (d < 0 && errno == ENXIO)
		return size;
	if (d < 0) {
		perror("SEEK_DATA");
		exit(2);
	}
	return d;
}

/* The end of the data at @off in @fd. */
static off_t next_hole(int fd, off_t off)
{
	off_t h = lseek(fd, off, SEEK_HOLE);

	if (h < 0) {
		perror("SEEK_HOLE");
		exit(2);
	}
	return h;
}

static int compare(int a, int b, off_t off, off_t end, uint64_t *done)
{
	static char x[CHUNK], y[CHUNK];

	while (off < end) {
		size_t n = end - off < CHUNK ? end - off : CHUNK;

		if (pread(a, x, n, off) != (ssize_t)n ||
		    pread(b, y, n, off) != (ssize_t)n) {
			fprintf(stderr, "short read at %lld\n", (long long)off);
			exit(2);
		}
		if (memcmp(x, y, n)) {
			for (size_t i = 0; i < n; i++)
				if (x[i] != y[i]) {
					printf("differ at byte %lld\n",
					       (long long)(off + i));
					return 1;
				}
		}
		*done += n;
		off += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct stat sa, sb;
	uint64_t done = 0;
	off_t off = 0, size;
	int a, b;

	if (argc != 3) {
		fprintf(stderr, "usage: sparse_cmp_tool A B\n");
		return 2;
	}
	a = open(argv[1], O_RDONLY);
	b = open(argv[2], O_RDONLY);
	if (a < 0 || b < 0 || fstat(a, &sa) || fstat(b, &sb)) {
		perror("open");
		return 2;
	}
	if (sa.st_size != sb.st_size) {
		printf("sizes differ: %lld and %lld\n", (long long)sa.st_size,
		       (long long)sb.st_size);
		return 1;
	}
	size = sa.st_size;
	while (off < size) {
		off_t da = next_data(a, off, size), db = next_data(b, off, size);
		off_t start = da < db ? da : db, end;

		if (start >= size)
			break;
		/* Data in A or B from @start: to where both are in a hole. */
		end = start;
		while (end < size) {
			off_t ea = next_data(a, end, size) == end ?
				   next_hole(a, end) : end;
			off_t eb = next_data(b, end, size) == end ?
				   next_hole(b, end) : end;
			off_t e = ea > eb ? ea : eb;

			if (e == end)
				break;
			end = e;
		}
		if (compare(a, b, start, end, &done))
			return 1;
		off = end;
	}
	printf("equal: %llu bytes with data compared of %lld\n",
	       (unsigned long long)done, (long long)size);
	return 0;
}
