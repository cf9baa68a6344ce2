// SPDX-License-Identifier: GPL-2.0
/*
 * jail_tool [--uid UID] [--gid GID] [--no-io-uring] CMD [ARGS...]
 *
 * Run CMD as another user (every supplementary group dropped), and/or with
 * io_uring_setup(2) failing with ENOSYS as on a kernel built without
 * io_uring, through a seccomp filter: what the warm-migration tests need
 * to show who may talk to the daemon, and that sxm-ctl's "auto" engine
 * falls back to libaio.  busybox's setpriv has no --reuid, and a 6.1
 * kernel has no kernel.io_uring_disabled.
 */
#include <errno.h>
#include <grp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

static int no_io_uring(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(f) / sizeof(f[0]),
		.filter = f,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

int main(int argc, char **argv)
{
	long uid = -1, gid = -1;
	int i = 1, nouring = 0;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--uid") && i + 1 < argc)
			uid = atol(argv[++i]);
		else if (!strcmp(argv[i], "--gid") && i + 1 < argc)
			gid = atol(argv[++i]);
		else if (!strcmp(argv[i], "--no-io-uring"))
			nouring = 1;
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: jail_tool [--uid UID] [--gid GID] [--no-io-uring] CMD [ARGS...]\n");
		return 2;
	}
	if ((uid >= 0 || gid >= 0) && setgroups(0, NULL)) {
		perror("jail_tool: setgroups");
		return 126;
	}
	if (gid >= 0 && setgid(gid)) {
		perror("jail_tool: setgid");
		return 126;
	}
	if (uid >= 0 && setuid(uid)) {
		perror("jail_tool: setuid");
		return 126;
	}
	if (nouring && no_io_uring()) {
		perror("jail_tool: seccomp");
		return 126;
	}
	execvp(argv[i], argv + i);
	fprintf(stderr, "jail_tool: %s: %s\n", argv[i], strerror(errno));
	return 127;
}
