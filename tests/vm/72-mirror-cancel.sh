#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Cancel of a mirror-style job in each phase it can be found in, under a
# fio --verify writer on half of the device: during the bulk copy, with the
# bulk copy paused, Mirrored, and Mirrored with the mirror down (the sink
# gone).  Each time: the job is Cancelled, the volume's own table is back
# (sxm taken out, no hidden device left), fio saw no error, and the half
# no guest writes is byte for byte what it was: the helper never writes
# the source.
# vm-timeout: 420
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"
. "$(dirname "$0")/../lib/mirror.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit sha256sum

MIB=32
daemon_start

# Bytes [0, MIB/2) of the volume: no guest writes there.
quiet_half() {
	dd if="$1" bs=1M count=$((MIB / 2)) iflag=direct status=none | sha256sum
}

# cancel_in TAG PHASE_WANTED SETUP... — a new volume under fio, a mirror-
# style job on it brought to the phase by SETUP (a function), cancelled.
cancel_in() {
	local tag=$1 want=$2 setup=$3 d lv log before
	lv=lv72$tag log=/tmp/fio72-$tag.log
	scratch_dev d $MIB
	rand_fill "$d" $MIB
	lv_create $lv "$d" $MIB
	before=$(quiet_half "$d")
	fio_load fpid /dev/mapper/$lv "$log" --offset=$((MIB / 2))M \
		--size=$((MIB / 2))M --rate_iops=80
	sink_start --delay 5ms memory size=${MIB}M
	$setup "j72$tag" $lv
	check_eq "$tag: the job is in $want" "$want" "$(jf "j72$tag" phase)"
	check "$tag: cancel --wait" sxm-ctl cancel "j72$tag" --wait
	check_eq "$tag: Cancelled" Cancelled "$(jf "j72$tag" phase)"
	check_eq "$tag: the volume's own table is back" linear \
		"$(dmsetup table $lv | awk '{ print $3 }')"
	check "$tag: no hidden device left" bash -c "! dmsetup info $lv-sxm-orig >/dev/null 2>&1"
	check "$tag: the guest writes on" kill -0 "$fpid"
	fio_stop fpid "$log" "$tag: fio --verify saw no error"
	check_eq "$tag: the half no guest writes is as it was: the source never written" \
		"$before" "$(quiet_half "$d")"
}

copying() {	# JOB LV: the bulk copy under way, at 2 MiB/s
	sxm-ctl submit --source /dev/mapper/$2 --sink "$SINK_URI" --kind sxm \
		--name "$1" --rate 2M > /dev/null
	wait_until 60 bash -c "[ \"\$(sxm-ctl show $1 --json | sed -n 's/.*\"full_sync_done\":\([0-9]*\).*/\1/p')\" -gt 0 ]"
}
copy_paused() {
	copying "$@"
	sxm-ctl pause "$1" > /dev/null
	wait_until 10 bash -c "sxm-ctl show $1 --json | grep -q '\"paused\":true'"
}
mirrored() {
	sxm-ctl submit --source /dev/mapper/$2 --sink "$SINK_URI" --kind sxm \
		--name "$1" --wait > /dev/null
}
mirror_down() {
	mirrored "$@"
	kill -KILL "$SINK_PID"
	wait_mirror "$2" degraded 30
}

cancel_in copy "Mirroring + Copying" copying
cancel_in paused "Mirroring + Copying" copy_paused
cancel_in on Mirrored mirrored
cancel_in down Mirrored mirror_down
