#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A secure erase, mirrored, reaches the sink as write-zeroes: it was
# posted on the ring as a discard, and a sink that does not zero what it
# discards kept the data the guest had erased from the source.  Over a
# disk that supports secure erase (tests/vm/kmod/sxm_crypto_disk.ko: no
# device the VM has does):
#   - the ring: BLKSECDISCARD through a mirroring sxm device, its helper
#     tests/vm/ring_ops_tool printing what it is sent: write-zeroes of the
#     whole range, no discard;
#   - end to end: a mirror-style job reaches Mirrored, a secure erase goes
#     through the sxm device, and the sink (nbdkit's log filter) is sent
#     an NBD write-zeroes of that range and no trim.  (sxm-ctl's pump
#     zeroes a discard too: this half alone would pass with the ring's op
#     wrong.)
# Debian's kernel has no module for such a disk: this test runs on the
# debug kernel only (make check's debug pass).
# vm: debug-only
# vm-timeout: 180
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/warm.sh"

require_sxm
require_sxm_ctl
require_cmd dmsetup nbdkit blkdiscard

if ! modprobe sxm_crypto_disk size_mb=16 2>/dev/null; then
	case $(uname -r) in
	*-sxm-debug*) bail "no sxm_crypto_disk.ko in the debug kernel's image (scripts/debug-kernel.sh module builds it)" ;;
	*) skip_all "no sxm_crypto_disk.ko (built for the debug kernel only: scripts/vm-run.sh --kernel debug)" ;;
	esac
fi
cleanup_push rmmod sxm_crypto_disk

plan 10

# in_range FILE OP — bytes of [4 MiB, 5 MiB) in FILE's lines "OP OFFSET LEN".
in_range() {
	awk -v op="$2" -v lo=$((4 << 20)) -v hi=$((5 << 20)) '
		$1 == op { a = $2 > lo ? $2 : lo; b = $2 + $3 < hi ? $2 + $3 : hi
			   if (b > a) n += b - a }
		END { print n + 0 }' "$1"
}

# ------------------------------------------------------------- the ring ----
ops=/tmp/ring66.ops
dm_create se66r "0 $((16 << 11)) sxm /dev/sxmcrypt0 8 1 track"
spawn tool_pid bash -c "exec '$(dirname "$0")/ring_ops_tool' se66r 120 > $ops"
check "the ring's helper is attached and mirroring" \
	wait_until 20 grep -qx ready $ops
check "secure erase of 1 MiB at 4 MiB through the mirroring sxm device" \
	blkdiscard --secure -o $((4 << 20)) -l $((1 << 20)) /dev/mapper/se66r
check_eq "the ring has it as write-zeroes, all of it" $((1 << 20)) \
	"$(in_range $ops write_zeroes)"
check_eq "and no discard" 0 "$(in_range $ops discard)"
diag "$(sed -n '2,9p' $ops)"
kill "$tool_pid"
wait "$tool_pid" 2>/dev/null || true
dmsetup remove se66r

# ---------------------------------------------------------- end to end ----
slog=/tmp/sink66.log
sink_start --filter=log memory size=16M logfile=$slog
# Removed after the daemon stops (cleanups run last first).
cleanup_push _tc_dm_remove se66
daemon_start

check "a mirror-style job over the disk reaches Mirrored" \
	sxm-ctl submit --source /dev/sxmcrypt0 --sink "$SINK_URI" --kind sxm \
	--name se66 --wait
check_eq "the kernel mirrors" "mirror on" \
	"$(dmsetup status se66 | awk '{ print $4, $11 }')"
check "secure erase of 1 MiB at 4 MiB through the sxm device" \
	blkdiscard --secure -o $((4 << 20)) -l $((1 << 20)) /dev/mapper/se66
# sent OP — bytes of [4 MiB, 5 MiB) the sink was sent as OP (Zero, Trim).
sent() {
	grep -oE " $1 id=[0-9]+ offset=0x[0-9a-f]+ count=0x[0-9a-f]+" $slog |
		sed 's/.*offset=0x\([0-9a-f]*\) count=0x\([0-9a-f]*\)/\1 \2/' |
		while read -r o c; do
			o=$((16#$o)) c=$((16#$c))
			lo=$((o > (4 << 20) ? o : (4 << 20)))
			hi=$((o + c < (5 << 20) ? o + c : (5 << 20)))
			[ $hi -le $lo ] || echo $((hi - lo))
		done | awk '{ n += $1 } END { print n + 0 }'
}
zeroed() { [ "$(sent Zero)" = $((1 << 20)) ]; }
check "the sink is sent write-zeroes of all that range" wait_until 10 zeroed
check_eq "and no trim of it" 0 "$(sent Trim)"
check "cancel --wait" sxm-ctl cancel se66 --wait
