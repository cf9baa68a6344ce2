#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test VM (packed by scripts/mkinitramfs.sh, booted by
# scripts/vm-run.sh): mount the pseudo file systems, load the modules, run the
# tests named on the kernel command line (sxm.tests=vm/00-a.sh,vm/10-b.sh;
# default: all of /sxm/tests/vm/*.sh), then power off.
#
# A test of power cuts (sxm.power_boot=K, sxm.power_boots=N) gets
# SXM_POWER_BOOT and SXM_POWER_BOOTS in its environment and its disks as
# /dev/vd*; it asks for the cut with "=== POWER-CUT" in its output
# (power_cut in tests/lib/test_common.sh).
#
# Results channel: /dev/ttyS1, which the host writes to a file.  Per test:
#   === BEGIN vm/00-a.sh
#   <the test's stdout and stderr: TAP>
#   === END vm/00-a.sh rc=N time=SECONDS
#   === LEFTOVER vm/00-a.sh: <what its teardown left behind>   (if any)
# and "=== DONE" last.  The console (ttyS0) has the kernel's messages; the
# markers also go there (through /dev/kmsg) so that it says which test was
# running when the kernel complained.  Processes, dm devices, loop devices,
# network namespaces a test leaves behind are reported and removed.
#
# On a kernel with kmemleak (the debug kernel), the boot ends with one more
# result, vm/boot-N-kmemleak (N from sxm.boot=N): dm-sxm unloaded, two
# scans, and every leak kmemleak suspects in dm-sxm is a failure, also
# logged as "kmemleak: N new suspected memory leaks in dm-sxm" for the host.

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
# kmemleak (the debug kernel): no scan every 10 minutes, which takes a CPU
# for many seconds under TCG; the boot ends with two (kmemleak_check), and
# a leak is still there then.
[ -w /sys/kernel/debug/kmemleak ] && echo scan=off > /sys/kernel/debug/kmemleak
ln -sf /proc/self/fd /dev/fd
ln -sf fd/0 /dev/stdin; ln -sf fd/1 /dev/stdout; ln -sf fd/2 /dev/stderr
hostname sxm-vm
ip link set lo up

# Make a stuck task visible quickly: reported after 30-35 s in D state.
[ -w /proc/sys/kernel/hung_task_timeout_secs ] &&
	echo 30 > /proc/sys/kernel/hung_task_timeout_secs &&
	echo 5 > /proc/sys/kernel/hung_task_check_interval_secs

for m in dm-mod dm-flakey dm-delay dm-mirror loop nbd veth sch_netem; do
	modprobe "$m" || echo "init: modprobe $m failed"
done

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3>/dev/ttyS1

kmsg() { echo "sxm-vm: $*" > /dev/kmsg; }

tests=() boot=1 tscale=1 extra=0
for arg in $(cat /proc/cmdline); do
	case $arg in
	sxm.tests=*) IFS=, read -r -a tests <<< "${arg#sxm.tests=}" ;;
	sxm.boot=*) boot=${arg#sxm.boot=} ;;
	sxm.tscale=*) tscale=${arg#sxm.tscale=} ;;	# the time limits, times this
	sxm.extra_time=*) extra=${arg#sxm.extra_time=} ;;	# and this much more
	# A power-cuts test's boot K of N (scripts/vm-run.sh); its disks
	# are virtio ones: /dev/vda, /dev/vdb, ...
	sxm.power_boot=*) export SXM_POWER_BOOT=${arg#sxm.power_boot=} ;;
	sxm.power_boots=*) export SXM_POWER_BOOTS=${arg#sxm.power_boots=} ;;
	esac
done
if [ ${#tests[@]} -eq 0 ]; then
	for t in /sxm/tests/vm/*.sh; do tests+=("vm/${t##*/}"); done
fi
if [ -n "${SXM_POWER_BOOT:-}" ]; then
	for m in virtio_pci virtio_blk; do modprobe "$m" || echo "init: modprobe $m failed"; done
fi

# The ticks (USER_HZ) all CPUs spent busy since boot.
cpu_busy() {
	local _c u n sy idle io irq sirq rest
	read -r _c u n sy idle io irq sirq rest < /proc/stat
	echo $((u + n + sy + irq + sirq))
}
# "a b" lines -> "a,b,..." (first field; FS given or blank)
list() { awk -F "${1:- }" '{ printf "%s%s", s, $1; s = "," }'; }
# User processes a test left running: they were reparented to init.  Run in
# init itself (not in a subshell, which would be one of init's children):
# sets "strays" to "PID NAME" lines.
find_strays() {
	local p k v c ppid
	strays=""
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" != 1 ] && [ -e "/proc/$p/exe" ] || continue	# not kernel threads
		ppid=""
		while read -r k v; do
			case $k in Name:) c=$v ;; PPid:) ppid=$v; break ;; esac
		done < "/proc/$p/status" 2>/dev/null
		[ "$ppid" = 1 ] && strays+="$p $c"$'\n'
	done
}
# Whatever a test's teardown missed (sets "left"); force_clean removes it so
# that the next test starts clean.
leftovers() {
	left=""
	[ -n "$(dmsetup ls 2>/dev/null | grep -v 'No devices found')" ] &&
		left+=" dm:$(dmsetup ls | list)"
	[ -n "$(ip netns list 2>/dev/null)" ] && left+=" netns:$(ip netns list | list)"
	[ -n "$(losetup -a 2>/dev/null)" ] && left+=" loop:$(losetup -a | list :)"
	find_strays
	[ -n "$strays" ] && left+=" processes:$(echo -n "$strays" | awk '{ print $2 }' | list)"
	grep -q '^brd ' /proc/modules && left+=" module:brd"
}
force_clean() {
	for _ in 1 2 3; do
		find_strays
		for p in $(echo -n "$strays" | cut -d' ' -f1); do kill -KILL "$p"; done
		sleep 0.2
	done
	dmsetup remove_all --force >/dev/null 2>&1
	for n in $(ip netns list | awk '{print $1}'); do ip netns delete "$n"; done
	losetup -D 2>/dev/null
	grep -qs ' /tmp/sxm-scratch ' /proc/mounts && umount -l /tmp/sxm-scratch
	rmmod brd 2>/dev/null
	rm -rf /tmp/* 2>/dev/null
}

for t in "${tests[@]}"; do
	f=/sxm/tests/$t
	tmo=$(sed -n 's/^# vm-timeout: *\([0-9]*\).*/\1/p' "$f" 2>/dev/null | head -n 1)
	kmsg "BEGIN $t"
	echo "=== BEGIN $t" >&3
	t0=$(cut -d' ' -f1 /proc/uptime) c0=$(cpu_busy)
	if [ -f "$f" ]; then
		# Output to a file (not a tty: fio would print progress bars),
		# streamed to the channel until the test's own process ends;
		# not through a pipe, which a stray background process of the
		# test could keep open forever.
		log=/run/sxm-out/${t//\//_}.log
		mkdir -p /run/sxm-out
		: > "$log"
		(cd /tmp && exec timeout -k 10 "$(( ${tmo:-300} * tscale + extra ))" bash "$f") > "$log" 2>&1 < /dev/null &
		pid=$!
		tail -n +1 -s 0.2 --pid="$pid" -f "$log" >&3 &
		wait "$pid"
		rc=$?
		wait $!
	else
		echo "not ok 1 $t: no such test in the image" >&3
		rc=1
	fi
	secs=$(awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime)
	# cpu: the guest's CPUs' busy seconds (under TCG, the host's too).
	echo "=== END $t rc=$rc time=$secs cpu=$(( ($(cpu_busy) - c0) / 100 ))" >&3
	kmsg "END $t rc=$rc"
	leftovers
	if [ -n "$left" ]; then
		echo "=== LEFTOVER $t:$left" >&3
		force_clean
	fi
	# A fresh dm-sxm for the next test; failing to unload is a bug.
	if grep -q '^dm_sxm ' /proc/modules && ! err=$(rmmod dm_sxm 2>&1); then
		echo "=== LEFTOVER $t: dm_sxm cannot be unloaded: $err" >&3
	fi
done

# kmemleak_check — the boot's leaks in dm-sxm, as one TAP result.  The
# module is unloaded first: what it still pointed to is then unreferenced.
kmemleak_check() {
	local km=/sys/kernel/debug/kmemleak t="vm/boot-$boot-kmemleak" all mine n
	[ -w $km ] || return 0
	kmsg "BEGIN $t"
	echo "=== BEGIN $t" >&3
	echo "TAP version 13"$'\n'"1..1" >&3
	grep -q '^dm_sxm ' /proc/modules && rmmod dm_sxm
	# Twice, a few seconds apart: an object is reported once it has stayed
	# unreferenced through a scan and is 5 s old.
	echo scan > $km; sleep 5; echo scan > $km
	all=$(cat $km)
	# One record per "unreferenced object" paragraph; dm-sxm's are those
	# with a dm_sxm or sxm_ frame, or an address left unresolved in module
	# space (a frame in a module that has been unloaded: dm-sxm by now).
	mine=$(awk '/^unreferenced object/ { if (r != "" && m) print r; r = ""; m = 0 }
		{ r = r $0 "\n" }
		/\[dm_sxm\]|[ <]sxm_|\] 0xffffffff[a-f]/ { m = 1 }
		END { if (r != "" && m) print r }' <<< "$all")
	n=$(grep -c '^unreferenced object' <<< "$mine")
	if [ "$n" -gt 0 ]; then
		kmsg "kmemleak: $n new suspected memory leaks in dm-sxm"
		echo "not ok 1 kmemleak: $n suspected memory leaks in dm-sxm" >&3
		printf '%s\n' "$mine" | head -n 200 | sed 's/^/# /' >&3
	else
		echo "ok 1 kmemleak: no suspected memory leaks in dm-sxm" \
			"($(grep -c '^unreferenced object' <<< "$all") elsewhere)" >&3
	fi
	# The rest, for whoever wants to look: in the console.
	[ -z "$all" ] || { echo "init: kmemleak's whole report:"; echo "$all"; } > /dev/console
	echo "=== END $t rc=$((n > 0))" >&3
	kmsg "END $t"
}
kmemleak_check

echo "=== DONE" >&3
kmsg "DONE"
sync
# Reboot, which qemu -no-reboot turns into its exit: the same on both
# kernels, whatever their ACPI makes of qemu's tables (a power-off may
# only halt where it makes too little of them).
reboot -f
