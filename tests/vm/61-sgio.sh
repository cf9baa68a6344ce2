#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# SCSI pass-through cannot bypass tracking.  A WRITE(10) sent with SG_IO
# (sg_raw) through a tracking sxm device over a scsi_debug disk used to be
# forwarded to the disk, where it landed neither tracked nor mirrored.  The
# target now refuses pass-through ioctls, as dm-era and dm-clone do: the
# command fails, the disk is unchanged, and the same command sent to the
# disk itself works (so the refusal is the target's).
# vm: debug
# vm-timeout: 120
. "$(dirname "$0")/../lib/test_common.sh"

require_sxm
command -v sg_raw >/dev/null || bail "sg_raw is not in the VM image (sg3-utils)"
plan 6

# sd (the disk driver) first: no udev here loads it for the new disk.
modprobe sd_mod || bail "modprobe sd_mod failed: the VM image lacks it"
modprobe scsi_debug dev_size_mb=16 num_tgts=1 max_luns=1 ||
	bail "modprobe scsi_debug failed: the VM image lacks it"
cleanup_push modprobe -r scsi_debug
disk=""
for i in $(seq 100); do
	for b in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*/block/*; do
		[ -e "$b" ] && disk=/dev/${b##*/}
	done
	[ -n "$disk" ] && [ -b "$disk" ] && break
	sleep 0.1
done
[ -b "$disk" ] || bail "no scsi_debug disk appeared"
diag "scsi_debug disk: $disk"

sectors=$(blockdev --getsz "$disk")
dm_create sg-sxm "0 $sectors sxm $disk 8 1 track"
head -c 512 /dev/urandom > /tmp/sgio-block
cleanup_push rm -f /tmp/sgio-block /tmp/sgio-map

# WRITE(10) of one block at LBA 100, its data from /tmp/sgio-block.
write10() { sg_raw -s 512 -i /tmp/sgio-block "$1" 2a 00 00 00 00 64 00 00 01 00; }
block100() { dd if="$disk" bs=512 skip=100 count=1 iflag=direct status=none | sha256sum; }

zero=$(head -c 512 /dev/zero | sha256sum)
want=$(sha256sum < /tmp/sgio-block)

if out=$(write10 /dev/mapper/sg-sxm 2>&1); then
	fail "SG_IO WRITE(10) through the tracking sxm device is refused" "$out"
else
	pass "SG_IO WRITE(10) through the tracking sxm device is refused"
	diag "$out"
fi
check_eq "the disk is unchanged" "$zero" "$(block100)"

# The same with tracking off: still refused (no window when it starts).
dmsetup message sg-sxm 0 mode passthrough
if write10 /dev/mapper/sg-sxm > /dev/null 2>&1; then
	fail "SG_IO WRITE(10) through the passthrough sxm device is refused"
else
	pass "SG_IO WRITE(10) through the passthrough sxm device is refused"
fi
check_eq "the disk is still unchanged" "$zero" "$(block100)"

# The command itself is good: sent to the disk, it lands.
check "the same WRITE(10) sent to the disk itself works" write10 "$disk"
check_eq "and the disk has its data" "$want" "$(block100)"
