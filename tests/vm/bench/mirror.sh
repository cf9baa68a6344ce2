#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest's write path and the cutover, measured in the VM (run by
# scripts/bench-vm.sh, not by make check).  Every figure is printed with
# its ratio against a peer measured in the same boot, since TCG on a
# shared machine is noisy:
#   - fio 4 KiB random writes at queue depth 16 (IOPS, p99 completion
#     latency) and 1 MiB sequential writes (MiB/s) through dm-linear, sxm
#     in passthrough, sxm tracking, sxm mirroring to nbdkit over the veth
#     (a mirror-style job, Mirrored), and dm-raid1 (the "mirror" target,
#     core log) with its second leg on a kernel NBD device (qemu-nbd -c) to
#     the same nbdkit;
#   - the cutover's downtime (guest I/O held) under the same write load, a
#     warm job against a mirror-style job, REPS times each.
# Sizes: a 128 MiB device, 8 s a fio run, 3 cutovers a style.
# vm-timeout: 1500
. "$(dirname "$0")/../../lib/test_common.sh"
. "$(dirname "$0")/../../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit qemu-nbd
require_module nbd dm-mirror

MIB=128 SECS=5 ROUNDS=3 REPS=3
SECT=$((MIB * 2048))
mkdir -p /var/lock		# qemu-nbd -c keeps a socket there
# A device of its own per configuration, all alike (loop on the same pool).
scratch_dev s_lin $MIB
scratch_dev s_pass $MIB
scratch_dev s_track $MIB
scratch_dev s_mirror $MIB
scratch_dev s_raid $MIB
# Written once, so that no run pays for allocating the backing files.
for d in "$s_lin" "$s_pass" "$s_track" "$s_mirror" "$s_raid"; do
	dd if=/dev/zero of="$d" bs=1M count=$MIB oflag=direct status=none
done
sink_start memory size=$((MIB * 3))M
daemon_start

# fio_w DEV ARGS... — one timed write run: "IOPS P99_US MIBPS".
fio_w() {
	local dev=$1
	shift
	fio --name=b --filename="$dev" --ioengine=io_uring --direct=1 \
		--time_based --runtime="$SECS" --ramp_time=1 --randrepeat=0 \
		--size=${MIB}M --output-format=json "$@" 2>/dev/null | awk '
		/"write" : \{/ { w = 1 }
		w && /"iops" :/ && iops == "" { gsub(/[ ,]/, ""); split($0, a, ":"); iops = a[2] }
		w && /"bw" :/ && bw == "" { gsub(/[ ,]/, ""); split($0, a, ":"); bw = a[2] }
		w && /"99.000000" :/ && p99 == "" { gsub(/[ ,"]/, ""); split($0, a, ":"); p99 = a[2] }
		END { printf "%.0f %.0f %.1f\n", iops, p99 / 1000, bw / 1024 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The configurations: name, then device.
dm_create b-lin "0 $SECT linear $s_lin 0"
dm_create b-pass "0 $SECT sxm $s_pass 128"
dm_create b-track "0 $SECT sxm $s_track 128 1 track"
cleanup_push _tc_dm_remove bm
sxm-ctl submit --source "$s_mirror" --sink "$SINK_URI" --kind sxm --name bm \
	--wait > /dev/null 2>&1
[ "$(jf bm phase)" = Mirrored ] || bail "the mirror-style job did not reach Mirrored"
cleanup_push qemu-nbd -d /dev/nbd0
# The raid1 leg's export: the same server, past the mirror job's part.
qemu-nbd -c /dev/nbd0 --cache=none --image-opts \
	"driver=raw,offset=$((MIB << 20)),size=$((MIB << 20)),file.driver=nbd,file.server.type=inet,file.server.host=$SINK_ADDR,file.server.port=$SINK_PORT"
wait_until 10 bash -c "[ \$(blockdev --getsize64 /dev/nbd0) -eq $((MIB << 20)) ]" ||
	bail "qemu-nbd -c /dev/nbd0 did not come up"
dm_create b-raid1 "0 $SECT mirror core 2 1024 nosync 2 $s_raid 0 /dev/nbd0 0"

names=("dm-linear" "sxm passthrough" "sxm tracking" "sxm mirroring" "dm-raid1 + kernel nbd")
devs=(/dev/mapper/b-lin /dev/mapper/b-pass /dev/mapper/b-track /dev/mapper/bm /dev/mapper/b-raid1)
res=/tmp/bench-res
: > $res
for round in $(seq $ROUNDS); do
	for i in "${!devs[@]}"; do
		echo "$i r4 $(fio_w "${devs[$i]}" --rw=randwrite --bs=4k --iodepth=16)" >> $res
		echo "$i s1 $(fio_w "${devs[$i]}" --rw=write --bs=1M --iodepth=4)" >> $res
	done
done
diag "median of $ROUNDS interleaved rounds of $SECS s; device $MIB MiB; sink nbdkit memory over the veth"
diag "$(printf '%-24s %9s %10s %10s' "" "4k IOPS" "4k p99 us" "1M MiB/s")"
for i in "${!devs[@]}"; do
	iops[$i]=$(awk -v i="$i" '$1 == i && $2 == "r4" { print $3 }' $res | median)
	p99[$i]=$(awk -v i="$i" '$1 == i && $2 == "r4" { print $4 }' $res | median)
	mbs[$i]=$(awk -v i="$i" '$1 == i && $2 == "s1" { print $5 }' $res | median)
	diag "$(printf '%-24s %9s %10s %10s' "${names[$i]}" "${iops[$i]}" "${p99[$i]}" "${mbs[$i]}")"
done
diag "ratios against dm-linear:"
for i in 1 2 3 4; do
	diag "$(awk -v n="${names[$i]}" -v a="${iops[$i]}" -v b="${iops[0]}" -v c="${p99[$i]}" \
		-v d="${p99[0]}" -v e="${mbs[$i]}" -v f="${mbs[0]}" 'BEGIN {
		printf "  %-22s IOPS x%.2f  p99 x%.2f  MiB/s x%.2f", n, a / b, c / d, e / f }')"
done
diag "mirroring against dm-raid1 + kernel nbd: $(awk -v a="${iops[3]}" -v b="${iops[4]}" \
	-v c="${p99[3]}" -v d="${p99[4]}" -v e="${mbs[3]}" -v f="${mbs[4]}" 'BEGIN {
	printf "IOPS x%.2f  p99 x%.2f  MiB/s x%.2f", a / b, c / d, e / f }')"
diag "the pump: $(sxm-ctl show bm | sed -n 's/^Sink latency *//p'); the mirror went down $(jf bm degradations) times"
pass "write path measured in 5 configurations"
sxm-ctl cancel bm --wait > /dev/null 2>&1
sxm-ctl forget bm > /dev/null
dmsetup remove b-raid1
qemu-nbd -d /dev/nbd0 > /dev/null
src=$s_lin

# ------------------------------------------------------------- cutover ----

# cutover_once STYLE — a migration of $src under a steady write load
# (4 KiB random writes, 400 a second); its downtime in $down.
cutover_once() {
	local kind=$1 name=c$RANDOM fpid
	cleanup_push _tc_dm_remove $name
	if [ "$kind" = sxm ]; then
		sxm-ctl submit --source "$src" --sink "$SINK_URI" --kind sxm \
			--name $name > /dev/null 2>&1
	else
		sxm-ctl submit --source "$src" --sink "$SINK_URI" --name $name \
			> /dev/null 2>&1
	fi
	wait_until 30 test -b /dev/mapper/$name || bail "no /dev/mapper/$name"
	fio --name=load --filename=/dev/mapper/$name --ioengine=io_uring \
		--direct=1 --rw=randwrite --bs=4k --iodepth=4 --rate_iops=400 \
		--time_based --runtime=600 --randrepeat=0 --output=/dev/null &
	fpid=$!
	if [ "$kind" = sxm ]; then
		wait_phase $name Mirrored 300 || bail "$name did not reach Mirrored"
	else
		wait_phase $name Ready 300 || bail "$name did not reach Ready"
		sxm-ctl sync $name --wait > /dev/null 2>&1
	fi
	sleep 3
	sxm-ctl cutover $name --wait > /dev/null 2>&1
	down=$(jf $name downtime_ms)
	dmsetup resume $name
	kill -INT "$fpid" 2>/dev/null
	wait "$fpid" 2>/dev/null || true
	dmsetup remove --retry $name
	sxm-ctl forget $name > /dev/null
}

for style in warm sxm; do
	ds=()
	for i in $(seq "$REPS"); do
		cutover_once $style
		ds+=("$down")
	done
	sorted=$(printf '%s\n' "${ds[@]}" | sort -n | tr '\n' ' ')
	diag "cutover downtime under load, $style: ${sorted}ms (median $(printf '%s\n' "${ds[@]}" | sort -n | sed -n "$(((REPS + 1) / 2))p") ms)"
done
pass "cutover downtime measured in both styles"
