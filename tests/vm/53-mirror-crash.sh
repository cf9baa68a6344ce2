#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mirror style, the helper and the sink dying under a write load:
#   - the daemon killed with kill -9 while Mirrored: the guest's writes go
#     on without an error, the target says "degraded helper_detached" and
#     tracks them; the restarted daemon attaches again, resyncs and is
#     Mirrored, counting the degradation and its reason;
#   - the sink (nbdkit, file plugin) killed with kill -9 at a random moment
#     while Mirrored: the mirror goes down (degraded by the target when a
#     write fails, or off, set by the daemon when its pump saw the
#     connections go first); every write the guest saw acknowledged is on
#     the sink, or its region is dirty (the source and what the dead sink
#     left in its file are equal over every region not marked dirty or
#     held);
#     nbdkit started again on the same file, the job resyncs by itself;
#   - the sink killed again with the writer frozen, nothing in flight: its
#     connections close cleanly (FIN, which libnbd calls "closed", not
#     "dead"), the job takes that as a lost sink all the same and comes
#     back on new connections once nbdkit does (the writer stays frozen
#     until then: nothing to resync, so this costs seconds, not a resync).
# All end in a cutover with the sink byte-identical to the source, and
# fio --verify saw no error.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy cmp

MIB=32
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv53 "$disk" $MIB
img=/tmp/sink53.img
truncate -s ${MIB}M $img
cleanup_push rm -f $img
sink_start -p 10853 file file=$img
daemon_start

# The job says its mirror is back on once its resync under locks is done,
# which is after the kernel's mirror is on again.
backs_at_least() {
	[ "$(sxm-ctl show m53 | grep -c 'mirror back on after')" -ge "$1" ]
}
degradations_are() { [ "$(jf m53 degradations)" = "$1" ]; }
mirror_down() {
	case $(dmsetup status lv53 | awk '{ print $11 }') in
	degraded | off) return 0 ;;
	esac
	return 1
}

# check_back DESC N — a test point: the job has said N times (or more)
# that its mirror is back; if not, what it said.
check_back() {
	if wait_until 60 backs_at_least "$2"; then
		pass "$1"
	else
		fail "$1" "$(sxm-ctl show m53)"
	fi
}

fio_log=/tmp/fio53.log
# --thread: SIGSTOP to $fio_pid then freezes the writer itself.
fio_load fio_pid /dev/mapper/lv53 "$fio_log" --fsync=16 --thread
check "submit --kind sxm --wait reaches Mirrored under load" \
	sxm-ctl submit --source /dev/mapper/lv53 --sink "$SINK_URI" --kind sxm \
	--name m53 --wait

# ------------------------------------------------- kill -9 of the daemon ----

sleep 1
daemon_kill9
check_eq "the helper gone, the target says why" "degraded helper_detached" "$(mstate lv53)"
sleep 2
check "the guest writes on (fio is alive)" kill -0 "$fio_pid"
dirty=$(dmsetup status lv53 | awk '{ print $7 + $10 }')
check "its writes are tracked meanwhile ($dirty regions dirty or held)" test "$dirty" -gt 0
daemon_start
check "restarted, the daemon brings the mirror back" \
	wait_until 60 bash -c "[ \"\$(dmsetup status lv53 | awk '{ print \$11 }')\" = on ]"
check "and the job is Mirrored" wait_phase m53 Mirrored 30
compare_clean "after the restart, the sink equals the source where nothing is dirty" \
	lv53 /dev/mapper/lv53-sxm-orig $img "$fio_pid"
check_eq "one degradation, helper_detached" "1 helper_detached" \
	"$(jf m53 degradations) $(jf m53 degraded_reason)"
check "the events say it went down" bash -c \
	"sxm-ctl show m53 | grep -q 'mirror degraded: helper_detached'"
check_back "and that it came back" 1

# ------------------------------------------- kill -9 of the sink ----

sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + r / 32768 * 2 }')"
kill -KILL "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
check "the mirror goes down when the sink dies" wait_until 20 mirror_down
diag "status: $(dmsetup status lv53)"
sleep 1
check "the guest writes on" kill -0 "$fio_pid"
compare_clean "every region not dirty is on the sink as on the source" \
	lv53 /dev/mapper/lv53-sxm-orig $img "$fio_pid"

sink_start -p 10853 file file=$img
check "the sink back, the job resyncs by itself to Mirrored, mirror on" \
	wait_until 60 bash -c "[ \"\$(dmsetup status lv53 | awk '{ print \$11 }')\" = on ] &&
		[ \"\$(sxm-ctl show m53 --json | sed -n 's/.*\"phase\":\"\([^\"]*\)\".*/\1/p')\" = Mirrored ]"
check_eq "two degradations in all" 2 "$(jf m53 degradations)"
diag "$(sxm-ctl show m53 | grep -E '^(Mirror|Degraded|Sink latency)')"
check_back "the job says the mirror is back" 2

# ------------------------------------ kill -9 of the sink, idle ----

kill -STOP "$fio_pid"
check "the writer frozen, nothing in flight" wait_until 20 bash -c \
	"[ \"\$(dmsetup status lv53 | awk '{ print \$12 + \$13 }')\" = 0 ]"
kill -KILL "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
check "a sink gone while idle (FIN, no reset) is noticed: the mirror is down" \
	wait_until 20 degradations_are 3
check_eq "the pump saw it and stopped" pump_stopped "$(jf m53 degraded_reason)"
sink_start -p 10853 file file=$img
check_back "the sink back, the mirror is back on new connections" 3
check "mirror on, Mirrored" bash -c \
	"[ \"\$(dmsetup status lv53 | awk '{ print \$11 }')\" = on ] &&
	 [ \"\$(sxm-ctl show m53 --json | sed -n 's/.*\"phase\":\"\([^\"]*\)\".*/\1/p')\" = Mirrored ]"
kill -CONT "$fio_pid"
check_eq "three degradations in all" 3 "$(jf m53 degradations)"

# -------------------------------------------------------------- cutover ----

check "cutover --wait" sxm-ctl cutover m53 --wait
check_eq "the sink is byte-identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv53-sxm-orig)" "$(sha256_of $img)"
dmsetup resume lv53
sleep 1
fio_stop fio_pid "$fio_log" "fio --verify=crc32c saw no error through it all"
