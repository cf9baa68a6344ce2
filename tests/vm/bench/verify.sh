#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What the online verify costs the guest (run by scripts/bench-vm.sh, not
# by make check): fio 4 KiB random writes at queue depth 16 (IOPS, p99
# completion latency) and 1 MiB sequential writes (MiB/s) on a job's
# device while a verify pass runs, against the same on a job submitted
# with --no-verify, side by side in the same boot, for a warm job (Ready)
# and a mirror-style job (Mirrored: its pass compares under region locks).
# Each run starts a pass (sxm-ctl verify) first; the jobs' --rate, the
# pass's pace, is set so that a pass lasts longer than a run.  fio writes
# the first quarter of the device: a warm job's pass skips what is dirty
# (a sync copies it anyway), so over the whole device it would have
# nothing left to read.
# Sizes: 128 MiB brd devices, 5 rounds of 4 s fio runs.
# vm-timeout: 900
. "$(dirname "$0")/../../lib/test_common.sh"
. "$(dirname "$0")/../../lib/warm.sh"
. "$(dirname "$0")/lib.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit

MIB=128 SECS=4 ROUNDS=5 RATE=16M
FIO_SIZE=$((MIB / 4))M	# fio_w: the first quarter (see above)
grep -q '^brd ' /proc/modules && bail "brd is already loaded"
modprobe brd rd_nr=4 rd_size=$((MIB * 1024)) max_part=0 || bail "modprobe brd"
cleanup_push _tc_rmmod brd
for d in /dev/ram0 /dev/ram1 /dev/ram2 /dev/ram3; do
	dd if=/dev/urandom of="$d" bs=1M count=$MIB oflag=direct status=none
done
daemon_start

# The jobs, each to a sink of its own.
names=(warm warm-noverify mirror mirror-noverify)
args=("" "--no-verify" "--kind sxm" "--kind sxm --no-verify")
devs=()
for i in 0 1 2 3; do
	sink_start memory size=${MIB}M
	# shellcheck disable=SC2086
	sxm-ctl submit --source /dev/ram$i --sink "$SINK_URI" --name "v$i" \
		--rate $RATE ${args[$i]} --wait > /dev/null 2>&1 ||
		bail "submit ${names[$i]}: $(sxm-ctl show v$i 2>&1 | tail -n 3)"
	devs+=("/dev/mapper/$(sxm-ctl show v$i --json | sed -n 's/.*"device":"\/dev\/mapper\/\([^"]*\)".*/\1/p')")
	cleanup_push _tc_dm_remove "${devs[$i]#/dev/mapper/}"
done

# run I WL ARGS... — a pass started from the start on job I (not on the
# --no-verify ones), then one fio run; the bytes verified by its end (the
# pass's progress: it started from nothing) are kept too.
res=/tmp/bench-verify
: > $res
run() {
	local i=$1 wl=$2 out v=0
	shift 2
	if [ $((i % 2)) = 0 ]; then
		sxm-ctl verify "v$i" > /dev/null 2>&1
		sleep 0.5	# taken: the map starts again
	fi
	out=$(fio_w "${devs[$i]}" "$@")
	[ $((i % 2)) = 0 ] && v=$(jf "v$i" verified_now_bytes)
	echo "$round $i $wl $out $v" >> $res
}
for round in $(seq $ROUNDS); do
	for k in 0 1 2 3; do
		i=$(((k + round) % 4))
		run $i r4 --rw=randwrite --bs=4k --iodepth=16
		run $i s1 --rw=write --bs=1M --iodepth=4
	done
done

diag "medians of $ROUNDS rounds of $SECS s on the first $((MIB / 4)) MiB of $MIB MiB brd devices; verify at --rate $RATE; sinks nbdkit memory over the veth"
diag "$(printf '%-18s %9s %10s %10s %16s' "" "4k IOPS" "4k p99 us" "1M MiB/s" "verified/run MiB")"
for i in 0 1 2 3; do
	c7=$(col $i r4 7)
	diag "$(printf '%-18s %9s %10s %10s %16s' "${names[$i]}" "$(col $i r4 4)" \
		"$(col $i r4 5)" "$(col $i s1 6)" "$(( ${c7:-0} >> 20 ))")"
done
diag "ratios, verify running / --no-verify, each the median of the rounds' own:"
diag "$(printf '  %-8s IOPS %s  p99 %s  MiB/s %s' warm "$(ratio 0 1 r4 4)" \
	"$(ratio 0 1 r4 5)" "$(ratio 0 1 s1 6)")"
diag "$(printf '  %-8s IOPS %s  p99 %s  MiB/s %s' mirror "$(ratio 2 3 r4 4)" \
	"$(ratio 2 3 r4 5)" "$(ratio 2 3 s1 6)")"
check "the verify ran during the runs" test "$(col 0 r4 7)" -gt 0 -a "$(col 2 r4 7)" -gt 0
pass "the online verify's cost measured"
for i in 0 1 2 3; do
	sxm-ctl cancel "v$i" --wait > /dev/null 2>&1
done
