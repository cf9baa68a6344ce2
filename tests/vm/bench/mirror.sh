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
# Sizes: 128 MiB devices, 7 rounds of 4 s fio runs, 3 cutovers a style.
# vm-timeout: 1500
. "$(dirname "$0")/../../lib/test_common.sh"
. "$(dirname "$0")/../../lib/warm.sh"
. "$(dirname "$0")/lib.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit qemu-nbd
require_module nbd dm-mirror

MIB=128 SECS=4 ROUNDS=7 REPS=3
SECT=$((MIB * 2048))
mkdir -p /var/lock		# qemu-nbd -c keeps a socket there
# A device of its own per configuration, all alike: brd ramdisks, so that
# what differs between them is the layer above and nothing below (a loop
# device's worker thread alone moved the figures by a third).
grep -q '^brd ' /proc/modules && bail "brd is already loaded"
modprobe brd rd_nr=6 rd_size=$((MIB * 1024)) max_part=0 || bail "modprobe brd"
cleanup_push _tc_rmmod brd
s_lin=/dev/ram0 s_pass=/dev/ram1 s_track=/dev/ram2 s_mirror=/dev/ram3 s_raid=/dev/ram4
s_lin2=/dev/ram5
# Written once, so that no run pays for allocating the ramdisks' pages.
for d in "$s_lin" "$s_pass" "$s_track" "$s_mirror" "$s_raid" "$s_lin2"; do
	dd if=/dev/zero of="$d" bs=1M count=$MIB oflag=direct status=none
done
sink_start memory size=$((MIB * 3))M
daemon_start

# The configurations: name, then device.
dm_create b-lin "0 $SECT linear $s_lin 0"
# The same again on a device of its own: its ratio to the first is the
# noise floor of this run, what no ratio here can be read closer than.
dm_create b-lin2 "0 $SECT linear $s_lin2 0"
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

names=("dm-linear" "sxm passthrough" "sxm tracking" "sxm mirroring" "dm-raid1 + kernel nbd" "dm-linear, again")
devs=(/dev/mapper/b-lin /dev/mapper/b-pass /dev/mapper/b-track /dev/mapper/bm /dev/mapper/b-raid1 /dev/mapper/b-lin2)
res=/tmp/bench-res
: > $res
# Each round runs every configuration once, starting one further along
# each time, so that no configuration always follows the same one.  The
# ratios are taken within a round (against dm-linear of the same round)
# and their median reported: the machine's load moves whole rounds.
n=${#devs[@]}
for round in $(seq $ROUNDS); do
	for k in $(seq 0 $((n - 1))); do
		i=$(((k + round) % n))
		echo "$round $i r4 $(fio_w "${devs[$i]}" --rw=randwrite --bs=4k --iodepth=16)" >> $res
		echo "$round $i s1 $(fio_w "${devs[$i]}" --rw=write --bs=1M --iodepth=4)" >> $res
	done
done
diag "medians of $ROUNDS rounds of $SECS s; $MIB MiB brd devices; sink nbdkit memory over the veth"
diag "$(printf '%-24s %9s %10s %10s' "" "4k IOPS" "4k p99 us" "1M MiB/s")"
for i in "${!devs[@]}"; do
	diag "$(printf '%-24s %9s %10s %10s' "${names[$i]}" "$(col $i r4 4)" \
		"$(col $i r4 5)" "$(col $i s1 6)")"
done
diag "ratios, each the median of the rounds' own ratios:"
for i in 5 1 2 3 4; do
	diag "$(printf '  %-22s / dm-linear: IOPS %s  p99 %s  MiB/s %s' "${names[$i]}" \
		"$(ratio $i 0 r4 4)" "$(ratio $i 0 r4 5)" "$(ratio $i 0 s1 6)")"
done
diag "$(printf '  %-22s / dm-raid1 + kernel nbd: IOPS %s  p99 %s  MiB/s %s' "${names[3]}" \
	"$(ratio 3 4 r4 4)" "$(ratio 3 4 r4 5)" "$(ratio 3 4 s1 6)")"
diag "the pump: $(sxm-ctl show bm | sed -n 's/^Sink latency *//p'); the mirror went down $(jf bm degradations) times"
pass "write path measured in ${#devs[@]} configurations"
sxm-ctl cancel bm --wait > /dev/null 2>&1
sxm-ctl forget bm > /dev/null
dmsetup remove b-raid1
qemu-nbd -d /dev/nbd0 > /dev/null
dmsetup remove b-lin
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
	pred=$(jf $name predicted_downtime_seconds)
	sxm-ctl cutover $name --wait > /dev/null 2>&1
	down=$(jf $name downtime_ms)
	preds+=("$(awk -v p="$pred" 'BEGIN { printf "%.0f", p * 1000 }')")
	dmsetup resume $name
	kill -INT "$fpid" 2>/dev/null
	wait "$fpid" 2>/dev/null || true
	dmsetup remove --retry $name
	sxm-ctl forget $name > /dev/null
}

for style in warm sxm; do
	ds=() preds=()
	for i in $(seq "$REPS"); do
		cutover_once $style
		ds+=("$down")
	done
	sorted=$(printf '%s\n' "${ds[@]}" | sort -n | tr '\n' ' ')
	diag "cutover downtime under load, $style: ${sorted}ms (median $(printf '%s\n' "${ds[@]}" | sort -n | sed -n "$(((REPS + 1) / 2))p") ms)"
	diag "  predicted by show just before, in the same order of runs: ${preds[*]} ms; measured: ${ds[*]} ms"
	# Each run's measured / predicted, the median of them: how far off
	# show's prediction is (x1.00 is exact, above is an underestimate).
	diag "  measured / predicted: median $(for i in "${!ds[@]}"; do
		awk -v d="${ds[$i]}" -v p="${preds[$i]}" \
			'BEGIN { if (p > 0) printf "%.4f\n", d / p }'
	done | median | awk '{ printf "x%.2f", $1 }') over the runs with a prediction"
done
pass "cutover downtime measured in both styles"
