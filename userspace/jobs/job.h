/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Warm-migration jobs: the record of one job, its lifecycle, its metrics,
 * and the text it is stored and sent as.
 *
 * Lifecycle of a warm migration:
 *
 *   Initializing -> Full Sync -> Ready <-> Syncing -> Cutting Over -> Completed
 *   any phase but Completed -> Failed (with the reason; "retry" goes back)
 *   any phase but Completed -> Cancelled ("cancel")
 *
 * A job may also be paused (Full Sync or Ready: no copying, no scheduled
 * syncs) and resumed.  A cutover that fails goes back to Ready, not to
 * Failed: the guest keeps its disk and the operator may try again.
 *
 * Mirror style (kind "sxm", mirror_job.c; Storage XenMotion's steps):
 *
 *   Preparing -> Mirroring + Copying -> Composing -> Mirrored
 *     -> Cutting Over -> Completed
 *
 * with Failed, Cancelled and retry as above; a failed cutover goes back to
 * Mirrored.  A warm job in Ready switches to it ("mirror"): Composing,
 * then Mirrored.
 *
 * One struct, struct sxm_job_rec, is what the daemon saves (jobstore.c),
 * what it sends to the CLI (ctl.c) and what the CLI prints (cmd_job.c).
 * Both texts come from one table of fields (job.c), so they cannot drift:
 *
 *   the record file, one "key value" line each:
 *     sxm-job 1
 *     name vm1
 *     phase Full Sync
 *     ...
 *     event 1700000000123 full sync started: 64.0 MiB to nbd://h/e
 *   the wire, one line of "key=value" words for a job ("job name=vm1
 *   phase=Full%20Sync ..."), one line per event ("event t=... text=...").
 *
 * Values are escaped the same way in both (sxm_kv_escape(): bytes below
 * 0x21, '%', '=' and 0x7f as %XX).  Unknown keys are ignored when read (a
 * newer daemon's record), a missing key keeps its default, and a value
 * that does not parse makes the whole record invalid (-EINVAL).
 *
 * Error policy as in sxm.h: 0 or -errno, nothing printed.
 */
#ifndef SXM_JOB_H
#define SXM_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm/status.h"

enum sxm_phase {
	SXM_PHASE_INITIALIZING,
	SXM_PHASE_FULL_SYNC,
	SXM_PHASE_READY,
	SXM_PHASE_SYNCING,
	SXM_PHASE_CUTTING_OVER,
	SXM_PHASE_COMPLETED,
	SXM_PHASE_FAILED,
	SXM_PHASE_CANCELLED,
	/* Mirror style. */
	SXM_PHASE_PREPARING,
	SXM_PHASE_COPYING,		/* "Mirroring + Copying" */
	SXM_PHASE_COMPOSING,
	SXM_PHASE_MIRRORED,
	SXM_PHASE_NR,
};

/* How the job got its sxm device. */
enum sxm_src_mode {
	SXM_SRC_EXISTING,	/* the source is an sxm device already */
	SXM_SRC_INSERTED,	/* sxm inserted under a dm device (an LV) */
	SXM_SRC_CREATED,	/* an sxm device made over a plain device */
	SXM_SRC_NR,
};

/* Commands that change a job, for sxm_job_check(). */
enum sxm_job_cmd {
	SXM_CMD_SYNC,
	SXM_CMD_PAUSE,
	SXM_CMD_RESUME,
	SXM_CMD_CADENCE,
	SXM_CMD_CUTOVER,
	SXM_CMD_CANCEL,
	SXM_CMD_RETRY,
	SXM_CMD_FORGET,
	SXM_CMD_MIRROR,		/* a warm job goes mirror style */
	SXM_CMD_VERIFY,		/* an online verify pass, now */
};

#define SXM_JOB_NAME_MAX	64
#define SXM_JOB_EVENTS		32	/* events kept, the oldest dropped */
#define SXM_JOB_RECORD_VERSION	1

/*
 * The two styles, as --kind names them: "warm" (warm migration) and
 * "sxm" (Storage XenMotion's: the mirror style).
 */
#define SXM_KIND_WARM		"warm"
#define SXM_KIND_MIRROR		"sxm"

struct sxm_job_event {
	int64_t t_ms;			/* Unix time, milliseconds */
	char text[240];
};

struct sxm_job_rec {
	/* What was asked for. */
	char name[SXM_JOB_NAME_MAX + 1];
	char kind[8];			/* SXM_KIND_WARM or SXM_KIND_MIRROR */
	char source[256];		/* --source as given */
	char sink[1024];		/* URI */
	char engine[8];			/* "auto", "uring", "aio" */
	uint64_t cadence_ms;		/* 0: manual */
	uint64_t rate_limit;		/* bytes/s, 0: none */
	uint64_t region_size;		/* bytes */
	uint64_t io_timeout_ms;		/* --io-timeout; 0: the sink's 30 s */
	char metadata[256];		/* --metadata: the map's device, or "" */

	/* The device. */
	enum sxm_src_mode src_mode;
	char device[SXM_DM_NAME_MAX + 1];	/* the sxm device's dm name */
	uint32_t dev_major;		/* ... and number (0:0 until known) */
	uint32_t dev_minor;
	uint64_t size;			/* bytes migrated */
	bool orig_track;		/* existing: it tracked before the job */
	char boot_id[40];		/* the host's boot the device was last
					 * seen in (a reboot since: its track
					 * on the metadata device goes on) */

	/* Where it is. */
	enum sxm_phase phase;
	bool paused;
	bool cancelling;		/* cancel asked, not yet done */
	enum sxm_phase fail_phase;	/* Failed: the phase that failed */
	char reason[512];		/* why it failed (or a cutover did) */
	uint64_t track_id;		/* the kernel's, when tracking began */
	uint64_t full_done;		/* bytes [0, full_done) are on the sink */
	char engine_used[8];		/* the source engine actually used */
	bool sink_zero;			/* the sink read as zeroes at the start */

	/*
	 * The sink's identity (verify.c): what the job found when it
	 * first wrote to it, checked at every connection.
	 */
	bool sink_resync;		/* --on-sink-change resync, else fail */
	uint64_t sink_size;		/* bytes; 0: not known yet */
	uint32_t sink_block_min;	/* its block sizes */
	uint32_t sink_block_max;
	uint64_t sink_checks;		/* identity checks passed */
	uint64_t sink_changes;		/* ... found another sink */
	int64_t sink_checked_ms;	/* the last one passed, 0: none */

	/* The online verify (verify.c). */
	bool no_verify;			/* --no-verify: Completed unverified */
	bool verified_all;		/* Completed with every region verified */
	uint64_t verify_passes;		/* passes done over the device */
	int64_t verify_last_ms;		/* the last one ended, 0: none */
	uint64_t verify_mismatches;	/* regions found differing, repaired */

	/* Metrics. */
	int64_t created_ms;
	int64_t last_sync_ms;		/* end of the last good sync, 0: none */
	uint64_t bytes_full;		/* copied by the full sync */
	uint64_t bytes_incr;		/* copied by incremental syncs */
	uint64_t sync_count;		/* incremental syncs that succeeded */
	uint64_t last_sync_bytes;
	double last_sync_secs;
	double last_rate;		/* bytes/s of the last sync */
	uint64_t cutover_bytes;		/* copied with the source frozen */
	uint64_t verified_bytes;	/* read back and compared in cutover */
	uint64_t downtime_ms;		/* guest I/O held during the cutover */
	int64_t freeze_ms;		/* the last cutover's suspend (Unix ms) */
	uint64_t cutover_failures;
	uint64_t catchup_syncs;		/* run live by the last cutover first */

	/* Mirror style. */
	uint64_t degradations;		/* times the mirror went down */
	uint64_t degraded_ms;		/* how long it was down, in all */
	char degraded_reason[32];	/* why it last went down */
	char degraded_reasons[96];	/* "sink_error:2 helper_detached:1" */

	/* Live (sent, not saved): the daemon fills these in. */
	char op[16];			/* "full sync", "sync", "cutover", "" */
	uint64_t op_done;
	uint64_t op_total;
	double op_rate;
	double op_eta;			/* seconds, < 0: unknown */
	int64_t next_sync_ms;		/* 0: none scheduled */
	int64_t dirty_bytes;		/* dirty or held now, < 0: unknown */
	int64_t lag_ms;			/* since last_sync_ms, < 0: none */
	double rate;			/* running copy's, else last_rate */
	double predicted_downtime;	/* seconds, < 0: unknown */
	uint64_t want_sync;		/* sync: sync_count to wait for */
	bool retrying;			/* retried, not yet settled in a phase */
	uint64_t verified_now;		/* bytes verified equal now */
	uint64_t verify_asked;		/* "verify" requests taken */
	uint64_t verify_answered;	/* ... whose pass is done */
	char mirror[12];		/* the kernel's: off, on, degraded */
	char mirror_reason[32];		/* why it is down now, "" if not */
	uint64_t mirrored_writes;	/* the kernel's counters (saved at */
	uint64_t mirrored_bytes;	/* the cutover, with mirror "off") */
	uint64_t mirror_in_flight;
	uint64_t mirror_held_back;
	uint64_t lat_p50_us;		/* sink latency of mirrored writes */
	uint64_t lat_p99_us;
	/* The metadata device as the kernel's status has it (wire only). */
	char meta_state[12];		/* "active", "failed"; "" unknown */
	uint64_t meta_bits;		/* regions set on it */
	uint64_t meta_writes;		/* blocks written */
	uint64_t meta_write_us;		/* their mean latency */
	char meta_loaded[12];		/* "new", "clean", "unclean", "reset" */
	uint64_t meta_clean_time;	/* Unix s, the last clean shutdown */
	char meta_reason[32];		/* why it failed */

	unsigned int nr_events;
	struct sxm_job_event events[SXM_JOB_EVENTS];
};

const char *sxm_phase_name(enum sxm_phase p);
int sxm_phase_parse(const char *s, enum sxm_phase *p);
const char *sxm_src_mode_name(enum sxm_src_mode m);
/* Completed and Cancelled: nothing more happens to the job. */
bool sxm_phase_final(enum sxm_phase p);
/* Whether @rec is a mirror-style job (SXM_KIND_MIRROR). */
bool sxm_job_is_mirror(const struct sxm_job_rec *rec);

/* A job name: 1..64 of [A-Za-z0-9._+-], not starting with '.' or '-'. */
int sxm_job_name_check(const char *name);

/* "manual" (0), or a duration of at least 1 s: "15m", "1h", "1d", "90s". */
int sxm_cadence_parse(const char *s, uint64_t *ms);
/* "manual", "15m", "90m", "2d", "45s": what sxm_cadence_parse() takes. */
const char *sxm_cadence_str(uint64_t ms, char *buf, size_t len);
/* A duration for people: "1.5 s", "3m 02s", "2h 05m", "3d 4h". */
const char *sxm_duration_str(double secs, char *buf, size_t len);

/*
 * The record file read (sxm_job_rec_parse()): 0, -EINVAL (not a record,
 * or a value that does not parse), or -EPROTONOSUPPORT (a newer format).
 */

/* A fresh record with every default. */
void sxm_job_rec_init(struct sxm_job_rec *j);
/* Append an event, dropping the oldest when full. */
void sxm_job_add_event(struct sxm_job_rec *j, int64_t t_ms,
		       const char *text);

/*
 * Whether @cmd may be applied to @j now: 0, or -errno with the reason in
 * @err (-EBUSY: not now; -EALREADY: nothing to do; -EINVAL: never in
 * this phase).
 */
int sxm_job_check(const struct sxm_job_rec *j, enum sxm_job_cmd cmd,
		  char *err, size_t errlen);

/*
 * Fill the derived metrics of @j (lag_ms, rate, op_eta, predicted_downtime)
 * from its counters, its live progress, dirty_bytes and @now_ms.
 *
 * Predicted downtime of a cutover: the bytes it will copy with the source
 * frozen, copied and read back (twice their size) at the rate of the last
 * sync, plus 0.1 s for the suspend, the flushes and the harvest; unknown
 * before any rate is known.  For a warm job in Ready those bytes are what
 * the cutover's live catch-up leaves, played out with the rate at which
 * the guest dirtied regions since the last sync; for a Mirrored job with
 * the mirror on there are none, and the downtime is two sink round trips
 * at the median latency.
 */
void sxm_job_metrics(struct sxm_job_rec *j, int64_t now_ms);

/*
 * A mirror-style job copies under region locks (of @rs bytes each) in
 * batches.  What the batches so far showed, kept by
 * sxm_mirror_batch_done() (zeroed: nothing yet, as after a degrade):
 */
struct sxm_batch_stat {
	double rate;		/* bytes/s while locked, lately; 0: none yet */
	uint64_t bytes;		/* the last batch: its size, */
	double held;		/* its copy under the locks (s), */
	double waited;		/* the guest's wait, lock request to release */
	double fixed;		/* what any batch holds them for (s) */
	unsigned int since_small;	/* batches since a small one */
};

/*
 * The next batch may hold the locks for SXM_BATCH_SECS of copying at the
 * rate measured, or at @limit (--rate, bytes/s, 0: none) if that is lower;
 * SXM_BATCH_FIRST before any rate; at most SXM_BATCH_MAX; in whole regions,
 * the nearest.  The last batch adjusts it:
 *   - held for longer than that: sized at its own rate, at once;
 *   - the guest waited for less than half of it: the next may be twice as
 *     big.  The rate of small batches is mostly their fixed costs (the
 *     sink's round trips, its flush, the copy's set-up), and taken alone
 *     it would keep them small.
 * Where the fixed cost of a batch (what one of no bytes would hold the
 * locks for: the hold of a batch of one region or of SXM_BATCH_SMALL
 * bytes, lately, never more than the last hold) is more than half of
 * SXM_BATCH_SECS -- a slow machine, a distant sink -- a batch may hold
 * them for twice that: half of each is copying, not one region at a time
 * at the price of a whole batch each.  At most SXM_BATCH_SECS_MAX, or the
 * fixed cost and SXM_BATCH_SECS if that is more.  While that is so, every
 * SXM_BATCH_PROBE batches one is small, to measure the fixed cost again.
 */
#define SXM_BATCH_SECS		0.25
#define SXM_BATCH_SECS_MAX	1.0
#define SXM_BATCH_SMALL		(256ULL << 10)
#define SXM_BATCH_PROBE		8
#define SXM_BATCH_FIRST		(4ULL << 20)
#define SXM_BATCH_MAX		(16ULL << 20)
uint64_t sxm_mirror_batch_bytes(const struct sxm_batch_stat *st,
				double limit, uint64_t rs);
/* A batch of @bytes held its locks @held s; the guest waited @waited s. */
void sxm_mirror_batch_done(struct sxm_batch_stat *st, uint64_t bytes,
			   double held, double waited, uint64_t rs);

/*
 * The warm cutover's live catch-up: syncs run while the guest writes
 * until what is dirty copies in SXM_CATCHUP_TARGET_S at @rate (bytes/s),
 * at most SXM_CATCHUP_MAX of them, and none more once one failed to halve
 * what is dirty (@before: dirty before the last one, -1 before the first).
 * True when it is time to freeze the source.
 */
#define SXM_CATCHUP_MAX		4
#define SXM_CATCHUP_TARGET_S	0.05
bool sxm_job_catchup_done(double dirty, double before, double rate,
			  uint64_t syncs);

/* The record file's text; the caller frees it.  NULL: out of memory. */
char *sxm_job_rec_format(const struct sxm_job_rec *j);
int sxm_job_rec_parse(const char *text, struct sxm_job_rec *j);

/*
 * The wire: one "job key=value ..." line (no newline) with every field
 * the CLI shows, and "event t=.. text=.." lines.  The caller frees.
 */
char *sxm_job_wire_format(const struct sxm_job_rec *j, bool events);
/*
 * Read a "job ..." line into @j (after sxm_job_rec_init()), and "event"
 * lines into its events.  The line is modified.
 */
int sxm_job_wire_parse_line(char *line, struct sxm_job_rec *j);
int sxm_job_wire_parse_event(char *line, struct sxm_job_rec *j);

/* Unix time now, in milliseconds. */
int64_t sxm_now_ms(void);

#endif /* SXM_JOB_H */
