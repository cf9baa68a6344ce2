#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What the persistent write-intent map costs the guest (run by
# scripts/bench-vm.sh, not by make check): fio 4 KiB random writes at queue
# depth 16 (IOPS, p99 completion latency) and 1 MiB sequential writes
# (MiB/s) through dm-linear, sxm tracking in memory, and sxm tracking with
# its map on a metadata device, side by side in the same boot:
#
#   steady  every region marked already (a write costs two atomic reads)
#   fresh   a newly bound metadata device before each run, measured from
#           its first write: the runs mark regions as they go (a write to
#           a new region waits for a FUA write of its map block; the writes
#           waiting meanwhile share it) until most are marked
#
# with 64 KiB regions; and the metadata blocks written per thousand guest
# writes in each.  All devices are brd ramdisks (no volatile cache, so a
# FUA write costs what a write costs): on real disks a fresh map costs
# more, a steady one the same.
# Sizes: 256 MiB devices (4096 regions), 5 rounds of 4 s fio runs.
# vm-timeout: 900
. "$(dirname "$0")/../../lib/test_common.sh"
. "$(dirname "$0")/lib.sh"

require_sxm
require_cmd dmsetup fio

MIB=256 SECS=4 ROUNDS=5 REGION=128
grep -q '^brd ' /proc/modules && bail "brd is already loaded"
modprobe brd rd_nr=4 rd_size=$((MIB * 1024)) max_part=0 || bail "modprobe brd"
cleanup_push _tc_rmmod brd
n=$((MIB << 11))
meta=/dev/ram3
mk() {	# mk NAME TABLE
	dmsetup remove "$1" > /dev/null 2>&1 || true
	dmsetup create "$1" --table "$2" || bail "dmsetup create $1"
	cleanup_push _tc_dm_remove "$1"
}
mk blin "0 $n linear /dev/ram0 0"
mk bmem "0 $n sxm /dev/ram1 $REGION 1 track"
fresh_meta() {
	dmsetup remove bmeta > /dev/null 2>&1 || true
	dd if=/dev/zero of=$meta bs=4k count=1 oflag=direct status=none
	mk bmeta "0 $n sxm /dev/ram2 $REGION 2 track metadata:$meta"
}
fresh_meta
names=(dm-linear sxm-in-memory sxm-metadata)
devs=(/dev/mapper/blin /dev/mapper/bmem /dev/mapper/bmeta)
mwrites() { dmsetup status bmeta | cut -d' ' -f21; }
for d in "${devs[@]}"; do	# every region marked: the steady state
	dd if=/dev/urandom of="$d" bs=1M count=$MIB oflag=direct status=none
done

# run I WL PHASE ARGS... — one fio run on configuration I; for the
# metadata one, the metadata blocks written during it per 1000 writes.
res=/tmp/bench-metadata
: > $res
run() {
	local i=$1 wl=$2 ph=$3 out w0 w1 per=0
	shift 3
	[ "$ph" = fresh ] && [ "$i" = 2 ] && fresh_meta
	w0=$(mwrites)
	# Fresh: measured from the first write (no ramp), as the map fills.
	[ "$ph" = steady ] || set -- "$@" --ramp_time=0
	out=$(fio_w "${devs[$i]}" "$@")
	w1=$(mwrites)
	if [ "$i" = 2 ]; then
		# writes = IOPS (4k) or MiB/s (1M, 1 MiB each) times the run.
		set -- $out
		per=$(awk -v d=$((w1 - w0)) -v i="$1" -v b="$3" -v wl="$wl" -v s=$SECS \
			'BEGIN { n = (wl == "r4" ? i : b) * s; printf "%.1f", n ? d * 1000 / n : 0 }')
	fi
	echo "$round $i $wl-$ph $out $per" >> $res
}
# The steady rounds first: a fresh one binds the metadata device anew.
for ph in steady fresh; do
	for round in $(seq $ROUNDS); do
		for k in 0 1 2; do
			i=$(((k + round) % 3))
			run $i r4 $ph --rw=randwrite --bs=4k --iodepth=16
			run $i s1 $ph --rw=write --bs=1M --iodepth=4
		done
	done
done

diag "medians of $ROUNDS rounds of $SECS s on $MIB MiB brd devices, 64 KiB regions"
diag "$(printf '%-16s %-7s %9s %10s %10s %14s %14s' "" "" "4k IOPS" "4k p99 us" "1M MiB/s" \
	"meta/1000 (4k)" "meta/1000 (1M)")"
for ph in steady fresh; do
	for i in 0 1 2; do
		diag "$(printf '%-16s %-7s %9s %10s %10s %14s %14s' "${names[$i]}" $ph \
			"$(col $i r4-$ph 4)" "$(col $i r4-$ph 5)" "$(col $i s1-$ph 6)" \
			"$([ $i = 2 ] && col $i r4-$ph 7 || echo -)" \
			"$([ $i = 2 ] && col $i s1-$ph 7 || echo -)")"
	done
done
diag "ratios, each the median of the rounds' own:"
for ph in steady fresh; do
	diag "$(printf '  %-6s metadata / dm-linear:  IOPS %s  p99 %s  MiB/s %s' $ph \
		"$(ratio 2 0 r4-$ph 4)" "$(ratio 2 0 r4-$ph 5)" "$(ratio 2 0 s1-$ph 6)")"
	diag "$(printf '  %-6s metadata / in memory:  IOPS %s  p99 %s  MiB/s %s' $ph \
		"$(ratio 2 1 r4-$ph 4)" "$(ratio 2 1 r4-$ph 5)" "$(ratio 2 1 s1-$ph 6)")"
done
check "the metadata device was written in the fresh runs" \
	test "$(col 2 r4-fresh 7 | cut -d. -f1)" -gt 0
check_eq "and the persistent map stayed active" active "$(dmsetup status bmeta | cut -d' ' -f19)"
pass "the persistent map's cost measured"
