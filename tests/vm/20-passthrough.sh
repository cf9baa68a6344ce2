#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Passthrough integrity: fio --verify=crc32c through the sxm device for every
# I/O type (random and sequential, 512 B and 4 KiB, fsync, FUA), discard and
# write-zeroes read back as zeroes, the device keeps its source's queue
# limits, and bytes written through the device are on the source and bytes
# on the source read through it — in passthrough and in track mode.
# vm-timeout: 300
# vm: debug
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio blkdiscard
require_sxm

scratch_dev src 32
n=$((32 << 11))

# On the debug kernel each fio job does a quarter of the I/O: its
# sanitizers check every kind of I/O through the target, which a quarter
# shows as well; the volume is the Debian kernel's pass's to test.
q=1
case $(uname -r) in *-sxm-debug*) q=4 ;; esac
sz() { echo $((($1 << 20) / q)); }

for mode in passthrough track; do
	dm_create tio "0 $n sxm $src 128 1 $mode"
	d=/dev/mapper/tio
	fio_verify "$mode: random 4 KiB writes" $d --size=$(sz 4)
	fio_verify "$mode: random 512 B writes" $d --size=$(sz 1) --bs=512 --offset=16M
	fio_verify "$mode: sequential 1 MiB writes" $d --rw=write --bs=1M --size=$(sz 8)
	fio_verify "$mode: random 4 KiB writes with fsync" $d --size=$(sz 2) \
		--fsync=8 --offset=24M
	fio_verify "$mode: FUA writes (O_DSYNC)" $d --size=$(sz 1) --sync=dsync \
		--offset=28M --ioengine=psync --iodepth=1
	fio_verify "$mode: mixed random read/write, 16 jobs deep" $d \
		--rw=randrw --size=$(sz 4) --numjobs=2 --offset_increment=8M

	# Discard and write-zeroes reach the source and read back as zeroes.
	check "$mode: discard 4 MiB" blkdiscard -o $((4 << 20)) -l $((4 << 20)) $d
	check "$mode: discarded range reads zero" \
		cmp -n $((4 << 20)) <(dd if=$d bs=1M skip=4 count=4 iflag=direct status=none) /dev/zero
	check "$mode: write-zeroes 1 MiB + 512 B" \
		blkdiscard -z -o $((12 << 20)) -l $(((1 << 20) + 512)) $d
	check "$mode: zeroed range reads zero" \
		cmp -n $(((1 << 20) + 512)) <(dd if=$d bs=512 skip=$((12 << 11)) count=2049 iflag=direct status=none) /dev/zero

	# Both ways through the device, against bytes known independently
	# (the device reads its source, so comparing the two proves nothing).
	dd if=/dev/urandom of=/tmp/pat20a bs=1M count=2 status=none
	dd if=/tmp/pat20a of=$d bs=1M seek=30 oflag=direct conv=fsync status=none
	check "$mode: written through the device, the bytes are on the source" \
		cmp /tmp/pat20a <(dd if="$src" bs=1M skip=30 count=2 iflag=direct status=none)
	dd if=/dev/urandom of=/tmp/pat20b bs=1M count=1 status=none
	dd if=/tmp/pat20b of="$src" bs=1M seek=20 oflag=direct conv=fsync status=none
	check "$mode: written to the source, the bytes read through the device" \
		cmp /tmp/pat20b <(dd if=$d bs=1M skip=20 count=1 iflag=direct status=none)
	dmsetup remove tio
done

# The stacked device keeps the source's limits.
dm_create tlim "0 $n sxm $src 128"
dm=$(dmsetup info -c -o blkdevname --noheadings tlim)
lo=$(basename "$src")
for q in logical_block_size physical_block_size discard_granularity \
	discard_max_bytes write_zeroes_max_bytes max_sectors_kb; do
	check_eq "queue/$q as the source's" "$(cat /sys/block/$lo/queue/$q)" \
		"$(cat /sys/block/$dm/queue/$q)"
done
