# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# mirror.sh — helpers of the mirror-style tests (tests/vm/5*-mirror*.sh),
# on top of test_common.sh and warm.sh (source those first).
#
#   mstate DM                the mirror's state and reason from the
#                            target's status: "on -", "degraded sink_error"
#   mfield DM N              field N of "dmsetup status DM" (11 the mirror's
#                            state, 12 in flight, 13 held back, 14 writes
#                            mirrored, 16 degradations, 17 the reason)
#   wait_mirror DM STATE [SECS]
#                            until the mirror is in STATE (on, degraded)
#   dev_writes DM            writes DM has completed (/sys/block/dm-N/stat)
#   wait_writes DM N [SECS]  until DM completed N writes more than when
#                            called (default 60 s): the guest writes on
#   wait_mirrored DM N [SECS]
#                            until the target mirrored N writes more than
#                            when called (default 60 s)
#   wait_drained DM [SECS]   until no I/O is in flight in DM
#                            (/sys/block/dm-N/inflight "0 0") and none
#                            starts for half a second (default 60 s)
#   reason_count JOB REASON  times the job counted the mirror down for
#                            REASON (its "degraded_reasons")
#   last_event JOB           the time of the job's newest event (0 if none)
#   event_since JOB T ERE    the job has an event newer than time T (from
#                            last_event) whose text matches ERE
#   check_event DESC JOB T ERE
#                            a test point: within 60 s, event_since JOB T ERE
#   job_mirror_up JOB        the job's newest mirror event is "mirror back
#                            on" (or it has none): it is not resyncing
#   mirror_steady DM JOB     the kernel's mirror on, the job Mirrored and
#                            job_mirror_up (its resync done)
#   stays_on DESC DM JOB SECS [PHASE]
#                            a test point: sampled every 0.2 s for SECS s
#                            and until 20 more writes were mirrored (at
#                            most a minute), the mirror stays on with the
#                            kernel's and the job's degradation counts
#                            unchanged, the job in PHASE (Mirrored)
#   compare_clean DESC DM SRC SINK FIOPID...
#                            a test point: with the writers frozen
#                            (SIGSTOP: run fio with --thread) and DM's
#                            writes in flight drained, SRC and the sink
#                            (its file, or an nbd:// URI read with
#                            nbdcopy) are equal over every region of DM
#                            not dirty or held; on a difference, the fio
#                            headers (with their time stamps) of the first
#                            blocks that differ

mstate() {
	dmsetup status "$1" | awk '{ print $11, $17 }'
}

mfield() {
	dmsetup status "$1" | awk -v n="$2" '{ print $n }'
}

_mirror_is() { [ "$(mfield "$1" 11)" = "$2" ]; }

wait_mirror() {
	wait_until "${3:-60}" _mirror_is "$1" "$2"
}

# /sys/block/dm-N of the dm device named $1.
_mirror_sysblk() {
	local d
	for d in /sys/block/dm-*; do
		[ "$(cat "$d/dm/name" 2>/dev/null)" = "$1" ] || continue
		echo "$d"
		return 0
	done
	echo "no dm device named $1 in /sys/block" >&2
	return 1
}

dev_writes() {
	awk '{ print $5 }' "$(_mirror_sysblk "$1")/stat"
}

_mirror_ge() { [ "$("$1" "$2")" -ge "$3" ]; }

wait_writes() {
	local w0
	w0=$(dev_writes "$1")
	wait_until "${3:-60}" _mirror_ge dev_writes "$1" $((w0 + $2))
}

_mirror_mirrored() { mfield "$1" 14; }

wait_mirrored() {
	local w0
	w0=$(_mirror_mirrored "$1")
	wait_until "${3:-60}" _mirror_ge _mirror_mirrored "$1" $((w0 + $2))
}

# Nothing in flight now, and no write completed for half a second since:
# a request fio had queued but not yet issued (io_uring's worker) would
# show in the count.
_mirror_still() {
	local d=$1 w
	awk '{ exit !($1 == 0 && $2 == 0) }' "$d/inflight" || return 1
	w=$(awk '{ print $5 }' "$d/stat")
	sleep 0.5
	awk '{ exit !($1 == 0 && $2 == 0) }' "$d/inflight" &&
		[ "$(awk '{ print $5 }' "$d/stat")" = "$w" ]
}

wait_drained() {
	local d
	d=$(_mirror_sysblk "$1") || return 1
	wait_until "${2:-60}" _mirror_still "$d"
}

reason_count() {
	jf "$1" degraded_reasons | tr ' ' '\n' |
		awk -F: -v r="$2" '$1 == r { n = $2 } END { print n + 0 }'
}

# "TIME TEXT", a line per event of JOB, oldest first.
_mirror_events() {
	sxm-ctl show "$1" --json | tr '{' '\n' |
		sed -n 's/^"time":\([0-9.]*\),"text":"\(.*\)"}.*/\1 \2/p'
}

last_event() {
	_mirror_events "$1" | awk '{ t = $1 } END { printf "%.3f\n", t }'
}

event_since() {
	_mirror_events "$1" | awk -v t="$2" '$1 + 0 > t + 0' | grep -qE -- "$3"
}

check_event() {
	if wait_until 60 event_since "$2" "$3" "$4"; then
		pass "$1"
	else
		fail "$1" "no event matching '$4' after $3 in: $(sxm-ctl show "$2")"
	fi
}

job_mirror_up() {
	! _mirror_events "$1" | grep -E ' (mirror degraded|mirror back on after)' |
		tail -n 1 | grep -q ' mirror degraded'
}

mirror_steady() {
	[ "$(mfield "$1" 11)" = on ] && [ "$(jf "$2" phase)" = Mirrored ] &&
		job_mirror_up "$2"
}

stays_on() {
	local desc=$1 dm=$2 job=$3 secs=$4 phase=${5:-Mirrored} w0 d0 jd0 s w end limit bad=""
	read -r w0 d0 <<< "$(dmsetup status "$dm" | awk '{ print $14, $16 }')"
	jd0=$(jf "$job" degradations)
	end=$((SECONDS + secs))
	limit=$((SECONDS + 60 * ${_warm_tscale:-1}))
	while :; do
		read -r s w <<< "$(dmsetup status "$dm" | awk '{ print $11 "/" $16 "/" $17, $14 }')"
		if [ "$s" != "on/$d0/-" ]; then
			bad="after $((SECONDS - end + secs)) s the mirror is $s (state/degradations/reason; it was on/$d0/-)"
			break
		fi
		[ $SECONDS -lt "$end" ] || [ "$w" -lt $((w0 + 20)) ] || break
		if [ $SECONDS -ge "$limit" ]; then
			bad="only $((w - w0)) writes mirrored in $((SECONDS - end + secs)) s"
			break
		fi
		sleep 0.2
	done
	[ -n "$bad" ] || [ "$(jf "$job" degradations)" = "$jd0" ] ||
		bad="the job counted $(($(jf "$job" degradations) - jd0)) degradations meanwhile"
	[ -n "$bad" ] || [ "$(jf "$job" phase)" = "$phase" ] ||
		bad="the job is $(jf "$job" phase)"
	if [ -z "$bad" ]; then
		pass "$desc"
	else
		fail "$desc" "$bad; $(dmsetup status "$dm")
$(sxm-ctl show "$job" | grep -E '^(Phase|Mirror|Degraded)')"
	fi
}

compare_clean() {
	local desc=$1 dm=$2 src=$3 file=$4 ext off len f b rs p
	shift 4
	rs=$(($(dmsetup status "$dm" | awk '{ print $5 }') * 512))
	for p in "$@"; do kill -STOP "$p"; done
	if ! wait_drained "$dm"; then
		fail "$desc" "the writers frozen, $dm still has I/O in flight: $(cat "$(_mirror_sysblk "$dm")/inflight"); $(dmsetup status "$dm")"
		for p in "$@"; do kill -CONT "$p"; done
		return 0
	fi
	ext=$(sxm-ctl harvest "$dm" --peek | grep -v '^#' || true)
	diag "$dm: dirty or held: $(grep -c . <<< "$ext" || true) extents"
	dd if="$src" of=/tmp/mirror-src.cmp bs=1M iflag=direct status=none
	case $file in
	nbd://* | nbds://* | nbd+unix://*) nbdcopy "$file" /tmp/mirror-snk.cmp ;;
	*) cp "$file" /tmp/mirror-snk.cmp ;;
	esac
	while read -r off len; do
		[ -n "$off" ] || continue
		for f in /tmp/mirror-src.cmp /tmp/mirror-snk.cmp; do
			dd if=/dev/zero of=$f bs="$rs" seek=$((off / rs)) \
				count=$(((len + rs - 1) / rs)) conv=notrunc status=none
		done
	done <<< "$ext"
	if cmp -s /tmp/mirror-src.cmp /tmp/mirror-snk.cmp; then
		pass "$desc"
	else
		fail "$desc" "$(cmp -l /tmp/mirror-src.cmp /tmp/mirror-snk.cmp |
			awk '{ print int(($1 - 1) / 4096) }' | uniq | head -n 4 |
			while read -r b; do
				echo "block $b (region $((b * 4096 / rs))), source then sink:"
				od -A d -t x8 -j $((b * 4096)) -N 32 /tmp/mirror-src.cmp
				od -A d -t x8 -j $((b * 4096)) -N 32 /tmp/mirror-snk.cmp
			done; cat /proc/uptime; dmsetup status "$dm")"
	fi
	rm -f /tmp/mirror-src.cmp /tmp/mirror-snk.cmp
	for p in "$@"; do kill -CONT "$p"; done
}
