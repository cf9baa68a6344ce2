#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A mirror-style migration end to end under fio --verify writers the whole
# time (4 KiB random writes with fsync; 512-byte writes with O_DSYNC, so
# FUA; 96 KiB writes that span region edges): a live "logical volume" gets
# sxm inserted under it by "sxm-ctl submit --kind sxm", the mirror on, the
# bulk copy under region locks, compose, Mirrored, where the writes are
# mirrored (nothing is dirty) and "show" has the mirror's counters and the
# sink's latency; then a cutover with the writers still going.  The sink
# is byte-identical to the frozen source, the downtime is reported, and
# fio, let go afterwards, saw no error and no bad block.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

MIB=32
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv52 "$disk" $MIB
sink_start memory size=${MIB}M
daemon_start

fio_a=/tmp/fio52a.log fio_b=/tmp/fio52b.log fio_c=/tmp/fio52c.log
fio_load fio_a_pid /dev/mapper/lv52 "$fio_a" --fsync=16
fio_load fio_b_pid /dev/mapper/lv52 "$fio_b" --ioengine=psync --iodepth=1 \
	--bs=512 --offset=16M --size=4M --sync=dsync --rate_iops=100
# 96 KiB writes at 96 KiB offsets: every one spans a 64 KiB region edge.
fio_load fio_c_pid /dev/mapper/lv52 "$fio_c" --bs=96k --offset=24M \
	--size=6M --fsync=8 --rate_iops=20
sleep 1

# -------------------------------------------------- copy, compose, Mirrored ----

out=$(sxm-ctl submit --source /dev/mapper/lv52 --sink "$SINK_URI" \
	--kind sxm --name m52 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "submit --kind sxm --wait under load reaches Mirrored" 0 "$rc"
check_eq "phase Mirrored" Mirrored "$(jf m52 phase)"
check_eq "kind sxm" sxm "$(jf m52 kind)"
check_eq "the kernel mirrors" "mirror on" \
	"$(dmsetup status lv52 | awk '{ print $4, $11 }')"
check_eq "Bytes (Bulk) is the whole device" $((MIB << 20)) "$(jf m52 bytes_full)"
check "the events tell the steps" bash -c "sxm-ctl show m52 > /tmp/show52;
	grep -q 'mirroring: every write from now on reaches' /tmp/show52 &&
	grep -q 'bulk copy done' /tmp/show52 && grep -q 'composed: .* verified (all of it)' /tmp/show52"
w0=$(jf m52 mirrored_writes)
sleep 3
w1=$(jf m52 mirrored_writes)
diag "mirrored writes: $w0, 3 s later $w1"
check "guest writes are mirrored as they come" test "$w1" -gt "$w0"
check_eq "nothing is dirty while mirrored" 0 "$(jf m52 dirty_bytes)"
check "show has the mirror's counters and the sink latency" bash -c \
	"sxm-ctl show m52 | tee /tmp/show52 | grep -Eq '^Mirror +on: [0-9]+ writes' &&
	 grep -Eq '^Sink latency +p50 [0-9.]+ (us|ms), p99 [0-9.]+ (us|ms)' /tmp/show52"
diag "$(sed -n '1,20p' /tmp/show52)"
check "--json has them too" bash -c \
	"[ \$(sxm-ctl show m52 --json | sed -n 's/.*\"sink_latency_p99_us\":\([0-9]*\).*/\1/p') -gt 0 ]"
check_eq "the mirror never went down" 0 "$(jf m52 degradations)"
# The pump sits in the guest's write path: a thread of the daemon runs with
# PR_SET_IO_FLUSHER (task flags PF_MEMALLOC_NOIO 0x80000 and
# PF_LOCAL_THROTTLE 0x100000, field 9 of its stat), and its memory is locked.
flushers=0
for st in /proc/"$DAEMON_PID"/task/*/stat; do
	fl=$(sed 's/^.*) //' "$st" | awk '{ print $7 }')
	[ $((fl & 0x180000)) = $((0x180000)) ] && flushers=$((flushers + 1))
done
check "the pump's thread is an I/O flusher ($flushers)" test "$flushers" -ge 1
check "the daemon's memory is locked ($(grep VmLck /proc/"$DAEMON_PID"/status))" \
	test "$(awk '/^VmLck/ { print $2 }' /proc/"$DAEMON_PID"/status)" -gt 0

# -------------------------------------------------------------- cutover ----

out=$(sxm-ctl cutover m52 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "cutover --wait under load succeeds" 0 "$rc"
check "it reports the downtime and that the source stays frozen" bash -c \
	"grep -q 'guest I/O held [0-9]* ms' <<< '$out' && grep -q 'left suspended (frozen)' <<< '$out'"
check_eq "phase Completed" Completed "$(jf m52 phase)"
down=$(jf m52 downtime_ms)
diag "downtime: $down ms"
check "downtime measured" test "$down" -gt 0
check_eq "nothing was left to copy at the cutover" 0 "$(jf m52 cutover_bytes)"
check "the Completed job keeps what the mirror did ($(jf m52 mirrored_writes) writes)" \
	test "$(jf m52 mirrored_writes)" -gt 0
check_eq "and says the mirror is off" off "$(jf m52 mirror)"
check "lv52 is suspended: the source cannot diverge" bash -c \
	"dmsetup info lv52 | grep -q '^State: *SUSPENDED'"
src_sha=$(sha256_of /dev/mapper/lv52-sxm-orig)
sink_sha=$(sha256_of "$SINK_URI")
diag "source $src_sha"
diag "sink   $sink_sha"
check_eq "the sink is byte-identical to the frozen source" "$src_sha" "$sink_sha"

dmsetup resume lv52
sleep 2
fio_stop fio_a_pid "$fio_a" "fio 4 KiB + fsync --verify=crc32c saw no error"
fio_stop fio_b_pid "$fio_b" "fio 512 B O_DSYNC --verify=crc32c saw no error"
fio_stop fio_c_pid "$fio_c" "fio 96 KiB region-spanning --verify=crc32c saw no error"
check "the daemon is still up" kill -0 "$DAEMON_PID"
