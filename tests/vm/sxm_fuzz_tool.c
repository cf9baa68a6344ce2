// SPDX-License-Identifier: GPL-2.0
/*
 * sxm_fuzz_tool: an ABI stress fuzzer for the kernel side of dm-sxm.
 *
 * Against a live sxm target (dmsetup name --device; a verifying fio load
 * started by the caller writes its first --fio-bytes), several processes
 * of several threads each drive /dev/dm-sxm with random sequences of valid
 * and invalid operations: attach as helper or observer (wrong device
 * numbers, a second helper, bad structs), close while other threads are in
 * ioctls, ring set-up with random geometry, mmap/munmap/mremap/mprotect/
 * madvise of the ring, random writes into the shared ring and honest
 * completions of its sqes (so that the mirror makes progress part of the
 * time), SXM_IOC_RING_ENTER, region locks (random, overlapping and
 * duplicated ranges), harvest/ack/mark dirty with random maps, wrong sizes
 * and bad pointers, peeks from observers, mirror on/off, fork with the
 * files open.  Another process races dm operations against them (suspend/
 * resume, reload of the same table, messages, status; remove and recreate
 * near the end, once fio --fio-pid has exited: while it runs it may
 * have the device closed for a moment, between two of its phases; the
 * run goes on up to --stuck seconds past its time for that), and a writer process writes, flushes, discards and
 * zeroes the part of the device fio leaves alone, reading back what it
 * wrote.
 *
 * Each worker process alternates "calm" phases (mostly a well-behaved
 * helper: pump, locks taken and released, harvests, acks) and "chaos"
 * phases (everything).  --seed N replays a run's choices (each thread
 * derives its own seed; the interleaving is the machine's).
 *
 * Nothing here blocks for ever: every operation runs under a watchdog (the
 * main process) that reports "stuck in <op>" with the thread's kernel
 * stack after --stuck seconds and ends the run; the kernel's own log is
 * followed (/dev/kmsg) and any Oops, BUG, WARNING, lockdep, KASAN or
 * hung-task report is shown with the operation the reporting thread was
 * in.  Output: "# " lines (TAP diagnostics), progress every 10 s, the
 * iteration counts at the end, and with --results FILE a key=value
 * summary.  Exit status: 0 clean; 1 something failed (see the summary).
 *
 * usage: sxm_fuzz_tool --device NAME [--duration SECS] [--seed N]
 *        [--procs N] [--threads N] [--stuck SECS] [--fio-bytes BYTES]
 *        [--fio-pid PID] [--no-KIND ...] [--skip KIND,...] [--only KIND,...]
 *        [--results FILE] [--keep-going] [--list]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/dm-sxm.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct sxm_attach) == SXM_ATTACH_SIZE, "abi");
_Static_assert(sizeof(struct sxm_harvest) == SXM_HARVEST_SIZE, "abi");
_Static_assert(sizeof(struct sxm_regions) == SXM_REGIONS_SIZE, "abi");
_Static_assert(sizeof(struct sxm_info) == SXM_INFO_SIZE, "abi");
_Static_assert(sizeof(struct sxm_ring_hdr) == SXM_RING_HDR_SIZE, "abi");
_Static_assert(sizeof(struct sxm_sqe) == SXM_SQE_SIZE, "abi");
_Static_assert(sizeof(struct sxm_cqe) == SXM_CQE_SIZE, "abi");
_Static_assert(sizeof(struct sxm_ring_setup) == SXM_RING_SETUP_SIZE, "abi");
_Static_assert(sizeof(struct sxm_mirror) == SXM_MIRROR_SIZE, "abi");
_Static_assert(sizeof(struct sxm_lock) == SXM_LOCK_SIZE, "abi");

#define PG		4096UL

/* The feature bits this header knows (the kernel built with it too). */
#ifdef SXM_F_EVENTS
#define KNOWN_F		(SXM_F_TRACK | SXM_F_MARK_DIRTY | SXM_F_TRACK_ID | \
			 SXM_F_HOLD | SXM_F_EVENTS | SXM_F_MIRROR)
#else
#define KNOWN_F		(SXM_F_TRACK | SXM_F_MARK_DIRTY | SXM_F_TRACK_ID | \
			 SXM_F_HOLD | SXM_F_MIRROR)
#endif
#define CTL_PATH	"/dev/" SXM_MISC_NAME

/* ------------------------------------------------------------------------
 * Operation kinds: name, weight in chaos phases, weight in calm phases.
 * The dm-* kinds run in the dm process, write in the writer process.
 * ------------------------------------------------------------------------
 */
#define OPS(X)							\
	X(OPEN_HELPER,   "open-helper",   4, 3)			\
	X(OPEN_OBSERVER, "open-observer", 3, 1)			\
	X(ATTACH_BAD,    "attach-bad",    3, 0)			\
	X(CLOSE,         "close",         3, 0)			\
	X(RING_SETUP,    "ring-setup",    4, 1)			\
	X(MMAP,          "mmap",          4, 1)			\
	X(MUNMAP,        "munmap",        2, 0)			\
	X(POKE,          "poke",          4, 0)			\
	X(PUMP,          "pump",          5, 8)			\
	X(ENTER,         "enter",         3, 2)			\
	X(POLL,          "poll",          2, 2)			\
	X(LOCK,          "lock",          7, 10)		\
	X(DUP_RELEASE,   "dup-release",   1, 0)			\
	X(HARVEST,       "harvest",       5, 5)			\
	X(PEEK,          "peek",          3, 3)			\
	X(ACK,           "ack",           3, 3)			\
	X(MARK,          "mark",          3, 2)			\
	X(INFO,          "info",          3, 2)			\
	X(MIRROR,        "mirror",        4, 4)			\
	X(BAD_IOCTL,     "bad-ioctl",     3, 0)			\
	X(FORK,          "fork",          1, 0)			\
	X(DM_SUSPEND,    "dm-suspend",    3, 3)			\
	X(DM_RELOAD,     "dm-reload",     2, 2)			\
	X(DM_MESSAGE,    "dm-message",    4, 4)			\
	X(DM_STATUS,     "dm-status",     3, 3)			\
	X(DM_RECREATE,   "dm-recreate",   0, 0)			\
	X(WRITE,         "write",         0, 0)

enum op {
#define X(e, n, w, c) OP_##e,
	OPS(X)
#undef X
	NR_OPS
};

static const struct {
	const char *name;
	int w, calm;
} opinfo[NR_OPS] = {
#define X(e, n, w, c) [OP_##e] = { n, w, c },
	OPS(X)
#undef X
};

#define FIRST_WORKER_OP	OP_OPEN_HELPER
#define LAST_WORKER_OP	OP_FORK

/* Events worth counting, shown in the summary. */
#define EVS(X)							\
	X(HELPER_ATTACHED, "helper attached")			\
	X(HELPER_BUSY,     "second helper refused (EBUSY)")	\
	X(RING_SET_UP,     "rings set up")			\
	X(RING_MAPPED,     "rings mapped")			\
	X(MIRROR_ON,       "mirror turned on")			\
	X(HONEST_CQES,     "honest completions")		\
	X(REAPED,          "completions reaped")		\
	X(ENTER_EIO,       "ring enter EIO (degraded)")	\
	X(LOCKS_TAKEN,     "lock calls granted")		\
	X(LOCKS_RELEASED,  "lock releases granted")		\
	X(DUP_RELEASES,    "duplicate-range releases sent")	\
	X(HARVESTS,        "harvests")				\
	X(FAULTS,          "own faults caught (SIGSEGV/SIGBUS)")\
	X(CHILDREN,        "forked children")			\
	X(CHILD_KILLED,    "children killed (late)")		\
	X(SUSPENDS,        "suspend/resume")			\
	X(RELOADS,         "reloads")				\
	X(REMOVE_BUSY,     "remove refused (busy)")		\
	X(REMOVE_WAITED,   "remove waited for fio to end")	\
	X(RECREATED,       "removed and recreated")		\
	X(WRITES,          "writer I/Os")			\
	X(DEGRADED_LOG,    "\"mirror degraded\" in the log")

enum ev {
#define X(e, n) EV_##e,
	EVS(X)
#undef X
	NR_EVS
};

static const char *const evnames[NR_EVS] = {
#define X(e, n) [EV_##e] = n,
	EVS(X)
#undef X
};

/* ------------------------------------------------------------------------
 * State shared by every process (one MAP_SHARED mapping made before fork)
 * ------------------------------------------------------------------------
 */
#define MAX_W		72
#define HIST		8
#define MAX_UNEXP	64

struct wstat {
	int used, pid, tid;
	char name[24];
	int op;				/* running now, or -1 */
	int64_t op_start;		/* ms */
	char desc[120];
	int hist[HIST];
	unsigned int hist_n;
	int stuck_reported, died_reported;
	int exited;			/* the thread returned */
	int nowait;			/* in a call that must not wait */
	int64_t step_start;		/* ms */
	int heldup_reported;
	uint64_t n[NR_OPS], err[NR_OPS];
	int64_t maxms[NR_OPS];
};

struct shared {
	int stop, endgame, abort_run, killing, recreate_done;
	int64_t t0;
	uint64_t seed;
	int enabled[NR_OPS];
	struct wstat w[MAX_W];
	uint64_t ev[NR_EVS];
	uint64_t unexpected, stuck, died, kernel, setup_err, writer_mismatch,
		 writer_err, dm_fail, held_up;
	int unexp_seen[NR_OPS][32];
	char status[320];
	char degrade_reasons[512];
};

static struct shared *sh;

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------
 */
static const char *dm_name;
static char dm_path[256];
static int duration = 60, nprocs = 2, nthreads = 4, stuck_secs = 60;
static int keep_going;
static uint64_t seed, fio_bytes = 48ULL << 20;
static pid_t fio_pid;
static const char *results_path;

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------
 */
static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static double elapsed(void)
{
	return (now_ms() - sh->t0) / 1000.0;
}

static void say(const char *fmt, ...)
{
	char b[1200];
	va_list ap;
	int n;

	b[0] = '#';
	b[1] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(b + 2, sizeof(b) - 3, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n += 2;
	if (n > (int)sizeof(b) - 2)
		n = sizeof(b) - 2;
	b[n++] = '\n';
	(void)!write(1, b, n);
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int stopping(void)
{
	return __atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE);
}

static void ev(int e, uint64_t n)
{
	__atomic_fetch_add(&sh->ev[e], n, __ATOMIC_RELAXED);
}

/* splitmix64: one state per thread, derived from the run's seed. */
static __thread uint64_t rng_state;

static uint64_t rnext(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t n)
{
	return n ? rnext() % n : 0;
}

static int chance(int pct)
{
	return (int)rnd(100) < pct;
}

static void seed_thread(uint64_t a, uint64_t b)
{
	rng_state = seed ^ (a * 0x100000001b3ULL) ^ (b << 40) ^ 0x5bd1e995;
	rnext();
}

/* A value from the edges of u32, or near @base. */
static uint32_t wild32(uint32_t base)
{
	static const uint32_t edge[] = { 0, 1, 2, 0x7fffffff, 0x80000000,
					 0xffffffff, 0xfffffffe, 4096, 65536 };

	switch (rnd(4)) {
	case 0:
		return edge[rnd(sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return (uint32_t)rnext();
	default:
		return base + (uint32_t)rnd(9) - 4;
	}
}

/* ------------------------------------------------------------------------
 * Operation tracking for the watchdog
 * ------------------------------------------------------------------------
 */
static __thread struct wstat *me;

static void op_note(const char *fmt, ...)
{
	va_list ap;

	if (!me)
		return;
	va_start(ap, fmt);
	vsnprintf(me->desc, sizeof(me->desc), fmt, ap);
	va_end(ap);
}

/*
 * A step that must not wait for anything (a lock release, a ring enter:
 * nothing else on the file may hold them up).  Ended by nowait_end().
 * Reported "held up" after --stuck / 20 seconds (3 s by default).
 */
static void nowait_begin(const char *fmt, ...)
{
	va_list ap;

	if (!me)
		return;
	va_start(ap, fmt);
	vsnprintf(me->desc, sizeof(me->desc), fmt, ap);
	va_end(ap);
	me->step_start = now_ms();
	__atomic_store_n(&me->nowait, 1, __ATOMIC_RELEASE);
}

static void nowait_end(void)
{
	if (me)
		__atomic_store_n(&me->nowait, 0, __ATOMIC_RELEASE);
}

static void op_begin(int op, const char *fmt, ...)
{
	va_list ap;

	if (!me)
		return;
	va_start(ap, fmt);
	vsnprintf(me->desc, sizeof(me->desc), fmt, ap);
	va_end(ap);
	__atomic_store_n(&me->op_start, now_ms(), __ATOMIC_RELAXED);
	me->heldup_reported = 0;
	__atomic_store_n(&me->op, op, __ATOMIC_RELEASE);
}

static void op_end(int op, int ok)
{
	int64_t d;

	if (!me)
		return;
	d = now_ms() - me->op_start;
	me->n[op]++;
	if (!ok)
		me->err[op]++;
	if (d > me->maxms[op])
		me->maxms[op] = d;
	me->hist[me->hist_n++ % HIST] = op;
	__atomic_store_n(&me->op, -1, __ATOMIC_RELEASE);
}

static void register_me(int idx, const char *fmt, ...)
{
	va_list ap;

	me = &sh->w[idx];
	memset(me, 0, sizeof(*me));
	me->pid = getpid();
	me->tid = gettid();
	me->op = -1;
	va_start(ap, fmt);
	vsnprintf(me->name, sizeof(me->name), fmt, ap);
	va_end(ap);
	__atomic_store_n(&me->used, 1, __ATOMIC_RELEASE);
}

/*
 * An invalid request the kernel accepted: counted, and said once per
 * (kind, case).
 */
static void unexpected(int op, int code, const char *fmt, ...)
{
	char b[300];
	va_list ap;

	__atomic_fetch_add(&sh->unexpected, 1, __ATOMIC_RELAXED);
	if (__atomic_fetch_add(&sh->unexp_seen[op][code & 31], 1,
			       __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	say("UNEXPECTED: %s: %s (t=%.1fs)", opinfo[op].name, b, elapsed());
}

/* The request is invalid whatever the state: it must fail. */
#define MUST_FAIL(op, code, r, ...)					\
	do {								\
		if ((r) == 0)						\
			unexpected(op, code, __VA_ARGS__);		\
	} while (0)

/* ------------------------------------------------------------------------
 * Faults in our own memory (a ring unmapped under a poke, MADV_DONTNEED
 * on the ring, a child without the mapping): caught, counted, survived.
 * ------------------------------------------------------------------------
 */
static __thread sigjmp_buf *guard_jb;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (guard_jb)
		siglongjmp(*guard_jb, sig);
	signal(sig, SIG_DFL);
}

static int guarded(void (*fn)(void *), void *arg)
{
	sigjmp_buf jb;
	sigjmp_buf *volatile old = guard_jb;

	if (sigsetjmp(jb, 1)) {
		guard_jb = old;
		ev(EV_FAULTS, 1);
		return -1;
	}
	guard_jb = &jb;
	fn(arg);
	guard_jb = old;
	return 0;
}

/* ------------------------------------------------------------------------
 * A worker process's files ("slots"), shared by its threads
 * ------------------------------------------------------------------------
 */
#define NSLOTS		6
#define MAXMAPS		4
#define MAXHELD		512

enum { R_NONE, R_HELPER, R_OBSERVER };

struct mapping {
	uint8_t *addr;
	size_t len;
	size_t off;			/* ring offset of addr */
	int prot, shared, broken, orphan;
	struct sxm_ring_setup geo;	/* entries 0: unknown */
};

struct slot {
	pthread_mutex_t mu;		/* fd, role, ring, held, maps list */
	pthread_mutex_t pump_mu;	/* one honest pump at a time */
	pthread_rwlock_t maprw;		/* ring memory use vs. unmapping */
	int fd, role, ring;
	unsigned int gen;		/* bumped at each open */
	uint64_t nr_regions, map_bytes;
	struct sxm_ring_setup geo;
	struct mapping maps[MAXMAPS];
	int nmaps;
	struct sxm_lock_range held[MAXHELD];
	int nheld;
};

static struct slot slots[NSLOTS];
static int proc_idx;
static volatile int calm = 1;
static uint8_t *bad_area;	/* 0-4 rw, 5 none, 6 ro (valid structs), 7 gone */
static uint64_t def_regions = 16384;

#define BA_NONE		(bad_area + 5 * PG)
#define BA_RO		(bad_area + 6 * PG)
#define BA_GONE		(bad_area + 7 * PG)
#define RO_ATTACH	0
#define RO_INFO		256
#define RO_HARVEST	512

static __thread uint64_t *tmap;		/* this thread's map buffer */
#define TMAP_BYTES	(1 << 20)

static void lock(pthread_mutex_t *m)
{
	pthread_mutex_lock(m);
}

static void unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}

static int slot_index(struct slot *s)
{
	return (int)(s - slots);
}

/* Mostly a slot with a file open (a call on no file tests little). */
static struct slot *any_slot(void)
{
	int i, k = (int)rnd(NSLOTS);

	if (slots[k].fd < 0 && chance(90))
		for (i = 1; i < NSLOTS; i++)
			if (slots[(k + i) % NSLOTS].fd >= 0)
				return &slots[(k + i) % NSLOTS];
	return &slots[k];
}

/* The slot that is a helper with a ring, if there is one. */
static struct slot *helper_slot(void)
{
	int i, k = (int)rnd(NSLOTS);

	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[(k + i) % NSLOTS];

		if (s->role == R_HELPER && s->ring)
			return s;
	}
	return any_slot();
}

/* In calm phases mostly the slot that is a helper with a ring. */
static struct slot *pick_slot(void)
{
	int i, k = (int)rnd(NSLOTS);

	if (calm && chance(80))
		for (i = 0; i < NSLOTS; i++) {
			struct slot *s = &slots[(k + i) % NSLOTS];

			if (s->role == R_HELPER && s->ring)
				return s;
		}
	return any_slot();
}

static void slot_get(struct slot *s, int *fd, int *role, uint64_t *nr,
		     uint64_t *mb, unsigned int *gen)
{
	lock(&s->mu);
	*fd = s->fd;
	if (role)
		*role = s->role;
	if (nr)
		*nr = s->nr_regions ? s->nr_regions : def_regions;
	if (mb)
		*mb = s->map_bytes ? s->map_bytes : (def_regions + 63) / 64 * 8;
	if (gen)
		*gen = s->gen;
	unlock(&s->mu);
}

/* With s->mu held: unmap everything (or leave it as orphans). */
static void slot_drop_maps(struct slot *s, int keep)
{
	int i;

	pthread_rwlock_wrlock(&s->maprw);
	if (keep) {
		for (i = 0; i < s->nmaps; i++)
			s->maps[i].orphan = 1;
	} else {
		for (i = 0; i < s->nmaps; i++)
			munmap(s->maps[i].addr, s->maps[i].len);
		s->nmaps = 0;
	}
	pthread_rwlock_unlock(&s->maprw);
}

/* With s->mu held. */
static void slot_close(struct slot *s, int keep_maps)
{
	if (s->fd < 0)
		return;
	slot_drop_maps(s, keep_maps);
	close(s->fd);
	s->fd = -1;
	s->role = R_NONE;
	s->ring = 0;
	s->nheld = 0;
	memset(&s->geo, 0, sizeof(s->geo));
}

static int dev_numbers(unsigned int *maj, unsigned int *min)
{
	struct stat st;

	if (stat(dm_path, &st) || !S_ISBLK(st.st_mode))
		return -1;
	*maj = major(st.st_rdev);
	*min = minor(st.st_rdev);
	return 0;
}

static uint64_t rand_features(void)
{
	uint64_t f = KNOWN_F;

	return chance(80) ? f : f & rnext();
}

static int attach_fd(int fd, uint32_t flags, struct sxm_attach *a)
{
	unsigned int ma, mi;

	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = flags;
	a->features = rand_features();
	if (dev_numbers(&ma, &mi)) {
		errno = ENODEV;
		return -1;
	}
	a->dev_major = ma;
	a->dev_minor = mi;
	return ioctl(fd, SXM_IOC_ATTACH, a);
}

/* ------------------------------------------------------------------------
 * The ring in our memory
 * ------------------------------------------------------------------------
 */
static void *ring_at(struct mapping *m, uint64_t off, size_t len)
{
	if (off < m->off || off + len > m->off + m->len)
		return NULL;
	return m->addr + (off - m->off);
}

static volatile uint32_t *ring_u32(struct mapping *m, size_t field)
{
	return ring_at(m, field, 4);
}

#define HDR_OFF(f)	offsetof(struct sxm_ring_hdr, f)

/* A mapping the honest pump can use (with maprw held for reading). */
static struct mapping *pump_mapping(struct slot *s)
{
	int i;

	for (i = 0; i < s->nmaps; i++) {
		struct mapping *m = &s->maps[i];

		if (m->shared && (m->prot & PROT_WRITE) && !m->off &&
		    !m->broken && !m->orphan && m->geo.entries &&
		    m->len >= m->geo.mmap_bytes)
			return m;
	}
	return NULL;
}

struct pump_arg {
	struct mapping *m;
	uint32_t posted;
	int rearm;
};

/*
 * One honest round: every sqe between sq_head and sq_tail gets a cqe with
 * its id and status 0.  Indices someone scribbled on are repaired first
 * (the kernel has degraded or will).
 */
static void pump_round(void *arg)
{
	struct pump_arg *pa = arg;
	struct mapping *m = pa->m;
	struct sxm_ring_hdr *h = (void *)m->addr;
	struct sxm_sqe *sq = (void *)(m->addr + m->geo.sq_off);
	struct sxm_cqe *cq = (void *)(m->addr + m->geo.cq_off);
	uint32_t ents = m->geo.entries, mask = ents - 1;
	uint32_t head, tail, cqt, cqh;

	tail = __atomic_load_n(&h->sq_tail, __ATOMIC_ACQUIRE);
	head = h->sq_head;
	cqh = __atomic_load_n(&h->cq_head, __ATOMIC_ACQUIRE);
	cqt = h->cq_tail;
	if (pa->rearm) {
		/* Before the mirror goes on again: skip the stale sqes. */
		__atomic_store_n(&h->cq_tail, cqh, __ATOMIC_RELEASE);
		__atomic_store_n(&h->sq_head, tail, __ATOMIC_RELEASE);
		return;
	}
	if (tail - head > ents)
		head = tail;
	if (cqt - cqh > ents)
		cqt = cqh;
	while (head != tail && cqt - cqh < ents) {
		struct sxm_sqe *e = &sq[head & mask];
		struct sxm_cqe *c = &cq[cqt & mask];

		c->id = e->id;
		c->status = 0;
		c->reserved = 0;
		head++;
		cqt++;
		pa->posted++;
	}
	__atomic_store_n(&h->cq_tail, cqt, __ATOMIC_RELEASE);
	__atomic_store_n(&h->sq_head, head, __ATOMIC_RELEASE);
}

/*
 * Pump slot @s honestly for about @ms: completions, then RING_ENTER.
 * Returns how many cqes were posted, -1 if the slot cannot be pumped.
 */
static int pump_slot(struct slot *s, int ms, int rearm_on_eio)
{
	struct pump_arg pa = { 0 };
	int fd, role, total = 0, eio = 0;
	int64_t end = now_ms() + ms;
	struct pollfd pfd;

	slot_get(s, &fd, &role, NULL, NULL, NULL);
	if (fd < 0 || role != R_HELPER)
		return -1;
	if (pthread_mutex_trylock(&s->pump_mu))
		return -1;
	pthread_rwlock_rdlock(&s->maprw);
	pa.m = pump_mapping(s);
	if (!pa.m) {
		pthread_rwlock_unlock(&s->maprw);
		unlock(&s->pump_mu);
		return -1;
	}
	op_begin(OP_PUMP, "pump slot %d fd %d for %d ms", slot_index(s), fd, ms);
	do {
		long r;

		pa.posted = 0;
		if (guarded(pump_round, &pa)) {
			pa.m->broken = 1;
			break;
		}
		total += pa.posted;
		r = ioctl(fd, SXM_IOC_RING_ENTER);
		if (r > 0)
			ev(EV_REAPED, r);
		if (r < 0 && errno == EIO)
			eio = 1;
		if (r < 0 && errno != EIO)
			break;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (!pa.posted)
			poll(&pfd, 1, 10);
	} while (now_ms() < end && !stopping() && !eio);
	if (eio && rearm_on_eio) {
		pa.rearm = 1;
		guarded(pump_round, &pa);
	}
	pthread_rwlock_unlock(&s->maprw);
	unlock(&s->pump_mu);
	ev(EV_HONEST_CQES, total);
	if (eio) {
		ev(EV_ENTER_EIO, 1);
		if (rearm_on_eio) {
			struct sxm_mirror mi = { .size = sizeof(mi), .on = 1 };

			op_note("pump slot %d: mirror on after EIO", slot_index(s));
			if (!ioctl(fd, SXM_IOC_MIRROR, &mi))
				ev(EV_MIRROR_ON, 1);
		}
	}
	op_end(OP_PUMP, !eio);
	return total;
}

/* Skip stale sqes, then the mirror on: what a helper does after a degrade. */
static int rearm_and_mirror(struct slot *s, int fd)
{
	struct sxm_mirror mi = { .size = sizeof(mi), .on = 1 };
	struct pump_arg pa = { .rearm = 1 };
	int r;

	if (!pthread_mutex_trylock(&s->pump_mu)) {
		pthread_rwlock_rdlock(&s->maprw);
		pa.m = pump_mapping(s);
		if (pa.m && guarded(pump_round, &pa))
			pa.m->broken = 1;
		pthread_rwlock_unlock(&s->maprw);
		unlock(&s->pump_mu);
	}
	r = ioctl(fd, SXM_IOC_MIRROR, &mi);
	if (!r)
		ev(EV_MIRROR_ON, 1);
	return r;
}

struct poke_arg {
	struct mapping *m;
	int kind;
};

static void poke_fn(void *arg)
{
	struct poke_arg *pk = arg;
	struct mapping *m = pk->m;
	uint32_t ents = m->geo.entries ? m->geo.entries : 8;
	uint32_t mask = ents - 1;
	volatile uint32_t *sqh = ring_u32(m, HDR_OFF(sq_head));
	volatile uint32_t *sqt = ring_u32(m, HDR_OFF(sq_tail));
	volatile uint32_t *cqh = ring_u32(m, HDR_OFF(cq_head));
	volatile uint32_t *cqt = ring_u32(m, HDR_OFF(cq_tail));
	uint32_t t = sqt ? *sqt : 0, ch = cqh ? *cqh : 0;
	struct sxm_cqe *c;
	struct sxm_sqe *e;
	uint64_t off;
	uint8_t *p;
	size_t i, n;

	switch (pk->kind) {
	case 0:		/* the helper's sq_head: near the tail, or anything */
		if (sqh)
			__atomic_store_n(sqh, chance(50) ? t + (uint32_t)rnd(ents + 4) - 2
						  : wild32(t), __ATOMIC_RELEASE);
		break;
	case 1:		/* cq_tail past what was written */
		if (cqt)
			__atomic_store_n(cqt, chance(50) ? ch + (uint32_t)rnd(ents + 4)
						  : wild32(ch), __ATOMIC_RELEASE);
		break;
	case 2:		/* a cqe with a made-up id and status */
	case 3:		/* a cqe for a real (maybe stale or repeated) sqe */
	case 7:		/* an honest cqe with its reserved field set */
	case 8:		/* an honest cqe, twice */
		if (!cqt || !m->geo.entries)
			break;
		c = ring_at(m, m->geo.cq_off + (uint64_t)(*cqt & mask) *
			    sizeof(*c), sizeof(*c));
		e = ring_at(m, m->geo.sq_off + (uint64_t)((sqh ? *sqh : t) &
			    mask) * sizeof(*e), sizeof(*e));
		if (!c)
			break;
		if (pk->kind == 2) {
			c->id = chance(50) ? rnext() :
				(rnd(1000) << 16) | rnd(ents + 2);
			c->status = chance(50) ? 0 : (int32_t)wild32(-5);
			c->reserved = chance(20) ? (uint32_t)rnext() : 0;
		} else {
			if (!e)
				break;
			c->id = e->id;
			c->status = pk->kind == 3 && chance(40) ?
				    (int32_t)wild32(-5) : 0;
			c->reserved = pk->kind == 7 ? (uint32_t)rnext() | 1 : 0;
		}
		__atomic_store_n(cqt, *cqt + 1, __ATOMIC_RELEASE);
		if (pk->kind == 8) {
			struct sxm_cqe *c2 = ring_at(m, m->geo.cq_off +
				(uint64_t)(*cqt & mask) * sizeof(*c2), sizeof(*c2));

			if (c2) {
				*c2 = *c;
				__atomic_store_n(cqt, *cqt + 1, __ATOMIC_RELEASE);
			}
		}
		break;
	case 4:		/* scribble over the kernel's sqes */
		if (!m->geo.entries)
			break;
		n = 1 + rnd(4);
		for (i = 0; i < n; i++) {
			off = m->geo.sq_off + rnd((uint64_t)ents * sizeof(*e));
			p = ring_at(m, off & ~7ULL, 8);
			if (p)
				*(uint64_t *)p = rnext();
		}
		break;
	case 5:		/* the kernel's own indices and the padding */
		off = rnd(sizeof(struct sxm_ring_hdr) / 4) * 4;
		if ((p = ring_at(m, off, 4)))
			*(volatile uint32_t *)p = wild32(t);
		break;
	case 6:		/* the data slots, or anywhere mapped */
		off = m->off + rnd(m->len ? m->len : 1);
		n = 1 + rnd(64);
		for (i = 0; i < n; i++)
			if ((p = ring_at(m, off + i, 1)))
				*p = (uint8_t)rnext();
		break;
	default:	/* read everything (a read fault is a bug too) */
		n = 0;
		for (i = 0; i < m->len; i += PG)
			n += m->addr[i];
		if (n == 0x12345)
			rnext();
		break;
	}
}

/* ------------------------------------------------------------------------
 * Bad pointers
 * ------------------------------------------------------------------------
 */
static void *bad_ptr(size_t len)
{
	switch (rnd(8)) {
	case 0:
		return NULL;
	case 1:
		return (void *)1;
	case 2:
		return (void *)0xffff888000000000ULL;	/* the kernel's */
	case 3:
		return BA_NONE;
	case 4:
		return BA_RO + 2048;
	case 5:
		return BA_NONE - len / 2;		/* straddles */
	case 6:
		return (void *)(uintptr_t)rnext();
	default:
		return BA_GONE;
	}
}

/* ------------------------------------------------------------------------
 * The operations
 * ------------------------------------------------------------------------
 */
static void set_up_ring(struct slot *s, int valid, struct sxm_ring_setup *g);
static void map_ring(struct slot *s, int variant);

static void do_open(int helper)
{
	int op = helper ? OP_OPEN_HELPER : OP_OPEN_OBSERVER;
	struct slot *s = &slots[rnd(NSLOTS)];
	struct sxm_attach a;
	int r;

	op_begin(op, "slot %d", slot_index(s));
	lock(&s->mu);
	if (s->fd < 0 || chance(10)) {
		slot_close(s, chance(30));
		s->fd = open(CTL_PATH, O_RDWR);
		if (s->fd < 0) {
			unlock(&s->mu);
			op_end(op, 0);
			return;
		}
		s->gen++;
	}
	r = attach_fd(s->fd, helper ? 0 : SXM_ATTACH_OBSERVER, &a);
	if (!r) {
		s->role = helper ? R_HELPER : R_OBSERVER;
		s->nr_regions = a.nr_regions;
		s->map_bytes = (a.nr_regions + 63) / 64 * 8;
		def_regions = a.nr_regions;
		if (helper)
			ev(EV_HELPER_ATTACHED, 1);
	} else if (errno == EBUSY) {
		ev(EV_HELPER_BUSY, 1);
		if (!a.helper_pid)
			unexpected(op, 1, "EBUSY without helper_pid");
	}
	/* A helper often gets going at once: ring, mapping, mirror. */
	if (!r && helper && chance(calm ? 90 : 50) && sh->enabled[OP_RING_SETUP]) {
		op_note("slot %d: ring set-up", slot_index(s));
		set_up_ring(s, 1, NULL);
		if (s->ring) {
			op_note("slot %d: mmap", slot_index(s));
			if (sh->enabled[OP_MMAP])
				map_ring(s, 0);
			op_note("slot %d: mirror on", slot_index(s));
			if (chance(80) && sh->enabled[OP_MIRROR]) {
				int fd = s->fd;

				unlock(&s->mu);
				rearm_and_mirror(s, fd);
				op_end(op, 1);
				return;
			}
		}
	}
	unlock(&s->mu);
	op_end(op, !r);
}

static void do_attach_bad(void)
{
	struct slot *s = any_slot();
	struct sxm_attach a;
	unsigned int ma = 0, mi = 0;
	int fd, r, v = (int)rnd(11), ok = 0;

	op_begin(OP_ATTACH_BAD, "variant %d", v);
	if (v == 9) {
		/* A second attach on a slot's file: EALREADY if attached. */
		lock(&s->mu);
		if (s->fd >= 0 && s->role != R_NONE) {
			r = attach_fd(s->fd, rnd(2) ? SXM_ATTACH_OBSERVER : 0, &a);
			if (!r)
				unexpected(OP_ATTACH_BAD, 9,
					   "a second attach on an attached file");
		}
		unlock(&s->mu);
		op_end(OP_ATTACH_BAD, 1);
		return;
	}
	fd = open(CTL_PATH, O_RDWR);
	if (fd < 0) {
		op_end(OP_ATTACH_BAD, 0);
		return;
	}
	dev_numbers(&ma, &mi);
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.dev_major = ma;
	a.dev_minor = mi;
	a.features = rand_features();
	switch (v) {
	case 0:		/* someone else's device numbers */
		a.dev_major = chance(50) ? ma : (uint32_t)rnd(300);
		a.dev_minor = (uint32_t)rnd(1 << 12);
		if (a.dev_major == ma && a.dev_minor == mi)
			a.dev_minor++;
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		ok = 1;		/* another sxm device may exist: fine */
		break;
	case 1:		/* numbers past what dev_t holds */
		a.dev_major = 4096 + (uint32_t)rnd(1 << 20);
		if (chance(50)) {
			a.dev_major = ma;
			a.dev_minor = (1 << 20) + (uint32_t)rnd(1 << 20);
		}
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		MUST_FAIL(OP_ATTACH_BAD, 1, r, "dev %u:%u", a.dev_major,
			  a.dev_minor);
		break;
	case 2:		/* the target is not at this sector */
		a.target_start = 1 + rnd(1 << 20);
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		MUST_FAIL(OP_ATTACH_BAD, 2, r, "target_start %llu",
			  (unsigned long long)a.target_start);
		break;
	case 3:		/* unknown flags or features */
		if (chance(50))
			a.flags = 1U << (1 + rnd(31));
		else
			a.features |= 1ULL << (4 + rnd(60));
		if (!(a.features & ~KNOWN_F) && !(a.flags & ~SXM_ATTACH_FLAGS))
			a.flags = 2;
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		MUST_FAIL(OP_ATTACH_BAD, 3, r, "flags %#x features %#llx",
			  a.flags, (unsigned long long)a.features);
		break;
	case 4:		/* reserved fields and out fields set */
		switch (rnd(4)) {
		case 0: a.reserved[rnd(8)] = rnext() | 1; break;
		case 1: a.reserved0 = 1; break;
		case 2: a.helper_pid = getpid(); break;
		default: a.reserved[7] = 1ULL << 63; break;
		}
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		MUST_FAIL(OP_ATTACH_BAD, 4, r, "reserved or out field set");
		break;
	case 5:		/* the size field */
		a.size = chance(50) ? (uint32_t)rnd(sizeof(a)) : wild32(sizeof(a));
		if (a.size == sizeof(a))
			a.size++;
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		MUST_FAIL(OP_ATTACH_BAD, 5, r, "size %u", a.size);
		break;
	case 6:		/* a bad struct pointer */
		r = ioctl(fd, SXM_IOC_ATTACH, bad_ptr(sizeof(a)));
		MUST_FAIL(OP_ATTACH_BAD, 6, r, "bad struct pointer");
		break;
	case 7:		/* a valid struct in read-only memory: attaches, EFAULT */
		r = ioctl(fd, SXM_IOC_ATTACH, BA_RO + RO_ATTACH);
		MUST_FAIL(OP_ATTACH_BAD, 7, r, "a struct in read-only memory");
		break;
	case 8:		/* a second helper (or the first), closed at once */
	default:
		r = ioctl(fd, SXM_IOC_ATTACH, &a);
		if (r && errno == EBUSY)
			ev(EV_HELPER_BUSY, 1);
		if (!r && chance(50) && sh->enabled[OP_MMAP]) {
			/* Briefly the helper: a ring and the mirror, then gone. */
			struct sxm_ring_setup g = { .size = sizeof(g),
						    .entries = 8, .slot_bytes = 4096,
						    .timeout_ms = 500 };
			struct sxm_mirror m = { .size = sizeof(m), .on = 1 };

			if (!ioctl(fd, SXM_IOC_RING_SETUP, &g)) {
				void *p = mmap(NULL, g.mmap_bytes, PROT_READ | PROT_WRITE,
					       MAP_SHARED, fd, 0);

				ioctl(fd, SXM_IOC_MIRROR, &m);
				msleep((int)rnd(20));
				if (p != MAP_FAILED)
					munmap(p, g.mmap_bytes);
			}
		}
		ok = 1;
		break;
	}
	close(fd);
	op_end(OP_ATTACH_BAD, ok || r == 0);
}

static void do_close(void)
{
	struct slot *s = any_slot();

	op_begin(OP_CLOSE, "slot %d", slot_index(s));
	lock(&s->mu);
	slot_close(s, chance(25));
	unlock(&s->mu);
	op_end(OP_CLOSE, 1);
}

/* With s->mu held.  @g: a given geometry, or NULL for a random one. */
static void set_up_ring(struct slot *s, int valid, struct sxm_ring_setup *g)
{
	struct sxm_ring_setup geo = { .size = sizeof(geo) };
	int r, code = 0;

	if (s->fd < 0)
		return;
	if (g) {
		geo = *g;
	} else if (valid) {
		if (chance(10)) {
			/* all defaults */
		} else {
			geo.entries = 1U << (3 + rnd(chance(90) ? 6 : 10));
			geo.slot_bytes = 1U << (12 + rnd(chance(90) ? 6 : 9));
			while ((uint64_t)geo.entries * geo.slot_bytes > (16ULL << 20) &&
			       chance(95))
				geo.slot_bytes >>= 1;
			while ((uint64_t)geo.entries * geo.slot_bytes > (64ULL << 20))
				geo.slot_bytes >>= 1;
			if (geo.slot_bytes < 4096) {
				geo.slot_bytes = 4096;
				geo.entries = 8;
			}
			geo.timeout_ms = chance(10) ? 0 : 100 + (uint32_t)rnd(chance(70) ? 1500 : 4900);
		}
	} else {
		geo.entries = 256;
		geo.slot_bytes = 65536;
		geo.timeout_ms = 1000;
		code = (int)rnd(8);
		switch (code) {
		case 0: {
			static const uint32_t e[] = { 1, 2, 3, 4, 7, 12, 4097, 8192,
						      0x80000000, 0xffffffff };
			geo.entries = e[rnd(10)];
			break;
		}
		case 1: {
			static const uint32_t b[] = { 1, 512, 2048, 4095, 12288,
						      2 << 20, 1U << 31, 0xffffffff };
			geo.slot_bytes = b[rnd(8)];
			break;
		}
		case 2: {
			static const uint32_t t[] = { 1, 50, 99, 600001, 1U << 31,
						      0xffffffff };
			geo.timeout_ms = t[rnd(6)];
			break;
		}
		case 3:		/* more than 64 MiB of slots */
			geo.entries = 4096;
			geo.slot_bytes = 1U << (15 + rnd(6));
			break;
		case 4:		/* out fields set */
			switch (rnd(5)) {
			case 0: geo.mmap_bytes = 1; break;
			case 1: geo.hdr_off = rnext() | 1; break;
			case 2: geo.sq_off = PG; break;
			case 3: geo.cq_off = 1; break;
			default: geo.data_off = 1ULL << 40; break;
			}
			break;
		case 5:
			geo.reserved[rnd(4)] = rnext() | 1;
			break;
		case 6:
			geo.size = (uint32_t)rnd(sizeof(geo));
			break;
		default:
			break;
		}
	}
	if (code == 7) {
		r = ioctl(s->fd, SXM_IOC_RING_SETUP, bad_ptr(sizeof(geo)));
		MUST_FAIL(OP_RING_SETUP, 7, r, "bad struct pointer");
		return;
	}
	r = ioctl(s->fd, SXM_IOC_RING_SETUP, &geo);
	if (!valid)
		MUST_FAIL(OP_RING_SETUP, code, r,
			  "geometry %u x %u timeout %u size %u", geo.entries,
			  geo.slot_bytes, geo.timeout_ms, geo.size);
	if (!r) {
		s->ring = 1;
		s->geo = geo;
		ev(EV_RING_SET_UP, 1);
		if (geo.hdr_off || geo.sq_off < sizeof(struct sxm_ring_hdr) ||
		    geo.cq_off < geo.sq_off + geo.entries * sizeof(struct sxm_sqe) ||
		    geo.data_off < geo.cq_off + geo.entries * sizeof(struct sxm_cqe) ||
		    geo.mmap_bytes < geo.data_off + (uint64_t)geo.entries * geo.slot_bytes)
			unexpected(OP_RING_SETUP, 20, "overlapping layout %llu %llu %llu %llu %llu",
				   (unsigned long long)geo.hdr_off,
				   (unsigned long long)geo.sq_off,
				   (unsigned long long)geo.cq_off,
				   (unsigned long long)geo.data_off,
				   (unsigned long long)geo.mmap_bytes);
	}
}

static void do_ring_setup(void)
{
	struct slot *s = pick_slot();
	int valid = chance(60);

	op_begin(OP_RING_SETUP, "slot %d %s", slot_index(s), valid ? "valid" : "invalid");
	lock(&s->mu);
	set_up_ring(s, valid, NULL);
	unlock(&s->mu);
	op_end(OP_RING_SETUP, 1);
}

/* With s->mu held.  Variant 0: the right mapping. */
static void map_ring(struct slot *s, int variant)
{
	size_t want = s->ring ? s->geo.mmap_bytes : PG * (1 + rnd(16));
	size_t len = want;
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED;
	off_t off = 0;
	struct mapping *m;
	uint8_t *p;

	if (s->fd < 0)
		return;
	switch (variant) {
	case 0: case 1: case 2: case 3:
		break;
	case 4:
		prot = PROT_READ;
		break;
	case 5:
		prot = PROT_READ | PROT_WRITE | PROT_EXEC;
		break;
	case 6:
		flags = MAP_PRIVATE;
		break;
	case 7:
		switch (rnd(4)) {
		case 0: len = want + PG; break;
		case 1: len = want > PG ? want - PG : 2 * PG; break;
		case 2: len = PG; break;
		default: len = want * 2; break;
		}
		if (len == want)
			len += PG;
		break;
	case 8:
		off = (off_t)PG * (1 + rnd(4));
		break;
	default:
		flags = MAP_SHARED | MAP_POPULATE;
		break;
	}
	if (s->nmaps == MAXMAPS) {
		pthread_rwlock_wrlock(&s->maprw);
		munmap(s->maps[0].addr, s->maps[0].len);
		memmove(&s->maps[0], &s->maps[1], sizeof(s->maps[0]) * (MAXMAPS - 1));
		s->nmaps--;
		pthread_rwlock_unlock(&s->maprw);
	}
	p = mmap(NULL, len, prot, flags, s->fd, off);
	if (p == MAP_FAILED)
		return;
	if (off)
		unexpected(OP_MMAP, 1, "offset %lld accepted", (long long)off);
	else if (!s->ring || s->role != R_HELPER)
		unexpected(OP_MMAP, 2, "a mapping without a ring (role %d)", s->role);
	else if (len != want)
		unexpected(OP_MMAP, 3, "length %zu accepted, ring is %zu", len, want);
	pthread_rwlock_wrlock(&s->maprw);
	m = &s->maps[s->nmaps++];
	memset(m, 0, sizeof(*m));
	m->addr = p;
	m->len = len;
	m->off = off;
	m->prot = prot;
	m->shared = flags & MAP_SHARED;
	if (s->ring && len == want && !off)
		m->geo = s->geo;
	pthread_rwlock_unlock(&s->maprw);
	ev(EV_RING_MAPPED, 1);
}

static void do_mmap(void)
{
	struct slot *s = pick_slot();
	int v = (int)rnd(10);

	op_begin(OP_MMAP, "slot %d variant %d", slot_index(s), v);
	lock(&s->mu);
	map_ring(s, v);
	unlock(&s->mu);
	op_end(OP_MMAP, 1);
}

static void do_munmap(void)
{
	struct slot *s = &slots[rnd(NSLOTS)];
	struct mapping *m;
	int v = (int)rnd(10), i;
	void *p;

	op_begin(OP_MUNMAP, "slot %d variant %d", slot_index(s), v);
	lock(&s->mu);
	if (!s->nmaps) {
		unlock(&s->mu);
		op_end(OP_MUNMAP, 0);
		return;
	}
	pthread_rwlock_wrlock(&s->maprw);
	i = (int)rnd(s->nmaps);
	m = &s->maps[i];
	switch (v) {
	case 0: case 1: case 2:		/* all of it */
		munmap(m->addr, m->len);
		s->maps[i] = s->maps[--s->nmaps];
		break;
	case 3:				/* its tail */
		if (m->len > PG) {
			size_t cut = PG * (1 + rnd((m->len - 1) / PG));

			if (cut >= m->len)
				cut = m->len - PG;
			if (!munmap(m->addr + m->len - cut, cut))
				m->len -= cut;
		}
		break;
	case 4:				/* its head */
		if (m->len > PG && !munmap(m->addr, PG)) {
			m->addr += PG;
			m->off += PG;
			m->len -= PG;
		}
		break;
	case 5:				/* move it */
		p = mremap(m->addr, m->len, m->len, MREMAP_MAYMOVE);
		if (p != MAP_FAILED)
			m->addr = p;
		break;
	case 6:				/* shrink or grow it */
		if (chance(50) && m->len > PG) {
			p = mremap(m->addr, m->len, m->len - PG, 0);
			if (p != MAP_FAILED)
				m->len -= PG;
		} else {
			p = mremap(m->addr, m->len, m->len + PG, MREMAP_MAYMOVE);
			if (p != MAP_FAILED) {
				m->addr = p;
				m->len += PG;
				/* Past the ring: a fault there is caught. */
			}
		}
		break;
	case 7:				/* protection */
		if (chance(50)) {
			if (!mprotect(m->addr, m->len, PROT_READ))
				m->prot = PROT_READ;
		} else if (!mprotect(m->addr, m->len, PROT_READ | PROT_WRITE)) {
			m->prot = PROT_READ | PROT_WRITE;
		}
		break;
	case 8:				/* drop the pages (a later touch faults) */
		if (!madvise(m->addr, m->len, MADV_DONTNEED))
			m->broken = 1;
		break;
	default:
		madvise(m->addr, m->len, chance(50) ? MADV_DONTFORK : MADV_DOFORK);
		break;
	}
	pthread_rwlock_unlock(&s->maprw);
	unlock(&s->mu);
	op_end(OP_MUNMAP, 1);
}

static void do_poke(void)
{
	struct slot *s = pick_slot();
	struct poke_arg pk;
	int fd, i, n, hit = 0;

	pk.kind = (int)rnd(10);
	op_begin(OP_POKE, "slot %d kind %d", slot_index(s), pk.kind);
	pthread_rwlock_rdlock(&s->maprw);
	n = s->nmaps;
	for (i = 0; i < n; i++) {
		pk.m = &s->maps[(i + rnd(n)) % n];
		if (!(pk.m->prot & PROT_WRITE) && pk.kind != 9)
			continue;
		if (guarded(poke_fn, &pk))
			pk.m->broken = 1;
		hit = 1;
		break;
	}
	pthread_rwlock_unlock(&s->maprw);
	slot_get(s, &fd, NULL, NULL, NULL, NULL);
	if (hit && fd >= 0 && chance(60)) {
		long r = ioctl(fd, SXM_IOC_RING_ENTER);

		if (r > 0)
			ev(EV_REAPED, r);
		else if (r < 0 && errno == EIO)
			ev(EV_ENTER_EIO, 1);
	}
	op_end(OP_POKE, hit);
}

static void do_pump(void)
{
	struct slot *s = pick_slot();

	/* Nothing to pump is not an operation. */
	if (pump_slot(s, 10 + (int)rnd(200), calm) < 0)
		msleep(1);
}

static void do_enter(void)
{
	struct slot *s = pick_slot();
	int fd;
	long r;

	slot_get(s, &fd, NULL, NULL, NULL, NULL);
	op_begin(OP_ENTER, "slot %d fd %d", slot_index(s), fd);
	nowait_begin("slot %d fd %d ring enter", slot_index(s), fd);
	r = ioctl(fd, chance(95) ? SXM_IOC_RING_ENTER :
		  _IOC(_IOC_NONE, SXM_IOC_MAGIC, 0x08, rnd(64)), rnext());
	nowait_end();
	if (r > 0)
		ev(EV_REAPED, r);
	else if (r < 0 && errno == EIO)
		ev(EV_ENTER_EIO, 1);
	op_end(OP_ENTER, r >= 0);
}

static void do_poll(void)
{
	struct slot *s = pick_slot();
	struct pollfd pfd;
	int fd, r;

	slot_get(s, &fd, NULL, NULL, NULL, NULL);
	op_begin(OP_POLL, "slot %d fd %d", slot_index(s), fd);
	pfd.fd = fd;
	pfd.events = chance(80) ? POLLIN : (short)rnext();
	r = poll(&pfd, 1, (int)rnd(30));
	op_end(OP_POLL, r >= 0);
}

static int lock_call(int fd, uint32_t flags, struct sxm_lock_range *r,
		     uint32_t n)
{
	struct sxm_lock l = { .size = sizeof(l), .flags = flags,
			      .ranges_ptr = (uintptr_t)r, .nr_ranges = n };

	return ioctl(fd, SXM_IOC_LOCK, &l);
}

/* A release: it takes nothing another call may hold for long. */
static int release_call(int fd, struct sxm_lock_range *r, uint32_t n)
{
	int ret;

	nowait_begin("fd %d release %u ranges from %llu+%llu", fd, n,
		     (unsigned long long)r[0].first, (unsigned long long)r[0].count);
	ret = lock_call(fd, SXM_LOCK_RELEASE, r, n);
	nowait_end();
	return ret;
}

static void rand_range(struct sxm_lock_range *r, uint64_t nr)
{
	uint64_t max = chance(90) ? 32 : nr;

	r->first = rnd(nr);
	r->count = 1 + rnd(max < nr - r->first ? max : nr - r->first);
}

/* With s->mu held: forget @r, once. */
static void held_forget(struct slot *s, const struct sxm_lock_range *r)
{
	int i;

	for (i = 0; i < s->nheld; i++)
		if (s->held[i].first == r->first && s->held[i].count == r->count) {
			s->held[i] = s->held[--s->nheld];
			return;
		}
}

static void held_add(struct slot *s, unsigned int gen,
		     const struct sxm_lock_range *r, int n)
{
	int i;

	lock(&s->mu);
	if (s->gen == gen)
		for (i = 0; i < n && s->nheld < MAXHELD; i++)
			s->held[s->nheld++] = r[i];
	unlock(&s->mu);
}

/* Take @n of what @s holds off its list into @r; returns how many. */
static int held_take(struct slot *s, struct sxm_lock_range *r, int n)
{
	int k = 0;

	lock(&s->mu);
	while (k < n && s->nheld) {
		int i = (int)rnd(s->nheld);

		r[k++] = s->held[i];
		s->held[i] = s->held[--s->nheld];
	}
	unlock(&s->mu);
	return k;
}

static void do_lock(void)
{
	static __thread struct sxm_lock_range rr[SXM_LOCK_MAX + 2];
	struct slot *s = chance(70) ? helper_slot() : pick_slot();
	uint64_t nr;
	unsigned int gen;
	int fd, v = (int)rnd(12), n, i, r, ok = 0;

	slot_get(s, &fd, NULL, &nr, NULL, &gen);
	op_begin(OP_LOCK, "slot %d fd %d variant %d", slot_index(s), fd, v);
	switch (v) {
	case 0: case 1: case 2: case 3:	/* take, hold briefly, release */
	case 4:				/* take and keep */
		n = 1 + (int)rnd(8);
		for (i = 0; i < n; i++)
			rand_range(&rr[i], nr);
		if (chance(20) && n > 1)	/* overlapping, or the same twice */
			rr[n - 1] = chance(50) ? rr[0] :
				(struct sxm_lock_range){ rr[0].first,
					rr[0].count + (rr[0].first + rr[0].count < nr) };
		op_note("slot %d fd %d take %d ranges from %llu", slot_index(s),
			fd, n, (unsigned long long)rr[0].first);
		r = lock_call(fd, 0, rr, n);
		if (r)
			break;
		ok = 1;
		ev(EV_LOCKS_TAKEN, 1);
		if (v == 4) {
			held_add(s, gen, rr, n);
			break;
		}
		msleep((int)rnd(30));
		op_note("slot %d fd %d release %d ranges", slot_index(s), fd, n);
		if (!release_call(fd, rr, n))
			ev(EV_LOCKS_RELEASED, 1);
		else
			held_add(s, gen, rr, n);
		break;
	case 5: case 6:			/* release some of what is held */
		n = held_take(s, rr, 1 + (int)rnd(4));
		if (!n)
			break;
		op_note("slot %d fd %d release %d held", slot_index(s), fd, n);
		r = release_call(fd, rr, n);
		if (!r) {
			ev(EV_LOCKS_RELEASED, 1);
			ok = 1;
		} else if (errno == ENOENT && n > 1) {
			/* One was not held after all: one at a time. */
			for (i = 0; i < n; i++)
				release_call(fd, &rr[i], 1);
		}
		break;
	case 7:				/* release what is not held */
		rand_range(&rr[0], nr);
		r = release_call(fd, rr, 1);
		if (!r) {
			lock(&s->mu);
			held_forget(s, &rr[0]);
			unlock(&s->mu);
		}
		break;
	case 8:				/* many ranges: ENOSPC sooner or later */
		n = 64 + (int)rnd(SXM_LOCK_MAX - 63);
		for (i = 0; i < n; i++)
			rand_range(&rr[i], nr);
		op_note("slot %d fd %d take %d ranges", slot_index(s), fd, n);
		r = lock_call(fd, 0, rr, n);
		if (!r) {
			ev(EV_LOCKS_TAKEN, 1);
			msleep((int)rnd(10));
			op_note("slot %d fd %d release %d ranges", slot_index(s), fd, n);
			if (release_call(fd, rr, n))
				held_add(s, gen, rr, n);
			ok = 1;
		}
		break;
	case 9:				/* the whole device, briefly */
		rr[0].first = 0;
		rr[0].count = nr;
		r = lock_call(fd, 0, rr, 1);
		if (!r) {
			msleep((int)rnd(20));
			op_note("slot %d fd %d release all", slot_index(s), fd);
			if (release_call(fd, rr, 1))
				held_add(s, gen, rr, 1);
			ok = 1;
		}
		break;
	default: {			/* invalid */
		struct sxm_lock l = { .size = sizeof(l), .ranges_ptr = (uintptr_t)rr,
				      .nr_ranges = 1 };
		int code = (int)rnd(9);

		rand_range(&rr[0], nr);
		switch (code) {
		case 0: rr[0].count = 0; break;
		case 1: rr[0].first = nr + rnd(1000); break;
		case 2: rr[0].count = nr - rr[0].first + 1 + rnd(10); break;
		case 3: rr[0].first = ~0ULL - rnd(4); rr[0].count = 2 + rnd(1000); break;
		case 4: l.nr_ranges = chance(50) ? 0 : SXM_LOCK_MAX + 1 + (uint32_t)rnd(1 << 20); break;
		case 5: l.flags = 1U << (1 + rnd(31)); break;
		case 6: if (chance(50)) l.reserved0 = 1; else l.reserved[rnd(3)] = rnext() | 1; break;
		case 7: l.size = (uint32_t)rnd(sizeof(l)); break;
		default: l.ranges_ptr = (uintptr_t)bad_ptr(16); break;
		}
		if (chance(50) && code != 4)
			l.flags |= SXM_LOCK_RELEASE;
		r = ioctl(fd, SXM_IOC_LOCK, &l);
		MUST_FAIL(OP_LOCK, code, r, "invalid lock case %d", code);
		if (!r && !(l.flags & SXM_LOCK_RELEASE))
			release_call(fd, rr, 1);
		ok = 1;
		break;
	}
	}
	op_end(OP_LOCK, ok);
}

/*
 * Release a range with a duplicate of it in the same call, while it is
 * held once: an all-or-nothing release must refuse it (ENOENT).
 */
static void do_dup_release(void)
{
	struct slot *s = helper_slot();
	struct sxm_lock_range rr[4];
	unsigned int gen;
	uint64_t nr;
	int fd, n, r;

	slot_get(s, &fd, NULL, &nr, NULL, &gen);
	op_begin(OP_DUP_RELEASE, "slot %d fd %d", slot_index(s), fd);
	if (!held_take(s, rr, 1)) {
		rand_range(&rr[0], nr);
		op_note("slot %d fd %d take one range", slot_index(s), fd);
		if (lock_call(fd, 0, rr, 1)) {
			op_end(OP_DUP_RELEASE, 0);
			return;
		}
	}
	n = 2;
	rr[1] = rr[0];
	if (chance(40) && held_take(s, &rr[1], 1)) {
		rr[2] = rr[0];	/* [A, B, A] */
		n = 3;
	}
	op_note("slot %d fd %d release [%llu+%llu] x2 of %d ranges", slot_index(s),
		fd, (unsigned long long)rr[0].first,
		(unsigned long long)rr[0].count, n);
	ev(EV_DUP_RELEASES, 1);
	r = release_call(fd, rr, n);
	/* What is still held goes now, one range at a time. */
	release_call(fd, &rr[0], 1);
	if (n == 3)
		release_call(fd, &rr[1], 1);
	op_end(OP_DUP_RELEASE, r != 0);
}

static int harvest_call(int fd, uint32_t flags, void *buf, uint64_t bytes,
			struct sxm_harvest *h)
{
	memset(h, 0, sizeof(*h));
	h->size = sizeof(*h);
	h->flags = flags;
	h->bitmap_ptr = (uintptr_t)buf;
	h->bitmap_bytes = bytes;
	return ioctl(fd, SXM_IOC_HARVEST, h);
}

static int regions_call(int fd, unsigned long cmd, uint32_t flags, void *buf,
			uint64_t bytes)
{
	struct sxm_regions m = { .size = sizeof(m), .flags = flags,
				 .bitmap_ptr = (uintptr_t)buf, .bitmap_bytes = bytes };

	return ioctl(fd, cmd, &m);
}

static void do_harvest(int peek)
{
	int op = peek ? OP_PEEK : OP_HARVEST;
	uint32_t fl = peek ? SXM_HARVEST_PEEK : 0;
	struct slot *s = peek ? any_slot() : pick_slot();
	struct sxm_harvest h;
	uint64_t mb, nr;
	int fd, r, v = (int)rnd(12);

	slot_get(s, &fd, NULL, &nr, &mb, NULL);
	op_begin(op, "slot %d fd %d variant %d", slot_index(s), fd, v);
	switch (v) {
	case 0: case 1: case 2: case 3: case 4:
		r = harvest_call(fd, fl, tmap, mb, &h);
		if (!r) {
			ev(EV_HARVESTS, !peek);
			if (h.dirty_regions > h.nr_regions || h.nr_regions != nr)
				unexpected(op, 20, "dirty %llu of %llu regions (attach said %llu)",
					   (unsigned long long)h.dirty_regions,
					   (unsigned long long)h.nr_regions,
					   (unsigned long long)nr);
			/* The honest helper acknowledges what it "copied". */
			if (!peek && chance(60)) {
				op_note("slot %d fd %d ack the harvest", slot_index(s), fd);
				regions_call(fd, SXM_IOC_ACK, 0, tmap, mb);
			}
		}
		break;
	case 5:		/* a larger buffer than needed */
		r = harvest_call(fd, fl, tmap, mb + 8 * (1 + rnd(1000)), &h);
		break;
	case 6:		/* too small */
		r = harvest_call(fd, fl, tmap, rnd(mb), &h);
		MUST_FAIL(op, 6, r, "bitmap_bytes below the map");
		break;
	case 7:		/* a bad buffer */
		r = harvest_call(fd, fl, bad_ptr(mb), mb, &h);
		MUST_FAIL(op, 7, r, "a bad bitmap pointer");
		break;
	case 8:		/* unknown flags, reserved fields */
		memset(&h, 0, sizeof(h));
		h.size = sizeof(h);
		h.flags = fl;
		h.bitmap_ptr = (uintptr_t)tmap;
		h.bitmap_bytes = mb;
		if (chance(50))
			h.flags |= 1U << (1 + rnd(31));
		else
			h.reserved[rnd(4)] = rnext() | 1;
		r = ioctl(fd, SXM_IOC_HARVEST, &h);
		MUST_FAIL(op, 8, r, "flags %#x or reserved set", h.flags);
		break;
	case 9:		/* into the ring mapping itself (chaos only) */
		pthread_rwlock_rdlock(&s->maprw);
		r = -1;
		if (s->nmaps && !calm) {
			struct mapping *m = &s->maps[rnd(s->nmaps)];

			if (m->len >= mb && !m->broken)
				r = harvest_call(fd, fl, m->addr + rnd((m->len - mb) / 8 + 1) * 8,
						 mb, &h);
		}
		pthread_rwlock_unlock(&s->maprw);
		break;
	case 10:	/* a valid struct in read-only memory */
		r = ioctl(fd, SXM_IOC_HARVEST, BA_RO + RO_HARVEST);
		MUST_FAIL(op, 10, r, "a struct in read-only memory");
		break;
	default:	/* a bad struct pointer */
		r = ioctl(fd, SXM_IOC_HARVEST, bad_ptr(sizeof(h)));
		MUST_FAIL(op, 11, r, "a bad struct pointer");
		break;
	}
	op_end(op, r == 0);
}

/* A random map of @nr regions in @map (@mb bytes). */
static void rand_map(uint64_t *map, uint64_t mb, uint64_t nr)
{
	uint64_t words = mb / 8, i;

	switch (rnd(4)) {
	case 0:
		memset(map, 0, mb);
		break;
	case 1:
		memset(map, 0xff, mb);
		break;
	case 2:
		memset(map, 0, mb);
		for (i = rnd(64); i; i--) {
			uint64_t b = rnd(nr);

			map[b / 64] |= 1ULL << (b % 64);
		}
		break;
	default:
		for (i = 0; i < words; i++)
			map[i] = rnext() & rnext();
		break;
	}
	if (nr % 64)
		map[words - 1] &= (1ULL << (nr % 64)) - 1;
}

static void do_regions(int ack)
{
	int op = ack ? OP_ACK : OP_MARK;
	unsigned long cmd = ack ? SXM_IOC_ACK : SXM_IOC_MARK_DIRTY;
	struct slot *s = pick_slot();
	struct sxm_regions m;
	uint64_t mb, nr;
	int fd, r, v = (int)rnd(12);

	slot_get(s, &fd, NULL, &nr, &mb, NULL);
	op_begin(op, "slot %d fd %d variant %d", slot_index(s), fd, v);
	rand_map(tmap, mb, nr);
	switch (v) {
	case 0: case 1: case 2: case 3:
		r = regions_call(fd, cmd, 0, tmap, mb);
		break;
	case 4:
		r = regions_call(fd, cmd, SXM_REGIONS_ALL, NULL, 0);
		break;
	case 5:		/* ALL with a map */
		r = regions_call(fd, cmd, SXM_REGIONS_ALL, tmap, chance(50) ? mb : 0);
		MUST_FAIL(op, 5, r, "ALL with a map pointer");
		break;
	case 6:		/* a map of the wrong size */
		r = regions_call(fd, cmd, 0, tmap, chance(50) ? mb + 8 * (1 + rnd(8)) : rnd(mb));
		MUST_FAIL(op, 6, r, "a map of the wrong size");
		break;
	case 7:		/* a bad map pointer (read-only is fine here) */
		r = regions_call(fd, cmd, 0, bad_ptr(mb), mb);
		break;
	case 8:		/* bits past the last region */
		if (nr % 64) {
			tmap[mb / 8 - 1] |= 1ULL << (nr % 64 + rnd(64 - nr % 64));
			r = regions_call(fd, cmd, 0, tmap, mb);
			MUST_FAIL(op, 8, r, "bits past the last region");
		} else {
			r = regions_call(fd, cmd, 0, tmap, mb);
		}
		break;
	case 9:		/* out and reserved fields, unknown flags */
		memset(&m, 0, sizeof(m));
		m.size = sizeof(m);
		m.bitmap_ptr = (uintptr_t)tmap;
		m.bitmap_bytes = mb;
		switch (rnd(3)) {
		case 0: m.count = rnext() | 1; break;
		case 1: m.reserved[rnd(4)] = rnext() | 1; break;
		default: m.flags = 1U << (1 + rnd(31)); break;
		}
		r = ioctl(fd, cmd, &m);
		MUST_FAIL(op, 9, r, "count, reserved or flags set");
		break;
	case 10:	/* from the ring mapping */
		pthread_rwlock_rdlock(&s->maprw);
		r = -1;
		if (s->nmaps) {
			struct mapping *mp = &s->maps[rnd(s->nmaps)];

			if (mp->len >= mb && !mp->broken)
				r = regions_call(fd, cmd, 0, mp->addr, mb);
		}
		pthread_rwlock_unlock(&s->maprw);
		break;
	default:
		r = ioctl(fd, cmd, bad_ptr(sizeof(m)));
		MUST_FAIL(op, 11, r, "a bad struct pointer");
		break;
	}
	op_end(op, r == 0);
}

static void do_info(void)
{
	struct slot *s = any_slot();
	uint8_t big[512] __attribute__((aligned(8)));
	struct sxm_info *i = (void *)big;
	struct sxm_features *f = (void *)big;
	int fd, r, v = (int)rnd(9);

	slot_get(s, &fd, NULL, NULL, NULL, NULL);
	op_begin(OP_INFO, "slot %d fd %d variant %d", slot_index(s), fd, v);
	memset(big, 0, sizeof(big));
	switch (v) {
	case 0: case 1:
		i->size = sizeof(*i);
		r = ioctl(fd, SXM_IOC_GET_INFO, i);
		if (!r && (i->mode > SXM_MODE_MIRROR || i->dirty_regions > i->nr_regions ||
			   i->held_regions > i->nr_regions))
			unexpected(OP_INFO, 0, "info mode %u dirty %llu held %llu of %llu",
				   i->mode, (unsigned long long)i->dirty_regions,
				   (unsigned long long)i->held_regions,
				   (unsigned long long)i->nr_regions);
		break;
	case 2:		/* an out field set */
		i->size = sizeof(*i);
		((uint32_t *)big)[1 + rnd(sizeof(*i) / 4 - 1)] = (uint32_t)rnext() | 1;
		r = ioctl(fd, SXM_IOC_GET_INFO, i);
		MUST_FAIL(OP_INFO, 2, r, "an out field set");
		break;
	case 3:		/* a larger struct, zero past what the kernel knows */
		i->size = sizeof(*i) + 8 * (1 + (uint32_t)rnd(40));
		r = ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, SXM_IOC_MAGIC, 0x04, i->size), i);
		break;
	case 4:		/* a larger struct with something past it */
		i->size = sizeof(*i) + 8 * (1 + (uint32_t)rnd(40));
		big[sizeof(*i) + rnd(i->size - sizeof(*i))] = 1;
		r = ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, SXM_IOC_MAGIC, 0x04, i->size), i);
		MUST_FAIL(OP_INFO, 4, r, "a larger struct with a nonzero tail");
		break;
	case 5:
		f->size = sizeof(*f);
		r = ioctl(fd, SXM_IOC_GET_FEATURES, f);
		if (!r && (f->abi_version != SXM_ABI_VERSION || !(f->features & SXM_F_MIRROR)))
			unexpected(OP_INFO, 5, "features %#llx abi %u",
				   (unsigned long long)f->features, f->abi_version);
		break;
	case 6:
		f->size = sizeof(*f);
		f->reserved[rnd(4)] = rnext() | 1;
		r = ioctl(fd, SXM_IOC_GET_FEATURES, f);
		MUST_FAIL(OP_INFO, 6, r, "features with reserved set");
		break;
	case 7:		/* read-only or bad memory */
		/*
		 * A bad pointer for the struct the command takes: one that
		 * straddles the end of good memory must straddle it for that
		 * size (the features struct is half the info struct, and
		 * whole in good memory where the info struct straddles).
		 */
		if (chance(50))
			r = ioctl(fd, SXM_IOC_GET_INFO, chance(50) ?
				  (void *)(BA_RO + RO_INFO) : bad_ptr(sizeof(*i)));
		else
			r = ioctl(fd, SXM_IOC_GET_FEATURES, chance(50) ?
				  (void *)(BA_RO + RO_INFO) : bad_ptr(sizeof(*f)));
		MUST_FAIL(OP_INFO, 7, r, "a struct in read-only or bad memory");
		break;
	default:	/* size field and command disagree */
		i->size = sizeof(*i) + (chance(50) ? 8 : -8);
		r = ioctl(fd, SXM_IOC_GET_INFO, i);
		MUST_FAIL(OP_INFO, 8, r, "size %u in a %zu-byte command", i->size, sizeof(*i));
		break;
	}
	op_end(OP_INFO, r == 0);
}

static void do_mirror(void)
{
	struct slot *s = pick_slot();
	struct sxm_mirror m = { .size = sizeof(m) };
	int fd, r, v = (int)rnd(10);

	slot_get(s, &fd, NULL, NULL, NULL, NULL);
	op_begin(OP_MIRROR, "slot %d fd %d variant %d", slot_index(s), fd, v);
	switch (v) {
	case 0: case 1: case 2: case 3:		/* as a helper does it */
		r = rearm_and_mirror(s, fd);
		break;
	case 4:					/* on, stale sqes and all */
		m.on = 1;
		r = ioctl(fd, SXM_IOC_MIRROR, &m);
		if (!r)
			ev(EV_MIRROR_ON, 1);
		break;
	case 5: case 6:				/* off */
		r = ioctl(fd, SXM_IOC_MIRROR, &m);
		break;
	case 7:
		m.on = 2 + (uint32_t)rnd(0xfffffff);
		r = ioctl(fd, SXM_IOC_MIRROR, &m);
		MUST_FAIL(OP_MIRROR, 7, r, "on = %u", m.on);
		break;
	case 8:
		m.on = (uint32_t)rnd(2);
		m.reserved[rnd(3)] = rnext() | 1;
		r = ioctl(fd, SXM_IOC_MIRROR, &m);
		MUST_FAIL(OP_MIRROR, 8, r, "reserved set");
		break;
	default:
		r = ioctl(fd, SXM_IOC_MIRROR, bad_ptr(sizeof(m)));
		MUST_FAIL(OP_MIRROR, 9, r, "a bad struct pointer");
		break;
	}
	op_end(OP_MIRROR, r == 0);
}

static void do_bad_ioctl(void)
{
	static __thread uint8_t zero[16384 + 64] __attribute__((aligned(8)));
	struct slot *s = any_slot();
	static const unsigned int sizes[] = {
		SXM_FEATURES_SIZE, SXM_ATTACH_SIZE, SXM_HARVEST_SIZE,
		SXM_REGIONS_SIZE, SXM_INFO_SIZE, SXM_REGIONS_SIZE,
		SXM_RING_SETUP_SIZE, SXM_MIRROR_SIZE, 0, SXM_LOCK_SIZE,
	};
	unsigned int nr, sz, dir;
	unsigned long cmd;
	int fd, r, v = (int)rnd(6);

	slot_get(s, &fd, NULL, NULL, NULL, NULL);
	op_begin(OP_BAD_IOCTL, "slot %d fd %d variant %d", slot_index(s), fd, v);
	memset(zero, 0, sizeof(zero));
	switch (v) {
	case 0:		/* unknown command numbers */
		cmd = _IOC(rnd(4), SXM_IOC_MAGIC, 0x0a + rnd(0xf6), rnd(1 << 14));
		r = ioctl(fd, cmd, zero);
		MUST_FAIL(OP_BAD_IOCTL, 0, r, "command %#lx", cmd);
		break;
	case 1:		/* a known command, other direction bits */
		nr = (unsigned int)rnd(10);
		dir = (unsigned int)rnd(3);
		cmd = _IOC(dir, SXM_IOC_MAGIC, nr, sizes[nr]);
		*(uint32_t *)zero = sizes[nr];
		r = ioctl(fd, cmd, zero);
		break;
	case 2:		/* a known command, the struct smaller than known */
		nr = (unsigned int)rnd(10);
		if (!sizes[nr])
			nr = 4;
		sz = (unsigned int)rnd(sizes[nr]);
		*(uint32_t *)zero = sz;
		r = ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, SXM_IOC_MAGIC, nr, sz),
			  sz >= 4 ? (void *)zero : bad_ptr(4));
		MUST_FAIL(OP_BAD_IOCTL, 2, r, "nr %u with size %u", nr, sz);
		break;
	case 3:		/* the largest size, all zero (must not crash) */
		nr = (unsigned int)rnd(10);
		if (nr == 6)	/* all zero is a valid ring set-up */
			nr = 4;
		sz = (1 << 14) - 1 - (unsigned int)rnd(64);
		*(uint32_t *)zero = sz;
		r = ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, SXM_IOC_MAGIC, nr, sz), zero);
		break;
	case 4:		/* size in the struct and in the command differ */
		nr = (unsigned int)rnd(10);
		if (!sizes[nr])
			nr = 0;
		*(uint32_t *)zero = sizes[nr] + 8;
		r = ioctl(fd, _IOC(_IOC_READ | _IOC_WRITE, SXM_IOC_MAGIC, nr, sizes[nr]), zero);
		MUST_FAIL(OP_BAD_IOCTL, 4, r, "nr %u size field %u", nr, sizes[nr] + 8);
		break;
	default:	/* another magic, our numbers */
		cmd = _IOC(_IOC_READ | _IOC_WRITE, 0xE9 + rnd(4), rnd(10), 64);
		r = ioctl(fd, cmd, zero);
		MUST_FAIL(OP_BAD_IOCTL, 5, r, "command %#lx", cmd);
		break;
	}
	op_end(OP_BAD_IOCTL, r == 0);
}

/*
 * The child of a fork: uses the files and mappings it inherited for a
 * moment, maybe becomes a helper of its own, then exits.  No locks, no
 * malloc, no stdio: the parent's other threads may have held them.
 */
static void child_run(void)
{
	struct sxm_lock_range rr[2];
	struct sxm_harvest h;
	struct sxm_info info;
	int64_t end = now_ms() + 50 + (int64_t)rnd(1000);
	int i, fd, own = -1;

	me = NULL;
	while (now_ms() < end) {
		struct slot *s = &slots[rnd(NSLOTS)];

		fd = chance(20) && own >= 0 ? own : s->fd;
		switch (rnd(10)) {
		case 0:
			memset(&info, 0, sizeof(info));
			info.size = sizeof(info);
			ioctl(fd, SXM_IOC_GET_INFO, &info);
			break;
		case 1:
			harvest_call(fd, rnd(2) ? SXM_HARVEST_PEEK : 0, tmap,
				     s->map_bytes ? s->map_bytes : 2048, &h);
			break;
		case 2:
			rand_range(&rr[0], s->nr_regions ? s->nr_regions : def_regions);
			if (!lock_call(fd, 0, rr, 1))
				lock_call(fd, SXM_LOCK_RELEASE, rr, 1);
			break;
		case 3:
			ioctl(fd, SXM_IOC_RING_ENTER);
			break;
		case 4: {
			struct sxm_mirror m = { .size = sizeof(m), .on = (uint32_t)rnd(2) };

			ioctl(fd, SXM_IOC_MIRROR, &m);
			break;
		}
		case 5:
			for (i = 0; i < s->nmaps; i++) {
				struct poke_arg pk = { &s->maps[i], (int)rnd(10) };

				if (s->maps[i].prot & PROT_WRITE)
					guarded(poke_fn, &pk);
			}
			break;
		case 6:
			if (chance(30))
				close(s->fd);
			break;
		case 7:
			if (own < 0 && sh->enabled[OP_MMAP]) {
				struct sxm_attach a;

				own = open(CTL_PATH, O_RDWR);
				if (own >= 0 && attach_fd(own, 0, &a) == 0) {
					struct sxm_ring_setup g = { .size = sizeof(g),
						.entries = 16, .slot_bytes = 4096, .timeout_ms = 300 };
					struct sxm_mirror m = { .size = sizeof(m), .on = 1 };

					if (!ioctl(own, SXM_IOC_RING_SETUP, &g)) {
						mmap(NULL, g.mmap_bytes, PROT_READ | PROT_WRITE,
						     MAP_SHARED, own, 0);
						ioctl(own, SXM_IOC_MIRROR, &m);
					}
				}
			}
			break;
		case 8: {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			poll(&p, 1, 5);
			break;
		}
		default:
			if (s->nmaps && chance(30))
				munmap(s->maps[0].addr, s->maps[0].len);
			break;
		}
	}
	_exit(0);
}

static void do_fork(void)
{
	int64_t deadline;
	pid_t pid;
	int st;

	op_begin(OP_FORK, "fork");
	pid = fork();
	if (pid == 0) {
		seed_thread(rnext(), 99);
		child_run();
	}
	if (pid < 0) {
		op_end(OP_FORK, 0);
		return;
	}
	ev(EV_CHILDREN, 1);
	op_note("fork: waiting for child %d", pid);
	/* It runs about a second; waits in it end with the ring timeout. */
	deadline = now_ms() + 20000;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			ev(EV_CHILD_KILLED, 1);
			op_note("fork: child %d killed, waiting", pid);
			waitpid(pid, &st, 0);
			break;
		}
		msleep(5);
	}
	op_end(OP_FORK, 1);
}

/* ------------------------------------------------------------------------
 * A worker process: threads drawing operations, and a pump thread
 * ------------------------------------------------------------------------
 */
static int pick_op(void)
{
	int total = 0, op, w, x;

	for (op = FIRST_WORKER_OP; op <= LAST_WORKER_OP; op++)
		if (sh->enabled[op])
			total += calm ? opinfo[op].calm : opinfo[op].w;
	if (!total)
		return -1;
	x = (int)rnd(total);
	for (op = FIRST_WORKER_OP; op <= LAST_WORKER_OP; op++) {
		if (!sh->enabled[op])
			continue;
		w = calm ? opinfo[op].calm : opinfo[op].w;
		if (x < w)
			return op;
		x -= w;
	}
	return -1;
}

struct thread_arg {
	int widx, t;
};

static void *worker_thread(void *p)
{
	struct thread_arg *ta = p;
	int64_t next_phase = now_ms() + 1000 + (int64_t)rnd(3000);

	seed_thread(proc_idx + 1, ta->t + 1);
	register_me(ta->widx, "p%d.t%d", proc_idx, ta->t);
	tmap = aligned_alloc(PG, TMAP_BYTES);
	memset(tmap, 0, TMAP_BYTES);
	while (!stopping()) {
		int op;

		if (ta->t == 0 && now_ms() > next_phase) {
			calm = !calm;
			next_phase = now_ms() + 1000 + (int64_t)rnd(calm ? 6000 : 4000);
		}
		op = pick_op();
		switch (op) {
		case OP_OPEN_HELPER: do_open(1); break;
		case OP_OPEN_OBSERVER: do_open(0); break;
		case OP_ATTACH_BAD: do_attach_bad(); break;
		case OP_CLOSE: do_close(); break;
		case OP_RING_SETUP: do_ring_setup(); break;
		case OP_MMAP: do_mmap(); break;
		case OP_MUNMAP: do_munmap(); break;
		case OP_POKE: do_poke(); break;
		case OP_PUMP: do_pump(); break;
		case OP_ENTER: do_enter(); break;
		case OP_POLL: do_poll(); break;
		case OP_LOCK: do_lock(); break;
		case OP_DUP_RELEASE: do_dup_release(); break;
		case OP_HARVEST: do_harvest(0); break;
		case OP_PEEK: do_harvest(1); break;
		case OP_ACK: do_regions(1); break;
		case OP_MARK: do_regions(0); break;
		case OP_INFO: do_info(); break;
		case OP_MIRROR: do_mirror(); break;
		case OP_BAD_IOCTL: do_bad_ioctl(); break;
		case OP_FORK: do_fork(); break;
		default: msleep(100); break;
		}
	}
	__atomic_store_n(&me->exited, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * The helper's pump: honest most of the time; in chaos phases it pauses
 * now and then for up to twice a short ring timeout, so that sqes time out.
 */
static void *pump_thread(void *p)
{
	struct thread_arg *ta = p;

	seed_thread(proc_idx + 1, 1000);
	register_me(ta->widx, "p%d.pump", proc_idx);
	while (!stopping()) {
		int i, k = (int)rnd(NSLOTS), any = 0;

		if (!sh->enabled[OP_PUMP]) {
			msleep(200);
			continue;
		}
		if (!calm && chance(3)) {
			op_begin(OP_PUMP, "pump paused");
			msleep((int)rnd(3000));
			op_end(OP_PUMP, 1);
		}
		for (i = 0; i < NSLOTS; i++)
			if (pump_slot(&slots[(k + i) % NSLOTS], 100 + (int)rnd(400), calm) >= 0)
				any = 1;
		if (!any)
			msleep(20);
	}
	__atomic_store_n(&me->exited, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void make_bad_area(void)
{
	struct sxm_attach *a;
	struct sxm_info *i;
	struct sxm_harvest *h;
	unsigned int ma = 0, mi = 0;

	bad_area = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bad_area == MAP_FAILED)
		abort();
	/* Valid structs, then the page read-only. */
	dev_numbers(&ma, &mi);
	a = (void *)(BA_RO + RO_ATTACH);
	a->size = sizeof(*a);
	a->dev_major = ma;
	a->dev_minor = mi;
	a->features = SXM_F_TRACK | SXM_F_MIRROR;
	i = (void *)(BA_RO + RO_INFO);
	i->size = sizeof(*i);
	h = (void *)(BA_RO + RO_HARVEST);
	h->size = sizeof(*h);
	h->flags = SXM_HARVEST_PEEK;
	h->bitmap_ptr = (uintptr_t)bad_area;
	h->bitmap_bytes = 4 * PG;
	mprotect(BA_NONE, PG, PROT_NONE);
	mprotect(BA_RO, PG, PROT_READ);
	munmap(BA_GONE, PG);
}

static void worker_process(int p)
{
	pthread_t th[64];
	struct thread_arg ta[64];
	pthread_rwlockattr_t ra;
	int t, i;

	proc_idx = p;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (i = 0; i < NSLOTS; i++) {
		pthread_mutex_init(&slots[i].mu, NULL);
		pthread_mutex_init(&slots[i].pump_mu, NULL);
		pthread_rwlock_init(&slots[i].maprw, &ra);
		slots[i].fd = -1;
	}
	make_bad_area();
	for (t = 0; t <= nthreads; t++) {
		ta[t].widx = 2 + p * (nthreads + 1) + t;
		ta[t].t = t;
		if (pthread_create(&th[t], NULL, t < nthreads ? worker_thread : pump_thread,
				   &ta[t])) {
			say("worker %d: pthread_create failed", p);
			__atomic_fetch_add(&sh->setup_err, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	for (i = 0; i < t; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NSLOTS; i++) {
		lock(&slots[i].mu);
		slot_close(&slots[i], 0);
		unlock(&slots[i].mu);
	}
	_exit(0);
}

/* ------------------------------------------------------------------------
 * The dm process: dmsetup racing everything else
 * ------------------------------------------------------------------------
 */
static char table[512];

/* Run dmsetup ARGS; its output into @out if given.  -1 if it did not run. */
static int dmsetup(char *out, size_t outlen, const char *fmt, ...)
{
	char line[1024], *argv[32], *tok;
	int pfd[2] = { -1, -1 }, argc = 0, st;
	int64_t deadline = now_ms() + (int64_t)(stuck_secs + 30) * 1000;
	size_t got = 0;
	va_list ap;
	pid_t pid;
	char *w;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	op_note("dmsetup %s", line);
	/* Words; '...' quotes one with spaces (the table). */
	argv[argc++] = "dmsetup";
	for (w = line; *w && argc < 31;) {
		while (*w == ' ')
			w++;
		if (!*w)
			break;
		if (*w == '\'') {
			tok = ++w;
			while (*w && *w != '\'')
				w++;
		} else {
			tok = w;
			while (*w && *w != ' ')
				w++;
		}
		if (*w)
			*w++ = 0;
		argv[argc++] = tok;
	}
	argv[argc] = NULL;
	if (out && pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(out ? pfd[1] : null, 1);
		dup2(null, 2);
		dup2(null, 0);
		execvp("dmsetup", argv);
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	}
	for (;;) {
		pid_t w2 = waitpid(pid, &st, WNOHANG);

		if (out) {
			ssize_t n;

			while (got + 1 < outlen &&
			       (n = read(pfd[0], out + got, outlen - 1 - got)) > 0)
				got += n;
		}
		if (w2 == pid)
			break;
		if (now_ms() > deadline) {
			say("dmsetup %s: still running after %d s, killed", line,
			    stuck_secs + 30);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			st = -1;
			break;
		}
		msleep(5);
	}
	if (out) {
		out[got] = 0;
		close(pfd[0]);
	}
	if (st == -1)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void dm_note_status(void)
{
	char out[300];
	char *p;

	if (dmsetup(out, sizeof(out), "status %s", dm_name) == 0) {
		if ((p = strchr(out, '\n')))
			*p = 0;
		snprintf(sh->status, sizeof(sh->status), "%s", out);
	}
}

/*
 * The run's time is up, but the endgame's remove and create still wait
 * for fio (slow to end on a debug kernel): up to --stuck seconds more,
 * the fuzzing going on meanwhile; said if fio outlasts that too.
 */
static int endgame_waits(int64_t stop_at)
{
	static int said;

	if (fio_pid <= 0 || !sh->enabled[OP_DM_RECREATE] ||
	    __atomic_load_n(&sh->recreate_done, __ATOMIC_ACQUIRE))
		return 0;
	if (now_ms() < stop_at + stuck_secs * 1000LL)
		return 1;
	if (!said++)
		say("t=%.0fs fio still runs: the device is not removed and created again this run",
		    elapsed());
	return 0;
}

/* Is @pid running (not gone, not a zombie)? */
static int pid_running(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void dm_process(void)
{
	int recreated = 0, waited = 0, r, v, i;
	int64_t next_remove = 0;

	seed_thread(777, 1);
	register_me(1, "dm");
	op_begin(OP_DM_STATUS, "read the table");
	r = dmsetup(table, sizeof(table), "table %s", dm_name);
	op_end(OP_DM_STATUS, r == 0);
	if (r || !strstr(table, " sxm ")) {
		say("dm: cannot read the table of %s", dm_name);
		__atomic_fetch_add(&sh->setup_err, 1, __ATOMIC_RELAXED);
		_exit(1);
	}
	for (i = 0; table[i]; i++)
		if (table[i] == '\n')
			table[i] = 0;
	while (!stopping()) {
		int total = 0, x, op;

		msleep(50 + (int)rnd(400));
		if (stopping())
			break;
		if (__atomic_load_n(&sh->endgame, __ATOMIC_ACQUIRE) && !recreated &&
		    sh->enabled[OP_DM_RECREATE] && now_ms() >= next_remove) {
			/* Not "busy" alone: fio may be between two opens. */
			if (fio_pid > 0 && pid_running(fio_pid)) {
				if (!waited++)
					ev(EV_REMOVE_WAITED, 1);
				next_remove = now_ms() + 200;
				continue;
			}
			op_begin(OP_DM_RECREATE, "remove %s", dm_name);
			r = dmsetup(NULL, 0, "remove %s", dm_name);
			if (r) {
				ev(EV_REMOVE_BUSY, 1);
				op_end(OP_DM_RECREATE, 0);
				next_remove = now_ms() + 1000;
				continue;
			}
			op_note("create %s", dm_name);
			r = dmsetup(NULL, 0, "create %s --table '%s'", dm_name, table);
			if (r) {
				say("dm: could not create %s again after removing it (%d)",
				    dm_name, r);
				__atomic_fetch_add(&sh->dm_fail, 1, __ATOMIC_RELAXED);
			} else {
				ev(EV_RECREATED, 1);
			}
			recreated = 1;
			__atomic_store_n(&sh->recreate_done, 1, __ATOMIC_RELEASE);
			op_end(OP_DM_RECREATE, r == 0);
			continue;
		}
		for (op = OP_DM_SUSPEND; op <= OP_DM_STATUS; op++)
			if (sh->enabled[op])
				total += opinfo[op].w;
		if (!total)
			continue;
		x = (int)rnd(total);
		for (op = OP_DM_SUSPEND; op <= OP_DM_STATUS; op++) {
			if (!sh->enabled[op])
				continue;
			if (x < opinfo[op].w)
				break;
			x -= opinfo[op].w;
		}
		v = (int)rnd(6);
		op_begin(op, "variant %d", v);
		switch (op) {
		case OP_DM_SUSPEND: {
			static const char *const how[] = { "", "--noflush ", "--nolockfs ",
							   "", "", "" };

			r = dmsetup(NULL, 0, "suspend %s%s", how[v], dm_name);
			msleep((int)rnd(200));
			if (dmsetup(NULL, 0, "resume %s", dm_name)) {
				say("dm: resume %s failed", dm_name);
				__atomic_fetch_add(&sh->dm_fail, 1, __ATOMIC_RELAXED);
			} else if (!r) {
				ev(EV_SUSPENDS, 1);
			}
			break;
		}
		case OP_DM_RELOAD: {
			char t2[600], *sp;
			int bad = 0;

			snprintf(t2, sizeof(t2), "%s", table);
			switch (v) {
			case 0: case 1: case 2:		/* the same table */
				break;
			case 3:				/* the same, passthrough */
				if ((sp = strstr(t2, " 1 track")))
					*sp = 0;
				break;
			case 4:				/* another region size */
				if ((sp = strstr(t2, " 8 1 track")))
					memcpy(sp, " 16 1 track", 12);
				else
					strncat(t2, " bogus", sizeof(t2) - strlen(t2) - 1);
				bad = 1;
				break;
			default:			/* bad arguments */
				strncat(t2, chance(50) ? " 2 track" : " x", sizeof(t2) - strlen(t2) - 1);
				bad = 1;
				break;
			}
			r = dmsetup(NULL, 0, "load %s --table '%s'", dm_name, t2);
			if (!r && bad) {
				say("dm: a bad table was loaded: %s", t2);
				__atomic_fetch_add(&sh->unexpected, 1, __ATOMIC_RELAXED);
			}
			if (!r) {
				if (dmsetup(NULL, 0, "resume %s", dm_name)) {
					dmsetup(NULL, 0, "clear %s", dm_name);
					dmsetup(NULL, 0, "resume %s", dm_name);
				} else {
					ev(EV_RELOADS, 1);
				}
			}
			if (bad)
				r = !r;
			break;
		}
		case OP_DM_MESSAGE: {
			static const char *const msg[] = { "mode mirror", "mode track",
				"mode passthrough", "mode mirror", "mode bogus", "frobnicate" };

			r = dmsetup(NULL, 0, "message %s 0 %s", dm_name, msg[v]);
			break;
		}
		default:
			if (v < 3) {
				dm_note_status();
				r = 0;
			} else {
				r = dmsetup(NULL, 0, v == 3 ? "table %s" : v == 4 ? "info %s" :
					    "status --target sxm %s", dm_name);
			}
			break;
		}
		op_end(op, r == 0);
	}
	/* Never leave it suspended. */
	dmsetup(NULL, 0, "resume %s", dm_name);
	dm_note_status();
	_exit(0);
}

/* ------------------------------------------------------------------------
 * The writer process: the part of the device fio leaves alone
 * ------------------------------------------------------------------------
 */
static void show_all_threads(void);

/*
 * What a 4 KiB block read back holds instead of what was written: zeros,
 * an older write of ours (its sequence number), or something else.
 */
static void what_is_there(const uint8_t *blk, uint64_t off, char *out, size_t n)
{
	const uint64_t *w = (const void *)blk;
	size_t i;

	for (i = 0; i < PG && !blk[i]; i++)
		;
	if (i == PG)
		snprintf(out, n, "zeros");
	else if (w[0] == off)
		snprintf(out, n, "our older write #%llu", (unsigned long long)w[1]);
	else
		snprintf(out, n, "other bytes %016llx %016llx (zero up to +%zu)",
			 (unsigned long long)w[0], (unsigned long long)w[1], i);
}

static void writer_mismatch(int fd, const uint8_t *buf, uint8_t *rbuf,
			    uint64_t off, uint64_t len, uint64_t seq)
{
	char what[120], again[120] = "";
	uint64_t b, bad = 0, first = 0;

	for (b = 0; b < len; b += PG)
		if (memcmp(buf + b, rbuf + b, PG) && !bad++)
			first = b;
	what_is_there(rbuf + first, off + first, what, sizeof(what));
	msleep(200);
	if (pread(fd, rbuf, len, off) == (ssize_t)len)
		snprintf(again, sizeof(again), "%s",
			 memcmp(buf + first, rbuf + first, PG) ? "still wrong" : "now right");
	__atomic_fetch_add(&sh->writer_mismatch, 1, __ATOMIC_RELAXED);
	say("WRITER: read-back mismatch at %llu+%llu (write #%llu, t=%.1fs): %llu of %llu "
	    "blocks differ, the first at +%llu holds %s; 200 ms later %s",
	    (unsigned long long)off, (unsigned long long)len, (unsigned long long)seq,
	    elapsed(), (unsigned long long)bad, (unsigned long long)(len / PG),
	    (unsigned long long)first, what, again);
	if (sh->status[0])
		say("  last status seen: %s", sh->status);
	show_all_threads();
}

static void writer_process(void)
{
	uint64_t size = 0, lo, hi, seq = 0;
	uint8_t *buf, *rbuf;
	int fd = -1, i;

	seed_thread(555, 1);
	register_me(0, "writer");
	if (posix_memalign((void **)&buf, PG, 1 << 20) ||
	    posix_memalign((void **)&rbuf, PG, 1 << 20))
		_exit(1);
	while (!stopping() && !__atomic_load_n(&sh->endgame, __ATOMIC_ACQUIRE)) {
		uint64_t off, len, words[2];
		int k = (int)rnd(100), ok = 1;
		ssize_t n;

		if (fd < 0) {
			fd = open(dm_path, O_RDWR | O_DIRECT);
			if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size)) {
				say("writer: cannot open %s: %s", dm_path, strerror(errno));
				__atomic_fetch_add(&sh->setup_err, 1, __ATOMIC_RELAXED);
				_exit(1);
			}
		}
		lo = (fio_bytes + (1 << 20) - 1) & ~((1ULL << 20) - 1);
		hi = size & ~(PG - 1);
		if (hi < lo + (1 << 20)) {
			say("writer: no room past fio's %llu bytes", (unsigned long long)fio_bytes);
			break;
		}
		len = PG * (1 + rnd(chance(80) ? 16 : 256));
		if (len > hi - lo)
			len = PG;
		off = lo + PG * rnd((hi - lo - len) / PG + 1);
		op_begin(OP_WRITE, "kind %d %llu+%llu", k, (unsigned long long)off,
			 (unsigned long long)len);
		if (k < 80) {
			struct iovec iov = { buf, len };

			seq++;
			for (i = 0; i < (int)(len / 8); i += 2) {
				((uint64_t *)buf)[i] = off + i * 8;
				((uint64_t *)buf)[i + 1] = seq;
			}
			n = k < 70 ? pwrite(fd, buf, len, off)
				   : pwritev2(fd, &iov, 1, off, RWF_DSYNC);
			if (n != (ssize_t)len) {
				ok = 0;
			} else {
				op_note("read back %llu+%llu", (unsigned long long)off,
					(unsigned long long)len);
				if (pread(fd, rbuf, len, off) != (ssize_t)len)
					ok = 0;
				else if (memcmp(buf, rbuf, len))
					writer_mismatch(fd, buf, rbuf, off, len, seq);
			}
		} else if (k < 88) {
			ok = !fdatasync(fd);
		} else if (k < 94) {
			words[0] = off;
			words[1] = len;
			ok = !ioctl(fd, BLKDISCARD, words);
		} else {
			words[0] = off;
			words[1] = len;
			ok = !ioctl(fd, BLKZEROOUT, words);
			if (ok && pread(fd, rbuf, len, off) == (ssize_t)len) {
				for (i = 0; i < (int)len; i++)
					if (rbuf[i])
						break;
				if (i < (int)len) {
					__atomic_fetch_add(&sh->writer_mismatch, 1, __ATOMIC_RELAXED);
					say("writer: zeroed range %llu+%llu reads non-zero at +%d",
					    (unsigned long long)off, (unsigned long long)len, i);
				}
			}
		}
		if (!ok) {
			__atomic_fetch_add(&sh->writer_err, 1, __ATOMIC_RELAXED);
			say("writer: I/O error (kind %d at %llu+%llu): %s (t=%.1fs)", k,
			    (unsigned long long)off, (unsigned long long)len,
			    strerror(errno), elapsed());
		}
		ev(EV_WRITES, 1);
		op_end(OP_WRITE, ok);
		if (rnd(4) == 0)
			msleep((int)rnd(20));
	}
	if (fd >= 0)
		close(fd);
	_exit(0);
}

/* ------------------------------------------------------------------------
 * The main process: the kernel log, the watchdog, progress, the summary
 * ------------------------------------------------------------------------
 */
static const char *const bad_words[] = {
	"Oops", "BUG:", "WARNING:", "kernel BUG", "general protection",
	"hung_task", "blocked for more than", "Kernel panic", "KASAN",
	"UBSAN", "circular locking", "possible recursive locking",
	"lock held when returning", "refcount_t:", "list_add corruption",
	"list_del corruption", "INFO: task", "inconsistent lock state",
	"sleeping function called", "soft lockup", "hard LOCKUP", "rcu_sched",
	"rcu_preempt", "RCU stall", "stack-protector", "double fault",
	NULL
};

static int kmsg_fd = -1, kmsg_ctx;	/* lines still to show after a report */
static int reports_shown;

static const char *op_name(int op)
{
	return op >= 0 && op < NR_OPS ? opinfo[op].name : "-";
}

static void show_thread(struct wstat *w, const char *why)
{
	char hist[200] = "";
	size_t l = 0;
	unsigned int i, n = w->hist_n;
	int op = __atomic_load_n(&w->op, __ATOMIC_ACQUIRE);

	for (i = n > HIST ? n - HIST : 0; i < n; i++)
		l += snprintf(hist + l, sizeof(hist) - l, "%s%s", l ? " " : "",
			      op_name(w->hist[i % HIST]));
	say("  %s %s (pid %d tid %d): in %s [%s] for %.1f s; before: %s", why,
	    w->name, w->pid, w->tid, op_name(op), op >= 0 ? w->desc : "",
	    op >= 0 ? (now_ms() - w->op_start) / 1000.0 : 0.0, hist);
}

static void show_all_threads(void)
{
	int i;

	for (i = 0; i < MAX_W; i++)
		if (sh->w[i].used && __atomic_load_n(&sh->w[i].op, __ATOMIC_ACQUIRE) >= 0)
			show_thread(&sh->w[i], "busy");
}

static void show_stack(int pid, int tid)
{
	char p[96], b[4096];
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/task/%d/stack", pid, tid);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return;
	b[n] = 0;
	if (strstr(b, "futex_wait") && !strstr(b, "dm_sxm")) {
		say("    (waiting on one of the fuzzer's own locks, behind another thread)");
		return;
	}
	for (char *s = b, *e; *s; s = e) {
		e = strchr(s, '\n');
		if (e)
			*e++ = 0;
		else
			e = s + strlen(s);
		if (*s)
			say("    %s", s);
	}
}

/* The thread whose kernel id is @tid, if it is ours. */
static struct wstat *find_tid(int tid)
{
	int i;

	for (i = 0; i < MAX_W; i++)
		if (sh->w[i].used && sh->w[i].tid == tid)
			return &sh->w[i];
	return NULL;
}

/* A report not seen before (digits aside: "blocked for more than 35 s")? */
static int new_report(const char *msg)
{
	static char seen[16][80];
	static int nseen;
	char key[80];
	size_t k = 0;
	int i;

	for (; *msg && k < sizeof(key) - 1; msg++)
		if (*msg < '0' || *msg > '9')
			key[k++] = *msg;
	key[k] = 0;
	for (i = 0; i < nseen; i++)
		if (!strcmp(seen[i], key))
			return 0;
	if (nseen < 16)
		strcpy(seen[nseen++], key);
	return 1;
}

static void kmsg_line(char *msg)
{
	const char *const *b;
	char *p;

	/* "mirror degraded: REASON" is the target doing its job. */
	if ((p = strstr(msg, "mirror degraded: "))) {
		char reason[40];

		ev(EV_DEGRADED_LOG, 1);
		if (sscanf(p + 17, "%39s", reason) == 1 &&
		    !strstr(sh->degrade_reasons, reason) &&
		    strlen(sh->degrade_reasons) + strlen(reason) + 2 < sizeof(sh->degrade_reasons)) {
			if (sh->degrade_reasons[0])
				strcat(sh->degrade_reasons, " ");
			strcat(sh->degrade_reasons, reason);
		}
		return;
	}
	for (b = bad_words; *b; b++)
		if (strstr(msg, *b))
			break;
	if (*b) {
		__atomic_fetch_add(&sh->kernel, 1, __ATOMIC_RELAXED);
		if (new_report(msg) && reports_shown++ < 8) {
			say("KERNEL at t=%.1fs: %s", elapsed(), msg);
			if (reports_shown == 1) {
				say("what every thread was doing:");
				show_all_threads();
			}
			kmsg_ctx = 40;
		} else {
			kmsg_ctx = 0;
		}
		if (!keep_going && !sh->abort_run) {
			sh->abort_run = 1;
		}
	} else if (kmsg_ctx > 0) {
		kmsg_ctx--;
		say("  kernel: %s", msg);
	}
	/* Whose report: "CPU: 1 PID: 123 Comm: ..." or "task NAME:123 blocked". */
	if (kmsg_ctx > 0 || *b) {
		int tid = 0;
		struct wstat *w;

		if ((p = strstr(msg, " PID: ")))
			tid = atoi(p + 6);
		else if ((p = strstr(msg, "INFO: task ")) && (p = strchr(p + 11, ':')))
			tid = atoi(p + 1);
		if (tid && (w = find_tid(tid)))
			show_thread(w, "the kernel report is from");
	}
}

static void kmsg_drain(void)
{
	char rec[8192];
	ssize_t n;

	if (kmsg_fd < 0)
		return;
	for (;;) {
		char *msg, *nl;

		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n <= 0)
			return;
		rec[n] = 0;
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		if ((nl = strchr(msg, '\n')))
			*nl = 0;
		kmsg_line(msg);
	}
}

static int task_alive(int pid, int tid)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d/task/%d", pid, tid);
	return !stat(p, &st);
}

static void watchdog(void)
{
	int64_t now = now_ms(), start;
	int i;

	for (i = 0; i < MAX_W; i++) {
		struct wstat *w = &sh->w[i];
		int op;

		if (!w->used)
			continue;
		op = __atomic_load_n(&w->op, __ATOMIC_ACQUIRE);
		if (op < 0)
			continue;
		start = __atomic_load_n(&w->op_start, __ATOMIC_ACQUIRE);
		/* Gone with the same operation still on: not a thread that ended. */
		if (!w->died_reported && !sh->killing && !task_alive(w->pid, w->tid) &&
		    __atomic_load_n(&w->op, __ATOMIC_ACQUIRE) == op &&
		    __atomic_load_n(&w->op_start, __ATOMIC_ACQUIRE) == start &&
		    !__atomic_load_n(&w->exited, __ATOMIC_ACQUIRE)) {
			w->died_reported = 1;
			__atomic_fetch_add(&sh->died, 1, __ATOMIC_RELAXED);
			say("DIED in %s: the thread is gone mid-operation (killed by the kernel, "
			    "or the fuzzer crashed)",
			    op_name(op));
			show_thread(w, "died");
			sh->abort_run = 1;
			continue;
		}
		if (__atomic_load_n(&w->nowait, __ATOMIC_ACQUIRE) && !w->heldup_reported &&
		    now - w->step_start > stuck_secs * 50LL) {
			uint64_t k;

			w->heldup_reported = 1;
			k = __atomic_fetch_add(&sh->held_up, 1, __ATOMIC_RELAXED);
			if (k < 10)
				say("HELD UP in %s at t=%.1fs: a call that waits for nothing has "
				    "waited %.1f s (behind another call on the same file?)%s",
				    op_name(op), elapsed(), (now - w->step_start) / 1000.0,
				    k < 2 ? ":" : "");
			if (k < 10)
				show_thread(w, "held up");
			if (k < 2) {
				show_stack(w->pid, w->tid);
				say("  the others:");
				show_all_threads();
			}
		}
		if (!w->stuck_reported && now - w->op_start > stuck_secs * 1000LL) {
			w->stuck_reported = 1;
			__atomic_fetch_add(&sh->stuck, 1, __ATOMIC_RELAXED);
			say("STUCK in %s for %d s at t=%.1fs:", op_name(op), stuck_secs, elapsed());
			show_thread(w, "stuck");
			show_stack(w->pid, w->tid);
			sh->abort_run = 1;
		}
	}
}

static void totals(uint64_t *n, uint64_t *err, int64_t *maxms)
{
	int i, op;

	memset(n, 0, sizeof(*n) * NR_OPS);
	memset(err, 0, sizeof(*err) * NR_OPS);
	memset(maxms, 0, sizeof(*maxms) * NR_OPS);
	for (i = 0; i < MAX_W; i++)
		for (op = 0; op < NR_OPS; op++) {
			n[op] += sh->w[i].n[op];
			err[op] += sh->w[i].err[op];
			if (sh->w[i].maxms[op] > maxms[op])
				maxms[op] = sh->w[i].maxms[op];
		}
}

static void progress(void)
{
	uint64_t n[NR_OPS], err[NR_OPS], sum = 0;
	int64_t maxms[NR_OPS];
	char b[1100];
	size_t l = 0;
	int op;

	totals(n, err, maxms);
	for (op = 0; op < NR_OPS; op++) {
		sum += n[op];
		if (n[op])
			l += snprintf(b + l, sizeof(b) - l, " %s=%llu", opinfo[op].name,
				      (unsigned long long)n[op]);
		if (l >= sizeof(b))
			break;
	}
	say("t=%.0fs ops=%llu:%s", elapsed(), (unsigned long long)sum, b);
	if (sh->status[0])
		say("t=%.0fs status: %s", elapsed(), sh->status);
}

static void summary(int secs)
{
	uint64_t n[NR_OPS], err[NR_OPS], sum = 0;
	int64_t maxms[NR_OPS];
	int op, e;

	totals(n, err, maxms);
	for (op = 0; op < NR_OPS; op++)
		sum += n[op];
	say("iterations in %d s (seed %llu): %llu operations", secs,
	    (unsigned long long)sh->seed, (unsigned long long)sum);
	for (op = 0; op < NR_OPS; op++)
		if (n[op] || sh->enabled[op])
			say("  %-14s %8llu  (%llu returned an error, slowest %lld ms)%s",
			    opinfo[op].name, (unsigned long long)n[op],
			    (unsigned long long)err[op], (long long)maxms[op],
			    sh->enabled[op] ? "" : "  [skipped]");
	say("events:");
	for (e = 0; e < NR_EVS; e++)
		say("  %-40s %llu", evnames[e], (unsigned long long)sh->ev[e]);
	if (sh->degrade_reasons[0])
		say("  degrade reasons seen: %s", sh->degrade_reasons);
	for (op = 0; op < NR_OPS; op++)
		for (e = 0; e < 32; e++)
			if (sh->unexp_seen[op][e])
				say("unexpected: %s case %d: %d times", opinfo[op].name, e,
				    sh->unexp_seen[op][e]);
	if (sh->status[0])
		say("last status: %s", sh->status);
	say("verdict: kernel reports %llu, stuck %llu, held up %llu, died %llu, unexpected %llu, "
	    "writer errors %llu, writer mismatches %llu, dm failures %llu, setup errors %llu",
	    (unsigned long long)sh->kernel, (unsigned long long)sh->stuck,
	    (unsigned long long)sh->held_up,
	    (unsigned long long)sh->died, (unsigned long long)sh->unexpected,
	    (unsigned long long)sh->writer_err, (unsigned long long)sh->writer_mismatch,
	    (unsigned long long)sh->dm_fail, (unsigned long long)sh->setup_err);
}

static void write_results(int secs, int unkillable)
{
	uint64_t n[NR_OPS], err[NR_OPS], sum = 0;
	int64_t maxms[NR_OPS];
	FILE *f;
	int op;

	if (!results_path || !(f = fopen(results_path, "w")))
		return;
	totals(n, err, maxms);
	for (op = 0; op < NR_OPS; op++)
		sum += n[op];
	fprintf(f, "seed=%llu\nseconds=%d\nops=%llu\nkernel=%llu\nstuck=%llu\n"
		"died=%llu\nunkillable=%d\nunexpected=%llu\nwriter_errors=%llu\n"
		"writer_mismatches=%llu\ndm_failures=%llu\nsetup_errors=%llu\n"
		"recreated=%llu\nhonest_cqes=%llu\nmirror_on=%llu\ndegraded=%llu\n"
		"held_up=%llu\n",
		(unsigned long long)sh->seed, secs, (unsigned long long)sum,
		(unsigned long long)sh->kernel, (unsigned long long)sh->stuck,
		(unsigned long long)sh->died, unkillable,
		(unsigned long long)sh->unexpected,
		(unsigned long long)sh->writer_err,
		(unsigned long long)sh->writer_mismatch,
		(unsigned long long)sh->dm_fail, (unsigned long long)sh->setup_err,
		(unsigned long long)sh->ev[EV_RECREATED],
		(unsigned long long)sh->ev[EV_HONEST_CQES],
		(unsigned long long)sh->ev[EV_MIRROR_ON],
		(unsigned long long)sh->ev[EV_DEGRADED_LOG],
		(unsigned long long)sh->held_up);
	for (op = 0; op < NR_OPS; op++)
		fprintf(f, "op_%s=%llu\n", opinfo[op].name, (unsigned long long)n[op]);
	fclose(f);
}

static int set_kinds(const char *list, int on)
{
	char buf[512], *tok, *save;
	int op, found;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (char *c = tok; *c; c++)
			if (*c == '_')
				*c = '-';
		found = 0;
		for (op = 0; op < NR_OPS; op++)
			if (!strcmp(tok, opinfo[op].name)) {
				sh->enabled[op] = on;
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "sxm_fuzz_tool: unknown operation kind '%s' (--list)\n", tok);
			return -1;
		}
	}
	return 0;
}

static void usage(int rc)
{
	printf("usage: sxm_fuzz_tool --device NAME [--duration SECS] [--seed N]\n"
	       "       [--procs N] [--threads N] [--stuck SECS] [--fio-bytes BYTES]\n"
	       "       [--fio-pid PID] [--no-KIND ...] [--skip KIND,...] [--only KIND,...]\n"
	       "       [--results FILE] [--keep-going] [--list]\n");
	exit(rc);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	pid_t kids[40];
	int nkids = 0, i, p, unkillable = 0, have_seed = 0, list = 0;
	int64_t start, last_progress, stop_at;
	const char *only = NULL;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	for (i = 0; i < NR_OPS; i++)
		sh->enabled[i] = 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char opt[64];
		const char *eq = strchr(a, '=');

		/* --opt=value as well as --opt value */
		if (!strncmp(a, "--", 2) && eq && eq - a < (int)sizeof(opt)) {
			static const char *const valued[] = { "--device", "--duration",
				"--seed", "--procs", "--threads", "--stuck", "--fio-bytes",
				"--fio-pid",
				"--results", "--skip", "--only", NULL };
			const char *const *o;

			snprintf(opt, sizeof(opt), "%.*s", (int)(eq - a), a);
			for (o = valued; *o && strcmp(*o, opt); o++)
				;
			if (!*o) {
				fprintf(stderr, "sxm_fuzz_tool: bad argument '%s'\n", a);
				usage(2);
			}
			a = opt;
			v = eq + 1;
			i--;
		}

		if (!strcmp(a, "--device") && v) {
			dm_name = v;
			i++;
		} else if (!strcmp(a, "--duration") && v) {
			duration = atoi(v);
			i++;
		} else if (!strcmp(a, "--seed") && v) {
			seed = strtoull(v, NULL, 0);
			have_seed = 1;
			i++;
		} else if (!strcmp(a, "--procs") && v) {
			nprocs = atoi(v);
			i++;
		} else if (!strcmp(a, "--threads") && v) {
			nthreads = atoi(v);
			i++;
		} else if (!strcmp(a, "--stuck") && v) {
			stuck_secs = atoi(v);
			i++;
		} else if (!strcmp(a, "--fio-bytes") && v) {
			fio_bytes = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--fio-pid") && v) {
			fio_pid = (pid_t)atoi(v);
			i++;
		} else if (!strcmp(a, "--results") && v) {
			results_path = v;
			i++;
		} else if (!strcmp(a, "--skip") && v) {
			if (set_kinds(v, 0))
				return 2;
			i++;
		} else if (!strcmp(a, "--only") && v) {
			only = v;
			i++;
		} else if (!strcmp(a, "--keep-going")) {
			keep_going = 1;
		} else if (!strcmp(a, "--list")) {
			list = 1;
		} else if (!strncmp(a, "--no-", 5)) {
			if (set_kinds(a + 5, 0))
				return 2;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(0);
		} else {
			fprintf(stderr, "sxm_fuzz_tool: bad argument '%s'\n", a);
			usage(2);
		}
	}
	if (list) {
		for (i = 0; i < NR_OPS; i++)
			printf("%s\n", opinfo[i].name);
		return 0;
	}
	if (only) {
		for (i = 0; i < NR_OPS; i++)
			sh->enabled[i] = 0;
		if (set_kinds(only, 1))
			return 2;
	}
	if (!dm_name || duration <= 0 || nprocs < 1 || nthreads < 1 ||
	    nthreads > 32 || 2 + nprocs * (nthreads + 1) > MAX_W || stuck_secs < 5)
		usage(2);
	snprintf(dm_path, sizeof(dm_path), "/dev/mapper/%s", dm_name);
	if (!have_seed) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ getpid();
		seed &= (1ULL << 48) - 1;
	}
	sh->seed = seed;
	sh->t0 = now_ms();
	setvbuf(stdout, NULL, _IONBF, 0);

	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	{
		char skipped[600] = "";
		size_t l = 0;

		for (i = 0; i < NR_OPS; i++)
			if (!sh->enabled[i])
				l += snprintf(skipped + l, sizeof(skipped) - l, " %s",
					      opinfo[i].name);
		say("sxm_fuzz_tool: seed %llu (replay: --seed %llu), %d s, device %s, "
		    "%d processes x %d threads + pump, dm process, writer; stuck after %d s%s%s",
		    (unsigned long long)seed, (unsigned long long)seed, duration, dm_name,
		    nprocs, nthreads, stuck_secs, l ? "; skipped:" : "", skipped);
	}

	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (kmsg_fd >= 0)
		lseek(kmsg_fd, 0, SEEK_END);
	else
		say("cannot read /dev/kmsg (%s): kernel reports are left to the harness",
		    strerror(errno));

	/* Children: no fd of ours but 0-2 (the workers fuzz every fd > 2). */
#define SPAWN(fn)							\
	do {								\
		pid_t pid_ = fork();					\
		if (pid_ == 0) {					\
			for (int fd_ = 3; fd_ < 1024; fd_++)		\
				close(fd_);				\
			fn;						\
		}							\
		if (pid_ > 0)						\
			kids[nkids++] = pid_;				\
	} while (0)

	if (sh->enabled[OP_WRITE])
		SPAWN(writer_process());
	if (sh->enabled[OP_DM_SUSPEND] || sh->enabled[OP_DM_RELOAD] ||
	    sh->enabled[OP_DM_MESSAGE] || sh->enabled[OP_DM_STATUS] ||
	    sh->enabled[OP_DM_RECREATE])
		SPAWN(dm_process());
	for (p = 0; p < nprocs; p++)
		SPAWN(worker_process(p));

	/* Who is who: a console Oops names its task by pid. */
	msleep(500);
	{
		char b[1000];
		size_t l = 0;

		for (i = 0; i < MAX_W && l < sizeof(b) - 40; i++)
			if (__atomic_load_n(&sh->w[i].used, __ATOMIC_ACQUIRE))
				l += snprintf(b + l, sizeof(b) - l, " %s=%d", sh->w[i].name,
					      sh->w[i].tid);
		say("threads (name=tid):%s", b);
	}

	start = now_ms();
	last_progress = start;
	stop_at = start + duration * 1000LL;
	while (now_ms() < stop_at || endgame_waits(stop_at)) {
		msleep(100);
		kmsg_drain();
		watchdog();
		if (!sh->endgame && now_ms() >= start + duration * 850LL) {
			__atomic_store_n(&sh->endgame, 1, __ATOMIC_RELEASE);
			say("t=%.0fs endgame: the writer stops, the device is removed and "
			    "created again once fio is done", elapsed());
		}
		if (now_ms() - last_progress >= 10000) {
			last_progress = now_ms();
			progress();
		}
		if (sh->abort_run) {
			/* Collect what the kernel says next, then stop. */
			int64_t t = now_ms() + 3000;

			while (now_ms() < t) {
				msleep(100);
				kmsg_drain();
			}
			say("stopping early at t=%.1fs: something failed (--keep-going to go on)",
			    elapsed());
			break;
		}
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);

	/* Everyone ends its operation; a wait bounded by the ring timeout. */
	{
		int64_t grace = now_ms() + (stuck_secs + 10) * 1000LL;
		int alive = nkids;

		while (alive && now_ms() < grace) {
			alive = 0;
			for (i = 0; i < nkids; i++) {
				int st;

				if (kids[i] <= 0)
					continue;
				if (waitpid(kids[i], &st, WNOHANG) == kids[i]) {
					if (WIFSIGNALED(st)) {
						say("process %d died of signal %d", kids[i],
						    WTERMSIG(st));
						__atomic_fetch_add(&sh->setup_err, 1,
								   __ATOMIC_RELAXED);
					}
					kids[i] = 0;
				} else {
					alive++;
				}
			}
			msleep(100);
			kmsg_drain();
			watchdog();
		}
		if (alive) {
			sh->killing = 1;
			say("%d processes still running after the stop: killing them", alive);
			show_all_threads();
			for (i = 0; i < nkids; i++)
				if (kids[i] > 0)
					kill(kids[i], SIGKILL);
			grace = now_ms() + 10000;
			while (alive && now_ms() < grace) {
				alive = 0;
				for (i = 0; i < nkids; i++) {
					if (kids[i] <= 0)
						continue;
					if (waitpid(kids[i], NULL, WNOHANG) == kids[i])
						kids[i] = 0;
					else
						alive++;
				}
				msleep(100);
			}
			if (alive) {
				unkillable = alive;
				say("%d processes survive SIGKILL (in the kernel):", alive);
				for (i = 0; i < MAX_W; i++)
					if (sh->w[i].used &&
					    __atomic_load_n(&sh->w[i].op, __ATOMIC_ACQUIRE) >= 0 &&
					    task_alive(sh->w[i].pid, sh->w[i].tid)) {
						show_thread(&sh->w[i], "unkillable");
						show_stack(sh->w[i].pid, sh->w[i].tid);
					}
			}
		}
	}
	/* In case the dm process was killed between suspend and resume. */
	if (sh->enabled[OP_DM_SUSPEND]) {
		me = NULL;
		dmsetup(NULL, 0, "resume %s", dm_name);
	}
	msleep(500);
	kmsg_drain();
	progress();
	summary((int)((now_ms() - start + 500) / 1000));
	write_results((int)((now_ms() - start + 500) / 1000), unkillable);
	if (sh->kernel || sh->stuck || sh->held_up || sh->died || unkillable || sh->unexpected ||
	    sh->writer_err || sh->writer_mismatch || sh->dm_fail || sh->setup_err)
		return 1;
	return 0;
}
