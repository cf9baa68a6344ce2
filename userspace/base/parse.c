// SPDX-License-Identifier: GPL-2.0
/*
 * Numbers from the command line: every one read whole, with trailing junk
 * and overflow refused.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/sxm.h"

int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	int base = 10;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	/* Decimal, or hexadecimal after 0x; never octal (010 is ten). */
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		base = 16;
		if (!isxdigit((unsigned char)s[0]) ||
		    (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
			return -EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Split "123abc" into 123 and "abc"; the number must not overflow. */
static int split_number(const char *s, uint64_t *num, const char **suffix)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*num = v;
	*suffix = end;
	return 0;
}

static int mul_check(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a && b > UINT64_MAX / a)
		return -ERANGE;
	*out = a * b;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1ULL << 10 }, { "kib", 1ULL << 10 }, { "kb", 1000ULL },
		{ "m", 1ULL << 20 }, { "mib", 1ULL << 20 }, { "mb", 1000000ULL },
		{ "g", 1ULL << 30 }, { "gib", 1ULL << 30 }, { "gb", 1000000000ULL },
		{ "t", 1ULL << 40 }, { "tib", 1ULL << 40 },
		{ "tb", 1000000000000ULL },
	};
	const char *suf;
	uint64_t n;
	size_t i;
	int r;

	r = split_number(s, &n, &suf);
	if (r)
		return r;
	for (i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcasecmp(suf, units[i].suffix))
			return mul_check(n, units[i].mult, out);
	return -EINVAL;
}

int parse_rate(const char *s, uint64_t *out)
{
	char buf[64];
	size_t n = s ? strlen(s) : 0;

	/* "100M/s" reads as "100M". */
	if (n >= 2 && n < sizeof(buf) && !strcmp(s + n - 2, "/s")) {
		memcpy(buf, s, n - 2);
		buf[n - 2] = '\0';
		s = buf;
	}
	return parse_size(s, out);
}

int parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 },
		{ "m", 60 * 1000 }, { "min", 60 * 1000 },
		{ "h", 3600 * 1000 }, { "d", 86400 * 1000 },
	};
	const char *suf;
	uint64_t n;
	size_t i;
	int r;

	r = split_number(s, &n, &suf);
	if (r)
		return r;
	for (i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(suf, units[i].suffix))
			return mul_check(n, units[i].mult, out);
	return -EINVAL;
}

const char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < ARRAY_SIZE(unit)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}
