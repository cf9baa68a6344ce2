// SPDX-License-Identifier: GPL-2.0
/*
 * Growing strings, %XX escapes, key=value words, JSON strings (buf.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sxm.h"
#include "base/buf.h"
/* ------------------------------------------------------------------ */
/* Strings                                                            */
/* ------------------------------------------------------------------ */

static bool buf_room(struct sxm_buf *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void sxm_buf_printf(struct sxm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_room(b, n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

static bool must_escape(unsigned char c, bool word)
{
	if (c < 0x20 || c == '%' || c == 0x7f)
		return true;
	return word && (c == ' ' || c == '=');
}

void sxm_buf_escape(struct sxm_buf *b, const char *val, bool word)
{
	const unsigned char *p;

	for (p = (const unsigned char *)val; *p; p++) {
		if (!buf_room(b, 3))
			return;
		if (must_escape(*p, word))
			b->len += sprintf(b->s + b->len, "%%%02X", *p);
		else
			b->s[b->len++] = *p;
		b->s[b->len] = '\0';
	}
	if (buf_room(b, 0))
		b->s[b->len] = '\0';
}

void sxm_buf_kv(struct sxm_buf *b, const char *key, const char *val)
{
	sxm_buf_printf(b, " %s=", key);
	sxm_buf_escape(b, val, true);
}

char *sxm_buf_take(struct sxm_buf *b)
{
	char *s;

	if (b->oom || !buf_room(b, 0)) {
		sxm_buf_free(b);
		return NULL;
	}
	/* An empty buffer's first allocation has no terminator yet. */
	b->s[b->len] = '\0';
	s = b->s;
	memset(b, 0, sizeof(*b));
	return s;
}

void sxm_buf_free(struct sxm_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sxm_unescape(char *s)
{
	char *w = s;
	int hi, lo;

	for (; *s; s++) {
		if (*s != '%') {
			*w++ = *s;
			continue;
		}
		hi = hexval(s[1]);
		lo = hi < 0 ? -1 : hexval(s[2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		*w++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*w = '\0';
	return 0;
}

int sxm_kv_split(char *line, struct sxm_kv *kv, unsigned int max,
		 unsigned int *n)
{
	char *save = NULL, *w, *eq;
	unsigned int i = 0;

	for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (i == max)
			return -E2BIG;
		eq = strchr(w, '=');
		kv[i].key = w;
		kv[i].val = NULL;
		if (eq) {
			*eq = '\0';
			kv[i].val = eq + 1;
			if (sxm_unescape(kv[i].val))
				return -EINVAL;
		}
		i++;
	}
	*n = i;
	return 0;
}

const char *sxm_kv_get(const struct sxm_kv *kv, unsigned int n,
		       const char *key)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (kv[i].val && !strcmp(kv[i].key, key))
			return kv[i].val;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */
/* ------------------------------------------------------------------ */

void sxm_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		switch (c) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}
