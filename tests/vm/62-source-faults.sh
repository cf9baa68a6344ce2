#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Source read errors (a dm "error" segment in the source's table: one 4 KiB
# block fails every read) during a copy, in both styles of job: the copy
# fails clearly, naming the source, the offset and the error; the job's
# saved cursor does not pass the block it could not read (nothing is
# counted as copied that is not); once the source reads again, retry
# finishes and the cutover leaves the sink equal to the source.  (Source write errors, mirrored and
# tracked, are in sxm_mirror_test.c: they reach the guest as through
# dm-linear, and the region is dirty.)
# The errors are the job's reads of the source, in userspace: Debian's
# kernel is enough (63-fail-request.sh has the source's faults on the
# debug kernel, in the target's paths too).
# vm: no-debug
# vm-timeout: 300
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup nbdkit

daemon_start

# bad_source NAME DEV — DEV with its block 1000 (4 KiB blocks: bytes
# 0x3e8000..0x3e8fff, sectors 8000..8007) failing with EIO.
bad_source() {
	local n
	n=$(blockdev --getsz "$2")
	dm_create "$1" "0 8000 linear $2 0
8000 8 error
8008 $((n - 8008)) linear $2 8008"
}

# good_source NAME DEV — the same device reading well again.
good_source() {
	dmsetup load "$1" --table "0 $(blockdev --getsz "$2") linear $2 0"
	dmsetup suspend "$1"
	dmsetup resume "$1"
}

for kind in warm sxm; do
	n=62$kind
	scratch_dev d 16
	rand_fill "$d" 16
	bad_source bad$n "$d"
	lv_create lv$n /dev/mapper/bad$n 16
	sink_start memory size=16M
	uri=$SINK_URI
	args=(--source /dev/mapper/lv$n --sink "$uri" --name $n --region-size 64k)
	[ $kind = sxm ] && args+=(--kind sxm)

	expect_rc "$kind: submit --wait fails on the source's read error" 1 \
		"Input/output error" sxm-ctl submit "${args[@]}" --wait
	check_eq "$kind: the job is Failed" Failed "$(jf $n phase)"
	reason=$(sxm-ctl show $n --json | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
	diag "reason: $reason"
	check "$kind: the reason names the source, the offset and the error" \
		grep -qE "source .*: read at 0x[0-9a-f]+ .*Input/output error" <<< "$reason"
	cursor=$(sed -n 's/^full_done //p' "$SXM_JOB_DIR/$n.job")
	check "$kind: the job does not count the unreadable block as copied (cursor $cursor)" \
		test "${cursor:-0}" -le $((1000 * 4096))
	if held_covers lv$n $((1000 * 4096)); then
		diag "$kind: the kernel holds the unreadable region"
	fi

	good_source bad$n "$d"
	check "$kind: the source reads again: retry --wait" sxm-ctl retry $n --wait
	check "$kind: cutover" sxm-ctl cutover $n --wait
	check_eq "$kind: the sink equals the source" \
		"$(sha256_of /dev/mapper/bad$n)" "$(sha256_of "$uri")"
	dmsetup resume lv$n
done
