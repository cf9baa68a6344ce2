// SPDX-License-Identifier: GPL-2.0
/*
 * The copy engine's API (copy.h) as the job daemon uses it, natively with
 * file sources and file: sinks: the counters of a full copy to a zeroed
 * sink, a bitmap copy that touches only its regions, a short last region,
 * verification that finds exactly the regions that differ and a second
 * copy from that bitmap that repairs them, cancellation that leaves every
 * region dirty, buffers no bigger than what a copy moves, and options
 * refused before anything starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "base/bitmap.h"
#include "io/copy.h"

#include "kselftest_harness.h"

#define KiB (1ULL << 10)
#define RS (64 * KiB)		/* region size in these tests */

FIXTURE(copy) {
	char dir[64];
	char src[96];
	char dst[96];
	char uri[128];
	unsigned char *data;	/* what the source holds */
	size_t size;
};

FIXTURE_SETUP(copy)
{
	strcpy(self->dir, "/tmp/sxm-copy-api.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->src, sizeof(self->src), "%s/src", self->dir);
	snprintf(self->dst, sizeof(self->dst), "%s/dst", self->dir);
	snprintf(self->uri, sizeof(self->uri), "file:%s", self->dst);
	self->data = NULL;
}

FIXTURE_TEARDOWN(copy)
{
	unlink(self->src);
	unlink(self->dst);
	rmdir(self->dir);
	free(self->data);
}

static void fill_random(unsigned char *p, size_t n, unsigned seed)
{
	size_t i;

	srand(seed);
	for (i = 0; i < n; i++)
		p[i] = rand() >> 7;
}

static int write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, p, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -EIO;
}

static unsigned char *read_file(const char *path, size_t n)
{
	unsigned char *p = malloc(n + 1);
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (!p || fd < 0) {
		free(p);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	r = read(fd, p, n + 1);
	close(fd);
	if (r != (ssize_t)n) {
		free(p);
		return NULL;
	}
	return p;
}

/*
 * A source of @size bytes: random, except regions listed in @zero_regions
 * (up to a -1), which are zero.
 */
static void make_source(struct __test_metadata *_metadata,
			FIXTURE_DATA(copy) *self, size_t size,
			const int *zero_regions)
{
	self->size = size;
	self->data = malloc(size);
	ASSERT_NE(NULL, self->data);
	fill_random(self->data, size, 42);
	for (; zero_regions && *zero_regions >= 0; zero_regions++)
		memset(self->data + *zero_regions * RS, 0, RS);
	ASSERT_EQ(0, write_file(self->src, self->data, size));
}

static void open_both(struct __test_metadata *_metadata,
		      FIXTURE_DATA(copy) *self, struct sxm_source **src,
		      struct sxm_sink **sink)
{
	struct sxm_sink_opts so = { 0 };
	char err[512];

	ASSERT_EQ(0, sxm_source_open(self->src, src, err, sizeof(err)))
		TH_LOG("%s", err);
	so.min_size = (*src)->size;
	so.probe_zero = true;
	ASSERT_EQ(0, sxm_sink_open(self->uri, &so, sink, err, sizeof(err)))
		TH_LOG("%s", err);
}

TEST_F(copy, full_copy_to_new_file)
{
	static const int zeroes[] = { 2, 3, 9, -1 };
	struct sxm_copy_opts o = { .region_size = RS };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;
	unsigned char *got;

	make_source(_metadata, self, 16 * RS, zeroes);
	open_both(_metadata, self, &src, &sink);
	/* A file the sink created is known to read as zeroes. */
	ASSERT_TRUE(sink->caps & SXM_SINK_ZERO_INIT);
	o.sink_is_zero = true;

	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(16, res.nr_regions);
	EXPECT_EQ(0, res.nr_dirty);
	EXPECT_EQ(16 * RS, res.stats.bytes_total);
	EXPECT_EQ(16 * RS, res.stats.bytes_done);
	EXPECT_EQ(16 * RS, res.stats.bytes_read);
	EXPECT_EQ(13 * RS, res.stats.bytes_written);
	EXPECT_EQ(3 * RS, res.stats.bytes_skipped);
	EXPECT_EQ(0, res.stats.bytes_zeroed);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);

	got = read_file(self->dst, self->size);
	ASSERT_NE(NULL, got);
	EXPECT_EQ(0, memcmp(got, self->data, self->size));
	free(got);
}

TEST_F(copy, bitmap_touches_only_its_regions)
{
	struct sxm_copy_opts o = { .region_size = RS };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;
	uint64_t map[2] = { 0, 0 };
	unsigned char *junk, *got;
	size_t r;

	make_source(_metadata, self, 100 * RS, NULL);
	junk = malloc(self->size);
	ASSERT_NE(NULL, junk);
	fill_random(junk, self->size, 7);
	ASSERT_EQ(0, write_file(self->dst, junk, self->size));

	/* Regions 0, 63, 64 (word 1 bit 0) and 99, the last. */
	sxm_map_set(map, 0);
	sxm_map_set(map, 63);
	sxm_map_set(map, 64);
	sxm_map_set(map, 99);
	EXPECT_EQ(1ULL | 1ULL << 63, map[0]);
	EXPECT_EQ(1ULL | 1ULL << 35, map[1]);
	EXPECT_EQ(4, sxm_map_weight(map, 100));
	o.bitmap = map;

	open_both(_metadata, self, &src, &sink);
	EXPECT_FALSE(sink->caps & SXM_SINK_ZERO_INIT);
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(4 * RS, res.stats.bytes_total);
	EXPECT_EQ(4 * RS, res.stats.bytes_written);
	EXPECT_EQ(0, res.nr_dirty);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);

	got = read_file(self->dst, self->size);
	ASSERT_NE(NULL, got);
	for (r = 0; r < 100; r++) {
		const unsigned char *want = sxm_map_test(map, r) ?
					    self->data : junk;

		EXPECT_EQ(0, memcmp(got + r * RS, want + r * RS, RS))
			TH_LOG("region %zu", r);
	}
	free(got);
	free(junk);
}

TEST_F(copy, short_last_region)
{
	struct sxm_copy_opts o = { .region_size = RS };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;
	unsigned char *got;

	make_source(_metadata, self, 5 * RS + 1000, NULL);
	open_both(_metadata, self, &src, &sink);
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(6, res.nr_regions);
	EXPECT_EQ(5 * RS + 1000, res.stats.bytes_total);
	EXPECT_EQ(5 * RS + 1000, res.stats.bytes_written);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);

	got = read_file(self->dst, self->size);
	ASSERT_NE(NULL, got);
	EXPECT_EQ(0, memcmp(got, self->data, self->size));
	free(got);
}

TEST_F(copy, verify_finds_and_copy_repairs)
{
	struct sxm_copy_opts o = { .region_size = RS };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;
	unsigned char *bad;
	uint64_t *dirty;

	make_source(_metadata, self, 32 * RS, NULL);
	bad = malloc(self->size);
	ASSERT_NE(NULL, bad);
	memcpy(bad, self->data, self->size);
	bad[7 * RS + 100] ^= 1;
	bad[20 * RS] ^= 0x80;
	ASSERT_EQ(0, write_file(self->dst, bad, self->size));
	free(bad);

	open_both(_metadata, self, &src, &sink);
	ASSERT_EQ(-EILSEQ, sxm_copy_verify(src, sink, &o, &res));
	EXPECT_NE(NULL, strstr(res.errmsg,
			       "data differs from the source at 0x70064"))
		TH_LOG("%s", res.errmsg);
	EXPECT_EQ(2, res.nr_dirty);
	EXPECT_TRUE(sxm_map_test(res.dirty, 7));
	EXPECT_TRUE(sxm_map_test(res.dirty, 20));
	EXPECT_EQ(2 * RS, res.stats.bytes_differ);

	/* The daemon's repair: copy what verification found. */
	dirty = res.dirty;
	res.dirty = NULL;
	o.bitmap = dirty;
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(2 * RS, res.stats.bytes_written);
	sxm_copy_result_free(&res);
	free(dirty);

	o.bitmap = NULL;
	EXPECT_EQ(0, sxm_copy_verify(src, sink, &o, &res))
		TH_LOG("%s", res.errmsg);
	EXPECT_EQ(0, res.nr_dirty);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);
}

/*
 * A sparse source over an existing file: where the file has holes the
 * source's holes are skipped, where it has data they are zeroed.
 */
TEST_F(copy, holes_skipped_where_the_sink_has_zeroes)
{
	struct sxm_copy_opts o = { .region_size = RS };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;
	unsigned char *got, *junk;
	size_t size = 64 * RS;
	int fd;

	/* Source: data in regions 0 and 40 only. */
	self->size = size;
	self->data = calloc(1, size);
	ASSERT_NE(NULL, self->data);
	fill_random(self->data, RS, 1);
	fill_random(self->data + 40 * RS, RS, 2);
	fd = open(self->src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	ASSERT_EQ((ssize_t)RS, pwrite(fd, self->data, RS, 0));
	ASSERT_EQ((ssize_t)RS, pwrite(fd, self->data + 40 * RS, RS,
				      40 * RS));
	close(fd);

	/* Sink: an existing file, holes except junk in regions 10..19. */
	junk = malloc(10 * RS);
	ASSERT_NE(NULL, junk);
	fill_random(junk, 10 * RS, 3);
	fd = open(self->dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, size));
	ASSERT_EQ((ssize_t)(10 * RS), pwrite(fd, junk, 10 * RS, 10 * RS));
	close(fd);
	free(junk);

	open_both(_metadata, self, &src, &sink);
	EXPECT_FALSE(sink->caps & SXM_SINK_ZERO_INIT);
	EXPECT_TRUE(sink->caps & SXM_SINK_CAN_EXTENTS);
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(2 * RS, res.stats.bytes_read);
	EXPECT_EQ(2 * RS, res.stats.bytes_written);
	EXPECT_EQ(10 * RS, res.stats.bytes_zeroed);
	EXPECT_EQ(52 * RS, res.stats.bytes_skipped);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);

	got = read_file(self->dst, size);
	ASSERT_NE(NULL, got);
	EXPECT_EQ(0, memcmp(got, self->data, size));
	free(got);
}

TEST_F(copy, cancelled_copy_leaves_everything_dirty)
{
	volatile sig_atomic_t cancel = 1;
	struct sxm_copy_opts o = { .region_size = RS, .cancel = &cancel };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;

	make_source(_metadata, self, 8 * RS, NULL);
	open_both(_metadata, self, &src, &sink);
	/* Set before the start: nothing is copied, all is still to do. */
	EXPECT_EQ(-EINTR, sxm_copy(src, sink, &o, &res));
	EXPECT_STREQ("interrupted", res.errmsg);
	EXPECT_EQ(8, res.nr_dirty);
	EXPECT_EQ(0, res.stats.bytes_read);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);
}

/*
 * The buffers are faulted in, locked and pinned at each copy: a copy of
 * a region or two must not take a pool sized for the whole device.
 */
TEST_F(copy, buffers_sized_by_what_is_moved)
{
	struct sxm_copy_opts o = { .region_size = RS, .nr_bufs = 16 };
	struct sxm_copy_result res;
	struct sxm_source *src;
	struct sxm_sink *sink;
	uint64_t map[1] = { 0 };

	make_source(_metadata, self, 64 * RS, NULL);
	open_both(_metadata, self, &src, &sink);

	/* One region: one buffer; read back too: two. */
	map[0] = 1ULL << 5;
	o.bitmap = map;
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(SXM_COPY_DEFAULT_BUF_SIZE, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);
	ASSERT_EQ(0, sxm_copy_verify(src, sink, &o, &res))
		TH_LOG("%s", res.errmsg);
	EXPECT_EQ(2 * SXM_COPY_DEFAULT_BUF_SIZE, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);

	/* Nine regions in a row (576 KiB): two buffers. */
	map[0] = 0x1ffULL << 20;
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(2 * SXM_COPY_DEFAULT_BUF_SIZE, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);
	/* Five regions apart: a buffer each, as many reads in flight. */
	map[0] = 0x155ULL << 40;
	EXPECT_EQ(5, sxm_map_weight(map, 64));
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(5 * SXM_COPY_DEFAULT_BUF_SIZE, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);

	/* 4 MiB: 8 of 512 KiB, not the 16 asked for; to verify, 16. */
	o.bitmap = NULL;
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(64 * RS, res.stats.buffer_bytes);
	EXPECT_EQ(0, res.nr_dirty);
	sxm_copy_result_free(&res);
	ASSERT_EQ(0, sxm_copy_verify(src, sink, &o, &res))
		TH_LOG("%s", res.errmsg);
	EXPECT_EQ(128 * RS, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);
	/* An odd pool to verify with: pairs. */
	o.nr_bufs = 5;
	ASSERT_EQ(0, sxm_copy_verify(src, sink, &o, &res))
		TH_LOG("%s", res.errmsg);
	EXPECT_EQ(4 * SXM_COPY_DEFAULT_BUF_SIZE, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);

	/* More than the pool fills: the pool asked for. */
	o.nr_bufs = 4;
	ASSERT_EQ(0, sxm_copy(src, sink, &o, &res)) TH_LOG("%s", res.errmsg);
	EXPECT_EQ(4 * SXM_COPY_DEFAULT_BUF_SIZE, res.stats.buffer_bytes);
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);
}

TEST(copy_opts_refused)
{
	static const struct sxm_copy_opts bad[] = {
		{ .region_size = 1000 },
		{ .region_size = 2048 },
		{ .buf_size = 3 * 65536 },
		{ .buf_size = 32 * 1024 },
		{ .buf_size = 64 << 20 },
		{ .nr_bufs = 5000 },
	};
	char err[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		EXPECT_EQ(-EINVAL, sxm_copy_check_opts(&bad[i], err,
						       sizeof(err)))
			TH_LOG("case %zu", i);
		EXPECT_NE('\0', err[0]);
	}
	EXPECT_EQ(0, sxm_copy_check_opts(&(struct sxm_copy_opts){ 0 }, err,
					  sizeof(err)));
}

TEST_HARNESS_MAIN
