#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The harness works: /bin/sh finds the real tools, a scratch device has
# discard and write-zeroes, a dm-linear device over it passes fio's crc32c
# verification, a sink in its own network namespace receives 16 MiB with
# nbdcopy intact (sha256), table-driven negative checks work, teardown runs
# when a test aborts, and, once it is built, dm-sxm.ko loads and
# /dev/dm-sxm appears.
# vm-timeout: 180
. "$(dirname "$0")/../lib/test_common.sh"

require_cmd dmsetup fio nbdkit nbdcopy nbdinfo blkdiscard
require_module dm-mod

plan 14

# system() and popen() get the real tools, not busybox applets.
check "/bin/sh runs util-linux and iproute2, not busybox" \
	sh -c 'blkdiscard -V && ip -V | grep -q iproute2'

# Scratch device: 32 MiB, new and zero, with working discard and
# write-zeroes (also without unmap: fallocate --zero-range).
scratch_dev src 32
check_eq "scratch device is 32 MiB" $((32 << 20)) "$(blockdev --getsize64 "$src")"
check "scratch device discards" blkdiscard "$src"
check "scratch device writes zeroes (no unmap)" \
	fallocate --zero-range --offset 0 --length 1M "$src"

# dm-linear over the middle 16 MiB (sectors 16384..49151) of the scratch.
sectors=$((16 << 11))
dm_create hlin "0 $sectors linear $src 16384"
fio_verify "fio crc32c verify through dm-linear" /dev/mapper/hlin
lin_sha=$(sha256_of /dev/mapper/hlin)
check_eq "dm-linear maps onto sectors 16384.. of the scratch device" "$lin_sha" \
	"$(dd if="$src" bs=1M skip=8 count=16 iflag=direct status=none | sha256sum | cut -d' ' -f1)"

# The sink: nbdkit memory in the "sink" namespace, reached over veth.
sink_start memory size=16M
check "sink answers from its namespace only" \
	bash -c "ip netns exec $SINK_NS ip -br addr show $SINK_IF | grep -q $SINK_ADDR &&
		! ip -br addr | grep -q $SINK_ADDR"
check "nbdcopy 16 MiB to the sink" nbdcopy /dev/mapper/hlin "$SINK_URI"
check_eq "sink sha256 equals the device's" "$lin_sha" "$(sha256_of "$SINK_URI")"

# Table-driven negative checks: each bad table and the error it must give.
while IFS='|' read -r table want; do
	expect_fail "bad table '$table' is refused" "$want" \
		dmsetup create hbad --table "$table"
done <<EOF
0 $sectors linear /dev/nonexistent 0|Device lookup failed
0 $sectors linear $src|Invalid argument count
0 $sectors nosuchtarget $src 0|unknown target type
EOF

# Teardown runs even when a test aborts halfway.
out=$(bash -c '. "$1"; dm_create habort "0 8 zero"; false; echo unreachable' \
	_ "$(dirname "$0")/../lib/test_common.sh" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 1 ] && grep -q '^not ok .*aborted at line' <<< "$out" &&
	! dmsetup info habort >/dev/null 2>&1; then
	pass "an aborted test reports 'not ok' and is torn down"
else
	fail "an aborted test reports 'not ok' and is torn down" "rc=$rc: $out"
fi

# dm-sxm, once it is built.
if modinfo dm-sxm >/dev/null 2>&1; then
	require_sxm
	check "dm-sxm loads and /dev/dm-sxm appears" test -c /dev/dm-sxm
else
	skip "dm-sxm loads and /dev/dm-sxm appears" "kernel/dm-sxm.ko not built"
fi
