// SPDX-License-Identifier: GPL-2.0
/*
 * Region maps in the kernel's little-endian layout (bitmap.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/sxm.h"
#include "base/bitmap.h"

uint64_t *sxm_map_alloc(uint64_t nr)
{
	return calloc(sxm_map_words(nr) + 1, sizeof(uint64_t));
}

void sxm_map_zero(uint64_t *map, uint64_t nr)
{
	memset(map, 0, sxm_map_bytes(nr));
}

void sxm_map_set_range(uint64_t *map, uint64_t from, uint64_t to)
{
	uint64_t r;

	for (r = from; r < to; r++)
		sxm_map_set(map, r);
}

void sxm_map_andnot(uint64_t *map, const uint64_t *other, uint64_t nr)
{
	uint64_t i;

	/* Bitwise, so the same in either byte order. */
	for (i = 0; i < sxm_map_words(nr); i++)
		map[i] &= ~other[i];
}

void sxm_map_or(uint64_t *map, const uint64_t *other, uint64_t nr)
{
	uint64_t i;

	for (i = 0; i < sxm_map_words(nr); i++)
		map[i] |= other[i];
}

uint64_t sxm_map_weight(const uint64_t *map, uint64_t nr)
{
	uint64_t i, n = 0, words = nr / 64;

	for (i = 0; i < words; i++)
		n += __builtin_popcountll(map[i]);
	if (nr % 64)
		n += __builtin_popcountll(le64toh(map[words]) &
					  ((1ULL << (nr % 64)) - 1));
	return n;
}

uint64_t sxm_map_find(const uint64_t *map, uint64_t nr, uint64_t from,
		      bool set)
{
	uint64_t i = from / 64, words = sxm_map_words(nr), w, r;

	if (from >= nr)
		return nr;
	w = le64toh(map[i]);
	if (!set)
		w = ~w;
	w &= ~0ULL << (from % 64);
	while (!w) {
		if (++i >= words)
			return nr;
		w = le64toh(map[i]);
		if (!set)
			w = ~w;
	}
	r = i * 64 + __builtin_ctzll(w);
	return r < nr ? r : nr;
}

bool sxm_map_tail_set(const uint64_t *map, uint64_t nr)
{
	return nr % 64 && (le64toh(map[nr / 64]) >> (nr % 64));
}

int sxm_map_extents(const uint64_t *map, uint64_t nr_regions,
		    uint64_t region_sectors, uint64_t dev_sectors,
		    struct sxm_extent **out, size_t *nr_out)
{
	struct sxm_extent *ext = NULL, *tmp;
	size_t nr = 0, cap = 0;
	uint64_t first, end = 0;

	if (!region_sectors)
		return -EINVAL;
	for (first = sxm_map_find(map, nr_regions, 0, true); first < nr_regions;
	     first = sxm_map_find(map, nr_regions, end, true)) {
		uint64_t s, e;

		end = sxm_map_find(map, nr_regions, first, false);
		s = first * region_sectors;
		if (s >= dev_sectors)
			break;
		e = end * region_sectors;
		if (e > dev_sectors || e / region_sectors != end)
			e = dev_sectors;
		if (nr == cap) {
			cap = cap ? 2 * cap : 16;
			tmp = realloc(ext, cap * sizeof(*ext));
			if (!tmp) {
				free(ext);
				return -ENOMEM;
			}
			ext = tmp;
		}
		ext[nr].offset = s << SECTOR_SHIFT;
		ext[nr].len = (e - s) << SECTOR_SHIFT;
		nr++;
	}
	*out = ext;
	*nr_out = nr;
	return 0;
}
