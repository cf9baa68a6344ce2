#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (make demo, scripts/demo.sh): a warm migration of a disk in use,
# run inside the test VM.  A 64 MiB "VM disk" (a dm-linear volume, as LVM
# makes them) full of data, fio writing to it and checking every block it
# wrote the whole time; the sink is nbdkit on "another host" (a network
# namespace joined by a veth pair).  sxm-ctl daemon; submit (sxm goes under
# the live volume, full sync); incremental syncs every 3 s with their
# metrics; cutover; then the sha256 of source and sink side by side.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

MIB=64
say "A ${MIB} MiB VM disk full of data: /dev/mapper/vmdisk (dm-linear on a loop device)"
scratch_dev disk $MIB
rand_fill "$disk" $MIB
lv_create vmdisk "$disk" $MIB
run dmsetup table vmdisk

say "The destination: nbdkit in network namespace '$SINK_NS', another host as far as we know"
sink_start memory size=${MIB}M
echo "sink: $SINK_URI"

say "The guest's load: fio writing 4 KiB blocks and verifying their crc32c as it goes"
fio_log=/tmp/fio-demo.log
fio_load fio_pid /dev/mapper/vmdisk "$fio_log" --size=16M --rate_iops=200
sleep 1

say "The helper service (in production: systemctl start sxm-ctl, scripts/sxm-ctl.service)"
daemon_start
echo "sxm-ctl daemon running, pid $DAEMON_PID, socket $SXM_SOCKET, jobs in $SXM_JOB_DIR"

say "Submit: sxm goes under the live volume without closing it, then the full sync"
if run sxm-ctl submit --source /dev/mapper/vmdisk --sink "$SINK_URI" \
	--name vmdisk --cadence 3s --rate 16M --wait; then
	pass "full sync done, job Ready"
else
	bail "the full sync failed"
fi
run dmsetup table vmdisk

say "Ready: an incremental sync every 3 s picks up what fio changed"
last=0
for i in 1 2 3; do
	wait_until 30 bash -c "[ \$(sxm-ctl show vmdisk --json | sed -n 's/.*\"sync_count\":\([0-9]*\).*/\1/p') -gt $last ]" ||
		bail "no scheduled sync came"
	last=$(jf vmdisk sync_count)
	echo
	run sxm-ctl list
done
check_eq "three incremental syncs on the cadence" 3 "$last"
run sxm-ctl cadence vmdisk manual
echo
run sxm-ctl show vmdisk

say "Cutover: the volume is suspended (guest I/O held), the last delta copied and verified"
if run sxm-ctl cutover vmdisk --wait; then
	pass "cutover done"
else
	bail "the cutover failed"
fi
run dmsetup info vmdisk | grep -E '^(Name|State)' 

say "Source and sink, side by side"
src_sha=$(sha256_of /dev/mapper/vmdisk-sxm-orig)
sink_sha=$(sha256_of "$SINK_URI")
printf '  source  /dev/mapper/vmdisk (frozen)  %s\n' "$src_sha"
printf '  sink    %-28s  %s\n' "$SINK_URI" "$sink_sha"
check_eq "the sink is byte-identical to the source" "$src_sha" "$sink_sha"

say "The guest: let go again (a rollback, for the demo) so that fio can finish its checks"
dmsetup resume vmdisk
sleep 2
fio_stop fio_pid "$fio_log" "fio: every block it wrote read back intact, no I/O error"
grep -E 'write: IOPS' "$fio_log" | sed 's/^ */  fio: /'
