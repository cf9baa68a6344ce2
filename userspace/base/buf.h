/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Growing strings, and the words the control socket and the job records
 * are written in: "key=value" with values escaped as %XX (bytes below
 * 0x21, '%', '=', 0x7f in a word; control characters and '%' in the rest
 * of a line).  Error policy as in sxm.h.
 */
#ifndef SXM_BUF_H
#define SXM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A growing string; on out of memory it stops growing and says so. */
struct sxm_buf {
	char *s;
	size_t len;
	size_t cap;
	bool oom;
};

void sxm_buf_printf(struct sxm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Append @val escaped: for a word (@word), bytes below 0x21, '%', '=' and
 * 0x7f; for the rest of a line (a record file's value), only control
 * characters and '%'.
 */
void sxm_buf_escape(struct sxm_buf *b, const char *val, bool word);
/* Append " key=<val escaped>". */
void sxm_buf_kv(struct sxm_buf *b, const char *key, const char *val);
/* The string (the caller frees it), or NULL after an out of memory. */
char *sxm_buf_take(struct sxm_buf *b);
void sxm_buf_free(struct sxm_buf *b);

/* Undo the escaping in place; -EINVAL on a bad %XX or a NUL. */
int sxm_unescape(char *s);

/* One word of a line: "key=value" (unescaped), or a bare word (val NULL). */
struct sxm_kv {
	char *key;
	char *val;
};

/*
 * Split @line (modified) at spaces into at most @max words.  -E2BIG if
 * there are more, -EINVAL if a value does not unescape.
 */
int sxm_kv_split(char *line, struct sxm_kv *kv, unsigned int max,
		 unsigned int *n);
/* The value of @key among @kv, or NULL. */
const char *sxm_kv_get(const struct sxm_kv *kv, unsigned int n,
		       const char *key);

/* @s as a quoted JSON string. */
void sxm_json_str(FILE *f, const char *s);

#endif /* SXM_BUF_H */
