// SPDX-License-Identifier: GPL-2.0
/* sxm-ctl version: this program's version and what the kernel offers. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/sxm.h"
#include "cli/cmds.h"
#include "kdev/kdev.h"

#define SXM_CTL_VERSION "0.1.0"

int cmd_version(int argc, char **argv)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} names[] = {
		{ SXM_F_TRACK, "track" },
		{ SXM_F_MARK_DIRTY, "mark-dirty" },
		{ SXM_F_TRACK_ID, "track-id" },
		{ SXM_F_HOLD, "hold" },
		{ SXM_F_EVENTS, "events" },
		{ SXM_F_MIRROR, "mirror" },
	};
	struct sxm_features f;
	size_t i;
	int fd, r;

	printf("sxm-ctl %s (ABI %d)\n", SXM_CTL_VERSION, SXM_ABI_VERSION);
	fd = sxm_kdev_open();
	if (fd < 0) {
		printf("kernel: dm-sxm not loaded\n");
		return EXIT_OK;
	}
	r = sxm_kdev_features(fd, &f);
	close(fd);
	if (r) {
		sxm_err("version: /dev/dm-sxm: features: %s", strerror(-r));
		return EXIT_FAIL;
	}
	if (f.abi_version != SXM_ABI_VERSION) {
		/* Its bits may mean other things: do not name them. */
		printf("kernel: dm-sxm ABI %u, features 0x%llx: not this sxm-ctl's ABI %d; install the module and sxm-ctl from one build\n",
		       f.abi_version, (unsigned long long)f.features,
		       SXM_ABI_VERSION);
		return EXIT_FAIL;
	}
	printf("kernel: dm-sxm ABI %u, features", f.abi_version);
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (f.features & names[i].bit)
			printf(" %s", names[i].name);
	printf(" (0x%llx)\n", (unsigned long long)f.features);
	return EXIT_OK;
}
