// SPDX-License-Identifier: GPL-2.0
/*
 * CRC-32 as zlib and Ethernet compute it: reflected polynomial 0xEDB88320,
 * initial value and final xor 0xFFFFFFFF.  The checksum of the metadata
 * device's blocks (include/uapi/linux/dm-sxm-metadata.h).
 *
 * Four bits at a time from a table of 16, which needs no set-up (so no
 * lock between the daemon's threads) and checks a 4 KiB block in a few
 * microseconds.
 */
#include "base/sxm.h"

static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
	0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
	0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t sxm_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return ~crc;
}
