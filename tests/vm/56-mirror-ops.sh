#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mirror-style jobs failing, resuming and cancelled, under a fio --verify
# writer:
#   - sink writes failing from the start: the bulk copy fails, the job is
#     Failed (Mirroring + Copying) with the reason and lets the device go
#     (the mirror off, no helper); the errors stop, "retry --wait" goes on
#     to Mirrored;
#   - cancel while Mirrored: sxm is taken out again, the device's table is
#     what it was, the guest writes on;
#   - a bulk copy to a slow sink paused (it stands still, the mirror stays
#     on) and resumed; the daemon killed with kill -9 in the middle of it:
#     restarted, the copy resumes at the saved cursor and not before it,
#     the job composes to Mirrored, and the cutover leaves the sink
#     identical to the source.
# On the debug kernel (KASAN and lockdep on every bio and packet) the bulk
# copy moved 256 KiB in 2 s, and the test did not end in 720 s: hence the
# time limit.
# vm-timeout: 450
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

MIB=32 SIZE=$((32 << 20))
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv56 "$disk" $MIB
table0=$(dmsetup table lv56)
img=/tmp/sink56.img flag=/tmp/sink56.fail
truncate -s ${MIB}M $img
cleanup_push rm -f $img $flag
touch $flag
sink_start --filter=error file file=$img error-pwrite=EIO \
	error-pwrite-rate=100% error-pwrite-file=$flag
uri_err=$SINK_URI
daemon_start
fio_log=/tmp/fio56.log
fio_load fio_pid /dev/mapper/lv56 "$fio_log" --thread

# ----------------------------------------------------- failed, retried ----

out=$(sxm-ctl submit --source /dev/mapper/lv56 --sink "$uri_err" --kind sxm \
	--name e56 --wait 2>&1) && rc=0 || rc=$?
diag "$out"
check_eq "submit --wait fails on the sink's write errors" 1 "$rc"
check_eq "Failed in Mirroring + Copying" "Failed Mirroring + Copying" \
	"$(jf e56 phase) $(jf e56 fail_phase)"
check "the reason names the sink, the write and the error" bash -c \
	"sxm-ctl show e56 | grep -E '^Reason +sink nbd://.*write at 0x[0-9a-f]+ .*Input/output error'"
check "the device is let go: no helper, the mirror not on" \
	wait_until 20 bash -c "dmsetup status lv56 | awk '{ exit !(\$9 == \"-\" && \$11 != \"on\") }'"
check "the guest writes on" kill -0 "$fio_pid"
rm -f $flag
check "retry --wait goes on to Mirrored" sxm-ctl retry e56 --wait
check_eq "Mirrored, the mirror on" "Mirrored on -" "$(jf e56 phase) $(mstate lv56)"
compare_clean "the sink equals the source" lv56 /dev/mapper/lv56-sxm-orig \
	$img "$fio_pid"

# ---------------------------------------------------------------- cancel ----

check "cancel --wait" sxm-ctl cancel e56 --wait
check_eq "Cancelled" Cancelled "$(jf e56 phase)"
check_eq "the device's table is what it was" "$table0" "$(dmsetup table lv56)"
check "the hidden device is gone" bash -c "! dmsetup info lv56-sxm-orig"
check "the guest writes on" kill -0 "$fio_pid"
check "forget" sxm-ctl forget e56

# ------------------------------------------- kill -9 in the bulk copy ----

sink_start -p 10866 --delay 40ms file file=$img
# 4 MiB/s: the bulk copy lasts seconds however quick the machine is, so
# that the pause and the kill -9 find it running.
check "submit --kind sxm to a slow sink" sxm-ctl submit \
	--source /dev/mapper/lv56 --sink "$SINK_URI" --kind sxm --name k56 \
	--rate 4M
rec=$SXM_JOB_DIR/k56.job
saved() { sed -n "s/^$1 //p" "$rec"; }
check "the bulk copy saves its cursor as it goes" \
	wait_until 90 bash -c "[ \$(sed -n 's/^full_done //p' $rec) -ge $((2 << 20)) ]"
# Paced between its batches, it copies at most 4 MiB a second, and saves
# the cursor every 4 MiB: in 2 s the cursor moves 12 MiB at the most.
d0=$(saved full_done)
sleep 2
d1=$(saved full_done)
diag "the cursor moved $((d1 - d0)) bytes in 2 s"
check "--rate 4M holds the bulk copy to it" test $((d1 - d0)) -le $((12 << 20))
check "pause" sxm-ctl pause k56
sleep 1
c1=$(jf k56 full_done)
sleep 2
check_eq "paused, the bulk copy stands still" "$c1" "$(jf k56 full_done)"
check_eq "and the mirror stays on" "on -" "$(mstate lv56)"
check "resume" sxm-ctl resume k56
check "the bulk copy goes on" \
	wait_until 90 bash -c "[ \$(sed -n 's/^full_done //p' $rec) -ge $((c1 + (2 << 20))) ]"
daemon_kill9
cursor=$(saved full_done)
saved_bulk=$(saved bytes_full)
diag "killed at cursor $cursor"
check_eq "killed in Mirroring + Copying" "Mirroring + Copying" "$(saved phase)"
check "the cursor is inside the device" test "$cursor" -gt 0 -a "$cursor" -lt $SIZE
check_eq "the target degraded: the helper is gone" "degraded helper_detached" \
	"$(mstate lv56)"
daemon_start
check "restarted, the job composes to Mirrored" wait_phase k56 Mirrored 120
check "the bulk copy resumed at the cursor" bash -c \
	"sxm-ctl show k56 | grep -q 'bulk copy resumes at $cursor of $SIZE bytes'"
check_eq "and copied the device past it, nothing before it" \
	$((saved_bulk + SIZE - cursor)) "$(jf k56 bytes_full)"
check "the cutover" sxm-ctl cutover k56 --wait
check_eq "the sink is identical to the frozen source" \
	"$(sha256_of /dev/mapper/lv56-sxm-orig)" "$(sha256_of $img)"
dmsetup resume lv56
sleep 1
fio_stop fio_pid "$fio_log" "fio --verify=crc32c saw no error through it all"
