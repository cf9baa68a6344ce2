// SPDX-License-Identifier: GPL-2.0
/*
 * The insert record (what "sxm-ctl insert" saves to put a device's table
 * back): any text is refused or read; a record read is written out again
 * and reads back the same.
 */
#include "base/sxm.h"
#include "dm/status.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sxm_insert_rec a, b;
	char *s = fuzz_str(data, size), *t1, *t2;

	if (!s)
		return 0;
	if (!sxm_insert_rec_parse(s, &a)) {
		t1 = sxm_insert_rec_format(&a);
		if (t1) {
			FUZZ_ASSERT(!sxm_insert_rec_parse(t1, &b));
			t2 = sxm_insert_rec_format(&b);
			FUZZ_ASSERT(t2 && !strcmp(t1, t2));
			free(t2);
			sxm_table_free(&b.table);
		}
		free(t1);
	}
	sxm_table_free(&a.table);
	free(s);
	return 0;
}
