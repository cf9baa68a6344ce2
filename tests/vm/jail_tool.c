// SPDX-License-Identifier: GPL-2.0
/*
 * jail_tool [--uid UID] [--gid GID] [--no-io-uring] [--pty] CMD [ARGS...]
 *
 * Run CMD as another user (every supplementary group dropped), and/or with
 * io_uring_setup(2) failing with ENOSYS as on a kernel built without
 * io_uring, through a seccomp filter, and/or on a pseudo-terminal whose
 * output is copied to ours: what the warm-migration tests need to show who
 * may talk to the daemon, that sxm-ctl's "auto" engine falls back to
 * libaio, and the progress bar it draws on a terminal.  busybox's setpriv
 * has no --reuid, the image has no script(1), and a 6.1 kernel has no
 * kernel.io_uring_disabled.
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
#include <pty.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

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

/* Run argv on a new pseudo-terminal; copy what it writes; its exit status. */
static int on_pty(char **argv)
{
	char buf[4096];
	int fd, status;
	ssize_t n;
	pid_t pid;

	pid = forkpty(&fd, NULL, NULL, NULL);
	if (pid < 0) {
		perror("jail_tool: forkpty");
		return 126;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "jail_tool: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && write(STDOUT_FILENO, buf, n) != n)
			break;
	if (waitpid(pid, &status, 0) < 0)
		return 126;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	long uid = -1, gid = -1;
	int i = 1, nouring = 0, pty = 0;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--uid") && i + 1 < argc)
			uid = atol(argv[++i]);
		else if (!strcmp(argv[i], "--gid") && i + 1 < argc)
			gid = atol(argv[++i]);
		else if (!strcmp(argv[i], "--no-io-uring"))
			nouring = 1;
		else if (!strcmp(argv[i], "--pty"))
			pty = 1;
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: jail_tool [--uid UID] [--gid GID] [--no-io-uring] [--pty] CMD [ARGS...]\n");
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
	if (pty)
		return on_pty(argv + i);
	execvp(argv[i], argv + i);
	fprintf(stderr, "jail_tool: %s: %s\n", argv[i], strerror(errno));
	return 127;
}
