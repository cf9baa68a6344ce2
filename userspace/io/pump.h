/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mirror pump: drains the kernel's mirror ring (include/uapi/linux/
 * dm-sxm.h, "The mirror ring") into a sink, many requests in flight, and
 * posts a completion for each entry once the sink has it.
 *
 * One pump per attached helper file.  It runs its own poll loop
 * (sxm_pump_run(), in a thread of its own) on a sink connection of its
 * own, so that the bulk copy, on another connection, never delays a guest
 * write.  Every other function may be called from any thread.
 *
 * Each sqe becomes one or more sink requests: a write (with FUA when the
 * sqe asks and the sink can; else the write and then a flush), a flush,
 * or write-zeroes for both write-zeroes and discard (a discarded range
 * reads as zeroes on the sources dm-sxm runs on — LVM, loop, files — and
 * so it must on the sink too; zeroes are written out where the sink has no
 * zero command).  The kernel never posts overlapping entries at once, so
 * all of them go out as they come.  A sink error completes the entry with
 * that error: the kernel then marks its regions dirty and stops mirroring.
 *
 * When mirroring stops for any reason (the "degraded" status), the kernel
 * forgets every entry in flight and marks its regions dirty.  The pump
 * cannot tell by itself, so the helper calls sxm_pump_drop() once it sees
 * the mirror degraded: entries not yet taken are skipped, those in flight
 * finish at the sink without a completion, and sxm_pump_dropped() says
 * when none is left.  Only then may the regions they wrote be copied
 * again: an old write that reached the sink after the copy would undo it.
 * (A completion the pump posts for an abandoned entry before the drop is
 * consumed and ignored by the kernel.)
 *
 * Error policy as in sxm.h.
 */
#ifndef SXM_MIRROR_H
#define SXM_MIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/dm-sxm.h>

struct sxm_sink;
struct sxm_pump;

/*
 * Latency histogram: log-linear, 8 buckets per power of two of
 * microseconds (values below 8 µs exact), so a quantile is read to within
 * 12.5 %.
 */
#define SXM_PUMP_LAT_SUB	8
#define SXM_PUMP_LAT_BUCKETS	(SXM_PUMP_LAT_SUB * 44)

struct sxm_pump_stats {
	uint64_t entries;		/* entries completed (all ops) */
	uint64_t writes;		/* of those, writes */
	uint64_t bytes;			/* bytes of those writes */
	uint64_t zeroes;		/* write-zeroes and discards */
	uint64_t flushes;
	uint64_t errors;		/* completed with an error */
	uint64_t dropped;		/* abandoned by the kernel, not completed */
	uint32_t in_flight;		/* taken, not yet done at the sink */
	uint32_t stale;			/* of those, abandoned (after a drop) */
	uint64_t lat[SXM_PUMP_LAT_BUCKETS];	/* completed entries */
};

/*
 * Set up the ring on @kfd (attached as the helper) and map it.  @entries,
 * @slot_bytes, @timeout_ms: 0 for the kernel's defaults.  The ring lives
 * as long as the attach: one pump per attached file.
 */
int sxm_pump_open(int kfd, uint32_t entries, uint32_t slot_bytes,
		  uint32_t timeout_ms, struct sxm_pump **out);

/* The ring's geometry as the kernel set it up. */
const struct sxm_ring_setup *sxm_pump_geometry(const struct sxm_pump *p);

/*
 * Serve the ring into @sink until *@stop is set (looked at every 100 ms,
 * or at once after sxm_pump_kick()), the sink loses a connection
 * (-ENOTCONN, reset or closed by a server that went away: the requests
 * it had out completed with an error, so the kernel degrades; returned
 * once no request is out, none taken meanwhile), the sink breaks (its
 * -errno: every request still queued has been completed with an error)
 * or the ring does (-EIO: the kernel refused the completions; -ENXIO: no
 * ring).  Requests may still be out when it returns for *@stop: run it
 * again with the same sink to finish them, or close the sink and call
 * sxm_pump_forget().  @sink's block_max must be at least the ring's slot
 * size.
 */
int sxm_pump_run(struct sxm_pump *p, struct sxm_sink *sink,
		 const bool *stop);

/* Wake sxm_pump_run() now, e.g. after setting its *stop. */
void sxm_pump_kick(struct sxm_pump *p);

/*
 * Call @fn(@arg) from sxm_pump_run()'s thread each time the kernel says
 * the mirror's state changed (SXM_F_EVENTS: it went down, or on again),
 * once the pump has read the new state (which acknowledges the event).  So
 * the helper learns of a degrade at once, not at its next look at the
 * status.  Set it before sxm_pump_run(); @fn must not wait for the pump.
 */
void sxm_pump_on_event(struct sxm_pump *p, void (*fn)(void *arg), void *arg);

/* Mirror state changes the pump has seen (and passed on) so far. */
uint64_t sxm_pump_events(struct sxm_pump *p);

/* Mirroring is down: abandon what the kernel abandoned (see above). */
void sxm_pump_drop(struct sxm_pump *p);
/* Whether the last drop is done: nothing abandoned is left at the sink. */
bool sxm_pump_dropped(struct sxm_pump *p);

/*
 * The pump's sink was closed with requests out (their completions will
 * never come) and sxm_pump_run() is not running: forget them, and every
 * entry not yet taken.  Call it only while mirroring is down.
 */
void sxm_pump_forget(struct sxm_pump *p);

/* A consistent copy of the counters. */
void sxm_pump_get_stats(struct sxm_pump *p, struct sxm_pump_stats *st);

/* The latency at quantile @q (0.5, 0.99) in microseconds; 0 if none. */
uint64_t sxm_pump_latency_us(const struct sxm_pump_stats *st, double q);

/* Unmap and free; the ring goes when the helper file is closed. */
void sxm_pump_close(struct sxm_pump *p);

#endif /* SXM_MIRROR_H */
