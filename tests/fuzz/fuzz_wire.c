// SPDX-License-Identifier: GPL-2.0
/*
 * The control socket's wire format: a request line split into its
 * key=value words (what the daemon reads from any local client it lets
 * in), and the job and event lines the command line reads back; a job
 * line read is sent again and reads back the same.
 */
#include "base/sxm.h"
#include "base/buf.h"
#include "daemon/ctl.h"
#include "jobs/job.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sxm_job_rec a, b;
	struct sxm_kv kv[SXM_CTL_MAX_WORDS];
	char *s = fuzz_str(data, size), *c, *t1, *t2, *nl;
	unsigned int n, i;

	if (!s)
		return 0;
	c = strdup(s);
	if (c && !sxm_kv_split(c, kv, SXM_CTL_MAX_WORDS, &n)) {
		FUZZ_ASSERT(n <= SXM_CTL_MAX_WORDS);
		for (i = 0; i < n; i++)
			sxm_kv_get(kv, n, kv[i].key);
	}
	free(c);

	sxm_job_rec_init(&a);
	c = strdup(s);
	if (c && !sxm_job_wire_parse_line(c, &a)) {
		t1 = sxm_job_wire_format(&a, false);
		FUZZ_ASSERT(t1);
		nl = strchr(t1, '\n');
		if (nl)
			*nl = '\0';
		t2 = strdup(t1);
		sxm_job_rec_init(&b);
		FUZZ_ASSERT(t2 && !sxm_job_wire_parse_line(t2, &b));
		free(t2);
		t2 = sxm_job_wire_format(&b, false);
		nl = t2 ? strchr(t2, '\n') : NULL;
		if (nl)
			*nl = '\0';
		FUZZ_ASSERT(t2 && !strcmp(t1, t2));
		free(t1);
		free(t2);
	}
	free(c);
	c = strdup(s);
	if (c)
		sxm_job_wire_parse_event(c, &a);
	free(c);
	c = strdup(s);
	if (c)
		sxm_unescape(c);
	free(c);
	free(s);
	return 0;
}
