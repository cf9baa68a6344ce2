#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Inline encryption is not passed through.  With DM_TARGET_PASSES_CRYPTO an
# sxm device over a disk with inline encryption hardware had a crypto
# profile, so a filesystem mounted with inline_crypt sent it bios with a
# key: the source stored ciphertext while a mirrored write's copy for the
# sink was the plaintext.  Without the flag dm gives the device no profile,
# and blk-crypto encrypts above it (or refuses): what reaches the target is
# what is stored.
#   - the disk (tests/vm/kmod/sxm_crypto_disk.ko) declares AES-256-XTS;
#   - dm-linear over it passes that on (the check can see a profile);
#   - an sxm device over it, in every mode, has none, and neither has a
#     table where sxm sits beside linear.
# Debian's kernel has no inline encryption (CONFIG_BLK_INLINE_ENCRYPTION):
# this test runs on the debug kernel only (make check's debug pass).
# vm: debug-only
# vm-timeout: 120
. "$(dirname "$0")/../lib/test_common.sh"

require_sxm
require_cmd dmsetup

if ! modprobe sxm_crypto_disk size_mb=16 2>/dev/null; then
	case $(uname -r) in
	*-sxm-debug*) bail "no sxm_crypto_disk.ko in the debug kernel's image (scripts/debug-kernel.sh module builds it)" ;;
	*) skip_all "no sxm_crypto_disk.ko (built for the debug kernel only: scripts/vm-run.sh --kernel debug)" ;;
	esac
fi
cleanup_push rmmod sxm_crypto_disk

plan 7
disk=/dev/sxmcrypt0
n=$((16 << 11))

# crypto_modes NAME — the inline encryption modes /sys/block/NAME declares.
crypto_modes() {
	local d=/sys/block/$1/queue/crypto/modes
	[ -d "$d" ] && ls "$d"
	return 0
}
# blk NAME — the dm device's block device name (dm-N).
blk() { dmsetup info -c -o blkdevname --noheadings "$1"; }

check_eq "the test disk declares inline encryption" AES-256-XTS \
	"$(crypto_modes sxmcrypt0)"

dm_create clin "0 $n linear $disk 0"
check_eq "dm-linear over it passes it on" AES-256-XTS "$(crypto_modes "$(blk clin)")"
dmsetup remove clin

for mode in passthrough track; do
	dm_create csxm "0 $n sxm $disk 8 1 $mode"
	check_eq "sxm over it ($mode): no inline encryption" "" \
		"$(crypto_modes "$(blk csxm)")"
	dmsetup remove csxm
done

dm_create cmix "0 2048 linear $disk 0
2048 $((n - 2048)) sxm $disk 8 1 track"
check_eq "sxm beside linear in one table: none" "" "$(crypto_modes "$(blk cmix)")"
dmsetup remove cmix

# A linear device with the profile cannot be reloaded with sxm under it:
# dm does not take a profile away from a live device.  The load fails and
# the device keeps its table.
dm_create clin "0 $n linear $disk 0"
if dmsetup load clin --table "0 $n sxm $disk 8 1 track" 2>/dev/null; then
	dmsetup clear clin
	fail "a reload that would take inline encryption away is refused"
else
	pass "a reload that would take inline encryption away is refused"
fi
check_eq "the device keeps its table" "0 $n linear" \
	"$(dmsetup table clin | awk '{ print $1, $2, $3 }')"
