#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A soak of the mirror ring through the daemon, long enough for the ring's
# indices to wrap past 0 (they start SXM_RING_INDEX_START_BEFORE_WRAP =
# 16384 sqes short of it): a mirror-style job, Mirrored, under fio
# --verify writers (4 KiB random writes at queue depth 8; 512-byte O_DSYNC
# writes, so FUA; writes with an fsync after every 32), and a discard and
# a write-zeroes now and then, until the target has mirrored more than
# 20000 writes.  All the while the mirror stays on (no degradation);
# then a cutover: the sink is byte-identical to the frozen source, every
# region verified, and fio, let go, saw no error.
# vm-timeout: 900
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit cmp blkdiscard

MIB=16 WANT=20000
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create lv75 "$disk" $MIB
img=/tmp/sink75.img
truncate -s ${MIB}M $img
cleanup_push rm -f $img
sink_start file file=$img
daemon_start
check "submit --kind sxm --wait" sxm-ctl submit --source /dev/mapper/lv75 \
	--sink "$SINK_URI" --kind sxm --name m75 --wait
check_eq "Mirrored, the mirror on" "Mirrored on -" "$(jf m75 phase) $(mstate lv75)"

# $14: the target's mirrored writes; $16: its degradations.
mirrored() { dmsetup status lv75 | awk '{ print $14 }'; }
degradations() { dmsetup status lv75 | awk '{ print $16 }'; }
m0=$(mirrored)
fa=/tmp/fio75a.log fb=/tmp/fio75b.log fc=/tmp/fio75c.log
fio_load fa_pid /dev/mapper/lv75 $fa --size=4M --iodepth=8 --rate_iops=0
fio_load fb_pid /dev/mapper/lv75 $fb --offset=4M --size=1M --bs=512 \
	--ioengine=psync --iodepth=1 --sync=dsync --rate_iops=0
fio_load fc_pid /dev/mapper/lv75 $fc --offset=6M --size=2M --fsync=32 \
	--rate_iops=0
# Discards and write-zeroes where no fio writes (12-16 MiB), until enough
# writes have been mirrored; the mirror must not go down meanwhile.
n=0 down=""
end=$((SECONDS + 600))
while [ "$(mirrored)" -lt $((m0 + WANT)) ] && [ $SECONDS -lt $end ]; do
	off=$(((12 << 20) + (n % 64) * 65536))
	blkdiscard -o $off -l 4096 /dev/mapper/lv75 || down="a discard failed"
	blkdiscard -z -o $((off + 32768)) -l 4096 /dev/mapper/lv75 || down="a write-zeroes failed"
	[ "$(degradations)" = 0 ] || { down="the mirror degraded: $(mstate lv75)"; break; }
	n=$((n + 1))
	sleep 0.2
done
diag "$(( $(mirrored) - m0 )) writes mirrored in the soak, $n discards and write-zeroes; $(jf m75 mirrored_writes) in the job's figures"
check "more than $WANT writes mirrored (the ring's indices wrapped)" \
	test "$(mirrored)" -ge $((m0 + WANT))
check_eq "the discards and write-zeroes succeeded, the mirror never went down" \
	"" "$down"
check_eq "the mirror on, no degradation, nothing dirty" "on - 0 0" \
	"$(mstate lv75) $(degradations) $(dmsetup status lv75 | awk '{ print $7 }')"
check "the guest writes on" kill -0 "$fa_pid"
check "cutover --wait" sxm-ctl cutover m75 --wait
check_eq "Completed, every region verified" "Completed true" \
	"$(jf m75 phase) $(jf m75 verified_all)"
check "the sink is byte-identical to the frozen source" \
	cmp /dev/mapper/lv75-sxm-orig $img
dmsetup resume lv75
for f in a b c; do
	p=f${f}_pid
	fio_stop $p /tmp/fio75$f.log "fio $f saw no error"
done
