// SPDX-License-Identifier: GPL-2.0
/* sxm-ctl version */
#include <stdio.h>

#include "sxm.h"
#include "cmds.h"

#define SXM_CTL_VERSION "0.1.0"

int cmd_version(int argc, char **argv)
{
	printf("sxm-ctl %s\n", SXM_CTL_VERSION);
	return EXIT_OK;
}
