#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo's second half (make demo, scripts/demo.sh): the same kind of
# disk moved in the mirror style (Storage XenMotion), run inside the test
# VM.  A 64 MiB "VM disk" full of data under fio writing and checking
# every block it wrote; sxm-ctl daemon; submit --kind sxm: sxm goes under
# the live volume, every new write is mirrored to the sink through the
# ring shared with the kernel, the rest is copied under region locks, and
# the job composes to Mirrored; the mirror's metrics; cutover, with its
# downtime in milliseconds; the sha256 of source and sink side by side.
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/demo.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit nbdcopy

demo_setup vmdisk2 64

say "Submit in the mirror style: mirror on, bulk copy under region locks, compose"
if run sxm-ctl submit --source /dev/mapper/vmdisk2 --sink "$SINK_URI" \
	--kind sxm --name vmdisk2 --rate 16M --wait; then
	pass "bulk copy and compose done, job Mirrored"
else
	bail "the mirror-style job did not reach Mirrored"
fi
run dmsetup table vmdisk2

say "Mirrored: every write the guest sees completed is on the sink too"
sleep 3
run sxm-ctl show vmdisk2
check_eq "nothing dirty while mirrored" 0 "$(jf vmdisk2 dirty_bytes)"
check "the guest's writes are being mirrored" test "$(jf vmdisk2 mirrored_writes)" -gt 0

say "Cutover: suspend, nothing in flight, nothing dirty, flush the sink"
if run sxm-ctl cutover vmdisk2 --wait; then
	pass "cutover done, guest I/O held $(jf vmdisk2 downtime_ms) ms"
else
	bail "the cutover failed"
fi

demo_finish vmdisk2
