// SPDX-License-Identifier: GPL-2.0
/*
 * The metadata device of the persistent write-intent map (meta.h): its
 * blocks read, checked, decoded and written.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <linux/dm-sxm.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "base/meta.h"

#define BLOCK		SXM_META_BLOCK_SIZE
#define PER_BLOCK	SXM_META_REGIONS_PER_BLOCK
#define MAP_BYTES	(BLOCK - SXM_META_MAP_HDR_SIZE)	/* of a map block */

_Static_assert(sizeof(struct sxm_meta_sb) == BLOCK,
	       "the superblock is one block");
_Static_assert(sizeof(struct sxm_meta_map_hdr) == SXM_META_MAP_HDR_SIZE,
	       "the map header is SXM_META_MAP_HDR_SIZE");
_Static_assert(PER_BLOCK % 64 == 0,
	       "a map block holds whole words of the map");

uint64_t sxm_meta_bytes(uint64_t nr_regions)
{
	/* SXM_META_BYTES(), without its overflow for nr near 2^64. */
	uint64_t blocks = nr_regions / PER_BLOCK + !!(nr_regions % PER_BLOCK);

	return (1 + blocks) * BLOCK;
}

uint64_t sxm_meta_room(uint64_t dev_bytes)
{
	uint64_t blocks = dev_bytes / BLOCK;

	if (blocks < 2)
		return 0;
	if (blocks - 1 > UINT64_MAX / PER_BLOCK)
		return UINT64_MAX;
	return (blocks - 1) * PER_BLOCK;
}

uint32_t sxm_meta_csum(const void *block)
{
	return sxm_crc32(0, (const char *)block + 4, BLOCK - 4);
}

uint32_t sxm_meta_sb_csum(const void *block)
{
	return sxm_crc32(0, (const char *)block + 4, SXM_META_SB_CSUM_END - 4);
}

void sxm_meta_blank(void *block)
{
	struct sxm_meta_sb *sb = block;

	memset(sb, 0, sizeof(*sb));
	sb->magic = htole32(SXM_META_SB_MAGIC);
	sb->version = htole32(SXM_META_VERSION);
	sb->csum = htole32(sxm_meta_sb_csum(sb));
}

void sxm_meta_decode(const void *block, struct sxm_meta_super *s)
{
	const struct sxm_meta_sb *sb = block;

	s->csum = le32toh(sb->csum);
	s->magic = le32toh(sb->magic);
	s->version = le32toh(sb->version);
	s->flags = le32toh(sb->flags);
	s->seq = le64toh(sb->seq);
	s->meta_id = le64toh(sb->meta_id);
	s->region_sectors = le64toh(sb->region_sectors);
	s->nr_regions = le64toh(sb->nr_regions);
	s->len_sectors = le64toh(sb->len_sectors);
	s->track_id = le64toh(sb->track_id);
	s->clean_time = le64toh(sb->clean_time);
	s->bound_time = le64toh(sb->bound_time);
	memcpy(s->source_id, sb->source_id, SXM_META_SOURCE_ID_LEN);
	s->source_id[SXM_META_SOURCE_ID_LEN] = '\0';
}

/* ------------------------------------------------------------------ */
/* Blocks                                                             */
/* ------------------------------------------------------------------ */

int sxm_meta_open(const char *path, bool write, int *fd, uint64_t *bytes)
{
	int flags = O_CLOEXEC | O_DIRECT, f, r;
	struct stat st;

	if (stat(path, &st))
		return -errno;
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
		return -EINVAL;
	/* O_EXCL on a block device: EBUSY while a table or a mount holds it. */
	if (write)
		flags |= O_RDWR | O_SYNC | (S_ISBLK(st.st_mode) ? O_EXCL : 0);
	f = open(path, flags);
	/* A file system without O_DIRECT (tmpfs): through the page cache. */
	if (f < 0 && errno == EINVAL)
		f = open(path, flags & ~O_DIRECT);
	if (f < 0)
		return -errno;
	r = sxm_file_size(f, bytes, NULL);
	if (r) {
		close(f);
		return r;
	}
	*fd = f;
	return 0;
}

void *sxm_meta_block_alloc(void)
{
	void *p;

	if (posix_memalign(&p, BLOCK, BLOCK))
		return NULL;
	memset(p, 0, BLOCK);
	return p;
}

int sxm_meta_read_block(int fd, uint64_t nr, void *block)
{
	ssize_t n = pread(fd, block, BLOCK, nr * BLOCK);

	if (n == BLOCK)
		return 0;
	return n < 0 ? -errno : -EIO;
}

int sxm_meta_write_block(int fd, uint64_t nr, const void *block)
{
	int r = sxm_pwrite_all(fd, block, BLOCK, nr * BLOCK);

	if (!r && fsync(fd))
		r = -errno;
	return r;
}

/* ------------------------------------------------------------------ */
/* Checks                                                             */
/* ------------------------------------------------------------------ */

static void problem(struct sxm_meta *m, unsigned int *errs, unsigned int bit,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Count a problem in *@errs and say it in a line of its own. */
static void problem(struct sxm_meta *m, unsigned int *errs, unsigned int bit,
		    const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sxm_buf_printf(&m->problems, "%s%s", m->nr_problems ? "\n" : "", line);
	m->nr_problems++;
	*errs |= bit;
}

/* The offset of the first byte of @p that is not zero, or @len. */
static size_t first_nonzero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i])
			return i;
	return len;
}

/* Magic, checksum, version: whether block 0 is a superblock at all. */
static bool check_sb_header(struct sxm_meta *m, const void *blk)
{
	const struct sxm_meta_super *sb = &m->sb;
	uint32_t want = sxm_meta_sb_csum(blk);

	if (sb->magic != SXM_META_SB_MAGIC)
		problem(m, &m->sb_errs, SXM_META_E_MAGIC,
			"superblock: bad magic %08x (a metadata device's is %08x): not formatted, or not a metadata device",
			sb->magic, SXM_META_SB_MAGIC);
	else if (sb->csum != want)
		problem(m, &m->sb_errs, SXM_META_E_CSUM,
			"superblock: bad checksum %08x (computed %08x)",
			sb->csum, want);
	else if (sb->version != SXM_META_VERSION)
		problem(m, &m->sb_errs, SXM_META_E_VERSION,
			"superblock: unknown version %u (this sxm-ctl reads version %d)",
			sb->version, SXM_META_VERSION);
	return !m->sb_errs;
}

/* Flags, reserved bytes, source_id. */
static void check_sb_fields(struct sxm_meta *m, const void *blk)
{
	const struct sxm_meta_sb *raw = blk;
	size_t at, len, rest;

	if (m->sb.flags & ~SXM_META_FLAGS)
		problem(m, &m->sb_errs, SXM_META_E_FLAGS,
			"superblock: unknown flags 0x%x",
			m->sb.flags & ~SXM_META_FLAGS);
	at = first_nonzero(raw->reserved, sizeof(raw->reserved));
	if (at < sizeof(raw->reserved))
		problem(m, &m->sb_errs, SXM_META_E_RESERVED,
			"superblock: nonzero reserved bytes (the first at byte %zu)",
			offsetof(struct sxm_meta_sb, reserved) + at);
	len = strnlen(raw->source_id, SXM_META_SOURCE_ID_LEN);
	rest = SXM_META_SOURCE_ID_LEN - len;
	if (!rest)
		problem(m, &m->sb_errs, SXM_META_E_SOURCE_ID,
			"superblock: source_id is not NUL-padded (no NUL in its %d bytes)",
			SXM_META_SOURCE_ID_LEN);
	else if (first_nonzero(raw->source_id + len, rest) < rest)
		problem(m, &m->sb_errs, SXM_META_E_SOURCE_ID,
			"superblock: source_id is not NUL-padded (bytes after its NUL)");
}

/* A bound superblock's geometry, and the device's size for its map. */
static void check_sb_geometry(struct sxm_meta *m)
{
	const struct sxm_meta_super *sb = &m->sb;
	uint64_t rs = sb->region_sectors, len = sb->len_sectors, want;

	if (rs < SXM_MIN_REGION_SECTORS || rs > SXM_MAX_REGION_SECTORS ||
	    (rs & (rs - 1)))
		problem(m, &m->sb_errs, SXM_META_E_REGION_SIZE,
			"superblock: region_sectors %" PRIu64 " is not a power of two from %llu to %llu",
			rs, SXM_MIN_REGION_SECTORS, SXM_MAX_REGION_SECTORS);
	if (!len) {
		problem(m, &m->sb_errs, SXM_META_E_GEOMETRY,
			"superblock: geometry: len_sectors is 0");
	} else if (rs) {
		want = len / rs + !!(len % rs);
		if (sb->nr_regions != want)
			problem(m, &m->sb_errs, SXM_META_E_GEOMETRY,
				"superblock: geometry: nr_regions %" PRIu64 ", but len_sectors %" PRIu64 " in regions of %" PRIu64 " sectors make %" PRIu64,
				sb->nr_regions, len, rs, want);
	}
	want = sxm_meta_bytes(sb->nr_regions);
	if (m->dev_bytes < want)
		problem(m, &m->sb_errs, SXM_META_E_SIZE,
			"device is %" PRIu64 " bytes, smaller than the %" PRIu64 " (SXM_META_BYTES) the map of %" PRIu64 " regions needs",
			m->dev_bytes, want, sb->nr_regions);
}

static void check_super(struct sxm_meta *m, const void *blk)
{
	sxm_meta_decode(blk, &m->sb);
	if (first_nonzero(blk, BLOCK) == BLOCK) {
		m->state = SXM_META_ST_ZEROES;
	} else {
		if (!check_sb_header(m, blk))
			return;		/* SXM_META_ST_BAD */
		check_sb_fields(m, blk);
		m->state = m->sb.flags & SXM_META_BOUND ? SXM_META_ST_BOUND :
			   SXM_META_ST_BLANK;
	}
	if (m->state == SXM_META_ST_BOUND)
		check_sb_geometry(m);
	else if (m->dev_bytes < sxm_meta_bytes(1))
		problem(m, &m->sb_errs, SXM_META_E_SIZE,
			"device is %" PRIu64 " bytes: blank, but too small to bind (a metadata device has at least %" PRIu64 ": a superblock and a map block)",
			m->dev_bytes, sxm_meta_bytes(1));
}

/* The regions map block @b holds. */
static uint64_t block_regions(const struct sxm_meta *m, uint64_t b)
{
	uint64_t first = (b - 1) * PER_BLOCK;

	return m->sb.nr_regions - first < PER_BLOCK ?
	       m->sb.nr_regions - first : PER_BLOCK;
}

static unsigned int check_map_block(struct sxm_meta *m, uint64_t b,
				    const void *blk)
{
	const struct sxm_meta_map_hdr *h = blk;
	const uint64_t *words = (const uint64_t *)
		((const char *)blk + SXM_META_MAP_HDR_SIZE);
	uint64_t n = block_regions(m, b), used = sxm_map_bytes(n);
	uint32_t want = sxm_meta_csum(blk);
	unsigned int errs = 0;

	/* Torn or overwritten: nothing else in it is worth a word. */
	if (le32toh(h->csum) != want) {
		problem(m, &errs, SXM_META_E_CSUM,
			"map block %" PRIu64 ": bad checksum %08x (computed %08x)",
			b, le32toh(h->csum), want);
		return errs;
	}
	if (le32toh(h->magic) != SXM_META_MAP_MAGIC)
		problem(m, &errs, SXM_META_E_MAGIC,
			"map block %" PRIu64 ": bad magic %08x (a map block's is %08x)",
			b, le32toh(h->magic), SXM_META_MAP_MAGIC);
	if (le64toh(h->blocknr) != b)
		problem(m, &errs, SXM_META_E_BLOCKNR,
			"map block %" PRIu64 ": wrong block number %" PRIu64,
			b, le64toh(h->blocknr));
	if (le64toh(h->meta_id) != m->sb.meta_id)
		problem(m, &errs, SXM_META_E_META_ID,
			"map block %" PRIu64 ": wrong meta_id %016" PRIx64 " (the superblock's is %016" PRIx64 ")",
			b, le64toh(h->meta_id), m->sb.meta_id);
	if (first_nonzero(h->reserved, sizeof(h->reserved)) <
	    sizeof(h->reserved))
		problem(m, &errs, SXM_META_E_RESERVED,
			"map block %" PRIu64 ": nonzero reserved bytes", b);
	if (sxm_map_tail_set(words, n) ||
	    first_nonzero((const char *)words + used, MAP_BYTES - used) <
	    MAP_BYTES - used)
		problem(m, &errs, SXM_META_E_TAIL,
			"map block %" PRIu64 ": bits set past the last region (%" PRIu64 ")",
			b, m->sb.nr_regions - 1);
	return errs;
}

/* Map block @b's regions into the map: as they are, or all set if bad. */
static int take_map_block(struct sxm_meta *m, uint64_t b, const void *blk,
			  unsigned int errs)
{
	uint64_t first = (b - 1) * PER_BLOCK, n = block_regions(m, b);
	struct sxm_meta_bad *t;

	if (errs & SXM_META_E_BAD_BLOCK) {
		sxm_map_set_range(m->map, first, first + n);
		m->bad_blocks++;
	} else {
		memcpy(m->map + first / 64,
		       (const char *)blk + SXM_META_MAP_HDR_SIZE,
		       sxm_map_bytes(n));
		/* Bits past the last region stay clear in a map. */
		if (n % 64)
			m->map[(first + n) / 64] &=
				htole64((1ULL << (n % 64)) - 1);
	}
	if (!errs)
		return 0;
	t = realloc(m->bad, (m->nr_bad + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	m->bad = t;
	m->bad[m->nr_bad].blocknr = b;
	m->bad[m->nr_bad++].errs = errs;
	return 0;
}

static int read_map(struct sxm_meta *m, int fd, void *blk)
{
	unsigned int errs;
	uint64_t b;
	int r;

	m->map_blocks = sxm_meta_bytes(m->sb.nr_regions) / BLOCK - 1;
	m->map = sxm_map_alloc(m->sb.nr_regions);
	if (!m->map)
		return -ENOMEM;
	for (b = 1; b <= m->map_blocks; b++) {
		errs = 0;
		r = sxm_meta_read_block(fd, b, blk);
		if (r)
			problem(m, &errs, SXM_META_E_READ,
				"map block %" PRIu64 ": read error: %s", b,
				strerror(-r));
		else
			errs = check_map_block(m, b, blk);
		r = take_map_block(m, b, blk, errs);
		if (r)
			return r;
	}
	return 0;
}

int sxm_meta_read(int fd, uint64_t dev_bytes, struct sxm_meta *m)
{
	void *blk;
	int r = 0;

	memset(m, 0, sizeof(*m));
	m->dev_bytes = dev_bytes;
	m->state = SXM_META_ST_BAD;
	if (dev_bytes < BLOCK) {
		problem(m, &m->sb_errs, SXM_META_E_SIZE,
			"device is %" PRIu64 " bytes, smaller than a superblock (%d)",
			dev_bytes, BLOCK);
		return m->problems.oom ? -ENOMEM : 0;
	}
	blk = sxm_meta_block_alloc();
	if (!blk)
		return -ENOMEM;
	r = sxm_meta_read_block(fd, 0, blk);
	if (!r) {
		check_super(m, blk);
		if (m->state == SXM_META_ST_BOUND &&
		    !(m->sb_errs & SXM_META_E_SIZE))
			r = read_map(m, fd, blk);
	}
	free(blk);
	if (!r && m->problems.oom)
		r = -ENOMEM;
	return r;
}

void sxm_meta_free(struct sxm_meta *m)
{
	free(m->map);
	free(m->bad);
	sxm_buf_free(&m->problems);
	memset(m, 0, sizeof(*m));
}

/* What is wrong with bound superblock @sb for the target, or NULL. */
static const char *fit_mismatch(const struct sxm_meta_super *sb,
				uint64_t len_sectors, uint64_t region_sectors,
				uint64_t nr, const char *source_id)
{
	if (sb->region_sectors != region_sectors)
		return "was bound with another region size";
	if (sb->len_sectors != len_sectors || sb->nr_regions != nr)
		return "was bound to a device of another size";
	if (strncmp(sb->source_id, source_id, SXM_META_SOURCE_ID_LEN))
		return "belongs to another source";
	return NULL;
}

/* Block 0 read into @fit: the kernel's verdict, or NULL if it takes it. */
static const char *fit_super(const void *blk, uint64_t len_sectors,
			     uint64_t region_sectors, const char *source_id,
			     bool reset, struct sxm_meta_fit *fit)
{
	uint64_t nr = (len_sectors + region_sectors - 1) / region_sectors;
	const struct sxm_meta_sb *raw = blk;
	const char *why = NULL;

	if (first_nonzero(blk, BLOCK) == BLOCK) {
		fit->state = SXM_META_ST_ZEROES;
		fit->bind = true;
		return NULL;
	}
	sxm_meta_decode(blk, &fit->sb);
	fit->state = SXM_META_ST_BAD;
	if (fit->sb.magic != SXM_META_SB_MAGIC)
		return "holds no sxm metadata (sxm-ctl metadata format makes it a metadata device; it erases the device)";
	if (fit->sb.csum != sxm_meta_sb_csum(blk))
		why = "is corrupt (bad superblock checksum)";
	else if (fit->sb.version != SXM_META_VERSION)
		why = "has a format version this sxm-ctl does not know";
	else if ((fit->sb.flags & ~SXM_META_FLAGS) ||
		 first_nonzero(raw->reserved, sizeof(raw->reserved)) <
		 sizeof(raw->reserved))
		why = "has flags or fields this sxm-ctl does not know";
	else if (!(fit->sb.flags & SXM_META_BOUND))
		fit->state = SXM_META_ST_BLANK;
	else
		fit->state = SXM_META_ST_BOUND;
	if (fit->state == SXM_META_ST_BOUND)
		why = fit->foreign = fit_mismatch(&fit->sb, len_sectors,
						  region_sectors, nr, source_id);
	fit->bind = why || reset || fit->state != SXM_META_ST_BOUND;
	return reset ? NULL : why;
}

int sxm_meta_fit(const char *path, uint64_t len_sectors,
		 uint64_t region_sectors, const char *source_id, bool reset,
		 struct sxm_meta_fit *fit, char *why, size_t len)
{
	uint64_t bytes = 0, need;
	const char *bad;
	struct stat st;
	void *blk;
	int fd = -1, r;

	memset(fit, 0, sizeof(*fit));
	if (!region_sectors || !len_sectors) {
		snprintf(why, len, "metadata device %s: a target of no size or regions",
			 path);
		return -EINVAL;
	}
	if (stat(path, &st) || !S_ISBLK(st.st_mode)) {
		r = stat(path, &st) ? -errno : -ENOTBLK;
		snprintf(why, len, "metadata device %s: %s", path,
			 r != -ENOTBLK ? strerror(-r) :
			 "not a block device (over a file: losetup -f --show FILE)");
		return r;
	}
	need = sxm_meta_bytes((len_sectors + region_sectors - 1) /
			      region_sectors);
	r = sxm_meta_open(path, false, &fd, &bytes);
	if (r) {
		snprintf(why, len, "metadata device %s: %s", path,
			 r == -EINVAL ? "not a block device" : strerror(-r));
		return r;
	}
	blk = sxm_meta_block_alloc();
	r = blk ? 0 : -ENOMEM;
	if (!r && bytes < need) {
		snprintf(why, len, "metadata device %s is too small: %" PRIu64 " bytes, its map needs %" PRIu64 " (sxm-ctl metadata size)",
			 path, bytes, need);
		r = -ENOSPC;
	}
	if (!r)
		r = sxm_meta_read_block(fd, 0, blk);
	if (r == -ENOMEM || (r && bytes >= need))
		snprintf(why, len, "metadata device %s: reading its superblock: %s",
			 path, strerror(-r));
	if (!r) {
		bad = fit_super(blk, len_sectors, region_sectors, source_id,
				reset, fit);
		if (bad) {
			snprintf(why, len, "metadata device %s %s", path, bad);
			r = -EINVAL;
		}
	}
	free(blk);
	close(fd);
	return r;
}

const char *sxm_meta_err_name(unsigned int bit)
{
	static const char *const names[] = {
		"device too small", "bad magic", "unknown version",
		"bad checksum", "unknown flags", "nonzero reserved bytes",
		"source_id not NUL-padded", "bad region size", "geometry",
		"read error", "wrong block number", "wrong meta_id",
		"bits set past the last region",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (bit == 1U << i)
			return names[i];
	return "?";
}

int sxm_meta_extents(const struct sxm_meta *m, struct sxm_meta_extent **out,
		     size_t *nr)
{
	uint64_t rs = m->sb.region_sectors, end = m->sb.len_sectors, rb;
	struct sxm_meta_extent *me = NULL;
	struct sxm_extent *ext;
	size_t n, i;
	int r;

	if (!m->map || (m->sb_errs & SXM_META_E_REGION_SIZE))
		return -EINVAL;
	/*
	 * Bytes end at the target's end; where len_sectors falls short of
	 * the regions (a geometry problem, said apart), at the last one's.
	 */
	if (end / rs + !!(end % rs) < m->sb.nr_regions)
		end = m->sb.nr_regions * rs;
	r = sxm_map_extents(m->map, m->sb.nr_regions, rs, end, &ext, &n);
	if (r)
		return r;
	if (n && !(me = calloc(n, sizeof(*me)))) {
		free(ext);
		return -ENOMEM;
	}
	rb = rs << SECTOR_SHIFT;
	for (i = 0; i < n; i++) {
		me[i].first_region = ext[i].offset / rb;
		me[i].nr_regions = (ext[i].len + rb - 1) / rb;
		me[i].offset = ext[i].offset;
		me[i].len = ext[i].len;
	}
	free(ext);
	*out = me;
	*nr = n;
	return 0;
}
