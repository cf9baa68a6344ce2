/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the fuzz harnesses share: the input as a NUL-terminated string
 * (the parsers take text), and an invariant that aborts, so that
 * libFuzzer reports it as a crash with the input that broke it.
 */
#ifndef SXM_FUZZ_H
#define SXM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* @data as a string, cut at its first NUL; free() it.  NULL: no memory. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return NULL;
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#define FUZZ_ASSERT(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: invariant broken: %s\n", \
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#endif /* SXM_FUZZ_H */
