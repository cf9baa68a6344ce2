#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo (make demo, scripts/demo.sh): a warm migration of a disk in use,
# run inside the test VM.  A 64 MiB "VM disk" (a dm-linear volume, as LVM
# makes them) full of data, fio writing to it and checking every block it
# wrote the whole time; the sink is nbdkit on "another host" (a network
# namespace joined by a veth pair).  sxm-ctl daemon; submit (sxm goes under
# the live volume, full sync); incremental syncs every 3 s with their
# metrics; cutover (live syncs, then the source frozen for the last
# delta); then the sha256 of source and sink side by side.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/demo.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

demo_setup vmdisk 64

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

say "Cutover: syncs live until little is dirty, then the volume is suspended (guest I/O held), the last delta copied and verified"
if run sxm-ctl cutover vmdisk --wait; then
	pass "cutover done, guest I/O held $(jf vmdisk downtime_ms) ms"
else
	bail "the cutover failed"
fi
run dmsetup info vmdisk | grep -E '^(Name|State)' 

demo_finish vmdisk
