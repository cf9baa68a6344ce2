#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Sizes and offsets the small test devices never reach, and the guest's
# discards and write-zeroes carried to the sink, end to end through the
# daemon:
#   - a 4160 MiB volume (offsets past 4 GiB, so past 32 bits of bytes and
#     of 512-byte sectors' low word) with 1 MiB regions, mirror style,
#     under fio --verify writers below and above 4 GiB; while Mirrored a
#     discard and a write-zeroes past 4 GiB each reach the sink as NBD
#     write-zeroes requests (nbdkit's log filter) at those offsets, never
#     as data (a discarded range reads as zeroes on the source, so it must
#     on the sink: the pump sends write-zeroes, which may trim), and
#     nothing is left dirty; the cutover leaves the sink
#     byte-identical to the frozen source over all 4160 MiB (compared by
#     sparse_cmp_tool: every range with data in either backing file; the
#     big jobs are --no-verify, so that their cutovers do not read 4 GiB
#     back: the verify is 68's and 71's);
#   - the same data migrated again by a warm job with 128 KiB regions
#     (a full sync of 4 GiB; a sync sends the sink what fio wrote past
#     4 GiB and nothing below it; cutover, byte-identical);
#   - 16 MiB volumes with 4 KiB regions (the smallest), one a warm and one
#     a mirror-style job, each under fio --verify, to a byte-identical sink.
# vm-timeout: 900
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup fio nbdkit cmp blkdiscard
tool=$(dirname "$0")/sparse_cmp_tool
[ -x "$tool" ] || bail "tests/vm/sparse_cmp_tool is not built (make -C tests/vm)"

BIG=4160			# MiB
GIB4=$((4096 << 20))
# Data in the first 32 MiB and in 64 MiB past 4 GiB; the rest reads zeros
# (sparse files on the scratch pool, so 4 GiB costs no memory).
scratch_dev big $BIG
dd if=/dev/urandom of="$big" bs=1M count=32 oflag=direct status=none
dd if=/dev/urandom of="$big" bs=1M seek=4096 count=64 oflag=direct status=none
lv_create lv73 "$big" $BIG
bigfile=$(cat /sys/block/"${big#/dev/}"/loop/backing_file)
img=/tmp/sink73.img slog=/tmp/sink73.log
truncate -s ${BIG}M $img
cleanup_push rm -f $img
sink_start --filter=log file file=$img logfile=$slog
daemon_start

# reqs KIND FROM_LINE — "offset count" (decimal) of the sink's KIND
# requests (Trim, Zero, Write) in $slog after line FROM_LINE; fails if
# the log has no request at all after it.
reqs() {
	tail -n +$(($2 + 1)) $slog > /tmp/sink73.part
	grep -qE ' (Write|Zero|Trim|Flush|Read) id=' /tmp/sink73.part || return 1
	grep -oE " $1 id=[0-9]+ offset=0x[0-9a-f]+ count=0x[0-9a-f]+" /tmp/sink73.part |
		sed 's/.*offset=0x\([0-9a-f]*\) count=0x\([0-9a-f]*\)/\1 \2/' |
		while read -r o c; do echo $((16#$o)) $((16#$c)); done
}
# sent KIND FROM_LINE OFF LEN — KIND requests after FROM_LINE cover
# [OFF, OFF+LEN) (one, or several end to end); on failure, those that
# overlap it.
sent() {
	local r
	r=$(reqs "$1" "$2") || return 1
	sort -n <<< "$r" | awk -v o="$3" -v l="$4" '
		$1 < o + l && o < $1 + $2 { print "overlapping:", $1, $2 }
		$1 <= c && $1 + $2 > c { c = $1 + $2 }
		BEGIN { c = o } END { exit !(c >= o + l) }'
}
# sent_none KIND FROM_LINE OFF LEN — requests were logged after FROM_LINE
# and no KIND request among them overlaps [OFF, OFF+LEN).
sent_none() {
	local r
	r=$(reqs "$1" "$2") || return 1
	awk -v o="$3" -v l="$4" '$1 < o + l && o < $1 + $2 { f = 1 } END { exit f }' <<< "$r"
}
# sent_some KIND FROM_LINE OFF LEN — some KIND request overlaps it.
sent_some() { ! sent_none "$@" && reqs "$1" "$2" > /dev/null; }
# zeros_at F OFF LEN — bytes [OFF, OFF+LEN) of F read as zeros (MiB units).
zeros_at() {
	dd if="$1" bs=1M skip=$(($2 >> 20)) count=$(($3 >> 20)) status=none |
		cmp -s -n "$3" - /dev/zero
}

# ------------------------------------- 4160 MiB, 1 MiB regions, mirror ----

flo=/tmp/fio73lo.log fhi=/tmp/fio73hi.log
fio_load flo_pid /dev/mapper/lv73 $flo --size=16M --rate_iops=60
fio_load fhi_pid /dev/mapper/lv73 $fhi --offset=$((4096 + 32))M --size=16M \
	--rate_iops=60
check "submit --kind sxm --region-size 1M of a 4160 MiB volume" \
	sxm-ctl submit --source /dev/mapper/lv73 --sink "$SINK_URI" --kind sxm \
	--region-size 1M --no-verify --name m73 --wait
check_eq "Mirrored, 1 MiB regions, 4160 MiB" "Mirrored 1048576 $((BIG << 20))" \
	"$(jf m73 phase) $(jf m73 region_size) $(jf m73 size)"

# A discard and a write-zeroes past 4 GiB, each of 1 MiB on a region
# boundary, over data the bulk copy put on the sink.
d_off=$((GIB4 + (8 << 20))) z_off=$((GIB4 + (12 << 20))) len=$((1 << 20))
mark=$(wc -l < $slog)
check "a discard of 1 MiB at 4 GiB + 8 MiB" blkdiscard -o $d_off -l $len /dev/mapper/lv73
check "a write-zeroes of 1 MiB at 4 GiB + 12 MiB" blkdiscard -z -o $z_off -l $len /dev/mapper/lv73
check "the sink was sent a write-zeroes covering the discard" \
	sent Zero $mark $d_off $len
check "the sink was sent a write-zeroes covering the write-zeroes" \
	sent Zero $mark $z_off $len
not_as_data() { sent_none Write $mark $d_off $len && sent_none Write $mark $z_off $len; }
check "neither went to the sink as data" not_as_data
check "the sink reads zeros where the guest wrote zeros" zeros_at $img $z_off $len
check "the mirror stayed on: nothing dirty" \
	test "$(dmsetup status lv73 | awk '{ print $11, $7 }')" = "on 0"

check "cutover --wait" sxm-ctl cutover m73 --wait
check_eq "Completed" Completed "$(jf m73 phase)"
check "the sink is byte-identical to the frozen source over all 4160 MiB" \
	"$tool" "$bigfile" $img
dmsetup resume lv73
fio_stop flo_pid $flo "fio --verify below 4 GiB saw no error"
fio_stop fhi_pid $fhi "fio --verify past 4 GiB saw no error"
sxm-ctl forget m73 > /dev/null

# ------------------------------------ 4160 MiB, 128 KiB regions, warm ----

# The same data migrated again, through a second volume over it (the
# first one, resumed after its cutover, is left idle).
lv_create lv73b "$big" $BIG
img2=/tmp/sink73b.img
truncate -s ${BIG}M $img2
cleanup_push rm -f $img2
slog=/tmp/sink73b.log
sink_start --filter=log file file=$img2 logfile=$slog
fio_load fhi_pid /dev/mapper/lv73b $fhi --offset=$((4096 + 40))M --size=16M \
	--rate_iops=60
check "submit a warm job with --region-size 128k" sxm-ctl submit \
	--source /dev/mapper/lv73b --sink "$SINK_URI" --region-size 128k \
	--no-verify --name w73 --wait
check_eq "Ready, 128 KiB regions" "Ready 131072" \
	"$(jf w73 phase) $(jf w73 region_size)"
mark=$(wc -l < $slog)
check "a sync of what fio wrote past 4 GiB" sxm-ctl sync w73 --wait
check "it sent the sink writes where fio writes, past 4 GiB" \
	sent_some Write $mark $((GIB4 + (40 << 20))) $((16 << 20))
check "and none below, where nothing was written" \
	sent_none Write $mark 0 $GIB4
check "cutover --wait" sxm-ctl cutover w73 --wait
check_eq "Completed" Completed "$(jf w73 phase)"
check "the sink is byte-identical to the frozen source over all 4160 MiB" \
	"$tool" "$bigfile" $img2
dmsetup resume lv73b
fio_stop fhi_pid $fhi "fio --verify past 4 GiB (warm) saw no error"

# ----------------------------------------------- 4 KiB regions, both ----

for kind in warm sxm; do
	scratch_dev d 16
	rand_fill "$d" 16
	lv_create lv73$kind "$d" 16
	img3=/tmp/sink73-$kind.img
	truncate -s 16M $img3
	cleanup_push rm -f $img3
	sink_start file file=$img3
	log=/tmp/fio73-$kind.log
	fio_load fpid /dev/mapper/lv73$kind $log --size=8M --rate_iops=100
	check "$kind: submit --region-size 4k" sxm-ctl submit \
		--source /dev/mapper/lv73$kind --sink "$SINK_URI" --kind $kind \
		--region-size 4k --name j73$kind --wait
	check_eq "$kind: 4 KiB regions" 4096 "$(jf j73$kind region_size)"
	[ $kind = sxm ] || check "$kind: a sync" sxm-ctl sync j73$kind --wait
	check "$kind: cutover --wait" sxm-ctl cutover j73$kind --wait
	check_eq "$kind: Completed" Completed "$(jf j73$kind phase)"
	check "$kind: the sink is byte-identical to the frozen source" \
		cmp "/dev/mapper/lv73$kind-sxm-orig" $img3
	dmsetup resume lv73$kind
	fio_stop fpid $log "$kind: fio --verify saw no error"
done
