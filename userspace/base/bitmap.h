/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Region maps.  Bit r of a map is bit r % 64 of its little-endian 64-bit
 * word r / 64: the layout the kernel exchanges (SXM_IOC_HARVEST, _ACK,
 * _MARK_DIRTY) and the bitmap files of "sxm-ctl copy --bitmap" hold.
 * Every map in sxm-ctl is kept in that layout, whatever the host's byte
 * order, and only these functions look inside one.  Bits past the map's
 * last region are kept clear.
 */
#ifndef SXM_BITMAP_H
#define SXM_BITMAP_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Regions of @region_size bytes in @size bytes (the last may be short). */
static inline uint64_t sxm_regions(uint64_t size, uint64_t region_size)
{
	return (size + region_size - 1) / region_size;
}

/* Words, and bytes, of a map of @nr regions: ceil(nr / 64) words. */
static inline uint64_t sxm_map_words(uint64_t nr)
{
	return (nr + 63) / 64;
}

static inline uint64_t sxm_map_bytes(uint64_t nr)
{
	return sxm_map_words(nr) * 8;
}

static inline bool sxm_map_test(const uint64_t *map, uint64_t r)
{
	return (le64toh(map[r / 64]) >> (r % 64)) & 1;
}

static inline void sxm_map_set(uint64_t *map, uint64_t r)
{
	map[r / 64] |= htole64(1ULL << (r % 64));
}

/* A map of @nr regions, all clear (never NULL for 0 regions); or NULL. */
uint64_t *sxm_map_alloc(uint64_t nr);
/* Clear every region of @map. */
void sxm_map_zero(uint64_t *map, uint64_t nr);
/* Set regions @from to @to - 1. */
void sxm_map_set_range(uint64_t *map, uint64_t from, uint64_t to);
/* Clear in @map the regions set in @other. */
void sxm_map_andnot(uint64_t *map, const uint64_t *other, uint64_t nr);
/* Set in @map the regions set in @other. */
void sxm_map_or(uint64_t *map, const uint64_t *other, uint64_t nr);
/* Bits set in the first @nr regions of @map. */
uint64_t sxm_map_weight(const uint64_t *map, uint64_t nr);
/* The first region at or after @from whose bit is @set, or @nr. */
uint64_t sxm_map_find(const uint64_t *map, uint64_t nr, uint64_t from,
		      bool set);
/* Whether a bit past region @nr - 1 is set in @map's last word. */
bool sxm_map_tail_set(const uint64_t *map, uint64_t nr);

/* A byte range of the device. */
struct sxm_extent {
	uint64_t offset;
	uint64_t len;
};

/*
 * The regions set in @map as byte extents, adjacent regions merged, the
 * last region cut at the device's end (@dev_sectors).  *@out is malloc'd
 * (NULL when no region is set); bits past @nr_regions are ignored.
 * 0, -EINVAL (@region_sectors 0) or -ENOMEM.
 */
int sxm_map_extents(const uint64_t *map, uint64_t nr_regions,
		    uint64_t region_sectors, uint64_t dev_sectors,
		    struct sxm_extent **out, size_t *nr_out);

#endif /* SXM_BITMAP_H */
