#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Power cuts the persistent write-intent map survives, for real: qemu
# killed (scripts/vm-run.sh, "power-cuts") while writes go through an sxm
# target with metadata:, then booted again on the same disks.  Disks:
# /dev/vda the source, /dev/vdb the metadata device, /dev/vdc a reference
# (what a helper copied: equal to the source when the map was last
# acknowledged), /dev/vdd a state block (the saved track id, the map found
# at load, the window this boot writes in).  Boot 1 fills the source with
# random data, binds a blank metadata device, copies the source to the
# reference and acknowledges: the map is empty.  Every later boot loads the
# same table and checks: the status says "active unclean", the track id is
# the saved one, every 64 KiB region where the source and the reference
# differ is in the dirty map (the write-intent guarantee), and the map holds
# nothing but the regions written since the last sync (a quarter of the
# device) and those on the metadata device when the writes started (the
# cleaner may not have cleared them by the cut): the re-copy is bounded.
# It then re-copies the dirty regions, finds source == reference, and
# acknowledges (sxm-ctl harvest).  The moments of the cuts: boot 1 during
# random writes of 4 KiB..1 MiB, boot 2 right after the acknowledgement
# while the cleaner (meta_clean_ms 200) clears bits, boot 3 during a burst
# of 4 KiB writes each in a new region (metadata writes in flight), boot 4
# during writes and discards, boot 5 during writes while the cleaner
# clears; each a random 0..2000 ms after the writes reached the metadata
# device.  The last boot verifies, re-copies, and sees the map cleared and
# a clean shutdown.
# vm-timeout: 240
# vm: power-cuts 5
# vm: disks source:64,meta:1,ref:64,state:1
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio
require_sxm
require_sxm_ctl
here=$(dirname "$0")
tool=$here/meta_tool rdiff=$here/region_diff_tool
[ -x "$tool" ] || bail "tests/vm/meta_tool is not built (make -C tests/vm)"
[ -x "$rdiff" ] || bail "tests/vm/region_diff_tool is not built (make -C tests/vm)"
boot=${SXM_POWER_BOOT:?run by scripts/vm-run.sh: power-cuts} boots=${SXM_POWER_BOOTS:?}

src=/dev/vda meta=/dev/vdb ref=/dev/vdc state=/dev/vdd
for _ in $(seq 100); do [ -b $state ] && break; sleep 0.1; done
for d in $src $meta $ref $state; do [ -b "$d" ] || bail "no disk $d"; done
R=65536 n=$((64 << 11)) win_regions=256
table="0 $n sxm $src 128 3 track metadata:$meta source_id:crash-test"

par=/sys/module/dm_sxm/parameters
cleanup_push eval "echo $(cat $par/meta_clean_ms) > $par/meta_clean_ms"
echo 200 > $par/meta_clean_ms

# Status fields (after "start len sxm"): see the admin guide.
st() { dmsetup status sxmc | cut -d' ' -f"$1"; }
# The dirty map's regions, one a line, sorted.
dirty_regions() {
	sxm-ctl harvest sxmc --peek | { grep -v '^#' || true; } |
		awk -v R=$R 'NF >= 2 { for (r = int($1 / R); r * R < $1 + $2; r++) print r }' | sort -u
}
save_state() {
	printf '%s\n' "$@" | dd of=$state bs=64k count=1 conv=sync,fsync oflag=direct iflag=fullblock status=none
}
# minus A B: the lines of A that are not in B.
minus() { awk 'NR == FNR { if ($0 != "") b[$0]; next } $0 != "" && !($0 in b)' <(echo "$2") <(echo "$1"); }
load_state() { dd if=$state bs=64k count=1 iflag=direct status=none | tr -d '\0'; }
B="boot $boot/$boots"

if [ "$boot" = 1 ]; then
	dd if=/dev/zero of=$src bs=1M count=64 oflag=direct conv=fsync status=none
	dd if=/dev/zero of=$ref bs=1M count=64 oflag=direct conv=fsync status=none
	dd if=/dev/zero of=$meta bs=64k count=16 oflag=direct conv=fsync status=none
	# Random data to overwrite (a write of zeros over zeros would change
	# nothing), written before the target: the map starts empty.
	fio --name=fill --filename=$src --rw=write --bs=1M --direct=1 \
		--refill_buffers --output=/dev/null
	dm_create sxmc "$table"
	check_eq "$B: a blank metadata device is bound" "active new" "$(st 19) $(st 23)"
	dd if=/dev/mapper/sxmc of=$ref bs=1M iflag=direct oflag=direct conv=fsync status=none
	check "$B: harvest and acknowledge" sxm-ctl harvest sxmc
	check_eq "$B: reference == source" "" "$("$rdiff" diff $src $ref $R)"
	check_eq "$B: nothing on the metadata device" "0 " "$(st 20) $("$tool" bits $meta)"
else
	state_text=$(load_state)
	get() { sed -n "s/^$1 //p" <<< "$state_text"; }
	saved=$(get track) prev=$(get left) lo=$(get win_lo) hi=$(get win_hi) moment=$(get moment)
	diag "$B: after a cut during: $moment"
	dm_create sxmc "$table"
	check_eq "$B: the map is active, loaded unclean" "active unclean" "$(st 19) $(st 23)"
	check_eq "$B: the track survives the cut" "$saved" "$("$tool" track sxmc)"
	dirty=$(dirty_regions)
	differ=$("$rdiff" diff $src $ref $R)
	nd=$(grep -c . <<< "$dirty" || true) nf=$(grep -c . <<< "$differ" || true)
	missed=$(minus "$differ" "$dirty")
	check_eq "$B: every region that differs from the reference is dirty ($nf differ)" \
		"" "$(tr '\n' ' ' <<< "$missed" | sed 's/ *$//')"
	allowed=$( { tr ' ' '\n' <<< "$prev"; seq "$lo" "$hi"; } | grep . | sort -u)
	extra=$(minus "$dirty" "$allowed")
	check_eq "$B: dirty only where written since the last sync or still on the metadata device then" \
		"" "$(tr '\n' ' ' <<< "$extra" | sed 's/ *$//' | cut -c1-200)"
	diag "$B: $nd regions dirty ($(st 20) bits on the metadata device), $nf differ: re-copy $((nd * 64)) KiB of 65536 KiB ($((nd * 100 / 1024))%)"
	echo "$dirty" | grep . | "$rdiff" copy $src $ref $R
	check_eq "$B: after re-copying the dirty regions, reference == source" "" \
		"$("$rdiff" diff $src $ref $R | head -n 20 | tr '\n' ' ')"
	check "$B: harvest and acknowledge" sxm-ctl harvest sxmc
fi
track=$("$tool" track sxmc)

if [ "$boot" = "$boots" ]; then
	for _ in $(seq 100); do [ "$(st 20)" = 0 ] && break; sleep 0.1; done
	check_eq "$B: the cleaner clears the acknowledged map" 0 "$(st 20)"
	dmsetup remove sxmc
	dm_create sxmc "$table"
	check_eq "$B: loaded again: clean, the same track" "clean $track" "$(st 23) $("$tool" track sxmc)"
	check_eq "$B: nothing dirty" "" "$(dirty_regions)"
	exit 0
fi

# This boot's writes: a window of a quarter of the device, another each boot.
lo=$(( ((boot - 1) % 4) * win_regions )) hi=$(( ((boot - 1) % 4 + 1) * win_regions - 1 ))
off=$((lo * R)) size=$((win_regions * R))
case $boot in
1) moment="random writes of 4 KiB..1 MiB" ;;
2) moment="the cleaner clearing the acknowledged map, light writes" ;;
3) moment="a burst of 4 KiB writes, each in a new region" ;;
4) moment="random writes and discards" ;;
*) moment="random writes while the cleaner clears" ;;
esac
# What the metadata device holds as the writes start: the cleaner may not
# have cleared it yet when the power goes.
# (A map block read torn while the cleaner writes it: "bad", all of it.)
left=$("$tool" bits $meta | awk -F- '/^bad/ { for (r = 0; r < 1024; r++) printf "%d ", r; exit }
	NF == 2 { for (r = $1; r <= $2; r++) printf "%d ", r }')
save_state "track $track" "left $left" "win_lo $lo" "win_hi $hi" "moment $moment"
pass "$B: state saved (track $track, writes in regions $lo-$hi, $(wc -w <<< "$left") regions on the metadata device)"

# wait_meta_writes K: until the metadata device has had K more writes
# than at the start of this boot's writes (fio has begun), 60 s at most.
wait_meta_writes() {
	for _ in $(seq 600); do
		[ "$(st 21)" -ge $((w0 + $1)) ] && return 0
		sleep 0.1
	done
	bail "$B: fio's writes did not reach the metadata device within 60 s"
}
w0=$(st 21) fiop=""
f=(--filename=/dev/mapper/sxmc --direct=1 --ioengine="$FIO_ENGINE" "--offset=$off" "--size=$size"
	--time_based --runtime=600 --refill_buffers --output=/dev/null --group_reporting)
case $boot in
1)
	spawn fiop fio --name=w "${f[@]}" --rw=randwrite --bsrange=4k-1m --numjobs=3 --iodepth=4
	wait_meta_writes 4; sleep 2 ;;
2)
	spawn fiop fio --name=w "${f[@]}" --rw=randwrite --bs=4k --numjobs=1 --iodepth=1 --rate_iops=20
	wait_meta_writes 1 ;;
3)
	# Each write in a region of its own (4 KiB, then 60 KiB skipped): 40
	# new regions a second, each waiting for its bit on the metadata device.
	spawn fiop fio --name=w "${f[@]}" --rw=write:60k --bs=4k --numjobs=4 --size=4m \
		--offset_increment=4m --iodepth=4 --rate_iops=10
	wait_meta_writes 16 ;;
4)
	spawn fiop fio "${f[@]}" --name=w --rw=randwrite --bsrange=4k-256k --numjobs=2 --iodepth=4 \
		--name=t --rw=randtrim --bsrange=4k-1m --numjobs=1 --iodepth=2
	wait_meta_writes 4; sleep 1 ;;
*)
	spawn fiop fio --name=w "${f[@]}" --rw=randwrite --bsrange=4k-64k --numjobs=2 --iodepth=8
	wait_meta_writes 4 ;;
esac
kill -0 "$fiop" 2>/dev/null || bail "$B: fio ended before the cut"
power_cut
