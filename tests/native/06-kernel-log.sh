#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The VM harness fails a test for the kernel's complaints while it ran
# (tests/lib/kernel_log.sh, used by scripts/vm-run.sh): a console log with
# a report of each kind the debug kernel makes (KASAN, UBSAN, lockdep,
# kmemleak in dm-sxm, soft lockup, RCU stall, hung task, WARNING, list
# corruption) charges each to the test between its BEGIN and END markers,
# with the report's body; the debug kernel's ordinary boot lines (kasan,
# kmemleak and lockdep banners, kmemleak's own count, the RCU stall
# timeout) and the tests' own output fail nothing.
. "$(dirname "$0")/../lib/test_common.sh"
. "$(dirname "$0")/../lib/kernel_log.sh"

console=$(mktemp)
cleanup_push rm -f "$console"

# One fake test per report: BEGIN, the report, END.
reports=(
	"BUG: KASAN: slab-out-of-bounds in sxm_ring_push+0x1a2/0x3c0 [dm_sxm]"
	"KASAN: null-ptr-deref in range [0x0000000000000010-0x0000000000000017]"
	"UBSAN: shift-out-of-bounds in /build/debug-module/kernel/dm-sxm-dirty.c:120:18"
	"WARNING: possible circular locking dependency detected"
	"WARNING: inconsistent lock state"
	"WARNING: possible recursive locking detected"
	"WARNING: suspicious RCU usage"
	"BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580"
	"sxm-vm: kmemleak: 2 new suspected memory leaks in dm-sxm"
	"watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [kworker/1:2:73]"
	"rcu: INFO: rcu_sched self-detected stall on CPU"
	"rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"
	"INFO: task dmsetup:311 blocked for more than 30 seconds."
	"list_add corruption. prev->next should be next (ffff888003c1e0b8), but was 0000000000000000."
	"ODEBUG: free active (active state 0) object type: timer_list hint: sxm_tick+0x0/0x40 [dm_sxm]"
	"WARNING: CPU: 0 PID: 77 at kernel/workqueue.c:3066 __flush_work+0x3f0/0x4a0"
)
benign=(
	"kasan: KernelAddressSanitizer initialized (generic)"
	"kmemleak: Kernel memory leak detector initialized (mem pool available: 31542)"
	"kmemleak: 3 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"
	"Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar"
	"rcu: 	RCU CPU stall warnings timeout set to 20 (rcu_cpu_stall_timeout)."
	"ODEBUG: 4 of 4 active objects replaced"
	"sxm-vm: kmemleak: 0 new suspected memory leaks in dm-sxm"
)
{
	i=0
	echo "[    0.000000] Linux version 6.1.192-sxm-debug"
	for l in "${benign[@]}"; do printf '[    1.%06d] %s\r\n' $i "$l"; i=$((i + 1)); done
	for l in "${reports[@]}"; do
		echo "[    2.$i] sxm-vm: BEGIN vm/t$i.sh"
		echo "[    2.$i] $l"
		echo "[    2.$i] body of report $i"
		echo "[    2.$i] sxm-vm: END vm/t$i.sh rc=0"
		i=$((i + 1))
	done
	echo "[    3.0] sxm-vm: BEGIN vm/quiet.sh"
	echo "BUG: KASAN: in a test's own output (no time stamp)"
	echo "[    3.1] sxm-vm: END vm/quiet.sh rc=0"
	echo "[    4.0] BUG: KASAN: use-after-free in dm_sxm_exit+0x20/0x40 [dm_sxm]"
} > "$console"

plan $((${#reports[@]} + ${#benign[@]} + 3))

for l in "${reports[@]}"; do
	if [[ "[   12.345678] $l" =~ $kernel_bad_re ]]; then pass "caught: $l"; else fail "caught: $l"; fi
done
for l in "${benign[@]}"; do
	if [[ "[   12.345678] $l" =~ $kernel_bad_re ]]; then fail "not a failure: $l"; else pass "not a failure: $l"; fi
done

declare -A klog=()
kernel_log_scan "$console" vm/boot-1
bad=""
i=${#benign[@]}
for l in "${reports[@]}"; do
	want="not ok - kernel log: $l"$'\n'"# body of report $i"$'\n'
	[ "${klog[vm/t$i.sh]:-}" = "$want" ] || bad+="vm/t$i.sh: got '${klog[vm/t$i.sh]:-}'"$'\n'
	i=$((i + 1))
done
check_eq "each report is charged to its test, with its body" "" "$bad"
check_eq "a test's own output is not the kernel's" "" "${klog[vm/quiet.sh]:-}"
check_eq "outside the tests: charged to the boot" \
	"not ok - kernel log: BUG: KASAN: use-after-free in dm_sxm_exit+0x20/0x40 [dm_sxm]" \
	"$(printf '%s' "${klog[vm/boot-1]:-}")"
