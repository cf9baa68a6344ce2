// SPDX-License-Identifier: GPL-2.0
/*
 * A job record as the daemon reads it from its state directory: any text
 * is refused or read; a record read is written out again and reads back
 * the same.
 */
#include "base/sxm.h"
#include "jobs/job.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sxm_job_rec a, b;
	char *s = fuzz_str(data, size), *t1, *t2;

	if (!s)
		return 0;
	if (!sxm_job_rec_parse(s, &a)) {
		t1 = sxm_job_rec_format(&a);
		FUZZ_ASSERT(t1);
		FUZZ_ASSERT(!sxm_job_rec_parse(t1, &b));
		t2 = sxm_job_rec_format(&b);
		FUZZ_ASSERT(t2 && !strcmp(t1, t2));
		free(t1);
		free(t2);
	}
	free(s);
	return 0;
}
