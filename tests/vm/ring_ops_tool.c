// SPDX-License-Identifier: GPL-2.0
/*
 * ring_ops_tool DMNAME SECONDS — attach to the sxm device DMNAME as its
 * helper, set up the mirror ring, turn mirroring on, and for SECONDS print
 * each entry the kernel posts, one line each, as it comes:
 *
 *   OP OFFSET LEN        (OP: write, write_zeroes, discard, flush, or
 *                         op=N for anything else)
 *
 * completing every entry at once with success, applying nothing: a view
 * of what the target puts on the ring, for the tests that check the op a
 * kind of bio becomes (tests/vm/66-secure-erase.sh).  "ready" is printed
 * once mirroring is on.  Exit 0, or 1 with the reason on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-sxm.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "ring_ops_tool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static const char *op_name(unsigned int op)
{
	switch (op) {
	case SXM_OP_WRITE: return "write";
	case SXM_OP_WRITE_ZEROES: return "write_zeroes";
	case SXM_OP_DISCARD: return "discard";
	case SXM_OP_FLUSH: return "flush";
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sxm_attach a = { .size = sizeof(a) };
	struct sxm_ring_setup geo = { .size = sizeof(geo), .entries = 32,
				      .slot_bytes = 65536,
				      .timeout_ms = 30000 };
	struct sxm_mirror m = { .size = sizeof(m), .on = 1 };
	struct sxm_ring_hdr *hdr;
	struct sxm_sqe *sq;
	struct sxm_cqe *cq;
	struct timespec t0, t;
	char path[160];
	struct stat st;
	uint8_t *area;
	int ctl;

	if (argc != 3) {
		fprintf(stderr, "usage: ring_ops_tool DMNAME SECONDS\n");
		return 1;
	}
	snprintf(path, sizeof(path), "/dev/mapper/%s", argv[1]);
	if (stat(path, &st))
		die(path);
	ctl = open("/dev/" SXM_MISC_NAME, O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		die("/dev/" SXM_MISC_NAME);
	a.dev_major = major(st.st_rdev);
	a.dev_minor = minor(st.st_rdev);
	a.features = SXM_F_TRACK | SXM_F_HOLD | SXM_F_MIRROR;
	if (ioctl(ctl, SXM_IOC_ATTACH, &a))
		die("SXM_IOC_ATTACH");
	if (ioctl(ctl, SXM_IOC_RING_SETUP, &geo))
		die("SXM_IOC_RING_SETUP");
	area = mmap(NULL, geo.mmap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		    ctl, 0);
	if (area == MAP_FAILED)
		die("mmap");
	hdr = (void *)(area + geo.hdr_off);
	sq = (void *)(area + geo.sq_off);
	cq = (void *)(area + geo.cq_off);
	if (ioctl(ctl, SXM_IOC_MIRROR, &m))
		die("SXM_IOC_MIRROR");
	printf("ready\n");
	fflush(stdout);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { .fd = ctl, .events = POLLIN };
		uint32_t head = hdr->sq_head;
		uint32_t tail = __atomic_load_n(&hdr->sq_tail, __ATOMIC_ACQUIRE);

		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= atoi(argv[2]))
			break;
		if (head == tail) {
			poll(&pfd, 1, 50);
			continue;
		}
		for (; head != tail; head++) {
			struct sxm_sqe e = sq[head & (geo.entries - 1)];
			uint32_t ct = hdr->cq_tail;
			const char *name = op_name(e.op);

			if (name)
				printf("%s %llu %llu\n", name,
				       (unsigned long long)e.offset,
				       (unsigned long long)e.len);
			else
				printf("op=%u %llu %llu\n", e.op,
				       (unsigned long long)e.offset,
				       (unsigned long long)e.len);
			cq[ct & (geo.entries - 1)] =
				(struct sxm_cqe){ .id = e.id, .status = 0 };
			__atomic_store_n(&hdr->cq_tail, ct + 1, __ATOMIC_RELEASE);
		}
		fflush(stdout);
		__atomic_store_n(&hdr->sq_head, head, __ATOMIC_RELEASE);
		ioctl(ctl, SXM_IOC_RING_ENTER);
	}
	munmap(area, geo.mmap_bytes);
	close(ctl);
	return 0;
}
