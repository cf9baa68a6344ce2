// SPDX-License-Identifier: GPL-2.0
/*
 * Text formats of the dm layer: tables, the sxm target's table arguments
 * and status line, the insert record.  Pure functions only; see status.h.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/dm-sxm.h>
#include <linux/dm-sxm-metadata.h>

#include "base/sxm.h"
#include "dm/status.h"

/* ----------------------------------------------------------------------
 * Words and numbers
 * ----------------------------------------------------------------------
 */

/* Read a decimal number at *p, with no sign and no overflow. */
static int read_dec(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned int d = *s - '0';

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	*p = s;
	return 0;
}

/* Read a decimal number that must end at a space or the end of the text. */
static int read_dec_word(const char **p, uint64_t *out)
{
	const char *s = *p;
	int r;

	r = read_dec(&s, out);
	if (r)
		return r;
	if (*s && *s != ' ')
		return -EINVAL;
	*p = s;
	return 0;
}

static const char *skip_spaces(const char *s)
{
	while (*s == ' ')
		s++;
	return s;
}

/* The length of the word at s (up to a space or the end). */
static size_t word_len(const char *s)
{
	return strcspn(s, " ");
}

/* ----------------------------------------------------------------------
 * Tables
 * ----------------------------------------------------------------------
 */

void sxm_table_free(struct sxm_table *tbl)
{
	unsigned int i;

	for (i = 0; i < tbl->nr; i++) {
		free(tbl->t[i].type);
		free(tbl->t[i].params);
	}
	free(tbl->t);
	tbl->t = NULL;
	tbl->nr = 0;
}

int sxm_table_add(struct sxm_table *tbl, uint64_t start, uint64_t len,
		  const char *type, const char *params)
{
	struct sxm_table_target *t;

	if (!type || !*type || strlen(type) > SXM_DM_TYPE_MAX ||
	    strchr(type, ' ') || strchr(type, '\n'))
		return -EINVAL;
	t = realloc(tbl->t, (tbl->nr + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	tbl->t = t;
	t += tbl->nr;
	t->start = start;
	t->len = len;
	t->type = strdup(type);
	t->params = strdup(params ? params : "");
	if (!t->type || !t->params) {
		free(t->type);
		free(t->params);
		return -ENOMEM;
	}
	tbl->nr++;
	return 0;
}

int sxm_table_add_line(struct sxm_table *tbl, const char *line)
{
	uint64_t start, len;
	char type[SXM_DM_TYPE_MAX + 1];
	const char *p = line;
	size_t n;
	int r;

	if (strchr(line, '\n'))
		return -EINVAL;
	r = read_dec_word(&p, &start);
	if (r)
		return r;
	p = skip_spaces(p);
	r = read_dec_word(&p, &len);
	if (r)
		return r;
	p = skip_spaces(p);
	n = word_len(p);
	if (!n || n > SXM_DM_TYPE_MAX)
		return -EINVAL;
	memcpy(type, p, n);
	type[n] = '\0';
	p += n;
	/* The parameters are the rest after one space, kept as they are. */
	if (*p == ' ')
		p++;
	return sxm_table_add(tbl, start, len, type, p);
}

uint64_t sxm_table_sectors(const struct sxm_table *tbl)
{
	const struct sxm_table_target *last;

	if (!tbl->nr)
		return 0;
	last = &tbl->t[tbl->nr - 1];
	return last->start + last->len;
}

bool sxm_table_equal(const struct sxm_table *a, const struct sxm_table *b)
{
	unsigned int i;

	if (a->nr != b->nr)
		return false;
	for (i = 0; i < a->nr; i++)
		if (a->t[i].start != b->t[i].start ||
		    a->t[i].len != b->t[i].len ||
		    strcmp(a->t[i].type, b->t[i].type) ||
		    strcmp(a->t[i].params, b->t[i].params))
			return false;
	return true;
}

/* Write the table to f, each line after prefix. */
static void table_write(FILE *f, const char *prefix,
			const struct sxm_table *tbl)
{
	unsigned int i;

	for (i = 0; i < tbl->nr; i++) {
		const struct sxm_table_target *t = &tbl->t[i];

		fprintf(f, "%s%llu %llu %s%s%s\n", prefix,
			(unsigned long long)t->start,
			(unsigned long long)t->len, t->type,
			*t->params ? " " : "", t->params);
	}
}

/* Finish an open_memstream() text: the text, or NULL if it failed. */
static char *memstream_done(FILE *f, char **buf)
{
	bool ok = !ferror(f);

	/* *buf is only final once the stream is closed. */
	if (fclose(f) || !ok) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *sxm_table_text(const struct sxm_table *tbl)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f;

	f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	table_write(f, "", tbl);
	return memstream_done(f, &buf);
}

/* ----------------------------------------------------------------------
 * The sxm target
 * ----------------------------------------------------------------------
 */

bool sxm_table_word(const char *s)
{
	return s && *s && !s[strcspn(s, " \t\n\r\v\f")];
}

bool sxm_source_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= SXM_META_SOURCE_ID_LEN)
		return false;
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return false;
	return true;
}

int sxm_params_build(char *buf, size_t len, uint32_t major, uint32_t minor,
		     uint64_t region_sectors, bool track,
		     const struct sxm_meta_arg *meta)
{
	unsigned int nr = track;
	int n;

	if (meta && (!sxm_table_word(meta->path) ||
		     !sxm_source_id_ok(meta->source_id)))
		return -EINVAL;
	if (meta)
		nr += 2 + meta->reset;
	if (!nr)
		n = snprintf(buf, len, "%u:%u %llu", major, minor,
			     (unsigned long long)region_sectors);
	else
		n = snprintf(buf, len, "%u:%u %llu %u%s%s%s%s%s%s", major,
			     minor, (unsigned long long)region_sectors, nr,
			     track ? " track" : "",
			     meta ? " metadata:" : "", meta ? meta->path : "",
			     meta ? " source_id:" : "",
			     meta ? meta->source_id : "",
			     meta && meta->reset ? " metadata_reset" : "");
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return 0;
}

static int read_dev(const char **p, uint32_t *major, uint32_t *minor)
{
	uint64_t ma, mi;
	const char *s = *p;
	int r;

	r = read_dec(&s, &ma);
	if (r)
		return r;
	if (*s++ != ':')
		return -EINVAL;
	r = read_dec_word(&s, &mi);
	if (r)
		return r;
	if (ma > UINT32_MAX || mi > UINT32_MAX)
		return -ERANGE;
	*major = ma;
	*minor = mi;
	*p = s;
	return 0;
}

int sxm_params_parse(const char *params, struct sxm_params *p)
{
	const char *s = skip_spaces(params);
	struct sxm_params v = { 0 };
	uint64_t nr_opt, i;
	int r;

	r = read_dev(&s, &v.major, &v.minor);
	if (r)
		return r;
	s = skip_spaces(s);
	r = read_dec_word(&s, &v.region_sectors);
	if (r)
		return r;
	s = skip_spaces(s);
	if (*s) {
		r = read_dec_word(&s, &nr_opt);
		if (r)
			return r;
		for (i = 0; i < nr_opt; i++) {
			size_t n;

			s = skip_spaces(s);
			n = word_len(s);
			if (!n)
				return -EINVAL;
			if (n == 5 && !strncmp(s, "track", n)) {
				v.track = true;
			} else if (n > 9 && !strncmp(s, "metadata:", 9)) {
				const char *d = s + 9;

				r = read_dev(&d, &v.meta_major, &v.meta_minor);
				if (r || d != s + n)
					return -EINVAL;
				v.has_meta = true;
			} else if (n == 11 && !strncmp(s, "passthrough", n)) {
				v.track = false;
			}
			/* Other words are options a newer kernel added. */
			s += n;
		}
		if (*skip_spaces(s))
			return -EINVAL;
	}
	*p = v;
	return 0;
}

/*
 * The mirror's seven words at @s, all or none: a group a kernel only
 * began (or garbled) leaves them "off" and 0, and the line still parses.
 */
static int mirror_words(const char *s, struct sxm_status *v)
{
	struct sxm_status w = *v;
	uint64_t *nums[] = {
		&w.in_flight, &w.held_back, &w.mirrored_writes,
		&w.mirrored_bytes, &w.degradations,
	};
	size_t n, i;

	n = word_len(s);
	if (!n || n >= sizeof(w.mirror))
		return -EINVAL;
	memcpy(w.mirror, s, n);
	w.mirror[n] = '\0';
	s += n;
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		if (*s != ' ')
			return -EINVAL;
		s = skip_spaces(s);
		if (read_dec_word(&s, nums[i]))
			return -EINVAL;
	}
	if (*s != ' ')
		return -EINVAL;
	s = skip_spaces(s);
	n = word_len(s);
	if (!n || n >= sizeof(w.reason))
		return -EINVAL;
	memcpy(w.reason, s, n);
	w.reason[n] = '\0';
	*v = w;
	return 0;
}

/* Where word @k (from 0) of @s starts ("" if it has fewer). */
static const char *after_words(const char *s, unsigned int k)
{
	s = skip_spaces(s);
	while (k-- && *s)
		s = skip_spaces(s + word_len(s));
	return s;
}

/* The next word into @buf (of @len); advances *@s past it. */
static int word_into(const char **s, char *buf, size_t len)
{
	size_t n;

	*s = skip_spaces(*s);
	n = word_len(*s);
	if (!n || n >= len)
		return -EINVAL;
	memcpy(buf, *s, n);
	buf[n] = '\0';
	*s += n;
	return 0;
}

static int num_word(const char **s, uint64_t *v)
{
	*s = skip_spaces(*s);
	return read_dec_word(s, v) ? -EINVAL : 0;
}

/*
 * The persistent map's eight words after the mirror's (@s at the first):
 * "<dev> <state> <bits> <writes> <us> <loaded> <clean_time> <reason>",
 * dev "-" without a metadata device.
 */
static int meta_words(const char *s, struct sxm_status *v)
{
	struct sxm_status w = *v;

	if (word_into(&s, w.meta_dev, sizeof(w.meta_dev)) ||
	    word_into(&s, w.meta_state, sizeof(w.meta_state)) ||
	    num_word(&s, &w.meta_bits) || num_word(&s, &w.meta_writes) ||
	    num_word(&s, &w.meta_write_us) ||
	    word_into(&s, w.meta_loaded, sizeof(w.meta_loaded)) ||
	    num_word(&s, &w.meta_clean_time) ||
	    word_into(&s, w.meta_reason, sizeof(w.meta_reason)))
		return -EINVAL;
	w.has_meta = strcmp(w.meta_dev, "-") != 0;
	*v = w;
	return 0;
}

int sxm_status_parse(const char *params, struct sxm_status *st)
{
	const char *s = skip_spaces(params);
	struct sxm_status v = { 0 };
	uint64_t *nums[] = {
		&v.region_sectors, &v.nr_regions, &v.dirty_regions, &v.harvests,
	};
	size_t n, i;
	int r;

	/* The mode: a lower-case word. */
	n = word_len(s);
	if (!n || n >= sizeof(v.mode))
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-')
			return -EINVAL;
	memcpy(v.mode, s, n);
	s += n;

	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		if (*s != ' ')
			return -EINVAL;
		s = skip_spaces(s);
		r = read_dec_word(&s, nums[i]);
		if (r)
			return r;
	}

	/* The helper: "-" or its pid. */
	if (*s != ' ')
		return -EINVAL;
	s = skip_spaces(s);
	if (*s == '-') {
		s++;
		if (*s && *s != ' ')
			return -EINVAL;
	} else {
		uint64_t pid;

		r = read_dec_word(&s, &pid);
		if (r)
			return r;
		if (!pid || pid > INT32_MAX)
			return -ERANGE;
		v.helper_pid = pid;
	}

	/* Held regions (target 1.0.0 on); a kernel without them holds none. */
	if (*s == ' ' && *skip_spaces(s)) {
		s = skip_spaces(s);
		r = read_dec_word(&s, &v.held_regions);
		if (r)
			return r;
	}
	strcpy(v.mirror, "off");
	if (*s == ' ' && *skip_spaces(s))
		v.has_mirror = !mirror_words(skip_spaces(s), &v);
	if (v.has_mirror)
		meta_words(after_words(params, 14), &v);

	/*
	 * Words after these are fields a newer kernel appended; the seven
	 * above keep their places.
	 */
	if (v.region_sectors < SXM_MIN_REGION_SECTORS ||
	    v.region_sectors > SXM_MAX_REGION_SECTORS ||
	    (v.region_sectors & (v.region_sectors - 1)) ||
	    v.dirty_regions > v.nr_regions || v.held_regions > v.nr_regions)
		return -ERANGE;
	*st = v;
	return 0;
}

int sxm_region_sectors(uint64_t bytes, uint64_t *sectors)
{
	if (!bytes || (bytes & (bytes - 1)))
		return -EINVAL;
	if (bytes < (SXM_MIN_REGION_SECTORS << SECTOR_SHIFT) ||
	    bytes > (SXM_MAX_REGION_SECTORS << SECTOR_SHIFT))
		return -ERANGE;
	*sectors = bytes >> SECTOR_SHIFT;
	return 0;
}

int sxm_check_dm_name(const char *name)
{
	const char *c;

	if (!name || !*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (c = name; *c; c++)
		if (*c == '/' || iscntrl((unsigned char)*c))
			return -EINVAL;
	if (strlen(name) > SXM_DM_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* ----------------------------------------------------------------------
 * The insert record
 * ----------------------------------------------------------------------
 */

#define REC_MAGIC "sxm-insert 1"

char *sxm_insert_rec_format(const struct sxm_insert_rec *rec)
{
	char *buf = NULL;
	size_t size = 0;
	unsigned int i;
	FILE *f;

	if (sxm_check_dm_name(rec->name) || sxm_check_dm_name(rec->hidden) ||
	    !rec->table.nr)
		return NULL;
	for (i = 0; i < rec->table.nr; i++)
		if (strchr(rec->table.t[i].params, '\n'))
			return NULL;
	f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	fprintf(f, REC_MAGIC "\nname %s\nhidden %s\nread_only %d\n",
		rec->name, rec->hidden, rec->read_only);
	table_write(f, "target ", &rec->table);
	return memstream_done(f, &buf);
}

/* Copy a name field; it must be a valid device-mapper name. */
static int rec_name(char *dst, const char *val)
{
	if (*dst || sxm_check_dm_name(val))
		return -EINVAL;
	strcpy(dst, val);
	return 0;
}

static int rec_line(struct sxm_insert_rec *rec, char *line, bool *seen_ro)
{
	char *val = strchr(line, ' ');

	if (!val)
		return -EINVAL;
	*val++ = '\0';
	if (!strcmp(line, "name"))
		return rec_name(rec->name, val);
	if (!strcmp(line, "hidden"))
		return rec_name(rec->hidden, val);
	if (!strcmp(line, "read_only")) {
		if (*seen_ro || (strcmp(val, "0") && strcmp(val, "1")))
			return -EINVAL;
		rec->read_only = *val == '1';
		*seen_ro = true;
		return 0;
	}
	if (!strcmp(line, "target"))
		return sxm_table_add_line(&rec->table, val);
	return -EINVAL;
}

int sxm_insert_rec_parse(const char *text, struct sxm_insert_rec *rec)
{
	char *copy, *line, *next;
	bool seen_ro = false;
	int r = 0;

	memset(rec, 0, sizeof(*rec));
	if (strncmp(text, REC_MAGIC "\n", sizeof(REC_MAGIC)))
		return -EINVAL;
	copy = strdup(text + sizeof(REC_MAGIC));
	if (!copy)
		return -ENOMEM;
	for (line = copy; *line && !r; line = next) {
		next = strchr(line, '\n');
		if (!next) {
			r = -EINVAL;	/* the last line must be whole */
			break;
		}
		*next++ = '\0';
		r = rec_line(rec, line, &seen_ro);
	}
	free(copy);
	if (!r && (!*rec->name || !*rec->hidden || !seen_ro || !rec->table.nr))
		r = -EINVAL;
	if (r)
		sxm_table_free(&rec->table);
	return r;
}
