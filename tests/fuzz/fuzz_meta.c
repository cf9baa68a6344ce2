// SPDX-License-Identifier: GPL-2.0
/*
 * A metadata device (include/uapi/linux/dm-sxm-metadata.h): any bytes are
 * read as one and checked, never out of bounds.  What is read holds
 * together: no problem without a line, a map only for a bound superblock
 * with nothing past its last region, every bad block's regions set, and
 * runs of regions that add up to the regions set.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "base/meta.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_map(const struct sxm_meta *m)
{
	struct sxm_meta_extent *ext;
	uint64_t set = 0, first;
	size_t n, i;

	FUZZ_ASSERT(m->state == SXM_META_ST_BOUND);
	FUZZ_ASSERT(!sxm_map_tail_set(m->map, m->sb.nr_regions));
	for (i = 0; i < m->nr_bad; i++) {
		if (!(m->bad[i].errs & SXM_META_E_BAD_BLOCK))
			continue;
		first = (m->bad[i].blocknr - 1) * SXM_META_REGIONS_PER_BLOCK;
		FUZZ_ASSERT(sxm_map_find(m->map, m->sb.nr_regions, first,
					 false) >= first +
			    SXM_META_REGIONS_PER_BLOCK ||
			    sxm_map_find(m->map, m->sb.nr_regions, first,
					 false) == m->sb.nr_regions);
	}
	if (sxm_meta_extents(m, &ext, &n))
		return;
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(ext[i].nr_regions && ext[i].len);
		FUZZ_ASSERT(!i || ext[i].first_region >
			    ext[i - 1].first_region + ext[i - 1].nr_regions);
		set += ext[i].nr_regions;
	}
	FUZZ_ASSERT(set == sxm_map_weight(m->map, m->sb.nr_regions));
	free(ext);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-meta", MFD_CLOEXEC);
	struct sxm_meta m;
	size_t lines = 0;
	const char *p;

	if (fd < 0)
		return 0;
	if (size && sxm_pwrite_all(fd, data, size, 0)) {
		close(fd);
		return 0;
	}
	if (!sxm_meta_read(fd, size, &m)) {
		for (p = m.nr_problems ? m.problems.s : ""; *p; p++)
			lines += *p == '\n';
		FUZZ_ASSERT(lines + !!m.nr_problems == m.nr_problems);
		FUZZ_ASSERT(!m.nr_problems == (!m.sb_errs && !m.nr_bad));
		if (m.map)
			check_map(&m);
		else
			FUZZ_ASSERT(!m.map_blocks && !m.nr_bad);
	}
	sxm_meta_free(&m);
	close(fd);
	return 0;
}
