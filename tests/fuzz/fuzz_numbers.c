// SPDX-License-Identifier: GPL-2.0
/*
 * Sizes, rates, durations, cadences and phase names as the command line
 * and the control socket take them: each parser on any text, and what a
 * parser accepts must print and parse back to the same value.
 */
#include <errno.h>
#include <stdbool.h>

#include "base/sxm.h"
#include "jobs/job.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), buf[64];
	enum sxm_phase ph;
	uint64_t v, w;

	if (!s)
		return 0;
	if (!parse_u64(s, &v)) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
		FUZZ_ASSERT(!parse_u64(buf, &w) && w == v);
	}
	parse_size(s, &v);
	parse_rate(s, &v);
	parse_duration_ms(s, &v);
	if (!sxm_cadence_parse(s, &v)) {
		sxm_cadence_str(v, buf, sizeof(buf));
		FUZZ_ASSERT(!sxm_cadence_parse(buf, &w) && w == v);
	}
	if (!sxm_phase_parse(s, &ph))
		FUZZ_ASSERT(!strcmp(sxm_phase_name(ph), s));
	sxm_job_name_check(s);
	fmt_size(v, buf, sizeof(buf));
	sxm_duration_str((double)(v % 1000000000), buf, sizeof(buf));
	free(s);
	return 0;
}
