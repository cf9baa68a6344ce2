// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl's parsers and formatters, natively: numbers with units, region
 * sizes, device-mapper names, table lines, the sxm target's table
 * arguments and status line, dirty maps to extents, the insert record and
 * JSON strings.  Every bad input (junk, overflow, empty, negative, fields
 * missing or out of range) must be refused with the right errno, and
 * nothing is returned for it.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Before the harness: its ARRAY_SIZE gives way to an earlier one. */
#include "base/sxm.h"
#include "base/buf.h"
#include "base/bitmap.h"
#include "dm/status.h"

#include "kselftest_harness.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

/* What an output holds before a call that must not write it. */
#define UNTOUCHED 0xdeadbeefULL

struct num_case {
	const char *in;
	int err;		/* 0, -EINVAL, -ERANGE */
	uint64_t want;
};

/* Run a table of tc through a parser; on error *out must stay. */
#define RUN_NUM_CASES(fn, tc) do {					\
	size_t i_;							\
	for (i_ = 0; i_ < ARRAY_SIZE(tc); i_++) {			\
		uint64_t out_ = UNTOUCHED;				\
		int r_ = fn((tc)[i_].in, &out_);			\
		uint64_t want_ = (tc)[i_].err ? UNTOUCHED :		\
				 (tc)[i_].want;			\
		EXPECT_EQ((tc)[i_].err, r_)				\
			TH_LOG(#fn "(\"%s\")", (tc)[i_].in);		\
		EXPECT_EQ(want_, out_)					\
			TH_LOG(#fn "(\"%s\")", (tc)[i_].in);		\
	}								\
} while (0)

/* ------------------------------------------------------------- numbers */

TEST(num_parse_u64)
{
	static const struct num_case tc[] = {
		{ "0", 0, 0 },
		{ "1", 0, 1 },
		{ "4096", 0, 4096 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "0x10", 0, 16 },
		{ "0XfF", 0, 255 },
		{ "010", 0, 10 },
		{ "0x", -EINVAL, 0 },
		{ "0x0x1", -EINVAL, 0 },
		{ "0x-1", -EINVAL, 0 },
		{ "0x 1", -EINVAL, 0 },
		{ "0x10000000000000000", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "12abc", -EINVAL, 0 },
		{ "abc", -EINVAL, 0 },
		{ "1.5", -EINVAL, 0 },
		{ "64k", -EINVAL, 0 },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "99999999999999999999999", -ERANGE, 0 },
	};
	uint64_t out = 7;

	RUN_NUM_CASES(parse_u64, tc);
	EXPECT_EQ(-EINVAL, parse_u64(NULL, &out));
	EXPECT_EQ(7U, out);
}

TEST(num_parse_size)
{
	static const struct num_case tc[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "512b", 0, 512 },
		{ "64k", 0, 64 * KiB },
		{ "64K", 0, 64 * KiB },
		{ "64KiB", 0, 64 * KiB },
		{ "64kb", 0, 64000 },
		{ "1M", 0, MiB },
		{ "1mib", 0, MiB },
		{ "1MB", 0, 1000000 },
		{ "2G", 0, 2 * GiB },
		{ "2GiB", 0, 2 * GiB },
		{ "3T", 0, 3 * TiB },
		{ "16777215T", 0, 16777215 * TiB },
		{ "", -EINVAL, 0 },
		{ "k", -EINVAL, 0 },
		{ "-4k", -EINVAL, 0 },
		{ "+4k", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
		{ "64 k", -EINVAL, 0 },
		{ " 64k", -EINVAL, 0 },
		{ "64kk", -EINVAL, 0 },
		{ "64x", -EINVAL, 0 },
		{ "64P", -EINVAL, 0 },
		{ "0x1000", -EINVAL, 0 },
		{ "16777216T", -ERANGE, 0 },
		{ "18446744073709551615k", -ERANGE, 0 },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "99999999999999999999999k", -ERANGE, 0 },
	};
	uint64_t out = 7;

	RUN_NUM_CASES(parse_size, tc);
	EXPECT_EQ(-EINVAL, parse_size(NULL, &out));
	EXPECT_EQ(7U, out);
}

/* One rate parser for copy --rate, submit --rate and the daemon. */
TEST(num_parse_rate)
{
	static const struct num_case tc[] = {
		{ "0", 0, 0 },
		{ "100M", 0, 100 * MiB },
		{ "100M/s", 0, 100 * MiB },
		{ "1G/s", 0, GiB },
		{ "4096/s", 0, 4096 },
		{ "/s", -EINVAL, 0 },
		{ "100M/", -EINVAL, 0 },
		{ "100M/s/s", -EINVAL, 0 },
		{ "100M /s", -EINVAL, 0 },
		{ "fast", -EINVAL, 0 },
		{ "16777216T/s", -ERANGE, 0 },
	};
	uint64_t out = 7;

	RUN_NUM_CASES(parse_rate, tc);
	EXPECT_EQ(-EINVAL, parse_rate(NULL, &out));
	EXPECT_EQ(7U, out);
}

TEST(num_parse_duration_ms)
{
	static const struct num_case tc[] = {
		{ "0", 0, 0 },
		{ "500ms", 0, 500 },
		{ "10", 0, 10000 },
		{ "10s", 0, 10000 },
		{ "15m", 0, 15 * 60 * 1000 },
		{ "2min", 0, 2 * 60 * 1000 },
		{ "1h", 0, 3600 * 1000 },
		{ "1d", 0, 86400 * 1000 },
		{ "", -EINVAL, 0 },
		{ "ms", -EINVAL, 0 },
		{ "-1s", -EINVAL, 0 },
		{ "1.5s", -EINVAL, 0 },
		{ "10 s", -EINVAL, 0 },
		{ "1w", -EINVAL, 0 },
		{ "1hh", -EINVAL, 0 },
		{ "5sec", -EINVAL, 0 },
		{ "18446744073709551615s", -ERANGE, 0 },
		{ "18446744073709551616ms", -ERANGE, 0 },
		{ "213503982334602d", -ERANGE, 0 },
	};

	RUN_NUM_CASES(parse_duration_ms, tc);
}

TEST(region_sectors)
{
	static const struct num_case tc[] = {
		{ "4096", 0, 8 },
		{ "65536", 0, 128 },
		{ "1048576", 0, 2048 },
		{ "1073741824", 0, 2097152 },
		{ "0", -EINVAL, 0 },
		{ "3000", -EINVAL, 0 },
		{ "4097", -EINVAL, 0 },
		{ "98304", -EINVAL, 0 },		/* 96 KiB */
		{ "512", -ERANGE, 0 },
		{ "2048", -ERANGE, 0 },
		{ "2147483648", -ERANGE, 0 },		/* 2 GiB */
		{ "9223372036854775808", -ERANGE, 0 },	/* 2^63 */
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		uint64_t bytes, sectors = UNTOUCHED;

		ASSERT_EQ(0, parse_u64(tc[i].in, &bytes));
		EXPECT_EQ(tc[i].err, sxm_region_sectors(bytes, &sectors))
			TH_LOG("region size %s", tc[i].in);
		EXPECT_EQ(tc[i].err ? UNTOUCHED : tc[i].want, sectors)
			TH_LOG("region size %s", tc[i].in);
	}
}

TEST(dm_name)
{
	static const struct {
		const char *name;
		int err;
	} tc[] = {
		{ "vg-lv", 0 },
		{ "sxm0", 0 },
		{ "with space", 0 },
		{ "a.b_c+d=e@f#g:h", 0 },
		{ "", -EINVAL },
		{ ".", -EINVAL },
		{ "..", -EINVAL },
		{ "a/b", -EINVAL },
		{ "/dev/mapper/x", -EINVAL },
		{ "a\nb", -EINVAL },
		{ "tab\there", -EINVAL },
	};
	char name[200];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++)
		EXPECT_EQ(tc[i].err, sxm_check_dm_name(tc[i].name))
			TH_LOG("name '%s'", tc[i].name ?: "");
	memset(name, 'x', sizeof(name));
	name[127] = '\0';
	EXPECT_EQ(0, sxm_check_dm_name(name));
	name[127] = 'x';
	name[128] = '\0';
	EXPECT_EQ(-ENAMETOOLONG, sxm_check_dm_name(name));
	EXPECT_EQ(-EINVAL, sxm_check_dm_name(NULL));
}

/* -------------------------------------------------------------- tables */

TEST(table_lines)
{
	struct sxm_table t = { 0 };
	char *text;

	ASSERT_EQ(0, sxm_table_add_line(&t, "0 2048 linear 8:16 0"));
	ASSERT_EQ(0, sxm_table_add_line(&t, "2048 100 zero"));
	ASSERT_EQ(0, sxm_table_add_line(&t, "2148 8 crypt  two  spaces"));
	ASSERT_EQ(3U, t.nr);
	EXPECT_EQ(0U, t.t[0].start);
	EXPECT_EQ(2048U, t.t[0].len);
	EXPECT_STREQ("linear", t.t[0].type);
	EXPECT_STREQ("8:16 0", t.t[0].params);
	EXPECT_STREQ("zero", t.t[1].type);
	EXPECT_STREQ("", t.t[1].params);
	/* Parameters are kept byte for byte after the one separator. */
	EXPECT_STREQ(" two  spaces", t.t[2].params);
	EXPECT_EQ(2156U, sxm_table_sectors(&t));

	text = sxm_table_text(&t);
	ASSERT_NE(NULL, text);
	EXPECT_STREQ("0 2048 linear 8:16 0\n2048 100 zero\n"
		     "2148 8 crypt  two  spaces\n", text);
	free(text);
	sxm_table_free(&t);
	EXPECT_EQ(0U, t.nr);
	EXPECT_EQ(0U, sxm_table_sectors(&t));
}

TEST(table_lines_bad)
{
	static const struct {
		const char *line;
		int err;
	} tc[] = {
		{ "", -EINVAL },
		{ "0", -EINVAL },
		{ "0 1", -EINVAL },
		{ "0 1 ", -EINVAL },
		{ "x 1 linear 8:0 0", -EINVAL },
		{ "0 x linear 8:0 0", -EINVAL },
		{ "-1 1 linear 8:0 0", -EINVAL },
		{ "0 -1 linear 8:0 0", -EINVAL },
		{ "0 1x linear 8:0 0", -EINVAL },
		{ "0 1 averyverylongtypename 8:0 0", -EINVAL },
		{ "0 1 linear 8:0 0\n1 1 zero", -EINVAL },
		{ "18446744073709551616 1 zero", -ERANGE },
		{ "0 99999999999999999999 zero", -ERANGE },
	};
	struct sxm_table t = { 0 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++)
		EXPECT_EQ(tc[i].err, sxm_table_add_line(&t, tc[i].line))
			TH_LOG("line '%s'", tc[i].line ?: "");
	EXPECT_EQ(0U, t.nr);
}

TEST(table_equal)
{
	struct sxm_table a = { 0 }, b = { 0 };

	ASSERT_EQ(0, sxm_table_add_line(&a, "0 2048 linear 8:16 0"));
	ASSERT_EQ(0, sxm_table_add_line(&b, "0 2048 linear 8:16 0"));
	EXPECT_TRUE(sxm_table_equal(&a, &b));
	ASSERT_EQ(0, sxm_table_add_line(&b, "2048 8 zero"));
	EXPECT_FALSE(sxm_table_equal(&a, &b));
	sxm_table_free(&b);
	ASSERT_EQ(0, sxm_table_add_line(&b, "0 2048 linear 8:16 1"));
	EXPECT_FALSE(sxm_table_equal(&a, &b));
	sxm_table_free(&b);
	ASSERT_EQ(0, sxm_table_add_line(&b, "0 2048 striped 8:16 0"));
	EXPECT_FALSE(sxm_table_equal(&a, &b));
	sxm_table_free(&a);
	sxm_table_free(&b);
}

/* ------------------------------------------------------ the sxm target */

TEST(params_build)
{
	char buf[64];

	ASSERT_EQ(0, sxm_params_build(buf, sizeof(buf), 253, 4, 128, false,
				      NULL));
	EXPECT_STREQ("253:4 128", buf);
	ASSERT_EQ(0, sxm_params_build(buf, sizeof(buf), 8, 16, 2097152, true,
				      NULL));
	EXPECT_STREQ("8:16 2097152 1 track", buf);
	EXPECT_EQ(-ENOSPC, sxm_params_build(buf, 9, 253, 4, 128, false, NULL));
	EXPECT_EQ(0, sxm_params_build(buf, 10, 253, 4, 128, false, NULL));
}

/* A metadata device: its two words, and metadata_reset; checked words. */
TEST(params_build_metadata)
{
	struct sxm_meta_arg m = { "/dev/vg0/disk-meta", "vg0/disk", false };
	char buf[SXM_PARAMS_MAX];

	ASSERT_EQ(0, sxm_params_build(buf, sizeof(buf), 253, 4, 128, true,
				      &m));
	EXPECT_STREQ("253:4 128 3 track metadata:/dev/vg0/disk-meta source_id:vg0/disk",
		     buf);
	m.reset = true;
	ASSERT_EQ(0, sxm_params_build(buf, sizeof(buf), 253, 4, 128, false,
				      &m));
	EXPECT_STREQ("253:4 128 3 metadata:/dev/vg0/disk-meta source_id:vg0/disk metadata_reset",
		     buf);
	m.path = "/dev/with space";
	EXPECT_EQ(-EINVAL, sxm_params_build(buf, sizeof(buf), 1, 2, 8, true,
					    &m));
	m.path = "/dev/x";
	m.source_id = "";
	EXPECT_EQ(-EINVAL, sxm_params_build(buf, sizeof(buf), 1, 2, 8, true,
					    &m));
	m.source_id = "tab\tid";
	EXPECT_EQ(-EINVAL, sxm_params_build(buf, sizeof(buf), 1, 2, 8, true,
					    &m));
	m.source_id = "id";
	EXPECT_EQ(-ENOSPC, sxm_params_build(buf, 30, 1, 2, 8, true, &m));
}

/* The TABLE status's metadata:<major:minor> (what the kernel reports). */
TEST(params_parse_metadata)
{
	struct sxm_params p;

	ASSERT_EQ(0, sxm_params_parse("253:4 128 3 track metadata:7:3 source_id:vg0/disk",
				      &p));
	EXPECT_TRUE(p.track);
	EXPECT_TRUE(p.has_meta);
	EXPECT_EQ(7U, p.meta_major);
	EXPECT_EQ(3U, p.meta_minor);
	ASSERT_EQ(0, sxm_params_parse("253:4 128 1 track", &p));
	EXPECT_FALSE(p.has_meta);
	EXPECT_EQ(-EINVAL, sxm_params_parse("253:4 128 1 metadata:7:3x", &p));
	EXPECT_EQ(-EINVAL, sxm_params_parse("253:4 128 1 metadata:7", &p));
}

TEST(params_parse)
{
	static const struct {
		const char *in;
		int err;
		uint32_t major, minor;
		uint64_t region;
		bool track;
	} tc[] = {
		{ "8:16 128", 0, 8, 16, 128, false },
		{ "253:4 8 1 track", 0, 253, 4, 8, true },
		{ "253:4 8 1 passthrough", 0, 253, 4, 8, false },
		{ "253:4 8 0", 0, 253, 4, 8, false },
		{ "", -EINVAL, 0, 0, 0, false },
		{ "8:16", -EINVAL, 0, 0, 0, false },
		{ "8-16 128", -EINVAL, 0, 0, 0, false },
		{ "8:16x 128", -EINVAL, 0, 0, 0, false },
		{ "/dev/sda 128", -EINVAL, 0, 0, 0, false },
		{ "8:16 128 2 track", -EINVAL, 0, 0, 0, false },
		{ "8:16 128 1 track extra", -EINVAL, 0, 0, 0, false },
		{ "8:16 128 x", -EINVAL, 0, 0, 0, false },
		{ "4294967296:0 8", -ERANGE, 0, 0, 0, false },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		struct sxm_params p = { .major = 77 };

		EXPECT_EQ(tc[i].err, sxm_params_parse(tc[i].in, &p))
			TH_LOG("params '%s'", tc[i].in);
		if (tc[i].err) {
			EXPECT_EQ(77U, p.major);
			continue;
		}
		EXPECT_EQ(tc[i].major, p.major);
		EXPECT_EQ(tc[i].minor, p.minor);
		EXPECT_EQ(tc[i].region, p.region_sectors);
		EXPECT_EQ(tc[i].track, p.track);
	}
}

TEST(params_roundtrip)
{
	struct sxm_params p;
	char buf[64];

	ASSERT_EQ(0, sxm_params_build(buf, sizeof(buf), 4095, 1048575,
				      SXM_DEFAULT_REGION_SIZE >> 9, true, NULL));
	ASSERT_EQ(0, sxm_params_parse(buf, &p));
	EXPECT_EQ(4095U, p.major);
	EXPECT_EQ(1048575U, p.minor);
	EXPECT_EQ(128U, p.region_sectors);
	EXPECT_TRUE(p.track);
}

TEST(status_parse)
{
	struct sxm_status st;

	ASSERT_EQ(0, sxm_status_parse("track 128 8192 37 5 -", &st));
	EXPECT_STREQ("track", st.mode);
	EXPECT_EQ(128U, st.region_sectors);
	EXPECT_EQ(8192U, st.nr_regions);
	EXPECT_EQ(37U, st.dirty_regions);
	EXPECT_EQ(5U, st.harvests);
	EXPECT_EQ(0U, st.helper_pid);
	EXPECT_EQ(0U, st.held_regions);		/* an older kernel's line */

	ASSERT_EQ(0, sxm_status_parse("track 128 8192 37 5 - 8192", &st));
	EXPECT_EQ(8192U, st.held_regions);

	ASSERT_EQ(0, sxm_status_parse("passthrough 8 1 1 0 1234", &st));
	EXPECT_STREQ("passthrough", st.mode);
	EXPECT_EQ(1234U, st.helper_pid);

	/* A field a newer kernel appends is left alone. */
	ASSERT_EQ(0, sxm_status_parse("track 2097152 3 0 18446744073709551615 - 2 degraded", &st));
	EXPECT_EQ(UINT64_MAX, st.harvests);
	EXPECT_EQ(2U, st.held_regions);
}

/* The mirror's seven fields: all there, or the mirror reads "off". */
TEST(status_parse_mirror)
{
	struct sxm_status st;

	ASSERT_EQ(0, sxm_status_parse("mirror 128 8192 3 9 4242 1 on 4 2 1000 65536 1 -", &st));
	EXPECT_TRUE(st.has_mirror);
	EXPECT_STREQ("on", st.mirror);
	EXPECT_EQ(4U, st.in_flight);
	EXPECT_EQ(2U, st.held_back);
	EXPECT_EQ(1000U, st.mirrored_writes);
	EXPECT_EQ(65536U, st.mirrored_bytes);
	EXPECT_EQ(1U, st.degradations);
	EXPECT_STREQ("-", st.reason);

	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 degraded 0 0 7 8 2 sink_flush_error extra", &st));
	EXPECT_TRUE(st.has_mirror);
	EXPECT_STREQ("degraded", st.mirror);
	EXPECT_STREQ("sink_flush_error", st.reason);

	/* A group begun and not finished, or garbled: no mirror fields. */
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 degraded 0 0", &st));
	EXPECT_FALSE(st.has_mirror);
	EXPECT_STREQ("off", st.mirror);
	EXPECT_EQ(0U, st.degradations);
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 on 1 x 3 4 5 -", &st));
	EXPECT_FALSE(st.has_mirror);
	EXPECT_EQ(0U, st.in_flight);
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 averyveryverylongstate 1 2 3 4 5 -", &st));
	EXPECT_FALSE(st.has_mirror);
}

/* The persistent map's eight words after the mirror's (target 1.3.0). */
TEST(status_parse_metadata)
{
	struct sxm_status st;

	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 off 0 0 0 0 0 - 254:3 active 17 40 212 unclean 1796205132 -", &st));
	EXPECT_TRUE(st.has_meta);
	EXPECT_STREQ("254:3", st.meta_dev);
	EXPECT_STREQ("active", st.meta_state);
	EXPECT_EQ(17U, st.meta_bits);
	EXPECT_EQ(40U, st.meta_writes);
	EXPECT_EQ(212U, st.meta_write_us);
	EXPECT_STREQ("unclean", st.meta_loaded);
	EXPECT_EQ(1796205132U, st.meta_clean_time);
	EXPECT_STREQ("-", st.meta_reason);

	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 off 0 0 0 0 0 - 254:3 failed 0 2 9 new 0 timeout", &st));
	EXPECT_TRUE(st.has_meta);
	EXPECT_STREQ("failed", st.meta_state);
	EXPECT_STREQ("timeout", st.meta_reason);

	/* None in the table, an older kernel, or a group garbled: none. */
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 off 0 0 0 0 0 - - - 0 0 0 - 0 -", &st));
	EXPECT_FALSE(st.has_meta);
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 off 0 0 0 0 0 -", &st));
	EXPECT_FALSE(st.has_meta);
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 off 0 0 0 0 0 - 254:3 active x 40 212 clean 0 -", &st));
	EXPECT_FALSE(st.has_meta);
	ASSERT_EQ(0, sxm_status_parse("track 128 8192 3 9 - 0 off 0 0 0 0 0 - 254:3 active 1 2", &st));
	EXPECT_FALSE(st.has_meta);
}

TEST(status_parse_bad)
{
	static const struct {
		const char *in;
		int err;
	} tc[] = {
		{ "", -EINVAL },
		{ "track", -EINVAL },
		{ "track 128 8192 37 5", -EINVAL },
		{ "track 128 8192 37 5 ", -EINVAL },
		{ "track 128 8192 37 -", -EINVAL },
		{ "track 128 8192 37 5 x", -EINVAL },
		{ "track 128 8192 37 5 -1", -EINVAL },
		{ "track 128 8192 37 5 12ab", -EINVAL },
		{ "track 128 8192 -37 5 -", -EINVAL },
		{ "track 128 8192 3.7 5 -", -EINVAL },
		{ "Track 128 8192 37 5 -", -EINVAL },
		{ "tr4ck 128 8192 37 5 -", -EINVAL },
		{ "averyveryverylongmode 128 8192 37 5 -", -EINVAL },
		{ "track 128 8192 37 5 0", -ERANGE },
		{ "track 128 8192 37 5 4294967296", -ERANGE },
		{ "track 128 8192 8193 5 -", -ERANGE },
		{ "track 4 8192 37 5 -", -ERANGE },
		{ "track 96 8192 37 5 -", -ERANGE },
		{ "track 4194304 8192 37 5 -", -ERANGE },
		{ "track 128 99999999999999999999 0 0 -", -ERANGE },
		{ "track 128 8192 37 5 - x", -EINVAL },
		{ "track 128 8192 37 5 - -1", -EINVAL },
		{ "track 128 8192 37 5 - 12ab", -EINVAL },
		{ "track 128 8192 37 5 - 8193", -ERANGE },
	};
	struct sxm_status st;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		memset(&st, 0x5a, sizeof(st));
		EXPECT_EQ(tc[i].err, sxm_status_parse(tc[i].in, &st))
			TH_LOG("status '%s'", tc[i].in);
		EXPECT_EQ(0x5a5a5a5aU, st.helper_pid);
	}
}

/* ---------------------------------------------------------- dirty maps */

static void set_bit64(uint64_t *map, uint64_t r)
{
	map[r / 64] = htole64(le64toh(map[r / 64]) | (1ULL << (r % 64)));
}

TEST(extents_merge)
{
	uint64_t map[1] = { 0 };
	struct sxm_extent *e;
	size_t nr;

	/* 10 regions of 4 KiB; the device ends 2 KiB into the last one. */
	set_bit64(map, 0);
	set_bit64(map, 1);
	set_bit64(map, 2);
	set_bit64(map, 5);
	set_bit64(map, 9);
	ASSERT_EQ(0, sxm_map_extents(map, 10, 8, 76, &e, &nr));
	ASSERT_EQ(3U, nr);
	EXPECT_EQ(0U, e[0].offset);
	EXPECT_EQ(3U * 4096, e[0].len);
	EXPECT_EQ(5U * 4096, e[1].offset);
	EXPECT_EQ(4096U, e[1].len);
	EXPECT_EQ(9U * 4096, e[2].offset);
	EXPECT_EQ(2048U, e[2].len);
	EXPECT_EQ(5U, sxm_map_weight(map, 10));
	free(e);
}

TEST(extents_word_boundaries)
{
	uint64_t map[3] = { 0 };
	struct sxm_extent *e;
	uint64_t r;
	size_t nr;

	/* A run across words 0 and 1, and the last region of 130. */
	for (r = 60; r <= 70; r++)
		set_bit64(map, r);
	set_bit64(map, 129);
	/* Bits past nr_regions are not regions. */
	map[2] |= htole64(~0ULL << 2);
	ASSERT_EQ(0, sxm_map_extents(map, 130, 128, 130 * 128, &e, &nr));
	ASSERT_EQ(2U, nr);
	EXPECT_EQ(60 * 64 * KiB, e[0].offset);
	EXPECT_EQ(11 * 64 * KiB, e[0].len);
	EXPECT_EQ(129 * 64 * KiB, e[1].offset);
	EXPECT_EQ(64 * KiB, e[1].len);
	EXPECT_EQ(12U, sxm_map_weight(map, 130));
	free(e);
}

TEST(extents_all_and_none)
{
	uint64_t map[2];
	struct sxm_extent *e;
	size_t nr;

	memset(map, 0xff, sizeof(map));
	ASSERT_EQ(0, sxm_map_extents(map, 128, 2097152, 128 * 2097152ULL,
				     &e, &nr));
	ASSERT_EQ(1U, nr);
	EXPECT_EQ(0U, e[0].offset);
	EXPECT_EQ(128 * GiB, e[0].len);
	EXPECT_EQ(128U, sxm_map_weight(map, 128));
	free(e);

	memset(map, 0, sizeof(map));
	e = (void *)1;
	ASSERT_EQ(0, sxm_map_extents(map, 128, 8, 1024, &e, &nr));
	EXPECT_EQ(0U, nr);
	EXPECT_EQ(NULL, e);
	EXPECT_EQ(0U, sxm_map_weight(map, 128));

	EXPECT_EQ(-EINVAL, sxm_map_extents(map, 128, 0, 1024, &e, &nr));
}

TEST(extents_many)
{
	/* Every other region: 1000 extents, more than one allocation. */
	uint64_t map[32] = { 0 };
	struct sxm_extent *e;
	size_t nr, i;

	for (i = 0; i < 2000; i += 2)
		set_bit64(map, i);
	ASSERT_EQ(0, sxm_map_extents(map, 2000, 8, 2000 * 8, &e, &nr));
	ASSERT_EQ(1000U, nr);
	for (i = 0; i < nr; i++) {
		EXPECT_EQ(2 * i * 4096, e[i].offset);
		EXPECT_EQ(4096U, e[i].len);
	}
	free(e);
}

TEST(map_bytes)
{
	EXPECT_EQ(0U, sxm_map_bytes(0));
	EXPECT_EQ(8U, sxm_map_bytes(1));
	EXPECT_EQ(8U, sxm_map_bytes(64));
	EXPECT_EQ(16U, sxm_map_bytes(65));
	EXPECT_EQ(1ULL << 28, sxm_map_bytes(1ULL << 31));
}

/* ------------------------------------------------------ insert record */

TEST(insert_record_roundtrip)
{
	struct sxm_insert_rec rec = { 0 }, back;
	char *text;

	strcpy(rec.name, "vg-lv");
	strcpy(rec.hidden, "vg-lv-sxm-orig");
	rec.read_only = true;
	ASSERT_EQ(0, sxm_table_add_line(&rec.table, "0 2048 linear 8:16 0"));
	ASSERT_EQ(0, sxm_table_add_line(&rec.table, "2048 2048 linear 8:32 384"));
	ASSERT_EQ(0, sxm_table_add_line(&rec.table, "4096 8 zero"));

	text = sxm_insert_rec_format(&rec);
	ASSERT_NE(NULL, text);
	EXPECT_STREQ("sxm-insert 1\nname vg-lv\nhidden vg-lv-sxm-orig\n"
		     "read_only 1\ntarget 0 2048 linear 8:16 0\n"
		     "target 2048 2048 linear 8:32 384\ntarget 4096 8 zero\n",
		     text);
	ASSERT_EQ(0, sxm_insert_rec_parse(text, &back));
	EXPECT_STREQ(rec.name, back.name);
	EXPECT_STREQ(rec.hidden, back.hidden);
	EXPECT_TRUE(back.read_only);
	EXPECT_TRUE(sxm_table_equal(&rec.table, &back.table));
	free(text);
	sxm_table_free(&back.table);

	/* A parameter with a newline could not be read back: refused. */
	ASSERT_EQ(0, sxm_table_add(&rec.table, 4104, 8, "linear", "8:0\n0"));
	EXPECT_EQ(NULL, sxm_insert_rec_format(&rec));
	sxm_table_free(&rec.table);
	EXPECT_EQ(NULL, sxm_insert_rec_format(&rec));	/* no target */
}

TEST(insert_record_bad)
{
	static const char *const tc[] = {
		"",
		"sxm-insert 2\nname a\nhidden b\nread_only 0\ntarget 0 8 zero\n",
		"name a\nhidden b\nread_only 0\ntarget 0 8 zero\n",
		"sxm-insert 1\nhidden b\nread_only 0\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nread_only 0\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nhidden b\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nhidden b\nread_only 0\n",
		"sxm-insert 1\nname a\nname c\nhidden b\nread_only 0\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nhidden b\nread_only 2\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nhidden b\nread_only 0\nread_only 0\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nhidden b\nread_only 0\ncolour red\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a/b\nhidden b\nread_only 0\ntarget 0 8 zero\n",
		"sxm-insert 1\nname a\nhidden b\nread_only 0\ntarget 0 x zero\n",
		"sxm-insert 1\nname a\nhidden b\nread_only 0\ntarget 0 8 zero",
		"sxm-insert 1\nname a\nhidden b\nread_only 0\ntarget 0 8 zero\n\n",
	};
	struct sxm_insert_rec rec;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(tc); i++) {
		EXPECT_EQ(-EINVAL, sxm_insert_rec_parse(tc[i], &rec))
			TH_LOG("record %zu: '%s'", i, tc[i]);
		EXPECT_EQ(0U, rec.table.nr);
	}
}

/* ----------------------------------------------------------------- JSON */

TEST(json_str)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f;

	f = open_memstream(&buf, &size);
	ASSERT_NE(NULL, f);
	sxm_json_str(f, "vg-lv");
	fputc(' ', f);
	sxm_json_str(f, "a\"b\\c\nd\te\x01\x7f\xc3\xa9");
	fputc(' ', f);
	sxm_json_str(f, "");
	ASSERT_EQ(0, fclose(f));
	EXPECT_STREQ("\"vg-lv\" \"a\\\"b\\\\c\\nd\\te\\u0001\\u007f\xc3\xa9\" \"\"",
		     buf);
	free(buf);
}

TEST_HARNESS_MAIN
