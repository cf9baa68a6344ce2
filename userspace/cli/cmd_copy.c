// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl copy SOURCE URI [options]
 *
 * One run of the copy engine from SOURCE (a block device or a file) to the
 * sink at URI, without tracking: what a warm migration's full sync does,
 * or an incremental one given a bitmap of regions (--bitmap).  When it
 * fails, --dirty-out saves the regions still to copy, and a second run
 * with --bitmap of that file finishes the job.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sxm.h"
#include "base/bitmap.h"
#include "cli/cmds.h"
#include "io/copy.h"

static volatile sig_atomic_t copy_cancel;

static void on_signal(int sig)
{
	copy_cancel = 1;
}

static void copy_usage(FILE *f)
{
	fprintf(f,
		"usage: sxm-ctl copy SOURCE URI [OPTIONS]\n"
		"\n"
		"Copy SOURCE (a block device or file) to the sink URI:\n"
		"  nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH,\n"
		"  nbds://... with ?tls-psk-file=FILE or ?tls-certificates=DIR,\n"
		"  file:PATH\n"
		"\n"
		"  --engine uring|aio|auto  source I/O engine (default: $SXM_ENGINE or auto)\n"
		"  --rate BYTES/s           limit the read rate (e.g. 100M)\n"
		"  --queue-depth N          requests in flight (default %u)\n"
		"  --buffer-size SIZE       bytes per request (default 512k, 64k..32M)\n"
		"  --connections N          NBD connections with multi-conn (default 4)\n"
		"  --connect-timeout TIME   to connect and negotiate (default 30s)\n"
		"  --io-timeout TIME        give up on a connection with requests out\n"
		"                           and no answer for TIME (default 30s)\n"
		"  --progress, --no-progress  progress line (default: on a terminal)\n"
		"  --verify                 read the sink back and compare\n"
		"  --verify-only            compare only, copy nothing\n"
		"  --region-size SIZE       region size of the bitmaps (default 64k)\n"
		"  --bitmap FILE            copy only the regions set in FILE\n"
		"  --dirty-out FILE         save the regions still to copy to FILE\n"
		"\n"
		"Bitmaps are little-endian u64 words, region r = bit r%%64 of word r/64.\n",
		SXM_COPY_DEFAULT_BUFS);
}

static void progress_line(void *opaque, const struct sxm_copy_stats *st)
{
	char done[32], total[32], rate[32], eta[32] = "--:--";
	int pct = st->bytes_total ?
		  (int)(100.0 * st->bytes_done / st->bytes_total) : 100;

	if (st->eta >= 0)
		snprintf(eta, sizeof(eta), "%u:%02u",
			 (unsigned int)st->eta / 60,
			 (unsigned int)st->eta % 60);
	fprintf(stderr, "\r%s %10s / %-10s %3d%%  %10s/s  ETA %s   ",
		(const char *)opaque, fmt_size(st->bytes_done, done, 32),
		fmt_size(st->bytes_total, total, 32), pct,
		fmt_size((uint64_t)st->rate, rate, 32), eta);
	fflush(stderr);
}

/* Read a bitmap file of exactly the words @nr_regions needs. */
static int read_bitmap(const char *path, uint64_t nr_regions,
		       uint64_t **out)
{
	size_t bytes = sxm_map_bytes(nr_regions);
	uint64_t *map;
	struct stat st;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fprintf(stderr, "sxm-ctl copy: bitmap %s: %s\n", path,
			strerror(errno));
		return r;
	}
	if (fstat(fd, &st)) {
		r = -errno;
		fprintf(stderr, "sxm-ctl copy: bitmap %s: %s\n", path,
			strerror(errno));
		close(fd);
		return r;
	}
	if ((uint64_t)st.st_size != bytes) {
		fprintf(stderr,
			"sxm-ctl copy: bitmap %s: %lld bytes, expected %zu (%" PRIu64
			" regions)\n",
			path, (long long)st.st_size, bytes, nr_regions);
		close(fd);
		return -EINVAL;
	}
	map = sxm_map_alloc(nr_regions);
	if (!map) {
		close(fd);
		return -ENOMEM;
	}
	n = bytes ? pread(fd, map, bytes, 0) : 0;
	close(fd);
	if (n != (ssize_t)bytes) {
		fprintf(stderr, "sxm-ctl copy: bitmap %s: short read\n", path);
		free(map);
		return -EIO;
	}
	if (sxm_map_tail_set(map, nr_regions)) {
		fprintf(stderr,
			"sxm-ctl copy: bitmap %s: bits set past region %" PRIu64
			"\n", path, nr_regions - 1);
		free(map);
		return -EINVAL;
	}
	*out = map;
	return 0;
}

static int write_bitmap(const char *path, const uint64_t *map,
			uint64_t nr_regions)
{
	size_t len = strlen(path) + 8;
	char *tmp = malloc(len);
	FILE *f;
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, len, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		r = -errno;
		goto out;
	}
	/* In memory as in the file: little-endian words. */
	if (sxm_map_bytes(nr_regions) &&
	    fwrite(map, sxm_map_bytes(nr_regions), 1, f) != 1)
		r = -EIO;
	if (fclose(f) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r)
		unlink(tmp);
out:
	free(tmp);
	return r;
}

static void summary(const char *what, const struct sxm_copy_stats *st)
{
	char total[32], rate[32], w[32], z[32], s[32], rd[32];

	printf("%s %s in %.2f s (%s/s): %s written, %s zeroed, %s skipped, %s read\n",
	       what, fmt_size(st->bytes_done, total, 32), st->elapsed,
	       fmt_size((uint64_t)st->rate, rate, 32),
	       fmt_size(st->bytes_written, w, 32),
	       fmt_size(st->bytes_zeroed, z, 32),
	       fmt_size(st->bytes_skipped, s, 32),
	       fmt_size(st->bytes_read, rd, 32));
}

static int parse_count(const char *opt, const char *arg, unsigned int max,
		       unsigned int *out)
{
	uint64_t v;

	if (parse_u64(arg, &v) || v < 1 || v > max) {
		fprintf(stderr, "sxm-ctl copy: %s: '%s' is not a number from 1 to %u\n",
			opt, arg, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_bytes(const char *opt, const char *arg, uint64_t *out)
{
	bool rate = !strcmp(opt, "--rate");

	if ((rate ? parse_rate(arg, out) : parse_size(arg, out)) || !*out) {
		fprintf(stderr, "sxm-ctl copy: %s: '%s' is not a size\n", opt,
			arg);
		return -EINVAL;
	}
	return 0;
}

enum {
	OPT_ENGINE = 256, OPT_RATE, OPT_QD, OPT_BUFSZ, OPT_CONNS, OPT_TIMEOUT,
	OPT_IO_TIMEOUT,
	OPT_PROGRESS, OPT_NO_PROGRESS, OPT_VERIFY, OPT_VERIFY_ONLY,
	OPT_REGION, OPT_BITMAP, OPT_DIRTY_OUT, OPT_HELP,
};

static const struct option copy_options[] = {
	{ "engine", required_argument, NULL, OPT_ENGINE },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "queue-depth", required_argument, NULL, OPT_QD },
	{ "buffer-size", required_argument, NULL, OPT_BUFSZ },
	{ "connections", required_argument, NULL, OPT_CONNS },
	{ "connect-timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "io-timeout", required_argument, NULL, OPT_IO_TIMEOUT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "verify-only", no_argument, NULL, OPT_VERIFY_ONLY },
	{ "region-size", required_argument, NULL, OPT_REGION },
	{ "bitmap", required_argument, NULL, OPT_BITMAP },
	{ "dirty-out", required_argument, NULL, OPT_DIRTY_OUT },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

struct copy_args {
	struct sxm_copy_opts o;
	struct sxm_sink_opts so;
	const char *source;
	const char *uri;
	const char *bitmap_path;
	const char *dirty_out;
	int progress;		/* -1: on a terminal */
	bool verify;
	bool verify_only;
};

/* Returns 0, 1 for --help, or -EINVAL. */
static int parse_args(int argc, char **argv, struct copy_args *a)
{
	uint64_t v;
	unsigned int n;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", copy_options, NULL)) != -1) {
		switch (c) {
		case OPT_ENGINE:
			if (!sxm_engine_name_valid(optarg)) {
				fprintf(stderr, "sxm-ctl copy: --engine: '%s' is not uring, aio or auto\n",
					optarg);
				return -EINVAL;
			}
			a->o.engine = optarg;
			break;
		case OPT_RATE:
			if (parse_bytes("--rate", optarg, &a->o.rate_limit))
				return -EINVAL;
			break;
		case OPT_QD:
			if (parse_count("--queue-depth", optarg,
					SXM_COPY_MAX_BUFS, &n))
				return -EINVAL;
			a->o.nr_bufs = a->o.queue_depth = n;
			break;
		case OPT_BUFSZ:
			if (parse_bytes("--buffer-size", optarg, &v))
				return -EINVAL;
			a->o.buf_size = v;	/* checked with the rest */
			break;
		case OPT_CONNS:
			if (parse_count("--connections", optarg,
					SXM_SINK_MAX_FDS, &a->so.max_conns))
				return -EINVAL;
			break;
		case OPT_TIMEOUT:
			if (parse_duration_ms(optarg, &v) || !v ||
			    v > 3600 * 1000) {
				fprintf(stderr, "sxm-ctl copy: --connect-timeout: '%s' is not a duration up to 1h\n",
					optarg);
				return -EINVAL;
			}
			a->so.timeout_ms = v;
			break;
		case OPT_IO_TIMEOUT:
			if (parse_duration_ms(optarg, &v) || v < 1000 ||
			    v > 3600 * 1000) {
				fprintf(stderr, "sxm-ctl copy: --io-timeout: '%s' is not a duration from 1s to 1h\n",
					optarg);
				return -EINVAL;
			}
			a->so.io_timeout_ms = v;
			break;
		case OPT_PROGRESS:
			a->progress = 1;
			break;
		case OPT_NO_PROGRESS:
			a->progress = 0;
			break;
		case OPT_VERIFY:
			a->verify = true;
			break;
		case OPT_VERIFY_ONLY:
			a->verify = a->verify_only = true;
			break;
		case OPT_REGION:
			if (parse_bytes("--region-size", optarg,
					&a->o.region_size))
				return -EINVAL;
			break;
		case OPT_BITMAP:
			a->bitmap_path = optarg;
			break;
		case OPT_DIRTY_OUT:
			a->dirty_out = optarg;
			break;
		case 'h':
		case OPT_HELP:
			return 1;
		default:
			if (optopt)
				fprintf(stderr, "sxm-ctl copy: option '%s' needs an argument or is unknown\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "sxm-ctl copy: unknown option '%s'\n",
					argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "sxm-ctl copy: expected SOURCE and URI\n");
		return -EINVAL;
	}
	a->source = argv[optind];
	a->uri = argv[optind + 1];
	return 0;
}

static void report_dirty(const struct copy_args *a,
			 const struct sxm_copy_result *res)
{
	uint64_t rs = a->o.region_size ? a->o.region_size :
		      SXM_COPY_DEFAULT_REGION;
	char sz[32];
	int r;

	if (!res->dirty)
		return;
	if (res->nr_dirty)
		fprintf(stderr, "sxm-ctl copy: %" PRIu64 " of %" PRIu64
			" regions (up to %s) still to copy\n",
			res->nr_dirty, res->nr_regions,
			fmt_size(res->nr_dirty * rs, sz, sizeof(sz)));
	if (!a->dirty_out)
		return;
	r = write_bitmap(a->dirty_out, res->dirty, res->nr_regions);
	if (r)
		fprintf(stderr, "sxm-ctl copy: %s: %s\n", a->dirty_out,
			strerror(-r));
	else if (res->nr_dirty)
		fprintf(stderr, "sxm-ctl copy: saved them to %s; run again with --bitmap %s\n",
			a->dirty_out, a->dirty_out);
}

/* --verify, --verify-only: read both back and compare; 0 if they match. */
static int copy_verify(struct copy_args *a, struct sxm_source *src,
		       struct sxm_sink *sink, struct sxm_copy_result *res)
{
	int r;

	if (a->progress)
		a->o.progress_opaque = "verify";
	r = sxm_copy_verify(src, sink, &a->o, res);
	if (a->progress)
		fputc('\n', stderr);
	if (r) {
		fprintf(stderr, "sxm-ctl copy: verify: %s\n", res->errmsg);
		report_dirty(a, res);
		return r;
	}
	printf("verified %" PRIu64 " bytes in %.2f s: the sink matches the source\n",
	       res->stats.bytes_done, res->stats.elapsed);
	return 0;
}

int cmd_copy(int argc, char **argv)
{
	struct copy_args a = { .progress = -1 };
	struct sxm_source *src = NULL;
	struct sxm_sink *sink = NULL;
	struct sxm_copy_result res = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t *bitmap = NULL;
	char err[512];
	int r, ret = EXIT_FAIL;

	r = parse_args(argc, argv, &a);
	if (r) {
		copy_usage(r > 0 ? stdout : stderr);
		return r > 0 ? EXIT_OK : EXIT_USAGE;
	}
	if (sxm_copy_check_opts(&a.o, err, sizeof(err))) {
		fprintf(stderr, "sxm-ctl copy: %s\n", err);
		return EXIT_USAGE;
	}
	if (a.progress < 0)
		a.progress = isatty(STDERR_FILENO);

	r = sxm_source_open(a.source, &src, err, sizeof(err));
	if (r) {
		fprintf(stderr, "sxm-ctl copy: %s\n", err);
		return EXIT_FAIL;
	}
	if (a.bitmap_path) {
		uint64_t rs = a.o.region_size ? a.o.region_size :
			      SXM_COPY_DEFAULT_REGION;

		r = read_bitmap(a.bitmap_path, sxm_regions(src->size, rs),
				&bitmap);
		if (r) {
			ret = r == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
			goto out;
		}
		a.o.bitmap = bitmap;
	}

	a.so.min_size = src->size;
	a.so.probe_zero = !bitmap && !a.verify_only;
	a.so.read_only = a.verify_only;
	r = sxm_sink_open(a.uri, &a.so, &sink, err, sizeof(err));
	if (r) {
		fprintf(stderr, "sxm-ctl copy: %s\n", err);
		/* A URI that cannot be parsed is bad input, like an option. */
		if (r == -EINVAL)
			ret = EXIT_USAGE;
		goto out;
	}
	/* Zeroes need not be sent to a zeroed sink, on a first full copy. */
	a.o.sink_is_zero = !bitmap && (sink->caps & SXM_SINK_ZERO_INIT);
	if (a.progress) {
		a.o.progress = progress_line;
		a.o.progress_opaque = "copy  ";
	}
	a.o.cancel = &copy_cancel;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (a.verify_only)
		goto verify;

	r = sxm_copy(src, sink, &a.o, &res);
	if (a.progress)
		fputc('\n', stderr);
	if (r) {
		fprintf(stderr, "sxm-ctl copy: %s\n", res.errmsg);
		report_dirty(&a, &res);
		goto out;
	}
	summary("copied", &res.stats);
	report_dirty(&a, &res);
	sxm_copy_result_free(&res);

verify:
	if (a.verify && copy_verify(&a, src, sink, &res))
		goto out;
	ret = EXIT_OK;
out:
	sxm_copy_result_free(&res);
	sxm_sink_close(sink);
	sxm_source_close(src);
	free(bitmap);
	return ret;
}
