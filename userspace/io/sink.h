/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sinks: where the data goes.  A sink is an NBD export (sink_nbd.c:
 * nbd://, nbds://, nbd+unix://, nbds+unix://) or a plain file or block
 * device (sink_file.c: file:PATH, for tests and local copies).
 *
 * All I/O is asynchronous: a request is queued with a struct sxm_sink_req
 * that the caller owns, and its ->done() runs exactly once, later, from
 * the sink's ->process() (never from inside the call that queued it).  The
 * caller polls the descriptors ->poll_fds() gives it, together with its
 * own, and hands the results to ->process().  sxm_sink_wait() does both
 * for a caller that has nothing else to wait for.
 *
 * Error policy as in sxm.h: functions return 0 or -errno.  Opening fills
 * a caller's buffer with the reason ("sink nbd://h/e: export is
 * read-only") since only the sink knows it; request failures reach ->done()
 * as -errno and the caller, which knows what it asked, names the operation
 * and the offset (see sxm_sink_name()).
 */
#ifndef SXM_SINK_H
#define SXM_SINK_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Capabilities, in sxm_sink.caps; learnt when the sink is opened. */
#define SXM_SINK_CAN_FLUSH	(1u << 0)  /* flush reaches stable storage */
#define SXM_SINK_CAN_FUA	(1u << 1)  /* SXM_SINK_F_FUA honoured */
#define SXM_SINK_CAN_ZERO	(1u << 2)  /* ->zero is efficient */
#define SXM_SINK_CAN_FAST_ZERO	(1u << 3)  /* SXM_SINK_F_FAST_ZERO honoured */
#define SXM_SINK_CAN_TRIM	(1u << 4)  /* ->trim does something */
#define SXM_SINK_MULTI_CONN	(1u << 5)  /* server allows several conns */
#define SXM_SINK_ZERO_INIT	(1u << 6)  /* read as all zeroes at open */
#define SXM_SINK_CAN_READ	(1u << 7)  /* ->pread is there */
#define SXM_SINK_READ_ONLY	(1u << 8)  /* opened for reading only */
#define SXM_SINK_CAN_EXTENTS	(1u << 9)  /* ->extent is there */

/* Request flags. */
#define SXM_SINK_F_FUA		(1u << 0)  /* write through before done */
#define SXM_SINK_F_FAST_ZERO	(1u << 1)  /* zero: -ENOTSUP, not slow */
#define SXM_SINK_F_NO_HOLE	(1u << 2)  /* zero: keep it allocated */

/* Largest request length for ->zero and ->trim (NBD's limit is 4 GiB). */
#define SXM_SINK_MAX_ZERO	(1ULL << 30)

struct sxm_sink;

/* A request the caller owns, usually embedded in a larger struct. */
struct sxm_sink_req {
	/* Called once, from ->process(), with 0 or -errno. */
	void (*done)(struct sxm_sink_req *req, int err);

	/* Private to the sink while the request is queued. */
	struct sxm_sink_req *next;
	struct sxm_sink *sink;
	unsigned int slot;
	bool slow;
	int err;
};

struct sxm_sink_opts {
	uint64_t min_size;	/* refuse an export smaller than this */
	bool read_only;		/* do not require write access */
	bool probe_zero;	/* find out whether it reads as zeroes */
	unsigned int max_conns;	/* NBD multi-conn: 0 = default (4) */
	unsigned int timeout_ms; /* connect and handshake: 0 = 30 s */
	/*
	 * A connection with requests out that has neither answered nor
	 * taken more bytes for this long is given up on: its requests
	 * complete with -ETIMEDOUT and the next goes to another connection
	 * or a new one.  0 = SXM_SINK_IO_TIMEOUT_MS.
	 */
	unsigned int io_timeout_ms;
};

#define SXM_SINK_IO_TIMEOUT_MS	30000

struct sxm_sink_ops {
	const char *name;

	/* Required: true if this implementation takes @uri. */
	bool (*match)(const char *uri);

	/*
	 * Required.  Connect to s->uri (or open it) as @o says, and fill
	 * in s->size, s->caps, s->block_* and s->conns.  On failure write
	 * the reason to @err, release everything and return -errno.
	 */
	int (*open)(struct sxm_sink *s, const struct sxm_sink_opts *o,
		    char *err, size_t errlen);

	/*
	 * Required.  Close it; requests still queued are abandoned and
	 * their ->done() is not called.  Wait for them first if that
	 * matters (sxm_sink_wait()).
	 */
	void (*close)(struct sxm_sink *s);

	/*
	 * Required.  Queue a write of @len bytes from @buf at @off.  @buf
	 * must stay untouched until ->done().  @len is at most
	 * s->block_max, @off and @len multiples of s->block_min.
	 */
	int (*pwrite)(struct sxm_sink *s, const void *buf, size_t len,
		      uint64_t off, unsigned int flags,
		      struct sxm_sink_req *req);

	/*
	 * Optional (SXM_SINK_CAN_ZERO).  Make @len bytes at @off read as
	 * zeroes, @len at most SXM_SINK_MAX_ZERO.  Without
	 * SXM_SINK_F_NO_HOLE the sink may deallocate them.
	 */
	int (*zero)(struct sxm_sink *s, uint64_t len, uint64_t off,
		    unsigned int flags, struct sxm_sink_req *req);

	/* Optional (SXM_SINK_CAN_TRIM).  Discard; contents then undefined. */
	int (*trim)(struct sxm_sink *s, uint64_t len, uint64_t off,
		    unsigned int flags, struct sxm_sink_req *req);

	/*
	 * Required.  Make every write that completed before this call
	 * durable.  Completes at once when the sink cannot flush.  Fails
	 * (-ENOTCONN, once) when some of those writes went to a connection
	 * since lost before a flush covered them: they may be lost too.
	 */
	int (*flush)(struct sxm_sink *s, struct sxm_sink_req *req);

	/* Optional (SXM_SINK_CAN_READ).  Read @len bytes at @off. */
	int (*pread)(struct sxm_sink *s, void *buf, size_t len, uint64_t off,
		     struct sxm_sink_req *req);

	/*
	 * Optional (SXM_SINK_CAN_EXTENTS).  Describe the sink's first extent
	 * at @off before ->done(): *@ext_len bytes (at most @len) that all
	 * read as zeroes (*@zero true) or may not (false).  When it cannot
	 * tell it says "not zero": the answer may be short, never wrong.
	 */
	int (*extent)(struct sxm_sink *s, uint64_t len, uint64_t off,
		      uint64_t *ext_len, bool *zero, struct sxm_sink_req *req);

	/*
	 * Required.  Fill up to @max descriptors to poll and return how
	 * many; lower *@timeout_ms (never raise it) when the sink needs to
	 * run sooner, e.g. to 0 when completions are already waiting.
	 */
	int (*poll_fds)(struct sxm_sink *s, struct pollfd *fds,
			unsigned int max, int *timeout_ms);

	/*
	 * Required.  Act on the @n descriptors from ->poll_fds() after
	 * poll(2) and run the completions that are ready.  Returns 0, or
	 * -ENOTCONN (once) when a connection was lost since the last call:
	 * the requests it had out complete with errors, and the next
	 * request goes to another connection or a new one (NBD reconnects
	 * by itself); or another -errno when the sink itself broke.
	 */
	int (*process)(struct sxm_sink *s, const struct pollfd *fds,
		       unsigned int n);

	/*
	 * Optional.  Set aside connections lost while idle (a server that
	 * closed them) and connect again if none is left, as the next
	 * request would: a new epoch.  0, or -ENOTCONN (none usable).
	 */
	int (*refresh)(struct sxm_sink *s);
};

/* Most descriptors any sink asks to poll (NBD: one per connection). */
#define SXM_SINK_MAX_FDS	8

struct sxm_sink {
	const struct sxm_sink_ops *ops;
	char *uri;		/* as given */
	char *name;		/* for messages */
	uint64_t size;		/* bytes */
	unsigned int caps;	/* SXM_SINK_* */
	uint32_t block_min;	/* offsets and lengths are multiples */
	uint32_t block_pref;	/* efficient request size */
	uint32_t block_max;	/* largest ->pwrite/->pread */
	unsigned int conns;	/* connections in use */
	unsigned int in_flight;	/* requests queued, not yet done */
	/*
	 * Which connections: a number no other sink of this process had,
	 * taken at the open and again at each reconnection (sink_nbd.c),
	 * so that a caller can tell that the server it talks to may have
	 * changed since it last looked (sxm_sink_epoch()).
	 */
	uint64_t epoch;
	void *priv;
};

/* A new epoch for @s: at the open, and when it connects again. */
void sxm_sink_new_epoch(struct sxm_sink *s);

/* @s's epoch; any thread may read it, its user thread sets it. */
static inline uint64_t sxm_sink_epoch(const struct sxm_sink *s)
{
	return __atomic_load_n(&s->epoch, __ATOMIC_ACQUIRE);
}

/*
 * Open the sink @uri (the scheme picks the implementation).  Returns 0
 * and *@out, or -errno with the reason in @err: bad URI, unreachable,
 * read-only, smaller than o->min_size.
 */
int sxm_sink_open(const char *uri, const struct sxm_sink_opts *o,
		  struct sxm_sink **out, char *err, size_t errlen);
void sxm_sink_close(struct sxm_sink *s);

/* The sink's name for messages: its URI. */
static inline const char *sxm_sink_name(const struct sxm_sink *s)
{
	return s->name;
}

/*
 * Poll the sink alone for up to @timeout_ms (-1: until something happens)
 * and run its completions.  Returns 0 or -errno.
 */
int sxm_sink_wait(struct sxm_sink *s, int timeout_ms);

/*
 * Before its user trusts it again: connections lost while nobody looked
 * are replaced now rather than by the next request (->refresh).  0 or
 * -ENOTCONN.
 */
int sxm_sink_refresh(struct sxm_sink *s);

/* Wait until every queued request is done.  Returns 0 or -errno. */
int sxm_sink_drain(struct sxm_sink *s);

/* Synchronous flush, for callers with nothing else to do meanwhile. */
int sxm_sink_flush_sync(struct sxm_sink *s);

/*
 * Whether a request's error @err (-errno) says that its connection is
 * gone (reset, closed, shut down by the server, or given up on since it
 * stopped answering), not that the server refused the request.  Either way it may or may not have reached the
 * server; the next request goes to a live connection.
 */
static inline bool sxm_sink_conn_err(int err)
{
	return err == -ENOTCONN || err == -EPIPE || err == -ECONNRESET ||
	       err == -ESHUTDOWN || err == -ETIMEDOUT;
}

/* Capabilities as words, "flush fua zero ...", into @buf. */
/*
 * For a sink's open (and each reconnect): -ENOSPC, said in @err, if @s is
 * smaller than @o->min_size; @what is the sink's kind ("export", "file").
 */
int sxm_sink_check_size(const struct sxm_sink *s,
			const struct sxm_sink_opts *o, const char *what,
			char *err, size_t errlen);

const char *sxm_sink_caps_str(unsigned int caps, char *buf, size_t len);

/*
 * For implementations: completions are collected on a list as they
 * arrive and run from ->process(), so that ->done() never runs inside a
 * call that queues a request.
 */
struct sxm_sink_done_list {
	struct sxm_sink_req *head;
	struct sxm_sink_req **tail;
};

static inline void sxm_sink_done_init(struct sxm_sink_done_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static inline void sxm_sink_done_push(struct sxm_sink_done_list *l,
				      struct sxm_sink_req *req, int err)
{
	req->err = err;
	req->next = NULL;
	*l->tail = req;
	l->tail = &req->next;
}

/* Run every completion on @l; s->in_flight counts them down. */
void sxm_sink_done_run(struct sxm_sink *s, struct sxm_sink_done_list *l);

/* The implementations, for sink.c. */
extern const struct sxm_sink_ops sxm_sink_nbd_ops;
extern const struct sxm_sink_ops sxm_sink_file_ops;

#endif /* SXM_SINK_H */
