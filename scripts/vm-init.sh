#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test VM (packed by scripts/mkinitramfs.sh, booted by
# scripts/vm-run.sh): mount the pseudo file systems, load the modules, run the
# tests named on the kernel command line (sxm.tests=vm/00-a.sh,vm/10-b.sh;
# default: all of /sxm/tests/vm/*.sh), then power off.
#
# Results channel: /dev/ttyS1, which the host writes to a file.  Per test:
#   === BEGIN vm/00-a.sh
#   <the test's stdout and stderr: TAP>
#   === END vm/00-a.sh rc=N
#   === LEFTOVER vm/00-a.sh: <what its teardown left behind>   (if any)
# and "=== DONE" last.  Markers also go to /dev/kmsg so that the console log
# says which test was running when the kernel complained.

export PATH=/usr/sbin:/usr/bin:/sxm/userspace
export HOME=/root TERM=dumb LANG=C
export DM_DISABLE_UDEV=1	# no udev here: libdevmapper makes /dev/mapper nodes
export SXM_TOP=/sxm SXM_VM=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
ln -sf /proc/self/fd /dev/fd
ln -sf fd/0 /dev/stdin; ln -sf fd/1 /dev/stdout; ln -sf fd/2 /dev/stderr
hostname sxm-vm
ip link set lo up

# Make a stuck task visible quickly.
[ -w /proc/sys/kernel/hung_task_timeout_secs ] &&
	echo 30 > /proc/sys/kernel/hung_task_timeout_secs

for m in dm-mod dm-flakey dm-delay dm-mirror loop nbd veth sch_netem; do
	modprobe "$m" || echo "init: modprobe $m failed"
done

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1

kmsg() { echo "sxm-vm: $*" > /dev/kmsg; }

tests=()
for arg in $(cat /proc/cmdline); do
	case $arg in sxm.tests=*) IFS=, read -r -a tests <<< "${arg#sxm.tests=}" ;; esac
done
if [ ${#tests[@]} -eq 0 ]; then
	for t in /sxm/tests/vm/*.sh; do tests+=("vm/${t##*/}"); done
fi

# Whatever a test's teardown missed; removed here so the next test starts clean.
leftovers() {
	local l=""
	[ -n "$(dmsetup ls 2>/dev/null | grep -v 'No devices found')" ] &&
		l+=" dm:$(dmsetup ls | awk '{printf "%s,", $1}')"
	[ -n "$(ip netns list 2>/dev/null)" ] && l+=" netns:$(ip netns list | awk '{printf "%s,", $1}')"
	[ -n "$(losetup -a 2>/dev/null)" ] && l+=" loop:$(losetup -a | cut -d: -f1 | tr '\n' ,)"
	grep -q '^brd ' /proc/modules && l+=" brd-loaded"
	grep -q '^dm_sxm ' /proc/modules && l+=" dm_sxm-loaded"
	echo "$l"
}
force_clean() {
	pkill -KILL nbdkit; pkill -KILL fio; pkill -KILL qemu-nbd; pkill -KILL sxm-ctl
	dmsetup remove_all --force >/dev/null 2>&1
	for n in $(ip netns list | awk '{print $1}'); do ip netns delete "$n"; done
	losetup -D 2>/dev/null
	grep -qs ' /tmp/sxm-scratch ' /proc/mounts && umount -l /tmp/sxm-scratch
	rmmod brd dm_sxm 2>/dev/null
	rm -rf /tmp/* 2>/dev/null
}

for t in "${tests[@]}"; do
	f=/sxm/tests/$t
	tmo=$(sed -n 's/^# vm-timeout: *\([0-9]*\).*/\1/p' "$f" 2>/dev/null | head -n 1)
	kmsg "BEGIN $t"
	echo "=== BEGIN $t" >&3
	if [ -f "$f" ]; then
		(cd /tmp && exec timeout -k 10 "${tmo:-300}" bash "$f") 2>&1 | tee /dev/fd/3
		rc=${PIPESTATUS[0]}
	else
		echo "not ok 1 $t: no such test in the image" | tee /dev/fd/3
		rc=1
	fi
	echo "=== END $t rc=$rc" >&3
	kmsg "END $t rc=$rc"
	l=$(leftovers)
	if [ -n "$l" ]; then
		echo "=== LEFTOVER $t:$l" >&3
		force_clean
	fi
done

echo "=== DONE" >&3
kmsg "DONE"
sync
poweroff -f
