#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench-vm.sh — the guest's write path through dm-linear, sxm
# (passthrough, tracking, mirroring to nbdkit over the veth) and dm-raid1
# with a kernel NBD leg, and the cutover's downtime in the warm and the
# mirror style under the same load (tests/vm/bench/mirror.sh); what the
# online verify costs the guest's writes (tests/vm/bench/verify.sh); what
# the persistent write-intent map costs them (tests/vm/bench/metadata.sh); in
# one boot of the test VM, their figures printed with their ratios.  About
# a quarter of an hour under TCG; the sizes and counts are set at the top
# of each script.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
# A results folder of its own: build/vm/last may be another run's by the end.
res=$(mktemp -d build/bench-vm.XXXXXX) || exit 1
trap 'rm -rf "$res"' EXIT
scripts/vm-run.sh -q --no-summary --results "$res" vm/bench/mirror.sh \
	vm/bench/verify.sh vm/bench/metadata.sh > /dev/null 2>&1
rc=0
for b in mirror verify metadata; do
	tap=$res/vm_bench_$b.sh.tap
	[ -f "$tap" ] || { echo "bench-vm: no output from $b (see the newest build/vm/run-*/)" >&2; rc=1; continue; }
	echo "--- vm/bench/$b.sh"
	sed -n 's/^# \{0,1\}//p' "$tap"
	! grep -q '^not ok' "$tap" || rc=1
done
exit $rc
