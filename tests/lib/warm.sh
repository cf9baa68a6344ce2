# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# warm.sh — helpers of the warm-migration tests (tests/vm/4*-warm*.sh), on
# top of test_common.sh (source that first).
#
#   daemon_start [ARGS...]   sxm-ctl -v daemon in the background, its records
#                            in $SXM_JOB_DIR, its socket $SXM_SOCKET, its
#                            log $DAEMON_LOG; waits until it answers; pid in
#                            $DAEMON_PID; stopped (TERM) at teardown
#                            ($DAEMON_WRAP, if set, is put before it:
#                            DAEMON_WRAP="tests/vm/jail_tool --no-io-uring")
#   daemon_stop              SIGTERM, and wait for it
#   daemon_kill9             kill -9 it (no teardown of its own)
#   jf JOB KEY               a field of "sxm-ctl show JOB --json", bare
#   wait_phase JOB PHASE [SECS]   until the job is in PHASE (default 60 s)
#   wait_until SECS CMD...   until CMD succeeds; fails after SECS
#   sink_bytes LOG           bytes the nbdkit log filter saw written
#                            (Write + Zero requests) in LOG
#   sink_quiet LOG           every connection the log filter logged in LOG
#                            has ended: no request is still on its way
#   lv_create NAME DEV MIB   a dm-linear "logical volume" over DEV
#   rand_fill DEV MIB        random data over the first MIB MiB of DEV
#   uptime_ms                the guest's uptime in milliseconds
#   held_covers DM OFFSET    the kernel has the region at byte OFFSET of
#                            DM dirty or held (sxm-ctl harvest --peek)
#   fio_load VAR DEV LOG [FIO_ARGS...]
#                            random 4 KiB writes through DEV, crc32c
#                            checked as they go (verify_backlog), for as
#                            long as the test needs; stopped with SIGINT by
#                            fio_stop VAR LOG DESC, a test point that fio
#                            saw no error

export SXM_JOB_DIR=/tmp/sxm-jobs SXM_SOCKET=/tmp/sxm-daemon.sock
export SXM_STATE_DIR=/tmp/sxm-insert
DAEMON_LOG=/tmp/sxm-daemon.log DAEMON_PID=""
rm -rf "$SXM_JOB_DIR" "$SXM_STATE_DIR"
cleanup_push rm -rf "$SXM_JOB_DIR" "$SXM_STATE_DIR"

# After a failure: what the daemon said last.
_warm_daemon_diag() {
	[ -s "$DAEMON_LOG" ] || return 0
	diag "$DAEMON_LOG (last 150 lines):"
	diag "$(tail -n 150 "$DAEMON_LOG")"
}
diag_push _warm_daemon_diag

daemon_start() {
	local i
	# shellcheck disable=SC2086
	${DAEMON_WRAP:-} sxm-ctl -v daemon "$@" >> "$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	cleanup_push _warm_daemon_stop "$DAEMON_PID"
	for i in $(seq 100); do
		sxm-ctl list >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	bail "sxm-ctl daemon did not start: $(tail -n 5 "$DAEMON_LOG")"
}

# SIGTERM: every job stops at its next chunk, that is once the writes it
# has in flight are answered -- seconds over a slow link.  Past a minute
# the daemon is killed, and the test says so.
_warm_daemon_stop() {
	local i
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1"
	for i in $(seq 600); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		diag "the daemon did not stop within 60 s of SIGTERM: killed"
		kill -KILL "$1"
	fi
	wait "$1" 2>/dev/null || true
}

daemon_stop() {
	_warm_daemon_stop "$DAEMON_PID"
}

daemon_kill9() {
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
}

# jf JOB KEY — a number, true/false/null or a string (without its quotes).
jf() {
	sxm-ctl show "$1" --json | sed -n "s/^{.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p"
}

# wait_until SECS CMD... — until CMD succeeds, for SECS seconds of wall time
# however long CMD itself takes; on a kernel the harness runs slower
# (sxm.tscale=N on the command line: the debug kernel), N times SECS.
_warm_tscale=$(sed -n 's/.*sxm\.tscale=\([0-9][0-9]*\).*/\1/p' /proc/cmdline 2>/dev/null)
wait_until() {
	local end=$((SECONDS + $1 * ${_warm_tscale:-1}))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

_warm_in_phase() { [ "$(jf "$1" phase)" = "$2" ]; }

wait_phase() {
	wait_until "${3:-60}" _warm_in_phase "$1" "$2"
}

sink_bytes() {
	local n=0 c
	for c in $(grep -oE ' (Write|Zero) id=[0-9]+ offset=0x[0-9a-f]+ count=0x[0-9a-f]+' "$1" |
		sed 's/.*count=0x//'); do
		n=$((n + 16#$c))
	done
	echo "$n"
}

sink_quiet() {
	[ "$(grep -c ' Connect ' "$1")" = "$(grep -c ' Disconnect ' "$1")" ]
}

uptime_ms() { awk '{ print int($1 * 1000) }' /proc/uptime; }

lv_create() {
	# Removed after NAME: the hidden device an insert puts under it.
	cleanup_push _tc_dm_remove "$1-sxm-orig"
	dm_create "$1" "0 $(($3 * 2048)) linear $2 0"
}

rand_fill() {
	dd if=/dev/urandom of="$1" bs=1M count="$2" oflag=direct status=none
}

held_covers() {
	sxm-ctl harvest "$1" --peek --json | tr '{' '\n' |
		sed -n 's/.*"offset":\([0-9]*\),"length":\([0-9]*\).*/\1 \2/p' |
		awk -v o="$2" '$1 <= o && o < $1 + $2 { f = 1 } END { exit !f }'
}

fio_load() {
	local var=$1 dev=$2 log=$3
	shift 3
	spawn "$var" fio --name=load --filename="$dev" --ioengine="$FIO_ENGINE" \
		--direct=1 --rw=randwrite --bs=4k --iodepth=4 --size=8M \
		--rate_iops=150 --time_based --runtime=3600 --verify=crc32c \
		--verify_backlog=128 --verify_fatal=1 --randrepeat=0 \
		--output="$log" "$@"
}

# fio_stop VAR LOG DESC — SIGINT ends it (exit 128 from us, not an error).
fio_stop() {
	local pid=${!1} rc=0
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" || rc=$?
	if { [ "$rc" -eq 0 ] || [ "$rc" -eq 128 ]; } && grep -q 'err= 0' "$2"; then
		pass "$3"
	else
		fail "$3" "fio exit $rc: $(tail -n 15 "$2")"
	fi
}
