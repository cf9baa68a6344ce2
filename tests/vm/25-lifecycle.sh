#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Suspend, resume, reload, mode changes and remove while fio writes and
# verifies through the device: fio sees no error and its data verifies, the
# dirty map (and the tracking) outlives every reload, a busy device refuses
# removal, and the module unloads clean afterwards.
# vm-timeout: 240
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio
require_sxm

scratch_dev src 64
n=$((64 << 11))
dm_create tlife "0 $n sxm $src 128 1 track"
d=/dev/mapper/tlife

dirty() { dmsetup status tlife | cut -d' ' -f7; }

# children PID — its child processes (from /proc/*/stat: the debug
# kernel has no /proc/PID/task/TID/children).
children() {
	local f pid comm state ppid
	for f in /proc/[0-9]*/stat; do
		read -r pid comm state ppid _ < "$f" 2>/dev/null || continue
		[ "$ppid" != "$1" ] || echo "$pid"
	done
}

# fio writes with checksums and verifies as it goes (verify_backlog), for
# as long as the operations below take.
log=/tmp/fio-life.log
spawn fiopid fio --name=life --filename=$d --ioengine=io_uring --direct=1 \
	--rw=randwrite --bs=4k --iodepth=16 --size=48M --time_based --runtime=600 \
	--verify=crc32c --verify_backlog=512 --verify_fatal=1 --randrepeat=0 \
	--output=$log
# Until fio has written (a slow guest starts it late): the reloads below
# check that the map they find is kept, so it must not be empty.
for i in $(seq 600); do [ "$(dirty)" -gt 0 ] && break; sleep 0.1; done
sleep 1

ops_ok=1 kept=1
for i in 1 2 3; do
	dmsetup suspend tlife && dmsetup resume tlife || ops_ok=0
	dmsetup suspend --noflush tlife && dmsetup resume tlife || ops_ok=0
	# Reload the same table under I/O: suspend swaps it in.
	dmsetup reload tlife --table "$(dmsetup table tlife)" &&
		dmsetup suspend tlife && dmsetup resume tlife || ops_ok=0
	# And once more with the writer held still, so that the map must be
	# exactly what it was: a map lost and filled again by the writer
	# would pass a "not smaller" check.
	# fio's job runs in a process of its own, a child of $fiopid.
	kids=$(children "$fiopid")
	kill -STOP "$fiopid" $kids
	sleep 0.5
	before=$(dirty)
	dmsetup reload tlife --table "$(dmsetup table tlife)" &&
		dmsetup suspend tlife && dmsetup resume tlife || ops_ok=0
	after=$(dirty)
	kill -CONT "$fiopid" $kids
	[ "$before" -gt 0 ] && [ "$after" = "$before" ] ||
		{ kept=0; diag "reload $i: $before dirty regions before, $after after"; }
	dmsetup message tlife 0 mode passthrough || ops_ok=0
	dmsetup message tlife 0 mode track || ops_ok=0
	sleep 1
done
[ $ops_ok = 1 ] && pass "suspend, resume, reload and mode changes under load" ||
	fail "suspend, resume, reload and mode changes under load"
check_eq "each reload kept the dirty map exactly (the writer held still)" 1 "$kept"

expect_fail "a device in use refuses removal" "busy" dmsetup remove tlife
check "fio still running after all of it" kill -0 "$fiopid"

# Stop fio: on SIGINT it finishes what is in flight and exits 128.
kill -INT "$fiopid"
rc=0
wait "$fiopid" || rc=$?
check_eq "fio stopped by us (exit 128), not by an error" 128 "$rc"
check "fio saw no I/O or verify error" grep -q 'err= 0' $log
diag "$(grep -E 'write: IOPS' $log)"

check "remove once idle" dmsetup remove tlife
check "dm-sxm unloads with nothing left" rmmod dm_sxm
check "and loads again" modprobe dm-sxm
