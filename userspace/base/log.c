// SPDX-License-Identifier: GPL-2.0
/* Logging to stderr, prefixed with the program name. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/sxm.h"

int sxm_verbose;

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "sxm-ctl: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void sxm_msg_add(char *buf, size_t len, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!len)
		return;
	used = strnlen(buf, len);
	if (used) {
		if (used + 2 >= len)
			return;		/* full: the first lines say most */
		buf[used++] = '\n';
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

void sxm_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void sxm_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void sxm_debug(const char *fmt, ...)
{
	va_list ap;

	if (!sxm_verbose)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}
