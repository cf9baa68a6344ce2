// SPDX-License-Identifier: GPL-2.0
/*
 * sxm-ctl daemon, and the commands that talk to it about warm-migration
 * jobs: submit, list, show, sync, pause, resume, cadence, cutover, cancel,
 * retry, forget.
 *
 * Each command is one request on the daemon's socket (ctl.h); --wait and
 * --watch poll "show" and draw a progress bar on a terminal, or plain
 * progress lines when the output is not one.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sxm.h"
#include "base/buf.h"
#include "cli/cmds.h"
#include "cli/cli.h"
#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "io/engine.h"
#include "io/sink.h"
#include "jobs/job.h"
#include "dm/status.h"

#define POLL_MS		250	/* --wait */
#define WATCH_MS	1000	/* --watch */

/* ------------------------------------------------------------------ */
/* Talking to the daemon                                              */
/* ------------------------------------------------------------------ */

/* Send @req; on failure print why ("sxm-ctl: CMD JOB: ...") and return 1. */
static int call(const char *cmd, const char *what, const char *req,
		char **body)
{
	char err[1100];
	int r;

	r = sxm_ctl_call(req, body, err, sizeof(err));
	if (r) {
		if (what)
			sxm_err("%s %s: %s", cmd, what, err);
		else
			sxm_err("%s: %s", cmd, err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/*
 * The jobs in a body: "job" lines, each followed by its "event" lines.
 * *@out is malloc'd.
 */
static int parse_jobs(char *body, struct sxm_job_rec **out, size_t *nr)
{
	struct sxm_job_rec *jobs = NULL, *t;
	char *line, *save = NULL;
	size_t n = 0;
	int r = 0;

	for (line = strtok_r(body, "\n", &save); line && !r;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "job ", 4)) {
			t = realloc(jobs, (n + 1) * sizeof(*jobs));
			if (!t) {
				r = -ENOMEM;
				break;
			}
			jobs = t;
			sxm_job_rec_init(&jobs[n]);
			r = sxm_job_wire_parse_line(line, &jobs[n++]);
		} else if (!strncmp(line, "event ", 6) && n) {
			r = sxm_job_wire_parse_event(line, &jobs[n - 1]);
		}
	}
	if (r) {
		free(jobs);
		return r;
	}
	*out = jobs;
	*nr = n;
	return 0;
}

/* Send @req and read the one job the answer carries. */
static int call_job(const char *cmd, const char *name, const char *req,
		    struct sxm_job_rec *j)
{
	struct sxm_job_rec *jobs;
	char *body;
	size_t n;
	int r;

	if (call(cmd, name, req, &body))
		return EXIT_FAIL;
	r = parse_jobs(body, &jobs, &n);
	free(body);
	if (r || n != 1) {
		sxm_err("%s %s: the daemon's answer makes no sense%s", cmd,
			name, r ? "" : " (not one job)");
		if (!r)
			free(jobs);
		return EXIT_FAIL;
	}
	*j = jobs[0];
	free(jobs);
	return EXIT_OK;
}

static int show_req(const char *name, struct sxm_job_rec *j)
{
	struct sxm_buf b = { 0 };
	char *req;
	int r;

	sxm_buf_printf(&b, "show");
	sxm_buf_kv(&b, "job", name);
	req = sxm_buf_take(&b);
	if (!req)
		return EXIT_FAIL;
	r = call_job("show", name, req, j);
	free(req);
	return r;
}

/* ------------------------------------------------------------------ */
/* Printing                                                           */
/* ------------------------------------------------------------------ */

static const char *time_str(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t = ms / 1000;

	if (!ms) {
		snprintf(buf, len, "never");
		return buf;
	}
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

static const char *size_or_dash(int64_t bytes, char *buf, size_t len)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else
		fmt_size(bytes, buf, len);
	return buf;
}

static const char *rate_str(double rate, char *buf, size_t len)
{
	char s[32];

	if (rate <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%s/s", fmt_size((uint64_t)rate, s, sizeof(s)));
	return buf;
}

static const char *phase_str(const struct sxm_job_rec *j, char *buf,
			     size_t len)
{
	snprintf(buf, len, "%s%s%s", sxm_phase_name(j->phase),
		 j->paused ? " (paused)" : "",
		 j->cancelling ? " (cancelling)" : "");
	return buf;
}

static void json_num_or_null(const char *key, double v, bool known)
{
	printf(",\"%s\":", key);
	if (known)
		printf("%.3f", v);
	else
		printf("null");
}

/* The metadata device: "metadata": {...}, or null without one. */
static void json_meta(const struct sxm_job_rec *j)
{
	printf(",\"metadata\":");
	if (!j->metadata[0]) {
		printf("null");
		return;
	}
	printf("{\"device\":");
	sxm_json_str(stdout, j->metadata);
	printf(",\"state\":");
	sxm_json_str(stdout, j->meta_state);
	printf(",\"bits\":%" PRIu64 ",\"writes\":%" PRIu64
	       ",\"write_us\":%" PRIu64 ",\"loaded\":",
	       j->meta_bits, j->meta_writes, j->meta_write_us);
	sxm_json_str(stdout, j->meta_loaded);
	printf(",\"last_clean\":");
	if (j->meta_clean_time)
		printf("%" PRIu64, j->meta_clean_time);
	else
		printf("null");
	printf(",\"reason\":");
	sxm_json_str(stdout, j->meta_reason);
	printf("}");
}

static void print_json(const struct sxm_job_rec *j)
{
	char b[SXM_DM_NAME_MAX + 16];
	unsigned int i;

	printf("{\"name\":");
	sxm_json_str(stdout, j->name);
	printf(",\"kind\":");
	sxm_json_str(stdout, j->kind);
	printf(",\"phase\":");
	sxm_json_str(stdout, sxm_phase_name(j->phase));
	printf(",\"paused\":%s,\"cancelling\":%s",
	       j->paused ? "true" : "false", j->cancelling ? "true" : "false");
	printf(",\"source\":");
	sxm_json_str(stdout, j->source);
	snprintf(b, sizeof(b), "/dev/mapper/%s", j->device);
	printf(",\"device\":");
	sxm_json_str(stdout, b);
	printf(",\"src_mode\":");
	sxm_json_str(stdout, sxm_src_mode_name(j->src_mode));
	printf(",\"sink\":");
	sxm_json_str(stdout, j->sink);
	printf(",\"io_timeout_ms\":%" PRIu64, j->io_timeout_ms ?
	       j->io_timeout_ms : SXM_SINK_IO_TIMEOUT_MS);
	printf(",\"on_sink_change\":\"%s\",\"sink_checks\":%" PRIu64
	       ",\"sink_changes\":%" PRIu64 ",\"sink_checked\":",
	       j->sink_resync ? "resync" : "fail", j->sink_checks,
	       j->sink_changes);
	if (j->sink_checked_ms)
		printf("%.3f", j->sink_checked_ms / 1000.0);
	else
		printf("null");
	printf(",\"no_verify\":%s,\"verified_all\":%s,\"verified_now_bytes\":%" PRIu64
	       ",\"verify_passes\":%" PRIu64 ",\"verify_mismatches\":%" PRIu64
	       ",\"verify_last\":",
	       j->no_verify ? "true" : "false",
	       j->verified_all ? "true" : "false", j->verified_now,
	       j->verify_passes, j->verify_mismatches);
	if (j->verify_last_ms)
		printf("%.3f", j->verify_last_ms / 1000.0);
	else
		printf("null");
	printf(",\"size\":%" PRIu64 ",\"region_size\":%" PRIu64,
	       j->size, j->region_size);
	printf(",\"cadence\":");
	sxm_json_str(stdout, sxm_cadence_str(j->cadence_ms, b, sizeof(b)));
	printf(",\"cadence_ms\":%" PRIu64 ",\"rate_limit\":%" PRIu64,
	       j->cadence_ms, j->rate_limit);
	printf(",\"engine\":");
	sxm_json_str(stdout, j->engine_used[0] ? j->engine_used : j->engine);
	printf(",\"track_id\":\"%016" PRIx64 "\"", j->track_id);
	printf(",\"last_sync\":");
	if (j->last_sync_ms)
		printf("%.3f", j->last_sync_ms / 1000.0);
	else
		printf("null");
	json_num_or_null("lag_seconds", j->lag_ms / 1000.0, j->lag_ms >= 0);
	printf(",\"bytes_full\":%" PRIu64 ",\"bytes_incr\":%" PRIu64
	       ",\"sync_count\":%" PRIu64 ",\"full_sync_done\":%" PRIu64,
	       j->bytes_full, j->bytes_incr, j->sync_count, j->full_done);
	printf(",\"last_sync_bytes\":%" PRIu64, j->last_sync_bytes);
	json_num_or_null("rate", j->rate, true);
	printf(",\"dirty_bytes\":");
	if (j->dirty_bytes >= 0)
		printf("%" PRId64, j->dirty_bytes);
	else
		printf("null");
	printf(",\"op\":");
	sxm_json_str(stdout, j->op);
	printf(",\"op_done\":%" PRIu64 ",\"op_total\":%" PRIu64,
	       j->op_done, j->op_total);
	json_num_or_null("eta_seconds", j->op_eta, j->op_eta >= 0);
	json_num_or_null("predicted_downtime_seconds", j->predicted_downtime,
			 j->predicted_downtime >= 0);
	printf(",\"next_sync\":");
	if (j->next_sync_ms)
		printf("%.3f", j->next_sync_ms / 1000.0);
	else
		printf("null");
	printf(",\"cutover_bytes\":%" PRIu64 ",\"verified_bytes\":%" PRIu64
	       ",\"downtime_ms\":%" PRIu64 ",\"cutover_failures\":%" PRIu64
	       ",\"catchup_syncs\":%" PRIu64,
	       j->cutover_bytes, j->verified_bytes, j->downtime_ms,
	       j->cutover_failures, j->catchup_syncs);
	printf(",\"frozen\":%s",
	       j->phase == SXM_PHASE_COMPLETED ? "true" : "false");
	printf(",\"mirror\":");
	sxm_json_str(stdout, j->mirror);
	printf(",\"mirror_reason\":");
	sxm_json_str(stdout, j->mirror_reason);
	printf(",\"mirrored_writes\":%" PRIu64 ",\"mirrored_bytes\":%" PRIu64
	       ",\"mirror_in_flight\":%" PRIu64 ",\"mirror_held_back\":%" PRIu64
	       ",\"sink_latency_p50_us\":%" PRIu64
	       ",\"sink_latency_p99_us\":%" PRIu64,
	       j->mirrored_writes, j->mirrored_bytes, j->mirror_in_flight,
	       j->mirror_held_back, j->lat_p50_us, j->lat_p99_us);
	printf(",\"degradations\":%" PRIu64 ",\"degraded_ms\":%" PRIu64,
	       j->degradations, j->degraded_ms);
	printf(",\"degraded_reason\":");
	sxm_json_str(stdout, j->degraded_reason);
	printf(",\"degraded_reasons\":");
	sxm_json_str(stdout, j->degraded_reasons);
	json_meta(j);
	printf(",\"fail_phase\":");
	sxm_json_str(stdout, j->phase == SXM_PHASE_FAILED ?
		     sxm_phase_name(j->fail_phase) : "");
	printf(",\"reason\":");
	if (j->reason[0])
		sxm_json_str(stdout, j->reason);
	else
		printf("null");
	printf(",\"events\":[");
	for (i = 0; i < j->nr_events; i++) {
		printf("%s{\"time\":%.3f,\"text\":", i ? "," : "",
		       j->events[i].t_ms / 1000.0);
		sxm_json_str(stdout, j->events[i].text);
		printf("}");
	}
	printf("]}");
}

static const char *mode_desc(const struct sxm_job_rec *j, char *buf,
			     size_t len)
{
	switch (j->src_mode) {
	case SXM_SRC_EXISTING:
		snprintf(buf, len, "its own sxm device");
		break;
	case SXM_SRC_INSERTED:
		snprintf(buf, len, "sxm inserted under it, live");
		break;
	default:
		snprintf(buf, len, "sxm device made over it: the VM must use /dev/mapper/%s",
			 j->device);
		break;
	}
	return buf;
}

static const char *us_str(uint64_t us, char *buf, size_t len)
{
	if (!us)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%" PRIu64 " us", us);
	else
		snprintf(buf, len, "%.2f ms", us / 1000.0);
	return buf;
}

/* What only a mirror-style job has: the mirror and its history. */
static void print_mirror(const struct sxm_job_rec *j)
{
	char b1[32], b2[32];

	if (j->mirror[0])
		printf("Mirror        %s%s%s: %" PRIu64 " writes, %s mirrored; %" PRIu64 " in flight, %" PRIu64 " held back\n",
		       j->mirror, j->mirror_reason[0] ? " " : "",
		       j->mirror_reason, j->mirrored_writes,
		       fmt_size(j->mirrored_bytes, b1, sizeof(b1)),
		       j->mirror_in_flight, j->mirror_held_back);
	printf("Sink latency  p50 %s, p99 %s (mirrored writes)\n",
	       us_str(j->lat_p50_us, b1, sizeof(b1)),
	       us_str(j->lat_p99_us, b2, sizeof(b2)));
	if (j->degradations)
		printf("Degraded      %" PRIu64 " time%s, %s in all (%s); last: %s\n",
		       j->degradations, j->degradations == 1 ? "" : "s",
		       sxm_duration_str(j->degraded_ms / 1000.0, b1, sizeof(b1)),
		       j->degraded_reasons, j->degraded_reason);
	else
		printf("Degraded      never\n");
}

/* show: the metadata device, as the kernel's status has it. */
static void print_meta(const struct sxm_job_rec *j)
{
	char b1[64], b2[64];

	if (!j->metadata[0]) {
		printf("Metadata      none: a reboot costs a full copy\n");
		return;
	}
	if (!j->meta_state[0]) {
		printf("Metadata      %s\n", j->metadata);
		return;
	}
	printf("Metadata      %s: %s%s%s, %" PRIu64 " regions marked, %" PRIu64 " writes (mean %s); loaded %s, last clean shutdown %s\n",
	       j->metadata, j->meta_state, j->meta_reason[0] ? " " : "",
	       j->meta_reason, j->meta_bits, j->meta_writes,
	       us_str(j->meta_write_us, b1, sizeof(b1)), j->meta_loaded,
	       j->meta_clean_time ? time_str((int64_t)j->meta_clean_time * 1000,
					     b2, sizeof(b2)) : "never");
}

/* show: the online verify and the sink's identity. */
static void print_checks(const struct sxm_job_rec *j)
{
	char b1[64], b2[64];

	if (j->no_verify)
		printf("Verify        off (--no-verify): a cutover reads back only what it copies\n");
	else
		printf("Verify        %" PRIu64 "%% verified now; %" PRIu64 " pass%s, the last %s; %" PRIu64 " mismatch%s found and repaired\n",
		       j->size ? j->verified_now * 100 / j->size : 0,
		       j->verify_passes, j->verify_passes == 1 ? "" : "es",
		       time_str(j->verify_last_ms, b2, sizeof(b2)),
		       j->verify_mismatches,
		       j->verify_mismatches == 1 ? "" : "es");
	printf("Sink identity %" PRIu64 " check%s passed, last %s; %" PRIu64 " change%s found; on a change: %s\n",
	       j->sink_checks, j->sink_checks == 1 ? "" : "s",
	       time_str(j->sink_checked_ms, b1, sizeof(b1)), j->sink_changes,
	       j->sink_changes == 1 ? "" : "s",
	       j->sink_resync ? "copy everything again" : "fail");
}

static void print_show(const struct sxm_job_rec *j)
{
	char b1[64], b2[64], b3[64], b4[256];
	bool mirror = sxm_job_is_mirror(j);
	int64_t now = sxm_now_ms();
	unsigned int i;

	printf("Job           %s (%s)\n", j->name, j->kind);
	printf("Phase         %s\n", phase_str(j, b1, sizeof(b1)));
	if (j->reason[0])
		printf("%-13s %s\n", j->phase == SXM_PHASE_FAILED ?
		       "Reason" : "Last error", j->reason);
	printf("Source        %s (%s)\n", j->source,
	       mode_desc(j, b4, sizeof(b4)));
	printf("Device        /dev/mapper/%s, %s, %s regions\n", j->device,
	       fmt_size(j->size, b1, sizeof(b1)),
	       fmt_size(j->region_size, b2, sizeof(b2)));
	print_meta(j);
	printf("Sink          %s (I/O timeout %g s)\n", j->sink,
	       (j->io_timeout_ms ? j->io_timeout_ms :
		SXM_SINK_IO_TIMEOUT_MS) / 1000.0);
	print_checks(j);
	if (mirror) {
		print_mirror(j);
	} else {
		printf("Cadence       %s",
		       sxm_cadence_str(j->cadence_ms, b1, sizeof(b1)));
		if (j->next_sync_ms && !j->paused)
			printf(" (next sync in %s)",
			       sxm_duration_str((j->next_sync_ms - now) / 1000.0,
						b2, sizeof(b2)));
		printf("\n");
	}
	printf("Rate limit    %s\n", j->rate_limit ?
	       rate_str(j->rate_limit, b1, sizeof(b1)) : "none");
	printf("Engine        %s\n", j->engine_used[0] ? j->engine_used :
	       j->engine);
	printf("Last Sync     %s\n", time_str(j->last_sync_ms, b1, sizeof(b1)));
	printf("Lag           %s\n", j->lag_ms < 0 ? "-" :
	       sxm_duration_str(j->lag_ms / 1000.0, b1, sizeof(b1)));
	printf("%s  %s (%" PRIu64 ")\n", mirror ? "Bytes (Bulk)" : "Bytes (Full)",
	       fmt_size(j->bytes_full, b1, sizeof(b1)), j->bytes_full);
	printf("%s  %s (%" PRIu64 ")\n", mirror ? "Bytes (Sync)" : "Bytes (Incr)",
	       fmt_size(j->bytes_incr, b1, sizeof(b1)), j->bytes_incr);
	printf("%s    %" PRIu64 "\n", mirror ? "Resyncs   " : "Sync Count",
	       j->sync_count);
	printf("Rate          %s\n", rate_str(j->rate, b1, sizeof(b1)));
	printf("Dirty now     %s\n", size_or_dash(j->dirty_bytes, b1, sizeof(b1)));
	if (j->op[0])
		printf("Running       %s: %s of %s, ETA %s\n", j->op,
		       fmt_size(j->op_done, b1, sizeof(b1)),
		       fmt_size(j->op_total, b2, sizeof(b2)),
		       sxm_duration_str(j->op_eta, b3, sizeof(b3)));
	if (j->phase == SXM_PHASE_FULL_SYNC || j->full_done < j->size)
		printf("%s     %s of %s on the sink\n",
		       mirror ? "Bulk copy" : "Full sync",
		       fmt_size(j->full_done, b1, sizeof(b1)),
		       fmt_size(j->size, b2, sizeof(b2)));
	if (j->predicted_downtime >= 1)
		printf("Cutover       predicted downtime %s\n",
		       sxm_duration_str(j->predicted_downtime, b1, sizeof(b1)));
	else if (j->predicted_downtime >= 0)	/* under a second: in ms */
		printf("Cutover       predicted downtime %.0f ms\n",
		       j->predicted_downtime * 1000);
	if (j->phase == SXM_PHASE_COMPLETED)
		printf("Cutover       %s copied, %s verified, guest I/O held %" PRIu64 " ms; %s; /dev/mapper/%s is left suspended (frozen)\n",
		       fmt_size(j->cutover_bytes, b1, sizeof(b1)),
		       fmt_size(j->verified_bytes, b2, sizeof(b2)),
		       j->downtime_ms, j->verified_all ?
		       "every region verified" : "not every region verified",
		       j->device);
	if (j->nr_events)
		printf("Events\n");
	for (i = 0; i < j->nr_events; i++)
		printf("  %s  %s\n", time_str(j->events[i].t_ms, b1, sizeof(b1)),
		       j->events[i].text);
}

static void print_list(const struct sxm_job_rec *jobs, size_t n)
{
	char ph[48], ls[32], lag[32], bf[32], bi[32], rt[32], dt[32];
	size_t i;

	printf("%-20s %-22s %-19s %-8s %-11s %-11s %5s %-12s %s\n", "NAME",
	       "PHASE", "LAST SYNC", "LAG", "BYTES(FULL)", "BYTES(INCR)",
	       "SYNCS", "RATE", "DIRTY");
	for (i = 0; i < n; i++) {
		const struct sxm_job_rec *j = &jobs[i];

		printf("%-20s %-22s %-19s %-8s %-11s %-11s %5" PRIu64 " %-12s %s\n",
		       j->name, phase_str(j, ph, sizeof(ph)),
		       time_str(j->last_sync_ms, ls, sizeof(ls)),
		       j->lag_ms < 0 ? "-" :
		       sxm_duration_str(j->lag_ms / 1000.0, lag, sizeof(lag)),
		       fmt_size(j->bytes_full, bf, sizeof(bf)),
		       fmt_size(j->bytes_incr, bi, sizeof(bi)), j->sync_count,
		       rate_str(j->rate, rt, sizeof(rt)),
		       size_or_dash(j->dirty_bytes, dt, sizeof(dt)));
	}
}

/*
 * One progress report: a bar redrawn in place on a terminal, else a
 * plain line (at most one a second, and only when something moved).
 */
struct progress_out {
	bool tty;
	bool drawn;		/* a bar is on the line */
	char last[256];
	double last_t;
};

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress(struct progress_out *po, const struct sxm_job_rec *j)
{
	char line[256], d1[32], d2[32], rt[32], eta[32], ph[48], bar[31];
	double f = 0;
	int i, w = 30;

	if (j->op[0] && j->op_total) {
		f = (double)j->op_done / j->op_total;
		if (f > 1)
			f = 1;
		snprintf(line, sizeof(line), "%s: %-9s %3d%%  %s / %s  %s  ETA %s",
			 j->name, j->op, (int)(f * 100),
			 fmt_size(j->op_done, d1, sizeof(d1)),
			 fmt_size(j->op_total, d2, sizeof(d2)),
			 rate_str(j->op_rate, rt, sizeof(rt)),
			 sxm_duration_str(j->op_eta, eta, sizeof(eta)));
	} else {
		snprintf(line, sizeof(line), "%s: %s, dirty %s", j->name,
			 phase_str(j, ph, sizeof(ph)),
			 size_or_dash(j->dirty_bytes, d1, sizeof(d1)));
	}
	if (po->tty) {
		for (i = 0; i < w; i++)
			bar[i] = i < (int)(f * w + 0.5) ? '#' : '.';
		bar[w] = '\0';
		fprintf(stderr, "\r\033[K[%s] %s", bar, line);
		po->drawn = true;
	} else if (strcmp(line, po->last) && mono_now() - po->last_t >= 1.0) {
		fprintf(stderr, "%s\n", line);
		snprintf(po->last, sizeof(po->last), "%s", line);
		po->last_t = mono_now();
	}
	fflush(stderr);
}

static void progress_end(struct progress_out *po)
{
	if (po->drawn)
		fputc('\n', stderr);
	po->drawn = false;
}

/* ------------------------------------------------------------------ */
/* Waiting                                                            */
/* ------------------------------------------------------------------ */

enum wait_for {
	WAIT_READY,		/* submit: past the full sync */
	WAIT_SYNC,		/* sync: sync_count reaches want */
	WAIT_CUTOVER,		/* cutover: Completed */
	WAIT_CANCELLED,
	WAIT_RETRY,		/* retry: Ready, Mirrored (or beyond) again */
	WAIT_MIRRORED,		/* mirror style: Mirrored (or beyond) */
	WAIT_VERIFY,		/* verify: the pass it asked for is done */
};

/* What a wait started from: the job's counters when it was asked. */
struct wait_base {
	uint64_t want_sync, cutover_failures, verify_asked;
};

/*
 * Whether @j is where @what waits for: 1; 0 not yet; or -1 with @why
 * set when it never will be (a paused sync, a failed cutover...).
 */
static int wait_reached(const struct sxm_job_rec *j, enum wait_for what,
			const struct wait_base *b, const char **why)
{
	enum sxm_phase p = j->phase;

	switch (what) {
	case WAIT_READY:
		return p == SXM_PHASE_READY || p == SXM_PHASE_SYNCING ||
		       p == SXM_PHASE_CUTTING_OVER || p == SXM_PHASE_COMPLETED;
	case WAIT_RETRY:
		/* Not the phase the retry set: the job's own, after. */
		return (p == SXM_PHASE_READY || p == SXM_PHASE_MIRRORED ||
			p == SXM_PHASE_COMPLETED) && !j->retrying;
	case WAIT_MIRRORED:
		return p == SXM_PHASE_MIRRORED || p == SXM_PHASE_CUTTING_OVER ||
		       p == SXM_PHASE_COMPLETED;
	case WAIT_SYNC:
		if (j->sync_count >= b->want_sync)
			return 1;
		*why = "paused before the sync ran";
		return j->paused && p == SXM_PHASE_READY ? -1 : 0;
	case WAIT_CUTOVER:
		if (p == SXM_PHASE_COMPLETED)
			return 1;
		*why = j->reason;
		return j->cutover_failures > b->cutover_failures ? -1 : 0;
	case WAIT_CANCELLED:
		return p == SXM_PHASE_CANCELLED;
	case WAIT_VERIFY:
		if (j->verify_answered >= b->verify_asked)
			return 1;
		*why = "the cutover came first: it verified what it needed";
		return p == SXM_PHASE_COMPLETED ? -1 : 0;
	}
	return 0;
}

/*
 * Poll the job until @what happens (0), or it fails (1: the reason is
 * printed).  @j holds the answer to the request and ends as the last
 * state seen.
 */
static int wait_job(const char *cmd, struct sxm_job_rec *j,
		    enum wait_for what)
{
	struct progress_out po = { .tty = isatty(STDERR_FILENO) };
	struct wait_base b = {
		.want_sync = j->want_sync,
		.cutover_failures = j->cutover_failures,
		.verify_asked = j->verify_asked,
	};
	char name[SXM_JOB_NAME_MAX + 1];
	struct timespec ts = { 0, POLL_MS * 1000000L };
	const char *why = "";
	enum sxm_phase p;
	int st;

	snprintf(name, sizeof(name), "%s", j->name);
	for (;;) {
		p = j->phase;
		if (p == SXM_PHASE_CANCELLED && what != WAIT_CANCELLED)
			break;
		if (p == SXM_PHASE_FAILED && !j->cancelling)
			break;
		st = wait_reached(j, what, &b, &why);
		if (st > 0)
			goto done;
		if (st < 0) {
			progress_end(&po);
			sxm_err("%s %s: %s", cmd, name, why);
			return EXIT_FAIL;
		}
		progress(&po, j);
		nanosleep(&ts, NULL);
		if (show_req(name, j)) {
			progress_end(&po);
			return EXIT_FAIL;
		}
	}
	progress_end(&po);
	if (p == SXM_PHASE_CANCELLED)
		sxm_err("%s %s: the job was cancelled", cmd, name);
	else
		sxm_err("%s %s: failed in %s: %s", cmd, name,
			sxm_phase_name(j->fail_phase), j->reason);
	return EXIT_FAIL;
done:
	progress_end(&po);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

int cmd_daemon(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' },
		{ "group", required_argument, NULL, 'g' },
		{ "engine", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sxm_daemon_opts o = {
		.state_dir = sxm_ctl_job_dir(),
		.socket = sxm_ctl_socket_path(),
	};
	const char *cmd = argv[0];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o.state_dir = optarg;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 'g':
			o.group = optarg;
			break;
		case 'e':
			if (!sxm_engine_name_valid(optarg))
				return cli_usage(cmd, "--engine %s: uring, aio or auto",
						 optarg);
			/* The copy engine reads it when a job says "auto". */
			setenv("SXM_ENGINE", optarg, 1);
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	if (argc > optind)
		return cli_usage(cmd, "too many arguments");
	return sxm_daemon_run(&o);
}

/* What "sxm-ctl submit" was given. */
struct submit_opts {
	const char *source;
	const char *sink;
	const char *vals[10];	/* submit_keys[], NULL: not given */
	bool wait;
	bool json;
};

static const char *const submit_keys[] = { "kind", "name", "cadence", "rate",
					   "engine", "region_size",
					   "on_sink_change", "no_verify",
					   "io_timeout", "metadata" };

/* One option of submit into @o: EXIT_OK, or a usage error printed. */
static int submit_opt(const char *cmd, int c, struct submit_opts *o)
{
	uint64_t v;

	switch (c) {
	case 's':
		o->source = optarg;
		break;
	case 'k':
		o->sink = optarg;
		break;
	case 'K':
		if (strcmp(optarg, SXM_KIND_WARM) &&
		    strcmp(optarg, SXM_KIND_MIRROR))
			return cli_usage(cmd, "--kind %s: warm, or sxm (mirror style)",
					 optarg);
		o->vals[0] = optarg;
		break;
	case 'n':
		if (sxm_job_name_check(optarg))
			return cli_usage(cmd, "--name '%s': 1 to %d of A-Z a-z 0-9 . _ + -, not starting with . or -",
					 optarg, SXM_JOB_NAME_MAX);
		o->vals[1] = optarg;
		break;
	case 'c':
		if (sxm_cadence_parse(optarg, &v))
			return cli_usage(cmd, "--cadence %s: manual or a duration of at least 1s (15m, 1h, 1d)",
					 optarg);
		o->vals[2] = optarg;
		break;
	case 'r':
		o->vals[3] = optarg;	/* checked after the options */
		break;
	case 'e':
		if (!sxm_engine_name_valid(optarg))
			return cli_usage(cmd, "--engine %s: uring, aio or auto",
					 optarg);
		o->vals[4] = optarg;
		break;
	case 'R':
		if (cli_region_size(cmd, optarg, &v))
			return EXIT_USAGE;
		o->vals[5] = optarg;
		break;
	case 'V':
		o->vals[7] = "1";
		break;
	case 'S':
		if (strcmp(optarg, "fail") && strcmp(optarg, "resync"))
			return cli_usage(cmd, "--on-sink-change %s: fail or resync",
					 optarg);
		o->vals[6] = optarg;
		break;
	case 'T':
		if (parse_duration_ms(optarg, &v) || v < 1000 ||
		    v > 3600 * 1000)
			return cli_usage(cmd, "--io-timeout %s: a duration from 1s to 1h",
					 optarg);
		o->vals[8] = optarg;
		break;
	case 'M':
		o->vals[9] = optarg;
		break;
	case 'w':
		o->wait = true;
		break;
	case 'j':
		o->json = true;
		break;
	}
	return EXIT_OK;
}

/* The submit request's line, or NULL (out of memory). */
static char *submit_request(const struct submit_opts *o)
{
	struct sxm_buf b = { 0 };
	size_t i;

	sxm_buf_printf(&b, "submit");
	sxm_buf_kv(&b, "source", o->source);
	sxm_buf_kv(&b, "sink", o->sink);
	for (i = 0; i < ARRAY_SIZE(submit_keys); i++)
		if (o->vals[i])
			sxm_buf_kv(&b, submit_keys[i], o->vals[i]);
	return sxm_buf_take(&b);
}

/* Say what was submitted and, with --wait, wait for it; the status. */
static int submit_report(const char *cmd, const struct submit_opts *o,
			 struct sxm_job_rec *j)
{
	bool mirror = sxm_job_is_mirror(j);
	char b1[32], b2[256];
	int r = 0;

	if (!o->json) {
		printf("job %s submitted: %s migration of %s (%s) to %s\n",
		       j->name, mirror ? "mirror-style" : "warm",
		       j->source, fmt_size(j->size, b1, sizeof(b1)), j->sink);
		printf("  %s\n", mode_desc(j, b2, sizeof(b2)));
		fflush(stdout);
	}
	if (o->wait) {
		r = wait_job(cmd, j, mirror ? WAIT_MIRRORED : WAIT_READY);
		if (!r && !o->json && mirror)
			printf("job %s: %s, %s copied and composed: every write is mirrored\n",
			       j->name, sxm_phase_name(j->phase),
			       fmt_size(j->size, b1, sizeof(b1)));
		else if (!r && !o->json)
			printf("job %s: %s, full sync of %s done\n", j->name,
			       sxm_phase_name(j->phase),
			       fmt_size(j->size, b1, sizeof(b1)));
	}
	if (o->json) {
		print_json(j);
		printf("\n");
	}
	if (!r)
		r = cli_flush_stdout(cmd);
	return r;
}

int cmd_submit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "sink", required_argument, NULL, 'k' },
		{ "kind", required_argument, NULL, 'K' },
		{ "name", required_argument, NULL, 'n' },
		{ "cadence", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "engine", required_argument, NULL, 'e' },
		{ "region-size", required_argument, NULL, 'R' },
		{ "on-sink-change", required_argument, NULL, 'S' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "io-timeout", required_argument, NULL, 'T' },
		{ "metadata", required_argument, NULL, 'M' },
		{ "wait", no_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0];
	struct submit_opts o = { 0 };
	struct sxm_job_rec *j;
	uint64_t v;
	char *req;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h')
			return cli_help(cmd);
		if (c == '?' || c == ':')
			return cli_bad_option(cmd, argv, c);
		r = submit_opt(cmd, c, &o);
		if (r)
			return r;
	}
	if (argc > optind)
		return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	if (!o.source || !o.sink)
		return cli_usage(cmd, "--source and --sink are required");
	if (o.vals[3] && parse_rate(o.vals[3], &v))
		return cli_usage(cmd, "--rate %s: a size per second (100M, 1G/s; 0: no limit)",
				 o.vals[3]);

	req = submit_request(&o);
	j = malloc(sizeof(*j));
	if (!req || !j) {
		free(req);
		free(j);
		sxm_err("%s: %s", cmd, strerror(ENOMEM));
		return EXIT_FAIL;
	}
	r = call_job(cmd, o.source, req, j);
	free(req);
	if (!r)
		r = submit_report(cmd, &o, j);
	free(j);
	return r;
}

int cmd_list(int argc, char **argv)
{
	const char *cmd = argv[0];
	struct sxm_job_rec *jobs;
	bool json, done;
	char *body;
	size_t n, i;
	int r;

	r = cli_simple_args(argc, argv, 0, &json, &done);
	if (done)
		return r;
	if (call(cmd, NULL, "list", &body))
		return EXIT_FAIL;
	r = parse_jobs(body, &jobs, &n);
	free(body);
	if (r) {
		sxm_err("%s: the daemon's answer makes no sense", cmd);
		return EXIT_FAIL;
	}
	if (json) {
		printf("[");
		for (i = 0; i < n; i++) {
			if (i)
				printf(",");
			print_json(&jobs[i]);
		}
		printf("]\n");
	} else {
		print_list(jobs, n);
	}
	free(jobs);
	return cli_flush_stdout(cmd);
}

int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct progress_out po = { .tty = isatty(STDOUT_FILENO) };
	struct timespec ts = { WATCH_MS / 1000, 0 };
	const char *cmd = argv[0], *name;
	bool json = false, watch = false;
	struct sxm_job_rec *j;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	if (argc - optind != 1)
		return cli_usage(cmd, argc - optind < 1 ? "which job?" :
				 "too many arguments");
	name = argv[optind];
	j = malloc(sizeof(*j));
	if (!j)
		return EXIT_FAIL;
	for (;;) {
		r = show_req(name, j);
		if (r)
			break;
		if (json) {
			print_json(j);
			printf("\n");
		} else if (!watch || po.tty) {
			if (watch)
				printf("\033[H\033[2J");
			print_show(j);
		}
		if (watch && !po.tty && !json) {
			/* Not a terminal: one progress line a refresh. */
			po.last_t = 0;
			progress(&po, j);
		}
		r = cli_flush_stdout(cmd);
		if (r || !watch || sxm_phase_final(j->phase) ||
		    j->phase == SXM_PHASE_FAILED)
			break;
		nanosleep(&ts, NULL);
	}
	if (watch && !json && !po.tty && !r)
		print_show(j);
	free(j);
	return r ? r : cli_flush_stdout(cmd);
}

/*
 * The commands that name a job and change it: one request, then
 * optionally waiting for what it leads to.
 */
/* What a job command did, in words, after it was answered. */
static void job_cmd_report(const struct sxm_job_rec *j, const char *verb,
			   bool wait, enum wait_for what)
{
	char b1[32], b2[32];

	printf("job %s: %s", j->name, verb);
	if (!strcmp(verb, "pause") || !strcmp(verb, "resume")) {
		printf("d (%s)\n", sxm_phase_name(j->phase));
	} else if (!strcmp(verb, "cadence")) {
		printf(" %s\n", sxm_cadence_str(j->cadence_ms, b1, sizeof(b1)));
	} else if (!strcmp(verb, "retry") && !wait) {
		printf(": back to %s\n", sxm_phase_name(j->phase));
	} else if (!wait) {
		printf(" requested (%s)\n", sxm_phase_name(j->phase));
	} else if (what == WAIT_CUTOVER) {
		printf(" done: %s copied with the source frozen, %s read back and verified, guest I/O held %" PRIu64 " ms\n",
		       fmt_size(j->cutover_bytes, b1, sizeof(b1)),
		       fmt_size(j->verified_bytes, b2, sizeof(b2)),
		       j->downtime_ms);
		printf("  %s\n", j->verified_all ?
		       "every region of the sink was verified equal to the source" :
		       "not every region was verified (--no-verify): only what the cutover copied was read back");
		printf("  /dev/mapper/%s is left suspended (frozen) so that it cannot diverge from the sink:\n"
		       "  stop the VM that uses it, then remove the device\n",
		       j->device);
	} else if (what == WAIT_VERIFY) {
		printf(" done: the pass read back every region; %" PRIu64 " found differing since the job began (marked to copy again)\n",
		       j->verify_mismatches);
	} else if (j->phase == SXM_PHASE_MIRRORED && j->mirror[0] &&
		   strcmp(j->mirror, "on")) {
		printf(" done: %s, but the mirror is %s%s%s: the job keeps bringing it back\n",
		       sxm_phase_name(j->phase), j->mirror,
		       j->mirror_reason[0] ? " " : "", j->mirror_reason);
	} else {
		printf(" done: %s\n", sxm_phase_name(j->phase));
	}
}

/* The job's name and @nvalues values (a cadence) after the options. */
static int job_cmd_args(const char *cmd, int argc, char **argv, int nvalues)
{
	uint64_t v;

	if (argc - optind < 1 + nvalues)
		return cli_usage(cmd, argc - optind < 1 ? "which job?" :
				 "missing arguments");
	if (argc - optind > 1 + nvalues)
		return cli_usage(cmd, "too many arguments");
	if (nvalues && sxm_cadence_parse(argv[optind + 1], &v))
		return cli_usage(cmd, "%s: manual or a duration of at least 1s (15m, 1h, 1d)",
				 argv[optind + 1]);
	return EXIT_OK;
}

/* "sxm-ctl forget": its request @req (freed here) sent. */
static int job_forget(const char *cmd, const char *name, char *req)
{
	char *body;
	int r;

	r = call(cmd, name, req, &body);
	free(req);
	if (!r) {
		free(body);
		printf("job %s forgotten\n", name);
		r = cli_flush_stdout(cmd);
	}
	return r;
}

static int job_cmd(int argc, char **argv, const char *verb, int nvalues,
		   bool can_wait, enum wait_for what)
{
	static const struct option opts[] = {
		{ "wait", no_argument, NULL, 'w' },
		{ "verify-all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = argv[0], *name;
	bool wait = false, all = false, json = false;
	struct sxm_buf b = { 0 };
	struct sxm_job_rec *j;
	char *req;
	int c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			if (!can_wait)
				return cli_usage(cmd, "unknown option --wait");
			wait = true;
			break;
		case 'a':
			if (strcmp(verb, "cutover"))
				return cli_usage(cmd, "unknown option --verify-all");
			all = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			return cli_help(cmd);
		default:
			return cli_bad_option(cmd, argv, c);
		}
	}
	r = job_cmd_args(cmd, argc, argv, nvalues);
	if (r)
		return r;
	name = argv[optind];

	sxm_buf_printf(&b, "%s", verb);
	sxm_buf_kv(&b, "job", name);
	if (nvalues)
		sxm_buf_kv(&b, "value", argv[optind + 1]);
	if (all)
		sxm_buf_kv(&b, "verify", "all");
	req = sxm_buf_take(&b);
	if (!req)
		return EXIT_FAIL;
	if (!strcmp(verb, "forget"))
		return job_forget(cmd, name, req);
	j = malloc(sizeof(*j));
	if (!j) {
		free(req);
		return EXIT_FAIL;
	}
	r = call_job(cmd, name, req, j);
	free(req);
	if (r)
		goto out;
	if (wait)
		r = wait_job(cmd, j, what);
	if (json) {
		print_json(j);
		printf("\n");
	} else if (!r) {
		job_cmd_report(j, verb, wait, what);
	}
	if (!r)
		r = cli_flush_stdout(cmd);
out:
	free(j);
	return r;
}

int cmd_sync(int argc, char **argv)
{
	return job_cmd(argc, argv, "sync", 0, true, WAIT_SYNC);
}

int cmd_pause(int argc, char **argv)
{
	return job_cmd(argc, argv, "pause", 0, false, 0);
}

int cmd_resume(int argc, char **argv)
{
	return job_cmd(argc, argv, "resume", 0, false, 0);
}

int cmd_cadence(int argc, char **argv)
{
	return job_cmd(argc, argv, "cadence", 1, false, 0);
}

int cmd_cutover(int argc, char **argv)
{
	return job_cmd(argc, argv, "cutover", 0, true, WAIT_CUTOVER);
}

int cmd_cancel(int argc, char **argv)
{
	return job_cmd(argc, argv, "cancel", 0, true, WAIT_CANCELLED);
}

int cmd_retry(int argc, char **argv)
{
	return job_cmd(argc, argv, "retry", 0, true, WAIT_RETRY);
}

int cmd_verify(int argc, char **argv)
{
	return job_cmd(argc, argv, "verify", 0, true, WAIT_VERIFY);
}

int cmd_mirror(int argc, char **argv)
{
	return job_cmd(argc, argv, "mirror", 0, true, WAIT_MIRRORED);
}

int cmd_forget(int argc, char **argv)
{
	return job_cmd(argc, argv, "forget", 0, false, 0);
}
