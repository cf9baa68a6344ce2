/* SPDX-License-Identifier: GPL-2.0 */
/* Prototypes of the subcommands listed in cmds.def. */
#ifndef SXM_CMDS_H
#define SXM_CMDS_H

#define SXM_CMD(name, fn, args, help) int fn(int argc, char **argv);
#include "cli/cmds.def"
#undef SXM_CMD

#endif
