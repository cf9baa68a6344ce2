// SPDX-License-Identifier: GPL-2.0
/*
 * What the kernel and libdevmapper hand the helper as text: an sxm
 * target's table parameters and status line, and table lines of any
 * target (what an insert saves and puts back).
 */
#include "base/sxm.h"
#include "dm/status.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sxm_table tbl = { 0 };
	struct sxm_params p;
	struct sxm_status st;
	char *s = fuzz_str(data, size);

	if (!s)
		return 0;
	sxm_params_parse(s, &p);
	sxm_status_parse(s, &st);
	if (!sxm_table_add_line(&tbl, s))
		FUZZ_ASSERT(tbl.nr == 1);
	sxm_table_sectors(&tbl);
	sxm_table_free(&tbl);
	free(s);
	return 0;
}
