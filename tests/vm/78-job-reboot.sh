#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Jobs that survive a power cut: a warm job and a mirror-style job, each
# with a metadata device (submit --metadata), under fio loads, and the VM
# killed (qemu SIGKILL, scripts/vm-run.sh "power-cuts") three times; at every
# boot the daemon comes up as at host boot, before anything writes: it puts
# each job's device back (the warm job's /dev/mapper/w78 created again over
# its disk, sxm inserted again under the mirror job's "logical volume",
# which the boot activates first as LVM would) with its metadata device,
# and the jobs go on with their track: the warm job syncs the map the
# metadata device kept, the mirror-style one resyncs it and mirrors again.
# What they copy after each cut is counted and bounded by the window fio
# writes in (4 MiB of the 32 MiB disks): no full re-copy.  Cut 1 comes
# during the writes with syncs every 2 s, cut 2 during a sync asked for,
# cut 3 during the warm job's cutover (its catch-up syncs under the writes,
# or its frozen copy; or just after it, and then there is nothing to put
# back: a Completed job's source stays frozen until the VM is moved).
# At the last boot the mirror job's LV is held open before the daemon
# starts (a VM started first): the daemon cannot know what was written,
# starts a new track and says why, and that job copies everything again.
# Then both cut over, and each sink equals its source.
#
# Disks (they outlive the guest): the warm job's source, metadata and sink;
# the mirror job's source, metadata and sink; an ext4 for the job records.
# The sinks are nbdkit's file plugin over their disks, in the sink's netns.
# vm-timeout: 300
# vm: power-cuts 3
# vm: power-cut-delay 3000
# vm: disks wsrc:32,wmeta:1,wsink:32,msrc:32,mmeta:1,msink:32,state:64
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_cmd dmsetup fio nbdkit mkfs.ext4 sha256sum
require_sxm
require_sxm_ctl
boot=${SXM_POWER_BOOT:?run by scripts/vm-run.sh: power-cuts} boots=${SXM_POWER_BOOTS:?}
B="boot $boot/$boots"

W=/dev/vda WM=/dev/vdb WS=/dev/vdc M=/dev/vdd MM=/dev/vde MS=/dev/vdf ST=/dev/vdg
for _ in $(seq 100); do [ -b $ST ] && break; sleep 0.1; done
for d in $W $WM $WS $M $MM $MS $ST; do [ -b "$d" ] || bail "no disk $d"; done
MIB=32 WIN=4

# The job records on a disk that outlives the guest.
[ "$boot" != 1 ] || mkfs.ext4 -q -F $ST
mkdir -p /mnt/st78
mount -t ext4 $ST /mnt/st78
cleanup_push umount /mnt/st78
export SXM_JOB_DIR=/mnt/st78/jobs

# What LVM does at boot: the mirror job's source, its plain table.
lv_create lv78 $M $MIB
# The warm job's device, which its daemon makes (removed after it stops).
cleanup_push _tc_dm_remove w78
# Boot 3 cuts in the warm job's cutover: a sink 300 ms away makes it last
# long enough (its syncs, flushes and read-back) for the cut to fall in.
if [ "$boot" = 3 ]; then
	sink_start -p 10901 --delay 300ms file file=$WS
else
	sink_start -p 10901 file file=$WS
fi
WURI=$SINK_URI
sink_start -p 10902 file file=$MS
MURI=$SINK_URI
saved() { sed -n "s/^$2 //p" "$SXM_JOB_DIR/$1.job"; }
# at_least JOB KEY N — the job's KEY is N or more; said JOB TEXT — an event
# of JOB's in this boot has TEXT
at_least() { [ "$(jf "$1" "$2")" -ge "$3" ]; }
# (the events of this boot: the daemon's log, on the guest's /tmp)
said() { grep -F "job $1: " "$DAEMON_LOG" | grep -qF -- "$2"; }
is() { [ "$(jf "$1" "$2")" = "$3" ]; }

if [ "$boot" = 1 ]; then
	rand_fill $W $MIB
	rand_fill $M $MIB
	dd if=/dev/zero of=$WM bs=1M count=1 oflag=direct status=none
	dd if=/dev/zero of=$MM bs=1M count=1 oflag=direct status=none
	daemon_start
	check "$B: submit a warm job with a metadata device" sxm-ctl submit \
		--source $W --sink "$WURI" --name w78 --metadata $WM --cadence 2s
	check "$B: submit a mirror-style job with a metadata device" sxm-ctl submit \
		--source /dev/mapper/lv78 --sink "$MURI" --kind sxm --name m78 \
		--metadata $MM
	check "$B: the warm job is Ready" wait_phase w78 Ready 120
	check "$B: the mirror-style job is Mirrored" wait_phase m78 Mirrored 120
	check_eq "$B: both maps are on their metadata devices" "active active" \
		"$(jf w78 state) $(jf m78 state)"
	expect_fail "$B: a third job cannot take the warm job's metadata device" \
		"is job w78's metadata device" sxm-ctl submit --source $MS \
		--sink "$WURI" --name x78 --metadata $WM
	fio_load fw /dev/mapper/w78 /tmp/fw.log --size=${WIN}M
	fio_load fm /dev/mapper/lv78 /tmp/fm.log --size=${WIN}M
	check "$B: two syncs under the writes" wait_until 60 \
		at_least w78 sync_count $(($(jf w78 sync_count) + 2))
	sync
	power_cut
fi

# ------------------------------------------------- every later boot ----

before_w=$(saved w78 bytes_incr) before_m=$(saved m78 bytes_incr)
full_w=$(saved w78 bytes_full) full_m=$(saved m78 bytes_full)
cut_w=$(saved w78 cutover_bytes) phase_w=$(saved w78 phase)
last=""
[ "$boot" != "$boots" ] || last=1
if [ -n "$last" ]; then
	# A VM that started before the daemon: it holds the LV open.
	exec 9</dev/mapper/lv78
	cleanup_push exec 9<&-
fi
daemon_start
diag "$B: the warm job was in $phase_w at the cut"

# The warm job: its device back, its track on, only the window copied.
# (A cut that came after its cutover ended leaves it Completed: its
# source frozen then, nothing to put back.)
if [ "$phase_w" = Completed ]; then
	check_eq "$B: a Completed job's device is not put back" "" \
		"$(dmsetup table w78 2>/dev/null)"
else
	check "$B: the daemon put /dev/mapper/w78 back over its disk" \
		test "$(dmsetup table w78 | cut -d' ' -f3)" = sxm
	check "$B: the warm job's track goes on" said w78 "goes on"
	check_eq "$B: its map active, loaded unclean" "active unclean" \
		"$(jf w78 state) $(jf w78 loaded)"
	if [ "$phase_w" = "Cutting Over" ]; then
		check "$B: the cutover the cut broke off is done again" \
			wait_phase w78 Completed 120
	else
		check "$B: it syncs what its map kept" wait_until 60 \
			at_least w78 sync_count $(($(saved w78 sync_count) + 1))
		check "$B: it is Ready" wait_phase w78 Ready 30
	fi
	rw=$(($(jf w78 bytes_incr) - before_w + $(jf w78 cutover_bytes) - cut_w))
	diag "$B: the warm job copied $rw bytes after the cut (fio writes in $WIN MiB of $MIB)"
	check_eq "$B: no full sync, and at most the written window copied again" "$full_w 1" \
		"$(jf w78 bytes_full) $([ $rw -le $((WIN << 20)) ] && echo 1)"
	check "$B: no tracking gap, no full sync" bash -c \
		"! grep -E 'job w78: (tracking was interrupted|.*full sync of)' $DAEMON_LOG"
fi

# The mirror-style job: sxm under the LV again, the mirror back on.
check "$B: sxm back under the LV" \
	test "$(dmsetup table lv78 | cut -d' ' -f3)" = sxm
check "$B: the mirror-style job mirrors again" wait_phase m78 Mirrored 120
check "$B: its mirror is on" wait_until 60 is m78 mirror on
rm_=$(($(jf m78 bytes_incr) - before_m))
diag "$B: the mirror-style job copied $rm_ bytes again, bulk $(jf m78 bytes_full) (was $full_m)"
if [ -z "$last" ]; then
	check "$B: its track goes on" said m78 "goes on"
	check_eq "$B: no bulk copy, and at most the written window copied again" "$full_m 1" \
		"$(jf m78 bytes_full) $([ $rm_ -le $((WIN << 20)) ] && echo 1)"
else
	check "$B: the LV open first: a new track, and why" \
		said m78 "was open (1) before sxm was back under it"
	check "$B: and everything copied again" said m78 "tracking was interrupted"
fi

# Cut 2 during a sync asked for; cut 3 in the warm job's cutover, its
# catch-up syncs under the writes or its copy of the frozen delta.
if [ -z "$last" ]; then
	fio_load fw /dev/mapper/w78 /tmp/fw.log --size=${WIN}M
	fio_load fm /dev/mapper/lv78 /tmp/fm.log --size=${WIN}M
	sleep 2
	if [ "$boot" = 2 ]; then
		check "$B: a sync asked for" sxm-ctl sync w78
	else
		check "$B: a cutover asked for under the writes" sxm-ctl cutover w78
	fi
	sync
	power_cut
fi

# The last boot: both cut over, each sink equals its source.
exec 9<&-
if [ "$(jf w78 phase)" != Completed ]; then
	check "$B: the warm job cuts over" sxm-ctl cutover w78 --wait
fi
check "$B: the mirror-style job cuts over" sxm-ctl cutover m78 --wait
same() {
	[ "$(dd if="$1" bs=1M count=$MIB iflag=direct status=none | sha256sum)" = \
	  "$(dd if="$2" bs=1M count=$MIB iflag=direct status=none | sha256sum)" ]
}
check "$B: the warm job's sink equals its source" same $W $WS
check "$B: the mirror-style job's sink equals its source" same $M $MS
