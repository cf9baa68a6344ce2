#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The start of tracking against a write already in the target's map
# function: a write that read the mode before it was counted, and was
# counted only after "mode track" had flipped the generation, was neither
# tracked nor waited for (the mode was read outside the generation's lock).
# The window is a few instructions; the debug build's test hook
# (dm_sxm.test_delay_map_ms, SXM_TEST_HOOKS) holds the next write there for
# three seconds, "mode track" runs meanwhile and returns at once (nothing
# counted to wait for), and the write, let go, must be tracked: the region
# it wrote is dirty.
# Debian's module has no test hooks: this test runs on the debug kernel
# only (make check's debug pass).
# vm: debug-only
# vm-timeout: 120
. "$(dirname "$0")/../lib/test_common.sh"

require_sxm
require_cmd dmsetup dd

hook=/sys/module/dm_sxm/parameters/test_delay_map_ms
if [ ! -e $hook ]; then
	case $(uname -r) in
	*-sxm-debug*) bail "the debug kernel's dm-sxm.ko has no test hooks (built without SXM_TEST_HOOKS=1?)" ;;
	*) skip_all "dm-sxm.ko without test hooks (only the debug kernel's build has them: scripts/vm-run.sh --kernel debug)" ;;
	esac
fi

plan 7
scratch_dev src 16
dm_create ts "0 $((16 << 11)) sxm $src 8 1 passthrough"
cleanup_push sh -c "echo 0 > $hook"

# status word K of the sxm target (0: the mode, 3: dirty regions)
word() { dmsetup status ts | awk -v k="$1" '{ print $(4 + k) }'; }

echo 3000 > $hook
dd if=/dev/urandom of=/dev/mapper/ts bs=4096 count=1 seek=100 oflag=direct \
	conv=notrunc status=none &
ddpid=$!
# The write took the hook (it reads 0 again) and sleeps in map.
for _ in $(seq 100); do
	[ "$(cat $hook)" = 0 ] && break
	sleep 0.05
done
check_eq "the write is held in map" 0 "$(cat $hook)"
check "mode track while the write is held" dmsetup message ts 0 mode track
# Else the window was missed and the rest proves nothing.
if kill -0 $ddpid 2>/dev/null; then
	pass "the switch returned while the write was still held"
else
	fail "the switch returned after the held write: the window was missed"
fi
if wait $ddpid; then
	pass "the held write completes"
else
	fail "the held write completes" "dd failed"
fi
check_eq "the mode is track" track "$(word 0)"
check_eq "the held write was tracked: its region is dirty" 1 "$(word 3)"
# The other way (track to passthrough) may leave a region dirty that need
# not be: never one missing.  A write after the switch is not tracked.
dmsetup message ts 0 mode passthrough
dd if=/dev/urandom of=/dev/mapper/ts bs=4096 count=1 seek=200 oflag=direct \
	conv=notrunc status=none
check_eq "in passthrough nothing more is marked" 1 "$(word 3)"
