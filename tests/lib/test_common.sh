# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# test_common.sh — shared setup and guaranteed teardown for the VM tests.
#
#   #!/bin/bash
#   # What this test proves, in a line or two.
#   . "$(dirname "$0")/../lib/test_common.sh"
#   plan 3
#   scratch_dev src 64                       # $src = a 64 MiB block device
#   dm_create lin "0 $((64 * 2048)) linear $src 0"
#   sink_start memory size=64M               # $SINK_URI = nbd://169.254.77.2:10809
#   check "copy to the sink" nbdcopy /dev/mapper/lin "$SINK_URI"
#   ...
#
# TAP (kselftest): plan N, pass DESC, fail DESC [DETAIL], skip DESC REASON,
#   check DESC CMD..., check_eq DESC WANT GOT, diag MSG, skip_all REASON
#   (exit 4), bail REASON (exit 1).  The plan may also be left out: it is
#   then printed at the end.
# Errors: the test runs with errexit, nounset and pipefail.  A command that
#   fails outside a check ends the test with "not ok - aborted at line L:
#   CMD", and the teardown still runs.
# Teardown: cleanup_push CMD [ARG...] records a command; on exit (normal,
#   failure, abort, SIGTERM from the time limit) all of them run, last
#   first.  Every helper below that creates something records its removal.
#   diag_push CMD records a command that, after a failure, prints what helps
#   find its cause (before the teardown).
# Helpers:
#   scratch_dev VAR MIB           a MIB MiB block device, zero-filled, with
#                                 discard and write-zeroes; path in $VAR
#   dm_create NAME TABLE [ARGS]   dmsetup create; removed at teardown
#   spawn VAR CMD...              CMD in the background, pid in $VAR; killed
#   sink_start [-p PORT] [--delay TIME] [NBDKIT_ARGS...]
#                                 nbdkit (default: memory size=64M) in the
#                                 "sink" network namespace; sets SINK_URI,
#                                 SINK_PID, SINK_PORT, SINK_LOG.  --delay:
#                                 a slow link to this sink only (below)
#   sink_delay PORT TIME          that slow link's delay changed, live
#   expect_fail DESC TEXT CMD...  a test point: CMD must fail and TEXT must be
#                                 in its output or in the kernel log it made
#   expect_rc DESC RC TEXT CMD... a test point: CMD exits with RC and TEXT is
#                                 in its output
#   require_cmd CMD...           the test FAILS if one is missing (the
#                                 project installs every tool it uses)
#   require_module MOD...         skip the whole test (exit 4) if missing
#   require_sxm, require_sxm_ctl  load dm-sxm / find sxm-ctl; if they are not
#                                 in the image the test FAILS with the reason
#   fio_verify DESC DEV [FIO_ARGS...]
#                                 a test point: fio write + crc32c verify
#   sha256_of DEV|FILE|URI [MIB]  sha256 of a device, file or nbd:// URI
#   power_cut                     (a "# vm: power-cuts N" test, boots 1..N:
#                                 see scripts/vm-run.sh) ask the host to cut
#                                 the power, then wait for it; what runs in
#                                 the background goes on meanwhile.  No
#                                 plan in those boots: the host numbers the
#                                 points of all boots on

set -o errexit -o nounset -o pipefail -o errtrace

_tc_n=0 _tc_failed=0 _tc_plan="" _tc_err="" _tc_exiting=""
_tc_cleanup=()

echo "TAP version 13"

# ------------------------------------------------------------------ TAP ----

diag() {
	local l
	while IFS= read -r l; do echo "# $l"; done <<< "$*"
}

plan() {
	_tc_plan=$1
	echo "1..$1"
}

# A point that took 10 s or more since the one before says so (where a slow
# kernel or machine spends a test's time limit).
_tc_t=$SECONDS
_tc_took() {
	[ $((SECONDS - _tc_t)) -lt 10 ] || echo "# (took $((SECONDS - _tc_t)) s)"
	_tc_t=$SECONDS
}

pass() {
	_tc_n=$((_tc_n + 1))
	echo "ok $_tc_n $1"
	_tc_took
}

# fail DESC [DETAIL] — a failed test point; the test goes on.
fail() {
	_tc_n=$((_tc_n + 1)) _tc_failed=$((_tc_failed + 1))
	echo "not ok $_tc_n $1"
	[ $# -lt 2 ] || [ -z "$2" ] || diag "$2"
	_tc_took
}

skip() {
	_tc_n=$((_tc_n + 1))
	echo "ok $_tc_n $1 # SKIP $2"
}

# check DESC CMD... — passes if CMD exits 0; on failure shows its output.
check() {
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ $rc -eq 0 ]; then
		pass "$desc"
	else
		fail "$desc" "$(printf '%s\n' "$out" | tail -n 30; echo "exit status $rc: $*")"
	fi
}

check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}

# skip_all REASON — the test cannot run here: say why, exit 4.
skip_all() {
	if [ $_tc_n -eq 0 ] && [ -z "$_tc_plan" ]; then
		echo "1..0 # SKIP $1"
		_tc_plan=0
	else
		while [ -n "$_tc_plan" ] && [ $_tc_n -lt "$_tc_plan" ]; do skip "not run" "$1"; done
	fi
	_tc_exiting=skip
	exit 4
}

# bail REASON — a test point that fails, then stop.
bail() {
	fail "$1"
	_tc_exiting=bail
	exit 1
}

# ------------------------------------------------------------- teardown ----

# cleanup_push CMD [ARG...] — run CMD at exit (last pushed runs first).
cleanup_push() {
	_tc_cleanup+=("$(printf '%q ' "$@")")
}

_tc_run_cleanup() {
	local i out
	for ((i = ${#_tc_cleanup[@]} - 1; i >= 0; i--)); do
		out=$(eval "${_tc_cleanup[i]}" 2>&1) ||
			diag "teardown: '${_tc_cleanup[i]}' failed: $out"
	done
	_tc_cleanup=()
}

# On a failure, what each sink's nbdkit said: a sink that died or refused
# a request is often the cause.
_tc_sink_diag() {
	local f
	for f in "${_tc_sink_logs[@]}"; do
		[ -s "$f" ] || continue
		diag "$f (last 15 lines):"
		diag "$(tail -n 15 "$f")"
	done
}

# diag_push CMD — run CMD at exit after a failure, before the teardown:
# what it prints helps find the cause (a daemon's log, say).
_tc_diag_hooks=()
diag_push() {
	_tc_diag_hooks+=("$1")
}

_tc_exit() {
	local rc=$? h
	set +o errexit +o errtrace
	trap - ERR
	if [ -z "$_tc_exiting" ] && [ $rc -ne 0 ]; then
		fail "aborted${_tc_err:+ at $_tc_err} (exit status $rc)"
	fi
	if [ $_tc_failed -gt 0 ]; then
		_tc_sink_diag
		for h in "${_tc_diag_hooks[@]}"; do "$h"; done
	fi
	_tc_run_cleanup
	[ -n "$_tc_plan" ] || echo "1..$_tc_n"
	if [ "$_tc_exiting" = skip ]; then exit 4; fi
	if [ $_tc_failed -gt 0 ] || [ $rc -ne 0 ]; then exit 1; fi
	exit 0
}

trap '_tc_err="line $LINENO: $BASH_COMMAND"' ERR
trap _tc_exit EXIT
trap '_tc_err="SIGTERM (time limit?)"; exit 143' TERM
trap '_tc_err="SIGINT"; exit 130' INT

# Kill a process (and wait for it): TERM, then KILL after 5 s.
_tc_kill() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# spawn VAR CMD... — start CMD in the background; killed at teardown.
spawn() {
	local var=$1
	shift
	"$@" &
	printf -v "$var" %s $!
	cleanup_push _tc_kill $!
}

# ------------------------------------------------------------ requires ----

# Every tool a test uses is the project's to install (scripts/deps.sh, and
# scripts/mkinitramfs.sh for the VM): one missing means the set-up is
# broken, a failure, never a skip.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null ||
			bail "needs the command $c (scripts/deps.sh installs it, scripts/mkinitramfs.sh puts it in the VM)"
	done
}

require_module() {
	local m
	for m in "$@"; do
		modprobe "$m" 2>/dev/null || skip_all "needs the kernel module $m"
	done
}

# The project's own parts: missing means the build is broken, not "skip".
require_sxm() {
	local i out
	modinfo dm-sxm >/dev/null 2>&1 ||
		bail "dm-sxm.ko is not in the VM image (build it: make module)"
	if ! grep -q '^dm_sxm ' /proc/modules; then
		out=$(modprobe dm-sxm 2>&1) || bail "modprobe dm-sxm failed: $out"
		cleanup_push _tc_rmmod dm_sxm
	fi
	for i in $(seq 20); do
		[ -c /dev/dm-sxm ] && return 0
		sleep 0.1
	done
	bail "dm-sxm is loaded but /dev/dm-sxm did not appear"
}

require_sxm_ctl() {
	command -v sxm-ctl >/dev/null ||
		bail "sxm-ctl is not in the VM image (build it: make userspace)"
}

_tc_rmmod() {
	grep -q "^$1 " /proc/modules || return 0
	rmmod "$1"
}

# ---------------------------------------------------------------- dm ----

# dm_create NAME TABLE [DMSETUP_ARGS...] — the device is /dev/mapper/NAME.
dm_create() {
	local name=$1 table=$2
	shift 2
	cleanup_push _tc_dm_remove "$name"
	dmsetup create "$name" --table "$table" "$@"
}

_tc_dm_remove() {
	dmsetup info "$1" >/dev/null 2>&1 || return 0
	timeout 30 dmsetup remove --retry "$1" >/dev/null 2>&1 && return 0
	# Suspended or held: resume, then replace the table with error.
	timeout 10 dmsetup resume "$1" >/dev/null 2>&1
	timeout 30 dmsetup remove --force --retry "$1"
}

# ------------------------------------------------------- scratch devices ----
#
# Loop devices (direct I/O) on sparse files in an ext4 file system on a brd
# ramdisk.  brd alone has neither discard nor write-zeroes in 6.1, and a loop
# device on tmpfs fails write-zeroes without unmap (tmpfs has no
# FALLOC_FL_ZERO_RANGE); on ext4 both work, every device reads zeros when
# new, and sizes are free.  The pool (brd + ext4) is made on first use and
# removed at teardown; SCRATCH_POOL_MIB (default 1024) bounds the memory
# scratch devices may take together.

SCRATCH_POOL_MIB=${SCRATCH_POOL_MIB:-1024}
_tc_pool=/tmp/sxm-scratch _tc_pool_up="" _tc_nscratch=0

_tc_scratch_pool() {
	[ -z "$_tc_pool_up" ] || return 0
	grep -q '^brd ' /proc/modules && bail "brd is already loaded; scratch_dev needs it"
	cleanup_push _tc_rmmod brd
	modprobe brd rd_nr=1 rd_size=$((SCRATCH_POOL_MIB * 1024)) max_part=0
	mkfs.ext4 -q -F -O ^has_journal -E nodiscard,lazy_itable_init=1 /dev/ram0
	mkdir -p "$_tc_pool"
	cleanup_push _tc_umount "$_tc_pool"
	mount -t ext4 /dev/ram0 "$_tc_pool"
	_tc_pool_up=1
}

_tc_umount() {
	local i
	grep -qs " $1 " /proc/mounts || return 0
	for i in $(seq 20); do
		umount "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	umount "$1"
}

# scratch_dev VAR MIB
scratch_dev() {
	local var=$1 mib=$2 f dev
	_tc_scratch_pool
	_tc_nscratch=$((_tc_nscratch + 1))
	f=$_tc_pool/scratch$_tc_nscratch.img
	truncate -s "${mib}M" "$f"
	dev=$(losetup -f --show --direct-io=on "$f")
	cleanup_push _tc_loop_del "$dev" "$f"
	printf -v "$var" %s "$dev"
}

_tc_loop_del() {
	losetup "$1" >/dev/null 2>&1 && losetup -d "$1"
	rm -f "$2"
}

# ------------------------------------------------------------------ sink ----
#
# The sink is another host: network namespace $SINK_NS joined to the root
# namespace by a veth pair, $SRC_IF ($SRC_ADDR) here, $SINK_IF ($SINK_ADDR)
# there.  Faults: ip link set "$SRC_IF" down, tc qdisc add dev "$SRC_IF"
# root netem ..., kill -9 "$SINK_PID", nbdkit filters (--filter=delay ...).

SINK_NS=sink SRC_IF=sxm-src SINK_IF=sxm-sink
SRC_ADDR=169.254.77.1 SINK_ADDR=169.254.77.2
SINK_URI="" SINK_PID="" SINK_PORT="" SINK_LOG=""
_tc_netns_up="" _tc_nsinks=0 _tc_sink_logs=()

_tc_sink_netns() {
	[ -z "$_tc_netns_up" ] || return 0
	cleanup_push _tc_netns_del
	ip netns add "$SINK_NS"
	ip link add "$SRC_IF" type veth peer name "$SINK_IF" netns "$SINK_NS"
	ip addr add "$SRC_ADDR/24" dev "$SRC_IF"
	ip link set "$SRC_IF" up
	ip -n "$SINK_NS" addr add "$SINK_ADDR/24" dev "$SINK_IF"
	ip -n "$SINK_NS" link set lo up
	ip -n "$SINK_NS" link set "$SINK_IF" up
	_tc_netns_up=1
}

_tc_netns_del() {
	ip link del "$SRC_IF" 2>/dev/null || true
	if ip netns list | grep -q "^$SINK_NS\b"; then ip netns delete "$SINK_NS"; fi
}

# sink_start [-p PORT] [--delay TIME] [NBDKIT_ARGS...] — e.g.
#   sink_start                                        (memory size=64M)
#   sink_start --delay 500ms memory size=32M
#   sink_start --filter=delay memory size=32M delay-write=20ms
#
# --delay TIME holds every packet this sink sends for TIME (netem on its
# end of the link, for its port only): each request's reply, and the ACKs
# that pace the data sent to it, arrive TIME late -- a slow or distant
# sink.  Use it, not nbdkit's delay filter, where the test closes or kills
# a client that has requests in flight: nbdkit 1.32 (Debian 12) aborts
# (raw_send_socket: Assertion `sock >= 0') when several delayed requests
# answer a connection that has gone, and the sink dies with the client.
sink_start() {
	local port="" delay="" i
	while [ $# -gt 0 ]; do
		case $1 in
		-p) port=$2; shift 2 ;;
		--delay) delay=$2; shift 2 ;;
		*) break ;;
		esac
	done
	_tc_nsinks=$((_tc_nsinks + 1))
	port=${port:-$((10808 + _tc_nsinks))}
	[ $# -gt 0 ] || set -- memory size=64M
	_tc_sink_netns
	SINK_LOG=/tmp/sink-$port.log
	_tc_sink_logs+=("$SINK_LOG")
	ip netns exec "$SINK_NS" nbdkit --foreground --exit-with-parent \
		-i "$SINK_ADDR" -p "$port" "$@" > "$SINK_LOG" 2>&1 &
	SINK_PID=$!
	cleanup_push _tc_kill "$SINK_PID"
	SINK_PORT=$port
	SINK_URI=nbd://$SINK_ADDR:$port
	for i in $(seq 100); do
		if nbdinfo --size "$SINK_URI" >/dev/null 2>&1; then
			[ -z "$delay" ] || _tc_sink_delay "$port" "$delay"
			return 0
		fi
		kill -0 "$SINK_PID" 2>/dev/null || break
		sleep 0.1
	done
	bail "sink nbdkit $* did not answer on $SINK_URI: $(tail -n 5 "$SINK_LOG")"
}

# _tc_sink_delay PORT TIME — what leaves the sink's end of the link from
# PORT goes through a netem of its own (a band of a prio qdisc picked by a
# u32 match on the source port); everything else goes on at once.
_tc_sink_nbands=0
declare -A _tc_sink_band
_tc_sink_delay() {
	local tcs="ip netns exec $SINK_NS tc" band
	if [ $_tc_sink_nbands -eq 0 ]; then
		$tcs qdisc add dev "$SINK_IF" root handle 1: prio bands 16 \
			priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
	fi
	[ $_tc_sink_nbands -lt 15 ] || bail "sink_start --delay: at most 15 slow sinks"
	_tc_sink_nbands=$((_tc_sink_nbands + 1))
	band=$((_tc_sink_nbands + 1))
	$tcs qdisc add dev "$SINK_IF" parent 1:$band handle $((band + 10)): \
		netem delay "$2" limit 100000
	$tcs filter add dev "$SINK_IF" parent 1: protocol ip prio 1 u32 \
		match ip sport "$1" 0xffff flowid 1:$band
	_tc_sink_band[$1]=$band
}

# sink_delay PORT TIME — the delay of a sink started with --delay, changed
# (what is queued already keeps the delay it had).
sink_delay() {
	local band=${_tc_sink_band[$1]:-}
	[ -n "$band" ] || bail "sink_delay: the sink on port $1 was not started with --delay"
	ip netns exec "$SINK_NS" tc qdisc change dev "$SINK_IF" parent 1:$band \
		handle $((band + 10)): netem delay "$2" limit 100000
}

# ------------------------------------------------------------------ checks ----

# expect_rc DESC RC TEXT CMD... — CMD exits with RC and says TEXT.
expect_rc() {
	local desc=$1 want=$2 text=$3 out rc=0
	shift 3
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq "$want" ] && grep -qF -- "$text" <<< "$out"; then
		pass "$desc"
	else
		fail "$desc" "$(printf 'exit %d (want %d), want "%s" in:\n%s' \
			"$rc" "$want" "$text" "$out")"
	fi
}

# expect_fail DESC TEXT CMD... — CMD must fail, and TEXT must appear in its
# output or in the kernel messages logged while it ran (a dm table's error
# is only in the kernel log).
expect_fail() {
	local desc=$1 want=$2 out rc=0 k0
	shift 2
	k0=$(dmesg | wc -l)
	out=$("$@" 2>&1) || rc=$?
	out+=$'\n'$(dmesg | tail -n +$((k0 + 1)))
	if [ $rc -eq 0 ]; then
		fail "$desc" "succeeded; expected a failure with '$want': $*"
	elif grep -qF -- "$want" <<< "$out"; then
		pass "$desc"
	else
		fail "$desc" "$(printf "failed (exit %d) but without '%s':\n%s" $rc "$want" "$out")"
	fi
}

# fio_verify DESC DEV [FIO_ARGS...] — random 4 KiB writes with crc32c
# checksums, then read back and verified.  Defaults: 16 MiB, io_uring,
# O_DIRECT, queue depth 16; FIO_ARGS override them (--size=, --rw=...).
FIO_ENGINE=${FIO_ENGINE:-io_uring}
fio_verify() {
	local desc=$1 dev=$2
	shift 2
	check "$desc" fio --name=verify --filename="$dev" --ioengine="$FIO_ENGINE" \
		--direct=1 --rw=randwrite --bs=4k --iodepth=16 --size=16M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --randrepeat=0 \
		--output-format=terse "$@"
}

# sha256_of DEV|FILE|nbd://URI [MIB] — of the whole thing or its first MIB MiB.
sha256_of() {
	local src=$1 mib=${2:-} t
	case $src in
	nbd://* | nbds://* | nbd+unix://*)
		if [ -n "$mib" ]; then
			# nbdcopy dies of SIGPIPE after the first MIB MiB.
			{ nbdcopy "$src" - 2>/dev/null || :; } | head -c $((mib << 20))
		else
			# Into a file, not a pipe: to a pipe nbdcopy reads one
			# request at a time, a round trip each (a minute for
			# 16 MiB from a sink half a second away).
			t=$(mktemp /tmp/sha256_of.XXXXXX)
			nbdcopy "$src" "$t" && cat "$t"
			rm -f "$t"
		fi ;;
	*)
		if [ -b "$src" ]; then
			dd if="$src" bs=1M ${mib:+count=$mib} iflag=direct status=none
		else
			dd if="$src" bs=1M ${mib:+count=$mib} status=none
		fi ;;
	esac | sha256sum | cut -d' ' -f1
}

# ktap_import CMD... — run a kselftest (TAP-printing) program and take each
# of its results as one of this test's points; its other lines become
# diagnostics.  A program that dies without results fails one point.
ktap_import() {
	local line rc n0=$_tc_n
	# Line by line as the program prints them, so that a test that hangs
	# still shows how far it got when the time limit ends it.
	while IFS= read -r line; do
		case $line in
		"ok "*"# SKIP"*) line=${line#ok }; line=${line#* }
			skip "${line%%# SKIP*}" "${line#*# SKIP}" ;;
		"ok "*) line=${line#ok }; pass "${line#* }" ;;
		"not ok "*) line=${line#not ok }; fail "${line#* }" ;;
		"TAP version"* | 1..* | "") ;;
		*) diag "$line" ;;
		esac
	done < <("$@" 2>&1; echo "$?" > "$_tc_pool.ktap-rc")
	rc=$(cat "$_tc_pool.ktap-rc" 2>/dev/null || echo 1)
	rm -f "$_tc_pool.ktap-rc"
	if [ $_tc_n -eq "$n0" ] || { [ $rc -ne 0 ] && [ $_tc_failed -eq 0 ]; }; then
		fail "$* exited with status $rc"
	fi
}

# power_cut — ask the host to kill the VM (SIGKILL, a random 0..D ms after
# it sees the request); a point that fails if it has not within 120 s.
power_cut() {
	[ -n "${SXM_POWER_BOOT:-}" ] || bail "power_cut: not a power-cuts test's boot"
	echo "=== POWER-CUT boot $SXM_POWER_BOOT"
	sleep 120
	bail "power boot $SXM_POWER_BOOT: the power was not cut within 120 s"
}
