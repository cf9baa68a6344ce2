// SPDX-License-Identifier: GPL-2.0
/* Logging to stderr, prefixed with the program name. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/sxm.h"

int sxm_verbose;

/* This thread's capture buffer for sxm_err(), if any (sxm.h). */
static __thread char *capture_buf;
static __thread size_t capture_len;

static void vlog(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "sxm-ctl: %s", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void sxm_err_capture(char *buf, size_t len)
{
	capture_buf = buf;
	capture_len = len;
	if (len)
		buf[0] = '\0';
}

void sxm_err_release(void)
{
	capture_buf = NULL;
	capture_len = 0;
}

void sxm_err(const char *fmt, ...)
{
	va_list ap;
	size_t used;

	va_start(ap, fmt);
	if (capture_buf && capture_len) {
		used = strlen(capture_buf);
		if (used && used + 2 < capture_len) {
			memcpy(capture_buf + used, "; ", 3);
			used += 2;
		}
		if (used + 1 < capture_len)
			vsnprintf(capture_buf + used, capture_len - used, fmt,
				  ap);
	} else {
		vlog("", fmt, ap);
	}
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
